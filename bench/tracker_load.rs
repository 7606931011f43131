//! Load test for our tracker (`tyrant tracker`) on loopback, then malformed requests.
//!
//! ```text
//! cargo bench --bench tracker_load                      # 60 s at 1000 announces/s
//! cargo bench --bench tracker_load -- --secs 10 --rate 2000 --peers 5000 --swarms 50
//! TYRANT=/path/to/tyrant cargo bench --bench tracker_load
//! ```
//!
//! Starts `tyrant tracker` (`$TYRANT`, else the release binary cargo builds for the bench),
//! then runs a bounded, open-loop announce schedule that stops itself after `--secs`:
//! announce k is due at start + k / `--rate`, taken by one of `--threads` workers. Each
//! announce is a real HTTP/1.0 GET on a fresh connection for one of `--peers` simulated peers
//! (peer i is in swarm i mod `--swarms`, listens on port 10000 + i) with events in plausible
//! proportions (started on a peer's first announce and after it stopped; then mostly none,
//! some completed, some stopped), compact=1 for 90 % and compact=0 for 10 % (the tracker answers
//! compact to both).
//!
//! An error is a failed connection, a status other than 200, a `failure reason`, a reply
//! `tracker::parse_response` rejects, or peers that cannot be right (more than numwant, an
//! address nobody announced). Reported: announces done, announces/s achieved, errors (must
//! be 0), latency p50/p99/max (connect to last byte), the tracker's peak RSS (VmHWM) and
//! most threads seen. Then malformed requests (bad info_hash length, missing port, a
//! 100 KiB query, non-HTTP bytes, a request cut off, ...) must each get a bencoded failure
//! or a closed socket, and the tracker must still answer a good announce afterwards. Exit
//! status 1 if any check fails.
//!
//! `tests/trackers.rs` includes this file as a module for its CI-sized run (3 s at 200/s).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tyrant::tracker::{parse_response, TrackerError};

/// Loopback answers in well under a millisecond; 5 s means the tracker is stuck.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
const BASE_PORT: usize = 10_000;
/// Distinct ports for every simulated peer.
const MAX_PEERS: usize = 65_535 - BASE_PORT;

pub struct LoadConfig {
    pub secs: f64,
    pub rate: f64,
    pub peers: usize,
    pub swarms: usize,
    pub threads: usize,
    pub seed: u64,
}

impl Default for LoadConfig {
    fn default() -> LoadConfig {
        LoadConfig { secs: 60.0, rate: 1000.0, peers: 5000, swarms: 50, threads: 8, seed: 1 }
    }
}

#[derive(Default)]
pub struct LoadReport {
    pub done: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub secs: f64,
    /// Sorted, microseconds.
    pub latencies_us: Vec<u64>,
    /// started, none, completed, stopped
    pub events: [u64; 4],
    pub compact: u64,
    pub compact0: u64,
    pub peers_returned: u64,
    /// Largest delay between an announce's due time and its start (workers falling behind).
    pub max_lag_ms: f64,
}

impl LoadReport {
    pub fn rate(&self) -> f64 {
        self.done as f64 / self.secs.max(1e-9)
    }
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }
    pub fn max_ms(&self) -> f64 {
        self.latencies_us.last().map_or(0.0, |&u| u as f64 / 1000.0)
    }
    pub fn summary(&self) -> String {
        format!(
            "announces={} secs={:.1} rate={:.1}/s errors={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} \
             max_lag_ms={:.1} started={} none={} completed={} stopped={} compact={} compact0={} \
             peers_returned={}",
            self.done,
            self.secs,
            self.rate(),
            self.errors,
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
            self.max_ms(),
            self.max_lag_ms,
            self.events[0],
            self.events[1],
            self.events[2],
            self.events[3],
            self.compact,
            self.compact0,
            self.peers_returned
        )
    }
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{:02X}", b)).collect()
}

