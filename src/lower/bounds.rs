//! Implied counting facts: linear constraints over the number of instances
//! of each component, derived from clause shapes, so the solver can argue by
//! counting (pigeonhole) where search alone cannot.
//!
//! * **Summing a per-host clause.** `forall host h (Σ aᵢ·card(instancesof Tᵢ in h) + b OP k)`
//!   with OP one of `=`, `<=`, `>=` holds for every available host, so the
//!   sum over hosts holds too: `Σ aᵢ·#Tᵢ OP (k − b)·|hosts|`.
//! * **Capacity.** `forall A a (exists B b (… a.p connectsto b.q …))` puts
//!   every present `a` on a channel to some `b`; if every `b` takes at most
//!   `k` of them — by `forall B b (card(A a connectedto b) <= k)` or because
//!   port `q` of B holds at most `k` channels — then `#A <= k·#B`.
//! * **Placement bounds.** `#T <= maxperhost·|hosts|` and `#T <= maxinstances`.
//! * **Sums over several types and host attributes.** A per-host clause may
//!   mix types and `sum(T x in h : x.attr)` (a constant per instance), and
//!   compare with a host attribute: `forall host h (sum(Web w in h : w.cpu) +
//!   sum(Db d in h : d.cpu) <= h.cpu)` sums to `cpu_W·#Web + cpu_D·#Db <=`
//!   the total `cpu` of the available hosts ([`derive_on`] only: it needs
//!   the hosts, not just their number).
//! * **Distinct values (pigeonhole).** `forall T x, y (x != y implies
//!   hostof(x).a != hostof(y).a)` allows at most one `T` per value of `a`:
//!   `#T <= ` the number of distinct values of `a` among the available hosts.
//!
//! All facts together are one linear system over the counts; the pre-check
//! refutes it by linear arithmetic, so arguments across types combine.
//!
//! Each fact names the clauses it follows from; the solver asserts it under
//! those clauses' assumption literals, so an unsatisfiable core that uses a
//! fact still names exactly the clauses of the user's goal it came from.

use crate::check::ir::*;

/// A limit from the declarations that can take part in a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// A port's capacity: 1 for `p`, N for `p[N]`.
    PortCapacity(CompId, PortId),
    /// A component's `maxinstances`.
    MaxInstances(CompId),
    /// The available hosts times the component's `maxperhost`.
    Placement(CompId),
}

/// Why a [`CountFact`] holds, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A per-host clause summed over this many hosts.
    HostSum(usize),
    /// A deployment-wide count written in a clause.
    Written,
    /// Every A connects to some B, and each B takes at most k of them.
    Capacity,
    /// maxperhost × hosts, or maxinstances.
    Placement,
    /// A per-host clause summed over this many hosts, with the totals of the
    /// host attributes it compares with (attribute, total).
    AttrSum(usize, Vec<(String, i64)>),
    /// At most one instance per value of this host attribute, which has
    /// this many values among the available hosts.
    Distinct(String, usize),
}

/// `Σ coeff·#comp OP k`, implied by the clauses `from` (indices into
/// `program.clauses`) and the `resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountFact {
    pub terms: Vec<(CompId, i64)>,
    pub op: CmpOp,
    pub k: i64,
    pub from: Vec<usize>,
    pub resources: Vec<Resource>,
    pub reason: Reason,
}

