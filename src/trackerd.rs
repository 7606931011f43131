//! `tyrant tracker`: a small tracker server for experiments. This file keeps the swarms and
//! answers announces and scrapes whatever front end they came through; `trackerd/http.rs`
//! speaks HTTP (BEP 3 announce and scrape, compact replies per BEP 23, IPv6 peers in
//! `peers6` per BEP 7) and `trackerd/udp.rs` speaks UDP (BEP 15) on the same port number.
//!
//! Experiments run many peers on one host (127.0.0.N or one IP with many ports), so a peer
//! is keyed by its peer id and its address is the `ip` parameter (or the connection's source
//! IP) plus the announced port. Peer lists are drawn with the seeded RNG so a run can be
//! repeated. The swarm table sits behind one mutex: this is a separate server process, not
//! torrent state.

use crate::rng::Rng;
use crate::sha1::hex;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

mod http;
mod udp;

pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Seconds, as sent to clients.
    pub interval: u32,
    pub min_interval: u32,
    pub max_numwant: usize,
    pub default_numwant: usize,
    /// Peers not heard from for this long are dropped.
    pub expiry: Duration,
    pub seed: u64,
}

impl ServerConfig {
    pub fn new(bind: SocketAddr) -> ServerConfig {
        let interval = 60;
        ServerConfig {
            bind,
            interval,
            min_interval: 15,
            max_numwant: 200,
            default_numwant: 50,
            expiry: Duration::from_secs(3 * u64::from(interval)),
            seed: 1,
        }
    }
}

struct Peer {
    addr: SocketAddr,
    seed: bool,
    last_seen: Instant,
}

#[derive(Default)]
struct Swarm {
    /// BTreeMap, not HashMap: iteration order must not depend on a random hasher, or the
    /// seeded RNG would not make replies repeatable.
    peers: BTreeMap<[u8; 20], Peer>,
    /// `event=completed` count, reported by scrape as `downloaded`.
    downloaded: u64,
}

impl Swarm {
    fn expire(&mut self, now: Instant, expiry: Duration) {
        self.peers.retain(|_, p| now.saturating_duration_since(p.last_seen) < expiry);
    }

    fn counts(&self) -> (u64, u64) {
        let seeds = self.peers.values().filter(|p| p.seed).count() as u64;
        (seeds, self.peers.len() as u64 - seeds)
    }
}

struct State {
    swarms: BTreeMap<[u8; 20], Swarm>,
    rng: Rng,
    last_sweep: Instant,
}

impl State {
    /// Expire silent peers in every swarm and forget empty swarms, so memory follows the
    /// live peers, not every info-hash ever announced.
    fn sweep(&mut self, now: Instant, expiry: Duration) {
        for s in self.swarms.values_mut() {
            s.expire(now, expiry);
        }
        self.swarms.retain(|_, s| !s.peers.is_empty());
        self.last_sweep = now;
    }
}

struct Server {
    cfg: ServerConfig,
    state: Mutex<State>,
    open: Mutex<http::Open>,
    /// Keys the UDP connection ids; counted in minutes from `started`.
    secret: u64,
    started: Instant,
}

/// One announce, as a front end read it.
pub(crate) struct Announce {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub addr: SocketAddr,
    /// `left` was 0.
    pub seed: bool,
    pub event: String,
    pub numwant: Option<usize>,
}

/// What the swarm says back: a random subset of the other peers, and the counts.
pub(crate) struct Answer {
    pub peers: Vec<SocketAddr>,
    pub complete: u64,
    pub incomplete: u64,
}

/// Bind TCP and UDP on one port number, print nothing, return the bound address and a
/// handle; the server runs until the process exits.
pub fn spawn(cfg: ServerConfig) -> std::io::Result<(SocketAddr, thread::JoinHandle<()>)> {
    let (listener, udp) = bind_both(cfg.bind)?;
    let addr = listener.local_addr()?;
    let rng = Rng::new(cfg.seed);
    let server = Arc::new(Server {
        // Not drawn from `rng`: peer lists stay what they were for a given seed.
        secret: Rng::new(!cfg.seed).next_u64(),
        started: Instant::now(),
        state: Mutex::new(State { swarms: BTreeMap::new(), rng, last_sweep: Instant::now() }),
        open: Mutex::new(http::Open::default()),
        cfg,
    });
    let s = Arc::clone(&server);
    thread::Builder::new().name("trackerd-udp".to_string()).spawn(move || udp::serve(udp, s))?;
    let handle = thread::Builder::new()
        .name("trackerd".to_string())
        .spawn(move || http::accept_loop(listener, server))?;
    Ok((addr, handle))
}

