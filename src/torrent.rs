//! The chooser thread: the one owner of a torrent's mutable state (design.md; rain's
//! `torrent_run.go`). One `select!` loop over connection events, tracker replies and a
//! one-second tick drives everything: the peer table, bitfields and interest, the piece
//! picker, rate meters, the choker, protocol deadlines (handshake, idle, snubbed, stalled
//! requests), connection management and statistics. Complete pieces go to the disk thread
//! (`disk.rs`) to be hashed and written; a piece is ours when it reports them verified.
//!
//! Readers, writers, the acceptor, the disk thread and the tracker announcer only talk to
//! this thread through channels, so no lock guards torrent state and no lock order can go
//! wrong.

use crate::choke::{Choker, Decision, PeerView, PropShare, Slots, Tyrant, TyrantParams, Vanilla};
use crate::conn::{self, Cmd, Event, Shared, Target};
use crate::disk;
use crate::metainfo::Metainfo;
use crate::meter::{self, RateMeter};
use crate::peer::{Message, WireLimits, BLOCK};
use crate::picker::{BlockResult, Picker, Req};
use crate::reveal;
use crate::rng::Rng;
use crate::stats::{self, Sink, Tick};
use crate::storage::Storage;
use crate::tracker::{self, TrackerConfig, TrackerCtl, TrackerReply, TransferCounters};
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod choking;
mod report;
mod swarm;

pub use self::choking::Strategy;

/// Hash failures a peer may take part in before it is banned.
const MAX_STRIKES: u32 = 3;
/// Outgoing connection attempts in flight at once (mainline `max_initiate` spirit).
const MAX_HALF_OPEN: usize = 16;
/// Minimum requests in flight per peer (Cohen §2.3: "about 5").
const PIPELINE_MIN: usize = 5;
const PIPELINE_MAX: usize = 128;
/// Fewer connections than this make a leecher ask the tracker for more (mainline 4.x
/// `min_peers` is 20).
const MIN_PEERS: usize = 20;
/// Failed multi-sender pieces whose block hashes we keep until the piece verifies.
const MAX_SUSPECT_PIECES: usize = 256;
/// Most peer addresses remembered (tracker replies and `--peer`).
pub const MAX_KNOWN_ADDRS: usize = 10_000;

/// Protocol and policy clocks. Choking clocks scale with `time_scale`; protocol
/// deadlines (handshake, idle, keep-alive) do not, since they guard against dead sockets.
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

#[derive(Clone, Debug)]
pub struct Config {
    pub dir: PathBuf,
    pub bind_ip: IpAddr,
    pub port: u16,
    /// Address told to the tracker (`&ip=`), for many peers on 127.0.0.N.
    pub announce_ip: Option<String>,
    pub up_kib: f64,
    pub down_kib: f64,
    /// Seeder: the data must already be complete; opened read-only.
    pub seed: bool,
    pub stop_after_download: bool,
    pub slots: Slots,
    pub rng_seed: u64,
    pub max_peers: usize,
    pub numwant: u32,
    pub stats: Option<PathBuf>,
    pub peers: Vec<SocketAddr>,
    pub time_limit: Option<Duration>,
    pub time_scale: f64,
    /// Protocol deadlines in seconds, when not the defaults: handshake, idle, stalled request.
    pub deadlines: Deadlines,
    pub peer_id: [u8; 20],
    pub progress: bool,
    pub strategy: Strategy,
    /// BitRebel: every HAVE is sent this many extra times.
    pub rebel: u32,
    /// BitThief: never upload, announce nothing, any-order picking, large view.
    pub thief: bool,
    /// Strategic piece revelation: at most N shown-but-missing pieces per neighbour.
    pub reveal: Option<u32>,
    pub trace: Option<PathBuf>,
    /// A BitSybil identity's share of the pieces, `start..end`.
    pub share: Option<(u32, u32)>,
    /// Label for logs and the progress line (BitSybil identities: "id0 " ...).
    pub label: String,
}

/// Overrides of the protocol deadlines (seconds); `None` keeps the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deadlines {
    pub handshake: Option<f64>,
    pub idle: Option<f64>,
    pub request: Option<f64>,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Summary {
    pub download_secs: Option<f64>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub complete: bool,
}

