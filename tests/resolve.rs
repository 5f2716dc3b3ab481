//! `deladas resolve` and `deladas whatif`: re-solving a running deployment
//! after failures, on the peers' P2P goal (from its canonical deployment)
//! and on the web farm.
//!
//! The optimum is cross-checked by brute force over the surviving bindings:
//! for subsets of the survivors, largest first, the plain `solve` path (no
//! pins, no host literals) decides whether a configuration keeps them all,
//! written as `card(instancesof C in h) >= 1` clauses. The largest subset
//! that can be kept must equal the number `resolve` keeps.

mod common;

use std::path::{Path, PathBuf};

use common::{code, deladas, show, stderr, stdout};
use deladas::bench_goals::{p2p, p2p_canonical_ddd, Variant};

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("resolve").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Writes the P2P goal for `n` hosts and its canonical deployment.
fn p2p_files(d: &Path, n: usize) -> (String, String) {
    let goal = d.join("p2p.deladas");
    let ddd = d.join("old.ddd.xml");
    std::fs::write(&goal, p2p(n, Variant::Satisfy)).expect("write goal");
    std::fs::write(&ddd, p2p_canonical_ddd(n).expect("canonical deployment")).expect("write ddd");
    (goal.display().to_string(), ddd.display().to_string())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `resolve` with `-o OUT --plan-format json`; returns the plan.
fn resolve_json(goal: &str, ddd: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    resolve_json_verify(goal, goal, ddd, out, extra)
}

/// [`resolve_json`], verifying the new DDD against `verify_goal`.
fn resolve_json_verify(goal: &str, verify_goal: &str, ddd: &str, out: &Path, extra: &[&str]) -> serde_json::Value {
    let out_s = s(out);
    let mut args = vec!["resolve", goal, "--from", ddd, "-o", &out_s, "--plan-format", "json"];
    args.extend_from_slice(extra);
    let o = deladas(&args);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}\n{}", show(&o)));
    // The new DDD passes `verify`, independently of the solver.
    let v = deladas(&["verify", verify_goal, &out_s]);
    assert_eq!(code(&v), 0, "the re-solved DDD fails verify:\n{}", show(&v));
    plan
}

fn kept(plan: &serde_json::Value) -> u64 {
    plan["objective"]["bindings_kept"]["value"].as_u64().expect("bindings kept")
}

/// (component, host) of every instance in a DDD.
fn bindings(ddd: &str) -> Vec<(String, String)> {
    let d = deladas::ddd::from_xml(ddd).expect("DDD reads");
    d.instances.iter().map(|i| (i.component.clone(), i.host.clone())).collect()
}

/// The most of `survivors` any configuration on the hosts other than `down`
/// keeps, by brute force over subsets (largest first) with plain `solve`.
fn brute_max_kept(goal_text: &str, survivors: &[(String, String)], down: &[&str]) -> usize {
    let n = survivors.len();
    assert!(n <= 12, "brute force is for small deployments");
    let mut by_size: Vec<u32> = (0..(1u32 << n)).collect();
    by_size.sort_by_key(|m| std::cmp::Reverse(m.count_ones()));
    for mask in by_size {
        let mut text = goal_text.to_string();
        text.push_str("constraintset pins = constraintset {\n");
        for (i, (c, h)) in survivors.iter().enumerate() {
            if mask & (1 << i) != 0 {
                text.push_str(&format!("    card(instancesof {c} in {h}) >= 1\n"));
            }
        }
        text.push_str("}\n");
        let loaded = deladas::check::load(Path::new("pins.deladas"), Some(&text), &deladas::check::RealFs);
        let (_, checked) = deladas::check::check_loaded(loaded);
        assert!(!checked.has_errors(), "{:?}", checked.diags);
        let p = &checked.program;
        let up: Vec<usize> = (0..p.hosts.len()).filter(|&h| !down.contains(&p.hosts[h].name.as_str())).collect();
        let opts = deladas::solve::Options { parsimony: false, ..Default::default() };
        let (outcome, _) = deladas::solve::solve(p, &up, &opts, &mut deladas::solve::Quiet).expect("grounds");
        match outcome {
            deladas::solve::Outcome::Sat { .. } => return mask.count_ones() as usize,
            deladas::solve::Outcome::Unsat { .. } => {}
            other => panic!("brute force: {other:?}"),
        }
    }
    0
}

