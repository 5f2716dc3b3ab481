//! Checked deployments: the only way a configuration the solver found
//! becomes a DDD.
//!
//! [`CheckedDeployment`] has a private constructor: the library builds one
//! only after the independent evaluator (`crate::eval`) has bound the DDD to
//! the goal and found every clause (and, for a parsimonious answer, no
//! superfluous part) — see [`check`]. [`super::solve`] and
//! [`super::resolve::resolve`] return checked deployments; a disagreement
//! between solver and evaluator comes back as internal-error diagnostics
//! (E0901), never as a DDD. The writers that turn a solution into a DDD
//! ([`super::output`]) are private to the crate.
//!
//! ```compile_fail
//! // A checked deployment cannot be made outside the library…
//! let d = deladas::solve::CheckedDeployment { deployment: Default::default() };
//! ```
//!
//! ```compile_fail
//! // …and a solution cannot be turned into a DDD without the check.
//! use deladas::solve::output::to_deployment;
//! ```

use crate::check::ir::Program;
use crate::ddd::Deployment;
use crate::diagnostics::{Code, Diagnostic};

use super::output::GoalInfo;

/// A DDD that the independent evaluator found to satisfy the goal.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedDeployment {
    deployment: Deployment,
}

impl CheckedDeployment {
    /// The deployment (read only: a changed deployment is no longer checked).
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }
    /// The deployment, giving up the guarantee.
    pub fn into_deployment(self) -> Deployment {
        self.deployment
    }
    /// Sets the goal's name and SHA-256 written on `<deployment>` (metadata
    /// the evaluator does not read, so the check still holds).
    pub fn with_goal(mut self, info: &GoalInfo) -> Self {
        self.deployment.goal = info.name.clone();
        self.deployment.goal_sha256 = info.sha256.clone();
        self
    }
    /// The DDD as XML (ddd.md).
    pub fn to_xml(&self) -> String {
        crate::ddd::to_xml(&self.deployment)
    }
}

impl std::ops::Deref for CheckedDeployment {
    type Target = Deployment;
    fn deref(&self) -> &Deployment {
        &self.deployment
    }
}

/// An internal-error diagnostic: the solver and the evaluator disagree.
fn internal(message: String) -> Diagnostic {
    Diagnostic::new(Code::Internal, format!("internal error: {message}"))
        .note("the solver's configuration failed the independent evaluator; this is a bug in deladas, please report it with the goal file")
}

/// Runs the independent evaluator on a configuration the solver produced:
/// well-formed DDD, bound to the goal, every clause holds, and (with
/// `parsimony`, on configurations of at most 200 parts, where the
/// per-part re-evaluation is affordable) no part is superfluous.
pub(crate) fn check(program: &Program, d: Deployment, parsimony: bool) -> Result<CheckedDeployment, Vec<Diagnostic>> {
    if let Err(errs) = d.check() {
        return Err(errs.iter().map(|e| internal(format!("the DDD written is malformed: {e}"))).collect());
    }
    let world = crate::eval::bind(program, &d).map_err(|errs| errs.into_iter().map(internal).collect::<Vec<_>>())?;
    let violations = crate::eval::all_violations(program, &world);
    if !violations.is_empty() {
        return Err(violations.iter().map(|v| internal(format!("the configuration violates a clause: {v}"))).collect());
    }
    if parsimony && world.instances.len() + world.channels.len() <= 200 {
        let extra = crate::eval::superfluous(program, &world);
        if !extra.is_empty() {
            return Err(vec![internal(format!("{} part(s) of the configuration are superfluous", extra.len()))]);
        }
    }
    Ok(CheckedDeployment { deployment: d })
}

