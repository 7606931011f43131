//! `tyrant-lab run MANIFEST`: executes a manifest. Every peer and the tracker is its own
//! `tyrant` process (the client binary `RunOptions::bin`), started at its (time-scaled)
//! start offset, on its own 127.0.0.N address locally or through an `--exec` prefix
//! (`ip netns exec {host}`, `ssh {host} cd {dir} &&`); closed-loop leechers are restarted
//! empty after each download (downpour's `peer_run.sh`); each finished run appends one CSV
//! row per download to `results.csv`. The runner owns only processes it spawned: Ctrl-C
//! kills exactly those. This file owns the experiment as a whole (runs, lanes, payload,
//! results.csv); one run's processes are in runner/run.rs, what a run reads back in
//! runner/observe.rs, whether the machine has threads enough for it in runner/threads.rs.
//!
//! Layout of the output directory (the processes' working directory):
//! `manifest.txt`, `seed/PAYLOAD`, `swarm.torrent`, `results.csv`, and per run
//! `runs/RUN/{stats,trace,logs,data}/`, `runs/RUN/pids` (`ID PID` per spawn) and
//! `runs/RUN/done` once its rows are in `results.csv` (a rerun skips such runs).

use crate::manifest::{Manifest, Run};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use tyrant::metainfo;
use tyrant::rng::Rng;

mod observe;
mod run;
pub mod threads;
use run::{run_one, RunOutcome};

/// The CSV header; `tyrant-lab report` (study.rs) reads exactly this, or the same without
/// the last two columns (results written before they existed). `build` is the client's
/// commit (`tyrant --version`), `idle` the machine's CPU idle share over the run.
pub const CSV_HEADER: &str = "run,group,variant,rep,cap,peer,strategy,role,focus,up,join,start,finish,seconds,bytes_up,bytes_down,time_scale,build,idle";

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Output directory; every process runs with it as working directory.
    pub out: PathBuf,
    /// The `tyrant` binary the processes run.
    pub bin: PathBuf,
    /// Command prefix per process; `{host}`, `{dir}` (absolute output directory) and `{id}`
    /// are replaced. None: processes run directly (hosts must then be `local`).
    pub exec: Option<String>,
    /// Only runs whose name contains this.
    pub only: Option<String>,
    /// Runs executed at once (local only): run j of a batch moves to 127.j.x.y.
    pub jobs: usize,
    /// Keep the leechers' downloaded data (default: deleted when the run ends).
    pub keep_data: bool,
    /// Run once per remote host after each run, before its stats are read (`sh -c`, with
    /// `{host}`, `{dir}` and `{run}` replaced), e.g.
    /// `rsync -a {host}:{dir}/runs/{run}/ {dir}/runs/{run}/` when nodes share no directory.
    pub collect: Option<String>,
    /// Progress lines on stdout.
    pub verbose: bool,
    /// Start even when the processes may need more threads than the machine allows.
    pub ignore_thread_limit: bool,
}

