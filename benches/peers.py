#!/usr/bin/env python3
"""Runs deladas and the hand-written peer encodings of ../shared/peers/ side by
side on the P2P problem (the same generated goals), and prints a markdown
table: per N, process wall seconds and peak RSS (median of --runs), and the
ratio deladas / best peer. Every run is also a JSON line in
target/bench/peers.jsonl (rewritten per invocation).

usage: python3 benches/peers.py [--sizes 200,1000,2000,5000] [--variant satisfy|unsat|resolve]
         [--peers clingo,cpsat-w2,z3-int] [--runs 3] [--timeout 120] [--max-mb 8192]
         [--single-above 60] [--python PATH] [--no-build] [--limits]

The curve of issue 13 (every size, on an idle machine; about an hour):
  python3 benches/peers.py --sizes 200,1000,2000,5000

Peers' solvers: `--python` (or $PEERS_PYTHON) is a Python with clingo, ortools
and z3-solver; by default target/peers-venv, which this script creates on its
first run (python3 -m venv, then pip install of the versions the peers'
README pins: ortools==9.15.6755 clingo==5.8.3 z3-solver==5.4.1.0, ~360 MB,
from PyPI). A peer whose module is missing there is shown as "n/a".

Limits per run: a peer gets `--timeout S` for its solver call and is killed
(with its process group) at S + 60 s of wall time; deladas runs without a
limit and is killed at S. Either is shown as "TO (> S s)"; the series of
that solver stops there (larger N are "-"), as in the peers' own driver.
A run whose resident memory exceeds --max-mb (polled every 20 ms) is killed
and shown as "MEM (> M MB)": the machine is shared, and clingo needed
4.7 GB at N = 1,000 (CP-SAT and z3py build O(N²) models in Python).
Peak RSS is the child's ru_maxrss (os.wait4), exact for the process.
When a run takes longer than --single-above seconds, the cell is that one
run (marked x1) rather than a median.

--limits: after the unbounded runs of deladas at each N (median time T),
also run it with `--timeout T/2` (it must exit 3 within T/2 + max(1 s,
5 %)) and `--timeout 2T` (it must answer: 0, or 1 for unsat); the table
gets a column for each. (`cargo bench --bench p2p -- --limits` does this
with repeats, for all three goals.)

resolve: the peers' canonical deployment (common.canonical_old) loses its
first host (a router); deladas runs `resolve --fail-host h1` on the same
deployment (`bench-goal N --canonical-ddd`) and the kept-binding count of
each run is shown beside its time.
deladas's time includes its parsimony pass and its independent self-check;
the peers do neither."""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# ../shared/peers from the main checkout (/work/main), ../../shared/peers from
# a worktree under /work/wt; --peers-dir or $PEERS_DIR otherwise.
PEERS = next((d for d in (os.path.join(os.path.dirname(ROOT), "shared", "peers"),
                          os.path.join(os.path.dirname(os.path.dirname(ROOT)), "shared", "peers"))
              if os.path.isdir(d)), os.path.join(os.path.dirname(ROOT), "shared", "peers"))
