//! Unit tests for the BEP 15 client, against scripted UDP trackers (exact bytes, lost
//! datagrams, stray replies, errors) and against `tyrant tracker`'s UDP front end.

use super::*;
use crate::tracker::{spawn_announcer, AnnounceEvent, TrackerConfig, TrackerCtl, TransferCounters};
use crate::trackerd;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::thread;

fn req(n: u8) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: [0xab; 20],
        peer_id: [n; 20],
        port: 6000 + u16::from(n),
        uploaded: 1,
        downloaded: 2,
        left: 3,
        event: AnnounceEvent::Started,
        numwant: 50,
        ip: None,
        key: Some(0xbeef),
        tracker_id: None,
    }
}

/// A scripted tracker: hands each datagram it receives to `answer`, which returns the
/// replies to send; every datagram is also reported on the channel.
fn scripted<F>(answer: F) -> (String, crossbeam_channel::Receiver<Vec<u8>>)
where
    F: FnMut(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
{
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("udp://{}/announce", sock.local_addr().unwrap());
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut answer = answer;
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, src)) = sock.recv_from(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
            for r in answer(&buf[..n]) {
                let _ = sock.send_to(&r, src);
            }
        }
    });
    (url, rx)
}

fn connect_reply(p: &[u8], id: u64) -> Vec<u8> {
    let mut r = CONNECT.to_be_bytes().to_vec();
    r.extend_from_slice(&p[12..16]);
    r.extend_from_slice(&id.to_be_bytes());
    r
}

fn announce_reply(p: &[u8], interval: u32, peers: &[u8]) -> Vec<u8> {
    let mut r = ANNOUNCE.to_be_bytes().to_vec();
    r.extend_from_slice(&p[12..16]);
    for n in [interval, 4, 5] {
        r.extend_from_slice(&n.to_be_bytes());
    }
    r.extend_from_slice(peers);
    r
}

/// Answers connects with id 77 and announces with `peers`.
fn well_behaved(peers: &'static [u8]) -> impl FnMut(&[u8]) -> Vec<Vec<u8>> {
    move |p: &[u8]| match be32(&p[8..12]) {
        CONNECT => vec![connect_reply(p, 77)],
        _ => vec![announce_reply(p, 1800, peers)],
    }
}

const LONG: Duration = Duration::from_secs(10);

#[test]
fn connect_then_announce_exact_bytes() {
    let (url, seen) = scripted(well_behaved(&[127, 0, 0, 2, 0x1a, 0xe1, 127, 0, 0, 3, 0, 0]));
    let mut c = UdpClient::new(1, 1.0);
    let mut r = req(9);
    r.ip = Some("127.0.0.9".into());
    let got = c.announce(&url, &r, LONG).unwrap();
    // The port-0 entry is dropped, as from HTTP trackers.
    assert_eq!(got.peers, vec![SocketAddr::from(([127, 0, 0, 2], 6881))]);
    assert_eq!(got.interval, Duration::from_secs(1800));
    assert_eq!((got.incomplete, got.complete), (Some(4), Some(5)));

    let connect = seen.recv_timeout(LONG).unwrap();
    assert_eq!(connect.len(), 16);
    assert_eq!(&connect[..12], &[0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0]);
    let a = seen.recv_timeout(LONG).unwrap();
    assert_eq!(a.len(), 98);
    assert_eq!(be64(&a[..8]), 77, "the connection id from the connect reply");
    assert_eq!(be32(&a[8..12]), ANNOUNCE);
    assert_ne!(&a[12..16], &connect[12..16], "a fresh transaction id per request");
    assert_eq!(&a[16..36], &[0xab; 20]);
    assert_eq!(&a[36..56], &[9; 20]);
    assert_eq!((be64(&a[56..64]), be64(&a[64..72]), be64(&a[72..80])), (2, 3, 1));
    assert_eq!(be32(&a[80..84]), 2, "started");
    assert_eq!(&a[84..88], &[127, 0, 0, 9], "--announce-ip");
    assert_eq!(be32(&a[88..92]), 0xbeef);
    assert_eq!(be32(&a[92..96]), 50);
    assert_eq!(&a[96..98], &6009u16.to_be_bytes());
}

