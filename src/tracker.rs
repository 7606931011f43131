//! Tracker client: one HTTP/1.0 announce (BEP 3) with compact peer lists (BEP 23) and IPv6
//! `peers6` (BEP 7): the request, its URL and the reply. The HTTP exchange itself (deadline,
//! redirects, size bounds) is `crate::http`; `udp://` trackers (BEP 15) are
//! `tracker/udp.rs`; the thread that announces on schedule over the announce-list tiers
//! (BEP 12, `http://` and `udp://` mixed) is `tracker/announcer.rs`.

use crate::bencode::{self, Value};
use crate::http::{self, parse_http_url};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// The discriminants are BEP 15's event numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnnounceEvent {
    #[default]
    None = 0,
    Completed = 1,
    Started = 2,
    Stopped = 3,
}

/// BEP 3's `event=` words by BEP 15 number ("": no parameter), for client and server.
pub(crate) const EVENT_WORDS: [&str; 4] = ["", "completed", "started", "stopped"];

#[derive(Debug, Clone, Default)]
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

#[derive(Debug, Clone, PartialEq, Default)]
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
    /// The server answered, but not with a usable HTTP reply.
    Http(String),
    /// Resolve, connect, read or write failed, the deadline passed, or the server hung up
    /// before a complete reply.
    Io(String),
    BadReply(String),
    /// A URL (given, or from a `Location` header) that this client cannot fetch.
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
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    bytes
        .iter()
        .map(|&b| if keep(b) { (b as char).to_string() } else { format!("%{:02X}", b) })
        .collect()
}

/// The full announce URL for `req`. A base that already has a query (private-tracker
/// passkeys) gets our parameters appended with `&`.
pub fn announce_url(base: &str, req: &AnnounceRequest) -> Result<String, TrackerError> {
    parse_http_url(base)?;
    // A fragment would swallow our query if we appended after it.
    let mut url = base.split_once('#').map_or(base, |(b, _)| b).to_string();
    if !url.contains('?') {
        url.push('?');
    } else if !url.ends_with('?') && !url.ends_with('&') {
        url.push('&');
    }
    url.push_str(&format!("info_hash={}", percent_encode(&req.info_hash)));
    url.push_str(&format!("&peer_id={}", percent_encode(&req.peer_id)));
    url.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1&numwant={}",
        req.port, req.uploaded, req.downloaded, req.left, req.numwant
    ));
    if req.event != AnnounceEvent::None {
        url.push_str(&format!("&event={}", EVENT_WORDS[req.event as usize]));
    }
    if let Some(ip) = &req.ip {
        url.push_str(&format!("&ip={}", percent_encode(ip.as_bytes())));
    }
    if let Some(key) = req.key {
        // Hex, as libtorrent and mainline send it.
        url.push_str(&format!("&key={:08x}", key));
    }
    if let Some(id) = &req.tracker_id {
        url.push_str(&format!("&trackerid={}", percent_encode(id)));
    }
    Ok(url)
}

/// Parse a bencoded announce reply. Never panics; a `failure reason` wins over everything
/// else, and a reply without one must carry `interval`.
pub fn parse_response(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let v = bencode::decode(body).map_err(|e| {
        TrackerError::BadReply(format!("not bencode ({}), starts {}", e, preview(body)))
    })?;
    let bad = |why: &str| TrackerError::BadReply(why.to_string());
    let d = v.as_dict().ok_or_else(|| bad("reply is not a dictionary"))?;
    if d.get("failure reason").is_some() {
        let why = d.str_lossy("failure reason");
        let why = why.unwrap_or_else(|| "(failure reason that is not a string)".to_string());
        return Err(TrackerError::Failure(why));
    }
    let interval = match d.int("interval") {
        Some(n) if n >= 0 => Duration::from_secs(n as u64),
        Some(n) => return Err(TrackerError::BadReply(format!("negative interval {}", n))),
        None => return Err(bad("no interval")),
    };
    // Optional counters: a negative value is a tracker bug, not a reason to drop the peers.
    let non_negative = |key: &str| d.int(key).filter(|n| *n >= 0).map(|n| n as u64);
    let mut peers = match d.get("peers") {
        None => Vec::new(),
        Some(Value::Bytes(b)) => compact_peers(b, 6, "peers")?,
        Some(Value::List(l)) => dict_peers(l),
        Some(_) => return Err(bad("peers is neither a string nor a list")),
    };
    match d.get("peers6") {
        None => {}
        Some(Value::Bytes(b)) => peers.extend(compact_peers(b, 18, "peers6")?),
        Some(_) => return Err(bad("peers6 is not a string")),
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
        let why = format!("{} is {} bytes, not a multiple of {}", key, b.len(), width);
        return Err(TrackerError::BadReply(why));
    }
    let mut out = Vec::with_capacity(b.len() / width);
    for c in b.chunks_exact(width) {
        let (ip, port) = c.split_at(width - 2);
        let v4 = <[u8; 4]>::try_from(ip).map(IpAddr::from);
        let ip = v4.or_else(|_| <[u8; 16]>::try_from(ip).map(IpAddr::from));
        // Port 0 cannot be connected to; dropping it beats failing the whole reply.
        if let (Ok(ip), port @ 1..=u16::MAX) = (ip, u16::from_be_bytes([port[0], port[1]])) {
            out.push(SocketAddr::new(ip, port));
        }
    }
    Ok(out)
}

/// BEP 3's original list of `{peer id, ip, port}` dicts. Bad entries are skipped: one odd
/// peer should not cost us the others.
fn dict_peers(list: &[Value]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for d in list.iter().filter_map(Value::as_dict) {
        let ip = d.str_lossy("ip").and_then(|s| s.parse::<IpAddr>().ok());
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
    let reply = http::get(&announce_url(base, req)?, timeout)?;
    match parse_response(&reply.body) {
        parsed if reply.status == 200 => parsed,
        // Some trackers send their failure reason with an error status.
        parsed @ Err(TrackerError::Failure(_)) => parsed,
        _ => Err(TrackerError::Http(format!("status {} {}", reply.status, reply.reason))),
    }
}

mod announcer;
pub(crate) mod udp;
pub use self::announcer::{
    spawn_announcer, TrackerConfig, TrackerCtl, TrackerReply, TransferCounters,
};
pub use self::udp::UdpClient;

#[cfg(test)]
mod tests;
