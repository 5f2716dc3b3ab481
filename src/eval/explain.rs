//! Witnesses: why a formula is false (or true) in a world, grounded in the
//! world's instances, hosts and channels.
//!
//! [`Explainer::why_false`] descends into a false formula: a `forall` names
//! the binding that falsifies it and explains the body under it; an `and`
//! its first false conjunct; an `or` every alternative; a comparison shows
//! both sides' values; an atom names the instances and ports it looked for.
//! [`Explainer::why_true`] does the same for true formulas under `not` and on
//! the left of `implies`.

use crate::check::ir::{Binder, CmpOp, Domain, Formula, FormulaKind, Quantifier, Sort, Term, TermKind, VarId};

use super::ctx::{Ctx, Env, Res, Val};
use super::print::{count_of, list, plural, Printer};
use super::Step;

/// At most this many candidates of a false `exists` are explained one by one.
const MAX_CANDIDATES: usize = 3;

pub(crate) struct Explainer<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub pr: Printer<'a>,
}

fn step(f: &Formula, text: impl Into<String>) -> Step {
    Step { loc: Some(f.loc), text: text.into() }
}

impl<'c, 'a> Explainer<'c, 'a> {
    pub fn new(ctx: &'c Ctx<'a>) -> Self {
        Explainer { ctx, pr: Printer { prog: ctx.prog } }
    }

    fn show(&self, v: Val<'_>) -> String {
        self.ctx.show(v)
    }

    fn inst(&self, env: &Env<'a>, v: VarId) -> Res<(usize, String)> {
        let i = self.ctx.inst_var(env, v)?;
        Ok((i, self.show(Val::Inst(i))))
    }

