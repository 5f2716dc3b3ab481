//! Lowering the workload terms (issue 19): `abs`, `min`, `max` and their
//! aggregates, and grouping by a host attribute's value.
//!
//! The ground form has no integer variables, only pseudo-Boolean
//! constraints, so an `abs`/`min`/`max` is decided **by cases inside the
//! comparison it stands in**. `max(a₁, …, aₙ) + r ≤ k` holds exactly when
//! every `aᵢ + r ≤ k` does (a conjunction), `max(…) + r ≥ k` when some does
//! (a disjunction); `min` is the mirror image, a negative coefficient swaps
//! the two, `=` is `≤` and `≥`, `!=` its negation, and `abs(t)` is
//! `max(t, -t)`. An aggregate over a binder is the same with one case per
//! element, each guarded by the element being present (and its `where`), and
//! one more case, "nothing present", in which the aggregate is 0. Each case
//! is a [`Choice`] recorded for that occurrence while the comparison is
//! lowered again; `lin` reads the choice. The size is the product of the
//! numbers of cases of the occurrences in one comparison: `max(zone z …) -
//! min(zone z …) <= 1` over 10 zones is 100 pseudo-Boolean constraints.
//!
//! The cardinality constraints those cases end in, and in a goal that
//! groups hosts every count over hosts of several zones, are read from
//! unary counters (sorting networks, one per literal set, zones first and
//! then merged): see [`Ground::unary`] and [`Ground::counter`].
//!
//! A group (`zone z in deployment`) ranges over the values the attribute
//! takes on the grounding's hosts, in host order; with host literals a value
//! is present when one of its hosts is up.

use super::*;

/// Which case of an `abs`/`min`/`max` occurrence is being lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// `abs(t)` as `t` (false) or `-t` (true).
    Sign(bool),
    /// `min`/`max` of a list: this argument.
    Index(usize),
    /// An aggregate: the element now bound to its variable.
    Elem,
    /// An aggregate with nothing in its domain: 0.
    Zero,
    /// A threshold: the occurrence stands for this value (see
    /// [`Ground::cmp_by_cases`], "thresholds").
    Const(i64),
}

/// An occurrence still to decide: its address (identity in the program),
/// whether it is a maximum, and the sign of its coefficient.
struct Open<'t> {
    term: &'t Term,
    is_max: bool,
    sign: i64,
}

impl Ground {
    /// The index of a group value (attribute, value), interned with the
    /// grounding's hosts that have it.
    fn value_id(&mut self, attr: &str, v: &Value, hosts: Vec<HostId>) -> u32 {
        match self.values.iter().position(|(a, x, _)| a == attr && x == v) {
            Some(i) => i as u32,
            None => {
                self.values.push((attr.to_string(), v.clone(), hosts));
                (self.values.len() - 1) as u32
            }
        }
    }

    /// A group value by index.
    pub(super) fn group_value(&self, i: u32) -> Result<Value, LowerError> {
        self.values
            .get(i as usize)
            .map(|x| x.1.clone())
            .ok_or_else(|| LowerError::Internal(format!("group value #{i}")))
    }

    /// The values group `g`'s attribute takes on the grounding's hosts.
    pub(super) fn group_values(&mut self, p: &Program, g: usize) -> Result<Vec<Val>, LowerError> {
        let attr = p.groups.get(g).ok_or_else(|| LowerError::Internal(format!("group #{g}")))?.clone();
        let mut seen: Vec<(Value, Vec<HostId>)> = vec![];
        for &h in &self.hosts {
            if let Some(v) = p.hosts[h].attr(&attr) {
                match seen.iter_mut().find(|(x, _)| x == v) {
                    Some((_, hs)) => hs.push(h),
                    None => seen.push((v.clone(), vec![h])),
                }
            }
        }
        Ok(seen.into_iter().map(|(v, hs)| Val::Value(self.value_id(&attr, &v, hs))).collect())
    }

    /// The grounding's hosts whose attribute `attr` equals the value of `t`.
    pub(super) fn group_hosts(
        &mut self,
        p: &Program,
        attr: &str,
        t: &Term,
        env: &mut Vec<Option<Val>>,
    ) -> Result<Vec<HostId>, LowerError> {
        let v = match self.value(p, t, env)? {
            GVal::Value(v) => v,
            other => return Err(LowerError::Internal(format!("group value is not a value: {other:?}"))),
        };
        Ok(self.hosts.iter().copied().filter(|&h| p.hosts[h].attr(attr) == Some(&v)).collect())
    }

