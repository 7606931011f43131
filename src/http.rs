//! Minimal blocking HTTP/1.0 client (RFC 1945 requests, RFC 7230 replies): exactly what a
//! BEP 3 tracker announce needs and nothing more. One `GET` per connection with
//! `Connection: close`; `http://` URLs only (no TLS, no userinfo); status line and headers,
//! `Content-Length` or read-to-EOF bodies, up to 3 redirects, and hard bounds on header and
//! body size. No `Transfer-Encoding: chunked`: a server must not send it in reply to an
//! HTTP/1.0 request (RFC 7230 §3.3.1).
//!
//! The whole exchange (resolve, connect, request, reply, redirects) runs against one deadline.
//! Deadlines are enforced with a watchdog that shuts the socket down, not only with
//! `SO_RCVTIMEO`: the network simulator the experiments use does not implement it.
//!
//! The tracker client is the only caller, so errors are its `TrackerError`s (`Io`, `Http`,
//! `BadUrl`), and log lines and the watchdog thread name say "tracker".

use crate::tracker::TrackerError;
use crossbeam_channel::{RecvTimeoutError, Sender};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

/// Largest reply body accepted; a 4 MiB compact list is ~700k peers, far beyond any swarm.
pub const MAX_BODY: usize = 4 << 20;
/// Status line plus headers; anything longer is not a tracker talking.
const MAX_HEAD: usize = 64 << 10;
const MAX_REDIRECTS: usize = 3;
/// Stand-in for a timeout so large that `now + timeout` overflows `Instant`.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// `GET url`, following up to 3 redirects, all within `timeout`. Returns the first reply
/// that is not a redirect, whatever its status: the caller decides what a 4xx body means.
pub fn get(url: &str, timeout: Duration) -> Result<HttpReply, TrackerError> {
    let start = Instant::now();
    let deadline = start.checked_add(timeout).unwrap_or_else(|| start + MAX_TIMEOUT);
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let u = parse_http_url(&url)?;
        let reply = http_get(&u, deadline, timeout)?;
        if !matches!(reply.status, 301 | 302 | 303 | 307 | 308) {
            return Ok(reply);
        }
        let loc = reply.location.ok_or_else(|| {
            TrackerError::Http(format!("redirect {} without Location", reply.status))
        })?;
        url = if loc.starts_with('/') { format!("http://{}{}", u.authority, loc) } else { loc };
        log::debug!("tracker redirected to {}", url);
    }
    Err(TrackerError::Http(format!("more than {} redirects", MAX_REDIRECTS)))
}

/// The parts of an `http://` URL needed to send one request.
#[derive(Debug, PartialEq)]
pub(crate) struct HttpUrl {
    host: String,
    port: u16,
    /// Authority as written, for the `Host:` header and relative redirects.
    authority: String,
    /// `/path?query`
    target: String,
}

/// Split an `http://` URL into what `http_get` needs; anything else is `BadUrl` naming `url`.
pub(crate) fn parse_http_url(url: &str) -> Result<HttpUrl, TrackerError> {
    let bad = |why: &str| TrackerError::BadUrl(format!("{}: {}", url, why));
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(bad("https trackers are not supported (no TLS); use an http:// announce URL"));
    }
    if !lower.starts_with("http://") {
        return Err(bad("only http:// tracker URLs are supported"));
    }
    let rest = &url["http://".len()..];
    let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
    let (authority, target) = match rest.find(&['/', '?'][..]) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') {
        return Err(bad("user:password@ in tracker URLs is not supported"));
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("spaces or control characters in the path"));
    }
    let (host, port) = host_port(authority, Some(80)).map_err(bad)?;
    Ok(HttpUrl { host: host.to_string(), port, authority: authority.to_string(), target })
}

/// `host[:port]` or `[v6][:port]`, as in the authority of an `http://` or `udp://` tracker
/// URL; `default` stands in for a missing port (`None`: the port is required).
pub(crate) fn host_port(authority: &str, default: Option<u16>) -> Result<(&str, u16), &str> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, p)) => (h, Some(p.strip_prefix(':').ok_or("junk after the IPv6 address")?)),
            None => return Err("unclosed '[' in host"),
        },
        None => authority.split_once(':').map_or((authority, None), |(h, p)| (h, Some(p))),
    };
    if host.is_empty() {
        return Err("no host");
    }
    match port.map(str::parse::<u16>) {
        None => default.map(|p| (host, p)).ok_or("no port"),
        Some(Ok(n)) if n != 0 => Ok((host, n)),
        _ => Err("bad port"),
    }
}

/// One reply, body cut to its `Content-Length`.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub reason: String,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

fn remaining(deadline: Instant, timeout: Duration) -> Result<Duration, TrackerError> {
    let left = deadline.saturating_duration_since(Instant::now());
    Some(left).filter(|l| !l.is_zero()).ok_or_else(|| timed_out(timeout))
}

fn timed_out(timeout: Duration) -> TrackerError {
    TrackerError::Io(format!("no complete reply within {:?}", timeout))
}

