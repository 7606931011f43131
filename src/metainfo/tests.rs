//! Unit tests for `crate::metainfo`; `pub(crate)` so storage.rs tests can reuse the fixtures.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torrents");

/// A directory under the system temp dir, removed on drop (also when a test fails).
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p =
            std::env::temp_dir().join(format!("tyrant-test-{}-{}-{}", tag, std::process::id(), n));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// payload.py in Rust: SHA-1(basename ":" counter) digests back to back, cut to `len`.
pub(crate) fn payload(basename: &str, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize + 20);
    let mut i = 0u64;
    while (out.len() as u64) < len {
        out.extend_from_slice(&crate::storage::sha1(format!("{}:{}", basename, i).as_bytes()));
        i += 1;
    }
    out.truncate(len as usize);
    out
}

/// Write the test payload for `relative` (seeded by its base name) under `dir`.
pub(crate) fn write_payload(dir: &Path, relative: &str, len: u64) {
    let full = dir.join(relative);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    let base = full.file_name().unwrap().to_str().unwrap();
    fs::write(&full, payload(base, len)).unwrap();
}

/// Every payload the test torrents were made from.
pub(crate) fn write_all_payloads(dir: &Path) {
    write_payload(dir, "alpha.bin", 1_000_000);
    write_payload(dir, "exact.bin", 262_144);
    write_payload(dir, "tree/a.txt", 123);
    write_payload(dir, "tree/sub/b.bin", 300_000);
    write_payload(dir, "tree/sub/deeper/c.bin", 16_384);
    write_payload(dir, "tree/empty.dat", 0);
}

pub(crate) struct Row {
    pub file: String,
    pub hash: String,
    pub name: String,
    pub piece_length: u64,
    pub pieces: u32,
    pub total: u64,
    pub files: Vec<(String, u64)>,
}

/// EXPECTED.tsv rows; panics (fails the test) if the test data is missing.
pub(crate) fn expected_rows() -> Vec<Row> {
    let path = Path::new(TESTDATA).join("EXPECTED.tsv");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("test data missing: {}: {}", path.display(), e));
    let rows: Vec<Row> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            assert!(c.len() >= 7, "bad EXPECTED.tsv line {:?}", l);
            let files = c[6]
                .split(';')
                .map(|f| {
                    let (p, n) = f.rsplit_once('=').unwrap();
                    (p.to_string(), n.parse().unwrap())
                })
                .collect();
            Row {
                file: c[0].into(),
                hash: c[1].into(),
                name: c[2].into(),
                piece_length: c[3].parse().unwrap(),
                pieces: c[4].parse().unwrap(),
                total: c[5].parse().unwrap(),
                files,
            }
        })
        .collect();
    assert!(rows.len() >= 8, "EXPECTED.tsv has only {} rows", rows.len());
    rows
}

pub(crate) fn load_test_torrent(file: &str) -> Metainfo {
    Metainfo::load(&Path::new(TESTDATA).join(file)).unwrap()
}

#[test]
fn real_torrents_match_libtorrent() {
    for row in expected_rows() {
        let m = load_test_torrent(&row.file);
        let f = &row.file;
        assert_eq!(crate::sha1::hex(&m.info_hash), row.hash, "{}", f);
        assert_eq!(m.name, row.name, "{}", f);
        assert_eq!(m.piece_length, row.piece_length, "{}", f);
        assert_eq!(m.num_pieces(), row.pieces, "{}", f);
        assert_eq!(m.total_length, row.total, "{}", f);
        let got: Vec<(String, u64)> =
            m.files.iter().map(|e| (e.path.to_str().unwrap().to_string(), e.length)).collect();
        assert_eq!(got, row.files, "{}", f);
        assert_eq!(m.multi_file, row.files.len() > 1, "{}", f);
        // offsets are the running sum, and piece lengths add up to the total
        let mut off = 0;
        for e in &m.files {
            assert_eq!(e.offset, off, "{}", f);
            off += e.length;
        }
        let sum: u64 = (0..m.num_pieces()).map(|i| u64::from(m.geometry().piece_len(i))).sum();
        assert_eq!(sum, m.total_length, "{}", f);
        assert_eq!(u64::from(m.geometry().piece_len(m.num_pieces())), 0);
        assert_eq!(m.trackers()[0][0], "http://127.0.0.1:6969/announce", "{}", f);
    }
}

