//! An incremental evaluator of a [`Ground`] goal under an assignment of
//! slots and channels: node values are kept up to date as single parts are
//! switched on or off (And/Or keep counts of true children, pseudo-Boolean
//! nodes their sums; reachability nodes are recomputed by breadth-first
//! search). Used to remove superfluous parts after solving (parsimony)
//! without calling the solver, and to check the solver's model.
//!
//! This evaluates the *ground* form built by `lower`; the independent
//! evaluator behind `verify` (`crate::eval`) shares none of this code.

use std::collections::VecDeque;

use super::{ChanId, Ground, Node, NodeId, PbOp, SlotId};

/// The value of every ground node under one assignment.
pub struct GroundState<'g> {
    g: &'g Ground,
    pub present: Vec<bool>,
    pub chans: Vec<bool>,
    val: Vec<bool>,
    /// The value of each node as its parents' counters account for it.
    seen: Vec<bool>,
    /// And/Or: number of true children; Pb: current weighted sum.
    acc: Vec<i64>,
    /// Parents of each node, with the child's weight in the parent.
    parents: Vec<Vec<(NodeId, i64)>>,
    leaf_present: Vec<Option<NodeId>>,
    leaf_chan: Vec<Option<NodeId>>,
    reach_nodes: Vec<NodeId>,
    /// How many clause roots are false (counted per clause).
    false_clauses: usize,
    root_count: Vec<u32>,
    /// Channels at each slot.
    slot_chans: Vec<Vec<ChanId>>,
    /// The switched-on channels at each slot: searches for reachability
    /// follow these only, O(present channels) rather than O(candidates).
    on_chans: Vec<Vec<ChanId>>,
    /// Hosts that are down (only meaningful with [`Ground::host_lits`]).
    down: Vec<super::HostId>,
}

impl<'g> GroundState<'g> {
    /// Evaluates every node under the given present slots and channels.
    pub fn new(g: &'g Ground, slots: &[SlotId], chans: &[ChanId]) -> Self {
        Self::with_down(g, slots, chans, &[])
    }

    /// [`GroundState::new`] with some hosts down: their [`Node::HostUp`]
    /// literals are false (groundings with host literals only).
    pub fn with_down(g: &'g Ground, slots: &[SlotId], chans: &[ChanId], down: &[super::HostId]) -> Self {
        let n = g.nodes.len();
        let mut present = vec![false; g.slots.len()];
        for &s in slots {
            present[s as usize] = true;
        }
        let mut chan_on = vec![false; g.chans.len()];
        for &c in chans {
            chan_on[c as usize] = true;
        }
        let mut parents: Vec<Vec<(NodeId, i64)>> = vec![vec![]; n];
        let mut leaf_present = vec![None; g.slots.len()];
        let mut leaf_chan = vec![None; g.chans.len()];
        let mut reach_nodes = vec![];
        for (i, node) in g.nodes.iter().enumerate() {
            let id = i as NodeId;
            match node {
                Node::Present(s) => leaf_present[*s as usize] = Some(id),
                Node::Chan(c) => leaf_chan[*c as usize] = Some(id),
                Node::Not(a) => parents[*a as usize].push((id, 1)),
                Node::And(v) | Node::Or(v) => v.iter().for_each(|&x| parents[x as usize].push((id, 1))),
                Node::Pb { terms, .. } => terms.iter().for_each(|&(x, c)| parents[x as usize].push((id, c))),
                Node::Reach(..) | Node::StronglyConnected(_) => reach_nodes.push(id),
                Node::Const(_) | Node::HostUp(_) => {}
            }
        }
        let mut root_count = vec![0u32; n];
        for &r in &g.clauses {
            root_count[r as usize] += 1;
        }
        let mut slot_chans = vec![vec![]; g.slots.len()];
        for (i, c) in g.chans.iter().enumerate() {
            slot_chans[c.from.slot as usize].push(i as ChanId);
            slot_chans[c.to.slot as usize].push(i as ChanId);
        }
        let mut on_chans = vec![vec![]; g.slots.len()];
        for &c in chans {
            let ch = g.chans[c as usize];
            on_chans[ch.from.slot as usize].push(c);
            on_chans[ch.to.slot as usize].push(c);
        }
        let mut st = GroundState {
            on_chans,
            g,
            present,
            chans: chan_on,
            val: vec![false; n],
            seen: vec![],
            acc: vec![0; n],
            parents,
            leaf_present,
            leaf_chan,
            reach_nodes,
            false_clauses: 0,
            root_count,
            slot_chans,
            down: down.to_vec(),
        };
        // Children have smaller ids than their parents: one pass in id order.
        for i in 0..n {
            let (v, a) = st.compute(i as NodeId);
            st.val[i] = v;
            st.acc[i] = a;
        }
        st.seen = st.val.clone();
        st.false_clauses = g.clauses.iter().filter(|&&r| !st.val[r as usize]).count();
        st
    }

