//! The role document (mdcd.md §1): the three process groups of a guarded
//! upgrade, the channels that cross the low-confidence cluster's boundary,
//! and, per process, everything its runtime needs. Serialised as JSON with
//! serde in exactly the shape mdcd.md shows (plus `upgrades`, per member
//! `component` and `version`, and the ports of boundary channels); the XML
//! form (namespace `urn:deladas:mdcd:1`, `schema/roles.xsd`, written and read
//! by [`super::xml`]) carries the same fields.
//!
//! This is the one model that `deladas roles` writes and that the runtime
//! and the simulator read: [`RoleDocument::from_json`] and
//! [`RoleDocument::from_xml`] check a document's structure and references
//! ([`RoleDocument::validate`]) and report every problem with its line where
//! the input has lines.

use std::fmt;
use std::ops::Range;

use serde::{Deserialize, Serialize};

/// The role document's format version (`"format": 1`).
pub const FORMAT: u32 = 1;

/// XML namespace of the role document.
pub const NAMESPACE: &str = "urn:deladas:mdcd:1";

/// The suffix of a shadow's id: the shadow of `Router@h3` is `Router@h3~shadow`.
pub const SHADOW_SUFFIX: &str = "~shadow";

/// A whole role document: who runs the new code (G_low), who runs the old
/// code in shadow mode (G_sdw), who stays in service unchanged (G_act), and
/// what each process needs to run the MDCD protocol.
///
/// Lists of processes (groups, peers, notifications) are in *document
/// order*: the DDD's instances in the DDD's order, each shadow right after
/// the instance it shadows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDocument {
    /// Always [`FORMAT`].
    pub format: u32,
    /// The goal's `upgrade` declarations, in declaration order.
    pub upgrades: Vec<UpgradeInfo>,
    /// G_low, G_sdw and G_act with each member's component, version and host.
    pub groups: Groups,
    /// Channels with one end in G_low and the other in G_act, in the DDD's
    /// channel order. Their ports are unchanged ones by construction.
    pub boundary: Vec<BoundaryChannel>,
    /// Every process (G_low, G_sdw and G_act members), in document order.
    pub processes: Vec<Process>,
}

/// One `upgrade C(code = …, changes = {…}, shadow = …)` of the goal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeInfo {
    /// The upgraded component.
    pub component: String,
    /// Where the new version's bundle lives.
    pub code: String,
    /// The ports whose message interface changes, in the component's port
    /// declaration order.
    pub changes: Vec<String>,
    /// Where the old version runs in shadow mode.
    pub shadow: ShadowPlacement,
}

/// `shadow = "samehost" | "otherhost"` of an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShadowPlacement {
    /// The shadow runs on its twin's host.
    Samehost,
    /// The shadow runs on another available host.
    Otherhost,
}

impl ShadowPlacement {
    /// The spelling in Deladas, JSON and XML: `samehost` or `otherhost`.
    pub fn as_str(self) -> &'static str {
        match self {
            ShadowPlacement::Samehost => "samehost",
            ShadowPlacement::Otherhost => "otherhost",
        }
    }

    /// Parses [`ShadowPlacement::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<ShadowPlacement> {
        match s {
            "samehost" => Some(ShadowPlacement::Samehost),
            "otherhost" => Some(ShadowPlacement::Otherhost),
            _ => None,
        }
    }
}

/// G_low, G_sdw and G_act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Groups {
    /// Instances of upgraded components: they run the new version.
    pub low: Vec<Member>,
    /// One shadow (the old version) per G_low instance.
    pub shadow: Vec<ShadowMember>,
    /// Every other instance.
    pub active: Vec<Member>,
}

/// A G_low or G_act member: an instance of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Instance id, as in the DDD.
    pub instance: String,
    /// The instance's component.
    pub component: String,
    /// Code of the version it runs: the upgrade's `code` for G_low, the
    /// component's own `code` for G_act.
    pub version: String,
    /// The host it runs on, as in the DDD.
    pub host: String,
}

