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
mod download;
mod peers;

/// Hash failures a peer may take part in before it is banned.
const MAX_STRIKES: u32 = 3;
/// Minimum requests in flight per peer (Cohen §2.3: "about 5").
const PIPELINE_MIN: usize = 5;
/// Most requests in flight per peer: BEP 10's default `reqq` for a peer that does not say
/// how many it queues, else its `reqq` up to 500 (transmission 3.00 says 512 and then
/// serves 256 MiB in 29 s against 35 s at 250).
const PIPELINE_MAX: (u32, u32) = (250, 500);
/// Most requests we queue for one peer; more are dropped. We tell peers half of it as our
/// `reqq`, 2000 as libtorrent's `max_allowed_in_request_queue`: transmission keeps that
/// many in flight and took 32 s for 256 MiB from a tyrant seed that said 1000 against
/// 24 s with 2000 (22 s from libtorrent). Queued requests are 12-byte block references.
pub const MAX_QUEUED_REQUESTS: usize = 4000;

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
    /// Peer `id`'s own upload cap (bytes/s) and its weight in the upload pacer.
    Share(u64, Option<f64>, f64),
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
    peer_interested: bool,
    has: Vec<bool>,
    /// Pieces we announced to this peer.
    shown: Vec<bool>,
    requests: Vec<(Block, Instant)>,
    /// Most requests we keep in flight to this peer (PIPELINE_MAX).
    reqq: u32,
    down: RateMeter,
    /// The download rate over the last 2 s, for the request pipeline: the 20 s meter lags
    /// a peer that has just unchoked us by tens of seconds, and the pipeline with it.
    recent: RateMeter,
    up: RateMeter,
    /// HAVE announcements × piece length (duplicates included, as Azureus counted them).
    haves: RateMeter,
    last_recv: Instant,
    last_block: Instant,
    /// Since when the peer unchokes us; None while it chokes us.
    unchoking_us: Option<Instant>,
    strikes: u32,
    /// Per-round counters for the strategies, reset at every rechoke.
    down_round: u64,
    up_round: u64,
    unchoked_us: bool,
    /// Per-peer upload cap and pacer weight last sent to the pacer.
    share: (Option<f64>, f64),
    /// Blocks queued at our writer for this peer (bounded by MAX_QUEUED_REQUESTS).
    serving: HashSet<Block>,
    /// When it last asked for a block, or we last unchoked it: a peer that sits on an
    /// upload slot asking for nothing is the first to make room (chooser/peers.rs).
    asked_at: Instant,
    /// Any payload either way, ever.
    traded: bool,
    optimistic: bool,
}

#[derive(Default)]
struct AddrState {
    failures: u32,
    next_try: Option<Instant>,
    connected: bool,
    banned: bool,
    /// A seed: nothing to trade with once we are one too.
    seed: bool,
    /// The peer id that answered here, so we do not dial a peer already connected to us
    /// (its incoming connection comes from another port).
    peer_id: Option<[u8; 20]>,
    /// When a tracker (or `--peer`) last named it: fresher addresses are dialled first.
    seen: Option<Instant>,
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

    /// The commands decided so far, swapped into `buf` (which must be empty) so that both
    /// vectors keep their capacity: the session calls this after every event.
    pub fn take_out(&mut self, buf: &mut Vec<Out>) {
        std::mem::swap(&mut self.out, buf);
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
            self.addrs.entry(a).or_default().seen = Some(now);
        }
        if self.picker.is_complete() {
            self.download_secs = Some(0.0);
            if self.set.stop_after_download {
                self.stop = Some("the data was complete at start".into());
            }
        }
        self.rechoke(now);
        self.connect_more(now);
    }

    /// The session's clock tick (a fraction of a second): deadlines, rounds on a fixed
    /// grid, and once a second the dialler and the tracker. Returns whether a second passed
    /// (the session reports then).
    pub fn tick(&mut self, now: Instant) -> bool {
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
        if now.duration_since(self.last_second) < Duration::from_secs(1) {
            return false;
        }
        self.last_second = now;
        self.connect_more(now);
        self.want_peers();
        true
    }

    /// The peers that pass `f`, for loops that may change the peer table.
    fn ids(&self, f: impl Fn(&Peer) -> bool) -> Vec<u64> {
        self.peers.iter().filter(|(_, p)| f(p)).map(|(&id, _)| id).collect()
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
            // `reqq` 0 would leave no request at all; a peer saying so still gets one.
            Message::Reqq(n) => p.reqq = n.clamp(1, PIPELINE_MAX.1),
            Message::Choke => {
                p.unchoking_us = None;
                for (r, _) in std::mem::take(&mut p.requests) {
                    self.picker.release(id, r);
                }
            }
            Message::Unchoke => {
                p.unchoking_us.get_or_insert(now);
                p.unchoked_us = true;
                self.request_more(now, id);
            }
            Message::Interested | Message::NotInterested => {
                p.peer_interested = matches!(msg, Message::Interested);
                if !p.am_choking {
                    self.refill(now);
                } else if p.peer_interested {
                    let seeding = self.picker.is_complete();
                    let views = self.views(now);
                    if let Some(d) = self.strategy.fast_unchoke(&views, id, seeding) {
                        self.apply(now, &d);
                    }
                }
            }
            Message::Have(i) => {
                p.haves.add(now, u64::from(self.geo.piece_length));
                if !p.has[i as usize] {
                    p.has[i as usize] = true;
                    self.picker.peer_has(i);
                    if !self.picker.have(i) {
                        self.update_interest(id);
                        self.request_more(now, id);
                    }
                    self.show(id, None);
                }
            }
            Message::Bitfield(bytes) => {
                // Not only first: aria2 sends a bitfield instead of HAVEs whenever it is the
                // shorter message (DefaultBtInteractive::checkHave). Pieces are only ever
                // added, and after the first news they count as HAVEs.
                let told = p.has.contains(&true);
                let bits = bytes_to_bits(&bytes, self.geo.num_pieces as usize);
                for (i, had) in p.has.iter_mut().enumerate().filter(|(i, had)| bits[*i] && !**had) {
                    *had = true;
                    self.picker.peer_has(i as u32);
                    if told {
                        p.haves.add(now, u64::from(self.geo.piece_length));
                    }
                }
                if self.picker.is_complete() && !p.has.contains(&false) {
                    self.dialled(id, |s| s.seed = true);
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
                p.asked_at = now;
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

    /// A block went out on the wire.
    pub fn on_sent(&mut self, now: Instant, id: u64, b: Block) {
        let bytes = u64::from(b.length);
        self.uploaded += bytes;
        self.up_total.add(now, bytes);
        if let Some(p) = self.peers.get_mut(&id) {
            p.up.add(now, bytes);
            p.up_round += bytes;
            p.traded = true;
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
            unchoking_us: self.peers.values().filter(|p| p.unchoking_us.is_some()).count(),
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
                interesting: p.am_interested,
                choked: p.am_choking,
                snubbed: now.duration_since(p.last_block) > self.set.timing.snub,
                down_rate: p.down.rate(now),
                up_rate: p.up.rate(now),
                peer_choking: p.unchoking_us.is_none(),
                down_round: p.down_round,
                up_round: p.up_round,
                unchoked_us: p.unchoked_us || p.unchoking_us.is_some(),
                unchoked_us_secs: p
                    .unchoking_us
                    .map_or(0.0, |t| now.duration_since(t).as_secs_f64()),
                have_rate: p.haves.rate(now),
                ip: Some(p.addr.ip()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
