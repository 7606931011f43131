//! One torrent's session: the threads around the chooser (docs/design.md, "Threads and
//! channels"). It opens storage and re-checks what is already on disk, listens, and then
//! runs the chooser's loop: one `select!` over connection events, disk verdicts, tracker
//! replies and a clock tick, feeding each to the chooser with the time it happened and
//! carrying out the chooser's commands (dial, send to a writer, close a socket, hash a
//! piece). It also writes the `--stats` and `--trace` files and shuts down in order.
//!
//! Everything here touches sockets, threads or files; every decision is the chooser's.

use crate::bell::{self, Rx, Tx};
use crate::choke::Slots;
use crate::chooser::{Chooser, Out, Settings, Timing};
use crate::conn::{self, Cmd, Event, Line, Shared, Target};
use crate::metainfo::Metainfo;
use crate::meter::{self, MIN_BURST};
use crate::pacer::{self, Pace, Uplink};
use crate::picker::Picker;
use crate::pieces::{self, Done, Job};
use crate::stats::Sink;
use crate::storage::Storage;
use crate::strategy::Flags;
use crate::tracker::{self, TrackerConfig, TrackerCtl, TrackerReply, TransferCounters};

mod report;
use crossbeam_channel::{select, Receiver, Sender};
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    pub trace: Option<PathBuf>,
    pub peers: Vec<SocketAddr>,
    pub time_limit: Option<Duration>,
    pub time_scale: f64,
    pub timing: Timing,
    pub peer_id: [u8; 20],
    pub progress: bool,
    pub strategy: Flags,
    /// A BitSybil identity's share of the pieces, `start..end`.
    pub share: Option<(u32, u32)>,
    /// Label for logs and the progress line (BitSybil identities: "id0 " ...).
    pub label: String,
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub download_secs: Option<f64>,
    pub downloaded: u64,
    pub uploaded: u64,
    pub complete: bool,
}

/// A peer's connection as the session sees it: its writer's command channel and, once
/// TCP is up, a handle on its socket for `shutdown()`.
struct Link {
    cmd: Tx<Cmd>,
    stream: Option<TcpStream>,
    gone: Arc<AtomicBool>,
}

pub struct Torrent {
    meta: Metainfo,
    cfg: Config,
    chooser: Chooser,
    storage: Arc<Storage>,
    shared: Arc<Shared>,
    links: HashMap<u64, Link>,
    /// The upload pacer's channel, rate, burst and per-peer burst seconds, until `run`
    /// starts its thread (none without an upload cap).
    pacing: Option<(Rx<Pace>, f64, f64, f64)>,
    /// The chooser's commands being carried out (kept to reuse its allocation).
    outbox: Vec<Out>,
    listen: SocketAddr,
    listener: Option<TcpListener>,
    events: Receiver<Event>,
    disk: Option<Sender<Job>>,
    counters: Arc<TransferCounters>,
    tracker: Option<Sender<TrackerCtl>>,
    stats: Sink,
    trace: Sink,
    resumed: u32,
}

