//! Helpers for the process-level tests: real `tyrant` processes on 127.0.0.1, temp dirs,
//! bounded waits, and children that are always killed.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tyrant"))
}

/// A child process killed when dropped, so a failing test never leaves peers behind.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Wait for exit up to `limit`; None on timeout.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tyrant-test-{}-{}-{}",
            tag,
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TYRANT_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Deterministic pseudo-random bytes.
pub fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Start `tyrant tracker` on an OS-chosen port; returns the process and the announce URL.
pub fn start_tracker(interval: u32) -> (Proc, String) {
    let mut child = Command::new(bin())
        .args(["tracker", "--port", "0", "--bind", "127.0.0.1", "--interval"])
        .arg(interval.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tracker");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("tracker listening on ")
        .unwrap_or_else(|| panic!("unexpected tracker output {:?}", line))
        .to_string();
    (Proc { child, name: "tracker".into() }, format!("http://{}/announce", addr))
}

pub fn make_torrent(path: &Path, announce: &str, piece_kib: u32, out: &Path) -> String {
    let o = Command::new(bin())
        .arg("make")
        .arg(path)
        .args(["--announce", announce, "--piece-size"])
        .arg(piece_kib.to_string())
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "make failed: {}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8_lossy(&o.stdout).to_string();
    s.split_whitespace().find_map(|w| w.strip_prefix("info_hash=")).unwrap().to_string()
}

/// Start a peer: `args` are extra options, `dir` its data directory; `RUST_LOG` is the
/// test's own, or info.
pub fn start_peer(name: &str, torrent: &Path, dir: &Path, args: &[&str]) -> Proc {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    start_peer_log(name, torrent, dir, args, &level)
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Parse `key=value` words of the last line starting with `prefix` in a stats file.
pub fn stats_field(stats: &Path, prefix: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(stats).ok()?;
    let line = text.lines().rev().find(|l| l.starts_with(prefix))?;
    line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{}=", key)).map(str::to_string))
}

pub fn files_equal(a: &Path, b: &Path) -> bool {
    match (std::fs::read(a), std::fs::read(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// `start_peer` with its own `RUST_LOG` (e.g. "debug" for a test that reads the log, which
/// is written to `dir` with the extension `.log`).
pub fn start_peer_log(
    name: &str,
    torrent: &Path,
    dir: &Path,
    args: &[&str],
    rust_log: &str,
) -> Proc {
    let log = std::fs::File::create(dir.with_extension("log")).unwrap();
    let child = Command::new(bin())
        .args(["--bind", "127.0.0.1", "--port", "0", "-q", "--dir"])
        .arg(dir)
        .args(args)
        .arg(torrent)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc { child, name: name.into() }
}

/// Poll `f` every 50 ms until it returns Some, for at most `limit`; panics with `what`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {:?} waiting for {}", limit, what);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `listen=IP:PORT` of a peer's stats `start` line, waiting up to 20 s for it.
pub fn listen_addr(stats: &Path) -> std::net::SocketAddr {
    wait_for(Duration::from_secs(20), "a stats `start` line", || {
        stats_field(stats, "start", "listen").and_then(|a| a.parse().ok())
    })
}

/// Every `key=value` word of every line of `path` starting with `prefix` (one map a line).
pub fn stats_lines(path: &Path, prefix: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}
