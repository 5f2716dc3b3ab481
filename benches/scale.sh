#!/usr/bin/env bash
# Issue 13's full scale run, for an idle machine (about an hour on 2 cores):
#   benches/scale.sh [SIZES]          (default 200,1000,2000,5000)
# 1. cargo bench --bench p2p -- --limits: satisfy, resolve and unsat at each N,
#    as the release binary, without a limit, with --timeout T/2 and 2T,
#    3 runs each (target/bench/limits.jsonl);
# 2. benches/peers.py: deladas beside clingo, CP-SAT and z3py on the same
#    satisfiable goals, 120 s and 8 GB per run (target/bench/peers-satisfy.jsonl;
#    it creates target/peers-venv on its first run).
# The markdown tables go to target/bench/limits.md and target/bench/peers.md
# (and stdout); paste them into README.md, "Benchmarks", with the load average
# printed above each table.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-200,1000,2000,5000}"
mkdir -p target/bench
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --bench p2p -- --limits --sizes "$sizes" --runs 3 | tee target/bench/limits.md
python3 -B benches/peers.py --sizes "$sizes" --runs 3 --timeout 120 | tee target/bench/peers.md
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
