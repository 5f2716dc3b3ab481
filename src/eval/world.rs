//! A configuration bound to a checked goal's indices ([`World`]), built from
//! a DDD by [`bind`], and turned back into a DDD by [`World::to_deployment`].

use std::collections::{HashMap, HashSet};

use crate::check::ir::{self, CompId, HostId, PortId, Program, Value};
use crate::ddd::{self, AttrValue, Deployment};

/// A configuration in the terms of one [`Program`]: which of its hosts are
/// available, which instances run where, and which instance ports channels
/// join.
///
/// Indices are the program's ([`CompId`], [`HostId`], [`PortId`]); instances
/// and channels are numbered by their position here. [`bind`] builds a world
/// from a DDD and guarantees every index is in range; a hand-built world with
/// an index out of range is reported as an internal error by the evaluator,
/// never a panic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct World {
    /// The available hosts, in the goal's declaration order.
    pub hosts: Vec<HostId>,
    pub instances: Vec<Inst>,
    pub channels: Vec<Chan>,
}

/// A component instance placed on a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inst {
    pub comp: CompId,
    pub host: HostId,
    /// The instance id (`Router@h3`, `Router@h3#2`), used in messages.
    pub id: String,
}

/// A channel joining two instance ports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Chan {
    /// The DDD's channel id (`c4`); when empty, messages call the channel
    /// `c{position + 1}`.
    pub id: String,
    /// Followed only from `from` to `to` by `reachable`; an undirected
    /// channel is followed both ways.
    pub directed: bool,
    pub from: ChanEnd,
    pub to: ChanEnd,
}

/// One end of a channel: an instance (index in [`World::instances`]) and a
/// port of its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChanEnd {
    pub inst: usize,
    pub port: PortId,
    /// The index on a variadic port (`cin[2]`), as in the DDD.
    pub index: Option<u32>,
}

/// A part of a configuration that can be taken away: a channel, or an
/// instance together with its channels (indices into the [`World`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Channel(usize),
    Instance(usize),
}

impl World {
    /// The display name of channel `c`: its id, or `c{c + 1}` when it has none.
    pub fn channel_name(&self, c: usize) -> String {
        match self.channels.get(c) {
            Some(ch) if !ch.id.is_empty() => ch.id.clone(),
            _ => format!("c{}", c + 1),
        }
    }

    /// The world without `part`: without the channel, or without the
    /// instance and every channel attached to it (later instances move down
    /// one index).
    pub fn without(&self, part: Part) -> World {
        match part {
            Part::Channel(c) => {
                let channels = self.channels.iter().enumerate().filter(|(i, _)| *i != c).map(|(_, ch)| ch.clone());
                World { hosts: self.hosts.clone(), instances: self.instances.clone(), channels: channels.collect() }
            }
            Part::Instance(x) => {
                let shift = |i: usize| if i > x { i - 1 } else { i };
                let instances =
                    self.instances.iter().enumerate().filter(|(i, _)| *i != x).map(|(_, inst)| inst.clone()).collect();
                let channels = self
                    .channels
                    .iter()
                    .filter(|ch| ch.from.inst != x && ch.to.inst != x)
                    .map(|ch| {
                        let mut ch = ch.clone();
                        ch.from.inst = shift(ch.from.inst);
                        ch.to.inst = shift(ch.to.inst);
                        ch
                    })
                    .collect();
                World { hosts: self.hosts.clone(), instances, channels }
            }
        }
    }

    /// Every index in range for `program`; the first problem otherwise.
    pub(crate) fn check_indices(&self, program: &Program) -> Result<(), String> {
        for &h in &self.hosts {
            if h >= program.hosts.len() {
                return Err(format!("available host index {h} is out of range"));
            }
        }
        for inst in &self.instances {
            if inst.comp >= program.components.len() {
                return Err(format!("instance {}: component index {} is out of range", inst.id, inst.comp));
            }
            if inst.host >= program.hosts.len() {
                return Err(format!("instance {}: host index {} is out of range", inst.id, inst.host));
            }
        }
        for (c, ch) in self.channels.iter().enumerate() {
            for e in [&ch.from, &ch.to] {
                let Some(inst) = self.instances.get(e.inst) else {
                    return Err(format!("channel {}: instance index {} is out of range", self.channel_name(c), e.inst));
                };
                if e.port >= program.components[inst.comp].ports.len() {
                    return Err(format!("channel {}: port index {} is out of range", self.channel_name(c), e.port));
                }
            }
        }
        Ok(())
    }

