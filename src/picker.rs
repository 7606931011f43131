//! Piece picker: which 16 KiB blocks to request from which peer (BEP 3; Cohen 2003 §2.3;
//! mainline `PiecePicker.py`). Owned by the chooser; no sockets, no clocks, no bytes (the
//! blocks themselves are assembled in `pieces.rs`).
//!
//! Policy, in order:
//! 1. strict priority: blocks of pieces already started come first, so pieces complete
//!    (and can be shared) as early as possible;
//! 2. random first: until `RANDOM_FIRST` pieces are complete, a new piece is drawn at random
//!    among those the peer has, so a newcomer quickly has something to trade;
//! 3. rarest first: afterwards the new piece is the one fewest connected peers have, among
//!    the pieces *this peer has*, with a random tie-break (downpour looked only at the
//!    global rarest class and declared endgame when it ran out: docs/downpour.md, bug 9);
//! 4. endgame: only when every missing block is already requested, a peer may ask for
//!    blocks that others are fetching; the first copy to arrive wins and the chooser cancels
//!    the rest.
//!
//! A piece that failed its hash with blocks from several peers is fetched again from a
//! single peer, so its next verdict says who lied (the smart ban in `pieces.rs`).

use crate::pieces::{Block, Geometry, BLOCK};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// mainline `rarest_first_cutoff`.
const RANDOM_FIRST: u32 = 4;

/// How new pieces are chosen (a strategy hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Random first, then rarest first (every honest client).
    RarestFirst,
    /// Any piece the peer has, at random, always (BitThief takes what it can get).
    Random,
}

/// Where one block of a started piece stands.
#[derive(Clone, Debug, PartialEq)]
enum Slot {
    Open,
    Asked(Vec<u64>),
    Got,
}

struct Partial {
    blocks: Vec<Slot>,
    /// For a piece that already failed its hash: the one peer allowed to fetch it now.
    owner: Option<u64>,
}

impl Partial {
    fn complete(&self) -> bool {
        self.blocks.iter().all(|b| *b == Slot::Got)
    }
}

#[derive(Debug, PartialEq)]
pub enum BlockResult {
    /// We did not ask for it, already have it, or it does not line up with our blocks.
    NotWanted,
    /// Take it; `cancel` lists the other peers that had been asked for the same block, and
    /// `complete` says the piece now has every block.
    Stored { cancel: Vec<u64>, complete: bool },
}

pub struct Picker {
    geo: Geometry,
    order: Order,
    have: Vec<bool>,
    avail: Vec<u32>,
    /// Requested at least once and not yet verified (also while at the disk thread).
    started: Vec<bool>,
    partial: BTreeMap<u32, Partial>,
    /// Pieces this client is responsible for (all, except for a BitSybil identity).
    wanted: Vec<bool>,
    /// Bytes of wanted pieces not yet verified (the tracker's `left`).
    left: u64,
    suspect: Vec<bool>,
}

impl Picker {
    pub fn new(geo: Geometry, order: Order) -> Picker {
        let n = geo.num_pieces as usize;
        Picker {
            geo,
            order,
            have: vec![false; n],
            avail: vec![0; n],
            started: vec![false; n],
            partial: BTreeMap::new(),
            wanted: vec![true; n],
            left: geo.total_length,
            suspect: vec![false; n],
        }
    }

    pub fn num_pieces(&self) -> u32 {
        self.geo.num_pieces
    }

    pub fn have(&self, index: u32) -> bool {
        self.have.get(index as usize).copied().unwrap_or(false)
    }

    pub fn have_count(&self) -> u32 {
        self.have.iter().filter(|&&h| h).count() as u32
    }

    pub fn have_bits(&self) -> &[bool] {
        &self.have
    }

