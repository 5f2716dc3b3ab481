//! The source files of one compilation, for rendering labels.

use codespan_reporting::files::{Files, SimpleFile};

/// Index of a file in [`Sources`].
pub type FileId = usize;

/// Every file loaded for one goal: the goal itself, its imports, and any
/// standard-library file (named `<stdlib>/…`). Implements codespan's `Files`.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SimpleFile<String, String>>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }
    /// Adds a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SimpleFile::new(name.into(), text.into()));
        self.files.len() - 1
    }
    /// The file's display name.
    pub fn name_of(&self, id: FileId) -> &str {
        self.files.get(id).map(|f| f.name().as_str()).unwrap_or("<unknown>")
    }
    /// The file's text.
    pub fn text(&self, id: FileId) -> &str {
        self.files.get(id).map(|f| f.source().as_str()).unwrap_or("")
    }
    pub fn len(&self) -> usize {
        self.files.len()
    }
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
    /// 1-based line and 1-based column (in characters) of a byte offset.
    ///
    /// Uses the file's line index (a binary search), so labelling many
    /// diagnostics in a large file stays fast.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let Some(file) = self.files.get(id) else { return (1, 1) };
        let text = file.source().as_str();
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = file.line_index((), offset).unwrap_or(0);
        let line_start = file.line_range((), line).map(|r| r.start).unwrap_or(0).min(offset);
        let col = text.get(line_start..offset).map_or(0, |s| s.chars().count()) + 1;
        (line + 1, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl<'a> Files<'a> for Sources {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, codespan_reporting::files::Error> {
        self.files.get(id).map(|f| f.name().as_str()).ok_or(codespan_reporting::files::Error::FileMissing)
    }
    fn source(&'a self, id: FileId) -> Result<&'a str, codespan_reporting::files::Error> {
        self.files.get(id).map(|f| f.source().as_str()).ok_or(codespan_reporting::files::Error::FileMissing)
    }
    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, codespan_reporting::files::Error> {
        self.files.get(id).ok_or(codespan_reporting::files::Error::FileMissing)?.line_index((), byte_index)
    }
    fn line_range(
        &'a self,
        id: FileId,
        line_index: usize,
    ) -> Result<std::ops::Range<usize>, codespan_reporting::files::Error> {
        self.files.get(id).ok_or(codespan_reporting::files::Error::FileMissing)?.line_range((), line_index)
    }
}
