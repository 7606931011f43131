//! An incremental peer-wire decoder for test peers: bytes arrive in arbitrary chunks, whole
//! frames come out. The client itself reads with `tyrant::peer::read_message` on a blocking
//! socket; tests that drive raw sockets without blocking (hostile peers) and the fuzz test
//! (which checks that both ways of framing agree) use this one.

use tyrant::peer::{Message, WireError};

pub struct Decoder {
    buf: Vec<u8>,
    /// Start of the first undecoded byte in `buf`; consumed bytes are dropped lazily so
    /// that decoding many small messages from one chunk is not quadratic.
    pos: usize,
    max_frame: u32,
}

impl Decoder {
    pub fn new(max_frame: u32) -> Decoder {
        Decoder { buf: Vec::new(), pos: 0, max_frame }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Next complete message, Ok(None) if more bytes are needed. After `TooLong` nothing is
    /// consumed (the frame boundary is untrustworthy), so the error repeats.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Message>, WireError> {
        let avail = &self.buf[self.pos..];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]);
        if len > self.max_frame {
            return Err(WireError::TooLong { len, max: self.max_frame });
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
