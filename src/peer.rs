//! Peer wire codec: framing, message encode/decode and validation for the
//! BEP 3 "peer protocol" section (plus the BEP 5 `port` message).
//!
//! This module owns bytes only: no sockets, no threads, no peer state. The
//! reader thread uses [`read_message`] and then [`Message::check`] against the
//! torrent's [`Geometry`]; the writer uses [`Message::encode`] and [`piece_header`].
//! The bitfield codec is here too: BEP 3 packs piece 0 into the high bit of byte 0.
//!
//! Validation is split in two on purpose. `decode` enforces what holds for
//! every torrent (exact lengths per id, as mainline `Connecter.got_message` and
//! rqbit `check_msg_len!` do), so a malformed length cannot desync the stream.
//! `check` enforces what depends on the torrent (indexes, block bounds).

use crate::pieces::{Block, Geometry};
use std::fmt;
use std::io::{self, ErrorKind, Read};
/// Largest request length we accept; larger requests are a protocol error.
/// 128 KiB is the limit most clients enforce, well above what anyone sends.
pub const MAX_REQUEST: u32 = 131072;
/// Protocol string sent in the handshake (BEP 3 "handshake").
const PSTR: &[u8; 19] = b"BitTorrent protocol";

const ID_CHOKE: u8 = 0;
const ID_UNCHOKE: u8 = 1;
const ID_INTERESTED: u8 = 2;
const ID_NOT_INTERESTED: u8 = 3;
const ID_HAVE: u8 = 4;
const ID_BITFIELD: u8 = 5;
const ID_REQUEST: u8 = 6;
const ID_PIECE: u8 = 7;
const ID_CANCEL: u8 = 8;
const ID_PORT: u8 = 9;
const ID_EXTENDED: u8 = 20;

/// One peer wire message (BEP 3 "peer messages").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// The zero-length frame.
    KeepAlive,
    /// The sender will not serve the receiver's requests until it unchokes it.
    Choke,
    /// The receiver may request blocks.
    Unchoke,
    /// The sender wants pieces the receiver has.
    Interested,
    /// The sender wants none of them any more.
    NotInterested,
    /// The sender has verified this piece.
    Have(u32),
    /// The sender's pieces, piece 0 in the high bit of byte 0.
    Bitfield(Vec<u8>),
    /// Send this block, please.
    Request(Block),
    /// One block of data.
    Piece { index: u32, begin: u32, data: Vec<u8> },
    /// Never mind that request.
    Cancel(Block),
    /// BEP 5 DHT port. Decoded so that DHT-capable peers are not dropped, then ignored.
    Port(u16),
    /// BEP 10's handshake (id 20, extended id 0), of which we read and say only `reqq`: how
    /// many requests the sender queues for the receiver. `m` stays empty, so no extension
    /// message may follow.
    Reqq(u32),
    /// Any other id (fast extension, a BEP 10 handshake without `reqq`, ...): skipped, not
    /// dropped.
    Unknown(u8),
}

