//! BitRebel (the 2022 downpour study's `rebel` branch; docs/strategies.md, "BitRebel"): a
//! vanilla client that sends every HAVE for a piece it verified N extra times. It never
//! announces a piece it lacks. A receiver that keeps a set of pieces ignores the copies,
//! but an estimator that counts HAVE messages, as BitTyrant's capacity estimate does, sees
//! the rebel download (1 + N) times faster than it does, and ranks it higher.

use super::Strategy;

/// `--rebel N`: every HAVE goes out 1 + N times.
pub fn apply(s: &mut Strategy, n: u32) {
    s.have_copies = 1 + n;
}

#[cfg(test)]
mod tests {
    use crate::choke::Slots;
    use crate::picker::{Order, Picker};
    use crate::pieces::Geometry;
    use crate::strategy::{ChokerFlag, Flags};

    #[test]
    fn every_have_goes_out_one_plus_n_times_and_only_for_the_new_piece() {
        let geo = Geometry { piece_length: 16384, total_length: 4 * 16384, num_pieces: 4 };
        let picker = Picker::new(geo, Order::RarestFirst);
        let none = [false; 4];
        for (n, want) in [(0, vec![2]), (1, vec![2, 2]), (3, vec![2, 2, 2, 2])] {
            let f = Flags {
                choker: ChokerFlag::Vanilla,
                rebel: n,
                thief: false,
                reveal: None,
                sybil: 1,
                min_peers: 20,
                memory: None,
            };
            let s = f.build(&Slots::Fixed(4), 20.0, 1.0, None);
            assert_eq!(s.haves(Some(2), &picker, &none, &none), want, "rebel {}", n);
            // nothing new, nothing sent: a rebel never invents pieces
            assert!(s.haves(None, &picker, &none, &none).is_empty());
        }
    }
}
