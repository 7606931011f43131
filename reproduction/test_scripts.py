#!/usr/bin/env python3
"""test_scripts: the reproduction scripts' arithmetic on small hand-made inputs whose answers
are known — upload_use.py's phases and caps, focus_ticks.py's histograms, tables.py's populations and per-run geometric
means (the same rules as tyrant-lab's study/compare.rs), by_capacity.py's per-leecher ratios
and rank correlation, cdf.py's steps, and run-all.sh's calls of tyrant-lab (against a
stub, with and without a testbed's HOSTS/EXEC/COLLECT). The committed data is checked separately
(`tables.py --check`).

    python3 reproduction/test_scripts.py        (run.sh test runs it; Python 3 stdlib only)
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import by_capacity  # noqa: E402
import cdf  # noqa: E402
import focus_ticks  # noqa: E402

import gnuplot  # noqa: E402
import sweep  # noqa: E402
import tables  # noqa: E402
import upload_use  # noqa: E402


def row(variant, rep, peer, seconds, strategy="vanilla", focus="0", cap="100", up="50"):
    return {"variant": variant, "rep": str(rep), "peer": peer, "seconds": seconds,
            "strategy": strategy, "focus": focus, "cap": cap, "up": up}


class UploadUse(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="upload-use-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def stats(self, run, name, lines, done=True):
        d = os.path.join(self.dir, "runs", run, "stats")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            f.write("\n".join(lines) + "\n")
        if done:
            open(os.path.join(self.dir, "runs", run, "done"), "w").close()

    def test_phases_average_rate_over_cap_and_skip_seeders_and_bad_ticks(self):
        self.stats("c100-r3-tyrant-in-vanilla", "p01.txt", [
            "tick t=0.5 up_rate=99999",  # before the start line: no cap known yet
            "start up_kib=10 strategy=tyrant",
            "tick t=1.0 up_rate=5120",      # 0.5 of 10 KiB/s
            "tick t=2.0 up_rate=10240",     # 1.0
            "tick t=3.0 up_rate=oops",      # malformed: skipped
            "tick t=45.0 up_rate=2560",     # 0.25, second phase
            "tick t=61.0 up_rate=10240",    # 1.0, third phase
        ])
        self.stats("c100-r3-tyrant-in-vanilla", "p02.j1.txt", [
            "start up_kib=20", "tick t=10.0 up_rate=0"])  # 0.0 in the first phase, a rejoin
        self.stats("c100-r3-tyrant-in-vanilla", "p03.txt", [
            "start up_kib=40", "tick t=10.0 up_rate=20480"])  # 0.5, the top band
        self.stats("c100-r3-tyrant-in-vanilla", "s00.txt", [
            "start up_kib=64", "tick t=1.0 up_rate=65536"])  # a seeder: left out
        sums = upload_use.summarise(os.path.join(self.dir, "runs", "c100-r3-tyrant-in-vanilla"))
        self.assertEqual(sorted(sums), [("0-30 s", "0-25", "first"), ("0-30 s", "0-25", "later"),
                                        ("0-30 s", "40-", "first"), ("30-60 s", "0-25", "first"),
                                        ("after 60 s", "0-25", "first")])
        self.assertEqual(sums[("0-30 s", "0-25", "first")][1], 2)
        self.assertAlmostEqual(sums[("0-30 s", "0-25", "first")][0] / 2, 0.75)
        self.assertEqual(sums[("0-30 s", "0-25", "later")], [0.0, 1])
        self.assertEqual(sums[("0-30 s", "40-", "first")], [0.5, 1])
        self.assertEqual(sums[("30-60 s", "0-25", "first")], [0.25, 1])
        self.assertEqual(sums[("after 60 s", "0-25", "first")], [1.0, 1])

    def test_phase_boundaries_belong_to_the_later_phase(self):
        self.stats("c100-r0-vanilla-in-vanilla", "p01.txt", [
            "start up_kib=10",
            "tick t=29.999 up_rate=10240",  # 1.0, still the first phase
            "tick t=30.0 up_rate=5120",     # 0.5, the first tick of 30-60 s
            "tick t=59.999 up_rate=5120",   # 0.5
            "tick t=60.0 up_rate=0",        # 0.0, the first tick after 60 s
        ])
        sums = upload_use.summarise(os.path.join(self.dir, "runs", "c100-r0-vanilla-in-vanilla"))
        self.assertEqual(sums, {("0-30 s", "0-25", "first"): [1.0, 1],
                                ("30-60 s", "0-25", "first"): [1.0, 2],
                                ("after 60 s", "0-25", "first"): [0.0, 1]})

    def test_bands_match_by_capacitys_labels(self):
        self.assertEqual([upload_use.band(c) for c in (10, 24.9, 25, 39.9, 40, 1000)],
                         ["0-25", "0-25", "25-40", "25-40", "40-", "40-"])
        self.assertEqual(upload_use.EDGES, tables.BANDS)

    def test_main_writes_one_row_per_run_and_phase_of_finished_runs_only(self):
        self.stats("c100-r0-vanilla-in-vanilla", "p01.txt", ["start up_kib=10", "tick t=1 up_rate=10240"])
        self.stats("c100-r1-vanilla-in-vanilla", "p01.txt", ["start up_kib=10", "tick t=1 up_rate=0"],
                   done=False)
        argv = sys.argv
        sys.argv = ["upload_use.py", self.dir]
        try:
            upload_use.main()
        finally:
            sys.argv = argv
        rows = tables.read_tsv(os.path.join(self.dir, "upload-use.tsv"))
        self.assertEqual([(r["run"], r["rep"], r["variant"], r["phase"], r["band"], r["download"], r["ticks"],
                           r["use"])
                                for r in rows],
                         [("c100-r0-vanilla-in-vanilla", "0", "vanilla-in-vanilla", "0-30 s", "0-25", "first", "1",
                           "1.000000")])

    def test_tables_weigh_a_runs_bands_by_ticks(self):
        with open(os.path.join(self.dir, "upload-use.tsv"), "w") as f:
            f.write("run\trep\tvariant\tphase\tband\tdownload\tticks\tuse\n"
                    "a\t0\tv-in-v\tafter 60 s\t0-25\tfirst\t3\t1.0\n"
                    "a\t0\tv-in-v\tafter 60 s\t40-\tlater\t1\t0.2\n"
                    "b\t1\tv-in-v\tafter 60 s\t0-25\tfirst\t1\t0.6\n")
        data, tables.DATA = tables.DATA, os.path.dirname(self.dir)
        try:
            out = tables.upload_use(os.path.basename(self.dir))
        finally:
            tables.DATA = data
        # run a: (3 * 1.0 + 0.2) / 4 = 0.8, run b: 0.6 -> mean 0.7; all ticks in this phase
        self.assertIn("| after 60 s | 0.700 (0.600, 0.800), 100 % |", out)
        self.assertIn("| 0-25 | 0.800 (0.600, 1.000) |", out)
        self.assertIn("| 40- | 0.200 (0.200, 0.200) |", out)
        self.assertIn("| first | 0.800 (0.600, 1.000) |", out)
        self.assertIn("| later | 0.200 (0.200, 0.200) |", out)


class FocusTicks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="focus-ticks-")
        with open(os.path.join(self.dir, "manifest.txt"), "w") as f:
            f.write("# peer run=x id=p09 focus=true  (a comment, not a peer)\n"
                    "peer run=c500-r1-tyrant-in-vanilla id=s0 role=seeder focus=false\n"
                    "peer run=c500-r1-tyrant-in-vanilla id=p00 role=loop focus=true\n"
                    "peer run=c500-r1-tyrant-in-vanilla id=p01 role=loop focus=false\n")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def stats(self, name, lines):
        d = os.path.join(self.dir, "runs", "c500-r1-tyrant-in-vanilla", "stats")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            f.write("\n".join(lines) + "\n")
        open(os.path.join(self.dir, "runs", "c500-r1-tyrant-in-vanilla", "done"), "w").close()

    @staticmethod
    def tick(t, have, peers, unchoked, us):
        return "tick t=%s have=%d pieces=10 peers=%d unchoked=%d unchoking_us=%d" % (t, have, peers, unchoked, us)

    def test_only_the_focus_peers_downloading_seconds_after_30_s_count(self):
        self.stats("p00.txt", ["start up_kib=500",
                               self.tick(29.9, 0, 5, 5, 5),     # start-up: left out
                               self.tick(30.0, 1, 30, 20, 9),
                               self.tick(31.0, 2, 30, 22, 9),
                               "tick t=32.0 have=3 pieces=10 peers=x unchoked=1 unchoking_us=1",  # malformed
                               self.tick(33.0, 10, 30, 1, 1)])  # finished (seeding): left out
        self.stats("p00.j1.txt", [self.tick(40.0, 4, 31, 22, 8)])  # a rejoin counts
        self.stats("p01.txt", [self.tick(40.0, 4, 7, 7, 7)])       # not the focus peer
        self.stats("s0.txt", [self.tick(40.0, 4, 7, 7, 7)])
        argv, sys.argv = sys.argv, ["focus_ticks.py", self.dir]
        try:
            focus_ticks.main()
        finally:
            sys.argv = argv
        rows = [(r["rep"], r["variant"], r["field"], r["value"], r["ticks"])
                for r in tables.read_tsv(os.path.join(self.dir, "focus-ticks.tsv"))]
        self.assertEqual(rows, [
            ("1", "tyrant-in-vanilla", "peers", "30", "2"), ("1", "tyrant-in-vanilla", "peers", "31", "1"),
            ("1", "tyrant-in-vanilla", "unchoked", "20", "1"), ("1", "tyrant-in-vanilla", "unchoked", "22", "2"),
            ("1", "tyrant-in-vanilla", "unchoking_us", "8", "1"), ("1", "tyrant-in-vanilla", "unchoking_us", "9", "2")])
        data, tables.DATA = tables.DATA, os.path.dirname(self.dir)
        try:
            pooled, per_run = tables.focus_ticks(os.path.basename(self.dir))
        finally:
            tables.DATA = data
        self.assertEqual(pooled[("tyrant-in-vanilla", "unchoked")], {20: 1, 22: 2})
        self.assertEqual(per_run[("tyrant-in-vanilla", "unchoked")], [22])

    def test_histogram_median_takes_the_lower_middle_value(self):
        med = focus_ticks.median
        self.assertEqual(med({3: 1, 7: 1}), 3)
        self.assertEqual(med({3: 1, 7: 2}), 7)
        self.assertEqual(med({28: 5, 2: 4, 29: 1}), 28)
        self.assertIsNone(med({}))


class Tables(unittest.TestCase):
    RES = [
        # repetition 0: focus p00, thieves p00 and p01 in the strategy variant
        row("vanilla-in-vanilla", 0, "p00", "100", focus="1"),
        row("vanilla-in-vanilla", 0, "p00", "120", focus="1"),
        row("vanilla-in-vanilla", 0, "p01", "80"),
        row("vanilla-in-vanilla", 0, "p02", "90"),
        row("thieves-in-vanilla", 0, "p00", "200", strategy="thief", focus="1"),
        row("thieves-in-vanilla", 0, "p01", "300", strategy="thief"),
        row("thieves-in-vanilla", 0, "p02", "100"),
        row("thieves-in-vanilla", 0, "p02", ""),  # unfinished: no time
        # repetition 1
        row("vanilla-in-vanilla", 1, "p00", "50", focus="1"),
        row("vanilla-in-vanilla", 1, "p01", "50"),
        row("thieves-in-vanilla", 1, "p00", "100", strategy="thief", focus="1"),
        row("thieves-in-vanilla", 1, "p01", "25", strategy="thief"),
    ]

    def test_populations_follow_tyrant_labs_rules(self):
        pick = tables.population_rows
        self.assertEqual({r["peer"] for r in pick(self.RES, "thieves-in-vanilla", "focus peer")}, {"p00"})
        self.assertEqual(len(pick(self.RES, "thieves-in-vanilla", "whole swarm")), len(self.RES))
        thief = pick(self.RES, "thieves-in-vanilla", "thief peers")
        # the thieves' ids, in both variants (so caps and start times match)
        self.assertEqual({(r["variant"], r["peer"]) for r in thief},
                         {(v, p) for v in ("vanilla-in-vanilla", "thieves-in-vanilla") for p in ("p00", "p01")})
        vanilla = pick(self.RES, "thieves-in-vanilla", "vanilla peers")
        self.assertEqual({r["peer"] for r in vanilla}, {"p02"})

    def test_per_run_geomean_is_over_runs_of_median_ratios(self):
        rows = tables.population_rows(self.RES, "thieves-in-vanilla", "thief peers")
        # rep 0: median(100, 120, 80) = 100 / median(200, 300) = 250 -> 0.4
        # rep 1: median(50, 50) = 50 / median(100, 25) = 62.5 -> 0.8
        g = tables.per_run_geomeans(rows, "vanilla-in-vanilla", "thieves-in-vanilla")
        self.assertAlmostEqual(g[100.0], math.sqrt(0.4 * 0.8))
        table = tables.per_run_table(rows, "vanilla-in-vanilla", "thieves-in-vanilla")
        self.assertIn("| 100 | 0 | 3, 100.0 | 2, 250.0 | 0.400 | 10.0 |", table)
        self.assertIn("| 100 | geometric mean of 2 runs | | | %.4f | |" % math.sqrt(0.32), table)

    def test_a_run_takes_medians_not_means(self):
        # baseline 10, 20, 90: median 20 (mean 40); strategy 5, 10, 60: median 10 (mean 25)
        rows = [row("vanilla-in-vanilla", 0, "p00", t, focus="1") for t in ("10", "20", "90")] + \
               [row("tyrant-in-vanilla", 0, "p00", t, strategy="tyrant", focus="1") for t in ("5", "10", "60")]
        self.assertEqual(tables.per_run_geomeans(rows, "vanilla-in-vanilla", "tyrant-in-vanilla"), {100.0: 2.0})
        self.assertIn("| 100 | 0 | 3, 20.0 | 3, 10.0 | 2.000 | 2.0 |",
                      tables.per_run_table(rows, "vanilla-in-vanilla", "tyrant-in-vanilla"))

    def test_a_run_without_downloads_on_one_side_counts_in_no_mean(self):
        rows = [row("vanilla-in-vanilla", 0, "p00", "10", focus="1"),
                row("tyrant-in-vanilla", 0, "p00", "", strategy="tyrant", focus="1"),
                row("vanilla-in-vanilla", 1, "p00", "10", focus="1"),
                row("tyrant-in-vanilla", 1, "p00", "5", strategy="tyrant", focus="1")]
        self.assertEqual(tables.per_run_geomeans(rows, "vanilla-in-vanilla", "tyrant-in-vanilla"), {100.0: 2.0})

    def test_run_bootstrap_gives_no_interval_below_min_runs(self):
        v, ci = tables.run_boot([1.0] * (tables.MIN_RUNS - 1), sum)
        self.assertEqual((v, ci), (tables.MIN_RUNS - 1, None))
        v, ci = tables.run_boot([0.0, 1.0] * tables.MIN_RUNS, lambda x: sum(x) / len(x))
        self.assertEqual(v, 0.5)
        self.assertTrue(0.0 <= ci[0] < 0.5 < ci[1] <= 1.0)


class Cdf(unittest.TestCase):
    def test_ecdf_steps_once_per_download_and_ends_at_one(self):
        self.assertEqual(cdf.ecdf([30.0, 10.0, 20.0, 20.0]),
                         [(10.0, 0.0), (10.0, 0.25), (20.0, 0.5), (20.0, 0.75), (30.0, 1.0)])
        self.assertEqual(cdf.ecdf([]), [])

    def test_series_takes_one_cap_and_counts_unfinished_apart(self):
        rows = [row("v-in-v", 0, "p00", "10", cap="20"), row("v-in-v", 0, "p00", "", cap="20"),
                row("v-in-v", 0, "p00", "99", cap="100"), row("t-in-v", 0, "p00", "5", cap="20")]
        self.assertEqual(cdf.series(rows, "v-in-v", 20.0), ([10.0], 1))


class CdfFigures(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cdf-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_figures_draws_each_non_whole_swarm_comparison_per_cap(self):
        cols = ["run", "variant", "rep", "cap", "peer", "strategy", "focus", "seconds"]
        rows = [("a", "vanilla-in-vanilla", 0, 20, "p00", "vanilla", 1, "30"),
                ("a", "vanilla-in-vanilla", 0, 20, "p00", "vanilla", 1, "10"),
                ("b", "tyrant-in-vanilla", 0, 20, "p00", "tyrant", 1, "5"),
                ("b", "tyrant-in-vanilla", 0, 20, "p00", "tyrant", 1, ""),
                ("b", "tyrant-in-vanilla", 0, 20, "p01", "vanilla", 0, "7"),
                ("c", "vanilla-in-vanilla", 0, 50, "p00", "vanilla", 1, "9"),  # cap 50: no strategy side
                ]
        with open(os.path.join(self.dir, "results.csv"), "w") as f:
            f.write(",".join(cols) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
        with open(os.path.join(self.dir, "comparisons.tsv"), "w") as f:
            f.write("strategy\tbaseline\tpopulation\tcap\truns\n"
                    "tyrant-in-vanilla\tvanilla-in-vanilla\tfocus peer\t20\t1\n"
                    "tyrant-in-vanilla\tvanilla-in-vanilla\tfocus peer\t50\t1\n"
                    "tyrant-in-vanilla\tvanilla-in-vanilla\twhole swarm\t20\t1\n")
        draw = gnuplot.draw
        try:
            gnuplot.draw = lambda gp: False  # no gnuplot: only .dat and .gp
            stems = cdf.figures(self.dir)
        finally:
            gnuplot.draw = draw
        self.assertEqual(stems, ["cdf-tyrant-in-vanilla-focus-peer-c20"])
        self.assertEqual(sorted(os.listdir(os.path.join(self.dir, "figures"))),
                         ["cdf-tyrant-in-vanilla-focus-peer-c20.dat", "cdf-tyrant-in-vanilla-focus-peer-c20.gp"])
        with open(os.path.join(self.dir, "figures", stems[0] + ".dat")) as f:
            blocks = [b for b in f.read().split("\n\n\n") if b.strip()]
        self.assertEqual([[l for l in b.splitlines() if not l.startswith("#")] for b in blocks],
                         [["10.000 0.00000", "10.000 0.50000", "30.000 1.00000"],
                          ["5.000 0.00000", "5.000 1.00000"]])
        with open(os.path.join(self.dir, "figures", stems[0] + ".gp")) as f:
            self.assertIn("vanilla-in-vanilla 2 downloads (+0 unfinished),\\ntyrant-in-vanilla 1 (+1)", f.read())


class Sweep(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sweep-")
        self.data, tables.DATA = tables.DATA, self.dir
        head = "strategy\tbaseline\tpopulation\tcap\truns\tn_base\tn_strat\tunfin_base\tunfin_strat" \
               "\tmedian_base\tmedian_strat\tstatistic\tvalue\tlo\thi\tby\n"
        for name, cap, v, lo, hi, runs in (("x-give-c10", 10, "0.9", "0.8", "1.1", 10),
                                           ("x-give-c100", 100, "1.2", "1.05", "1.3", 10),
                                           ("x-keep-c10", 10, "1.5", "-", "-", 3)):
            os.makedirs(os.path.join(self.dir, name))
            with open(os.path.join(self.dir, name, "comparisons.tsv"), "w") as f:
                f.write(head + "tyrant-in-vanilla\tvanilla-in-vanilla\ttyrant peers\t%d\t%d\t50\t40\t1\t2"
                               "\t200.0\t180.0\tgeomean\t%s\t%s\t%s\truns\n" % (cap, runs, v, lo, hi))
        # The c10 baselines, for the A/A column: focus medians 100, 200 (give) and 50, 200 (keep).
        for name, times in (("x-give-c10", ((0, "100"), (0, "90"), (0, "110"), (1, "200"))),
                            ("x-keep-c10", ((0, "50"), (1, "200"), (1, "")))):
            with open(os.path.join(self.dir, name, "results.csv"), "w") as f:
                f.write("variant,rep,focus,seconds\n" + "".join(
                    "vanilla-in-vanilla,%d,1,%s\n" % t for t in times) +
                    "tyrant-in-vanilla,0,1,1\nvanilla-in-vanilla,0,0,1\n")
        self.exps = [{"name": n} for n in ("x-give-c10", "x-give-c100", "x-keep-c10", "x-keep-c100",
                                           "xy-give", "long-new")]

    def tearDown(self):
        tables.DATA = self.data
        shutil.rmtree(self.dir)

    def test_prefixes_and_table_rows_per_cap(self):
        self.assertEqual(tables.sweep_prefixes(self.exps), ["x"])
        out = tables.sweep(self.exps, "x").splitlines()
        self.assertEqual(out[2:], [
            "| 10 | 0.900 [0.800, 1.100], 10 runs, 50 / 40 (1 / 2), 20.0 | 1.500 (no CI), 3 runs, 50 / 40 (1 / 2), 20.0 "
            "| 1.414 (no CI) |",
            "| 100 | **1.200** [1.050, 1.300], 10 runs, 50 / 40 (1 / 2), 20.0 | not run | - |"])

    def test_bold_marks_only_intervals_that_exclude_one(self):
        self.assertEqual(tables.ci_cell("1.2", "1.05", "1.3"), "**1.200** [1.050, 1.300]")
        self.assertEqual(tables.ci_cell("0.8", "0.7", "0.95"), "**0.800** [0.700, 0.950]")
        self.assertEqual(tables.ci_cell("1.08", "0.9999", "1.19"), "1.080 [1.000, 1.190]")
        self.assertEqual(tables.ci_cell("0.95", "0.9", "1.0"), "0.950 [0.900, 1.000]")

    def test_figure_leaves_out_points_without_an_interval(self):
        pts = sweep.points(self.exps, "x")
        self.assertEqual(pts, {"give": [(10.0, 0.9, 0.8, 1.1, 10), (100.0, 1.2, 1.05, 1.3, 10)]})
        draw = gnuplot.draw
        try:
            gnuplot.draw = lambda gp: False
            stem = sweep.draw("x", pts, os.path.join(self.dir, "fig"))
        finally:
            gnuplot.draw = draw
        with open(os.path.join(self.dir, "fig", stem + ".dat")) as f:
            self.assertEqual([l for l in f.read().splitlines() if l and not l.startswith("#")],
                             ["10 0.9000 0.8000 1.1000 10", "100 1.2000 1.0500 1.3000 10"])
        self.assertIsNone(sweep.draw("x", {}, os.path.join(self.dir, "fig")))


class ByCapacity(unittest.TestCase):
    def test_peer_ratio_needs_a_download_in_both_arms(self):
        rows = [row("vanilla-in-vanilla", 0, "p01", "100", up="20"),
                row("vanilla-in-vanilla", 0, "p01", "300", up="20"),
                row("tyrant-in-tyrant", 0, "p01", "100", up="20"),
                row("vanilla-in-vanilla", 0, "p02", "100", up="80"),
                row("tyrant-in-tyrant", 0, "p02", "", up="80")]
        self.assertEqual(by_capacity.peer_ratios(rows, "vanilla-in-vanilla", "tyrant-in-tyrant"),
                         [("100/0", 20.0, 2.0)])

    def test_spearman_of_monotone_tied_and_constant_series(self):
        self.assertAlmostEqual(by_capacity.spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1.0)
        self.assertAlmostEqual(by_capacity.spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1.0)
        # ties share their mean rank: ranks x = 1.5, 1.5, 3; y = 1, 2, 3 -> rho = 0.866
        self.assertAlmostEqual(by_capacity.spearman([5, 5, 9], [1, 2, 3]), math.sqrt(3) / 2)
        self.assertTrue(math.isnan(by_capacity.spearman([1, 1, 1], [1, 2, 3])))


class RunAll(unittest.TestCase):
    """run-all.sh drives tyrant-lab as planned in experiments.txt; a stub tyrant-lab records
    its arguments, in a copy of reproduction/ with its own experiments.txt, so no data of the
    study is touched."""

    STUB = """#!/usr/bin/env python3