impl CountFact {
    /// The fact in words: `#Router + #Client = 20`.
    pub fn describe(&self, p: &Program) -> String {
        let mut s = String::new();
        let mut terms: Vec<(CompId, i64)> = self.terms.clone();
        terms.sort_by_key(|t| std::cmp::Reverse(t.1.signum()));
        for (i, (c, k)) in terms.iter().enumerate() {
            let name = &p.components[*c].name;
            let mag = k.abs();
            let coef = if mag == 1 { String::new() } else { format!("{mag}·") };
            if i == 0 {
                s.push_str(&format!("{}{coef}#{name}", if *k < 0 { "-" } else { "" }));
            } else {
                s.push_str(&format!(" {} {coef}#{name}", if *k < 0 { "-" } else { "+" }));
            }
        }
        // Move a single negative term to the right: `#C - 2·#R <= 0` reads `#C <= 2·#R`.
        if terms.len() == 2 && terms[0].1 > 0 && terms[1].1 < 0 && self.k == 0 {
            let (a, b) = (&p.components[terms[0].0].name, &p.components[terms[1].0].name);
            let ka = if terms[0].1 == 1 { String::new() } else { format!("{}·", terms[0].1) };
            let kb = if terms[1].1 == -1 { String::new() } else { format!("{}·", -terms[1].1) };
            return format!("{ka}#{a} {} {kb}#{b}", self.op.as_str());
        }
        format!("{s} {} {}", self.op.as_str(), self.k)
    }
}

/// Derives the facts of the module docs for a goal over `hosts` available
/// hosts (those that need the hosts themselves are left out; see [`derive_on`]).
pub fn derive(p: &Program, hosts: usize) -> Vec<CountFact> {
    derive_with(p, hosts, None)
}

/// [`derive`] over these available hosts, with the facts that depend on
/// their attributes (sums compared with a host attribute, distinct values).
pub fn derive_on(p: &Program, available: &[HostId]) -> Vec<CountFact> {
    derive_with(p, available.len(), Some(available))
}

fn derive_with(p: &Program, hosts: usize, available: Option<&[HostId]>) -> Vec<CountFact> {
    let mut out = vec![];
    for (c, comp) in p.components.iter().enumerate() {
        let mut k = comp.maxperhost as i64 * hosts as i64;
        if let Some(m) = comp.maxinstances {
            k = k.min(m as i64);
        }
        let resource = match comp.maxinstances {
            Some(m) if (m as i64) <= comp.maxperhost as i64 * hosts as i64 => Resource::MaxInstances(c),
            _ => Resource::Placement(c),
        };
        out.push(CountFact {
            terms: vec![(c, 1)],
            op: CmpOp::Le,
            k,
            from: vec![],
            resources: vec![resource],
            reason: Reason::Placement,
        });
    }
    for (i, cl) in p.clauses.iter().enumerate() {
        for f in conjuncts(&cl.formula) {
            if let Some(fact) = host_sum(p, f, hosts, available) {
                out.push(CountFact { from: vec![i], ..fact });
            }
            if let Some(fact) = available.and_then(|av| distinct_values(p, f, av)) {
                out.push(CountFact { from: vec![i], ..fact });
            }
            if let Some(fact) = global_count(p, f) {
                out.push(CountFact { from: vec![i], ..fact });
            }
        }
    }
    // Capacity: pair each "every A reaches some B" with a bound per B.
    for (i, cl) in p.clauses.iter().enumerate() {
        for f in conjuncts(&cl.formula) {
            for (a_comp, b_comp, ports) in every_a_has_a_b(p, f) {
                // A port bound on B's side.
                for (_, q) in &ports {
                    if let Some(cap) = p.components[b_comp].ports[*q].capacity {
                        out.push(CountFact {
                            terms: vec![(a_comp, 1), (b_comp, -(cap as i64))],
                            op: CmpOp::Le,
                            k: 0,
                            from: vec![i],
                            resources: vec![Resource::PortCapacity(b_comp, *q)],
                            reason: Reason::Capacity,
                        });
                    }
                }
                // A clause bound on how many A each B is connected to.
                for (j, cl2) in p.clauses.iter().enumerate() {
                    for g in conjuncts(&cl2.formula) {
                        if let Some(k) = connected_bound(p, g, a_comp, b_comp) {
                            let mut from = vec![i, j];
                            from.dedup();
                            out.push(CountFact {
                                terms: vec![(a_comp, 1), (b_comp, -k)],
                                op: CmpOp::Le,
                                k: 0,
                                from,
                                resources: vec![],
                                reason: Reason::Capacity,
                            });
                        }
                    }
                }
            }
        }
    }
    out
}

