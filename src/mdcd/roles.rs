//! Role assignment for a guarded upgrade (mdcd.md §1, paper §3.1): from a
//! checked goal's `upgrade` declarations and a deployment bound to it
//! ([`crate::eval::World`]), the groups G_low, G_sdw and G_act, the shadows'
//! hosts, the channels crossing the cluster boundary, and what each process
//! needs at run time; or every broken rule, as [`Violation`]s that
//! [`diagnostics`] turns into diagnostics with a fix.
//!
//! Pure: no I/O, no global state; the same program and world give the same
//! document.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{
    BoundaryChannel, Groups, Member, Process, Role, RoleDocument, ShadowMember, ShadowPlacement, UpgradeInfo, FORMAT,
    SHADOW_SUFFIX,
};
use crate::check::ir::{CompId, Direction, HostId, PortId, Program, Shadow};
use crate::diagnostics::{Code, Diagnostic};
use crate::eval::{ChanEnd, World};

/// A rule of mdcd.md §1 that the goal's upgrades break on a deployment.
/// Instances and channels are indices into the [`World`]; upgrades into
/// [`Program::upgrades`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The boundary rule: channel `channel` joins a port of G_low instance
    /// `low.inst` that the upgrade `upgrade` changes to G_act instance
    /// `active.inst`, whose component is not upgraded. Changed messages would
    /// leave the cluster.
    Boundary { channel: usize, upgrade: usize, low: ChanEnd, active: ChanEnd },
    /// The agreement rule: channel `channel`, inside the cluster, joins a
    /// changed port (`changed`, of upgrade `changed_upgrade`) to a port its
    /// own upgrade `unchanged_upgrade` does not list in `changes`.
    Disagreement {
        channel: usize,
        changed: ChanEnd,
        changed_upgrade: usize,
        unchanged: ChanEnd,
        unchanged_upgrade: usize,
    },
    /// `shadow = "otherhost"`, but no available host other than `host` (where
    /// every instance in `instances` runs) exists for their shadows.
    NoOtherHost { upgrade: usize, host: HostId, instances: Vec<usize> },
    /// The world has an index out of range for the program (never for a
    /// world built by [`crate::eval::bind`]).
    Internal(String),
}

/// Computes the role document for `program`'s upgrades on `world`, or
/// reports every broken rule (boundary, agreement, no host for an
/// `otherhost` shadow), in channel order, then upgrade order.
///
/// - G_low: every instance of an upgraded component; G_act: every other one.
/// - G_sdw: one shadow per G_low instance, `<instance>~shadow`, on its twin's
///   host (`samehost`) or another available host (`otherhost`): the largest
///   number of shadows on one host is as small as it can be, and each
///   `otherhost` shadow in turn takes the eligible host with the fewest
///   shadows, then the fewest processes, then the first declared.
/// - Boundary: every channel with one end in G_low and the other in G_act.
pub fn assign(program: &Program, world: &World) -> Result<RoleDocument, Vec<Violation>> {
    world.check_indices(program).map_err(|m| vec![Violation::Internal(m)])?;
    let upgrade_of = upgrade_of(program);
    let is_low = |i: usize| upgrade_of[world.instances[i].comp].is_some();
    let changes = |i: usize, port: PortId| -> bool {
        upgrade_of[world.instances[i].comp].is_some_and(|u| program.upgrades[u].changes.contains(&port))
    };

    let mut violations = Vec::new();
    let mut boundary = Vec::new();
    for (c, ch) in world.channels.iter().enumerate() {
        let (a, b) = (ch.from, ch.to);
        match (is_low(a.inst), is_low(b.inst)) {
            (true, true) => {
                let (ca, cb) = (changes(a.inst, a.port), changes(b.inst, b.port));
                if ca != cb {
                    let (changed, unchanged) = if ca { (a, b) } else { (b, a) };
                    violations.push(Violation::Disagreement {
                        channel: c,
                        changed,
                        changed_upgrade: upgrade_of[world.instances[changed.inst].comp].unwrap_or(0),
                        unchanged,
                        unchanged_upgrade: upgrade_of[world.instances[unchanged.inst].comp].unwrap_or(0),
                    });
                }
            }
            (true, false) | (false, true) => {
                let (low, active) = if is_low(a.inst) { (a, b) } else { (b, a) };
                if changes(low.inst, low.port) {
                    let upgrade = upgrade_of[world.instances[low.inst].comp].unwrap_or(0);
                    violations.push(Violation::Boundary { channel: c, upgrade, low, active });
                } else {
                    let port = |e: ChanEnd| program.components[world.instances[e.inst].comp].ports[e.port].name.clone();
                    boundary.push(BoundaryChannel {
                        channel: world.channel_name(c),
                        low: world.instances[low.inst].id.clone(),
                        active: world.instances[active.inst].id.clone(),
                        low_port: port(low),
                        low_index: low.index,
                        active_port: port(active),
                        active_index: active.index,
                    });
                }
            }
            (false, false) => {}
        }
    }

    let low: Vec<usize> = (0..world.instances.len()).filter(|&i| is_low(i)).collect();
    let shadow_hosts = match place_shadows(program, world, &low, &upgrade_of) {
        Ok(h) => h,
        Err(mut v) => {
            violations.append(&mut v);
            Vec::new()
        }
    };
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(document(program, world, &upgrade_of, &low, &shadow_hosts, boundary))
}

