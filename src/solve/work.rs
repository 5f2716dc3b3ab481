//! Deterministic work bounds for solver calls: Z3's resource count
//! (`rlimit`) instead of the clock, so that what a bounded search decides
//! does not depend on how fast (or how loaded) the machine is.
//!
//! [`bounded`] runs a closure with at most so many units of Z3 work across
//! every check it makes on this thread (bounds nest; each one counts).
//! The solver's checks go through [`check`], which hands Z3 the work left
//! as the solver's `rlimit` parameter (Z3 counts it from the context's
//! current `rlimit count`, i.e. per check) and charges what the check used,
//! read from the `rlimit count` statistic before and after (that count is
//! cumulative per context). Outside any bound, [`check`] is a plain check.
//!
//! The wall-clock limits of a run (`--timeout`, the watchdog of
//! `crate::budget`) stay the outer limit: they end the whole run.

use std::cell::RefCell;

use z3::ast::Bool;
use z3::{Params, SatResult, Solver, StatisticsValue};

thread_local! {
    /// The work left in each enclosing bound, innermost last.
    static LEFT: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with at most `units` of Z3 work in the checks it makes on this
/// thread; returns its result and the work it used.
pub(crate) fn bounded<R>(units: u64, f: impl FnOnce() -> R) -> (R, u64) {
    LEFT.with(|l| l.borrow_mut().push(units));
    // Popped also when `f` unwinds, so a caught panic leaves no bound behind.
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            LEFT.with(|l| l.borrow_mut().pop());
        }
    }
    let pop = Pop;
    let r = f();
    let left = LEFT.with(|l| l.borrow().last().copied().unwrap_or(0));
    drop(pop);
    (r, units.saturating_sub(left))
}

/// Whether a work bound is in force on this thread (wall-clock limits
/// other than the run's own should then not apply).
pub(crate) fn metered() -> bool {
    LEFT.with(|l| !l.borrow().is_empty())
}

/// Whether a work bound in force has no work left: every further check
/// answers "unknown" at once.
pub(crate) fn used_up() -> bool {
    left() == Some(0)
}

/// The work left under every bound in force, if any is.
fn left() -> Option<u64> {
    LEFT.with(|l| l.borrow().iter().copied().min())
}

fn charge(used: u64) {
    LEFT.with(|l| {
        for x in l.borrow_mut().iter_mut() {
            *x = x.saturating_sub(used);
        }
    });
}

/// The context's resource count so far (Z3 reports it with any solver's
/// statistics; it may be reported as a 32-bit value, hence the wrapping
/// difference in [`check`]).
fn count(solver: &Solver) -> u64 {
    match solver.get_statistics().value("rlimit count") {
        Some(StatisticsValue::UInt(n)) => u64::from(n),
        Some(StatisticsValue::Double(d)) if d.is_finite() && d >= 0.0 => d as u64,
        _ => 0,
    }
}

/// `solver.check_assumptions(assumptions)` within the work bounds in force:
/// "unknown" when none is left or the check runs out of it.
pub(crate) fn check(solver: &Solver, assumptions: &[Bool]) -> SatResult {
    let Some(left) = left() else { return solver.check_assumptions(assumptions) };
    if left == 0 {
        return SatResult::Unknown;
    }
    let mut p = Params::new();
    // 0 would mean "no limit"; the parameter is 32-bit.
    p.set_u32("rlimit", left.clamp(1, u64::from(u32::MAX)) as u32);
    solver.set_params(&p);
    let before = count(solver);
    let r = solver.check_assumptions(assumptions);
    let after = count(solver);
    let used = if before <= u64::from(u32::MAX) && after <= u64::from(u32::MAX) {
        u64::from((after as u32).wrapping_sub(before as u32))
    } else {
        after.saturating_sub(before)
    };
    // A check stopped by the bound may report slightly less than it had.
    charge(if r == SatResult::Unknown && used + 16 >= left { left } else { used.max(1) });
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use z3::ast::Int;

    /// A pigeonhole formula: 7 pigeons, 6 holes (hard enough to need work).
    fn pigeons(solver: &Solver) {
        let n = 7;
        let x: Vec<Int> = (0..n).map(|i| Int::new_const(format!("p{i}"))).collect();
        for v in &x {
            solver.assert(v.ge(Int::from_i64(0)));
            solver.assert(v.lt(Int::from_i64(n as i64 - 1)));
        }
        for i in 0..n {
            for j in i + 1..n {
                solver.assert(x[i].eq(&x[j]).not());
            }
        }
    }

    #[test]
    fn a_bound_stops_a_check_and_the_same_work_decides_it_again() {
        std::thread::spawn(|| {
            let s = Solver::new();
            pigeons(&s);
            let (r, used) = bounded(u64::MAX / 4, || check(&s, &[]));
            assert_eq!(r, SatResult::Unsat);
            assert!(used > 100, "the check used {used} units");
            // A fresh solver on the same context: the count is cumulative,
            // the bound is relative to it.
            let s2 = Solver::new();
            pigeons(&s2);
            let (r, _) = bounded(10, || check(&s2, &[]));
            assert_eq!(r, SatResult::Unknown, "10 units cannot refute it");
            let s3 = Solver::new();
            pigeons(&s3);
            let (r, used3) = bounded(used * 4, || check(&s3, &[]));
            assert_eq!(r, SatResult::Unsat, "used {used3} of {}", used * 4);
            // Nested bounds: the outer one is charged too.
            let s4 = Solver::new();
            pigeons(&s4);
            let ((r, inner), outer) = bounded(used * 4, || bounded(used * 4, || check(&s4, &[])));
            assert_eq!(r, SatResult::Unsat);
            assert_eq!(inner, outer);
            assert!(!metered());
        })
        .join()
        .expect("the test thread");
    }
}
