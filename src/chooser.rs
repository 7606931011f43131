//! The chooser: the one owner of a torrent's mutable state (docs/design.md, "The
//! chooser"; rain's `torrent_run.go`). It holds the peer table, bitfields and interest,
//! the piece picker and assembly buffers, rate meters, the strategy, protocol deadlines
//! and the address book, and it decides everything.
//!
//! It is a state machine with no sockets, threads or clock of its own: the session
//! (`torrent.rs`) calls one `on_*` method per event with the time it happened, and carries
//! out the commands the chooser leaves in its outbox (`Out`: dial, send to a writer, close,
//! hash a piece, talk to the tracker). Unit tests drive it the same way with a made-up
//! clock and check the commands (`chooser/tests.rs`).

use crate::choke::PeerView;
use crate::conn::Cmd;
use crate::meter::RateMeter;
use crate::peer::{bytes_to_bits, Message};
use crate::picker::{BlockResult, Picker};
use crate::pieces::{Block, Geometry, Job, Pieces, Verdict, BLOCK};
use crate::rng::Rng;
use crate::stats::Tick;
use crate::strategy::Strategy;
use crate::tracker::TrackerCtl;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod choking;
mod peers;

/// Hash failures a peer may take part in before it is banned.
const MAX_STRIKES: u32 = 3;
/// Minimum requests in flight per peer (Cohen §2.3: "about 5").
const PIPELINE_MIN: usize = 5;
const PIPELINE_MAX: usize = 128;
/// Most requests we queue for one peer; more are dropped. libtorrent's own limit
/// (`max_allowed_in_request_queue`) is 2000 and its leechers do keep hundreds in flight at
/// loopback speeds: a smaller cap silently stalls them.
pub const MAX_QUEUED_REQUESTS: usize = 2000;

/// Protocol and policy clocks. Choking clocks scale with `--time-scale`; protocol deadlines
/// (handshake, idle, keep-alive) do not, since they guard against dead sockets.
#[derive(Clone, Debug)]
pub struct Timing {
    pub round: Duration,
    pub rate_window: Duration,
    /// Window of the HAVE-rate estimate (BitTyrant's released code: a 100 s average).
    pub have_window: Duration,
    pub snub: Duration,
    pub request_timeout: Duration,
    pub handshake: Duration,
    pub idle: Duration,
    pub keepalive: Duration,
    pub connect: Duration,
}

impl Timing {
    pub fn scaled(scale: f64) -> Timing {
        let s = |secs: f64| Duration::from_secs_f64(secs / scale.max(1e-3));
        Timing {
            round: s(10.0),
            rate_window: s(20.0),
            have_window: s(100.0),
            snub: s(60.0),
            request_timeout: s(60.0),
            handshake: Duration::from_secs(20),
            idle: Duration::from_secs(180),
            keepalive: Duration::from_secs(60),
            connect: Duration::from_secs(10),
        }
    }
}

/// What the chooser needs to know besides the torrent and the strategy.
#[derive(Clone, Debug)]
pub struct Settings {
    pub peer_id: [u8; 20],
    pub listen: SocketAddr,
    pub max_peers: usize,
    pub stop_after_download: bool,
    pub timing: Timing,
    pub rng_seed: u64,
    /// Write a trace line per peer per round (`Out::Trace`).
    pub trace: bool,
}

/// A command for the session to carry out.
#[derive(Debug)]
pub enum Out {
    /// Open a connection to `addr` for peer `id`.
    Dial(u64, SocketAddr),
    /// Hand a command to peer `id`'s writer.
    Send(u64, Cmd),
    /// Shut peer `id`'s socket down; its threads end.
    Close(u64),
    /// Hash a complete piece and write it if it verifies.
    Verify(Job),
    Tracker(TrackerCtl),
    /// The download just completed.
    Complete,
    /// A line for the `--trace` file.
    Trace(String),
}

