//! A guarded upgrade of the running example with real processes on real
//! test hosts (docs/mdcd.md, "A guarded upgrade of the running example";
//! issue 17 part 3): `deladas manage` runs examples/p2p-guarded.deladas
//! (four clients that show what they receive on their external port, two
//! routers) on network-namespace hosts with one `deladas agent` each; POST
//! /upgrade with examples/p2p-guarded-upgrade.deladas restarts the routers
//! as the new version (G_low) with the old one as shadows beside them, and
//! the clients as G_act, all embedding the MDCD runtime.
//!
//! (a) A design fault in the new router (its payloads are wrong from its
//!     12th message to the clients on): a client's AT fails, the manager's
//!     coordinator recovers, the shadows take over, and what every client
//!     showed the world is exactly what the old system alone shows: every
//!     other client's messages, each once, in the old router's order, with
//!     the payloads their origins wrote. Then a second guarded period (the
//!     same upgrade again after the recovery) recovers the same way.
//! (b) Without the fault, the guarded period ends in promotion: the new
//!     routers serve, the shadows' processes are stopped, traffic goes on.
//! (c) Several G_low senders (examples/p2p-guarded-pairs.deladas: each of
//!     the two routers serves two clients, both routers upgraded): with the
//!     fault, per-link validation makes the recovery exact again: every
//!     client's world.log equals the old system's.
//! (d) The manager killed in the middle of the guarded period and started
//!     again resumes the upgrade from its store: GET /upgrade shows it, the
//!     coordinator is back on its address, and the guard timer goes on to
//!     promotion.
//! (e) A host of the upgrade crashes during the guarded period: the guard
//!     is given up (`upgrade-aborted`), the new version and the shadows are
//!     stopped, every surviving instance runs its old version plainly, and
//!     the manager's failure handling goes on as without an upgrade.
//!
//! Root only (network namespaces; CI runs as root): skipped otherwise with
//! a message. Each test is bounded (every wait has a limit).

#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::time::Duration;

use cluster::{lock, pids_in, wait_for, Cluster, HOSTS};
use serde_json::{json, Value};

const BASE: &str = "examples/p2p-guarded.deladas";
const UPGRADE: &str = "examples/p2p-guarded-upgrade.deladas";
const PAIRS: &str = "examples/p2p-guarded-pairs.deladas";
const PAIRS_UPGRADE: &str = "examples/p2p-guarded-pairs-upgrade.deladas";
/// Messages each client sends in test (a).
const COUNT: u64 = 40;

/// The payload an origin writes (the example's FNV-1a, computed here on its own).
fn payload_of(origin: &str, seq: u64) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin.bytes().chain(seq.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{origin}/{seq}/{h:016x}")
}