#[test]
fn tool_quirks_are_read() {
    let m = load_test_torrent("mktorrent-multi-private.torrent");
    assert!(m.private);
    // mktorrent wrote both trackers into one tier
    assert_eq!(
        m.trackers(),
        vec![vec![
            "http://127.0.0.1:6969/announce".to_string(),
            "http://127.0.0.1:6970/announce".to_string()
        ]]
    );
    let m = load_test_torrent("createtorrent-one-piece.torrent");
    assert!(!m.private, "private=0 is public");
    assert_eq!(u64::from(m.geometry().piece_len(0)), 262_144);
    let m = load_test_torrent("torf-single.torrent");
    assert!(!m.private);
    assert!(m.announce_list.is_empty());
    assert_eq!(m.trackers(), vec![vec!["http://127.0.0.1:6969/announce".to_string()]]);
    assert_eq!(u64::from(m.geometry().piece_len(15)), 1_000_000 - 15 * 65_536);
}

#[test]
fn info_hash_is_over_the_raw_bytes() {
    // keys deliberately unsorted: a re-encoding would sort them and hash differently
    let mut buf = b"d4:infod6:pieces20:".to_vec();
    buf.extend_from_slice(&[7u8; 20]);
    buf.extend_from_slice(b"4:name1:x12:piece lengthi16384e6:lengthi5e5:extrai1ee8:announce3:urle");
    let m = Metainfo::from_bytes(&buf).unwrap();
    let top = bencode::decode(&buf).unwrap();
    let (s, e) = top.as_dict().unwrap().span("info").unwrap();
    assert_eq!(m.info_hash, crate::storage::sha1(&buf[s..e]));
    let reencoded = bencode::encode(top.as_dict().unwrap().get("info").unwrap());
    assert_ne!(m.info_hash, crate::storage::sha1(&reencoded));
    assert_eq!(m.announce.as_deref(), Some("url"));
}

#[test]
fn make_single_file_matches_mktorrent() {
    let dir = TempDir::new("make1");
    write_payload(&dir.0, "alpha.bin", 1_000_000);
    let bytes = make_torrent(
        &dir.0.join("alpha.bin"),
        "http://127.0.0.1:6969/announce",
        Some(32 * 1024),
        false,
    )
    .unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert_eq!(crate::sha1::hex(&m.info_hash), "123b9c69521e4710c97415582b531546cf8dcd51");
    assert!(!m.multi_file && !m.private);
    let top = bencode::decode(&bytes).unwrap();
    let keys: Vec<&[u8]> = top.as_dict().unwrap().map.keys().map(|k| &k[..]).collect();
    let want: Vec<&[u8]> = vec![b"announce", b"created by", b"creation date", b"info"];
    assert_eq!(keys, want);
    assert_eq!(top.as_dict().unwrap().str_lossy("created by").as_deref(), Some("tyrant 0.1"));

    // private adds exactly the key, so the hash changes
    let p = make_torrent(&dir.0.join("alpha.bin"), "", Some(32 * 1024), true).unwrap();
    let p = Metainfo::from_bytes(&p).unwrap();
    assert!(p.private);
    assert_ne!(p.info_hash, m.info_hash);
    assert!(p.trackers().is_empty());
}

