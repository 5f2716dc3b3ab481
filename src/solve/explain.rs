//! Explaining unsatisfiable goals: a minimal set of conflicting clauses and
//! resource limits, the counting argument when there is one, and repairs.
//!
//! **Minimality.** The solver's core is shrunk by a deletion pass: each
//! member is dropped in turn and the rest re-solved; if the rest is still
//! unsatisfiable the member goes, and the smaller core the solver returns
//! replaces the current one. A clause is dropped from the goal with every
//! resource limit kept (satisfiable with all limits implies satisfiable with
//! the conflict's own, and it keeps the solver's search easy); a resource
//! limit is tested by lifting it alone, the other clauses outside the
//! conflict removed. When the pass ends, every member was tested against the
//! final set: removing it made the rest satisfiable, so the set is minimal
//! (unless some check ran out of time: then `minimal` is false and the
//! explanation says so).
//!
//! **Repairs** are found by re-solving modified goals within a time bound:
//! each conflicting clause dropped alone, each conflicting resource raised by
//! one (a port's capacity, `maxperhost`, `maxinstances`), and hosts cloned
//! from a declared one (the fewest that suffice, by doubling then bisection).

use std::time::{Duration, Instant};

use super::{solve_in_context, Options, Outcome, Quiet, SolveError};
use crate::check::ir::{CompId, HostId, PortId, Program};
use crate::lower::bounds::{CountFact, Resource};

/// A minimal conflict.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// Clauses (indices into `program.clauses`).
    pub clauses: Vec<usize>,
    pub resources: Vec<Resource>,
    /// Whether every member was shown to be needed.
    pub minimal: bool,
    /// The counting facts of the refutation, when counting found it.
    pub facts: Vec<CountFact>,
    /// A single clause that no configuration can satisfy.
    pub statically_false: bool,
}

/// A change that makes the goal satisfiable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    DropClause(usize),
    /// Add this many hosts with the attributes of this one.
    AddHosts {
        like: HostId,
        count: usize,
    },
    /// Let a port hold one more channel.
    RaiseCapacity(CompId, PortId),
    RaiseMaxPerHost(CompId),
    RaiseMaxInstances(CompId),
}

/// What `explain` found.
#[derive(Debug, Clone)]
pub enum Explained {
    Satisfiable,
    Unsatisfiable {
        conflict: Conflict,
        repairs: Vec<Repair>,
        /// Whether the repair search ended within its time bound.
        repairs_complete: bool,
    },
    Unknown(String),
}

/// Explains a goal over the given available hosts, spending at most `budget`.
pub fn explain(program: &Program, available: &[usize], budget: Duration) -> Result<Explained, SolveError> {
    super::in_fresh_context(|| explain_in_context(program, available, budget))
}

/// Satisfiability of a variant of the goal, within a deadline.
enum Verdict {
    Sat,
    Unsat(Vec<usize>, Vec<Resource>, Vec<CountFact>),
    Unknown,
}

fn verdict(p: &Program, available: &[usize], deadline: Instant) -> Result<Verdict, SolveError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Ok(Verdict::Unknown);
    }
    let opts = Options { timeout: Some(left), parsimony: false, count: 1, ..Default::default() };
    let t = Instant::now();
    let out = solve_in_context(p, available, &opts, &mut Quiet)?.0;
    if std::env::var_os("DELADAS_DEBUG").is_some() {
        let what = match &out {
            Outcome::Sat { .. } => "sat".to_string(),
            Outcome::Unsat { core, .. } => format!("unsat {core:?}"),
            _ => "unknown".into(),
        };
        eprintln!("explain: {} clauses, {} hosts: {what} in {:?}", p.clauses.len(), available.len(), t.elapsed());
    }
    Ok(match out {
        Outcome::Sat { .. } => Verdict::Sat,
        Outcome::Unsat { core, resources, facts } => Verdict::Unsat(core, resources, facts),
        Outcome::Unknown(_) | Outcome::Internal(_) => Verdict::Unknown,
    })
}

/// The goal restricted to some clauses, with every resource limit outside
/// `keep` lifted (`None`: keep them all). Returns the program and the map
/// from its clause indices to the original ones.
fn restrict(p: &Program, clauses: &[usize], keep: Option<&[Resource]>) -> (Program, Vec<usize>) {
    let mut q = p.clone();
    q.clauses = clauses.iter().map(|&i| p.clauses[i].clone()).collect();
    let Some(keep) = keep else { return (q, clauses.to_vec()) };
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
    (q, clauses.to_vec())
}

