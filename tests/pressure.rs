//! Pressure: the attacks that used to shut honest peers out of a seeder, each against real
//! `tyrant` processes on 127.0.0.1 (issue 12). In each, an honest tyrant leecher, and an
//! honest libtorrent leecher when the Python bindings are there (`tests/lt_leech.py`, with
//! the interpreter in $TYRANT_LT_PYTHON or `.venv/bin/python`), must finish byte-identical
//! within twice the time it takes without the attack, plus 2 s of start-up slack (the
//! machines are shared). The seeder is capped at 2 MiB/s, so a clean download of the 6 MiB
//! payload takes about 3 s and the comparison measures the attack, not the machine.
//!
//! - slot hogs: 60 connections (the default `--max-peers`) that handshake, say interested
//!   and send keep-alives, reconnecting whenever dropped;
//! - half-open churn: 200 new connections a second that never send a handshake;
//! - address-book poisoning: a tracker whose first reply lists 10,000 dead addresses and
//!   whose later replies name the seeder;
//! - `--stop-after-download` with the data complete at start.

mod common;

use common::*;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const SIZE: usize = 6 << 20;
const UP_KIB: &str = "2048";

struct Swarm {
    dir: TempDir,
    torrent: PathBuf,
    data: PathBuf,
    info_hash: [u8; 20],
    seed: SocketAddr,
    _seeder: Proc,
}

/// A capped seeder of a 6 MiB payload whose torrent announces to `announce`.
fn swarm(tag: &str, announce: &str) -> Swarm {
    let dir = TempDir::new(tag);
    let sd = dir.path().join("seed");
    std::fs::create_dir_all(&sd).unwrap();
    let data = sd.join("payload.bin");
    std::fs::write(&data, payload(SIZE, 7)).unwrap();
    let torrent = dir.path().join("payload.torrent");
    let hex = make_torrent(&data, announce, 64, &torrent);
    let mut info_hash = [0u8; 20];
    for (i, b) in info_hash.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    let stats = dir.path().join("seed.stats");
    let seeder = start_peer(
        "seeder",
        &torrent,
        &sd,
        &["--seed", "--up", UP_KIB, "--stats", stats.to_str().unwrap()],
    );
    let seed = listen_addr(&stats);
    Swarm { dir, torrent, data, info_hash, seed, _seeder: seeder }
}

/// An honest tyrant leecher of `torrent`, told of `peer` with `--peer` (else it finds
/// the seeder through the tracker); seconds to a byte-identical copy.
fn tyrant_leech(s: &Swarm, tag: &str, torrent: &Path, peer: Option<SocketAddr>) -> f64 {
    let d = s.dir.path().join(tag);
    std::fs::create_dir_all(&d).unwrap();
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let mut args = vec!["--stop-after-download"];
    if !peer.is_empty() {
        args.extend(["--peer", &peer]);
    }
    let t0 = Instant::now();
    let mut p = start_peer(tag, torrent, &d, &args);
    let status = p.wait_timeout(Duration::from_secs(120));
    let secs = t0.elapsed().as_secs_f64();
    assert!(status.map_or(false, |s| s.success()), "{}: no clean exit in 120 s", tag);
    assert!(files_equal(&s.data, &d.join("payload.bin")), "{}: file differs", tag);
    secs
}

/// The Python that has the libtorrent bindings, if any.
fn lt_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let py = std::env::var_os("TYRANT_LT_PYTHON").map(PathBuf::from).unwrap_or(venv);
    let ok = Command::new(&py).args(["-c", "import libtorrent"]).output();
    ok.ok().filter(|o| o.status.success()).map(|_| py)
}

