//! SHA-1, the one hash BitTorrent v1 uses (piece hashes, the info-hash). All hashing in
//! tyrant goes through [`sha1`] here.
//!
//! Piece verification is the leecher's largest CPU cost, so on x86-64 CPUs with the SHA
//! extensions (SHA-NI) the compression function runs on those instructions, written from
//! the algorithm in Intel's "Intel SHA Extensions" whitepaper (Gulley et al., 2013): the
//! state lives in two vectors (A..D and E), four rounds per `sha1rnds4`, the message
//! schedule four words at a time with `sha1msg1`/`sha1msg2`. The CPU is checked at run
//! time; everywhere else, and as the reference in the tests, `sha1_smol` does the work.

/// Lower-case hex, as info-hashes and digests are shown.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

/// SHA-1 of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    #[cfg(target_arch = "x86_64")]
    {
        if ni::available() {
            // SAFETY: `available` checked that the CPU has every feature `ni::digest` is
            // compiled for.
            return unsafe { ni::digest(data) };
        }
    }
    portable(data)
}

/// The portable implementation (`sha1_smol`), also the reference for the tests.
fn portable(data: &[u8]) -> [u8; 20] {
    sha1_smol::Sha1::from(data).digest().bytes()
}

const INIT: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];

/// The final one or two blocks: the tail of the message, 0x80, zeros, and the message
/// length in bits as a big-endian u64 (FIPS 180-4 §5.1.1). Returns the bytes to hash.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pad_tail(tail: &[u8], total_len: u64, buf: &mut [u8; 128]) -> usize {
    debug_assert!(tail.len() < 64);
    buf[..tail.len()].copy_from_slice(tail);
    buf[tail.len()] = 0x80;
    // 8 bytes of length must fit after the 0x80 in the same block, else spill into a second.
    let n = if tail.len() + 1 + 8 <= 64 { 64 } else { 128 };
    buf[tail.len() + 1..n - 8].fill(0);
    buf[n - 8..n].copy_from_slice(&total_len.wrapping_mul(8).to_be_bytes());
    n
}

#[cfg(target_arch = "x86_64")]
mod ni {
    use std::arch::x86_64::*;

    /// `is_x86_feature_detected!` asks the CPU once and caches the answer itself.
    pub fn available() -> bool {
        is_x86_feature_detected!("sha")
            && is_x86_feature_detected!("sse2")
            && is_x86_feature_detected!("ssse3")
            && is_x86_feature_detected!("sse4.1")
    }

    /// Caller must make sure the CPU has SHA, SSE2, SSSE3 and SSE4.1 (`available`).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn digest(data: &[u8]) -> [u8; 20] {
        let i = super::INIT;
        // Word A sits in the highest lane, as the SHA instructions expect.
        let mut abcd = _mm_set_epi32(i[0] as i32, i[1] as i32, i[2] as i32, i[3] as i32);
        let mut e = _mm_set_epi32(i[4] as i32, 0, 0, 0);
        let whole = data.len() - data.len() % 64;
        compress(&mut abcd, &mut e, &data[..whole]);
        let mut buf = [0u8; 128];
        let n = super::pad_tail(&data[whole..], data.len() as u64, &mut buf);
        compress(&mut abcd, &mut e, &buf[..n]);

