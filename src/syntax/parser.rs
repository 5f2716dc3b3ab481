//! The parser driver: tokens to declarations, with recovery.
//!
//! The grammar (`grammar/deladas.lalrpop`) parses one declaration. This driver
//! splits a file's tokens into declarations and parses each on its own, so a
//! broken declaration is reported and the next one is still read:
//!
//! 1. split at every declaration keyword (`component`, `host`,
//!    `constraintset`, `import`, `use`, `upgrade`) outside all brackets and
//!    not right after `=`, and after a closing bracket that ends a
//!    declaration unless `=` follows — exact for well-formed files;
//! 2. a piece that fails to parse is split again at declaration keywords that
//!    begin a line (an unclosed `(` otherwise swallows the rest of the file),
//!    and each part is parsed on its own.
//!
//! Syntax errors name what was expected in words ("expected `)` to close the
//! component's attribute list opened here").

use lalrpop_util::ParseError;

use super::ast::*;
use super::grammar::DeclParser;
use super::lexer::{lex, LexErrorKind, Tok};
use crate::diagnostics::{Code, Diagnostic, FileId};

/// Errors raised by grammar actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserError {
    /// A formula nested deeper than [`MAX_DEPTH`].
    TooDeep(Span),
}

type PErr = ParseError<usize, Tok, UserError>;

/// Builds an expression node, refusing trees deeper than [`MAX_DEPTH`].
pub fn mk(kind: ExprKind, l: usize, r: usize) -> Result<Expr, PErr> {
    let mut e = Expr { kind, span: Span::new(l, r), depth: 1 };
    e.depth = 1 + e.children().iter().map(|c| c.depth).max().unwrap_or(0);
    if e.depth > MAX_DEPTH {
        return Err(ParseError::User { error: UserError::TooDeep(e.span) });
    }
    Ok(e)
}

/// Builds an n-ary node (`or`, `and`, `+`) grown by one operand, whose depth
/// the caller knows (the old node's, or one more than the new operand's), so
/// a chain of n operands is built in O(n), not O(n²).
pub fn mk_grown(kind: ExprKind, depth: u32, l: usize, r: usize) -> Result<Expr, PErr> {
    if depth > MAX_DEPTH {
        return Err(ParseError::User { error: UserError::TooDeep(Span::new(l, r)) });
    }
    Ok(Expr { kind, span: Span::new(l, r), depth })
}

/// Parses one file. Never fails: see the diagnostics.
pub fn parse(src: &str, file: FileId) -> (SourceFile, Vec<Diagnostic>) {
    let lexed = lex(src);
    let mut diags: Vec<Diagnostic> = lexed.errors.iter().map(|e| lex_diagnostic(src, file, e)).collect();
    let lex_error_spans: Vec<Span> = lexed.errors.iter().map(|e| e.span).collect();
    let toks = &lexed.tokens;
    let parser = DeclParser::new();
    let mut decls = Vec::new();
    let mut broken = Vec::new();
    let mut prev_end = 0u32;
    for (lo, hi) in split(toks, src, false) {
        if parse_piece(&parser, &toks[lo..hi], &mut decls) {
            continue;
        }
        // A failed piece: split it again at declaration keywords that begin a line.
        for (a, b) in split(&toks[lo..hi], src, true) {
            let part = &toks[lo + a..lo + b];
            if !parse_piece(&parser, part, &mut decls) {
                report_failure(&parser, part, src, file, &lex_error_spans, &mut diags);
                // `import patterns`: reported, but still imported, so the
                // names it brings are not reported as unknown too.
                if let [(Tok::Import, first), (Tok::Ident(name), span)] = part {
                    decls.push(Decl {
                        kind: DeclKind::Import { path: name.clone(), path_span: *span },
                        span: first.to(*span),
                        doc: None,
                    });
                    continue;
                }
                if let [(Tok::Component | Tok::Host | Tok::Constraintset | Tok::Instance, _), (Tok::Ident(name), span), ..] =
                    part
                {
                    broken.push(Ident { name: name.clone(), span: *span });
                }
            }
        }
    }
    // Attach doc comments: those between the previous declaration and this one.
    decls.sort_by_key(|d: &Decl| d.span.start);
    let mut di = 0;
    for d in &mut decls {
        let mut lines = vec![];
        while di < lexed.docs.len() && lexed.docs[di].1.start < d.span.start {
            if lexed.docs[di].1.start >= prev_end {
                lines.push(lexed.docs[di].0.clone());
            }
            di += 1;
        }
        if !lines.is_empty() {
            d.doc = Some(lines.join("\n"));
        }
        prev_end = d.span.end;
    }
    diags.sort_by_key(|d| d.primary_label().map(|l| (l.span.start, l.span.end)).unwrap_or_default());
    (SourceFile { decls, broken }, diags)
}

