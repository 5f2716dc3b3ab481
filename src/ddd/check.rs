//! The configuration rules a read DDD must meet (`language.md` §6 and
//! `ddd.md`): references resolve, instance ids follow the identity rule,
//! channels join two different instances on declared, non-external ports,
//! indices exactly on variadic ports and numbered 0..n-1, port capacities,
//! channel directions, one channel per pair of instance ports, and the
//! `maxperhost` / `maxinstances` bounds.
//!
//! Runs after [`super::read`] on what it could read; parts marked unsound
//! there are skipped so that one mistake gives one error.

use super::model::{instance_suffix, Deployment, Direction, End, Port};
use super::read::{Item, Meta};
use super::DddError;
use std::collections::HashMap;
use std::ops::Range;

/// Pushes an error for every rule the deployment breaks.
pub(crate) fn check(text: &str, d: &Deployment, meta: &Meta, errs: &mut Vec<DddError>) {
    let mut c = Checker {
        text,
        d,
        meta,
        errs,
        hosts: first_index(d.hosts.iter().map(|h| h.id.as_str())),
        components: first_index(d.components.iter().map(|c| c.name.as_str())),
        instances: first_index(d.instances.iter().map(|i| i.id.as_str())),
    };
    c.instances();
    c.channels();
}

fn first_index<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for (i, n) in names.enumerate() {
        m.entry(n).or_insert(i);
    }
    m
}

struct Checker<'a> {
    text: &'a str,
    d: &'a Deployment,
    meta: &'a Meta,
    errs: &'a mut Vec<DddError>,
    hosts: HashMap<&'a str, usize>,
    components: HashMap<&'a str, usize>,
    instances: HashMap<&'a str, usize>,
}

/// An instance port: (index in `d.instances`, port name).
type PortKey<'a> = (usize, &'a str);

/// A channel end whose instance and port were found.
struct Resolved<'a> {
    /// Index in `d.instances`.
    instance: usize,
    /// Index in `d.components`.
    component: usize,
    port: &'a Port,
    /// The port declaration read cleanly.
    port_sound: bool,
}

impl<'a> Checker<'a> {
    fn err(&mut self, span: Range<usize>, message: String) {
        self.errs.push(DddError::new(self.text, span, message));
    }

    fn instances(&mut self) {
        let d = self.d;
        let mut per_host: HashMap<(usize, usize), u32> = HashMap::new();
        let mut per_component: HashMap<usize, u32> = HashMap::new();
        for (i, inst) in d.instances.iter().enumerate() {
            let Some(item) = self.meta.instances.get(i) else {
                continue;
            };
            let comp = self.components.get(inst.component.as_str()).copied();
            let host = self.hosts.get(inst.host.as_str()).copied();
            if comp.is_none() && !inst.component.is_empty() {
                self.err(
                    item.attr_span("component"),
                    format!("{}: component \"{}\" is not declared in <components>", item.desc, inst.component),
                );
            }
            if host.is_none() && !inst.host.is_empty() {
                self.err(
                    item.attr_span("host"),
                    format!("{}: host \"{}\" is not declared in <hosts>", item.desc, inst.host),
                );
            }
            let (Some(comp), Some(host)) = (comp, host) else {
                continue;
            };
            if item.sound
                && instance_suffix(&inst.id, &inst.component, &inst.host).is_none()
                && !is_instance_name(&inst.id)
            {
                self.err(
                    item.attr_span("id"),
                    format!(
                        "{}: an instance of {c} on {h} must have id \"{c}@{h}\" or \"{c}@{h}#k\" with k >= 1",
                        item.desc,
                        c = inst.component,
                        h = inst.host
                    ),
                );
            }
            let component = &d.components[comp];
            if !self.meta.components.get(comp).is_some_and(|m| m.sound) {
                continue;
            }
            let on_host = per_host.entry((comp, host)).or_insert(0);
            *on_host += 1;
            if let Some(max) = component.maxperhost {
                if *on_host == max.saturating_add(1) {
                    let n = *on_host;
                    self.err(
                        item.span.clone(),
                        format!(
                            "{}: host {} has {n} instances of {}, more than its maxperhost=\"{max}\"",
                            item.desc, inst.host, component.name
                        ),
                    );
                }
            }
            let total = per_component.entry(comp).or_insert(0);
            *total += 1;
            if let Some(max) = component.maxinstances {
                if *total == max.saturating_add(1) {
                    let n = *total;
                    self.err(
                        item.span.clone(),
                        format!(
                            "{}: the deployment has {n} instances of {}, more than its maxinstances=\"{max}\"",
                            item.desc, component.name
                        ),
                    );
                }
            }
        }
    }

