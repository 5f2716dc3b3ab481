//! Conversions between deladas and LSP coordinates: byte offsets in UTF-8
//! source and LSP positions (line, UTF-16 code unit), and file paths and
//! `file://` URIs.
//!
//! LSP counts columns in UTF-16 code units unless a client negotiates
//! otherwise; this server always uses UTF-16, so a `é` in a comment counts
//! one unit and an emoji two, while deladas spans count bytes. Out-of-range
//! positions from a client are clamped, never a panic.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use lsp_types::{Position, Range, Uri};

use deladas::syntax::ast::Span;

/// Line starts of one text, for converting offsets both ways.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    text: &'a str,
    /// Byte offset where each line starts; lines end at `\n`.
    starts: std::borrow::Cow<'a, [usize]>,
}

/// Byte offsets where the lines of `text` start.
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
    starts
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> LineIndex<'a> {
        LineIndex { text, starts: std::borrow::Cow::Owned(line_starts(text)) }
    }

    /// An index over line starts computed before by [`line_starts`] on the same text.
    pub fn with_starts(text: &'a str, starts: &'a [usize]) -> LineIndex<'a> {
        LineIndex { text, starts: std::borrow::Cow::Borrowed(starts) }
    }

    /// The LSP position of a byte offset (clamped to the text, rounded down
    /// to a character boundary).
    pub fn position(&self, offset: usize) -> Position {
        let mut offset = offset.min(self.text.len());
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).saturating_sub(1);
        let start = self.starts[line];
        let col: usize = self.text[start..offset].chars().map(char::len_utf16).sum();
        Position { line: line as u32, character: col as u32 }
    }

    /// The byte offset of an LSP position. A line past the end gives the end
    /// of the text; a column past the end of its line gives the line's end.
    pub fn offset(&self, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else { return self.text.len() };
        let end = self.starts.get(pos.line as usize + 1).map_or(self.text.len(), |&e| e - 1);
        let line = &self.text[start..end];
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut units = 0usize;
        for (i, c) in line.char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += c.len_utf16();
            if units > pos.character as usize {
                // Inside a surrogate pair: the character's start.
                return start + i;
            }
        }
        start + line.len()
    }

    /// The LSP range of a byte span.
    pub fn range(&self, span: Span) -> Range {
        Range { start: self.position(span.start as usize), end: self.position(span.end as usize) }
    }

    /// The byte span of an LSP range (start and end ordered).
    pub fn span(&self, range: Range) -> Span {
        let (a, b) = (self.offset(range.start), self.offset(range.end));
        Span::new(a.min(b), a.max(b))
    }
}

/// The `file://` URI of an absolute path, percent-encoding what URIs do not
/// allow as is.
pub fn path_to_uri(path: &Path) -> Option<Uri> {
    let text = path.to_str()?;
    let text = text.replace('\\', "/");
    let mut out = String::from("file://");
    if !text.starts_with('/') {
        out.push('/');
    }
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Uri::from_str(&out).ok()
}

/// The path of a `file://` URI; `None` for other schemes.
pub fn uri_to_path(uri: &Uri) -> Option<PathBuf> {
    let s = uri.as_str();
    let rest = s.strip_prefix("file://").or_else(|| s.strip_prefix("FILE://"))?;
    // Skip an authority (`localhost`) if any.
    let path = &rest[rest.find('/')?..];
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let bytes = percent_decode(path);
    let mut text = String::from_utf8(bytes).ok()?;
    // `/C:/x` is `C:/x` on Windows.
    if cfg!(windows) && text.len() >= 3 && text.as_bytes()[2] == b':' {
        text.remove(0);
    }
    Some(PathBuf::from(text))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_columns_count_code_units() {
        // `é` is 2 bytes and 1 UTF-16 unit; `😀` is 4 bytes and 2 units.
        let text = "// é😀\nhost h1 = host()\r\nx";
        let li = LineIndex::new(text);
        let h = text.find("host").expect("present");
        assert_eq!(li.position(h), Position { line: 1, character: 0 });
        let after_emoji = text.find('\n').expect("present");
        assert_eq!(li.position(after_emoji), Position { line: 0, character: 6 });
        assert_eq!(li.offset(Position { line: 0, character: 6 }), after_emoji);
        // Inside the surrogate pair: the emoji's start.
        let emoji = text.find('😀').expect("present");
        assert_eq!(li.offset(Position { line: 0, character: 5 }), emoji);
        // Past the end of a line (before `\r\n`), past the last line.
        assert_eq!(li.offset(Position { line: 1, character: 99 }), text.find('\r').expect("present"));
        assert_eq!(li.offset(Position { line: 9, character: 0 }), text.len());
        // Offsets inside a character round down.
        assert_eq!(li.position(emoji + 1), li.position(emoji));
        // Every character boundary round-trips (but the middle of `\r\n`,
        // which no LSP position names).
        for (i, _) in text.char_indices().filter(|&(i, _)| !text[..i].ends_with('\r')) {
            assert_eq!(li.offset(li.position(i)), i, "offset {i}");
        }
    }

    #[test]
    fn uris_round_trip() {
        let p = Path::new("/tmp/a dir/ünï.deladas");
        let u = path_to_uri(p).expect("a uri");
        assert_eq!(u.as_str(), "file:///tmp/a%20dir/%C3%BCn%C3%AF.deladas");
        assert_eq!(uri_to_path(&u).as_deref(), Some(p));
        let u = Uri::from_str("file://localhost/x/y.deladas").expect("a uri");
        assert_eq!(uri_to_path(&u), Some(PathBuf::from("/x/y.deladas")));
        let u = Uri::from_str("untitled:Untitled-1").expect("a uri");
        assert_eq!(uri_to_path(&u), None);
    }
}
