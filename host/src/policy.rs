//! The Cypher policy: classifies every statement a guest sends (read, write, schema,
//! admin, procedure calls, LOAD CSV sources) and decides whether it may run.
//!
//! The classifier works on tokens, not text: strings, comments, backticked names,
//! escapes and case are resolved first, so a keyword hidden in a comment or a
//! procedure name split by backticks is seen as the server would see it. It is
//! deliberately suspicious: where it cannot tell, it denies.

use std::collections::BTreeSet;
use std::fmt;

/// What a statement may do, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Reads data or schema.
    Read,
    /// Writes data.
    Write,
    /// Creates or drops indexes and constraints.
    Schema,
    /// Databases, users, roles, privileges, server settings, switching graphs.
    Admin,
}

impl Class {
    /// Lowercase name, as written in `graphmig.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Schema => "schema",
            Class::Admin => "admin",
        }
    }

    /// Parses a name from `graphmig.toml`.
    pub fn parse(text: &str) -> Option<Class> {
        match text {
            "read" => Some(Class::Read),
            "write" => Some(Class::Write),
            "schema" => Some(Class::Schema),
            "admin" => Some(Class::Admin),
            _ => None,
        }
    }
}

/// Where a `LOAD CSV` reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvSource {
    /// A string literal.
    Literal(String),
    /// A parameter, by name.
    Parameter(String),
    /// Anything else (concatenation, a function): cannot be checked.
    Expression,
}

/// What a statement does, as far as the policy is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    /// Every class of operation found.
    pub classes: BTreeSet<Class>,
    /// The admin clauses found, such as `CREATE DATABASE` or `USE`.
    pub admin: Vec<String>,
    /// Procedures called with `CALL`, lowercased dotted names.
    pub procedures: Vec<String>,
    /// Namespaced functions invoked (`apoc.cypher.runFirstColumn(...)`), lowercased.
    pub functions: Vec<String>,
    /// Sources of `LOAD CSV` clauses.
    pub load_csv: Vec<CsvSource>,
    /// Names reserved for graphmig's own history and lock (`__Graphmig...`).
    pub reserved: Vec<String>,
    /// Number of statements in the text.
    pub statements: usize,
}

/// Why a statement was denied: the rule and what triggered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule's name: `admin`, `write`, `schema`, `read`, `procedure`,
    /// `function`, `load-csv`, `multiple-statements`, `unparseable`.
    pub rule: &'static str,
    /// What matched.
    pub detail: String,
}

impl Denial {
    /// The status code given to the guest: `graphmig.Policy.<Rule>`.
    pub fn code(&self) -> String {
        let rule: String = self
            .rule
            .split('-')
            .map(|part| {
                let mut chars = part.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect();
        format!("graphmig.Policy.{rule}")
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "denied by the `{}` rule: {}", self.rule, self.detail)
    }
}

/// Procedures and functions no migration may call unless its configuration names
/// them explicitly: they reach outside the graph, run Cypher built from strings
/// (escaping the policy), or administer the server.
pub const ALWAYS_DENIED: &[&str] = &[
    "dbms.*",
    "apoc.load.*",
    "apoc.import.*",
    "apoc.export.*",
    "apoc.cypher.*",
    "apoc.periodic.*",
    "apoc.do.*",
    "apoc.when",
    "apoc.case",
    "apoc.trigger.*",
    "apoc.systemdb.*",
    "apoc.custom.*",
    "apoc.schema.*",
    "apoc.log.*",
    "apoc.config.*",
];

/// Procedures and namespaced functions allowed by default.
pub const DEFAULT_ALLOWED: &[&str] = &[
    "db.labels",
    "db.relationshiptypes",
    "db.propertykeys",
    "db.awaitindex",
    "db.awaitindexes",
    "db.resampleindex",
    "db.resampleoutdatedindexes",
    "db.schema.*",
    "db.index.fulltext.querynodes",
    "db.index.fulltext.queryrelationships",
    "db.index.vector.querynodes",
    "db.index.vector.queryrelationships",
    "db.create.setnodevectorproperty",
    "db.create.setrelationshipvectorproperty",
    "db.namefromelementid",
    "point.*",
    "date.*",
    "datetime.*",
    "localdatetime.*",
    "localtime.*",
    "time.*",
    "duration.*",
    "vector.*",
    "apoc.coll.*",
    "apoc.map.*",
    "apoc.text.*",
    "apoc.convert.*",
    "apoc.number.*",
    "apoc.math.*",
    "apoc.date.*",
    "apoc.temporal.*",
    "apoc.create.*",
    "apoc.refactor.*",
    "apoc.node.*",
    "apoc.nodes.*",
    "apoc.label.*",
    "apoc.path.*",
];

/// A policy: which classes may run and which procedures may be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    allow: BTreeSet<Class>,
    extra_allowed: Vec<String>,
    extra_denied: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: [Class::Read, Class::Write, Class::Schema].into(),
            extra_allowed: Vec::new(),
            extra_denied: Vec::new(),
        }
    }
}

