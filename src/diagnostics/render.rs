//! Turning [`Diagnostic`]s into text for people or JSON for tools.
//!
//! The only module that knows codespan-reporting's types.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::term;
use serde::Serialize;

use super::{Diagnostic, Severity, Sources};

fn to_codespan(d: &Diagnostic, sources: &Sources) -> cs::Diagnostic<usize> {
    let sev = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let len = sources.text(l.file).len();
            let (s, e) = (l.span.start as usize, l.span.end as usize);
            let range = s.min(len)..e.min(len).max(s.min(len));
            let style = if l.primary { cs::LabelStyle::Primary } else { cs::LabelStyle::Secondary };
            cs::Label::new(style, l.file, range).with_message(l.message.clone())
        })
        .collect();
    cs::Diagnostic::new(sev)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(d.notes.iter().map(|n| n.to_string()).collect())
}

fn config() -> term::Config {
    term::Config::default()
}

/// Renders diagnostics as plain rustc-style text (no colour).
pub fn to_text(diags: &[Diagnostic], sources: &Sources) -> String {
    let mut out = String::new();
    for d in diags {
        match term::emit_into_string(&config(), sources, &to_codespan(d, sources)) {
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
        if term::emit_to_write_style(&mut stream, &config(), sources, &to_codespan(d, sources)).is_err() {
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