/// A protocol violation. Every one of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Length prefix above the limit; rejected before allocating anything.
    TooLong { len: u32, max: u32 },
    /// Wrong length for the id (`len` counts the id byte, i.e. it is the length prefix).
    BadLength { id: u8, len: u32 },
    /// Not a BEP 3 handshake.
    BadHandshake(&'static str),
    /// A piece index past the torrent's last piece.
    BadIndex { index: u32, num_pieces: u32 },
    /// Wrong byte length or spare bits set.
    BadBitfield(&'static str),
    /// Out of piece bounds, zero length, or longer than [`MAX_REQUEST`].
    BadBlock { index: u32, begin: u32, length: u32 },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len, max } => write!(f, "message length {len} exceeds limit {max}"),
            Self::BadLength { id, len } => write!(f, "message id {id} has invalid length {len}"),
            Self::BadHandshake(why) => write!(f, "bad handshake: {}", why),
            Self::BadIndex { index, num_pieces } => {
                write!(f, "piece index {} out of range (torrent has {} pieces)", index, num_pieces)
            }
            Self::BadBitfield(why) => write!(f, "bad bitfield: {}", why),
            Self::BadBlock { index, begin, length } => {
                write!(f, "bad block: piece {} begin {} length {}", index, begin, length)
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Append one framed message: length prefix, `id`, then `words` big-endian and `bytes`.
/// The length saturates so a (never expected) oversized message is rejected by the peer as
/// too long instead of wrapping into a short, desynchronising frame.
fn frame(out: &mut Vec<u8>, id: u8, words: &[u32], bytes: &[u8]) {
    let len = u32::try_from(4 * words.len() + bytes.len()).unwrap_or(u32::MAX).saturating_add(1);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(id);
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

/// The big-endian u32 `b` starts with; the caller has already checked the length.
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl Message {
    /// Append the full framed message (4-byte big-endian length prefix + id + payload).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::KeepAlive => out.extend_from_slice(&[0; 4]),
            Message::Choke => frame(out, ID_CHOKE, &[], &[]),
            Message::Unchoke => frame(out, ID_UNCHOKE, &[], &[]),
            Message::Interested => frame(out, ID_INTERESTED, &[], &[]),
            Message::NotInterested => frame(out, ID_NOT_INTERESTED, &[], &[]),
            Message::Have(index) => frame(out, ID_HAVE, &[*index], &[]),
            Message::Bitfield(bits) => frame(out, ID_BITFIELD, &[], bits),
            Message::Request(b) => frame(out, ID_REQUEST, &[b.index, b.begin, b.length], &[]),
            Message::Piece { index, begin, data } => frame(out, ID_PIECE, &[*index, *begin], data),
            Message::Cancel(b) => frame(out, ID_CANCEL, &[b.index, b.begin, b.length], &[]),
            Message::Port(port) => frame(out, ID_PORT, &[], &port.to_be_bytes()),
            Message::Reqq(n) => {
                frame(out, ID_EXTENDED, &[], format!("\0d1:mde4:reqqi{}ee", n).as_bytes())
            }
            Message::Unknown(id) => frame(out, *id, &[], &[]),
        }
    }

    /// Decode one frame payload (the bytes AFTER the 4-byte length prefix; empty =
    /// KeepAlive). Checks the exact length per id (choke..notinterested: 1; have: 5;
    /// request/cancel: 13; piece: >= 9; port: 3; bitfield: >= 1).
    pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
        let id = match frame.first() {
            None => return Ok(Message::KeepAlive),
            Some(&id) => id,
        };
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let bad = WireError::BadLength { id, len };
        let exact = |want: usize| if frame.len() == want { Ok(()) } else { Err(bad.clone()) };
        match id {
            ID_CHOKE => exact(1).map(|_| Message::Choke),
            ID_UNCHOKE => exact(1).map(|_| Message::Unchoke),
            ID_INTERESTED => exact(1).map(|_| Message::Interested),
            ID_NOT_INTERESTED => exact(1).map(|_| Message::NotInterested),
            ID_HAVE => exact(5).map(|_| Message::Have(be32(&frame[1..]))),
            ID_BITFIELD => Ok(Message::Bitfield(frame[1..].to_vec())),
            ID_REQUEST => exact(13).map(|_| Message::Request(block_ref(frame))),
            ID_PIECE if frame.len() >= 9 => Ok(piece(frame, frame[9..].to_vec())),
            ID_PIECE => Err(bad),
            ID_CANCEL => exact(13).map(|_| Message::Cancel(block_ref(frame))),
            ID_PORT => exact(3).map(|_| Message::Port(u16::from_be_bytes([frame[1], frame[2]]))),
            ID_EXTENDED if frame.get(1) == Some(&0) => Ok(crate::bencode::decode(&frame[2..])
                .ok()
                .and_then(|v| v.as_dict()?.int("reqq").and_then(|n| u32::try_from(n).ok()))
                .map_or(Message::Unknown(id), Message::Reqq)),
            other => Ok(Message::Unknown(other)),
        }
    }

    /// Torrent-dependent validation: have/request/cancel/piece index < num_pieces,
    /// bitfield byte length == ceil(num_pieces/8) with spare trailing bits zero, block
    /// bounds (length 1..=MAX_REQUEST, begin+length <= that piece's length; piece data
    /// likewise).
    pub fn check(&self, geo: &Geometry) -> Result<(), WireError> {
        match self {
            Self::Have(index) => check_index(geo, *index),
            Self::Bitfield(bits) => check_bitfield(bits, geo.num_pieces),
            Self::Request(b) | Self::Cancel(b) => check_block(geo, b.index, b.begin, b.length),
            Self::Piece { index, begin, data } => {
                let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
                check_block(geo, *index, *begin, length)
            }
            // The other messages name no piece.
            _ => Ok(()),
        }
    }
}

