//! `tyrant-lab report DIR`: turns the runner's `DIR/results.csv` (and
//! `DIR/manifest.txt` when present) into download-time statistics per variant and cap, the
//! paired strategy-vs-baseline comparisons with bootstrap confidence intervals, and gnuplot
//! figures. This file owns the CSV reader and the entry points; the statistics are in
//! study/stats.rs, the population and baseline rules in study/compare.rs, the text in
//! study/text.rs and the gnuplot figures in study/figures.rs; main.rs only calls `cli`.
//!
//! Choices, so that the numbers can be checked by hand:
//! - Times are nominal seconds (real × time scale). Downloads still running when the run
//!   ended (empty `finish`) are censored: counted as "unfinished", never in a statistic.
//! - Quantiles are Hyndman & Fan's type 7 (R's default, NumPy's "linear"); the median is the
//!   mean of the two middle values for even n.
//! - The key number is ratio = median(baseline) / median(strategy): > 1 means the strategy
//!   downloads faster. Its 95 % CI is a percentile bootstrap (2000 resamples, seeded). With
//!   several repetitions it resamples whole pairing groups, so a drawn repetition brings its
//!   baseline and its strategy downloads together and the shared background caps and start
//!   times cancel as they do in the point estimate; with one repetition there is nothing
//!   to pair over, so downloads are resampled within each variant.

use crate::manifest::Manifest;
use std::fmt::Write as _;
use std::path::Path;

mod compare;
mod figures;
mod stats;
mod text;
pub use compare::{
    analyse, compare, comparison_specs, measured, split_variant, Analysis, Compared, Population,
    Spec, StatRow,
};
pub use figures::have_gnuplot;
pub use stats::{
    mean, median, quantile, ratio_ci, summarize, Cluster, Ratio, Resample, Statistic, TimeStats,
};
pub use text::render;

/// The header `tyrant-lab run` writes (one definition, in runner.rs); columns must come
/// in exactly this order.
pub const HEADER: &str = crate::runner::CSV_HEADER;

/// Bootstrap resamples per comparison.
pub const RESAMPLES: usize = 2000;

/// Bootstrap seed when there is no manifest to take the experiment's seed from.
const DEFAULT_SEED: u64 = 1;

/// One download session of one peer (a row of results.csv).
#[derive(Clone, Debug, PartialEq)]
pub struct Download {
    pub run: String,
    pub group: String,
    pub variant: String,
    pub rep: usize,
    pub cap: f64,
    pub peer: String,
    pub strategy: String,
    pub role: String,
    pub focus: bool,
    pub up: f64,
    pub join: u32,
    pub start: f64,
    /// None: still downloading when the run ended (censored).
    pub finish: Option<f64>,
    pub seconds: Option<f64>,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub time_scale: f64,
    /// The client's commit (`-dirty`: uncommitted changes); `unknown` before it was recorded.
    pub build: String,
    /// CPU idle share of the machine over the run, when recorded.
    pub idle: Option<f64>,
}

/// Parse results.csv; `path` only names the file in errors
/// (`report: PATH line N: what is wrong`).
pub fn parse_results(text: &str, path: &str) -> Result<Vec<Download>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (hn, head) = lines
        .next()
        .ok_or_else(|| format!("report: {}: empty file, expected the header {}", path, HEADER))?;
    // Results written before `build` and `idle` existed have the first 17 columns.
    let old = HEADER.rsplitn(3, ',').nth(2).unwrap_or(HEADER);
    let cols = if head.trim() == old { 17 } else { HEADER.split(',').count() };
    if head.trim() != HEADER && head.trim() != old {
        let mut got: Vec<&str> = head.split(',').map(str::trim).collect();
        let mut want: Vec<&str> = HEADER.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        let what = if got == want { "columns in the wrong order" } else { "unexpected columns" };
        return Err(format!(
            "report: {} line {}: {}; expected the header {}",
            path, hn, what, HEADER
        ));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        out.push(parse_row(line, cols).map_err(|e| format!("report: {} line {}: {}", path, n, e))?);
    }
    if out.is_empty() {
        return Err(format!("report: {}: no downloads after the header", path));
    }
    Ok(out)
}

fn parse_row(line: &str, n: usize) -> Result<Download, String> {
    let cols: Vec<&str> = HEADER.split(',').take(n).collect();
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != cols.len() {
        return Err(format!("{} fields, expected {}", f.len(), cols.len()));
    }
    let num = |i: usize| match f[i].parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{}='{}' is not a number >= 0", cols[i], f[i])),
    };
    let int = |i: usize| {
        f[i].parse::<u64>().map_err(|_| format!("{}='{}' is not a whole number", cols[i], f[i]))
    };
    let text = |i: usize| {
        if f[i].is_empty() {
            Err(format!("{} is empty", cols[i]))
        } else {
            Ok(f[i].to_string())
        }
    };
    let maybe = |i: usize| {
        if f[i].is_empty() {
            Ok(None)
        } else {
            num(i).map(Some)
        }
    };
    let (finish, seconds) = (maybe(12)?, maybe(13)?);
    if finish.is_some() != seconds.is_some() {
        return Err("finish and seconds must both be set, or both empty (unfinished)".into());
    }
    let focus = match f[8] {
        "0" => false,
        "1" => true,
        v => return Err(format!("focus='{}' is not 0 or 1", v)),
    };
    let time_scale = num(16)?;
    if time_scale <= 0.0 {
        return Err("time_scale must be > 0".into());
    }
    Ok(Download {
        run: text(0)?,
        group: text(1)?,
        variant: text(2)?,
        rep: int(3)? as usize,
        cap: num(4)?,
        peer: text(5)?,
        strategy: text(6)?,
        role: text(7)?,
        focus,
        up: num(9)?,
        join: int(10)? as u32,
        start: num(11)?,
        finish,
        seconds,
        bytes_up: int(14)?,
        bytes_down: int(15)?,
        time_scale,
        build: if n > 17 { text(17)? } else { "unknown".into() },
        idle: if n > 18 { maybe(18)? } else { None },
    })
}

