//! Solving errors as diagnostics: the stage reports its own failures.

use super::SolveError;
use crate::diagnostics::{Code, Diagnostic, FileId};
use crate::lower::LowerError;

impl SolveError {
    /// The diagnostic for this error; `file` is the goal's root file.
    pub fn to_diagnostic(&self, file: FileId) -> Diagnostic {
        match self {
            SolveError::Lower(LowerError::TooLarge { what, estimate, limit }) => Diagnostic::new(
                Code::GroundingTooLarge,
                format!("grounding this goal would create about {estimate} {what}; the limit is {limit}"),
            )
            .note("fewer hosts, smaller `maxperhost`, or fewer nested quantifiers make the goal smaller"),
            SolveError::Lower(LowerError::Overflow(loc)) => Diagnostic::new(
                Code::SolverOverflow,
                "an integer in this clause is too large for the solver",
            )
            .primary(loc.file, loc.span, "overflows 64-bit arithmetic"),
            SolveError::Overflow => Diagnostic::new(
                Code::SolverOverflow,
                "a coefficient or bound does not fit the solver's 32-bit pseudo-Boolean constraints",
            )
            .note(format!("in the goal `{file}`")),
            SolveError::Lower(LowerError::Internal(m)) => {
                Diagnostic::new(Code::Internal, format!("internal error: {m}"))
                    .note("this is a bug in deladas; please report it with the goal file")
            }
            SolveError::Stopped(hit) | SolveError::Lower(LowerError::Stopped(hit)) => {
                Diagnostic::new(Code::SolverGaveUp, format!("the solver gave up: {hit}")).help(limit_help(hit))
            }
        }
    }

    /// Whether a limit of the run (time, memory, a cancel) stopped it: the
    /// CLI's exit 3, not bad input.
    pub fn is_stopped(&self) -> bool {
        matches!(self, SolveError::Stopped(_) | SolveError::Lower(LowerError::Stopped(_)))
    }
}

/// What to try when a limit stopped the run.
pub fn limit_help(hit: &crate::budget::LimitHit) -> &'static str {
    match hit {
        crate::budget::LimitHit::Time { .. } => "a longer `--timeout` may help",
        crate::budget::LimitHit::Memory { .. } => "a larger `--max-memory`, or a smaller goal, may help",
        crate::budget::LimitHit::Cancelled { .. } => "the run was cancelled",
        crate::budget::LimitHit::ModelUnreadable { .. } => "run it again; a longer `--timeout` may help",
    }
}
