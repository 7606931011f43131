//! Choking policies: who gets our upload slots each round, and at what rate.
//!
//! This file owns the decision, never the sockets: the chooser hands in one plain
//! `PeerView` per connection each round and applies the `Decision`s it gets back. The RNG
//! is injected so every policy is a deterministic, table-testable function of its input.
//! Rates are `f64` bytes/s everywhere and are never truncated (downpour's integer KB/s
//! truncation is bug 4 in `shared/spec/algorithms.md` §1.3).
//!
//! Three policies, all behind `Choker`:
//! - `Vanilla`: the reference tit-for-tat choker (Cohen 2003 §3, mainline 4.x);
//! - `Tyrant`: BitTyrant (Piatek et al., NSDI 2007 §4);
//! - `PropShare`: proportional share (Levin et al., SIGCOMM 2008 §4).
//!
//! BitTyrant and PropShare only decide while we are downloading; once we seed they hand the
//! round to a `Vanilla` seed choker they keep for that.

use std::collections::BTreeMap;

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
    fn choke(id: u64) -> Decision {
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
fn per_sec(bytes: u64, round_secs: f64) -> f64 {
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
// _set_auto_uploads` (algorithms.md §2.1–2.2).
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
                unchoke: regular.contains(&p.id) || extra.contains(&p.id),
                optimistic: extra.contains(&p.id),
                ..Decision::choke(p.id)
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

// ---------------------------------------------------------------------------------------
// BitTyrant: Piatek, Isdal, Anderson, Krishnamurthy, Venkataramani, "Do incentives build
// robustness in BitTorrent?", NSDI 2007 §4 (algorithms.md §1.1), as the released
// `MikesUnchoker` does it, avoiding every downpour bug listed in algorithms.md §1.3.
//
// Per peer p we keep d_p (the download rate we expect from p if we unchoke it) and u_p
// (the upload rate p needs from us to reciprocate). At the end of each round, for each
// peer WE unchoked during it (§1.3 bug 3: never for the others):
//   p did not unchoke us                    u_p ← (1+δ)·u_p
//   p unchoked us                           d_p ← observed download rate from p
//   p has unchoked us for the last r rounds u_p ← (1−γ)·u_p   (every such round, as the
//                                                             released code does after 30 s)
// with δ = 0.2, γ = 0.1, r = 3 and u_p never below a floor (bug 4: downpour reached 0).
// A peer we get no data from has d_p estimated from its HAVE announcements: its download
// rate stands in for its upload capacity, divided by the active set the reference client
// uses at that capacity (its equal split) — for every such peer, including peers that never
// unchoked us (bugs 1 and 2). Then rank the interested peers by d_p/u_p, highest first, and
// unchoke them while Σu_p fits in our capacity, skipping a peer that does not fit and going
// on to the next (bug 5). Each unchoked peer is capped at its u_p. No optimistic unchoke.
// ---------------------------------------------------------------------------------------

/// BitTyrant's constants (paper §4; released `MikesUnchoker`).
#[derive(Clone, Debug, PartialEq)]
pub struct TyrantParams {
    /// Our upload capacity in bytes/s. Not finite or ≤ 0 means uncapped: every interested
    /// peer is unchoked, each still capped at its u_p.
    pub capacity: f64,
    /// Initial u_p in bytes/s: the released code's "market rate", 7 KB/s.
    pub u0: f64,
    /// δ: u_p grows by this fraction after an unreciprocated round.
    pub delta: f64,
    /// γ: u_p shrinks by this fraction after r reciprocated rounds.
    pub gamma: f64,
    /// r: reciprocated rounds in a row before u_p starts shrinking.
    pub r: u32,
    /// u_p never goes below this, bytes/s (at least 1).
    pub floor: f64,
    /// `--time-scale S`: every rate above is already S times its nominal value; only the
    /// active-set rule applied to peers' observed rates needs the nominal rate back.
    pub scale: f64,
}

impl Default for TyrantParams {
    fn default() -> TyrantParams {
        TyrantParams {
            capacity: f64::INFINITY,
            u0: 7168.0,
            delta: 0.2,
            gamma: 0.1,
            r: 3,
            floor: 1024.0,
            scale: 1.0,
        }
    }
}

/// The reference client's active-set size (optimistic slot included) for a peer whose
/// upload capacity is `rate` bytes/s: mainline's rule over KiB/s.
pub fn active_set(rate: f64) -> usize {
    mainline_slots(rate / 1024.0)
}

/// BitTyrant's d_p estimate for a peer we observe no download from: its HAVE rate (its
/// download rate, taken as its upload capacity) split equally over its active set.
/// No HAVE rate means no estimate: 0.
pub fn have_estimate(have_rate: f64) -> f64 {
    have_estimate_scaled(have_rate, 1.0)
}

/// `have_estimate` under `--time-scale S`: rates run S times faster than nominal, but the
/// peer's active set follows from its nominal capacity (mainline's rule is over KiB/s).
pub fn have_estimate_scaled(have_rate: f64, scale: f64) -> f64 {
    if have_rate > 0.0 {
        have_rate / active_set(have_rate / scale.max(1e-9)) as f64
    } else {
        0.0
    }
}

/// BitTyrant's memory of one peer.
#[derive(Clone, Debug, PartialEq)]
struct TyrantPeer {
    u_p: f64,
    d_p: f64,
    /// Consecutive rounds in which we unchoked the peer and it reciprocated.
    streak: u32,
    unchoked_last_round: bool,
    /// d_p is the HAVE-rate estimate, not an observation.
    estimated: bool,
}

/// The BitTyrant choker.
#[derive(Clone, Debug)]
pub struct Tyrant {
    params: TyrantParams,
    peers: BTreeMap<u64, TyrantPeer>,
    seed: Vanilla,
}

impl Tyrant {
    /// The seed choker is mainline's rule at our capacity; see `with_seed_slots`.
    pub fn new(mut params: TyrantParams) -> Tyrant {
        if !(params.capacity.is_finite() && params.capacity > 0.0) {
            params.capacity = f64::INFINITY;
        }
        // u_p never exceeds what we have to give: a peer whose u_p outgrew the capacity
        // would never fit again (its u_p only changes while unchoked), and with --up below
        // the market rate no peer would ever be unchoked at all.
        params.floor = params.floor.max(1.0).min(params.capacity);
        params.u0 = params.u0.max(params.floor).min(params.capacity);
        let up_kib = if params.capacity.is_finite() {
            params.capacity / 1024.0
        } else {
            0.0
        };
        Tyrant {
            params,
            peers: BTreeMap::new(),
            seed: Vanilla::new(Slots::Auto { up_kib }),
        }
    }

    /// Use these slots for the vanilla seed choker instead of mainline's rule.
    pub fn with_seed_slots(mut self, slots: Slots) -> Tyrant {
        self.seed = Vanilla::new(slots);
        self
    }

    pub fn params(&self) -> &TyrantParams {
        &self.params
    }

    /// (u_p, d_p, streak) of a peer seen in an earlier round, in bytes/s.
    pub fn state(&self, id: u64) -> Option<(f64, f64, u32)> {
        self.peers.get(&id).map(|s| (s.u_p, s.d_p, s.streak))
    }

    /// Whether the peer's d_p is the HAVE-rate estimate rather than an observed rate.
    pub fn estimated(&self, id: u64) -> Option<bool> {
        self.peers.get(&id).map(|s| s.estimated)
    }

    fn new_peer(&self, v: &PeerView) -> TyrantPeer {
        TyrantPeer {
            u_p: self.params.u0,
            d_p: have_estimate_scaled(v.have_rate, self.params.scale),
            streak: 0,
            unchoked_last_round: false,
            estimated: true,
        }
    }

    /// One leecher round (paper §4). `round_secs` turns `down_round` into a rate.
    pub fn rechoke(&mut self, peers: &[PeerView], round_secs: f64, rng: &mut Rng) -> Vec<Decision> {
        let p = self.params.clone();
        // Forget peers that disappeared.
        self.peers.retain(|id, _| peers.iter().any(|v| v.id == *id));

        for v in peers {
            let fresh = self.new_peer(v);
            let s = self.peers.entry(v.id).or_insert(fresh);
            // 1. Update u_p only for peers we unchoked last round.
            if s.unchoked_last_round {
                if v.unchoked_us || v.down_round > 0 {
                    s.streak = s.streak.saturating_add(1);
                    if s.streak >= p.r {
                        s.u_p *= 1.0 - p.gamma;
                    }
                } else {
                    s.u_p *= 1.0 + p.delta;
                    s.streak = 0;
                }
                s.u_p = s.u_p.max(p.floor).min(p.capacity);
            }
            // 2. d_p: the observed rate when the peer sent us data this round, otherwise
            //    the HAVE-rate estimate (for every such peer, unchoked by us or not).
            if v.down_round > 0 {
                s.d_p = per_sec(v.down_round, round_secs);
                s.estimated = false;
            } else {
                s.d_p = have_estimate_scaled(v.have_rate, p.scale);
                s.estimated = true;
            }
        }

        // 3. Rank the interested peers by d_p/u_p (shuffle, then a stable sort, so ties
        //    fall at random) and fill the capacity with whole peers, skipping misfits.
        let mut ranked: Vec<(u64, f64)> = peers
            .iter()
            .filter(|v| v.interested)
            .map(|v| {
                let s = &self.peers[&v.id];
                (v.id, s.d_p / s.u_p)
            })
            .collect();
        rng.shuffle(&mut ranked);
        ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        let mut used = 0.0;
        let mut unchoked: Vec<u64> = Vec::new();
        for (id, _) in ranked {
            let u_p = self.peers[&id].u_p;
            if used + u_p <= p.capacity {
                used += u_p;
                unchoked.push(id);
            }
        }

        peers
            .iter()
            .map(|v| {
                let s = self.peers.get_mut(&v.id).expect("every peer has state");
                let unchoke = unchoked.contains(&v.id);
                s.unchoked_last_round = unchoke;
                Decision {
                    id: v.id,
                    unchoke,
                    optimistic: false,
                    cap: if unchoke { Some(s.u_p) } else { None },
                    u_p: Some(s.u_p),
                    d_p: Some(s.d_p),
                }
            })
            .collect()
    }

    /// Between rounds: unchoke the newly interested peer `id` if its u_p fits in the
    /// capacity left by the peers unchoked right now. A peer unchoked this way counts as
    /// unchoked by us for the round, so the next round updates its u_p.
    pub fn fast_unchoke(&mut self, peers: &[PeerView], id: u64) -> Option<Decision> {
        let v = peers.iter().find(|v| v.id == id)?;
        if !(v.interested && v.choked) {
            return None;
        }
        let u0 = self.params.u0;
        let used: f64 = peers
            .iter()
            .filter(|q| !q.choked && q.id != id)
            .map(|q| self.peers.get(&q.id).map_or(u0, |s| s.u_p))
            .sum();
        if !self.peers.contains_key(&id) {
            let fresh = self.new_peer(v);
            self.peers.insert(id, fresh);
        }
        let capacity = self.params.capacity;
        let s = self.peers.get_mut(&id).expect("inserted above");
        if used + s.u_p > capacity {
            return None;
        }
        s.unchoked_last_round = true;
        Some(Decision {
            id,
            unchoke: true,
            optimistic: false,
            cap: Some(s.u_p),
            u_p: Some(s.u_p),
            d_p: Some(s.d_p),
        })
    }
}

// ---------------------------------------------------------------------------------------
// PropShare: Levin, LaCurts, Spring, Bhattacharjee, "BitTorrent is an Auction: Analyzing
// and Improving BitTorrent's Incentives", SIGCOMM 2008 §4 (algorithms.md §3.3).
// Each round, b_p = the bytes interested peer p sent us last round. The reciprocal
// capacity C_r = (1−f)·C is split in proportion: p gets C_r·b_p/Σb_q. The optimistic
// share f·C goes to one other interested peer, picked at random and rotated every
// `OPTIMISTIC_ROUNDS` rounds (kept in between while it stays interested and still has not
// sent us anything). Work-conserving: with nobody to reward (Σb = 0) the optimistic peer
// gets all of C; with nobody to unchoke optimistically the reciprocal peers share all of C.
// ---------------------------------------------------------------------------------------

/// The PropShare choker.
#[derive(Clone, Debug)]
pub struct PropShare {
    capacity: f64,
    optimistic_share: f64,
    round: u64,
    optimistic: Option<u64>,
    seed: Vanilla,
}

/// PropShare's default optimistic share f: mainline's one optimistic slot in five.
pub const PROPSHARE_OPTIMISTIC_SHARE: f64 = 0.2;

impl PropShare {
    /// `capacity` in bytes/s (not finite or ≤ 0: uncapped, no per-peer caps);
    /// `optimistic_share` is f, clamped to [0, 1].
    pub fn new(capacity: f64, optimistic_share: f64) -> PropShare {
        let capacity = if capacity.is_finite() && capacity > 0.0 {
            capacity
        } else {
            f64::INFINITY
        };
        let up_kib = if capacity.is_finite() {
            capacity / 1024.0
        } else {
            0.0
        };
        PropShare {
            capacity,
            optimistic_share: if optimistic_share.is_nan() {
                PROPSHARE_OPTIMISTIC_SHARE
            } else {
                optimistic_share.clamp(0.0, 1.0)
            },
            round: 0,
            optimistic: None,
            seed: Vanilla::new(Slots::Auto { up_kib }),
        }
    }

    /// Use these slots for the vanilla seed choker instead of mainline's rule.
    pub fn with_seed_slots(mut self, slots: Slots) -> PropShare {
        self.seed = Vanilla::new(slots);
        self
    }

    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    pub fn optimistic_share(&self) -> f64 {
        self.optimistic_share
    }

    pub fn optimistic(&self) -> Option<u64> {
        self.optimistic
    }

    fn cap(rate: f64) -> Option<f64> {
        if rate.is_finite() {
            Some(rate)
        } else {
            None
        }
    }

    /// One leecher round (paper §4). `round_secs` turns b_p into the trace's d_p.
    pub fn rechoke(&mut self, peers: &[PeerView], round_secs: f64, rng: &mut Rng) -> Vec<Decision> {
        let rotate = self.round % OPTIMISTIC_ROUNDS == 0;
        self.round += 1;

        let reciprocal = |v: &PeerView| v.interested && v.down_round > 0;
        let sum_b: u64 = peers
            .iter()
            .filter(|v| reciprocal(v))
            .map(|v| v.down_round)
            .sum();

        // The optimistic peer: kept between rotations while it is still a candidate.
        let candidate = |v: &PeerView| v.interested && v.down_round == 0;
        let still_valid = |id: u64| peers.iter().any(|v| v.id == id && candidate(v));
        if rotate || !self.optimistic.map_or(false, still_valid) {
            let pool: Vec<u64> = peers
                .iter()
                .filter(|v| candidate(v))
                .map(|v| v.id)
                .collect();
            self.optimistic = if pool.is_empty() {
                None
            } else {
                Some(pool[rng.below(pool.len() as u64) as usize])
            };
        }

        let f = self.optimistic_share;
        let (c_r, c_opt) = match (sum_b > 0, self.optimistic.is_some()) {
            (true, true) => ((1.0 - f) * self.capacity, f * self.capacity),
            (true, false) => (self.capacity, 0.0),
            (false, _) => (0.0, self.capacity),
        };

        peers
            .iter()
            .map(|v| {
                let d_p = Some(per_sec(v.down_round, round_secs));
                if reciprocal(v) {
                    let share = c_r * (v.down_round as f64 / sum_b as f64);
                    Decision {
                        id: v.id,
                        unchoke: true,
                        optimistic: false,
                        cap: Self::cap(share),
                        u_p: Self::cap(share),
                        d_p,
                    }
                } else if Some(v.id) == self.optimistic {
                    Decision {
                        id: v.id,
                        unchoke: true,
                        optimistic: true,
                        cap: Self::cap(c_opt),
                        u_p: Self::cap(c_opt),
                        d_p,
                    }
                } else {
                    Decision {
                        d_p,
                        ..Decision::choke(v.id)
                    }
                }
            })
            .collect()
    }

    /// Between rounds: the newly interested peer `id` takes the optimistic slot if it is
    /// empty (nobody holds it, or its holder left or lost interest). Its cap is f·C, or all
    /// of C when no other interested peer is unchoked.
    pub fn fast_unchoke(&mut self, peers: &[PeerView], id: u64) -> Option<Decision> {
        let v = peers.iter().find(|v| v.id == id)?;
        if !(v.interested && v.choked) {
            return None;
        }
        let held = self
            .optimistic
            .map_or(false, |o| peers.iter().any(|q| q.id == o && q.interested));
        if held {
            return None;
        }
        let others = peers
            .iter()
            .any(|q| q.id != id && q.interested && !q.choked);
        let share = if others {
            self.optimistic_share * self.capacity
        } else {
            self.capacity
        };
        self.optimistic = Some(id);
        Some(Decision {
            id,
            unchoke: true,
            optimistic: true,
            cap: Self::cap(share),
            u_p: Self::cap(share),
            d_p: Some(0.0),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Choker: the one type the chooser holds.
// ---------------------------------------------------------------------------------------

/// Every policy behind one type the chooser holds.
#[derive(Clone, Debug)]
pub enum Choker {
    Vanilla(Vanilla),
    Tyrant(Tyrant),
    PropShare(PropShare),
}

impl Choker {
    /// One round. `round_secs` is the round length (10 s, shorter when time-scaled) to turn
    /// `*_round` byte counts into rates. `seeding`: we have everything — BitTyrant and
    /// PropShare then fall back to their vanilla seed choker.
    pub fn rechoke(
        &mut self,
        peers: &[PeerView],
        seeding: bool,
        round_secs: f64,
        rng: &mut Rng,
    ) -> Vec<Decision> {
        match self {
            Choker::Vanilla(c) => c.rechoke(peers, seeding, rng),
            Choker::Tyrant(c) if seeding => c.seed.rechoke(peers, true, rng),
            Choker::Tyrant(c) => c.rechoke(peers, round_secs, rng),
            Choker::PropShare(c) if seeding => c.seed.rechoke(peers, true, rng),
            Choker::PropShare(c) => c.rechoke(peers, round_secs, rng),
        }
    }

    /// A peer just became interested between rounds: unchoke it now if the policy has room
    /// (vanilla: a free regular slot, rain's FastUnchoke; BitTyrant: its u_p still fits in
    /// the budget left by the peers currently unchoked; PropShare: the optimistic slot is
    /// empty). Returns the decision to apply (with its cap), or None. The peer must be in
    /// `peers`, interested and choked.
    pub fn fast_unchoke(&mut self, peers: &[PeerView], id: u64, seeding: bool) -> Option<Decision> {
        match self {
            Choker::Vanilla(c) => c.fast_unchoke(peers, id),
            Choker::Tyrant(c) if seeding => c.seed.fast_unchoke(peers, id),
            Choker::Tyrant(c) => c.fast_unchoke(peers, id),
            Choker::PropShare(c) if seeding => c.seed.fast_unchoke(peers, id),
            Choker::PropShare(c) => c.fast_unchoke(peers, id),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Choker::Vanilla(_) => "vanilla",
            Choker::Tyrant(_) => "tyrant",
            Choker::PropShare(_) => "propshare",
        }
    }
}

#[cfg(test)]
mod tests;
