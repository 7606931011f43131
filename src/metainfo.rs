//! Metainfo: reading, validating and writing `.torrent` files (BEP 3), with the tracker
//! tiers of BEP 12 (`announce-list`) and the BEP 27 `private` flag (read; written only on
//! request by `make_torrent`).
//!
//! A torrent comes from strangers, so everything that later becomes a file path or an
//! allocation size is checked here, once: the rest of the client trusts a `Metainfo`.

use crate::bencode::{self, Dict, Value};
use crate::pieces::Geometry;
use crate::sha1::sha1;
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
        let top = top.as_dict().ok_or("top level is not a bencoded dictionary")?;
        let info = match top.get("info") {
            None => return Err("info dictionary is missing".into()),
            Some(Value::Dict(d)) => d,
            Some(_) => return Err("info is not a dictionary".into()),
        };
        // Hash the bytes as sent: a re-encoding would differ for torrents written with
        // unsorted keys or non-canonical extras, and then no peer would recognise us.
        let (start, end) = top.span("info").ok_or("info dictionary has no byte span")?;
        let info_hash = sha1(&buf[start..end]);

        let piece_length = match info.get("piece length") {
            None => return Err("piece length is missing".into()),
            Some(Value::Int(n)) if (1..=MAX_PIECE_LENGTH as i64).contains(n) => *n as u64,
            Some(Value::Int(n)) if *n <= 0 => {
                return Err(format!("piece length {} is not positive", n))
            }
            Some(Value::Int(n)) => return Err(format!("piece length {n} is larger than 128 MiB")),
            Some(_) => return Err("piece length is not an integer".into()),
        };
        let raw_pieces = info.bytes("pieces").ok_or("pieces is missing or not a byte string")?;
        if raw_pieces.len() % 20 != 0 {
            return Err(format!("pieces is {} bytes, not a multiple of 20", raw_pieces.len()));
        }
        let pieces: Vec<[u8; 20]> =
            raw_pieces.chunks_exact(20).map(|h| h.try_into().expect("20 bytes")).collect();

        let name = utf8_preferred(info, "name").ok_or("name is missing or not a byte string")?;
        check_component(&name).map_err(|e| format!("name {:?} {}", name, e))?;

        let (files, multi_file) = match (info.get("length"), info.get("files")) {
            (Some(_), Some(_)) => return Err("both length and files are present".into()),
            (None, None) => return Err("neither length nor files is present".into()),
            (Some(len), None) => {
                let length = length_of(len)?;
                let entry = FileEntry { path: PathBuf::from(&name), length, offset: 0 };
                (vec![entry], false)
            }
            (None, Some(list)) => (parse_files(&name, list)?, true),
        };

        // parse_files has checked that the offsets do not overflow.
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        if total_length == 0 {
            return Err("torrent is empty (total length 0)".into());
        }
        let want = total_length / piece_length + u64::from(total_length % piece_length != 0);
        let got = pieces.len();
        if want != got as u64 {
            return Err(format!(
                "{got} piece hashes for {total_length} bytes in pieces of {piece_length} (want {want})"
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

    /// How the torrent's bytes are cut into pieces (`from_bytes` bounds the piece length
    /// by `MAX_PIECE_LENGTH`, so it fits a u32).
    pub fn geometry(&self) -> Geometry {
        Geometry {
            piece_length: self.piece_length as u32,
            total_length: self.total_length,
            num_pieces: self.num_pieces(),
        }
    }

    /// BEP 12: `announce-list` replaces `announce` when it has any tracker.
    pub fn trackers(&self) -> Vec<Vec<String>> {
        if self.announce_list.is_empty() {
            self.announce.iter().map(|a| vec![a.clone()]).collect()
        } else {
            self.announce_list.clone()
        }
    }
}

/// BEP 3 lets `name.utf-8`/`path.utf-8` carry the real name when the plain key was written
/// in a local code page; names that are still not UTF-8 are only shown, so lossy is fine.
fn utf8_preferred(d: &Dict, key: &str) -> Option<String> {
    let utf8_key = format!("{}.utf-8", key);
    d.bytes(&utf8_key).or_else(|| d.bytes(key)).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A path component must name something inside the download directory; anything else
/// (`..`, separators, NUL) would let a torrent write outside it.
fn check_component(c: &str) -> Result<(), &'static str> {
    let rules = [
        (c.is_empty(), "is empty"),
        (c == "." || c == "..", "is a relative directory reference"),
        (c.contains('/') || c.contains('\\'), "contains a path separator"),
        (c.contains('\0'), "contains a NUL byte"),
    ];
    rules.iter().find(|r| r.0).map_or(Ok(()), |r| Err(r.1))
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
        let entry = entry.as_dict().ok_or_else(|| format!("files[{}] is not a dictionary", i))?;
        let length = entry.get("length").ok_or_else(|| format!("files[{}] has no length", i))?;
        let length = length_of(length).map_err(|e| format!("files[{}]: {}", i, e))?;
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
            check_component(&p).map_err(|e| format!("files[{i}] path component {p:?} {e}"))?;
            path.push(&p);
            components.push(p);
        }
        // Two entries on one path would make storage interleave two files' bytes in one.
        if !seen.insert(components) {
            return Err(format!("duplicate file path {}", path.display()));
        }
        files.push(FileEntry { path, length, offset });
        offset = offset.checked_add(length).ok_or("total length overflows")?;
    }
    // A file that is also another file's directory cannot exist on disk.
    for c in &seen {
        for n in 1..c.len() {
            if seen.contains(&c[..n]) {
                let dir = c[..n].join("/");
                return Err(format!("{name}/{dir} is both a file and a directory"));
            }
        }
    }
    Ok(files)
}

