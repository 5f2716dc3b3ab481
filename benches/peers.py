#!/usr/bin/env python3
"""Runs deladas and the hand-written peer encodings of ../shared/peers/ side by
side on the P2P problem, in one run, and prints a markdown table with the
ratio deladas / best peer per N (process wall time, median of --runs).

usage: python3 benches/peers.py [--sizes 6,20,50,100,200] [--variant satisfy|unsat|resolve]
         [--peers clingo,z3-int,cpsat-w2] [--runs 3] [--timeout 120]
         [--python PATH-to-python-with-ortools-clingo-z3] [--limits]

Every run's peak resident memory (/usr/bin/time %M) is shown beside its time.
--limits: after the unbounded runs of deladas at each N (median time T), also
run it with `--timeout T/2` (it must exit 3 within T/2 + max(1 s, 5 %)) and
`--timeout 2T` (it must answer: 0, or 1 for unsat); the table gets a column
for each, with the time, peak memory and OK/FAIL.

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


PEAK = {}


def timed(cmd, timeout):
    """Wall seconds, exit code and output; the peak RSS (MB) of the run is
    left in PEAK["mb"] (from /usr/bin/time when it is installed)."""
    wrap = ["/usr/bin/time", "-f", "PEAK_RSS_KB=%M"] if os.path.exists("/usr/bin/time") else []
    t = time.perf_counter()
    PEAK["mb"] = None
    try:
        p = subprocess.run(wrap + cmd, capture_output=True, text=True, timeout=timeout)
        w = time.perf_counter() - t
        m = re.search(r"PEAK_RSS_KB=(\d+)", p.stderr)
        if m:
            PEAK["mb"] = int(m.group(1)) / 1024
        rc = p.returncode
        if wrap and rc != 0 and "Command exited with non-zero status" in p.stderr:
            rc = int(re.search(r"non-zero status (\d+)", p.stderr).group(1))
        return w, rc, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        return None, "timeout", ""


def limit_run(cmd, limit, expect_answer):
    """deladas with --timeout `limit`: (cell text, ok)."""
    w, rc, _ = timed(cmd + ["--timeout", f"{limit:.3f}"], limit + 60)
    mb = PEAK["mb"]
    if w is None:
        return "hung", False
    ok = rc in (0, 1) if expect_answer else (rc == 3 and w <= limit + max(1.0, 0.05 * limit) + 0.3)
    ok = ok or (not expect_answer and rc in (0, 1) and w <= limit + max(1.0, 0.05 * limit))
    return f"{w:.2f} s rc={rc} {mb or 0:.0f} MB {'OK' if ok else 'FAIL'}", ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="6,20,50,100,200")
    ap.add_argument("--variant", default="satisfy", choices=["satisfy", "unsat", "resolve"])
    ap.add_argument("--peers", default="clingo,z3-int,cpsat-w2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--python", default=os.environ.get("PEERS_PYTHON", "/tmp/venv-peers/bin/python"))
    ap.add_argument("--limits", action="store_true")
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
        times, status, mbs = [], "", []
        for _ in range(a.runs):
            w, rc, out = timed(cmd, a.timeout)
            if PEAK["mb"]:
                mbs.append(PEAK["mb"])
            status = {0: "SAT", 1: "UNSAT", 3: "TO"}.get(rc, f"rc={rc}")
            if a.variant == "resolve" and rc == 0:
                m = re.search(r'"bindings_kept":\s*\{\s*"bound":\s*\d+,\s*"optimal":\s*(\w+),\s*"value":\s*(\d+)', out)
                status = f"{'OPT' if m and m.group(1) == 'true' else 'FEAS'} obj={m.group(2) if m else '?'}"
            if w is None:
                status = "TO"
                break
            times.append(w)
        row = {"N": n, "deladas": (statistics.median(times) if times else None, status),
               "deladas_mb": statistics.median(mbs) if mbs else None}
        if a.limits and times:
            t = statistics.median(times)
            row["half"] = limit_run(cmd, t / 2, False)[0]
            row["twice"] = limit_run(cmd, 2 * t, True)[0]
        for peer in peers:
            if peer in dead:
                row[peer] = (None, "-")
                continue
            script, *opts = CONFIGS[peer]
            ptimes, pstatus, pmbs = [], "", []
            for _ in range(a.runs):
                cmd = [a.python, os.path.join(PEERS, script), str(n), a.variant, "--timeout", str(a.timeout)] + opts
                w, rc, out = timed(cmd, a.timeout + 60)
                if PEAK["mb"]:
                    pmbs.append(PEAK["mb"])
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
            row[peer + "_mb"] = statistics.median(pmbs) if pmbs else None
        rows.append(row)
        print(f"N={n} done: {row}", file=sys.stderr)
    def cell(r, who):
        t = r[who]
        if t[0] is None:
            return "TO"
        mb = r.get(who + "_mb")
        return (f"{t[0]:.3f}" + (f" / {mb:.0f} MB" if mb else "")
                + (f" ({t[1]})" if a.variant == "resolve" else ""))
    print(f"\nP2P `{a.variant}`, process wall seconds / peak RSS, median of up to {a.runs} runs\n")
    extra = " --timeout T/2 | --timeout 2T |" if a.limits else ""
    print("| N | deladas | " + " | ".join(peers) + " | best peer | ratio |" + extra)
    print("|---:|---:|" + "---:|" * len(peers) + "---|---:|" + ("---|---|" if a.limits else ""))
    for r in rows:
        best = min(((r[p][0], p) for p in peers if r[p][0] is not None), default=(None, "-"))
        d = r["deladas"][0]
        ratio = f"{d / best[0]:.2f}" if d is not None and best[0] else ("∞" if best[0] and d is None else "-")
        lim = f" {r.get('half', '-')} | {r.get('twice', '-')} |" if a.limits else ""
        print(f"| {r['N']} | {cell(r, 'deladas')} | " + " | ".join(cell(r, p) for p in peers)
              + f" | {best[1]} | {ratio} |" + lim)


if __name__ == "__main__":
    main()
