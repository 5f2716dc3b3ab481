//! `deladas simulate FILE --deployment DDD --roles ROLES [--seed S]
//! [--steps N] [--fault-at STEP] [--at-coverage P] [--trace OUT.jsonl]
//! [--reference] [--report text|json] [--app COMPONENT=APP]… [--max-delay D]`: runs a guarded
//! upgrade in the deterministic simulator (`deladas::mdcd::sim`, mdcd.md §3)
//! and checks it against the old system alone.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{emit, load_checked, load_deployment, DiagFormat, EXIT_BAD_INPUT, EXIT_NO, EXIT_OK};
use deladas::diagnostics::{Code, Diagnostic};
use deladas::mdcd::sim::{self, AppKind, Report, Scenario};
use deladas::mdcd::RoleDocument;

/// How the report is printed.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum ReportFormat {
    /// A table per role and the checks.
    Text,
    /// One JSON object (diagnostics are then a JSON array on stdout).
    Json,
}

/// Arguments of `deladas simulate`.
#[derive(Args, Debug)]
pub(super) struct SimulateArgs {
    /// The goal file (`.deladas`), with `upgrade` declarations.
    file: PathBuf,
    /// The deployment (a DDD, `.ddd.xml`).
    #[arg(long)]
    deployment: PathBuf,
    /// The role document from `deladas roles` (XML or JSON).
    #[arg(long)]
    roles: PathBuf,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Ticks each application acts on (its workload).
    #[arg(long, default_value_t = 20)]
    steps: u64,
    /// From this step on, the new versions corrupt what they send.
    #[arg(long = "fault-at")]
    fault_at: Option<u64>,
    /// Probability that the AT detects an erroneous external message.
    #[arg(long = "at-coverage", default_value_t = 1.0)]
    at_coverage: f64,
    /// Largest message delay in steps (each message takes 1 to D steps).
    #[arg(long = "max-delay", default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..))]
    max_delay: u64,
    /// Write the trace here, one JSON object per line.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Run the old system alone (no upgrade, no protocol) instead.
    #[arg(long)]
    reference: bool,
    /// How to print the report.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// The application a component runs: COMPONENT=counter|client|router
    /// (default counter).
    #[arg(long = "app", value_name = "COMPONENT=APP")]
    apps: Vec<String>,
}