/// Lenient on purpose: a malformed tier costs us a tracker, not the whole torrent.
fn parse_announce_list(top: &Dict) -> Vec<Vec<String>> {
    top.list("announce-list")
        .unwrap_or_default()
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
    let name =
        utf8_name(path).ok_or_else(|| format!("{} has no UTF-8 file name", path.display()))?;

    let mut files: Vec<Found> = Vec::new();
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
            return Err(format!("piece size {s} must be a power of two between 16 KiB and 128 MiB"))
        }
        Some(s) => s,
    };

    let pieces = hash_files(&files, piece_length)?;

    let mut info = Dict::new()
        .with("name", Value::str(&name))
        .with("piece length", Value::Int(piece_length as i64))
        .with("pieces", Value::Bytes(pieces));
    if meta.is_dir() {
        let entry = |(parts, len, _): &Found| {
            let path = Value::List(parts.iter().map(|p| Value::str(p)).collect());
            Value::Dict(Dict::new().with("length", Value::Int(*len as i64)).with("path", path))
        };
        info.insert("files", Value::List(files.iter().map(entry).collect()));
    } else {
        info.insert("length", Value::Int(total as i64));
    }
    if private {
        info.insert("private", Value::Int(1));
    }

    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let mut top = Dict::new()
        .with("created by", Value::str("tyrant 0.1"))
        .with("creation date", Value::Int(now))
        .with("info", Value::Dict(info));
    if !announce.is_empty() {
        top.insert("announce", Value::str(announce));
    }
    Ok(bencode::encode(&Value::Dict(top)))
}

/// A file `make_torrent` found: its path components below the top, length, full path.
type Found = (Vec<String>, u64, PathBuf);

/// The last component of `p`, if it is UTF-8.
fn utf8_name(p: &Path) -> Option<String> {
    p.file_name()?.to_str().map(String::from)
}

fn walk(dir: &Path, prefix: &mut Vec<String>, out: &mut Vec<Found>) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot list {}: {}", dir.display(), e);
    let mut entries = Vec::new();
    for e in fs::read_dir(dir).map_err(cannot)? {
        entries.push(e.map_err(cannot)?.path());
    }
    entries.sort();
    for p in entries {
        let name =
            utf8_name(&p).ok_or_else(|| format!("{}: file name is not UTF-8", p.display()))?;
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
            out.push(([&prefix[..], &[name]].concat(), meta.len(), p));
        } else {
            log::warn!("skipping {}: not a regular file", p.display());
        }
    }
    Ok(())
}

/// Hash the concatenation of `files` in pieces of `piece_length`, reading each file for
/// exactly the length we recorded so a file that changes meanwhile is an error, not a
/// torrent that silently disagrees with its own file list.
fn hash_files(files: &[Found], piece_length: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut piece = vec![0u8; piece_length as usize];
    let mut filled = 0;
    for (_, len, full) in files {
        let cannot = |e: std::io::Error| format!("cannot read {}: {}", full.display(), e);
        let mut f = fs::File::open(full).map_err(cannot)?.take(*len);
        let mut got: u64 = 0;
        loop {
            let n = f.read(&mut piece[filled..]).map_err(cannot)?;
            if n == 0 {
                break;
            }
            got += n as u64;
            filled += n;
            if filled == piece.len() {
                out.extend_from_slice(&sha1(&piece));
                filled = 0;
            }
        }
        if got != *len {
            return Err(format!("{} changed size while hashing", full.display()));
        }
    }
    if filled > 0 {
        out.extend_from_slice(&sha1(&piece[..filled]));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests;