/// Read DIR, print nothing, write DIR/report.txt and (if `figures` and gnuplot is on PATH)
/// DIR/figures/; returns the report's text, figure list included.
pub fn report(dir: &Path, with_figures: bool) -> Result<String, String> {
    let csv = dir.join("results.csv");
    let text = std::fs::read_to_string(&csv)
        .map_err(|e| format!("report: cannot read {}: {}", csv.display(), e))?;
    let rows = parse_results(&text, &csv.display().to_string())?;
    let mpath = dir.join("manifest.txt");
    let manifest = match std::fs::read_to_string(&mpath) {
        Ok(t) => Some(
            Manifest::from_text(&t).map_err(|e| format!("report: {}: {}", mpath.display(), e))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("report: cannot read {}: {}", mpath.display(), e)),
    };
    let seed = manifest.as_ref().map_or(DEFAULT_SEED, |m| m.seed);
    let stat = match manifest.as_ref().and_then(|m| m.statistic.as_deref()) {
        Some(s) => Statistic::parse(s)?,
        None => Statistic::Median,
    };
    let a = analyse(&rows, stat, seed);
    let mut out = render(&a, &rows, manifest.as_ref(), seed);
    let figdir = dir.join("figures");
    if !with_figures {
        out.push_str("\nfigures skipped (--no-figures)\n");
    } else if !have_gnuplot() {
        out.push_str("\nfigures skipped: gnuplot is not on PATH\n");
    } else {
        let (made, failed) = figures::draw(&a, &figdir)?;
        let _ =
            writeln!(out, "\nfigures (regenerate with `gnuplot {}/NAME.gp`):", figdir.display());
        for p in &made {
            let _ = writeln!(out, "  {}", p.display());
        }
        for f in &failed {
            let _ = writeln!(out, "  {}", f);
        }
    }
    let rp = dir.join("report.txt");
    std::fs::write(&rp, &out)
        .map_err(|e| format!("report: cannot write {}: {}", rp.display(), e))?;
    let tp = dir.join("comparisons.tsv");
    std::fs::write(&tp, comparisons_tsv(&a))
        .map_err(|e| format!("report: cannot write {}: {}", tp.display(), e))?;
    Ok(out)
}

/// The paired comparisons as tab-separated columns, for tables built from several
/// experiments (reproduction/tables.py): the same numbers as the report's text.
pub fn comparisons_tsv(a: &Analysis) -> String {
    let mut o = String::from("strategy\tbaseline\tpopulation\tcap\truns\tn_base\tn_strat\tunfin_base\tunfin_strat\tmedian_base\tmedian_strat\tstatistic\tvalue\tlo\thi\tby\n");
    let f = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{:.4}", v));
    for c in &a.compared {
        let r = c.ratio;
        let by = r.map_or("-", |r| if r.by == Resample::Runs { "runs" } else { "downloads" });
        let _ = writeln!(
            o,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            c.spec.strategy,
            c.spec.baseline,
            c.spec.population.label(),
            c.cap,
            c.groups,
            c.base.n,
            c.strat.n,
            c.base.unfinished,
            c.strat.unfinished,
            f(c.base.median),
            f(c.strat.median),
            r.map_or("-", |r| r.stat.name()),
            f(r.map(|r| r.ratio)),
            f(r.and_then(|r| r.interval()).map(|i| i.0)),
            f(r.and_then(|r| r.interval()).map(|i| i.1)),
            by
        );
    }
    o
}

/// `tyrant-lab report DIR [--no-figures]`: the words after `report`.
pub fn cli(words: &[String]) -> Result<(), String> {
    let mut figures = true;
    let mut dir = None;
    for w in words {
        match w.as_str() {
            "--no-figures" => figures = false,
            _ if w.starts_with('-') || dir.is_some() => {
                return Err(format!(
                    "report: unexpected '{}'; usage: tyrant-lab report DIR [--no-figures]",
                    w
                ))
            }
            _ => dir = Some(w),
        }
    }
    let dir = dir.ok_or("report: no DIR given; usage: tyrant-lab report DIR [--no-figures]")?;
    print!("{}", report(Path::new(dir), figures)?);
    Ok(())
}

#[cfg(test)]
mod tests;