/// For each component, the index of its upgrade, if any.
fn upgrade_of(program: &Program) -> Vec<Option<usize>> {
    let mut v = vec![None; program.components.len()];
    for (u, up) in program.upgrades.iter().enumerate() {
        if let Some(slot) = v.get_mut(up.component) {
            slot.get_or_insert(u);
        }
    }
    v
}

/// The host of each G_low instance's shadow (parallel to `low`).
fn place_shadows(
    program: &Program,
    world: &World,
    low: &[usize],
    upgrade_of: &[Option<usize>],
) -> Result<Vec<HostId>, Vec<Violation>> {
    let hosts = &world.hosts;
    let pos = |h: HostId| hosts.iter().position(|&x| x == h);
    let twin_host = |i: usize| world.instances[i].host;
    let placement = |i: usize| upgrade_of[world.instances[i].comp].map(|u| program.upgrades[u].shadow);
    let mut result: Vec<Option<HostId>> = vec![None; low.len()];

    // Per available host (by position): shadows so far, processes so far.
    let mut shadows = vec![0usize; hosts.len()];
    let mut processes = vec![0usize; hosts.len()];
    for inst in &world.instances {
        if let Some(p) = pos(inst.host) {
            processes[p] += 1;
        }
    }
    let mut others: Vec<usize> = Vec::new(); // positions in `low`
    for (k, &i) in low.iter().enumerate() {
        if placement(i) == Some(Shadow::OtherHost) {
            others.push(k);
        } else {
            result[k] = Some(twin_host(i));
            if let Some(p) = pos(twin_host(i)) {
                shadows[p] += 1;
                processes[p] += 1;
            }
        }
    }

    // No other host: one violation per upgrade.
    let mut stuck: BTreeMap<usize, (HostId, Vec<usize>)> = BTreeMap::new();
    for &k in &others {
        let i = low[k];
        if !hosts.iter().any(|&h| h != twin_host(i)) {
            let u = upgrade_of[world.instances[i].comp].unwrap_or(0);
            stuck.entry(u).or_insert_with(|| (twin_host(i), Vec::new())).1.push(i);
        }
    }
    if !stuck.is_empty() {
        return Err(stuck
            .into_iter()
            .map(|(upgrade, (host, instances))| Violation::NoOtherHost { upgrade, host, instances })
            .collect());
    }

    // Shadows still to place, by the position of their twin's host.
    let mut remaining = vec![0usize; hosts.len()];
    for &k in &others {
        if let Some(p) = pos(twin_host(low[k])) {
            remaining[p] += 1;
        }
    }
    // The smallest cap on shadows per host that admits a placement.
    let mut cap = shadows.iter().copied().max().unwrap_or(0);
    while !feasible(cap, &shadows, &remaining) {
        cap += 1;
    }
    for &k in &others {
        let twin = pos(twin_host(low[k]));
        if let Some(t) = twin {
            remaining[t] -= 1;
        }
        let mut order: Vec<usize> = (0..hosts.len()).filter(|&p| Some(p) != twin).collect();
        order.sort_by_key(|&p| (shadows[p], processes[p], p));
        let look = Lookahead::new(cap, &shadows, &remaining);
        let chosen = order.into_iter().find(|&p| {
            let ok = look.allows(p, &remaining);
            if cfg!(debug_assertions) {
                let mut placed = shadows.clone();
                placed[p] += 1;
                debug_assert_eq!(ok, shadows[p] < cap && feasible(cap, &placed, &remaining), "look-ahead at host {p}");
            }
            ok
        });
        // A feasible completion exists, so some host keeps one; the fallback
        // (the emptiest eligible host) is never taken.
        let chosen = chosen.or_else(|| (0..hosts.len()).filter(|&p| Some(p) != twin).min_by_key(|&p| shadows[p]));
        if let Some(p) = chosen {
            shadows[p] += 1;
            processes[p] += 1;
            result[k] = Some(hosts[p]);
        }
    }
    Ok(result.into_iter().map(|h| h.unwrap_or(0)).collect())
}

