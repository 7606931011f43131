//! Threads (issue 13): how many a manifest's processes may hold at once, and how many this
//! machine lets them start. A tyrant process has a few threads plus a reader and a writer
//! per connection (src/conn.rs), so a 300-peer swarm outgrows Linux's default
//! kernel.pid_max (32768); past a limit spawns fail and peers go missing partway through a
//! run, so `run` refuses such a run up front. This file owns the count (pure, from the
//! manifest's argument lists) and the limits (read from /proc and the cgroup file system).

use crate::manifest::{Peer, Run};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The client's `--max-peers` defaults (src/strategy.rs `peer_set`, strategy/thief.rs).
const MAX_PEERS: usize = 60;
const THIEF_MAX_PEERS: usize = 1000;
/// HTTP connections the tracker serves at once, one thread each (src/trackerd/http.rs).
const TRACKER_CONNECTIONS: usize = 512;

/// A bound on threads, the threads already counted against it, its name, and how to raise
/// it (`{want}` stands for the total the run needs).
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    pub max: usize,
    pub used: usize,
    pub name: String,
    pub raise: String,
}

fn flag<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1)?.parse().ok()
}

/// A peer's `--max-peers` as its args give it.
pub fn max_peers(p: &Peer) -> usize {
    let thief = p.args.iter().any(|a| a == "--thief");
    flag(&p.args, "--max-peers").unwrap_or(if thief { THIEF_MAX_PEERS } else { MAX_PEERS })
}

/// Threads of one process at its worst moment, each identity with `conns` connections:
/// main, then per identity the acceptor, the announcer and its deadline watchdog (during
/// an HTTP announce), the pacer (`--up` > 0), the disk thread (not `--seed`) and, for
/// BitSybil, the identity's own thread; two per connection (measured, README
/// "Performance"). Left out: up to 16 incoming connections per identity past
/// `--max-peers`, each a reader only until its handshake or eviction (README, "Reliability").
fn process(args: &[String], conns: usize) -> usize {
    let n: usize = flag(args, "--sybil").unwrap_or(1).max(1);
    let paced = flag::<f64>(args, "--up").map_or(false, |u| u > 0.0);
    let leech = !args.iter().any(|a| a == "--seed");
    1 + n * (3 + usize::from(paced) + usize::from(leech) + usize::from(n > 1) + 2 * conns)
}

/// The most threads alive at once when `jobs` runs go side by side (the largest runs, to
/// be safe): per run the tracker (3, plus one per identity announcing at once), tyrant-lab's
/// lane thread, and every peer (a closed-loop peer restarts only after its process
/// exited), each identity connected to at most `max_peers` and to no more than the run's
/// other identities, so BitThief's 1000 does not count in a 30-peer swarm.
pub fn need(runs: &[&Run], jobs: usize, max_peers: &dyn Fn(&Peer) -> usize) -> usize {
    let mut each: Vec<usize> = runs
        .iter()
        .map(|r| {
            let ids: usize =
                r.peers.iter().map(|p| flag(&p.args, "--sybil").unwrap_or(1).max(1)).sum();
            let peers: usize = r
                .peers
                .iter()
                .map(|p| process(&p.args, max_peers(p).min(ids.saturating_sub(1))))
                .sum();
            4 + ids.min(TRACKER_CONNECTIONS) + peers
        })
        .collect();
    each.sort_unstable_by(|a, b| b.cmp(a));
    each.iter().take(jobs).sum()
}

/// Ok when `runs` at `jobs` lanes fit under `limit`; else the one line that refuses them,
/// with the remedies: raise the limit, fewer lanes, or the largest plan `max_peers` that
/// fits (it sets `--max-peers` for every peer whose flags do not: plan.rs).
pub fn verdict(runs: &[&Run], jobs: usize, limit: &Limit) -> Result<(), String> {
    let room = limit.max.saturating_sub(limit.used);
    let at = |j| need(runs, j, &max_peers);
    if at(jobs) <= room {
        return Ok(());
    }
    let raise = limit.raise.replace("{want}", &(at(jobs) + limit.used).to_string());
    let lanes = (1..jobs).rev().find(|&j| at(j) <= room);
    let top = runs.iter().flat_map(|r| r.peers.iter().map(max_peers)).max().unwrap_or(0);
    // The largest plan max_peers that fits, by bisection: need_at grows with it, `top`
    // does not fit, and a linear search re-counts every run up to 1000 times.
    let (mut fit, mut hi) = (0, top);
    while fit + 1 < hi {
        let mid = (fit + hi) / 2;
        if need_at(runs, jobs, mid) <= room {
            fit = mid;
        } else {
            hi = mid;
        }
    }
    Err(format!(
        "run: needs up to {} threads at once{}, but {} is {} and {} threads are in use: raise \
         it ({}){}{}, or pass --ignore-thread-limit",
        at(jobs),
        if jobs > 1 { format!(" ({} runs side by side)", jobs.min(runs.len())) } else { "".into() },
        limit.name,
        limit.max,
        limit.used,
        raise,
        lanes.map_or(String::new(), |j| format!(", or run --jobs {}", j)),
        if fit > 0 { format!(", or plan with max_peers={}", fit) } else { "".into() }
    ))
}

