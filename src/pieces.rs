//! Pieces, from the first block to the verdict (BEP 3 "pieces"; libtorrent's smart ban):
//! the torrent's geometry and block size, the buffers that assemble a piece in memory,
//! the disk thread that hashes each complete piece and writes it only if it verifies, and
//! what a verdict means for the peers that sent the blocks.
//!
//! The chooser owns a [`Pieces`]; the disk thread owns nothing but the jobs it is sent.
//! Nothing unverified ever reaches the disk, and a piece counts as ours only once the disk
//! thread reports it hashed *and* written.

use crate::sha1::sha1;
use crate::storage::Storage;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The block size we request (the de-facto standard, BEP 3 "request").
pub const BLOCK: u32 = 16384;

/// One block of one piece, as requests, cancels and uploads name it (BEP 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

/// The shape of a torrent: how its bytes are cut into pieces and blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub piece_length: u32,
    pub total_length: u64,
    pub num_pieces: u32,
}

impl Geometry {
    /// Length of piece `index`: `piece_length`, or the remainder for the last piece; 0 for
    /// an index out of range, so a bad index never passes a bounds check by accident.
    pub fn piece_len(&self, index: u32) -> u32 {
        if index >= self.num_pieces {
            return 0;
        }
        let start = u64::from(index) * u64::from(self.piece_length);
        self.total_length.saturating_sub(start).min(u64::from(self.piece_length)) as u32
    }

    pub fn blocks(&self, index: u32) -> u32 {
        (self.piece_len(index) + BLOCK - 1) / BLOCK
    }

    /// Block `b` of piece `index`.
    pub fn block(&self, index: u32, b: u32) -> Block {
        let begin = b * BLOCK;
        let length = (self.piece_len(index) - begin).min(BLOCK);
        Block { index, begin, length }
    }

    /// Byte offset of (`index`, `begin`) in the torrent's stream.
    pub fn offset(&self, index: u32, begin: u32) -> u64 {
        u64::from(index) * u64::from(self.piece_length) + u64::from(begin)
    }
}

/// (sender, SHA-1) of every block of one assembled piece, in block order.
type BlockHashes = Vec<(u64, [u8; 20])>;

/// Failed multi-sender pieces whose block hashes we keep until the piece verifies.
const MAX_SUSPECT_PIECES: usize = 256;

/// One complete piece for the disk thread.
#[derive(Debug)]
pub struct Job {
    pub index: u32,
    pub data: Vec<u8>,
    pub expected: [u8; 20],
    /// Return every block's SHA-1 when the piece verifies (it failed before, and the good
    /// blocks now show who sent the bad ones), or when it fails with several senders.
    pub blocks_if_ok: bool,
    pub blocks_if_bad: bool,
}

/// The disk thread's answer to one job.
#[derive(Debug)]
pub enum Done {
    /// Hash matched and the piece is on disk.
    Verified { index: u32, blocks: Option<Vec<[u8; 20]>> },
    /// Hash mismatch; nothing was written.
    Failed { index: u32, blocks: Option<Vec<[u8; 20]>> },
    /// Hash matched but the write failed; `error` is one line naming the file.
    WriteError { index: u32, error: String },
}

/// What a verdict means for the chooser.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// The piece is ours; `liars` sent blocks that differed in an earlier failed attempt.
    Verified { index: u32, liars: Vec<u64> },
    /// The piece is missing again. `strike` is its only sender, if it had one; with
    /// several senders nobody is blamed until the piece verifies (smart ban).
    Failed { index: u32, strike: Option<u64> },
    /// The piece verified but could not be written; `error` names the file.
    WriteError { index: u32, error: String },
}

/// Assembly buffers, pieces at the disk thread, and the evidence of failed pieces.
pub struct Pieces {
    geo: Geometry,
    /// Pieces being assembled: their bytes and the sender of each block.
    buffers: HashMap<u32, (Vec<u8>, Vec<u64>)>,
    /// Pieces at the disk thread: the sender of each block, for the verdict.
    verifying: HashMap<u32, Vec<u64>>,
    /// Per failed multi-sender piece, per failed attempt: (sender, SHA-1) of each block.
    suspects: HashMap<u32, Vec<BlockHashes>>,
}

impl Pieces {
    pub fn new(geo: Geometry) -> Pieces {
        Pieces { geo, buffers: HashMap::new(), verifying: HashMap::new(), suspects: HashMap::new() }
    }

