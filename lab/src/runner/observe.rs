//! What a run reads back besides the processes' exit codes: the machine's idle CPU while
//! it ran (a time-scaled run only means something while the machine keeps up) and each
//! download's `done` line in the client's stats file.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

/// Whether the machine kept up: the machine-wide idle share of all CPUs
/// from /proc/stat, every 5 s of the run, into `runs/RUN/cpu.txt`, then a summary line.
/// A time-scaled run is only valid while there is idle CPU left (concurrent runs share it).
pub(super) struct CpuLog {
    file: Option<File>,
    last: Option<(Duration, u64, u64)>,
    first: Option<(u64, u64)>,
    min_share: f64,
}

impl CpuLog {
    pub(super) fn new(dir: &Path) -> CpuLog {
        CpuLog {
            file: File::create(dir.join("cpu.txt")).ok(),
            last: None,
            first: None,
            min_share: 1.0,
        }
    }

    /// (idle + iowait, total) jiffies over all CPUs; None off Linux.
    fn read() -> Option<(u64, u64)> {
        let text = fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|w| w.parse().ok()).collect();
        if v.len() < 5 {
            return None;
        }
        Some((v[3] + v[4], v.iter().sum()))
    }

    pub(super) fn sample(&mut self, t: Duration) {
        if let Some((lt, _, _)) = self.last {
            if t < lt + Duration::from_secs(5) {
                return;
            }
        }
        let (idle, total) = match CpuLog::read() {
            Some(x) => x,
            None => return,
        };
        if self.first.is_none() {
            self.first = Some((idle, total));
        }
        if let Some((_, li, lt)) = self.last {
            if total > lt {
                let share = (idle - li.min(idle)) as f64 / (total - lt) as f64;
                self.min_share = self.min_share.min(share);
                if let Some(f) = self.file.as_mut() {
                    let _ = writeln!(f, "t={:.0} idle_share={:.3}", t.as_secs_f64(), share);
                }
            }
        }
        self.last = Some((t, idle, total));
    }

    /// (idle share over the run, lowest 5 s idle share), also written to cpu.txt.
    pub(super) fn finish(&mut self) -> Option<(f64, f64)> {
        if let (Some((fi, ft)), Some((idle, total))) = (self.first, CpuLog::read()) {
            if total > ft {
                let share = (idle - fi.min(idle)) as f64 / (total - ft) as f64;
                if let Some(f) = self.file.as_mut() {
                    let _ = writeln!(
                        f,
                        "summary idle_share={:.3} min_5s_idle_share={:.3}",
                        share, self.min_share
                    );
                }
                return Some((share, self.min_share));
            }
        }
        None
    }
}

/// The `done` line of a stats file: download time and bytes (real units).
#[derive(Debug, Default, PartialEq)]
pub(super) struct DoneLine {
    pub(super) download_secs: Option<f64>,
    pub(super) downloaded: u64,
    pub(super) uploaded: u64,
}

pub(super) fn read_done(path: &Path) -> DoneLine {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(_) => return DoneLine::default(),
    };
    let mut last = None;
    for line in BufReader::new(f).lines().map_while(Result::ok) {
        if line.starts_with("done ") {
            last = Some(line);
        }
    }
    let line = match last {
        Some(l) => l,
        None => return DoneLine::default(),
    };
    let kv: BTreeMap<&str, &str> =
        line.split_whitespace().filter_map(|w| w.split_once('=')).collect();
    let complete = kv.get("complete") == Some(&"true");
    DoneLine {
        download_secs: kv.get("download_time").and_then(|s| s.parse().ok()).filter(|_| complete),
        downloaded: kv.get("downloaded").and_then(|s| s.parse().ok()).unwrap_or(0),
        uploaded: kv.get("uploaded").and_then(|s| s.parse().ok()).unwrap_or(0),
    }
}
