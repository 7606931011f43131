//! Seeded pseudo-random numbers for every random choice the client makes (optimistic
//! unchoke rotation, random-first piece picks, tie-breaks), so that a run is
//! reproducible from one seed. xoshiro256** (Blackman & Vigna, "Scrambled linear
//! pseudorandom number generators", 2018) seeded through splitmix64 as its authors
//! recommend; not cryptographic, and it does not need to be.

/// xoshiro256** generator. Cheap to clone; `fork` gives sub-components their own
/// stream so that adding a random call in one place does not reshuffle the others.
#[derive(Clone, Debug)]
pub struct Rng {
    s: [u64; 4],
}

/// splitmix64 step: turns any seed, including 0, into well-mixed state words
/// (xoshiro must never start from the all-zero state).
fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let s = [splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x), splitmix64(&mut x)];
        Rng { s }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, n); n = 0 gives 0. Unbiased: draws below 2^64 mod n are rejected,
    /// so every residue is hit by the same number of accepted draws.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // 2^64 mod n, computed without 128-bit arithmetic.
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// Uniform in [0, 1), using the top 53 bits (a double's full precision).
    pub fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Fisher–Yates (Durstenfeld) shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }

    /// An independent stream for a sub-component, seeded from this one. Advances this
    /// generator by one draw.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        for &seed in &[0u64, 1, 42, u64::MAX] {
            let mut a = Rng::new(seed);
            let mut b = Rng::new(seed);
            for _ in 0..1000 {
                assert_eq!(a.next_u64(), b.next_u64());
            }
        }
        // Seed 0 must not produce a stuck all-zero stream.
        let mut z = Rng::new(0);
        assert!((0..10).any(|_| z.next_u64() != 0));
    }

    #[test]
    fn known_answer() {
        // splitmix64(0) first output, from the reference implementation.
        let mut x = 0u64;
        assert_eq!(splitmix64(&mut x), 0xe220_a839_7b1d_cdaf);
        // xoshiro256** from state [1, 2, 3, 4]: first output is 11520 (reference C).
        let mut r = Rng { s: [1, 2, 3, 4] };
        assert_eq!(r.next_u64(), 11520);
        assert_eq!(r.next_u64(), 0);
        assert_eq!(r.next_u64(), 1_509_978_240);
    }

    #[test]
    fn different_seeds_differ() {
        let seq = |seed| {
            let mut r = Rng::new(seed);
            (0..8).map(|_| r.next_u64()).collect::<Vec<_>>()
        };
        assert_ne!(seq(0), seq(1));
        assert_ne!(seq(1), seq(2));
        let mut parent = Rng::new(7);
        let mut child = parent.fork();
        let a: Vec<u64> = (0..8).map(|_| parent.next_u64()).collect();
        let b: Vec<u64> = (0..8).map(|_| child.next_u64()).collect();
        assert_ne!(a, b);
        // Forking is deterministic too.
        let mut p2 = Rng::new(7);
        let mut c2 = p2.fork();
        assert_eq!(c2.next_u64(), b[0]);
    }

    #[test]
    fn below_covers_range_and_is_roughly_uniform() {
        let mut r = Rng::new(12345);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        let n = 100_000u64;
        let mut bins = [0u64; 10];
        for _ in 0..n {
            let x = r.below(10);
            assert!(x < 10);
            bins[x as usize] += 1;
        }
        assert!(bins.iter().all(|&c| c > 0));
        let expect = n as f64 / 10.0;
        let chi2: f64 = bins.iter().map(|&c| (c as f64 - expect).powi(2) / expect).sum();
        // 9 degrees of freedom: P(chi2 > 27.9) = 0.001, and the seed is fixed anyway.
        assert!(chi2 < 27.9, "chi2 {} bins {:?}", chi2, bins);
        // A bound just above 2^63 is where a biased `x % n` would be worst.
        let big = (1u64 << 63) + 1;
        assert!((0..1000).all(|_| r.below(big) < big));
        assert!((0..1000).all(|_| r.below(u64::MAX) < u64::MAX));
    }

    #[test]
    fn f64_in_unit_interval() {
        let mut r = Rng::new(3);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let x = r.f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        assert!((sum / 10_000.0 - 0.5).abs() < 0.02);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut r = Rng::new(99);
        let mut v: Vec<u32> = (0..100).collect();
        r.shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        let mut sorted = v.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        // Empty and single-element slices are fine.
        r.shuffle(&mut Vec::<u8>::new());
        let mut one = [5];
        r.shuffle(&mut one);
        assert_eq!(one, [5]);
        // Every position of a 3-element shuffle sees every element.
        let mut seen = [[false; 3]; 3];
        for _ in 0..200 {
            let mut t = [0usize, 1, 2];
            r.shuffle(&mut t);
            for (pos, &x) in t.iter().enumerate() {
                seen[pos][x] = true;
            }
        }
        assert!(seen.iter().all(|row| row.iter().all(|&b| b)));
    }
}
