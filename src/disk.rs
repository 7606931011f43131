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
