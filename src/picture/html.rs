//! A diagnostic as a shareable HTML page (`explain --format html`): the
//! message, each source file the labels point into with the labelled spans
//! highlighted and their messages beside the lines, then the notes (the
//! counting argument) and the helps (the repairs). Self-contained: inline
//! CSS, no scripts, no external resources; every piece of text escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::svg::{escape, html_page};
use crate::diagnostics::{Diagnostic, FileId, Note, NoteKind, Sources};

const CSS: &str = r#"
body { font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 70em; color: #222; line-height: 1.4; }
h1 { font-size: 1.4em; } h1 .code { color: #a00; font-family: monospace; }
.verdict { padding: .6em 1em; border-left: 4px solid #a00; background: #fdf0f0; }
.verdict.ok { border-color: #1a8a1a; background: #eefaee; }
pre.source { background: #f7f7f7; border: 1px solid #ddd; padding: .8em 0; overflow-x: auto; font-size: 13px; }
pre.source .line { display: block; padding: 0 1em; }
pre.source .line.labelled { background: #fffbe6; }
pre.source .ln { color: #999; display: inline-block; width: 3em; text-align: right; margin-right: 1em; user-select: none; }
mark.primary { background: #ffc9c9; border-bottom: 2px solid #c00; }
mark.secondary { background: #dbe8ff; border-bottom: 2px solid #2b5cc0; }
pre.source .note { display: block; padding: 0 1em 0 5em; font-style: italic; }
pre.source .note.primary { color: #a00; } pre.source .note.secondary { color: #2b5cc0; }
.notes li { margin: .3em 0; white-space: pre-wrap; font-family: monospace; font-size: 13px; }
.repairs li { margin: .3em 0; white-space: pre-wrap; }
footer { color: #888; font-size: .85em; margin-top: 2em; }
"#;

/// The page for `diags` (usually one: the explanation) with `heading` above
/// them.
pub fn diagnostics_page(title: &str, heading: &str, ok: bool, diags: &[Diagnostic], sources: &Sources) -> String {
    let mut b = String::new();
    let _ = writeln!(b, "<h1>{}</h1>", escape(title));
    let _ = writeln!(b, "<p class=\"verdict{}\">{}</p>", if ok { " ok" } else { "" }, escape(heading));
    for d in diags {
        let _ = writeln!(
            b,
            "<section class=\"diagnostic\">\n<h2><span class=\"code\">{}[{}]</span> {}</h2>",
            escape(&format!("{:?}", d.severity).to_lowercase()),
            escape(d.code.as_str()),
            escape(&d.message)
        );
        // The files the labels point into, in order of first mention.
        let mut files: Vec<FileId> = vec![];
        for l in &d.labels {
            if !files.contains(&l.file) {
                files.push(l.file);
            }
        }
        for f in files {
            let _ = writeln!(b, "<h3>{}</h3>", escape(sources.name_of(f)));
            b.push_str(&source_block(d, f, sources));
        }
        let (helps, notes): (Vec<&Note>, Vec<&Note>) = d.notes.iter().partition(|n| n.kind == NoteKind::Help);
        if !notes.is_empty() {
            b.push_str("<h3>Why</h3>\n<ul class=\"notes\">\n");
            for n in notes {
                let _ = writeln!(b, "<li>{}</li>", escape(&n.text));
            }
            b.push_str("</ul>\n");
        }
        if !helps.is_empty() {
            b.push_str("<h3>Repairs</h3>\n<ul class=\"repairs\">\n");
            for n in helps {
                let _ = writeln!(b, "<li>{}</li>", escape(&n.text));
            }
            b.push_str("</ul>\n");
        }
        b.push_str("</section>\n");
    }
    let _ = writeln!(b, "<footer>written by deladas {}</footer>", escape(env!("CARGO_PKG_VERSION")));
    html_page(title, CSS, &b)
}

/// The file's text with line numbers, the labels' spans marked, each label's
/// message under the line its span ends on.
fn source_block(d: &Diagnostic, f: FileId, sources: &Sources) -> String {
    let text = sources.text(f);
    let len = text.len();
    // Per byte: 2 = primary, 1 = secondary, 0 = none.
    let mut kind = vec![0u8; len];
    let mut notes: BTreeMap<usize, Vec<(bool, &str)>> = BTreeMap::new();
    for l in d.labels.iter().filter(|l| l.file == f) {
        let (s, e) = ((l.span.start as usize).min(len), (l.span.end as usize).min(len));
        let k = if l.primary { 2 } else { 1 };
        for x in kind.iter_mut().take(e).skip(s) {
            *x = (*x).max(k);
        }
        let bytes = &text.as_bytes()[..e.max(s)];
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
        let end_line = newlines - usize::from(e > s && bytes.last() == Some(&b'\n'));
        if !l.message.is_empty() {
            notes.entry(end_line).or_default().push((l.primary, &l.message));
        }
    }
    let mut o = String::from("<pre class=\"source\">");
    let mut offset = 0;
    for (ln, line) in text.split_inclusive('\n').enumerate() {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        let marked = kind[offset..offset + body.len()].iter().any(|&k| k > 0);
        let _ = write!(
            o,
            "<span class=\"line{}\"><span class=\"ln\">{}</span>",
            if marked { " labelled" } else { "" },
            ln + 1
        );
        // Runs of equal kind, split on character boundaries.
        let mut run = String::new();
        let mut cur = 0u8;
        for (i, c) in body.char_indices() {
            let k = kind[offset + i];
            if k != cur && !run.is_empty() {
                o.push_str(&wrap(cur, &run));
                run.clear();
            }
            cur = k;
            run.push(c);
        }
        if !run.is_empty() {
            o.push_str(&wrap(cur, &run));
        }
        o.push_str("</span>");
        for (primary, msg) in notes.get(&ln).into_iter().flatten() {
            let class = if *primary { "primary" } else { "secondary" };
            let _ = write!(o, "<span class=\"note {class}\">^ {}</span>", escape(msg));
        }
        offset += line.len();
    }
    o.push_str("</pre>\n");
    o
}

fn wrap(kind: u8, s: &str) -> String {
    match kind {
        2 => format!("<mark class=\"primary\">{}</mark>", escape(s)),
        1 => format!("<mark class=\"secondary\">{}</mark>", escape(s)),
        _ => escape(s),
    }
}
