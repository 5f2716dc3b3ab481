//! Evaluating formulas and terms directly on a [`World`], by the meaning of
//! `language.md` §4 and §6.
//!
//! [`Ctx`] precomputes what the atoms need (instances per component and per
//! component and host, each instance's channels, reachability successors)
//! and memoizes reachability per source instance, so a goal over a thousand
//! hosts evaluates in well under a second.

use std::cell::RefCell;
use std::fmt;

use crate::check::ir::{
    CmpOp, CompId, Domain, Formula, FormulaKind, HostId, PortId, Program, Quantifier, Sort, Term, TermKind, Value,
    VarId,
};

use super::world::World;

/// A value while evaluating: a constant, a host, or an instance (index in
/// [`World::instances`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Val<'a> {
    Int(i64),
    Str(&'a str),
    Bool(bool),
    Host(HostId),
    Inst(usize),
}

/// Something the evaluator cannot do: a construct that never occurs in a
/// program that checked without errors (an `Error` node, an unbound variable,
/// a comparison across sorts, …), or integer overflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EvalError(pub String);

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Res<T> = Result<T, EvalError>;

fn err<T>(msg: impl Into<String>) -> Res<T> {
    Err(EvalError(msg.into()))
}

/// Variable bindings, indexed by [`VarId`].
pub(crate) type Env<'a> = Vec<Option<Val<'a>>>;

/// One channel as seen from one of its ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Incident {
    /// This end's port.
    pub port: PortId,
    /// The instance at the other end.
    pub other: usize,
    /// The other end's port.
    pub other_port: PortId,
    /// The channel's index in [`World::channels`].
    pub chan: usize,
}

