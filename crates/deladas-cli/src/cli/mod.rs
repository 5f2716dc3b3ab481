//! The `deladas` command line: argument parsing, exit codes, output.
//!
//! Exit codes (cli.md): 0 success, 1 a definite "no", 2 bad input or usage,
//! 3 the solver gave up. Diagnostics go to stderr (coloured on a terminal),
//! or to stdout as a JSON array with `--format json`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use deladas::check;

mod autonomic;
pub(crate) mod explain;
mod lsp;
mod resolve;
mod roles;
mod simulate;
use deladas::diagnostics::{render, Diagnostic, Sources};
use explain::{cmd_explain, explain_and_emit};

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
pub(super) enum DiagFormat {
    /// rustc-style text on stderr.
    Text,
    /// A JSON array on stdout.
    Json,
}

/// How a configuration is written.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum OutFormat {
    /// The XML Deployment Description Document (ddd.md).
    Xml,
    /// The same content as JSON.
    Json,
    /// A Graphviz rendering: hosts as clusters, instances as nodes.
    Dot,
}

impl OutFormat {
    fn extension(self) -> &'static str {
        match self {
            OutFormat::Xml => "ddd.xml",
            OutFormat::Json => "ddd.json",
            OutFormat::Dot => "dot",
        }
    }
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
    /// Evaluate the goal on a deployment, independently of the solver.
    Verify {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// The deployment (a DDD, `.ddd.xml`).
        ddd: PathBuf,
        /// Print diagnostics as text (stderr) or a JSON array (stdout).
        #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
        format: DiagFormat,
    },
    /// For an unsatisfiable goal, show a minimal set of conflicting clauses and resources.
    Explain {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// Print diagnostics as text (stderr) or a JSON array (stdout).
        #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
        format: DiagFormat,
        /// Time for minimising the conflict and searching repairs, in seconds.
        #[arg(long, default_value_t = 20.0)]
        timeout: f64,
    },
    /// Re-solve after failures or new hosts, keeping as much of the running deployment as possible.
    Resolve {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// The running deployment (a DDD).
        #[arg(long)]
        from: PathBuf,
        /// A host that failed (repeatable).
        #[arg(long = "fail-host", value_name = "HOST")]
        fail_host: Vec<String>,
        /// An instance that failed on a live host (repeatable); restarted in place when the goal allows.
        #[arg(long = "fail-instance", value_name = "ID")]
        fail_instance: Vec<String>,
        /// A new host, `'NAME = host(attr = value, …)'`, or the name of a declared host back in service (repeatable).
        #[arg(long = "add-host", value_name = "DECL")]
        add_host: Vec<String>,
        /// Write the new DDD here (the plan then goes to stdout); default: DDD on stdout, plan on stderr.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How to print the migration plan.
        #[arg(long, value_enum, default_value_t = resolve::PlanFormat::Text)]
        plan_format: resolve::PlanFormat,
        /// `optimal` (default) or the paper's `progressive` pin dropping, for comparison.
        #[arg(long, value_enum, default_value_t = resolve::StrategyArg::Optimal)]
        strategy: resolve::StrategyArg,
        /// Give up after this many seconds (exit 3; a configuration found by then is reported as not proven optimal).
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// For every host (or pair), would the goal survive its failure, and what would the best repair keep.
    Whatif {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// The running deployment (a DDD).
        #[arg(long)]
        from: PathBuf,
        /// Also every pair of hosts failing together.
        #[arg(long)]
        pairs: bool,
        /// Print the report and diagnostics as text, or as one JSON object on stdout.
        #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
        format: DiagFormat,
        /// Time per failure case, in seconds.
        #[arg(long)]
        timeout: Option<f64>,
    },
    /// Print a generated benchmark goal (the peers' P2P problem for N hosts).
    #[command(hide = true)]
    BenchGoal {
        /// Number of hosts.
        n: usize,
        /// The unsatisfiable variant (at most 1 client per router, ⌈3N/4⌉ clients).
        #[arg(long)]
        unsat: bool,
        /// Print the peers' canonical resolve starting point (a DDD) instead.
        #[arg(long)]
        canonical_ddd: bool,
    },
    /// Find a configuration and write its DDD.
    Solve {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// Write the DDD here instead of stdout (with `--count`, a stem: OUT.1.ddd.xml, …).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Return up to N configurations that differ in placement or wiring.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        count: u32,
        /// Any satisfying configuration, without removing superfluous instances and channels.
        #[arg(long)]
        any: bool,
        /// Give up after this many seconds (exit 3).
        #[arg(long)]
        timeout: Option<f64>,
        /// How to write the configuration.
        #[arg(long, value_enum, default_value_t = OutFormat::Xml)]
        format: OutFormat,
    },
    /// MDCD cluster and role assignment for the goal's `upgrade` declarations.
    Roles {
        /// The goal file (`.deladas`), with `upgrade` declarations.
        file: PathBuf,
        /// The deployment (a DDD, `.ddd.xml`).
        #[arg(long)]
        deployment: PathBuf,
        /// Write the role document here instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How to write the role document (with `json`, diagnostics are a JSON array on stdout).
        #[arg(long, value_enum, default_value_t = roles::RoleFormat::Xml)]
        format: roles::RoleFormat,
    },
    /// Run the language server (LSP over stdin and stdout), for editors.
    Lsp,
    /// Run a guarded upgrade (MDCD protocol) in the deterministic simulator and check it.
    Simulate(simulate::SimulateArgs),
    /// The autonomic manager (MADME): HTTP API, reconcile loop, durable store (docs/manager.md).
    Manage(autonomic::ManageCli),
    /// The per-host agent (AMP): runs the instances the manager assigns to its host.
    Agent(autonomic::AgentCli),
    /// The manager's view: generation, plan, hosts and their instances.
    Status(autonomic::StatusCli),
    /// The manager's events (`--follow`: keep streaming).
    Events(autonomic::EventsCli),
    /// Ask the manager for the migration plan to a DDD (dry run).
    Plan(autonomic::PlanCli),
    /// Have the manager enact a DDD (planned against the current generation).
    Enact(autonomic::EnactCli),
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
        Command::Verify { file, ddd, format } => cmd_verify(&file, &ddd, format),
        Command::Explain { file, format, timeout } => cmd_explain(&file, format, timeout),
        Command::Resolve { file, from, fail_host, fail_instance, add_host, output, plan_format, strategy, timeout } => {
            resolve::cmd_resolve(resolve::ResolveArgs {
                file: &file,
                from: &from,
                fail_hosts: &fail_host,
                fail_instances: &fail_instance,
                add_hosts: &add_host,
                output: output.as_deref(),
                plan_format,
                strategy,
                timeout,
            })
        }
        Command::Whatif { file, from, pairs, format, timeout } => {
            resolve::cmd_whatif(&file, &from, pairs, format, timeout)
        }
        Command::BenchGoal { n, canonical_ddd: true, .. } => match deladas::bench_goals::p2p_canonical_ddd(n) {
            Ok(x) => {
                print_out(&x);
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                EXIT_BAD_INPUT
            }
        },
        Command::BenchGoal { n, unsat, .. } => {
            let v = if unsat { deladas::bench_goals::Variant::Unsat } else { deladas::bench_goals::Variant::Satisfy };
            print_out(&deladas::bench_goals::p2p(n, v));
            EXIT_OK
        }
        Command::Solve { file, output, count, any, timeout, format } => {
            cmd_solve(&file, output.as_deref(), count as usize, any, timeout, format)
        }
        Command::Roles { file, deployment, output, format } => {
            roles::cmd_roles(&file, &deployment, output.as_deref(), format)
        }
        Command::Lsp => lsp::cmd_lsp(),
        Command::Simulate(args) => simulate::cmd_simulate(&args),
        Command::Manage(a) => a.run(),
        Command::Agent(a) => a.run(),
        Command::Status(a) => a.run(),
        Command::Events(a) => a.run(),
        Command::Plan(a) => a.run(),
        Command::Enact(a) => a.run(),
    }
}