    /// Whether every clause in force holds.
    pub fn all_clauses_hold(&self) -> bool {
        self.false_clauses == 0
    }

    /// The clauses (indices) that are false now.
    pub fn false_clauses(&self) -> Vec<usize> {
        self.g.clauses.iter().enumerate().filter(|(_, &r)| !self.val[r as usize]).map(|(i, _)| i).collect()
    }

    fn compute(&self, id: NodeId) -> (bool, i64) {
        match &self.g.nodes[id as usize] {
            Node::Const(b) => (*b, 0),
            Node::HostUp(h) => (!self.down.contains(h), 0),
            Node::Present(s) => (self.present[*s as usize], 0),
            Node::Chan(c) => (self.chans[*c as usize], 0),
            Node::Not(a) => (!self.val[*a as usize], 0),
            Node::And(v) => {
                let t = v.iter().filter(|&&x| self.val[x as usize]).count() as i64;
                (t == v.len() as i64, t)
            }
            Node::Or(v) => {
                let t = v.iter().filter(|&&x| self.val[x as usize]).count() as i64;
                (t > 0, t)
            }
            Node::Pb { terms, op, k } => {
                let sum: i64 = terms.iter().filter(|&&(x, _)| self.val[x as usize]).map(|&(_, c)| c).sum();
                (pb_holds(*op, sum, *k), sum)
            }
            Node::Reach(a, b) => (self.reaches(*a).contains(&(*b as usize)), 0),
            Node::StronglyConnected(c) => (self.strongly_connected(*c), 0),
        }
    }

    fn value_from_acc(&self, id: NodeId) -> bool {
        match &self.g.nodes[id as usize] {
            Node::And(v) => self.acc[id as usize] == v.len() as i64,
            Node::Or(_) => self.acc[id as usize] > 0,
            Node::Pb { op, k, .. } => pb_holds(*op, self.acc[id as usize], *k),
            _ => self.val[id as usize],
        }
    }

    /// Slots reachable from `src` through present channels (directed ones
    /// only from their output end).
    fn reaches(&self, src: SlotId) -> Reached {
        reach_set(self.g, &self.chans, &self.on_chans, src, true)
    }

    /// Records a channel switched on or off in [`GroundState::on_chans`].
    fn track(&mut self, c: ChanId, on: bool) {
        let ch = self.g.chans[c as usize];
        for s in [ch.from.slot, ch.to.slot] {
            let list = &mut self.on_chans[s as usize];
            if on {
                list.push(c);
            } else if let Some(i) = list.iter().position(|&x| x == c) {
                list.swap_remove(i);
            }
        }
    }

    fn strongly_connected(&self, comp: usize) -> bool {
        let members: Vec<SlotId> =
            self.g.slots_by_comp[comp].iter().copied().filter(|&s| self.present[s as usize]).collect();
        let Some(&root) = members.first() else { return true };
        let fwd = reach_set(self.g, &self.chans, &self.on_chans, root, true);
        let bwd = reach_set(self.g, &self.chans, &self.on_chans, root, false);
        members.iter().all(|&m| fwd.contains(&(m as usize)) && bwd.contains(&(m as usize)))
    }

    /// Propagates a change of node values from the given nodes upwards.
    fn propagate(&mut self, mut changed: Vec<NodeId>) {
        while let Some(id) = changed.pop() {
            let now = self.val[id as usize];
            if now == self.seen[id as usize] {
                continue; // flipped back before its parents saw it
            }
            self.seen[id as usize] = now;
            if self.root_count[id as usize] > 0 {
                let k = self.root_count[id as usize] as usize;
                if now {
                    self.false_clauses -= k;
                } else {
                    self.false_clauses += k;
                }
            }
            for i in 0..self.parents[id as usize].len() {
                let (p, w) = self.parents[id as usize][i];
                let pu = p as usize;
                match &self.g.nodes[pu] {
                    Node::Not(_) => {}
                    Node::Pb { .. } => self.acc[pu] += if now { w } else { -w },
                    _ => self.acc[pu] += if now { 1 } else { -1 },
                }
                let new = match &self.g.nodes[pu] {
                    Node::Not(_) => !now,
                    _ => self.value_from_acc(p),
                };
                if new != self.val[pu] {
                    self.val[pu] = new;
                    changed.push(p);
                }
            }
        }
    }

    fn set_leaf(&mut self, leaf: Option<NodeId>, v: bool, out: &mut Vec<NodeId>) {
        if let Some(id) = leaf {
            if self.val[id as usize] != v {
                self.val[id as usize] = v;
                out.push(id);
            }
        }
    }

