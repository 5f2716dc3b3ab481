//! The DDD data model: the configuration a solve produces (hosts, components,
//! instances, channels) as plain Rust values, plus the canonical ordering that
//! makes the written DDD byte-identical for the same configuration.
//!
//! The serde derives give the JSON rendering (`--format json`), which mirrors
//! the XML: the same element names, the same attribute names (`goal-sha256`,
//! `type`/`value` on attributes), optional XML attributes left out when absent.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// A complete configuration as written in a DDD: everything needed to enact
/// it, without the goal file that produced it.
///
/// The vectors are written in their order; call [`Deployment::canonicalize`]
/// before writing to get the deterministic order that `ddd.md` requires.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The goal file the DDD was solved from, as given on the command line
    /// (XML attribute `goal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Lower-case hex SHA-256 of the goal file's bytes (XML attribute
    /// `goal-sha256`).
    #[serde(rename = "goal-sha256", default, skip_serializing_if = "Option::is_none")]
    pub goal_sha256: Option<String>,
    /// The tool that wrote the DDD, e.g. `deladas 0.1.0`.
    pub generator: String,
    /// The available hosts, in declaration order.
    #[serde(default)]
    pub hosts: Vec<Host>,
    /// The component types that have instances or are declared in the goal,
    /// in declaration order.
    #[serde(default)]
    pub components: Vec<Component>,
    /// The component instances, each placed on one host.
    #[serde(default)]
    pub instances: Vec<Instance>,
    /// The channels joining instance ports.
    #[serde(default)]
    pub channels: Vec<Channel>,
}

/// An available host (`host h1 = host(ipaddress = "…")`), with its free-form
/// attributes in declaration order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Host {
    /// The host's name in the goal, e.g. `h1`.
    pub id: String,
    /// Free-form attributes (`ipaddress`, `zone`, `memory`, …).
    #[serde(default)]
    pub attrs: Vec<Attr>,
}

/// A free-form attribute of a host or component: `name = value`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attr {
    /// The attribute name, e.g. `ipaddress`.
    pub name: String,
    /// The typed value; in XML `type="string|int|bool" value="…"`, in JSON
    /// `"type": …, "value": …` next to `"name"`.
    #[serde(flatten)]
    pub value: AttrValue,
}

/// The value of a free-form attribute: a Deladas string, integer or boolean.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum AttrValue {
    /// A string value (`type="string"`).
    #[serde(rename = "string")]
    Str(String),
    /// An integer value (`type="int"`).
    #[serde(rename = "int")]
    Int(i64),
    /// A boolean value (`type="bool"`, `value="true|false"`).
    #[serde(rename = "bool")]
    Bool(bool),
}

/// A component type (`component Client(code = …, ports = {…})`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Component {
    /// The component's name, e.g. `Router`.
    pub name: String,
    /// Where the component's bundle lives (the `code`/`bundle` attribute).
    pub code: String,
    /// At most this many instances on one host, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxperhost: Option<u32>,
    /// At most this many instances in the whole deployment, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxinstances: Option<u32>,
    /// The other, free-form attributes, in declaration order.
    #[serde(default)]
    pub attrs: Vec<Attr>,
    /// The declared ports, in declaration order.
    #[serde(default)]
    pub ports: Vec<Port>,
}

/// A port declaration: `p`, `p[]`, `p[N]`, optionally `: input|output|external`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    /// The port's name, e.g. `cin`.
    pub name: String,
    /// `p[]` or `p[N]`: the port holds any number (or up to `max`) of
    /// channels, each with its own index. A non-variadic port holds at most one.
    #[serde(default, skip_serializing_if = "is_false")]
    pub variadic: bool,
    /// `N` of `p[N]`: at most this many channels (only on variadic ports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u32>,
    /// The declared direction; `None` means bidirectional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A port's declared direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// `: input` — receives messages from an output port.
    Input,
    /// `: output` — sends messages to an input port.
    Output,
    /// `: external` — talks to the world outside the deployment; no channel
    /// may attach to it.
    External,
}

/// A component instance placed on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    /// `Component@host`, or `Component@host#k` (k ≥ 1) when the component has
    /// several instances on the host; see [`instance_id`].
    pub id: String,
    /// The component type's name.
    pub component: String,
    /// The id of the host it runs on.
    pub host: String,
}

