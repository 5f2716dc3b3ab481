//! Host inventories: `import hosts from "inventory.csv"` (or `.json`).
//!
//! The loader reads the file through the bounded reader (`load::read_input`,
//! via [`super::load::FileSystem`]), adds its text to the sources, and parses
//! it here into hosts whose names and values keep their byte spans, so every
//! later diagnostic (a duplicate name, a mixed attribute type) points into
//! the inventory at the right line and column. The checker then declares
//! them like `host` declarations, in place of the `import`.
//!
//! CSV: the first line that is not empty nor a `#` comment is the header of
//! attribute names, one of them `name`. Every other line is one host; an
//! empty cell leaves the attribute out; a quoted cell (`"…"`, `""` for a
//! quote) is a string; otherwise `true`/`false` are booleans, `-?[0-9]+` an
//! integer, anything else a string.
//!
//! JSON: an array of objects (or `{"hosts": [...]}`), each with a string
//! `"name"` and attributes whose values are strings, integers or booleans
//! (`null` leaves the attribute out).

use crate::diagnostics::{Code, Diagnostic, FileId};
use crate::syntax::ast::Span;

use super::ir::Value;

/// One host read from an inventory.
#[derive(Debug, Clone)]
pub struct InventoryHost {
    pub name: String,
    pub name_span: Span,
    /// Attributes in column (or key) order, each with the span of its value.
    pub attrs: Vec<(String, Value, Span)>,
}

/// An inventory read for one `import hosts from "…"`.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file with the `import` and the span of its path string.
    pub from: FileId,
    pub at: Span,
    /// The inventory's own file in the sources.
    pub file: FileId,
    pub hosts: Vec<InventoryHost>,
}

/// The most hosts one inventory or host range may declare.
pub const MAX_HOSTS: usize = 100_000;

fn is_ident(s: &str) -> bool {
    let mut cs = s.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !crate::syntax::lexer::KEYWORDS.contains(&s)
}

/// A name usable as a host name, or why not.
fn bad_name(s: &str) -> Option<String> {
    if is_ident(s) {
        return None;
    }
    if crate::syntax::lexer::KEYWORDS.contains(&s) {
        return Some(format!("`{s}` is a keyword"));
    }
    let fixed: String = s.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    let fixed = if fixed.chars().next().is_some_and(|c| c.is_ascii_digit()) { format!("h{fixed}") } else { fixed };
    Some(format!("a host name is a Deladas name (letters, digits and `_`, not starting with a digit), e.g. `{fixed}`"))
}

fn err(file: FileId, span: Span, msg: impl Into<String>, label: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::BadInventory, msg).primary(file, span, label)
}

/// A typed value of an unquoted CSV cell.
fn typed(cell: &str) -> Result<Value, String> {
    match cell {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match cell.parse::<i64>() {
            Ok(n) if n.unsigned_abs() <= i32::MAX as u64 => Ok(Value::Int(n)),
            _ => Err(format!("`{cell}` is out of range (integers are at most 2^31-1 in magnitude)")),
        };
    }
    Ok(Value::Str(cell.to_string()))
}

/// Splits one CSV line (without its line end) at `base` into cells: text,
/// span, quoted.
fn csv_cells(line: &str, base: usize, file: FileId) -> Result<Vec<(String, Span, bool)>, Diagnostic> {
    let b = line.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    loop {
        // Leading spaces of a cell are not part of it.
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        if i < b.len() && b[i] == b'"' {
            let start = i;
            let mut text = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(err(
                            file,
                            Span::new(base + start, base + line.len()),
                            "a quoted cell is not closed on its line",
                            "no closing `\"`",
                        )
                        .help("close the quote; write a quote inside a quoted cell as `\"\"`"))
                    }
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                        text.push('"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = line[i..].chars().next().unwrap_or('\u{FFFD}');
                        text.push(ch);
                        i += ch.len_utf8().max(1);
                    }
                }
            }
            let end = i;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i < b.len() && b[i] != b',' {
                return Err(err(
                    file,
                    Span::new(base + i, base + i + 1),
                    "text after a quoted cell",
                    "expected `,` or the end of the line",
                ));
            }
            out.push((text, Span::new(base + start, base + end), true));
        } else {
            let start = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            let raw = &line[start..i];
            let trimmed = raw.trim_end();
            out.push((trimmed.to_string(), Span::new(base + start, base + start + trimmed.len()), false));
        }
        if i >= b.len() {
            return Ok(out);
        }
        i += 1; // the comma
    }
}

