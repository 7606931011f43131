#!/usr/bin/env python3
"""focus_ticks: how many peers the focus peer held, unchoked and was unchoked by while it
downloaded: the per-second `tick` lines of its stats files, kept as exact histograms.

    python3 reproduction/focus_ticks.py DIR          writes DIR/focus-ticks.tsv from DIR/runs
    python3 reproduction/focus_ticks.py --print DIR  per variant, from the committed file:
                                                     ticks and the median of each count

A BitTyrant client caps each peer it unchokes at that peer's u_p, so how much of its cap it
can spend depends on how many peers it has left to unchoke: this file is what §1g's reading
of the sweep's high caps rests on. The focus peers are the manifest's `focus=true` peers.
Only ticks at t >= 30 s into a process and before it has every piece count: the first 30 s
are the start-up (no peers yet), and a finished leecher seeds. One row per (run, field,
value): `ticks` is how many such seconds the field had that value, so medians over runs or
over the pooled seconds are exact. Fields: `peers` (connected), `unchoked` (peers we
unchoke), `unchoking_us` (peers that unchoke us). The runs/ directories stay out of git;
this file is their committed summary. Python 3 stdlib only.
"""

import glob
import os
import re
import sys

FIELDS = ["peers", "unchoked", "unchoking_us"]
SKIP_S = 30.0
NAME = "focus-ticks.tsv"


def focus_peers(manifest):
    """{run name: [peer id]} for the manifest's focus peers."""
    out = {}
    with open(manifest) as f:
        for line in f:
            if not line.startswith("peer "):
                continue
            words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
            if words.get("focus") == "true":
                out.setdefault(words["run"], []).append(words["id"])
    return out


def histograms(run_dir, ids):
    """{field: {value: ticks}} over the downloading ticks of the given peers' stats files."""
    hist = {f: {} for f in FIELDS}
    for pid in ids:
        paths = glob.glob(os.path.join(run_dir, "stats", pid + ".txt"))
        paths += glob.glob(os.path.join(run_dir, "stats", pid + ".j*.txt"))
        for path in sorted(paths):
            with open(path) as f:
                for line in f:
                    if not line.startswith("tick "):
                        continue
                    w = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
                    try:
                        if float(w["t"]) < SKIP_S or int(w["have"]) >= int(w["pieces"]):
                            continue
                        values = [int(w[k]) for k in FIELDS]
                    except (KeyError, ValueError):
                        continue
                    for k, v in zip(FIELDS, values):
                        hist[k][v] = hist[k].get(v, 0) + 1
    return hist


def write(d):
    runs = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(d, "runs", "*", "done")))
    if not runs:
        sys.exit("focus_ticks: no finished run in %s/runs" % d)
    focus = focus_peers(os.path.join(d, "manifest.txt"))
    name_re = re.compile(r"^c[\d.]+-r(\d+)-(.+)$")
    lines = ["run\trep\tvariant\tfield\tvalue\tticks"]
    for run in runs:
        m = name_re.match(run)
        if not m or run not in focus:
            continue
        hist = histograms(os.path.join(d, "runs", run), focus[run])
        for k in FIELDS:
            for v in sorted(hist[k]):
                lines.append("%s\t%s\t%s\t%s\t%d\t%d" % (run, m.group(1), m.group(2), k, v, hist[k][v]))
    with open(os.path.join(d, NAME), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("focus_ticks: %s/%s, %d runs" % (d, NAME, len(runs)))


def median(hist):
    """The median of a {value: count} histogram (the lower middle value for an even total)."""
    total = sum(hist.values())
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if 2 * seen >= total:
            return v
    return None


def show(d):
    path = os.path.join(d, NAME)
    if not os.path.exists(path):
        sys.exit("focus_ticks: %s missing (run it on the experiment's runs/ first)" % path)
    pooled, per_run = {}, {}
    with open(path) as f:
        next(f)
        for line in f:
            run, _rep, variant, field, value, ticks = line.rstrip("\n").split("\t")
            h = pooled.setdefault((variant, field), {})
            h[int(value)] = h.get(int(value), 0) + int(ticks)
            r = per_run.setdefault((variant, field), {}).setdefault(run, {})
            r[int(value)] = r.get(int(value), 0) + int(ticks)
    print("%s: the focus peer's seconds while downloading (t >= %g s)" % (d, SKIP_S))
    print("variant\tfield\truns\tticks\tmedian (pooled seconds)\tper-run medians min-max")
    for (variant, field) in sorted(pooled):
        runs = per_run[(variant, field)]
        meds = [median(h) for h in runs.values()]
        print("%s\t%s\t%d\t%d\t%d\t%d-%d" % (variant, field, len(runs), sum(pooled[(variant, field)].values()),
                                          median(pooled[(variant, field)]), min(meds), max(meds)))


def main():
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--print":
        show(args[1])
    elif len(args) == 1 and not args[0].startswith("-"):
        write(args[0])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
