//! Explaining unsatisfiable goals: a minimal set of conflicting clauses (or
//! parts of clauses) and resource limits, the counting argument when there
//! is one, grounded illustrations, and repairs.
//!
//! **What is tracked.** Every clause in force, and every part of one: a
//! clause whose body is a conjunction under `forall` (and on the right of
//! `implies`) is split into one closed formula per conjunct, since
//! `forall x (A and B)` is `forall x (A)` and `forall x (B)`; a `use`
//! written as a clause is the conjunction of the pattern's clauses and
//! splits the same way. Each piece goes to the solver under its own
//! assumption literal, as does each resource limit (a port's capacity,
//! `maxinstances`; the number of slots, `maxperhost` × hosts, is tested by
//! raising it).
//!
//! **Minimality.** Deletion: the solver's core is shrunk by dropping each
//! member in turn and re-solving the rest; if the rest is still
//! unsatisfiable, the member goes and the (smaller) core the solver returns
//! replaces the set. A clause is dropped with every resource limit kept; a
//! limit is tested by lifting it alone, the clauses outside the set removed.
//! When every clause is shown needed, the clauses that split are replaced by
//! their parts and the parts are tested the same way. A member shown needed
//! stays needed as the set shrinks or splits, because the set only gets
//! weaker: if the rest without it was satisfiable, a weaker rest is too. So
//! when the pass ends every member (clause, part, limit) was shown needed
//! against a set at least as strong as the final one, hence against the
//! final one: the conflict is minimal. It is minimal at the level of whole
//! clauses too: the clauses were minimised whole before any was split, and
//! splitting never drops a whole clause (that would contradict its being
//! needed). If some check runs out of time, `minimal` is false and the
//! explanation says so. A `maxinstances` that the grounding folds into the
//! number of slots (`maxinstances < maxperhost`) has no assumption literal;
//! it is a candidate of every set and tested by lifting like the others.
//!
//! **Repairs** are found by re-solving modified goals within a work bound:
//! each conflicting clause dropped alone, and if none suffices, the
//! smallest sets of clauses (up to three) whose removal makes the goal
//! satisfiable — every such set holds a clause of the conflict, and with it
//! a clause of the core that remains, so searching those is complete; each
//! conflicting resource raised by the least amount that suffices; hosts
//! cloned from each kind of declared host (hosts that differ in the
//! attributes the goal reads), the fewest that suffice.
//!
//! **Illustrations.** The goal with a conflicting clause dropped is often
//! satisfiable (that is a repair); the configuration found then breaks the
//! dropped clause, and the independent evaluator (`crate::eval`) says how,
//! with grounded instances ("for Client c = Client@h1: …").
//!
//! **Determinism.** Every bound of the search is a bound on work (Z3's
//! resource count, see `super::work`), not on time: the same goal gives the
//! same explanation on a fast or a slow (or loaded) machine. Each check of
//! the minimisation has [`MINIMISE_WORK`], each repair variant
//! [`REPAIR_VARIANT_WORK`], the repair search [`REPAIR_TOTAL_WORK`] in all.
//! The time limit of the run (`--timeout`) stays the outer limit: when it is
//! reached, the whole explanation gives up ([`Explained::Unknown`], naming
//! the limit) rather than showing what a faster machine would have completed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use super::work;
use super::{counting_precheck, solve_in_context, Options, Outcome, Quiet, Solution, SolveError};
use crate::check::ir::{
    Clause, CmpOp, CompId, Direction, Domain, Formula, FormulaKind, Host, HostId, Loc, PortId, Program, Quantifier,
    Sort, Term, TermKind, Value,
};
use crate::lower::bounds::{CountFact, Resource};
use crate::lower::{Ground, LowerError};

/// One tracked part of a clause in force: the whole clause, or one conjunct
/// of its body closed by the clause's enclosing `forall`s.
#[derive(Debug, Clone)]
pub struct Piece {
    /// The clause in force it belongs to (index into `program.clauses`).
    pub clause: usize,
    /// The piece as a closed formula.
    pub formula: Formula,
    /// Where the piece is written (for a whole clause, the clause).
    pub loc: Loc,
    /// The `use` written as a clause that the piece came through (the
    /// outermost one), if any.
    pub via_use: Option<Loc>,
    /// Whether the piece is the whole clause.
    pub whole: bool,
}

/// A grounded illustration of one conflicting piece: with its clause
/// dropped, the goal has a configuration, and in it the piece fails so.
#[derive(Debug, Clone)]
pub struct Illustration {
    /// Index into [`Conflict::pieces`].
    pub piece: usize,
    /// The witness, from the outermost binding to the false atom.
    pub witness: Vec<String>,
}

/// A plain-words fact about the declarations that ties a conflict together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The piece compares a host attribute with a value no available host has.
    NoHostWith { piece: usize, attr: String, value: Value },
    /// The piece needs a path of channels from an instance of `from` to one
    /// of `to`, and no chain of compatible ports leads that way (directions).
    NoPath { piece: usize, from: CompId, to: CompId },
}

