//! The pacer's decisions on a made-up clock: weights, caps, refunds, work conservation.

use super::*;

const B: u64 = 16384;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Every peer in `ids` always has a block waiting; grant for `dur` seconds and count bytes.
fn backlogged(up: &mut Uplink, ids: &[u64], t0: Instant, dur: f64) -> BTreeMap<u64, u64> {
    let mut got = BTreeMap::new();
    for &id in ids {
        up.ask(id, B);
    }
    let mut t = t0;
    while t < t0 + secs(dur) {
        while let Some((id, len)) = up.grant(t) {
            *got.entry(id).or_insert(0) += len;
            up.ask(id, len);
        }
        t += up.wait(t).unwrap_or(secs(0.001)).max(Duration::from_micros(1));
    }
    got
}

#[test]
fn backlogged_peers_share_in_proportion_to_their_weights() {
    let t0 = Instant::now();
    let rate = 100.0 * B as f64;
    let mut up = Uplink::new(rate, B as f64, 1.0, t0);
    for id in 1..=3 {
        up.join(id);
    }
    up.share(1, None, 1.0, t0);
    up.share(2, None, 3.0, t0);
    up.share(3, None, 6.0, t0);
    let got = backlogged(&mut up, &[1, 2, 3], t0, 20.0);
    let total: u64 = got.values().sum();
    assert!((total as f64 - rate * 20.0).abs() <= 2.0 * B as f64, "total {}", total);
    for (id, w) in [(1, 0.1), (2, 0.3), (3, 0.6)] {
        let share = got[&id] as f64 / total as f64;
        assert!((share - w).abs() < 0.01, "peer {}: {:.3} of the capacity", id, share);
    }
}

/// A peer held back by its own cap leaves the rest to the others (work-conserving), and
/// never gets more than its cap.
#[test]
fn a_capped_peer_gets_its_cap_and_the_others_the_rest() {
    let t0 = Instant::now();
    let rate = 100.0 * B as f64;
    let mut up = Uplink::new(rate, B as f64, 1.0, t0);
    for id in 1..=3 {
        up.join(id);
    }
    up.share(1, Some(10.0 * B as f64), 5.0, t0);
    // after the capped peer's first second of burst
    let _ = backlogged(&mut up, &[1, 2, 3], t0, 5.0);
    let got = backlogged(&mut up, &[1, 2, 3], t0 + secs(5.0), 30.0);
    let per_sec = |id: u64| got[&id] as f64 / 30.0 / B as f64;
    assert!((per_sec(1) - 10.0).abs() < 0.2, "capped peer: {:.2} blocks/s", per_sec(1));
    assert!((per_sec(2) - 45.0).abs() < 0.5 && (per_sec(3) - 45.0).abs() < 0.5);
}

/// One grant per block, and only when the torrent's bucket allows: the rate holds.
#[test]
fn grants_follow_the_upload_cap() {
    let t0 = Instant::now();
    let rate = 20.0 * 1024.0;
    let mut up = Uplink::new(rate, B as f64, 1.0, t0);
    up.join(7);
    let got = backlogged(&mut up, &[7], t0, 100.0);
    let achieved = got[&7] as f64 / 100.0;
    // Whole blocks: the bucket starts full (one block) and may go one block into debt.
    assert!((achieved - rate).abs() * 100.0 <= 2.0 * B as f64 + 1.0, "{:.1} B/s", achieved);
    assert_eq!(up.grant(t0 + secs(100.0)), None, "nobody asks: no grant");
}

/// A grant the writer could not use (its block was cancelled) goes back to the bucket and
/// to the peer's own cap, and its pass is undone.
#[test]
fn an_unused_grant_is_refunded() {
    let t0 = Instant::now();
    let mut up = Uplink::new(B as f64, B as f64, 1.0, t0);
    up.join(1);
    up.join(2);
    up.ask(1, B);
    assert_eq!(up.grant(t0), Some((1, B)));
    up.ask(2, B);
    assert_eq!(up.grant(t0), Some((2, B)), "a bucket may go into debt by one block");
    up.ask(1, B);
    assert_eq!(up.grant(t0), None, "in debt");
    up.unused(2, B, t0);
    assert_eq!(up.grant(t0), Some((1, B)), "the refund pays for peer 1 now");
}

/// A peer idle for a long time does not bank credit: when it comes back it shares with
/// the others from then on instead of taking everything until it has caught up.
#[test]
fn an_idle_peer_does_not_bank_credit() {
    let t0 = Instant::now();
    let mut up = Uplink::new(100.0 * B as f64, B as f64, 1.0, t0);
    up.join(1);
    up.join(2);
    let _ = backlogged(&mut up, &[1], t0, 10.0);
    let got = backlogged(&mut up, &[1, 2], t0 + secs(10.0), 2.0);
    let (a, b) = (got[&1] as f64, got[&2] as f64);
    assert!((a / b - 1.0).abs() < 0.1, "after its idle time peer 2 got {} vs {}", b, a);
}

/// A writer asks for its whole queue; a grant covers at most a fifth of a nominal second of
/// the slower of the torrent's rate and the peer's cap, at least one block, never more than
/// was asked: at 2,000 KiB/s 25 blocks, at 50 KiB/s one, at 2,000 KiB/s under a 320 KiB/s
/// peer cap 4, and at S = 4 a quarter as many. The rate over time does not change.
#[test]
fn a_grant_covers_a_fifth_of_a_second_of_blocks() {
    let t0 = Instant::now();
    let first = |rate_kib: f64, cap_kib: Option<f64>, burst_secs: f64, asked: u64| {
        let mut up = Uplink::new(rate_kib * 1024.0, 1e9, burst_secs, t0);
        up.join(1);
        up.share(1, cap_kib.map(|c| c * 1024.0), 1.0, t0);
        up.ask(1, asked);
        up.grant(t0).map(|(_, len)| len)
    };
    assert_eq!(first(2000.0, None, 1.0, 100 * B), Some(25 * B));
    assert_eq!(first(2000.0, None, 1.0, 3 * B + 100), Some(3 * B + 100), "all that was asked");
    assert_eq!(first(50.0, None, 1.0, 100 * B), Some(B));
    assert_eq!(first(2000.0, Some(320.0), 1.0, 100 * B), Some(4 * B));
    assert_eq!(first(8000.0, None, 0.25, 100 * B), Some(25 * B), "S = 4: 0.05 s of 8,000");
    let mut up = Uplink::new(2000.0 * 1024.0, B as f64, 1.0, t0);
    up.join(7);
    let mut got = 0;
    let mut t = t0;
    up.ask(7, 1000 * B);
    while t < t0 + secs(60.0) {
        while let Some((_, len)) = up.grant(t) {
            got += len;
            up.ask(7, 1000 * B);
        }
        t += up.wait(t).unwrap_or(secs(0.001)).max(Duration::from_micros(1));
    }
    let achieved = got as f64 / 60.0 / 1024.0;
    assert!((achieved - 2000.0).abs() < 2000.0 * 0.01, "{:.1} KiB/s", achieved);
}
