#!/usr/bin/env python3
"""cdf: download-time distributions per cap — for each comparison of an experiment
(comparisons.tsv: strategy, baseline, population) and each cap, the empirical CDF of the
compared peers' completed download times in the baseline and in the strategy variant,
pooled over the runs (the issue's "focus-peer download-time CDFs per cap as the paper draws
them"; the intervals stay with the run-level statistics in the tables).

    python3 reproduction/cdf.py DIR         writes DIR/figures/cdf-STRATEGY-POP-cCAP.{dat,gp}
                                            (+ .png and .svg when gnuplot is installed)

Populations follow tyrant-lab's rules (reproduction/tables.py population_rows). Whole-swarm
comparisons are left to `tyrant-lab report`, which draws them (figures/cdf-*-whole.png,
every cap in one plot). Unfinished downloads have no time and are left out; the title
gives each side's completed and unfinished counts. Python 3 stdlib only.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gnuplot  # noqa: E402
import tables  # noqa: E402

BODY = """set title "{title}"
set xlabel "download time, s"
set ylabel "fraction of downloads"
set yrange [0:1]
set grid
set key bottom right
plot "{stem}.dat" index 0 using 1:2 with steps lw 2 title "{base}", \\
     "{stem}.dat" index 1 using 1:2 with steps lw 2 title "{strat}"
"""


def ecdf(times):
    """[(t, fraction of times <= t)], one step per download, starting at (first t, 0)."""
    t = sorted(times)
    return [(t[0], 0.0)] + [(x, (i + 1) / len(t)) for i, x in enumerate(t)] if t else []


def series(rows, variant, cap):
    done = [float(r["seconds"]) for r in rows if r["variant"] == variant
            and float(r["cap"]) == cap and r["seconds"]]
    unfinished = sum(1 for r in rows if r["variant"] == variant and float(r["cap"]) == cap
                     and not r["seconds"])
    return done, unfinished


def slug(population):
    return population.replace(" peers", "").replace(" ", "-")


def figures(d):
    """Write every CDF figure of experiment directory d; returns the stems written."""
    name = os.path.basename(os.path.normpath(d))
    res = tables.read_csv(os.path.join(d, "results.csv"))
    fig = os.path.join(d, "figures")
    os.makedirs(fig, exist_ok=True)
    stems = []
    for c in tables.read_tsv(os.path.join(d, "comparisons.tsv")):
        if c["population"] == "whole swarm":
            continue
        cap = float(c["cap"])
        rows = tables.population_rows(res, c["strategy"], c["population"])
        (tb, ub), (ts, us) = series(rows, c["baseline"], cap), series(rows, c["strategy"], cap)
        if not tb or not ts:
            continue
        stem = "cdf-%s-%s-c%g" % (c["strategy"], slug(c["population"]), cap)
        with open(os.path.join(fig, stem + ".dat"), "w") as f:
            for variant, times in ((c["baseline"], tb), (c["strategy"], ts)):
                f.write("# %s: %s, cap %g, t fraction\n" % (variant, c["population"], cap))
                f.write("".join("%.3f %.5f\n" % p for p in ecdf(times)) + "\n\n")
        title = "%s: %s at %g KiB/s, %s runs\\n%s %d downloads (+%d unfinished),\\n%s %d (+%d)" % (
            name, c["population"], cap, c["runs"], c["baseline"], len(tb), ub, c["strategy"], len(ts), us)
        gp = os.path.join(fig, stem + ".gp")
        with open(gp, "w") as f:
            f.write(gnuplot.script(stem, BODY.format(stem=stem, title=title, base=c["baseline"],
                                                      strat=c["strategy"])))
        gnuplot.draw(gp)
        stems.append(stem)
    return stems


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        stems = figures(sys.argv[1])
    except OSError as e:
        sys.exit("cdf: %s" % e)
    print("cdf: %s/figures/: %s" % (sys.argv[1], ", ".join(stems) or "nothing to draw"))


if __name__ == "__main__":
    main()
