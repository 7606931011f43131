//! The disk thread: hashes each assembled piece and writes the ones that verify, so the
//! chooser spends its time on the wire and not on SHA-1 and `pwrite` (design.md: moved off
//! the chooser once the bulk benchmark showed it was the bottleneck).
//!
//! It owns no torrent state. The chooser sends a [`Job`] per complete piece and hears back
//! one [`Done`] per job, in order; a piece counts as ours only when `Verified` comes back,
//! which means hashed *and* written. One thread, because on two cores a second hasher would
//! only compete with the readers and the chooser.

use crate::peer::BLOCK;
use crate::sha1::sha1;
use crate::storage::Storage;
use crossbeam_channel::{Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One complete piece to check and store.
pub struct Job {
    pub index: u32,
    pub data: Vec<u8>,
    pub expected: [u8; 20],
    /// Return the SHA-1 of every block when the piece verifies (it failed before, and the
    /// good blocks now show who sent the bad ones).
    pub blocks_if_ok: bool,
    /// Return them when it fails (several peers sent blocks; keep their hashes as
    /// evidence for when it verifies).
    pub blocks_if_bad: bool,
}

/// The outcome of one job.
pub enum Done {
    /// Hash matched and the piece is on disk.
    Verified {
        index: u32,
        blocks: Option<Vec<[u8; 20]>>,
    },
    /// Hash mismatch; nothing was written.
    Failed {
        index: u32,
        blocks: Option<Vec<[u8; 20]>>,
    },
    /// Hash matched but the write failed; `error` is one line naming the file.
    WriteError { index: u32, error: String },
}

/// Jobs that may wait for the disk thread. The chooser blocks when the queue is full, which
/// holds up the readers and, through TCP, the senders: memory stays bounded (about 16 MiB
/// of queued pieces) even when the disk is slower than the network.
pub fn queue_len(piece_length: u64) -> usize {
    ((16 << 20) / piece_length.max(1)).clamp(2, 64) as usize
}

/// Start the thread. It ends when the job sender is dropped, after finishing every job
/// already queued, so no verified piece is dropped on shutdown. Results go to an unbounded
/// channel: the disk thread must never wait for the chooser, which may be waiting for it.
pub fn spawn(
    storage: Arc<Storage>,
    queue: usize,
) -> std::io::Result<(Sender<Job>, Receiver<Done>, JoinHandle<()>)> {
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(queue);
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let h = std::thread::Builder::new()
        .name("disk".into())
        .spawn(move || {
            for job in job_rx {
                if done_tx.send(run(&storage, job)).is_err() {
                    return;
                }
            }
        })?;
    Ok((job_tx, done_rx, h))
}

fn block_hashes(data: &[u8]) -> Vec<[u8; 20]> {
    data.chunks(BLOCK as usize).map(sha1).collect()
}

/// Hash one piece and, if it verifies, write it.
pub fn run(storage: &Storage, job: Job) -> Done {
    let index = job.index;
    if sha1(&job.data) != job.expected {
        return Done::Failed {
            index,
            blocks: if job.blocks_if_bad {
                Some(block_hashes(&job.data))
            } else {
                None
            },
        };
    }
    if let Err(e) = storage.write_piece(index, &job.data) {
        return Done::WriteError {
            index,
            error: e.to_string(),
        };
    }
    Done::Verified {
        index,
        blocks: if job.blocks_if_ok {
            Some(block_hashes(&job.data))
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
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
    fn verified_pieces_are_written_and_bad_ones_are_not() {
        let dir = TempDir::new("disk");
        let (m, data) = torrent();
        let st = Arc::new(Storage::open(&m, &dir.0, false).unwrap());
        let (tx, rx, h) = spawn(Arc::clone(&st), queue_len(m.piece_length)).unwrap();
        let mut bad = job(&m, &data, 0, false, true);
        bad.data[BLOCK as usize + 1] ^= 1;
        tx.send(bad).unwrap();
        tx.send(job(&m, &data, 1, false, true)).unwrap();
        tx.send(job(&m, &data, 0, true, false)).unwrap();
        drop(tx);
        h.join().unwrap();
        let got: Vec<Done> = rx.iter().collect();
        assert_eq!(got.len(), 3);
        let good0 = block_hashes(&data[..m.piece_length as usize]);
        match &got[0] {
            Done::Failed {
                index: 0,
                blocks: Some(b),
            } => {
                assert_eq!(b.len(), 3);
                assert_eq!(b[0], good0[0]);
                assert_ne!(b[1], good0[1], "the flipped byte is in block 1");
                assert_eq!(b[2], good0[2]);
            }
            _ => panic!("piece 0 with a flipped byte must fail"),
        }
        assert!(matches!(
            got[1],
            Done::Verified {
                index: 1,
                blocks: None
            }
        ));
        match &got[2] {
            Done::Verified {
                index: 0,
                blocks: Some(b),
            } => assert_eq!(*b, good0),
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
        match run(&ro, job(&m, &data, 1, false, false)) {
            Done::WriteError { index: 1, error } => {
                assert!(error.contains("read-only"), "{}", error)
            }
            _ => panic!("a read-only storage cannot take a write"),
        }
        // a bad piece never reaches the disk, so it fails the hash, not the write
        let mut bad = job(&m, &data, 1, false, false);
        bad.data[0] ^= 1;
        assert!(matches!(
            run(&ro, bad),
            Done::Failed {
                index: 1,
                blocks: None
            }
        ));
    }
}
