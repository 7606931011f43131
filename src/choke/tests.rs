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
    let opt = c.optimistic().unwrap();
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
            assert_eq!(c.optimistic(), Some(2));
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
        seen.push(c.optimistic().unwrap());
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

// ---------------------------------------------------------------------------------------
// Helpers for the new policies
// ---------------------------------------------------------------------------------------

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[track_caller]
fn assert_close(a: f64, b: f64, what: &str) {
    assert!(close(a, b), "{}: got {}, want {}", what, a, b);
}

fn find(d: &[Decision], id: u64) -> &Decision {
    d.iter().find(|x| x.id == id).expect("a decision per peer")
}

/// Apply decisions to the views, as the chooser would before the next round.
fn apply(peers: &mut [PeerView], d: &[Decision]) {
    for p in peers.iter_mut() {
        p.choked = !find(d, p.id).unchoke;
    }
}

fn sum_caps(d: &[Decision]) -> f64 {
    d.iter().filter_map(|x| x.cap).sum()
}

const KIB: f64 = 1024.0;

fn tyrant(capacity: f64) -> Tyrant {
    Tyrant::new(TyrantParams {
        capacity,
        ..TyrantParams::default()
    })
}

// ---------------------------------------------------------------------------------------
// BitTyrant
// ---------------------------------------------------------------------------------------

#[test]
fn tyrant_defaults_are_the_papers() {
    let p = TyrantParams::default();
    assert_eq!(
        (p.u0, p.delta, p.gamma, p.r, p.floor),
        (7168.0, 0.2, 0.1, 3, 1024.0)
    );
}

#[test]
fn have_rate_estimate_is_equal_split_over_mainline_active_set() {
    // (HAVE rate bytes/s, active set, d_p bytes/s)
    let table = [
        (0.0, 7, 0.0), // no announcements: no estimate
        (-5.0, 7, 0.0),
        (5.0 * KIB, 2, 2560.0),
        (20.0 * KIB, 4, 5120.0),
        (50.0 * KIB, 5, 10240.0), // the brief's example: 50 KiB/s → 5 slots → 10 KiB/s
        (100.0 * KIB, 7, 102400.0 / 7.0),
        (1000.0 * KIB, 24, 1024000.0 / 24.0),
    ];
    for (rate, slots, d_p) in table {
        assert_eq!(active_set(rate), slots, "rate {}", rate);
        assert_close(have_estimate(rate), d_p, "have_estimate");
    }
    // The estimate reaches d_p of a peer that never unchoked us and that we never
    // unchoked (downpour bug 1).
    // Not interested in us, so never unchoked.
    let mut t = tyrant(100.0 * KIB);
    let peers = [PeerView {
        id: 9,
        interested: false,
        choked: true,
        peer_choking: true,
        have_rate: 50.0 * KIB,
        ..PeerView::default()
    }];
    let d = t.rechoke(&peers, 10.0, &mut Rng::new(1));
    assert!(!d[0].unchoke);
    assert_eq!(t.state(9), Some((7168.0, 10240.0, 0)));
    assert_eq!(t.estimated(9), Some(true));
    assert_eq!(d[0].d_p, Some(10240.0));
    assert_eq!(d[0].u_p, Some(7168.0));
}

