//! `tyrant swarm report DIR` (issue 4 item 6): turns the runner's `DIR/results.csv` (and
//! `DIR/manifest.txt` when present) into download-time statistics per variant and cap, the
//! paired strategy-vs-baseline comparisons with bootstrap confidence intervals, and gnuplot
//! figures. This file owns the CSV reader, the statistics, the population and baseline
//! rules and the figure scripts; main.rs only dispatches to `cli`.
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
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use tyrant::rng::Rng;

/// The header `tyrant swarm run` writes; columns must come in exactly this order.
pub const HEADER: &str = "run,group,variant,rep,cap,peer,strategy,role,focus,up,join,start,finish,seconds,bytes_up,bytes_down,time_scale";

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
}

/// Parse results.csv; `path` only names the file in errors
/// (`report: PATH line N: what is wrong`).
pub fn parse_results(text: &str, path: &str) -> Result<Vec<Download>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty());
    let (hn, head) = lines.next().ok_or_else(|| {
        format!(
            "report: {}: empty file, expected the header {}",
            path, HEADER
        )
    })?;
    if head.trim() != HEADER {
        let mut got: Vec<&str> = head.split(',').map(str::trim).collect();
        let mut want: Vec<&str> = HEADER.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        let what = if got == want {
            "columns in the wrong order"
        } else {
            "unexpected columns"
        };
        return Err(format!(
            "report: {} line {}: {}; expected the header {}",
            path, hn, what, HEADER
        ));
    }
    let mut out = Vec::new();
    for (n, line) in lines {
        out.push(parse_row(line).map_err(|e| format!("report: {} line {}: {}", path, n, e))?);
    }
    if out.is_empty() {
        return Err(format!("report: {}: no downloads after the header", path));
    }
    Ok(out)
}

fn parse_row(line: &str) -> Result<Download, String> {
    let cols: Vec<&str> = HEADER.split(',').collect();
    let f: Vec<&str> = line.split(',').map(str::trim).collect();
    if f.len() != cols.len() {
        return Err(format!("{} fields, expected {}", f.len(), cols.len()));
    }
    let num = |i: usize| match f[i].parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{}='{}' is not a number >= 0", cols[i], f[i])),
    };
    let int = |i: usize| {
        f[i].parse::<u64>()
            .map_err(|_| format!("{}='{}' is not a whole number", cols[i], f[i]))
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
    })
}

// ---------------------------------------------------------------------------------------
// Statistics

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s
}

pub fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

/// The middle value; the mean of the two middle values for even n. Linear-time selection
/// rather than a sort: the bootstrap takes thousands of medians.
pub fn median(v: &[f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let mut s = v.to_vec();
    let hi = *s.select_nth_unstable_by(n / 2, |a, b| a.total_cmp(b)).1;
    if n % 2 == 1 {
        return Some(hi);
    }
    // After the selection the lower middle value is the largest of the left part.
    let lo = s[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lo + hi) / 2.0)
}

/// Quantile p ∈ [0, 1], type 7: with the values sorted x₀ ≤ … ≤ xₙ₋₁ and h = (n−1)·p,
/// x⌊h⌋ + (h − ⌊h⌋)·(x⌊h⌋₊₁ − x⌊h⌋). None for no values or p outside [0, 1].
pub fn quantile(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() || !(0.0..=1.0).contains(&p) {
        return None;
    }
    let s = sorted(v);
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    Some(s[lo] + (h - lo as f64) * (s[hi] - s[lo]))
}

/// One pairing group's completed download times: (baseline, strategy).
pub type Cluster = (Vec<f64>, Vec<f64>);

/// What the bootstrap resampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Two-stage: pairing groups (repetitions) with replacement, keeping each group's two
    /// sides together, then downloads with replacement within each drawn group and side.
    /// Resampling groups alone would give a degenerate interval with the 2–5 repetitions
    /// an experiment affords; the second stage adds the within-run spread (conservative).
    Reps,
    /// One repetition only: downloads, within each variant independently.
    Downloads,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    /// median(baseline) / median(strategy) over all clusters.
    pub ratio: f64,
    /// 2.5 % and 97.5 % percentiles of the bootstrap ratios.
    pub lo: f64,
    pub hi: f64,
    pub by: Resample,
    /// Resamples with data on both sides (the others have no ratio and are dropped).
    pub resamples: usize,
}

