//! Table tests for BitTyrant (`src/strategy/tyrant.rs`): the update rules, the market
//! rate, the three passes, and each ablation switch.

use super::*;

const KIB: f64 = 1024.0;

fn unchoked(d: &[Decision]) -> Vec<u64> {
    let mut v: Vec<u64> = d.iter().filter(|d| d.unchoke).map(|d| d.id).collect();
    v.sort_unstable();
    v
}

fn find(d: &[Decision], id: u64) -> &Decision {
    d.iter().find(|x| x.id == id).expect("a decision per peer")
}

#[track_caller]
fn assert_close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0),
        "{}: got {}, want {}",
        what,
        a,
        b
    );
}

/// As the chooser does before the next round: who we choke follows the decisions.
fn apply(peers: &mut [PeerView], d: &[Decision]) {
    for p in peers.iter_mut() {
        p.choked = !find(d, p.id).unchoke;
    }
}

fn tyrant(capacity: f64) -> Tyrant {
    Tyrant::new(TyrantParams { capacity, ..TyrantParams::default() })
}

/// A peer interested in us whose pieces we want, choking us, never seen sending.
fn peer(id: u64, have_kib: f64) -> PeerView {
    PeerView {
        id,
        interested: true,
        interesting: true,
        choked: true,
        peer_choking: true,
        have_rate: have_kib * KIB,
        ..PeerView::default()
    }
}

#[test]
fn constants_are_the_released_codes() {
    let p = TyrantParams::default();
    assert_eq!((p.market_default, p.floor), (3072.0, 1024.0));
    assert_eq!((p.delta, p.gamma, p.patience), (0.2, 0.1, 30.0));
    assert_eq!((p.excess, p.rank, p.shape), (Excess::Give, Rank::Ratio, true));
}

#[test]
fn have_rate_estimate_is_equal_split_over_mainline_active_set() {
    // (HAVE rate KiB/s, d_p estimate bytes/s): mainline's slots at that rate divide it.
    let table =
        [(0.0, 0.0), (5.0, 2560.0), (20.0, 5120.0), (50.0, 10240.0), (1000.0, 1024000.0 / 24.0)];
    for (kib, d_p) in table {
        assert_close(have_estimate(kib * KIB, 1.0), d_p, "have_estimate");
        // under --time-scale 4 the rate is 4x and so is the estimate
        assert_close(have_estimate(4.0 * kib * KIB, 4.0), 4.0 * d_p, "scaled");
    }
    // a peer we never observed is ranked by it
    let mut t = tyrant(100.0 * KIB);
    let d = t.rechoke(&[peer(9, 50.0)], &mut Rng::new(1));
    assert_eq!(d[0].d_p, Some(10240.0));
    assert_eq!(d[0].u_p, Some(3072.0), "not yet offered: the market rate");
}

/// The update rules of `calculateUnchokes`, round by round, for one peer we unchoke:
/// ×1.2 while it chokes us (and we want its pieces), ×0.9 each round once it has unchoked
/// us for 30 s, and d_p from its 20 s rate only while it unchokes us.
#[test]
fn u_p_grows_while_choked_and_shrinks_after_30_s_of_reciprocation() {
    let mut t = tyrant(20.0 * KIB);
    let mut v = [peer(1, 0.0)];
    let mut rng = Rng::new(1);
    // round 1: never observed, so pass 1, offered the market rate (3 KiB/s: one peer)
    let d = t.rechoke(&v, &mut rng);
    assert_eq!((d[0].unchoke, d[0].pass, d[0].cap), (true, 1, Some(3072.0)));
    apply(&mut v, &d);
    // (peer chokes us?, seconds it has unchoked us, its rate, u_p after, d_p after)
    let table: [(bool, f64, f64, f64, f64); 7] = [
        (true, 0.0, 0.0, 3686.4, 0.0),          // choking: ×1.2
        (true, 0.0, 0.0, 4423.68, 0.0),         // again
        (false, 10.0, 4000.0, 4423.68, 4000.0), // unchokes us: d_p observed, u_p waits
        (false, 20.0, 4500.0, 4423.68, 4500.0),
        (false, 30.0, 5000.0, 3981.312, 5000.0), // 30 s without a choke: ×0.9
        (false, 40.0, 5000.0, 3583.1808, 5000.0),
        // it chokes us again; its 20 s rate is still high, but d_p keeps the last value seen
        // while it unchoked us
        (true, 0.0, 3000.0, 4299.81696, 5000.0),
    ];
    for (round, (choking, secs, rate, u_want, d_want)) in table.iter().enumerate() {
        v[0].peer_choking = *choking;
        v[0].unchoked_us_secs = *secs;
        v[0].down_rate = *rate;
        let d = t.rechoke(&v, &mut rng);
        let s = &t.peers[&1];
        assert_close(s.u_p, *u_want, &format!("round {} u_p", round + 2));
        assert_close(s.d_p, *d_want, &format!("round {} d_p", round + 2));
        apply(&mut v, &d);
    }
    // We do not want its pieces: choking us no longer raises u_p.
    v[0].peer_choking = true;
    v[0].interesting = false;
    let before = t.peers[&1].u_p;
    t.rechoke(&v, &mut rng);
    assert_close(t.peers[&1].u_p, before, "not interesting: no increase");
}

