//! Topology spread over zones (issue 19): `bench_goals::zone_spread` for
//! HOSTS hosts in ZONES zones, solved three times; prints the median of each
//! phase (check, solve with parsimony and the evaluator's check) and the
//! grounding size. The target: 1,000 hosts in 10 zones under 10 s (release).
//! `cargo bench --bench spread -- 1000 10` (the default); not a timed test.
//! For experiments: `SPREAD_FILE=goal.deladas` solves that goal instead,
//! `SPREAD_Z3=smt.relevancy=0,…` sets Z3 global parameters first.
//! Results: `docs/reference/workload-benchmarks.md`.

use std::time::{Duration, Instant};

use deladas::bench_goals::zone_spread;
use deladas::solve::{solve, Options, Outcome, Quiet};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let nums: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (hosts, zones) = (nums.first().copied().unwrap_or(1000), nums.get(1).copied().unwrap_or(10));
    let runs = nums.get(2).copied().unwrap_or(3).max(1);
    // `SPREAD_FILE=goal.deladas` solves that goal instead (for experiments).
    if let Ok(ps) = std::env::var("SPREAD_Z3") {
        for kv in ps.split(',') {
            if let Some((k, v)) = kv.split_once('=') {
                z3::set_global_param(k, v);
            }
        }
    }
    let text = match std::env::var("SPREAD_FILE") {
        Ok(f) => std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f}: {e}")),
        Err(_) => zone_spread(hosts, zones),
    };
    let (mut check_s, mut solve_s) = (vec![], vec![]);
    let mut instances = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let fs = deladas::check::load::RealFs;
        let loaded = deladas::check::load(std::path::Path::new("spread.deladas"), Some(&text), &fs);
        let (_sources, checked) = deladas::check::check_loaded(loaded);
        assert!(!checked.has_errors(), "{:?}", checked.diags);
        check_s.push(t.elapsed().as_secs_f64());
        let program = &checked.program;
        let all: Vec<usize> = (0..program.hosts.len()).collect();
        let opts = Options { timeout: Some(Duration::from_secs(120)), ..Options::default() };
        let t = Instant::now();
        match solve(program, &all, &opts, &mut Quiet).map(|(o, _)| o) {
            Ok(Outcome::Sat { deployments, .. }) => {
                instances = deployments.first().map_or(0, |d| d.deployment().instances.len());
            }
            Ok(other) => panic!("not satisfiable: {other:?}"),
            Err(e) => panic!("solve failed: {e:?}"),
        }
        solve_s.push(t.elapsed().as_secs_f64());
    }
    println!("| hosts | zones | instances | check s (median) | solve s (median) | runs |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!("| {hosts} | {zones} | {instances} | {:.3} | {:.3} | {runs} |", median(check_s), median(solve_s));
}
