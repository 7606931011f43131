//! Tests of `tyrant-lab report` (study.rs and study/): the statistics from known tables,
//! the bootstrap, the CSV reader, the population and baseline rules per preset, and whole
//! reports of synthetic result directories (figures too when gnuplot is installed).

use super::*;
use crate::manifest::{Kind, Role};
use crate::plan::{plan, PlanOptions};
use std::path::PathBuf;
use std::process::Command;
use tyrant::rng::Rng;
use Population::{Focus, Strategy as Peers, Whole};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn median_mean_and_type7_quantiles_from_tables() {
    let cases: &[(&[f64], Option<f64>)] = &[
        (&[], None),
        (&[3.0], Some(3.0)),
        (&[1.0, 3.0], Some(2.0)),
        (&[5.0, 1.0, 3.0], Some(3.0)),
        (&[4.0, 1.0, 3.0, 2.0], Some(2.5)),
        (&[7.0, 7.0, 1.0, 100.0], Some(7.0)),
    ];
    for (v, want) in cases {
        assert_eq!(median(v), *want, "median {:?}", v);
    }
    // The selection-based median agrees with the sorting quantile on random data.
    let mut rng = Rng::new(5);
    for n in 1..40 {
        let v: Vec<f64> = (0..n).map(|_| (rng.below(20) as f64) * 1.5).collect();
        assert!(close(median(&v).unwrap(), quantile(&v, 0.5).unwrap()), "{:?}", v);
    }
    assert_eq!(mean(&[]), None);
    assert_eq!(mean(&[1.0, 2.0, 6.0]), Some(3.0));
    // R: quantile(1:10, p) (type 7) and quantile(c(2,4,4,5,7,9), p).
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    let six = [9.0, 4.0, 2.0, 7.0, 4.0, 5.0];
    let table: &[(&[f64], f64, f64)] = &[
        (&ten, 0.0, 1.0),
        (&ten, 0.1, 1.9),
        (&ten, 0.25, 3.25),
        (&ten, 0.5, 5.5),
        (&ten, 0.9, 9.1),
        (&ten, 1.0, 10.0),
        (&six, 0.1, 3.0),
        (&six, 0.5, 4.5),
        (&six, 0.75, 6.5),
        (&six, 0.9, 8.0),
        (&[42.0], 0.9, 42.0),
    ];
    for &(v, p, want) in table {
        let got = quantile(v, p).unwrap();
        assert!(close(got, want), "quantile {:?} {} = {} not {}", v, p, got, want);
    }
    assert_eq!(quantile(&[], 0.5), None);
    assert_eq!(quantile(&ten, 1.5), None);
    assert_eq!(quantile(&ten, -0.1), None);
}

/// Clusters whose strategy times are exactly half their baseline times, with groups
/// that differ a lot from each other (a fast and a slow repetition).
fn halved(groups: usize) -> Vec<Cluster> {
    (0..groups)
        .map(|g| {
            // Constant within a group, so only the pairing of the runs is under test.
            let base: Vec<f64> = (0..5).map(|_| 100.0 * (1 + 9 * (g % 2)) as f64).collect();
            let strat = base.iter().map(|x| x / 2.0).collect();
            (base, strat)
        })
        .collect()
}

#[test]
fn bootstrap_of_an_exact_ratio_is_that_ratio() {
    let r = ratio_ci(&halved(4), Statistic::Median, RESAMPLES, 7).unwrap();
    assert_eq!((r.ratio, r.lo, r.hi), (2.0, 2.0, 2.0));
    assert_eq!(r.by, Resample::Runs);
    assert_eq!(r.resamples, RESAMPLES);
}

