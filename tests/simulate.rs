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
use deladas::mdcd::runtime::{
    ActiveProcess, Application, CounterGroup, Effect, Envelope, Link, LowProcess, Output, ShadowProcess,
};
use deladas::mdcd::sim::{compare, simulate, AppKind, Report, Scenario};
use proptest::prelude::*;

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
    assert_eq!(roles.groups.active.len(), 4);
    let mut recovered_after_validation = 0;
    for seed in 0..240u64 {
        let sc = Scenario { seed, ticks: 12, fault_at: Some(8 + seed % 40), apps: p2p_apps(), ..Scenario::default() };
        let reference = simulate(&ddd, &roles, &sc, true).unwrap();
        let out = simulate(&ddd, &roles, &sc, false).unwrap();
        let r = compare(&out, &reference, &sc);
        assert!(r.ok, "seed {seed}: {}", explain(&r));
        assert!(r.checks.external_equal, "seed {seed}");
        assert_eq!(r.external_messages, 48, "4 clients × 12 replies, none lost or duplicated");
        let recovery = out.trace.iter().find(|e| e["kind"] == "recovery").and_then(|e| e["step"].as_u64());
        if let Some(step) = recovery {
            let validated_before = out
                .trace
                .iter()
                .filter(|e| e["kind"] == "passed_at" && e["step"].as_u64().is_some_and(|s| s <= step))
                .count();
            if validated_before > 0 {
                recovered_after_validation += 1;
            }
            let act = &r.roles["active"];
            assert!(act.stats.rollbacks <= act.processes, "seed {seed}: at most one rollback per process");
            assert_eq!(
                r.roles["shadow"].stats.rollbacks + act.stats.rollbacks,
                act.stats.rollback_distances.len() as u64 + r.roles["shadow"].stats.rollback_distances.len() as u64
            );
            // A failed AT started it; the erroneous output never reached
            // the world (external_equal above).
            assert!(out.trace.iter().any(|e| e["kind"] == "at_failed"));
        }
    }
    assert!(
        recovered_after_validation >= 200,
        "only {recovered_after_validation} of 240 seeds recovered after validated outputs"
    );
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any seed, workload, fault step, delay bound and tick period, on any
    /// fixture with a boundary, with either application: every check holds
    /// at AT coverage 1.
    #[test]
    fn any_scenario_meets_every_check(
        seed in any::<u64>(),
        ticks in 0u64..25,
        fault_at in proptest::option::of(0u64..150),
        max_delay in 1u64..16,
        period in 1u64..7,
        case in 0usize..4,
        p2p in any::<bool>(),
    ) {
        let case = ["p2p-routers", "p2p-otherhost", "webfarm-cluster", "webfarm-lb"][case];
        let (ddd, roles) = fixture(case);
        let apps = if p2p && case.starts_with("p2p") { p2p_apps() } else { BTreeMap::new() };
        let sc = Scenario { seed, ticks, fault_at, max_delay, period, apps, ..Scenario::default() };
        let r = run(&ddd, &roles, &sc);
        prop_assert!(r.ok && r.checks.external_equal, "{case} {sc:?}: {}", explain(&r));
    }
}

// ---------------------------------------------------------------------------
// The guarantee on every topology (issue 17): generated goals and
// deployments — chains, diamonds, stars, trees with extra channels —, any
// set of upgraded components (several low components, partial upgrades),
// changed interfaces inside the cluster, external ports anywhere, faults at
// any step, any delays.

/// A generated system: `n` components `C0…`, one instance each (`Ci@h…`),
/// channels `(a, b)` between them (each end its own port `e<k>`), the
/// components with an external port `x`, the upgraded ones, and the
/// channels inside the cluster whose ports change on both ends.
#[derive(Debug, Clone)]
struct Topology {
    n: usize,
    edges: Vec<(usize, usize)>,
    external: Vec<bool>,
    upgraded: Vec<bool>,
    changed: Vec<bool>,
}

impl Topology {
    fn shape(kind: usize, n: usize, extra: &[(usize, usize)], picks: &[usize]) -> Vec<(usize, usize)> {
        let mut e: Vec<(usize, usize)> = match kind {
            // chain C0 – C1 – … – Cn-1
            0 => (1..n).map(|i| (i - 1, i)).collect(),
            // diamond C0 → {C1, C2} → C3, then a chain on
            1 if n >= 4 => {
                let mut v = vec![(0, 1), (0, 2), (1, 3), (2, 3)];
                v.extend((4..n).map(|i| (i - 1, i)));
                v
            }
            // star around C0
            2 => (1..n).map(|i| (0, i)).collect(),
            // a random tree
            _ => (1..n).map(|i| (picks[i % picks.len()] % i, i)).collect(),
        };
        if kind == 1 && n < 4 {
            e = (1..n).map(|i| (i - 1, i)).collect();
        }
        for &(a, b) in extra {
            let (a, b) = (a % n, b % n);
            if a != b {
                e.push((a, b));
            }
        }
        e
    }

