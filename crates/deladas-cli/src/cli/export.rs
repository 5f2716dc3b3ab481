//! `deladas export DDD --to kubernetes`: the manifests that run exactly the
//! deployment (the rendering is `deladas::export::kubernetes`), on stdout or
//! into a folder (`-o DIR`: one file per instance, `network-policies.yaml`,
//! the DDD they run and the state a later `resolve --to kubernetes` reads).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use deladas::ddd::Locations;
use deladas::diagnostics::{Code, Diagnostic, FileId, Sources};
use deladas::export::kubernetes::{self as k8s, Options, Rendered, State};

use super::{emit, print_out, write_file_atomic, DiagFormat, EXIT_BAD_INPUT, EXIT_OK};

/// What to export to.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub(super) enum Target {
    /// Kubernetes manifests: Pods pinned to nodes, ConfigMaps, Services, NetworkPolicies.
    Kubernetes,
}

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// The deployment (a DDD, `.ddd.xml`).
    ddd: PathBuf,
    /// What to export to.
    #[arg(long, value_enum)]
    to: Target,
    /// The namespace of every object.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The deployment's name in labels and object names (default: the goal's file stem).
    #[arg(long)]
    name: Option<String>,
    /// Run the instances of HOST on the Kubernetes node NODE (repeatable; default: the node named like the host).
    #[arg(long = "node", value_name = "HOST=NODE")]
    nodes: Vec<String>,
    /// The deployment's generation (labels, DELADAS_GENERATION, wiring documents).
    #[arg(long, default_value_t = 1)]
    generation: u64,
    /// The first TCP port given to instance ports on each host.
    #[arg(long, default_value_t = k8s::DEFAULT_PORT_BASE, value_parser = clap::value_parser!(u16).range(1..))]
    port_base: u16,
    /// Write the manifests into this folder (one file per instance), instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Print only the `kubectl apply` arguments that prune what this deployment no longer has.
    #[arg(long)]
    prune_labels: bool,
}

fn cannot(message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(Code::CannotExport, message)
}

/// Reads and checks a DDD, with the input limits of
/// `deladas::check::load::read_input`; diagnostics (E0009, E0011, E0704) on
/// failure.
pub(super) fn read_ddd(
    path: &Path,
    sources: &mut Sources,
) -> Result<(deladas::ddd::Deployment, Locations, String, FileId), Diagnostic> {
    let shown = path.display();
    let text = match deladas::check::load::read_input(path) {
        Ok(b) => String::from_utf8(b)
            .map_err(|_| Diagnostic::new(Code::MalformedDdd, format!("`{shown}` is not UTF-8 text")))?,
        Err(e) => return Err(Diagnostic::new(e.code(), format!("cannot read `{shown}`: {e}"))),
    };
    let file = sources.add(shown.to_string(), text.clone());
    match deladas::ddd::from_xml_located(&text) {
        Ok((d, at)) => Ok((d, at, text, file)),
        Err(errs) => {
            let e = &errs[0];
            let mut d = Diagnostic::new(Code::MalformedDdd, e.message.clone()).primary(
                file,
                deladas::syntax::ast::Span::new(e.span.start, e.span.end),
                "here",
            );
            if errs.len() > 1 {
                d = d.note(format!("and {} more problems in the DDD", errs.len() - 1));
            }
            Err(d)
        }
    }
}

/// The diagnostic for an export error, pointing at the component's element
/// in the DDD when it names one.
pub(super) fn export_diagnostic(
    e: &k8s::ExportError,
    ddd: &deladas::ddd::Deployment,
    at: &Locations,
    ddd_file: FileId,
) -> Diagnostic {
    let mut d = cannot(e.message.clone());
    let index = e.component.as_ref().and_then(|c| ddd.components.iter().position(|x| &x.name == c));
    if let Some(r) = index.and_then(|i| at.components.get(i)) {
        d = d.primary(ddd_file, deladas::syntax::ast::Span::new(r.start, r.end), "this component");
    }
    if let Some(h) = &e.help {
        d = d.help(h.clone());
    }
    d
}

