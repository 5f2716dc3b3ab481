//! The formatter: one house style for Deladas source, the one the examples,
//! the standard library and the test goals are written in.
//!
//! It works on the lossless token stream (comments included), never on the
//! tree, so it cannot drop or move anything: the tokens come out in the same
//! order, each comment with its text unchanged, and the line breaks the
//! author chose are kept. What it decides:
//!
//! - indentation: four spaces per open bracket, counted per line (a line
//!   that opens two brackets indents the next by one level); a line that
//!   starts with a closing bracket lines up with the line that opened it; a
//!   line that starts with a binary operator (`+ sum(…)`, `<= h.memory`,
//!   `and …`) continues the one before, four spaces further in;
//! - spacing inside a line: none after `(`, `[`, `.` and before `)`, `]`,
//!   `,`, `.`; one after `,` and `:`; one around `=`, `!=`, `<`, `<=`, `>`,
//!   `>=`, `+`, `*`; none between a name and its `[`; one between two words;
//!   elsewhere (before `(` and `:`, around `-`, inside `{ }` and inside a
//!   parenthesis that groups a body, `deployment ( … )`) none or one as
//!   written. Where one space is due, a wider run of spaces is kept: aligned
//!   columns, and two spaces between clauses written on one line;
//! - the space before a trailing comment is kept (comments may be aligned);
//!   a block comment spanning lines keeps its inner lines as written;
//! - at most one blank line in a row, none at the start or the end, no
//!   trailing spaces, `\n` line ends, one newline at the end.
//!
//! A file with a syntax error is not formatted ([`FormatError::Syntax`]).
//! Formatting is idempotent, and the output is checked to lex to the same
//! tokens and comments as the input before it is returned.

use logos::Logos;

use super::ast::Span;
use super::lexer::Tok;
use crate::diagnostics::{Diagnostic, Severity};

/// Why a file was not formatted.
#[derive(Debug, Clone)]
pub enum FormatError {
    /// The file does not parse; the parser's diagnostics (file id 0).
    Syntax(Vec<Diagnostic>),
    /// The formatter would have changed the tokens: a bug, nothing written.
    Internal(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Syntax(d) => {
                let first = d.first().map_or("", |d| d.message.as_str());
                write!(f, "the file has syntax errors and is not formatted ({first})")
            }
            FormatError::Internal(why) => write!(f, "internal formatter error: {why}"),
        }
    }
}

/// The house style of `src`: the whole formatted text.
pub fn format(src: &str) -> Result<String, FormatError> {
    let (_, diags) = super::parse(src, 0);
    let errors: Vec<Diagnostic> = diags.into_iter().filter(|d| d.severity == Severity::Error).collect();
    if !errors.is_empty() {
        return Err(FormatError::Syntax(errors));
    }
    let toks = lossless(src).ok_or_else(|| FormatError::Internal("the file does not lex".into()))?;
    let out = layout(src, &toks);
    // Never hand back a text that reads differently.
    let same = lossless(&out).is_some_and(|t| {
        t.len() == toks.len()
            && t.iter().zip(&toks).all(|(a, b)| a.0 == b.0 && token_text(&out, a) == token_text(src, b))
    });
    if !same {
        return Err(FormatError::Internal("formatting would change the tokens".into()));
    }
    Ok(out)
}

/// The text of a token; comments without trailing spaces (the only part of
/// a comment the formatter may drop).
fn token_text<'a>(src: &'a str, t: &(Tok, Span)) -> &'a str {
    let s = &src[t.1.range()];
    match t.0 {
        Tok::LineComment(_) => s.trim_end(),
        _ => s,
    }
}

/// Every token with its span, comments included; `None` if some input is not a token.
fn lossless(src: &str) -> Option<Vec<(Tok, Span)>> {
    let mut lexer = Tok::lexer(src);
    let mut out = vec![];
    while let Some(t) = lexer.next() {
        let r = lexer.span();
        out.push((t.ok()?, Span::new(r.start, r.end)));
    }
    Some(out)
}

/// How much space goes between two tokens on one line.
#[derive(Clone, Copy)]
enum Gap {
    None,
    /// One space, or a wider run of spaces as written (aligned columns, two
    /// spaces between clauses written on one line).
    One,
    /// None or [`Gap::One`], as written.
    AsWritten,
    /// Exactly as written (before a trailing comment).
    Verbatim,
}

fn is_word(t: &Tok) -> bool {
    matches!(t, Tok::Ident(_) | Tok::Int(_) | Tok::Str(_)) || t.keyword().is_some()
}

/// A binary operator, which may start a continued line.
fn is_binary(t: &Tok) -> bool {
    use Tok::*;
    matches!(t, Eq | Ne | Lt | Le | Gt | Ge | Plus | Star | And | Or | Implies)
}