/// Swarm `s`'s info-hash: 20 pseudo-random bytes (all of them percent-encoded on the wire).
fn info_hash(seed: u64, s: usize) -> [u8; 20] {
    let mut x = seed ^ (s as u64).wrapping_mul(0x1000_0000_01B3);
    let mut h = [0u8; 20];
    for c in h.chunks_mut(8) {
        let v = splitmix(&mut x).to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
    h
}

fn peer_id(i: usize) -> [u8; 20] {
    let mut id = [0u8; 20];
    id.copy_from_slice(format!("-TL0001-{:012}", i).as_bytes());
    id
}

/// Send raw bytes, optionally half-close, read the reply until EOF. Ok((status, body)) for
/// an HTTP reply; Err for a connection closed (or reset) without one.
pub fn exchange(
    addr: SocketAddr,
    request: &[u8],
    half_close: bool,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {}", e))?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    // A tracker may hang up before reading an oversized request: keep going to its reply.
    let wrote = s.write_all(request);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    if raw.is_empty() {
        return Err(match (wrote, read) {
            (Err(e), _) => format!("closed while we wrote ({})", e),
            (_, Err(e)) => format!("closed ({})", e),
            _ => "closed without a reply".to_string(),
        });
    }
    parse_http(&raw)
}

/// Status and body (cut to Content-Length) of a raw HTTP/1.x reply.
pub fn parse_http(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {} bytes", raw.len()))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {:?}", status_line))?;
    let mut body = raw[end + 4..].to_vec();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                let n: usize =
                    v.trim().parse().map_err(|_| format!("bad Content-Length {:?}", v))?;
                if body.len() < n {
                    return Err(format!("body cut short: {} of {} bytes", body.len(), n));
                }
                body.truncate(n);
            }
        }
    }
    Ok((status, body))
}

pub fn get(addr: SocketAddr, target: &str) -> Result<(u16, Vec<u8>), String> {
    let req =
        format!("GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: tracker_load\r\n\r\n", target, addr);
    exchange(addr, req.as_bytes(), false, IO_TIMEOUT)
}

/// Simulated peer states: 0 not in the swarm, 1 leeching, 2 seeding.
struct Sim {
    addr: SocketAddr,
    cfg: LoadConfig,
    hashes: Vec<[u8; 20]>,
    state: Vec<AtomicU8>,
    next: AtomicU64,
    stop: AtomicBool,
    start: Instant,
}

const SIZE: u64 = 100 << 20;

struct Worker {
    lat: Vec<u64>,
    done: u64,
    errors: u64,
    samples: Vec<String>,
    events: [u64; 4],
    compact: u64,
    compact0: u64,
    peers: u64,
    max_lag: Duration,
}

impl Sim {
    fn worker(&self, w: usize) -> Worker {
        let mut out = Worker {
            lat: Vec::new(),
            done: 0,
            errors: 0,
            samples: Vec::new(),
            events: [0; 4],
            compact: 0,
            compact0: 0,
            peers: 0,
            max_lag: Duration::ZERO,
        };
        let mut x = self.cfg.seed ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let due = Duration::from_secs_f64(k as f64 / self.cfg.rate);
            if due.as_secs_f64() >= self.cfg.secs || self.stop.load(Ordering::Relaxed) {
                return out;
            }
            let now = self.start.elapsed();
            if due > now {
                thread::sleep(due - now);
            } else {
                out.max_lag = out.max_lag.max(now - due);
            }
            let r = splitmix(&mut x);
            let i = (r % self.cfg.peers as u64) as usize;
            let (target, event, numwant, compact) = self.request(i, splitmix(&mut x));
            out.events[event] += 1;
            if compact {
                out.compact += 1;
            } else {
                out.compact0 += 1;
            }
            let t = Instant::now();
            let res = get(self.addr, &target);
            out.lat.push(t.elapsed().as_micros() as u64);
            out.done += 1;
            match res.and_then(|(status, body)| self.check_reply(status, &body, numwant, event)) {
                Ok(n) => out.peers += n as u64,
                Err(e) => {
                    out.errors += 1;
                    if out.samples.len() < 5 {
                        out.samples.push(format!("peer {}: {}", i, e));
                    }
                }
            }
        }
    }

    /// The announce target for peer `i` and its next event (0 started, 1 none, 2 completed,
    /// 3 stopped), with numwant and whether it asks for a compact reply.
    fn request(&self, i: usize, r: u64) -> (String, usize, usize, bool) {
        let st = &self.state[i];
        let roll = r % 1000;
        let (event, next, left) = match st.load(Ordering::Relaxed) {
            // 10 % of peers join as seeds.
            0 if i % 10 == 0 => (0, 2, 0),
            0 => (0, 1, SIZE),
            1 if roll < 30 => (2, 2, 0),
            1 if roll < 50 => (3, 0, SIZE / 2),
            1 => (1, 1, SIZE - (r >> 20) % SIZE),
            _ if roll < 20 => (3, 0, 0),
            _ => (1, 2, 0),
        };
        st.store(next, Ordering::Relaxed);
        let compact = (r >> 10) % 10 != 0;
        let numwant = match (r >> 14) % 8 {
            0 => None,
            1 => Some(200),
            2 => Some(0),
            _ => Some(50),
        };
        let mut q = format!(
            "/announce?info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}&key={:08x}",
            percent(&self.hashes[i % self.cfg.swarms]),
            percent(&peer_id(i)),
            BASE_PORT + i,
            (r >> 24) % SIZE,
            SIZE - left,
            left,
            i
        );
        q.push_str(if compact { "&compact=1" } else { "&compact=0" });
        if let Some(n) = numwant {
            q.push_str(&format!("&numwant={}", n));
        }
        let ev = ["started", "", "completed", "stopped"][event];
        if !ev.is_empty() {
            q.push_str("&event=");
            q.push_str(ev);
        }
        let want = if event == 3 { 0 } else { numwant.unwrap_or(50) };
        (q, event, want, compact)
    }

    fn check_reply(
        &self,
        status: u16,
        body: &[u8],
        numwant: usize,
        _event: usize,
    ) -> Result<usize, String> {
        if status != 200 {
            return Err(format!("status {}: {}", status, String::from_utf8_lossy(body)));
        }
        let r = parse_response(body).map_err(|e| e.to_string())?;
        if r.peers.len() > numwant {
            return Err(format!("{} peers for numwant {}", r.peers.len(), numwant));
        }
        for p in &r.peers {
            let port = usize::from(p.port());
            if !p.ip().is_loopback() || port < BASE_PORT || port >= BASE_PORT + self.cfg.peers {
                return Err(format!("peer {} was never announced", p));
            }
        }
        Ok(r.peers.len())
    }
}

