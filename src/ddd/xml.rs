//! The XML layer of the DDD reader: turns text into a small element tree with
//! byte spans, checking well-formedness (with quick-xml doing the tokenizing,
//! plus the checks it leaves out: one root, closed elements, no text content,
//! attribute values, entity and character references, legal characters,
//! namespace prefixes). Knows nothing about what a DDD contains.

use super::DddError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::ops::Range;

/// Elements deeper than this are never part of a valid DDD (the deepest are
/// `<port>`, `<attr>`, `<from>`, `<to>` at depth 4), and their ancestors are
/// reported as unknown elements anyway; they are checked for well-formedness
/// but not kept, which bounds the tree's depth.
const MAX_KEPT_DEPTH: usize = 6;

/// An element of the document.
#[derive(Debug)]
pub(crate) struct Elem {
    /// The local name (without prefix).
    pub local: String,
    /// The name as written (with prefix, if any).
    pub qname: String,
    /// The namespace the name resolves to; `None` for no namespace.
    pub ns: Option<String>,
    /// The start tag (or empty-element tag), `<` to `>`.
    pub span: Range<usize>,
    /// The attributes, without namespace declarations (`xmlns`, `xmlns:p`).
    pub attrs: Vec<XAttr>,
    /// The child elements, in document order.
    pub children: Vec<Elem>,
}

/// An attribute of an element.
#[derive(Debug)]
pub(crate) struct XAttr {
    /// The name as written.
    pub name: String,
    /// The value after entity and character references are replaced and
    /// literal tabs and line breaks normalized to spaces.
    pub value: String,
    /// `name="value"`.
    pub span: Range<usize>,
}

impl Elem {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&XAttr> {
        self.attrs.iter().find(|a| a.name == name)
    }
}

/// Whether `c` may appear in an XML 1.0 document (production `Char`).
/// Writes ` name="escaped value"`, escaped so that reading gives the value
/// back (tabs and line breaks as character references; characters XML cannot
/// carry as references the reader rejects). Shared by the DDD and the role
/// document writers.
pub(crate) fn write_attr(w: &mut String, name: &str, value: &str) {
    w.push(' ');
    w.push_str(name);
    w.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => w.push_str("&amp;"),
            '<' => w.push_str("&lt;"),
            '>' => w.push_str("&gt;"),
            '"' => w.push_str("&quot;"),
            '\t' => w.push_str("&#9;"),
            '\n' => w.push_str("&#10;"),
            '\r' => w.push_str("&#13;"),
            c if !is_xml_char(c) => w.push_str(&format!("&#x{:X};", u32::from(c))),
            c => w.push(c),
        }
    }
    w.push('"');
}

pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// An element whose end tag has not been read yet.
struct Open {
    elem: Elem,
    /// Whether text inside it was already reported (once per element).
    text_reported: bool,
    /// Whether the element goes into the tree (see [`MAX_KEPT_DEPTH`]).
    kept: bool,
}

/// Parses `text` into its root element. Every well-formedness problem found
/// is pushed to `errs`; returns `None` when the document could not be read to
/// its end (the tree would be incomplete) or has no root element.
pub(crate) fn parse(text: &str, errs: &mut Vec<DddError>) -> Option<Elem> {
    parse_document(text, &DDD, errs)
}

/// What kind of document is being read, for the messages: the role document
/// of `crate::mdcd` uses this layer too.
pub(crate) struct Dialect {
    /// The document kind with its article: `a DDD`.
    pub name: &'static str,
    /// The root element's name.
    pub root: &'static str,
    /// The root element's namespace.
    pub namespace: &'static str,
    /// What its elements are called: `DDD elements`.
    pub elements: &'static str,
}

const DDD: Dialect =
    Dialect { name: "a DDD", root: "deployment", namespace: super::NAMESPACE, elements: "DDD elements" };

