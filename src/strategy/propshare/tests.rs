//! Table tests for PropShare (`src/strategy/propshare.rs`).

use super::*;

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

fn sum_shares(d: &[Decision]) -> f64 {
    d.iter().filter(|x| x.unchoke).filter_map(|x| x.u_p).sum()
}

/// A classroom example of PropShare against BitTyrant (docs/strategies.md, "PropShare"):
/// peers gave 13, 10, 4, 9, 15, 11 (KiB) last round and the example's total is 81, so a
/// seventh peer gave 19. Peer 8 gave
/// nothing and is the only optimistic candidate; peer 9 gave 30 but is not interested.
fn example_swarm() -> Vec<PeerView> {
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
fn propshare_classroom_example_shares_are_proportional() {
    let capacity = 100_000.0;
    let peers = example_swarm();
    let gave = [13.0, 10.0, 4.0, 9.0, 15.0, 11.0, 19.0];
    assert_eq!(gave.iter().sum::<f64>(), 81.0);
    for (f, seed) in [(0.2, 1), (0.1, 2), (0.5, 3)] {
        let mut ps = PropShare::new(capacity, f);
        let d = ps.rechoke(&peers, 10.0, &mut Rng::new(seed));
        for (i, &b) in gave.iter().enumerate() {
            let x = find(&d, i as u64 + 1);
            assert!(x.unchoke && !x.optimistic);
            assert_close(x.u_p.unwrap(), (1.0 - f) * capacity * b / 81.0, "share");
            assert!(x.cap.is_none(), "a weight, not a cap");
            assert_close(x.weight, x.u_p.unwrap() / capacity, "weight = share / C");
            assert_close(x.d_p.unwrap(), b * 1024.0 / 10.0, "d_p = b_p / round");
        }
        let o = find(&d, 8);
        assert!(o.unchoke && o.optimistic);
        assert_close(o.u_p.unwrap(), f * capacity, "optimistic share");
        assert_eq!(ps.optimistic, Some(8));
        let lazy = find(&d, 9);
        assert!(!lazy.unchoke && lazy.u_p.is_none(), "not interested: nothing");
        assert_close(sum_shares(&d), capacity, "Σ shares = C");
    }
    assert_eq!(PropShare::new(capacity, 0.2).optimistic_share, 0.2);
    assert_eq!(PropShare::new(capacity, 7.0).optimistic_share, 1.0);
}

#[test]
fn propshare_nothing_received_gives_the_optimistic_peer_everything() {
    let mut peers = example_swarm();
    for p in &mut peers {
        p.down_round = 0;
    }
    let mut ps = PropShare::new(80_000.0, 0.2);
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(4));
    let on: Vec<&Decision> = d.iter().filter(|x| x.unchoke).collect();
    assert_eq!(on.len(), 1);
    assert!(on[0].optimistic && on[0].id != 9);
    assert_eq!(on[0].u_p, Some(80_000.0));
    // Nobody interested: nobody unchoked.
    for p in &mut peers {
        p.interested = false;
    }
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(4));
    assert!(d.iter().all(|x| !x.unchoke));
    assert_eq!(ps.optimistic, None);
}

#[test]
fn propshare_without_an_optimistic_candidate_shares_all_capacity() {
    let mut peers = example_swarm();
    peers.retain(|p| p.id != 8);
    let mut ps = PropShare::new(81_000.0, 0.2);
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(1));
    assert!(d.iter().all(|x| !x.optimistic));
    assert_close(find(&d, 1).u_p.unwrap(), 13_000.0, "13/81 of all");
    assert_close(sum_shares(&d), 81_000.0, "Σ shares = C");
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
        assert_eq!(Some(opt[0]), ps.optimistic);
        assert_eq!(unchoked(&d).len(), 3);
        assert_close(find(&d, 2).u_p.unwrap(), 0.8 * 50_000.0 * 2.0 / 3.0, "share");
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
    let o = ps.optimistic.unwrap();
    assert_ne!(o, 1);
    // Mid-period, the optimistic peer sends 1000 B: it now earns 1000/4000 of 8000.
    peers[o as usize - 1].down_round = 1000;
    let d = ps.rechoke(&peers, 10.0, &mut rng);
    assert!(!find(&d, o).optimistic);
    assert_close(find(&d, o).u_p.unwrap(), 2000.0, "earned share");
    assert_close(find(&d, 1).u_p.unwrap(), 6000.0, "share");
    let other = 5 - o; // the remaining zero-sender (ids 2 and 3)
    assert_eq!(ps.optimistic, Some(other));
    assert_close(find(&d, other).u_p.unwrap(), 2000.0, "f·C");
}

