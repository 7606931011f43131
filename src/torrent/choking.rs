//! The chooser's side of choking and announcing: per-round `PeerView` snapshots for
//! choke.rs, applying its decisions (per-peer caps first), the `--trace` lines, interest,
//! and the wire-side hooks of the strategies (BitRebel's repeated HAVEs, BitThief's
//! silence, `--reveal`'s rationed HAVEs). Part of the chooser thread.

use super::*;

/// Which choker runs while downloading (choke.rs).
#[derive(Clone, Debug, PartialEq)]
pub enum Strategy {
    Vanilla,
    /// BitTyrant with this initial u_p in bytes/s.
    Tyrant {
        u0: f64,
    },
    /// PropShare with this optimistic fraction of capacity.
    PropShare {
        optimistic_share: f64,
    },
}

impl Strategy {
    /// `up_kib` is the nominal cap; under `--time-scale S` every rate the choker sees and
    /// gives is S times nominal, so capacity, u0 and the u_p floor are scaled here. The slot
    /// rules stay nominal (`slots` was built from the nominal cap).
    pub fn build(&self, slots: &Slots, up_kib: f64, scale: f64) -> Choker {
        let capacity = up_kib * 1024.0 * scale;
        match *self {
            Strategy::Vanilla => Choker::Vanilla(Vanilla::new(slots.clone())),
            // Once complete, both fall back to the vanilla seed choker with our slots.
            Strategy::Tyrant { u0 } => Choker::Tyrant(
                Tyrant::new(TyrantParams {
                    capacity,
                    u0: u0 * scale,
                    floor: TyrantParams::default().floor * scale,
                    scale,
                    ..TyrantParams::default()
                })
                .with_seed_slots(slots.clone()),
            ),
            Strategy::PropShare { optimistic_share } => Choker::PropShare(
                PropShare::new(capacity, optimistic_share).with_seed_slots(slots.clone()),
            ),
        }
    }
}

impl Torrent {
    /// `--reveal N`: keep up to N shown-but-missing pieces at this neighbour.
    pub(super) fn top_up_reveal(&mut self, id: u64) {
        let n = match self.cfg.reveal {
            Some(n) => n as usize,
            None => return,
        };
        let avail: Vec<u32> = (0..self.picker.num_pieces())
            .map(|i| self.picker.availability(i))
            .collect();
        let rebel = self.cfg.rebel;
        if let Some(p) = self.peers.get_mut(&id) {
            if let Phase::Handshaking = p.phase {
                return;
            }
            for i in reveal::to_reveal(self.picker.have_bits(), &p.has, &p.shown, &avail, n) {
                p.shown[i as usize] = true;
                for _ in 0..=rebel {
                    p.send(Message::Have(i));
                }
            }
        }
    }

    /// Tell one peer about a piece we just verified, as the strategy wants: BitThief never,
    /// `--reveal` only to keep the peer interested, BitRebel 1 + N times, others once.
    pub(super) fn announce(&mut self, id: u64, index: u32) {
        if self.cfg.thief {
            return;
        }
        if self.cfg.reveal.is_some() {
            return self.top_up_reveal(id);
        }
        if let Some(p) = self.peers.get(&id) {
            if let Phase::Active = p.phase {
                for _ in 0..=self.cfg.rebel {
                    p.send(Message::Have(index));
                }
            }
        }
    }

    pub(super) fn update_interest(&mut self, id: u64) {
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return,
        };
        if let Phase::Handshaking = p.phase {
            return;
        }
        let want = self.picker.interesting(&p.has);
        if want != p.am_interested {
            p.am_interested = want;
            p.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
    }

    pub(super) fn set_choke(&mut self, id: u64, choke: bool) {
        if let Some(p) = self.peers.get_mut(&id) {
            if p.am_choking == choke {
                return;
            }
            p.am_choking = choke;
            if choke {
                // The writer drops its queue on Choke (BEP 3), so do we.
                p.serving.clear();
                let _ = p.cmd.send(Cmd::Choke);
            } else {
                p.send(Message::Unchoke);
            }
        }
    }

    pub(super) fn views(&self) -> Vec<PeerView> {
        let now = Instant::now();
        self.peers
            .iter()
            .filter(|(_, p)| matches!(p.phase, Phase::Active))
            .map(|(&id, p)| PeerView {
                id,
                interested: p.peer_interested,
                choked: p.am_choking,
                snubbed: now.duration_since(p.last_block) > self.timing.snub,
                down_rate: p.down.rate(now),
                up_rate: p.up.rate(now),
                peer_choking: p.peer_choking,
                down_round: p.down_round,
                up_round: p.up_round,
                unchoked_us: p.unchoked_us || !p.peer_choking,
                have_rate: p.haves.rate(now),
            })
            .collect()
    }

    /// Apply one decision: the cap first, so the first block after an unchoke is paced.
    pub(super) fn apply(&mut self, d: &Decision) {
        if let Some(p) = self.peers.get_mut(&d.id) {
            if d.unchoke && p.cap != d.cap {
                p.cap = d.cap;
                let _ = p.cmd.send(Cmd::SetCap(d.cap));
            }
        }
        self.set_choke(d.id, !d.unchoke);
    }

    pub(super) fn rechoke(&mut self) {
        let now = Instant::now();
        self.round += 1;
        let views = self.views();
        let seeding = self.picker.is_complete();
        // The real length of the round that just ended (the first is shorter, and ticks
        // jitter), so *_round byte counts become honest rates.
        let round_secs = now
            .duration_since(self.round_started)
            .as_secs_f64()
            .max(1e-3);
        self.round_started = now;
        let decisions = if self.cfg.thief {
            // BitThief never unchokes anyone.
            views
                .iter()
                .map(|v| Decision {
                    id: v.id,
                    unchoke: false,
                    optimistic: false,
                    cap: None,
                    u_p: None,
                    d_p: None,
                })
                .collect()
        } else {
            self.choker
                .rechoke(&views, seeding, round_secs, &mut self.rng)
        };
        if self.trace.is_on() {
            let t = now.duration_since(self.started).as_secs_f64();
            for d in &decisions {
                let v = match views.iter().find(|v| v.id == d.id) {
                    Some(v) => v,
                    None => continue,
                };
                let addr = self
                    .peers
                    .get(&d.id)
                    .map_or(String::new(), |p| p.addr.to_string());
                let action = match (d.unchoke, d.optimistic) {
                    (false, _) => "choke",
                    (true, false) => "unchoke",
                    (true, true) => "optimistic",
                };
                self.trace.line(&format!(
                    "round={} t={:.1} peer={} addr={} action={} interested={} u_p={} d_p={} cap={} down_round={} up_round={} unchoked_us={} have_rate={:.0}",
                    self.round,
                    t,
                    d.id,
                    stats::word(&addr),
                    action,
                    v.interested as u8,
                    stats::opt_f(d.u_p),
                    stats::opt_f(d.d_p),
                    stats::opt_f(d.cap),
                    v.down_round,
                    v.up_round,
                    v.unchoked_us as u8,
                    v.have_rate
                ));
            }
        }
        for d in &decisions {
            self.apply(d);
        }
        for p in self.peers.values_mut() {
            p.down_round = 0;
            p.up_round = 0;
            p.unchoked_us = !p.peer_choking;
        }
    }
}
