//! The chooser's connection management: the address book and which addresses to dial,
//! accepting connections, handshake checks (ourselves, duplicates by peer id, banned peers,
//! BitSybil siblings), protocol deadlines, and dropping a peer cleanly.

use super::*;

/// Outgoing connection attempts in flight at once (mainline `max_initiate` spirit).
const MAX_HALF_OPEN: usize = 16;
/// Incoming connections still without a handshake, on top of `--max-peers`.
const MAX_HALF_OPEN_IN: usize = 16;
/// Most peer addresses remembered (tracker replies and `--peer`).
const MAX_KNOWN_ADDRS: usize = 10_000;
/// Failed dials in a row (none reaching a handshake) after which an address is forgotten;
/// between them we wait 3 s, then 30 s doubling.
const MAX_FAILURES: u32 = 5;

impl Chooser {
    /// Addresses from a tracker reply. The book is bounded, and one hostile reply must not
    /// fill it for good: a reply is sampled (not taken in order), and when the book is full
    /// the entries that failed most, then those named longest ago, make room.
    pub fn on_peers(&mut self, now: Instant, mut addrs: Vec<SocketAddr>) {
        addrs.retain(|a| !self.is_self_addr(*a));
        self.rng.shuffle(&mut addrs);
        if addrs.len() > MAX_KNOWN_ADDRS {
            log::debug!("{} tracker peers: keeping a random {}", addrs.len(), MAX_KNOWN_ADDRS);
            addrs.truncate(MAX_KNOWN_ADDRS);
        }
        let new = addrs.iter().filter(|a| !self.addrs.contains_key(a)).count();
        let over = (self.addrs.len() + new).saturating_sub(MAX_KNOWN_ADDRS);
        if over > 0 {
            let mut old: Vec<_> = self
                .addrs
                .iter()
                .filter(|(_, s)| !s.connected && !s.banned)
                .map(|(a, s)| (std::cmp::Reverse(s.failures), s.seen, *a))
                .collect();
            old.sort();
            log::debug!("address book full: forgetting {} addresses", over.min(old.len()));
            for (_, _, a) in old.into_iter().take(over) {
                self.addrs.remove(&a);
            }
        }
        for a in addrs {
            if self.addrs.len() < MAX_KNOWN_ADDRS || self.addrs.contains_key(&a) {
                self.addrs.entry(a).or_default().seen = Some(now);
            }
        }
        self.connect_more(now);
    }

    /// Mainline's `min_peers`: a leecher with few connections and no untried addresses asks
    /// the tracker again as soon as its `min interval` allows, instead of sitting out a
    /// whole `interval` (e.g. when it announced before anyone else had).
    pub(super) fn want_peers(&mut self) {
        if self.picker.is_complete() {
            return;
        }
        let untried = self.addrs.values().any(|s| !s.connected && !s.banned && s.failures == 0);
        if self.strategy.wants_peers(self.peers.len(), untried) {
            self.out.push(Out::Tracker(TrackerCtl::WantPeers));
        }
    }

    fn is_self_addr(&self, a: SocketAddr) -> bool {
        let same = |l: SocketAddr| {
            a.port() == l.port()
                && (a.ip() == l.ip() || (l.ip().is_unspecified() && a.ip().is_loopback()))
        };
        same(self.set.listen) || self.siblings.iter().any(|&(_, s)| same(s))
    }

    /// BitSybil: the other identities of this process (peer id, listen address).
    pub fn set_siblings(&mut self, siblings: Vec<([u8; 20], SocketAddr)>) {
        self.siblings = siblings;
    }