fn ratio_of(base: &[f64], strat: &[f64]) -> Option<f64> {
    let (b, s) = (median(base)?, median(strat)?);
    if s > 0.0 {
        Some(b / s)
    } else {
        None
    }
}

/// The paired ratio and its percentile-bootstrap 95 % CI (see the file comment); None when
/// one side has no completed download.
pub fn ratio_ci(clusters: &[Cluster], resamples: usize, seed: u64) -> Option<Ratio> {
    let base: Vec<f64> = clusters.iter().flat_map(|c| c.0.iter().copied()).collect();
    let strat: Vec<f64> = clusters.iter().flat_map(|c| c.1.iter().copied()).collect();
    let ratio = ratio_of(&base, &strat)?;
    let by = if clusters.len() >= 2 {
        Resample::Reps
    } else {
        Resample::Downloads
    };
    let mut rng = Rng::new(seed);
    let mut draws = Vec::with_capacity(resamples);
    let (mut b, mut s) = (Vec::new(), Vec::new());
    for _ in 0..resamples {
        b.clear();
        s.clear();
        match by {
            Resample::Reps => {
                for _ in 0..clusters.len() {
                    let c = &clusters[rng.below(clusters.len() as u64) as usize];
                    for _ in 0..c.0.len() {
                        b.push(c.0[rng.below(c.0.len() as u64) as usize]);
                    }
                    for _ in 0..c.1.len() {
                        s.push(c.1[rng.below(c.1.len() as u64) as usize]);
                    }
                }
            }
            Resample::Downloads => {
                for _ in 0..base.len() {
                    b.push(base[rng.below(base.len() as u64) as usize]);
                }
                for _ in 0..strat.len() {
                    s.push(strat[rng.below(strat.len() as u64) as usize]);
                }
            }
        }
        if let Some(r) = ratio_of(&b, &s) {
            draws.push(r);
        }
    }
    Some(Ratio {
        ratio,
        lo: quantile(&draws, 0.025)?,
        hi: quantile(&draws, 0.975)?,
        by,
        resamples: draws.len(),
    })
}

/// n, unfinished and the spread of completed download times of some rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeStats {
    /// Distinct peer ids among the rows.
    pub peers: usize,
    pub n: usize,
    pub unfinished: usize,
    pub median: Option<f64>,
    pub mean: Option<f64>,
    pub p10: Option<f64>,
    pub p90: Option<f64>,
}

pub fn summarize(rows: &[&Download]) -> TimeStats {
    let t: Vec<f64> = rows.iter().filter_map(|d| d.seconds).collect();
    let peers: BTreeSet<&str> = rows.iter().map(|d| d.peer.as_str()).collect();
    TimeStats {
        peers: peers.len(),
        n: t.len(),
        unfinished: rows.len() - t.len(),
        median: median(&t),
        mean: mean(&t),
        p10: quantile(&t, 0.1),
        p90: quantile(&t, 0.9),
    }
}

// ---------------------------------------------------------------------------------------
// Populations and baselines

/// `FOCUS-in-BACKGROUND` as two strategy names (`thieves` is the plural of `thief`); None
/// for a variant of another shape.
pub fn split_variant(v: &str) -> Option<(String, String)> {
    let (x, b) = v.split_once("-in-")?;
    let x = if x == "thieves" { "thief" } else { x };
    if x.is_empty() || b.is_empty() {
        None
    } else {
        Some((x.to_string(), b.to_string()))
    }
}

/// Whose downloads a statistic is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Population {
    /// The measured peer (leecher p0).
    Focus,
    /// Every leecher.
    Whole,
    /// The peers that run this strategy in the strategy variant — and, in its baseline,
    /// the same peer ids, so that caps and start times match.
    Strategy(String),
}

