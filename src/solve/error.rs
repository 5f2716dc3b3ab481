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
        }
    }
}
