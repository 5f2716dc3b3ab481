//! Solving: a Z3 session over a [`Ground`] goal. The only module that imports `z3`.
//!
//! Encoding (each choice is documented where it is made):
//! * a Boolean per instance slot (present) and per candidate channel;
//! * channel → both end slots present; a port of capacity k (`p` is 1,
//!   `p[N]` is N) has at most k channels: Z3 pseudo-Boolean `at-most`;
//!   `maxinstances` likewise; `maxperhost` is the number of slots;
//! * symmetry breaking among a host's slots of one component (slot k+1 only
//!   if slot k), under an assumption so parsimony can ignore it;
//! * every clause in force behind its own assumption literal, so an
//!   unsatisfiable goal yields a core of clauses;
//! * ground nodes map one-to-one to Z3 terms (hash-consed in `lower`);
//! * `reachable(a, b)` where it must hold (positive polarity): a literal
//!   enforced lazily by *cuts* (counterexample-guided): after each model, a
//!   breadth-first search finds the slots `a` reaches; if `b` is not among
//!   them, "some present channel leaves that set" is added and the solver
//!   runs again. Cuts follow from the literal, so they never remove a real
//!   solution, and the encoding stays propositional (no integer ranks).
//!   If cuts do not converge within a few dozen rounds (refuting
//!   reachability can need exponentially many), the remaining literals get
//!   an exact *support* encoding with integer ranks instead.
//!   Where it must not hold (negative polarity): a *closure* from `a`
//!   (reached and channel ⇒ reached), so an unreached node has no path;
//! * strong connectivity (`forall T a, b (reachable(a, b))`) is one literal
//!   with the same cuts for every cluster of the model that fails to reach,
//!   or be reached from, the other present T slots: O(edges) per round
//!   instead of one reachability problem per ordered pair.
//!
//! Parsimony (language.md §6): after a model is found, parts are removed one
//! at a time while every clause still holds, evaluated incrementally on the
//! ground form ([`GroundState`]) without further solver calls, until no
//! single channel, and no single instance with its channels, can go.

pub mod checked;
mod error;
pub mod explain;
pub mod optimize;
pub mod output;
pub mod resolve;
mod work;

pub use checked::CheckedDeployment;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use z3::ast::{Bool, Int};
use z3::{Params, SatResult, Solver};

use crate::budget::{Budget, LimitHit};
use crate::check::ir::{CompId, Program};
use crate::lower::bounds::{CountFact, Resource};
use crate::lower::state::GroundState;
use crate::lower::{self, ChanId, ChannelScope, Ground, Limits, LowerError, Node, NodeId, PbOp, SlotId};

/// What to solve for.
#[derive(Debug, Clone)]
pub struct Options {
    /// Give up after this long (exit 3).
    pub timeout: Option<Duration>,
    /// Remove superfluous instances and channels (the default; `--any` turns it off).
    pub parsimony: bool,
    /// How many distinct configurations to return at most.
    pub count: usize,
    pub limits: Limits,
    /// Optimise the goal's objectives and preferences (issue 19); off for
    /// analyses that only need some configuration (`explain`'s repairs).
    pub optimise: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: None, parsimony: true, count: 1, limits: Limits::default(), optimise: true }
    }
}

/// A configuration found by the solver: present slots and channels of a grounding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    pub slots: Vec<SlotId>,
    pub chans: Vec<ChanId>,
}

/// How solving ended.
#[derive(Debug)]
pub enum Outcome {
    /// One or more configurations (at most `count`), over this grounding,
    /// and their DDDs, each checked by the independent evaluator (in the
    /// order of `solutions`; no goal name or SHA-256 set: see
    /// [`CheckedDeployment::with_goal`]).
    Sat { ground: Box<Ground>, solutions: Vec<Solution>, deployments: Vec<CheckedDeployment> },
    /// No configuration: the clauses (indices into `program.clauses`) and
    /// resource limits of an unsatisfiable core (not minimised here; see
    /// [`explain`]), and the counting facts the refutation used, if it was
    /// found by counting.
    Unsat { core: Vec<usize>, resources: Vec<Resource>, facts: Vec<CountFact> },
    /// The solver gave up (timeout or incompleteness).
    Unknown(String),
    /// The solver's model contradicts the ground goal: a bug.
    Internal(String),
    /// The independent evaluator rejected a configuration the solver found
    /// (internal-error diagnostics, E0901): a bug, and no DDD.
    Rejected(Vec<crate::diagnostics::Diagnostic>),
}

/// Sizes and timings, for progress and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub slots: usize,
    pub channels: usize,
    pub ground_nodes: usize,
    pub ground_time: Duration,
    pub solve_time: Duration,
    pub minimise_time: Duration,
    /// Whether the full channel scope was needed.
    pub full_scope: bool,
    /// Passes over the parts while minimising.
    pub minimise_steps: usize,
    /// Rounds of reachability cuts added.
    pub cut_rounds: usize,
    /// Whether the answer came from the local channel scope.
    pub local: bool,
    /// Whether a local attempt failed and the exact scope was used.
    pub local_fallback: bool,
    /// Whether counting alone refuted the goal (no grounding needed).
    pub by_counting: bool,
    /// With objectives or preferences: what was optimised, and how far (issue 19).
    pub optimum: Option<optimize::Report>,
}

/// Goals whose hosts² × components exceed this try a local channel scope first.
const LOCAL_THRESHOLD: usize = 4_000;
/// Rounds of reachability cuts in one check before the exact encoding is used.
const MAX_CUT_ROUNDS: usize = 30;
/// How far apart (in host order) two slots may be for a local channel;
/// goals with no more than 4 × this many hosts use the exact scope at once.
const LOCAL_RADIUS: usize = 8;
/// The radius of the first local attempt. Small: the time and memory of an
/// attempt grow with its channels (hosts × radius), and an attempt that
/// finds no configuration only doubles the radius (a 5,000-host P2P goal:
/// 13 s of CPU and 0.65 GB at radius 2, 42 s and 1.5 GB at radius 8).
pub(crate) const LOCAL_FIRST_RADIUS: usize = 2;
/// Above this many hosts, a local attempt is not cut short at 30 s.
const LOCAL_UNCAPPED: usize = 1_500;

