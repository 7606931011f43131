//! Tracker client: one HTTP/1.0 announce (BEP 3) with compact peer lists (BEP 23), IPv6
//! `peers6` (BEP 7) and announce-list tiers (BEP 12), plus the background announcer thread.
//! This module owns the announce protocol (URL, reply, schedule); the HTTP exchange itself
//! (deadline, redirects, chunked bodies) is `crate::http`.
//!
//! The announcer owns the whole tracker conversation (schedule, backoff, tier order, tracker
//! id) so the chooser never blocks on a socket: it stores transfer counters in atomics and
//! reads `TrackerReply`s from a channel, the way mainline's `Rerequester` ran its HTTP
//! request on a side thread and posted the result back to the main loop.

use crate::bencode::{self, Value};
use crate::http::{self, parse_http_url, HttpError};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// `stopped` is a courtesy on the way out; never hold up shutdown for long.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Bounds on the tracker's `interval` before time scaling: 0 would make us hammer it, and a
/// huge value would overflow `Instant` arithmetic.
const MIN_TRACKER_INTERVAL: Duration = Duration::from_secs(1);
const MAX_TRACKER_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// Bounds on any scheduled wait after time scaling (a tiny scale must not become a busy loop).
const MIN_WAIT_SECS: f64 = 0.01;
const MAX_WAIT_SECS: f64 = 7.0 * 24.0 * 3600.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    None,
    Started,
    Completed,
    Stopped,
}

impl AnnounceEvent {
    fn param(self) -> Option<&'static str> {
        match self {
            AnnounceEvent::None => None,
            AnnounceEvent::Started => Some("started"),
            AnnounceEvent::Completed => Some("completed"),
            AnnounceEvent::Stopped => Some("stopped"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AnnounceRequest {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub uploaded: u64,
    pub downloaded: u64,
    pub left: u64,
    pub event: AnnounceEvent,
    pub numwant: u32,
    /// Sent as `&ip=`: experiments run many peers on 127.0.0.N behind one tracker.
    pub ip: Option<String>,
    pub key: Option<u32>,
    /// Echoed from a previous reply, as BEP 3 asks.
    pub tracker_id: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnnounceResponse {
    pub interval: Duration,
    pub min_interval: Option<Duration>,
    /// From compact `peers` (6 bytes each), a dictionary list, and `peers6` (18 bytes each).
    pub peers: Vec<SocketAddr>,
    pub warning: Option<String>,
    pub tracker_id: Option<Vec<u8>>,
    pub complete: Option<u64>,
    pub incomplete: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackerError {
    /// The tracker's own `failure reason`.
    Failure(String),
    Http(String),
    Io(String),
    BadReply(String),
    BadUrl(String),
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Failure(m) => write!(f, "tracker said: {}", m),
            TrackerError::Http(m) => write!(f, "tracker HTTP error: {}", m),
            TrackerError::Io(m) => write!(f, "tracker unreachable: {}", m),
            TrackerError::BadReply(m) => write!(f, "tracker sent a bad reply: {}", m),
            TrackerError::BadUrl(m) => write!(f, "bad tracker URL: {}", m),
        }
    }
}

impl std::error::Error for TrackerError {}

impl From<HttpError> for TrackerError {
    fn from(e: HttpError) -> TrackerError {
        match e {
            HttpError::Io(m) => TrackerError::Io(m),
            HttpError::Http(m) => TrackerError::Http(m),
            HttpError::BadUrl(m) => TrackerError::BadUrl(m),
        }
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters; info_hash and peer_id are
/// raw bytes, and trackers compare them byte for byte after decoding.
fn percent_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            s.push(b as char);
        } else {
            s.push('%');
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 15)] as char);
        }
    }
    s
}

/// The full announce URL for `req`. A base that already has a query (private-tracker
/// passkeys) gets our parameters appended with `&`.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> Result<String, TrackerError> {
    parse_http_url(base)?;
    // A fragment would swallow our query if we appended after it.
    let mut url = match base.find('#') {
        Some(i) => base[..i].to_string(),
        None => base.to_string(),
    };
    if !url.contains('?') {
        url.push('?');
    } else if !url.ends_with('?') && !url.ends_with('&') {
        url.push('&');
    }
    url.push_str("info_hash=");
    url.push_str(&percent_encode(&req.info_hash));
    url.push_str("&peer_id=");
    url.push_str(&percent_encode(&req.peer_id));
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}",
        req.port, req.uploaded, req.downloaded, req.left, req.numwant
    ));
    if let Some(ev) = req.event.param() {
        url.push_str("&event=");
        url.push_str(ev);
    }
    if let Some(ip) = &req.ip {
        url.push_str("&ip=");
        url.push_str(&percent_encode(ip.as_bytes()));
    }
    if let Some(key) = req.key {
        // Hex, as libtorrent and mainline send it.
        url.push_str(&format!("&key={:08x}", key));
    }
    if let Some(id) = &req.tracker_id {
        url.push_str("&trackerid=");
        url.push_str(&percent_encode(id));
    }
    Ok(url)
}

