//! The autonomic cycle with real processes on real test hosts: `deladas
//! manage`, one `deladas agent` per host, the example router and client
//! (docs/manager.md). Hosts are network namespaces on a bridge, made and
//! deleted by each test (root only; CI runs as root); the manager listens on
//! the bridge address with a token. Scenarios on the P2P goal with 6 hosts:
//! 1 deploy and traffic, 2 an instance killed (restarted in place), 3 a host
//! crash (the bindings `deladas resolve --fail-host` keeps), 4 a partition
//! (fencing; no instance twice), 5 the manager killed mid-plan, 6 failures
//! until no configuration exists. Tests run one at a time (a lock): timing
//! matters (a 2 s grace period) and the machine is small.

#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/scenarios.rs"]
mod scenarios;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster::{bin_dir, wait_for, Cluster, GOAL};
use serde_json::Value;

/// Scenarios 1, 2 and 3, and bad input to every endpoint.
#[test]
fn deploy_restart_in_place_and_repair_a_crashed_host() {
    scenarios::deploy_restart_in_place_and_repair_a_crashed_host(Cluster::up);
}

/// Scenario 6: hosts fail one by one until no configuration exists; the
/// survivors keep running and the event carries the explanation.
#[test]
fn no_configuration_left_keeps_the_survivors_and_explains() {
    scenarios::no_configuration_left_keeps_the_survivors_and_explains(Cluster::up);
}

/// Scenario 4: a partitioned host's agent fences itself; after healing no
/// instance id runs twice and the healed host runs nothing until re-added.
#[test]
fn a_partitioned_host_fences_itself() {
    scenarios::a_partitioned_host_fences_itself(Cluster::up);
}

/// Scenario 5: the manager is killed (SIGKILL) in the middle of a plan and
/// restarted: the plan completes and no instance is started twice.
#[test]
fn a_manager_killed_mid_plan_resumes_it() {
    scenarios::a_manager_killed_mid_plan_resumes_it(Cluster::up);
}

/// The agent's and the client commands' usage errors are plain.
#[test]
fn client_commands_without_a_manager_exit_2() {
    let o = common::deladas(&["status", "--manager", "http://127.0.0.1:9"]);
    assert_eq!(common::code(&o), 2, "{}", common::show(&o));
    assert!(common::stderr(&o).contains("cannot reach the manager"), "{}", common::show(&o));
    let o = common::deladas(&["manage", GOAL, "--listen", "0.0.0.0:7499"]);
    assert_eq!(common::code(&o), 2, "{}", common::show(&o));
    assert!(common::stderr(&o).contains("needs a token"), "{}", common::show(&o));
    let _ = Path::new(GOAL);
}

/// A program that keeps exiting is restarted in place with back-off, then
/// reported as a failed instance (a crash loop). Loopback only: no root.
#[test]
fn a_crash_loop_is_reported_as_an_instance_failure() {
    let dir = std::env::temp_dir().join(format!("deladas-crashloop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let goal = dir.join("crash.deladas");
    std::fs::write(
        &goal,
        "component Crasher(code = \"x.xml\", command = \"false\", ports = {p})\nhost h1 = host()\n\
         constraintset s = constraintset {\n    card(instancesof Crasher in deployment) >= 1\n}\n",
    )
    .expect("goal");
    let port = 20000 + std::process::id() % 20000;
    let url = format!("http://127.0.0.1:{port}");
    let spawn = |args: &[String]| {
        Command::new(bin_dir().join("deladas"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns")
    };
    struct Kill(Vec<Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            for c in &mut self.0 {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut procs = Kill(vec![]);
    procs.0.push(spawn(&[
        "manage".into(),
        goal.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--store".into(),
        dir.join("s.redb").display().to_string(),
    ]));
    procs.0.push(spawn(&[
        "agent".into(),
        "--host".into(),
        "h1".into(),
        "--manager".into(),
        url.clone(),
        "--state-dir".into(),
        dir.join("h1").display().to_string(),
        "--heartbeat".into(),
        "0.2".into(),
    ]));
    let events = wait_for("the instance-failed event", Duration::from_secs(60), || {
        let o = common::deladas(&["events", "--manager", &url]);
        let out = common::stdout(&o);
        out.contains("\"instance-failed\"").then_some(out)
    });
    let ev: Value = events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["kind"] == "instance-failed")
        .expect("the event");
    assert_eq!(ev["data"]["instance"], "Crasher@h1", "{ev}");
    assert_eq!(ev["data"]["restarts"], 4, "restarted in place 4 times, then given up: {ev}");
    assert_eq!(ev["data"]["last_exit"], "exit code 1", "{ev}");
    let o = common::deladas(&["status", "--manager", &url, "--json"]);
    let v: Value = serde_json::from_str(&common::stdout(&o)).expect("status --json");
    assert_eq!(v["deployment"]["generation"], 1, "no re-solve for an instance failure");
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Most hosts vanishing at once is not repaired but frozen, with an event
/// saying why; when they report again the manager unfreezes.
#[test]
fn many_hosts_vanishing_at_once_freeze_the_manager() {
    scenarios::many_hosts_vanishing_at_once_freeze_the_manager(Cluster::up);
}