    /// The configuration as a DDD: the available hosts with the goal's
    /// attributes, every component of the goal, the instances and channels
    /// in this world's order (call [`Deployment::canonicalize`] for the
    /// canonical order). Channels without an id get `c{position + 1}`.
    ///
    /// Indices must be in range (as [`bind`] and [`crate::eval::brute`]
    /// produce them); out-of-range references are written as `?`.
    pub fn to_deployment(&self, program: &Program) -> Deployment {
        let host_name = |h: HostId| program.hosts.get(h).map(|h| h.name.clone()).unwrap_or_else(|| "?".into());
        let hosts = self
            .hosts
            .iter()
            .map(|&h| match program.hosts.get(h) {
                Some(host) => ddd::goal::host(host),
                None => ddd::Host { id: host_name(h), attrs: vec![] },
            })
            .collect();
        let components = program.components.iter().filter(|c| c.named.is_none()).map(ddd::goal::component).collect();
        let instances = self
            .instances
            .iter()
            .map(|i| ddd::Instance {
                id: i.id.clone(),
                component: program.ddd_component_name(i.comp).to_string(),
                host: host_name(i.host),
            })
            .collect();
        let end = |e: &ChanEnd| {
            let inst = self.instances.get(e.inst);
            let port = inst.and_then(|i| program.components.get(i.comp)).and_then(|c| c.ports.get(e.port));
            ddd::End {
                instance: inst.map(|i| i.id.clone()).unwrap_or_else(|| "?".into()),
                port: port.map(|p| p.name.clone()).unwrap_or_else(|| "?".into()),
                index: e.index,
            }
        };
        let channels = self
            .channels
            .iter()
            .enumerate()
            .map(|(c, ch)| ddd::Channel {
                id: self.channel_name(c),
                directed: ch.directed,
                from: end(&ch.from),
                to: end(&ch.to),
            })
            .collect();
        Deployment {
            goal: None,
            goal_sha256: None,
            generator: format!("deladas {} (eval)", env!("CARGO_PKG_VERSION")),
            hosts,
            components,
            instances,
            channels,
        }
    }
}

fn value_of_ddd(v: &AttrValue) -> Value {
    match v {
        AttrValue::Int(n) => Value::Int(*n),
        AttrValue::Str(s) => Value::Str(s.clone()),
        AttrValue::Bool(b) => Value::Bool(*b),
    }
}

/// A port declaration in Deladas syntax: `p`, `p[]`, `p[4]: output`.
pub(crate) fn port_decl(name: &str, variadic: bool, capacity: Option<u32>, direction: ir::Direction) -> String {
    let mut s = name.to_string();
    if variadic {
        match capacity {
            Some(n) => s.push_str(&format!("[{n}]")),
            None => s.push_str("[]"),
        }
    }
    if direction != ir::Direction::Both {
        s.push_str(": ");
        s.push_str(direction.word());
    }
    s
}

fn ddd_direction(d: Option<ddd::Direction>) -> ir::Direction {
    match d {
        None => ir::Direction::Both,
        Some(ddd::Direction::Input) => ir::Direction::Input,
        Some(ddd::Direction::Output) => ir::Direction::Output,
        Some(ddd::Direction::External) => ir::Direction::External,
    }
}

/// Compares two attribute lists (`what` names their owner) and reports every
/// difference: missing, extra, or different values. Order does not matter.
fn compare_attrs(what: &str, goal: &[(String, Value)], ddd: &[ddd::Attr], errors: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for a in ddd {
        if !seen.insert(a.name.as_str()) {
            errors.push(format!("{what}: attribute `{}` appears twice in the DDD", a.name));
            continue;
        }
        let dv = value_of_ddd(&a.value);
        match goal.iter().find(|(n, _)| *n == a.name) {
            None => errors.push(format!("{what}: attribute `{}` = {dv} is not declared in the goal", a.name)),
            Some((_, gv)) if *gv != dv => {
                errors.push(format!("{what}: attribute `{}` is {dv} in the DDD but {gv} in the goal", a.name))
            }
            Some(_) => {}
        }
    }
    for (n, v) in goal {
        if !seen.contains(n.as_str()) {
            errors.push(format!("{what}: attribute `{n}` = {v} of the goal is missing from the DDD"));
        }
    }
}

