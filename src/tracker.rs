//! Tracker client: one HTTP/1.0 announce (BEP 3) with compact peer lists (BEP 23), IPv6
//! `peers6` (BEP 7) and announce-list tiers (BEP 12), plus the background announcer thread.
//!
//! The announcer owns the whole tracker conversation (schedule, backoff, tier order, tracker
//! id) so the chooser never blocks on a socket: it stores transfer counters in atomics and
//! reads `TrackerReply`s from a channel, the way mainline's `Rerequester` ran its HTTP
//! request on a side thread and posted the result back to the main loop.
//!
//! Deadlines are enforced with a watchdog that shuts the socket down, not only with
//! `SO_RCVTIMEO`: the network simulator the experiments use does not implement it.

use crate::bencode::{self, Value};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Largest reply body accepted; a 4 MiB compact list is ~700k peers, far beyond any swarm.
const MAX_BODY: usize = 4 << 20;
/// Status line plus headers; anything longer is not a tracker talking.
const MAX_HEAD: usize = 64 << 10;
const MAX_REDIRECTS: usize = 3;
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

/// The parts of an `http://` URL needed to send one request.
#[derive(Debug, PartialEq)]
struct HttpUrl {
    host: String,
    port: u16,
    /// Authority as written, for the `Host:` header and relative redirects.
    authority: String,
    /// `/path?query`
    target: String,
}

fn parse_http_url(url: &str) -> Result<HttpUrl, TrackerError> {
    let bad = |why: &str| Err(TrackerError::BadUrl(format!("{}: {}", url, why)));
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return bad(
            "https trackers are not supported (tyrant has no TLS); use an http:// announce URL",
        );
    }
    if lower.starts_with("udp://") {
        return bad("UDP trackers (BEP 15) are not supported; use an http:// announce URL");
    }
    if !lower.starts_with("http://") {
        return bad("only http:// tracker URLs are supported");
    }
    let rest = &url["http://".len()..];
    let rest = match rest.find('#') {
        Some(i) => &rest[..i],
        None => rest,
    };
    let (authority, target) = match rest.find(&['/', '?'][..]) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return bad("user:password@ in tracker URLs is not supported");
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return bad("spaces or control characters in the path");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return bad("junk after the IPv6 address"),
            },
            None => return bad("unclosed '[' in host"),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return bad("no host");
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 => n,
            _ => return bad("bad port"),
        },
    };
    Ok(HttpUrl {
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        target,
    })
}

/// Parse a bencoded announce reply. Never panics; a `failure reason` wins over everything
/// else, and a reply without one must carry `interval`.
pub fn parse_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let v = bencode::decode_limited(body, MAX_BODY).map_err(|e| {
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
    let start = Instant::now();
    let deadline = start
        .checked_add(timeout)
        .unwrap_or_else(|| start + MAX_TRACKER_INTERVAL);
    let mut url = announce_url(base, req)?;
    for _ in 0..=MAX_REDIRECTS {
        let u = parse_http_url(&url)?;
        let reply = http_get(&u, deadline, timeout)?;
        match reply.status {
            200 => return parse_response(&reply.body),
            301 | 302 | 303 | 307 | 308 => {
                let loc = reply.location.ok_or_else(|| {
                    TrackerError::Http(format!("redirect {} without Location", reply.status))
                })?;
                url = if loc.starts_with('/') {
                    format!("http://{}{}", u.authority, loc)
                } else {
                    loc
                };
                log::debug!("tracker redirected to {}", url);
            }
            status => {
                // Some trackers send their failure reason with an error status.
                if let Err(TrackerError::Failure(r)) = parse_response(&reply.body) {
                    return Err(TrackerError::Failure(r));
                }
                return Err(TrackerError::Http(format!(
                    "status {} {}",
                    status, reply.reason
                )));
            }
        }
    }
    Err(TrackerError::Http(format!(
        "more than {} redirects",
        MAX_REDIRECTS
    )))
}

struct HttpReply {
    status: u16,
    reason: String,
    location: Option<String>,
    body: Vec<u8>,
}

fn remaining(deadline: Instant, timeout: Duration) -> Result<Duration, TrackerError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(timed_out(timeout))
    } else {
        Ok(left)
    }
}

fn timed_out(timeout: Duration) -> TrackerError {
    TrackerError::Io(format!("no complete reply within {:?}", timeout))
}

fn connect(u: &HttpUrl, deadline: Instant, timeout: Duration) -> Result<TcpStream, TrackerError> {
    let addrs: Vec<SocketAddr> = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| TrackerError::Io(format!("cannot resolve {}: {}", u.host, e)))?
        .collect();
    let mut last = format!("{} resolved to no address", u.host);
    for a in addrs {
        match TcpStream::connect_timeout(&a, remaining(deadline, timeout)?) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("connect to {}: {}", a, e),
        }
    }
    Err(TrackerError::Io(last))
}