    fn goal(&self) -> String {
        let mut s = String::new();
        for c in 0..self.n {
            let mut ports: Vec<String> = Vec::new();
            for (k, &(a, b)) in self.edges.iter().enumerate() {
                if a == c {
                    ports.push(format!("e{k}a"));
                }
                if b == c {
                    ports.push(format!("e{k}b"));
                }
            }
            if self.external[c] {
                ports.push("x: external".into());
            }
            s += &format!("component C{c}(code = \"c{c}-1.xml\", ports = {{{}}})\n", ports.join(", "));
        }
        s += "host h0 = host(ipaddress = \"10.0.0.1\")\nhost h1 = host(ipaddress = \"10.0.0.2\")\n";
        for c in 0..self.n {
            if self.upgraded[c] {
                let changes: Vec<String> = self
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| self.changed[*k])
                    .flat_map(|(k, &(a, b))| {
                        let mut v = vec![];
                        if a == c {
                            v.push(format!("e{k}a"));
                        }
                        if b == c {
                            v.push(format!("e{k}b"));
                        }
                        v
                    })
                    .collect();
                let shadow = if c % 2 == 0 { "samehost" } else { "otherhost" };
                s += &format!(
                    "upgrade C{c}(code = \"c{c}-2.xml\", changes = {{{}}}, shadow = \"{shadow}\")\n",
                    changes.join(", ")
                );
            }
        }
        s
    }

    fn ddd(&self) -> String {
        let mut s = String::from(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<deployment xmlns=\"urn:deladas:ddd:1\" format=\"1\" generator=\"tests/simulate.rs\">\n<hosts>\n",
        );
        for h in 0..2 {
            s += &format!(
                "<host id=\"h{h}\"><attr name=\"ipaddress\" type=\"string\" value=\"10.0.0.{}\"/></host>\n",
                h + 1
            );
        }
        s += "</hosts>\n<components>\n";
        for c in 0..self.n {
            s += &format!("<component name=\"C{c}\" code=\"c{c}-1.xml\">\n");
            for (k, &(a, b)) in self.edges.iter().enumerate() {
                if a == c {
                    s += &format!("<port name=\"e{k}a\"/>\n");
                }
                if b == c {
                    s += &format!("<port name=\"e{k}b\"/>\n");
                }
            }
            if self.external[c] {
                s += "<port name=\"x\" direction=\"external\"/>\n";
            }
            s += "</component>\n";
        }
        s += "</components>\n<instances>\n";
        for c in 0..self.n {
            s += &format!("<instance id=\"C{c}@h{}\" component=\"C{c}\" host=\"h{}\"/>\n", c % 2, c % 2);
        }
        s += "</instances>\n<channels>\n";
        for (k, &(a, b)) in self.edges.iter().enumerate() {
            s += &format!(
                "<channel id=\"c{k}\" directed=\"false\"><from instance=\"C{a}@h{}\" port=\"e{k}a\"/><to instance=\"C{b}@h{}\" port=\"e{k}b\"/></channel>\n",
                a % 2,
                b % 2
            );
        }
        s += "</channels>\n</deployment>\n";
        s
    }

    /// The DDD and the role document `deladas roles` computes for it.
    fn build(&self, tag: &str) -> (Deployment, RoleDocument) {
        let path = tmp(&format!("topo-{tag}.deladas"));
        std::fs::write(&path, self.goal()).unwrap();
        let (_, checked) = deladas::check::check_path(&path);
        assert!(!checked.has_errors(), "{}\n{:?}", self.goal(), checked.diags);
        let ddd = deladas::ddd::from_xml(&self.ddd()).unwrap();
        let world = deladas::eval::bind(&checked.program, &ddd).unwrap();
        let roles = deladas::mdcd::assign(&checked.program, &world).unwrap();
        (ddd, roles)
    }
}

fn topology() -> impl Strategy<Value = Topology> {
    (
        0usize..4,
        2usize..7,
        proptest::collection::vec((0usize..7, 0usize..7), 0..3),
        proptest::collection::vec(0usize..100, 1..8),
        proptest::collection::vec(0u8..4, 7),
        proptest::collection::vec(any::<bool>(), 7),
        proptest::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(kind, n, extra, picks, ext, up, ch)| {
            // A quarter of the components have an external port; when none
            // has, the simulator reports on every G_act instance.
            let ext: Vec<bool> = ext.iter().map(|e| *e == 0).collect();
            let edges = Topology::shape(kind, n, &extra, &picks);
            let mut upgraded: Vec<bool> = up[..n].to_vec();
            if upgraded.iter().all(|u| !u) {
                upgraded[0] = true;
            }
            if upgraded.iter().all(|u| *u) {
                upgraded[n - 1] = false;
            }
            let changed =
                edges.iter().enumerate().map(|(k, &(a, b))| upgraded[a] && upgraded[b] && ch[k % ch.len()]).collect();
            Topology { n, edges, external: ext[..n].to_vec(), upgraded, changed }
        })
}

/// The per-(process, port) guarantee and the recovery line, read from a
/// run and its reference: what [`compare`] checks, and from the trace that
/// no rollback went to a checkpoint at or below the recovery's validated
/// counter.
fn assert_guarantee(ddd: &Deployment, roles: &RoleDocument, sc: &Scenario, what: &str) -> Report {
    let reference = simulate(ddd, roles, sc, true).unwrap();
    let out = simulate(ddd, roles, sc, false).unwrap();
    let r = compare(&out, &reference, sc);
    assert!(r.ok && r.checks.external_equal, "{what} {sc:?}: {}", explain(&r));
    let validated = out.trace.iter().find(|e| e["kind"] == "recovery").and_then(|e| e["validated"].as_u64());
    for e in out.trace.iter().filter(|e| e["kind"] == "rollback") {
        let ck = e["checkpoint"].as_u64().unwrap();
        assert!(validated.is_some_and(|v| ck > v), "{what}: rollback to {ck} past the validated point {validated:?}");
    }
    assert!(out.recoveries <= 1);
    r
}