#[test]
fn make_tree_matches_torf_pieces() {
    let dir = TempDir::new("make2");
    write_all_payloads(&dir.0);
    let tree = dir.0.join("tree");
    let torf = load_test_torrent("torf-multi.torrent");
    let bytes = make_torrent(&tree, "http://x/announce", Some(16 * 1024), false).unwrap();
    let m = Metainfo::from_bytes(&bytes).unwrap();
    assert!(m.multi_file);
    assert_eq!(m.pieces, torf.pieces);
    assert_eq!(m.files, torf.files);
    // torf's `source` key is the only reason the hashes differ
    assert_ne!(m.info_hash, torf.info_hash);

    // automatic size picks 16 KiB for 316,507 bytes, so nothing changes
    let auto = make_torrent(&tree, "http://x/announce", None, false).unwrap();
    assert_eq!(Metainfo::from_bytes(&auto).unwrap().pieces, torf.pieces);

    // a symlink is skipped; a hidden file is included
    std::os::unix::fs::symlink(tree.join("a.txt"), tree.join("link.txt")).unwrap();
    let with_link = make_torrent(&tree, "http://x/announce", Some(16 * 1024), false).unwrap();
    assert_eq!(Metainfo::from_bytes(&with_link).unwrap().pieces, torf.pieces);
    fs::write(tree.join(".hidden"), b"hi").unwrap();
    let with_hidden = make_torrent(&tree, "", Some(16 * 1024), false).unwrap();
    let h = Metainfo::from_bytes(&with_hidden).unwrap();
    assert_eq!(h.files[0].path, Path::new("tree/.hidden"));
    assert_eq!(h.total_length, 316_509);
}

#[test]
fn make_rejects_bad_input() {
    let dir = TempDir::new("make3");
    fs::create_dir_all(dir.0.join("empty/sub")).unwrap();
    fs::write(dir.0.join("empty/sub/zero"), b"").unwrap();
    let e = make_torrent(&dir.0.join("empty"), "", None, false).unwrap_err();
    assert!(e.contains("0 bytes"), "{}", e);
    let e = make_torrent(&dir.0.join("nope"), "", None, false).unwrap_err();
    assert!(e.starts_with("cannot read"), "{}", e);
    fs::write(dir.0.join("f"), b"data").unwrap();
    for bad in [0, 1000, 8192, 256 * 1024 * 1024] {
        let e = make_torrent(&dir.0.join("f"), "", Some(bad), false).unwrap_err();
        assert!(e.contains("power of two"), "{}", e);
    }
}

#[test]
fn auto_piece_size_aims_at_750_to_1500_pieces() {
    assert_eq!(auto_piece_size(1), 16 * 1024);
    assert_eq!(auto_piece_size(1500 * 16 * 1024), 16 * 1024);
    assert_eq!(auto_piece_size(1500 * 16 * 1024 + 1), 32 * 1024);
    assert_eq!(auto_piece_size(1 << 30), 1 << 20);
    assert_eq!(auto_piece_size(1 << 40), 4 << 20);
    for total in [50_000_000u64, 700_000_000, 4_000_000_000] {
        let s = auto_piece_size(total);
        let n = (total + s - 1) / s;
        assert!((750..=1500).contains(&n), "{} -> {} pieces", total, n);
    }
}

fn s(x: &str) -> Value {
    Value::str(x)
}

fn single_info(length: i64) -> Dict {
    Dict::new()
        .with("length", Value::Int(length))
        .with("name", s("f"))
        .with("piece length", Value::Int(32768))
        .with("pieces", Value::Bytes(vec![1; 40]))
}

fn file(length: i64, path: &[&str]) -> Value {
    Value::Dict(
        Dict::new()
            .with("length", Value::Int(length))
            .with("path", Value::List(path.iter().map(|p| s(p)).collect())),
    )
}

fn multi_info(files: Vec<Value>, pieces: usize) -> Dict {
    Dict::new()
        .with("files", Value::List(files))
        .with("name", s("d"))
        .with("piece length", Value::Int(16384))
        .with("pieces", Value::Bytes(vec![1; 20 * pieces]))
}

fn torrent(info: Dict) -> Vec<u8> {
    bencode::encode(&Value::Dict(
        Dict::new().with("announce", s("http://t/a")).with("info", Value::Dict(info)),
    ))
}

