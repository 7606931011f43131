//! The strategies (issue 3, "How it is shown") as real `tyrant` processes on 127.0.0.1:
//! BitTyrant below one block per second keeps its connections, BitThief finishes without
//! uploading or announcing, BitSybil identities never meet, BitRebel repeats every HAVE,
//! `--reveal` shows at most N missing pieces, and the `--trace` of BitTyrant and PropShare
//! follows their rules round by round. Hand-driven fake peers on raw sockets observe what
//! actually goes over the wire. Every wait is bounded and every child is killed on drop.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tyrant::metainfo::Metainfo;
use tyrant::peer::{read_message, Handshake, Message};

// ---------------------------------------------------------------------------------------
// A small swarm: our tracker, a seed directory, a torrent, one directory per peer.
// ---------------------------------------------------------------------------------------

struct Swarm {
    dir: TempDir,
    _tracker: Proc,
    torrent: PathBuf,
    seed_dir: PathBuf,
    data: Vec<u8>,
    meta: Metainfo,
}

const FILE: &str = "f.bin";

impl Swarm {
    fn new(tag: &str, size: usize, piece_kib: u32, seed: u64) -> Swarm {
        let dir = TempDir::new(tag);
        let (tracker, url) = start_tracker(2);
        let seed_dir = dir.path().join("seed");
        std::fs::create_dir_all(&seed_dir).unwrap();
        let data = payload(size, seed);
        std::fs::write(seed_dir.join(FILE), &data).unwrap();
        let torrent = dir.path().join("f.torrent");
        make_torrent(&seed_dir.join(FILE), &url, piece_kib, &torrent);
        let meta = Metainfo::load(&torrent).unwrap();
        Swarm { dir, _tracker: tracker, torrent, seed_dir, data, meta }
    }

    fn peer_dir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn stats(&self, name: &str) -> PathBuf {
        self.peer_dir(name).join("stats.txt")
    }

    fn trace(&self, name: &str) -> PathBuf {
        self.peer_dir(name).join("trace.txt")
    }

    /// The RUST_LOG output of peer `name` (see `start_peer`).
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.peer_dir(name).with_extension("log")).unwrap_or_default()
    }

    fn seeder(&self, args: &[&str]) -> Proc {
        let mut a = vec!["--seed"];
        a.extend_from_slice(args);
        start_peer("seeder", &self.torrent, &self.seed_dir, &a)
    }

    /// A peer in its own directory, with `--stats` (and the given RUST_LOG).
    fn peer(&self, name: &str, args: &[&str], rust_log: &str) -> Proc {
        let d = self.peer_dir(name);
        let stats = self.stats(name);
        let mut a: Vec<&str> = args.to_vec();
        a.extend(["--stats", stats.to_str().unwrap()]);
        start_peer_log(name, &self.torrent, &d, &a, rust_log)
    }

    fn same_file(&self, name: &str) -> bool {
        files_equal(&self.seed_dir.join(FILE), &self.peer_dir(name).join(FILE))
    }

    /// Whether peer `name` holds piece `i` on disk, byte for byte (pieces are written
    /// with pwrite after their hash check, so a HAVE is only ever sent after this holds).
    fn piece_on_disk(&self, name: &str, i: u32) -> bool {
        let pl = self.meta.piece_length as usize;
        let start = i as usize * pl;
        let end = (start + pl).min(self.data.len());
        let mut f = match std::fs::File::open(self.peer_dir(name).join(FILE)) {
            Ok(f) => f,
            Err(_) => return false,
        };
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() || buf.len() < end {
            return false;
        }
        buf[start..end] == self.data[start..end]
    }

    fn pieces(&self) -> u32 {
        self.meta.num_pieces()
    }
}

fn wait_ok(p: &mut Proc, limit: Duration) {
    match p.wait_timeout(limit) {
        Some(s) => assert!(s.success(), "{} exited with {}", p.name, s),
        None => panic!("{} did not finish within {:?}", p.name, limit),
    }
}

fn num(stats: &Path, prefix: &str, key: &str) -> Option<f64> {
    stats_field(stats, prefix, key).and_then(|v| v.parse().ok())
}

// ---------------------------------------------------------------------------------------
// A fake peer on a raw socket: handshake by hand, then a reader thread hands every
// message to the test through a channel, so waits are bounded without ever cutting a
// frame in half.
// ---------------------------------------------------------------------------------------

enum Got {
    Msg(Message),
    Timeout,
    Closed,
}

struct Fake {
    stream: TcpStream,
    rx: mpsc::Receiver<Option<Message>>,
    closed: bool,
}

impl Fake {
    fn handshake(id: u8, info_hash: [u8; 20]) -> [u8; 68] {
        Handshake { reserved: [0; 8], info_hash, peer_id: [id; 20] }.encode()
    }

    fn read_handshake(s: &mut TcpStream, info_hash: [u8; 20]) {
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut hs = [0u8; 68];
        s.read_exact(&mut hs).expect("the peer's handshake");
        let theirs = Handshake::decode(&hs).unwrap();
        assert_eq!(theirs.info_hash, info_hash);
        assert_eq!(&theirs.peer_id[..3], b"-TY");
    }

    /// Wait (bounded) for the peer under test to dial us; answer its handshake. `first`
    /// goes out right after our handshake.
    fn accept(l: &TcpListener, info_hash: [u8; 20], id: u8, first: &[Message]) -> Fake {
        l.set_nonblocking(true).unwrap();
        let mut s = wait_for(Duration::from_secs(20), "the peer to dial the fake", || {
            l.accept().ok().map(|(s, _)| s)
        });
        s.set_nonblocking(false).unwrap();
        Fake::read_handshake(&mut s, info_hash);
        let mut out = Fake::handshake(id, info_hash).to_vec();
        for m in first {
            m.encode(&mut out);
        }
        s.write_all(&out).unwrap();
        Fake::run(s)
    }

    /// Dial the peer under test; our handshake and `first` go out at once.
    fn dial(addr: SocketAddr, info_hash: [u8; 20], id: u8, first: &[Message]) -> Fake {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        let mut out = Fake::handshake(id, info_hash).to_vec();
        for m in first {
            m.encode(&mut out);
        }
        s.write_all(&out).unwrap();
        Fake::read_handshake(&mut s, info_hash);
        Fake::run(s)
    }

