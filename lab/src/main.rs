//! tyrant-lab: the command line of the experiment harness. `plan` writes a manifest from a
//! preset, `check` validates one, `run` executes it as `tyrant` processes, `report` turns
//! the results into tables and figures. This file owns the argument parsing and where the
//! `tyrant` binary comes from; the work is in the library's modules.

use std::path::{Path, PathBuf};
use std::process::exit;
use tyrant_lab::{manifest, plan, runner, study};

const USAGE: &str = "\
USAGE: tyrant-lab plan PRESET [KEY=VALUE ...] [-o MANIFEST]
       tyrant-lab check MANIFEST
       tyrant-lab run MANIFEST [--out DIR] [--jobs J] [--exec TEMPLATE] [--only TEXT]
                               [--keep-data] [--collect CMD] [--tyrant PATH] [-q]
                               [--ignore-thread-limit]
       tyrant-lab report DIR [--no-figures]

plan writes the manifest of an experiment: every peer's address, port, role, strategy,
caps, start time and exact command line, the tracker, the torrent and the seed (format in
README, \"Experiment harness\"). PRESET is single | all | rebel | sybil | propshare | thief;
KEY=VALUE overrides: peers caps reps seed time_scale dist seeders size_mib piece_kib
duration stagger closed_loop down k max_peers tyrant_u0 tyrant_args focus_args rebel sybil
thieves numwant tracker_interval tracker_port base_port trace memory statistic name hosts
(e.g. `tyrant-lab plan single peers=30 caps=20,100 reps=5 time_scale=4`;
hosts=h0@10.0.0.1,h1@10.0.0.2 spreads the peers over hosts; memory=true makes tyrants
long-lived users that keep u_p/d_p across rejoins; statistic= fixes the headline statistic
before the runs, see README \"Experiment harness\", Results). check parses a manifest and prints a summary, with the
most threads a run's processes may hold at once.

run executes a manifest: the tracker and every peer as separate tyrant processes in DIR
[swarm-out/NAME], one CSV row per download in DIR/results.csv; runs already done in DIR are
skipped, so an interrupted experiment resumes. The client binary is --tyrant PATH, else
$TYRANT, else the `tyrant` beside this tyrant-lab executable. --jobs J runs J runs at once
on 127.j.x.y (local only), a repetition's runs in one batch when they fit in J. --exec
prefixes each process with TEMPLATE, where {host}, {dir} and {id} are replaced:
'ip netns exec {host}' (emulated hosts, see scripts/netns.sh) or
'ssh -tt {host} cd {dir} &&' (a testbed with DIR and the binary at the same paths; -tt so
a killed ssh hangs up its remote process). --collect CMD runs once per remote host after
each run ({host}, {dir}, {run} replaced), e.g. 'rsync -a {host}:{dir}/runs/{run}/
{dir}/runs/{run}/' when the nodes share no directory. Every process also gets
--time-limit at the run's end, so none outlives it. Ctrl-C kills every process the run
started and exits. A run whose processes may need more threads at once than the machine
allows (kernel.pid_max, kernel.threads-max, the cgroup's pids.max, ulimit -u) is refused
before anything starts, unless --ignore-thread-limit (not checked behind an ssh --exec).

report prints, per variant and cap, n, median, mean, p10/p90 of the nominal download times
and, for paired variants, median(baseline)/median(strategy) with a bootstrap 95 % CI;
it writes DIR/report.txt and, when gnuplot is installed, DIR/figures/*.png and *.svg.
";

fn main() {
    if let Err(e) = cli() {
        eprintln!("tyrant-lab: {}", e);
        exit(1);
    }
}

fn cli() -> Result<(), String> {
    let mut args = pico_args::Arguments::from_env();
    if args.contains(["-h", "--help"]) {
        print!("{}", USAGE);
        return Ok(());
    }
    let out: Option<PathBuf> = opt(&mut args, "-o")?;
    let run_out: Option<PathBuf> = opt(&mut args, "--out")?;
    let exec: Option<String> = opt(&mut args, "--exec")?;
    let only: Option<String> = opt(&mut args, "--only")?;
    let jobs: Option<usize> = opt(&mut args, "--jobs")?;
    let keep_data = args.contains("--keep-data");
    let collect: Option<String> = opt(&mut args, "--collect")?;
    let tyrant: Option<PathBuf> = opt(&mut args, "--tyrant")?;
    let quiet = args.contains(["-q", "--quiet"]);
    let ignore_thread_limit = args.contains("--ignore-thread-limit");
    let words: Vec<String> =
        args.finish().into_iter().map(|w| w.to_string_lossy().into_owned()).collect();
    match words.split_first() {
        Some((cmd, rest)) if cmd == "plan" && !rest.is_empty() => {
            let mut opts = plan::PlanOptions::default();
            for w in &rest[1..] {
                let (k, v) = w
                    .split_once('=')
                    .ok_or_else(|| format!("plan: expected KEY=VALUE, got {}", w))?;
                opts.set(k, v)?;
            }
            let text = plan::plan(&rest[0], &opts)?.to_text();
            match out {
                Some(p) => std::fs::write(&p, text)
                    .map_err(|e| format!("cannot write {}: {}", p.display(), e)),
                None => {
                    print!("{}", text);
                    Ok(())
                }
            }
        }
        Some((cmd, [file])) if cmd == "check" => {
            let m = read_manifest(file)?;
            let peers: usize = m.runs.iter().map(|r| r.peers.len()).sum();
            let runs: Vec<&manifest::Run> = m.runs.iter().collect();
            println!(
                "{}: preset {} seed {} runs {} peers {} torrent {} ({} bytes, {} KiB pieces), \
                 up to {} threads per run",
                file,
                m.preset,
                m.seed,
                m.runs.len(),
                peers,
                m.torrent.file,
                m.torrent.size,
                m.torrent.piece_kib,
                runner::threads::need(&runs, 1, &runner::threads::max_peers)
            );
            Ok(())
        }
        Some((cmd, [file])) if cmd == "run" => {
            let m = read_manifest(file)?;
            let o = runner::RunOptions {
                out: run_out.unwrap_or_else(|| PathBuf::from("swarm-out").join(&m.name)),
                bin: find_tyrant(tyrant)?,
                exec,
                only,
                jobs: jobs.unwrap_or(1).max(1),
                keep_data,
                collect,
                verbose: !quiet,
                ignore_thread_limit,
            };
            runner::install_stop_handler();
            let t0 = std::time::Instant::now();
            let s = runner::run_manifest(&m, &o)?;
            println!(
                "tyrant-lab run: {} runs done ({} skipped as already done), {} downloads, {} unfinished, {} process failures, {:.0} s; results in {}",
                s.runs,
                s.skipped,
                s.downloads,
                s.unfinished,
                s.failures,
                t0.elapsed().as_secs_f64(),
                o.out.join("results.csv").display()
            );
            if s.interrupted {
                return Err(
                    "run: interrupted; every process it started was stopped (rerun to resume)"
                        .into(),
                );
            }
            Ok(())
        }
        Some((cmd, rest)) if cmd == "report" => study::cli(rest),
        _ => Err("expected `plan PRESET [KEY=VALUE ...]`, `check MANIFEST`, `run MANIFEST` or `report DIR` (try tyrant-lab --help)".into()),
    }
}

fn read_manifest(file: &str) -> Result<manifest::Manifest, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {}", file, e))?;
    manifest::Manifest::from_text(&text).map_err(|e| format!("{}: {}", file, e))
}

/// The client binary every process of a run executes: `--tyrant`, else `$TYRANT` (what
/// run.sh and the reproduction scripts export), else the `tyrant` that cargo builds beside
/// this executable. Made absolute, because the processes run in the output directory.
fn find_tyrant(flag: Option<PathBuf>) -> Result<PathBuf, String> {
    let given = flag.map(|p| ("--tyrant", p)).or_else(|| match std::env::var_os("TYRANT") {
        Some(p) if !p.is_empty() => Some(("$TYRANT", PathBuf::from(p))),
        _ => None,
    });
    if let Some((what, p)) = given {
        return executable(&p)
            .ok_or_else(|| format!("{} {} is not an executable file", what, p.display()));
    }
    let beside =
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|d| d.join("tyrant")));
    match beside.as_deref().and_then(executable) {
        Some(p) => Ok(p),
        None => Err(format!(
            "cannot find the tyrant binary (no {}); give --tyrant PATH or set TYRANT",
            beside.map_or("tyrant beside tyrant-lab".into(), |p| p.display().to_string())
        )),
    }
}

fn executable(p: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let abs = std::fs::canonicalize(p).ok()?;
    let md = std::fs::metadata(&abs).ok()?;
    if md.is_file() && md.permissions().mode() & 0o111 != 0 {
        Some(abs)
    } else {
        None
    }
}

/// An option value parsed with `FromStr`, with the option named in the error.
fn opt<T>(args: &mut pico_args::Arguments, name: &'static str) -> Result<Option<T>, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    args.opt_value_from_str(name).map_err(|e| format!("{}: {}", name, e))
}
