//! Named instances and replicas (issue 19) against brute force, on tiny
//! scopes: random goals with a component type `A`, one to three named
//! instances of it (own attribute values, some in a group; sometimes `cpu`
//! is required, `cpu = int`, and `A` has no unnamed instances), hard clauses
//! that name them, range over the type and over the group, and sometimes an
//! objective. No channels, so every configuration is a vector of instance
//! counts per (component, host) — the named instances are components of
//! their own in the checked program, one slot per host.
//!
//! Three independent answers must agree:
//! * brute force over count vectors, each decided by the evaluator
//!   (`eval::is_solution`: the structural rules and every clause, the
//!   generated "exists once" and family `maxperhost` clauses included),
//!   taking the lexicographically best objective levels;
//! * `eval::brute::enumerate` (its own enumeration) on satisfiability;
//! * `solve`, whose DDD is read back (`eval::bind`: instance ids → named
//!   instances), must satisfy the goal, name every named instance by its
//!   name, and reach the brute-force optimum, proven.

use deladas::check::ir::Program;
use deladas::eval::brute::{enumerate, BruteResult, Limits};
use deladas::eval::objective::levels;
use deladas::eval::{bind, is_solution};
use deladas::solve::{solve, Options, Outcome, Quiet};
use proptest::prelude::*;

#[path = "common/brute_best.rs"]
mod brute;
use brute::brute_best;

/// The goal's parameters, for the independent oracle.
struct Spec {
    hosts: usize,
    per_host: u32,
    /// (name, cpu) of every named instance; the group's are `r1`, `r2`.
    named: Vec<(String, i64)>,
    group: bool,
    /// `cpu = int`: no unnamed instances.
    required: bool,
    hard: Vec<usize>,
    objective: Option<usize>,
}

impl Spec {
    fn zone(&self, h: usize) -> &'static str {
        if h % 2 == 0 {
            "x"
        } else {
            "y"
        }
    }
    fn cap(&self, h: usize) -> i64 {
        1 + ((h * 3) % 4) as i64
    }
    fn first(&self) -> &str {
        &self.named[0].0
    }
    /// As the generator picks it: `a2`, else `r2`, else the first again.
    fn second(&self) -> &str {
        let singles = self.named.len() - if self.group { 2 } else { 0 };
        if singles > 1 {
            "a2"
        } else if self.group {
            "r2"
        } else {
            self.first()
        }
    }

    /// Whether a configuration — (name if named, cpu, host) per instance —
    /// satisfies the goal, written directly from the clauses' meaning (not
    /// from the checker's program).
    fn holds(&self, inst: &[(Option<String>, i64, usize)]) -> bool {
        let host_of = |n: &str| inst.iter().find(|i| i.0.as_deref() == Some(n)).map(|i| i.2);
        for (n, _) in &self.named {
            if inst.iter().filter(|i| i.0.as_deref() == Some(n.as_str())).count() != 1 {
                return false;
            }
        }
        for h in 0..self.hosts {
            if inst.iter().filter(|i| i.2 == h).count() > self.per_host as usize {
                return false;
            }
        }
        if self.required && inst.iter().any(|i| i.0.is_none()) {
            return false;
        }
        let (Some(hf), Some(hs)) = (host_of(self.first()), host_of(self.second())) else { return false };
        let first = self.first();
        self.hard.iter().all(|&c| match c % 9 {
            0 => inst.iter().all(|i| self.cap(i.2) >= i.1),
            1 => hf != hs,
            2 => hf == 0,
            3 => (0..self.hosts).all(|h| inst.iter().filter(|i| i.2 == h).map(|i| i.1).sum::<i64>() <= self.cap(h) + 1),
            4 => inst.len() >= 3,
            5 => inst.iter().any(|i| i.0.as_deref() != Some(first) && i.2 == hf),
            6 => inst.iter().filter(|i| i.1 >= 2).count() <= 1,
            7 => inst.iter().all(|i| i.0.as_deref() == Some(first) || self.zone(i.2) == "y"),
            _ if self.group => match (host_of("r1"), host_of("r2")) {
                (Some(a), Some(b)) => self.zone(a) != self.zone(b),
                _ => false,
            },
            _ => self.named[0].1 <= 2,
        })
    }

    /// The objective's value, smaller is better (maximised ones negated).
    fn cost(&self, inst: &[(Option<String>, i64, usize)]) -> i64 {
        match self.objective.map(|o| o % 4) {
            None => 0,
            Some(0) => (0..self.hosts).filter(|&h| inst.iter().any(|i| i.2 == h)).count() as i64,
            Some(1) => -inst.iter().map(|i| self.cap(i.2)).sum::<i64>(),
            Some(2) => inst.iter().map(|i| i.1 * self.cap(i.2)).sum::<i64>(),
            _ => -inst.iter().find(|i| i.0.as_deref() == Some(self.first())).map(|i| self.cap(i.2)).unwrap_or(0),
        }
    }

    /// The best cost over every configuration: named instances on any host,
    /// 0 to `per_host` unnamed ones per host.
    fn best(&self) -> Option<i64> {
        let n = self.named.len();
        let mut best: Option<i64> = None;
        let choices = (self.hosts as u64).pow(n as u32) * u64::from(self.per_host + 1).pow(self.hosts as u32);
        for mut code in 0..choices {
            let mut inst = vec![];
            for (name, cpu) in &self.named {
                inst.push((Some(name.clone()), *cpu, (code % self.hosts as u64) as usize));
                code /= self.hosts as u64;
            }
            for h in 0..self.hosts {
                let k = code % u64::from(self.per_host + 1);
                code /= u64::from(self.per_host + 1);
                for _ in 0..k {
                    inst.push((None, 1, h));
                }
            }
            if self.holds(&inst) {
                let c = self.cost(&inst);
                best = Some(best.map_or(c, |b| b.min(c)));
            }
        }
        best
    }
}