fn run(parser: &DeclParser, piece: &[(Tok, Span)]) -> Result<DeclKind, PErr> {
    if let Some(at) = hopelessly_deep(piece) {
        return Err(ParseError::User { error: UserError::TooDeep(at) });
    }
    parser.parse(piece.iter().map(|(t, s)| Ok::<_, UserError>((s.start as usize, t.clone(), s.end as usize))))
}

/// A formula far deeper than [`MAX_DEPTH`], found by a scan of the tokens
/// so that it is never handed to the parser, whose stack would hold all of
/// it (a 36 MB line of nested `forall`s): more than 4 × [`MAX_DEPTH`]
/// quantifiers open inside each other's bodies, or as many `not`s or `-`s in
/// a row. Each of these is one more level of nesting, so the formula is too
/// deep whatever else it says. Returns the token where the limit is passed.
fn hopelessly_deep(piece: &[(Tok, Span)]) -> Option<Span> {
    let limit = 4 * MAX_DEPTH as usize;
    let mut depth = 0usize;
    // The bracket depth of each open quantifier (it closes when its body's
    // parenthesis does; a domain like `hostof(x)` may close it early, which
    // only undercounts).
    let mut open: Vec<usize> = vec![];
    let mut run = 0usize;
    let mut prev_prefix: Option<&Tok> = None;
    for (tok, span) in piece {
        match tok {
            Tok::LParen | Tok::LBrace | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBrace | Tok::RBracket => {
                depth = depth.saturating_sub(1);
                while open.last().is_some_and(|&d| d >= depth) {
                    open.pop();
                }
            }
            Tok::Forall | Tok::Exists => {
                open.push(depth);
                if open.len() > limit {
                    return Some(*span);
                }
            }
            _ => {}
        }
        let prefix = matches!(tok, Tok::Not | Tok::Minus);
        run = if prefix && prev_prefix == Some(tok) { run + 1 } else { usize::from(prefix) };
        prev_prefix = prefix.then_some(tok);
        if run > limit {
            return Some(*span);
        }
    }
    None
}

/// Parses one piece as a declaration; pushes it and returns true on success.
fn parse_piece(parser: &DeclParser, piece: &[(Tok, Span)], decls: &mut Vec<Decl>) -> bool {
    let (Some(first), Some(last)) = (piece.first(), piece.last()) else { return true };
    match run(parser, piece) {
        Ok(kind) => {
            decls.push(Decl { kind, span: first.1.to(last.1), doc: None });
            true
        }
        Err(_) => false,
    }
}

/// Parses a piece known to fail, and reports why (unless a lexical error
/// inside it already explains the failure).
fn report_failure(
    parser: &DeclParser,
    piece: &[(Tok, Span)],
    src: &str,
    file: FileId,
    lex_errors: &[Span],
    diags: &mut Vec<Diagnostic>,
) {
    let (Some(first), Some(last)) = (piece.first(), piece.last()) else { return };
    let Err(err) = run(parser, piece) else { return };
    let whole = first.1.to(last.1);
    // A lexical error inside this declaration is the real cause; don't pile on.
    if lex_errors.iter().any(|s| s.start >= whole.start && s.start <= whole.end + 1) {
        return;
    }
    diags.push(syntax_diagnostic(err, piece, src, file));
}

