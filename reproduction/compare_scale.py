#!/usr/bin/env python3
"""compare_scale: do two harness runs of the same plan at different time scales give the
same download-time distributions? (issue 4 item 4)

    python3 reproduction/compare_scale.py DIR_A DIR_B [--variant V] [--seed 1]

Reads DIR/results.csv of both (nominal seconds, completed downloads only) and prints, per
population (the whole swarm of each variant; the focus peer), n, median, p10/p90 of each
side, the two-sample Kolmogorov-Smirnov statistic D with its asymptotic p-value, and the
ratio of medians A/B with a percentile-bootstrap 95 % CI (resampling downloads, seeded).
Matching distributions: p well above 0.05 and a CI containing 1. Python 3 stdlib only.
"""

import argparse
import csv
import math
import random
import statistics
import sys


def load(d):
    try:
        with open(d + "/results.csv") as f:
            return [r for r in csv.DictReader(f) if r["seconds"]]
    except OSError as e:
        sys.exit("compare_scale: %s" % e)


def ks(a, b):
    """Two-sample KS statistic and its asymptotic p-value (Smirnov, with the usual
    small-sample correction of the effective n)."""
    a, b = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(a) and j < len(b):
        x = min(a[i], b[j])
        while i < len(a) and a[i] <= x:
            i += 1
        while j < len(b) and b[j] <= x:
            j += 1
        d = max(d, abs(i / len(a) - j / len(b)))
    ne = len(a) * len(b) / (len(a) + len(b))
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
    p = 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return d, max(0.0, min(1.0, p))


def boot_ratio(a, b, rng, n=2000):
    rs = []
    for _ in range(n):
        ra = [a[rng.randrange(len(a))] for _ in a]
        rb = [b[rng.randrange(len(b))] for _ in b]
        rs.append(statistics.median(ra) / statistics.median(rb))
    rs.sort()
    return rs[int(0.025 * n)], rs[int(0.975 * n) - 1]


def q(v, p):
    return statistics.quantiles(v, n=10)[0 if p == 10 else 8] if len(v) >= 2 else v[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--variant", default="")
    ap.add_argument("--seed", type=int, default=1)
    o = ap.parse_args()
    ra, rb = load(o.a), load(o.b)
    sa = {r["time_scale"] for r in ra}
    sb = {r["time_scale"] for r in rb}
    print("A = %s (S = %s), B = %s (S = %s); nominal seconds" % (o.a, ",".join(sa), o.b, ",".join(sb)))
    rng = random.Random(o.seed)
    variants = sorted({r["variant"] for r in ra} & {r["variant"] for r in rb})
    print(
        "%-22s %-11s %5s %5s %8s %8s %13s %13s %6s %7s %7s %17s"
        % ("variant", "population", "n A", "n B", "med A", "med B", "p10-p90 A", "p10-p90 B",
           "KS D", "p", "A/B", "95% CI")
    )
    for v in variants:
        if o.variant and o.variant != v:
            continue
        for pop, keep in (("whole swarm", lambda r: True), ("focus peer", lambda r: r["focus"] == "1")):
            a = [float(r["seconds"]) for r in ra if r["variant"] == v and keep(r)]
            b = [float(r["seconds"]) for r in rb if r["variant"] == v and keep(r)]
            if len(a) < 2 or len(b) < 2:
                continue
            d, p = ks(a, b)
            lo, hi = boot_ratio(a, b, rng)
            print(
                "%-22s %-11s %5d %5d %8.1f %8.1f %13s %13s %6.3f %7.3f %7.3f %17s"
                % (v, pop, len(a), len(b), statistics.median(a), statistics.median(b),
                   "%.0f-%.0f" % (q(a, 10), q(a, 90)), "%.0f-%.0f" % (q(b, 10), q(b, 90)),
                   d, p, statistics.median(a) / statistics.median(b), "[%.3f, %.3f]" % (lo, hi))
            )


if __name__ == "__main__":
    main()
