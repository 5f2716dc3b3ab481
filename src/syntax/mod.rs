//! Syntax: source text to an untyped tree with spans.
//!
//! [`parse`] never fails: it returns every declaration it could read plus
//! diagnostics for the rest, so the checker and the language server always
//! get a tree, even for a half-typed file.

pub mod ast;
pub mod format;
pub mod lexer;
pub mod parser;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, clippy::pedantic, clippy::unwrap_used, unused_parens, unused_imports, dead_code)]
    grammar,
    "/deladas.rs"
);

pub use parser::parse;
