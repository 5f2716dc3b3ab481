//! Grounding objectives and preferences (issue 19).
//!
//! Every objective becomes a *level*: a linear form `Σ coeff·node + constant`
//! over ground nodes, to be minimised (a `maximize` is negated). All
//! preferences together are one more level, at [`Program::prefer_rank`]: the
//! total weight of the broken ones. A preference whose clause starts with
//! `forall` is one soft clause per binding of those variables (each binding
//! that breaks it costs the weight), so "prefer every broker on its own rack"
//! is as satisfied as it can be rather than all or nothing.

use super::{Ground, LowerError, NodeId, SlotId, Val};
use crate::check::ir::*;

/// What a level of the lexicographic objective is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelSource {
    /// `program.objectives[i]`.
    Objective(usize),
    /// Every preference: the total weight broken.
    Preferences,
}

/// One level: minimise `Σ coeff·node + constant`.
#[derive(Debug, Clone)]
pub struct Level {
    pub source: LevelSource,
    /// A `maximize`: the form is the term negated.
    pub maximize: bool,
    pub terms: Vec<(NodeId, i64)>,
    pub constant: i64,
    /// For a term with `abs`/`min`/`max`: its value in unary, one node
    /// "term ≥ m" per threshold (see [`Ladder`]); `terms` are then those
    /// nodes, so the value is still a linear form.
    pub ladder: Option<Ladder>,
}

/// An objective term with `abs`/`min`/`max`, which has no linear form over
/// the ground nodes: it is lowered as one comparison "term ≥ m" per value
/// m it can take above its least value `lo` (every `step`-th, when all its
/// numbers are multiples of `step`), each through the comparison path (by
/// cases), and the term's value is `lo` plus `step` times the number that
/// hold. A step
/// of the descent ("strictly better than the best so far") is one of these
/// comparisons: `term ≥ best + 1` for `maximize`, not `term ≥ best` (that
/// is, `term ≤ best - 1`) for `minimize`.
#[derive(Debug, Clone)]
pub struct Ladder {
    /// The least value the term can take.
    pub lo: i64,
    /// Every value of the term is a multiple of `step` (the gcd of its
    /// constants and coefficients), and so are `lo` and the thresholds.
    pub step: i64,
    /// `nodes[i]` holds exactly when the term is at least `lo + (i + 1)·step`.
    pub nodes: Vec<NodeId>,
}

impl Ladder {
    /// The node "term ≥ m", or a constant outside the range.
    pub fn at_least(&self, m: i64) -> Result<NodeId, bool> {
        if m <= self.lo {
            return Err(true);
        }
        // The first threshold at or above m.
        let i = (m - self.lo).saturating_add(self.step - 1) / self.step - 1;
        match usize::try_from(i).ok().and_then(|i| self.nodes.get(i)) {
            Some(&n) => Ok(n),
            None => Err(false),
        }
    }
}

impl Level {
    /// The level's value (to minimise) given the truth of each node.
    pub fn value(&self, holds: impl Fn(NodeId) -> bool) -> i64 {
        self.terms.iter().filter(|(n, _)| holds(*n)).fold(self.constant, |a, (_, c)| a.saturating_add(*c))
    }

    /// The smallest value the form can take (every negative coefficient's
    /// node true, every positive one false).
    pub fn floor(&self) -> i64 {
        self.terms.iter().filter(|(_, c)| *c < 0).fold(self.constant, |a, (_, c)| a.saturating_add(*c))
    }
}

/// What a preference's variable is bound to in one soft clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Slot(SlotId),
    Host(HostId),
    /// A group value (`zone z in deployment`), by index in the ground form.
    Value(u32),
}

/// One ground soft clause.
#[derive(Debug, Clone)]
pub struct SoftClause {
    /// Index into `program.preferences`.
    pub pref: usize,
    /// True when the preference holds for this binding.
    pub node: NodeId,
    pub weight: i64,
    /// The leading `forall` variables and what they are bound to.
    pub binding: Vec<(VarId, Bound)>,
}

/// The ground objectives of a goal, in priority order.
#[derive(Debug, Clone, Default)]
pub struct Objectives {
    pub levels: Vec<Level>,
    pub soft: Vec<SoftClause>,
}

