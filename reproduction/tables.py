#!/usr/bin/env python3
"""tables: REPRODUCTION.md's tables, built from the committed data, never typed by hand.

    python3 reproduction/tables.py [--write | --check] [--doc REPRODUCTION.md]

For every experiment of reproduction/experiments.txt whose data is in
reproduction/data/NAME/ (comparisons.tsv from `tyrant-lab report`, results.csv, manifest.txt)
it renders markdown and puts each block between the markers

    <!-- tables.py: BLOCK -->   ...   <!-- /tables.py -->

in the document: BLOCK `summary` (one row per experiment, paper's claim beside ours) and
`runs:NAME` (per comparison, each run's medians and ratio, so the spread behind a CI is in view),
`swarm:NAME` for whole-swarm (`all`) experiments (throughput, mean and slow tail per run,
gain per capacity band), `use:NAME` (upload used against the caps by time into a download,
from upload-use.tsv), `aa:A:B` (two identical baselines compared run by run), `sweep:PREFIX`
(the per-cap experiments PREFIX-give-cCAP and PREFIX-keep-cCAP side by side, cap by cap),
`peers:PREFIX` (the same sweep's focus peer: upload per download, peers it unchokes and
that unchoke it, from results.csv and focus-ticks.tsv; exploratory).
Without a flag it prints the blocks; --write replaces them in the document; --check exits
1 (naming the block) when the document's numbers differ from the data, or when a `geomean`
of comparisons.tsv differs from the same statistic recomputed here. Python 3 stdlib only.
"""

import argparse
import csv
import math
import os
import random
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "reproduction", "data")
sys.dont_write_bytecode = True  # importing by_capacity must not litter reproduction/
sys.path.insert(0, os.path.join(ROOT, "reproduction"))
import by_capacity  # noqa: E402
import focus_ticks as ft  # noqa: E402



def experiments():
    out = []
    with open(os.path.join(ROOT, "reproduction", "experiments.txt")) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, jobs, words, paper = [w.strip() for w in line.split("|", 3)]
            out.append({"name": name, "jobs": jobs, "words": words, "paper": paper})
    return out


def read_tsv(path):
    with open(path) as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def fnum(x, digits=2):
    try:
        return "%.*f" % (digits, float(x))
    except ValueError:
        return x


def ci_cell(value, lo, hi):
    """`value [lo, hi]`, the value in bold only when the interval excludes 1 (bold is
    read as "a difference": a point estimate whose interval holds 1 is not one)."""
    v, lo, hi = float(value), float(lo), float(hi)
    fmt = "**%.3f** [%.3f, %.3f]" if lo > 1 or hi < 1 else "%.3f [%.3f, %.3f]"
    return fmt % (v, lo, hi)


def summary(exps):
    head = ("| experiment | claim compared with | population | cap KiB/s | statistic | ours [95 % CI] "
            "| repetitions (paired) | downloads base / strat (unfinished) | client build | CPU idle per run: median (lowest) |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for e in exps:
        d = os.path.join(DATA, e["name"])
        tsv = os.path.join(d, "comparisons.tsv")
        if not os.path.exists(tsv):
            continue
        res = read_csv(os.path.join(d, "results.csv"))
        builds = sorted({r.get("build") or "unknown" for r in res})
        idle = {}
        for r in res:
            if r.get("idle"):
                idle[r["run"]] = float(r["idle"])
        idle_s = ("%.0f %% (lowest %.0f %%)" % (100 * statistics.median(idle.values()),
                                               100 * min(idle.values()))
                  if idle else "not recorded")
        for i, c in enumerate(read_tsv(tsv)):
            if c["lo"] == "-":
                ci = "%s (no CI: %s runs)" % (fnum(c["value"], 3), c["runs"])
            else:
                ci = ci_cell(c["value"], c["lo"], c["hi"])
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s (%s / %s) | %s | %s |" % (
                e["name"] if i == 0 else "〃", e["paper"] if i == 0 else "〃",
                "%s vs %s, %s" % (c["strategy"], c["baseline"], c["population"]),
                c["cap"], c["statistic"], ci, c["runs"], c["n_base"], c["n_strat"],
                c["unfin_base"], c["unfin_strat"], ", ".join(builds), idle_s))
    return head + "\n".join(rows) + "\n"


