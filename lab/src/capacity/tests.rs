//! Tests of the capacity distributions (capacity.rs): samplers against their analytic CDFs
//! (Kolmogorov–Smirnov), the 4PL's quantiles from docs/downpour.md ("Capacity
//! distribution"), parsing, seeds.

use super::*;

/// KS statistic D = sup |F_n(x) − F(x)| of the samples against `dist.cdf`.
fn ks(dist: &Dist, seed: u64, n: usize) -> f64 {
    let mut rng = Rng::new(seed);
    let mut xs: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let nf = n as f64;
    xs.iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = dist.cdf(x);
            (f - i as f64 / nf).max((i + 1) as f64 / nf - f)
        })
        .fold(0.0, f64::max)
}

/// 5 % critical value of the one-sample KS test, large-n approximation.
fn ks_crit(n: usize) -> f64 {
    1.36 / (n as f64).sqrt()
}

#[test]
fn ks_against_analytic_cdfs() {
    let n = 10_000;
    let dists = [
        Dist::parse("4pl").unwrap(),
        Dist::parse("4pl:30:1000").unwrap(),
        Dist::parse("normal:50:10").unwrap(),
        // A floor that cuts a lot of mass: the truncation must be a renormalisation.
        Dist::parse("normal:30:20:20").unwrap(),
        Dist::parse("uniform:20:1000").unwrap(),
    ];
    for d in &dists {
        for seed in [1u64, 2, 3] {
            let stat = ks(d, seed, n);
            assert!(stat < ks_crit(n), "{} seed {}: D = {}", d, seed, stat);
        }
    }
    // The test has power: the 4PL's samples are far from a uniform's CDF and vice versa.
    let fpl = Dist::parse("4pl").unwrap();
    let uni = Dist::parse("uniform:22.35:100").unwrap();
    let mut rng = Rng::new(1);
    let mut xs: Vec<f64> = (0..n).map(|_| fpl.sample(&mut rng)).collect();
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let d = xs
        .iter()
        .enumerate()
        .map(|(i, &x)| (uni.cdf(x) - i as f64 / n as f64).abs())
        .fold(0.0, f64::max);
    assert!(d > 0.1, "D = {}", d);
}

#[test]
fn four_pl_matches_spec_numbers() {
    // docs/downpour.md, "Capacity distribution": pole at 20.46, y = 0 at 22.35, 13.2 at 30,
    // → 20.78.
    assert!(truly_magic(20.4).is_nan());
    assert!(truly_magic(20.46) < -40.0);
    assert!((fpl_x0() - 22.35).abs() < 0.01, "{}", fpl_x0());
    assert!((truly_magic(30.0) - 13.2).abs() < 0.05, "{}", truly_magic(30.0));
    assert!((fpl_y_max() - 20.78).abs() < 0.01);
    assert!((truly_magic(500.0) - 20.78).abs() < 0.02, "{}", truly_magic(500.0));
    // Inverse: y = 15 → 33, 18 → 45, 20 → 80, 20.5 → 128, 20.7 → 224 KB/s.
    for &(y, x) in &[(15.0, 33.0), (18.0, 45.0), (20.0, 80.0), (20.5, 128.0), (20.7, 224.0)] {
        let got = truly_magic_inv(y);
        assert!((got - x).abs() / x < 0.015, "y {} -> {} (want {})", y, got, x);
        assert!((truly_magic(got) - y).abs() < 1e-9);
    }
    assert_eq!(truly_magic_inv(fpl_y_max()), f64::INFINITY);
    // The default distribution's quantiles are those of y uniform on [0, y_max): the
    // cut at 10 000 KiB/s moves them by < 1e-5 relative.
    let d = Dist::default();
    for &(y, x) in &[(15.0, 33.38), (18.0, 45.37), (20.0, 80.09), (20.5, 127.7)] {
        let q = d.quantile(y / fpl_y_max());
        assert!((q - x).abs() < 0.05, "p for y={} -> {} (want {})", y, q, x);
    }
    // Median ≈ 26.9: downpour's 30/60/300-client lists have median 26–28 (docs/downpour.md,
    // "Capacity distribution").
    assert!((d.quantile(0.5) - 26.9).abs() < 0.05, "{}", d.quantile(0.5));
    assert_eq!(d.quantile(0.0), fpl_x0());
    assert_eq!(d.cdf(22.0), 0.0);
    assert_eq!(d.cdf(FPL_DEFAULT_HI), 1.0);
}

#[test]
fn four_pl_domain_is_clamped_and_renormalised() {
    // Below x0 the fit is no CDF: the lower end is raised to x0.
    assert_eq!(Dist::parse("4pl:10:1000").unwrap(), Dist::four_pl(0.0, 1000.0).unwrap());
    let d = Dist::parse("4pl:30:100").unwrap();
    assert_eq!(d.cdf(30.0), 0.0);
    assert_eq!(d.cdf(100.0), 1.0);
    assert!((d.cdf(d.quantile(0.3)) - 0.3).abs() < 1e-12);
    let mut rng = Rng::new(5);
    for _ in 0..10_000 {
        let x = d.sample(&mut rng);
        assert!((30.0..=100.0).contains(&x), "{}", x);
    }
    assert!(Dist::parse("4pl:100:50").is_err());
    assert!(Dist::parse("4pl:30:inf").is_err());
    assert!(Dist::parse("4pl:30").is_err());
}