#[test]
fn cluster_bootstrap_keeps_pairs_together() {
    // The same downloads resampled without the pairing (one pooled "run") mix fast
    // baselines with slow strategies and give a wide interval; the run bootstrap keeps
    // each run's baseline with its own strategy and stays at exactly 2.
    let clusters = halved(6);
    let paired = ratio_ci(&clusters, Statistic::Median, RESAMPLES, 3).unwrap();
    assert_eq!((paired.lo, paired.hi), (2.0, 2.0));
    let pooled: Cluster = (
        clusters.iter().flat_map(|c| c.0.clone()).collect(),
        clusters.iter().flat_map(|c| c.1.clone()).collect(),
    );
    let unpaired = ratio_ci(&[pooled], Statistic::Median, RESAMPLES, 3).unwrap();
    assert_eq!(unpaired.by, Resample::Downloads);
    assert!(close(unpaired.ratio, 2.0));
    assert!(unpaired.lo < 1.5 && unpaired.hi > 2.5, "{:?}", unpaired);
}

#[test]
fn bootstrap_ci_contains_a_known_ratio_and_is_deterministic() {
    // Strategy = baseline / 1.5 times an independent factor with median 1 (0.8..1.25
    // log-uniform): the true median ratio is 1.5.
    let mut rng = Rng::new(11);
    let mut logu = |a: f64, b: f64| (a.ln() + rng.f64() * (b.ln() - a.ln())).exp();
    let clusters: Vec<Cluster> = (0..10)
        .map(|_| {
            let scale = logu(0.5, 2.0);
            let base: Vec<f64> = (0..20).map(|_| 200.0 * scale * logu(0.8, 1.25)).collect();
            let strat = base.iter().map(|b| b / 1.5 * logu(0.8, 1.25)).collect();
            (base, strat)
        })
        .collect();
    let r = ratio_ci(&clusters, Statistic::Median, RESAMPLES, 99).unwrap();
    assert!(r.lo < 1.5 && 1.5 < r.hi, "{:?}", r);
    assert!(r.lo <= r.ratio && r.ratio <= r.hi, "{:?}", r);
    assert!(r.hi - r.lo < 0.5, "{:?}", r);
    assert_eq!(ratio_ci(&clusters, Statistic::Median, RESAMPLES, 99), Some(r));
    assert_ne!(ratio_ci(&clusters, Statistic::Median, RESAMPLES, 100), Some(r));
}

#[test]
fn bootstrap_without_data_on_one_side_is_none() {
    assert_eq!(ratio_ci(&[], Statistic::Median, RESAMPLES, 1), None);
    assert_eq!(ratio_ci(&[(vec![1.0], vec![])], Statistic::Median, RESAMPLES, 1), None);
    assert_eq!(
        ratio_ci(&[(vec![], vec![1.0]), (vec![], vec![2.0])], Statistic::Median, RESAMPLES, 1),
        None
    );
    // A repetition with nothing finished on one side still counts as a cluster.
    let r =
        ratio_ci(&[(vec![10.0], vec![5.0]), (vec![], vec![])], Statistic::Median, 200, 1).unwrap();
    assert_eq!(r.by, Resample::Runs);
    assert!(r.resamples < 200 && r.resamples > 100);
    assert_eq!((r.lo, r.hi), (2.0, 2.0));
}

/// The run is the unit: with two runs of 40 downloads each a draw holds run 1 twice, both
/// runs, or run 2 twice, so the bootstrap ratios take at most three values. Resampling the
/// downloads within runs as well (taking consecutive downloads as independent) would give
/// dozens.
#[test]
fn the_bootstrap_resamples_runs_not_downloads() {
    let mut rng = Rng::new(5);
    let mut run = |scale: f64| -> Cluster {
        let base: Vec<f64> = (0..40).map(|_| scale * (50.0 + 50.0 * rng.f64())).collect();
        let strat = (0..40).map(|_| 50.0 + 50.0 * rng.f64()).collect();
        (base, strat)
    };
    let clusters = vec![run(1.0), run(2.0)];
    for stat in [Statistic::Median, Statistic::Mean, Statistic::Geomean] {
        let r = ratio_ci(&clusters, stat, RESAMPLES, 1).unwrap();
        assert_eq!(r.by, Resample::Runs);
        let mut seen: Vec<f64> = Vec::new();
        let mut draw = Rng::new(9);
        for _ in 0..200 {
            let picks: Vec<&Cluster> = (0..2).map(|_| &clusters[draw.below(2) as usize]).collect();
            let x = stat.of(&picks).unwrap();
            if !seen.iter().any(|y| (y - x).abs() < 1e-12) {
                seen.push(x);
            }
        }
        assert_eq!(seen.len(), 3, "{:?}", stat);
        assert!(seen.iter().any(|y| (y - r.lo).abs() < 1e-12), "lo is a run-level value");
        assert!(seen.iter().any(|y| (y - r.hi).abs() < 1e-12), "hi is a run-level value");
    }
}