/// The gap between `a` and `b`; `group` says that the parenthesis involved
/// (`a` when it opens one, `b` when it closes one) groups a body rather
/// than following a name (`forall … ( … )` against `card(…)`).
fn gap(a: &Tok, b: &Tok, group: bool) -> Gap {
    use Tok::*;
    match (a, b) {
        (_, LineComment(_) | BlockComment) => Gap::Verbatim,
        (BlockComment, _) => Gap::AsWritten,
        (LParen, _) | (_, RParen) if group => Gap::AsWritten,
        (LParen | LBracket | Dot, _) => Gap::None,
        (_, RParen | RBracket | Comma | Dot) => Gap::None,
        (_, Colon) => Gap::AsWritten,
        (Comma | Colon, _) => Gap::One,
        (Ident(_), LBracket) => Gap::None,
        // `prefer [3] forall …`
        (Prefer, LBracket) => Gap::One,
        (RBracket, b) if is_word(b) => Gap::One,
        (Eq | Ne | Lt | Le | Gt | Ge | Plus | Star, _) | (_, Eq | Ne | Lt | Le | Gt | Ge | Plus | Star) => Gap::One,
        (Minus, _) | (_, Minus) | (_, LParen | LBracket) | (LBrace, _) | (_, RBrace) => Gap::AsWritten,
        (a, b) if is_word(a) && is_word(b) => Gap::One,
        _ => Gap::AsWritten,
    }
}

/// Writes the space a gap asks for, given the whitespace written there.
fn push_gap(out: &mut String, g: Gap, before: &str) {
    let width = if before.bytes().all(|b| b == b' ') { before.len().max(1) } else { 1 };
    match g {
        Gap::None => {}
        Gap::AsWritten if before.is_empty() => {}
        Gap::One | Gap::AsWritten => out.extend(std::iter::repeat_n(' ', width)),
        Gap::Verbatim => out.push_str(if before.is_empty() { " " } else { before }),
    }
}

fn layout(src: &str, toks: &[(Tok, Span)]) -> String {
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    // For each open bracket: the indentation of the line that opened it, and
    // (for a parenthesis) whether it groups a body rather than follows a name.
    let mut open: Vec<(usize, bool)> = vec![];
    let mut line_indent = 0usize;
    let mut prev: Option<&(Tok, Span)> = None;
    for t in toks {
        let start = t.1.start as usize;
        let before = match prev {
            Some(p) => &src[p.1.end as usize..start],
            None => &src[..start],
        };
        let newlines = before.matches('\n').count();
        match prev {
            Some(p) if newlines == 0 => {
                let group = match (&p.0, &t.0) {
                    (Tok::LParen, _) | (_, Tok::RParen) => open.last().is_some_and(|o| o.1),
                    _ => false,
                };
                push_gap(&mut out, gap(&p.0, &t.0, group), before);
            }
            _ => {
                if prev.is_some() {
                    out.push('\n');
                    if newlines >= 2 {
                        out.push('\n');
                    }
                }
                line_indent = match (&t.0, open.last()) {
                    (Tok::RParen | Tok::RBracket | Tok::RBrace, Some(&(i, _))) => i,
                    (_, Some(&(i, _))) => i + 4,
                    (_, None) => 0,
                };
                // A line that starts with a binary operator continues the one before.
                let indent = line_indent + if is_binary(&t.0) { 4 } else { 0 };
                out.extend(std::iter::repeat_n(' ', indent));
            }
        }
        let text = &src[t.1.range()];
        match t.0 {
            Tok::LineComment(_) => out.push_str(text.trim_end()),
            _ => out.push_str(text),
        }
        match t.0 {
            Tok::LParen => {
                let call = prev.is_some_and(|p| p.1.end == t.1.start && is_word(&p.0));
                open.push((line_indent, !call));
            }
            Tok::LBracket | Tok::LBrace => open.push((line_indent, false)),
            Tok::RParen | Tok::RBracket | Tok::RBrace => {
                open.pop();
            }
            _ => {}
        }
        prev = Some(t);
    }
    if !toks.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        match format(s) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn spacing_indentation_and_blank_lines() {
        let src = "\n\nhost h1=host( zone=\"eu\" ,memory = 2 )\n\n\n\nconstraintset s=constraintset {\nforall host h in deployment (\nh.memory>=1\n+ 2\n)\n}";
        let want = "host h1 = host(zone = \"eu\", memory = 2)\n\nconstraintset s = constraintset {\n    forall host h in deployment (\n        h.memory >= 1\n            + 2\n    )\n}\n";
        assert_eq!(fmt(src), want);
        assert_eq!(fmt(want), want, "idempotent");
    }

    #[test]
    fn comments_survive_verbatim() {
        let src = "// head  \n/* a\n   block */ host h1 = host() // trailing\n/// doc\ncomponent C(code = \"c\", ports = {p[]: input})\n";
        let out = fmt(src);
        assert_eq!(out, src.replacen("// head  \n", "// head\n", 1));
    }

    #[test]
    fn group_and_call_parentheses() {
        let src = "constraintset s = constraintset {\n    forall host h in deployment ( card(instancesof C in h) = 1  h.a = 2 )\n}\n";
        assert_eq!(fmt(src), src, "spaces inside a body's parentheses and between clauses are kept");
        let tight =
            "constraintset s = constraintset {\n    forall host h in deployment (card( instancesof C in h )=1)\n}\n";
        let want =
            "constraintset s = constraintset {\n    forall host h in deployment (card(instancesof C in h) = 1)\n}\n";
        assert_eq!(fmt(tight), want);
    }

    #[test]
    fn refuses_syntax_errors() {
        assert!(matches!(format("host h1 = host(\n"), Err(FormatError::Syntax(d)) if !d.is_empty()));
        assert!(matches!(format("component C(code = \"c\" ports = {p})\n"), Err(FormatError::Syntax(_))));
        assert_eq!(fmt(""), "");
    }
}