#[test]
fn propshare_fast_unchoke_fills_an_empty_optimistic_slot() {
    let view = |id, interested, choked| PeerView { id, interested, choked, ..PeerView::default() };
    let mut c = PropShare::new(10_000.0, 0.2);
    // Nobody else unchoked: the newcomer may use all of C.
    let peers = [view(1, true, true)];
    let d = c.fast_unchoke(&peers, 1).unwrap();
    assert!(d.unchoke && d.optimistic);
    assert_eq!((d.u_p, d.cap, d.weight), (Some(10_000.0), None, 1.0));
    // Slot now held by an interested peer: no second fast unchoke.
    let peers = [view(1, true, false), view(2, true, true)];
    assert_eq!(c.fast_unchoke(&peers, 2), None);
    // Holder lost interest: the slot is free again, at f·C beside the reciprocal peers.
    let peers = [view(1, false, false), view(2, true, true), view(3, true, false)];
    let d = c.fast_unchoke(&peers, 2).unwrap();
    assert!(d.optimistic);
    assert_close(d.u_p.unwrap(), 2000.0, "f·C");
    assert_eq!(c.optimistic, Some(2));
    // Not interested or unknown: nothing.
    let mut ps = PropShare::new(10_000.0, 0.2);
    assert_eq!(ps.fast_unchoke(&[view(1, false, true)], 1), None);
    assert_eq!(ps.fast_unchoke(&[view(1, true, true)], 2), None);
}

/// The shares are weights in the upload pacer: while every unchoked peer wants data each
/// gets exactly its share, and a share one cannot absorb goes to the others in proportion
/// to theirs, so the capacity is used (work-conserving).
#[test]
fn propshare_shares_are_exact_under_load_and_nothing_sits_idle() {
    use crate::pacer::Uplink;
    use std::time::{Duration, Instant};
    let capacity = 100.0 * 16384.0;
    let peers = example_swarm();
    let mut ps = PropShare::new(capacity, 0.2);
    let d = ps.rechoke(&peers, 10.0, &mut Rng::new(1));
    let on: Vec<&Decision> = d.iter().filter(|x| x.unchoke).collect();
    for slow in [None, Some(5u64)] {
        let t0 = Instant::now();
        let mut up = Uplink::new(capacity, 16384.0, 1.0, t0);
        for x in &on {
            up.join(x.id);
            up.share(x.id, x.cap, x.weight, t0);
            up.ask(x.id, 16384);
        }
        let mut got: std::collections::BTreeMap<u64, f64> = Default::default();
        let mut t = t0;
        let mut slow_next = t0;
        while t < t0 + Duration::from_secs(30) {
            while let Some((id, len)) = up.grant(t) {
                *got.entry(id).or_default() += len as f64;
                if Some(id) == slow {
                    // this peer wants one block every 2 s only
                    slow_next = t + Duration::from_secs(2);
                } else {
                    up.ask(id, len);
                }
            }
            if slow.is_some() && t >= slow_next {
                up.ask(slow.unwrap_or(0), 16384);
                slow_next = t + Duration::from_secs(1000);
            }
            t += up
                .wait(t)
                .unwrap_or(Duration::from_millis(1))
                .max(Duration::from_micros(1))
                .min(Duration::from_millis(10));
        }
        let total: f64 = got.values().sum();
        assert!(
            total >= 0.95 * capacity * 30.0,
            "{:?}: {:.0} of {:.0}",
            slow,
            total / 30.0,
            capacity
        );
        if slow.is_none() {
            for x in &on {
                let share = got[&x.id] / total;
                assert!(
                    (share - x.weight).abs() < 0.01,
                    "peer {}: {:.3} vs {:.3}",
                    x.id,
                    share,
                    x.weight
                );
            }
        }
    }
}