    /// A group value is present when one of its hosts is (with host literals).
    pub(super) fn value_guard(&mut self, i: u32) -> Result<NodeId, LowerError> {
        if !self.host_lits {
            return self.konst(true);
        }
        let hosts = self.values.get(i as usize).map(|x| x.2.clone()).unwrap_or_default();
        let lits = hosts.into_iter().map(|h| self.intern(Node::HostUp(h))).collect::<Result<Vec<_>, _>>()?;
        self.or(lits)
    }

    fn choice(&self, t: &Term) -> Option<Choice> {
        let addr = t as *const Term as usize;
        self.choices.iter().rev().find(|(a, _)| *a == addr).map(|(_, c)| *c)
    }

    /// `lin` of an `abs`/`min`/`max` occurrence: its chosen case.
    pub(super) fn lin_extreme(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<Lin, LowerError> {
        let undecided = || LowerError::Internal("an `abs`/`min`/`max` outside a comparison".into());
        let c = self.choice(t).ok_or_else(undecided)?;
        match (&t.kind, c) {
            (TermKind::Abs(a), Choice::Sign(neg)) => {
                let l = self.lin(p, a, env)?;
                if neg {
                    l.scale(-1).ok_or(LowerError::Overflow(t.loc))
                } else {
                    Ok(l)
                }
            }
            (TermKind::Extreme { args, .. }, Choice::Index(i)) => match args.get(i) {
                Some(a) => self.lin(p, a, env),
                None => Err(undecided()),
            },
            (TermKind::Aggregate { body, .. }, Choice::Elem) => self.lin(p, body, env),
            (TermKind::Aggregate { .. }, Choice::Zero) => Ok(Lin::default()),
            (_, Choice::Const(m)) => Ok(Lin { terms: vec![], constant: m }),
            _ => Err(undecided()),
        }
    }

    /// The first undecided occurrence in `t`, whose coefficient in the
    /// comparison has sign `sign`.
    fn open<'t>(&self, t: &'t Term, sign: i64) -> Option<Open<'t>> {
        match &t.kind {
            _ if matches!(self.choice(t), Some(Choice::Const(_))) => None,
            TermKind::Abs(a) => match self.choice(t) {
                Some(Choice::Sign(neg)) => self.open(a, if neg { -sign } else { sign }),
                _ => Some(Open { term: t, is_max: true, sign }),
            },
            TermKind::Extreme { max, args } => match self.choice(t) {
                Some(Choice::Index(i)) => args.get(i).and_then(|a| self.open(a, sign)),
                _ => Some(Open { term: t, is_max: *max, sign }),
            },
            TermKind::Aggregate { max, body, .. } => match self.choice(t) {
                Some(Choice::Elem) => self.open(body, sign),
                Some(_) => None,
                None => Some(Open { term: t, is_max: *max, sign }),
            },
            TermKind::Neg(a) => self.open(a, -sign),
            TermKind::Add(v) => v.iter().find_map(|(neg, x)| self.open(x, if *neg { -sign } else { sign })),
            TermKind::Mul(a, b) => {
                let k = |x: &Term| match x.constant() {
                    Some(Value::Int(k)) if k < 0 => -1,
                    _ => 1,
                };
                self.open(a, sign * k(b)).or_else(|| self.open(b, sign * k(a)))
            }
            _ => None,
        }
    }

    /// `a op b` where `abs`/`min`/`max` occur: by cases (module docs).
    pub(super) fn cmp_by_cases(
        &mut self,
        p: &Program,
        op: CmpOp,
        a: &Term,
        b: &Term,
        env: &mut Vec<Option<Val>>,
        loc: Loc,
    ) -> Result<NodeId, LowerError> {
        match op {
            CmpOp::Eq => {
                let le = self.cmp_by_cases(p, CmpOp::Le, a, b, env, loc)?;
                let ge = self.cmp_by_cases(p, CmpOp::Ge, a, b, env, loc)?;
                return self.and(vec![le, ge]);
            }
            CmpOp::Ne => {
                let eq = self.cmp_by_cases(p, CmpOp::Eq, a, b, env, loc)?;
                return self.not(eq);
            }
            _ => {}
        }
        let Some(occ) = self.open(a, 1).or_else(|| self.open(b, -1)) else {
            let la = self.lin(p, a, env)?;
            let lb = self.lin(p, b, env)?.scale(-1).ok_or(LowerError::Overflow(loc))?;
            let l = la.add(lb).ok_or(LowerError::Overflow(loc))?;
            let n = self.pb(l, op, loc)?;
            return self.unary(p, n);
        };
        let upper = matches!(op, CmpOp::Le | CmpOp::Lt);
        // Every case must hold (a conjunction of implications) or some case
        // holds (a disjunction of conjunctions).
        let all = occ.is_max ^ (occ.sign < 0) ^ !upper;
        let addr = occ.term as *const Term as usize;
        // Thresholds: when every case must hold and another occurrence
        // remains (`max(…) - min(…) <= k`), the cases of the two would be
        // multiplied into constraints mixing both sides, which solvers
        // handle badly. Instead, for every value m in the occurrence's
        // range: the occurrence is below m (above m, for a minimum) or the
        // comparison holds with m in its place. Exact, because the
        // comparison is monotone in the occurrence (take m = its value).
        if all && self.choices.iter().all(|(a, _)| *a != addr) {
            self.choices.push((addr, Choice::Const(0)));
            let another = self.open(a, 1).or_else(|| self.open(b, -1)).is_some();
            self.choices.pop();
            if another {
                if let Some((lo, hi)) = self.range(p, occ.term, env)? {
                    if hi - lo <= MAX_THRESHOLDS {
                        // A ladder: for every m, the occurrence is on the
                        // near side of m (a conjunction of cardinality
                        // constraints) or the comparison holds with m in its
                        // place. Clauses over shared threshold atoms, which
                        // propagate both ways.
                        let mut parts = vec![];
                        for m in lo..=hi {
                            let near = if occ.is_max { m - 1 } else { m + 1 };
                            let bound = self.bound(p, occ.term, occ.is_max, near, env, loc)?;
                            if self.is_const(bound) == Some(true) {
                                continue;
                            }
                            self.choices.push((addr, Choice::Const(m)));
                            let rest = self.cmp_by_cases(p, op, a, b, env, loc);
                            self.choices.pop();
                            let rest = rest?;
                            parts.push(self.or(vec![bound, rest])?);
                        }
                        return self.and(parts);
                    }
                }
            }
        }
        let mut parts = vec![];
        let mut case = |g: &mut Ground, guard: NodeId, c: Choice, env: &mut Vec<Option<Val>>| {
            if g.is_const(guard) == Some(false) {
                return Ok::<(), LowerError>(());
            }
            g.choices.push((addr, c));
            let r = g.cmp_by_cases(p, op, a, b, env, loc);
            g.choices.pop();
            let r = r?;
            parts.push(if all { g.implies(guard, r)? } else { g.and(vec![guard, r])? });
            Ok(())
        };
        match &occ.term.kind {
            TermKind::Abs(_) => {
                let t = self.konst(true)?;
                case(self, t, Choice::Sign(false), env)?;
                case(self, t, Choice::Sign(true), env)?;
            }
            TermKind::Extreme { args, .. } => {
                let t = self.konst(true)?;
                for i in 0..args.len() {
                    case(self, t, Choice::Index(i), env)?;
                }
            }
            TermKind::Aggregate { binder, .. } => {
                let elems = self.domain(p, binder.var, &binder.domain, env)?;
                let saved = env[binder.var];
                let mut guards = vec![];
                for e in elems {
                    env[binder.var] = Some(e);
                    let mut g = self.guard(e)?;
                    if let Some(c) = &binder.cond {
                        let c = self.formula(p, c, env)?;
                        g = self.and(vec![g, c])?;
                    }
                    guards.push(g);
                    case(self, g, Choice::Elem, env)?;
                }
                env[binder.var] = saved;
                let negs = guards.into_iter().map(|g| self.not(g)).collect::<Result<Vec<_>, _>>()?;
                let none = self.and(negs)?;
                case(self, none, Choice::Zero, env)?;
            }
            _ => return Err(LowerError::Internal("not an `abs`/`min`/`max`".into())),
        }
        if all {
            self.and(parts)
        } else {
            self.or(parts)
        }
    }
}

