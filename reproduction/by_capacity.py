#!/usr/bin/env python3
"""by_capacity: who gains and who loses when a whole swarm changes strategy — each peer's
download time in the baseline swarm over its time in the strategy swarm, against its upload
cap (the paper's §5.2 question: is universal BitTyrant good for everyone?).

    python3 reproduction/by_capacity.py DIR [--baseline vanilla-in-vanilla]
                                            [--strategy tyrant-in-tyrant] [--bands 25,40]

A peer is one leecher id in one repetition (same cap, start time and address in both
variants of the pair). Its ratio = median(baseline times) / median(strategy times) over its
completed downloads (> 1: faster under the strategy). Printed per capacity band: peers,
the median and geometric mean of their ratios, and a 95 % percentile-bootstrap interval of
the geometric mean that resamples repetitions (whole runs), never peers or downloads;
then Spearman's rank correlation of cap and ratio over all peers. Python 3 stdlib only.
"""

import argparse
import csv
import math
import random
import statistics
import sys


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--baseline", default="vanilla-in-vanilla")
    ap.add_argument("--strategy", default="tyrant-in-tyrant")
    ap.add_argument("--bands", default="25,40", help="band edges in KiB/s")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    try:
        rows = list(csv.DictReader(open(a.dir + "/results.csv")))
    except OSError as e:
        sys.exit("by_capacity: %s" % e)
    times = {}
    for r in rows:
        if r["seconds"] and r["variant"] in (a.baseline, a.strategy):
            key = (r["cap"], r["rep"], r["peer"])
            times.setdefault(key, {}).setdefault(r["variant"], []).append(float(r["seconds"]))
            times[key]["up"] = float(r["up"])
    peers = []  # (rep, up, ratio)
    for (cap, rep, _), t in times.items():
        if a.baseline in t and a.strategy in t:
            ratio = statistics.median(t[a.baseline]) / statistics.median(t[a.strategy])
            peers.append(("%s/%s" % (cap, rep), t["up"], ratio))
    if not peers:
        sys.exit("by_capacity: no peer finished in both %s and %s" % (a.baseline, a.strategy))
    edges = [float(x) for x in a.bands.split(",")]
    bands = [(lo, hi) for lo, hi in zip([0.0] + edges, edges + [float("inf")])]
    reps = sorted({p[0] for p in peers})
    rng = random.Random(a.seed)
    print("%s: %s / %s per peer, %d peers in %d repetitions" % (
        a.dir, a.baseline, a.strategy, len(peers), len(reps)))
    print("%-16s %6s %8s %8s  %s" % ("cap KiB/s", "peers", "median", "geomean", "95% CI (runs resampled)"))
    for lo, hi in bands:
        inb = [p for p in peers if lo <= p[1] < hi]
        if not inb:
            continue
        gm = lambda ps: math.exp(statistics.mean(math.log(p[2]) for p in ps))
        draws = []
        for _ in range(2000):
            pick = [rng.choice(reps) for _ in reps]
            ps = [p for r in pick for p in inb if p[0] == r]
            if ps:
                draws.append(gm(ps))
        draws.sort()
        ci = "[%.3f, %.3f]" % (draws[int(0.025 * len(draws))], draws[int(0.975 * len(draws)) - 1])
        if len(reps) < 5:
            ci = "n/a: %d runs" % len(reps)
        label = "%g-%s" % (lo, "" if hi == float("inf") else "%g" % hi)
        print("%-16s %6d %8.3f %8.3f  %s" % (label, len(inb), statistics.median(p[2] for p in inb), gm(inb), ci))
    rho = spearman([p[1] for p in peers], [p[2] for p in peers])
    print("Spearman rank correlation of cap and ratio: %.2f (%d peers)" % (rho, len(peers)))


if __name__ == "__main__":
    main()
