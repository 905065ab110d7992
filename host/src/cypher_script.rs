//! Plain `.cypher` migrations: splitting a file into statements the way
//! neo4j-migrations does (`;` at the end of a line), with comments dropped and the
//! line of every statement kept for error messages.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// One statement of a Cypher file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptStatement {
    /// The statement, comments removed and surrounding whitespace trimmed.
    pub text: String,
    /// The line (from 1) it starts on.
    pub line: u32,
    /// A `// graphmig: backfill ...` directive just above it: the statement is
    /// then the backfill's write.
    pub backfill: Option<BackfillDirective>,
}

/// `// graphmig: backfill label = L, key = k[, chunk-size = n][, where = ...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillDirective {
    /// The label to page through.
    pub label: String,
    /// The property to page by.
    pub key: String,
    /// A condition on `n` (the rest of the line after `where =`).
    pub filter: String,
    /// Keys per chunk; 0 for `[backfill] chunk-size`.
    pub chunk_size: u32,
}

/// How a Cypher file's statements commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionMode {
    /// All in the migration's one transaction (the default).
    #[default]
    PerMigration,
    /// Each statement commits on its own, recorded with its hash; a failed
    /// migration resumes at the failed statement.
    PerStatement,
}

/// A parsed Cypher file.
#[derive(Debug, Clone)]
pub struct CypherScript {
    /// The file.
    pub path: PathBuf,
    /// Its statements, in order.
    pub statements: Vec<ScriptStatement>,
    /// From the header directive `// graphmig: transaction = ...`.
    pub transaction: TransactionMode,
}

/// The prefix of a directive line: `// graphmig: key = value`.
const DIRECTIVE: &str = "graphmig:";

