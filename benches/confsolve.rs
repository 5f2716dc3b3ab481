//! ConfSolve's 250-VM / 48-machine benchmark (issue 19;
//! `examples/confsolve-250.deladas`), minimising the machines in use: solved
//! RUNS times under a limit of LIMIT seconds; prints the medians of the time
//! to the answer, the value found, and the bound proven. The published
//! figures and ours are compared in `docs/reference/workload-benchmarks.md`.
//! `cargo bench --bench confsolve -- [LIMIT] [RUNS]` (60 s, 3 runs); not a
//! timed test.

use std::time::{Duration, Instant};

use deladas::solve::{solve, Options, Outcome, Quiet};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let nums: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let limit = nums.first().copied().unwrap_or(60);
    let runs = nums.get(1).copied().unwrap_or(3).max(1);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/confsolve-250.deladas");
    let (mut times, mut values, mut bounds) = (vec![], vec![], vec![]);
    for _ in 0..runs {
        let (_sources, checked) = deladas::check::check_path(&path);
        assert!(!checked.has_errors(), "{:?}", checked.diags);
        let program = &checked.program;
        let all: Vec<usize> = (0..program.hosts.len()).collect();
        let opts = Options { timeout: Some(Duration::from_secs(limit)), ..Options::default() };
        let t = Instant::now();
        match solve(program, &all, &opts, &mut Quiet) {
            Ok((Outcome::Sat { .. }, stats)) => {
                let level = stats.optimum.as_ref().and_then(|r| r.levels.first()).expect("an objective level");
                values.push(level.value as f64);
                bounds.push(level.bound as f64);
            }
            Ok((other, _)) => panic!("no configuration: {other:?}"),
            Err(e) => panic!("solve failed: {e:?}"),
        }
        times.push(t.elapsed().as_secs_f64());
    }
    println!("| VMs | machines | limit s | time s (median) | machines used (median) | bound proven (median) | runs |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!("| 250 | 48 | {limit} | {:.3} | {} | {} | {runs} |", median(times), median(values), median(bounds));
}
