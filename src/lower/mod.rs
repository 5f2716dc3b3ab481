//! Lowering: grounding a checked goal into a propositional + pseudo-Boolean
//! form over instance slots and channel variables. Knows nothing of Z3.
//!
//! * **Slots.** Component `C` on available host `h` gets
//!   `min(maxperhost, maxinstances)` slots; a slot is a place where one
//!   instance may run, with a presence variable. Placement is implied by the
//!   slot, so `hostof(x)` and host attributes are constants once `x` is
//!   grounded to a slot: only presence and channels are unknown.
//! * **Channels.** A channel variable per pair of (slot, port) ends, only for
//!   *candidate* port pairs: those a `connectsto` names, and every compatible
//!   pair between two components that some `connectedto` relates, in a
//!   position where a channel can help (positive polarity). A channel that
//!   no atom can use positively is never needed: removing it from any
//!   solution keeps every clause true. `reachable` paths may need other
//!   channels; [`ChannelScope::Full`] adds every compatible pair, and `solve`
//!   falls back to it when an unsatisfiable core involves `reachable`.
//! * **Quantifiers** expand over slots guarded by presence (`forall`:
//!   `present → body`, `exists`: `present ∧ body`) and over available hosts.
//! * **Counting.** `card` and `sum` become linear forms over node literals,
//!   and comparisons of linear forms become pseudo-Boolean constraints
//!   ([`Node::Pb`]) with positive coefficients.
//! * **Reachability** stays symbolic ([`Node::Reach`]); the common
//!   `forall T a, b in deployment (reachable(a, b))` becomes one
//!   [`Node::StronglyConnected`], which `solve` encodes in O(edges).
//!
//! Nodes are hash-consed and simplified as they are built.

pub mod bounds;
pub mod objective;
pub mod state;
mod workload;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustc_hash::FxHashMap;

use crate::check::ir::*;

/// Index of a ground node.
pub type NodeId = u32;
/// Index of an instance slot.
pub type SlotId = u32;
/// Index of a candidate channel.
pub type ChanId = u32;

/// A place where one instance of a component may run on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    pub comp: CompId,
    pub host: HostId,
    /// Position among the component's slots on this host (0, 1, …).
    pub k: u32,
}

/// One end of a candidate channel: a port of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct End {
    pub slot: SlotId,
    pub port: PortId,
}

/// A channel that may exist between two slot ports. `from` is the output end
/// when `directed`, else the end written first in the goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChanVar {
    pub from: End,
    pub to: End,
    pub directed: bool,
}

/// The comparison of a pseudo-Boolean constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PbOp {
    Le,
    Ge,
    Eq,
}

/// A ground formula node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    Const(bool),
    /// An instance runs in this slot.
    Present(SlotId),
    /// This candidate channel exists.
    Chan(ChanId),
    Not(NodeId),
    And(Vec<NodeId>),
    Or(Vec<NodeId>),
    /// `Σ coeff·node OP k`, every coefficient positive.
    Pb {
        terms: Vec<(NodeId, i64)>,
        op: PbOp,
        k: i64,
    },
    /// A path of channels leads from the first slot to the second (both present
    /// is guarded elsewhere).
    Reach(SlotId, SlotId),
    /// Every two present slots of the component reach each other.
    StronglyConnected(CompId),
    /// The host is available (only in groundings with
    /// [`Extra::host_lits`]; otherwise hosts in the grounding are up).
    HostUp(HostId),
}

/// A channel asked for by [`Extra::chans`]: from (slot, port), to (slot,
/// port), directed.
pub type ExtraChan = ((Slot, PortId), (Slot, PortId), bool);

/// Additions to a grounding for re-solving (`resolve`, `whatif`).
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Give each host an availability literal ([`Node::HostUp`]): host
    /// quantifiers range over the hosts that are up, and a slot can only be
    /// present on a host that is up. Lets one solver session answer "what if
    /// this host failed" under assumptions.
    pub host_lits: bool,
    /// Channels to have a variable for even where the channel scope would
    /// leave them out (the channels of a running deployment), as (from
    /// (slot, port), to (slot, port), directed). Requests naming a slot the
    /// grounding does not have are ignored.
    pub chans: Vec<ExtraChan>,
    /// With [`ChannelScope::Local`]: hosts whose slots get channel
    /// variables to every host, not only nearby ones (the hosts a failure
    /// disturbed, whose instances may need partners anywhere).
    pub wide_hosts: Vec<HostId>,
    /// A neighbourhood: on these hosts every slot is fixed — present for the
    /// listed slots, absent for the others — and so is every channel
    /// between two fixed slots (present for the requested [`Extra::chans`],
    /// absent otherwise). Fixed parts become constants, so the grounding
    /// keeps only what can change. A restriction: a configuration found is
    /// real, "none found" proves nothing.
    pub fixed_hosts: Vec<HostId>,
    pub fixed_present: Vec<Slot>,
}

/// Which port pairs get channel variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelScope {
    /// Only pairs some `connectsto`/`connectedto` can use (see module docs).
    Sparse,
    /// Every compatible pair: exact for `reachable` through any component.
    Full,
    /// Sparse pairs, and only between slots whose hosts are at most this far
    /// apart in the order of available hosts (cyclically). A restriction:
    /// a configuration found with it is a real one, but "none found" proves
    /// nothing, so `solve` then falls back to [`ChannelScope::Sparse`].
    Local(usize),
}

/// Limits on the size of a grounding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most ground nodes (each becomes a solver term).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_nodes: 30_000_000 }
    }
}

/// Why a goal could not be grounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LowerError {
    /// The grounding would be too large; the numbers say how large.
    TooLarge { what: String, estimate: u128, limit: u128 },
    /// An integer outside what the solver's pseudo-Boolean constraints take.
    Overflow(Loc),
    /// The program contained an error node (check had errors).
    Internal(String),
    /// A limit of the run (time, memory, cancellation) was reached while grounding.
    Stopped(crate::budget::LimitHit),
}

