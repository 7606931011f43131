//! Table tests for the choking policies (`src/choke.rs`).

use super::*;

fn peer(id: u64, interested: bool, down: f64) -> PeerView {
    PeerView {
        id,
        interested,
        choked: true,
        down_rate: down,
        ..PeerView::default()
    }
}

fn unchoked(d: &[Decision]) -> Vec<u64> {
    let mut v: Vec<u64> = d.iter().filter(|d| d.unchoke).map(|d| d.id).collect();
    v.sort_unstable();
    v
}

#[test]
fn mainline_slot_rule() {
    let table = [
        (0.0, 7),
        (5.0, 2),
        (8.9, 2),
        (9.0, 3),
        (14.0, 3),
        (15.0, 4),
        (41.0, 4),
        (42.0, 5),
        (64.0, 6),
        (100.0, 7),
        (128.0, 8),
        (300.0, 13),
        (1000.0, 24),
    ];
    for (rate, slots) in table {
        assert_eq!(mainline_slots(rate), slots, "rate {}", rate);
    }
    assert_eq!(Slots::Auto { up_kib: 20.0 }.regular(), 3);
    assert_eq!(
        Slots::K {
            k: 1.0,
            up_kib: 20.0
        }
        .regular(),
        4
    );
    assert_eq!(
        Slots::K {
            k: 0.44,
            up_kib: 50.0
        }
        .regular(),
        3
    );
    assert_eq!(
        Slots::K {
            k: 1.0,
            up_kib: 1000.0
        }
        .regular(),
        31
    );
    assert_eq!(Slots::Fixed(4).regular(), 3);
}

#[test]
fn best_uploaders_get_regular_slots_plus_one_optimistic() {
    // 20 KiB/s → 4 slots: 3 regular by rate, 1 optimistic among the rest.
    let peers: Vec<PeerView> = (1..=8).map(|i| peer(i, true, i as f64 * 100.0)).collect();
    let mut c = Vanilla::new(Slots::Auto { up_kib: 20.0 });
    let d = c.rechoke(&peers, false, &mut Rng::new(1));
    let on = unchoked(&d);
    assert_eq!(on.len(), 4);
    for id in [6, 7, 8] {
        assert!(on.contains(&id));
        assert!(!d.iter().any(|x| x.id == id && x.optimistic));
    }
    let opt = c.optimistic.unwrap();
    assert!(opt <= 5 && on.contains(&opt));
}

#[test]
fn uninterested_and_snubbed_peers_get_no_regular_slot() {
    let mut peers = vec![
        peer(1, false, 900.0),
        peer(2, true, 800.0),
        peer(3, true, 10.0),
        peer(4, true, 5.0),
        peer(5, true, 1.0),
    ];
    peers[1].snubbed = true;
    let mut c = Vanilla::new(Slots::Fixed(3));
    for seed in 0..20 {
        let d = c.rechoke(&peers, false, &mut Rng::new(seed));
        let on = unchoked(&d);
        assert!(!on.contains(&1), "uninterested peer unchoked");
        assert!(
            on.contains(&3) && on.contains(&4),
            "best two regular: {:?}",
            on
        );
        // peer 2 is snubbed: only ever as the optimistic unchoke
        if on.contains(&2) {
            assert_eq!(c.optimistic, Some(2));
        }
    }
}

#[test]
fn optimistic_rotates_every_third_round_only() {
    // Peer 10 is the fastest and holds the one regular slot; the optimistic slot must
    // stay put for three rounds and then move.
    let peers: Vec<PeerView> = (1..=10)
        .map(|i| peer(i, true, if i == 10 { 1e6 } else { 0.0 }))
        .collect();
    let mut c = Vanilla::new(Slots::Fixed(2));
    let mut rng = Rng::new(7);
    let mut seen = Vec::new();
    for _ in 0..30 {
        let d = c.rechoke(&peers, false, &mut rng);
        assert_eq!(unchoked(&d).len(), 2);
        assert!(d.iter().any(|x| x.id == 10 && x.unchoke && !x.optimistic));
        seen.push(c.optimistic.unwrap());
    }
    for (round, w) in seen.windows(2).enumerate() {
        if (round + 1) % 3 != 0 {
            assert_eq!(w[0], w[1], "optimistic moved mid-period: {:?}", seen);
        }
    }
    let distinct: std::collections::BTreeSet<u64> = seen.iter().copied().collect();
    assert!(distinct.len() >= 4, "optimistic never rotates: {:?}", seen);
    assert!(!distinct.contains(&10));
}

#[test]
fn few_preferred_peers_unchoke_min_uploads() {
    // Everybody snubbed: mainline still unchokes min_uploads = 2 peers.
    let mut peers: Vec<PeerView> = (1..=5).map(|i| peer(i, true, 0.0)).collect();
    for p in &mut peers {
        p.snubbed = true;
    }
    let mut c = Vanilla::new(Slots::Auto { up_kib: 100.0 });
    let d = c.rechoke(&peers, false, &mut Rng::new(3));
    assert_eq!(unchoked(&d).len(), MIN_UPLOADS);
}

#[test]
fn seed_mode_ranks_by_our_upload_rate_and_ignores_snubbing() {
    let mut peers: Vec<PeerView> = (1..=6).map(|i| peer(i, true, 0.0)).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        p.up_rate = (10 - i) as f64;
        p.snubbed = true;
    }
    let mut c = Vanilla::new(Slots::Fixed(3));
    let d = c.rechoke(&peers, true, &mut Rng::new(5));
    let on = unchoked(&d);
    assert!(on.contains(&1) && on.contains(&2), "{:?}", on);
    assert_eq!(on.len(), 3);
}

#[test]
fn fast_unchoke_only_with_a_free_regular_slot() {
    let mut peers: Vec<PeerView> = (1..=4).map(|i| peer(i, true, 0.0)).collect();
    let c = Vanilla::new(Slots::Fixed(3)); // 2 regular
    assert!(c.has_free_slot(&peers));
    peers[0].choked = false;
    peers[1].choked = false;
    assert!(!c.has_free_slot(&peers));
}
