//! Tests of the MDCD runtime and simulator (`deladas simulate`, mdcd.md
//! §2–3): the checks of §3 over many seeds on the role-document fixtures of
//! `tests/roles/` (the P2P router cluster with the request–reply
//! application, the web farm with a declared external port, the chain), the
//! runtime's rules in isolation, and the command line.

mod common;

use std::collections::BTreeMap;

use common::{code, deladas, manifest, show, stderr, stdout};
use deladas::ddd::Deployment;
use deladas::mdcd::model::{Role, RoleDocument};
use deladas::mdcd::runtime::{ActiveProcess, Application, Effect, Envelope, Link, Output, ShadowProcess};
use deladas::mdcd::sim::{compare, simulate, AppKind, Report, Scenario};

// ---------------------------------------------------------------------------
// Fixtures

/// The DDD and the role document of a `tests/roles/cases` goal on its deployment.
fn fixture(case: &str) -> (Deployment, RoleDocument) {
    let name = case.split('-').next().unwrap_or(case);
    let goal = manifest().join(format!("tests/roles/cases/{case}.deladas"));
    let (_, checked) = deladas::check::check_path(&goal);
    assert!(!checked.has_errors(), "{case} checks");
    let text = std::fs::read_to_string(manifest().join(format!("tests/roles/deployments/{name}.ddd.xml"))).unwrap();
    let ddd = deladas::ddd::from_xml(&text).unwrap();
    let world = deladas::eval::bind(&checked.program, &ddd).unwrap();
    let roles = deladas::mdcd::assign(&checked.program, &world).unwrap();
    (ddd, roles)
}

fn p2p_apps() -> BTreeMap<String, AppKind> {
    BTreeMap::from([("Client".to_string(), AppKind::Client), ("Router".to_string(), AppKind::Router)])
}

fn run(ddd: &Deployment, roles: &RoleDocument, sc: &Scenario) -> Report {
    let reference = simulate(ddd, roles, sc, true).unwrap();
    let r = simulate(ddd, roles, sc, false).unwrap();
    compare(&r, &reference, sc)
}

fn explain(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap()
}

// ---------------------------------------------------------------------------
// The done criterion: the P2P router cluster, a fault after validated
// outputs, every check over 200+ seeds.

#[test]
fn p2p_router_cluster_recovers_over_many_seeds() {
    let (ddd, roles) = fixture("p2p-routers");
    assert_eq!(roles.groups.low.len(), 2);
    let mut recovered = 0;
    for seed in 0..240u64 {
        let sc = Scenario { seed, ticks: 12, fault_at: Some(8 + seed % 40), apps: p2p_apps(), ..Scenario::default() };
        let r = run(&ddd, &roles, &sc);
        assert!(r.ok, "seed {seed}: {}", explain(&r));
        assert!(r.checks.external_equal, "seed {seed}");
        assert!(r.external_messages > 0);
        if r.recoveries == 1 {
            recovered += 1;
            let low = &r.roles["low"];
            let act = &r.roles["active"];
            assert!(act.rollbacks <= act.processes, "seed {seed}: at most one rollback per process");
            assert!(low.internal_sent > 0);
        }
    }
    assert!(recovered >= 200, "only {recovered} of 240 seeds recovered");
}

/// Every fixture with an upgrade, the generic application, faults at
/// varied steps (before any validation, in the middle, after the end).
#[test]
fn generic_application_on_every_fixture() {
    for case in ["p2p-routers", "p2p-otherhost", "p2p-both", "p2p-none", "webfarm-cluster", "webfarm-lb"] {
        let (ddd, roles) = fixture(case);
        let mut recovered = 0;
        for seed in 0..40u64 {
            let fault_at = if seed % 10 == 9 { None } else { Some(2 + (seed * 7) % 60) };
            let sc = Scenario { seed, ticks: 10, fault_at, max_delay: 1 + seed % 9, ..Scenario::default() };
            let r = run(&ddd, &roles, &sc);
            assert!(r.ok, "{case}, seed {seed}: {}", explain(&r));
            recovered += r.recoveries;
        }
        eprintln!("{case}: {recovered} recoveries in 40 seeds");
    }
}

/// The request–reply application under many delays and workloads.
#[test]
fn p2p_varied_delays_and_workloads() {
    for case in ["p2p-routers", "p2p-otherhost", "p2p-both"] {
        let (ddd, roles) = fixture(case);
        for seed in 0..60u64 {
            let sc = Scenario {
                seed,
                ticks: 4 + seed % 17,
                fault_at: Some(seed % 50),
                max_delay: 1 + seed % 12,
                period: 1 + seed % 5,
                apps: p2p_apps(),
                ..Scenario::default()
            };
            let r = run(&ddd, &roles, &sc);
            assert!(r.ok, "{case}, seed {seed}: {}", explain(&r));
        }
    }
}

#[test]
fn zz_debug() {
    let (ddd, roles) = fixture("webfarm-lb");
    let sc = Scenario { seed: 3, ticks: 10, fault_at: Some(23), max_delay: 4, ..Scenario::default() };
    let r = simulate(&ddd, &roles, &sc, false).unwrap();
    let rf = simulate(&ddd, &roles, &sc, true).unwrap();
    for e in &r.trace {
        if e["kind"] != "external" || e["process"] == "LoadBalancer@lb1" {
            eprintln!("{e}");
        }
    }
    for e in &rf.trace {
        if e["process"] == "LoadBalancer@lb1" {
            eprintln!("REF {e}");
        }
    }
    eprintln!("{}", serde_json::to_string(&roles.groups).unwrap());
}
