//! BitSybil (the 2022 downpour study's `sybil` branch and its wrapper; docs/strategies.md,
//! "BitSybil"): one user runs N identities, each with its own peer id and port, a
//! contiguous 1/N of the pieces and 1/N of the upload cap. Each identity is an ordinary
//! vanilla client that fetches, announces and counts complete only its own share; the user
//! has the file when every identity has its share. Unlike downpour's identities, ours know
//! each other (peer ids and addresses) and never connect or trade: a sybil must not gain
//! by trading with itself. `main.rs` runs the identities side by side in one process.

/// One identity's slice of the download and of the upload capacity.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub index: u32,
    /// Pieces `start..end` (empty when there are more identities than pieces).
    pub share: (u32, u32),
    /// Its upload cap in KiB/s (0 = uncapped, as for the whole).
    pub up_kib: f64,
}

/// Split `pieces` and `up_kib` over `n` identities: identity i owns pieces
/// [i·W, min((i+1)·W, P)) with W = ⌈P/n⌉, as downpour's `sybil.go` does.
pub fn split(n: u32, pieces: u32, up_kib: f64) -> Vec<Identity> {
    let n = n.max(1);
    let width = (pieces + n - 1) / n;
    (0..n)
        .map(|i| Identity {
            index: i,
            share: ((i * width).min(pieces), ((i + 1) * width).min(pieces)),
            up_kib: up_kib / f64::from(n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_tile_the_pieces_and_the_capacity() {
        // (n, pieces, up) -> shares
        type Case = (u32, u32, f64, &'static [(u32, u32)]);
        let cases: &[Case] = &[
            (1, 64, 40.0, &[(0, 64)]),
            (2, 64, 40.0, &[(0, 32), (32, 64)]),
            (3, 64, 30.0, &[(0, 22), (22, 44), (44, 64)]),
            (4, 5, 0.0, &[(0, 2), (2, 4), (4, 5), (5, 5)]),
        ];
        for &(n, pieces, up, want) in cases {
            let ids = split(n, pieces, up);
            let shares: Vec<(u32, u32)> = ids.iter().map(|i| i.share).collect();
            assert_eq!(shares, want, "n={} pieces={}", n, pieces);
            let total: f64 = ids.iter().map(|i| i.up_kib).sum();
            assert!((total - up).abs() < 1e-9);
            assert!(ids.iter().enumerate().all(|(k, i)| i.index == k as u32));
        }
    }
}