/// A minimal conflict.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// Clauses (indices into `program.clauses`), sorted: those of `pieces`.
    pub clauses: Vec<usize>,
    /// The conflicting pieces, in clause order.
    pub pieces: Vec<Piece>,
    pub resources: Vec<Resource>,
    /// Whether every member was shown to be needed.
    pub minimal: bool,
    /// The counting facts of the refutation, when counting finds it; their
    /// `from` are indices into `pieces`.
    pub facts: Vec<CountFact>,
    /// A single clause (or part) that no configuration can satisfy.
    pub statically_false: bool,
    /// Grounded illustrations (at most [`MAX_ILLUSTRATIONS`]).
    pub illustrations: Vec<Illustration>,
    pub observations: Vec<Observation>,
    /// When every available host is alike for the goal (the same values of
    /// the attributes it reads): the fewest hosts the goal needs, shown by
    /// the repair search (fewer fail, this many like them succeed).
    pub hosts_needed: Option<usize>,
    /// The run's time or memory limit ended the minimisation or the repair
    /// search early (the limit reached, as text): checks after it counted
    /// as undecided, so the set may not be minimal and repairs may be
    /// missing. The unsatisfiability itself was decided.
    pub cut_short: Option<String>,
}

/// A change that makes the goal satisfiable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    DropClause(usize),
    /// Drop all of these clauses (no single one suffices).
    DropClauses(Vec<usize>),
    /// Add this many hosts with the attributes of this one.
    AddHosts {
        like: HostId,
        count: usize,
    },
    /// The goal declares no host: declaring this many (without attributes) suffices.
    DeclareHosts(usize),
    /// Let a port hold this many channels.
    RaiseCapacity(CompId, PortId, u32),
    RaiseMaxPerHost(CompId, u32),
    RaiseMaxInstances(CompId, u32),
}

/// What `explain` found.
#[derive(Debug, Clone)]
pub enum Explained {
    Satisfiable,
    Unsatisfiable {
        conflict: Conflict,
        repairs: Vec<Repair>,
        /// Whether the repair search ended within its work bound.
        repairs_complete: bool,
    },
    Unknown(String),
}

// The work bounds, in Z3 resource units (its `rlimit`). Z3 does roughly
// 1–4 million of them per second of CPU on the goals of tests/explain, so
// a variant's bound is a few seconds on an idle machine (the 2 s the
// search had when it was bounded by time); the largest variant of a shipped
// case uses under 1 million (`DELADAS_DEBUG=1 deladas explain` prints the
// work of each).

/// Work for one repair variant, at most.
pub const REPAIR_VARIANT_WORK: u64 = 10_000_000;
/// Work for the whole repair search, at most.
pub const REPAIR_TOTAL_WORK: u64 = 30_000_000;
/// Work for one check of the minimisation (and of the counting argument),
/// at most.
pub const MINIMISE_WORK: u64 = 10_000_000;
/// Work for the whole minimisation, at most.
pub const MINIMISE_TOTAL_WORK: u64 = 100_000_000;
/// Work for deciding the goal itself: no bound in effect (each check at
/// most 2³² units, far beyond any `--timeout`).
const GOAL_WORK: u64 = u64::MAX;
/// Illustrations shown at most.
pub const MAX_ILLUSTRATIONS: usize = 2;
/// Steps of one illustration shown at most.
const MAX_WITNESS_STEPS: usize = 3;

/// Explains a goal over the given available hosts within `budget` of time:
/// the search is bounded by work (see the module docs), the time limit ends
/// the whole run with [`Explained::Unknown`].
pub fn explain(program: &Program, available: &[usize], budget: Duration) -> Result<Explained, SolveError> {
    let limits = std::sync::Arc::new(crate::budget::Budget::new(Some(budget)));
    super::in_fresh_context(limits, || {
        let r = explain_in_context(program, available)?;
        if let Some(b) = crate::budget::current() {
            b.poll();
        }
        // A limit reached after the goal was decided unsatisfiable: the
        // checks after it counted as undecided, so the result depends on
        // speed. The conflict found by then is still a conflict: it is
        // shown, marked as cut short (a `solve` that proved the goal
        // unsatisfiable must not answer "unknown"). Before the decision, or
        // a cancel: give up.
        match (crate::budget::hit(), r) {
            (None, r) => Ok(r),
            (Some(hit), Explained::Unsatisfiable { mut conflict, repairs, .. }) if degrades(&hit) => {
                conflict.cut_short = Some(hit.to_string());
                Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete: false })
            }
            (Some(hit), _) => Ok(Explained::Unknown(hit.to_string())),
        }
    })
}

/// Whether reaching this limit leaves an explanation worth showing (time,
/// memory), rather than stopping the run (a cancel).
fn degrades(hit: &crate::budget::LimitHit) -> bool {
    !matches!(hit, crate::budget::LimitHit::Cancelled { .. })
}

/// A check of the minimisation or the repair search stopped by the run's
/// limit: undecided (the caller marks the result as cut short), so that
/// the conflict found so far survives.
fn undecided_at_limit(r: Result<(Verdict, u64), SolveError>) -> Result<(Verdict, u64), SolveError> {
    match r {
        Err(SolveError::Stopped(hit) | SolveError::Lower(LowerError::Stopped(hit))) if degrades(&hit) => {
            Ok((Verdict::Unknown, 0))
        }
        r => r,
    }
}

/// A configuration of a variant of the goal.
struct Model {
    ground: Ground,
    solution: Solution,
}

/// Satisfiability of a variant of the goal, within a work bound.
enum Verdict {
    Sat(Option<Box<Model>>),
    Unsat(Vec<usize>, Vec<Resource>),
    Unknown,
}