fn options(args: &ExportArgs, d: &deladas::ddd::Deployment) -> Result<Options, Diagnostic> {
    let mut opts = Options::for_deployment(d);
    if let Some(n) = &args.name {
        opts.name = n.clone();
    }
    opts.namespace = args.namespace.clone();
    opts.generation = args.generation;
    opts.port_base = args.port_base;
    for m in &args.nodes {
        match m.split_once('=') {
            Some((h, n)) if !h.trim().is_empty() && !n.trim().is_empty() => {
                opts.nodes.insert(h.trim().to_string(), n.trim().to_string());
            }
            _ => {
                return Err(cannot(format!("`--node {m}` is not `HOST=NODE`")).help("e.g. `--node h1=worker-1`"));
            }
        }
    }
    Ok(opts)
}

/// `deladas export`.
pub(super) fn cmd_export(args: &ExportArgs) -> i32 {
    let Target::Kubernetes = args.to;
    let mut sources = Sources::default();
    let (d, at, text, file) = match read_ddd(&args.ddd, &mut sources) {
        Ok(x) => x,
        Err(diag) => {
            emit(&[diag], &sources, DiagFormat::Text);
            return EXIT_BAD_INPUT;
        }
    };
    let opts = match options(args, &d) {
        Ok(o) => o,
        Err(diag) => {
            emit(&[diag], &sources, DiagFormat::Text);
            return EXIT_BAD_INPUT;
        }
    };
    let rendered = match k8s::render(&d, &opts, &deladas::enact::Endpoints::default()) {
        Ok(r) => r,
        Err(e) => {
            emit(&[export_diagnostic(&e, &d, &at, file)], &sources, DiagFormat::Text);
            return EXIT_BAD_INPUT;
        }
    };
    if args.prune_labels {
        print_out(&format!("{}\n", k8s::prune_args(&opts).join(" ")));
        return EXIT_OK;
    }
    match &args.output {
        None => {
            print_out(&k8s::to_yaml(&rendered));
            EXIT_OK
        }
        Some(dir) => {
            if let Err(diag) = folder_is_ours(dir, &opts) {
                emit(&[diag], &sources, DiagFormat::Text);
                return EXIT_BAD_INPUT;
            }
            match write_dir(dir, &rendered, &opts, &text) {
                Ok(n) => {
                    eprintln!(
                        "wrote {} objects in {n} files to `{}`; apply with: kubectl apply -f {} {}",
                        rendered.objects.len(),
                        dir.display(),
                        dir.display(),
                        k8s::prune_args(&opts).join(" ")
                    );
                    EXIT_OK
                }
                Err(code) => code,
            }
        }
    }
}

/// Refuses a folder that holds another deployment's export (its state
/// names another deployment or namespace): writing there would replace that
/// deployment's state and mix two deployments' manifests.
fn folder_is_ours(dir: &Path, opts: &Options) -> Result<(), Diagnostic> {
    let Some(state) = read_state(dir)? else { return Ok(()) };
    let theirs = &state.options;
    if theirs.name == opts.name && theirs.namespace == opts.namespace {
        return Ok(());
    }
    Err(cannot(format!(
        "`{}` holds the export of deployment `{}` in namespace `{}`, not of `{}` in `{}`",
        dir.display(),
        theirs.name,
        theirs.namespace,
        opts.name,
        opts.namespace
    ))
    .help(format!(
        "use another folder, or `--name {} --namespace {}` to export that deployment again",
        theirs.name, theirs.namespace
    )))
}

