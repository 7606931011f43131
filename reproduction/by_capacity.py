#!/usr/bin/env python3
"""by_capacity: who gains and who loses when a whole swarm changes strategy — each peer's
download time in the baseline swarm over its time in the strategy swarm, against its upload
cap (the paper's §5.2 question: is universal BitTyrant good for everyone?).

    python3 reproduction/by_capacity.py DIR [--baseline vanilla-in-vanilla]
                                            [--strategy tyrant-in-tyrant] [--bands 25,40]
                                            [--figure]

A peer is one leecher id in one repetition (same cap, start time and address in both
variants of the pair). Its ratio = median(baseline times) / median(strategy times) over its
completed downloads (> 1: faster under the strategy). Printed per capacity band: peers,
the median and geometric mean of their ratios, and a 95 % percentile-bootstrap interval of
the geometric mean that resamples repetitions (whole runs), never peers or downloads;
then Spearman's rank correlation of cap and ratio over all peers. --figure also writes
DIR/figures/by-capacity.{dat,gp} (one point per peer, log-log) and, when gnuplot is
installed, by-capacity.png and .svg. Python 3 stdlib only.
"""

import argparse
import csv
import math
import os
import random
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gnuplot  # noqa: E402

BODY = """set title "%s: per leecher, median download time\\n%s / %s"
set xlabel "upload cap, KiB/s"
set ylabel "ratio (> 1: faster under the strategy)"
set logscale xy
set grid
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2
plot "by-capacity.dat" using 1:2 with points pt 7 ps 0.6 notitle
"""


def figure(d, peers, baseline, strategy):
    fig = os.path.join(d, "figures")
    os.makedirs(fig, exist_ok=True)
    with open(os.path.join(fig, "by-capacity.dat"), "w") as f:
        f.write("# cap_kib ratio repetition (%s / %s per leecher)\n" % (baseline, strategy))
        for rep, up, ratio in peers:
            f.write("%g %.4f %s\n" % (up, ratio, rep))
    gp = os.path.join(fig, "by-capacity.gp")
    with open(gp, "w") as f:
        f.write(gnuplot.script("by-capacity", BODY % (os.path.basename(os.path.normpath(d)), baseline, strategy)))
    gnuplot.draw(gp)


def spearman(x, y):
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2.0 + 1
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = statistics.mean(rx), statistics.mean(ry)
    num = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    den = math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))
    return num / den if den else float("nan")


def peer_ratios(rows, baseline, strategy):
    """[(repetition, cap, ratio)]: each leecher's median download time under the baseline over
    its median under the strategy, for leechers that finished in both."""
    times = {}
    for r in rows:
        if r["seconds"] and r["variant"] in (baseline, strategy):
            key = (r["cap"], r["rep"], r["peer"])
            times.setdefault(key, {}).setdefault(r["variant"], []).append(float(r["seconds"]))
            times[key]["up"] = float(r["up"])
    peers = []
    for (cap, rep, _), t in sorted(times.items()):
        if baseline in t and strategy in t:
            ratio = statistics.median(t[baseline]) / statistics.median(t[strategy])
            peers.append(("%s/%s" % (cap, rep), t["up"], ratio))
    return peers


def geomean(xs):
    return math.exp(statistics.mean(math.log(x) for x in xs))


def bands(peers, edges, seed=1, resamples=2000, min_runs=5):
    """Per capacity band [lo, hi): (label, peers, median ratio, geomean, CI or None). The CI
    resamples repetitions (whole runs), never peers; none from fewer than min_runs runs."""
    reps = sorted({p[0] for p in peers})
    rng = random.Random(seed)
    out = []
    for lo, hi in zip([0.0] + edges, edges + [float("inf")]):
        inb = [p for p in peers if lo <= p[1] < hi]
        if not inb:
            continue
        draws = []
        for _ in range(resamples):
            pick = [rng.choice(reps) for _ in reps]
            ps = [p[2] for r in pick for p in inb if p[0] == r]
            if ps:
                draws.append(geomean(ps))
        draws.sort()
        ci = None
        if len(reps) >= min_runs:
            ci = (draws[int(0.025 * len(draws))], draws[int(0.975 * len(draws)) - 1])
        label = "%g-%s" % (lo, "" if hi == float("inf") else "%g" % hi)
        out.append((label, len(inb), statistics.median(p[2] for p in inb),
                    geomean(p[2] for p in inb), ci))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--baseline", default="vanilla-in-vanilla")
    ap.add_argument("--strategy", default="tyrant-in-tyrant")
    ap.add_argument("--bands", default="25,40", help="band edges in KiB/s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--figure", action="store_true", help="write DIR/figures/by-capacity.*")
    a = ap.parse_args()
    try:
        rows = list(csv.DictReader(open(a.dir + "/results.csv")))
    except OSError as e:
        sys.exit("by_capacity: %s" % e)
    peers = peer_ratios(rows, a.baseline, a.strategy)
    if not peers:
        sys.exit("by_capacity: no peer finished in both %s and %s" % (a.baseline, a.strategy))
    reps = {p[0] for p in peers}
    print("%s: %s / %s per peer, %d peers in %d repetitions" % (
        a.dir, a.baseline, a.strategy, len(peers), len(reps)))
    print("%-16s %6s %8s %8s  %s" % ("cap KiB/s", "peers", "median", "geomean", "95% CI (runs resampled)"))
    for label, n, med, gm, ci in bands(peers, [float(x) for x in a.bands.split(",")], a.seed):
        ci_s = "[%.3f, %.3f]" % ci if ci else "n/a: %d runs" % len(reps)
        print("%-16s %6d %8.3f %8.3f  %s" % (label, n, med, gm, ci_s))
    rho = spearman([p[1] for p in peers], [p[2] for p in peers])
    print("Spearman rank correlation of cap and ratio: %.2f (%d peers)" % (rho, len(peers)))
    if a.figure:
        figure(a.dir, peers, a.baseline, a.strategy)


if __name__ == "__main__":
    main()
