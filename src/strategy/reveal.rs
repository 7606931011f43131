//! Strategic piece revelation (`--reveal N`; Levin et al. SIGCOMM 2008 §5;
//! docs/strategies.md, "Strategic piece revelation"): instead of announcing every verified piece to
//! everyone, show each neighbour just enough to keep it interested in us — at most N pieces
//! it lacks at any time — choosing the most common pieces first, so our rare pieces stay
//! scarce (and we stay interesting) for longer. Only pieces we really have are ever shown.
//!
//! A pure function over bitfields; the chooser sends the HAVEs the strategy returns.

use super::{Show, Strategy};

/// `--reveal N`: no bitfield; HAVEs are rationed per neighbour.
pub fn apply(s: &mut Strategy, n: u32) {
    s.show = Show::Ration(n);
}

/// Which pieces to announce to one neighbour now.
///
/// `ours`: pieces we have verified; `theirs`: pieces the neighbour has; `shown`: pieces
/// already announced to it; `avail(i)`: how many connected peers have piece i. Returns
/// piece indices, most common first (ties: lowest index), so that afterwards at most `n`
/// shown pieces are missing at the neighbour.
pub fn to_reveal(
    ours: &[bool],
    theirs: &[bool],
    shown: &[bool],
    avail: &dyn Fn(u32) -> u32,
    n: usize,
) -> Vec<u32> {
    let outstanding = (0..ours.len()).filter(|&i| shown[i] && !theirs[i]).count();
    if outstanding >= n {
        return Vec::new();
    }
    let mut cands: Vec<usize> =
        (0..ours.len()).filter(|&i| ours[i] && !theirs[i] && !shown[i]).collect();
    // Most common first: revealing what others also offer costs us little scarcity.
    cands.sort_by(|&a, &b| avail(b as u32).cmp(&avail(a as u32)).then(a.cmp(&b)));
    cands.truncate(n - outstanding);
    cands.into_iter().map(|i| i as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    /// (ours, theirs, shown, availability, n) -> pieces revealed
    type Case = (&'static str, &'static str, &'static str, &'static [u32], usize, &'static [u32]);

    #[test]
    fn reveal_table() {
        let cases: &[Case] = &[
            // nothing shown yet: the two most common of our pieces they lack
            ("11110", "00000", "00000", &[1, 5, 3, 5, 9], 2, &[1, 3]),
            // they already have piece 1: never count or re-show it
            ("11110", "01000", "00000", &[1, 5, 3, 5, 9], 2, &[3, 2]),
            // one shown piece still missing at theirs: top up by one only
            ("11110", "00000", "01000", &[1, 5, 3, 5, 9], 2, &[3]),
            // quota full: nothing
            ("11110", "00000", "01010", &[1, 5, 3, 5, 9], 2, &[]),
            // they fetched the shown piece: reveal the next
            ("11110", "01010", "01010", &[1, 5, 3, 5, 9], 2, &[2, 0]),
            // never a piece we lack, even the most common one (piece 4)
            ("00001", "00000", "00000", &[0, 0, 0, 0, 1], 3, &[4]),
            ("00000", "00000", "00000", &[9, 9, 9, 9, 9], 3, &[]),
        ];
        for (ours, theirs, shown, avail, n, want) in cases {
            let a = |i: u32| avail[i as usize];
            let got = to_reveal(&bits(ours), &bits(theirs), &bits(shown), &a, *n);
            assert_eq!(&got[..], *want, "ours {} theirs {} shown {}", ours, theirs, shown);
        }
    }
}
