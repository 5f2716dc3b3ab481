//! `deladas explain` (and `solve` on an unsatisfiable goal) end to end.
//!
//! * **Snapshots.** Every `tests/explain/*.deladas` is an unsatisfiable goal
//!   that starts with a `//` comment saying what it shows. The real binary
//!   runs `deladas explain FILE` from the crate root (relative paths, so
//!   snapshots name stable files); it must exit 1, and the goal's source and
//!   the rendered stderr are snapshotted together in
//!   `tests/snapshots/explain__NAME.snap`. For every case `--format json`
//!   carries the same labels as the text, and `deladas solve` exits 1 with
//!   the same explanation.
//! * **The acceptance case** (`acceptance.deladas`): four clauses, exactly
//!   three conflict; the JSON labels those three as primary, never the
//!   fourth, and names the resource limit in a secondary label.
//! * **A satisfiable goal**: `explain` exits 0 and says so.
//! * **Property**: random small unsatisfiable goals (source text); the
//!   conflict `explain` reports is unsatisfiable on its own (with every
//!   resource, and with only the reported ones), minimal (dropping any clause
//!   or lifting any reported limit makes it satisfiable), labelled exactly by
//!   the CLI, and confirmed by brute force where that is tractable; every
//!   repair offered repairs. The same holds for the parts of clauses it
//!   reports (`Conflict::pieces`). 60 cases by default
//!   (`DELADAS_EXPLAIN_CASES`), fixed seed (`DELADAS_PROPTEST_SEED` picks
//!   another). Statistics with `--nocapture`.
//! * **Known weaknesses** are `#[ignore = "bug: …"]` tests with a minimal
//!   goal each.
//!
//! Add a case: write `tests/explain/NAME.deladas`, run
//! `INSTA_UPDATE=always cargo test --test explain`, read the snapshot.
//!
//! One test per case file (libtest-mimic, `harness = false`): `case::NAME`
//! (`cargo test --test explain -- case::NAME` runs one). Cases hold a lock
//! while they run, so that the outer time limit is not reached by contention
//! (the search itself is bounded by work; `snapshot_holds_while_both_cores_are_busy`).

mod common;
use common::*;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use deladas::check::ir::{Domain, Formula, FormulaKind, Program, Sort, Term, TermKind};
use deladas::check::{check_loaded, load, RealFs};
use deladas::eval::brute::{enumerate, BruteResult, Limits as BruteLimits};
use deladas::lower::bounds::Resource;
use deladas::solve::explain::{explain, Conflict, Explained, Piece, Repair};
use deladas::solve::{decide, solve, Options, Outcome, Quiet};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("DELADAS_ROOT"))
}

/// Held by the tests that run many solver calls: an explanation's search is
/// bounded by work, but the run keeps its outer time limit (20 s by default),
/// so the snapshot tests do not compete with the property test for the CPU.
fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The case files, sorted.
fn cases() -> Vec<PathBuf> {
    deladas_files("tests/explain")
}

/// `tests/explain/NAME.deladas`, relative to the crate root.
fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("deladas-explain-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write scratch file");
        p.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Checks goal text with the library (imports resolve from the crate root,
/// then the standard library).
fn program_of(text: &str) -> Result<Program, String> {
    let loaded = load(&root().join("g.deladas"), Some(text), &RealFs);
    let (sources, checked) = check_loaded(loaded);
    if checked.has_errors() {
        return Err(deladas::diagnostics::render::to_text(&checked.diags, &sources));
    }
    Ok(checked.program)
}

/// The one diagnostic of `explain --format json`.
fn json_diag(o: &Output) -> Value {
    let v: Value = serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", show(o)));
    let arr = v.as_array().unwrap_or_else(|| panic!("not a JSON array:\n{}", show(o)));
    let errors: Vec<&Value> = arr.iter().filter(|d| d["severity"] == "error").collect();
    assert_eq!(errors.len(), 1, "exactly one error diagnostic expected:\n{}", show(o));
    errors[0].clone()
}

/// A JSON label: (primary, message, start, end, line, end_line, file).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct JLabel {
    primary: bool,
    message: String,
    start: usize,
    end: usize,
    line: usize,
    end_line: usize,
    file: String,
}

fn labels(d: &Value) -> Vec<JLabel> {
    d["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| JLabel {
            primary: l["primary"].as_bool().unwrap(),
            message: l["message"].as_str().unwrap().to_string(),
            start: l["start"].as_u64().unwrap() as usize,
            end: l["end"].as_u64().unwrap() as usize,
            line: l["line"].as_u64().unwrap() as usize,
            end_line: l["end_line"].as_u64().unwrap() as usize,
            file: l["file"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn notes(d: &Value) -> Vec<String> {
    d["notes"].as_array().expect("notes").iter().map(|n| n.as_str().unwrap().to_string()).collect()
}

/// The E0801 part of rendered text (warnings before it are cut off).
fn e0801_text(text: &str) -> &str {
    let i = text.find("error[E0801]").unwrap_or_else(|| panic!("no E0801 in:\n{text}"));
    &text[i..]
}

/// Whether the rendered text shows a source line `n` in a gutter (`12 │`).
fn shows_line(text: &str, n: usize) -> bool {
    text.lines().any(|l| {
        let t = l.trim_start();
        t.strip_prefix(&n.to_string()).is_some_and(|r| r.trim_start().starts_with('│'))
    })
}

/// The text and JSON forms carry the same labels and notes: every JSON
/// label's message appears in the text as often as in the JSON, and its
/// first and last lines are shown; every note is in the text.
fn assert_same_labels(text: &str, d: &Value, what: &str) {
    let text = e0801_text(text);
    let ls = labels(d);
    assert!(!ls.is_empty(), "{what}: no labels in JSON");
    let msgs: BTreeSet<&str> = ls.iter().map(|l| l.message.as_str()).collect();
    for m in msgs {
        let in_json = ls.iter().filter(|l| l.message == m).count();
        let in_text = text.matches(m).count();
        assert_eq!(in_json, in_text, "{what}: label `{m}` appears {in_json}× in JSON, {in_text}× in text:\n{text}");
    }
    for l in &ls {
        assert!(shows_line(text, l.line), "{what}: text does not show line {} of label {l:?}:\n{text}", l.line);
        assert!(shows_line(text, l.end_line), "{what}: text does not show line {} of label {l:?}:\n{text}", l.end_line);
    }
    for n in notes(d) {
        // The text renders `note: …` as `= note: …` with continuation lines indented.
        let first = n.lines().next().unwrap();
        assert!(text.contains(first), "{what}: note `{first}` is not in the text:\n{text}");
        for cont in n.lines().skip(1) {
            assert!(text.contains(cont.trim()), "{what}: note line `{cont}` is not in the text:\n{text}");
        }
    }
}

// ---------------------------------------------------------------------------
// Snapshots of the case files

fn every_case_starts_with_a_comment() {
    let all = cases();
    assert!(all.len() >= 9, "expected the explain cases, found {}", all.len());
    for path in all {
        let src = std::fs::read_to_string(&path).unwrap();
        assert!(src.starts_with("//"), "{}: a case starts with a `//` comment saying what it shows", path.display());
    }
}

/// One case file: `explain` exits 1 with E0801 on stderr only, matching
/// the snapshot; `--format json` carries the same labels; `solve` exits 1
/// with the same explanation. Cases hold `heavy()`: explanations have time
/// bounds, so cases run one at a time (each still its own test).
fn case(path: &Path) -> Result<(), libtest_mimic::Failed> {
    let _heavy = heavy();
    let name = stem(path);
    let file = rel(path);
    let t = Instant::now();
    let o = deladas(&["explain", &file]);
    let dt = t.elapsed();
    if code(&o) != 1 {
        return Err(format!("{name}: expected exit 1 in {dt:.1?}\n{}", show(&o)).into());
    }
    let err = stderr(&o);
    if !err.contains("error[E0801]: goal is unsatisfiable") {
        return Err(format!("{name}: no E0801\n{}", show(&o)).into());
    }
    if !stdout(&o).is_empty() {
        return Err(format!("{name}: explain wrote to stdout\n{}", show(&o)).into());
    }
    let src = std::fs::read_to_string(path).unwrap();
    let snapshot = format!("----- SOURCE\n{src}\n----- STDERR\n{err}");
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::assert_snapshot!(name.clone(), snapshot);
    }));
    if ok.is_err() {
        return Err(format!("the snapshot differs for {name} (review with `cargo insta review`, or accept with `INSTA_UPDATE=always cargo test --test explain`)").into());
    }
    json_and_text_agree(&file, &o);
    solve_prints_the_same_explanation(&file, &o);
    Ok(())
}

