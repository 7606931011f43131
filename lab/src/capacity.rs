//! Upload-capacity distributions for planned swarms, in KiB/s, every draw from a seeded
//! `tyrant::rng::Rng` so a manifest is reproducible from its seed.
//!
//! - `4pl`: the skewed BitTyrant-like distribution, downpour's 4PL "truly_magic" fit of the
//!   BitTyrant paper's measured capacity CDF (docs/downpour.md, "Capacity distribution"),
//!   sampled by inverse CDF as downpour did ("randomly sampling y axis").
//! - `normal:MEAN:SD[:MIN]`: a normal truncated (conditioned, not clamped) at a floor, like
//!   downpour's 30-client "normal" swarm (same section).
//! - `uniform:LO:HI`.
//! - `file:PATH`: a list of caps, one number per line (e.g. downpour's `# Caps [...]` lists).
//!
//! Every distribution is sampled by inverse CDF with exactly one `Rng::f64()` per draw (the
//! file list: one `below`), so two plans that draw in the same order get the same caps.

use std::fmt;
use tyrant::rng::Rng;

/// downpour's fitted constants (docs/downpour.md, "Capacity distribution"):
/// `y(x) = 10·ln(A + (B − C)/(1 + (x/M)^D))`.
const FPL_A: f64 = 7.991586;
const FPL_B: f64 = -4.094174;
const FPL_C: f64 = 20.891589;
const FPL_M: f64 = 14.42096;
const FPL_D: f64 = 2.158334;
/// Default upper end of the 4PL domain. The fit has an infinite tail (P(X > x) ~ x^−2.16),
/// so a sampler needs a finite end; above 10 000 KiB/s (≈ 80 Mbit/s, beyond the paper's
/// "several MB/s") lies a fraction 1.1e-6 of the fit's mass, so cutting there and
/// renormalising moves no quantile by more than that.
pub const FPL_DEFAULT_HI: f64 = 10_000.0;

/// The raw, unnormalised 4PL value y(x) for a capacity x in KiB/s ("truly_magic").
/// NaN below the pole (x ≤ 20.455…, where the log's argument is ≤ 0).
pub fn truly_magic(x: f64) -> f64 {
    let g = FPL_A + (FPL_B - FPL_C) / (1.0 + (x / FPL_M).powf(FPL_D));
    if g > 0.0 {
        10.0 * g.ln()
    } else {
        f64::NAN
    }
}

/// Inverse of `truly_magic`: the capacity x with y(x) = y, for y < `fpl_y_max()`.
/// From y = 10 ln g, g = A + (B−C)/(1+t), t = (x/M)^D:
/// t = (B−C)/(g−A) − 1, x = M·t^(1/D).
pub fn truly_magic_inv(y: f64) -> f64 {
    let g = (y / 10.0).exp();
    let t = (FPL_B - FPL_C) / (g - FPL_A) - 1.0;
    if g >= FPL_A {
        f64::INFINITY
    } else if t <= 0.0 {
        // Only reachable for y → −∞ (x → the pole from above).
        FPL_M * (-(FPL_B - FPL_C) / FPL_A - 1.0).powf(1.0 / FPL_D)
    } else {
        FPL_M * t.powf(1.0 / FPL_D)
    }
}

/// Supremum of y: 10·ln A ≈ 20.784, approached as x → ∞.
pub fn fpl_y_max() -> f64 {
    10.0 * FPL_A.ln()
}

/// The lower end of the 4PL's domain as a CDF: y(x0) = 0 at x0 ≈ 22.347 KiB/s. Between the
/// pole (20.455) and x0 the fit is negative, below it undefined; downpour's plot starts
/// its y axis at 0, so [x0, ∞) with y ∈ [0, y_max) is the part that is a CDF.
pub fn fpl_x0() -> f64 {
    truly_magic_inv(0.0)
}

/// A capacity distribution in KiB/s.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// downpour's 4PL restricted to [lo, hi] and renormalised there:
    /// F(x) = (y(x) − y(lo)) / (y(hi) − y(lo)). `lo` ≥ x0 (clamped up by `parse`/`four_pl`).
    FourPL { lo: f64, hi: f64 },
    /// Normal(mean, sd) conditioned on x ≥ min (a truncated normal: no point mass at min).
    Normal { mean: f64, sd: f64, min: f64 },
    /// Uniform on [lo, hi].
    Uniform { lo: f64, hi: f64 },
    /// A list of caps. `sample` draws with replacement (the empirical distribution);
    /// `draw(n)` goes through seeded permutations of the list, so n = len reproduces the
    /// list exactly (in a seeded order) and n < len is a sample without replacement.
    File(Vec<f64>),
}

