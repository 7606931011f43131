//! One peer connection = two OS threads on blocking `std::net` sockets (docs/design.md,
//! "Threads and channels").
//!
//! The reader thread connects (outgoing) or takes the accepted stream (incoming), does the
//! BEP 3 handshake, then only decodes frames and forwards them to the chooser as `Event`s.
//! The writer thread only encodes, waits for the pacer's grant before each block when
//! there is an upload cap (pacer.rs), and writes. Neither thread touches torrent state; the chooser decides everything.
//!
//! Deadlines live in the chooser, not in `SO_RCVTIMEO` (network simulators lack it): to
//! drop a peer the chooser calls `shutdown()` on its clone of the stream, which wakes the
//! blocked reader, and drops the `Cmd` sender, which ends the writer.

use crate::bell::{Rx, Tx};
use crate::chooser::MAX_QUEUED_REQUESTS;
use crate::meter::{lock_bucket, SharedBucket};
use crate::pacer::Pace;
use crate::peer::{self, invalid, Handshake, Message};
use crate::pieces::{Block, Geometry, BLOCK};
use crate::storage::Storage;
use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, Sender};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Anything → chooser.
#[derive(Debug)]
pub enum Event {
    /// The acceptor took a connection; the chooser decides whether to keep it.
    Incoming(TcpStream),
    /// TCP is up; `stream` is the chooser's handle for `shutdown()`.
    Connected { id: u64, stream: TcpStream },
    /// The peer's handshake arrived and named our torrent.
    Handshake { id: u64, peer_id: [u8; 20] },
    /// The messages that were already buffered together (at most one read buffer's
    /// worth): the chooser wakes once for them, not once per block.
    Msgs { id: u64, msgs: Vec<Message> },
    /// A block went out on the wire.
    Sent { id: u64, block: Block },
    /// The connection ended; `reason` says why, in one line.
    Closed { id: u64, reason: String },
}

/// Chooser → one writer.
#[derive(Debug)]
pub enum Cmd {
    Send(Message),
    /// Queue a block for upload; the chooser has checked that the piece is verified.
    Serve(Block),
    Cancel(Block),
    /// Send choke and drop every queued block (BEP 3: a choke discards pending requests).
    Choke,
    /// From the pacer: send the next block, `n` bytes of the upload cap are paid for it.
    Grant(u64),
}

pub enum Target {
    Outgoing(SocketAddr),
    Incoming(TcpStream),
}

/// What every connection of one torrent shares.
pub struct Shared {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub geo: Geometry,
    pub storage: Arc<Storage>,
    /// The upload pacer, when there is an upload cap.
    pub pacer: Option<Tx<Pace>>,
    /// The download bucket, when there is a download cap.
    pub down: Option<SharedBucket>,
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    /// The IPv4 address we listen on (`--bind`), which our dials come from too.
    pub bind: Option<Ipv4Addr>,
    pub events: Sender<Event>,
}

/// One connection's end of its link to the session: the chooser's commands, and whether
/// the chooser has dropped the connection already.
pub struct Line {
    pub cmds: Rx<Cmd>,
    pub gone: Arc<AtomicBool>,
}

