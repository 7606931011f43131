//! Crash safety (issue "Hostile peers, broken trackers, crashes", part 5): SIGKILL at random
//! (seeded) moments while downloading and while seeding loses no verified piece; a full disk
//! or an unwritable directory is a clear one-line error and an exit, never a corrupt file.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tyrant::metainfo::Metainfo;
use tyrant::peer::{read_message, Handshake, Message};
use tyrant::pieces::Block;

fn field(stats: &Path, prefix: &str, key: &str) -> Option<u64> {
    stats_field(stats, prefix, key).and_then(|v| v.parse().ok())
}

/// Ten SIGKILLs at seeded random moments while a leecher downloads from a seeder and
/// uploads to a second leecher; every restart must find at least every piece it had
/// reported verified before the kill, and the file ends byte-identical.
#[test]
fn sigkill_at_random_moments_keeps_every_verified_piece() {
    let dir = TempDir::new("crash");
    let (_tracker, url) = start_tracker(2);
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = payload(3 * 1024 * 1024, 11);
    std::fs::write(seed_dir.join("k.bin"), &data).unwrap();
    let t = dir.path().join("k.torrent");
    make_torrent(&seed_dir.join("k.bin"), &url, 16, &t);
    let pieces = Metainfo::load(&t).unwrap().num_pieces() as u64;
    // Slow enough that ten kills land mid-download.
    let mut seeder = start_peer("seeder", &t, &seed_dir, &["--seed", "--up", "200"]);
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let _other = start_peer("other leecher", &t, &other_dir, &["--up", "100"]);

    let ld = dir.path().join("victim");
    std::fs::create_dir_all(&ld).unwrap();
    let mut x: u64 = 0x5eed;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut kills = 0;
    let mut attempt = 0;
    let mut last_had = 0u64;
    loop {
        attempt += 1;
        assert!(attempt < 40, "never completed");
        let stats = ld.join(format!("stats{}.txt", attempt));
        let mut p = start_peer(
            "victim",
            &t,
            &ld,
            &["--up", "100", "--stop-after-download", "--stats", stats.to_str().unwrap()],
        );
        // Wait for the start line, then check the resume found everything verified before.
        let end = Instant::now() + Duration::from_secs(20);
        while field(&stats, "start", "resumed").is_none() {
            assert!(Instant::now() < end, "no start line");
            std::thread::sleep(Duration::from_millis(20));
        }
        let resumed = field(&stats, "start", "resumed").unwrap();
        assert!(
            resumed >= last_had,
            "restart {} resumed {} pieces, but {} were verified before the kill",
            attempt,
            resumed,
            last_had
        );
        if kills == 10 {
            assert!(p.wait_timeout(Duration::from_secs(120)).map_or(false, |s| s.success()));
            break;
        }
        // Kill at a random moment 0.2–1.7 s in, unless it finishes first.
        let wait = Duration::from_millis(200 + rnd() % 1500);
        let exited = p.wait_timeout(wait);
        if exited.is_some() {
            break;
        }
        last_had = field(&stats, "tick", "have").unwrap_or(resumed);
        p.child.kill().unwrap();
        p.child.wait().unwrap();
        kills += 1;
        // Kill the seeder too, twice, mid-upload: a restarted seeder must still verify
        // complete (seeding never writes).
        if kills == 3 || kills == 7 {
            seeder.child.kill().unwrap();
            seeder.child.wait().unwrap();
            seeder = start_peer("seeder", &t, &seed_dir, &["--seed", "--up", "200"]);
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                seeder.child.try_wait().unwrap().is_none(),
                "restarted seeder exited: its data was damaged"
            );
        }
    }
    assert!(kills >= 5, "only {} kills landed before completion", kills);
    assert!(files_equal(&seed_dir.join("k.bin"), &ld.join("k.bin")));
    assert!(last_had < pieces);
}

