#!/usr/bin/env python3
"""study: was the machine the bottleneck of a harness run? (issue 6, "study")

    python3 bench/study.py DIR [--run TEXT] [--tolerance 0.05]

DIR is the output directory of `tyrant-lab run` (manifest.txt, runs/RUN/...). Per run:

- CPU: the machine-wide idle share over the run and its lowest 5 s value, as the runner
  logged them in runs/RUN/cpu.txt (missing for runs made before the runner logged it).
- Upload: for every peer process with a cap, its achieved upload over the seconds in which
  it was unchoking someone (`unchoked>0` in two consecutive stats ticks), divided by its cap
  x time_scale: 1.0 means exactly at the cap. Seeders always have what their unchoked peers
  want, so their ratio is the clean test of "the machine kept every process at its cap";
  leechers can also be short of demand (their unchoked peers may already hold all the pieces
  they have), and BitTyrant deliberately gives each unchoked peer only u_p, so their ratios
  are shown as a distribution, not as pass/fail.

Prints one line per run and a summary: the share of seeders (and of vanilla leechers) within
the tolerance of their cap. Python 3 standard library only.
"""

import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time


def manifest_peers(path):
    """(time_scale, {run: {peer_id: (role, strategy, up)}})"""
    scale = 1.0
    runs = {}
    with open(path) as f:
        for line in f:
            if line.startswith("manifest "):
                m = re.search(r"\btime_scale=(\S+)", line)
                if m:
                    scale = float(m.group(1))
            elif line.startswith("peer "):
                kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
                runs.setdefault(kv["run"], {})[kv["id"]] = (
                    kv["role"],
                    kv["strategy"],
                    float(kv["up"]),
                )
    return scale, runs


def busy_ratio(stats_files, cap_bytes):
    """(busy seconds, achieved/cap) over every stats file of one peer (all its joins)."""
    busy = 0.0
    sent = 0
    for path in stats_files:
        prev = None
        with open(path) as f:
            for line in f:
                if not line.startswith("tick "):
                    continue
                kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
                try:
                    t, up, unch = float(kv["t"]), int(kv["uploaded"]), int(kv["unchoked"])
                except (KeyError, ValueError):
                    continue
                if prev is not None and prev[2] > 0 and unch > 0 and t > prev[0]:
                    busy += t - prev[0]
                    sent += up - prev[1]
                prev = (t, up, unch)
    if busy <= 0 or cap_bytes <= 0:
        return busy, None
    return busy, sent / (busy * cap_bytes)


def cpu_summary(run_dir):
    try:
        with open(os.path.join(run_dir, "cpu.txt")) as f:
            for line in f:
                if line.startswith("summary "):
                    kv = dict(w.split("=", 1) for w in line.split()[1:])
                    return float(kv["idle_share"]), float(kv["min_5s_idle_share"])
    except OSError:
        pass
    return None


def run_ratios(dir_, run, peers, scale, min_busy):
    """(seeder ratios, vanilla leecher ratios) of one finished run."""
    rdir = os.path.join(dir_, "runs", run)
    seed_r, van_r = [], []
    for pid, (role, strategy, up) in peers.items():
        files = sorted(glob.glob(os.path.join(rdir, "stats", pid + ".txt")))
        files += sorted(glob.glob(os.path.join(rdir, "stats", pid + ".j*.txt")))
        busy, r = busy_ratio(files, up * 1024 * scale)
        if r is None or busy < min_busy:
            continue
        if role == "seeder":
            seed_r.append(r)
        elif strategy == "vanilla":
            van_r.append(r)
    return seed_r, van_r


