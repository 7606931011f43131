//! PropShare: Levin, LaCurts, Spring, Bhattacharjee, "BitTorrent is an Auction: Analyzing
//! and Improving BitTorrent's Incentives", SIGCOMM 2008 §4 (docs/strategies.md,
//! "PropShare").
//!
//! Each round, b_p = the bytes interested peer p sent us last round. The reciprocal
//! capacity C_r = (1−f)·C is split in proportion: p's share is C_r·b_p/Σb_q. The
//! optimistic share f·C goes to one other interested peer, picked at random and rotated
//! every `OPTIMISTIC_ROUNDS` rounds (kept in between while it stays interested and still
//! has not sent us anything). With nobody to reward (Σb = 0) the optimistic peer gets all
//! of C; with nobody to unchoke optimistically the reciprocal peers share all of C.
//!
//! The shares are weights in the upload pacer (pacer.rs), not caps: when every unchoked
//! peer wants data each gets exactly its share, and a share a peer cannot absorb goes to
//! the others in proportion to theirs, so no capacity sits idle while peers want data
//! (work-conserving). The paper's text we could check does not say how its implementation
//! spent an unused share; this is our reading, in docs/strategies.md, "PropShare".

use crate::choke::{Decision, PeerView, OPTIMISTIC_ROUNDS};
use crate::rng::Rng;

/// The default optimistic share f: mainline's one optimistic slot in five.
pub const OPTIMISTIC_SHARE: f64 = 0.2;

/// The PropShare choker.
pub struct PropShare {
    capacity: f64,
    optimistic_share: f64,
    round: u64,
    optimistic: Option<u64>,
}

/// A finite rate as a cap; uncapped otherwise.
fn cap(rate: f64) -> Option<f64> {
    Some(rate).filter(|r| r.is_finite())
}

impl PropShare {
    /// `capacity` in bytes/s (not finite or ≤ 0: uncapped, no per-peer caps);
    /// `optimistic_share` is f, clamped to [0, 1].
    pub fn new(capacity: f64, optimistic_share: f64) -> PropShare {
        PropShare {
            capacity: Some(capacity).filter(|c| c.is_finite() && *c > 0.0).unwrap_or(f64::INFINITY),
            optimistic_share: if optimistic_share.is_nan() {
                OPTIMISTIC_SHARE
            } else {
                optimistic_share.clamp(0.0, 1.0)
            },
            round: 0,
            optimistic: None,
        }
    }

    /// One leecher round (paper §4). `round_secs` turns b_p into the trace's d_p.
    pub fn rechoke(&mut self, peers: &[PeerView], round_secs: f64, rng: &mut Rng) -> Vec<Decision> {
        let rotate = self.round % OPTIMISTIC_ROUNDS == 0;
        self.round += 1;
        let reciprocal = |v: &PeerView| v.interested && v.down_round > 0;
        let sum_b: u64 = peers.iter().filter(|v| reciprocal(v)).map(|v| v.down_round).sum();

        // The optimistic peer: kept between rotations while it is still a candidate.
        let candidate = |v: &PeerView| v.interested && v.down_round == 0;
        let still_valid = |id: u64| peers.iter().any(|v| v.id == id && candidate(v));
        if rotate || !self.optimistic.map_or(false, still_valid) {
            let pool: Vec<u64> = peers.iter().filter(|v| candidate(v)).map(|v| v.id).collect();
            // `below(0)` is 0 and draws nothing: an empty pool leaves no optimistic peer.
            self.optimistic = pool.get(rng.below(pool.len() as u64) as usize).copied();
        }

        let f = self.optimistic_share;
        let (c_r, c_opt) = match (sum_b > 0, self.optimistic.is_some()) {
            (true, true) => ((1.0 - f) * self.capacity, f * self.capacity),
            (true, false) => (self.capacity, 0.0),
            (false, _) => (0.0, self.capacity),
        };
        // Shares are the peers' weights in the upload pacer, not caps: under contention
        // each gets its share of C, and what one cannot use goes to the others.
        let unchoke = |v: &PeerView, rate: f64, optimistic: bool| Decision {
            unchoke: true,
            optimistic,
            u_p: cap(rate),
            weight: rate / self.capacity,
            ..Decision::choke(v.id)
        };
        // d_p for the trace: bytes over the round → bytes/s (0 for a degenerate round).
        let per_sec = |b: u64| if round_secs > 0.0 { b as f64 / round_secs } else { 0.0 };
        peers
            .iter()
            .map(|v| {
                let d = if reciprocal(v) {
                    unchoke(v, c_r * (v.down_round as f64 / sum_b as f64), false)
                } else if Some(v.id) == self.optimistic {
                    unchoke(v, c_opt, true)
                } else {
                    Decision::choke(v.id)
                };
                Decision { d_p: Some(per_sec(v.down_round)), ..d }
            })
            .collect()
    }

    /// Between rounds: the newly interested peer `id` takes the optimistic slot if it is
    /// empty (nobody holds it, or its holder left or lost interest). Its share is f·C, or all
    /// of C when no other interested peer is unchoked.
    pub fn fast_unchoke(&mut self, peers: &[PeerView], id: u64) -> Option<Decision> {
        let v = peers.iter().find(|v| v.id == id)?;
        let held =
            self.optimistic.map_or(false, |o| peers.iter().any(|q| q.id == o && q.interested));
        if !(v.interested && v.choked) || held {
            return None;
        }
        let others = peers.iter().any(|q| q.id != id && q.interested && !q.choked);
        let share = if others { self.optimistic_share * self.capacity } else { self.capacity };
        self.optimistic = Some(id);
        Some(Decision {
            unchoke: true,
            optimistic: true,
            u_p: cap(share),
            d_p: Some(0.0),
            weight: share / self.capacity,
            ..Decision::choke(id)
        })
    }
}

#[cfg(test)]
mod tests;