/// Splits tokens into declaration pieces, as index ranges.
fn split(toks: &[(Tok, Span)], src: &str, at_line_starts: bool) -> Vec<(usize, usize)> {
    let mut out = vec![];
    let mut depth: i64 = 0;
    let mut start = 0;
    for (i, (t, span)) in toks.iter().enumerate() {
        if i > start {
            let prev = &toks[i - 1].0;
            // `minimize`/`maximize`/`prefer` take terms and clauses, which go
            // on after a closing bracket (`card(…) + card(…)`).
            let open_ended = matches!(toks[start].0, Tok::Minimize | Tok::Maximize | Tok::Prefer);
            let boundary = if !is_decl_keyword(t) {
                // After the closing bracket that ends a declaration, anything
                // but `=` (as in `constraintset p(…) = …`) starts another
                // piece: `component C(…) junk` reports `junk` on its own.
                !open_ended
                    && !at_line_starts
                    && depth == 0
                    && matches!(prev, Tok::RParen | Tok::RBrace)
                    && !matches!(t, Tok::Eq)
            } else if open_ended
                && ((matches!(t, Tok::Use) && matches!(prev, Tok::Prefer | Tok::RBracket))
                    || (matches!(t, Tok::Host) && matches!(prev, Tok::Forall | Tok::Exists)))
            {
                // `prefer use p(…)`, `prefer [2] use p(…)`: a clause;
                // `prefer forall host h in deployment (…)`: a quantifier.
                false
            } else if at_line_starts {
                // `= host(` and `= constraintset {` continue a declaration.
                starts_line(src, span.start as usize)
                    && !(matches!(prev, Tok::Eq) && matches!(t, Tok::Host | Tok::Constraintset))
            } else {
                depth <= 0 && !matches!(prev, Tok::Eq)
            };
            if boundary {
                out.push((start, i));
                start = i;
                depth = 0;
            }
        }
        match t {
            Tok::LParen | Tok::LBrace | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBrace | Tok::RBracket => depth -= 1,
            _ => {}
        }
    }
    if start < toks.len() {
        out.push((start, toks.len()));
    }
    out
}

fn is_decl_keyword(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Component
            | Tok::Host
            | Tok::Constraintset
            | Tok::Import
            | Tok::Use
            | Tok::Upgrade
            | Tok::Minimize
            | Tok::Maximize
            | Tok::Prefer
            | Tok::Instance
    )
}

fn starts_line(src: &str, offset: usize) -> bool {
    offset == 0 || src.as_bytes().get(offset - 1) == Some(&b'\n')
}

fn lex_diagnostic(src: &str, file: FileId, e: &super::lexer::LexError) -> Diagnostic {
    let text = src.get(e.span.range()).unwrap_or("");
    match &e.kind {
        LexErrorKind::UnexpectedChar => {
            let shown: String = text.chars().take(8).collect();
            let d = Diagnostic::new(Code::UnexpectedChar, format!("unexpected character `{shown}`")).primary(
                file,
                e.span,
                "not part of any token",
            );
            match text.chars().next() {
                Some('!') => d.help("`!=` means different; negation is written `not`"),
                Some('&') => d.help("conjunction is written `and` (or clauses one after another)"),
                Some('|') => d.help("disjunction is written `or`"),
                Some('#') => d.help("comments start with `//`"),
                Some('\'') => d.help("strings use double quotes: \"…\""),
                _ => d,
            }
        }
        LexErrorKind::UnterminatedString => Diagnostic::new(Code::UnterminatedString, "unterminated string")
            .primary(file, Span::new(e.span.start as usize, e.span.start as usize + 1), "this string is never closed")
            .help("strings end with `\"` on the same line; write a line break as `\\n`"),
        LexErrorKind::NewlineInString => Diagnostic::new(Code::UnterminatedString, "unterminated string")
            .primary(file, e.span, "this string runs into a line break")
            .help("strings end with `\"` on the same line; write a line break as `\\n`"),
        LexErrorKind::InvalidEscape(why, _) => {
            let d = Diagnostic::new(Code::InvalidEscape, format!("invalid escape `{text}` in a string")).primary(
                file,
                e.span,
                why.clone(),
            );
            if text.starts_with("\\u") {
                d.help("write a character by its hexadecimal code, as in `\\u{E9}` for é")
            } else {
                d.help("to write a backslash itself, double it: `\\\\`")
            }
        }
        LexErrorKind::IntegerOutOfRange => {
            Diagnostic::new(Code::IntegerOutOfRange, format!("integer `{text}` is out of range"))
                .primary(file, e.span, "larger than 2147483647")
                .note("integers are between 0 and 2^31 - 1 = 2147483647; negative numbers are written with `-`")
        }
        LexErrorKind::UnterminatedComment => Diagnostic::new(Code::UnterminatedComment, "unterminated block comment")
            .primary(file, Span::new(e.span.start as usize, e.span.start as usize + 2), "this comment is never closed")
            .note("block comments nest: every `/*` needs its own `*/`"),
    }
}

