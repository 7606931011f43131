//! The tracker's HTTP front end (BEP 3): one thread per connection, bounded in number and
//! in time, reading one `GET /announce` or `GET /scrape` and answering with a bencoded
//! dictionary. Peer lists are always compact (BEP 23, IPv6 peers in `peers6` per BEP 7),
//! whatever `compact=` says: every client in use reads them.

use super::{compact, unmap, Announce, Server};
use crate::bencode::{self, Dict, Value};
use crate::conn::accept_each;
use crate::http::{read_until, split_head};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Longest request we read: a libtorrent announce is ~400 bytes.
const MAX_REQUEST: usize = 8 * 1024;
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once (each costs a thread). At the cap, a new connection
/// replaces the oldest: an honest announce takes milliseconds, so whoever has held a slot
/// longest is the likeliest to be a slowloris, and new clients are never locked out.
const MAX_CONNECTIONS: usize = 512;
/// The whole request must arrive within this, however slowly it trickles.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The lingering close (below) ends after this, however slowly the client trickles.
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// The open connections by arrival (ids only grow, so the first is the oldest), each with
/// a handle to shut it down.
#[derive(Default)]
pub(super) struct Open {
    next: u64,
    conns: BTreeMap<u64, TcpStream>,
}

pub(super) fn accept_loop(listener: TcpListener, server: Arc<Server>) {
    accept_each(listener, "tracker: ", |stream| {
        if let Some(id) = server.admit(&stream) {
            let s = Arc::clone(&server);
            let spawned = thread::Builder::new().spawn(move || {
                s.serve(stream);
                s.lock_open().conns.remove(&id);
            });
            if let Err(e) = spawned {
                server.lock_open().conns.remove(&id);
                log::warn!("tracker: cannot start a connection thread: {}", e);
            }
        }
        true
    })
}

/// Why a request got no regular answer.
enum BadRequest {
    /// Nothing usable arrived (closed, timed out): just hang up.
    Silent,
    /// Tell the client, as a bencoded failure reason with this HTTP status.
    Tell(u16, String),
}

impl Server {
    fn lock_open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Register a new connection, shutting the oldest one down if we are at the cap.
    fn admit(&self, stream: &TcpStream) -> Option<u64> {
        let handle = stream.try_clone().ok()?;
        let mut open = self.lock_open();
        if open.conns.len() >= MAX_CONNECTIONS {
            let oldest = open.conns.keys().next().copied();
            if let Some(old) = oldest.and_then(|id| open.conns.remove(&id)) {
                log::debug!("tracker: {} connections open, dropping the oldest", MAX_CONNECTIONS);
                let _ = old.shutdown(Shutdown::Both);
            }
        }
        let id = open.next;
        open.next += 1;
        open.conns.insert(id, handle);
        Some(id)
    }

    fn serve(&self, mut stream: TcpStream) {
        let src = match stream.peer_addr() {
            Ok(a) => a,
            Err(_) => return,
        };
        // Best effort: unsupported under the network simulator.
        let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
        let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
        let (status, body) = match read_request(&mut stream).and_then(|t| self.handle(&t, src)) {
            Ok(body) => (200, body),
            Err(BadRequest::Silent) => return,
            Err(BadRequest::Tell(status, msg)) => {
                log::debug!("tracker: bad request from {}: {}", src, msg);
                let reply = Dict::new().with("failure reason", Value::str(&msg));
                (status, bencode::encode(&Value::Dict(reply)))
            }
        };
        let reasons = [(200, "OK"), (404, "Not Found")];
        let reason = reasons.iter().find(|r| r.0 == status).map_or("Bad Request", |r| r.1);
        let head = format!(
            "HTTP/1.0 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let sent =
            stream.write_all(&[head.as_bytes(), &body].concat()).and_then(|_| stream.flush());
        if let Err(e) = sent {
            log::debug!("tracker: reply to {} failed: {}", src, e);
            return;
        }
        // Lingering close: closing with unread request bytes (an oversized request) makes
        // the kernel send RST, which can destroy the reply before the client reads it. So
        // signal EOF and wait for the client to hang up first.
        let _ = stream.shutdown(Shutdown::Write);
        let until = Instant::now() + CLOSE_DEADLINE;
        if stream.set_read_timeout(Some(CLOSE_DEADLINE)).is_ok() {
            let _ = read_until(&mut stream, until, 16 * MAX_REQUEST, |_| false);
        }
    }

    /// Route `target` (`/path?query`); the body of a 200 reply or why not.
    fn handle(&self, target: &str, src: SocketAddr) -> Result<Vec<u8>, BadRequest> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let q = Query::parse(query);
        if path == "/announce" || path.ends_with("/announce") {
            self.http_announce(&q, src.ip())
        } else if path == "/scrape" || path.ends_with("/scrape") {
            self.http_scrape(&q)
        } else {
            Err(BadRequest::Tell(404, format!("unknown path {}", path)))
        }
    }

