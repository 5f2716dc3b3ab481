//! Re-solving a running deployment after failures (`deladas resolve`) and
//! failure analysis (`deladas whatif`).
//!
//! The goal is grounded once over every host the scenario may use, with an
//! availability literal per host ([`crate::lower::Extra::host_lits`]): a
//! failed host is an assumption (`¬up(h)`), not a rebuilt encoding, so one
//! session answers every "what if" case. The running deployment becomes
//! *pins*: each surviving instance is the first free slot of its component on
//! its host, and each of its channels gets a channel variable even where the
//! channel scope would leave it out.
//!
//! **Optimal re-solve** is lexicographic: (1) keep the most surviving
//! instance→host bindings, then (2) the most surviving channels, then (3)
//! start the fewest new instances. Each level is solved exactly by a bounded
//! search over one pseudo-Boolean bound on the level's literals, asserted
//! under a fresh assumption literal:
//!
//! * an *upper bound* comes from counting (the implied facts of
//!   `lower::bounds` over one integer per component, with the pins as lower
//!   bounds, maximised by Z3's `Optimize`; the facts follow from the
//!   clauses, so no configuration beats the bound) and from the number of
//!   pins; the bound itself is tried first, which settles the common case —
//!   a failure that costs only what counting says it must — in one check;
//! * otherwise a binary search between the best model found and the bound:
//!   "at least k" satisfiable raises the lower end to the model's value,
//!   unsatisfiable lowers the upper end to k − 1. When the ends meet, the
//!   value is the optimum: the upper end is proven by an unsatisfiable check
//!   (or by counting), the lower end by a model.
//!
//! Earlier levels are kept as hard bounds while later ones are optimised.
//! The paper's *progressive* strategy (pin every survivor, drop pins one by
//! one in deployment order until a configuration exists) is kept for
//! comparison.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use z3::ast::{Bool, Int};
use z3::{Optimize, SatResult};

use super::{in_fresh_context, Session, Solution, SolveError};
use crate::check::ir::{CompId, HostId, PortId, Program};
use crate::lower::state::GroundState;
use crate::lower::{self, ChanId, ChannelScope, Extra, Ground, Limits, Slot, SlotId};

/// An instance of the running deployment, bound to the goal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldInstance {
    /// Its DDD id (`Router@h3`).
    pub id: String,
    pub comp: CompId,
    pub host: HostId,
}

/// A channel of the running deployment: (instance index, port) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldChannel {
    pub from: (usize, PortId),
    pub to: (usize, PortId),
    pub directed: bool,
}

/// The running deployment, as instances and channels of the goal's components.
#[derive(Debug, Clone, Default)]
pub struct Running {
    pub instances: Vec<OldInstance>,
    pub channels: Vec<OldChannel>,
}

impl Running {
    /// The running deployment of a DDD bound to the goal by the evaluator
    /// (`crate::eval::bind`, which checks it against the goal).
    pub fn from_world(world: &crate::eval::World) -> Running {
        Running {
            instances: world
                .instances
                .iter()
                .map(|i| OldInstance { id: i.id.clone(), comp: i.comp, host: i.host })
                .collect(),
            channels: world
                .channels
                .iter()
                .map(|c| OldChannel {
                    from: (c.from.inst, c.from.port),
                    to: (c.to.inst, c.to.port),
                    directed: c.directed,
                })
                .collect(),
        }
    }
}

/// What happened since the deployment was made.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// Every host the new configuration may use or that failed: the old
    /// deployment's hosts and the added ones, in declaration order.
    pub hosts: Vec<HostId>,
    /// Hosts that failed (a subset of `hosts`).
    pub down: Vec<HostId>,
    /// Indices of instances that failed on a live host (restarted in place
    /// when the goal allows).
    pub failed_instances: Vec<usize>,
}

impl Scenario {
    /// The hosts that are up.
    pub fn up(&self) -> Vec<HostId> {
        self.hosts.iter().copied().filter(|h| !self.down.contains(h)).collect()
    }
}

/// How to re-solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Lexicographically optimal (the default).
    Optimal,
    /// The paper's: pin every survivor, drop pins in deployment order until
    /// a configuration exists.
    Progressive,
}

/// One level of the objective, as far as it was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Level {
    /// The value reached.
    pub value: usize,
    /// The best value any configuration can reach, as far as proven: equal
    /// to `value` when the level is optimal.
    pub bound: usize,
}

impl Level {
    /// Whether `value` is proven optimal.
    pub fn optimal(&self) -> bool {
        self.value == self.bound
    }
}

/// A re-solved configuration.
#[derive(Debug)]
pub struct Resolved {
    /// The new DDD (only the hosts that are up; kept instances keep their
    /// ids), checked by the independent evaluator. No goal name or SHA-256
    /// set: see [`super::CheckedDeployment::with_goal`].
    pub deployment: super::CheckedDeployment,
    pub ground: Ground,
    pub solution: Solution,
    /// The old instance each kept slot continues.
    pub kept: HashMap<SlotId, usize>,
    /// Old channels kept (indices into `Running::channels`).
    pub kept_channels: Vec<usize>,
    /// Instances that could be kept: old instances on hosts that are up and
    /// within the goal's slots.
    pub surviving: usize,
    /// Channels that could be kept: both ends survive.
    pub surviving_channels: usize,
    /// (1) bindings kept, (2) channels kept (as upper bounds: maximised),
    /// (3) new instances (`bound` is the proven lower bound: minimised).
    pub levels: [Level; 3],
    pub strategy: Strategy,
}