/// Binds a DDD to a checked goal: every host, component, instance and
/// channel of the DDD is looked up in the program.
///
/// Every mismatch between goal and DDD is one error message: a DDD host not
/// declared in the goal or with different attributes; a component unknown
/// to the goal or with a different code, bounds, attributes, ports or port
/// kinds; an instance of an unknown component, on an undeclared host, or
/// with a duplicate id; a channel end naming an unknown instance or port, or
/// with an index on a non-variadic port (or none on a variadic one); a
/// duplicate host, component or channel id.
///
/// Not errors here, but [`crate::eval::structural_violations`]: an instance
/// on a host that the goal declares but the DDD does not list as available,
/// and every rule of `language.md` §6 (port capacities, directions, bounds).
/// Goal components absent from the DDD are fine (they have no instances).
pub fn bind(program: &Program, d: &Deployment) -> Result<World, Vec<String>> {
    bind_placed(program, d).map_err(|errs| errs.into_iter().map(|(_, m)| m).collect())
}

/// The part of a DDD an error of [`bind_placed`] is about: an index into the
/// deployment's vectors (for a port: the component's, then the port's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DddPlace {
    Host(usize),
    Component(usize),
    Instance(usize),
    Channel(usize),
}

/// [`bind`], with the part of the DDD each error is about, so that a
/// diagnostic can point at its line.
pub fn bind_placed(program: &Program, d: &Deployment) -> Result<World, Vec<(DddPlace, String)>> {
    let mut errors = Vec::new();
    let mut places: Vec<DddPlace> = Vec::new();

    // Hosts.
    let mut hosts_seen: HashSet<HostId> = HashSet::new();
    for (hi, h) in d.hosts.iter().enumerate() {
        places.resize(errors.len(), DddPlace::Host(hi.saturating_sub(1)));
        match program.host(&h.id) {
            None => errors.push(format!("host `{}` in the DDD is not declared in the goal", h.id)),
            Some(hid) => {
                if !hosts_seen.insert(hid) {
                    errors.push(format!("host `{}` appears twice in the DDD", h.id));
                    continue;
                }
                compare_attrs(&format!("host `{}`", h.id), &program.hosts[hid].attrs, &h.attrs, &mut errors);
            }
        }
    }
    places.resize(errors.len(), DddPlace::Host(d.hosts.len().saturating_sub(1)));
    let hosts: Vec<HostId> = (0..program.hosts.len()).filter(|h| hosts_seen.contains(h)).collect();

    // Components.
    let mut comps_seen: HashSet<CompId> = HashSet::new();
    for (ci, c) in d.components.iter().enumerate() {
        places.resize(errors.len(), DddPlace::Component(ci.saturating_sub(1)));
        let Some(cid) = program.component(&c.name) else {
            errors.push(format!("component `{}` in the DDD is not declared in the goal", c.name));
            continue;
        };
        if !comps_seen.insert(cid) {
            errors.push(format!("component `{}` appears twice in the DDD", c.name));
            continue;
        }
        let g = &program.components[cid];
        let what = format!("component `{}`", c.name);
        if g.code != c.code {
            errors.push(format!("{what}: code is {:?} in the DDD but {:?} in the goal", c.code, g.code));
        }
        let mph = c.maxperhost.unwrap_or(1);
        if mph != g.maxperhost {
            errors.push(format!("{what}: maxperhost is {mph} in the DDD but {} in the goal", g.maxperhost));
        }
        if c.maxinstances != g.maxinstances {
            let show = |m: Option<u32>| m.map(|n| n.to_string()).unwrap_or_else(|| "unbounded".into());
            errors.push(format!(
                "{what}: maxinstances is {} in the DDD but {} in the goal",
                show(c.maxinstances),
                show(g.maxinstances)
            ));
        }
        compare_attrs(&what, &g.attrs, &c.attrs, &mut errors);
        let mut ports_seen = HashSet::new();
        for p in &c.ports {
            if !ports_seen.insert(p.name.as_str()) {
                errors.push(format!("{what}: port `{}` appears twice in the DDD", p.name));
                continue;
            }
            if !p.variadic && p.max.is_some() {
                errors.push(format!("{what}: port `{}` has a maximum but is not variadic", p.name));
            }
            let ddd_decl =
                port_decl(&p.name, p.variadic, if p.variadic { p.max } else { Some(1) }, ddd_direction(p.direction));
            match g.port(&p.name) {
                None => errors.push(format!("{what}: port `{ddd_decl}` is not declared in the goal")),
                Some(pid) => {
                    let gp = &g.ports[pid];
                    let goal_decl = port_decl(&gp.name, gp.variadic, gp.capacity, gp.direction);
                    if goal_decl != ddd_decl {
                        errors.push(format!(
                            "{what}: port declared `{ddd_decl}` in the DDD but `{goal_decl}` in the goal"
                        ));
                    }
                }
            }
        }
        for gp in &g.ports {
            if !ports_seen.contains(gp.name.as_str()) {
                let decl = port_decl(&gp.name, gp.variadic, gp.capacity, gp.direction);
                errors.push(format!("{what}: port `{decl}` of the goal is missing from the DDD"));
            }
        }
    }

    places.resize(errors.len(), DddPlace::Component(d.components.len().saturating_sub(1)));

    // Instances.
    let mut instances = Vec::new();
    let mut inst_index: HashMap<&str, Option<usize>> = HashMap::new();
    for (ii, i) in d.instances.iter().enumerate() {
        places.resize(errors.len(), DddPlace::Instance(ii.saturating_sub(1)));
        let comp = program.instance_component(&i.id, &i.component);
        let host = program.host(&i.host);
        match comp {
            None => {
                errors.push(format!("instance `{}`: component `{}` is not declared in the goal", i.id, i.component))
            }
            Some(c) if !comps_seen.contains(&program.ddd_component(c)) => errors.push(format!(
                "instance `{}`: component `{}` is not listed in the DDD's <components>",
                i.id, i.component
            )),
            Some(_) => {}
        }
        if host.is_none() {
            errors.push(format!("instance `{}`: host `{}` is not declared in the goal", i.id, i.host));
        }
        if inst_index.contains_key(i.id.as_str()) {
            errors.push(format!("instance id `{}` appears twice in the DDD", i.id));
            continue;
        }
        match (comp, host) {
            (Some(comp), Some(host)) => {
                inst_index.insert(&i.id, Some(instances.len()));
                instances.push(Inst { comp, host, id: i.id.clone() });
            }
            _ => {
                // Already reported; channels naming it are not reported again.
                inst_index.insert(&i.id, None);
            }
        }
    }

    // Channels.
    let mut channels = Vec::new();
    places.resize(errors.len(), DddPlace::Instance(d.instances.len().saturating_sub(1)));
    let mut chan_ids = HashSet::new();
    for (chi, ch) in d.channels.iter().enumerate() {
        places.resize(errors.len(), DddPlace::Channel(chi.saturating_sub(1)));
        if !ch.id.is_empty() && !chan_ids.insert(ch.id.as_str()) {
            errors.push(format!("channel id `{}` appears twice in the DDD", ch.id));
        }
        let mut end = |e: &ddd::End, side: &str| -> Option<ChanEnd> {
            let what = format!("channel `{}`, `{side}` end", ch.id);
            let Some(slot) = inst_index.get(e.instance.as_str()) else {
                errors.push(format!("{what}: no instance `{}` in the DDD", e.instance));
                return None;
            };
            let inst = (*slot)?;
            let comp = &program.components[instances[inst].comp];
            let Some(port) = comp.port(&e.port) else {
                errors.push(format!("{what}: component `{}` has no port `{}` in the goal", comp.name, e.port));
                return None;
            };
            let variadic = comp.ports[port].variadic;
            match (variadic, e.index) {
                (true, None) => {
                    errors.push(format!("{what}: `{}.{}` is variadic but has no index", e.instance, e.port))
                }
                (false, Some(_)) => {
                    errors.push(format!("{what}: `{}.{}` is not variadic but has an index", e.instance, e.port))
                }
                _ => {}
            }
            Some(ChanEnd { inst, port, index: e.index })
        };
        let from = end(&ch.from, "from");
        let to = end(&ch.to, "to");
        if let (Some(from), Some(to)) = (from, to) {
            channels.push(Chan { id: ch.id.clone(), directed: ch.directed, from, to });
        }
    }

    places.resize(errors.len(), DddPlace::Channel(d.channels.len().saturating_sub(1)));
    if errors.is_empty() {
        Ok(World { hosts, instances, channels })
    } else {
        Err(places.into_iter().zip(errors).collect())
    }
}