/// Shuts the socket down at the deadline so a blocked read or write returns even where
/// read timeouts are unsupported. Dropping the guard cancels it.
struct Watchdog {
    _cancel: Sender<()>,
    fired: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(stream: &TcpStream, deadline: Instant) -> Watchdog {
        let fired = Arc::new(AtomicBool::new(false));
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
        match stream.try_clone() {
            Ok(s) => {
                let flag = Arc::clone(&fired);
                let spawned = thread::Builder::new()
                    .name("tracker-deadline".to_string())
                    .spawn(move || {
                        let wait = deadline.saturating_duration_since(Instant::now());
                        if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(wait) {
                            flag.store(true, Ordering::SeqCst);
                            let _ = s.shutdown(Shutdown::Both);
                        }
                    });
                if let Err(e) = spawned {
                    log::debug!(
                        "no tracker deadline thread ({}); relying on read timeout",
                        e
                    );
                }
            }
            Err(e) => log::debug!("no tracker deadline ({}); relying on read timeout", e),
        }
        Watchdog {
            _cancel: cancel,
            fired,
        }
    }

    fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

fn http_get(u: &HttpUrl, deadline: Instant, timeout: Duration) -> Result<HttpReply, TrackerError> {
    let mut stream = connect(u, deadline, timeout)?;
    // Best effort: fails with ENOPROTOOPT under the simulator, where the watchdog does the job.
    let _ = stream.set_read_timeout(Some(remaining(deadline, timeout)?));
    let _ = stream.set_write_timeout(Some(remaining(deadline, timeout)?));
    let watchdog = Watchdog::start(&stream, deadline);
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: tyrant/0.1\r\nConnection: close\r\n\r\n",
        u.target, u.authority
    );
    let io_err = |e: std::io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(timeout),
        _ => TrackerError::Io(format!("{}: {}", u.authority, e)),
    };
    let raw = stream
        .write_all(request.as_bytes())
        .map_err(io_err)
        .and_then(|_| read_reply(&mut stream, deadline, timeout).map_err(io_err));
    // A shutdown by the watchdog looks like EOF, which would pass for a complete reply.
    if watchdog.fired() {
        return Err(timed_out(timeout));
    }
    parse_http_reply(&raw?)
}

/// Read until EOF, the end of a `Content-Length` body, or the size bound.
fn read_reply(
    stream: &mut TcpStream,
    deadline: Instant,
    timeout: Duration,
) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                format!("{:?} elapsed", timeout),
            ));
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_HEAD + MAX_BODY {
            return Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "reply larger than 4 MiB",
            ));
        }
        // A server that keeps the connection open despite `Connection: close` is done once
        // the declared body has arrived.
        if let Some((head_len, head)) = split_head(&buf) {
            if !is_chunked(head) {
                if let Some(len) = content_length(head) {
                    if buf.len() - head_len >= len {
                        return Ok(buf);
                    }
                }
            }
        }
    }
}

fn split_head(buf: &[u8]) -> Option<(usize, &[u8])> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some((end, &buf[..end]))
}

fn header_lines(head: &[u8]) -> impl Iterator<Item = (String, String)> + '_ {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let line = String::from_utf8_lossy(line);
        let (k, v) = line.split_once(':')?;
        Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
    })
}

fn header(head: &[u8], name: &str) -> Option<String> {
    header_lines(head).find(|(k, _)| k == name).map(|(_, v)| v)
}

