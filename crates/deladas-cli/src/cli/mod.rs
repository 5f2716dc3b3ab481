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
mod export;
mod fmt;
mod lsp;
mod optimum;
mod resolve;
mod roles;
mod simulate;
use deladas::diagnostics::{render, Diagnostic, Sources};
use explain::cmd_explain;

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
    /// Memory the run may use, e.g. `2G`, `512M` (K, M, G, T: binary units; a bare number is bytes). Default: 4G, or half the machine's memory when that is less.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size)]
    max_memory: Option<u64>,
}

/// A memory size: a number with an optional K, M, G or T suffix (binary units, `iB` optional).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown unit `{c}` (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("`{s}` is not a size such as 2G or 512M"))?;
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < (16u64 << 20) as f64 || bytes > (1u64 << 50) as f64 {
        return Err(format!("`{s}` is out of range (at least 16M)"));
    }
    Ok(bytes as u64)
}

/// Ctrl-C and SIGTERM cancel the run: the solver is interrupted, nothing
/// more is written, and the command exits 130 (SIGINT) or 143 (SIGTERM).
/// If the run has not wound down within 0.8 s, the process exits anyway.
fn handle_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else { return };
    let _ = std::thread::Builder::new().name("deladas-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            deladas::budget::cancel(sig);
            std::thread::sleep(std::time::Duration::from_millis(800));
            std::process::exit(128 + sig);
        }
    });
}

/// Runs the command line; returns the process exit code (128 + the signal
/// when the run was cancelled by one).
pub fn main() -> i32 {
    handle_signals();
    // A panic inside the solver that a reached memory limit explains is
    // reported as that limit (E0802, exit 3) by the solve stage: not also as
    // a panic on stderr. Every other panic prints as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !deladas::budget::panic_explained_by_limit() {
            default_hook(info);
        }
    }));
    let code = checked_exit(run());
    match deladas::budget::cancelled() {
        Some(sig) if sig > 0 => 128 + sig,
        _ => code,
    }
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
    /// A picture (SVG): hosts as boxes holding their instances, channels as edges labelled with ports.
    Svg,
}

/// How `verify` reports.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum VerifyFormat {
    /// rustc-style text on stderr.
    Text,
    /// A JSON array on stdout.
    Json,
    /// A picture (SVG) on stdout with the violations marked; diagnostics as text on stderr.
    Svg,
}

/// How `explain` reports.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum ExplainFormat {
    /// rustc-style text on stderr.
    Text,
    /// A JSON array on stdout.
    Json,
    /// A self-contained HTML page on stdout: the goal with the conflicting clauses highlighted.
    Html,
}

