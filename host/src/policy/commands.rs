//! Small closed grammars for the commands the parser crate reads loosely or not at
//! all: schema DDL (in the forms the renderer emits and `.cypher` authors write),
//! bare `SHOW` forms, and the admin commands whose first words name them.
//!
//! Each grammar accepts exactly its forms and nothing else; a statement that starts
//! like a command but does not follow it to the end is not a command here.

use super::lexer::{Token, TokenKind};

/// A schema statement read to its end: what it does and the names it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ddl {
    /// Labels and relationship types the statement names.
    pub labels: Vec<String>,
    /// Property keys the statement names, in the order written.
    pub properties: Vec<String>,
    /// `CREATE` (or `DROP`).
    pub create: bool,
    /// A constraint (or an index).
    pub constraint: bool,
    /// The element's name, when the statement gives one.
    pub name: Option<String>,
    /// `IF NOT EXISTS` / `IF EXISTS`.
    pub conditional: bool,
    /// Whether the element is on relationships (or nodes).
    pub relationship: bool,
    /// What a created constraint requires.
    pub requirement: Option<Requirement>,
}

/// What a constraint requires of the elements it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// `IS UNIQUE`.
    Unique,
    /// `IS NODE KEY` / `IS RELATIONSHIP KEY`: present and unique together.
    Key,
    /// `IS NOT NULL` (4.4: `ASSERT EXISTS`).
    NotNull,
    /// `IS :: TYPE`.
    Type,
}

/// Why a statement that starts like a command is not one of its forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// The token index where the grammar gave up.
    pub at: usize,
    /// What it expected there.
    pub expected: &'static str,
}

struct Reader<'a> {
    tokens: &'a [Token],
    pos: usize,
    ddl: Ddl,
}

type Step<T = ()> = Result<T, Mismatch>;

impl<'a> Reader<'a> {
    fn fail<T>(&self, expected: &'static str) -> Step<T> {
        Err(Mismatch {
            at: self.pos,
            expected,
        })
    }

    fn peek_kw(&self, offset: usize) -> Option<String> {
        self.tokens.get(self.pos + offset).and_then(Token::keyword)
    }

