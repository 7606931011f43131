//! Choking: who gets our upload slots each round, and at what rate. This file holds what
//! every choker shares (the `PeerView` snapshot in, one `Decision` per peer out, the slot
//! rules) and the reference choker, vanilla tit-for-tat (Cohen 2003 §3; mainline 4.x
//! `Choker.py`). BitTyrant and PropShare live beside the other strategies in
//! `src/strategy/` and fall back to this choker once they seed.
//!
//! A choker owns the decision, never the sockets: the chooser hands in one plain
//! `PeerView` per connection each round and applies the `Decision`s it gets back. The RNG
//! is injected so every policy is a deterministic, table-testable function of its input.
//! Rates are `f64` bytes/s everywhere and are never truncated (downpour's integer KB/s
//! reached 0: docs/downpour.md, bug 4).

use crate::rng::Rng;

/// Mainline's `min_uploads`: with fewer preferred peers than this, more are unchoked.
const MIN_UPLOADS: usize = 2;
/// Rounds between optimistic rotations (3 × 10 s = 30 s).
pub const OPTIMISTIC_ROUNDS: u64 = 3;

/// What the chooser knows about one connection at the start of a round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerView {
    pub id: u64,
    /// The peer is interested in pieces we have.
    pub interested: bool,
    /// We are interested in pieces the peer has.
    pub interesting: bool,
    /// We are choking the peer right now.
    pub choked: bool,
    /// Nothing received from this peer for the snub time (anti-snubbing, Cohen §3.4).
    pub snubbed: bool,
    /// Bytes/s of piece data from the peer over the rate window (d_p observed).
    pub down_rate: f64,
    /// Bytes/s of piece data we sent the peer over the rate window.
    pub up_rate: f64,
    /// The peer is choking us.
    pub peer_choking: bool,
    /// Piece payload bytes received from the peer during the round that just ended.
    pub down_round: u64,
    /// Piece payload bytes sent to the peer during the round that just ended.
    pub up_round: u64,
    /// The peer unchoked us at some point during the round that just ended (or still does).
    pub unchoked_us: bool,
    /// Seconds the peer has been unchoking us without a break (0 while it chokes us).
    pub unchoked_us_secs: f64,
    /// Bytes/s the peer announced via HAVE messages (pieces × piece length over a window):
    /// its download rate, which BitTyrant takes as its upload capacity.
    pub have_rate: f64,
    /// Its address, by which a long-lived BitTyrant knows it again (`--tyrant-memory`).
    pub ip: Option<std::net::IpAddr>,
}

/// One verdict per peer; every peer in the input gets exactly one.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub id: u64,
    pub unchoke: bool,
    pub optimistic: bool,
    /// Per-peer upload cap in bytes/s (`None` = only the global cap applies).
    pub cap: Option<f64>,
    /// The upload rate the policy means to give the peer (BitTyrant's u_p; PropShare's
    /// share), for the trace. `None` for vanilla.
    pub u_p: Option<f64>,
    /// The download rate the policy expects from the peer (BitTyrant's d_p; PropShare's
    /// b_p / round), for the trace. `None` for vanilla.
    pub d_p: Option<f64>,
    /// The peer's weight in the upload pacer: backlogged peers share the capacity in
    /// proportion to their weights (PropShare's shares; 1 for everyone else).
    pub weight: f64,
    /// Which of BitTyrant's passes unchoked the peer (1, 2 or 3), for the trace; 0 else.
    pub pass: u8,
}

impl Decision {
    pub fn choke(id: u64) -> Decision {
        let (cap, u_p, d_p) = (None, None, None);
        Decision { id, unchoke: false, optimistic: false, cap, u_p, d_p, weight: 1.0, pass: 0 }
    }
}

/// How many upload slots to open.
#[derive(Clone, Debug, PartialEq)]
pub enum Slots {
    /// Mainline's rule over the upload cap in KiB/s (0 = uncapped).
    Auto { up_kib: f64 },
    /// downpour's `-k`: floor(k·√up) regular slots plus one optimistic.
    K { k: f64, up_kib: f64 },
    /// `--slots N`: N slots in all, the optimistic one included (mainline `max_uploads`).
    Fixed(usize),
}

/// Mainline's upload-slot count for a cap in KiB/s, optimistic slot included.
pub fn mainline_slots(up_kib: f64) -> usize {
    match up_kib {
        u if u <= 0.0 => 7,
        u if u < 9.0 => 2,
        u if u < 15.0 => 3,
        u if u < 42.0 => 4,
        u => (u * 0.6).sqrt() as usize,
    }
}

impl Slots {
    /// The same rule for a client with another cap (a BitSybil identity's share).
    pub fn for_cap(&self, up_kib: f64) -> Slots {
        match *self {
            Slots::Auto { .. } => Slots::Auto { up_kib },
            Slots::K { k, .. } => Slots::K { k, up_kib },
            Slots::Fixed(n) => Slots::Fixed(n),
        }
    }

