//! Peer wire codec: framing, message encode/decode and validation for the
//! BEP 3 "peer protocol" section (plus the BEP 5 `port` message).
//!
//! This module owns bytes only: no sockets, no threads, no peer state. The
//! reader thread uses [`read_message`] (or [`Decoder`]) and then
//! [`Message::check`] against the torrent's [`WireLimits`]; the writer uses
//! [`Message::encode`] and [`piece_header`].
//!
//! Validation is split in two on purpose. `decode` enforces what holds for
//! every torrent (exact lengths per id, as mainline `Connecter.got_message` and
//! rqbit `check_msg_len!` do), so a malformed length cannot desync the stream.
//! `check` enforces what depends on the torrent (indexes, block bounds).

use std::fmt;
use std::io::{self, Read};

/// Request size we use (the de-facto standard block size).
pub const BLOCK: u32 = 16384;
/// Largest request length we accept; larger requests are a protocol error.
/// 128 KiB is the limit most clients enforce, well above what anyone sends.
pub const MAX_REQUEST: u32 = 131072;
/// Protocol string sent in the handshake (BEP 3 "handshake").
pub const PSTR: &[u8; 19] = b"BitTorrent protocol";

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

/// One peer wire message. `KeepAlive` is the zero-length frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    KeepAlive,
    Choke,
    Unchoke,
    Interested,
    NotInterested,
    Have(u32),
    Bitfield(Vec<u8>),
    Request {
        index: u32,
        begin: u32,
        length: u32,
    },
    Piece {
        index: u32,
        begin: u32,
        data: Vec<u8>,
    },
    Cancel {
        index: u32,
        begin: u32,
        length: u32,
    },
    /// BEP 5 DHT port. Decoded so that DHT-capable peers are not dropped, then ignored.
    Port(u16),
    /// Any other id (fast extension, BEP 10, ...). We advertise none of them in the
    /// reserved bits, so a peer sending one is misbehaving only mildly: skip, don't drop.
    Unknown(u8),
}

/// A protocol violation. Every one of these ends the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Length prefix above the limit; rejected before allocating anything.
    TooLong {
        len: u32,
        max: u32,
    },
    /// Wrong length for the id (`len` counts the id byte, i.e. it is the length prefix).
    BadLength {
        id: u8,
        len: u32,
    },
    BadHandshake(&'static str),
    BadIndex {
        index: u32,
        num_pieces: u32,
    },
    /// Wrong byte length or spare bits set.
    BadBitfield(&'static str),
    /// Out of piece bounds, zero length, or longer than [`MAX_REQUEST`].
    BadBlock {
        index: u32,
        begin: u32,
        length: u32,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLong { len, max } => {
                write!(f, "message length {} exceeds limit {}", len, max)
            }
            WireError::BadLength { id, len } => {
                write!(f, "message id {} has invalid length {}", id, len)
            }
            WireError::BadHandshake(why) => write!(f, "bad handshake: {}", why),
            WireError::BadIndex { index, num_pieces } => write!(
                f,
                "piece index {} out of range (torrent has {} pieces)",
                index, num_pieces
            ),
            WireError::BadBitfield(why) => write!(f, "bad bitfield: {}", why),
            WireError::BadBlock {
                index,
                begin,
                length,
            } => write!(
                f,
                "bad block: piece {} begin {} length {}",
                index, begin, length
            ),
        }
    }
}

impl std::error::Error for WireError {}

/// Frame length prefix for a payload of `n` bytes after the id. Saturating so a
/// (never expected) oversized message is rejected by the peer as too long instead of
/// wrapping into a short, desynchronising frame.
fn frame_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).saturating_add(1)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Big-endian u32 at `at`; the caller has already checked the length.
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(x)
}