/// A G_sdw member: the old version of a G_low instance, id `<instance>~shadow`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowMember {
    /// `<instance>~shadow`.
    pub instance: String,
    /// The G_low instance it shadows (its twin).
    pub shadows: String,
    /// The twin's component.
    pub component: String,
    /// The old version's code (the component's own `code`).
    pub version: String,
    /// The twin's host (`samehost`) or another available host (`otherhost`).
    pub host: String,
}

/// A channel crossing the cluster boundary (its ports are unchanged ones):
/// the messages on it are the ones the shadows would exchange with G_act.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundaryChannel {
    /// Channel id, as in the DDD.
    pub channel: String,
    /// The G_low end's instance.
    pub low: String,
    /// The G_act end's instance.
    pub active: String,
    /// The G_low end's port.
    pub low_port: String,
    /// The G_low end's index on a variadic port (`cin[0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_index: Option<u32>,
    /// The G_act end's port.
    pub active_port: String,
    /// The G_act end's index on a variadic port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_index: Option<u32>,
}

/// A process's role in the MDCD protocol (defined with the runtime, in the
/// `mdcd-runtime` crate, so that an application embeds it alone).
pub use mdcd_runtime::Role;

/// What one process's runtime needs (figures 2–4 of the paper), so that it
/// never recomputes the groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    /// The process: an instance id, or a shadow's `<instance>~shadow`.
    pub instance: String,
    /// Its group: the state machine (figure 2, 3 or 4 of the paper) it runs.
    pub role: Role,
    /// The processes it tells about each bump of its group's shared message
    /// counter: for G_low, the other G_low processes (`int_mSN_Glow`); for
    /// G_sdw, the other shadows (`int_mSN_Gsdw`); empty for G_act.
    pub counter_peers: Vec<String>,
    /// The processes it sends "passed AT" notifications to: for G_low, every
    /// G_act and G_sdw process; for G_act, the other G_act processes and
    /// every G_sdw process; empty for G_sdw (shadows never run the AT).
    pub notify: Vec<String>,
    /// Its shadow (G_low), or the instance it shadows (G_sdw); empty for G_act.
    pub shadow_peers: Vec<String>,
    /// The ports of its component declared `external` (they talk to the world
    /// outside the deployment): its output there is external output, subject
    /// to the acceptance test (G_low, G_act) or logged and suppressed (G_sdw).
    /// In the component's port declaration order.
    pub external_ports: Vec<String>,
}

/// A problem found while reading a role document: what is wrong and, where
/// the input has positions, where.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleDocError {
    /// What is wrong, naming the element or field.
    pub message: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The byte range in the text, when known.
    pub span: Option<Range<usize>>,
}

impl RoleDocError {
    /// An error at `span` of `text`, computing its line.
    pub(crate) fn at(text: &str, span: Range<usize>, message: String) -> RoleDocError {
        let start = span.start.min(text.len());
        let line = 1 + text.as_bytes()[..start].iter().filter(|&&b| b == b'\n').count();
        RoleDocError { message, line: Some(line), span: Some(span) }
    }

    /// An error without a position.
    pub(crate) fn plain(message: String) -> RoleDocError {
        RoleDocError { message, line: None, span: None }
    }
}

impl fmt::Display for RoleDocError {
    /// `line N: message`, or the message alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for RoleDocError {}

/// Where in a [`RoleDocument`] a [`RoleDocument::validate`] problem is, so
/// that a reader can point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place {
    /// The document as a whole.
    Document,
    /// `upgrades[i]`.
    Upgrade(usize),
    /// `groups.low[i]`.
    Low(usize),
    /// `groups.shadow[i]`.
    Shadow(usize),
    /// `groups.active[i]`.
    Active(usize),
    /// `boundary[i]`.
    Boundary(usize),
    /// `processes[i]`.
    Process(usize),
}

impl fmt::Display for Place {
    /// The JSON path: `groups.low[2]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Document => f.write_str("the document"),
            Place::Upgrade(i) => write!(f, "upgrades[{i}]"),
            Place::Low(i) => write!(f, "groups.low[{i}]"),
            Place::Shadow(i) => write!(f, "groups.shadow[{i}]"),
            Place::Active(i) => write!(f, "groups.active[{i}]"),
            Place::Boundary(i) => write!(f, "boundary[{i}]"),
            Place::Process(i) => write!(f, "processes[{i}]"),
        }
    }
}

