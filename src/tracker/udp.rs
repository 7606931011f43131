//! UDP tracker client (BEP 15): a `connect` exchange buys a connection id, which then
//! prefixes `announce` requests for a minute. Every request carries a random transaction id
//! and is retransmitted after 15·2ⁿ s (n = 0, 1, ...; divided by `--time-scale`) until a
//! reply with that id arrives. Replies list peers in the compact form of the tracker's
//! address family: 6 bytes each over IPv4, 18 over IPv6.
//!
//! BEP 15 retransmits up to n = 8, over an hour. One announce here stops after `TRIES`
//! transmissions per exchange and counts as failed, so a dead `udp://` tracker costs 45 s
//! (scaled) before the next tracker of the tier order is asked; the announcer's back-off
//! (15 s doubling to 30 min) then plays the role of the long schedule.

use super::{compact_peers, AnnounceRequest, AnnounceResponse, TrackerError};
use crate::http::host_port;
pub(crate) use crate::peer::be32;
use crate::rng::Rng;
use std::collections::hash_map::{Entry, HashMap};
use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

pub(crate) const PROTOCOL_ID: u64 = 0x417_2710_1980;
pub(crate) const CONNECT: u32 = 0;
pub(crate) const ANNOUNCE: u32 = 1;
pub(crate) const SCRAPE: u32 = 2;
pub(crate) const ERROR: u32 = 3;
/// BEP 15: a client may use a connection id for one minute after receiving it. Tracker time,
/// so never scaled.
const CONN_ID_LIFETIME: Duration = Duration::from_secs(60);
const FIRST_WAIT_SECS: f64 = 15.0;
/// Transmissions per exchange: 15 s, then 30 s (scaled).
const TRIES: u32 = 2;
/// The largest datagram; a reply with 200 IPv6 peers is 3,620 bytes.
const MAX_DATAGRAM: usize = 65_536;

/// The state BEP 15 asks a client to keep between announces: connection ids per tracker
/// address, and where transaction ids come from (seeded: a run repeats exactly).
pub struct UdpClient {
    /// A tracker ties a connection id to the address it was sent to, so each tracker keeps
    /// its socket (and so its local port) with the id.
    conns: HashMap<SocketAddr, (UdpSocket, Option<(u64, Instant)>)>,
    rng: Rng,
    time_scale: f64,
}

impl UdpClient {
    pub fn new(seed: u64, time_scale: f64) -> UdpClient {
        let time_scale = if time_scale.is_finite() && time_scale > 0.0 { time_scale } else { 1.0 };
        UdpClient { conns: HashMap::new(), rng: Rng::new(seed), time_scale }
    }

    /// One announce to a `udp://host:port[/path]` tracker. Any failure forgets the
    /// connection id: the tracker may have dropped it, and a fresh one costs one round trip.
    /// `limit` bounds the whole announce (a `stopped` on the way out must not take 45 s).
    pub fn announce(
        &mut self,
        url: &str,
        req: &AnnounceRequest,
        limit: Duration,
    ) -> Result<AnnounceResponse, TrackerError> {
        let addr = resolve(url)?;
        let deadline = Instant::now() + limit.min(Duration::from_secs(3600));
        let result = self.announce_to(addr, req, deadline);
        if result.is_err() {
            self.conns.remove(&addr);
        }
        result
    }

