//! Pictures of a deployment (`--format svg`): hosts as boxes holding their
//! instances, channels as edges labelled with their ports, optionally with
//! marks (a migration plan's moves, starts, stops and rewirings; MDCD roles;
//! verification failures) given as CSS classes and explained in a legend.
//!
//! Layout: the host-level graph (hosts as nodes, the channels between two
//! hosts aggregated into one edge) is laid out by `layout-rs` (a pure-Rust,
//! Graphviz-dot-like layered layout); the instances are placed inside their
//! host's box here, in the DDD's order, one row each. Connected groups of
//! hosts are laid out separately and packed in rows, so hosts without
//! channels do not stretch one rank across the page; with
//! [`Options::group_by`], hosts are first grouped by the value of a host
//! attribute (e.g. `zone`), each group framed and labelled.
//!
//! Everything here is pure (values in, an SVG string out) and
//! deterministic: the same input gives byte-identical output. Every piece
//! of text from the input is XML-escaped.

mod html;
mod layout;
mod svg;

pub use html::diagnostics_page;
pub use svg::{escape, html_page};

use std::collections::{BTreeMap, BTreeSet};

use crate::ddd::{Channel, Deployment, Instance};
use crate::mdcd::RoleDocument;
use crate::plan::Plan;

/// Rendering options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Group hosts by this host attribute (e.g. `zone`); hosts without it
    /// form the group `(no zone)`.
    pub group_by: Option<String>,
}

/// A channel's identity in marks: `(from instance, from port, to instance,
/// to port)`.
pub type ChannelKey = (String, String, String, String);

/// The key of a DDD channel.
pub fn channel_key(c: &Channel) -> ChannelKey {
    (c.from.instance.clone(), c.from.port.clone(), c.to.instance.clone(), c.to.port.clone())
}

/// What to draw on one deployment: CSS classes for hosts, instances and
/// channels, short notes beside instances, and instances that are not in
/// the DDD (shadows).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// The panel's title.
    pub title: String,
    /// Host id → CSS class (`failed`, `added`).
    pub hosts: BTreeMap<String, String>,
    /// Instance id → CSS class (`started`, `stopped`, `moved-from`, …).
    pub instances: BTreeMap<String, String>,
    /// Instance id → a note shown after its id (e.g. `→ h5`).
    pub notes: BTreeMap<String, String>,
    /// Channel → CSS class (`added`, `removed`, `boundary`, …).
    pub channels: BTreeMap<ChannelKey, String>,
    /// Extra instances drawn in their host's box after its own (shadows),
    /// each with its CSS class.
    pub extra: Vec<(Instance, String)>,
    /// Lines of text under the panel (e.g. violated clauses).
    pub captions: Vec<String>,
}

/// One drawing: its panels side by side, a legend under them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Picture {
    pub title: String,
    pub panels: Vec<(Deployment, Marks)>,
    /// (CSS class of an instance, host or channel, what it means).
    pub legend: Vec<(LegendKind, String, String)>,
}

/// What a legend entry shows a sample of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendKind {
    Host,
    Instance,
    Channel,
}

impl Picture {
    /// The SVG document.
    pub fn to_svg(&self, opts: &Options) -> String {
        svg::document(self, opts)
    }
}

fn goal_title(d: &Deployment) -> String {
    match &d.goal {
        Some(g) => format!("deployment of {g}"),
        None => "deployment".to_string(),
    }
}

/// The picture of a deployment (`solve --format svg`).
pub fn deployment_svg(d: &Deployment, opts: &Options) -> String {
    let marks = Marks::default();
    Picture { title: goal_title(d), panels: vec![(d.clone(), marks)], legend: vec![] }.to_svg(opts)
}

/// A violation as `verify` reports it: what is broken, and its witness
/// from the outermost binding (`for Router r1 = Router@h5`) inwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Finding {
    pub message: String,
    pub witness: Vec<String>,
}