impl Population {
    pub fn label(&self) -> String {
        match self {
            Population::Focus => "focus peer".into(),
            Population::Whole => "whole swarm".into(),
            Population::Strategy(s) => format!("{} peers", s),
        }
    }

    fn slug(&self) -> &str {
        match self {
            Population::Focus => "focus",
            Population::Whole => "whole",
            Population::Strategy(s) => s,
        }
    }

    /// The rows of `variant` (peer ids resolved in `defined_in`) this population takes.
    fn pick<'a>(&self, rows: &'a [Download], defined_in: &str, variant: &str) -> Vec<&'a Download> {
        let ids: BTreeSet<&str> = match self {
            Population::Strategy(s) => peers_with(rows, defined_in, s),
            _ => BTreeSet::new(),
        };
        rows.iter()
            .filter(|d| d.variant == variant)
            .filter(|d| match self {
                Population::Focus => d.focus,
                Population::Whole => true,
                Population::Strategy(_) => ids.contains(d.peer.as_str()),
            })
            .collect()
    }
}

fn peers_with<'a>(rows: &'a [Download], variant: &str, strategy: &str) -> BTreeSet<&'a str> {
    rows.iter()
        .filter(|d| d.variant == variant && d.strategy == strategy)
        .map(|d| d.peer.as_str())
        .collect()
}

/// The populations section 2 prints for a variant: `X-in-B` (X ≠ B) the X peers, and when
/// there are several of them (`thieves-in-vanilla`) the B peers too; `X-in-X` and variants
/// of another shape the focus peer and the whole swarm.
pub fn measured(variant: &str, rows: &[Download]) -> Vec<Population> {
    match split_variant(variant) {
        Some((x, b)) if x != b => {
            let many = peers_with(rows, variant, &x).len() > 1;
            let mut p = vec![Population::Strategy(x)];
            if many {
                p.push(Population::Strategy(b));
            }
            p
        }
        _ => vec![Population::Focus, Population::Whole],
    }
}

/// One paired comparison: `population` in `strategy` against the same peers in `baseline`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub strategy: String,
    pub baseline: String,
    pub population: Population,
}

impl Spec {
    fn slug(&self) -> String {
        format!(
            "{}-vs-{}-{}",
            self.strategy,
            self.baseline,
            self.population.slug()
        )
    }
}

/// The comparisons of a set of variants: `X-in-B` (X ≠ vanilla, X ≠ B) against
/// `vanilla-in-B`, else `B-in-B`, on the X peers (and on the B peers when there are several
/// X peers: a thief crowd's harm to the others); `X-in-X` (X ≠ vanilla) against
/// `vanilla-in-vanilla` over the whole swarm. Vanilla-focus variants are baselines only.
pub fn comparison_specs(variants: &[String], rows: &[Download]) -> Vec<Spec> {
    let has = |v: &str| variants.iter().any(|w| w == v);
    let mut out = Vec::new();
    for v in variants {
        let (x, b) = match split_variant(v) {
            Some(p) => p,
            None => continue,
        };
        if x == "vanilla" {
            continue;
        }
        let spec = |baseline: String, population| Spec {
            strategy: v.clone(),
            baseline,
            population,
        };
        if x == b {
            out.push(spec("vanilla-in-vanilla".into(), Population::Whole));
            continue;
        }
        let vanilla = format!("vanilla-in-{}", b);
        let own = format!("{}-in-{}", b, b);
        let baseline = if !has(&vanilla) && has(&own) {
            own
        } else {
            vanilla
        };
        for p in measured(v, rows) {
            out.push(spec(baseline.clone(), p));
        }
    }
    out
}

/// One comparison at one cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Compared {
    pub spec: Spec,
    pub cap: f64,
    /// Pairing groups present in both variants at this cap.
    pub groups: usize,
    pub base: TimeStats,
    pub strat: TimeStats,
    pub base_times: Vec<f64>,
    pub strat_times: Vec<f64>,
    pub ratio: Option<Ratio>,
}

