//! Rendering a [`Deployment`] as a Graphviz graph (`--format dot`): one
//! cluster per host holding its instances, one edge per channel.

use super::model::Deployment;
use std::collections::HashSet;

/// Writes the deployment as a Graphviz `digraph`:
///
/// - one `subgraph "cluster_<host>"` per host, labelled with the host id, in
///   host order; a host without instances shows a `(no instances)` note so
///   that every available host is visible;
/// - each instance is a box node named and labelled with its id, inside its
///   host's cluster (instances on hosts missing from `hosts` come after the
///   clusters);
/// - each channel is an edge from its `from` instance to its `to` instance,
///   labelled `out -> cin[0]` (ports with their indices); a directed channel
///   has an arrow, a bidirectional one `dir=none`.
///
/// Every identifier and label is a quoted, escaped DOT string. The output is
/// deterministic.
pub fn to_dot(d: &Deployment) -> String {
    let mut w = String::new();
    w.push_str("digraph deployment {\n");
    w.push_str("  node [shape=box];\n");
    let host_ids: HashSet<&str> = d.hosts.iter().map(|h| &h.id[..]).collect();
    for h in &d.hosts {
        w.push_str(&format!("  subgraph {} {{\n", quote(&format!("cluster_{}", h.id))));
        w.push_str(&format!("    label={};\n", quote(&h.id)));
        let mut any = false;
        for i in d.instances.iter().filter(|i| i.host == h.id) {
            w.push_str(&format!("    {} [label={}];\n", quote(&i.id), quote(&i.id)));
            any = true;
        }
        if !any {
            // Instance ids contain '@', so this node name cannot clash.
            w.push_str(&format!(
                "    {} [label=\"(no instances)\", shape=plaintext];\n",
                quote(&format!("{} (empty)", h.id))
            ));
        }
        w.push_str("  }\n");
    }
    for i in d.instances.iter().filter(|i| !host_ids.contains(&i.host[..])) {
        w.push_str(&format!("  {} [label={}];\n", quote(&i.id), quote(&i.id)));
    }
    for c in &d.channels {
        let label = format!("{} -> {}", c.from.port_label(), c.to.port_label());
        w.push_str(&format!(
            "  {} -> {} [label={}{}];\n",
            quote(&c.from.instance),
            quote(&c.to.instance),
            quote(&label),
            if c.directed { "" } else { ", dir=none" }
        ));
    }
    w.push_str("}\n");
    w
}

/// A DOT double-quoted string. Backslashes are doubled (so labels show them
/// literally rather than as `\n`/`\l` escapes), quotes escaped, line breaks
/// written as `\n`.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => {}
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
