//! Transfer-rate measurement and rate limiting: a sliding-window rate meter in the
//! spirit of mainline's `CurrentRateMeasure.Measure`, and a token bucket that may go
//! into debt like mainline 4.x `RateLimiter` and juju/ratelimit `Take`
//! (docs/other-clients.md, "Rate limits"; the BitTyrant paper's per-peer upload caps are built on it).
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
}

impl RateMeter {
    pub fn new(window: Duration, now: Instant) -> RateMeter {
        let window_bins = window.as_nanos() / u128::from(BIN_NANOS)
            + u128::from(window.as_nanos() % u128::from(BIN_NANOS) != 0);
        // +1: a window that is not aligned to bins touches one more bin than it spans.
        let slots = (window_bins.max(1) + 1) as usize;
        RateMeter { start: now, window, bins: vec![(0, 0); slots] }
    }

    fn bin_of(&self, now: Instant) -> u64 {
        (now.saturating_duration_since(self.start).as_nanos() / u128::from(BIN_NANOS)) as u64
    }

    pub fn add(&mut self, now: Instant, bytes: u64) {
        let k = self.bin_of(now);
        let n = self.bins.len() as u64;
        let slot = &mut self.bins[(k % n) as usize];
        if slot.0 == k {
            slot.1 = slot.1.saturating_add(bytes);
        } else if slot.0 < k {
            *slot = (k, bytes);
        }
        // else: a sample stamped older than the whole ring (a late caller with a stale
        // Instant): outside any window we report.
    }

    /// Bytes per second over min(window, time since creation); 0.0 when nothing
    /// arrived. f64, never truncated.
    ///
    /// During the first 250 ms the divisor is held at 250 ms, so one early block does
    /// not read as an absurd spike (mainline's `fudge` does the same with 1 s).
    pub fn rate(&self, now: Instant) -> f64 {
        let b = u128::from(BIN_NANOS);
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let from = elapsed.saturating_sub(self.window.as_nanos());
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

    /// Like `rate`, but over the whole window even while the meter is younger than it: a
    /// young meter reads low, never high. For sizing a request pipeline, where one early
    /// burst read as a rate would ask for several seconds of blocks the peer cannot send.
    pub fn rate_full(&self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.start).min(self.window);
        let span = age.max(Duration::from_nanos(BIN_NANOS)).as_secs_f64();
        self.rate(now) * span / self.window.as_secs_f64()
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
    /// Bytes per second; 0.0 means unlimited (read by the pacer to size its grants).
    pub rate: f64,
    /// Most the balance may hold; bounds how much an idle sender can save up.
    burst: f64,
    /// Bytes that may be sent now; negative while paying off a large send.
    balance: f64,
    last: Instant,
}

impl TokenBucket {
    /// rate and burst in bytes/s and bytes; burst is raised to at least [`MIN_BURST`].
    /// The bucket starts full.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        let mut b = TokenBucket { rate: 0.0, burst: MIN_BURST, balance: MIN_BURST, last: now };
        b.set_rate(rate, burst, now);
        b
    }

    /// Change the cap. Credit or debt earned so far is kept (clamped to the new
    /// burst), so re-setting a per-peer cap every round grants no free burst; leaving
    /// the unlimited state starts with a full bucket.
    pub fn set_rate(&mut self, rate: f64, burst: f64, now: Instant) {
        let was_unlimited = self.is_unlimited();
        self.refill(now);
        // Non-finite, zero or negative rates all mean "unlimited".
        self.rate = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        // f64::max ignores a NaN operand, so a NaN burst becomes MIN_BURST.
        self.burst = burst.max(MIN_BURST);
        self.balance = if was_unlimited { self.burst } else { self.balance.min(self.burst) };
    }

    fn is_unlimited(&self) -> bool {
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
        self.refill(now);
        if self.is_unlimited() || self.balance >= -EPSILON_BYTES {
            return Duration::ZERO;
        }
        let secs = (-self.balance / self.rate).min(MAX_WAIT_SECS);
        // Round up: waking a nanosecond early would just cost another round trip.
        Duration::from_nanos((secs * 1e9).ceil() as u64)
    }

    /// Charge n bytes (balance may go negative). While unlimited the balance means nothing
    /// (`set_rate` starts it full when a cap comes), so charging it then is harmless.
    pub fn take(&mut self, now: Instant, n: u64) {
        self.refill(now);
        self.balance -= n as f64;
    }

    /// Give back bytes taken for a send that did not happen (never above the burst).
    pub fn refund(&mut self, now: Instant, n: u64) {
        self.refill(now);
        self.balance = (self.balance + n as f64).min(self.burst);
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
    b.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
