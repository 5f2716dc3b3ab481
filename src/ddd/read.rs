//! Reading a DDD: from the element tree of [`super::xml`] to a
//! [`Deployment`], checking the format's structure on the way (root element,
//! namespace, format version, which elements and attributes may appear where,
//! required attributes, attribute values, duplicate names), then handing the
//! result to [`super::check`] for the configuration rules.
//!
//! Entities with bad parts are kept (marked unsound in [`Meta`]) so that
//! references to them do not cause follow-on errors; since any error makes
//! the result `Err`, such partial values never leave the module.

use super::check;
use super::model::{Attr, AttrValue, Channel, Component, Deployment, Direction, End, Host, Instance, Port};
use super::xml::{self, Elem, XAttr};
use super::{DddError, FORMAT, NAMESPACE};
use std::collections::HashMap;
use std::ops::Range;

/// Reads and checks a DDD (format 1).
///
/// Returns the deployment, in document order, when the text is a valid DDD;
/// otherwise every problem found, in document order: XML that is not
/// well-formed; a root element, namespace or `format` other than
/// `<deployment xmlns="urn:deladas:ddd:1" format="1">`; unknown, missing,
/// repeated or misplaced elements; unknown or missing attributes; bad
/// attribute values; duplicate host ids, component names, port and attribute
/// names, instance ids and channel ids; and the configuration rules of
/// `language.md` §6 (see the module `check`): dangling references, channels
/// joining an instance to itself or touching an `external` port, indices,
/// port capacities, directions, instance identity, and the `maxperhost` /
/// `maxinstances` bounds.
///
/// Never panics; on any error no part of the deployment is returned.
pub fn from_xml(text: &str) -> Result<Deployment, Vec<DddError>> {
    from_xml_located(text).map(|(d, _)| d)
}

/// Where the parts of a deployment read by [`from_xml_located`] are: the
/// byte range of each element's start tag, parallel to the deployment's
/// vectors, so that a problem found later (against a goal) can point at its
/// line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Locations {
    /// The `<deployment>` start tag.
    pub root: Range<usize>,
    pub hosts: Vec<Range<usize>>,
    pub components: Vec<Range<usize>>,
    pub instances: Vec<Range<usize>>,
    pub channels: Vec<Range<usize>>,
}

/// [`from_xml`], with where each part is in `text`.
pub fn from_xml_located(text: &str) -> Result<(Deployment, Locations), Vec<DddError>> {
    let mut errs = Vec::new();
    let Some(root) = xml::parse(text, &mut errs) else {
        return Err(errs);
    };
    let mut r = Reader { text, errs, meta: Meta::default() };
    let deployment = r.deployment(&root);
    let Reader { mut errs, meta, .. } = r;
    if let Some(d) = &deployment {
        check::check(text, d, &meta, &mut errs);
    }
    if errs.is_empty() {
        if let Some(d) = deployment {
            let spans = |items: &[Item]| items.iter().map(|i| i.span.clone()).collect();
            let at = Locations {
                root: root.span.clone(),
                hosts: spans(&meta.hosts),
                components: spans(&meta.components),
                instances: spans(&meta.instances),
                channels: meta.channels.iter().map(|c| c.item.span.clone()).collect(),
            };
            return Ok((d, at));
        }
    }
    errs.sort_by_key(|e| e.span.start);
    errs.dedup();
    Err(errs)
}

/// Where the parts of a read deployment are in the text, and which of them
/// had problems, parallel to the vectors of the [`Deployment`].
#[derive(Debug, Default)]
pub(crate) struct Meta {
    pub hosts: Vec<Item>,
    pub components: Vec<Item>,
    /// Per component, per port.
    pub ports: Vec<Vec<Item>>,
    pub instances: Vec<Item>,
    pub channels: Vec<ChannelMeta>,
}

/// Where one element is, with its attributes, and whether all of it read
/// cleanly.
#[derive(Debug, Default, Clone)]
pub(crate) struct Item {
    /// The start tag.
    pub span: Range<usize>,
    /// Attribute name to `name="value"` span.
    pub attrs: HashMap<String, Range<usize>>,
    /// The element as messages name it, e.g. `<host id="h1">`.
    pub desc: String,
    /// False when a required attribute is missing or a value is bad: checks
    /// that depend on this element's values are skipped.
    pub sound: bool,
}

impl Item {
    /// The span of attribute `name`, or of the element when it has none.
    pub fn attr_span(&self, name: &str) -> Range<usize> {
        self.attrs.get(name).cloned().unwrap_or_else(|| self.span.clone())
    }
}

