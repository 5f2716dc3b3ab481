//! `docs/errors.md` documents every diagnostic code, in the order of
//! `Code::ALL`, and every example there really produces its code.
//!
//! A section is `## CODE: title` (the title as in `codes.rs`) followed by
//! prose and one fenced example:
//!
//! - ```` ```deladas ````: written to `goal.deladas` in an empty directory and
//!   checked (library `check`); every diagnostic must carry the section's code;
//! - ```` ```deladas latin1 ````: the same, the file saved as Latin-1;
//! - ```` ```deladas SUBCOMMAND ARGS ````: run as
//!   `deladas SUBCOMMAND goal.deladas [goal.ddd.xml] ARGS` with the real
//!   binary, where `goal.ddd.xml` is the section's ```` ```xml ```` block if it
//!   has one (for `verify`), or takes the place of an argument `DDD` (for
//!   `roles --deployment DDD`), and the section's ```` ```json ```` block
//!   takes the place of an argument `ROLES` (for `simulate --roles ROLES`);
//!   `export` is given no goal, only the DDD; stderr must name the code;
//! - ```` ```text ````: not run. Only the codes in [`NOT_RUNNABLE`] may do
//!   this, each with its reason; at most two of them from the front end.

use std::path::{Path, PathBuf};
use std::process::Command;

use deladas::diagnostics::Code;

/// Codes whose example is not run, and why.
const NOT_RUNNABLE: &[(&str, &str)] = &[
    ("E0806", "an HTTP request to `deladas manage`; tests/manager.rs sends malformed ones to a running manager"),
    ("E0807", "an HTTP request to `deladas manage`; tests/manager.rs enacts a stale generation"),
    ("E0901", "an internal error: no input triggers it on purpose"),
];

/// Whether `check` reports this code (E00xx to E06xx and the warnings but
/// W08xx, which `solve` reports; and
/// not E061x and E062x, which `roles` and `simulate` report).
fn front_end(code: Code) -> bool {
    let s = code.as_str();
    (s.starts_with('W') && !s.starts_with("W08")) || (s < "E0700" && !s.starts_with("E061") && !s.starts_with("E062"))
}

struct Section {
    code: String,
    heading: String,
    /// Every fenced block: its info string and its text.
    blocks: Vec<(String, String)>,
}

fn sections() -> Vec<Section> {
    let path = Path::new(env!("DELADAS_ROOT")).join("docs/errors.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: Vec<Section> = vec![];
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("## ") {
            let code = h.split(':').next().unwrap_or("").trim().to_string();
            out.push(Section { code, heading: h.trim().to_string(), blocks: vec![] });
        } else if let Some(info) = line.strip_prefix("```") {
            // A fence: collect the block (also outside sections, to skip it).
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            if let Some(s) = out.last_mut() {
                s.blocks.push((info.trim().to_string(), body));
            }
        }
    }
    out
}

/// A fresh empty directory for one example.
fn scratch(code: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deladas-errors-doc-{}-{code}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_code_has_a_section_in_order() {
    let secs = sections();
    let documented: Vec<&str> = secs.iter().map(|s| s.code.as_str()).collect();
    let all: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let missing: Vec<&&str> = all.iter().filter(|c| !documented.contains(c)).collect();
    assert!(missing.is_empty(), "docs/errors.md has no section for {missing:?}");
    let unknown: Vec<&&str> = documented.iter().filter(|c| !all.contains(c)).collect();
    assert!(unknown.is_empty(), "docs/errors.md documents codes that do not exist: {unknown:?}");
    assert_eq!(documented, all, "sections are in the order of codes.rs, one per code");
    for (s, code) in secs.iter().zip(Code::ALL) {
        assert_eq!(s.heading, format!("{}: {}", code.as_str(), code.title()), "heading of {}", s.code);
    }
}

#[test]
fn every_example_produces_its_code() {
    let mut failures = vec![];
    let mut skipped = vec![];
    for s in sections() {
        let code = Code::parse(&s.code).unwrap_or_else(|| panic!("unknown code {}", s.code));
        let Some((info, body)) = s.blocks.first() else {
            failures.push(format!("{}: no example", s.code));
            continue;
        };
        let mut words = info.split_whitespace();
        match words.next() {
            Some("text") => {
                match NOT_RUNNABLE.iter().find(|(c, _)| *c == s.code) {
                    Some(_) => skipped.push(code),
                    None => failures.push(format!("{}: a `text` example, but the code is not in NOT_RUNNABLE", s.code)),
                }
                continue;
            }
            Some("deladas") => {}
            _ => {
                failures.push(format!("{}: the example is neither `deladas` nor `text`", s.code));
                continue;
            }
        }
        if NOT_RUNNABLE.iter().any(|(c, _)| *c == s.code) {
            failures.push(format!("{}: the example runs now; remove it from NOT_RUNNABLE", s.code));
        }
        let rest: Vec<&str> = words.collect();
        let dir = scratch(&s.code);
        let file = dir.join("goal.deladas");
        let bytes: Vec<u8> = if rest.first() == Some(&"latin1") {
            body.chars().map(|c| u8::try_from(u32::from(c)).expect("a Latin-1 character")).collect()
        } else {
            body.clone().into_bytes()
        };
        std::fs::write(&file, bytes).unwrap();
        match rest.first() {
            None | Some(&"latin1") => {
                let (sources, checked) = deladas::check::check_path(&file);
                let codes: Vec<Code> = checked.diags.iter().map(|d| d.code).collect();
                if !codes.contains(&code) || codes.iter().any(|c| *c != code) {
                    failures.push(format!(
                        "{}: the example reports {:?}, not only {}:\n{}",
                        s.code,
                        codes.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                        s.code,
                        deladas::diagnostics::render::to_text(&checked.diags, &sources)
                    ));
                }
            }
            Some(&subcommand) => {
                // `export` reads only the DDD, not the goal.
                let mut files = if subcommand == "export" { vec![] } else { vec![file.clone()] };
                let ddd = dir.join("goal.ddd.xml");
                if let Some((_, xml)) = s.blocks.iter().skip(1).find(|(i, _)| i == "xml") {
                    std::fs::write(&ddd, xml).unwrap();
                    // An argument `DDD` stands for the DDD's path; otherwise it follows the goal.
                    if !rest.contains(&"DDD") {
                        files.push(ddd.clone());
                    }
                }
                // An argument `ROLES` stands for the section's ```` ```json ```` block
                // (a role document, for `simulate --roles ROLES`).
                let roles = dir.join("goal.roles.json");
                if let Some((_, json)) = s.blocks.iter().skip(1).find(|(i, _)| i == "json") {
                    std::fs::write(&roles, json).unwrap();
                }
                let args: Vec<std::ffi::OsString> = rest[1..]
                    .iter()
                    .map(|a| match *a {
                        "DDD" => ddd.clone().into(),
                        "ROLES" => roles.clone().into(),
                        _ => a.into(),
                    })
                    .collect();
                let out = Command::new(env!("CARGO_BIN_EXE_deladas"))
                    .arg(subcommand)
                    .args(&files)
                    .args(&args)
                    .env("NO_COLOR", "1")
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&out.stderr);
                if !err.contains(&format!("[{}]", s.code)) {
                    failures.push(format!("{}: `deladas {}` did not report it:\n{err}", s.code, rest.join(" ")));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    let front: Vec<&str> = skipped.iter().filter(|c| front_end(**c)).map(|c| c.as_str()).collect();
    assert!(front.len() <= 2, "at most two front-end codes may lack a runnable example: {front:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