/// A grounded goal.
#[derive(Debug, Clone)]
pub struct Ground {
    pub scope: ChannelScope,
    /// Available hosts, in declaration order.
    pub hosts: Vec<HostId>,
    pub slots: Vec<Slot>,
    /// Slots of each component, in (host, k) order.
    pub slots_by_comp: Vec<Vec<SlotId>>,
    pub chans: Vec<ChanVar>,
    pub nodes: Vec<Node>,
    /// One root node per clause in force, parallel to `program.clauses`.
    pub clauses: Vec<NodeId>,
    /// Whether some `reachable` occurs where more channels help; with a
    /// sparse scope such a goal may need [`ChannelScope::Full`] when unsat.
    pub reach_positive: bool,
    /// Capacity of each component port: `Some(1)` for `p`, `Some(N)` for
    /// `p[N]`, `None` for `p[]`.
    pub port_caps: HashMap<(CompId, PortId), Option<u32>>,
    /// Each component's `maxinstances`.
    pub max_instances: Vec<Option<u32>>,
    /// Whether the sparse scope actually left out some compatible pairs.
    pub sparse_left_out: bool,
    /// Implied counting facts (see [`bounds`]).
    pub facts: Vec<bounds::CountFact>,
    /// Whether hosts have availability literals ([`Extra::host_lits`]).
    pub host_lits: bool,
    /// Slots fixed by [`Extra::fixed_hosts`] (present or absent), per slot.
    pub fixed_slots: Vec<Option<bool>>,
    /// Channels fixed present by [`Extra::fixed_hosts`].
    pub fixed_chans: std::collections::HashSet<ChanId>,
    /// Objectives and preferences, grounded (issue 19).
    pub objectives: objective::Objectives,
    slots_on: FxHashMap<(CompId, HostId), Vec<SlotId>>,
    chan_index: FxHashMap<(End, End), ChanId>,
    between: FxHashMap<(SlotId, SlotId), Vec<ChanId>>,
    /// Hash-consing: a fast non-cryptographic hash (the keys are our own).
    index: FxHashMap<Node, NodeId>,
    limits: Limits,
    /// Group values met so far (`zone z in deployment`): attribute, value,
    /// and the hosts that have it ([`workload`]).
    values: Vec<(String, Value, Vec<HostId>)>,
    /// The cases of `abs`/`min`/`max` occurrences being lowered ([`workload`]).
    choices: Vec<(usize, workload::Choice)>,
    /// Unary counters (sorting networks) over literal sets, by the sorted
    /// set ([`workload`]).
    counters: FxHashMap<Vec<NodeId>, Vec<NodeId>>,
    /// Per slot, the slots it has a candidate channel with (sorted); built
    /// once the channels are, for large quantifier domains (see
    /// [`Ground::partner_domain`]).
    partners: Vec<Vec<SlotId>>,
    /// Quantifier and count elements expanded so far (the budget is checked
    /// every few thousand, also when they fold to constants).
    steps: usize,
}

impl Ground {
    /// An empty grounding, standing in until the real one is attached.
    pub(crate) fn placeholder() -> Ground {
        Ground {
            scope: ChannelScope::Sparse,
            hosts: vec![],
            slots: vec![],
            slots_by_comp: vec![],
            chans: vec![],
            nodes: vec![],
            clauses: vec![],
            reach_positive: false,
            port_caps: HashMap::new(),
            max_instances: vec![],
            sparse_left_out: false,
            facts: vec![],
            host_lits: false,
            fixed_slots: vec![],
            fixed_chans: std::collections::HashSet::new(),
            objectives: Default::default(),
            slots_on: FxHashMap::default(),
            chan_index: FxHashMap::default(),
            between: FxHashMap::default(),
            index: FxHashMap::default(),
            limits: Limits::default(),
            values: vec![],
            choices: vec![],
            counters: FxHashMap::default(),
            partners: vec![],
            steps: 0,
        }
    }

    /// Slots of a component on a host.
    pub fn slots_on(&self, comp: CompId, host: HostId) -> &[SlotId] {
        self.slots_on.get(&(comp, host)).map(Vec::as_slice).unwrap_or(&[])
    }
    /// Channels incident to a slot's port.
    pub fn incident(&self) -> BTreeMap<End, Vec<ChanId>> {
        let mut m: BTreeMap<End, Vec<ChanId>> = BTreeMap::new();
        for (i, c) in self.chans.iter().enumerate() {
            m.entry(c.from).or_default().push(i as ChanId);
            m.entry(c.to).or_default().push(i as ChanId);
        }
        m
    }
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }
    /// Number of nodes, for size reports.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }
}

/// Grounds the clauses in force over the given available hosts.
pub fn lower(
    program: &Program,
    available: &[HostId],
    scope: ChannelScope,
    limits: Limits,
) -> Result<Ground, LowerError> {
    lower_with(program, available, scope, limits, &Extra::default())
}

