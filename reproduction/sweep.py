#!/usr/bin/env python3
"""sweep: one BitTyrant client's speed-up against its upload capacity (the BitTyrant paper's
per-capacity question), drawn from the per-cap experiments PREFIX-give-cCAP and PREFIX-keep-cCAP
of reproduction/experiments.txt: per cap and arm, the geometric mean over runs of the
per-run ratio median(vanilla focus) / median(tyrant focus) with its 95 % run-bootstrap
interval, as tyrant-lab report wrote them into comparisons.tsv (> 1: the tyrant is faster).

    python3 reproduction/sweep.py [PREFIX ...]   writes reproduction/figures/sweep-PREFIX.{dat,gp}
                                                 (+ .png and .svg when gnuplot is installed);
                                                 no PREFIX: every sweep of experiments.txt

Caps not run yet are left out; the table beside the figure (tables.py `sweep:PREFIX`) says
which. Python 3 stdlib only.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gnuplot  # noqa: E402
import tables  # noqa: E402

BODY = """set title "{title}"
set xlabel "focus peer's upload cap, KiB/s"
set ylabel "median vanilla / median tyrant download time"
set logscale x
set xrange [{xlo}:{xhi}]
set grid
set key top right
set arrow from {xlo},1 to {xhi},1 nohead dt 2
plot {plots}
"""


def points(exps, prefix):
    """{arm: [(cap, value, lo, hi, runs)]} of the sweep's finished per-cap experiments
    (those with an interval: at least tables.MIN_RUNS runs)."""
    out = {}
    for p in tables.sweep_points(exps, prefix):
        c = p["row"]
        if not c or c["lo"] == "-":
            continue
        out.setdefault(p["arm"], []).append(
            (p["cap"], float(c["value"]), float(c["lo"]), float(c["hi"]), int(c["runs"])))
    return {a: sorted(v) for a, v in out.items()}


def draw(prefix, pts, fig):
    """Write fig/sweep-PREFIX.dat and .gp (and run gnuplot); returns the stem or None."""
    if not pts:
        return None
    os.makedirs(fig, exist_ok=True)
    stem = "sweep-" + prefix
    arms = [a for a in tables.SWEEP_ARMS if a in pts]
    with open(os.path.join(fig, stem + ".dat"), "w") as f:
        for a in arms:
            f.write("# %s-%s: cap ratio lo hi runs\n" % (prefix, a))
            f.write("".join("%g %.4f %.4f %.4f %d\n" % p for p in pts[a]) + "\n\n")
    caps = [p[0] for a in arms for p in pts[a]]
    # The two arms are drawn slightly apart so that their error bars do not overlap.
    plots = ", \\\n     ".join(
        '"%s.dat" index %d using ($1*%g):2:3:4 with yerrorlines lw 2 title "%s excess"'
        % (stem, i, 1 + 0.04 * (i - (len(arms) - 1) / 2), a) for i, a in enumerate(arms))
    title = "%s: one tyrant vs vanilla in its place,\\n95 %% CI over runs (%s)" % (
        prefix, ", ".join("%s %d caps" % (a, len(pts[a])) for a in arms))
    gp = os.path.join(fig, stem + ".gp")
    with open(gp, "w") as f:
        f.write(gnuplot.script(stem, BODY.format(title=title, plots=plots, xlo="%g" % (min(caps) / 1.5),
                                                  xhi="%g" % (max(caps) * 1.5))))
    gnuplot.draw(gp)
    return stem


def main():
    if any(a.startswith("-") for a in sys.argv[1:]):
        sys.exit(__doc__.split("\n\n")[1])
    fig = os.path.join(tables.ROOT, "reproduction", "figures")
    exps = tables.experiments()
    for prefix in sys.argv[1:] or tables.sweep_prefixes(exps):
        try:
            stem = draw(prefix, points(exps, prefix), fig)
        except OSError as e:
            sys.exit("sweep: %s" % e)
        print("sweep: %s" % (os.path.join(fig, stem) + ".*" if stem else "no finished cap of " + prefix))


if __name__ == "__main__":
    main()