/// [`parse`] for any [`Dialect`].
pub(crate) fn parse_document(text: &str, dialect: &Dialect, errs: &mut Vec<DddError>) -> Option<Elem> {
    if let Some((pos, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        errs.push(DddError::new(
            text,
            pos..pos + c.len_utf8(),
            format!("not well-formed XML: character U+{:04X} is not allowed in an XML document", u32::from(c)),
        ));
        return None;
    }
    let base = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let body = text.get(base..).unwrap_or("");
    let mut reader = NsReader::from_str(body);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.check_comments = true;
        cfg.expand_empty_elements = false;
        cfg.allow_unmatched_ends = false;
        cfg.trim_text(false);
    }
    let pos = |p: u64| (base + usize::try_from(p).unwrap_or(usize::MAX)).min(text.len());

    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Elem> = None;
    let mut roots = 0usize;
    let mut outside_text_reported = false;

    loop {
        let before = pos(reader.buffer_position());
        let (ns, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (resolved(ns), event),
            Err(e) => {
                let at = pos(reader.error_position());
                errs.push(DddError::new(
                    text,
                    at..next_boundary(text, at),
                    match &e {
                        quick_xml::Error::Syntax(e) => format!("not well-formed XML: {e}"),
                        quick_xml::Error::IllFormed(e) => format!("not well-formed XML: {e}"),
                        e => format!("not well-formed XML: {e}"),
                    },
                ));
                return None;
            }
        };
        let after = pos(reader.buffer_position()).max(before);
        let span = before..after;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let elem = element(text, e, ns, span, errs);
                if stack.is_empty() {
                    roots += 1;
                    if roots == 2 {
                        errs.push(DddError::new(
                            text,
                            elem.span.clone(),
                            format!(
                                "not well-formed XML: second root element <{}>; a document has exactly one root element",
                                elem.qname
                            ),
                        ));
                    }
                }
                // A kept parent has kept ancestors; of several roots only the first is kept.
                let kept = stack.len() < MAX_KEPT_DEPTH && stack.last().map_or(roots == 1, |parent| parent.kept);
                let open = Open { elem, text_reported: false, kept };
                if is_empty {
                    close(open, &mut stack, &mut root);
                } else {
                    stack.push(open);
                }
            }
            Event::End(_) => {
                if let Some(open) = stack.pop() {
                    close(open, &mut stack, &mut root);
                }
            }
            Event::Text(ref t) => {
                let content: &str = t;
                let trimmed = content.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
                if trimmed.is_empty() {
                    continue;
                }
                let tspan = match offset_of(text, trimmed) {
                    Some(o) => o..o + trimmed.len(),
                    None => span,
                };
                text_error(text, tspan, &mut stack, &mut outside_text_reported, dialect, errs);
            }
            Event::GeneralRef(_) | Event::CData(_) => {
                text_error(text, span, &mut stack, &mut outside_text_reported, dialect, errs);
            }
            Event::Decl(_) => {
                if before != base {
                    errs.push(DddError::new(
                        text,
                        span,
                        "not well-formed XML: the XML declaration <?xml …?> must come first in the document"
                            .to_string(),
                    ));
                    continue;
                }
                let raw = text.get(span.clone()).unwrap_or("");
                match parse_decl(raw) {
                    Err(msg) => {
                        errs.push(DddError::new(text, span, format!("not well-formed XML: bad XML declaration: {msg}")))
                    }
                    Ok((version, encoding)) => {
                        if version != "1.0" {
                            errs.push(DddError::new(
                                text,
                                span.clone(),
                                format!("XML version \"{version}\" is not supported; {} is XML 1.0", dialect.name),
                            ));
                        }
                        if let Some(enc) = encoding.filter(|e| !e.eq_ignore_ascii_case("utf-8")) {
                            errs.push(DddError::new(
                                text,
                                span,
                                format!("encoding \"{enc}\" is not supported; {} is UTF-8", dialect.name),
                            ));
                        }
                    }
                }
            }
            Event::PI(_) => {
                if let Err(msg) = check_pi(text.get(span.clone()).unwrap_or("")) {
                    errs.push(DddError::new(text, span, format!("not well-formed XML: {msg}")));
                }
            }
            Event::DocType(_) => errs.push(DddError::new(
                text,
                span,
                format!("{} must not contain a document type declaration (<!DOCTYPE …>)", dialect.name),
            )),
            Event::Comment(_) => {}
            Event::Eof => break,
        }
    }

    if let Some(open) = stack.last() {
        errs.push(DddError::new(
            text,
            open.elem.span.clone(),
            format!("not well-formed XML: element <{}> is never closed (the document ends first)", open.elem.qname),
        ));
        return None;
    }
    if root.is_none() {
        errs.push(DddError::new(
            text,
            0..next_boundary(text, 0),
            format!(
                "not well-formed XML: the document has no root element; {} is a <{} xmlns=\"{}\"> element",
                dialect.name, dialect.root, dialect.namespace
            ),
        ));
    }
    root
}

/// Attaches a finished element to its parent (or makes it the root).
fn close(open: Open, stack: &mut [Open], root: &mut Option<Elem>) {
    if !open.kept {
        return;
    }
    match stack.last_mut() {
        Some(parent) => parent.elem.children.push(open.elem),
        None => {
            if root.is_none() {
                *root = Some(open.elem);
            }
        }
    }
}