/// How re-solving ended.
#[derive(Debug)]
pub enum ResolveOutcome {
    Resolved(Box<Resolved>),
    /// No configuration exists on the hosts that are up.
    Impossible,
    /// The solver gave up before finding any configuration.
    Unknown(String),
    /// The independent evaluator rejected the configuration found
    /// (internal-error diagnostics, E0901): a bug, and no DDD.
    Rejected(Vec<crate::diagnostics::Diagnostic>),
}

/// The slot each old instance is pinned to: its component's slots on its
/// host, numbered by id (`C@h`, then `C@h#1`, `C@h#2`, …).
fn slot_of(running: &Running) -> HashMap<usize, Slot> {
    let mut per: HashMap<(CompId, HostId), Vec<usize>> = HashMap::new();
    for (i, inst) in running.instances.iter().enumerate() {
        per.entry((inst.comp, inst.host)).or_default().push(i);
    }
    let mut slot_of: HashMap<usize, Slot> = HashMap::new();
    for ((c, h), mut v) in per {
        v.sort_by(|&a, &b| id_order(&running.instances[a].id).cmp(&id_order(&running.instances[b].id)));
        for (k, i) in v.into_iter().enumerate() {
            slot_of.insert(i, Slot { comp: c, host: h, k: k as u32 });
        }
    }
    slot_of
}

/// `C@h` before `C@h#1` before `C@h#2` …, then anything else by text.
fn id_order(id: &str) -> (u32, String) {
    match id.rsplit_once('#').and_then(|(_, k)| k.parse::<u32>().ok()) {
        Some(k) => (k, id.to_string()),
        None => (0, id.to_string()),
    }
}

/// The grounding additions for a running deployment: host literals, and a
/// channel variable for every old channel.
fn extra(running: &Running) -> Extra {
    extra_and_slots(running).0
}

/// [`extra`], and the slot each old instance is pinned to.
fn extra_and_slots(running: &Running) -> (Extra, HashMap<usize, Slot>) {
    let slot_of = slot_of(running);
    let chans = running
        .channels
        .iter()
        .filter_map(|ch| {
            let (a, b) = (slot_of.get(&ch.from.0)?, slot_of.get(&ch.to.0)?);
            Some(((*a, ch.from.1), (*b, ch.to.1), ch.directed))
        })
        .collect();
    (Extra { host_lits: true, chans, ..Extra::default() }, slot_of)
}

/// The hosts a scenario disturbs: those running an instance that had a
/// channel to an instance that is gone (on a failed host, or failed
/// itself), those of failed instances, and added hosts.
fn disturbed(running: &Running, scenario: &Scenario) -> Vec<HostId> {
    let added = scenario.hosts.iter().filter(|h| !running.instances.iter().any(|i| i.host == **h));
    let gone = |i: usize| scenario.down.contains(&running.instances[i].host) || scenario.failed_instances.contains(&i);
    let mut out: BTreeSet<HostId> = added.copied().collect();
    for &i in &scenario.failed_instances {
        out.insert(running.instances[i].host);
    }
    for ch in &running.channels {
        let (a, b) = (ch.from.0, ch.to.0);
        if gone(a) && !gone(b) {
            out.insert(running.instances[b].host);
        }
        if gone(b) && !gone(a) {
            out.insert(running.instances[a].host);
        }
    }
    out.retain(|h| !scenario.down.contains(h));
    out.into_iter().collect()
}