fn is_chunked(head: &[u8]) -> bool {
    header(head, "transfer-encoding").map_or(false, |v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(head: &[u8]) -> Option<usize> {
    header(head, "content-length").and_then(|v| v.parse().ok())
}

fn parse_http_reply(raw: &[u8]) -> Result<HttpReply, TrackerError> {
    if raw.is_empty() {
        return Err(TrackerError::Io(
            "connection closed without a reply".to_string(),
        ));
    }
    let (head_len, head) = split_head(raw).ok_or_else(|| {
        TrackerError::Io("connection closed in the middle of the reply headers".to_string())
    })?;
    if head_len > MAX_HEAD {
        return Err(TrackerError::Http("reply headers too long".to_string()));
    }
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let mut parts = status_line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = match status {
        Some(s) if version.starts_with("HTTP/1.") && (100..=999).contains(&s) => s,
        _ => {
            return Err(TrackerError::Http(format!(
                "not an HTTP/1.x status line: {:?}",
                status_line.trim_end()
            )))
        }
    };
    let reason = parts.next().unwrap_or_default().to_string();
    let mut body = &raw[head_len..];
    let body = if is_chunked(head) {
        dechunk(body)?
    } else {
        if let Some(len) = content_length(head) {
            if body.len() < len {
                return Err(TrackerError::Io(format!(
                    "connection closed after {} of {} body bytes",
                    body.len(),
                    len
                )));
            }
            body = &body[..len];
        }
        body.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err(TrackerError::Http(
            "reply body larger than 4 MiB".to_string(),
        ));
    }
    Ok(HttpReply {
        status,
        reason,
        location: header(head, "location"),
        body,
    })
}

/// `Transfer-Encoding: chunked` (some HTTP/1.1 trackers use it even for a 1.0 request).
fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, TrackerError> {
    let bad = |why: &str| TrackerError::Http(format!("bad chunked body: {}", why));
    let mut out = Vec::new();
    loop {
        let eol = data
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| bad("truncated chunk size"))?;
        let line = String::from_utf8_lossy(&data[..eol]);
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("chunk size is not hex"))?;
        data = &data[eol + 1..];
        if size == 0 {
            return Ok(out); // trailers, if any, carry nothing we need
        }
        if size > MAX_BODY - out.len().min(MAX_BODY) {
            return Err(bad("body larger than 4 MiB"));
        }
        if data.len() < size {
            return Err(TrackerError::Io(
                "connection closed in the middle of a chunk".to_string(),
            ));
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size..];
        data = data
            .strip_prefix(b"\r\n")
            .or_else(|| data.strip_prefix(b"\n"))
            .unwrap_or(data);
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
mod tests {
    use super::*;
    use crate::bencode::Dict;
    use crate::trackerd;
    use std::net::TcpListener;

    fn req() -> AnnounceRequest {
        AnnounceRequest {
            info_hash: [0xab; 20],
            peer_id: *b"-TY0001-abcdefghijkl",
            port: 6881,
            uploaded: 1,
            downloaded: 2,
            left: 3,
            event: AnnounceEvent::None,
            numwant: 50,
            ip: None,
            key: None,
            tracker_id: None,
        }
    }

    #[test]
    fn url_encodes_binary_exactly() {
        let mut r = req();
        let mut ih = [0u8; 20];
        ih[..10].copy_from_slice(&[0x00, 0x12, b'a', b'Z', b'9', b'-', b'.', b'_', b'~', b' ']);
        ih[10..].copy_from_slice(&[b'+', b'%', b'/', b'?', b'&', b'=', 0x7f, 0x80, 0xfe, 0xff]);
        r.info_hash = ih;
        r.event = AnnounceEvent::Started;
        r.ip = Some("127.0.0.5".to_string());
        r.key = Some(0xbeef);
        r.tracker_id = Some(b"id 1".to_vec());
        let url = announce_url("http://t.example:6969/announce", &r).unwrap();
        assert_eq!(
            url,
            "http://t.example:6969/announce?info_hash=%00%12aZ9-._~%20%2B%25%2F%3F%26%3D%7F%80%FE%FF\
             &peer_id=-TY0001-abcdefghijkl&port=6881&uploaded=1&downloaded=2&left=3&compact=1\
             &numwant=50&event=started&ip=127.0.0.5&key=0000beef&trackerid=id%201"
        );
    }

    #[test]
    fn url_appends_to_an_existing_query() {
        let u = announce_url("http://t/a?passkey=xyz", &req()).unwrap();
        assert!(
            u.starts_with("http://t/a?passkey=xyz&info_hash=%AB%AB"),
            "{}",
            u
        );
        let u = announce_url("http://t/a?", &req()).unwrap();
        assert!(u.starts_with("http://t/a?info_hash="), "{}", u);
        let u = announce_url("http://t/a#frag", &req()).unwrap();
        assert!(u.starts_with("http://t/a?info_hash="), "{}", u);
        assert!(!u.contains("event="));
    }

    #[test]
    fn url_rejects_what_we_cannot_speak() {
        for bad in [
            "https://t/announce",
            "udp://t:80/announce",
            "ftp://t/x",
            "http:///announce",
            "http://t:0/announce",
            "http://t:99999/announce",
            "http://u:p@t/announce",
            "http://[::1/announce",
        ] {
            match announce_url(bad, &req()) {
                Err(TrackerError::BadUrl(m)) => assert!(m.contains(bad), "{}", m),
                other => panic!("{}: {:?}", bad, other),
            }
        }
        let e = announce_url("https://t/announce", &req()).unwrap_err();
        assert!(
            e.to_string().contains("https trackers are not supported"),
            "{}",
            e
        );
    }

    #[test]
    fn parses_urls() {
        let u = parse_http_url("http://[::1]:81/a/b?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 81, "/a/b?x=1")
        );
        assert_eq!(u.authority, "[::1]:81");
        let u = parse_http_url("HTTP://Example.com?x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("Example.com", 80, "/?x")
        );
        let u = parse_http_url("http://10.0.0.1").unwrap();
        assert_eq!((u.port, u.target.as_str()), (80, "/"));
    }

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((a, port))
    }

    #[test]
    fn parse_response_table() {
        let ok = |b: &[u8]| parse_response(b).unwrap_or_else(|e| panic!("{:?}: {}", b, e));
        let r = ok(b"d8:intervali1800e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e");
        assert_eq!(r.interval, Duration::from_secs(1800));
        assert_eq!(
            r.peers,
            vec![v4([127, 0, 0, 1], 6881), v4([10, 0, 0, 2], 80)]
        );
        assert_eq!(
            (r.min_interval, r.complete, r.incomplete),
            (None, None, None)
        );
        assert_eq!(
            (r.warning.as_deref(), r.tracker_id.as_deref()),
            (None, None)
        );

        let r = ok(b"d8:completei5e10:incompletei7e8:intervali60e12:min intervali30e\
            5:peersld2:ip9:127.0.0.57:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eed2:ip3:::14:porti1ee\
            d2:ip9:not-an-ip4:porti1eed2:ip8:10.0.0.14:porti70000eei5ee\
            10:tracker id3:xyz15:warning message4:slowe");
        assert_eq!(
            r.peers,
            vec![v4([127, 0, 0, 5], 7000), "[::1]:1".parse().unwrap()]
        );
        assert_eq!(r.min_interval, Some(Duration::from_secs(30)));
        assert_eq!((r.complete, r.incomplete), (Some(5), Some(7)));
        assert_eq!(r.warning.as_deref(), Some("slow"));
        assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));

        let mut p6 = b"d8:intervali5e5:peers0:6:peers618:".to_vec();
        p6.extend_from_slice(&[
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0xe1,
        ]);
        p6.push(b'e');
        assert_eq!(ok(&p6).peers, vec!["[2001:db8::1]:6881".parse().unwrap()]);

        // Numbers out of range are dropped, not fatal; port 0 peers are skipped.
        let r = ok(b"d8:completei-1e8:intervali9223372036854775807e12:min intervali-5e5:peers6:\x01\x02\x03\x04\x00\x00e");
        assert_eq!(r.interval, Duration::from_secs(i64::MAX as u64));
        assert_eq!((r.complete, r.min_interval), (None, None));
        assert!(r.peers.is_empty());
        assert!(ok(b"d8:intervali0ee").peers.is_empty());

        type Check = fn(&TrackerError) -> bool;
        let bad: &[(&[u8], Check)] = &[
            (b"d14:failure reason9:not founde", |e| {
                *e == TrackerError::Failure("not found".into())
            }),
            (b"d14:failure reason4:nope8:intervali5ee", |e| {
                matches!(e, TrackerError::Failure(_))
            }),
            (b"d14:failure reasoni3ee", |e| {
                matches!(e, TrackerError::Failure(_))
            }),
            (
                b"d8:intervali5e5:peers7:1234567e",
                |e| matches!(e, TrackerError::BadReply(m) if m.contains("multiple of 6")),
            ),
            (
                b"d8:intervali5e6:peers65:12345e",
                |e| matches!(e, TrackerError::BadReply(m) if m.contains("multiple of 18")),
            ),
            (
                b"d5:peers0:e",
                |e| matches!(e, TrackerError::BadReply(m) if m.contains("no interval")),
            ),
            (b"d8:intervali-1ee", |e| {
                matches!(e, TrackerError::BadReply(_))
            }),
            (b"d8:interval2:60e", |e| {
                matches!(e, TrackerError::BadReply(_))
            }),
            (b"d8:intervali5e5:peersi3ee", |e| {
                matches!(e, TrackerError::BadReply(_))
            }),
            (
                b"li1ee",
                |e| matches!(e, TrackerError::BadReply(m) if m.contains("not a dictionary")),
            ),
            (
                b"<html>502 Bad Gateway</html>",
                |e| matches!(e, TrackerError::BadReply(m) if m.contains("<html>")),
            ),
            (b"", |e| matches!(e, TrackerError::BadReply(_))),
            (b"d8:intervali5e5:peers6:12", |e| {
                matches!(e, TrackerError::BadReply(_))
            }),
            (b"d8:intervali5ee trailing", |e| {
                matches!(e, TrackerError::BadReply(_))
            }),
        ];
        for (body, want) in bad {
            match parse_response(body) {
                Err(e) if want(&e) => {}
                other => panic!("{:?}: {:?}", String::from_utf8_lossy(body), other),
            }
        }
    }

    #[test]
    fn parse_response_never_panics_on_mutations() {
        let base = b"d8:completei5e8:intervali60e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x506:peers618:0123456789abcdef\x00\x01e".to_vec();
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = base.clone();
            let pos = (x % m.len() as u64) as usize;
            match (x >> 32) % 3 {
                0 => m[pos] = (x >> 40) as u8,
                1 => m.truncate(pos),
                _ => m.insert(pos, (x >> 48) as u8),
            }
            let _ = parse_response(&m);
        }
    }

    #[test]
    fn errors_display_as_one_clear_line() {
        let e = TrackerError::Failure("torrent not registered".into());
        assert_eq!(e.to_string(), "tracker said: torrent not registered");
        assert!(TrackerError::Io("x".into())
            .to_string()
            .starts_with("tracker unreachable: "));
    }

    /// A scripted HTTP server: one canned reply per connection, in order. The request
    /// targets it saw come back on the channel.
    fn scripted(replies: Vec<Vec<u8>>) -> (String, crossbeam_channel::Receiver<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        thread::spawn(move || {
            for reply in replies {
                let (mut s, _) = l.accept().unwrap();
                let head = read_head(&mut s);
                let _ = tx.send(head);
                if reply == b"HANG" {
                    // Keep the socket open without answering.
                    thread::spawn(move || {
                        thread::sleep(Duration::from_secs(5));
                        drop(s);
                    });
                    continue;
                }
                let _ = s.write_all(&reply);
            }
        });
        (base, rx)
    }

    fn read_head(s: &mut TcpStream) -> String {
        let mut buf = Vec::new();
        let mut b = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
            buf.push(b[0]);
        }
        String::from_utf8_lossy(&buf).into_owned()
    }

    const TIMEOUT: Duration = Duration::from_secs(5);
    const OK_BODY: &[u8] = b"d8:intervali60e5:peers6:\x7f\x00\x00\x01\x1a\xe1e";

    fn http_ok(body: &[u8]) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn http_plain_reply_and_request_format() {
        let (base, seen) = scripted(vec![http_ok(OK_BODY)]);
        let r = announce(&format!("{}/announce", base), &req(), TIMEOUT).unwrap();
        assert_eq!(r.peers, vec![v4([127, 0, 0, 1], 6881)]);
        let head = seen.recv().unwrap();
        let host = base.trim_start_matches("http://");
        assert!(head.starts_with("GET /announce?info_hash=%AB"), "{}", head);
        assert!(head.contains(" HTTP/1.0\r\n"), "{}", head);
        assert!(
            head.contains(&format!("\r\nHost: {}\r\n", host)),
            "{}",
            head
        );
        assert!(
            head.contains("\r\nUser-Agent: tyrant/0.1\r\nConnection: close\r\n\r\n"),
            "{}",
            head
        );
    }

    #[test]
    fn http_reply_without_length_is_read_to_eof() {
        let mut r = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        r.extend_from_slice(OK_BODY);
        let (base, _seen) = scripted(vec![r]);
        assert!(announce(&base, &req(), TIMEOUT).is_ok());
    }

    #[test]
    fn http_chunked_reply() {
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let (a, b) = OK_BODY.split_at(10);
        r.extend_from_slice(format!("{:x};ext=1\r\n", a.len()).as_bytes());
        r.extend_from_slice(a);
        r.extend_from_slice(format!("\r\n{:X}\r\n", b.len()).as_bytes());
        r.extend_from_slice(b);
        r.extend_from_slice(b"\r\n0\r\nX-Trailer: y\r\n\r\n");
        let (base, _seen) = scripted(vec![r]);
        let got = announce(&base, &req(), TIMEOUT).unwrap();
        assert_eq!(got.interval, Duration::from_secs(60));

        let (base, _seen) = scripted(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\nabc".to_vec(),
        ]);
        assert!(matches!(
            announce(&base, &req(), TIMEOUT),
            Err(TrackerError::Io(_))
        ));
    }

    #[test]
    fn http_follows_redirects_but_not_forever() {
        let (base, seen) = scripted(vec![
            b"HTTP/1.0 302 Found\r\nLocation: /second?x=1\r\n\r\n".to_vec(),
            http_ok(OK_BODY),
        ]);
        assert!(announce(&format!("{}/first", base), &req(), TIMEOUT).is_ok());
        assert!(seen.recv().unwrap().starts_with("GET /first?"));
        assert!(seen.recv().unwrap().starts_with("GET /second?x=1 "));

        let hop = |to: &str| {
            format!(
                "HTTP/1.1 301 Moved\r\nlocation: {}\r\nContent-Length: 0\r\n\r\n",
                to
            )
            .into_bytes()
        };
        let (base, _seen) = scripted(vec![
            hop("/a"),
            hop("/b"),
            hop("/c"),
            hop("/d"),
            http_ok(OK_BODY),
        ]);
        match announce(&base, &req(), TIMEOUT) {
            Err(TrackerError::Http(m)) => assert!(m.contains("redirects"), "{}", m),
            other => panic!("{:?}", other),
        }
        let (base, _seen) = scripted(vec![hop("https://secure/announce")]);
        assert!(matches!(
            announce(&base, &req(), TIMEOUT),
            Err(TrackerError::BadUrl(_))
        ));
    }

    #[test]
    fn http_error_status() {
        let (base, _seen) = scripted(vec![
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec(),
        ]);
        match announce(&base, &req(), TIMEOUT) {
            Err(TrackerError::Http(m)) => assert!(m.contains("404 Not Found"), "{}", m),
            other => panic!("{:?}", other),
        }
        let body = b"d14:failure reason12:unregisterede";
        let mut r = format!(
            "HTTP/1.0 400 Bad Request\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        let (base, _seen) = scripted(vec![r, b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()]);
        assert_eq!(
            announce(&base, &req(), TIMEOUT),
            Err(TrackerError::Failure("unregistered".into()))
        );
        assert!(matches!(
            announce(&base, &req(), TIMEOUT),
            Err(TrackerError::Http(_))
        ));
    }

    #[test]
    fn http_server_closing_early() {
        let (base, _seen) = scripted(vec![
            b"".to_vec(),
            b"HTTP/1.0 200 OK\r\nContent-Len".to_vec(),
            b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nd8:interval".to_vec(),
        ]);
        for want in ["without a reply", "headers", "of 100 body bytes"] {
            match announce(&base, &req(), TIMEOUT) {
                Err(TrackerError::Io(m)) => assert!(m.contains(want), "{}", m),
                other => panic!("{:?}", other),
            }
        }
    }

    #[test]
    fn http_silent_server_times_out_within_the_deadline() {
        let (base, _seen) = scripted(vec![b"HANG".to_vec()]);
        let t = Instant::now();
        let got = announce(&base, &req(), Duration::from_millis(300));
        let took = t.elapsed();
        match got {
            Err(TrackerError::Io(m)) => assert!(m.contains("within"), "{}", m),
            other => panic!("{:?}", other),
        }
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "{:?}",
            took
        );
    }

    #[test]
    fn watchdog_alone_enforces_the_deadline() {
        // What the simulator leaves us: no read timeout, only the watchdog's shutdown.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        let t = Instant::now();
        let w = Watchdog::start(&c, t + Duration::from_millis(200));
        let mut b = [0u8; 1];
        let n = c.read(&mut b);
        assert!(matches!(n, Ok(0) | Err(_)));
        assert!(w.fired());
        assert!(t.elapsed() < Duration::from_secs(2));
        // Dropping an unfired watchdog cancels it.
        let w = Watchdog::start(&c, Instant::now() + Duration::from_secs(60));
        drop(w);
    }

    fn closed_port_url() -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap();
        drop(l);
        format!("http://{}/announce", a)
    }

    #[test]
    fn http_connection_refused() {
        match announce(&closed_port_url(), &req(), TIMEOUT) {
            Err(e @ TrackerError::Io(_)) => {
                assert!(e.to_string().starts_with("tracker unreachable"))
            }
            other => panic!("{:?}", other),
        }
    }

    // ---- announcer ----

    fn config(tiers: Vec<Vec<String>>) -> TrackerConfig {
        TrackerConfig {
            tiers,
            info_hash: [7; 20],
            peer_id: *b"-TY0001-announcer001",
            port: 7001,
            ip: Some("127.0.0.9".to_string()),
            numwant: 30,
            timeout: Duration::from_secs(2),
            retry_min: Duration::from_millis(20),
            retry_max: Duration::from_secs(60),
            time_scale: 1.0,
            key: 0x1234,
        }
    }

    /// A tracker that answers every request with `body` and reports each request's target.
    fn recording_tracker(
        body: &'static [u8],
    ) -> (String, crossbeam_channel::Receiver<(Instant, String)>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/announce", l.local_addr().unwrap());
        let (tx, rx) = crossbeam_channel::unbounded();
        thread::spawn(move || {
            for s in l.incoming() {
                let mut s = s.unwrap();
                let head = read_head(&mut s);
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let _ = tx.send((Instant::now(), target));
                let _ = s.write_all(&http_ok(body));
            }
        });
        (url, rx)
    }

    fn param<'a>(target: &'a str, key: &str) -> Option<&'a str> {
        let q = target.split_once('?')?.1;
        q.split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn announcer_event_sequence_and_exit_on_stop() {
        let (url, seen) = recording_tracker(b"d8:intervali1e10:tracker id2:T1e");
        let counters = Arc::new(TransferCounters::default());
        counters.left.store(1000, Ordering::Relaxed);
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let mut cfg = config(vec![vec![url.clone()]]);
        cfg.time_scale = 10.0; // interval 1 s -> 100 ms
        let h = spawn_announcer(cfg, Arc::clone(&counters), ctl_rx, rep_tx);

        let (t0, first) = seen.recv_timeout(TIMEOUT).unwrap();
        assert_eq!(param(&first, "event"), Some("started"));
        assert_eq!(param(&first, "left"), Some("1000"));
        assert_eq!(param(&first, "ip"), Some("127.0.0.9"));
        assert_eq!(param(&first, "key"), Some("00001234"));
        assert_eq!(param(&first, "trackerid"), None);
        let (t1, second) = seen.recv_timeout(TIMEOUT).unwrap();
        assert_eq!(param(&second, "event"), None);
        assert_eq!(param(&second, "trackerid"), Some("T1"));
        let gap = t1 - t0;
        assert!(
            gap >= Duration::from_millis(80) && gap < Duration::from_millis(1000),
            "{:?}",
            gap
        );

        counters.left.store(0, Ordering::Relaxed);
        ctl_tx.send(TrackerCtl::Completed).unwrap();
        let (_, third) = seen.recv_timeout(TIMEOUT).unwrap();
        assert_eq!(param(&third, "event"), Some("completed"));
        assert_eq!(param(&third, "left"), Some("0"));
        let (_, fourth) = seen.recv_timeout(TIMEOUT).unwrap();
        assert_eq!(param(&fourth, "event"), None);

        ctl_tx.send(TrackerCtl::Stop).unwrap();
        h.join().unwrap();
        let stops: Vec<String> = seen
            .try_iter()
            .map(|(_, t)| t)
            .filter(|t| param(t, "event") == Some("stopped"))
            .collect();
        assert_eq!(stops.len(), 1);
        assert_eq!(param(&stops[0], "numwant"), Some("0"));
        let replies: Vec<TrackerReply> = rep_rx.try_iter().collect();
        assert!(replies.len() >= 5);
        assert!(replies.iter().all(|r| r.url == url && r.result.is_ok()));
    }

    #[test]
    fn announcer_want_peers_waits_for_min_interval() {
        let (url, seen) = recording_tracker(b"d8:intervali600e12:min intervali2ee");
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let mut cfg = config(vec![vec![url]]);
        cfg.time_scale = 10.0; // min interval -> 200 ms, interval -> 60 s
        let h = spawn_announcer(cfg, Arc::default(), ctl_rx, rep_tx);
        let (t0, _) = seen.recv_timeout(TIMEOUT).unwrap();
        rep_rx.recv_timeout(TIMEOUT).unwrap();
        ctl_tx.send(TrackerCtl::WantPeers).unwrap();
        let (t1, second) = seen.recv_timeout(TIMEOUT).unwrap();
        assert_eq!(param(&second, "event"), None);
        let gap = t1 - t0;
        assert!(
            gap >= Duration::from_millis(180) && gap < Duration::from_secs(2),
            "{:?}",
            gap
        );
        // Disconnecting the control channel also says goodbye.
        drop(ctl_tx);
        h.join().unwrap();
        let last = seen.try_iter().last().unwrap().1;
        assert_eq!(param(&last, "event"), Some("stopped"));
    }

    #[test]
    fn announcer_walks_tiers_and_promotes_the_tracker_that_answered() {
        let (good, _seen) = recording_tracker(b"d8:intervali1ee");
        let (good2, seen2) = recording_tracker(b"d8:intervali1ee");
        let dead = closed_port_url();
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let mut cfg = config(vec![vec![dead.clone(), good.clone()], vec![good2]]);
        cfg.time_scale = 20.0;
        let h = spawn_announcer(cfg, Arc::default(), ctl_rx, rep_tx);
        let urls: Vec<(String, bool)> = (0..4)
            .map(|_| {
                let r = rep_rx.recv_timeout(TIMEOUT).unwrap();
                (r.url, r.result.is_ok())
            })
            .collect();
        assert_eq!(
            urls,
            vec![
                (dead, false),
                (good.clone(), true),
                (good.clone(), true),
                (good, true)
            ]
        );
        ctl_tx.send(TrackerCtl::Stop).unwrap();
        h.join().unwrap();
        assert!(seen2.try_recv().is_err(), "tier 1 must not be asked");
    }

    #[test]
    fn announcer_backs_off_when_every_tracker_fails() {
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let mut cfg = config(vec![vec![closed_port_url()]]);
        cfg.retry_min = Duration::from_millis(20);
        cfg.retry_max = Duration::from_millis(200);
        let h = spawn_announcer(cfg, Arc::default(), ctl_rx, rep_tx);
        let mut times = Vec::new();
        for _ in 0..6 {
            let r = rep_rx.recv_timeout(TIMEOUT).unwrap();
            assert!(matches!(r.result, Err(TrackerError::Io(_))));
            times.push(Instant::now());
        }
        let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
        // 20, 40, 80, 160, 200 (capped) ms.
        for (g, want) in gaps.iter().zip([20u64, 40, 80, 160, 200]) {
            assert!(*g >= Duration::from_millis(want * 8 / 10), "{:?}", gaps);
        }
        assert!(gaps[3] > gaps[0] * 4, "{:?}", gaps);
        assert!(gaps[4] < Duration::from_millis(400), "capped: {:?}", gaps);
        // Never started, so Stop sends nothing and returns at once.
        ctl_tx.send(TrackerCtl::Stop).unwrap();
        h.join().unwrap();
        assert!(rep_rx.try_recv().is_err());
    }

    #[test]
    fn announcer_reports_failure_reason_and_keeps_sending_started() {
        let (url, seen) = recording_tracker(b"d14:failure reason7:go awaye");
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let h = spawn_announcer(config(vec![vec![url]]), Arc::default(), ctl_rx, rep_tx);
        for _ in 0..3 {
            let r = rep_rx.recv_timeout(TIMEOUT).unwrap();
            assert_eq!(r.result, Err(TrackerError::Failure("go away".into())));
            let (_, t) = seen.recv_timeout(TIMEOUT).unwrap();
            assert_eq!(param(&t, "event"), Some("started"));
        }
        ctl_tx.send(TrackerCtl::Stop).unwrap();
        h.join().unwrap();
    }

    #[test]
    fn announcer_exits_when_nobody_reads_replies() {
        let (url, _seen) = recording_tracker(b"d8:intervali1ee");
        let (_ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        drop(rep_rx);
        let h = spawn_announcer(config(vec![vec![url]]), Arc::default(), ctl_rx, rep_tx);
        h.join().unwrap();
    }

    #[test]
    fn announcer_against_the_real_tracker() {
        let mut scfg = trackerd::ServerConfig::new("127.0.0.1:0".parse().unwrap());
        scfg.interval = 1;
        scfg.min_interval = 1;
        let (addr, _server) = trackerd::spawn(scfg).unwrap();
        let url = format!("http://{}/announce", addr);
        // Another peer already in the swarm.
        let mut other = req();
        other.info_hash = [7; 20];
        other.event = AnnounceEvent::Started;
        other.ip = Some("127.0.0.2".into());
        announce(&url, &other, TIMEOUT).unwrap();

        let counters = Arc::new(TransferCounters::default());
        counters.left.store(500, Ordering::Relaxed);
        let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
        let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
        let mut cfg = config(vec![vec![url.clone()]]);
        cfg.time_scale = 10.0;
        let h = spawn_announcer(cfg, Arc::clone(&counters), ctl_rx, rep_tx);
        let t0 = Instant::now();
        for _ in 0..3 {
            let r = rep_rx.recv_timeout(TIMEOUT).unwrap().result.unwrap();
            assert_eq!(r.peers, vec![v4([127, 0, 0, 2], 6881)]);
            assert_eq!((r.complete, r.incomplete), (Some(0), Some(2)));
        }
        assert!(
            t0.elapsed() >= Duration::from_millis(180),
            "periodic, not back to back"
        );

        counters.left.store(0, Ordering::Relaxed);
        ctl_tx.send(TrackerCtl::Completed).unwrap();
        let r = rep_rx.recv_timeout(TIMEOUT).unwrap().result.unwrap();
        assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
        let scrape = scrape_counts(addr, &[7; 20]);
        assert_eq!(scrape, (1, 1, 1));

        ctl_tx.send(TrackerCtl::Stop).unwrap();
        h.join().unwrap();
        assert!(rep_rx.try_iter().all(|r| r.result.is_ok()));
        assert_eq!(
            scrape_counts(addr, &[7; 20]),
            (0, 1, 1),
            "stopped removed us"
        );
    }

    fn scrape_counts(addr: SocketAddr, h: &[u8; 20]) -> (i64, i64, i64) {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /scrape?info_hash={} HTTP/1.0\r\n\r\n",
            percent_encode(h)
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let reply = parse_http_reply(&raw).unwrap();
        let v = bencode::decode(&reply.body).unwrap();
        let files: &Dict = v.as_dict().unwrap().dict("files").unwrap();
        let f = files.map.get(&h[..]).unwrap().as_dict().unwrap();
        (
            f.int("complete").unwrap(),
            f.int("incomplete").unwrap(),
            f.int("downloaded").unwrap(),
        )
    }
}