/// The three statistics on a hand-checked example: run 1 baseline 10, 20, 30 and strategy
/// 10; run 2 baseline 40 and strategy 10, 30.
#[test]
fn statistics_by_hand() {
    let c1: Cluster = (vec![10.0, 20.0, 30.0], vec![10.0]);
    let c2: Cluster = (vec![40.0], vec![10.0, 30.0]);
    let both = [&c1, &c2];
    // pooled medians 25 / 10; means 25 / (50/3); runs 20/10 = 2 and 40/20 = 2
    assert!(close(Statistic::Median.of(&both).unwrap(), 2.5));
    assert!(close(Statistic::Mean.of(&both).unwrap(), 1.5));
    assert!(close(Statistic::Geomean.of(&both).unwrap(), 2.0));
    assert_eq!(Statistic::parse("geomean"), Ok(Statistic::Geomean));
    // An interval from 5 runs on, none from 4.
    let runs = |n: usize| vec![c1.clone(); n];
    assert_eq!(ratio_ci(&runs(4), Statistic::Median, 100, 1).unwrap().interval(), None);
    assert_eq!(ratio_ci(&runs(5), Statistic::Median, 100, 1).unwrap().interval(), Some((2.0, 2.0)));
    assert!(Statistic::parse("best").is_err());
}

// ---------------------------------------------------------------------------------------
// CSV

/// A results.csv row; `seconds` None = unfinished.
#[allow(clippy::too_many_arguments)]
fn row(
    variant: &str,
    cap: f64,
    rep: usize,
    peer: &str,
    strategy: &str,
    focus: bool,
    join: u32,
    seconds: Option<f64>,
) -> String {
    let group = format!("c{}-r{}", cap, rep);
    let start = 5.0 + join as f64 * 100.0;
    let (finish, secs) = match seconds {
        Some(s) => ((start + s).to_string(), s.to_string()),
        None => (String::new(), String::new()),
    };
    format!(
        "{g}-{v},{g},{v},{rep},{cap},{peer},{strategy},loop,{f},{up},{join},{start},{finish},{secs},1000,2097152,10,abc123def456,0.250",
        g = group,
        v = variant,
        rep = rep,
        cap = cap,
        peer = peer,
        strategy = strategy,
        f = focus as u8,
        up = if focus { cap } else { 50.0 },
        join = join,
        start = start,
        finish = finish,
        secs = secs
    )
}

fn csv(rows: &[String]) -> String {
    let mut s = HEADER.to_string() + "\n";
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s
}

#[test]
fn parses_rows_and_keeps_unfinished_out_of_statistics() {
    let text = csv(&[
        row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, 0, Some(100.0)),
        row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, 1, Some(300.0)),
        row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, 2, None),
    ]) + "\n";
    let rows = parse_results(&text, "x/results.csv").unwrap();
    assert_eq!(rows.len(), 3);
    let d = &rows[0];
    assert_eq!(
        (d.run.as_str(), d.group.as_str(), d.rep, d.cap),
        ("c20-r0-vanilla-in-vanilla", "c20-r0", 0, 20.0)
    );
    assert_eq!(
        (d.peer.as_str(), d.focus, d.join, d.seconds, d.finish),
        ("p0", true, 0, Some(100.0), Some(105.0))
    );
    assert_eq!((d.bytes_up, d.bytes_down, d.time_scale), (1000, 2097152, 10.0));
    assert_eq!((rows[2].finish, rows[2].seconds), (None, None));
    let all: Vec<&Download> = rows.iter().collect();
    let s = summarize(&all);
    assert_eq!((s.peers, s.n, s.unfinished), (1, 2, 1));
    assert_eq!((s.median, s.mean), (Some(200.0), Some(200.0)));
    assert_eq!((s.p10, s.p90), (Some(120.0), Some(280.0)));
}