def comparisons(name):
    """The distinct comparisons of comparisons.tsv (strategy, baseline, population), in order."""
    out = []
    for c in read_tsv(os.path.join(DATA, name, "comparisons.tsv")):
        k = (c["strategy"], c["baseline"], c["population"])
        if k not in out:
            out.append(k)
    return out


def population_rows(res, strategy, population):
    """The rows a comparison's population takes (tyrant-lab's study/compare.rs rules): the
    focus peer, every leecher, or the peer ids that run strategy X in the strategy variant
    (the same ids in the baseline, so caps and start times match)."""
    if population == "focus peer":
        return [r for r in res if r["focus"] == "1"]
    if population == "whole swarm":
        return list(res)
    x = population[:-len(" peers")]
    ids = {r["peer"] for r in res if r["variant"] == strategy and r["strategy"] == x}
    return [r for r in res if r["peer"] in ids]


def per_run(name):
    """Per comparison, each pairing group's downloads of the compared population: n and
    median per side, and their ratio (the per-run values behind a `geomean` row)."""
    d = os.path.join(DATA, name)
    res = read_csv(os.path.join(d, "results.csv"))
    comps = comparisons(name)
    out = ""
    for strategy, base, population in comps:
        if len(comps) > 1:
            out += "%s*%s vs %s, %s:*\n\n" % ("\n" if out else "", strategy, base, population)
        out += per_run_table(population_rows(res, strategy, population), base, strategy)
    return out


def per_run_geomeans(rows, base, strat):
    """{cap: geometric mean over pairing groups of median(base) / median(strat)}."""
    return {cap: math.exp(sum(l) / len(l)) for cap, l in per_run_logs(rows, base, strat).items()}


def per_run_logs(rows, base, strat):
    logs = {}
    for (cap, _), (b, s) in sorted(per_group(rows, base, strat).items()):
        if b and s:
            logs.setdefault(cap, []).append(math.log(statistics.median(b) / statistics.median(s)))
    return logs


def per_group(rows, base, strat):
    groups = {}
    for r in rows:
        if r["variant"] in (base, strat):
            g = groups.setdefault((float(r["cap"]), int(r["rep"])), ([], []))
            if r["seconds"]:
                g[r["variant"] == strat].append(float(r["seconds"]))
    return groups


def per_run_table(rows, base, strat):
    out = ("| cap | run | %s: n, median s | %s: n, median s | ratio | rounds (baseline median / 10 s) |\n"
           "|---|---|---|---|---|---|\n" % (base, strat))
    for (cap, rep), (b, s) in sorted(per_group(rows, base, strat).items()):
        mb = statistics.median(b) if b else None
        ms = statistics.median(s) if s else None
        out += "| %g | %d | %d, %s | %d, %s | %s | %s |\n" % (
            cap, rep, len(b), "%.1f" % mb if mb else "-", len(s), "%.1f" % ms if ms else "-",
            "%.3f" % (mb / ms) if mb and ms else "-", "%.1f" % (mb / 10) if mb else "-")
    for cap, l in sorted(per_run_logs(rows, base, strat).items()):
        # four digits, as comparisons.tsv holds it: the summary rounds those four digits again
        # (0.4025 -> 0.403), so at three digits here the same geomean read 0.402
        out += "| %g | geometric mean of %d runs | | | %.4f | |\n" % (cap, len(l), math.exp(sum(l) / len(l)))
    return out


# Pairs of experiments whose baseline runs are the same plan (same seed and options but for
# the focus tyrant's flags): their baselines, compared run by run, show how far two
# identical configurations differ by chance (an A/A comparison).
AA = [("long-new", "long-kept", "vanilla-in-vanilla"),
      ("all30-give", "all30-keep", "vanilla-in-vanilla"),
      ("all30-give", "all30-give-noshape", "vanilla-in-vanilla"),
      ("realswarm", "realswarm-keep", "vanilla-in-vanilla")]


