//! BitTyrant: Piatek, Isdal, Anderson, Krishnamurthy, Venkataramani, "Do incentives build
//! robustness in BitTorrent?", NSDI 2007 §4, as Piatek's released `MikesUnchoker` ran it
//! (with `GlobalTorrentAwareDownloadingUnchoker`, BitTyrant 1.1.1), without downpour's bugs
//! (docs/strategies.md, "BitTyrant"; docs/downpour.md, bugs 1–9).
//!
//! Per peer p: u_p, the upload rate p needs from us to reciprocate (unset until we offer
//! one: the market rate stands in), and d_p, the download rate p gives us when it unchokes
//! us. Each 10 s round, before ranking:
//!   p unchokes us and we want its pieces                 d_p ← its 20 s download rate
//!   we unchoke p, p chokes us, we want its pieces         u_p ← (1+δ)·u_p   (δ = 0.2)
//!   we unchoke p and p has not choked us for 30 s         u_p ← (1−γ)·u_p   (γ = 0.1)
//! The market rate is the mean u_p of the peers we unchoke (more than 2 of them), else
//! 3 KiB/s (`--tyrant-u0`), never below 1 KiB/s; the released code's starting value of
//! 7 KB/s is overwritten before its first use. A peer never observed gets d_p from
//! its HAVE rate over the active set mainline uses at that rate (the paper's estimate; the
//! released code uses the same division on its receive rate, which is 0 for such a peer).
//! Peers are ranked by d_p/u_p, and capacity is filled in three passes, each skipping a
//! peer that does not fit (Σu_p + u_p ≤ cap) and going on: (1) peers we want pieces from,
//! except those observed to give less than they take; (2) all peers we want pieces from;
//! (3) with what is left, any interested peer, stalest information first: BitTyrant
//! "always contributes excess capacity". Each unchoked peer is capped at its u_p. No
//! optimistic unchoke and no unchoke between rounds.
//!
//! A long-lived user (`--tyrant-memory FILE`) keeps u_p and d_p of peers that leave, by
//! address, and finds them again when they return or when the next process (a closed-loop
//! rejoin) loads the file; without it a peer's estimates die with its connection.
//!
//! Ablation switches, one mechanism each: `excess` (keep: no third pass, the selfish
//! variant the paper discusses), `rank` (ratio d_p/u_p, rate d_p alone, random), `shape`
//! (off: no per-peer caps, one shared bucket as vanilla).

use crate::choke::{mainline_slots, Decision, PeerView};
use crate::rng::Rng;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// What to do with capacity left after the first two passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Excess {
    Give,
    Keep,
}

/// How peers are ordered for the first two passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rank {
    Ratio,
    Rate,
    Random,
}

/// BitTyrant's constants (paper §4; released code). Rates in bytes/s.
#[derive(Clone, Debug, PartialEq)]
pub struct TyrantParams {
    /// Our upload capacity; not finite or ≤ 0: uncapped.
    pub capacity: f64,
    /// The market rate with 2 or fewer peers unchoked: 3 KB/s (`--tyrant-u0`).
    pub market_default: f64,
    /// The market rate and every u_p stay at or above this: 1 KB/s.
    pub floor: f64,
    /// δ (`UPLOAD_RATE_INCREMENT`) and γ (the ×0.9).
    pub delta: f64,
    pub gamma: f64,
    /// A peer that has not choked us for this long (30 s, real seconds under --time-scale)
    /// gets u_p lowered.
    pub patience: f64,
    /// `--time-scale S`: every rate above is already S times nominal; the active-set rule
    /// applied to peers' rates needs the nominal rate back.
    pub scale: f64,
    pub excess: Excess,
    pub rank: Rank,
    pub shape: bool,
}

impl Default for TyrantParams {
    fn default() -> TyrantParams {
        TyrantParams {
            capacity: f64::INFINITY,
            market_default: 3072.0,
            floor: 1024.0,
            delta: 0.2,
            gamma: 0.1,
            patience: 30.0,
            scale: 1.0,
            excess: Excess::Give,
            rank: Rank::Ratio,
            shape: true,
        }
    }
}