/// Issue 17's reproducer: Display validates Hub's contaminated state
/// through Hub's messages; with the paper's premise (a state influenced by
/// an erroneous message is contaminated, and so is what it sends), Display's
/// AT fails instead and the recovery rolls Hub back.
#[test]
fn chain3_sensor_upgrade_keeps_the_guarantee() {
    let goal = manifest().join("tests/simulate/chain3.deladas");
    let (_, checked) = deladas::check::check_path(&goal);
    assert!(!checked.has_errors());
    let text = std::fs::read_to_string(manifest().join("tests/simulate/chain3.ddd.xml")).unwrap();
    let ddd = deladas::ddd::from_xml(&text).unwrap();
    let world = deladas::eval::bind(&checked.program, &ddd).unwrap();
    let roles = deladas::mdcd::assign(&checked.program, &world).unwrap();
    let stored =
        RoleDocument::from_xml(&std::fs::read_to_string(manifest().join("tests/simulate/chain3.roles.xml")).unwrap())
            .unwrap();
    assert_eq!(roles, stored, "tests/simulate/chain3.roles.xml is what `deladas roles` computes");
    let mut recoveries = 0;
    for seed in 0..200u64 {
        let sc = Scenario {
            seed,
            fault_at: Some(seed % 9),
            max_delay: 1 + seed % 8,
            period: 1 + seed % 5,
            ..Scenario::default()
        };
        recoveries += assert_guarantee(&ddd, &roles, &sc, "chain3").recoveries;
    }
    assert!(recoveries >= 150, "{recoveries} recoveries in 200 faulty runs");
    // The command line, exactly as in the issue.
    let o = deladas(&[
        "simulate",
        "tests/simulate/chain3.deladas",
        "--deployment",
        "tests/simulate/chain3.ddd.xml",
        "--roles",
        "tests/simulate/chain3.roles.xml",
        "--seed",
        "4",
        "--fault-at",
        "0",
        "--report",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["checks"]["external_equal"], true);
    assert_eq!(report["recoveries"], 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Every generated topology, upgrade set, fault and delay bound: at AT
    /// coverage 1 the world receives, per process and port, exactly what the
    /// reference run sends; no rollback past a validated point; no cascading
    /// rollback; and a fault-free run never rolls back.
    #[test]
    fn any_topology_keeps_the_guarantee(
        topo in topology(),
        seed in any::<u64>(),
        ticks in 1u64..14,
        fault_at in proptest::option::of(0u64..40),
        max_delay in 1u64..10,
        period in 1u64..6,
    ) {
        let (ddd, roles) = topo.build(&format!("{seed:x}"));
        let sc = Scenario { seed, ticks, fault_at, max_delay, period, ..Scenario::default() };
        assert_guarantee(&ddd, &roles, &sc, &format!("{topo:?}"));
    }
}

/// A long sweep over generated topologies, run by hand
/// (`cargo test --release --test simulate -- --ignored topologies_stress`).
#[test]
#[ignore]
fn topologies_stress() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config { cases: 1, ..Config::default() });
    let (mut runs, mut recoveries) = (0u64, 0u64);
    for k in 0..3000u64 {
        let topo = topology().new_tree(&mut runner).unwrap().current();
        let (ddd, roles) = topo.build("stress");
        for seed in 0..8u64 {
            let seed = k * 8 + seed;
            let sc = Scenario {
                seed,
                ticks: 1 + seed % 15,
                fault_at: if seed % 11 == 0 { None } else { Some((seed * 13) % 70) },
                max_delay: 1 + seed % 9,
                period: 1 + seed % 5,
                ..Scenario::default()
            };
            recoveries += assert_guarantee(&ddd, &roles, &sc, &format!("{topo:?}")).recoveries;
            runs += 1;
        }
    }
    eprintln!("{runs} runs, {recoveries} recoveries, every check held");
}

/// With an AT that misses errors, erroneous messages may reach the world,
/// but the protocol's own checks still hold and the run completes.
#[test]
fn partial_coverage_keeps_the_protocol_checks() {
    let (ddd, roles) = fixture("p2p-routers");
    let mut escaped = 0;
    for seed in 0..40u64 {
        let sc = Scenario {
            seed,
            ticks: 10,
            fault_at: Some(10 + seed % 30),
            at_coverage: 0.3,
            apps: p2p_apps(),
            ..Scenario::default()
        };
        let r = run(&ddd, &roles, &sc);
        assert!(!r.checks.external_equal_required);
        assert!(r.ok, "seed {seed}: {}", explain(&r));
        if !r.checks.external_equal {
            escaped += 1;
        }
    }
    assert!(escaped > 0, "with coverage 0.3 some erroneous output reaches the world");
}