/// Hand each connection `listener` accepts to `take` until `take` returns false; `who`
/// prefixes the log line. Out of descriptors (EMFILE) the same accept fails again at once:
/// back off rather than spin.
pub fn accept_each(listener: TcpListener, who: &str, mut take: impl FnMut(TcpStream) -> bool) {
    let mut pause = Duration::from_millis(10);
    for s in listener.incoming() {
        match s {
            Ok(s) => {
                if !take(s) {
                    return;
                }
                pause = Duration::from_millis(10);
            }
            Err(e) => {
                log::warn!("{}accept failed: {} (pausing {:?})", who, e, pause);
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

pub fn spawn(id: u64, target: Target, shared: Arc<Shared>, line: Line) {
    let name = format!("peer-{}", id);
    let spawned = thread::Builder::new().name(name).stack_size(128 * 1024).spawn(move || {
        let gone = Arc::clone(&line.gone);
        let ended = reader(id, target, &shared, line);
        let reason = ended.map_or_else(|e| e.to_string(), |()| "connection closed".into());
        post(&shared, &gone, Event::Closed { id, reason });
    });
    if let Err(e) = spawned {
        log::error!("cannot start a thread for peer {}: {}", id, e);
    }
}

/// Post an event to the chooser, unless it has dropped this connection meanwhile: then
/// nobody wants the news, and a full event channel (a flood of connections) must not keep
/// the thread alive. False: stop.
fn post(sh: &Shared, gone: &AtomicBool, mut ev: Event) -> bool {
    while !gone.load(Ordering::Relaxed) {
        match sh.events.send_timeout(ev, Duration::from_millis(100)) {
            Ok(()) => return true,
            Err(SendTimeoutError::Timeout(e)) => ev = e,
            Err(SendTimeoutError::Disconnected(_)) => return false,
        }
    }
    false
}

/// Dial `to` from the address we listen on. std dials from the host's default address
/// (127.0.0.1 on loopback), so every tyrant of a one-machine swarm would look like one host,
/// and clients that know peers by IP take them for one: transmission refuses a second
/// "127.0.0.1" once the first is a seed. std has no bind-before-connect, so this asks libc;
/// SO_SNDTIMEO bounds connect() on Linux, and is cleared after, as writes must block.
fn dial(from: Option<Ipv4Addr>, to: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if let (Some(from), SocketAddr::V4(to)) = (from, to) {
        use std::os::unix::io::FromRawFd;
        #[repr(C)]
        struct SockaddrIn(u16, u16, [u8; 4], [u8; 8]);
        extern "C" {
            fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
            fn bind(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
            fn connect(fd: i32, addr: *const SockaddrIn, len: u32) -> i32;
            fn setsockopt(fd: i32, level: i32, name: i32, value: *const [i64; 2], len: u32) -> i32;
        }
        let sa = |ip: Ipv4Addr, port: u16| SockaddrIn(2, port.to_be(), ip.octets(), [0; 8]);
        let tv = [timeout.as_secs() as i64, i64::from(timeout.subsec_micros())]; // timeval
        let (sol_socket, so_sndtimeo) = (1, 21);
        // SAFETY: `SockaddrIn` and `[i64; 2]` are laid out as C's sockaddr_in and (64-bit)
        // timeval; a valid fd is owned by `s` at once, so every return closes it unless it
        // is handed out.
        unsafe {
            let fd = socket(2, 1 | 0o2000000, 0); // AF_INET, SOCK_STREAM | SOCK_CLOEXEC
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let s = TcpStream::from_raw_fd(fd);
            let ok = setsockopt(fd, sol_socket, so_sndtimeo, &tv, 16) == 0
                && bind(fd, &sa(from, 0), 16) == 0
                && connect(fd, &sa(*to.ip(), to.port()), 16) == 0
                && setsockopt(fd, sol_socket, so_sndtimeo, &[0, 0], 16) == 0;
            return if ok { Ok(s) } else { Err(io::Error::last_os_error()) };
        }
    }
    let _ = from;
    TcpStream::connect_timeout(&to, timeout)
}

fn reader(id: u64, target: Target, sh: &Arc<Shared>, line: Line) -> io::Result<()> {
    let gone_flag = Arc::clone(&line.gone);
    let gone = &*gone_flag;
    let mut stream = match target {
        Target::Outgoing(addr) => dial(sh.bind, addr, sh.connect_timeout)?,
        Target::Incoming(s) => s,
    };
    // Small control messages must not wait for Nagle; shadow refuses turning it *off*,
    // turning it on is fine, so ignore the error either way.
    let _ = stream.set_nodelay(true);
    if !post(sh, gone, Event::Connected { id, stream: stream.try_clone()? }) {
        return Ok(());
    }
    // One torrent per process, so both sides may send their handshake at once.
    let ours =
        Handshake { reserved: peer::EXTENSION_BIT, info_hash: sh.info_hash, peer_id: sh.peer_id };
    stream.write_all(&ours.encode())?;
    let mut buf = [0u8; 68];
    stream.read_exact(&mut buf)?;
    let theirs = Handshake::decode(&buf).map_err(invalid)?;
    if theirs.info_hash != sh.info_hash {
        return Err(invalid("handshake for another torrent (wrong info-hash)"));
    }
    if theirs.reserved[5] & 0x10 != 0 {
        // Before the chooser hears of the peer, so nothing else writes to it yet.
        // Half our bound: a served block leaves `serving` only when the chooser hears it was
        // sent, so a peer at exactly the bound would see its next request dropped and wait
        // minutes for that block (libtorrent did, on the last block of 512 MiB).
        let mut b = Vec::new();
        Message::Reqq(MAX_QUEUED_REQUESTS as u32 / 2).encode(&mut b);
        stream.write_all(&b)?;
    }
    if !post(sh, gone, Event::Handshake { id, peer_id: theirs.peer_id }) {
        return Ok(());
    }

    let wstream = stream.try_clone()?;
    let wsh = Arc::clone(sh);
    let builder = thread::Builder::new().name(format!("peer-{}-w", id)).stack_size(128 * 1024);
    builder.spawn(move || {
        let shut = wstream.try_clone();
        if let Err(e) = writer(id, wstream, &wsh, line) {
            log::debug!("peer {}: writer stopped: {}", id, e);
            // Nothing serves this connection any more: end the reader too, so the chooser
            // hears `Closed` instead of keeping a half-dead peer.
            if let Ok(s) = shut {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    })?;

    let max_frame = peer::max_frame(&sh.geo);
    let mut rd = io::BufReader::with_capacity(READ_BUFFER, stream);
    let mut batch: Vec<Message> = Vec::new();
    loop {
        let msg = peer::read_message(&mut rd, max_frame)?;
        msg.check(&sh.geo).map_err(invalid)?;
        if let Message::Piece { ref data, .. } = msg {
            // We only ever request blocks of at most BLOCK bytes; anything larger is junk,
            // and refusing it bounds what the event queue can hold per message.
            if data.len() > BLOCK as usize {
                return Err(invalid("piece larger than any block we request"));
            }
            if let Some(down) = &sh.down {
                pay_download(down, data.len() as u64);
            }
        }
        batch.push(msg);
        if whole_frame_buffered(rd.buffer()) {
            continue;
        }
        if !post(sh, gone, Event::Msgs { id, msgs: std::mem::take(&mut batch) }) {
            return Ok(());
        }
    }
}

/// The reader's buffer; also the most payload one `Event::Msgs` can carry.
const READ_BUFFER: usize = 64 * 1024;

/// Does `buf` start with a complete frame? Then reading it will not block.
fn whole_frame_buffered(buf: &[u8]) -> bool {
    buf.get(..4).map_or(false, |p| buf.len() - 4 >= peer::be32(p) as usize)
}

/// Download cap: charge `n` bytes and sleep off any debt. While a reader sleeps it stops
/// reading, and TCP's flow control slows the sender down.
fn pay_download(down: &SharedBucket, n: u64) {
    let now = Instant::now();
    let mut bucket = lock_bucket(down);
    let wait = bucket.wait_time(now);
    bucket.take(now, n);
    drop(bucket);
    thread::sleep(wait);
}

fn writer(id: u64, mut stream: TcpStream, sh: &Shared, line: Line) -> io::Result<()> {
    let Line { cmds, gone } = line;
    let mut queue: VecDeque<Block> = VecDeque::new();
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut block = Vec::new();
    // With an upload cap blocks wait for the pacer's grant, which may cover several
    // (pacer.rs); without one each goes out at once.
    let (mut asked, mut granted) = (false, 0u64);
    loop {
        if let (Some(pacer), false, false, 0) = (&sh.pacer, queue.is_empty(), asked, granted) {
            let len = queue.iter().take(256).map(|b| u64::from(b.length)).sum();
            let _ = pacer.send(Pace::Ask { id, len });
            asked = true;
        }
        // Wait for a command when there is nothing to send now: forever-ish (keep-alive
        // then), or until the pacer's grant arrives.
        let ready = !queue.is_empty() && (sh.pacer.is_none() || granted > 0);
        let first = if ready {
            cmds.try_recv().ok()
        } else {
            match cmds.recv_timeout(Some(sh.keepalive)) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        };
        let idle_timeout = first.is_none() && !ready;
        // Drain everything pending so control messages go out in one write.
        let mut next = first;
        while let Some(c) = next {
            match c {
                Cmd::Send(m) => m.encode(&mut out),
                Cmd::Serve(b) => {
                    if queue.len() < MAX_QUEUED_REQUESTS && !queue.contains(&b) {
                        queue.push_back(b);
                    } else {
                        log::debug!("peer {}: request queue full, dropping a request", id);
                    }
                }
                Cmd::Cancel(b) => queue.retain(|&q| q != b),
                Cmd::Choke => {
                    queue.clear();
                    Message::Choke.encode(&mut out);
                }
                Cmd::Grant(n) => {
                    granted = n;
                    asked = false;
                }
            }
            next = cmds.try_recv().ok();
        }
        if idle_timeout {
            Message::KeepAlive.encode(&mut out);
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
        // Uncapped one block at a time (then the commands); capped every block the grant
        // covers.
        let mut sent = false;
        while let Some(b) = queue.front().copied() {
            let len = u64::from(b.length);
            if sh.pacer.as_ref().map_or(sent, |_| len > granted) {
                break;
            }
            (granted, sent) = (granted.saturating_sub(len), true);
            queue.pop_front();
            block.clear();
            block.extend_from_slice(&peer::piece_header(b.index, b.begin, b.length));
            block.resize(13 + b.length as usize, 0);
            sh.storage.read(b.index, b.begin, &mut block[13..])?;
            stream.write_all(&block)?;
            if !post(sh, &gone, Event::Sent { id, block: b }) {
                return Ok(());
            }
        }
        if let (Some(pacer), true) = (&sh.pacer, granted > 0) {
            // Cancelled or choked while waiting: the tokens go back for the others.
            let _ = pacer.send(Pace::Unused { id, len: granted });
            granted = 0;
        }
    }
}