impl RoleDocument {
    /// Writes the document as pretty-printed JSON (keys in the order of the
    /// struct fields, a final newline): the same document gives the same text.
    pub fn to_json(&self) -> String {
        // Serializing plain structs and strings cannot fail; fall back to an
        // empty object rather than panic.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| String::from("{}"));
        s.push('\n');
        s
    }

    /// Reads a JSON role document and checks it ([`RoleDocument::validate`]).
    /// Unknown or missing fields, wrong types and bad role names are errors
    /// with their line.
    pub fn from_json(text: &str) -> Result<RoleDocument, Vec<RoleDocError>> {
        let doc: RoleDocument = serde_json::from_str(text).map_err(|e| {
            let line = e.line();
            let message = format!("not a role document: {e}");
            if line == 0 {
                vec![RoleDocError::plain(message)]
            } else {
                let start = line_start(text, line) + e.column().saturating_sub(1);
                let start = start.min(text.len());
                vec![RoleDocError { message, line: Some(line), span: Some(start..start) }]
            }
        })?;
        let problems = doc.validate();
        if problems.is_empty() {
            Ok(doc)
        } else {
            Err(problems.into_iter().map(|(place, m)| RoleDocError::plain(format!("{place}: {m}"))).collect())
        }
    }

    /// Writes the document as XML (`schema/roles.xsd`).
    pub fn to_xml(&self) -> String {
        super::xml::to_xml(self)
    }

    /// Reads an XML role document and checks it ([`RoleDocument::validate`]);
    /// every problem points at its element.
    pub fn from_xml(text: &str) -> Result<RoleDocument, Vec<RoleDocError>> {
        super::xml::from_xml(text)
    }

