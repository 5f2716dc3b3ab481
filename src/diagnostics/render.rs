//! Turning [`Diagnostic`]s into text for people or JSON for tools.
//!
//! The only module that knows codespan-reporting's types.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::Files;
use codespan_reporting::term;
use serde::Serialize;

use super::{Diagnostic, Severity, Sources};

/// At most this many bytes of a source line are quoted under a label: a
/// longer line (a whole goal on one line) is cut to a window around the
/// label, with its real line and column numbers.
pub const MAX_QUOTED_LINE: usize = 200;

/// A window on one long source line, shown as a file of its own.
struct Excerpt {
    /// The real file.
    file: usize,
    /// The window's text (plus `…` when the line goes on).
    text: String,
    /// 0-based index of the real line.
    line: usize,
    /// Characters on the real line before the window.
    col_offset: usize,
}

/// The sources as codespan sees them for one diagnostic: the real files, and
/// after them (ids from `sources.len()`) the excerpts of long lines.
struct Shown<'a> {
    sources: &'a Sources,
    excerpts: Vec<Excerpt>,
}

type FilesResult<T> = Result<T, codespan_reporting::files::Error>;

impl<'a> codespan_reporting::files::Files<'a> for Shown<'a> {
    type FileId = usize;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: usize) -> FilesResult<&'a str> {
        match id.checked_sub(self.sources.len()) {
            None => self.sources.name(id),
            Some(k) => {
                let ex = self.excerpts.get(k).ok_or(codespan_reporting::files::Error::FileMissing)?;
                self.sources.name(ex.file)
            }
        }
    }
    fn source(&'a self, id: usize) -> FilesResult<&'a str> {
        match id.checked_sub(self.sources.len()) {
            None => self.sources.source(id),
            Some(k) => {
                self.excerpts.get(k).map(|e| e.text.as_str()).ok_or(codespan_reporting::files::Error::FileMissing)
            }
        }
    }
    fn line_index(&'a self, id: usize, byte_index: usize) -> FilesResult<usize> {
        match id.checked_sub(self.sources.len()) {
            None => self.sources.line_index(id, byte_index),
            Some(_) => Ok(0),
        }
    }
    fn line_number(&'a self, id: usize, line_index: usize) -> FilesResult<usize> {
        match id.checked_sub(self.sources.len()) {
            None => Ok(line_index + 1),
            Some(k) => self.excerpts.get(k).map(|e| e.line + 1).ok_or(codespan_reporting::files::Error::FileMissing),
        }
    }
    fn column_number(&'a self, id: usize, line_index: usize, byte_index: usize) -> FilesResult<usize> {
        match id.checked_sub(self.sources.len()) {
            None => {
                let text = self.sources.text(id);
                let start = self.sources.line_range(id, line_index)?.start;
                let end = floor_boundary(text, byte_index.min(text.len())).max(start);
                Ok(text.get(start..end).map_or(0, |t| t.chars().count()) + 1)
            }
            Some(k) => {
                let ex = self.excerpts.get(k).ok_or(codespan_reporting::files::Error::FileMissing)?;
                let end = floor_boundary(&ex.text, byte_index.min(ex.text.len()));
                Ok(ex.col_offset + ex.text[..end].chars().count() + 1)
            }
        }
    }
    fn line_range(&'a self, id: usize, line_index: usize) -> FilesResult<std::ops::Range<usize>> {
        match id.checked_sub(self.sources.len()) {
            None => self.sources.line_range(id, line_index),
            Some(k) => {
                let ex = self.excerpts.get(k).ok_or(codespan_reporting::files::Error::FileMissing)?;
                if line_index == 0 {
                    Ok(0..ex.text.len())
                } else {
                    Err(codespan_reporting::files::Error::LineTooLarge { given: line_index, max: 0 })
                }
            }
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The 0-based index and byte range of the line holding `offset` (without
/// its line break), from the file's line index.
fn line_bounds(sources: &Sources, file: usize, offset: usize) -> (usize, usize, usize) {
    let text = sources.text(file);
    let line = sources.line_index(file, offset).unwrap_or(0);
    let r = sources.line_range(file, line).unwrap_or(0..text.len());
    let end = if text[r.start..r.end].ends_with('\n') { r.end - 1 } else { r.end };
    let end = if text[r.start..end].ends_with('\r') { end - 1 } else { end };
    (line, r.start, end.max(r.start))
}

fn to_codespan<'a>(d: &Diagnostic, sources: &'a Sources) -> (cs::Diagnostic<usize>, Shown<'a>) {
    let sev = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let mut shown = Shown { sources, excerpts: vec![] };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let text = sources.text(l.file);
            let len = text.len();
            let (s, e) = (l.span.start as usize, l.span.end as usize);
            let s = floor_boundary(text, s.min(len));
            let e = floor_boundary(text, e.min(len)).max(s);
            let style = if l.primary { cs::LabelStyle::Primary } else { cs::LabelStyle::Secondary };
            let (line, line_start, line_end) = line_bounds(sources, l.file, s);
            let (_, end_line_start, end_line_end) = line_bounds(sources, l.file, e);
            let long = line_end - line_start > MAX_QUOTED_LINE || end_line_end - end_line_start > MAX_QUOTED_LINE;
            let (file, range) = if long && l.file < sources.len() {
                // A window from a little before the label, on its first line.
                let ws = floor_boundary(text, s.saturating_sub(MAX_QUOTED_LINE / 4).max(line_start));
                let we = floor_boundary(text, (ws + MAX_QUOTED_LINE).min(line_end)).max(ws);
                let mut window = text[ws..we].to_string();
                if we < line_end {
                    window.push('…');
                }
                let range = (s - ws)..(e.min(we) - ws);
                shown.excerpts.push(Excerpt {
                    file: l.file,
                    text: window,
                    line,
                    col_offset: text[line_start..ws].chars().count(),
                });
                (sources.len() + shown.excerpts.len() - 1, range)
            } else {
                (l.file, s..e)
            };
            cs::Label::new(style, file, range).with_message(l.message.clone())
        })
        .collect();
    let diag = cs::Diagnostic::new(sev)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(d.notes.iter().map(|n| n.to_string()).collect());
    (diag, shown)
}

fn config() -> term::Config {
    term::Config::default()
}

/// Renders diagnostics as plain rustc-style text (no colour).
pub fn to_text(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        let (diag, shown) = to_codespan(d, sources);
        match term::emit_into_string(&config(), &shown, &diag) {
            Ok(s) => out.push_str(&s),
            Err(e) => out.push_str(&format!("{}[{}]: {} ({e})\n", severity_word(d.severity), d.code, d.message)),
        }
    }
    out
}