#[test]
fn u_p_stays_between_the_floor_and_the_capacity() {
    let mut t = tyrant(10.0 * KIB);
    let mut v = [peer(1, 0.0)];
    v[0].choked = false;
    t.peers.insert(1, PeerState { u_p: 9.0 * KIB, d_p: 0.0, seen: 0, ip: None });
    for _ in 0..10 {
        t.rechoke(&v, &mut Rng::new(1));
    }
    assert_close(t.peers[&1].u_p, 10.0 * KIB, "held at the capacity");
    v[0].peer_choking = false;
    v[0].unchoked_us_secs = 100.0;
    for _ in 0..100 {
        t.rechoke(&v, &mut Rng::new(1));
    }
    assert_close(t.peers[&1].u_p, 1024.0, "held at the floor");
}

/// `market_rate`: the mean u_p of the peers we unchoke when more than 2 are, else 3 KiB/s;
/// a peer given excess capacity only (never offered a rate) counts 0; never below 1 KiB/s.
#[test]
fn the_market_rate_follows_the_unchoked_peers() {
    let cases: &[(&[f64], f64)] = &[
        (&[], 3072.0),
        (&[8.0, 12.0], 3072.0),
        (&[8.0, 12.0, 16.0], 12.0 * KIB),
        (&[8.0, 12.0, 16.0, 0.0], 9.0 * KIB),
        (&[0.5, 0.0, 0.0], 1024.0),
    ];
    for (rates, want) in cases {
        let mut t = tyrant(1e9);
        let mut v = Vec::new();
        for (i, &kib) in rates.iter().enumerate() {
            let mut p = peer(i as u64 + 1, 0.0);
            p.choked = false;
            // unchoking us for a while, but not 30 s: no u_p change this round
            p.peer_choking = false;
            p.unchoked_us_secs = 5.0;
            v.push(p);
            t.peers.insert(i as u64 + 1, PeerState { u_p: kib * KIB, d_p: 0.0, seen: 0, ip: None });
        }
        t.rechoke(&v, &mut Rng::new(1));
        assert_close(t.market(), *want, &format!("{:?}", rates));
    }
}

/// The three passes: (1) good observed ratios, (2) every peer we want pieces from, by
/// ratio, skipping misfits, (3) what is left to interested peers we may not want anything
/// from, stalest information first.
#[test]
fn three_passes_fill_the_capacity() {
    let mut t = tyrant(30.0 * KIB);
    let rounds_seen = [(1, 5), (2, 5), (3, 5), (4, 3), (5, 1), (6, 0)];
    // (id, observed d_p KiB/s, offered u_p KiB/s, we want its pieces)
    let table = [
        (1, 8.0, 8.0, true),
        (2, 4.0, 8.0, true),
        (3, 0.0, 0.0, true),
        (4, 0.0, 9.0, false),
        (5, 0.0, 6.0, false),
        (6, 0.0, 0.0, false),
    ];
    let mut v = Vec::new();
    for (id, d_kib, u_kib, want) in table {
        let mut p = peer(id, 1.0);
        p.interesting = want;
        v.push(p);
        let seen = rounds_seen.iter().find(|(i, _)| *i == id).map_or(0, |x| x.1);
        t.peers.insert(id, PeerState { u_p: u_kib * KIB, d_p: d_kib * KIB, seen, ip: None });
    }
    t.round = 5;
    let d = t.rechoke(&v, &mut Rng::new(3));
    // market: nobody unchoked yet → 3 KiB/s
    // pass 1: 1 (ratio 1, fits: 8); 2 is an observed altruist (0.5) → skipped; 3 (estimate
    //         1/2 KiB/s over 3) fits: 11
    // pass 2: 2 fits: 19
    // pass 3 (stalest first): 6 (seen never, 3 KiB/s): 22; 5 (seen round 1, 6): 28;
    //         4 (9) does not fit (37 > 30)
    let passes: Vec<(u64, u8)> = d.iter().map(|x| (x.id, x.pass)).collect();
    assert_eq!(passes, vec![(1, 1), (2, 2), (3, 1), (4, 0), (5, 3), (6, 3)]);
    let caps: f64 = d.iter().filter_map(|x| x.cap).sum();
    assert_close(caps, 28.0 * KIB, "Σ caps");
    assert!(d.iter().all(|x| x.optimistic == (x.pass > 1)));
    // passes 1 and 2 commit the offered rate; the third does not
    assert_close(t.peers[&3].u_p, 3072.0, "pass 1 commits u_p");
    assert_close(t.peers[&6].u_p, 0.0, "pass 3 leaves it unset");
}

