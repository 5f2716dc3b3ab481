//! ARCHITECTURE.md's invariants, enforced mechanically over the source text
//! (comments are skipped; code in `#[cfg(test)]` modules counts):
//!
//! 1. Heavy dependencies stay in their modules: `z3` in `src/solve/`,
//!    `quick_xml` in `src/ddd/`, `layout` (layout-rs) in `src/picture/`, LSP (`lsp_types`, `lsp_server`) in
//!    `crates/deladas-cli/src/lsp/`, HTTP and async (`axum`, `tokio`,
//!    `hyper`, `ureq`, `reqwest`) in the manager, agent and client modules
//!    of `crates/deladas-cli/src/` (`manage*`, `agent*`, `client*`).
//! 2. The front ends of the command (`cli`, `lsp`, `manage`, `agent`,
//!    `client`) never import each other. The one exception: `cli` (the
//!    argument parser) starts another front end through its entry point, a
//!    function whose name starts with `run` (`crate::lsp::run_stdio`), or
//!    hands it its parsed arguments (a type whose name ends in `Args`).
//! 3. The modules of the core library (`src/X.rs`, `src/X/`) form a DAG of
//!    `crate::X` references, and `eval` shares no code with `lower` or
//!    `solve` (it is the independent check of their answers).
//!
//! Each rule is a function over `(path, text)` pairs, so the tests below
//! also show that each rule fails on a tree that breaks it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// External crates and the path prefixes (from the repository root) allowed to use them.
const CONFINED: &[(&[&str], &[&str])] = &[
    (&["z3"], &["src/solve/"]),
    (&["quick_xml"], &["src/ddd/"]),
    (&["layout"], &["src/picture/"]),
    (&["lsp_types", "lsp_server"], &["crates/deladas-cli/src/lsp/"]),
    (
        &["axum", "tokio", "hyper", "ureq", "reqwest"],
        &["crates/deladas-cli/src/manage", "crates/deladas-cli/src/agent", "crates/deladas-cli/src/client"],
    ),
];

/// The front ends of the `deladas` command (top-level modules of crates/deladas-cli/src).
const FRONT_ENDS: &[&str] = &["cli", "lsp", "manage", "agent", "client"];

/// Core modules that must not reference each other: (from, to).
const FORBIDDEN: &[(&str, &str)] = &[("eval", "lower"), ("eval", "solve")];

type Files = Vec<(String, String)>;

fn root() -> PathBuf {
    PathBuf::from(env!("DELADAS_ROOT"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `.rs` file of the library and the command, by path from the root.
fn sources() -> Files {
    let root = root();
    let mut paths = vec![];
    rust_files(&root.join("src"), &mut paths);
    rust_files(&root.join("crates/deladas-cli/src"), &mut paths);
    paths.sort();
    assert!(paths.len() > 20, "found only {} source files under {}", paths.len(), root.display());
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&root).expect("under the root").to_string_lossy().replace('\\', "/");
            let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
            (rel, text)
        })
        .collect()
}

/// The code of a file: line comments (and doc comments) removed.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| {
        let t = l.trim_start();
        (i + 1, if t.starts_with("//") { "" } else { l })
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether `line` uses the crate or module `name` as a path root: `name::`,
/// `use name`, `extern crate name`, `name as` in a use.
fn mentions_path(line: &str, name: &str) -> bool {
    let mut from = 0;
    while let Some(k) = line[from..].find(name) {
        let start = from + k;
        let end = start + name.len();
        from = end;
        let before = line[..start].chars().next_back();
        if before.is_some_and(|c| is_ident_char(c) || c == ':' || c == '.' || c == '"') {
            continue;
        }
        let after = &line[end..];
        if after.chars().next().is_some_and(is_ident_char) {
            continue;
        }
        let rest = after.trim_start();
        let head = line[..start].trim_end();
        if rest.starts_with("::") || head.ends_with("use") || head.ends_with("extern crate") {
            return true;
        }
    }
    false
}

