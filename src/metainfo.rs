//! Metainfo: reading, validating and writing `.torrent` files (BEP 3), with the tracker
//! tiers of BEP 12 (`announce-list`) and the BEP 27 `private` flag (read; written only on
//! request by `make_torrent`).
//!
//! A torrent comes from strangers, so everything that later becomes a file path or an
//! allocation size is checked here, once: the rest of the client trusts a `Metainfo`.

use crate::bencode::{self, Dict, Value};
use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Largest `piece length` accepted. Real torrents stop at 16–32 MiB; a bigger value is
/// either an error or an attempt to make us allocate a huge piece buffer.
pub const MAX_PIECE_LENGTH: u64 = 128 * 1024 * 1024;

/// Bounds for `make_torrent`'s automatic piece size.
const AUTO_MIN_PIECE: u64 = 16 * 1024;
const AUTO_MAX_PIECE: u64 = 4 * 1024 * 1024;
const AUTO_MAX_PIECES: u64 = 1500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative path: `name` for a single-file torrent, `name/a/b` for a multi-file one.
    pub path: PathBuf,
    pub length: u64,
    /// Where this file starts in the torrent's concatenated byte stream.
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub struct Metainfo {
    pub info_hash: [u8; 20],
    pub name: String,
    pub piece_length: u64,
    pub pieces: Vec<[u8; 20]>,
    /// In the order the torrent lists them, which defines the byte stream.
    pub files: Vec<FileEntry>,
    pub total_length: u64,
    pub multi_file: bool,
    pub announce: Option<String>,
    pub announce_list: Vec<Vec<String>>,
    pub private: bool,
}

impl Metainfo {
    pub fn from_bytes(buf: &[u8]) -> Result<Metainfo, String> {
        let top = bencode::decode(buf).map_err(|e| e.to_string())?;
        let top = top
            .as_dict()
            .ok_or("top level is not a bencoded dictionary")?;
        let info = match top.get("info") {
            None => return Err("info dictionary is missing".into()),
            Some(Value::Dict(d)) => d,
            Some(_) => return Err("info is not a dictionary".into()),
        };
        // Hash the bytes as sent: a re-encoding would differ for torrents written with
        // unsorted keys or non-canonical extras, and then no peer would recognise us.
        let (start, end) = top.span("info").ok_or("info dictionary has no byte span")?;
        let info_hash = crate::storage::sha1(&buf[start..end]);

        let piece_length = match info.get("piece length") {
            None => return Err("piece length is missing".into()),
            Some(Value::Int(n)) if *n <= 0 => {
                return Err(format!("piece length {} is not positive", n))
            }
            Some(Value::Int(n)) if *n as u64 > MAX_PIECE_LENGTH => {
                return Err(format!("piece length {} is larger than 128 MiB", n))
            }
            Some(Value::Int(n)) => *n as u64,
            Some(_) => return Err("piece length is not an integer".into()),
        };
        let raw_pieces = info
            .bytes("pieces")
            .ok_or("pieces is missing or not a byte string")?;
        if raw_pieces.len() % 20 != 0 {
            return Err(format!(
                "pieces is {} bytes, not a multiple of 20",
                raw_pieces.len()
            ));
        }
        let mut pieces = Vec::with_capacity(raw_pieces.len() / 20);
        for chunk in raw_pieces.chunks(20) {
            let mut h = [0u8; 20];
            h.copy_from_slice(chunk);
            pieces.push(h);
        }

        let name = utf8_preferred(info, "name").ok_or("name is missing or not a byte string")?;
        check_component(&name).map_err(|e| format!("name {:?} {}", name, e))?;

        let (files, multi_file) = match (info.get("length"), info.get("files")) {
            (Some(_), Some(_)) => return Err("both length and files are present".into()),
            (None, None) => return Err("neither length nor files is present".into()),
            (Some(len), None) => {
                let length = length_of(len)?;
                let entry = FileEntry {
                    path: PathBuf::from(&name),
                    length,
                    offset: 0,
                };
                (vec![entry], false)
            }
            (None, Some(list)) => (parse_files(&name, list)?, true),
        };

        let total_length = match files.last() {
            Some(f) => f
                .offset
                .checked_add(f.length)
                .ok_or("total length overflows")?,
            None => 0,
        };
        if total_length == 0 {
            return Err("torrent is empty (total length 0)".into());
        }
        let want = total_length / piece_length + u64::from(total_length % piece_length != 0);
        if want != pieces.len() as u64 {
            return Err(format!(
                "{} piece hashes for {} bytes in pieces of {} (want {})",
                pieces.len(),
                total_length,
                piece_length,
                want
            ));
        }
        if want > u64::from(u32::MAX) {
            return Err(format!("{} pieces is more than the wire can index", want));
        }

        let announce = top.str_lossy("announce").filter(|s| !s.is_empty());
        Ok(Metainfo {
            info_hash,
            name,
            piece_length,
            pieces,
            files,
            total_length,
            multi_file,
            announce,
            announce_list: parse_announce_list(top),
            // BEP 27 says "private=1"; anything else means a public torrent.
            private: info.int("private") == Some(1),
        })
    }