enum Phase {
    Handshaking,
    Active,
}

struct Peer {
    addr: SocketAddr,
    outgoing: bool,
    stream: Option<TcpStream>,
    cmd: Sender<Cmd>,
    peer_id: Option<[u8; 20]>,
    phase: Phase,
    opened: Instant,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    has: Vec<bool>,
    has_count: u32,
    requests: Vec<(Req, Instant)>,
    down: RateMeter,
    up: RateMeter,
    last_recv: Instant,
    last_block: Instant,
    strikes: u32,
    /// Per-round counters for the strategies, reset at every rechoke.
    down_round: u64,
    up_round: u64,
    unchoked_us: bool,
    /// HAVE announcements × piece length (duplicates included, as Azureus counted them).
    haves: RateMeter,
    /// Per-peer upload cap last sent to the writer.
    cap: Option<f64>,
    /// `--reveal`: pieces announced to this peer.
    shown: Vec<bool>,
    /// Blocks queued at our writer for this peer (bounded by MAX_QUEUED_REQUESTS).
    serving: HashSet<(u32, u32, u32)>,
}

impl Peer {
    fn send(&self, m: Message) {
        let _ = self.cmd.send(Cmd::Send(m));
    }
}

#[derive(Default)]
struct AddrState {
    failures: u32,
    next_try: Option<Instant>,
    connected: bool,
    banned: bool,
}

pub struct Torrent {
    meta: Metainfo,
    cfg: Config,
    timing: Timing,
    storage: Arc<Storage>,
    shared: Arc<Shared>,
    picker: Picker,
    choker: Choker,
    rng: Rng,
    peers: BTreeMap<u64, Peer>,
    addrs: HashMap<SocketAddr, AddrState>,
    banned_ids: Vec<[u8; 20]>,
    /// Per failed piece, per failed attempt: (sender, SHA-1) of each block.
    suspects: HashMap<u32, Vec<BlockHashes>>,
    /// Pieces at the disk thread: (senders, sender of each block), for the verdict.
    verifying: HashMap<u32, (Vec<u64>, Vec<u64>)>,
    /// Jobs to the disk thread (`None` before `run` and for a seeder: pieces are then
    /// checked and written inline), its results, and its handle for the shutdown.
    disk: Option<Sender<disk::Job>>,
    disk_done: Receiver<disk::Done>,
    disk_thread: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
    listen: SocketAddr,
    counters: Arc<TransferCounters>,
    tracker_ctl: Option<Sender<TrackerCtl>>,
    started: Instant,
    download_secs: Option<f64>,
    downloaded: u64,
    uploaded: u64,
    wasted: u64,
    hash_fails: u32,
    /// Pieces found verified on disk at start (resume).
    resumed: u32,
    disk_errors: u32,
    down_total: RateMeter,
    up_total: RateMeter,
    stats: Sink,
    trace: Sink,
    round: u64,
    round_started: Instant,
    siblings: Vec<([u8; 20], SocketAddr)>,
    last_round: Instant,
    stop: Option<String>,
}

/// (sender, SHA-1) of every block of one assembled piece.
type BlockHashes = Vec<(u64, [u8; 20])>;

fn block_hashes(hashes: Vec<[u8; 20]>, from: &[u64]) -> BlockHashes {
    from.iter().copied().zip(hashes).collect()
}

pub fn bits_to_bytes(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; (bits.len() + 7) / 8];
    for (i, &b) in bits.iter().enumerate() {
        if b {
            out[i / 8] |= 0x80 >> (i % 8);
        }
    }
    out
}

pub fn bytes_to_bits(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n)
        .map(|i| {
            bytes
                .get(i / 8)
                .map_or(false, |b| b & (0x80 >> (i % 8)) != 0)
        })
        .collect()
}

