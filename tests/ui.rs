//! File-driven tests of `check`: every `tests/ui/pass/*.deladas` must check
//! with no diagnostics at all; every `tests/ui/fail/*.deladas` is snapshotted
//! with its source and rendered diagnostics in one file
//! (`tests/snapshots/ui/NAME.snap`). Files under `tests/ui/lib/` are only
//! imported by cases. See tests/README.md.
//!
//! One test per file (libtest-mimic, `harness = false`): `pass::NAME` and
//! `fail::NAME`, so `cargo test --test ui -- fail::NAME` runs one case and
//! cases run in parallel.

mod common;
use common::{deladas_files, stem};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

use deladas::diagnostics::Code;

fn root() -> &'static Path {
    Path::new(env!("DELADAS_ROOT"))
}

fn cases(dir: &str) -> Vec<PathBuf> {
    deladas_files(&format!("tests/ui/{dir}"))
}

/// Checks a case by its path relative to the crate, so snapshots show
/// stable file names.
fn check(path: &Path) -> (deladas::diagnostics::Sources, deladas::check::Checked) {
    let rel = path.strip_prefix(root()).unwrap_or(path);
    deladas::check::check_path(rel)
}

fn main() {
    // Cases are checked by paths relative to the root (set once: the
    // trials run in parallel).
    std::env::set_current_dir(root()).unwrap();
    let args = Arguments::from_args();
    let mut trials = vec![];
    for path in cases("pass") {
        trials.push(Trial::test(format!("pass::{}", stem(&path)), move || pass_case(&path)));
    }
    for path in cases("fail") {
        trials.push(Trial::test(format!("fail::{}", stem(&path)), move || fail_case(&path)));
    }
    let whole: [(&str, fn()); 5] = [
        ("examples_check_clean", examples_check_clean),
        ("every_case_starts_with_a_comment", every_case_starts_with_a_comment),
        ("no_stale_snapshots", no_stale_snapshots),
        ("every_code_has_a_fail_case", every_code_has_a_fail_case),
        ("pass_cases_use_every_stdlib_pattern", pass_cases_use_every_stdlib_pattern),
    ];
    for (name, f) in whole {
        trials.push(Trial::test(name, move || {
            f();
            Ok(())
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// A case's text, lossily: a case may be deliberately not UTF-8.
fn source(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned()
}

/// A pass case checks with no diagnostics at all.
fn pass_case(path: &Path) -> Result<(), Failed> {
    let (sources, checked) = check(path);
    if checked.diags.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "a pass case produced diagnostics:\n{}",
            deladas::diagnostics::render::to_text(&checked.diags, &sources)
        )
        .into())
    }
}

fn examples_check_clean() {
    for entry in std::fs::read_dir(root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "deladas") {
            let (sources, checked) = check(&path);
            assert!(
                checked.diags.is_empty(),
                "{}:\n{}",
                path.display(),
                deladas::diagnostics::render::to_text(&checked.diags, &sources)
            );
        }
    }
}

/// A fail case: its source and rendered diagnostics match its snapshot.
fn fail_case(path: &Path) -> Result<(), Failed> {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots/ui");
    let _guard = settings.bind_to_scope();
    let (sources, checked) = check(path);
    let name = stem(path);
    if checked.diags.is_empty() {
        return Err(format!("{name}: a fail case produced no diagnostics").into());
    }
    let src = source(path);
    let rendered = deladas::diagnostics::render::to_text(&checked.diags, &sources);
    let snapshot = format!("----- SOURCE\n{src}\n----- DIAGNOSTICS\n{rendered}");
    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::assert_snapshot!(name.clone(), snapshot);
    }));
    ok.map_err(|_| {
        format!("the snapshot differs for {name} (review with `cargo insta review`, or accept with `INSTA_UPDATE=always cargo test --test ui`)").into()
    })
}

fn every_case_starts_with_a_comment() {
    for dir in ["pass", "fail"] {
        for path in cases(dir) {
            let src = source(&path);
            let first = src.trim_start_matches(['\u{feff}']).lines().next().unwrap_or("");
            assert!(
                first.starts_with("//") || first.starts_with("/*"),
                "{}: a case starts with a comment saying what it shows",
                path.display()
            );
        }
    }
}

fn no_stale_snapshots() {
    let cases: BTreeSet<String> = cases("fail").iter().map(|p| stem(p)).collect();
    let dir = root().join("tests/snapshots/ui");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "snap") {
            let name = stem(&path);
            assert!(cases.contains(&name), "{} has no case tests/ui/fail/{name}.deladas; delete it", path.display());
        }
    }
}

/// Whether `check` (reading, parsing, checking) reports this code: the
/// groups E00xx to E06xx and every warning. E061x belong to `roles`, E062x
/// to `simulate`, later groups to `verify` (E07xx), `solve` (E08xx) and
/// internal errors (E09xx).
pub fn front_end(code: Code) -> bool {
    let s = code.as_str();
    (s.starts_with('W') && !s.starts_with("W08")) || (s < "E0700" && !s.starts_with("E061") && !s.starts_with("E062"))
}

/// Every code of the front end is shown by at least one fail case (E0009 by
/// an unreadable import; `tests/cli.rs` covers an unreadable goal file).
fn every_code_has_a_fail_case() {
    let mut seen = BTreeSet::new();
    for path in cases("fail") {
        let (_, checked) = check(&path);
        seen.extend(checked.diags.iter().map(|d| d.code));
    }
    let missing: Vec<&str> =
        Code::ALL.iter().filter(|c| front_end(**c) && !seen.contains(c)).map(|c| c.as_str()).collect();
    assert!(missing.is_empty(), "codes no fail case produces: {}", missing.join(", "));
}

/// The pass cases use every pattern of the standard library at least once.
fn pass_cases_use_every_stdlib_pattern() {
    let used: String = cases("pass").iter().map(|p| source(p)).collect();
    for (file, text) in deladas::check::load::STDLIB {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("constraintset ") else { continue };
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            assert!(used.contains(&format!("use {name}(")), "no pass case uses `{name}` of stdlib `{file}`");
        }
    }
}