/// The top-level conjuncts of a clause.
fn conjuncts(f: &Formula) -> Vec<&Formula> {
    match &f.kind {
        FormulaKind::And(v) => v.iter().flat_map(conjuncts).collect(),
        _ => vec![f],
    }
}

/// A linear form over per-component counts, with a constant and host
/// attributes (of the host a per-host clause quantifies; name, coefficient).
#[derive(Default)]
struct Lin {
    terms: Vec<(CompId, i64)>,
    constant: i64,
    attrs: Vec<(String, i64)>,
}

/// `t` as a linear form in `card(instancesof T in <scope>)`, where `scope`
/// accepts the count's domain.
fn lin(t: &Term, scope: &dyn Fn(&Domain, VarId, &Program) -> bool, p: &Program) -> Option<Lin> {
    match &t.kind {
        TermKind::Int(n) => Some(Lin { constant: *n, ..Lin::default() }),
        TermKind::Count(b) if b.cond.is_none() && scope(&b.domain, b.var, p) => match p.vars[b.var].sort {
            Sort::Instance(c) => Some(Lin { terms: vec![(c, 1)], ..Lin::default() }),
            Sort::Host | Sort::Group(_) => None,
        },
        // `sum(T x in D : k)` with `k` the same for every instance (a
        // literal or a folded component attribute): k·#T.
        TermKind::Sum(b, body) if b.cond.is_none() && scope(&b.domain, b.var, p) => {
            match (p.vars[b.var].sort, body.constant()) {
                (Sort::Instance(c), Some(Value::Int(k))) => Some(Lin { terms: vec![(c, k)], ..Lin::default() }),
                _ => None,
            }
        }
        // An attribute of the host a per-host clause quantifies.
        TermKind::HostAttr(h, name) if scope(&Domain::OnHost((**h).clone()), usize::MAX, p) => {
            Some(Lin { attrs: vec![(name.clone(), 1)], ..Lin::default() })
        }
        TermKind::Neg(a) => lin(a, scope, p).map(|l| scale(l, -1)),
        TermKind::Add(v) => {
            let mut acc = Lin::default();
            for (neg, x) in v {
                let l = lin(x, scope, p)?;
                let l = if *neg { scale(l, -1) } else { l };
                acc.terms.extend(l.terms);
                acc.attrs.extend(l.attrs);
                acc.constant = acc.constant.checked_add(l.constant)?;
            }
            Some(acc)
        }
        TermKind::Mul(a, b) => match (a.constant(), b.constant()) {
            (Some(Value::Int(k)), _) => lin(b, scope, p).map(|l| scale(l, k)),
            (_, Some(Value::Int(k))) => lin(a, scope, p).map(|l| scale(l, k)),
            _ => None,
        },
        _ => None,
    }
}

fn scale(mut l: Lin, k: i64) -> Lin {
    for t in &mut l.terms {
        t.1 = t.1.saturating_mul(k);
    }
    for t in &mut l.attrs {
        t.1 = t.1.saturating_mul(k);
    }
    l.constant = l.constant.saturating_mul(k);
    l
}

