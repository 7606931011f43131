//! `tyrant swarm run MANIFEST` (issue 4 items 5–6): executes a manifest. Every peer and the
//! tracker is its own `tyrant` process, started at its (time-scaled) start offset, on its own
//! 127.0.0.N address locally or through an `--exec` prefix (`ip netns exec {host}`,
//! `ssh {host} cd {dir} &&`); closed-loop leechers are restarted empty after each download
//! (downpour's `peer_run.sh`); each finished run appends one CSV row per download to
//! `results.csv`. The runner owns only processes it spawned: Ctrl-C kills exactly those.
//!
//! Layout of the output directory (the processes' working directory):
//! `manifest.txt`, `seed/PAYLOAD`, `swarm.torrent`, `results.csv`, and per run
//! `runs/RUN/{stats,trace,logs,data}/`, `runs/RUN/pids` (`ID PID` per spawn) and
//! `runs/RUN/done` once its rows are in `results.csv` (a rerun skips such runs).

use crate::manifest::{Manifest, Peer, Role, Run};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use tyrant::metainfo;
use tyrant::rng::Rng;

/// The CSV header (issue 4 item 6); `swarm report` (study.rs) reads exactly this.
pub const CSV_HEADER: &str = "run,group,variant,rep,cap,peer,strategy,role,focus,up,join,start,finish,seconds,bytes_up,bytes_down,time_scale";

/// A closed-loop leecher rejoins this many nominal seconds after finishing (downpour).
const REJOIN_DELAY: f64 = 1.0;
/// Real seconds a process may overrun its `--time-limit` before it is killed.
const GRACE: Duration = Duration::from_secs(15);

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
                "swarm run: host '{}' is not local; give --exec (e.g. 'ip netns exec {{host}}')",
                h
            ));
        }
    } else if jobs > 1 {
        return Err("swarm run: --jobs > 1 only works for local runs (no --exec)".into());
    }
    if jobs > 1
        && m.runs
            .iter()
            .any(|r| r.peers.iter().any(|p| !is_loopback(p.addr)))
    {
        return Err("swarm run: --jobs > 1 needs every peer on 127.0.0.0/16".into());
    }
    fs::create_dir_all(&o.out).map_err(|e| format!("cannot create {}: {}", o.out.display(), e))?;
    let out = fs::canonicalize(&o.out).map_err(|e| format!("{}: {}", o.out.display(), e))?;
    let text = m.to_text();
    let mpath = out.join("manifest.txt");
    if let Ok(old) = fs::read_to_string(&mpath) {
        if old != text {
            return Err(format!(
                "{} holds a different manifest; use another --out",
                mpath.display()
            ));
        }
    }
    write(&mpath, text.as_bytes())?;
    prepare_payload(m, &out, jobs)?;
    let csv = out.join("results.csv");
    if !csv.exists() {
        write(&csv, format!("{}\n", CSV_HEADER).as_bytes())?;
    }
    let mut sum = Totals::default();
    let todo: Vec<&Run> = m
        .runs
        .iter()
        .filter(|r| {
            o.only
                .as_ref()
                .map_or(true, |s| r.name.contains(s.as_str()))
        })
        .filter(|r| {
            let done = out.join("runs").join(&r.name).join("done").exists();
            if done {
                sum.skipped += 1;
            }
            !done
        })
        .collect();
    let total = todo.len();
    for (b, batch) in todo.chunks(jobs).enumerate() {
        if stopped() {
            break;
        }
        if o.verbose {
            let names: Vec<&str> = batch.iter().map(|r| r.name.as_str()).collect();
            println!(
                "run {}/{}: {} (S={}, {:.0} s real)",
                b * jobs + 1,
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
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("run thread panicked".into()))
                })
                .collect()
        });
        for (run, res) in batch.iter().zip(results) {
            let r = res?;
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
                    format!(
                        "; CPU idle {:.0} % (lowest 5 s: {:.0} %)",
                        all * 100.0,
                        low * 100.0
                    )
                });
                println!(
                    "  {}: {} downloads, {} unfinished, focus peer times (nominal s): {}{}",
                    run.name,
                    r.rows.iter().filter(|row| row.finish.is_some()).count(),
                    r.rows.iter().filter(|row| row.finish.is_none()).count(),
                    if focus.is_empty() {
                        "-".to_string()
                    } else {
                        focus.join(" ")
                    },
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
    let fresh = fs::metadata(&file)
        .map(|md| md.len() != m.torrent.size)
        .unwrap_or(true);
    if fresh {
        let mut rng = Rng::new(m.seed ^ 0x7061_796c_6f61_6400);
        let mut w = std::io::BufWriter::new(
            File::create(&file).map_err(|e| format!("{}: {}", file.display(), e))?,
        );
        let mut left = m.torrent.size;
        while left > 0 {
            let word = rng.next_u64().to_le_bytes();
            let n = left.min(8) as usize;
            w.write_all(&word[..n])
                .map_err(|e| format!("{}: {}", file.display(), e))?;
            left -= n as u64;
        }
        w.flush()
            .map_err(|e| format!("{}: {}", file.display(), e))?;
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
}

impl Row {
    fn seconds(&self) -> Option<f64> {
        self.finish.map(|f| f - self.start)
    }
    fn csv(&self) -> String {
        let opt = |x: Option<f64>| x.map_or(String::new(), |v| format!("{:.3}", v));
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.3},{},{},{},{},{}",
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
            self.scale
        )
    }
}