/// [`lower`], with the additions re-solving needs.
pub fn lower_with(
    program: &Program,
    available: &[HostId],
    scope: ChannelScope,
    limits: Limits,
    extra: &Extra,
) -> Result<Ground, LowerError> {
    crate::budget::check().map_err(LowerError::Stopped)?;
    let mut partial = Partial(Ground {
        host_lits: extra.host_lits,
        scope,
        hosts: available.to_vec(),
        slots_by_comp: vec![vec![]; program.components.len()],
        port_caps: program
            .components
            .iter()
            .enumerate()
            .flat_map(|(c, comp)| comp.ports.iter().enumerate().map(move |(i, port)| ((c, i), port.capacity)))
            .collect(),
        max_instances: program.components.iter().map(|c| c.maxinstances).collect(),
        limits,
        ..Ground::placeholder()
    });
    let g = &mut partial.0;
    // Slots.
    let mut slot_estimate: u128 = 0;
    for comp in &program.components {
        let per_host = comp.maxinstances.map_or(comp.maxperhost, |m| m.min(comp.maxperhost));
        slot_estimate += per_host as u128 * available.len() as u128;
    }
    if slot_estimate > limits.max_nodes as u128 {
        return Err(LowerError::TooLarge {
            what: "instance slots (maxperhost × hosts)".into(),
            estimate: slot_estimate,
            limit: limits.max_nodes as u128,
        });
    }
    for &h in available {
        for (c, comp) in program.components.iter().enumerate() {
            let per_host = comp.maxinstances.map_or(comp.maxperhost, |m| m.min(comp.maxperhost));
            for k in 0..per_host {
                let id = g.slots.len() as SlotId;
                g.slots.push(Slot { comp: c, host: h, k });
                g.slots_by_comp[c].push(id);
                g.slots_on.entry((c, h)).or_default().push(id);
            }
        }
    }
    // A neighbourhood's fixed slots.
    g.fixed_slots = vec![None; g.slots.len()];
    if !extra.fixed_hosts.is_empty() {
        for (i, sl) in g.slots.iter().enumerate() {
            if extra.fixed_hosts.contains(&sl.host) {
                g.fixed_slots[i] = Some(extra.fixed_present.contains(sl));
            }
        }
    }
    // Candidate channels.
    let scan = scan_program(program);
    g.reach_positive = scan.reach_positive;
    let pairs = candidate_pairs(program, &scan, scope, &mut g.sparse_left_out);
    let mut chan_estimate: u128 = 0;
    for p in &pairs {
        let (a, b) = (g.slots_by_comp[p.0 .0].len() as u128, g.slots_by_comp[p.1 .0].len() as u128);
        chan_estimate += match scope {
            ChannelScope::Local(r) => a.min(b) * (2 * r as u128 + 1) * 4,
            _ => a * b,
        };
    }
    // A local scope leaves most channels out, so most of the quantifier
    // expansion folds to constants: the node budget (checked as nodes are
    // made) bounds it instead of the estimate.
    let work = if matches!(scope, ChannelScope::Local(_)) { 0 } else { estimate_work(program, g) };
    if chan_estimate + work > limits.max_nodes as u128 {
        return Err(LowerError::TooLarge {
            what: workload::what_grows(program, g, chan_estimate, work),
            estimate: chan_estimate + work,
            limit: limits.max_nodes as u128,
        });
    }
    let host_pos: HashMap<HostId, usize> = available.iter().enumerate().map(|(i, &h)| (h, i)).collect();
    let nh = available.len();
    let near = |x: SlotId, y: SlotId, g: &Ground| match scope {
        ChannelScope::Local(r) => {
            let (hx, hy) = (g.slots[x as usize].host, g.slots[y as usize].host);
            let (i, j) = (host_pos[&hx], host_pos[&hy]);
            let d = i.abs_diff(j);
            d.min(nh - d) <= r || extra.wide_hosts.contains(&hx) || extra.wide_hosts.contains(&hy)
        }
        _ => true,
    };
    // With a local scope, the partners of a slot are looked up on the
    // nearby hosts (and the wide ones) instead of scanned among all slots:
    // O(slots × radius), not O(slots²). In slot order, as a scan would.
    let nearby = |x: SlotId, cb: CompId, g: &Ground| -> Option<Vec<SlotId>> {
        let ChannelScope::Local(r) = scope else { return None };
        let hx = g.slots[x as usize].host;
        if 2 * r + 1 >= nh || extra.wide_hosts.contains(&hx) {
            return None;
        }
        let i = host_pos[&hx];
        let mut ys: Vec<SlotId> = vec![];
        for d in 0..=2 * r {
            let j = (i + nh + d - r) % nh;
            ys.extend_from_slice(g.slots_on(cb, available[j]));
        }
        for &w in &extra.wide_hosts {
            ys.extend_from_slice(g.slots_on(cb, w));
        }
        ys.sort_unstable();
        ys.dedup();
        Some(ys)
    };
    for &((ca, pa), (cb, pb), directed) in &pairs {
        let (sa, sb) = (g.slots_by_comp[ca].clone(), g.slots_by_comp[cb].clone());
        for &x in &sa {
            crate::budget::check().map_err(LowerError::Stopped)?;
            let near_ys = nearby(x, cb, g);
            for &y in near_ys.as_deref().unwrap_or(&sb) {
                if x == y || (ca == cb && pa == pb && x > y) || !near(x, y, g) {
                    continue;
                }
                // Fixed in a neighbourhood: between two fixed slots, or at an absent one.
                let (fx, fy) = (g.fixed_slots[x as usize], g.fixed_slots[y as usize]);
                if (fx.is_some() && fy.is_some()) || fx == Some(false) || fy == Some(false) {
                    continue;
                }
                g.add_chan(End { slot: x, port: pa }, End { slot: y, port: pb }, directed);
            }
        }
    }
    for &((sa, pa), (sb, pb), directed) in &extra.chans {
        let find = |s: Slot, g: &Ground| g.slots_on(s.comp, s.host).get(s.k as usize).copied();
        let (Some(x), Some(y)) = (find(sa, g), find(sb, g)) else { continue };
        if x == y {
            continue;
        }
        let (fx, fy) = (g.fixed_slots[x as usize], g.fixed_slots[y as usize]);
        if fx == Some(false) || fy == Some(false) {
            continue;
        }
        if let Some(id) = g.add_chan(End { slot: x, port: pa }, End { slot: y, port: pb }, directed) {
            if fx.is_some() && fy.is_some() {
                g.fixed_chans.insert(id);
            }
        }
    }
    g.facts = bounds::derive_on(program, available);
    // The grounding budget: no more nodes than the memory cap holds.
    g.limits.max_nodes = limits.max_nodes.min(crate::budget::node_budget());
    // Clauses.
    g.partners = vec![vec![]; g.slots.len()];
    for &(x, y) in g.between.keys() {
        g.partners[x as usize].push(y);
        g.partners[y as usize].push(x);
    }
    for v in &mut g.partners {
        v.sort_unstable();
        v.dedup();
    }
    let mut env: Vec<Option<Val>> = vec![None; program.vars.len()];
    for clause in &program.clauses {
        let n = g.formula(program, &clause.formula, &mut env)?;
        g.clauses.push(n);
    }
    g.objectives = objective::ground(program, g, &mut env)?;
    Ok(std::mem::replace(g, Ground::placeholder()))
}

/// A grounding being built. When a limit stops it and the process ends
/// right after ([`crate::budget::exit_after_stop`]), it is left for the
/// operating system to free: freeing millions of nodes and index entries
/// one by one takes a good part of a second after the limit, for nothing.
struct Partial(Ground);

impl Drop for Partial {
    fn drop(&mut self) {
        if crate::budget::exit_after_stop() && crate::budget::stopped() {
            std::mem::forget(std::mem::replace(&mut self.0, Ground::placeholder()));
        }
    }
}

fn norm(a: End, b: End) -> (End, End) {
    if a <= b {
        (a, b)
    } else {
        (b, a)
    }
}

/// What a grounded variable stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Slot(SlotId),
    Host(HostId),
    /// A group value (`zone z in deployment`), by index in `Ground::values`.
    Value(u32),
}

/// A ground value of a non-integer term.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GVal {
    Slot(SlotId),
    Host(HostId),
    Value(Value),
}

/// `Σ coeff·node + constant`.
#[derive(Debug, Clone, Default)]
struct Lin {
    terms: Vec<(NodeId, i64)>,
    constant: i64,
}

impl Lin {
    fn scale(mut self, k: i64) -> Option<Lin> {
        for t in &mut self.terms {
            t.1 = t.1.checked_mul(k)?;
        }
        self.constant = self.constant.checked_mul(k)?;
        Some(self)
    }
    fn add(mut self, other: Lin) -> Option<Lin> {
        self.terms.extend(other.terms);
        self.constant = self.constant.checked_add(other.constant)?;
        Some(self)
    }
}

impl Ground {
    /// Adds a channel variable between two slot ports, unless one exists.
    fn add_chan(&mut self, from: End, to: End, directed: bool) -> Option<ChanId> {
        let key = norm(from, to);
        if self.chan_index.contains_key(&key) {
            return None;
        }
        let id = self.chans.len() as ChanId;
        self.chans.push(ChanVar { from, to, directed });
        self.chan_index.insert(key, id);
        let (x, y) = (from.slot, to.slot);
        self.between.entry((x.min(y), x.max(y))).or_default().push(id);
        Some(id)
    }