/// The values a quantifier or binder ranges over.
#[derive(Debug, Clone)]
pub(crate) enum Dom<'c, 'a> {
    Insts(&'c [usize]),
    Hosts(&'c [HostId]),
    /// Computed domains: the hosts or instances of one group (`in zone z`),
    /// and the values of a host attribute (`zone z in deployment`).
    OwnedInsts(Vec<usize>),
    OwnedHosts(Vec<HostId>),
    Values(Vec<Val<'a>>),
}

impl<'a> Dom<'_, 'a> {
    pub fn len(&self) -> usize {
        match self {
            Dom::Insts(v) => v.len(),
            Dom::Hosts(v) => v.len(),
            Dom::OwnedInsts(v) => v.len(),
            Dom::OwnedHosts(v) => v.len(),
            Dom::Values(v) => v.len(),
        }
    }
    pub fn get(&self, i: usize) -> Val<'a> {
        match self {
            Dom::Insts(v) => Val::Inst(v[i]),
            Dom::Hosts(v) => Val::Host(v[i]),
            Dom::OwnedInsts(v) => Val::Inst(v[i]),
            Dom::OwnedHosts(v) => Val::Host(v[i]),
            Dom::Values(v) => v[i],
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = Val<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// A world prepared for evaluation against one program.
pub(crate) struct Ctx<'a> {
    pub prog: &'a Program,
    pub world: &'a World,
    /// Per program host: whether it is available.
    pub available: Vec<bool>,
    /// Instances of each component.
    pub by_comp: Vec<Vec<usize>>,
    /// Instances of component `c` on host `h`, at `c * hosts + h`.
    by_comp_host: Vec<Vec<usize>>,
    /// Each instance's channels, from its side.
    pub incident: Vec<Vec<Incident>>,
    /// Where `reachable` may step from each instance.
    succ: Vec<Vec<usize>>,
    /// Memoized reachability per source instance.
    reach: RefCell<Vec<Option<Vec<bool>>>>,
}

impl<'a> Ctx<'a> {
    /// Prepares `world`; fails when an index is out of range for `prog`.
    pub fn new(prog: &'a Program, world: &'a World) -> Res<Ctx<'a>> {
        world.check_indices(prog).map_err(EvalError)?;
        let nh = prog.hosts.len();
        let nc = prog.components.len();
        let ni = world.instances.len();
        let mut available = vec![false; nh];
        for &h in &world.hosts {
            available[h] = true;
        }
        let mut by_comp = vec![Vec::new(); nc];
        let mut by_comp_host = vec![Vec::new(); nc * nh];
        for (i, inst) in world.instances.iter().enumerate() {
            by_comp[inst.comp].push(i);
            by_comp_host[inst.comp * nh + inst.host].push(i);
        }
        let mut incident = vec![Vec::new(); ni];
        let mut succ = vec![Vec::new(); ni];
        for (c, ch) in world.channels.iter().enumerate() {
            let (f, t) = (ch.from, ch.to);
            incident[f.inst].push(Incident { port: f.port, other: t.inst, other_port: t.port, chan: c });
            incident[t.inst].push(Incident { port: t.port, other: f.inst, other_port: f.port, chan: c });
            succ[f.inst].push(t.inst);
            if !ch.directed {
                succ[t.inst].push(f.inst);
            }
        }
        Ok(Ctx { prog, world, available, by_comp, by_comp_host, incident, succ, reach: RefCell::new(vec![None; ni]) })
    }

    /// Instances of `comp` on host `h`.
    pub fn on_host(&self, comp: CompId, h: HostId) -> &[usize] {
        self.by_comp_host.get(comp * self.prog.hosts.len() + h).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A channel joining port `pa` of `a` and port `pb` of `b`, either way round.
    pub fn channel_between_ports(&self, a: usize, pa: PortId, b: usize, pb: PortId) -> Option<usize> {
        let (x, px, y, py) =
            if self.incident[a].len() <= self.incident[b].len() { (a, pa, b, pb) } else { (b, pb, a, pa) };
        self.incident[x].iter().find(|e| e.port == px && e.other == y && e.other_port == py).map(|e| e.chan)
    }

    /// A channel joining any port of `a` and any port of `b` (`a != b`).
    pub fn channel_between(&self, a: usize, b: usize) -> Option<usize> {
        if a == b {
            return None;
        }
        let (x, y) = if self.incident[a].len() <= self.incident[b].len() { (a, b) } else { (b, a) };
        self.incident[x].iter().find(|e| e.other == y).map(|e| e.chan)
    }

    /// `reachable(a, b)`: `a = b`, or a path of channels from `a` to `b`,
    /// directed channels followed from `from` to `to` only.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        if a == b {
            return true;
        }
        let mut memo = self.reach.borrow_mut();
        if let Some(Some(seen)) = memo.get(a) {
            return seen.get(b).copied().unwrap_or(false);
        }
        let mut seen = vec![false; self.succ.len()];
        seen[a] = true;
        let mut queue = vec![a];
        while let Some(x) = queue.pop() {
            for &y in &self.succ[x] {
                if !seen[y] {
                    seen[y] = true;
                    queue.push(y);
                }
            }
        }
        let r = seen.get(b).copied().unwrap_or(false);
        if let Some(slot) = memo.get_mut(a) {
            *slot = Some(seen);
        }
        r
    }

    pub fn var_sort(&self, v: VarId) -> Res<Sort> {
        match self.prog.vars.get(v) {
            Some(info) => Ok(info.sort),
            None => err(format!("variable #{v} is not declared")),
        }
    }

    pub fn var_name(&self, v: VarId) -> &'a str {
        self.prog.vars.get(v).map(|i| i.name.as_str()).unwrap_or("?")
    }

