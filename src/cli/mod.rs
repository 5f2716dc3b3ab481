//! The `deladas` command line: argument parsing, exit codes, output.
//!
//! Exit codes (cli.md): 0 success, 1 a definite "no", 2 bad input or usage,
//! 3 the solver gave up. Diagnostics go to stderr (coloured on a terminal),
//! or to stdout as a JSON array with `--format json`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check;
use crate::diagnostics::{render, Diagnostic, Sources};

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a definite "no" (unsatisfiable, violated, no re-solve).
pub const EXIT_NO: i32 = 1;
/// Exit code: bad input or usage.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code: the solver gave up.
pub const EXIT_UNKNOWN: i32 = 3;

#[derive(Parser, Debug)]
#[command(name = "deladas", version, about = "Constraint-based deployment of distributed applications")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum DiagFormat {
    /// rustc-style text on stderr.
    Text,
    /// A JSON array on stdout.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and type-check a goal; print diagnostics.
    Check {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// Print diagnostics as text (stderr) or a JSON array (stdout).
        #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
        format: DiagFormat,
    },
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_OK };
        }
    };
    match cli.command {
        Command::Check { file, format } => cmd_check(&file, format),
    }
}

fn emit(diags: &[Diagnostic], sources: &Sources, format: DiagFormat) {
    match format {
        DiagFormat::Text => render::to_stderr(diags, sources),
        DiagFormat::Json => println!("{}", render::to_json(diags, sources)),
    }
}

fn cmd_check(file: &std::path::Path, format: DiagFormat) -> i32 {
    let (sources, checked) = check::check_path(file);
    emit(&checked.diags, &sources, format);
    if checked.has_errors() {
        EXIT_BAD_INPUT
    } else {
        EXIT_OK
    }
}