#[test]
fn csv_errors_name_the_file_and_line() {
    let good = row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, 0, Some(1.0));
    let err = |text: &str| parse_results(text, "D/results.csv").unwrap_err();
    assert!(err("").contains("D/results.csv: empty file"));
    assert_eq!(
        err(&(HEADER.to_string() + "\n")),
        "report: D/results.csv: no downloads after the header"
    );
    let mut cols: Vec<&str> = HEADER.split(',').collect();
    cols.swap(0, 1);
    let e = err(&format!("{}\n{}\n", cols.join(","), good));
    assert!(e.starts_with("report: D/results.csv line 1: columns in the wrong order; expected the header run,group,"), "{}", e);
    let e = err(&format!("a,b\n{}\n", good));
    assert!(e.contains("line 1: unexpected columns") && e.contains(HEADER), "{}", e);
    // Results from before `build` and `idle` read with the first 17 columns.
    let old_head = HEADER.trim_end_matches(",build,idle");
    let old_row = good.trim_end_matches(",abc123def456,0.250");
    let old = parse_results(&format!("{}\n{}\n", old_head, old_row), "D").unwrap();
    assert_eq!((old[0].build.as_str(), old[0].idle), ("unknown", None));
    let new = parse_results(&csv(std::slice::from_ref(&good)), "D").unwrap();
    assert_eq!((new[0].build.as_str(), new[0].idle), ("abc123def456", Some(0.25)));
    let cases: &[(String, &str)] = &[
        (good.replace(",loop,", ",loop,x,"), "20 fields, expected 19"),
        (good.replace(",20,p0,", ",abc,p0,"), "cap='abc' is not a number >= 0"),
        (good.replace(",loop,1,", ",loop,yes,"), "focus='yes' is not 0 or 1"),
        (
            good.replace(",6,1,", ",,1,"),
            "finish and seconds must both be set, or both empty (unfinished)",
        ),
        (good.replace(",10,abc", ",0,abc"), "time_scale must be > 0"),
        (good.replace(",0.250", ",-1"), "idle='-1' is not a number >= 0"),
        (good.replace(",abc123def456,", ",,"), "build is empty"),
        (good.replace(",vanilla-in-vanilla,", ",,"), "variant is empty"),
    ];
    for (bad, want) in cases {
        let e = err(&csv(&[good.clone(), good.clone(), bad.clone()]));
        assert_eq!(e, format!("report: D/results.csv line 4: {}", want), "{}", bad);
    }
}

// ---------------------------------------------------------------------------------------
// Populations and baselines, from the planner's own variants

fn opts() -> PlanOptions {
    PlanOptions { peers: 6, caps: vec![10.0, 200.0], reps: 2, thieves: 3, ..PlanOptions::default() }
}

/// Synthetic results of a planned manifest: every leecher downloads twice, the second time
/// 10 % slower; speed depends on the peer's cap and strategy; p1's third session is still
/// running when the run ends.
fn results_of(m: &Manifest) -> String {
    let factor = |s: Kind| match s {
        Kind::Vanilla => 1.0,
        Kind::Tyrant => 0.5,
        Kind::PropShare => 0.8,
        Kind::Rebel => 0.9,
        Kind::Sybil => 0.7,
        Kind::Thief => 1.25,
    };
    let mut rows = Vec::new();
    for r in &m.runs {
        for p in r.peers.iter().filter(|p| p.role != Role::Seeder) {
            for join in 0..3u32 {
                let t = 3000.0 / (p.up + 10.0) * factor(p.kind) * (1.0 + 0.1 * join as f64);
                let done = join < 2 || p.id != "p1";
                if join == 2 && done {
                    continue;
                }
                let seconds = if done { Some(t) } else { None };
                // row() names runs and groups as the planner does.
                let line =
                    row(&r.variant, r.cap, r.rep, &p.id, p.kind.as_str(), p.focus, join, seconds);
                assert!(line.starts_with(&format!("{},{},", r.name, r.group)));
                rows.push(line);
            }
        }
    }
    csv(&rows)
}

