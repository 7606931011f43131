//! Piece picker: which 16 KiB blocks to request from which peer (BEP 3; Cohen 2003 §2.3;
//! mainline `PiecePicker.py`). Owned by the chooser thread; no sockets, no clocks.
//!
//! Policy, in order:
//! 1. strict priority: blocks of pieces already started come first, so pieces complete
//!    (and can be shared) as early as possible;
//! 2. random first: until `RANDOM_FIRST` pieces are complete, a new piece is drawn at random
//!    among those the peer has, so a newcomer quickly has something to trade;
//! 3. rarest first: afterwards the new piece is the one fewest connected peers have, among
//!    the pieces *this peer has*, with a random tie-break (downpour looked only at the
//!    global rarest class, and declared endgame when that class was exhausted);
//! 4. endgame: only when every missing block is already requested, a peer may ask for
//!    blocks that others are fetching; the first copy to arrive wins and the chooser cancels
//!    the rest.
//!
//! Blocks are kept in memory until their piece is complete and hashed, so nothing that
//! failed verification ever reaches the disk.

use crate::rng::Rng;
use std::collections::BTreeMap;

pub const BLOCK: u32 = 16384;
/// mainline `rarest_first_cutoff`.
pub const RANDOM_FIRST: u32 = 4;

#[derive(Clone, Debug, PartialEq)]
enum Block {
    Open,
    Asked(Vec<u64>),
    Got,
}

struct Partial {
    blocks: Vec<Block>,
    data: Vec<u8>,
    got: usize,
    senders: Vec<u64>,
    /// Who sent each block, so a failed hash can be pinned on the right peer.
    from: Vec<u64>,
    /// For a piece that already failed its hash: the one peer allowed to fetch it now.
    owner: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Req {
    pub index: u32,
    pub begin: u32,
    pub length: u32,
}

#[derive(Debug, PartialEq)]
pub enum BlockResult {
    /// We did not ask for it, already have it, or it does not line up with our blocks.
    NotWanted,
    /// Stored; `cancel` lists the other peers that had been asked for the same block.
    Stored { cancel: Vec<u64>, complete: bool },
}

/// A piece whose blocks have all arrived, ready to be hashed.
pub struct Assembled {
    pub index: u32,
    pub data: Vec<u8>,
    pub senders: Vec<u64>,
    /// The sender of each block, in block order.
    pub from: Vec<u64>,
}

pub struct Picker {
    piece_length: u32,
    total_length: u64,
    have: Vec<bool>,
    have_count: u32,
    avail: Vec<u32>,
    started: Vec<bool>,
    partial: BTreeMap<u32, Partial>,
    /// Missing pieces with no block requested yet.
    unstarted: u32,
    /// Open blocks across all started pieces.
    open_blocks: usize,
    /// Pieces this client is responsible for (all, except for a BitSybil identity).
    wanted: Vec<bool>,
    wanted_count: u32,
    have_wanted: u32,
    /// Pieces that failed a hash check with blocks from several peers. They are fetched
    /// again from one peer only, so the next failure (or success) says who lied.
    suspect: Vec<bool>,
    /// Thief mode: take any block, ignore rarity (BitThief).
    pub any_order: bool,
}

impl Picker {
    pub fn new(num_pieces: u32, piece_length: u32, total_length: u64) -> Picker {
        let n = num_pieces as usize;
        Picker {
            piece_length,
            total_length,
            have: vec![false; n],
            have_count: 0,
            avail: vec![0; n],
            started: vec![false; n],
            partial: BTreeMap::new(),
            unstarted: num_pieces,
            open_blocks: 0,
            wanted: vec![true; n],
            wanted_count: num_pieces,
            have_wanted: 0,
            suspect: vec![false; n],
            any_order: false,
        }
    }

    pub fn num_pieces(&self) -> u32 {
        self.have.len() as u32
    }