    /// Regular (rate-ranked) slots; the optimistic slot comes on top.
    pub fn regular(&self) -> usize {
        match *self {
            Slots::Auto { up_kib } => mainline_slots(up_kib).saturating_sub(1),
            Slots::K { k, up_kib } if up_kib > 0.0 => (k * up_kib.sqrt()).max(0.0) as usize,
            Slots::K { .. } => mainline_slots(0.0) - 1,
            Slots::Fixed(n) => n.saturating_sub(1),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Vanilla: Cohen 2003 §3; mainline `Choker.py` and `download.py _set_auto_uploads`
// (docs/strategies.md, "Vanilla choker").
// - every 10 s rank the interested, non-snubbed peers by their download rate to us over a
//   20 s window (seed mode: by our upload rate to them) and unchoke the best;
// - the optimistic unchoke goes to the first interested peer without a regular slot in a
//   list of the connections that mainline rotates every third round (30 s), so every peer
//   gets its turn; a new connection enters the list at a random place, three times as
//   likely at the head as anywhere else (Cohen §3; mainline 3.x `connection_made`);
// - when fewer than `MIN_UPLOADS` peers qualify for a regular slot, more peers are
//   unchoked the same way (mainline's `min_uploads`);
// - slot count by mainline's rule, which includes the optimistic slot.
// ---------------------------------------------------------------------------------------

/// The reference tit-for-tat choker.
#[derive(Clone, Debug)]
pub struct Vanilla {
    pub slots: Slots,
    round: u64,
    /// mainline's list of connections: the order in which optimistic unchokes go round.
    ring: Vec<u64>,
    /// The peers holding optimistic slots now.
    optimistic: Vec<u64>,
}

impl Vanilla {
    pub fn new(slots: Slots) -> Vanilla {
        Vanilla { slots, round: 0, ring: Vec::new(), optimistic: Vec::new() }
    }

    /// One 10-second round; every third one moves the optimistic unchoke on.
    pub fn rechoke(&mut self, peers: &[PeerView], seeding: bool, rng: &mut Rng) -> Vec<Decision> {
        let rotate = self.round % OPTIMISTIC_ROUNDS == 0;
        self.round += 1;
        self.decide(peers, seeding, rotate, rng)
    }

    /// Mid-round, after an unchoked peer left or changed its interest: fill the slots again
    /// without moving the rotation (mainline's `connection_lost`, `not_interested`).
    pub fn refill(&mut self, peers: &[PeerView], seeding: bool, rng: &mut Rng) -> Vec<Decision> {
        self.decide(peers, seeding, false, rng)
    }

    fn decide(
        &mut self,
        peers: &[PeerView],
        seeding: bool,
        rotate: bool,
        rng: &mut Rng,
    ) -> Vec<Decision> {
        self.ring.retain(|id| peers.iter().any(|p| p.id == *id));
        for p in peers {
            if !self.ring.contains(&p.id) {
                let at = (rng.below(self.ring.len() as u64 + 3) as usize).saturating_sub(2);
                self.ring.insert(at, p.id);
            }
        }
        let state = |id: u64| peers.iter().find(|p| p.id == id);
        let waiting = |id: &u64| state(*id).map_or(false, |p| p.choked && p.interested);
        if rotate {
            if let Some(i) = self.ring.iter().position(waiting) {
                self.ring.rotate_left(i);
            }
        }
        // Shuffle first so equal rates (e.g. everyone at 0 early on) are broken at random,
        // then a stable sort by rate.
        let mut ranked: Vec<&PeerView> =
            peers.iter().filter(|p| p.interested && (seeding || !p.snubbed)).collect();
        rng.shuffle(&mut ranked);
        let key = |p: &PeerView| if seeding { p.up_rate } else { p.down_rate };
        ranked.sort_by(|a, b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal));
        let regular: Vec<u64> = ranked.iter().take(self.slots.regular()).map(|p| p.id).collect();
        let want = 1.max(MIN_UPLOADS.saturating_sub(regular.len()));
        // Optimistic candidates: interested peers without a regular slot, in ring order.
        let free = |id: &u64| state(*id).map_or(false, |p| p.interested) && !regular.contains(id);
        self.optimistic = self.ring.iter().copied().filter(free).take(want).collect();
        peers
            .iter()
            .map(|p| Decision {
                unchoke: regular.contains(&p.id) || self.optimistic.contains(&p.id),
                optimistic: self.optimistic.contains(&p.id),
                ..Decision::choke(p.id)
            })
            .collect()
    }

    /// rain's `FastUnchoke`: a newly interested peer may take a free regular slot at once
    /// instead of waiting up to a whole round for its first byte.
    pub fn fast_unchoke(&self, peers: &[PeerView], id: u64) -> Option<Decision> {
        let p = peers.iter().find(|p| p.id == id)?;
        let busy = peers
            .iter()
            .filter(|p| p.interested && !p.choked && !self.optimistic.contains(&p.id))
            .count();
        if !(p.interested && p.choked && busy < self.slots.regular()) {
            return None;
        }
        Some(Decision { unchoke: true, ..Decision::choke(id) })
    }
}

#[cfg(test)]
mod tests;