def aa_logs(a, b, variant):
    """(ma, mb, reps, logs): per repetition the focus peer's median download time in
    `variant` of experiments a and b, the repetitions both have, and log(ma / mb) of each."""
    def medians(name):
        res = read_csv(os.path.join(DATA, name, "results.csv"))
        by = {}
        for r in res:
            if r["focus"] == "1" and r["variant"] == variant and r["seconds"]:
                by.setdefault(int(r["rep"]), []).append(float(r["seconds"]))
        return {k: statistics.median(v) for k, v in by.items()}

    ma, mb = medians(a), medians(b)
    reps = sorted(set(ma) & set(mb))
    return ma, mb, reps, [math.log(ma[r] / mb[r]) for r in reps]


def aa(a, b, variant):
    ma, mb, reps, logs = aa_logs(a, b, variant)
    gm, ci = run_boot(logs, lambda ls: math.exp(statistics.mean(ls)))
    out = ("| run | %s, %s: median s | %s, %s: median s | ratio |\n|---|---|---|---|\n"
           % (a, variant, b, variant))
    for r, l in zip(reps, logs):
        out += "| %d | %.1f | %.1f | %.3f |\n" % (r, ma[r], mb[r], math.exp(l))
    out += "| geometric mean of %d runs [95 %% CI, runs resampled] | | | %s |\n" % (
        len(reps), "%.3f [%.3f, %.3f]" % ((gm,) + ci) if ci else "%.3f (no CI)" % gm)
    return out


def manifest_info(name):
    """(file size in bytes, {run name: nominal duration s}) from an experiment's manifest."""
    size, durations = None, {}
    with open(os.path.join(DATA, name, "manifest.txt")) as f:
        for line in f:
            words = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
            if line.startswith("torrent "):
                size = int(words["size"])
            elif line.startswith("run "):
                durations[words["name"]] = float(words["duration"])
    return size, durations


def run_boot(pairs, stat, seed=1):
    """stat over the per-run values, and its 95 % percentile-bootstrap interval resampling
    runs (None from fewer than MIN_RUNS runs, as tyrant-lab report does)."""
    rng = random.Random(seed)
    draws = sorted(stat([rng.choice(pairs) for _ in pairs]) for _ in range(2000))
    ci = (draws[50], draws[1949]) if len(pairs) >= MIN_RUNS else None
    return stat(pairs), ci


MIN_RUNS = 5
BANDS = [25.0, 40.0]  # KiB/s: the audit's split of the 2026-11-22 all-tyrant runs


