//! Storage: maps pieces onto the torrent's files (BEP 3: pieces cut the concatenation of
//! all files, in the order the info dictionary lists them) and resumes by re-hashing.
//!
//! There is no resume file: whatever is on disk and matches its piece hash counts as done,
//! as in mainline's `check_hashes`. Reads and writes are positional (`pread`/`pwrite`) so
//! one `Arc<Storage>` can be shared by the disk thread and the writer threads.
//!
//! Files are opened on demand through a small cache of descriptors, as libtorrent's file
//! pool and transmission's fdlimit do: a torrent of 3,000 files must not need 3,000
//! descriptors, nor fail under `ulimit -n 1024`. The cache's lock is held only to look a
//! file up; reads and writes happen outside it.

use crate::metainfo::Metainfo;
use crate::pieces::Geometry;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

pub use crate::sha1::sha1;

/// Files held open at once.
const OPEN_FILES: usize = 64;

struct Slot {
    path: PathBuf,
    /// Start of this file in the torrent's byte stream.
    offset: u64,
    length: u64,
    /// Bytes that were in the file before we opened it; beyond them are holes we made,
    /// which hold no data worth hashing at start-up.
    existed: u64,
}

pub struct Storage {
    slots: Vec<Slot>,
    geo: Geometry,
    read_only: bool,
    /// Open files by slot, most recently used last.
    open: Mutex<Vec<(usize, Arc<File>)>>,
}

