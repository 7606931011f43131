//! Unit tests for `crate::trackerd`, driven through the real `tracker` client.

use super::http::percent_decode;
use super::*;
use crate::bencode::{self, Dict};
use crate::tracker::{self, AnnounceEvent, AnnounceRequest};
use std::io::{Read, Write};
use std::net::TcpStream;

const HASH: [u8; 20] = [0x5a; 20];

fn server(f: impl FnOnce(&mut ServerConfig)) -> SocketAddr {
    let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    f(&mut cfg);
    spawn(cfg).unwrap().0
}

fn id(n: u8) -> [u8; 20] {
    let mut id = *b"-TY0001-000000000000";
    id[19] = b'0' + n;
    id
}

fn enc(b: &[u8]) -> String {
    b.iter().map(|x| format!("%{:02X}", x)).collect()
}

/// Raw GET; the status code and the decoded dictionary.
fn get(addr: SocketAddr, target: &str) -> (u16, Dict) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {} HTTP/1.1\r\nHost: x\r\n\r\n", target).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, _) = text.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    assert!(head.contains(&format!("Content-Length: {}\r\n", raw.len() - head.len() - 4)));
    let body = &raw[head.len() + 4..];
    let v = bencode::decode(body).unwrap();
    (status, v.as_dict().unwrap().clone())
}

/// `extra` goes before `left`, so an `&left=` in it wins (first occurrence counts).
fn announce_target(n: u8, port: u16, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={}{}&uploaded=0&downloaded=0&left=10",
        enc(&HASH),
        enc(&id(n)),
        port,
        extra
    )
}

fn client_req(n: u8, port: u16) -> AnnounceRequest {
    AnnounceRequest {
        info_hash: HASH,
        peer_id: id(n),
        port,
        uploaded: 0,
        downloaded: 0,
        left: 10,
        event: AnnounceEvent::Started,
        numwant: 50,
        ip: None,
        key: None,
        tracker_id: None,
    }
}

#[test]
fn peers_on_one_ip_see_each_other_but_not_themselves() {
    let addr = server(|_| {});
    let url = format!("http://{}/announce", addr);
    let t = Duration::from_secs(5);
    for (n, port) in [(1, 7001), (2, 7002), (3, 7003)] {
        tracker::announce(&url, &client_req(n, port), t).unwrap();
    }
    for (n, port) in [(1u8, 7001u16), (2, 7002), (3, 7003)] {
        let mut r = tracker::announce(&url, &client_req(n, port), t).unwrap();
        r.peers.sort();
        let want: Vec<SocketAddr> = [7001, 7002, 7003]
            .iter()
            .filter(|p| **p != port)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        assert_eq!(r.peers, want);
        assert_eq!((r.complete, r.incomplete), (Some(0), Some(3)));
        assert_eq!(r.interval, Duration::from_secs(60));
        assert_eq!(r.min_interval, Some(Duration::from_secs(15)));
    }
}

#[test]
fn replies_are_compact_whatever_the_client_asks() {
    let addr = server(|_| {});
    get(addr, &announce_target(1, 7001, "&ip=127.0.0.7&event=started"));
    get(addr, &announce_target(2, 7002, "&ip=%3A%3A1&left=0"));
    let mut v6 = [0u8; 18];
    v6[15] = 1;
    v6[16..].copy_from_slice(&7002u16.to_be_bytes());
    // Unknown and repeated parameters are ignored (first one wins), as libtorrent sends;
    // `compact=0` and `no_peer_id=1` still get compact lists (BEP 23).
    for extra in [
        "&key=abc&supportcrypto=1&redundant=0&corrupt=0&ipv6=x&port=1&event=&foo",
        "&compact=0&no_peer_id=1",
        "&compact=1",
    ] {
        let (status, d) = get(addr, &announce_target(3, 7003, extra));
        assert_eq!(status, 200);
        assert_eq!(d.bytes("peers"), Some(&[127, 0, 0, 7, 0x1b, 0x59][..]), "{}", extra);
        assert_eq!(d.bytes("peers6"), Some(&v6[..]), "{}", extra);
        assert_eq!((d.int("complete"), d.int("incomplete")), (Some(1), Some(2)));
    }
}

