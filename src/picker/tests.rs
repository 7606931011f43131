//! Unit tests for the piece picker (`src/picker.rs`).

use super::*;

fn blk(index: u32, begin: u32, length: usize) -> Block {
    Block { index, begin, length: length as u32 }
}

fn geo(num_pieces: u32, piece_length: u32, total_length: u64) -> Geometry {
    Geometry { piece_length, total_length, num_pieces }
}

fn all(n: usize) -> Vec<bool> {
    vec![true; n]
}

impl Picker {
    /// A peer with bitfield `has` joins (the chooser adds pieces one by one instead).
    fn peer_added(&mut self, has: &[bool]) {
        for (a, &h) in self.avail.iter_mut().zip(has) {
            *a += u32::from(h);
        }
    }
}

#[test]
fn blocks_cover_every_piece_exactly_including_a_short_last_piece() {
    // 3 pieces of 40000 bytes, last one 20000: blocks 16384,16384,7232 and 16384,3616.
    let mut p = Picker::new(geo(3, 40000, 100000), Order::RarestFirst);
    let mut rng = Rng::new(1);
    let reqs = p.pick(1, &all(3), 100, &mut rng);
    let mut per_piece = [0u64; 3];
    for r in &reqs {
        assert!(r.length > 0 && r.length <= BLOCK);
        assert!(r.begin + r.length <= p.geo.piece_len(r.index));
        per_piece[r.index as usize] += u64::from(r.length);
    }
    assert_eq!(per_piece, [40000, 40000, 20000]);
    assert_eq!(reqs.len(), 3 + 3 + 2);
}

#[test]
fn strict_priority_finishes_started_pieces_first() {
    let mut p = Picker::new(geo(10, 4 * BLOCK, 40 * u64::from(BLOCK)), Order::RarestFirst);
    let mut rng = Rng::new(2);
    let first = p.pick(1, &all(10), 2, &mut rng);
    assert_eq!(first.len(), 2);
    let idx = first[0].index;
    assert_eq!(first[1].index, idx);
    // another peer continues the same piece before starting a new one
    let second = p.pick(2, &all(10), 2, &mut rng);
    assert!(second.iter().all(|r| r.index == idx), "{:?}", second);
}

#[test]
fn only_pieces_the_peer_has_are_requested() {
    let mut p = Picker::new(geo(8, BLOCK, 8 * u64::from(BLOCK)), Order::RarestFirst);
    let mut has = vec![false; 8];
    has[5] = true;
    let reqs = p.pick(1, &has, 10, &mut Rng::new(3));
    assert_eq!(reqs, vec![Block { index: 5, begin: 0, length: BLOCK }]);
    assert!(p.pick(1, &[false; 8], 10, &mut Rng::new(3)).is_empty());
}

#[test]
fn rarest_first_after_four_pieces_with_random_tie_break() {
    let n = 20;
    let mut p = Picker::new(geo(n, BLOCK, u64::from(n) * u64::from(BLOCK)), Order::RarestFirst);
    for i in 0..4 {
        p.set_have(i);
    }
    // availability: pieces 4..20 held by 3 peers, except 11 and 17 held by 1
    let common = all(n as usize);
    let mut others = all(n as usize);
    others[11] = false;
    others[17] = false;
    p.peer_added(&common);
    p.peer_added(&others);
    p.peer_added(&others);
    assert_eq!((p.availability(11), p.availability(12)), (1, 3));
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut q = Picker::new(geo(n, BLOCK, u64::from(n) * u64::from(BLOCK)), Order::RarestFirst);
        for i in 0..4 {
            q.set_have(i);
        }
        q.avail = p.avail.clone();
        let r = q.pick(9, &common, 1, &mut Rng::new(seed));
        seen.insert(r[0].index);
    }
    assert_eq!(seen, [11u32, 17].iter().copied().collect());
}

#[test]
fn random_first_before_four_pieces() {
    let n = 50u32;
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..30 {
        let mut p = Picker::new(geo(n, BLOCK, u64::from(n) * u64::from(BLOCK)), Order::RarestFirst);
        let mut has = all(n as usize);
        has[0] = true;
        // piece 0 is the rarest, but random-first ignores rarity
        let mut common = all(n as usize);
        common[0] = false;
        p.peer_added(&common);
        p.peer_added(&common);
        seen.insert(p.pick(1, &has, 1, &mut Rng::new(seed))[0].index);
    }
    assert!(seen.len() > 10, "not random: {:?}", seen);
}