struct RunOutcome {
    rows: Vec<Row>,
    failures: usize,
    interrupted: bool,
    /// Machine-wide CPU idle share over the run and its lowest 5 s value.
    idle: Option<(f64, f64)>,
}

/// A peer's process slot over the run.
enum State {
    /// Not started yet; (re)start at this real offset.
    Waiting(Duration),
    Running {
        child: Child,
        /// Real offset at which it was spawned.
        at: Duration,
    },
    Finished,
}

struct Slot<'a> {
    peer: &'a Peer,
    join: u32,
    state: State,
    /// (join, real spawn offset) of every spawn, to read the stats files at the end.
    spawns: Vec<(u32, Duration)>,
}

fn run_one(
    m: &Manifest,
    run: &Run,
    lane: usize,
    out: &Path,
    o: &RunOptions,
) -> Result<RunOutcome, String> {
    let dir = out.join("runs").join(&run.name);
    if dir.exists() {
        // An earlier, interrupted attempt: start it over.
        fs::remove_dir_all(&dir).map_err(|e| format!("{}: {}", dir.display(), e))?;
    }
    for sub in ["stats", "trace", "logs", "data"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(|e| format!("{}: {}", d.display(), e))?;
    }
    let mut pids = File::create(dir.join("pids")).map_err(|e| e.to_string())?;
    let scale = m.time_scale;
    let real = |nominal: f64| Duration::from_secs_f64((nominal / scale).max(0.0));
    let run_len = real(run.duration);
    let torrent = lane_torrent(m, lane);
    let fix_args = |args: &[String]| -> Vec<String> {
        args.iter()
            .map(|a| match a.parse::<Ipv4Addr>() {
                Ok(ip) => lane_addr(ip, lane).to_string(),
                Err(_) if *a == m.torrent.path => torrent.clone(),
                Err(_) => a.clone(),
            })
            .collect()
    };
    let log_file = |name: &str| -> Result<(File, File), String> {
        let p = dir.join("logs").join(format!("{}.log", name));
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| format!("{}: {}", p.display(), e))?;
        let g = f.try_clone().map_err(|e| e.to_string())?;
        Ok((f, g))
    };

    let mut failures = 0;
    // The tracker first; peers start once it accepts connections.
    let tracker_args = fix_args(&run.tracker_args);
    let (lo, le) = log_file("tracker")?;
    let mut tracker = spawn(o, out, &m.tracker.host, "tracker", &tracker_args, lo, le)?;
    let _ = writeln!(pids, "tracker {}", tracker.id());
    let taddr = SocketAddr::from((lane_addr(m.tracker.addr, lane), m.tracker.port));
    let ready = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&taddr, Duration::from_millis(200)).is_err() {
        if Instant::now() > ready || stopped() {
            let _ = tracker.kill();
            let _ = tracker.wait();
            if stopped() {
                return Ok(RunOutcome {
                    rows: vec![],
                    failures,
                    interrupted: true,
                    idle: None,
                });
            }
            return Err(format!(
                "{}: the tracker did not listen on {} within 10 s (see {})",
                run.name,
                taddr,
                dir.join("logs/tracker.log").display()
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }

    let mut slots: Vec<Slot> = run
        .peers
        .iter()
        .map(|p| Slot {
            peer: p,
            join: 0,
            state: State::Waiting(real(p.start)),
            spawns: Vec::new(),
        })
        .collect();
    let t0 = Instant::now();
    let mut cpu = CpuLog::new(&dir);
    let mut interrupted = false;
    loop {
        cpu.sample(t0.elapsed());
        if stopped() {
            interrupted = true;
            break;
        }
        let now = t0.elapsed();
        if now >= run_len {
            break;
        }
        for slot in slots.iter_mut() {
            match &mut slot.state {
                State::Waiting(at) if now >= *at => {
                    let left = run_len.saturating_sub(now);
                    // Too little time left to do anything useful: stay out.
                    if left < Duration::from_millis(500) {
                        slot.state = State::Finished;
                        continue;
                    }
                    let args = peer_args(slot.peer, slot.join, left, &fix_args);
                    let name = slot.peer.id.clone();
                    let (lo, le) = log_file(&name)?;
                    let child = spawn(o, out, &slot.peer.host, &name, &args, lo, le)?;
                    let _ = writeln!(pids, "{} {}", name, child.id());
                    slot.spawns.push((slot.join, now));
                    slot.state = State::Running { child, at: now };
                }
                State::Running { child, at } => {
                    let status = match child.try_wait() {
                        Ok(Some(s)) => s,
                        Ok(None) => continue,
                        Err(e) => return Err(format!("{}: wait: {}", slot.peer.id, e)),
                    };
                    let at = *at;
                    if !status.success() {
                        failures += 1;
                        eprintln!(
                            "swarm run: {} peer {} (join {}) exited with {} after {:.1} s; see {}",
                            run.name,
                            slot.peer.id,
                            slot.join,
                            status,
                            (now - at).as_secs_f64(),
                            dir.join("logs")
                                .join(format!("{}.log", slot.peer.id))
                                .display()
                        );
                        slot.state = State::Finished;
                        continue;
                    }
                    if slot.peer.role == Role::Loop {
                        // Rejoin as a new, empty peer (its data goes; its stats stay).
                        let data = dir.join("data").join(&slot.peer.id);
                        if data.exists() {
                            fs::remove_dir_all(&data)
                                .map_err(|e| format!("{}: {}", data.display(), e))?;
                        }
                        slot.join += 1;
                        slot.state = State::Waiting(now + real(REJOIN_DELAY));
                    } else {
                        slot.state = State::Finished;
                    }
                }
                _ => {}
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    // Every process got `--time-limit` up to the end of the run; wait for them to write
    // their `done` lines, then kill what is left (and everything, when interrupted).
    let deadline = Instant::now() + if interrupted { Duration::ZERO } else { GRACE };
    for slot in slots.iter_mut() {
        if let State::Running { child, .. } = &mut slot.state {
            if !wait_until(child, deadline) {
                if !interrupted {
                    failures += 1;
                    eprintln!(
                        "swarm run: {} peer {} overran its time limit; killed",
                        run.name, slot.peer.id
                    );
                }
                let _ = child.kill();
                let _ = child.wait();
            } else if !interrupted {
                // An error exit at the end still counts as a failure.
                if let Ok(Some(s)) = child.try_wait() {
                    if !s.success() {
                        failures += 1;
                        eprintln!(
                            "swarm run: {} peer {} exited with {} at the end of the run",
                            run.name, slot.peer.id, s
                        );
                    }
                }
            }
        }
    }
    let _ = tracker.kill();
    let _ = tracker.wait();
    let idle = cpu.finish();
    if let (Some(t), false) = (&o.collect, interrupted) {
        let hosts: std::collections::BTreeSet<&str> = run
            .peers
            .iter()
            .map(|p| p.host.as_str())
            .filter(|h| *h != "local")
            .collect();
        for h in hosts {
            let cmd = t
                .replace("{host}", h)
                .replace("{dir}", &out.to_string_lossy())
                .replace("{run}", &run.name);
            let ok = Command::new("sh")
                .args(["-c", &cmd])
                .current_dir(out)
                .stdin(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !ok {
                failures += 1;
                eprintln!(
                    "swarm run: {}: collect from {} failed: {}",
                    run.name, h, cmd
                );
            }
        }
    }
    if interrupted {
        return Ok(RunOutcome {
            rows: vec![],
            failures,
            interrupted,
            idle,
        });
    }
    let mut rows = Vec::new();
    for slot in &slots {
        if slot.peer.role == Role::Seeder {
            continue;
        }
        for &(join, at) in &slot.spawns {
            let stats = dir.join(stats_rel(slot.peer, join));
            let d = read_done(&stats);
            let start = at.as_secs_f64() * scale;
            rows.push(Row {
                peer: slot.peer.id.clone(),
                strategy: slot.peer.kind.as_str().to_string(),
                role: slot.peer.role.as_str().to_string(),
                focus: slot.peer.focus,
                up: slot.peer.up,
                join,
                start,
                finish: d.download_secs.map(|s| start + s * scale),
                bytes_up: d.uploaded,
                bytes_down: d.downloaded,
                run: run.name.clone(),
                group: run.group.clone(),
                variant: run.variant.clone(),
                rep: run.rep,
                cap: run.cap,
                scale,
            });
        }
    }
    if !o.keep_data {
        let data = dir.join("data");
        let _ = fs::remove_dir_all(&data);
    }
    Ok(RunOutcome {
        rows,
        failures,
        interrupted,
        idle,
    })
}

/// Whether the machine kept up (issue 6, study): the machine-wide idle share of all CPUs
/// from /proc/stat, every 5 s of the run, into `runs/RUN/cpu.txt`, then a summary line.
/// A time-scaled run is only valid while there is idle CPU left (concurrent runs share it).
struct CpuLog {
    file: Option<File>,
    last: Option<(Duration, u64, u64)>,
    first: Option<(u64, u64)>,
    min_share: f64,
}

impl CpuLog {
    fn new(dir: &Path) -> CpuLog {
        CpuLog {
            file: File::create(dir.join("cpu.txt")).ok(),
            last: None,
            first: None,
            min_share: 1.0,
        }
    }

    /// (idle + iowait, total) jiffies over all CPUs; None off Linux.
    fn read() -> Option<(u64, u64)> {
        let text = fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|w| w.parse().ok())
            .collect();
        if v.len() < 5 {
            return None;
        }
        Some((v[3] + v[4], v.iter().sum()))
    }

    fn sample(&mut self, t: Duration) {
        if let Some((lt, _, _)) = self.last {
            if t < lt + Duration::from_secs(5) {
                return;
            }
        }
        let (idle, total) = match CpuLog::read() {
            Some(x) => x,
            None => return,
        };
        if self.first.is_none() {
            self.first = Some((idle, total));
        }
        if let Some((_, li, lt)) = self.last {
            if total > lt {
                let share = (idle - li.min(idle)) as f64 / (total - lt) as f64;
                self.min_share = self.min_share.min(share);
                if let Some(f) = self.file.as_mut() {
                    let _ = writeln!(f, "t={:.0} idle_share={:.3}", t.as_secs_f64(), share);
                }
            }
        }
        self.last = Some((t, idle, total));
    }

    /// (idle share over the run, lowest 5 s idle share), also written to cpu.txt.
    fn finish(&mut self) -> Option<(f64, f64)> {
        if let (Some((fi, ft)), Some((idle, total))) = (self.first, CpuLog::read()) {
            if total > ft {
                let share = (idle - fi.min(idle)) as f64 / (total - ft) as f64;
                if let Some(f) = self.file.as_mut() {
                    let _ = writeln!(
                        f,
                        "summary idle_share={:.3} min_5s_idle_share={:.3}",
                        share, self.min_share
                    );
                }
                return Some((share, self.min_share));
            }
        }
        None
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => return false,
        }
    }
}

/// The stats file of a peer's join-th download, relative to the run directory:
/// `stats/ID.txt`, then `stats/ID.j1.txt`, `stats/ID.j2.txt`, ...
fn stats_rel(p: &Peer, join: u32) -> String {
    if join == 0 {
        format!("stats/{}.txt", p.id)
    } else {
        format!("stats/{}.j{}.txt", p.id, join)
    }
}

/// The manifest's argument list for this spawn: lane addresses, `--stats` per join, a new
/// RNG seed per rejoin (derived, so reruns repeat), and a time limit at the run's end so
/// that even processes the runner loses (remote hosts) stop by themselves.
fn peer_args(
    p: &Peer,
    join: u32,
    left: Duration,
    fix: &dyn Fn(&[String]) -> Vec<String>,
) -> Vec<String> {
    let mut args = fix(&p.args);
    let mut i = 0;
    while i + 1 < args.len() {
        match args[i].as_str() {
            // runs/RUN/stats/ID.txt → runs/RUN/stats/ID.jK.txt, the same for the trace
            "--stats" | "--trace" if join > 0 => {
                let old = args[i + 1].clone();
                args[i + 1] = match old.strip_suffix(".txt") {
                    Some(stem) => format!("{}.j{}.txt", stem, join),
                    None => format!("{}.j{}", old, join),
                };
            }
            "--rng-seed" if join > 0 => {
                let s: u64 = args[i + 1].parse().unwrap_or(0);
                let mut r = Rng::new(s ^ u64::from(join).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                args[i + 1] = r.next_u64().to_string();
            }
            _ => {}
        }
        i += 1;
    }
    let limit = format!("{:.3}", left.as_secs_f64());
    // Before the torrent path, which is last.
    let at = args.len().saturating_sub(1);
    args.insert(at, limit);
    args.insert(at, "--time-limit".into());
    args
}

fn spawn(
    o: &RunOptions,
    out: &Path,
    host: &str,
    id: &str,
    args: &[String],
    stdout: File,
    stderr: File,
) -> Result<Child, String> {
    let mut words: Vec<String> = match &o.exec {
        Some(t) => t
            .split_whitespace()
            .map(|w| {
                w.replace("{host}", host)
                    .replace("{dir}", &out.to_string_lossy())
                    .replace("{id}", id)
            })
            .collect(),
        None => vec![],
    };
    words.push(o.bin.to_string_lossy().into_owned());
    words.extend(args.iter().cloned());
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .current_dir(out)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    cmd.spawn()
        .map_err(|e| format!("cannot start {} ({}): {}", id, words[0], e))
}

/// The `done` line of a stats file: download time and bytes (real units).
#[derive(Debug, Default, PartialEq)]
struct DoneLine {
    download_secs: Option<f64>,
    downloaded: u64,
    uploaded: u64,
}

fn read_done(path: &Path) -> DoneLine {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(_) => return DoneLine::default(),
    };
    let mut last = None;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        if line.starts_with("done ") {
            last = Some(line);
        }
    }
    let line = match last {
        Some(l) => l,
        None => return DoneLine::default(),
    };
    let kv: BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|w| w.split_once('='))
        .collect();
    let complete = kv.get("complete") == Some(&"true");
    DoneLine {
        download_secs: kv
            .get("download_time")
            .and_then(|s| s.parse().ok())
            .filter(|_| complete),
        downloaded: kv
            .get("downloaded")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        uploaded: kv.get("uploaded").and_then(|s| s.parse().ok()).unwrap_or(0),
    }
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
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {}", path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_move_only_loopback_second_octet() {
        let a = Ipv4Addr::new(127, 0, 1, 7);
        assert_eq!(lane_addr(a, 0), a);
        assert_eq!(lane_addr(a, 3), Ipv4Addr::new(127, 3, 1, 7));
        let b = Ipv4Addr::new(10, 0, 0, 2);
        assert_eq!(lane_addr(b, 3), b);
    }

    #[test]
    fn done_line_is_parsed_and_incomplete_has_no_time() {
        let dir = std::env::temp_dir().join(format!("tyrant-runner-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        fs::write(
            &p,
            "start x=1\ntick t=1\ndone t=9.00 download_time=8.500 downloaded=100 uploaded=50 complete=true reason=x\n",
        )
        .unwrap();
        assert_eq!(
            read_done(&p),
            DoneLine {
                download_secs: Some(8.5),
                downloaded: 100,
                uploaded: 50
            }
        );
        fs::write(
            &p,
            "done t=9.00 download_time=- downloaded=10 uploaded=5 complete=false reason=x\n",
        )
        .unwrap();
        assert_eq!(read_done(&p).download_secs, None);
        // The sybil total line has the same keys after `identities=`.
        fs::write(
            &p,
            "done identities=2 t=9 download_time=3.000 downloaded=7 uploaded=1 complete=true\n",
        )
        .unwrap();
        assert_eq!(read_done(&p).download_secs, Some(3.0));
        assert_eq!(read_done(&dir.join("missing")), DoneLine::default());
        let _ = fs::remove_dir_all(&dir);
    }
}