    /// Every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        !(0..self.have.len()).any(|i| self.missing(i))
    }

    /// A wanted piece we do not have.
    fn missing(&self, i: usize) -> bool {
        self.wanted[i] && !self.have[i]
    }

    /// Fetch only pieces `start..end` (a BitSybil identity's share); before any request.
    pub fn restrict(&mut self, start: u32, end: u32) {
        for (i, w) in self.wanted.iter_mut().enumerate() {
            *w = (start..end).contains(&(i as u32));
        }
        self.left = (0..self.num_pieces())
            .filter(|&i| self.missing(i as usize))
            .map(|i| u64::from(self.geo.piece_len(i)))
            .sum();
    }

    pub fn wanted(&self, index: u32) -> bool {
        self.wanted.get(index as usize).copied().unwrap_or(false)
    }

    pub fn left_bytes(&self) -> u64 {
        self.left
    }

    pub fn availability(&self, index: u32) -> u32 {
        self.avail[index as usize]
    }

    /// Record a verified piece (at start-up from the resume check, or after hashing).
    pub fn set_have(&mut self, index: u32) {
        let i = index as usize;
        if self.have[i] {
            return;
        }
        if self.wanted[i] {
            self.left -= u64::from(self.geo.piece_len(index));
        }
        self.partial.remove(&index);
        self.started[i] = false;
        self.suspect[i] = false;
        self.have[i] = true;
    }

    pub fn peer_removed(&mut self, has: &[bool]) {
        for (a, &h) in self.avail.iter_mut().zip(has) {
            *a -= u32::from(h);
        }
    }

    pub fn peer_has(&mut self, index: u32) {
        self.avail[index as usize] += 1;
    }

    /// Does a peer with this bitfield have anything we lack?
    pub fn interesting(&self, has: &[bool]) -> bool {
        has.iter().zip(&self.have).zip(&self.wanted).any(|((&h, &mine), &w)| h && !mine && w)
    }

    /// Every missing block is requested: no open block, no missing piece unstarted.
    fn in_endgame(&self) -> bool {
        let open = self.partial.values().any(|p| p.blocks.contains(&Slot::Open));
        let unstarted = (0..self.have.len()).any(|i| self.missing(i) && !self.started[i]);
        !open && !unstarted && !self.is_complete()
    }

    /// Up to `max` new requests for `peer`, whose bitfield is `has`.
    pub fn pick(&mut self, peer: u64, has: &[bool], max: usize, rng: &mut Rng) -> Vec<Block> {
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        // 1. Strict priority: finish what is started.
        let started: Vec<u32> = self.partial.keys().copied().filter(|&i| has[i as usize]).collect();
        for index in started {
            self.take_open(peer, index, max, &mut out);
            if out.len() >= max {
                return out;
            }
        }
        // 2–3. Start new pieces.
        while out.len() < max {
            let index = match self.choose_new(has, rng) {
                Some(i) => i,
                None => break,
            };
            let blocks = vec![Slot::Open; self.geo.blocks(index) as usize];
            self.partial.insert(index, Partial { blocks, owner: None });
            self.started[index as usize] = true;
            self.take_open(peer, index, max, &mut out);
        }
        // 4. Endgame: everything missing is requested somewhere; duplicate requests.
        if out.len() < max && self.in_endgame() {
            let geo = self.geo;
            for (&index, p) in self.partial.iter_mut() {
                if !has[index as usize] || (self.suspect[index as usize] && p.owner != Some(peer)) {
                    continue;
                }
                for (b, blk) in p.blocks.iter_mut().enumerate() {
                    if let Slot::Asked(ref mut who) = blk {
                        if !who.contains(&peer) {
                            who.push(peer);
                            out.push(geo.block(index, b as u32));
                            if out.len() >= max {
                                return out;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    fn take_open(&mut self, peer: u64, index: u32, max: usize, out: &mut Vec<Block>) {
        let suspect = self.suspect[index as usize];
        if let Some(p) = self.partial.get_mut(&index) {
            if suspect {
                match p.owner {
                    Some(o) if o != peer => return,
                    _ => p.owner = Some(peer),
                }
            }
            for (b, blk) in p.blocks.iter_mut().enumerate() {
                if out.len() >= max {
                    break;
                }
                if *blk == Slot::Open {
                    *blk = Slot::Asked(vec![peer]);
                    out.push(self.geo.block(index, b as u32));
                }
            }
        }
    }

    fn choose_new(&self, has: &[bool], rng: &mut Rng) -> Option<u32> {
        let random = self.order == Order::Random || self.have_count() < RANDOM_FIRST;
        let (mut best, mut best_avail, mut ties) = (None, u32::MAX, 0u64);
        for (i, &h) in has.iter().enumerate().take(self.have.len()) {
            if !h || self.have[i] || self.started[i] || !self.wanted[i] {
                continue;
            }
            let a = if random { 0 } else { self.avail[i] };
            if a < best_avail {
                (best, best_avail, ties) = (Some(i as u32), a, 1);
            } else if a == best_avail {
                // reservoir sampling: each tied piece ends up chosen with equal chance
                ties += 1;
                if rng.below(ties) == 0 {
                    best = Some(i as u32);
                }
            }
        }
        best
    }

    /// Block `got` (its length as it arrived) came from `peer`: is it one we wait for?
    pub fn on_block(&mut self, peer: u64, got: Block) -> BlockResult {
        let geo = self.geo;
        let p = match self.partial.get_mut(&got.index) {
            Some(p) => p,
            None => return BlockResult::NotWanted,
        };
        let b = (got.begin / BLOCK) as usize;
        if b >= p.blocks.len() || geo.block(got.index, b as u32) != got {
            return BlockResult::NotWanted;
        }
        let cancel = match std::mem::replace(&mut p.blocks[b], Slot::Got) {
            Slot::Got => return BlockResult::NotWanted,
            Slot::Open => Vec::new(),
            Slot::Asked(who) => who.into_iter().filter(|&w| w != peer).collect(),
        };
        BlockResult::Stored { cancel, complete: p.complete() }
    }

    /// The piece has every block and goes to be hashed: it is no longer open to requests,
    /// and stays started until `set_have` or `hash_failed`.
    pub fn assembled(&mut self, index: u32) -> bool {
        let done = self.partial.get(&index).map_or(false, Partial::complete);
        if done {
            self.partial.remove(&index);
        }
        done
    }

    /// The piece did not verify: it is missing again, from scratch.
    pub fn hash_failed(&mut self, index: u32) {
        let i = index as usize;
        self.suspect[i] = !self.have[i];
        self.partial.remove(&index);
        self.started[i] = false;
    }

    /// A request to `peer` is void (choked, cancelled, timed out, disconnected): the block
    /// goes back to the pool unless another peer is fetching it too.
    pub fn release(&mut self, peer: u64, r: Block) {
        if let Some(p) = self.partial.get_mut(&r.index) {
            let b = (r.begin / BLOCK) as usize;
            if let Some(Slot::Asked(who)) = p.blocks.get_mut(b) {
                who.retain(|&w| w != peer);
                if who.is_empty() {
                    p.blocks[b] = Slot::Open;
                }
            }
            // A suspect piece whose one fetcher stopped (choked us, left, stalled) starts
            // over for the next peer; otherwise it would wait for that peer forever.
            let asked_by_owner =
                p.blocks.iter().any(|blk| matches!(blk, Slot::Asked(w) if w.contains(&peer)));
            if p.owner == Some(peer) && !asked_by_owner {
                for blk in p.blocks.iter_mut().filter(|b| **b == Slot::Got) {
                    *blk = Slot::Open;
                }
                p.owner = None;
            }
        }
    }
}

#[cfg(test)]
mod tests;
