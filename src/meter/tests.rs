//! Unit tests for the rate meter and the token bucket (`src/meter.rs`).

use super::*;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-9)
}

#[test]
fn meter_empty_is_zero() {
    let t0 = Instant::now();
    let m = RateMeter::new(secs(20.0), t0);
    assert_eq!(m.rate(t0), 0.0);
    assert_eq!(m.rate(t0 + secs(100.0)), 0.0);
}

#[test]
fn meter_steady_flow_is_exact() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(secs(20.0), t0);
    // 1000 bytes every 100 ms = 10 kB/s, at offsets that do not align with bins.
    for i in 1..=600u64 {
        m.add(t0 + Duration::from_millis(i * 100 - 33), 1000);
    }
    let now = t0 + Duration::from_millis(59_990);
    assert!(close(m.rate(now), 10_000.0, 0.01), "{}", m.rate(now));
    // Before the window fills, the divisor is the time since creation.
    let mut m = RateMeter::new(secs(20.0), t0);
    for i in 1..=50u64 {
        m.add(t0 + Duration::from_millis(i * 100), 1000);
    }
    assert!(close(m.rate(t0 + secs(5.0)), 10_000.0, 0.001));
}

#[test]
fn meter_is_float_and_forgets() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(secs(20.0), t0);
    m.add(t0 + secs(0.5), 1);
    // 1 byte over 10 s: a rate below 1 B/s must not truncate to zero.
    assert!(close(m.rate(t0 + secs(10.0)), 0.1, 1e-9));
    m.add(t0 + secs(1.0), 999_999);
    assert!(close(m.rate(t0 + secs(10.0)), 100_000.0, 1e-9));
    // Once the window has slid past every sample, the rate is zero again.
    assert_eq!(m.rate(t0 + secs(30.0)), 0.0);
}

#[test]
fn meter_memory_is_bounded_and_late_samples_are_safe() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(secs(20.0), t0);
    assert_eq!(m.bins.len(), 81);
    for i in 0..10_000u64 {
        m.add(t0 + Duration::from_millis(i * 37), 10);
    }
    assert_eq!(m.bins.len(), 81);
    // A sample stamped long ago counts in total but not in the rate.
    let before = m.rate(t0 + secs(370.0));
    m.add(t0, 1_000_000);
    assert_eq!(m.rate(t0 + secs(370.0)), before);
    // Before `start`, and a tiny window, do not panic.
    let mut tiny = RateMeter::new(Duration::from_millis(1), t0 + secs(1.0));
    tiny.add(t0, 5);
    tiny.add(t0 + secs(1.0), 5);
    assert!(tiny.rate(t0 + secs(1.0)) > 0.0);
    assert_eq!(tiny.rate(t0 + secs(2.0)), 0.0);
}

const MSG: u64 = 16397;

/// A sender that sends one block message whenever the bucket allows, for `dur`.
/// Returns the send times (offsets from start) and the bucket's initial burst.
fn simulate(rate: f64, dur: f64) -> Vec<Duration> {
    let t0 = Instant::now();
    let end = t0 + secs(dur);
    let mut b = TokenBucket::new(rate, rate, t0);
    let mut now = t0;
    let mut sends = Vec::new();
    loop {
        let w = b.wait_time(now);
        if w == Duration::ZERO {
            b.take(now, MSG);
            sends.push(now - t0);
        } else {
            now += w;
            if now > end {
                return sends;
            }
        }
    }
}

#[test]
fn bucket_long_run_rate_is_exact() {
    for &kib in &[1.0f64, 5.0, 20.0, 100.0] {
        let rate = kib * 1024.0;
        let burst = rate.max(MIN_BURST);
        // After 60 s, a saturated sender has sent the initial burst plus exactly
        // rate*T, give or take the one message it is currently paying off.
        let sent = simulate(rate, 60.0).len() as f64 * MSG as f64;
        let ideal = burst + rate * 60.0;
        assert!(
            sent > ideal - 1.0 && sent <= ideal + MSG as f64 + 1.0,
            "{} KiB/s: sent {} ideal {}",
            kib,
            sent,
            ideal
        );
        // Over a long run the burst and the debt vanish: within 2 % of the cap.
        let hour = 3600.0;
        let achieved = simulate(rate, hour).len() as f64 * MSG as f64 / hour;
        assert!(close(achieved, rate, 0.02), "{} KiB/s: achieved {}", kib, achieved);
    }
    // At 100 KiB/s, 60 s is already long enough for 2 %.
    let achieved = simulate(102_400.0, 60.0).len() as f64 * MSG as f64 / 60.0;
    assert!(close(achieved, 102_400.0, 0.02), "{}", achieved);
}

#[test]
fn bucket_below_one_block_per_second_still_flows() {
    // 1 KiB/s is 16 s per block; rqbit's GCRA would never send (issue #528).
    let sends = simulate(1024.0, 60.0);
    assert!(sends.len() >= 3, "{:?}", sends);
    // Full bucket at start (one block, and balance 0 still allows one more), then
    // exactly one block per MSG/rate seconds.
    assert_eq!(sends[0], Duration::ZERO);
    assert_eq!(sends[1], Duration::ZERO);
    let gap = (sends[2] - sends[1]).as_secs_f64();
    assert!(close(gap, MSG as f64 / 1024.0, 1e-6), "{}", gap);
}

