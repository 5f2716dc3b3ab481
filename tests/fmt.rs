//! `deladas fmt`: the house style is what the repository is written in,
//! formatting is idempotent, keeps comments, refuses files with syntax
//! errors, and `--check` exits 1 exactly when a file would change.

mod common;

use common::{code, deladas, show, stdout};
use std::path::{Path, PathBuf};

fn every_goal() -> Vec<PathBuf> {
    let root = Path::new(env!("DELADAS_ROOT"));
    let mut out = vec![];
    let mut stack = vec![root.join("examples"), root.join("stdlib"), root.join("tests")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "deladas") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_example_stdlib_file_and_test_goal_is_a_fixed_point() {
    let mut fixed = 0;
    for p in every_goal() {
        let Ok(text) = std::fs::read_to_string(&p) else { continue };
        match deladas::syntax::format::format(&text) {
            Ok(out) => {
                assert!(out == text, "{} is not in the house style:\n{}", p.display(), diff(&text, &out));
                fixed += 1;
            }
            // Goals that are meant to have syntax errors (tests/ui/fail).
            Err(deladas::syntax::format::FormatError::Syntax(_)) => {
                assert!(p.to_string_lossy().contains("/ui/fail/"), "{} does not parse", p.display())
            }
            Err(e) => panic!("{}: {e}", p.display()),
        }
    }
    assert!(fixed > 90, "only {fixed} goals found");
    // The command agrees.
    let root = Path::new(env!("DELADAS_ROOT"));
    let args: Vec<String> = ["examples/p2p.deladas", "examples/pubsub.deladas", "examples/webfarm.deladas"]
        .iter()
        .map(|f| root.join(f).display().to_string())
        .chain(["fmt".to_string(), "--check".to_string()])
        .collect();
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.rotate_right(2);
    let o = deladas(&args);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

fn diff(a: &str, b: &str) -> String {
    a.lines()
        .zip(b.lines())
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .take(5)
        .map(|(i, (x, y))| format!("line {}:\n- {x}\n+ {y}\n", i + 1))
        .collect()
}

const MESSY: &str = concat!(
    "// a goal\n\n\n\n",
    "component Web( code=\"w.xml\" ,ports={p[]:input ,q} )   // trailing\n",
    "host h1=host( zone = \"eu\" )\n",
    "constraintset s=constraintset{\n",
    "\t  forall Web w in deployment(\n",
    "  /* keep\n     me */ w on h1 and\n",
    "card(instancesof Web in h1)\n",
    "  + 0>=1\n",
    "        )   \n",
    "\n\n\n",
    "    }\n\n\n",
);

const TIDY: &str = concat!(
    "// a goal\n\n",
    "component Web(code = \"w.xml\", ports = {p[]: input, q})   // trailing\n",
    "host h1 = host(zone = \"eu\")\n",
    "constraintset s = constraintset{\n",
    "    forall Web w in deployment(\n",
    "        /* keep\n     me */ w on h1 and\n",
    "        card(instancesof Web in h1)\n",
    "            + 0 >= 1\n",
    "    )\n",
    "\n",
    "}\n",
);

#[test]
fn fmt_rewrites_in_place_and_check_reports_without_writing() {
    let dir = tempdir("rewrite");
    let f = dir.join("messy.deladas");
    std::fs::write(&f, MESSY).unwrap();
    let fs = f.display().to_string();
    let o = deladas(&["fmt", "--check", &fs]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(stdout(&o).contains("messy.deladas"), "{}", show(&o));
    assert_eq!(std::fs::read_to_string(&f).unwrap(), MESSY, "--check wrote the file");
    let o = deladas(&["fmt", &fs]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = std::fs::read_to_string(&f).unwrap();
    assert_eq!(out, TIDY);
    // Idempotent, and no temporary file left behind.
    let o = deladas(&["fmt", "--check", &fs]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // Formatting changed nothing `check` reports.
    let o = deladas(&["check", &fs]);
    assert_eq!(code(&o), 0, "{}", show(&o)); // A symbolic link stays one; the file it points to is formatted.
    let link = dir.join("link.deladas");
    std::os::unix::fs::symlink(&f, &link).unwrap();
    std::fs::write(&f, MESSY).unwrap();
    let o = deladas(&["fmt", &link.display().to_string()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&f).unwrap(), TIDY);
}

#[test]
fn fmt_refuses_a_file_with_syntax_errors_and_leaves_it_alone() {
    let dir = tempdir("syntax");
    let bad = dir.join("bad.deladas");
    let good = dir.join("good.deladas");
    let text = "component Web(code = \"w.xml\" ports = {p})\nhost  h1 = host()\n";
    std::fs::write(&bad, text).unwrap();
    std::fs::write(&good, "host h1=host( )\n").unwrap();
    let o = deladas(&["fmt", &bad.display().to_string(), &good.display().to_string()]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(show(&o).contains("syntax errors"), "{}", show(&o));
    assert!(show(&o).contains("E0"), "the parser's diagnostic is shown: {}", show(&o));
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), text);
    // The other file is still formatted.
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "host h1 = host()\n");
    let o = deladas(&["fmt", &dir.join("missing.deladas").display().to_string()]);
    assert_eq!(code(&o), 2, "{}", show(&o));
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deladas-fmt-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
