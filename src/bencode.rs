//! Bencode (BEP 3 "bencoding"): a strict decoder and a canonical encoder.
//!
//! The decoder follows mainline's `bencode.py` (dispatch on the first byte, strict integers
//! and lengths, trailing bytes rejected) and adds what a client facing hostile input needs:
//! a nesting-depth bound, string lengths checked against the input before allocating, and
//! the raw byte span of every dictionary value, so the info-hash is SHA-1 of the bytes as
//! they were sent, never of a re-encoding.
//! Dictionary keys are accepted in any order on read (real tools write unsorted keys);
//! duplicate keys are rejected because two readers could disagree about them.

use std::collections::BTreeMap;
use std::fmt;

/// Deepest list/dict nesting accepted; real metainfo and tracker replies use fewer than 8.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(Dict),
}

/// A decoded dictionary. `spans` keeps, per key, the byte range of the value inside the
/// buffer that was decoded (empty for dictionaries built in code).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dict {
    pub map: BTreeMap<Vec<u8>, Value>,
    pub spans: BTreeMap<Vec<u8>, (usize, usize)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub pos: usize,
    pub what: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad bencode at byte {}: {}", self.pos, self.what)
    }
}

impl std::error::Error for Error {}

/// Decode exactly one value that fills the whole buffer.
pub fn decode(buf: &[u8]) -> Result<Value, Error> {
    let mut d = Decoder { buf, pos: 0 };
    let v = d.value(0)?;
    if d.pos != buf.len() {
        return Err(d.err("trailing bytes after value"));
    }
    Ok(v)
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn err(&self, what: &'static str) -> Error {
        Error { pos: self.pos, what }
    }

    fn peek(&self) -> Result<u8, Error> {
        self.buf.get(self.pos).copied().ok_or_else(|| self.err("unexpected end of input"))
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                Ok(Value::Int(self.integer(b'e')?))
            }
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                self.pos += 1;
                let mut dict = Dict::default();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(self.err("dictionary key is not a string"));
                    }
                    let key = self.string()?;
                    if dict.map.contains_key(&key) {
                        return Err(self.err("duplicate dictionary key"));
                    }
                    let start = self.pos;
                    let v = self.value(depth + 1)?;
                    dict.spans.insert(key.clone(), (start, self.pos));
                    dict.map.insert(key, v);
                }
                self.pos += 1;
                Ok(Value::Dict(dict))
            }
            b'0'..=b'9' => Ok(Value::Bytes(self.string()?)),
            _ => Err(self.err("unexpected byte (want i, l, d or a digit)")),
        }
    }

    /// Digits up to `end`: no leading zeros, no "-0", no empty number, no overflow.
    fn integer(&mut self, end: u8) -> Result<i64, Error> {
        let start = self.pos;
        let stop = self.buf[start..].iter().position(|&b| b == end).map(|i| start + i);
        let stop = stop.ok_or_else(|| self.err("unterminated integer"))?;
        let s = &self.buf[start..stop];
        let digits = s.strip_prefix(b"-").unwrap_or(s);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(self.err("malformed integer"));
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(self.err("integer with leading zero"));
        }
        if s.len() != digits.len() && digits == b"0" {
            return Err(self.err("negative zero"));
        }
        // Only ASCII digits are left, so parsing fails on overflow alone.
        let n: i64 = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| self.err("integer overflows 64 bits"))?;
        self.pos = stop + 1;
        Ok(if s.len() != digits.len() { -n } else { n })
    }

    fn string(&mut self) -> Result<Vec<u8>, Error> {
        let len = self.integer(b':')?;
        if len < 0 {
            return Err(self.err("negative string length"));
        }
        // Checked before allocating, so a hostile length prefix costs nothing.
        if len as u64 > (self.buf.len() - self.pos) as u64 {
            return Err(self.err("string runs past end of input"));
        }
        let len = len as usize;
        let s = self.buf[self.pos..self.pos + len].to_vec();
        self.pos += len;
        Ok(s)
    }
}

/// Canonical encoding: dictionary keys sorted (BTreeMap order), shortest integers.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Int(n) => out.extend_from_slice(format!("i{}e", n).as_bytes()),
        Value::Bytes(b) => encode_bytes(b, out),
        Value::List(items) => {
            out.push(b'l');
            for i in items {
                encode_into(i, out);
            }
            out.push(b'e');
        }
        Value::Dict(d) => {
            out.push(b'd');
            for (k, v) in &d.map {
                encode_bytes(k, out);
                encode_into(v, out);
            }
            out.push(b'e');
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{}:", b.len()).as_bytes());
    out.extend_from_slice(b);
}