/// Re-solves `program` for `scenario`, starting from `running`.
pub fn resolve(
    program: &Program,
    running: &Running,
    scenario: &Scenario,
    strategy: Strategy,
    timeout: Option<Duration>,
) -> Result<ResolveOutcome, SolveError> {
    let r = in_fresh_context(std::sync::Arc::new(crate::budget::Budget::new(timeout)), || {
        let deadline = timeout.map(|t| Instant::now() + t);
        let debug = std::env::var_os("DELADAS_DEBUG").is_some();
        // Impossible by counting on the hosts that are up: no search at all
        // (the explanation gives the counting argument).
        crate::budget::set_phase("counting");
        if super::counting_precheck(program, &scenario.up()).is_some() {
            return Ok(ResolveOutcome::Impossible);
        }
        // Restricted attempts first. A configuration found in one is a real
        // one, and it is optimal when every level reached the bound that
        // counting (or the number of survivors) gives, whatever the
        // grounding left out; an answer that needed an unsatisfiable check
        // is not trusted there, and the exact scope decides.
        let restricted =
            |extra: &Extra, scope: ChannelScope, what: &str| -> Result<Option<ResolveOutcome>, SolveError> {
                let t = Instant::now();
                crate::budget::set_phase("grounding");
                // Too large to ground restricted this way (the estimate does
                // not see that the calm hosts fold to constants): the next
                // attempt decides; only the exact scope's size is an error.
                let ground = match lower::lower_with(program, &scenario.hosts, scope, Limits::default(), extra) {
                    Ok(g) => g,
                    Err(lower::LowerError::TooLarge { .. }) => {
                        if debug {
                            eprintln!("resolve: {what} too large to ground; next attempt");
                        }
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                };
                crate::budget::set_phase("re-solving");
                let mut r = Resolver::new(program, &ground, running)?;
                let out = r.resolve(scenario, strategy, deadline)?;
                let settled = r.unsat_steps == 0 && matches!(out, ResolveOutcome::Resolved(_));
                if debug {
                    eprintln!(
                        "resolve: {what} ({} channels, {} nodes) in {:?}: {}",
                        ground.chans.len(),
                        ground.nodes.len(),
                        t.elapsed(),
                        if settled { "settled by bounds" } else { "not settled" }
                    );
                }
                Ok(settled.then_some(out))
            };
        // The neighbourhood of the damage: everything on the calm hosts stays
        // as it is (constants in the grounding); only the disturbed and
        // added hosts change.
        if strategy == Strategy::Optimal && !running.instances.is_empty() {
            if let Some(out) = restricted(&neighbourhood(running, scenario), ChannelScope::Sparse, "neighbourhood")? {
                return Ok(out);
            }
        }
        // Large goals: channels between nearby hosts, and from the disturbed
        // hosts to any host.
        let up = scenario.up().len();
        if up * up * program.components.len().max(1) > super::LOCAL_THRESHOLD && up > 4 * super::LOCAL_RADIUS {
            let mut extra = extra(running);
            extra.wide_hosts = disturbed(running, scenario);
            // A small radius first (as `solve`): most repairs need only
            // channels between neighbours, and it grounds a fraction.
            for radius in [super::LOCAL_FIRST_RADIUS, super::LOCAL_RADIUS] {
                if let Some(out) = restricted(&extra, ChannelScope::Local(radius), "local scope")? {
                    return Ok(out);
                }
            }
        }
        // The exact scope: sparse, unless an answer rests on an
        // unsatisfiable check and `reachable` may need channels the sparse
        // scope leaves out; then every compatible channel.
        for scope in [ChannelScope::Sparse, ChannelScope::Full] {
            let t = Instant::now();
            crate::budget::set_phase("grounding");
            let ground = ground_scope(program, running, &scenario.hosts, scope)?;
            crate::budget::set_phase("re-solving");
            let mut r = Resolver::new(program, &ground, running)?;
            let out = r.resolve(scenario, strategy, deadline)?;
            if debug {
                eprintln!(
                    "resolve: {scope:?} scope ({} channels) in {:?}, {} unsat steps, {} cut rounds",
                    ground.chans.len(),
                    t.elapsed(),
                    r.unsat_steps,
                    r.s.cut_rounds.get()
                );
            }
            let rests_on_unsat = r.unsat_steps > 0 || matches!(out, ResolveOutcome::Impossible);
            if scope == ChannelScope::Full || !(rests_on_unsat && needs_full(&ground)) {
                return Ok(out);
            }
        }
        Err(SolveError::Lower(lower::LowerError::Internal("no exact scope answered".into())))
    });
    // A limit reached (in grounding, a solver call or parsimony): "unknown", naming it.
    match r {
        Err(SolveError::Stopped(hit)) | Err(SolveError::Lower(lower::LowerError::Stopped(hit))) => {
            Ok(ResolveOutcome::Unknown(hit.to_string()))
        }
        other => other,
    }
}

/// For each case (a set of hosts that fail together), whether the goal
/// survives and the most surviving bindings a repair keeps. One grounding and
/// one solver session serve every case: a case is a set of assumptions.
pub fn whatif(
    program: &Program,
    running: &Running,
    hosts: &[HostId],
    cases: &[Vec<HostId>],
    timeout_per_case: Option<Duration>,
) -> Result<Vec<Survival>, SolveError> {
    in_fresh_context(std::sync::Arc::new(crate::budget::Budget::new(None)), || {
        // Each case first in the neighbourhood of its damage (cheap; only a
        // survival at the counting bound is accepted there), then in the one
        // exact session, built on first need and shared by every case.
        let sparse_ground: std::cell::OnceCell<Ground> = std::cell::OnceCell::new();
        let full_ground: std::cell::OnceCell<Ground> = std::cell::OnceCell::new();
        let mut sparse: Option<Resolver> = None;
        let mut full: Option<Resolver> = None;
        let mut out = vec![];
        for down in cases {
            let deadline = timeout_per_case.map(|t| Instant::now() + t);
            let sc = Scenario { hosts: hosts.to_vec(), down: down.clone(), failed_instances: vec![] };
            if !running.instances.is_empty() {
                let g = lower::lower_with(
                    program,
                    hosts,
                    ChannelScope::Sparse,
                    Limits::default(),
                    &neighbourhood(running, &sc),
                )?;
                let mut r = Resolver::new(program, &g, running)?;
                let ans = r.survives(down, deadline)?;
                if r.unsat_steps == 0 {
                    if let Survival::Survives { kept, .. } = &ans {
                        if kept.optimal() {
                            out.push(ans);
                            continue;
                        }
                    }
                }
            }
            let r = session(&mut sparse, &sparse_ground, program, running, hosts, ChannelScope::Sparse)?;
            let before = r.unsat_steps;
            let ans = r.survives(down, deadline)?;
            let rests_on_unsat = r.unsat_steps > before || ans == Survival::Fatal;
            if rests_on_unsat && needs_full(r.g) {
                let r = session(&mut full, &full_ground, program, running, hosts, ChannelScope::Full)?;
                out.push(r.survives(down, deadline)?);
            } else {
                out.push(ans);
            }
        }
        Ok(out)
    })
}

/// The grounding additions for the neighbourhood of a scenario's damage:
/// the calm hosts (up, not disturbed, not added) fixed as they run now.
fn neighbourhood(running: &Running, scenario: &Scenario) -> Extra {
    let wide = disturbed(running, scenario);
    let (mut extra, slot_of) = extra_and_slots(running);
    extra.fixed_hosts = scenario.up().into_iter().filter(|h| !wide.contains(h)).collect();
    extra.fixed_present = (0..running.instances.len())
        .filter(|&i| extra.fixed_hosts.contains(&running.instances[i].host))
        .filter_map(|i| slot_of.get(&i).copied())
        .collect();
    extra
}

/// A grounding over a channel scope, with the running deployment's additions.
fn ground_scope(
    program: &Program,
    running: &Running,
    hosts: &[HostId],
    scope: ChannelScope,
) -> Result<Ground, SolveError> {
    Ok(lower::lower_with(program, hosts, scope, Limits::default(), &extra(running))?)
}

/// Whether an unsatisfiable answer over this (sparse) grounding may be
/// wrong: some `reachable` may need channels the sparse scope left out.
fn needs_full(g: &Ground) -> bool {
    g.reach_positive && g.sparse_left_out
}

/// The session of `slot`, grounded in `cell` on first need.
fn session<'a, 'c: 'a>(
    slot: &'a mut Option<Resolver<'c>>,
    cell: &'c std::cell::OnceCell<Ground>,
    program: &'c Program,
    running: &'c Running,
    hosts: &[HostId],
    scope: ChannelScope,
) -> Result<&'a mut Resolver<'c>, SolveError> {
    if slot.is_none() {
        if cell.get().is_none() {
            let _ = cell.set(ground_scope(program, running, hosts, scope)?);
        }
        let g = cell.get().ok_or_else(|| SolveError::Lower(lower::LowerError::Internal("no grounding".into())))?;
        *slot = Some(Resolver::new(program, g, running)?);
    }
    slot.as_mut().ok_or_else(|| SolveError::Lower(lower::LowerError::Internal("no session".into())))
}