/// Every `explain__*.snap` belongs to a case or to a test of this file.
fn no_stale_snapshots() {
    let names: BTreeSet<String> = cases().iter().map(|p| stem(p)).collect();
    for entry in std::fs::read_dir(root().join("tests/snapshots")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(name) = file.strip_prefix("explain__").and_then(|f| f.strip_suffix(".snap")) {
            assert!(names.contains(name), "{} has no case tests/explain/{name}.deladas; delete it", path.display());
        }
    }
}

/// `--format json` carries the labels and notes of the text.
fn json_and_text_agree(file: &str, text: &Output) {
    let json = deladas(&["explain", file, "--format", "json"]);
    assert_eq!(code(&json), 1, "{file}:\n{}", show(&json));
    let d = json_diag(&json);
    assert_eq!(d["code"], "E0801", "{file}: {d}");
    assert_eq!(d["file"], file, "{file}: the diagnostic names the goal file");
    assert!(labels(&d).iter().any(|l| l.primary), "{file}: no primary label");
    assert_same_labels(&stderr(text), &d, file);
}

/// `solve` on an unsatisfiable goal exits 1 with the same explanation.
fn solve_prints_the_same_explanation(file: &str, ex: &Output) {
    let so = deladas(&["solve", file]);
    assert_eq!(code(&so), 1, "{file}: solve on an unsatisfiable goal:\n{}", show(&so));
    assert!(stdout(&so).is_empty(), "{file}: solve wrote a DDD for an unsatisfiable goal:\n{}", show(&so));
    assert!(stderr(&so).contains("error[E0801]"), "{file}:\n{}", show(&so));
    assert_eq!(stderr(&so), stderr(ex), "{file}: solve and explain explain differently");
}

// ---------------------------------------------------------------------------
// The acceptance case