/// `forall host h (lin(card(T in h)…, sum(T x in h : k)…, h.attr…) OP k)`
/// summed over hosts (host attributes only when the hosts are known).
fn host_sum(p: &Program, f: &Formula, hosts: usize, available: Option<&[HostId]>) -> Option<CountFact> {
    let FormulaKind::Quant { q: Quantifier::Forall, var: h, domain: Domain::Deployment, body } = &f.kind else {
        return None;
    };
    if p.vars[*h].sort != Sort::Host {
        return None;
    }
    let FormulaKind::Cmp(op, a, b) = &body.kind else { return None };
    if !matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge) {
        return None;
    }
    let h = *h;
    let on_h = move |d: &Domain, _v: VarId, _p: &Program| matches!(d, Domain::OnHost(t) if matches!(t.kind, TermKind::Var(x) if x == h));
    let (la, lb) = (lin(a, &on_h, p)?, lin(b, &on_h, p)?);
    let mut terms = la.terms;
    terms.extend(lb.terms.into_iter().map(|(c, k)| (c, -k)));
    if terms.is_empty() {
        return None;
    }
    let mut k = (lb.constant.checked_sub(la.constant)?).checked_mul(hosts as i64)?;
    // Attributes move to the right-hand side as their totals over the hosts.
    let mut attrs: Vec<(String, i64)> = la.attrs.into_iter().map(|(n, c)| (n, -c)).collect();
    attrs.extend(lb.attrs);
    let mut totals = vec![];
    if !attrs.is_empty() {
        let av = available?;
        for (name, coef) in &attrs {
            let mut total: i64 = 0;
            for &host in av {
                match p.hosts.get(host).and_then(|x| x.attr(name)) {
                    Some(Value::Int(v)) => total = total.checked_add(*v)?,
                    _ => return None,
                }
            }
            k = k.checked_add(coef.checked_mul(total)?)?;
            if !totals.iter().any(|(n, _): &(String, i64)| n == name) {
                totals.push((name.clone(), total));
            }
        }
    }
    let reason = if totals.is_empty() { Reason::HostSum(hosts) } else { Reason::AttrSum(hosts, totals) };
    Some(CountFact { terms, op: *op, k, from: vec![], resources: vec![], reason })
}

/// `forall T x, y in deployment (x != y implies hostof(x).a != hostof(y).a)`
/// (or `x = y or …`): at most one `T` per value of `a` among the hosts.
fn distinct_values(p: &Program, f: &Formula, available: &[HostId]) -> Option<CountFact> {
    let FormulaKind::Quant { q: Quantifier::Forall, var: x, domain: Domain::Deployment, body } = &f.kind else {
        return None;
    };
    let FormulaKind::Quant { q: Quantifier::Forall, var: y, domain: Domain::Deployment, body } = &body.kind else {
        return None;
    };
    let (Sort::Instance(cx), Sort::Instance(cy)) = (p.vars[*x].sort, p.vars[*y].sort) else { return None };
    if cx != cy || x == y {
        return None;
    }
    let is_var = |t: &Term, v: VarId| matches!(t.kind, TermKind::Var(w) if w == v);
    let distinct_vars = |f: &Formula| match &f.kind {
        FormulaKind::Cmp(CmpOp::Ne, a, b) => (is_var(a, *x) && is_var(b, *y)) || (is_var(a, *y) && is_var(b, *x)),
        _ => false,
    };
    let same_vars = |f: &Formula| match &f.kind {
        FormulaKind::Cmp(CmpOp::Eq, a, b) => (is_var(a, *x) && is_var(b, *y)) || (is_var(a, *y) && is_var(b, *x)),
        _ => false,
    };
    let conclusion = match &body.kind {
        FormulaKind::Implies(pre, c) if distinct_vars(pre) => c,
        FormulaKind::Or(v) if v.len() == 2 && same_vars(&v[0]) => &v[1],
        _ => return None,
    };
    let FormulaKind::Cmp(CmpOp::Ne, a, b) = &conclusion.kind else { return None };
    let attr_of = |t: &Term| match &t.kind {
        TermKind::HostAttr(h, name) => match &h.kind {
            TermKind::HostOf(v) => Some((*v, name.clone())),
            _ => None,
        },
        _ => None,
    };
    let ((va, na), (vb, nb)) = (attr_of(a)?, attr_of(b)?);
    if na != nb || !((va == *x && vb == *y) || (va == *y && vb == *x)) {
        return None;
    }
    let mut values: Vec<&Value> = vec![];
    for &h in available {
        let v = p.hosts.get(h)?.attr(&na)?;
        if !values.contains(&v) {
            values.push(v);
        }
    }
    Some(CountFact {
        terms: vec![(cx, 1)],
        op: CmpOp::Le,
        k: values.len() as i64,
        from: vec![],
        resources: vec![],
        reason: Reason::Distinct(na, values.len()),
    })
}

