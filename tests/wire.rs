//! A hand-driven peer on a raw 127.0.0.1 socket against a real `tyrant` seeder: the BEP 3
//! exchange works byte for byte, and protocol violations get the connection dropped while
//! the seeder goes on serving others.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tyrant::metainfo::Metainfo;
use tyrant::peer::{read_message, Handshake, Message};
use tyrant::pieces::Block;

struct Seeder {
    _dir: TempDir,
    _proc: Proc,
    port: u16,
    meta: Metainfo,
    data: Vec<u8>,
}

fn start_seeder() -> Seeder {
    let dir = TempDir::new("wire");
    let data = payload(100_000, 5);
    // A subdirectory, so the peer's log (written beside its directory) stays in `dir`.
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("w.bin"), &data).unwrap();
    let t = dir.path().join("w.torrent");
    // No tracker reachable: the seeder only waits for us.
    make_torrent(&seed_dir.join("w.bin"), "http://127.0.0.1:1/announce", 16, &t);
    let meta = Metainfo::load(&t).unwrap();
    let stats = dir.path().join("stats.txt");
    let proc = start_peer("seeder", &t, &seed_dir, &["--seed", "--stats", stats.to_str().unwrap()]);
    let end = Instant::now() + Duration::from_secs(20);
    let port = loop {
        assert!(Instant::now() < end, "seeder did not start");
        if let Some(l) = stats_field(&stats, "start", "listen") {
            break l.rsplit(':').next().unwrap().parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Seeder { _dir: dir, _proc: proc, port, meta, data }
}

fn connect(s: &Seeder, info_hash: [u8; 20], id: u8) -> TcpStream {
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hs = Handshake { reserved: [0; 8], info_hash, peer_id: [id; 20] };
    c.write_all(&hs.encode()).unwrap();
    c
}

fn send(c: &mut TcpStream, m: Message) {
    let mut out = Vec::new();
    m.encode(&mut out);
    c.write_all(&out).unwrap();
}

/// True when the other side closed the connection (EOF or reset) within the timeout.
fn closed(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 65536];
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
    false
}

fn handshake_and_bitfield(s: &Seeder, c: &mut TcpStream) {
    let mut hs = [0u8; 68];
    c.read_exact(&mut hs).unwrap();
    let theirs = Handshake::decode(&hs).unwrap();
    assert_eq!(theirs.info_hash, s.meta.info_hash);
    assert_eq!(&theirs.peer_id[..8], b"-TY0100-");
    let n = s.meta.num_pieces() as usize;
    match read_message(c, 1 << 20).unwrap() {
        Message::Bitfield(b) => {
            assert_eq!(b.len(), (n + 7) / 8);
            // all pieces set, spare bits zero
            let mut want = vec![0xffu8; (n + 7) / 8];
            if n % 8 != 0 {
                *want.last_mut().unwrap() = 0xff << (8 - n % 8);
            }
            assert_eq!(b, want);
        }
        m => panic!("expected bitfield first, got {:?}", m),
    }
}

#[test]
fn seeder_serves_blocks_byte_for_byte() {
    let s = start_seeder();
    let mut c = connect(&s, s.meta.info_hash, 1);
    handshake_and_bitfield(&s, &mut c);
    send(&mut c, Message::Interested);
    // A free slot: the seeder unchokes at once (no need to wait for the 10 s round).
    loop {
        match read_message(&mut c, 1 << 20).unwrap() {
            Message::Unchoke => break,
            Message::KeepAlive | Message::Have(_) => {}
            m => panic!("unexpected {:?}", m),
        }
    }
    // The last piece is short: 100000 = 6*16384 + 1696.
    let last = s.meta.num_pieces() - 1;
    for (index, begin, length) in [(0u32, 0u32, 16384u32), (3, 100, 5000), (last, 0, 1696)] {
        send(&mut c, Message::Request(Block { index, begin, length }));
        match read_message(&mut c, 1 << 20).unwrap() {
            Message::Piece { index: i, begin: b, data } => {
                assert_eq!((i, b), (index, begin));
                let off = index as usize * 16384 + begin as usize;
                assert_eq!(&data[..], &s.data[off..off + length as usize]);
            }
            m => panic!("expected piece, got {:?}", m),
        }
    }
}