/// Whether the shadows still to place (`remaining[t]` of them may go to any
/// host but `t`) fit with at most `cap` shadows per host, given `placed`.
///
/// A transportation problem whose sources are the twins' hosts: every set of
/// two or more sources reaches every host, a single source every host but
/// its own. So Hall's condition reduces to: the total fits, and each
/// source's count fits in the room on the other hosts.
fn feasible(cap: usize, placed: &[usize], remaining: &[usize]) -> bool {
    let room: Vec<usize> = placed.iter().map(|&n| cap.saturating_sub(n)).collect();
    let total_room: usize = room.iter().sum();
    let total: usize = remaining.iter().sum();
    total <= total_room && remaining.iter().zip(&room).all(|(&r, &own)| r == 0 || r <= total_room - own)
}

/// For each candidate host, whether one more shadow there keeps
/// [`feasible`]`(cap, placed, remaining)` true and the host under the cap:
/// the same test in constant time per host, from the room left, its total,
/// and the two largest `remaining[s] + room[s]` (a placement on `p` lowers
/// the total room by one, and `p`'s own term too).
struct Lookahead {
    room: Vec<usize>,
    total_room: usize,
    total_remaining: usize,
    /// The two largest `(remaining[s] + room[s], s)` over sources with
    /// shadows left (the first is the largest).
    top: [Option<(usize, usize)>; 2],
}

impl Lookahead {
    fn new(cap: usize, placed: &[usize], remaining: &[usize]) -> Lookahead {
        let room: Vec<usize> = placed.iter().map(|&n| cap.saturating_sub(n)).collect();
        let mut top: [Option<(usize, usize)>; 2] = [None, None];
        for (s, (&r, &own)) in remaining.iter().zip(&room).enumerate() {
            if r == 0 {
                continue;
            }
            let key = Some((r + own, s));
            if key > top[0] {
                top = [key, top[0]];
            } else if key > top[1] {
                top[1] = key;
            }
        }
        Lookahead { total_room: room.iter().sum(), total_remaining: remaining.iter().sum(), room, top }
    }

    fn allows(&self, p: usize, remaining: &[usize]) -> bool {
        let own_room = self.room.get(p).copied().unwrap_or(0);
        if own_room == 0 || self.total_remaining >= self.total_room {
            return false;
        }
        let after = self.total_room - 1;
        let others = match self.top {
            [Some((v, s)), _] if s != p => v,
            [_, Some((v, _))] => v,
            _ => 0,
        };
        let r = remaining.get(p).copied().unwrap_or(0);
        let own = if r > 0 { r + own_room - 1 } else { 0 };
        others <= after && own <= after
    }
}

