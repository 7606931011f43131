//! Mutation fuzzing without dependencies: a deterministic, seeded mutation engine (splitmix64)
//! over seed corpora of valid inputs, one target per decoder that reads bytes from strangers:
//!
//! - `bencode`: `bencode::decode` (valid values, real .torrent files, tracker replies);
//! - `metainfo`: `metainfo::Metainfo::from_bytes` (the real .torrent files in
//!   `tests/fixtures/torrents` and torrents built with `metainfo::make_torrent`);
//! - `wire`: every wire message kind, alone and in streams, through `Message::decode`,
//!   `Decoder` (random chunkings), `read_message` over a `Cursor` (the two must agree), and
//!   `Message::check` with a torrent `Geometry`;
//! - `tracker`: `tracker::parse_response` (compact, dictionary, peers6, failure replies);
//! - `http`: HTTP replies (Content-Length, read-to-EOF, LF-only, error statuses)
//!   through the public `http::get` from a loopback server, since `http::parse_http_reply`
//!   is crate-private (one connection per case: 2,000 cases in CI).
//!
//! Mutations, 1 to 4 stacked per case: bit flips, byte sets (random and "interesting" bytes),
//! truncation, splicing two corpus inputs, duplicating and deleting ranges, inserting bytes,
//! and length-field edits: bencode string-length prefixes and `i...e` integers rewritten
//! (0, off by one, 2^32, 2^63, 2^64, negative, leading zero), and 4-byte wire length prefixes
//! (and other u32 fields) rewritten (0, off by one, max frame, 2^31, 2^32 - 1, ...).
//!
//! Every case runs under `catch_unwind`: a panic or a broken invariant is reported with the
//! case seed and the input in hex, and the test fails. Invariants checked per case: whatever
//! a decoder accepts is consistent (re-encodes, round-trips, is within the torrent's bounds),
//! and no single allocation made while decoding exceeds the stated bound (a global allocator
//! in this test binary records, per thread, the largest allocation):
//!
//! - bencode, metainfo, tracker replies: largest allocation <= 64 x input length + 4 KiB
//!   (a list of n values is a `Vec` of 56-byte `Value`s; each value takes >= 2 input bytes);
//! - wire: largest allocation <= max_frame + 2 x input length + 4 KiB (`read_message`
//!   allocates a frame only after checking its length against max_frame; `Decoder` buffers
//!   what it was fed).
//!
//! Short runs (20,000 cases per target) are ordinary tests. The big runs, 1,000,000 cases
//! per target, print `target=NAME cases=N panics=0 secs=S peak_rss_kib=K largest_alloc=B`:
//!
//! ```text
//! cargo test --release --test fuzz -- --ignored --nocapture
//! ```
//!
//! `TYRANT_FUZZ_CASES=N` overrides the big count, `TYRANT_FUZZ_SEED=S` the base seed, and
//! `TYRANT_FUZZ_CASE=SEED` (a reported case seed, hex) replays exactly one case per target.
//! `peak_rss_kib` is the process's VmHWM: per target only with `--test-threads=1`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tyrant::bencode::{self, Dict, Value};
use tyrant::metainfo::{self, Metainfo, MAX_PIECE_LENGTH};
use tyrant::peer::{max_frame, read_message, Message, WireError, MAX_REQUEST};
use tyrant::pieces::Block;
use tyrant::pieces::Geometry;

#[path = "common/decoder.rs"]
mod decoder;
use decoder::Decoder;
use tyrant::tracker;

// ---------------------------------------------------------------------------------------
// Allocation tracking: the largest single allocation made by this thread since the reset.

struct TrackingAlloc;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| {
        if size > c.get() {
            c.set(size)
        }
    });
}

unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(p, l, new_size)
    }
}

#[global_allocator]
static ALLOC: TrackingAlloc = TrackingAlloc;

fn reset_largest() {
    LARGEST.with(|c| c.set(0));
}

fn largest() -> usize {
    LARGEST.with(|c| c.get())
}

/// Bound for the bencode-based decoders (see the module comment).
fn tree_bound(input_len: usize) -> usize {
    64 * input_len + 4096
}

// ---------------------------------------------------------------------------------------
// Deterministic randomness and the mutation engine.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform-ish in 0..n (0 when n == 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next() % one_in == 0
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mix(base: u64, i: u64) -> u64 {
    Rng(base ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03)).next()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Length fields are bencode string prefixes and `i...e` integers.
    Bencode,
    /// Length fields are 4-byte big-endian frame prefixes.
    Wire,
}

/// Inputs never grow past this, so a case stays fast.
const MAX_INPUT: usize = 256 * 1024;

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'0', b'1', b'9', b'-', b':', b'i', b'l', b'd', b'e', 4, 5, 6, 7, 8, 9,
    13,
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], kind: Kind) -> Vec<u8> {
    let mut v = rng.pick(corpus).clone();
    // One case in 32 is a corpus input as it is: valid inputs must pass the checks too.
    if rng.chance(32) {
        return v;
    }
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut v, corpus, kind);
        if v.len() > MAX_INPUT {
            v.truncate(MAX_INPUT);
        }
    }
    v
}