/// The scripted multi-round table. Capacity 20 000 B/s, rounds of 10 s, four interested
/// peers whose behaviour never changes:
///   1 (A) reciprocates: unchokes us and sends 150 000 B a round (d_p = 15 000 B/s);
///   2 (B) never reciprocates, HAVE rate 50 KiB/s (d_p estimate 10 240);
///   3 (C) chokes us, HAVE rate 20 KiB/s (d_p estimate 5 120);
///   4 (D) chokes us, announces nothing (d_p 0).
/// A's u_p is untouched for its first two reciprocated rounds and ×0.9 from the third on;
/// B's grows ×1.2 only in rounds after we unchoked it; C and D keep u0 while we do not
/// unchoke them (downpour bug 3). From round 5 B no longer fits and C, ranked after B in
/// round 6, gets the room instead: skip the misfit, keep scanning (downpour bug 5).
#[test]
fn tyrant_scripted_rounds() {
    let mut peers = vec![
        PeerView {
            id: 1,
            interested: true,
            choked: true,
            unchoked_us: true,
            down_round: 150_000,
            have_rate: 100.0 * KIB,
            ..PeerView::default()
        },
        PeerView {
            id: 2,
            interested: true,
            choked: true,
            peer_choking: true,
            have_rate: 50.0 * KIB,
            ..PeerView::default()
        },
        PeerView {
            id: 3,
            interested: true,
            choked: true,
            peer_choking: true,
            have_rate: 20.0 * KIB,
            ..PeerView::default()
        },
        PeerView {
            id: 4,
            interested: true,
            choked: true,
            peer_choking: true,
            ..PeerView::default()
        },
    ];
    // Per round, after the rechoke: u_p of A, B, C, D; A's streak; who is unchoked.
    let table: [([f64; 4], u32, [u64; 2]); 7] = [
        ([7168.0, 7168.0, 7168.0, 7168.0], 0, [1, 2]),
        ([7168.0, 8601.6, 7168.0, 7168.0], 1, [1, 2]),
        ([7168.0, 10321.92, 7168.0, 7168.0], 2, [1, 2]),
        ([6451.2, 12386.304, 7168.0, 7168.0], 3, [1, 2]),
        // A + B = 20 669.6 > 20 000: B is skipped; A + C fits; D would not (20 142).
        ([5806.08, 14863.5648, 7168.0, 7168.0], 4, [1, 3]),
        // B was choked last round: its u_p stays. C was unchoked and did not reciprocate.
        // Ranking A (2.87), B (0.69), C (0.60), D (0): B does not fit, C after it does.
        ([5225.472, 14863.5648, 8601.6, 7168.0], 5, [1, 3]),
        // A's shrinking u_p frees room: B (0.69) fits again (19 566.5), C (0.50) does not.
        ([4702.9248, 14863.5648, 10321.92, 7168.0], 6, [1, 2]),
    ];
    let d_want = [15000.0, 10240.0, 5120.0, 0.0];
    let mut t = tyrant(20000.0);
    let mut rng = Rng::new(42);
    for (round, (u_want, streak, on_want)) in table.iter().enumerate() {
        let d = t.rechoke(&peers, 10.0, &mut rng);
        let what = format!("round {}", round + 1);
        assert_eq!(unchoked(&d), on_want.to_vec(), "{}", what);
        for (i, p) in peers.iter().enumerate() {
            let (u_p, d_p, _) = t.state(p.id).unwrap();
            assert_close(u_p, u_want[i], &format!("{} u_p of {}", what, p.id));
            assert_close(d_p, d_want[i], &format!("{} d_p of {}", what, p.id));
            let x = find(&d, p.id);
            assert_eq!(x.u_p, Some(u_p));
            assert_eq!(x.d_p, Some(d_p));
            assert!(!x.optimistic, "BitTyrant has no optimistic unchoke");
            // Unchoked peers are capped at their u_p; choked ones get no cap.
            assert_eq!(x.cap, if x.unchoke { Some(u_p) } else { None });
        }
        assert_eq!(t.state(1).unwrap().2, *streak, "{} streak", what);
        assert_eq!(t.estimated(1), Some(false));
        assert_eq!(t.estimated(2), Some(true));
        assert!(sum_caps(&d) <= 20000.0, "{}", what);
        apply(&mut peers, &d);
    }
}

#[test]
fn tyrant_skips_a_misfit_and_unchokes_a_later_cheaper_peer() {
    // Ranking Y (10240/7168 = 1.43) > X (14629/12000 = 1.22) > Z (5120/5000 = 1.02).
    // Y fits; X does not (19 168 > 16 384); Z does (12 168).
    let mut t = tyrant(16384.0);
    let mut set = |id: u64, u_p: f64| {
        t.peers.insert(
            id,
            TyrantPeer {
                u_p,
                d_p: 0.0,
                streak: 0,
                unchoked_last_round: false,
                estimated: true,
            },
        );
    };
    set(1, 12000.0);
    set(2, 7168.0);
    set(3, 5000.0);
    let view = |id, have_rate| PeerView {
        id,
        interested: true,
        choked: true,
        peer_choking: true,
        have_rate,
        ..PeerView::default()
    };
    let peers = [
        view(1, 100.0 * KIB),
        view(2, 50.0 * KIB),
        view(3, 20.0 * KIB),
    ];
    for seed in 0..10 {
        let d = t.clone().rechoke(&peers, 10.0, &mut Rng::new(seed));
        assert_eq!(unchoked(&d), vec![2, 3]);
        assert_eq!(find(&d, 2).cap, Some(7168.0));
        assert_eq!(find(&d, 3).cap, Some(5000.0));
        assert_eq!(find(&d, 1).cap, None);
        assert_close(sum_caps(&d), 12168.0, "Σcaps");
    }
}

