//! The lexer: source text to tokens with byte spans.
//!
//! Built on `logos`. It owns comments (line, doc `///`, and nested block
//! comments), string escapes and integer ranges. It never fails: malformed
//! input becomes [`LexError`]s beside the tokens, and lexing resumes after the
//! bad input so later declarations are still seen. Keywords are plain tokens
//! here; the grammar accepts them as names where a name is expected after `.`,
//! in port lists and attribute keys (the paper's ports are called `in`/`out`).

use logos::{Lexer, Logos};

/// Every keyword of the language (language.md §2).
pub const KEYWORDS: &[&str] = &[
    "component",
    "host",
    "constraintset",
    "forall",
    "exists",
    "in",
    "deployment",
    "card",
    "instancesof",
    "connectsto",
    "connectedto",
    "reachable",
    "hostof",
    "on",
    "and",
    "or",
    "not",
    "implies",
    "true",
    "false",
    "import",
    "use",
    "upgrade",
    "where",
    "sum",
    "input",
    "output",
    "external",
    "minimize",
    "maximize",
    "prefer",
    "instance",
];

/// Names that are functions when a `(` follows (`abs(t)`, `min(a, b)`,
/// `max(zone z in deployment : …)`), and plain names otherwise, so a
/// pattern parameter called `min` keeps working (docs/language-decisions.md).
pub const FUNCTIONS: &[&str] = &["abs", "min", "max"];

use super::ast::Span;

/// Why a piece of input is not a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LexErrorKind {
    /// A character that starts no token, e.g. `@` or `#`.
    #[default]
    UnexpectedChar,
    /// A string with no closing `"` before the end of its line.
    UnterminatedString,
    /// A raw newline inside a string (strings are one line; use `\n`).
    NewlineInString,
    /// `\q` or a malformed `\u{…}` inside a string: why, and where the escape
    /// is as a byte range relative to the character after the opening quote.
    InvalidEscape(String, std::ops::Range<usize>),
    /// An integer literal above 2^31 - 1.
    IntegerOutOfRange,
    /// A `/*` with no matching `*/` (comments nest).
    UnterminatedComment,
}

/// A lexical error at a span of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    pub kind: LexErrorKind,
    pub span: Span,
}

/// A token of Deladas source.
#[derive(Logos, Debug, Clone, PartialEq, Eq)]
#[logos(error = LexErrorKind)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Tok {
    #[token("component")]
    Component,
    #[token("host")]
    Host,
    #[token("constraintset")]
    Constraintset,
    #[token("forall")]
    Forall,
    #[token("exists")]
    Exists,
    #[token("in")]
    In,
    #[token("deployment")]
    Deployment,
    #[token("card")]
    Card,
    #[token("instancesof")]
    Instancesof,
    #[token("connectsto")]
    Connectsto,
    #[token("connectedto")]
    Connectedto,
    #[token("reachable")]
    Reachable,
    #[token("hostof")]
    Hostof,
    #[token("on")]
    On,
    #[token("and")]
    And,
    #[token("or")]
    Or,
    #[token("not")]
    Not,
    #[token("implies")]
    Implies,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("import")]
    Import,
    #[token("use")]
    Use,
    #[token("upgrade")]
    Upgrade,
    #[token("where")]
    Where,
    #[token("sum")]
    Sum,
    #[token("input")]
    Input,
    #[token("output")]
    Output,
    #[token("external")]
    External,
    #[token("minimize")]
    Minimize,
    #[token("maximize")]
    Maximize,
    #[token("prefer")]
    Prefer,
    /// `instance vm1 = VM(…)`: a named instance (issue 19).
    #[token("instance")]
    Instance,
    // Workload terms (docs/language-decisions.md, "Workload terms"): never
    // produced by logos; `lex` turns the name into one of these when a `(`
    // follows (see `FUNCTIONS`).
    Abs,
    Min,
    Max,

    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token(",")]
    Comma,
    #[token(".")]
    Dot,
    #[token(":")]
    Colon,
    #[token("=")]
    Eq,
    #[token("!=")]
    Ne,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,

    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9]+", lex_int)]
    Int(i64),
    #[token("\"", lex_string)]
    Str(String),

    /// `// …` (not part of the token stream the parser sees).
    #[regex(r"//[^\n]*", allow_greedy = true, callback = |lex| lex.slice().starts_with("///") && !lex.slice().starts_with("////"))]
    LineComment(bool),
    /// `/* … */`, nesting.
    #[token("/*", lex_block_comment)]
    BlockComment,
}