/// The widest range of thresholds tried for one occurrence.
const MAX_THRESHOLDS: i64 = 512;

/// The fewest literals a count needs to be read from a unary counter.
const MIN_COUNTER: usize = 8;

impl Ground {
    /// A cardinality constraint of a comparison with `abs`/`min`/`max`
    /// (`Σ x ≥ k`, `≤`, `=`, unit coefficients) as output bits of a unary
    /// counter over its literals; anything else unchanged.
    ///
    /// Comparisons by cases and thresholds compare the same count (the
    /// instances in one zone) with many values: `count ≤ m - 1` and
    /// `count ≥ m - 1` for every m. As separate pseudo-Boolean atoms the
    /// solver cannot propagate between them — deciding one says nothing
    /// about the next — and the search over which zone holds how many
    /// flounders (200 hosts in 10 zones took 9 s, 500 gave up after
    /// 120 s). One sorting network per literal set gives bit i ⇔ "at least
    /// i + 1 are true", defined by its comparators (`a ∨ b`, `a ∧ b`, both
    /// directions), so every threshold is one shared literal and the
    /// thresholds imply each other by unit propagation. Exact: each bit is
    /// equivalent to its cardinality constraint.
    pub(super) fn unary(&mut self, p: &Program, n: NodeId) -> Result<NodeId, LowerError> {
        let (terms, op, k) = match self.node(n) {
            Node::Not(x) => {
                let x = *x;
                if !matches!(self.node(x), Node::Pb { .. }) {
                    return Ok(n);
                }
                let u = self.unary(p, x)?;
                return self.not(u);
            }
            Node::Pb { terms, op, k } => (terms.clone(), *op, *k),
            _ => return Ok(n),
        };
        if terms.len() < MIN_COUNTER || terms.iter().any(|t| t.1 != 1) {
            return Ok(n);
        }
        let mut lits: Vec<NodeId> = terms.iter().map(|t| t.0).collect();
        let (mut op, mut k) = (op, k);
        // `Σ ¬x ≤ k` is `Σ x ≥ n - k`: one counter for both.
        let inner: Vec<NodeId> = lits
            .iter()
            .filter_map(|&l| match self.node(l) {
                Node::Not(x) => Some(*x),
                _ => None,
            })
            .collect();
        if inner.len() == lits.len() {
            lits = inner;
            k = lits.len() as i64 - k;
            op = match op {
                PbOp::Le => PbOp::Ge,
                PbOp::Ge => PbOp::Le,
                PbOp::Eq => PbOp::Eq,
            };
        }
        lits.sort_unstable();
        let bits = self.counter(p, lits)?;
        let at_least = |g: &mut Ground, k: i64| -> Result<NodeId, LowerError> {
            if k <= 0 {
                g.konst(true)
            } else {
                match usize::try_from(k - 1).ok().and_then(|i| bits.get(i)) {
                    Some(&b) => Ok(b),
                    None => g.konst(false),
                }
            }
        };
        match op {
            PbOp::Ge => at_least(self, k),
            PbOp::Le => {
                let a = at_least(self, k + 1)?;
                self.not(a)
            }
            PbOp::Eq => {
                let a = at_least(self, k)?;
                let b = at_least(self, k + 1)?;
                let nb = self.not(b)?;
                self.and(vec![a, nb])
            }
        }
    }