    fn run(s: TcpStream) -> Fake {
        s.set_read_timeout(None).unwrap();
        let mut r = s.try_clone().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || loop {
            match read_message(&mut r, 1 << 21) {
                Ok(m) => {
                    if tx.send(Some(m)).is_err() {
                        return;
                    }
                }
                Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
            }
        });
        Fake { stream: s, rx, closed: false }
    }

    fn send(&mut self, m: Message) {
        let mut out = Vec::new();
        m.encode(&mut out);
        self.stream.write_all(&out).unwrap();
    }

    fn recv(&mut self, t: Duration) -> Got {
        if self.closed {
            return Got::Closed;
        }
        match self.rx.recv_timeout(t) {
            Ok(Some(m)) => Got::Msg(m),
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.closed = true;
                Got::Closed
            }
            Err(mpsc::RecvTimeoutError::Timeout) => Got::Timeout,
        }
    }

    /// Everything that arrives within `t` (stops early when the connection closes).
    fn drain(&mut self, t: Duration) -> Vec<Message> {
        let end = Instant::now() + t;
        let mut v = Vec::new();
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left == Duration::from_secs(0) {
                return v;
            }
            match self.recv(left.min(Duration::from_millis(100))) {
                Got::Msg(m) => v.push(m),
                Got::Timeout => {}
                Got::Closed => return v,
            }
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn full_bitfield(n: u32) -> Vec<u8> {
    let mut b = vec![0xffu8; (n as usize + 7) / 8];
    if n % 8 != 0 {
        *b.last_mut().unwrap() = 0xff << (8 - n % 8);
    }
    b
}

fn bits(b: &[u8], n: u32) -> BTreeSet<u32> {
    (0..n).filter(|&i| b[i as usize / 8] & (0x80 >> (i % 8)) != 0).collect()
}

/// A stats/trace line as a map of its `key=value` words.
type Line = HashMap<String, String>;

fn f(l: &Line, k: &str) -> f64 {
    l.get(k)
        .unwrap_or_else(|| panic!("no {} in {:?}", k, l))
        .parse()
        .unwrap_or_else(|_| panic!("{}={:?} is not a number", k, l[k]))
}

fn opt(l: &Line, k: &str) -> Option<f64> {
    match l.get(k).map(String::as_str) {
        None | Some("-") => None,
        Some(v) => Some(v.parse().unwrap_or_else(|_| panic!("{}={} is not a number", k, v))),
    }
}

// ---------------------------------------------------------------------------------------
// a. BitTyrant at 5 KiB/s.
// ---------------------------------------------------------------------------------------

/// downpour's per-peer limiter had a burst of u_p·1 s, below one 16 KiB block for
/// u_p ≤ 16 KB/s, so every such connection died on its first block. A tyrant capped at
/// 5 KiB/s (every per-peer cap is then below one block per second) must finish, upload,
/// and keep its connections. Two swarms run side by side: one with `--tyrant --up 5` as
/// the issue states it (default u0, the market rate before any is observed: 3 KiB/s), one with `--tyrant --up 5 --tyrant-u0 2`,
/// whose u_p fits its capacity from the first round, so the sub-block pacing is exercised
/// even if the first tyrant never unchokes anybody.
///
/// The criterion for "keeps its connections": the vanilla peers keep running (they seed
/// after completing), so nothing legitimate ends a connection to the tyrant before it
/// completes. Hence (1) once the tyrant's stats show all 4 other peers connected
/// (`peers=4`), no later dip below 4 before completion lasts three ticks; and (2) its debug log
/// has, before completion, no `closed:` line other than duplicate/self connections and no
/// `writer stopped` line (a write error or a stalled pacer on its side). (1) sees drops
/// from either side, (2) names the reason.
#[test]
fn tyrant_below_one_block_per_second_finishes_and_keeps_connections() {
    let t0 = Instant::now();
    let runs = [("tyrant", 51, vec![]), ("tyrant-u0-2", 61, vec!["--tyrant-u0", "2"])];
    let handles: Vec<_> = runs
        .iter()
        .map(|(name, seed, extra)| {
            let (name, seed, extra) = (name.to_string(), *seed, extra.clone());
            std::thread::spawn(move || tyrant_at_5_kib(&name, seed, &extra))
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        failures.extend(h.join().expect("a tyrant swarm panicked"));
    }
    eprintln!("tyrants at 5 KiB/s: {:.1} s", t0.elapsed().as_secs_f64());
    assert!(failures.is_empty(), "{:#?}", failures);
}

/// One swarm (seeder at 64 KiB/s, 3 vanilla leechers at 32) with a tyrant at 5 KiB/s;
/// returns what went wrong.
fn tyrant_at_5_kib(name: &str, seed: u64, extra: &[&str]) -> Vec<String> {
    let sw = Swarm::new(name, 1024 * 1024, 16, seed);
    let _seeder =
        start_peer_log("seeder", &sw.torrent, &sw.seed_dir, &["--seed", "--up", "64"], "debug");
    let mut vanilla = Vec::new();
    for i in 0..3 {
        let seed = format!("{}", 10 + i);
        vanilla.push(sw.peer(
            &format!("v{}", i),
            &["--up", "32", "--rng-seed", &seed],
            "debug", // for the reasons of any close they initiate
        ));
    }
    let trace = sw.trace(name);
    let mut args =
        vec!["--tyrant", "--up", "5", "--stop-after-download", "--trace", trace.to_str().unwrap()];
    args.extend(extra.iter().copied());
    let mut ty = sw.peer(name, &args, "debug");
    wait_ok(&mut ty, Duration::from_secs(150));
    let mut failures = Vec::new();
    let stats = sw.stats(name);
    assert!(sw.same_file(name), "{}: the copy differs", name);
    assert_eq!(stats_field(&stats, "done", "complete").as_deref(), Some("true"));
    let uploaded = num(&stats, "done", "uploaded").unwrap();

    // (1) peers= never drops once everyone is connected.
    let pieces = sw.pieces() as f64;
    let ticks: Vec<Line> =
        stats_lines(&stats, "tick ").into_iter().filter(|l| f(l, "have") < pieces).collect();
    let first_all = ticks.iter().position(|l| f(l, "peers") >= 4.0);
    if first_all.is_none() {
        failures.push(format!(
            "{}: never had all 4 peers: {:?}",
            name,
            ticks.iter().map(|l| f(l, "peers")).collect::<Vec<_>>()
        ));
    }
    // A single tick below 4 can be two peers that dialled each other at once settling on
    // one connection (criterion (2) names such closes); a peer really lost stays lost, so
    // count only dips that last three ticks or more.
    let after = &ticks[first_all.unwrap_or(ticks.len())..];
    let mut drops: Vec<(f64, f64)> = Vec::new();
    let mut run: Vec<(f64, f64)> = Vec::new();
    for l in after {
        if f(l, "peers") < 4.0 {
            run.push((f(l, "t"), f(l, "peers")));
        } else {
            if run.len() >= 3 {
                drops.extend(run.iter().copied());
            }
            run.clear();
        }
    }
    if run.len() >= 3 {
        drops.extend(run);
    }
    if !drops.is_empty() {
        failures.push(format!("{}: lost peers (t, peers): {:?}", name, drops));
    }

    // (2) the tyrant's debug log up to completion, connection by connection.
    let log = sw.log(name);
    let before: Vec<&str> = log
        .lines()
        .take_while(|l| !l.contains("both of us are seeds") && !l.contains("stopping:"))
        .collect();
    for why in own_side_closes(&before) {
        failures.push(format!("{}: {}", name, why));
    }
    // (3) the other side: no peer dropped anybody for a reason of its own (a stall,
    // a protocol error, a timeout); closing its copy of a duplicate or seeing the other
    // end go away is all that may happen.
    let benign = [
        "duplicate connection",
        "connected to ourselves",
        "peer closed the connection",
        "both of us are seeds",
        "shutting down",
        // The tyrant exiting with unread bytes in its socket resets it, and a peer that
        // dials it again after it exited is refused.
        "Connection reset by peer",
        "Broken pipe",
        "Connection refused",
    ];
    for other in ["v0", "v1", "v2", "seed"] {
        let text = if other == "seed" {
            std::fs::read_to_string(sw.seed_dir.with_extension("log")).unwrap_or_default()
        } else {
            sw.log(other)
        };
        for l in text.lines().filter(|l| l.contains("): closed: ")) {
            // io errors end in " (os error N)".
            if !benign.iter().any(|b| l.contains(&format!("closed: {}", b))) {
                failures.push(format!("{}: {} closed a connection: {}", name, other, l));
            }
        }
    }

    // The caps it set: all within 5 KiB/s each round, so each below one block a second;
    // and every round follows BitTyrant's rules (see `check_tyrant_trace`).
    check_tyrant_trace(&trace_rounds(&trace), 5.0 * 1024.0, &tyrant_switches(&trace));
    let mut unchokes = 0;
    let mut per_round: BTreeMap<u64, f64> = BTreeMap::new();
    for l in stats_lines(&trace, "round=") {
        if l["action"] != "choke" {
            unchokes += 1;
            *per_round.entry(f(&l, "round") as u64).or_default() +=
                opt(&l, "cap").unwrap_or(f64::INFINITY);
        }
    }
    for (r, sum) in &per_round {
        if *sum > 5.0 * 1024.0 + 1.0 {
            failures.push(format!("{}: round {}: caps sum to {} B/s > 5 KiB/s", name, r, sum));
        }
    }
    eprintln!(
        "{}: uploaded {} B, {} unchoke decisions in its trace, {} ticks with all peers",
        name,
        uploaded,
        unchokes,
        ticks.len() - first_all.unwrap_or(ticks.len())
    );
    if uploaded <= 0.0 {
        failures.push(format!(
            "{}: uploaded nothing during its download ({} unchoke decisions in its trace)",
            name, unchokes
        ));
    }
    drop(vanilla);
    failures
}

/// Closes the peer under test initiated itself, from its debug log (before completion):
/// each connection's `closed:` reason must be a duplicate or self connection, or the
/// other end going away; a `writer stopped` (write error) is only expected on a
/// connection the other end closed — anywhere else it is our pacer or socket failing,
/// and a writer that stops without its connection being closed leaves a zombie.
fn own_side_closes(log: &[&str]) -> Vec<String> {
    let mut closed: HashMap<String, String> = HashMap::new();
    let mut writer: HashMap<String, String> = HashMap::new();
    for l in log {
        if let Some(i) = l.find("): closed: ") {
            let head = &l[..i];
            if let Some(j) = head.rfind("peer ") {
                let id = head[j + 5..].split(' ').next().unwrap_or("").to_string();
                closed.insert(id, l[i + "): closed: ".len()..].to_string());
            }
        } else if let Some(i) = l.find(": writer stopped: ") {
            let head = &l[..i];
            if let Some(j) = head.rfind("peer ") {
                writer.insert(head[j + 5..].to_string(), l.to_string());
            }
        }
    }
    let remote = |why: &str| {
        why == "peer closed the connection"
            || why.starts_with("Connection reset")
            || why == "duplicate connection"
            || why == "connected to ourselves"
    };
    let mut bad = Vec::new();
    for (id, why) in &closed {
        if !remote(why) {
            bad.push(format!("peer {} closed by us: {}", id, why));
        }
    }
    for (id, line) in &writer {
        match closed.get(id) {
            Some(why) if remote(why) => {}
            Some(why) => bad.push(format!("{} (then closed: {})", line, why)),
            None => bad.push(format!("{} and the connection stayed open", line)),
        }
    }
    bad
}

// ---------------------------------------------------------------------------------------
// b. BitThief.
// ---------------------------------------------------------------------------------------

/// Summary of what a fake peer saw from the peer under test.
#[derive(Default, Debug)]
struct Seen {
    bitfields: usize,
    haves: usize,
    unchokes: usize,
    pieces: usize,
    interested: usize,
}

impl Seen {
    fn add(&mut self, m: &Message) {
        match m {
            Message::Bitfield(_) => self.bitfields += 1,
            Message::Have(_) => self.haves += 1,
            Message::Unchoke => self.unchokes += 1,
            Message::Piece { .. } => self.pieces += 1,
            Message::Interested => self.interested += 1,
            _ => {}
        }
    }
}

/// A thief among vanilla peers that optimistically unchoke: it finishes with the right
/// data and uploads nothing. On the wire (fake peers that look like seeds and are
/// interested in it): one it dials at start, one that dials it half-way (when a normal
/// client would send a bitfield) — neither ever gets a Bitfield, Have, Unchoke or Piece,
/// while both get Interested. A vanilla leecher facing the same kind of fake is the
/// control: it does send Haves.
#[test]
fn thief_uploads_nothing_and_still_finishes() {
    let t0 = Instant::now();
    let sw = Swarm::new("thief", 1024 * 1024, 16, 52);
    let n = sw.pieces();
    let ih = sw.meta.info_hash;
    let _seeder = sw.seeder(&["--up", "64"]);
    let fake_a = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_c = TcpListener::bind("127.0.0.1:0").unwrap();
    let a_addr = fake_a.local_addr().unwrap().to_string();
    let c_addr = fake_c.local_addr().unwrap().to_string();
    let mut vanilla = Vec::new();
    for i in 0..4 {
        let seed = format!("{}", 20 + i);
        let mut args = vec!["--up", "32", "--rng-seed", &seed];
        if i == 0 {
            args.extend(["--peer", &c_addr]);
        }
        vanilla.push(sw.peer(&format!("v{}", i), &args, "info"));
    }
    let mut thief =
        sw.peer("thief", &["--thief", "--stop-after-download", "--peer", &a_addr], "info");
    let seedlike = [Message::Bitfield(full_bitfield(n)), Message::Interested];
    let mut a = Fake::accept(&fake_a, ih, b'A', &seedlike);
    let mut c = Fake::accept(&fake_c, ih, b'C', &seedlike);
    let stats = sw.stats("thief");
    let (mut seen_a, mut seen_b, mut seen_c) = (Seen::default(), Seen::default(), Seen::default());
    let mut b: Option<Fake> = None;
    let end = Instant::now() + Duration::from_secs(150);
    loop {
        for m in a.drain(Duration::from_millis(100)) {
            seen_a.add(&m);
        }
        for m in c.drain(Duration::from_millis(10)) {
            seen_c.add(&m);
        }
        if let Some(b) = b.as_mut() {
            for m in b.drain(Duration::from_millis(10)) {
                seen_b.add(&m);
            }
        } else if num(&stats, "tick", "have").map_or(false, |h| h >= 8.0) {
            let addr = listen_addr(&stats);
            b = Some(Fake::dial(addr, ih, b'B', &seedlike));
        }
        if let Ok(Some(_)) = thief.child.try_wait() {
            break;
        }
        assert!(Instant::now() < end, "the thief did not finish in time");
    }
    for m in a.drain(Duration::from_secs(1)) {
        seen_a.add(&m);
    }
    if let Some(b) = b.as_mut() {
        for m in b.drain(Duration::from_secs(1)) {
            seen_b.add(&m);
        }
    }
    wait_ok(&mut thief, Duration::from_secs(5));
    eprintln!(
        "thief: {:.1} s; fake A {:?}; fake B {:?}; control {:?}",
        t0.elapsed().as_secs_f64(),
        seen_a,
        seen_b,
        seen_c
    );
    assert!(sw.same_file("thief"), "the thief's copy differs");
    assert_eq!(stats_field(&stats, "done", "complete").as_deref(), Some("true"));
    assert_eq!(num(&stats, "done", "uploaded"), Some(0.0), "the thief uploaded");
    assert!(
        stats_lines(&stats, "tick ").iter().all(|l| f(l, "uploaded") == 0.0),
        "a tick shows upload"
    );
    assert!(b.is_some(), "the thief never reached 8 pieces before finishing");
    for (who, s) in [("A (dialled by the thief)", &seen_a), ("B (dialled in half-way)", &seen_b)] {
        assert_eq!(
            (s.bitfields, s.haves, s.unchokes, s.pieces),
            (0, 0, 0, 0),
            "fake {} got bitfield/have/unchoke/piece from the thief: {:?}",
            who,
            s
        );
        assert!(s.interested > 0, "fake {}: the thief never said Interested: {:?}", who, s);
    }
    assert!(seen_c.haves > 0, "control: the vanilla leecher sent no Have: {:?}", seen_c);
    drop(vanilla);
}

// ---------------------------------------------------------------------------------------
// c. BitSybil.
// ---------------------------------------------------------------------------------------

/// Three identities in one run assemble the file while two vanilla leechers share the
/// swarm. Each identity downloads its own third (its `share=` range: at least those bytes,
/// at most an endgame's worth more).
///
/// Criterion for "never connect": every connection attempt is logged at debug level as
/// `peer N: connecting to ADDR`, every completed handshake as `peer N: handshake done
/// (ADDR)`, and a handshake from a sibling's peer id as `closed: a sibling identity`. An
/// identity reaching another must either dial its listen address (the tracker hands out
/// every identity's `listen=` address from the `start` lines) or be dialled by it. So:
/// no `connecting to` and no `handshake done` with any identity's listen address, and no
/// sibling handshake refused either (which would mean a TCP connection did happen).
#[test]
fn sybil_identities_never_connect_and_assemble_the_file() {
    let t0 = Instant::now();
    let sw = Swarm::new("sybil", 3 * 512 * 1024, 16, 53);
    let n = sw.pieces();
    let _seeder = sw.seeder(&["--up", "96"]);
    let mut vanilla = Vec::new();
    for i in 0..2 {
        let seed = format!("{}", 30 + i);
        vanilla.push(sw.peer(&format!("v{}", i), &["--up", "32", "--rng-seed", &seed], "info"));
    }
    let mut sy =
        sw.peer("sybil", &["--sybil", "3", "--up", "48", "--stop-after-download"], "debug");
    wait_ok(&mut sy, Duration::from_secs(150));
    let stats = sw.stats("sybil");
    assert!(sw.same_file("sybil"), "the assembled file differs");
    let total = stats_lines(&stats, "done");
    assert_eq!(total.len(), 1, "one total `done` line");
    assert_eq!(total[0].get("identities").map(String::as_str), Some("3"));
    assert_eq!(total[0].get("complete").map(String::as_str), Some("true"));

    let pl = sw.meta.piece_length;
    let mut listens = Vec::new();
    let mut covered = 0u32;
    let mut sum_down = 0.0;
    for i in 0..3 {
        let s = PathBuf::from(format!("{}.id{}", stats.display(), i));
        let start = stats_lines(&s, "start ");
        assert_eq!(start.len(), 1, "identity {}: no start line", i);
        listens.push(start[0]["listen"].clone());
        let (a, b) = start[0]["share"].split_once("..").expect("share=A..B");
        let (a, b): (u32, u32) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(a, covered, "identity {}: ranges not contiguous", i);
        covered = b;
        let want = if b == n {
            sw.data.len() as f64 - f64::from(a) * pl as f64
        } else {
            f64::from(b - a) * pl as f64
        };
        let got = num(&s, "done", "downloaded").expect("identity done line");
        sum_down += got;
        eprintln!("identity {}: pieces {}..{}, downloaded {} of {} B", i, a, b, got, want);
        assert!(
            got >= want && got <= want + (want / 4.0).max(128.0 * 1024.0),
            "identity {} downloaded {} B for a share of {} B",
            i,
            got,
            want
        );
        assert_eq!(stats_field(&s, "done", "complete").as_deref(), Some("true"));
    }
    assert_eq!(covered, n, "the shares do not cover the torrent");
    assert_eq!(num(&stats, "done", "downloaded"), Some(sum_down));
    let uniq: BTreeSet<&String> = listens.iter().collect();
    assert_eq!(uniq.len(), 3, "identities share a listen address: {:?}", listens);

    let log = sw.log("sybil");
    let mut dialled = Vec::new();
    let mut handshakes = Vec::new();
    let mut refused = Vec::new();
    for l in log.lines() {
        if let Some(i) = l.find("connecting to ") {
            let a = l[i + "connecting to ".len()..].trim();
            dialled.push(a.to_string());
        }
        if let Some(i) = l.find("handshake done (") {
            let a = l[i + "handshake done (".len()..].trim_end_matches(')').trim();
            handshakes.push(a.trim_end_matches(')').to_string());
        }
        if l.contains("a sibling identity") {
            refused.push(l.to_string());
        }
    }
    let to_sibling: Vec<&String> = dialled.iter().filter(|a| listens.contains(a)).collect();
    let with_sibling: Vec<&String> = handshakes.iter().filter(|a| listens.contains(a)).collect();
    eprintln!(
        "sybil: {:.1} s; {} dials, {} handshakes, identities at {:?}",
        t0.elapsed().as_secs_f64(),
        dialled.len(),
        handshakes.len(),
        listens
    );
    assert!(!handshakes.is_empty(), "no handshake in the debug log: did the format change?");
    assert!(to_sibling.is_empty(), "identities dialled each other: {:?}", to_sibling);
    assert!(with_sibling.is_empty(), "identities shook hands: {:?}", with_sibling);
    assert!(refused.is_empty(), "sibling connections happened (refused): {:#?}", refused);
    drop(vanilla);
}

// ---------------------------------------------------------------------------------------
// d. BitRebel.
// ---------------------------------------------------------------------------------------

/// A rebel with N = 3 dials a fake peer (via `--peer`) at start and downloads from a
/// seeder that is killed part-way. The fake counts HAVEs per piece: exactly 4 for each
/// piece the rebel holds on disk (byte-identical), none for any other piece.
#[test]
fn rebel_sends_each_have_n_plus_one_times() {
    let t0 = Instant::now();
    let sw = Swarm::new("rebel", 1024 * 1024, 16, 54);
    let n = sw.pieces();
    let ih = sw.meta.info_hash;
    let seeder = sw.seeder(&["--up", "48"]);
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    let _rebel = sw.peer("rebel", &["--rebel", "3", "--peer", &fake_addr], "info");
    let mut fk = Fake::accept(&fake, ih, b'R', &[]);
    let stats = sw.stats("rebel");
    let mut haves: BTreeMap<u32, u32> = BTreeMap::new();
    let mut bitfield: BTreeSet<u32> = BTreeSet::new();
    let mut other = Vec::new();
    let mut note = |m: Message, haves: &mut BTreeMap<u32, u32>| match m {
        Message::Have(i) => *haves.entry(i).or_default() += 1,
        Message::Bitfield(b) => bitfield = bits(&b, n),
        Message::KeepAlive | Message::Unchoke | Message::Choke => {}
        m => other.push(format!("{:?}", m)),
    };
    // Let it get about a third of the pieces, then take the only source away.
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        for m in fk.drain(Duration::from_millis(100)) {
            note(m, &mut haves);
        }
        if num(&stats, "tick", "have").map_or(false, |h| h >= f64::from(n) / 3.0) {
            break;
        }
        assert!(Instant::now() < end, "the rebel got no third of the file in time");
    }
    drop(seeder);
    // Quiet: no new piece for 3 s (the stats tick every second).
    let mut last = (num(&stats, "tick", "have"), Instant::now());
    let end = Instant::now() + Duration::from_secs(30);
    while last.1.elapsed() < Duration::from_secs(3) {
        for m in fk.drain(Duration::from_millis(200)) {
            note(m, &mut haves);
        }
        let h = num(&stats, "tick", "have");
        if h != last.0 {
            last = (h, Instant::now());
        }
        assert!(Instant::now() < end, "the rebel kept getting pieces without a seeder");
    }
    for m in fk.drain(Duration::from_secs(1)) {
        note(m, &mut haves);
    }
    let held: BTreeSet<u32> = (0..n).filter(|&i| sw.piece_on_disk("rebel", i)).collect();
    let have_stat = num(&stats, "tick", "have").unwrap() as usize;
    eprintln!(
        "rebel: {:.1} s; holds {} of {} pieces (stats: {}), bitfield {}, HAVEs {}",
        t0.elapsed().as_secs_f64(),
        held.len(),
        n,
        have_stat,
        bitfield.len(),
        haves.values().sum::<u32>()
    );
    assert_eq!(held.len(), have_stat, "pieces on disk vs the stats' have=");
    assert!(!held.is_empty() && held.len() < n as usize, "want a partial download");
    assert!(other.is_empty(), "unexpected messages: {:?}", other);
    assert!(bitfield.is_subset(&held), "bitfield shows pieces it lacks: {:?}", bitfield);
    let mut wrong = Vec::new();
    for i in 0..n {
        let want = if held.contains(&i) && !bitfield.contains(&i) { 4 } else { 0 };
        let got = haves.get(&i).copied().unwrap_or(0);
        if got != want {
            wrong.push((i, got, want));
        }
    }
    assert!(wrong.is_empty(), "(piece, HAVEs, want): {:?}", wrong);
}

// ---------------------------------------------------------------------------------------
// e. Strategic piece revelation.
// ---------------------------------------------------------------------------------------

/// A `--reveal 2` leecher downloading from a seeder; a fake peer with an empty bitfield,
/// interested, dials it once it holds a few pieces (when a normal client would send a
/// bitfield). The fake must see no bitfield; every HAVE names a piece the leecher holds
/// on disk; at any time at most 2 announced pieces are missing at the fake; and when the
/// fake announces one of them, the leecher shows another. At the end (the leecher holds
/// everything) exactly 2 are outstanding: it keeps the fake interested.
#[test]
fn reveal_shows_at_most_n_missing_pieces() {
    let t0 = Instant::now();
    let sw = Swarm::new("reveal", 1024 * 1024, 16, 55);
    let n = sw.pieces();
    let ih = sw.meta.info_hash;
    let _seeder = sw.seeder(&["--up", "48"]);
    let _leecher = sw.peer("leecher", &["--reveal", "2"], "info");
    let stats = sw.stats("leecher");
    let addr = listen_addr(&stats);
    wait_for(Duration::from_secs(30), "the leecher to hold 4 pieces", || {
        num(&stats, "tick", "have").filter(|&h| h >= 4.0)
    });
    let empty = vec![0u8; (n as usize + 7) / 8];
    let mut fk = Fake::dial(addr, ih, b'V', &[Message::Bitfield(empty), Message::Interested]);

    let mut shown: BTreeSet<u32> = BTreeSet::new();
    let mut ours: BTreeSet<u32> = BTreeSet::new();
    let mut repeats = 0;
    let mut last_have = Instant::now();
    let mut max_out = 0;
    // (time we announced a piece, shown count then) while waiting for the next reveal
    let mut pending: Option<(Instant, usize)> = None;
    let mut topped_up = 0;
    let end = Instant::now() + Duration::from_secs(90);
    loop {
        assert!(Instant::now() < end, "the leecher did not finish in time");
        match fk.recv(Duration::from_millis(100)) {
            Got::Msg(Message::Bitfield(b)) => {
                panic!("a bitfield with {} pieces", bits(&b, n).len())
            }
            Got::Msg(Message::Have(i)) => {
                assert!(i < n, "HAVE {} out of range", i);
                assert!(sw.piece_on_disk("leecher", i), "HAVE {} for a piece it does not hold", i);
                if !shown.insert(i) {
                    repeats += 1;
                }
                last_have = Instant::now();
                let out = shown.difference(&ours).count();
                max_out = max_out.max(out);
                assert!(
                    out <= 2,
                    "{} shown pieces missing at the fake: {:?}",
                    out,
                    shown.difference(&ours).collect::<Vec<_>>()
                );
            }
            Got::Msg(_) | Got::Timeout => {}
            Got::Closed => panic!("the leecher closed the connection"),
        }
        if let Some((t, before)) = pending {
            if shown.len() > before {
                topped_up += 1;
                pending = None;
            } else {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "no new piece shown 5 s after the fake announced one ({} shown)",
                    shown.len()
                );
            }
        }
        let done = num(&stats, "tick", "have") == Some(f64::from(n));
        // Three times: once 2 pieces are outstanding and nothing came for 1.5 s (the quota
        // holds), announce one of them and expect another to be shown.
        if pending.is_none()
            && topped_up < 3
            && !done
            && shown.difference(&ours).count() == 2
            && last_have.elapsed() > Duration::from_millis(1500)
        {
            let p = *shown.difference(&ours).next().unwrap();
            fk.send(Message::Have(p));
            ours.insert(p);
            pending = Some((Instant::now(), shown.len()));
        }
        if done && pending.is_none() && last_have.elapsed() > Duration::from_millis(1500) {
            break;
        }
    }
    eprintln!(
        "reveal: {:.1} s; shown {:?}, fake announced {:?}, {} repeats",
        t0.elapsed().as_secs_f64(),
        shown,
        ours,
        repeats
    );
    assert_eq!(topped_up, 3, "the leecher finished before 3 top-ups");
    assert_eq!(shown.difference(&ours).count(), 2, "not kept at 2 outstanding at the end");
    assert_eq!(repeats, 0, "pieces shown twice");
}