#[test]
fn protocol_violations_drop_the_peer_and_the_seeder_carries_on() {
    let s = start_seeder();

    let mut wrong = connect(&s, [9; 20], 2);
    assert!(closed(&mut wrong), "wrong info-hash accepted");

    // A request beyond the end of the (short) last piece.
    let mut c = connect(&s, s.meta.info_hash, 3);
    handshake_and_bitfield(&s, &mut c);
    let last = s.meta.num_pieces() - 1;
    send(&mut c, Message::Request(Block { index: last, begin: 1024, length: 1024 }));
    assert!(closed(&mut c), "out-of-bounds request accepted");

    // A length prefix far beyond any valid message is refused before allocating.
    let mut c = connect(&s, s.meta.info_hash, 5);
    handshake_and_bitfield(&s, &mut c);
    c.write_all(&[0x7f, 0xff, 0xff, 0xff, 7]).unwrap();
    assert!(closed(&mut c), "oversized message accepted");

    // Garbage instead of a handshake.
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&[b'x'; 68]).unwrap();
    assert!(closed(&mut c), "garbage handshake accepted");

    // ... and a well-behaved peer is still served.
    let mut ok = connect(&s, s.meta.info_hash, 6);
    handshake_and_bitfield(&s, &mut ok);
}

/// A fake seeder that answers every request with garbage: the leecher must count a strike
/// per failed piece, ban it after three, keep none of its data, and never dial it again.
#[test]
fn peer_sending_corrupt_pieces_is_banned_and_nothing_is_kept() {
    use std::net::TcpListener;
    let dir = TempDir::new("corrupt");
    let data = payload(64 * 1024 * 8, 9);
    std::fs::write(dir.path().join("c.bin"), &data).unwrap();
    let t = dir.path().join("c.torrent");
    make_torrent(&dir.path().join("c.bin"), "http://127.0.0.1:1/announce", 64, &t);
    let meta = Metainfo::load(&t).unwrap();
    let leech_dir = dir.path().join("leech");
    std::fs::create_dir_all(&leech_dir).unwrap();

    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_addr = fake.local_addr().unwrap().to_string();
    let stats = leech_dir.join("stats.txt");
    let _leecher = start_peer(
        "leecher",
        &t,
        &leech_dir,
        &["--peer", &fake_addr, "--stats", stats.to_str().unwrap()],
    );
    let (mut c, _) = fake.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut hs = [0u8; 68];
    c.read_exact(&mut hs).unwrap();
    assert_eq!(Handshake::decode(&hs).unwrap().info_hash, meta.info_hash);
    let ours = Handshake { reserved: [0; 8], info_hash: meta.info_hash, peer_id: [b'F'; 20] };
    c.write_all(&ours.encode()).unwrap();
    send(&mut c, Message::Bitfield(vec![0xff]));
    send(&mut c, Message::Unchoke);
    let mut served = 0u64;
    let dropped = loop {
        match read_message(&mut c, 1 << 20) {
            Ok(Message::Request(Block { index, begin, length })) => {
                if served > 40 * 64 * 1024 {
                    break false; // never banned
                }
                served += u64::from(length);
                let mut out = Vec::new();
                Message::Piece { index, begin, data: vec![0xAB; length as usize] }.encode(&mut out);
                if c.write_all(&out).is_err() {
                    break true; // dropped while we were answering
                }
            }
            Ok(_) => {}
            Err(_) => break true,
        }
    };
    assert!(dropped, "the corrupt peer was never dropped");
    // Three whole 64 KiB pieces (maybe a few endgame blocks more) before the ban.
    assert!(served >= 3 * 64 * 1024, "banned after only {} bytes", served);
    // Pieces are hashed on the disk thread, so pieces the peer completed before its third
    // verdict came back are still checked (and fail) after the ban: at least three, at most
    // every piece of the torrent once more.
    let fails = || {
        stats_field(&stats, "tick", "hash_fails").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0)
    };
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end && fails() < 3 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let n = fails();
    assert!((3..=3 + meta.num_pieces()).contains(&n), "hash_fails={}", n);
    assert_eq!(stats_field(&stats, "tick", "have").as_deref(), Some("0"));
    // Banned by address: no new connection within a few seconds.
    fake.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(fake.accept().is_err(), "leecher dialled the banned peer again");
    // Nothing of the garbage reached the disk.
    let on_disk = std::fs::read(leech_dir.join("c.bin")).unwrap_or_default();
    assert!(!on_disk.windows(64).any(|w| w.iter().all(|&b| b == 0xAB)));
}