impl OutFormat {
    fn extension(self) -> &'static str {
        match self {
            OutFormat::Xml => "ddd.xml",
            OutFormat::Json => "ddd.json",
            OutFormat::Dot => "dot",
            OutFormat::Svg => "svg",
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
    /// Format goal files in place (`--check`: exit 1 when a file would change).
    Fmt {
        /// The goal files (`.deladas`).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Change nothing; name the files that would change and exit 1 if any would.
        #[arg(long)]
        check: bool,
    },
    /// Evaluate the goal on a deployment, independently of the solver.
    Verify {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// The deployment (a DDD, `.ddd.xml`).
        ddd: PathBuf,
        /// Print diagnostics as text (stderr) or a JSON array (stdout), or a picture (SVG) on stdout.
        #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
        format: VerifyFormat,
        /// With `--format svg`: group hosts by this host attribute (e.g. `zone`).
        #[arg(long, value_name = "ATTR")]
        group_by: Option<String>,
    },
    /// For an unsatisfiable goal, show a minimal set of conflicting clauses and resources.
    Explain {
        /// The goal file (`.deladas`).
        file: PathBuf,
        /// Print diagnostics as text (stderr) or a JSON array (stdout), or an HTML page (stdout).
        #[arg(long, value_enum, default_value_t = ExplainFormat::Text)]
        format: ExplainFormat,
        /// Time for minimising the conflict and searching repairs, in seconds.
        #[arg(long, default_value_t = 20.0, value_parser = parse_timeout)]
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
        /// How to print the migration plan (`--format` is the same option: the
        /// output formats of the other commands, e.g. `--format svg`, work here too).
        #[arg(long, alias = "format", value_enum, default_value_t = resolve::PlanFormat::Text)]
        plan_format: resolve::PlanFormat,
        /// `optimal` (default) or the paper's `progressive` pin dropping, for comparison.
        #[arg(long, value_enum, default_value_t = resolve::StrategyArg::Optimal)]
        strategy: resolve::StrategyArg,
        /// Give up after this many seconds (exit 3; a configuration found by then is reported as not proven optimal).
        #[arg(long, value_parser = parse_timeout)]
        timeout: Option<f64>,
        /// Also write the manifests of the new deployment into the folder `-o` (which then receives the DDD too) and print which objects change.
        #[arg(long, value_enum, requires = "output")]
        to: Option<export::Target>,
        /// With `--plan-format svg`: group hosts by this host attribute (e.g. `zone`).
        #[arg(long, value_name = "ATTR")]
        group_by: Option<String>,
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
        #[arg(long, value_parser = parse_timeout)]
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
        #[arg(long, value_parser = parse_timeout)]
        timeout: Option<f64>,
        /// How to write the configuration.
        #[arg(long, value_enum, default_value_t = OutFormat::Xml)]
        format: OutFormat,
        /// With `--format svg`: group hosts by this host attribute (e.g. `zone`).
        #[arg(long, value_name = "ATTR")]
        group_by: Option<String>,
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
        /// With `--format svg`: group hosts by this host attribute (e.g. `zone`).
        #[arg(long, value_name = "ATTR")]
        group_by: Option<String>,
    },
    /// Run the language server (LSP over stdin and stdout), for editors.
    Lsp,
    /// Run a guarded upgrade (MDCD protocol) in the deterministic simulator and check it.
    Simulate(simulate::SimulateArgs),
    /// Write manifests that run exactly the deployment a DDD describes (Kubernetes).
    Export(export::ExportArgs),
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

fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_OK };
        }
    };
    if let Some(m) = cli.max_memory {
        deladas::budget::set_memory_limit(m);
    }
    match cli.command {
        Command::Check { file, format } => cmd_check(&file, format),
        Command::Fmt { files, check } => fmt::cmd_fmt(&files, check),
        Command::Verify { file, ddd, format, group_by } => cmd_verify(&file, &ddd, format, group_by),
        Command::Explain { file, format, timeout } => cmd_explain(&file, format, timeout),
        Command::Resolve {
            file,
            from,
            fail_host,
            fail_instance,
            add_host,
            output,
            plan_format,
            strategy,
            timeout,
            to,
            group_by,
        } => resolve::cmd_resolve(resolve::ResolveArgs {
            file: &file,
            from: &from,
            fail_hosts: &fail_host,
            fail_instances: &fail_instance,
            add_hosts: &add_host,
            output: output.as_deref(),
            plan_format,
            strategy,
            timeout,
            to,
            group_by: group_by.as_deref(),
        }),
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
        Command::Solve { file, output, count, any, timeout, format, group_by } => {
            let picture = deladas::picture::Options { group_by };
            cmd_solve(&file, output.as_deref(), count as usize, any, timeout, (format, &picture))
        }
        Command::Roles { file, deployment, output, format, group_by } => {
            roles::cmd_roles(&file, &deployment, output.as_deref(), format, group_by)
        }
        Command::Lsp => lsp::cmd_lsp(),
        Command::Simulate(args) => simulate::cmd_simulate(&args),
        Command::Export(args) => export::cmd_export(&args),
        Command::Manage(a) => a.run(),
        Command::Agent(a) => a.run(),
        Command::Status(a) => a.run(),
        Command::Events(a) => a.run(),
        Command::Plan(a) => a.run(),
        Command::Enact(a) => a.run(),
    }
}