/// Without a fault: the reference's messages, no recovery, no rollback,
/// and checkpoints and log entries well below one per message received.
#[test]
fn fault_free_runs_equal_the_reference() {
    for case in ["p2p-routers", "webfarm-cluster"] {
        let (ddd, roles) = fixture(case);
        for seed in 0..30u64 {
            let apps = if case.starts_with("p2p") { p2p_apps() } else { BTreeMap::new() };
            let sc = Scenario { seed, ticks: 15, apps, ..Scenario::default() };
            let r = run(&ddd, &roles, &sc);
            assert!(r.ok && r.checks.external_equal, "{case} seed {seed}: {}", explain(&r));
            assert_eq!(r.recoveries, 0);
            assert!(r.roles.values().all(|f| f.stats.rollbacks == 0));
            assert_eq!(r.external_messages, r.reference_external_messages);
            assert!(r.overhead.checkpoints_per_1000 < 1000.0);
            assert!(r.roles["active"].stats.checkpoints > 0, "{case}: G_act checkpoints on contamination");
        }
    }
}

/// The reference run is the old system alone: no shadows, no protocol.
#[test]
fn reference_run_has_no_protocol_activity() {
    let (ddd, roles) = fixture("p2p-routers");
    let sc = Scenario { seed: 5, ticks: 8, fault_at: Some(3), apps: p2p_apps(), ..Scenario::default() };
    let r = simulate(&ddd, &roles, &sc, true).unwrap();
    assert!(r.reference);
    assert_eq!(r.processes.len(), ddd.instances.len());
    assert!(r.processes.iter().all(|p| p.role == Role::Active && p.stats.checkpoints == 0 && p.stats.logged == 0));
    assert_eq!(r.recoveries, 0);
    // 4 clients, 8 requests each, each reply reported once.
    assert_eq!(r.externals.len(), 32);
    // Deterministic: the same seed gives the same trace.
    let again = simulate(&ddd, &roles, &sc, true).unwrap();
    assert_eq!(r.trace, again.trace);
}

// ---------------------------------------------------------------------------
// The runtime's rules in isolation, on a toy application.

/// Records what it receives; answers each message on link 0 and, when
/// `report`, on the external port `out`.
#[derive(Clone, Default)]
struct Toy {
    seen: Vec<u64>,
    report: bool,
}

impl Application for Toy {
    type Msg = u64;
    type Snapshot = Vec<u64>;
    fn snapshot(&self) -> Vec<u64> {
        self.seen.clone()
    }
    fn restore(&mut self, s: &Vec<u64>) {
        self.seen = s.clone();
    }
    fn on_message(&mut self, _link: usize, msg: u64) -> Vec<Output<u64>> {
        self.seen.push(msg);
        let mut out = vec![Output::Internal { link: 0, msg: msg + 1 }];
        if self.report {
            out.push(Output::External { port: "out".into(), msg });
        }
        out
    }
    fn on_tick(&mut self) -> Vec<Output<u64>> {
        vec![Output::Internal { link: 0, msg: 0 }]
    }
}

fn env(msg: u64, dirty: bool, counter: u64) -> Envelope<u64> {
    Envelope { msg, dirty, counter: counter.into(), seq: 0 }
}

/// Accepts everything but 666.
fn at() -> impl FnMut(&u64) -> bool {
    |m: &u64| *m != 666
}

#[test]
fn active_checkpoints_by_s1_and_s2_and_logs_clean_messages() {
    // Link 0 leads to a G_low process, link 1 to another G_act process.
    let links = vec![Link { peer_role: Role::Low }, Link { peer_role: Role::Active }];
    let mut p = ActiveProcess::new(Toy::default(), links);
    let mut at = at();
    // A clean message from a clean process: no checkpoint, no log.
    p.on_message(1, env(1, false, 0), &mut at);
    assert!(!p.dirty() && p.checkpoint_indices().is_empty());
    // S1: about to be contaminated by G_low's message 3.
    p.on_message(0, env(2, true, 3), &mut at);
    assert!(p.dirty());
    assert_eq!(p.checkpoint_indices(), vec![3]);
    assert_eq!(p.int_msn_glow(), 3);
    // A clean message while dirty: logged (receiver side), indexed 3.
    p.on_message(1, env(3, false, 0), &mut at);
    assert_eq!(p.log_indices(), vec![3]);
    // The process has sent since its checkpoint (the toy answers every
    // message), so a larger counter is S2: a second checkpoint.
    p.on_message(0, env(4, true, 5), &mut at);
    assert_eq!(p.checkpoint_indices(), vec![3, 5]);
    // "passed AT" with 4: checkpoint 3 and its log go; still dirty.
    p.on_passed_at(4);
    assert_eq!(p.checkpoint_indices(), vec![5]);
    assert!(p.log_indices().is_empty());
    assert!(p.dirty());
    // "passed AT" with 5: clean again.
    p.on_passed_at(5);
    assert!(!p.dirty() && p.checkpoint_indices().is_empty());
}

