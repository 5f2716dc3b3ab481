//! Optimisation: objectives and preferences (issue 19).
//!
//! The ground objectives ([`crate::lower::objective`]) are levels to
//! minimise, in priority order. Each level is optimised by linear descent
//! (SAT-UNSAT): a model gives an upper bound `hi`; "value ≤ hi − 1" is
//! tried under a fresh assumption literal; satisfiable lowers `hi` to the new
//! model's value, unsatisfiable proves `hi` optimal. The proven lower bound
//! `lo` is the form's floor until then. The level is then held at its optimum
//! (another assumption) while the next is optimised: lexicographic order.
//! When the run's limit is reached, the best configuration found so far is
//! returned with the proven bound of each level, not marked optimal.
//!
//! Every check goes through [`Session::check`], so reachability cuts, the
//! deadline and the run's budget apply as for plain solving.
//!
//! Parsimony (language.md §6) keeps its meaning with one addition: a part is
//! superfluous when removing it keeps every clause true *and makes no
//! objective worse* (the independent evaluator checks the same rule).
//!
//! `--count N` repeats the whole optimisation with every earlier answer
//! blocked, so answers come best first. Broken preferences are explained by
//! an unsatisfiable core over assumption literals: the preference, the
//! clauses in force, the levels ranked above it held at their values, and
//! the preferences the answer keeps.

use std::time::Instant;

use z3::ast::Bool;
use z3::{Params, SatResult};

use super::{parse_core, Fresh, Outcome, Progress, Seen, Session, Solution, Stats};
use crate::check::ir::{Program, Sense};
use crate::lower::objective::{Bound, Level, LevelSource};
use crate::lower::state::GroundState;
use crate::lower::{Ground, NodeId, SlotId};

/// How far one level was optimised, in the user's terms (a `maximize`
/// level's value and bound are the term's, not negated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelReport {
    pub source: LevelSource,
    /// The value in the configuration returned.
    pub value: i64,
    /// The best value possible, as far as proven: for a minimised level no
    /// configuration has a smaller value, for a maximised one no larger.
    pub bound: i64,
    /// `value == bound`: proven optimal (given the levels before it).
    pub proven: bool,
}

/// Why a preference is broken.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Why {
    /// Clauses in force (indices into `program.clauses`) in the conflict.
    pub clauses: Vec<usize>,
    /// Resource limits in the conflict.
    pub resources: Vec<crate::lower::bounds::Resource>,
    /// Objectives (indices into `program.objectives`) ranked above the
    /// preferences, held at their optimum, in the conflict.
    pub objectives: Vec<usize>,
    /// Other preferences the answer keeps, in the conflict: (preference,
    /// its `forall` binding; see [`describe_binding`]).
    pub kept: Vec<(usize, Vec<(usize, Bound)>)>,
    /// No core was found (the limit was reached first).
    pub unknown: bool,
}

/// One broken preference of the configuration returned first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Index into `program.preferences`.
    pub pref: usize,
    pub weight: i64,
    /// The `forall` bindings it is broken for (see [`describe_binding`]);
    /// empty without `forall`.
    pub binding: Vec<(usize, Bound)>,
    pub why: Why,
}

/// What the optimisation achieved.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Per level, for the first configuration returned.
    pub levels: Vec<LevelReport>,
    /// Per configuration returned, the value of each level (user's terms).
    pub values: Vec<Vec<i64>>,
    /// The preferences the first configuration breaks.
    pub broken: Vec<Broken>,
    /// Broken preferences not explained (beyond [`MAX_EXPLAINED`]).
    pub unexplained: usize,
}

impl Report {
    /// Whether every level of the first configuration is proven optimal.
    pub fn proven(&self) -> bool {
        self.levels.iter().all(|l| l.proven)
    }
}

/// Broken preferences explained with a core, at most.
pub const MAX_EXPLAINED: usize = 20;

/// Every node an objective or preference reads (for the encoding's polarity).
pub(super) fn objective_nodes(g: &Ground) -> impl Iterator<Item = NodeId> + '_ {
    g.objectives.levels.iter().flat_map(|l| l.terms.iter().map(|t| t.0)).chain(g.objectives.soft.iter().map(|s| s.node))
}