/// Writes diagnostics to stderr, coloured when stderr is a terminal.
pub fn to_stderr(diags: &[Diagnostic], sources: &Sources) {
    use std::io::IsTerminal;
    use term::termcolor::{ColorChoice, StandardStream};
    let choice = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        ColorChoice::Auto
    } else {
        ColorChoice::Never
    };
    let mut stream = StandardStream::stderr(choice);
    for d in diags {
        let (diag, shown) = to_codespan(d, sources);
        if term::emit_to_write_style(&mut stream, &config(), &shown, &diag).is_err() {
            eprintln!("{}[{}]: {}", severity_word(d.severity), d.code, d.message);
        }
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// One diagnostic in the JSON of `cli.md`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic {
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
    pub file: String,
    pub labels: Vec<JsonLabel>,
    pub notes: Vec<String>,
}

/// A label in JSON: byte offsets, 1-based lines and columns (in characters).
#[derive(Debug, Serialize)]
pub struct JsonLabel {
    pub primary: bool,
    pub message: String,
    pub file: String,
    pub start: usize,
    pub end: usize,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// Converts diagnostics to their JSON form.
pub fn to_json_values(diags: &[Diagnostic], sources: &Sources) -> Vec<JsonDiagnostic> {
    diags
        .iter()
        .map(|d| {
            let file =
                d.primary_label().or(d.labels.first()).map(|l| sources.name_of(l.file).to_string()).unwrap_or_default();
            let labels = d
                .labels
                .iter()
                .map(|l| {
                    let (line, column) = sources.line_col(l.file, l.span.start as usize);
                    let (end_line, end_column) = sources.line_col(l.file, l.span.end as usize);
                    JsonLabel {
                        primary: l.primary,
                        message: l.message.clone(),
                        file: sources.name_of(l.file).to_string(),
                        start: l.span.start as usize,
                        end: l.span.end as usize,
                        line,
                        column,
                        end_line,
                        end_column,
                    }
                })
                .collect();
            JsonDiagnostic {
                severity: severity_word(d.severity),
                code: d.code.as_str(),
                message: d.message.clone(),
                file,
                labels,
                notes: d.notes.iter().map(|n| n.to_string()).collect(),
            }
        })
        .collect()
}

/// Renders diagnostics as a pretty JSON array.
pub fn to_json(diags: &[Diagnostic], sources: &Sources) -> String {
    serde_json::to_string_pretty(&to_json_values(diags, sources)).unwrap_or_else(|_| "[]".to_string())
}
