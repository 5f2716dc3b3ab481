//! The workload constructs of issue 19 end to end: `abs`, `min`, `max` and
//! their aggregates, grouping by a host attribute's value, host inventories
//! and host ranges.
//!
//! * A property test: random small goals over these terms (as source text,
//!   so parser and checker are on the path) are solved and compared with
//!   brute-force enumeration (`eval::brute`, which evaluates the terms with
//!   the independent evaluator): the verdicts agree, and every solution is
//!   checked by the evaluator inside `solve`.
//! * The published answers of the examples: Kafka's rack-aware replica
//!   assignment (`examples/kafka-racks.deladas`, hosts from a CSV inventory)
//!   and the Kubernetes topology-spread and inter-pod affinity examples
//!   (`examples/k8s-spread.deladas`), whose node sets are checked by pinning
//!   the incoming pod to each node in turn.
//! * Inventory errors exit 2 and point into the CSV file (the real binary).
//! * The spread benchmark's goal solves balanced at a small size.
//!
//! `DELADAS_WORKLOAD_CASES` sets the number of random goals (default 120).

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use deladas::check::ir::Program;
use deladas::check::{check_loaded, load, RealFs};
use deladas::diagnostics::render;
use deladas::eval::brute::{enumerate, BruteResult, Limits as BruteLimits};
use deladas::solve::{solve, Options, Outcome, Quiet};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn checked(path: &str, text: &str) -> Result<Program, String> {
    let (sources, checked) = check_loaded(load(Path::new(path), Some(text), &RealFs));
    if checked.has_errors() {
        return Err(render::to_text(&checked.diags, &sources));
    }
    Ok(checked.program)
}

fn solve_all(program: &Program, count: usize) -> Outcome {
    let hosts: Vec<usize> = (0..program.hosts.len()).collect();
    let opts = Options { timeout: Some(Duration::from_secs(60)), count, ..Options::default() };
    match solve(program, &hosts, &opts, &mut Quiet) {
        Ok((o, _)) => o,
        Err(e) => panic!("solve failed: {e:?}"),
    }
}