    /// Checks what serde and the XML reader cannot: the format version; ids
    /// unique across the groups and not empty; one shadow per G_low member,
    /// named `<twin>~shadow`; boundary channels joining a G_low and a G_act
    /// member; exactly one process per member, with its group's role; peers
    /// that are known processes, neither the process itself nor listed twice;
    /// upgrades of distinct components, covering every G_low member's
    /// component and no G_act member's. Returns every problem with its place.
    pub fn validate(&self) -> Vec<(Place, String)> {
        use std::collections::{HashMap, HashSet};
        let mut out = Vec::new();
        if self.format != FORMAT {
            out.push((
                Place::Document,
                format!("unsupported format {}; this reader reads format {FORMAT}", self.format),
            ));
        }
        let mut upgraded: HashSet<&str> = HashSet::new();
        for (i, u) in self.upgrades.iter().enumerate() {
            if u.component.is_empty() {
                out.push((Place::Upgrade(i), "the component must not be empty".into()));
            }
            if !upgraded.insert(&u.component) {
                out.push((Place::Upgrade(i), format!("component `{}` is upgraded twice", u.component)));
            }
            let mut seen = HashSet::new();
            for p in &u.changes {
                if !seen.insert(p) {
                    out.push((Place::Upgrade(i), format!("port `{p}` is listed twice in changes")));
                }
            }
        }
        // Every member, with its role and place.
        let mut role_of: HashMap<&str, Role> = HashMap::new();
        let mut members: Vec<(&str, Role, Place)> = Vec::new();
        members
            .extend(self.groups.low.iter().enumerate().map(|(i, m)| (m.instance.as_str(), Role::Low, Place::Low(i))));
        members.extend(
            self.groups.shadow.iter().enumerate().map(|(i, m)| (m.instance.as_str(), Role::Shadow, Place::Shadow(i))),
        );
        members.extend(
            self.groups.active.iter().enumerate().map(|(i, m)| (m.instance.as_str(), Role::Active, Place::Active(i))),
        );
        for &(id, role, place) in &members {
            if id.is_empty() {
                out.push((place, "the instance id must not be empty".into()));
            } else if role_of.insert(id, role).is_some() {
                out.push((place, format!("`{id}` is listed more than once in the groups")));
            }
        }
        for (i, m) in self.groups.low.iter().enumerate() {
            if m.host.is_empty() {
                out.push((Place::Low(i), "the host must not be empty".into()));
            }
            if !upgraded.contains(m.component.as_str()) {
                out.push((Place::Low(i), format!("`{}` is in G_low but `{}` has no upgrade", m.instance, m.component)));
            }
        }
        for (i, m) in self.groups.active.iter().enumerate() {
            if m.host.is_empty() {
                out.push((Place::Active(i), "the host must not be empty".into()));
            }
            if upgraded.contains(m.component.as_str()) {
                out.push((Place::Active(i), format!("`{}` is in G_act but `{}` is upgraded", m.instance, m.component)));
            }
        }
        let mut shadowed: HashSet<&str> = HashSet::new();
        for (i, s) in self.groups.shadow.iter().enumerate() {
            if s.host.is_empty() {
                out.push((Place::Shadow(i), "the host must not be empty".into()));
            }
            if role_of.get(s.shadows.as_str()) != Some(&Role::Low) {
                out.push((Place::Shadow(i), format!("it shadows `{}`, which is not a G_low member", s.shadows)));
            } else if !shadowed.insert(&s.shadows) {
                out.push((Place::Shadow(i), format!("`{}` has more than one shadow", s.shadows)));
            }
            if s.instance != format!("{}{SHADOW_SUFFIX}", s.shadows) {
                out.push((
                    Place::Shadow(i),
                    format!("the shadow of `{}` must be called `{}{SHADOW_SUFFIX}`", s.shadows, s.shadows),
                ));
            }
        }
        for (i, m) in self.groups.low.iter().enumerate() {
            if !shadowed.contains(m.instance.as_str()) {
                out.push((Place::Low(i), format!("`{}` has no shadow in groups.shadow", m.instance)));
            }
        }
        for (i, b) in self.boundary.iter().enumerate() {
            if b.channel.is_empty() {
                out.push((Place::Boundary(i), "the channel id must not be empty".into()));
            }
            if role_of.get(b.low.as_str()) != Some(&Role::Low) {
                out.push((Place::Boundary(i), format!("its low end `{}` is not a G_low member", b.low)));
            }
            if role_of.get(b.active.as_str()) != Some(&Role::Active) {
                out.push((Place::Boundary(i), format!("its active end `{}` is not a G_act member", b.active)));
            }
        }
        let mut has_process: HashSet<&str> = HashSet::new();
        for (i, p) in self.processes.iter().enumerate() {
            let place = Place::Process(i);
            match role_of.get(p.instance.as_str()) {
                None => out.push((place, format!("`{}` is not a member of any group", p.instance))),
                Some(&r) if r != p.role => out.push((
                    place,
                    format!("`{}` has role {} but is in the {} group", p.instance, p.role.as_str(), r.as_str()),
                )),
                Some(_) => {}
            }
            if !has_process.insert(&p.instance) {
                out.push((place, format!("`{}` has more than one process", p.instance)));
            }
            for (field, list) in
                [("counter_peers", &p.counter_peers), ("notify", &p.notify), ("shadow_peers", &p.shadow_peers)]
            {
                let mut seen = HashSet::new();
                for peer in list {
                    if peer == &p.instance {
                        out.push((place, format!("{field} lists the process itself")));
                    } else if !role_of.contains_key(peer.as_str()) {
                        out.push((place, format!("{field} names `{peer}`, which is not a process")));
                    } else if !seen.insert(peer) {
                        out.push((place, format!("{field} lists `{peer}` twice")));
                    }
                }
            }
        }
        for &(id, _, place) in &members {
            if !id.is_empty() && !has_process.contains(id) {
                out.push((place, format!("`{id}` has no entry in processes")));
            }
        }
        out
    }
}

/// The byte offset where 1-based `line` starts.
fn line_start(text: &str, line: usize) -> usize {
    if line <= 1 {
        return 0;
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1).unwrap_or(text.len())
}
