//! Unit tests for `crate::storage`.

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
        assert_eq!(st.geo, m.geometry());
        let mut calls = Vec::new();
        let ok = st.verify(&m.pieces, &mut |d, t| calls.push((d, t)), false);
        assert!(ok.iter().all(|&b| b), "{}: {:?}", row.file, ok);
        assert_eq!(calls.last(), Some(&(m.num_pieces(), m.num_pieces())));

        // flip one byte in the middle of the largest file
        let victim = m.files.iter().max_by_key(|f| f.length).unwrap();
        let pos_in_file = victim.length / 2;
        let piece = ((victim.offset + pos_in_file) / m.piece_length) as usize;
        let path = dir.0.join(&victim.path);
        let f = OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, pos_in_file).unwrap();
        f.write_all_at(&[b[0] ^ 0xff], pos_in_file).unwrap();
        let ok = st.verify(&m.pieces, &mut |_, _| {}, false);
        let bad: Vec<usize> = (0..ok.len()).filter(|&i| !ok[i]).collect();
        assert_eq!(bad, vec![piece], "{}", row.file);
        f.write_all_at(&b, pos_in_file).unwrap();
    }
}

/// A hand-made multi-file layout with empty files at the start, middle and end and
/// pieces of 8 bytes, so most pieces cross a file boundary.
fn layout() -> (Metainfo, Vec<u8>) {
    let files = [("e0", 0u64), ("a", 5), ("e1", 0), ("b", 7), ("c", 1), ("d", 20), ("e2", 0)];
    let data: Vec<u8> = (0..33u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let mut entries = Vec::new();
    let mut off = 0;
    for (name, len) in files {
        entries.push(FileEntry { path: PathBuf::from("t").join(name), length: len, offset: off });
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
    assert!(st.verify(&m.pieces, &mut |_, _| {}, true).iter().all(|&b| !b));
    for i in 0..st.geo.num_pieces {
        let start = st.geo.offset(i, 0) as usize;
        let len = st.geo.piece_len(i) as usize;
        st.write_piece(i, &data[start..start + len]).unwrap();
    }
    // the same Storage checks everything on demand
    assert!(st.verify(&m.pieces, &mut |_, _| {}, false).iter().all(|&b| b));
    drop(st);
    let st = Storage::open(&m, &dir.0, false).unwrap();
    assert!(st.verify(&m.pieces, &mut |_, _| {}, true).iter().all(|&b| b));
}

#[test]
fn reads_and_writes_cross_file_boundaries() {
    let dir = TempDir::new("rw");
    let (m, data) = layout();
    let st = Storage::open(&m, &dir.0, false).unwrap();
    assert_eq!((st.geo.num_pieces, st.geo.piece_length, st.geo.total_length), (5, 8, 33));
    assert_eq!(st.geo.piece_len(4), 1);
    assert_eq!(st.geo.piece_len(5), 0);
    for f in &m.files {
        assert_eq!(fs::metadata(dir.0.join(&f.path)).unwrap().len(), f.length);
    }
    for i in 0..st.geo.num_pieces {
        let p = &data[i as usize * 8..(i as usize * 8 + 8).min(data.len())];
        st.write_piece(i, p).unwrap();
    }
    st.flush().unwrap();
    let mut on_disk = Vec::new();
    for f in &m.files {
        on_disk.extend(fs::read(dir.0.join(&f.path)).unwrap());
    }
    assert_eq!(on_disk, data);

    for index in 0..st.geo.num_pieces {
        let plen = st.geo.piece_len(index);
        for begin in 0..plen {
            for len in 0..=(plen - begin) {
                let mut buf = vec![0u8; len as usize];
                st.read(index, begin, &mut buf).unwrap();
                let at = (index * 8 + begin) as usize;
                assert_eq!(buf, &data[at..at + len as usize], "{} {} {}", index, begin, len);
            }
        }
    }
    assert!(st.verify(&m.pieces, &mut |_, _| {}, false).iter().all(|&b| b));

    let mut buf = [0u8; 2];
    assert!(st.read(4, 0, &mut buf).is_err(), "past the last piece's end");
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
        assert_eq!(e, format!("{} is larger than the torrent says (100 > 7 bytes)", big.display()));
        assert_eq!(fs::read(&big).unwrap(), vec![9u8; 100]);
    }
}

#[test]
fn read_only_open_needs_complete_files() {
    let dir = TempDir::new("ro");
    let (m, data) = layout();
    let e = Storage::open(&m, &dir.0, true).err().unwrap();
    assert!(e.starts_with("cannot open"), "{}", e);
    assert!(!dir.0.join("t").exists(), "read-only open created something");

    Storage::open(&m, &dir.0, false).unwrap();
    fs::write(dir.0.join("t/d"), &data[..3]).unwrap();
    let e = Storage::open(&m, &dir.0, true).err().unwrap();
    assert!(e.contains("shorter than the torrent says (3 < 20 bytes)"), "{}", e);

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
    assert!(Storage::open(&m, &dir.0, false).err().unwrap().contains("unsafe"));
    m.files[1].path = PathBuf::from("/tmp/escape");
    assert!(Storage::open(&m, &dir.0, false).err().unwrap().contains("unsafe"));
}

#[test]
fn missing_file_is_created_and_its_pieces_fail() {
    let dir = TempDir::new("missing");
    let (m, data) = layout();
    {
        let st = Storage::open(&m, &dir.0, false).unwrap();
        for i in 0..st.geo.num_pieces {
            let p = &data[i as usize * 8..(i as usize * 8 + 8).min(data.len())];
            st.write_piece(i, p).unwrap();
        }
    }
    // b covers stream bytes 5..12, i.e. pieces 0 and 1
    fs::remove_file(dir.0.join("t/b")).unwrap();
    let st = Storage::open(&m, &dir.0, false).unwrap();
    assert_eq!(fs::metadata(dir.0.join("t/b")).unwrap().len(), 7);
    let ok = st.verify(&m.pieces, &mut |_, _| {}, false);
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
        assert!(st.verify(&pieces, &mut |_, _| {}, false).iter().all(|&b| !b));
        for i in (0..n).filter(|i| i % 2 == 1) {
            let s = (u64::from(i) * pl) as usize;
            let e = (s + pl as usize).min(payload_data.len());
            st.write_piece(i, &payload_data[s..e]).unwrap();
        }
        st.flush().unwrap();
    }
    let st = Storage::open(&m, &dir.0, false).unwrap();
    let mut last = (0, 0);
    let ok = st.verify(&pieces, &mut |d, t| last = (d, t), false);
    let want: Vec<bool> = (0..n).map(|i| i % 2 == 1).collect();
    assert_eq!(ok, want);
    assert_eq!(last, (n, n));
    // too few hashes: the rest count as unverified instead of panicking
    let ok = st.verify(&pieces[..3], &mut |_, _| {}, false);
    assert_eq!(ok.len(), n as usize);
    assert_eq!(&ok[..4], &[false, true, false, false]);
}

