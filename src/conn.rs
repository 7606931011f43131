//! One peer connection = two OS threads on blocking `std::net` sockets (docs/design.md,
//! "Threads and channels").
//!
//! The reader thread connects (outgoing) or takes the accepted stream (incoming), does the
//! BEP 3 handshake, then only decodes frames and forwards them to the chooser as `Event`s.
//! The writer thread only encodes, paces piece payload through the token buckets, and
//! writes. Neither thread touches torrent state; the chooser decides everything.
//!
//! Deadlines live in the chooser, not in `SO_RCVTIMEO` (network simulators lack it): to
//! drop a peer the chooser calls `shutdown()` on its clone of the stream, which wakes the
//! blocked reader, and drops the `Cmd` sender, which ends the writer.

use crate::chooser::MAX_QUEUED_REQUESTS;
use crate::meter::{lock_bucket, SharedBucket, TokenBucket, MIN_BURST};
use crate::peer::{self, Handshake, Message};
use crate::pieces::{Block, Geometry, BLOCK};
use crate::storage::Storage;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Anything → chooser.
#[derive(Debug)]
pub enum Event {
    /// The acceptor took a connection; the chooser decides whether to keep it.
    Incoming(TcpStream),
    /// TCP is up; `stream` is the chooser's handle for `shutdown()`.
    Connected {
        id: u64,
        stream: TcpStream,
    },
    /// The peer's handshake arrived and named our torrent.
    Handshake {
        id: u64,
        peer_id: [u8; 20],
    },
    /// The messages that were already buffered together (at most one read buffer's
    /// worth): the chooser wakes once for them, not once per block.
    Msgs {
        id: u64,
        msgs: Vec<Message>,
    },
    /// A block went out on the wire.
    Sent {
        id: u64,
        block: Block,
    },
    Closed {
        id: u64,
        reason: String,
    },
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
    /// Per-peer upload cap in bytes/s, `None` for none (BitTyrant and PropShare use it).
    SetCap(Option<f64>),
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
    pub up: SharedBucket,
    pub down: SharedBucket,
    /// Seconds of rate a per-peer bucket may hold: 1 nominal second (1 / time scale).
    pub burst_secs: f64,
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    pub events: Sender<Event>,
}

pub fn spawn(id: u64, target: Target, shared: Arc<Shared>, cmds: Receiver<Cmd>) {
    let name = format!("peer-{}", id);
    let spawned = thread::Builder::new().name(name).stack_size(128 * 1024).spawn(move || {
        let events = shared.events.clone();
        let reason = match reader(id, target, &shared, cmds) {
            Ok(()) => "connection closed".to_string(),
            Err(e) => e.to_string(),
        };
        let _ = events.send(Event::Closed { id, reason });
    });
    if let Err(e) = spawned {
        log::error!("cannot start a thread for peer {}: {}", id, e);
    }
}