    fn new_peer(&mut self, now: Instant, addr: SocketAddr, outgoing: bool) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let n = self.geo.num_pieces as usize;
        let t = &self.set.timing;
        let peer = Peer {
            addr,
            outgoing,
            peer_id: None,
            active: false,
            opened: now,
            am_choking: true,
            am_interested: false,
            peer_interested: false,
            has: vec![false; n],
            shown: vec![false; n],
            requests: Vec::new(),
            reqq: PIPELINE_MAX.0,
            down: RateMeter::new(t.rate_window, now),
            recent: RateMeter::new(Duration::from_secs(2), now),
            up: RateMeter::new(t.rate_window, now),
            haves: RateMeter::new(t.have_window, now),
            last_recv: now,
            last_block: now,
            unchoking_us: None,
            strikes: 0,
            down_round: 0,
            up_round: 0,
            unchoked_us: false,
            share: (None, 1.0),
            serving: HashSet::new(),
            asked_at: now,
            traded: false,
            optimistic: false,
        };
        self.peers.insert(id, peer);
        id
    }

    /// A connection came in from `addr`: its id, or None to refuse it. At `--max-peers`
    /// (counting connections without a handshake), the oldest of those goes, however young,
    /// so churn at any rate leaves room for honest handshakes, which take a round trip; with
    /// none, the newcomer is let in only if its handshake could replace an idle peer
    /// (`make_room`). Refusals cost no threads.
    pub fn accept(&mut self, now: Instant, addr: SocketAddr) -> Option<u64> {
        let half_open = self.peers.iter().filter(|(_, p)| !p.outgoing && !p.active);
        let oldest = half_open.clone().map(|(&id, p)| (p.opened, id)).min().map(|(_, id)| id);
        let full = self.peers.len() >= self.set.max_peers;
        match oldest {
            Some(id) if full || half_open.count() >= MAX_HALF_OPEN_IN => {
                self.close(now, id, "evicted: no handshake yet, and newer connections wait")
            }
            _ if full && self.victim(now, u64::MAX).is_none() => {
                log::debug!("refusing {}: at --max-peers {}", addr, self.set.max_peers);
                return None;
            }
            _ => {}
        }
        let id = self.new_peer(now, addr, false);
        log::debug!("peer {}: incoming from {}", id, addr);
        Some(id)
    }

    /// Update the address book's entry for peer `id`'s address, if we dialled it: an
    /// incoming connection's address is an ephemeral port, nothing to remember.
    pub(super) fn dialled(&mut self, id: u64, f: impl FnOnce(&mut AddrState)) {
        if let Some(p) = self.peers.get(&id).filter(|p| p.outgoing) {
            f(self.addrs.entry(p.addr).or_default());
        }
    }

    fn active_count(&self) -> usize {
        self.peers.values().filter(|p| p.active).count()
    }

    /// Dial addresses we know and are not connected to. Seeds dial too (as mainline and
    /// libtorrent seeds do): a leecher that cannot or will not dial out, like transmission
    /// with peers on 127.x, is served only by peers that dial it. A complete peer skips
    /// addresses that turned out to be seeds.
    pub(super) fn connect_more(&mut self, now: Instant) {
        let complete = self.picker.is_complete();
        let half_open = self.peers.values().filter(|p| p.outgoing && !p.active).count();
        let budget = MAX_HALF_OPEN.saturating_sub(half_open);
        let room = self.set.max_peers.saturating_sub(self.peers.len());
        let live: Vec<[u8; 20]> = self.peers.values().filter_map(|p| p.peer_id).collect();
        let mut cands: Vec<SocketAddr> = self
            .addrs
            .iter()
            .filter(|(_, s)| !(s.connected || s.banned || complete && s.seed))
            .filter(|(_, s)| s.peer_id.map_or(true, |id| !live.contains(&id)))
            .filter(|(_, s)| s.next_try.map_or(true, |t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        // At random, but the most recently announced first: an old address is likelier dead.
        cands.sort();
        self.rng.shuffle(&mut cands);
        cands.sort_by_key(|a| std::cmp::Reverse(self.addrs.get(a).and_then(|s| s.seen)));
        for a in cands.into_iter().take(budget.min(room)) {
            if let Some(s) = self.addrs.get_mut(&a) {
                s.connected = true;
            }
            let id = self.new_peer(now, a, true);
            log::debug!("peer {}: connecting to {}", id, a);
            self.out.push(Out::Dial(id, a));
        }
    }

    /// At `--max-peers`, a newly handshaken peer takes the place of the least useful one,
    /// as libtorrent's `torrent::disconnect_peers` does, so nobody can hold a full table
    /// with idle connections: first a peer that has sat on an upload slot for a round
    /// asking for nothing (its slot is left free for the newcomer, not refilled), then,
    /// oldest first, one past its first round that has traded nothing and has nothing we
    /// want. Returns whether there is room now.
    fn make_room(&mut self, now: Instant, newcomer: u64) -> bool {
        match self.victim(now, newcomer) {
            Some((sits, id)) => {
                if let Some(p) = self.peers.get_mut(&id).filter(|_| sits) {
                    p.am_choking = true;
                }
                self.close(now, id, "evicted at --max-peers for a newcomer: idle");
                true
            }
            None => false,
        }
    }

    /// The peer `make_room` would replace, and whether it sits on an upload slot.
    fn victim(&self, now: Instant, newcomer: u64) -> Option<(bool, u64)> {
        let round = self.set.timing.round;
        self.peers
            .iter()
            .filter(|(&id, p)| id != newcomer && p.active && now.duration_since(p.opened) > round)
            .filter_map(|(&id, p)| {
                let sits = !p.am_choking && p.peer_interested && !p.optimistic;
                if sits && now.duration_since(p.asked_at) > round {
                    Some((0, p.opened, id))
                } else if !p.traded && !p.am_interested {
                    Some((1, p.opened, id))
                } else {
                    None
                }
            })
            .min()
            .map(|(rank, _, id)| (rank == 0, id))
    }

    /// The peer's handshake named our torrent.
    pub fn on_handshake(&mut self, now: Instant, id: u64, peer_id: [u8; 20]) {
        if peer_id == self.set.peer_id {
            // Never dial our own address again; an incoming connection's address is an
            // ephemeral port (or an impostor's), not something to remember.
            self.dialled(id, |s| s.banned = true);
            return self.close(now, id, "connected to ourselves");
        }
        if self.banned_ids.contains(&peer_id) {
            return self.close(now, id, "banned peer");
        }
        if self.siblings.iter().any(|(s, _)| *s == peer_id) {
            return self.close(now, id, "a sibling identity of this run");
        }
        // Duplicate by peer_id. libtorrent (and clients built on it) keep the connection
        // opened by the side with the greater peer_id ("the peer with greatest peer-id is the
        // one allowed to initiate connections"); so do we with them and with tyrant, so both
        // ends close the same one. aria2 and transmission keep the connection they had first:
        // closing that one there left neither (aria2 seeding lost 2 s per duplicate).
        let ours = self.set.peer_id;
        let by_id = [b"-LT", b"-TY", b"-qB", b"-DE"].iter().any(|c| peer_id.starts_with(&c[..]));
        let dup = self
            .peers
            .iter()
            .find(|(&o, p)| o != id && p.peer_id == Some(peer_id))
            .map(|(&o, p)| (o, p.outgoing));
        if let Some((other, other_out)) = dup {
            let this_out = self.peers.get(&id).map_or(false, |p| p.outgoing);
            let initiator = |out: bool| if out { ours } else { peer_id };
            if by_id && this_out != other_out && initiator(this_out) > initiator(other_out) {
                self.close(now, other, "duplicate connection");
            } else {
                return self.close(now, id, "duplicate connection");
            }
        }
        self.dialled(id, |s| s.peer_id = Some(peer_id));
        if self.active_count() >= self.set.max_peers && !self.make_room(now, id) {
            return self.close(now, id, "at --max-peers, and no idle peer to replace");
        }
        let bitfield = self.strategy.bitfield(self.picker.have_bits());
        if let Some(p) = self.peers.get_mut(&id) {
            p.peer_id = Some(peer_id);
            p.active = true;
            log::debug!("peer {}: handshake done ({})", id, p.addr);
            if let Some(bits) = bitfield {
                p.shown = bits.clone();
                self.send(id, Message::Bitfield(crate::peer::bits_to_bytes(&bits)));
            }
            self.show(id, None);
        }
    }

    pub(super) fn check_deadlines(&mut self, now: Instant) {
        let t = &self.set.timing;
        let mut close = Vec::new();
        let mut stalled = Vec::new();
        for (&id, p) in &self.peers {
            let age = now.duration_since(p.opened);
            // Outgoing connections get the connect time on top of the handshake's.
            let connect = if p.outgoing { t.connect } else { Duration::ZERO };
            if !p.active && age > t.handshake + connect {
                close.push((id, "handshake timed out"));
            } else if p.active && now.duration_since(p.last_recv) > t.idle {
                close.push((id, "idle for too long"));
            } else if p.active
                && now.duration_since(p.asked_at) > t.idle
                && (!p.am_choking && p.peer_interested || !p.am_interested && !p.peer_interested)
            {
                // Keep-alives alone keep no slot: a peer we unchoked that asks for nothing,
                // or one with nothing to trade either way, goes (a choked peer waiting for
                // its turn stays).
                close.push((id, "nothing asked for too long"));
            } else if let Some(oldest) = p.requests.iter().map(|(_, t)| *t).min() {
                // A request outstanding for longer than the timeout with no block arriving
                // meanwhile: give those blocks to someone else.
                if p.active && now.duration_since(p.last_block.max(oldest)) > t.request_timeout {
                    stalled.push(id);
                }
            }
        }
        for (id, why) in close {
            self.close(now, id, why);
        }
        for &id in &stalled {
            // Still there: closing other peers above removes nobody else.
            let reqs =
                self.peers.get_mut(&id).map_or_else(Vec::new, |p| std::mem::take(&mut p.requests));
            log::debug!("peer {}: {} requests stalled, re-assigning", id, reqs.len());
            for (r, _) in reqs {
                self.send(id, Message::Cancel(r));
                self.picker.release(id, r);
            }
        }
        if !stalled.is_empty() {
            // The other peers ask first, so the blocks really move; a staller that is the
            // only source still gets them back.
            let (slow, others): (Vec<u64>, Vec<u64>) =
                self.ids(|_| true).iter().partition(|i| stalled.contains(i));
            for id in others.into_iter().chain(slow) {
                self.request_more(now, id);
            }
        }
    }

    /// Drop a peer: the session shuts its socket down, so both of its threads end.
    pub fn close(&mut self, now: Instant, id: u64, why: &str) {
        if self.peers.contains_key(&id) {
            self.out.push(Out::Close(id));
        }
        self.on_closed(now, id, why);
    }

    pub fn close_all(&mut self, now: Instant, why: &str) {
        for id in self.ids(|_| true) {
            self.close(now, id, why);
        }
    }

    /// The peer's connection ended (or we ended it): forget it.
    pub fn on_closed(&mut self, now: Instant, id: u64, why: &str) {
        let p = match self.peers.remove(&id) {
            Some(p) => p,
            None => return,
        };
        log::debug!("peer {} ({}): closed: {}", id, p.addr, why);
        if p.active && !p.am_choking && p.peer_interested {
            self.refill(now);
        }
        for (r, _) in &p.requests {
            self.picker.release(id, *r);
        }
        self.picker.peer_removed(&p.has);
        if p.outgoing {
            let st = self.addrs.entry(p.addr).or_default();
            st.connected = false;
            st.failures = if p.active { 0 } else { st.failures + 1 };
            // A busy peer that refused us once is worth asking again soon.
            let backoff = match st.failures {
                0 => 15,
                1 => 3,
                n => 15 << (n - 1).min(6),
            };
            st.next_try = Some(now + Duration::from_secs(backoff));
            if st.failures >= MAX_FAILURES && !st.banned {
                self.addrs.remove(&p.addr);
            }
            if !p.active {
                // A failed dial frees a half-open slot: use it now, not at the next tick.
                self.connect_more(now);
            }
        }
        if !p.requests.is_empty() {
            self.request_all(now);
        }
    }
}