impl Message {
    /// Append the full framed message (4-byte big-endian length prefix + id + payload).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Message::KeepAlive => put_u32(out, 0),
            Message::Choke => out.extend_from_slice(&[0, 0, 0, 1, ID_CHOKE]),
            Message::Unchoke => out.extend_from_slice(&[0, 0, 0, 1, ID_UNCHOKE]),
            Message::Interested => out.extend_from_slice(&[0, 0, 0, 1, ID_INTERESTED]),
            Message::NotInterested => out.extend_from_slice(&[0, 0, 0, 1, ID_NOT_INTERESTED]),
            Message::Have(index) => {
                put_u32(out, 5);
                out.push(ID_HAVE);
                put_u32(out, *index);
            }
            Message::Bitfield(bits) => {
                put_u32(out, frame_len(bits.len()));
                out.push(ID_BITFIELD);
                out.extend_from_slice(bits);
            }
            Message::Request {
                index,
                begin,
                length,
            } => encode_block_ref(out, ID_REQUEST, *index, *begin, *length),
            Message::Piece { index, begin, data } => {
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&piece_header(*index, *begin, len));
                out.extend_from_slice(data);
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => encode_block_ref(out, ID_CANCEL, *index, *begin, *length),
            Message::Port(port) => {
                put_u32(out, 3);
                out.push(ID_PORT);
                out.extend_from_slice(&port.to_be_bytes());
            }
            Message::Unknown(id) => out.extend_from_slice(&[0, 0, 0, 1, *id]),
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
        let exact = |want: usize| {
            if frame.len() == want {
                Ok(())
            } else {
                Err(bad.clone())
            }
        };
        match id {
            ID_CHOKE => exact(1).map(|_| Message::Choke),
            ID_UNCHOKE => exact(1).map(|_| Message::Unchoke),
            ID_INTERESTED => exact(1).map(|_| Message::Interested),
            ID_NOT_INTERESTED => exact(1).map(|_| Message::NotInterested),
            ID_HAVE => exact(5).map(|_| Message::Have(get_u32(frame, 1))),
            ID_BITFIELD => Ok(Message::Bitfield(frame[1..].to_vec())),
            ID_REQUEST => exact(13).map(|_| Message::Request {
                index: get_u32(frame, 1),
                begin: get_u32(frame, 5),
                length: get_u32(frame, 9),
            }),
            ID_PIECE => {
                if frame.len() < 9 {
                    return Err(bad);
                }
                Ok(Message::Piece {
                    index: get_u32(frame, 1),
                    begin: get_u32(frame, 5),
                    data: frame[9..].to_vec(),
                })
            }
            ID_CANCEL => exact(13).map(|_| Message::Cancel {
                index: get_u32(frame, 1),
                begin: get_u32(frame, 5),
                length: get_u32(frame, 9),
            }),
            ID_PORT => exact(3).map(|_| Message::Port(u16::from_be_bytes([frame[1], frame[2]]))),
            other => Ok(Message::Unknown(other)),
        }
    }

    /// Torrent-dependent validation: have/request/cancel/piece index < num_pieces,
    /// bitfield byte length == ceil(num_pieces/8) with spare trailing bits zero, block
    /// bounds (length 1..=MAX_REQUEST, begin+length <= that piece's length; piece data
    /// likewise).
    pub fn check(&self, lim: &WireLimits) -> Result<(), WireError> {
        match self {
            Message::Have(index) => lim.check_index(*index),
            Message::Bitfield(bits) => check_bitfield(bits, lim.num_pieces),
            Message::Request {
                index,
                begin,
                length,
            }
            | Message::Cancel {
                index,
                begin,
                length,
            } => lim.check_block(*index, *begin, *length),
            Message::Piece { index, begin, data } => {
                let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
                lim.check_block(*index, *begin, length)
            }
            Message::KeepAlive
            | Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::Port(_)
            | Message::Unknown(_) => Ok(()),
        }
    }
}

fn encode_block_ref(out: &mut Vec<u8>, id: u8, index: u32, begin: u32, length: u32) {
    put_u32(out, 13);
    out.push(id);
    put_u32(out, index);
    put_u32(out, begin);
    put_u32(out, length);
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
    if let Some(&last) = bits.last() {
        let mask = ((1u16 << spare) - 1) as u8;
        if last & mask != 0 {
            return Err(WireError::BadBitfield("spare bits set"));
        }
    }
    Ok(())
}

/// The torrent's shape, as needed to validate messages.
#[derive(Debug, Clone, Copy)]
pub struct WireLimits {
    pub num_pieces: u32,
    pub piece_length: u32,
    pub total_length: u64,
}