#[test]
fn tyrant_u_p_never_falls_below_the_floor() {
    let mut t = tyrant(f64::INFINITY);
    let mut peers = [PeerView {
        id: 1,
        interested: true,
        choked: true,
        unchoked_us: true,
        down_round: 50_000,
        ..PeerView::default()
    }];
    let mut rng = Rng::new(3);
    let mut last = 7168.0;
    for round in 0..200 {
        let d = t.rechoke(&peers, 10.0, &mut rng);
        apply(&mut peers, &d);
        let (u_p, _, _) = t.state(1).unwrap();
        assert!(u_p >= 1024.0 && u_p <= last, "round {}: {}", round, u_p);
        assert_eq!(d[0].cap, Some(u_p));
        last = u_p;
    }
    assert_eq!(t.state(1).unwrap().0, 1024.0);
    // 7168·0.9^k < 1024 from k = 19 on: floored, not 0 (downpour bug 4).
    assert_eq!(t.state(1).unwrap().2, 199); // the first round has nothing to judge
}

#[test]
fn tyrant_reciprocation_resets_on_a_choked_round_and_rates_are_not_truncated() {
    let mut t = tyrant(f64::INFINITY);
    let mut p = PeerView {
        id: 1,
        interested: true,
        choked: true,
        ..PeerView::default()
    };
    let mut rng = Rng::new(5);
    // (unchoked_us, down_round, u_p after, streak after, d_p after) with 4-s rounds.
    let table = [
        (false, 0, 7168.0, 0, 0.0),      // first round: nothing to update
        (true, 1001, 7168.0, 1, 250.25), // reciprocated: d_p = 1001 / 4
        (true, 0, 7168.0, 2, 0.0),       // unchoked us, nothing received: still counts
        (true, 3, 6451.2, 3, 0.75),      // third in a row: ×0.9
        (false, 0, 7741.44, 0, 0.0),     // choked us: ×1.2, streak reset
        (false, 7, 7741.44, 1, 1.75),    // bytes arrived: reciprocated
    ];
    for (i, &(us, down, u_p, streak, d_p)) in table.iter().enumerate() {
        p.unchoked_us = us;
        p.down_round = down;
        let d = t.rechoke(std::slice::from_ref(&p), 4.0, &mut rng);
        assert!(d[0].unchoke);
        p.choked = false;
        let s = t.state(1).unwrap();
        assert_close(s.0, u_p, &format!("row {} u_p", i));
        assert_eq!(s.1, d_p, "row {} d_p", i);
        assert_eq!(s.2, streak, "row {} streak", i);
    }
}

#[test]
fn tyrant_caps_fit_the_capacity_on_random_swarms() {
    let mut rng = Rng::new(11);
    for case in 0..200 {
        let capacity = 4096.0 + rng.f64() * 100_000.0;
        let mut t = tyrant(capacity);
        let mut peers: Vec<PeerView> = (0..1 + rng.below(20))
            .map(|id| PeerView {
                id,
                interested: rng.below(4) != 0,
                choked: true,
                ..PeerView::default()
            })
            .collect();
        for _ in 0..8 {
            for p in peers.iter_mut() {
                p.unchoked_us = rng.below(2) == 0;
                p.down_round = if p.unchoked_us { rng.below(300_000) } else { 0 };
                p.have_rate = rng.f64() * 200.0 * KIB;
            }
            let d = t.rechoke(&peers, 10.0, &mut rng);
            assert_eq!(d.len(), peers.len());
            assert!(sum_caps(&d) <= capacity, "case {}", case);
            for x in &d {
                let p = peers.iter().find(|p| p.id == x.id).unwrap();
                assert!(p.interested || !x.unchoke, "uninterested peer unchoked");
                assert!(!x.optimistic);
                let (u_p, _, _) = t.state(x.id).unwrap();
                assert!(u_p >= 1024.0);
                assert_eq!(x.cap, if x.unchoke { Some(u_p) } else { None });
            }
            // Greedy fill: every interested peer left choked did not fit the leftover.
            let left = capacity - sum_caps(&d);
            for x in d.iter().filter(|x| !x.unchoke) {
                let p = peers.iter().find(|p| p.id == x.id).unwrap();
                if p.interested {
                    assert!(x.u_p.unwrap() > left, "case {}: room was left", case);
                }
            }
            apply(&mut peers, &d);
        }
    }
}