/// Parses a CSV inventory.
pub fn parse_csv(text: &str, file: FileId) -> (Vec<InventoryHost>, Vec<Diagnostic>) {
    let mut diags = vec![];
    let mut hosts = vec![];
    let mut header: Option<Vec<(String, Span)>> = None;
    let mut name_col = 0;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let base = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        let line = if base == 0 { line.trim_start_matches('\u{FEFF}') } else { line };
        let base = base + (raw.trim_end_matches(['\n', '\r']).len() - line.len());
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let cells = match csv_cells(line, base, file) {
            Ok(c) => c,
            Err(d) => {
                diags.push(d);
                if header.is_none() {
                    return (hosts, diags);
                }
                continue;
            }
        };
        let Some(cols) = &header else {
            let mut cols: Vec<(String, Span)> = vec![];
            for (c, span, _) in cells {
                if !is_ident(&c) {
                    diags.push(
                        err(file, span, format!("`{c}` is not an attribute name"), "in the header row")
                            .note("the first row of a CSV inventory names the attributes: `name,zone,cpu`"),
                    );
                } else if let Some((_, prev)) = cols.iter().find(|(n, _)| *n == c) {
                    diags.push(err(file, span, format!("column `{c}` appears twice"), "again here").secondary(
                        file,
                        *prev,
                        "first here",
                    ));
                }
                cols.push((c, span));
            }
            match cols.iter().position(|(n, _)| n == "name") {
                Some(k) => name_col = k,
                None => {
                    let span = Span::new(base, base + line.len());
                    diags.push(
                        err(file, span, "the inventory has no `name` column", "the header row")
                            .help("add a column `name` with each host's name, e.g. `name,zone,cpu`"),
                    );
                }
            }
            if !diags.is_empty() {
                return (hosts, diags);
            }
            header = Some(cols);
            continue;
        };
        if cells.len() != cols.len() {
            let span = Span::new(base, base + line.len());
            diags.push(
                err(
                    file,
                    span,
                    format!("this row has {} cells, the header {}", cells.len(), cols.len()),
                    "wrong number of cells",
                )
                .note(format!("the columns: {}", cols.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(","))),
            );
            continue;
        }
        let (name, name_span, _) = &cells[name_col];
        if let Some(why) = bad_name(name) {
            diags.push(err(file, *name_span, format!("`{name}` is not a valid host name"), "host name").help(why));
            continue;
        }
        let mut host = InventoryHost { name: name.clone(), name_span: *name_span, attrs: vec![] };
        for (k, (cell, span, quoted)) in cells.iter().enumerate() {
            if k == name_col || (cell.is_empty() && !quoted) {
                continue;
            }
            let v = if *quoted { Ok(Value::Str(cell.clone())) } else { typed(cell) };
            match v {
                Ok(v) => host.attrs.push((cols[k].0.clone(), v, *span)),
                Err(why) => diags.push(err(file, *span, why, "this value")),
            }
        }
        hosts.push(host);
        if hosts.len() > MAX_HOSTS {
            diags.push(err(
                file,
                *name_span,
                format!("more than {MAX_HOSTS} hosts in one inventory"),
                "this host is one too many",
            ));
            break;
        }
    }
    if header.is_none() && diags.is_empty() {
        diags.push(
            err(file, Span::new(0, 0), "the inventory is empty", "no header row")
                .help("a CSV inventory starts with a header row naming the attributes, e.g. `name,zone,cpu`"),
        );
    }
    (hosts, diags)
}

// ---- JSON ----

#[derive(Debug)]
enum Json {
    Obj(Vec<(String, Span, Json, Span)>),
    Arr(Vec<(Json, Span)>),
    Str(String),
    Int(Option<i64>),
    Float,
    Bool(bool),
    Null,
}

struct JsonParser<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
    file: FileId,
}

