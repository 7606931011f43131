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
use tyrant::pieces::Block;

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

    /// Give peer `name` the pieces `keep` picks, on disk before it starts (zeros elsewhere,
    /// which fail the hash check): it resumes with exactly those.
    fn partial(&self, name: &str, keep: impl Fn(u32) -> bool) {
        let pl = self.meta.piece_length as usize;
        let mut d = self.data.clone();
        for (i, piece) in d.chunks_mut(pl).enumerate() {
            if !keep(i as u32) {
                piece.iter_mut().for_each(|b| *b = 0);
            }
        }
        std::fs::write(self.peer_dir(name).join(FILE), d).unwrap();
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
    // Whole lines only: a peer stopped by the test may leave half a line behind.
    let whole = text.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(str::trim_end);
    for l in whole.filter(|l| !l.starts_with('#') && !l.starts_with("start ")) {
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

/// What `check_tyrant_trace` counted.
struct TyrantTrace {
    /// Rounds while downloading.
    leech: usize,
    /// Rounds with a third pass.
    third: usize,
    /// Mean Σu_p of the unchoked over C.
    used: f64,
    /// Rounds in which the order decided: some peer was unchoked by pass 1 or 2 while a
    /// peer eligible for pass 2 (interested, wanted, not snubbed) stayed choked.
    contention: usize,
    /// Rounds in which such a choked peer would have fit when its turn came in the ranked
    /// walk (see `check_tyrant_trace`): the ranking rule broken (allowed with `random`).
    misranked: usize,
}

/// BitTyrant round by round, as the released `MikesUnchoker` decides (capacity C in
/// bytes/s): pass 1 is a plain unchoke, passes 2 and 3 optimistic; every unchoked peer is
/// interested; with shape on its cap is its u_p, off none; Σu_p of the unchoked ≤ C; the
/// market rate is never below 1 KiB/s; a peer choked while eligible for pass 2 (it wants our
/// pieces, we want its, not snubbed) did not fit when its turn came (what passes 1 and 2
/// gave the peers ranked at least as high, plus its own u_p, exceeds C), where the ranking
/// key is d_p/u_p (`rate`: d_p); one with d_p/u_p ≥ 1 is no observed altruist, so pass 1
/// could take it, and then only pass-1 peers ranked at least as high count, and no pass-1
/// peer ranked clearly lower costs as much or more (it came later and fit); with `give`, no
/// interested peer is left choked that would still fit, and with `keep` nobody gets the
/// third pass. u_p moves only by ×1.2, ×0.9 or from the market rate. With `--tyrant-rank
/// random` the ranking rule is not asserted but counted (`TyrantTrace::misranked`).
fn check_tyrant_trace(
    rounds: &BTreeMap<u64, Vec<Line>>,
    c: f64,
    sw: &TyrantSwitches,
) -> TyrantTrace {
    let (mut leech_rounds, mut third, mut used_sum) = (0, 0, 0.0);
    let (mut contention, mut misranked) = (0, 0);
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
        let ratio = |l: &Line| opt(l, "d_p").unwrap_or(0.0) / opt(l, "u_p").unwrap_or(1.0);
        let (mut contended, mut broken) = (false, false);
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
            if q["interesting"] == "1" && q["snubbed"] == "0" {
                // Ranked at least as high (a tie within 1 % counts as higher); a peer pass 1
                // may take is passed over only by pass-1 peers.
                let pass1 = ratio(q) >= 1.01;
                let high = |l: &&Line| key(l) >= key(q) * (1.0 - 1e-2) - 1e-3;
                let ahead: f64 = lines
                    .iter()
                    .filter(early)
                    .filter(|l| {
                        if pass1 {
                            l["pass"] == "1" && high(l)
                        } else {
                            l["pass"] == "1" || high(l)
                        }
                    })
                    .map(|l| opt(l, "u_p").unwrap())
                    .sum();
                // A pass-1 peer ranked clearly lower came after it in the walk and fit with
                // at least as much already given, though it costs as much or more (u_p as
                // traced, to the byte: a false alarm would need the capacity left at q's turn
                // to fall in the sub-byte gap between two rounded rates).
                let below = lines.iter().find(|l| {
                    pass1
                        && l["pass"] == "1"
                        && key(l) < key(q) * (1.0 - 1e-2)
                        && opt(l, "u_p").unwrap() >= u_q
                });
                let fit = ahead + u_q <= c - tol || below.is_some();
                contended |= lines.iter().any(|l| early(&l));
                broken |= fit;
                assert!(
                    sw.rank == "random" || !fit,
                    "round {}: peer {} (u_p {}) choked though it fit: {} of {} given to peers ranked as high; unchoked though ranked lower and no cheaper: {:?}",
                    r,
                    q["peer"],
                    u_q,
                    ahead,
                    c,
                    below.map(|l| &l["peer"])
                );
            }
        }
        contention += contended as usize;
        misranked += broken as usize;
        prev =
            lines.iter().map(|l| (l["peer"].clone(), (opt(l, "u_p").unwrap(), market))).collect();
    }
    TyrantTrace {
        leech: leech_rounds,
        third,
        used: used_sum / leech_rounds.max(1) as f64,
        contention,
        misranked,
    }
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
    let ty_rounds = check_tyrant_trace(&trace_rounds(&tt), 32.0 * 1024.0, &sw_ty).leech;
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

// ---------------------------------------------------------------------------------------
// g. What each switch does to the bytes: BitTyrant's give/keep, shape on/off and rank,
//    the peer-set flags, and PropShare's work conservation.
// ---------------------------------------------------------------------------------------

/// A block message as the pacer charges it (16 KiB and its 13-byte header).
const BLOCK: f64 = 16384.0 + 13.0;

/// One choking period of a trace: the decisions of round `round − 1` and the bytes we sent
/// under them, which round `round` reports as `up_round`, over `dt` seconds.
struct Period {
    round: u64,
    dt: f64,
    /// Bytes sent to every peer in the period.
    bytes: f64,
    /// Each peer decided on at the start: its decision line, the bytes it got, and whether
    /// it was still interested at the end.
    peers: Vec<(Line, f64, bool)>,
}

impl Period {
    /// Peers unchoked at the start and interested at both ends: those that could take data.
    fn busy(&self) -> usize {
        self.peers
            .iter()
            .filter(|(l, _, still)| unchoked(l) && l["interested"] == "1" && *still)
            .count()
    }

    /// Peers interested in us at the start, unchoked or not.
    fn interested(&self) -> usize {
        self.peers.iter().filter(|(l, _, _)| l["interested"] == "1").count()
    }

    /// Σu_p of the unchoked, in bytes/s.
    fn offered(&self) -> f64 {
        self.peers
            .iter()
            .filter(|(l, _, _)| unchoked(l))
            .map(|(l, _, _)| opt(l, "u_p").unwrap_or(0.0))
            .fold(0.0, |a, b| a + b)
    }

    /// What was sent, as a fraction of capacity `c` (bytes/s).
    fn share_of(&self, c: f64) -> f64 {
        self.bytes / self.dt / c
    }
}

fn unchoked(l: &Line) -> bool {
    l["action"] != "choke"
}

/// The periods between consecutive leecher rounds of a trace.
fn periods(rounds: &BTreeMap<u64, Vec<Line>>) -> Vec<Period> {
    let leech = |ls: &Vec<Line>| ls.iter().any(|l| opt(l, "u_p").is_some());
    rounds
        .iter()
        .zip(rounds.iter().skip(1))
        .filter(|((a, before), (b, _))| **a + 1 == **b && leech(before))
        .map(|((_, before), (&round, after))| {
            let now: HashMap<&str, &Line> = after.iter().map(|l| (l["peer"].as_str(), l)).collect();
            let peers = before
                .iter()
                .map(|l| {
                    let a = now.get(l["peer"].as_str());
                    let bytes = a.map_or(0.0, |a| f(a, "up_round"));
                    (l.clone(), bytes, a.map_or(false, |a| a["interested"] == "1"))
                })
                .collect();
            Period {
                round,
                dt: f(&after[0], "t") - f(&before[0], "t"),
                bytes: after.iter().map(|l| f(l, "up_round")).sum(),
                peers,
            }
        })
        .collect()
}

/// The most any peer got beyond its caps, in bytes, and the number of capped stretches:
/// over each stretch of consecutive periods in which a peer was unchoked with a cap, what it
/// got (and a block still counted in the period it was choked) minus Σcap·dt. With caps
/// below 16 KiB/s a peer's bucket holds one block (`MIN_BURST`), so a stretch may exceed its
/// caps by one block saved up before it and one overdrawn at its end: 2 blocks at most.
fn beyond_caps(ps: &[Period]) -> (f64, usize) {
    let mut open: HashMap<String, (f64, f64)> = HashMap::new();
    let (mut worst, mut stretches) = (0.0f64, 0);
    let mut last = 0;
    for p in ps {
        if p.round != last + 1 {
            for (_, (sent, allowed)) in open.drain() {
                worst = worst.max(sent - allowed);
            }
        }
        last = p.round;
        let mut next = HashMap::new();
        for (l, bytes, _) in &p.peers {
            let mut s = open.remove(&l["peer"]).unwrap_or((0.0, 0.0));
            match opt(l, "cap").filter(|_| unchoked(l)) {
                Some(cap) => {
                    if s == (0.0, 0.0) {
                        stretches += 1;
                    }
                    s.0 += bytes;
                    s.1 += cap * p.dt;
                    next.insert(l["peer"].clone(), s);
                }
                // A block in flight when it was choked still counts against the stretch.
                None if s != (0.0, 0.0) => worst = worst.max(s.0 + bytes - s.1),
                None => {}
            }
        }
        for (_, (sent, allowed)) in open.drain() {
            worst = worst.max(sent - allowed);
        }
        open = next;
    }
    for (_, (sent, allowed)) in open {
        worst = worst.max(sent - allowed);
    }
    (worst, stretches)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn show(v: &[f64]) -> String {
    v.iter().map(|x| format!("{:.2}", x)).collect::<Vec<_>>().join(" ")
}

/// Wait (bounded) until the trace at `path` has round `n`, give its lines a second to be
/// flushed, and return its rounds up to `n`.
fn rounds_until(path: &Path, n: u64, limit: Duration) -> BTreeMap<u64, Vec<Line>> {
    let head = format!("round={} ", n);
    wait_for(limit, &format!("round {} in {}", n, path.display()), || {
        let text = std::fs::read_to_string(path).ok()?;
        text.lines().any(|l| l.starts_with(&head)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let mut rounds = trace_rounds(path);
    rounds.split_off(&(n + 1));
    rounds
}

/// The lone tyrant's file: 80 pieces of 32 KiB, of which it starts with the first 64.
const LONE_PIECES: u32 = 80;
const LONE_HELD: u32 = 64;

/// A BitTyrant alone with what it has, so that its switches show in the bytes: our tracker
/// and no seeder; the tyrant starts with 2 of the file's 2.5 MiB on disk and stays a leecher,
/// and `n` vanilla leechers start empty and dial it. Everything they get comes from the
/// tyrant, so it never wants their pieces: passes 1 and 2 stay empty and only the third pass
/// serves them, every round (they stay interested: they take at most 24 KiB/s of the
/// tyrant's 2 MiB). Stopped after `rounds` rounds; returns its trace and switches.
fn lone_tyrant(
    tag: &str,
    seed: u64,
    n: u64,
    args: &[&str],
    rounds: u64,
) -> (BTreeMap<u64, Vec<Line>>, TyrantSwitches) {
    let sw = Swarm::new(tag, LONE_PIECES as usize * 32 * 1024, 32, seed);
    sw.partial("tyrant", |i| i < LONE_HELD);
    let trace = sw.trace("tyrant");
    let mut a = vec!["--tyrant", "--trace", trace.to_str().unwrap()];
    a.extend_from_slice(args);
    let _tyrant = sw.peer("tyrant", &a, "warn");
    let addr = listen_addr(&sw.stats("tyrant")).to_string();
    let _vanilla: Vec<Proc> = (0..n)
        .map(|i| {
            let s = format!("{}", seed * 10 + i);
            sw.peer(&format!("v{}", i), &["--up", "32", "--rng-seed", &s, "--peer", &addr], "warn")
        })
        .collect();
    let got = rounds_until(&trace, rounds, Duration::from_secs(60 + 20 * rounds));
    (got, tyrant_switches(&trace))
}

/// Each BitTyrant switch changes its one mechanism, shown by the bytes it uploads, one
/// lone tyrant per switch (`lone_tyrant`, capacity 24 KiB/s, vanilla peers served only by
/// the third pass):
/// - `give` (the default) with `--tyrant-u0 12`: the market rate stays at u0 while at most
///   2 peers are unchoked, so the third pass unchokes 2 peers at 12 KiB/s, Σu_p = C, and
///   every period with 2 interested unchoked peers uploads at least 0.8 of C (0.9 on
///   average);
/// - `--tyrant-excess keep`, the same otherwise: nobody is unchoked, nothing uploaded;
/// - `--tyrant-shape on` with u0 3 KiB/s and 6 peers: round 1 unchokes all 6 at 3 KiB/s;
///   then the market rate is the mean u_p of 6 peers that were never offered one (0), so the
///   floor: 6 × 1 KiB/s. No peer gets more than its caps allow, and the upload stays well
///   below C;
/// - `--tyrant-shape off`, the same otherwise: no caps, one shared bucket, so the same
///   peers take all of C, far more than Σu_p.
///
/// Every trace follows the released rules round by round (`check_tyrant_trace`).
#[test]
fn tyrant_switches_each_change_their_mechanism() {
    let t0 = Instant::now();
    let runs: [(&'static str, u64, u64, &'static [&'static str]); 4] = [
        ("give", 71, 4, &["--up", "24", "--tyrant-u0", "12"]),
        ("keep", 72, 4, &["--up", "24", "--tyrant-u0", "12", "--tyrant-excess", "keep"]),
        ("shape-on", 73, 6, &["--up", "24"]),
        ("shape-off", 74, 6, &["--up", "24", "--tyrant-shape", "off"]),
    ];
    let handles: Vec<_> = runs
        .iter()
        .map(|&(name, seed, n, args)| {
            (name, std::thread::spawn(move || lone_tyrant(name, seed, n, args, 6)))
        })
        .collect();
    let got: HashMap<&str, _> =
        handles.into_iter().map(|(name, h)| (name, h.join().expect(name))).collect();
    let c = 24.0 * 1024.0;
    let mut report = Vec::new();
    let mut seen = HashMap::new();
    for (name, _, _, _) in runs {
        let ps = periods(&got[name].0);
        // Periods in which at least 2 peers could take data (keep unchokes nobody: there,
        // periods with at least 2 interested peers).
        let counted: Vec<&Period> = ps
            .iter()
            .filter(|p| if name == "keep" { p.interested() >= 2 } else { p.busy() >= 2 })
            .collect();
        let s = Switch {
            sent: counted.iter().map(|p| p.share_of(c)).collect(),
            offered: counted.iter().map(|p| p.offered() / c).collect(),
            beyond: beyond_caps(&ps),
        };
        report.push(format!(
            "{}: {} periods counted: uploaded {} of C (mean {:.2}), Σu_p {} of C; most beyond the caps {:.0} B over {} capped stretches",
            name,
            s.sent.len(),
            show(&s.sent),
            mean(&s.sent),
            show(&s.offered),
            s.beyond.0,
            s.beyond.1
        ));
        seen.insert(name, s);
    }
    eprintln!("switches ({:.1} s):\n  {}", t0.elapsed().as_secs_f64(), report.join("\n  "));
    // The bytes first, then the rules in the traces.
    for (name, s) in &seen {
        assert!(s.sent.len() >= 3, "{}: only {} periods to count", name, s.sent.len());
    }
    let most = 2.0 * BLOCK + 1024.0;
    let s = &seen["give"];
    assert!(s.beyond.0 <= most, "give: a peer got {:.0} B beyond its caps", s.beyond.0);
    assert!(
        s.sent.iter().all(|&x| x >= 0.8) && mean(&s.sent) >= 0.9,
        "give: uploaded {} of C",
        show(&s.sent)
    );
    let s = &seen["keep"];
    assert!(s.sent.iter().all(|&x| x <= 0.1), "keep: uploaded {} of C", show(&s.sent));
    let s = &seen["shape-on"];
    assert!(s.beyond.1 >= 6, "shape on: only {} capped stretches", s.beyond.1);
    assert!(s.beyond.0 <= most, "shape on: a peer got {:.0} B beyond its caps", s.beyond.0);
    // Once the market rate is at the floor, so is the upload: Σu_p at most half of C.
    let floor: Vec<f64> =
        s.sent.iter().zip(&s.offered).filter(|(_, &o)| o <= 0.5).map(|(&x, _)| x).collect();
    assert!(floor.len() >= 2, "shape on: the market rate never fell to the floor");
    assert!(mean(&floor) <= 0.6, "shape on: uploaded {} of C at the floor", show(&floor));
    let s = &seen["shape-off"];
    assert!(
        s.sent.iter().all(|&x| x >= 0.8) && mean(&s.sent) >= 0.9,
        "shape off: uploaded {} of C",
        show(&s.sent)
    );
    assert!(
        s.sent.iter().zip(&s.offered).any(|(x, o)| *x >= 1.5 * o),
        "shape off: never clearly above Σu_p ({} of C against {})",
        show(&s.sent),
        show(&s.offered)
    );
    for (name, _, _, _) in runs {
        let (rounds, sw) = &got[name];
        let t = check_tyrant_trace(rounds, c, sw);
        eprintln!(
            "  {}: {} leecher rounds, {} with a third pass, mean Σu_p {:.2} of C",
            name, t.leech, t.third, t.used
        );
        assert!(t.leech >= 4, "{}: only {} leecher rounds", name, t.leech);
        match name {
            "keep" => assert_eq!(t.third, 0, "keep: a third pass"),
            _ => assert!(t.third >= 1, "{}: never a third pass", name),
        }
    }
}

/// What one switch's lone tyrant did in the counted periods, as fractions of C.
struct Switch {
    sent: Vec<f64>,
    offered: Vec<f64>,
    /// `beyond_caps`: the most a peer got beyond its caps, and the capped stretches.
    beyond: (f64, usize),
}

/// `--tyrant-rank` orders passes 1 and 2, where there is contention: a seeder serving
/// everyone, 6 vanilla leechers and 3 tyrants at 12 KiB/s (about 4 peers at the market
/// rate fit). Tyrant k starts with the pieces i ≡ k (mod 4) of 96, so from the first round
/// the vanilla peers want its pieces and it wants theirs and the other tyrants'. The
/// `ratio` and `rate` tyrants follow their ranking in every round (`check_tyrant_trace`);
/// the `random` one breaks the ratio ranking: in some round a peer pass 1 could take,
/// ranked clearly above the pass-1 peers it would have displaced, stays choked though it
/// would fit. With equal u_p that means it ranks above at least 2 of the 4 pass-1 peers;
/// with 8 eligible peers for 4 places a random order avoids that in 5 of 70 draws, so at
/// least 5 rounds with contention are required, making a run without a broken round a
/// 1-in-a-million event (ties make it likelier, but not by orders of magnitude).
#[test]
fn tyrant_rank_orders_the_first_two_passes() {
    let t0 = Instant::now();
    let sw = Swarm::new("rank", 3 * 1024 * 1024, 32, 76);
    let _seeder = sw.seeder(&["--up", "32"]);
    let _vanilla: Vec<Proc> = (0..6)
        .map(|i| {
            let s = format!("{}", 760 + i);
            sw.peer(&format!("v{}", i), &["--up", "24", "--rng-seed", &s], "warn")
        })
        .collect();
    let ranks = ["ratio", "rate", "random"];
    for (k, r) in ranks.iter().enumerate() {
        sw.partial(r, |i| i % 4 == k as u32);
    }
    let _tyrants: Vec<Proc> = ranks
        .iter()
        .map(|r| {
            let t = sw.trace(r);
            let a = ["--tyrant", "--up", "12", "--tyrant-rank", r, "--trace", t.to_str().unwrap()];
            sw.peer(r, &a, "warn")
        })
        .collect();
    let n = 8;
    let mut got = HashMap::new();
    for r in ranks {
        let rounds = rounds_until(&sw.trace(r), n, Duration::from_secs(240));
        got.insert(r, rounds);
    }
    let mut report = Vec::new();
    let mut counts = HashMap::new();
    for r in ranks {
        let t = check_tyrant_trace(&got[r], 12.0 * 1024.0, &tyrant_switches(&sw.trace(r)));
        report.push(format!(
            "{}: {} leecher rounds, {} with contention, {} with the ratio ranking broken",
            r, t.leech, t.contention, t.misranked
        ));
        counts.insert(r, t);
    }
    eprintln!("ranks ({:.1} s):\n  {}", t0.elapsed().as_secs_f64(), report.join("\n  "));
    for r in ["ratio", "rate"] {
        assert!(counts[r].contention >= 2, "{}: the ranking never decided", r);
    }
    let t = &counts["random"];
    assert!(t.contention >= 5, "random: only {} rounds with contention", t.contention);
    assert!(t.misranked >= 1, "random: the ratio ranking held in all {} rounds", t.contention);
}

/// `--max-peers 3` bounds the connections of a peer that 7 others (a seeder and 6 vanilla
/// leechers, each dialling everyone the tracker names) want to reach: its per-second
/// `peers=` reaches 3 and never exceeds it, while a vanilla peer of the same swarm holds 6
/// or more.
#[test]
fn max_peers_bounds_the_connections() {
    let t0 = Instant::now();
    let sw = Swarm::new("maxpeers", 1024 * 1024, 32, 81);
    let _seeder = sw.seeder(&["--up", "32"]);
    let _m = sw.peer("m", &["--up", "16", "--max-peers", "3"], "warn");
    let _vanilla: Vec<Proc> = (0..6)
        .map(|i| {
            let s = format!("{}", 810 + i);
            sw.peer(&format!("v{}", i), &["--up", "16", "--rng-seed", &s], "warn")
        })
        .collect();
    let most = |name: &str| {
        stats_lines(&sw.stats(name), "tick ")
            .iter()
            .filter_map(|l| l.get("peers").and_then(|v| v.parse::<u32>().ok()))
            .max()
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(60), "a vanilla peer with 6 connections", || {
        (most("v0") >= 6).then_some(())
    });
    // Everyone has had time to dial everyone: watch a little longer.
    std::thread::sleep(Duration::from_secs(8));
    let (m, v) = (most("m"), most("v0"));
    eprintln!(
        "max-peers ({:.1} s): at most {} connections with --max-peers 3, {} for a vanilla peer",
        t0.elapsed().as_secs_f64(),
        m,
        v
    );
    assert_eq!(m, 3, "--max-peers 3: at most {} connections", m);
}

/// A tracker on a raw socket that answers every announce with no peers and hands the test
/// each request line.
fn fake_tracker(limit: Duration) -> (String, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/announce", l.local_addr().unwrap());
    l.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    let end = Instant::now() + limit;
    std::thread::spawn(move || {
        while Instant::now() < end {
            let mut s = match l.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 2048];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = b"d8:intervali600e5:peers0:e";
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
            let line = String::from_utf8_lossy(&req).lines().next().unwrap_or("").to_string();
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

/// A 64 KiB torrent announcing to a `fake_tracker`: (its directory, the torrent, the
/// tracker's request lines).
fn fake_tracker_torrent(
    tag: &str,
    seed: u64,
    limit: Duration,
) -> (TempDir, PathBuf, mpsc::Receiver<String>) {
    let dir = TempDir::new(tag);
    let (url, rx) = fake_tracker(limit);
    let file = dir.path().join(FILE);
    std::fs::write(&file, payload(64 * 1024, seed)).unwrap();
    let torrent = dir.path().join("f.torrent");
    make_torrent(&file, &url, 16, &torrent);
    (dir, torrent, rx)
}

/// `--numwant N` is what the announce asks the tracker for (`numwant=N` in the request a
/// tracker of our own receives); without it, the default 50.
#[test]
fn numwant_goes_to_the_tracker() {
    let (dir, torrent, rx) = fake_tracker_torrent("numwant", 5, Duration::from_secs(60));
    for (name, args, want) in [("seven", vec!["--numwant", "7"], "7"), ("default", vec![], "50")] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let _p = start_peer_log(name, &torrent, &d, &args, "warn");
        let line = loop {
            let l = rx.recv_timeout(Duration::from_secs(20)).expect("an announce");
            if l.contains("event=started") {
                break l;
            }
        };
        let got = line
            .split(&['?', '&', ' '][..])
            .find_map(|w| w.strip_prefix("numwant="))
            .unwrap_or("(none)");
        eprintln!("numwant: {} announced numwant={}", name, got);
        assert_eq!(got, want, "{}: {}", name, line);
    }
}

/// `--min-peers` (mainline's `min_peers`): a leecher with fewer connections than that and
/// no untried address asks the tracker again as soon as the min interval allows (here the
/// announcer's 15 s `retry_min`, 3 s at `--time-scale 5`, since the tracker names none)
/// instead of waiting out the 600 s interval (120 s); with `--min-peers 0` it waits.
#[test]
fn a_peer_short_of_min_peers_announces_again() {
    let (dir, torrent, rx) = fake_tracker_torrent("minpeers", 6, Duration::from_secs(120));
    for (name, min_peers, again) in [("short", "20", true), ("off", "0", false)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let args = ["--time-scale", "5", "--min-peers", min_peers];
        let p = start_peer_log(name, &torrent, &d, &args, "warn");
        let first = rx.recv_timeout(Duration::from_secs(20)).expect("an announce");
        assert!(first.contains("event=started"), "{}: {}", name, first);
        let t0 = Instant::now();
        let next = rx.recv_timeout(Duration::from_secs(15));
        let secs = t0.elapsed().as_secs_f64();
        eprintln!("min-peers {}: another announce: {} after {:.1} s", name, next.is_ok(), secs);
        assert_eq!(next.is_ok(), again, "{} (--min-peers {}): {:?}", name, min_peers, next);
        drop(p);
        while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
}

/// A reciprocating peer that takes little, on a raw socket: it dials `addr`, shows pieces
/// `has` of the swarm's file (then Interested and Unchoke), serves one requested block
/// every 1.5 s, and while unchoked asks for one block at a time of the pieces below
/// `has.start`, at most one every 5 s (3.2 KiB/s). It reads everything as it comes, so its
/// requests and blocks never wait behind data it has not read. Runs until `stop`; returns
/// (blocks served, blocks received).
fn slow_taker(
    addr: SocketAddr,
    sw: &Swarm,
    has: std::ops::Range<u32>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(u32, u32)> {
    let (ih, n, data) = (sw.meta.info_hash, sw.pieces(), sw.data.clone());
    let pl = sw.meta.piece_length as usize;
    std::thread::spawn(move || {
        let mut bits = vec![0u8; (n as usize + 7) / 8];
        for i in has.clone() {
            bits[i as usize / 8] |= 0x80 >> (i % 8);
        }
        let first = [Message::Bitfield(bits), Message::Interested, Message::Unchoke];
        let mut fake = Fake::dial(addr, ih, b'D', &first);
        let (mut served, mut got) = (0, 0);
        let mut queue: Vec<Block> = Vec::new();
        let (mut unchoked, mut waiting) = (false, false);
        let (mut last_serve, mut last_ask) =
            (Instant::now(), Instant::now() - Duration::from_secs(5));
        let mut next = 0u32;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match fake.recv(Duration::from_millis(100)) {
                Got::Closed => break,
                Got::Timeout => {}
                Got::Msg(Message::Request(b)) if has.contains(&b.index) => queue.push(b),
                Got::Msg(Message::Cancel(b)) => queue.retain(|q| *q != b),
                Got::Msg(Message::Unchoke) => unchoked = true,
                Got::Msg(Message::Choke) => (unchoked, waiting) = (false, false),
                Got::Msg(Message::Piece { .. }) => {
                    got += 1;
                    waiting = false;
                }
                Got::Msg(_) => {}
            }
            if !queue.is_empty() && last_serve.elapsed() >= Duration::from_millis(1500) {
                let b = queue.remove(0);
                let at = b.index as usize * pl + b.begin as usize;
                let block = data[at..at + b.length as usize].to_vec();
                fake.send(Message::Piece { index: b.index, begin: b.begin, data: block });
                served += 1;
                last_serve = Instant::now();
            }
            if unchoked
                && !waiting
                && last_ask.elapsed() >= Duration::from_secs(5)
                && next < 2 * has.start
            {
                let b = Block { index: next / 2, begin: (next % 2) * 16384, length: 16384 };
                fake.send(Message::Request(b));
                next += 1;
                waiting = true;
                last_ask = Instant::now();
            }
        }
        (served, got)
    })
}

/// PropShare's shares are pacer weights, so a share its peer cannot absorb goes to the
/// others. The PropShare peer P (24 KiB/s) starts with pieces 0–39 of 64 (32 KiB each);
/// D (`slow_taker`) holds 40–63, serves P a block every 1.5 s and takes at most 3.2 KiB/s;
/// 3 vanilla leechers start empty and dial P. D sends P data every round, so it is P's one
/// reciprocating peer, with (1 − f)·C = 19.2 KiB/s; the vanilla peers have only what P gave
/// them (D is not in the tracker), so P wants nothing from them and one of them holds the
/// optimistic share (4.8 KiB/s). With hard caps P would upload at most 8 of 24 KiB/s; work
/// conserving, every period with 2 interested unchoked peers uploads at least 0.8 of C
/// (0.9 on average), and in at least 2 of them D held a share of at least 6 KiB/s while
/// taking at most 4.5. (A real client with `--down 3` is no such peer: it requests far more
/// than it reads, so P's requests to it wait behind minutes of blocks in TCP's buffers.)
#[test]
fn propshare_gives_an_unused_share_to_the_others() {
    let t0 = Instant::now();
    let sw = Swarm::new("ps-work", 2 * 1024 * 1024, 32, 91);
    sw.partial("p", |i| i < 40);
    let pt = sw.trace("p");
    let _p = sw.peer("p", &["--propshare", "--up", "24", "--trace", pt.to_str().unwrap()], "warn");
    let p_addr = listen_addr(&sw.stats("p"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = slow_taker(p_addr, &sw, 40..64, stop.clone());
    let p_addr = p_addr.to_string();
    let _vanilla: Vec<Proc> = (0..3)
        .map(|i| {
            let s = format!("{}", 910 + i);
            sw.peer(
                &format!("v{}", i),
                &["--up", "16", "--rng-seed", &s, "--peer", &p_addr],
                "warn",
            )
        })
        .collect();
    let rounds = rounds_until(&pt, 7, Duration::from_secs(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (served, got) = d.join().expect("the slow taker");
    let c = 24.0 * 1024.0;
    let ps = periods(&rounds);
    let busy: Vec<&Period> = ps.iter().filter(|p| p.busy() >= 2).collect();
    let u: Vec<f64> = busy.iter().map(|p| p.share_of(c)).collect();
    // Each reciprocating peer's share against what it took, in bytes/s.
    let held: Vec<(f64, f64)> = busy
        .iter()
        .flat_map(|p| {
            p.peers
                .iter()
                .filter(|(l, _, _)| l["action"] == "unchoke")
                .map(move |(l, bytes, _)| (f(l, "u_p"), bytes / p.dt))
        })
        .collect();
    let unused = held.iter().filter(|&&(share, took)| share >= 6144.0 && took <= 4608.0).count();
    eprintln!(
        "propshare work conservation ({:.1} s): D served {} blocks and took {}; {} periods with 2 peers served, uploaded {} of C (mean {:.2}); reciprocal share/taken (KiB/s): {}",
        t0.elapsed().as_secs_f64(),
        served,
        got,
        u.len(),
        show(&u),
        mean(&u),
        held.iter().map(|(s, t)| format!("{:.1}/{:.1}", s / 1024.0, t / 1024.0)).collect::<Vec<_>>().join(" ")
    );
    assert!(u.len() >= 3, "only {} periods with 2 interested unchoked peers", u.len());
    assert!(unused >= 2, "only {} periods with a share its peer could not absorb", unused);
    assert!(u.iter().all(|&x| x >= 0.8) && mean(&u) >= 0.9, "uploaded {} of C", show(&u));
    let (leech, _) = check_propshare_trace(&rounds, c, 0.2);
    assert!(leech >= 5, "only {} leecher rounds", leech);
}

/// `--tyrant-memory` across a process: the file's entries are loaded at start and written
/// back at exit (nominal rates, unchanged for a peer never met), with the peers this process
/// learned added and bad lines dropped; a path that cannot be read is a one-line error.
#[test]
fn a_tyrant_memory_file_outlives_the_process() {
    let sw = Swarm::new("memory", 1024 * 1024, 16, 71);
    let _seeder = sw.seeder(&["--up", "64"]);
    let mem = sw.peer_dir("t").join("memory.txt");
    std::fs::write(&mem, "# an earlier process\n127.0.0.99 5120 20480\nnot a line\n").unwrap();
    let m = mem.to_str().unwrap();
    let args = ["--tyrant", "--up", "32", "--tyrant-memory", m, "--stop-after-download"];
    let mut t = sw.peer("t", &args, "warn");
    wait_ok(&mut t, Duration::from_secs(120));
    assert!(sw.same_file("t"));
    let text = std::fs::read_to_string(&mem).unwrap();
    assert!(text.contains("\n127.0.0.99 5120 20480\n"), "kept as loaded: {}", text);
    assert!(text.lines().any(|l| l.starts_with("127.0.0.1 ")), "the seeder it met: {}", text);
    assert!(!text.contains("not a line"), "{}", text);
    assert_eq!(stats_field(&sw.stats("t"), "start", "tyrant_memory").as_deref(), Some("true"));

    let dir = sw.peer_dir("u");
    let bad = ["--tyrant", "--up", "32", "--tyrant-memory", dir.to_str().unwrap()];
    let out = run(&[&bad[..], &[sw.torrent.to_str().unwrap()]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", err);
    assert_eq!(err.lines().count(), 1, "{}", err);
    assert!(
        err.starts_with("tyrant: --tyrant-memory ") && err.contains(dir.to_str().unwrap()),
        "{}",
        err
    );
}
