//! Brute force: every configuration of a tiny goal, checked one by one with
//! the evaluator. The oracle behind property tests that cross-check the
//! solver when it answers "unsatisfiable".
//!
//! Every declared host is available. Instances are enumerated as counts per
//! (component, host) within `maxperhost` and `maxinstances` (instances of a
//! component on one host are interchangeable, so labelled sets would only
//! repeat configurations), named `C@h` or `C@h#k` as in `language.md` §6.
//! For each placement, every subset of the possible channels is tried: one
//! possible channel per pair of ports of two different instances that may be
//! joined (no `external` port, not input–input or output–output, capacity
//! above zero), kept within every port's capacity. A channel between an
//! output and an input port runs from the output end and is directed;
//! others are undirected.
//!
//! Channel subsets are not reduced by symmetry, so a configuration with
//! several interchangeable instances may be examined more than once.

use crate::check::ir::{CompId, Direction, HostId, PortId, Program};

use super::world::{Chan, ChanEnd, Inst, World};

/// How far [`enumerate`] may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most configurations to examine; above it the answer is
    /// [`BruteResult::TooLarge`]. Also the most instance placements
    /// (count vectors) there may be, checked before any work.
    pub max_candidates: u64,
}

impl Default for Limits {
    /// 2^22 configurations.
    fn default() -> Limits {
        Limits { max_candidates: 1 << 22 }
    }
}

/// The answer of [`enumerate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BruteResult {
    /// A configuration that obeys every structural rule and makes every
    /// clause true; the first one found (fewest instances per slot first,
    /// then fewest channels).
    Found { world: World, examined: u64 },
    /// No configuration satisfies the goal: it is unsatisfiable.
    NotFound { examined: u64 },
    /// More configurations than [`Limits::max_candidates`]; nothing is
    /// known.
    TooLarge { examined: u64 },
    /// A clause could not be evaluated (the goal has check errors).
    Error(String),
}

impl BruteResult {
    /// How many configurations were examined.
    pub fn examined(&self) -> u64 {
        match self {
            BruteResult::Found { examined, .. }
            | BruteResult::NotFound { examined }
            | BruteResult::TooLarge { examined } => *examined,
            BruteResult::Error(_) => 0,
        }
    }
}

/// A possible channel of one placement.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    from: (usize, PortId),
    to: (usize, PortId),
    directed: bool,
}

enum Stop {
    Found(World),
    TooLarge,
    Error(String),
}

struct Search<'a> {
    prog: &'a Program,
    limits: Limits,
    examined: u64,
    hosts: Vec<HostId>,
}

/// Enumerates every configuration of `program` (all declared hosts
/// available) and reports whether one satisfies it; see the module docs.
pub fn enumerate(program: &Program, limits: &Limits) -> BruteResult {
    // Slots: (component, host) pairs, by host then component (DDD order).
    let mut slots: Vec<(CompId, HostId)> = Vec::new();
    let mut placements: u128 = 1;
    for h in 0..program.hosts.len() {
        for (c, comp) in program.components.iter().enumerate() {
            if comp.maxperhost > 0 && comp.maxinstances != Some(0) {
                slots.push((c, h));
                placements = placements.saturating_mul(u128::from(comp.maxperhost) + 1);
            }
        }
    }
    if placements > u128::from(limits.max_candidates) {
        return BruteResult::TooLarge { examined: 0 };
    }
    if let Some(e) = program.clauses.iter().find_map(|c| has_error(&c.formula)) {
        return BruteResult::Error(e);
    }
    let mut s = Search { prog: program, limits: *limits, examined: 0, hosts: (0..program.hosts.len()).collect() };
    let mut counts = vec![0u32; slots.len()];
    let mut totals = vec![0u32; program.components.len()];
    match s.placements(&slots, 0, &mut counts, &mut totals) {
        Ok(()) => BruteResult::NotFound { examined: s.examined },
        Err(Stop::Found(world)) => BruteResult::Found { world, examined: s.examined },
        Err(Stop::TooLarge) => BruteResult::TooLarge { examined: s.examined },
        Err(Stop::Error(e)) => BruteResult::Error(e),
    }
}

/// A quick scan for `Error` nodes, so a broken goal is reported once rather
/// than "unsatisfiable".
fn has_error(f: &crate::check::ir::Formula) -> Option<String> {
    use crate::check::ir::FormulaKind as F;
    match &f.kind {
        F::Error => Some("the goal contains a formula that failed to check".into()),
        F::Not(g) => has_error(g),
        F::And(v) | F::Or(v) => v.iter().find_map(has_error),
        F::Implies(a, b) => has_error(a).or_else(|| has_error(b)),
        F::Quant { body, .. } => has_error(body),
        _ => None,
    }
}