impl CypherScript {
    /// Parses the text of the file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<CypherScript, Error> {
        let statements = split(text).map_err(|(line, message)| Error::InvalidCypherFile {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        if statements.is_empty() {
            return Err(Error::InvalidCypherFile {
                path: path.to_path_buf(),
                line: 1,
                message: "the file has no statements".into(),
            });
        }
        let mut statements = statements;
        let transaction = directives(text, &mut statements).map_err(|(line, message)| {
            Error::InvalidCypherFile {
                path: path.to_path_buf(),
                line,
                message,
            }
        })?;
        Ok(CypherScript {
            path: path.to_path_buf(),
            statements,
            transaction,
        })
    }

    /// Where statement `statement` sits, as `file:line`.
    pub fn location(&self, statement: &ScriptStatement) -> String {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string());
        format!("{name}:{}", statement.line)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Splits `text` into statements. A `;` ends a statement only where nothing but
/// blanks or a `//` comment follows it on its line, outside strings and comments;
/// a `;` inside a line stays in the statement (and the policy's one-statement
/// rule then refuses it). Errors carry the line where the problem starts.
fn split(text: &str) -> Result<Vec<ScriptStatement>, (u32, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut start_line: Option<u32> = None;
    let mut line: u32 = 1;
    let mut state = State::Code;
    let mut opened_at = 1;
    let mut i = 0;

    let mut finish = |current: &mut String, start_line: &mut Option<u32>| {
        let text = current.trim().to_string();
        if let (false, Some(line)) = (text.is_empty(), *start_line) {
            statements.push(ScriptStatement {
                text,
                line,
                backfill: None,
            });
        }
        current.clear();
        *start_line = None;
    };

    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match state {
            State::Code => match c {
                '/' if next == Some('/') => {
                    state = State::LineComment;
                    i += 2;
                    continue;
                }
                '/' if next == Some('*') => {
                    state = State::BlockComment;
                    opened_at = line;
                    // Keep the tokens on either side apart.
                    current.push(' ');
                    i += 2;
                    continue;
                }
                ';' if ends_line(&chars[i + 1..]) => {
                    finish(&mut current, &mut start_line);
                }
                '\'' | '"' | '`' => {
                    state = State::Quoted(c);
                    opened_at = line;
                    start_line.get_or_insert(line);
                    current.push(c);
                }
                _ => {
                    if !c.is_whitespace() {
                        start_line.get_or_insert(line);
                    }
                    current.push(c);
                }
            },
            State::Quoted(quote) => {
                current.push(c);
                if c == '\\' && quote != '`' {
                    if let Some(escaped) = next {
                        current.push(escaped);
                        if escaped == '\n' {
                            line += 1;
                        }
                        i += 2;
                        continue;
                    }
                } else if c == quote {
                    // A doubled backtick is an escaped backtick inside a name.
                    if quote == '`' && next == Some('`') {
                        current.push('`');
                        i += 2;
                        continue;
                    }
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                    current.push('\n');
                }
            }
            State::BlockComment => {
                if c == '*' && next == Some('/') {
                    state = State::Code;
                    i += 2;
                    continue;
                }
                if c == '\n' {
                    current.push('\n');
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
        i += 1;
    }
    match state {
        State::Quoted(q) => {
            return Err((
                opened_at,
                format!("a {q}-quoted string or name is never closed"),
            ));
        }
        State::BlockComment => {
            return Err((opened_at, "a /* comment is never closed".into()));
        }
        State::Code | State::LineComment => {}
    }
    finish(&mut current, &mut start_line);
    Ok(statements)
}

/// Reads the `// graphmig: ...` lines: `transaction = ...` in the header (the
/// comment lines before the first statement), `backfill ...` just above the
/// statement it makes a backfill. Anything else, or either out of place, is an
/// error: a mode the host did not understand is not ignored.
fn directives(
    text: &str,
    statements: &mut [ScriptStatement],
) -> Result<TransactionMode, (u32, String)> {
    let first_statement = statements.first().map_or(u32::MAX, |s| s.line);
    let mut mode = TransactionMode::default();
    for (number, line) in (1u32..).zip(text.lines()) {
        let Some(comment) = line.trim_start().strip_prefix("//") else {
            continue;
        };
        let Some(directive) = comment.trim_start().strip_prefix(DIRECTIVE) else {
            continue;
        };
        let directive = directive.trim();
        if let Some(rest) = directive.strip_prefix("backfill") {
            let parsed = backfill_directive(rest).map_err(|m| (number, m))?;
            // The statement right below, with only comments between.
            let below = statements.iter_mut().find(|s| s.line > number);
            let between_is_comment = below.as_ref().is_some_and(|s| {
                text.lines()
                    .skip(number as usize)
                    .take((s.line - number - 1) as usize)
                    .all(|l| l.trim().is_empty() || l.trim_start().starts_with("//"))
            });
            match below {
                Some(statement) if between_is_comment && statement.backfill.is_none() => {
                    statement.backfill = Some(parsed);
                }
                _ => {
                    return Err((
                        number,
                        "a `backfill` directive goes on the line just above the statement it \
                         runs in chunks (one directive per statement)"
                            .into(),
                    ));
                }
            }
            continue;
        }
        if number >= first_statement {
            return Err((
                number,
                "a `// graphmig: transaction` directive belongs in the header, before the first \
                 statement"
                    .into(),
            ));
        }
        let (key, value) = directive
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| (number, format!("`{directive}` is not `key = value`")))?;
        match (key, value) {
            ("transaction", "per-migration") => mode = TransactionMode::PerMigration,
            ("transaction", "per-statement") => mode = TransactionMode::PerStatement,
            ("transaction", other) => {
                return Err((
                    number,
                    format!("transaction = `{other}`: use per-migration or per-statement"),
                ));
            }
            (other, _) => {
                return Err((
                    number,
                    format!("unknown directive `{other}` (known: transaction, backfill)"),
                ));
            }
        }
    }
    Ok(mode)
}

/// The part after `backfill`: `label = L, key = k, chunk-size = n, where = ...`
/// (`where` last: it takes the rest of the line).
fn backfill_directive(rest: &str) -> Result<BackfillDirective, String> {
    let mut directive = BackfillDirective {
        label: String::new(),
        key: String::new(),
        filter: String::new(),
        chunk_size: 0,
    };
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("backfill: `{rest}` is not `key = value`"))?;
        let key = key.trim();
        if key == "where" {
            directive.filter = after.trim().to_string();
            break;
        }
        let (value, next) = after.split_once(',').unwrap_or((after, ""));
        let value = value.trim();
        match key {
            "label" => directive.label = value.to_string(),
            "key" => directive.key = value.to_string(),
            "chunk-size" => {
                directive.chunk_size = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("backfill: chunk-size `{value}` is not a number above 0")
                })?;
            }
            other => {
                return Err(format!(
                    "backfill: unknown key `{other}` (known: label, key, chunk-size, where)"
                ));
            }
        }
        rest = next.trim();
    }
    if directive.label.is_empty() || directive.key.is_empty() {
        return Err("backfill: name the `label` and the `key` to page by".into());
    }
    Ok(directive)
}