/// The done-when of issue 5: a router host fails in an 8-host P2P
/// deployment; `resolve` keeps every binding any configuration can keep,
/// prints the plan, and writes a DDD `verify` accepts.
#[test]
fn router_host_fails_in_eight_host_p2p() {
    let d = dir("router8");
    let (goal, ddd) = p2p_files(&d, 8);
    let out = d.join("new.ddd.xml");
    let plan = resolve_json(&goal, &ddd, &out, &["--fail-host", "h1"]);
    let old = std::fs::read_to_string(&ddd).expect("old");
    let survivors: Vec<_> = bindings(&old).into_iter().filter(|(_, h)| h != "h1").collect();
    let best = brute_max_kept(&p2p(8, Variant::Satisfy), &survivors, &["h1"]);
    assert_eq!(kept(&plan) as usize, best, "{plan:#}");
    assert_eq!(best, 6, "the peers' optimum for N=8 is N-2");
    assert_eq!(plan["objective"]["bindings_kept"]["optimal"], true);
    // Kept instances keep their ids; the new DDD lists no failed host.
    let new = std::fs::read_to_string(&out).expect("new");
    let nd = deladas::ddd::from_xml(&new).expect("reads");
    assert!(nd.hosts.iter().all(|h| h.id != "h1"));
    for k in plan["instances"]["kept"].as_array().expect("kept") {
        let id = k["id"].as_str().expect("id");
        assert!(nd.instances.iter().any(|i| i.id == id), "kept {id} missing from the new DDD");
    }
    // The counts at the end add up: every old instance is accounted for once.
    let c = &plan["counts"];
    let accounted = c["instances_kept"].as_u64().unwrap_or(0)
        + c["instances_restarted"].as_u64().unwrap_or(0)
        + c["instances_stopped"].as_u64().unwrap_or(0)
        + c["instances_moved"].as_u64().unwrap_or(0);
    assert_eq!(accounted, 8, "{plan:#}");
    // The text plan says the same, with the counts at the end.
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--fail-host", "h1", "-o", &s(&d.join("t.ddd.xml"))]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = stdout(&o);
    assert!(text.contains("move      Router@h1 on h1 -> Router@h"), "{text}");
    assert!(text.contains("takes its place on"), "{text}");
    assert!(text.contains("instances: 6 kept, 0 restarted"), "{text}");
    assert!(
        text.contains("optimal: no configuration keeps more than 6 of the 7 surviving instance bindings"),
        "{text}"
    );
}

/// Without `-o`, the DDD goes to stdout and the plan to stderr.
#[test]
fn ddd_on_stdout_plan_on_stderr() {
    let d = dir("stdout");
    let (goal, ddd) = p2p_files(&d, 6);
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--fail-host", "h6"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).starts_with("<?xml"), "{}", show(&o));
    assert!(stderr(&o).contains("migration plan (failed: h6)"), "{}", show(&o));
}

/// Each single host failure of small P2P deployments: the optimum equals
/// brute force, and the paper's progressive strategy never keeps more.
#[test]
fn every_single_failure_is_optimal_on_small_p2p() {
    for n in [5, 6] {
        let d = dir(&format!("each{n}"));
        let (goal, ddd) = p2p_files(&d, n);
        let old = std::fs::read_to_string(&ddd).expect("old");
        for f in 1..=n {
            let host = format!("h{f}");
            let plan = resolve_json(&goal, &ddd, &d.join(format!("o{f}.ddd.xml")), &["--fail-host", &host]);
            let survivors: Vec<_> = bindings(&old).into_iter().filter(|(_, h)| *h != host).collect();
            let best = brute_max_kept(&p2p(n, Variant::Satisfy), &survivors, &[&host]);
            assert_eq!(kept(&plan) as usize, best, "N={n}, {host} fails: {plan:#}");
            let greedy = resolve_json(
                &goal,
                &ddd,
                &d.join(format!("g{f}.ddd.xml")),
                &["--fail-host", &host, "--strategy", "progressive"],
            );
            assert!(kept(&greedy) <= kept(&plan), "progressive keeps more than optimal?\n{greedy:#}");
            eprintln!("N={n} fail {host}: optimal keeps {}, progressive {}, of {}", kept(&plan), kept(&greedy), best);
        }
    }
}

