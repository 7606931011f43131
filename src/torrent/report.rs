//! The session's outputs and its end: the `complete` line on stdout, the `start` and
//! per-second `tick` lines of the `--stats` file, the progress line, and an orderly
//! shutdown (close peers, send `stopped` with a bounded wait, flush storage, write the
//! `done` line).

use super::*;
use crate::stats;

impl Torrent {
    pub(super) fn on_complete(&mut self) {
        if self.cfg.progress {
            eprintln!();
        }
        let secs = self.chooser.download_secs().unwrap_or(0.0);
        println!(
            "{}complete: {} in {:.2} s (downloaded {} B, uploaded {} B)",
            self.cfg.label, self.meta.name, secs, self.chooser.downloaded, self.chooser.uploaded
        );
        if let Err(e) = self.storage.flush() {
            log::warn!("flush: {}", e);
        }
    }

    pub(super) fn write_stats_header(&mut self) {
        let m = &self.meta;
        let c = &self.cfg;
        let line = format!(
            "start info_hash={} name={} pieces={} piece_length={} total={} listen={} peer_id={} rng_seed={} up_kib={} down_kib={} max_peers={} numwant={} {} resumed={} time_scale={} build={}",
            crate::sha1::hex(&m.info_hash),
            stats::word(&m.name),
            m.num_pieces(),
            m.piece_length,
            m.total_length,
            self.listen,
            stats::word(&String::from_utf8_lossy(&c.peer_id)),
            c.rng_seed,
            c.up_kib,
            c.down_kib,
            c.max_peers,
            c.numwant,
            self.chooser.strategy().stats_words(),
            self.resumed,
            c.time_scale,
            crate::BUILD,
        );
        self.stats.line("# tyrant stats v1: one line per second; t=seconds since start, bytes and bytes/s, all real (at time_scale S: nominal t = t*S, nominal rate = rate/S)");
        self.stats.line(&line);
        self.stats.flush();
        // A sink without a file ignores lines.
        self.trace.line("# tyrant trace v1: one line per peer per choking round; rates in bytes/s");
        self.trace.line(&line);
    }

    pub(super) fn report(&mut self, now: Instant) {
        let tick = self.chooser.sample(now);
        self.stats.line(&tick.line());
        self.stats.flush();
        self.trace.flush();
        if self.cfg.progress {
            eprint!("{}", tick.progress(&self.cfg.label));
        }
    }

    pub(super) fn finish(mut self, tracker: Option<JoinHandle<()>>) -> Result<Outcome, String> {
        let why = self.chooser.stop.clone().unwrap_or_default();
        log::info!("stopping: {}", why);
        let now = Instant::now();
        self.chooser.close_all(now, "shutting down");
        self.carry_out();
        if let Some(t) = self.tracker.take() {
            let _ = t.send(TrackerCtl::Stop);
        }
        // The announcer sends `stopped` with a short timeout, but it may be in the middle
        // of an announce to a tracker that never answers: wait a little, then leave it.
        if let Some(h) = tracker {
            let end = Instant::now() + Duration::from_secs(6);
            while !h.is_finished() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                log::warn!("tracker did not answer `stopped` in time; exiting without it");
            }
        }
        if let Err(e) = self.storage.flush() {
            log::warn!("flush: {}", e);
        }
        let outcome = Outcome {
            download_secs: self.chooser.download_secs(),
            downloaded: self.chooser.downloaded,
            uploaded: self.chooser.uploaded,
            complete: self.chooser.picker().is_complete(),
        };
        if let (Some(p), Some(text)) =
            (&self.cfg.strategy.memory, self.chooser.strategy().remembered())
        {
            // Written aside, then renamed: a crash never leaves half a memory behind.
            let tmp = p.with_extension("tmp");
            if let Err(e) = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, p)) {
                log::warn!("--tyrant-memory {}: {}", p.display(), e);
            }
        }
        let t = now.duration_since(self.chooser.started_at()).as_secs_f64();
        self.stats.line(&format!("done t={:.2} {} reason={}", t, outcome, stats::word(&why)));
        self.stats.flush();
        self.trace.flush();
        if self.cfg.progress {
            eprintln!();
        }
        if why.starts_with("disk write failed") {
            return Err(why);
        }
        Ok(outcome)
    }
}

/// `download_time=S downloaded=B uploaded=B complete=BOOL`, the words of a run's result that
/// the `done` line of the stats file and the BitSybil summary (main.rs) share.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = self.download_secs.map_or("-".to_string(), |s| format!("{:.3}", s));
        let (down, up, complete) = (self.downloaded, self.uploaded, self.complete);
        write!(f, "download_time={time} downloaded={down} uploaded={up} complete={complete}")
    }
}
