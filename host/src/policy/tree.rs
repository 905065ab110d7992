//! Classification on the parse tree: every clause, call, label, property key and
//! string of a statement, read from the `decypher` crate's lossless syntax tree.
//!
//! The tree is trusted only once it is known to be whole: no syntax errors, no
//! error nodes, every byte of the text inside it (the crate can stop early without
//! saying so), and every string and backticked name exactly where the lexer found
//! it. Anything the walk does not recognise is refused, not skipped.

use std::collections::HashMap;
use std::ops::Range;

use decypher::syntax::{SyntaxKind as K, SyntaxNode, SyntaxToken};

use super::lexer::{Lexed, StringValue, TokenKind};

/// What the walk found in one statement.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    /// The statement writes data.
    pub writes: bool,
    /// The statement reads the schema catalogue (`SHOW INDEXES`, ...).
    pub shows: bool,
    /// Admin clauses (`USE`, `SHOW DATABASES`).
    pub admin: Vec<String>,
    /// Procedures called, lowercase dotted names, with their positions.
    pub procedures: Vec<(String, usize)>,
    /// Functions invoked, lowercase dotted names, with their positions.
    pub functions: Vec<(String, usize)>,
    /// `LOAD CSV` sources: the literal URL, or where a computed one is.
    pub load_csv: Vec<Result<StringValue, usize>>,
    /// Reserved names used, with their positions.
    pub reserved: Vec<(String, usize)>,
    /// `CALL { ... } IN TRANSACTIONS`: where, and its `ON ERROR` mode.
    pub in_transactions: Option<super::InTransactions>,
    /// Number of statements.
    pub statements: usize,
}

/// Why the tree cannot be trusted or the walk met something it refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The parser did not read the statement, or read it differently from Cypher.
    Unparsed {
        /// Byte offset.
        at: usize,
        /// What was not understood.
        what: String,
    },
    /// A label, type or property named by an expression rather than a literal.
    Dynamic {
        /// Byte offset.
        at: usize,
        /// What it names (`label`, `property`).
        what: &'static str,
    },
}

/// Whether a label or relationship type belongs to graphmig.
pub(crate) fn reserved_label(name: &str) -> bool {
    name.to_lowercase().starts_with("__graphmig")
}

/// Whether a property key belongs to graphmig (batch and refactoring tags).
pub(crate) fn reserved_property(name: &str) -> bool {
    name.to_lowercase().starts_with("_graphmig")
}

/// Whether a string literal names something of graphmig's: a second line behind
/// the separate history database, for labels and keys passed to functions as text.
pub(crate) fn reserved_string(value: &str) -> bool {
    let lower = value.to_lowercase();
    lower.contains("__graphmig") || lower.contains("_graphmig_")
}

fn unescape_backticks(text: &str) -> String {
    text.strip_prefix('`')
        .and_then(|t| t.strip_suffix('`'))
        .unwrap_or(text)
        .replace("``", "`")
}

fn is_trivia(kind: K) -> bool {
    matches!(kind, K::WHITESPACE | K::COMMENT)
}

fn significant_tokens(node: &SyntaxNode) -> Vec<SyntaxToken> {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !is_trivia(t.kind()))
        .collect()
}

fn start(node: &SyntaxNode) -> usize {
    u32::from(node.text_range().start()) as usize
}

fn token_range(token: &SyntaxToken) -> Range<usize> {
    let range = token.text_range();
    u32::from(range.start()) as usize..u32::from(range.end()) as usize
}

/// A dotted name (`apoc.cypher.run`, `` `apoc.cypher`.run ``) read from a name
/// node, lowercase, with backticks removed; keywords count as name parts.
fn dotted_name(node: &SyntaxNode) -> String {
    let mut name = String::new();
    for token in significant_tokens(node) {
        match token.kind() {
            K::DOT => name.push('.'),
            K::ESCAPED_IDENT => name.push_str(&unescape_backticks(token.text())),
            _ => name.push_str(token.text()),
        }
    }
    name.to_lowercase()
}

/// The dotted name of a procedure or function call, from its name node.
fn call_name(name: Option<SyntaxNode>, at: usize, what: &str) -> Result<String, Refusal> {
    name.map(|n| dotted_name(&n))
        .ok_or_else(|| Refusal::Unparsed {
            at,
            what: format!("a {what} call without a name"),
        })
}

/// Whether the label is used only to leave graphmig's nodes out: `WHERE NOT
/// n:__GraphmigMigration`, as a conjunct of the WHERE (never under OR or XOR).
fn excludes(label: &SyntaxNode) -> bool {
    let Some(not) = label.ancestors().find(|a| a.kind() == K::NOT_EXPR) else {
        return false;
    };
    let tokens = significant_tokens(&not);
    let shape = tokens.iter().map(|t| t.kind()).collect::<Vec<_>>();
    if !matches!(
        shape.as_slice(),
        [
            K::KW_NOT,
            K::IDENT | K::ESCAPED_IDENT,
            K::COLON,
            K::IDENT | K::ESCAPED_IDENT
        ]
    ) {
        return false;
    }
    let mut parent = not.parent();
    if parent.as_ref().is_some_and(|p| p.kind() == K::AND_EXPR) {
        parent = parent.and_then(|p| p.parent());
    }
    parent.is_some_and(|where_clause| {
        where_clause.kind() == K::WHERE_CLAUSE
            && where_clause
                .children()
                .all(|c| !matches!(c.kind(), K::OR_EXPR | K::XOR_EXPR))
    })
}

