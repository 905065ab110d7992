//! A lexer that splits Cypher text exactly where the server does, ahead of the parser.
//!
//! The parser crate has a lexer of its own, and a statement is only as safe as the
//! least faithful of the two views. So this pass decides, by Cypher's rules (Neo4j 5
//! and ArcadeDB alike), where strings, backticked names, comments and whitespace
//! are, and hands the parser a text in which comments and every kind of Cypher
//! whitespace (U+001C..U+001F and the Unicode spaces included) are plain spaces of
//! the same byte length, so positions stay those of the original. Any character the
//! server might read differently (control and format characters such as U+200B or
//! U+FEFF, a backslash outside a string) is refused here: what is not understood
//! is not passed on.

use std::ops::Range;

/// A token of Cypher text as this lexer sees it (comments and whitespace dropped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// An unquoted name or keyword, as written.
    Word(String),
    /// A backticked name, unescaped.
    Quoted(String),
    /// A string literal, decoded.
    Str(StringValue),
    /// A parameter (`$name`), by name.
    Param(String),
    /// A number literal.
    Number,
    /// Any other character (punctuation and operators), one at a time.
    Punct(char),
}

/// The decoded value of a string literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StringValue {
    /// The value with every escape the server knows decoded.
    pub value: String,
    /// Whether an escape the decoder does not know (`\q`) was kept as written:
    /// such a value cannot be trusted to be what the server sees.
    pub unknown_escape: bool,
}

/// A token and where it is in the text (byte offsets).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is.
    pub span: Range<usize>,
}