impl Tok {
    /// The keyword's spelling, if this token is a keyword.
    pub fn keyword(&self) -> Option<&'static str> {
        use Tok::*;
        Some(match self {
            Component => "component",
            Host => "host",
            Constraintset => "constraintset",
            Forall => "forall",
            Exists => "exists",
            In => "in",
            Deployment => "deployment",
            Card => "card",
            Instancesof => "instancesof",
            Connectsto => "connectsto",
            Connectedto => "connectedto",
            Reachable => "reachable",
            Hostof => "hostof",
            On => "on",
            And => "and",
            Or => "or",
            Not => "not",
            Implies => "implies",
            True => "true",
            False => "false",
            Import => "import",
            Use => "use",
            Upgrade => "upgrade",
            Where => "where",
            Sum => "sum",
            Input => "input",
            Output => "output",
            External => "external",
            Minimize => "minimize",
            Maximize => "maximize",
            Prefer => "prefer",
            Instance => "instance",
            Abs => "abs",
            Min => "min",
            Max => "max",
            _ => return None,
        })
    }

    /// How a user would name this token in an error message.
    pub fn describe(&self) -> String {
        if let Some(k) = self.keyword() {
            return format!("keyword `{k}`");
        }
        match self {
            Tok::Ident(s) => format!("name `{s}`"),
            Tok::Int(n) => format!("integer `{n}`"),
            Tok::Str(_) => "a string".to_string(),
            other => format!("`{}`", other.punct().unwrap_or("?")),
        }
    }

    /// The spelling of a punctuation token.
    pub fn punct(&self) -> Option<&'static str> {
        use Tok::*;
        Some(match self {
            LParen => "(",
            RParen => ")",
            LBrace => "{",
            RBrace => "}",
            LBracket => "[",
            RBracket => "]",
            Comma => ",",
            Dot => ".",
            Colon => ":",
            Eq => "=",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            Plus => "+",
            Minus => "-",
            Star => "*",
            _ => return None,
        })
    }
}

fn lex_int(lex: &mut Lexer<Tok>) -> Result<i64, LexErrorKind> {
    let s = lex.slice();
    match s.parse::<u64>() {
        Ok(n) if n <= i32::MAX as u64 => Ok(n as i64),
        _ => Err(LexErrorKind::IntegerOutOfRange),
    }
}

/// Scans a string body after the opening quote. On a missing closing quote the
/// token stops at the end of the line, so the next line lexes normally.
fn lex_string(lex: &mut Lexer<Tok>) -> Result<String, LexErrorKind> {
    let rest = lex.remainder();
    let mut out = String::new();
    let mut chars = rest.char_indices();
    let mut error: Option<LexErrorKind> = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                lex.bump(i + 1);
                return match error {
                    Some(e) => Err(e),
                    None => Ok(out),
                };
            }
            '\n' => {
                // Unterminated matters more than a bad escape before it.
                lex.bump(i);
                return Err(LexErrorKind::UnterminatedString);
            }
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'u')) => match parse_unicode_escape(&mut chars) {
                    Some(ch) => out.push(ch),
                    None => {
                        error.get_or_insert(LexErrorKind::InvalidEscape(
                            "`\\u` must be followed by `{XXXX}` with 1 to 6 hex digits naming a Unicode scalar value"
                                .into(),
                            i..unicode_escape_end(rest, i),
                        ));
                    }
                },
                Some((_, '\n')) | None => {
                    lex.bump(rest.len().min(i + 1));
                    return Err(LexErrorKind::UnterminatedString);
                }
                Some((_, other)) => {
                    error.get_or_insert(LexErrorKind::InvalidEscape(
                        format!("`\\{other}` is not an escape; the escapes are \\\" \\\\ \\n \\t \\u{{XXXX}}"),
                        i..i + 1 + other.len_utf8(),
                    ));
                }
            },
            c => out.push(c),
        }
    }
    lex.bump(rest.len());
    Err(LexErrorKind::UnterminatedString)
}