#[test]
fn tyrant_forgets_peers_that_left() {
    let mut t = tyrant(f64::INFINITY);
    let mut peers = vec![PeerView {
        id: 1,
        interested: true,
        choked: true,
        peer_choking: true,
        ..PeerView::default()
    }];
    let mut rng = Rng::new(1);
    for _ in 0..3 {
        let d = t.rechoke(&peers, 10.0, &mut rng);
        apply(&mut peers, &d);
    }
    assert_close(t.state(1).unwrap().0, 7168.0 * 1.2 * 1.2, "u_p");
    t.rechoke(&[], 10.0, &mut rng);
    assert_eq!(t.state(1), None);
    peers[0].choked = true;
    t.rechoke(&peers, 10.0, &mut rng);
    assert_eq!(t.state(1).unwrap().0, 7168.0);
}

#[test]
fn tyrant_fast_unchoke_respects_the_budget() {
    let view = |id, choked| PeerView {
        id,
        interested: true,
        choked,
        peer_choking: true,
        ..PeerView::default()
    };
    // Two peers unchoked at u0 = 7168 each: 14 336 used.
    let peers = [view(1, false), view(2, false), view(3, true)];
    // (capacity, peer 3 unchoked now?)
    let table = [
        (16000.0, false),
        (21503.0, false),
        (21504.0, true),
        (40000.0, true),
    ];
    for (capacity, fits) in table {
        let mut c = Choker::Tyrant(tyrant(capacity));
        let d = c.fast_unchoke(&peers, 3, false);
        if fits {
            let d = d.expect("fits");
            assert!(d.unchoke && !d.optimistic);
            assert_eq!(d.cap, Some(7168.0));
            assert_eq!(d.u_p, Some(7168.0));
        } else {
            assert_eq!(d, None, "capacity {}", capacity);
        }
    }
    // Not interested, already unchoked, unknown: nothing to do.
    let mut t = tyrant(1e9);
    let mut lazy = view(3, true);
    lazy.interested = false;
    assert_eq!(t.fast_unchoke(&[lazy], 3), None);
    assert_eq!(t.fast_unchoke(&[view(3, false)], 3), None);
    assert_eq!(t.fast_unchoke(&[view(3, true)], 4), None);
    // A fast-unchoked peer counts as unchoked by us: the next round judges it.
    let mut peers = vec![view(3, true)];
    assert!(t.fast_unchoke(&peers, 3).is_some());
    peers[0].choked = false;
    t.rechoke(&peers, 10.0, &mut Rng::new(1));
    assert_close(t.state(3).unwrap().0, 8601.6, "u_p after a fast unchoke");
    // Budget uses the remembered u_p of the unchoked peers, not u0.
    let mut t = tyrant(16000.0);
    let mut peers = vec![view(1, true), view(2, true)];
    for _ in 0..2 {
        let d = t.rechoke(&peers[..1], 10.0, &mut Rng::new(1));
        apply(&mut peers[..1], &d);
    }
    // peer 1 now at 8601.6; 8601.6 + 7168 = 15 769.6 ≤ 16 000
    assert!(t.fast_unchoke(&peers, 2).is_some());
    let mut t2 = tyrant(15700.0);
    t2.peers = t.peers.clone();
    assert_eq!(t2.fast_unchoke(&peers, 2), None);
}