/// Run the announce schedule against the tracker at `addr`; returns when it is done.
pub fn run_load(addr: SocketAddr, cfg: LoadConfig) -> LoadReport {
    let hashes = (0..cfg.swarms).map(|s| info_hash(cfg.seed, s)).collect();
    let state = (0..cfg.peers).map(|_| AtomicU8::new(0)).collect();
    let threads = cfg.threads.max(1);
    let sim = Arc::new(Sim {
        addr,
        cfg,
        hashes,
        state,
        next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        start: Instant::now(),
    });
    let handles: Vec<_> = (0..threads)
        .map(|w| {
            let s = Arc::clone(&sim);
            thread::spawn(move || s.worker(w))
        })
        .collect();
    let mut rep = LoadReport::default();
    for h in handles {
        let w = h.join().expect("load worker panicked");
        rep.done += w.done;
        rep.errors += w.errors;
        rep.error_samples.extend(w.samples);
        rep.latencies_us.extend(w.lat);
        for (a, b) in rep.events.iter_mut().zip(w.events.iter()) {
            *a += b;
        }
        rep.compact += w.compact;
        rep.compact0 += w.compact0;
        rep.peers_returned += w.peers;
        rep.max_lag_ms = rep.max_lag_ms.max(w.max_lag.as_secs_f64() * 1000.0);
    }
    rep.secs = sim.start.elapsed().as_secs_f64();
    rep.latencies_us.sort_unstable();
    rep
}

