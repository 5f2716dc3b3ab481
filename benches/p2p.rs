//! The P2P benchmark: solve the peers' router/client goal for N hosts and
//! print per phase: grounding size, time to ground, solve, minimise, verify,
//! and peak memory. `cargo bench --bench p2p -- 6 20 50` picks the sizes;
//! `--unsat` runs the unsatisfiable variant. Not a timed test.

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
    let explain = args.iter().any(|a| a == "--explain");
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
            deladas::solve::Outcome::Sat { ground, solutions: sols } => {
                let d = deladas::solve::output::to_deployment(program, ground, &sols[0], &Default::default());
                let world = deladas::eval::bind(program, &d).expect("the DDD binds");
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