/// Parse a bencoded announce reply. Never panics; a `failure reason` wins over everything
/// else, and a reply without one must carry `interval`.
pub fn parse_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let v = bencode::decode_limited(body, http::MAX_BODY).map_err(|e| {
        TrackerError::BadReply(format!("not bencode ({}), starts {}", e, preview(body)))
    })?;
    let d = v
        .as_dict()
        .ok_or_else(|| TrackerError::BadReply("reply is not a dictionary".to_string()))?;
    if let Some(f) = d.get("failure reason") {
        return Err(TrackerError::Failure(match f.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => "(failure reason that is not a string)".to_string(),
        }));
    }
    let interval = match d.int("interval") {
        Some(n) if n >= 0 => Duration::from_secs(n as u64),
        Some(n) => return Err(TrackerError::BadReply(format!("negative interval {}", n))),
        None => return Err(TrackerError::BadReply("no interval".to_string())),
    };
    // Optional counters: a negative value is a tracker bug, not a reason to drop the peers.
    let non_negative = |key: &str| d.int(key).filter(|n| *n >= 0).map(|n| n as u64);
    let mut peers = match d.get("peers") {
        None => Vec::new(),
        Some(Value::Bytes(b)) => compact_peers(b, 6, "peers")?,
        Some(Value::List(l)) => dict_peers(l),
        Some(_) => {
            return Err(TrackerError::BadReply(
                "peers is neither a string nor a list".to_string(),
            ))
        }
    };
    match d.get("peers6") {
        None => {}
        Some(Value::Bytes(b)) => peers.extend(compact_peers(b, 18, "peers6")?),
        Some(_) => return Err(TrackerError::BadReply("peers6 is not a string".to_string())),
    }
    Ok(AnnounceResponse {
        interval,
        min_interval: non_negative("min interval").map(Duration::from_secs),
        peers,
        warning: d.str_lossy("warning message"),
        tracker_id: d.bytes("tracker id").map(<[u8]>::to_vec),
        complete: non_negative("complete"),
        incomplete: non_negative("incomplete"),
    })
}

/// BEP 23 (`width` 6: IPv4 + port) and BEP 7 (`width` 18: IPv6 + port), network byte order.
fn compact_peers(b: &[u8], width: usize, key: &str) -> Result<Vec<SocketAddr>, TrackerError> {
    if b.len() % width != 0 {
        return Err(TrackerError::BadReply(format!(
            "{} is {} bytes, not a multiple of {}",
            key,
            b.len(),
            width
        )));
    }
    let mut out = Vec::with_capacity(b.len() / width);
    for c in b.chunks_exact(width) {
        let (ip, port) = c.split_at(width - 2);
        let port = u16::from_be_bytes([port[0], port[1]]);
        let ip = if width == 6 {
            IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
        } else {
            let mut o = [0u8; 16];
            o.copy_from_slice(ip);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        // Port 0 cannot be connected to; dropping it beats failing the whole reply.
        if port != 0 {
            out.push(SocketAddr::new(ip, port));
        }
    }
    Ok(out)
}

/// BEP 3's original list of `{peer id, ip, port}` dicts. Bad entries are skipped: one odd
/// peer should not cost us the others.
fn dict_peers(list: &[Value]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for v in list {
        let d = match v.as_dict() {
            Some(d) => d,
            None => continue,
        };
        let ip = d
            .bytes("ip")
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<IpAddr>().ok());
        let port = d.int("port").filter(|p| (1..=65535).contains(p));
        match (ip, port) {
            (Some(ip), Some(port)) => out.push(SocketAddr::new(ip, port as u16)),
            _ => log::debug!("skipping malformed peer entry in tracker reply"),
        }
    }
    out
}