pub(super) fn emit(diags: &[Diagnostic], sources: &Sources, format: DiagFormat) {
    match format {
        DiagFormat::Text => render::to_stderr(diags, sources),
        DiagFormat::Json => print_out(&format!("{}\n", render::to_json(diags, sources))),
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

/// Progress on a terminal: a spinner with the phase and elapsed time, shown
/// only for phases that last over half a second, and nothing when stderr is
/// not a terminal.
pub(super) struct TermProgress {
    bar: Option<indicatif::ProgressBar>,
    enabled: bool,
}

impl TermProgress {
    pub(super) fn new() -> Self {
        use std::io::IsTerminal;
        TermProgress { bar: None, enabled: std::io::stderr().is_terminal() }
    }
    pub(super) fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

impl deladas::solve::Progress for TermProgress {
    fn phase(&mut self, name: &str, detail: &str) {
        self.finish();
        if !self.enabled {
            return;
        }
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::hidden());
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        let msg = if detail.is_empty() { name.to_string() } else { format!("{name}: {detail}") };
        bar.set_message(msg);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let shown = bar.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
        });
        self.bar = Some(bar);
    }
}

/// Loads and checks a goal; prints diagnostics. `Err(exit code)` on errors.
pub(super) fn load_checked(file: &std::path::Path, format: DiagFormat) -> Result<(Sources, check::Checked), i32> {
    let (sources, checked) = check::check_path(file);
    if checked.has_errors() {
        emit(&checked.diags, &sources, format);
        return Err(EXIT_BAD_INPUT);
    }
    if !checked.diags.is_empty() && format == DiagFormat::Text {
        emit(&checked.diags, &sources, format);
    }
    Ok((sources, checked))
}