    fn intern(&mut self, n: Node) -> Result<NodeId, LowerError> {
        if let Some(&id) = self.index.get(&n) {
            return Ok(id);
        }
        if self.nodes.len() % 4096 == 0 {
            crate::budget::check().map_err(LowerError::Stopped)?;
        }
        if self.nodes.len() >= self.limits.max_nodes {
            let what = if self.limits.max_nodes == crate::budget::node_budget() {
                format!(
                    "ground formula nodes (the limit follows from the memory limit, {} MiB)",
                    crate::budget::memory_limit() >> 20
                )
            } else {
                "ground formula nodes".into()
            };
            return Err(LowerError::TooLarge {
                what,
                estimate: self.nodes.len() as u128 + 1,
                limit: self.limits.max_nodes as u128,
            });
        }
        let id = self.nodes.len() as NodeId;
        self.nodes.push(n.clone());
        self.index.insert(n, id);
        Ok(id)
    }

    fn konst(&mut self, b: bool) -> Result<NodeId, LowerError> {
        self.intern(Node::Const(b))
    }

    fn is_const(&self, n: NodeId) -> Option<bool> {
        match self.nodes[n as usize] {
            Node::Const(b) => Some(b),
            _ => None,
        }
    }

    fn not(&mut self, a: NodeId) -> Result<NodeId, LowerError> {
        match &self.nodes[a as usize] {
            Node::Const(b) => {
                let b = !*b;
                self.konst(b)
            }
            Node::Not(x) => Ok(*x),
            _ => self.intern(Node::Not(a)),
        }
    }

    fn and(&mut self, parts: Vec<NodeId>) -> Result<NodeId, LowerError> {
        self.junction(parts, true)
    }

    fn or(&mut self, parts: Vec<NodeId>) -> Result<NodeId, LowerError> {
        self.junction(parts, false)
    }

    /// `and` (is_and) or `or` with flattening, constants and duplicates removed.
    fn junction(&mut self, parts: Vec<NodeId>, is_and: bool) -> Result<NodeId, LowerError> {
        let mut set = BTreeSet::new();
        let mut stack = parts;
        while let Some(p) = stack.pop() {
            match (&self.nodes[p as usize], is_and) {
                (Node::Const(b), _) if *b == is_and => {}
                (Node::Const(_), _) => return self.konst(!is_and),
                (Node::And(v), true) | (Node::Or(v), false) => stack.extend(v.iter().copied()),
                _ => {
                    set.insert(p);
                }
            }
        }
        if is_and && set.len() > 1 {
            // A channel implies both end slots are present: `present(s)` next
            // to a conjunct that needs a channel at `s` adds nothing.
            let implied: Vec<NodeId> = set
                .iter()
                .copied()
                .filter(|&p| match self.nodes[p as usize] {
                    Node::Present(s) => set.iter().any(|&q| q != p && self.needs_channel_at(q, s)),
                    _ => false,
                })
                .collect();
            for p in implied {
                set.remove(&p);
            }
        }
        match set.len() {
            0 => self.konst(is_and),
            1 => Ok(set.into_iter().next().unwrap_or(0)),
            _ => {
                let v: Vec<NodeId> = set.into_iter().collect();
                self.intern(if is_and { Node::And(v) } else { Node::Or(v) })
            }
        }
    }

    /// Whether the node can only be true with some channel at slot `s`
    /// (a channel there, or a disjunction of such).
    fn needs_channel_at(&self, n: NodeId, s: SlotId) -> bool {
        match &self.nodes[n as usize] {
            Node::Chan(c) => {
                let ch = self.chans[*c as usize];
                ch.from.slot == s || ch.to.slot == s
            }
            Node::Or(v) => !v.is_empty() && v.iter().all(|&x| self.needs_channel_at(x, s)),
            Node::And(v) => v.iter().any(|&x| self.needs_channel_at(x, s)),
            _ => false,
        }
    }

    fn implies(&mut self, a: NodeId, b: NodeId) -> Result<NodeId, LowerError> {
        let na = self.not(a)?;
        self.or(vec![na, b])
    }

    /// `lin OP 0` as a pseudo-Boolean node with positive coefficients.
    fn pb(&mut self, lin: Lin, op: CmpOp, loc: Loc) -> Result<NodeId, LowerError> {
        let ovf = || LowerError::Overflow(loc);
        // Merge duplicate literals; fold constants.
        let mut merged: BTreeMap<NodeId, i64> = BTreeMap::new();
        let mut constant = lin.constant;
        for (n, c) in lin.terms {
            match self.is_const(n) {
                Some(true) => constant = constant.checked_add(c).ok_or_else(ovf)?,
                Some(false) => {}
                None => {
                    let e = merged.entry(n).or_insert(0);
                    *e = e.checked_add(c).ok_or_else(ovf)?;
                }
            }
        }
        // Σ c·x + constant OP 0  ⇒  Σ c·x OP -constant; negative c: c·x = c - c·¬x.
        let mut k = constant.checked_neg().ok_or_else(ovf)?;
        let mut terms = vec![];
        for (n, c) in merged {
            if c == 0 {
                continue;
            }
            if c > 0 {
                terms.push((n, c));
            } else {
                let nn = self.not(n)?;
                k = k.checked_sub(c).ok_or_else(ovf)?;
                terms.push((nn, c.checked_neg().ok_or_else(ovf)?));
            }
        }
        let (op, k, negate) = match op {
            CmpOp::Le => (PbOp::Le, k, false),
            CmpOp::Lt => (PbOp::Le, k.checked_sub(1).ok_or_else(ovf)?, false),
            CmpOp::Ge => (PbOp::Ge, k, false),
            CmpOp::Gt => (PbOp::Ge, k.checked_add(1).ok_or_else(ovf)?, false),
            CmpOp::Eq => (PbOp::Eq, k, false),
            CmpOp::Ne => (PbOp::Eq, k, true),
        };
        let total: i64 = terms.iter().try_fold(0i64, |a, t| a.checked_add(t.1)).ok_or_else(ovf)?;
        let fixed = match op {
            PbOp::Le if k >= total => Some(true),
            PbOp::Le if k < 0 => Some(false),
            PbOp::Ge if k <= 0 => Some(true),
            PbOp::Ge if k > total => Some(false),
            PbOp::Eq if k < 0 || k > total => Some(false),
            PbOp::Eq if terms.is_empty() => Some(k == 0),
            _ => None,
        };
        let node = match fixed {
            Some(b) => self.konst(b)?,
            None => {
                // Single-literal and all-literal cases as plain logic.
                if terms.iter().all(|t| t.1 == 1) {
                    let lits: Vec<NodeId> = terms.iter().map(|t| t.0).collect();
                    match (op, k) {
                        (PbOp::Ge, 1) => self.or(lits)?,
                        (PbOp::Le, kk) if kk as usize + 1 == lits.len() => {
                            let negs = lits.iter().map(|&l| self.not(l)).collect::<Result<Vec<_>, _>>()?;
                            self.or(negs)?
                        }
                        (PbOp::Ge, kk) | (PbOp::Eq, kk) if kk as usize == lits.len() => self.and(lits)?,
                        (PbOp::Le, 0) | (PbOp::Eq, 0) => {
                            let negs = lits.iter().map(|&l| self.not(l)).collect::<Result<Vec<_>, _>>()?;
                            self.and(negs)?
                        }
                        _ => self.intern(Node::Pb { terms, op, k })?,
                    }
                } else {
                    self.intern(Node::Pb { terms, op, k })?
                }
            }
        };
        if negate {
            self.not(node)
        } else {
            Ok(node)
        }
    }