const MAX_JSON_DEPTH: usize = 32;

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }
    fn fail(&self, what: &str) -> Diagnostic {
        let end = (self.i + 1).min(self.b.len());
        let found = match self.b.get(self.i) {
            None => "the end of the file".to_string(),
            Some(_) => format!("`{}`", self.s.get(self.i..end).unwrap_or("?")),
        };
        err(
            self.file,
            Span::new(self.i, end.max(self.i)),
            format!("malformed JSON: expected {what}, found {found}"),
            format!("expected {what}"),
        )
    }
    fn value(&mut self, depth: usize) -> Result<(Json, Span), Diagnostic> {
        self.ws();
        if depth > MAX_JSON_DEPTH {
            return Err(self.fail("a shallower value (nested too deeply)"));
        }
        let start = self.i;
        let v = match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = vec![];
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let ks = self.i;
                        let Json::Str(k) = self.string()? else { return Err(self.fail("a key")) };
                        let kspan = Span::new(ks, self.i);
                        self.ws();
                        if self.b.get(self.i) != Some(&b':') {
                            return Err(self.fail("`:`"));
                        }
                        self.i += 1;
                        let (v, vspan) = self.value(depth + 1)?;
                        fields.push((k, kspan, v, vspan));
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.fail("`,` or `}`")),
                        }
                    }
                }
                Json::Obj(fields)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = vec![];
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        match self.b.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(self.fail("`,` or `]`")),
                        }
                    }
                }
                Json::Arr(items)
            }
            Some(b'"') => self.string()?,
            Some(b't') if self.b[self.i..].starts_with(b"true") => {
                self.i += 4;
                Json::Bool(true)
            }
            Some(b'f') if self.b[self.i..].starts_with(b"false") => {
                self.i += 5;
                Json::Bool(false)
            }
            Some(b'n') if self.b[self.i..].starts_with(b"null") => {
                self.i += 4;
                Json::Null
            }
            Some(b'-' | b'0'..=b'9') => {
                let s = self.i;
                self.i += 1;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    self.i += 1;
                }
                let t = &self.s[s..self.i];
                if t.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
                    Json::Int(t.parse::<i64>().ok().filter(|n| n.unsigned_abs() <= i32::MAX as u64))
                } else {
                    Json::Float
                }
            }
            _ => return Err(self.fail("a value")),
        };
        Ok((v, Span::new(start, self.i)))
    }
    fn string(&mut self) -> Result<Json, Diagnostic> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(self.fail("a string"));
        }
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.b.get(self.i) {
                None | Some(b'\n') => return Err(self.fail("a closing `\"`")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(Json::Str(out));
                }
                Some(b'\\') => {
                    let c = match self.b.get(self.i + 1) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'n') => '\n',
                        Some(b't') => '\t',
                        Some(b'r') => '\r',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 2..self.i + 6).unwrap_or("");
                            match u32::from_str_radix(hex, 16).ok().and_then(char::from_u32) {
                                Some(c) => {
                                    self.i += 4;
                                    c
                                }
                                None => return Err(self.fail("a `\\uXXXX` escape")),
                            }
                        }
                        _ => return Err(self.fail("an escape")),
                    };
                    out.push(c);
                    self.i += 2;
                }
                Some(_) => {
                    let ch = self.s[self.i..].chars().next().unwrap_or('\u{FFFD}');
                    out.push(ch);
                    self.i += ch.len_utf8().max(1);
                }
            }
        }
    }
}