    /// Finds the instance and port of a channel end, reporting dangling
    /// references.
    fn resolve(&mut self, end: &End, item: &Item) -> Option<Resolved<'a>> {
        if end.instance.is_empty() {
            return None;
        }
        let d = self.d;
        let Some(&instance) = self.instances.get(end.instance.as_str()) else {
            self.err(
                item.attr_span("instance"),
                format!("{}: instance \"{}\" is not declared in <instances>", item.desc, end.instance),
            );
            return None;
        };
        let inst = &d.instances[instance];
        let &component = self.components.get(inst.component.as_str())?;
        if end.port.is_empty() {
            return None;
        }
        let comp = &d.components[component];
        let Some(p) = comp.ports.iter().position(|p| p.name == end.port) else {
            let known: Vec<&str> = comp.ports.iter().map(|p| p.name.as_str()).collect();
            let known = if known.is_empty() {
                "it declares no ports".to_string()
            } else {
                format!("its ports are {}", known.join(", "))
            };
            self.err(
                item.attr_span("port"),
                format!(
                    "{}: component {} of instance {} has no port \"{}\"; {known}",
                    item.desc, comp.name, inst.id, end.port
                ),
            );
            return None;
        };
        let port_sound = self.meta.ports.get(component).and_then(|ps| ps.get(p)).is_some_and(|m| m.sound);
        Some(Resolved { instance, component, port: &comp.ports[p], port_sound })
    }

    fn channels(&mut self) {
        let d = self.d;
        // (instance, port) -> ends attached, in document order:
        // (channel, 0 for from / 1 for to).
        let mut attached: HashMap<PortKey<'_>, Vec<(usize, usize)>> = HashMap::new();
        let mut attached_order: Vec<PortKey<'_>> = Vec::new();
        // Unordered pair of instance ports -> first channel joining them.
        let mut pairs: HashMap<(PortKey<'_>, PortKey<'_>), usize> = HashMap::new();

        for (ci, ch) in d.channels.iter().enumerate() {
            let Some(cm) = self.meta.channels.get(ci) else {
                continue;
            };
            let ends = [(&ch.from, &cm.from), (&ch.to, &cm.to)];
            let mut resolved: [Option<Resolved<'a>>; 2] = [None, None];
            for (k, (end, item)) in ends.iter().enumerate() {
                let Some(r) = self.resolve(end, item) else {
                    continue;
                };
                if r.port_sound {
                    self.end_rules(end, item, &r);
                }
                resolved[k] = Some(r);
            }

            if !ch.from.instance.is_empty() && ch.from.instance == ch.to.instance {
                self.err(
                    cm.item.span.clone(),
                    format!(
                        "{}: joins instance {} to itself; a channel joins two different instances",
                        cm.item.desc, ch.from.instance
                    ),
                );
                // Its ports and direction would only repeat the mistake.
                continue;
            }

            let external = |r: &Resolved<'_>| r.port.direction == Some(Direction::External);
            for (k, r) in resolved.iter().enumerate() {
                let Some(r) = r else {
                    continue;
                };
                if !r.port_sound || !ends[k].1.sound || external(r) {
                    continue;
                }
                let key = (r.instance, r.port.name.as_str());
                let list = attached.entry(key).or_default();
                if list.is_empty() {
                    attached_order.push(key);
                }
                list.push((ci, k));
            }

            let [Some(rf), Some(rt)] = &resolved else {
                continue;
            };
            if external(rf) || external(rt) {
                continue;
            }
            if cm.item.sound && rf.port_sound && rt.port_sound {
                self.direction_rules(ch.directed, &ch.from, &ch.to, rf, rt, &cm.item);
            }
            let a = (rf.instance, rf.port.name.as_str());
            let b = (rt.instance, rt.port.name.as_str());
            let pair = if a <= b { (a, b) } else { (b, a) };
            match pairs.get(&pair) {
                Some(&first) => {
                    let first_id = &d.channels[first].id;
                    self.err(
                        cm.item.span.clone(),
                        format!(
                            "{}: joins the same ports as <channel id=\"{first_id}\"> ({}.{} and {}.{}); two instance ports are joined by at most one channel",
                            cm.item.desc, ch.from.instance, ch.from.port, ch.to.instance, ch.to.port
                        ),
                    );
                }
                None => {
                    pairs.insert(pair, ci);
                }
            }
        }

        for key in attached_order {
            let Some(list) = attached.get(&key) else {
                continue;
            };
            self.port_rules(key.0, key.1, list);
        }
    }

    /// External ports and the presence of `index`.
    fn end_rules(&mut self, end: &End, item: &Item, r: &Resolved<'a>) {
        let comp = &self.d.components[r.component].name;
        let port = r.port;
        if port.direction == Some(Direction::External) {
            self.err(
                item.attr_span("port"),
                format!(
                    "{}: port {comp}.{} is external; no channel may attach to an external port",
                    item.desc, port.name
                ),
            );
            return;
        }
        if !item.sound {
            return;
        }
        match (port.variadic, end.index) {
            (true, None) => self.err(
                item.span.clone(),
                format!(
                    "{}: missing index; port {comp}.{} is variadic, so each of its channels has an index",
                    item.desc, port.name
                ),
            ),
            (false, Some(i)) => self.err(
                item.attr_span("index"),
                format!("{}: index=\"{i}\" on port {comp}.{}, which is not variadic", item.desc, port.name),
            ),
            _ => {}
        }
    }

    fn direction_rules(
        &mut self,
        directed: bool,
        from: &End,
        to: &End,
        rf: &Resolved<'_>,
        rt: &Resolved<'_>,
        item: &Item,
    ) {
        let dir = |p: &Port| p.direction.map_or("bidirectional", Direction::as_str);
        let (fd, td) = (rf.port.direction, rt.port.direction);
        let ends = format!(
            "{}.{} is {} and {}.{} is {}",
            from.instance,
            from.port,
            dir(rf.port),
            to.instance,
            to.port,
            dir(rt.port)
        );
        match (fd, td) {
            (Some(Direction::Output), Some(Direction::Input)) => {
                if !directed {
                    self.err(
                        item.attr_span("directed"),
                        format!(
                            "{}: directed=\"false\" but both ports declare directions ({ends}); such a channel is directed=\"true\"",
                            item.desc
                        ),
                    );
                }
            }
            (Some(_), Some(_)) => self.err(
                item.span.clone(),
                format!(
                    "{}: {ends}; a channel between ports with directions goes from an output port (<from>) to an input port (<to>)",
                    item.desc
                ),
            ),
            _ => {
                if directed {
                    self.err(
                        item.attr_span("directed"),
                        format!(
                            "{}: directed=\"true\" but {ends}; a directed channel goes from an output port (<from>) to an input port (<to>)",
                            item.desc
                        ),
                    );
                }
            }
        }
    }

    /// Capacity and index numbering of one instance port.
    fn port_rules(&mut self, instance: usize, port_name: &str, list: &[(usize, usize)]) {
        let d = self.d;
        let inst = &d.instances[instance];
        let Some(port) = d.components.iter().find(|c| c.name == inst.component).and_then(|c| c.port(port_name)) else {
            return;
        };
        let end_of = |&(ci, k): &(usize, usize)| -> Option<(&End, &Item, &str)> {
            let ch = d.channels.get(ci)?;
            let cm = self.meta.channels.get(ci)?;
            Some(if k == 0 { (&ch.from, &cm.from, ch.id.as_str()) } else { (&ch.to, &cm.to, ch.id.as_str()) })
        };
        let ends: Vec<(&End, &Item, &str)> = list.iter().filter_map(end_of).collect();
        let name = format!("{}.{}", inst.id, port.name);
        let ids = || ends.iter().map(|e| e.2).collect::<Vec<_>>().join(", ");

        if !port.variadic {
            if let Some(second) = ends.get(1) {
                let msg = format!(
                    "{}: port {name} is not variadic and holds at most one channel, but channels {} attach to it",
                    second.1.desc,
                    ids()
                );
                self.err(second.1.span.clone(), msg);
            }
            return;
        }

        if let Some(max) = port.max {
            if let Some(over) = ends.get(max as usize) {
                let msg = format!(
                    "{}: port {name} declares max=\"{max}\" but has {} channels ({})",
                    over.1.desc,
                    ends.len(),
                    ids()
                );
                self.err(over.1.span.clone(), msg);
            }
        }

        let mut first_with: HashMap<u32, &str> = HashMap::new();
        let mut top: Option<(u32, &Item)> = None;
        let mut dup_errors = Vec::new();
        for (end, item, id) in &ends {
            let Some(i) = end.index else {
                continue;
            };
            match first_with.get(&i) {
                Some(first) => dup_errors.push((
                    item.attr_span("index"),
                    format!("{}: index {i} of port {name} is already used by <channel id=\"{first}\">", item.desc),
                )),
                None => {
                    first_with.insert(i, id);
                }
            }
            if top.is_none_or(|(t, _)| i > t) {
                top = Some((i, item));
            }
        }
        for (span, msg) in dup_errors {
            self.err(span, msg);
        }
        if let Some((max_index, item)) = top {
            let distinct = first_with.len() as u64;
            if u64::from(max_index) + 1 != distinct {
                let mut present: Vec<u32> = first_with.keys().copied().collect();
                present.sort_unstable();
                let missing: Vec<String> =
                    (0..max_index).filter(|i| !first_with.contains_key(i)).take(8).map(|i| i.to_string()).collect();
                let present: Vec<String> = present.iter().take(8).map(|i| i.to_string()).collect();
                let more = |n: usize, shown: usize| if n > shown { ", …" } else { "" };
                let msg = format!(
                    "{}: port {name} has channel indices {}{} but not {}{}; a variadic port's channels are numbered 0, 1, 2, … with no gaps",
                    item.desc,
                    present.join(", "),
                    more(first_with.len(), present.len()),
                    missing.join(", "),
                    more(max_index as usize + 1 - first_with.len(), missing.len()),
                );
                self.err(item.attr_span("index"), msg);
            }
        }
    }
}

/// Whether an instance id is the name of a named instance (`vm1`,
/// docs/reference/instances.md): a Deladas identifier.
fn is_instance_name(id: &str) -> bool {
    let mut cs = id.chars();
    cs.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
