//! The pathological but small inputs of issue 15, at full size: each is
//! loaded, checked and its diagnostics rendered three times; the median time
//! must stay within its budget (the process panics otherwise), so parsing
//! and checking stay near-linear. Not a timed test: run it with
//! `cargo bench --bench pathological` (`-- NAME` for one shape).
//!
//! Prints per shape: input size, median seconds, budget, diagnostics
//! (count and rendered bytes), peak resident memory of the process so far.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deladas::check::{self, FileSystem};

struct MemFs(HashMap<PathBuf, Vec<u8>>);

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

fn goal_with(clauses: &str) -> String {
    format!("component C(code = \"c.xml\", ports = {{p}})\nhost h = host()\nconstraintset s = constraintset {{\n{clauses}\n}}\n")
}

/// Loads, checks and renders; returns (diagnostics, rendered bytes).
fn run(src: &str) -> (usize, usize) {
    let path = PathBuf::from("goal.deladas");
    let fs = MemFs(HashMap::from([(path.clone(), src.as_bytes().to_vec())]));
    let (sources, checked) = check::check_loaded(check::load(&path, None, &fs));
    let text = deladas::diagnostics::render::to_text(&checked.diags, &sources);
    (checked.diags.len(), text.len())
}

/// Makes one shape's input.
type Generator = Box<dyn Fn() -> String>;

fn main() {
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let nest = |n: usize| goal_with(&format!("{}true{}", "forall C x in deployment ( ".repeat(n), " )".repeat(n)));
    // (name, input, budget)
    let shapes: Vec<(&str, Generator, Duration)> = vec![
        (
            "or-100k",
            Box::new(|| goal_with(&format!("{}card(instancesof C in deployment) = 1", "true or ".repeat(100_000)))),
            Duration::from_secs(5),
        ),
        (
            "plus-100k",
            Box::new(|| goal_with(&format!("card(instancesof C in deployment){} >= 1", " + 1".repeat(100_000)))),
            Duration::from_secs(2),
        ),
        (
            "plus-1M",
            Box::new(|| goal_with(&format!("card(instancesof C in deployment){} >= 1", " + 1".repeat(1_000_000)))),
            Duration::from_secs(10),
        ),
        ("nested-forall-36MB", Box::new(move || nest(1_350_000)), Duration::from_secs(30)),
        ("trivially-true-200k", Box::new(|| goal_with(&"1 = 1\n".repeat(200_000))), Duration::from_secs(10)),
    ];
    println!("| shape | input | median s | budget s | diagnostics | rendered | peak MB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut over = vec![];
    for (name, make, budget) in shapes {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let src = make();
        let mut times = vec![];
        let mut out = (0, 0);
        for _ in 0..3 {
            let t = Instant::now();
            out = run(&src);
            times.push(t.elapsed());
        }
        times.sort();
        let median = times[1];
        println!(
            "| {name} | {:.1} MB | {:.3} | {} | {} | {} B | {} |",
            src.len() as f64 / 1e6,
            median.as_secs_f64(),
            budget.as_secs(),
            out.0,
            out.1,
            peak_rss_mb()
        );
        if median > budget {
            over.push(format!("{name}: {median:.2?} > {budget:?}"));
        }
    }
    assert!(over.is_empty(), "over budget: {over:?}");
}