/// Progress callbacks: a phase starts, with a size description.
pub trait Progress {
    fn phase(&mut self, _name: &str, _detail: &str) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Why solving could not start.
#[derive(Debug)]
pub enum SolveError {
    Lower(LowerError),
    /// A coefficient or bound beyond Z3's 32-bit pseudo-Boolean constraints.
    Overflow,
    /// A limit of the run (time, memory, cancellation) was reached where no
    /// outcome could be given (the solver's allocations failed).
    Stopped(crate::budget::LimitHit),
}

impl From<LowerError> for SolveError {
    fn from(e: LowerError) -> Self {
        SolveError::Lower(e)
    }
}

/// Grounds and solves a goal over the given available hosts. Each call uses
/// a fresh Z3 context, so its answer does not depend on earlier calls in the
/// same process. Every configuration returned is checked by the independent
/// evaluator ([`checked`]); a disagreement is [`Outcome::Rejected`].
pub fn solve(
    program: &Program,
    available: &[usize],
    opts: &Options,
    progress: &mut (dyn Progress + Send + Sync),
) -> Result<(Outcome, Stats), SolveError> {
    let (outcome, stats) = decide(program, available, opts, progress)?;
    let t = Instant::now();
    let outcome = checked::outcome(program, outcome, opts.parsimony);
    if std::env::var_os("DELADAS_DEBUG").is_some() {
        eprintln!("evaluator check: {:?}", t.elapsed());
    }
    Ok((outcome, stats))
}

/// [`solve`] for a yes/no answer only: `Sat` carries the solutions but no
/// deployments (none is made, so none is checked). For analyses on goals
/// that need not be deployable, e.g. with port capacities lifted.
pub fn decide(
    program: &Program,
    available: &[usize],
    opts: &Options,
    progress: &mut (dyn Progress + Send + Sync),
) -> Result<(Outcome, Stats), SolveError> {
    let budget = Arc::new(Budget::new(opts.timeout));
    in_fresh_context(budget, || solve_in_context(program, available, opts, progress))
}

/// Runs `f` on a new thread, whose thread-local Z3 context is created on
/// first use: one fresh context per call (cheaper than `z3::with_z3_config`,
/// which also materialises the calling thread's default context).
///
/// The run keeps `budget`: it is installed on the thread (see
/// [`crate::budget::check`]), and a watchdog thread interrupts Z3 once a
/// limit is reached. A panic that a reached limit explains (Z3's
/// allocations fail at its memory cap) becomes [`SolveError::Stopped`].
pub(crate) fn in_fresh_context<R: Send>(
    budget: Arc<Budget>,
    f: impl FnOnce() -> Result<R, SolveError> + Send,
) -> Result<R, SolveError> {
    configure_z3();
    std::thread::scope(|scope| {
        let b = budget.clone();
        let handle = std::thread::Builder::new()
            .name("deladas-solve".into())
            .stack_size(64 << 20)
            .spawn_scoped(scope, move || {
                crate::budget::install(b.clone());
                let ctx = z3::Context::thread_local();
                let done = std::sync::atomic::AtomicBool::new(false);
                let z3 = ctx.handle();
                std::thread::scope(|inner| {
                    let (wb, wd, wz) = (&b, &done, &z3);
                    let watchdog = std::thread::Builder::new()
                        .name("deladas-watchdog".into())
                        .spawn_scoped(inner, move || crate::budget::watch(wb, wd, &|| wz.interrupt()))
                        .ok();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                    if std::env::var_os("DELADAS_DEBUG").is_some() {
                        eprintln!("run returned at {:?} (limit: {:?})", b.elapsed(), b.hit());
                    }
                    if done.swap(true, std::sync::atomic::Ordering::AcqRel) {
                        // The watchdog found the run overran its limit and
                        // ends the process (`budget::on_overrun`).
                        loop {
                            std::thread::park();
                        }
                    }
                    if let Some(w) = &watchdog {
                        w.thread().unpark();
                    }
                    r
                })
            })
            .map_err(|_| {
                // No room for the solver thread's stack: memory (or `ulimit -v`) is exhausted.
                let used = crate::budget::memory_in_use().map_or(0, |m| m.1);
                SolveError::Stopped(LimitHit::Memory {
                    phase: "starting the solver",
                    used,
                    limit: crate::budget::memory_limit(),
                })
            });
        let handle = match handle {
            Ok(h) => h,
            Err(e) => return Err(e),
        };
        let joined = handle.join();
        if std::env::var_os("DELADAS_DEBUG").is_some() {
            eprintln!("solver thread joined at {:?}", budget.elapsed());
        }
        match joined {
            Ok(Ok(r)) => r,
            Ok(Err(panic)) | Err(panic) => match budget.explain_panic() {
                Some(hit) => Err(SolveError::Stopped(hit)),
                None => std::panic::resume_unwind(panic),
            },
        }
    })
}

/// With `DELADAS_DEBUG`: when (since the run started) a step of a stopped run ended.
fn debug_mark(what: &str) {
    if std::env::var_os("DELADAS_DEBUG").is_some() {
        if let Some(b) = crate::budget::current() {
            eprintln!("{what} at {:?}", b.elapsed());
        }
    }
}

/// The outcome of a run whose limit was reached: "unknown", naming the limit.
/// The ground goal evaluated on a solver's model, which must satisfy it: a
/// cheap cross-check of the encoding before anything is built on it.
fn model_state<'g>(g: &'g Ground, sol: &Solution) -> Result<GroundState<'g>, Outcome> {
    let state = GroundState::new(g, &sol.slots, &sol.chans);
    if state.all_clauses_hold() {
        Ok(state)
    } else if let Err(hit) = crate::budget::check() {
        // A limit that interrupted Z3 while the model was read makes its
        // evaluations fail (read as false): that is the limit, not a bug.
        Err(stopped_outcome(hit))
    } else {
        Err(Outcome::Internal(format!("the solver's model violates ground clauses {:?}", state.false_clauses())))
    }
}

/// Why a model cannot be read: the limit that interrupted the solver, if
/// one did, else [`LimitHit::ModelUnreadable`].
fn unreadable() -> LimitHit {
    crate::budget::hit().unwrap_or(LimitHit::ModelUnreadable { phase: crate::budget::phase() })
}

/// A Boolean's value in a model; a failed evaluation is [`unreadable`],
/// never "false".
fn read_bool(m: &z3::Model, b: &Bool) -> Result<bool, LimitHit> {
    m.eval(b, true).and_then(|v| v.as_bool()).ok_or_else(unreadable)
}

/// Whether a configuration found for `--count` is new up to renumbering.
enum Fresh {
    New,
    Repeat,
    /// So many repeats that no new configuration is likely: stop looking.
    GiveUp,
}

/// The signatures of the configurations found so far, and how many found
/// again (instances of one component on one host are interchangeable, so a
/// configuration that only renumbers them is not a new one).
struct Seen {
    signatures: Vec<Signature>,
    repeats: usize,
    count: usize,
}

impl Seen {
    fn new(count: usize) -> Self {
        Seen { signatures: vec![], repeats: 0, count }
    }

    fn add(&mut self, sig: Signature) -> Fresh {
        if !self.signatures.contains(&sig) {
            self.signatures.push(sig);
            return Fresh::New;
        }
        self.repeats += 1;
        if self.repeats > 10 * self.count.max(1) {
            Fresh::GiveUp
        } else {
            Fresh::Repeat
        }
    }
}

fn stopped_outcome(hit: LimitHit) -> Outcome {
    Outcome::Unknown(hit.to_string())
}

/// Refutes a goal by counting alone, before grounding: one integer per
/// component, bounded by its slots, and the implied facts of
/// `lower::bounds`. Unsatisfiable here means unsatisfiable (the facts follow
/// from the clauses); the core names the clauses the argument used.
fn counting_precheck(program: &Program, available: &[usize]) -> Option<(Vec<usize>, Vec<Resource>, Vec<CountFact>)> {
    let facts = lower::bounds::derive_on(program, available);
    if facts.iter().all(|f| f.from.is_empty()) {
        return None;
    }
    let mut resources: Vec<Resource> = facts.iter().flat_map(|f| f.resources.iter().copied()).collect();
    resources.sort();
    resources.dedup();
    let res_lits: Vec<Bool> = (0..resources.len()).map(|i| Bool::new_const(format!("res!{i}"))).collect();
    let solver = quiet_solver();
    let counts: Vec<Int> = (0..program.components.len()).map(|c| Int::new_const(format!("n{c}"))).collect();
    for n in &counts {
        solver.assert(n.ge(Int::from_i64(0)));
    }
    let lits: Vec<Bool> = (0..program.clauses.len()).map(|i| Bool::new_const(format!("clause!{i}"))).collect();
    for f in &facts {
        let terms: Vec<Int> = f.terms.iter().map(|&(c, k)| &counts[c] * Int::from_i64(k)).collect();
        let fact = fact_formula(&Int::add(&terms), f.op, f.k);
        let mut guards: Vec<&Bool> = f.from.iter().map(|&i| &lits[i]).collect();
        for r in &f.resources {
            if let Ok(i) = resources.binary_search(r) {
                guards.push(&res_lits[i]);
            }
        }
        if guards.is_empty() {
            solver.assert(&fact);
        } else {
            solver.assert(Bool::and(&guards).implies(&fact));
        }
    }
    // Within a work bound (explain), that bound replaces the clock.
    if !work::metered() {
        let mut p = Params::new();
        p.set_u32("timeout", 2000);
        solver.set_params(&p);
    }
    let mut assumptions = lits.clone();
    assumptions.extend(res_lits.iter().cloned());
    match work::check(&solver, &assumptions) {
        SatResult::Unsat => {
            let (core, res) = parse_core(&solver.get_unsat_core(), &resources);
            // The facts the argument can have used: those within the core.
            let used = facts
                .into_iter()
                .filter(|f| f.from.iter().all(|i| core.contains(i)) && f.resources.iter().all(|r| res.contains(r)))
                .collect();
            Some((core, res, used))
        }
        _ => None,
    }
}