fn planned(preset: &str) -> (Manifest, Vec<Download>) {
    let m = plan(preset, &opts()).unwrap();
    let rows = parse_results(&results_of(&m), "results.csv").unwrap();
    (m, rows)
}

fn variants_of(m: &Manifest) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for r in &m.runs {
        if !v.contains(&r.variant) {
            v.push(r.variant.clone());
        }
    }
    v
}

#[test]
fn measured_populations_per_preset() {
    let (_, rows) = planned("single");
    assert_eq!(measured("tyrant-in-vanilla", &rows), vec![Peers("tyrant".into())]);
    assert_eq!(measured("vanilla-in-vanilla", &rows), vec![Focus, Whole]);
    let (_, rows) = planned("all");
    assert_eq!(measured("tyrant-in-tyrant", &rows), vec![Focus, Whole]);
    let (_, rows) = planned("thief");
    assert_eq!(measured("thief-in-vanilla", &rows), vec![Peers("thief".into())]);
    assert_eq!(
        measured("thieves-in-vanilla", &rows),
        vec![Peers("thief".into()), Peers("vanilla".into())]
    );
    assert_eq!(measured("odd-variant", &rows), vec![Focus, Whole]);
    assert_eq!(split_variant("thieves-in-vanilla"), Some(("thief".into(), "vanilla".into())));
    assert_eq!(split_variant("sybil-in-propshare"), Some(("sybil".into(), "propshare".into())));
    assert_eq!(split_variant("whatever"), None);
}

#[test]
fn baselines_per_preset() {
    let s = |a: &str, b: &str, p: Population| Spec {
        strategy: a.into(),
        baseline: b.into(),
        population: p,
    };
    let vv = "vanilla-in-vanilla";
    let t = || Peers("tyrant".into());
    let expect: &[(&str, Vec<Spec>)] = &[
        ("single", vec![s("tyrant-in-vanilla", vv, t())]),
        ("all", vec![s("tyrant-in-tyrant", vv, Whole)]),
        (
            "rebel",
            vec![
                s("rebel-in-tyrant", "vanilla-in-tyrant", Peers("rebel".into())),
                s("rebel-in-vanilla", vv, Peers("rebel".into())),
            ],
        ),
        (
            "sybil",
            vec![
                s("sybil-in-vanilla", vv, Peers("sybil".into())),
                s("sybil-in-propshare", "vanilla-in-propshare", Peers("sybil".into())),
            ],
        ),
        (
            "propshare",
            vec![
                s("propshare-in-vanilla", vv, Peers("propshare".into())),
                s("propshare-in-propshare", vv, Whole),
                s("tyrant-in-propshare", "propshare-in-propshare", t()),
            ],
        ),
        (
            "thief",
            vec![
                s("thief-in-vanilla", vv, Peers("thief".into())),
                s("thieves-in-vanilla", vv, Peers("thief".into())),
                s("thieves-in-vanilla", vv, Peers("vanilla".into())),
            ],
        ),
    ];
    for (preset, want) in expect {
        let (m, rows) = planned(preset);
        assert_eq!(&comparison_specs(&variants_of(&m), &rows), want, "{}", preset);
    }
}

