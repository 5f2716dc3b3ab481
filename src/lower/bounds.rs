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

/// Derives the facts of the module docs for a goal over `hosts` available hosts.
pub fn derive(p: &Program, hosts: usize) -> Vec<CountFact> {
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
            if let Some(fact) = host_sum(p, f, hosts) {
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

/// A linear form over per-component counts, with a constant.
#[derive(Default)]
struct Lin {
    terms: Vec<(CompId, i64)>,
    constant: i64,
}

/// `t` as a linear form in `card(instancesof T in <scope>)`, where `scope`
/// accepts the count's domain.
fn lin(t: &Term, scope: &dyn Fn(&Domain, VarId, &Program) -> bool, p: &Program) -> Option<Lin> {
    match &t.kind {
        TermKind::Int(n) => Some(Lin { terms: vec![], constant: *n }),
        TermKind::Count(b) if b.cond.is_none() && scope(&b.domain, b.var, p) => match p.vars[b.var].sort {
            Sort::Instance(c) => Some(Lin { terms: vec![(c, 1)], constant: 0 }),
            Sort::Host => None,
        },
        TermKind::Neg(a) => lin(a, scope, p).map(|l| scale(l, -1)),
        TermKind::Add(v) => {
            let mut acc = Lin::default();
            for (neg, x) in v {
                let l = lin(x, scope, p)?;
                let l = if *neg { scale(l, -1) } else { l };
                acc.terms.extend(l.terms);
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
    l.constant = l.constant.saturating_mul(k);
    l
}

/// `forall host h (lin(card(T in h)…) OP k)` summed over hosts.
fn host_sum(p: &Program, f: &Formula, hosts: usize) -> Option<CountFact> {
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
    let k = (lb.constant.checked_sub(la.constant)?).checked_mul(hosts as i64)?;
    Some(CountFact { terms, op: *op, k, from: vec![], resources: vec![], reason: Reason::HostSum(hosts) })
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
