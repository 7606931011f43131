//! One run of a manifest, from the tracker's start to the last process's exit: every peer
//! spawned at its time-scaled start offset (through the `--exec` prefix when there is one),
//! closed-loop leechers restarted empty after each download, stragglers killed, remote
//! results collected, and one row per download read back from the stats files.

use super::observe::{read_done, CpuLog};
use super::{lane_addr, lane_torrent, stopped, Row, RunOptions};
use crate::manifest::{Manifest, Peer, Role, Run};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use tyrant::rng::Rng;

/// A closed-loop leecher rejoins this many nominal seconds after finishing (downpour).
const REJOIN_DELAY: f64 = 1.0;
/// Real seconds a process may overrun its `--time-limit` before it is killed.
const GRACE: Duration = Duration::from_secs(15);

/// What one run left behind: its rows for results.csv and how it went.
pub(super) struct RunOutcome {
    pub(super) rows: Vec<Row>,
    pub(super) failures: usize,
    pub(super) interrupted: bool,
    /// Machine-wide CPU idle share over the run and its lowest 5 s value.
    pub(super) idle: Option<(f64, f64)>,
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

pub(super) fn run_one(
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
    for sub in ["stats", "trace", "logs", "data", "memory"] {
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
    let mut tracker_args = fix_args(&run.tracker_args);
    // Past every peer's limit and the grace: stops the tracker even if the runner is lost.
    tracker_args.push("--time-limit".into());
    tracker_args.push(format!("{:.3}", (run_len + GRACE * 2).as_secs_f64()));
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
                return Ok(RunOutcome { rows: vec![], failures, interrupted: true, idle: None });
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
                            "tyrant-lab run: {} peer {} (join {}) exited with {} after {:.1} s; see {}",
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
                        "tyrant-lab run: {} peer {} overran its time limit; killed",
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
                            "tyrant-lab run: {} peer {} exited with {} at the end of the run",
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
        let hosts: std::collections::BTreeSet<&str> =
            run.peers.iter().map(|p| p.host.as_str()).filter(|h| *h != "local").collect();
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
                eprintln!("tyrant-lab run: {}: collect from {} failed: {}", run.name, h, cmd);
            }
        }
    }
    if interrupted {
        return Ok(RunOutcome { rows: vec![], failures, interrupted, idle });
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
                build: String::new(),
                idle: None,
            });
        }
    }
    if !o.keep_data {
        let data = dir.join("data");
        let _ = fs::remove_dir_all(&data);
    }
    Ok(RunOutcome { rows, failures, interrupted, idle })
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
    cmd.args(&words[1..]).current_dir(out).stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    cmd.spawn().map_err(|e| format!("cannot start {} ({}): {}", id, words[0], e))
}