/// Where a malformed `\u…` escape starting at byte `i` of `rest` ends: after
/// its `}` when one follows on the same line within a few characters, else
/// after the `u`.
fn unicode_escape_end(rest: &str, i: usize) -> usize {
    let after_u = i + 2;
    let tail = rest.get(after_u..).unwrap_or("");
    if tail.starts_with('{') {
        for (k, c) in tail.char_indices().take(12) {
            if c == '}' {
                return after_u + k + 1;
            }
            if c == '"' || c == '\n' {
                break;
            }
        }
    }
    after_u
}

fn parse_unicode_escape(chars: &mut std::str::CharIndices) -> Option<char> {
    let mut probe = chars.clone();
    if probe.next()?.1 != '{' {
        return None;
    }
    let mut value: u32 = 0;
    let mut digits = 0;
    loop {
        let (_, c) = probe.next()?;
        if c == '}' {
            break;
        }
        let d = c.to_digit(16)?;
        digits += 1;
        if digits > 6 {
            return None;
        }
        value = value * 16 + d;
    }
    if digits == 0 {
        return None;
    }
    *chars = probe;
    char::from_u32(value)
}

fn lex_block_comment(lex: &mut Lexer<Tok>) -> Result<(), LexErrorKind> {
    let bytes = lex.remainder().as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                lex.bump(i);
                return Ok(());
            }
        } else {
            i += 1;
        }
    }
    lex.bump(bytes.len());
    Err(LexErrorKind::UnterminatedComment)
}

/// The lexed form of one file: tokens for the parser, `///` doc comments with
/// their spans (attached to declarations by the parser driver), and errors.
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<(Tok, Span)>,
    pub docs: Vec<(String, Span)>,
    pub errors: Vec<LexError>,
}