/// Satisfiability of a variant of the goal within `work` units of solver
/// work; also returns the work used.
fn verdict(p: &Program, available: &[usize], work: u64, parsimony: bool) -> Result<(Verdict, u64), SolveError> {
    if work == 0 {
        return Ok((Verdict::Unknown, 0));
    }
    // No time limit of its own: the run's (`crate::budget`) is the outer one.
    let opts = Options { timeout: None, parsimony, count: 1, optimise: false, ..Default::default() };
    let t = Instant::now();
    let (out, used) = work::bounded(work, || solve_in_context(p, available, &opts, &mut Quiet));
    let out = out?.0;
    if std::env::var_os("DELADAS_DEBUG").is_some() {
        let what = match &out {
            Outcome::Sat { .. } => "sat".to_string(),
            Outcome::Unsat { core, .. } => format!("unsat {core:?}"),
            _ => "unknown".into(),
        };
        eprintln!(
            "explain: {} clauses, {} hosts: {what} in {:?}, work {used} of {work}",
            p.clauses.len(),
            available.len(),
            t.elapsed()
        );
    }
    Ok((verdict_of(out), used))
}

fn verdict_of(out: Outcome) -> Verdict {
    match out {
        Outcome::Sat { ground, solutions, .. } => {
            Verdict::Sat(solutions.into_iter().next().map(|solution| Box::new(Model { ground: *ground, solution })))
        }
        Outcome::Unsat { core, resources, .. } => Verdict::Unsat(core, resources),
        Outcome::Unknown(_) | Outcome::Internal(_) | Outcome::Rejected(_) => Verdict::Unknown,
    }
}

/// Lifts every port capacity and `maxinstances` not in `keep`.
fn lift(q: &mut Program, keep: &[Resource]) {
    for (c, comp) in q.components.iter_mut().enumerate() {
        for (i, port) in comp.ports.iter_mut().enumerate() {
            if port.capacity.is_some() && !keep.contains(&Resource::PortCapacity(c, i)) {
                port.capacity = None;
            }
        }
        if comp.maxinstances.is_some() && !keep.contains(&Resource::MaxInstances(c)) {
            comp.maxinstances = None;
        }
    }
}

/// `res` plus every `maxinstances` of `q` that the grounding folds into the
/// number of slots (`maxinstances < maxperhost`): the solver has no
/// assumption literal for those, so they are candidates of every conflict.
fn with_folded(q: &Program, mut res: Vec<Resource>) -> Vec<Resource> {
    for (c, comp) in q.components.iter().enumerate() {
        if comp.maxinstances.is_some_and(|m| m < comp.maxperhost) && !res.contains(&Resource::MaxInstances(c)) {
            res.push(Resource::MaxInstances(c));
        }
    }
    res.sort();
    res
}

// ---------------------------------------------------------------------------
// Splitting clauses into pieces

/// A part of a formula, before it is attached to a clause.
struct Part {
    formula: Formula,
    loc: Loc,
    via_use: Option<Loc>,
}

fn contains(outer: Loc, inner: Loc) -> bool {
    outer.file == inner.file && outer.span.start <= inner.span.start && inner.span.end <= outer.span.end
}

/// The conjuncts of `f`, each closed by the `forall`s (and `implies`
/// premises) above it: `forall x (A and forall y (B C))` gives
/// `forall x (A)`, `forall x (forall y (B))`, `forall x (forall y (C))`.
/// A conjunct written elsewhere than its conjunction (a pattern's clause
/// under a `use` written as a clause) records the conjunction as its `use`.
fn split(f: &Formula) -> Vec<Part> {
    let whole = || vec![Part { formula: f.clone(), loc: f.loc, via_use: None }];
    match &f.kind {
        FormulaKind::And(v) if !v.is_empty() => {
            let mut out = vec![];
            for g in v {
                let mut parts = split(g);
                if !contains(f.loc, g.loc) {
                    for p in &mut parts {
                        p.via_use = Some(f.loc);
                    }
                }
                out.extend(parts);
            }
            out
        }
        FormulaKind::Quant { q: Quantifier::Forall, var, domain, body } => {
            let parts = split(body);
            if parts.len() <= 1 {
                return whole();
            }
            parts
                .into_iter()
                .map(|p| Part {
                    formula: Formula {
                        kind: FormulaKind::Quant {
                            q: Quantifier::Forall,
                            var: *var,
                            domain: domain.clone(),
                            body: Box::new(p.formula),
                        },
                        loc: p.loc,
                    },
                    loc: p.loc,
                    via_use: p.via_use,
                })
                .collect()
        }
        FormulaKind::Implies(a, b) => {
            let parts = split(b);
            if parts.len() <= 1 {
                return whole();
            }
            parts
                .into_iter()
                .map(|p| Part {
                    formula: Formula { kind: FormulaKind::Implies(a.clone(), Box::new(p.formula)), loc: p.loc },
                    loc: p.loc,
                    via_use: p.via_use,
                })
                .collect()
        }
        _ => whole(),
    }
}

/// A clause as one whole piece. A clause that is a single pattern clause
/// under a `use` written as a clause records the use.
fn whole_piece(program: &Program, i: usize) -> Piece {
    let c = &program.clauses[i];
    let parts = split(&c.formula);
    let (loc, via_use) = match parts.as_slice() {
        [p] => (p.loc, p.via_use),
        _ => {
            let first = parts.first().and_then(|p| p.via_use);
            let same = parts.iter().all(|p| p.via_use == first);
            (c.origin.loc, if same { first } else { None })
        }
    };
    Piece { clause: i, formula: c.formula.clone(), loc, via_use, whole: true }
}