/// d_p for a peer we never observed: its HAVE rate (its download rate, taken as its upload
/// capacity) split over the active set mainline uses at that nominal rate.
fn have_estimate(have_rate: f64, scale: f64) -> f64 {
    if have_rate > 0.0 {
        have_rate / mainline_slots(have_rate / scale.max(1e-9) / 1024.0) as f64
    } else {
        0.0
    }
}

/// BitTyrant's memory of one peer. As in the released `TyrantStats`, 0 means unknown:
/// u_p not yet offered (the market rate stands in), d_p not observed (the estimate does).
#[derive(Clone, Debug, Default, PartialEq)]
struct PeerState {
    u_p: f64,
    d_p: f64,
    /// The round of the last d_p observation; 0 for never (the stalest).
    seen: u64,
    ip: Option<IpAddr>,
}

/// The BitTyrant choker.
#[derive(Clone)]
pub struct Tyrant {
    params: TyrantParams,
    market: f64,
    round: u64,
    peers: BTreeMap<u64, PeerState>,
    /// Estimates of departed peers, by address (`None`: a new user, nothing kept).
    memory: Option<BTreeMap<IpAddr, PeerState>>,
}

impl Tyrant {
    pub fn new(mut params: TyrantParams) -> Tyrant {
        if !(params.capacity.is_finite() && params.capacity > 0.0) {
            params.capacity = f64::INFINITY;
        }
        // Rates above the capacity would never fit again, and with --up below the market
        // rate nobody would ever be unchoked: the released code had neither bound.
        params.floor = params.floor.max(1.0).min(params.capacity);
        params.market_default = params.market_default.max(params.floor).min(params.capacity);
        let peers = BTreeMap::new();
        Tyrant { market: params.market_default, params, round: 0, peers, memory: None }
    }

