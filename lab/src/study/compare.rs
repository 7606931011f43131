//! Which downloads a report compares: the populations of a variant (focus peer, whole
//! swarm, the peers of one strategy), the baseline of each strategy variant, and the
//! `Analysis` that holds every statistic and comparison the text and the figures show.

use super::stats::{ratio_ci, summarize, Cluster, Ratio, Statistic, TimeStats};
use super::{Download, RESAMPLES};
use std::collections::BTreeSet;

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
    pub(super) fn slug(&self) -> String {
        format!("{}-vs-{}-{}", self.strategy, self.baseline, self.population.slug())
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
        let spec =
            |baseline: String, population| Spec { strategy: v.clone(), baseline, population };
        if x == b {
            out.push(spec("vanilla-in-vanilla".into(), Population::Whole));
            continue;
        }
        let vanilla = format!("vanilla-in-{}", b);
        let own = format!("{}-in-{}", b, b);
        let baseline = if !has(&vanilla) && has(&own) { own } else { vanilla };
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
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// `spec` at `cap`, over the pairing groups present in both variants (a group whose
/// baseline or strategy run left no row cannot be paired). The bootstrap seed mixes the
/// experiment's seed with the comparison's name.
pub fn compare(rows: &[Download], spec: &Spec, cap: f64, stat: Statistic, seed: u64) -> Compared {
    let at_cap = |v: &str| -> Vec<&Download> {
        spec.population.pick(rows, &spec.strategy, v).into_iter().filter(|d| d.cap == cap).collect()
    };
    let (strat, base) = (at_cap(&spec.strategy), at_cap(&spec.baseline));
    let groups_of = |v: &str| -> BTreeSet<String> {
        rows.iter().filter(|d| d.variant == v && d.cap == cap).map(|d| d.group.clone()).collect()
    };
    let groups: Vec<String> =
        groups_of(&spec.strategy).intersection(&groups_of(&spec.baseline)).cloned().collect();
    let paired = |d: &&Download| groups.contains(&d.group);
    let strat: Vec<&Download> = strat.into_iter().filter(paired).collect();
    let base: Vec<&Download> = base.into_iter().filter(paired).collect();
    let times = |v: &[&Download], g: &str| -> Vec<f64> {
        v.iter().filter(|d| d.group == g).filter_map(|d| d.seconds).collect()
    };
    let clusters: Vec<Cluster> =
        groups.iter().map(|g| (times(&base, g), times(&strat, g))).collect();
    let key = format!("{} cap {}", spec.slug(), cap);
    Compared {
        spec: spec.clone(),
        cap,
        groups: groups.len(),
        base: summarize(&base),
        strat: summarize(&strat),
        base_times: base.iter().filter_map(|d| d.seconds).collect(),
        strat_times: strat.iter().filter_map(|d| d.seconds).collect(),
        ratio: ratio_ci(&clusters, stat, RESAMPLES, seed ^ fnv(&key)),
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

pub fn analyse(rows: &[Download], stat: Statistic, seed: u64) -> Analysis {
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
            compared.push(compare(rows, &spec, cap, stat, seed));
        }
    }
    Analysis { variants, caps, stats, compared }
}
