//! `deladas export DDD --to kubernetes`: the manifests that run exactly the
//! deployment (the rendering is `deladas::export::kubernetes`), on stdout or
//! into a folder (`-o DIR`: one file per instance, `network-policies.yaml`,
//! the DDD they run and the state a later `resolve --to kubernetes` reads).

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use deladas::diagnostics::{Code, Diagnostic, FileId, Sources};
use deladas::export::kubernetes::{self as k8s, Options, Rendered, State};

use super::{emit, print_out, DiagFormat, EXIT_BAD_INPUT, EXIT_OK};

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
    #[arg(long, default_value_t = k8s::DEFAULT_PORT_BASE)]
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

/// Reads and checks a DDD; diagnostics (E0009, E0704) on failure.
pub(super) fn read_ddd(
    path: &Path,
    sources: &mut Sources,
) -> Result<(deladas::ddd::Deployment, String, FileId), Diagnostic> {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8(b)
            .map_err(|_| Diagnostic::new(Code::MalformedDdd, format!("`{}` is not UTF-8 text", path.display())))?,
        Err(e) => return Err(Diagnostic::new(Code::Unreadable, format!("cannot read `{}`: {e}", path.display()))),
    };
    let file = sources.add(path.display().to_string(), text.clone());
    match deladas::ddd::from_xml(&text) {
        Ok(d) => Ok((d, text, file)),
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
/// in the DDD text when it names one.
pub(super) fn export_diagnostic(e: &k8s::ExportError, ddd_file: FileId, ddd_text: &str) -> Diagnostic {
    let mut d = cannot(e.message.clone());
    if let Some(c) = &e.component {
        let needle = format!("<component name=\"{c}\"");
        if let Some(start) = ddd_text.find(&needle) {
            d = d.primary(ddd_file, deladas::syntax::ast::Span::new(start, start + needle.len()), "this component");
        }
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
    let (d, text, file) = match read_ddd(&args.ddd, &mut sources) {
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
            emit(&[export_diagnostic(&e, file, &text)], &sources, DiagFormat::Text);
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
        Some(dir) => match write_dir(dir, &rendered, &opts, &text) {
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
        },
    }
}

/// Writes `text` to `path` atomically: a temporary file in the same folder,
/// flushed to disk, then renamed over `path`. (The CLI is getting a shared
/// helper for this; this one is local to the export until then.)
fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the manifests, the DDD and the state into `dir`, then removes the
/// manifest files of an earlier export that the new one no longer has (files
/// that start with [`k8s::FILE_HEADER`]; nothing else is touched). Returns the
/// number of manifest files.
pub(super) fn write_dir(dir: &Path, r: &Rendered, opts: &Options, ddd_text: &str) -> Result<usize, i32> {
    let fail = |what: &Path, e: std::io::Error| {
        eprintln!("error: cannot write `{}`: {e}", what.display());
        EXIT_BAD_INPUT
    };
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let files = k8s::files(r, opts);
    for (name, text) in &files {
        let p = dir.join(name);
        write_atomic(&p, text).map_err(|e| fail(&p, e))?;
    }
    let ddd = dir.join(k8s::DDD_FILE);
    write_atomic(&ddd, ddd_text).map_err(|e| fail(&ddd, e))?;
    let state = State { format: 1, options: opts.clone(), endpoints: r.endpoints.clone() };
    let state_path = dir.join(k8s::STATE_FILE);
    let state_text = serde_json::to_string_pretty(&state).unwrap_or_default() + "\n";
    write_atomic(&state_path, &state_text).map_err(|e| fail(&state_path, e))?;
    let keep: std::collections::BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".yaml") || keep.contains(name.as_str()) {
                continue;
            }
            let ours = std::fs::read_to_string(entry.path()).is_ok_and(|t| t.starts_with(k8s::FILE_HEADER));
            if ours {
                std::fs::remove_file(entry.path()).map_err(|e| fail(&entry.path(), e))?;
            }
        }
    }
    Ok(files.len())
}

/// Reads the state an earlier export left in `dir`, if any.
pub(super) fn read_state(dir: &Path) -> Result<Option<State>, String> {
    let p = dir.join(k8s::STATE_FILE);
    match std::fs::read_to_string(&p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read `{}`: {e}", p.display())),
        Ok(t) => {
            serde_json::from_str(&t).map(Some).map_err(|e| format!("`{}` is not an export state: {e}", p.display()))
        }
    }
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
        Err(m) => return fail(cannot(m)),
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
