//! The `deladas check` command as a user runs it: the real binary, its exit
//! codes (cli.md: 0 success, 2 bad input or usage), rustc-style text on
//! stderr, and the JSON of `--format json` on stdout.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deladas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deladas"))
        .args(args)
        .current_dir(env!("DELADAS_ROOT"))
        .env("NO_COLOR", "1")
        .output()
        .expect("the deladas binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("deladas-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// examples/p2p.deladas with `c.out connectsto` misspelt `c.outt connectsto`;
/// returns the text and the byte offset of `outt`.
fn p2p_with_typo() -> (String, usize) {
    let p2p = std::fs::read_to_string(Path::new(env!("DELADAS_ROOT")).join("examples/p2p.deladas")).unwrap();
    let text = p2p.replacen("c.out connectsto", "c.outt connectsto", 1);
    assert_ne!(text, p2p, "the example has `c.out connectsto`");
    let at = text.find("c.outt connectsto").unwrap() + 2;
    (text, at)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, col)
}

#[test]
fn a_good_goal_exits_0_silently() {
    let o = deladas(&["check", "examples/p2p.deladas"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
}

#[test]
fn every_example_checks() {
    for ex in ["examples/p2p.deladas", "examples/pubsub.deladas", "examples/webfarm.deladas"] {
        let o = deladas(&["check", ex]);
        assert_eq!(o.status.code(), Some(0), "{ex}: {}", stderr(&o));
        let o = deladas(&["check", ex, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{ex}: {}", stderr(&o));
        assert_eq!(stdout(&o).trim(), "[]", "{ex}: no diagnostics is an empty JSON array");
    }
}

#[test]
fn a_port_typo_exits_2_and_points_at_it() {
    let s = Scratch::new("typo");
    let (text, at) = p2p_with_typo();
    let file = s.write("p2p.deladas", &text);
    let o = deladas(&["check", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stdout(&o), "", "text diagnostics go to stderr");
    let err = stderr(&o);
    let (line, col) = line_col(&text, at);
    assert!(err.contains("error[E0201]"), "{err}");
    assert!(err.contains("component `Client` has no port `outt`"), "{err}");
    assert!(err.contains(&format!("{file}:{line}:{col}")), "expected {file}:{line}:{col} in:\n{err}");
    assert!(err.contains("did you mean `out`"), "{err}");
    assert!(!err.contains("\u{1b}["), "no colour when stderr is not a terminal");
    // The caret line underlines exactly the four characters of `outt`.
    let source_line = text.lines().nth(line - 1).unwrap();
    let caret_line = err.lines().find(|l| l.contains("^^^^ unknown port")).expect("a caret line");
    let gutter = err.lines().find(|l| l.ends_with(source_line)).expect("the source line is shown");
    let offset = gutter.len() - source_line.len();
    assert_eq!(caret_line.find('^'), Some(offset + col - 1), "caret under `outt`:\n{err}");
}

#[test]
fn json_diagnostics_on_stdout() {
    let s = Scratch::new("json");
    let (text, at) = p2p_with_typo();
    let file = s.write("p2p.deladas", &text);
    let o = deladas(&["check", &file, "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "", "JSON mode prints nothing on stderr");
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("stdout is JSON");
    let arr = v.as_array().expect("a JSON array");
    assert_eq!(arr.len(), 1, "{v:#}");
    let d = &arr[0];
    assert_eq!(d["severity"], "error");
    assert_eq!(d["code"], "E0201");
    assert_eq!(d["message"], "component `Client` has no port `outt`");
    assert_eq!(d["file"], file.as_str());
    let labels = d["labels"].as_array().unwrap();
    let primary: Vec<&serde_json::Value> = labels.iter().filter(|l| l["primary"] == true).collect();
    assert_eq!(primary.len(), 1, "{v:#}");
    let p = primary[0];
    let (start, end) = (p["start"].as_u64().unwrap() as usize, p["end"].as_u64().unwrap() as usize);
    assert_eq!((start, end), (at, at + 4));
    assert_eq!(&text[start..end], "outt");
    let (line, col) = line_col(&text, at);
    assert_eq!(p["line"], line);
    assert_eq!(p["column"], col);
    assert_eq!(p["end_line"], line);
    assert_eq!(p["end_column"], col + 4);
    assert_eq!(p["message"], "unknown port");
    assert_eq!(p["file"], file.as_str());
    // The secondary label points at the component's name.
    let secondary = labels.iter().find(|l| l["primary"] == false).expect("a secondary label");
    let (s0, s1) = (secondary["start"].as_u64().unwrap() as usize, secondary["end"].as_u64().unwrap() as usize);
    assert_eq!(&text[s0..s1], "Client");
    let notes: Vec<&str> = d["notes"].as_array().unwrap().iter().map(|n| n.as_str().unwrap()).collect();
    assert_eq!(notes, ["help: did you mean `out`?"]);
}

#[test]
fn json_columns_count_characters_not_bytes() {
    let s = Scratch::new("utf8");
    let text = "// héhé ünïcödé\ncomponent C(code = \"é\", ports = {p})\nhost h = host(n = \"ééé\")\n\
                constraintset s = constraintset { forall C x in deployment ( /* é */ x.nope connectsto x.p ) }\n";
    let file = s.write("u.deladas", text);
    let o = deladas(&["check", &file, "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let p = &v[0]["labels"][0];
    assert_eq!(v[0]["code"], "E0201");
    let at = text.find("nope").unwrap();
    assert_eq!(p["start"], at);
    let (line, col) = line_col(text, at);
    assert_eq!((p["line"].as_u64().unwrap() as usize, p["column"].as_u64().unwrap() as usize), (line, col));
    assert!(col < at - text[..at].rfind('\n').unwrap(), "the column counts characters");
}

#[test]
fn a_broken_declaration_does_not_hide_later_errors() {
    let s = Scratch::new("recovery");
    let file = s.write(
        "r.deladas",
        "component Client(code = \"c.xml\", ports = {in, out}\n\
         component Router(code = \"r.xml\", ports = {cin[], cout[]})\n\
         host h1 = host()\n\
         constraintset s = constraintset {\n\
         \x20   forall Client c in deployment ( exists Router r in deployment ( c.out connectsto r.cin ) )\n\
         \x20   forall Router r in deployment ( r.cot connectsto r.cin )\n\
         }\n",
    );
    let o = deladas(&["check", &file]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("error[E0001]: expected `)` to close the component's attribute list"), "{err}");
    assert!(err.contains(&format!("{file}:1:")), "the syntax error is on line 1:\n{err}");
    assert!(err.contains("error[E0201]: component `Router` has no port `cot`"), "{err}");
    assert!(err.contains(&format!("{file}:6:")), "the later error is on line 6:\n{err}");
    assert!(!err.contains("unknown component `Client`"), "the broken component is not reported again:\n{err}");
    let o = deladas(&["check", &file, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let codes: Vec<&str> = v.as_array().unwrap().iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["E0001", "E0201"]);
}

#[test]
fn warnings_alone_exit_0() {
    let s = Scratch::new("warn");
    let file = s.write(
        "w.deladas",
        "component C(code = \"c\", ports = {p})\nhost h = host()\n\
         constraintset s = constraintset { forall host g in deployment ( card(instancesof C in h) = 1 ) }\n",
    );
    let o = deladas(&["check", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning[W0001]: variable `g` is never used"), "{}", stderr(&o));
    let o = deladas(&["check", &file, "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["severity"], "warning");
    assert_eq!(v[0]["code"], "W0001");
}

#[test]
fn a_missing_file_exits_2() {
    let o = deladas(&["check", "no/such/goal.deladas"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("E0009") && err.contains("no/such/goal.deladas") && err.contains("no such file"), "{err}");
    let o = deladas(&["check", "no/such/goal.deladas", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v[0]["code"], "E0009");
}

#[test]
fn a_directory_exits_2() {
    let o = deladas(&["check", "examples"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("E0009"), "{}", stderr(&o));
}

#[test]
fn an_empty_file_exits_2() {
    let s = Scratch::new("empty");
    let file = s.write("e.deladas", "");
    let o = deladas(&["check", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("error[E0010]"), "{}", stderr(&o));
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["check", "examples/p2p.deladas", "--no-such-flag"][..],
        &["check", "examples/p2p.deladas", "--format", "yaml"],
        &["check"],
        &["frobnicate"],
        &[],
    ] {
        let o = deladas(args);
        assert_eq!(o.status.code(), Some(2), "deladas {args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "deladas {args:?} says what is wrong");
        assert_eq!(stdout(&o), "", "deladas {args:?}");
    }
}

#[test]
fn help_exits_0() {
    for args in [&["--help"][..], &["check", "--help"], &["help", "check"]] {
        let o = deladas(args);
        assert_eq!(o.status.code(), Some(0), "deladas {args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage"), "deladas {args:?}: {}", stdout(&o));
    }
    assert!(stdout(&deladas(&["check", "--help"])).contains("--format"));
    let o = deladas(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("deladas "));
}

/// The README's first command, `cargo run --release -- solve …` at the
/// repository root, needs the command crate to say which of its binaries
/// (`deladas`, the example components) `cargo run` means.
#[test]
fn cargo_run_at_the_root_means_the_deladas_binary() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("DELADAS_ROOT")).join("crates/deladas-cli/Cargo.toml")).unwrap();
    let bins = manifest.matches("[[bin]]").count();
    assert!(bins >= 1, "no [[bin]] in crates/deladas-cli/Cargo.toml");
    assert!(
        bins == 1 || manifest.lines().any(|l| l.trim() == "default-run = \"deladas\""),
        "crates/deladas-cli has {bins} binaries but no `default-run = \"deladas\"`: `cargo run -- …` would fail"
    );
}