pub(super) fn emit(diags: &[Diagnostic], sources: &Sources, format: DiagFormat) {
    // A cancelled run (Ctrl-C, SIGTERM) writes nothing more.
    if deladas::budget::cancelled().is_some() {
        return;
    }
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

pub(super) fn render_deployment(
    d: &deladas::ddd::Deployment,
    format: OutFormat,
    picture: &deladas::picture::Options,
) -> String {
    match format {
        OutFormat::Svg => deladas::picture::deployment_svg(d, picture),
        OutFormat::Xml => deladas::ddd::to_xml(d),
        OutFormat::Json => deladas::ddd::to_json(d),
        OutFormat::Dot => deladas::ddd::to_dot(d),
    }
}

/// The longest `--timeout` accepted: one year, in seconds.
pub const MAX_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// `--timeout SECS`: a finite number of seconds, more than 0 and at most a
/// year (clap reports anything else as a usage error, exit 2).
fn parse_timeout(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !t.is_finite() || t <= 0.0 {
        return Err(format!("`{s}` is not a positive, finite number of seconds"));
    }
    if t > MAX_TIMEOUT_SECS {
        return Err(format!("`{s}` seconds is more than a year (at most {MAX_TIMEOUT_SECS})"));
    }
    Ok(t)
}

/// The first error writing to stdout (other than a reader that went away);
/// `main` turns it into an error message and exit 2 once the command is done.
static STDOUT_ERROR: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Writes to stdout. A reader that went away (`deladas … | head`) is not an
/// error: the rest of the output is dropped. Any other failure (a full disk,
/// `> /dev/full`) is remembered and makes the command exit 2 (see [`main`]).
pub(super) fn print_out(text: &str) {
    use std::io::Write;
    // A cancelled run writes nothing more.
    if deladas::budget::cancelled().is_some() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            if let Ok(mut first) = STDOUT_ERROR.lock() {
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

/// The command's exit code, or 2 when its output could not be written to
/// stdout (the error is printed on stderr).
fn checked_exit(code: i32) -> i32 {
    let failed = STDOUT_ERROR.lock().ok().and_then(|mut e| e.take());
    match failed {
        Some(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            if code == EXIT_OK || code == EXIT_NO {
                EXIT_BAD_INPUT
            } else {
                code
            }
        }
        None => code,
    }
}

/// Writes a command's result: to `path`, or to stdout (with a final newline)
/// when there is none. Every command writes its results through here.
///
/// A file is written whole or not at all: the text goes to a temporary file
/// in the same directory, is synced, and then renamed over `path`, so a full
/// disk or a size limit leaves the old file as it was. A `path` that exists
/// but is not a regular file (`/dev/stdout`, a FIFO) is written in place.
/// Errors are printed; `Err(2)` then.
pub(super) fn write_out(path: Option<&std::path::Path>, text: &str) -> Result<(), i32> {
    match path {
        None => {
            print_out(text);
            if !text.ends_with('\n') {
                print_out("\n");
            }
            Ok(())
        }
        Some(_) if deladas::budget::cancelled().is_some() => Ok(()),
        Some(p) => write_file_atomic(p, text.as_bytes()).map_err(|e| {
            eprintln!("error: cannot write `{}`: {e}", p.display());
            EXIT_BAD_INPUT
        }),
    }
}

/// Replaces `path` by `bytes` atomically (temporary file, fsync, rename).
fn write_file_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// A file written as a whole or not at all: the bytes go to a temporary file
/// in the target's directory, which [`AtomicFile::commit`] syncs and renames
/// over the target; dropped without a commit, the temporary file is removed
/// and the old file is untouched. A target that exists and is not a regular
/// file (`/dev/null`, a FIFO) is written in place; a symbolic link stays one
/// (the file it points to is replaced).
pub(super) struct AtomicFile {
    file: Option<std::io::BufWriter<std::fs::File>>,
    /// `(temporary, target, directory)`, or `None` when written in place.
    rename: Option<(std::path::PathBuf, std::path::PathBuf, std::path::PathBuf)>,
}

impl AtomicFile {
    pub(super) fn create(path: &std::path::Path) -> std::io::Result<AtomicFile> {
        let resolved = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).ok(),
            _ => None,
        };
        let path = resolved.as_deref().unwrap_or(path);
        let existing = std::fs::metadata(path).ok();
        if existing.as_ref().is_some_and(|m| !m.is_file()) {
            let f = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
            return Ok(AtomicFile { file: Some(std::io::BufWriter::new(f)), rename: None });
        }
        let name =
            path.file_name().ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = dir.join(tmp_name);
        let f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let out = AtomicFile {
            file: Some(std::io::BufWriter::new(f)),
            rename: Some((tmp, path.to_path_buf(), dir.to_path_buf())),
        };
        if let (Some(m), Some(f)) = (&existing, &out.file) {
            f.get_ref().set_permissions(m.permissions())?;
        }
        Ok(out)
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub(super) fn commit(mut self) -> std::io::Result<()> {
        use std::io::Write;
        let Some(mut f) = self.file.take() else { return Ok(()) };
        f.flush()?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        if let Some((tmp, target, dir)) = self.rename.take() {
            let done = f.sync_all().and_then(|()| std::fs::rename(&tmp, &target));
            if done.is_err() {
                let _ = std::fs::remove_file(&tmp);
                return done;
            }
            // The rename is durable once the directory is synced; not every
            // file system can sync a directory, and the file is complete either way.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl std::io::Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("the file is already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some((tmp, _, _)) = self.rename.take() {
            self.file.take();
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// The exit code for a failure to solve: 3 when a limit of the run was
/// reached, 2 otherwise (the goal cannot be grounded).
pub(crate) fn solve_error_exit(e: &deladas::solve::SolveError) -> i32 {
    if e.is_stopped() {
        EXIT_UNKNOWN
    } else {
        EXIT_BAD_INPUT
    }
}

fn cmd_solve(
    file: &std::path::Path,
    output: Option<&std::path::Path>,
    count: usize,
    any: bool,
    timeout: Option<f64>,
    (format, picture): (OutFormat, &deladas::picture::Options),
) -> i32 {
    // The limit counts from here: reading and checking a large goal is part of the run.
    let started = std::time::Instant::now();
    let (sources, checked) = match load_checked(file, DiagFormat::Text) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let opts = deladas::solve::Options {
        timeout: timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| std::time::Duration::from_secs_f64(t).saturating_sub(started.elapsed()))
            .map(|t| t.max(std::time::Duration::from_millis(1))),
        parsimony: !any,
        count,
        ..Default::default()
    };
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let mut progress = TermProgress::new();
    // A stopped run ends the command: nothing needs freeing after the limit,
    // and a solver slow to notice its interrupt does not hold the exit up.
    deladas::budget::set_exit_after_stop(true);
    deladas::budget::on_overrun(solve_overran);
    let result = deladas::solve::solve(program, &available, &opts, &mut progress);
    progress.finish();
    let (outcome, stats) = match result {
        Ok(x) => x,
        Err(e) => {
            emit(&[e.to_diagnostic(program.root_file)], &sources, DiagFormat::Text);
            return solve_error_exit(&e);
        }
    };
    match outcome {
        deladas::solve::Outcome::Sat { deployments: solutions, ground, solutions: sols } => {
            let info = deladas::solve::output::GoalInfo::of(file, sources.text(program.root_file));
            let many = solutions.len() > 1 || count > 1;
            let optimum = stats.optimum.as_ref();
            for (i, d) in solutions.iter().enumerate() {
                let d = d.clone().with_goal(&info);
                let mut text = render_deployment(&d, format, picture);
                if let (OutFormat::Json, Some(r), Some(sol)) = (format, optimum, sols.get(i)) {
                    // The optimisation beside the DDD (issue 19).
                    if let Ok(serde_json::Value::Object(mut m)) = serde_json::from_str::<serde_json::Value>(&text) {
                        m.insert("optimisation".into(), optimum::json(&sources, program, &ground, sol, r, i));
                        text = serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or(text);
                        text.push('\n');
                    }
                }
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
            if let (Some(r), Some(first)) = (optimum, sols.first()) {
                for n in optimum::notes(&sources, program, r) {
                    eprintln!("{n}");
                }
                emit(&optimum::broken(program, &ground, first, r), &sources, DiagFormat::Text);
            }
            if solutions.len() < count {
                eprintln!("note: found {} of the {count} configurations asked for; there are no more", solutions.len());
            }
            EXIT_OK
        }
        deladas::solve::Outcome::Unsat { core, .. } => {
            // The explanation shares the run's time limit.
            let budget = match opts.timeout {
                Some(t) => t.saturating_sub(started.elapsed()).max(std::time::Duration::from_millis(1)),
                None => std::time::Duration::from_secs(20),
            };
            PROVEN_UNSAT.store(true, std::sync::atomic::Ordering::SeqCst);
            explain::explain_proven_unsat(program, &sources, budget, &core)
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
            let help = if reason.starts_with("out of memory") {
                "a larger `--max-memory`, or a smaller goal, may help"
            } else {
                "a longer `--timeout` may help"
            };
            let d = Diagnostic::new(deladas::diagnostics::Code::SolverGaveUp, format!("the solver gave up: {reason}"))
                .help(help);
            emit(&[d], &sources, DiagFormat::Text);
            EXIT_UNKNOWN
        }
    }
}

/// Set once `solve` has proven the goal unsatisfiable: an explanation that
/// then overruns the limit ends the command with this answer, not E0802.
static PROVEN_UNSAT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `solve`'s (or `resolve`'s) run overran its limit (see
/// `deladas::budget::on_overrun`): the same E0802 diagnostic as a run that
/// returned, then exit 3; after a proven "unsatisfiable", that answer (exit 1).
pub(super) fn solve_overran(hit: &deladas::budget::LimitHit) -> ! {
    if let Some(sig) = deladas::budget::cancelled().filter(|&s| s > 0) {
        std::process::exit(128 + sig);
    }
    if PROVEN_UNSAT.load(std::sync::atomic::Ordering::SeqCst) {
        let d = Diagnostic::new(deladas::diagnostics::Code::Unsatisfiable, "goal is unsatisfiable")
            .note(format!("the solver refuted the goal; its explanation was stopped by the limit ({hit})"))
            .help("`deladas explain` with a longer `--timeout` shows a minimal conflict and repairs");
        emit(&[d], &Sources::default(), DiagFormat::Text);
        std::process::exit(EXIT_NO);
    }
    let d = deladas::solve::SolveError::Stopped(hit.clone()).to_diagnostic(0);
    emit(&[d], &Sources::default(), DiagFormat::Text);
    std::process::exit(EXIT_UNKNOWN)
}

fn cmd_verify(file: &std::path::Path, ddd_path: &std::path::Path, out: VerifyFormat, group_by: Option<String>) -> i32 {
    let format = if out == VerifyFormat::Json { DiagFormat::Json } else { DiagFormat::Text };
    let (mut sources, checked) = match load_checked(file, format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let program = &checked.program;
    let (deployment, world) = match load_deployment(program, &mut sources, ddd_path, format) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let violations = deladas::eval::all_violations(program, &world);
    let diags: Vec<Diagnostic> = violations.iter().map(|v| v.to_diagnostic()).collect();
    emit(&diags, &sources, format);
    if out == VerifyFormat::Svg {
        let lines: Vec<deladas::picture::Finding> = violations
            .iter()
            .map(|v| deladas::picture::Finding {
                message: v.message.clone(),
                witness: v.witness.iter().map(|w| w.text.clone()).collect(),
            })
            .collect();
        let opts = deladas::picture::Options { group_by };
        print_out(&deladas::picture::verify_svg(&deployment, &lines, &opts));
    }
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

/// Reads the DDD at `ddd_path` and binds it to a checked goal
/// ([`deladas::eval::read_deployment`], shared by every command that reads a
/// DDD): an unreadable or refused file (E0009, E0011), a malformed DDD
/// (E0704), one that does not match the goal (E0703) or breaks its bounds
/// (E0702) is reported here, pointing into the DDD; `Err(exit code)` then.
pub(super) fn load_deployment(
    program: &deladas::check::ir::Program,
    sources: &mut Sources,
    ddd_path: &std::path::Path,
    format: DiagFormat,
) -> Result<(deladas::ddd::Deployment, deladas::eval::World), i32> {
    deladas::eval::read_deployment(program, sources, ddd_path).map_err(|diags| {
        emit(&diags, sources, format);
        EXIT_BAD_INPUT
    })
}
