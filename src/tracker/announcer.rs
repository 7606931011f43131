//! The announcer thread: the whole tracker conversation (schedule, back-off, BEP 12 tier
//! order, tracker id), so the chooser never blocks on a socket. The session stores transfer
//! counters in atomics and reads `TrackerReply`s from a channel, the way mainline's
//! `Rerequester` ran its HTTP request on a side thread and posted the result back to the
//! main loop.

use super::*;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

/// `stopped` is a courtesy on the way out; never hold up shutdown for long.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds on the tracker's `interval` before time scaling: 0 would make us hammer it, and a
/// huge value would overflow `Instant` arithmetic.
const MIN_TRACKER_INTERVAL: Duration = Duration::from_secs(1);
const MAX_TRACKER_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Bounds on any scheduled wait after time scaling (a tiny scale must not become a busy loop).
const MIN_WAIT_SECS: f64 = 0.01;
const MAX_WAIT_SECS: f64 = 7.0 * 24.0 * 3600.0;

pub struct TrackerConfig {
    /// Announce-list tiers (BEP 12), or `[[announce]]`. The announcer's working copy:
    /// BEP 12 moves a URL that answered to the front of its tier.
    pub tiers: Vec<Vec<String>>,
    /// Every announce's torrent, identity, port, `ip`, `numwant` and `key` (the announcer
    /// fills in the counters, the event and the tracker id).
    pub request: AnnounceRequest,
    /// Per announce (connect, request, reply, redirects); not time-scaled.
    pub timeout: Duration,
    /// Exponential backoff bounds when every tracker fails (e.g. 15 s .. 30 min).
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Divides the tracker's interval / min interval and the backoff (experiments run
    /// time-scaled; 1.0 = real time).
    pub time_scale: f64,
}

/// Counters the announcer reads when it announces; the chooser stores them (Relaxed atomics).
#[derive(Default)]
pub struct TransferCounters {
    pub uploaded: AtomicU64,
    pub downloaded: AtomicU64,
    pub left: AtomicU64,
}

#[derive(Debug, PartialEq)]
pub enum TrackerCtl {
    /// Send `event=completed` now.
    Completed,
    /// Announce now if the tracker's min interval allows, else as soon as it does.
    WantPeers,
    /// Send `event=stopped` (short timeout), then exit.
    Stop,
}

pub struct TrackerReply {
    pub url: String,
    pub result: Result<AnnounceResponse, TrackerError>,
}

/// Run the announcer on its own thread. Every attempt (one per URL tried) is reported on
/// `replies`; the thread exits on `Stop`, when `ctl` disconnects (after a best-effort
/// `stopped`), or when nobody listens on `replies` any more.
pub fn spawn_announcer(
    cfg: TrackerConfig,
    counters: Arc<TransferCounters>,
    ctl: Receiver<TrackerCtl>,
    replies: Sender<TrackerReply>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        if cfg.tiers.iter().all(Vec::is_empty) {
            log::warn!("no tracker URLs configured; nothing will be announced");
        }
        Announcer {
            counters,
            replies,
            started: false,
            completed_pending: false,
            tracker_id: None,
            interval: Duration::ZERO,
            min_interval: Duration::ZERO,
            last_ok: None,
            failures: 0,
            udp: UdpClient::new(u64::from(cfg.request.key.unwrap_or(0)), cfg.time_scale),
            cfg,
        }
        .run(ctl)
    })
}

/// The replies receiver is gone: nobody wants our results, so stop.
struct Gone;

struct Announcer {
    cfg: TrackerConfig,
    counters: Arc<TransferCounters>,
    replies: Sender<TrackerReply>,
    /// Some tracker accepted `started`; until then every announce is `started`.
    started: bool,
    /// `Completed` was asked for and no tracker has accepted it yet.
    completed_pending: bool,
    tracker_id: Option<Vec<u8>>,
    /// Both already time-scaled.
    interval: Duration,
    min_interval: Duration,
    /// When and where the last announce succeeded.
    last_ok: Option<(Instant, String)>,
    /// Consecutive rounds in which every tracker failed.
    failures: u32,
    udp: UdpClient,
}

