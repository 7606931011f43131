//! Unit tests for `crate::tracker`: URL building, reply parsing, announces over HTTP against scripted servers, and the announcer thread.

use super::*;
use crate::bencode::Dict;
use crate::http::parse_http_reply;
use crate::trackerd;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Instant;

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
    assert!(u.starts_with("http://t/a?passkey=xyz&info_hash=%AB%AB"), "{}", u);
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
    assert!(e.to_string().contains("https trackers are not supported"), "{}", e);
}

fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((a, port))
}

#[test]
fn parse_response_table() {
    let ok = |b: &[u8]| parse_response(b).unwrap_or_else(|e| panic!("{:?}: {}", b, e));
    let r = ok(b"d8:intervali1800e5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50e");
    assert_eq!(r.interval, Duration::from_secs(1800));
    assert_eq!(r.peers, vec![v4([127, 0, 0, 1], 6881), v4([10, 0, 0, 2], 80)]);
    assert_eq!((r.min_interval, r.complete, r.incomplete), (None, None, None));
    assert_eq!((r.warning.as_deref(), r.tracker_id.as_deref()), (None, None));

    let r = ok(b"d8:completei5e10:incompletei7e8:intervali60e12:min intervali30e\
        5:peersld2:ip9:127.0.0.57:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti7000eed2:ip3:::14:porti1ee\
        d2:ip9:not-an-ip4:porti1eed2:ip8:10.0.0.14:porti70000eei5ee\
        10:tracker id3:xyz15:warning message4:slowe");
    assert_eq!(r.peers, vec![v4([127, 0, 0, 5], 7000), "[::1]:1".parse().unwrap()]);
    assert_eq!(r.min_interval, Some(Duration::from_secs(30)));
    assert_eq!((r.complete, r.incomplete), (Some(5), Some(7)));
    assert_eq!(r.warning.as_deref(), Some("slow"));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));

    let mut p6 = b"d8:intervali5e5:peers0:6:peers618:".to_vec();
    p6.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1a, 0xe1]);
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
        (b"d14:failure reason9:not founde", |e| *e == TrackerError::Failure("not found".into())),
        (b"d14:failure reason4:nope8:intervali5ee", |e| matches!(e, TrackerError::Failure(_))),
        (b"d14:failure reasoni3ee", |e| matches!(e, TrackerError::Failure(_))),
        (
            b"d8:intervali5e5:peers7:1234567e",
            |e| matches!(e, TrackerError::BadReply(m) if m.contains("multiple of 6")),
        ),
        (
            b"d8:intervali5e6:peers65:12345e",
            |e| matches!(e, TrackerError::BadReply(m) if m.contains("multiple of 18")),
        ),
        (b"d5:peers0:e", |e| matches!(e, TrackerError::BadReply(m) if m.contains("no interval"))),
        (b"d8:intervali-1ee", |e| matches!(e, TrackerError::BadReply(_))),
        (b"d8:interval2:60e", |e| matches!(e, TrackerError::BadReply(_))),
        (b"d8:intervali5e5:peersi3ee", |e| matches!(e, TrackerError::BadReply(_))),
        (b"li1ee", |e| matches!(e, TrackerError::BadReply(m) if m.contains("not a dictionary"))),
        (
            b"<html>502 Bad Gateway</html>",
            |e| matches!(e, TrackerError::BadReply(m) if m.contains("<html>")),
        ),
        (b"", |e| matches!(e, TrackerError::BadReply(_))),
        (b"d8:intervali5e5:peers6:12", |e| matches!(e, TrackerError::BadReply(_))),
        (b"d8:intervali5ee trailing", |e| matches!(e, TrackerError::BadReply(_))),
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
    assert!(TrackerError::Io("x".into()).to_string().starts_with("tracker unreachable: "));
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
    let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
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
    assert!(head.contains(&format!("\r\nHost: {}\r\n", host)), "{}", head);
    assert!(head.contains("\r\nUser-Agent: tyrant/0.1\r\nConnection: close\r\n\r\n"), "{}", head);
}

#[test]
fn http_reply_without_length_is_read_to_eof() {
    let mut r = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n".to_vec();
    r.extend_from_slice(OK_BODY);
    let (base, _seen) = scripted(vec![r]);
    assert!(announce(&base, &req(), TIMEOUT).is_ok());
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
        format!("HTTP/1.1 301 Moved\r\nlocation: {}\r\nContent-Length: 0\r\n\r\n", to).into_bytes()
    };
    let (base, _seen) =
        scripted(vec![hop("/a"), hop("/b"), hop("/c"), hop("/d"), http_ok(OK_BODY)]);
    match announce(&base, &req(), TIMEOUT) {
        Err(TrackerError::Http(m)) => assert!(m.contains("redirects"), "{}", m),
        other => panic!("{:?}", other),
    }
    let (base, _seen) = scripted(vec![hop("https://secure/announce")]);
    assert!(matches!(announce(&base, &req(), TIMEOUT), Err(TrackerError::BadUrl(_))));
}

