//! Machine-readable outputs of a run: the `--stats` file (one `tick` line per second and a
//! final `done` line) and the `--trace` file (every choking decision of every round), both
//! as `key=value` words so a harness can parse them with a split; plus the terminal
//! progress line. Formats are documented in README.md ("Statistics file", "Trace file").

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// One output file that turns itself off after the first write error (a full disk must
/// not stop the download).
pub struct Sink {
    name: String,
    file: Option<BufWriter<File>>,
}

impl Sink {
    pub fn create(path: Option<&Path>) -> Result<Sink, String> {
        let file = path
            .map(|p| File::create(p).map_err(|e| format!("cannot write {}: {}", p.display(), e)))
            .transpose()?
            .map(BufWriter::new);
        Ok(Sink { name: path.map(|p| p.display().to_string()).unwrap_or_default(), file })
    }

    pub fn line(&mut self, line: &str) {
        self.write(|f| writeln!(f, "{}", line));
    }

    /// Flush buffered lines (once per second, and at the end), so a reader tailing the
    /// file sees whole lines.
    pub fn flush(&mut self) {
        self.write(|f| f.flush());
    }

    fn write(&mut self, op: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) {
        if let Some(Err(e)) = self.file.as_mut().map(op) {
            log::warn!("cannot write {}: {}; giving up on it", self.name, e);
            self.file = None;
        }
    }
}

/// The per-second sample.
#[derive(Clone, Debug, Default)]
pub struct Tick {
    pub t: f64,
    pub have: u32,
    pub pieces: u32,
    pub downloaded: u64,
    pub uploaded: u64,
    pub down_rate: f64,
    pub up_rate: f64,
    pub peers: usize,
    pub unchoked: usize,
    pub unchoking_us: usize,
    pub wasted: u64,
    pub hash_fails: u32,
}

impl Tick {
    pub fn line(&self) -> String {
        let Tick { t, have, pieces, downloaded, uploaded, down_rate, up_rate, .. } = self;
        let Tick { peers, unchoked, unchoking_us, wasted, hash_fails, .. } = self;
        format!("tick t={t:.1} have={have} pieces={pieces} downloaded={downloaded} uploaded={uploaded} down_rate={down_rate:.0} up_rate={up_rate:.0} peers={peers} unchoked={unchoked} unchoking_us={unchoking_us} wasted={wasted} hash_fails={hash_fails}")
    }

    pub fn progress(&self, label: &str) -> String {
        let Tick { peers, unchoked, .. } = self;
        let percent = 100.0 * f64::from(self.have) / f64::from(self.pieces.max(1));
        let (down, up) = (human(self.down_rate), human(self.up_rate));
        format!("\r{label}{percent:5.1}%  down {down:>9}/s  up {up:>9}/s  peers {peers:3} ({unchoked} unchoked)   ")
    }
}

fn human(bps: f64) -> String {
    if bps >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", bps / 1024.0 / 1024.0)
    } else {
        format!("{:.1} KiB", bps / 1024.0)
    }
}

/// A value for a `key=value` word: no spaces, `-` for none.
pub fn word(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.replace(char::is_whitespace, "_")
    }
}

pub fn opt_f(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |x| format!("{:.0}", x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_line_is_key_value_words() {
        let t = Tick { t: 1.25, have: 3, pieces: 10, down_rate: 1234.6, ..Tick::default() };
        let line = t.line();
        assert!(line.starts_with("tick t=1.2 have=3 pieces=10 "), "{}", line);
        assert!(line.contains(" down_rate=1235 "));
        assert!(line.split(' ').skip(1).all(|w| w.contains('=')));
        assert_eq!(word("a b\tc"), "a_b_c");
        assert_eq!(word(""), "-");
        assert_eq!(opt_f(None), "-");
    }

    #[test]
    fn sink_writes_lines_and_survives_without_a_file() {
        let mut off = Sink::create(None).unwrap();
        off.line("ignored");
        off.flush();
        assert!(off.file.is_none());
        let p = std::env::temp_dir().join(format!("tyrant-sink-{}", std::process::id()));
        let mut s = Sink::create(Some(&p)).unwrap();
        s.line("a=1");
        s.line("b=2");
        s.flush();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a=1\nb=2\n");
        let _ = std::fs::remove_file(&p);
        assert!(Sink::create(Some(Path::new("/nonexistent/dir/x"))).is_err());
    }
}