def swarm(name):
    """A whole-swarm experiment (`all` preset: every leecher switches strategy): per run,
    the swarm's throughput (completed bytes / run length), its mean and 90th-percentile
    download time, and how much of their upload caps the leechers used (bytes uploaded in
    all their sessions, finished or not / (sum of caps × run length)); then per capacity
    band each leecher's own gain (reproduction/by_capacity.py).
    Ratios are baseline/strategy for times and strategy/baseline for throughput, so > 1
    always means the strategy swarm did better."""
    res = read_csv(os.path.join(DATA, name, "results.csv"))
    size, durations = manifest_info(name)
    base, strat = "vanilla-in-vanilla", None
    runs = {}
    for r in res:
        if r["variant"] != base:
            strat = r["variant"]
        g = runs.setdefault(int(r["rep"]), {}).setdefault(
            r["variant"], {"t": [], "unf": 0, "run": r["run"], "up": 0.0, "caps": {}})
        g["up"] += float(r["bytes_up"] or 0)
        g["caps"][r["peer"]] = float(r["up"])
        if r["seconds"]:
            g["t"].append(float(r["seconds"]))
        else:
            g["unf"] += 1

    def p90(t):
        t = sorted(t)
        return t[min(len(t) - 1, int(math.ceil(0.9 * len(t))) - 1)]

    out = ("| run | downloads %s / %s (unfinished) | throughput MiB/s | mean s | 90th percentile s "
           "| upload used / caps |\n|---|---|---|---|---|---|\n" % (base, strat))
    pairs = []
    for rep, g in sorted(runs.items()):
        if base not in g or strat not in g:
            continue
        b, s = g[base], g[strat]
        tb = len(b["t"]) * size / durations[b["run"]] / 2**20
        ts = len(s["t"]) * size / durations[s["run"]] / 2**20
        ub, us = [g["up"] / 1024 / durations[g["run"]] / sum(g["caps"].values()) for g in (b, s)]
        pairs.append((ts / tb, statistics.mean(b["t"]) / statistics.mean(s["t"]),
                      p90(b["t"]) / p90(s["t"]), us / ub))
        out += "| %d | %d / %d (%d / %d) | %.3f / %.3f | %.1f / %.1f | %.1f / %.1f | %.3f / %.3f |\n" % (
            rep, len(b["t"]), len(s["t"]), b["unf"], s["unf"], tb, ts, statistics.mean(b["t"]),
            statistics.mean(s["t"]), p90(b["t"]), p90(s["t"]), ub, us)
    if not pairs:
        return out
    cells = []
    for i in range(4):
        v, ci = run_boot(pairs, lambda ps, i=i: math.exp(statistics.mean(math.log(p[i]) for p in ps)))
        cells.append("%.3f [%.3f, %.3f]" % ((v,) + ci) if ci else "%.3f (no CI: %d runs)" % (v, len(pairs)))
    out += ("| geometric mean of %d per-run ratios (> 1: %s better; last column: %s uses more) "
            "[95 %% CI, runs resampled] | | %s | %s | %s | %s |\n" % ((len(pairs), strat, strat) + tuple(cells)))
    out += ("\nIn the last row the `mean s` column is the geometric mean of per-run ratios of mean "
            "times; the headline `mean` of the summary pools each arm's downloads over all runs, "
            "so the two differ a little.\n")
    out += ("\n| cap band KiB/s | leechers | median of per-leecher ratios | geometric mean [95 % CI, runs resampled] |\n"
            "|---|---|---|---|\n")
    peers = by_capacity.peer_ratios(res, base, strat)
    if not peers:
        return out
    for label, n, med, gm, ci in by_capacity.bands(peers, BANDS, min_runs=MIN_RUNS):
        out += "| %s | %d | %.3f | %s |\n" % (
            label, n, med, "%.3f [%.3f, %.3f]" % ((gm,) + ci) if ci else "%.3f (no CI: %d runs)" % (gm, len(runs)))
    rho = by_capacity.spearman([p[1] for p in peers], [p[2] for p in peers])
    out += "| Spearman rank correlation of cap and ratio | %d | %.2f | |\n" % (len(peers), rho)
    return out


def upload_use(name):
    """reproduction/upload_use.py's summary: each variant's use of its upload caps by time
    into a download (a closed-loop leecher's process starts with each download), then after
    the first minute by cap band. A run's value is over all its leechers' ticks (the
    tick-weighted mean of its rows); the tables give the mean over runs and the range."""
    rows = read_tsv(os.path.join(DATA, name, "upload-use.tsv"))
    variants = sorted({r["variant"] for r in rows}, key=lambda v: (not v.startswith("vanilla-in-"), v))
    phases, bands = [], []
    for r in rows:
        if r["phase"] not in phases:
            phases.append(r["phase"])
        if r["band"] not in bands:
            bands.append(r["band"])
    bands.sort(key=lambda b: float(b.split("-")[0]))

    def per_run(keep):
        """{variant: [(use, ticks) per run]} over the rows keep() takes."""
        runs = {}
        for r in rows:
            if keep(r):
                acc = runs.setdefault(r["variant"], {}).setdefault(r["run"], [0.0, 0])
                acc[0] += float(r["use"]) * int(r["ticks"])
                acc[1] += int(r["ticks"])
        return {v: [(u / n, n) for u, n in rr.values()] for v, rr in runs.items()}

    def cell(runs, total=None):
        if not runs:
            return "-"
        use = [u for u, _ in runs]
        c = "%.3f (%.3f, %.3f)" % (statistics.mean(use), min(use), max(use))
        if total:
            c += ", %.0f %%" % (100.0 * sum(n for _, n in runs) / total)
        return c

    totals = {v: sum(n for _, n in rr) for v, rr in per_run(lambda r: True).items()}
    out = ("| time into the download | %s |\n|---|%s\n" % (
        " | ".join("%s: mean use over runs (lowest, highest), share of leecher-seconds" % v for v in variants),
        "---|" * len(variants)))
    for ph in phases:
        by = per_run(lambda r: r["phase"] == ph)
        out += "| %s | %s |\n" % (ph, " | ".join(cell(by.get(v), totals[v]) for v in variants))
    late = phases[-1]
    out += ("\n| %s, by cap band KiB/s and by download (first: the leecher's first, from the "
            "swarm's start; later: a rejoin) | %s |\n|---|%s\n" % (
                late, " | ".join("%s: mean use over runs (lowest, highest)" % v for v in variants),
                "---|" * len(variants)))
    for b in bands:
        by = per_run(lambda r: r["phase"] == late and r["band"] == b)
        out += "| %s | %s |\n" % (b, " | ".join(cell(by.get(v)) for v in variants))
    for d in ("first", "later"):
        by = per_run(lambda r: r["phase"] == late and r["download"] == d)
        out += "| %s | %s |\n" % (d, " | ".join(cell(by.get(v)) for v in variants))
    return out