/// 300 files, far more than the descriptor cache holds: every piece is written and read
/// back through it, never more than `OPEN_FILES` stay open, and what was written survives
/// eviction (a fresh `Storage` verifies it all).
#[test]
fn many_files_go_through_a_bounded_descriptor_cache() {
    let dir = TempDir::new("many");
    let data: Vec<u8> = (0..300 * 37u32).map(|i| (i * 7 + i / 300) as u8).collect();
    let files = (0..300u64)
        .map(|i| FileEntry { path: PathBuf::from(format!("m/f{i}")), length: 37, offset: 37 * i })
        .collect();
    let m = Metainfo {
        info_hash: [0; 20],
        name: "m".into(),
        piece_length: 64,
        pieces: data.chunks(64).map(sha1).collect(),
        files,
        total_length: data.len() as u64,
        multi_file: true,
        announce: None,
        announce_list: Vec::new(),
        private: false,
    };
    let st = Storage::open(&m, &dir.0, false).unwrap();
    assert_eq!(st.open.lock().unwrap().len(), 0, "open() keeps nothing open");
    for i in (0..st.geo.num_pieces).rev() {
        let start = st.geo.offset(i, 0) as usize;
        st.write_piece(i, &data[start..start + st.geo.piece_len(i) as usize]).unwrap();
        assert!(st.open.lock().unwrap().len() <= OPEN_FILES);
    }
    let mut back = vec![0u8; data.len()];
    for i in 0..st.geo.num_pieces {
        let start = st.geo.offset(i, 0) as usize;
        let len = st.geo.piece_len(i) as usize;
        st.read(i, 0, &mut back[start..start + len]).unwrap();
    }
    assert!(back == data);
    st.flush().unwrap();
    drop(st);
    let ro = Storage::open(&m, &dir.0, true).unwrap();
    assert!(ro.verify(&m.pieces, &mut |_, _| {}, true).iter().all(|&b| b));
}