// ---------------------------------------------------------------------------------------
// f. The traces of BitTyrant and PropShare.
// ---------------------------------------------------------------------------------------

fn trace_rounds(path: &Path) -> BTreeMap<u64, Vec<Line>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut rounds: BTreeMap<u64, Vec<Line>> = BTreeMap::new();
    for l in text.lines().filter(|l| !l.starts_with('#') && !l.starts_with("start ")) {
        let m: Line = l
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for k in ["round", "peer", "action", "u_p", "d_p", "cap"] {
            assert!(m.contains_key(k), "trace line without {}=: {}", k, l);
        }
        assert!(
            ["choke", "unchoke", "optimistic"].contains(&m["action"].as_str()),
            "action: {}",
            l
        );
        rounds.entry(f(&m, "round") as u64).or_default().push(m);
    }
    rounds
}

/// BitTyrant round by round, as the released `MikesUnchoker` decides (capacity C in
/// bytes/s): pass 1 is a plain unchoke, passes 2 and 3 optimistic; every unchoked peer is
/// interested; with shape on its cap is its u_p, off none; Σu_p of the unchoked ≤ C; the
/// market rate is never below 1 KiB/s; a peer choked while eligible for pass 2 (it wants our
/// pieces, we want its, not snubbed) did not fit when its turn came (what passes 1 and 2
/// gave the peers ranked at least as high, plus its own u_p, exceeds C), where the ranking
/// key is d_p/u_p (`rate`: d_p); with `give`, no interested peer is left choked that would
/// still fit, and with `keep` nobody gets the third pass. u_p moves only by ×1.2, ×0.9 or
/// from the market rate. Returns (leecher rounds, rounds with a third pass, mean Σu_p / C).
fn check_tyrant_trace(
    rounds: &BTreeMap<u64, Vec<Line>>,
    c: f64,
    sw: &TyrantSwitches,
) -> (usize, usize, f64) {
    let (mut leech_rounds, mut third, mut used_sum) = (0, 0, 0.0);
    let mut prev: HashMap<String, (f64, f64)> = HashMap::new();
    for (r, lines) in rounds {
        if lines.iter().all(|l| opt(l, "u_p").is_none()) {
            // Seed mode: the vanilla seed choker (no u_p).
            prev.clear();
            continue;
        }
        leech_rounds += 1;
        let market = opt(&lines[0], "market").expect("tyrant lines carry the market rate");
        assert!(market >= 1023.0, "round {}: market rate {} below 1 KiB/s", r, market);
        let key = |l: &Line| {
            let d = opt(l, "d_p").unwrap_or(0.0);
            if sw.rank == "rate" {
                d
            } else {
                d / opt(l, "u_p").unwrap_or(1.0)
            }
        };
        let mut used = 0.0;
        for l in lines {
            let u_p = opt(l, "u_p").expect("tyrant lines carry u_p");
            assert!(u_p >= 1023.0, "round {}: u_p {} below the floor", r, u_p);
            let pass = l["pass"].as_str();
            match l["action"].as_str() {
                "unchoke" => assert_eq!(pass, "1", "round {}: a plain unchoke is pass 1", r),
                "optimistic" => assert!(pass == "2" || pass == "3", "round {}: pass {}", r, pass),
                _ => assert_eq!(pass, "-", "round {}", r),
            }
            if l["action"] != "choke" {
                assert_eq!(l["interested"], "1", "round {}: unchoked an uninterested peer", r);
                match opt(l, "cap") {
                    Some(cap) => {
                        assert!(sw.shape, "round {}: a cap with --tyrant-shape off", r);
                        assert!(
                            (cap - u_p).abs() <= 1.0,
                            "round {}: cap {} != u_p {}",
                            r,
                            cap,
                            u_p
                        );
                    }
                    None => assert!(!sw.shape, "round {}: unchoked without a cap", r),
                }
                used += u_p;
            }
            if pass == "3" {
                assert!(sw.give, "round {}: a third pass with --tyrant-excess keep", r);
            }
            // u_p: only the update rules move a committed rate.
            if let Some(&(before, before_market)) = prev.get(&l["peer"]) {
                let near =
                    |k: f64| (u_p - (before * k).max(1024.0).min(c)).abs() <= 1.0 + 1e-3 * u_p;
                let from_market =
                    (before - before_market).abs() < 1.0 || (u_p - market).abs() < 1.0;
                assert!(
                    from_market || near(1.0) || near(1.2) || near(0.9),
                    "round {} peer {}: u_p {} -> {}",
                    r,
                    l["peer"],
                    before,
                    u_p
                );
            }
        }
        let tol = 0.5 * lines.len() as f64;
        assert!(
            used <= c + tol,
            "round {}: u_p of the unchoked sum to {} > capacity {}",
            r,
            used,
            c
        );
        used_sum += used / c;
        if lines.iter().any(|l| l["pass"] == "3") {
            third += 1;
        }
        let early = |l: &&Line| l["pass"] == "1" || l["pass"] == "2";
        for q in lines.iter().filter(|l| l["action"] == "choke" && l["interested"] == "1") {
            let u_q = opt(q, "u_p").unwrap();
            if sw.give {
                assert!(
                    used + u_q > c - tol,
                    "round {}: peer {} choked though {} of {} is left",
                    r,
                    q["peer"],
                    c - used,
                    c
                );
            }
            if q["interesting"] == "1" && q["snubbed"] == "0" && sw.rank != "random" {
                let ahead: f64 = lines
                    .iter()
                    .filter(early)
                    .filter(|l| l["pass"] == "1" || key(l) >= key(q) * (1.0 - 1e-2) - 1e-3)
                    .map(|l| opt(l, "u_p").unwrap())
                    .sum();
                assert!(
                    ahead + u_q > c - tol,
                    "round {}: peer {} (u_p {}) choked though it fit: {} of {} given to peers ranked as high",
                    r,
                    q["peer"],
                    u_q,
                    ahead,
                    c
                );
            }
        }
        prev =
            lines.iter().map(|l| (l["peer"].clone(), (opt(l, "u_p").unwrap(), market))).collect();
    }
    (leech_rounds, third, used_sum / leech_rounds.max(1) as f64)
}