/// `--tyrant-excess keep`: no third pass, so only Σu_p of the peers we want pieces from
/// is used; `give` fills the capacity when enough peers want data (Σ of their offered
/// rates reaches it: the market rate falls to its 1 KiB/s floor once many peers are
/// served from the excess, as in the released code).
#[test]
fn giving_excess_uses_the_capacity_and_keeping_it_does_not() {
    let cap = 40.0 * KIB;
    // 4 peers we want pieces from (they choke us), 60 more that only want ours
    let v: Vec<PeerView> =
        (1..=64).map(|id| PeerView { interesting: id <= 4, ..peer(id, 20.0) }).collect();
    for excess in [Excess::Give, Excess::Keep] {
        let mut t = Tyrant::new(TyrantParams { capacity: cap, excess, ..TyrantParams::default() });
        let mut views = v.clone();
        for round in 1..=5 {
            let d = t.rechoke(&views, &mut Rng::new(5));
            let used = d.iter().filter_map(|x| x.cap).sum::<f64>();
            let from_excess = d.iter().filter(|x| x.pass == 3).count();
            match excess {
                Excess::Give => {
                    assert!(used >= 0.95 * cap, "round {}: {:.0} of {:.0}", round, used, cap)
                }
                Excess::Keep => {
                    assert_eq!(from_excess, 0);
                    assert_eq!(unchoked(&d), vec![1, 2, 3, 4], "round {}", round);
                    assert!(used < 0.7 * cap, "round {}: {:.0}", round, used);
                }
            }
            assert!(used <= cap);
            apply(&mut views, &d);
        }
    }
}

/// `--tyrant-rank`: over the same rounds, ranking by d_p/u_p and by d_p alone unchoke
/// different peers (so a ranking that ignored u_p would fail the ratio row).
#[test]
fn ranking_by_ratio_and_by_rate_choose_differently() {
    // one slot's worth of capacity per round: 10 KiB/s. Peer 1 gives a lot but needs a
    // lot; peer 2 gives less and needs little.
    let run = |rank: Rank| {
        let mut t =
            Tyrant::new(TyrantParams { capacity: 10.0 * KIB, rank, ..TyrantParams::default() });
        t.peers.insert(1, PeerState { u_p: 9.0 * KIB, d_p: 12.0 * KIB, seen: 1, ip: None });
        t.peers.insert(2, PeerState { u_p: 2.0 * KIB, d_p: 6.0 * KIB, seen: 1, ip: None });
        // both reciprocate (for less than 30 s), so u_p stays put
        let mut v = vec![peer(1, 0.0), peer(2, 0.0)];
        for p in &mut v {
            p.peer_choking = false;
            p.unchoked_us_secs = 5.0;
            p.down_rate = if p.id == 1 { 12.0 * KIB } else { 6.0 * KIB };
        }
        let mut picks = Vec::new();
        for _ in 0..3 {
            let d = t.rechoke(&v, &mut Rng::new(9));
            picks.push(
                d.iter().filter(|x| x.pass == 1 || x.pass == 2).map(|x| x.id).collect::<Vec<_>>(),
            );
            apply(&mut v, &d);
        }
        picks
    };
    // ratio: 2 (3.0) first and peer 1 (1.33) no longer fits (2 + 9 > 10)
    assert_eq!(run(Rank::Ratio), vec![vec![2], vec![2], vec![2]]);
    // rate: 1 (12 KiB/s) first, then 2 does not fit (9 + 2 > 10)
    assert_eq!(run(Rank::Rate), vec![vec![1], vec![1], vec![1]]);
    // random: both orders over many seeds
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..40 {
        let mut t = Tyrant::new(TyrantParams {
            capacity: 10.0 * KIB,
            rank: Rank::Random,
            ..TyrantParams::default()
        });
        t.peers.insert(1, PeerState { u_p: 9.0 * KIB, d_p: 12.0 * KIB, seen: 1, ip: None });
        t.peers.insert(2, PeerState { u_p: 2.0 * KIB, d_p: 6.0 * KIB, seen: 1, ip: None });
        let d = t.rechoke(&[peer(1, 0.0), peer(2, 0.0)], &mut Rng::new(seed));
        firsts.insert(
            unchoked(&d).into_iter().filter(|id| find(&d, *id).pass < 3).collect::<Vec<_>>(),
        );
    }
    assert_eq!(firsts.len(), 2, "random order picks either: {:?}", firsts);
}