#[test]
fn bucket_refill_never_exceeds_burst() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(20_000.0, 40_000.0, t0);
    b.take(t0, 40_000);
    assert_eq!(b.wait_time(t0), Duration::ZERO); // balance exactly 0
    b.take(t0, 10_000);
    assert!(close(b.wait_time(t0).as_secs_f64(), 0.5, 1e-6));
    // Idle for an hour: still only `burst` of credit.
    let later = t0 + secs(3600.0);
    b.take(later, 40_000);
    assert_eq!(b.wait_time(later), Duration::ZERO);
    b.take(later, 1);
    assert!(close(b.wait_time(later).as_secs_f64(), 1.0 / 20_000.0, 1e-3));
    // Burst is raised to one block message.
    let small = TokenBucket::new(100.0, 10.0, t0);
    assert_eq!(small.burst, MIN_BURST);
}

#[test]
fn bucket_unlimited_and_set_rate() {
    let t0 = Instant::now();
    for &r in &[0.0, -5.0, f64::NAN, f64::INFINITY] {
        let mut b = TokenBucket::new(r, 0.0, t0);
        assert!(b.is_unlimited());
        assert_eq!(b.rate, 0.0);
        b.take(t0, u64::MAX);
        assert_eq!(b.wait_time(t0), Duration::ZERO);
    }
    let mut b = TokenBucket::new(0.0, 0.0, t0);
    b.set_rate(1000.0, 0.0, t0);
    assert!(!b.is_unlimited());
    assert_eq!(b.rate, 1000.0);
    // Leaving unlimited starts full.
    let try_take = |b: &mut TokenBucket| {
        let w = b.wait_time(t0);
        if w.is_zero() {
            b.take(t0, MSG);
        }
        w
    };
    assert_eq!(try_take(&mut b), Duration::ZERO);
    assert!(try_take(&mut b) == Duration::ZERO); // balance 0 still allows one
    let w = try_take(&mut b);
    assert!(close(w.as_secs_f64(), MSG as f64 / 1000.0, 1e-6));
    // Re-setting the cap keeps the debt: no free burst per round.
    b.set_rate(2000.0, 0.0, t0);
    let w = b.wait_time(t0);
    assert!(close(w.as_secs_f64(), MSG as f64 / 2000.0, 1e-6));
    // Absurdly small rate: a bounded wait, no panic.
    b.set_rate(1e-300, 0.0, t0);
    assert!(b.wait_time(t0) > Duration::from_secs(1_000_000));
    // Going unlimited releases everything.
    b.set_rate(0.0, 0.0, t0);
    assert_eq!(b.wait_time(t0), Duration::ZERO);
}

#[test]
fn bucket_time_never_runs_backwards() {
    let t0 = Instant::now();
    let mut b = TokenBucket::new(1000.0, 0.0, t0 + secs(10.0));
    b.take(t0 + secs(10.0), 2 * MSG);
    let w = b.wait_time(t0 + secs(10.0));
    // An older Instant earns nothing and does not rewind the clock.
    assert_eq!(b.wait_time(t0), w);
    assert_eq!(b.wait_time(t0 + secs(10.0)), w);
}

#[test]
fn shared_bucket_is_usable_across_threads() {
    let b = shared_bucket(0.0, 0.0);
    let b2 = Arc::clone(&b);
    std::thread::spawn(move || lock_bucket(&b2).take(Instant::now(), 1)).join().unwrap();
    assert!(lock_bucket(&b).is_unlimited());
}

/// A burst of five blocks 300 ms into a 2 s meter: `rate` reads it over 300 ms (5x the
/// peer's 82 KB/s, a pacer's 0.2 s grant), `rate_full` over the whole window, so it never
/// reads high; once the meter is older than its window the two agree.
#[test]
fn rate_full_never_reads_a_young_burst_high() {
    let t0 = Instant::now();
    let mut m = RateMeter::new(secs(2.0), t0);
    m.add(t0 + secs(0.3), 5 * 16384);
    let early = t0 + secs(0.3);
    assert!(close(m.rate(early), 5.0 * 16384.0 / 0.3, 0.01), "{}", m.rate(early));
    assert!(close(m.rate_full(early), 5.0 * 16384.0 / 2.0, 0.01), "{}", m.rate_full(early));
    for i in 1..=39u64 {
        m.add(t0 + secs(0.3) + Duration::from_millis(i * 200), 16384);
    }
    let late = t0 + secs(8.2);
    assert!(close(m.rate_full(late), m.rate(late), 1e-9));
    // One block more or less in a 2 s window is 10 %.
    assert!(close(m.rate(late), 16384.0 / 0.2, 0.11), "{}", m.rate(late));
}
