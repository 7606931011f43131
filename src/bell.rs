//! Channels whose receiver goes to sleep at once: a crossbeam channel plus a doorbell (the
//! receiving thread's park token), for the writers', the pacer's and the announcer's inboxes.
//!
//! crossbeam's blocking receive spins and then calls `sched_yield` several times before it
//! parks. With hundreds of threads on two cores each yield hands the core to another
//! thread: in a 33-process swarm at S = 4, 27,500 yields a second, about one per real
//! wake-up (README, "Capped cost"). Here the receiver tries once, then parks until a
//! sender rings. A ring between the try and the park leaves the park token set, so the
//! park returns at once and no message waits.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

type Bell = Arc<Mutex<Option<Thread>>>;

fn ring(bell: &Bell) {
    if let Some(t) = &*bell.lock().unwrap_or_else(|e| e.into_inner()) {
        t.unpark();
    }
}

/// The sending side; `None` only while dropping, so the receiver woken by the last
/// sender's ring finds the channel disconnected.
pub struct Tx<T>(Option<Sender<T>>, Bell);

pub struct Rx<T>(Receiver<T>, Bell);

pub fn unbounded<T>() -> (Tx<T>, Rx<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let bell = Bell::default();
    (Tx(Some(tx), Arc::clone(&bell)), Rx(rx, bell))
}

impl<T> Tx<T> {
    /// Queue `m` and wake the receiver; `Err` when the receiver is gone.
    pub fn send(&self, m: T) -> Result<(), T> {
        let sent = match &self.0 {
            Some(tx) => tx.send(m).map_err(|e| e.0),
            None => Err(m),
        };
        ring(&self.1);
        sent
    }
}

impl<T> Clone for Tx<T> {
    fn clone(&self) -> Tx<T> {
        Tx(self.0.clone(), Arc::clone(&self.1))
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        drop(self.0.take());
        ring(&self.1);
    }
}

impl<T> Rx<T> {
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.0.try_recv()
    }

    /// Wait at most `wait` (`None`: for ever) for the next message.
    pub fn recv_timeout(&self, wait: Option<Duration>) -> Result<T, RecvTimeoutError> {
        let deadline = wait.map(|w| Instant::now() + w);
        // The bell must name this thread before the first try (the receiver may have
        // moved), or a message sent between the try and the park would ring nobody.
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread::current());
        loop {
            match self.0.try_recv() {
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Ok(m) => return Ok(m),
            }
            match deadline.map(|d| d.checked_duration_since(Instant::now())) {
                None => thread::park(),
                Some(Some(left)) if !left.is_zero() => thread::park_timeout(left),
                Some(_) => return Err(RecvTimeoutError::Timeout),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_receiver_wakes_for_a_message_and_for_the_last_sender_leaving() {
        let (tx, rx) = unbounded::<u32>();
        let tx2 = tx.clone();
        let t = thread::spawn(move || {
            // A lost ring would leave this waiting the whole 5 s, not for ever.
            let waited = Instant::now();
            let first = (rx.recv_timeout(Some(Duration::from_secs(5))), waited.elapsed());
            let second = rx.recv_timeout(Some(Duration::from_secs(30)));
            (first, second, rx.recv_timeout(Some(Duration::from_millis(1))))
        });
        thread::sleep(Duration::from_millis(50));
        assert_eq!(tx.send(7), Ok(()));
        thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        drop(tx);
        drop(tx2);
        let (first, second, third) = t.join().expect("receiver thread");
        assert_eq!(first.0, Ok(7));
        assert!(first.1 < Duration::from_secs(2), "the send rang nobody: {:?}", first.1);
        assert_eq!(second, Err(RecvTimeoutError::Disconnected));
        assert_eq!(third, Err(RecvTimeoutError::Disconnected));
        assert!(started.elapsed() < Duration::from_secs(5), "the last drop rang nobody");
    }

    #[test]
    fn a_receiver_times_out_and_a_send_to_a_gone_receiver_fails() {
        let (tx, rx) = unbounded::<u32>();
        let started = Instant::now();
        assert_eq!(
            rx.recv_timeout(Some(Duration::from_millis(30))),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
        drop(rx);
        assert_eq!(tx.send(3), Err(3));
    }

    /// Messages from several threads racing the receiver's try and park: each arrives once.
    #[test]
    fn every_message_from_several_senders_arrives_once() {
        let (tx, rx) = unbounded::<u32>();
        let senders: Vec<_> = (0..4)
            .map(|k| {
                let tx = tx.clone();
                thread::spawn(move || {
                    (0..2000).for_each(|i| assert!(tx.send(k * 10_000 + i).is_ok()))
                })
            })
            .collect();
        drop(tx);
        let started = Instant::now();
        let mut got = Vec::new();
        while let Ok(m) = rx.recv_timeout(Some(Duration::from_secs(60))) {
            got.push(m);
        }
        senders.into_iter().for_each(|s| s.join().expect("sender"));
        got.sort_unstable();
        got.dedup();
        assert_eq!(got.len(), 8000);
        assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    }
}