import json, os, sys
a = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps(a) + "\\n")
if a[0] == "plan":
    open(a[a.index("-o") + 1], "w").write("manifest\\n")
elif a[0] == "run":
    run = os.path.join(a[a.index("--out") + 1], "runs", "c100-r0-tyrant-in-vanilla")
    os.makedirs(os.path.join(run, "stats"), exist_ok=True)
    open(os.path.join(run, "stats", "p01.txt"), "w").write("start up_kib=10\\ndone t=5\\n")
    open(os.path.join(a[a.index("--out") + 1], "manifest.txt"), "w").write(
        "peer run=c100-r0-tyrant-in-vanilla id=p01 focus=true\\n")
    open(os.path.join(run, "done"), "w").close()
"""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="run-all-")
        here = os.path.dirname(os.path.abspath(__file__))
        repro = os.path.join(self.dir, "reproduction")
        os.makedirs(repro)
        for name in ("run-all.sh", "upload_use.py", "focus_ticks.py"):
            shutil.copy(os.path.join(here, name), repro)
        with open(os.path.join(repro, "experiments.txt"), "w") as f:
            f.write("# a comment\nexp-a|3|single peers=30 caps=100 reps=1 seed=9 name=exp-a|claim\n")
        self.lab = os.path.join(self.dir, "stub-lab")
        with open(self.lab, "w") as f:
            f.write(self.STUB)
        os.chmod(self.lab, 0o755)
        self.log = os.path.join(self.dir, "calls.log")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def run_script(self, **env):
        e = dict(os.environ, TYRANT="/bin/true", TYRANT_LAB=self.lab, STUB_LOG=self.log, **env)
        for k in ("HOSTS", "EXEC", "COLLECT"):
            if k not in env:
                e.pop(k, None)
        return subprocess.run(["bash", os.path.join(self.dir, "reproduction", "run-all.sh"), "exp-a"],
                              env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)

    def run_all(self, **env):
        """Runs run-all.sh, which must succeed, and returns the stub's calls."""
        p = self.run_script(**env)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(self.log) as f:
            return [json.loads(line) for line in f]

    def test_local_runs_take_the_planned_jobs_and_no_exec(self):
        calls = self.run_all()
        out = "reproduction/data/exp-a"
        self.assertEqual(calls[0], ["plan", "single", "peers=30", "caps=100", "reps=1", "seed=9",
                                    "name=exp-a", "-o", out + "/plan.txt"])
        self.assertEqual(calls[1], ["run", out + "/plan.txt", "--out", out, "--jobs", "3"])
        self.assertEqual(calls[2], ["report", out])
        data = os.path.join(self.dir, out)
        self.assertTrue(os.path.exists(os.path.join(data, "stats-summary.txt.gz")))
        self.assertTrue(os.path.exists(os.path.join(data, "upload-use.tsv")))
        self.assertTrue(os.path.exists(os.path.join(data, "focus-ticks.tsv")))


    def test_testbed_variables_reach_plan_and_run_as_single_arguments(self):
        calls = self.run_all(HOSTS="h0@127.0.0.41,h1@127.0.0.42", EXEC="ssh -tt {host} cd {dir} &&",
                             COLLECT="rsync -a {host}:{dir}/runs/{run}/ {dir}/runs/{run}/")
        out = "reproduction/data/exp-a"
        self.assertEqual(calls[0][-3:], ["hosts=h0@127.0.0.41,h1@127.0.0.42", "-o", out + "/plan.txt"])
        self.assertEqual(calls[1], ["run", out + "/plan.txt", "--out", out, "--jobs", "1",
                                    "--exec", "ssh -tt {host} cd {dir} &&",
                                    "--collect", "rsync -a {host}:{dir}/runs/{run}/ {dir}/runs/{run}/"])

    def test_hosts_or_collect_without_exec_is_refused_before_any_plan(self):
        for env in ({"HOSTS": "h0@127.0.0.41"}, {"COLLECT": "rsync -a {host}:{dir}/ {dir}/"}):
            p = self.run_script(**env)
            self.assertEqual(p.returncode, 2, p.stderr)
            var = list(env)[0]
            self.assertEqual(p.stderr.strip().splitlines(), ["run-all: %s needs EXEC (how a process starts "
                                                                "on a host; docs/testbeds.md)" % var])
            self.assertFalse(os.path.exists(self.log), "tyrant-lab was called")
            self.assertFalse(os.path.exists(os.path.join(self.dir, "reproduction", "data")))


if __name__ == "__main__":
    unittest.main(verbosity=1)
