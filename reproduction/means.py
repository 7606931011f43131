#!/usr/bin/env python3
"""means: the ratio of MEAN download times between two variants of one experiment, for
claims about average performance (the paper's "universal tyranny hurts average per-swarm
performance"); `tyrant-lab report` gives medians.

    python3 reproduction/means.py DIR BASELINE STRATEGY [--focus] [--seed 1]

Population: every completed download of the variant (the whole swarm), or only the focus
peer's with --focus; with --per-peer each peer's mean download time counts once. Ratio = mean(baseline) / mean(strategy) (> 1: strategy faster), with a
two-stage percentile bootstrap like the report's (pairing groups with replacement, then
downloads within each group and side; 2000 resamples, seeded). Python 3 stdlib only.
"""

import argparse
import csv
import random
import statistics
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("baseline")
    ap.add_argument("strategy")
    ap.add_argument("--focus", action="store_true")
    ap.add_argument(
        "--per-peer",
        action="store_true",
        help="first average each peer's downloads within its run, so every peer counts once "
        "(closed-loop fast peers otherwise weigh more: they download more often)",
    )
    ap.add_argument("--seed", type=int, default=1)
    o = ap.parse_args()
    try:
        rows = [r for r in csv.DictReader(open(o.dir + "/results.csv")) if r["seconds"]]
    except OSError as e:
        sys.exit("means: %s" % e)
    if o.focus:
        rows = [r for r in rows if r["focus"] == "1"]
    groups = {}
    per = {}
    for r in rows:
        side = 0 if r["variant"] == o.baseline else 1 if r["variant"] == o.strategy else None
        if side is None:
            continue
        if o.per_peer:
            per.setdefault((r["group"], side, r["peer"]), []).append(float(r["seconds"]))
        else:
            groups.setdefault(r["group"], ([], []))[side].append(float(r["seconds"]))
    for (g, side, _), v in sorted(per.items()):
        groups.setdefault(g, ([], []))[side].append(statistics.mean(v))
    groups = [g for g in groups.values() if g[0] and g[1]]
    if not groups:
        sys.exit("means: no group has both %s and %s" % (o.baseline, o.strategy))
    base = [x for g in groups for x in g[0]]
    strat = [x for g in groups for x in g[1]]
    rng = random.Random(o.seed)
    draws = []
    for _ in range(2000):
        b, s = [], []
        for _ in groups:
            g = groups[rng.randrange(len(groups))]
            b += [g[0][rng.randrange(len(g[0]))] for _ in g[0]]
            s += [g[1][rng.randrange(len(g[1]))] for _ in g[1]]
        draws.append(statistics.mean(b) / statistics.mean(s))
    draws.sort()
    print(
        "%s: mean %s %.1f s (n %d) / mean %s %.1f s (n %d) = %.3f, 95%% CI [%.3f, %.3f], %d groups"
        % (o.dir, o.baseline, statistics.mean(base), len(base), o.strategy,
           statistics.mean(strat), len(strat), statistics.mean(base) / statistics.mean(strat),
           draws[50], draws[1949], len(groups))
    )


if __name__ == "__main__":
    main()