fn matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

impl Policy {
    /// A policy allowing `allow`, plus procedures named in `allowed` (which may
    /// override [`ALWAYS_DENIED`]) and minus those in `denied` (which wins).
    pub fn new(
        allow: impl IntoIterator<Item = Class>,
        allowed: Vec<String>,
        denied: Vec<String>,
    ) -> Policy {
        Policy {
            allow: allow.into_iter().collect(),
            extra_allowed: allowed,
            extra_denied: denied,
        }
    }

    /// This policy with `allow` as its classes and more allowed and denied names.
    pub fn extended(
        &self,
        allow: impl IntoIterator<Item = Class>,
        allowed: &[String],
        denied: &[String],
    ) -> Policy {
        let mut policy = self.clone();
        policy.allow = allow.into_iter().collect();
        policy.extra_allowed.extend(allowed.iter().cloned());
        policy.extra_denied.extend(denied.iter().cloned());
        policy
    }

    /// The classes this policy allows.
    pub fn allowed_classes(&self) -> &BTreeSet<Class> {
        &self.allow
    }

    /// Whether the procedure or namespaced function `name` (lowercase) may run.
    pub fn procedure_allowed(&self, name: &str) -> bool {
        if self.extra_denied.iter().any(|p| matches(p, name)) {
            return false;
        }
        if self.extra_allowed.iter().any(|p| matches(p, name)) {
            return true;
        }
        if ALWAYS_DENIED.iter().any(|p| matches(p, name)) {
            return false;
        }
        DEFAULT_ALLOWED.iter().any(|p| matches(p, name))
    }