impl Announcer {
    fn run(mut self, ctl: Receiver<TrackerCtl>) {
        let mut next = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next {
                let event = if !self.started {
                    AnnounceEvent::Started
                } else if self.completed_pending {
                    AnnounceEvent::Completed
                } else {
                    AnnounceEvent::None
                };
                next = match self.round(event) {
                    Err(Gone) => return,
                    // A completion that arrived before `started` got through goes out now.
                    Ok(true) if self.completed_pending => Instant::now(),
                    Ok(true) => Instant::now() + self.interval,
                    Ok(false) => Instant::now() + self.backoff(),
                };
                continue;
            }
            match ctl.recv_timeout(next - now) {
                Ok(TrackerCtl::Completed) => {
                    self.completed_pending = true;
                    // While failing, the backoff schedule stands: hammering dead trackers
                    // will not get the event through any sooner.
                    if self.started && self.failures == 0 {
                        next = Instant::now();
                    }
                }
                Ok(TrackerCtl::WantPeers) => {
                    if let (Some((at, _)), 0) = (&self.last_ok, self.failures) {
                        next = next.min(*at + self.min_interval);
                    }
                }
                Ok(TrackerCtl::Stop) => {
                    self.stop();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    log::debug!("tracker control channel closed; stopping");
                    self.stop();
                    return;
                }
            }
        }
    }

    fn request(&self, event: AnnounceEvent) -> AnnounceRequest {
        let c = &self.counters;
        AnnounceRequest {
            uploaded: c.uploaded.load(Ordering::Relaxed),
            downloaded: c.downloaded.load(Ordering::Relaxed),
            left: c.left.load(Ordering::Relaxed),
            event,
            // A stopping peer wants no peers.
            numwant: if event == AnnounceEvent::Stopped { 0 } else { self.cfg.request.numwant },
            tracker_id: self.tracker_id.clone(),
            ..self.cfg.request.clone()
        }
    }

    /// `timeout` bounds an HTTP announce; a UDP announce keeps BEP 15's own schedule
    /// (`udp.rs`) and takes `timeout` only as a bound on a `stopped`.
    fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        timeout: Duration,
    ) -> Result<AnnounceResponse, TrackerError> {
        if url.get(..6).map_or(false, |s| s.eq_ignore_ascii_case("udp://")) {
            let limit = if req.event == AnnounceEvent::Stopped { timeout } else { Duration::MAX };
            self.udp.announce(url, req, limit)
        } else {
            announce(url, req, timeout)
        }
    }

    /// One BEP 12 pass: tier 0 in order, then tier 1, ... until a tracker answers.
    /// Returns whether one did.
    fn round(&mut self, event: AnnounceEvent) -> Result<bool, Gone> {
        let req = self.request(event);
        for t in 0..self.cfg.tiers.len() {
            for i in 0..self.cfg.tiers[t].len() {
                let url = self.cfg.tiers[t][i].clone();
                let result = self.announce(&url, &req, self.cfg.timeout);
                match &result {
                    Ok(r) => self.accept(r, event, &url),
                    Err(e) => log::warn!("announce ({:?}) to {} failed: {}", event, url, e),
                }
                let ok = result.is_ok();
                if self.replies.send(TrackerReply { url: url.clone(), result }).is_err() {
                    return Err(Gone);
                }
                if ok {
                    let u = self.cfg.tiers[t].remove(i);
                    self.cfg.tiers[t].insert(0, u);
                    return Ok(true);
                }
            }
        }
        self.failures = self.failures.saturating_add(1);
        Ok(false)
    }

    fn accept(&mut self, r: &AnnounceResponse, event: AnnounceEvent, url: &str) {
        let (peers, interval) = (r.peers.len(), r.interval);
        log::debug!("announce ({event:?}) to {url}: {peers} peers, interval {interval:?}");
        if let Some(w) = &r.warning {
            log::warn!("tracker {} warns: {}", url, w);
        }
        // BEP 3: keep echoing the last tracker id we were given.
        if r.tracker_id.is_some() {
            self.tracker_id = r.tracker_id.clone();
        }
        let interval = r.interval.max(MIN_TRACKER_INTERVAL).min(MAX_TRACKER_INTERVAL);
        // Without a min interval, retry_min keeps WantPeers from hammering the tracker.
        let min_interval = r.min_interval.unwrap_or(self.cfg.retry_min).min(interval);
        self.interval = scaled(interval, self.cfg.time_scale);
        self.min_interval = scaled(min_interval, self.cfg.time_scale);
        self.failures = 0;
        self.last_ok = Some((Instant::now(), url.to_string()));
        match event {
            AnnounceEvent::Started => self.started = true,
            AnnounceEvent::Completed => self.completed_pending = false,
            _ => {}
        }
    }

    /// retry_min, doubled per consecutive failed round, capped at retry_max; then scaled.
    fn backoff(&self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(30);
        let (min, max) = (self.cfg.retry_min, self.cfg.retry_max);
        let d = min.checked_mul(1u32 << doublings).unwrap_or(max).min(max);
        scaled(d, self.cfg.time_scale)
    }

    /// Tell the last tracker that answered that we are leaving. Skipped if none ever
    /// accepted us: it has nothing to forget.
    fn stop(&mut self) {
        let url = match (&self.last_ok, self.started) {
            (Some((_, url)), true) => url.clone(),
            _ => return,
        };
        let req = self.request(AnnounceEvent::Stopped);
        let result = self.announce(&url, &req, self.cfg.timeout.min(STOP_TIMEOUT));
        if let Err(e) = &result {
            log::debug!("stopped announce to {} failed: {}", url, e);
        }
        let _ = self.replies.send(TrackerReply { url, result });
    }
}

/// Protocol time divided by the experiment's time scale, kept within sane bounds.
fn scaled(d: Duration, scale: f64) -> Duration {
    let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
    let secs = (d.as_secs_f64() / scale).clamp(MIN_WAIT_SECS, MAX_WAIT_SECS);
    Duration::from_secs_f64(secs)
}
