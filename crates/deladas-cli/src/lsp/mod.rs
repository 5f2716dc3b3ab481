//! `deladas lsp`: a language server for Deladas over stdio.
//!
//! The only module that knows LSP. It reads the same front end as `deladas
//! check` (unsaved buffers are handed to the loader through its
//! `FileSystem`), so the editor shows exactly the CLI's diagnostics, and the
//! same unsat explanation as `deladas explain` on save. Features: diagnostics,
//! hover, go to definition, find references, completion, document symbols
//! and semantic tokens; see `docs/lsp.md`.
//!
//! - `transport`: JSON-RPC framing on stdin/stdout, robust to bad messages;
//! - `server`: lifecycle, documents, dispatch, the solver thread;
//! - `analysis`: load + check a buffer, diagnostics to LSP;
//! - `convert`: byte offsets ↔ UTF-16 positions, paths ↔ URIs;
//! - `navigate`, `complete`, `symbols`: the features.

mod actions;
mod analysis;
mod complete;
pub mod convert;
mod features;
mod navigate;
mod server;
mod symbols;
mod transport;

/// Runs the language server on stdin/stdout until the client says `exit`;
/// returns the process exit code.
pub fn run_stdio() -> i32 {
    let (conn, io) = transport::stdio();
    let code = server::run(conn);
    io.join();
    code
}