impl Torrent {
    /// Open storage, re-check existing data (resume) and bind the listening socket.
    pub fn open(
        meta: Metainfo,
        cfg: Config,
    ) -> Result<(Torrent, TcpListener, Receiver<Event>), String> {
        let storage = Storage::open(&meta, &cfg.dir, cfg.seed)?;
        let n = meta.num_pieces();
        let mut picker = Picker::new(n, meta.piece_length as u32, meta.total_length);
        let show = cfg.progress;
        let verified = storage.verify_at_open(&meta.pieces, &mut |done, total| {
            if show {
                eprint!("\rchecking {}/{} pieces", done, total);
            }
        });
        if show {
            eprintln!();
        }
        if let Some((start, end)) = cfg.share {
            picker.restrict(start, end);
        }
        for (i, ok) in verified.iter().enumerate() {
            // A BitSybil identity holds (and announces) only its own share.
            if *ok && picker.wanted(i as u32) {
                picker.set_have(i as u32);
            }
        }
        log::info!(
            "{}: {} of {} pieces verified on disk",
            meta.name,
            picker.have_count(),
            n
        );
        if cfg.seed && !picker.is_complete() {
            return Err(format!(
                "--seed: the data in {} is incomplete ({} of {} pieces verify)",
                cfg.dir.display(),
                picker.have_count(),
                n
            ));
        }
        let listener = TcpListener::bind((cfg.bind_ip, cfg.port))
            .map_err(|e| format!("cannot listen on {}:{}: {}", cfg.bind_ip, cfg.port, e))?;
        let listen = listener.local_addr().map_err(|e| e.to_string())?;
        // Bounded, so a slow chooser slows the readers (and TCP) instead of growing memory:
        // at most 256 events × one reader buffer (64 KiB of blocks, `Event::Msgs`).
        let (ev_tx, ev_rx) = crossbeam_channel::bounded(256);
        let kib = |k: f64| if k > 0.0 { k * 1024.0 } else { 0.0 };
        // `--time-scale S`: the buckets run S times the nominal caps (choking clocks are
        // S times faster in `Timing::scaled`), so a run replays the nominal one S× faster.
        let up_kib = cfg.up_kib * cfg.time_scale;
        let burst = 1.0 / cfg.time_scale.max(1e-3);
        let down_kib = cfg.down_kib * cfg.time_scale;
        let storage = Arc::new(storage);
        let mut timing = Timing::scaled(cfg.time_scale);
        let secs = Duration::from_secs_f64;
        if let Some(s) = cfg.deadlines.handshake {
            timing.handshake = secs(s);
            timing.connect = timing.connect.min(secs(s));
        }
        if let Some(s) = cfg.deadlines.idle {
            timing.idle = secs(s);
            // keep-alives must come well before the other side's idle deadline
            timing.keepalive = timing.keepalive.min(secs(s / 3.0));
        }
        if let Some(s) = cfg.deadlines.request {
            timing.request_timeout = secs(s);
        }
        let shared = Arc::new(Shared {
            info_hash: meta.info_hash,
            peer_id: cfg.peer_id,
            limits: WireLimits {
                num_pieces: n,
                piece_length: meta.piece_length as u32,
                total_length: meta.total_length,
            },
            storage: Arc::clone(&storage),
            // Buckets hold one *nominal* second of rate: at S = 4 a one-real-second burst
            // was four nominal seconds, and let peers exceed their caps by ~2.5 %.
            up: meter::shared_bucket(kib(up_kib), meter::MIN_BURST.max(kib(up_kib) * burst)),
            down: meter::shared_bucket(kib(down_kib), meter::MIN_BURST.max(kib(down_kib) * burst)),
            burst_secs: burst,
            keepalive: timing.keepalive,
            connect_timeout: timing.connect,
            events: ev_tx,
        });
        let stats = Sink::create(cfg.stats.as_deref())?;
        let trace = Sink::create(cfg.trace.as_deref())?;
        picker.any_order = cfg.thief;
        let now = Instant::now();
        let counters = Arc::new(TransferCounters::default());
        counters.left.store(picker.left_bytes(), Ordering::Relaxed);
        let resumed = picker.have_count();
        let t = Torrent {
            choker: cfg.strategy.build(&cfg.slots, cfg.up_kib, cfg.time_scale),
            rng: Rng::new(cfg.rng_seed),
            timing,
            storage,
            shared,
            picker,
            peers: BTreeMap::new(),
            addrs: HashMap::new(),
            banned_ids: Vec::new(),
            suspects: HashMap::new(),
            verifying: HashMap::new(),
            disk: None,
            disk_done: crossbeam_channel::never(),
            disk_thread: None,
            next_id: 1,
            listen,
            counters,
            tracker_ctl: None,
            started: now,
            download_secs: None,
            downloaded: 0,
            uploaded: 0,
            wasted: 0,
            hash_fails: 0,
            resumed,
            disk_errors: 0,
            down_total: RateMeter::new(Duration::from_secs(5), now),
            up_total: RateMeter::new(Duration::from_secs(5), now),
            stats,
            trace,
            round: 0,
            round_started: now,
            siblings: Vec::new(),
            last_round: now,
            stop: None,
            meta,
            cfg,
        };
        Ok((t, listener, ev_rx))
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Run until done (`--stop-after-download`), the time limit, or a fatal error.
    pub fn run(
        mut self,
        listener: TcpListener,
        events: Receiver<Event>,
    ) -> Result<Summary, String> {
        let acc_tx = self.shared.events.clone();
        std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                for s in listener.incoming() {
                    match s {
                        Ok(s) => {
                            if acc_tx.send(Event::Incoming(s)).is_err() {
                                return;
                            }
                        }
                        Err(e) => log::warn!("accept failed: {}", e),
                    }
                }
            })
            .map_err(|e| e.to_string())?;