/// An honest libtorrent leecher (None without the bindings); seconds to a byte-identical
/// copy.
fn lt_leech(s: &Swarm, tag: &str) -> Option<f64> {
    let py = match lt_python() {
        Some(p) => p,
        None => {
            eprintln!("{}: no libtorrent bindings, the libtorrent leecher is not run", tag);
            return None;
        }
    };
    let d = s.dir.path().join(tag);
    std::fs::create_dir_all(&d).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lt_leech.py");
    let t0 = Instant::now();
    let out = Command::new(py)
        .arg(script)
        .arg(&s.torrent)
        .arg(&d)
        .arg(s.seed.to_string())
        .arg("120")
        .output()
        .unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}: {}", tag, String::from_utf8_lossy(&out.stdout));
    assert!(files_equal(&s.data, &d.join("payload.bin")), "{}: file differs", tag);
    Some(secs)
}

/// Both honest leechers, first in peace, then under `attack`, which must not cost either
/// more than twice its time in peace (+2 s).
fn check_attack<A>(tag: &str, attack: impl FnOnce(&Swarm) -> A) {
    let s = swarm(tag, "http://127.0.0.1:1/announce");
    let calm = (tyrant_leech(&s, "calm-tyrant", &s.torrent, Some(s.seed)), lt_leech(&s, "calm-lt"));
    let _attack = attack(&s);
    thread::sleep(Duration::from_secs(12));
    let hit = (tyrant_leech(&s, "hit-tyrant", &s.torrent, Some(s.seed)), lt_leech(&s, "hit-lt"));
    eprintln!("{}: without the attack {:?} s, with it {:?} s", tag, calm, hit);
    assert!(hit.0 <= 2.0 * calm.0 + 2.0, "{}: tyrant {:.1} s vs {:.1} s", tag, hit.0, calm.0);
    if let (Some(c), Some(h)) = (calm.1, hit.1) {
        assert!(h <= 2.0 * c + 2.0, "{}: libtorrent {:.1} s vs {:.1} s", tag, h, c);
    }
}