    pub fn piece_len(&self, index: u32) -> u32 {
        let start = u64::from(index) * u64::from(self.piece_length);
        (self.total_length - start).min(u64::from(self.piece_length)) as u32
    }

    pub fn have(&self, index: u32) -> bool {
        self.have.get(index as usize).copied().unwrap_or(false)
    }

    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    pub fn have_bits(&self) -> &[bool] {
        &self.have
    }

    /// Every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        self.have_wanted == self.wanted_count
    }

    /// Restrict the pieces we fetch to `start..end` (a BitSybil identity's share). Call
    /// before any piece is started.
    pub fn restrict(&mut self, start: u32, end: u32) {
        for (i, w) in self.wanted.iter_mut().enumerate() {
            *w = (start..end).contains(&(i as u32));
        }
        self.wanted_count = end.saturating_sub(start).min(self.num_pieces());
        self.have_wanted = self
            .have
            .iter()
            .zip(&self.wanted)
            .filter(|(&h, &w)| h && w)
            .count() as u32;
        self.unstarted = self
            .have
            .iter()
            .zip(&self.wanted)
            .zip(&self.started)
            .filter(|((&h, &w), &s)| w && !h && !s)
            .count() as u32;
    }

    pub fn wanted(&self, index: u32) -> bool {
        self.wanted.get(index as usize).copied().unwrap_or(false)
    }

    pub fn left_bytes(&self) -> u64 {
        (0..self.num_pieces())
            .filter(|&i| !self.have[i as usize] && self.wanted[i as usize])
            .map(|i| u64::from(self.piece_len(i)))
            .sum()
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
        if let Some(p) = self.partial.remove(&index) {
            self.open_blocks -= p.blocks.iter().filter(|b| **b == Block::Open).count();
        } else if !self.started[i] && self.wanted[i] {
            self.unstarted -= 1;
        }
        self.started[i] = false;
        self.suspect[i] = false;
        self.have[i] = true;
        self.have_count += 1;
        if self.wanted[i] {
            self.have_wanted += 1;
        }
    }

    pub fn peer_added(&mut self, has: &[bool]) {
        for (a, &h) in self.avail.iter_mut().zip(has) {
            *a += u32::from(h);
        }
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
        has.iter()
            .zip(&self.have)
            .zip(&self.wanted)
            .any(|((&h, &mine), &w)| h && !mine && w)
    }

    pub fn in_endgame(&self) -> bool {
        self.unstarted == 0 && self.open_blocks == 0 && !self.is_complete()
    }

    fn block_count(&self, index: u32) -> usize {
        ((self.piece_len(index) + BLOCK - 1) / BLOCK) as usize
    }

    fn req(&self, index: u32, b: usize) -> Req {
        let begin = b as u32 * BLOCK;
        Req {
            index,
            begin,
            length: (self.piece_len(index) - begin).min(BLOCK),
        }
    }