/// A channel joining one port of an instance to one port of a different
/// instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Channel {
    /// `c1`, `c2`, … after [`Deployment::canonicalize`].
    pub id: String,
    /// `true` when both ports declare directions; then `from` is the output
    /// end and `to` the input end. Otherwise the channel is bidirectional and
    /// the ends are in the order of the goal's first `connectsto` naming them.
    pub directed: bool,
    /// The first end (the output end of a directed channel).
    pub from: End,
    /// The second end (the input end of a directed channel).
    pub to: End,
}

/// One end of a channel: an instance port, with its index on variadic ports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct End {
    /// The instance id.
    pub instance: String,
    /// The port name (declared by the instance's component).
    pub port: String,
    /// The channel's index on a variadic port (`cin[0]`, `cin[1]`, …);
    /// `None` exactly on non-variadic ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// The id of an instance of `component` on `host`: `Component@host` when
/// `k` is `None` (the component's only instance on the host), otherwise
/// `Component@host#k` (k = 1, 2, …).
pub fn instance_id(component: &str, host: &str, k: Option<u32>) -> String {
    match k {
        None => format!("{component}@{host}"),
        Some(k) => format!("{component}@{host}#{k}"),
    }
}

/// Splits an instance id against its component and host: `Some(None)` for
/// `Component@host`, `Some(Some(k))` for `Component@host#k` with k ≥ 1 (no
/// leading zeros), `None` when the id does not have that shape.
pub fn instance_suffix(id: &str, component: &str, host: &str) -> Option<Option<u32>> {
    let rest = id.strip_prefix(component)?.strip_prefix('@')?.strip_prefix(host)?;
    if rest.is_empty() {
        return Some(None);
    }
    let digits = rest.strip_prefix('#')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u32>().ok().map(Some)
}

impl AttrValue {
    /// The XML `type` of the value: `string`, `int` or `bool`.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Str(_) => "string",
            AttrValue::Int(_) => "int",
            AttrValue::Bool(_) => "bool",
        }
    }

    /// The XML `value` text of the value (unescaped).
    pub fn value_text(&self) -> String {
        match self {
            AttrValue::Str(s) => s.clone(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Bool(b) => b.to_string(),
        }
    }
}

impl fmt::Display for AttrValue {
    /// Deladas syntax: strings quoted, integers and booleans bare.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Str(s) => write!(f, "{s:?}"),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Direction {
    /// The XML/Deladas spelling: `input`, `output` or `external`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
            Direction::External => "external",
        }
    }

    /// Parses the XML/Deladas spelling.
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "input" => Some(Direction::Input),
            "output" => Some(Direction::Output),
            "external" => Some(Direction::External),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for End {
    /// `Router@h3.cin[0]`, or `Client@h1.out` on a non-variadic port.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.instance, self.port)?;
        if let Some(i) = self.index {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

impl End {
    /// The port with its index, as in DOT edge labels: `cin[0]`, `out`.
    pub fn port_label(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.port),
            None => self.port.clone(),
        }
    }
}

impl Component {
    /// The declared port called `name`, if any.
    pub fn port(&self, name: &str) -> Option<&Port> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// The free-form attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl Host {
    /// The free-form attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }
}