#[test]
fn active_without_propagation_keeps_one_recovery_point() {
    struct Quiet(Vec<u64>);
    impl Application for Quiet {
        type Msg = u64;
        type Snapshot = Vec<u64>;
        fn snapshot(&self) -> Vec<u64> {
            self.0.clone()
        }
        fn restore(&mut self, s: &Vec<u64>) {
            self.0 = s.clone();
        }
        fn on_message(&mut self, _l: usize, m: u64) -> Vec<Output<u64>> {
            self.0.push(m);
            vec![]
        }
        fn on_tick(&mut self) -> Vec<Output<u64>> {
            vec![]
        }
    }
    let mut p = ActiveProcess::new(Quiet(vec![]), vec![Link { peer_role: Role::Low }]);
    let mut at = at();
    p.on_message(0, env(1, true, 2), &mut at);
    // Nothing propagated out: S2 does not hold, no second checkpoint; the
    // first becomes the recovery point for counter 4 as well.
    p.on_message(0, env(2, true, 4), &mut at);
    assert_eq!(p.checkpoint_indices(), vec![4]);
    // A "passed AT" with 3 validates message 2 but not 4: keep the
    // checkpoint; a rollback to it re-receives message 2 from the log.
    p.on_passed_at(3);
    assert_eq!(p.checkpoint_indices(), vec![4]);
    let rec = p.recover(3, &mut at);
    assert!(rec.rolled_back);
    assert_eq!(rec.checkpoint_index, Some(4.into()));
    assert_eq!(p.app().0, vec![1], "message 1 (validated) replayed, message 2 left to the shadows");
}

#[test]
fn active_at_pass_reclaims_everything_and_failure_starts_recovery() {
    let links = vec![Link { peer_role: Role::Low }];
    let mut p = ActiveProcess::new(Toy { report: true, ..Toy::default() }, links);
    let mut at = at();
    let eff = p.on_message(0, env(7, true, 2), &mut at);
    // The AT passed: memory reclaimed up to 2, then the external message
    // and "passed AT" with 2.
    assert!(!p.dirty() && p.checkpoint_indices().is_empty());
    assert!(eff.contains(&Effect::External { port: "out".into(), msg: 7 }));
    assert!(eff.contains(&Effect::PassedAt { value: 2.into(), ext: 0 }));
    let eff = p.on_message(0, env(666, true, 3), &mut at);
    assert_eq!(eff.last(), Some(&Effect::StartRecovery));
    assert!(!eff.iter().any(|e| matches!(e, Effect::External { .. })), "the erroneous message is not sent");
    let rec = p.recover(2, &mut at);
    assert!(rec.rolled_back);
    assert_eq!(p.app().seen, vec![7], "back to the checkpoint before message 3");
}

#[test]
fn shadow_suppresses_logs_and_resends_above_ivr() {
    // Link 0 leads to a G_act process.
    let mut s = ShadowProcess::new(Toy::default(), vec![Link { peer_role: Role::Active }]);
    let mut at = at();
    for m in 0..4 {
        let eff = s.on_message(0, env(10 * m, false, 0), &mut at);
        assert!(!eff.iter().any(|e| matches!(e, Effect::Send { .. })), "suppressed in shadow mode");
    }
    assert_eq!(s.sdw_counter(), 4);
    assert_eq!(s.log_indices(), vec![1, 2, 3, 4]);
    // G_low's messages up to 2 are validated.
    s.on_passed_at(2, 0);
    assert_eq!(s.ivr_low(), 2);
    assert_eq!(s.log_indices(), vec![3, 4]);
    // Take-over with iVR_low (2) < int_mSN_Gsdw (4): re-send 3 and 4.
    let rec = s.recover(2, 0);
    let sent: Vec<u64> = rec
        .effects
        .iter()
        .filter_map(|e| if let Effect::Send { env, .. } = e { Some(env.msg) } else { None })
        .collect();
    assert_eq!(sent, vec![21, 31]);
    assert!(s.promoted());
    // From now on its output is live.
    let eff = s.on_message(0, env(50, false, 0), &mut at);
    assert!(eff.iter().any(|e| matches!(e, Effect::Send { env, .. } if env.msg == 51)));
}

#[test]
fn shadow_behind_g_low_suppresses_until_it_catches_up() {
    let mut s = ShadowProcess::new(Toy::default(), vec![Link { peer_role: Role::Active }]);
    let mut at = at();
    s.on_message(0, env(1, false, 0), &mut at);
    // G_low is ahead: its message 3 is already validated.
    s.on_passed_at(3, 0);
    let rec = s.recover(3, 0);
    assert!(rec.effects.iter().all(|e| !matches!(e, Effect::Send { .. })));
    // Messages 2 and 3 were delivered by G_low: suppressed; 4 is sent.
    let mut sent = vec![];
    for m in [2, 3, 4] {
        for e in s.on_message(0, env(m * 10, false, 0), &mut at) {
            if let Effect::Send { env, .. } = e {
                sent.push(env.msg);
            }
        }
    }
    assert_eq!(sent, vec![41]);
}

#[test]
fn shadow_checkpoints_on_contaminated_messages_and_rolls_back() {
    let mut s = ShadowProcess::new(Toy::default(), vec![Link { peer_role: Role::Active }]);
    let mut at = at();
    s.on_message(0, env(1, false, 0), &mut at);
    s.on_message(0, env(2, true, 5), &mut at);
    assert!(s.dirty());
    assert_eq!(s.checkpoint_indices(), vec![5]);
    s.on_message(0, env(3, false, 0), &mut at);
    // The sender-log entries after the checkpoint are regenerated by the
    // replay, so they are dropped on rollback; message 3 (clean) is
    // replayed from the receiver-side log.
    let rec = s.recover(4, 0);
    assert!(rec.rolled_back);
    assert_eq!(s.app().seen, vec![1, 3]);
}