#[test]
fn numwant_limits_the_random_subset() {
    let addr = server(|c| {
        c.max_numwant = 5;
        c.default_numwant = 3;
    });
    for n in 0..9 {
        get(addr, &announce_target(n, 7000 + u16::from(n), ""));
    }
    let count = |extra: &str| {
        let (_, d) = get(addr, &announce_target(0, 7000, extra));
        d.bytes("peers").unwrap().len() / 6
    };
    assert_eq!(count("&compact=1"), 3, "default");
    assert_eq!(count("&compact=1&numwant=2"), 2);
    assert_eq!(count("&compact=1&numwant=0"), 0);
    assert_eq!(count("&compact=1&numwant=100"), 5, "capped by max_numwant");
    assert_eq!(count("&compact=1&numwant=junk"), 3);
    // Draws differ between requests: over many draws every other peer shows up.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (_, d) = get(addr, &announce_target(0, 7000, "&compact=1&numwant=2"));
        for c in d.bytes("peers").unwrap().chunks(6) {
            let port = u16::from_be_bytes([c[4], c[5]]);
            assert_ne!(port, 7000, "never the requester");
            seen.insert(port);
        }
    }
    assert_eq!(seen.len(), 8);
}

#[test]
fn stopped_removes_and_completed_counts() {
    let addr = server(|_| {});
    get(addr, &announce_target(1, 7001, "&event=started"));
    get(addr, &announce_target(2, 7002, "&event=started"));
    let (_, d) = get(addr, &announce_target(2, 7002, "&event=completed&left=0"));
    assert_eq!((d.int("complete"), d.int("incomplete")), (Some(1), Some(1)));
    let (_, d) = get(addr, &announce_target(2, 7002, "&event=stopped&left=0&compact=1"));
    assert_eq!(d.bytes("peers"), Some(&[][..]));
    assert_eq!((d.int("complete"), d.int("incomplete")), (Some(0), Some(1)));
    let (_, d) = get(addr, &announce_target(1, 7001, ""));
    assert_eq!(d.bytes("peers"), Some(&[][..]));

    let (_, d) =
        get(addr, &format!("/scrape?info_hash={}&info_hash={}", enc(&HASH), enc(&[1; 20])));
    let files = d.dict("files").unwrap();
    let f = files.map.get(&HASH[..]).unwrap().as_dict().unwrap();
    assert_eq!(
        (f.int("complete"), f.int("incomplete"), f.int("downloaded")),
        (Some(0), Some(1), Some(1))
    );
    let f = files.map.get(&vec![1u8; 20]).unwrap().as_dict().unwrap();
    assert_eq!(f.int("incomplete"), Some(0));
    let (_, d) = get(addr, "/scrape");
    assert_eq!(d.dict("files").unwrap().map.len(), 1);
}

#[test]
fn silent_peers_expire() {
    let addr = server(|c| c.expiry = Duration::from_millis(200));
    get(addr, &announce_target(1, 7001, ""));
    let (_, d) = get(addr, &announce_target(2, 7002, ""));
    assert_eq!(d.bytes("peers").unwrap().len(), 6);
    thread::sleep(Duration::from_millis(300));
    let (_, d) = get(addr, &announce_target(2, 7002, ""));
    assert_eq!(d.bytes("peers"), Some(&[][..]));
    assert_eq!(d.int("incomplete"), Some(1));
}