/// A solver that leaves SIGINT alone: Ctrl-C is the command's to handle
/// (it cancels the whole run), not a way to make one check answer "unknown".
fn quiet_solver() -> Solver {
    let solver = Solver::new();
    let mut p = Params::new();
    p.set_bool("ctrl_c", false);
    solver.set_params(&p);
    solver
}

/// Splits an unsat core of assumption literals into clause indices and resources.
fn parse_core(core: &[Bool], resources: &[Resource]) -> (Vec<usize>, Vec<Resource>) {
    let mut clauses = vec![];
    let mut res = vec![];
    for b in core {
        let name = b.to_string();
        if let Some(i) = name.strip_prefix("clause!").and_then(|s| s.parse::<usize>().ok()) {
            clauses.push(i);
        } else if let Some(i) = name.strip_prefix("res!").and_then(|s| s.parse::<usize>().ok()) {
            if let Some(r) = resources.get(i) {
                res.push(*r);
            }
        }
    }
    clauses.sort();
    res.sort();
    (clauses, res)
}

fn fact_formula(lhs: &Int, op: crate::check::ir::CmpOp, k: i64) -> Bool {
    use crate::check::ir::CmpOp;
    let k = Int::from_i64(k);
    match op {
        CmpOp::Eq => lhs.eq(&k),
        CmpOp::Le => lhs.le(&k),
        CmpOp::Ge => lhs.ge(&k),
        CmpOp::Lt => lhs.lt(&k),
        CmpOp::Gt => lhs.gt(&k),
        CmpOp::Ne => lhs.eq(&k).not(),
    }
}

fn solve_in_context(
    program: &Program,
    available: &[usize],
    opts: &Options,
    progress: &mut (dyn Progress + Send + Sync),
) -> Result<(Outcome, Stats), SolveError> {
    let mut stats = Stats::default();
    let r = solve_scoped(program, available, opts, progress, &mut stats);
    // A limit reached anywhere (grounding, a solver call, parsimony) ends
    // the run with "unknown", naming the limit; so does a grounding
    // stopped by it.
    match r {
        Err(SolveError::Lower(LowerError::Stopped(hit))) | Err(SolveError::Stopped(hit)) => {
            Ok((stopped_outcome(hit), stats))
        }
        Ok(Outcome::Sat { .. } | Outcome::Unknown(_)) if crate::budget::stopped() => {
            Ok((stopped_outcome(crate::budget::hit().unwrap_or(LimitHit::Cancelled { phase: "solving" })), stats))
        }
        Ok(o) => Ok((o, stats)),
        Err(e) => Err(e),
    }
}