def bill(a):
    """--bill: run swarms and report what they cost (issue 13, "the swarm bill")."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    lab = a.lab or os.path.join(root, "target", "release", "tyrant-lab")
    bins = (a.tyrant or os.path.join(root, "target", "release", "tyrant")).split(",")
    sizes = [tuple(x.split(":")) for x in a.sizes.split(",")]
    os.makedirs(a.bill, exist_ok=True)
    ncores = os.cpu_count()
    rows = []
    print("bill: preset single, one run (cap %s, tyrant-in-vanilla) per swarm, %g simulated s,"
          " --jobs 1; binaries alternate within each swarm size" % (a.cap, a.duration))
    for n, scale in sizes:
        for b in bins:
            tag = "%s-n%s-s%s" % (os.path.basename(b), n, scale)
            out = os.path.join(a.bill, tag)
            shutil.rmtree(out, ignore_errors=True)
            os.makedirs(out)
            manifest = os.path.join(out, "plan.txt")
            plan = [lab, "plan", "single", "peers=" + n, "time_scale=" + scale, "reps=1",
                    "caps=" + a.cap, "duration=%g" % a.duration, "seed=%d" % a.seed, "-o", manifest]
            plan += a.plan_arg
            subprocess.run(plan, check=True, stdout=subprocess.DEVNULL)
            only = "c%s-r0-tyrant-in-vanilla" % a.cap
            cmd = [lab, "run", manifest, "--out", out, "--jobs", "1", "--only", only,
                   "--tyrant", b, "-q"]
            t0 = time.time()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.time() - t0
            if status != 0:
                sys.exit("study: %s exited with %d (see %s)" % (" ".join(cmd), status, out))
            # The lab waits for every process it starts, so its children's CPU (peers and
            # tracker, all threads) is in its own rusage; its own polling is included too.
            cpu = ru.ru_utime + ru.ru_stime
            scale_f, runs = manifest_peers(os.path.join(out, "manifest.txt"))
            peers = runs[only]
            seed_r, van_r = run_ratios(out, only, peers, scale_f, a.min_busy)
            idle = cpu_summary(os.path.join(out, "runs", only))
            with open(os.path.join(out, "results.csv")) as f:
                downloads = max(0, sum(1 for _ in f) - 1)
            row = dict(binary=os.path.basename(b), processes=len(peers), scale=scale_f, wall=wall,
                       cpu=cpu, cores=cpu / wall, per_peer_s=cpu / (len(peers) * a.duration),
                       idle=idle[0] if idle else None, downloads=downloads,
                       seed=statistics.median(seed_r) if seed_r else None,
                       van=statistics.median(van_r) if van_r else None,
                       van_ok=(sum(1 for r in van_r if r >= 0.95), len(van_r)))
            rows.append(row)
            print("  %s: %.0f s wall, %.1f CPU s" % (tag, wall, cpu), flush=True)
    print()
    print("| binary | processes | S | wall s | CPU s | cores | CPU ms per simulated peer-second"
          " | machine idle | downloads | seeders at cap (median) | vanilla leechers (median, >= 0.95) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print("| %s | %d | %g | %.0f | %.1f | %.3f | %.2f | %s | %d | %s | %s, %d/%d |" % (
            r["binary"], r["processes"], r["scale"], r["wall"], r["cpu"], r["cores"],
            r["per_peer_s"] * 1000, "%.0f %%" % (r["idle"] * 100) if r["idle"] is not None else "-",
            r["downloads"], "%.3f" % r["seed"] if r["seed"] is not None else "-",
            "%.3f" % r["van"] if r["van"] is not None else "-", r["van_ok"][0], r["van_ok"][1]))
    print("cores = CPU s / wall s of the whole swarm (peers, tracker, tyrant-lab) on a %d-core"
          " machine; per simulated peer-second = CPU s / (processes x %g simulated s)"
          % (ncores, a.duration))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", nargs="?")
    ap.add_argument("--run", default="", help="only runs whose name contains this")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--min-busy", type=float, default=10.0, help="real seconds")
    ap.add_argument("--bill", metavar="OUT", help="run swarms into OUT and report their cost")
    ap.add_argument("--tyrant", help="--bill: client binaries, comma-separated [target/release]")
    ap.add_argument("--lab", help="--bill: tyrant-lab binary [target/release]")
    ap.add_argument("--sizes", default="30:1,30:4,30:8,300:1", help="--bill: PEERS:S,...")
    ap.add_argument("--duration", type=float, default=240, help="--bill: simulated s per swarm")
    ap.add_argument("--cap", default="100", help="--bill: the tyrant's cap, KiB/s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--plan-arg", action="append", default=[],
                    help="--bill: extra KEY=VALUE for tyrant-lab plan (repeatable)")
    ap.add_argument("--json", help="--bill: rows as JSON")
    a = ap.parse_args()
    if a.bill:
        return bill(a)
    if not a.dir:
        sys.exit("study: give a tyrant-lab run directory, or --bill OUT")
    mpath = os.path.join(a.dir, "manifest.txt")
    if not os.path.exists(mpath):
        sys.exit("study: %s is missing (not a `tyrant-lab run` directory?)" % mpath)
    scale, runs = manifest_peers(mpath)
    tol = a.tolerance
    all_seed, all_van = [], []
    print("time scale S = %g; ratio = achieved upload while unchoking / (cap x S)" % scale)
    print(
        "%-34s %9s %9s %7s %17s %19s"
        % ("run", "cpu idle", "min 5 s", "seeders", "seeder ratio min", "vanilla leechers ok")
    )
    for run, peers in sorted(runs.items()):
        if a.run not in run:
            continue
        rdir = os.path.join(a.dir, "runs", run)
        if not os.path.exists(os.path.join(rdir, "done")):
            continue
        seed_r, van_r = run_ratios(a.dir, run, peers, scale, a.min_busy)
        all_seed += seed_r
        all_van += van_r
        cpu = cpu_summary(rdir)
        ok = sum(1 for r in van_r if r >= 1 - tol)
        print(
            "%-34s %9s %9s %7d %17s %19s"
            % (
                run,
                "%.0f %%" % (cpu[0] * 100) if cpu else "-",
                "%.0f %%" % (cpu[1] * 100) if cpu else "-",
                len(seed_r),
                "%.3f" % min(seed_r) if seed_r else "-",
                "%d/%d" % (ok, len(van_r)),
            )
        )
    if not all_seed and not all_van:
        sys.exit("study: no finished run with stats in %s" % a.dir)

    def share(v):
        return sum(1 for r in v if abs(r - 1) <= tol or r > 1) / len(v) if v else float("nan")

    print()
    if all_seed:
        print(
            "seeders: %d processes, ratio median %.3f, min %.3f, within %.0f %% of cap: %.0f %%"
            % (
                len(all_seed),
                statistics.median(all_seed),
                min(all_seed),
                tol * 100,
                share(all_seed) * 100,
            )
        )
    if all_van:
        q = statistics.quantiles(all_van, n=10) if len(all_van) >= 2 else [all_van[0]] * 9
        print(
            "vanilla leechers: %d processes, ratio median %.3f, p10 %.3f, within %.0f %%: %.0f %%"
            % (len(all_van), statistics.median(all_van), q[0], tol * 100, share(all_van) * 100)
        )


if __name__ == "__main__":
    main()
