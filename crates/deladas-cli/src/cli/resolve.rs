//! `deladas resolve` (re-solve a running deployment after failures, print
//! the migration plan) and `deladas whatif` (which single or paired host
//! failures the goal survives).
//!
//! Output: the new DDD goes to `-o FILE`, or stdout; the plan goes to
//! stdout when the DDD went to a file, else to stderr, so that
//! `deladas resolve … > new.ddd.xml` keeps the DDD clean.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{emit, load_checked, load_deployment, solve_error_exit, write_out, DiagFormat, TermProgress};
use super::{EXIT_BAD_INPUT, EXIT_NO, EXIT_OK, EXIT_UNKNOWN};
use deladas::diagnostics::{Code, Diagnostic, Sources};
use deladas::request::{AddHost, Answer, Impossible, Prepared, Request};
use deladas::solve::output::GoalInfo;
use deladas::solve::resolve::{self, Running, Strategy, Survival};

/// How the migration plan is printed.
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub(super) enum PlanFormat {
    /// For people.
    Text,
    /// For tools (one JSON object).
    Json,
    /// A picture (SVG): the old and the new deployment side by side, the plan's changes marked.
    Svg,
}

/// How to re-solve (`--strategy`).
#[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
pub(super) enum StrategyArg {
    /// Keep the most bindings, then channels, then start the fewest instances (proven).
    Optimal,
    /// The paper's: pin every survivor, drop pins in deployment order until a solution exists.
    Progressive,
}

/// The arguments of `deladas resolve`.
pub(super) struct ResolveArgs<'a> {
    pub file: &'a Path,
    pub from: &'a Path,
    pub fail_hosts: &'a [String],
    pub fail_instances: &'a [String],
    pub add_hosts: &'a [String],
    pub output: Option<&'a Path>,
    pub plan_format: PlanFormat,
    pub strategy: StrategyArg,
    pub timeout: Option<f64>,
    pub to: Option<super::export::Target>,
    /// `--group-by`: group hosts by this attribute in the picture.
    pub group_by: Option<&'a str>,
}

/// A goal loaded with the request validated against it and the running
/// deployment.
struct Loaded {
    sources: Sources,
    prepared: Prepared,
    /// The goal's name and the SHA-256 of its text, for the new DDD.
    info: GoalInfo,
}

/// Loads the goal and the DDD and validates the request (the library's
/// [`Prepared::new`]); prints diagnostics, `Err(exit code)` on errors.
fn load(file: &Path, from: &Path, req: &[String], mut request: Request, format: DiagFormat) -> Result<Loaded, i32> {
    if deladas::check::load::read_input(file).is_ok() {
        // `--add-host` syntax first: its errors name the flag, not the goal.
        match AddHost::parse_all(req) {
            Ok(adds) => request.add_hosts = adds,
            Err(errors) => {
                emit(&errors, &Sources::default(), format);
                return Err(EXIT_BAD_INPUT);
            }
        }
    }
    let (mut sources, checked) = load_checked(file, format)?;
    let program = checked.program;
    let (old, _) = load_deployment(&program, &mut sources, from, format)?;
    let info = GoalInfo::of(file, sources.text(program.root_file));
    match Prepared::new(&program, &mut sources, &old, &request) {
        Ok(prepared) => Ok(Loaded { sources, prepared, info }),
        Err(errors) => {
            emit(&errors, &sources, format);
            Err(EXIT_BAD_INPUT)
        }
    }
}