/// First bytes of a body, printable, for error messages (an HTML error page, say).
fn preview(body: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&body[..body.len().min(48)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{:?}", s)
}

/// Announce to one tracker URL, following up to 3 redirects, all within `timeout`.
pub fn announce(
    base: &str,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    let url = announce_url(base, req)?;
    let reply = http::get(&url, timeout)?;
    match reply.status {
        200 => parse_response(&reply.body),
        status => {
            // Some trackers send their failure reason with an error status.
            if let Err(TrackerError::Failure(r)) = parse_response(&reply.body) {
                return Err(TrackerError::Failure(r));
            }
            Err(TrackerError::Http(format!(
                "status {} {}",
                status, reply.reason
            )))
        }
    }
}

pub struct TrackerConfig {
    /// Announce-list tiers (BEP 12), or `[[announce]]`.
    pub tiers: Vec<Vec<String>>,
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub ip: Option<String>,
    pub numwant: u32,
    /// Per announce (connect, request, reply, redirects); not time-scaled.
    pub timeout: Duration,
    /// Exponential backoff bounds when every tracker fails (e.g. 15 s .. 30 min).
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Divides the tracker's interval / min interval and the backoff (experiments run
    /// time-scaled; 1.0 = real time).
    pub time_scale: f64,
    pub key: u32,
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
        let tiers = cfg.tiers.clone();
        if tiers.iter().all(Vec::is_empty) {
            log::warn!("no tracker URLs configured; nothing will be announced");
        }
        Announcer {
            cfg,
            counters,
            replies,
            tiers,
            started: false,
            completed_pending: false,
            tracker_id: None,
            interval: Duration::ZERO,
            min_interval: Duration::ZERO,
            last_ok: None,
            failures: 0,
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
    /// Our working copy of the tiers: BEP 12 moves a URL that answered to the front.
    tiers: Vec<Vec<String>>,
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
            info_hash: self.cfg.info_hash,
            peer_id: self.cfg.peer_id,
            port: self.cfg.port,
            uploaded: c.uploaded.load(Ordering::Relaxed),
            downloaded: c.downloaded.load(Ordering::Relaxed),
            left: c.left.load(Ordering::Relaxed),
            event,
            // A stopping peer wants no peers.
            numwant: if event == AnnounceEvent::Stopped {
                0
            } else {
                self.cfg.numwant
            },
            ip: self.cfg.ip.clone(),
            key: Some(self.cfg.key),
            tracker_id: self.tracker_id.clone(),
        }
    }

    /// One BEP 12 pass: tier 0 in order, then tier 1, ... until a tracker answers.
    /// Returns whether one did.
    fn round(&mut self, event: AnnounceEvent) -> Result<bool, Gone> {
        let req = self.request(event);
        for t in 0..self.tiers.len() {
            for i in 0..self.tiers[t].len() {
                let url = self.tiers[t][i].clone();
                let result = announce(&url, &req, self.cfg.timeout);
                let ok = match &result {
                    Ok(r) => {
                        self.accept(r, event, &url);
                        true
                    }
                    Err(e) => {
                        log::warn!("announce ({:?}) to {} failed: {}", event, url, e);
                        false
                    }
                };
                let reply = TrackerReply {
                    url: url.clone(),
                    result,
                };
                if self.replies.send(reply).is_err() {
                    return Err(Gone);
                }
                if ok {
                    let u = self.tiers[t].remove(i);
                    self.tiers[t].insert(0, u);
                    return Ok(true);
                }
            }
        }
        self.failures = self.failures.saturating_add(1);
        Ok(false)
    }

    fn accept(&mut self, r: &AnnounceResponse, event: AnnounceEvent, url: &str) {
        log::debug!(
            "announce ({:?}) to {}: {} peers, interval {:?}",
            event,
            url,
            r.peers.len(),
            r.interval
        );
        if let Some(w) = &r.warning {
            log::warn!("tracker {} warns: {}", url, w);
        }
        // BEP 3: keep echoing the last tracker id we were given.
        if r.tracker_id.is_some() {
            self.tracker_id = r.tracker_id.clone();
        }
        let interval = r
            .interval
            .max(MIN_TRACKER_INTERVAL)
            .min(MAX_TRACKER_INTERVAL);
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
        let d = self
            .cfg
            .retry_min
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.cfg.retry_max)
            .min(self.cfg.retry_max);
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
        let result = announce(&url, &req, self.cfg.timeout.min(STOP_TIMEOUT));
        if let Err(e) = &result {
            log::debug!("stopped announce to {} failed: {}", url, e);
        }
        let _ = self.replies.send(TrackerReply { url, result });
    }
}

/// Protocol time divided by the experiment's time scale, kept within sane bounds.
fn scaled(d: Duration, scale: f64) -> Duration {
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let secs = (d.as_secs_f64() / scale).clamp(MIN_WAIT_SECS, MAX_WAIT_SECS);
    Duration::from_secs_f64(secs)
}

#[cfg(test)]
mod tests;