fn user_value(p_sense: Option<Sense>, v: i64) -> i64 {
    match p_sense {
        Some(Sense::Maximize) => v.saturating_neg(),
        _ => v,
    }
}

/// The instance id a slot gets in a configuration (as in the DDD):
/// `Component@host`, or `Component@host#k` when the host runs several.
pub fn instance_name(program: &Program, g: &Ground, sol: &Solution, slot: SlotId) -> String {
    let s = g.slots[slot as usize];
    let mut same: Vec<SlotId> = sol
        .slots
        .iter()
        .copied()
        .filter(|&x| {
            let o = g.slots[x as usize];
            o.comp == s.comp && o.host == s.host
        })
        .collect();
    same.sort();
    match (same.len(), same.iter().position(|&x| x == slot)) {
        (n, Some(k)) if n > 1 => program.instance_id(s.comp, s.host, Some(k as u32 + 1)),
        _ => program.instance_id(s.comp, s.host, None),
    }
}

/// A preference's binding in words: `w = Web@h2, h = h3`.
pub fn describe_binding(program: &Program, g: &Ground, sol: &Solution, binding: &[(usize, Bound)]) -> String {
    binding
        .iter()
        .map(|(v, b)| {
            let name = &program.vars[*v].name;
            let val = match b {
                Bound::Slot(s) if !sol.slots.contains(s) => {
                    let sl = g.slots[*s as usize];
                    format!(
                        "a {} on {} (none there, so it holds)",
                        program.components[sl.comp].name, program.hosts[sl.host].name
                    )
                }
                Bound::Slot(s) => instance_name(program, g, sol, *s),
                Bound::Host(h) => program.hosts[*h].name.clone(),
                Bound::Value(v) => g.group_value_text(*v),
            };
            format!("{name} = {val}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Session<'_> {
    /// `Σ coeff·node + constant ≤ bound` as a pseudo-Boolean constraint.
    fn level_le(&mut self, l: &Level, bound: i64) -> Option<Bool> {
        if let Some(ladder) = &l.ladder {
            // One comparison of the term, lowered by cases: `term ≥ -bound`
            // for a maximised level (its form is the term negated), not
            // `term ≥ bound + 1` for a minimised one.
            let (m, positive) = if l.maximize { (bound.checked_neg()?, true) } else { (bound.checked_add(1)?, false) };
            let b = match ladder.at_least(m) {
                Ok(n) => self.node(n).ok()?,
                Err(c) => Bool::from_bool(c),
            };
            return Some(if positive { b } else { b.not() });
        }
        let mut lits = vec![];
        let mut k = bound.checked_sub(l.constant)?;
        for &(n, c) in &l.terms {
            let b = self.node(n).ok()?;
            if c > 0 {
                lits.push((b, i32::try_from(c).ok()?));
            } else {
                k = k.checked_sub(c)?;
                lits.push((b.not(), i32::try_from(c.checked_neg()?).ok()?));
            }
        }
        if k < 0 {
            return Some(Bool::from_bool(false));
        }
        let k = i32::try_from(k).ok()?;
        let pairs: Vec<(&Bool, i32)> = lits.iter().map(|(b, c)| (b, *c)).collect();
        Some(Bool::pb_le(&pairs, k))
    }

    /// A fresh assumption literal for `level ≤ bound`.
    fn bound_lit(&mut self, k: usize, l: &Level, bound: i64, tag: &str) -> Option<Bool> {
        let f = self.level_le(l, bound)?;
        let lit = Bool::new_const(format!("{tag}!{k}!{bound}"));
        self.solver.assert(lit.implies(&f));
        Some(lit)
    }
}

/// A configuration and its ground evaluation.
fn evaluate<'g>(g: &'g Ground, sol: &Solution) -> GroundState<'g> {
    GroundState::new(g, &sol.slots, &sol.chans)
}

/// One optimised configuration: the solution, per level (value, lower bound),
/// and whether the limit stopped the search.
struct Optimum {
    sol: Solution,
    levels: Vec<(i64, i64)>,
    /// Assumption literals holding each level at its value (for the cores).
    fixed: Vec<Bool>,
}

enum Step {
    Found(Optimum),
    Done(Outcome),
}

fn optimise_one(s: &mut Session, deadline: Option<Instant>, first: bool) -> Step {
    let g = s.g;
    let levels = g.objectives.levels.clone();
    match s.check(&[], true, deadline) {
        SatResult::Sat => {}
        SatResult::Unsat if first => {
            let (core, resources) = parse_core(&s.solver.get_unsat_core(), &s.resources);
            return Step::Done(Outcome::Unsat { core, resources, facts: vec![] });
        }
        SatResult::Unsat => {
            return Step::Done(Outcome::Sat {
                ground: Box::new(Ground::placeholder()),
                solutions: vec![],
                deployments: vec![],
            })
        }
        SatResult::Unknown => {
            return Step::Done(Outcome::Unknown(s.solver.get_reason_unknown().unwrap_or_else(|| "unknown".into())))
        }
    }
    let mut sol = match s.extract() {
        Ok(sol) => sol,
        Err(hit) => return Step::Done(super::stopped_outcome(hit)),
    };
    let mut fixed: Vec<Bool> = vec![];
    let mut out = vec![];
    let mut stopped = false;
    for (k, l) in levels.iter().enumerate() {
        let value_of = |sol: &Solution| {
            let st = evaluate(g, sol);
            l.value(|n| st.holds(n))
        };
        let mut hi = value_of(&sol);
        let mut lo = l.floor();
        while lo < hi && !stopped {
            if crate::budget::stopped() || deadline.is_some_and(|d| Instant::now() >= d) {
                stopped = true;
                break;
            }
            // Linear descent (SAT-UNSAT): every satisfiable step is a better
            // configuration, so a limit still leaves a good one; the last,
            // unsatisfiable step proves the optimum. (Bisection would spend
            // the time on hard refutations of values far below the optimum.)
            let mid = hi - 1;
            let Some(lit) = s.bound_lit(k, l, mid, "obj") else {
                stopped = true;
                break;
            };
            let mut assume = fixed.clone();
            assume.push(lit);
            let t = Instant::now();
            let r = s.check(&assume, true, deadline);
            if std::env::var_os("DELADAS_DEBUG").is_some() {
                eprintln!("optimise level {k}: value <= {mid} (lo {lo}, hi {hi}): {r:?} after {:?}", t.elapsed());
            }
            match r {
                SatResult::Sat => match s.extract() {
                    Ok(better) => {
                        sol = better;
                        hi = value_of(&sol).min(hi);
                    }
                    // Unreadable (interrupted): the best read so far stands.
                    Err(_) => stopped = true,
                },
                SatResult::Unsat => lo = mid + 1,
                SatResult::Unknown => stopped = true,
            }
        }
        out.push((hi, lo.min(hi)));
        if stopped {
            // The rest: the values of the best configuration, bounds unproven.
            for l in &levels[k + 1..] {
                let st = evaluate(g, &sol);
                out.push((l.value(|n| st.holds(n)), l.floor()));
            }
            break;
        }
        match s.bound_lit(k, l, hi, "fix") {
            Some(lit) => fixed.push(lit),
            None => break,
        }
    }
    Step::Found(Optimum { sol, levels: out, fixed })
}

/// [`Session::run`] for a goal with objectives or preferences.
pub(super) fn run(
    s: &mut Session,
    opts: &super::Options,
    deadline: Option<Instant>,
    stats: &mut Stats,
    progress: &mut (dyn Progress + Send + Sync),
) -> Outcome {
    let g = s.g;
    let program_levels = g.objectives.levels.clone();
    // Stop searching a little before the run's limit, so the best found is
    // still minimised, checked and written (the limit itself makes the run
    // "unknown").
    let deadline = deadline.map(|d| {
        let left = d.saturating_duration_since(Instant::now());
        let reserve = (left / 5).clamp(std::time::Duration::from_millis(100), std::time::Duration::from_secs(5));
        d.checked_sub(reserve.min(left / 2)).unwrap_or(d)
    });
    let mut found: Vec<Solution> = vec![];
    let mut seen = Seen::new(opts.count);
    let mut report = Report::default();
    let mut first_fixed: Vec<Bool> = vec![];
    while found.len() < opts.count.max(1) {
        progress.phase("optimising", &format!("{} levels", program_levels.len()));
        crate::budget::set_phase("optimising");
        let opt = match optimise_one(s, deadline, found.is_empty()) {
            Step::Found(o) => o,
            Step::Done(Outcome::Sat { .. }) => break,
            Step::Done(o) if found.is_empty() => return o,
            Step::Done(_) => break,
        };
        let mut sol = opt.sol;
        let mut state = match super::model_state(g, &sol) {
            Ok(st) => st,
            Err(o) => return o,
        };
        if opts.parsimony {
            progress.phase("minimising", &format!("{} instances, {} channels", sol.slots.len(), sol.chans.len()));
            crate::budget::set_phase("minimising");
            let t = Instant::now();
            let limits: Vec<i64> = opt.levels.iter().map(|l| l.0).collect();
            let ok = |st: &GroundState| program_levels.iter().zip(&limits).all(|(l, &v)| l.value(|n| st.holds(n)) <= v);
            stats.minimise_steps += state.make_parsimonious_keeping(&Default::default(), &Default::default(), &ok);
            let (slots, chans) = state.parts();
            sol = Solution { slots, chans };
            stats.minimise_time += t.elapsed();
        }
        let values: Vec<i64> = program_levels.iter().map(|l| l.value(|n| state.holds(n))).collect();
        drop(state);
        // Later configurations are neither this one nor a superset of it.
        let block = Bool::or(&s.parts_of(&sol).iter().map(|b| b.not()).collect::<Vec<_>>());
        s.solver.assert(&block);
        match seen.add(s.signature(&sol)) {
            Fresh::New => {}
            Fresh::Repeat => continue,
            Fresh::GiveUp => break,
        }
        if found.is_empty() {
            let program_senses: Vec<Option<Sense>> = program_levels.iter().map(|l| sense_of_ground(g, l)).collect();
            report.levels = program_levels
                .iter()
                .zip(&values)
                .zip(&opt.levels)
                .zip(&program_senses)
                .map(|(((l, &v), &(_, lo)), &sense)| {
                    // A local channel scope (large goals) restricts the
                    // configurations: a refutation there proves nothing.
                    let lo = if matches!(g.scope, crate::lower::ChannelScope::Local(_)) { l.floor() } else { lo };
                    let lo = lo.min(v);
                    LevelReport {
                        source: l.source,
                        value: user_value(sense, v),
                        bound: user_value(sense, lo),
                        proven: lo == v,
                    }
                })
                .collect();
            first_fixed = opt.fixed;
        }
        let senses: Vec<Option<Sense>> = program_levels.iter().map(|l| sense_of_ground(g, l)).collect();
        report.values.push(values.iter().zip(&senses).map(|(&v, &s)| user_value(s, v)).collect());
        found.push(sol);
    }
    if let Some(first) = found.first() {
        crate::budget::set_phase("explaining broken preferences");
        explain_broken(s, first, &first_fixed, deadline, &mut report);
    }
    stats.optimum = Some(report);
    Outcome::Sat { ground: Box::new(Ground::placeholder()), solutions: found, deployments: vec![] }
}

fn sense_of_ground(_g: &Ground, l: &Level) -> Option<Sense> {
    l.maximize.then_some(Sense::Maximize)
}

/// Fills `report.broken`: every soft clause the configuration breaks, with
/// a core explaining why (up to [`MAX_EXPLAINED`]).
fn explain_broken(s: &mut Session, _sol: &Solution, fixed: &[Bool], deadline: Option<Instant>, report: &mut Report) {
    let g = s.g;
    let soft = g.objectives.soft.clone();
    if soft.is_empty() {
        return;
    }
    let st = evaluate(g, _sol);
    let holds: Vec<bool> = soft.iter().map(|c| st.holds(c.node)).collect();
    drop(st);
    // The levels ranked above the preferences.
    let pref_rank = g.objectives.levels.iter().position(|l| l.source == LevelSource::Preferences).unwrap_or(0);
    let above: Vec<(usize, Bool)> = g.objectives.levels[..pref_rank]
        .iter()
        .zip(fixed)
        .filter_map(|(l, b)| match l.source {
            LevelSource::Objective(i) => Some((i, b.clone())),
            LevelSource::Preferences => None,
        })
        .collect();
    let mut p = Params::new();
    p.set_bool("core.minimize", true);
    s.solver.set_params(&p);
    let mut kept_lits: Vec<(usize, Bool)> = vec![];
    for (i, c) in soft.iter().enumerate() {
        if !holds[i] {
            continue;
        }
        if let Ok(b) = s.node(c.node) {
            let lit = Bool::new_const(format!("kept!{i}"));
            s.solver.assert(lit.implies(&b));
            kept_lits.push((i, lit));
        }
    }
    for (i, c) in soft.iter().enumerate() {
        if holds[i] {
            continue;
        }
        if report.broken.len() >= MAX_EXPLAINED {
            report.unexplained += 1;
            continue;
        }
        let mut why = Why { unknown: true, ..Why::default() };
        if let Ok(b) = s.node(c.node) {
            let lit = Bool::new_const(format!("want!{i}"));
            s.solver.assert(lit.implies(&b));
            let mut assume: Vec<Bool> = vec![lit];
            assume.extend(above.iter().map(|(_, b)| b.clone()));
            assume.extend(kept_lits.iter().map(|(_, b)| b.clone()));
            if s.check(&assume, false, deadline) == SatResult::Unsat {
                let core = s.solver.get_unsat_core();
                let (clauses, resources) = parse_core(&core, &s.resources);
                let names: Vec<String> = core.iter().map(|b| b.to_string()).collect();
                let objectives =
                    above.iter().filter(|(_, b)| names.contains(&b.to_string())).map(|(i, _)| *i).collect();
                let kept = kept_lits
                    .iter()
                    .filter(|(_, b)| names.contains(&b.to_string()))
                    .map(|(j, _)| (soft[*j].pref, soft[*j].binding.clone()))
                    .collect::<Vec<_>>();
                why = Why { clauses, resources, objectives, kept, unknown: false };
            }
        }
        report.broken.push(Broken { pref: c.pref, weight: c.weight, binding: c.binding.clone(), why });
    }
    let mut p = Params::new();
    p.set_bool("core.minimize", false);
    s.solver.set_params(&p);
}

/// The goal's objective levels optimised by linear descent under the
/// assumptions `base`, from `start` (a model satisfying them), with `down`
/// hosts failed: for `resolve`, after its kept bindings and channels.
/// Returns the best configuration and the literals holding each level at
/// its value (to be added to the assumptions of later levels).
pub(super) fn descend(
    s: &mut Session,
    base: &[Bool],
    start: Solution,
    down: &[crate::check::ir::HostId],
    deadline: Option<Instant>,
) -> (Solution, Vec<Bool>) {
    let g = s.g;
    let levels = g.objectives.levels.clone();
    let mut sol = start;
    let mut assume = base.to_vec();
    let mut fixes = vec![];
    for (k, l) in levels.iter().enumerate() {
        let value_of = |sol: &Solution| {
            let st = GroundState::with_down(g, &sol.slots, &sol.chans, down);
            l.value(|n| st.holds(n))
        };
        let mut hi = value_of(&sol);
        while hi > l.floor() {
            if crate::budget::stopped() || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let Some(lit) = s.bound_lit(k, l, hi - 1, "robj") else { break };
            let mut a = assume.clone();
            a.push(lit);
            match s.check(&a, false, deadline) {
                SatResult::Sat => match s.extract() {
                    Ok(better) => {
                        sol = better;
                        hi = value_of(&sol).min(hi - 1);
                    }
                    Err(_) => break,
                },
                _ => break,
            }
        }
        match s.bound_lit(k, l, hi, "rfix") {
            Some(lit) => {
                assume.push(lit.clone());
                fixes.push(lit);
            }
            None => break,
        }
    }
    (sol, fixes)
}

/// Whether no level of the goal is worse in `st` than in `limits`.
pub(super) fn no_worse(g: &Ground, limits: &[i64], st: &GroundState) -> bool {
    g.objectives.levels.iter().zip(limits).all(|(l, &v)| l.value(|n| st.holds(n)) <= v)
}

/// Every level's value in `st`.
pub(super) fn level_values(g: &Ground, st: &GroundState) -> Vec<i64> {
    g.objectives.levels.iter().map(|l| l.value(|n| st.holds(n))).collect()
}