impl WireLimits {
    /// Length of piece `index`; the last piece may be shorter. Zero for an index out of
    /// range, so a bad index can never pass a bounds check by accident.
    pub fn piece_len(&self, index: u32) -> u32 {
        if index >= self.num_pieces {
            return 0;
        }
        let start = u64::from(index) * u64::from(self.piece_length);
        let rest = self.total_length.saturating_sub(start);
        // The min is at most piece_length, so it fits in u32.
        rest.min(u64::from(self.piece_length)) as u32
    }

    /// Largest frame length any valid message can have for this torrent:
    /// max(9 + MAX_REQUEST, 1 + bitfield bytes). Used as the pre-allocation guard.
    pub fn max_frame(&self) -> u32 {
        (9 + MAX_REQUEST).max(1 + bitfield_bytes(self.num_pieces))
    }

    fn check_index(&self, index: u32) -> Result<(), WireError> {
        if index < self.num_pieces {
            Ok(())
        } else {
            Err(WireError::BadIndex {
                index,
                num_pieces: self.num_pieces,
            })
        }
    }

    fn check_block(&self, index: u32, begin: u32, length: u32) -> Result<(), WireError> {
        self.check_index(index)?;
        // u64 so that begin + length cannot wrap past the bound.
        let end = u64::from(begin) + u64::from(length);
        if length == 0 || length > MAX_REQUEST || end > u64::from(self.piece_len(index)) {
            return Err(WireError::BadBlock {
                index,
                begin,
                length,
            });
        }
        Ok(())
    }
}

/// 13-byte header of a piece message carrying `len` payload bytes, so the writer can
/// send header + data without copying the block into a new Vec.
pub fn piece_header(index: u32, begin: u32, len: u32) -> [u8; 13] {
    let mut h = [0u8; 13];
    // Saturating for the same reason as `frame_len`: never emit a wrapped length.
    h[0..4].copy_from_slice(&len.saturating_add(9).to_be_bytes());
    h[4] = ID_PIECE;
    h[5..9].copy_from_slice(&index.to_be_bytes());
    h[9..13].copy_from_slice(&begin.to_be_bytes());
    h
}

fn invalid(e: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn is_timeout(e: &io::Error) -> bool {
    // A read timeout is WouldBlock on Unix and TimedOut on Windows (std docs).
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
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
                let why = if *started {
                    "peer closed the connection mid-message"
                } else {
                    "peer closed the connection"
                };
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
            }
            Ok(n) => {
                filled += n;
                *started = true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if *started && is_timeout(&e) => {}
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
        return Err(invalid(WireError::TooLong {
            len,
            max: max_frame,
        }));
    }
    let mut frame = vec![0u8; len as usize];
    read_full(r, &mut frame, &mut started)?;
    if frame.len() >= 9 && frame[0] == ID_PIECE {
        // Hot path: reuse the frame buffer for the block instead of copying it.
        let (index, begin) = (get_u32(&frame, 1), get_u32(&frame, 5));
        frame.drain(..9);
        return Ok(Message::Piece {
            index,
            begin,
            data: frame,
        });
    }
    Message::decode(&frame).map_err(invalid)
}

/// Incremental decoder for a byte stream that arrives in arbitrary chunks.
pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the first undecoded byte in `buf`; consumed bytes are dropped lazily so
    /// that decoding many small messages from one chunk is not quadratic.
    pos: usize,
    max_frame: u32,
}

impl Decoder {
    pub fn new(max_frame: u32) -> Decoder {
        Decoder {
            buf: Vec::new(),
            pos: 0,
            max_frame,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Next complete message, Ok(None) if more bytes are needed.
    ///
    /// After a `BadLength` the bad frame has been skipped; after `TooLong` nothing is
    /// consumed (the frame boundary is untrustworthy), so the error repeats. Either way
    /// the caller is expected to drop the peer.
    #[allow(clippy::should_implement_trait)] // fallible, so it does not fit Iterator
    pub fn next(&mut self) -> Result<Option<Message>, WireError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = get_u32(avail, 0);
        if len > self.max_frame {
            return Err(WireError::TooLong {
                len,
                max: self.max_frame,
            });
        }
        let end = 4 + len as usize;
        if avail.len() < end {
            return Ok(None);
        }
        let msg = Message::decode(&avail[4..end]);
        self.pos += end;
        msg.map(Some)
    }
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
            return Err(WireError::BadHandshake(
                "protocol string is not \"BitTorrent protocol\"",
            ));
        }
        let mut h = Handshake {
            reserved: [0; 8],
            info_hash: [0; 20],
            peer_id: [0; 20],
        };
        h.reserved.copy_from_slice(&buf[20..28]);
        h.info_hash.copy_from_slice(&buf[28..48]);
        h.peer_id.copy_from_slice(&buf[48..68]);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn enc(m: &Message) -> Vec<u8> {
        let mut v = Vec::new();
        m.encode(&mut v);
        v
    }