/// Checks every configuration of a raw outcome: `Sat` with its
/// `deployments`, or `Rejected` when the evaluator disagrees with one.
pub(crate) fn outcome(program: &Program, outcome: super::Outcome, parsimony: bool) -> super::Outcome {
    let super::Outcome::Sat { ground, solutions, .. } = outcome else { return outcome };
    let mut deployments = Vec::with_capacity(solutions.len());
    for sol in &solutions {
        let d = super::output::to_deployment(program, &ground, sol, &GoalInfo::default());
        match check(program, d, parsimony) {
            Ok(c) => deployments.push(c),
            Err(diags) => return super::Outcome::Rejected(diags),
        }
    }
    super::Outcome::Sat { ground, solutions, deployments }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(text: &str) -> Program {
        let loaded = crate::check::load(std::path::Path::new("g.deladas"), Some(text), &crate::check::RealFs);
        let (_, checked) = crate::check::check_loaded(loaded);
        assert!(!checked.has_errors(), "{:?}", checked.diags);
        checked.program
    }

    /// The solver's answer passes; the same answer with a part taken away
    /// (as a solver bug would produce) is an internal error, not a DDD.
    #[test]
    fn a_wrong_configuration_is_not_a_checked_deployment() {
        let path = std::path::Path::new(env!("DELADAS_ROOT")).join("examples/p2p.deladas");
        let p = program(&std::fs::read_to_string(path).expect("the example"));
        let hosts: Vec<usize> = (0..p.hosts.len()).collect();
        let (out, _) = super::super::solve(&p, &hosts, &super::super::Options::default(), &mut super::super::Quiet)
            .expect("grounds");
        let super::super::Outcome::Sat { deployments, .. } = out else { panic!("satisfiable: {out:?}") };
        let good = deployments[0].deployment().clone();
        assert!(check(&p, good.clone(), true).is_ok());
        let mut bad = good;
        bad.channels.clear();
        let errs = check(&p, bad, false).expect_err("a violated clause is caught");
        assert!(errs.iter().all(|d| d.code == Code::Internal), "{errs:?}");
        assert!(errs[0].message.contains("violates a clause"), "{errs:?}");
    }

    /// Large quantifier domains are expanded over channel partners only
    /// (`lower`'s partner domains, from 128 elements): the ground clauses
    /// must still mean what the evaluator says. Each single channel of a
    /// solution of a 150-host goal is switched off, and a few candidate
    /// channels on: the ground form and the evaluator agree on whether
    /// every clause holds.
    #[test]
    fn partner_domains_keep_the_ground_clauses_exact() {
        use crate::lower::state::GroundState;
        // The peers' P2P goal (as `deladas bench-goal 150` writes it; not
        // imported from `bench_goals`, which depends on `solve`).
        let mut text = String::from(
            "component Client(code = \"c.xml\", ports = {in, out})\n\
             component Router(code = \"r.xml\", ports = {cin[], cout[], rin[], rout[]})\n",
        );
        for i in 1..=150 {
            text.push_str(&format!("host h{i} = host()\n"));
        }
        text.push_str(
            "constraintset peers = constraintset {
    forall host h in deployment (
        card(instancesof Router in h) + card(instancesof Client in h) = 1
    )
    forall Client c in deployment (
        exists Router r in deployment ( c.out connectsto r.cin  c.in connectsto r.cout )
    )
    forall Router r in deployment ( card(Client c connectedto r) <= 2 )
    forall Router r1 in deployment (
        exists Router r2 in deployment ( r1.rout connectsto r2.rin  r1.rin connectsto r2.rout  r1 != r2 )
    )
    forall Router r1, r2 in deployment ( reachable(r1, r2) )
}
",
        );
        let p = program(&text);
        let hosts: Vec<usize> = (0..p.hosts.len()).collect();
        let (out, _) = super::super::solve(&p, &hosts, &super::super::Options::default(), &mut super::super::Quiet)
            .expect("grounds");
        let super::super::Outcome::Sat { ground, solutions, .. } = out else { panic!("satisfiable: {out:?}") };
        let sol = &solutions[0];
        let clauses_hold = |chans: &[crate::lower::ChanId]| {
            let st = GroundState::new(&ground, &sol.slots, chans);
            let s2 = super::super::Solution { slots: sol.slots.clone(), chans: chans.to_vec() };
            let d = super::super::output::to_deployment(&p, &ground, &s2, &GoalInfo::default());
            // A DDD that does not bind (none here) would be compared as failing both ways.
            let eval_ok = crate::eval::bind(&p, &d).is_ok_and(|world| {
                crate::eval::all_violations(&p, &world).iter().all(|v| v.kind != crate::eval::ViolationKind::Clause)
            });
            (st.all_clauses_hold(), eval_ok)
        };
        let (g, e) = clauses_hold(&sol.chans);
        assert!(g && e, "the solution holds");
        let mut broken = 0;
        for i in 0..sol.chans.len() {
            let mut fewer = sol.chans.clone();
            fewer.remove(i);
            let (g, e) = clauses_hold(&fewer);
            assert_eq!(g, e, "without channel {}", sol.chans[i]);
            broken += usize::from(!g);
        }
        assert!(broken > 0, "some channel is needed");
        let present: std::collections::BTreeSet<u32> = sol.slots.iter().copied().collect();
        let extra = (0..ground.chans.len() as u32)
            .filter(|c| !sol.chans.contains(c))
            .filter(|&c| {
                let ch = ground.chans[c as usize];
                present.contains(&ch.from.slot) && present.contains(&ch.to.slot)
            })
            .take(40);
        for c in extra {
            let mut more = sol.chans.clone();
            more.push(c);
            let (g, e) = clauses_hold(&more);
            assert_eq!(g, e, "with channel {c}");
        }
    }
}
