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
    Ok(Level { source, maximize: false, terms, constant })
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
