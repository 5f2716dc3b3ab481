//! deladas: the compiler and toolchain for Deladas, a constraint language for
//! deploying distributed applications.
//!
//! The pipeline, one stage per module, data flowing one way:
//!
//! ```text
//! syntax (tokens, AST) -> check (names, sorts, typed IR) -> lower (ground propositional/pseudo-Boolean form) -> solve (Z3) -> ddd (XML)
//!                                           \-> eval (independent evaluator behind `verify`)
//! ```
//!
//! See `ARCHITECTURE.md` for the invariants that keep it honest.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::todo, clippy::dbg_macro)]

pub mod bench_goals;
pub mod check;
pub mod ddd;
pub mod diagnostics;
pub mod enact;
pub mod eval;
pub mod lower;
pub mod mdcd;
pub mod plan;
pub mod request;
pub mod solve;
pub mod syntax;
