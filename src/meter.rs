//! Transfer-rate measurement and rate limiting: a sliding-window rate meter in the
//! spirit of mainline's `CurrentRateMeasure.Measure`, and a token bucket that may go
//! into debt like mainline 4.x `RateLimiter` and juju/ratelimit `Take`
//! (anchors.md §3.3; the BitTyrant paper's per-peer upload caps are built on it).
//!
//! Time is always passed in as an `Instant` so the chooser and the tests decide what
//! "now" is; nothing here reads the clock except [`shared_bucket`].

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Meter granularity. Fine enough that a 10-s rechoke round sees at most a 2.5 %
/// edge effect, coarse enough that a 20-s window is only 81 counters.
const BIN_NANOS: u64 = 250_000_000;

/// Sliding-window rate meter (mainline CurrentRateMeasure): bytes/s over the last
/// `window`.
///
/// Bytes are counted in fixed 250-ms bins kept in a ring, so `add` is O(1) and memory
/// is O(window). The oldest bin, which straddles the window's start, is counted
/// pro rata, so a steady flow measures exactly its rate rather than up to one bin
/// more.
#[derive(Debug, Clone)]
pub struct RateMeter {
    start: Instant,
    window: Duration,
    /// `(bin number since start, bytes)`; a slot whose bin number is stale is
    /// simply overwritten by the next bin that maps to it.
    bins: Vec<(u64, u64)>,
    total: u64,
    round: u64,
}

fn nanos(d: Duration) -> u128 {
    d.as_nanos()
}

impl RateMeter {
    pub fn new(window: Duration, now: Instant) -> RateMeter {
        let window_bins = nanos(window) / u128::from(BIN_NANOS)
            + u128::from(nanos(window) % u128::from(BIN_NANOS) != 0);
        // +1: a window that is not aligned to bins touches one more bin than it spans.
        let slots = (window_bins.max(1) + 1) as usize;
        RateMeter {
            start: now,
            window,
            bins: vec![(0, 0); slots],
            total: 0,
            round: 0,
        }
    }

    fn bin_of(&self, now: Instant) -> u64 {
        (nanos(now.saturating_duration_since(self.start)) / u128::from(BIN_NANOS)) as u64
    }

    pub fn add(&mut self, now: Instant, bytes: u64) {
        self.total = self.total.saturating_add(bytes);
        self.round = self.round.saturating_add(bytes);
        let k = self.bin_of(now);
        let n = self.bins.len() as u64;
        let slot = &mut self.bins[(k % n) as usize];
        if slot.0 == k {
            slot.1 = slot.1.saturating_add(bytes);
        } else if slot.0 < k {
            *slot = (k, bytes);
        }
        // else: a sample stamped older than the whole ring (a late caller with a stale
        // Instant). It still counts in `total`, but it is outside any window we report.
    }

    /// Bytes per second over min(window, time since creation); 0.0 when nothing
    /// arrived. f64, never truncated.
    ///
    /// During the first 250 ms the divisor is held at 250 ms, so one early block does
    /// not read as an absurd spike (mainline's `fudge` does the same with 1 s).
    pub fn rate(&self, now: Instant) -> f64 {
        let b = u128::from(BIN_NANOS);
        let elapsed = nanos(now.saturating_duration_since(self.start));
        let from = elapsed.saturating_sub(nanos(self.window));
        let current = elapsed / b;
        let n = self.bins.len() as u128;
        let mut sum = 0.0;
        for &(k, bytes) in &self.bins {
            let k = u128::from(k);
            if bytes == 0 || k > current || k + n <= current {
                continue;
            }
            // Assume bytes arrived evenly over the part of the bin that has passed,
            // and count the share that falls inside [from, elapsed].
            let lo = k * b;
            let hi = ((k + 1) * b).min(elapsed);
            if hi <= lo {
                if lo >= from {
                    sum += bytes as f64;
                }
                continue;
            }
            let overlap = hi.saturating_sub(lo.max(from));
            sum += bytes as f64 * (overlap as f64 / (hi - lo) as f64);
        }
        if sum == 0.0 {
            return 0.0;
        }
        let span = (elapsed - from).max(b);
        sum / (span as f64 / 1e9)
    }

    /// All bytes ever added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Bytes added since the previous call (or since creation), and restart the count.
    /// The chooser calls this once per rechoke round: BitTyrant's estimates are
    /// per-round quantities, not smoothed rates.
    pub fn take_round(&mut self) -> u64 {
        std::mem::replace(&mut self.round, 0)
    }
}

/// Smallest burst a bucket gets: one 16 KiB block plus its 13-byte piece header, so a
/// full block message never needs more than one refill to become affordable.
pub const MIN_BURST: f64 = 16384.0 + 13.0;

/// A balance this close to zero counts as zero, so float rounding after sleeping for
/// exactly `wait_time` never causes an extra 1-ns wake-up.
const EPSILON_BYTES: f64 = 1e-6;

/// Longest wait ever reported; keeps `Duration` construction safe for absurd rates.
const MAX_WAIT_SECS: f64 = 1e9;

/// Token bucket that may go into debt (mainline 4.x RateLimiter / juju Take): a block
/// of any size may be sent whenever the balance is >= 0, after which the balance may
/// go negative, so caps below one 16 KiB block per second still flow. rate <= 0 means
/// unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Bytes per second; 0.0 means unlimited.
    rate: f64,
    /// Most the balance may hold; bounds how much an idle sender can save up.
    burst: f64,
    /// Bytes that may be sent now; negative while paying off a large send.
    balance: f64,
    last: Instant,
}

/// Non-finite, zero or negative rates all mean "unlimited".
fn normalize_rate(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    }
}