/// Where a channel and its two ends are.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChannelMeta {
    pub item: Item,
    pub from: Item,
    pub to: Item,
}

struct Reader<'t> {
    text: &'t str,
    errs: Vec<DddError>,
    meta: Meta,
}

const SECTIONS: [&str; 4] = ["hosts", "components", "instances", "channels"];

/// Tracks first occurrences of names to report duplicates.
struct Seen {
    what: &'static str,
    /// Byte offset of each name's first occurrence.
    first_line: HashMap<String, usize>,
}

impl Seen {
    fn new(what: &'static str) -> Seen {
        Seen { what, first_line: HashMap::new() }
    }
}

impl<'t> Reader<'t> {
    fn err(&mut self, span: Range<usize>, message: String) {
        self.errs.push(DddError::new(self.text, span, message));
    }

    fn line_of(&self, pos: usize) -> usize {
        DddError::new(self.text, pos..pos, String::new()).line
    }

    fn is(el: &Elem, name: &str) -> bool {
        el.local == name && el.ns.as_deref() == Some(NAMESPACE)
    }

    /// Reports an element that may not appear inside `parent`.
    fn unknown_element(&mut self, el: &Elem, parent: &str, allowed: &str) {
        let ns_note = match el.ns.as_deref() {
            Some(NAMESPACE) => String::new(),
            Some(ns) => format!(" (in namespace \"{ns}\")"),
            None => " (in no namespace)".to_string(),
        };
        let allowed = if allowed.is_empty() {
            format!("{parent} has no child elements")
        } else {
            format!("format 1 allows only {allowed} here")
        };
        self.err(el.span.clone(), format!("unknown element <{}>{ns_note} in {parent}; {allowed}", el.qname));
    }

    /// Checks the element's attributes against `allowed` (required ones
    /// first, `required` of them) and returns the item with its spans.
    /// Unknown and missing attributes are reported; a missing one makes the
    /// item unsound.
    fn item(&mut self, el: &Elem, desc: String, allowed: &[&str], required: usize) -> Item {
        let mut item = Item { span: el.span.clone(), attrs: HashMap::new(), desc, sound: true };
        for a in &el.attrs {
            if allowed.contains(&a.name.as_str()) {
                item.attrs.insert(a.name.clone(), a.span.clone());
            } else {
                let list = allowed.join(", ");
                self.err(
                    a.span.clone(),
                    format!("{}: unknown attribute {}; format 1 allows {list}", item.desc, a.name),
                );
            }
        }
        for name in allowed.iter().take(required) {
            if el.attr(name).is_none() {
                self.err(el.span.clone(), format!("{}: missing required attribute {name}", item.desc));
                item.sound = false;
            }
        }
        item
    }

    /// A required identifier-like attribute: present and non-empty.
    fn name_attr(&mut self, el: &Elem, item: &mut Item, name: &str) -> Option<String> {
        let a = el.attr(name)?;
        if a.value.is_empty() {
            self.err(a.span.clone(), format!("{}: {name} must not be empty", item.desc));
            item.sound = false;
        }
        Some(a.value.clone())
    }

    /// Records `name` for the duplicate check; reports it if seen before.
    fn unique(&mut self, seen: &mut Seen, name: &str, span: Range<usize>, desc: &str) {
        // Offsets are kept and turned into lines only for an error: counting
        // lines for every element would make reading quadratic.
        match seen.first_line.get(name) {
            Some(first) => {
                let first = self.line_of(*first);
                self.err(span, format!("{desc}: duplicate {} \"{name}\" (first on line {first})", seen.what));
            }
            None => {
                seen.first_line.insert(name.to_string(), span.start);
            }
        }
    }

    fn u32_attr(&mut self, a: &XAttr, item: &mut Item) -> Option<u32> {
        match parse_u32(&a.value) {
            Some(n) => Some(n),
            None => {
                self.err(
                    a.span.clone(),
                    format!(
                        "{}: {}=\"{}\" is not a non-negative integer (0 to 4294967295)",
                        item.desc, a.name, a.value
                    ),
                );
                item.sound = false;
                None
            }
        }
    }