impl Token {
    /// The word in upper case, if this is an unquoted word.
    pub(crate) fn keyword(&self) -> Option<String> {
        match &self.kind {
            TokenKind::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// The name, quoted or not, as written (backticks removed).
    pub(crate) fn name(&self) -> Option<&str> {
        match &self.kind {
            TokenKind::Word(w) | TokenKind::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// Whether this is the punctuation character `c`.
    pub(crate) fn is(&self, c: char) -> bool {
        self.kind == TokenKind::Punct(c)
    }
}

/// A statement split into tokens, with the text the parser is given.
#[derive(Debug, Clone)]
pub(crate) struct Lexed {
    /// The tokens, in order.
    pub tokens: Vec<Token>,
    /// The original text with comments and whitespace made plain spaces.
    pub parser_text: String,
}

/// Why the text cannot be lexed: what and where (a byte offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Byte offset of the offending character.
    pub at: usize,
    /// What is wrong there.
    pub what: String,
}

/// Whether `c` is whitespace to Cypher (Neo4j 5's and ArcadeDB's lexers).
pub(crate) fn is_cypher_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{0B}'
            | '\u{0C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_name_part(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn describe(c: char) -> String {
    if c.is_ascii_graphic() {
        format!("`{c}`")
    } else {
        format!("U+{:04X}", c as u32)
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        let mut chars = self.text[self.pos..].chars();
        chars.next();
        chars.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat_while(&mut self, keep: impl Fn(char) -> bool) {
        while let Some(c) = self.peek() {
            if !keep(c) {
                break;
            }
            self.pos += c.len_utf8();
        }
    }
}

fn hex_escape(cursor: &mut Cursor<'_>, len: usize, at: usize) -> Result<char, LexError> {
    let start = cursor.pos;
    for _ in 0..len {
        match cursor.bump() {
            Some(c) if c.is_ascii_hexdigit() => {}
            _ => {
                return Err(LexError {
                    at,
                    what: "malformed unicode escape in a string".into(),
                });
            }
        }
    }
    u32::from_str_radix(&cursor.text[start..cursor.pos], 16)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| LexError {
            at,
            what: "unicode escape of no character in a string".into(),
        })
}

fn string(cursor: &mut Cursor<'_>, quote: char, start: usize) -> Result<StringValue, LexError> {
    let mut value = String::new();
    let mut unknown_escape = false;
    loop {
        let Some(c) = cursor.bump() else {
            return Err(LexError {
                at: start,
                what: "unterminated string".into(),
            });
        };
        match c {
            '\\' => {
                let at = cursor.pos - 1;
                match cursor.bump() {
                    Some('u') => value.push(hex_escape(cursor, 4, at)?),
                    Some('U') => value.push(hex_escape(cursor, 8, at)?),
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some('b') => value.push('\u{8}'),
                    Some('f') => value.push('\u{c}'),
                    Some(c @ ('\\' | '\'' | '"')) => value.push(c),
                    Some(other) => {
                        unknown_escape = true;
                        value.push('\\');
                        value.push(other);
                    }
                    None => {
                        return Err(LexError {
                            at: start,
                            what: "unterminated string".into(),
                        });
                    }
                }
            }
            c if c == quote => {
                return Ok(StringValue {
                    value,
                    unknown_escape,
                });
            }
            c => value.push(c),
        }
    }
}

fn quoted_name(cursor: &mut Cursor<'_>, start: usize) -> Result<String, LexError> {
    let mut value = String::new();
    loop {
        match cursor.bump() {
            None => {
                return Err(LexError {
                    at: start,
                    what: "unterminated backticked name".into(),
                });
            }
            Some('`') if cursor.peek() == Some('`') => {
                cursor.bump();
                value.push('`');
            }
            Some('`') => return Ok(value),
            Some(c) => value.push(c),
        }
    }
}

fn number(cursor: &mut Cursor<'_>) {
    let first = cursor.bump();
    if first == Some('0') && matches!(cursor.peek(), Some('x' | 'X')) {
        cursor.bump();
        cursor.eat_while(|c| c.is_ascii_hexdigit() || c == '_');
        return;
    }
    if first == Some('0') && matches!(cursor.peek(), Some('o' | 'O')) {
        cursor.bump();
        cursor.eat_while(|c| matches!(c, '0'..='7' | '_'));
        return;
    }
    cursor.eat_while(|c| c.is_ascii_digit() || c == '_');
    if cursor.peek() == Some('.') && cursor.peek_second().is_some_and(|c| c.is_ascii_digit()) {
        cursor.bump();
        cursor.eat_while(|c| c.is_ascii_digit() || c == '_');
    }
    if matches!(cursor.peek(), Some('e' | 'E')) {
        let rest = &cursor.text[cursor.pos + 1..];
        let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        if digits.starts_with(|c: char| c.is_ascii_digit()) {
            cursor.pos += 1 + (rest.len() - digits.len());
            cursor.eat_while(|c| c.is_ascii_digit() || c == '_');
        }
    }
}

/// Splits `text` into tokens by Cypher's rules, or says where it cannot.
pub(crate) fn lex(text: &str) -> Result<Lexed, LexError> {
    let mut cursor = Cursor { text, pos: 0 };
    let mut tokens = Vec::new();
    let mut blanks: Vec<Range<usize>> = Vec::new();
    while let Some(c) = cursor.peek() {
        let start = cursor.pos;
        let kind = match c {
            c if is_cypher_whitespace(c) => {
                cursor.bump();
                if c != ' ' {
                    blanks.push(start..cursor.pos);
                }
                continue;
            }
            '/' if cursor.peek_second() == Some('/') => {
                cursor.eat_while(|c| c != '\n' && c != '\r');
                blanks.push(start..cursor.pos);
                continue;
            }
            '/' if cursor.peek_second() == Some('*') => {
                cursor.pos += 2;
                match text[cursor.pos..].find("*/") {
                    Some(end) => cursor.pos += end + 2,
                    None => {
                        return Err(LexError {
                            at: start,
                            what: "unterminated comment".into(),
                        });
                    }
                }
                blanks.push(start..cursor.pos);
                continue;
            }
            '\'' | '"' => {
                cursor.bump();
                TokenKind::Str(string(&mut cursor, c, start)?)
            }
            '`' => {
                cursor.bump();
                TokenKind::Quoted(quoted_name(&mut cursor, start)?)
            }
            '$' => {
                cursor.bump();
                match cursor.peek() {
                    Some('`') => {
                        let at = cursor.pos;
                        cursor.bump();
                        TokenKind::Param(quoted_name(&mut cursor, at)?)
                    }
                    Some(c) if is_name_part(c) => {
                        let from = cursor.pos;
                        cursor.eat_while(is_name_part);
                        TokenKind::Param(text[from..cursor.pos].to_string())
                    }
                    _ => TokenKind::Punct('$'),
                }
            }
            c if c.is_ascii_digit() => {
                number(&mut cursor);
                TokenKind::Number
            }
            '.' if cursor.peek_second().is_some_and(|c| c.is_ascii_digit()) => {
                cursor.bump();
                cursor.eat_while(|c| c.is_ascii_digit() || c == '_');
                TokenKind::Number
            }
            c if is_name_start(c) => {
                cursor.eat_while(is_name_part);
                TokenKind::Word(text[start..cursor.pos].to_string())
            }
            c if c.is_ascii_punctuation() && c != '\\' => {
                cursor.bump();
                TokenKind::Punct(c)
            }
            c => {
                let what = if c == '\\' {
                    "a backslash outside a string".to_string()
                } else {
                    format!("the character {} outside a string or name", describe(c))
                };
                return Err(LexError { at: start, what });
            }
        };
        tokens.push(Token {
            kind,
            span: start..cursor.pos,
        });
    }
    check_nesting(&tokens)?;
    let mut parser_text = text.to_string();
    if !blanks.is_empty() {
        let mut bytes = parser_text.into_bytes();
        for range in blanks {
            bytes[range].fill(b' ');
        }
        // Only whole characters were replaced by ASCII spaces.
        parser_text = String::from_utf8(bytes).unwrap_or_default();
    }
    Ok(Lexed {
        tokens,
        parser_text,
    })
}

/// Rewrites every literal dynamic label or type (`n:$('Name')`) in the parser's
/// text into a backticked name of the same length, since the parser knows the
/// form only in some clauses; returns each literal, decoded, with its position,
/// so that the caller checks it as the name it is. A dynamic label that is not a
/// lone string literal is refused: `Err` holds where it is.
pub(crate) fn rewrite_literal_dynamic_labels(
    lexed: &mut Lexed,
) -> Result<Vec<(StringValue, usize)>, usize> {
    let mut literals = Vec::new();
    let mut i = 0;
    while i + 2 < lexed.tokens.len() {
        let opens = {
            let t = &lexed.tokens[i..i + 3];
            t[0].is(':') && t[1].is('$') && t[2].is('(') && t[1].span.end == t[2].span.start
        };
        if !opens {
            i += 1;
            continue;
        }
        if i + 4 >= lexed.tokens.len() {
            return Err(lexed.tokens[i + 1].span.start);
        }
        let window = &lexed.tokens[i..i + 5];
        let literal = match &window[3].kind {
            TokenKind::Str(value) if window[4].is(')') => value.clone(),
            _ => return Err(window[1].span.start),
        };
        let span = window[1].span.start..window[4].span.end;
        let placeholder = format!("`{}`", "x".repeat(span.len() - 2));
        lexed.parser_text.replace_range(span.clone(), &placeholder);
        literals.push((literal, span.start));
        lexed.tokens.splice(
            i + 1..i + 5,
            [Token {
                kind: TokenKind::Quoted(placeholder[1..placeholder.len() - 1].to_string()),
                span,
            }],
        );
        i += 2;
    }
    Ok(literals)
}

/// How deep a statement may nest before it is refused unread.
pub(crate) const MAX_NESTING: usize = 500;

/// Bounds how deeply the parser will recurse, before it runs: the parser
/// descends once per bracket, `CASE`, `NOT`, `^`, `IN` and sign, and a statement
/// of a few tens of kilobytes nesting them thousands deep would overflow the
/// host's stack (measured: 20,000 nested parentheses abort a 2 MiB thread).
/// Counts the deepest bracket and CASE nesting plus every such operator, which
/// is never less than the depth they can reach together.
fn check_nesting(tokens: &[Token]) -> Result<(), LexError> {
    let (mut depth, mut deepest, mut operators) = (0usize, 0usize, 0usize);
    for (i, token) in tokens.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &tokens[p]);
        let after_dot = previous.is_some_and(|p| p.is('.'));
        match &token.kind {
            TokenKind::Punct('(' | '[' | '{') => depth += 1,
            TokenKind::Punct(')' | ']' | '}') => depth = depth.saturating_sub(1),
            TokenKind::Punct('^') => operators += 1,
            TokenKind::Punct('-' | '+') => {
                let next = tokens.get(i + 1);
                let touches = |other: Option<&Token>, chars: &[char]| {
                    other.is_some_and(|o| {
                        chars.iter().any(|c| o.is(*c))
                            && (o.span.end == token.span.start || o.span.start == token.span.end)
                    })
                };
                // Part of a pattern's arrow: `)-`, `]-`, `<-`, `-(`, `-[`, `->`.
                let arrow = token.is('-')
                    && (touches(previous, &[')', ']', '<']) || touches(next, &['(', '[', '>']));
                let after_value = arrow
                    || previous.is_some_and(|p| {
                        matches!(
                            p.kind,
                            TokenKind::Punct(')' | ']' | '}')
                                | TokenKind::Number
                                | TokenKind::Str(_)
                                | TokenKind::Param(_)
                                | TokenKind::Quoted(_)
                        ) || (matches!(p.kind, TokenKind::Word(_)) && !is_operator_word(p))
                    });
                if !after_value {
                    operators += 1;
                }
            }
            TokenKind::Word(_) if !after_dot => match token.keyword().as_deref() {
                Some("CASE") => depth += 1,
                Some("END") => depth = depth.saturating_sub(1),
                Some("NOT" | "IN") => operators += 1,
                _ => {}
            },
            _ => {}
        }
        deepest = deepest.max(depth);
        if deepest + operators > MAX_NESTING {
            return Err(LexError {
                at: token.span.start,
                what: format!(
                    "a statement nesting deeper than {MAX_NESTING} levels (brackets, CASE, NOT, ^, IN and signs)"
                ),
            });
        }
    }
    Ok(())
}