#[test]
fn normal_is_truncated_not_clamped() {
    let d = Dist::parse("normal:30:20:20").unwrap();
    let mut rng = Rng::new(9);
    let xs: Vec<f64> = (0..10_000).map(|_| d.sample(&mut rng)).collect();
    assert!(xs.iter().all(|&x| x >= 20.0));
    // No point mass at the floor (clamping would put ~31 % of draws exactly there).
    assert!(xs.iter().filter(|&&x| x == 20.0).count() < 5);
    assert_eq!(
        Dist::parse("normal:50:10").unwrap(),
        Dist::Normal { mean: 50.0, sd: 10.0, min: 1.0 }
    );
    // phi and its inverse agree.
    for &p in &[1e-9, 0.001, 0.02, 0.3, 0.5, 0.9, 0.999] {
        assert!((phi(phi_inv(p)) - p).abs() < 1e-7 * p.max(1e-3), "{}", p);
    }
    assert!((phi(1.959_964) - 0.975).abs() < 1e-6);
}

#[test]
fn parse_errors_are_one_line() {
    for bad in [
        "",
        "zipf",
        "normal:50",
        "normal:50:0",
        "normal:50:-1",
        "normal:50:10:0",
        "normal:50:10:200",
        "normal:x:10",
        "uniform:0:10",
        "uniform:10:5",
        "uniform:10",
        "file:",
        "file:/nonexistent/caps.txt",
    ] {
        let e = Dist::parse(bad).unwrap_err();
        assert!(!e.contains('\n') && !e.is_empty(), "{:?} -> {:?}", bad, e);
    }
    assert!(Dist::from_list("# only a comment\n\n").is_err());
    assert!(Dist::from_list("20\n-5\n").unwrap_err().contains("line 2"));
    assert!(Dist::from_list("20\nabc\n").unwrap_err().contains("line 2"));
    // Display round-trips through parse for the parametric kinds.
    for s in ["4pl:30:1000", "normal:50:10:5", "uniform:20:1000"] {
        let d = Dist::parse(s).unwrap();
        assert_eq!(Dist::parse(&d.to_string()).unwrap(), d);
    }
    let d = Dist::default();
    assert_eq!(Dist::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn uniform_and_file() {
    let u = Dist::parse("uniform:20:20").unwrap();
    assert_eq!(u.sample(&mut Rng::new(1)), 20.0);
    let dir = std::env::temp_dir().join(format!("tyrant-caps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("caps.txt");
    std::fs::write(&path, "# downpour-like\n20\n26\n\n543\n").unwrap();
    let f = Dist::parse(&format!("file:{}", path.display())).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(f, Dist::File(vec![20.0, 26.0, 543.0]));
    assert!((f.cdf(26.0) - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(f.quantile(0.5), 26.0);
    assert_eq!(f.quantile(0.0), 20.0);
    // draw(len) is the list itself in a seeded order; draw(2·len) uses it twice.
    let mut rng = Rng::new(3);
    let mut one = f.draw(3, &mut rng);
    one.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(one, vec![20.0, 26.0, 543.0]);
    let mut two = f.draw(6, &mut rng);
    two.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(two, vec![20.0, 20.0, 26.0, 26.0, 543.0, 543.0]);
    // sample is with replacement: every value turns up.
    let mut seen = [false; 3];
    for _ in 0..100 {
        let x = f.sample(&mut rng);
        seen[[20.0, 26.0, 543.0].iter().position(|&c| c == x).unwrap()] = true;
    }
    assert!(seen.iter().all(|&b| b));
}

#[test]
fn deterministic_per_seed() {
    for spec in ["4pl", "normal:50:10", "uniform:20:1000"] {
        let d = Dist::parse(spec).unwrap();
        let a = d.draw(100, &mut Rng::new(42));
        assert_eq!(a, d.draw(100, &mut Rng::new(42)), "{}", spec);
        assert_ne!(a, d.draw(100, &mut Rng::new(43)), "{}", spec);
        // One uniform per draw: sample k of a stream is quantile(k-th f64).
        let mut r = Rng::new(42);
        let u: Vec<f64> = (0..100).map(|_| r.f64()).collect();
        let b: Vec<f64> = u.iter().map(|&p| d.quantile(p)).collect();
        assert_eq!(a, b, "{}", spec);
    }
    let f = Dist::File((1..=50).map(|x| x as f64).collect());
    assert_eq!(f.draw(30, &mut Rng::new(1)), f.draw(30, &mut Rng::new(1)));
    assert_ne!(f.draw(30, &mut Rng::new(1)), f.draw(30, &mut Rng::new(2)));
}