    fn bool_attr(&mut self, a: &XAttr, item: &mut Item) -> Option<bool> {
        match a.value.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.err(
                    a.span.clone(),
                    format!(
                        "{}: {}=\"{}\" is not a boolean (expected \"true\" or \"false\")",
                        item.desc, a.name, a.value
                    ),
                );
                item.sound = false;
                None
            }
        }
    }

    fn deployment(&mut self, root: &Elem) -> Option<Deployment> {
        if root.local != "deployment" {
            self.err(
                root.span.clone(),
                format!(
                    "unknown root element <{}>; a DDD is a <deployment xmlns=\"{NAMESPACE}\" format=\"{FORMAT}\"> element",
                    root.qname
                ),
            );
            return None;
        }
        match root.ns.as_deref() {
            Some(NAMESPACE) => {}
            Some(ns) => {
                self.err(
                    root.span.clone(),
                    format!("<deployment>: unknown namespace \"{ns}\"; DDD format 1 uses xmlns=\"{NAMESPACE}\""),
                );
                return None;
            }
            None => {
                self.err(
                    root.span.clone(),
                    format!("<deployment>: no namespace; DDD format 1 uses xmlns=\"{NAMESPACE}\""),
                );
                return None;
            }
        }
        let mut item = self.item(root, "<deployment>".to_string(), &["format", "generator", "goal", "goal-sha256"], 2);
        if let Some(f) = root.attr("format") {
            if f.value != FORMAT {
                self.err(
                    f.span.clone(),
                    format!("<deployment>: unsupported format=\"{}\"; this reader reads DDD format {FORMAT}", f.value),
                );
                return None;
            }
        }
        let mut d = Deployment {
            goal: root.attr("goal").map(|a| a.value.clone()),
            goal_sha256: None,
            generator: root.attr("generator").map(|a| a.value.clone()).unwrap_or_default(),
            ..Deployment::default()
        };
        if let Some(a) = root.attr("goal-sha256") {
            if a.value.len() == 64 && a.value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                d.goal_sha256 = Some(a.value.clone());
            } else {
                self.err(
                    a.span.clone(),
                    format!(
                        "<deployment>: goal-sha256=\"{}\" is not a SHA-256 digest (64 lower-case hex digits)",
                        a.value
                    ),
                );
                item.sound = false;
            }
        }

        let mut seen_section: [Option<usize>; 4] = [None; 4];
        let mut last_section: Option<usize> = None;
        for el in &root.children {
            let Some(k) = SECTIONS.iter().position(|s| Self::is(el, s)) else {
                self.unknown_element(el, "<deployment>", "<hosts>, <components>, <instances>, <channels>");
                continue;
            };
            if let Some(first) = seen_section[k] {
                self.err(
                    el.span.clone(),
                    format!(
                        "<deployment>: second <{}> (the first is on line {first}); each section appears once",
                        SECTIONS[k]
                    ),
                );
                continue;
            }
            seen_section[k] = Some(self.line_of(el.span.start));
            if let Some(last) = last_section {
                if k < last {
                    self.err(
                        el.span.clone(),
                        format!(
                            "<deployment>: <{}> must come before <{}>; the sections are <hosts>, <components>, <instances>, <channels> in that order",
                            SECTIONS[k], SECTIONS[last]
                        ),
                    );
                }
            }
            last_section = Some(last_section.map_or(k, |l| l.max(k)));
            self.item(el, format!("<{}>", SECTIONS[k]), &[], 0);
            match k {
                0 => self.hosts(el, &mut d),
                1 => self.components(el, &mut d),
                2 => self.instances(el, &mut d),
                _ => self.channels(el, &mut d),
            }
        }
        for (k, seen) in seen_section.iter().enumerate() {
            if seen.is_none() {
                self.err(
                    root.span.clone(),
                    format!("<deployment>: missing <{}> (write <{}/> when empty)", SECTIONS[k], SECTIONS[k]),
                );
            }
        }
        Some(d)
    }

    fn hosts(&mut self, section: &Elem, d: &mut Deployment) {
        let mut seen = Seen::new("host id");
        for el in &section.children {
            if !Self::is(el, "host") {
                self.unknown_element(el, "<hosts>", "<host>");
                continue;
            }
            let mut item = self.item(el, desc(el, "id"), &["id"], 1);
            let Some(id) = self.name_attr(el, &mut item, "id") else {
                continue;
            };
            self.unique(&mut seen, &id, item.attr_span("id"), &item.desc);
            let attrs = self.attrs(el, &item.desc.clone(), &[]);
            d.hosts.push(Host { id, attrs });
            self.meta.hosts.push(item);
        }
    }

    /// Reads the `<attr>` children of a host or component; other children
    /// are reported unless their name is in `others` (handled by the caller).
    fn attrs(&mut self, parent: &Elem, parent_desc: &str, others: &[&str]) -> Vec<Attr> {
        let mut out = Vec::new();
        let mut seen = Seen::new("attribute name");
        let allowed = if others.is_empty() {
            "<attr>".to_string()
        } else {
            format!("<attr>, {}", others.iter().map(|o| format!("<{o}>")).collect::<Vec<_>>().join(", "))
        };
        for el in &parent.children {
            if others.iter().any(|o| Self::is(el, o)) {
                continue;
            }
            if !Self::is(el, "attr") {
                self.unknown_element(el, parent_desc, &allowed);
                continue;
            }
            let mut item =
                self.item(el, format!("{} in {parent_desc}", desc(el, "name")), &["name", "type", "value"], 3);
            self.no_children(el, &item.desc);
            let Some(name) = self.name_attr(el, &mut item, "name") else {
                continue;
            };
            self.unique(&mut seen, &name, item.attr_span("name"), &item.desc);
            let (Some(ty), Some(value)) = (el.attr("type"), el.attr("value")) else {
                continue;
            };
            let v = match ty.value.as_str() {
                "string" => Some(AttrValue::Str(value.value.clone())),
                "int" => match parse_i64(&value.value) {
                    Some(i) => Some(AttrValue::Int(i)),
                    None => {
                        self.err(
                            value.span.clone(),
                            format!("{}: type=\"int\" but value=\"{}\" is not an integer", item.desc, value.value),
                        );
                        None
                    }
                },
                "bool" => match value.value.as_str() {
                    "true" => Some(AttrValue::Bool(true)),
                    "false" => Some(AttrValue::Bool(false)),
                    other => {
                        self.err(
                            value.span.clone(),
                            format!("{}: type=\"bool\" but value=\"{other}\" is not \"true\" or \"false\"", item.desc),
                        );
                        None
                    }
                },
                other => {
                    self.err(
                        ty.span.clone(),
                        format!("{}: unknown type=\"{other}\" (expected string, int or bool)", item.desc),
                    );
                    None
                }
            };
            if let Some(value) = v {
                out.push(Attr { name, value });
            }
        }
        out
    }

    fn components(&mut self, section: &Elem, d: &mut Deployment) {
        let mut seen = Seen::new("component name");
        for el in &section.children {
            if !Self::is(el, "component") {
                self.unknown_element(el, "<components>", "<component>");
                continue;
            }
            let mut item = self.item(el, desc(el, "name"), &["name", "code", "maxperhost", "maxinstances"], 2);
            let Some(name) = self.name_attr(el, &mut item, "name") else {
                continue;
            };
            self.unique(&mut seen, &name, item.attr_span("name"), &item.desc);
            let mut c = Component {
                name,
                code: el.attr("code").map(|a| a.value.clone()).unwrap_or_default(),
                ..Component::default()
            };
            if let Some(a) = el.attr("maxperhost") {
                c.maxperhost = self.u32_attr(a, &mut item);
            }
            if let Some(a) = el.attr("maxinstances") {
                c.maxinstances = self.u32_attr(a, &mut item);
            }
            let cdesc = item.desc.clone();
            c.attrs = self.attrs(el, &cdesc, &["port"]);
            // `<attr>`s come before `<port>`s.
            let mut seen_port = false;
            for child in &el.children {
                if Self::is(child, "port") {
                    seen_port = true;
                } else if seen_port && Self::is(child, "attr") {
                    self.err(
                        child.span.clone(),
                        format!("{}: <attr> after <port>; a component's <attr>s come before its <port>s", cdesc),
                    );
                }
            }
            let mut ports = Vec::new();
            let mut port_items = Vec::new();
            let mut seen_ports = Seen::new("port name");
            for p in el.children.iter().filter(|p| Self::is(p, "port")) {
                let mut pitem = self.item(
                    p,
                    format!("{} of {cdesc}", desc(p, "name")),
                    &["name", "variadic", "max", "direction"],
                    1,
                );
                self.no_children(p, &pitem.desc);
                let Some(pname) = self.name_attr(p, &mut pitem, "name") else {
                    continue;
                };
                self.unique(&mut seen_ports, &pname, pitem.attr_span("name"), &pitem.desc.clone());
                let mut port = Port { name: pname, ..Port::default() };
                if let Some(a) = p.attr("variadic") {
                    port.variadic = self.bool_attr(a, &mut pitem).unwrap_or(false);
                }
                if let Some(a) = p.attr("max") {
                    port.max = self.u32_attr(a, &mut pitem);
                    if port.max.is_some() && !port.variadic && pitem.sound {
                        self.err(
                            a.span.clone(),
                            format!(
                                "{}: max=\"{}\" on a port that is not variadic (p[N] is written variadic=\"true\" max=\"N\")",
                                pitem.desc, a.value
                            ),
                        );
                        pitem.sound = false;
                    }
                }
                if let Some(a) = p.attr("direction") {
                    port.direction = Direction::parse(&a.value);
                    if port.direction.is_none() {
                        self.err(
                            a.span.clone(),
                            format!(
                                "{}: unknown direction=\"{}\" (expected input, output or external)",
                                pitem.desc, a.value
                            ),
                        );
                        pitem.sound = false;
                    }
                }
                ports.push(port);
                port_items.push(pitem);
            }
            c.ports = ports;
            d.components.push(c);
            self.meta.components.push(item);
            self.meta.ports.push(port_items);
        }
    }

    fn instances(&mut self, section: &Elem, d: &mut Deployment) {
        let mut seen = Seen::new("instance id");
        for el in &section.children {
            if !Self::is(el, "instance") {
                self.unknown_element(el, "<instances>", "<instance>");
                continue;
            }
            let mut item = self.item(el, desc(el, "id"), &["id", "component", "host"], 3);
            let Some(id) = self.name_attr(el, &mut item, "id") else {
                continue;
            };
            self.unique(&mut seen, &id, item.attr_span("id"), &item.desc);
            let component = self.name_attr(el, &mut item, "component").unwrap_or_default();
            let host = self.name_attr(el, &mut item, "host").unwrap_or_default();
            self.no_children(el, &item.desc);
            d.instances.push(Instance { id, component, host });
            self.meta.instances.push(item);
        }
    }

    fn channels(&mut self, section: &Elem, d: &mut Deployment) {
        let mut seen = Seen::new("channel id");
        for el in &section.children {
            if !Self::is(el, "channel") {
                self.unknown_element(el, "<channels>", "<channel>");
                continue;
            }
            let mut item = self.item(el, desc(el, "id"), &["id", "directed"], 2);
            let Some(id) = self.name_attr(el, &mut item, "id") else {
                continue;
            };
            self.unique(&mut seen, &id, item.attr_span("id"), &item.desc);
            let directed = match el.attr("directed") {
                Some(a) => self.bool_attr(a, &mut item).unwrap_or(false),
                None => false,
            };
            let cdesc = item.desc.clone();
            let mut ends: [Option<(End, Item)>; 2] = [None, None];
            for child in &el.children {
                let k = if Self::is(child, "from") {
                    0
                } else if Self::is(child, "to") {
                    1
                } else {
                    self.unknown_element(child, &cdesc, "<from>, <to>");
                    continue;
                };
                let tag = ["from", "to"][k];
                if ends[k].is_some() {
                    self.err(
                        child.span.clone(),
                        format!("{cdesc}: second <{tag}>; a channel has one <from> and one <to>"),
                    );
                    continue;
                }
                if k == 0 && ends[1].is_some() {
                    self.err(child.span.clone(), format!("{cdesc}: <from> must come before <to>"));
                }
                ends[k] = Some(self.end(child, &format!("<{tag}> of {cdesc}")));
            }
            let [from, to] = ends;
            for (k, e) in [&from, &to].iter().enumerate() {
                if e.is_none() {
                    self.err(el.span.clone(), format!("{cdesc}: missing <{}>", ["from", "to"][k]));
                    item.sound = false;
                }
            }
            let (from, from_item) = from.unwrap_or_default();
            let (to, to_item) = to.unwrap_or_default();
            d.channels.push(Channel { id, directed, from, to });
            self.meta.channels.push(ChannelMeta { item, from: from_item, to: to_item });
        }
    }

    fn end(&mut self, el: &Elem, edesc: &str) -> (End, Item) {
        let mut item = self.item(el, edesc.to_string(), &["instance", "port", "index"], 2);
        let instance = self.name_attr(el, &mut item, "instance").unwrap_or_default();
        let port = self.name_attr(el, &mut item, "port").unwrap_or_default();
        let index = match el.attr("index") {
            Some(a) => self.u32_attr(a, &mut item),
            None => None,
        };
        self.no_children(el, edesc);
        (End { instance, port, index }, item)
    }

    fn no_children(&mut self, el: &Elem, edesc: &str) {
        for child in &el.children {
            self.unknown_element(child, edesc, "");
        }
    }
}

/// `<host id="h1">`: the element with its identifying attribute, if present.
fn desc(el: &Elem, key: &str) -> String {
    match el.attr(key) {
        Some(a) => format!("<{} {key}=\"{}\">", el.local, a.value),
        None => format!("<{}>", el.local),
    }
}

/// A non-negative decimal integer that fits in 32 bits.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An optionally negative decimal integer that fits in 64 bits.
fn parse_i64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