    fn announce_to(
        &mut self,
        addr: SocketAddr,
        req: &AnnounceRequest,
        deadline: Instant,
    ) -> Result<AnnounceResponse, TrackerError> {
        let (sock, id) = match self.conns.entry(addr) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let local: SocketAddr =
                    if addr.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let sock = UdpSocket::bind(local).map_err(io)?;
                // Connected: the kernel drops datagrams from anyone else, and an ICMP "port
                // unreachable" fails the next receive at once instead of after the whole wait.
                sock.connect(addr).map_err(io)?;
                e.insert((sock, None))
            }
        };
        let (sock, id) = (sock.try_clone().map_err(io)?, *id);
        let conn = match id {
            Some((id, at)) if at.elapsed() < CONN_ID_LIFETIME => id,
            _ => {
                let p = [&PROTOCOL_ID.to_be_bytes()[..], &CONNECT.to_be_bytes()].concat();
                let reply = self.exchange(&sock, p, CONNECT, deadline)?;
                let conn = be64(reply.get(8..16).ok_or_else(|| short("connect", &reply))?);
                if let Some(c) = self.conns.get_mut(&addr) {
                    c.1 = Some((conn, Instant::now()));
                }
                conn
            }
        };
        let reply = self.exchange(&sock, announce_packet(conn, req), ANNOUNCE, deadline)?;
        if reply.len() < 20 {
            return Err(short("announce", &reply));
        }
        let width = if addr.is_ipv4() { 6 } else { 18 };
        Ok(AnnounceResponse {
            interval: Duration::from_secs(u64::from(be32(&reply[8..12]))),
            peers: compact_peers(&reply[20..], width, "peers")?,
            complete: Some(u64::from(be32(&reply[16..20]))),
            incomplete: Some(u64::from(be32(&reply[12..16]))),
            ..AnnounceResponse::default()
        })
    }

    /// Send `packet` (everything but the transaction id, which goes at bytes 12..16) until a
    /// reply to it arrives; returns the reply from its transaction id on. Replies with
    /// another transaction id or action are dropped: a late answer to an earlier request.
    fn exchange(
        &mut self,
        sock: &UdpSocket,
        mut packet: Vec<u8>,
        action: u32,
        deadline: Instant,
    ) -> Result<Vec<u8>, TrackerError> {
        let tx = self.rng.next_u64() as u32;
        packet.splice(12..12, tx.to_be_bytes());
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut sent = 0;
        for n in 0..TRIES {
            if Instant::now() >= deadline {
                break;
            }
            sock.send(&packet).map_err(io)?;
            sent += 1;
            let wait = FIRST_WAIT_SECS * f64::from(1u32 << n) / self.time_scale;
            let until = deadline.min(Instant::now() + Duration::from_secs_f64(wait.max(0.01)));
            loop {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                sock.set_read_timeout(Some(left)).map_err(|e| {
                    TrackerError::Io(format!("UDP trackers need socket timeouts: {}", e))
                })?;
                let len = match sock.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => break,
                    Err(e) if e.kind() == Interrupted => continue,
                    Err(e) => return Err(io(e)),
                };
                let r = &buf[..len];
                if len < 8 || be32(&r[4..8]) != tx {
                    log::debug!("UDP tracker: dropped a {}-byte datagram (not ours)", len);
                } else if be32(&r[..4]) == ERROR {
                    let msg = String::from_utf8_lossy(&r[8..]).into_owned();
                    return Err(TrackerError::Failure(msg));
                } else if be32(&r[..4]) != action {
                    log::debug!("UDP tracker: dropped a reply with action {}", be32(&r[..4]));
                } else {
                    return Ok(r.to_vec());
                }
            }
        }
        Err(TrackerError::Io(format!("no reply to {} transmissions", sent)))
    }
}

/// BEP 15's 98-byte announce, without the transaction id (`exchange` inserts it).
fn announce_packet(conn: u64, r: &AnnounceRequest) -> Vec<u8> {
    // Only an IPv4 `--announce-ip` fits the field; 0 means "the source address".
    let ip =
        r.ip.as_deref().and_then(|s| s.parse::<Ipv4Addr>().ok()).unwrap_or(Ipv4Addr::UNSPECIFIED);
    let mut p = Vec::with_capacity(98);
    p.extend_from_slice(&conn.to_be_bytes());
    p.extend_from_slice(&ANNOUNCE.to_be_bytes());
    p.extend_from_slice(&r.info_hash);
    p.extend_from_slice(&r.peer_id);
    for n in [r.downloaded, r.left, r.uploaded] {
        p.extend_from_slice(&n.to_be_bytes());
    }
    p.extend_from_slice(&(r.event as u32).to_be_bytes());
    p.extend_from_slice(&ip.octets());
    p.extend_from_slice(&r.key.unwrap_or(0).to_be_bytes());
    p.extend_from_slice(&r.numwant.min(i32::MAX as u32).to_be_bytes());
    p.extend_from_slice(&r.port.to_be_bytes());
    p
}

/// `udp://host:port[/path]`: the first address `host` resolves to. The port is required,
/// as no default port for UDP trackers exists.
fn resolve(url: &str) -> Result<SocketAddr, TrackerError> {
    let bad = |why: &str| TrackerError::BadUrl(format!("{}: {}", url, why));
    let rest = url.get(6..).filter(|_| url[..6].eq_ignore_ascii_case("udp://"));
    let rest = rest.ok_or_else(|| bad("not a udp:// URL"))?;
    let authority = rest.split(&['/', '?', '#'][..]).next().unwrap_or("");
    let (host, port) = host_port(authority, None).map_err(bad)?;
    let mut addrs =
        (host, port).to_socket_addrs().map_err(|e| TrackerError::Io(format!("{}: {}", host, e)))?;
    addrs.next().ok_or_else(|| TrackerError::Io(format!("{} has no address", host)))
}

fn io(e: std::io::Error) -> TrackerError {
    TrackerError::Io(e.to_string())
}

fn short(what: &str, reply: &[u8]) -> TrackerError {
    TrackerError::BadReply(format!("{} reply of {} bytes is too short", what, reply.len()))
}

pub(crate) fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests;