#[test]
fn http_error_status() {
    let (base, _seen) =
        scripted(vec![b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found".to_vec()]);
    match announce(&base, &req(), TIMEOUT) {
        Err(TrackerError::Http(m)) => assert!(m.contains("404 Not Found"), "{}", m),
        other => panic!("{:?}", other),
    }
    let body = b"d14:failure reason12:unregisterede";
    let mut r =
        format!("HTTP/1.0 400 Bad Request\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    r.extend_from_slice(body);
    let (base, _seen) = scripted(vec![r, b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()]);
    assert_eq!(announce(&base, &req(), TIMEOUT), Err(TrackerError::Failure("unregistered".into())));
    assert!(matches!(announce(&base, &req(), TIMEOUT), Err(TrackerError::Http(_))));
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
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "{:?}", took);
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
        request: AnnounceRequest {
            info_hash: [7; 20],
            peer_id: *b"-TY0001-announcer001",
            port: 7001,
            ip: Some("127.0.0.9".to_string()),
            numwant: 30,
            key: Some(0x1234),
            ..AnnounceRequest::default()
        },
        timeout: Duration::from_secs(2),
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_secs(60),
        time_scale: 1.0,
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
    q.split('&').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
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
    assert!(gap >= Duration::from_millis(80) && gap < Duration::from_millis(1000), "{:?}", gap);

    counters.left.store(0, Ordering::Relaxed);
    ctl_tx.send(TrackerCtl::Completed).unwrap();
    let (_, third) = seen.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(param(&third, "event"), Some("completed"));
    assert_eq!(param(&third, "left"), Some("0"));
    let (_, fourth) = seen.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(param(&fourth, "event"), None);

    ctl_tx.send(TrackerCtl::Stop).unwrap();
    h.join().unwrap();
    let stops: Vec<String> =
        seen.try_iter().map(|(_, t)| t).filter(|t| param(t, "event") == Some("stopped")).collect();
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
    assert!(gap >= Duration::from_millis(180) && gap < Duration::from_secs(2), "{:?}", gap);
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
    assert_eq!(urls, vec![(dead, false), (good.clone(), true), (good.clone(), true), (good, true)]);
    ctl_tx.send(TrackerCtl::Stop).unwrap();
    h.join().unwrap();
    assert!(seen2.try_recv().is_err(), "tier 1 must not be asked");
}

#[test]
fn announcer_backs_off_when_every_tracker_fails() {
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let (rep_tx, rep_rx) = crossbeam_channel::unbounded();
    let mut cfg = config(vec![vec![closed_port_url()]]);
    // Steps of 100 ms and more, so that a loaded machine's scheduling delays (tens of ms,
    // seen to fail this test with 20 ms steps) stay small beside them.
    cfg.retry_min = Duration::from_millis(100);
    cfg.retry_max = Duration::from_millis(1000);
    let h = spawn_announcer(cfg, Arc::default(), ctl_rx, rep_tx);
    let mut times = Vec::new();
    for _ in 0..6 {
        let r = rep_rx.recv_timeout(TIMEOUT).unwrap();
        assert!(matches!(r.result, Err(TrackerError::Io(_))));
        times.push(Instant::now());
    }
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // 100, 200, 400, 800, 1000 (capped) ms.
    for (g, want) in gaps.iter().zip([100u64, 200, 400, 800, 1000]) {
        assert!(*g >= Duration::from_millis(want * 8 / 10), "{:?}", gaps);
    }
    assert!(gaps[3] > gaps[0] * 4, "{:?}", gaps);
    // Capped: 1,000 ms rather than the 1,600 ms an uncapped doubling would give. Relative to
    // the previous gap, so scheduling delay on a loaded machine (which adds to both) does
    // not fail it.
    assert!(gaps[4] < gaps[3] * 9 / 5, "capped: {:?}", gaps);
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
    assert!(t0.elapsed() >= Duration::from_millis(180), "periodic, not back to back");

    counters.left.store(0, Ordering::Relaxed);
    ctl_tx.send(TrackerCtl::Completed).unwrap();
    let r = rep_rx.recv_timeout(TIMEOUT).unwrap().result.unwrap();
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
    let scrape = scrape_counts(addr, &[7; 20]);
    assert_eq!(scrape, (1, 1, 1));

    ctl_tx.send(TrackerCtl::Stop).unwrap();
    h.join().unwrap();
    assert!(rep_rx.try_iter().all(|r| r.result.is_ok()));
    assert_eq!(scrape_counts(addr, &[7; 20]), (0, 1, 1), "stopped removed us");
}

fn scrape_counts(addr: SocketAddr, h: &[u8; 20]) -> (i64, i64, i64) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET /scrape?info_hash={} HTTP/1.0\r\n\r\n", percent_encode(h)).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let reply = parse_http_reply(&raw).unwrap();
    let v = bencode::decode(&reply.body).unwrap();
    let files: &Dict = v.as_dict().unwrap().dict("files").unwrap();
    let f = files.map.get(&h[..]).unwrap().as_dict().unwrap();
    (f.int("complete").unwrap(), f.int("incomplete").unwrap(), f.int("downloaded").unwrap())
}