    /// A cardinality constraint outside `abs`/`min`/`max` (`card(instancesof
    /// Web in deployment) = 500`) over hosts of several zones, in a goal
    /// that groups hosts: read from the counter built on the zones' counters
    /// (see [`Ground::counter`]); anything else unchanged.
    pub(super) fn count_over_groups(&mut self, p: &Program, n: NodeId) -> Result<NodeId, LowerError> {
        if p.groups.is_empty() {
            return Ok(n);
        }
        let lits = match self.node(n) {
            Node::Pb { terms, .. } if terms.len() >= MIN_COUNTER && terms.iter().all(|t| t.1 == 1) => {
                terms.iter().map(|t| t.0).collect::<Vec<_>>()
            }
            _ => return Ok(n),
        };
        if self.cells(p, &lits).len() > 1 {
            self.unary(p, n)
        } else {
            Ok(n)
        }
    }

    /// The output bits of a counter over `lits` (sorted), true ones first:
    /// bit i ⇔ at least i + 1 of `lits` hold. Literals of slots on hosts
    /// with different values of a grouping attribute (zones) are counted
    /// per value first and the counts merged, so the count over all hosts
    /// (`card(instancesof Web in deployment) = 500`) is built on the
    /// counts per zone the spread compares: a zone that is too full then
    /// contradicts the total by propagation, where separate constraints
    /// needed a search over which hosts (a pigeonhole argument, which
    /// clause learning cannot make short). Within a cell, Batcher's
    /// odd-even merge sort, padded with false to a power of two (the
    /// constants fold away); O(n log² n) nodes, one network per set.
    fn counter(&mut self, p: &Program, lits: Vec<NodeId>) -> Result<Vec<NodeId>, LowerError> {
        if let Some(b) = self.counters.get(&lits) {
            return Ok(b.clone());
        }
        let n = lits.len();
        let cells = self.cells(p, &lits);
        let mut sorted = if cells.len() > 1 {
            let mut parts = vec![];
            for c in cells {
                parts.push(self.counter(p, c)?);
            }
            // A balanced tree of merges.
            while parts.len() > 1 {
                let mut next = vec![];
                let mut it = parts.into_iter();
                while let Some(a) = it.next() {
                    match it.next() {
                        Some(b) => next.push(self.merge_any(a, b)?),
                        None => next.push(a),
                    }
                }
                parts = next;
            }
            parts.pop().unwrap_or_default()
        } else {
            let f = self.konst(false)?;
            let mut v = lits.clone();
            v.resize(n.next_power_of_two(), f);
            self.sort_desc(v)?
        };
        sorted.truncate(n);
        self.counters.insert(lits, sorted.clone());
        Ok(sorted)
    }