fn mutate_once(rng: &mut Rng, v: &mut Vec<u8>, corpus: &[Vec<u8>], kind: Kind) {
    let len = v.len();
    match rng.below(10) {
        // bit flip
        0 if len > 0 => {
            let i = rng.below(len);
            v[i] ^= 1 << rng.below(8);
        }
        // byte set
        1 if len > 0 => {
            let i = rng.below(len);
            v[i] = if rng.chance(2) { *rng.pick(INTERESTING_BYTES) } else { rng.next() as u8 };
        }
        // truncation
        2 => {
            let n = rng.below(len + 1);
            v.truncate(n);
        }
        // splice: a prefix of this input, a suffix of another
        3 => {
            let other = rng.pick(corpus);
            let a = rng.below(len + 1);
            let b = rng.below(other.len() + 1);
            v.truncate(a);
            v.extend_from_slice(&other[b..]);
        }
        // duplicate a range
        4 if len > 0 => {
            let s = rng.below(len);
            let e = s + 1 + rng.below((len - s).min(4096));
            let copy = v[s..e].to_vec();
            let at = rng.below(len + 1);
            let times = if rng.chance(8) { 1 + rng.below(64) } else { 1 };
            for _ in 0..times {
                v.splice(at..at, copy.iter().copied());
            }
        }
        // delete a range
        5 if len > 0 => {
            let s = rng.below(len);
            let e = s + 1 + rng.below((len - s).min(256));
            v.drain(s..e);
        }
        // insert random bytes
        6 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let b = rng.bytes(n);
            v.splice(at..at, b);
        }
        // length-field edits (twice as likely as the others)
        7 | 8 => match kind {
            Kind::Bencode => edit_bencode_number(rng, v),
            Kind::Wire => edit_wire_u32(rng, v),
        },
        // swap two bytes
        _ if len > 1 => {
            let (a, b) = (rng.below(len), rng.below(len));
            v.swap(a, b);
        }
        _ => v.push(rng.next() as u8),
    }
}

/// Rewrite one bencode number: a string-length prefix (digits before ':') or an integer
/// (digits between 'i' and 'e').
fn edit_bencode_number(rng: &mut Rng, v: &mut Vec<u8>) {
    // Candidate digit runs: [start, end) followed by ':' or preceded by 'i' and followed by 'e'.
    let mut runs = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i].is_ascii_digit() || v[i] == b'-' {
            let s = i;
            while i < v.len() && (v[i].is_ascii_digit() || v[i] == b'-') {
                i += 1;
            }
            let colon = i < v.len() && v[i] == b':';
            let int = s > 0 && v[s - 1] == b'i' && i < v.len() && v[i] == b'e';
            if colon || int {
                runs.push((s, i));
            }
            if runs.len() >= 256 {
                break;
            }
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        let at = rng.below(v.len() + 1);
        v.splice(at..at, b"4294967295:".iter().copied());
        return;
    }
    let (s, e) = *rng.pick(&runs);
    let old: i128 = std::str::from_utf8(&v[s..e]).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
    let text = match rng.below(14) {
        0 => "0".to_string(),
        1 => (old + 1).to_string(),
        2 => (old - 1).to_string(),
        3 => "4294967296".to_string(),
        4 => "4294967295".to_string(),
        5 => "9223372036854775807".to_string(),
        6 => "9223372036854775808".to_string(),
        7 => "18446744073709551616".to_string(),
        8 => "-1".to_string(),
        9 => "-0".to_string(),
        10 => format!("0{}", old),
        11 => (old * 2 + 1).to_string(),
        12 => String::new(),
        _ => rng.below(1 << 20).to_string(),
    };
    v.splice(s..e, text.bytes());
}

/// Rewrite a 4-byte big-endian field: a frame length prefix (walking the frames as framed),
/// or any aligned u32 inside a frame (index, begin, length).
fn edit_wire_u32(rng: &mut Rng, v: &mut [u8]) {
    let mut prefixes = Vec::new();
    let mut p = 0usize;
    while p + 4 <= v.len() && prefixes.len() < 1024 {
        prefixes.push(p);
        let n = u32::from_be_bytes([v[p], v[p + 1], v[p + 2], v[p + 3]]) as usize;
        p = match p.checked_add(4 + n) {
            Some(q) => q,
            None => break,
        };
    }
    let at = if !prefixes.is_empty() && rng.chance(2) {
        *rng.pick(&prefixes)
    } else if v.len() >= 4 {
        rng.below(v.len() - 3)
    } else {
        return;
    };
    let old = u32::from_be_bytes([v[at], v[at + 1], v[at + 2], v[at + 3]]);
    let new = match rng.below(14) {
        0 => 0,
        1 => old.wrapping_add(1),
        2 => old.wrapping_sub(1),
        3 => 1,
        4 => 5,
        5 => 9,
        6 => 13,
        7 => 9 + MAX_REQUEST,
        8 => 10 + MAX_REQUEST,
        9 => u32::MAX,
        10 => 0x8000_0000,
        11 => 16384,
        12 => old.wrapping_mul(2),
        _ => rng.next() as u32,
    };
    v[at..at + 4].copy_from_slice(&new.to_be_bytes());
}

