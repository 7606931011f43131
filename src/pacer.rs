//! The upload pacer: one thread per capped torrent that hands out upload tokens, so only
//! the writer that will send wakes (docs/design.md, "Rate limits").
//!
//! A writer with blocks queued asks the pacer and waits on its command channel; the pacer
//! keeps the torrent's upload bucket and every peer's own bucket, and when both allow it
//! grants the next blocks to one waiting writer. Among the writers that may send it picks by
//! stride scheduling over the peers' weights (Waldspurger and Weihl 1995): each grant
//! advances the peer's pass by bytes / weight and the smallest pass goes next, so backlogged
//! peers share the capacity in proportion to their weights, and capacity a peer cannot use
//! goes to the others (PropShare's shares are weights; everyone else weighs 1). A writer
//! asks for everything it has queued and a grant covers up to a fifth of a (nominal)
//! second of the slower of the two rates, at least one block: at 2,000 KiB/s a writer wakes
//! once per 25 blocks, not per block, and below 160 KiB/s a grant is one block, as before. Without an
//! upload cap there is nothing to pace: writers then send at once and never ask.

use crate::bell::{Rx, Tx};
use crate::conn::Cmd;
use crate::meter::{TokenBucket, MIN_BURST};
use crate::pieces::BLOCK;
use crossbeam_channel::RecvTimeoutError;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the pacer hears.
pub enum Pace {
    /// A writer came up; grants go to it on `cmd`.
    Join { id: u64, cmd: Tx<Cmd> },
    /// Writer `id` has blocks of `len` bytes in all to send.
    Ask { id: u64, len: u64 },
    /// Peer `id`'s own cap in bytes/s (`None`: none) and its weight (> 0).
    Share { id: u64, cap: Option<f64>, weight: f64 },
    /// Writer `id` could not use its last grant of `len` bytes (the block was cancelled).
    Unused { id: u64, len: u64 },
    /// The writer is gone.
    Leave { id: u64 },
}

struct Peer {
    cap: Option<TokenBucket>,
    weight: f64,
    /// Stride scheduling's virtual time of this peer.
    pass: f64,
    /// Bytes of the blocks it waits to send, if it waits.
    asking: Option<u64>,
}

/// The pacer's state and decisions, apart from its thread and clock.
pub struct Uplink {
    bucket: TokenBucket,
    /// Seconds of its rate a peer's own bucket holds (at least one block message).
    burst_secs: f64,
    peers: BTreeMap<u64, Peer>,
    /// The pass at which the last grant started: a peer that starts waiting again is
    /// brought up to it, so time spent idle earns no credit (start-time fair queuing).
    vtime: f64,
}

impl Uplink {
    /// The torrent's upload bucket: `rate` bytes/s, `burst` bytes.
    pub fn new(rate: f64, burst: f64, burst_secs: f64, now: Instant) -> Uplink {
        let bucket = TokenBucket::new(rate, burst, now);
        Uplink { bucket, burst_secs, peers: BTreeMap::new(), vtime: 0.0 }
    }

    pub fn join(&mut self, id: u64) {
        self.peers.insert(id, Peer { cap: None, weight: 1.0, pass: self.vtime, asking: None });
    }

    pub fn leave(&mut self, id: u64) {
        self.peers.remove(&id);
    }

    pub fn ask(&mut self, id: u64, len: u64) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.pass = p.pass.max(self.vtime);
            p.asking = Some(len);
        }
    }

    pub fn share(&mut self, id: u64, cap: Option<f64>, weight: f64, now: Instant) {
        let burst = |r: f64| (r * self.burst_secs).max(MIN_BURST);
        if let Some(p) = self.peers.get_mut(&id) {
            // A new rate keeps the bucket's debt or credit, so re-capping every round does
            // not hand out a fresh burst each time.
            p.cap = match (cap, p.cap.take()) {
                (Some(r), Some(mut b)) => {
                    b.set_rate(r, burst(r), now);
                    Some(b)
                }
                (Some(r), None) => Some(TokenBucket::new(r, burst(r), now)),
                (None, _) => None,
            };
            p.weight = if weight > 0.0 && weight.is_finite() { weight } else { 1.0 };
        }
    }

    pub fn unused(&mut self, id: u64, len: u64, now: Instant) {
        self.bucket.refund(now, len);
        if let Some(p) = self.peers.get_mut(&id) {
            if let Some(b) = p.cap.as_mut() {
                b.refund(now, len);
            }
            p.pass -= len as f64 / p.weight;
        }
    }

    /// The next grant the buckets allow now: (peer, bytes), charged to both buckets.
    /// Whole blocks, unless what was asked for ends in the torrent's short last block.
    pub fn grant(&mut self, now: Instant) -> Option<(u64, u64)> {
        if !self.bucket.wait_time(now).is_zero() {
            return None;
        }
        let mut best: Option<(u64, f64)> = None;
        for (&id, p) in self.peers.iter_mut() {
            let free = p.cap.as_mut().map_or(true, |b| b.wait_time(now).is_zero());
            if p.asking.is_some() && free && best.map_or(true, |(_, pass)| p.pass < pass) {
                best = Some((id, p.pass));
            }
        }
        let blocks = |rate: f64| (rate * self.burst_secs / 5.0 / f64::from(BLOCK)).max(1.0) as u64;
        let p = self.peers.get_mut(&best?.0)?;
        let most =
            blocks(self.bucket.rate).min(p.cap.as_ref().map_or(u64::MAX, |b| blocks(b.rate)));
        let len = p.asking.take()?.min(most * u64::from(BLOCK));
        self.bucket.take(now, len);
        if let Some(b) = p.cap.as_mut() {
            b.take(now, len);
        }
        self.vtime = p.pass;
        p.pass += len as f64 / p.weight;
        best.map(|(id, _)| (id, len))
    }

    /// How long until a waiting peer may be granted; `None` when nobody waits.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        let asking = self.peers.values_mut().filter(|p| p.asking.is_some());
        let waits = asking.map(|p| p.cap.as_mut().map_or(Duration::ZERO, |b| b.wait_time(now)));
        waits.min().map(|s| s.max(self.bucket.wait_time(now)))
    }
}

/// Run the pacer until every sender of `rx` is gone.
pub fn run(rx: Rx<Pace>, mut up: Uplink) {
    let mut writers: BTreeMap<u64, Tx<Cmd>> = BTreeMap::new();
    loop {
        let now = Instant::now();
        while let Some((id, len)) = up.grant(now) {
            if writers.get(&id).map_or(true, |w| w.send(Cmd::Grant(len)).is_err()) {
                up.leave(id);
            }
        }
        match rx.recv_timeout(up.wait(now)) {
            Ok(Pace::Join { id, cmd }) => {
                writers.insert(id, cmd);
                up.join(id);
            }
            Ok(Pace::Ask { id, len }) => up.ask(id, len),
            Ok(Pace::Share { id, cap, weight }) => up.share(id, cap, weight, Instant::now()),
            Ok(Pace::Unused { id, len }) => up.unused(id, len, Instant::now()),
            Ok(Pace::Leave { id }) => {
                writers.remove(&id);
                up.leave(id);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests;
