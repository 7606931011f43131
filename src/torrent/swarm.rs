//! The chooser's connection management: which addresses to dial, handshake checks
//! (ourselves, duplicates by peer id, banned peers, BitSybil siblings), protocol deadlines
//! enforced with `shutdown()`, and dropping a peer cleanly. Part of the chooser thread.

use super::*;

impl Torrent {
    pub(super) fn on_tracker(&mut self, r: TrackerReply) {
        match r.result {
            Ok(resp) => {
                log::info!("tracker {}: {} peers", r.url, resp.peers.len());
                for a in resp.peers {
                    // A hostile tracker may list 50,000 peers: the address book is bounded.
                    if self.addrs.len() >= MAX_KNOWN_ADDRS && !self.addrs.contains_key(&a) {
                        log::debug!("address book full ({}); ignoring the rest", MAX_KNOWN_ADDRS);
                        break;
                    }
                    if !self.is_self_addr(a) {
                        self.addrs.entry(a).or_default();
                    }
                }
                self.connect_more();
            }
            Err(e) => log::warn!("tracker {}: {}", r.url, e),
        }
    }

    /// Mainline's `min_peers`: a leecher with few connections and no untried addresses
    /// asks the tracker again as soon as its `min interval` allows, instead of sitting out
    /// a whole `interval` (e.g. when it announced before anyone else had).
    pub(super) fn want_peers(&self) {
        if self.picker.is_complete() {
            return;
        }
        if self.cfg.thief {
            // BitThief's large view: re-announce as often as `min interval` allows.
            if let Some(t) = &self.tracker_ctl {
                let _ = t.send(TrackerCtl::WantPeers);
            }
            return;
        }
        if self.peers.len() >= MIN_PEERS {
            return;
        }
        let untried = self
            .addrs
            .values()
            .any(|s| !s.connected && !s.banned && s.failures == 0);
        if !untried {
            if let Some(t) = &self.tracker_ctl {
                let _ = t.send(TrackerCtl::WantPeers);
            }
        }
    }

    pub(super) fn is_self_addr(&self, a: SocketAddr) -> bool {
        let same = |l: SocketAddr| {
            a.port() == l.port()
                && (a.ip() == l.ip() || (l.ip().is_unspecified() && a.ip().is_loopback()))
        };
        same(self.listen) || self.siblings.iter().any(|&(_, s)| same(s))
    }

    /// BitSybil: the other identities of this run, which we never connect to or trade with.
    pub fn set_siblings(&mut self, siblings: Vec<([u8; 20], SocketAddr)>) {
        self.siblings = siblings;
    }

    pub(super) fn new_peer(
        &mut self,
        addr: SocketAddr,
        outgoing: bool,
    ) -> (u64, crossbeam_channel::Receiver<Cmd>) {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = crossbeam_channel::unbounded();
        let now = Instant::now();
        let n = self.picker.num_pieces() as usize;
        self.peers.insert(
            id,
            Peer {
                addr,
                outgoing,
                stream: None,
                cmd: tx,
                peer_id: None,
                phase: Phase::Handshaking,
                opened: now,
                am_choking: true,
                am_interested: false,
                peer_choking: true,
                peer_interested: false,
                has: vec![false; n],
                has_count: 0,
                requests: Vec::new(),
                down: RateMeter::new(self.timing.rate_window, now),
                up: RateMeter::new(self.timing.rate_window, now),
                last_recv: now,
                last_block: now,
                strikes: 0,
                down_round: 0,
                up_round: 0,
                unchoked_us: false,
                haves: RateMeter::new(self.timing.have_window, now),
                cap: None,
                serving: HashSet::new(),
                shown: if self.cfg.reveal.is_some() {
                    vec![false; n]
                } else {
                    Vec::new()
                },
            },
        );
        (id, rx)
    }