#[test]
fn malformed_torrents_are_rejected() {
    let without = |key: &str| {
        let mut d = single_info(40000);
        d.map.remove(key.as_bytes());
        torrent(d)
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "no info",
            bencode::encode(&Value::Dict(Dict::new().with("announce", s("x")))),
            "info dictionary is missing",
        ),
        (
            "info not dict",
            bencode::encode(&Value::Dict(Dict::new().with("info", Value::Int(3)))),
            "info is not a dictionary",
        ),
        ("top not dict", b"i3e".to_vec(), "not a bencoded dictionary"),
        ("no piece length", without("piece length"), "piece length is missing"),
        (
            "zero piece length",
            torrent(single_info(40000).with("piece length", Value::Int(0))),
            "not positive",
        ),
        (
            "negative piece length",
            torrent(single_info(40000).with("piece length", Value::Int(-16384))),
            "not positive",
        ),
        (
            "huge piece length",
            torrent(single_info(40000).with("piece length", Value::Int(256 << 20))),
            "larger than 128 MiB",
        ),
        (
            "string piece length",
            torrent(single_info(40000).with("piece length", s("16384"))),
            "not an integer",
        ),
        ("no pieces", without("pieces"), "pieces is missing"),
        (
            "ragged pieces",
            torrent(single_info(40000).with("pieces", Value::Bytes(vec![0; 39]))),
            "not a multiple of 20",
        ),
        ("too few pieces", torrent(single_info(70000)), "want 3"),
        ("too many pieces", torrent(single_info(100)), "want 1"),
        ("no name", without("name"), "name is missing"),
        ("name ..", torrent(single_info(40000).with("name", s(".."))), "relative directory"),
        ("name .", torrent(single_info(40000).with("name", s("."))), "relative directory"),
        ("name empty", torrent(single_info(40000).with("name", s(""))), "is empty"),
        ("name slash", torrent(single_info(40000).with("name", s("a/b"))), "separator"),
        (
            "name.utf-8 ..",
            torrent(single_info(40000).with("name.utf-8", s(".."))),
            "relative directory",
        ),
        ("negative length", torrent(single_info(-1)), "negative length"),
        ("empty torrent", torrent(single_info(0).with("pieces", Value::Bytes(vec![]))), "empty"),
        ("neither", without("length"), "neither length nor files"),
        (
            "both",
            torrent(single_info(40000).with("files", Value::List(vec![file(40000, &["x"])]))),
            "both length and files",
        ),
        (
            "files not list",
            torrent(multi_info(vec![], 1).with("files", Value::Int(1))),
            "files is not a list",
        ),
        ("no files", torrent(multi_info(vec![], 0)), "empty"),
        (
            "all files empty",
            torrent(multi_info(vec![file(0, &["a"]), file(0, &["b"])], 0)),
            "empty",
        ),
        ("negative file length", torrent(multi_info(vec![file(-5, &["a"])], 1)), "negative length"),
        ("empty path", torrent(multi_info(vec![file(5, &[])], 1)), "empty path"),
        ("empty component", torrent(multi_info(vec![file(5, &["a", ""])], 1)), "is empty"),
        ("dot component", torrent(multi_info(vec![file(5, &[".", "a"])], 1)), "relative directory"),
        (
            "dotdot component",
            torrent(multi_info(vec![file(5, &["..", "..", "etc", "passwd"])], 1)),
            "relative directory",
        ),
        ("slash component", torrent(multi_info(vec![file(5, &["../x"])], 1)), "separator"),
        ("absolute component", torrent(multi_info(vec![file(5, &["/etc"])], 1)), "separator"),
        ("backslash component", torrent(multi_info(vec![file(5, &["..\\x"])], 1)), "separator"),
        ("nul component", torrent(multi_info(vec![file(5, &["a\0b"])], 1)), "NUL"),
        (
            "dotdot in path.utf-8",
            torrent(multi_info(
                vec![Value::Dict(
                    file(5, &["ok"])
                        .as_dict()
                        .unwrap()
                        .clone()
                        .with("path.utf-8", Value::List(vec![s("..")])),
                )],
                1,
            )),
            "relative directory",
        ),
        (
            "file without length",
            torrent(multi_info(
                vec![Value::Dict(Dict::new().with("path", Value::List(vec![s("a")])))],
                1,
            )),
            "has no length",
        ),
        (
            "file without path",
            torrent(multi_info(vec![Value::Dict(Dict::new().with("length", Value::Int(5)))], 1)),
            "no path",
        ),
        (
            "duplicate path",
            torrent(multi_info(vec![file(5, &["a"]), file(5, &["a"])], 1)),
            "duplicate",
        ),
        (
            "file is a dir",
            torrent(multi_info(vec![file(5, &["a"]), file(5, &["a", "b"])], 1)),
            "both a file and a directory",
        ),
        ("garbage", b"\x00\x01garbage".to_vec(), "bad bencode"),
        ("empty file", Vec::new(), "bad bencode"),
    ];
    for (what, bytes, want) in cases {
        match Metainfo::from_bytes(&bytes) {
            Ok(_) => panic!("{}: accepted", what),
            Err(e) => {
                assert!(e.contains(want), "{}: error {:?} lacks {:?}", what, e, want);
                assert!(!e.contains('\n'), "{}: multi-line error", what);
            }
        }
    }
}

