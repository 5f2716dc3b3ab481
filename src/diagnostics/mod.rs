//! Diagnostics: what every stage reports, independent of how it is shown.
//!
//! Stages build [`Diagnostic`]s (a code, a message, labelled spans, notes);
//! only [`render`] turns them into rustc-style text (codespan-reporting) or
//! the JSON of `cli.md`. Error codes and their one-line meaning live in
//! [`codes`], next to each other, and `docs/errors.md` documents each one with
//! an example that a test runs.

pub mod codes;
pub mod render;
pub mod sources;
pub mod span;

pub use codes::Code;
pub use sources::{FileId, Sources};

pub use span::Span;

/// How bad a diagnostic is. Errors make `check` exit 2; warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// A place in a source file with a short message: "unknown port".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub file: FileId,
    pub span: Span,
    pub message: String,
    /// The place the diagnostic is about (one or more); the others explain it.
    pub primary: bool,
}

/// Whether a note helps (a fix) or informs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoteKind {
    Help,
    Note,
}

/// Text shown after the labels: `help: …` or `note: …`, as rustc does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    pub text: String,
}

impl std::fmt::Display for Note {
    /// `help: TEXT` or `note: TEXT`, as rendered.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let word = match self.kind {
            NoteKind::Help => "help",
            NoteKind::Note => "note",
        };
        write!(f, "{word}: {}", self.text)
    }
}

/// An edit that fixes the diagnostic: replace `span` of `file` with
/// `replacement` (an editor offers it as a quick fix). It is shown to
/// people by its `help:` note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// What the edit does, in words (`replace with `out``).
    pub message: String,
    pub file: FileId,
    pub span: Span,
    pub replacement: String,
}

/// One error or warning about a Deladas goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub labels: Vec<Label>,
    /// Shown after the labels, in order.
    pub notes: Vec<Note>,
    /// Edits that fix it (each also has a `help:` note).
    pub suggestions: Vec<Suggestion>,
}

impl Diagnostic {
    /// A new diagnostic with the severity its code implies.
    pub fn new(code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: code.severity(),
            code,
            message: message.into(),
            labels: vec![],
            notes: vec![],
            suggestions: vec![],
        }
    }
    /// Adds the primary label.
    pub fn primary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { file, span, message: message.into(), primary: true });
        self
    }
    /// Adds a secondary label: another place that explains this one.
    pub fn secondary(mut self, file: FileId, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label { file, span, message: message.into(), primary: false });
        self
    }
    /// Adds `help: …`.
    pub fn help(mut self, text: impl AsRef<str>) -> Self {
        self.notes.push(Note { kind: NoteKind::Help, text: text.as_ref().to_string() });
        self
    }
    /// Adds `note: …`.
    pub fn note(mut self, text: impl AsRef<str>) -> Self {
        self.notes.push(Note { kind: NoteKind::Note, text: text.as_ref().to_string() });
        self
    }
    /// Adds `help: did you mean `NAME`?` and, when the diagnostic has a
    /// primary label (the name written), the edit replacing it with `name`.
    pub fn did_you_mean(mut self, name: &str) -> Self {
        if let Some(l) = self.primary_label() {
            self.suggestions.push(Suggestion {
                message: format!("replace with `{name}`"),
                file: l.file,
                span: l.span,
                replacement: name.to_string(),
            });
        }
        self.help(format!("did you mean `{name}`?"))
    }
    /// Adds an edit that fixes the diagnostic, with its `help:` note.
    pub fn suggest(mut self, help: impl AsRef<str>, file: FileId, span: Span, replacement: impl Into<String>) -> Self {
        self.suggestions.push(Suggestion {
            message: help.as_ref().to_string(),
            file,
            span,
            replacement: replacement.into(),
        });
        self.help(help)
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
    /// The first primary label, if any.
    pub fn primary_label(&self) -> Option<&Label> {
        self.labels.iter().find(|l| l.primary)
    }
}

/// `did you mean …?`: the candidate closest to `name` by edit distance, if it
/// is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// Edit distance over characters, counting a swap of two adjacent
/// characters as one edit (optimal string alignment): `zoen` is one edit
/// from `zone`, as a typist would expect.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: i-2, i-1, i.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 0..a.len() {
        cur[0] = i + 1;
        for j in 0..b.len() {
            let sub = prev[j] + usize::from(a[i] != b[j]);
            let mut best = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                best = best.min(prev2[j - 1] + 1);
            }
            cur[j + 1] = best;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("outt", ["in", "out"]), Some("out"));
        assert_eq!(did_you_mean("rot", ["rin", "rout", "cin"]), Some("rout"));
        assert_eq!(did_you_mean("zzzz", ["in", "out"]), None);
        assert_eq!(did_you_mean("x", ["y"]), Some("y"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("zoen", "zone"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(did_you_mean("zoen", ["memory", "zone"]), Some("zone"));
    }
}
