//! `deladas explain`, and the explanation `solve` prints on unsat (the
//! library's `deladas::report`).

use super::{emit, load_checked, DiagFormat, ExplainFormat, EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNKNOWN};
use deladas::diagnostics::{Diagnostic, Sources};

pub(super) fn cmd_explain(file: &std::path::Path, out: ExplainFormat, timeout: f64) -> i32 {
    let format = if out == ExplainFormat::Json { DiagFormat::Json } else { DiagFormat::Text };
    let (sources, checked) = match load_checked(file, format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let budget = std::time::Duration::from_secs_f64(if timeout.is_finite() && timeout > 0.0 { timeout } else { 20.0 });
    if out == ExplainFormat::Html {
        return explain_html(file, &checked.program, &sources, budget);
    }
    explain_and_emit(&checked.program, &sources, format, budget)
}

/// `explain --format html`: the explanation as a self-contained page on
/// stdout (also when the goal is satisfiable or the solver gave up, saying
/// so); the exit code is the one of the text form.
fn explain_html(
    file: &std::path::Path,
    program: &deladas::check::ir::Program,
    sources: &Sources,
    budget: std::time::Duration,
) -> i32 {
    use deladas::report::{explain, Explained};
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let title = format!("deladas explain {}", file.display());
    let page = |heading: &str, ok: bool, diags: &[Diagnostic]| {
        super::print_out(&deladas::picture::diagnostics_page(&title, heading, ok, diags, sources))
    };
    match explain(program, sources, &available, budget) {
        Err(d) => {
            let code = error_exit(&d);
            emit(&[d], sources, DiagFormat::Text);
            code
        }
        Ok(Explained::Satisfiable) => {
            page("The goal is satisfiable: nothing to explain (`deladas solve` finds a configuration).", true, &[]);
            EXIT_OK
        }
        Ok(Explained::Unknown(reason)) => {
            let d = gave_up(&reason);
            page("The solver gave up before deciding the goal.", false, &[d]);
            EXIT_UNKNOWN
        }
        Ok(Explained::Unsatisfiable(d)) => {
            page("The goal is unsatisfiable: no configuration exists on the declared hosts.", false, &[d]);
            EXIT_NO
        }
    }
}

/// Explains the goal and prints the explanation; returns the exit code.
pub(super) fn explain_and_emit(
    program: &deladas::check::ir::Program,
    sources: &Sources,
    format: DiagFormat,
    budget: std::time::Duration,
) -> i32 {
    use deladas::report::{explain, Explained};
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    match explain(program, sources, &available, budget) {
        Err(d) => {
            let code = error_exit(&d);
            emit(&[d], sources, format);
            code
        }
        Ok(Explained::Satisfiable) => {
            match format {
                DiagFormat::Text => {
                    eprintln!("the goal is satisfiable: nothing to explain (`deladas solve` finds a configuration)")
                }
                DiagFormat::Json => super::print_out("[]\n"),
            }
            EXIT_OK
        }
        Ok(Explained::Unknown(reason)) => {
            let d = gave_up(&reason);
            emit(&[d], sources, format);
            EXIT_UNKNOWN
        }
        Ok(Explained::Unsatisfiable(d)) => {
            emit(&[d], sources, format);
            EXIT_NO
        }
    }
}

/// `solve`'s answer for a goal it proved unsatisfiable: the explanation, or,
/// when the limit ends the explanation before it has re-decided the goal,
/// the clauses of the solver's own refutation (`core`). Either way exit 1:
/// the unsatisfiability is proven, only the explanation is short.
pub(super) fn explain_proven_unsat(
    program: &deladas::check::ir::Program,
    sources: &Sources,
    budget: std::time::Duration,
    core: &[usize],
) -> i32 {
    use deladas::report::{explain, Explained};
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let reason = match explain(program, sources, &available, budget) {
        Ok(Explained::Unsatisfiable(d)) => {
            emit(&[d], sources, DiagFormat::Text);
            return EXIT_NO;
        }
        Ok(Explained::Unknown(reason)) => reason,
        Err(d) if d.code == deladas::diagnostics::Code::SolverGaveUp => d.message,
        // The goal cannot be grounded a second time: as `explain` says it.
        Err(d) => {
            let code = error_exit(&d);
            emit(&[d], sources, DiagFormat::Text);
            return code;
        }
        // The explanation found a configuration (checked by the evaluator)
        // where the solver had found none: a bug.
        Ok(Explained::Satisfiable) => {
            let d = Diagnostic::new(
                deladas::diagnostics::Code::Internal,
                "internal error: the solver refuted the goal, and its explanation found a configuration",
            )
            .note("this is a bug in deladas; please report it with the goal file");
            emit(&[d], sources, DiagFormat::Text);
            return 101;
        }
    };
    if deladas::budget::cancelled().is_some() {
        return EXIT_UNKNOWN;
    }
    let mut d = Diagnostic::new(deladas::diagnostics::Code::Unsatisfiable, "goal is unsatisfiable");
    let mut seen = std::collections::BTreeSet::new();
    for &c in core {
        let Some(clause) = program.clauses.get(c) else { continue };
        let loc = clause.origin.loc;
        if seen.insert((loc.file, loc.span.start, loc.span.end)) {
            d = d.primary(loc.file, loc.span, "this clause conflicts with the other labelled ones");
        }
    }
    let d = d
        .note(format!(
            "the solver refuted the goal, but its explanation stopped before it was done ({reason}): the labelled \
             clauses conflict, the set may not be minimal, and no repair was searched"
        ))
        .help("`deladas explain` with a longer `--timeout` shows a minimal conflict and repairs");
    emit(&[d], sources, DiagFormat::Text);
    EXIT_NO
}

/// The exit code of an explanation that failed: 3 when a limit stopped it.
fn error_exit(d: &Diagnostic) -> i32 {
    if d.code == deladas::diagnostics::Code::SolverGaveUp {
        EXIT_UNKNOWN
    } else {
        EXIT_BAD_INPUT
    }
}

/// The solver could not decide the goal within the explanation's budget.
fn gave_up(reason: &str) -> Diagnostic {
    Diagnostic::new(deladas::diagnostics::Code::SolverGaveUp, format!("could not decide the goal: {reason}"))
        .help("a longer `--timeout` may help")
}