/// The parts of clause `i` as pieces, as `explain` tracks them (one whole
/// piece when the clause does not split).
pub fn pieces_of(program: &Program, i: usize) -> Vec<Piece> {
    let parts = split(&program.clauses[i].formula);
    if parts.len() <= 1 {
        return vec![whole_piece(program, i)];
    }
    parts
        .into_iter()
        .map(|p| Piece { clause: i, formula: p.formula, loc: p.loc, via_use: p.via_use, whole: false })
        .collect()
}

// ---------------------------------------------------------------------------
// The conflict

/// A member of a conflict under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Item {
    Unit(usize),
    Res(Resource),
}

struct Search<'p> {
    program: &'p Program,
    /// The program without clauses, cloned for each variant.
    base: Program,
    available: &'p [usize],
    /// Work left for the minimisation (see [`MINIMISE_TOTAL_WORK`]).
    left: u64,
    /// Every piece tracked so far; members of a conflict index it.
    units: Vec<Piece>,
}

impl<'p> Search<'p> {
    fn new(program: &'p Program, available: &'p [usize]) -> Self {
        let base = Program { clauses: vec![], ..program.clone() };
        let units = (0..program.clauses.len()).map(|i| whole_piece(program, i)).collect();
        Search { program, base, available, left: MINIMISE_TOTAL_WORK, units }
    }

    /// The goal made of these pieces; with `keep`, every limit not in it lifted.
    fn build(&self, members: &[usize], keep: Option<&[Resource]>) -> Program {
        let mut q = self.base.clone();
        q.clauses = members
            .iter()
            .map(|&u| Clause {
                formula: self.units[u].formula.clone(),
                origin: self.program.clauses[self.units[u].clause].origin.clone(),
            })
            .collect();
        if let Some(keep) = keep {
            lift(&mut q, keep);
        }
        q
    }

    fn verdict(&mut self, q: &Program) -> Result<Verdict, SolveError> {
        let (v, used) = undecided_at_limit(verdict(q, self.available, MINIMISE_WORK.min(self.left), false))?;
        self.left = self.left.saturating_sub(used);
        Ok(v)
    }

    /// The deletion pass of the module docs, from an unsatisfiable core of
    /// whole clauses. Returns the members (indices into `units`), the
    /// resources, and whether every member was shown needed.
    fn minimise(
        &mut self,
        core: Vec<usize>,
        res: Vec<Resource>,
    ) -> Result<(Vec<usize>, Vec<Resource>, bool), SolveError> {
        let mut members = core;
        let mut res = with_folded(self.program, res);
        let mut known: HashSet<Item> = HashSet::new();
        let mut split_done: HashSet<usize> = HashSet::new();
        let mut minimal = true;
        loop {
            if let Some(&u) = members.iter().find(|&&u| !known.contains(&Item::Unit(u))) {
                let trial: Vec<usize> = members.iter().copied().filter(|&x| x != u).collect();
                // Every resource limit stays: if the rest is satisfiable even
                // with all of them, it is with the conflict's own.
                let q = self.build(&trial, None);
                match self.verdict(&q)? {
                    Verdict::Sat(_) => {
                        known.insert(Item::Unit(u));
                    }
                    Verdict::Unknown => {
                        minimal = false;
                        known.insert(Item::Unit(u));
                    }
                    Verdict::Unsat(core, r) => {
                        members = core.iter().filter_map(|&i| trial.get(i).copied()).collect();
                        res = with_folded(&q, r);
                    }
                }
                continue;
            }
            let untested =
                res.iter().copied().find(|r| !matches!(r, Resource::Placement(_)) && !known.contains(&Item::Res(*r)));
            if let Some(r) = untested {
                let keep: Vec<Resource> = res.iter().copied().filter(|x| *x != r).collect();
                let q = self.build(&members, Some(&keep));
                match self.verdict(&q)? {
                    Verdict::Sat(_) => {
                        known.insert(Item::Res(r));
                    }
                    Verdict::Unknown => {
                        minimal = false;
                        known.insert(Item::Res(r));
                    }
                    Verdict::Unsat(core, r2) => {
                        members = core.iter().filter_map(|&i| members.get(i).copied()).collect();
                        res = with_folded(&q, r2);
                    }
                }
                continue;
            }
            // Every member is needed: split the clauses that have parts (not
            // when the work is used up: whole clauses shown needed beat parts
            // untested).
            if self.left == 0 {
                break;
            }
            let mut next = vec![];
            let mut changed = false;
            for &u in &members {
                if split_done.insert(u) && self.units[u].whole {
                    let parts = pieces_of(self.program, self.units[u].clause);
                    if parts.len() > 1 {
                        for p in parts {
                            self.units.push(p);
                            next.push(self.units.len() - 1);
                        }
                        changed = true;
                        continue;
                    }
                }
                next.push(u);
            }
            members = next;
            if !changed {
                break;
            }
        }
        Ok((members, res, minimal))
    }
}