/// Whether only blanks, or blanks and a `//` comment, follow on this line.
fn ends_line(rest: &[char]) -> bool {
    for (at, c) in rest.iter().enumerate() {
        match c {
            '\n' => return true,
            ' ' | '\t' | '\r' => {}
            '/' => return rest.get(at + 1) == Some(&'/'),
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(String, u32)> {
        split(text)
            .expect("valid")
            .into_iter()
            .map(|s| (s.text, s.line))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_at_line_end_and_keeps_lines() {
        let script = "// header comment\n\nCREATE (a:A {name: 'x'});\nMATCH (a:A)\n  SET a.y = 1;  \n\nMATCH (n) RETURN count(n)\n";
        assert_eq!(
            texts(script),
            [
                ("CREATE (a:A {name: 'x'})".to_string(), 3),
                ("MATCH (a:A)\n  SET a.y = 1".to_string(), 4),
                ("MATCH (n) RETURN count(n)".to_string(), 7),
            ]
        );
    }

    #[test]
    fn semicolons_in_strings_comments_and_mid_line_do_not_split() {
        let script = "CREATE (:A {s: 'a;\nb', t: \"x; // y\"}); // done; really\n/* block;\n comment; */ RETURN `we;ird`;\nRETURN 1; RETURN 2\n";
        let statements = texts(script);
        assert_eq!(statements.len(), 3, "{statements:?}");
        assert_eq!(statements[0].0, "CREATE (:A {s: 'a;\nb', t: \"x; // y\"})");
        assert_eq!(statements[1], ("RETURN `we;ird`".to_string(), 4));
        assert_eq!(statements[2], ("RETURN 1; RETURN 2".to_string(), 5));
    }

    #[test]
    fn escapes_inside_strings_do_not_close_them() {
        let statements = texts("RETURN 'it\\'s;'; \nRETURN \"a\\\"b\";\n");
        assert_eq!(statements[0].0, "RETURN 'it\\'s;'");
        assert_eq!(statements[1], ("RETURN \"a\\\"b\"".to_string(), 2));
    }

    #[test]
    fn comment_only_files_and_unclosed_strings_are_errors_with_a_line() {
        let path = Path::new("V1__x.cypher");
        let err = CypherScript::parse(path, "// nothing here\n/* or here */\n").expect_err("empty");
        assert!(err.to_string().contains("no statements"), "{err}");
        let err = CypherScript::parse(path, "RETURN 1;\n\nRETURN 'open;\n").expect_err("unclosed");
        let text = err.to_string();
        assert!(text.contains("V1__x.cypher:3"), "{text}");
        let err = CypherScript::parse(path, "RETURN 1;\n/* open\n").expect_err("comment");
        assert!(err.to_string().contains("V1__x.cypher:2"), "{err}");
    }

    #[test]
    fn reads_the_transaction_directive_of_the_header_and_refuses_others() {
        let path = Path::new("V1__x.cypher");
        let parse = |text: &str| CypherScript::parse(path, text);
        let script = parse("// graphmig: transaction = per-statement\nRETURN 1;\n").expect("ok");
        assert_eq!(script.transaction, TransactionMode::PerStatement);
        let script = parse("//graphmig:transaction=per-migration\nRETURN 1;\n").expect("ok");
        assert_eq!(script.transaction, TransactionMode::PerMigration);
        assert_eq!(
            parse("RETURN 1;\n").expect("ok").transaction,
            TransactionMode::PerMigration
        );
        for (text, line, words) in [
            (
                "// graphmig: transaction = sometimes\nRETURN 1;\n",
                1,
                "sometimes",
            ),
            (
                "// graphmig: isolation = serial\nRETURN 1;\n",
                1,
                "unknown directive",
            ),
            (
                "RETURN 1;\n// graphmig: transaction = per-statement\nRETURN 2;\n",
                2,
                "header",
            ),
            ("// graphmig: per-statement\nRETURN 1;\n", 1, "key = value"),
        ] {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(&format!("V1__x.cypher:{line}")), "{err}");
            assert!(err.contains(words), "{err}");
        }
    }

    #[test]
    fn a_backfill_directive_makes_the_statement_below_a_backfill() {
        let script = CypherScript::parse(
            Path::new("V1__x.cypher"),
            "RETURN 1;\n// graphmig: backfill label = Person, key = id, chunk-size = 500, where = n.a = 1, n.b <> 2\n// why\nUNWIND $batch AS k MATCH (p:Person {id: k}) SET p.x = 1;\n",
        )
        .expect("valid");
        assert_eq!(script.statements[0].backfill, None);
        assert_eq!(
            script.statements[1].backfill,
            Some(BackfillDirective {
                label: "Person".into(),
                key: "id".into(),
                filter: "n.a = 1, n.b <> 2".into(),
                chunk_size: 500,
            })
        );
    }

    #[test]
    fn windows_line_endings_split_too() {
        assert_eq!(
            texts("RETURN 1;\r\nRETURN 2;\r\n"),
            [("RETURN 1".to_string(), 1), ("RETURN 2".to_string(), 2)]
        );
    }
}
