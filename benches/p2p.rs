//! The P2P benchmark: solve the peers' router/client goal for N hosts and
//! print per phase: grounding size, time to ground, solve, minimise, verify,
//! and peak memory. `cargo bench --bench p2p -- 6 20 50` picks the sizes;
//! `--unsat` runs the unsatisfiable variant. Not a timed test.
//!
//! `--limits` (see `p2p/limits.rs`) runs the release `deladas` binary as a
//! process on the satisfy, resolve and unsat goals, without a limit and with
//! `--timeout` of half and twice the unbounded time, and records wall time
//! and peak RSS per run (`--sizes 200,1000 --runs 3`).

#[path = "p2p/limits.rs"]
mod limits;

use std::time::Instant;

use deladas::bench_goals::{p2p, Variant};

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l.to_string()))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let unsat = args.iter().any(|a| a == "--unsat");
    if args.iter().any(|a| a == "--limits") {
        limits::main(&args);
        return;
    }
    let explain = args.iter().any(|a| a == "--explain");
    if args.iter().any(|a| a == "--resolve") {
        let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
        if sizes.is_empty() {
            sizes = vec![6, 20, 50, 100, 200];
        }
        resolve_bench(&sizes, args.iter().any(|a| a == "--progressive"));
        return;
    }
    let mut sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![6, 20, 50, 100, 200];
    }
    let variant = if unsat { Variant::Unsat } else { Variant::Satisfy };
    println!("| N | result | slots | channels | nodes | check s | ground s | solve s | cut rounds | minimise s (passes) | verify s | total s | peak MB |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let text = p2p(n, variant);
        let t = Instant::now();
        let fs = deladas::check::load::RealFs;
        let loaded = deladas::check::load(std::path::Path::new("p2p.deladas"), Some(&text), &fs);
        let (_sources, checked) = deladas::check::check_loaded(loaded);
        assert!(!checked.has_errors());
        let check_s = t.elapsed().as_secs_f64();
        let program = &checked.program;
        let hosts: Vec<usize> = (0..program.hosts.len()).collect();
        if explain {
            let t = Instant::now();
            let e =
                deladas::solve::explain::explain(program, &hosts, std::time::Duration::from_secs(60)).expect("grounds");
            let what = match &e {
                deladas::solve::explain::Explained::Unsatisfiable { conflict, repairs, .. } => format!(
                    "{} clauses, {} resources, minimal={}, {} repairs",
                    conflict.clauses.len(),
                    conflict.resources.len(),
                    conflict.minimal,
                    repairs.len()
                ),
                other => format!("{other:?}"),
            };
            println!("explain N={n}: {what} in {:.3} s", t.elapsed().as_secs_f64());
            continue;
        }
        let opts = deladas::solve::Options::default();
        let (outcome, stats) =
            deladas::solve::solve(program, &hosts, &opts, &mut deladas::solve::Quiet).expect("grounds");
        let tv = Instant::now();
        let result = match &outcome {
            deladas::solve::Outcome::Sat { solutions: sols, deployments, .. } => {
                // The library already checked it with the evaluator; this
                // column times `deladas verify` on it.
                let world = deladas::eval::bind(program, &deployments[0]).expect("the DDD binds");
                assert!(deladas::eval::all_violations(program, &world).is_empty(), "verify rejects the solution");
                format!(
                    "SAT {} inst{}",
                    sols[0].slots.len(),
                    if stats.local {
                        " (local)"
                    } else if stats.local_fallback {
                        " (local failed)"
                    } else {
                        ""
                    }
                )
            }
            deladas::solve::Outcome::Unsat { core, .. } => {
                format!("UNSAT ({} clauses{})", core.len(), if stats.by_counting { ", by counting" } else { "" })
            }
            deladas::solve::Outcome::Unknown(r) => format!("UNKNOWN {r}"),
            deladas::solve::Outcome::Internal(r) => format!("INTERNAL {r}"),
            deladas::solve::Outcome::Rejected(d) => format!("REJECTED {d:?}"),
        };
        let verify_s = tv.elapsed().as_secs_f64();
        println!(
            "| {n} | {result} | {} | {} | {} | {check_s:.3} | {:.3} | {:.3} | {} | {:.3} ({}) | {verify_s:.3} | {:.3} | {} |",
            stats.slots,
            stats.channels,
            stats.ground_nodes,
            stats.ground_time.as_secs_f64(),
            stats.solve_time.as_secs_f64(),
            stats.cut_rounds,
            stats.minimise_time.as_secs_f64(),
            stats.minimise_steps,
            t.elapsed().as_secs_f64(),
            peak_rss_kb() / 1024
        );
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The peers' resolve variant: the canonical deployment of N hosts loses
/// host h1 (a router). Times, per N (median of 3): the optimal re-solve in
/// process (grounding included), the paper's progressive strategy, and a
/// from-scratch `solve` of the reduced goal.
fn resolve_bench(sizes: &[usize], progressive: bool) {
    use deladas::solve::resolve::{self, ResolveOutcome, Running, Scenario, Strategy};
    println!("| N | kept (optimal) | kept (progressive) | resolve s | progressive s | scratch solve s | ratio resolve/scratch |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let text = p2p(n, Variant::Satisfy);
        let fs = deladas::check::load::RealFs;
        let loaded = deladas::check::load(std::path::Path::new("p2p.deladas"), Some(&text), &fs);
        let (_sources, checked) = deladas::check::check_loaded(loaded);
        let program = &checked.program;
        let ddd = deladas::bench_goals::p2p_canonical_ddd(n).expect("canonical");
        let d = deladas::ddd::from_xml(&ddd).expect("reads");
        let world = deladas::eval::bind(program, &d).expect("binds");
        let running = Running::from_world(&world);
        let hosts: Vec<usize> = (0..program.hosts.len()).collect();
        let failed = Scenario { hosts: hosts.clone(), down: vec![0], failed_instances: vec![] };
        let kept_of = |o: &ResolveOutcome| match o {
            ResolveOutcome::Resolved(r) => {
                format!("{}{}", r.levels[0].value, if r.levels[0].optimal() { "" } else { "?" })
            }
            other => format!("{other:?}"),
        };
        let mut cold = vec![];
        let mut kept = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let o = resolve::resolve(program, &running, &failed, Strategy::Optimal, None).expect("resolves");
            cold.push(t.elapsed().as_secs_f64());
            kept = kept_of(&o);
        }
        let (mut prog_t, mut prog_kept) = (f64::NAN, "-".to_string());
        if progressive {
            let t = Instant::now();
            let o = resolve::resolve(
                program,
                &running,
                &failed,
                Strategy::Progressive,
                Some(std::time::Duration::from_secs(120)),
            )
            .expect("resolves");
            prog_t = t.elapsed().as_secs_f64();
            prog_kept = kept_of(&o);
        }
        let mut scratch = vec![];
        for _ in 0..3 {
            let up: Vec<usize> = hosts[1..].to_vec();
            let t = Instant::now();
            let (o, _) =
                deladas::solve::solve(program, &up, &deladas::solve::Options::default(), &mut deladas::solve::Quiet)
                    .expect("solves");
            assert!(matches!(o, deladas::solve::Outcome::Sat { .. }));
            scratch.push(t.elapsed().as_secs_f64());
        }
        let (c, sc) = (median(cold), median(scratch));
        println!("| {n} | {kept} | {prog_kept} | {c:.3} | {prog_t:.3} | {sc:.3} | {:.2} |", c / sc);
    }
}