#[test]
fn tyrant_seeding_falls_back_to_vanilla() {
    let peers: Vec<PeerView> = (1..=10)
        .map(|i| PeerView {
            id: i,
            interested: true,
            choked: true,
            up_rate: i as f64,
            ..PeerView::default()
        })
        .collect();
    // 50 KiB/s → mainline 5 slots: 4 by upload rate + 1 optimistic.
    let mut c = Choker::Tyrant(tyrant(50.0 * KIB));
    let d = c.rechoke(&peers, true, 10.0, &mut Rng::new(2));
    assert_eq!(unchoked(&d).len(), 5);
    for id in 7..=10 {
        assert!(find(&d, id).unchoke);
    }
    assert!(d
        .iter()
        .all(|x| x.cap.is_none() && x.u_p.is_none() && x.d_p.is_none()));
    assert_eq!(d.iter().filter(|x| x.optimistic).count(), 1);
    // Chosen seed slots are honoured, and the leecher state is untouched.
    let mut c = Choker::Tyrant(tyrant(50.0 * KIB).with_seed_slots(Slots::Fixed(3)));
    let d = c.rechoke(&peers, true, 10.0, &mut Rng::new(2));
    assert_eq!(unchoked(&d).len(), 3);
    if let Choker::Tyrant(t) = &c {
        assert_eq!(t.state(1), None);
    }
    // Fast unchoke while seeding: the vanilla rule (2 regular slots, none busy).
    assert!(c.fast_unchoke(&peers, 1, true).unwrap().cap.is_none());
}

// ---------------------------------------------------------------------------------------
// PropShare
// ---------------------------------------------------------------------------------------

/// The lecture's "PropShare Resiliency to BitTyrant" slide: peers gave 13, 10, 4, 9, 15,
/// 11 (KiB) last round and the slide's total is 81, so a seventh peer gave 19. Peer 8 gave
/// nothing and is the only optimistic candidate; peer 9 gave 30 but is not interested.
fn lecture_swarm() -> Vec<PeerView> {
    let gave = [13, 10, 4, 9, 15, 11, 19, 0];
    let mut v: Vec<PeerView> = gave
        .iter()
        .enumerate()
        .map(|(i, &b)| PeerView {
            id: i as u64 + 1,
            interested: true,
            choked: true,
            down_round: b * 1024,
            ..PeerView::default()
        })
        .collect();
    v.push(PeerView {
        id: 9,
        interested: false,
        choked: true,
        down_round: 30 * 1024,
        ..PeerView::default()
    });
    v
}

#[test]
fn propshare_lecture_example_shares_are_proportional() {
    let capacity = 100_000.0;
    let peers = lecture_swarm();
    let gave = [13.0, 10.0, 4.0, 9.0, 15.0, 11.0, 19.0];
    assert_eq!(gave.iter().sum::<f64>(), 81.0);
    for (f, seed) in [(0.2, 1), (0.1, 2), (0.5, 3)] {
        let mut ps = PropShare::new(capacity, f);
        let d = ps.rechoke(&peers, 10.0, &mut Rng::new(seed));
        for (i, &b) in gave.iter().enumerate() {
            let x = find(&d, i as u64 + 1);
            assert!(x.unchoke && !x.optimistic);
            assert_close(x.cap.unwrap(), (1.0 - f) * capacity * b / 81.0, "share");
            assert_eq!(x.u_p, x.cap);
            assert_close(x.d_p.unwrap(), b * 1024.0 / 10.0, "d_p = b_p / round");
        }
        let o = find(&d, 8);
        assert!(o.unchoke && o.optimistic);
        assert_close(o.cap.unwrap(), f * capacity, "optimistic share");
        assert_eq!(ps.optimistic(), Some(8));
        let lazy = find(&d, 9);
        assert!(
            !lazy.unchoke && lazy.cap.is_none(),
            "not interested: nothing"
        );
        assert_close(sum_caps(&d), capacity, "Σcaps = C");
    }
    assert_eq!(PropShare::new(capacity, 0.2).optimistic_share(), 0.2);
    assert_eq!(PropShare::new(capacity, 7.0).optimistic_share(), 1.0);
}

#[test]
fn propshare_nothing_received_gives_the_optimistic_peer_everything() {
    let mut peers = lecture_swarm();
    for p in &mut peers {
        p.down_round = 0;
    }
    let mut ps = PropShare::new(80_000.0, 0.2);
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(4));
    let on: Vec<&Decision> = d.iter().filter(|x| x.unchoke).collect();
    assert_eq!(on.len(), 1);
    assert!(on[0].optimistic && on[0].id != 9);
    assert_eq!(on[0].cap, Some(80_000.0));
    // Nobody interested: nobody unchoked.
    for p in &mut peers {
        p.interested = false;
    }
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(4));
    assert!(d.iter().all(|x| !x.unchoke));
    assert_eq!(ps.optimistic(), None);
}