impl Objectives {
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

/// Grounds the program's objectives and preferences into `g`'s nodes.
pub(super) fn ground(p: &Program, g: &mut Ground, env: &mut Vec<Option<Val>>) -> Result<Objectives, LowerError> {
    let mut out = Objectives::default();
    if !p.optimises() {
        return Ok(out);
    }
    let mut objective_levels = vec![];
    for (i, o) in p.objectives.iter().enumerate() {
        if g.has_extreme(&o.term) {
            objective_levels.push(ladder_level(p, g, env, i, o)?);
            continue;
        }
        let lin = g.lin(p, &o.term, env)?;
        let lin = match o.sense {
            Sense::Minimize => lin,
            Sense::Maximize => lin.scale(-1).ok_or(LowerError::Overflow(o.loc))?,
        };
        let mut l = level(g, LevelSource::Objective(i), lin.terms, lin.constant, o.loc)?;
        l.maximize = o.sense == Sense::Maximize;
        objective_levels.push(l);
    }
    let mut soft = vec![];
    for (i, pref) in p.preferences.iter().enumerate() {
        let mut binding = vec![];
        peel(p, g, env, i, pref, &pref.formula, vec![], &mut binding, &mut soft)?;
    }
    let mut pref_terms = vec![];
    for s in &soft {
        let broken = g.not(s.node)?;
        pref_terms.push((broken, s.weight));
    }
    let pref_level = (!p.preferences.is_empty())
        .then(|| level(g, LevelSource::Preferences, pref_terms, 0, p.preferences[0].loc))
        .transpose()?;
    let rank = p.prefer_rank.min(objective_levels.len());
    let mut levels = objective_levels;
    if let Some(l) = pref_level {
        levels.insert(rank, l);
    }
    out.levels = levels;
    out.soft = soft;
    Ok(out)
}

/// A level with duplicate nodes merged and constant nodes folded.
fn level(
    g: &mut Ground,
    source: LevelSource,
    terms: Vec<(NodeId, i64)>,
    constant: i64,
    loc: Loc,
) -> Result<Level, LowerError> {
    let ovf = || LowerError::Overflow(loc);
    let mut merged: std::collections::BTreeMap<NodeId, i64> = Default::default();
    let mut constant = constant;
    for (n, c) in terms {
        match g.is_const(n) {
            Some(true) => constant = constant.checked_add(c).ok_or_else(ovf)?,
            Some(false) => {}
            None => {
                let e = merged.entry(n).or_insert(0);
                *e = e.checked_add(c).ok_or_else(ovf)?;
            }
        }
    }
    let terms: Vec<(NodeId, i64)> = merged.into_iter().filter(|(_, c)| *c != 0).collect();
    // The solver's pseudo-Boolean bounds are 32-bit.
    let total = terms.iter().try_fold(constant.unsigned_abs(), |a, (_, c)| a.checked_add(c.unsigned_abs()));
    if total.is_none_or(|t| t > i32::MAX as u64) {
        return Err(ovf());
    }
    Ok(Level { source, maximize: false, terms, constant, ladder: None })
}

/// The most thresholds one objective with `abs`/`min`/`max` is lowered to.
pub const MAX_LADDER: i64 = 4096;

/// The level of an objective whose term has `abs`/`min`/`max` (see [`Ladder`]).
fn ladder_level(
    p: &Program,
    g: &mut Ground,
    env: &mut Vec<Option<Val>>,
    i: usize,
    o: &Objective,
) -> Result<Level, LowerError> {
    let (lo, hi) = g.term_range(p, &o.term, env)?.ok_or(LowerError::Overflow(o.loc))?;
    let step = i64::try_from(g.term_step(p, &o.term, env)?).map_err(|_| LowerError::Overflow(o.loc))?.max(1);
    let width = hi.checked_sub(lo).ok_or(LowerError::Overflow(o.loc))? / step;
    if width > MAX_LADDER {
        return Err(LowerError::TooLarge {
            what: format!(
                "values of an objective with `abs`/`min`/`max` (it ranges over {lo}..{hi} in steps of {step}; each value is one comparison: count in coarser units)"
            ),
            estimate: width as u128,
            limit: MAX_LADDER as u128,
        });
    }
    let maximize = o.sense == Sense::Maximize;
    let mut nodes = vec![];
    for i in 1..=width {
        let m = lo + i * step;
        let k = Term { kind: TermKind::Int(m), ty: Type::Int, loc: o.loc };
        nodes.push(g.cmp_by_cases(p, CmpOp::Ge, &o.term, &k, env, o.loc)?);
    }
    // Minimise `lo + Σ [term ≥ m]`, or its negation.
    let (sign, constant) = if maximize { (-1, lo.checked_neg().ok_or(LowerError::Overflow(o.loc))?) } else { (1, lo) };
    let terms = nodes.iter().map(|&n| (n, sign * step)).collect();
    let mut l = level(g, LevelSource::Objective(i), terms, constant, o.loc)?;
    l.maximize = maximize;
    l.ladder = Some(Ladder { lo, step, nodes });
    Ok(l)
}

/// Splits a preference at its leading `forall`s: one soft clause per binding.
#[allow(clippy::too_many_arguments)]
fn peel(
    p: &Program,
    g: &mut Ground,
    env: &mut Vec<Option<Val>>,
    pref_index: usize,
    pref: &Preference,
    f: &Formula,
    guards: Vec<NodeId>,
    binding: &mut Vec<(VarId, Bound)>,
    out: &mut Vec<SoftClause>,
) -> Result<(), LowerError> {
    if let FormulaKind::Quant { q: Quantifier::Forall, var, domain, body } = &f.kind {
        if super::strongly_connected_pattern(p, f).is_none() {
            let elems = g.domain(p, *var, domain, env)?;
            for e in elems {
                env[*var] = Some(e);
                let guard = g.guard(e)?;
                if g.is_const(guard) == Some(false) {
                    continue;
                }
                let mut gs = guards.clone();
                gs.push(guard);
                binding.push((
                    *var,
                    match e {
                        Val::Slot(s) => Bound::Slot(s),
                        Val::Host(h) => Bound::Host(h),
                        Val::Value(v) => Bound::Value(v),
                    },
                ));
                peel(p, g, env, pref_index, pref, body, gs, binding, out)?;
                binding.pop();
            }
            env[*var] = None;
            return Ok(());
        }
    }
    let body = g.formula(p, f, env)?;
    let guard = g.and(guards)?;
    let node = g.implies(guard, body)?;
    if g.is_const(node) == Some(true) {
        return Ok(());
    }
    out.push(SoftClause { pref: pref_index, node, weight: pref.weight, binding: binding.clone() });
    Ok(())
}