/// Lexes a whole file. Never fails; see [`Lexed::errors`].
pub fn lex(src: &str) -> Lexed {
    let mut out = Lexed::default();
    let mut lexer = Tok::lexer(src);
    // A UTF-8 byte-order mark at the start (editors on Windows write one) is
    // not part of the text; spans stay offsets into the whole file.
    if src.starts_with('\u{FEFF}') {
        lexer.bump('\u{FEFF}'.len_utf8());
    }
    while let Some(res) = lexer.next() {
        let r = lexer.span();
        let span = Span::new(r.start, r.end);
        match res {
            Ok(Tok::LineComment(true)) => {
                let text = lexer.slice().trim_start_matches("///");
                let text = text.strip_prefix(' ').unwrap_or(text);
                out.docs.push((text.trim_end().to_string(), span));
            }
            Ok(Tok::LineComment(false)) | Ok(Tok::BlockComment) => {}
            Ok(Tok::LParen) => {
                // `abs (`, `min(`, `max(`: a function, not a name.
                if let Some((last, _)) = out.tokens.last_mut() {
                    if let Tok::Ident(name) = last {
                        match name.as_str() {
                            "abs" => *last = Tok::Abs,
                            "min" => *last = Tok::Min,
                            "max" => *last = Tok::Max,
                            _ => {}
                        }
                    }
                }
                out.tokens.push((Tok::LParen, span));
            }
            Ok(tok) => out.tokens.push((tok, span)),
            Err(LexErrorKind::InvalidEscape(why, rel)) => {
                // The string's extent is certain: keep it as a token (escape
                // left as written) so its declaration still parses, and
                // point the error at the escape itself.
                let body = lexer.slice().strip_prefix('"').unwrap_or("");
                let body = body.strip_suffix('"').unwrap_or(body);
                out.tokens.push((Tok::Str(body.to_string()), span));
                let at = Span::new(r.start + 1 + rel.start, (r.start + 1 + rel.end).min(r.end));
                out.errors.push(LexError { kind: LexErrorKind::InvalidEscape(why, rel), span: at });
            }
            Err(LexErrorKind::IntegerOutOfRange) => {
                // Likewise an integer: keep a token so the declaration parses.
                out.tokens.push((Tok::Int(i32::MAX as i64), span));
                out.errors.push(LexError { kind: LexErrorKind::IntegerOutOfRange, span });
            }
            Err(kind) => {
                // A run of unexpected characters is one error, not one per byte.
                if kind == LexErrorKind::UnexpectedChar {
                    if let Some(last) = out.errors.last_mut() {
                        if last.kind == LexErrorKind::UnexpectedChar && last.span.end == span.start {
                            last.span.end = span.end;
                            continue;
                        }
                    }
                }
                out.errors.push(LexError { kind, span });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex(src).tokens.into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn keywords_idents_and_punctuation() {
        assert_eq!(
            toks("c.in connectsto r.cin <= != >="),
            vec![
                Tok::Ident("c".into()),
                Tok::Dot,
                Tok::In,
                Tok::Connectsto,
                Tok::Ident("r".into()),
                Tok::Dot,
                Tok::Ident("cin".into()),
                Tok::Le,
                Tok::Ne,
                Tok::Ge
            ]
        );
        assert_eq!(toks("inside hosts"), vec![Tok::Ident("inside".into()), Tok::Ident("hosts".into())]);
    }

    #[test]
    fn keywords_list_is_the_lexers() {
        for k in KEYWORDS {
            let t = toks(k);
            assert!(t.len() == 1 && !matches!(t[0], Tok::Ident(_)), "`{k}` lexes as {t:?}, not one keyword");
        }
    }

    #[test]
    fn nested_block_comments_and_docs() {
        let l = lex("a /* x /* y */ z */ b /// doc\n// plain\n//// not doc\nc");
        assert_eq!(l.tokens.len(), 3);
        assert_eq!(l.docs, vec![("doc".to_string(), Span::new(22, 29))]);
        assert!(l.errors.is_empty());
        let l = lex("a /* /* */ b");
        assert_eq!(l.errors[0].kind, LexErrorKind::UnterminatedComment);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks(r#""a\"b\\c\n\u{41}""#), vec![Tok::Str("a\"b\\c\nA".into())]);
        let l = lex("\"abc\nx");
        assert_eq!(l.errors[0].kind, LexErrorKind::UnterminatedString);
        assert_eq!(l.tokens, vec![(Tok::Ident("x".into()), Span::new(5, 6))]);
        let l = lex(r#""\q" y"#);
        assert!(matches!(l.errors[0].kind, LexErrorKind::InvalidEscape(..)));
        assert_eq!(l.errors[0].span, Span::new(1, 3), "the error points at the escape");
        assert_eq!(l.tokens.len(), 2, "the string is still a token");
        let l = lex(r#""ab\u{110000}c""#);
        assert!(matches!(l.errors[0].kind, LexErrorKind::InvalidEscape(..)));
        assert_eq!(l.errors[0].span, Span::new(3, 13));
    }

    #[test]
    fn integer_range() {
        assert_eq!(toks("2147483647"), vec![Tok::Int(2147483647)]);
        assert_eq!(lex("2147483648").errors[0].kind, LexErrorKind::IntegerOutOfRange);
        assert_eq!(lex("99999999999999999999999").errors[0].kind, LexErrorKind::IntegerOutOfRange);
    }

    #[test]
    fn unexpected_chars_coalesce() {
        let l = lex("a @@@ b");
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].span, Span::new(2, 5));
    }
}
