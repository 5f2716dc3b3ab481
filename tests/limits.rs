//! Limits kept over the whole run (issue 13): `--timeout` bounds every phase
//! (grounding, solver calls, parsimony, explanation, re-solving), a memory
//! limit (`--max-memory`, `ulimit -v`) ends in E0802/E0803 and never in a
//! panic (101) or an abort (134), and SIGINT/SIGTERM stop a run within a
//! second with 130/143 and no output.
//!
//! These run the real binary on generated goals (the peers' P2P goal).
//! Time bounds allow the 1 s the issue grants beyond the limit, plus the
//! start of the process (half a second: the machine running the tests is
//! shared).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{code, show, stderr};
use deladas::bench_goals::{p2p, p2p_canonical_ddd, Variant};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("deladas-limits-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn goal(dir: &Path, n: usize, v: Variant) -> PathBuf {
    let p = dir.join(format!("p2p-{n}-{}.deladas", matches!(v, Variant::Unsat)));
    std::fs::write(&p, p2p(n, v)).expect("write goal");
    p
}

fn run(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_deladas"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("DELADAS_DEBUG")
        .output()
        .expect("the deladas binary runs");
    (o, t.elapsed())
}

/// The slack allowed beyond a limit: 1 s or 5 %, and the process start.
fn slack(limit: f64) -> Duration {
    Duration::from_secs_f64((limit * 0.05).max(1.0) + 0.5)
}

const PHASES: &[&str] = &["starting", "counting", "grounding", "solving", "minimising", "re-solving", "explaining"];

/// Exit 0 (answered in time) or 3 (gave up, E0802 naming the phase), in time.
fn assert_kept(o: &Output, took: Duration, limit: f64, what: &str) {
    let c = code(o);
    assert!(
        took <= Duration::from_secs_f64(limit) + slack(limit),
        "{what}: --timeout {limit} took {took:?}\n{}",
        show(o)
    );
    assert!(matches!(c, 0 | 1 | 3), "{what}: --timeout {limit}: unexpected exit\n{}", show(o));
    if c == 3 {
        let e = stderr(o);
        assert!(e.contains("E0802"), "{what}: {}", show(o));
        if e.contains("out of time") {
            assert!(PHASES.iter().any(|p| e.contains(&format!("while {p}"))), "{what}: no phase named\n{}", show(o));
        }
    }
}

#[test]
fn timeout_is_kept_in_every_phase_of_solve() {
    let dir = scratch("solve");
    let mut phases: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for n in [200, 1000] {
        let g = goal(&dir, n, Variant::Satisfy);
        let out = dir.join("out.ddd.xml");
        for limit in [0.001, 0.05, 0.3, 1.0, 2.0] {
            let _ = std::fs::remove_file(&out);
            let l = limit.to_string();
            let (o, took) =
                run(&["solve", g.to_str().expect("path"), "-o", out.to_str().expect("path"), "--timeout", &l]);
            assert_kept(&o, took, limit, &format!("solve p2p {n}"));
            if code(&o) == 3 {
                assert!(!out.exists(), "a run that gave up wrote a configuration");
                let e = stderr(&o);
                phases.extend(PHASES.iter().filter(|p| e.contains(&format!("while {p}"))));
            } else {
                assert!(out.exists(), "{}", show(&o));
            }
        }
    }
    // The tiny limits stop the run early, the larger ones later: more than one phase is seen.
    assert!(!phases.is_empty(), "no run gave up");
}

#[test]
fn timeout_is_kept_by_explain_and_by_solve_on_an_unsatisfiable_goal() {
    let dir = scratch("explain");
    let g = goal(&dir, 200, Variant::Unsat);
    for limit in [0.05, 0.5, 1.5] {
        let l = limit.to_string();
        let (o, took) = run(&["explain", g.to_str().expect("path"), "--timeout", &l]);
        assert_kept(&o, took, limit, "explain p2p 200 unsat");
        let (o, took) = run(&["solve", g.to_str().expect("path"), "--timeout", &l]);
        assert_kept(&o, took, limit, "solve p2p 200 unsat");
    }
}

