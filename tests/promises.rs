//! The promises of `cli.md` under hostile conditions (issue 15): no panic on
//! absurd flags, no silently lost write (a full stdout, a file size limit
//! standing in for a full disk), no half-written `-o` file, bounded input,
//! DDD diagnostics that point into the DDD, the same DDD rules in every
//! command.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{code, deladas, manifest, show, stderr};

/// A scratch folder of its own for each test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("deladas-promises-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn s(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `deladas ARGS` in the repository root through `sh -c PREFIX exec …`,
/// e.g. with a file-size limit.
fn deladas_sh(prefix: &str, args: &[&str], stdout_to: Option<&Path>) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let redirect = stdout_to.map(|p| format!(" > '{}'", p.display())).unwrap_or_default();
    let script = format!("{prefix} exec '{}' {}{redirect}", env!("CARGO_BIN_EXE_deladas"), quoted.join(" "));
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(manifest())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("sh runs")
}

const P2P: &str = "examples/p2p.deladas";

#[test]
fn absurd_timeouts_are_usage_errors() {
    let unsat = Scratch::new("timeouts");
    let goal = unsat.s("unsat.deladas");
    std::fs::write(&goal, "component C(code = \"c\", ports = {p})\nhost h = host()\nconstraintset s = constraintset { card(instancesof C in deployment) = 2 }\n").unwrap();
    let ddd = unsat.s("p2p.ddd.xml");
    let o = deladas(&["solve", P2P, "-o", &ddd]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    for t in ["1e20", "1e19", "-1", "-0.5", "nan", "inf", "1e309", "0", "forever", "31536001"] {
        let flag = format!("--timeout={t}");
        let runs: Vec<Vec<&str>> = vec![
            vec!["solve", P2P, &flag],
            vec!["explain", &goal, &flag],
            vec!["resolve", P2P, "--from", &ddd, "--fail-host", "h1", &flag],
            vec!["whatif", P2P, "--from", &ddd, &flag],
        ];
        for args in runs {
            let o = deladas(&args);
            assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
            assert!(stderr(&o).contains("--timeout"), "{args:?}: {}", show(&o));
            assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", show(&o));
        }
    }
    // A large but sane budget is accepted (the goal is solved long before).
    let o = deladas(&["solve", P2P, "--timeout", "31536000"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn a_full_stdout_is_an_error() {
    let s = Scratch::new("full");
    let ddd = s.s("p2p.ddd.xml");
    assert_eq!(code(&deladas(&["solve", P2P, "-o", &ddd])), 0);
    let full = Path::new("/dev/full");
    let runs: Vec<Vec<&str>> = vec![
        vec!["solve", P2P],
        vec!["solve", P2P, "--format", "json"],
        vec!["check", P2P, "--format", "json"],
        vec!["verify", P2P, &ddd, "--format", "json"],
        vec!["resolve", P2P, "--from", &ddd, "--fail-host", "h1"],
        vec!["roles", "tests/roles/cases/p2p-routers.deladas", "--deployment", "tests/roles/deployments/p2p.ddd.xml"],
    ];
    for args in runs {
        let o = deladas_sh("", &args, Some(full));
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        assert!(stderr(&o).contains("cannot write to standard output"), "{args:?}: {}", show(&o));
    }
    // A reader that goes away early is not an error worth reporting.
    let rc = s.path("rc");
    let script = format!(
        "{{ '{}' solve {P2P}; echo $? > '{}'; }} | head -c 1 > /dev/null",
        env!("CARGO_BIN_EXE_deladas"),
        rc.display()
    );
    let o = Command::new("sh").arg("-c").arg(script).current_dir(manifest()).output().unwrap();
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(std::fs::read_to_string(&rc).unwrap().trim(), "0", "{}", show(&o));
    assert!(!stderr(&o).contains("cannot write"), "{}", show(&o));
}

#[test]
fn a_failed_write_keeps_the_old_file() {
    let s = Scratch::new("xfsz");
    let ddd = s.s("p2p.ddd.xml");
    assert_eq!(code(&deladas(&["solve", P2P, "-o", &ddd])), 0);
    let out = s.path("f.xml");
    let out_s = out.display().to_string();
    // `ulimit -f 2` (1 KiB blocks) with SIGXFSZ ignored: writes past 2 KiB fail
    // with EFBIG, as on a full disk.
    let limited = "trap '' XFSZ; ulimit -f 2;";
    let runs: Vec<Vec<&str>> = vec![
        vec!["solve", P2P, "-o", &out_s],
        vec!["solve", P2P, "--format", "json", "-o", &out_s],
        vec!["resolve", P2P, "--from", &ddd, "--fail-host", "h1", "-o", &out_s],
        vec![
            "roles",
            "tests/roles/cases/p2p-routers.deladas",
            "--deployment",
            "tests/roles/deployments/p2p.ddd.xml",
            "-o",
            &out_s,
        ],
    ];
    for args in runs {
        std::fs::write(&out, "OLD\n").unwrap();
        let o = deladas_sh(limited, &args, None);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        assert!(stderr(&o).contains("cannot write"), "{args:?}: {}", show(&o));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "OLD\n", "{args:?}: the old file was damaged");
        let left: Vec<_> = std::fs::read_dir(&s.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 2, "{args:?}: a temporary file was left behind: {left:?}");
        // Without the limit the file is replaced whole.
        let o = deladas(&args);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        let new = std::fs::read_to_string(&out).unwrap();
        assert!(new.len() > 2048 && new.trim_end().ends_with(['>', '}']), "{args:?}: {new}");
    }
    // A read-only file keeps its permissions when replaced.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(code(&deladas(&["solve", P2P, "-o", &out_s])), 0);
    assert_eq!(std::fs::metadata(&out).unwrap().permissions().mode() & 0o777, 0o640);
}

/// Runs `deladas ARGS` with a deadline: a command that blocks fails the
/// test instead of hanging it.
fn deladas_within(args: &[&str], env: &[(&str, &str)], secs: u64) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_deladas"));
    cmd.args(args).current_dir(manifest()).env("NO_COLOR", "1").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn devices_fifos_and_oversized_files_are_refused() {
    let s = Scratch::new("bounded");
    let ddd = s.s("p2p.ddd.xml");
    assert_eq!(code(&deladas(&["solve", P2P, "-o", &ddd])), 0);
    let fifo = s.s("goal.fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let importer = s.s("imports.deladas");
    std::fs::write(&importer, "import \"/dev/zero\"\nhost h = host()\n").unwrap();
    let roles = "tests/roles/cases/p2p-routers.deladas";
    let runs: Vec<Vec<&str>> = vec![
        vec!["check", "/dev/zero"],
        vec!["check", &fifo],
        vec!["check", &importer],
        vec!["solve", "/dev/zero"],
        vec!["verify", P2P, "/dev/zero"],
        vec!["verify", P2P, &fifo],
        vec!["resolve", "/dev/zero", "--from", &ddd, "--fail-host", "h1"],
        vec!["resolve", P2P, "--from", "/dev/zero", "--fail-host", "h1"],
        vec!["whatif", P2P, "--from", &fifo],
        vec!["roles", roles, "--deployment", "/dev/zero"],
    ];
    for args in runs {
        let o = deladas_within(&args, &[], 60);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        assert!(stderr(&o).contains("E0011") && stderr(&o).contains("not a regular file"), "{args:?}: {}", show(&o));
    }
    // Over the limit (lowered for the test): goal, import and DDD.
    let small = [("DELADAS_MAX_INPUT_BYTES", "1000")];
    let big_import = s.s("big.deladas");
    std::fs::write(&big_import, format!("{}host h = host()\n", "// padding\n".repeat(200))).unwrap();
    std::fs::write(&importer, "import \"big\"\nhost g = host()\n").unwrap();
    let tiny = s.s("tiny.deladas");
    std::fs::write(&tiny, "component C(code = \"c\", ports = {p})\nhost h = host()\n").unwrap();
    for args in [vec!["check", P2P], vec!["check", &importer], vec!["verify", &tiny, &ddd]] {
        let o = deladas_within(&args, &small, 60);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        assert!(
            stderr(&o).contains("E0011") && stderr(&o).contains("larger than 1000 bytes"),
            "{args:?}: {}",
            show(&o)
        );
    }
    // The default limit reads the same files.
    assert_eq!(code(&deladas(&["check", &importer])), 0);
}

#[test]
fn a_byte_order_mark_is_accepted_in_a_goal() {
    let s = Scratch::new("bom");
    let goal = s.s("bom.deladas");
    let text = std::fs::read_to_string(manifest().join(P2P)).unwrap();
    std::fs::write(&goal, format!("\u{FEFF}{text}")).unwrap();
    let o = deladas(&["check", &goal]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let ddd = s.s("bom.ddd.xml");
    let o = deladas(&["solve", &goal, "-o", &ddd]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    // A DDD with a BOM too, verified against the goal with one.
    let xml = std::fs::read_to_string(&ddd).unwrap();
    std::fs::write(&ddd, format!("\u{FEFF}{xml}")).unwrap();
    let o = deladas(&["verify", &goal, &ddd]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    // Positions after the mark are still right: a typo on line 1, column 1.
    std::fs::write(&goal, format!("\u{FEFF}componnt X(code = \"x\", ports = {{p}})\n{text}")).unwrap();
    let o = deladas(&["check", &goal, "--format", "json"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let v: serde_json::Value = serde_json::from_str(&common::stdout(&o)).unwrap();
    assert_eq!(v[0]["labels"][0]["line"], 1, "{}", show(&o));
}

/// The roles case's goal and deployment: every DDD-reading command accepts them.
const ROLES_GOAL: &str = "tests/roles/cases/p2p-routers.deladas";
const ROLES_DDD: &str = "tests/roles/deployments/p2p.ddd.xml";

/// Whether the command rejected the DDD itself: exit 2 with a DDD code.
fn rejects_ddd(o: &Output) -> bool {
    let all = format!("{}{}", common::stdout(o), stderr(o));
    code(o) == 2 && ["E0702", "E0703", "E0704"].iter().any(|c| all.contains(c))
}

/// Runs every command that reads a DDD on `ddd`; their outputs, by name.
fn every_ddd_command(ddd: &str) -> Vec<(&'static str, Output)> {
    vec![
        ("verify", deladas(&["verify", ROLES_GOAL, ddd])),
        ("resolve", deladas(&["resolve", ROLES_GOAL, "--from", ddd, "--fail-host", "h5"])),
        ("whatif", deladas(&["whatif", ROLES_GOAL, "--from", ddd])),
        ("roles", deladas(&["roles", ROLES_GOAL, "--deployment", ddd])),
    ]
}

/// The file:line of every primary label in the DDD, from the text output.
fn ddd_lines(err: &str, ddd: &str) -> Vec<usize> {
    err.lines()
        .filter_map(|l| l.trim_start().strip_prefix("┌─ "))
        .filter_map(|at| at.strip_prefix(ddd)?.strip_prefix(':')?.split(':').next()?.parse().ok())
        .collect()
}

#[test]
fn ddd_mismatches_point_at_the_ddd_line() {
    let s = Scratch::new("places");
    let base = std::fs::read_to_string(manifest().join(ROLES_DDD)).unwrap();
    let line_of = |text: &str, needle: &str| text[..text.find(needle).unwrap()].matches('\n').count() + 1;
    // (what, edits, the text on the line the error must point at)
    let h6 = "<host id=\"h6\"><attr name=\"ipaddress\" type=\"string\" value=\"192.168.0.6\"/></host>";
    let h6_h7 = format!("{h6}\n    <host id=\"h7\"/>");
    let h6_h9 = format!("{h6}\n    <host id=\"h9\"/>");
    let on_h7 = "<instance id=\"Client@h7\" component=\"Client\" host=\"h7\"/>\n    <instance id=\"Client@h1\"";
    let past_max = "<instance id=\"Router@h2#2\" component=\"Router\" host=\"h2\"/>\n    <instance id=\"Client@h3\"";
    type Edits<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Edits, &str)> = vec![
        ("a host the goal lacks", vec![(h6, &h6_h9)], "<host id=\"h9\"/>"),
        (
            "an instance on such a host",
            vec![(h6, &h6_h7), ("<instance id=\"Client@h1\"", on_h7)],
            "<instance id=\"Client@h7\"",
        ),
        ("a different code", vec![("code=\"file:///D:ClientBundle.xml\"", "code=\"other.xml\"")], "code=\"other.xml\""),
        ("a different attribute value", vec![("value=\"192.168.0.3\"", "value=\"10.0.0.3\"")], "value=\"10.0.0.3\""),
        ("one instance past maxperhost", vec![("<instance id=\"Client@h3\"", past_max)], "Router@h2#2"),
    ];
    for (what, edits, marker) in cases {
        let mut text = base.clone();
        for (from, to) in edits {
            assert!(text.contains(from), "{what}: the fixture changed");
            text = text.replacen(from, to, 1);
        }
        let ddd = s.s("mutated.ddd.xml");
        std::fs::write(&ddd, &text).unwrap();
        let line = line_of(&text, marker);
        for (cmd, o) in every_ddd_command(&ddd) {
            assert!(rejects_ddd(&o), "{what}: {cmd} accepts it: {}", show(&o));
            let lines = ddd_lines(&stderr(&o), &ddd);
            assert!(lines.contains(&line), "{what}: {cmd} does not point at line {line} of the DDD: {}", show(&o));
        }
    }
    // A DDD of another goal: every mismatch has a place in the DDD.
    let other = s.s("other.ddd.xml");
    assert_eq!(code(&deladas(&["solve", "examples/webfarm.deladas", "-o", &other])), 0);
    let o = deladas(&["verify", ROLES_GOAL, &other, "--format", "json"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let diags: Vec<serde_json::Value> = serde_json::from_str(&common::stdout(&o)).unwrap();
    assert!(!diags.is_empty());
    for d in &diags {
        assert_eq!(d["code"], "E0703", "{d}");
        assert_eq!(d["file"], other.as_str(), "{d}");
        assert!(d["labels"][0]["line"].as_u64().unwrap() > 1, "{d}");
    }
}

mod ddd_mutations {
    use super::*;
    use proptest::prelude::*;

    /// One edit of the fixture DDD: (what it does, from, to). Some keep it
    /// valid for the goal, most do not.
    fn mutations(base: &str) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = vec![];
        let mut add = |from: &str, to: &str| {
            if base.contains(from) {
                out.push((from.to_string(), to.to_string()));
            }
        };
        for h in 1..=6 {
            add(&format!("<host id=\"h{h}\">"), "<host id=\"h9\">");
            add(&format!("value=\"192.168.0.{h}\""), "value=\"10.0.0.1\"");
            add(&format!("value=\"192.168.0.{h}\""), "type=\"int\" value=\"1\"");
            add(&format!("host=\"h{h}\"/>"), "host=\"h1\"/>");
        }
        for inst in ["Client@h1", "Router@h2", "Client@h3", "Client@h4", "Client@h5", "Router@h6"] {
            let (c, h) = inst.split_once('@').unwrap();
            let line = format!("    <instance id=\"{inst}\" component=\"{c}\" host=\"{h}\"/>\n");
            add(&line, "");
            add(&line, &format!("{line}    <instance id=\"{inst}#2\" component=\"{c}\" host=\"{h}\"/>\n"));
            add(&line, &format!("{line}    <instance id=\"{c}@h9\" component=\"{c}\" host=\"h9\"/>\n"));
            add(&format!("id=\"{inst}\" component=\"{c}\""), &format!("id=\"{inst}\" component=\"Other\""));
        }
        add("code=\"file:///D:ClientBundle.xml\"", "code=\"x.xml\"");
        add("code=\"http://deladas.org/RBundle.xml\"", "code=\"http://deladas.org/RBundle.xml\" maxperhost=\"2\"");
        add("<port name=\"in\"/>", "<port name=\"inn\"/>");
        add("<port name=\"cin\" variadic=\"true\"/>", "<port name=\"cin\"/>");
        add("<component name=\"Client\" code", "<component name=\"Client\" mem=\"1\" code");
        add("goal-sha256=\"d0dc", "goal-sha256=\"0000");
        for c in 1..=10 {
            add(&format!("<channel id=\"c{c}\" directed=\"false\">"), "<channel id=\"c1\" directed=\"false\">");
        }
        add("<to instance=\"Router@h2\" port=\"cout\" index=\"0\"/>", "<to instance=\"Router@h2\" port=\"cout\"/>");
        add("</hosts>", "  <host id=\"h7\"/>\n  </hosts>");
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

        /// verify, resolve, whatif and roles agree on whether a mutated DDD is
        /// acceptable for the goal.
        #[test]
        fn every_command_agrees_on_a_mutated_ddd(picks in prop::collection::vec(any::<prop::sample::Index>(), 0..3)) {
            let base = std::fs::read_to_string(manifest().join(ROLES_DDD)).unwrap();
            let all = mutations(&base);
            let mut text = base.clone();
            let mut done = vec![];
            for p in &picks {
                let (from, to) = p.get(&all);
                if text.contains(from.as_str()) {
                    text = text.replacen(from.as_str(), to, 1);
                    done.push(format!("{from:?} -> {to:?}"));
                }
            }
            let s = Scratch::new(&format!("mut{}", picks.iter().map(|p| p.index(1000)).sum::<usize>()));
            let ddd = s.s("m.ddd.xml");
            std::fs::write(&ddd, &text).unwrap();
            let runs = every_ddd_command(&ddd);
            let verdicts: Vec<(&str, bool)> = runs.iter().map(|(c, o)| (*c, rejects_ddd(o))).collect();
            let first = verdicts[0].1;
            for ((cmd, o), (_, v)) in runs.iter().zip(&verdicts) {
                prop_assert!(*v == first, "{done:?}: {verdicts:?}\n{cmd}: {}", show(o));
                prop_assert!(code(o) != 101 && !stderr(o).contains("panicked"), "{done:?}: {cmd}: {}", show(o));
                if *v {
                    prop_assert!(!ddd_lines(&stderr(o), &ddd).is_empty() || *cmd == "verify" && common::stdout(o).contains("\"line\""),
                        "{done:?}: {cmd} names no DDD line: {}", show(o));
                }
            }
        }
    }
}