impl Dict {
    pub fn new() -> Dict {
        Dict::default()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key.as_bytes())
    }

    /// Byte range of `key`'s value in the decoded buffer.
    pub fn span(&self, key: &str) -> Option<(usize, usize)> {
        self.spans.get(key.as_bytes()).copied()
    }

    /// Builder-style insert for encoding.
    pub fn with(mut self, key: &str, v: Value) -> Dict {
        self.map.insert(key.as_bytes().to_vec(), v);
        self
    }

    pub fn insert(&mut self, key: &str, v: Value) {
        self.map.insert(key.as_bytes().to_vec(), v);
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_int)
    }

    pub fn bytes(&self, key: &str) -> Option<&[u8]> {
        self.get(key).and_then(Value::as_bytes)
    }

    /// A UTF-8 string value (lossy: tracker messages and names are shown, not trusted).
    pub fn str_lossy(&self, key: &str) -> Option<String> {
        self.bytes(key).map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn list(&self, key: &str) -> Option<&[Value]> {
        self.get(key).and_then(Value::as_list)
    }
}

/// Nested dictionaries by key: only the tests read replies that deeply.
#[cfg(test)]
impl Dict {
    pub fn dict(&self, key: &str) -> Option<&Dict> {
        self.get(key).and_then(Value::as_dict)
    }
}

impl Value {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn as_dict(&self) -> Option<&Dict> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
    pub fn str(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_valid_values() {
        let cases: &[(&[u8], Value)] = &[
            (b"i0e", Value::Int(0)),
            (b"i42e", Value::Int(42)),
            (b"i-7e", Value::Int(-7)),
            (b"i9223372036854775807e", Value::Int(i64::MAX)),
            (b"i-9223372036854775807e", Value::Int(-i64::MAX)),
            (b"0:", Value::Bytes(vec![])),
            (b"4:spam", Value::str("spam")),
            (b"3:\x00\xff:", Value::Bytes(vec![0, 0xff, b':'])),
            (b"le", Value::List(vec![])),
            (b"l4:spami3ee", Value::List(vec![Value::str("spam"), Value::Int(3)])),
            (b"de", Value::Dict(Dict::new())),
        ];
        for (input, want) in cases {
            let got = decode(input).unwrap_or_else(|e| panic!("{:?}: {}", input, e));
            // spans differ from a hand-built Dict; compare through the encoder
            assert_eq!(encode(&got), encode(want), "input {:?}", input);
        }
    }

    #[test]
    fn rejects_malformed_input() {
        let bad: &[&[u8]] = &[
            b"",
            b"i",
            b"ie",
            b"i-e",
            b"i-0e",
            b"i01e",
            b"i00e",
            b"i-01e",
            b"i1.5e",
            b"i+1e",
            b"i 1e",
            b"i1",
            b"i9223372036854775808e",
            b"i99999999999999999999999e",
            b"1",
            b"1:",
            b"5:spam",
            b"01:a",
            b"-1:a",
            b"a",
            b"x",
            b"l",
            b"li1e",
            b"d",
            b"d1:a",
            b"d1:ai1e",
            b"di1ei2ee",
            b"dle",
            b"d1:ai1e1:ai2ee",
            b"i1ei2e",
            b"4:spamx",
            b"lee",
            b"de ",
            b"e",
            b":",
            b"1:ab",
            b"18446744073709551616:x",
        ];
        for input in bad {
            assert!(
                decode(input).is_err(),
                "accepted malformed {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn nesting_depth_is_bounded() {
        let mut deep = vec![b'l'; MAX_DEPTH + 5];
        deep.extend(vec![b'e'; MAX_DEPTH + 5]);
        assert!(decode(&deep).is_err());
        let mut ok = vec![b'l'; MAX_DEPTH];
        ok.extend(vec![b'e'; MAX_DEPTH]);
        assert!(decode(&ok).is_ok());
    }

    #[test]
    fn unsorted_keys_are_accepted_and_spans_point_at_original_bytes() {
        // "info" comes before "announce" and its own keys are unsorted: a re-encoding would
        // reorder them and change the hash, the span must not.
        let buf = b"d4:infod4:zzzzi1e4:aaaai2ee8:announce3:urle";
        let v = decode(buf).unwrap();
        let d = v.as_dict().unwrap();
        let (s, e) = d.span("info").unwrap();
        assert_eq!(&buf[s..e], b"d4:zzzzi1e4:aaaai2ee");
        assert_ne!(encode(d.get("info").unwrap()), buf[s..e].to_vec());
        assert_eq!(d.str_lossy("announce").as_deref(), Some("url"));
    }

    #[test]
    fn encode_round_trips_canonical_input() {
        let canonical: &[&[u8]] = &[
            b"d8:announce17:http://x/announce4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces0:ee",
            b"li-1ei0e0:l0:ee",
        ];
        for c in canonical {
            assert_eq!(&encode(&decode(c).unwrap())[..], *c);
        }
    }

    #[test]
    fn mutated_input_never_panics() {
        let base = b"d8:announce17:http://x/announce4:infod6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces0:ee".to_vec();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut m = base.clone();
            let pos = (x % m.len() as u64) as usize;
            match (x >> 32) % 3 {
                0 => m[pos] = (x >> 40) as u8,
                1 => m.truncate(pos),
                _ => {
                    m.insert(pos, (x >> 48) as u8);
                }
            }
            let _ = decode(&m);
        }
    }
}