#[test]
fn connection_id_is_reused_then_renewed_after_an_error() {
    let (url, seen) = scripted(well_behaved(&[]));
    let mut c = UdpClient::new(1, 1.0);
    for _ in 0..3 {
        c.announce(&url, &req(1), LONG).unwrap();
    }
    let actions: Vec<u32> = seen.try_iter().map(|p| be32(&p[8..12])).collect();
    assert_eq!(actions, vec![CONNECT, ANNOUNCE, ANNOUNCE, ANNOUNCE]);

    // An expired id: the tracker answers the announce with an error.
    let (url, seen) = scripted(|p: &[u8]| match be32(&p[8..12]) {
        CONNECT => vec![connect_reply(p, 5)],
        _ => {
            let mut r = ERROR.to_be_bytes().to_vec();
            r.extend_from_slice(&p[12..16]);
            r.extend_from_slice(b"Connection ID missmatch.");
            vec![r]
        }
    });
    let mut c = UdpClient::new(1, 1.0);
    let e = c.announce(&url, &req(1), LONG).unwrap_err();
    assert_eq!(e, TrackerError::Failure("Connection ID missmatch.".into()));
    let _ = c.announce(&url, &req(1), LONG);
    let actions: Vec<u32> = seen.try_iter().map(|p| be32(&p[8..12])).collect();
    assert_eq!(actions, vec![CONNECT, ANNOUNCE, CONNECT, ANNOUNCE], "a failure forgets the id");
}

#[test]
fn a_lost_request_is_retransmitted_after_the_scaled_wait() {
    // Ignore the first connect; answer everything after.
    let mut first = true;
    let mut inner = well_behaved(&[]);
    let (url, seen) =
        scripted(move |p: &[u8]| if std::mem::take(&mut first) { Vec::new() } else { inner(p) });
    // 15 s / 100 = 150 ms.
    let mut c = UdpClient::new(1, 100.0);
    let t0 = Instant::now();
    c.announce(&url, &req(1), LONG).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(150) && took < Duration::from_secs(3), "{:?}", took);
    let p: Vec<Vec<u8>> = seen.try_iter().collect();
    assert_eq!(p.len(), 3);
    assert_eq!(p[0], p[1], "a retransmission repeats the request, transaction id included");
}

