//! The XML form of the role document (namespace `urn:deladas:mdcd:1`,
//! described by `schema/roles.xsd`): a writer, and a reader that builds on
//! the DDD module's well-formedness layer (`crate::ddd::xml`, so that only
//! `ddd` uses quick-xml) and then checks the document's structure and, with
//! [`RoleDocument::validate`], its references.
//!
//! ```xml
//! <roles xmlns="urn:deladas:mdcd:1" format="1">
//!   <upgrades>
//!     <upgrade component="Router" code="…" shadow="samehost"><change port="rin"/></upgrade>
//!   </upgrades>
//!   <groups>
//!     <low><member instance="Router@h2" component="Router" version="…" host="h2"/></low>
//!     <shadow><member instance="Router@h2~shadow" shadows="Router@h2" component="Router" version="…" host="h2"/></shadow>
//!     <active>…</active>
//!   </groups>
//!   <boundary>
//!     <channel id="c1" low="Router@h2" low-port="cout" low-index="0" active="Client@h1" active-port="in"/>
//!   </boundary>
//!   <processes>
//!     <process instance="Router@h2" role="low">
//!       <counter-peer instance="…"/> <notify instance="…"/> <shadow-peer instance="…"/> <external-port name="…"/>
//!     </process>
//!   </processes>
//! </roles>
//! ```

use std::ops::Range;

use super::model::{
    BoundaryChannel, Groups, Member, Place, Process, Role, RoleDocError, RoleDocument, ShadowMember, ShadowPlacement,
    UpgradeInfo, FORMAT, NAMESPACE,
};
use crate::ddd::xml::{self as x, write_attr as attr, Dialect, Elem};

const DIALECT: Dialect =
    Dialect { name: "a role document", root: "roles", namespace: NAMESPACE, elements: "role document elements" };

// ---------------------------------------------------------------------------
// Writing

/// Writes the document: XML declaration, `<roles xmlns="urn:deladas:mdcd:1"
/// format="1">`, two-space indentation, one element per line, a final
/// newline. Empty sections are written as empty elements (`<boundary/>`).
/// The same document gives byte-identical text.
pub fn to_xml(d: &RoleDocument) -> String {
    let mut w = String::with_capacity(512 + 160 * d.processes.len());
    w.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<roles");
    attr(&mut w, "xmlns", NAMESPACE);
    attr(&mut w, "format", &d.format.to_string());
    w.push_str(">\n");

    open(&mut w, 1, "upgrades", d.upgrades.is_empty());
    for u in &d.upgrades {
        w.push_str("    <upgrade");
        attr(&mut w, "component", &u.component);
        attr(&mut w, "code", &u.code);
        attr(&mut w, "shadow", u.shadow.as_str());
        if u.changes.is_empty() {
            w.push_str("/>\n");
            continue;
        }
        w.push_str(">\n");
        for p in &u.changes {
            w.push_str("      <change");
            attr(&mut w, "port", p);
            w.push_str("/>\n");
        }
        w.push_str("    </upgrade>\n");
    }
    close(&mut w, 1, "upgrades", d.upgrades.is_empty());

    w.push_str("  <groups>\n");
    members(&mut w, "low", &d.groups.low);
    open(&mut w, 2, "shadow", d.groups.shadow.is_empty());
    for s in &d.groups.shadow {
        w.push_str("      <member");
        attr(&mut w, "instance", &s.instance);
        attr(&mut w, "shadows", &s.shadows);
        attr(&mut w, "component", &s.component);
        attr(&mut w, "version", &s.version);
        attr(&mut w, "host", &s.host);
        w.push_str("/>\n");
    }
    close(&mut w, 2, "shadow", d.groups.shadow.is_empty());
    members(&mut w, "active", &d.groups.active);
    w.push_str("  </groups>\n");

    open(&mut w, 1, "boundary", d.boundary.is_empty());
    for b in &d.boundary {
        w.push_str("    <channel");
        attr(&mut w, "id", &b.channel);
        attr(&mut w, "low", &b.low);
        attr(&mut w, "low-port", &b.low_port);
        if let Some(i) = b.low_index {
            attr(&mut w, "low-index", &i.to_string());
        }
        attr(&mut w, "active", &b.active);
        attr(&mut w, "active-port", &b.active_port);
        if let Some(i) = b.active_index {
            attr(&mut w, "active-index", &i.to_string());
        }
        w.push_str("/>\n");
    }
    close(&mut w, 1, "boundary", d.boundary.is_empty());

    open(&mut w, 1, "processes", d.processes.is_empty());
    for p in &d.processes {
        w.push_str("    <process");
        attr(&mut w, "instance", &p.instance);
        attr(&mut w, "role", p.role.as_str());
        let children = [
            ("counter-peer", "instance", &p.counter_peers),
            ("notify", "instance", &p.notify),
            ("shadow-peer", "instance", &p.shadow_peers),
            ("external-port", "name", &p.external_ports),
        ];
        if children.iter().all(|(_, _, v)| v.is_empty()) {
            w.push_str("/>\n");
            continue;
        }
        w.push_str(">\n");
        for (tag, key, values) in children {
            for v in values {
                w.push_str("      <");
                w.push_str(tag);
                attr(&mut w, key, v);
                w.push_str("/>\n");
            }
        }
        w.push_str("    </process>\n");
    }
    close(&mut w, 1, "processes", d.processes.is_empty());
    w.push_str("</roles>\n");
    w
}