    fn refresh_reach(&mut self) {
        self.refresh_reach_from(None)
    }

    /// Recomputes reachability nodes, or takes their values from a snapshot
    /// (when a change is undone, the graph is the one the snapshot saw).
    fn refresh_reach_from(&mut self, snapshot: Option<&[bool]>) {
        let mut changed = vec![];
        for i in 0..self.reach_nodes.len() {
            let id = self.reach_nodes[i];
            let v = match snapshot {
                Some(snap) => snap[i],
                None => self.compute(id).0,
            };
            if v != self.val[id as usize] {
                self.val[id as usize] = v;
                changed.push(id);
            }
        }
        self.propagate(changed);
    }

    /// Switches a channel on or off.
    pub fn set_chan(&mut self, c: ChanId, on: bool) {
        self.set_chan_inner(c, on, None);
    }

    fn set_chan_inner(&mut self, c: ChanId, on: bool, snapshot: Option<&[bool]>) {
        if self.chans[c as usize] == on {
            return;
        }
        // With the channel off: if its ends are joined by another path
        // anyway, switching it changes no reachability at all.
        if on && snapshot.is_none() && !self.reach_nodes.is_empty() {
            let bypass = self.bypassed(c);
            self.chans[c as usize] = true;
            self.track(c, true);
            self.leaf_changed(c, true, if bypass { Some(&[]) } else { None });
            return;
        }
        self.chans[c as usize] = on;
        self.track(c, on);
        let bypass = !on && snapshot.is_none() && !self.reach_nodes.is_empty() && self.bypassed(c);
        self.leaf_changed(c, on, if bypass { Some(&[]) } else { snapshot });
    }

    /// Propagates a channel's new value; reachability is recomputed, taken
    /// from a snapshot, or (an empty snapshot) known to be unchanged.
    fn leaf_changed(&mut self, c: ChanId, on: bool, snapshot: Option<&[bool]>) {
        let mut changed = vec![];
        self.set_leaf(self.leaf_chan[c as usize], on, &mut changed);
        self.propagate(changed);
        match snapshot {
            Some([]) => {}
            other => self.refresh_reach_from(other),
        }
    }

    /// Whether the switched-on channels other than `c` lead from its output
    /// end to its input end (either way when undirected): then `c` adds no
    /// path, and reachability is the same with or without it. A search that
    /// stops when it arrives: usually a few steps (a client's second
    /// channel to its router), at worst the whole graph.
    fn bypassed(&self, c: ChanId) -> bool {
        let ch = self.g.chans[c as usize];
        let (from, to) = (ch.from.slot as usize, ch.to.slot as usize);
        self.path_without(c, from, to) && (ch.directed || self.path_without(c, to, from))
    }

    /// Whether switched-on channels other than `c` lead from `from` to `to`.
    fn path_without(&self, c: ChanId, from: usize, to: usize) -> bool {
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![from];
        seen.insert(from);
        while let Some(u) = stack.pop() {
            for &d in &self.on_chans[u] {
                if d == c || !self.chans[d as usize] {
                    continue;
                }
                let e = self.g.chans[d as usize];
                let (tail, head) = (e.from.slot as usize, e.to.slot as usize);
                let next = if tail == u {
                    head
                } else if !e.directed {
                    tail
                } else {
                    continue;
                };
                if next == to {
                    return true;
                }
                if seen.insert(next) {
                    stack.push(next);
                }
            }
        }
        false
    }

    fn reach_snapshot(&self) -> Vec<bool> {
        self.reach_nodes.iter().map(|&id| self.val[id as usize]).collect()
    }

    /// Switches a slot on or off; switching it off also removes its channels.
    /// Returns the channels removed.
    pub fn set_slot(&mut self, s: SlotId, on: bool) -> Vec<ChanId> {
        let mut removed = vec![];
        let mut changed = vec![];
        if !on {
            for i in 0..self.slot_chans[s as usize].len() {
                let c = self.slot_chans[s as usize][i];
                if self.chans[c as usize] {
                    self.chans[c as usize] = false;
                    self.track(c, false);
                    removed.push(c);
                    self.set_leaf(self.leaf_chan[c as usize], false, &mut changed);
                }
            }
        }
        self.present[s as usize] = on;
        self.set_leaf(self.leaf_present[s as usize], on, &mut changed);
        self.propagate(changed);
        self.refresh_reach();
        removed
    }

    /// Removes parts one at a time, keeping each removal that leaves every
    /// clause true, until no single part can be removed: the result is
    /// parsimonious in the sense of language.md §6. Deterministic: channels
    /// then slots, in index order, repeated to a fixpoint.
    pub fn make_parsimonious(&mut self) -> usize {
        self.make_parsimonious_except(&Default::default(), &Default::default())
    }