#[test]
fn bad_requests_get_a_failure_reason() {
    let addr = server(|_| {});
    let h = enc(&HASH);
    let p = enc(&id(1));
    let cases = [
        (format!("/announce?peer_id={}&port=1", p), "missing info_hash"),
        (format!("/announce?info_hash=%5A%5A&peer_id={}&port=1", p), "info_hash must be 20 bytes"),
        (
            format!("/announce?info_hash={}%00&peer_id={}&port=1", h, p),
            "info_hash must be 20 bytes",
        ),
        (format!("/announce?info_hash={}&port=1", h), "missing peer_id"),
        (format!("/announce?info_hash={}&peer_id=abc&port=1", h), "peer_id must be 20 bytes"),
        (format!("/announce?info_hash={}&peer_id={}", h, p), "port"),
        (format!("/announce?info_hash={}&peer_id={}&port=0", h, p), "port"),
        (format!("/announce?info_hash={}&peer_id={}&port=70000", h, p), "port"),
        (format!("/announce?info_hash={}&peer_id={}&port=x", h, p), "port"),
        (format!("/announce?info_hash=%ZZ&peer_id={}&port=1", p), "percent-encoding"),
        (format!("/announce?info_hash={}&peer_id={}%2&port=1", h, p), "percent-encoding"),
        ("/scrape?info_hash=%01".to_string(), "20 bytes"),
    ];
    for (target, want) in &cases {
        let (status, d) = get(addr, target);
        let reason = d.str_lossy("failure reason").unwrap_or_default();
        assert_eq!(status, 200, "{}", target);
        assert!(reason.contains(want), "{}: {:?}", target, reason);
    }
    let (status, d) = get(addr, "/favicon.ico");
    assert_eq!(status, 404);
    assert!(d.get("failure reason").is_some());
    // The client turns a 404 with a failure reason into Failure.
    let e = tracker::announce(
        &format!("http://{}/nope", addr),
        &client_req(1, 1),
        Duration::from_secs(5),
    );
    assert!(matches!(e, Err(tracker::TrackerError::Failure(_))), "{:?}", e);
    // Not HTTP at all, and oversized requests.
    for junk in [b"HELLO\r\n\r\n".to_vec(), vec![b'a'; 20_000]] {
        let mut s = TcpStream::connect(addr).unwrap();
        let _ = s.write_all(&junk);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.0 400 "), "{}", text);
        assert!(text.contains("failure reason"), "{}", text);
    }
    // A client that hangs up at once does not hurt the server.
    drop(TcpStream::connect(addr).unwrap());
    let (status, _) = get(addr, &announce_target(1, 7001, ""));
    assert_eq!(status, 200);
}