fn members(w: &mut String, group: &str, members: &[Member]) {
    open(w, 2, group, members.is_empty());
    for m in members {
        w.push_str("      <member");
        attr(w, "instance", &m.instance);
        attr(w, "component", &m.component);
        attr(w, "version", &m.version);
        attr(w, "host", &m.host);
        w.push_str("/>\n");
    }
    close(w, 2, group, members.is_empty());
}

fn open(w: &mut String, depth: usize, name: &str, empty: bool) {
    w.push_str(&"  ".repeat(depth));
    w.push('<');
    w.push_str(name);
    w.push_str(if empty { "/>\n" } else { ">\n" });
}

fn close(w: &mut String, depth: usize, name: &str, empty: bool) {
    if !empty {
        w.push_str(&"  ".repeat(depth));
        w.push_str("</");
        w.push_str(name);
        w.push_str(">\n");
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Reads an XML role document: well-formed XML, the root
/// `<roles xmlns="urn:deladas:mdcd:1" format="1">`, the sections in order
/// (`upgrades`, `groups` with `low`, `shadow`, `active`, `boundary`,
/// `processes`), only known elements and attributes, required attributes
/// present, values of the right kind; then [`RoleDocument::validate`].
/// Every problem is reported, in document order, with the span of its
/// element or attribute. Never panics.
pub fn from_xml(text: &str) -> Result<RoleDocument, Vec<RoleDocError>> {
    let mut xerrs = Vec::new();
    let root = x::parse_document(text, &DIALECT, &mut xerrs);
    let mut r = Reader { text, errs: xerrs.into_iter().map(|e| RoleDocError::at(text, e.span, e.message)).collect() };
    let Some(root) = root else {
        return Err(r.errs);
    };
    let mut spans = Spans::default();
    let doc = r.document(&root, &mut spans);
    let Reader { mut errs, .. } = r;
    if let Some(doc) = &doc {
        if errs.is_empty() {
            for (place, message) in doc.validate() {
                let span = spans.of(place).unwrap_or_else(|| root.span.clone());
                errs.push(RoleDocError::at(text, span, format!("{place}: {message}")));
            }
        }
    }
    match doc {
        Some(doc) if errs.is_empty() => Ok(doc),
        _ => {
            errs.sort_by_key(|e| e.span.as_ref().map_or(0, |s| s.start));
            errs.dedup();
            Err(errs)
        }
    }
}

/// The start tag of each part, to place [`RoleDocument::validate`]'s problems.
#[derive(Default)]
struct Spans {
    upgrades: Vec<Range<usize>>,
    low: Vec<Range<usize>>,
    shadow: Vec<Range<usize>>,
    active: Vec<Range<usize>>,
    boundary: Vec<Range<usize>>,
    processes: Vec<Range<usize>>,
}

impl Spans {
    fn of(&self, place: Place) -> Option<Range<usize>> {
        match place {
            Place::Document => None,
            Place::Upgrade(i) => self.upgrades.get(i).cloned(),
            Place::Low(i) => self.low.get(i).cloned(),
            Place::Shadow(i) => self.shadow.get(i).cloned(),
            Place::Active(i) => self.active.get(i).cloned(),
            Place::Boundary(i) => self.boundary.get(i).cloned(),
            Place::Process(i) => self.processes.get(i).cloned(),
        }
    }
}

struct Reader<'t> {
    text: &'t str,
    errs: Vec<RoleDocError>,
}

impl Reader<'_> {
    fn err(&mut self, span: Range<usize>, message: String) {
        self.errs.push(RoleDocError::at(self.text, span, message));
    }

    fn is(el: &Elem, name: &str) -> bool {
        el.local == name && el.ns.as_deref() == Some(NAMESPACE)
    }

    /// The children of `el`, each checked to be one of `allowed`.
    fn children<'e>(&mut self, el: &'e Elem, allowed: &[&str]) -> Vec<&'e Elem> {
        let mut out = Vec::new();
        for c in &el.children {
            if allowed.iter().any(|a| Self::is(c, a)) {
                out.push(c);
            } else {
                let ns = match c.ns.as_deref() {
                    Some(NAMESPACE) => String::new(),
                    Some(ns) => format!(" (in namespace \"{ns}\")"),
                    None => " (in no namespace)".into(),
                };
                let hint = if allowed.is_empty() {
                    format!("<{}> has no child elements", el.qname)
                } else {
                    let list: Vec<String> = allowed.iter().map(|a| format!("<{a}>")).collect();
                    format!("only {} may appear here", list.join(", "))
                };
                self.err(c.span.clone(), format!("unknown element <{}>{ns} in <{}>; {hint}", c.qname, el.qname));
            }
        }
        out
    }

    /// Checks `el`'s attributes against `allowed`, of which the first
    /// `required` must be present; returns the values in `allowed`'s order
    /// (`None` when absent). A missing required attribute is reported and
    /// makes the result `None`.
    fn attrs(&mut self, el: &Elem, allowed: &[&str], required: usize) -> Option<Vec<Option<String>>> {
        let desc = describe(el);
        for a in &el.attrs {
            if !allowed.contains(&a.name.as_str()) {
                let hint = if allowed.is_empty() {
                    "it takes no attributes".to_string()
                } else {
                    format!("it takes {}", allowed.join(", "))
                };
                self.err(a.span.clone(), format!("{desc}: unknown attribute {}; {hint}", a.name));
            }
        }
        let mut ok = true;
        let mut out = Vec::new();
        for (i, name) in allowed.iter().enumerate() {
            let v = el.attr(name).map(|a| a.value.clone());
            if v.is_none() && i < required {
                self.err(el.span.clone(), format!("{desc}: missing required attribute {name}"));
                ok = false;
            }
            out.push(v);
        }
        ok.then_some(out)
    }

    fn document(&mut self, root: &Elem, spans: &mut Spans) -> Option<RoleDocument> {
        if root.local != "roles" || root.ns.as_deref() != Some(NAMESPACE) {
            let ns = match root.ns.as_deref() {
                Some(ns) => format!(" in namespace \"{ns}\""),
                None => " in no namespace".into(),
            };
            self.err(
                root.span.clone(),
                format!(
                    "the root element is <{}>{ns}; a role document is a <roles xmlns=\"{NAMESPACE}\" format=\"{FORMAT}\"> element",
                    root.qname
                ),
            );
            return None;
        }
        let vals = self.attrs(root, &["format"], 1)?;
        let format_text = vals[0].clone().unwrap_or_default();
        if format_text != FORMAT.to_string() {
            let span = root.attr("format").map_or(root.span.clone(), |a| a.span.clone());
            self.err(span, format!("<roles>: unsupported format=\"{format_text}\"; this reader reads format {FORMAT}"));
            return None;
        }
        let order = ["upgrades", "groups", "boundary", "processes"];
        let sections = self.sections(root, &order);
        let mut doc = RoleDocument {
            format: FORMAT,
            upgrades: vec![],
            groups: Groups::default(),
            boundary: vec![],
            processes: vec![],
        };
        let mut sound = true;
        for (k, el) in sections.iter().enumerate() {
            let Some(el) = el else {
                sound = false;
                continue;
            };
            self.attrs(el, &[], 0);
            let ok = match k {
                0 => self.upgrades(el, &mut doc.upgrades, spans),
                1 => self.groups(el, &mut doc.groups, spans),
                2 => self.boundary(el, &mut doc.boundary, spans),
                _ => self.processes(el, &mut doc.processes, spans),
            };
            sound &= ok;
        }
        sound.then_some(doc)
    }

    /// Finds the children named in `order`, each exactly once and in that
    /// order; reports anything else.
    fn sections<'e>(&mut self, parent: &'e Elem, order: &[&str]) -> Vec<Option<&'e Elem>> {
        let mut found: Vec<Option<&Elem>> = vec![None; order.len()];
        let mut last: Option<usize> = None;
        for el in self.children(parent, order) {
            let Some(k) = order.iter().position(|n| Self::is(el, n)) else { continue };
            if found[k].is_some() {
                self.err(el.span.clone(), format!("<{}>: second <{}>; it appears once", parent.qname, order[k]));
                continue;
            }
            if last.is_some_and(|l| l > k) {
                let list: Vec<String> = order.iter().map(|n| format!("<{n}>")).collect();
                self.err(
                    el.span.clone(),
                    format!("<{}>: <{}> is out of order; the order is {}", parent.qname, order[k], list.join(", ")),
                );
            }
            last = Some(last.map_or(k, |l| l.max(k)));
            found[k] = Some(el);
        }
        for (k, f) in found.iter().enumerate() {
            if f.is_none() {
                self.err(
                    parent.span.clone(),
                    format!("<{}>: missing <{}> (write <{}/> when empty)", parent.qname, order[k], order[k]),
                );
            }
        }
        found
    }

    fn upgrades(&mut self, section: &Elem, out: &mut Vec<UpgradeInfo>, spans: &mut Spans) -> bool {
        let mut sound = true;
        for el in self.children(section, &["upgrade"]) {
            let vals = self.attrs(el, &["component", "code", "shadow"], 3);
            let mut changes = Vec::new();
            for c in self.children(el, &["change"]) {
                match self.attrs(c, &["port"], 1) {
                    Some(v) => changes.push(v[0].clone().unwrap_or_default()),
                    None => sound = false,
                }
            }
            let Some(vals) = vals else {
                sound = false;
                continue;
            };
            let shadow_text = vals[2].clone().unwrap_or_default();
            let Some(shadow) = ShadowPlacement::parse(&shadow_text) else {
                let span = attr_span(el, "shadow");
                self.err(span, format!("{}: shadow=\"{shadow_text}\" is not samehost or otherhost", describe(el)));
                sound = false;
                continue;
            };
            spans.upgrades.push(el.span.clone());
            out.push(UpgradeInfo {
                component: vals[0].clone().unwrap_or_default(),
                code: vals[1].clone().unwrap_or_default(),
                changes,
                shadow,
            });
        }
        sound
    }

    fn groups(&mut self, section: &Elem, out: &mut Groups, spans: &mut Spans) -> bool {
        let parts = self.sections(section, &["low", "shadow", "active"]);
        let mut sound = parts.iter().all(Option::is_some);
        for (k, part) in parts.iter().enumerate() {
            let Some(part) = part else { continue };
            self.attrs(part, &[], 0);
            for el in self.children(part, &["member"]) {
                self.children(el, &[]);
                if k == 1 {
                    let Some(v) = self.attrs(el, &["instance", "shadows", "component", "version", "host"], 5) else {
                        sound = false;
                        continue;
                    };
                    let mut v = v.into_iter().map(Option::unwrap_or_default);
                    let mut next = || v.next().unwrap_or_default();
                    spans.shadow.push(el.span.clone());
                    out.shadow.push(ShadowMember {
                        instance: next(),
                        shadows: next(),
                        component: next(),
                        version: next(),
                        host: next(),
                    });
                } else {
                    let Some(v) = self.attrs(el, &["instance", "component", "version", "host"], 4) else {
                        sound = false;
                        continue;
                    };
                    let mut v = v.into_iter().map(Option::unwrap_or_default);
                    let mut next = || v.next().unwrap_or_default();
                    let m = Member { instance: next(), component: next(), version: next(), host: next() };
                    if k == 0 {
                        spans.low.push(el.span.clone());
                        out.low.push(m);
                    } else {
                        spans.active.push(el.span.clone());
                        out.active.push(m);
                    }
                }
            }
        }
        sound
    }

    fn boundary(&mut self, section: &Elem, out: &mut Vec<BoundaryChannel>, spans: &mut Spans) -> bool {
        let mut sound = true;
        for el in self.children(section, &["channel"]) {
            self.children(el, &[]);
            let names = ["id", "low", "low-port", "active", "active-port", "low-index", "active-index"];
            let Some(v) = self.attrs(el, &names, 5) else {
                sound = false;
                continue;
            };
            let mut index = |k: usize| -> Result<Option<u32>, ()> {
                let Some(t) = &v[k] else { return Ok(None) };
                match parse_u32(t) {
                    Some(n) => Ok(Some(n)),
                    None => {
                        let span = attr_span(el, names[k]);
                        self.err(
                            span,
                            format!(
                                "{}: {}=\"{t}\" is not a non-negative integer (0 to 4294967295)",
                                describe(el),
                                names[k]
                            ),
                        );
                        Err(())
                    }
                }
            };
            let (Ok(low_index), Ok(active_index)) = (index(5), index(6)) else {
                sound = false;
                continue;
            };
            let s = |k: usize| v[k].clone().unwrap_or_default();
            spans.boundary.push(el.span.clone());
            out.push(BoundaryChannel {
                channel: s(0),
                low: s(1),
                low_port: s(2),
                low_index,
                active: s(3),
                active_port: s(4),
                active_index,
            });
        }
        sound
    }

    fn processes(&mut self, section: &Elem, out: &mut Vec<Process>, spans: &mut Spans) -> bool {
        let mut sound = true;
        let kinds = ["counter-peer", "notify", "shadow-peer", "external-port"];
        for el in self.children(section, &["process"]) {
            let vals = self.attrs(el, &["instance", "role"], 2);
            let mut lists: [Vec<String>; 4] = Default::default();
            let mut last = 0;
            for c in self.children(el, &kinds) {
                let Some(k) = kinds.iter().position(|n| Self::is(c, n)) else { continue };
                if k < last {
                    self.err(
                        c.span.clone(),
                        format!(
                            "<{}> is out of order; inside <process> the order is <counter-peer>, <notify>, <shadow-peer>, <external-port>",
                            c.qname
                        ),
                    );
                }
                last = last.max(k);
                self.children(c, &[]);
                let key = if k == 3 { "name" } else { "instance" };
                match self.attrs(c, &[key], 1) {
                    Some(v) => lists[k].push(v[0].clone().unwrap_or_default()),
                    None => sound = false,
                }
            }
            let Some(vals) = vals else {
                sound = false;
                continue;
            };
            let role_text = vals[1].clone().unwrap_or_default();
            let Some(role) = Role::parse(&role_text) else {
                self.err(
                    attr_span(el, "role"),
                    format!("{}: role=\"{role_text}\" is not low, shadow or active", describe(el)),
                );
                sound = false;
                continue;
            };
            let [counter_peers, notify, shadow_peers, external_ports] = lists;
            spans.processes.push(el.span.clone());
            out.push(Process {
                instance: vals[0].clone().unwrap_or_default(),
                role,
                counter_peers,
                notify,
                shadow_peers,
                external_ports,
            });
        }
        sound
    }
}

/// `<process instance="Router@h2">`, or `<member>` when it has no id.
fn describe(el: &Elem) -> String {
    for key in ["instance", "id", "component", "port", "name"] {
        if let Some(a) = el.attr(key) {
            return format!("<{} {key}=\"{}\">", el.qname, a.value);
        }
    }
    format!("<{}>", el.qname)
}

fn attr_span(el: &Elem, name: &str) -> Range<usize> {
    el.attr(name).map_or(el.span.clone(), |a| a.span.clone())
}

/// A decimal `u32` written with digits only.
fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