/// The picture of a verified deployment (`verify --format svg`): the
/// instances a violation names (in its message or its outermost binding)
/// are marked `violated`; the violations are listed under the picture with
/// the first two steps of their witness.
pub fn verify_svg(d: &Deployment, violations: &[Finding], opts: &Options) -> String {
    let mut marks = Marks::default();
    for v in violations {
        let named = format!("{} {}", v.message, v.witness.first().map_or("", String::as_str));
        for i in &d.instances {
            if mentions(&named, &i.id) {
                marks.instances.insert(i.id.clone(), "violated".into());
            }
        }
    }
    if violations.is_empty() {
        marks.captions.push("verified: the deployment satisfies the goal".into());
    } else {
        for v in violations {
            let steps: Vec<&str> = v.witness.iter().take(2).map(String::as_str).collect();
            let why = if steps.is_empty() { String::new() } else { format!(" — {}", steps.join("; ")) };
            marks.captions.push(format!("violated: {}{why}", v.message));
        }
    }
    let legend = if violations.is_empty() {
        vec![]
    } else {
        vec![(LegendKind::Instance, "violated".into(), "named by a violated clause".into())]
    };
    Picture { title: format!("verification of {}", goal_title(d)), panels: vec![(d.clone(), marks)], legend }
        .to_svg(opts)
}

/// `text` names `id` as a whole word (not as a prefix of `Router@h3#1`
/// when `id` is `Router@h3`).
fn mentions(text: &str, id: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '@' | '#' | '~');
    let mut start = 0;
    while let Some(p) = text[start..].find(id) {
        let at = start + p;
        let end = at + id.len();
        let before = text[..at].chars().next_back().is_none_or(|c| !word(c));
        let after = text[end..].chars().next().is_none_or(|c| !word(c));
        if before && after {
            return true;
        }
        start = at + id.len().max(1);
        while !text.is_char_boundary(start) {
            start += 1;
        }
    }
    false
}

/// The picture of a re-solve (`resolve --format svg`): the old deployment
/// beside the new one, with the plan's stops, moves, starts, restarts and
/// rewirings marked.
pub fn plan_svg(old: &Deployment, new: &Deployment, plan: &Plan, opts: &Options) -> String {
    let mut o = Marks { title: "before".into(), ..Marks::default() };
    let mut n = Marks { title: "after".into(), ..Marks::default() };
    for h in &plan.scenario.failed_hosts {
        o.hosts.insert(h.clone(), "failed".into());
    }
    for h in &plan.scenario.added_hosts {
        n.hosts.insert(h.clone(), "added".into());
    }
    for i in &plan.scenario.failed_instances {
        o.instances.insert(i.clone(), "failed".into());
    }
    for s in &plan.stopped {
        o.instances.insert(s.instance.id.clone(), "stopped".into());
        o.notes.insert(s.instance.id.clone(), format!("stopped: {}", s.reason));
    }
    for m in &plan.moved {
        o.instances.insert(m.from.id.clone(), "moved".into());
        o.notes.insert(m.from.id.clone(), format!("→ {}", m.to.id));
        n.instances.insert(m.to.id.clone(), "moved".into());
        n.notes.insert(m.to.id.clone(), format!("← {}", m.from.id));
    }
    for s in &plan.started {
        n.instances.insert(s.id.clone(), "started".into());
    }
    for r in &plan.restarted {
        n.instances.insert(r.id.clone(), "restarted".into());
    }
    let removed: BTreeSet<_> =
        plan.channels_removed.iter().map(|c| (&c.from.instance, &c.from.port, &c.to.instance, &c.to.port)).collect();
    let added: BTreeSet<_> =
        plan.channels_added.iter().map(|c| (&c.from.instance, &c.from.port, &c.to.instance, &c.to.port)).collect();
    for c in &old.channels {
        if removed.contains(&(&c.from.instance, &c.from.port, &c.to.instance, &c.to.port)) {
            o.channels.insert(channel_key(c), "removed".into());
        }
    }
    for c in &new.channels {
        if added.contains(&(&c.from.instance, &c.from.port, &c.to.instance, &c.to.port)) {
            n.channels.insert(channel_key(c), "added".into());
        }
    }
    o.captions.push(format!(
        "{} kept, {} stopped, {} moved; {} channels removed",
        plan.kept.len(),
        plan.stopped.len(),
        plan.moved.len(),
        plan.channels_removed.len()
    ));
    n.captions.push(format!(
        "{} started, {} restarted; {} channels added, {} kept",
        plan.started.len(),
        plan.restarted.len(),
        plan.channels_added.len(),
        plan.channels_kept.len()
    ));
    let legend = vec![
        (LegendKind::Host, "failed".into(), "failed host".into()),
        (LegendKind::Host, "added".into(), "added host".into()),
        (LegendKind::Instance, "stopped".into(), "stopped".into()),
        (LegendKind::Instance, "moved".into(), "moved (→ where it goes, ← where it came from)".into()),
        (LegendKind::Instance, "started".into(), "started".into()),
        (LegendKind::Instance, "restarted".into(), "restarted in place".into()),
        (LegendKind::Channel, "removed".into(), "channel removed".into()),
        (LegendKind::Channel, "added".into(), "channel added".into()),
    ];
    Picture {
        title: format!("re-solve of {}", goal_title(new)),
        panels: vec![(old.clone(), o), (new.clone(), n)],
        legend,
    }
    .to_svg(opts)
}