SWEEP_ARMS = ("give", "keep")


def sweep_prefixes(exps):
    """The sweeps of the experiment list: PREFIX of every PREFIX-ARM-cCAP name."""
    pat = re.compile(r"^(.+)-(?:%s)-c[\d.]+$" % "|".join(SWEEP_ARMS))
    return sorted({m.group(1) for m in (pat.match(e["name"]) for e in exps) if m})


def sweep_points(exps, prefix):
    """The per-cap experiments PREFIX-ARM-cCAP of a sweep (experiments.txt order), each with
    its comparisons.tsv row (tyrant-lab's statistic and interval) or None if not run yet."""
    pat = re.compile(r"^%s-(%s)-c([\d.]+)$" % (re.escape(prefix), "|".join(SWEEP_ARMS)))
    out = []
    for e in exps:
        m = pat.match(e["name"])
        if not m:
            continue
        tsv = os.path.join(DATA, e["name"], "comparisons.tsv")
        rows = read_tsv(tsv) if os.path.exists(tsv) else []
        row = rows[0] if rows else None  # a `single` preset at one cap: one comparison
        out.append({"name": e["name"], "arm": m.group(1), "cap": float(m.group(2)), "row": row})
    return out


def sweep(exps, prefix):
    """One row per cap: each arm's ratio [CI], runs and downloads; the rounds a baseline
    download of the focus peer took (median / 10 s); and, where both arms ran, the A/A
    ratio of their baselines (one plan run twice: how far chance alone moves a ratio)."""
    points = sweep_points(exps, prefix)
    arms = [a for a in SWEEP_ARMS if any(p["arm"] == a for p in points)]
    out = ("| cap KiB/s | %s | A/A: %s baselines, focus peer [95 %% CI] |\n|---|%s---|\n" % (
        " | ".join("%s: ratio [95 %% CI], runs, downloads base / strat (unfinished), baseline rounds" % a
                   for a in arms), " / ".join(arms), "---|" * len(arms)))
    for cap in sorted({p["cap"] for p in points}):
        run = [p["name"] for a in arms for p in points if p["cap"] == cap and p["arm"] == a and p["row"]]
        logs = aa_logs(run[0], run[1], "vanilla-in-vanilla")[3] if len(run) == 2 else []
        if logs:
            gm, ci = run_boot(logs, lambda ls: math.exp(statistics.mean(ls)))
            a_cell = "%.3f [%.3f, %.3f]" % ((gm,) + ci) if ci else "%.3f (no CI)" % gm
        else:
            a_cell = "-"
        cells = []
        for a in arms:
            p = [p for p in points if p["cap"] == cap and p["arm"] == a]
            c = p[0]["row"] if p else None
            if not c:
                cells.append("not run" if p else "-")
                continue
            v = ("%.3f (no CI)" % float(c["value"]) if c["lo"] == "-" else
                 ci_cell(c["value"], c["lo"], c["hi"]))
            cells.append("%s, %s runs, %s / %s (%s / %s), %.1f" % (
                v, c["runs"], c["n_base"], c["n_strat"], c["unfin_base"], c["unfin_strat"],
                float(c["median_base"]) / 10))
        out += "| %g | %s | %s |\n" % (cap, " | ".join(cells), a_cell)
    return out