/// What `run_manifest` did.
#[derive(Debug, Default)]
pub struct Totals {
    pub runs: usize,
    pub skipped: usize,
    pub downloads: usize,
    pub unfinished: usize,
    /// Processes that exited with an error (each also named on stderr).
    pub failures: usize,
    pub interrupted: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

/// Ctrl-C / SIGTERM set a flag the runner polls; it then kills its children and returns.
/// std links libc, so the two C functions are declared here rather than adding a crate.
pub fn install_stop_handler() {
    extern "C" fn on_signal(_: std::os::raw::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    extern "C" {
        fn signal(
            signum: std::os::raw::c_int,
            handler: extern "C" fn(std::os::raw::c_int),
        ) -> usize;
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        signal(2, on_signal); // SIGINT
        signal(15, on_signal); // SIGTERM
    }
}

fn stopped() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Execute every run of `m` (those not already done), appending to `out/results.csv`.
pub fn run_manifest(m: &Manifest, o: &RunOptions) -> Result<Totals, String> {
    let jobs = o.jobs.max(1);
    if o.exec.is_none() {
        let remote: Vec<&str> = m
            .runs
            .iter()
            .flat_map(|r| r.peers.iter().map(|p| p.host.as_str()))
            .chain(std::iter::once(m.tracker.host.as_str()))
            .filter(|h| *h != "local")
            .collect();
        if let Some(h) = remote.first() {
            return Err(format!(
                "run: host '{}' is not local; give --exec (e.g. 'ip netns exec {{host}}')",
                h
            ));
        }
    } else if jobs > 1 {
        return Err("run: --jobs > 1 only works for local runs (no --exec)".into());
    }
    if jobs > 1 && m.runs.iter().any(|r| r.peers.iter().any(|p| !is_loopback(p.addr))) {
        return Err("run: --jobs > 1 needs every peer on 127.0.0.0/16".into());
    }
    if let Some(p) = m.runs.iter().flat_map(|r| &r.peers).find(|p| p.client != "tyrant") {
        return Err(format!(
            "run: peer {} is played by {}; tyrant-lab runs only tyrant (reproduction/realswarm.py runs real clients)",
            p.id, p.client
        ));
    }
    let wanted = |r: &&Run| o.only.as_ref().map_or(true, |s| r.name.contains(s.as_str()));
    // Before anything is written or started: past a thread limit a run fails partway, in odd
    // ways (threads.rs). Processes behind ssh hold their threads on other machines.
    let ssh = o.exec.as_deref().map_or(false, |t| t.trim_start().starts_with("ssh"));
    if !o.ignore_thread_limit && !ssh {
        if let Some(limit) = threads::tightest() {
            threads::verdict(&m.runs.iter().filter(wanted).collect::<Vec<_>>(), jobs, &limit)?;
        }
    }
    fs::create_dir_all(&o.out).map_err(|e| format!("cannot create {}: {}", o.out.display(), e))?;
    let out = fs::canonicalize(&o.out).map_err(|e| format!("{}: {}", o.out.display(), e))?;
    let text = m.to_text();
    let mpath = out.join("manifest.txt");
    if let Ok(old) = fs::read_to_string(&mpath) {
        if !same_manifest(&old, m) {
            return Err(format!(
                "{} holds a different manifest; use another --out",
                mpath.display()
            ));
        }
    }
    let build = build_of(&o.bin);
    let csv = out.join("results.csv");
    if let Ok(old) = fs::read_to_string(&csv) {
        if old.lines().next().map_or(false, |h| h.trim() != CSV_HEADER) {
            return Err(format!(
                "{}: written by an older tyrant-lab; use another --out",
                csv.display()
            ));
        }
        let i = CSV_HEADER.split(',').count() - 2;
        let other = old.lines().skip(1).filter_map(|l| l.split(',').nth(i)).find(|b| *b != build);
        if let Some(b) = other {
            return Err(format!(
                "{} holds runs of tyrant build {}, and {} is build {}: one experiment, one \
                 binary (use another --out)",
                csv.display(),
                b,
                o.bin.display(),
                build
            ));
        }
    }
    // What ran where, one line per invocation, kept across resumptions.
    let mut ran: Vec<String> = fs::read_to_string(&mpath)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("# ran "))
        .map(str::to_string)
        .collect();
    ran.push(format!(
        "# ran unix={} build={} lab={} bin={} host={} cores={} jobs={} exec={}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build,
        tyrant::BUILD,
        o.bin.display(),
        fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim(),
        thread::available_parallelism().map_or(0, |n| n.get()),
        jobs,
        o.exec.as_deref().unwrap_or("-").replace(' ', "%20")
    ));
    write(&mpath, format!("{}{}\n", text, ran.join("\n")).as_bytes())?;
    prepare_payload(m, &out, jobs)?;
    if !csv.exists() {
        write(&csv, format!("{}\n", CSV_HEADER).as_bytes())?;
    }
    let mut sum = Totals::default();
    let todo: Vec<&Run> = m
        .runs
        .iter()
        .filter(wanted)
        .filter(|r| {
            let done = out.join("runs").join(&r.name).join("done").exists();
            if done {
                sum.skipped += 1;
            }
            !done
        })
        .collect();
    let total = todo.len();
    let mut first = 1;
    for batch in batches(&todo, jobs) {
        if stopped() {
            break;
        }
        if o.verbose {
            let names: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
            println!(
                "run {}/{}: {} (S={}, {:.0} s real)",
                first,
                total,
                names.join(" "),
                m.time_scale,
                batch[0].duration / m.time_scale
            );
        }
        let results: Vec<Result<RunOutcome, String>> = thread::scope(|s| {
            let handles: Vec<_> = batch
                .iter()
                .enumerate()
                .map(|(lane, run)| {
                    let out = &out;
                    s.spawn(move || run_one(m, run, lane, out, o))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("run thread panicked".into())))
                .collect()
        });
        first += batch.len();
        for (run, res) in batch.iter().zip(results) {
            let mut r = res?;
            for row in r.rows.iter_mut() {
                row.build = build.clone();
                row.idle = r.idle.map(|(all, _)| all);
            }
            sum.failures += r.failures;
            if r.interrupted {
                sum.interrupted = true;
                continue;
            }
            append(&csv, &r.rows)?;
            let dir = out.join("runs").join(&run.name);
            write(&dir.join("done"), b"")?;
            sum.runs += 1;
            sum.downloads += r.rows.iter().filter(|row| row.finish.is_some()).count();
            sum.unfinished += r.rows.iter().filter(|row| row.finish.is_none()).count();
            if o.verbose {
                let focus: Vec<String> = r
                    .rows
                    .iter()
                    .filter(|row| row.focus && row.finish.is_some())
                    .map(|row| format!("{:.0}", row.seconds().unwrap_or(0.0)))
                    .collect();
                let cpu = r.idle.map_or(String::new(), |(all, low)| {
                    format!("; CPU idle {:.0} % (lowest 5 s: {:.0} %)", all * 100.0, low * 100.0)
                });
                println!(
                    "  {}: {} downloads, {} unfinished, focus peer times (nominal s): {}{}",
                    run.name,
                    r.rows.iter().filter(|row| row.finish.is_some()).count(),
                    r.rows.iter().filter(|row| row.finish.is_none()).count(),
                    if focus.is_empty() { "-".to_string() } else { focus.join(" ") },
                    cpu
                );
            }
        }
    }
    if stopped() {
        sum.interrupted = true;
    }
    Ok(sum)
}

/// The runs still to do, in plan order, cut into batches of at most `jobs` that run side by
/// side. A repetition (one `group`: the arms a paired ratio compares) goes into one batch
/// whole when it fits in `jobs`, so both arms of a ratio run at the same time under the same
/// load; a batch is left short rather than split one. Only a repetition larger than `jobs`
/// is split, into consecutive batches. (Plain `chunks(jobs)` put the two arms of a
/// repetition 20 minutes apart whenever `jobs` was odd.)
fn batches<'a>(todo: &[&'a Run], jobs: usize) -> Vec<Vec<&'a Run>> {
    let jobs = jobs.max(1);
    let mut groups: Vec<Vec<&'a Run>> = Vec::new();
    for &r in todo {
        match groups.iter_mut().find(|g| g[0].group == r.group) {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    let mut out: Vec<Vec<&'a Run>> = Vec::new();
    let mut cur: Vec<&'a Run> = Vec::new();
    for g in groups {
        if cur.len() + g.len() > jobs && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        for r in g {
            if cur.len() == jobs {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(r);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Whether an output directory's manifest.txt is `m`: compared as manifests, not as text,
/// so that a directory written by an older tyrant-lab (another comment block at the top)
/// still resumes.
fn same_manifest(old_text: &str, m: &Manifest) -> bool {
    Manifest::from_text(old_text).map_or(false, |old| &old == m)
}

fn is_loopback(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 127 && o[1] == 0
}

/// Lane j of a batch: 127.0.x.y → 127.j.x.y, so concurrent runs never share an address
/// (each lane has its own tracker, hence its own torrent file naming it).
fn lane_addr(a: Ipv4Addr, lane: usize) -> Ipv4Addr {
    let o = a.octets();
    if lane == 0 || !is_loopback(a) {
        return a;
    }
    Ipv4Addr::new(o[0], lane as u8, o[2], o[3])
}

fn lane_torrent(m: &Manifest, lane: usize) -> String {
    if lane == 0 {
        m.torrent.path.clone()
    } else {
        format!("lane{}-{}", lane, m.torrent.path)
    }
}

/// The payload is derived from the manifest seed, so every rerun moves the same bytes.
fn prepare_payload(m: &Manifest, out: &Path, lanes: usize) -> Result<(), String> {
    let seed_dir = out.join("seed");
    fs::create_dir_all(&seed_dir).map_err(|e| format!("{}: {}", seed_dir.display(), e))?;
    let file = seed_dir.join(&m.torrent.file);
    let fresh = fs::metadata(&file).map(|md| md.len() != m.torrent.size).unwrap_or(true);
    if fresh {
        let mut rng = Rng::new(m.seed ^ 0x7061_796c_6f61_6400);
        let mut w = std::io::BufWriter::new(
            File::create(&file).map_err(|e| format!("{}: {}", file.display(), e))?,
        );
        let mut left = m.torrent.size;
        while left > 0 {
            let word = rng.next_u64().to_le_bytes();
            let n = left.min(8) as usize;
            w.write_all(&word[..n]).map_err(|e| format!("{}: {}", file.display(), e))?;
            left -= n as u64;
        }
        w.flush().map_err(|e| format!("{}: {}", file.display(), e))?;
    }
    for lane in 0..lanes {
        let addr = lane_addr(m.tracker.addr, lane);
        let url = format!("http://{}:{}/announce", addr, m.tracker.port);
        let bytes = metainfo::make_torrent(
            &file,
            &url,
            Some(u64::from(m.torrent.piece_kib) * 1024),
            false,
        )?;
        write(&out.join(lane_torrent(m, lane)), &bytes)?;
    }
    Ok(())
}

/// One completed (or, with `finish: None`, unfinished) download.
#[derive(Clone, Debug)]
struct Row {
    peer: String,
    strategy: String,
    role: String,
    focus: bool,
    up: f64,
    join: u32,
    /// Nominal seconds since the run started.
    start: f64,
    finish: Option<f64>,
    bytes_up: u64,
    bytes_down: u64,
    run: String,
    group: String,
    variant: String,
    rep: usize,
    cap: f64,
    scale: f64,
    build: String,
    idle: Option<f64>,
}

impl Row {
    fn seconds(&self) -> Option<f64> {
        self.finish.map(|f| f - self.start)
    }
    fn csv(&self) -> String {
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{:.3}", v));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.3},{},{},{},{},{},{},{}",
            self.run,
            self.group,
            self.variant,
            self.rep,
            self.cap,
            self.peer,
            self.strategy,
            self.role,
            u8::from(self.focus),
            self.up,
            self.join,
            self.start,
            opt(self.finish),
            opt(self.seconds()),
            self.bytes_up,
            self.bytes_down,
            self.scale,
            self.build,
            self.idle.map_or(String::new(), |x| format!("{:.3}", x))
        )
    }
}

/// The client's build as `tyrant --version` prints it (its last word); `unknown` for a
/// binary too old to say.
fn build_of(bin: &Path) -> String {
    let out = std::process::Command::new(bin).arg("--version").output();
    let text = out.ok().filter(|o| o.status.success()).map(|o| o.stdout).unwrap_or_default();
    let word = String::from_utf8_lossy(&text).split_whitespace().last().map(str::to_string);
    word.filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .unwrap_or_else(|| "unknown".into())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {}", path.display(), e))
}

fn append(path: &Path, rows: &[Row]) -> Result<(), String> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {}", path.display(), e))?;
    let mut text = String::new();
    for r in rows {
        text.push_str(&r.csv());
        text.push('\n');
    }
    f.write_all(text.as_bytes()).map_err(|e| format!("cannot write {}: {}", path.display(), e))
}

#[cfg(test)]
mod tests;
