//! From a solver [`Solution`] to a DDD [`Deployment`]: instance ids
//! (`Component@host`, or `Component@host#k` when a host runs several),
//! channel ends in the order language.md §6 fixes, variadic indices numbered
//! from 0 per instance port.

use std::collections::{HashMap, HashSet};

use super::Solution;
use crate::check::ir::Program;
use crate::ddd::{self, Deployment};
use crate::lower::{Ground, SlotId};

/// Metadata written on the `<deployment>` element.
#[derive(Debug, Clone, Default)]
pub struct GoalInfo {
    /// The goal file's name (no directories).
    pub name: Option<String>,
    /// SHA-256 of the goal file's bytes, lower-case hex.
    pub sha256: Option<String>,
}

impl GoalInfo {
    /// The goal file's name (its last path component) and the SHA-256 of its text.
    pub fn of(path: &std::path::Path, text: &str) -> GoalInfo {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(text.as_bytes());
        GoalInfo {
            name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
            sha256: Some(digest.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }
}

/// The resources part of a DDD: available hosts and every declared component.
pub(crate) fn skeleton(program: &Program, hosts: &[usize], info: &GoalInfo) -> Deployment {
    Deployment {
        goal: info.name.clone(),
        goal_sha256: info.sha256.clone(),
        generator: format!("deladas {}", env!("CARGO_PKG_VERSION")),
        hosts: hosts.iter().map(|&h| ddd::goal::host(&program.hosts[h])).collect(),
        components: program.components.iter().filter(|c| c.named.is_none()).map(ddd::goal::component).collect(),
        instances: vec![],
        channels: vec![],
    }
}

/// Builds the canonical DDD of a solution.
pub(crate) fn to_deployment(program: &Program, g: &Ground, sol: &Solution, info: &GoalInfo) -> Deployment {
    to_deployment_with(program, &g.hosts, g, sol, info, &HashMap::new(), &HashSet::new())
}

/// [`to_deployment`] for a re-solved configuration: only `hosts` are listed
/// (those that are up), the slots in `fixed` keep the ids they had, and new
/// instances get ids that are neither fixed nor in `taken` (the old DDD's).
pub(crate) fn to_deployment_with(
    program: &Program,
    hosts: &[usize],
    g: &Ground,
    sol: &Solution,
    info: &GoalInfo,
    fixed: &HashMap<SlotId, String>,
    taken: &HashSet<String>,
) -> Deployment {
    let mut d = skeleton(program, hosts, info);
    // Instance ids: numbered per (component, host) in slot order.
    let mut per: HashMap<(usize, usize), Vec<SlotId>> = HashMap::new();
    for &s in &sol.slots {
        let slot = g.slots[s as usize];
        per.entry((slot.comp, slot.host)).or_default().push(s);
    }
    let mut used: HashSet<String> = taken.iter().cloned().chain(fixed.values().cloned()).collect();
    let mut ids: HashMap<SlotId, String> = HashMap::new();
    let mut groups: Vec<_> = per.into_iter().collect();
    groups.sort();
    for ((c, h), mut slots) in groups {
        slots.sort();
        let (cn, hn) = (&program.components[c].name, &program.hosts[h].name);
        let single = slots.len() == 1;
        for s in slots {
            if let Some(id) = fixed.get(&s) {
                ids.insert(s, id.clone());
                continue;
            }
            if program.components[c].named.is_some() {
                // A named instance is written by its name (docs/reference/instances.md).
                used.insert(cn.clone());
                ids.insert(s, cn.clone());
                continue;
            }
            let plain = ddd::instance_id(cn, hn, None);
            let id = if single && !used.contains(&plain) {
                plain
            } else {
                (1..).map(|k| ddd::instance_id(cn, hn, Some(k))).find(|id| !used.contains(id)).unwrap_or(plain)
            };
            used.insert(id.clone());
            ids.insert(s, id);
        }
    }
    let host_pos: HashMap<usize, usize> = g.hosts.iter().enumerate().map(|(i, &h)| (h, i)).collect();
    let mut slots = sol.slots.clone();
    slots.sort_by_key(|&s| {
        let sl = g.slots[s as usize];
        (host_pos.get(&sl.host).copied().unwrap_or(usize::MAX), sl.comp, sl.k)
    });
    let pos: HashMap<SlotId, usize> = slots.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    for &s in &slots {
        let sl = g.slots[s as usize];
        d.instances.push(ddd::Instance {
            id: ids[&s].clone(),
            component: program.ddd_component_name(sl.comp).to_string(),
            host: program.hosts[sl.host].name.clone(),
        });
    }
    // Channels in (from, to) order; indices per variadic instance port in that order.
    let mut chans: Vec<_> = sol.chans.iter().map(|&c| g.chans[c as usize]).collect();
    chans.sort_by_key(|c| (pos[&c.from.slot], c.from.port, pos[&c.to.slot], c.to.port));
    let mut next_index: HashMap<(SlotId, usize), u32> = HashMap::new();
    let end = |e: crate::lower::End, next: &mut HashMap<(SlotId, usize), u32>| {
        let comp = &program.components[g.slots[e.slot as usize].comp];
        let port = &comp.ports[e.port];
        let index = port.variadic.then(|| {
            let n = next.entry((e.slot, e.port)).or_insert(0);
            *n += 1;
            *n - 1
        });
        ddd::End { instance: ids[&e.slot].clone(), port: port.name.clone(), index }
    };
    for (i, c) in chans.iter().enumerate() {
        let from = end(c.from, &mut next_index);
        let to = end(c.to, &mut next_index);
        d.channels.push(ddd::Channel { id: format!("c{}", i + 1), directed: c.directed, from, to });
    }
    d.canonicalize();
    d
}