/// A piece message from its 9-byte head (id, index, begin) and its data.
fn piece(head: &[u8], data: Vec<u8>) -> Message {
    Message::Piece { index: be32(&head[1..]), begin: be32(&head[5..]), data }
}

/// The block a 13-byte request or cancel frame names.
fn block_ref(frame: &[u8]) -> Block {
    Block { index: be32(&frame[1..]), begin: be32(&frame[5..]), length: be32(&frame[9..]) }
}

/// ceil(num_pieces / 8), without the overflow of `(n + 7) / 8` near u32::MAX.
fn bitfield_bytes(num_pieces: u32) -> u32 {
    num_pieces / 8 + u32::from(num_pieces % 8 != 0)
}

fn check_bitfield(bits: &[u8], num_pieces: u32) -> Result<(), WireError> {
    if bits.len() != bitfield_bytes(num_pieces) as usize {
        return Err(WireError::BadBitfield("wrong byte length"));
    }
    // BEP 3 requires spare bits to be zero and says to drop a peer whose bitfield has
    // the wrong size or spare bits set. A set spare bit would claim a piece that does
    // not exist and poison availability counts.
    let spare = (8 - num_pieces % 8) % 8;
    let mask = ((1u16 << spare) - 1) as u8;
    if bits.last().map_or(false, |&last| last & mask != 0) {
        return Err(WireError::BadBitfield("spare bits set"));
    }
    Ok(())
}

/// Largest frame length any valid message can have for this torrent:
/// max(9 + MAX_REQUEST, 1 + bitfield bytes). The reader checks it before allocating.
pub fn max_frame(geo: &Geometry) -> u32 {
    (9 + MAX_REQUEST).max(1 + bitfield_bytes(geo.num_pieces))
}

fn check_index(geo: &Geometry, index: u32) -> Result<(), WireError> {
    if index >= geo.num_pieces {
        return Err(WireError::BadIndex { index, num_pieces: geo.num_pieces });
    }
    Ok(())
}

fn check_block(geo: &Geometry, index: u32, begin: u32, length: u32) -> Result<(), WireError> {
    check_index(geo, index)?;
    // u64 so that begin + length cannot wrap past the bound.
    let end = u64::from(begin) + u64::from(length);
    if length == 0 || length > MAX_REQUEST || end > u64::from(geo.piece_len(index)) {
        return Err(WireError::BadBlock { index, begin, length });
    }
    Ok(())
}

/// Our pieces as a BEP 3 bitfield payload.
pub fn bits_to_bytes(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; (bits.len() + 7) / 8];
    for (i, _) in bits.iter().enumerate().filter(|(_, &b)| b) {
        out[i / 8] |= 0x80 >> (i % 8);
    }
    out
}

/// A checked bitfield payload as one flag per piece.
pub fn bytes_to_bits(bytes: &[u8], n: usize) -> Vec<bool> {
    (0..n).map(|i| bytes.get(i / 8).map_or(false, |b| b & (0x80 >> (i % 8)) != 0)).collect()
}

/// 13-byte header of a piece message carrying `len` payload bytes, so the writer can
/// send header + data without copying the block into a new Vec.
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    // Saturating for the same reason as in `frame`: never emit a wrapped length.
    h[0..4].copy_from_slice(&len.saturating_add(9).to_be_bytes());
    h[4] = ID_PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

/// A protocol violation (a `WireError`, or a reason in words) as the I/O error that ends
/// the connection.
pub(crate) fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, e)
}

fn is_timeout(e: &io::Error) -> bool {
    // A read timeout is WouldBlock on Unix and TimedOut on Windows (std docs).
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted)
}

