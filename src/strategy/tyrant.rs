//! BitTyrant: Piatek, Isdal, Anderson, Krishnamurthy, Venkataramani, "Do incentives build
//! robustness in BitTorrent?", NSDI 2007 §4, as the released `MikesUnchoker` does it, and
//! without downpour's bugs (docs/strategies.md, "BitTyrant"; docs/downpour.md, bugs 1–9).
//!
//! Per peer p we keep d_p (the download rate we expect from p if we unchoke it) and u_p (the
//! upload rate p needs from us to reciprocate). At the end of each round, for each peer WE
//! unchoked during it (never for the others: downpour's bug 3):
//!   p did not unchoke us                      u_p ← (1+δ)·u_p
//!   p unchoked us                             d_p ← observed download rate from p
//!   p has unchoked us for the last r rounds   u_p ← (1−γ)·u_p  (every such round)
//! with δ = 0.2, γ = 0.1, r = 3 and u_p never below a floor (bug 4 reached 0). A peer we get
//! no data from has d_p estimated from its HAVE announcements: its download rate stands in
//! for its upload capacity, divided by the active set the reference client uses at that
//! capacity (its equal split), for every such peer (bugs 1 and 2). Then rank the interested
//! peers by d_p/u_p and unchoke them while Σu_p fits our capacity, skipping a peer that does
//! not fit (bug 5). Each unchoked peer is capped at its u_p. No optimistic unchoke.

use crate::choke::{mainline_slots, per_sec, Decision, PeerView};
use crate::rng::Rng;
use std::collections::BTreeMap;

/// BitTyrant's constants (paper §4; released `MikesUnchoker`). Rates in bytes/s.
#[derive(Clone, Debug, PartialEq)]
pub struct TyrantParams {
    /// Our upload capacity. Not finite or ≤ 0 means uncapped: every interested peer is
    /// unchoked, each still capped at its u_p.
    pub capacity: f64,
    /// Initial u_p: the released code's "market rate", 7 KB/s.
    pub u0: f64,
    /// δ: u_p grows by this fraction after an unreciprocated round.
    pub delta: f64,
    /// γ: u_p shrinks by this fraction after r reciprocated rounds.
    pub gamma: f64,
    pub r: u32,
    /// u_p never goes below this (at least 1).
    pub floor: f64,
    /// `--time-scale S`: every rate above is already S times nominal; only the active-set
    /// rule applied to peers' observed rates needs the nominal rate back.
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

/// d_p for a peer we observe no download from: its HAVE rate (its download rate, taken as
/// its upload capacity) split over the active set mainline uses at that nominal capacity.
fn have_estimate(have_rate: f64, scale: f64) -> f64 {
    if have_rate > 0.0 {
        have_rate / mainline_slots(have_rate / scale.max(1e-9) / 1024.0) as f64
    } else {
        0.0
    }
}

/// BitTyrant's memory of one peer.
#[derive(Clone, Debug, PartialEq)]
struct PeerState {
    u_p: f64,
    d_p: f64,
    /// Consecutive rounds in which we unchoked the peer and it reciprocated.
    streak: u32,
    unchoked_last_round: bool,
}

/// The BitTyrant choker.
#[derive(Clone)]
pub struct Tyrant {
    params: TyrantParams,
    peers: BTreeMap<u64, PeerState>,
}

impl Tyrant {
    pub fn new(mut params: TyrantParams) -> Tyrant {
        if !(params.capacity.is_finite() && params.capacity > 0.0) {
            params.capacity = f64::INFINITY;
        }
        // u_p never exceeds what we have to give: a peer whose u_p outgrew the capacity would
        // never fit again (its u_p only changes while unchoked), and with --up below the
        // market rate no peer would ever be unchoked at all.
        params.floor = params.floor.max(1.0).min(params.capacity);
        params.u0 = params.u0.max(params.floor).min(params.capacity);
        Tyrant { params, peers: BTreeMap::new() }
    }

    fn fresh(&self, v: &PeerView) -> PeerState {
        PeerState {
            u_p: self.params.u0,
            d_p: have_estimate(v.have_rate, self.params.scale),
            streak: 0,
            unchoked_last_round: false,
        }
    }

    fn decision(&self, id: u64, unchoke: bool) -> Decision {
        let s = &self.peers[&id];
        Decision {
            id,
            unchoke,
            optimistic: false,
            cap: Some(s.u_p).filter(|_| unchoke),
            u_p: Some(s.u_p),
            d_p: Some(s.d_p),
        }
    }

    /// One leecher round (paper §4). `round_secs` turns `down_round` into a rate.
    pub fn rechoke(&mut self, peers: &[PeerView], round_secs: f64, rng: &mut Rng) -> Vec<Decision> {
        let p = self.params.clone();
        self.peers.retain(|id, _| peers.iter().any(|v| v.id == *id));
        for v in peers {
            let fresh = self.fresh(v);
            let s = self.peers.entry(v.id).or_insert(fresh);
            // 1. u_p changes only for peers we unchoked last round.
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
            // 2. d_p: the observed rate when the peer sent us data this round, otherwise the
            //    HAVE-rate estimate (for every such peer, unchoked by us or not).
            s.d_p = if v.down_round > 0 {
                per_sec(v.down_round, round_secs)
            } else {
                have_estimate(v.have_rate, p.scale)
            };
        }
        // 3. Rank the interested peers by d_p/u_p (shuffle, then a stable sort, so ties fall
        //    at random) and fill the capacity with whole peers, skipping misfits.
        let mut ranked: Vec<(u64, f64)> = peers
            .iter()
            .filter(|v| v.interested)
            .map(|v| (v.id, self.peers[&v.id].d_p / self.peers[&v.id].u_p))
            .collect();
        rng.shuffle(&mut ranked);
        ranked.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
        let mut used = 0.0;
        let mut unchoked = Vec::new();
        for (id, _) in ranked {
            let u_p = self.peers[&id].u_p;
            if used + u_p <= p.capacity {
                used += u_p;
                unchoked.push(id);
            }
        }
        for (id, s) in self.peers.iter_mut() {
            s.unchoked_last_round = unchoked.contains(id);
        }
        peers.iter().map(|v| self.decision(v.id, unchoked.contains(&v.id))).collect()
    }

    /// Between rounds: unchoke the newly interested peer `id` if its u_p fits in the
    /// capacity left by the peers unchoked right now. It then counts as unchoked by us for
    /// the round, so the next round updates its u_p.
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
        let fresh = self.fresh(v);
        let s = self.peers.entry(id).or_insert(fresh);
        if used + s.u_p > self.params.capacity {
            return None;
        }
        s.unchoked_last_round = true;
        Some(self.decision(id, true))
    }
}

#[cfg(test)]
mod tests;