    /// Become a long-lived user: keep departed peers' estimates, starting from `text` as
    /// `remembered` wrote it (lines `IP u_p d_p`, nominal bytes/s; bad lines are skipped).
    pub fn recall(&mut self, text: &str) {
        let s = self.params.scale;
        let mut memory = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let [ip, u, d] = w[..] {
                if let (Ok(ip), Ok(u), Ok(d)) = (ip.parse(), u.parse::<f64>(), d.parse::<f64>()) {
                    let ok = |x: f64| if x.is_finite() && x > 0.0 { x * s } else { 0.0 };
                    let st = PeerState { u_p: ok(u), d_p: ok(d), seen: 0, ip: Some(ip) };
                    memory.insert(ip, st);
                }
            }
        }
        self.memory = Some(memory);
    }

    /// What a long-lived user keeps for its next process, peers still connected included.
    pub fn remembered(&self) -> Option<String> {
        let mut all = self.memory.clone()?;
        all.extend(self.peers.values().filter_map(|p| Some((p.ip?, p.clone()))));
        let s = self.params.scale;
        let mut out = String::from("# tyrant memory v1: IP u_p d_p (nominal bytes/s, 0 unknown)\n");
        for (ip, p) in &all {
            out.push_str(&format!("{} {:.0} {:.0}\n", ip, p.u_p / s, p.d_p / s));
        }
        Some(out)
    }

    /// The market rate now (the trace shows it).
    pub fn market(&self) -> f64 {
        self.market
    }

    /// One round (paper §4; `calculateUnchokes` + `calculateChokesAndUnchokes`).
    pub fn rechoke(&mut self, peers: &[PeerView], rng: &mut Rng) -> Vec<Decision> {
        let p = self.params.clone();
        self.round += 1;
        let (gone, kept) = std::mem::take(&mut self.peers)
            .into_iter()
            .partition(|(id, _)| !peers.iter().any(|v| v.id == *id));
        self.peers = kept;
        if let Some(m) = self.memory.as_mut() {
            m.extend(gone.into_values().filter_map(|s: PeerState| Some((s.ip?, s))));
        }
        for v in peers {
            let memory = &mut self.memory;
            let s = self.peers.entry(v.id).or_insert_with(|| {
                let known = memory.as_mut().zip(v.ip).and_then(|(m, ip)| m.remove(&ip));
                PeerState { ip: v.ip, ..known.unwrap_or_default() }
            });
            if !v.peer_choking && v.interesting {
                s.d_p = v.down_rate;
                s.seen = self.round;
            }
            let grow = !v.choked && v.peer_choking && v.interesting;
            let shrink = !v.choked && !v.peer_choking && v.unchoked_us_secs >= p.patience;
            if s.u_p > 0.0 && (grow || shrink) {
                let f = if grow { 1.0 + p.delta } else { 1.0 - p.gamma };
                s.u_p = (s.u_p * f).max(p.floor).min(p.capacity);
            }
        }
        // The mean offered rate over the peers we unchoke; one never offered a rate (given
        // excess capacity only) counts 0, as the released code's sum does.
        let unchoked: Vec<f64> =
            peers.iter().filter(|v| !v.choked).map(|v| self.peers[&v.id].u_p).collect();
        self.market = if unchoked.len() > 2 {
            unchoked.iter().sum::<f64>() / unchoked.len() as f64
        } else {
            p.market_default
        }
        .max(p.floor)
        .min(p.capacity);

        let market = self.market;
        let d = |v: &PeerView, s: &PeerState| {
            if s.d_p > 0.0 {
                s.d_p
            } else {
                have_estimate(v.have_rate, p.scale)
            }
        };
        let offer = |s: &PeerState| if s.u_p > 0.0 { s.u_p } else { market };
        let mut order: Vec<(&PeerView, f64)> = peers
            .iter()
            .map(|v| {
                let s = &self.peers[&v.id];
                (v, d(v, s) / offer(s))
            })
            .collect();
        rng.shuffle(&mut order);
        let key = |(v, ratio): &(&PeerView, f64)| match p.rank {
            Rank::Ratio => *ratio,
            Rank::Rate => d(v, &self.peers[&v.id]),
            Rank::Random => 0.0,
        };
        order.sort_by(|a, b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal));

        let mut used = 0.0;
        let mut pass_of: BTreeMap<u64, u8> = BTreeMap::new();
        for pass in 1..=3u8 {
            if pass == 3 {
                if p.excess == Excess::Keep {
                    break;
                }
                let seen = |v: &PeerView| self.peers[&v.id].seen;
                order.sort_by_key(|(v, _)| seen(v));
            }
            for (v, ratio) in &order {
                let s = &self.peers[&v.id];
                let observed = s.d_p > 0.0 && s.u_p > 0.0;
                let ok = match pass {
                    1 => v.interesting && !v.snubbed && !(observed && *ratio < 1.0),
                    2 => v.interesting && !v.snubbed,
                    _ => true,
                };
                let off = offer(s);
                if ok && v.interested && !pass_of.contains_key(&v.id) && used + off <= p.capacity {
                    used += off;
                    pass_of.insert(v.id, pass);
                }
            }
        }
        for (id, &pass) in &pass_of {
            // Passes 1 and 2 commit u_p (`updateOfferedRate`); the third leaves it unset.
            if pass < 3 {
                if let Some(s) = self.peers.get_mut(id) {
                    s.u_p = offer(s);
                }
            }
        }
        peers
            .iter()
            .map(|v| {
                let s = &self.peers[&v.id];
                let pass = pass_of.get(&v.id).copied().unwrap_or(0);
                let off = offer(s);
                Decision {
                    unchoke: pass > 0,
                    optimistic: pass > 1,
                    cap: Some(off).filter(|_| pass > 0 && p.shape),
                    u_p: Some(off),
                    d_p: Some(d(v, s)),
                    pass,
                    ..Decision::choke(v.id)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