#[test]
fn propshare_without_an_optimistic_candidate_shares_all_capacity() {
    let mut peers = lecture_swarm();
    peers.retain(|p| p.id != 8);
    let mut ps = PropShare::new(81_000.0, 0.2);
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(1));
    assert!(d.iter().all(|x| !x.optimistic));
    assert_close(find(&d, 1).cap.unwrap(), 13_000.0, "13/81 of all");
    assert_close(sum_caps(&d), 81_000.0, "Σcaps = C");
}

#[test]
fn propshare_optimistic_rotates_every_third_round() {
    // Peers 1..=2 give us data; 3..=10 do not and take turns at the optimistic slot.
    let peers: Vec<PeerView> = (1..=10)
        .map(|i| PeerView {
            id: i,
            interested: true,
            choked: true,
            down_round: if i <= 2 { 5000 * i } else { 0 },
            ..PeerView::default()
        })
        .collect();
    let mut ps = PropShare::new(50_000.0, 0.2);
    let mut rng = Rng::new(9);
    let mut seen = Vec::new();
    for _ in 0..30 {
        let d = ps.rechoke(&peers, 10.0, &mut rng);
        let opt: Vec<u64> = d.iter().filter(|x| x.optimistic).map(|x| x.id).collect();
        assert_eq!(opt.len(), 1);
        assert_eq!(Some(opt[0]), ps.optimistic());
        assert_eq!(unchoked(&d).len(), 3);
        assert_close(
            find(&d, 2).cap.unwrap(),
            0.8 * 50_000.0 * 2.0 / 3.0,
            "share",
        );
        seen.push(opt[0]);
    }
    for (round, w) in seen.windows(2).enumerate() {
        if (round + 1) % 3 != 0 {
            assert_eq!(w[0], w[1], "optimistic moved mid-period: {:?}", seen);
        }
    }
    let distinct: std::collections::BTreeSet<u64> = seen.iter().copied().collect();
    assert!(distinct.len() >= 4, "optimistic never rotates: {:?}", seen);
    assert!(!distinct.contains(&1) && !distinct.contains(&2));
}

#[test]
fn propshare_optimistic_peer_that_reciprocates_moves_to_a_proportional_share() {
    let mut peers: Vec<PeerView> = (1..=3)
        .map(|i| PeerView {
            id: i,
            interested: true,
            choked: true,
            down_round: if i == 1 { 3000 } else { 0 },
            ..PeerView::default()
        })
        .collect();
    let mut ps = PropShare::new(10_000.0, 0.2);
    let mut rng = Rng::new(1);
    ps.rechoke(&peers, 10.0, &mut rng);
    let o = ps.optimistic().unwrap();
    assert_ne!(o, 1);
    // Mid-period, the optimistic peer sends 1000 B: it now earns 1000/4000 of 8000.
    peers[o as usize - 1].down_round = 1000;
    let d = ps.rechoke(&peers, 10.0, &mut rng);
    assert!(!find(&d, o).optimistic);
    assert_close(find(&d, o).cap.unwrap(), 2000.0, "earned share");
    assert_close(find(&d, 1).cap.unwrap(), 6000.0, "share");
    let other = 5 - o; // the remaining zero-sender (ids 2 and 3)
    assert_eq!(ps.optimistic(), Some(other));
    assert_close(find(&d, other).cap.unwrap(), 2000.0, "f·C");
}

#[test]
fn propshare_fast_unchoke_fills_an_empty_optimistic_slot() {
    let view = |id, interested, choked| PeerView {
        id,
        interested,
        choked,
        ..PeerView::default()
    };
    let mut c = Choker::PropShare(PropShare::new(10_000.0, 0.2));
    // Nobody else unchoked: the newcomer may use all of C.
    let peers = [view(1, true, true)];
    let d = c.fast_unchoke(&peers, 1, false).unwrap();
    assert!(d.unchoke && d.optimistic);
    assert_eq!(d.cap, Some(10_000.0));
    // Slot now held by an interested peer: no second fast unchoke.
    let peers = [view(1, true, false), view(2, true, true)];
    assert_eq!(c.fast_unchoke(&peers, 2, false), None);
    // Holder lost interest: the slot is free again, at f·C beside the reciprocal peers.
    let peers = [
        view(1, false, false),
        view(2, true, true),
        view(3, true, false),
    ];
    let d = c.fast_unchoke(&peers, 2, false).unwrap();
    assert!(d.optimistic);
    assert_close(d.cap.unwrap(), 2000.0, "f·C");
    if let Choker::PropShare(ps) = &c {
        assert_eq!(ps.optimistic(), Some(2));
    }
    // Not interested or unknown: nothing.
    let mut ps = PropShare::new(10_000.0, 0.2);
    assert_eq!(ps.fast_unchoke(&[view(1, false, true)], 1), None);
    assert_eq!(ps.fast_unchoke(&[view(1, true, true)], 2), None);
}