#[test]
fn percent_decoding_is_strict_and_keeps_plus() {
    assert_eq!(percent_decode("a%2Bb+c%7e").unwrap(), b"a+b+c~");
    assert_eq!(percent_decode("%00%ff").unwrap(), vec![0, 0xff]);
    for bad in ["%", "%4", "%4g", "%%41"] {
        assert!(percent_decode(bad).is_none(), "{}", bad);
    }
    assert_eq!(unmap("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3".parse::<IpAddr>().unwrap());
    assert_eq!(unmap("::1".parse().unwrap()), "::1".parse::<IpAddr>().unwrap());
}

#[test]
fn same_seed_same_peer_lists() {
    let lists = |seed: u64| {
        let addr = server(|c| c.seed = seed);
        for n in 0..8 {
            get(addr, &announce_target(n, 7000 + u16::from(n), ""));
        }
        (0..5)
            .map(|_| {
                get(addr, &announce_target(0, 7000, "&compact=1&numwant=3"))
                    .1
                    .bytes("peers")
                    .unwrap()
                    .to_vec()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(lists(42), lists(42));
}

// ---- UDP (BEP 15) ----

/// Send one datagram from `sock` to the tracker; the reply, or None after 300 ms.
fn udp(sock: &std::net::UdpSocket, to: SocketAddr, p: &[u8]) -> Option<Vec<u8>> {
    sock.send_to(p, to).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
}

fn udp_connect(sock: &std::net::UdpSocket, to: SocketAddr) -> [u8; 8] {
    let mut p = 0x417_2710_1980u64.to_be_bytes().to_vec();
    p.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4]);
    let r = udp(sock, to, &p).expect("connect reply");
    assert_eq!(r.len(), 16);
    assert_eq!(&r[..8], &[0, 0, 0, 0, 1, 2, 3, 4], "action 0 and our transaction id");
    let mut id = [0u8; 8];
    id.copy_from_slice(&r[8..]);
    id
}

fn udp_announce(conn: &[u8; 8], n: u8, event: u32, port: u16) -> Vec<u8> {
    let mut p = conn.to_vec();
    p.extend_from_slice(&[0, 0, 0, 1, 9, 9, 9, 9]);
    p.extend_from_slice(&HASH);
    p.extend_from_slice(&id(n));
    p.extend_from_slice(&[0; 8]); // downloaded
    p.extend_from_slice(&(u64::from(n) % 2).to_be_bytes()); // left: odd n are leechers
    p.extend_from_slice(&[0; 8]); // uploaded
    p.extend_from_slice(&event.to_be_bytes());
    p.extend_from_slice(&[127, 0, 0, n]);
    p.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // key, numwant -1
    p.extend_from_slice(&port.to_be_bytes());
    p
}

#[test]
fn udp_announce_and_scrape_exact_bytes() {
    let addr = server(|c| c.interval = 77);
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let conn = udp_connect(&sock, addr);
    assert_eq!(udp_connect(&sock, addr), conn, "stable within the minute, for one address");
    assert!(udp(&sock, addr, &udp_announce(&conn, 2, 2, 7002)).is_some());
    assert!(udp(&sock, addr, &udp_announce(&conn, 3, 2, 7003)).is_some());
    let r = udp(&sock, addr, &udp_announce(&conn, 1, 2, 7001)).unwrap();
    // action 1, transaction, interval 77, 2 leechers, 1 seeder, then the two others.
    assert_eq!(&r[..20], &[0, 0, 0, 1, 9, 9, 9, 9, 0, 0, 0, 77, 0, 0, 0, 2, 0, 0, 0, 1]);
    let mut peers: Vec<&[u8]> = r[20..].chunks(6).collect();
    peers.sort();
    assert_eq!(peers, [&[127, 0, 0, 2, 0x1b, 0x5a][..], &[127, 0, 0, 3, 0x1b, 0x5b]]);

    let mut scrape = conn.to_vec();
    scrape.extend_from_slice(&[0, 0, 0, 2, 5, 5, 5, 5]);
    scrape.extend_from_slice(&HASH);
    scrape.extend_from_slice(&[1; 20]);
    let r = udp(&sock, addr, &scrape).unwrap();
    // seeders, completed, leechers per hash; an unknown hash is all zeros.
    assert_eq!(
        r,
        [&[0, 0, 0, 2, 5, 5, 5, 5, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2][..], &[0; 12]].concat()
    );
}

#[test]
fn udp_bad_datagrams_are_dropped_or_refused() {
    let addr = server(|_| {});
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let conn = udp_connect(&sock, addr);
    let good = udp_announce(&conn, 1, 0, 7001);
    let mut forged = good.clone();
    forged[0] ^= 1;
    let mut no_protocol_id = vec![0u8; 16];
    no_protocol_id[15] = 1;
    let mut bad_action = good.clone();
    bad_action[11] = 7;
    // Never answered: short, a wrong connection id, a connect without the protocol id, an
    // unknown action, a truncated announce, a scrape that is not whole hashes.
    for p in [&b""[..], &[0; 15], &forged, &no_protocol_id, &bad_action, &good[..97], &good[..40]] {
        assert_eq!(udp(&sock, addr, p), None, "{:?}", p);
    }
    // Another source address does not share our id.
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(udp(&other, addr, &good), None);
    // Refused with an error reply (action 3): an unknown event, port 0.
    for p in [udp_announce(&conn, 1, 9, 7001), udp_announce(&conn, 1, 0, 0)] {
        let r = udp(&sock, addr, &p).unwrap();
        assert_eq!(&r[..8], &[0, 0, 0, 3, 9, 9, 9, 9]);
        assert!(r.len() > 8);
    }
    // The server is still there.
    assert!(udp(&sock, addr, &good).is_some());
}