    pub fn get(&self, env: &Env<'a>, v: VarId) -> Res<Val<'a>> {
        match env.get(v).copied().flatten() {
            Some(x) => Ok(x),
            None => err(format!("variable `{}` is not bound", self.var_name(v))),
        }
    }

    pub fn inst_var(&self, env: &Env<'a>, v: VarId) -> Res<usize> {
        match self.get(env, v)? {
            Val::Inst(i) => Ok(i),
            _ => err(format!("variable `{}` is not an instance", self.var_name(v))),
        }
    }

    /// What variable `var` ranges over in `domain`.
    pub fn domain(&self, var: VarId, domain: &'a Domain, env: &mut Env<'a>) -> Res<Dom<'_, 'a>> {
        match (self.var_sort(var)?, domain) {
            (Sort::Group(g), Domain::Deployment) => {
                let attr = self.prog.groups.get(g).ok_or_else(|| EvalError(format!("group #{g} is not declared")))?;
                let mut vals: Vec<Val<'a>> = vec![];
                for &h in &self.world.hosts {
                    if let Some(v) = self.host_attr(h, attr) {
                        if !vals.contains(&v) {
                            vals.push(v);
                        }
                    }
                }
                Ok(Dom::Values(vals))
            }
            (Sort::Group(_), _) => err("the values of a host attribute range over `deployment` only"),
            (Sort::Host, Domain::Group { attr, value }) => {
                let v = self.term(value, env)?;
                Ok(Dom::OwnedHosts(self.group_hosts(attr, v)))
            }
            (Sort::Instance(c), Domain::Group { attr, value }) => {
                let v = self.term(value, env)?;
                let insts =
                    self.group_hosts(attr, v).into_iter().flat_map(|h| self.on_host(c, h).iter().copied()).collect();
                Ok(Dom::OwnedInsts(insts))
            }
            (Sort::Host, Domain::Deployment) => Ok(Dom::Hosts(&self.world.hosts)),
            (Sort::Host, Domain::OnHost(_)) => err("hosts range over `deployment` only"),
            (Sort::Instance(c), Domain::Deployment) => match self.by_comp.get(c) {
                Some(v) => Ok(Dom::Insts(v)),
                None => err(format!("component #{c} is not declared")),
            },
            (Sort::Instance(c), Domain::OnHost(t)) => match self.term(t, env)? {
                Val::Host(h) => Ok(Dom::Insts(self.on_host(c, h))),
                _ => err("the domain of an instance binder is not a host"),
            },
        }
    }

    /// The truth of `f` under `env`.
    pub fn holds(&self, f: &'a Formula, env: &mut Env<'a>) -> Res<bool> {
        match &f.kind {
            FormulaKind::Const(b) => Ok(*b),
            FormulaKind::Not(g) => Ok(!self.holds(g, env)?),
            FormulaKind::And(v) => {
                for g in v {
                    if !self.holds(g, env)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            FormulaKind::Or(v) => {
                for g in v {
                    if self.holds(g, env)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            FormulaKind::Implies(a, b) => Ok(!self.holds(a, env)? || self.holds(b, env)?),
            FormulaKind::Cmp(op, l, r) => {
                let (lv, rv) = (self.term(l, env)?, self.term(r, env)?);
                compare(*op, lv, rv)
            }
            FormulaKind::Connects { a, pa, b, pb } => {
                let (x, y) = (self.inst_var(env, *a)?, self.inst_var(env, *b)?);
                Ok(self.channel_between_ports(x, *pa, y, *pb).is_some())
            }
            FormulaKind::Connected(a, b) => {
                let (x, y) = (self.inst_var(env, *a)?, self.inst_var(env, *b)?);
                Ok(self.channel_between(x, y).is_some())
            }
            FormulaKind::Reachable(a, b) => {
                let (x, y) = (self.inst_var(env, *a)?, self.inst_var(env, *b)?);
                Ok(self.reachable(x, y))
            }
            FormulaKind::Quant { q, var, domain, body } => {
                Ok(self.find(*var, domain, body, *q == Quantifier::Exists, env)?.is_some()
                    == (*q == Quantifier::Exists))
            }
            FormulaKind::Error => err("the goal contains a formula that failed to check"),
        }
    }

    /// The first value of `var` in `domain` for which `body` is `want`, if
    /// any (the witness of an `exists`, or the counterexample of a `forall`).
    pub fn find(
        &self,
        var: VarId,
        domain: &'a Domain,
        body: &'a Formula,
        want: bool,
        env: &mut Env<'a>,
    ) -> Res<Option<Val<'a>>> {
        let dom = self.domain(var, domain, env)?;
        let slot = env.get_mut(var).ok_or_else(|| EvalError(format!("variable #{var} out of range")))?;
        let saved = *slot;
        let mut found = None;
        for x in dom.iter() {
            env[var] = Some(x);
            if self.holds(body, env)? == want {
                found = Some(x);
                break;
            }
        }
        env[var] = saved;
        Ok(found)
    }

    /// The values of a binder's variable that satisfy its condition.
    pub fn members(
        &self,
        var: VarId,
        domain: &'a Domain,
        cond: Option<&'a Formula>,
        env: &mut Env<'a>,
    ) -> Res<Vec<Val<'a>>> {
        // Fast path: `card(T y connectedto x)` walks x's channels.
        if let (Domain::Deployment, Some(Formula { kind: FormulaKind::Connected(p, q), .. })) = (domain, cond) {
            let other = if *p == var && *q != var {
                Some(*q)
            } else if *q == var && *p != var {
                Some(*p)
            } else {
                None
            };
            if let (Some(o), Sort::Instance(c)) = (other, self.var_sort(var)?) {
                let x = self.inst_var(env, o)?;
                let mut ys: Vec<usize> = self.incident[x]
                    .iter()
                    .map(|e| e.other)
                    .filter(|&y| y != x && self.world.instances[y].comp == c)
                    .collect();
                ys.sort_unstable();
                ys.dedup();
                return Ok(ys.into_iter().map(Val::Inst).collect());
            }
        }
        let dom = self.domain(var, domain, env)?;
        let Some(cond) = cond else { return Ok(dom.iter().collect()) };
        let slot = env.get_mut(var).ok_or_else(|| EvalError(format!("variable #{var} out of range")))?;
        let saved = *slot;
        let mut out = Vec::new();
        for x in dom.iter() {
            env[var] = Some(x);
            if self.holds(cond, env)? {
                out.push(x);
            }
        }
        env[var] = saved;
        Ok(out)
    }

    /// The value of `t` under `env`.
    pub fn term(&self, t: &'a Term, env: &mut Env<'a>) -> Res<Val<'a>> {
        match &t.kind {
            TermKind::Int(n) => Ok(Val::Int(*n)),
            TermKind::Str(s) => Ok(Val::Str(s)),
            TermKind::Bool(b) => Ok(Val::Bool(*b)),
            TermKind::Var(v) => self.get(env, *v),
            TermKind::Host(h) => {
                if *h < self.prog.hosts.len() {
                    Ok(Val::Host(*h))
                } else {
                    err(format!("host #{h} is not declared"))
                }
            }
            TermKind::HostOf(v) => {
                let i = self.inst_var(env, *v)?;
                Ok(Val::Host(self.world.instances[i].host))
            }
            TermKind::HostAttr(h, name) => {
                let Val::Host(h) = self.term(h, env)? else { return err("an attribute of something not a host") };
                let host = &self.prog.hosts[h];
                match host.attr(name) {
                    Some(Value::Int(n)) => Ok(Val::Int(*n)),
                    Some(Value::Str(s)) => Ok(Val::Str(s)),
                    Some(Value::Bool(b)) => Ok(Val::Bool(*b)),
                    None => err(format!("host `{}` has no attribute `{name}`", host.name)),
                }
            }
            TermKind::Count(b) => {
                let n = self.members(b.var, &b.domain, b.cond.as_ref(), env)?.len();
                i64::try_from(n).map(Val::Int).map_err(|_| EvalError("count out of range".into()))
            }
            TermKind::Sum(b, body) => {
                let mut acc: i64 = 0;
                let saved = env.get(b.var).copied().flatten();
                for x in self.members(b.var, &b.domain, b.cond.as_ref(), env)? {
                    env[b.var] = Some(x);
                    let n = self.int(body, env)?;
                    acc = acc.checked_add(n).ok_or_else(overflow)?;
                }
                if let Some(slot) = env.get_mut(b.var) {
                    *slot = saved;
                }
                Ok(Val::Int(acc))
            }
            TermKind::Add(v) => {
                let mut acc: i64 = 0;
                for (neg, t) in v {
                    let n = self.int(t, env)?;
                    acc = if *neg { acc.checked_sub(n) } else { acc.checked_add(n) }.ok_or_else(overflow)?;
                }
                Ok(Val::Int(acc))
            }
            TermKind::Mul(a, b) => {
                let (x, y) = (self.int(a, env)?, self.int(b, env)?);
                x.checked_mul(y).map(Val::Int).ok_or_else(overflow)
            }
            TermKind::Neg(a) => self.int(a, env)?.checked_neg().map(Val::Int).ok_or_else(overflow),
            TermKind::Abs(a) => self.int(a, env)?.checked_abs().map(Val::Int).ok_or_else(overflow),
            TermKind::Extreme { max, args } => {
                let mut best: Option<i64> = None;
                for a in args {
                    let n = self.int(a, env)?;
                    best = Some(match best {
                        None => n,
                        Some(b) if *max => b.max(n),
                        Some(b) => b.min(n),
                    });
                }
                best.map(Val::Int).ok_or_else(|| EvalError("`min`/`max` of no terms".into()))
            }
            TermKind::Aggregate { max, binder: b, body } => {
                // The least or greatest value over the binder; 0 when empty.
                let mut best: Option<i64> = None;
                let saved = env.get(b.var).copied().flatten();
                for x in self.members(b.var, &b.domain, b.cond.as_ref(), env)? {
                    env[b.var] = Some(x);
                    let n = self.int(body, env)?;
                    best = Some(match best {
                        None => n,
                        Some(v) if *max => v.max(n),
                        Some(v) => v.min(n),
                    });
                }
                if let Some(slot) = env.get_mut(b.var) {
                    *slot = saved;
                }
                Ok(Val::Int(best.unwrap_or(0)))
            }
            TermKind::Param(p) => err(format!("unexpanded parameter `{p}`")),
            TermKind::Error => err("the goal contains a term that failed to check"),
        }
    }

    pub fn int(&self, t: &'a Term, env: &mut Env<'a>) -> Res<i64> {
        match self.term(t, env)? {
            Val::Int(n) => Ok(n),
            _ => err("arithmetic on a value that is not an integer"),
        }
    }

    /// The value of attribute `attr` on host `h`, if it has one.
    fn host_attr(&self, h: HostId, attr: &str) -> Option<Val<'a>> {
        let host: &'a crate::check::ir::Host = self.prog.hosts.get(h)?;
        Some(match host.attr(attr)? {
            Value::Int(n) => Val::Int(*n),
            Value::Str(s) => Val::Str(s),
            Value::Bool(b) => Val::Bool(*b),
        })
    }

    /// The available hosts whose attribute `attr` equals `v`, in host order.
    fn group_hosts(&self, attr: &str, v: Val<'a>) -> Vec<HostId> {
        self.world.hosts.iter().copied().filter(|&h| self.host_attr(h, attr) == Some(v)).collect()
    }

    /// How a value reads in messages: an instance id, a host name, a literal.
    pub fn show(&self, v: Val<'_>) -> String {
        match v {
            Val::Int(n) => n.to_string(),
            Val::Str(s) => format!("{s:?}"),
            Val::Bool(b) => b.to_string(),
            Val::Host(h) => self.prog.hosts.get(h).map(|h| h.name.clone()).unwrap_or_else(|| format!("host#{h}")),
            Val::Inst(i) => {
                self.world.instances.get(i).map(|i| i.id.clone()).unwrap_or_else(|| format!("instance#{i}"))
            }
        }
    }
}

fn overflow() -> EvalError {
    EvalError("integer overflow".into())
}

/// `l op r`: integers in every order; equality on any two values of one sort.
pub(crate) fn compare(op: CmpOp, l: Val<'_>, r: Val<'_>) -> Res<bool> {
    if let (Val::Int(x), Val::Int(y)) = (l, r) {
        return Ok(match op {
            CmpOp::Eq => x == y,
            CmpOp::Ne => x != y,
            CmpOp::Lt => x < y,
            CmpOp::Le => x <= y,
            CmpOp::Gt => x > y,
            CmpOp::Ge => x >= y,
        });
    }
    let same_sort = matches!(
        (l, r),
        (Val::Str(_), Val::Str(_))
            | (Val::Bool(_), Val::Bool(_))
            | (Val::Host(_), Val::Host(_))
            | (Val::Inst(_), Val::Inst(_))
    );
    match op {
        CmpOp::Eq if same_sort => Ok(l == r),
        CmpOp::Ne if same_sort => Ok(l != r),
        CmpOp::Eq | CmpOp::Ne => err("comparison across sorts"),
        _ => err("ordering comparison on values that are not integers"),
    }
}