// ---------------------------------------------------------------------------------------
// The driver: cases, panics caught and reported with their seed and input.

struct Report {
    cases: u64,
    panics: u64,
    secs: f64,
    largest_alloc: usize,
    /// Cases whose input the target accepted (decoded without error).
    accepted: u64,
    failures: Vec<String>,
}

fn base_seed() -> u64 {
    std::env::var("TYRANT_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7972_616e_7421)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{:02x}", x)).collect()
}

/// Run `cases` mutated inputs through `target` (which asserts its invariants).
fn fuzz<F>(name: &str, cases: u64, corpus: &[Vec<u8>], kind: Kind, target: F) -> Report
where
    F: Fn(&[u8], &mut Rng) -> bool,
{
    assert!(!corpus.is_empty(), "{}: empty corpus", name);
    let only: Option<u64> = std::env::var("TYRANT_FUZZ_CASE")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok());
    let cases = if only.is_some() { 1 } else { cases };
    let base = base_seed();
    let start = Instant::now();
    let mut report = Report {
        cases: 0,
        panics: 0,
        secs: 0.0,
        largest_alloc: 0,
        accepted: 0,
        failures: Vec::new(),
    };
    for i in 0..cases {
        let seed = only.unwrap_or_else(|| mix(base, i));
        let mut rng = Rng(seed);
        let input = mutate(&mut rng, corpus, kind);
        reset_largest();
        let r = catch_unwind(AssertUnwindSafe(|| target(&input, &mut rng)));
        report.largest_alloc = report.largest_alloc.max(largest());
        report.cases += 1;
        if let Ok(true) = r {
            report.accepted += 1;
        }
        if let Err(p) = r {
            report.panics += 1;
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if report.failures.len() < 5 {
                report.failures.push(format!(
                    "target={} case={} seed={:016x} (replay: TYRANT_FUZZ_CASE={:016x}) panic={:?} input({} bytes)={}",
                    name,
                    i,
                    seed,
                    seed,
                    msg,
                    input.len(),
                    hex(&input[..input.len().min(4096)])
                ));
            }
            if report.panics >= 20 {
                break;
            }
        }
    }
    report.secs = start.elapsed().as_secs_f64();
    report
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn finish(name: &str, r: Report) {
    println!(
        "target={} cases={} panics={} secs={:.2} peak_rss_kib={} largest_alloc={} accepted={}",
        name,
        r.cases,
        r.panics,
        r.secs,
        vm_hwm_kib(),
        r.largest_alloc,
        r.accepted
    );
    for f in &r.failures {
        eprintln!("{}", f);
    }
    assert_eq!(r.panics, 0, "{}: {} failing cases", name, r.panics);
}

const SHORT: u64 = 20_000;

fn big_cases() -> u64 {
    std::env::var("TYRANT_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000)
}

// ---------------------------------------------------------------------------------------
// Seed corpora.

fn testdata_torrents() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torrents");
    let rd = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("the real .torrent corpus {} is missing: {}", dir, e));
    let mut paths: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().map_or(false, |x| x == "torrent"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .torrent files in {}", dir);
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    r.bytes(len)
}