/// A top-level comparison of deployment-wide counts, e.g.
/// `card(instancesof Client in deployment) >= 15`.
fn global_count(p: &Program, f: &Formula) -> Option<CountFact> {
    let FormulaKind::Cmp(op, a, b) = &f.kind else { return None };
    if !matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge | CmpOp::Lt | CmpOp::Gt) {
        return None;
    }
    let everywhere = |d: &Domain, _v: VarId, _p: &Program| matches!(d, Domain::Deployment);
    let (la, lb) = (lin(a, &everywhere, p)?, lin(b, &everywhere, p)?);
    let mut terms = la.terms;
    terms.extend(lb.terms.into_iter().map(|(c, k)| (c, -k)));
    if terms.is_empty() {
        return None;
    }
    Some(CountFact {
        terms,
        op: *op,
        k: lb.constant.checked_sub(la.constant)?,
        from: vec![],
        resources: vec![],
        reason: Reason::Written,
    })
}

/// `forall A a in deployment (exists B b in deployment (… a.p connectsto b.q …))`:
/// `(A, B, [(p, q), …])` — every present `a` has a channel to some `b`.
/// `(A, B, ports)`: every present A has a channel to some B, through these port pairs.
type Link = (CompId, CompId, Vec<(PortId, PortId)>);

fn every_a_has_a_b(p: &Program, f: &Formula) -> Vec<Link> {
    let FormulaKind::Quant { q: Quantifier::Forall, var: a, domain: Domain::Deployment, body } = &f.kind else {
        return vec![];
    };
    let FormulaKind::Quant { q: Quantifier::Exists, var: b, domain: Domain::Deployment, body } = &body.kind else {
        return vec![];
    };
    let (Sort::Instance(ca), Sort::Instance(cb)) = (p.vars[*a].sort, p.vars[*b].sort) else { return vec![] };
    if ca == cb {
        return vec![];
    }
    let mut ports = vec![];
    for g in conjuncts(body) {
        match &g.kind {
            FormulaKind::Connects { a: x, pa, b: y, pb } if x == a && y == b => ports.push((*pa, *pb)),
            FormulaKind::Connects { a: x, pa, b: y, pb } if x == b && y == a => ports.push((*pb, *pa)),
            FormulaKind::Connected(x, y) if (x == a && y == b) || (x == b && y == a) => {}
            _ => continue,
        }
    }
    let any_link = conjuncts(body).iter().any(|g| match &g.kind {
        FormulaKind::Connects { a: x, b: y, .. } | FormulaKind::Connected(x, y) => {
            (x == a && y == b) || (x == b && y == a)
        }
        _ => false,
    });
    if any_link {
        vec![(ca, cb, ports)]
    } else {
        vec![]
    }
}

/// `forall B b in deployment (card(A a connectedto b) <= k)` (or `< k+1`).
fn connected_bound(p: &Program, f: &Formula, a_comp: CompId, b_comp: CompId) -> Option<i64> {
    let FormulaKind::Quant { q: Quantifier::Forall, var: b, domain: Domain::Deployment, body } = &f.kind else {
        return None;
    };
    if p.vars[*b].sort != Sort::Instance(b_comp) {
        return None;
    }
    let FormulaKind::Cmp(op, lhs, rhs) = &body.kind else { return None };
    let TermKind::Count(binder) = &lhs.kind else { return None };
    let Some(Value::Int(k)) = rhs.constant() else { return None };
    if p.vars[binder.var].sort != Sort::Instance(a_comp) || !matches!(binder.domain, Domain::Deployment) {
        return None;
    }
    let cond = binder.cond.as_ref()?;
    let linked = match &cond.kind {
        FormulaKind::Connected(x, y) => (*x == binder.var && y == b) || (x == b && *y == binder.var),
        _ => false,
    };
    if !linked {
        return None;
    }
    match op {
        CmpOp::Le => Some(k),
        CmpOp::Lt => Some(k - 1),
        _ => None,
    }
}
