//! Optimality against brute force (issue 19): random tiny goals with
//! objectives and preferences, no channels, so every configuration is a
//! vector of instance counts per (component, host). Brute force enumerates
//! them all, keeps those that obey the structural rules and every clause
//! (the independent evaluator decides), and takes the lexicographically
//! smallest vector of level values (`eval::objective::levels`). `solve` must
//! answer with a configuration whose levels are exactly that vector, proven
//! optimal, or say "unsatisfiable" exactly when brute force finds nothing.

use deladas::check::ir::Program;
use deladas::eval::bind;
use deladas::eval::objective::levels;
use deladas::solve::{solve, Options, Outcome, Quiet};
use proptest::prelude::*;

#[path = "common/brute_best.rs"]
mod brute;
use brute::brute_best;

/// One random goal: resources, hard clauses, objectives, preferences.
fn goal(hosts: usize, a_per_host: u32, hard: &[usize], objectives: &[usize], prefs: &[(usize, u32)]) -> String {
    let mut s = String::new();
    s.push_str(&format!("component A(code = \"a\", ports = {{p}}, maxperhost = {a_per_host})\n"));
    s.push_str("component B(code = \"b\", ports = {q})\n");
    for h in 0..hosts {
        let zone = if h % 2 == 0 { "a" } else { "b" };
        s.push_str(&format!("host h{h} = host(zone = \"{zone}\", cpu = {})\n", 1 + (h * 5) % 4));
    }
    let hard_clauses = [
        "card(instancesof A in deployment) >= 2",
        "card(instancesof B in deployment) >= 1",
        "forall host h in deployment (card(instancesof A in h) + card(instancesof B in h) <= 2)",
        "forall B b in deployment (exists A a in deployment (hostof(a) = hostof(b)))",
        "card(instancesof A in deployment) + card(instancesof B in deployment) <= 4",
        "card(instancesof A in deployment) >= 1",
        "forall A a in deployment (hostof(a).cpu >= 2)",
    ];
    s.push_str("constraintset g = constraintset {\n");
    s.push_str("    card(instancesof A in deployment) + card(instancesof B in deployment) >= 1\n");
    for &i in hard {
        s.push_str(&format!("    {}\n", hard_clauses[i % hard_clauses.len()]));
    }
    s.push_str("}\n");
    let objective_terms = [
        "minimize card(host h in deployment where card(instancesof A in h) + card(instancesof B in h) > 0)",
        "maximize card(instancesof B in deployment)",
        "minimize sum(A a in deployment : hostof(a).cpu)",
        "maximize card(host h in deployment where card(instancesof A in h) = 0)",
        "minimize card(instancesof A in deployment) - 2 * card(instancesof B in deployment)",
        "maximize sum(B b in deployment : hostof(b).cpu) + card(instancesof A in deployment)",
        // `abs`, `min`, `max`: lowered by cases, one comparison per value.
        "maximize min(host h in deployment : h.cpu - 2 * card(instancesof A in h) - card(instancesof B in h))",
        "minimize max(zone z in deployment : card(instancesof A in zone z)) - min(zone z in deployment : card(instancesof A in zone z))",
        "minimize abs(card(instancesof A in deployment) - 2 * card(instancesof B in deployment))",
        "maximize max(card(instancesof B in deployment), 3 - card(instancesof A in deployment))",
    ];
    let pref_clauses = [
        "forall A a in deployment (hostof(a).zone = \"a\")",
        "card(instancesof B in deployment) = 0",
        "forall host h in deployment (card(instancesof A in h) + card(instancesof B in h) <= 1)",
        "forall B b in deployment (hostof(b).zone = \"b\")",
        "card(instancesof A in deployment) >= 3",
    ];
    // Objectives and preferences interleaved in declaration order.
    let mut items: Vec<String> =
        objectives.iter().map(|&i| objective_terms[i % objective_terms.len()].to_string()).collect();
    for (k, &(i, w)) in prefs.iter().enumerate() {
        let text = format!("prefer [{w}] {}", pref_clauses[i % pref_clauses.len()]);
        items.insert((k * 2).min(items.len()), text);
    }
    for it in items {
        s.push_str(&it);
        s.push('\n');
    }
    s
}

fn program(text: &str) -> Program {
    let dir = std::env::temp_dir().join(format!("deladas-optprops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("goal.deladas");
    std::fs::write(&path, text).expect("write goal");
    let (_, checked) = deladas::check::check_path(&path);
    assert!(!checked.has_errors(), "generated goal has errors: {:?}\n{text}", checked.diags);
    checked.program
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn solve_reaches_the_brute_force_optimum(
        hosts in 2usize..=3,
        a_per_host in 1u32..=2,
        hard in proptest::collection::vec(0usize..7, 0..3),
        objectives in proptest::collection::vec(0usize..10, 0..3),
        prefs in proptest::collection::vec((0usize..5, 1u32..4), 0..3),
    ) {
        prop_assume!(!objectives.is_empty() || !prefs.is_empty());
        let text = goal(hosts, a_per_host, &hard, &objectives, &prefs);
        let p = program(&text);
        let best = brute_best(&p);
        let opts = Options { timeout: Some(std::time::Duration::from_secs(60)), ..Options::default() };
        let (outcome, stats) = solve(&p, &(0..p.hosts.len()).collect::<Vec<_>>(), &opts, &mut Quiet).expect("solves");
        match (outcome, best) {
            (Outcome::Sat { deployments, .. }, Some(best)) => {
                let world = bind(&p, deployments[0].deployment()).expect("binds");
                let got = levels(&p, &world).expect("levels");
                prop_assert_eq!(&got, &best, "goal:\n{}", text);
                let report = stats.optimum.expect("an optimisation report");
                prop_assert!(report.proven(), "not proven optimal:\n{}", text);
            }
            (Outcome::Unsat { .. }, None) => {}
            (o, b) => prop_assert!(false, "solve said {:?}, brute force {:?}\n{}", o, b, text),
        }
    }
}