/// Torrents built by `metainfo::make_torrent`: single-file (one piece, several pieces, an
/// exact multiple), multi-file with nested and empty files, private.
fn made_torrents() -> Vec<Vec<u8>> {
    let root = std::env::temp_dir().join(format!("tyrant-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let tmp = TempDir(root.clone());
    std::fs::create_dir_all(&root).unwrap();
    let write = |rel: &str, len: usize| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, payload(len, len as u64)).unwrap();
        p
    };
    let one = write("one.bin", 1000);
    let several = write("several.bin", 100_000);
    let exact = write("exact.bin", 65536);
    write("tree/a.txt", 123);
    write("tree/empty.dat", 0);
    write("tree/sub/b.bin", 40_000);
    write("tree/sub/deeper/c.bin", 16_384);
    let url = "http://127.0.0.1:6969/announce";
    let mut out = Vec::new();
    for (p, piece, private) in [
        (&one, None, false),
        (&several, Some(16384), false),
        (&several, Some(32768), true),
        (&exact, Some(16384), false),
        (&root.join("tree"), Some(16384), false),
        (&root.join("tree"), None, true),
    ] {
        out.push(metainfo::make_torrent(p, url, piece, private).unwrap());
    }
    // No announce at all, and a hand-built one with announce-list, name.utf-8, path.utf-8.
    out.push(metainfo::make_torrent(&one, "", None, false).unwrap());
    let info = Dict::new()
        .with("name", Value::str("x"))
        .with("name.utf-8", Value::str("naïve"))
        .with("piece length", Value::Int(16384))
        .with("pieces", Value::Bytes(vec![7; 40]))
        .with(
            "files",
            Value::List(vec![
                Value::Dict(
                    Dict::new()
                        .with("length", Value::Int(20000))
                        .with("path", Value::List(vec![Value::str("d"), Value::str("f")]))
                        .with("path.utf-8", Value::List(vec![Value::str("dé")])),
                ),
                Value::Dict(
                    Dict::new()
                        .with("length", Value::Int(1))
                        .with("path", Value::List(vec![Value::str("g")])),
                ),
            ]),
        );
    let top = Dict::new()
        .with("announce", Value::str("http://a/announce"))
        .with(
            "announce-list",
            Value::List(vec![
                Value::List(vec![Value::str("http://a/announce"), Value::str("udp://b:1")]),
                Value::List(vec![Value::str("http://c/announce")]),
            ]),
        )
        .with("info", Value::Dict(info));
    out.push(bencode::encode(&Value::Dict(top)));
    drop(tmp);
    out
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    let leaf = depth >= 4 || rng.chance(2);
    match rng.below(if leaf { 2 } else { 4 }) {
        0 => Value::Int(match rng.below(4) {
            0 => 0,
            1 => -(rng.below(1000) as i64),
            2 => i64::MAX,
            _ => rng.next() as i64,
        }),
        1 => {
            let n = rng.below(24);
            Value::Bytes(rng.bytes(n))
        }
        2 => Value::List((0..rng.below(6)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let mut d = Dict::new();
            for _ in 0..rng.below(6) {
                let klen = 1 + rng.below(8);
                let k = rng.bytes(klen);
                let v = random_value(rng, depth + 1);
                d.map.insert(k, v);
            }
            Value::Dict(d)
        }
    }
}

fn tracker_replies() -> Vec<Vec<u8>> {
    let compact = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let mut c = vec![127, 0, 0, (1 + i % 250) as u8];
                c.extend_from_slice(&(6881 + i as u16).to_be_bytes());
                c
            })
            .collect()
    };
    let base = || {
        Dict::new()
            .with("interval", Value::Int(1800))
            .with("min interval", Value::Int(900))
            .with("complete", Value::Int(3))
            .with("incomplete", Value::Int(7))
    };
    let dict_peer = |ip: &str, port: i64, id: bool| {
        let mut d = Dict::new().with("ip", Value::str(ip)).with("port", Value::Int(port));
        if id {
            d.insert("peer id", Value::Bytes(vec![b'-'; 20]));
        }
        Value::Dict(d)
    };
    let mut v6 = Vec::new();
    for i in 0..3u8 {
        v6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, i]);
        v6.extend_from_slice(&[0x1a, 0xe1]);
    }
    let replies = vec![
        base().with("peers", Value::Bytes(compact(0))),
        base().with("peers", Value::Bytes(compact(1))),
        base().with("peers", Value::Bytes(compact(5))),
        base().with("peers", Value::Bytes(compact(50))),
        base().with("peers", Value::Bytes(compact(2))).with("peers6", Value::Bytes(v6.clone())),
        base().with("peers6", Value::Bytes(v6)),
        base().with(
            "peers",
            Value::List(vec![
                dict_peer("127.0.0.1", 6881, true),
                dict_peer("::1", 6882, false),
                dict_peer("10.0.0.7", 51413, true),
            ]),
        ),
        base()
            .with("peers", Value::Bytes(compact(3)))
            .with("warning message", Value::str("be nice"))
            .with("tracker id", Value::str("abc123")),
        Dict::new().with("failure reason", Value::str("torrent not registered")),
        Dict::new().with("failure reason", Value::str("go away")).with("interval", Value::Int(60)),
        Dict::new().with("interval", Value::Int(-5)).with("peers", Value::Bytes(Vec::new())),
        Dict::new().with("peers", Value::Bytes(compact(2))),
    ];
    replies.into_iter().map(|d| bencode::encode(&Value::Dict(d))).collect()
}

fn bencode_corpus() -> Vec<Vec<u8>> {
    let mut c: Vec<Vec<u8>> = [
        &b"i0e"[..],
        b"i-42e",
        b"i9223372036854775807e",
        b"0:",
        b"4:spam",
        b"le",
        b"de",
        b"l4:spami3ee",
        b"d3:cow3:moo4:spam4:eggse",
        b"d4:spaml1:a1:bee",
        b"lllleeee",
        b"d1:ad1:bd1:cleeee",
        b"d4:infod4:zzzzi1e4:aaaai2ee8:announce3:urle",
    ]
    .iter()
    .map(|b| b.to_vec())
    .collect();
    let mut rng = Rng(99);
    for _ in 0..200 {
        c.push(bencode::encode(&random_value(&mut rng, 0)));
    }
    c.extend(testdata_torrents());
    c.extend(tracker_replies());
    c
}

fn limits_set() -> Vec<Geometry> {
    vec![
        Geometry { num_pieces: 7, piece_length: 16384, total_length: 100_000 },
        Geometry { num_pieces: 1, piece_length: 16384, total_length: 1 },
        Geometry { num_pieces: 64, piece_length: 262_144, total_length: 64 * 262_144 },
        Geometry {
            num_pieces: 2_000_000,
            piece_length: 16384,
            total_length: 2_000_000 * 16384 - 5,
        },
    ]
}

fn encoded(msgs: &[Message]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        m.encode(&mut out);
    }
    out
}