/// (component, host) of every instance of the first solution, or `None` when
/// unsatisfiable.
fn placement(program: &Program) -> Option<Vec<(String, String)>> {
    match solve_all(program, 1) {
        Outcome::Sat { deployments, .. } => {
            Some(deployments[0].deployment().instances.iter().map(|i| (i.component.clone(), i.host.clone())).collect())
        }
        Outcome::Unsat { .. } => None,
        other => panic!("neither sat nor unsat: {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Random goals against brute force

/// A random goal over the workload terms; 0 choices give the simplest.
fn generate(c: &mut Choices) -> String {
    let zones = ["a", "b", "c"];
    let nhosts = 2 + c.pick(3);
    let mut s = String::new();
    s.push_str("component A(code = \"a\", ports = {}, maxperhost = 2)\n");
    s.push_str("component B(code = \"b\", ports = {})\n");
    for i in 1..=nhosts {
        let z = zones[c.pick(if i == 1 { 1 } else { 3 })];
        s.push_str(&format!("host h{i} = host(zone = \"{z}\", cpu = {})\n", 1 + c.pick(3)));
    }
    let ops = ["<=", ">=", "=", "!=", "<", ">"];
    let k = |c: &mut Choices| c.pick(4) as i64;
    let h = |c: &mut Choices| format!("h{}", 1 + c.pick(nhosts));
    let mut clauses = vec!["card(instancesof A in deployment) + card(instancesof B in deployment) >= 1".to_string()];
    let n = 1 + c.pick(3);
    for _ in 0..n {
        let op = *c.one_of(&ops);
        let cl = match c.pick(13) {
            0 => format!(
                "max(zone z in deployment : card(instancesof A in zone z)) - min(zone z in deployment : card(instancesof A in zone z)) {op} {}",
                k(c)
            ),
            1 => format!("abs(card(instancesof A in deployment) - card(instancesof B in deployment)) {op} {}", k(c)),
            2 => format!("min(card(instancesof A in {}), card(instancesof B in {})) {op} {}", h(c), h(c), k(c) / 2),
            3 => format!(
                "max(card(instancesof A in deployment), {}) {op} card(instancesof B in deployment) + {}",
                k(c),
                k(c) / 2
            ),
            4 => format!("forall zone z in deployment ( card(instancesof B in zone z) {op} {} )", k(c) / 2),
            5 => format!(
                "max(host h in deployment where h.cpu >= {} : card(instancesof A in h)) {op} {}",
                1 + c.pick(3),
                k(c) / 2
            ),
            6 => format!("min(A x in deployment : hostof(x).cpu) {op} {}", k(c)),
            7 => format!("card(host h in zone \"a\" where card(instancesof A in h) >= 1) {op} {}", k(c) / 2),
            8 => format!(
                "exists zone z in deployment ( z = \"{}\" and card(instancesof A in zone z) = {} )",
                zones[c.pick(3)],
                k(c) / 2
            ),
            9 => format!("card(zone z in deployment where card(instancesof A in zone z) >= 1) {op} {}", k(c) / 2),
            10 => format!(
                "{} - 2 * min(zone z in deployment : card(instancesof A in zone z)) {op} card(instancesof B in deployment)",
                k(c)
            ),
            11 => format!(
                "max(zone z in deployment : card(instancesof A in zone z)) {op} min(zone z in deployment : card(instancesof B in zone z))"
            ),
            _ => format!(
                "0 - abs(card(instancesof A in {}) - {}) + max(B y in deployment : hostof(y).cpu) {op} {}",
                h(c),
                k(c) / 2,
                k(c) / 2
            ),
        };
        clauses.push(cl);
    }
    s.push_str("constraintset g = constraintset {\n");
    for cl in clauses {
        s.push_str(&format!("    {cl}\n"));
    }
    s.push_str("}\n");
    s
}

#[test]
fn workload_terms_agree_with_brute_force() {
    let cases: u32 = std::env::var("DELADAS_WORKLOAD_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(120);
    let mut runner = TestRunner::new_with_rng(
        Config { cases, ..Config::default() },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[19; 32]),
    );
    let strategy = proptest::collection::vec(0u32..1000, 40);
    let (mut sat, mut unsat, mut skipped) = (0, 0, 0);
    for _ in 0..cases {
        let data = strategy.new_tree(&mut runner).expect("a case").current();
        let text = generate(&mut Choices { data: &data, pos: 0 });
        let program = match checked("g.deladas", &text) {
            Ok(p) => p,
            Err(e) => panic!("a generated goal does not check:\n{text}\n{e}"),
        };
        let brute = enumerate(&program, &BruteLimits { max_candidates: 1 << 15 });
        let found = match &brute {
            BruteResult::Found { .. } => true,
            BruteResult::NotFound { .. } => false,
            BruteResult::TooLarge { .. } => {
                skipped += 1;
                continue;
            }
            BruteResult::Error(e) => panic!("brute force failed on\n{text}\n{e}"),
        };
        match solve_all(&program, 1) {
            Outcome::Sat { .. } => {
                assert!(found, "solve found a configuration brute force says does not exist:\n{text}");
                sat += 1;
            }
            Outcome::Unsat { .. } => {
                assert!(!found, "solve says unsatisfiable, brute force found {brute:?} for\n{text}");
                unsat += 1;
            }
            other => panic!("neither sat nor unsat ({other:?}) for\n{text}"),
        }
    }
    eprintln!("workload goals: {sat} sat, {unsat} unsat, {skipped} too large for brute force");
    assert!(sat >= cases as usize / 5 && unsat >= cases as usize / 10, "the generator must stay meaningful");
}

// ---------------------------------------------------------------------------
// Published answers

#[test]
fn kafka_replicas_are_rack_aware_and_balanced() {
    let path = manifest().join("examples/kafka-racks.deladas");
    let (sources, c) = deladas::check::check_path(&path);
    assert!(!c.has_errors(), "{}", render::to_text(&c.diags, &sources));
    let p = &c.program;
    assert_eq!(p.hosts.len(), 6, "six brokers from the inventory");
    let rack: BTreeMap<String, String> =
        p.hosts.iter().map(|h| (h.name.clone(), h.attr("rack").map(|v| v.to_string()).unwrap_or_default())).collect();
    // The replicas are named instances of `Replica` (`p0r1` …), each with
    // its partition as an attribute.
    let Outcome::Sat { deployments, .. } = solve_all(p, 1) else { panic!("satisfiable") };
    let d = deployments[0].deployment();
    let mut per_broker: BTreeMap<String, usize> = p.hosts.iter().map(|h| (h.name.clone(), 0)).collect();
    let mut per_partition: BTreeMap<String, Vec<String>> = BTreeMap::new();
    assert_eq!(d.instances.len(), 12, "every named replica exists, no other");
    for i in &d.instances {
        assert_eq!(i.component, "Replica");
        let c = p.instance_component(&i.id, &i.component).expect("a declared instance");
        assert_eq!(p.components[c].named, p.component("Replica"), "`{}` is a named instance", i.id);
        let part = p.components[c].attr("partition").map(|v| v.to_string()).unwrap_or_default();
        assert!(i.id.starts_with(&format!("p{part}r")), "{} has partition {part}", i.id);
        *per_broker.entry(i.host.clone()).or_default() += 1;
        per_partition.entry(part).or_default().push(i.host.clone());
    }
    assert_eq!(per_partition.len(), 4);
    for (part, brokers) in &per_partition {
        assert_eq!(brokers.len(), 3, "replication factor 3 for {part}");
        let distinct: BTreeSet<&String> = brokers.iter().collect();
        assert_eq!(distinct.len(), 3, "{part}: replicas on distinct brokers");
        let racks: BTreeSet<&String> = brokers.iter().map(|b| &rack[b]).collect();
        assert_eq!(racks.len(), 3, "{part}: replicas on distinct racks");
    }
    let (lo, hi) = (per_broker.values().min(), per_broker.values().max());
    assert_eq!((lo, hi), (Some(&2), Some(&2)), "12 replicas on 6 brokers, balanced: {per_broker:?}");
}

/// The nodes `MyPod` can run on: the example with `MyPod` pinned to each node
/// in turn, solved; `without` names constraintsets taken out of force.
fn mypod_nodes(without: &[&str]) -> BTreeSet<String> {
    let path = manifest().join("examples/k8s-spread.deladas");
    let mut text = std::fs::read_to_string(&path).expect("the example");
    for cs in without {
        // A constraintset with a parameter is a pattern, not in force.
        text = text.replace(&format!("constraintset {cs} = "), &format!("constraintset {cs}(int unused) = "));
    }
    let mut ok = BTreeSet::new();
    for n in ["node1", "node2", "node3", "node4"] {
        let pinned = format!("{text}\nconstraintset pin = constraintset {{ card(instancesof MyPod in {n}) = 1 }}\n");
        let p = checked(path.to_str().unwrap_or("k8s.deladas"), &pinned).unwrap_or_else(|e| panic!("{e}"));
        if placement(&p).is_some() {
            ok.insert(n.to_string());
        }
    }
    ok
}

#[test]
fn kubernetes_topology_spread_reaches_the_published_node_sets() {
    // One constraint (zones, maxSkew 1): zone B, node3 or node4.
    let zones = mypod_nodes(&["spread_nodes"]);
    assert_eq!(zones, BTreeSet::from(["node3".to_string(), "node4".to_string()]));
    // Two constraints (zones and nodes): node4 only.
    assert_eq!(mypod_nodes(&[]), BTreeSet::from(["node4".to_string()]));
}

#[test]
fn kubernetes_inter_pod_affinity_colocates_web_servers_with_caches() {
    let path = manifest().join("examples/k8s-spread.deladas");
    let (sources, c) = deladas::check::check_path(&path);
    assert!(!c.has_errors(), "{}", render::to_text(&c.diags, &sources));
    let placed = placement(&c.program).expect("satisfiable");
    let on =
        |comp: &str| -> BTreeSet<String> { placed.iter().filter(|(c, _)| c == comp).map(|(_, h)| h.clone()).collect() };
    let (caches, webs) = (on("Cache"), on("WebServer"));
    assert_eq!(caches.len(), 3, "three caches on three nodes (anti-affinity)");
    assert_eq!(webs.len(), 3, "three web servers on three nodes (anti-affinity)");
    assert!(webs.is_subset(&caches), "every web server shares its node with a cache: {webs:?} {caches:?}");
    assert_eq!(on("MyPod"), BTreeSet::from(["node4".to_string()]));
}

// ---------------------------------------------------------------------------
// Inventories through the binary

#[test]
fn inventory_errors_exit_2_and_point_into_the_csv() {
    let o = deladas(&["check", "tests/ui/fail/inventory_errors.deladas"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let err = stderr(&o);
    assert!(err.contains("tests/ui/lib/bad_inventory.csv:4:1"), "{err}");
    assert!(err.contains("error[E0330]") && err.contains("error[E0331]"), "{err}");
}

#[test]
fn inventory_goal_solves_and_verifies() {
    let dir = std::env::temp_dir().join(format!("deladas-workload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let ddd = dir.join("workload.ddd.xml");
    let ddd_s = ddd.display().to_string();
    let o = deladas(&["solve", "tests/ui/pass/workload.deladas", "-o", &ddd_s]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = deladas(&["verify", "tests/ui/pass/workload.deladas", &ddd_s]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let xml = std::fs::read_to_string(&ddd).expect("the DDD");
    // Hosts from both inventories and the range keep their names as ids.
    for id in ["n1", "m2", "spare2"] {
        assert!(xml.contains(&format!("<host id=\"{id}\">")), "{id} in\n{xml}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spread_benchmark_goal_is_balanced() {
    let text = deladas::bench_goals::zone_spread(60, 6);
    let p = checked("spread.deladas", &text).unwrap_or_else(|e| panic!("{e}"));
    let zone: BTreeMap<String, String> =
        p.hosts.iter().map(|h| (h.name.clone(), h.attr("zone").map(|v| v.to_string()).unwrap_or_default())).collect();
    let placed = placement(&p).expect("satisfiable");
    for comp in ["Web", "Db"] {
        let mut per_zone: BTreeMap<&String, usize> = zone.values().map(|z| (z, 0)).collect();
        for (c, h) in &placed {
            if c == comp {
                *per_zone.entry(&zone[h]).or_default() += 1;
            }
        }
        let (lo, hi) = (per_zone.values().min().copied(), per_zone.values().max().copied());
        assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= 1, "{comp} unbalanced: {per_zone:?}");
    }
}