    /// Classifies `query` and checks it; `param` resolves `$name` to a string
    /// where a LOAD CSV source is a parameter.
    pub fn check(
        &self,
        query: &str,
        param: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Classification, Denial> {
        let classification = classify(query).map_err(|detail| Denial {
            rule: "unparseable",
            detail,
        })?;
        if classification.statements > 1 {
            return Err(Denial {
                rule: "multiple-statements",
                detail: format!(
                    "{} statements in one call; send one statement per run-cypher call",
                    classification.statements
                ),
            });
        }
        if let Some(name) = classification.reserved.first() {
            return Err(Denial {
                rule: "reserved",
                detail: format!("`{name}` belongs to graphmig's history and lock"),
            });
        }
        if let Some(clause) = classification.admin.first()
            && !self.allow.contains(&Class::Admin)
        {
            return Err(Denial {
                rule: "admin",
                detail: format!("`{clause}` administers the server"),
            });
        }
        for class in [Class::Schema, Class::Write, Class::Read] {
            if classification.classes.contains(&class) && !self.allow.contains(&class) {
                return Err(Denial {
                    rule: class.as_str(),
                    detail: format!("this migration may not run {} statements", class.as_str()),
                });
            }
        }
        for name in &classification.procedures {
            if !self.procedure_allowed(name) {
                return Err(Denial {
                    rule: "procedure",
                    detail: format!("procedure `{name}` is not allowed"),
                });
            }
        }
        for name in &classification.functions {
            if !self.procedure_allowed(name) {
                return Err(Denial {
                    rule: "function",
                    detail: format!("function `{name}` is not allowed"),
                });
            }
        }
        for source in &classification.load_csv {
            let url = match source {
                CsvSource::Literal(url) => url.clone(),
                CsvSource::Parameter(name) => param(name).ok_or_else(|| Denial {
                    rule: "load-csv",
                    detail: format!("LOAD CSV from `${name}`, which is not a string parameter"),
                })?,
                CsvSource::Expression => {
                    return Err(Denial {
                        rule: "load-csv",
                        detail: "LOAD CSV from a computed source cannot be checked".into(),
                    });
                }
            };
            if !url.trim_start().to_ascii_lowercase().starts_with("file:") {
                return Err(Denial {
                    rule: "load-csv",
                    detail: format!("LOAD CSV from `{url}`: only file: URLs are allowed"),
                });
            }
        }
        Ok(classification)
    }
}

/// A token of Cypher text; comments and whitespace are dropped.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// An unquoted word; compared in upper case.
    Word(String),
    /// A backticked name, unescaped.
    Quoted(String),
    /// A string literal, unescaped.
    Str(String),
    /// A parameter name.
    Param(String),
    /// A number (its text does not matter).
    Number,
    /// Any other character.
    Punct(char),
}

impl Token {
    fn keyword(&self) -> Option<&str> {
        match self {
            Token::Word(w) => Some(w.as_str()),
            _ => None,
        }
    }

    fn name(&self) -> Option<String> {
        match self {
            Token::Word(w) | Token::Quoted(w) => Some(w.to_lowercase()),
            _ => None,
        }
    }
}

fn unicode_escape(
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    len: usize,
) -> Result<char, String> {
    let mut code = String::new();
    for _ in 0..len {
        match chars.next() {
            Some((_, c)) if c.is_ascii_hexdigit() => code.push(c),
            _ => return Err("malformed unicode escape".into()),
        }
    }
    u32::from_str_radix(&code, 16)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| format!("invalid unicode escape \\u{code}"))
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '/' if chars.peek().map(|p| p.1) == Some('/') => {
                for (_, c) in chars.by_ref() {
                    if c == '\n' || c == '\r' {
                        break;
                    }
                }
            }
            '/' if chars.peek().map(|p| p.1) == Some('*') => {
                chars.next();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    if c == '*' && chars.peek().map(|p| p.1) == Some('/') {
                        chars.next();
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err("unterminated comment".into());
                }
            }
            '\'' | '"' => {
                let quote = c;
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|p| p.1) {
                            Some('u') => value.push(unicode_escape(&mut chars, 4)?),
                            Some('U') => value.push(unicode_escape(&mut chars, 8)?),
                            Some('n') => value.push('\n'),
                            Some('t') => value.push('\t'),
                            Some('r') => value.push('\r'),
                            Some('b') => value.push('\u{8}'),
                            Some('f') => value.push('\u{c}'),
                            Some(other) => value.push(other),
                            None => break,
                        },
                        c if c == quote => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err("unterminated string".into());
                }
                tokens.push(Token::Str(value));
            }
            '`' => {
                let mut value = String::new();
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    if c == '`' {
                        if chars.peek().map(|p| p.1) == Some('`') {
                            chars.next();
                            value.push('`');
                        } else {
                            closed = true;
                            break;
                        }
                    } else if c == '\\' && chars.peek().map(|p| p.1) == Some('u') {
                        // Decoded for classification even where the server would
                        // not: reading more into a name can only deny more.
                        chars.next();
                        value.push(unicode_escape(&mut chars, 4)?);
                    } else {
                        value.push(c);
                    }
                }
                if !closed {
                    return Err("unterminated backticked name".into());
                }
                tokens.push(Token::Quoted(value));
            }
            '$' => {
                let mut name = String::new();
                if chars.peek().map(|p| p.1) == Some('`') {
                    chars.next();
                    for (_, c) in chars.by_ref() {
                        if c == '`' {
                            break;
                        }
                        name.push(c);
                    }
                } else {
                    while let Some(&(_, c)) = chars.peek() {
                        if c.is_alphanumeric() || c == '_' {
                            name.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                tokens.push(Token::Param(name));
            }
            c if c.is_ascii_digit() => {
                while let Some(&(_, c)) = chars.peek() {
                    let continues_fraction = c == '.'
                        && text[chars.peek().map_or(0, |p| p.0) + 1..]
                            .chars()
                            .next()
                            .is_some_and(|n| n.is_ascii_digit());
                    if c.is_alphanumeric() || c == '_' || continues_fraction {
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Number);
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_alphanumeric() || c == '_' {
                        word.push(c);
                        chars.next();
                    } else if c == '\\' {
                        // A unicode escape inside a bare name is not Cypher; refuse
                        // rather than guess what the server makes of it.
                        return Err("escape sequence outside a string".into());
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word.to_ascii_uppercase()));
            }
            '\\' => return Err("escape sequence outside a string".into()),
            c => tokens.push(Token::Punct(c)),
        }
    }
    Ok(tokens)
}