impl TokenBucket {
    /// rate and burst in bytes/s and bytes; burst is raised to at least [`MIN_BURST`].
    /// The bucket starts full.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let mut b = TokenBucket {
            rate: 0.0,
            burst: MIN_BURST,
            balance: MIN_BURST,
            last: now,
        };
        b.set_rate(rate, burst, now);
        b
    }

    /// Change the cap. Credit or debt earned so far is kept (clamped to the new
    /// burst), so re-setting a per-peer cap every round grants no free burst; leaving
    /// the unlimited state starts with a full bucket.
    pub fn set_rate(&mut self, rate: f64, burst: f64, now: Instant) {
        let was_unlimited = self.is_unlimited();
        self.refill(now);
        self.rate = normalize_rate(rate);
        // f64::max ignores a NaN operand, so a NaN burst becomes MIN_BURST.
        self.burst = burst.max(MIN_BURST);
        self.balance = if was_unlimited {
            self.burst
        } else {
            self.balance.min(self.burst)
        };
    }

    /// The cap in bytes/s; 0.0 when unlimited.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate <= 0.0
    }

    fn refill(&mut self, now: Instant) {
        // Callers sharing a bucket may present slightly out-of-order Instants; time
        // never runs backwards here, it just earns nothing.
        if now <= self.last {
            return;
        }
        let dt = (now - self.last).as_secs_f64();
        self.last = now;
        if !self.is_unlimited() {
            self.balance = (self.balance + self.rate * dt).min(self.burst);
        }
    }

    /// Zero if a send may start now (balance >= 0 after refilling), otherwise how long
    /// until it may.
    pub fn wait_time(&mut self, now: Instant) -> Duration {
        if self.is_unlimited() {
            return Duration::ZERO;
        }
        self.refill(now);
        if self.balance >= -EPSILON_BYTES {
            return Duration::ZERO;
        }
        let secs = (-self.balance / self.rate).min(MAX_WAIT_SECS);
        // Round up: waking a nanosecond early would just cost another round trip.
        Duration::from_nanos((secs * 1e9).ceil() as u64)
    }

    /// Charge n bytes (balance may go negative). No-op when unlimited.
    pub fn take(&mut self, now: Instant, n: u64) {
        if self.is_unlimited() {
            return;
        }
        self.refill(now);
        self.balance -= n as f64;
    }

    /// `wait_time` and `take` in one step: charge n bytes and return zero if a send may
    /// start now, otherwise charge nothing and return the wait. With a shared bucket
    /// this keeps the check and the charge under one lock.
    pub fn try_take(&mut self, now: Instant, n: u64) -> Duration {
        let wait = self.wait_time(now);
        if wait == Duration::ZERO {
            self.take(now, n);
        }
        wait
    }
}

/// A bucket shared by all writer threads (global cap) — Arc<Mutex<TokenBucket>>.
pub type SharedBucket = Arc<Mutex<TokenBucket>>;

pub fn shared_bucket(rate: f64, burst: f64) -> SharedBucket {
    Arc::new(Mutex::new(TokenBucket::new(rate, burst, Instant::now())))
}

/// Lock a shared bucket, ignoring poisoning: a bucket is a few numbers that are valid
/// after any panic, and one crashed writer must not stop every other upload.
pub fn lock_bucket(b: &SharedBucket) -> MutexGuard<'_, TokenBucket> {
    match b.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(m.total(), 0);
    }

    #[test]
    fn meter_steady_flow_is_exact() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(secs(20.0), t0);
        // 1000 bytes every 100 ms = 10 kB/s, at offsets that do not align with bins.
        for i in 1..=600u64 {
            m.add(t0 + Duration::from_millis(i * 100 - 33), 1000);
        }
        assert_eq!(m.total(), 600_000);
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
        assert_eq!(m.total(), 1_000_000);
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
        assert_eq!(m.total(), 100_000 + 1_000_000);
        // Before `start`, and a tiny window, do not panic.
        let mut tiny = RateMeter::new(Duration::from_millis(1), t0 + secs(1.0));
        tiny.add(t0, 5);
        tiny.add(t0 + secs(1.0), 5);
        assert!(tiny.rate(t0 + secs(1.0)) > 0.0);
        assert_eq!(tiny.rate(t0 + secs(2.0)), 0.0);
    }

    #[test]
    fn meter_round_counter() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(secs(20.0), t0);
        m.add(t0, 10);
        m.add(t0 + secs(1.0), 20);
        assert_eq!(m.take_round(), 30);
        assert_eq!(m.take_round(), 0);
        m.add(t0 + secs(11.0), 5);
        assert_eq!(m.take_round(), 5);
        assert_eq!(m.total(), 35);
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
            assert!(
                close(achieved, rate, 0.02),
                "{} KiB/s: achieved {}",
                kib,
                achieved
            );
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
        assert!(close(
            b.wait_time(later).as_secs_f64(),
            1.0 / 20_000.0,
            1e-3
        ));
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
            assert_eq!(b.rate(), 0.0);
            b.take(t0, u64::MAX);
            assert_eq!(b.wait_time(t0), Duration::ZERO);
        }
        let mut b = TokenBucket::new(0.0, 0.0, t0);
        b.set_rate(1000.0, 0.0, t0);
        assert!(!b.is_unlimited());
        assert_eq!(b.rate(), 1000.0);
        // Leaving unlimited starts full.
        assert_eq!(b.try_take(t0, MSG), Duration::ZERO);
        assert!(b.try_take(t0, MSG) == Duration::ZERO); // balance 0 still allows one
        let w = b.try_take(t0, MSG);
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
        std::thread::spawn(move || lock_bucket(&b2).take(Instant::now(), 1))
            .join()
            .unwrap();
        assert!(lock_bucket(&b).is_unlimited());
    }
}