VENV = os.path.join(ROOT, "target", "peers-venv")
PINS = ["ortools==9.15.6755", "clingo==5.8.3", "z3-solver==5.4.1.0"]
CONFIGS = {
    "cpsat-w2": ["cpsat_deploy.py", "--workers", "2"],
    "cpsat-w8": ["cpsat_deploy.py", "--workers", "8"],
    "clingo": ["clingo_deploy.py"],
    "z3-int": ["z3_deploy.py", "--ranks", "int"],
}
MODULE = {"cpsat-w2": "ortools", "cpsat-w8": "ortools", "clingo": "clingo", "z3-int": "z3"}


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def rss_mb(pid):
    """Resident memory of a live process (MB), or 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0


class Run:
    """One finished process: wall seconds (None when killed at the wall
    limit), exit code, output, peak RSS (MB) and why it was killed."""

    def __init__(self, wall, rc, out, mb, killed=None):
        self.wall, self.rc, self.out, self.mb, self.killed = wall, rc, out, mb, killed


def timed(cmd, wall_limit, max_mb):
    """Runs cmd in its own process group with stdout/stderr to a file, reaps
    it with os.wait4 (peak RSS from ru_maxrss), kills the group at
    wall_limit seconds or when its RSS passes max_mb. Every wait is bounded."""
    out_path = os.path.join(ROOT, "target", "bench", "peers-run.out")
    with open(out_path, "w") as out:
        t = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        killed = None
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                break
            elapsed = time.perf_counter() - t
            if killed is None and elapsed > wall_limit:
                killed = "time"
            elif killed is None and max_mb and rss_mb(p.pid) > max_mb:
                killed = "memory"
            if killed:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    with open(out_path) as f:
        text = f.read()
    return Run(None if killed else wall, p.returncode, text, ru.ru_maxrss / 1024, killed)


def ensure_python(path, explicit):
    if os.path.exists(path) or explicit:
        return path
    print(f"creating {VENV} with {' '.join(PINS)} (PyPI)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "-q"] + PINS, check=True)
    return path


def has_module(python, module):
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def limit_run(cmd, limit, expect_answer, max_mb):
    """deladas with --timeout `limit`: (cell text, ok)."""
    r = timed(cmd + ["--timeout", f"{max(limit, 0.001):.3f}"], limit + 60, max_mb)
    if r.wall is None:
        return f"killed ({r.killed}) **FAIL**", False
    ok = r.rc in (0, 1) if expect_answer else (r.rc == 3 and "E0802" in r.out
                                               and r.wall <= limit + max(1.0, 0.05 * limit))
    late = "" if expect_answer else f", {r.wall - limit:+.2f} s past"
    return f"{r.wall:.2f} s{late} rc={r.rc} {r.mb:.0f} MB {'OK' if ok else '**FAIL**'}", ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,1000,2000,5000")
    ap.add_argument("--variant", default="satisfy", choices=["satisfy", "unsat", "resolve"])
    ap.add_argument("--peers", default="clingo,cpsat-w2,z3-int")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--max-mb", type=float, default=8192)
    ap.add_argument("--single-above", type=float, default=60)
    ap.add_argument("--python", default=os.environ.get("PEERS_PYTHON"))
    ap.add_argument("--peers-dir", default=os.environ.get("PEERS_DIR", PEERS))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--limits", action="store_true")
    a = ap.parse_args()
    python = ensure_python(a.python or os.path.join(VENV, "bin", "python"), a.python is not None)
    if not a.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "deladas-cli", "--bin", "deladas"],
                       cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "deladas")
    sizes = [int(x) for x in a.sizes.split(",")]
    peers = [p for p in a.peers.split(",") if p]
    missing = {p for p in peers if not has_module(python, MODULE[p])}
    dead = {}
    rows = []
    bench = os.path.join(ROOT, "target", "bench")
    tmp = os.path.join(bench, "goals")
    os.makedirs(tmp, exist_ok=True)
    jsonl = open(os.path.join(bench, f"peers-{a.variant}.jsonl"), "w")
    loads = []

    def record(who, n, r, status):
        loads.append(load_average())
        jsonl.write(json.dumps({"n": n, "variant": a.variant, "solver": who, "wall_s": r.wall,
                                "killed": r.killed, "rc": r.rc, "status": status,
                                "peak_rss_mb": r.mb, "load_avg": loads[-1]}) + "\n")
        jsonl.flush()
        print(f"N={n} {who}: {'-' if r.wall is None else f'{r.wall:.2f} s'} {r.mb:.0f} MB {status} "
              f"(load {loads[-1]})", file=sys.stderr)

    def gone(r, limit):
        return f"TO (> {limit:.0f} s)" if r.killed == "time" else f"MEM (> {a.max_mb:.0f} MB)"

    for n in sizes:
        goal = os.path.join(tmp, f"p2p{n}{'-unsat' if a.variant == 'unsat' else ''}.deladas")
        gen = ["bench-goal", str(n)] + (["--unsat"] if a.variant == "unsat" else [])
        with open(goal, "w") as f:
            f.write(subprocess.run([exe] + gen, capture_output=True, text=True, check=True).stdout)
        cmd = [exe, "solve", goal, "-o", os.devnull]
        if a.variant == "resolve":
            old = os.path.join(tmp, f"p2p{n}.ddd.xml")
            with open(old, "w") as f:
                f.write(subprocess.run([exe, "bench-goal", str(n), "--canonical-ddd"], capture_output=True,
                                       text=True, check=True).stdout)
            cmd = [exe, "resolve", goal, "--from", old, "--fail-host", "h1", "-o", os.devnull,
                   "--plan-format", "json"]
        row = {"N": n}
        for who in ["deladas"] + peers:
            if who in missing:
                row[who] = (None, "n/a", None, 0)
                continue
            if who in dead:
                row[who] = (None, "-", None, 0)
                continue
            times, mbs, status = [], [], ""
            for _ in range(a.runs):
                if who == "deladas":
                    r = timed(cmd, a.timeout, a.max_mb)
                    status = {0: "SAT", 1: "UNSAT", 3: "gave up"}.get(r.rc, f"rc={r.rc}")
                    if a.variant == "resolve" and r.rc == 0:
                        m = re.search(r'"bindings_kept":\s*\{\s*"bound":\s*\d+,\s*"optimal":\s*(\w+),'
                                      r'\s*"value":\s*(\d+)', r.out)
                        status = f"{'opt' if m and m.group(1) == 'true' else 'feasible'} {m.group(2) if m else '?'}"
                else:
                    script, *opts = CONFIGS[who]
                    pcmd = [python, os.path.join(a.peers_dir, script), str(n), a.variant, "--timeout",
                            str(a.timeout)] + opts
                    r = timed(pcmd, a.timeout + 60, a.max_mb)
                    m = re.search(r"status=(\S+)", r.out)
                    status = m.group(1) if m else f"error rc={r.rc}"
                    o = re.search(r"obj=(\S+)", r.out)
                    if a.variant == "resolve" and o:
                        status = f"{status} {o.group(1)}"
                    if status.startswith(("TIMEOUT", "FEAS")):
                        r.killed = "time"
                if r.wall is None or r.killed or status.startswith("error"):
                    if r.killed:
                        # A peer killed at the wall limit ran its solver's limit + 60 s.
                        status = gone(r, a.timeout + 60 if who != "deladas" and r.wall is None else a.timeout)
                    else:
                        print(r.out[-2000:], file=sys.stderr)
                    record(who, n, r, status)
                    dead[who] = n
                    times = []
                    break
                record(who, n, r, status)
                times.append(r.wall)
                mbs.append(r.mb)
                if r.wall > a.single_above:
                    break
            row[who] = (statistics.median(times) if times else None, status,
                        statistics.median(mbs) if mbs else None, len(times))
        if a.limits and row["deladas"][0] is not None:
            t = row["deladas"][0]
            row["half"] = limit_run(cmd, t / 2, False, a.max_mb)[0]
            row["twice"] = limit_run(cmd, 2 * t, True, a.max_mb)[0]
        rows.append(row)
    jsonl.close()

    def cell(r, who):
        t, status, mb, k = r[who]
        if t is None:
            return status
        s = f"{t:.2f} s / {mb:.0f} MB"
        if a.variant == "resolve" or status not in ("SAT", "UNSAT"):
            s += f" ({status})"
        return s + (" x1" if k == 1 and a.runs > 1 else "")

    print(f"\nP2P `{a.variant}`: process wall seconds / peak RSS, median of up to {a.runs} runs; "
          f"timeout {a.timeout:.0f} s per run; load average {loads[0] if loads else '?'} … "
          f"{loads[-1] if loads else '?'}\n")
    extra = " `--timeout` T/2 | `--timeout` 2T |" if a.limits else ""
    print("| N | deladas | " + " | ".join(peers) + " | best peer | deladas / best |" + extra)
    print("|---:|---|" + "---|" * len(peers) + "---|---:|" + ("---|---|" if a.limits else ""))
    for r in rows:
        best = min(((r[p][0], p) for p in peers if r[p][0] is not None), default=(None, "-"))
        d = r["deladas"][0]
        if d is None:
            ratio = "-"
        elif best[0] is None:
            ratio = "(no peer answered)"
        else:
            ratio = f"{d / best[0]:.2f}"
        lim = f" {r.get('half', '-')} | {r.get('twice', '-')} |" if a.limits else ""
        print(f"| {r['N']} | {cell(r, 'deladas')} | " + " | ".join(cell(r, p) for p in peers)
              + f" | {best[1]} | {ratio} |" + lim)
    print(f"\nper run: {os.path.join(bench, f'peers-{a.variant}.jsonl')}")


if __name__ == "__main__":
    main()