/// Parses a JSON inventory.
pub fn parse_json(text: &str, file: FileId) -> (Vec<InventoryHost>, Vec<Diagnostic>) {
    let mut p = JsonParser { b: text.as_bytes(), s: text, i: 0, file };
    let (top, top_span) = match p.value(0) {
        Ok(v) => v,
        Err(d) => return (vec![], vec![d]),
    };
    p.ws();
    if p.i < text.len() {
        return (vec![], vec![p.fail("the end of the file")]);
    }
    let items = match top {
        Json::Arr(items) => items,
        Json::Obj(fields) => match fields.into_iter().find(|(k, ..)| k == "hosts") {
            Some((_, _, Json::Arr(items), _)) => items,
            _ => {
                return (
                    vec![],
                    vec![err(file, top_span, "a JSON inventory is an array of hosts", "not an array")
                        .help("write `[{\"name\": \"h1\", \"zone\": \"a\"}, …]` or `{\"hosts\": [ … ]}`")],
                )
            }
        },
        _ => {
            return (
                vec![],
                vec![err(file, top_span, "a JSON inventory is an array of hosts", "not an array")
                    .help("write `[{\"name\": \"h1\", \"zone\": \"a\"}, …]`")],
            )
        }
    };
    let mut hosts = vec![];
    let mut diags = vec![];
    for (item, span) in items {
        let Json::Obj(fields) = item else {
            diags.push(err(file, span, "each host of a JSON inventory is an object", "not an object"));
            continue;
        };
        let mut name: Option<(String, Span)> = None;
        let mut attrs = vec![];
        for (k, kspan, v, vspan) in fields {
            if k == "name" {
                match v {
                    Json::Str(s) => match bad_name(&s) {
                        // The name's span is its text, without the quotes.
                        None if text.get(vspan.start as usize + 1..(vspan.end as usize).saturating_sub(1))
                            == Some(s.as_str()) =>
                        {
                            name = Some((s, Span::new(vspan.start as usize + 1, vspan.end as usize - 1)))
                        }
                        None => diags.push(
                            err(file, vspan, "write a host name without escapes", "host name")
                                .note("host names are Deladas names: letters, digits and `_`"),
                        ),
                        Some(why) => diags
                            .push(err(file, vspan, format!("`{s}` is not a valid host name"), "host name").help(why)),
                    },
                    _ => diags.push(err(file, vspan, "a host's `name` is a string", "not a string")),
                }
                continue;
            }
            if !is_ident(&k) {
                diags.push(err(file, kspan, format!("`{k}` is not an attribute name"), "attribute name"));
                continue;
            }
            if attrs.iter().any(|(a, _, _)| *a == k) {
                diags.push(err(file, kspan, format!("attribute `{k}` appears twice"), "again here"));
                continue;
            }
            match v {
                Json::Str(s) => attrs.push((k, Value::Str(s), vspan)),
                Json::Bool(b) => attrs.push((k, Value::Bool(b), vspan)),
                Json::Int(Some(n)) => attrs.push((k, Value::Int(n), vspan)),
                Json::Null => {}
                Json::Int(None) => diags.push(err(file, vspan, "integer out of range", "at most 2^31-1 in magnitude")),
                Json::Float => diags.push(
                    err(file, vspan, "attribute values are integers, not fractions", "a fraction")
                        .help("scale it to an integer unit, e.g. millicores or MiB"),
                ),
                Json::Obj(_) | Json::Arr(_) => diags.push(
                    err(file, vspan, "attribute values are strings, integers or booleans", "a nested value")
                        .note("flatten it into several attributes"),
                ),
            }
        }
        match name {
            Some((name, name_span)) => hosts.push(InventoryHost { name, name_span, attrs }),
            None if !diags
                .iter()
                .any(|d| d.primary_label().is_some_and(|l| span.start <= l.span.start && l.span.end <= span.end)) =>
            {
                diags.push(
                    err(file, span, "this host has no `name`", "no `\"name\"` key")
                        .help("give every host a `\"name\": \"…\"`"),
                )
            }
            None => {}
        }
        if hosts.len() > MAX_HOSTS {
            diags.push(err(file, span, format!("more than {MAX_HOSTS} hosts in one inventory"), "one too many"));
            break;
        }
    }
    (hosts, diags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_typed_cells_and_spans() {
        let text = "name,zone,cpu,ssd\nb1,\"eu-1\",8,true\nb2,eu-2,,false\n";
        let (hosts, diags) = parse_csv(text, 0);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].attrs[0].1, Value::Str("eu-1".into()));
        assert_eq!(hosts[0].attrs[1].1, Value::Int(8));
        assert_eq!(hosts[0].attrs[2].1, Value::Bool(true));
        assert_eq!(hosts[1].attrs.len(), 2, "an empty cell leaves the attribute out");
        assert_eq!(&text[hosts[1].name_span.range()], "b2");
    }

    #[test]
    fn csv_errors_point_at_cells() {
        let text = "name,cpu\nb1,8\nb-2,4\nb3\n";
        let (hosts, diags) = parse_csv(text, 0);
        assert_eq!(hosts.len(), 1);
        assert_eq!(diags.len(), 2);
        let l = diags[0].primary_label().map(|l| l.span).unwrap_or_default();
        assert_eq!(&text[l.range()], "b-2");
    }

    #[test]
    fn json_hosts_and_errors() {
        let text = r#"[{"name": "a1", "zone": "x", "cpu": 4}, {"name": "a2", "cpu": 1.5}]"#;
        let (hosts, diags) = parse_json(text, 0);
        assert_eq!(hosts.len(), 2);
        assert_eq!(diags.len(), 1);
        let (_, diags) = parse_json("[{\"name\": \"a\",}]", 0);
        assert_eq!(diags.len(), 1);
    }
}
