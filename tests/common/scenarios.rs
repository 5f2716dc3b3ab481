//! The manager's scenarios on real test hosts, shared by the test binaries
//! of both stores (tests/manager.rs: the redb file; tests/manager_etcd.rs:
//! etcd): each takes how to bring a cluster up. Include it with
//! `#[path = "common/scenarios.rs"] mod scenarios;` beside `cluster` and
//! `common`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cluster::{ip, kept, lock, observed, wait_for, Cluster, GOAL, HOSTS};
use crate::common;

/// Brings a cluster up (`Cluster::up`, `Cluster::up_etcd`): a tag and the manager's extra arguments.
pub type Up = fn(u32, &[&str]) -> Option<Cluster>;

/// Scenarios 1, 2 and 3, and bad input to every endpoint.
pub fn deploy_restart_in_place_and_repair_a_crashed_host(up: Up) {
    let _serial = lock();
    let Some(mut c) = up(1, &[]) else { return };

    // 1. From nothing: the manager deploys once every agent reports.
    let d1 = c.wait_enacted(1, Duration::from_secs(60));
    let ddd1 = c.dir.join("g1.ddd.xml");
    std::fs::write(&ddd1, deladas::ddd::to_xml(&d1)).expect("writes");
    let v = common::deladas(&["verify", GOAL, &ddd1.display().to_string()]);
    assert_eq!(common::code(&v), 0, "{}", common::show(&v));
    c.wait_traffic(&d1, Duration::from_secs(30));

    // Bad input: clear errors (diagnostics as JSON), nothing changes.
    let (s, body) = c.request("GET", "/deployment", None, false).expect("answers");
    assert_eq!(s, 401, "no token: {body}");
    let (s, body) = c.request("POST", "/enact", Some("{\"ddd\": "), true).expect("answers");
    assert_eq!(s, 400, "{body}");
    let diag: Value = serde_json::from_str(&body).expect("diagnostics as JSON");
    assert_eq!(diag[0]["code"], "E0806", "{body}");
    let hb = json!({"host": "h99", "address": "10.210.0.99", "epoch": {"generation": 0, "step": 0}, "instances": []});
    let (s, body) = c.request("POST", "/agent/heartbeat", Some(&hb.to_string()), true).expect("answers");
    assert_eq!(s, 404, "unknown host: {body}");
    assert!(body.contains("h99"), "{body}");
    let other = common::deladas(&["solve", "examples/p2p.deladas"]);
    let req = json!({"ddd": common::stdout(&other), "generation": 1}).to_string();
    let (s, body) = c.request("POST", "/enact", Some(&req), true).expect("answers");
    assert_eq!(s, 422, "a DDD for another goal: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).expect("JSON")[0]["code"], "E0703", "{body}");
    let stale = json!({"ddd": deladas::ddd::to_xml(&d1), "generation": 0}).to_string();
    let (s, body) = c.request("POST", "/enact", Some(&stale), true).expect("answers");
    assert_eq!(s, 409, "a stale generation: {body}");
    assert!(body.contains("E0807"), "{body}");
    let (s, body) = c.request("POST", "/satisfy", Some("{\"constraints\": \"component\"}"), true).expect("answers");
    assert_eq!(s, 422, "a goal that does not check: {body}");
    assert_eq!(c.get("/deployment")["generation"], 1, "bad requests changed nothing");
    // A dry run of the running deployment plans no change.
    let (s, body) = c
        .request("POST", "/plan", Some(&json!({"ddd": deladas::ddd::to_xml(&d1)}).to_string()), true)
        .expect("answers");
    assert_eq!(s, 200, "{body}");
    let plan: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(plan["generation"], 1);
    assert_eq!(plan["plan"]["started"].as_array().map(Vec::len), Some(0), "{body}");
    let openapi = c.get("/openapi.json");
    assert!(openapi["paths"]["/enact"].is_object());

    // 2. Kill one instance process: restarted in place, no re-solve.
    let router = d1.instances.iter().find(|i| i.component == "Router").expect("a router").clone();
    let h = Cluster::host_index(&router.host);
    let pid = c.status(h, &router.id).and_then(|s| s["pid"].as_i64()).expect("the router's pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).expect("kill");
    wait_for("the router restarted in place", Duration::from_secs(15), || {
        observed(&c, &router.host)
            .iter()
            .any(|o| o["id"] == router.id.as_str() && o["restarts"] == 1 && o["state"] == "running" && o["pid"] != pid)
            .then_some(())
    });
    c.wait_traffic(&d1, Duration::from_secs(30));
    assert_eq!(c.get("/deployment")["generation"], 1, "no re-solve for an instance failure");

    // 3. Crash a host with a client: detected within the grace period,
    // repaired keeping exactly what `deladas resolve --fail-host` keeps.
    let victim = d1.instances.iter().find(|i| i.component == "Client").expect("a client").host.clone();
    let crashed_at = Instant::now();
    c.crash(Cluster::host_index(&victim));
    let failed = wait_for("the host failure event", Duration::from_secs(10), || c.event("host-failed", None));
    assert_eq!(failed["data"]["host"], victim.as_str());
    let silent = failed["data"]["silent_ms"].as_u64().expect("silent_ms");
    // Never before the grace period; soon after it (the reconcile loop's
    // tick, with room for a loaded CI machine).
    assert!((2000..6000).contains(&silent), "detected {silent} ms after the last heartbeat (grace 2 s)");
    assert!(crashed_at.elapsed() < Duration::from_secs(10));
    let d2 = c.wait_enacted(2, Duration::from_secs(60));
    assert!(d2.hosts.iter().all(|h| h.id != victim), "the failed host is out");
    let expected = c.dir.join("expected.ddd.xml");
    let r = common::deladas(&[
        "resolve",
        GOAL,
        "--from",
        &ddd1.display().to_string(),
        "--fail-host",
        &victim,
        "-o",
        &expected.display().to_string(),
    ]);
    assert_eq!(common::code(&r), 0, "{}", common::show(&r));
    let want = deladas::ddd::from_xml(&std::fs::read_to_string(&expected).expect("reads")).expect("a DDD");
    assert_eq!(kept(&d1, &d2), kept(&d1, &want), "the manager keeps exactly the bindings `deladas resolve` keeps");
    c.wait_traffic(&d2, Duration::from_secs(30));
    let ids = c.running_instances();
    let want_ids: Vec<String> = {
        let mut v: Vec<String> = d2.instances.iter().map(|i| i.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids, want_ids, "exactly the new deployment runs, each instance once");
    let metrics = c.request("GET", "/metrics", None, true).expect("metrics").1;
    assert!(metrics.contains("deladas_generation 2"), "{metrics}");
}

/// Scenario 6: hosts fail one by one until no configuration exists; the
/// survivors keep running and the event carries the explanation.
pub fn no_configuration_left_keeps_the_survivors_and_explains(up: Up) {
    let _serial = lock();
    let Some(mut c) = up(6, &[]) else { return };
    let mut d = c.wait_enacted(1, Duration::from_secs(60));
    let mut generation = 1;
    for victim in 1..HOSTS {
        c.crash(victim);
        let seen_events = c.events().len();
        let outcome = wait_for("a repair or an explanation", Duration::from_secs(60), || {
            let dep = c.try_get("/deployment").ok()?;
            if dep["generation"].as_u64() == Some(generation + 1) && dep["plan"].is_null() {
                return Some(None);
            }
            c.events()
                .into_iter()
                .skip(seen_events.saturating_sub(5))
                .find(|e| e["kind"] == "no-configuration")
                .map(Some)
        });
        match outcome {
            None => {
                generation += 1;
                d = c.wait_enacted(generation, Duration::from_secs(10));
            }
            Some(ev) => {
                let ex = &ev["data"]["explanation"];
                assert!(ex["message"].as_str().is_some_and(|m| m.contains("no configuration")), "{ev}");
                assert!(ex["conflict"].as_array().is_some_and(|a| !a.is_empty()), "the conflicting clauses: {ev}");
                // Nothing destructive: the survivors run as they did.
                let before: BTreeSet<String> = d
                    .instances
                    .iter()
                    .filter(|i| Cluster::host_index(&i.host) > victim)
                    .map(|i| i.id.clone())
                    .collect();
                assert!(!before.is_empty());
                std::thread::sleep(Duration::from_secs(3));
                let running: BTreeSet<String> = c.running_instances().into_iter().collect();
                assert_eq!(running, before, "the survivors keep running");
                assert_eq!(c.get("/deployment")["generation"].as_u64(), Some(generation), "nothing enacted");
                return;
            }
        }
    }
    panic!("a configuration survived every failure but one; the goal should need two hosts");
}

/// Scenario 4: a partitioned host's agent fences itself; after healing no
/// instance id runs twice and the healed host runs nothing until re-added.
pub fn a_partitioned_host_fences_itself(up: Up) {
    let _serial = lock();
    let Some(c) = up(4, &[]) else { return };
    let d1 = c.wait_enacted(1, Duration::from_secs(60));
    let victim = d1.instances.iter().find(|i| i.component == "Client").expect("a client").host.clone();
    let i = Cluster::host_index(&victim);
    ip(&["-n", &c.br(), "link", "set", &c.veth(i), "down"]);
    // Fenced (agents fence at half the grace period) before the manager repairs.
    wait_for("the partitioned agent to stop its instances", Duration::from_secs(10), || {
        let on_victim: Vec<String> =
            c.running_instances().into_iter().filter(|id| id.ends_with(&format!("@{victim}"))).collect();
        on_victim.is_empty().then_some(())
    });
    let d2 = c.wait_enacted(2, Duration::from_secs(60));
    assert!(d2.hosts.iter().all(|h| h.id != victim));
    ip(&["-n", &c.br(), "link", "set", &c.veth(i), "up"]);
    wait_for("the healed agent to report again", Duration::from_secs(15), || {
        c.get("/resources")["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|h| h["host"] == victim.as_str() && h["last_seen_ms_ago"].as_u64().is_some_and(|t| t < 1000))
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let ids = c.running_instances();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an instance id runs twice: {ids:?}");
    let mut want: Vec<String> = d2.instances.iter().map(|i| i.id.clone()).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(c.event("agent-fenced", None).is_some(), "the agent said it fenced itself");
    c.wait_traffic(&d2, Duration::from_secs(30));

    // A person adds the healed host back: satisfy (keeping the running
    // configuration) → plan → enact.
    let all: Vec<String> = (1..=HOSTS).map(|i| format!("h{i}")).collect();
    let req = json!({"running": deladas::ddd::to_xml(&d2), "resources": all}).to_string();
    let (s, body) = c.request("POST", "/satisfy", Some(&req), true).expect("answers");
    assert_eq!(s, 200, "{body}");
    let ddd = serde_json::from_str::<Value>(&body).expect("JSON")["ddds"][0].as_str().expect("a DDD").to_string();
    let (s, body) = c.request("POST", "/plan", Some(&json!({"ddd": ddd}).to_string()), true).expect("answers");
    assert_eq!(s, 200, "{body}");
    let g = serde_json::from_str::<Value>(&body).expect("JSON")["generation"].as_u64().expect("generation");
    assert_eq!(g, 2);
    let (s, body) =
        c.request("POST", "/enact", Some(&json!({"ddd": ddd, "generation": g}).to_string()), true).expect("answers");
    assert_eq!(s, 200, "{body}");
    let d3 = c.wait_enacted(3, Duration::from_secs(60));
    assert!(d3.hosts.iter().any(|h| h.id == victim), "the host is back");
    assert!(kept(&d2, &d3).len() == d2.instances.len(), "adding a host keeps every binding");
    let mut want: Vec<String> = d3.instances.iter().map(|i| i.id.clone()).collect();
    want.sort();
    wait_for("the new deployment to run", Duration::from_secs(20), || (c.running_instances() == want).then_some(()));
}

/// Scenario 5: the manager is killed (SIGKILL) in the middle of a plan and
/// restarted: the plan completes and no instance is started twice.
pub fn a_manager_killed_mid_plan_resumes_it(up: Up) {
    let _serial = lock();
    let Some(mut c) = up(5, &["--step-delay", "3"]) else { return };
    let d1 = c.wait_enacted(1, Duration::from_secs(60));
    let victim = d1.instances.iter().find(|i| i.component == "Client").expect("a client").host.clone();
    c.crash(Cluster::host_index(&victim));
    wait_for("the repair plan to start", Duration::from_secs(30), || c.event("plan-started", Some(2)));
    c.kill_manager();
    std::thread::sleep(Duration::from_millis(500));
    c.start_manager();
    let d2 = c.wait_enacted(2, Duration::from_secs(60));
    assert!(c
        .event("manager-started", Some(2))
        .is_some_and(|e| e["data"]["state"].as_str().is_some_and(|s| s.contains("resumed"))));
    let ids = c.running_instances();
    let mut want: Vec<String> = d2.instances.iter().map(|i| i.id.clone()).collect();
    want.sort();
    assert_eq!(ids, want, "the new deployment runs, each instance once");
    // Each instance was started once by its agent: the logs say so.
    for inst in &d2.instances {
        let log = std::fs::read_to_string(c.dir.join(format!("agent-{}.log", inst.host))).unwrap_or_default();
        let starts = log.matches(&format!("started {} (pid", inst.id)).count();
        assert_eq!(starts, 1, "{} started {starts} times:\n{log}", inst.id);
    }
    c.wait_traffic(&d2, Duration::from_secs(30));
}

/// Most hosts vanishing at once is not repaired but frozen, with an event
/// saying why; when they report again the manager unfreezes.
pub fn many_hosts_vanishing_at_once_freeze_the_manager(up: Up) {
    let _serial = lock();
    let Some(mut c) = up(7, &[]) else { return };
    let d1 = c.wait_enacted(1, Duration::from_secs(60));
    for i in 1..=4 {
        c.crash(i);
    }
    let frozen = wait_for("the freeze event", Duration::from_secs(15), || c.event("frozen", None));
    assert!(frozen["data"]["why"].as_str().is_some_and(|w| w.contains("4 of 6")), "{frozen}");
    std::thread::sleep(Duration::from_secs(3));
    let dep = c.get("/deployment");
    assert_eq!(dep["generation"], 1, "nothing re-solved while frozen");
    assert!(dep["frozen"].is_string());
    assert!(c.event("host-failed", None).is_none(), "no host failed while frozen");
    let survivors: Vec<String> = {
        let mut v: Vec<String> =
            d1.instances.iter().filter(|i| Cluster::host_index(&i.host) > 4).map(|i| i.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(c.running_instances(), survivors, "the survivors keep running");
    for i in 1..=4 {
        c.start_agent(i);
    }
    wait_for("the unfreeze event", Duration::from_secs(15), || c.event("unfrozen", None));
    let mut all: Vec<String> = d1.instances.iter().map(|i| i.id.clone()).collect();
    all.sort();
    wait_for("the deployment to run again", Duration::from_secs(20), || (c.running_instances() == all).then_some(()));
    c.wait_traffic(&d1, Duration::from_secs(30));
}