/// One solver session over a grounding with host literals and a running
/// deployment's channels.
pub(crate) struct Resolver<'a> {
    program: &'a Program,
    g: &'a Ground,
    running: &'a Running,
    s: Session<'a>,
    /// Channel variable of each old channel, when it has one.
    old_chan: Vec<Option<ChanId>>,
    /// Slot of each old instance, when the grounding has one.
    old_slot: HashMap<usize, SlotId>,
    fresh: usize,
    /// Checks that came back unsatisfiable while optimising: bounds proven
    /// by the solver, valid only for the grounding's channel scope.
    unsat_steps: usize,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(program: &'a Program, g: &'a Ground, running: &'a Running) -> Result<Self, SolveError> {
        let s = Session::new(g)?;
        let old_slot: HashMap<usize, SlotId> = slot_of(running)
            .into_iter()
            .filter_map(|(i, sl)| g.slots_on(sl.comp, sl.host).get(sl.k as usize).map(|&s| (i, s)))
            .collect();
        let ends: HashMap<(lower::End, lower::End), ChanId> =
            g.chans.iter().enumerate().map(|(i, c)| ((c.from, c.to), i as ChanId)).collect();
        let old_chan = running
            .channels
            .iter()
            .map(|ch| {
                let (a, b) = (old_slot.get(&ch.from.0)?, old_slot.get(&ch.to.0)?);
                let (x, y) = (lower::End { slot: *a, port: ch.from.1 }, lower::End { slot: *b, port: ch.to.1 });
                ends.get(&(x, y)).or_else(|| ends.get(&(y, x))).copied()
            })
            .collect();
        Ok(Resolver { program, g, running, s, old_chan, old_slot, fresh: 0, unsat_steps: 0 })
    }

    /// The old instance each pinned slot stands for: the old instances on
    /// hosts that are up (and within the goal's slots).
    fn pinned(&self, down: &[HostId]) -> HashMap<SlotId, usize> {
        self.old_slot
            .iter()
            .filter(|(&i, _)| !down.contains(&self.running.instances[i].host))
            .map(|(&i, &s)| (s, i))
            .collect()
    }

    /// Assumptions fixing which hosts are up.
    fn host_assumptions(&self, down: &[HostId]) -> Vec<Bool> {
        self.g
            .hosts
            .iter()
            .map(|&h| if down.contains(&h) { self.s.host_up(h).not() } else { self.s.host_up(h) })
            .collect()
    }

    /// A fresh literal that implies "at least `k` of `lits`".
    fn bound_lit(&mut self, lits: &[Bool], k: usize) -> Result<Bool, SolveError> {
        self.fresh += 1;
        let b = Bool::new_const(format!("bound!{}", self.fresh));
        let terms: Vec<(&Bool, i32)> = lits.iter().map(|l| (l, 1)).collect();
        let f = if k == 0 {
            Bool::from_bool(true)
        } else if terms.is_empty() {
            Bool::from_bool(false)
        } else {
            Bool::pb_ge(&terms, super::i32_of(k as i64)?)
        };
        self.s.solver.assert(b.implies(&f));
        Ok(b)
    }

    fn check(&mut self, assumptions: &[Bool], deadline: Option<Instant>) -> SatResult {
        self.s.check(assumptions, false, deadline)
    }

    fn count_true(&self, sol: &Solution, lits: &[usize], chans: bool) -> usize {
        let set: BTreeSet<u32> =
            if chans { sol.chans.iter().copied().collect() } else { sol.slots.iter().copied().collect() };
        lits.iter().filter(|&&x| set.contains(&(x as u32))).count()
    }

    /// Optimises the number of present slots (or existing channels, with
    /// `chans`) among `items` under the assumptions `base`: the most when
    /// `maximise`, else the fewest, knowing no configuration does better
    /// than `bound`. Returns the level, a literal that keeps it, and the
    /// best configuration; `Ok(None)` when `base` itself is unsatisfiable.
    #[allow(clippy::too_many_arguments)]
    fn optimise(
        &mut self,
        base: &[Bool],
        items: &[usize],
        chans: bool,
        maximise: bool,
        bound: usize,
        hint: &[Bool],
        known: Option<&Solution>,
        deadline: Option<Instant>,
    ) -> Result<Step, SolveError> {
        let lits: Vec<Bool> =
            items.iter().map(|&i| if chans { self.s.chans[i].clone() } else { self.s.present[i].clone() }).collect();
        // Work on "at least k" of `goal` literals: the items themselves, or
        // their negations when minimising.
        let goal: Vec<Bool> = if maximise { lits } else { lits.iter().map(|l| l.not()).collect() };
        let n = items.len();
        let value_of = |sol: &Solution, me: &Self| {
            let c = me.count_true(sol, items, chans);
            if maximise {
                c
            } else {
                n - c
            }
        };
        let mut hi = if maximise { bound.min(n) } else { n - bound.min(n) };
        // The bound first: it is usually reached. Within the neighbourhood
        // `hint` first (most of the old deployment fixed by assumptions: a
        // small search); an unsatisfiable answer there proves nothing, so
        // the whole space is tried next.
        let top = self.bound_lit(&goal, hi)?;
        let mut a = base.to_vec();
        a.push(top.clone());
        let t = Instant::now();
        let mut r = SatResult::Unsat;
        if !hint.is_empty() {
            let mut h = a.clone();
            h.extend(hint.iter().cloned());
            r = self.check(&h, deadline);
            if std::env::var_os("DELADAS_DEBUG").is_some() {
                eprintln!("resolve: at least {hi} of {n} near the old deployment: {r:?} in {:?}", t.elapsed());
            }
        }
        if r != SatResult::Sat {
            r = self.check(&a, deadline);
        }
        if std::env::var_os("DELADAS_DEBUG").is_some() && hint.is_empty() {
            eprintln!("resolve: at least {hi} of {n} (the bound): {r:?} in {:?}", t.elapsed());
        }
        let (mut lo, mut best, mut best_lit) = match r {
            SatResult::Sat => {
                let sol = self.s.extract().map_err(SolveError::Stopped)?;
                let v = value_of(&sol, self).max(hi);
                (v, sol, top)
            }
            SatResult::Unknown => {
                // Out of time: a configuration already known (from an
                // earlier level) stands, with this level unproven.
                return Ok(match known {
                    Some(sol) => {
                        let v = value_of(sol, self);
                        let level = if maximise {
                            Level { value: v, bound: hi.max(v) }
                        } else {
                            Level { value: n - v, bound: n - hi.max(v) }
                        };
                        Step::Done { level, keep: Bool::from_bool(true), best: sol.clone() }
                    }
                    None => Step::Unknown(self.reason()),
                });
            }
            SatResult::Unsat => {
                self.unsat_steps += 1;
                hi = hi.saturating_sub(1);
                match self.check(base, deadline) {
                    SatResult::Sat => {}
                    SatResult::Unsat => return Ok(Step::Unsat),
                    SatResult::Unknown => return Ok(Step::Unknown(self.reason())),
                }
                let sol = self.s.extract().map_err(SolveError::Stopped)?;
                let v = value_of(&sol, self);
                let lit = self.bound_lit(&goal, v)?;
                (v, sol, lit)
            }
        };
        let mut settled = true;
        while lo < hi {
            let k = (lo + hi).div_ceil(2);
            let lit = self.bound_lit(&goal, k)?;
            let mut a = base.to_vec();
            a.push(lit.clone());
            let t = Instant::now();
            let r = self.check(&a, deadline);
            if std::env::var_os("DELADAS_DEBUG").is_some() {
                eprintln!("resolve: at least {k} of {n}: {r:?} in {:?}", t.elapsed());
            }
            match r {
                SatResult::Sat => match self.s.extract() {
                    Ok(better) => {
                        best = better;
                        lo = value_of(&best, self).max(k);
                        best_lit = lit;
                    }
                    // Unreadable (interrupted): the best read so far stands.
                    Err(_) => {
                        settled = false;
                        break;
                    }
                },
                SatResult::Unsat => {
                    self.unsat_steps += 1;
                    hi = k - 1
                }
                SatResult::Unknown => {
                    settled = false;
                    break;
                }
            }
        }
        let hi = if settled { lo } else { hi };
        let level = if maximise { Level { value: lo, bound: hi } } else { Level { value: n - lo, bound: n - hi } };
        Ok(Step::Done { level, keep: best_lit, best })
    }

    fn reason(&self) -> String {
        self.s.solver.get_reason_unknown().unwrap_or_else(|| "unknown".into())
    }

    /// Re-solves for one scenario.
    pub(crate) fn resolve(
        &mut self,
        scenario: &Scenario,
        strategy: Strategy,
        deadline: Option<Instant>,
    ) -> Result<ResolveOutcome, SolveError> {
        let pinned = self.pinned(&scenario.down);
        let mut pin_slots: Vec<(usize, SlotId)> = pinned.iter().map(|(&s, &i)| (i, s)).collect();
        pin_slots.sort();
        let pin_items: Vec<usize> = pin_slots.iter().map(|&(_, s)| s as usize).collect();
        let hosts = self.host_assumptions(&scenario.down);
        let up = scenario.up();
        // Old channels whose ends both survive.
        let chan_items: Vec<usize> = self
            .running
            .channels
            .iter()
            .zip(&self.old_chan)
            .filter_map(|(ch, c)| {
                let c = (*c)?;
                let ends_pinned =
                    [ch.from.0, ch.to.0].iter().all(|i| self.old_slot.get(i).is_some_and(|s| pinned.contains_key(s)));
                ends_pinned.then_some(c as usize)
            })
            .collect();
        let (solution, levels) = match strategy {
            Strategy::Progressive => match self.progressive(&hosts, &pin_items, up.len(), deadline)? {
                Step::Done { best, .. } => {
                    let kept = self.count_true(&best, &pin_items, false);
                    let kc = self.count_true(&best, &chan_items, true);
                    let new = best.slots.len() - kept;
                    // Not optimised: only the trivial bounds are known.
                    let (bk, bc) = (pin_items.len(), chan_items.len());
                    (
                        best,
                        [
                            Level { value: kept, bound: bk },
                            Level { value: kc, bound: bc },
                            Level { value: new, bound: 0 },
                        ],
                    )
                }
                Step::Unsat => return Ok(ResolveOutcome::Impossible),
                Step::Unknown(r) => return Ok(ResolveOutcome::Unknown(r)),
            },
            Strategy::Optimal => {
                // (1) Bindings: counting bounds how many can be kept.
                let mut per_comp = vec![0usize; self.program.components.len()];
                for &(i, _) in &pin_slots {
                    per_comp[self.running.instances[i].comp] += 1;
                }
                let ub = counting_max_kept(self.program, up.len(), &per_comp).unwrap_or(pin_items.len());
                // The neighbourhood: pins away from the disturbed hosts stay.
                let disturbed = disturbed(self.running, scenario);
                let calm = |sl: SlotId| !disturbed.contains(&self.g.slots[sl as usize].host);
                let mut hint: Vec<Bool> = pin_slots
                    .iter()
                    .filter(|&&(_, sl)| calm(sl))
                    .map(|&(_, sl)| self.s.present[sl as usize].clone())
                    .collect();
                // … and so do their channels among themselves.
                for &c in &chan_items {
                    let ch = self.g.chans[c];
                    if calm(ch.from.slot) && calm(ch.to.slot) {
                        hint.push(self.s.chans[c].clone());
                    }
                }
                let (l1, keep1, best1) =
                    match self.optimise(&hosts, &pin_items, false, true, ub, &hint, None, deadline)? {
                        Step::Done { level, keep, best } => (level, keep, best),
                        Step::Unsat => return Ok(ResolveOutcome::Impossible),
                        Step::Unknown(r) => return Ok(ResolveOutcome::Unknown(r)),
                    };
                // (2) Channels, keeping (1).
                let mut base = hosts.clone();
                base.push(keep1);
                // Later levels: near the kept pins of the best so far.
                let hint: Vec<Bool> = best1
                    .slots
                    .iter()
                    .filter(|s| pinned.contains_key(s))
                    .map(|&s| self.s.present[s as usize].clone())
                    .collect();
                let (l2, keep2, best2) = match self.optimise(
                    &base,
                    &chan_items,
                    true,
                    true,
                    chan_items.len(),
                    &hint,
                    Some(&best1),
                    deadline,
                )? {
                    Step::Done { level, keep, best } => (level, keep, best),
                    Step::Unsat => {
                        return Err(SolveError::Lower(lower::LowerError::Internal("level 2 lost its model".into())))
                    }
                    Step::Unknown(r) => return Ok(ResolveOutcome::Unknown(r)),
                };
                // (3) New instances, keeping (1) and (2): fewest present
                // slots outside the pins.
                base.push(keep2);
                // The goal's objectives (issue 19) rank after the kept
                // bindings and channels, before the fewest new instances.
                let best2 = if self.g.objectives.is_empty() {
                    best2
                } else {
                    let (best, fixes) = super::optimize::descend(&mut self.s, &base, best2, &scenario.down, deadline);
                    base.extend(fixes);
                    best
                };
                let pin_set: BTreeSet<usize> = pin_items.iter().copied().collect();
                let others: Vec<usize> = (0..self.g.slots.len()).filter(|s| !pin_set.contains(s)).collect();
                let lb = counting_min_total(self.program, up.len(), &per_comp, l1.value)
                    .map_or(0, |t| t.saturating_sub(l1.value));
                let (l3, best) = match self.optimise(&base, &others, false, false, lb, &hint, Some(&best2), deadline)? {
                    Step::Done { level, best, .. } => (level, best),
                    Step::Unsat => {
                        return Err(SolveError::Lower(lower::LowerError::Internal("level 3 lost its model".into())))
                    }
                    Step::Unknown(r) => return Ok(ResolveOutcome::Unknown(r)),
                };
                (best, [l1, l2, l3])
            }
        };
        // The model must satisfy the ground goal on the hosts that are up.
        let mut state = GroundState::with_down(self.g, &solution.slots, &solution.chans, &scenario.down);
        if !state.all_clauses_hold() {
            // A limit that interrupted Z3 while the model was read makes its
            // evaluations fail (read as false): that is the limit, not a bug.
            crate::budget::check().map_err(SolveError::Stopped)?;
            return Err(SolveError::Lower(lower::LowerError::Internal(format!(
                "the re-solved configuration violates ground clauses {:?}",
                state.false_clauses()
            ))));
        }
        // Parsimony for what is new: kept instances and channels stay.
        let kept_slots: BTreeSet<SlotId> = solution.slots.iter().copied().filter(|s| pinned.contains_key(s)).collect();
        let chan_set: BTreeSet<usize> = chan_items.iter().copied().collect();
        let kept_chans: BTreeSet<ChanId> =
            solution.chans.iter().copied().filter(|&c| chan_set.contains(&(c as usize))).collect();
        let t = Instant::now();
        crate::budget::set_phase("minimising");
        let limits = super::optimize::level_values(self.g, &state);
        let ok = |st: &GroundState| super::optimize::no_worse(self.g, &limits, st);
        state.make_parsimonious_keeping(&kept_slots, &kept_chans, &ok);
        crate::budget::check().map_err(SolveError::Stopped)?;
        if std::env::var_os("DELADAS_DEBUG").is_some() {
            eprintln!("resolve: parsimony in {:?}", t.elapsed());
        }
        let (slots, chans) = state.parts();
        let solution = Solution { slots, chans };
        let kept: HashMap<SlotId, usize> =
            solution.slots.iter().filter_map(|s| pinned.get(s).map(|&i| (*s, i))).collect();
        let chan_pos: HashMap<ChanId, usize> =
            self.old_chan.iter().enumerate().filter_map(|(i, c)| c.map(|c| (c, i))).collect();
        let mut kept_channels: Vec<usize> = solution.chans.iter().filter_map(|c| chan_pos.get(c).copied()).collect();
        kept_channels.sort();
        let mut levels = levels;
        levels[2].value = solution.slots.len() - kept.len();
        levels[2].bound = levels[2].bound.min(levels[2].value);
        // The new DDD: kept instances keep their ids; new ones get ids the
        // old deployment did not use. Checked by the evaluator before it is
        // returned.
        let fixed: HashMap<SlotId, String> =
            kept.iter().map(|(&s, &i)| (s, self.running.instances[i].id.clone())).collect();
        let taken: std::collections::HashSet<String> = self.running.instances.iter().map(|i| i.id.clone()).collect();
        let info = super::output::GoalInfo::default();
        let d = super::output::to_deployment_with(self.program, &up, self.g, &solution, &info, &fixed, &taken);
        let deployment = match super::checked::check(self.program, d, false) {
            Ok(d) => d,
            Err(diags) => return Ok(ResolveOutcome::Rejected(diags)),
        };
        Ok(ResolveOutcome::Resolved(Box::new(Resolved {
            deployment,
            ground: self.g.clone(),
            solution,
            kept,
            kept_channels,
            surviving: pin_items.len(),
            surviving_channels: chan_items.len(),
            levels,
            strategy,
        })))
    }

    /// The paper's strategy: every surviving binding pinned; while there is
    /// no configuration, drop the first pin still in force.
    fn progressive(
        &mut self,
        hosts: &[Bool],
        pins: &[usize],
        up: usize,
        deadline: Option<Instant>,
    ) -> Result<Step, SolveError> {
        let slot_inst: HashMap<SlotId, usize> = self.old_slot.iter().map(|(&i, &s)| (s, i)).collect();
        for dropped in 0..=pins.len() {
            // Counting refutes most pin sets at once (a pigeonhole argument
            // that search alone is slow to find).
            let mut per_comp = vec![0usize; self.program.components.len()];
            for &s in &pins[dropped..] {
                if let Some(&i) = slot_inst.get(&(s as SlotId)) {
                    per_comp[self.running.instances[i].comp] += 1;
                }
            }
            if counting_max_kept(self.program, up, &per_comp).is_some_and(|m| m < pins.len() - dropped) {
                continue;
            }
            let mut a = hosts.to_vec();
            a.extend(pins[dropped..].iter().map(|&s| self.s.present[s].clone()));
            match self.check(&a, deadline) {
                SatResult::Sat => {
                    let best = self.s.extract().map_err(SolveError::Stopped)?;
                    return Ok(Step::Done { level: Level { value: 0, bound: 0 }, keep: Bool::from_bool(true), best });
                }
                SatResult::Unsat => self.unsat_steps += 1,
                SatResult::Unknown => return Ok(Step::Unknown(self.reason())),
            }
        }
        Ok(Step::Unsat)
    }

    /// Whether the goal can be met with `down` failed, and the most
    /// surviving bindings any configuration keeps then (level 1 only).
    pub(crate) fn survives(&mut self, down: &[HostId], deadline: Option<Instant>) -> Result<Survival, SolveError> {
        let pinned = self.pinned(down);
        let mut pin_items: Vec<usize> = pinned.keys().map(|&s| s as usize).collect();
        pin_items.sort();
        let hosts = self.host_assumptions(down);
        let up = self.g.hosts.iter().filter(|h| !down.contains(h)).count();
        let mut per_comp = vec![0usize; self.program.components.len()];
        for &i in pinned.values() {
            per_comp[self.running.instances[i].comp] += 1;
        }
        let ub = counting_max_kept(self.program, up, &per_comp).unwrap_or(pin_items.len());
        Ok(match self.optimise(&hosts, &pin_items, false, true, ub, &[], None, deadline)? {
            Step::Done { level, .. } => Survival::Survives { kept: level, surviving: pin_items.len() },
            Step::Unsat => Survival::Fatal,
            Step::Unknown(r) => Survival::Unknown(r),
        })
    }
}