fn acceptance_three_of_four_clauses() {
    let file = "tests/explain/acceptance.deladas";
    let src = std::fs::read_to_string(root().join(file)).unwrap();
    let program = program_of(&src).unwrap();
    assert_eq!(program.clauses.len(), 4);
    let span_text = |i: usize| {
        let s = program.clauses[i].origin.loc.span;
        src[s.start as usize..s.end as usize].to_string()
    };
    let o = deladas(&["explain", file, "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let d = json_diag(&o);
    let ls = labels(&d);
    let primary: BTreeSet<(usize, usize)> = ls.iter().filter(|l| l.primary).map(|l| (l.start, l.end)).collect();
    let spans: Vec<(usize, usize)> =
        program.clauses.iter().map(|c| (c.origin.loc.span.start as usize, c.origin.loc.span.end as usize)).collect();
    // Clauses 0, 1, 3 conflict; clause 2 (`>= 1` Server) does not.
    let want: BTreeSet<(usize, usize)> = [spans[0], spans[1], spans[3]].into_iter().collect();
    assert_eq!(primary, want, "primary labels: {ls:#?}");
    assert_eq!(ls.iter().filter(|l| l.primary).count(), 3, "each conflicting clause is labelled once: {ls:#?}");
    assert!(span_text(2).contains(">= 1"), "clause 2 is the bystander: {}", span_text(2));
    for l in &ls {
        let overlaps = l.start < spans[2].1 && spans[2].0 < l.end;
        assert!(!overlaps, "the fourth clause is labelled: {l:?}");
    }
    // The resource limit: the port `down[2]` of Server, named in a secondary label.
    let res: Vec<&JLabel> = ls.iter().filter(|l| !l.primary).collect();
    assert_eq!(res.len(), 1, "one resource label: {ls:#?}");
    assert_eq!(&src[res[0].start..res[0].end], "down", "{:?}", res[0]);
    assert!(res[0].message.contains("at most 2 channels"), "{:?}", res[0]);
    // The text shows the same labels.
    let t = deladas(&["explain", file]);
    assert_eq!(code(&t), 1);
    assert_same_labels(&stderr(&t), &d, file);
    let text = stderr(&t);
    assert!(text.contains("acceptance.deladas:12:5"), "text points at the first conflicting clause:\n{text}");
    // Line 18 (the bystander) is shown as context only: no caret under it.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.trim_start().starts_with("18 │")).expect("line 18 is shown as context");
    assert!(!lines[at + 1].contains('^'), "the fourth clause is underlined:\n{text}");
    // The library agrees, and calls the set minimal.
    let avail: Vec<usize> = (0..program.hosts.len()).collect();
    match explain(&program, &avail, Duration::from_secs(30)).unwrap() {
        Explained::Unsatisfiable { conflict, repairs, .. } => {
            assert_eq!(conflict.clauses, vec![0, 1, 3]);
            assert!(conflict.minimal);
            assert!(!conflict.statically_false);
            assert_eq!(conflict.resources, vec![Resource::PortCapacity(1, 0)]);
            assert!(!repairs.is_empty());
        }
        other => panic!("expected unsatisfiable, got {other:?}"),
    }
}

/// A conflict through a stdlib `use` points at the use site, with the
/// pattern's clause as a secondary label in `<stdlib>/patterns.deladas`.
fn use_site_is_primary_and_pattern_clause_secondary() {
    let file = "tests/explain/pattern_use.deladas";
    let src = std::fs::read_to_string(root().join(file)).unwrap();
    let o = deladas(&["explain", file, "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let ls = labels(&json_diag(&o));
    let prim: Vec<&JLabel> = ls.iter().filter(|l| l.primary).collect();
    assert_eq!(prim.len(), 1, "{ls:#?}");
    assert_eq!(&src[prim[0].start..prim[0].end], "use replicate(Replica, 5)");
    assert!(prim[0].message.contains("`replicate`"), "{:?}", prim[0]);
    let pat: Vec<&JLabel> = ls.iter().filter(|l| !l.primary && l.file.contains("patterns")).collect();
    assert_eq!(pat.len(), 1, "{ls:#?}");
    assert_eq!(pat[0].message, "the pattern's clause");
    let stdlib = std::fs::read_to_string(root().join("stdlib/patterns.deladas")).unwrap();
    assert_eq!(&stdlib[pat[0].start..pat[0].end], "card(instancesof T in deployment) = k");
    // The `forall host … <= 1` clause of replicate is not needed: 3 hosts,
    // maxperhost 1, five asked for.
    assert!(ls.iter().any(|l| !l.primary && l.message.contains("per host on 3 hosts")), "{ls:#?}");
}

// ---------------------------------------------------------------------------
// Satisfiable goals

const SATISFIABLE: &str = "\
// Two workers on three hosts: satisfiable.
component Worker(code = \"w.xml\", ports = {p})
host h1 = host(zone = \"a\")
host h2 = host(zone = \"b\")
host h3 = host(zone = \"c\")
constraintset g = constraintset {
    card(instancesof Worker in deployment) >= 2
}
";

fn explain_on_a_satisfiable_goal_exits_0() {
    let s = Scratch::new("sat");
    let f = s.write("sat.deladas", SATISFIABLE);
    let o = deladas(&["explain", &f]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stderr(&o).contains("the goal is satisfiable"), "{}", show(&o));
    assert!(!stderr(&o).contains("error"), "{}", show(&o));
    let j = deladas(&["explain", &f, "--format", "json"]);
    assert_eq!(code(&j), 0, "{}", show(&j));
    let v: Value = serde_json::from_str(&stdout(&j)).unwrap();
    assert_eq!(v, serde_json::json!([]), "{}", show(&j));
    // And the library says the same.
    let p = program_of(SATISFIABLE).unwrap();
    let avail: Vec<usize> = (0..p.hosts.len()).collect();
    assert!(matches!(explain(&p, &avail, Duration::from_secs(10)).unwrap(), Explained::Satisfiable));
    // `solve` finds a configuration.
    let so = deladas(&["solve", &f]);
    assert_eq!(code(&so), 0, "{}", show(&so));
}

// ---------------------------------------------------------------------------
// Property: random small unsatisfiable goals

const COMPS: [&str; 3] = ["A", "B", "C"];

/// One generated goal: components with one port `p` each (single, `p[2]` or
/// `p[]`), 1–4 hosts in zones "a"/"b", and 2–5 clauses drawn from
/// templates (counts, per-host counts, wiring with `connectsto`, bounds on
/// `connectedto`, zone filters, reachability, mesh, conjunctions under
/// `forall`, and stdlib uses, top level or as a clause).
fn generate(data: &[u32]) -> String {
    let mut ch = Choices { data, pos: 0 };
    let ncomp = 1 + ch.pick(3);
    let mut out = String::from("import \"patterns\"\n");
    let mut ports = vec![];
    for name in COMPS.iter().take(ncomp) {
        let port = ["p[]", "p", "p[2]"][ch.pick(3)];
        ports.push(port);
        let mph = 1 + ch.pick(2);
        let mi = if ch.chance(20) { format!(", maxinstances = {}", 1 + ch.pick(3)) } else { String::new() };
        out.push_str(&format!("component {name}(code = \"{name}.xml\", ports = {{{port}}}, maxperhost = {mph}{mi})\n"));
    }
    let nhosts = 1 + ch.pick(4);
    for h in 0..nhosts {
        let zone = ["a", "b"][ch.pick(2)];
        out.push_str(&format!("host h{} = host(zone = \"{zone}\")\n", h + 1));
    }
    let nclauses = 2 + ch.pick(4);
    let mut body = vec![];
    let mut uses = vec![];
    for _ in 0..nclauses {
        let i = COMPS[ch.pick(ncomp)];
        let j = COMPS[ch.pick(ncomp)];
        let same = i == j;
        let clause = match ch.pick(16) {
            0 | 1 => format!("card(instancesof {i} in deployment) >= {}", 1 + ch.pick(4)),
            2 => format!("card(instancesof {i} in deployment) <= {}", ch.pick(4)),
            3 => format!("card(instancesof {i} in deployment) = {}", ch.pick(5)),
            4 | 5 => format!(
                "forall {i} x in deployment (exists {j} y in deployment ({}x.p connectsto y.p))",
                if same { "x != y  " } else { "" }
            ),
            6 => format!("forall {j} y in deployment (card({i} x connectedto y) <= {})", ch.pick(3)),
            7 => {
                let op = ["<=", ">=", "="][ch.pick(3)];
                format!("forall host h in deployment (card(instancesof {i} in h) {op} {})", ch.pick(3))
            }
            8 => format!("forall {i} x in deployment (hostof(x).zone = \"{}\")", ["a", "b", "c"][ch.pick(3)]),
            9 => format!(
                "exists {i} x in deployment (exists {j} y in deployment ({}x.p connectsto y.p))",
                if same { "x != y  " } else { "" }
            ),
            10 => {
                if ch.chance(50) {
                    format!("forall {i} x, y in deployment (reachable(x, y))")
                } else {
                    format!("forall {i} x, y in deployment (x != y implies x.p connectsto y.p)")
                }
            }
            11 => match ch.pick(3) {
                // Conjunctions under `forall` (and `implies`): explain tracks each part.
                0 => format!(
                    "forall host h in deployment (card(instancesof {i} in h) <= {}  card(instancesof {j} in h) >= {})",
                    ch.pick(3),
                    ch.pick(2)
                ),
                1 => format!(
                    "forall {i} x in deployment (hostof(x).zone = \"{}\"  exists {j} y in deployment ({}x.p connectsto y.p))",
                    ["a", "b"][ch.pick(2)],
                    if same { "x != y  " } else { "" }
                ),
                _ => format!(
                    "forall {i} x in deployment (x = x implies (hostof(x).zone = \"{}\" and card({j} y connectedto x) <= {}))",
                    ["a", "b"][ch.pick(2)],
                    ch.pick(2)
                ),
            },
            13 => {
                format!("card(instancesof {i} in deployment) + card(instancesof {j} in deployment) <= {}", ch.pick(5))
            }
            14 => {
                if ch.chance(10) {
                    format!("card(instancesof {i} in deployment) < 0")
                } else {
                    let op = ["<=", "="][ch.pick(2)];
                    format!(
                        "forall host h in deployment (card(instancesof {i} in h) + card(instancesof {j} in h) {op} {})",
                        ch.pick(2)
                    )
                }
            }
            _ => {
                let u = match ch.pick(5) {
                    0 => format!("use at_least({i}, {})", 1 + ch.pick(4)),
                    1 => format!("use at_most({i}, {})", ch.pick(3)),
                    2 => format!("use replicate({i}, {})", 1 + ch.pick(4)),
                    3 => format!("use one_per_host({i})"),
                    _ if !same => format!("use client_server({i}, {j}, p, p, {})", 1 + ch.pick(2)),
                    _ => format!("use at_least({i}, 2)"),
                };
                if ch.chance(50) {
                    uses.push(u);
                    continue;
                }
                u
            }
        };
        body.push(clause);
    }
    if body.is_empty() {
        body.push(format!("card(instancesof {} in deployment) >= 1", COMPS[0]));
    }
    out.push_str("constraintset g = constraintset {\n");
    for c in &body {
        out.push_str(&format!("    {c}\n"));
    }
    out.push_str("}\n");
    for u in &uses {
        out.push_str(&format!("{u}\n"));
    }
    out
}

/// The goal restricted to `clauses`; with `keep`, every port capacity and
/// `maxinstances` not in it is lifted (as `explain` does).
fn restrict(p: &Program, clauses: &[usize], keep: Option<&[Resource]>) -> Program {
    let mut q = p.clone();
    q.clauses = clauses.iter().map(|&i| p.clauses[i].clone()).collect();
    if let Some(keep) = keep {
        for (c, comp) in q.components.iter_mut().enumerate() {
            for (i, port) in comp.ports.iter_mut().enumerate() {
                if port.capacity.is_some() && !keep.contains(&Resource::PortCapacity(c, i)) {
                    port.capacity = None;
                }
            }
            if comp.maxinstances.is_some() && !keep.contains(&Resource::MaxInstances(c)) {
                comp.maxinstances = None;
            }
        }
    }
    q
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sat,
    Unsat,
    Unknown,
}

fn verdict(p: &Program) -> Result<Verdict, String> {
    let avail: Vec<usize> = (0..p.hosts.len()).collect();
    let opts = Options { timeout: Some(Duration::from_secs(20)), parsimony: false, ..Options::default() };
    // Capacities may be lifted: a yes/no answer, no DDD.
    match decide(p, &avail, &opts, &mut Quiet) {
        Ok((Outcome::Sat { .. }, _)) => Ok(Verdict::Sat),
        Ok((Outcome::Unsat { .. }, _)) => Ok(Verdict::Unsat),
        Ok((Outcome::Unknown(_), _)) => Ok(Verdict::Unknown),
        Ok((Outcome::Internal(m), _)) => Err(format!("internal error: {m}")),
        Ok((Outcome::Rejected(d), _)) => Err(format!("rejected by the evaluator: {d:?}")),
        Err(e) => Err(format!("solve failed: {e:?}")),
    }
}

/// Components a formula mentions, and whether it uses `reachable`.
#[derive(Default)]
struct Mentions {
    comps: BTreeSet<usize>,
    reach: bool,
}

impl Mentions {
    fn var(&mut self, p: &Program, v: usize) {
        if let Sort::Instance(c) = p.vars[v].sort {
            self.comps.insert(c);
        }
    }
    fn formula(&mut self, p: &Program, f: &Formula) {
        match &f.kind {
            FormulaKind::Const(_) | FormulaKind::Error => {}
            FormulaKind::Not(a) => self.formula(p, a),
            FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().for_each(|g| self.formula(p, g)),
            FormulaKind::Implies(a, b) => {
                self.formula(p, a);
                self.formula(p, b);
            }
            FormulaKind::Cmp(_, a, b) => {
                self.term(p, a);
                self.term(p, b);
            }
            FormulaKind::Connects { a, b, .. } | FormulaKind::Connected(a, b) => {
                self.var(p, *a);
                self.var(p, *b);
            }
            FormulaKind::Reachable(a, b) => {
                self.reach = true;
                self.var(p, *a);
                self.var(p, *b);
            }
            FormulaKind::Quant { var, domain, body, .. } => {
                self.var(p, *var);
                if let Domain::OnHost(t) = domain {
                    self.term(p, t);
                }
                self.formula(p, body);
            }
        }
    }
    fn term(&mut self, p: &Program, t: &Term) {
        match &t.kind {
            TermKind::Var(v) | TermKind::HostOf(v) => self.var(p, *v),
            TermKind::HostAttr(a, _) | TermKind::Neg(a) => self.term(p, a),
            TermKind::Count(b) | TermKind::Sum(b, _) => {
                self.var(p, b.var);
                if let Domain::OnHost(t) = &b.domain {
                    self.term(p, t);
                }
                if let Some(c) = &b.cond {
                    self.formula(p, c);
                }
                if let TermKind::Sum(_, s) = &t.kind {
                    self.term(p, s);
                }
            }
            TermKind::Add(v) => v.iter().for_each(|(_, x)| self.term(p, x)),
            TermKind::Mul(a, b) => {
                self.term(p, a);
                self.term(p, b);
            }
            _ => {}
        }
    }
}

/// For brute force: without `reachable`, a component the clauses do not
/// mention gets no instances (that never changes satisfiability).
fn for_brute(p: &Program) -> Program {
    let mut m = Mentions::default();
    for c in &p.clauses {
        m.formula(p, &c.formula);
    }
    let mut q = p.clone();
    q.upgrades.clear();
    if !m.reach {
        for (i, comp) in q.components.iter_mut().enumerate() {
            if !m.comps.contains(&i) {
                comp.maxinstances = Some(0);
            }
        }
    }
    q
}

const BRUTE: BruteLimits = BruteLimits { max_candidates: 1 << 15 };

/// The goal with a repair applied, and for `AddHosts` the goal with one host
/// fewer added.
fn apply_repair(p: &Program, r: &Repair) -> (Program, Option<Program>) {
    let mut q = p.clone();
    match r {
        Repair::DropClause(c) => {
            q.clauses.remove(*c);
        }
        Repair::DropClauses(cs) => {
            q.clauses = (0..p.clauses.len()).filter(|i| !cs.contains(i)).map(|i| p.clauses[i].clone()).collect();
        }
        Repair::RaiseCapacity(c, i, to) => {
            let port = &mut q.components[*c].ports[*i];
            port.capacity = Some(*to);
            port.variadic = true;
        }
        Repair::RaiseMaxPerHost(c, to) => q.components[*c].maxperhost = *to,
        Repair::RaiseMaxInstances(c, to) => q.components[*c].maxinstances = Some(*to),
        Repair::AddHosts { like, count } => {
            let with = |n: usize| {
                let mut q = p.clone();
                for k in 0..n {
                    let mut h = p.hosts[*like].clone();
                    h.name = format!("{}_clone{}", h.name, k + 1);
                    q.hosts.push(h);
                }
                q
            };
            return (with(*count), Some(with(count - 1)));
        }
        Repair::DeclareHosts(count) => {
            let with = |n: usize| {
                let mut q = p.clone();
                for k in 0..n {
                    q.hosts.push(deladas::check::ir::Host {
                        name: format!("new{}", k + 1),
                        loc: Default::default(),
                        attrs: vec![],
                    });
                }
                q
            };
            return (with(*count), Some(with(count - 1)));
        }
    }
    (q, None)
}

/// The goal made of these pieces (parts of clauses, as `explain` tracks
/// them); with `keep`, every port capacity and `maxinstances` not in it is
/// lifted.
fn pieces_program(p: &Program, pieces: &[Piece], keep: Option<&[Resource]>) -> Program {
    let mut q = restrict(p, &[], keep);
    q.clauses = pieces
        .iter()
        .map(|pc| deladas::check::ir::Clause {
            formula: pc.formula.clone(),
            origin: p.clauses[pc.clause].origin.clone(),
        })
        .collect();
    q
}

/// Secondary labels that tie a primary label to a clause (the others name
/// resources).
const CLAUSE_SECONDARIES: [&str; 3] =
    ["the pattern's clause", "this part of the pattern's clause", "in this clause; its other parts are not needed"];

/// The clause indices the CLI's JSON labels as primary. A label at a `use`
/// stands for the clauses of the pattern its secondary labels ("the
/// pattern's clause") point into; a label on a part of a clause is followed
/// by a secondary label on the whole clause.
fn labelled_clauses(p: &Program, d: &Value) -> Result<Vec<usize>, String> {
    let ls = labels(d);
    let span = |s: deladas::check::ir::Span| (s.start as usize, s.end as usize);
    let inside =
        |outer: deladas::check::ir::Span, l: &JLabel| outer.start as usize <= l.start && l.end <= outer.end as usize;
    let mut out = vec![];
    for (k, l) in ls.iter().enumerate() {
        if !l.primary {
            continue;
        }
        let followers: Vec<&JLabel> = ls[k + 1..]
            .iter()
            .take_while(|n| !n.primary)
            .filter(|n| CLAUSE_SECONDARIES.contains(&n.message.as_str()))
            .collect();
        if l.message.starts_with("through this use of") {
            if followers.is_empty() {
                return Err(format!("a use-site label without the pattern's clause after it: {ls:#?}"));
            }
            for pat in followers {
                let found: Vec<usize> = (0..p.clauses.len())
                    .filter(|&i| {
                        let o = &p.clauses[i].origin;
                        match o.use_site {
                            // A top-level use: the pattern's clause, or a part of it.
                            Some(u) => span(u.span) == (l.start, l.end) && inside(o.loc.span, pat),
                            // A use written as a clause.
                            None => span(o.loc.span) == (l.start, l.end),
                        }
                    })
                    .collect();
                match found.as_slice() {
                    [i] => out.push(*i),
                    _ => return Err(format!("use label {l:?} with {pat:?} matches clauses {found:?}")),
                }
            }
        } else {
            // A whole clause, or a part of one: then the clause carries an
            // "in this clause" label.
            let exact: Vec<usize> = (0..p.clauses.len())
                .filter(|&i| {
                    p.clauses[i].origin.use_site.is_none() && span(p.clauses[i].origin.loc.span) == (l.start, l.end)
                })
                .collect();
            let found: Vec<usize> = if !exact.is_empty() {
                exact
            } else {
                (0..p.clauses.len())
                    .filter(|&i| {
                        let o = &p.clauses[i].origin;
                        o.use_site.is_none()
                            && inside(o.loc.span, l)
                            && ls.iter().any(|w| {
                                !w.primary
                                    && w.message.starts_with("in this clause")
                                    && (w.start, w.end) == span(o.loc.span)
                            })
                    })
                    .collect()
            };
            match found.as_slice() {
                [i] => out.push(*i),
                _ => return Err(format!("primary label {l:?} matches clauses {found:?}")),
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[derive(Debug, Default)]
struct Stats {
    unsat: usize,
    sat_rejected: usize,
    statically_false: usize,
    conflict_sizes: Vec<usize>,
    with_resources: usize,
    with_uses: usize,
    brute_confirmed: usize,
    brute_too_large: usize,
    not_minimal: usize,
    /// Goals whose conflict names parts of clauses.
    with_parts: usize,
    slowest: Duration,
    slowest_goal: String,
}

fn seed() -> [u8; 32] {
    let n: u64 = std::env::var("DELADAS_PROPTEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xe4_91a1);
    let mut s = [0u8; 32];
    for (i, b) in s.iter_mut().enumerate() {
        *b = (n >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
    }
    s
}

/// Checks one goal; `Ok(None)` when it is satisfiable (rejected).
fn check_explained(text: &str, stats: &RefCell<Stats>, scratch: &Scratch) -> Result<Option<()>, String> {
    let program = program_of(text).map_err(|e| format!("the generator wrote a goal with errors:\n{e}"))?;
    match verdict(&program)? {
        Verdict::Sat => return Ok(None),
        Verdict::Unknown => return Err("the solver gave up on a tiny goal".into()),
        Verdict::Unsat => {}
    }
    let avail: Vec<usize> = (0..program.hosts.len()).collect();
    let explained = explain(&program, &avail, Duration::from_secs(60)).map_err(|e| format!("explain: {e:?}"))?;
    let Explained::Unsatisfiable { conflict, repairs, repairs_complete } = explained else {
        return Err(format!("solve says unsatisfiable, explain says {explained:?}"));
    };
    let Conflict { clauses, resources, minimal, statically_false, .. } = &conflict;
    let mut st = stats.borrow_mut();
    st.unsat += 1;
    st.conflict_sizes.push(clauses.len());
    st.statically_false += *statically_false as usize;
    st.with_resources += (!resources.is_empty()) as usize;
    st.with_uses += clauses.iter().any(|&c| program.clauses[c].origin.use_site.is_some()) as usize;
    drop(st);
    if clauses.is_empty() {
        return Err(format!("an empty conflict: {conflict:?}"));
    }
    if clauses.windows(2).any(|w| w[0] >= w[1]) || clauses.iter().any(|&c| c >= program.clauses.len()) {
        return Err(format!("conflict clauses not sorted, distinct and in range: {clauses:?}"));
    }
    // (a) The reported set is unsatisfiable, with every resource and with
    // only the reported ones.
    let with_all = restrict(&program, clauses, None);
    if verdict(&with_all)? != Verdict::Unsat {
        return Err(format!("the reported clauses {clauses:?} are satisfiable on their own"));
    }
    let with_reported = restrict(&program, clauses, Some(resources));
    if verdict(&with_reported)? != Verdict::Unsat {
        return Err(format!(
            "the reported clauses {clauses:?} with only the reported resources {resources:?} are satisfiable"
        ));
    }
    // The reported pieces (parts of clauses) are unsatisfiable on their own,
    // with only the reported resources, and each is needed.
    // (When every piece is a whole clause, this is the check above and (b).)
    let parts = conflict.pieces.iter().any(|p| !p.whole);
    let with_pieces = pieces_program(&program, &conflict.pieces, Some(resources));
    if parts && verdict(&with_pieces)? != Verdict::Unsat {
        return Err(format!("the reported pieces are satisfiable: {:#?}", conflict.pieces));
    }
    if parts && *minimal && conflict.pieces.len() > 1 {
        for k in 0..conflict.pieces.len() {
            let mut rest = conflict.pieces.clone();
            let gone = rest.remove(k);
            match verdict(&pieces_program(&program, &rest, None))? {
                Verdict::Sat => {}
                v => return Err(format!("not minimal: without piece {gone:?}, the rest is {v:?}")),
            }
        }
    }
    for p in &conflict.pieces {
        if !clauses.contains(&p.clause) {
            return Err(format!("a piece of clause {} outside the conflict {clauses:?}", p.clause));
        }
    }
    stats.borrow_mut().with_parts += parts as usize;
    // Brute force agrees where it can.
    match enumerate(&for_brute(&with_all), &BRUTE) {
        BruteResult::NotFound { .. } => stats.borrow_mut().brute_confirmed += 1,
        BruteResult::TooLarge { .. } => stats.borrow_mut().brute_too_large += 1,
        BruteResult::Error(e) => return Err(format!("brute force: {e}")),
        BruteResult::Found { world, .. } => {
            let xml = deladas::ddd::to_xml(&world.to_deployment(&with_all));
            return Err(format!("brute force satisfies the reported clauses {clauses:?}:\n{xml}"));
        }
    }
    // (b) Minimal: dropping any clause, or lifting any reported limit, makes
    // it satisfiable.
    if *minimal {
        for &c in clauses {
            let rest: Vec<usize> = clauses.iter().copied().filter(|&x| x != c).collect();
            match verdict(&restrict(&program, &rest, None))? {
                Verdict::Sat => {}
                v => return Err(format!("not minimal: without clause {c}, {rest:?} is {v:?}")),
            }
        }
        for r in resources {
            if matches!(r, Resource::Placement(_)) {
                continue;
            }
            let keep: Vec<Resource> = resources.iter().copied().filter(|x| x != r).collect();
            match verdict(&restrict(&program, clauses, Some(&keep)))? {
                Verdict::Sat => {}
                v => return Err(format!("not minimal: lifting {r:?}, the conflict is {v:?}")),
            }
        }
    } else {
        stats.borrow_mut().not_minimal += 1;
    }
    if *statically_false && clauses.len() != 1 {
        return Err(format!("statically false with {} clauses", clauses.len()));
    }
    // Every repair repairs (and for hosts, one fewer does not).
    for r in &repairs {
        let (fixed, fewer) = apply_repair(&program, r);
        if verdict(&fixed)? != Verdict::Sat {
            return Err(format!("repair {r:?} does not make the goal satisfiable"));
        }
        if let Some(fewer) = fewer {
            if verdict(&fewer)? != Verdict::Unsat {
                return Err(format!("repair {r:?} says fewer hosts do not do, but one fewer does"));
            }
        }
    }
    // The hosts the goal needs are the hosts of the (checked) host repair.
    if let Some(n) = conflict.hosts_needed {
        let added = repairs.iter().find_map(|r| match r {
            Repair::AddHosts { count, .. } => Some(*count),
            _ => None,
        });
        if added != Some(n - program.hosts.len()) {
            return Err(format!("{n} hosts needed, but the host repair is {repairs:?}"));
        }
    }
    // Dropping a conflicting clause is a repair exactly when the goal
    // without it is satisfiable.
    for &c in clauses {
        let rest: Vec<usize> = (0..program.clauses.len()).filter(|&x| x != c).collect();
        let offered = repairs.contains(&Repair::DropClause(c));
        if repairs_complete && !offered && verdict(&restrict(&program, &rest, None))? == Verdict::Sat {
            return Err(format!("dropping clause {c} repairs the goal, but is not offered: {repairs:?}"));
        }
    }
    // A reported placement bound (maxperhost × hosts) is needed: with room
    // for every count the generator asks for, the reported pieces are
    // satisfiable.
    for r in resources {
        if let Resource::Placement(c) = *r {
            let mut q = pieces_program(&program, &conflict.pieces, Some(resources));
            q.components[c].maxperhost = 9;
            if verdict(&q)? != Verdict::Sat {
                return Err(format!("the reported placement bound of component {c} is not needed"));
            }
        }
    }
    // (c) The CLI labels exactly the reported clauses and resources.
    let f = scratch.write("goal.deladas", text);
    let o = deladas(&["explain", &f, "--format", "json"]);
    if code(&o) != 1 {
        return Err(format!("the CLI does not exit 1:\n{}", show(&o)));
    }
    let d = json_diag(&o);
    let labelled = labelled_clauses(&program, &d)?;
    if &labelled != clauses {
        return Err(format!("the CLI labels clauses {labelled:?}, the library reports {clauses:?}"));
    }
    let resource_labels =
        labels(&d).iter().filter(|l| !l.primary && !CLAUSE_SECONDARIES.contains(&l.message.as_str())).count();
    if resource_labels != resources.len() {
        return Err(format!("the CLI labels {resource_labels} resources, the library reports {resources:?}"));
    }
    Ok(Some(()))
}

fn explained_conflicts_are_unsatisfiable_minimal_and_labelled_exactly() {
    let _heavy = heavy();
    let cases: u32 = std::env::var("DELADAS_EXPLAIN_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let config = Config {
        cases,
        failure_persistence: None,
        max_global_rejects: 20 * cases,
        max_shrink_iters: 300,
        max_shrink_time: 60_000,
        rng_algorithm: RngAlgorithm::ChaCha,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed()));
    let stats = RefCell::new(Stats::default());
    let scratch = Scratch::new("prop");
    let started = Instant::now();
    let strategy = prop::collection::vec(any::<u32>(), 16..80);
    let result = runner.run(&strategy, |data| {
        let text = generate(&data);
        let t = Instant::now();
        let r = check_explained(&text, &stats, &scratch)
            .map_err(|e| TestCaseError::fail(format!("{e}\n--- goal ---\n{text}")))?;
        let dt = t.elapsed();
        if r.is_none() {
            stats.borrow_mut().sat_rejected += 1;
            return Err(TestCaseError::reject("satisfiable"));
        }
        if std::env::var("DELADAS_PROPTEST_VERBOSE").is_ok() {
            println!("=== unsat in {dt:.1?}\n{text}");
        }
        let mut s = stats.borrow_mut();
        if dt > s.slowest {
            s.slowest = dt;
            s.slowest_goal = text;
        }
        Ok(())
    });
    if let Err(e) = result {
        match e {
            TestError::Fail(reason, data) => {
                panic!("property failed: {reason}\n--- minimal goal ---\n{}", generate(&data))
            }
            TestError::Abort(reason) => panic!("proptest aborted: {reason}"),
        }
    }
    let s = stats.into_inner();
    let mut sizes = [0usize; 6];
    for &n in &s.conflict_sizes {
        sizes[n.min(5)] += 1;
    }
    println!(
        "explain: {} unsatisfiable goals ({} satisfiable ones rejected) in {:.1?}; conflict sizes 1..5+: {:?}; \
         {} with resources, {} through a use, {} statically false, {} not shown minimal; \
         brute force confirmed {}, {} too large; \
         {} naming parts of clauses; slowest {:.1?}:\n{}",
        s.unsat,
        s.sat_rejected,
        started.elapsed(),
        &sizes[1..],
        s.with_resources,
        s.with_uses,
        s.statically_false,
        s.not_minimal,
        s.brute_confirmed,
        s.brute_too_large,
        s.with_parts,
        s.slowest,
        s.slowest_goal,
    );
    assert!(
        s.conflict_sizes.iter().filter(|&&n| n >= 2).count() * 4 >= s.unsat,
        "too few multi-clause conflicts: {s:?}"
    );
    assert!(s.brute_confirmed * 4 >= s.unsat, "brute force confirms too few conflicts: {s:?}");
}

// ---------------------------------------------------------------------------
// Specific situations: what an operator should see (each was once a known
// weakness; `tests/explain/` has a snapshot of most of them too).

/// Runs `explain` on goal text in a scratch file: (text output, JSON diagnostic).
fn explain_text_and_json(name: &str, goal: &str) -> (String, Value) {
    let s = Scratch::new(name);
    let f = s.write("goal.deladas", goal);
    let t = deladas(&["explain", &f]);
    assert_eq!(code(&t), 1, "{}", show(&t));
    let j = deladas(&["explain", &f, "--format", "json"]);
    assert_eq!(code(&j), 1, "{}", show(&j));
    (stderr(&t), json_diag(&j))
}

/// Two `C` are needed (each needs another), `maxperhost = 2` allows them on
/// the one host, `maxinstances = 1` forbids them. The grounding folds
/// `maxinstances` into the number of slots (`min(maxperhost, maxinstances)`
/// per host), so the solver has no assumption literal for it; `explain`
/// tests it by lifting, names it, and repairs it. The same with
/// `maxinstances = 0` and an `exists` clause.
fn maxinstances_folded_into_slots_is_named_and_repaired() {
    let goal = "\
component C(code = \"c.xml\", ports = {p[]}, maxperhost = 2, maxinstances = 1)
host h1 = host(zone = \"a\")
constraintset g = constraintset {
    card(instancesof C in deployment) >= 1
    forall C x in deployment (exists C y in deployment (x != y  x.p connectsto y.p))
}
";
    let (text, d) = explain_text_and_json("mi1", goal);
    let ls = labels(&d);
    assert!(
        ls.iter().any(|l| !l.primary && l.message == "at most 1 instance of `C` (`maxinstances = 1`)"),
        "the conflict needs `maxinstances = 1` but does not name it:\n{text}"
    );
    assert!(!ls.iter().any(|l| l.message.contains("per host")), "the hosts are not the limit:\n{text}");
    assert!(
        text.contains("help: `maxinstances = 2` on `C` makes this goal satisfiable"),
        "the repair is missing:\n{text}"
    );

    let goal0 = "\
component W(code = \"w.xml\", ports = {p}, maxinstances = 0)
host h1 = host(zone = \"a\")
constraintset g = constraintset {
    exists W w in deployment ( w = w )
}
";
    let (text, d) = explain_text_and_json("mi0", goal0);
    assert!(
        labels(&d).iter().any(|l| !l.primary && l.message.contains("`maxinstances = 0`")),
        "`maxinstances = 0` is the whole reason, and it is not named:\n{text}"
    );
    assert!(text.contains("`maxinstances = 1` on `W`"), "the repair is missing:\n{text}");
}

/// A `use` written as a clause inside a constraintset is one clause in
/// force (the conjunction of the pattern's clauses): the `use` is the
/// primary label, and the pattern's clauses that conflict are secondary.
fn use_as_a_clause_is_labelled_as_a_use() {
    let goal = "\
import \"patterns\"
component C(code = \"c.xml\", ports = {up}, maxperhost = 3)
component S(code = \"s.xml\", ports = {down[]}, maxinstances = 2)
host h1 = host(zone = \"a\")
host h2 = host(zone = \"b\")
host h3 = host(zone = \"c\")
constraintset g = constraintset {
    card(instancesof C in deployment) >= 3
    use client_server(C, S, up, down, 1)
}
";
    let (text, d) = explain_text_and_json("useclause", goal);
    let ls = labels(&d);
    let uses: Vec<&JLabel> =
        ls.iter().filter(|l| l.primary && l.message.starts_with("through this use of `client_server`")).collect();
    assert_eq!(uses.len(), 1, "the use site is labelled once, as a use:\n{text}");
    assert_eq!(&goal[uses[0].start..uses[0].end], "use client_server(C, S, up, down, 1)");
    // Both of the pattern's clauses are needed (every C needs an S; each S
    // serves one C; at most 2 S for 3 C).
    let pattern: Vec<&JLabel> = ls
        .iter()
        .filter(|l| !l.primary && l.file.contains("patterns") && l.message == "the pattern's clause")
        .collect();
    assert_eq!(pattern.len(), 2, "the pattern's conflicting clauses are shown:\n{text}");
    assert!(ls.iter().any(|l| !l.primary && l.message.contains("`maxinstances = 2`")), "{text}");
    assert!(text.contains("help: dropping the `use` of `client_server` at line 9"), "{text}");
}

/// Three distinct instances on two hosts with `maxperhost = 1`: the search
/// (not counting) finds the conflict; raising `maxperhost` repairs it, so
/// the placement bound is named.
fn placement_is_named_when_the_search_finds_the_conflict() {
    let goal = "\
component W(code = \"w.xml\", ports = {p})
host h1 = host(zone = \"a\")
host h2 = host(zone = \"b\")
constraintset g = constraintset {
    exists W a in deployment (
        exists W b in deployment (
            exists W c in deployment ( a != b  b != c  a != c )
        )
    )
}
";
    let (text, d) = explain_text_and_json("three", goal);
    assert!(
        labels(&d).iter().any(|l| !l.primary && l.message == "at most 1 per host on 2 hosts"),
        "the placement bound is not named:\n{text}"
    );
    assert!(text.contains("this clause cannot hold with the resources"), "{text}");
    assert!(text.contains("help: `maxperhost = 2` on `W`"), "{text}");
    assert!(text.contains("help: adding one more host like `h1`"), "{text}");
}

/// Host counts read well for one host and for none; a goal without hosts
/// is told to declare one.
fn host_counts_are_worded_for_one_and_none() {
    let one = "\
component W(code = \"w.xml\", ports = {p})
host h1 = host(zone = \"a\")
constraintset g = constraintset {
    card(instancesof W in deployment) >= 2
}
";
    let (text, _) = explain_text_and_json("onehost", one);
    assert!(!text.contains("on 1 hosts"), "plural for one host:\n{text}");
    assert!(text.contains("note: 1 host is available: `h1`; the goal needs at least 2 hosts like them"), "{text}");
    assert!(text.contains("at most 1 per host on 1 host"), "{text}");
    let none = "\
component W(code = \"w.xml\", ports = {p})
constraintset g = constraintset {
    card(instancesof W in deployment) >= 1
}
";
    let (text, d) = explain_text_and_json("nohost", none);
    assert!(!notes(&d).iter().any(|n| n.trim_end().ends_with("available:")), "an empty host list:\n{text}");
    assert!(!text.contains("0 hosts") && !text.contains("on no host"), "{text}");
    assert!(text.contains("no host is available: the goal declares none"), "{text}");
    assert!(text.contains("help: declaring a host (e.g. `host h1 = host()`)"), "no host repair:\n{text}");
}

/// Each counting fact says where it comes from: which limit (maxperhost ×
/// hosts, or maxinstances), which components and which port.
fn counting_reasons_name_the_limit_and_components() {
    let o = deladas(&["explain", "tests/explain/too_few_hosts.deladas"]);
    let text = stderr(&o);
    let line = text.lines().find(|l| l.contains("#Store <= 3")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("(`maxperhost = 1` on `Store` × 3 hosts)"), "{line}");
    let o = deladas(&["explain", "tests/explain/acceptance.deladas"]);
    let text = stderr(&o);
    let line = text.lines().find(|l| l.contains("#Client <= 2·#Server")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(
            "every `Client` needs a channel to a `Server` (line 13), and port `down` of `Server` holds at most 2"
        ),
        "{line}"
    );
}

/// An attribute filter that leaves no host: a note names the value no host
/// has and the values they have; the illustration shows an instance on a
/// host of the wrong zone.
fn attribute_filter_names_the_value_no_host_has() {
    let o = deladas(&["explain", "tests/explain/attribute_filter.deladas", "--format", "json"]);
    let d = json_diag(&o);
    let ns = notes(&d);
    assert!(
        ns.iter().any(|n| n.starts_with("note: no available host has zone \"eu\"")
            && n.contains("\"us\"")
            && n.contains("\"ap\"")),
        "no note says no host is in zone \"eu\": {ns:#?}"
    );
    assert!(
        ns.iter().any(|n| n.contains("for Db d = Db@h") && n.contains("is \"us\"")),
        "no grounded illustration: {ns:#?}"
    );
}

/// A repair for a clause that came through a `use` talks about the use (the
/// operator drops or changes the use, not one clause of the pattern).
fn repair_for_a_use_talks_about_the_use() {
    let o = deladas(&["explain", "tests/explain/pattern_use.deladas"]);
    let text = stderr(&o);
    let help = text.lines().find(|l| l.contains("help: dropping")).unwrap_or_else(|| panic!("{text}"));
    assert!(help.contains("dropping the `use` of `replicate` at line 9"), "{help}");
}

/// Directed ports make `reachable(k, s)` impossible (Sink has only input
/// ports): a note says so, naming the ports and their directions.
fn unreachable_names_the_port_directions() {
    let o = deladas(&["explain", "tests/explain/unreachable.deladas", "--format", "json"]);
    let d = json_diag(&o);
    let ns = notes(&d);
    let note = ns
        .iter()
        .find(|n| n.starts_with("note: no path of channels can lead from a `Sink` to a `Sensor`"))
        .unwrap_or_else(|| panic!("{ns:#?}"));
    assert!(note.contains("`in[]: input`") && note.contains("`out: output`"), "{note}");
}

/// More hosts are tried as clones of each kind of host (by the attributes
/// the goal reads): three `Db` must run in zone "eu", only `h2` is in "eu",
/// so two more hosts like `h2` repair the goal (clones of `h1` never do).
fn host_repair_clones_the_host_that_helps() {
    let goal = "\
component Db(code = \"db.xml\", ports = {p})
host h1 = host(zone = \"us\")
host h2 = host(zone = \"eu\")
constraintset residency = constraintset {
    card(instancesof Db in deployment) >= 3
    forall Db d in deployment (hostof(d).zone = \"eu\")
}
";
    let (text, _) = explain_text_and_json("clone", goal);
    assert!(text.contains("adding 2 more hosts like `h2` makes this goal satisfiable (fewer do not)"), "{text}");
    assert!(!text.contains("like `h1`"), "{text}");
}

/// A clause whose body is a conjunction under `forall`: only the part that
/// conflicts is the primary label, its clause a secondary one; the library
/// reports the part, and the goal made of the reported parts is
/// unsatisfiable while the rest of the clause is not needed.
fn a_part_of_a_clause_is_labelled_with_its_clause() {
    let file = "tests/explain/part_of_clause.deladas";
    let src = std::fs::read_to_string(root().join(file)).unwrap();
    let o = deladas(&["explain", file, "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let ls = labels(&json_diag(&o));
    let prim: Vec<&str> = ls.iter().filter(|l| l.primary).map(|l| &src[l.start..l.end]).collect();
    assert_eq!(prim, ["card(instancesof Db in h) = 0", "card(instancesof Db in deployment) >= 1"], "{ls:#?}");
    let clause = ls.iter().find(|l| !l.primary && l.message.starts_with("in this clause")).expect("the clause");
    assert!(src[clause.start..clause.end].starts_with("forall host h in deployment ("), "{clause:?}");
    let program = program_of(&src).unwrap();
    let avail: Vec<usize> = (0..program.hosts.len()).collect();
    let Explained::Unsatisfiable { conflict, .. } = explain(&program, &avail, Duration::from_secs(30)).unwrap() else {
        panic!("unsatisfiable")
    };
    assert_eq!(conflict.clauses, vec![0, 1]);
    assert_eq!(conflict.pieces.len(), 2);
    assert!(!conflict.pieces[0].whole && conflict.pieces[1].whole, "{:#?}", conflict.pieces);
    assert!(conflict.minimal);
    assert_eq!(verdict(&pieces_program(&program, &conflict.pieces, None)).unwrap(), Verdict::Unsat);
}

/// Two independent conflicts: no single clause dropped repairs the goal, so
/// the repair is the smallest set of clauses to drop, one from each.
fn two_conflicts_need_a_correction_set_of_two() {
    let file = "tests/explain/two_conflicts.deladas";
    let src = std::fs::read_to_string(root().join(file)).unwrap();
    let program = program_of(&src).unwrap();
    let avail: Vec<usize> = (0..program.hosts.len()).collect();
    let Explained::Unsatisfiable { repairs, repairs_complete, .. } =
        explain(&program, &avail, Duration::from_secs(30)).unwrap()
    else {
        panic!("unsatisfiable")
    };
    assert!(repairs_complete);
    assert!(!repairs.iter().any(|r| matches!(r, Repair::DropClause(_))), "{repairs:?}");
    let sets: Vec<&Vec<usize>> = repairs
        .iter()
        .filter_map(|r| match r {
            Repair::DropClauses(v) => Some(v),
            _ => None,
        })
        .collect();
    assert_eq!(sets.len(), 4, "one clause of each conflict, every way: {repairs:?}");
    for v in sets {
        assert_eq!(v.len(), 2);
        assert!(v[0] < 2 && v[1] >= 2, "one clause from each conflict: {v:?}");
        let (fixed, _) = apply_repair(&program, &Repair::DropClauses(v.clone()));
        assert_eq!(verdict(&fixed).unwrap(), Verdict::Sat);
    }
    let o = deladas(&["explain", file]);
    assert!(
        stderr(&o).contains("help: dropping the clauses at lines 8 and 10 together makes the goal satisfiable"),
        "{}",
        show(&o)
    );
}

/// Found by the property test as its slowest case: four hosts, Bs with a
/// single-channel port must be connected, As (`p[2]`) may relay. It is
/// unsatisfiable (every B is a leaf and the relays form a path, which has
/// two leaves). The reachability cuts alone do not converge (it used to
/// run 120 s); the exact encoding they fall back to carries the degree
/// argument (a connected set of slots has Σ capacity ≥ 2·|set| − 2, so at
/// most two leaves hang on relays of capacity 2), which refutes it at once.
fn the_solver_refutes_a_tiny_connectivity_goal() {
    let goal = "\
component A(code = \"A.xml\", ports = {p[2]}, maxperhost = 2)
component B(code = \"B.xml\", ports = {p}, maxperhost = 1)
host h1 = host(zone = \"b\")
host h2 = host(zone = \"a\")
host h3 = host(zone = \"b\")
host h4 = host(zone = \"a\")
constraintset g = constraintset {
    forall A y in deployment (card(A x connectedto y) <= 2)
    forall A x, y in deployment (reachable(x, y))
    forall B x, y in deployment (reachable(x, y))
    card(instancesof B in deployment) >= 3
}
";
    let p = program_of(goal).unwrap();
    let avail: Vec<usize> = (0..p.hosts.len()).collect();
    let opts = Options { timeout: Some(Duration::from_secs(5)), parsimony: false, ..Options::default() };
    let (out, _) = solve(&p, &avail, &opts, &mut Quiet).unwrap();
    assert!(matches!(out, Outcome::Unsat { .. }), "expected unsatisfiable within 5 s, got {out:?}");
}

/// The promise that the same goal gives the same explanation on a fast or a
/// slow machine: the slowest shipped case (`pigeonhole`, whose repair search
/// re-solves 20-host variants) is explained while two busy threads (one per
/// core of the CI machine) compete for the CPU, and the output is the
/// snapshot's. The repair search and the minimisation are bounded by work
/// (Z3's resource count), not by the clock, so only the outer `--timeout`
/// (given generously here) could change the answer.
fn snapshot_holds_while_both_cores_are_busy() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let _heavy = heavy();
    let name = "pigeonhole";
    let file = format!("tests/explain/{name}.deladas");
    let snap = std::fs::read_to_string(root().join(format!("tests/snapshots/explain__{name}.snap"))).unwrap();
    let want = snap.split_once("----- STDERR\n").map(|(_, e)| e.to_string()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                // Bounded: the test stops it, and it stops itself after 5 minutes.
                let t = Instant::now();
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(300) {
                    for i in 0..100_000u64 {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
                    }
                    std::hint::black_box(x);
                }
            })
        })
        .collect();
    let t = Instant::now();
    // A generous outer time limit: reaching it is the one outcome that may
    // depend on speed (and it gives up as a whole, E0802).
    let o = deladas(&["explain", &file, "--timeout", "300"]);
    let dt = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    for b in busy {
        b.join().unwrap();
    }
    assert_eq!(code(&o), 1, "{name} under load: expected exit 1 in {dt:.1?}\n{}", show(&o));
    let got = stderr(&o);
    assert!(
        got.trim_end() == want.trim_end(),
        "{name} under load ({dt:.1?}): the explanation differs from the snapshot\n--- got\n{got}\n--- want\n{want}"
    );
}

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = vec![];
    type Whole<'a> = (&'a str, fn(), Option<&'a str>);
    let whole: &[Whole] = &[
        (
            "explained_conflicts_are_unsatisfiable_minimal_and_labelled_exactly",
            explained_conflicts_are_unsatisfiable_minimal_and_labelled_exactly,
            None,
        ),
        ("every_case_starts_with_a_comment", every_case_starts_with_a_comment, None),
        ("no_stale_snapshots", no_stale_snapshots, None),
        ("acceptance_three_of_four_clauses", acceptance_three_of_four_clauses, None),
        ("use_site_is_primary_and_pattern_clause_secondary", use_site_is_primary_and_pattern_clause_secondary, None),
        ("explain_on_a_satisfiable_goal_exits_0", explain_on_a_satisfiable_goal_exits_0, None),
        (
            "maxinstances_folded_into_slots_is_named_and_repaired",
            maxinstances_folded_into_slots_is_named_and_repaired,
            None,
        ),
        ("use_as_a_clause_is_labelled_as_a_use", use_as_a_clause_is_labelled_as_a_use, None),
        (
            "placement_is_named_when_the_search_finds_the_conflict",
            placement_is_named_when_the_search_finds_the_conflict,
            None,
        ),
        ("host_counts_are_worded_for_one_and_none", host_counts_are_worded_for_one_and_none, None),
        ("counting_reasons_name_the_limit_and_components", counting_reasons_name_the_limit_and_components, None),
        ("attribute_filter_names_the_value_no_host_has", attribute_filter_names_the_value_no_host_has, None),
        ("repair_for_a_use_talks_about_the_use", repair_for_a_use_talks_about_the_use, None),
        ("unreachable_names_the_port_directions", unreachable_names_the_port_directions, None),
        ("host_repair_clones_the_host_that_helps", host_repair_clones_the_host_that_helps, None),
        ("a_part_of_a_clause_is_labelled_with_its_clause", a_part_of_a_clause_is_labelled_with_its_clause, None),
        ("two_conflicts_need_a_correction_set_of_two", two_conflicts_need_a_correction_set_of_two, None),
        ("the_solver_refutes_a_tiny_connectivity_goal", the_solver_refutes_a_tiny_connectivity_goal, None),
        ("snapshot_holds_while_both_cores_are_busy", snapshot_holds_while_both_cores_are_busy, None),
    ];
    for &(name, f, ignored) in whole {
        let t = libtest_mimic::Trial::test(name, move || {
            f();
            Ok(())
        });
        trials.push(t.with_ignored_flag(ignored.is_some()));
    }
    // The cases hold `heavy()` one at a time: after the other tests, so a
    // thread waiting for the lock does not hold up tests that need none.
    for path in cases() {
        trials.push(libtest_mimic::Trial::test(format!("case::{}", stem(&path)), move || case(&path)));
    }
    libtest_mimic::run(&args, trials).exit();
}