    pub fn load(path: &Path) -> Result<Metainfo, String> {
        let buf = fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e))?;
        Metainfo::from_bytes(&buf)
            .map_err(|e| format!("{} is not a valid torrent: {}", path.display(), e))
    }

    pub fn num_pieces(&self) -> u32 {
        // from_bytes guarantees the count fits.
        self.pieces.len() as u32
    }

    /// Length of piece `index`: `piece_length`, except the last piece, which holds the
    /// remainder. 0 for an index past the end.
    pub fn piece_len(&self, index: u32) -> u64 {
        piece_len(self.piece_length, self.total_length, index)
    }

    /// BEP 12: `announce-list` replaces `announce` when it has any tracker.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if !self.announce_list.is_empty() {
            self.announce_list.clone()
        } else if let Some(a) = &self.announce {
            vec![vec![a.clone()]]
        } else {
            Vec::new()
        }
    }

    pub fn info_hash_hex(&self) -> String {
        self.info_hash
            .iter()
            .map(|b| format!("{:02x}", b))
            .collect()
    }
}

/// Shared with storage so the two can never disagree about where the last piece ends.
pub(crate) fn piece_len(piece_length: u64, total_length: u64, index: u32) -> u64 {
    let start = u64::from(index).saturating_mul(piece_length);
    if start >= total_length {
        0
    } else {
        piece_length.min(total_length - start)
    }
}

/// BEP 3 lets `name.utf-8`/`path.utf-8` carry the real name when the plain key was written
/// in a local code page; names that are still not UTF-8 are only shown, so lossy is fine.
fn utf8_preferred(d: &Dict, key: &str) -> Option<String> {
    let utf8_key = format!("{}.utf-8", key);
    d.bytes(&utf8_key)
        .or_else(|| d.bytes(key))
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A path component must name something inside the download directory; anything else
/// (`..`, separators, NUL) would let a torrent write outside it.
fn check_component(c: &str) -> Result<(), &'static str> {
    if c.is_empty() {
        Err("is empty")
    } else if c == "." || c == ".." {
        Err("is a relative directory reference")
    } else if c.contains('/') || c.contains('\\') {
        Err("contains a path separator")
    } else if c.contains('\0') {
        Err("contains a NUL byte")
    } else {
        Ok(())
    }
}

fn length_of(v: &Value) -> Result<u64, String> {
    match v {
        Value::Int(n) if *n < 0 => Err(format!("negative length {}", n)),
        Value::Int(n) => Ok(*n as u64),
        _ => Err("length is not an integer".into()),
    }
}

fn parse_files(name: &str, list: &Value) -> Result<Vec<FileEntry>, String> {
    let list = list.as_list().ok_or("files is not a list")?;
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    let mut seen = BTreeSet::new();
    for (i, entry) in list.iter().enumerate() {
        let entry = entry
            .as_dict()
            .ok_or_else(|| format!("files[{}] is not a dictionary", i))?;
        let length = length_of(
            entry
                .get("length")
                .ok_or_else(|| format!("files[{}] has no length", i))?,
        )
        .map_err(|e| format!("files[{}]: {}", i, e))?;
        let parts = entry
            .list("path.utf-8")
            .or_else(|| entry.list("path"))
            .ok_or_else(|| format!("files[{}] has no path list", i))?;
        if parts.is_empty() {
            return Err(format!("files[{}] has an empty path", i));
        }
        let mut path = PathBuf::from(name);
        let mut components = Vec::with_capacity(parts.len());
        for p in parts {
            let p = p
                .as_bytes()
                .ok_or_else(|| format!("files[{}] path has a non-string component", i))?;
            let p = String::from_utf8_lossy(p).into_owned();
            check_component(&p)
                .map_err(|e| format!("files[{}] path component {:?} {}", i, p, e))?;
            path.push(&p);
            components.push(p);
        }
        // Two entries on one path would make storage interleave two files' bytes in one.
        if !seen.insert(components) {
            return Err(format!("duplicate file path {}", path.display()));
        }
        files.push(FileEntry {
            path,
            length,
            offset,
        });
        offset = offset.checked_add(length).ok_or("total length overflows")?;
    }
    // A file that is also another file's directory cannot exist on disk.
    for c in &seen {
        for n in 1..c.len() {
            if seen.contains(&c[..n]) {
                return Err(format!(
                    "{}/{} is both a file and a directory",
                    name,
                    c[..n].join("/")
                ));
            }
        }
    }
    Ok(files)
}