/// The picture of an MDCD role assignment (`roles --format svg`): G_low
/// instances, their shadows (drawn on their hosts) and G_act instances, the
/// channels crossing the boundary highlighted.
pub fn roles_svg(d: &Deployment, doc: &RoleDocument, opts: &Options) -> String {
    let mut m = Marks::default();
    for x in &doc.groups.low {
        m.instances.insert(x.instance.clone(), "low".into());
        m.notes.insert(x.instance.clone(), format!("new: {}", x.version));
    }
    for x in &doc.groups.active {
        m.instances.insert(x.instance.clone(), "active".into());
    }
    for s in &doc.groups.shadow {
        let inst = Instance { id: s.instance.clone(), component: s.component.clone(), host: s.host.clone() };
        m.extra.push((inst, "shadow".into()));
    }
    for b in &doc.boundary {
        if let Some(c) = d.channel(&b.channel) {
            m.channels.insert(channel_key(c), "boundary".into());
        }
    }
    m.captions.push(format!(
        "G_low {} · shadows {} · G_act {} · {} boundary channel(s)",
        doc.groups.low.len(),
        doc.groups.shadow.len(),
        doc.groups.active.len(),
        doc.boundary.len()
    ));
    let legend = vec![
        (LegendKind::Instance, "low".into(), "G_low: runs the new version".into()),
        (LegendKind::Instance, "shadow".into(), "G_sdw: shadow (old version)".into()),
        (LegendKind::Instance, "active".into(), "G_act: unchanged".into()),
        (LegendKind::Channel, "boundary".into(), "crosses the G_low boundary".into()),
    ];
    Picture { title: format!("MDCD roles on {}", goal_title(d)), panels: vec![(d.clone(), m)], legend }.to_svg(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_deployment_is_a_picture_too() {
        let svg = deployment_svg(&Deployment::default(), &Options { group_by: Some("zone".into()) });
        assert!(svg.starts_with("<?xml") && svg.ends_with("</svg>\n"), "{svg}");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn mentions_whole_ids_only() {
        assert!(mentions("Router@h3 has 3 clients", "Router@h3"));
        assert!(!mentions("Router@h3#1 has 3 clients", "Router@h3"));
        assert!(mentions("(`Router@h3#1`)", "Router@h3#1"));
        assert!(!mentions("XRouter@h3", "Router@h3"));
    }
}