fn wire_corpus() -> Vec<Vec<u8>> {
    let singles = vec![
        Message::KeepAlive,
        Message::Choke,
        Message::Unchoke,
        Message::Interested,
        Message::NotInterested,
        Message::Have(0),
        Message::Have(6),
        Message::Have(u32::MAX),
        Message::Bitfield(vec![]),
        Message::Bitfield(vec![0xfe]),
        Message::Bitfield(vec![0xff; 8]),
        Message::Bitfield(vec![0x55; 32]),
        Message::Request(Block { index: 0, begin: 0, length: 16384 }),
        Message::Request(Block { index: 6, begin: 16384, length: 1696 }),
        Message::Request(Block { index: 1, begin: u32::MAX, length: MAX_REQUEST }),
        Message::Piece { index: 0, begin: 0, data: vec![] },
        Message::Piece { index: 6, begin: 0, data: payload(1696, 3) },
        Message::Piece { index: 2, begin: 16000, data: payload(384, 4) },
        Message::Cancel(Block { index: 3, begin: 0, length: 16384 }),
        Message::Port(6881),
        Message::Unknown(20),
        Message::Unknown(255),
    ];
    let mut c: Vec<Vec<u8>> = singles.iter().map(|m| encoded(std::slice::from_ref(m))).collect();
    // Frames with odd payloads: an extension message with a body, a big piece.
    c.push(vec![0, 0, 0, 4, 20, 0, b'd', b'e']);
    c.push(encoded(&[Message::Piece { index: 1, begin: 0, data: payload(16384, 5) }]));
    // Streams: a realistic session start and random sequences of messages.
    c.push(encoded(&[
        Message::Bitfield(vec![0xfe]),
        Message::Interested,
        Message::Unchoke,
        Message::Request(Block { index: 1, begin: 0, length: 16384 }),
        Message::Have(4),
        Message::KeepAlive,
        Message::Cancel(Block { index: 1, begin: 0, length: 16384 }),
    ]));
    let mut rng = Rng(7);
    for _ in 0..40 {
        let n = 2 + rng.below(10);
        let msgs: Vec<Message> = (0..n).map(|_| rng.pick(&singles).clone()).collect();
        c.push(encoded(&msgs));
    }
    c
}

// ---------------------------------------------------------------------------------------
// Targets.

fn bencode_target(input: &[u8], _rng: &mut Rng) -> bool {
    let r = bencode::decode(input);
    let accepted = r.is_ok();
    let used = largest();
    assert!(
        used <= tree_bound(input.len()),
        "decode allocated {} bytes for {} input bytes",
        used,
        input.len()
    );
    if let Ok(v) = r {
        // Strict decoding: the canonical re-encoding is a permutation of the input (only
        // dictionary order may differ), so exactly as long, and it decodes to the same value.
        let e = bencode::encode(&v);
        assert_eq!(e.len(), input.len(), "re-encoding changed the length");
        let again = bencode::decode(&e).expect("canonical encoding does not decode");
        assert_eq!(bencode::encode(&again), e, "round trip changed the value");
        if input.first() == Some(&b'd') {
            // Every span lies inside the input and holds exactly that value's bytes.
            let d = v.as_dict().unwrap();
            for (k, (s, end)) in &d.spans {
                assert!(s <= end && *end <= input.len(), "span out of range");
                let sub = bencode::decode(&input[*s..*end]).expect("span is not one value");
                let val = d.map.get(k).expect("span without a value");
                assert_eq!(bencode::encode(&sub), bencode::encode(val), "span holds another value");
            }
        }
    }
    accepted
}

fn metainfo_target(input: &[u8], _rng: &mut Rng) -> bool {
    let r = Metainfo::from_bytes(input);
    let used = largest();
    assert!(
        used <= tree_bound(input.len()),
        "from_bytes allocated {} bytes for {} input bytes",
        used,
        input.len()
    );
    let m = match r {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.is_empty());
            return false;
        }
    };
    assert!(m.piece_length >= 1 && m.piece_length <= MAX_PIECE_LENGTH);
    assert!(m.pieces.len() * 20 <= input.len());
    assert!(m.total_length > 0);
    let want = (m.total_length + m.piece_length - 1) / m.piece_length;
    assert_eq!(want, m.pieces.len() as u64, "piece count");
    assert_eq!(m.num_pieces() as usize, m.pieces.len());
    let sum: u64 = (0..m.num_pieces()).map(|i| u64::from(m.geometry().piece_len(i))).sum();
    assert_eq!(sum, m.total_length, "piece lengths do not add up");
    assert_eq!(m.geometry().piece_len(m.num_pieces()), 0);
    assert!(!m.files.is_empty());
    let mut offset = 0u64;
    for f in &m.files {
        assert_eq!(f.offset, offset, "file offsets are not contiguous");
        offset += f.length;
        // Every path stays inside the download directory, under the torrent's name.
        assert!(f.path.starts_with(Path::new(&m.name)), "{:?}", f.path);
        assert!(
            f.path.components().all(|c| matches!(c, Component::Normal(_))),
            "path {:?} leaves the download directory",
            f.path
        );
        assert!(!f.path.to_string_lossy().contains('\0'));
    }
    assert_eq!(offset, m.total_length);
    assert_eq!(m.multi_file, m.files.len() > 1 || m.files[0].path != Path::new(&m.name));
    // The info-hash is SHA-1 of the info bytes as sent.
    let top = bencode::decode(input).unwrap();
    let (s, e) = top.as_dict().unwrap().span("info").unwrap();
    assert_eq!(m.info_hash, tyrant::storage::sha1(&input[s..e]), "info-hash");
    for tier in m.trackers() {
        assert!(!tier.is_empty() && tier.iter().all(|u| !u.is_empty()));
    }
    true
}