/// A client host fails: the other bindings and their channels all stay.
#[test]
fn client_host_fails() {
    let d = dir("client");
    let (goal, ddd) = p2p_files(&d, 8);
    let plan = resolve_json(&goal, &ddd, &d.join("new.ddd.xml"), &["--fail-host", "h8"]);
    assert_eq!(kept(&plan), 7, "{plan:#}");
    assert_eq!(plan["counts"]["channels_removed"], 2, "only the failed client's two channels go: {plan:#}");
    assert_eq!(plan["counts"]["instances_started"], 0);
    assert_eq!(plan["objective"]["channels_kept"]["optimal"], true);
}

/// Two hosts fail at once; brute force confirms the optimum.
#[test]
fn two_hosts_fail() {
    let d = dir("two");
    let (goal, ddd) = p2p_files(&d, 8);
    let plan = resolve_json(&goal, &ddd, &d.join("new.ddd.xml"), &["--fail-host", "h1", "--fail-host", "h5"]);
    let old = std::fs::read_to_string(&ddd).expect("old");
    let survivors: Vec<_> = bindings(&old).into_iter().filter(|(_, h)| h != "h1" && h != "h5").collect();
    assert_eq!(kept(&plan) as usize, brute_max_kept(&p2p(8, Variant::Satisfy), &survivors, &["h1", "h5"]));
    assert_eq!(plan["failed_hosts"], serde_json::json!(["h1", "h5"]));
}

/// A host is added along with a failure: the new host takes the new
/// router, so every surviving binding is kept (one more than without it).
#[test]
fn host_added() {
    let d = dir("added");
    let (goal, ddd) = p2p_files(&d, 8);
    // The new DDD is for the goal with the added host declared.
    let with_h9 = d.join("with_h9.deladas");
    let text = std::fs::read_to_string(&goal).expect("goal") + "host h9 = host(ipaddress = \"10.0.0.9\")\n";
    std::fs::write(&with_h9, text).expect("write");
    let plan = resolve_json_verify(
        &goal,
        &s(&with_h9),
        &ddd,
        &d.join("new.ddd.xml"),
        &["--fail-host", "h1", "--add-host", "h9 = host(ipaddress = \"10.0.0.9\")"],
    );
    assert_eq!(kept(&plan), 7, "{plan:#}");
    assert_eq!(plan["added_hosts"], serde_json::json!(["h9"]));
    let started = plan["instances"]["moved"].as_array().expect("moved");
    assert!(started.iter().any(|m| m["to"]["host"] == "h9"), "{plan:#}");
    // The new DDD lists the added host.
    let new = std::fs::read_to_string(d.join("new.ddd.xml")).expect("new");
    assert!(new.contains("<host id=\"h9\">"), "{new}");
}

/// An instance fails on a live host: restarted in place, everything kept.
#[test]
fn instance_fails_and_restarts_in_place() {
    let d = dir("instance");
    let (goal, ddd) = p2p_files(&d, 8);
    let plan = resolve_json(&goal, &ddd, &d.join("new.ddd.xml"), &["--fail-instance", "Router@h2"]);
    assert_eq!(
        plan["instances"]["restarted"],
        serde_json::json!([{"id": "Router@h2", "component": "Router", "host": "h2"}])
    );
    assert_eq!(plan["counts"]["instances_stopped"], 0, "{plan:#}");
    assert_eq!(plan["counts"]["channels_removed"], 0, "{plan:#}");
}