fn solve_scoped(
    program: &Program,
    available: &[usize],
    opts: &Options,
    progress: &mut (dyn Progress + Send + Sync),
    stats: &mut Stats,
) -> Result<Outcome, SolveError> {
    let deadline = match (opts.timeout.map(|t| Instant::now() + t), crate::budget::deadline()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    crate::budget::set_phase("counting");
    if let Some((core, resources, facts)) = counting_precheck(program, available) {
        stats.by_counting = true;
        return Ok(Outcome::Unsat { core, resources, facts });
    }
    // Large goals first try channels between nearby hosts only: cheap, and a
    // configuration found that way is a real one. The scope grows only when
    // it must: an unsatisfiable answer over a local scope proves nothing, so
    // the radius doubles, up to the exact sparse scope. Each attempt has the
    // whole time left (at most 30 s while the scope is local), so a goal
    // solved within N s without a limit is solved the same way with any
    // limit above N; and memory grows with the channels considered, not
    // with hosts².
    let full_size: usize = available.len() * available.len() * program.components.len().max(1);
    // `DELADAS_LOCAL_RADIUS` overrides the first radius (for measurements).
    let radius = std::env::var("DELADAS_LOCAL_RADIUS")
        .ok()
        .and_then(|r| r.parse::<usize>().ok())
        .filter(|&r| r > 0)
        .unwrap_or(LOCAL_FIRST_RADIUS);
    let mut scope = if full_size > LOCAL_THRESHOLD && available.len() > 4 * radius.max(LOCAL_RADIUS) {
        ChannelScope::Local(radius)
    } else {
        ChannelScope::Sparse
    };
    loop {
        crate::budget::check().map_err(SolveError::Stopped)?;
        progress.phase("grounding", "");
        crate::budget::set_phase("grounding");
        let t0 = Instant::now();
        let ground = lower::lower(program, available, scope, opts.limits)?;
        stats.ground_time += t0.elapsed();
        stats.slots = ground.slots.len();
        stats.channels = ground.chans.len();
        stats.ground_nodes = ground.size();
        stats.full_scope = scope == ChannelScope::Full;
        progress.phase(
            "solving",
            &format!(
                "{} slots, {} channel variables, {} ground nodes",
                stats.slots, stats.channels, stats.ground_nodes
            ),
        );
        crate::budget::set_phase("solving");
        let t1 = Instant::now();
        let mut s = match Session::new(&ground) {
            Ok(s) => s,
            Err(e) => {
                if crate::budget::exit_after_stop() && crate::budget::stopped() {
                    std::mem::forget(ground);
                }
                return Err(e);
            }
        };
        let local = matches!(scope, ChannelScope::Local(_));
        // Beyond LOCAL_UNCAPPED hosts the exact scope is too large to ground
        // anyway (hosts² channels): the local attempt keeps all the time.
        let attempt_deadline = if local && available.len() <= LOCAL_UNCAPPED && !work::metered() {
            let cap = Instant::now() + Duration::from_secs(30);
            Some(deadline.map_or(cap, |d| d.min(cap)))
        } else {
            deadline
        };
        let t_built = t1.elapsed();
        let outcome = s.run(opts, attempt_deadline, stats, progress);
        if crate::budget::stopped() {
            debug_mark("solver call returned");
            if crate::budget::exit_after_stop() {
                // The process ends next: freeing a large solver costs
                // time after the limit, for nothing.
                std::mem::forget(s);
                std::mem::forget(ground);
            } else {
                drop(s);
                drop(ground);
            }
            debug_mark("session and grounding freed");
            crate::budget::check().map_err(SolveError::Stopped)?;
            return Err(SolveError::Stopped(LimitHit::Cancelled { phase: "solving" }));
        }
        if std::env::var_os("DELADAS_DEBUG").is_some() {
            eprintln!(
                "scope {scope:?}: ground {:?} ({} slots, {} channels, {} nodes), terms {:?}, run {:?} \
                 (minimise {:?}, {} cut rounds): {}",
                t0.elapsed().saturating_sub(t1.elapsed()),
                stats.slots,
                stats.channels,
                stats.ground_nodes,
                t_built,
                t1.elapsed().saturating_sub(t_built),
                stats.minimise_time,
                s.cut_rounds.get(),
                match &outcome {
                    Outcome::Sat { .. } => "sat",
                    Outcome::Unsat { .. } => "unsat",
                    Outcome::Unknown(_) => "unknown",
                    _ => "other",
                }
            );
        }
        crate::budget::check().map_err(SolveError::Stopped)?;
        if let (ChannelScope::Local(r), false) = (scope, matches!(outcome, Outcome::Sat { .. } | Outcome::Internal(_)))
        {
            if std::env::var_os("DELADAS_DEBUG").is_some() {
                eprintln!(
                    "local attempt (radius {r}): {outcome:?} after {:?}, {} cut rounds",
                    t1.elapsed(),
                    s.cut_rounds.get()
                );
            }
            stats.local_fallback = true;
            stats.cut_rounds += s.cut_rounds.get();
            // A work bound (explain's checks) used up by the local attempt:
            // the exact scope would only be grounded (hosts² channels,
            // gigabytes at 1,000 hosts) to answer "unknown" at once.
            if work::used_up() && matches!(outcome, Outcome::Unknown(_)) {
                return Ok(outcome);
            }
            // Unsatisfiable within the radius: a wider one; out of the
            // local attempt's time: the exact scope.
            scope = if matches!(outcome, Outcome::Unsat { .. }) && 4 * (2 * r + 1) < available.len() {
                ChannelScope::Local(2 * r)
            } else {
                ChannelScope::Sparse
            };
            continue;
        }
        stats.local = local;
        stats.cut_rounds += s.cut_rounds.get();
        stats.solve_time += t1.elapsed().saturating_sub(stats.minimise_time);
        // A sparse channel scope is exact unless an unsatisfiable core relies
        // on `reachable` (paths might need channels the scope left out).
        if let Outcome::Unsat { core, .. } = &outcome {
            if scope == ChannelScope::Sparse
                && ground.sparse_left_out
                && core.iter().any(|&c| s.mentions_reach(ground.clauses[c]))
            {
                scope = ChannelScope::Full;
                continue;
            }
        }
        drop(s);
        let outcome = match outcome {
            Outcome::Sat { solutions, .. } => Outcome::Sat { ground: Box::new(ground), solutions, deployments: vec![] },
            other => other,
        };
        return Ok(outcome);
    }
}

/// A configuration up to renumbering of interchangeable slots: per instance,
/// (component, host, sorted (port, partner component, partner host, partner port)).
type Signature = Vec<(usize, usize, Vec<(usize, usize, usize, usize)>)>;

/// A reachability literal whose meaning is enforced by cuts.
enum Lazy {
    Reach { lit: Bool, from: SlotId, to: SlotId },
    StronglyConnected { lit: Bool, comp: CompId },
}

struct Session<'g> {
    g: &'g Ground,
    solver: Solver,
    present: Vec<Bool>,
    chans: Vec<Bool>,
    cache: Vec<Option<Bool>>,
    /// Bit 0: occurs positively; bit 1: negatively.
    polarity: Vec<u8>,
    clause_lits: Vec<Bool>,
    /// Resource limits, each under its own assumption literal.
    resources: Vec<Resource>,
    resource_lits: Vec<Bool>,
    sym: Bool,
    closure: HashMap<SlotId, Vec<Bool>>,
    /// Reachability literals checked lazily against each model.
    lazy: Vec<Lazy>,
    slot_chans: Vec<Vec<ChanId>>,
    cut_rounds: std::cell::Cell<usize>,
    reach_memo: HashMap<NodeId, bool>,
    /// Availability literal of each host, when the grounding has them.
    host_up: HashMap<usize, Bool>,
    /// Ground nodes turned into solver terms so far (the budget is checked every few thousand).
    built: usize,
    /// Per source slot, the slots a path may reach at all (see [`Session::may_reach`]).
    static_reach: HashMap<SlotId, Vec<bool>>,
    /// Per slot, the moves along candidate channels: (own port, next slot, its port).
    moves: Vec<Vec<(crate::check::ir::PortId, SlotId, crate::check::ir::PortId)>>,
}

fn i32_of(x: i64) -> Result<i32, SolveError> {
    i32::try_from(x).map_err(|_| SolveError::Overflow)
}

impl<'g> Session<'g> {
    fn new(g: &'g Ground) -> Result<Self, SolveError> {
        let solver = quiet_solver();
        let present: Vec<Bool> = (0..g.slots.len()).map(|i| Bool::new_const(format!("p{i}"))).collect();
        let chans: Vec<Bool> = (0..g.chans.len()).map(|i| Bool::new_const(format!("c{i}"))).collect();
        let mut s = std::mem::ManuallyDrop::new(Session {
            g,
            solver,
            present,
            chans,
            cache: vec![None; g.nodes.len()],
            polarity: vec![0; g.nodes.len()],
            clause_lits: vec![],
            resources: vec![],
            resource_lits: vec![],
            sym: Bool::new_const("sym!"),
            closure: HashMap::new(),
            lazy: vec![],
            slot_chans: crate::lower::state::slot_channels(g),
            cut_rounds: std::cell::Cell::new(0),
            reach_memo: HashMap::new(),
            host_up: if g.host_lits {
                g.hosts.iter().map(|&h| (h, Bool::new_const(format!("up!{h}")))).collect()
            } else {
                HashMap::new()
            },
            built: 0,
            static_reach: HashMap::new(),
            moves: vec![],
        });
        match s.assert_goal() {
            Ok(()) => Ok(std::mem::ManuallyDrop::into_inner(s)),
            // Stopped by a limit in a process that ends next: freeing the
            // terms built so far one by one would only delay the exit.
            Err(e) if crate::budget::exit_after_stop() && crate::budget::stopped() => Err(e),
            Err(e) => {
                drop(std::mem::ManuallyDrop::into_inner(s));
                Err(e)
            }
        }
    }

    /// Asserts the structure, the fixed parts and the ground clauses.
    fn assert_goal(&mut self) -> Result<(), SolveError> {
        let g = self.g;
        self.structure()?;
        // A neighbourhood's fixed parts (constants in the ground clauses).
        for (i, f) in g.fixed_slots.iter().enumerate() {
            if let Some(b) = f {
                self.solver.assert(if *b { self.present[i].clone() } else { self.present[i].not() });
            }
        }
        for &c in &g.fixed_chans {
            self.solver.assert(&self.chans[c as usize]);
        }
        self.compute_polarity();
        crate::budget::check().map_err(SolveError::Stopped)?;
        for (i, &root) in g.clauses.iter().enumerate() {
            let lit = Bool::new_const(format!("clause!{i}"));
            let f = self.node(root)?;
            self.solver.assert(lit.implies(&f));
            self.clause_lits.push(lit);
        }
        // Counting facts are refuted up front by `counting_precheck`; in the
        // main session their integer sums only slow the search down.
        let _ = Session::count_facts;
        Ok(())
    }

    /// The availability literal of a host (true when hosts have none).
    fn host_up(&self, h: usize) -> Bool {
        self.host_up.get(&h).cloned().unwrap_or_else(|| Bool::from_bool(true))
    }