/// Fill `buf` completely. Unlike `read_exact`, progress is never lost: a read timeout
/// after some bytes of the frame arrived (`*started`) is retried, because returning it
/// would leave the stream in the middle of a frame. A timeout before the first byte of
/// a frame is returned as-is, so the caller can use socket timeouts as a tick (e.g. to
/// check a shutdown flag) and simply call `read_message` again.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8], started: &mut bool) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                let mid = if *started { " mid-message" } else { "" };
                let why = format!("peer closed the connection{}", mid);
                return Err(io::Error::new(ErrorKind::UnexpectedEof, why));
            }
            Ok(n) => {
                filled += n;
                *started = true;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted || (*started && is_timeout(&e)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Blocking read of one framed message from a stream: reads the 4-byte length, rejects
/// len > max_frame with WireError::TooLong before allocating, then reads exactly len
/// bytes and decodes. Errors: io errors as-is; wire errors wrapped as
/// io::ErrorKind::InvalidData whose inner error is the WireError (so callers can print
/// it as one line).
///
/// Works on streams with or without a read timeout. A timeout (`WouldBlock`/`TimedOut`)
/// is only ever returned before the first byte of a frame, so it is always safe to call
/// again; inside a frame, timeouts are retried so the stream never desynchronises.
/// End of stream is `UnexpectedEof`, whether at a frame boundary or mid-frame.
pub fn read_message<R: Read>(r: &mut R, max_frame: u32) -> io::Result<Message> {
    let mut started = false;
    let mut prefix = [0u8; 4];
    read_full(r, &mut prefix, &mut started)?;
    let len = u32::from_be_bytes(prefix);
    if len > max_frame {
        return Err(invalid(WireError::TooLong { len, max: max_frame }));
    }
    // Hot path: a block's bytes go straight into their own buffer, not into a frame buffer
    // that would then be shifted by the 9-byte header.
    let mut head = [0u8; 9];
    let head_len = (len as usize).min(9);
    read_full(r, &mut head[..head_len], &mut started)?;
    let mut rest = vec![0u8; len as usize - head_len];
    read_full(r, &mut rest, &mut started)?;
    if head_len == 9 && head[0] == ID_PIECE {
        return Ok(piece(&head, rest));
    }
    Message::decode(&[&head[..head_len], &rest].concat()).map_err(invalid)
}

/// The 68-byte BEP 3 handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub reserved: [u8; 8],
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
}

impl Handshake {
    pub fn encode(&self) -> [u8; 68] {
        let mut b = [0u8; 68];
        b[0] = 19;
        b[1..20].copy_from_slice(PSTR);
        b[20..28].copy_from_slice(&self.reserved);
        b[28..48].copy_from_slice(&self.info_hash);
        b[48..68].copy_from_slice(&self.peer_id);
        b
    }

    /// Parse a handshake; pstrlen must be 19 and pstr "BitTorrent protocol". The info
    /// hash is not checked here: only the caller knows which torrents it serves.
    pub fn decode(buf: &[u8; 68]) -> Result<Handshake, WireError> {
        if buf[0] != 19 {
            return Err(WireError::BadHandshake("protocol string length is not 19"));
        }
        if &buf[1..20] != PSTR {
            return Err(WireError::BadHandshake("protocol string is not \"BitTorrent protocol\""));
        }
        let mut h = Handshake { reserved: [0; 8], info_hash: [0; 20], peer_id: [0; 20] };
        h.reserved.copy_from_slice(&buf[20..28]);
        h.info_hash.copy_from_slice(&buf[28..48]);
        h.peer_id.copy_from_slice(&buf[48..68]);
        Ok(h)
    }
}

/// The one extension we speak, BEP 10's handshake (`Message::Reqq`), and only to tell a peer
/// `reqq`: a client told nothing keeps as many requests in flight as its rate suggests
/// (transmission: ten seconds' worth, thousands on loopback), and those past our bound would
/// be dropped, for the peer to time out 90 s later. The bit goes in our handshake's reserved
/// bytes.
pub const EXTENSION_BIT: [u8; 8] = [0, 0, 0, 0, 0, 0x10, 0, 0];

#[cfg(test)]
mod tests;
