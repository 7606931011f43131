//! The statistics of a report: type-7 quantiles, the median by selection, the headline
//! statistics a manifest can fix (`Statistic`) and their percentile-bootstrap confidence
//! intervals over runs (see study.rs for why the run is the unit).

use super::Download;
use std::collections::BTreeSet;
use tyrant::rng::Rng;

pub(super) fn sorted(v: &[f64]) -> Vec<f64> {
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

/// The headline statistic of a comparison, fixed in the manifest (`statistic=`) before any
/// run, so that it is not chosen after the data arrive. Each is "baseline over strategy":
/// > 1 means the strategy downloads faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistic {
    /// median of all baseline downloads / median of all strategy downloads.
    Median,
    /// mean / mean: weighs the slow tail, which the median ignores.
    Mean,
    /// Geometric mean over runs of each run's median / median: every run counts once, however
    /// many downloads it held.
    Geomean,
}

impl Statistic {
    pub const ALL: &'static [(&'static str, Statistic)] = &[
        ("median", Statistic::Median),
        ("mean", Statistic::Mean),
        ("geomean", Statistic::Geomean),
    ];

    pub fn parse(s: &str) -> Result<Statistic, String> {
        let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
        Self::ALL
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("statistic '{}' is not one of {}", s, names.join(", ")))
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, v)| *v == self).map_or("?", |(n, _)| n)
    }

    /// The statistic of some clusters; None when a side has nothing finished.
    pub fn of(self, clusters: &[&Cluster]) -> Option<f64> {
        let pooled = |side: fn(&Cluster) -> &Vec<f64>| -> Vec<f64> {
            clusters.iter().flat_map(|c| side(c).iter().copied()).collect()
        };
        let (base, strat) = (pooled(|c| &c.0), pooled(|c| &c.1));
        let div = |b: Option<f64>, s: Option<f64>| Some(b? / s?).filter(|r| r.is_finite());
        match self {
            Statistic::Median => div(median(&base), median(&strat)),
            Statistic::Mean => div(mean(&base), mean(&strat)),
            Statistic::Geomean => {
                let logs: Vec<f64> = clusters
                    .iter()
                    .filter_map(|c| div(median(&c.0), median(&c.1)))
                    .map(f64::ln)
                    .collect();
                mean(&logs).map(f64::exp)
            }
        }
    }
}

/// What the bootstrap resampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Runs: pairing groups with replacement, each bringing all its downloads on both sides.
    /// Downloads of one run (consecutive downloads of a closed-loop peer, peers that share
    /// a swarm) are not independent, so the run is the unit.
    Runs,
    /// One run only: downloads, within each variant independently (no run-level CI exists).
    Downloads,
}

/// Fewer runs than this get no interval: a percentile bootstrap over 2–4 runs has only a
/// handful of distinct resamples and reads far narrower than the runs' spread allows.
pub const MIN_RUNS: usize = 5;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    pub stat: Statistic,
    /// Runs (pairing groups) behind it.
    pub runs: usize,
    /// The statistic over all clusters.
    pub ratio: f64,
    /// 2.5 % and 97.5 % percentiles of the bootstrap ratios.
    pub lo: f64,
    pub hi: f64,
    pub by: Resample,
    /// Resamples with data on both sides (the others have no ratio and are dropped).
    pub resamples: usize,
}

impl Ratio {
    /// The 95 % interval, when there are runs enough to give one.
    pub fn interval(&self) -> Option<(f64, f64)> {
        Some((self.lo, self.hi)).filter(|_| self.runs >= MIN_RUNS)
    }
}

/// The statistic and its percentile-bootstrap 95 % CI over runs (see `Resample`); None when
/// one side has no completed download.
pub fn ratio_ci(
    clusters: &[Cluster],
    stat: Statistic,
    resamples: usize,
    seed: u64,
) -> Option<Ratio> {
    let all: Vec<&Cluster> = clusters.iter().collect();
    let ratio = stat.of(&all)?;
    let by = if clusters.len() >= 2 { Resample::Runs } else { Resample::Downloads };
    let mut rng = Rng::new(seed);
    let mut draws = Vec::with_capacity(resamples);
    let mut pick = |v: &[f64]| -> Vec<f64> {
        (0..v.len()).map(|_| v[rng.below(v.len() as u64) as usize]).collect()
    };
    for _ in 0..resamples {
        let r = match by {
            Resample::Runs => {
                let idx: Vec<f64> = (0..clusters.len()).map(|i| i as f64).collect();
                let drawn: Vec<&Cluster> =
                    pick(&idx).into_iter().map(|i| &clusters[i as usize]).collect();
                stat.of(&drawn)
            }
            Resample::Downloads => {
                let c: Cluster = (pick(&clusters[0].0), pick(&clusters[0].1));
                stat.of(&[&c])
            }
        };
        draws.extend(r);
    }
    Some(Ratio {
        stat,
        runs: clusters.len(),
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
