//! Objectives and preferences evaluated on a world (issue 19), independently
//! of the solver's grounding: the value of every level, in priority order,
//! as a number to minimise (a `maximize` term negated; the preferences'
//! level is the total weight of the broken ones, each leading `forall`
//! binding of a preference counted on its own).

use crate::check::ir::{Formula, FormulaKind, Program, Quantifier, Sense};

use super::ctx::{Ctx, Env, Res};
use super::World;

/// The value of every level of `program` in `world` (to minimise, in
/// priority order), or `None` when the world cannot be evaluated.
pub fn levels(program: &Program, world: &World) -> Option<Vec<i64>> {
    let ctx = Ctx::new(program, world).ok()?;
    levels_in(&ctx).ok()
}

/// The values of the objectives in the user's terms (a `maximize` term as
/// it is, not negated), in declaration order, and the total weight of the
/// broken preferences (`None` without preferences).
pub fn values(program: &Program, world: &World) -> Option<(Vec<i64>, Option<i64>)> {
    let ctx = Ctx::new(program, world).ok()?;
    let mut objectives = vec![];
    for o in &program.objectives {
        let mut env: Env = vec![None; program.vars.len()];
        objectives.push(ctx.int(&o.term, &mut env).ok()?);
    }
    let broken = if program.preferences.is_empty() { None } else { Some(broken_weight(&ctx).ok()?) };
    Some((objectives, broken))
}

fn levels_in(ctx: &Ctx) -> Res<Vec<i64>> {
    let p = ctx.prog;
    let mut out = vec![];
    for o in &p.objectives {
        let mut env: Env = vec![None; p.vars.len()];
        let v = ctx.int(&o.term, &mut env)?;
        out.push(if o.sense == Sense::Maximize { v.saturating_neg() } else { v });
    }
    if !p.preferences.is_empty() {
        out.insert(p.prefer_rank.min(out.len()), broken_weight(ctx)?);
    }
    Ok(out)
}

fn broken_weight(ctx: &Ctx) -> Res<i64> {
    let p = ctx.prog;
    let mut total: i64 = 0;
    for pref in &p.preferences {
        let mut env: Env = vec![None; p.vars.len()];
        let n = broken_bindings(ctx, &pref.formula, &mut env)?;
        total = total.saturating_add(n.saturating_mul(pref.weight));
    }
    Ok(total)
}

/// How many bindings of the leading `forall`s break the formula.
fn broken_bindings<'a>(ctx: &Ctx<'a>, f: &'a Formula, env: &mut Env<'a>) -> Res<i64> {
    if let FormulaKind::Quant { q: Quantifier::Forall, var, domain, body } = &f.kind {
        let dom = ctx.domain(*var, domain, env)?;
        let elems: Vec<_> = dom.iter().collect();
        let mut n = 0;
        for x in elems {
            env[*var] = Some(x);
            n += broken_bindings(ctx, body, env)?;
        }
        env[*var] = None;
        return Ok(n);
    }
    Ok(if ctx.holds(f, env)? { 0 } else { 1 })
}