/// Writes the manifests, the DDD and the state into `dir`, then removes the
/// manifest files of an earlier export of the same deployment that the new
/// one no longer has (regular `.yaml` files that start with
/// [`k8s::file_header`] for its name; nothing else is touched, and only that
/// many bytes of each are read). Returns the number of manifest files.
pub(super) fn write_dir(dir: &Path, r: &Rendered, opts: &Options, ddd_text: &str) -> Result<usize, i32> {
    let fail = |what: &Path, e: std::io::Error| {
        eprintln!("error: cannot write `{}`: {e}", what.display());
        EXIT_BAD_INPUT
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let files = k8s::files(r, opts);
    for (name, text) in &files {
        let p = dir.join(name);
        write_file_atomic(&p, text.as_bytes()).map_err(|e| fail(&p, e))?;
    }
    let ddd = dir.join(k8s::DDD_FILE);
    write_file_atomic(&ddd, ddd_text.as_bytes()).map_err(|e| fail(&ddd, e))?;
    let state = State { format: 1, options: opts.clone(), endpoints: r.endpoints.clone() };
    let state_path = dir.join(k8s::STATE_FILE);
    let state_text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
    write_file_atomic(&state_path, state_text.as_bytes()).map_err(|e| fail(&state_path, e))?;
    let keep: std::collections::BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let header = k8s::file_header(&opts.name);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".yaml") || keep.contains(name.as_str()) {
                continue;
            }
            // Not a symbolic link, FIFO or device: only a regular file is read.
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if starts_with(&entry.path(), header.as_bytes()) {
                std::fs::remove_file(entry.path()).map_err(|e| fail(&entry.path(), e))?;
            }
        }
    }
    Ok(files.len())
}

/// Whether the regular file at `path` starts with `prefix` (reading at most
/// that many bytes).
fn starts_with(path: &Path, prefix: &[u8]) -> bool {
    use std::io::Read;
    let mut head = Vec::with_capacity(prefix.len());
    let read = std::fs::File::open(path).and_then(|f| {
        if !f.metadata()?.is_file() {
            return Ok(0);
        }
        f.take(prefix.len() as u64).read_to_end(&mut head)
    });
    read.is_ok() && head == prefix
}

/// Reads the state an earlier export left in `dir`, if any, with the input
/// limits of `deladas::check::load::read_input` (E0009, E0011, E0705).
pub(super) fn read_state(dir: &Path) -> Result<Option<State>, Diagnostic> {
    use deladas::check::load::InputError;
    let p = dir.join(k8s::STATE_FILE);
    let shown = p.display();
    let bytes = match deladas::check::load::read_input(&p) {
        Err(InputError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Diagnostic::new(e.code(), format!("cannot read `{shown}`: {e}"))),
        Ok(b) => b,
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| cannot(format!("`{shown}` is not an export state: {e}")).help("export into a fresh folder"))
}

/// `deladas resolve … --to kubernetes -o DIR`: the manifests of the new
/// deployment into `DIR` (with the DDD and the state), and the plan — the
/// instance plan, then the objects created, changed and deleted — on stdout.
/// `plan` is the instance plan as text (`Err`) or JSON (`Ok`).
pub(super) fn resolve_to_kubernetes(
    old: &deladas::ddd::Deployment,
    new: &deladas::ddd::Deployment,
    new_text: &str,
    dir: &Path,
    plan: Result<serde_json::Value, String>,
) -> i32 {
    let sources = Sources::default();
    let fail = |d: Diagnostic| {
        emit(&[d], &sources, DiagFormat::Text);
        EXIT_BAD_INPUT
    };
    let state = match read_state(dir) {
        Ok(s) => s,
        Err(d) => return fail(d),
    };
    let defaults = Options::for_deployment(old);
    let (rendered, opts, objects) = match k8s::next_generation(old, new, state.as_ref(), &defaults) {
        Ok(x) => x,
        Err(e) => {
            let mut d = cannot(e.message.clone());
            if let Some(h) = &e.help {
                d = d.help(h.clone());
            }
            return fail(d);
        }
    };
    if let Err(code) = write_dir(dir, &rendered, &opts, new_text) {
        return code;
    }
    match plan {
        Err(text) => print_out(&format!("{text}{}", objects.text(&opts))),
        Ok(mut json) => {
            json["kubernetes"] = objects.json(&opts);
            print_out(&format!("{json:#}\n"));
        }
    }
    EXIT_OK
}