    /// `lits` split by the value of the first grouping attribute on which
    /// their hosts differ (each cell sorted); one cell when they are not
    /// all slot literals or agree on every grouping attribute.
    fn cells(&self, p: &Program, lits: &[NodeId]) -> Vec<Vec<NodeId>> {
        let mut hosts = Vec::with_capacity(lits.len());
        for &l in lits {
            match self.node(l) {
                Node::Present(s) => match self.slots.get(*s as usize) {
                    Some(slot) => hosts.push(slot.host),
                    None => return vec![lits.to_vec()],
                },
                _ => return vec![lits.to_vec()],
            }
        }
        for attr in &p.groups {
            let mut cells: Vec<(Option<&Value>, Vec<NodeId>)> = vec![];
            for (&l, &h) in lits.iter().zip(&hosts) {
                let v = p.hosts.get(h).and_then(|x| x.attr(attr));
                match cells.iter_mut().find(|(x, _)| *x == v) {
                    Some((_, c)) => c.push(l),
                    None => cells.push((v, vec![l])),
                }
            }
            if cells.len() > 1 {
                return cells.into_iter().map(|(_, c)| c).collect();
            }
        }
        vec![lits.to_vec()]
    }

    /// Merges two sorted sequences of any lengths (padded with false to one
    /// power of two, truncated after).
    fn merge_any(&mut self, mut a: Vec<NodeId>, mut b: Vec<NodeId>) -> Result<Vec<NodeId>, LowerError> {
        let n = a.len() + b.len();
        let len = a.len().max(b.len()).max(1).next_power_of_two();
        let f = self.konst(false)?;
        a.resize(len, f);
        b.resize(len, f);
        let mut out = self.merge_desc(a, b)?;
        out.truncate(n);
        Ok(out)
    }

    fn sort_desc(&mut self, v: Vec<NodeId>) -> Result<Vec<NodeId>, LowerError> {
        if v.len() <= 1 {
            return Ok(v);
        }
        let mut a = v;
        let b = a.split_off(a.len() / 2);
        let a = self.sort_desc(a)?;
        let b = self.sort_desc(b)?;
        self.merge_desc(a, b)
    }

    /// A comparator's half: `a ∧ b` or `a ∨ b`, constants folded. Interned
    /// directly: [`Ground::and`]'s look for implied conjuncts walks its
    /// operands as trees, and a network's gates share deep operands.
    fn gate(&mut self, a: NodeId, b: NodeId, is_and: bool) -> Result<NodeId, LowerError> {
        match (self.is_const(a), self.is_const(b)) {
            (Some(x), _) if x == is_and => return Ok(b),
            (_, Some(x)) if x == is_and => return Ok(a),
            (Some(_), _) => return Ok(a),
            (_, Some(_)) => return Ok(b),
            _ => {}
        }
        if a == b {
            return Ok(a);
        }
        let v = vec![a.min(b), a.max(b)];
        self.intern(if is_and { Node::And(v) } else { Node::Or(v) })
    }