/// Names a terminal from lalrpop's `expected` list in user words.
fn terminal_words(t: &str) -> String {
    let t = t.trim_matches('"').replace("\\\"", "\"");
    match t.as_str() {
        "name" => "a name".to_string(),
        "integer" => "an integer".to_string(),
        "string" => "a string".to_string(),
        other => format!("`{other}`"),
    }
}

fn summarize_expected(expected: &[String]) -> String {
    let bare: Vec<String> = expected.iter().map(|e| e.trim_matches('"').replace("\\\"", "\"")).collect();
    let has = |s: &str| bare.iter().any(|b| b == s);
    if has("forall") && has("not") {
        return if has("}") || has(")") && bare.len() > 20 {
            "a clause".to_string()
        } else {
            "a clause or a term".to_string()
        };
    }
    if has("card") && has("-") {
        return "a term".to_string();
    }
    if bare.iter().all(|b| matches!(b.as_str(), "component" | "host" | "constraintset" | "import" | "use" | "upgrade"))
        && bare.len() > 2
    {
        return "a declaration (`component`, `host`, `constraintset`, `import`, `use` or `upgrade`)".to_string();
    }
    let mut words: Vec<String> = expected.iter().map(|e| terminal_words(e)).collect();
    words.dedup();
    // Keywords usable as names are all listed when a name is expected: fold them.
    if words.iter().any(|w| w == "a name") && words.len() > 6 {
        words.retain(|w| !w.starts_with('`') || w.len() <= 4);
    }
    match words.len() {
        0 => "nothing more".to_string(),
        1 => words.remove(0),
        n if n <= 6 => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
        _ => format!("one of {}", words[..6].join(", ")),
    }
}

fn closer_of(t: &Tok) -> Option<&'static str> {
    match t {
        Tok::LParen => Some(")"),
        Tok::LBrace => Some("}"),
        Tok::LBracket => Some("]"),
        _ => None,
    }
}

/// What the bracket at `piece[i]` opens, in words.
fn bracket_context(piece: &[(Tok, Span)], i: usize) -> String {
    let prev = |k: usize| if i >= k { Some(&piece[i - k].0) } else { None };
    match (&piece[i].0, prev(1), prev(2)) {
        (Tok::LParen, Some(Tok::Ident(_)), Some(Tok::Component)) => "component's attribute list".into(),
        (Tok::LParen, Some(Tok::Host), Some(Tok::Eq)) => "host's attribute list".into(),
        (Tok::LParen, Some(Tok::Ident(_)), Some(Tok::Upgrade)) => "upgrade's attribute list".into(),
        (Tok::LParen, Some(Tok::Ident(_)), Some(Tok::Constraintset)) => "constraintset's parameter list".into(),
        (Tok::LParen, Some(Tok::Ident(n)), Some(Tok::Use)) => format!("argument list of `use {n}`"),
        (Tok::LParen, Some(Tok::Card), _) => "`card(…)`".into(),
        (Tok::LParen, Some(Tok::Sum), _) => "`sum(…)`".into(),
        (Tok::LParen, Some(Tok::Hostof), _) => "`hostof(…)`".into(),
        (Tok::LParen, Some(Tok::Abs), _) => "`abs(…)`".into(),
        (Tok::LParen, Some(Tok::Min), _) => "`min(…)`".into(),
        (Tok::LParen, Some(Tok::Max), _) => "`max(…)`".into(),
        (Tok::LParen, Some(Tok::Reachable), _) => "`reachable(…)`".into(),
        (Tok::LParen, Some(Tok::Deployment), _) => "quantifier's body".into(),
        (Tok::LParen, Some(Tok::Ident(_)), Some(Tok::In)) => "quantifier's body".into(),
        (Tok::LBrace, Some(Tok::Constraintset), _) => "constraintset's body".into(),
        (Tok::LBrace, Some(Tok::Eq), Some(Tok::Ident(k))) if k == "ports" => "port list".into(),
        (Tok::LBrace, Some(Tok::Eq), _) => "set".into(),
        (Tok::LBracket, _, _) => "port bound".into(),
        (Tok::LParen, _, _) => "parenthesis".into(),
        _ => "brace".into(),
    }
}

