//! Unit tests for `crate::pieces`: geometry, assembly, the disk thread's verdicts and the
//! smart ban.

use super::*;
use crate::metainfo::tests::TempDir;
use crate::metainfo::{FileEntry, Metainfo};
use std::path::PathBuf;

/// Two pieces: one full (two blocks and a bit), one short.
fn torrent() -> (Metainfo, Vec<u8>) {
    let pl = 2 * BLOCK as usize + 100;
    let data: Vec<u8> = (0..pl + 500).map(|i| (i * 7 + 3) as u8).collect();
    let m = Metainfo {
        info_hash: [0; 20],
        name: "d.bin".into(),
        piece_length: pl as u64,
        pieces: data.chunks(pl).map(sha1).collect(),
        files: vec![FileEntry {
            path: PathBuf::from("d.bin"),
            length: data.len() as u64,
            offset: 0,
        }],
        total_length: data.len() as u64,
        multi_file: false,
        announce: None,
        announce_list: Vec::new(),
        private: false,
    };
    (m, data)
}

fn job(m: &Metainfo, data: &[u8], index: u32, ok: bool, bad: bool) -> Job {
    let pl = m.piece_length as usize;
    let s = index as usize * pl;
    Job {
        index,
        data: data[s..(s + pl).min(data.len())].to_vec(),
        expected: m.pieces[index as usize],
        blocks_if_ok: ok,
        blocks_if_bad: bad,
    }
}

#[test]
fn geometry_cuts_pieces_and_blocks() {
    let g = Geometry { piece_length: 40000, total_length: 100_000, num_pieces: 3 };
    // (piece, length, blocks, last block)
    for (i, len, blocks, last) in [(0, 40000, 3, (32768, 7232)), (2, 20000, 2, (16384, 3616))] {
        assert_eq!(g.piece_len(i), len);
        assert_eq!(g.blocks(i), blocks);
        let b = g.block(i, blocks - 1);
        assert_eq!((b.index, b.begin, b.length), (i, last.0, last.1));
    }
    assert_eq!(g.piece_len(3), 0, "out of range");
    assert_eq!(g.offset(2, 5), 80005);
}

/// Blocks stored out of order and from two peers come out as the piece, and the job asks
/// for block hashes only where they will be needed.
#[test]
fn assembly_puts_blocks_in_place_and_names_their_senders() {
    let (m, data) = torrent();
    let mut p = Pieces::new(m.geometry());
    let b = BLOCK as usize;
    let piece = &data[..m.piece_length as usize];
    p.store(0, 2 * BLOCK, &piece[2 * b..], 7);
    p.store(0, 0, &piece[..b], 5);
    p.store(0, BLOCK, &piece[b..2 * b], 7);
    let j = p.job(0, m.pieces[0]).unwrap();
    assert_eq!(j.data, piece);
    assert!(j.blocks_if_bad, "two senders: keep evidence if it fails");
    assert!(!j.blocks_if_ok, "nothing failed before");
    assert!(p.job(0, m.pieces[0]).is_none(), "taken once");
    // One sender: a failure is simply its fault, no hashes needed.
    p.store(1, 0, &data[m.piece_length as usize..], 9);
    let j = p.job(1, m.pieces[1]).unwrap();
    assert!(!j.blocks_if_bad && !j.blocks_if_ok);
    assert_eq!(
        p.verdict(Done::Failed { index: 1, blocks: None }),
        Verdict::Failed { index: 1, strike: Some(9) }
    );
}

/// The smart ban: a piece with blocks from honest 5 and lying 6 fails; nobody is struck.
/// Fetched again (from 5 alone) it verifies, and the block that differs names 6.
#[test]
fn smart_ban_blames_only_the_sender_of_the_bad_block() {
    let (m, data) = torrent();
    let dir = TempDir::new("smartban");
    let st = Storage::open(&m, &dir.0, false).unwrap();
    let mut p = Pieces::new(m.geometry());
    let b = BLOCK as usize;
    let good = data[..m.piece_length as usize].to_vec();
    let mut bad = good.clone();
    bad[b + 3] ^= 0x55;
    p.store(0, 0, &bad[..b], 5);
    p.store(0, BLOCK, &bad[b..2 * b], 6);
    p.store(0, 2 * BLOCK, &bad[2 * b..], 5);
    let done = hash_and_write(&st, p.job(0, m.pieces[0]).unwrap());
    assert_eq!(p.verdict(done), Verdict::Failed { index: 0, strike: None });
    for (k, chunk) in good.chunks(b).enumerate() {
        p.store(0, k as u32 * BLOCK, chunk, 5);
    }
    let j = p.job(0, m.pieces[0]).unwrap();
    assert!(j.blocks_if_ok, "the evidence waits for a good copy");
    let done = hash_and_write(&st, j);
    assert_eq!(p.verdict(done), Verdict::Verified { index: 0, liars: vec![6] });
    assert!(p.suspects.is_empty());
    assert_eq!(std::fs::read(dir.0.join("d.bin")).unwrap()[..good.len()], good[..]);
}

#[test]
fn verified_pieces_are_written_and_bad_ones_are_not() {
    let dir = TempDir::new("disk");
    let (m, data) = torrent();
    let st = Arc::new(Storage::open(&m, &dir.0, false).unwrap());
    let (tx, rx, h) = spawn_disk(Arc::clone(&st), queue_len(m.geometry().piece_length)).unwrap();
    let mut bad = job(&m, &data, 0, false, true);
    bad.data[BLOCK as usize + 1] ^= 1;
    tx.send(bad).unwrap();
    tx.send(job(&m, &data, 1, false, true)).unwrap();
    tx.send(job(&m, &data, 0, true, false)).unwrap();
    drop(tx);
    h.join().unwrap();
    let got: Vec<Done> = rx.iter().collect();
    assert_eq!(got.len(), 3);
    let good0: Vec<[u8; 20]> =
        data[..m.piece_length as usize].chunks(BLOCK as usize).map(sha1).collect();
    match &got[0] {
        Done::Failed { index: 0, blocks: Some(b) } => {
            assert_eq!(b.len(), 3);
            assert_eq!(b[0], good0[0]);
            assert_ne!(b[1], good0[1], "the flipped byte is in block 1");
            assert_eq!(b[2], good0[2]);
        }
        _ => panic!("piece 0 with a flipped byte must fail"),
    }
    assert!(matches!(got[1], Done::Verified { index: 1, blocks: None }));
    match &got[2] {
        Done::Verified { index: 0, blocks: Some(b) } => assert_eq!(*b, good0),
        _ => panic!("piece 0 must verify"),
    }
    assert_eq!(std::fs::read(dir.0.join("d.bin")).unwrap(), data);
}

#[test]
fn a_failed_write_is_reported_not_lost() {
    let dir = TempDir::new("disk-ro");
    let (m, data) = torrent();
    Storage::open(&m, &dir.0, false).unwrap();
    let ro = Storage::open(&m, &dir.0, true).unwrap();
    match hash_and_write(&ro, job(&m, &data, 1, false, false)) {
        Done::WriteError { index: 1, error } => {
            assert!(error.contains("read-only"), "{}", error)
        }
        _ => panic!("a read-only storage cannot take a write"),
    }
    // a bad piece never reaches the disk, so it fails the hash, not the write
    let mut bad = job(&m, &data, 1, false, false);
    bad.data[0] ^= 1;
    assert!(matches!(hash_and_write(&ro, bad), Done::Failed { index: 1, blocks: None }));
}