    /// The rules every configuration obeys (language.md §6).
    fn structure(&mut self) -> Result<(), SolveError> {
        let g = self.g;
        // An instance runs only on a host that is up.
        if g.host_lits {
            for (i, slot) in g.slots.iter().enumerate() {
                self.solver.assert(self.present[i].implies(self.host_up(slot.host)));
            }
        }
        // The budget is checked every few thousand terms here too: a large
        // grounding spends a while in these loops.
        let check = |i: usize| -> Result<(), SolveError> {
            if i % 2048 == 0 {
                crate::budget::check().map_err(SolveError::Stopped)?;
            }
            Ok(())
        };
        for (i, c) in g.chans.iter().enumerate() {
            check(i)?;
            let ends = Bool::and(&[&self.present[c.from.slot as usize], &self.present[c.to.slot as usize]]);
            self.solver.assert(self.chans[i].implies(&ends));
        }
        // Port capacities, one assumption literal per component port.
        for (i, (end, chans)) in g.incident().into_iter().enumerate() {
            check(i)?;
            let comp = g.slots[end.slot as usize].comp;
            if let Some(cap) = self.port_capacity(end) {
                if chans.len() > cap as usize {
                    let lit = self.resource_lit(Resource::PortCapacity(comp, end.port));
                    let terms: Vec<(&Bool, i32)> = chans.iter().map(|&c| (&self.chans[c as usize], 1)).collect();
                    self.solver.assert(lit.implies(Bool::pb_le(&terms, i32_of(cap as i64)?)));
                }
            }
        }
        // maxinstances (maxperhost is the number of slots).
        for (c, slots) in g.slots_by_comp.iter().enumerate() {
            if let Some(m) = self.maxinstances(c) {
                if slots.len() > m as usize {
                    let lit = self.resource_lit(Resource::MaxInstances(c));
                    let terms: Vec<(&Bool, i32)> = slots.iter().map(|&s| (&self.present[s as usize], 1)).collect();
                    self.solver.assert(lit.implies(Bool::pb_le(&terms, i32_of(m as i64)?)));
                }
            }
        }
        // Symmetry breaking among interchangeable slots of one host.
        for w in g.slots.windows(2).enumerate() {
            let (i, pair) = w;
            check(i)?;
            if pair[0].comp == pair[1].comp && pair[0].host == pair[1].host && pair[1].k == pair[0].k + 1 {
                let f = self.present[i + 1].implies(&self.present[i]);
                self.solver.assert(self.sym.implies(&f));
            }
        }
        Ok(())
    }

    fn resource_lit(&mut self, r: Resource) -> Bool {
        if let Some(i) = self.resources.iter().position(|x| *x == r) {
            return self.resource_lits[i].clone();
        }
        let lit = Bool::new_const(format!("res!{}", self.resources.len()));
        self.resources.push(r);
        self.resource_lits.push(lit.clone());
        lit
    }

    /// The implied counting facts of `lower::bounds`, over one integer per
    /// component (its number of present slots), each under the assumption
    /// literals of the clauses it follows from. Redundant, but they let the
    /// arithmetic solver refute counting conflicts at once.
    fn count_facts(&mut self) -> Result<(), SolveError> {
        if self.g.facts.is_empty() {
            return Ok(());
        }
        let ncomp = self.g.slots_by_comp.len();
        let counts: Vec<Int> = (0..ncomp).map(|c| Int::new_const(format!("count{c}"))).collect();
        let (one, zero) = (Int::from_i64(1), Int::from_i64(0));
        for (c, slots) in self.g.slots_by_comp.iter().enumerate() {
            let parts: Vec<Int> = slots.iter().map(|&s| self.present[s as usize].ite(&one, &zero)).collect();
            let sum = if parts.is_empty() { Int::from_i64(0) } else { Int::add(&parts) };
            self.solver.assert(counts[c].eq(&sum));
        }
        for f in &self.g.facts {
            let terms: Vec<Int> = f.terms.iter().map(|&(c, k)| &counts[c] * Int::from_i64(k)).collect();
            let fact = fact_formula(&Int::add(&terms), f.op, f.k);
            let mut guards: Vec<Bool> = f.from.iter().map(|&i| self.clause_lits[i].clone()).collect();
            for r in &f.resources {
                if !matches!(r, Resource::Placement(_)) {
                    guards.push(self.resource_lit(*r));
                }
            }
            if guards.is_empty() {
                self.solver.assert(&fact);
            } else {
                self.solver.assert(Bool::and(&guards).implies(&fact));
            }
        }
        Ok(())
    }

    fn port_capacity(&self, end: lower::End) -> Option<u32> {
        self.g.port_caps.get(&(self.g.slots[end.slot as usize].comp, end.port)).copied().flatten()
    }

    fn maxinstances(&self, c: CompId) -> Option<u32> {
        self.g.max_instances.get(c).copied().flatten()
    }

    fn compute_polarity(&mut self) {
        let mut stack: Vec<(NodeId, u8)> = self.g.clauses.iter().map(|&c| (c, 1u8)).collect();
        // Objectives are bounded both ways: their nodes must be exact.
        stack.extend(optimize::objective_nodes(self.g).map(|n| (n, 3u8)));
        while let Some((n, pol)) = stack.pop() {
            let old = self.polarity[n as usize];
            if old | pol == old {
                continue;
            }
            self.polarity[n as usize] = old | pol;
            let flip = ((pol & 1) << 1) | ((pol & 2) >> 1);
            match self.g.node(n) {
                Node::Not(a) => stack.push((*a, flip)),
                Node::And(v) | Node::Or(v) => stack.extend(v.iter().map(|&x| (x, pol))),
                Node::Pb { terms, op, .. } => {
                    let p = match op {
                        PbOp::Ge => pol,
                        PbOp::Le => flip,
                        PbOp::Eq => 3,
                    };
                    stack.extend(terms.iter().map(|&(x, _)| (x, p)));
                }
                _ => {}
            }
        }
    }

    /// Whether a clause's ground form contains a reachability node.
    fn mentions_reach(&mut self, n: NodeId) -> bool {
        if let Some(&b) = self.reach_memo.get(&n) {
            return b;
        }
        let r = match self.g.node(n) {
            Node::Reach(..) | Node::StronglyConnected(_) => true,
            Node::Not(a) => self.mentions_reach(*a),
            Node::And(v) | Node::Or(v) => v.clone().into_iter().any(|x| self.mentions_reach(x)),
            Node::Pb { terms, .. } => terms.clone().into_iter().any(|(x, _)| self.mentions_reach(x)),
            _ => false,
        };
        self.reach_memo.insert(n, r);
        r
    }

    /// The Z3 term of a ground node (memoised).
    fn node(&mut self, n: NodeId) -> Result<Bool, SolveError> {
        if let Some(b) = &self.cache[n as usize] {
            return Ok(b.clone());
        }
        self.built += 1;
        if self.built % 4096 == 0 {
            crate::budget::check().map_err(SolveError::Stopped)?;
        }
        let b = match self.g.node(n).clone() {
            Node::Const(b) => Bool::from_bool(b),
            Node::Present(s) => self.present[s as usize].clone(),
            Node::HostUp(h) => self.host_up(h),
            Node::Chan(c) => self.chans[c as usize].clone(),
            Node::Not(a) => self.node(a)?.not(),
            Node::And(v) => {
                let parts = v.iter().map(|&x| self.node(x)).collect::<Result<Vec<_>, _>>()?;
                Bool::and(&parts)
            }
            Node::Or(v) => {
                let parts = v.iter().map(|&x| self.node(x)).collect::<Result<Vec<_>, _>>()?;
                Bool::or(&parts)
            }
            Node::Pb { terms, op, k } => {
                let lits = terms.iter().map(|&(x, _)| self.node(x)).collect::<Result<Vec<_>, _>>()?;
                let coeffs = terms.iter().map(|&(_, c)| i32_of(c)).collect::<Result<Vec<_>, _>>()?;
                let pairs: Vec<(&Bool, i32)> = lits.iter().zip(coeffs).collect();
                let k = i32_of(k)?;
                match op {
                    PbOp::Le => Bool::pb_le(&pairs, k),
                    PbOp::Ge => Bool::pb_ge(&pairs, k),
                    PbOp::Eq => Bool::pb_eq(&pairs, k),
                }
            }
            Node::Reach(a, b) => {
                let pol = self.polarity[n as usize];
                self.reach(a, b, pol)
            }
            Node::StronglyConnected(c) => {
                let pol = self.polarity[n as usize];
                self.strongly_connected(c, pol)
            }
        };
        self.cache[n as usize] = Some(b.clone());
        Ok(b)
    }