pub(super) fn cmd_resolve(args: ResolveArgs) -> i32 {
    let format = DiagFormat::Text;
    let request = Request {
        fail_hosts: args.fail_hosts.to_vec(),
        fail_instances: args.fail_instances.to_vec(),
        add_hosts: vec![],
        strategy: match args.strategy {
            StrategyArg::Optimal => Strategy::Optimal,
            StrategyArg::Progressive => Strategy::Progressive,
        },
        timeout: args.timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64),
    };
    let l = match load(args.file, args.from, args.add_hosts, request, format) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut progress = TermProgress::new();
    deladas::solve::Progress::phase(&mut progress, "re-solving", &format!("{} hosts", l.prepared.scenario.hosts.len()));
    let started = std::time::Instant::now();
    // As `solve`: a stopped run ends the command, and a solver slow to
    // notice its interrupt does not hold the exit up.
    deladas::budget::set_exit_after_stop(true);
    deladas::budget::on_overrun(super::solve_overran);
    let result = l.prepared.resolve(&l.info);
    progress.finish();
    let resolution = match result {
        Err(diags) => {
            emit(&diags, &l.sources, format);
            // A configuration the evaluator rejected is a bug (101).
            return if diags.iter().any(|d| d.code == Code::Internal) {
                101
            } else if diags.iter().any(|d| d.code == Code::SolverGaveUp) {
                EXIT_UNKNOWN
            } else {
                EXIT_BAD_INPUT
            };
        }
        Ok(Answer::Unknown(d)) => {
            emit(&[d], &l.sources, format);
            return EXIT_UNKNOWN;
        }
        Ok(Answer::Impossible(why)) => return impossible(&l, &why, started),
        Ok(Answer::Resolved(r)) => r,
    };
    let text = resolution.deployment.to_xml();
    if let (Some(_), Some(dir)) = (args.to, args.output) {
        let plan = match args.plan_format {
            PlanFormat::Text => Err(resolution.plan.to_text()),
            PlanFormat::Json => Ok(resolution.plan.to_json()),
            PlanFormat::Svg => {
                eprintln!("error: `--plan-format svg` cannot be combined with `--to`");
                return EXIT_BAD_INPUT;
            }
        };
        return super::export::resolve_to_kubernetes(
            &l.prepared.old,
            resolution.deployment.deployment(),
            &text,
            dir,
            plan,
        );
    }
    if let Err(code) = write_out(args.output, &text) {
        return code;
    }
    let rendered = match args.plan_format {
        PlanFormat::Text => resolution.plan.to_text(),
        PlanFormat::Json => format!("{:#}\n", resolution.plan.to_json()),
        PlanFormat::Svg => deladas::picture::plan_svg(
            &l.prepared.old,
            resolution.deployment.deployment(),
            &resolution.plan,
            &deladas::picture::Options { group_by: args.group_by.map(str::to_string) },
        ),
    };
    if args.output.is_some() {
        super::print_out(&rendered);
    } else {
        eprint!("{rendered}");
    }
    EXIT_OK
}

/// No configuration exists on what is left: the explanation, naming the failure.
fn impossible(l: &Loaded, why: &Impossible, started: std::time::Instant) -> i32 {
    // The explanation shares the run's time limit.
    let budget = match l.prepared.timeout {
        Some(t) => t.saturating_sub(started.elapsed()).max(Duration::from_millis(1)),
        None => Duration::from_secs(20),
    };
    match l.prepared.explain_impossible(&l.sources, why, budget) {
        Ok(d) => {
            emit(&[d], &l.sources, DiagFormat::Text);
            EXIT_NO
        }
        Err(d) => {
            let code = if d.code == Code::SolverGaveUp { EXIT_UNKNOWN } else { EXIT_BAD_INPUT };
            emit(&[d], &l.sources, DiagFormat::Text);
            code
        }
    }
}