fn text_error(
    text: &str,
    span: Range<usize>,
    stack: &mut [Open],
    outside_reported: &mut bool,
    dialect: &Dialect,
    errs: &mut Vec<DddError>,
) {
    match stack.last_mut() {
        Some(open) => {
            if !open.text_reported {
                open.text_reported = true;
                errs.push(DddError::new(
                    text,
                    span,
                    format!(
                        "text inside <{}> is not allowed: {} carry their data in attributes",
                        open.elem.qname, dialect.elements
                    ),
                ));
            }
        }
        None => {
            if !*outside_reported {
                *outside_reported = true;
                errs.push(DddError::new(text, span, "not well-formed XML: text outside the root element".to_string()));
            }
        }
    }
}

/// Builds an element from its start tag: resolves its namespace, checks its
/// name and reads its attributes.
fn element(text: &str, e: &BytesStart<'_>, ns: Resolved, span: Range<usize>, errs: &mut Vec<DddError>) -> Elem {
    let qname: &str = e.name().0;
    let local = qname.rsplit_once(':').map_or(qname, |(_, l)| l);
    // The tag's text after `<`: the name, then the attributes.
    let tag_start = offset_of(text, qname).unwrap_or(span.start + 1);
    if !is_qname(qname) {
        errs.push(DddError::new(
            text,
            span.clone(),
            format!("not well-formed XML: \"{qname}\" is not a valid element name"),
        ));
    }
    let ns = match ns {
        Resolved::None => None,
        Resolved::Ns(n) => Some(n),
        Resolved::UnknownPrefix(p) => {
            errs.push(DddError::new(
                text,
                span.clone(),
                format!("not well-formed XML: namespace prefix \"{p}\" of <{qname}> is not declared"),
            ));
            None
        }
    };
    let mut attrs = Vec::new();
    for a in e.attributes().with_checks(true) {
        match a {
            Ok(a) => {
                let name: &str = a.key.0;
                let raw: &str = &a.value;
                let start = offset_of(text, name).unwrap_or(span.start);
                let end = offset_of(text, raw).map_or(span.end, |o| (o + raw.len() + 1).min(text.len()));
                let aspan = start..end.max(start);
                if !is_qname(name) {
                    errs.push(DddError::new(
                        text,
                        aspan.clone(),
                        format!("not well-formed XML: \"{name}\" is not a valid attribute name on <{qname}>"),
                    ));
                }
                let value = match decode_attr_value(raw) {
                    Ok(v) => v,
                    Err(msg) => {
                        errs.push(DddError::new(
                            text,
                            aspan.clone(),
                            format!("not well-formed XML: attribute {name} of <{qname}>: {msg}"),
                        ));
                        raw.to_string()
                    }
                };
                if name == "xmlns" || name.starts_with("xmlns:") {
                    continue;
                }
                attrs.push(XAttr { name: name.to_string(), value, span: aspan });
            }
            Err(err) => {
                let (rel, msg) = match err {
                    AttrError::ExpectedEq(p) => (p, "an attribute name must be followed by `=`".to_string()),
                    AttrError::ExpectedValue(p) => (p, "`=` must be followed by a quoted value".to_string()),
                    AttrError::UnquotedValue(p) => (p, "an attribute value must be in quotes".to_string()),
                    AttrError::ExpectedQuote(p, q) => {
                        (p, format!("missing closing quote {} in attribute value", char::from(q)))
                    }
                    AttrError::Duplicated(p, _) => (p, "the same attribute appears twice".to_string()),
                };
                let at = (tag_start + rel).min(span.end.saturating_sub(1)).max(span.start);
                errs.push(DddError::new(
                    text,
                    at..next_boundary(text, at),
                    format!("not well-formed XML: in <{qname}>: {msg}"),
                ));
                // The iterator cannot be trusted past a syntax error.
                if !matches!(err, AttrError::Duplicated(..)) {
                    break;
                }
            }
        }
    }
    Elem { local: local.to_string(), qname: qname.to_string(), ns, span, attrs, children: Vec::new() }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Checks an XML declaration `<?xml version="…" encoding="…" standalone="…"?>`
/// (encoding and standalone optional, in that order) and returns its version
/// and encoding.
fn parse_decl(raw: &str) -> Result<(String, Option<String>), String> {
    let inner = raw.strip_prefix("<?xml").and_then(|s| s.strip_suffix("?>")).ok_or("it is not closed by `?>`")?;
    let mut fields: Vec<(&str, &str)> = Vec::new();
    let mut rest = inner;
    loop {
        let trimmed = rest.trim_start_matches(is_space);
        if trimmed.is_empty() {
            break;
        }
        if trimmed.len() == rest.len() {
            return Err("expected a space before each part".into());
        }
        let name_end = trimmed.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(trimmed.len());
        let name = &trimmed[..name_end];
        let after = trimmed[name_end..].trim_start_matches(is_space);
        let after = after.strip_prefix('=').ok_or_else(|| format!("expected `=` after `{name}`"))?;
        let after = after.trim_start_matches(is_space);
        let quote = match after.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => return Err(format!("the value of `{name}` must be in quotes")),
        };
        let body = &after[1..];
        let close = body.find(quote).ok_or_else(|| format!("missing closing quote in `{name}`"))?;
        fields.push((name, &body[..close]));
        rest = &body[close + 1..];
    }
    let mut it = fields.into_iter().peekable();
    let version = match it.next() {
        Some(("version", v)) => v,
        _ => return Err("it must start with version=\"1.0\"".into()),
    };
    let version_ok = version.strip_prefix("1.").is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()));
    if !version_ok {
        return Err(format!("version \"{version}\" is not an XML version number"));
    }
    let mut encoding = None;
    if let Some(&("encoding", e)) = it.peek() {
        let mut chars = e.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !ok {
            return Err(format!("\"{e}\" is not an encoding name"));
        }
        encoding = Some(e.to_string());
        it.next();
    }
    if let Some(&("standalone", v)) = it.peek() {
        if v != "yes" && v != "no" {
            return Err("standalone must be \"yes\" or \"no\"".into());
        }
        it.next();
    }
    match it.next() {
        None => Ok((version.to_string(), encoding)),
        Some((name, _)) => Err(format!("unexpected `{name}` (only version, encoding and standalone, in that order)")),
    }
}