/// A block of a piece the peer has not announced is never served: the request closes the
/// connection and no PIECE comes back.
#[test]
fn unverified_pieces_are_never_served() {
    let dir = TempDir::new("noserve");
    let (_tracker, url) = start_tracker(2);
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("n.bin"), payload(2 * 1024 * 1024, 12)).unwrap();
    let t = dir.path().join("n.torrent");
    make_torrent(&seed_dir.join("n.bin"), &url, 16, &t);
    let meta = Metainfo::load(&t).unwrap();
    let _seeder = start_peer("seeder", &t, &seed_dir, &["--seed", "--up", "64"]);
    let ld = dir.path().join("l");
    std::fs::create_dir_all(&ld).unwrap();
    let stats = ld.join("stats.txt");
    let _l = start_peer("leecher", &t, &ld, &["--stats", stats.to_str().unwrap()]);
    let end = Instant::now() + Duration::from_secs(30);
    let port: u16 = loop {
        assert!(Instant::now() < end);
        if let Some(l) = stats_field(&stats, "start", "listen") {
            if field(&stats, "tick", "have").unwrap_or(0) >= 2 {
                break l.rsplit(':').next().unwrap().parse().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(
        &Handshake { reserved: [0; 8], info_hash: meta.info_hash, peer_id: [7; 20] }.encode(),
    )
    .unwrap();
    let mut hs = [0u8; 68];
    c.read_exact(&mut hs).unwrap();
    let mut out = Vec::new();
    Message::Interested.encode(&mut out);
    c.write_all(&out).unwrap();
    // Learn what it has, wait for an unchoke, then ask for a piece it does not have.
    let n = meta.num_pieces() as usize;
    let mut has = vec![false; n];
    let mut unchoked = false;
    let end = Instant::now() + Duration::from_secs(20);
    while !unchoked && Instant::now() < end {
        match read_message(&mut c, 1 << 20) {
            Ok(Message::Bitfield(b)) => has = tyrant::peer::bytes_to_bits(&b, n),
            Ok(Message::Have(i)) => has[i as usize] = true,
            Ok(Message::Unchoke) => unchoked = true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("connection lost: {}", e),
        }
    }
    assert!(unchoked, "never unchoked");
    let missing = (0..n).rev().find(|&i| !has[i]).expect("leecher already complete") as u32;
    let mut out = Vec::new();
    Message::Request(Block { index: missing, begin: 0, length: 16384 }).encode(&mut out);
    c.write_all(&out).unwrap();
    loop {
        match read_message(&mut c, 1 << 20) {
            Ok(Message::Piece { index, .. }) => {
                assert_ne!(index, missing, "served a piece it had not verified")
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("request for an unverified piece neither refused nor closed")
            }
            Err(_) => break, // closed: the defined reaction
        }
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Run a shell script in a private mount namespace (as root: `unshare -m`; otherwise a user
/// namespace, `unshare -Urm`), so a tiny tmpfs can stand in for a full disk.
fn in_mount_ns(script: &str) -> std::process::Output {
    let mut cmd = Command::new("unshare");
    cmd.arg(if is_root() { "-m" } else { "-Urm" }).args(["sh", "-c", script]);
    cmd.output().expect("unshare (util-linux) is needed for the full-disk test")
}

/// A disk that fills up mid-download: one clear error line, exit status 1, and every piece
/// that was reported verified is intact (a restart on a roomy disk resumes from them).
#[test]
fn full_disk_is_a_clear_error_and_no_corruption() {
    let dir = TempDir::new("fulldisk");
    let seed_dir = dir.path().join("seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    let data = payload(3 * 1024 * 1024, 13);
    std::fs::write(seed_dir.join("f.bin"), &data).unwrap();
    let t = dir.path().join("f.torrent");
    make_torrent(&seed_dir.join("f.bin"), "http://127.0.0.1:1/announce", 16, &t);
    let seed_stats = seed_dir.join("stats.txt");
    let _seeder =
        start_peer("seeder", &t, &seed_dir, &["--seed", "--stats", seed_stats.to_str().unwrap()]);
    let end = Instant::now() + Duration::from_secs(20);
    let seed_addr = loop {
        assert!(Instant::now() < end);
        if let Some(l) = stats_field(&seed_stats, "start", "listen") {
            break l;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let small = dir.path().join("small");
    let saved = dir.path().join("saved");
    std::fs::create_dir_all(&small).unwrap();
    std::fs::create_dir_all(&saved).unwrap();
    let stats = dir.path().join("full-stats.txt");
    // 1 MiB of room for a 3 MiB file; copy what was written out before the namespace goes.
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs {small} && {bin} --bind 127.0.0.1 --port 0 -q --dir {small} --peer {seed} --stats {stats} --time-limit 60 {t}; rc=$?; cp {small}/f.bin {saved}/ 2>/dev/null; exit $rc",
        small = small.display(),
        bin = bin().display(),
        seed = seed_addr,
        stats = stats.display(),
        t = t.display(),
        saved = saved.display()
    );
    let o = in_mount_ns(&script);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "exit status; stderr: {}", err);
    let last = err.trim_end().lines().last().unwrap_or("");
    assert!(
        last.starts_with("tyrant: disk write failed") && last.contains("No space left"),
        "stderr: {}",
        err
    );
    assert_eq!(stats_field(&stats, "done", "complete").as_deref(), Some("false"));
    let verified_before = field(&stats, "tick", "have").unwrap_or(0);
    // Resume from what was saved, on a disk with room: every piece reported verified is
    // there, and the download completes byte-identical.
    let stats2 = saved.join("stats2.txt");
    let mut again = start_peer(
        "resume",
        &t,
        &saved,
        &["--peer", &seed_addr, "--stop-after-download", "--stats", stats2.to_str().unwrap()],
    );
    assert!(again.wait_timeout(Duration::from_secs(60)).map_or(false, |s| s.success()));
    let resumed = field(&stats2, "start", "resumed").unwrap();
    assert!(
        resumed >= verified_before && resumed > 0,
        "resumed {} < {} verified before the disk filled",
        resumed,
        verified_before
    );
    assert!(files_equal(&seed_dir.join("f.bin"), &saved.join("f.bin")));
}

/// A directory that cannot be written: one line, exit status 1, nothing half-made.
#[test]
fn unwritable_directory_is_a_clear_error() {
    let dir = TempDir::new("unwritable");
    let src = dir.path().join("u.bin");
    std::fs::write(&src, payload(100_000, 14)).unwrap();
    let t = dir.path().join("u.torrent");
    make_torrent(&src, "http://127.0.0.1:1/announce", 16, &t);
    // A path under a regular file cannot be a directory, even for root.
    let bad = src.join("sub");
    let o = run(&["--port", "0", "--dir", bad.to_str().unwrap(), t.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", err);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", err);
    assert!(err.starts_with("tyrant: "), "{}", err);
    // A read-only file system.
    let ro = dir.path().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let script = format!(
        "mount -t tmpfs -o ro,size=1m tmpfs {ro} && {bin} --port 0 --dir {ro} {t}",
        ro = ro.display(),
        bin = bin().display(),
        t = t.display()
    );
    let o = in_mount_ns(&script);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", err);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", err);
    assert!(err.contains("Read-only file system"), "{}", err);
}