#[test]
fn a_silent_tracker_fails_after_two_tries_and_stray_replies_are_ignored() {
    let (url, seen) = scripted(|p: &[u8]| {
        let mut wrong_tx = connect_reply(p, 1);
        wrong_tx[4] ^= 0xff;
        let mut wrong_action = connect_reply(p, 1);
        wrong_action[3] = 9;
        vec![wrong_tx, wrong_action, vec![0, 0, 0], Vec::new()]
    });
    let mut c = UdpClient::new(1, 100.0);
    let t0 = Instant::now();
    let e = c.announce(&url, &req(1), LONG).unwrap_err();
    assert!(matches!(e, TrackerError::Io(_)), "{:?}", e);
    // 150 ms + 300 ms.
    assert!(t0.elapsed() >= Duration::from_millis(450), "{:?}", t0.elapsed());
    assert_eq!(seen.try_iter().count(), 2);
    // The overall limit (a `stopped` on the way out) cuts the schedule short.
    let t0 = Instant::now();
    let _ = UdpClient::new(1, 1.0).announce(&url, &req(1), Duration::from_millis(200));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn malformed_replies_are_errors_not_panics() {
    for (peers_len, ok) in [(0, true), (6, true), (7, false), (12, true), (13, false)] {
        let peers: &'static [u8] = Box::leak(vec![1u8; peers_len].into_boxed_slice());
        let (url, _seen) = scripted(well_behaved(peers));
        let r = UdpClient::new(1, 100.0).announce(&url, &req(1), LONG);
        assert_eq!(r.is_ok(), ok, "{} bytes of peers: {:?}", peers_len, r);
    }
    // Every truncation of an announce reply.
    for cut in 0..12 {
        let (url, _seen) = scripted(move |p: &[u8]| match be32(&p[8..12]) {
            CONNECT => vec![connect_reply(p, 77)],
            _ => vec![announce_reply(p, 60, &[])[..8 + cut].to_vec()],
        });
        let r = UdpClient::new(1, 100.0).announce(&url, &req(1), LONG);
        assert!(r.is_err(), "a {}-byte reply", 8 + cut);
    }
}

#[test]
fn bad_urls_are_one_line_errors() {
    let mut c = UdpClient::new(1, 1.0);
    for url in ["udp://host", "udp://:80", "udp://h:0", "udp://h:x/a", "udp://[::1/a", "http://h:1"]
    {
        match c.announce(url, &req(1), LONG) {
            Err(TrackerError::BadUrl(m)) => {
                assert!(m.starts_with(url) && !m.contains('\n'), "{}", m)
            }
            other => panic!("{}: {:?}", url, other),
        }
    }
}

#[test]
fn a_closed_port_fails_at_once() {
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let t0 = Instant::now();
    let r = UdpClient::new(1, 1.0).announce(&format!("udp://127.0.0.1:{}", port), &req(1), LONG);
    assert!(matches!(r, Err(TrackerError::Io(_))), "{:?}", r);
    assert!(t0.elapsed() < Duration::from_secs(5), "ICMP port unreachable ends the wait");
}

fn tracker(bind: &str) -> SocketAddr {
    let mut cfg = trackerd::ServerConfig::new(bind.parse().unwrap());
    cfg.interval = 1;
    trackerd::spawn(cfg).unwrap().0
}

#[test]
fn peers_find_each_other_over_udp_on_the_tracker_port() {
    let addr = tracker("127.0.0.1:0");
    let url = format!("udp://{}/announce", addr);
    let mut c = UdpClient::new(1, 1.0);
    let mut a = req(1);
    a.ip = Some("127.0.0.2".into());
    assert!(c.announce(&url, &a, LONG).unwrap().peers.is_empty());
    // The second peer over HTTP, on the same port number.
    let mut b = req(2);
    b.left = 0;
    let http = format!("http://{}/announce", addr);
    let r = crate::tracker::announce(&http, &b, LONG).unwrap();
    assert_eq!(r.peers, vec![SocketAddr::from(([127, 0, 0, 2], 6001))]);
    a.event = AnnounceEvent::None;
    let r = c.announce(&url, &a, LONG).unwrap();
    assert_eq!(r.peers, vec![SocketAddr::from(([127, 0, 0, 1], 6002))]);
    assert_eq!((r.complete, r.incomplete, r.interval), (Some(1), Some(1), Duration::from_secs(1)));
    a.event = AnnounceEvent::Stopped;
    c.announce(&url, &a, LONG).unwrap();
    let r = crate::tracker::announce(&http, &b, LONG).unwrap();
    assert!(r.peers.is_empty(), "stopped over UDP removed the peer");
}

#[test]
fn ipv6_replies_carry_18_byte_peers() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let addr = tracker("[::1]:0");
    let url = format!("udp://[::1]:{}/announce", addr.port());
    let mut c = UdpClient::new(1, 1.0);
    c.announce(&url, &req(1), LONG).unwrap();
    let r = c.announce(&url, &req(2), LONG).unwrap();
    assert_eq!(r.peers, vec![SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 6001)]);
}

#[test]
fn announcer_walks_mixed_tiers_and_promotes_the_udp_tracker() {
    let addr = tracker("127.0.0.1:0");
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tiers = vec![
        vec![
            format!("udp://{}", dead.local_addr().unwrap()),
            format!("http://{}/announce", dead_http.local_addr().unwrap()),
            format!("udp://{}/announce", addr),
        ],
        vec![format!("http://{}/announce", addr)],
    ];
    let cfg = TrackerConfig {
        tiers,
        request: AnnounceRequest {
            info_hash: [7; 20],
            peer_id: [3; 20],
            port: 7001,
            ip: None,
            numwant: 30,
            key: Some(1),
            ..AnnounceRequest::default()
        },
        timeout: Duration::from_millis(300),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_secs(60),
        time_scale: 100.0,
    };
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
    let h = spawn_announcer(cfg, Arc::new(TransferCounters::default()), ctl_rx, rep_tx);
    let mut urls = Vec::new();
    for _ in 0..4 {
        let r = rep_rx.recv_timeout(LONG).unwrap();
        urls.push((r.url.split("://").next().unwrap().to_string(), r.result.is_ok()));
    }
    ctl_tx.send(TrackerCtl::Stop).unwrap();
    h.join().unwrap();
    // The dead UDP tracker (silent: it is bound but never answers) and the dead HTTP one
    // fail, the live UDP one answers, and the next round goes to it first.
    let want = [("udp", false), ("http", false), ("udp", true), ("udp", true)];
    let want: Vec<(String, bool)> = want.iter().map(|(s, ok)| (s.to_string(), *ok)).collect();
    assert_eq!(urls, want);
}
