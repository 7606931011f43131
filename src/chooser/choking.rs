//! The chooser's side of choking and announcing: the round (snapshots in, the strategy's
//! decisions applied, per-peer caps first), the `--trace` lines, our interest, and the
//! HAVEs the strategy wants each neighbour to see.

use super::*;
use crate::choke::Decision;
use crate::stats::{opt_f, word};

impl Chooser {
    /// Send peer `id` the HAVEs the strategy wants it to see: for the piece we just
    /// verified (`new`), or whatever its changed bitfield calls for (`None`).
    pub(super) fn show(&mut self, id: u64, new: Option<u32>) {
        if let Some(p) = self.peers.get_mut(&id).filter(|p| p.active) {
            for i in self.strategy.haves(new, &self.picker, &p.has, &p.shown) {
                p.shown[i as usize] = true;
                self.out.push(Out::Send(id, Cmd::Send(Message::Have(i))));
            }
        }
    }

    pub(super) fn update_interest(&mut self, id: u64) {
        if let Some(p) = self.peers.get_mut(&id).filter(|p| p.active) {
            let want = self.picker.interesting(&p.has);
            if want != p.am_interested {
                p.am_interested = want;
                let m = if want { Message::Interested } else { Message::NotInterested };
                self.send(id, m);
            }
        }
    }

    /// Apply one decision: the cap first, so the first block after an unchoke is paced.
    pub(super) fn apply(&mut self, now: Instant, d: &Decision) {
        let p = match self.peers.get_mut(&d.id) {
            Some(p) => p,
            None => return,
        };
        p.optimistic = d.unchoke && d.optimistic;
        if d.unchoke && p.share != (d.cap, d.weight) {
            p.share = (d.cap, d.weight);
            self.out.push(Out::Share(d.id, d.cap, d.weight));
        }
        if p.am_choking == d.unchoke {
            p.am_choking = !d.unchoke;
            if d.unchoke {
                p.asked_at = now;
                self.send(d.id, Message::Unchoke);
            } else {
                // The writer drops its queue on Choke (BEP 3), so do we.
                p.serving.clear();
                self.out.push(Out::Send(d.id, Cmd::Choke));
            }
        }
    }

    /// An unchoked peer left or changed its interest: let the strategy fill the slot now.
    pub(super) fn refill(&mut self, now: Instant) {
        let views = self.views(now);
        let seeding = self.picker.is_complete();
        for d in self.strategy.refill(&views, seeding, &mut self.rng).unwrap_or_default() {
            self.apply(now, &d);
        }
    }

    pub(super) fn rechoke(&mut self, now: Instant) {
        self.round += 1;
        let views = self.views(now);
        let seeding = self.picker.is_complete();
        // The real length of the round that just ended (the first is shorter, and ticks
        // jitter), so *_round byte counts become honest rates.
        let round_secs = now.duration_since(self.round_started).as_secs_f64().max(1e-3);
        self.round_started = now;
        let decisions = self.strategy.rechoke(&views, seeding, round_secs, &mut self.rng);
        if self.set.trace {
            let t = now.duration_since(self.started).as_secs_f64();
            let market = opt_f(self.strategy.market());
            for (d, v) in decisions.iter().zip(&views) {
                let addr = self.peers.get(&d.id).map(|p| p.addr.to_string());
                let action = match (d.unchoke, d.optimistic) {
                    (false, _) => "choke",
                    (true, false) => "unchoke",
                    (true, true) => "optimistic",
                };
                let pass = if d.pass > 0 { d.pass.to_string() } else { "-".into() };
                let line = format!(
                    "round={} t={:.1} peer={} addr={} action={} pass={} interested={} interesting={} snubbed={} u_p={} d_p={} cap={} weight={:.3} market={} down_round={} up_round={} unchoked_us={} have_rate={:.0}",
                    self.round, t, d.id, word(&addr.unwrap_or_default()), action, pass,
                    v.interested as u8, v.interesting as u8, v.snubbed as u8, opt_f(d.u_p),
                    opt_f(d.d_p), opt_f(d.cap), d.weight, market, v.down_round, v.up_round,
                    v.unchoked_us as u8, v.have_rate
                );
                self.out.push(Out::Trace(line));
            }
        }
        for d in &decisions {
            self.apply(now, d);
        }
        for p in self.peers.values_mut() {
            p.down_round = 0;
            p.up_round = 0;
            p.unchoked_us = p.unchoking_us.is_some();
        }
    }
}
