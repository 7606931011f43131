//! The report's text: a header naming the experiment, the download-time table per variant,
//! population and cap, and the paired comparisons with their intervals.

use super::compare::Analysis;
use super::stats::{Resample, MIN_RUNS};
use super::{Download, RESAMPLES};
use crate::manifest::Manifest;
use std::collections::BTreeSet;
use std::fmt::Write as _;

fn secs(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{:.1}", x))
}

/// Aligned columns: the first `left` are text (left-aligned), the rest right-aligned.
fn table(head: &[&str], rows: &[Vec<String>], left: usize) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = head.iter().map(|h| h.to_string()).collect();
    for r in std::iter::once(&head).chain(rows) {
        let cells: Vec<String> = r
            .iter()
            .enumerate()
            .map(
                |(i, c)| {
                    if i < left {
                        format!("{:<1$}", c, w[i])
                    } else {
                        format!("{:>1$}", c, w[i])
                    }
                },
            )
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The report's text: header, statistics per variant and cap, paired comparisons.
pub fn render(a: &Analysis, rows: &[Download], manifest: Option<&Manifest>, seed: u64) -> String {
    let mut o = String::new();
    match manifest {
        Some(m) => {
            let _ = writeln!(
                o,
                "swarm report: {} (preset {}, seed {}, {} runs planned)",
                m.name,
                m.preset,
                m.seed,
                m.runs.len()
            );
        }
        None => o.push_str("swarm report: no manifest.txt, from results.csv alone\n"),
    }
    let mut scales: Vec<f64> = rows.iter().map(|d| d.time_scale).collect();
    scales.sort_by(|a, b| a.total_cmp(b));
    scales.dedup();
    let s: Vec<String> = scales.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(
        o,
        "time scale S = {}: times are nominal seconds = real seconds × S",
        s.join(", ")
    );
    if let Some(m) = manifest {
        if scales != [m.time_scale] {
            let _ = writeln!(o, "note: the manifest says time_scale={}", m.time_scale);
        }
    }
    let runs: BTreeSet<&str> = rows.iter().map(|d| d.run.as_str()).collect();
    let done = rows.iter().filter(|d| d.seconds.is_some()).count();
    let _ = writeln!(
        o,
        "results.csv: {} runs, {} downloads ({} finished, {} unfinished)",
        runs.len(),
        rows.len(),
        done,
        rows.len() - done
    );

    let builds: BTreeSet<&str> = rows.iter().map(|d| d.build.as_str()).collect();
    let builds: Vec<&str> = builds.into_iter().collect();
    let mut idle: Vec<(&str, f64)> =
        rows.iter().filter_map(|d| Some((d.run.as_str(), d.idle?))).collect();
    idle.dedup();
    let idle: Vec<f64> = idle.into_iter().map(|(_, x)| x * 100.0).collect();
    let _ = writeln!(
        o,
        "client build: {}{}; machine check, CPU idle per run: {}\n",
        builds.join(", "),
        if builds.len() > 1 { " (MIXED: runs of different code)" } else { "" },
        match (super::median(&idle), idle.iter().copied().reduce(f64::min)) {
            (Some(m), Some(lo)) =>
                format!("median {:.0} %, lowest {:.0} % ({} runs)", m, lo, idle.len()),
            _ => "not recorded".into(),
        }
    );
    o.push_str("DOWNLOAD TIMES (nominal s, completed downloads; unfinished = still running at the end, excluded;\nrounds = median / 10 s, the choking rounds a median download lasts)\n");
    let t: Vec<Vec<String>> = a
        .stats
        .iter()
        .map(|r| {
            let s = &r.summary;
            vec![
                r.variant.clone(),
                r.population.label(),
                r.cap.to_string(),
                s.peers.to_string(),
                s.n.to_string(),
                s.unfinished.to_string(),
                secs(s.median),
                secs(s.mean),
                secs(s.p10),
                secs(s.p90),
                s.median.map_or("-".into(), |m| format!("{:.1}", m / 10.0)),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            "variant",
            "population",
            "cap",
            "peers",
            "n",
            "unfin",
            "median",
            "mean",
            "p10",
            "p90",
            "rounds",
        ],
        &t,
        2,
    ));

    let stat = a.compared.iter().find_map(|c| c.ratio).map_or("median", |r| r.stat.name());
    let fixed = match manifest {
        Some(m) if m.statistic.as_deref() == Some(stat) => "fixed in the manifest before the runs",
        _ => "the default: no manifest fixed it",
    };
    let _ = writeln!(
        o,
        "\nPAIRED COMPARISONS: statistic {} ({}); > 1: strategy faster.\n\
         median = median(baseline)/median(strategy) over all downloads; mean = mean/mean;\n\
         geomean = geometric mean over runs of each run's median/median.\n\
         95% CI: percentile bootstrap over runs ({} resamples, seed {}): whole pairing groups\n\
         resampled, each with all its downloads on both sides, so downloads are never taken as\n\
         independent. With fewer than {} runs there is no interval (n/a): a bootstrap over so\n\
         few runs reads far narrower than their spread allows.",
        stat, fixed, RESAMPLES, seed, MIN_RUNS
    );
    let t: Vec<Vec<String>> = a
        .compared
        .iter()
        .map(|c| {
            let (ratio, ci, up, by) = match c.ratio {
                Some(r) => (
                    format!("{:.3}", r.ratio),
                    r.interval().map_or(format!("n/a: {} runs", r.runs), |(lo, hi)| {
                        format!("[{:.3}, {:.3}]", lo, hi)
                    }),
                    format!("{:+.1}%", (r.ratio - 1.0) * 100.0),
                    match r.by {
                        Resample::Runs => "runs".to_string(),
                        Resample::Downloads => "downloads".to_string(),
                    },
                ),
                None => ("n/a".into(), "n/a".into(), "n/a".into(), "-".into()),
            };
            vec![
                format!("{} vs {}", c.spec.strategy, c.spec.baseline),
                c.spec.population.label(),
                c.cap.to_string(),
                c.groups.to_string(),
                c.base.n.to_string(),
                c.strat.n.to_string(),
                secs(c.base.median),
                secs(c.strat.median),
                ratio,
                ci,
                up,
                by,
            ]
        })
        .collect();
    if t.is_empty() {
        o.push_str("(no strategy variant with a baseline in these results)\n");
    } else {
        o.push_str(&table(
            &[
                "strategy vs baseline",
                "population",
                "cap",
                "runs",
                "n base",
                "n strat",
                "med base",
                "med strat",
                stat,
                "95% CI",
                "speed-up",
                "CI by",
            ],
            &t,
            2,
        ));
    }
    o
}
