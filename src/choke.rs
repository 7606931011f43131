//! Choking policies: who gets our upload slots each round.
//!
//! This file owns the decision, never the sockets: the chooser hands in one plain
//! `PeerView` per connection each round and applies the `Decision`s it gets back. The RNG
//! is injected so every policy is a deterministic, table-testable function of its input.
//!
//! `Vanilla` is the reference choker BitTyrant was measured against (Cohen 2003 §3;
//! mainline 4.x `Choker._rechoke` and `download.py _set_auto_uploads`):
//! - every 10 s rank the interested, non-snubbed peers by their download rate to us over a
//!   20 s window (seed mode: by our upload rate to them) and unchoke the best;
//! - one optimistic unchoke, rotated every third round (30 s), may go to any interested
//!   peer, snubbed or not; when fewer than `MIN_UPLOADS` peers qualify for a regular slot,
//!   more peers are unchoked the same way (mainline's `min_uploads`);
//! - slot count by mainline's rule, which includes the optimistic slot.

use crate::rng::Rng;

/// Mainline's `min_uploads`: with fewer preferred peers than this, more are unchoked.
pub const MIN_UPLOADS: usize = 2;
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
}

/// One verdict per peer; every peer in the input gets exactly one.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub id: u64,
    pub unchoke: bool,
    pub optimistic: bool,
    /// Per-peer upload cap in bytes/s (`None` = only the global cap applies).
    pub cap: Option<f64>,
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

    pub fn optimistic(&self) -> Option<u64> {
        self.optimistic
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
                id: p.id,
                unchoke: regular.contains(&p.id) || extra.contains(&p.id),
                optimistic: extra.contains(&p.id),
                cap: None,
            })
            .collect()
    }

    /// rain's `FastUnchoke`: a newly interested peer may take a free regular slot at once
    /// instead of waiting up to a whole round for its first byte.
    pub fn has_free_slot(&self, peers: &[PeerView]) -> bool {
        let busy = peers
            .iter()
            .filter(|p| p.interested && !p.choked && Some(p.id) != self.optimistic)
            .count();
        busy < self.slots.regular()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: u64, interested: bool, down: f64) -> PeerView {
        PeerView {
            id,
            interested,
            choked: true,
            down_rate: down,
            ..PeerView::default()
        }
    }

    fn unchoked(d: &[Decision]) -> Vec<u64> {
        let mut v: Vec<u64> = d.iter().filter(|d| d.unchoke).map(|d| d.id).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn mainline_slot_rule() {
        let table = [
            (0.0, 7),
            (5.0, 2),
            (8.9, 2),
            (9.0, 3),
            (14.0, 3),
            (15.0, 4),
            (41.0, 4),
            (42.0, 5),
            (64.0, 6),
            (100.0, 7),
            (128.0, 8),
            (300.0, 13),
            (1000.0, 24),
        ];
        for (rate, slots) in table {
            assert_eq!(mainline_slots(rate), slots, "rate {}", rate);
        }
        assert_eq!(Slots::Auto { up_kib: 20.0 }.regular(), 3);
        assert_eq!(
            Slots::K {
                k: 1.0,
                up_kib: 20.0
            }
            .regular(),
            4
        );
        assert_eq!(
            Slots::K {
                k: 0.44,
                up_kib: 50.0
            }
            .regular(),
            3
        );
        assert_eq!(
            Slots::K {
                k: 1.0,
                up_kib: 1000.0
            }
            .regular(),
            31
        );
        assert_eq!(Slots::Fixed(4).regular(), 3);
    }

    #[test]
    fn best_uploaders_get_regular_slots_plus_one_optimistic() {
        // 20 KiB/s → 4 slots: 3 regular by rate, 1 optimistic among the rest.
        let peers: Vec<PeerView> = (1..=8).map(|i| peer(i, true, i as f64 * 100.0)).collect();
        let mut c = Vanilla::new(Slots::Auto { up_kib: 20.0 });
        let d = c.rechoke(&peers, false, &mut Rng::new(1));
        let on = unchoked(&d);
        assert_eq!(on.len(), 4);
        for id in [6, 7, 8] {
            assert!(on.contains(&id));
            assert!(!d.iter().any(|x| x.id == id && x.optimistic));
        }
        let opt = c.optimistic().unwrap();
        assert!(opt <= 5 && on.contains(&opt));
    }

    #[test]
    fn uninterested_and_snubbed_peers_get_no_regular_slot() {
        let mut peers = vec![
            peer(1, false, 900.0),
            peer(2, true, 800.0),
            peer(3, true, 10.0),
            peer(4, true, 5.0),
            peer(5, true, 1.0),
        ];
        peers[1].snubbed = true;
        let mut c = Vanilla::new(Slots::Fixed(3));
        for seed in 0..20 {
            let d = c.rechoke(&peers, false, &mut Rng::new(seed));
            let on = unchoked(&d);
            assert!(!on.contains(&1), "uninterested peer unchoked");
            assert!(
                on.contains(&3) && on.contains(&4),
                "best two regular: {:?}",
                on
            );
            // peer 2 is snubbed: only ever as the optimistic unchoke
            if on.contains(&2) {
                assert_eq!(c.optimistic(), Some(2));
            }
        }
    }

    #[test]
    fn optimistic_rotates_every_third_round_only() {
        // Peer 10 is the fastest and holds the one regular slot; the optimistic slot must
        // stay put for three rounds and then move.
        let peers: Vec<PeerView> = (1..=10)
            .map(|i| peer(i, true, if i == 10 { 1e6 } else { 0.0 }))
            .collect();
        let mut c = Vanilla::new(Slots::Fixed(2));
        let mut rng = Rng::new(7);
        let mut seen = Vec::new();
        for _ in 0..30 {
            let d = c.rechoke(&peers, false, &mut rng);
            assert_eq!(unchoked(&d).len(), 2);
            assert!(d.iter().any(|x| x.id == 10 && x.unchoke && !x.optimistic));
            seen.push(c.optimistic().unwrap());
        }
        for (round, w) in seen.windows(2).enumerate() {
            if (round + 1) % 3 != 0 {
                assert_eq!(w[0], w[1], "optimistic moved mid-period: {:?}", seen);
            }
        }
        let distinct: std::collections::BTreeSet<u64> = seen.iter().copied().collect();
        assert!(distinct.len() >= 4, "optimistic never rotates: {:?}", seen);
        assert!(!distinct.contains(&10));
    }

    #[test]
    fn few_preferred_peers_unchoke_min_uploads() {
        // Everybody snubbed: mainline still unchokes min_uploads = 2 peers.
        let mut peers: Vec<PeerView> = (1..=5).map(|i| peer(i, true, 0.0)).collect();
        for p in &mut peers {
            p.snubbed = true;
        }
        let mut c = Vanilla::new(Slots::Auto { up_kib: 100.0 });
        let d = c.rechoke(&peers, false, &mut Rng::new(3));
        assert_eq!(unchoked(&d).len(), MIN_UPLOADS);
    }

    #[test]
    fn seed_mode_ranks_by_our_upload_rate_and_ignores_snubbing() {
        let mut peers: Vec<PeerView> = (1..=6).map(|i| peer(i, true, 0.0)).collect();
        for (i, p) in peers.iter_mut().enumerate() {
            p.up_rate = (10 - i) as f64;
            p.snubbed = true;
        }
        let mut c = Vanilla::new(Slots::Fixed(3));
        let d = c.rechoke(&peers, true, &mut Rng::new(5));
        let on = unchoked(&d);
        assert!(on.contains(&1) && on.contains(&2), "{:?}", on);
        assert_eq!(on.len(), 3);
    }

    #[test]
    fn fast_unchoke_only_with_a_free_regular_slot() {
        let mut peers: Vec<PeerView> = (1..=4).map(|i| peer(i, true, 0.0)).collect();
        let c = Vanilla::new(Slots::Fixed(3)); // 2 regular
        assert!(c.has_free_slot(&peers));
        peers[0].choked = false;
        peers[1].choked = false;
        assert!(!c.has_free_slot(&peers));
    }
}
