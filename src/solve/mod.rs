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
//! * `reachable(a, b)` where it must hold (positive polarity): a *support*
//!   encoding from source `a`: every reached node names a predecessor that is
//!   reached, joined by a present channel, with a smaller integer rank, so
//!   cycles cannot support themselves. Where it must not hold (negative
//!   polarity): a *closure* from `a` (reached and channel ⇒ reached), so an
//!   unreached node truly has no path. Both, when both polarities occur;
//! * strong connectivity (`forall T a, b (reachable(a, b))`): a root (the
//!   first present slot of T) reaches every present T slot and every present
//!   T slot reaches the root: two support encodings, O(edges) in all,
//!   instead of one per ordered pair.
//!
//! Parsimony (language.md §6) is *subset-minimality*: after a model is found,
//! absent parts are fixed absent and the solver is asked for a model with at
//! least one present part removed, until none exists. The result has no
//! proper subset that satisfies the goal, so in particular removing any one
//! channel, or one instance with its channels, breaks some clause.

pub mod output;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use z3::ast::{Bool, Int};
use z3::{Params, SatResult, Solver};

use crate::check::ir::{CompId, Program};
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
}

impl Default for Options {
    fn default() -> Self {
        Options { timeout: None, parsimony: true, count: 1, limits: Limits::default() }
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
    /// One or more configurations (at most `count`).
    Sat(Vec<Solution>),
    /// No configuration: the clauses (indices into `program.clauses`) of an
    /// unsatisfiable core; not minimised here.
    Unsat { core: Vec<usize> },
    /// The solver gave up (timeout or incompleteness).
    Unknown(String),
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
    /// Solver calls made while minimising.
    pub minimise_steps: usize,
}

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
}

impl From<LowerError> for SolveError {
    fn from(e: LowerError) -> Self {
        SolveError::Lower(e)
    }
}

/// Grounds and solves a goal over the given available hosts.
pub fn solve(
    program: &Program,
    available: &[usize],
    opts: &Options,
    progress: &mut dyn Progress,
) -> Result<(Ground, Outcome, Stats), SolveError> {
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut stats = Stats::default();
    let mut scope = ChannelScope::Sparse;
    loop {
        progress.phase("grounding", "");
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
        let t1 = Instant::now();
        let mut s = Session::new(&ground)?;
        let outcome = s.run(opts, deadline, &mut stats, progress);
        stats.solve_time += t1.elapsed().saturating_sub(stats.minimise_time);
        // A sparse channel scope is exact unless an unsatisfiable core relies
        // on `reachable` (paths might need channels the scope left out).
        if let Outcome::Unsat { core } = &outcome {
            if scope == ChannelScope::Sparse
                && ground.sparse_left_out
                && core.iter().any(|&c| s.mentions_reach(ground.clauses[c]))
            {
                scope = ChannelScope::Full;
                continue;
            }
        }
        drop(s);
        return Ok((ground, outcome, stats));
    }
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
    sym: Bool,
    in_edges: Vec<Vec<(SlotId, ChanId)>>,
    out_edges: Vec<Vec<(SlotId, ChanId)>>,
    support: HashMap<SlotId, Vec<Bool>>,
    closure: HashMap<SlotId, Vec<Bool>>,
    reach_memo: HashMap<NodeId, bool>,
}

fn i32_of(x: i64) -> Result<i32, SolveError> {
    i32::try_from(x).map_err(|_| SolveError::Overflow)
}

impl<'g> Session<'g> {
    fn new(g: &'g Ground) -> Result<Self, SolveError> {
        let solver = Solver::new();
        let present: Vec<Bool> = (0..g.slots.len()).map(|i| Bool::new_const(format!("p{i}"))).collect();
        let chans: Vec<Bool> = (0..g.chans.len()).map(|i| Bool::new_const(format!("c{i}"))).collect();
        let n = g.slots.len();
        let mut in_edges = vec![vec![]; n];
        let mut out_edges = vec![vec![]; n];
        for (i, c) in g.chans.iter().enumerate() {
            let (x, y) = (c.from.slot, c.to.slot);
            in_edges[y as usize].push((x, i as ChanId));
            out_edges[x as usize].push((y, i as ChanId));
            if !c.directed {
                in_edges[x as usize].push((y, i as ChanId));
                out_edges[y as usize].push((x, i as ChanId));
            }
        }
        let mut s = Session {
            g,
            solver,
            present,
            chans,
            cache: vec![None; g.nodes.len()],
            polarity: vec![0; g.nodes.len()],
            clause_lits: vec![],
            sym: Bool::new_const("sym!"),
            in_edges,
            out_edges,
            support: HashMap::new(),
            closure: HashMap::new(),
            reach_memo: HashMap::new(),
        };
        s.structure()?;
        s.compute_polarity();
        for (i, &root) in g.clauses.iter().enumerate() {
            let lit = Bool::new_const(format!("clause!{i}"));
            let f = s.node(root)?;
            s.solver.assert(lit.implies(&f));
            s.clause_lits.push(lit);
        }
        Ok(s)
    }