fn explain_in_context(program: &Program, available: &[usize]) -> Result<Explained, SolveError> {
    crate::budget::set_phase("explaining");
    // A clause (or part of one) false whatever the configuration explains itself.
    for i in 0..program.clauses.len() {
        let mut false_pieces: Vec<Piece> = pieces_of(program, i)
            .into_iter()
            .filter(|p| crate::check::static_truth(&p.formula) == Some(false))
            .collect();
        if false_pieces.is_empty() && crate::check::static_truth(&program.clauses[i].formula) == Some(false) {
            false_pieces.push(whole_piece(program, i));
        }
        if let Some(piece) = false_pieces.into_iter().next() {
            let conflict = Conflict {
                clauses: vec![i],
                pieces: vec![piece],
                resources: vec![],
                minimal: true,
                facts: vec![],
                statically_false: true,
                illustrations: vec![],
                observations: vec![],
                hosts_needed: None,
                cut_short: None,
            };
            let mut r = Repairs::new(program, available);
            let repairs = r.search(&conflict)?;
            return Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete: r.complete });
        }
    }
    // The goal itself: decided within the run's time limit, in effect (giving
    // up here is the run's "unknown"); the bound only makes every check of it
    // bounded by work rather than by the clock (the counting precheck's).
    let (core, res) = match verdict(program, available, GOAL_WORK, false)?.0 {
        Verdict::Sat(_) => return Ok(Explained::Satisfiable),
        Verdict::Unknown => {
            let why = crate::budget::hit().map_or_else(|| "the solver gave up".to_string(), |h| h.to_string());
            return Ok(Explained::Unknown(why));
        }
        Verdict::Unsat(c, r) => (c, r),
    };
    let mut search = Search::new(program, available);
    let (mut members, mut res, minimal) = search.minimise(core, res)?;
    members.sort_by_key(|&u| (search.units[u].clause, search.units[u].loc.span.start, u));
    members.dedup();
    // The counting argument for the final set, if counting refutes it.
    let q = search.build(&members, Some(&res));
    let mut facts = vec![];
    if let Some((_, counting_res, f)) = counting(&q, available) {
        facts = f;
        // The solver's core need not be minimal: a placement bound is named
        // only if counting fails without it.
        let mut lifted = q.clone();
        let mut any_lifted = false;
        for r in counting_res {
            let Resource::Placement(c) = r else { continue };
            let mut q2 = lifted.clone();
            q2.components[c].maxperhost = u32::MAX / 2;
            if counting(&q2, available).is_some() {
                lifted = q2;
                any_lifted = true;
            } else if !res.contains(&r) {
                res.push(r);
            }
        }
        if any_lifted {
            if let Some((_, _, f)) = counting(&lifted, available) {
                facts = f;
            }
        }
        facts.retain(|f| f.resources.iter().all(|r| !matches!(r, Resource::Placement(_)) || res.contains(r)));
    } else {
        // The search found it: is the number of slots (maxperhost × hosts) part of it?
        for c in placement_candidates(&q, available.len(), &res) {
            let mut q2 = q.clone();
            q2.components[c].maxperhost = q2.components[c].maxperhost * 2 + 2;
            if let Verdict::Sat(_) = search.verdict(&q2)? {
                res.push(Resource::Placement(c));
            }
        }
    }
    res.sort();
    res.dedup();
    let pieces: Vec<Piece> = members.iter().map(|&u| search.units[u].clone()).collect();
    let mut clauses: Vec<usize> = pieces.iter().map(|p| p.clause).collect();
    clauses.dedup();
    let observations = observe(program, available, &pieces);
    let mut conflict = Conflict {
        clauses,
        pieces,
        resources: res,
        minimal,
        facts,
        statically_false: false,
        illustrations: vec![],
        observations,
        hosts_needed: None,
        cut_short: None,
    };
    let mut r = Repairs::new(program, available);
    let repairs = r.search(&conflict)?;
    conflict.illustrations = illustrate(program, &conflict, &r.models);
    conflict.hosts_needed = r.hosts_needed;
    Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete: r.complete })
}

/// The counting argument of `super::counting_precheck`, within a work bound.
fn counting(q: &Program, available: &[usize]) -> Option<(Vec<usize>, Vec<Resource>, Vec<CountFact>)> {
    work::bounded(MINIMISE_WORK, || counting_precheck(q, available)).0
}

/// Components whose number of slots may take part in a conflict the search
/// found: those the clauses mention, unless a folded `maxinstances` bounds
/// them instead, and only while raising `maxperhost` stays small.
fn placement_candidates(q: &Program, hosts: usize, res: &[Resource]) -> Vec<CompId> {
    let mut comps = BTreeSet::new();
    for c in &q.clauses {
        mentioned(q, &c.formula, &mut comps);
    }
    comps
        .into_iter()
        .filter(|&c| {
            let comp = &q.components[c];
            !res.contains(&Resource::Placement(c))
                && comp.maxinstances.is_none_or(|m| m >= comp.maxperhost)
                && hosts * (comp.maxperhost as usize * 2 + 2) <= 256
        })
        .collect()
}

/// Components whose instances a formula ranges over.
fn mentioned(p: &Program, f: &Formula, out: &mut BTreeSet<CompId>) {
    let mut vars = vec![];
    let mut binders = vec![];
    walk(
        f,
        &mut |f| {
            if let FormulaKind::Quant { var, .. } = &f.kind {
                vars.push(*var);
            }
        },
        &mut |t| {
            if let TermKind::Count(b) | TermKind::Sum(b, _) = &t.kind {
                binders.push(b.var);
            }
        },
    );
    for v in vars.into_iter().chain(binders) {
        if let Sort::Instance(c) = p.vars[v].sort {
            out.insert(c);
        }
    }
}

