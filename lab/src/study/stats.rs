//! The statistics of a report: type-7 quantiles, the median by selection, the paired
//! ratio of medians and its percentile-bootstrap confidence interval (see study.rs for
//! why the bootstrap resamples whole pairing groups).

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
    let by = if clusters.len() >= 2 { Resample::Reps } else { Resample::Downloads };
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