struct Peer {
    addr: SocketAddr,
    outgoing: bool,
    peer_id: Option<[u8; 20]>,
    /// Handshake done.
    active: bool,
    opened: Instant,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    has: Vec<bool>,
    has_count: u32,
    /// Pieces we announced to this peer.
    shown: Vec<bool>,
    requests: Vec<(Block, Instant)>,
    down: RateMeter,
    up: RateMeter,
    /// HAVE announcements × piece length (duplicates included, as Azureus counted them).
    haves: RateMeter,
    last_recv: Instant,
    last_block: Instant,
    strikes: u32,
    /// Per-round counters for the strategies, reset at every rechoke.
    down_round: u64,
    up_round: u64,
    unchoked_us: bool,
    /// Per-peer upload cap last sent to the writer.
    cap: Option<f64>,
    /// Blocks queued at our writer for this peer (bounded by MAX_QUEUED_REQUESTS).
    serving: HashSet<Block>,
}

#[derive(Default)]
struct AddrState {
    failures: u32,
    next_try: Option<Instant>,
    connected: bool,
    banned: bool,
}

pub struct Chooser {
    geo: Geometry,
    hashes: Vec<[u8; 20]>,
    set: Settings,
    strategy: Strategy,
    picker: Picker,
    pieces: Pieces,
    rng: Rng,
    peers: BTreeMap<u64, Peer>,
    addrs: HashMap<SocketAddr, AddrState>,
    banned_ids: Vec<[u8; 20]>,
    /// BitSybil: the other identities of this process, never dialled or traded with.
    siblings: Vec<([u8; 20], SocketAddr)>,
    next_id: u64,
    started: Instant,
    download_secs: Option<f64>,
    pub downloaded: u64,
    pub uploaded: u64,
    wasted: u64,
    hash_fails: u32,
    disk_errors: u32,
    down_total: RateMeter,
    up_total: RateMeter,
    round: u64,
    round_started: Instant,
    last_round: Instant,
    last_second: Instant,
    /// Why the run should end, once it should.
    pub stop: Option<String>,
    out: Vec<Out>,
}

impl Chooser {
    /// `picker` already knows the pieces verified on disk; `hashes` are the metainfo's.
    pub fn new(
        hashes: Vec<[u8; 20]>,
        picker: Picker,
        strategy: Strategy,
        set: Settings,
        geo: Geometry,
        now: Instant,
    ) -> Chooser {
        Chooser {
            pieces: Pieces::new(geo),
            rng: Rng::new(set.rng_seed),
            geo,
            hashes,
            strategy,
            picker,
            peers: BTreeMap::new(),
            addrs: HashMap::new(),
            banned_ids: Vec::new(),
            siblings: Vec::new(),
            next_id: 1,
            started: now,
            download_secs: None,
            downloaded: 0,
            uploaded: 0,
            wasted: 0,
            hash_fails: 0,
            disk_errors: 0,
            down_total: RateMeter::new(Duration::from_secs(5), now),
            up_total: RateMeter::new(Duration::from_secs(5), now),
            round: 0,
            round_started: now,
            last_round: now,
            last_second: now,
            stop: None,
            out: Vec::new(),
            set,
        }
    }