/// One optimisation step's result.
enum Step {
    Done { level: Level, keep: Bool, best: Solution },
    Unsat,
    Unknown(String),
}

/// Whether a goal survives a failure (see [`Resolver::survives`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Survival {
    /// A configuration exists; the best keeps `kept.value` of `surviving`
    /// bindings.
    Survives {
        kept: Level,
        surviving: usize,
    },
    /// No configuration exists: a single point of failure.
    Fatal,
    Unknown(String),
}

/// The counting model: one integer per component, the implied facts of
/// `lower::bounds` over `hosts` hosts, and `kept_c ≤ n_c`, `kept_c ≤ pins_c`.
fn counting_model(program: &Program, hosts: usize, pins: &[usize]) -> (Optimize, Vec<Int>, Vec<Int>) {
    let opt = Optimize::new();
    let zero = Int::from_i64(0);
    let n: Vec<Int> = (0..program.components.len()).map(|c| Int::new_const(format!("n{c}"))).collect();
    let k: Vec<Int> = (0..program.components.len()).map(|c| Int::new_const(format!("k{c}"))).collect();
    for c in 0..n.len() {
        opt.assert(n[c].ge(&zero));
        opt.assert(k[c].ge(&zero));
        opt.assert(k[c].le(&n[c]));
        opt.assert(k[c].le(Int::from_i64(pins[c] as i64)));
    }
    for f in lower::bounds::derive(program, hosts) {
        let terms: Vec<Int> = f.terms.iter().map(|&(c, a)| &n[c] * Int::from_i64(a)).collect();
        if terms.is_empty() {
            continue;
        }
        opt.assert(super::fact_formula(&Int::add(&terms), f.op, f.k));
    }
    let mut p = z3::Params::new();
    p.set_u32("timeout", 2000);
    opt.set_params(&p);
    (opt, n, k)
}

