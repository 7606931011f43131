//! The chooser's download side: blocks as they arrive (requested ones only; endgame
//! cancels), pieces to the disk thread and its verdicts (strikes, bans, completion), and
//! keeping every peer's request pipeline full.

use super::*;

impl Chooser {
    pub(super) fn on_block(&mut self, now: Instant, id: u64, index: u32, begin: u32, data: &[u8]) {
        let len = data.len() as u64;
        let got = Block { index, begin, length: len as u32 };
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return,
        };
        let asked = p
            .requests
            .iter()
            .position(|(r, _)| r.index == index && r.begin == begin)
            .map(|i| p.requests.swap_remove(i).0);
        self.down_total.add(now, len);
        self.downloaded += len;
        // Only blocks we asked this peer for are taken: anything else (a late block after a
        // cancel, or a peer spraying data) is counted and dropped, so nobody can push blocks
        // into a piece behind an honest peer's back. Nor does it earn credit (rate, round
        // bytes, the snub clock), as in mainline's `got_piece`: junk must not buy a slot.
        let req = match asked {
            Some(r) => r,
            None => {
                self.wasted += len;
                return;
            }
        };
        p.down.add(now, len);
        p.recent.add(now, len);
        p.down_round += len;
        p.last_block = now;
        p.traded = true;
        match self.picker.on_block(id, got) {
            BlockResult::Stored { cancel, complete } => {
                self.pieces.store(index, begin, data, id);
                for other in cancel {
                    if let Some(o) = self.peers.get_mut(&other) {
                        o.requests.retain(|(r, _)| *r != got);
                        self.send(other, Message::Cancel(got));
                    }
                    // its pipeline just shrank
                    self.request_more(now, other);
                }
                if complete && self.picker.assembled(index) {
                    // Until the disk thread answers, the piece is neither ours nor open to
                    // requests (the picker keeps it started).
                    if let Some(job) = self.pieces.job(index, self.hashes[index as usize]) {
                        self.out.push(Out::Verify(job));
                    }
                }
            }
            BlockResult::NotWanted => {
                // e.g. a wrong length: the block must go back to the pool, or no one would
                // ever fetch it again.
                self.wasted += len;
                self.picker.release(id, req);
            }
        }
        self.request_more(now, id);
    }

    /// The disk thread's verdict on one piece.
    pub fn on_verdict(&mut self, now: Instant, done: crate::pieces::Done) {
        match self.pieces.verdict(done) {
            Verdict::Failed { index, strike } => {
                self.hash_fails += 1;
                self.picker.hash_failed(index);
                log::warn!("piece {} failed its hash check", index);
                // Several senders: who lied shows when the piece verifies later and the
                // blocks can be compared (smart ban); striking them all would ban honest
                // peers for a liar's blocks.
                if let Some(only) = strike {
                    self.strike(now, only);
                }
                self.request_all(now);
            }
            Verdict::WriteError { index, error } => {
                self.disk_errors += 1;
                self.picker.hash_failed(index);
                log::error!("cannot write piece {}: {}", index, error);
                if self.disk_errors >= 3 {
                    self.stop = Some(format!("disk write failed: {}", error));
                }
            }
            Verdict::Verified { index, liars } => {
                for liar in liars {
                    log::warn!("peer {} sent a corrupt block of piece {}", liar, index);
                    self.strike(now, liar);
                }
                self.picker.set_have(index);
                for id in self.ids(|_| true) {
                    self.show(id, Some(index));
                    self.update_interest(id);
                }
                if self.picker.is_complete() {
                    self.on_complete(now);
                }
            }
        }
    }

    /// One hash failure on this peer's account; `MAX_STRIKES` bans it.
    fn strike(&mut self, now: Instant, id: u64) {
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return,
        };
        p.strikes += 1;
        log::info!("peer {} ({}): strike {} of {}", id, p.addr, p.strikes, MAX_STRIKES);
        if p.strikes < MAX_STRIKES {
            return;
        }
        if let Some(pid) = p.peer_id {
            self.banned_ids.push(pid);
        }
        self.dialled(id, |s| s.banned = true);
        self.close(now, id, "banned: sent data that failed hash checks");
    }

    fn on_complete(&mut self, now: Instant) {
        if self.download_secs.is_none() {
            self.download_secs = Some(now.duration_since(self.started).as_secs_f64());
            self.out.push(Out::Complete);
            self.out.push(Out::Tracker(TrackerCtl::Completed));
        }
        // Seeds have no use for connections to other seeds.
        for id in self.ids(|p| !p.has.contains(&false)) {
            self.dialled(id, |s| s.seed = true);
            self.close(now, id, "both of us are seeds");
        }
        if self.set.stop_after_download {
            self.stop = Some("download complete".into());
        }
    }

    pub(super) fn request_all(&mut self, now: Instant) {
        for id in self.ids(|_| true) {
            self.request_more(now, id);
        }
    }

    pub(super) fn request_more(&mut self, now: Instant, id: u64) {
        let p = match self.peers.get_mut(&id) {
            Some(p) if p.unchoking_us.is_some() && p.am_interested => p,
            _ => return,
        };
        // Enough requests in flight to cover about three seconds of this peer's rate, as
        // libtorrent's request_queue_time: with one second, a peer that serves its queue in
        // batches (transmission) never sends more than we asked in the last second, so the
        // rate never grows (38 s for 8 MiB from transmission against 22 s with three). The
        // rate is over the whole 2 s even on a new connection: read over its first 250 ms, a
        // burst of several blocks (a pacer's grant) asked for up to 8 times what the peer
        // could send, and those blocks were then nobody else's to fetch.
        let rate = p.recent.rate_full(now);
        let depth = PIPELINE_MIN.max((3.0 * rate / f64::from(BLOCK)) as usize).min(p.reqq as usize);
        if p.requests.len() >= depth {
            return;
        }
        let reqs = self.picker.pick(id, &p.has, depth - p.requests.len(), &mut self.rng);
        for r in reqs {
            p.requests.push((r, now));
            self.out.push(Out::Send(id, Cmd::Send(Message::Request(r))));
        }
    }
}