    /// The commands decided so far, oldest first.
    pub fn drain(&mut self) -> std::vec::Drain<'_, Out> {
        self.out.drain(..)
    }

    pub fn picker(&self) -> &Picker {
        &self.picker
    }

    pub fn strategy(&self) -> &Strategy {
        &self.strategy
    }

    pub fn download_secs(&self) -> Option<f64> {
        self.download_secs
    }

    pub fn started_at(&self) -> Instant {
        self.started
    }

    /// The run begins: the first round, the first dials.
    pub fn start(&mut self, now: Instant, peers: &[SocketAddr]) {
        self.started = now;
        self.last_round = now;
        self.round_started = now;
        self.last_second = now;
        for &a in peers {
            self.addrs.entry(a).or_default();
        }
        if self.picker.is_complete() {
            self.download_secs = Some(0.0);
        }
        self.rechoke(now);
        self.connect_more(now);
    }

    /// The session's clock tick (a fraction of a second): deadlines, rounds on a fixed
    /// grid, and once a second the dialler and the tracker.
    pub fn tick(&mut self, now: Instant) {
        self.check_deadlines(now);
        if now.duration_since(self.last_round) >= self.set.timing.round {
            // On a fixed grid, so rounds keep their nominal length on average; after a long
            // stall, restart the grid instead of bursting rounds.
            self.last_round += self.set.timing.round;
            if now.duration_since(self.last_round) >= self.set.timing.round {
                self.last_round = now;
            }
            self.rechoke(now);
        }
        if now.duration_since(self.last_second) >= Duration::from_secs(1) {
            self.last_second = now;
            self.connect_more(now);
            self.want_peers();
        }
    }

    fn send(&mut self, id: u64, m: Message) {
        self.out.push(Out::Send(id, Cmd::Send(m)));
    }

    pub fn on_messages(&mut self, now: Instant, id: u64, msgs: impl IntoIterator<Item = Message>) {
        for msg in msgs {
            match self.peers.get_mut(&id) {
                Some(p) => p.last_recv = now,
                // closed by an earlier message of the batch
                None => return,
            }
            if let Err(why) = self.on_message(now, id, msg) {
                self.close(now, id, &why);
                return;
            }
        }
    }

    fn on_message(&mut self, now: Instant, id: u64, msg: Message) -> Result<(), String> {
        let p = match self.peers.get_mut(&id) {
            Some(p) if p.active => p,
            _ => return Ok(()),
        };
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Unknown(_) => {}
            Message::Choke => {
                p.peer_choking = true;
                for (r, _) in std::mem::take(&mut p.requests) {
                    self.picker.release(id, r);
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                p.unchoked_us = true;
                self.request_more(now, id);
            }
            Message::Interested => {
                p.peer_interested = true;
                if p.am_choking {
                    let seeding = self.picker.is_complete();
                    let views = self.views(now);
                    if let Some(d) = self.strategy.fast_unchoke(&views, id, seeding) {
                        self.apply(&d);
                    }
                }
            }
            Message::NotInterested => p.peer_interested = false,
            Message::Have(i) => {
                p.haves.add(now, u64::from(self.geo.piece_length));
                if !p.has[i as usize] {
                    p.has[i as usize] = true;
                    p.has_count += 1;
                    self.picker.peer_has(i);
                    if !self.picker.have(i) {
                        self.update_interest(id);
                        self.request_more(now, id);
                    }
                    self.show(id, None);
                }
            }
            Message::Bitfield(bytes) => {
                let bits = bytes_to_bits(&bytes, self.geo.num_pieces as usize);
                self.picker.peer_removed(&p.has);
                p.has_count = bits.iter().filter(|&&b| b).count() as u32;
                self.picker.peer_added(&bits);
                p.has = bits;
                if self.picker.is_complete() && p.has_count == self.geo.num_pieces {
                    return Err("both of us are seeds".into());
                }
                self.update_interest(id);
                // It may have unchoked us before we knew it had anything we want.
                self.request_more(now, id);
                self.show(id, None);
            }
            Message::Request(b) => {
                if !self.picker.have(b.index) {
                    return Err(format!("asked for piece {} which we do not have", b.index));
                }
                if !p.am_choking && !p.serving.contains(&b) {
                    // Bounded here, not only in the writer: a peer that floods requests and
                    // never reads would otherwise fill the command channel.
                    if p.serving.len() >= MAX_QUEUED_REQUESTS {
                        log::debug!("peer {}: request queue full, dropping a request", id);
                    } else {
                        p.serving.insert(b);
                        self.out.push(Out::Send(id, Cmd::Serve(b)));
                    }
                }
            }
            Message::Cancel(b) => {
                // Only what is still queued needs the writer; cancels for nothing cost nothing.
                if p.serving.remove(&b) {
                    self.out.push(Out::Send(id, Cmd::Cancel(b)));
                }
            }
            Message::Piece { index, begin, data } => self.on_block(now, id, index, begin, &data),
        }
        Ok(())
    }

    fn on_block(&mut self, now: Instant, id: u64, index: u32, begin: u32, data: &[u8]) {
        let len = data.len() as u64;
        let got = Block {
            index,
            begin,
            length: len as u32,
        };
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return,
        };
        let asked = p
            .requests
            .iter()
            .position(|(r, _)| r.index == index && r.begin == begin)
            .map(|i| p.requests.swap_remove(i).0);
        p.down.add(now, len);
        p.down_round += len;
        p.last_block = now;
        self.down_total.add(now, len);
        self.downloaded += len;
        // Only blocks we asked this peer for are taken: anything else (a late block after a
        // cancel, or a peer spraying data) is counted and dropped, so nobody can push blocks
        // into a piece behind an honest peer's back.
        let req = match asked {
            Some(r) => r,
            None => {
                self.wasted += len;
                return;
            }
        };
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
                let ids: Vec<u64> = self.peers.keys().copied().collect();
                for id in ids {
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
        log::info!(
            "peer {} ({}): strike {} of {}",
            id,
            p.addr,
            p.strikes,
            MAX_STRIKES
        );
        if p.strikes < MAX_STRIKES {
            return;
        }
        if let Some(pid) = p.peer_id {
            self.banned_ids.push(pid);
        }
        if p.outgoing {
            let a = p.addr;
            self.addrs.entry(a).or_default().banned = true;
        }
        self.close(now, id, "banned: sent data that failed hash checks");
    }

    fn on_complete(&mut self, now: Instant) {
        if self.download_secs.is_none() {
            self.download_secs = Some(now.duration_since(self.started).as_secs_f64());
            self.out.push(Out::Complete);
            self.out.push(Out::Tracker(TrackerCtl::Completed));
        }
        // Seeds have no use for connections to other seeds.
        let n = self.geo.num_pieces;
        let seeds: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.has_count == n)
            .map(|(&i, _)| i)
            .collect();
        for id in seeds {
            self.close(now, id, "both of us are seeds");
        }
        if self.set.stop_after_download {
            self.stop = Some("download complete".into());
        }
    }

    fn request_all(&mut self, now: Instant) {
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            self.request_more(now, id);
        }
    }

    fn request_more(&mut self, now: Instant, id: u64) {
        let p = match self.peers.get_mut(&id) {
            Some(p) if !p.peer_choking && p.am_interested => p,
            _ => return,
        };
        // Enough requests in flight to cover about one second of this peer's rate.
        let rate = p.down.rate(now);
        let depth = ((rate / f64::from(BLOCK)) as usize).clamp(PIPELINE_MIN, PIPELINE_MAX);
        if p.requests.len() >= depth {
            return;
        }
        let reqs = self
            .picker
            .pick(id, &p.has, depth - p.requests.len(), &mut self.rng);
        for r in reqs {
            p.requests.push((r, now));
            self.out.push(Out::Send(id, Cmd::Send(Message::Request(r))));
        }
    }

    /// A block went out on the wire.
    pub fn on_sent(&mut self, now: Instant, id: u64, b: Block) {
        let bytes = u64::from(b.length);
        self.uploaded += bytes;
        self.up_total.add(now, bytes);
        if let Some(p) = self.peers.get_mut(&id) {
            p.up.add(now, bytes);
            p.up_round += bytes;
            p.serving.remove(&b);
        }
    }

    /// The per-second sample for the stats file and the progress line.
    pub fn sample(&self, now: Instant) -> Tick {
        Tick {
            t: now.duration_since(self.started).as_secs_f64(),
            have: self.picker.have_count(),
            pieces: self.geo.num_pieces,
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            down_rate: self.down_total.rate(now),
            up_rate: self.up_total.rate(now),
            peers: self.peers.values().filter(|p| p.active).count(),
            unchoked: self.peers.values().filter(|p| !p.am_choking).count(),
            unchoking_us: self.peers.values().filter(|p| !p.peer_choking).count(),
            wasted: self.wasted,
            hash_fails: self.hash_fails,
        }
    }

    /// What the choker sees of each peer with a handshake.
    fn views(&self, now: Instant) -> Vec<PeerView> {
        self.peers
            .iter()
            .filter(|(_, p)| p.active)
            .map(|(&id, p)| PeerView {
                id,
                interested: p.peer_interested,
                choked: p.am_choking,
                snubbed: now.duration_since(p.last_block) > self.set.timing.snub,
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
}

#[cfg(test)]
mod tests;