/// Rule 1.
fn confined_crates(files: &Files) -> Vec<String> {
    let mut errors = vec![];
    for (path, text) in files {
        for (crates, allowed) in CONFINED {
            if allowed.iter().any(|a| path.starts_with(a)) {
                continue;
            }
            for (n, line) in code_lines(text) {
                for c in *crates {
                    if mentions_path(line, c) {
                        errors.push(format!(
                            "{path}:{n}: uses `{c}`, which only {} may use: {}",
                            allowed.join(", "),
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    errors
}

/// The top-level module a file of a crate belongs to (`src/solve/mod.rs` → `solve`).
fn module_of<'a>(path: &'a str, src: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(src)?;
    let first = rest.split('/').next()?;
    let m = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(m, "lib" | "main")).then_some(m)
}

/// The `crate::X` references of a text, with line numbers.
fn crate_refs(text: &str) -> Vec<(usize, String, String)> {
    let mut out = vec![];
    for (n, line) in code_lines(text) {
        let mut from = 0;
        while let Some(k) = line[from..].find("crate::") {
            let start = from + k;
            from = start + 7;
            if line[..start].chars().next_back().is_some_and(is_ident_char) {
                continue; // `deladas_crate::`, not ours
            }
            let rest = &line[start + 7..];
            let m: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
            let after = &rest[m.len()..];
            let item: String =
                after.strip_prefix("::").unwrap_or("").chars().take_while(|c| is_ident_char(*c)).collect();
            if !m.is_empty() {
                out.push((n, m, item));
            }
        }
    }
    out
}

/// Rule 2.
fn front_ends_apart(files: &Files) -> Vec<String> {
    const SRC: &str = "crates/deladas-cli/src/";
    let mut errors = vec![];
    for (path, text) in files {
        let Some(from) = module_of(path, SRC) else { continue };
        if !FRONT_ENDS.contains(&from) {
            continue;
        }
        for (n, to, item) in crate_refs(text) {
            if to == from || !FRONT_ENDS.contains(&to.as_str()) {
                continue;
            }
            let entry = item.starts_with("run") || item.ends_with("Args");
            if from == "cli" && entry {
                continue;
            }
            errors.push(format!(
                "{path}:{n}: front end `{from}` reaches into front end `{to}` (`crate::{to}::{item}`); front ends share code only through the library, and `cli` starts another only through its `run…` entry point"
            ));
        }
    }
    errors
}

/// Rule 3: `crate::X` edges between the library's top-level modules.
fn core_edges(files: &Files) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut edges: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (path, text) in files {
        let Some(from) = module_of(path, "src/") else { continue };
        edges.entry(from.to_string()).or_default();
        for (n, to, _) in crate_refs(text) {
            if to != from {
                edges.entry(from.to_string()).or_default().entry(to).or_insert_with(|| format!("{path}:{n}"));
            }
        }
    }
    edges
}

fn core_is_a_dag(files: &Files) -> Vec<String> {
    let edges = core_edges(files);
    let mut errors = vec![];
    for (from, to) in FORBIDDEN {
        if let Some(at) = edges.get(*from).and_then(|e| e.get(*to)) {
            errors.push(format!("{at}: `{from}` uses `{to}`; it must share no code with it"));
        }
    }
    // Depth-first search with colours; a grey target closes a cycle.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeMap<String, String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        cycles: &mut BTreeSet<Vec<String>>,
    ) {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in edges.get(n).map(|e| e.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            match state.get(&m).copied().unwrap_or(0) {
                0 => visit(&m, edges, state, stack, cycles),
                1 => {
                    let k = stack.iter().position(|s| *s == m).unwrap_or(0);
                    cycles.insert(stack[k..].to_vec());
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    let mut cycles = BTreeSet::new();
    for n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            visit(n, &edges, &mut state, &mut vec![], &mut cycles);
        }
    }
    for c in cycles {
        let mut steps = vec![];
        for (i, a) in c.iter().enumerate() {
            let b = &c[(i + 1) % c.len()];
            steps.push(format!("{a} -> {b} ({})", edges[a][b]));
        }
        errors.push(format!("a cycle among the library's modules: {}", steps.join(", ")));
    }
    errors
}

fn assert_none(what: &str, errors: Vec<String>) {
    assert!(errors.is_empty(), "{what}:\n  {}\n(see ARCHITECTURE.md, Invariants)", errors.join("\n  "));
}

#[test]
fn heavy_dependencies_stay_in_their_modules() {
    assert_none("dependencies outside their modules", confined_crates(&sources()));
}

#[test]
fn front_ends_never_import_each_other() {
    assert_none("front ends importing each other", front_ends_apart(&sources()));
}

#[test]
fn core_modules_form_a_dag() {
    assert_none("module dependencies", core_is_a_dag(&sources()));
}

/// Each rule fails on a tree that breaks it: a `use z3` in `check`, an LSP
/// type in `cli`, `lsp` calling into `cli`, a cycle, `eval` using `solve`.
#[test]
fn the_rules_catch_violations() {
    let files = sources();
    let add = |files: &Files, path: &str, text: &str| {
        let mut f = files.clone();
        f.push((path.to_string(), text.to_string()));
        f
    };
    let e = confined_crates(&add(&files, "src/check/extra.rs", "use z3;\n"));
    assert!(e.iter().any(|e| e.starts_with("src/check/extra.rs:1: uses `z3`")), "{e:?}");
    let e = confined_crates(&add(&files, "src/check/extra.rs", "// z3::Solver in a comment\nlet s = \"z3\";\n"));
    assert!(!e.iter().any(|e| e.starts_with("src/check/extra.rs")), "comments and strings are not uses: {e:?}");
    let e = confined_crates(&add(&files, "crates/deladas-cli/src/cli/x.rs", "fn f(_: lsp_types::Url) {}\n"));
    assert!(e.iter().any(|e| e.contains("uses `lsp_types`")), "{e:?}");
    let e = confined_crates(&add(&files, "src/ddd/x.rs", "use tokio::runtime;\n"));
    assert!(e.iter().any(|e| e.contains("uses `tokio`")), "{e:?}");
    let e = front_ends_apart(&add(&files, "crates/deladas-cli/src/lsp/x.rs", "use crate::cli::emit;\n"));
    assert!(e.iter().any(|e| e.contains("front end `lsp` reaches into front end `cli`")), "{e:?}");
    let e = front_ends_apart(&add(&files, "crates/deladas-cli/src/cli/x.rs", "crate::lsp::convert::f();\n"));
    assert!(e.iter().any(|e| e.contains("`crate::lsp::convert`")), "{e:?}");
    let e = front_ends_apart(&add(&files, "crates/deladas-cli/src/cli/x.rs", "crate::manage::run(args);\n"));
    assert!(!e.iter().any(|e| e.starts_with("crates/deladas-cli/src/cli/x.rs")), "an entry point is allowed: {e:?}");
    let e = core_is_a_dag(&add(&files, "src/syntax/x.rs", "use crate::solve::Options;\n"));
    assert!(
        e.iter().any(|e| e.starts_with("a cycle among the library's modules") && e.contains("syntax -> solve")),
        "{e:?}"
    );
    let e = core_is_a_dag(&add(&files, "src/eval/x.rs", "fn f() { crate::solve::solve(); }\n"));
    assert!(e.iter().any(|e| e.contains("`eval` uses `solve`")), "{e:?}");
}