fn int_value(opt: &Optimize, x: &Int) -> Option<i64> {
    opt.get_model()?.eval(x, true)?.as_i64()
}

/// The most pins any configuration can keep, by counting alone (`None`
/// when counting says nothing or gives up).
fn counting_max_kept(program: &Program, hosts: usize, pins: &[usize]) -> Option<usize> {
    let (opt, _, k) = counting_model(program, hosts, pins);
    let total = if k.is_empty() { Int::from_i64(0) } else { Int::add(&k) };
    opt.maximize(&total);
    match opt.check(&[]) {
        SatResult::Sat => int_value(&opt, &total).map(|v| v.max(0) as usize),
        SatResult::Unsat => Some(0),
        SatResult::Unknown => None,
    }
}

/// The fewest instances in all of any configuration that keeps `kept` pins,
/// by counting alone.
fn counting_min_total(program: &Program, hosts: usize, pins: &[usize], kept: usize) -> Option<usize> {
    let (opt, n, k) = counting_model(program, hosts, pins);
    if k.is_empty() {
        return Some(0);
    }
    opt.assert(Int::add(&k).ge(Int::from_i64(kept as i64)));
    let total = Int::add(&n);
    opt.minimize(&total);
    match opt.check(&[]) {
        SatResult::Sat => int_value(&opt, &total).map(|v| v.max(0) as usize),
        _ => None,
    }
}