fn connect(u: &HttpUrl, deadline: Instant, timeout: Duration) -> Result<TcpStream, TrackerError> {
    let addrs = (u.host.as_str(), u.port)
        .to_socket_addrs()
        .map_err(|e| TrackerError::Io(format!("cannot resolve {}: {}", u.host, e)))?;
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
/// read timeouts are unsupported. Dropping the returned guard cancels it.
fn watchdog(stream: &TcpStream, deadline: Instant) -> Sender<()> {
    let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
    let spawned = stream.try_clone().and_then(|s| {
        thread::Builder::new().name("tracker-deadline".to_string()).spawn(move || {
            let wait = deadline.saturating_duration_since(Instant::now());
            if let Err(RecvTimeoutError::Timeout) = cancelled.recv_timeout(wait) {
                let _ = s.shutdown(Shutdown::Both);
            }
        })
    });
    if let Err(e) = spawned {
        log::debug!("no tracker deadline ({}); relying on read timeout", e);
    }
    cancel
}

fn http_get(u: &HttpUrl, deadline: Instant, timeout: Duration) -> Result<HttpReply, TrackerError> {
    let mut stream = connect(u, deadline, timeout)?;
    // Best effort: fails with ENOPROTOOPT under the simulator, where the watchdog does the job.
    let _ = stream.set_write_timeout(Some(remaining(deadline, timeout)?));
    let _watchdog = watchdog(&stream, deadline);
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: tyrant/0.1\r\nConnection: close\r\n\r\n",
        u.target, u.authority
    );
    let io_err = |e: io::Error| match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => timed_out(timeout),
        _ => TrackerError::Io(format!("{}: {}", u.authority, e)),
    };
    let raw = stream
        .write_all(request.as_bytes())
        .and_then(|_| read_until(&mut stream, deadline, MAX_HEAD + MAX_BODY, body_done))
        .map_err(io_err);
    // A shutdown by the watchdog looks like EOF, which would pass for a complete reply.
    if Instant::now() >= deadline {
        return Err(timed_out(timeout));
    }
    parse_http_reply(&raw?)
}

/// Read until `done` says the message is complete or the other side hangs up, whichever
/// comes first; an error past `max` bytes or the deadline. The tracker server reads its
/// requests with this too.
pub(crate) fn read_until(
    stream: &mut TcpStream,
    deadline: Instant,
    max: usize,
    done: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(ErrorKind::TimedOut, "deadline passed"));
        }
        // Best effort (the simulator refuses it); the deadline check above still holds for
        // every byte that does arrive.
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(buf),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if done(&buf) {
            return Ok(buf);
        }
        if buf.len() > max {
            return Err(io::Error::new(ErrorKind::InvalidData, format!("over {} bytes", max)));
        }
    }
}

/// A server that keeps the connection open despite `Connection: close` is done once the
/// declared body has arrived.
fn body_done(buf: &[u8]) -> bool {
    split_head(buf).map_or(false, |(head_len, head)| {
        content_length(head).map_or(false, |len| buf.len() - head_len >= len)
    })
}

/// The length of the status line and headers up to and including the blank line (CRLF or
/// bare LF line ends), and those bytes.
pub(crate) fn split_head(buf: &[u8]) -> Option<(usize, &[u8])> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = crlf.into_iter().chain(lf).min()?;
    Some((end, &buf[..end]))
}

/// The value of the first header `name` (lower case) in `head`.
fn header(head: &[u8], name: &str) -> Option<String> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let line = String::from_utf8_lossy(line);
        let (k, v) = line.split_once(':')?;
        Some(v.trim().to_string()).filter(|_| k.trim().eq_ignore_ascii_case(name))
    })
}

fn content_length(head: &[u8]) -> Option<usize> {
    header(head, "content-length").and_then(|v| v.parse().ok())
}

pub(crate) fn parse_http_reply(raw: &[u8]) -> Result<HttpReply, TrackerError> {
    if raw.is_empty() {
        return Err(TrackerError::Io("connection closed without a reply".to_string()));
    }
    let (head_len, head) = split_head(raw).ok_or_else(|| {
        TrackerError::Io("connection closed in the middle of the reply headers".to_string())
    })?;
    if head_len > MAX_HEAD {
        return Err(TrackerError::Http("reply headers too long".to_string()));
    }
    let status_line =
        String::from_utf8_lossy(head.split(|&b| b == b'\n').next().unwrap_or_default());
    let status_line = status_line.trim_end();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse::<u16>().ok());
    let status = status.filter(|s| version.starts_with("HTTP/1.") && (100..=999).contains(s));
    let bad = || TrackerError::Http(format!("not an HTTP/1.x status line: {status_line:?}"));
    let status = status.ok_or_else(bad)?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut body = &raw[head_len..];
    if let Some(len) = content_length(head) {
        if body.len() < len {
            let why = format!("connection closed after {} of {len} body bytes", body.len());
            return Err(TrackerError::Io(why));
        }
        body = &body[..len];
    }
    if body.len() > MAX_BODY {
        return Err(TrackerError::Http("reply body larger than 4 MiB".to_string()));
    }
    Ok(HttpReply { status, reason, location: header(head, "location"), body: body.to_vec() })
}

#[cfg(test)]
mod tests;