    pub(super) fn connect_more(&mut self) {
        let now = Instant::now();
        let half_open = self
            .peers
            .values()
            .filter(|p| p.outgoing && matches!(p.phase, Phase::Handshaking))
            .count();
        let mut budget = MAX_HALF_OPEN.saturating_sub(half_open);
        let mut room = self.cfg.max_peers.saturating_sub(self.peers.len());
        if self.picker.is_complete() {
            // Seeds let leechers come to them (and the tracker tells them where we are).
            return;
        }
        let mut cands: Vec<SocketAddr> = self
            .addrs
            .iter()
            .filter(|(_, s)| !s.connected && !s.banned && s.next_try.map_or(true, |t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        cands.sort();
        self.rng.shuffle(&mut cands);
        for a in cands {
            if budget == 0 || room == 0 {
                break;
            }
            budget -= 1;
            room -= 1;
            if let Some(s) = self.addrs.get_mut(&a) {
                s.connected = true;
            }
            let (id, rx) = self.new_peer(a, true);
            log::debug!("peer {}: connecting to {}", id, a);
            conn::spawn(id, Target::Outgoing(a), Arc::clone(&self.shared), rx);
        }
    }

    /// At `--max-peers`, make room for a new incoming connection by dropping the oldest
    /// incoming one that has still not sent its handshake after a second: otherwise a few
    /// dozen silent sockets would lock honest peers out until the handshake deadline.
    pub(super) fn evict_half_open(&mut self) -> bool {
        let now = Instant::now();
        let victim = self
            .peers
            .iter()
            .filter(|(_, p)| {
                !p.outgoing
                    && matches!(p.phase, Phase::Handshaking)
                    && now.duration_since(p.opened) >= Duration::from_secs(1)
            })
            .min_by_key(|(_, p)| p.opened)
            .map(|(&id, _)| id);
        match victim {
            Some(id) => {
                self.close(id, "evicted: no handshake yet and we are at --max-peers");
                true
            }
            None => false,
        }
    }

    pub(super) fn on_handshake(&mut self, id: u64, peer_id: [u8; 20]) {
        if peer_id == self.cfg.peer_id {
            // Never dial our own address again; an incoming connection's address is an
            // ephemeral port (or an impostor's), not something to remember.
            if let Some(p) = self.peers.get(&id) {
                if p.outgoing {
                    let a = p.addr;
                    self.addrs.entry(a).or_default().banned = true;
                }
            }
            return self.close(id, "connected to ourselves");
        }
        if self.banned_ids.contains(&peer_id) {
            return self.close(id, "banned peer");
        }
        if self.siblings.iter().any(|(s, _)| *s == peer_id) {
            return self.close(id, "a sibling identity of this run");
        }
        // Duplicate by peer_id: keep the connection opened by the side with the smaller
        // peer_id, so two peers that dialled each other at once keep the same one.
        let ours = self.cfg.peer_id;
        let dup = self
            .peers
            .iter()
            .find(|(&o, p)| o != id && p.peer_id == Some(peer_id))
            .map(|(&o, p)| (o, p.outgoing));
        if let Some((other, other_out)) = dup {
            let this_out = self.peers.get(&id).map_or(false, |p| p.outgoing);
            let initiator = |out: bool| if out { ours } else { peer_id };
            let keep_new = this_out != other_out && initiator(this_out) < initiator(other_out);
            if keep_new {
                self.close(other, "duplicate connection");
            } else {
                return self.close(id, "duplicate connection");
            }
        }
        let have = self.picker.have_bits().to_vec();
        let have_count = self.picker.have_count();
        // BitThief announces nothing; --reveal shows pieces with HAVEs once it knows what
        // the peer lacks, so neither sends a bitfield (allowed: it is optional).
        let send_bitfield = have_count > 0 && !self.cfg.thief && self.cfg.reveal.is_none();
        if let Some(p) = self.peers.get_mut(&id) {
            p.peer_id = Some(peer_id);
            p.phase = Phase::Active;
            if send_bitfield {
                p.send(Message::Bitfield(bits_to_bytes(&have)));
            }
            log::debug!("peer {}: handshake done ({})", id, p.addr);
        }
        self.top_up_reveal(id);
    }

    pub(super) fn check_deadlines(&mut self, now: Instant) {
        let mut close = Vec::new();
        let mut stalled = Vec::new();
        for (&id, p) in &self.peers {
            match p.phase {
                // Outgoing connections get the connect time on top of the handshake's.
                Phase::Handshaking
                    if now.duration_since(p.opened)
                        > self.timing.handshake
                            + if p.outgoing {
                                self.timing.connect
                            } else {
                                Duration::from_secs(0)
                            } =>
                {
                    close.push((id, "handshake timed out"));
                }
                Phase::Active if now.duration_since(p.last_recv) > self.timing.idle => {
                    close.push((id, "idle for too long"));
                }
                Phase::Active => {
                    // A request outstanding for longer than the timeout with no block
                    // arriving meanwhile: give those blocks to someone else.
                    let oldest = p.requests.iter().map(|(_, t)| *t).min();
                    if let Some(t) = oldest {
                        let last = p.last_block.max(t);
                        if now.duration_since(last) > self.timing.request_timeout {
                            stalled.push(id);
                        }
                    }
                }
                _ => {}
            }
        }
        for (id, why) in close {
            self.close(id, why);
        }
        for &id in &stalled {
            if let Some(p) = self.peers.get_mut(&id) {
                log::debug!(
                    "peer {}: {} requests stalled, re-assigning",
                    id,
                    p.requests.len()
                );
                let reqs: Vec<(Req, Instant)> = p.requests.drain(..).collect();
                for (r, _) in reqs {
                    p.send(Message::Cancel {
                        index: r.index,
                        begin: r.begin,
                        length: r.length,
                    });
                    self.picker.release(id, r);
                }
            }
        }
        if !stalled.is_empty() {
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                self.request_more(id);
            }
        }
    }

    /// Drop a peer: shut its socket down so both threads end.
    pub(super) fn close(&mut self, id: u64, why: &str) {
        if let Some(p) = self.peers.get(&id) {
            if let Some(s) = &p.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.remove(id, why);
    }

    pub(super) fn remove(&mut self, id: u64, why: &str) {
        let p = match self.peers.remove(&id) {
            Some(p) => p,
            None => return,
        };
        log::debug!("peer {} ({}): closed: {}", id, p.addr, why);
        if let Some(s) = &p.stream {
            let _ = s.shutdown(Shutdown::Both);
        }
        for (r, _) in &p.requests {
            self.picker.release(id, *r);
        }
        self.picker.peer_removed(&p.has);
        if p.outgoing {
            let st = self.addrs.entry(p.addr).or_default();
            st.connected = false;
            if matches!(p.phase, Phase::Handshaking) {
                st.failures += 1;
            } else {
                st.failures = 0;
            }
            let backoff = 15u64.saturating_mul(1 << st.failures.min(6));
            st.next_try = Some(Instant::now() + Duration::from_secs(backoff));
        }
        if !p.requests.is_empty() {
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                self.request_more(id);
            }
        }
    }
}