    /// The rules every configuration obeys (language.md §6).
    fn structure(&mut self) -> Result<(), SolveError> {
        let g = self.g;
        for (i, c) in g.chans.iter().enumerate() {
            let ends = Bool::and(&[&self.present[c.from.slot as usize], &self.present[c.to.slot as usize]]);
            self.solver.assert(self.chans[i].implies(&ends));
        }
        // Port capacities.
        for (end, chans) in g.incident() {
            let comp = &g.slots[end.slot as usize].comp;
            let _ = comp;
            let cap = self.port_capacity(end);
            if let Some(cap) = cap {
                if chans.len() > cap as usize {
                    let terms: Vec<(&Bool, i32)> = chans.iter().map(|&c| (&self.chans[c as usize], 1)).collect();
                    self.solver.assert(Bool::pb_le(&terms, i32_of(cap as i64)?));
                }
            }
        }
        // maxinstances: handled by the program's components via slot counts
        // per host; the global bound needs a constraint.
        for (c, slots) in g.slots_by_comp.iter().enumerate() {
            if let Some(m) = self.maxinstances(c) {
                if slots.len() > m as usize {
                    let terms: Vec<(&Bool, i32)> = slots.iter().map(|&s| (&self.present[s as usize], 1)).collect();
                    self.solver.assert(Bool::pb_le(&terms, i32_of(m as i64)?));
                }
            }
        }
        // Symmetry breaking among interchangeable slots of one host.
        for w in g.slots.windows(2).enumerate() {
            let (i, pair) = w;
            if pair[0].comp == pair[1].comp && pair[0].host == pair[1].host && pair[1].k == pair[0].k + 1 {
                let f = self.present[i + 1].implies(&self.present[i]);
                self.solver.assert(self.sym.implies(&f));
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
        let b = match self.g.node(n).clone() {
            Node::Const(b) => Bool::from_bool(b),
            Node::Present(s) => self.present[s as usize].clone(),
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

    /// Support encoding from `src`: `R[v]` only if some present path from
    /// `src` reaches `v` (ranks strictly increase along the path).
    fn support_from(&mut self, src: SlotId) -> Vec<Bool> {
        if let Some(v) = self.support.get(&src) {
            return v.clone();
        }
        let n = self.g.slots.len();
        let r: Vec<Bool> = (0..n).map(|v| Bool::new_const(format!("r{src}_{v}"))).collect();
        let d: Vec<Int> = (0..n).map(|v| Int::new_const(format!("d{src}_{v}"))).collect();
        for v in 0..n {
            if v == src as usize {
                self.solver.assert(&r[v]);
                continue;
            }
            let preds: Vec<Bool> = self.in_edges[v]
                .iter()
                .map(|&(u, c)| Bool::and(&[&self.chans[c as usize], &r[u as usize], &d[u as usize].lt(&d[v])]))
                .collect();
            self.solver.assert(r[v].implies(Bool::or(&preds)));
        }
        self.support.insert(src, r.clone());
        r
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

    fn reach(&mut self, a: SlotId, b: SlotId, pol: u8) -> Bool {
        match pol {
            2 => self.closure_from(a)[b as usize].clone(),
            3 => {
                let r = self.support_from(a)[b as usize].clone();
                let c = self.closure_from(a)[b as usize].clone();
                self.solver.assert(c.implies(&r));
                r
            }
            _ => self.support_from(a)[b as usize].clone(),
        }
    }

    fn strongly_connected(&mut self, comp: CompId, pol: u8) -> Bool {
        let ts: Vec<SlotId> = self.g.slots_by_comp[comp].clone();
        if pol & 2 != 0 {
            // Exact, per ordered pair (rare: strong connectivity negated).
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
        let n = self.g.slots.len();
        // The root is the first present slot of the component.
        let mut root = vec![Bool::from_bool(false); n];
        let mut seen = Bool::from_bool(false);
        for &t in &ts {
            let p = &self.present[t as usize];
            let rt = Bool::new_const(format!("root{comp}_{t}"));
            self.solver.assert(rt.iff(Bool::and(&[p, &seen.not()])));
            root[t as usize] = rt;
            seen = Bool::or(&[&seen, p]);
        }
        let tag = format!("sc{comp}");
        let fwd = self.rooted(&root, &tag, true);
        let bwd = self.rooted(&root, &tag, false);
        let parts: Vec<Bool> = ts
            .iter()
            .map(|&t| self.present[t as usize].implies(Bool::and(&[&fwd[t as usize], &bwd[t as usize]])))
            .collect();
        Bool::and(&parts)
    }

    /// Support encoding from a chosen root (forward), or to it (backward).
    fn rooted(&mut self, root: &[Bool], tag: &str, forward: bool) -> Vec<Bool> {
        let n = self.g.slots.len();
        let dir = if forward { "f" } else { "b" };
        let r: Vec<Bool> = (0..n).map(|v| Bool::new_const(format!("{tag}{dir}r{v}"))).collect();
        let d: Vec<Int> = (0..n).map(|v| Int::new_const(format!("{tag}{dir}d{v}"))).collect();
        for v in 0..n {
            let edges = if forward { &self.in_edges[v] } else { &self.out_edges[v] };
            let mut options: Vec<Bool> = vec![root[v].clone()];
            for &(u, c) in edges {
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

    fn check(&self, extra: &[Bool], with_sym: bool, deadline: Option<Instant>) -> SatResult {
        if !self.set_timeout(deadline) {
            return SatResult::Unknown;
        }
        let mut a = self.clause_lits.clone();
        if with_sym {
            a.push(self.sym.clone());
        }
        a.extend(extra.iter().cloned());
        self.solver.check_assumptions(&a)
    }

    fn extract(&self) -> Solution {
        let Some(m) = self.solver.get_model() else { return Solution { slots: vec![], chans: vec![] } };
        let val = |b: &Bool| m.eval(b, true).and_then(|v| v.as_bool()).unwrap_or(false);
        Solution {
            slots: (0..self.present.len()).filter(|&i| val(&self.present[i])).map(|i| i as SlotId).collect(),
            chans: (0..self.chans.len()).filter(|&i| val(&self.chans[i])).map(|i| i as ChanId).collect(),
        }
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
        progress: &mut dyn Progress,
    ) -> Outcome {
        let mut found = vec![];
        while found.len() < opts.count.max(1) {
            match self.check(&[], true, deadline) {
                SatResult::Sat => {}
                SatResult::Unsat if found.is_empty() => {
                    let core = self.solver.get_unsat_core();
                    let idx = core
                        .iter()
                        .filter_map(|b| b.to_string().strip_prefix("clause!").and_then(|s| s.parse().ok()))
                        .collect();
                    return Outcome::Unsat { core: idx };
                }
                SatResult::Unsat => break,
                SatResult::Unknown if found.is_empty() => {
                    return Outcome::Unknown(self.solver.get_reason_unknown().unwrap_or_else(|| "unknown".into()))
                }
                SatResult::Unknown => break,
            }
            let mut sol = self.extract();
            if opts.parsimony {
                progress.phase("minimising", &format!("{} instances, {} channels", sol.slots.len(), sol.chans.len()));
                let t = Instant::now();
                match self.minimise(sol, deadline, stats) {
                    Ok(s) => sol = s,
                    Err(reason) => return Outcome::Unknown(reason),
                }
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
            found.push(sol);
        }
        Outcome::Sat(found)
    }

    /// Shrinks a solution to a subset-minimal one (see the module docs).
    fn minimise(
        &mut self,
        mut sol: Solution,
        deadline: Option<Instant>,
        stats: &mut Stats,
    ) -> Result<Solution, String> {
        self.solver.push();
        let mut fixed_slots = vec![false; self.present.len()];
        let mut fixed_chans = vec![false; self.chans.len()];
        let result = loop {
            let in_slots: std::collections::HashSet<_> = sol.slots.iter().copied().collect();
            let in_chans: std::collections::HashSet<_> = sol.chans.iter().copied().collect();
            for (i, fixed) in fixed_slots.iter_mut().enumerate() {
                if !*fixed && !in_slots.contains(&(i as u32)) {
                    self.solver.assert(self.present[i].not());
                    *fixed = true;
                }
            }
            for (i, fixed) in fixed_chans.iter_mut().enumerate() {
                if !*fixed && !in_chans.contains(&(i as u32)) {
                    self.solver.assert(self.chans[i].not());
                    *fixed = true;
                }
            }
            let parts = self.parts_of(&sol);
            if parts.is_empty() {
                break Ok(sol);
            }
            let step = Bool::new_const(format!("shrink!{}", stats.minimise_steps));
            stats.minimise_steps += 1;
            self.solver.assert(step.implies(Bool::or(&parts.iter().map(|b| b.not()).collect::<Vec<_>>())));
            match self.check(&[step], false, deadline) {
                SatResult::Sat => sol = self.extract(),
                SatResult::Unsat => break Ok(sol),
                SatResult::Unknown => {
                    break Err(format!(
                        "gave up while removing superfluous parts ({})",
                        self.solver.get_reason_unknown().unwrap_or_else(|| "timeout".into())
                    ))
                }
            }
        };
        self.solver.pop(1);
        result
    }
}