/// One random goal.
fn goal(
    hosts: usize,
    per_host: u32,
    named: &[u32],
    group: bool,
    required: bool,
    hard: &[usize],
    objective: Option<usize>,
) -> String {
    let mut s = String::new();
    // `cpu = int`: every named instance gives it, and A has no unnamed instances.
    let cpu = if required { "int" } else { "1" };
    s.push_str(&format!("component A(code = \"a\", ports = {{}}, cpu = {cpu}, maxperhost = {per_host})\n"));
    for h in 0..hosts {
        let zone = if h % 2 == 0 { "x" } else { "y" };
        s.push_str(&format!("host h{h} = host(zone = \"{zone}\", cap = {})\n", 1 + (h * 3) % 4));
    }
    // a1 … (single instances), then, if `group`, the last two as group r.
    let singles = if group && named.len() >= 2 { named.len() - 2 } else { named.len() };
    for (i, cpu) in named.iter().take(singles).enumerate() {
        s.push_str(&format!("instance a{} = A(cpu = {cpu})\n", i + 1));
    }
    if singles < named.len() {
        s.push_str(&format!("instance r[2] = A(cpu = {})\n", named[singles]));
    }
    let first = if singles > 0 { "a1" } else { "r1" };
    let second = if singles > 1 {
        "a2"
    } else if singles < named.len() {
        "r2"
    } else {
        first
    };
    let hard_clauses = [
        "forall A x in deployment ( hostof(x).cap >= x.cpu )".to_string(),
        format!("hostof({first}) != hostof({second})"),
        format!("{first} on h0"),
        "forall host h in deployment ( sum(A x in h : x.cpu) <= h.cap + 1 )".to_string(),
        "card(instancesof A in deployment) >= 3".to_string(),
        format!("exists A x in deployment ( x != {first} and hostof(x) = hostof({first}) )"),
        "card(A x in deployment where x.cpu >= 2) <= 1".to_string(),
        format!("forall A x in deployment ( x = {first} or hostof(x).zone = \"y\" )"),
        if singles < named.len() {
            "forall r x, y in deployment ( x != y implies hostof(x).zone != hostof(y).zone )".to_string()
        } else {
            format!("{first}.cpu <= 2")
        },
    ];
    s.push_str("constraintset g = constraintset {\n");
    for &i in hard {
        s.push_str(&format!("    {}\n", hard_clauses[i % hard_clauses.len()]));
    }
    s.push_str("}\n");
    let objectives = [
        "minimize card(host h in deployment where card(instancesof A in h) > 0)".to_string(),
        "maximize sum(A x in deployment : hostof(x).cap)".to_string(),
        "minimize sum(A x in deployment : x.cpu * hostof(x).cap)".to_string(),
        format!("maximize hostof({first}).cap"),
    ];
    if let Some(o) = objective {
        s.push_str(&objectives[o % objectives.len()]);
        s.push('\n');
    }
    s
}