#[test]
fn propshare_seeding_falls_back_to_vanilla() {
    let peers = lecture_swarm();
    let mut c = Choker::PropShare(PropShare::new(20.0 * KIB, 0.2));
    let d = c.rechoke(&peers, true, 10.0, &mut Rng::new(1));
    assert_eq!(unchoked(&d).len(), mainline_slots(20.0));
    assert!(d.iter().all(|x| x.cap.is_none() && x.u_p.is_none()));
    assert!(!find(&d, 9).unchoke);
}

// ---------------------------------------------------------------------------------------
// Choker
// ---------------------------------------------------------------------------------------

#[test]
fn choker_names() {
    let table = [
        (Choker::Vanilla(Vanilla::new(Slots::Fixed(4))), "vanilla"),
        (Choker::Tyrant(tyrant(1e5)), "tyrant"),
        (Choker::PropShare(PropShare::new(1e5, 0.2)), "propshare"),
    ];
    for (c, name) in table {
        assert_eq!(c.name(), name);
    }
}

#[test]
fn choker_vanilla_is_the_old_vanilla() {
    // The same rounds through Choker and through Vanilla directly give the same decisions,
    // with no caps and no u_p/d_p, for leeching and seeding alike.
    let mut peers: Vec<PeerView> = (1..=9)
        .map(|i| PeerView {
            id: i,
            interested: i != 4,
            choked: true,
            snubbed: i == 2,
            down_rate: (i * 37 % 10) as f64,
            up_rate: (i * 13 % 7) as f64,
            down_round: i * 1000,
            ..PeerView::default()
        })
        .collect();
    let slots = Slots::Auto { up_kib: 30.0 };
    let mut direct = Vanilla::new(slots.clone());
    let mut c = Choker::Vanilla(Vanilla::new(slots));
    let (mut r1, mut r2) = (Rng::new(8), Rng::new(8));
    for round in 0..12 {
        let seeding = round >= 8;
        let a = direct.rechoke(&peers, seeding, &mut r1);
        let b = c.rechoke(&peers, seeding, 10.0, &mut r2);
        assert_eq!(a, b, "round {}", round);
        assert!(b
            .iter()
            .all(|x| x.cap.is_none() && x.u_p.is_none() && x.d_p.is_none()));
        apply(&mut peers, &b);
    }
    // Fast unchoke: only with a free regular slot, only for an interested choked peer.
    let mut peers: Vec<PeerView> = (1..=4).map(|i| peer(i, true, 0.0)).collect();
    let mut c = Choker::Vanilla(Vanilla::new(Slots::Fixed(3))); // 2 regular
    let d = c.fast_unchoke(&peers, 1, false).unwrap();
    assert!(d.unchoke && !d.optimistic && d.cap.is_none());
    peers[0].choked = false;
    peers[1].choked = false;
    assert_eq!(c.fast_unchoke(&peers, 3, false), None);
    peers[1].choked = true;
    peers[1].interested = false;
    assert_eq!(c.fast_unchoke(&peers, 2, false), None);
    assert!(c.fast_unchoke(&peers, 3, false).is_some());
}

/// `--up` below the market rate (downpour never ran it; our first version unchoked nobody):
/// u_p starts at and never grows beyond the capacity, so a peer can always be unchoked.
#[test]
fn capacity_below_market_rate_still_unchokes() {
    let cap = 5.0 * KIB;
    let mut t = tyrant(cap);
    let peers = [PeerView {
        id: 1,
        interested: true,
        choked: true,
        peer_choking: true,
        ..PeerView::default()
    }];
    let mut rng = Rng::new(3);
    for round in 0..6 {
        let d = t.rechoke(&peers, 10.0, &mut rng);
        assert!(d[0].unchoke, "round {}: not unchoked", round);
        assert_eq!(d[0].cap, Some(cap), "round {}", round);
        // never reciprocates: ×1.2 each round, held at the capacity
        assert_eq!(t.state(1).unwrap().0, cap);
    }
}