/// What a tyrant ran with, as its trace's copy of the `start` line says.
struct TyrantSwitches {
    give: bool,
    rank: String,
    shape: bool,
}

fn tyrant_switches(trace: &Path) -> TyrantSwitches {
    let text = std::fs::read_to_string(trace).unwrap();
    let start = text.lines().find(|l| l.starts_with("start ")).expect("a start line");
    let w = |k: &str| {
        start
            .split(' ')
            .find_map(|x| x.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {} in {}", k, start))
            .to_string()
    };
    TyrantSwitches {
        give: w("tyrant_excess=") == "give",
        rank: w("tyrant_rank="),
        shape: w("tyrant_shape=") == "on",
    }
}

/// PropShare round by round (capacity C, optimistic share f): every interested peer that
/// sent us data last round is unchoked (reciprocal) with the share C_r·b_p/Σb, where C_r is
/// (1−f)·C with an optimistic peer and C without; at most one optimistic unchoke, with f·C
/// (all of C when nobody reciprocated); shares are pacer weights (share / C), not caps;
/// Σshares ≤ C. Returns (leecher rounds, most reciprocal peers in one round).
fn check_propshare_trace(rounds: &BTreeMap<u64, Vec<Line>>, c: f64, share: f64) -> (usize, usize) {
    let mut leech_rounds = 0;
    let mut most = 0;
    for (r, lines) in rounds {
        // Seed mode hands the round to the vanilla seed choker: no d_p at all.
        if lines.iter().all(|l| opt(l, "d_p").is_none()) {
            continue;
        }
        leech_rounds += 1;
        let recip: Vec<&Line> =
            lines.iter().filter(|l| l["interested"] == "1" && f(l, "down_round") > 0.0).collect();
        let opts: Vec<&Line> = lines.iter().filter(|l| l["action"] == "optimistic").collect();
        assert!(opts.len() <= 1, "round {}: {} optimistic unchokes", r, opts.len());
        most = most.max(recip.len());
        let sum_b: f64 = recip.iter().map(|l| f(l, "down_round")).sum();
        let c_r = if opts.is_empty() { c } else { (1.0 - share) * c };
        let mut used = 0.0;
        for l in &recip {
            assert_eq!(
                l["action"], "unchoke",
                "round {}: reciprocating peer {} not unchoked",
                r, l["peer"]
            );
        }
        let check = |l: &Line, want: f64| {
            let u = opt(l, "u_p").expect("an unchoked peer has a share");
            assert!(
                (u - want).abs() <= 1.0,
                "round {}: peer {} share {} (want {:.0})",
                r,
                l["peer"],
                u,
                want
            );
            assert!(opt(l, "cap").is_none(), "round {}: a share is not a cap", r);
            assert!(
                (f(l, "weight") - want / c).abs() <= 2e-3,
                "round {}: weight {}",
                r,
                l["weight"]
            );
            u
        };
        for l in lines.iter().filter(|l| l["action"] == "unchoke") {
            let b = f(l, "down_round");
            assert!(
                b > 0.0 && l["interested"] == "1",
                "round {}: unchoked peer {} sent nothing",
                r,
                l["peer"]
            );
            used += check(l, c_r * b / sum_b);
        }
        for l in &opts {
            assert_eq!(l["interested"], "1", "round {}: optimistic peer not interested", r);
            used += check(l, if recip.is_empty() { c } else { share * c });
        }
        assert!(
            used <= c + 0.5 * lines.len() as f64,
            "round {}: shares sum to {} > {}",
            r,
            used,
            c
        );
    }
    (leech_rounds, most)
}

/// One PropShare and one BitTyrant peer in a small swarm, both with `--trace`; the traces
/// follow each algorithm's rules in every leecher round.
#[test]
fn propshare_and_tyrant_trace_decisions() {
    let t0 = Instant::now();
    let sw = Swarm::new("traces", 2 * 1024 * 1024, 32, 56);
    let _seeder = sw.seeder(&["--up", "64"]);
    let mut vanilla = Vec::new();
    for i in 0..2 {
        let seed = format!("{}", 40 + i);
        vanilla.push(sw.peer(&format!("v{}", i), &["--up", "32", "--rng-seed", &seed], "info"));
    }
    let (tt, pt) = (sw.trace("tyrant"), sw.trace("propshare"));
    let mut ty = sw.peer(
        "tyrant",
        &["--tyrant", "--up", "32", "--stop-after-download", "--trace", tt.to_str().unwrap()],
        "info",
    );
    let mut ps = sw.peer(
        "propshare",
        &["--propshare", "--up", "32", "--stop-after-download", "--trace", pt.to_str().unwrap()],
        "info",
    );
    wait_ok(&mut ty, Duration::from_secs(150));
    wait_ok(&mut ps, Duration::from_secs(150));
    assert!(sw.same_file("tyrant") && sw.same_file("propshare"), "a copy differs");
    let sw_ty = tyrant_switches(&tt);
    let (ty_rounds, _, _) = check_tyrant_trace(&trace_rounds(&tt), 32.0 * 1024.0, &sw_ty);
    let (ps_rounds, most) = check_propshare_trace(&trace_rounds(&pt), 32.0 * 1024.0, 0.2);
    eprintln!(
        "traces: {:.1} s; tyrant {} leecher rounds, propshare {} (up to {} reciprocal peers a round)",
        t0.elapsed().as_secs_f64(),
        ty_rounds,
        ps_rounds,
        most
    );
    assert!(ty_rounds >= 2, "only {} tyrant rounds traced", ty_rounds);
    assert!(ps_rounds >= 2, "only {} propshare rounds traced", ps_rounds);
    assert!(most >= 1, "no round in which PropShare rewarded anyone");
    drop(vanilla);
}

/// The uploaded bytes and download time of a finished peer, from its `done` line.
fn done_upload(stats: &Path) -> (f64, f64) {
    let text = std::fs::read_to_string(stats).unwrap();
    let done = text.lines().find(|l| l.starts_with("done ")).expect("a done line");
    let w = |k: &str| {
        done.split(' ').find_map(|x| x.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    };
    (w("uploaded="), w("download_time="))
}

/// One swarm for two BitTyrant variants: our tracker, a seeder that keeps only two
/// connections (the tyrants, who come first), the two tyrants from the start, and six vanilla
/// leechers joining 6 s later with nothing. The seeder refuses them, so whatever they have
/// came from a tyrant: they stay interested in the tyrants' pieces with few to give, and only
/// a third pass serves them at first, however late the machine runs the next round.
fn tyrant_pair(
    tag: &str,
    seed: u64,
    variants: [(&'static str, &'static [&'static str]); 2],
) -> Vec<String> {
    let sw = Swarm::new(tag, 1024 * 1024, 32, seed);
    let _seeder = sw.seeder(&["--up", "48", "--max-peers", "2"]);
    let cap = 12.0;
    let mut procs = Vec::new();
    for (name, extra) in variants {
        let t = sw.trace(name);
        let mut a =
            vec!["--tyrant", "--up", "12", "--stop-after-download", "--trace", t.to_str().unwrap()];
        a.extend_from_slice(extra);
        procs.push((name, sw.peer(name, &a, "warn")));
    }
    std::thread::sleep(Duration::from_secs(6));
    let vanilla: Vec<Proc> = (0..6)
        .map(|i| {
            let seed = format!("{}", seed * 10 + i);
            sw.peer(&format!("v{}", i), &["--up", "32", "--rng-seed", &seed], "warn")
        })
        .collect();
    let mut report = Vec::new();
    for (name, p) in &mut procs {
        wait_ok(p, Duration::from_secs(240));
        assert!(sw.same_file(name), "{}: a copy differs", name);
        let switches = tyrant_switches(&sw.trace(name));
        let rounds = trace_rounds(&sw.trace(name));
        let (n, third, used) = check_tyrant_trace(&rounds, cap * 1024.0, &switches);
        let best = rounds
            .values()
            .map(|ls| {
                ls.iter()
                    .filter(|l| l["action"] != "choke")
                    .map(|l| opt(l, "u_p").unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let (up, secs) = done_upload(&sw.stats(name));
        assert!(n >= 2, "{}: only {} leecher rounds", name, n);
        match *name {
            "give" => {
                assert!(third >= 1, "give: never a third pass");
                assert!(
                    best >= 0.9 * cap * 1024.0,
                    "give: at best {:.0} of the capacity given",
                    best
                );
            }
            "keep" => assert_eq!(third, 0, "keep: a third pass"),
            "noshape" => assert!(!switches.shape),
            "byrate" => assert_eq!(switches.rank, "rate"),
            _ => {}
        }
        report.push(format!(
            "{}: {} rounds ({} with a third pass), Σu_p {:.2} of cap on average and {:.2} at best, uploaded {:.0} KiB in {:.0} s",
            name, n, third, used, best / cap / 1024.0, up / 1024.0, secs
        ));
    }
    drop(vanilla);
    report
}

/// Each BitTyrant switch changes its one mechanism: `give` (the default) hands capacity
/// left after the first two passes to peers it wants nothing from, up to its cap; `keep`
/// never makes a third pass; `--tyrant-shape off` unchokes without per-peer caps;
/// `--tyrant-rank rate` ranks by d_p alone. Every trace follows the released rules round
/// by round (`check_tyrant_trace`), and every file is identical.
#[test]
fn tyrant_switches_each_change_their_mechanism() {
    let t0 = Instant::now();
    let a = std::thread::spawn(|| {
        tyrant_pair("sw-a", 71, [("give", &[]), ("byrate", &["--tyrant-rank", "rate"])])
    });
    let b = std::thread::spawn(|| {
        tyrant_pair(
            "sw-b",
            72,
            [("keep", &["--tyrant-excess", "keep"]), ("noshape", &["--tyrant-shape", "off"])],
        )
    });
    let mut report = a.join().expect("swarm a");
    report.extend(b.join().expect("swarm b"));
    eprintln!("switches ({:.1} s):\n  {}", t0.elapsed().as_secs_f64(), report.join("\n  "));
}