/// `deladas whatif`.
pub(super) fn cmd_whatif(file: &Path, from: &Path, pairs: bool, format: DiagFormat, timeout: Option<f64>) -> i32 {
    let l = match load(file, from, &[], Request::default(), format) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let program = &l.prepared.program;
    let hosts = l.prepared.scenario.hosts.clone();
    let mut cases: Vec<Vec<usize>> = hosts.iter().map(|&h| vec![h]).collect();
    if pairs {
        for (i, &a) in hosts.iter().enumerate() {
            for &b in &hosts[i + 1..] {
                cases.push(vec![a, b]);
            }
        }
    }
    let run = Running::from_world(&l.prepared.world);
    let per_case = timeout.filter(|t| t.is_finite() && *t > 0.0).map(Duration::from_secs_f64);
    let mut progress = TermProgress::new();
    deladas::solve::Progress::phase(&mut progress, "what if", &format!("{} failure cases", cases.len()));
    let result = resolve::whatif(program, &run, &hosts, &cases, per_case);
    progress.finish();
    let answers = match result {
        Ok(a) => a,
        Err(e) => {
            emit(&[e.to_diagnostic(program.root_file)], &l.sources, format);
            return solve_error_exit(&e);
        }
    };
    let names = |c: &[usize]| c.iter().map(|&h| program.hosts[h].name.clone()).collect::<Vec<_>>();
    let name = |c: &[usize]| names(c).join(" + ");
    let mut diags = vec![];
    let mut rows = vec![];
    let mut unknown = false;
    for (case, ans) in cases.iter().zip(&answers) {
        match ans {
            Survival::Survives { kept, surviving } => rows.push(json!({
                "fail": names(case),
                "survives": true, "bindings_kept": kept.value, "bindings_surviving": surviving,
                "optimal": kept.optimal(),
            })),
            Survival::Unknown(r) => {
                unknown = true;
                rows.push(json!({"fail": names(case),
                    "survives": null, "reason": r}));
            }
            Survival::Fatal => {
                rows.push(json!({"fail": names(case),
                    "survives": false}));
                // Explain single points of failure (pairs only when no single host is fatal).
                if case.len() == 1 || !answers.iter().take(hosts.len()).any(|a| *a == Survival::Fatal) {
                    let up: Vec<usize> = hosts.iter().copied().filter(|h| !case.contains(h)).collect();
                    let d = match deladas::report::explain(program, &l.sources, &up, Duration::from_secs(8)) {
                        Ok(deladas::report::Explained::Unsatisfiable(d)) => d,
                        _ => Diagnostic::new(Code::Unsatisfiable, "goal is unsatisfiable"),
                    };
                    let what = if case.len() == 1 { "single point of failure" } else { "fatal pair" };
                    let verb = if case.len() == 1 { "fails" } else { "fail" };
                    diags.push(d.note(format!("{what}: the goal cannot be met if {} {verb}", name(case))));
                }
            }
        }
    }
    match format {
        DiagFormat::Json => {
            let report = json!({"format": 1, "cases": rows, "diagnostics": serde_json::from_str::<serde_json::Value>(&deladas::diagnostics::render::to_json(&diags, &l.sources)).unwrap_or(serde_json::Value::Null)});
            super::print_out(&format!("{report:#}\n"));
        }
        DiagFormat::Text => {
            let mut out = String::from("what if a host fails:\n");
            for (case, ans) in cases.iter().zip(&answers) {
                let line = match ans {
                    Survival::Survives { kept, surviving } => format!(
                        "  {:<20} survives; the best repair keeps {} of {} bindings{}",
                        name(case),
                        kept.value,
                        surviving,
                        if kept.optimal() { "" } else { " (not proven best: out of time)" }
                    ),
                    Survival::Fatal => format!(
                        "  {:<20} FATAL: no configuration without {}",
                        name(case),
                        if case.len() == 1 { "it" } else { "them" }
                    ),
                    Survival::Unknown(r) => format!("  {:<20} unknown ({r})", name(case)),
                };
                out.push_str(&line);
                out.push('\n');
            }
            let fatal = answers.iter().filter(|a| **a == Survival::Fatal).count();
            out.push_str(&format!(
                "{} case{}, {} fatal\n",
                cases.len(),
                if cases.len() == 1 { "" } else { "s" },
                fatal
            ));
            super::print_out(&out);
            emit(&diags, &l.sources, format);
        }
    }
    if answers.contains(&Survival::Fatal) {
        EXIT_NO
    } else if unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}