pub(super) fn render_deployment(d: &deladas::ddd::Deployment, format: OutFormat) -> String {
    match format {
        OutFormat::Xml => deladas::ddd::to_xml(d),
        OutFormat::Json => deladas::ddd::to_json(d),
        OutFormat::Dot => deladas::ddd::to_dot(d),
    }
}

/// Writes to stdout; a reader that went away (`deladas … | head`) is not an
/// error worth a panic: the rest of the output is dropped.
pub(super) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

pub(super) fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<(), i32> {
    match path {
        None => {
            print_out(text);
            if !text.ends_with('\n') {
                print_out("\n");
            }
            Ok(())
        }
        Some(p) => std::fs::write(p, text).map_err(|e| {
            eprintln!("error: cannot write `{}`: {e}", p.display());
            EXIT_BAD_INPUT
        }),
    }
}

fn cmd_solve(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    count: usize,
    any: bool,
    timeout: Option<f64>,
    format: OutFormat,
) -> i32 {
    let (sources, checked) = match load_checked(file, DiagFormat::Text) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let opts = deladas::solve::Options {
        timeout: timeout.filter(|t| t.is_finite() && *t > 0.0).map(std::time::Duration::from_secs_f64),
        parsimony: !any,
        count,
        ..Default::default()
    };
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let mut progress = TermProgress::new();
    let result = deladas::solve::solve(program, &available, &opts, &mut progress);
    progress.finish();
    let (outcome, _stats) = match result {
        Ok(x) => x,
        Err(e) => {
            emit(&[e.to_diagnostic(program.root_file)], &sources, DiagFormat::Text);
            return EXIT_BAD_INPUT;
        }
    };
    match outcome {
        deladas::solve::Outcome::Sat { deployments: solutions, .. } => {
            let info = deladas::solve::output::GoalInfo::of(file, sources.text(program.root_file));
            let many = solutions.len() > 1 || count > 1;
            for (i, d) in solutions.iter().enumerate() {
                let d = d.clone().with_goal(&info);
                let text = render_deployment(&d, format);
                let path = output.map(|o| {
                    if many {
                        std::path::PathBuf::from(format!("{}.{}.{}", o.display(), i + 1, format.extension()))
                    } else {
                        o.to_path_buf()
                    }
                });
                if let Err(code) = write_out(path.as_deref(), &text) {
                    return code;
                }
            }
            if solutions.len() < count {
                eprintln!("note: found {} of the {count} configurations asked for; there are no more", solutions.len());
            }
            EXIT_OK
        }
        deladas::solve::Outcome::Unsat { .. } => {
            let budget =
                std::time::Duration::from_secs_f64(timeout.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(20.0));
            explain_and_emit(program, &sources, DiagFormat::Text, budget)
        }
        deladas::solve::Outcome::Rejected(diags) => {
            emit(&diags, &sources, DiagFormat::Text);
            101
        }
        deladas::solve::Outcome::Internal(m) => {
            let d = Diagnostic::new(deladas::diagnostics::Code::Internal, format!("internal error: {m}"))
                .note("this is a bug in deladas; please report it with the goal file");
            emit(&[d], &sources, DiagFormat::Text);
            101
        }
        deladas::solve::Outcome::Unknown(reason) => {
            let d = Diagnostic::new(deladas::diagnostics::Code::SolverGaveUp, format!("the solver gave up: {reason}"))
                .help("a longer `--timeout` may help");
            emit(&[d], &sources, DiagFormat::Text);
            EXIT_UNKNOWN
        }
    }
}