    /// Copy a block the picker accepted into its piece's buffer.
    pub fn store(&mut self, index: u32, begin: u32, data: &[u8], from: u64) {
        let geo = self.geo;
        let (buf, senders) = self.buffers.entry(index).or_insert_with(|| {
            (vec![0; geo.piece_len(index) as usize], vec![0; geo.blocks(index) as usize])
        });
        let at = begin as usize;
        if let Some(dst) = buf.get_mut(at..at + data.len()) {
            dst.copy_from_slice(data);
            senders[at / BLOCK as usize] = from;
        }
    }

    /// The job for a piece whose every block is in (the picker says so).
    pub fn job(&mut self, index: u32, expected: [u8; 20]) -> Option<Job> {
        let (data, from) = self.buffers.remove(&index)?;
        let blocks_if_ok = self.suspects.contains_key(&index);
        let blocks_if_bad = from.iter().any(|&s| s != from[0]);
        self.verifying.insert(index, from);
        Some(Job { index, data, expected, blocks_if_ok, blocks_if_bad })
    }

    /// Read the disk thread's answer; record the evidence of a multi-sender failure and
    /// name the liars once the piece verifies.
    pub fn verdict(&mut self, done: Done) -> Verdict {
        match done {
            Done::Failed { index, blocks } => {
                let from = self.verifying.remove(&index).unwrap_or_default();
                let single = from.first().copied().filter(|&s| from.iter().all(|&o| o == s));
                if let (None, Some(hashes)) = (single, blocks) {
                    if self.suspects.len() < MAX_SUSPECT_PIECES {
                        let attempt = from.iter().copied().zip(hashes).collect();
                        self.suspects.entry(index).or_default().push(attempt);
                    }
                }
                Verdict::Failed { index, strike: single }
            }
            Done::WriteError { index, error } => {
                self.verifying.remove(&index);
                Verdict::WriteError { index, error }
            }
            Done::Verified { index, blocks } => {
                self.verifying.remove(&index);
                let mut liars = Vec::new();
                if let (Some(good), Some(attempts)) = (blocks, self.suspects.remove(&index)) {
                    for attempt in attempts {
                        let differs = attempt.iter().zip(&good).filter(|((_, h), g)| h != *g);
                        liars.extend(differs.map(|((sender, _), _)| *sender));
                    }
                }
                Verdict::Verified { index, liars }
            }
        }
    }
}

/// Jobs that may wait for the disk thread. The chooser blocks when the queue is full, which
/// holds up the readers and, through TCP, the senders: memory stays bounded (about 16 MiB
/// of queued pieces) even when the disk is slower than the network.
pub fn queue_len(piece_length: u32) -> usize {
    ((16 << 20) / piece_length.max(1)).clamp(2, 64) as usize
}

/// Start the disk thread. It ends when the job sender is dropped, after finishing every
/// job already queued, so no verified piece is lost on shutdown. Results go to an
/// unbounded channel: the disk thread must never wait for the chooser, which may be
/// waiting for it. One thread, because on two cores a second hasher would only compete
/// with the readers and the chooser.
pub fn spawn_disk(
    storage: Arc<Storage>,
    queue: usize,
) -> std::io::Result<(Sender<Job>, Receiver<Done>, JoinHandle<()>)> {
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(queue);
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let h = std::thread::Builder::new().name("disk".into()).spawn(move || {
        for job in job_rx {
            if done_tx.send(hash_and_write(&storage, job)).is_err() {
                return;
            }
        }
    })?;
    Ok((job_tx, done_rx, h))
}

/// Every block's SHA-1, only when asked for (it costs a second pass over the piece).
fn block_hashes(want: bool, data: &[u8]) -> Option<Vec<[u8; 20]>> {
    want.then(|| data.chunks(BLOCK as usize).map(sha1).collect())
}

/// Hash one piece and, if it verifies, write it.
pub fn hash_and_write(storage: &Storage, job: Job) -> Done {
    let index = job.index;
    if sha1(&job.data) != job.expected {
        return Done::Failed { index, blocks: block_hashes(job.blocks_if_bad, &job.data) };
    }
    if let Err(e) = storage.write_piece(index, &job.data) {
        return Done::WriteError { index, error: e.to_string() };
    }
    Done::Verified { index, blocks: block_hashes(job.blocks_if_ok, &job.data) }
}

#[cfg(test)]
mod tests;