/// `tyrant tracker` as a child process, killed on drop.
pub struct TrackerProc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for TrackerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl TrackerProc {
    pub fn start(bin: &std::path::Path) -> TrackerProc {
        let mut child = Command::new(bin)
            .args(["tracker", "--port", "0", "--bind", "127.0.0.1", "--rng-seed", "1"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {}", bin.display(), e));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("tracker listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected tracker output {:?}", line));
        TrackerProc { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// (VmRSS KiB, VmHWM KiB, Threads) of a process.
pub fn proc_status(pid: u32) -> Option<(u64, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{}/status", pid)).ok()?;
    let field = |name: &str| -> Option<u64> {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?, field("Threads:")?))
}

/// Samples a process's status every 100 ms until dropped; keeps the maxima.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    max: Arc<Mutex<(u64, u64, u64)>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(pid: u32) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(Mutex::new((0, 0, 0)));
        let (s, m) = (Arc::clone(&stop), Arc::clone(&max));
        let handle = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some((rss, hwm, th)) = proc_status(pid) {
                    let mut g = m.lock().unwrap();
                    *g = (g.0.max(rss), g.1.max(hwm), g.2.max(th));
                }
                thread::sleep(Duration::from_millis(100));
            }
        });
        Monitor { stop, max, handle: Some(handle) }
    }

    /// (max VmRSS KiB, VmHWM KiB, max Threads) so far.
    pub fn max(&self) -> (u64, u64, u64) {
        *self.max.lock().unwrap()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a malformed request got.
pub struct Malformed {
    pub name: &'static str,
    pub outcome: String,
    pub ok: bool,
}

/// A good announce for a fresh peer: Ok(number of peers) or why not.
pub fn good_announce(addr: SocketAddr) -> Result<usize, String> {
    let target = format!(
        "/announce?info_hash={}&peer_id={}&port=9999&uploaded=0&downloaded=0&left=0&compact=1",
        percent(&info_hash(1, 0)),
        percent(b"-TL0001-goodgoodgood")
    );
    let (status, body) = get(addr, &target)?;
    if status != 200 {
        return Err(format!("status {}", status));
    }
    parse_response(&body).map(|r| r.peers.len()).map_err(|e| e.to_string())
}

/// Send each malformed request; each must get a bencoded `failure reason` or a closed
/// socket. `slow` adds the cases that take the tracker's 10 s read timeout to resolve.
pub fn malformed_requests(addr: SocketAddr, slow: bool) -> Vec<Malformed> {
    let id = percent(b"-TL0001-badbadbadbad");
    let ih = percent(&info_hash(1, 0));
    let mut cases: Vec<(&'static str, Vec<u8>, bool)> = vec![
        (
            "bad_info_hash_length",
            format!("GET /announce?info_hash=abc&peer_id={}&port=6881 HTTP/1.0\r\n\r\n", id)
                .into_bytes(),
            false,
        ),
        (
            "missing_port",
            format!("GET /announce?info_hash={}&peer_id={} HTTP/1.0\r\n\r\n", ih, id).into_bytes(),
            false,
        ),
        (
            "port_zero",
            format!("GET /announce?info_hash={}&peer_id={}&port=0 HTTP/1.0\r\n\r\n", ih, id)
                .into_bytes(),
            false,
        ),
        (
            "bad_percent_encoding",
            format!("GET /announce?info_hash=%zz{}&peer_id={}&port=1 HTTP/1.0\r\n\r\n", ih, id)
                .into_bytes(),
            false,
        ),
        (
            "huge_query_100KiB",
            format!(
                "GET /announce?info_hash={}&peer_id={}&port=1&junk={} HTTP/1.0\r\n\r\n",
                ih,
                id,
                "A".repeat(100 * 1024)
            )
            .into_bytes(),
            false,
        ),
        ("post_method", b"POST /announce HTTP/1.0\r\nContent-Length: 0\r\n\r\n".to_vec(), false),
        ("unknown_path", b"GET /admin?x=1 HTTP/1.0\r\n\r\n".to_vec(), false),
        (
            "non_http_bytes",
            {
                let mut x = 42u64;
                let mut b: Vec<u8> = (0..4096).map(|_| splitmix(&mut x) as u8).collect();
                b.extend_from_slice(b"\r\n\r\n");
                b
            },
            false,
        ),
        (
            "bittorrent_handshake_then_eof",
            {
                let mut b = vec![19u8];
                b.extend_from_slice(b"BitTorrent protocol");
                b.extend_from_slice(&[0u8; 48]);
                b
            },
            true,
        ),
        (
            "half_request_then_eof",
            format!("GET /announce?info_hash={}&peer_", ih).into_bytes(),
            true,
        ),
    ];
    if slow {
        cases.push(("half_request_then_silence", b"GET /announce?info_hash=".to_vec(), false));
    }
    let mut out = Vec::new();
    for (name, bytes, half_close) in cases {
        let t = Instant::now();
        let (outcome, ok) = match exchange(addr, &bytes, half_close, Duration::from_secs(15)) {
            Ok((status, body)) => match parse_response(&body) {
                Err(TrackerError::Failure(r)) => (format!("{} failure {:?}", status, r), true),
                Ok(_) => (format!("{} with a regular reply", status), false),
                Err(e) => (format!("{} and not a bencoded failure: {}", status, e), false),
            },
            Err(e) => (e, true),
        };
        // A failure reason may quote the request back: keep the line short.
        let outcome: String = outcome.chars().take(100).collect();
        out.push(Malformed {
            name,
            outcome: format!("{} after {:.1} s", outcome, t.elapsed().as_secs_f64()),
            ok,
        });
    }
    // A request cut off by the client, without waiting for anything.
    if let Ok(mut s) = TcpStream::connect(addr) {
        let _ = s.write_all(b"GET /announce?info_hash=%01%02");
    }
    out.push(Malformed {
        name: "half_request_then_close",
        outcome: "sent and closed".to_string(),
        ok: true,
    });
    out
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} needs a valid value", name)),
        None => default,
    }
}