    /// [`GroundState::make_parsimonious`], never removing the given slots
    /// and channels (the kept parts of a re-solved deployment).
    pub fn make_parsimonious_except(
        &mut self,
        keep_slots: &std::collections::BTreeSet<SlotId>,
        keep_chans: &std::collections::BTreeSet<ChanId>,
    ) -> usize {
        self.make_parsimonious_keeping(keep_slots, keep_chans, &|_| true)
    }

    /// The value of a ground node under the current assignment.
    pub fn holds(&self, n: NodeId) -> bool {
        self.val[n as usize]
    }

    /// [`GroundState::make_parsimonious_except`], keeping only removals
    /// after which `ok` also holds (no objective gets worse: issue 19).
    pub fn make_parsimonious_keeping(
        &mut self,
        keep_slots: &std::collections::BTreeSet<SlotId>,
        keep_chans: &std::collections::BTreeSet<ChanId>,
        ok: &dyn Fn(&GroundState) -> bool,
    ) -> usize {
        let mut passes = 0;
        loop {
            passes += 1;
            let mut changed = false;
            for c in 0..self.chans.len() as ChanId {
                if !self.chans[c as usize] || keep_chans.contains(&c) {
                    continue;
                }
                // A limit reached: stop (the caller sees it and gives up).
                if c % 64 == 0 && crate::budget::stopped() {
                    return passes;
                }
                let snap = self.reach_snapshot();
                self.set_chan(c, false);
                if self.all_clauses_hold() && ok(self) {
                    changed = true;
                } else {
                    self.set_chan_inner(c, true, Some(&snap));
                }
            }
            for s in 0..self.present.len() as SlotId {
                if !self.present[s as usize] || keep_slots.contains(&s) {
                    continue;
                }
                if s % 16 == 0 && crate::budget::stopped() {
                    return passes;
                }
                let snap = self.reach_snapshot();
                let removed = self.set_slot(s, false);
                if self.all_clauses_hold() && ok(self) {
                    changed = true;
                } else {
                    self.set_slot(s, true);
                    for c in removed {
                        self.set_chan_inner(c, true, Some(&snap));
                    }
                    self.refresh_reach_from(Some(&snap));
                }
            }
            if !changed {
                return passes;
            }
        }
    }

    /// The present slots and channels.
    pub fn parts(&self) -> (Vec<SlotId>, Vec<ChanId>) {
        (
            (0..self.present.len()).filter(|&i| self.present[i]).map(|i| i as SlotId).collect(),
            (0..self.chans.len()).filter(|&i| self.chans[i]).map(|i| i as ChanId).collect(),
        )
    }
}

fn pb_holds(op: PbOp, sum: i64, k: i64) -> bool {
    match op {
        PbOp::Le => sum <= k,
        PbOp::Ge => sum >= k,
        PbOp::Eq => sum == k,
    }
}

/// Slots reachable from `src` through switched-on channels (directed ones
/// only from their output end), or, with `forward` false, the slots that
/// reach `src`.
pub fn reach_set(g: &Ground, chans_on: &[bool], slot_chans: &[Vec<ChanId>], src: SlotId, forward: bool) -> Reached {
    let mut seen = vec![false; g.slots.len()];
    let mut q = VecDeque::from([src as usize]);
    seen[src as usize] = true;
    let mut list = vec![src as usize];
    while let Some(u) = q.pop_front() {
        for &c in &slot_chans[u] {
            if !chans_on[c as usize] {
                continue;
            }
            let ch = g.chans[c as usize];
            let (tail, head) = if forward {
                (ch.from.slot as usize, ch.to.slot as usize)
            } else {
                (ch.to.slot as usize, ch.from.slot as usize)
            };
            let next = if tail == u {
                head
            } else if !ch.directed {
                tail
            } else {
                continue;
            };
            if !seen[next] {
                seen[next] = true;
                list.push(next);
                q.push_back(next);
            }
        }
    }
    Reached { seen, list }
}

/// The slots a search reached: membership by index, and the list.
pub struct Reached {
    seen: Vec<bool>,
    pub list: Vec<usize>,
}

impl Reached {
    pub fn contains(&self, s: &usize) -> bool {
        self.seen.get(*s).copied().unwrap_or(false)
    }
    pub fn iter(&self) -> impl Iterator<Item = &usize> {
        self.list.iter()
    }
}

/// The channels at each slot.
pub fn slot_channels(g: &Ground) -> Vec<Vec<ChanId>> {
    let mut v = vec![vec![]; g.slots.len()];
    for (i, c) in g.chans.iter().enumerate() {
        v[c.from.slot as usize].push(i as ChanId);
        v[c.to.slot as usize].push(i as ChanId);
    }
    v
}