#[test]
fn endgame_starts_only_when_every_missing_block_is_requested() {
    let mut p = Picker::new(geo(2, 2 * BLOCK, 4 * u64::from(BLOCK)), Order::RarestFirst);
    let mut rng = Rng::new(4);
    let a = p.pick(1, &all(2), 3, &mut rng);
    assert_eq!(a.len(), 3);
    assert!(!p.in_endgame());
    let b = p.pick(2, &all(2), 10, &mut rng);
    // peer 2 gets the last open block, then duplicates of peer 1's three
    assert!(p.in_endgame());
    assert_eq!(b.len(), 4);
    let dup = b[1..].to_vec();
    for r in &a {
        assert!(dup.contains(r));
    }
    // the first copy wins; the other asker must be cancelled
    let r = a[0];
    let data = vec![7u8; r.length as usize];
    assert_eq!(
        p.on_block(2, blk(r.index, r.begin, data.len())),
        BlockResult::Stored { cancel: vec![1], complete: false }
    );
    assert_eq!(p.on_block(1, blk(r.index, r.begin, data.len())), BlockResult::NotWanted);
}

#[test]
fn a_complete_piece_leaves_the_pool_and_failure_reopens_it() {
    let mut p = Picker::new(geo(1, 2 * BLOCK, 2 * u64::from(BLOCK) - 100), Order::RarestFirst);
    let mut rng = Rng::new(5);
    let reqs = p.pick(1, &all(1), 5, &mut rng);
    assert_eq!(reqs.len(), 2);
    assert!(matches!(
        p.on_block(1, blk(0, 0, BLOCK as usize)),
        BlockResult::Stored { complete: false, .. }
    ));
    // wrong length is refused
    assert_eq!(p.on_block(1, blk(0, BLOCK, 10)), BlockResult::NotWanted);
    assert!(matches!(
        p.on_block(3, blk(0, BLOCK, BLOCK as usize - 100)),
        BlockResult::Stored { complete: true, .. }
    ));
    assert!(p.assembled(0));
    assert!(!p.assembled(0), "taken once");
    // at the disk thread: started, not open to anyone
    assert!(p.pick(4, &all(1), 5, &mut rng).is_empty());
    assert_eq!(p.left_bytes(), 2 * u64::from(BLOCK) - 100);
    p.hash_failed(0);
    assert!(!p.have(0));
    assert_eq!(p.pick(4, &all(1), 5, &mut rng).len(), 2);
    p.set_have(0);
    assert!(p.is_complete());
    assert_eq!(p.left_bytes(), 0);
}

#[test]
fn released_requests_go_back_to_the_pool() {
    let mut p = Picker::new(geo(1, 4 * BLOCK, 4 * u64::from(BLOCK)), Order::RarestFirst);
    let mut rng = Rng::new(6);
    let a = p.pick(1, &all(1), 4, &mut rng);
    assert!(p.pick(2, &all(1), 4, &mut rng).len() == 4); // endgame duplicates
    for r in &a {
        p.release(1, *r);
    }
    // still asked of peer 2, so not open
    assert!(p.in_endgame());
    for r in &a {
        p.release(2, *r);
    }
    assert!(!p.in_endgame());
    assert_eq!(p.pick(3, &all(1), 10, &mut rng).len(), 4);
}

#[test]
fn restricted_picker_fetches_only_its_share() {
    let mut p = Picker::new(geo(10, BLOCK, 10 * u64::from(BLOCK)), Order::RarestFirst);
    p.restrict(3, 6);
    let mut has = all(10);
    has[4] = false;
    assert!(p.interesting(&has));
    let reqs = p.pick(1, &all(10), 100, &mut Rng::new(1));
    let mut idx: Vec<u32> = reqs.iter().map(|r| r.index).collect();
    idx.sort_unstable();
    assert_eq!(idx, vec![3, 4, 5]);
    assert_eq!(p.left_bytes(), 3 * u64::from(BLOCK));
    for i in 3..6 {
        assert!(!p.is_complete());
        p.set_have(i);
    }
    assert!(p.is_complete());
    assert!(!p.interesting(&all(10)));
    assert!(!p.in_endgame());
}