/// The innermost bracket still open before token index `upto` of the piece.
fn innermost_open(piece: &[(Tok, Span)], upto: usize) -> Option<usize> {
    let mut stack = vec![];
    for (i, (t, _)) in piece.iter().enumerate().take(upto) {
        match t {
            Tok::LParen | Tok::LBrace | Tok::LBracket => stack.push(i),
            Tok::RParen | Tok::RBrace | Tok::RBracket => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// Tokens that join two terms into a clause and cannot start one.
fn is_relation(t: &Tok) -> bool {
    matches!(
        t,
        Tok::Eq | Tok::Ne | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::Connectsto | Tok::Connectedto | Tok::On
    )
}

/// Tokens that can end a term.
fn ends_term(t: &Tok) -> bool {
    matches!(t, Tok::Ident(_) | Tok::Int(_) | Tok::Str(_) | Tok::True | Tok::False | Tok::RParen)
        || t.keyword().is_some()
}

/// `a = 1  -b = 2`: a juxtaposed clause that starts with unary minus is read
/// as `a = 1 - b`, and the parser then trips over the second `=`. Recognised
/// when the unexpected token is a relation and, in the same bracket, a `-`
/// written like a unary minus (space before, none after) follows a complete
/// relation with no relation in between.
fn unary_minus_clause(piece: &[(Tok, Span)], idx: usize, src: &str, file: FileId) -> Option<Diagnostic> {
    let (found, found_span) = piece.get(idx).map(|(t, s)| (t, *s))?;
    if !is_relation(found) {
        return None;
    }
    let open = innermost_open(piece, idx).map(|o| o + 1).unwrap_or(0);
    let mut depth = 0i64;
    let mut seen_relation = false;
    let mut candidate = None;
    for k in open..idx {
        let (t, span) = &piece[k];
        match t {
            Tok::LParen | Tok::LBrace | Tok::LBracket => depth += 1,
            Tok::RParen | Tok::RBrace | Tok::RBracket => depth -= 1,
            _ if depth != 0 => {}
            t if is_relation(t) => {
                seen_relation = true;
                candidate = None;
            }
            Tok::Minus if seen_relation && k > 0 && ends_term(&piece[k - 1].0) => {
                let bytes = src.as_bytes();
                let (s, e) = (span.start as usize, span.end as usize);
                let space_before = s == 0 || bytes.get(s - 1).is_some_and(u8::is_ascii_whitespace);
                let space_after = !matches!(bytes.get(e), Some(b) if !b.is_ascii_whitespace());
                if space_before && !space_after {
                    candidate = Some(*span);
                }
            }
            _ => {}
        }
    }
    let minus = candidate?;
    let op = src.get(found_span.range()).unwrap_or("?");
    Some(
        Diagnostic::new(Code::Syntax, "a clause cannot start with unary `-`")
            .primary(file, minus, "read as a subtraction that continues the clause before")
            .secondary(file, found_span, format!("so this `{op}` is unexpected"))
            .help("put the clause in parentheses, as in `(-x > -3)`, or write it without a leading `-`, as in `0 - x > -3`"),
    )
}

// ---- objectives and preferences (issue 19) ----

/// `minimize`/`maximize`/`prefer` where they cannot be (inside a
/// constraintset's body: E0474), and a line after an objective or preference
/// that does not start a declaration (a misspelt one, `minimise …`).
fn soft_decl_diagnostic(
    piece: &[(Tok, Span)],
    idx: usize,
    found: Option<&Tok>,
    found_span: Span,
    src: &str,
    file: FileId,
) -> Option<Diagnostic> {
    let t = found?;
    if idx > 0 && matches!(t, Tok::Minimize | Tok::Maximize | Tok::Prefer) {
        let k = t.keyword().unwrap_or("minimize");
        let inside = piece[..idx].iter().any(|(t, _)| matches!(t, Tok::LBrace))
            && matches!(piece.first(), Some((Tok::Constraintset, _)));
        if inside {
            return Some(
                Diagnostic::new(Code::SoftInConstraintset, format!("`{k}` inside a constraintset"))
                    .primary(file, found_span, "not a clause")
                    .help(format!("`{k}` is a declaration of its own: write it at the top level of the goal file, after the constraintset's `}}`"))
                    .note("constraintsets hold rules that must hold; objectives and preferences rank the configurations that satisfy them"),
            );
        }
    }
    let open_ended = matches!(piece.first(), Some((Tok::Minimize | Tok::Maximize | Tok::Prefer, _)));
    if open_ended && idx > 1 && starts_line(src, found_span.start as usize) {
        if let Tok::Ident(_) = t {
            let mut d = other_language_word(Some(t), found_span, file).unwrap_or_else(|| {
                Diagnostic::new(Code::Syntax, format!("expected a declaration, found {}", t.describe())).primary(
                    file,
                    found_span,
                    "not the start of a declaration",
                )
            });
            d = d.note(format!(
                "`{}` takes one {}; a new line must start a new declaration",
                piece[0].0.keyword().unwrap_or("prefer"),
                if matches!(piece[0].0, Tok::Prefer) { "clause (group several in parentheses)" } else { "term" }
            ));
            return Some(d);
        }
    }
    None
}

/// A word of other optimisation languages where a declaration starts:
/// `minimise`, MiniZinc's `solve minimize`, `objective`, `soft`, … (E0001
/// with a hint naming the Deladas way).
fn other_language_word(found: Option<&Tok>, span: Span, file: FileId) -> Option<Diagnostic> {
    let Some(Tok::Ident(name)) = found else { return None };
    let help = match name.as_str() {
        "minimise" | "minimum" | "min" => "to minimise a term, write `minimize TERM`",
        "maximise" | "maximum" | "max" => "to maximise a term, write `maximize TERM`",
        "solve" => {
            "Deladas has no `solve` item: write `minimize TERM` or `maximize TERM` (MiniZinc's `solve minimize`)"
        }
        "objective" | "optimize" | "optimise" | "goal" => "an objective is written `minimize TERM` or `maximize TERM`",
        "soft" | "should" | "preferred" | "preference" | "weight" => {
            "a soft constraint is written `prefer CLAUSE`, or `prefer [WEIGHT] CLAUSE`"
        }
        _ => return None,
    };
    Some(
        Diagnostic::new(Code::Syntax, format!("expected a declaration, found name `{name}`"))
            .primary(file, span, "not the start of a declaration")
            .help(help),
    )
}

// ---- end objectives and preferences ----

fn syntax_diagnostic(err: PErr, piece: &[(Tok, Span)], src: &str, file: FileId) -> Diagnostic {
    let next_decl_hint = |found: &Tok| -> Option<&'static str> {
        if is_decl_keyword(found) {
            Some("the declaration before it is not finished")
        } else {
            None
        }
    };
    let (found_span, found_desc, expected, at_end, found_tok) = match err {
        ParseError::User { error: UserError::TooDeep(span) } => {
            // Point at the first token of the too-deep formula, not at all of
            // it (it can span thousands of characters).
            let at = piece.iter().find(|(_, s)| s.start == span.start).map(|(_, s)| *s).unwrap_or(span);
            return Diagnostic::new(Code::TooDeep, "formula nested too deeply")
                .primary(file, at, format!("this formula is nested more than {MAX_DEPTH} levels deep"))
                .help("split it into several clauses or name parts of it with a constraintset");
        }
        ParseError::UnrecognizedToken { token: (l, t, r), expected } => {
            (Span::new(l, r), t.describe(), expected, false, Some(t))
        }
        ParseError::UnrecognizedEof { expected, .. } => {
            let last = piece.last().map(|t| t.1).unwrap_or_default();
            (last, "the end of the declaration".to_string(), expected, true, None)
        }
        ParseError::ExtraToken { token: (l, t, r) } => {
            return Diagnostic::new(Code::Syntax, format!("unexpected {} after a complete declaration", t.describe()))
                .primary(file, Span::new(l, r), "expected a new declaration here")
                .help("declarations start with `component`, `host`, `constraintset`, `import`, `use` or `upgrade`");
        }
        ParseError::InvalidToken { location } => {
            return Diagnostic::new(Code::Syntax, "invalid token").primary(
                file,
                Span::new(location, location + 1),
                "here",
            );
        }
    };
    // Workload declarations (`import hosts from "…"`, `host web[N] = …`)
    // are reported as the plain forms were: `import patterns` lacks quotes,
    // `host h1(…)` lacks `= host`.
    let (found_span, found_desc, mut expected, at_end, found_tok) = match piece {
        [(Tok::Import, _), (t @ Tok::Ident(_), s), rest @ ..] if !matches!(rest.first(), Some((Tok::Ident(_), _))) => {
            (*s, t.describe(), vec!["\"string\"".to_string()], false, Some(t.clone()))
        }
        _ => (found_span, found_desc, expected, at_end, found_tok),
    };
    if matches!(piece, [(Tok::Host, _), (Tok::Ident(_), _), ..]) && expected.iter().any(|e| e == "\"=\"") {
        expected.retain(|e| e != "\"[\"");
    }
    // Index of the offending token within the piece (len at end).
    let idx =
        if at_end { piece.len() } else { piece.iter().position(|(_, s)| *s == found_span).unwrap_or(piece.len()) };
    if let Some(d) = soft_decl_diagnostic(piece, idx, found_tok.as_ref(), found_span, src, file) {
        return d;
    }
    let where_ = if at_end { "after this" } else { "unexpected here" };
    if let Some(d) = unary_minus_clause(piece, idx, src, file) {
        return d;
    }
    // Is the closer of the innermost open bracket among the expected tokens?
    if let Some(open) = innermost_open(piece, idx) {
        if let Some(closer) = closer_of(&piece[open].0) {
            let quoted = format!("\"{closer}\"");
            if expected.iter().any(|e| e.replace("\\\"", "\"") == quoted) {
                let ctx = bracket_context(piece, open);
                // `(a = 1 b = 2)`: a name where `,` or the closer is expected
                // is most likely a missing comma between list entries.
                let comma_expected = expected.iter().any(|e| e == "\",\"");
                let starts_entry = matches!(found_tok, Some(Tok::Ident(_)))
                    || found_tok.as_ref().is_some_and(|t| t.keyword().is_some() && !is_decl_keyword(t));
                if comma_expected && starts_entry && !at_end {
                    return Diagnostic::new(
                        Code::Syntax,
                        format!("expected `,` or `{closer}` in the {ctx}, found {found_desc}"),
                    )
                    .primary(file, found_span, "expected `,` before this")
                    .secondary(file, piece[open].1, format!("{ctx} opened here"))
                    .help("entries of a list are separated by commas");
                }
                let msg = format!("expected `{closer}` to close the {ctx}");
                let mut d = Diagnostic::new(Code::Syntax, msg)
                    .primary(
                        file,
                        found_span,
                        if at_end { format!("expected `{closer}` after this") } else { format!("found {found_desc}") },
                    )
                    .secondary(file, piece[open].1, format!("{ctx} opened here"));
                let others: Vec<&String> = expected.iter().filter(|e| e.replace("\\\"", "\"") != quoted).collect();
                if !others.is_empty() && others.len() <= 4 {
                    let words: Vec<String> = others.iter().map(|e| terminal_words(e)).collect();
                    d = d.note(format!("{} would also fit here", words.join(" or ")));
                }
                if let Some(t) = &found_tok {
                    if let Some(h) = next_decl_hint(t) {
                        d = d.note(h);
                    }
                }
                return d;
            }
        }
    }
    let summary = summarize_expected(&expected);
    if idx == 0 {
        if let Some(d) = other_language_word(found_tok.as_ref(), found_span, file) {
            return d;
        }
        // A piece that does not start with a declaration keyword.
        let mut d = Diagnostic::new(Code::Syntax, format!("expected a declaration, found {found_desc}"))
            .primary(file, found_span, "not the start of a declaration")
            .note("declarations start with `component`, `host`, `constraintset`, `import`, `use` or `upgrade`");
        if let Some(Tok::Ident(name)) = &found_tok {
            let kws = [
                "component",
                "host",
                "constraintset",
                "import",
                "use",
                "upgrade",
                "minimize",
                "maximize",
                "prefer",
                "instance",
            ];
            if let Some(k) = crate::diagnostics::did_you_mean(name, kws) {
                d = d.did_you_mean(k);
            }
        }
        return d;
    }
    let mut d = Diagnostic::new(Code::Syntax, format!("expected {summary}, found {found_desc}")).primary(
        file,
        found_span,
        if at_end { format!("expected {summary} after this") } else { where_.to_string() },
    );
    if let ([(Tok::Host, _), (Tok::Ident(_), _), ..], 2, Some(Tok::LParen)) = (piece, idx, &found_tok) {
        d = d.help("a host is declared as `host NAME = host(attribute = value, …)`");
    }
    if let Some(k) = found_tok.as_ref().and_then(Tok::keyword) {
        if expected.iter().any(|e| e == "\"name\"") {
            d = d.note(format!(
                "`{k}` is a keyword: keywords can name ports and attributes, but not variables, components, hosts or constraintsets"
            ));
        }
    }
    if let ([(Tok::Import, _), ..], 1, Some(Tok::Ident(name))) = (piece, idx, &found_tok) {
        d = d.help(format!("write the file name in quotes: `import \"{name}\"`"));
    }
    if let Some(t) = &found_tok {
        if let Some(h) = next_decl_hint(t) {
            d = d.note(h);
        }
        if matches!(t, Tok::Minus) && summary.contains("clause") {
            d = d.help("a clause cannot start with unary `-` (it would continue the clause before); write `(-x) < 3` or `0 - x < 3`");
        }
        if let Tok::Ident(name) = t {
            if expected.iter().any(|e| e == "\"=\"") && src.get(found_span.range()) == Some(name.as_str()) {
                // e.g. `host h1 host(...)`
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> SourceFile {
        let (f, d) = parse(src, 0);
        assert!(d.is_empty(), "unexpected diagnostics: {d:#?}");
        f
    }

    #[test]
    fn keywords_as_port_names() {
        let f = parse_ok("component C(code = \"x\", ports = {in, out: output, host[], use[4]})");
        let DeclKind::Component { attrs, .. } = &f.decls[0].kind else { panic!() };
        let AttrValueKind::Set(ports) = &attrs.entries[1].value.kind else { panic!() };
        let names: Vec<&str> = ports.iter().map(|p| p.name.name.as_str()).collect();
        assert_eq!(names, ["in", "out", "host", "use"]);
        assert_eq!(ports[3].arity, Arity::Bounded(4));
    }

    #[test]
    fn juxtaposition_and_precedence() {
        let f = parse_ok("constraintset s = constraintset { a implies b or c and not d = 1  x.in connectsto y.out }");
        let DeclKind::Constraintset(cs) = &f.decls[0].kind else { panic!() };
        assert_eq!(cs.body.len(), 2);
        assert!(matches!(cs.body[0].kind, ExprKind::Implies(..)));
        assert!(matches!(cs.body[1].kind, ExprKind::ConnectsTo(..)));
    }

    #[test]
    fn recovers_at_next_declaration() {
        let src =
            "component A(code = \"a\", ports = {p}\ncomponent B(code = \"b\", ports = {q})\nhost h = host(x = 1)\n";
        let (f, d) = parse(src, 0);
        assert_eq!(d.len(), 1, "{d:#?}");
        assert_eq!(d[0].message, "expected `)` to close the component's attribute list");
        assert_eq!(f.decls.len(), 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("constraintset s = constraintset {{ {}true }}", "not ".repeat(5000));
        let (_, d) = parse(&deep, 0);
        assert_eq!(d[0].code, Code::TooDeep);
        let parens = format!("constraintset s = constraintset {{ {}true{} }}", "(".repeat(5000), ")".repeat(5000));
        let (f, d) = parse(&parens, 0);
        assert!(d.is_empty());
        assert_eq!(f.decls.len(), 1);
    }

    #[test]
    fn doc_comments_attach() {
        let f = parse_ok(
            "/// first\n/// second\ncomponent A(code=\"a\", ports={})\n// x\ncomponent B(code=\"b\", ports={})",
        );
        assert_eq!(f.decls[0].doc.as_deref(), Some("first\nsecond"));
        assert_eq!(f.decls[1].doc, None);
    }
}