    /// Closure from `src`: `C[v]` whenever a present path reaches `v`.
    fn closure_from(&mut self, src: SlotId) -> Vec<Bool> {
        if let Some(v) = self.closure.get(&src) {
            return v.clone();
        }
        let n = self.g.slots.len();
        let c: Vec<Bool> = (0..n).map(|v| Bool::new_const(format!("q{src}_{v}"))).collect();
        self.solver.assert(&c[src as usize]);
        for (i, ch) in self.g.chans.iter().enumerate() {
            let (x, y) = (ch.from.slot as usize, ch.to.slot as usize);
            let lit = &self.chans[i];
            self.solver.assert(Bool::and(&[lit, &c[x]]).implies(&c[y]));
            if !ch.directed {
                self.solver.assert(Bool::and(&[lit, &c[y]]).implies(&c[x]));
            }
        }
        self.closure.insert(src, c.clone());
        c
    }

    /// `reachable(a, b)`. Where it must hold, a fresh literal checked
    /// lazily: each model is searched, and a violated *cut* ("some present
    /// channel leaves the set `a` reaches") is added until paths exist.
    /// Where it must not hold, the closure makes it exact.
    fn reach(&mut self, a: SlotId, b: SlotId, pol: u8) -> Bool {
        if !self.may_reach(a, b) {
            return Bool::from_bool(false);
        }
        if pol == 2 {
            return self.closure_from(a)[b as usize].clone();
        }
        let lit = Bool::new_const(format!("reach{a}_{b}"));
        if pol & 2 != 0 {
            let c = self.closure_from(a)[b as usize].clone();
            self.solver.assert(c.implies(&lit));
        }
        self.lazy.push(Lazy::Reach { lit: lit.clone(), from: a, to: b });
        lit
    }

    /// Strong connectivity of a component's present slots: a fresh literal
    /// checked lazily with cuts (see [`Session::cuts`]).
    fn strongly_connected(&mut self, comp: CompId, pol: u8) -> Bool {
        if pol & 2 != 0 {
            // Exact, per ordered pair (rare: strong connectivity negated).
            let ts: Vec<SlotId> = self.g.slots_by_comp[comp].clone();
            let mut parts = vec![];
            for &a in &ts {
                for &b in &ts {
                    if a != b {
                        let both = Bool::and(&[&self.present[a as usize], &self.present[b as usize]]);
                        let r = self.reach(a, b, 3);
                        parts.push(both.implies(&r));
                    }
                }
            }
            return Bool::and(&parts);
        }
        let lit = Bool::new_const(format!("sc{comp}"));
        // Two slots no path can join are never both present (small goals).
        let ts: Vec<SlotId> = self.g.slots_by_comp[comp].clone();
        if ts.len() <= 64 {
            for &a in &ts {
                for &b in &ts {
                    if a != b && !self.may_reach(a, b) {
                        let both = Bool::and(&[&self.present[a as usize], &self.present[b as usize]]);
                        self.solver.assert(lit.implies(both.not()));
                    }
                }
            }
        }
        self.lazy.push(Lazy::StronglyConnected { lit: lit.clone(), comp });
        lit
    }

