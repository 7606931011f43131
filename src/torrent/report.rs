//! The chooser's outputs and its end: the `start` and per-second `tick` lines of the
//! `--stats` file, the progress line, and an orderly shutdown (close peers, send `stopped`
//! with a bounded wait, flush storage, write the `done` line). Part of the chooser thread.

use super::*;

impl Torrent {
    pub(super) fn write_stats_header(&mut self) {
        let line = format!(
            "start info_hash={} name={} pieces={} piece_length={} total={} listen={} peer_id={} rng_seed={} up_kib={} down_kib={} strategy={} rebel={} thief={} reveal={} share={} resumed={} time_scale={}",
            self.meta.info_hash_hex(),
            stats::word(&self.meta.name),
            self.meta.num_pieces(),
            self.meta.piece_length,
            self.meta.total_length,
            self.listen,
            stats::word(&String::from_utf8_lossy(&self.cfg.peer_id)),
            self.cfg.rng_seed,
            self.cfg.up_kib,
            self.cfg.down_kib,
            self.choker.name(),
            self.cfg.rebel,
            self.cfg.thief,
            self.cfg.reveal.map_or("-".to_string(), |n| n.to_string()),
            self.cfg.share.map_or("-".to_string(), |(a, b)| format!("{}..{}", a, b)),
            self.resumed,
            self.cfg.time_scale,
        );
        self.stats.line(
            "# tyrant stats v1: one line per second; t=seconds since start, bytes and bytes/s, all real (at time_scale S: nominal t = t*S, nominal rate = rate/S)",
        );
        self.stats.line(&line);
        self.stats.flush();
        if self.trace.is_on() {
            self.trace
                .line("# tyrant trace v1: one line per peer per choking round; rates in bytes/s");
            self.trace.line(&line);
        }
    }

    pub(super) fn report(&mut self, now: Instant) {
        let tick = Tick {
            t: now.duration_since(self.started).as_secs_f64(),
            have: self.picker.have_count(),
            pieces: self.picker.num_pieces(),
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            down_rate: self.down_total.rate(now),
            up_rate: self.up_total.rate(now),
            peers: self
                .peers
                .values()
                .filter(|p| matches!(p.phase, Phase::Active))
                .count(),
            unchoked: self.peers.values().filter(|p| !p.am_choking).count(),
            unchoking_us: self.peers.values().filter(|p| !p.peer_choking).count(),
            wasted: self.wasted,
            hash_fails: self.hash_fails,
        };
        self.stats.line(&tick.line());
        self.stats.flush();
        self.trace.flush();
        if self.cfg.progress {
            eprint!("{}", tick.progress(&self.cfg.label));
        }
    }

    pub(super) fn finish(
        mut self,
        tracker: Option<std::thread::JoinHandle<()>>,
    ) -> Result<Summary, String> {
        // Let the disk thread finish what is queued (a verified piece is never dropped) and
        // count its verdicts before the `done` line.
        self.disk = None;
        if let Some(h) = self.disk_thread.take() {
            if h.join().is_err() {
                log::error!("the disk thread panicked");
            }
        }
        while let Ok(d) = self.disk_done.try_recv() {
            self.on_disk(d);
        }
        let why = self.stop.clone().unwrap_or_default();
        log::info!("stopping: {}", why);
        let ids: Vec<u64> = self.peers.keys().copied().collect();
        for id in ids {
            self.close(id, "shutting down");
        }
        if let Some(t) = self.tracker_ctl.take() {
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
        let t = self.started.elapsed().as_secs_f64();
        let line = format!(
            "done t={:.2} download_time={} downloaded={} uploaded={} complete={} reason={}",
            t,
            self.download_secs
                .map_or("-".to_string(), |s| format!("{:.3}", s)),
            self.downloaded,
            self.uploaded,
            self.picker.is_complete(),
            stats::word(&why)
        );
        self.stats.line(&line);
        self.stats.flush();
        self.trace.flush();
        if self.cfg.progress {
            eprintln!();
        }
        if why.starts_with("disk write failed") {
            return Err(why);
        }
        Ok(Summary {
            download_secs: self.download_secs,
            downloaded: self.downloaded,
            uploaded: self.uploaded,
            complete: self.picker.is_complete(),
        })
    }
}
