#!/usr/bin/env python3
"""Runs deladas and the hand-written peer encodings of ../shared/peers/ side by
side on the P2P problem, in one run, and prints a markdown table with the
ratio deladas / best peer per N (process wall time, median of --runs).

usage: python3 benches/peers.py [--sizes 6,20,50,100,200] [--variant satisfy|unsat|resolve]
         [--peers clingo,z3-int,cpsat-w2] [--runs 3] [--timeout 120]
         [--python PATH-to-python-with-ortools-clingo-z3]

Set up the peers' solvers once (see ../shared/peers/README.md):
  python3 -m venv /tmp/venv-peers
  /tmp/venv-peers/bin/pip install ortools==9.15.6755 clingo==5.8.3 z3-solver==5.4.1.0
A series stops at the first N that times out, as in the peers' own driver.
resolve: the peers' canonical deployment (common.canonical_old) loses its
first host (a router); deladas runs `resolve --fail-host h1` on the same
deployment (`bench-goal N --canonical-ddd`) and the kept-binding count of
each run is shown beside its time.
deladas's time includes its parsimony pass and its independent self-check;
the peers do neither."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(os.path.dirname(ROOT), "shared", "peers")
CONFIGS = {
    "cpsat-w2": ["cpsat_deploy.py", "--workers", "2"],
    "cpsat-w8": ["cpsat_deploy.py", "--workers", "8"],
    "clingo": ["clingo_deploy.py"],
    "z3-int": ["z3_deploy.py", "--ranks", "int"],
}


def timed(cmd, timeout):
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        return time.perf_counter() - t, p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return None, "timeout", ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="6,20,50,100,200")
    ap.add_argument("--variant", default="satisfy", choices=["satisfy", "unsat", "resolve"])
    ap.add_argument("--peers", default="clingo,z3-int,cpsat-w2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--python", default=os.environ.get("PEERS_PYTHON", "/tmp/venv-peers/bin/python"))
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    exe = os.path.join(ROOT, "target", "release", "deladas")
    sizes = [int(x) for x in a.sizes.split(",")]
    peers = [p for p in a.peers.split(",") if p]
    dead = set()
    rows = []
    tmp = tempfile.mkdtemp()
    for n in sizes:
        goal = os.path.join(tmp, f"p2p{n}.deladas")
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
        times, status = [], ""
        for _ in range(a.runs):
            w, rc, out = timed(cmd, a.timeout)
            status = {0: "SAT", 1: "UNSAT", 3: "TO"}.get(rc, f"rc={rc}")
            if a.variant == "resolve" and rc == 0:
                m = re.search(r'"bindings_kept":\s*\{\s*"bound":\s*\d+,\s*"optimal":\s*(\w+),\s*"value":\s*(\d+)', out)
                status = f"{'OPT' if m and m.group(1) == 'true' else 'FEAS'} obj={m.group(2) if m else '?'}"
            if w is None:
                status = "TO"
                break
            times.append(w)
        row = {"N": n, "deladas": (statistics.median(times) if times else None, status)}
        for peer in peers:
            if peer in dead:
                row[peer] = (None, "-")
                continue
            script, *opts = CONFIGS[peer]
            ptimes, pstatus = [], ""
            for _ in range(a.runs):
                cmd = [a.python, os.path.join(PEERS, script), str(n), a.variant, "--timeout", str(a.timeout)] + opts
                w, rc, out = timed(cmd, a.timeout + 60)
                m = re.search(r"status=(\S+)", out)
                pstatus = m.group(1) if m else f"rc={rc}"
                o = re.search(r"obj=(\S+)", out)
                if a.variant == "resolve" and o:
                    pstatus += f" obj={o.group(1)}"
                if w is None or pstatus.startswith(("TIMEOUT", "FEAS")):
                    pstatus, ptimes = "TO", []
                    dead.add(peer)
                    break
                ptimes.append(w)
                if w > 20:
                    break
            row[peer] = (statistics.median(ptimes) if ptimes else None, pstatus)
        rows.append(row)
        print(f"N={n} done: {row}", file=sys.stderr)
    cell = lambda t: "TO" if t[0] is None else (f"{t[0]:.3f}" + (f" ({t[1]})" if a.variant == "resolve" else ""))
    print(f"\nP2P `{a.variant}`, process wall seconds, median of up to {a.runs} runs\n")
    print("| N | deladas | " + " | ".join(peers) + " | best peer | ratio |")
    print("|---:|---:|" + "---:|" * len(peers) + "---|---:|")
    for r in rows:
        best = min(((r[p][0], p) for p in peers if r[p][0] is not None), default=(None, "-"))
        d = r["deladas"][0]
        ratio = f"{d / best[0]:.2f}" if d is not None and best[0] else ("∞" if best[0] and d is None else "-")
        print(f"| {r['N']} | {cell(r['deladas'])} | " + " | ".join(cell(r[p]) for p in peers)
              + f" | {best[1]} | {ratio} |")


if __name__ == "__main__":
    main()