    /// Batcher's odd-even merge of two sorted sequences of one
    /// power-of-two length.
    fn merge_desc(&mut self, a: Vec<NodeId>, b: Vec<NodeId>) -> Result<Vec<NodeId>, LowerError> {
        if a.len() == 1 {
            let hi = self.gate(a[0], b[0], false)?;
            let lo = self.gate(a[0], b[0], true)?;
            return Ok(vec![hi, lo]);
        }
        let evens = |x: &[NodeId]| x.iter().step_by(2).copied().collect::<Vec<_>>();
        let odds = |x: &[NodeId]| x.iter().skip(1).step_by(2).copied().collect::<Vec<_>>();
        let v = self.merge_desc(evens(&a), evens(&b))?;
        let w = self.merge_desc(odds(&a), odds(&b))?;
        let n = v.len();
        let mut out = Vec::with_capacity(2 * n);
        out.push(v[0]);
        for i in 0..n - 1 {
            let hi = self.gate(w[i], v[i + 1], false)?;
            let lo = self.gate(w[i], v[i + 1], true)?;
            out.push(hi);
            out.push(lo);
        }
        out.push(w[n - 1]);
        Ok(out)
    }
}

impl Ground {
    /// Bounds of the values an `abs`/`min`/`max` occurrence can take (0
    /// included for an aggregate's empty case): the least lower bound and
    /// the greatest upper bound of its cases' linear forms.
    fn range(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<Option<(i64, i64)>, LowerError> {
        let addr = t as *const Term as usize;
        let mut lo = i64::MAX;
        let mut hi = i64::MIN;
        let mut see = |l: &Lin| -> Option<()> {
            let mut a = l.constant;
            let mut b = l.constant;
            for (_, c) in &l.terms {
                if *c < 0 {
                    a = a.checked_add(*c)?;
                } else {
                    b = b.checked_add(*c)?;
                }
            }
            lo = lo.min(a);
            hi = hi.max(b);
            Some(())
        };
        let mut cases: Vec<Choice> = vec![];
        match &t.kind {
            TermKind::Abs(_) => cases.extend([Choice::Sign(false), Choice::Sign(true)]),
            TermKind::Extreme { args, .. } => cases.extend((0..args.len()).map(Choice::Index)),
            TermKind::Aggregate { binder, .. } => {
                let elems = self.domain(p, binder.var, &binder.domain, env)?;
                let saved = env[binder.var];
                for e in elems {
                    env[binder.var] = Some(e);
                    self.choices.push((addr, Choice::Elem));
                    let l = self.lin_open(p, t, env);
                    self.choices.pop();
                    match l? {
                        Some(l) => {
                            if see(&l).is_none() {
                                env[binder.var] = saved;
                                return Ok(None);
                            }
                        }
                        None => {
                            env[binder.var] = saved;
                            return Ok(None);
                        }
                    }
                }
                env[binder.var] = saved;
                see(&Lin::default());
            }
            _ => return Ok(None),
        }
        for c in cases {
            self.choices.push((addr, c));
            let l = self.lin_open(p, t, env);
            self.choices.pop();
            match l? {
                Some(l) if see(&l).is_some() => {}
                _ => return Ok(None),
            }
        }
        Ok((lo <= hi).then_some((lo, hi)))
    }

    /// `lin` of a term whose cases are chosen down to its leaves; `None`
    /// when an occurrence inside it is still open (no range then).
    fn lin_open(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<Option<Lin>, LowerError> {
        let inner = match (&t.kind, self.choice(t)) {
            (TermKind::Abs(a), _) => a.as_ref(),
            (TermKind::Extreme { args, .. }, Some(Choice::Index(i))) => match args.get(i) {
                Some(a) => a,
                None => return Ok(None),
            },
            (TermKind::Aggregate { body, .. }, _) => body.as_ref(),
            _ => return Ok(None),
        };
        if self.open(inner, 1).is_some() {
            return Ok(None);
        }
        self.lin_extreme(p, t, env).map(Some)
    }

    /// `occurrence <= m` for a maximum, `occurrence >= m` for a minimum:
    /// every case compared with m (a conjunction).
    fn bound(
        &mut self,
        p: &Program,
        t: &Term,
        is_max: bool,
        m: i64,
        env: &mut Vec<Option<Val>>,
        loc: Loc,
    ) -> Result<NodeId, LowerError> {
        let op = if is_max { CmpOp::Le } else { CmpOp::Ge };
        let k = Term { kind: TermKind::Int(m), ty: Type::Int, loc };
        self.cmp_by_cases(p, op, t, &k, env, loc)
    }
}

/// A rough size of the cases of the occurrences in a term (for the work
/// estimate): the product of their numbers of cases.
pub(super) fn cases(t: &Term, dom: &dyn Fn(VarId, &Domain) -> u128) -> u128 {
    match &t.kind {
        TermKind::Abs(a) => 2u128.saturating_mul(cases(a, dom)),
        TermKind::Extreme { args, .. } => {
            args.iter().map(|a| cases(a, dom)).fold(0u128, |x, y| x.saturating_add(y)).max(1)
        }
        TermKind::Aggregate { binder, body, .. } => {
            dom(binder.var, &binder.domain).saturating_add(1).saturating_mul(cases(body, dom))
        }
        TermKind::Neg(a) => cases(a, dom),
        TermKind::Add(v) => v.iter().map(|(_, x)| cases(x, dom)).fold(1u128, |x, y| x.saturating_mul(y)),
        TermKind::Mul(a, b) => cases(a, dom).saturating_mul(cases(b, dom)),
        _ => 1,
    }
}

/// How many values group `k`'s attribute takes on the grounding's hosts.
pub(super) fn distinct_values(p: &Program, g: &Ground, k: usize) -> usize {
    let Some(attr) = p.groups.get(k) else { return 0 };
    let mut seen: Vec<&Value> = vec![];
    for &h in &g.hosts {
        if let Some(v) = p.hosts[h].attr(attr) {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
    }
    seen.len()
}

/// What E0803 counts: the ground terms, split into channel variables and
/// expanded quantifiers, and the clause that expands the most.
pub(super) fn what_grows(p: &Program, g: &Ground, chans: u128, work: u128) -> String {
    let mut s = format!("ground terms ({chans} channel variables, {work} from expanding quantifiers and counts");
    let biggest = p.clauses.iter().map(|c| (super::estimate_clause(p, g, &c.formula), c)).max_by_key(|(n, _)| *n);
    if let Some((n, c)) = biggest.filter(|(n, _)| *n > 0 && work > 0) {
        s.push_str(&format!(
            ", {n} of them from one clause of constraintset `{}` over {} hosts",
            c.origin.constraintset,
            g.hosts.len()
        ));
    }
    s.push(')');
    s
}

impl Ground {
    /// Whether `t` has an `abs`/`min`/`max` occurrence, which only the
    /// comparison path ([`Ground::cmp_by_cases`]) can decide.
    pub(super) fn has_extreme(&self, t: &Term) -> bool {
        self.open(t, 1).is_some()
    }

    /// Bounds of every value `t` can take in any configuration (`abs`,
    /// `min`, `max` and aggregates included; an aggregate's empty case, 0,
    /// always counts). `None` when a bound overflows or `t` is not linear
    /// in its occurrences.
    pub(super) fn term_range(
        &mut self,
        p: &Program,
        t: &Term,
        env: &mut Vec<Option<Val>>,
    ) -> Result<Option<(i64, i64)>, LowerError> {
        if self.open(t, 1).is_none() {
            let l = self.lin(p, t, env)?;
            return Ok(lin_range(&l));
        }
        let extreme = |max: bool, rs: Vec<(i64, i64)>| -> Option<(i64, i64)> {
            let los = rs.iter().map(|r| r.0);
            let his = rs.iter().map(|r| r.1);
            if max {
                Some((los.max()?, his.max()?))
            } else {
                Some((los.min()?, his.min()?))
            }
        };
        Ok(match &t.kind {
            TermKind::Abs(a) => self.term_range(p, a, env)?.and_then(|(lo, hi)| {
                let top = lo.checked_abs()?.max(hi.checked_abs()?);
                let bottom = if lo <= 0 && hi >= 0 { 0 } else { lo.checked_abs()?.min(hi.checked_abs()?) };
                Some((bottom, top))
            }),
            TermKind::Extreme { max, args } => {
                let mut rs = vec![];
                for a in args {
                    match self.term_range(p, a, env)? {
                        Some(r) => rs.push(r),
                        None => return Ok(None),
                    }
                }
                extreme(*max, rs)
            }
            TermKind::Aggregate { binder, body, .. } => {
                // Which elements are present varies: any one case may be
                // the value (as in [`Ground::range`]), so the union.
                let elems = self.domain(p, binder.var, &binder.domain, env)?;
                let saved = env[binder.var];
                let mut rs = vec![(0, 0)];
                for e in elems {
                    env[binder.var] = Some(e);
                    let r = self.term_range(p, body, env);
                    match r {
                        Ok(Some(r)) => rs.push(r),
                        other => {
                            env[binder.var] = saved;
                            return other;
                        }
                    }
                }
                env[binder.var] = saved;
                let lo = rs.iter().map(|r| r.0).min();
                let hi = rs.iter().map(|r| r.1).max();
                lo.zip(hi)
            }
            TermKind::Neg(a) => {
                self.term_range(p, a, env)?.and_then(|(lo, hi)| Some((hi.checked_neg()?, lo.checked_neg()?)))
            }
            TermKind::Add(v) => {
                let (mut lo, mut hi) = (0i64, 0i64);
                for (neg, x) in v {
                    let Some((a, b)) = self.term_range(p, x, env)? else { return Ok(None) };
                    let (a, b) = if *neg { (b.checked_neg(), a.checked_neg()) } else { (Some(a), Some(b)) };
                    match (a.and_then(|a| lo.checked_add(a)), b.and_then(|b| hi.checked_add(b))) {
                        (Some(a), Some(b)) => (lo, hi) = (a, b),
                        _ => return Ok(None),
                    }
                }
                Some((lo, hi))
            }
            TermKind::Mul(a, b) => {
                let (k, x) = match (a.constant(), b.constant()) {
                    (_, Some(Value::Int(k))) => (k, a),
                    (Some(Value::Int(k)), _) => (k, b),
                    _ => return Ok(None),
                };
                self.term_range(p, x, env)?.and_then(|(lo, hi)| {
                    let (a, b) = (lo.checked_mul(k)?, hi.checked_mul(k)?);
                    Some((a.min(b), a.max(b)))
                })
            }
            _ => None,
        })
    }
}

impl Ground {
    /// A number every value of `t` is a multiple of (0 when `t` is always
    /// 0): the gcd of the constants and coefficients of its cases. Memory
    /// in MB, say, steps by its unit, so the objective's thresholds do too.
    pub(super) fn term_step(&mut self, p: &Program, t: &Term, env: &mut Vec<Option<Val>>) -> Result<u64, LowerError> {
        if self.open(t, 1).is_none() {
            let l = self.lin(p, t, env)?;
            return Ok(l.terms.iter().fold(l.constant.unsigned_abs(), |a, (_, c)| gcd(a, c.unsigned_abs())));
        }
        Ok(match &t.kind {
            TermKind::Abs(a) | TermKind::Neg(a) => self.term_step(p, a, env)?,
            TermKind::Extreme { args, .. } => {
                let mut g = 0;
                for a in args {
                    g = gcd(g, self.term_step(p, a, env)?);
                }
                g
            }
            TermKind::Aggregate { binder, body, .. } => {
                let elems = self.domain(p, binder.var, &binder.domain, env)?;
                let saved = env[binder.var];
                let mut g = 0;
                for e in elems {
                    env[binder.var] = Some(e);
                    let r = self.term_step(p, body, env);
                    match r {
                        Ok(x) => g = gcd(g, x),
                        Err(e) => {
                            env[binder.var] = saved;
                            return Err(e);
                        }
                    }
                }
                env[binder.var] = saved;
                g
            }
            TermKind::Add(v) => {
                let mut g = 0;
                for (_, x) in v {
                    g = gcd(g, self.term_step(p, x, env)?);
                }
                g
            }
            TermKind::Mul(a, b) => match (a.constant(), b.constant()) {
                (_, Some(Value::Int(k))) => self.term_step(p, a, env)?.saturating_mul(k.unsigned_abs()),
                (Some(Value::Int(k)), _) => self.term_step(p, b, env)?.saturating_mul(k.unsigned_abs()),
                _ => 1,
            },
            _ => 1,
        })
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The least and greatest values of a linear form over Boolean nodes.
fn lin_range(l: &Lin) -> Option<(i64, i64)> {
    let (mut lo, mut hi) = (l.constant, l.constant);
    for (_, c) in &l.terms {
        if *c < 0 {
            lo = lo.checked_add(*c)?;
        } else {
            hi = hi.checked_add(*c)?;
        }
    }
    Some((lo, hi))
}