/// Exit 0 when every required check holds, 1 when one fails, 2 for bad input.
pub(super) fn cmd_simulate(a: &SimulateArgs) -> i32 {
    let diag_format = match a.report {
        ReportFormat::Text => DiagFormat::Text,
        ReportFormat::Json => DiagFormat::Json,
    };
    let (mut sources, checked) = match load_checked(&a.file, diag_format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let (ddd, world) = match load_deployment(program, &mut sources, &a.deployment, diag_format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let _ = world;
    let mut bad = Vec::new();
    if !(0.0..=1.0).contains(&a.at_coverage) {
        bad.push(Diagnostic::new(
            Code::BadSimulateOption,
            format!("--at-coverage {} is not between 0 and 1", a.at_coverage),
        ));
    }
    let mut apps = BTreeMap::new();
    for spec in &a.apps {
        let parsed = spec.split_once('=').and_then(|(c, k)| Some((c, AppKind::parse(k)?)));
        match parsed {
            Some((c, k)) if ddd.component(c).is_some() => {
                apps.insert(c.to_string(), k);
            }
            Some((c, _)) => bad.push(
                Diagnostic::new(
                    Code::BadSimulateOption,
                    format!("--app {spec}: the deployment has no component `{c}`"),
                )
                .help("name a component of the deployment"),
            ),
            None => bad.push(
                Diagnostic::new(Code::BadSimulateOption, format!("--app {spec}: expected COMPONENT=APP"))
                    .help("APP is one of `counter`, `client`, `router`"),
            ),
        }
    }
    if !bad.is_empty() {
        emit(&bad, &sources, diag_format);
        return EXIT_BAD_INPUT;
    }
    let roles = match read_roles(&a.roles, &mut sources, diag_format) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let sc = Scenario {
        seed: a.seed,
        ticks: a.steps,
        fault_at: a.fault_at,
        at_coverage: a.at_coverage,
        apps,
        ..Scenario::default()
    };
    let reference = match sim::simulate(&ddd, &roles, &sc, true) {
        Ok(r) => r,
        Err(errs) => {
            let diags: Vec<Diagnostic> = errs
                .into_iter()
                .map(|m| {
                    Diagnostic::new(Code::RoleDocumentMismatch, m).note(format!(
                        "`{}` was not computed for `{}`; run `deladas roles` again",
                        a.roles.display(),
                        a.deployment.display()
                    ))
                })
                .collect();
            emit(&diags, &sources, diag_format);
            return EXIT_BAD_INPUT;
        }
    };
    let run = if a.reference {
        reference.clone()
    } else {
        match sim::simulate(&ddd, &roles, &sc, false) {
            Ok(r) => r,
            Err(errs) => {
                let diags: Vec<Diagnostic> =
                    errs.into_iter().map(|m| Diagnostic::new(Code::RoleDocumentMismatch, m)).collect();
                emit(&diags, &sources, diag_format);
                return EXIT_BAD_INPUT;
            }
        }
    };
    if let Some(path) = &a.trace {
        let mut text = String::new();
        for ev in &run.trace {
            let _ = writeln!(text, "{ev}");
        }
        if let Err(code) = super::write_out(Some(path), &text) {
            return code;
        }
    }
    let report = sim::compare(&run, &reference, &sc);
    match a.report {
        ReportFormat::Json => {
            super::print_out(&format!("{}\n", serde_json::to_string_pretty(&report).unwrap_or_default()))
        }
        ReportFormat::Text => super::print_out(&text_report(&report)),
    }
    if report.ok {
        EXIT_OK
    } else {
        EXIT_NO
    }
}

/// Reads a role document, XML or JSON (by its first character); a malformed
/// one is E0620 with every problem, pointing into the file where it can.
fn read_roles(
    path: &Path,
    sources: &mut deladas::diagnostics::Sources,
    format: DiagFormat,
) -> Result<RoleDocument, i32> {
    let text = match deladas::check::load::read_input(path).map(String::from_utf8) {
        Ok(Ok(t)) => t,
        Ok(Err(_)) => {
            let d = Diagnostic::new(
                Code::Unreadable,
                format!("cannot read `{}`: stream did not contain valid UTF-8", path.display()),
            );
            emit(&[d], sources, format);
            return Err(EXIT_BAD_INPUT);
        }
        Err(e) => {
            let d = Diagnostic::new(e.code(), format!("cannot read `{}`: {e}", path.display()));
            emit(&[d], sources, format);
            return Err(EXIT_BAD_INPUT);
        }
    };
    let file = sources.add(path.display().to_string(), text.clone());
    let parsed =
        if text.trim_start().starts_with('{') { RoleDocument::from_json(&text) } else { RoleDocument::from_xml(&text) };
    parsed.map_err(|errs| {
        let diags: Vec<Diagnostic> = errs
            .iter()
            .map(|e| {
                let d = Diagnostic::new(Code::MalformedRoleDocument, format!("`{}`: {}", path.display(), e.message));
                match &e.span {
                    Some(s) => d.primary(file, deladas::syntax::ast::Span::new(s.start, s.end), "here"),
                    None => d,
                }
                .help("write it with `deladas roles FILE --deployment DDD`")
            })
            .collect();
        emit(&diags, sources, format);
        EXIT_BAD_INPUT
    })
}

fn text_report(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "simulate: seed {}, {} ticks, fault {}, AT coverage {}{}",
        r.seed,
        r.steps,
        r.fault_at.map_or("none".to_string(), |f| format!("at step {f}")),
        r.at_coverage,
        if r.reference { " (reference: the old system alone)" } else { "" }
    );
    let _ = writeln!(
        s,
        "{} external messages ({} in the reference), {} recover{}, last step {}",
        r.external_messages,
        r.reference_external_messages,
        r.recoveries,
        if r.recoveries == 1 { "y" } else { "ies" },
        r.end_step
    );
    let _ = writeln!(
        s,
        "{:<7} {:>5} {:>8} {:>8} {:>8} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "role",
        "procs",
        "received",
        "sent",
        "external",
        "suppressed",
        "ckpts",
        "logged",
        "rollbacks",
        "max ckpt",
        "max log"
    );
    for (name, f) in &r.roles {
        let _ = writeln!(
            s,
            "{:<7} {:>5} {:>8} {:>8} {:>8} {:>10} {:>7} {:>10} {:>9} {:>9} {:>9}",
            name,
            f.processes,
            f.stats.receipts,
            f.stats.internal_sent,
            f.stats.external_sent,
            f.stats.suppressed,
            f.stats.checkpoints,
            f.stats.logged + f.stats.sender_logged,
            f.stats.rollbacks,
            f.stats.max_checkpoints_held,
            f.stats.max_log_held
        );
        if !f.stats.rollback_distances.is_empty() {
            let _ = writeln!(s, "        rollback distances: {:?}", f.stats.rollback_distances);
        }
    }
    let o = &r.overhead;
    let _ = writeln!(
        s,
        "overhead: {:.1} checkpoints and {:.1} log entries per 1000 messages received ({} messages), against 1000 checkpoints when checkpointing on every receipt",
        o.checkpoints_per_1000, o.log_entries_per_1000, o.messages
    );
    let c = &r.checks;
    let mark = |b: bool| if b { "ok" } else { "FAILED" };
    let _ = writeln!(
        s,
        "checks: external = reference: {}{}; no cascading rollback: {}; reclaimed after passed AT: {}; fault-free without rollback: {}; completed: {}",
        if c.external_equal { "ok" } else if c.external_equal_required { "FAILED" } else { "differs (coverage < 1)" },
        r.first_difference.as_ref().map_or(String::new(), |d| format!(" ({d})")),
        mark(c.no_cascading_rollback),
        mark(c.reclaimed),
        mark(c.fault_free_no_rollback),
        mark(c.completed)
    );
    let _ = writeln!(s, "{}", if r.ok { "all checks hold" } else { "a check failed" });
    s
}
