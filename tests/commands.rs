//! File-driven cases of `deladas resolve`, `whatif` and `simulate`: every
//! `tests/commands/COMMAND/NAME.cmd` holds a `#` comment saying what it
//! shows, then one command line (the arguments after `deladas`, split on
//! spaces; `'…'` quotes one argument), run from the repository root. Its
//! exit code, stdout and stderr are snapshotted in
//! `tests/snapshots/commands/COMMAND__NAME.snap`.
//!
//! One test per file (libtest-mimic): `resolve::NAME`, `whatif::NAME`,
//! `simulate::NAME`; `cargo test --test commands -- resolve::NAME` runs one.
//! Add a case: write the file, run `INSTA_UPDATE=always cargo test --test
//! commands`, read the snapshot.

mod common;
use common::{code, deladas, manifest, stderr, stdout};

use std::path::{Path, PathBuf};

use libtest_mimic::{Arguments, Failed, Trial};

const COMMANDS: &[&str] = &["resolve", "whatif", "simulate"];

fn cases(command: &str) -> Vec<PathBuf> {
    let dir = manifest().join("tests/commands").join(command);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cmd"))
        .collect();
    v.sort();
    v
}

/// Splits a command line on spaces; `'…'` is one argument.
fn split(line: &str) -> Vec<String> {
    let mut out = vec![];
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn case(command: &str, path: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let comment = lines.next().unwrap_or("");
    if !comment.starts_with('#') {
        return Err("a case starts with a `#` comment saying what it shows".into());
    }
    let line = lines.find(|l| !l.starts_with('#')).ok_or("no command line")?;
    let args = split(line);
    if args.first().map(String::as_str) != Some(command) {
        return Err(format!("a case in tests/commands/{command}/ runs `deladas {command} …`").into());
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = deladas(&refs);
    let name = path.file_stem().expect("a name").to_string_lossy().into_owned();
    let snap = format!(
        "----- CASE\n{}\n----- exit {}\n----- STDOUT\n{}----- STDERR\n{}",
        text.trim_end(),
        code(&o),
        stdout(&o),
        stderr(&o)
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_snapshot_path("snapshots/commands");
    let _guard = settings.bind_to_scope();
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::assert_snapshot!(format!("{command}__{name}"), snap);
    }))
    .map_err(|_| format!("the snapshot differs for {command}::{name}").into())
}

/// Every snapshot belongs to a case.
fn no_stale_snapshots() -> Result<(), Failed> {
    let dir = manifest().join("tests/snapshots/commands");
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(()) };
    for e in entries.flatten() {
        let f = e.file_name().to_string_lossy().into_owned();
        let Some(stem) = f.strip_suffix(".snap") else { continue };
        let (command, name) = stem.split_once("__").ok_or(format!("{f}: not COMMAND__NAME.snap"))?;
        let case = manifest().join(format!("tests/commands/{command}/{name}.cmd"));
        if !case.exists() {
            return Err(format!("{f} has no case {}; delete it", case.display()).into());
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = vec![Trial::test("no_stale_snapshots", no_stale_snapshots)];
    for &command in COMMANDS {
        let all = cases(command);
        assert!(!all.is_empty(), "no cases in tests/commands/{command}");
        for path in all {
            let name = path.file_stem().expect("a name").to_string_lossy().into_owned();
            trials.push(Trial::test(format!("{command}::{name}"), move || case(command, &path)));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
