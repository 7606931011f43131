#!/usr/bin/env python3
"""upload_use: how much of its upload cap each leecher used, by time since its process
started — the per-second `tick` lines of every stats file of an experiment, summarised.

    python3 reproduction/upload_use.py DIR        writes DIR/upload-use.tsv

A closed-loop leecher is a new process for every download, so "time since start" is time
into a download. For every run, every leecher process (stats/p*.txt, seeders left out) and
each phase — the first 30 s, 30–60 s, after 60 s — it averages up_rate ÷ the process's
`up_kib` over its ticks, then over the run's processes' ticks: one row per (run, phase)
with the tick count. The runs/ directories stay out of git (hundreds of MB); this file is
their committed summary, which reproduction/tables.py reads. Python 3 stdlib only.
"""

import glob
import os
import re
import sys

PHASES = [(0.0, 30.0, "0-30 s"), (30.0, 60.0, "30-60 s"), (60.0, float("inf"), "after 60 s")]


def summarise(run_dir):
    sums = {p[2]: [0.0, 0] for p in PHASES}
    for path in sorted(glob.glob(os.path.join(run_dir, "stats", "p*.txt"))):
        cap = None
        with open(path) as f:
            for line in f:
                if line.startswith("start "):
                    m = re.search(r" up_kib=(\S+)", line)
                    cap = float(m.group(1)) if m else None
                elif line.startswith("tick ") and cap:
                    words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
                    try:
                        t, rate = float(words["t"]), float(words["up_rate"])
                    except (KeyError, ValueError):
                        continue
                    for lo, hi, name in PHASES:
                        if lo <= t < hi:
                            sums[name][0] += rate / 1024 / cap
                            sums[name][1] += 1
    return sums


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    d = sys.argv[1]
    runs = sorted(glob.glob(os.path.join(d, "runs", "*", "done")))
    if not runs:
        sys.exit("upload_use: no finished run in %s/runs" % d)
    variant = re.compile(r"^c[\d.]+-r(\d+)-(.+)$")
    lines = ["run\trep\tvariant\tphase\tticks\tuse"]
    for done in runs:
        run_dir = os.path.dirname(done)
        name = os.path.basename(run_dir)
        m = variant.match(name)
        if not m:
            continue
        for phase, (total, n) in summarise(run_dir).items():
            if n:
                lines.append("%s\t%s\t%s\t%s\t%d\t%.4f" % (name, m.group(1), m.group(2), phase, n, total / n))
    with open(os.path.join(d, "upload-use.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("upload_use: %s/upload-use.tsv, %d runs" % (d, len(runs)))


if __name__ == "__main__":
    main()