fn explain_in_context(program: &Program, available: &[usize], budget: Duration) -> Result<Explained, SolveError> {
    let start = Instant::now();
    let deadline = start + budget;
    // A clause false whatever the configuration explains itself.
    for (i, c) in program.clauses.iter().enumerate() {
        if crate::check::static_truth(&c.formula) == Some(false) {
            let conflict =
                Conflict { clauses: vec![i], resources: vec![], minimal: true, facts: vec![], statically_false: true };
            let (repairs, complete) = repairs(program, available, &conflict, deadline)?;
            return Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete: complete });
        }
    }
    let (mut clauses, mut resources, mut facts) = match verdict(program, available, deadline)? {
        Verdict::Sat => return Ok(Explained::Satisfiable),
        Verdict::Unknown => return Ok(Explained::Unknown("the solver gave up".into())),
        Verdict::Unsat(c, r, f) => (c, r, f),
    };
    // Deletion pass over the clauses, then the resource limits (Placement
    // is structural: it is the number of slots, never lifted).
    let mut minimal = true;
    let mut k = 0;
    loop {
        let limits: Vec<Resource> =
            resources.iter().copied().filter(|r| !matches!(r, Resource::Placement(_))).collect();
        let (q, map) = if k < clauses.len() {
            let trial: Vec<usize> = clauses.iter().copied().filter(|&c| c != clauses[k]).collect();
            // Every resource limit stays: if the rest is satisfiable even with
            // all of them, it is with the conflict's own.
            restrict(program, &trial, None)
        } else if let Some(&r) = limits.get(k - clauses.len()) {
            let keep: Vec<Resource> = resources.iter().copied().filter(|x| *x != r).collect();
            restrict(program, &clauses, Some(&keep))
        } else {
            break;
        };
        match verdict(&q, available, deadline)? {
            Verdict::Unsat(core, res, f) => {
                // A smaller conflict: adopt it and test it from its start.
                clauses = core.iter().map(|&c| map[c]).collect();
                resources = res;
                facts = f
                    .into_iter()
                    .map(|mut fact| {
                        fact.from = fact.from.iter().map(|&c| map[c]).collect();
                        fact
                    })
                    .collect();
                k = 0;
            }
            Verdict::Sat => k += 1,
            Verdict::Unknown => {
                minimal = false;
                k += 1;
            }
        }
    }
    clauses.sort();
    resources.sort();
    facts.retain(|f| f.from.iter().all(|c| clauses.contains(c)));
    let conflict = Conflict { clauses, resources, minimal, facts, statically_false: false };
    let (repairs, complete) = repairs(program, available, &conflict, deadline)?;
    Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete: complete })
}

/// Single changes that make the goal satisfiable (see the module docs).
/// Time for one repair variant, at most.
const REPAIR_VARIANT: Duration = Duration::from_secs(2);
/// Time for the whole repair search, at most.
const REPAIR_TOTAL: Duration = Duration::from_secs(6);

fn repairs(
    program: &Program,
    available: &[usize],
    conflict: &Conflict,
    deadline: Instant,
) -> Result<(Vec<Repair>, bool), SolveError> {
    let deadline = deadline.min(Instant::now() + REPAIR_TOTAL);
    let variant_deadline = || deadline.min(Instant::now() + REPAIR_VARIANT);
    let mut found = vec![];
    let mut complete = true;
    let mut try_variant =
        |q: &Program, hosts: &[usize], r: Repair, found: &mut Vec<Repair>| -> Result<(), SolveError> {
            match verdict(q, hosts, variant_deadline())? {
                Verdict::Sat => found.push(r),
                Verdict::Unknown => complete = false,
                Verdict::Unsat(..) => {}
            }
            Ok(())
        };
    for &c in &conflict.clauses {
        let mut q = program.clone();
        q.clauses.remove(c);
        try_variant(&q, available, Repair::DropClause(c), &mut found)?;
    }
    for r in &conflict.resources {
        let mut q = program.clone();
        let repair = match *r {
            Resource::PortCapacity(c, p) => {
                let port = &mut q.components[c].ports[p];
                port.capacity = port.capacity.map(|k| k + 1);
                port.variadic = true;
                Repair::RaiseCapacity(c, p)
            }
            Resource::MaxInstances(c) => {
                q.components[c].maxinstances = q.components[c].maxinstances.map(|k| k + 1);
                Repair::RaiseMaxInstances(c)
            }
            Resource::Placement(c) => {
                q.components[c].maxperhost += 1;
                Repair::RaiseMaxPerHost(c)
            }
        };
        try_variant(&q, available, repair, &mut found)?;
    }
    // More hosts like the first available one: the fewest that suffice.
    if let Some(&like) = available.first() {
        let with_clones = |n: usize| -> (Program, Vec<usize>) {
            let mut q = program.clone();
            let mut hosts = available.to_vec();
            for i in 0..n {
                let mut h = program.hosts[like].clone();
                h.name = format!("{}#clone{}", h.name, i + 1);
                hosts.push(q.hosts.len());
                q.hosts.push(h);
            }
            (q, hosts)
        };
        let limit = (2 * available.len()).max(4);
        let (mut lo, mut hi) = (0usize, None::<usize>);
        let mut n = 1;
        while n <= limit && Instant::now() < deadline {
            let (q, hosts) = with_clones(n);
            match verdict(&q, &hosts, variant_deadline())? {
                Verdict::Sat => {
                    hi = Some(n);
                    break;
                }
                Verdict::Unsat(..) => lo = n,
                Verdict::Unknown => {
                    complete = false;
                    break;
                }
            }
            n *= 2;
        }
        if let Some(mut h) = hi {
            while h - lo > 1 && Instant::now() < deadline {
                let mid = (lo + h) / 2;
                let (q, hosts) = with_clones(mid);
                match verdict(&q, &hosts, variant_deadline())? {
                    Verdict::Sat => h = mid,
                    Verdict::Unsat(..) => lo = mid,
                    Verdict::Unknown => {
                        complete = false;
                        break;
                    }
                }
            }
            found.push(Repair::AddHosts { like, count: h });
        }
    }
    Ok((found, complete))
}