    /// Up to `max` new requests for `peer`, whose bitfield is `has`.
    pub fn pick(&mut self, peer: u64, has: &[bool], max: usize, rng: &mut Rng) -> Vec<Req> {
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        // 1. Strict priority: finish what is started.
        let started: Vec<u32> = self.partial.keys().copied().collect();
        for index in started {
            if has[index as usize] {
                self.take_open(peer, index, max, &mut out);
                if out.len() >= max {
                    return out;
                }
            }
        }
        // 2–3. Start new pieces.
        while out.len() < max && self.unstarted > 0 {
            let index = match self.choose_new(has, rng) {
                Some(i) => i,
                None => break,
            };
            let n = self.block_count(index);
            self.partial.insert(
                index,
                Partial {
                    blocks: vec![Block::Open; n],
                    data: vec![0; self.piece_len(index) as usize],
                    got: 0,
                    senders: Vec::new(),
                    from: vec![0; n],
                    owner: None,
                },
            );
            self.started[index as usize] = true;
            self.unstarted -= 1;
            self.open_blocks += n;
            self.take_open(peer, index, max, &mut out);
        }
        // 4. Endgame: everything missing is requested somewhere; duplicate requests.
        if out.len() < max && self.in_endgame() {
            for (&index, p) in self.partial.iter_mut() {
                if !has[index as usize] || (self.suspect[index as usize] && p.owner != Some(peer)) {
                    continue;
                }
                for b in 0..p.blocks.len() {
                    if let Block::Asked(ref mut who) = p.blocks[b] {
                        if !who.contains(&peer) {
                            who.push(peer);
                            let begin = b as u32 * BLOCK;
                            let plen = p.data.len() as u32;
                            out.push(Req {
                                index,
                                begin,
                                length: (plen - begin).min(BLOCK),
                            });
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

    fn take_open(&mut self, peer: u64, index: u32, max: usize, out: &mut Vec<Req>) {
        let mut taken = Vec::new();
        let suspect = self.suspect[index as usize];
        if let Some(p) = self.partial.get_mut(&index) {
            if suspect {
                match p.owner {
                    Some(o) if o != peer => return,
                    _ => p.owner = Some(peer),
                }
            }
            for (b, blk) in p.blocks.iter_mut().enumerate() {
                if out.len() + taken.len() >= max {
                    break;
                }
                if *blk == Block::Open {
                    *blk = Block::Asked(vec![peer]);
                    taken.push(b);
                }
            }
        }
        self.open_blocks -= taken.len();
        for b in taken {
            out.push(self.req(index, b));
        }
    }

    fn choose_new(&self, has: &[bool], rng: &mut Rng) -> Option<u32> {
        let random = self.any_order || self.have_count < RANDOM_FIRST;
        let mut best: Option<u32> = None;
        let mut best_avail = u32::MAX;
        let mut ties = 0u64;
        for (i, &h) in has.iter().enumerate().take(self.have.len()) {
            if !h || self.have[i] || self.started[i] || !self.wanted[i] {
                continue;
            }
            let a = if random { 0 } else { self.avail[i] };
            if a < best_avail {
                best_avail = a;
                best = Some(i as u32);
                ties = 1;
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

    /// Store a block that arrived from `peer`.
    pub fn on_block(&mut self, peer: u64, index: u32, begin: u32, data: &[u8]) -> BlockResult {
        let p = match self.partial.get_mut(&index) {
            Some(p) => p,
            None => return BlockResult::NotWanted,
        };
        if begin % BLOCK != 0 {
            return BlockResult::NotWanted;
        }
        let b = (begin / BLOCK) as usize;
        let want_len = (p.data.len() as u32).saturating_sub(begin).min(BLOCK) as usize;
        if b >= p.blocks.len() || data.len() != want_len {
            return BlockResult::NotWanted;
        }
        let cancel = match std::mem::replace(&mut p.blocks[b], Block::Got) {
            Block::Got => return BlockResult::NotWanted,
            Block::Open => {
                self.open_blocks -= 1;
                Vec::new()
            }
            Block::Asked(who) => who.into_iter().filter(|&w| w != peer).collect(),
        };
        p.data[begin as usize..begin as usize + data.len()].copy_from_slice(data);
        p.got += 1;
        p.from[b] = peer;
        if !p.senders.contains(&peer) {
            p.senders.push(peer);
        }
        BlockResult::Stored {
            cancel,
            complete: p.got == p.blocks.len(),
        }
    }

    /// Take a complete piece out for hashing. The caller then calls `set_have` on success
    /// or `hash_failed` on failure.
    pub fn take_assembled(&mut self, index: u32) -> Option<Assembled> {
        let done = self
            .partial
            .get(&index)
            .map_or(false, |p| p.got == p.blocks.len());
        if !done {
            return None;
        }
        let p = self.partial.remove(&index)?;
        Some(Assembled {
            index,
            data: p.data,
            senders: p.senders,
            from: p.from,
        })
    }

    /// The piece did not verify: it is missing again, from scratch.
    pub fn hash_failed(&mut self, index: u32) {
        let i = index as usize;
        self.suspect[i] = !self.have[i];
        if let Some(p) = self.partial.remove(&index) {
            self.open_blocks -= p.blocks.iter().filter(|b| **b == Block::Open).count();
        }
        if !self.have[i] && self.started[i] {
            self.started[i] = false;
            self.unstarted += 1;
        }
    }

    /// A request to `peer` is void (choked, cancelled, timed out, disconnected): the block
    /// goes back to the pool unless another peer is fetching it too.
    pub fn release(&mut self, peer: u64, r: Req) {
        if let Some(p) = self.partial.get_mut(&r.index) {
            let b = (r.begin / BLOCK) as usize;
            if let Some(Block::Asked(who)) = p.blocks.get_mut(b) {
                who.retain(|&w| w != peer);
                if who.is_empty() {
                    p.blocks[b] = Block::Open;
                    self.open_blocks += 1;
                }
            }
            // A suspect piece whose one fetcher stopped (choked us, left, stalled) starts
            // over for the next peer; otherwise it would wait for that peer forever.
            let asked_by_owner = p
                .blocks
                .iter()
                .any(|blk| matches!(blk, Block::Asked(w) if w.contains(&peer)));
            if p.owner == Some(peer) && !asked_by_owner {
                for blk in p.blocks.iter_mut() {
                    if *blk == Block::Got {
                        *blk = Block::Open;
                        self.open_blocks += 1;
                    }
                }
                p.got = 0;
                p.senders.clear();
                p.owner = None;
            }
        }
    }

    /// Bytes of blocks received for pieces not yet verified (resume accounting).
    pub fn pending_bytes(&self) -> u64 {
        self.partial
            .values()
            .map(|p| {
                p.blocks
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == Block::Got)
                    .map(|(i, _)| (p.data.len() - i * BLOCK as usize).min(BLOCK as usize) as u64)
                    .sum::<u64>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(n: usize) -> Vec<bool> {
        vec![true; n]
    }

    #[test]
    fn blocks_cover_every_piece_exactly_including_a_short_last_piece() {
        // 3 pieces of 40000 bytes, last one 20000: blocks 16384,16384,7232 and 16384,3616.
        let mut p = Picker::new(3, 40000, 100000);
        let mut rng = Rng::new(1);
        let reqs = p.pick(1, &all(3), 100, &mut rng);
        let mut per_piece = [0u64; 3];
        for r in &reqs {
            assert!(r.length > 0 && r.length <= BLOCK);
            assert!(r.begin + r.length <= p.piece_len(r.index));
            per_piece[r.index as usize] += u64::from(r.length);
        }
        assert_eq!(per_piece, [40000, 40000, 20000]);
        assert_eq!(reqs.len(), 3 + 3 + 2);
    }

    #[test]
    fn strict_priority_finishes_started_pieces_first() {
        let mut p = Picker::new(10, 4 * BLOCK, 40 * u64::from(BLOCK));
        let mut rng = Rng::new(2);
        let first = p.pick(1, &all(10), 2, &mut rng);
        assert_eq!(first.len(), 2);
        let idx = first[0].index;
        assert_eq!(first[1].index, idx);
        // another peer continues the same piece before starting a new one
        let second = p.pick(2, &all(10), 2, &mut rng);
        assert!(second.iter().all(|r| r.index == idx), "{:?}", second);
    }

    #[test]
    fn only_pieces_the_peer_has_are_requested() {
        let mut p = Picker::new(8, BLOCK, 8 * u64::from(BLOCK));
        let mut has = vec![false; 8];
        has[5] = true;
        let reqs = p.pick(1, &has, 10, &mut Rng::new(3));
        assert_eq!(
            reqs,
            vec![Req {
                index: 5,
                begin: 0,
                length: BLOCK
            }]
        );
        assert!(p.pick(1, &[false; 8], 10, &mut Rng::new(3)).is_empty());
    }

    #[test]
    fn rarest_first_after_four_pieces_with_random_tie_break() {
        let n = 20;
        let mut p = Picker::new(n, BLOCK, u64::from(n) * u64::from(BLOCK));
        for i in 0..4 {
            p.set_have(i);
        }
        // availability: pieces 4..20 held by 3 peers, except 11 and 17 held by 1
        let common = all(n as usize);
        let mut others = all(n as usize);
        others[11] = false;
        others[17] = false;
        p.peer_added(&common);
        p.peer_added(&others);
        p.peer_added(&others);
        assert_eq!((p.availability(11), p.availability(12)), (1, 3));
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut q = Picker::new(n, BLOCK, u64::from(n) * u64::from(BLOCK));
            for i in 0..4 {
                q.set_have(i);
            }
            q.avail = p.avail.clone();
            let r = q.pick(9, &common, 1, &mut Rng::new(seed));
            seen.insert(r[0].index);
        }
        assert_eq!(seen, [11u32, 17].iter().copied().collect());
    }

    #[test]
    fn random_first_before_four_pieces() {
        let n = 50u32;
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..30 {
            let mut p = Picker::new(n, BLOCK, u64::from(n) * u64::from(BLOCK));
            let mut has = all(n as usize);
            has[0] = true;
            // piece 0 is the rarest, but random-first ignores rarity
            let mut common = all(n as usize);
            common[0] = false;
            p.peer_added(&common);
            p.peer_added(&common);
            seen.insert(p.pick(1, &has, 1, &mut Rng::new(seed))[0].index);
        }
        assert!(seen.len() > 10, "not random: {:?}", seen);
    }

    #[test]
    fn endgame_starts_only_when_every_missing_block_is_requested() {
        let mut p = Picker::new(2, 2 * BLOCK, 4 * u64::from(BLOCK));
        let mut rng = Rng::new(4);
        let a = p.pick(1, &all(2), 3, &mut rng);
        assert_eq!(a.len(), 3);
        assert!(!p.in_endgame());
        let b = p.pick(2, &all(2), 10, &mut rng);
        // peer 2 gets the last open block, then duplicates of peer 1's three
        assert!(p.in_endgame());
        assert_eq!(b.len(), 4);
        let dup = b[1..].to_vec();
        for r in &a {
            assert!(dup.contains(r));
        }
        // the first copy wins; the other asker must be cancelled
        let r = a[0];
        let data = vec![7u8; r.length as usize];
        assert_eq!(
            p.on_block(2, r.index, r.begin, &data),
            BlockResult::Stored {
                cancel: vec![1],
                complete: false
            }
        );
        assert_eq!(
            p.on_block(1, r.index, r.begin, &data),
            BlockResult::NotWanted
        );
    }

    #[test]
    fn assembled_piece_holds_the_bytes_and_failure_reopens_it() {
        let mut p = Picker::new(1, 2 * BLOCK, 2 * u64::from(BLOCK) - 100);
        let mut rng = Rng::new(5);
        let reqs = p.pick(1, &all(1), 5, &mut rng);
        assert_eq!(reqs.len(), 2);
        assert!(matches!(
            p.on_block(1, 0, 0, &vec![1u8; BLOCK as usize]),
            BlockResult::Stored {
                complete: false,
                ..
            }
        ));
        // wrong length is refused
        assert_eq!(p.on_block(1, 0, BLOCK, &[2u8; 10]), BlockResult::NotWanted);
        assert!(matches!(
            p.on_block(3, 0, BLOCK, &vec![2u8; BLOCK as usize - 100]),
            BlockResult::Stored { complete: true, .. }
        ));
        let a = p.take_assembled(0).unwrap();
        assert_eq!(a.data.len(), 2 * BLOCK as usize - 100);
        assert_eq!(a.data[0], 1);
        assert_eq!(a.data[BLOCK as usize], 2);
        assert_eq!(a.senders, vec![1, 3]);
        assert_eq!(a.from, vec![1, 3]);
        p.hash_failed(0);
        assert!(!p.have(0));
        assert_eq!(p.pick(4, &all(1), 5, &mut rng).len(), 2);
        p.set_have(0);
        assert!(p.is_complete());
        assert_eq!(p.left_bytes(), 0);
    }

    #[test]
    fn released_requests_go_back_to_the_pool() {
        let mut p = Picker::new(1, 4 * BLOCK, 4 * u64::from(BLOCK));
        let mut rng = Rng::new(6);
        let a = p.pick(1, &all(1), 4, &mut rng);
        assert!(p.pick(2, &all(1), 4, &mut rng).len() == 4); // endgame duplicates
        for r in &a {
            p.release(1, *r);
        }
        // still asked of peer 2, so not open
        assert!(p.in_endgame());
        for r in &a {
            p.release(2, *r);
        }
        assert!(!p.in_endgame());
        assert_eq!(p.pick(3, &all(1), 10, &mut rng).len(), 4);
    }

    #[test]
    fn restricted_picker_fetches_only_its_share() {
        let mut p = Picker::new(10, BLOCK, 10 * u64::from(BLOCK));
        p.restrict(3, 6);
        let mut has = all(10);
        has[4] = false;
        assert!(p.interesting(&has));
        let reqs = p.pick(1, &all(10), 100, &mut Rng::new(1));
        let mut idx: Vec<u32> = reqs.iter().map(|r| r.index).collect();
        idx.sort_unstable();
        assert_eq!(idx, vec![3, 4, 5]);
        assert_eq!(p.left_bytes(), 3 * u64::from(BLOCK));
        for i in 3..6 {
            assert!(!p.is_complete());
            p.set_have(i);
        }
        assert!(p.is_complete());
        assert!(!p.interesting(&all(10)));
        assert!(!p.in_endgame());
    }

    #[test]
    fn a_failed_piece_is_fetched_again_from_one_peer_only() {
        let mut p = Picker::new(1, 2 * BLOCK, 2 * u64::from(BLOCK));
        let mut rng = Rng::new(8);
        let a = p.pick(1, &all(1), 1, &mut rng);
        let b = p.pick(2, &all(1), 1, &mut rng);
        let data = vec![0u8; BLOCK as usize];
        p.on_block(1, 0, a[0].begin, &data);
        p.on_block(2, 0, b[0].begin, &data);
        let asm = p.take_assembled(0).unwrap();
        assert_eq!(asm.from.len(), 2);
        p.hash_failed(0);
        // peer 3 takes the piece; peer 4 gets nothing of it, not even in endgame
        assert_eq!(p.pick(3, &all(1), 1, &mut rng).len(), 1);
        assert!(p.pick(4, &all(1), 5, &mut rng).is_empty());
        let mine = p.pick(3, &all(1), 5, &mut rng);
        assert_eq!(mine.len(), 1);
        // the owner goes away: the piece starts over for anyone
        p.release(3, mine[0]);
        p.release(
            3,
            Req {
                index: 0,
                begin: 0,
                length: BLOCK,
            },
        );
        assert_eq!(p.pick(4, &all(1), 5, &mut rng).len(), 2);
        p.set_have(0);
        assert!(p.is_complete());
    }

    #[test]
    fn availability_and_interest() {
        let mut p = Picker::new(4, BLOCK, 4 * u64::from(BLOCK));
        let has = vec![true, false, true, false];
        p.peer_added(&has);
        p.peer_has(1);
        assert_eq!(
            (0..4).map(|i| p.availability(i)).collect::<Vec<_>>(),
            vec![1, 1, 1, 0]
        );
        assert!(p.interesting(&has));
        p.set_have(0);
        p.set_have(2);
        assert!(!p.interesting(&has));
        p.peer_removed(&has);
        assert_eq!(p.availability(0), 0);
    }
}