#[test]
fn timeout_is_kept_by_resolve() {
    let dir = scratch("resolve");
    let n = 400;
    let g = goal(&dir, n, Variant::Satisfy);
    let ddd = dir.join("canonical.ddd.xml");
    std::fs::write(&ddd, p2p_canonical_ddd(n).expect("canonical deployment")).expect("write ddd");
    let out = dir.join("new.ddd.xml");
    for limit in [0.01, 0.3, 1.0] {
        let _ = std::fs::remove_file(&out);
        let l = limit.to_string();
        let (o, took) = run(&[
            "resolve",
            g.to_str().expect("path"),
            "--from",
            ddd.to_str().expect("path"),
            "--fail-host",
            "h1",
            "--fail-host",
            "h2",
            "-o",
            out.to_str().expect("path"),
            "--timeout",
            &l,
        ]);
        assert_kept(&o, took, limit, "resolve p2p 400");
    }
}

#[test]
fn a_memory_limit_is_a_diagnostic_never_a_panic_or_an_abort() {
    let dir = scratch("memory");
    let g = goal(&dir, 1000, Variant::Satisfy);
    let (o, _) = run(&["solve", g.to_str().expect("path"), "--max-memory", "40M", "--timeout", "20"]);
    assert!(matches!(code(&o), 2 | 3), "{}", show(&o));
    let e = stderr(&o);
    assert!(e.contains("E0802") || e.contains("E0803"), "{}", show(&o));
    assert!(e.contains("memory"), "the message names the memory limit\n{}", show(&o));
    let (o, _) = run(&["solve", g.to_str().expect("path"), "--max-memory", "lots"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
}

#[test]
fn under_ulimit_v_a_large_goal_never_panics_or_aborts() {
    let dir = scratch("ulimit");
    let g = goal(&dir, 2000, Variant::Satisfy);
    let bin = env!("CARGO_BIN_EXE_deladas");
    for kb in [400_000, 1_000_000, 3_000_000] {
        let script = format!("ulimit -v {kb}; exec '{bin}' solve '{}' --timeout 10 -o /dev/null", g.display());
        let o = Command::new("sh").arg("-c").arg(&script).env("NO_COLOR", "1").output().expect("sh runs");
        let c = code(&o);
        assert!(matches!(c, 0 | 2 | 3), "ulimit -v {kb}: exit {c}\n{}", show(&o));
        let e = stderr(&o);
        assert!(!e.contains("panicked"), "ulimit -v {kb}\n{}", show(&o));
        if c != 0 {
            assert!(e.contains("E0802") || e.contains("E0803"), "ulimit -v {kb}\n{}", show(&o));
        }
    }
}

/// Starts a long solve, sends `signal` after `after`, and returns the exit
/// code and how long the process took to stop.
fn interrupted(signal: &str, after: Duration) -> (Option<i32>, Duration, bool) {
    let dir = scratch(&format!("signal-{signal}"));
    let g = goal(&dir, 1000, Variant::Satisfy);
    let out = dir.join("out.ddd.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deladas"))
        .args(["solve", g.to_str().expect("path"), "-o", out.to_str().expect("path")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("deladas starts");
    std::thread::sleep(after);
    let sent = Instant::now();
    let k = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().expect("kill runs");
    assert!(k.success());
    let deadline = sent + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.and_then(|s| s.code()), sent.elapsed(), out.exists())
}

#[test]
fn sigint_and_sigterm_stop_a_run_within_a_second_with_no_output() {
    for (signal, expect) in [("INT", 130), ("TERM", 143)] {
        let (c, took, wrote) = interrupted(signal, Duration::from_millis(1500));
        assert_eq!(c, Some(expect), "SIG{signal}: exit");
        assert!(took <= Duration::from_millis(1500), "SIG{signal}: took {took:?}");
        assert!(!wrote, "SIG{signal}: output written");
    }
}