/// Checks a processing instruction `<?target …?>`: the target is a name
/// without `:` and is not `xml` (reserved for the declaration).
fn check_pi(raw: &str) -> Result<(), String> {
    let inner = raw.strip_prefix("<?").and_then(|s| s.strip_suffix("?>")).unwrap_or("");
    let target = &inner[..inner.find(is_space).unwrap_or(inner.len())];
    if target.eq_ignore_ascii_case("xml") {
        return Err("<?xml …?> is only allowed as the XML declaration at the start of the document".into());
    }
    if !is_qname(target) || target.contains(':') {
        return Err(format!("\"{target}\" is not a valid processing instruction target"));
    }
    Ok(())
}

/// Decodes an attribute value as an XML processor does: references to the
/// five predefined entities and character references are replaced, literal
/// tabs and line breaks become spaces (`\r\n` one space); `<` and any other
/// `&` are errors.
fn decode_attr_value(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '<' => return Err("`<` is not allowed in an attribute value (write &lt;)".into()),
            '\r' => {
                rest = rest.strip_prefix('\n').unwrap_or(rest);
                out.push(' ');
            }
            '\n' | '\t' => out.push(' '),
            '&' => {
                let Some(semi) = rest.find(';') else {
                    return Err("`&` must start a reference such as &amp; (missing `;`)".into());
                };
                let name = &rest[..semi];
                rest = &rest[semi + 1..];
                let decoded = match name {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => {
                        let code = if let Some(hex) = name.strip_prefix("#x") {
                            parse_digits(hex, 16)
                        } else if let Some(dec) = name.strip_prefix('#') {
                            parse_digits(dec, 10)
                        } else {
                            return Err(format!(
                                "unknown entity &{name}; (only &lt; &gt; &amp; &quot; &apos; and character references are allowed)"
                            ));
                        };
                        match code.and_then(char::from_u32) {
                            Some(ch) if is_xml_char(ch) => ch,
                            _ => return Err(format!("&{name}; does not refer to a character allowed in XML")),
                        }
                    }
                };
                out.push(decoded);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn parse_digits(s: &str, radix: u32) -> Option<u32> {
    if s.is_empty() || s.len() > 8 || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(s, radix).ok()
}

/// A (simplified) XML qualified name: a name start character, then name
/// characters, with at most one `:` that is neither first nor last.
fn is_qname(name: &str) -> bool {
    let mut chars = name.chars();
    let start_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_' || !c.is_ascii());
    let rest_ok = chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') || !c.is_ascii());
    let colons = name.matches(':').count();
    start_ok && rest_ok && (colons == 0 || (colons == 1 && !name.ends_with(':')))
}

/// The byte offset of `part` inside `text`, when `part` is a subslice of it.
fn offset_of(text: &str, part: &str) -> Option<usize> {
    let start = (part.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= text.len()).then_some(start)
}

/// The end of the character starting at `pos` (for one-character spans).
fn next_boundary(text: &str, pos: usize) -> usize {
    text.get(pos..).and_then(|s| s.chars().next()).map_or(pos, |c| pos + c.len_utf8())
}

/// The namespace of an element name.
enum Resolved {
    None,
    Ns(String),
    UnknownPrefix(String),
}

fn resolved(ns: ResolveResult<'_>) -> Resolved {
    match ns {
        ResolveResult::Unbound => Resolved::None,
        ResolveResult::Bound(n) => Resolved::Ns(n.0.to_string()),
        ResolveResult::Unknown(p) => Resolved::UnknownPrefix(p),
    }
}