/// Attacker threads that stop and are joined when dropped.
struct Attack {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Attack {
    fn spawn(f: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Attack {
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&stop);
        Attack { stop, threads: vec![thread::spawn(move || f(s))] }
    }
}

impl Drop for Attack {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn hog(addr: SocketAddr, info_hash: &[u8; 20], n: u32) -> Option<TcpStream> {
    let mut c = TcpStream::connect(addr).ok()?;
    let mut hs = vec![19u8];
    hs.extend_from_slice(b"BitTorrent protocol");
    hs.extend_from_slice(&[0; 8]);
    hs.extend_from_slice(info_hash);
    hs.extend_from_slice(format!("-HOG000-{:012}", n).as_bytes());
    hs.extend_from_slice(&[0, 0, 0, 1, 2]); // interested
    c.write_all(&hs).ok()?;
    c.set_nonblocking(true).ok()?;
    Some(c)
}

/// Is the connection still open? Reads (and drops) whatever the seeder sent.
fn drain(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn slot_hogs_do_not_shut_honest_leechers_out() {
    check_attack("hogs", |s| {
        let (addr, ih) = (s.seed, s.info_hash);
        Attack::spawn(move |stop| {
            let mut hogs: Vec<Option<TcpStream>> = (0..60).map(|_| None).collect();
            let (mut n, mut last_keepalive) = (0, Instant::now());
            while !stop.load(Ordering::Relaxed) {
                let keepalive = last_keepalive.elapsed() > Duration::from_secs(5);
                if keepalive {
                    last_keepalive = Instant::now();
                }
                for h in hogs.iter_mut() {
                    let alive = match h {
                        Some(c) => drain(c) && (!keepalive || c.write_all(&[0; 4]).is_ok()),
                        None => false,
                    };
                    if !alive {
                        n += 1;
                        *h = hog(addr, &ih, n);
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    });
}

#[test]
fn half_open_churn_does_not_shut_honest_leechers_out() {
    check_attack("churn", |s| {
        let addr = s.seed;
        Attack::spawn(move |stop| {
            let mut open = VecDeque::new();
            let t0 = Instant::now();
            let mut opened = 0u64;
            while !stop.load(Ordering::Relaxed) {
                while opened < (t0.elapsed().as_secs_f64() * 200.0) as u64 {
                    opened += 1;
                    if let Ok(c) = TcpStream::connect(addr) {
                        open.push_back((Instant::now(), c));
                    }
                }
                while open.front().map_or(false, |(t, _)| t.elapsed() > Duration::from_secs(5)) {
                    open.pop_front();
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    });
}

/// A fake tracker: the first announce gets `first`, every later one `later` (compact
/// peer lists), interval 1 s. Returns its announce URL.
fn fake_tracker(first: Vec<u8>, later: Vec<u8>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", l.local_addr().unwrap());
    thread::spawn(move || {
        for (i, c) in l.incoming().enumerate() {
            let mut c = match c {
                Ok(c) => c,
                Err(_) => continue,
            };
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            let peers = if i == 0 { &first } else { &later };
            let mut body = format!("d8:intervali1e5:peers{}:", peers.len()).into_bytes();
            body.extend_from_slice(peers);
            body.push(b'e');
            let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = c.write_all(head.as_bytes()).and_then(|_| c.write_all(&body));
        }
    });
    url
}

fn compact(a: SocketAddr) -> Vec<u8> {
    match a {
        SocketAddr::V4(v) => [&v.ip().octets()[..], &v.port().to_be_bytes()].concat(),
        SocketAddr::V6(_) => panic!("IPv4 only"),
    }
}

/// `n` addresses from 127.0.`first`.2 on, port 1, where nothing listens.
fn dead_peers(first: u32, n: u32) -> Vec<u8> {
    (0..n).flat_map(|i| [127, 0, (first + i / 250) as u8, 2 + (i % 250) as u8, 0, 1]).collect()
}

/// The tracker's first reply fills the address book with 10,000 dead addresses; the later
/// ones name the seeder among 50 other dead ones. Compared with a tracker whose first reply
/// already names the seeder (the wait for the second announce is part of the attack's
/// cost). Both wall times move with the machine's load, so a failed comparison is repeated
/// with a fresh pair, up to three pairs: an attack that really doubles the time fails all
/// three, a busy second on a shared machine does not fail the test.
#[test]
fn a_poisoned_address_book_still_finds_the_seeder() {
    let s = swarm("poison", "http://127.0.0.1:1/announce");
    let run = |tag: &str, first: Vec<u8>| {
        let url = fake_tracker(first, [compact(s.seed), dead_peers(100, 50)].concat());
        let t = s.dir.path().join(format!("{}.torrent", tag));
        make_torrent(&s.data, &url, 64, &t);
        tyrant_leech(&s, tag, &t, None)
    };
    let mut pairs = Vec::new();
    for attempt in 0..3 {
        let calm = run(&format!("calm{attempt}"), [compact(s.seed), dead_peers(100, 50)].concat());
        let hit = run(&format!("hit{attempt}"), dead_peers(1, 10_000));
        eprintln!("poison: without the attack {:.1} s, with it {:.1} s", calm, hit);
        pairs.push((hit, calm));
        if hit <= 2.0 * calm + 2.0 {
            return;
        }
    }
    panic!("with the attack vs without, three times: {:?} s", pairs);
}

/// `--stop-after-download` exits at once, status 0 with a `done` line, when the data is
/// already complete at start (it used to wait for a piece to verify, forever).
#[test]
fn stop_after_download_with_complete_data_exits_at_once() {
    let s = swarm("complete", "http://127.0.0.1:1/announce");
    let stats = s.dir.path().join("again.stats");
    let t0 = Instant::now();
    let mut p = start_peer(
        "again",
        &s.torrent,
        &s.dir.path().join("seed"),
        &["--stop-after-download", "--stats", stats.to_str().unwrap()],
    );
    let status = p.wait_timeout(Duration::from_secs(20));
    assert!(status.map_or(false, |s| s.success()), "no clean exit in 20 s");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let secs = stats_field(&stats, "done", "download_time").and_then(|t| t.parse::<f64>().ok());
    assert_eq!(secs, Some(0.0), "the `done` line");
}

/// `tyrant ARGS` under `ulimit -n LIMIT` (soft and hard: no raising it), stderr to
/// `log`.
fn limited(limit: u32, args: &[&str], log: &Path) -> Proc {
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Proc { child, name: "limited".into() }
}

/// A torrent of 3,000 small files seeded and downloaded by two peers that may each hold
/// only 256 descriptors: files are opened on demand through a bounded cache (before, the
/// seeder could not even start, and a leecher left 1,019 empty files behind).
#[test]
fn three_thousand_files_under_ulimit_256() {
    let dir = TempDir::new("files");
    let src = dir.path().join("seed/tree");
    for i in 0..3000 {
        let d = src.join(format!("d{}", i / 100));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("f{i}")), payload(100 + i % 900, i as u64)).unwrap();
    }
    let torrent = dir.path().join("tree.torrent");
    make_torrent(&src, "http://127.0.0.1:1/announce", 16, &torrent);
    let t = torrent.to_str().unwrap();
    let stats = dir.path().join("seed.stats");
    let (sd, ld) = (dir.path().join("seed"), dir.path().join("leech"));
    let common = ["--bind", "127.0.0.1", "--port", "0", "-q"];
    let seed_args = ["--seed", "--dir", sd.to_str().unwrap(), "--stats", stats.to_str().unwrap()];
    let _seeder =
        limited(256, &[&common[..], &seed_args, &[t]].concat(), &dir.path().join("s.log"));
    let seed = listen_addr(&stats).to_string();
    let leech_args = ["--dir", ld.to_str().unwrap(), "--peer", &seed, "--stop-after-download"];
    let mut leecher =
        limited(256, &[&common[..], &leech_args, &[t]].concat(), &dir.path().join("l.log"));
    let status = leecher.wait_timeout(Duration::from_secs(120));
    let log = std::fs::read_to_string(dir.path().join("l.log")).unwrap_or_default();
    assert!(status.map_or(false, |s| s.success()), "leecher: {}", log);
    for i in (0..3000).step_by(7) {
        let rel = format!("tree/d{}/f{i}", i / 100);
        assert!(files_equal(&sd.join(&rel), &ld.join(&rel)), "{} differs", rel);
    }
}

/// Out of descriptors, `accept` fails for the same waiting connection again and again: the
/// acceptor backs off (10 ms doubling to 1 s) instead of logging thousands of failures a
/// second, and serves again once descriptors are free.
#[test]
fn an_acceptor_out_of_descriptors_backs_off() {
    let s = swarm("emfile", "http://127.0.0.1:1/announce");
    let dir = s.dir.path();
    let (stats, seed_dir) = (dir.join("small.stats"), dir.join("seed"));
    let args = [
        "--seed",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "-q",
        "--dir",
        seed_dir.to_str().unwrap(),
        "--stats",
        stats.to_str().unwrap(),
        "--max-peers",
        "200",
        s.torrent.to_str().unwrap(),
    ];
    let _small = limited(48, &args, &dir.join("small.log"));
    let addr = listen_addr(&stats);
    let hogs: Vec<TcpStream> = (0..100u32).filter_map(|n| hog(addr, &s.info_hash, n)).collect();
    thread::sleep(Duration::from_secs(4));
    let log = std::fs::read_to_string(dir.join("small.log")).unwrap_or_default();
    let failures = log.matches("accept failed").count();
    assert!(failures > 0, "the limit was never reached: {}", log);
    // Without the backoff: ~5,400 in 4 s. With it, each descriptor the seeder frees (it
    // drops hogs past the half-open limit) lets one accept succeed and restarts the backoff
    // at 10 ms, so the count depends on the machine: 5..73 seen.
    assert!(failures <= 300, "{} accept failures logged in 4 s", failures);
    drop(hogs);
    thread::sleep(Duration::from_secs(2));
    tyrant_leech(&s, "after", &s.torrent, Some(addr));
}
