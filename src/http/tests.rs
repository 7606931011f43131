//! Unit tests for `crate::http`: URL parsing and the deadline watchdog. The request/reply
//! paths are exercised end to end against scripted servers in `tracker/tests.rs`.

use super::*;
use std::net::TcpListener;

#[test]
fn parses_urls() {
    let u = parse_http_url("http://[::1]:81/a/b?x=1").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("::1", 81, "/a/b?x=1"));
    assert_eq!(u.authority, "[::1]:81");
    let u = parse_http_url("HTTP://Example.com?x").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.target.as_str()), ("Example.com", 80, "/?x"));
    let u = parse_http_url("http://10.0.0.1").unwrap();
    assert_eq!((u.port, u.target.as_str()), (80, "/"));
}

#[test]
fn watchdog_alone_enforces_the_deadline() {
    // What the simulator leaves us: no read timeout, only the watchdog's shutdown.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_s, _) = l.accept().unwrap();
    let t = Instant::now();
    let _w = watchdog(&c, t + Duration::from_millis(200));
    let mut b = [0u8; 1];
    let n = c.read(&mut b);
    assert!(matches!(n, Ok(0) | Err(_)));
    assert!(t.elapsed() >= Duration::from_millis(200), "the read ended at the deadline");
    assert!(t.elapsed() < Duration::from_secs(2));
    // Dropping an unfired watchdog cancels it.
    let w = watchdog(&c, Instant::now() + Duration::from_secs(60));
    drop(w);
}
