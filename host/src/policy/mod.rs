//! The Cypher policy: classifies every statement a guest sends (read, write, schema,
//! admin, LOAD CSV, the procedures and functions it calls) and decides whether it
//! may run.
//!
//! Classification fails closed. The text is lexed by Cypher's own rules
//! ([`lexer`]), schema commands are read by a closed grammar of their own
//! ([`commands`]), and everything else by a real parser, the `decypher` crate,
//! whose syntax tree is walked in full ([`tree`]). A statement that any of them
//! does not read to its end is denied as `unparsed`, with the position and the
//! construct; it never reaches the database.
//!
//! The policy is the second line. The first is the server: migrations run as a
//! user that cannot administer it, and graphmig's history and lock live in a
//! database of their own (README, "The sandbox").

mod commands;
pub use commands::{Ddl, Requirement};
mod lexer;
mod tree;

use std::collections::BTreeSet;
use std::fmt;

use lexer::{Token, line_col};

/// What a statement may do, by class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Reads data or schema.
    Read,
    /// Writes data.
    Write,
    /// Creates or drops indexes and constraints.
    Schema,
    /// Reads files or URLs with `LOAD CSV` (only from the allowed prefixes).
    LoadCsv,
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
            Class::LoadCsv => "load-csv",
            Class::Admin => "admin",
        }
    }

    /// Parses a name from `graphmig.toml`.
    pub fn parse(text: &str) -> Option<Class> {
        match text {
            "read" => Some(Class::Read),
            "write" => Some(Class::Write),
            "schema" => Some(Class::Schema),
            "load-csv" => Some(Class::LoadCsv),
            "admin" => Some(Class::Admin),
            _ => None,
        }
    }
}

/// What a statement does, as far as the policy is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    /// Every class of operation found.
    pub classes: BTreeSet<Class>,
    /// The admin clauses found, such as `CREATE USER` or `USE`.
    pub admin: Vec<String>,
    /// Procedures called with `CALL`, lowercased dotted names.
    pub procedures: Vec<String>,
    /// Functions invoked, lowercased (dotted where namespaced).
    pub functions: Vec<String>,
    /// Literal sources of `LOAD CSV` clauses.
    pub load_csv: Vec<String>,
    /// Number of statements in the text (at most one passes the check).
    pub statements: usize,
    /// `CALL { ... } IN TRANSACTIONS`, which commits on its own (auto-commit).
    pub in_transactions: Option<InTransactions>,
    reserved: Vec<(String, usize)>,
    computed_csv: Option<usize>,
    positions: Vec<(String, usize)>,
}

/// A `CALL { ... } IN TRANSACTIONS` found in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InTransactions {
    /// Where it starts (a byte offset).
    pub at: usize,
    /// Its `ON ERROR` mode, uppercased (`CONTINUE`, `BREAK`, `FAIL`), if given.
    pub on_error: Option<String>,
}

/// Why a statement was denied: the rule and what triggered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The rule's name: `unparsed`, `unsupported` (a form the parser does not
    /// read, named), `multiple-statements`, `reserved`,
    /// `dynamic-label`, `admin`, `write`, `schema`, `read`, `load-csv`,
    /// `procedure`, `function`.
    pub rule: &'static str,
    /// What matched, and where.
    pub detail: String,
}

impl Denial {
    fn new(rule: &'static str, detail: impl Into<String>) -> Denial {
        Denial {
            rule,
            detail: detail.into(),
        }
    }

    /// The status code given to the guest: `graphmig.Policy.<Rule>`, except
    /// `graphmig.Unsupported` for a form graphmig does not carry out (the
    /// same code a target that lacks a feature gets).
    pub fn code(&self) -> String {
        match self.rule {
            "unsupported" => "graphmig.Unsupported".into(),
            rule => rule_code(rule),
        }
    }
}

/// The status code of a denial by `rule` (`load-csv` → `graphmig.Policy.LoadCsv`).
pub fn rule_code(rule: &str) -> String {
    let rule: String = rule
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

/// Procedures and namespaced functions allowed by default. They read, except those
/// [`WRITING`] names. Procedures that take labels, types or keys as text
/// (`apoc.create.*`, `apoc.refactor.*`) are not here: allow them in `procedures`
/// if you trust what your migrations pass them.
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
    "coll.*",
    "apoc.coll.*",
    "apoc.map.*",
    "apoc.text.*",
    "apoc.convert.*",
    "apoc.number.*",
    "apoc.math.*",
    "apoc.date.*",
    "apoc.temporal.*",
    "apoc.node.*",
    "apoc.nodes.*",
    "apoc.path.*",
];