def focus_ticks(name):
    """{(variant, field): {value: seconds}} pooled over the runs of NAME/focus-ticks.tsv
    (reproduction/focus_ticks.py), and {(variant, field): [per-run median]}; None if absent."""
    path = os.path.join(DATA, name, "focus-ticks.tsv")
    if not os.path.exists(path):
        return None
    pooled, runs = {}, {}
    for r in read_tsv(path):
        key, v, n = (r["variant"], r["field"]), int(r["value"]), int(r["ticks"])
        pooled.setdefault(key, {})[v] = pooled.setdefault(key, {}).get(v, 0) + n
        h = runs.setdefault(key, {}).setdefault(r["run"], {})
        h[v] = h.get(v, 0) + n
    return pooled, {k: [ft.median(h) for h in rs.values()] for k, rs in runs.items()}



def focus_upload(name):
    """{variant: [bytes_up / seconds / cap of each of the focus peer's finished downloads]}."""
    out = {}
    for r in read_csv(os.path.join(DATA, name, "results.csv")):
        if r["focus"] == "1" and r["seconds"]:
            out.setdefault(r["variant"], []).append(
                float(r["bytes_up"]) / 1024 / float(r["seconds"]) / float(r["cap"]))
    return out


def others(name):
    """{variant: [seconds of each finished download of the leechers that are not the focus]}."""
    out = {}
    for r in read_csv(os.path.join(DATA, name, "results.csv")):
        if r["focus"] != "1" and r["role"] != "seeder" and r["seconds"]:
            out.setdefault(r["variant"], []).append(float(r["seconds"]))
    return out


def peers_table(exps, prefix):
    """Exploratory, after the runs: per cap, what the focus peer did with its upload. Its
    upload per download as a share of its cap, and, over its seconds while downloading, how
    many peers it unchoked and how many unchoked it (median of the pooled seconds, with the
    range of per-run medians). `vanilla` pools both arms' baselines (one plan run twice).
    Last, per arm, what the other leechers finished: downloads (median seconds) in the
    baseline, then beside the tyrant."""
    points = [p for p in sweep_points(exps, prefix) if p["row"]]
    arms = [a for a in SWEEP_ARMS if any(p["arm"] == a for p in points)]
    cols = ["vanilla"] + arms
    out = ("| cap KiB/s | upload ÷ cap per download, median: %s | peers it unchokes: %s | "
           "peers unchoking it: %s | connected peers | other leechers' downloads (median s), "
           "baseline → tyrant arm: %s |\n|---|---|---|---|---|---|\n") % ((" / ".join(cols),) * 3 + ("; ".join(arms),))
    for cap in sorted({p["cap"] for p in points}):
        here = {p["arm"]: p["name"] for p in points if p["cap"] == cap}
        use, ticks = {}, {}
        for arm, name in here.items():
            u = focus_upload(name)
            use.setdefault("vanilla", []).extend(u.get("vanilla-in-vanilla", []))
            use[arm] = u.get("tyrant-in-vanilla", [])
            t = focus_ticks(name)
            if t is None:
                continue
            pooled, per_run = t
            for field in ("unchoked", "unchoking_us", "peers"):
                for variant, col in (("vanilla-in-vanilla", "vanilla"), ("tyrant-in-vanilla", arm)):
                    h = ticks.setdefault((col, field), [{}, []])
                    for v, n in pooled.get((variant, field), {}).items():
                        h[0][v] = h[0].get(v, 0) + n
                    h[1].extend(per_run.get((variant, field), []))

        def count(col, field):
            h = ticks.get((col, field))
            if not h or not h[1]:
                return "-"
            lo, hi = min(h[1]), max(h[1])
            return "%d (%s)" % (ft.median(h[0]), lo if lo == hi else "%d–%d" % (lo, hi))

        cells = [" / ".join("%.2f" % statistics.median(use[c]) if use.get(c) else "-" for c in cols)]
        cells += [" / ".join(count(c, f) for c in cols) for f in ("unchoked", "unchoking_us")]
        cells.append(" / ".join(count(c, "peers") for c in cols))
        moved = []
        for arm in arms:
            o = others(here[arm]) if arm in here else {}
            b, t = o.get("vanilla-in-vanilla", []), o.get("tyrant-in-vanilla", [])
            moved.append("{:,} ({:.1f}) → {:,} ({:.1f})".format(len(b), statistics.median(b), len(t), statistics.median(t))
                         if b and t else "-")
        cells.append("; ".join(moved))

        out += "| %g | %s |\n" % (cap, " | ".join(cells))
    return out


