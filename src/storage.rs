//! Storage: maps pieces onto the torrent's files (BEP 3: pieces cut the concatenation of
//! all files, in the order the info dictionary lists them) and resumes by re-hashing.
//!
//! There is no resume file: whatever is on disk and matches its piece hash counts as done,
//! as in mainline's `check_hashes`. Reads and writes are positional (`pread`/`pwrite`) so
//! one `Arc<Storage>` can be shared by the chooser and the writer threads without a lock.

use crate::metainfo::{self, Metainfo};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

pub use crate::sha1::sha1;

struct Slot {
    file: File,
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
    piece_length: u64,
    total_length: u64,
    num_pieces: u32,
    read_only: bool,
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
                && entry
                    .path
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)));
            if !safe {
                return Err(format!(
                    "unsafe file path {} in torrent",
                    entry.path.display()
                ));
            }
            let path = dir.join(&entry.path);
            let file = if read_only {
                File::open(&path)
            } else {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent)
                        .map_err(|e| format!("cannot create {}: {}", parent.display(), e))?;
                }
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
            }
            .map_err(|e| format!("cannot open {}: {}", path.display(), e))?;
            let meta_data = file
                .metadata()
                .map_err(|e| format!("cannot stat {}: {}", path.display(), e))?;
            if !meta_data.is_file() {
                return Err(format!("{} is not a regular file", path.display()));
            }
            let have = meta_data.len();
            if have > entry.length {
                return Err(format!(
                    "{} is larger than the torrent says ({} > {} bytes)",
                    path.display(),
                    have,
                    entry.length
                ));
            }
            if have < entry.length {
                if read_only {
                    return Err(format!(
                        "{} is shorter than the torrent says ({} < {} bytes)",
                        path.display(),
                        have,
                        entry.length
                    ));
                }
                file.set_len(entry.length)
                    .map_err(|e| format!("cannot extend {}: {}", path.display(), e))?;
            }
            slots.push(Slot {
                file,
                path,
                offset: entry.offset,
                length: entry.length,
                existed: have,
            });
        }
        Ok(Storage {
            slots,
            piece_length: meta.piece_length,
            total_length: meta.total_length,
            num_pieces: meta.num_pieces(),
            read_only,
        })
    }

    pub fn piece_length(&self) -> u64 {
        self.piece_length
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    pub fn piece_len(&self, index: u32) -> u64 {
        if index >= self.num_pieces {
            return 0;
        }
        metainfo::piece_len(self.piece_length, self.total_length, index)
    }

    /// Read `buf.len()` bytes of piece `index` from offset `begin`; the range may span
    /// files but not leave the piece.
    pub fn read(&self, index: u32, begin: u32, buf: &mut [u8]) -> io::Result<()> {
        let start = self.check_range(index, u64::from(begin), buf.len())?;
        let mut done = 0;
        for (slot, file_pos, n) in self.segments(start, buf.len()) {
            slot.file
                .read_exact_at(&mut buf[done..done + n], file_pos)
                .map_err(|e| annotate(e, &slot.path))?;
            done += n;
        }
        Ok(())
    }

    /// Write one whole piece; the caller has already checked its hash.
    pub fn write_piece(&self, index: u32, data: &[u8]) -> io::Result<()> {
        if self.read_only {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "storage is read-only",
            ));
        }
        if data.len() as u64 != self.piece_len(index) {
            return Err(invalid(format!(
                "piece {} is {} bytes, got {}",
                index,
                self.piece_len(index),
                data.len()
            )));
        }
        let start = self.check_range(index, 0, data.len())?;
        let mut done = 0;
        for (slot, file_pos, n) in self.segments(start, data.len()) {
            slot.file
                .write_all_at(&data[done..done + n], file_pos)
                .map_err(|e| annotate(e, &slot.path))?;
            done += n;
        }
        Ok(())
    }

    pub fn verify_piece(&self, index: u32, expected: &[u8; 20]) -> io::Result<bool> {
        let mut buf = vec![0u8; self.piece_len(index) as usize];
        self.verify_into(index, expected, &mut buf)
    }

    /// Resume: which pieces on disk already match `hashes`. An unreadable piece is simply
    /// not verified — we will download it again — so this never fails as a whole.
    /// `progress(done, total)` is called about every 1% and once at the end.
    pub fn verify_all(&self, hashes: &[[u8; 20]], progress: &mut dyn FnMut(u32, u32)) -> Vec<bool> {
        self.check(hashes, progress, false)
    }

    /// The resume check right after `open`: like `verify_all`, but pieces that lie wholly
    /// in space `open` itself allocated are missing without being read — a fresh download
    /// does not hash gigabytes of zeros before its first request.
    pub fn verify_at_open(
        &self,
        hashes: &[[u8; 20]],
        progress: &mut dyn FnMut(u32, u32),
    ) -> Vec<bool> {
        self.check(hashes, progress, true)
    }

    fn check(
        &self,
        hashes: &[[u8; 20]],
        progress: &mut dyn FnMut(u32, u32),
        skip_fresh: bool,
    ) -> Vec<bool> {
        let total = self.num_pieces;
        let step = (total / 100).max(1);
        let mut buf = Vec::with_capacity(self.piece_length as usize);
        let mut out = Vec::with_capacity(total as usize);
        for index in 0..total {
            let ok = match hashes.get(index as usize) {
                Some(_) if skip_fresh && self.never_written(index) => false,
                Some(h) => {
                    buf.resize(self.piece_len(index) as usize, 0);
                    match self.verify_into(index, h, &mut buf) {
                        Ok(ok) => ok,
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
        for slot in &self.slots {
            slot.file.sync_data().map_err(|e| annotate(e, &slot.path))?;
        }
        Ok(())
    }

    fn verify_into(&self, index: u32, expected: &[u8; 20], buf: &mut [u8]) -> io::Result<bool> {
        self.read(index, 0, buf)?;
        Ok(sha1(buf) == *expected)
    }

    /// Torrent-stream offset of (`index`, `begin`), after checking that `len` bytes from
    /// there stay inside the piece: the values come from peers.
    fn check_range(&self, index: u32, begin: u64, len: usize) -> io::Result<u64> {
        let plen = self.piece_len(index);
        if index >= self.num_pieces || begin.saturating_add(len as u64) > plen {
            return Err(invalid(format!(
                "range {}+{} outside piece {} ({} bytes, {} pieces)",
                begin, len, index, plen, self.num_pieces
            )));
        }
        Ok(u64::from(index) * self.piece_length + begin)
    }

    /// The (file, position in file, byte count) pieces of the stream range
    /// [`start`, `start + len`), in order; empty files contribute nothing.
    /// Every byte of the piece lies past the end its file had when we opened it.
    fn never_written(&self, index: u32) -> bool {
        let start = u64::from(index) * self.piece_length;
        let len = self.piece_len(index) as usize;
        self.segments(start, len)
            .iter()
            .all(|(slot, file_pos, _)| *file_pos >= slot.existed)
    }

    fn segments(&self, start: u64, len: usize) -> Vec<(&Slot, u64, usize)> {
        // Slots are sorted by end offset, so the first one ending after `start` holds it.
        let first = self.slots.partition_point(|s| s.offset + s.length <= start);
        let mut out = Vec::new();
        let mut pos = start;
        let end = start + len as u64;
        for slot in &self.slots[first..] {
            if pos >= end {
                break;
            }
            if slot.length == 0 {
                continue;
            }
            let n = (slot.offset + slot.length).min(end) - pos;
            out.push((slot, pos - slot.offset, n as usize));
            pos += n;
        }
        out
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
mod tests {
    use super::*;
    use crate::metainfo::tests::{
        expected_rows, load_test_torrent, payload, write_all_payloads, TempDir,
    };
    use crate::metainfo::FileEntry;

    #[test]
    fn sha1_known_answer() {
        let hex: String = sha1(b"abc").iter().map(|b| format!("{:02x}", b)).collect();
        assert_eq!(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn payload_matches_payload_py() {
        // first block of `python3 payload.py x/a.txt 20`
        assert_eq!(payload("a.txt", 20), sha1(b"a.txt:0"));
        assert_eq!(payload("a.txt", 123).len(), 123);
        assert_eq!(&payload("a.txt", 123)[20..40], &sha1(b"a.txt:1")[..]);
    }

    #[test]
    fn regenerated_payloads_verify_and_corruption_is_found() {
        let dir = TempDir::new("verify");
        write_all_payloads(&dir.0);
        for row in expected_rows() {
            let m = load_test_torrent(&row.file);
            let st = Storage::open(&m, &dir.0, true).unwrap();
            assert_eq!(st.num_pieces(), m.num_pieces());
            let mut calls = Vec::new();
            let ok = st.verify_all(&m.pieces, &mut |d, t| calls.push((d, t)));
            assert!(ok.iter().all(|&b| b), "{}: {:?}", row.file, ok);
            assert_eq!(calls.last(), Some(&(m.num_pieces(), m.num_pieces())));
            assert!(st.verify_piece(0, &m.pieces[0]).unwrap());

            // flip one byte in the middle of the largest file
            let victim = m.files.iter().max_by_key(|f| f.length).unwrap();
            let pos_in_file = victim.length / 2;
            let piece = ((victim.offset + pos_in_file) / m.piece_length) as usize;
            let path = dir.0.join(&victim.path);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, pos_in_file).unwrap();
            f.write_all_at(&[b[0] ^ 0xff], pos_in_file).unwrap();
            let ok = st.verify_all(&m.pieces, &mut |_, _| {});
            let bad: Vec<usize> = (0..ok.len()).filter(|&i| !ok[i]).collect();
            assert_eq!(bad, vec![piece], "{}", row.file);
            f.write_all_at(&b, pos_in_file).unwrap();
        }
    }

    /// A hand-made multi-file layout with empty files at the start, middle and end and
    /// pieces of 8 bytes, so most pieces cross a file boundary.
    fn layout() -> (Metainfo, Vec<u8>) {
        let files = [
            ("e0", 0u64),
            ("a", 5),
            ("e1", 0),
            ("b", 7),
            ("c", 1),
            ("d", 20),
            ("e2", 0),
        ];
        let data: Vec<u8> = (0..33u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let mut entries = Vec::new();
        let mut off = 0;
        for (name, len) in files {
            entries.push(FileEntry {
                path: PathBuf::from("t").join(name),
                length: len,
                offset: off,
            });
            off += len;
        }
        let pieces = data.chunks(8).map(sha1).collect();
        let m = Metainfo {
            info_hash: [0; 20],
            name: "t".into(),
            piece_length: 8,
            pieces,
            files: entries,
            total_length: data.len() as u64,
            multi_file: true,
            announce: None,
            announce_list: Vec::new(),
            private: false,
        };
        (m, data)
    }

    #[test]
    fn fresh_space_is_not_hashed_at_open_but_old_data_is() {
        let dir = TempDir::new("fresh");
        let (m, data) = layout();
        let st = Storage::open(&m, &dir.0, false).unwrap();
        // nothing existed: every piece is missing, without reading
        assert!(st
            .verify_at_open(&m.pieces, &mut |_, _| {})
            .iter()
            .all(|&b| !b));
        for i in 0..st.num_pieces() {
            let start = (u64::from(i) * st.piece_length()) as usize;
            let len = st.piece_len(i) as usize;
            st.write_piece(i, &data[start..start + len]).unwrap();
        }
        // the same Storage checks everything on demand
        assert!(st.verify_all(&m.pieces, &mut |_, _| {}).iter().all(|&b| b));
        drop(st);
        let st = Storage::open(&m, &dir.0, false).unwrap();
        assert!(st
            .verify_at_open(&m.pieces, &mut |_, _| {})
            .iter()
            .all(|&b| b));
    }

    #[test]
    fn reads_and_writes_cross_file_boundaries() {
        let dir = TempDir::new("rw");
        let (m, data) = layout();
        let st = Storage::open(&m, &dir.0, false).unwrap();
        assert_eq!(
            (st.num_pieces(), st.piece_length(), st.total_length()),
            (5, 8, 33)
        );
        assert_eq!(st.piece_len(4), 1);
        assert_eq!(st.piece_len(5), 0);
        for f in &m.files {
            assert_eq!(fs::metadata(dir.0.join(&f.path)).unwrap().len(), f.length);
        }
        for i in 0..st.num_pieces() {
            let p = &data[i as usize * 8..(i as usize * 8 + 8).min(data.len())];
            st.write_piece(i, p).unwrap();
        }
        st.flush().unwrap();
        let mut on_disk = Vec::new();
        for f in &m.files {
            on_disk.extend(fs::read(dir.0.join(&f.path)).unwrap());
        }
        assert_eq!(on_disk, data);

        for index in 0..st.num_pieces() {
            let plen = st.piece_len(index) as u32;
            for begin in 0..plen {
                for len in 0..=(plen - begin) {
                    let mut buf = vec![0u8; len as usize];
                    st.read(index, begin, &mut buf).unwrap();
                    let at = (index * 8 + begin) as usize;
                    assert_eq!(
                        buf,
                        &data[at..at + len as usize],
                        "{} {} {}",
                        index,
                        begin,
                        len
                    );
                }
            }
        }
        assert!(st.verify_all(&m.pieces, &mut |_, _| {}).iter().all(|&b| b));

        let mut buf = [0u8; 2];
        assert!(
            st.read(4, 0, &mut buf).is_err(),
            "past the last piece's end"
        );
        assert!(st.read(0, 7, &mut buf).is_err(), "past a piece's end");
        assert!(st.read(5, 0, &mut buf[..0]).is_err(), "no such piece");
        assert!(st.read(0, u32::MAX, &mut buf).is_err());
        assert!(st.write_piece(0, &data[..7]).is_err(), "short piece");
        assert!(st.write_piece(4, &data[..8]).is_err(), "long last piece");
        assert!(st.write_piece(9, &data[..8]).is_err());
    }

    #[test]
    fn open_never_truncates() {
        let dir = TempDir::new("trunc");
        let (m, _) = layout();
        let big = dir.0.join("t/b");
        fs::create_dir_all(big.parent().unwrap()).unwrap();
        fs::write(&big, [9u8; 100]).unwrap();
        for read_only in [false, true] {
            let e = Storage::open(&m, &dir.0, read_only).err().unwrap();
            assert_eq!(
                e,
                format!(
                    "{} is larger than the torrent says (100 > 7 bytes)",
                    big.display()
                )
            );
            assert_eq!(fs::read(&big).unwrap(), vec![9u8; 100]);
        }
    }

    #[test]
    fn read_only_open_needs_complete_files() {
        let dir = TempDir::new("ro");
        let (m, data) = layout();
        let e = Storage::open(&m, &dir.0, true).err().unwrap();
        assert!(e.starts_with("cannot open"), "{}", e);
        assert!(
            !dir.0.join("t").exists(),
            "read-only open created something"
        );

        Storage::open(&m, &dir.0, false).unwrap();
        fs::write(dir.0.join("t/d"), &data[..3]).unwrap();
        let e = Storage::open(&m, &dir.0, true).err().unwrap();
        assert!(
            e.contains("shorter than the torrent says (3 < 20 bytes)"),
            "{}",
            e
        );

        fs::write(dir.0.join("t/d"), &data[13..]).unwrap();
        let st = Storage::open(&m, &dir.0, true).unwrap();
        assert!(st.write_piece(0, &data[..8]).is_err());
        st.flush().unwrap();
    }

    #[test]
    fn refuses_paths_outside_the_directory() {
        let dir = TempDir::new("unsafe");
        let (mut m, _) = layout();
        m.files[1].path = PathBuf::from("t/../../escape");
        assert!(Storage::open(&m, &dir.0, false)
            .err()
            .unwrap()
            .contains("unsafe"));
        m.files[1].path = PathBuf::from("/tmp/escape");
        assert!(Storage::open(&m, &dir.0, false)
            .err()
            .unwrap()
            .contains("unsafe"));
    }

    #[test]
    fn missing_file_is_created_and_its_pieces_fail() {
        let dir = TempDir::new("missing");
        let (m, data) = layout();
        {
            let st = Storage::open(&m, &dir.0, false).unwrap();
            for i in 0..st.num_pieces() {
                let p = &data[i as usize * 8..(i as usize * 8 + 8).min(data.len())];
                st.write_piece(i, p).unwrap();
            }
        }
        // b covers stream bytes 5..12, i.e. pieces 0 and 1
        fs::remove_file(dir.0.join("t/b")).unwrap();
        let st = Storage::open(&m, &dir.0, false).unwrap();
        assert_eq!(fs::metadata(dir.0.join("t/b")).unwrap().len(), 7);
        let ok = st.verify_all(&m.pieces, &mut |_, _| {});
        assert_eq!(ok, vec![false, false, true, true, true]);
    }

    #[test]
    fn resume_finds_exactly_the_written_pieces() {
        let dir = TempDir::new("resume");
        let payload_data = payload("resume.bin", 300_000);
        let pl = 16_384u64;
        let pieces: Vec<[u8; 20]> = payload_data.chunks(pl as usize).map(sha1).collect();
        let m = Metainfo {
            info_hash: [0; 20],
            name: "resume.bin".into(),
            piece_length: pl,
            pieces: pieces.clone(),
            files: vec![FileEntry {
                path: PathBuf::from("resume.bin"),
                length: payload_data.len() as u64,
                offset: 0,
            }],
            total_length: payload_data.len() as u64,
            multi_file: false,
            announce: None,
            announce_list: Vec::new(),
            private: false,
        };
        let n = m.num_pieces();
        assert_eq!(n, 19);
        {
            let st = Storage::open(&m, &dir.0, false).unwrap();
            assert!(st.verify_all(&pieces, &mut |_, _| {}).iter().all(|&b| !b));
            for i in (0..n).filter(|i| i % 2 == 1) {
                let s = (u64::from(i) * pl) as usize;
                let e = (s + pl as usize).min(payload_data.len());
                st.write_piece(i, &payload_data[s..e]).unwrap();
            }
            st.flush().unwrap();
        }
        let st = Storage::open(&m, &dir.0, false).unwrap();
        let mut last = (0, 0);
        let ok = st.verify_all(&pieces, &mut |d, t| last = (d, t));
        let want: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
        assert_eq!(ok, want);
        assert_eq!(last, (n, n));
        // too few hashes: the rest count as unverified instead of panicking
        let ok = st.verify_all(&pieces[..3], &mut |_, _| {});
        assert_eq!(ok.len(), n as usize);
        assert_eq!(&ok[..4], &[false, true, false, false]);
    }
}