/// Procedures and functions that write, wherever they are allowed: a migration
/// that may not write may not call them. A procedure the configuration allows and
/// this list does not know also counts as writing.
pub const WRITING: &[&str] = &[
    "db.create.*",
    "apoc.create.*",
    "apoc.refactor.*",
    "apoc.merge.*",
    "apoc.atomic.*",
    "apoc.lock.*",
    "apoc.nodes.delete",
    "apoc.nodes.link",
    "apoc.nodes.collapse",
    "apoc.convert.setjsonproperty",
    "apoc.periodic.*",
    "apoc.cypher.*",
    "apoc.do.*",
    "apoc.trigger.*",
    "apoc.import.*",
];

/// Procedures that change the schema.
const SCHEMA_CHANGING: &[&str] = &[
    "db.resampleindex",
    "db.resampleoutdatedindexes",
    "apoc.schema.*",
];

/// Cypher's built-in functions without a namespace (Neo4j 5 and ArcadeDB). Any
/// other function without a namespace is denied: a server may map unknown names
/// to functions of its own.
const BUILTIN_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "all",
    "any",
    "asin",
    "atan",
    "atan2",
    "avg",
    "btrim",
    "ceil",
    "char_length",
    "character_length",
    "coalesce",
    "collect",
    "cos",
    "cosh",
    "cot",
    "coth",
    "count",
    "date",
    "datetime",
    "degrees",
    "duration",
    "e",
    "elementid",
    "endnode",
    "exists",
    "exp",
    "file",
    "floor",
    "haversin",
    "head",
    "id",
    "isempty",
    "isnan",
    "keys",
    "labels",
    "last",
    "left",
    "length",
    "linenumber",
    "localdatetime",
    "localtime",
    "log",
    "log10",
    "lower",
    "ltrim",
    "max",
    "min",
    "nodes",
    "none",
    "normalize",
    "nullif",
    "percentilecont",
    "percentiledisc",
    "pi",
    "point",
    "properties",
    "radians",
    "rand",
    "randomuuid",
    "range",
    "reduce",
    "relationships",
    "replace",
    "reverse",
    "right",
    "round",
    "rtrim",
    "sign",
    "sin",
    "single",
    "sinh",
    "size",
    "split",
    "sqrt",
    "startnode",
    "stdev",
    "stdevp",
    "substring",
    "sum",
    "tail",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "toboolean",
    "tobooleanlist",
    "tobooleanornull",
    "tofloat",
    "tofloatlist",
    "tofloatornull",
    "tointeger",
    "tointegerlist",
    "tointegerornull",
    "tolower",
    "tostring",
    "tostringlist",
    "tostringornull",
    "toupper",
    "trim",
    "type",
    "upper",
    "valuetype",
    "vector",
    "vector_dimension_count",
    "vector_distance",
    "vector_norm",
    "shortestpath",
    "allshortestpaths",
    "distance",
];

/// A policy: which classes may run, which procedures may be called, and where
/// `LOAD CSV` may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    allow: BTreeSet<Class>,
    extra_allowed: Vec<String>,
    extra_denied: Vec<String>,
    load_csv_prefixes: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            allow: [Class::Read, Class::Write, Class::Schema].into(),
            extra_allowed: Vec::new(),
            extra_denied: Vec::new(),
            load_csv_prefixes: Vec::new(),
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