/// Schema-reading words that may follow `SHOW`.
const SHOW_SCHEMA: &[&str] = &[
    "INDEX",
    "INDEXES",
    "CONSTRAINT",
    "CONSTRAINTS",
    "RANGE",
    "TEXT",
    "POINT",
    "FULLTEXT",
    "LOOKUP",
    "VECTOR",
    "UNIQUE",
    "UNIQUENESS",
    "EXIST",
    "EXISTENCE",
    "EXISTS",
    "NODE",
    "RELATIONSHIP",
    "REL",
    "KEY",
    "BTREE",
    "PROPERTY",
];

const INDEX_KINDS: &[&str] = &[
    "RANGE", "TEXT", "POINT", "FULLTEXT", "VECTOR", "LOOKUP", "BTREE",
];

/// Classifies a statement (or several, separated by `;`).
pub fn classify(query: &str) -> Result<Classification, String> {
    let tokens = tokenize(query)?;
    let mut out = Classification::default();
    for token in &tokens {
        if let Token::Word(name) | Token::Quoted(name) = token
            && name.to_ascii_lowercase().starts_with("__graphmig")
        {
            out.reserved.push(name.clone());
        }
    }

    // Statements: top-level `;` separate them; empty ones do not count.
    let mut depth = 0i32;
    let mut current = 0usize;
    for token in &tokens {
        match token {
            Token::Punct('(' | '[' | '{') => {
                depth += 1;
                current += 1;
            }
            Token::Punct(')' | ']' | '}') => {
                depth -= 1;
                current += 1;
            }
            Token::Punct(';') if depth <= 0 => {
                if current > 0 {
                    out.statements += 1;
                }
                current = 0;
            }
            _ => current += 1,
        }
    }
    if current > 0 {
        out.statements += 1;
    }

    // A word is a keyword unless it is a property (`n.create`), a label or map key
    // (`:Grant`, `{user: 1}`), or a parameter.
    let is_kw = |i: usize, kw: &str| -> bool {
        let Some(Token::Word(w)) = tokens.get(i) else {
            return false;
        };
        if w != kw {
            return false;
        }
        let prev = i.checked_sub(1).and_then(|p| tokens.get(p));
        let next = tokens.get(i + 1);
        !matches!(prev, Some(Token::Punct('.' | ':'))) && !matches!(next, Some(Token::Punct(':')))
    };
    let kw_at = |i: usize| -> Option<&str> {
        let word = tokens.get(i)?.keyword()?;
        if is_kw(i, word) { Some(word) } else { None }
    };
    let admin = |out: &mut Classification, clause: String| {
        out.classes.insert(Class::Admin);
        out.admin.push(clause);
    };

    let mut i = 0;
    while i < tokens.len() {
        let Some(word) = kw_at(i) else {
            // Namespaced invocation: name(.name)+ followed by `(`.
            if tokens[i].name().is_some()
                && matches!(tokens.get(i + 1), Some(Token::Punct('.')))
                && !matches!(
                    i.checked_sub(1).and_then(|p| tokens.get(p)),
                    Some(Token::Punct('.'))
                )
            {
                let (name, end) = dotted_name(&tokens, i);
                if matches!(tokens.get(end), Some(Token::Punct('('))) && name.contains('.') {
                    out.functions.push(name);
                }
                i = end.max(i + 1);
                continue;
            }
            i += 1;
            continue;
        };
        let next = kw_at(i + 1);
        match word {
            "MATCH" | "RETURN" | "WITH" | "UNWIND" | "OPTIONAL" | "WHERE" => {
                out.classes.insert(Class::Read);
            }
            "USE" => admin(&mut out, "USE".into()),
            "GRANT" | "DENY" | "REVOKE" | "TERMINATE" | "DEALLOCATE" | "REALLOCATE" | "DRYRUN"
            | "ENABLE" => admin(&mut out, word.to_string()),
            "SHOW" => {
                let mut j = i + 1;
                if kw_at(j) == Some("ALL") {
                    j += 1;
                }
                match kw_at(j) {
                    Some(w) if SHOW_SCHEMA.contains(&w) => {
                        out.classes.insert(Class::Read);
                    }
                    Some(w) => admin(&mut out, format!("SHOW {w}")),
                    None => admin(&mut out, "SHOW".into()),
                }
            }
            "CREATE" | "DROP" | "ALTER" | "START" | "STOP" | "RENAME" => {
                let mut j = i + 1;
                if kw_at(j) == Some("OR") && kw_at(j + 1) == Some("REPLACE") {
                    j += 2;
                }
                if matches!(kw_at(j), Some("COMPOSITE" | "CURRENT")) {
                    j += 1;
                }
                match kw_at(j) {
                    Some(t @ ("DATABASE" | "DATABASES" | "ALIAS" | "USER" | "ROLE" | "SERVER")) => {
                        admin(&mut out, format!("{word} {t}"))
                    }
                    Some("INDEX" | "CONSTRAINT") if matches!(word, "CREATE" | "DROP") => {
                        out.classes.insert(Class::Schema);
                    }
                    Some(kind)
                        if INDEX_KINDS.contains(&kind)
                            && matches!(word, "CREATE" | "DROP")
                            && kw_at(j + 1) == Some("INDEX") =>
                    {
                        out.classes.insert(Class::Schema);
                    }
                    _ if word == "CREATE" => {
                        out.classes.insert(Class::Write);
                    }
                    // DROP exists only in schema and admin commands: an unknown
                    // DROP is denied. ALTER, START, STOP and RENAME are ordinary
                    // variable names unless an admin target follows.
                    other if word == "DROP" => admin(
                        &mut out,
                        format!("DROP {}", other.unwrap_or("")).trim().to_string(),
                    ),
                    _ => {}
                }
            }
            "MERGE" | "SET" | "DELETE" | "DETACH" | "REMOVE" | "FOREACH" => {
                out.classes.insert(Class::Write);
            }
            "IN" if next == Some("TRANSACTIONS") => {
                out.classes.insert(Class::Write);
            }
            "LOAD" if next == Some("CSV") => {
                out.classes.insert(Class::Read);
                let mut j = i + 2;
                while j < tokens.len() && kw_at(j) != Some("FROM") {
                    j += 1;
                }
                out.load_csv.push(match tokens.get(j + 1) {
                    Some(Token::Str(s))
                        if !matches!(tokens.get(j + 2), Some(Token::Punct('+'))) =>
                    {
                        CsvSource::Literal(s.clone())
                    }
                    Some(Token::Param(p))
                        if !matches!(tokens.get(j + 2), Some(Token::Punct('+'))) =>
                    {
                        CsvSource::Parameter(p.clone())
                    }
                    _ => CsvSource::Expression,
                });
            }
            "CALL" => {
                let after = tokens.get(i + 1);
                let is_subquery = matches!(after, Some(Token::Punct('{')))
                    || (matches!(after, Some(Token::Punct('(')))
                        && tokens[i + 1..]
                            .iter()
                            .position(|t| *t == Token::Punct(')'))
                            .is_some_and(|close| {
                                matches!(tokens.get(i + 1 + close + 1), Some(Token::Punct('{')))
                            }));
                if is_subquery {
                    out.classes.insert(Class::Read);
                } else if tokens.get(i + 1).and_then(Token::name).is_some() {
                    let (name, end) = dotted_name(&tokens, i + 1);
                    out.procedures.push(name);
                    out.classes.insert(Class::Read);
                    i = end;
                    continue;
                } else {
                    // `CALL` followed by something we cannot name.
                    out.procedures.push("<unnamed>".into());
                }
            }
            _ => {
                // Bare names followed by `.`: possibly a namespaced function.
                if matches!(tokens.get(i + 1), Some(Token::Punct('.'))) {
                    let (name, end) = dotted_name(&tokens, i);
                    if matches!(tokens.get(end), Some(Token::Punct('('))) && name.contains('.') {
                        out.functions.push(name);
                    }
                    i = end.max(i + 1);
                    continue;
                }
            }
        }
        i += 1;
    }
    if out.classes.is_empty() && out.procedures.is_empty() && out.statements > 0 {
        out.classes.insert(Class::Read);
    }
    Ok(out)
}