fn wire_target(input: &[u8], rng: &mut Rng) -> bool {
    let lim = *rng.pick(&limits_set());
    let max_frame = max_frame(&lim);

    // 1. Message::decode on the raw bytes after a (possibly bogus) prefix.
    if input.len() >= 4 {
        if let Ok(m) = Message::decode(&input[4..]) {
            check_message(&m, &lim, input.len() - 4);
        }
    }

    // 2. read_message over a Cursor until the first error.
    let mut cur = Cursor::new(input);
    let mut via_read = Vec::new();
    let read_end = loop {
        let before = cur.position();
        match read_message(&mut cur, max_frame) {
            Ok(m) => {
                let frame = (cur.position() - before) as usize - 4;
                assert!(frame as u64 <= u64::from(max_frame), "frame above max_frame");
                check_message(&m, &lim, frame);
                via_read.push(m);
            }
            Err(e) => {
                let wire = e.get_ref().and_then(|x| x.downcast_ref::<WireError>()).cloned();
                if let Some(WireError::TooLong { len, max }) = &wire {
                    // Refused before reading (or allocating) the frame.
                    assert!(len > max);
                    assert_eq!(cur.position(), before + 4, "read past a refused prefix");
                }
                if wire.is_none() {
                    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{}", e);
                }
                break wire;
            }
        }
        assert!(via_read.len() <= input.len() / 4, "more messages than frames");
    };

    // 3. Decoder, fed in random chunks.
    let mut dec = Decoder::new(max_frame);
    let mut via_dec = Vec::new();
    let mut dec_end = None;
    let mut fed = 0;
    'feed: while fed < input.len() {
        let n = match rng.below(4) {
            0 => 1,
            1 => 1 + rng.below(8),
            2 => 1 + rng.below(4096),
            _ => input.len() - fed,
        }
        .min(input.len() - fed);
        dec.feed(&input[fed..fed + n]);
        fed += n;
        loop {
            match dec.next() {
                Ok(Some(m)) => via_dec.push(m),
                Ok(None) => break,
                Err(e) => {
                    // TooLong consumes nothing, so it must repeat.
                    if let WireError::TooLong { .. } = e {
                        assert_eq!(dec.next(), Err(e.clone()), "TooLong did not repeat");
                    }
                    dec_end = Some(e);
                    break 'feed;
                }
            }
        }
    }

    // 4. The two readers agree: same messages, same protocol error (a truncated last
    // frame is EOF for read_message and "need more bytes" for Decoder).
    assert_eq!(via_read, via_dec, "read_message and Decoder disagree");
    assert_eq!(read_end, dec_end, "read_message and Decoder end differently");

    let used = largest();
    let bound = max_frame as usize + 2 * input.len() + 4096;
    assert!(
        used <= bound,
        "wire decoding allocated {} bytes (input {}, max_frame {})",
        used,
        input.len(),
        max_frame
    );
    read_end.is_none() && !via_read.is_empty()
}

/// Invariants of one decoded message from a frame of `frame` payload bytes.
fn check_message(m: &Message, lim: &Geometry, frame: usize) {
    // Decoding never invents bytes.
    let mut enc = Vec::new();
    m.encode(&mut enc);
    match m {
        Message::Unknown(id) => assert!(*id > 9),
        _ => {
            assert_eq!(enc.len(), frame + 4, "re-encoding changed the frame length");
            assert_eq!(Message::decode(&enc[4..]).as_ref(), Ok(m), "round trip");
        }
    }
    if m.check(lim).is_err() {
        return;
    }
    match m {
        Message::Have(i) => assert!(*i < lim.num_pieces),
        Message::Bitfield(b) => {
            assert_eq!(b.len() as u64, (u64::from(lim.num_pieces) + 7) / 8);
            let spare = (8 - lim.num_pieces % 8) % 8;
            if spare > 0 {
                assert_eq!(b.last().unwrap() & ((1u8 << spare) - 1), 0);
            }
        }
        Message::Request(Block { index, begin, length })
        | Message::Cancel(Block { index, begin, length }) => {
            assert!(*length >= 1 && *length <= MAX_REQUEST);
            assert!(u64::from(*begin) + u64::from(*length) <= u64::from(lim.piece_len(*index)));
        }
        Message::Piece { index, begin, data } => {
            assert!(!data.is_empty() && data.len() <= MAX_REQUEST as usize);
            assert!(u64::from(*begin) + data.len() as u64 <= u64::from(lim.piece_len(*index)));
        }
        _ => {}
    }
}