    fn port_name(&self, inst: usize, p: usize) -> &'a str {
        let comp = self.ctx.world.instances[inst].comp;
        self.ctx.prog.components[comp].ports.get(p).map(|p| p.name.as_str()).unwrap_or("?")
    }

    /// `for Router r = Router@h3` / `for host h = h5`.
    fn binding(&self, var: VarId, v: Val<'_>) -> Res<String> {
        let sort = self.ctx.var_sort(var)?;
        Ok(format!("for {} {} = {}", self.pr.sort_name(sort), self.pr.var(var), self.show(v)))
    }

    /// `in the deployment`, `on host h3`, `among the available hosts`.
    fn domain_phrase(&self, var: VarId, domain: &'a Domain, env: &mut Env<'a>) -> Res<String> {
        Ok(match (self.ctx.var_sort(var)?, domain) {
            (Sort::Host, Domain::Group { attr, value }) => {
                format!("among the available hosts with {attr} = {}", self.show(self.ctx.term(value, env)?))
            }
            (Sort::Host, _) => "among the available hosts".into(),
            (Sort::Group(g), _) => {
                format!("among the values of {} on the available hosts", self.pr.sort_name(Sort::Group(g)))
            }
            (_, Domain::Deployment) => "in the deployment".into(),
            (_, Domain::OnHost(t)) => format!("on host {}", self.show(self.ctx.term(t, env)?)),
            (_, Domain::Group { attr, value }) => {
                format!("on the hosts with {attr} = {}", self.show(self.ctx.term(value, env)?))
            }
        })
    }

    /// `the deployment has 2 Routers` / `host h3 runs no Router` / `3 available hosts`.
    fn domain_size(&self, var: VarId, domain: &'a Domain, n: usize, env: &mut Env<'a>) -> Res<String> {
        Ok(match (self.ctx.var_sort(var)?, domain) {
            (Sort::Host, _) => match n {
                0 => "no host is available".into(),
                1 => "1 available host".into(),
                _ => format!("{n} available hosts"),
            },
            (Sort::Instance(c), Domain::Deployment) => format!("the deployment has {}", count_of(n, self.pr.comp(c))),
            (Sort::Instance(c), Domain::OnHost(t)) => {
                format!("host {} runs {}", self.show(self.ctx.term(t, env)?), count_of(n, self.pr.comp(c)))
            }
            (Sort::Instance(c), Domain::Group { attr, value }) => format!(
                "the hosts with {attr} = {} run {}",
                self.show(self.ctx.term(value, env)?),
                count_of(n, self.pr.comp(c))
            ),
            (Sort::Group(g), _) => {
                format!("{} takes {n} values on the available hosts", self.pr.sort_name(Sort::Group(g)))
            }
        })
    }

    /// Why `f`, false under `env`, is false.
    pub fn why_false(&self, f: &'a Formula, env: &mut Env<'a>) -> Res<Vec<Step>> {
        let ctx = self.ctx;
        match &f.kind {
            FormulaKind::Const(_) => Ok(vec![step(f, "the clause is `false`")]),
            FormulaKind::Not(g) => self.why_true(g, env),
            FormulaKind::And(v) => {
                for g in v {
                    if !ctx.holds(g, env)? {
                        return self.why_false(g, env);
                    }
                }
                Ok(vec![step(f, format!("`{}` is false", self.pr.formula_short(f)))])
            }
            FormulaKind::Or(v) => {
                let mut out = vec![step(f, format!("none of the {} alternatives holds", v.len()))];
                for g in v {
                    out.extend(self.why_false(g, env)?);
                }
                Ok(out)
            }
            FormulaKind::Implies(a, b) => {
                let mut out = self.why_true(a, env)?;
                out.extend(self.why_false(b, env)?);
                Ok(out)
            }
            FormulaKind::Cmp(op, l, r) => Ok(vec![step(f, self.cmp_text(*op, l, r, false, env)?)]),
            FormulaKind::Connects { a, pa, b, pb } => {
                let ((_, x), (_, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                let (px, py) = (self.pr_port(*a, *pa), self.pr_port(*b, *pb));
                Ok(vec![step(f, format!("no channel joins {x}.{px} and {y}.{py}"))])
            }
            FormulaKind::Connected(a, b) => {
                let ((i, x), (j, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                let text = if i == j {
                    format!("{x} is not connected to itself: a channel joins two different instances")
                } else {
                    format!("no channel joins {x} and {y}")
                };
                Ok(vec![step(f, text)])
            }
            FormulaKind::Reachable(a, b) => {
                let ((_, x), (_, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                Ok(vec![step(f, format!("{x} cannot reach {y}"))])
            }
            FormulaKind::Quant { q: Quantifier::Forall, var, domain, body } => {
                match ctx.find(*var, domain, body, false, env)? {
                    Some(v) => {
                        let saved = env[*var];
                        env[*var] = Some(v);
                        let mut out = vec![step(f, self.binding(*var, v)?)];
                        out.extend(self.why_false(body, env)?);
                        env[*var] = saved;
                        Ok(out)
                    }
                    None => Ok(vec![step(f, format!("`{}` is false", self.pr.formula_short(f)))]),
                }
            }
            FormulaKind::Quant { q: Quantifier::Exists, var, domain, body } => {
                let sort = ctx.var_sort(*var)?;
                let dom: Vec<Val<'a>> = ctx.domain(*var, domain, env)?.iter().collect();
                let phrase = self.domain_phrase(*var, domain, env)?;
                let size = self.domain_size(*var, domain, dom.len(), env)?;
                let head = format!(
                    "no {} {} {phrase} satisfies `{}`",
                    self.pr.sort_name(sort),
                    self.pr.var(*var),
                    self.pr.formula_short(body)
                );
                let head = if dom.is_empty() { format!("{head}: {size}") } else { format!("{head} ({size})") };
                let mut out = vec![step(f, head)];
                let saved = env[*var];
                for &v in dom.iter().take(MAX_CANDIDATES) {
                    env[*var] = Some(v);
                    let why = self.why_false(body, env)?;
                    let text = why.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(": ");
                    out.push(Step {
                        loc: why.last().and_then(|s| s.loc),
                        text: format!("{} = {}: {text}", self.pr.var(*var), self.show(v)),
                    });
                }
                env[*var] = saved;
                if dom.len() > MAX_CANDIDATES {
                    out.push(step(f, format!("(and {} more)", dom.len() - MAX_CANDIDATES)));
                }
                Ok(out)
            }
            FormulaKind::Error => Err(super::ctx::EvalError("the goal contains a formula that failed to check".into())),
        }
    }

    /// Why `f`, true under `env`, is true.
    pub fn why_true(&self, f: &'a Formula, env: &mut Env<'a>) -> Res<Vec<Step>> {
        let ctx = self.ctx;
        match &f.kind {
            FormulaKind::Const(_) => Ok(vec![step(f, "`true` holds")]),
            FormulaKind::Not(g) => self.why_false(g, env),
            FormulaKind::And(v) => {
                let mut out = Vec::new();
                for g in v {
                    out.extend(self.why_true(g, env)?);
                }
                Ok(out)
            }
            FormulaKind::Or(v) => {
                for g in v {
                    if ctx.holds(g, env)? {
                        return self.why_true(g, env);
                    }
                }
                Ok(vec![step(f, format!("`{}` holds", self.pr.formula_short(f)))])
            }
            FormulaKind::Implies(a, b) => {
                if ctx.holds(a, env)? {
                    self.why_true(b, env)
                } else {
                    self.why_false(a, env)
                }
            }
            FormulaKind::Cmp(op, l, r) => Ok(vec![step(f, self.cmp_text(*op, l, r, true, env)?)]),
            FormulaKind::Connects { a, pa, b, pb } => {
                let ((i, x), (j, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                let (px, py) = (self.pr_port(*a, *pa), self.pr_port(*b, *pb));
                let c = ctx.channel_between_ports(i, *pa, j, *pb).map(|c| ctx.world.channel_name(c));
                let c = c.map(|c| format!("channel {c}")).unwrap_or_else(|| "a channel".into());
                Ok(vec![step(f, format!("{c} joins {x}.{px} and {y}.{py}"))])
            }
            FormulaKind::Connected(a, b) => {
                let ((i, x), (j, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                let text = match ctx.channel_between(i, j) {
                    Some(c) => {
                        let ch = &ctx.world.channels[c];
                        let (fi, ti) = (ch.from.inst, ch.to.inst);
                        format!(
                            "channel {} joins {}.{} and {}.{}",
                            ctx.world.channel_name(c),
                            self.show(Val::Inst(fi)),
                            self.port_name(fi, ch.from.port),
                            self.show(Val::Inst(ti)),
                            self.port_name(ti, ch.to.port)
                        )
                    }
                    None => format!("{x} is connected to {y}"),
                };
                Ok(vec![step(f, text)])
            }
            FormulaKind::Reachable(a, b) => {
                let ((i, x), (j, y)) = (self.inst(env, *a)?, self.inst(env, *b)?);
                let text = if i == j { format!("{x} reaches itself") } else { format!("{x} can reach {y}") };
                Ok(vec![step(f, text)])
            }
            FormulaKind::Quant { q: Quantifier::Exists, var, domain, body } => {
                match ctx.find(*var, domain, body, true, env)? {
                    Some(v) => {
                        let saved = env[*var];
                        env[*var] = Some(v);
                        let mut out = vec![step(f, self.binding(*var, v)?)];
                        out.extend(self.why_true(body, env)?);
                        env[*var] = saved;
                        Ok(out)
                    }
                    None => Ok(vec![step(f, format!("`{}` holds", self.pr.formula_short(f)))]),
                }
            }
            FormulaKind::Quant { q: Quantifier::Forall, var, domain, body } => {
                let sort = ctx.var_sort(*var)?;
                let n = ctx.domain(*var, domain, env)?.len();
                let phrase = self.domain_phrase(*var, domain, env)?;
                let size = self.domain_size(*var, domain, n, env)?;
                let text = format!(
                    "every {} {} {phrase} satisfies `{}` ({size})",
                    self.pr.sort_name(sort),
                    self.pr.var(*var),
                    self.pr.formula_short(body)
                );
                Ok(vec![step(f, text)])
            }
            FormulaKind::Error => Err(super::ctx::EvalError("the goal contains a formula that failed to check".into())),
        }
    }

    fn pr_port(&self, var: VarId, p: usize) -> &'a str {
        match self.pr.var_sort(var) {
            Some(Sort::Instance(c)) => {
                self.ctx.prog.components.get(c).and_then(|c| c.ports.get(p)).map(|p| p.name.as_str()).unwrap_or("?")
            }
            _ => "?",
        }
    }

    /// A comparison and both sides' values: why it is false (or, with
    /// `holds`, why it is true).
    fn cmp_text(&self, op: CmpOp, l: &'a Term, r: &'a Term, holds: bool, env: &mut Env<'a>) -> Res<String> {
        // Put the varying side on the left: `card(…) <= 2`, not `2 >= card(…)`.
        let (op, l, r) = if l.is_constant() && !r.is_constant() { (flip(op), r, l) } else { (op, l, r) };
        if let Some(k) = r.constant().and_then(|v| if let crate::check::ir::Value::Int(k) = v { Some(k) } else { None })
        {
            if let TermKind::Count(b) = &l.kind {
                if let Some(text) = self.count_text(op, b, k, holds, env)? {
                    return Ok(text);
                }
            }
        }
        let lt = self.pr.term_short(l);
        let lv = self.show(self.ctx.term(l, env)?);
        let rv = self.show(self.ctx.term(r, env)?);
        let o = op.as_str();
        if r.is_constant() {
            return Ok(match (holds, op) {
                (true, CmpOp::Eq) => format!("{lt} is {lv}"),
                (true, _) => format!("{lt} is {lv}, which is {o} {rv}"),
                (false, _) => format!("{lt} is {lv}, but must be {o} {rv}"),
            });
        }
        let rt = self.pr.term_short(r);
        Ok(match (holds, op) {
            (true, _) => format!("{lt} is {lv} and {rt} is {rv}"),
            (false, CmpOp::Ne) => format!("{lt} and {rt} are both {lv}"),
            (false, _) => format!("{lt} is {lv}, but must be {o} {rt} ({rv})"),
        })
    }

    /// The special wording for a count compared with a constant:
    /// `Router@h3 is connected to 3 Clients (…); the clause allows at most 2`,
    /// `host h5 runs no Router; the clause requires exactly 1`.
    fn count_text(&self, op: CmpOp, b: &'a Binder, k: i64, holds: bool, env: &mut Env<'a>) -> Res<Option<String>> {
        let Ok(Sort::Instance(c)) = self.ctx.var_sort(b.var) else { return Ok(None) };
        let comp = self.pr.comp(c);
        let members = self.ctx.members(b.var, &b.domain, b.cond.as_ref(), env)?;
        let n = members.len();
        let names: Vec<String> = members.iter().map(|&v| self.show(v)).collect();
        let listed = if names.is_empty() { String::new() } else { format!(" ({})", list(&names)) };
        let subject = match (&b.cond, &b.domain) {
            (None, Domain::Deployment) => format!("the deployment has {}{listed}", count_of(n, comp)),
            (None, Domain::OnHost(t)) => {
                format!("host {} runs {}{listed}", self.show(self.ctx.term(t, env)?), count_of(n, comp))
            }
            (Some(Formula { kind: FormulaKind::Connected(y, x), .. }), Domain::Deployment)
                if *y == b.var && *x != b.var =>
            {
                let x = self.show(self.ctx.get(env, *x)?);
                let what = if n == 0 { format!("no {}", plural(comp)) } else { count_of(n, comp) };
                format!("{x} is connected to {what}{listed}")
            }
            _ => return Ok(None),
        };
        if holds {
            let words = match op {
                CmpOp::Le => format!("at most {k}"),
                CmpOp::Lt => format!("fewer than {k}"),
                CmpOp::Ge => format!("at least {k}"),
                CmpOp::Gt => format!("more than {k}"),
                CmpOp::Eq => format!("exactly {k}"),
                CmpOp::Ne => format!("not {k}"),
            };
            return Ok(Some(format!("{subject}, that is {words}")));
        }
        let bound = match op {
            CmpOp::Le => format!("allows at most {k}"),
            CmpOp::Lt => format!("allows fewer than {k}"),
            CmpOp::Ge => format!("requires at least {k}"),
            CmpOp::Gt => format!("requires more than {k}"),
            CmpOp::Eq => format!("requires exactly {k}"),
            CmpOp::Ne => format!("requires any number but {k}"),
        };
        Ok(Some(format!("{subject}; the clause {bound}")))
    }
}

/// The operator with its sides swapped: `a < b` is `b > a`.
fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}