    /// Every variant with its exact wire bytes (cratetorrent `assert_message_codec`).
    fn cases() -> Vec<(Message, Vec<u8>)> {
        vec![
            (Message::KeepAlive, vec![0, 0, 0, 0]),
            (Message::Choke, vec![0, 0, 0, 1, 0]),
            (Message::Unchoke, vec![0, 0, 0, 1, 1]),
            (Message::Interested, vec![0, 0, 0, 1, 2]),
            (Message::NotInterested, vec![0, 0, 0, 1, 3]),
            (Message::Have(0x0102_0304), vec![0, 0, 0, 5, 4, 1, 2, 3, 4]),
            (
                Message::Bitfield(vec![0b1010_0000, 0xff]),
                vec![0, 0, 0, 3, 5, 0b1010_0000, 0xff],
            ),
            (
                Message::Request {
                    index: 1,
                    begin: 0x4000,
                    length: 0x4000,
                },
                vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
            ),
            (
                Message::Piece {
                    index: 2,
                    begin: 0x10,
                    data: vec![0xaa, 0xbb, 0xcc],
                },
                vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 0x10, 0xaa, 0xbb, 0xcc],
            ),
            (
                Message::Cancel {
                    index: 3,
                    begin: 0,
                    length: 5,
                },
                vec![0, 0, 0, 13, 8, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5],
            ),
            (Message::Port(6881), vec![0, 0, 0, 3, 9, 0x1a, 0xe1]),
            (Message::Unknown(20), vec![0, 0, 0, 1, 20]),
        ]
    }

    #[test]
    fn encode_exact_bytes() {
        for (m, bytes) in cases() {
            assert_eq!(enc(&m), bytes, "{:?}", m);
        }
    }

    #[test]
    fn decode_each_variant() {
        for (m, bytes) in cases() {
            assert_eq!(Message::decode(&bytes[4..]).unwrap(), m);
        }
        // Empty payloads are legal where the length is open-ended.
        assert_eq!(
            Message::decode(&[5]).unwrap(),
            Message::Bitfield(Vec::new())
        );
        assert_eq!(
            Message::decode(&[7, 0, 0, 0, 1, 0, 0, 0, 2]).unwrap(),
            Message::Piece {
                index: 1,
                begin: 2,
                data: Vec::new()
            }
        );
        // Unknown ids keep their payload out of the message.
        assert_eq!(
            Message::decode(&[20, 0, b'd', b'e']).unwrap(),
            Message::Unknown(20)
        );
    }

    #[test]
    fn fixed_sizes_one_short_and_one_long() {
        let fixed: [(u8, usize); 9] = [
            (0, 1),
            (1, 1),
            (2, 1),
            (3, 1),
            (4, 5),
            (6, 13),
            (8, 13),
            (9, 3),
            (7, 9), // piece: minimum only, so only "short" applies
        ];
        for &(id, len) in &fixed {
            let mut short = vec![0u8; len - 1];
            if !short.is_empty() {
                short[0] = id;
                assert_eq!(
                    Message::decode(&short),
                    Err(WireError::BadLength {
                        id,
                        len: (len - 1) as u32
                    })
                );
            }
            if id != 7 {
                let mut long = vec![0u8; len + 1];
                long[0] = id;
                assert_eq!(
                    Message::decode(&long),
                    Err(WireError::BadLength {
                        id,
                        len: (len + 1) as u32
                    })
                );
            }
        }
    }

    fn stream() -> (Vec<Message>, Vec<u8>) {
        let msgs: Vec<Message> = cases().into_iter().map(|(m, _)| m).collect();
        let mut bytes = Vec::new();
        for m in &msgs {
            m.encode(&mut bytes);
        }
        (msgs, bytes)
    }

    fn drain(d: &mut Decoder, out: &mut Vec<Message>) {
        while let Some(m) = d.next().unwrap() {
            out.push(m);
        }
    }

    #[test]
    fn decoder_one_byte_at_a_time() {
        let (msgs, bytes) = stream();
        let mut d = Decoder::new(1 << 20);
        let mut got = Vec::new();
        for b in &bytes {
            d.feed(std::slice::from_ref(b));
            drain(&mut d, &mut got);
        }
        assert_eq!(got, msgs);
        assert_eq!(d.pos, d.buf.len());
    }

    #[test]
    fn decoder_in_two_halves_at_every_split() {
        // Regression shape from cratetorrent `test_chunked_message_stream`: a split
        // inside a piece message must not lose or duplicate bytes.
        let (msgs, bytes) = stream();
        for split in 0..=bytes.len() {
            let mut d = Decoder::new(1 << 20);
            let mut got = Vec::new();
            d.feed(&bytes[..split]);
            drain(&mut d, &mut got);
            d.feed(&bytes[split..]);
            drain(&mut d, &mut got);
            assert_eq!(got, msgs, "split at {}", split);
        }
    }

    #[test]
    fn decoder_errors() {
        let mut d = Decoder::new(100);
        d.feed(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            d.next(),
            Err(WireError::TooLong {
                len: u32::MAX,
                max: 100
            })
        );
        let mut d = Decoder::new(100);
        d.feed(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(d.next(), Err(WireError::BadLength { id: 0, len: 2 }));
        // The bad frame was skipped, so the next one is still readable.
        assert_eq!(d.next(), Ok(Some(Message::Unchoke)));
        assert_eq!(d.next(), Ok(None));
    }

    fn wire_err(e: &io::Error) -> WireError {
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<WireError>())
            .cloned()
            .unwrap()
    }

    #[test]
    fn read_message_stream() {
        let (msgs, bytes) = stream();
        let mut c = Cursor::new(bytes);
        for m in &msgs {
            assert_eq!(&read_message(&mut c, 1 << 20).unwrap(), m);
        }
        let e = read_message(&mut c, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn read_message_too_long_rejected_before_allocating() {
        // If this tried to allocate 4 GiB first, the test would abort or crawl.
        let mut c = Cursor::new(vec![0xff, 0xff, 0xff, 0xff, 7]);
        let e = read_message(&mut c, 131081).unwrap_err();
        assert_eq!(
            wire_err(&e),
            WireError::TooLong {
                len: u32::MAX,
                max: 131081
            }
        );
        assert_eq!(
            e.to_string(),
            "message length 4294967295 exceeds limit 131081"
        );
    }

    #[test]
    fn read_message_eof_mid_frame_and_bad_length() {
        let mut c = Cursor::new(vec![0, 0, 0, 13, 6, 0, 0]);
        let e = read_message(&mut c, 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut c = Cursor::new(vec![0, 0]);
        let e = read_message(&mut c, 1000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut c = Cursor::new(vec![0, 0, 0, 2, 4, 0]);
        let e = read_message(&mut c, 1000).unwrap_err();
        assert_eq!(wire_err(&e), WireError::BadLength { id: 4, len: 2 });
    }

    /// A reader that hands out one byte per call and times out before every byte.
    struct Stuttering {
        data: Vec<u8>,
        pos: usize,
        tick: bool,
    }

    impl Read for Stuttering {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.tick = !self.tick;
            if self.tick {
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "tick"));
            }
            if self.pos == self.data.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.data[self.pos];
            self.pos += 1;
            Ok(1)
        }
    }

    #[test]
    fn read_message_timeouts_only_at_frame_boundaries() {
        let (msgs, bytes) = stream();
        let mut r = Stuttering {
            data: bytes,
            pos: 0,
            tick: false,
        };
        let mut got = Vec::new();
        let mut ticks = 0;
        while got.len() < msgs.len() {
            match read_message(&mut r, 1 << 20) {
                Ok(m) => got.push(m),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ticks += 1,
                Err(e) => panic!("{}", e),
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(ticks, msgs.len());
    }

    const LIM: WireLimits = WireLimits {
        num_pieces: 10,
        piece_length: 32768,
        // Last piece is 1000 bytes long.
        total_length: 9 * 32768 + 1000,
    };

    #[test]
    fn limits() {
        assert_eq!(LIM.piece_len(0), 32768);
        assert_eq!(LIM.piece_len(8), 32768);
        assert_eq!(LIM.piece_len(9), 1000);
        assert_eq!(LIM.piece_len(10), 0);
        assert_eq!(LIM.max_frame(), 9 + MAX_REQUEST);
        let big = WireLimits {
            num_pieces: 2_000_001,
            piece_length: 16384,
            total_length: 2_000_001 * 16384,
        };
        assert_eq!(big.max_frame(), 1 + 250_001);
        let exact = WireLimits {
            num_pieces: 4,
            piece_length: 16384,
            total_length: 4 * 16384,
        };
        assert_eq!(exact.piece_len(3), 16384);
    }

    #[test]
    fn check_table() {
        let req = |index, begin, length| Message::Request {
            index,
            begin,
            length,
        };
        let bad_block = |index, begin, length| {
            Err(WireError::BadBlock {
                index,
                begin,
                length,
            })
        };
        let table: Vec<(Message, Result<(), WireError>)> = vec![
            (Message::Have(9), Ok(())),
            (
                Message::Have(10),
                Err(WireError::BadIndex {
                    index: 10,
                    num_pieces: 10,
                }),
            ),
            (Message::Bitfield(vec![0xff, 0xc0]), Ok(())),
            (
                Message::Bitfield(vec![0xff]),
                Err(WireError::BadBitfield("wrong byte length")),
            ),
            (
                Message::Bitfield(vec![0xff, 0xc0, 0]),
                Err(WireError::BadBitfield("wrong byte length")),
            ),
            (
                Message::Bitfield(vec![0xff, 0xe0]),
                Err(WireError::BadBitfield("spare bits set")),
            ),
            (
                Message::Bitfield(vec![0xff, 0x01]),
                Err(WireError::BadBitfield("spare bits set")),
            ),
            (req(0, 0, BLOCK), Ok(())),
            (req(0, 16384, BLOCK), Ok(())),
            (req(0, 16385, BLOCK), bad_block(0, 16385, BLOCK)),
            (req(9, 0, 1000), Ok(())),
            (req(9, 999, 1), Ok(())),
            (req(9, 0, 1001), bad_block(9, 0, 1001)),
            (req(9, 0, BLOCK), bad_block(9, 0, BLOCK)),
            (req(0, 0, 0), bad_block(0, 0, 0)),
            (
                req(10, 0, BLOCK),
                Err(WireError::BadIndex {
                    index: 10,
                    num_pieces: 10,
                }),
            ),
            // begin + length would wrap in u32.
            (req(0, u32::MAX, 2), bad_block(0, u32::MAX, 2)),
            (
                Message::Cancel {
                    index: 9,
                    begin: 500,
                    length: 501,
                },
                bad_block(9, 500, 501),
            ),
            (
                Message::Piece {
                    index: 9,
                    begin: 0,
                    data: vec![0; 1000],
                },
                Ok(()),
            ),
            (
                Message::Piece {
                    index: 9,
                    begin: 1,
                    data: vec![0; 1000],
                },
                bad_block(9, 1, 1000),
            ),
            (
                Message::Piece {
                    index: 0,
                    begin: 0,
                    data: Vec::new(),
                },
                bad_block(0, 0, 0),
            ),
            (Message::Port(1), Ok(())),
            (Message::Unknown(20), Ok(())),
        ];
        for (m, want) in table {
            assert_eq!(m.check(&LIM), want, "{:?}", m);
        }
        // Longer than MAX_REQUEST, inside a piece that is big enough to hold it.
        let huge = WireLimits {
            num_pieces: 1,
            piece_length: 1 << 20,
            total_length: 1 << 20,
        };
        assert_eq!(req(0, 0, MAX_REQUEST).check(&huge), Ok(()));
        assert_eq!(
            req(0, 0, MAX_REQUEST + 1).check(&huge),
            bad_block(0, 0, MAX_REQUEST + 1)
        );
        // A torrent whose piece count is a multiple of 8 has no spare bits.
        let eight = WireLimits {
            num_pieces: 8,
            piece_length: 1,
            total_length: 8,
        };
        assert_eq!(Message::Bitfield(vec![0xff]).check(&eight), Ok(()));
    }

    #[test]
    fn piece_header_matches_encode() {
        let m = Message::Piece {
            index: 7,
            begin: 16384,
            data: vec![1; 100],
        };
        let bytes = enc(&m);
        assert_eq!(&bytes[..13], &piece_header(7, 16384, 100)[..]);
    }

    #[test]
    fn handshake_round_trip_and_bad_pstr() {
        let h = Handshake {
            reserved: [0, 0, 0, 0, 0, 0x10, 0, 1],
            info_hash: [0xab; 20],
            peer_id: *b"-TY0001-abcdefghijkl",
        };
        let b = h.encode();
        assert_eq!(b[0], 19);
        assert_eq!(&b[1..20], PSTR);
        assert_eq!(&b[48..], b"-TY0001-abcdefghijkl");
        assert_eq!(Handshake::decode(&b).unwrap(), h);

        let mut bad = b;
        bad[0] = 18;
        assert!(matches!(
            Handshake::decode(&bad),
            Err(WireError::BadHandshake(_))
        ));
        let mut bad = b;
        bad[1] = b'b';
        let e = Handshake::decode(&bad).unwrap_err();
        assert!(matches!(e, WireError::BadHandshake(_)));
        assert!(!e.to_string().contains('\n'));
    }

    #[test]
    fn display_is_one_line() {
        let errs = [
            WireError::TooLong { len: 1, max: 0 },
            WireError::BadLength { id: 4, len: 2 },
            WireError::BadHandshake("x"),
            WireError::BadIndex {
                index: 1,
                num_pieces: 1,
            },
            WireError::BadBitfield("spare bits set"),
            WireError::BadBlock {
                index: 1,
                begin: 2,
                length: 3,
            },
        ];
        for e in &errs {
            let s = e.to_string();
            assert!(!s.is_empty() && !s.contains('\n'), "{:?}", s);
        }
    }

    /// Deterministic mutation loop: flip, truncate and extend valid frames; neither
    /// `decode`, `check` nor `Decoder` may panic, whatever the bytes.
    #[test]
    fn mutated_frames_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (_, stream_bytes) = stream();
        let frames: Vec<Vec<u8>> = cases().into_iter().map(|(_, b)| b).collect();
        for _ in 0..20_000 {
            let mut f = frames[(rnd() % frames.len() as u64) as usize].clone();
            for _ in 0..=(rnd() % 4) {
                match rnd() % 4 {
                    0 if !f.is_empty() => {
                        let i = (rnd() % f.len() as u64) as usize;
                        f[i] ^= 1 << (rnd() % 8);
                    }
                    1 if !f.is_empty() => {
                        let i = (rnd() % f.len() as u64) as usize;
                        f[i] = rnd() as u8;
                    }
                    2 => {
                        let n = (rnd() % (f.len() as u64 + 1)) as usize;
                        f.truncate(n);
                    }
                    _ => f.push(rnd() as u8),
                }
            }
            if f.len() >= 4 {
                if let Ok(m) = Message::decode(&f[4..]) {
                    let _ = m.check(&LIM);
                    // Whatever decodes must re-encode to something that decodes the same.
                    let again = enc(&m);
                    assert_eq!(Message::decode(&again[4..]).as_ref(), Ok(&m));
                }
            }
            let _ = Message::decode(&f);
            let _ = read_message(&mut Cursor::new(&f), LIM.max_frame());
            let mut d = Decoder::new(LIM.max_frame());
            let mut chunks = stream_bytes.clone();
            chunks.extend_from_slice(&f);
            let cut = (rnd() % (chunks.len() as u64 + 1)) as usize;
            d.feed(&chunks[..cut]);
            while let Ok(Some(_)) = d.next() {}
            d.feed(&chunks[cut..]);
            for _ in 0..chunks.len() {
                match d.next() {
                    Ok(Some(m)) => {
                        let _ = m.check(&LIM);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