/// Compensates 666 into 667 (which the AT accepts).
#[derive(Clone, Default)]
struct Compensating(Toy);

impl Application for Compensating {
    type Msg = u64;
    type Snapshot = Vec<u64>;
    fn snapshot(&self) -> Vec<u64> {
        self.0.snapshot()
    }
    fn restore(&mut self, s: &Vec<u64>) {
        self.0.restore(s)
    }
    fn on_message(&mut self, link: usize, msg: u64) -> Vec<Output<u64>> {
        self.0.on_message(link, msg)
    }
    fn on_tick(&mut self) -> Vec<Output<u64>> {
        self.0.on_tick()
    }
    fn compensate(&mut self, msg: &u64) -> Option<u64> {
        (*msg == 666).then_some(667)
    }
}

/// Figures 2 and 3 reclaim memory and send "passed AT" only on
/// AT(m) == success: a compensated message reaches the world but validates
/// nothing, and a later rollback past it does not send it again.
#[test]
fn compensated_output_validates_nothing() {
    let links = vec![Link { peer_role: Role::Low }, Link { peer_role: Role::Active }];
    let mut p = ActiveProcess::new(Compensating(Toy { report: true, ..Toy::default() }), links);
    let mut at = at();
    // S1 checkpoint at 2; the report 666 fails the AT, 667 goes out instead.
    let eff = p.on_message(0, env(666, true, 2), &mut at);
    assert!(eff.contains(&Effect::External { port: "out".into(), msg: 667 }));
    assert!(!eff.iter().any(|e| matches!(e, Effect::PassedAt { .. } | Effect::StartRecovery)), "{eff:?}");
    assert!(p.dirty(), "nothing validated: still dirty");
    assert_eq!(p.checkpoint_indices(), vec![2]);
    // A clean message while dirty: logged; its report is compensated too.
    let eff = p.on_message(1, env(666, false, 0), &mut at);
    assert!(eff.contains(&Effect::External { port: "out".into(), msg: 667 }));
    assert_eq!(p.checkpoint_indices(), vec![2]);
    assert_eq!(p.stats().passed_at_sent, 0);
    // Recovery with nothing validated: back to the checkpoint; the replay
    // of the clean message regenerates a report the world already has.
    let rec = p.recover(0, &mut at);
    assert!(rec.rolled_back);
    assert_eq!(p.app().0.seen, vec![666]);
    assert!(!rec.effects.iter().any(|e| matches!(e, Effect::External { .. })), "{:?}", rec.effects);
    // Afterwards new reports go out as usual.
    let eff = p.on_message(1, env(5, false, 0), &mut at);
    assert!(eff.contains(&Effect::External { port: "out".into(), msg: 5 }));

    // G_low (figure 2): the compensated message is sent and counted in
    // ext_mSN_Glow, but no "passed AT" follows and the process goes on.
    let mut low =
        LowProcess::new(Compensating(Toy { report: true, ..Toy::default() }), vec![Link { peer_role: Role::Active }]);
    let eff = low.on_message(0, env(666, false, 0), &mut at);
    assert!(eff.contains(&Effect::External { port: "out".into(), msg: 667 }));
    assert!(eff.contains(&Effect::BroadcastCounter { group: CounterGroup::LowExt, value: 1 }));
    assert!(!eff.iter().any(|e| matches!(e, Effect::PassedAt { .. } | Effect::StartRecovery)));
    assert!(!low.exited());
    let eff = low.on_message(0, env(9, false, 0), &mut at);
    assert!(eff.contains(&Effect::PassedAt { value: 2.into(), ext: 2 }), "{eff:?}");
}

/// A long sweep, run by hand (`cargo test --release --test simulate -- --ignored`).
#[test]
#[ignore]
fn stress() {
    let mut n = 0;
    for case in ["p2p-routers", "p2p-otherhost", "webfarm-cluster", "webfarm-lb"] {
        let (ddd, roles) = fixture(case);
        for seed in 0..1500u64 {
            let apps = if case.starts_with("p2p") && seed % 2 == 0 { p2p_apps() } else { BTreeMap::new() };
            let sc = Scenario {
                seed,
                ticks: 3 + seed % 23,
                fault_at: if seed % 13 == 0 { None } else { Some((seed * 31) % 90) },
                max_delay: 1 + (seed / 3) % 15,
                period: 1 + (seed / 7) % 6,
                apps,
                ..Scenario::default()
            };
            let r = run(&ddd, &roles, &sc);
            assert!(r.ok, "{case}, {sc:?}: {}", explain(&r));
            n += r.recoveries;
        }
    }
    eprintln!("{n} recoveries");
}

