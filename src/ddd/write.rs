//! Writing a [`Deployment`] as a DDD (XML, format 1) and as JSON.
//!
//! Both writers are pure functions of the deployment: the same value gives
//! byte-identical text. They write the vectors in their order; canonical order
//! is [`Deployment::canonicalize`]'s job.

use super::model::{Attr, Component, Deployment};
use super::xml::write_attr as attr;
use super::{FORMAT, NAMESPACE};
use serde::Serialize;

/// Writes the deployment as a DDD in the shape of `ddd.md`: XML declaration,
/// `<deployment xmlns="urn:deladas:ddd:1" format="1" …>`, two-space
/// indentation, one element per line (a host's `<attr>`s share its line),
/// a final newline.
///
/// Strings are escaped so that reading the DDD gives them back exactly
/// (`&`, `<`, `>`, `"`, and tab, newline and carriage return as character
/// references). Characters XML 1.0 cannot carry at all (C0 controls other
/// than tab, newline and carriage return, U+FFFE, U+FFFF) are written as
/// character references, which the reader rejects.
pub fn to_xml(d: &Deployment) -> String {
    let mut w = String::with_capacity(256 + 96 * (d.instances.len() + 3 * d.channels.len()));
    w.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    w.push_str("<deployment");
    attr(&mut w, "xmlns", NAMESPACE);
    attr(&mut w, "format", FORMAT);
    if let Some(goal) = &d.goal {
        attr(&mut w, "goal", goal);
    }
    if let Some(sha) = &d.goal_sha256 {
        attr(&mut w, "goal-sha256", sha);
    }
    attr(&mut w, "generator", &d.generator);
    w.push_str(">\n");

    section(&mut w, "hosts", d.hosts.is_empty());
    for h in &d.hosts {
        w.push_str("    <host");
        attr(&mut w, "id", &h.id);
        if h.attrs.is_empty() {
            w.push_str("/>\n");
        } else {
            w.push('>');
            for a in &h.attrs {
                attr_element(&mut w, a);
            }
            w.push_str("</host>\n");
        }
    }
    end_section(&mut w, "hosts", d.hosts.is_empty());

    section(&mut w, "components", d.components.is_empty());
    for c in &d.components {
        component(&mut w, c);
    }
    end_section(&mut w, "components", d.components.is_empty());

    section(&mut w, "instances", d.instances.is_empty());
    for i in &d.instances {
        w.push_str("    <instance");
        attr(&mut w, "id", &i.id);
        attr(&mut w, "component", &i.component);
        attr(&mut w, "host", &i.host);
        w.push_str("/>\n");
    }
    end_section(&mut w, "instances", d.instances.is_empty());

    section(&mut w, "channels", d.channels.is_empty());
    for c in &d.channels {
        w.push_str("    <channel");
        attr(&mut w, "id", &c.id);
        attr(&mut w, "directed", if c.directed { "true" } else { "false" });
        w.push_str(">\n");
        for (tag, e) in [("from", &c.from), ("to", &c.to)] {
            w.push_str("      <");
            w.push_str(tag);
            attr(&mut w, "instance", &e.instance);
            attr(&mut w, "port", &e.port);
            if let Some(i) = e.index {
                attr(&mut w, "index", &i.to_string());
            }
            w.push_str("/>\n");
        }
        w.push_str("    </channel>\n");
    }
    end_section(&mut w, "channels", d.channels.is_empty());

    w.push_str("</deployment>\n");
    w
}

/// Writes the deployment as pretty-printed JSON that mirrors the XML: an
/// object with `format` (always 1), then `goal`, `goal-sha256` (when
/// present), `generator`, `hosts`, `components`, `instances`, `channels`, in
/// that order; attributes as `{"name", "type", "value"}` with typed values.
/// Keys always come in the same order, so the output is deterministic.
pub fn to_json(d: &Deployment) -> String {
    #[derive(Serialize)]
    struct Doc<'a> {
        format: u32,
        #[serde(flatten)]
        deployment: &'a Deployment,
    }
    let doc = Doc { format: 1, deployment: d };
    // Serializing plain structs, strings and integers into a String cannot
    // fail; fall back to an empty object rather than panic.
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| String::from("{}"));
    s.push('\n');
    s
}

fn component(w: &mut String, c: &Component) {
    w.push_str("    <component");
    attr(w, "name", &c.name);
    attr(w, "code", &c.code);
    if let Some(n) = c.maxperhost {
        attr(w, "maxperhost", &n.to_string());
    }
    if let Some(n) = c.maxinstances {
        attr(w, "maxinstances", &n.to_string());
    }
    if c.attrs.is_empty() && c.ports.is_empty() {
        w.push_str("/>\n");
        return;
    }
    w.push_str(">\n");
    for a in &c.attrs {
        w.push_str("      ");
        attr_element(w, a);
        w.push('\n');
    }
    for p in &c.ports {
        w.push_str("      <port");
        attr(w, "name", &p.name);
        if p.variadic {
            attr(w, "variadic", "true");
        }
        if let Some(m) = p.max {
            attr(w, "max", &m.to_string());
        }
        if let Some(d) = p.direction {
            attr(w, "direction", d.as_str());
        }
        w.push_str("/>\n");
    }
    w.push_str("    </component>\n");
}

fn attr_element(w: &mut String, a: &Attr) {
    w.push_str("<attr");
    attr(w, "name", &a.name);
    attr(w, "type", a.value.type_name());
    attr(w, "value", &a.value.value_text());
    w.push_str("/>");
}

fn section(w: &mut String, name: &str, empty: bool) {
    w.push_str("  <");
    w.push_str(name);
    w.push_str(if empty { "/>\n" } else { ">\n" });
}

fn end_section(w: &mut String, name: &str, empty: bool) {
    if !empty {
        w.push_str("  </");
        w.push_str(name);
        w.push_str(">\n");
    }
}