/// Lenient on purpose: a malformed tier costs us a tracker, not the whole torrent.
fn parse_announce_list(top: &Dict) -> Vec<Vec<String>> {
    let tiers = match top.list("announce-list") {
        Some(t) => t,
        None => return Vec::new(),
    };
    tiers
        .iter()
        .filter_map(Value::as_list)
        .map(|tier| {
            tier.iter()
                .filter_map(Value::as_bytes)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .filter(|s| !s.is_empty())
                .collect::<Vec<String>>()
        })
        .filter(|tier| !tier.is_empty())
        .collect()
}

/// Smallest power of two in [16 KiB, 4 MiB] giving at most 1500 pieces, so a torrent ends
/// up with 750–1500 pieces: enough to spread over many peers, few enough for a small
/// .torrent and bitfield.
pub fn auto_piece_size(total: u64) -> u64 {
    let mut size = AUTO_MIN_PIECE;
    while size < AUTO_MAX_PIECE && total / size + u64::from(total % size != 0) > AUTO_MAX_PIECES {
        size *= 2;
    }
    size
}

/// `tyrant make`: build a .torrent (bencoded bytes) for a file or a directory.
///
/// A directory becomes a multi-file torrent whose files are sorted by path, so the same
/// tree always gives the same info-hash. Hidden and empty files are included; symlinks
/// inside the tree are skipped with a warning (following them could leave the tree or loop).
/// `piece_size` None picks one with `auto_piece_size`. Keys written: info {length | files,
/// name, piece length, pieces [, private]}; top level {announce, created by, creation date,
/// info} — the same as mktorrent, so both give the same info-hash for the same data.
pub fn make_torrent(
    path: &Path,
    announce: &str,
    piece_size: Option<u64>,
    private: bool,
) -> Result<Vec<u8>, String> {
    let meta = fs::metadata(path).map_err(|e| format!("cannot read {}: {}", path.display(), e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no UTF-8 file name", path.display()))?
        .to_string();

    // (relative components, length, full path)
    let mut files: Vec<(Vec<String>, u64, PathBuf)> = Vec::new();
    if meta.is_dir() {
        walk(path, &mut Vec::new(), &mut files)?;
    } else if meta.is_file() {
        files.push((Vec::new(), meta.len(), path.to_path_buf()));
    } else {
        return Err(format!("{} is not a file or directory", path.display()));
    }
    let total: u64 = files.iter().map(|f| f.1).sum();
    if total == 0 {
        return Err(format!("{} has no data to share (0 bytes)", path.display()));
    }

    let piece_length = match piece_size {
        None => auto_piece_size(total),
        Some(s) if !s.is_power_of_two() || !(AUTO_MIN_PIECE..=MAX_PIECE_LENGTH).contains(&s) => {
            return Err(format!(
                "piece size {} must be a power of two between 16 KiB and 128 MiB",
                s
            ))
        }
        Some(s) => s,
    };

    let pieces = hash_files(&files, piece_length)?;

    let mut info = Dict::new()
        .with("name", Value::str(&name))
        .with("piece length", Value::Int(piece_length as i64))
        .with("pieces", Value::Bytes(pieces));
    if meta.is_dir() {
        let list = files
            .iter()
            .map(|(parts, len, _)| {
                let path = parts.iter().map(|p| Value::str(p)).collect();
                Value::Dict(
                    Dict::new()
                        .with("length", Value::Int(*len as i64))
                        .with("path", Value::List(path)),
                )
            })
            .collect();
        info.insert("files", Value::List(list));
    } else {
        info.insert("length", Value::Int(total as i64));
    }
    if private {
        info.insert("private", Value::Int(1));
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut top = Dict::new()
        .with("created by", Value::str("tyrant 0.1"))
        .with("creation date", Value::Int(now))
        .with("info", Value::Dict(info));
    if !announce.is_empty() {
        top.insert("announce", Value::str(announce));
    }
    Ok(bencode::encode(&Value::Dict(top)))
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, u64, PathBuf)>,
) -> Result<(), String> {
    let rd = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {}", dir.display(), e))?;
    let mut entries = Vec::new();
    for e in rd {
        let e = e.map_err(|e| format!("cannot list {}: {}", dir.display(), e))?;
        entries.push(e.path());
    }
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: file name is not UTF-8", p.display()))?
            .to_string();
        let meta =
            fs::symlink_metadata(&p).map_err(|e| format!("cannot read {}: {}", p.display(), e))?;
        let ft = meta.file_type();
        if ft.is_symlink() {
            log::warn!("skipping symlink {}", p.display());
        } else if ft.is_dir() {
            prefix.push(name);
            walk(&p, prefix, out)?;
            prefix.pop();
        } else if ft.is_file() {
            let mut parts = prefix.clone();
            parts.push(name);
            out.push((parts, meta.len(), p));
        } else {
            log::warn!("skipping {}: not a regular file", p.display());
        }
    }
    Ok(())
}

/// Hash the concatenation of `files` in pieces of `piece_length`, reading each file for
/// exactly the length we recorded so a file that changes meanwhile is an error, not a
/// torrent that silently disagrees with its own file list.
fn hash_files(files: &[(Vec<String>, u64, PathBuf)], piece_length: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut piece = Vec::with_capacity(piece_length as usize);
    let mut buf = vec![0u8; 64 * 1024];
    for (_, len, full) in files {
        let f =
            fs::File::open(full).map_err(|e| format!("cannot read {}: {}", full.display(), e))?;
        let mut f = f.take(*len);
        let mut got: u64 = 0;
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| format!("cannot read {}: {}", full.display(), e))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            let mut chunk = &buf[..n];
            while !chunk.is_empty() {
                let take = chunk.len().min(piece_length as usize - piece.len());
                piece.extend_from_slice(&chunk[..take]);
                chunk = &chunk[take..];
                if piece.len() as u64 == piece_length {
                    out.extend_from_slice(&crate::storage::sha1(&piece));
                    piece.clear();
                }
            }
        }
        if got != *len {
            return Err(format!("{} changed size while hashing", full.display()));
        }
    }
    if !piece.is_empty() {
        out.extend_from_slice(&crate::storage::sha1(&piece));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) const TESTDATA: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/torrents");

    /// A directory under the system temp dir, removed on drop (also when a test fails).
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::SeqCst);
            let p = std::env::temp_dir().join(format!(
                "tyrant-test-{}-{}-{}",
                tag,
                std::process::id(),
                n
            ));
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
            out.extend_from_slice(&crate::storage::sha1(
                format!("{}:{}", basename, i).as_bytes(),
            ));
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
            assert_eq!(m.info_hash_hex(), row.hash, "{}", f);
            assert_eq!(m.name, row.name, "{}", f);
            assert_eq!(m.piece_length, row.piece_length, "{}", f);
            assert_eq!(m.num_pieces(), row.pieces, "{}", f);
            assert_eq!(m.total_length, row.total, "{}", f);
            let got: Vec<(String, u64)> = m
                .files
                .iter()
                .map(|e| (e.path.to_str().unwrap().to_string(), e.length))
                .collect();
            assert_eq!(got, row.files, "{}", f);
            assert_eq!(m.multi_file, row.files.len() > 1, "{}", f);
            // offsets are the running sum, and piece lengths add up to the total
            let mut off = 0;
            for e in &m.files {
                assert_eq!(e.offset, off, "{}", f);
                off += e.length;
            }
            let sum: u64 = (0..m.num_pieces()).map(|i| m.piece_len(i)).sum();
            assert_eq!(sum, m.total_length, "{}", f);
            assert_eq!(m.piece_len(m.num_pieces()), 0);
            assert_eq!(
                m.trackers()[0][0],
                "http://127.0.0.1:6969/announce",
                "{}",
                f
            );
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
        assert_eq!(m.piece_len(0), 262_144);
        let m = load_test_torrent("torf-single.torrent");
        assert!(!m.private);
        assert!(m.announce_list.is_empty());
        assert_eq!(
            m.trackers(),
            vec![vec!["http://127.0.0.1:6969/announce".to_string()]]
        );
        assert_eq!(m.piece_len(15), 1_000_000 - 15 * 65_536);
    }

    #[test]
    fn info_hash_is_over_the_raw_bytes() {
        // keys deliberately unsorted: a re-encoding would sort them and hash differently
        let mut buf = b"d4:infod6:pieces20:".to_vec();
        buf.extend_from_slice(&[7u8; 20]);
        buf.extend_from_slice(
            b"4:name1:x12:piece lengthi16384e6:lengthi5e5:extrai1ee8:announce3:urle",
        );
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
        assert_eq!(
            m.info_hash_hex(),
            "123b9c69521e4710c97415582b531546cf8dcd51"
        );
        assert!(!m.multi_file && !m.private);
        let top = bencode::decode(&bytes).unwrap();
        let keys: Vec<&[u8]> = top.as_dict().unwrap().map.keys().map(|k| &k[..]).collect();
        let want: Vec<&[u8]> = vec![b"announce", b"created by", b"creation date", b"info"];
        assert_eq!(keys, want);
        assert_eq!(
            top.as_dict().unwrap().str_lossy("created by").as_deref(),
            Some("tyrant 0.1")
        );

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
        assert_eq!(
            Metainfo::from_bytes(&with_link).unwrap().pieces,
            torf.pieces
        );
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
            Dict::new()
                .with("announce", s("http://t/a"))
                .with("info", Value::Dict(info)),
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
            (
                "no piece length",
                without("piece length"),
                "piece length is missing",
            ),
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
            (
                "name ..",
                torrent(single_info(40000).with("name", s(".."))),
                "relative directory",
            ),
            (
                "name .",
                torrent(single_info(40000).with("name", s("."))),
                "relative directory",
            ),
            (
                "name empty",
                torrent(single_info(40000).with("name", s(""))),
                "is empty",
            ),
            (
                "name slash",
                torrent(single_info(40000).with("name", s("a/b"))),
                "separator",
            ),
            (
                "name.utf-8 ..",
                torrent(single_info(40000).with("name.utf-8", s(".."))),
                "relative directory",
            ),
            (
                "negative length",
                torrent(single_info(-1)),
                "negative length",
            ),
            (
                "empty torrent",
                torrent(single_info(0).with("pieces", Value::Bytes(vec![]))),
                "empty",
            ),
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
            (
                "negative file length",
                torrent(multi_info(vec![file(-5, &["a"])], 1)),
                "negative length",
            ),
            (
                "empty path",
                torrent(multi_info(vec![file(5, &[])], 1)),
                "empty path",
            ),
            (
                "empty component",
                torrent(multi_info(vec![file(5, &["a", ""])], 1)),
                "is empty",
            ),
            (
                "dot component",
                torrent(multi_info(vec![file(5, &[".", "a"])], 1)),
                "relative directory",
            ),
            (
                "dotdot component",
                torrent(multi_info(vec![file(5, &["..", "..", "etc", "passwd"])], 1)),
                "relative directory",
            ),
            (
                "slash component",
                torrent(multi_info(vec![file(5, &["../x"])], 1)),
                "separator",
            ),
            (
                "absolute component",
                torrent(multi_info(vec![file(5, &["/etc"])], 1)),
                "separator",
            ),
            (
                "backslash component",
                torrent(multi_info(vec![file(5, &["..\\x"])], 1)),
                "separator",
            ),
            (
                "nul component",
                torrent(multi_info(vec![file(5, &["a\0b"])], 1)),
                "NUL",
            ),
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
                    vec![Value::Dict(
                        Dict::new().with("path", Value::List(vec![s("a")])),
                    )],
                    1,
                )),
                "has no length",
            ),
            (
                "file without path",
                torrent(multi_info(
                    vec![Value::Dict(Dict::new().with("length", Value::Int(5)))],
                    1,
                )),
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
                assert!(
                    Metainfo::from_bytes(&buf[..cut]).is_err(),
                    "{} cut at {}",
                    row.file,
                    cut
                );
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
        assert!(
            e.starts_with(&format!("cannot read {}: ", missing.display())),
            "{}",
            e
        );
        let bad = dir.0.join("bad.torrent");
        fs::write(&bad, b"d4:infoi1ee").unwrap();
        let e = Metainfo::load(&bad).unwrap_err();
        assert_eq!(
            e,
            format!(
                "{} is not a valid torrent: info is not a dictionary",
                bad.display()
            )
        );
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
        let paths: Vec<(PathBuf, u64, u64)> = m
            .files
            .iter()
            .map(|f| (f.path.clone(), f.length, f.offset))
            .collect();
        assert_eq!(
            paths,
            vec![
                (PathBuf::from("caf\u{fffd}/sub/nice"), 10, 0),
                (PathBuf::from("caf\u{fffd}/zero"), 0, 10),
                (PathBuf::from("caf\u{fffd}/big"), 20000, 10),
            ]
        );
        assert_eq!(m.piece_len(1), 20010 - 16384);

        // name.utf-8 wins over name
        let info = single_info(40000)
            .with("name", s("local"))
            .with("name.utf-8", s("unicode"));
        let m = Metainfo::from_bytes(&torrent(info)).unwrap();
        assert_eq!(m.name, "unicode");
        assert_eq!(m.files[0].path, PathBuf::from("unicode"));
        assert_eq!(m.trackers(), vec![vec!["http://t/a".to_string()]]);
    }
}