/// A connection that never sends a handshake is shut down by the chooser's deadline
/// (no socket read timeouts are used).
#[test]
fn silent_connection_is_dropped_after_the_handshake_deadline() {
    let s = start_seeder();
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(45))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    let mut got = 0;
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    assert!(closed, "still open after {:.0} s", secs);
    assert_eq!(got, 68, "the seeder sends its handshake and nothing else");
    assert!(secs > 15.0 && secs < 40.0, "closed after {:.1} s", secs);
}

/// A peer that sets BEP 10's bit gets our extension handshake before anything else, saying
/// how many requests we queue (`reqq`, transmission otherwise keeps thousands in flight and
/// times out the ones we drop); one that does not set it gets none, the bitfield first.
#[test]
fn the_extension_handshake_goes_only_to_peers_that_ask_for_it() {
    let s = start_seeder();
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let reserved = [0, 0, 0, 0, 0, 0x10, 0, 0];
    c.write_all(&Handshake { reserved, info_hash: s.meta.info_hash, peer_id: [9; 20] }.encode())
        .unwrap();
    let mut hs = [0u8; 68];
    c.read_exact(&mut hs).unwrap();
    assert_eq!(Handshake::decode(&hs).unwrap().reserved, reserved, "our extension bit");
    let mut head = [0u8; 6];
    c.read_exact(&mut head).unwrap();
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    assert_eq!((head[4], head[5]), (20, 0), "an extension handshake first");
    let mut dict = vec![0u8; len - 2];
    c.read_exact(&mut dict).unwrap();
    assert_eq!(dict, b"d1:mde4:reqqi2000ee".to_vec());
    assert!(matches!(read_message(&mut c, 1 << 20).unwrap(), Message::Bitfield(_)));
    // Without the bit: the bitfield comes first (handshake_and_bitfield checks it).
    let mut plain = connect(&s, s.meta.info_hash, 2);
    handshake_and_bitfield(&s, &mut plain);
}

/// A leecher dials from the address it listens on (`--bind`), not from the host's default:
/// a one-machine swarm gives every peer its own 127.0.x.y, and clients that know peers by IP
/// must see them apart (transmission refused every tyrant after the first once all of them
/// dialled from 127.0.0.1).
#[test]
fn dials_come_from_the_bind_address() {
    let dir = TempDir::new("bind");
    let src = dir.path().join("b.bin");
    std::fs::write(&src, payload(40_000, 9)).unwrap();
    let t = dir.path().join("b.torrent");
    make_torrent(&src, "http://127.0.0.1:1/announce", 16, &t);
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = peer.local_addr().unwrap().to_string();
    let leech = dir.path().join("leech");
    std::fs::create_dir_all(&leech).unwrap();
    let child = std::process::Command::new(bin())
        .args(["--bind", "127.0.0.7", "--port", "0", "-q", "--peer", &at, "--dir"])
        .arg(&leech)
        .arg(&t)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _proc = Proc { child, name: "leech".into() };
    let (_conn, from) = peer.accept().unwrap();
    assert_eq!(from.ip().to_string(), "127.0.0.7");
}
