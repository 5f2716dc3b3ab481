//! `deladas lsp`: the language server, speaking LSP over stdin and stdout.

/// Runs the server until the client exits; the exit code is 0 after a clean
/// `shutdown` then `exit`, 1 otherwise.
pub(super) fn cmd_lsp() -> i32 {
    crate::lsp::run_stdio()
}