fn position(text: &str, at: usize) -> String {
    let (line, col) = line_col(text, at);
    format!("line {line}, column {col}")
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
            load_csv_prefixes: Vec::new(),
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

    /// This policy with `prefixes` as the URL prefixes `LOAD CSV` may read from.
    pub fn with_load_csv_prefixes(mut self, prefixes: Vec<String>) -> Policy {
        self.load_csv_prefixes = prefixes;
        self
    }

    /// The classes this policy allows.
    pub fn allowed_classes(&self) -> &BTreeSet<Class> {
        &self.allow
    }

    /// The URL prefixes `LOAD CSV` may read from.
    pub fn load_csv_prefixes(&self) -> &[String] {
        &self.load_csv_prefixes
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

    fn function_allowed(&self, name: &str) -> bool {
        if name.contains('.') {
            return self.procedure_allowed(name);
        }
        if self.extra_denied.iter().any(|p| matches(p, name)) {
            return false;
        }
        BUILTIN_FUNCTIONS.contains(&name) || self.extra_allowed.iter().any(|p| matches(p, name))
    }

    /// Classifies `query` and checks it against this policy.
    pub fn check(&self, query: &str) -> Result<Classification, Denial> {
        let classification = classify(query)?;
        let at = |name: &str| {
            classification
                .positions
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, at)| format!(" (at {})", position(query, *at)))
                .unwrap_or_default()
        };
        if let Some((name, at)) = classification.reserved.first() {
            return Err(Denial::new(
                "reserved",
                format!(
                    "`{name}` at {} belongs to graphmig's history, lock or tags",
                    position(query, *at)
                ),
            ));
        }
        if let Some(clause) = classification.admin.first()
            && !self.allow.contains(&Class::Admin)
        {
            return Err(Denial::new(
                "admin",
                format!("`{clause}` administers the server"),
            ));
        }
        for class in [Class::Schema, Class::Write, Class::LoadCsv, Class::Read] {
            if classification.classes.contains(&class) && !self.allow.contains(&class) {
                let detail = if class == Class::LoadCsv {
                    "LOAD CSV is not allowed; allow it with `allow = [..., \"load-csv\"]` and \
                     the URL prefixes it may read in `load-csv = [...]`"
                        .to_string()
                } else {
                    format!("this migration may not run {} statements", class.as_str())
                };
                return Err(Denial::new(class.as_str(), detail));
            }
        }
        for name in &classification.procedures {
            if !self.procedure_allowed(name) {
                return Err(Denial::new(
                    "procedure",
                    format!("procedure `{name}`{} is not allowed", at(name)),
                ));
            }
        }
        for name in &classification.functions {
            if !self.function_allowed(name) {
                return Err(Denial::new(
                    "function",
                    format!("function `{name}`{} is not allowed", at(name)),
                ));
            }
        }
        if let Some(offset) = classification.computed_csv {
            return Err(Denial::new(
                "load-csv",
                format!(
                    "LOAD CSV from a computed source at {}: only a string literal can be checked",
                    position(query, offset)
                ),
            ));
        }
        for url in &classification.load_csv {
            self.check_csv_url(url)?;
        }
        Ok(classification)
    }

    fn check_csv_url(&self, url: &str) -> Result<(), Denial> {
        let deny = |why: &str| {
            Err(Denial::new(
                "load-csv",
                format!("LOAD CSV from `{url}`: {why}"),
            ))
        };
        let lower = url.to_ascii_lowercase();
        if lower.contains("..") || lower.contains("%2e") || url.contains('\\') {
            return deny("`..` and encoded dots are refused");
        }
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return deny("control characters and spaces are refused");
        }
        if let Some(after) = lower.strip_prefix("file://")
            && !after.starts_with('/')
        {
            return deny("a file: URL with a host is refused (it is a network path)");
        }
        if self
            .load_csv_prefixes
            .iter()
            .any(|p| url.starts_with(p.as_str()))
        {
            Ok(())
        } else if self.load_csv_prefixes.is_empty() {
            deny("no URL prefix is allowed (set `load-csv = [...]` in [policy])")
        } else {
            deny(&format!(
                "not under an allowed prefix ({})",
                self.load_csv_prefixes.join(", ")
            ))
        }
    }
}

fn unparsed(query: &str, at: usize, what: &str) -> Denial {
    Denial::new(
        "unparsed",
        format!(
            "cannot read {what} at {}; graphmig denies what it cannot parse",
            position(query, at)
        ),
    )
}

fn class_of(name: &str) -> Class {
    if SCHEMA_CHANGING.iter().any(|p| matches(p, name)) {
        Class::Schema
    } else if WRITING.iter().any(|p| matches(p, name))
        || !DEFAULT_ALLOWED.iter().any(|p| matches(p, name))
    {
        Class::Write
    } else {
        Class::Read
    }
}

/// What a schema statement creates or drops, read by the schema grammar the
/// policy checks it with; `None` for any other statement, or one it cannot read.
pub fn schema_command(query: &str) -> Option<commands::Ddl> {
    let lexed = lexer::lex(query).ok()?;
    let tokens = match lexed.tokens.split_last() {
        Some((last, rest)) if last.is(';') => rest,
        _ => &lexed.tokens[..],
    };
    if !commands::looks_like_ddl(tokens) {
        return None;
    }
    commands::ddl(tokens).ok()
}