#[test]
fn several_thieves_are_compared_on_the_same_peer_ids() {
    let (_, rows) = planned("thief");
    let thieves = Spec {
        strategy: "thieves-in-vanilla".into(),
        baseline: "vanilla-in-vanilla".into(),
        population: Peers("thief".into()),
    };
    let c = compare(&rows, &thieves, 200.0, Statistic::Median, 1);
    // Thieves p0 p1 p2 (caps 200 and two background caps), two reps, 2 downloads each.
    assert_eq!((c.groups, c.strat.peers, c.base.peers), (2, 3, 3));
    assert_eq!((c.strat.n, c.base.n, c.strat.unfinished, c.base.unfinished), (12, 12, 2, 2));
    let r = c.ratio.unwrap();
    assert!(r.ratio < 1.0, "thieves are slower here by construction: {:?}", r);
    let others = Spec { population: Peers("vanilla".into()), ..thieves };
    let c = compare(&rows, &others, 200.0, Statistic::Median, 1);
    assert_eq!((c.strat.peers, c.base.peers, c.strat.n, c.base.n), (3, 3, 12, 12));
    // The vanilla peers run the same way in both variants: ratio exactly 1 in each run, so
    // resampling runs cannot move it.
    let r = c.ratio.unwrap();
    assert_eq!((r.ratio, r.lo, r.hi), (1.0, 1.0, 1.0));
}

// ---------------------------------------------------------------------------------------
// Whole reports

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tyrant-study-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `single` by hand: caps 20 and 100, 3 reps, p0 downloads 3 times: the vanilla focus peer
/// takes 200 + 20·rep + 10·join s at cap 20 (100 + 10·rep + 5·join at 100) and the tyrant
/// exactly half; p1 (vanilla, 400 s) has one unfinished session per run.
fn single_by_hand() -> String {
    let mut rows = Vec::new();
    for &cap in &[20.0, 100.0] {
        for rep in 0..3 {
            for (v, focus_strategy, div) in
                [("tyrant-in-vanilla", "tyrant", 2.0), ("vanilla-in-vanilla", "vanilla", 1.0)]
            {
                for join in 0..3 {
                    let k = if cap == 20.0 { 1.0 } else { 0.5 };
                    let t = (200.0 + 20.0 * rep as f64 + 10.0 * join as f64) * k / div;
                    rows.push(row(v, cap, rep, "p0", focus_strategy, true, join, Some(t)));
                }
                rows.push(row(v, cap, rep, "p1", "vanilla", false, 0, Some(400.0)));
                rows.push(row(v, cap, rep, "p1", "vanilla", false, 1, None));
            }
        }
    }
    csv(&rows)
}