/// FNV-1a: a stable per-comparison seed, so adding a comparison does not move the others'
/// intervals.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `spec` at `cap`, over the pairing groups present in both variants (a group whose
/// baseline or strategy run left no row cannot be paired). The bootstrap seed mixes the
/// experiment's seed with the comparison's name.
pub fn compare(rows: &[Download], spec: &Spec, cap: f64, seed: u64) -> Compared {
    let at_cap = |v: &str| -> Vec<&Download> {
        spec.population
            .pick(rows, &spec.strategy, v)
            .into_iter()
            .filter(|d| d.cap == cap)
            .collect()
    };
    let (strat, base) = (at_cap(&spec.strategy), at_cap(&spec.baseline));
    let groups_of = |v: &str| -> BTreeSet<String> {
        rows.iter()
            .filter(|d| d.variant == v && d.cap == cap)
            .map(|d| d.group.clone())
            .collect()
    };
    let groups: Vec<String> = groups_of(&spec.strategy)
        .intersection(&groups_of(&spec.baseline))
        .cloned()
        .collect();
    let paired = |d: &&Download| groups.contains(&d.group);
    let strat: Vec<&Download> = strat.into_iter().filter(paired).collect();
    let base: Vec<&Download> = base.into_iter().filter(paired).collect();
    let times = |v: &[&Download], g: &str| -> Vec<f64> {
        v.iter()
            .filter(|d| d.group == g)
            .filter_map(|d| d.seconds)
            .collect()
    };
    let clusters: Vec<Cluster> = groups
        .iter()
        .map(|g| (times(&base, g), times(&strat, g)))
        .collect();
    let key = format!("{} cap {}", spec.slug(), cap);
    Compared {
        spec: spec.clone(),
        cap,
        groups: groups.len(),
        base: summarize(&base),
        strat: summarize(&strat),
        base_times: base.iter().filter_map(|d| d.seconds).collect(),
        strat_times: strat.iter().filter_map(|d| d.seconds).collect(),
        ratio: ratio_ci(&clusters, RESAMPLES, seed ^ fnv(&key)),
    }
}

/// A section-2 row.
#[derive(Clone, Debug, PartialEq)]
pub struct StatRow {
    pub variant: String,
    pub cap: f64,
    pub population: Population,
    pub summary: TimeStats,
}

/// Everything the tables and figures show.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    /// In order of first appearance in results.csv (the runner's manifest order).
    pub variants: Vec<String>,
    pub caps: Vec<f64>,
    pub stats: Vec<StatRow>,
    pub compared: Vec<Compared>,
}

pub fn analyse(rows: &[Download], seed: u64) -> Analysis {
    let mut variants: Vec<String> = Vec::new();
    for d in rows {
        if !variants.contains(&d.variant) {
            variants.push(d.variant.clone());
        }
    }
    let mut caps: Vec<f64> = rows.iter().map(|d| d.cap).collect();
    caps.sort_by(|a, b| a.total_cmp(b));
    caps.dedup();
    let mut stats = Vec::new();
    for v in &variants {
        for p in measured(v, rows) {
            let picked = p.pick(rows, v, v);
            for &cap in &caps {
                let at: Vec<&Download> = picked.iter().copied().filter(|d| d.cap == cap).collect();
                if !at.is_empty() {
                    stats.push(StatRow {
                        variant: v.clone(),
                        cap,
                        population: p.clone(),
                        summary: summarize(&at),
                    });
                }
            }
        }
    }
    let mut compared = Vec::new();
    for spec in comparison_specs(&variants, rows) {
        for &cap in &caps {
            compared.push(compare(rows, &spec, cap, seed));
        }
    }
    Analysis {
        variants,
        caps,
        stats,
        compared,
    }
}