        let mut words = [0u32; 4];
        _mm_storeu_si128(words.as_mut_ptr() as *mut __m128i, abcd);
        let e_out = _mm_extract_epi32(e, 3) as u32;
        let mut out = [0u8; 20];
        for (k, w) in [words[3], words[2], words[1], words[0], e_out].iter().enumerate() {
            out[4 * k..4 * k + 4].copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// Run the compression function over whole 64-byte blocks.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn compress(abcd: &mut __m128i, e: &mut __m128i, blocks: &[u8]) {
        debug_assert!(blocks.len() % 64 == 0);
        // Reverses all 16 bytes: each big-endian word becomes a native one, and the first
        // word of the four lands in the highest lane.
        let swap = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        for block in blocks.chunks_exact(64) {
            let p = block.as_ptr() as *const __m128i;
            // w[k] holds message words 4k..4k+3 of the 80-word schedule.
            let mut w = [_mm_setzero_si128(); 20];
            for (k, slot) in w.iter_mut().take(4).enumerate() {
                *slot = _mm_shuffle_epi8(_mm_loadu_si128(p.add(k)), swap);
            }
            // W[t] = rotl1(W[t-3] ^ W[t-8] ^ W[t-14] ^ W[t-16]), four at a time: msg1
            // forms W[t-16] ^ W[t-14], the xor adds W[t-8], msg2 adds W[t-3] and rotates
            // (including the words that depend on the first of the same four).
            for k in 4..20 {
                let x = _mm_sha1msg1_epu32(w[k - 4], w[k - 3]);
                let x = _mm_xor_si128(x, w[k - 2]);
                w[k] = _mm_sha1msg2_epu32(x, w[k - 1]);
            }

            let (abcd0, e0) = (*abcd, *e);
            // Rounds 0-3 take E plus the first four words; after that, E for a group of
            // four rounds is A of four rounds earlier rotated by 30 (`sha1nexte`).
            let mut prev = *abcd;
            let mut x = *abcd;
            x = _mm_sha1rnds4_epu32(x, _mm_add_epi32(*e, w[0]), 0);
            // Four rounds per word group `w[k]`; the round function `f` changes every 20
            // rounds (five groups).
            macro_rules! rounds {
                ($f:literal: $($k:literal)*) => {$(
                    let ek = _mm_sha1nexte_epu32(prev, w[$k]);
                    prev = x;
                    x = _mm_sha1rnds4_epu32(x, ek, $f);
                )*};
            }
            rounds!(0: 1 2 3 4);
            rounds!(1: 5 6 7 8 9);
            rounds!(2: 10 11 12 13 14);
            rounds!(3: 15 16 17 18 19);
            *e = _mm_sha1nexte_epu32(prev, e0);
            *abcd = _mm_add_epi32(x, abcd0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Which implementation [`sha1`] uses on this machine.
    fn implementation() -> &'static str {
        #[cfg(target_arch = "x86_64")]
        {
            if ni::available() {
                return "sha-ni";
            }
        }
        "sha1_smol"
    }

    #[test]
    fn known_answers() {
        // FIPS 180-2 appendix A and the usual extra vectors.
        let cases: [(&[u8], &str); 4] = [
            (b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
            ),
            (
                b"The quick brown fox jumps over the lazy dog",
                "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(&sha1(input)), want);
            assert_eq!(hex(&portable(input)), want);
        }
        let million_a = vec![b'a'; 1_000_000];
        assert_eq!(hex(&sha1(&million_a)), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }

    #[test]
    fn padding_edge_lengths_match_the_reference() {
        let mut rng = Rng::new(7);
        let data: Vec<u8> = (0..300).map(|_| rng.next_u64() as u8).collect();
        for len in (0..=200).chain([255, 256, 257, 299, 300]) {
            assert_eq!(sha1(&data[..len]), portable(&data[..len]), "length {}", len);
        }
        for len in [55, 56, 63, 64, 119, 120, 127, 128] {
            assert_eq!(sha1(&data[..len]), portable(&data[..len]), "length {}", len);
            let same = vec![0xffu8; len];
            assert_eq!(sha1(&same), portable(&same), "0xff × {}", len);
        }
    }

    #[test]
    fn random_lengths_and_contents_match_the_reference() {
        let mut rng = Rng::new(0x5a1);
        for _ in 0..400 {
            let len = match rng.below(4) {
                0 => rng.below(130) as usize,
                1 => rng.below(4096) as usize,
                2 => 16384 * (1 + rng.below(4) as usize) - 1 + rng.below(3) as usize,
                _ => rng.below(300_000) as usize,
            };
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            assert_eq!(sha1(&data), portable(&data), "length {}", len);
        }
    }

    /// MB/s of both implementations: `cargo test --release sha1_speed -- --ignored
    /// --nocapture`. Prints only; never a timed assertion.
    #[test]
    #[ignore]
    fn sha1_speed() {
        let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i * 31 + 7) as u8).collect();
        let rounds = 2048; // 512 MiB
        let mb = (data.len() * rounds) as f64 / 1e6;
        for (name, f) in
            [("sha1 (dispatch)", sha1 as fn(&[u8]) -> [u8; 20]), ("sha1_smol", portable)]
        {
            let t = std::time::Instant::now();
            let mut acc = 0u8;
            for _ in 0..rounds {
                acc ^= f(&data)[0];
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "{:16} {:8.1} MB/s  ({} MB in {:.2} s, {}) [{}]",
                name,
                mb / s,
                mb as u64,
                s,
                implementation(),
                acc
            );
        }
    }
}
