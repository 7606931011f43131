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
    /// Bytes/s the peer announced via HAVE messages (pieces × piece length over a window):
    /// its download rate, which BitTyrant takes as its upload capacity.
    pub have_rate: f64,
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
}

impl Decision {
    pub fn choke(id: u64) -> Decision {
        Decision {
            id,
            unchoke: false,
            optimistic: false,
            cap: None,
            u_p: None,
            d_p: None,
        }
    }
}

/// Bytes over a round → bytes/s (0 for a degenerate round length).
pub fn per_sec(bytes: u64, round_secs: f64) -> f64 {
    if round_secs > 0.0 {
        bytes as f64 / round_secs
    } else {
        0.0
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
    if up_kib <= 0.0 {
        7
    } else if up_kib < 9.0 {
        2
    } else if up_kib < 15.0 {
        3
    } else if up_kib < 42.0 {
        4
    } else {
        (up_kib * 0.6).sqrt() as usize
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
// Vanilla: Cohen 2003 §3; mainline 4.x `Choker._rechoke` and `download.py
// _set_auto_uploads` (docs/strategies.md, "Vanilla").
// - every 10 s rank the interested, non-snubbed peers by their download rate to us over a
//   20 s window (seed mode: by our upload rate to them) and unchoke the best;
// - one optimistic unchoke, rotated every third round (30 s), may go to any interested
//   peer, snubbed or not; when fewer than `MIN_UPLOADS` peers qualify for a regular slot,
//   more peers are unchoked the same way (mainline's `min_uploads`);
// - slot count by mainline's rule, which includes the optimistic slot.
// ---------------------------------------------------------------------------------------

/// The reference tit-for-tat choker. It remembers only the round number and which peer
/// holds the optimistic slot.
#[derive(Clone, Debug)]
pub struct Vanilla {
    pub slots: Slots,
    round: u64,
    optimistic: Option<u64>,
}

impl Vanilla {
    pub fn new(slots: Slots) -> Vanilla {
        Vanilla {
            slots,
            round: 0,
            optimistic: None,
        }
    }

    /// One 10-second round.
    pub fn rechoke(&mut self, peers: &[PeerView], seeding: bool, rng: &mut Rng) -> Vec<Decision> {
        let rotate = self.round % OPTIMISTIC_ROUNDS == 0;
        self.round += 1;

        // Shuffle first so equal rates (e.g. everyone at 0 early on) are broken at random,
        // then a stable sort by rate.
        let mut ranked: Vec<&PeerView> = peers
            .iter()
            .filter(|p| p.interested && (seeding || !p.snubbed))
            .collect();
        rng.shuffle(&mut ranked);
        let key = |p: &PeerView| if seeding { p.up_rate } else { p.down_rate };
        ranked.sort_by(|a, b| {
            key(b)
                .partial_cmp(&key(a))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let regular: Vec<u64> = ranked
            .iter()
            .take(self.slots.regular())
            .map(|p| p.id)
            .collect();

        // Keep the optimistic peer between rotations unless it left, lost interest or
        // earned a regular slot.
        let still_valid =
            |id: u64| peers.iter().any(|p| p.id == id && p.interested) && !regular.contains(&id);
        if rotate || !self.optimistic.map_or(false, still_valid) {
            self.optimistic = None;
        }
        let mut pool: Vec<u64> = peers
            .iter()
            .filter(|p| p.interested && !regular.contains(&p.id))
            .map(|p| p.id)
            .collect();
        rng.shuffle(&mut pool);
        let want = 1.max(MIN_UPLOADS.saturating_sub(regular.len()));
        let mut extra: Vec<u64> = Vec::new();
        if let Some(o) = self.optimistic {
            extra.push(o);
        }
        for id in pool {
            if extra.len() >= want {
                break;
            }
            if !extra.contains(&id) {
                extra.push(id);
            }
        }
        self.optimistic = extra.first().copied();

        peers
            .iter()
            .map(|p| Decision {
                unchoke: regular.contains(&p.id) || extra.contains(&p.id),
                optimistic: extra.contains(&p.id),
                ..Decision::choke(p.id)
            })
            .collect()
    }

    /// rain's `FastUnchoke`: a newly interested peer may take a free regular slot at once
    /// instead of waiting up to a whole round for its first byte.
    fn has_free_slot(&self, peers: &[PeerView]) -> bool {
        let busy = peers
            .iter()
            .filter(|p| p.interested && !p.choked && Some(p.id) != self.optimistic)
            .count();
        busy < self.slots.regular()
    }

    /// `has_free_slot` as a decision for peer `id` (interested and choked right now).
    pub fn fast_unchoke(&self, peers: &[PeerView], id: u64) -> Option<Decision> {
        let p = peers.iter().find(|p| p.id == id)?;
        if !(p.interested && p.choked && self.has_free_slot(peers)) {
            return None;
        }
        Some(Decision {
            unchoke: true,
            ..Decision::choke(id)
        })
    }
}

#[cfg(test)]
mod tests;