def blocks():
    exps = experiments()
    b = {"summary": summary(exps)}
    for prefix in sweep_prefixes(exps):
        b["sweep:" + prefix] = sweep(exps, prefix)
        b["peers:" + prefix] = peers_table(exps, prefix)

    for x, y, v in AA:
        if all(os.path.exists(os.path.join(DATA, n, "results.csv")) for n in (x, y)):
            b["aa:%s:%s" % (x, y)] = aa(x, y, v)
    for e in exps:
        # comparisons.tsv comes last (tyrant-lab report): an experiment still running has none.
        if os.path.exists(os.path.join(DATA, e["name"], "comparisons.tsv")):
            b["runs:" + e["name"]] = per_run(e["name"])
            if e["words"].startswith("all "):
                b["swarm:" + e["name"]] = swarm(e["name"])
            if os.path.exists(os.path.join(DATA, e["name"], "upload-use.tsv")):
                b["use:" + e["name"]] = upload_use(e["name"])
    return b


def cross_check():
    """Every `geomean` value of a comparisons.tsv recomputed here from results.csv (tyrant-lab
    and this script must agree on populations, pairing and the statistic)."""
    bad = []
    for e in experiments():
        tsv = os.path.join(DATA, e["name"], "comparisons.tsv")
        if not os.path.exists(tsv):
            continue
        res = read_csv(os.path.join(DATA, e["name"], "results.csv"))
        for c in read_tsv(tsv):
            if c["statistic"] != "geomean":
                continue
            ours = per_run_geomeans(population_rows(res, c["strategy"], c["population"]),
                                    c["baseline"], c["strategy"]).get(float(c["cap"]))
            if ours is None or abs(ours - float(c["value"])) > 5e-4:
                bad.append("%s %s vs %s, %s: geomean %s here, %s in comparisons.tsv" % (
                    e["name"], c["strategy"], c["baseline"], c["population"],
                    "none" if ours is None else "%.4f" % ours, c["value"]))
    return bad


MARK = re.compile(r"<!-- tables\.py: (\S+) -->\n(.*?)<!-- /tables\.py -->", re.S)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--doc", default=os.path.join(ROOT, "REPRODUCTION.md"))
    a = ap.parse_args()
    b = blocks()
    if not (a.write or a.check):
        for k, v in b.items():
            print("<!-- tables.py: %s -->\n%s<!-- /tables.py -->\n" % (k, v))
        return 0
    with open(a.doc) as f:
        doc = f.read()
    stale = []

    def fill(m):
        key = m.group(1)
        if key not in b:
            stale.append(key + " (no such data)")
            return m.group(0)
        if m.group(2) != b[key]:
            stale.append(key)
        return "<!-- tables.py: %s -->\n%s<!-- /tables.py -->" % (key, b[key])

    new = MARK.sub(fill, doc)
    if a.check:
        stale += cross_check()
        if stale:
            print("tables: %s differs from the data in: %s (run reproduction/make.sh)"
                  % (a.doc, ", ".join(stale)), file=sys.stderr)
            return 1
        print("tables: every table of %s matches the data" % a.doc)
        return 0
    with open(a.doc, "w") as f:
        f.write(new)
    print("tables: %d blocks written into %s" % (len(MARK.findall(new)), a.doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
