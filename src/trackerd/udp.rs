//! The tracker's UDP front end (BEP 15), on the same port number as HTTP: `connect`,
//! `announce` and `scrape` over one socket and one thread.
//!
//! Connection ids are not stored: an id is a keyed hash of the client's address and the
//! current minute, so a flood of `connect`s costs no memory, and a client cannot announce
//! from an address it does not receive at (it must echo the id sent there). An id is
//! accepted in its minute and the next, covering BEP 15's "one minute" on either side.
//! Malformed datagrams and unknown ids are dropped with a debug line, never answered: a
//! reply to a forged source address would reflect traffic at someone else.

use super::{compact, unmap, Announce, Server};
use crate::tracker::udp::{be32, be64, ANNOUNCE, CONNECT, ERROR, PROTOCOL_ID, SCRAPE};
use crate::tracker::EVENT_WORDS;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

/// BEP 15: "up to about 74 torrents can be scraped at once".
const MAX_SCRAPE: usize = 74;

pub(super) fn serve(sock: UdpSocket, server: Arc<Server>) {
    let mut buf = [0u8; 2048];
    loop {
        match sock.recv_from(&mut buf) {
            Ok((len, src)) => {
                if let Some(reply) = server.udp_request(&buf[..len], src) {
                    if let Err(e) = sock.send_to(&reply, src) {
                        log::debug!("tracker: UDP reply to {} failed: {}", src, e);
                    }
                }
            }
            Err(e) => {
                log::warn!("tracker: UDP receive failed: {}", e);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Server {
    fn udp_request(&self, p: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
        let drop = |why: &str| {
            log::debug!("tracker: dropped a {}-byte UDP request from {}: {}", p.len(), src, why);
            None
        };
        if p.len() < 16 {
            return drop("shorter than 16 bytes");
        }
        let (conn, action) = (be64(&p[..8]), be32(&p[8..12]));
        let known = || conn == self.conn_id(src, 0) || conn == self.conn_id(src, 1);
        let mut reply = action.to_be_bytes().to_vec();
        reply.extend_from_slice(&p[12..16]);
        match action {
            CONNECT if conn == PROTOCOL_ID => reply.extend(self.conn_id(src, 0).to_be_bytes()),
            CONNECT => return drop("connect without the protocol id"),
            ANNOUNCE | SCRAPE if !known() => return drop("unknown or expired connection id"),
            ANNOUNCE if p.len() >= 98 => self.udp_announce(p, src, &mut reply)?,
            SCRAPE if p.len() >= 36 && (p.len() - 16) % 20 == 0 => {
                let wanted: Vec<[u8; 20]> = p[16..]
                    .chunks_exact(20)
                    .take(MAX_SCRAPE)
                    .filter_map(|c| c.try_into().ok())
                    .collect();
                for (_, complete, downloaded, incomplete) in self.scrape(&wanted) {
                    for n in [complete, downloaded, incomplete] {
                        reply.extend_from_slice(&(n.min(u64::from(u32::MAX)) as u32).to_be_bytes());
                    }
                }
            }
            _ => return drop("bad action or length"),
        }
        Some(reply)
    }

    /// Appends the announce reply's body to `reply` (action and transaction id already in
    /// it), or turns `reply` into an error reply.
    fn udp_announce(&self, p: &[u8], src: SocketAddr, reply: &mut Vec<u8>) -> Option<()> {
        let id20 = |at: usize| p[at..at + 20].try_into().ok();
        let event = match EVENT_WORDS.get(be32(&p[80..84]) as usize) {
            Some(e) => e,
            None => return self.udp_error(reply, "unknown event"),
        };
        let port = u16::from_be_bytes([p[96], p[97]]);
        if port == 0 {
            return self.udp_error(reply, "port 0");
        }
        // The announced IP, as HTTP's `ip=` (many peers on 127.0.0.N), else the source.
        let ip = Some(Ipv4Addr::new(p[84], p[85], p[86], p[87])).filter(|ip| !ip.is_unspecified());
        let ip = ip.map_or_else(|| unmap(src.ip()), IpAddr::V4);
        let a = Announce {
            info_hash: id20(16)?,
            peer_id: id20(36)?,
            addr: SocketAddr::new(ip, port),
            seed: be64(&p[64..72]) == 0,
            event: event.to_string(),
            // Negative: the tracker's default.
            numwant: usize::try_from(be32(&p[92..96]) as i32).ok(),
        };
        let answer = self.announce(&a);
        for n in [u64::from(self.cfg.interval), answer.incomplete, answer.complete] {
            reply.extend_from_slice(&(n.min(u64::from(u32::MAX)) as u32).to_be_bytes());
        }
        // One address family per reply, the one the request came over (BEP 15).
        let v4 = unmap(src.ip()).is_ipv4();
        reply.extend(compact(answer.peers.iter().filter(|a| a.is_ipv4() == v4)));
        Some(())
    }

    fn udp_error(&self, reply: &mut Vec<u8>, msg: &str) -> Option<()> {
        reply[..4].copy_from_slice(&ERROR.to_be_bytes());
        reply.extend_from_slice(msg.as_bytes());
        Some(())
    }

    /// The connection id for `src` in the minute `ago` minutes before this one.
    fn conn_id(&self, src: SocketAddr, ago: u64) -> u64 {
        let minute = (self.started.elapsed().as_secs() / 60).wrapping_sub(ago);
        let mut key = self.secret.to_be_bytes().to_vec();
        key.extend_from_slice(&minute.to_be_bytes());
        key.extend_from_slice(src.to_string().as_bytes());
        be64(&crate::sha1::sha1(&key))
    }
}