struct Walk<'a> {
    strings: HashMap<usize, (&'a Range<usize>, &'a StringValue)>,
    out: Findings,
}

impl Walk<'_> {
    fn string_at(&self, token: &SyntaxToken) -> Result<&StringValue, Refusal> {
        let range = token_range(token);
        match self.strings.get(&range.start) {
            Some((span, value)) if **span == range => Ok(value),
            _ => Err(Refusal::Unparsed {
                at: range.start,
                what: "a string the parser reads differently from Cypher".into(),
            }),
        }
    }

    /// The string literal that is all there is between the `open` and `close`
    /// tokens among `node`'s children, if that is what is there (and its value
    /// holds no escape the lexer does not know).
    fn literal_between(
        &self,
        node: &SyntaxNode,
        open: K,
        close: K,
    ) -> Option<Result<StringValue, Refusal>> {
        let mut inside = Vec::new();
        let mut open_seen = false;
        for element in node.children_with_tokens() {
            let kind = element.kind();
            if is_trivia(kind) {
                continue;
            }
            if !open_seen {
                open_seen = kind == open;
            } else if kind == close {
                break;
            } else {
                inside.push(element);
            }
        }
        let [only] = inside.as_slice() else {
            return None;
        };
        let tokens = significant_tokens(only.as_node()?);
        match tokens.as_slice() {
            [token] if token.kind() == K::STRING => match self.string_at(token) {
                Ok(value) if value.unknown_escape => None,
                Ok(value) => Some(Ok(value.clone())),
                Err(refusal) => Some(Err(refusal)),
            },
            _ => None,
        }
    }

    fn reserve(&mut self, name: String, at: usize) {
        self.out.reserved.push((name, at));
    }

    fn node(&mut self, node: &SyntaxNode) -> Result<(), Refusal> {
        let at = start(node);
        match node.kind() {
            K::ERROR => {
                return Err(Refusal::Unparsed {
                    at,
                    what: format!("`{}`", node.text()),
                });
            }
            K::STATEMENT => self.out.statements += 1,
            K::CREATE_CLAUSE
            | K::MERGE_CLAUSE
            | K::SET_CLAUSE
            | K::DELETE_CLAUSE
            | K::REMOVE_CLAUSE
            | K::FOREACH_CLAUSE => self.out.writes = true,
            K::IN_TRANSACTIONS => {
                self.out.writes = true;
                // The grammar reads `ON ERROR` and one word after it; any
                // other form is an error node, refused above.
                let words: Vec<String> = node
                    .text()
                    .to_string()
                    .split_whitespace()
                    .map(str::to_ascii_uppercase)
                    .collect();
                let on_error = words
                    .iter()
                    .position(|w| w == "ERROR")
                    .and_then(|i| words.get(i + 1))
                    .cloned();
                self.out
                    .in_transactions
                    .get_or_insert(super::InTransactions { at, on_error });
            }
            K::USE_CLAUSE => self.out.admin.push("USE".into()),
            K::SHOW_CLAUSE => {
                let kind = node
                    .children()
                    .find(|c| c.kind() == K::SHOW_KIND)
                    .map(|k| k.text().to_string().to_ascii_uppercase())
                    .unwrap_or_default();
                let words: Vec<&str> = kind.split_whitespace().collect();
                if matches!(
                    words.as_slice(),
                    ["INDEX"
                        | "INDEXES"
                        | "CONSTRAINT"
                        | "CONSTRAINTS"
                        | "FUNCTIONS"
                        | "PROCEDURES"]
                ) {
                    self.out.shows = true;
                } else {
                    self.out
                        .admin
                        .push(format!("SHOW {kind}").trim().to_string());
                }
            }
            K::CREATE_INDEX
            | K::DROP_INDEX
            | K::CREATE_CONSTRAINT
            | K::DROP_CONSTRAINT
            | K::SCHEMA_COMMAND
            | K::INDEX_KIND
            | K::CONSTRAINT_KIND
            | K::OPTIONS_CLAUSE
            | K::SCHEMA_NAME => {
                return Err(Refusal::Unparsed {
                    at,
                    what: "a schema command in a form graphmig's schema grammar does not accept"
                        .into(),
                });
            }
            K::STANDALONE_CALL | K::IN_QUERY_CALL => {
                let name = node.descendants().find(|d| d.kind() == K::PROCEDURE_NAME);
                self.out
                    .procedures
                    .push((call_name(name, at, "procedure")?, at));
            }
            K::FUNCTION_INVOCATION => {
                let name = node.children().find(|c| c.kind() == K::FUNCTION_NAME);
                self.out
                    .functions
                    .push((call_name(name, at, "function")?, at));
            }
            K::LOAD_CSV_CLAUSE => {
                let url = match self.literal_between(node, K::KW_FROM, K::KW_AS) {
                    Some(Ok(value)) => Ok(value),
                    Some(Err(refusal)) => return Err(refusal),
                    None => Err(at),
                };
                self.out.load_csv.push(url);
            }
            K::LABEL_NAME | K::REL_TYPE_NAME => {
                let name = dotted_name(node);
                if reserved_label(&name) && !excludes(node) {
                    self.reserve(name, at);
                }
            }
            K::PROPERTY_KEY_NAME => {
                let name = dotted_name(node);
                if reserved_property(&name) {
                    self.reserve(name, at);
                }
            }
            K::DYNAMIC_LABEL | K::DYNAMIC_REL_TYPE => {
                let tokens = significant_tokens(node);
                let literal = match tokens.as_slice() {
                    [dollar, open, value, close]
                        if dollar.kind() == K::DOLLAR
                            && open.kind() == K::L_PAREN
                            && value.kind() == K::STRING
                            && close.kind() == K::R_PAREN =>
                    {
                        self.string_at(value)?.clone()
                    }
                    _ => return Err(Refusal::Dynamic { at, what: "label" }),
                };
                if literal.unknown_escape {
                    return Err(Refusal::Dynamic { at, what: "label" });
                }
                if reserved_label(&literal.value) {
                    self.reserve(literal.value, at);
                }
            }
            K::DYNAMIC_PROPERTY => {
                let written = node
                    .ancestors()
                    .any(|a| matches!(a.kind(), K::SET_ITEM | K::REMOVE_ITEM));
                if written {
                    match self.literal_between(node, K::L_BRACKET, K::R_BRACKET) {
                        Some(Ok(key)) => {
                            if reserved_property(&key.value) {
                                self.reserve(key.value, at);
                            }
                        }
                        Some(Err(refusal)) => return Err(refusal),
                        None => {
                            return Err(Refusal::Dynamic {
                                at,
                                what: "property",
                            });
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn token(&mut self, token: &SyntaxToken) -> Result<(), Refusal> {
        match token.kind() {
            K::ERROR => Err(Refusal::Unparsed {
                at: token_range(token).start,
                what: format!("`{}`", token.text()),
            }),
            K::STRING => {
                let value = self.string_at(token)?.value.clone();
                if reserved_string(&value) {
                    self.reserve(value, token_range(token).start);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Parses the lexer's text and walks the whole tree.
pub(crate) fn walk(lexed: &Lexed) -> Result<Findings, Refusal> {
    let text = &lexed.parser_text;
    let parse = decypher::parse_cst(text);
    if let Some(error) = parse.errors.first() {
        return Err(Refusal::Unparsed {
            at: error.span.start,
            what: error.kind.to_string(),
        });
    }
    let end = u32::from(parse.tree.text_range().end()) as usize;
    if end != text.len() {
        let rest = text[end.min(text.len())..].trim_start();
        let at = text.len() - rest.len();
        let shown: String = rest.chars().take(40).collect();
        return Err(Refusal::Unparsed {
            at,
            what: format!("`{shown}` (the parser stopped before it)"),
        });
    }

    let mut strings = HashMap::new();
    let mut quoted = HashMap::new();
    for token in &lexed.tokens {
        match &token.kind {
            TokenKind::Str(value) => {
                strings.insert(token.span.start, (&token.span, value));
            }
            TokenKind::Quoted(_) => {
                quoted.insert(token.span.start, token.span.end);
            }
            TokenKind::Param(_) if text[token.span.clone()].starts_with("$`") => {
                quoted.insert(token.span.start + 1, token.span.end);
            }
            _ => {}
        }
    }
    let (mut tree_strings, mut tree_quoted) = (0, 0);
    let mut walk = Walk {
        strings,
        out: Findings::default(),
    };
    for element in parse.tree.descendants_with_tokens() {
        if let Some(node) = element.as_node() {
            walk.node(node)?;
        } else if let Some(token) = element.as_token() {
            match token.kind() {
                K::STRING => tree_strings += 1,
                K::ESCAPED_IDENT => {
                    tree_quoted += 1;
                    let range = token_range(token);
                    if quoted.get(&range.start) != Some(&range.end) {
                        return Err(Refusal::Unparsed {
                            at: range.start,
                            what: "a backticked name the parser reads differently from Cypher"
                                .into(),
                        });
                    }
                }
                _ => {}
            }
            walk.token(token)?;
        }
    }
    if tree_strings != walk.strings.len() || tree_quoted != quoted.len() {
        return Err(Refusal::Unparsed {
            at: 0,
            what: "strings or backticked names the parser reads differently from Cypher".into(),
        });
    }
    Ok(walk.out)
}