    fn slot_of(&self, env: &[Option<Val>], v: VarId) -> Result<SlotId, LowerError> {
        match env.get(v).copied().flatten() {
            Some(Val::Slot(s)) => Ok(s),
            _ => Err(LowerError::Internal(format!("variable {v} is not bound to an instance slot"))),
        }
    }

    /// The elements a binder ranges over: slots (with presence guards) or hosts.
    fn domain(
        &mut self,
        program: &Program,
        var: VarId,
        d: &Domain,
        env: &mut Vec<Option<Val>>,
    ) -> Result<Vec<Val>, LowerError> {
        match (program.vars[var].sort, d) {
            (Sort::Group(g), _) => self.group_values(program, g),
            (Sort::Host, Domain::Group { attr, value }) => {
                Ok(self.group_hosts(program, attr, value, env)?.into_iter().map(Val::Host).collect())
            }
            (Sort::Instance(c), Domain::Group { attr, value }) => {
                let hosts = self.group_hosts(program, attr, value, env)?;
                Ok(hosts.into_iter().flat_map(|h| self.slots_on(c, h).iter().map(|&s| Val::Slot(s))).collect())
            }
            (Sort::Host, _) => Ok(self.hosts.iter().map(|&h| Val::Host(h)).collect()),
            (Sort::Instance(c), Domain::Deployment) => {
                Ok(self.slots_by_comp[c].iter().map(|&s| Val::Slot(s)).collect())
            }
            (Sort::Instance(c), Domain::OnHost(t)) => match self.value(program, t, env)? {
                GVal::Host(h) => Ok(self.slots_on(c, h).iter().map(|&s| Val::Slot(s)).collect()),
                other => Err(LowerError::Internal(format!("domain is not a host: {other:?}"))),
            },
        }
    }

    /// A channel's node: a constant when a neighbourhood fixes it.
    fn chan_node(&mut self, c: ChanId) -> Result<NodeId, LowerError> {
        if self.fixed_chans.contains(&c) {
            self.konst(true)
        } else {
            self.intern(Node::Chan(c))
        }
    }

    /// Counts one quantifier or count element; checks the run's budget
    /// every few thousand (elements that fold to constants make no nodes,
    /// so [`Ground::intern`]'s check alone would not see them).
    fn step(&mut self) -> Result<(), LowerError> {
        self.steps += 1;
        if self.steps % 2048 == 0 {
            crate::budget::check().map_err(LowerError::Stopped)?;
        }
        Ok(())
    }

    /// For `exists x (… and x.p connectsto y.q and …)`, or a count whose
    /// condition is such a conjunction (or `connectedto`), with `y` already
    /// bound to a slot: only the slots with a candidate channel to `y`'s
    /// slot can make the body true; every other element gives a false part,
    /// which `or` (and a count) drops anyway. So the expansion over the
    /// partners (in domain order) is the same formula, in O(partners)
    /// instead of O(domain). Small domains keep the plain expansion.
    fn partner_domain(&self, var: VarId, body: &Formula, env: &[Option<Val>], elems: &[Val]) -> Option<Vec<Val>> {
        const PARTNER_MIN: usize = 128;
        if elems.len() < PARTNER_MIN || self.partners.is_empty() {
            return None;
        }
        let outer = required_partner(body, var, env)?;
        let (comp, host) = match elems.first() {
            Some(Val::Slot(s)) => {
                let sl = self.slots[*s as usize];
                (sl.comp, sl.host)
            }
            _ => return None,
        };
        // Every element on one host: a domain `in h`.
        let one_host = elems.iter().all(|e| matches!(e, Val::Slot(s) if self.slots[*s as usize].host == host));
        let fewer: Vec<Val> = self.partners[outer as usize]
            .iter()
            .filter(|&&s| {
                let sl = self.slots[s as usize];
                sl.comp == comp && (!one_host || sl.host == host)
            })
            .map(|&s| Val::Slot(s))
            .collect();
        Some(fewer)
    }

    fn guard(&mut self, v: Val) -> Result<NodeId, LowerError> {
        match v {
            Val::Slot(s) => match self.fixed_slots.get(s as usize).copied().flatten() {
                Some(b) => self.konst(b),
                None => self.intern(Node::Present(s)),
            },
            Val::Host(h) if self.host_lits => self.intern(Node::HostUp(h)),
            Val::Host(_) => self.konst(true),
            Val::Value(i) => self.value_guard(i),
        }
    }