fn tracker_target(input: &[u8], _rng: &mut Rng) -> bool {
    let r = tracker::parse_response(input);
    let used = largest();
    assert!(
        used <= tree_bound(input.len()),
        "parse_response allocated {} bytes for {} input bytes",
        used,
        input.len()
    );
    match r {
        Ok(resp) => {
            assert!(resp.peers.len() <= input.len() / 6, "more peers than bytes");
            assert!(resp.peers.iter().all(|p| p.port() != 0), "port 0 peer");
            assert!(resp.interval <= Duration::from_secs(i64::MAX as u64));
            return true;
        }
        Err(tracker::TrackerError::Failure(_)) => {
            assert!(
                input.windows(14).any(|w| w == b"failure reason"),
                "Failure without a failure reason"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    false
}

// ---------------------------------------------------------------------------------------
// HTTP replies: `http::parse_http_reply` is crate-private, so replies go through the public
// `http::get` from a loopback server that answers each request with the case's bytes.
// Network-bound (a connection and a watchdog thread per case), so fewer cases.

struct ReplyServer {
    url: String,
    reply: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl ReplyServer {
    fn start() -> ReplyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/announce?x=1", listener.local_addr().unwrap());
        let reply = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (Arc::clone(&reply), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let mut s = match conn {
                    Ok(s) => s,
                    Err(_) => continue,
                };
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let bytes = r.lock().unwrap().clone();
                let _ = s.write_all(&bytes);
            }
        });
        ReplyServer { url, reply, stop }
    }
}

impl Drop for ReplyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ =
            TcpStream::connect(self.url.trim_start_matches("http://").split('/').next().unwrap());
    }
}

/// The status `http::get` would read from the first line, to keep redirects (which would
/// send the client to whatever host a mutated Location names) out of the run.
fn status_of(reply: &[u8]) -> Option<u16> {
    let line = reply.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line);
    line.trim_end().split(' ').nth(1)?.parse().ok()
}

fn http_corpus() -> Vec<Vec<u8>> {
    let body = &tracker_replies()[3];
    let mut c = Vec::new();
    let mut with_len = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    with_len.extend_from_slice(body);
    c.push(with_len);
    let mut to_eof = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n".to_vec();
    to_eof.extend_from_slice(body);
    c.push(to_eof);
    let small = b"d8:intervali60e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";
    let mut lf = format!("HTTP/1.0 200 OK\nContent-Length: {}\n\n", small.len()).into_bytes();
    lf.extend_from_slice(small);
    c.push(lf);
    let fail = b"d14:failure reason3:no!e";
    let mut nf =
        format!("HTTP/1.0 404 Not Found\r\nContent-Length: {}\r\n\r\n", fail.len()).into_bytes();
    nf.extend_from_slice(fail);
    c.push(nf);
    c.push(b"HTTP/1.0 500 Internal Server Error\r\n\r\n<html>oops</html>".to_vec());
    c
}

fn http_target(server: &ReplyServer, input: &[u8]) -> bool {
    if matches!(status_of(input), Some(301 | 302 | 303 | 307 | 308)) {
        return false;
    }
    *server.reply.lock().unwrap() = input.to_vec();
    let r = tyrant::http::get(&server.url, Duration::from_secs(5));
    let used = largest();
    assert!(
        used <= 64 * input.len() + 64 * 1024,
        "http::get allocated {} bytes for a {}-byte reply",
        used,
        input.len()
    );
    match r {
        Ok(reply) => {
            assert!((100..=999).contains(&reply.status));
            assert!(reply.body.len() <= tyrant::http::MAX_BODY);
            assert!(reply.body.len() <= input.len(), "body longer than the reply");
            let _ = tracker::parse_response(&reply.body);
            true
        }
        Err(e) => {
            assert!(
                !e.to_string().contains("no complete reply"),
                "a finished reply timed out: {}",
                e
            );
            false
        }
    }
}

fn run_http(cases: u64) {
    let corpus = http_corpus();
    let server = ReplyServer::start();
    finish(
        "http",
        fuzz("http", cases, &corpus, Kind::Bencode, |input, _| http_target(&server, input)),
    );
}

// ---------------------------------------------------------------------------------------
// Tests: short runs in CI, big runs --ignored.

fn run_bencode(cases: u64) {
    let corpus = bencode_corpus();
    finish("bencode", fuzz("bencode", cases, &corpus, Kind::Bencode, bencode_target));
}

fn metainfo_corpus() -> Vec<Vec<u8>> {
    let mut c = testdata_torrents();
    c.extend(made_torrents());
    for t in &c {
        Metainfo::from_bytes(t).unwrap_or_else(|e| panic!("corpus torrent rejected: {}", e));
    }
    c
}

fn run_metainfo(cases: u64) {
    let corpus = metainfo_corpus();
    finish("metainfo", fuzz("metainfo", cases, &corpus, Kind::Bencode, metainfo_target));
}

fn run_wire(cases: u64) {
    let corpus = wire_corpus();
    finish("wire", fuzz("wire", cases, &corpus, Kind::Wire, wire_target));
}