impl Search<'_> {
    /// Every count vector from slot `k` on, within `maxperhost` and
    /// `maxinstances`.
    fn placements(
        &mut self,
        slots: &[(CompId, HostId)],
        k: usize,
        counts: &mut Vec<u32>,
        totals: &mut Vec<u32>,
    ) -> Result<(), Stop> {
        if k == slots.len() {
            return self.channels(slots, counts);
        }
        let (c, _) = slots[k];
        let comp = &self.prog.components[c];
        for n in 0..=comp.maxperhost {
            if comp.maxinstances.is_some_and(|m| totals[c] + n > m) {
                break;
            }
            counts[k] = n;
            totals[c] += n;
            let r = self.placements(slots, k + 1, counts, totals);
            totals[c] -= n;
            counts[k] = 0;
            r?;
        }
        Ok(())
    }

    /// Every channel subset of one placement.
    fn channels(&mut self, slots: &[(CompId, HostId)], counts: &[u32]) -> Result<(), Stop> {
        let prog = self.prog;
        let mut instances = Vec::new();
        for (&(c, h), &n) in slots.iter().zip(counts) {
            for k in 1..=n {
                let id = prog.instance_id(c, h, (n > 1).then_some(k));
                instances.push(Inst { comp: c, host: h, id });
            }
        }
        let ports = |i: usize| &prog.components[instances[i].comp].ports;
        let mut cands = Vec::new();
        for i in 0..instances.len() {
            for j in i + 1..instances.len() {
                for (p, pd) in ports(i).iter().enumerate() {
                    for (q, qd) in ports(j).iter().enumerate() {
                        if pd.capacity == Some(0) || qd.capacity == Some(0) {
                            continue;
                        }
                        match (pd.direction, qd.direction) {
                            (Direction::External, _) | (_, Direction::External) => {}
                            (Direction::Input, Direction::Input) | (Direction::Output, Direction::Output) => {}
                            (Direction::Input, Direction::Output) => {
                                cands.push(Candidate { from: (j, q), to: (i, p), directed: true })
                            }
                            (Direction::Output, Direction::Input) => {
                                cands.push(Candidate { from: (i, p), to: (j, q), directed: true })
                            }
                            _ => cands.push(Candidate { from: (i, p), to: (j, q), directed: false }),
                        }
                    }
                }
            }
        }
        // Remaining capacity per instance port (`None`: unbounded).
        let mut room: Vec<Vec<Option<u32>>> =
            (0..instances.len()).map(|i| ports(i).iter().map(|p| p.capacity).collect()).collect();
        let mut chosen = Vec::new();
        self.subsets(&instances, &cands, 0, &mut room, &mut chosen)
    }

    fn subsets(
        &mut self,
        instances: &[Inst],
        cands: &[Candidate],
        k: usize,
        room: &mut Vec<Vec<Option<u32>>>,
        chosen: &mut Vec<usize>,
    ) -> Result<(), Stop> {
        if k == cands.len() {
            return self.leaf(instances, cands, chosen);
        }
        // Without candidate k.
        self.subsets(instances, cands, k + 1, room, chosen)?;
        // With candidate k, when both ports have room.
        let Candidate { from: (a, p), to: (b, q), .. } = cands[k];
        let fits = |r: Option<u32>| !matches!(r, Some(0));
        if fits(room[a][p]) && fits(room[b][q]) {
            let take = |r: &mut Option<u32>| {
                if let Some(n) = r {
                    *n -= 1;
                }
            };
            let give = |r: &mut Option<u32>| {
                if let Some(n) = r {
                    *n += 1;
                }
            };
            take(&mut room[a][p]);
            take(&mut room[b][q]);
            chosen.push(k);
            let r = self.subsets(instances, cands, k + 1, room, chosen);
            chosen.pop();
            give(&mut room[a][p]);
            give(&mut room[b][q]);
            r?;
        }
        Ok(())
    }

    fn leaf(&mut self, instances: &[Inst], cands: &[Candidate], chosen: &[usize]) -> Result<(), Stop> {
        if self.examined >= self.limits.max_candidates {
            return Err(Stop::TooLarge);
        }
        self.examined += 1;
        let prog = self.prog;
        // Variadic indices, numbered from 0 per instance port.
        let mut next: Vec<Vec<u32>> = instances.iter().map(|i| vec![0; prog.components[i.comp].ports.len()]).collect();
        let mut end = |(i, p): (usize, PortId)| {
            let index = if prog.components[instances[i].comp].ports[p].variadic {
                let n = next[i][p];
                next[i][p] += 1;
                Some(n)
            } else {
                None
            };
            ChanEnd { inst: i, port: p, index }
        };
        let channels = chosen
            .iter()
            .map(|&k| {
                let c = cands[k];
                Chan { id: String::new(), directed: c.directed, from: end(c.from), to: end(c.to) }
            })
            .collect();
        let world = World { hosts: self.hosts.clone(), instances: instances.to_vec(), channels };
        let ctx = match super::ctx::Ctx::new(prog, &world) {
            Ok(ctx) => ctx,
            Err(e) => return Err(Stop::Error(e.0)),
        };
        let mut env = vec![None; prog.vars.len()];
        for c in &prog.clauses {
            match ctx.holds(&c.formula, &mut env) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err(e) => return Err(Stop::Error(e.0)),
            }
        }
        // Structurally valid by construction; checked (only) before it is
        // reported, in case the construction is wrong.
        if !super::structural::check(&ctx).is_empty() {
            return Ok(());
        }
        let mut world = world;
        for (n, ch) in world.channels.iter_mut().enumerate() {
            ch.id = format!("c{}", n + 1);
        }
        Err(Stop::Found(world))
    }
}
