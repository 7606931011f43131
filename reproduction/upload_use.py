#!/usr/bin/env python3
"""upload_use: how much of its upload cap each leecher used, by time since its process
started — the per-second `tick` lines of every stats file of an experiment, summarised.

    python3 reproduction/upload_use.py DIR        writes DIR/upload-use.tsv

A closed-loop leecher is a new process for every download, so "time since start" is time
into a download. For every run, every leecher process (stats/p*.txt, seeders left out), each
phase — the first 30 s, 30–60 s, after 60 s — and each cap band of the process (< 25, 25–40,
>= 40 KiB/s, reproduction/tables.py's BANDS) and each kind of download — `first` (a
leecher's first process, p01.txt, which starts with the swarm, when pieces are scarce) or
`later` (a rejoin, p01.j1.txt, ...) — it averages up_rate ÷ the process's `up_kib` over the
ticks: one row per (run, phase, band, download) with the tick count, so that a run's phase
over all bands and downloads is the tick-weighted mean of its rows. The runs/ directories stay out of git (hundreds of MB); this file is
their committed summary, which reproduction/tables.py reads. Python 3 stdlib only.
"""

import glob
import os
import re
import sys

PHASES = [(0.0, 30.0, "0-30 s"), (30.0, 60.0, "30-60 s"), (60.0, float("inf"), "after 60 s")]
EDGES = [25.0, 40.0]  # KiB/s, as tables.py's BANDS


def band(cap):
    """The label of cap's band, as by_capacity.bands writes it: "0-25", "25-40", "40-"."""
    lo = max([0.0] + [e for e in EDGES if e <= cap])
    hi = min([e for e in EDGES if e > cap] or [float("inf")])
    return "%g-%s" % (lo, "" if hi == float("inf") else "%g" % hi)


def summarise(run_dir):
    """{(phase, band, download): [sum of up_rate / cap over ticks, ticks]}."""
    sums = {}
    for path in sorted(glob.glob(os.path.join(run_dir, "stats", "p*.txt"))):
        cap = None
        download = "later" if re.search(r"\.j\d+\.txt$", path) else "first"
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
                            acc = sums.setdefault((name, band(cap), download), [0.0, 0])
                            acc[0] += rate / 1024 / cap
                            acc[1] += 1
    return sums


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.split("\n\n")[1])
    d = sys.argv[1]
    runs = sorted(glob.glob(os.path.join(d, "runs", "*", "done")))
    if not runs:
        sys.exit("upload_use: no finished run in %s/runs" % d)
    variant = re.compile(r"^c[\d.]+-r(\d+)-(.+)$")
    lines = ["run\trep\tvariant\tphase\tband\tdownload\tticks\tuse"]
    order = {p[2]: i for i, p in enumerate(PHASES)}
    for done in runs:
        run_dir = os.path.dirname(done)
        name = os.path.basename(run_dir)
        m = variant.match(name)
        if not m:
            continue
        sums = summarise(run_dir)
        for key in sorted(sums, key=lambda k: (order[k[0]], float(k[1].split("-")[0]), k[2])):
            total, n = sums[key]
            lines.append("%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.6f" % ((name, m.group(1), m.group(2)) + key + (n, total / n)))
    with open(os.path.join(d, "upload-use.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("upload_use: %s/upload-use.tsv, %d runs" % (d, len(runs)))


if __name__ == "__main__":
    main()