    fn formula(&mut self, p: &Program, f: &Formula, env: &mut Vec<Option<Val>>) -> Result<NodeId, LowerError> {
        match &f.kind {
            FormulaKind::Const(b) => self.konst(*b),
            FormulaKind::Not(a) => {
                let a = self.formula(p, a, env)?;
                self.not(a)
            }
            FormulaKind::And(v) | FormulaKind::Or(v) => {
                let mut parts = Vec::with_capacity(v.len());
                for x in v {
                    parts.push(self.formula(p, x, env)?);
                }
                if matches!(f.kind, FormulaKind::And(_)) {
                    self.and(parts)
                } else {
                    self.or(parts)
                }
            }
            FormulaKind::Implies(a, b) => {
                let a = self.formula(p, a, env)?;
                let b = self.formula(p, b, env)?;
                self.implies(a, b)
            }
            FormulaKind::Cmp(op, a, b) => {
                if a.ty == Type::Int && (a.has_extreme() || b.has_extreme() || !self.choices.is_empty()) {
                    self.cmp_by_cases(p, *op, a, b, env, f.loc)
                } else if a.ty == Type::Int {
                    let la = self.lin(p, a, env)?;
                    let lb = self.lin(p, b, env)?.scale(-1).ok_or(LowerError::Overflow(f.loc))?;
                    let l = la.add(lb).ok_or(LowerError::Overflow(f.loc))?;
                    let n = self.pb(l, *op, f.loc)?;
                    self.count_over_groups(p, n)
                } else {
                    let (va, vb) = (self.value(p, a, env)?, self.value(p, b, env)?);
                    match op {
                        CmpOp::Eq => self.konst(va == vb),
                        CmpOp::Ne => self.konst(va != vb),
                        _ => Err(LowerError::Internal("ordering on non-integers".into())),
                    }
                }
            }
            FormulaKind::Connects { a, pa, b, pb } => {
                let (x, y) = (self.slot_of(env, *a)?, self.slot_of(env, *b)?);
                if x == y {
                    return self.konst(false);
                }
                match self.chan_index.get(&norm(End { slot: x, port: *pa }, End { slot: y, port: *pb })) {
                    Some(&c) => self.chan_node(c),
                    None => self.konst(false),
                }
            }
            FormulaKind::Connected(a, b) => {
                let (x, y) = (self.slot_of(env, *a)?, self.slot_of(env, *b)?);
                let chans = self.between.get(&(x.min(y), x.max(y))).cloned().unwrap_or_default();
                let lits = chans.into_iter().map(|c| self.chan_node(c)).collect::<Result<Vec<_>, _>>()?;
                self.or(lits)
            }
            FormulaKind::Reachable(a, b) => {
                let (x, y) = (self.slot_of(env, *a)?, self.slot_of(env, *b)?);
                if x == y {
                    self.konst(true)
                } else {
                    self.intern(Node::Reach(x, y))
                }
            }
            FormulaKind::Quant { q, var, domain, body } => {
                if let Some(c) = strongly_connected_pattern(p, f) {
                    return self.intern(Node::StronglyConnected(c));
                }
                let mut elems = self.domain(p, *var, domain, env)?;
                if *q == Quantifier::Exists {
                    if let Some(fewer) = self.partner_domain(*var, body, env, &elems) {
                        elems = fewer;
                    }
                }
                let mut parts = Vec::with_capacity(elems.len());
                for e in elems {
                    self.step()?;
                    env[*var] = Some(e);
                    let g = self.guard(e)?;
                    let b = self.formula(p, body, env)?;
                    parts.push(match q {
                        Quantifier::Forall => self.implies(g, b)?,
                        Quantifier::Exists => self.and(vec![g, b])?,
                    });
                }
                env[*var] = None;
                match q {
                    Quantifier::Forall => self.and(parts),
                    Quantifier::Exists => self.or(parts),
                }
            }
            FormulaKind::Error => Err(LowerError::Internal("error formula in a checked program".into())),
        }
    }

    /// A group value (`zone z in deployment`) in words: `zone = "eu"`.
    pub fn group_value_text(&self, v: u32) -> String {
        self.values.get(v as usize).map(|(attr, val, _)| format!("{attr} {val}")).unwrap_or_default()
    }