fn reader(id: u64, target: Target, sh: &Arc<Shared>, cmds: Receiver<Cmd>) -> io::Result<()> {
    let mut stream = match target {
        Target::Outgoing(addr) => TcpStream::connect_timeout(&addr, sh.connect_timeout)?,
        Target::Incoming(s) => s,
    };
    // Small control messages must not wait for Nagle; shadow refuses turning it *off*,
    // turning it on is fine, so ignore the error either way.
    let _ = stream.set_nodelay(true);
    if sh.events.send(Event::Connected { id, stream: stream.try_clone()? }).is_err() {
        return Ok(());
    }
    // One torrent per process, so both sides may send their handshake at once.
    let ours = Handshake { reserved: [0; 8], info_hash: sh.info_hash, peer_id: sh.peer_id };
    stream.write_all(&ours.encode())?;
    let mut buf = [0u8; 68];
    stream.read_exact(&mut buf)?;
    let theirs = Handshake::decode(&buf).map_err(invalid)?;
    if theirs.info_hash != sh.info_hash {
        return Err(invalid_msg("handshake for another torrent (wrong info-hash)"));
    }
    if sh.events.send(Event::Handshake { id, peer_id: theirs.peer_id }).is_err() {
        return Ok(());
    }

    let wstream = stream.try_clone()?;
    let wsh = Arc::clone(sh);
    thread::Builder::new().name(format!("peer-{}-w", id)).stack_size(128 * 1024).spawn(
        move || {
            let shut = wstream.try_clone();
            if let Err(e) = writer(id, wstream, &wsh, cmds) {
                log::debug!("peer {}: writer stopped: {}", id, e);
                // Nothing serves this connection any more: end the reader too, so the
                // chooser hears `Closed` instead of keeping a half-dead peer.
                if let Ok(s) = shut {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
            }
        },
    )?;

    let max_frame = peer::max_frame(&sh.geo);
    let mut first = true;
    let mut rd = io::BufReader::with_capacity(READ_BUFFER, stream);
    let mut batch: Vec<Message> = Vec::new();
    loop {
        let msg = peer::read_message(&mut rd, max_frame)?;
        msg.check(&sh.geo).map_err(invalid)?;
        match msg {
            Message::KeepAlive => {}
            Message::Bitfield(_) if !first => {
                return Err(invalid_msg("bitfield after the first message"));
            }
            _ => first = false,
        }
        if let Message::Piece { ref data, .. } = msg {
            // We only ever request blocks of at most BLOCK bytes; anything larger is junk,
            // and refusing it bounds what the event queue can hold per message.
            if data.len() > BLOCK as usize {
                return Err(invalid_msg("piece larger than any block we request"));
            }
            // Download cap: pay after reading; while in debt we stop reading and TCP
            // flow control slows the sender down.
            pace(&sh.down, None, data.len() as u64);
        }
        batch.push(msg);
        if whole_frame_buffered(rd.buffer()) {
            continue;
        }
        let ev = Event::Msgs { id, msgs: std::mem::take(&mut batch) };
        if sh.events.send(ev).is_err() {
            return Ok(());
        }
    }
}

/// The reader's buffer; also the most payload one `Event::Msgs` can carry.
const READ_BUFFER: usize = 64 * 1024;

/// Does `buf` start with a complete frame? Then reading it will not block.
fn whole_frame_buffered(buf: &[u8]) -> bool {
    match buf.get(..4) {
        Some(p) => {
            let len = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
            buf.len() - 4 >= len
        }
        None => false,
    }
}

/// Charge `n` bytes to the global bucket (and a per-peer one) and sleep off any debt.
fn pace(global: &SharedBucket, local: Option<&mut TokenBucket>, n: u64) {
    let now = Instant::now();
    let mut wait = {
        let mut g = lock_bucket(global);
        let w = g.wait_time(now);
        g.take(now, n);
        w
    };
    if let Some(b) = local {
        wait = wait.max(b.wait_time(now));
        b.take(now, n);
    }
    if wait > Duration::from_secs(0) {
        thread::sleep(wait);
    }
}

fn writer(id: u64, mut stream: TcpStream, sh: &Shared, cmds: Receiver<Cmd>) -> io::Result<()> {
    let mut queue: VecDeque<Block> = VecDeque::new();
    let mut cap: Option<TokenBucket> = None;
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut block = Vec::new();
    let zero = Duration::from_secs(0);
    loop {
        // How long may we wait for a command? Forever-ish when idle (keep-alive then),
        // until the buckets allow the next block when one is queued.
        let wait = if queue.is_empty() {
            sh.keepalive
        } else {
            let now = Instant::now();
            let g = lock_bucket(&sh.up).wait_time(now);
            let l = cap.as_mut().map_or(zero, |b| b.wait_time(now));
            g.max(l)
        };
        let first = if wait > zero {
            match cmds.recv_timeout(wait) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            cmds.try_recv().ok()
        };
        let idle_timeout = first.is_none() && queue.is_empty();
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
                Cmd::SetCap(rate) => {
                    // A new rate keeps the bucket's debt or credit, so re-capping every
                    // round does not hand out a fresh burst each time.
                    let now = Instant::now();
                    cap = match (rate, cap.take()) {
                        (Some(r), Some(mut b)) => {
                            b.set_rate(r, (r * sh.burst_secs).max(MIN_BURST), now);
                            Some(b)
                        }
                        (Some(r), None) => {
                            Some(TokenBucket::new(r, (r * sh.burst_secs).max(MIN_BURST), now))
                        }
                        (None, _) => None,
                    };
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
        // Send one block if the buckets allow it now.
        if let Some(&b) = queue.front() {
            let now = Instant::now();
            let n = u64::from(b.length);
            // The per-peer bucket is checked first so a peer held back by its own cap
            // does not spend global tokens; then check-and-charge the global one under
            // one lock.
            let local_ok = cap.as_mut().map_or(true, |b| b.wait_time(now) == zero);
            if local_ok && lock_bucket(&sh.up).try_take(now, n) == zero {
                queue.pop_front();
                if let Some(c) = cap.as_mut() {
                    c.take(now, n);
                }
                block.clear();
                block.extend_from_slice(&peer::piece_header(b.index, b.begin, b.length));
                block.resize(13 + b.length as usize, 0);
                sh.storage.read(b.index, b.begin, &mut block[13..])?;
                stream.write_all(&block)?;
                if sh.events.send(Event::Sent { id, block: b }).is_err() {
                    return Ok(());
                }
            }
        }
    }
}

fn invalid(e: peer::WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn invalid_msg(s: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, s)
}