fn is_operator_word(token: &Token) -> bool {
    matches!(
        token.keyword().as_deref(),
        Some(
            "AND"
                | "OR"
                | "XOR"
                | "NOT"
                | "IN"
                | "RETURN"
                | "WHERE"
                | "WITH"
                | "THEN"
                | "ELSE"
                | "WHEN"
                | "CASE"
                | "SET"
                | "AS"
                | "UNWIND"
                | "LIMIT"
                | "SKIP"
                | "BY"
                | "IS"
                | "CONTAINS"
                | "STARTS"
                | "ENDS"
        )
    )
}

/// The 1-based line and column of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        lex(text)
            .expect("lexes")
            .tokens
            .iter()
            .filter_map(Token::keyword)
            .collect()
    }

    #[test]
    fn separators_cypher_treats_as_whitespace_become_spaces() {
        let lexed = lex("CREATE\u{1C}USER\u{2003}x\u{A0}y").expect("lexes");
        assert_eq!(lexed.parser_text, "CREATE USER   x  y");
        assert_eq!(words("CREATE\u{1F}USER"), ["CREATE", "USER"]);
    }

    #[test]
    fn format_and_control_characters_outside_strings_are_refused() {
        for text in [
            "CRE\u{200B}ATE (n)",
            "\u{FEFF}MATCH (n) RETURN n",
            "MATCH (n)\u{180E}RETURN n",
            "MATCH (n) RETURN n\u{0}",
            "RETURN \\u0041",
        ] {
            assert!(lex(text).is_err(), "{text:?}");
        }
        assert!(lex("RETURN '\u{200B}\u{0}' AS s").is_ok());
    }

    #[test]
    fn nesting_that_would_exhaust_the_stack_is_refused_before_parsing() {
        for text in [
            format!("RETURN {}1{}", "(".repeat(600), ")".repeat(600)),
            format!("RETURN {}true", "NOT ".repeat(600)),
            format!("RETURN {}1", "- ".repeat(600)),
            format!("RETURN 2{}", " ^ 2".repeat(600)),
            format!("RETURN x{}", " IN [1]".repeat(600)),
            format!(
                "RETURN {}1{}",
                "CASE WHEN true THEN ".repeat(600),
                " END".repeat(600)
            ),
            format!("RETURN {}1{}", "{a: ".repeat(600), "}".repeat(600)),
            format!("RETURN {}1", "-".repeat(600)),
            format!("RETURN {}1", "+".repeat(600)),
            format!("MATCH (a)-{}->(b) RETURN a", "-".repeat(600)),
        ] {
            assert!(lex(&text).is_err(), "{}", &text[..40]);
        }
        // Long but flat statements are fine: chains, sums, conjunctions.
        for text in [
            format!("MATCH (a){} RETURN a", "-->()".repeat(2000)),
            format!("MATCH (a){} RETURN a", "<-[:R]-(b)--(c)".repeat(1000)),
            format!("MATCH (a){} RETURN a", " - [:R] -> ()".repeat(1000)),
            format!("RETURN 1{}", " + 1".repeat(2000)),
            format!("RETURN true{}", " AND n.x - 1 > 0".repeat(400)),
            format!("RETURN {}", "[1, 2, 3], ".repeat(2000) + "1"),
        ] {
            assert!(lex(&text).is_ok(), "{}", &text[..40]);
        }
    }

    #[test]
    fn a_digit_does_not_swallow_the_keyword_after_it() {
        assert_eq!(words("LIMIT 1DELETE n"), ["LIMIT", "DELETE", "N"]);
        assert_eq!(words("SKIP 0o7CREATE"), ["SKIP", "CREATE"]);
        // Hex digits run on, as the server reads them: `0x1FC` then `REATE`.
        assert_eq!(words("SKIP 0x1FCREATE"), ["SKIP", "REATE"]);
        assert_eq!(words("RETURN 1.5e3AS"), ["RETURN", "AS"]);
    }

    #[test]
    fn strings_names_and_comments_end_where_cypher_ends_them() {
        let lexed = lex("RETURN 'a\\'b' /* x */ AS `c``d` // e\n").expect("lexes");
        let kinds: Vec<_> = lexed.tokens.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds[1],
            TokenKind::Str(StringValue {
                value: "a'b".into(),
                unknown_escape: false
            })
        );
        assert_eq!(kinds[3], TokenKind::Quoted("c`d".into()));
        assert_eq!(
            lexed.parser_text.trim_end(),
            "RETURN 'a\\'b'         AS `c``d`"
        );
        assert!(lex("RETURN 'open").is_err());
        assert!(lex("MATCH /* open").is_err());
        assert!(lex("RETURN `open").is_err());
    }
}