// ---------------------------------------------------------------------------
// The command line

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("deladas-simulate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

const P2P_GOAL: &str = "tests/roles/cases/p2p-routers.deladas";
const P2P_DDD: &str = "tests/roles/deployments/p2p.ddd.xml";

/// `deladas roles` writes the role document (XML) that `simulate` reads.
fn roles_file(name: &str) -> String {
    let out = tmp(name);
    let o = deladas(&["roles", P2P_GOAL, "--deployment", P2P_DDD, "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    out.to_str().unwrap().to_string()
}

#[test]
fn cli_runs_a_p2p_recovery_with_trace_and_json_report() {
    let roles = roles_file("cli1.roles.xml");
    let trace = tmp("cli1.jsonl");
    let o = deladas(&[
        "simulate",
        P2P_GOAL,
        "--deployment",
        P2P_DDD,
        "--roles",
        &roles,
        "--seed",
        "7",
        "--steps",
        "12",
        "--fault-at",
        "30",
        "--at-coverage",
        "1",
        "--trace",
        trace.to_str().unwrap(),
        "--report",
        "json",
        "--app",
        "Client=client",
        "--app",
        "Router=router",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["recoveries"], 1);
    for check in ["external_equal", "no_cascading_rollback", "reclaimed", "fault_free_no_rollback", "completed"] {
        assert_eq!(report["checks"][check], true, "{check}");
    }
    for role in ["low", "shadow", "active"] {
        assert!(report["roles"][role]["processes"].as_u64().unwrap() > 0);
    }
    assert!(report["roles"]["active"]["rollback_distances"].as_array().is_some());
    assert!(report["overhead"]["checkpoints_per_1000"].as_f64().unwrap() > 0.0);
    // The trace: one JSON object per line; external events in the spec's shape.
    let text = std::fs::read_to_string(&trace).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let externals: Vec<&serde_json::Value> = events.iter().filter(|e| e["kind"] == "external").collect();
    assert_eq!(externals.len() as u64, report["external_messages"].as_u64().unwrap());
    for e in &externals {
        assert!(e["step"].is_u64() && e["process"].is_string() && e["port"] == "world" && e["payload"].is_object());
    }
    assert!(events.iter().any(|e| e["kind"] == "passed_at"), "validated outputs before the fault");
    assert!(events.iter().any(|e| e["kind"] == "recovery"));
    // The reference trace is the old system's: the same external messages,
    // port by port.
    let reftrace = tmp("cli1.ref.jsonl");
    let o = deladas(&[
        "simulate",
        P2P_GOAL,
        "--deployment",
        P2P_DDD,
        "--roles",
        &roles,
        "--seed",
        "7",
        "--steps",
        "12",
        "--fault-at",
        "30",
        "--reference",
        "--trace",
        reftrace.to_str().unwrap(),
        "--app",
        "Client=client",
        "--app",
        "Router=router",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).contains("reference"));
    let per_port = |t: &str| {
        let mut m: BTreeMap<(String, String), Vec<serde_json::Value>> = BTreeMap::new();
        for l in t.lines() {
            let e: serde_json::Value = serde_json::from_str(l).unwrap();
            if e["kind"] == "external" {
                m.entry((e["process"].to_string(), e["port"].to_string())).or_default().push(e["payload"].clone());
            }
        }
        m
    };
    assert_eq!(per_port(&text), per_port(&std::fs::read_to_string(&reftrace).unwrap()));
}

#[test]
fn cli_coverage_below_one_reports_differences_without_failing() {
    // Coverage 0 on a fault: erroneous messages reach the world, but the
    // check is only required at coverage 1; the text report says so.
    let roles = roles_file("cli2.roles.xml");
    let o = deladas(&[
        "simulate",
        P2P_GOAL,
        "--deployment",
        P2P_DDD,
        "--roles",
        &roles,
        "--fault-at",
        "10",
        "--at-coverage",
        "0",
        "--app",
        "Client=client",
        "--app",
        "Router=router",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).contains("differs (coverage < 1)"), "{}", show(&o));
}

#[test]
fn cli_rejects_bad_role_documents_and_options() {
    let bad = tmp("bad.roles.json");
    std::fs::write(&bad, "{\"format\": 1, \"groups\": 3}").unwrap();
    let o = deladas(&["simulate", P2P_GOAL, "--deployment", P2P_DDD, "--roles", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("[E0620]"), "{}", show(&o));
    // A role document for another deployment.
    let other = tmp("other.roles.json");
    let o = deladas(&[
        "roles",
        "tests/roles/cases/webfarm-cluster.deladas",
        "--deployment",
        "tests/roles/deployments/webfarm.ddd.xml",
        "--format",
        "json",
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = deladas(&["simulate", P2P_GOAL, "--deployment", P2P_DDD, "--roles", other.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("[E0621]"), "{}", show(&o));
    let roles = roles_file("cli3.roles.xml");
    let o = deladas(&["simulate", P2P_GOAL, "--deployment", P2P_DDD, "--roles", &roles, "--app", "Nope=client"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(stderr(&o).contains("[E0622]"), "{}", show(&o));
}

/// A guarded run in which nothing reaches the world holds every check
/// vacuously, and the report says so.
#[test]
fn cli_says_when_the_checks_are_vacuous() {
    let args = |steps: &'static str, format: &'static str| {
        vec![
            "simulate",
            "tests/simulate/chain3.deladas",
            "--deployment",
            "tests/simulate/chain3.ddd.xml",
            "--roles",
            "tests/simulate/chain3.roles.xml",
            "--fault-at",
            "3",
            "--steps",
            steps,
            "--report",
            format,
        ]
    };
    let o = deladas(&args("0", "text"));
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(stdout(&o).contains("all checks hold, vacuously: nothing reached the world"), "{}", show(&o));
    let o = deladas(&args("0", "json"));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((report["ok"].clone(), report["vacuous"].clone()), (true.into(), true.into()));
    let o = deladas(&args("5", "json"));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((report["ok"].clone(), report["vacuous"].clone()), (true.into(), false.into()));
    assert!(report["external_messages"].as_u64().unwrap() > 0);
}

/// `--max-delay` reaches the simulator: the same seed with another bound
/// gives another trace.
#[test]
fn cli_max_delay_changes_the_run() {
    let trace = |d: &str| {
        let out = tmp(&format!("delay-{d}.jsonl"));
        let o = deladas(&[
            "simulate",
            "tests/simulate/chain3.deladas",
            "--deployment",
            "tests/simulate/chain3.ddd.xml",
            "--roles",
            "tests/simulate/chain3.roles.xml",
            "--max-delay",
            d,
            "--trace",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        std::fs::read_to_string(out).unwrap()
    };
    let (one, six, forty) = (trace("1"), trace("6"), trace("40"));
    assert_ne!(one, six);
    assert_ne!(six, forty);
    let last_step = |t: &str| {
        t.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["step"].as_u64()).max().unwrap()
    };
    assert!(last_step(&one) < last_step(&forty), "longer delays, later last event");
}

/// `deladas simulate … | head`: a closed stdout does not make it panic.
#[test]
fn cli_survives_a_closed_stdout() {
    use std::process::{Command, Stdio};
    let roles = roles_file("pipe.roles.xml");
    for format in ["text", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deladas"))
            .args(["simulate", P2P_GOAL, "--deployment", P2P_DDD, "--roles", &roles, "--report", format])
            .current_dir(manifest())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the report is written.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        assert!(!stderr(&o).contains("panicked"), "{}", show(&o));
        assert_eq!(code(&o), 0, "{}", show(&o));
    }
}

/// Peak resident memory (`VmHWM`, KiB) and CPU time (clock ticks) of a
/// running process, from /proc.
fn peak_kib_and_cpu(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm =
        status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis: utime and stime are
    // the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let cpu = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((hwm, cpu))
}

/// Issue 15: memory does not grow with `--steps`. A run with a practically
/// endless workload (the P2P request–reply service, ATs validating as it
/// goes) is sampled from /proc while it works: after several seconds of CPU
/// its peak resident memory has not grown (the first version kept the whole
/// history, about 5 KB per tick: 1M ticks took 4.9 GB).
#[test]
fn cli_memory_is_independent_of_the_step_count() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let roles = roles_file("mem.roles.xml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_deladas"))
        .args([
            "simulate",
            P2P_GOAL,
            "--deployment",
            P2P_DDD,
            "--roles",
            &roles,
            "--steps",
            "99999999999",
            "--app",
            "Client=client",
            "--app",
            "Router=router",
        ])
        .current_dir(manifest())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    // Warm up: 1 s of CPU (setup, first allocations).
    let mut early = None;
    let mut late = None;
    while start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
        let Some((hwm, cpu)) = peak_kib_and_cpu(pid) else { break };
        match early {
            None if cpu >= 100 => early = Some((hwm, cpu)),
            Some((_, c0)) if cpu >= c0 + 400 => {
                late = Some((hwm, cpu));
                break;
            }
            _ => {}
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let (Some((h0, c0)), Some((h1, c1))) = (early, late) else {
        panic!("the simulation did not get 5 s of CPU within 60 s (early {early:?}, late {late:?})");
    };
    eprintln!("peak RSS {h0} KiB after {c0} ticks of CPU, {h1} KiB after {c1}");
    assert!(h1 <= h0 + 4 * 1024, "peak RSS grew from {h0} KiB to {h1} KiB in {} s of CPU", (c1 - c0) / 100);
}

/// The streamed simulation (both runs side by side, trace handed on, the
/// world's messages compared as they come) reports exactly what the
/// whole-history one does, differences at coverage < 1 included, and hands
/// on the run's whole trace in order.
#[test]
fn streamed_runs_report_what_whole_runs_report() {
    use deladas::mdcd::sim::simulate_streamed;
    for (case, p2p) in [("p2p-routers", true), ("webfarm-cluster", false), ("p2p-otherhost", false)] {
        let (ddd, roles) = fixture(case);
        for seed in 0..24u64 {
            let sc = Scenario {
                seed,
                ticks: 5 + seed % 30,
                fault_at: if seed % 5 == 0 { None } else { Some(seed * 17 % 200) },
                at_coverage: if seed % 3 == 0 { 0.4 } else { 1.0 },
                max_delay: 1 + seed % 7,
                apps: if p2p { p2p_apps() } else { BTreeMap::new() },
                ..Scenario::default()
            };
            for reference_only in [false, true] {
                let whole_ref = simulate(&ddd, &roles, &sc, true).unwrap();
                let whole =
                    if reference_only { whole_ref.clone() } else { simulate(&ddd, &roles, &sc, false).unwrap() };
                let expected = compare(&whole, &whole_ref, &sc);
                let mut trace = Vec::new();
                let streamed = simulate_streamed(&ddd, &roles, &sc, reference_only, &mut |ev| {
                    trace.push(ev.clone());
                    Ok(())
                })
                .unwrap();
                assert_eq!(streamed, expected, "{case} {sc:?} reference_only={reference_only}");
                assert_eq!(trace, whole.trace, "{case} seed {seed}");
            }
        }
    }
}