    fn value(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<GVal, LowerError> {
        Ok(match &t.kind {
            TermKind::Str(s) => GVal::Value(Value::Str(s.clone())),
            TermKind::Bool(b) => GVal::Value(Value::Bool(*b)),
            TermKind::Int(n) => GVal::Value(Value::Int(*n)),
            TermKind::Var(v) => match env.get(*v).copied().flatten() {
                Some(Val::Slot(s)) => GVal::Slot(s),
                Some(Val::Host(h)) => GVal::Host(h),
                Some(Val::Value(i)) => GVal::Value(self.group_value(i)?),
                None => return Err(LowerError::Internal(format!("unbound variable {v}"))),
            },
            TermKind::Host(h) => GVal::Host(*h),
            TermKind::HostOf(v) => GVal::Host(self.slots[self.slot_of(env, *v)? as usize].host),
            TermKind::HostAttr(h, name) => match self.value(p, h, env)? {
                GVal::Host(h) => match p.hosts[h].attr(name) {
                    Some(v) => GVal::Value(v.clone()),
                    None => return Err(LowerError::Internal(format!("host {} lacks {name}", p.hosts[h].name))),
                },
                other => return Err(LowerError::Internal(format!("attribute of a non-host {other:?}"))),
            },
            _ => {
                let l = self.lin(p, t, env)?;
                if !l.terms.is_empty() {
                    return Err(LowerError::Internal("non-constant value term".into()));
                }
                GVal::Value(Value::Int(l.constant))
            }
        })
    }

    fn lin(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<Lin, LowerError> {
        let ovf = LowerError::Overflow(t.loc);
        Ok(match &t.kind {
            TermKind::Int(n) => Lin { terms: vec![], constant: *n },
            TermKind::HostAttr(..) => match self.value(p, t, env)? {
                GVal::Value(Value::Int(n)) => Lin { terms: vec![], constant: n },
                _ => return Err(LowerError::Internal("integer attribute expected".into())),
            },
            TermKind::Neg(a) => self.lin(p, a, env)?.scale(-1).ok_or(ovf)?,
            TermKind::Add(v) => {
                let mut acc = Lin::default();
                for (neg, x) in v {
                    let l = self.lin(p, x, env)?;
                    let l = if *neg { l.scale(-1).ok_or(LowerError::Overflow(t.loc))? } else { l };
                    acc = acc.add(l).ok_or(LowerError::Overflow(t.loc))?;
                }
                acc
            }
            TermKind::Mul(a, b) => {
                let (la, lb) = (self.lin(p, a, env)?, self.lin(p, b, env)?);
                if la.terms.is_empty() {
                    lb.scale(la.constant).ok_or(ovf)?
                } else if lb.terms.is_empty() {
                    la.scale(lb.constant).ok_or(ovf)?
                } else {
                    return Err(LowerError::Internal("product of two non-constant terms".into()));
                }
            }
            TermKind::Count(b) | TermKind::Sum(b, _) => {
                let body = if let TermKind::Sum(_, body) = &t.kind { Some(body) } else { None };
                let mut elems = self.domain(p, b.var, &b.domain, env)?;
                if let Some(fewer) = b.cond.as_ref().and_then(|c| self.partner_domain(b.var, c, env, &elems)) {
                    elems = fewer;
                }
                let mut acc = Lin::default();
                for e in elems {
                    self.step()?;
                    env[b.var] = Some(e);
                    let mut guard = self.guard(e)?;
                    if let Some(c) = &b.cond {
                        let c = self.formula(p, c, env)?;
                        guard = self.and(vec![guard, c])?;
                    }
                    if self.is_const(guard) == Some(false) {
                        continue;
                    }
                    match body {
                        None => acc.terms.push((guard, 1)),
                        Some(body) => {
                            let l = self.lin(p, body, env)?;
                            for (n, c) in l.terms {
                                let both = self.and(vec![guard, n])?;
                                acc.terms.push((both, c));
                            }
                            if l.constant != 0 {
                                acc.terms.push((guard, l.constant));
                            }
                        }
                    }
                }
                env[b.var] = None;
                acc
            }
            TermKind::Abs(_) | TermKind::Extreme { .. } | TermKind::Aggregate { .. } => self.lin_extreme(p, t, env)?,
            // An integer group value (`rack r in deployment`, racks numbered).
            TermKind::Var(v) if matches!(env.get(*v).copied().flatten(), Some(Val::Value(_))) => {
                match self.value(p, t, env)? {
                    GVal::Value(Value::Int(n)) => Lin { terms: vec![], constant: n },
                    _ => return Err(LowerError::Internal("non-integer group value in arithmetic".into())),
                }
            }
            TermKind::Var(_) | TermKind::Host(_) | TermKind::HostOf(_) | TermKind::Str(_) | TermKind::Bool(_) => {
                return Err(LowerError::Internal("non-integer term in arithmetic".into()))
            }
            TermKind::Param(_) | TermKind::Error => {
                return Err(LowerError::Internal("error term in a checked program".into()))
            }
        })
    }
}

/// A slot the bound variable `var` must have a channel with for `f` to
/// hold: `f` is (a conjunction with) `var.p connectsto y.q`, or
/// `var connectedto y`, either way round, `y` already bound to a slot.
fn required_partner(f: &Formula, var: VarId, env: &[Option<Val>]) -> Option<SlotId> {
    match &f.kind {
        FormulaKind::And(v) => v.iter().find_map(|x| required_partner(x, var, env)),
        FormulaKind::Connects { a, b, .. } | FormulaKind::Connected(a, b) => {
            let other = if *a == var {
                *b
            } else if *b == var {
                *a
            } else {
                return None;
            };
            match env.get(other).copied().flatten() {
                Some(Val::Slot(s)) if other != var => Some(s),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `forall T a in deployment (forall T b in deployment (reachable(a, b)))`
/// (either argument order): the component `T`.
fn strongly_connected_pattern(p: &Program, f: &Formula) -> Option<CompId> {
    let FormulaKind::Quant { q: Quantifier::Forall, var: a, domain: Domain::Deployment, body } = &f.kind else {
        return None;
    };
    let FormulaKind::Quant { q: Quantifier::Forall, var: b, domain: Domain::Deployment, body } = &body.kind else {
        return None;
    };
    let FormulaKind::Reachable(x, y) = &body.kind else { return None };
    let (Sort::Instance(ca), Sort::Instance(cb)) = (p.vars[*a].sort, p.vars[*b].sort) else { return None };
    let same_vars = (x == a && y == b) || (x == b && y == a);
    (ca == cb && same_vars && a != b).then_some(ca)
}

// ---- polarity scan: which channels can help ----

/// What the polarity scan found.
#[derive(Debug, Default)]
struct Scan {
    /// Port pairs named by `connectsto` where a channel helps, in goal order,
    /// each with its ends as written.
    connects: Vec<((CompId, PortId), (CompId, PortId))>,
    /// Every port pair a `connectsto` names, in any polarity, in goal order
    /// and with its ends as written: the first fixes a channel's end order.
    written: Vec<((CompId, PortId), (CompId, PortId))>,
    /// Component pairs related by `connectedto` where a channel helps.
    connected: BTreeSet<(CompId, CompId)>,
    reach_positive: bool,
}

fn scan_program(p: &Program) -> Scan {
    let mut s = Scan::default();
    for c in &p.clauses {
        scan_formula(p, &c.formula, true, false, &mut s);
    }
    // Objectives and preferences may want channels either way (issue 19).
    for o in &p.objectives {
        scan_term(p, &o.term, 1, true, true, &mut s);
    }
    for pref in &p.preferences {
        scan_formula(p, &pref.formula, true, true, &mut s);
    }
    s
}

/// Walks a formula with the polarities it occurs in (`pos`: more channels
/// can make the whole goal truer through it).
fn scan_formula(p: &Program, f: &Formula, pos: bool, neg: bool, s: &mut Scan) {
    match &f.kind {
        FormulaKind::Const(_) | FormulaKind::Error => {}
        FormulaKind::Not(a) => scan_formula(p, a, neg, pos, s),
        FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().for_each(|x| scan_formula(p, x, pos, neg, s)),
        FormulaKind::Implies(a, b) => {
            scan_formula(p, a, neg, pos, s);
            scan_formula(p, b, pos, neg, s);
        }
        FormulaKind::Quant { body, domain, .. } => {
            if let Domain::OnHost(t) = domain {
                scan_term(p, t, 0, pos, neg, s);
            }
            scan_formula(p, body, pos, neg, s)
        }
        FormulaKind::Connects { a, pa, b, pb } => {
            if let (Sort::Instance(ca), Sort::Instance(cb)) = (p.vars[*a].sort, p.vars[*b].sort) {
                let key = ((ca, *pa), (cb, *pb));
                let rev = ((cb, *pb), (ca, *pa));
                if !s.written.contains(&key) && !s.written.contains(&rev) {
                    s.written.push(key);
                }
                if pos && !s.connects.contains(&key) && !s.connects.contains(&rev) {
                    s.connects.push(key);
                }
            }
        }
        FormulaKind::Connected(a, b) => {
            if pos {
                if let (Sort::Instance(ca), Sort::Instance(cb)) = (p.vars[*a].sort, p.vars[*b].sort) {
                    s.connected.insert((ca.min(cb), ca.max(cb)));
                }
            }
        }
        FormulaKind::Reachable(..) => s.reach_positive |= pos,
        FormulaKind::Cmp(op, a, b) => {
            // In `a - b OP 0`, a count on the side that must grow helps.
            let (up, down) = match op {
                CmpOp::Le | CmpOp::Lt => (false, true),
                CmpOp::Ge | CmpOp::Gt => (true, false),
                CmpOp::Eq | CmpOp::Ne => (true, true),
            };
            // sign +1 for a, -1 for b; the count's condition helps when
            // increasing the count helps.
            for (t, sign) in [(a, 1i64), (b, -1i64)] {
                let grows_helps = if sign > 0 { up } else { down };
                let shrinks_helps = if sign > 0 { down } else { up };
                let (cp, cn) =
                    ((pos && grows_helps) || (neg && shrinks_helps), (pos && shrinks_helps) || (neg && grows_helps));
                scan_term(p, t, 1, cp, cn, s);
            }
        }
    }
}

/// Scans a term; `pos`/`neg` are the polarities for a count's condition when
/// the term occurs with a positive sign (`sign` > 0; flipped for negative).
fn scan_term(p: &Program, t: &Term, sign: i64, pos: bool, neg: bool, s: &mut Scan) {
    let (pp, nn) = if sign >= 0 { (pos, neg) } else { (neg, pos) };
    match &t.kind {
        TermKind::Count(b) => {
            if let Some(c) = &b.cond {
                scan_formula(p, c, pp, nn, s);
            }
        }
        TermKind::Sum(b, body) => {
            if let Some(c) = &b.cond {
                // The sign of the summed term decides; be conservative.
                scan_formula(p, c, true, true, s);
            }
            scan_term(p, body, sign, pos, neg, s);
        }
        TermKind::Neg(a) => scan_term(p, a, -sign, pos, neg, s),
        TermKind::Add(v) => {
            for (negd, x) in v {
                scan_term(p, x, if *negd { -sign } else { sign }, pos, neg, s)
            }
        }
        TermKind::Mul(a, b) => {
            let k = |t: &Term| match t.constant() {
                Some(Value::Int(k)) => Some(k),
                _ => None,
            };
            match (k(a), k(b)) {
                (Some(c), _) => scan_term(p, b, sign * c.signum(), pos, neg, s),
                (_, Some(c)) => scan_term(p, a, sign * c.signum(), pos, neg, s),
                _ => {
                    scan_term(p, a, 0, true, true, s);
                    scan_term(p, b, 0, true, true, s);
                }
            }
        }
        TermKind::HostAttr(h, _) => scan_term(p, h, sign, pos, neg, s),
        _ => {}
    }
}

/// Whether a channel may join these two ports at all (language.md §5–6).
pub fn compatible(a: &Port, b: &Port) -> bool {
    use Direction::*;
    !matches!((a.direction, b.direction), (External, _) | (_, External) | (Input, Input) | (Output, Output))
}

type PortPair = ((CompId, PortId), (CompId, PortId), bool);

/// The candidate port pairs, each with its written order and whether it is
/// directed (then the first end is the output).
fn candidate_pairs(p: &Program, scan: &Scan, scope: ChannelScope, left_out: &mut bool) -> Vec<PortPair> {
    let mut out: Vec<PortPair> = vec![];
    let mut seen: BTreeSet<((CompId, PortId), (CompId, PortId))> = BTreeSet::new();
    let mut push = |a: (CompId, PortId), b: (CompId, PortId), out: &mut Vec<PortPair>| {
        let key = if a <= b { (a, b) } else { (b, a) };
        if !seen.insert(key) {
            return;
        }
        let (pa, pb) = (&p.components[a.0].ports[a.1], &p.components[b.0].ports[b.1]);
        if !compatible(pa, pb) {
            return;
        }
        let directed = pa.direction != Direction::Both && pb.direction != Direction::Both;
        if directed {
            // From the output end.
            out.push(if pa.direction == Direction::Input { (b, a, true) } else { (a, b, true) });
        } else if scan.written.contains(&(b, a)) {
            // The order of the first `connectsto` that names the pair.
            out.push((b, a, false));
        } else {
            out.push((a, b, false));
        }
    };
    for &(a, b) in &scan.connects {
        push(a, b, &mut out);
    }
    let all_pairs = |ca: CompId, cb: CompId| {
        let mut v = vec![];
        for i in 0..p.components[ca].ports.len() {
            for j in 0..p.components[cb].ports.len() {
                v.push(((ca, i), (cb, j)));
            }
        }
        v
    };
    for &(ca, cb) in &scan.connected {
        for (a, b) in all_pairs(ca, cb) {
            push(a, b, &mut out);
        }
    }
    let n = p.components.len();
    let before = out.len();
    let mut extra = vec![];
    for ca in 0..n {
        for cb in ca..n {
            for (a, b) in all_pairs(ca, cb) {
                let key = if a <= b { (a, b) } else { (b, a) };
                let (pa, pb) = (&p.components[a.0].ports[a.1], &p.components[b.0].ports[b.1]);
                if compatible(pa, pb)
                    && !out.iter().any(|o| (o.0 == key.0 && o.1 == key.1) || (o.0 == key.1 && o.1 == key.0))
                {
                    extra.push((a, b));
                }
            }
        }
    }
    *left_out = scan.reach_positive && !extra.is_empty();
    if scope == ChannelScope::Full {
        for (a, b) in extra {
            push(a, b, &mut out);
        }
    }
    let _ = before;
    out
}

/// A rough count of the ground terms the clauses expand into (product of
/// domain sizes along each quantifier nesting), to refuse huge goals early.
fn estimate_work(p: &Program, g: &Ground) -> u128 {
    p.clauses.iter().map(|c| estimate_clause(p, g, &c.formula)).fold(0u128, |a, b| a.saturating_add(b))
}

/// [`estimate_work`] of one clause.
fn estimate_clause(p: &Program, g: &Ground, clause: &Formula) -> u128 {
    fn dom(p: &Program, g: &Ground, var: VarId, d: &Domain) -> u128 {
        match (p.vars[var].sort, d) {
            (Sort::Group(k), _) => workload::distinct_values(p, g, k).max(1) as u128,
            (Sort::Instance(c), Domain::Group { .. }) => g.slots_by_comp[c].len().max(1) as u128,
            (Sort::Host, _) => g.hosts.len().max(1) as u128,
            (Sort::Instance(c), Domain::Deployment) => g.slots_by_comp[c].len().max(1) as u128,
            (Sort::Instance(c), Domain::OnHost(_)) => {
                let per = p.components[c].maxperhost.max(1) as u128;
                per.min(g.slots_by_comp[c].len().max(1) as u128)
            }
        }
    }
    fn f(p: &Program, g: &Ground, x: &Formula) -> u128 {
        match &x.kind {
            FormulaKind::Not(a) => f(p, g, a),
            FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().map(|y| f(p, g, y)).sum::<u128>() + 1,
            FormulaKind::Implies(a, b) => f(p, g, a) + f(p, g, b) + 1,
            FormulaKind::Quant { var, domain, body, .. } => dom(p, g, *var, domain).saturating_mul(f(p, g, body)),
            FormulaKind::Cmp(_, a, b) => {
                let d = |v: VarId, d: &Domain| dom(p, g, v, d);
                let cases = workload::cases(a, &d).saturating_mul(workload::cases(b, &d));
                (t(p, g, a) + t(p, g, b) + 1).saturating_mul(cases)
            }
            _ => 1,
        }
    }
    fn t(p: &Program, g: &Ground, x: &Term) -> u128 {
        match &x.kind {
            TermKind::Count(b) => dom(p, g, b.var, &b.domain).saturating_mul(b.cond.as_ref().map_or(1, |c| f(p, g, c))),
            TermKind::Sum(b, body) => {
                dom(p, g, b.var, &b.domain).saturating_mul(b.cond.as_ref().map_or(1, |c| f(p, g, c)) + t(p, g, body))
            }
            TermKind::Add(v) => v.iter().map(|(_, y)| t(p, g, y)).sum::<u128>() + 1,
            TermKind::Mul(a, b) => t(p, g, a) + t(p, g, b),
            TermKind::Neg(a) | TermKind::Abs(a) => t(p, g, a),
            TermKind::Extreme { args, .. } => args.iter().map(|y| t(p, g, y)).sum::<u128>() + 1,
            TermKind::Aggregate { binder: b, body, .. } => {
                dom(p, g, b.var, &b.domain).saturating_mul(b.cond.as_ref().map_or(1, |c| f(p, g, c)) + t(p, g, body))
            }
            _ => 1,
        }
    }
    f(p, g, clause)
}