/// The web farm: a web server host fails and the server moves to the spare
/// web host; the DDD verifies.
#[test]
fn webfarm_web_host_fails() {
    let d = dir("webfarm");
    let old = d.join("old.ddd.xml");
    let o = deladas(&["solve", "examples/webfarm.deladas", "-o", &s(&old)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let old_text = std::fs::read_to_string(&old).expect("old");
    let web_host = bindings(&old_text).into_iter().find(|(c, _)| c == "WebServer").expect("a web server").1;
    let plan = resolve_json("examples/webfarm.deladas", &s(&old), &d.join("new.ddd.xml"), &["--fail-host", &web_host]);
    let n_old = bindings(&old_text).len() as u64;
    assert_eq!(kept(&plan), n_old - 1, "{plan:#}");
    let moved = plan["instances"]["moved"].as_array().expect("moved");
    assert_eq!(moved.len(), 1, "{plan:#}");
    assert_eq!(moved[0]["from"]["component"], "WebServer");
}

/// When nothing can be kept on what is left, exit 1 with the explanation,
/// naming the failure.
#[test]
fn no_resolve_exists() {
    let d = dir("impossible");
    let old = d.join("old.ddd.xml");
    let o = deladas(&["solve", "examples/webfarm.deladas", "-o", &s(&old)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    // Both public hosts gone: no host may run the load balancer.
    let o = deladas(&[
        "resolve",
        "examples/webfarm.deladas",
        "--from",
        &s(&old),
        "--fail-host",
        "lb1",
        "--fail-host",
        "lb2",
    ]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    let e = stderr(&o);
    assert!(e.contains("error[E0801]: goal is unsatisfiable"), "{e}");
    assert!(e.contains("no configuration exists after the failure of `lb1` and `lb2`"), "{e}");
}

/// Bad failures and additions are errors with exit 2 and a hint.
#[test]
fn bad_arguments_exit_2() {
    let d = dir("bad");
    let (goal, ddd) = p2p_files(&d, 6);
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--fail-host", "h7"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("error[E0805]: `--fail-host h7`: the deployment has no host `h7`"), "{}", show(&o));
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--fail-instance", "Router@h9"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(
        stderr(&o).contains("error[E0805]: `--fail-instance Router@h9`: the deployment has no instance `Router@h9`"),
        "{}",
        show(&o)
    );
    assert!(stderr(&o).contains("help: did you mean `Router@h"), "{}", show(&o));
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--add-host", "h3"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("already in the deployment"), "{}", show(&o));
    // An added host that redeclares a host is the checker's error.
    let o = deladas(&["resolve", &goal, "--from", &ddd, "--add-host", "h2 = host(ipaddress = \"x\")"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    // A DDD written for another goal.
    let o = deladas(&["resolve", "examples/webfarm.deladas", "--from", &ddd]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("E0703"), "{}", show(&o));
}

/// `whatif`: every single host of the canonical P2P deployment survives
/// failing, and the report says how many bindings the best repair keeps;
/// on the web farm the load balancer's hosts matter only together.
#[test]
fn whatif_reports_each_host() {
    let d = dir("whatif");
    let (goal, ddd) = p2p_files(&d, 6);
    let o = deladas(&["whatif", &goal, "--from", &ddd, "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let cases = r["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 6);
    let old = std::fs::read_to_string(&ddd).expect("old");
    for c in cases {
        let host = c["fail"][0].as_str().expect("host").to_string();
        assert_eq!(c["survives"], true, "{c}");
        let survivors: Vec<_> = bindings(&old).into_iter().filter(|(_, h)| *h != host).collect();
        let best = brute_max_kept(&p2p(6, Variant::Satisfy), &survivors, &[&host]);
        assert_eq!(c["bindings_kept"].as_u64(), Some(best as u64), "{c}");
    }
    // The web farm with pairs: losing both public hosts is fatal (exit 1);
    // single points of failure come with their explanation.
    let old = d.join("wf.ddd.xml");
    let o = deladas(&["solve", "examples/webfarm.deladas", "-o", &s(&old)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = deladas(&["whatif", "examples/webfarm.deladas", "--from", &s(&old), "--pairs"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(stdout(&o).contains("lb1 + lb2            FATAL: no configuration without them"), "{}", show(&o));
    let fatal_single: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.contains("FATAL") && !l.contains('+'))
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    for h in &fatal_single {
        assert!(
            stderr(&o).contains(&format!("single point of failure: the goal cannot be met if {h} fails")),
            "{}",
            show(&o)
        );
    }
}

/// `--add-host` takes exactly one host declaration (or a declared host's
/// name); anything else is an error naming the flag, not an error inside the
/// goal file.
#[test]
fn add_host_is_one_declaration() {
    let d = dir("addhost");
    let (goal, ddd) = p2p_files(&d, 6);
    for bad in [
        "x = host(cpu = )",
        "d = host(cpu = 1) host e = host(cpu = 1)",
        "",
        "z = host()\nconstraintset c = constraintset { true }",
    ] {
        let o = deladas(&["resolve", &goal, "--from", &ddd, "--add-host", bad]);
        assert_eq!(code(&o), 2, "{bad:?}: {}", show(&o));
        assert!(stderr(&o).contains("error[E0805]: `--add-host"), "{bad:?}: {}", show(&o));
        assert!(!stderr(&o).contains("p2p.deladas:"), "the error points into the goal file: {}", show(&o));
    }
}

/// The progressive strategy does not optimise: its plan never claims a
/// proven optimum it did not prove.
#[test]
fn progressive_claims_no_optimum() {
    let d = dir("progressive");
    let (goal, ddd) = p2p_files(&d, 20);
    let plan = resolve_json(&goal, &ddd, &d.join("new.ddd.xml"), &["--fail-host", "h1", "--strategy", "progressive"]);
    assert_eq!(plan["strategy"], "progressive");
    let optimal = resolve_json(&goal, &ddd, &d.join("opt.ddd.xml"), &["--fail-host", "h1"]);
    let (pc, oc) = (&plan["objective"]["channels_kept"], &optimal["objective"]["channels_kept"]);
    // Progressive pins bindings only, so it keeps fewer channels here; it
    // must not call that optimal.
    assert!(pc["value"].as_u64() < oc["value"].as_u64(), "{plan:#}");
    assert_eq!(pc["optimal"], false, "{plan:#}");
    assert_eq!(plan["objective"]["bindings_kept"]["optimal"], false, "{plan:#}");
    assert_eq!(optimal["objective"]["channels_kept"]["optimal"], true, "{optimal:#}");
}

/// Named instances (issue 19): after the failure of the host of some, they
/// are placed again under their names; the others keep their hosts and ids;
/// `whatif` finds every single failure survivable.
#[test]
fn named_instances_are_placed_again_after_a_host_failure() {
    let d = dir("named");
    let goal = d.join("vms.deladas");
    std::fs::write(
        &goal,
        "component VM(code = \"vm\", ports = {}, cpu = 10, maxperhost = 4)\n\
         host pm1 = host(cpu = 40)\nhost pm2 = host(cpu = 40)\nhost pm3 = host(cpu = 40)\n\
         instance big = VM(cpu = 30)\ninstance vm[4] = VM\n\
         constraintset capacity = constraintset {\n    \
         forall host h in deployment ( sum(VM v in h : v.cpu) <= h.cpu )\n    \
         forall vm a, b in deployment ( a != b implies hostof(a) != hostof(b) or hostof(a) != hostof(big) )\n}\n",
    )
    .expect("write goal");
    let old = d.join("old.ddd.xml");
    let o = deladas(&["solve", &s(&goal), "-o", &s(&old)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let before = deladas::ddd::from_xml(&std::fs::read_to_string(&old).expect("old")).expect("reads");
    let ids: Vec<&str> = before.instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids.len(), 5, "{ids:?}");
    for n in ["big", "vm1", "vm2", "vm3", "vm4"] {
        assert!(ids.contains(&n), "{n} in {ids:?}");
    }
    let host_of = |dd: &deladas::ddd::Deployment, id: &str| {
        dd.instances.iter().find(|i| i.id == id).map(|i| i.host.clone()).expect("placed")
    };
    let failed = host_of(&before, "big");
    let out = d.join("new.ddd.xml");
    let plan = resolve_json(&s(&goal), &s(&old), &out, &["--fail-host", &failed]);
    let after = deladas::ddd::from_xml(&std::fs::read_to_string(&out).expect("new")).expect("reads");
    assert_eq!(after.instances.len(), 5, "{plan}");
    assert_ne!(host_of(&after, "big"), failed);
    for i in before.instances.iter().filter(|i| i.host != failed) {
        assert_eq!(host_of(&after, &i.id), i.host, "{} keeps its host: {plan}", i.id);
    }
    assert!(after.instances.iter().all(|i| i.component == "VM" && i.host != failed));
    let o = deladas(&["whatif", &s(&goal), "--from", &s(&old)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).contains("3 cases, 0 fatal"), "{}", show(&o));
}
