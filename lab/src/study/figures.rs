//! The report's figures as gnuplot data files and scripts beside them, so that a figure
//! can be restyled and redrawn without rerunning anything: download time against the focus
//! peer's cap, whole-swarm CDFs, and every paired ratio with its interval.

use super::compare::{split_variant, Analysis, Compared, Population, Spec};
use super::stats::sorted;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Is gnuplot on PATH?
pub fn have_gnuplot() -> bool {
    Command::new("gnuplot").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
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
                for (lc, v, t) in
                    [(1, &spec.strategy, &c.strat_times), (2, &spec.baseline, &c.base_times)]
                {
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
    let mut stat = "median";
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
            // No bar where there is no interval (fewer than 5 runs).
            let (lo, hi) = r.interval().unwrap_or((r.ratio, r.ratio));
            stat = r.stat.name();
            let _ = writeln!(
                dat,
                "{} {} {} {} \"{}{} cap {}\" {}",
                bars,
                r.ratio,
                lo,
                hi,
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
            "set title \"paired ratios with 95% CI over runs (> 1: strategy faster; no bar: < 5 runs)\"\n\
             set xlabel \"{}: baseline / strategy\"\n\
             set yrange [{}:-0.5]\nset xrange [0:*]\nset ytics nomirror\nset grid x\n\
             set style fill solid 0.4\n\
             set arrow 1 from first 1, graph 0 to first 1, graph 1 nohead dt 2\n\
             plot \"ratios.dat\" using (0.5*$2):1:(0.5*$2):(0.35):6:ytic(5) with boxxyerror lc variable notitle, \\\n     \
             \"ratios.dat\" using 2:1:3:4 with xerrorbars pt 7 ps 0.5 lc rgb \"black\" notitle\n",
            stat,
            bars as f64 - 0.5
        );
        out.push((
            "ratios".into(),
            vec![
                ("ratios.dat".into(), dat),
                ("ratios.gp".into(), gp_script("ratios", 120 + 24 * bars, &body)),
            ],
        ));
    }
    out
}

/// Write the figures' files into `figdir` and run gnuplot on each script. Returns the
/// images made and one line per script gnuplot failed on.
pub(super) fn draw(a: &Analysis, figdir: &Path) -> Result<(Vec<PathBuf>, Vec<String>), String> {
    std::fs::create_dir_all(figdir)
        .map_err(|e| format!("report: cannot create {}: {}", figdir.display(), e))?;
    let (mut made, mut failed) = (Vec::new(), Vec::new());
    for (name, files) in figures(a) {
        for (file, text) in &files {
            let p = figdir.join(file);
            std::fs::write(&p, text)
                .map_err(|e| format!("report: cannot write {}: {}", p.display(), e))?;
        }
        let run = Command::new("gnuplot").arg(format!("{}.gp", name)).current_dir(figdir).output();
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
                let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                failed.push(format!("{}.gp: gnuplot failed: {}", name, last.trim()));
            }
            Err(e) => failed.push(format!("{}.gp: cannot run gnuplot: {}", name, e)),
        }
    }
    Ok((made, failed))
}