impl Default for Dist {
    fn default() -> Dist {
        Dist::four_pl(0.0, FPL_DEFAULT_HI).expect("default 4PL domain is valid")
    }
}

fn num(what: &str, s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("{}: '{}' is not a finite number", what, s)),
    }
}

impl Dist {
    /// The 4PL on [max(lo, x0), hi]. `lo` below x0 ≈ 22.35 is raised to x0: the fit is no
    /// CDF there (negative, then undefined below the pole at 20.46).
    pub fn four_pl(lo: f64, hi: f64) -> Result<Dist, String> {
        let lo = lo.max(fpl_x0());
        if !(hi.is_finite() && hi > lo) {
            return Err(format!(
                "4pl: upper end {} must be finite and above the lower end {:.3} KiB/s",
                hi, lo
            ));
        }
        Ok(Dist::FourPL { lo, hi })
    }

    /// `4pl` | `4pl:LO:HI` | `normal:MEAN:SD[:MIN]` (MIN defaults to 1 KiB/s) |
    /// `uniform:LO:HI` | `file:PATH`. Caps must be > 0 (a tyrant `--up 0` means uncapped).
    pub fn parse(spec: &str) -> Result<Dist, String> {
        let (kind, rest) = match spec.find(':') {
            Some(i) => (&spec[..i], Some(&spec[i + 1..])),
            None => (spec, None),
        };
        let parts: Vec<&str> = rest.map(|r| r.split(':').collect()).unwrap_or_default();
        match (kind, parts.as_slice()) {
            ("4pl", []) => Ok(Dist::default()),
            ("4pl", [lo, hi]) => Dist::four_pl(num("4pl LO", lo)?, num("4pl HI", hi)?),
            ("normal", [m, s]) | ("normal", [m, s, _]) => {
                let mean = num("normal MEAN", m)?;
                let sd = num("normal SD", s)?;
                let min = match parts.get(2) {
                    Some(v) => num("normal MIN", v)?,
                    None => 1.0,
                };
                if sd <= 0.0 {
                    return Err(format!("normal: SD must be > 0, got {}", sd));
                }
                if min <= 0.0 {
                    return Err(format!("normal: MIN must be > 0 KiB/s, got {}", min));
                }
                // Beyond 6 sd the remaining mass (1e-9) is below what the inverse-CDF
                // sampler can resolve in a double.
                if min > mean + 6.0 * sd {
                    return Err(format!(
                        "normal: MIN {} is more than 6 SD above MEAN {}",
                        min, mean
                    ));
                }
                Ok(Dist::Normal { mean, sd, min })
            }
            ("uniform", [lo, hi]) => {
                let lo = num("uniform LO", lo)?;
                let hi = num("uniform HI", hi)?;
                if lo <= 0.0 || hi < lo {
                    return Err(format!("uniform: need 0 < LO <= HI, got {}..{}", lo, hi));
                }
                Ok(Dist::Uniform { lo, hi })
            }
            ("file", _) if rest.map_or(false, |p| !p.is_empty()) => {
                let path = rest.unwrap_or_default();
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("file:{}: {}", path, e))?;
                Dist::from_list(&text).map_err(|e| format!("file:{}: {}", path, e))
            }
            _ => Err(format!(
                "unknown capacity distribution '{}' (4pl, 4pl:LO:HI, normal:MEAN:SD[:MIN], uniform:LO:HI, file:PATH)",
                spec
            )),
        }
    }

    /// A `File` distribution from text: one cap per line; blank lines and `#` comments are
    /// skipped.
    pub fn from_list(text: &str) -> Result<Dist, String> {
        let mut caps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let v = num(&format!("line {}", i + 1), line)?;
            if v <= 0.0 {
                return Err(format!("line {}: cap {} must be > 0 KiB/s", i + 1, v));
            }
            caps.push(v);
        }
        if caps.is_empty() {
            return Err("no caps in the list".into());
        }
        Ok(Dist::File(caps))
    }

    /// One cap, by inverse CDF from one uniform draw (`File`: one uniform index).
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        match self {
            Dist::File(caps) => caps[rng.below(caps.len() as u64) as usize],
            _ => self.quantile(rng.f64()),
        }
    }

    /// n caps. Parametric distributions: n independent `sample`s. `File`: consecutive
    /// seeded permutations of the list (see the variant's comment).
    pub fn draw(&self, n: usize, rng: &mut Rng) -> Vec<f64> {
        match self {
            Dist::File(caps) => {
                let mut out = Vec::with_capacity(n);
                while out.len() < n {
                    let mut pass = caps.clone();
                    rng.shuffle(&mut pass);
                    let take = (n - out.len()).min(pass.len());
                    out.extend_from_slice(&pass[..take]);
                }
                out
            }
            _ => (0..n).map(|_| self.sample(rng)).collect(),
        }
    }

    /// P(X ≤ x).
    pub fn cdf(&self, x: f64) -> f64 {
        let f = match *self {
            Dist::FourPL { lo, hi } => {
                if x <= lo {
                    0.0
                } else if x >= hi {
                    1.0
                } else {
                    let (ylo, yhi) = (truly_magic(lo), truly_magic(hi));
                    (truly_magic(x) - ylo) / (yhi - ylo)
                }
            }
            Dist::Normal { mean, sd, min } => {
                if x <= min {
                    0.0
                } else {
                    let pa = phi((min - mean) / sd);
                    (phi((x - mean) / sd) - pa) / (1.0 - pa)
                }
            }
            Dist::Uniform { lo, hi } => {
                if x < lo {
                    0.0
                } else if x >= hi {
                    1.0
                } else {
                    (x - lo) / (hi - lo)
                }
            }
            Dist::File(ref caps) => {
                caps.iter().filter(|&&c| c <= x).count() as f64 / caps.len() as f64
            }
        };
        f.clamp(0.0, 1.0)
    }

    /// The inverse CDF at p ∈ [0, 1) (smallest x with F(x) ≥ p for `File`).
    pub fn quantile(&self, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0);
        match *self {
            Dist::FourPL { lo, hi } => {
                let (ylo, yhi) = (truly_magic(lo), truly_magic(hi));
                truly_magic_inv(ylo + p * (yhi - ylo)).max(lo).min(hi)
            }
            Dist::Normal { mean, sd, min } => {
                let pa = phi((min - mean) / sd);
                let q = pa + p * (1.0 - pa);
                (mean + sd * phi_inv(q)).max(min)
            }
            Dist::Uniform { lo, hi } => lo + p * (hi - lo),
            Dist::File(ref caps) => {
                let mut v = caps.clone();
                v.sort_by(|a, b| a.partial_cmp(b).expect("caps are finite"));
                let i = ((p * v.len() as f64).ceil() as usize).max(1) - 1;
                v[i.min(v.len() - 1)]
            }
        }
    }
}

/// The canonical spec text (`parse` reads it back), except `File`, which prints its size
/// since the list itself does not fit in a word; a manifest records every cap anyway.
impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Dist::FourPL { lo, hi } => write!(f, "4pl:{}:{}", lo, hi),
            Dist::Normal { mean, sd, min } => write!(f, "normal:{}:{}:{}", mean, sd, min),
            Dist::Uniform { lo, hi } => write!(f, "uniform:{}:{}", lo, hi),
            Dist::File(caps) => write!(f, "file:({}_caps)", caps.len()),
        }
    }
}

/// Complementary error function, Numerical Recipes' `erfcc` (Chebyshev fit, fractional
/// error < 1.2e-7 everywhere): ample for KS tests at n = 10 000 (critical value 0.0136).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Standard normal CDF.
pub fn phi(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile: Acklam's rational approximation (relative error 1.15e-9)
/// refined by one Halley step against `phi`, so that `phi(phi_inv(p)) ≈ p` to `phi`'s
/// own accuracy.
pub fn phi_inv(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let p_low = 0.02425;
    let x = if p < p_low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    // One Halley step (Acklam's suggested refinement).
    let e = phi(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

#[cfg(test)]
mod tests;
