//! The rules every configuration obeys, whatever the goal says
//! (`language.md` §6 "Meaning"): placement on available hosts, channels
//! between different instances, port capacities, one channel per pair of
//! instance ports, no channel on an external port, compatible directions
//! (and the DDD's `directed` flag agreeing with them), `maxperhost` and
//! `maxinstances`.

use std::collections::BTreeMap;

use crate::check::ir::Direction;

use super::ctx::Ctx;
use super::print::{count_of, list};
use super::world::port_decl;
use super::{Rule, Step, Violation, ViolationKind};

/// An instance port: (instance, port).
type EndKey = (usize, usize);

fn violation(rule: Rule, witness: Vec<Step>) -> Violation {
    Violation { kind: ViolationKind::Structural(rule), origin: None, message: rule.message().into(), witness }
}

/// Every structural rule `ctx`'s world breaks, in a fixed order: by rule,
/// then by instance or channel position.
pub(crate) fn check(ctx: &Ctx<'_>) -> Vec<Violation> {
    let (prog, world) = (ctx.prog, ctx.world);
    let mut out = Vec::new();
    let iname = |i: usize| world.instances[i].id.clone();
    let port = |i: usize, p: usize| &prog.components[world.instances[i].comp].ports[p];
    let end_name = |i: usize, p: usize| format!("{}.{}", iname(i), port(i, p).name);
    let port_step = |i: usize, p: usize, text: String| Step { loc: Some(port(i, p).loc), text };

    // Placement.
    for (i, inst) in world.instances.iter().enumerate() {
        if !ctx.available[inst.host] {
            let h = &prog.hosts[inst.host];
            out.push(violation(
                Rule::UnavailableHost,
                vec![Step {
                    loc: Some(h.loc),
                    text: format!("{} is placed on host {}, which is not available", iname(i), h.name),
                }],
            ));
        }
    }

    // Channels one by one.
    for (c, ch) in world.channels.iter().enumerate() {
        let cn = world.channel_name(c);
        let (f, t) = (ch.from, ch.to);
        let (fp, tp) = (port(f.inst, f.port), port(t.inst, t.port));
        let (fe, te) = (end_name(f.inst, f.port), end_name(t.inst, t.port));
        if f.inst == t.inst {
            out.push(violation(
                Rule::SelfChannel,
                vec![Step {
                    loc: None,
                    text: format!("channel {cn} joins {fe} and {te}: both ends are {}", iname(f.inst)),
                }],
            ));
        }
        let mut external = false;
        for (e, p, name) in [(f, fp, &fe), (t, tp, &te)] {
            if p.direction == Direction::External {
                external = true;
                out.push(violation(
                    Rule::ExternalPort,
                    vec![port_step(e.inst, e.port, format!("channel {cn} attaches to {name}, an external port"))],
                ));
            }
        }
        if external {
            continue;
        }
        match (fp.direction, tp.direction) {
            (Direction::Input, Direction::Input) | (Direction::Output, Direction::Output) => {
                out.push(violation(
                    Rule::IncompatibleDirections,
                    vec![port_step(
                        f.inst,
                        f.port,
                        format!("channel {cn} joins {fe} and {te}: both are {} ports", fp.direction.word()),
                    )],
                ));
            }
            (Direction::Output, Direction::Input) if !ch.directed => out.push(violation(
                Rule::DirectionFlag,
                vec![port_step(
                    f.inst,
                    f.port,
                    format!("channel {cn} joins output port {fe} to input port {te} but is not marked directed"),
                )],
            )),
            (Direction::Input, Direction::Output) if !ch.directed => out.push(violation(
                Rule::DirectionFlag,
                vec![port_step(
                    t.inst,
                    t.port,
                    format!("channel {cn} joins output port {te} to input port {fe} but is not marked directed"),
                )],
            )),
            (Direction::Input, Direction::Output) => out.push(violation(
                Rule::DirectionFlag,
                vec![port_step(
                    f.inst,
                    f.port,
                    format!("directed channel {cn} runs from input port {fe} to output port {te}; it must run from the output end"),
                )],
            )),
            (Direction::Both, _) | (_, Direction::Both) if ch.directed => {
                let (e, name) = if fp.direction == Direction::Both { (f, &fe) } else { (t, &te) };
                out.push(violation(
                    Rule::DirectionFlag,
                    vec![port_step(
                        e.inst,
                        e.port,
                        format!("channel {cn} is marked directed, but {name} declares no direction"),
                    )],
                ));
            }
            _ => {}
        }
    }

    // Port capacities.
    let mut held: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
    for (c, ch) in world.channels.iter().enumerate() {
        held.entry((ch.from.inst, ch.from.port)).or_default().push(c);
        held.entry((ch.to.inst, ch.to.port)).or_default().push(c);
    }
    for (&(i, p), chans) in &held {
        let pd = port(i, p);
        let Some(cap) = pd.capacity else { continue };
        if chans.len() > cap as usize {
            let names: Vec<String> = chans.iter().map(|&c| world.channel_name(c)).collect();
            let limit = if pd.variadic { format!("at most {cap}") } else { "at most one".into() };
            let decl = port_decl(&pd.name, pd.variadic, pd.capacity, pd.direction);
            out.push(violation(
                Rule::PortCapacity,
                vec![port_step(
                    i,
                    p,
                    format!(
                        "{} holds {} channels ({}); `{decl}` holds {limit}",
                        end_name(i, p),
                        chans.len(),
                        list(&names)
                    ),
                )],
            ));
        }
    }

    // One channel per pair of instance ports.
    let mut pairs: BTreeMap<(EndKey, EndKey), Vec<usize>> = BTreeMap::new();
    for (c, ch) in world.channels.iter().enumerate() {
        let (a, b) = ((ch.from.inst, ch.from.port), (ch.to.inst, ch.to.port));
        pairs.entry(if a <= b { (a, b) } else { (b, a) }).or_default().push(c);
    }
    let mut dups: Vec<&Vec<usize>> = pairs.values().filter(|v| v.len() > 1).collect();
    dups.sort();
    for chans in dups {
        let ch = &world.channels[chans[0]];
        let names: Vec<String> = chans.iter().map(|&c| world.channel_name(c)).collect();
        out.push(violation(
            Rule::DuplicateChannel,
            vec![Step {
                loc: None,
                text: format!(
                    "channels {} {} join {} and {}",
                    list(&names),
                    if names.len() == 2 { "both" } else { "all" },
                    end_name(ch.from.inst, ch.from.port),
                    end_name(ch.to.inst, ch.to.port)
                ),
            }],
        ));
    }

    // Placement bounds.
    for (c, comp) in prog.components.iter().enumerate() {
        for h in 0..prog.hosts.len() {
            let on = ctx.on_host(c, h);
            if on.len() > comp.maxperhost as usize {
                let names: Vec<String> = on.iter().map(|&i| iname(i)).collect();
                out.push(violation(
                    Rule::MaxPerHost,
                    vec![Step {
                        loc: Some(comp.loc),
                        text: format!(
                            "host {} runs {} ({}); {} allows at most {} per host",
                            prog.hosts[h].name,
                            count_of(on.len(), &comp.name),
                            list(&names),
                            comp.name,
                            comp.maxperhost
                        ),
                    }],
                ));
            }
        }
        if let Some(max) = comp.maxinstances {
            let n = ctx.by_comp[c].len();
            if n > max as usize {
                out.push(violation(
                    Rule::MaxInstances,
                    vec![Step {
                        loc: Some(comp.loc),
                        text: format!(
                            "the deployment has {}; {} allows at most {max} in all",
                            count_of(n, &comp.name),
                            comp.name
                        ),
                    }],
                ));
            }
        }
    }
    out
}