    /// The cuts the current model violates. A cut for a set `S` of slots:
    /// whenever a required path starts inside `S` and ends outside, some
    /// present channel must cross out of `S` (or, for paths ending inside,
    /// into it). Each cut follows from the literal it is guarded by, so
    /// adding cuts never removes a real solution; and each excludes the
    /// current model, so the loop ends.
    fn cuts(&self, m: &z3::Model) -> Result<Vec<Bool>, LimitHit> {
        use crate::lower::state::reach_set;
        let chans_on: Vec<bool> = self.chans.iter().map(|b| read_bool(m, b)).collect::<Result<_, _>>()?;
        let present: Vec<bool> = self.present.iter().map(|b| read_bool(m, b)).collect::<Result<_, _>>()?;
        let crossing = |set: &crate::lower::state::Reached, out: bool| -> Vec<Bool> {
            self.g
                .chans
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    let (f, t) = (set.contains(&(c.from.slot as usize)), set.contains(&(c.to.slot as usize)));
                    if out {
                        (f && !t) || (!c.directed && t && !f)
                    } else {
                        (!f && t) || (!c.directed && f && !t)
                    }
                })
                .map(|(i, _)| self.chans[i].clone())
                .collect()
        };
        let mut cuts = vec![];
        for l in &self.lazy {
            match l {
                Lazy::Reach { lit, from, to } => {
                    if !read_bool(m, lit)? {
                        continue;
                    }
                    let set = reach_set(self.g, &chans_on, &self.slot_chans, *from, true);
                    if !set.contains(&(*to as usize)) {
                        cuts.push(lit.implies(Bool::or(&crossing(&set, true))));
                    }
                }
                Lazy::StronglyConnected { lit, comp } => {
                    if !read_bool(m, lit)? {
                        continue;
                    }
                    let ts = &self.g.slots_by_comp[*comp];
                    let members: Vec<usize> = ts.iter().map(|&t| t as usize).filter(|&t| present[t]).collect();
                    if members.len() < 2 {
                        continue;
                    }
                    for forward in [true, false] {
                        let mut covered = std::collections::HashSet::new();
                        for &mb in &members {
                            if covered.contains(&mb) {
                                continue;
                            }
                            let set = reach_set(self.g, &chans_on, &self.slot_chans, mb as SlotId, forward);
                            covered.extend(set.iter().copied());
                            if members.iter().all(|x| set.contains(x)) {
                                continue;
                            }
                            let inside: Vec<Bool> = ts
                                .iter()
                                .filter(|&&t| set.contains(&(t as usize)))
                                .map(|&t| self.present[t as usize].clone())
                                .collect();
                            let outside: Vec<Bool> = ts
                                .iter()
                                .filter(|&&t| !set.contains(&(t as usize)))
                                .map(|&t| self.present[t as usize].clone())
                                .collect();
                            let pre = Bool::and(&[lit.clone(), Bool::or(&inside), Bool::or(&outside)]);
                            cuts.push(pre.implies(Bool::or(&crossing(&set, forward))));
                        }
                    }
                }
            }
        }
        Ok(cuts)
    }

    /// Replaces the lazy reachability literals by an exact *support*
    /// encoding: every reached slot names a predecessor that is reached,
    /// joined by a present channel, with a smaller integer rank, so cycles
    /// cannot support themselves. Exact, but heavier than cuts: used only
    /// when cuts do not converge.
    fn make_eager(&mut self) {
        let n = self.g.slots.len();
        let mut ins: Vec<Vec<(SlotId, ChanId)>> = vec![vec![]; n];
        let mut outs: Vec<Vec<(SlotId, ChanId)>> = vec![vec![]; n];
        for (i, c) in self.g.chans.iter().enumerate() {
            let (x, y, i) = (c.from.slot, c.to.slot, i as ChanId);
            ins[y as usize].push((x, i));
            outs[x as usize].push((y, i));
            if !c.directed {
                ins[x as usize].push((y, i));
                outs[y as usize].push((x, i));
            }
        }
        for (k, l) in std::mem::take(&mut self.lazy).into_iter().enumerate() {
            match l {
                Lazy::Reach { lit, from, to } => {
                    let mut roots = vec![Bool::from_bool(false); n];
                    roots[from as usize] = Bool::from_bool(true);
                    let r = self.support(&roots, &ins, &format!("er{k}"));
                    // Redundant (an overflow only leaves it out).
                    let _ = self.assert_degree_bound(&r);
                    self.solver.assert(lit.implies(&r[to as usize]));
                }
                Lazy::StronglyConnected { lit, comp } => {
                    // The root is the first present slot of the component.
                    let ts = self.g.slots_by_comp[comp].clone();
                    let mut roots = vec![Bool::from_bool(false); n];
                    let mut seen = Bool::from_bool(false);
                    for &t in &ts {
                        let p = self.present[t as usize].clone();
                        roots[t as usize] = Bool::and(&[&p, &seen.not()]);
                        seen = Bool::or(&[&seen, &p]);
                    }
                    let fwd = self.support(&roots, &ins, &format!("ef{k}"));
                    let bwd = self.support(&roots, &outs, &format!("eb{k}"));
                    let _ = self.assert_degree_bound(&fwd);
                    let _ = self.assert_degree_bound(&bwd);
                    let parts: Vec<Bool> = ts
                        .iter()
                        .map(|&t| self.present[t as usize].implies(Bool::and(&[&fwd[t as usize], &bwd[t as usize]])))
                        .collect();
                    self.solver.assert(lit.implies(Bool::and(&parts)));
                }
            }
        }
    }

    /// Whether some configuration of this grounding can have a path from
    /// `a` to `b`: a search over the candidate channels in which a slot
    /// passed through must enter and leave by two channel ends its ports can
    /// hold (two ports, or one port of capacity 2 or more). It
    /// over-approximates every real path, so "no" is exact; it refutes paths
    /// through leaves (a single-channel port) at once, which cuts cannot.
    fn may_reach(&mut self, a: SlotId, b: SlotId) -> bool {
        const MAX_WORK: usize = 20_000_000;
        if let Some(r) = self.static_reach.get(&a) {
            return r.get(b as usize).copied().unwrap_or(true);
        }
        let work = (self.static_reach.len() + 1) * (self.g.chans.len() + self.g.slots.len());
        if work > MAX_WORK {
            return true;
        }
        let n = self.g.slots.len();
        if self.moves.is_empty() && n > 0 {
            let mut moves: Vec<Vec<(crate::check::ir::PortId, SlotId, crate::check::ir::PortId)>> = vec![vec![]; n];
            for c in &self.g.chans {
                moves[c.from.slot as usize].push((c.from.port, c.to.slot, c.to.port));
                if !c.directed {
                    moves[c.to.slot as usize].push((c.to.port, c.from.slot, c.from.port));
                }
            }
            self.moves = moves;
        }
        let mut reached = vec![false; n];
        let mut seen: std::collections::HashSet<(SlotId, Option<crate::check::ir::PortId>)> =
            std::collections::HashSet::new();
        let mut stack: Vec<(SlotId, Option<crate::check::ir::PortId>)> = vec![(a, None)];
        seen.insert((a, None));
        while let Some((v, entered)) = stack.pop() {
            reached[v as usize] = true;
            for &(out, w, at) in &self.moves[v as usize] {
                if v != a
                    && Some(out) == entered
                    && self.port_capacity(lower::End { slot: v, port: out }).is_some_and(|k| k < 2)
                {
                    continue;
                }
                if seen.insert((w, Some(at))) {
                    stack.push((w, Some(at)));
                }
            }
        }
        let r = reached.get(b as usize).copied().unwrap_or(true);
        self.static_reach.insert(a, reached);
        r
    }

    /// The most channels a slot can have: per port with candidate
    /// channels, its capacity or the number of its candidates, whichever is
    /// smaller.
    fn slot_capacity(&self, v: SlotId) -> i64 {
        let mut per_port: HashMap<crate::check::ir::PortId, i64> = HashMap::new();
        for &c in &self.slot_chans[v as usize] {
            let ch = self.g.chans[c as usize];
            let port = if ch.from.slot == v { ch.from.port } else { ch.to.port };
            *per_port.entry(port).or_insert(0) += 1;
        }
        per_port
            .into_iter()
            .map(|(port, k)| match self.port_capacity(lower::End { slot: v, port }) {
                Some(cap) => k.min(cap as i64),
                None => k,
            })
            .sum::<i64>()
            .min(1000)
    }

    /// The degree argument for a set `R` of reached slots (`r`, connected
    /// to a single root by present channels): it has at least |R| − 1
    /// channels among its members, each counted at both ends, so
    /// Σ_{v ∈ R} capacity(v) ≥ 2·|R| − 2. Leaves (capacity 1) are then
    /// bounded by the relays' spare capacity, which refutes at once what
    /// cuts would enumerate.
    fn assert_degree_bound(&self, r: &[Bool]) -> Result<(), SolveError> {
        // Σ r_v·(cap_v − 2) ≥ −2, with positive coefficients: a negative
        // one becomes (2 − cap)·¬r_v, moved into the bound.
        let mut terms: Vec<(Bool, i32)> = vec![];
        let mut k: i64 = -2;
        let mut negative = false;
        for (v, rv) in r.iter().enumerate() {
            let c = self.slot_capacity(v as SlotId) - 2;
            match c.cmp(&0) {
                std::cmp::Ordering::Greater => terms.push((rv.clone(), i32_of(c)?)),
                std::cmp::Ordering::Less => {
                    negative = true;
                    terms.push((rv.not(), i32_of(-c)?));
                    k -= c;
                }
                std::cmp::Ordering::Equal => {}
            }
        }
        if negative {
            let pairs: Vec<(&Bool, i32)> = terms.iter().map(|(b, c)| (b, *c)).collect();
            self.solver.assert(Bool::pb_ge(&pairs, i32_of(k)?));
        }
        Ok(())
    }

    /// Reached-from-`roots` literals with the support encoding over `edges`
    /// (`edges[v]`: the slots a channel leads from into `v`, with the channel).
    fn support(&self, roots: &[Bool], edges: &[Vec<(SlotId, ChanId)>], tag: &str) -> Vec<Bool> {
        let n = self.g.slots.len();
        let r: Vec<Bool> = (0..n).map(|v| Bool::new_const(format!("{tag}r{v}"))).collect();
        let d: Vec<Int> = (0..n).map(|v| Int::new_const(format!("{tag}d{v}"))).collect();
        for v in 0..n {
            let mut options = vec![roots[v].clone()];
            for &(u, c) in &edges[v] {
                options.push(Bool::and(&[&self.chans[c as usize], &r[u as usize], &d[u as usize].lt(&d[v])]));
            }
            self.solver.assert(r[v].implies(Bool::or(&options)));
        }
        r
    }

    fn set_timeout(&self, deadline: Option<Instant>) -> bool {
        if let Some(dl) = deadline {
            let left = dl.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut p = Params::new();
            p.set_u32("timeout", left.as_millis().clamp(1, u32::MAX as u128) as u32);
            self.solver.set_params(&p);
        }
        true
    }

    fn check(&mut self, extra: &[Bool], with_sym: bool, deadline: Option<Instant>) -> SatResult {
        if !self.set_timeout(deadline) {
            return SatResult::Unknown;
        }
        let mut a = self.clause_lits.clone();
        a.extend(self.resource_lits.iter().cloned());
        if with_sym {
            a.push(self.sym.clone());
        }
        a.extend(extra.iter().cloned());
        let mut rounds = 0;
        loop {
            let r = work::check(&self.solver, &a);
            if r != SatResult::Sat || self.lazy.is_empty() {
                return r;
            }
            // A model that cannot be read (Z3 interrupted) decides nothing.
            let Some(m) = self.solver.get_model() else { return SatResult::Unknown };
            let Ok(cuts) = self.cuts(&m) else { return SatResult::Unknown };
            if cuts.is_empty() {
                return r;
            }
            self.cut_rounds.set(self.cut_rounds.get() + 1);
            rounds += 1;
            if rounds > MAX_CUT_ROUNDS {
                if std::env::var_os("DELADAS_DEBUG").is_some() {
                    eprintln!(
                        "cuts: {rounds} rounds without convergence; exact encoding for {} literals",
                        self.lazy.len()
                    );
                }
                // Cuts are not converging (refuting reachability can need
                // exponentially many): encode what is left exactly.
                self.make_eager();
                continue;
            }
            for c in cuts {
                self.solver.assert(&c);
            }
            if !self.set_timeout(deadline) {
                return SatResult::Unknown;
            }
        }
    }

    /// The configuration of the solver's last model. An evaluation that
    /// fails (as Z3's do once a limit has interrupted it) is not read as
    /// "false": the run stops with the limit (or, without one, with
    /// [`LimitHit::ModelUnreadable`]) instead of claiming a configuration
    /// the solver never gave.
    fn extract(&self) -> Result<Solution, LimitHit> {
        let m = self.solver.get_model().ok_or_else(unreadable)?;
        let read = |lits: &[Bool]| -> Result<Vec<u32>, LimitHit> {
            let mut on = vec![];
            for (i, b) in lits.iter().enumerate() {
                if read_bool(&m, b)? {
                    on.push(i as u32);
                }
            }
            Ok(on)
        };
        Ok(Solution { slots: read(&self.present)?, chans: read(&self.chans)? })
    }

    /// A description of a configuration that does not change when the
    /// interchangeable slots of one component on one host are renumbered:
    /// per instance, its component, host, and the ports and (component,
    /// host, port) of its channel partners, sorted. Equal configurations up
    /// to renumbering have equal signatures.
    fn signature(&self, sol: &Solution) -> Signature {
        let mut per_slot: HashMap<SlotId, Vec<(usize, usize, usize, usize)>> = HashMap::new();
        for &c in &sol.chans {
            let ch = self.g.chans[c as usize];
            for (me, other) in [(ch.from, ch.to), (ch.to, ch.from)] {
                let o = self.g.slots[other.slot as usize];
                per_slot.entry(me.slot).or_default().push((me.port, o.comp, o.host, other.port));
            }
        }
        let mut sig: Vec<_> = sol
            .slots
            .iter()
            .map(|&s| {
                let sl = self.g.slots[s as usize];
                let mut links = per_slot.remove(&s).unwrap_or_default();
                links.sort();
                (sl.comp, sl.host, links)
            })
            .collect();
        sig.sort();
        sig
    }

    fn parts_of(&self, s: &Solution) -> Vec<Bool> {
        s.slots
            .iter()
            .map(|&i| self.present[i as usize].clone())
            .chain(s.chans.iter().map(|&i| self.chans[i as usize].clone()))
            .collect()
    }

    fn run(
        &mut self,
        opts: &Options,
        deadline: Option<Instant>,
        stats: &mut Stats,
        progress: &mut (dyn Progress + Send + Sync),
    ) -> Outcome {
        if opts.optimise && !self.g.objectives.is_empty() {
            return optimize::run(self, opts, deadline, stats, progress);
        }
        let mut found = vec![];
        let mut seen = Seen::new(opts.count);
        while found.len() < opts.count.max(1) {
            match self.check(&[], true, deadline) {
                SatResult::Sat => {}
                SatResult::Unsat if found.is_empty() => {
                    let (core, resources) = parse_core(&self.solver.get_unsat_core(), &self.resources);
                    return Outcome::Unsat { core, resources, facts: vec![] };
                }
                SatResult::Unsat => break,
                SatResult::Unknown if found.is_empty() => {
                    return Outcome::Unknown(self.solver.get_reason_unknown().unwrap_or_else(|| "unknown".into()))
                }
                SatResult::Unknown => break,
            }
            let mut sol = match self.extract() {
                Ok(sol) => sol,
                Err(hit) if found.is_empty() => return stopped_outcome(hit),
                Err(_) => break,
            };
            let mut state = match model_state(self.g, &sol) {
                Ok(st) => st,
                Err(o) => return o,
            };
            if opts.parsimony {
                progress.phase("minimising", &format!("{} instances, {} channels", sol.slots.len(), sol.chans.len()));
                crate::budget::set_phase("minimising");
                let t = Instant::now();
                stats.minimise_steps += state.make_parsimonious();
                let (slots, chans) = state.parts();
                sol = Solution { slots, chans };
                stats.minimise_time += t.elapsed();
            }
            // Later configurations are neither this one nor a superset of it
            // (a superset of a valid configuration is never parsimonious); with
            // `--any`, just different.
            let block = if opts.parsimony {
                Bool::or(&self.parts_of(&sol).iter().map(|b| b.not()).collect::<Vec<_>>())
            } else {
                let in_sol: std::collections::HashSet<_> =
                    sol.slots.iter().map(|&s| (0, s)).chain(sol.chans.iter().map(|&c| (1, c))).collect();
                let mut diffs = vec![];
                for (i, p) in self.present.iter().enumerate() {
                    diffs.push(if in_sol.contains(&(0, i as u32)) { p.not() } else { p.clone() });
                }
                for (i, c) in self.chans.iter().enumerate() {
                    diffs.push(if in_sol.contains(&(1, i as u32)) { c.not() } else { c.clone() });
                }
                Bool::or(&diffs)
            };
            self.solver.assert(&block);
            // Instances of one component on one host are interchangeable: a
            // configuration that only renumbers them is not a new one.
            match seen.add(self.signature(&sol)) {
                Fresh::New => {}
                Fresh::Repeat => continue,
                Fresh::GiveUp => break,
            }
            found.push(sol);
        }
        Outcome::Sat { ground: Box::new(Ground::placeholder()), solutions: found, deployments: vec![] }
    }
}

