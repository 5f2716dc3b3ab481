//! The `deladas` command: the front ends on top of the `deladas` library.
//! Each front end is a module here; they never import each other (enforced by
//! `tests/architecture.rs`).
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::todo, clippy::dbg_macro)]

mod agent;
mod cli;
mod client;
mod lsp;
mod manage;

fn main() {
    std::process::exit(cli::main());
}