// ---------------------------------------------------------------------------------------
// Text

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
            .map(|(i, c)| {
                if i < left {
                    format!("{:<1$}", c, w[i])
                } else {
                    format!("{:>1$}", c, w[i])
                }
            })
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
        "results.csv: {} runs, {} downloads ({} finished, {} unfinished)\n",
        runs.len(),
        rows.len(),
        done,
        rows.len() - done
    );

    o.push_str("DOWNLOAD TIMES (nominal s, completed downloads; unfinished = still running at the end, excluded)\n");
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
        ],
        &t,
        2,
    ));

    let _ = writeln!(
        o,
        "\nPAIRED COMPARISONS (ratio = median(baseline) / median(strategy), > 1: strategy faster;\n\
         95% CI: percentile bootstrap, {} resamples, seed {}; CI by reps = two-stage: pairing\n\
         groups resampled with both sides kept together, then downloads within each group;\n\
         downloads = one repetition only, downloads resampled per variant)",
        RESAMPLES, seed
    );
    let t: Vec<Vec<String>> = a
        .compared
        .iter()
        .map(|c| {
            let (ratio, ci, up, by) = match c.ratio {
                Some(r) => (
                    format!("{:.3}", r.ratio),
                    format!("[{:.3}, {:.3}]", r.lo, r.hi),
                    format!("{:+.1}%", (r.ratio - 1.0) * 100.0),
                    match r.by {
                        Resample::Reps => "reps".to_string(),
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
                "reps",
                "n base",
                "n strat",
                "med base",
                "med strat",
                "ratio",
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

// ---------------------------------------------------------------------------------------
// Figures

/// Is gnuplot on PATH?
pub fn have_gnuplot() -> bool {
    Command::new("gnuplot")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A script that draws `NAME.png` and `NAME.svg` from data files beside it, from any working
/// directory (`ARG0` is the script's path as given to gnuplot).
fn gp_script(name: &str, height: usize, body: &str) -> String {
    let file = format!("{}.gp", name);
    format!(
        "# Regenerate with `gnuplot PATH/TO/{file}`: writes {name}.png and {name}.svg beside it.\n\
         if (exists(\"ARG0\") && strlen(ARG0) > {len}) {{ cd ARG0[1:strlen(ARG0)-{len}] }}\n\
         set datafile missing \"?\"\n\
         do for [fmt in \"png svg\"] {{\n\
         if (fmt eq \"svg\") {{ set terminal svg size 800,{height} dynamic }} else {{\n\
         if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {{ set terminal pngcairo size 800,{height} }} else {{ set terminal png size 800,{height} }} }}\n\
         set termoption noenhanced\n\
         set output \"{name}.\".fmt\n\
         {body}\
         set output\n\
         }}\n",
        file = file,
        name = name,
        len = file.len(),
        height = height,
        body = body
    )
}

fn opt(x: Option<f64>) -> String {
    x.map_or("?".into(), |x| x.to_string())
}

/// The figures' data files and scripts as (name, [(file, contents)]).
type Figure = (String, Vec<(String, String)>);

/// (a) time vs cap per X-in-B comparison, (b) whole-swarm CDFs per X-in-X comparison,
/// (c) every paired ratio with its CI.
fn figures(a: &Analysis) -> Vec<Figure> {
    let mut out = Vec::new();
    let mut specs: Vec<&Spec> = Vec::new();
    for c in &a.compared {
        if !specs.contains(&&c.spec) {
            specs.push(&c.spec);
        }
    }
    for spec in specs {
        let cs: Vec<&Compared> = a.compared.iter().filter(|c| &c.spec == spec).collect();
        if spec.population == Population::Whole {
            let name = format!("cdf-{}", spec.slug());
            let (mut dat, mut plots) = (String::new(), Vec::new());
            // Colour tells the variants apart, the dash the caps (a cap moves the focus peer
            // only, so a cap's two curves belong together).
            for (k, c) in cs.iter().enumerate() {
                for (lc, v, t) in [
                    (1, &spec.strategy, &c.strat_times),
                    (2, &spec.baseline, &c.base_times),
                ] {
                    if t.is_empty() {
                        continue;
                    }
                    let _ = writeln!(dat, "# {} cap {}: seconds fraction", v, c.cap);
                    let s = sorted(t);
                    for (i, x) in s.iter().enumerate() {
                        let _ = writeln!(dat, "{} {}", x, (i + 1) as f64 / s.len() as f64);
                    }
                    dat.push_str("\n\n");
                    plots.push(format!(
                        "\"{}.dat\" index {} using 1:2 with steps lw 2 lc {} dt {} title \"{} cap {}\"",
                        name,
                        plots.len(),
                        lc,
                        k + 1,
                        v,
                        c.cap
                    ));
                }
            }
            if plots.is_empty() {
                continue;
            }
            let body = format!(
                "set title \"whole-swarm download times: {} vs {}\"\n\
                 set xlabel \"download time (nominal s)\"\nset ylabel \"fraction of downloads\"\n\
                 set yrange [0:1]\nset key bottom right\nplot {}\n",
                spec.strategy,
                spec.baseline,
                plots.join(", \\\n     ")
            );
            out.push((
                name.clone(),
                vec![
                    (format!("{}.dat", name), dat),
                    (format!("{}.gp", name), gp_script(&name, 500, &body)),
                ],
            ));
        } else {
            let name = format!("time-{}", spec.slug());
            let mut dat = "# cap strategy_median p10 p90 baseline_median p10 p90\n".to_string();
            let mut any = false;
            for c in &cs {
                any |= c.strat.median.is_some() || c.base.median.is_some();
                let _ = writeln!(
                    dat,
                    "{} {} {} {} {} {} {}",
                    c.cap,
                    opt(c.strat.median),
                    opt(c.strat.p10),
                    opt(c.strat.p90),
                    opt(c.base.median),
                    opt(c.base.p10),
                    opt(c.base.p90)
                );
            }
            if !any {
                continue;
            }
            let caps: Vec<f64> = cs.iter().map(|c| c.cap).collect();
            let (lo, hi) = (caps[0], caps[caps.len() - 1]);
            let x = if hi > 10.0 * lo {
                format!("set logscale x\nset xrange [{}:{}]\n", lo / 1.5, hi * 1.5)
            } else {
                let pad = (0.15 * (hi - lo)).max(0.15 * hi);
                format!("set xrange [{}:{}]\n", (lo - pad).max(0.0), hi + pad)
            };
            let body = format!(
                "set title \"{} vs {}: {}, median and p10-p90\"\n{}\
                 set xlabel \"focus peer upload cap (KiB/s)\"\nset ylabel \"download time (nominal s)\"\n\
                 set yrange [0:*]\nset key top right\n\
                 plot \"{n}.dat\" using ($1*0.97):2:3:4 with yerrorlines lw 2 title \"{}\", \\\n     \
                 \"{n}.dat\" using ($1*1.03):5:6:7 with yerrorlines lw 2 title \"{}\"\n",
                spec.strategy,
                spec.baseline,
                spec.population.label(),
                x,
                spec.strategy,
                spec.baseline,
                n = name
            );
            out.push((
                name.clone(),
                vec![
                    (format!("{}.dat", name), dat),
                    (format!("{}.gp", name), gp_script(&name, 500, &body)),
                ],
            ));
        }
    }
    // Horizontal bars, so that the long labels read as ordinary text; colour by comparison.
    let mut dat = "# index ratio ci_lo ci_hi label comparison\n".to_string();
    let mut bars = 0;
    let mut families: Vec<&Spec> = Vec::new();
    for c in &a.compared {
        if let Some(r) = c.ratio {
            let pop = match &c.spec.population {
                Population::Strategy(s)
                    if split_variant(&c.spec.strategy).map_or(false, |(x, _)| &x == s) =>
                {
                    String::new()
                }
                p => format!(" ({})", p.label()),
            };
            if !families.contains(&&c.spec) {
                families.push(&c.spec);
            }
            let _ = writeln!(
                dat,
                "{} {} {} {} \"{}{} cap {}\" {}",
                bars,
                r.ratio,
                r.lo,
                r.hi,
                c.spec.strategy,
                pop,
                c.cap,
                families.len()
            );
            bars += 1;
        }
    }
    if bars > 0 {
        let body = format!(
            "set title \"paired ratios with 95% CI (> 1: strategy faster)\"\n\
             set xlabel \"median(baseline) / median(strategy)\"\n\
             set yrange [{}:-0.5]\nset xrange [0:*]\nset ytics nomirror\nset grid x\n\
             set style fill solid 0.4\n\
             set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead dt 2\n\
             plot \"ratios.dat\" using (0.5*$2):1:(0.5*$2):(0.35):6:ytic(5) with boxxyerror lc variable notitle, \\\n     \
             \"ratios.dat\" using 2:1:3:4 with xerrorbars pt 7 ps 0.5 lc rgb \"black\" notitle\n",
            bars as f64 - 0.5
        );
        out.push((
            "ratios".into(),
            vec![
                ("ratios.dat".into(), dat),
                (
                    "ratios.gp".into(),
                    gp_script("ratios", 120 + 24 * bars, &body),
                ),
            ],
        ));
    }
    out
}

/// Write the figures' files into `figdir` and run gnuplot on each script. Returns the
/// images made and one line per script gnuplot failed on.
fn draw(a: &Analysis, figdir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    std::fs::create_dir_all(figdir)
        .map_err(|e| format!("report: cannot create {}: {}", figdir.display(), e))?;
    let (mut made, mut failed) = (Vec::new(), Vec::new());
    for (name, files) in figures(a) {
        for (file, text) in &files {
            let p = figdir.join(file);
            std::fs::write(&p, text)
                .map_err(|e| format!("report: cannot write {}: {}", p.display(), e))?;
        }
        let run = Command::new("gnuplot")
            .arg(format!("{}.gp", name))
            .current_dir(figdir)
            .output();
        match run {
            Ok(o) if o.status.success() => {
                for ext in ["png", "svg"] {
                    let p = figdir.join(format!("{}.{}", name, ext));
                    if std::fs::metadata(&p).map_or(false, |m| m.len() > 0) {
                        made.push(p);
                    }
                }
            }
            Ok(o) => {
                let err = String::from_utf8_lossy(&o.stderr);
                let last = err
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                failed.push(format!("{}.gp: gnuplot failed: {}", name, last.trim()));
            }
            Err(e) => failed.push(format!("{}.gp: cannot run gnuplot: {}", name, e)),
        }
    }
    Ok((made, failed))
}

// ---------------------------------------------------------------------------------------
// Entry points

/// Read DIR, print nothing, write DIR/report.txt and (if `figures` and gnuplot is on PATH)
/// DIR/figures/; returns the report's text, figure list included.
pub fn report(dir: &Path, figures: bool) -> Result<String, String> {
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
    let a = analyse(&rows, seed);
    let mut out = render(&a, &rows, manifest.as_ref(), seed);
    let figdir = dir.join("figures");
    if !figures {
        out.push_str("\nfigures skipped (--no-figures)\n");
    } else if !have_gnuplot() {
        out.push_str("\nfigures skipped: gnuplot is not on PATH\n");
    } else {
        let (made, failed) = draw(&a, &figdir)?;
        let _ = writeln!(
            out,
            "\nfigures (regenerate with `gnuplot {}/NAME.gp`):",
            figdir.display()
        );
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
    Ok(out)
}

/// `tyrant swarm report DIR [--no-figures]`: the words after `report`.
pub fn cli(words: &[String]) -> Result<(), String> {
    let mut figures = true;
    let mut dir = None;
    for w in words {
        match w.as_str() {
            "--no-figures" => figures = false,
            _ if w.starts_with('-') || dir.is_some() => {
                return Err(format!(
                    "swarm report: unexpected '{}'; usage: tyrant swarm report DIR [--no-figures]",
                    w
                ))
            }
            _ => dir = Some(w),
        }
    }
    let dir =
        dir.ok_or("swarm report: no DIR given; usage: tyrant swarm report DIR [--no-figures]")?;
    print!("{}", report(Path::new(dir), figures)?);
    Ok(())
}

#[cfg(test)]
mod tests;