pub fn main() {
    // cargo bench passes `--bench`; unknown words are ignored.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let d = LoadConfig::default();
    let cfg = LoadConfig {
        secs: arg(&args, "--secs", d.secs),
        rate: arg(&args, "--rate", d.rate),
        peers: arg(&args, "--peers", d.peers),
        swarms: arg(&args, "--swarms", d.swarms),
        threads: arg(&args, "--threads", d.threads),
        seed: arg(&args, "--seed", d.seed),
    };
    assert!(cfg.secs > 0.0 && cfg.rate > 0.0 && cfg.peers > 0 && cfg.swarms > 0);
    assert!(
        cfg.peers <= MAX_PEERS,
        "--peers {}: at most {} (peer i listens on port {} + i)",
        cfg.peers,
        MAX_PEERS,
        BASE_PORT
    );
    let bin = std::env::var_os("TYRANT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tyrant")));
    let mut tracker = TrackerProc::start(&bin);
    println!(
        "tracker_load: {} at {}; {:.0} announces/s for {} s, {} peers in {} swarms, {} workers",
        bin.display(),
        tracker.addr,
        cfg.rate,
        cfg.secs,
        cfg.peers,
        cfg.swarms,
        cfg.threads
    );
    let mon = Monitor::start(tracker.pid());
    let rep = run_load(tracker.addr, cfg);
    println!("load: {}", rep.summary());
    for e in &rep.error_samples {
        println!("  error: {}", e);
    }
    let (rss, hwm, threads) = mon.max();
    println!(
        "tracker: peak_rss_kib={} (VmHWM {}) max_rss_sampled_kib={} max_threads={}",
        hwm.max(proc_status(tracker.pid()).map_or(0, |s| s.1)),
        hwm,
        rss,
        threads
    );

    let mut failed = rep.errors > 0;
    for m in malformed_requests(tracker.addr, true) {
        println!("malformed {}: {} [{}]", m.name, m.outcome, if m.ok { "ok" } else { "FAIL" });
        failed |= !m.ok;
    }

    // Idle connections (a slowloris-like client): each costs the tracker a thread until its
    // 10 s read timeout; good requests must still be served meanwhile.
    let idle: Vec<TcpStream> =
        (0..200).filter_map(|_| TcpStream::connect(tracker.addr).ok()).collect();
    for s in &idle {
        let mut w: &TcpStream = s;
        let _ = w.write_all(b"GET /announce?");
    }
    thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let during = good_announce(tracker.addr);
    let lat = t.elapsed();
    let th = proc_status(tracker.pid()).map_or(0, |s| s.2);
    println!(
        "idle connections={} tracker threads={} good announce meanwhile: {:?} in {:.1} ms",
        idle.len(),
        th,
        during,
        lat.as_secs_f64() * 1000.0
    );
    failed |= during.is_err();
    drop(idle);

    let after = good_announce(tracker.addr);
    let alive = tracker.alive();
    println!("after malformed requests: tracker alive={} good announce: {:?}", alive, after);
    failed |= !alive || after.is_err();
    let (_, hwm, threads) = mon.max();
    println!("tracker final: peak_rss_kib={} max_threads={}", hwm, threads);
    drop(mon);
    if failed {
        println!("tracker_load: FAILED");
        // exit() runs no destructors: stop the tracker first.
        drop(tracker);
        std::process::exit(1);
    }
    println!("tracker_load: ok");
}