    fn http_announce(&self, q: &Query, src: IpAddr) -> Result<Vec<u8>, BadRequest> {
        let port = q.text("port")?.and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0);
        let port = port.ok_or_else(|| tell("missing or bad port"))?;
        let ip = q.text("ip")?.and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or(src);
        let a = Announce {
            info_hash: q.id20("info_hash")?,
            peer_id: q.id20("peer_id")?,
            addr: SocketAddr::new(unmap(ip), port),
            // Lenient: a missing or odd `left` just means "not known to be a seeder".
            seed: q.text("left")?.and_then(|l| l.parse::<u64>().ok()) == Some(0),
            event: q.text("event")?.unwrap_or_default(),
            numwant: q.text("numwant")?.and_then(|n| n.parse::<usize>().ok()),
        };
        let answer = self.announce(&a);
        let v6 = compact(answer.peers.iter().filter(|a| a.is_ipv6()));
        let mut reply = Dict::new()
            .with("interval", Value::Int(i64::from(self.cfg.interval)))
            .with("min interval", Value::Int(i64::from(self.cfg.min_interval)))
            .with("complete", Value::Int(answer.complete as i64))
            .with("incomplete", Value::Int(answer.incomplete as i64))
            .with("peers", Value::Bytes(compact(answer.peers.iter().filter(|a| a.is_ipv4()))));
        if !v6.is_empty() {
            reply.insert("peers6", Value::Bytes(v6));
        }
        Ok(bencode::encode(&Value::Dict(reply)))
    }

    /// The standard scrape reply: `files` maps each info hash to its counts. No
    /// `info_hash` parameter means every swarm.
    fn http_scrape(&self, q: &Query) -> Result<Vec<u8>, BadRequest> {
        let wanted =
            q.all("info_hash").map(|v| id20("info_hash", v)).collect::<Result<Vec<_>, _>>()?;
        let mut files = Dict::new();
        for (h, complete, downloaded, incomplete) in self.scrape(&wanted) {
            let entry = Dict::new()
                .with("complete", Value::Int(complete as i64))
                .with("downloaded", Value::Int(downloaded as i64))
                .with("incomplete", Value::Int(incomplete as i64));
            files.map.insert(h.to_vec(), Value::Dict(entry));
        }
        Ok(bencode::encode(&Value::Dict(Dict::new().with("files", Value::Dict(files)))))
    }
}

fn tell(msg: &str) -> BadRequest {
    BadRequest::Tell(200, msg.to_string())
}

/// Read the request head and return its target. We read up to the blank line, not just
/// the request line: closing with unread bytes makes the kernel send RST, which can
/// destroy our reply before the client reads it.
fn read_request(stream: &mut TcpStream) -> Result<String, BadRequest> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let buf = read_until(stream, deadline, MAX_REQUEST, |b| split_head(b).is_some()).map_err(
        |e| match e.kind() {
            ErrorKind::InvalidData => BadRequest::Tell(400, "request too large".to_string()),
            // Nothing usable arrived (closed, timed out).
            _ => BadRequest::Silent,
        },
    )?;
    let head_end = split_head(&buf).ok_or(BadRequest::Silent)?.0;
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(v)) if v.starts_with("HTTP/") => Ok(target.to_string()),
        _ => Err(BadRequest::Tell(
            400,
            format!("not an HTTP GET request: {:?}", line.chars().take(64).collect::<String>()),
        )),
    }
}

/// Raw `key=value` pairs in order; values are decoded only when asked for, so an odd
/// unknown parameter can never fail a request.
struct Query<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Query<'a> {
    fn parse(query: &'a str) -> Query<'a> {
        let pairs = query.split('&').filter(|p| !p.is_empty());
        Query(pairs.map(|p| p.split_once('=').unwrap_or((p, ""))).collect())
    }

    /// Every value of `key`, in order; the first wins where only one is read.
    fn all<'k>(&'k self, key: &'k str) -> impl Iterator<Item = &'a str> + 'k {
        self.0.iter().filter(move |(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn text(&self, key: &str) -> Result<Option<String>, BadRequest> {
        let text = |v| decoded(key, v).map(|b| String::from_utf8_lossy(&b).into_owned());
        self.all(key).next().map(text).transpose()
    }

    fn id20(&self, key: &str) -> Result<[u8; 20], BadRequest> {
        id20(key, self.all(key).next().ok_or_else(|| tell(&format!("missing {}", key)))?)
    }
}

/// The value `v` of parameter `key`, percent-decoded.
fn decoded(key: &str, v: &str) -> Result<Vec<u8>, BadRequest> {
    percent_decode(v).ok_or_else(|| tell(&format!("malformed percent-encoding in {}", key)))
}

/// An info hash or peer id: 20 bytes once decoded.
fn id20(key: &str, v: &str) -> Result<[u8; 20], BadRequest> {
    let b = decoded(key, v)?;
    b[..].try_into().map_err(|_| tell(&format!("{} must be 20 bytes, got {}", key, b.len())))
}

/// `%XX` only. BitTorrent clients send binary as `%XX` and a literal `+` as `%2B`, so a
/// raw `+` is kept as `+`, not read as a space.
pub(super) fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}
