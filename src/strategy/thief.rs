//! BitThief: Locher, Moor, Schmid, Wattenhofer, "Free Riding in BitTorrent is Cheap",
//! HotNets 2006 (docs/strategies.md, "BitThief"). A free rider that
//! - never uploads: its choker never unchokes anyone, so it serves no request;
//! - always looks like a newcomer: it sends no bitfield and no HAVE, so honest peers keep
//!   granting it optimistic unchokes and seed slots;
//! - takes whatever it can get: any piece the peer has, at random, never rarest first;
//! - keeps a large view: up to 1000 connections and 1000 peers per announce, and it asks
//!   the tracker again as often as the tracker's min interval allows.
//!
//! It reports 0 uploaded, which is the truth.

use super::{Choker, Show, Strategy};
use crate::picker::Order;

/// Default `--max-peers` and `--numwant` of a thief (others: 60 and 50).
pub const MAX_PEERS: usize = 1000;
pub const NUMWANT: u32 = 1000;

/// `--thief`.
pub fn apply(s: &mut Strategy) {
    s.choker = Choker::Never;
    s.show = Show::Nothing;
    s.order = Order::Random;
    s.greedy_announce = true;
}

#[cfg(test)]
mod tests {
    use crate::choke::{PeerView, Slots};
    use crate::picker::{Order, Picker};
    use crate::pieces::Geometry;
    use crate::rng::Rng;
    use crate::strategy::{ChokerFlag, Flags};

    #[test]
    fn a_thief_shows_nothing_unchokes_nobody_and_seeks_peers_always() {
        let f = Flags {
            choker: ChokerFlag::Vanilla,
            rebel: 0,
            thief: true,
            reveal: None,
            sybil: 1,
            min_peers: 20,
            memory: None,
        };
        assert_eq!(f.peer_set(), (1000, 1000));
        let mut s = f.build(&Slots::Fixed(4), 20.0, 1.0, None);
        let geo = Geometry { piece_length: 16384, total_length: 3 * 16384, num_pieces: 3 };
        let mut picker = Picker::new(geo, s.order());
        picker.set_have(0);
        assert_eq!(s.order(), Order::Random);
        assert_eq!(s.bitfield(picker.have_bits()), None);
        assert!(s.haves(Some(0), &picker, &[false; 3], &[false; 3]).is_empty());
        let eager = PeerView {
            id: 7,
            interested: true,
            choked: true,
            down_rate: 1e6,
            ..PeerView::default()
        };
        let d = s.rechoke(std::slice::from_ref(&eager), false, 10.0, &mut Rng::new(1));
        assert!(!d[0].unchoke);
        assert_eq!(s.fast_unchoke(&[eager], 7, false), None);
        assert!(s.wants_peers(500, true), "a thief always wants more peers");
        assert!(s.stats_words().contains("thief=true"));
    }
}