fn cmd_verify(file: &std::path::Path, ddd_path: &std::path::Path, format: DiagFormat) -> i32 {
    let (mut sources, checked) = match load_checked(file, format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let world = match load_deployment(program, &mut sources, ddd_path, format) {
        Ok((_, w)) => w,
        Err(code) => return code,
    };
    let violations = deladas::eval::all_violations(program, &world);
    let diags: Vec<Diagnostic> = violations.iter().map(|v| v.to_diagnostic()).collect();
    emit(&diags, &sources, format);
    if diags.is_empty() {
        if format == DiagFormat::Text {
            eprintln!(
                "ok: `{}` satisfies `{}` ({} instances, {} channels)",
                ddd_path.display(),
                file.display(),
                world.instances.len(),
                world.channels.len()
            );
        }
        EXIT_OK
    } else {
        EXIT_NO
    }
}

/// Reads the DDD at `ddd_path` and binds it to a checked goal. An unreadable
/// file (E0009), a malformed DDD (E0704, pointing into it) or one that does
/// not match the goal (E0703) is reported here; `Err(exit code)` then.
pub(super) fn load_deployment(
    program: &deladas::check::ir::Program,
    sources: &mut Sources,
    ddd_path: &std::path::Path,
    format: DiagFormat,
) -> Result<(deladas::ddd::Deployment, deladas::eval::World), i32> {
    use deladas::diagnostics::Code;
    let text = match std::fs::read(ddd_path) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => {
                let d = Diagnostic::new(Code::MalformedDdd, format!("`{}` is not UTF-8 text", ddd_path.display()));
                emit(&[d], sources, format);
                return Err(EXIT_BAD_INPUT);
            }
        },
        Err(e) => {
            let d = Diagnostic::new(Code::Unreadable, format!("cannot read `{}`: {e}", ddd_path.display()));
            emit(&[d], sources, format);
            return Err(EXIT_BAD_INPUT);
        }
    };
    let ddd_file = sources.add(ddd_path.display().to_string(), text.clone());
    let deployment = match deladas::ddd::from_xml(&text) {
        Ok(d) => d,
        Err(errs) => {
            let diags: Vec<Diagnostic> = errs
                .iter()
                .map(|e| {
                    Diagnostic::new(Code::MalformedDdd, e.message.clone()).primary(
                        ddd_file,
                        deladas::syntax::ast::Span::new(e.span.start, e.span.end),
                        "here",
                    )
                })
                .collect();
            emit(&diags, sources, format);
            return Err(EXIT_BAD_INPUT);
        }
    };
    match deladas::eval::bind(program, &deployment) {
        Ok(w) => Ok((deployment, w)),
        Err(errs) => {
            let diags: Vec<Diagnostic> = errs
                .into_iter()
                .map(|m| {
                    Diagnostic::new(Code::DddMismatch, m).note(format!(
                        "`{}` was not written for this goal, or the goal changed since",
                        ddd_path.display()
                    ))
                })
                .collect();
            emit(&diags, sources, format);
            Err(EXIT_BAD_INPUT)
        }
    }
}