impl Torrent {
    /// Open storage, re-check existing data (resume) and bind the listening socket.
    pub fn open(meta: Metainfo, cfg: Config) -> Result<Torrent, String> {
        let storage = Storage::open(&meta, &cfg.dir, cfg.seed)?;
        let geo = meta.geometry();
        let mut strategy = cfg.strategy.build(&cfg.slots, cfg.up_kib, cfg.time_scale, cfg.share);
        if let Some(p) = &cfg.strategy.memory {
            match std::fs::read_to_string(p) {
                Ok(text) => strategy.recall(&text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => strategy.recall(""),
                Err(e) => return Err(format!("--tyrant-memory {}: {}", p.display(), e)),
            }
        }
        let mut picker = Picker::new(geo, strategy.order());
        if let Some((start, end)) = strategy.share() {
            picker.restrict(start, end);
        }
        let mut progress = |done, total| {
            if cfg.progress {
                eprint!("\rchecking {}/{} pieces", done, total);
            }
        };
        let verified = storage.verify(&meta.pieces, &mut progress, true);
        if cfg.progress {
            eprintln!();
        }
        for (i, ok) in verified.iter().enumerate() {
            // A BitSybil identity holds (and announces) only its own share.
            if *ok && picker.wanted(i as u32) {
                picker.set_have(i as u32);
            }
        }
        let resumed = picker.have_count();
        log::info!("{}: {} of {} pieces verified on disk", meta.name, resumed, geo.num_pieces);
        if cfg.seed && !picker.is_complete() {
            return Err(format!(
                "--seed: the data in {} is incomplete ({} of {} pieces verify)",
                cfg.dir.display(),
                resumed,
                geo.num_pieces
            ));
        }
        let listener = TcpListener::bind((cfg.bind_ip, cfg.port))
            .map_err(|e| format!("cannot listen on {}:{}: {}", cfg.bind_ip, cfg.port, e))?;
        let listen = listener.local_addr().map_err(|e| e.to_string())?;
        // Bounded, so a slow chooser slows the readers (and TCP) instead of growing memory:
        // at most 256 events × one reader buffer (64 KiB of blocks, `Event::Msgs`).
        let (ev_tx, events) = crossbeam_channel::bounded(256);
        // `--time-scale S`: the buckets run S times the nominal caps and hold one *nominal*
        // second of rate (a real second at S = 4 let peers exceed their caps by ~2.5 %).
        let burst = 1.0 / cfg.time_scale.max(1e-3);
        let rate = |kib: f64| Some(kib * 1024.0 * cfg.time_scale).filter(|r| *r > 0.0);
        let pacing = rate(cfg.up_kib).map(|r| (bell::unbounded(), r));
        let storage = Arc::new(storage);
        let shared = Arc::new(Shared {
            info_hash: meta.info_hash,
            peer_id: cfg.peer_id,
            geo,
            storage: Arc::clone(&storage),
            pacer: pacing.as_ref().map(|((tx, _), _)| tx.clone()),
            down: rate(cfg.down_kib).map(|r| meter::shared_bucket(r, MIN_BURST.max(r * burst))),
            keepalive: cfg.timing.keepalive,
            connect_timeout: cfg.timing.connect,
            bind: match listen.ip() {
                std::net::IpAddr::V4(ip) if !ip.is_unspecified() => Some(ip),
                _ => None,
            },
            events: ev_tx,
        });
        let settings = Settings {
            peer_id: cfg.peer_id,
            listen,
            max_peers: cfg.max_peers,
            stop_after_download: cfg.stop_after_download,
            timing: cfg.timing.clone(),
            rng_seed: cfg.rng_seed,
            trace: cfg.trace.is_some(),
        };
        let chooser =
            Chooser::new(meta.pieces.clone(), picker, strategy, settings, geo, Instant::now());
        Ok(Torrent {
            stats: Sink::create(cfg.stats.as_deref())?,
            trace: Sink::create(cfg.trace.as_deref())?,
            counters: Arc::new(TransferCounters::default()),
            pacing: pacing.map(|((_, rx), r)| (rx, r, MIN_BURST.max(r * burst), burst)),
            chooser,
            storage,
            shared,
            links: HashMap::new(),
            outbox: Vec::new(),
            listen,
            listener: Some(listener),
            events,
            disk: None,
            tracker: None,
            resumed,
            meta,
            cfg,
        })
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn peer_id(&self) -> [u8; 20] {
        self.cfg.peer_id
    }

    /// BitSybil: the other identities of this process, never dialled or traded with.
    pub fn set_siblings(&mut self, siblings: Vec<([u8; 20], SocketAddr)>) {
        self.chooser.set_siblings(siblings);
    }

    /// Run until done (`--stop-after-download`), the time limit, or a fatal error.
    pub fn run(mut self) -> Result<Outcome, String> {
        let listener = self.listener.take().ok_or("the torrent already ran")?;
        let acc_tx = self.shared.events.clone();
        std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                conn::accept_each(listener, "", |s| acc_tx.send(Event::Incoming(s)).is_ok())
            })
            .map_err(|e| e.to_string())?;
        if let Some((rx, rate, burst, burst_secs)) = self.pacing.take() {
            std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || pacer::run(rx, Uplink::new(rate, burst, burst_secs, Instant::now())))
                .map_err(|e| format!("cannot start the upload pacer: {}", e))?;
        }
        let (disk_done, disk_thread) = if self.cfg.seed {
            (crossbeam_channel::never(), None)
        } else {
            let queue = pieces::queue_len(self.meta.geometry().piece_length);
            let (jobs, done, h) = pieces::spawn_disk(Arc::clone(&self.storage), queue)
                .map_err(|e| format!("cannot start the disk thread: {}", e))?;
            self.disk = Some(jobs);
            (done, Some(h))
        };
        let (mut tr_rx, tracker_thread) = self.start_tracker();
        self.write_stats_header();
        let started = Instant::now();
        self.chooser.start(started, &self.cfg.peers);
        self.carry_out();
        // The tick shrinks with --time-scale so that a round (10 s / S) is not stretched by
        // up to one tick: at S = 4 a 0.5 s tick made rounds 10–20 % longer than nominal.
        let tick_every = Duration::from_secs_f64((0.5 / self.cfg.time_scale.max(1.0)).max(0.05));
        let tick = crossbeam_channel::tick(tick_every);
        let events = self.events.clone();
        while self.chooser.stop.is_none() {
            select! {
                recv(events) -> ev => match ev {
                    Ok(ev) => self.on_event(ev),
                    Err(_) => break,
                },
                recv(disk_done) -> d => if let Ok(d) = d {
                    self.chooser.on_verdict(Instant::now(), d);
                },
                recv(tr_rx) -> r => match r {
                    Ok(r) => self.on_tracker(r),
                    Err(_) => tr_rx = crossbeam_channel::never(),
                },
                recv(tick) -> _ => {
                    let now = Instant::now();
                    if self.chooser.tick(now) {
                        self.report(now);
                    }
                    if self.cfg.time_limit.map_or(false, |l| now.duration_since(started) >= l) {
                        self.chooser.stop = Some("time limit reached".into());
                    }
                }
            }
            self.carry_out();
        }
        // Let the disk thread finish what is queued (a verified piece is never dropped) and
        // count its verdicts before the `done` line.
        self.disk = None;
        if disk_thread.map_or(false, |h| h.join().is_err()) {
            log::error!("the disk thread panicked");
        }
        while let Ok(d) = disk_done.try_recv() {
            self.chooser.on_verdict(Instant::now(), d);
        }
        self.carry_out();
        self.finish(tracker_thread)
    }

    fn start_tracker(&mut self) -> (Receiver<TrackerReply>, Option<JoinHandle<()>>) {
        let id = self.cfg.peer_id;
        let tiers = self.meta.trackers();
        if tiers.is_empty() {
            return (crossbeam_channel::never(), None);
        }
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let cfg = TrackerConfig {
            tiers,
            request: tracker::AnnounceRequest {
                info_hash: self.meta.info_hash,
                peer_id: id,
                port: self.listen.port(),
                ip: self.cfg.announce_ip.clone(),
                numwant: self.cfg.numwant,
                // The key only tells a tracker our announces apart; the peer id is unique
                // enough, and taking it from there leaves the chooser's RNG to the experiment.
                key: Some(u32::from_be_bytes([id[8], id[9], id[10], id[11]])),
                ..tracker::AnnounceRequest::default()
            },
            timeout: Duration::from_secs(15),
            retry_min: Duration::from_secs(15),
            retry_max: Duration::from_secs(1800),
            time_scale: self.cfg.time_scale,
        };
        self.update_counters();
        let h = tracker::spawn_announcer(cfg, Arc::clone(&self.counters), ctl_rx, rep_tx);
        self.tracker = Some(ctl_tx);
        (rep_rx, Some(h))
    }

    fn on_tracker(&mut self, r: TrackerReply) {
        match r.result {
            Ok(resp) => {
                log::info!("tracker {}: {} peers", r.url, resp.peers.len());
                self.chooser.on_peers(Instant::now(), resp.peers);
            }
            Err(e) => log::warn!("tracker {}: {}", r.url, e),
        }
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Incoming(stream) => {
                match stream.peer_addr().ok().and_then(|addr| self.chooser.accept(now, addr)) {
                    Some(id) => self.link(id, Target::Incoming(stream)),
                    None => {
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
            }
            Event::Connected { id, stream } => match self.links.get_mut(&id) {
                Some(l) => l.stream = Some(stream),
                None => {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            },
            Event::Handshake { id, peer_id } => self.chooser.on_handshake(now, id, peer_id),
            Event::Msgs { id, msgs } => self.chooser.on_messages(now, id, msgs),
            Event::Sent { id, block } => self.chooser.on_sent(now, id, block),
            Event::Closed { id, reason } => {
                self.unlink(id);
                self.chooser.on_closed(now, id, &reason);
            }
        }
    }

    /// Start peer `id`'s connection threads, linked to the session and the pacer.
    fn link(&mut self, id: u64, target: Target) {
        let (cmd, cmds) = bell::unbounded();
        tell(self.shared.pacer.as_ref(), Pace::Join { id, cmd: cmd.clone() });
        let gone = Arc::new(AtomicBool::new(false));
        self.links.insert(id, Link { cmd, stream: None, gone: Arc::clone(&gone) });
        conn::spawn(id, target, Arc::clone(&self.shared), Line { cmds, gone });
    }

    /// Shut the peer's socket down (its reader wakes and ends) and drop its command
    /// sender (its writer ends).
    fn unlink(&mut self, id: u64) {
        tell(self.shared.pacer.as_ref(), Pace::Leave { id });
        if let Some(l) = self.links.remove(&id) {
            l.gone.store(true, Ordering::Relaxed);
            if let Some(s) = l.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Carry out what the chooser decided (and what it decides meanwhile: a piece checked
    /// inline gets its verdict at once).
    fn carry_out(&mut self) {
        let mut outs = std::mem::take(&mut self.outbox);
        loop {
            self.chooser.take_out(&mut outs);
            if outs.is_empty() {
                break;
            }
            self.update_counters();
            for out in outs.drain(..) {
                match out {
                    Out::Send(id, cmd) => tell(self.links.get(&id).map(|l| &l.cmd), cmd),
                    Out::Dial(id, addr) => self.link(id, Target::Outgoing(addr)),
                    Out::Close(id) => self.unlink(id),
                    Out::Share(id, cap, weight) => {
                        tell(self.shared.pacer.as_ref(), Pace::Share { id, cap, weight })
                    }
                    Out::Verify(job) => self.verify(job),
                    Out::Tracker(ctl) => {
                        if let Some(t) = &self.tracker {
                            let _ = t.send(ctl);
                        }
                    }
                    Out::Complete => self.on_complete(),
                    Out::Trace(line) => self.trace.line(&line),
                }
            }
        }
        self.outbox = outs;
    }

    fn verify(&mut self, job: Job) {
        let job = match &self.disk {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                // The disk thread is gone (it only ends when we drop its sender, so this
                // should not happen): do the work here rather than lose the piece.
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        let done: Done = pieces::hash_and_write(&self.storage, job);
        self.chooser.on_verdict(Instant::now(), done);
    }

    fn update_counters(&self) {
        let c = &self.counters;
        c.downloaded.store(self.chooser.downloaded, Ordering::Relaxed);
        c.uploaded.store(self.chooser.uploaded, Ordering::Relaxed);
        c.left.store(self.chooser.picker().left_bytes(), Ordering::Relaxed);
    }
}

/// Send to a thread that may not exist (no upload cap, no tracker, a closed peer) or may
/// have ended.
fn tell<T>(to: Option<&Tx<T>>, m: T) {
    if let Some(tx) = to {
        let _ = tx.send(m);
    }
}