/// Classifies one statement (a trailing `;` is allowed), or says why it cannot.
pub fn classify(query: &str) -> Result<Classification, Denial> {
    let lexed = lexer::lex(query).map_err(|e| unparsed(query, e.at, &e.what))?;
    let tokens = match lexed.tokens.split_last() {
        Some((last, rest)) if last.is(';') => rest,
        _ => &lexed.tokens[..],
    };
    let mut out = Classification {
        statements: 1,
        ..Classification::default()
    };
    if tokens.iter().any(|t| t.is(';')) {
        let separators = lexed.tokens.iter().filter(|t| t.is(';')).count();
        out.statements = separators + usize::from(!tokens.is_empty());
        return Err(Denial::new(
            "multiple-statements",
            format!(
                "{} statements in one call; send one statement per run-cypher call",
                out.statements
            ),
        ));
    }
    if tokens.is_empty() {
        return Err(unparsed(query, 0, "an empty statement"));
    }

    if commands::looks_like_ddl(tokens) {
        let ddl = commands::ddl(tokens).map_err(|m| {
            let at = tokens.get(m.at).map_or(query.len(), |t| t.span.start);
            unparsed(
                query,
                at,
                &format!("this schema command (expected {})", m.expected),
            )
        })?;
        out.classes.insert(Class::Schema);
        for label in ddl.labels.iter().filter(|l| tree::reserved_label(l)) {
            out.reserved.push((label.clone(), 0));
        }
        for key in ddl.properties.iter().filter(|k| tree::reserved_property(k)) {
            out.reserved.push((key.clone(), 0));
        }
        return Ok(out);
    }
    if let Some(reads) = commands::bare_show(tokens) {
        if reads {
            out.classes.insert(Class::Read);
        } else {
            let words: Vec<String> = tokens.iter().filter_map(Token::keyword).collect();
            out.classes.insert(Class::Admin);
            out.admin.push(words.join(" "));
        }
        return Ok(out);
    }

    // Named before the parser's text is rewritten: for statements it cannot read.
    let admin_command = commands::admin_command(tokens);
    let unsupported_form = commands::unsupported_form(tokens);
    let mut lexed = lexed;
    let dynamic_denial = |at: usize| {
        Denial::new(
            "dynamic-label",
            format!(
                "a label or type named by an expression at {}: only a string literal \
                 (`$('Name')`) can be checked",
                position(query, at)
            ),
        )
    };
    let literals = lexer::rewrite_literal_dynamic_labels(&mut lexed).map_err(dynamic_denial)?;
    for (literal, at) in literals {
        if literal.unknown_escape {
            return Err(Denial::new(
                "dynamic-label",
                format!(
                    "a dynamic label at {} whose string holds an escape Cypher does not know",
                    position(query, at)
                ),
            ));
        }
        if tree::reserved_label(&literal.value) {
            out.reserved.push((literal.value, at));
        }
    }
    let findings = match tree::walk(&lexed) {
        Ok(findings) => findings,
        Err(refusal) => {
            if let Some(command) = admin_command {
                out.classes.insert(Class::Admin);
                out.admin.push(command);
                return Ok(out);
            }
            return Err(match refusal {
                tree::Refusal::Unparsed { at, what } => match unsupported_form {
                    Some(form) => Denial::new(
                        "unsupported",
                        format!(
                            "graphmig's Cypher reader does not know {form}; it denies what \
                             it cannot parse"
                        ),
                    ),
                    None => unparsed(query, at, &what),
                },
                tree::Refusal::Dynamic { at, what: "label" } => dynamic_denial(at),
                tree::Refusal::Dynamic { at, what } => Denial::new(
                    "dynamic-label",
                    format!(
                        "a {what} named by an expression at {}: only a string literal can be checked",
                        position(query, at)
                    ),
                ),
            });
        }
    };
    out.statements = findings.statements.max(1);
    if findings.writes {
        out.classes.insert(Class::Write);
    }
    if !findings.admin.is_empty() {
        out.classes.insert(Class::Admin);
        out.admin = findings.admin;
    }
    for (name, at) in findings.procedures {
        out.classes.insert(class_of(&name));
        out.positions.push((name.clone(), at));
        out.procedures.push(name);
    }
    for (name, at) in findings.functions {
        if name.contains('.') {
            let class = class_of(&name);
            if class != Class::Read {
                out.classes.insert(class);
            }
        }
        out.positions.push((name.clone(), at));
        out.functions.push(name);
    }
    for source in findings.load_csv {
        out.classes.insert(Class::LoadCsv);
        match source {
            // The walk passes on only literals without unknown escapes.
            Ok(url) => out.load_csv.push(url.value),
            Err(at) => out.computed_csv = Some(at),
        }
    }
    out.reserved.extend(findings.reserved);
    out.in_transactions = findings.in_transactions;
    if out.classes.is_empty() || findings.shows || out.classes.contains(&Class::LoadCsv) {
        out.classes.insert(Class::Read);
    }
    Ok(out)
}

#[cfg(test)]
mod probes;