impl Deployment {
    /// The host with this id, if available.
    pub fn host(&self, id: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.id == id)
    }

    /// The component type with this name, if present.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }

    /// The instance with this id, if present.
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// The channel with this id, if present.
    pub fn channel(&self, id: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.id == id)
    }

    /// The declaration of the port an end attaches to, if the end's instance
    /// and its component and port exist.
    pub fn end_port(&self, end: &End) -> Option<&Port> {
        let inst = self.instance(&end.instance)?;
        self.component(&inst.component)?.port(&end.port)
    }

    /// Puts the deployment in the canonical order of `ddd.md` ("Rules"):
    ///
    /// - hosts and components keep their order (declaration order);
    /// - instances by host (position in `hosts`), then component (position in
    ///   `components`), then id (`C@h` first, then `C@h#1`, `C@h#2`, … by
    ///   number, then any other id by text);
    /// - channels by `from` then `to`, each end compared by instance (position
    ///   in the sorted instances), then port (declaration position in the
    ///   instance's component), then index (none first);
    /// - channel ids are renumbered `c1`, `c2`, … in that order.
    ///
    /// Names missing from the lists (only in invalid deployments) sort after
    /// the known ones, by text, so the order is total and deterministic.
    /// The ends of a channel are never swapped.
    pub fn canonicalize(&mut self) {
        let host_pos: HashMap<&str, usize> = first_positions(self.hosts.iter().map(|h| &h.id[..]));
        let comp_pos: HashMap<&str, usize> = first_positions(self.components.iter().map(|c| &c.name[..]));
        let mut instances = std::mem::take(&mut self.instances);
        instances.sort_by(|a, b| {
            let ka = instance_key(a, &host_pos, &comp_pos);
            let kb = instance_key(b, &host_pos, &comp_pos);
            ka.cmp(&kb)
        });
        self.instances = instances;

        let inst_pos: HashMap<&str, usize> = first_positions(self.instances.iter().map(|i| &i.id[..]));
        let port_pos: HashMap<(&str, &str), usize> = {
            let mut m = HashMap::new();
            for inst in &self.instances {
                if let Some(c) = self.components.iter().find(|c| c.name == inst.component) {
                    for (i, p) in c.ports.iter().enumerate() {
                        m.entry((&inst.id[..], &p.name[..])).or_insert(i);
                    }
                }
            }
            m
        };
        let channels = std::mem::take(&mut self.channels);
        let mut order: Vec<usize> = (0..channels.len()).collect();
        order.sort_by(|&a, &b| {
            let (ca, cb) = (&channels[a], &channels[b]);
            let key = |e| end_key(e, &inst_pos, &port_pos);
            (key(&ca.from), key(&ca.to)).cmp(&(key(&cb.from), key(&cb.to)))
        });
        let mut slots: Vec<Option<Channel>> = channels.into_iter().map(Some).collect();
        self.channels = order.iter().filter_map(|&i| slots[i].take()).collect();
        for (i, c) in self.channels.iter_mut().enumerate() {
            c.id = format!("c{}", i + 1);
        }
    }

    /// Checks the deployment with the DDD reader's rules (see
    /// [`crate::ddd::from_xml`]) by writing it and reading it back. Error
    /// lines refer to the text of [`crate::ddd::to_xml`]`(self)`.
    pub fn check(&self) -> Result<(), Vec<crate::ddd::DddError>> {
        crate::ddd::from_xml(&crate::ddd::to_xml(self)).map(|_| ())
    }
}

fn first_positions<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for (i, n) in names.enumerate() {
        m.entry(n).or_insert(i);
    }
    m
}

/// A known position sorts before every unknown name; unknown names by text.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Rank<'a> {
    Known(usize),
    Unknown(&'a str),
}

fn rank(pos: Option<usize>, name: &str) -> Rank<'_> {
    match pos {
        Some(p) => Rank::Known(p),
        None => Rank::Unknown(name),
    }
}

fn end_key<'e>(
    e: &'e End,
    inst_pos: &HashMap<&str, usize>,
    port_pos: &HashMap<(&str, &str), usize>,
) -> (Rank<'e>, Rank<'e>, Option<u32>) {
    (
        rank(inst_pos.get(e.instance.as_str()).copied(), &e.instance),
        rank(port_pos.get(&(e.instance.as_str(), e.port.as_str())).copied(), &e.port),
        e.index,
    )
}

fn instance_key<'a>(
    i: &'a Instance,
    host_pos: &HashMap<&str, usize>,
    comp_pos: &HashMap<&str, usize>,
) -> (Rank<'a>, Rank<'a>, IdRank<'a>) {
    let id = match instance_suffix(&i.id, &i.component, &i.host) {
        Some(k) => IdRank::Numbered(k.unwrap_or(0)),
        None => IdRank::Other(&i.id),
    };
    (rank(host_pos.get(&i.host[..]).copied(), &i.host), rank(comp_pos.get(&i.component[..]).copied(), &i.component), id)
}

/// `C@h` (0) and `C@h#k` (k) by number, before ids of any other shape.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum IdRank<'a> {
    Numbered(u32),
    Other(&'a str),
}