fn document(
    program: &Program,
    world: &World,
    upgrade_of: &[Option<usize>],
    low: &[usize],
    shadow_hosts: &[HostId],
    boundary: Vec<BoundaryChannel>,
) -> RoleDocument {
    let host_name = |h: HostId| program.hosts[h].name.clone();
    let shadow_id = |i: usize| format!("{}{SHADOW_SUFFIX}", world.instances[i].id);
    let shadow_of: BTreeMap<usize, HostId> = low.iter().copied().zip(shadow_hosts.iter().copied()).collect();

    // Every process in document order, with its role.
    let mut order: Vec<(String, Role, usize)> = Vec::new();
    for (i, inst) in world.instances.iter().enumerate() {
        if shadow_of.contains_key(&i) {
            order.push((inst.id.clone(), Role::Low, i));
            order.push((shadow_id(i), Role::Shadow, i));
        } else {
            order.push((inst.id.clone(), Role::Active, i));
        }
    }
    let with_role = |r: Role, me: &str| -> Vec<String> {
        order.iter().filter(|(id, role, _)| *role == r && id != me).map(|(id, ..)| id.clone()).collect()
    };
    let active_or_shadow = |me: &str| -> Vec<String> {
        order.iter().filter(|(id, role, _)| *role != Role::Low && id != me).map(|(id, ..)| id.clone()).collect()
    };

    let mut groups = Groups::default();
    let mut processes = Vec::new();
    for (id, role, i) in &order {
        let inst = &world.instances[*i];
        let comp = &program.components[inst.comp];
        let external_ports: Vec<String> =
            comp.ports.iter().filter(|p| p.direction == Direction::External).map(|p| p.name.clone()).collect();
        let (counter_peers, notify, shadow_peers) = match role {
            Role::Low => {
                let version = upgrade_of[inst.comp].map(|u| program.upgrades[u].code.clone()).unwrap_or_default();
                groups.low.push(Member {
                    instance: id.clone(),
                    component: comp.name.clone(),
                    version,
                    host: host_name(inst.host),
                });
                (with_role(Role::Low, id), active_or_shadow(id), vec![shadow_id(*i)])
            }
            Role::Shadow => {
                groups.shadow.push(ShadowMember {
                    instance: id.clone(),
                    shadows: inst.id.clone(),
                    component: comp.name.clone(),
                    version: comp.code.clone(),
                    host: shadow_of.get(i).map(|&h| host_name(h)).unwrap_or_default(),
                });
                (with_role(Role::Shadow, id), vec![], vec![inst.id.clone()])
            }
            Role::Active => {
                groups.active.push(Member {
                    instance: id.clone(),
                    component: comp.name.clone(),
                    version: comp.code.clone(),
                    host: host_name(inst.host),
                });
                (vec![], active_or_shadow(id), vec![])
            }
        };
        processes.push(Process {
            instance: id.clone(),
            role: *role,
            counter_peers,
            notify,
            shadow_peers,
            external_ports,
        });
    }

    let upgrades = program
        .upgrades
        .iter()
        .map(|u| {
            let comp = &program.components[u.component];
            let mut changes = u.changes.clone();
            changes.sort_unstable();
            UpgradeInfo {
                component: comp.name.clone(),
                code: u.code.clone(),
                changes: changes.iter().filter_map(|&p| comp.ports.get(p)).map(|p| p.name.clone()).collect(),
                shadow: match u.shadow {
                    Shadow::SameHost => ShadowPlacement::Samehost,
                    Shadow::OtherHost => ShadowPlacement::Otherhost,
                },
            }
        })
        .collect();
    RoleDocument { format: FORMAT, upgrades, groups, boundary, processes }
}

// ---------------------------------------------------------------------------
// Diagnostics