/// `need` with plan `max_peers=N` given: peers whose flags set `--max-peers` keep theirs.
fn need_at(runs: &[&Run], jobs: usize, n: usize) -> usize {
    need(runs, jobs, &|p: &Peer| flag(&p.flags, "--max-peers").unwrap_or(n))
}

/// The tightest limit on this machine now (least room left), None when none is readable.
pub fn tightest() -> Option<Limit> {
    // Root is exempt from RLIMIT_NPROC.
    let uid = fs::metadata("/proc/self").map_or(0, |m| m.uid());
    let user = if uid == 0 { None } else { Some(user_threads(uid)) };
    let all = limits(&|p| fs::read_to_string(p).ok(), user);
    all.into_iter().min_by_key(|l| l.max.saturating_sub(l.used))
}

/// The limits that the files `read` gives (the real ones, or fixtures in the tests) set;
/// `user` is the threads of this user when RLIMIT_NPROC binds it. Unreadable: no limit.
fn limits(read: &dyn Fn(&Path) -> Option<String>, user: Option<usize>) -> Vec<Limit> {
    let number = |p: &Path| read(p).and_then(|t| parse_max(&t));
    let all = read(Path::new("/proc/loadavg")).and_then(|t| loadavg_threads(&t)).unwrap_or(0);
    let mut limits = Vec::new();
    let mut add = |max: Option<usize>, used: usize, name: String, raise: String| {
        limits.extend(max.map(|max| Limit { max, used, name, raise }));
    };
    let sysctl = |key: &str, to: &str| format!("as root: sysctl -w kernel.{}={}", key, to);
    for (key, to) in [("pid_max", "4194304"), ("threads-max", "{want}")] {
        let max = number(&Path::new("/proc/sys/kernel").join(key));
        add(max, all, format!("kernel.{}", key), sysctl(key, to));
    }
    for dir in cgroup_dirs(&read(Path::new("/proc/self/cgroup")).unwrap_or_default()) {
        let (file, used) = (dir.join("pids.max"), number(&dir.join("pids.current")));
        let raise = format!("as root: echo {{want}} > {}", file.display());
        add(number(&file), used.unwrap_or(0), file.display().to_string(), raise);
    }
    if let Some(used) = user {
        let nproc = read(Path::new("/proc/self/limits")).and_then(|t| nproc_soft(&t));
        add(nproc, used, "ulimit -u (RLIMIT_NPROC)".into(), "ulimit -u {want}".into());
    }
    limits
}

/// A number file (`pid_max`, `pids.max`); cgroup's "max" is no limit.
fn parse_max(text: &str) -> Option<usize> {
    text.trim().parse().ok()
}

/// Threads on the machine: the total of /proc/loadavg's 4th field "running/total".
fn loadavg_threads(text: &str) -> Option<usize> {
    text.split_whitespace().nth(3)?.split('/').nth(1)?.parse().ok()
}

/// The soft "Max processes" of /proc/self/limits; "unlimited" is no limit.
fn nproc_soft(text: &str) -> Option<usize> {
    let line = text.lines().find_map(|l| l.strip_prefix("Max processes"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The directories whose pids.max bound this process, from /proc/self/cgroup: its pids
/// cgroup and every ancestor, under /sys/fs/cgroup (v2, `0::/path`) or
/// /sys/fs/cgroup/pids (v1, `N:pids:/path`).
fn cgroup_dirs(text: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':').skip(1);
        let (root, path) = match (f.next(), f.next()) {
            (Some(""), Some(p)) => ("/sys/fs/cgroup", p),
            (Some(c), Some(p)) if c.split(',').any(|c| c == "pids") => ("/sys/fs/cgroup/pids", p),
            _ => continue,
        };
        let mut dir = Some(Path::new(path.trim_start_matches('/')));
        while let Some(d) = dir {
            dirs.push(Path::new(root).join(d));
            dir = d.parent();
        }
    }
    dirs
}

/// Threads of processes that `uid` owns, which RLIMIT_NPROC counts.
fn user_threads(uid: u32) -> usize {
    let procs = fs::read_dir("/proc").into_iter().flatten().flatten();
    procs
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| e.metadata().map_or(false, |m| m.uid() == uid))
        .map(|e| fs::read_dir(e.path().join("task")).map_or(0, |t| t.count()))
        .sum()
}

#[cfg(test)]
mod tests;