/// Visits every formula and term of `f`.
fn walk(f: &Formula, on_f: &mut dyn FnMut(&Formula), on_t: &mut dyn FnMut(&Term)) {
    on_f(f);
    match &f.kind {
        FormulaKind::Not(a) => walk(a, on_f, on_t),
        FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().for_each(|g| walk(g, on_f, on_t)),
        FormulaKind::Implies(a, b) => {
            walk(a, on_f, on_t);
            walk(b, on_f, on_t);
        }
        FormulaKind::Cmp(_, a, b) => {
            walk_term(a, on_f, on_t);
            walk_term(b, on_f, on_t);
        }
        FormulaKind::Quant { domain, body, .. } => {
            if let Domain::OnHost(t) = domain {
                walk_term(t, on_f, on_t);
            }
            walk(body, on_f, on_t);
        }
        _ => {}
    }
}

fn walk_term(t: &Term, on_f: &mut dyn FnMut(&Formula), on_t: &mut dyn FnMut(&Term)) {
    on_t(t);
    match &t.kind {
        TermKind::HostAttr(a, _) | TermKind::Neg(a) => walk_term(a, on_f, on_t),
        TermKind::Count(b) | TermKind::Sum(b, _) => {
            if let Domain::OnHost(h) = &b.domain {
                walk_term(h, on_f, on_t);
            }
            if let Some(c) = &b.cond {
                walk(c, on_f, on_t);
            }
            if let TermKind::Sum(_, s) = &t.kind {
                walk_term(s, on_f, on_t);
            }
        }
        TermKind::Add(v) => v.iter().for_each(|(_, x)| walk_term(x, on_f, on_t)),
        TermKind::Mul(a, b) => {
            walk_term(a, on_f, on_t);
            walk_term(b, on_f, on_t);
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// Observations

/// Facts about the declarations that explain why the pieces conflict.
fn observe(program: &Program, available: &[usize], pieces: &[Piece]) -> Vec<Observation> {
    let mut out = vec![];
    let reach = component_reach(program);
    for (i, p) in pieces.iter().enumerate() {
        let mut found = vec![];
        positive_atoms(&p.formula, &mut |f| match &f.kind {
            FormulaKind::Cmp(CmpOp::Eq, a, b) => {
                for (x, y) in [(a, b), (b, a)] {
                    if let (TermKind::HostAttr(_, attr), Some(v)) = (&x.kind, y.constant()) {
                        if !available.iter().any(|&h| program.hosts[h].attr(attr) == Some(&v)) {
                            found.push(Observation::NoHostWith { piece: i, attr: attr.clone(), value: v });
                        }
                    }
                }
            }
            FormulaKind::Reachable(a, b) => {
                if let (Sort::Instance(x), Sort::Instance(y)) = (program.vars[*a].sort, program.vars[*b].sort) {
                    if x != y && !reach[x].contains(&y) {
                        found.push(Observation::NoPath { piece: i, from: x, to: y });
                    }
                }
            }
            _ => {}
        });
        for o in found {
            if !out.contains(&o) {
                out.push(o);
            }
        }
    }
    out
}

/// The atoms of `f` that must hold for it to hold somewhere: under `and`,
/// `or`, quantifiers and on the right of `implies` (not under `not`, on the
/// left of `implies`, or inside a count's condition).
fn positive_atoms(f: &Formula, on: &mut dyn FnMut(&Formula)) {
    match &f.kind {
        FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().for_each(|g| positive_atoms(g, on)),
        FormulaKind::Implies(_, b) => positive_atoms(b, on),
        FormulaKind::Quant { body, .. } => positive_atoms(body, on),
        FormulaKind::Not(_) => {}
        _ => on(f),
    }
}

/// For each component, the components a path of channels can lead to from
/// one of its instances, by the port declarations alone (a directed channel
/// is followed from its output end; one with a bidirectional end either way).
fn component_reach(p: &Program) -> Vec<BTreeSet<CompId>> {
    let n = p.components.len();
    let mut next: Vec<BTreeSet<CompId>> = vec![BTreeSet::new(); n];
    for a in 0..n {
        for b in 0..n {
            for pa in &p.components[a].ports {
                for pb in &p.components[b].ports {
                    if !crate::lower::compatible(pa, pb) || pa.capacity == Some(0) || pb.capacity == Some(0) {
                        continue;
                    }
                    let directed = pa.direction != Direction::Both && pb.direction != Direction::Both;
                    if !directed || pa.direction == Direction::Output {
                        next[a].insert(b);
                    }
                    if !directed || pb.direction == Direction::Output {
                        next[b].insert(a);
                    }
                }
            }
        }
    }
    (0..n)
        .map(|a| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![a];
            while let Some(x) = stack.pop() {
                for &y in &next[x] {
                    if seen.insert(y) {
                        stack.push(y);
                    }
                }
            }
            seen
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Illustrations

/// For each conflicting piece under a quantifier whose clause, dropped,
/// leaves a satisfiable goal: how the piece fails in that configuration.
fn illustrate(program: &Program, conflict: &Conflict, models: &[(usize, Program, Box<Model>)]) -> Vec<Illustration> {
    let mut out = vec![];
    for (i, piece) in conflict.pieces.iter().enumerate() {
        if out.len() >= MAX_ILLUSTRATIONS {
            break;
        }
        if !matches!(piece.formula.kind, FormulaKind::Quant { q: Quantifier::Forall, .. }) {
            continue;
        }
        let Some((_, q, m)) = models.iter().find(|(c, _, _)| *c == piece.clause) else { continue };
        let d = super::output::to_deployment(q, &m.ground, &m.solution, &Default::default());
        let mut e = Program { clauses: vec![], ..q.clone() };
        e.clauses.push(Clause { formula: piece.formula.clone(), origin: program.clauses[piece.clause].origin.clone() });
        let Ok(world) = crate::eval::bind(&e, &d) else { continue };
        let Some(v) =
            crate::eval::violations(&e, &world).into_iter().find(|v| v.kind == crate::eval::ViolationKind::Clause)
        else {
            continue;
        };
        let mut witness: Vec<String> = v.witness.iter().map(|s| s.text.clone()).collect();
        if !witness.first().is_some_and(|w| w.starts_with("for ")) {
            continue;
        }
        if witness.len() > MAX_WITNESS_STEPS {
            witness.truncate(MAX_WITNESS_STEPS);
            witness.push("…".into());
        }
        out.push(Illustration { piece: i, witness });
    }
    out
}

// ---------------------------------------------------------------------------
// Repairs

struct Repairs<'p> {
    program: &'p Program,
    available: &'p [usize],
    /// Work left for the repair search (see [`REPAIR_TOTAL_WORK`]).
    left: u64,
    complete: bool,
    /// Configurations of the goal with one clause dropped: (clause, goal, model).
    models: Vec<(usize, Program, Box<Model>)>,
    /// See [`Conflict::hosts_needed`].
    hosts_needed: Option<usize>,
}

/// Largest sets of clauses tried as a correction.
const MAX_DROP: usize = 3;
/// Largest raise of one resource limit tried.
const MAX_RAISE: u32 = 16;
/// Kinds of host tried as clones.
const MAX_HOST_KINDS: usize = 4;

impl<'p> Repairs<'p> {
    fn new(program: &'p Program, available: &'p [usize]) -> Self {
        Repairs { program, available, left: REPAIR_TOTAL_WORK, complete: true, models: vec![], hosts_needed: None }
    }

    fn variant(&mut self, q: &Program, hosts: &[usize], parsimony: bool) -> Result<Verdict, SolveError> {
        let (v, used) = undecided_at_limit(verdict(q, hosts, REPAIR_VARIANT_WORK.min(self.left), parsimony))?;
        self.left = self.left.saturating_sub(used);
        if matches!(v, Verdict::Unknown) {
            self.complete = false;
        }
        Ok(v)
    }

    fn without(&self, drop: &[usize]) -> Program {
        let mut q = self.program.clone();
        q.clauses = (0..self.program.clauses.len())
            .filter(|i| !drop.contains(i))
            .map(|i| self.program.clauses[i].clone())
            .collect();
        q
    }

    fn search(&mut self, conflict: &Conflict) -> Result<Vec<Repair>, SolveError> {
        let mut found = vec![];
        // Single clauses dropped; the cores that remain guide larger sets.
        let mut frontier: Vec<(Vec<usize>, Vec<usize>)> = vec![];
        for &c in &conflict.clauses {
            let q = self.without(&[c]);
            match self.variant(&q, self.available, true)? {
                Verdict::Sat(m) => {
                    found.push(Repair::DropClause(c));
                    if let Some(m) = m {
                        self.models.push((c, q, m));
                    }
                }
                Verdict::Unsat(core, _) => frontier.push((vec![c], self.map_core(&[c], &core))),
                Verdict::Unknown => {}
            }
        }
        if found.is_empty() && self.complete {
            found.extend(self.correction_sets(frontier)?);
        }
        for r in &conflict.resources {
            if let Some(rep) = self.raise(*r)? {
                found.push(rep);
            }
        }
        found.extend(self.hosts()?);
        Ok(found)
    }

    /// Clause indices of the original goal for a core of `without(drop)`.
    fn map_core(&self, drop: &[usize], core: &[usize]) -> Vec<usize> {
        let kept: Vec<usize> = (0..self.program.clauses.len()).filter(|i| !drop.contains(i)).collect();
        core.iter().filter_map(|&i| kept.get(i).copied()).collect()
    }

    /// The smallest sets of clauses (2 up to [`MAX_DROP`]) whose removal makes
    /// the goal satisfiable: each set extends a smaller one by a clause of
    /// the core that remains after it, which every correction must hit.
    fn correction_sets(&mut self, mut frontier: Vec<(Vec<usize>, Vec<usize>)>) -> Result<Vec<Repair>, SolveError> {
        let mut tried: BTreeSet<Vec<usize>> = frontier.iter().map(|(d, _)| d.clone()).collect();
        for _size in 2..=MAX_DROP {
            let mut found = vec![];
            let mut next = vec![];
            for (drop, core) in &frontier {
                for &k in core {
                    let mut d = drop.clone();
                    d.push(k);
                    d.sort();
                    if !tried.insert(d.clone()) {
                        continue;
                    }
                    if self.left == 0 {
                        self.complete = false;
                        return Ok(found);
                    }
                    let q = self.without(&d);
                    match self.variant(&q, self.available, false)? {
                        Verdict::Sat(_) => found.push(Repair::DropClauses(d)),
                        Verdict::Unsat(core, _) => {
                            let core = self.map_core(&d, &core);
                            next.push((d, core));
                        }
                        Verdict::Unknown => return Ok(found),
                    }
                }
            }
            if !found.is_empty() || next.is_empty() {
                return Ok(found);
            }
            frontier = next;
        }
        Ok(vec![])
    }

    /// The least `n` in 1..=`limit` for which `make(n)` is satisfiable
    /// (assuming more never hurts): `limit` first (when it fails, nothing
    /// smaller can work), then doubling from 1, then bisection.
    fn least(&mut self, limit: u32, make: &dyn Fn(u32) -> (Program, Vec<usize>)) -> Result<Option<u32>, SolveError> {
        if limit == 0 {
            return Ok(None);
        }
        let (q, hosts) = make(limit);
        if !matches!(self.variant(&q, &hosts, false)?, Verdict::Sat(_)) {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0u32, limit);
        let mut n = 1;
        while n < hi {
            let (q, hosts) = make(n);
            match self.variant(&q, &hosts, false)? {
                Verdict::Sat(_) => {
                    hi = n;
                    break;
                }
                Verdict::Unsat(..) => lo = n,
                Verdict::Unknown => return Ok(Some(hi)),
            }
            n *= 2;
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let (q, hosts) = make(mid);
            match self.variant(&q, &hosts, false)? {
                Verdict::Sat(_) => hi = mid,
                Verdict::Unsat(..) => lo = mid,
                Verdict::Unknown => break,
            }
        }
        Ok(Some(hi))
    }

    /// The least raise of one resource limit that repairs the goal.
    fn raise(&mut self, r: Resource) -> Result<Option<Repair>, SolveError> {
        let p = self.program;
        let hosts = self.available.to_vec();
        Ok(match r {
            Resource::PortCapacity(c, i) => {
                let cap = p.components[c].ports[i].capacity.unwrap_or(0);
                let make = |n: u32| {
                    let mut q = p.clone();
                    let port = &mut q.components[c].ports[i];
                    port.capacity = Some(cap + n);
                    port.variadic = true;
                    (q, hosts.clone())
                };
                self.least(MAX_RAISE, &make)?.map(|n| Repair::RaiseCapacity(c, i, cap + n))
            }
            Resource::MaxInstances(c) => {
                let m = p.components[c].maxinstances.unwrap_or(0);
                let make = |n: u32| {
                    let mut q = p.clone();
                    q.components[c].maxinstances = Some(m + n);
                    (q, hosts.clone())
                };
                self.least(MAX_RAISE, &make)?.map(|n| Repair::RaiseMaxInstances(c, m + n))
            }
            Resource::Placement(c) => {
                let m = p.components[c].maxperhost;
                let make = |n: u32| {
                    let mut q = p.clone();
                    q.components[c].maxperhost = m + n;
                    (q, hosts.clone())
                };
                self.least(MAX_RAISE, &make)?.map(|n| Repair::RaiseMaxPerHost(c, m + n))
            }
        })
    }

    /// More hosts like a declared one: for each kind of host (hosts that
    /// differ in the attributes the goal reads), the fewest clones that
    /// suffice; the kind that needs fewest wins (the first declared on a tie).
    fn hosts(&mut self) -> Result<Vec<Repair>, SolveError> {
        let p = self.program;
        let limit = (2 * self.available.len()).max(4) as u32;
        if self.available.is_empty() {
            // Nothing to clone: hosts without attributes, if the goal reads none.
            if p.hosts.iter().any(|h| !h.attrs.is_empty()) || !host_attrs_read(p).is_empty() {
                return Ok(vec![]);
            }
            let make = |n: u32| {
                let mut q = p.clone();
                let mut hosts = vec![];
                for i in 0..n {
                    hosts.push(q.hosts.len());
                    q.hosts.push(Host { name: format!("new{}", i + 1), loc: Loc::default(), attrs: vec![] });
                }
                (q, hosts)
            };
            return Ok(self.least(limit, &make)?.map(|n| Repair::DeclareHosts(n as usize)).into_iter().collect());
        }
        let mut best: Option<(u32, HostId)> = None;
        let kinds = host_kinds(p, self.available);
        let complete_before = self.complete;
        for &like in kinds.iter().take(MAX_HOST_KINDS) {
            let cap = match best {
                Some((1, _)) => break,
                Some((n, _)) => n - 1,
                None => limit,
            };
            let available = self.available;
            let make = |n: u32| {
                let mut q = p.clone();
                let mut hosts = available.to_vec();
                for i in 0..n {
                    let mut h = p.hosts[like].clone();
                    h.name = format!("{}#clone{}", h.name, i + 1);
                    hosts.push(q.hosts.len());
                    q.hosts.push(h);
                }
                (q, hosts)
            };
            if let Some(n) = self.least(cap, &make)? {
                best = Some((n, like));
            }
            if self.left == 0 {
                break;
            }
        }
        if let (Some((n, _)), [_], true) = (best, kinds.as_slice(), complete_before && self.complete) {
            self.hosts_needed = Some(self.available.len() + n as usize);
        }
        Ok(best.map(|(n, like)| Repair::AddHosts { like, count: n as usize }).into_iter().collect())
    }
}

/// Host attribute names the goal's clauses read.
fn host_attrs_read(p: &Program) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for c in &p.clauses {
        walk(&c.formula, &mut |_| {}, &mut |t| {
            if let TermKind::HostAttr(_, a) = &t.kind {
                out.insert(a.clone());
            }
        });
    }
    out
}

/// One available host of each kind: hosts with the same values of the
/// attributes the goal reads are interchangeable for cloning.
fn host_kinds(p: &Program, available: &[usize]) -> Vec<HostId> {
    let read = host_attrs_read(p);
    let mut seen: BTreeMap<Vec<Option<Value>>, HostId> = BTreeMap::new();
    let mut out = vec![];
    for &h in available {
        let key: Vec<Option<Value>> = read.iter().map(|a| p.hosts[h].attr(a).cloned()).collect();
        if let std::collections::btree_map::Entry::Vacant(e) = seen.entry(key) {
            e.insert(h);
            out.push(h);
        }
    }
    out
}