/// `--tyrant-shape off`: the same unchoke set, but no per-peer caps.
#[test]
fn shape_off_unchokes_the_same_peers_without_caps() {
    let v: Vec<PeerView> = (1..=8).map(|id| peer(id, id as f64 * 10.0)).collect();
    let on = Tyrant::new(TyrantParams { capacity: 30.0 * KIB, ..TyrantParams::default() })
        .rechoke(&v, &mut Rng::new(2));
    let off =
        Tyrant::new(TyrantParams { capacity: 30.0 * KIB, shape: false, ..TyrantParams::default() })
            .rechoke(&v, &mut Rng::new(2));
    assert_eq!(unchoked(&on), unchoked(&off));
    assert!(on.iter().filter(|x| x.unchoke).all(|x| x.cap == x.u_p));
    assert!(off.iter().all(|x| x.cap.is_none()));
}

/// Misfits are skipped and the scan goes on (downpour's bug 5 stopped at the first).
#[test]
fn a_misfit_is_skipped_and_a_later_cheaper_peer_fits() {
    let mut t = tyrant(16.0 * KIB);
    // ratios: 1 (10/7 = 1.43) > 2 (13/10 = 1.3) > 3 (5/4 = 1.25)
    for (id, u, d) in [(1, 7.0, 10.0), (2, 10.0, 13.0), (3, 4.0, 5.0)] {
        t.peers.insert(id, PeerState { u_p: u * KIB, d_p: d * KIB, seen: 1, ip: None });
    }
    let v: Vec<PeerView> = (1..=3).map(|id| peer(id, 0.0)).collect();
    let d = t.rechoke(&v, &mut Rng::new(1));
    assert_eq!(unchoked(&d), vec![1, 3], "2 (10 KiB/s) does not fit after 1, 3 (4) still does");
}

#[test]
fn capacity_below_the_market_rate_still_unchokes() {
    // --up 2 against a 3 KiB/s market rate: the rate is held at the capacity, so a peer
    // can always be unchoked (the released code had no such bound).
    let cap = 2.0 * KIB;
    let mut t = tyrant(cap);
    let v = [peer(1, 0.0)];
    for _ in 0..3 {
        let d = t.rechoke(&v, &mut Rng::new(3));
        assert!(d[0].unchoke);
        assert_eq!(d[0].cap, Some(cap));
    }
}

#[test]
fn peers_that_left_are_forgotten() {
    let mut t = tyrant(50.0 * KIB);
    t.rechoke(&[peer(1, 0.0), peer(2, 0.0)], &mut Rng::new(1));
    t.rechoke(&[peer(2, 0.0)], &mut Rng::new(1));
    assert!(!t.peers.contains_key(&1) && t.peers.contains_key(&2));
}

/// `--tyrant-memory`: a peer that chokes us for two rounds has u_p raised 3 → 3.6 → 4.32
/// KiB/s; it leaves and comes back on a new connection from the same address. A new user
/// offers it the market rate again; a long-lived user offers what it learned, and so does
/// the next process that loads the file (written in nominal rates: scale 4 reads it ×4).
#[test]
fn a_long_lived_user_knows_a_returning_peer_by_its_address() {
    let ip: IpAddr = "127.0.0.9".parse().expect("an address");
    let at = |id| PeerView { ip: Some(ip), ..peer(id, 20.0) };
    let learn = |t: &mut Tyrant| {
        let mut rng = Rng::new(3);
        let mut v = vec![at(1)];
        for _ in 0..3 {
            let d = t.rechoke(&v, &mut rng);
            apply(&mut v, &d);
        }
        t.rechoke(&[], &mut rng); // it left
        find(&t.rechoke(&[at(2)], &mut rng), 2).u_p
    };
    assert_eq!(learn(&mut tyrant(100.0 * KIB)), Some(3072.0), "a new user forgets");
    let mut t = tyrant(100.0 * KIB);
    t.recall("");
    let learned = 3072.0 * 1.2 * 1.2;
    assert_close(learn(&mut t).unwrap_or(0.0), learned, "the learned u_p comes back");

    let text = t.remembered().expect("a long-lived user has a memory");
    assert!(text.contains(&format!("127.0.0.9 {:.0} 0\n", learned)), "{}", text);
    let mut next =
        Tyrant::new(TyrantParams { capacity: 400.0 * KIB, scale: 4.0, ..TyrantParams::default() });
    next.recall(&format!("{}garbage line\n127.0.0.10 x 1\n", text));
    let d = next.rechoke(&[at(5)], &mut Rng::new(1));
    assert_close(find(&d, 5).u_p.unwrap_or(0.0), 4.0 * learned.round(), "loaded, scaled");
    assert_eq!(next.remembered().map(|t| t.lines().count()), Some(2), "bad lines skipped");
}