    fn eat_kw(&mut self, word: &str) -> bool {
        if self.peek_kw(0).as_deref() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn kw(&mut self, word: &'static str) -> Step {
        if self.eat_kw(word) {
            Ok(())
        } else {
            self.fail(word)
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        if self.tokens.get(self.pos).is_some_and(|t| t.is(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn punct(&mut self, c: char, expected: &'static str) -> Step {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.fail(expected)
        }
    }

    fn name(&mut self, expected: &'static str) -> Step<String> {
        match self.tokens.get(self.pos).and_then(Token::name) {
            Some(name) => {
                let name = name.to_string();
                self.pos += 1;
                Ok(name)
            }
            None => self.fail(expected),
        }
    }

    fn at_end(&self) -> bool {
        self.pos == self.tokens.len()
            || (self.pos + 1 == self.tokens.len() && self.tokens[self.pos].is(';'))
    }

    fn end(&self) -> Step {
        if self.at_end() {
            Ok(())
        } else {
            self.fail("the end of the statement")
        }
    }

    /// `IF NOT EXISTS`, optional.
    fn if_not_exists(&mut self) -> Step {
        if self.eat_kw("IF") {
            self.kw("NOT")?;
            self.kw("EXISTS")?;
            self.ddl.conditional = true;
        }
        Ok(())
    }

    /// An optional element name: any name that is not the keyword that follows it.
    fn optional_name(&mut self, followers: &[&str]) -> Step {
        let next = self.tokens.get(self.pos);
        let is_follower = next
            .and_then(Token::keyword)
            .is_some_and(|k| followers.contains(&k.as_str()));
        if let Some(name) = next.and_then(Token::name)
            && !is_follower
        {
            self.ddl.name = Some(name.to_string());
            self.pos += 1;
        }
        Ok(())
    }

    /// `(v:Label)`, `(v:A|B)`, `()-[v:TYPE]-()` with optional arrow heads, or `(v)`
    /// for lookup indexes. Returns the variable.
    fn element_pattern(&mut self) -> Step<String> {
        self.punct('(', "`(`")?;
        if self.eat_punct(')') {
            // ()-[r:TYPE]-()
            self.ddl.relationship = true;
            self.eat_punct('<');
            self.punct('-', "`-`")?;
            self.punct('[', "`[`")?;
            let variable = self.name("a variable")?;
            if self.eat_punct(':') {
                self.label_list()?;
            }
            self.punct(']', "`]`")?;
            self.punct('-', "`-`")?;
            self.eat_punct('>');
            self.punct('(', "`(`")?;
            self.punct(')', "`)`")?;
            return Ok(variable);
        }
        let variable = self.name("a variable")?;
        if self.eat_punct(':') {
            self.label_list()?;
        }
        self.punct(')', "`)`")?;
        Ok(variable)
    }

    fn label_list(&mut self) -> Step {
        loop {
            let label = self.name("a label or relationship type")?;
            self.ddl.labels.push(label);
            if !(self.eat_punct('|') || self.eat_punct(':')) {
                return Ok(());
            }
        }
    }

    /// `v.prop`, with `v` the pattern's variable.
    fn property(&mut self, variable: &str) -> Step {
        let at = self.pos;
        let name = self.name("a property of the pattern's variable")?;
        if name != variable {
            self.pos = at;
            return self.fail("a property of the pattern's variable");
        }
        self.punct('.', "`.`")?;
        let key = self.name("a property key")?;
        self.ddl.properties.push(key);
        Ok(())
    }

    /// `(v.a, v.b)` or, where `bare` allows, `v.a`.
    fn property_list(&mut self, variable: &str, bare: bool) -> Step {
        if !self.eat_punct('(') {
            if bare {
                return self.property(variable);
            }
            return self.fail("`(`");
        }
        loop {
            self.property(variable)?;
            if !self.eat_punct(',') {
                break;
            }
        }
        self.punct(')', "`)`")
    }

    /// `OPTIONS {...}` with literal values only, optional.
    fn options(&mut self) -> Step {
        if self.eat_kw("OPTIONS") {
            self.literal_map()?;
        }
        Ok(())
    }

    fn literal_map(&mut self) -> Step {
        self.punct('{', "`{`")?;
        if self.eat_punct('}') {
            return Ok(());
        }
        loop {
            self.name("an option name")?;
            self.punct(':', "`:`")?;
            self.literal()?;
            if !self.eat_punct(',') {
                break;
            }
        }
        self.punct('}', "`}`")
    }

    fn literal(&mut self) -> Step {
        match self.tokens.get(self.pos).map(|t| &t.kind) {
            Some(TokenKind::Str(_) | TokenKind::Number) => {
                self.pos += 1;
                Ok(())
            }
            Some(TokenKind::Punct('-'))
                if matches!(
                    self.tokens.get(self.pos + 1).map(|t| &t.kind),
                    Some(TokenKind::Number)
                ) =>
            {
                self.pos += 2;
                Ok(())
            }
            Some(TokenKind::Punct('{')) => self.literal_map(),
            Some(TokenKind::Punct('[')) => {
                self.pos += 1;
                if self.eat_punct(']') {
                    return Ok(());
                }
                loop {
                    self.literal()?;
                    if !self.eat_punct(',') {
                        break;
                    }
                }
                self.punct(']', "`]`")
            }
            Some(TokenKind::Word(w))
                if matches!(w.to_ascii_uppercase().as_str(), "TRUE" | "FALSE" | "NULL") =>
            {
                self.pos += 1;
                Ok(())
            }
            _ => self.fail("a literal option value"),
        }
    }

    /// A property type: `INTEGER`, `LIST<STRING NOT NULL>`, `INTEGER | FLOAT`, ...
    fn property_type(&mut self) -> Step {
        let start = self.pos;
        let mut depth = 0usize;
        while !self.at_end() && self.peek_kw(0).as_deref() != Some("OPTIONS") {
            let token = &self.tokens[self.pos];
            match &token.kind {
                TokenKind::Word(_) => {}
                TokenKind::Punct('<') => depth += 1,
                TokenKind::Punct('>') if depth > 0 => depth -= 1,
                TokenKind::Punct('|') => {}
                _ => return self.fail("a property type"),
            }
            self.pos += 1;
        }
        if self.pos == start || depth != 0 {
            return self.fail("a property type");
        }
        Ok(())
    }

    /// `CREATE [kind] INDEX [name] [IF NOT EXISTS] FOR ... ON ... [OPTIONS {...}]`,
    /// or the 4.4 form `CREATE INDEX [name] FOR ... ON (...)` (the same).
    fn create_index(&mut self) -> Step {
        let kind = self.peek_kw(0).filter(|k| {
            matches!(
                k.as_str(),
                "RANGE" | "TEXT" | "POINT" | "LOOKUP" | "FULLTEXT" | "VECTOR" | "BTREE"
            )
        });
        if kind.is_some() {
            self.pos += 1;
        }
        self.kw("INDEX")?;
        self.optional_name(&["IF", "FOR", "ON"])?;
        self.if_not_exists()?;
        self.kw("FOR")?;
        let variable = self.element_pattern()?;
        self.kw("ON")?;
        match kind.as_deref() {
            Some("LOOKUP") => {
                self.kw("EACH")?;
                let function = self.name("labels or type")?.to_ascii_lowercase();
                if function != "labels" && function != "type" {
                    return self.fail("labels(...) or type(...)");
                }
                self.punct('(', "`(`")?;
                let at = self.pos;
                if self.name("the pattern's variable")? != variable {
                    self.pos = at;
                    return self.fail("the pattern's variable");
                }
                self.punct(')', "`)`")?;
            }
            Some("FULLTEXT") => {
                self.kw("EACH")?;
                self.punct('[', "`[`")?;
                loop {
                    self.property(&variable)?;
                    if !self.eat_punct(',') {
                        break;
                    }
                }
                self.punct(']', "`]`")?;
            }
            _ => self.property_list(&variable, false)?,
        }
        self.options()?;
        self.end()
    }

    /// `CREATE CONSTRAINT [name] [IF NOT EXISTS] FOR ... REQUIRE ... IS ...` and the
    /// 4.4 form `CREATE CONSTRAINT [name] [IF NOT EXISTS] ON ... ASSERT ...`.
    fn create_constraint(&mut self) -> Step {
        self.kw("CONSTRAINT")?;
        self.optional_name(&["IF", "FOR", "ON"])?;
        self.if_not_exists()?;
        let old_form = if self.eat_kw("ON") {
            true
        } else {
            self.kw("FOR")?;
            false
        };
        let variable = self.element_pattern()?;
        if old_form {
            self.kw("ASSERT")?;
        } else {
            self.kw("REQUIRE")?;
        }
        self.ddl.constraint = true;
        if old_form && self.eat_kw("EXISTS") {
            self.property_list(&variable, true)?;
            self.ddl.requirement = Some(Requirement::NotNull);
            self.options()?;
            return self.end();
        }
        self.property_list(&variable, true)?;
        self.kw("IS")?;
        let requirement = if self.eat_kw("UNIQUE") {
            Some(Requirement::Unique)
        } else if self.eat_kw("KEY") {
            Some(Requirement::Key)
        } else if self.eat_kw("NODE") || self.eat_kw("RELATIONSHIP") || self.eat_kw("REL") {
            if self.eat_kw("KEY") {
                Some(Requirement::Key)
            } else if self.eat_kw("UNIQUE") {
                Some(Requirement::Unique)
            } else {
                None
            }
        } else if self.eat_kw("NOT") {
            self.eat_kw("NULL").then_some(Requirement::NotNull)
        } else if self.eat_kw("TYPED") {
            self.property_type()?;
            Some(Requirement::Type)
        } else if self.eat_punct(':') {
            self.punct(':', "`::`")?;
            self.property_type()?;
            Some(Requirement::Type)
        } else {
            None
        };
        if requirement.is_none() {
            return self.fail("UNIQUE, NODE KEY, NOT NULL or a property type");
        }
        self.ddl.requirement = requirement;
        self.options()?;
        self.end()
    }

    /// `DROP INDEX|CONSTRAINT name [IF EXISTS]`, and 4.4's `DROP INDEX ON :L(p)`.
    fn drop(&mut self) -> Step {
        if !self.eat_kw("INDEX") {
            self.kw("CONSTRAINT")?;
            self.ddl.constraint = true;
        } else if self.eat_kw("ON") {
            self.punct(':', "`:`")?;
            let label = self.name("a label")?;
            self.ddl.labels.push(label);
            self.punct('(', "`(`")?;
            loop {
                let key = self.name("a property key")?;
                self.ddl.properties.push(key);
                if !self.eat_punct(',') {
                    break;
                }
            }
            self.punct(')', "`)`")?;
            return self.end();
        }
        self.ddl.name = Some(self.name("the name of the index or constraint")?);
        if self.eat_kw("IF") {
            self.kw("EXISTS")?;
            self.ddl.conditional = true;
        }
        self.end()
    }
}

/// Whether the statement starts the way a schema command does, so that the schema
/// grammar (and nothing else) decides what it is.
pub(crate) fn looks_like_ddl(tokens: &[Token]) -> bool {
    let kw = |i: usize| tokens.get(i).and_then(Token::keyword);
    match kw(0).as_deref() {
        Some("CREATE") => {
            let mut i = 1;
            if kw(1).as_deref() == Some("OR") && kw(2).as_deref() == Some("REPLACE") {
                i = 3;
            }
            match kw(i).as_deref() {
                Some("INDEX" | "CONSTRAINT") => true,
                Some("RANGE" | "TEXT" | "POINT" | "LOOKUP" | "FULLTEXT" | "VECTOR" | "BTREE") => {
                    kw(i + 1).as_deref() == Some("INDEX")
                }
                _ => false,
            }
        }
        Some("DROP") => matches!(kw(1).as_deref(), Some("INDEX" | "CONSTRAINT")),
        _ => false,
    }
}

/// Reads a schema command to its end.
pub(crate) fn ddl(tokens: &[Token]) -> Result<Ddl, Mismatch> {
    let mut reader = Reader {
        tokens,
        pos: 0,
        ddl: Ddl {
            labels: Vec::new(),
            properties: Vec::new(),
            create: false,
            constraint: false,
            name: None,
            conditional: false,
            relationship: false,
            requirement: None,
        },
    };
    if reader.eat_kw("DROP") {
        reader.drop()?;
    } else {
        reader.kw("CREATE")?;
        reader.ddl.create = true;
        if reader.peek_kw(0).as_deref() == Some("CONSTRAINT") {
            reader.create_constraint()?;
        } else {
            reader.create_index()?;
        }
    }
    Ok(reader.ddl)
}

/// What a bare `SHOW` command (no YIELD, WHERE or RETURN) does, for the forms the
/// parser crate does not know: `Some(true)` reads the schema or the catalogue of
/// functions and procedures, `Some(false)` is a `SHOW` of something else (users,
/// settings, ...), `None` is not a bare `SHOW`.
pub(crate) fn bare_show(tokens: &[Token]) -> Option<bool> {
    let words: Vec<String> = tokens
        .iter()
        .take_while(|t| !t.is(';'))
        .map(|t| t.keyword())
        .collect::<Option<_>>()?;
    if words.first().map(String::as_str) != Some("SHOW") || words.len() < 2 {
        return None;
    }
    let rest: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let schema_object = |w: &str| {
        matches!(
            w,
            "INDEX"
                | "INDEXES"
                | "CONSTRAINT"
                | "CONSTRAINTS"
                | "FUNCTION"
                | "FUNCTIONS"
                | "PROCEDURE"
                | "PROCEDURES"
        )
    };
    let qualifier = |w: &str| {
        matches!(
            w,
            "ALL"
                | "RANGE"
                | "TEXT"
                | "POINT"
                | "LOOKUP"
                | "FULLTEXT"
                | "VECTOR"
                | "BTREE"
                | "UNIQUE"
                | "UNIQUENESS"
                | "EXIST"
                | "EXISTENCE"
                | "NODE"
                | "RELATIONSHIP"
                | "REL"
                | "KEY"
                | "PROPERTY"
                | "TYPE"
                | "BUILTIN"
                | "BUILT"
                | "IN"
                | "USER"
                | "DEFINED"
        )
    };
    let reads = match rest.as_slice() {
        ["CURRENT", "GRAPH", "TYPE"] => true,
        [qualifiers @ .., last] if schema_object(last) => qualifiers.iter().all(|w| qualifier(w)),
        _ => false,
    };
    Some(reads)
}

/// A newer Cypher form the statement uses that graphmig's parser does not
/// read, named with what to write instead; `None` when none is recognised.
/// Only called for statements the parser refused: it makes the refusal
/// clearer, it never lets anything through.
pub(crate) fn unsupported_form(tokens: &[Token]) -> Option<String> {
    const BACKFILL: &str = "for a large write in chunks, graphmig's backfill (`// graphmig: \
                            backfill ...` or `ctx.backfill`) commits, checkpoints and resumes \
                            chunk by chunk, and reports progress";
    let kw = |i: usize| tokens.get(i).and_then(Token::keyword);
    for i in 0..tokens.len() {
        match kw(i).as_deref() {
            Some("REPORT") if kw(i + 1).as_deref() == Some("STATUS") => {
                return Some(format!(
                    "`IN TRANSACTIONS ... REPORT STATUS`: leave `REPORT STATUS` out (graphmig \
                     journals the statement and its counters); {BACKFILL}"
                ));
            }
            Some("ERROR") if kw(i + 1).as_deref() == Some("RETRY") => {
                return Some(format!(
                    "`IN TRANSACTIONS ... ON ERROR RETRY`: use `ON ERROR FAIL` or leave `ON ERROR` \
                     out; {BACKFILL}"
                ));
            }
            Some("CONCURRENT") if kw(i + 1).as_deref() == Some("TRANSACTIONS") => {
                return Some(format!(
                    "`IN CONCURRENT TRANSACTIONS`: write `IN TRANSACTIONS`; {BACKFILL}"
                ));
            }
            Some("CALL") if tokens.get(i + 1).is_some_and(|t| t.is('(')) => {
                return Some(
                    "a scoped subquery `CALL (variables) { ... }`: write it as \
                     `CALL { WITH variables ... }`"
                        .to_string(),
                );
            }
            _ => {}
        }
    }
    None
}

/// The admin command a statement starts with, if its first words name one. Used to
/// name the rule for statements the parser does not read; denied either way.
pub(crate) fn admin_command(tokens: &[Token]) -> Option<String> {
    let kw = |i: usize| tokens.get(i).and_then(Token::keyword);
    let first = kw(0)?;
    let admin_nouns = [
        "DATABASE",
        "DATABASES",
        "ALIAS",
        "ALIASES",
        "USER",
        "USERS",
        "ROLE",
        "ROLES",
        "SERVER",
        "SERVERS",
        "AUTH",
        "PRIVILEGE",
        "PRIVILEGES",
        "SETTING",
        "SETTINGS",
        "TRANSACTION",
        "TRANSACTIONS",
        "GRAPH",
        "IMMUTABLE",
        "REPLICA",
        "COMPOSITE",
        "CURRENT",
        "HOME",
        "DEFAULT",
        "STANDARD",
        "SYSTEM",
    ];
    match first.as_str() {
        "GRANT" | "DENY" | "REVOKE" | "TERMINATE" | "ENABLE" | "DEALLOCATE" | "REALLOCATE"
        | "DRYRUN" | "USE" => Some(first),
        "CREATE" | "DROP" | "ALTER" | "RENAME" | "START" | "STOP" | "SHOW" => {
            let mut i = 1;
            if kw(1).as_deref() == Some("OR") && kw(2).as_deref() == Some("REPLACE") {
                i = 3;
            }
            if kw(i).as_deref() == Some("IF") {
                return None;
            }
            let noun = kw(i)?;
            admin_nouns
                .contains(&noun.as_str())
                .then(|| format!("{first} {noun}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::lex;
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        lex(text).expect("lexes").tokens
    }

    #[test]
    fn schema_commands_in_every_form_the_project_writes_are_read_to_the_end() {
        for text in [
            "CREATE CONSTRAINT person_email IF NOT EXISTS FOR (p:Person) REQUIRE p.email IS UNIQUE",
            "CREATE CONSTRAINT IF NOT EXISTS FOR (p:Person) REQUIRE (p.a, p.b) IS NODE KEY",
            "CREATE CONSTRAINT c FOR (p:Person) REQUIRE p.a IS NOT NULL;",
            "CREATE CONSTRAINT c FOR ()-[r:KNOWS]-() REQUIRE r.since IS NOT NULL",
            "CREATE CONSTRAINT c FOR ()-[r:KNOWS]->() REQUIRE r.id IS RELATIONSHIP KEY",
            "CREATE CONSTRAINT c FOR (p:Person) REQUIRE p.age IS :: INTEGER",
            "CREATE CONSTRAINT c FOR (p:Person) REQUIRE p.tags IS TYPED LIST<STRING NOT NULL>",
            "CREATE CONSTRAINT ON (p:Person) ASSERT p.email IS UNIQUE",
            "CREATE CONSTRAINT c ON (p:Person) ASSERT EXISTS (p.email)",
            "CREATE TEXT INDEX t IF NOT EXISTS FOR (p:Person) ON (p.name)",
            "CREATE INDEX FOR (p:Person) ON (p.name, p.age)",
            "CREATE RANGE INDEX t FOR ()-[r:KNOWS]-() ON (r.since)",
            "CREATE POINT INDEX t FOR (p:Place) ON (p.loc) OPTIONS {indexConfig: {`spatial.cartesian.min`: [-100.0, -100.0]}}",
            "CREATE FULLTEXT INDEX ft FOR (n:Movie|Book) ON EACH [n.title, n.plot]",
            "CREATE VECTOR INDEX v IF NOT EXISTS FOR (n:Doc) ON (n.embedding) OPTIONS {indexConfig: {`vector.dimensions`: 3, `vector.similarity_function`: 'cosine'}}",
            "CREATE LOOKUP INDEX l FOR (n) ON EACH labels(n)",
            "DROP INDEX t IF EXISTS",
            "DROP CONSTRAINT `my constraint`",
            "DROP INDEX ON :Person(name)",
        ] {
            let tokens = tokens(text);
            assert!(looks_like_ddl(&tokens), "{text}");
            assert!(ddl(&tokens).is_ok(), "{text}: {:?}", ddl(&tokens));
        }
    }

    #[test]
    fn schema_commands_say_what_they_create_or_drop() {
        let d = ddl(&tokens(
            "CREATE CONSTRAINT `by email` IF NOT EXISTS FOR (p:Person) REQUIRE (p.email, p.org) IS NODE KEY",
        ))
        .expect("reads");
        assert!(d.create && d.constraint && d.conditional && !d.relationship);
        assert_eq!(d.name.as_deref(), Some("by email"));
        assert_eq!(d.labels, ["Person"]);
        assert_eq!(d.properties, ["email", "org"]);
        assert_eq!(d.requirement, Some(Requirement::Key));
        let d = ddl(&tokens(
            "CREATE CONSTRAINT ON (p:Person) ASSERT EXISTS (p.email)",
        ))
        .expect("reads");
        assert_eq!((d.name, d.requirement), (None, Some(Requirement::NotNull)));
        let d = ddl(&tokens(
            "CREATE CONSTRAINT c FOR ()-[r:KNOWS]-() REQUIRE r.id IS UNIQUE",
        ))
        .expect("reads");
        assert!(d.relationship);
        assert_eq!(d.requirement, Some(Requirement::Unique));
        let d = ddl(&tokens(
            "CREATE CONSTRAINT c FOR (p:P) REQUIRE p.age IS :: INTEGER",
        ))
        .expect("reads");
        assert_eq!(d.requirement, Some(Requirement::Type));
        let d = ddl(&tokens("CREATE TEXT INDEX t FOR (p:Person) ON (p.name)")).expect("reads");
        assert!(d.create && !d.constraint && !d.conditional);
        assert_eq!(d.requirement, None);
        let d = ddl(&tokens("DROP CONSTRAINT `my constraint` IF EXISTS")).expect("reads");
        assert!(!d.create && d.constraint && d.conditional);
        assert_eq!(d.name.as_deref(), Some("my constraint"));
        let d = ddl(&tokens("DROP INDEX ON :Person(name)")).expect("reads");
        assert!(!d.create && !d.constraint && d.name.is_none());
    }

    #[test]
    fn anything_else_that_starts_like_a_schema_command_is_not_one() {
        for text in [
            "CREATE index = (:Doomed)",
            "CREATE INDEX i FOR (n:L) ON (n.p) RETURN 1",
            "CREATE INDEX i FOR (n:L) ON (m.p)",
            "CREATE INDEX i FOR (n:L) ON (n.p) OPTIONS {x: apoc.cypher.runFirstColumn('x', {})}",
            "CREATE INDEX i FOR (n:L) ON (n.p) OPTIONS $options",
            "DROP INDEX i; DROP DATABASE neo4j",
            "CREATE CONSTRAINT c FOR (n:L) REQUIRE n.p IS UNIQUE CREATE (x)",
        ] {
            assert!(ddl(&tokens(text)).is_err(), "{text}");
        }
    }

    #[test]
    fn bare_show_commands_read_or_administer() {
        assert_eq!(bare_show(&tokens("SHOW CURRENT GRAPH TYPE")), Some(true));
        assert_eq!(bare_show(&tokens("SHOW RANGE INDEXES")), Some(true));
        assert_eq!(bare_show(&tokens("SHOW BUILT IN FUNCTIONS")), Some(true));
        assert_eq!(bare_show(&tokens("SHOW USERS")), Some(false));
        assert_eq!(bare_show(&tokens("SHOW INDEXES YIELD *")), None);
    }

    #[test]
    fn admin_commands_are_named_by_their_first_words() {
        for (text, name) in [
            ("CREATE AUTH RULE r SET CONDITION x", "CREATE AUTH"),
            ("CREATE IMMUTABLE ROLE r", "CREATE IMMUTABLE"),
            ("CREATE REPLICA DATABASE d", "CREATE REPLICA"),
            ("ALTER USERS a, b SET TAG 'x'", "ALTER USERS"),
            ("ALTER CURRENT GRAPH TYPE SET {}", "ALTER CURRENT"),
            ("GRANT ALL ON DATABASE * TO PUBLIC", "GRANT"),
        ] {
            assert_eq!(
                admin_command(&tokens(text)).as_deref(),
                Some(name),
                "{text}"
            );
        }
        assert_eq!(admin_command(&tokens("CREATE (n:User)")), None);
    }
}