#[test]
fn report_of_a_hand_made_single_run() {
    let dir = tmpdir("by-hand");
    std::fs::write(dir.join("results.csv"), single_by_hand()).unwrap();
    let out = report(&dir, false).unwrap();
    // Without a manifest nothing fixed the statistic, and the report says so.
    assert!(out.contains("statistic median (the default: no manifest fixed it)"), "{}", out);
    // The same comparisons, machine-readable, for the reproduction tables.
    let tsv = std::fs::read_to_string(dir.join("comparisons.tsv")).unwrap();
    let row = tsv.lines().find(|l| l.contains("\ttyrant peers\t20\t")).unwrap();
    let cells: Vec<&str> = row.split('\t').collect();
    assert_eq!(
        cells[4..],
        ["3", "9", "9", "0", "0", "230.0000", "115.0000", "median", "2.0000", "-", "-", "runs"]
    );
    println!("{}", out);
    assert_eq!(std::fs::read_to_string(dir.join("report.txt")).unwrap(), out);
    assert!(out.starts_with("swarm report: no manifest.txt, from results.csv alone\n"));
    assert!(out.contains("time scale S = 10: times are nominal"));
    assert!(out.contains("results.csv: 12 runs, 60 downloads (48 finished, 12 unfinished)"));
    // The cells of the first table line that starts with these cells.
    let line = |start: &[&str]| -> Vec<String> {
        out.lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .find(|cells| cells.len() >= start.len() && cells[..start.len()] == *start)
            .unwrap_or_else(|| panic!("no line {:?}", start))
    };
    // Focus times at cap 20: 200 210 220 / 220 230 240 / 240 250 260 → median 230,
    // mean 230, p10 = 200 + 0.8·10 = 208, p90 = 252; the tyrant's are exactly half.
    assert_eq!(
        line(&["tyrant-in-vanilla", "tyrant peers", "20"]),
        [
            "tyrant-in-vanilla",
            "tyrant peers",
            "20",
            "1",
            "9",
            "0",
            "115.0",
            "115.0",
            "104.0",
            "126.0",
            "11.5"
        ]
    );
    assert_eq!(
        line(&["vanilla-in-vanilla", "focus peer", "20"]),
        [
            "vanilla-in-vanilla",
            "focus peer",
            "20",
            "1",
            "9",
            "0",
            "230.0",
            "230.0",
            "208.0",
            "252.0",
            "23.0"
        ]
    );
    // Whole swarm at cap 100: p0 at 100..130 (9 values) + p1 400 ×3, p1 unfinished ×3.
    assert_eq!(line(&["vanilla-in-vanilla", "whole swarm", "100"])[3..6], ["2", "12", "3"]);
    // Three runs are too few for an interval: the table says so instead of printing one.
    let (ci20, ci100) = ("n/a: 3 runs", "n/a: 3 runs");
    assert_eq!(
        line(&["tyrant-in-vanilla vs vanilla-in-vanilla", "tyrant peers", "20"]),
        [
            "tyrant-in-vanilla vs vanilla-in-vanilla",
            "tyrant peers",
            "20",
            "3",
            "9",
            "9",
            "230.0",
            "115.0",
            "2.000",
            ci20,
            "+100.0%",
            "runs"
        ]
    );
    assert_eq!(
        line(&["tyrant-in-vanilla vs vanilla-in-vanilla", "tyrant peers", "100"])[6..],
        ["115.0", "57.5", "2.000", ci100, "+100.0%", "runs"]
    );
    assert!(out.ends_with("figures skipped (--no-figures)\n"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn one_repetition_resamples_downloads_and_missing_sides_are_na() {
    let dir = tmpdir("onerep");
    let mut rows = Vec::new();
    for (join, t) in [100.0, 120.0, 140.0, 160.0].iter().enumerate() {
        rows.push(row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, join as u32, Some(*t)));
        rows.push(row(
            "tyrant-in-vanilla",
            20.0,
            0,
            "p0",
            "tyrant",
            true,
            join as u32,
            Some(t / 4.0),
        ));
    }
    // At cap 50 the tyrant never finished.
    rows.push(row("vanilla-in-vanilla", 50.0, 0, "p0", "vanilla", true, 0, Some(80.0)));
    rows.push(row("tyrant-in-vanilla", 50.0, 0, "p0", "tyrant", true, 0, None));
    std::fs::write(dir.join("results.csv"), csv(&rows)).unwrap();
    let out = report(&dir, false).unwrap();
    let has = |s: &str| {
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ").contains(s))
    };
    assert!(
        has("tyrant-in-vanilla vs vanilla-in-vanilla tyrant peers 20 1 4 4 130.0 32.5 4.000"),
        "{}",
        out
    );
    assert!(has("+300.0% downloads"), "{}", out);
    assert!(has("tyrant peers 50 1 1 0 80.0 - n/a n/a n/a -"), "{}", out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_errors_are_one_clear_line() {
    let dir = tmpdir("errors");
    let e = report(&dir, false).unwrap_err();
    assert!(
        e.starts_with(&format!("report: cannot read {}", dir.join("results.csv").display())),
        "{}",
        e
    );
    let good = row("vanilla-in-vanilla", 20.0, 0, "p0", "vanilla", true, 0, Some(1.0));
    std::fs::write(
        dir.join("results.csv"),
        csv(&[good.clone(), good.replace(",2097152,", ",-5,")]),
    )
    .unwrap();
    let e = report(&dir, false).unwrap_err();
    assert_eq!(
        e,
        format!(
            "report: {} line 3: bytes_down='-5' is not a whole number",
            dir.join("results.csv").display()
        )
    );
    assert!(!e.contains('\n'));
    std::fs::write(dir.join("results.csv"), csv(&[good])).unwrap();
    std::fs::write(dir.join("manifest.txt"), "manifest nonsense\n").unwrap();
    let e = report(&dir, false).unwrap_err();
    assert!(e.starts_with("report: ") && e.contains("manifest.txt"), "{}", e);
    assert!(cli(&[]).unwrap_err().contains("no DIR given"));
    assert!(cli(&["a".into(), "b".into()]).unwrap_err().contains("unexpected 'b'"));
    assert!(cli(&["--figures".into()]).unwrap_err().contains("unexpected '--figures'"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_preset_reports_with_its_manifest_and_draws_figures() {
    let gnuplot = have_gnuplot();
    if !gnuplot {
        println!("NOTE: gnuplot is not on PATH: checking tables only, no figures");
    }
    let want: &[(&str, &[&str])] = &[
        ("single", &["time-tyrant-in-vanilla-vs-vanilla-in-vanilla-tyrant", "ratios"]),
        ("all", &["cdf-tyrant-in-tyrant-vs-vanilla-in-vanilla-whole", "ratios"]),
        (
            "rebel",
            &[
                "time-rebel-in-tyrant-vs-vanilla-in-tyrant-rebel",
                "time-rebel-in-vanilla-vs-vanilla-in-vanilla-rebel",
                "ratios",
            ],
        ),
        (
            "sybil",
            &[
                "time-sybil-in-vanilla-vs-vanilla-in-vanilla-sybil",
                "time-sybil-in-propshare-vs-vanilla-in-propshare-sybil",
                "ratios",
            ],
        ),
        (
            "propshare",
            &[
                "time-propshare-in-vanilla-vs-vanilla-in-vanilla-propshare",
                "cdf-propshare-in-propshare-vs-vanilla-in-vanilla-whole",
                "time-tyrant-in-propshare-vs-propshare-in-propshare-tyrant",
                "ratios",
            ],
        ),
        (
            "thief",
            &[
                "time-thief-in-vanilla-vs-vanilla-in-vanilla-thief",
                "time-thieves-in-vanilla-vs-vanilla-in-vanilla-thief",
                "time-thieves-in-vanilla-vs-vanilla-in-vanilla-vanilla",
                "ratios",
            ],
        ),
    ];
    for (preset, figs) in want {
        let (m, _) = planned(preset);
        let dir = tmpdir(&format!("preset-{}", preset));
        std::fs::write(dir.join("manifest.txt"), m.to_text()).unwrap();
        std::fs::write(dir.join("results.csv"), results_of(&m)).unwrap();
        let out = report(&dir, true).unwrap();
        let head = format!(
            "swarm report: {} (preset {}, seed 1, {} runs planned)\n",
            m.name,
            preset,
            m.runs.len()
        );
        assert!(out.starts_with(&head), "{}", out);
        assert!(out.contains(&format!("({} resamples, seed 1)", RESAMPLES)), "{}", out);
        assert!(!out.contains("n/a  n/a"), "every comparison has data: {}", out);
        let figdir = dir.join("figures");
        if !gnuplot {
            assert!(out.contains("figures skipped: gnuplot is not on PATH"));
            continue;
        }
        let made: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).map(str::trim).collect();
        let mut expect = Vec::new();
        for f in figs.iter() {
            for ext in ["png", "svg"] {
                let p = figdir.join(format!("{}.{}", f, ext));
                assert!(
                    std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) > 0,
                    "{} missing",
                    p.display()
                );
                expect.push(p.display().to_string());
            }
        }
        assert_eq!(made, expect, "{}", out);
        // Anyone can redraw a figure from anywhere: the script finds its own directory.
        let f = figdir.join(format!("{}.png", figs[0]));
        std::fs::remove_file(&f).unwrap();
        let st = Command::new("gnuplot")
            .arg(figdir.join(format!("{}.gp", figs[0])))
            .current_dir(std::env::temp_dir())
            .status()
            .unwrap();
        assert!(st.success() && std::fs::metadata(&f).unwrap().len() > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