/// Port 0 means any port free for both protocols: the kernel picks TCP's, and UDP may
/// already have that one taken, so try a few.
fn bind_both(bind: SocketAddr) -> std::io::Result<(TcpListener, UdpSocket)> {
    let mut tries = 0;
    loop {
        let listener = TcpListener::bind(bind)?;
        match UdpSocket::bind(listener.local_addr()?) {
            Ok(udp) => return Ok((listener, udp)),
            Err(e) if bind.port() != 0 || tries == 20 => {
                return Err(std::io::Error::new(e.kind(), format!("UDP: {}", e)))
            }
            Err(_) => tries += 1,
        }
    }
}

impl Server {
    /// Record the announcing peer (or forget it on `stopped`) and draw the peers to return.
    pub(crate) fn announce(&self, a: &Announce) -> Answer {
        let numwant = a.numwant.unwrap_or(self.cfg.default_numwant).min(self.cfg.max_numwant);
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if now.saturating_duration_since(guard.last_sweep) > self.cfg.expiry / 2 {
            guard.sweep(now, self.cfg.expiry);
        }
        let State { swarms, rng, .. } = &mut *guard;
        let swarm = swarms.entry(a.info_hash).or_default();
        swarm.expire(now, self.cfg.expiry);
        let numwant = if a.event == "stopped" {
            swarm.peers.remove(&a.peer_id);
            0
        } else {
            if a.event == "completed" {
                swarm.downloaded += 1;
            }
            swarm.peers.insert(a.peer_id, Peer { addr: a.addr, seed: a.seed, last_seen: now });
            numwant
        };
        // Never the requester, not even under an old peer id from the same address.
        let mut others: Vec<SocketAddr> = swarm
            .peers
            .iter()
            .filter(|(id, p)| **id != a.peer_id && p.addr != a.addr)
            .map(|(_, p)| p.addr)
            .collect();
        // A uniform random subset of `numwant`.
        rng.shuffle(&mut others);
        others.truncate(numwant);
        let (complete, incomplete) = swarm.counts();
        log::debug!(
            "announce {} from {} event={:?} seed={} -> {} peers ({} seeds, {} leechers)",
            hex(&a.info_hash[..4]),
            a.addr,
            a.event,
            a.seed,
            others.len(),
            complete,
            incomplete
        );
        Answer { peers: others, complete, incomplete }
    }

    /// (info-hash, complete, downloaded, incomplete) of each swarm asked for, or of every
    /// swarm when none is named.
    pub(crate) fn scrape(&self, wanted: &[[u8; 20]]) -> Vec<([u8; 20], u64, u64, u64)> {
        let now = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let swarms = &mut guard.swarms;
        let all: Vec<[u8; 20]> = swarms.keys().copied().collect();
        let wanted = if wanted.is_empty() { &all[..] } else { wanted };
        wanted
            .iter()
            .map(|h| match swarms.get_mut(h) {
                Some(s) => {
                    s.expire(now, self.cfg.expiry);
                    let (c, i) = s.counts();
                    (*h, c, s.downloaded, i)
                }
                None => (*h, 0, 0, 0),
            })
            .collect()
    }
}

/// An IPv4 peer reaching a dual-stack socket shows up as ::ffff:a.b.c.d; it belongs in
/// the 6-byte compact list.
fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// BEP 23's compact form: each address as its IP's bytes, then the port, big-endian.
fn compact<'a>(addrs: impl Iterator<Item = &'a SocketAddr>) -> Vec<u8> {
    let mut out = Vec::new();
    for a in addrs {
        match a.ip() {
            IpAddr::V4(ip) => out.extend_from_slice(&ip.octets()),
            IpAddr::V6(ip) => out.extend_from_slice(&ip.octets()),
        }
        out.extend_from_slice(&a.port().to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests;