#[test]
fn a_failed_piece_is_fetched_again_from_one_peer_only() {
    let mut p = Picker::new(geo(1, 2 * BLOCK, 2 * u64::from(BLOCK)), Order::RarestFirst);
    let mut rng = Rng::new(8);
    let a = p.pick(1, &all(1), 1, &mut rng);
    let b = p.pick(2, &all(1), 1, &mut rng);
    let data = vec![0u8; BLOCK as usize];
    p.on_block(1, blk(0, a[0].begin, data.len()));
    p.on_block(2, blk(0, b[0].begin, data.len()));
    assert!(p.assembled(0));
    p.hash_failed(0);
    // peer 3 takes the piece; peer 4 gets nothing of it, not even in endgame
    assert_eq!(p.pick(3, &all(1), 1, &mut rng).len(), 1);
    assert!(p.pick(4, &all(1), 5, &mut rng).is_empty());
    let mine = p.pick(3, &all(1), 5, &mut rng);
    assert_eq!(mine.len(), 1);
    // the owner goes away: the piece starts over for anyone
    p.release(3, mine[0]);
    p.release(3, Block { index: 0, begin: 0, length: BLOCK });
    assert_eq!(p.pick(4, &all(1), 5, &mut rng).len(), 2);
    p.set_have(0);
    assert!(p.is_complete());
}

#[test]
fn availability_and_interest() {
    let mut p = Picker::new(geo(4, BLOCK, 4 * u64::from(BLOCK)), Order::RarestFirst);
    let has = vec![true, false, true, false];
    p.peer_added(&has);
    p.peer_has(1);
    assert_eq!((0..4).map(|i| p.availability(i)).collect::<Vec<_>>(), vec![1, 1, 1, 0]);
    assert!(p.interesting(&has));
    p.set_have(0);
    p.set_have(2);
    assert!(!p.interesting(&has));
    p.peer_removed(&has);
    assert_eq!(p.availability(0), 0);
}

/// Random first (mainline `rarest_first_cutoff` = 4): with 0, 1, 2 or 3 pieces complete a
/// new piece is drawn at random; from the 4th on, the rarest one is taken.
#[test]
fn random_first_until_exactly_four_pieces() {
    let n = 12u32;
    for have in 0..=5u32 {
        let mut rarest = 0u32;
        let trials = 200u32;
        for seed in 0..trials {
            let mut p =
                Picker::new(geo(n, BLOCK, u64::from(n) * u64::from(BLOCK)), Order::RarestFirst);
            for i in 0..have {
                p.set_have(i);
            }
            // piece 11 is the rarest (1 holder), the others have 3
            let mut common = all(n as usize);
            common[11] = false;
            p.peer_added(&all(n as usize));
            p.peer_added(&common);
            p.peer_added(&common);
            if p.pick(1, &all(n as usize), 1, &mut Rng::new(u64::from(seed)))[0].index == 11 {
                rarest += 1;
            }
        }
        let candidates = n - have;
        if have < 4 {
            // uniform over the candidates: about trials / candidates, far from all
            let want = f64::from(trials) / f64::from(candidates);
            assert!(
                (f64::from(rarest) - want).abs() < 4.0 * want.sqrt() + 2.0,
                "{} complete: rarest {} times",
                have,
                rarest
            );
        } else {
            assert_eq!(rarest, trials, "{} complete: rarest first", have);
        }
    }
}

/// Rarest first looks only at the pieces this peer has: the rarest of those, even when the
/// swarm's rarest pieces are elsewhere (downpour looked at the global rarest class only and
/// gave up or went into endgame when the peer had none of it: docs/downpour.md, bug 9).
#[test]
fn rarest_first_among_the_pieces_this_peer_has() {
    let n = 8u32;
    let mut p = Picker::new(geo(n, BLOCK, u64::from(n) * u64::from(BLOCK)), Order::RarestFirst);
    for i in 0..4 {
        p.set_have(i);
    }
    // availability: 4 → 1, 5 → 2, 6 → 3, 7 → 3
    let a = |bits: &str| bits.chars().map(|c| c == '1').collect::<Vec<bool>>();
    p.peer_added(&a("00001111"));
    p.peer_added(&a("00000111"));
    p.peer_added(&a("00000011"));
    // this peer lacks 4 (the swarm's rarest): it must get 5, the rarest it has
    for seed in 0..20 {
        let got = p.pick(9, &a("00000111"), 1, &mut Rng::new(seed));
        assert_eq!(got[0].index, 5, "seed {}", seed);
        p.release(9, got[0]);
    }
    // and a peer holding only the commonest pieces is still asked for one
    assert!(matches!(p.pick(10, &a("00000011"), 1, &mut Rng::new(1))[..], [b] if b.index >= 6));
    assert!(!p.in_endgame(), "no premature endgame");
}