fn run_tracker(cases: u64) {
    let corpus = tracker_replies();
    for r in &corpus[..8] {
        tracker::parse_response(r).unwrap();
    }
    finish("tracker", fuzz("tracker", cases, &corpus, Kind::Bencode, tracker_target));
}

#[test]
fn fuzz_bencode_short() {
    run_bencode(SHORT);
}

#[test]
fn fuzz_metainfo_short() {
    run_metainfo(SHORT);
}

#[test]
fn fuzz_wire_short() {
    run_wire(SHORT);
}

#[test]
fn fuzz_tracker_reply_short() {
    run_tracker(SHORT);
}

#[test]
fn fuzz_http_reply_short() {
    run_http(2_000);
}

/// Network-bound (about 6,000 cases/s on loopback).
#[test]
#[ignore]
fn fuzz_http_reply_1m() {
    run_http(big_cases());
}

#[test]
#[ignore]
fn fuzz_bencode_1m() {
    run_bencode(big_cases());
}

#[test]
#[ignore]
fn fuzz_metainfo_1m() {
    run_metainfo(big_cases());
}

#[test]
#[ignore]
fn fuzz_wire_1m() {
    run_wire(big_cases());
}

#[test]
#[ignore]
fn fuzz_tracker_reply_1m() {
    run_tracker(big_cases());
}

/// The driver itself: a panicking target is caught and reported with its seed and input,
/// and the same seed gives the same inputs.
#[test]
fn driver_reports_panics_and_is_deterministic() {
    let corpus = vec![b"4:spam".to_vec(), b"i1e".to_vec()];
    let r = fuzz("selftest", 200, &corpus, Kind::Bencode, |input, _| {
        assert!(!input.starts_with(b"4:spam"), "found it");
        true
    });
    assert!(r.panics > 0);
    assert!(r.failures[0].contains("seed=") && r.failures[0].contains("input("));
    let collect = || {
        let mut seen = Vec::new();
        fuzz("selftest", 100, &corpus, Kind::Bencode, |input, _| input.is_empty());
        for i in 0..100 {
            let mut rng = Rng(mix(base_seed(), i));
            seen.push(mutate(&mut rng, &corpus, Kind::Bencode));
        }
        seen
    };
    assert_eq!(collect(), collect());
}

// ---------------------------------------------------------------------------------------
// Allocation bounds on hostile length fields, checked directly.

#[test]
fn read_message_refuses_a_4gib_prefix_without_allocating() {
    let lim = limits_set()[0];
    for prefix in [u32::MAX, 0x8000_0000, max_frame(&lim) + 1] {
        let mut input = prefix.to_be_bytes().to_vec();
        input.extend_from_slice(&[7, 0, 0, 0]);
        let mut cur = Cursor::new(&input[..]);
        let t = Instant::now();
        reset_largest();
        let e = read_message(&mut cur, max_frame(&lim)).unwrap_err();
        let used = largest();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        let inner = e.get_ref().and_then(|x| x.downcast_ref::<WireError>());
        assert_eq!(inner, Some(&WireError::TooLong { len: prefix, max: max_frame(&lim) }));
        assert_eq!(cur.position(), 4, "read beyond the length prefix");
        assert!(used < 1024, "allocated {} bytes before refusing", used);
        assert!(t.elapsed() < Duration::from_millis(100));

        let mut d = Decoder::new(max_frame(&lim));
        reset_largest();
        d.feed(&input);
        assert!(matches!(d.next(), Err(WireError::TooLong { .. })));
        assert!(matches!(d.next(), Err(WireError::TooLong { .. })));
        assert!(largest() < 1024);
    }
}

#[test]
fn hostile_lengths_in_bencode_do_not_allocate() {
    let cases: &[&[u8]] = &[
        b"4294967295:abc",
        b"9223372036854775807:x",
        b"18446744073709551615:x",
        b"d5:peers4000000000:\x7f\x00\x00\x01\x1a\xe1e",
        b"d8:intervali60e5:peers999999999:e",
        b"l1000000000:e",
    ];
    for c in cases {
        reset_largest();
        assert!(bencode::decode(c).is_err());
        assert!(tracker::parse_response(c).is_err());
        assert!(Metainfo::from_bytes(c).is_err());
        assert!(largest() < 4096, "{:?}: allocated {}", String::from_utf8_lossy(c), largest());
    }
}

/// A peer list cannot claim more entries than its bytes hold, whatever the format.
#[test]
fn peer_counts_are_bounded_by_reply_size() {
    let mut big = BTreeMap::new();
    big.insert(b"interval".to_vec(), Value::Int(60));
    let mut peers = Vec::new();
    for i in 0..50_000u32 {
        peers.extend_from_slice(&[127, 0, (i >> 8) as u8, i as u8, 0x4e, 0x20]);
    }
    big.insert(b"peers".to_vec(), Value::Bytes(peers));
    let body = bencode::encode(&Value::Dict(Dict { map: big, spans: BTreeMap::new() }));
    reset_largest();
    let r = tracker::parse_response(&body).unwrap();
    assert_eq!(r.peers.len(), 50_000);
    assert!(largest() <= tree_bound(body.len()));
}