fn program(text: &str) -> Program {
    let dir = std::env::temp_dir().join(format!("deladas-instprops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("goal.deladas");
    std::fs::write(&path, text).expect("write goal");
    let (_, checked) = deladas::check::check_path(&path);
    assert!(!checked.has_errors(), "generated goal has errors: {:?}\n{text}", checked.diags);
    checked.program
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn named_instances_agree_with_brute_force(
        hosts in 2usize..=3,
        per_host in 1u32..=2,
        named in proptest::collection::vec(1u32..=3, 1..=3),
        group in any::<bool>(),
        required in any::<bool>(),
        hard in proptest::collection::vec(0usize..9, 0..=3),
        objective in proptest::option::of(0usize..4),
    ) {
        // More named instances than fit is E0342 at check time (tests/ui).
        prop_assume!(per_host as usize * hosts >= named.len());
        let text = goal(hosts, per_host, &named, group, required, &hard, objective);
        let p = program(&text);
        let singles = if group && named.len() >= 2 { named.len() - 2 } else { named.len() };
        let mut names: Vec<(String, i64)> =
            named.iter().take(singles).enumerate().map(|(i, c)| (format!("a{}", i + 1), i64::from(*c))).collect();
        if singles < named.len() {
            names.push(("r1".into(), i64::from(named[singles])));
            names.push(("r2".into(), i64::from(named[singles])));
        }
        let spec = Spec { hosts, per_host, named: names, group: singles < named.len(), required, hard: hard.clone(), objective };
        let oracle = spec.best();
        let best = brute_best(&p);
        let other = match enumerate(&p, &Limits { max_candidates: 1 << 20 }) {
            BruteResult::Found { .. } => true,
            BruteResult::NotFound { .. } => false,
            r => panic!("brute force: {r:?}\n{text}"),
        };
        prop_assert_eq!(best.is_some(), other, "the two enumerations disagree:\n{}", text);
        prop_assert_eq!(best.is_some(), oracle.is_some(), "the evaluator and the oracle disagree:\n{}", text);
        let opts = Options { timeout: Some(std::time::Duration::from_secs(60)), ..Options::default() };
        let (outcome, stats) = solve(&p, &(0..p.hosts.len()).collect::<Vec<_>>(), &opts, &mut Quiet).expect("solves");
        match (outcome, best) {
            (Outcome::Sat { deployments, .. }, Some(best)) => {
                let d = deployments[0].deployment();
                for c in p.components.iter().filter(|c| c.named.is_some()) {
                    prop_assert_eq!(d.instances.iter().filter(|i| i.id == c.name && i.component == "A").count(), 1,
                        "named instance {} in the DDD:\n{}", c.name, text);
                }
                let world = bind(&p, d).expect("binds");
                prop_assert!(is_solution(&p, &world), "the solver's answer fails the evaluator:\n{}", text);
                let host = |h: &str| p.host(h).expect("a declared host");
                let inst: Vec<(Option<String>, i64, usize)> = d.instances.iter().map(|i| {
                    let named = spec.named.iter().find(|(n, _)| *n == i.id);
                    (named.map(|(n, _)| n.clone()), named.map_or(1, |(_, c)| *c), host(&i.host))
                }).collect();
                prop_assert!(spec.holds(&inst), "the solver's answer fails the oracle:\n{}", text);
                prop_assert_eq!(Some(spec.cost(&inst)), oracle, "not the oracle's optimum:\n{}", text);
                let got = levels(&p, &world).expect("levels");
                prop_assert_eq!(&got, &best, "goal:\n{}", text);
                if objective.is_some() {
                    let report = stats.optimum.expect("an optimisation report");
                    prop_assert!(report.proven(), "not proven optimal:\n{}", text);
                }
            }
            (Outcome::Unsat { .. }, None) => {}
            (o, b) => prop_assert!(false, "solve said {:?}, brute force {:?}\n{}", o, b, text),
        }
    }
}