fn clients(d: &deladas::ddd::Deployment) -> Vec<(usize, String)> {
    let mut v: Vec<(usize, String)> = d
        .instances
        .iter()
        .filter(|i| i.component == "Client")
        .map(|i| (Cluster::host_index(&i.host), i.id.clone()))
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// What a client showed the world (`world.log`), line by line.
fn world(c: &Cluster, host: usize, id: &str) -> Vec<String> {
    let path = c.state(host).join("instances").join(id).join("world.log");
    std::fs::read_to_string(path).unwrap_or_default().lines().map(String::from).collect()
}

fn start_upgrade(c: &Cluster, guard_seconds: f64) -> Value {
    start_upgrade_of(c, UPGRADE, guard_seconds)
}

fn start_upgrade_of(c: &Cluster, goal: &str, guard_seconds: f64) -> Value {
    let text = std::fs::read_to_string(cluster::root().join(goal)).expect("reads the upgrade goal");
    let body = json!({"constraints": text, "guard_seconds": guard_seconds}).to_string();
    let (s, answer) = c.request("POST", "/upgrade", Some(&body), true).expect("answers");
    assert_eq!(s, 200, "{answer}");
    serde_json::from_str(&answer).expect("JSON")
}

fn running(c: &Cluster) -> BTreeSet<String> {
    c.running_instances().into_iter().collect()
}

#[test]
fn a_faulty_new_router_is_recovered_and_the_world_sees_the_old_systems_output() {
    let _serial = lock();
    let count = COUNT.to_string();
    let env = [("DELADAS_P2P_FAULT_FROM", "12"), ("DELADAS_P2P_COUNT", count.as_str())];
    let Some(c) = Cluster::up_with(1, BASE, &[], &env) else { return };
    let d = c.wait_enacted(1, Duration::from_secs(90));
    c.wait_traffic(&d, Duration::from_secs(60));

    // Bad requests change nothing.
    let (s, body) = c.request("POST", "/upgrade", Some("{\"constraints\": 3}"), true).expect("answers");
    assert_eq!(s, 400, "{body}");
    let base = std::fs::read_to_string(cluster::root().join(BASE)).expect("reads");
    let (s, body) =
        c.request("POST", "/upgrade", Some(&json!({"constraints": base}).to_string()), true).expect("answers");
    assert_eq!(s, 422, "a goal without `upgrade`: {body}");
    // Several G_low processes with external ports (the clients show to the
    // world): their external messages share one counter, so it is refused.
    let clients_up = format!("{base}\nupgrade Client(code = \"p2p-client\", changes = {{}})\n");
    let (s, body) =
        c.request("POST", "/upgrade", Some(&json!({"constraints": clients_up}).to_string()), true).expect("answers");
    assert_eq!(s, 422, "several G_low processes with external ports: {body}");
    assert!(body.contains("processes with external ports in G_low"), "{body}");
    assert!(c.get("/upgrade").is_null(), "no upgrade started");

    let started = start_upgrade(&c, 120.0);
    assert_eq!(started["low"], json!(["Router@h1", "Router@h2"]), "{started}");
    assert_eq!(started["shadow"], json!(["Router@h1~shadow", "Router@h2~shadow"]), "{started}");
    assert_eq!(started["active"].as_array().map(Vec::len), Some(4), "{started}");
    assert!(c.event("upgrade-started", None).is_some());
    // The new version fails its clients' AT: the coordinator recovers.
    let recovered = wait_for("the recovery event", Duration::from_secs(90), || c.event("recovered", None));
    assert_eq!(recovered["data"]["recoveries"], 1, "{recovered}");
    assert_eq!(c.get("/upgrade")["phase"], "recovered");

    worlds_equal_the_old_systems(&c, &d, 1);
    // The shadows serve; the new version's processes are stopped.
    shadows_serve(&c, &["Router@h1", "Router@h2"]);
    assert!(c.event("promoted", None).is_none(), "a recovered upgrade is not promoted");

    // A second guarded period after the recovery: the same upgrade again
    // (the routers G_low, shadows beside them, every process restarted in
    // its role, the clients sending their COUNT messages anew). The fault
    // strikes again, and again the world sees what the old system shows.
    let again = start_upgrade(&c, 120.0);
    assert_eq!(again["low"], json!(["Router@h1", "Router@h2"]), "{again}");
    assert_eq!(c.get("/upgrade")["phase"], "guarded");
    wait_for("the second recovery", Duration::from_secs(90), || {
        (c.events().iter().filter(|e| e["kind"] == "recovered").count() == 2).then_some(())
    });
    worlds_equal_the_old_systems(&c, &d, 2);
    shadows_serve(&c, &["Router@h1", "Router@h2"]);
}

/// Every client shows every other client's COUNT messages (waits for all),
/// exactly what the old system alone shows: the old router hands its
/// clients message s of every client, in client order, round after round.
/// `periods` guarded periods, each from a fresh start of the clients.
fn worlds_equal_the_old_systems(c: &Cluster, d: &deladas::ddd::Deployment, periods: usize) {
    let cs = clients(d);
    let want = |me: &str| -> Vec<String> {
        let mut v = vec![];
        for s in (0..periods).flat_map(|_| 0..COUNT) {
            for (_, o) in &cs {
                if o != me {
                    v.push(format!("{o} {s} {}", payload_of(o, s)));
                }
            }
        }
        v
    };
    let expected = ((cs.len() as u64 - 1) * COUNT) as usize * periods;
    wait_for("every client to show every message", Duration::from_secs(90), || {
        cs.iter().all(|(h, id)| world(c, *h, id).len() >= expected).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    for (h, id) in &cs {
        assert_eq!(world(c, *h, id), want(id), "{id}: what the world received equals the old system's output");
    }
}

/// The new version's processes `lows` are stopped; their shadows serve.
fn shadows_serve(c: &Cluster, lows: &[&str]) {
    wait_for("the new routers stopped", Duration::from_secs(20), || {
        let r = running(c);
        lows.iter().all(|l| !r.contains(*l)).then_some(())
    });
    let r = running(c);
    for l in lows {
        assert!(r.contains(&format!("{l}~shadow")), "{r:?}");
    }
}

#[test]
fn several_faulty_new_routers_each_serving_two_clients_are_recovered_exactly() {
    let _serial = lock();
    let count = COUNT.to_string();
    let env = [("DELADAS_P2P_FAULT_FROM", "12"), ("DELADAS_P2P_COUNT", count.as_str())];
    let Some(c) = Cluster::up_with(3, PAIRS, &[], &env) else { return };
    let d = c.wait_enacted(1, Duration::from_secs(90));
    let routers: Vec<String> = d.instances.iter().filter(|i| i.component == "Router").map(|i| i.id.clone()).collect();
    for r in &routers {
        let served = d.channels.iter().filter(|ch| ch.from.instance == *r || ch.to.instance == *r).count();
        assert_eq!(served, 2 * 2 + 2, "{r} serves two clients (in and out) and one router (both ways)");
    }
    c.wait_traffic(&d, Duration::from_secs(60));
    let started = start_upgrade_of(&c, PAIRS_UPGRADE, 120.0);
    assert_eq!(started["low"], json!(routers), "both routers are G_low senders: {started}");
    let recovered = wait_for("the recovery event", Duration::from_secs(90), || c.event("recovered", None));
    assert_eq!(recovered["data"]["recoveries"], 1, "{recovered}");
    worlds_equal_the_old_systems(&c, &d, 1);
    let lows: Vec<&str> = routers.iter().map(String::as_str).collect();
    shadows_serve(&c, &lows);
}

#[test]
fn a_fault_free_upgrade_is_promoted_and_the_shadows_retire() {
    let _serial = lock();
    let Some(c) = Cluster::up_with(2, BASE, &[], &[]) else { return };
    let d = c.wait_enacted(1, Duration::from_secs(90));
    c.wait_traffic(&d, Duration::from_secs(60));
    start_upgrade(&c, 12.0);
    // The guarded period: the shadows run beside the new routers.
    wait_for("the shadows running", Duration::from_secs(30), || {
        let r = running(&c);
        (r.contains("Router@h1~shadow") && r.contains("Router@h2~shadow")).then_some(())
    });
    let cs = clients(&d);
    wait_for("clients showing messages under guard", Duration::from_secs(30), || {
        cs.iter().all(|(h, id)| world(&c, *h, id).len() > 10).then_some(())
    });
    let promoted = wait_for("the promotion event", Duration::from_secs(90), || c.event("promoted", None));
    assert!(c.event("recovered", None).is_none(), "no recovery without a fault: {promoted}");
    assert_eq!(c.get("/upgrade")["phase"], "promoted");
    // The shadows retire; the new routers serve on.
    wait_for("the shadows stopped", Duration::from_secs(20), || {
        let r = running(&c);
        (!r.contains("Router@h1~shadow") && !r.contains("Router@h2~shadow")).then_some(())
    });
    let r = running(&c);
    assert!(r.contains("Router@h1") && r.contains("Router@h2"), "{r:?}");
    for r in d.instances.iter().filter(|i| i.component == "Router") {
        let h = Cluster::host_index(&r.host);
        wait_for(&format!("{} promoted", r.id), Duration::from_secs(20), || {
            let s = c.status(h, &r.id)?;
            assert_eq!(s["role"], "low", "{s}");
            (s["promoted"] == true).then_some(())
        });
    }
    // Traffic continues after the promotion.
    let before: Vec<usize> = cs.iter().map(|(h, id)| world(&c, *h, id).len()).collect();
    wait_for("traffic after the promotion", Duration::from_secs(30), || {
        cs.iter().zip(&before).all(|((h, id), b)| world(&c, *h, id).len() > b + 10).then_some(())
    });
    // What the world saw: correct payloads, each message once.
    for (h, id) in &cs {
        let lines = world(&c, *h, id);
        let unique: BTreeSet<&String> = lines.iter().collect();
        assert_eq!(unique.len(), lines.len(), "{id} showed a message twice");
        for l in &lines {
            let w: Vec<&str> = l.split(' ').collect();
            let seq: u64 = w[1].parse().expect("a number");
            assert_eq!(w[2], payload_of(w[0], seq), "{id}: {l}");
        }
    }
}

#[test]
fn a_manager_restarted_mid_guard_resumes_the_upgrade_and_promotes() {
    let _serial = lock();
    let Some(c) = Cluster::up_with(4, BASE, &[], &[]) else { return };
    restarted_mid_guard(c, Duration::from_millis(300));
}

#[test]
fn on_etcd_a_manager_restarted_mid_guard_resumes_the_upgrade_and_promotes() {
    let _serial = lock();
    let Some(c) = Cluster::up_etcd_with(6, BASE) else { return };
    // The agents keep their leases in etcd: they do not fence while the
    // manager is away; the new manager is elected once the old lease lapsed.
    restarted_mid_guard(c, Duration::from_millis(300));
}

/// (d) on a cluster `c` (redb or etcd): kill the manager mid-guard, start
/// it again after `away`, and see it resume the upgrade and promote it.
fn restarted_mid_guard(mut c: Cluster, away: Duration) {
    let d = c.wait_enacted(1, Duration::from_secs(90));
    c.wait_traffic(&d, Duration::from_secs(60));
    let started = start_upgrade(&c, 20.0);
    let coordinator = started["coordinator"].clone();
    wait_for("the shadows running", Duration::from_secs(30), || {
        let r = running(&c);
        (r.contains("Router@h1~shadow") && r.contains("Router@h2~shadow")).then_some(())
    });
    let before = c.get("/upgrade");
    assert_eq!(before["phase"], "guarded", "{before}");
    // Back before the agents fence themselves (the harness's grace is 2 s,
    // agents fence after half of it without the manager).
    c.kill_manager();
    std::thread::sleep(away);
    c.start_manager();
    // On etcd it answers once elected.
    let after = wait_for("the manager to lead", Duration::from_secs(60), || c.try_get("/upgrade").ok());
    assert_eq!(after["phase"], "guarded", "resumed from the store: {after}");
    assert_eq!(after["processes"], before["processes"], "the same processes and roles");
    assert!(
        after["elapsed_seconds"].as_f64() >= before["elapsed_seconds"].as_f64(),
        "the guard timer goes on: {before} then {after}"
    );
    let resumed = c.event("upgrade-resumed", None).expect("an upgrade-resumed event");
    assert_eq!(resumed["data"]["phase"], "guarded", "{resumed}");
    // Nothing was restarted: the processes run under the same specs.
    let r = running(&c);
    assert!(r.contains("Router@h1~shadow") && r.contains("Router@h2~shadow"), "{r:?}");
    let promoted = wait_for("the promotion event", Duration::from_secs(90), || c.event("promoted", None));
    assert!(c.event("recovered", None).is_none(), "no recovery without a fault: {promoted}");
    assert_eq!(c.get("/upgrade")["phase"], "promoted");
    wait_for("the shadows stopped", Duration::from_secs(20), || {
        let r = running(&c);
        (!r.contains("Router@h1~shadow") && !r.contains("Router@h2~shadow")).then_some(())
    });
    // The coordinator that ended the period listened where the first one did.
    let ended = c.event("promoted", None).map(|e| e["seq"].clone());
    assert!(ended.is_some() && coordinator.is_string(), "{coordinator}");
    for r in d.instances.iter().filter(|i| i.component == "Router") {
        let h = Cluster::host_index(&r.host);
        wait_for(&format!("{} promoted", r.id), Duration::from_secs(20), || {
            let s = c.status(h, &r.id)?;
            (s["promoted"] == true && s["guard_ended"] == true).then_some(())
        });
    }
}

/// Processes on the hosts that run in an MDCD role (`DELADAS_MDCD` set).
fn in_mdcd_roles(c: &Cluster) -> usize {
    (1..=HOSTS)
        .flat_map(|i| pids_in(&c.ns(i)))
        .filter(|pid| {
            let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            environ.split(|&b| b == 0).any(|v| v.starts_with(b"DELADAS_MDCD="))
        })
        .count()
}

#[test]
fn a_host_crash_during_the_guarded_period_aborts_the_upgrade() {
    let _serial = lock();
    let Some(mut c) = Cluster::up_with(5, BASE, &[], &[]) else { return };
    let d = c.wait_enacted(1, Duration::from_secs(90));
    c.wait_traffic(&d, Duration::from_secs(60));
    start_upgrade(&c, 120.0);
    // The agents restart every process in its role one by one: wait for all.
    wait_for("the shadows running, every process in its role", Duration::from_secs(30), || {
        let r = running(&c);
        (r.contains("Router@h1~shadow") && r.contains("Router@h2~shadow") && in_mdcd_roles(&c) >= 8).then_some(())
    });
    // A client's host crashes.
    let (host, client) = clients(&d)[0].clone();
    c.crash(host);
    let aborted = wait_for("the upgrade-aborted event", Duration::from_secs(60), || c.event("upgrade-aborted", None));
    assert_eq!(aborted["data"]["hosts"], json!([format!("h{host}")]), "{aborted}");
    assert!(aborted["data"]["processes"].as_array().is_some_and(|p| p.contains(&json!(client))), "{aborted}");
    assert_eq!(c.get("/upgrade")["phase"], "aborted");
    assert!(c.event("promoted", None).is_none() && c.event("recovered", None).is_none());
    // The new version and the shadows are stopped; the survivors run their
    // old version plainly (no MDCD role), the routers among them.
    // (The routers are restarted out of their role: wait for them running
    // again, not only for the roles gone.)
    wait_for("every process out of its MDCD role, the routers running", Duration::from_secs(60), || {
        let r = running(&c);
        (in_mdcd_roles(&c) == 0
            && !r.iter().any(|i| i.ends_with("~shadow"))
            && r.contains("Router@h1")
            && r.contains("Router@h2"))
        .then_some(())
    });
    // The failure is handled as without an upgrade: the host is failed and
    // the manager re-solves (six instances need six hosts: no configuration
    // without the crashed one, so the survivors are kept and it says why).
    let failed = c.event("host-failed", None).expect("host-failed");
    assert_eq!(failed["data"]["host"], format!("h{host}"));
    wait_for("the re-solve's answer", Duration::from_secs(90), || {
        c.event("no-configuration", None).or_else(|| c.event("plan-started", Some(2)))
    });
    // The world saw only correct messages, each once.
    for (h, id) in clients(&d).iter().filter(|(h, _)| *h != host) {
        let lines = world(&c, *h, id);
        let unique: BTreeSet<&String> = lines.iter().collect();
        assert_eq!(unique.len(), lines.len(), "{id} showed a message twice");
        for l in &lines {
            let w: Vec<&str> = l.split(' ').collect();
            assert_eq!(w[2], payload_of(w[0], w[1].parse().expect("a number")), "{id}: {l}");
        }
    }
}