        if !self.cfg.seed {
            let (jobs, done, h) = disk::spawn(
                Arc::clone(&self.storage),
                disk::queue_len(self.meta.piece_length),
            )
            .map_err(|e| format!("cannot start the disk thread: {}", e))?;
            self.disk = Some(jobs);
            self.disk_done = done;
            self.disk_thread = Some(h);
        }
        let disk_done = self.disk_done.clone();
        let (tr_rx, tracker_thread) = self.start_tracker();
        let mut tr_rx = tr_rx;
        for a in self.cfg.peers.clone() {
            self.addrs.entry(a).or_default();
        }
        self.started = Instant::now();
        self.last_round = self.started;
        self.round_started = self.started;
        if self.picker.is_complete() {
            self.download_secs = Some(0.0);
        }
        self.write_stats_header();
        self.rechoke();
        self.connect_more();
        // The tick shrinks with --time-scale so that a round (10 s / S) is not stretched by
        // up to one tick: at S = 4 a 0.5 s tick made rounds 10–20 % longer than nominal.
        let tick_every = Duration::from_secs_f64((0.5 / self.cfg.time_scale.max(1.0)).max(0.05));
        let tick = crossbeam_channel::tick(tick_every);
        let mut last_sec = Instant::now();
        while self.stop.is_none() {
            select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => break,
                },
                recv(disk_done) -> d => if let Ok(d) = d {
                    self.on_disk(d);
                },
                recv(tr_rx) -> r => match r {
                    Ok(r) => self.on_tracker(r),
                    Err(_) => tr_rx = crossbeam_channel::never(),
                },
                recv(tick) -> _ => {
                    let now = Instant::now();
                    self.check_deadlines(now);
                    if now.duration_since(self.last_round) >= self.timing.round {
                        // On a fixed grid, so rounds keep their nominal length on average;
                        // after a long stall, restart the grid instead of bursting rounds.
                        self.last_round += self.timing.round;
                        if now.duration_since(self.last_round) >= self.timing.round {
                            self.last_round = now;
                        }
                        self.rechoke();
                    }
                    if now.duration_since(last_sec) >= Duration::from_secs(1) {
                        last_sec = now;
                        self.connect_more();
                        self.want_peers();
                        self.report(now);
                    }
                    if let Some(limit) = self.cfg.time_limit {
                        if now.duration_since(self.started) >= limit {
                            self.stop = Some("time limit reached".into());
                        }
                    }
                }
            }
        }
        self.finish(tracker_thread)
    }

    fn start_tracker(&mut self) -> (Receiver<TrackerReply>, Option<std::thread::JoinHandle<()>>) {
        let tiers = self.meta.trackers();
        if tiers.is_empty() {
            return (crossbeam_channel::never(), None);
        }
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let cfg = TrackerConfig {
            tiers,
            info_hash: self.meta.info_hash,
            peer_id: self.cfg.peer_id,
            port: self.listen.port(),
            ip: self.cfg.announce_ip.clone(),
            numwant: self.cfg.numwant,
            timeout: Duration::from_secs(15),
            retry_min: Duration::from_secs(15),
            retry_max: Duration::from_secs(1800),
            time_scale: self.cfg.time_scale,
            key: self.rng.next_u64() as u32,
        };
        let h = tracker::spawn_announcer(cfg, Arc::clone(&self.counters), ctl_rx, rep_tx);
        self.tracker_ctl = Some(ctl_tx);
        (rep_rx, Some(h))
    }

    pub fn peer_id(&self) -> [u8; 20] {
        self.cfg.peer_id
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Incoming(stream) => {
                let addr = match stream.peer_addr() {
                    Ok(a) => a,
                    Err(_) => return,
                };
                if self.peers.len() >= self.cfg.max_peers && !self.evict_half_open() {
                    log::debug!("refusing {}: at --max-peers {}", addr, self.cfg.max_peers);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                let (id, rx) = self.new_peer(addr, false);
                log::debug!("peer {}: incoming from {}", id, addr);
                conn::spawn(id, Target::Incoming(stream), Arc::clone(&self.shared), rx);
            }
            Event::Connected { id, stream } => match self.peers.get_mut(&id) {
                Some(p) => p.stream = Some(stream),
                None => {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            },
            Event::Handshake { id, peer_id } => self.on_handshake(id, peer_id),
            Event::Msg { id, msg } => self.on_messages(id, std::iter::once(msg)),
            Event::Msgs { id, msgs } => self.on_messages(id, msgs),
            Event::Sent {
                id,
                bytes,
                index,
                begin,
            } => {
                let now = Instant::now();
                self.uploaded += bytes;
                self.up_total.add(now, bytes);
                self.counters
                    .uploaded
                    .store(self.uploaded, Ordering::Relaxed);
                if let Some(p) = self.peers.get_mut(&id) {
                    p.up.add(now, bytes);
                    p.up_round += bytes;
                    p.serving.remove(&(index, begin, bytes as u32));
                }
            }
            Event::Closed { id, reason } => {
                if self.peers.contains_key(&id) {
                    self.remove(id, &reason);
                }
            }
        }
    }

    fn on_messages(&mut self, id: u64, msgs: impl IntoIterator<Item = Message>) {
        for msg in msgs {
            match self.peers.get_mut(&id) {
                Some(p) => p.last_recv = Instant::now(),
                // closed by an earlier message of the batch
                None => return,
            }
            if let Err(why) = self.on_message(id, msg) {
                self.close(id, &why);
                return;
            }
        }
    }

    fn on_message(&mut self, id: u64, msg: Message) -> Result<(), String> {
        let now = Instant::now();
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return Ok(()),
        };
        if let Phase::Handshaking = p.phase {
            return Ok(());
        }
        match msg {
            Message::KeepAlive | Message::Port(_) | Message::Unknown(_) => {}
            Message::Choke => {
                p.peer_choking = true;
                let reqs: Vec<Req> = p.requests.drain(..).map(|(r, _)| r).collect();
                for r in reqs {
                    self.picker.release(id, r);
                }
            }
            Message::Unchoke => {
                p.peer_choking = false;
                p.unchoked_us = true;
                self.request_more(id);
            }
            Message::Interested => {
                p.peer_interested = true;
                if p.am_choking && !self.cfg.thief {
                    let seeding = self.picker.is_complete();
                    let views = self.views();
                    if let Some(d) = self.choker.fast_unchoke(&views, id, seeding) {
                        self.apply(&d);
                    }
                }
            }
            Message::NotInterested => p.peer_interested = false,
            Message::Have(i) => {
                p.haves.add(now, self.meta.piece_length);
                let i = i as usize;
                if !p.has[i] {
                    p.has[i] = true;
                    p.has_count += 1;
                    self.picker.peer_has(i as u32);
                    if !self.picker.have(i as u32) {
                        self.update_interest(id);
                        self.request_more(id);
                    }
                    self.top_up_reveal(id);
                }
            }
            Message::Bitfield(bytes) => {
                let bits = bytes_to_bits(&bytes, self.picker.num_pieces() as usize);
                self.picker.peer_removed(&p.has);
                p.has_count = bits.iter().filter(|&&b| b).count() as u32;
                self.picker.peer_added(&bits);
                p.has = bits;
                if self.picker.is_complete() && p.has_count == self.picker.num_pieces() {
                    return Err("both of us are seeds".into());
                }
                self.update_interest(id);
                self.top_up_reveal(id);
            }
            Message::Request {
                index,
                begin,
                length,
            } => {
                if !self.picker.have(index) {
                    return Err(format!("asked for piece {} which we do not have", index));
                }
                // BitThief never uploads (it chokes everyone, so this is a late request).
                let key = (index, begin, length);
                if !p.am_choking && !self.cfg.thief && !p.serving.contains(&key) {
                    // Bounded here, not only in the writer: a peer that floods requests
                    // and never reads would otherwise fill the command channel.
                    if p.serving.len() >= conn::MAX_QUEUED_REQUESTS {
                        log::debug!("peer {}: request queue full, dropping a request", id);
                    } else {
                        p.serving.insert(key);
                        let _ = p.cmd.send(Cmd::Serve {
                            index,
                            begin,
                            length,
                        });
                    }
                }
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                // Only what is still queued needs the writer's attention; a storm of
                // cancels for nothing costs nothing.
                if p.serving.remove(&(index, begin, length)) {
                    let _ = p.cmd.send(Cmd::Cancel {
                        index,
                        begin,
                        length,
                    });
                }
            }
            Message::Piece { index, begin, data } => {
                let len = data.len() as u64;
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
                self.counters
                    .downloaded
                    .store(self.downloaded, Ordering::Relaxed);
                // Only blocks we asked this peer for are taken: anything else (a late
                // block after a cancel, or a peer spraying data) is counted and dropped,
                // so nobody can push blocks into a piece behind an honest peer's back.
                let req = match asked {
                    Some(r) => r,
                    None => {
                        self.wasted += len;
                        return Ok(());
                    }
                };
                match self.picker.on_block(id, index, begin, &data) {
                    BlockResult::Stored { cancel, complete } => {
                        for other in cancel {
                            if let Some(o) = self.peers.get_mut(&other) {
                                o.requests
                                    .retain(|(r, _)| !(r.index == index && r.begin == begin));
                                o.send(Message::Cancel {
                                    index,
                                    begin,
                                    length: len as u32,
                                });
                            }
                            // its pipeline just shrank
                            self.request_more(other);
                        }
                        if complete {
                            self.piece_complete(index)?;
                        }
                    }
                    BlockResult::NotWanted => {
                        // e.g. a wrong length: the block must go back to the pool, or no
                        // one would ever fetch it again.
                        self.wasted += len;
                        self.picker.release(id, req);
                    }
                }
                self.request_more(id);
            }
        }
        Ok(())
    }

    /// All blocks of `index` are in: hand the piece to the disk thread. Until it answers,
    /// the piece is neither ours nor open to requests (the picker keeps it started).
    fn piece_complete(&mut self, index: u32) -> Result<(), String> {
        let a = match self.picker.take_assembled(index) {
            Some(a) => a,
            None => return Ok(()),
        };
        let job = disk::Job {
            index,
            data: a.data,
            expected: self.meta.pieces[index as usize],
            blocks_if_ok: self.suspects.contains_key(&index),
            blocks_if_bad: a.senders.len() > 1,
        };
        self.verifying.insert(index, (a.senders, a.from));
        let job = match &self.disk {
            Some(tx) => match tx.send(job) {
                Ok(()) => return Ok(()),
                // The disk thread is gone (it only ends when we drop its sender, so this
                // should not happen): do the work here rather than lose the piece.
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        let done = disk::run(&self.storage, job);
        self.on_disk(done);
        Ok(())
    }

    /// The disk thread's verdict on one piece.
    pub(super) fn on_disk(&mut self, done: disk::Done) {
        match done {
            disk::Done::Failed { index, blocks } => {
                let (senders, from) = self.verifying.remove(&index).unwrap_or_default();
                self.hash_fails += 1;
                self.picker.hash_failed(index);
                log::warn!(
                    "piece {} failed its hash check; senders {:?}",
                    index,
                    senders
                );
                if let [only] = senders[..] {
                    self.strike(only);
                } else if let Some(hashes) = blocks {
                    // Several senders: who lied shows when the piece verifies later and we
                    // can compare block by block (libtorrent's "smart ban"); striking them
                    // all would ban honest peers for a liar's blocks.
                    if self.suspects.len() < MAX_SUSPECT_PIECES {
                        self.suspects
                            .entry(index)
                            .or_default()
                            .push(block_hashes(hashes, &from));
                    }
                }
                let ids: Vec<u64> = self.peers.keys().copied().collect();
                for id in ids {
                    self.request_more(id);
                }
            }
            disk::Done::WriteError { index, error } => {
                self.verifying.remove(&index);
                self.disk_errors += 1;
                self.picker.hash_failed(index);
                log::error!("cannot write piece {}: {}", index, error);
                if self.disk_errors >= 3 {
                    self.stop = Some(format!("disk write failed: {}", error));
                }
            }
            disk::Done::Verified { index, blocks } => {
                let (_, from) = self.verifying.remove(&index).unwrap_or_default();
                if let Some(hashes) = blocks {
                    if let Some(attempts) = self.suspects.remove(&index) {
                        let good = block_hashes(hashes, &from);
                        for attempt in attempts {
                            for ((sender, h), (_, good_h)) in attempt.iter().zip(&good) {
                                if h != good_h {
                                    log::warn!(
                                        "peer {} sent a corrupt block of piece {}",
                                        sender,
                                        index
                                    );
                                    self.strike(*sender);
                                }
                            }
                        }
                    }
                }
                self.picker.set_have(index);
                self.counters
                    .left
                    .store(self.picker.left_bytes(), Ordering::Relaxed);
                let ids: Vec<u64> = self.peers.keys().copied().collect();
                for pid in &ids {
                    self.announce(*pid, index);
                    self.update_interest(*pid);
                }
                if self.picker.is_complete() {
                    self.on_complete();
                }
            }
        }
    }

    /// One hash failure on this peer's account; `MAX_STRIKES` bans it.
    fn strike(&mut self, id: u64) {
        let banned = match self.peers.get_mut(&id) {
            Some(p) => {
                p.strikes += 1;
                log::info!(
                    "peer {} ({}): strike {} of {}",
                    id,
                    p.addr,
                    p.strikes,
                    MAX_STRIKES
                );
                p.strikes >= MAX_STRIKES
            }
            None => false,
        };
        if banned {
            if let Some(p) = self.peers.get(&id) {
                if let Some(pid) = p.peer_id {
                    self.banned_ids.push(pid);
                }
                if p.outgoing {
                    let a = p.addr;
                    self.addrs.entry(a).or_default().banned = true;
                }
            }
            self.close(id, "banned: sent data that failed hash checks");
        }
    }

    fn on_complete(&mut self) {
        let secs = self.started.elapsed().as_secs_f64();
        if self.download_secs.is_none() {
            self.download_secs = Some(secs);
            if self.cfg.progress {
                eprintln!();
            }
            println!(
                "{}complete: {} in {:.2} s (downloaded {} B, uploaded {} B)",
                self.cfg.label, self.meta.name, secs, self.downloaded, self.uploaded
            );
            if let Err(e) = self.storage.flush() {
                log::warn!("flush: {}", e);
            }
            if let Some(t) = &self.tracker_ctl {
                let _ = t.send(TrackerCtl::Completed);
            }
        }
        // Seeds have no use for connections to other seeds.
        let n = self.picker.num_pieces();
        let seeds: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.has_count == n)
            .map(|(&i, _)| i)
            .collect();
        for id in seeds {
            self.close(id, "both of us are seeds");
        }
        if self.cfg.stop_after_download {
            self.stop = Some("download complete".into());
        }
    }

    fn request_more(&mut self, id: u64) {
        let now = Instant::now();
        let p = match self.peers.get_mut(&id) {
            Some(p) => p,
            None => return,
        };
        if p.peer_choking || !p.am_interested {
            return;
        }
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
            p.send(Message::Request {
                index: r.index,
                begin: r.begin,
                length: r.length,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitfield_bytes_round_trip_msb_first() {
        let bits = vec![true, false, false, false, false, false, false, true, true];
        let bytes = bits_to_bytes(&bits);
        assert_eq!(bytes, vec![0x81, 0x80]);
        assert_eq!(bytes_to_bits(&bytes, 9), bits);
    }
}