/// Hands the memory cap to Z3 (global parameters, once per process): above
/// the high watermark its search answers "unknown" (memout); above the
/// maximum its allocations fail.
fn configure_z3() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cap = crate::budget::memory_limit();
        let mb = (cap >> 20).max(64);
        z3::set_global_param("memory_max_size", &mb.to_string());
        let watermark = (cap / 10 * 8).min(u32::MAX as u64);
        z3::set_global_param("memory_high_watermark", &watermark.to_string());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Z3's evaluations fail once its context is interrupted (as the
    /// watchdog does at a limit): such a failure must stop the run, never
    /// read as "false".
    #[test]
    fn a_failed_evaluation_is_unreadable_never_false() {
        std::thread::spawn(|| {
            let s = quiet_solver();
            let x = Bool::new_const("x");
            let y = Bool::new_const("y");
            s.assert(Bool::or(&[&x, &y]));
            assert_eq!(s.check(), SatResult::Sat);
            let m = s.get_model().expect("a model");
            let either = Bool::or(&[&x, &y]);
            assert_eq!(read_bool(&m, &either), Ok(true));
            z3::Context::thread_local().handle().interrupt();
            let r = read_bool(&m, &either);
            assert!(matches!(r, Err(LimitHit::ModelUnreadable { .. })), "{r:?}");
        })
        .join()
        .expect("the test thread");
    }
}