/// Reads `name(.name)*` starting at `start`; returns the lowercase dotted name and
/// the index after it.
fn dotted_name(tokens: &[Token], start: usize) -> (String, usize) {
    let mut parts = Vec::new();
    let mut i = start;
    while let Some(name) = tokens.get(i).and_then(Token::name) {
        parts.push(name);
        if matches!(tokens.get(i + 1), Some(Token::Punct('.')))
            && tokens.get(i + 2).and_then(Token::name).is_some()
        {
            i += 2;
        } else {
            i += 1;
            break;
        }
    }
    (parts.join("."), i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(query: &str) -> Denial {
        Policy::default()
            .check(query, &|_| None)
            .expect_err(&format!("{query:?} should be denied"))
    }

    fn allow(query: &str) -> Classification {
        Policy::default()
            .check(query, &|_| None)
            .unwrap_or_else(|d| panic!("{query:?} should be allowed: {d}"))
    }

    #[test]
    fn ordinary_migration_statements_are_allowed_and_classified() {
        assert!(
            allow("MATCH (n:Person) RETURN n.name")
                .classes
                .contains(&Class::Read)
        );
        assert!(
            allow("UNWIND $rows AS r CREATE (:Person {name: r.name})")
                .classes
                .contains(&Class::Write)
        );
        assert!(allow("CREATE CONSTRAINT person_email IF NOT EXISTS FOR (p:Person) REQUIRE p.email IS UNIQUE")
            .classes
            .contains(&Class::Schema));
        assert!(
            allow("CREATE TEXT INDEX t IF NOT EXISTS FOR (p:Person) ON (p.name)")
                .classes
                .contains(&Class::Schema)
        );
        assert!(
            allow("DROP INDEX t IF EXISTS")
                .classes
                .contains(&Class::Schema)
        );
        assert!(allow("SHOW CONSTRAINTS").classes.contains(&Class::Read));
        assert!(
            allow("MATCH (n) SET n.create = 1, n.database = 'x' RETURN n.user")
                .classes
                .contains(&Class::Write)
        );
        assert!(
            allow("MATCH (u:User:Grant {role: 'admin'}) RETURN u")
                .classes
                .contains(&Class::Read)
        );
        assert!(allow("CALL db.labels() YIELD label RETURN label").procedures == ["db.labels"]);
        assert!(
            allow("RETURN point.distance(point({x: 1, y: 2}), point({x: 2, y: 3})) AS d").functions
                == ["point.distance"]
        );
        assert!(
            allow("MATCH (n) CALL { WITH n RETURN count(*) AS c } RETURN c")
                .classes
                .contains(&Class::Read)
        );
        assert!(
            allow("LOAD CSV WITH HEADERS FROM 'file:///people.csv' AS row CREATE (:P {n: row.n})")
                .load_csv
                .len()
                == 1
        );
        assert!(
            allow("RETURN 'CREATE DATABASE x; CALL dbms.security.createUser()' AS text")
                .admin
                .is_empty()
        );
        assert!(
            allow("MATCH (n) RETURN n // CREATE DATABASE x")
                .admin
                .is_empty()
        );
        assert!(allow("MATCH (n) RETURN n;").statements == 1);
        assert!(
            allow("RETURN 1.5 AS x, 2 AS y")
                .classes
                .contains(&Class::Read)
        );
    }

    #[test]
    fn admin_statements_are_denied_in_every_disguise() {
        for query in [
            "CREATE DATABASE evil",
            "create database evil",
            "CrEaTe DaTaBaSe evil",
            "CREATE /* harmless */ DATABASE evil",
            "CREATE // line comment\n DATABASE evil",
            "CREATE OR REPLACE DATABASE evil",
            "CREATE COMPOSITE DATABASE evil",
            "DROP DATABASE neo4j",
            "CREATE USER mallory SET PASSWORD 'x'",
            "ALTER CURRENT USER SET PASSWORD FROM 'a' TO 'b'",
            "CREATE ROLE r",
            "GRANT ALL ON DATABASE * TO PUBLIC",
            "DENY READ {*} ON GRAPH * TO r",
            "REVOKE ROLE admin FROM mallory",
            "SHOW USERS",
            "SHOW ALL PRIVILEGES",
            "SHOW SETTINGS",
            "TERMINATE TRANSACTIONS 'x'",
            "USE system MATCH (n) RETURN n",
            "STOP DATABASE neo4j",
        ] {
            assert_eq!(deny(query).rule, "admin", "{query}");
        }
    }

    #[test]
    fn dangerous_procedures_are_denied_in_every_disguise() {
        for (query, rule) in [
            (
                "CALL dbms.security.createUser('m', 'p', false)",
                "procedure",
            ),
            (
                "call DBMS.Security.CreateUser('m', 'p', false)",
                "procedure",
            ),
            (
                "CALL `dbms`.`security`.`createUser`('m', 'p', false)",
                "procedure",
            ),
            (
                "CALL `dbms.security.createUser`('m', 'p', false)",
                "procedure",
            ),
            (
                "CALL `\\u0064bms`.security.createUser('m','p',false)",
                "procedure",
            ),
            (
                "CALL dbms . security . createUser('m','p',false)",
                "procedure",
            ),
            ("CALL /* x */ dbms.setConfigValue('a', 'b')", "procedure"),
            (
                "CALL apoc.cypher.run('CREATE DATABASE evil', {})",
                "procedure",
            ),
            (
                "CALL apoc.cypher.runWrite('MATCH (n) DETACH DELETE n', {})",
                "procedure",
            ),
            (
                "RETURN apoc.cypher.runFirstColumnSingle('MATCH (n) DETACH DELETE n', {})",
                "function",
            ),
            (
                "WITH 1 AS x RETURN `apoc`.cypher.runFirstColumnMany('x', {}) AS y",
                "function",
            ),
            ("CALL apoc.load.json('http://evil.example/x')", "procedure"),
            ("CALL apoc.import.csv([], [], {})", "procedure"),
            ("CALL apoc.export.csv.all('/tmp/x.csv', {})", "procedure"),
            (
                "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
                "procedure",
            ),
            ("CALL { CALL dbms.killQueries(['1']) }", "procedure"),
            (
                "MATCH (n) CALL { WITH n CALL apoc.cypher.doIt('x', {}) YIELD value RETURN value } RETURN 1",
                "procedure",
            ),
            ("CALL some.unknown.proc()", "procedure"),
        ] {
            assert_eq!(deny(query).rule, rule, "{query}");
        }
    }

    #[test]
    fn load_csv_only_from_files() {
        for query in [
            "LOAD CSV FROM 'https://evil.example/x.csv' AS r RETURN r",
            "LOAD CSV WITH HEADERS FROM \"http://evil.example/x.csv\" AS r RETURN r",
            "LOAD CSV FROM 'ht' + 'tp://evil.example' AS r RETURN r",
            "LOAD CSV FROM '\\u0068ttp://evil.example' AS r RETURN r",
            "LOAD CSV FROM $url AS r RETURN r",
        ] {
            assert_eq!(deny(query).rule, "load-csv", "{query}");
        }
        let param = |name: &str| (name == "url").then(|| "file:///data.csv".to_string());
        assert!(
            Policy::default()
                .check("LOAD CSV FROM $url AS r RETURN r", &param)
                .is_ok()
        );
        let param = |name: &str| (name == "url").then(|| "http://x".to_string());
        assert!(
            Policy::default()
                .check("LOAD CSV FROM $url AS r RETURN r", &param)
                .is_err()
        );
    }

    #[test]
    fn one_statement_per_call_and_unparseable_text_is_denied() {
        assert_eq!(
            deny("MATCH (n) RETURN n; DROP DATABASE neo4j").rule,
            "multiple-statements"
        );
        assert_eq!(
            deny("MATCH (n) RETURN n; MATCH (m) DETACH DELETE m").rule,
            "multiple-statements"
        );
        assert_eq!(deny("RETURN 'unterminated").rule, "unparseable");
        assert_eq!(deny("MATCH (n) /* open comment").rule, "unparseable");
        assert_eq!(deny("CREATE DATA\\u0042ASE x").rule, "unparseable");
    }

    #[test]
    fn grants_narrow_and_widen_the_policy() {
        let read_only = Policy::new([Class::Read], vec![], vec![]);
        assert_eq!(
            read_only
                .check("CREATE (:X)", &|_| None)
                .expect_err("write")
                .rule,
            "write"
        );
        assert_eq!(
            read_only
                .check("MERGE (x:X {id: 1})", &|_| None)
                .expect_err("write")
                .rule,
            "write"
        );
        assert_eq!(
            read_only
                .check("CREATE INDEX i FOR (x:X) ON (x.id)", &|_| None)
                .expect_err("schema")
                .rule,
            "schema"
        );
        assert!(read_only.check("MATCH (x) RETURN x", &|_| None).is_ok());

        let widened = Policy::new(
            [Class::Read, Class::Write],
            vec!["apoc.periodic.iterate".into()],
            vec!["db.labels".into()],
        );
        assert!(
            widened
                .check("CALL apoc.periodic.iterate('a', 'b', {})", &|_| None)
                .is_ok()
        );
        assert_eq!(
            widened
                .check("CALL db.labels()", &|_| None)
                .expect_err("narrowed")
                .rule,
            "procedure"
        );
    }

    #[test]
    fn graphmig_history_and_lock_are_out_of_reach() {
        for query in [
            "MATCH (h:__GraphmigMigration) DETACH DELETE h",
            "MATCH (l:`__GraphmigLock`) SET l.owner = 'me'",
            "MATCH (n) WHERE n:__graphmigmigration RETURN n",
        ] {
            assert_eq!(deny(query).rule, "reserved", "{query}");
        }
    }

    #[test]
    fn denial_codes_name_the_rule() {
        assert_eq!(deny("SHOW USERS").code(), "graphmig.Policy.Admin");
        assert_eq!(
            deny("RETURN 1; RETURN 2").code(),
            "graphmig.Policy.MultipleStatements"
        );
    }
}