impl Storage {
    /// Open every file of `meta` under `dir`. Read-write: create what is missing and extend
    /// short files (sparse, so it costs nothing) — but never truncate or delete, since a
    /// longer file is likely somebody else's data under the same name. Read-only (seeding
    /// data we must not touch): every file must already be there at its full length.
    pub fn open(meta: &Metainfo, dir: &Path, read_only: bool) -> Result<Storage, String> {
        let mut slots = Vec::with_capacity(meta.files.len());
        for entry in &meta.files {
            // Metainfo validates paths, but its fields are public: refuse anything that
            // could escape `dir` rather than trust every constructor.
            let safe = entry.path.components().next().is_some()
                && entry.path.components().all(|c| matches!(c, Component::Normal(_)));
            if !safe {
                return Err(format!("unsafe file path {} in torrent", entry.path.display()));
            }
            let path = dir.join(&entry.path);
            let shown = path.display();
            let file = if read_only {
                File::open(&path)
            } else {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {}", parent.display(), e))?;
                }
                OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)
            }
            .map_err(|e| format!("cannot open {shown}: {e}"))?;
            let meta_data = file.metadata().map_err(|e| format!("cannot stat {shown}: {e}"))?;
            if !meta_data.is_file() {
                return Err(format!("{shown} is not a regular file"));
            }
            let (have, want) = (meta_data.len(), entry.length);
            let wrong = |what, op| {
                format!("{shown} is {what} than the torrent says ({have} {op} {want} bytes)")
            };
            if have > want {
                return Err(wrong("larger", '>'));
            }
            if have < want {
                if read_only {
                    return Err(wrong("shorter", '<'));
                }
                file.set_len(want).map_err(|e| format!("cannot extend {shown}: {e}"))?;
            }
            slots.push(Slot { path, offset: entry.offset, length: want, existed: have });
        }
        Ok(Storage { slots, geo: meta.geometry(), read_only, open: Mutex::new(Vec::new()) })
    }

    /// Slot `i`'s file, from the cache or opened now (closing the least recently used one).
    fn file(&self, i: usize) -> io::Result<Arc<File>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = open.iter().position(|(s, _)| *s == i) {
            open[at..].rotate_left(1);
        } else {
            let path = &self.slots[i].path;
            let file = OpenOptions::new().read(true).write(!self.read_only).open(path);
            let file = Arc::new(file.map_err(|e| annotate(e, path))?);
            if open.len() >= OPEN_FILES {
                let (old, f) = open.remove(0);
                // Closing does not make written data durable; `flush` only sees open files.
                if !self.read_only {
                    if let Err(e) = f.sync_data() {
                        log::warn!("{}", annotate(e, &self.slots[old].path));
                    }
                }
            }
            open.push((i, file));
        }
        Ok(Arc::clone(&open[open.len() - 1].1))
    }

    /// Read `buf.len()` bytes of piece `index` from offset `begin`; the range may span
    /// files but not leave the piece.
    pub fn read(&self, index: u32, begin: u32, buf: &mut [u8]) -> io::Result<()> {
        let len = buf.len();
        self.each_file(index, begin, len, |f, pos, part| f.read_exact_at(&mut buf[part], pos))
    }

    /// Write one whole piece; the caller has already checked its hash.
    pub fn write_piece(&self, index: u32, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, "storage is read-only"));
        }
        let (want, got) = (self.geo.piece_len(index), data.len());
        if got != want as usize {
            return Err(invalid(format!("piece {index} is {want} bytes, got {got}")));
        }
        self.each_file(index, 0, data.len(), |f, pos, part| f.write_all_at(&data[part], pos))
    }

    /// Resume: which pieces on disk already match `hashes`. An unreadable piece is simply
    /// not verified (we will download it again), so this never fails as a whole. With
    /// `skip_fresh`, pieces that lie wholly in space `open` itself allocated are missing
    /// without being read: a fresh download does not hash gigabytes of zeros before its
    /// first request.
    /// `progress(done, total)` is called about every 1% and once at the end.
    pub fn verify(
        &self,
        hashes: &[[u8; 20]],
        progress: &mut dyn FnMut(u32, u32),
        skip_fresh: bool,
    ) -> Vec<bool> {
        let total = self.geo.num_pieces;
        let step = (total / 100).max(1);
        let mut buf = Vec::with_capacity(self.geo.piece_length as usize);
        let mut out = Vec::with_capacity(total as usize);
        for index in 0..total {
            let ok = match hashes.get(index as usize) {
                Some(_) if skip_fresh && self.never_written(index) => false,
                Some(h) => {
                    buf.resize(self.geo.piece_len(index) as usize, 0);
                    match self.read(index, 0, &mut buf) {
                        Ok(()) => sha1(&buf) == *h,
                        Err(e) => {
                            log::debug!("piece {} unreadable, treating as missing: {}", index, e);
                            false
                        }
                    }
                }
                None => false,
            };
            out.push(ok);
            let done = index + 1;
            if done % step == 0 || done == total {
                progress(done, total);
            }
        }
        out
    }

    pub fn flush(&self) -> io::Result<()> {
        if self.read_only {
            return Ok(());
        }
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.iter()
            .try_for_each(|(i, f)| f.sync_data().map_err(|e| annotate(e, &self.slots[*i].path)))
    }

    /// Do `io` on each file's part of the `len` bytes of piece `index` from `begin`, given
    /// the file, the position in it and the part of the range, after checking that the
    /// range stays inside the piece: the values come from peers.
    fn each_file(
        &self,
        index: u32,
        begin: u32,
        len: usize,
        mut io: impl FnMut(&File, u64, Range<usize>) -> io::Result<()>,
    ) -> io::Result<()> {
        let (plen, n) = (u64::from(self.geo.piece_len(index)), self.geo.num_pieces);
        if index >= n || u64::from(begin) + len as u64 > plen {
            let why =
                format!("range {begin}+{len} outside piece {index} ({plen} bytes, {n} pieces)");
            return Err(invalid(why));
        }
        for (i, pos, at, n) in self.segments(self.geo.offset(index, begin), len) {
            io(&*self.file(i)?, pos, at..at + n).map_err(|e| annotate(e, &self.slots[i].path))?;
        }
        Ok(())
    }

    /// Every byte of the piece lies past the end its file had when we opened it.
    fn never_written(&self, index: u32) -> bool {
        let segments = self.segments(self.geo.offset(index, 0), self.geo.piece_len(index) as usize);
        segments.iter().all(|(i, file_pos, ..)| *file_pos >= self.slots[*i].existed)
    }

    /// The (slot, position in file, position in the range, byte count) pieces of the
    /// stream range [`start`, `start + len`), in order; empty files contribute nothing.
    fn segments(&self, start: u64, len: usize) -> Vec<(usize, u64, usize, usize)> {
        // Slots are sorted by end offset, so the first one ending after `start` holds it.
        let first = self.slots.partition_point(|s| s.offset + s.length <= start);
        let mut out = Vec::new();
        let mut pos = start;
        let end = start + len as u64;
        for (i, slot) in self.slots.iter().enumerate().skip(first) {
            if pos >= end {
                break;
            }
            if slot.length == 0 {
                continue;
            }
            let n = (slot.offset + slot.length).min(end) - pos;
            out.push((i, pos - slot.offset, (pos - start) as usize, n as usize));
            pos += n;
        }
        out
    }
}

/// Raise the soft limit on open files to the hard limit, as libtorrent and transmission
/// do at start: peers take descriptors too (a socket each), and 1,024 is a common default.
/// Best effort; Linux only.
pub fn raise_fd_limit() {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Rlimit {
            cur: std::os::raw::c_ulong,
            max: std::os::raw::c_ulong,
        }
        extern "C" {
            fn getrlimit(resource: i32, rlim: *mut Rlimit) -> i32;
            fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
        }
        const RLIMIT_NOFILE: i32 = 7;
        let mut r = Rlimit { cur: 0, max: 0 };
        // SAFETY: both calls only read or write the struct we pass, laid out as C's
        // `struct rlimit` (two `rlim_t`, unsigned long on Linux).
        unsafe {
            if getrlimit(RLIMIT_NOFILE, &mut r) == 0 && r.cur < r.max {
                r.cur = r.max;
                if setrlimit(RLIMIT_NOFILE, &r) != 0 {
                    log::debug!("could not raise the open-files limit");
                }
            }
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// io errors from pread/pwrite do not say which file; one line that does saves a debug hunt.
fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.display(), e))
}

#[cfg(test)]
mod tests;