/// The `changes` every component needs for the rules to hold: the declared
/// ones, closed under "a channel joins a changed port to a port that must
/// then change too". A component in the map but not upgraded must be.
fn required_changes(program: &Program, world: &World) -> BTreeMap<CompId, BTreeSet<PortId>> {
    let mut need: BTreeMap<CompId, BTreeSet<PortId>> = BTreeMap::new();
    for u in &program.upgrades {
        need.entry(u.component).or_default().extend(u.changes.iter().copied());
    }
    let comp = |e: &ChanEnd| world.instances.get(e.inst).map(|i| i.comp);
    loop {
        let mut grew = false;
        for ch in &world.channels {
            for (x, y) in [(&ch.from, &ch.to), (&ch.to, &ch.from)] {
                let (Some(cx), Some(cy)) = (comp(x), comp(y)) else { continue };
                if need.get(&cx).is_some_and(|s| s.contains(&x.port)) && need.entry(cy).or_default().insert(y.port) {
                    grew = true;
                }
            }
        }
        if !grew {
            return need;
        }
    }
}

/// Turns [`assign`]'s violations into diagnostics: what is wrong (the
/// channel, both ends with their ports), where (the upgrade declaration,
/// and the port in its `changes`), and the fix (the declaration to add, or
/// the port to list, computed for all violations at once so that following
/// every help makes the rules hold).
pub fn diagnostics(program: &Program, world: &World, violations: &[Violation]) -> Vec<Diagnostic> {
    let need = required_changes(program, world);
    let upgrade_of = upgrade_of(program);
    let comp_name = |c: CompId| program.components.get(c).map_or("?", |c| c.name.as_str());
    let port_name =
        |c: CompId, p: PortId| program.components.get(c).and_then(|c| c.ports.get(p)).map_or("?", |p| p.name.as_str());
    let end_text = |e: &ChanEnd| -> String {
        let Some(inst) = world.instances.get(e.inst) else { return "?".into() };
        let mut s = format!("{}.{}", inst.id, port_name(inst.comp, e.port));
        if let Some(i) = e.index {
            s.push_str(&format!("[{i}]"));
        }
        s
    };
    let comp_of = |e: &ChanEnd| world.instances.get(e.inst).map_or(usize::MAX, |i| i.comp);
    // The ports a component needs, in declaration order, as `{a, b}`.
    let port_set = |c: CompId| -> String {
        let ports: Vec<&str> = need.get(&c).map(|s| s.iter().map(|&p| port_name(c, p)).collect()).unwrap_or_default();
        format!("{{{}}}", ports.join(", "))
    };
    // The fix for one component: add its upgrade, or complete its changes.
    let fix = |c: CompId| -> String {
        match upgrade_of.get(c).copied().flatten() {
            None => format!("add `upgrade {} (…, changes = {})`", comp_name(c), port_set(c)),
            Some(_) => format!("write `changes = {}` in `upgrade {}`", port_set(c), comp_name(c)),
        }
    };
    // Components whose declaration the fix touches.
    let needs_fix = |c: CompId| -> bool {
        let declared: BTreeSet<PortId> = upgrade_of
            .get(c)
            .copied()
            .flatten()
            .map(|u| program.upgrades[u].changes.iter().copied().collect())
            .unwrap_or_default();
        upgrade_of.get(c).copied().flatten().is_none() || need.get(&c).is_some_and(|s| *s != declared)
    };
    let subjects: BTreeSet<CompId> = violations
        .iter()
        .filter_map(|v| match v {
            Violation::Boundary { active, .. } => Some(comp_of(active)),
            Violation::Disagreement { unchanged, .. } => Some(comp_of(unchanged)),
            _ => None,
        })
        .collect();
    let further: Vec<String> =
        need.keys().copied().filter(|c| !subjects.contains(c) && needs_fix(*c)).map(&fix).collect();
    let further_help = |d: Diagnostic| {
        if further.is_empty() {
            d
        } else {
            d.help(format!("the changed ports reach further, so the cluster grows: also {}", further.join("; ")))
        }
    };
    let changed_label = |d: Diagnostic, u: usize, port: PortId| -> Diagnostic {
        let up = &program.upgrades[u];
        match up.changes.iter().position(|&p| p == port).and_then(|k| up.change_locs.get(k)) {
            Some(loc) => d.secondary(loc.file, loc.span, format!("`{}` changes", port_name(up.component, port))),
            None => d,
        }
    };

    let mut out = Vec::new();
    for v in violations {
        match v {
            Violation::Boundary { channel, upgrade, low, active } => {
                let up = &program.upgrades[*upgrade];
                let (lc, ac) = (comp_of(low), comp_of(active));
                let d = Diagnostic::new(
                    Code::ChangedPortCrossesBoundary,
                    format!(
                        "`{}.{}` changes, but channel {} connects `{}` to `{}`, which is not upgraded",
                        comp_name(lc),
                        port_name(lc, low.port),
                        world.channel_name(*channel),
                        end_text(low),
                        end_text(active),
                    ),
                )
                .primary(up.loc.file, up.loc.span, "");
                let d = changed_label(d, *upgrade, low.port).note(format!(
                    "changed messages must stay inside the cluster of upgraded components; `{}` keeps its old interface and stays in service",
                    comp_name(ac)
                ));
                let d = d.help(format!(
                        "{}, so that `{}` joins the cluster (or, if `{}.{}` keeps its message interface, remove it from `changes`)",
                        fix(ac),
                        comp_name(ac),
                        comp_name(lc),
                    port_name(lc, low.port)
                ));
                out.push(further_help(d));
            }
            Violation::Disagreement { channel, changed, changed_upgrade, unchanged, unchanged_upgrade } => {
                let (cc, uc) = (comp_of(changed), comp_of(unchanged));
                let uup = &program.upgrades[*unchanged_upgrade];
                let d = Diagnostic::new(
                    Code::ClusterDisagreement,
                    format!(
                        "channel {} joins `{}`, whose message interface changes, to `{}`, whose interface does not",
                        world.channel_name(*channel),
                        end_text(changed),
                        end_text(unchanged),
                    ),
                )
                .primary(
                    uup.loc.file,
                    uup.loc.span,
                    format!("`{}` is not in the `changes` of this upgrade", port_name(uc, unchanged.port)),
                );
                let d = changed_label(d, *changed_upgrade, changed.port)
                    .note("inside the cluster, both ends of a channel change their message interface, or neither does");
                let d = d.help(format!(
                    "{} (or, if `{}.{}` keeps its message interface, remove it from `changes`)",
                    fix(uc),
                    comp_name(cc),
                    port_name(cc, changed.port)
                ));
                out.push(further_help(d));
            }
            Violation::NoOtherHost { upgrade, host, instances } => {
                let up = &program.upgrades[*upgrade];
                let host = program.hosts.get(*host).map_or("?", |h| h.name.as_str());
                let ids: Vec<String> =
                    instances.iter().filter_map(|&i| world.instances.get(i)).map(|i| format!("`{}`", i.id)).collect();
                let what = if ids.len() == 1 { "the shadow of" } else { "the shadows of" };
                out.push(
                    Diagnostic::new(
                        Code::NoHostForShadow,
                        format!("no host other than `{host}` is available for {what} {}", ids.join(", ")),
                    )
                    .primary(up.loc.file, up.loc.span, "`shadow = \"otherhost\"` asks for another host")
                    .note(format!("`{host}` is the only available host of the deployment"))
                    .help("make another host available, or run the shadows on their twins' hosts with `shadow = \"samehost\"`"),
                );
            }
            Violation::Internal(m) => out.push(
                Diagnostic::new(Code::Internal, format!("internal error: {m}"))
                    .note("this is a bug in deladas; please report it with the goal and the DDD"),
            ),
        }
    }
    out
}