#[test]
fn truncated_real_torrents_are_rejected() {
    for row in expected_rows() {
        let buf = fs::read(Path::new(TESTDATA).join(&row.file)).unwrap();
        assert!(Metainfo::from_bytes(&buf).is_ok());
        for cut in (0..buf.len()).step_by(7) {
            assert!(Metainfo::from_bytes(&buf[..cut]).is_err(), "{} cut at {}", row.file, cut);
        }
        let mut extra = buf.clone();
        extra.push(b'x');
        assert!(Metainfo::from_bytes(&extra).is_err());
    }
}

#[test]
fn load_errors_name_the_file() {
    let dir = TempDir::new("load");
    let missing = dir.0.join("missing.torrent");
    let e = Metainfo::load(&missing).unwrap_err();
    assert!(e.starts_with(&format!("cannot read {}: ", missing.display())), "{}", e);
    let bad = dir.0.join("bad.torrent");
    fs::write(&bad, b"d4:infoi1ee").unwrap();
    let e = Metainfo::load(&bad).unwrap_err();
    assert_eq!(e, format!("{} is not a valid torrent: info is not a dictionary", bad.display()));
}

#[test]
fn unknown_keys_and_alternate_names_are_accepted() {
    let info = multi_info(
        vec![
            Value::Dict(
                file(10, &["raw"])
                    .as_dict()
                    .unwrap()
                    .clone()
                    .with("path.utf-8", Value::List(vec![s("sub"), s("nice")]))
                    .with("md5sum", s("whatever"))
                    .with("attr", s("x")),
            ),
            file(0, &["zero"]),
            file(20000, &["big"]),
        ],
        2,
    )
    .with("name", Value::Bytes(b"caf\xe9".to_vec()))
    .with("source", s("tracker"))
    .with("private", Value::Int(1))
    .with("meta version", Value::Int(1));
    let top = Dict::new()
        .with("info", Value::Dict(info))
        .with("url-list", Value::List(vec![s("http://web/")]))
        .with("comment", s("hi"))
        .with(
            "announce-list",
            Value::List(vec![
                Value::List(vec![s("http://a/1"), s("http://a/2")]),
                Value::List(vec![]),
                Value::Int(7),
                Value::List(vec![s("udp://b/1"), Value::Int(3)]),
            ]),
        );
    let m = Metainfo::from_bytes(&bencode::encode(&Value::Dict(top))).unwrap();
    assert_eq!(m.name, "caf\u{fffd}");
    assert!(m.private);
    assert_eq!(m.announce, None);
    assert_eq!(
        m.trackers(),
        vec![
            vec!["http://a/1".to_string(), "http://a/2".to_string()],
            vec!["udp://b/1".to_string()]
        ]
    );
    let paths: Vec<(PathBuf, u64, u64)> =
        m.files.iter().map(|f| (f.path.clone(), f.length, f.offset)).collect();
    assert_eq!(
        paths,
        vec![
            (PathBuf::from("caf\u{fffd}/sub/nice"), 10, 0),
            (PathBuf::from("caf\u{fffd}/zero"), 0, 10),
            (PathBuf::from("caf\u{fffd}/big"), 20000, 10),
        ]
    );
    assert_eq!(u64::from(m.geometry().piece_len(1)), 20010 - 16384);

    // name.utf-8 wins over name
    let info = single_info(40000).with("name", s("local")).with("name.utf-8", s("unicode"));
    let m = Metainfo::from_bytes(&torrent(info)).unwrap();
    assert_eq!(m.name, "unicode");
    assert_eq!(m.files[0].path, PathBuf::from("unicode"));
    assert_eq!(m.trackers(), vec![vec!["http://t/a".to_string()]]);
}
