//! Unit tests for `crate::peer` (the BEP 3 wire codec).

use super::*;
use crate::pieces::BLOCK;
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
        (Message::Bitfield(vec![0b1010_0000, 0xff]), vec![0, 0, 0, 3, 5, 0b1010_0000, 0xff]),
        (
            Message::Request(Block { index: 1, begin: 0x4000, length: 0x4000 }),
            vec![0, 0, 0, 13, 6, 0, 0, 0, 1, 0, 0, 0x40, 0, 0, 0, 0x40, 0],
        ),
        (
            Message::Piece { index: 2, begin: 0x10, data: vec![0xaa, 0xbb, 0xcc] },
            vec![0, 0, 0, 12, 7, 0, 0, 0, 2, 0, 0, 0, 0x10, 0xaa, 0xbb, 0xcc],
        ),
        (
            Message::Cancel(Block { index: 3, begin: 0, length: 5 }),
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
    assert_eq!(Message::decode(&[5]).unwrap(), Message::Bitfield(Vec::new()));
    assert_eq!(
        Message::decode(&[7, 0, 0, 0, 1, 0, 0, 0, 2]).unwrap(),
        Message::Piece { index: 1, begin: 2, data: Vec::new() }
    );
    // Unknown ids keep their payload out of the message.
    assert_eq!(Message::decode(&[20, 0, b'd', b'e']).unwrap(), Message::Unknown(20));
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
                Err(WireError::BadLength { id, len: (len - 1) as u32 })
            );
        }
        if id != 7 {
            let mut long = vec![0u8; len + 1];
            long[0] = id;
            assert_eq!(
                Message::decode(&long),
                Err(WireError::BadLength { id, len: (len + 1) as u32 })
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

/// A reader that hands out at most `step` bytes per read, as a socket may.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn read_all<R: Read>(mut r: R, n: usize) -> Vec<Message> {
    (0..n).map(|_| read_message(&mut r, 1 << 20).unwrap()).collect()
}

#[test]
fn one_byte_at_a_time() {
    let (msgs, bytes) = stream();
    let r = Trickle { data: &bytes, step: 1 };
    assert_eq!(read_all(r, msgs.len()), msgs);
}

#[test]
fn in_two_halves_at_every_split() {
    // Regression shape from cratetorrent `test_chunked_message_stream`: a split inside a
    // piece message must not lose or duplicate bytes.
    let (msgs, bytes) = stream();
    for split in 0..=bytes.len() {
        let r = Cursor::new(&bytes[..split]).chain(Cursor::new(&bytes[split..]));
        assert_eq!(read_all(r, msgs.len()), msgs, "split at {}", split);
    }
}

#[test]
fn a_bad_length_is_skipped_and_a_huge_one_is_refused_before_reading() {
    let e = read_message(&mut Cursor::new([0xffu8, 0xff, 0xff, 0xff, 1]), 100).unwrap_err();
    assert_eq!(wire_err(&e), WireError::TooLong { len: u32::MAX, max: 100 });
    let mut c = Cursor::new([0u8, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1]);
    let e = read_message(&mut c, 100).unwrap_err();
    assert_eq!(wire_err(&e), WireError::BadLength { id: 0, len: 2 });
    // The bad frame was consumed whole, so the next one is still readable.
    assert_eq!(read_message(&mut c, 100).unwrap(), Message::Unchoke);
}

fn wire_err(e: &io::Error) -> WireError {
    assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    e.get_ref().and_then(|inner| inner.downcast_ref::<WireError>()).cloned().unwrap()
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
    assert_eq!(wire_err(&e), WireError::TooLong { len: u32::MAX, max: 131081 });
    assert_eq!(e.to_string(), "message length 4294967295 exceeds limit 131081");
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
    let mut r = Stuttering { data: bytes, pos: 0, tick: false };
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

const LIM: Geometry = Geometry {
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
    assert_eq!(max_frame(&LIM), 9 + MAX_REQUEST);
    let big =
        Geometry { num_pieces: 2_000_001, piece_length: 16384, total_length: 2_000_001 * 16384 };
    assert_eq!(max_frame(&big), 1 + 250_001);
    let exact = Geometry { num_pieces: 4, piece_length: 16384, total_length: 4 * 16384 };
    assert_eq!(exact.piece_len(3), 16384);
}

#[test]
fn check_table() {
    let req = |index, begin, length| Message::Request(Block { index, begin, length });
    let bad_block = |index, begin, length| Err(WireError::BadBlock { index, begin, length });
    let table: Vec<(Message, Result<(), WireError>)> = vec![
        (Message::Have(9), Ok(())),
        (Message::Have(10), Err(WireError::BadIndex { index: 10, num_pieces: 10 })),
        (Message::Bitfield(vec![0xff, 0xc0]), Ok(())),
        (Message::Bitfield(vec![0xff]), Err(WireError::BadBitfield("wrong byte length"))),
        (Message::Bitfield(vec![0xff, 0xc0, 0]), Err(WireError::BadBitfield("wrong byte length"))),
        (Message::Bitfield(vec![0xff, 0xe0]), Err(WireError::BadBitfield("spare bits set"))),
        (Message::Bitfield(vec![0xff, 0x01]), Err(WireError::BadBitfield("spare bits set"))),
        (req(0, 0, BLOCK), Ok(())),
        (req(0, 16384, BLOCK), Ok(())),
        (req(0, 16385, BLOCK), bad_block(0, 16385, BLOCK)),
        (req(9, 0, 1000), Ok(())),
        (req(9, 999, 1), Ok(())),
        (req(9, 0, 1001), bad_block(9, 0, 1001)),
        (req(9, 0, BLOCK), bad_block(9, 0, BLOCK)),
        (req(0, 0, 0), bad_block(0, 0, 0)),
        (req(10, 0, BLOCK), Err(WireError::BadIndex { index: 10, num_pieces: 10 })),
        // begin + length would wrap in u32.
        (req(0, u32::MAX, 2), bad_block(0, u32::MAX, 2)),
        (Message::Cancel(Block { index: 9, begin: 500, length: 501 }), bad_block(9, 500, 501)),
        (Message::Piece { index: 9, begin: 0, data: vec![0; 1000] }, Ok(())),
        (Message::Piece { index: 9, begin: 1, data: vec![0; 1000] }, bad_block(9, 1, 1000)),
        (Message::Piece { index: 0, begin: 0, data: Vec::new() }, bad_block(0, 0, 0)),
        (Message::Port(1), Ok(())),
        (Message::Unknown(20), Ok(())),
    ];
    for (m, want) in table {
        assert_eq!(m.check(&LIM), want, "{:?}", m);
    }
    // Longer than MAX_REQUEST, inside a piece that is big enough to hold it.
    let huge = Geometry { num_pieces: 1, piece_length: 1 << 20, total_length: 1 << 20 };
    assert_eq!(req(0, 0, MAX_REQUEST).check(&huge), Ok(()));
    assert_eq!(req(0, 0, MAX_REQUEST + 1).check(&huge), bad_block(0, 0, MAX_REQUEST + 1));
    // A torrent whose piece count is a multiple of 8 has no spare bits.
    let eight = Geometry { num_pieces: 8, piece_length: 1, total_length: 8 };
    assert_eq!(Message::Bitfield(vec![0xff]).check(&eight), Ok(()));
}

#[test]
fn piece_header_matches_encode() {
    let m = Message::Piece { index: 7, begin: 16384, data: vec![1; 100] };
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
    assert!(matches!(Handshake::decode(&bad), Err(WireError::BadHandshake(_))));
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
        WireError::BadIndex { index: 1, num_pieces: 1 },
        WireError::BadBitfield("spare bits set"),
        WireError::BadBlock { index: 1, begin: 2, length: 3 },
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
        let _ = read_message(&mut Cursor::new(&f), max_frame(&LIM));
        let mut chunks = stream_bytes.clone();
        chunks.extend_from_slice(&f);
        let cut = (rnd() % (chunks.len() as u64 + 1)) as usize;
        let mut r = Cursor::new(&chunks[..cut]).chain(Cursor::new(&chunks[cut..]));
        for _ in 0..chunks.len() {
            match read_message(&mut r, max_frame(&LIM)) {
                Ok(m) => {
                    let _ = m.check(&LIM);
                }
                Err(_) => break,
            }
        }
    }
}

#[test]
fn bitfield_bytes_round_trip_msb_first() {
    let bits = vec![true, false, false, false, false, false, false, true, true];
    let bytes = bits_to_bytes(&bits);
    assert_eq!(bytes, vec![0x81, 0x80]);
    assert_eq!(bytes_to_bits(&bytes, 9), bits);
    assert_eq!(bytes_to_bits(&[], 3), vec![false; 3]);
}

#[test]
fn extension_handshake_says_reqq_and_nothing_else() {
    let mut b = Vec::new();
    Message::Reqq(2000).encode(&mut b);
    assert_eq!(b, b"\x00\x00\x00\x15\x14\x00d1:mde4:reqqi2000ee".to_vec());
    let dict = crate::bencode::decode(&b[6..]).unwrap();
    let d = dict.as_dict().unwrap();
    assert_eq!(d.int("reqq"), Some(2000));
    assert_eq!(d.get("m").and_then(|m| m.as_dict()).map(|m| m.get("ut_pex")), Some(None));
    let m = read_message(&mut Cursor::new(&b), 1 << 16).unwrap();
    assert_eq!(m, Message::Reqq(2000));
    assert_eq!(EXTENSION_BIT[5] & 0x10, 0x10);
}

#[test]
fn extension_handshakes_without_a_usable_reqq_are_skipped() {
    // aria2's, with reqq among other keys, is read; anything else with id 20 is skipped.
    let ours = |payload: &[u8]| Message::decode(&[&[20u8][..], payload].concat());
    let aria2 =
        b"\0d1:md11:ut_metadatai8e6:ut_pexi1ee13:metadata_sizei0e4:reqqi512e1:v12:aria2/1.36.0e";
    assert_eq!(ours(aria2), Ok(Message::Reqq(512)));
    for payload in [
        &b"\0d1:mdee"[..],         // no reqq
        b"\0d4:reqqi-1ee",         // negative
        b"\0d4:reqqi4294967296ee", // above u32
        b"\0d4:reqq3:abce",        // not an integer
        b"\0d4:reqqi5e",           // truncated
        b"\0d4:reqqi5eeX",         // trailing byte
        b"\0",                     // empty
        b"",                       // no extended id
        b"\x01d4:reqqi5ee",        // an extension message, not the handshake
        b"\0li5ee",                // not a dictionary
    ] {
        assert_eq!(ours(payload), Ok(Message::Unknown(20)), "{:?}", payload);
    }
}
