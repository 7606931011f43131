//! The manifest's text form: %-escaping, one `key=value` record per line, and
//! `Manifest::to_text` / `Manifest::from_text`, which give back exactly the manifest they
//! were given. What the records mean, and the checks that are not about syntax, are in
//! manifest.rs.

use super::*;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// %-escape the bytes that would break a word or a list: `%`, `,`, whitespace. A lone `-`
/// is escaped too, since `-` alone is the empty list.
fn esc(s: &str) -> String {
    if s == "-" {
        return "%2D".into();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '%' || c == ',' || c.is_whitespace() || c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{:02X}", b);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unesc(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad %-escape in '{}'", s))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{}' is not UTF-8 once unescaped", s))
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(|s| esc(s)).collect::<Vec<_>>().join(",")
    }
}

fn unlist(s: &str) -> Result<Vec<String>, String> {
    if s == "-" {
        return Ok(Vec::new());
    }
    s.split(',').map(unesc).collect()
}

/// One parsed line: its record type and key=value words, with the keys it may have.
struct Record<'a> {
    kind: &'a str,
    words: BTreeMap<&'a str, &'a str>,
}

impl<'a> Record<'a> {
    fn parse(
        line: &'a str,
        known: &dyn Fn(&str) -> Option<&'static [&'static str]>,
    ) -> Result<Record<'a>, String> {
        let mut it = line.split_whitespace();
        let kind = it.next().unwrap_or_default();
        let keys = known(kind).ok_or_else(|| format!("unknown record '{}'", kind))?;
        let mut words = BTreeMap::new();
        for w in it {
            let (k, v) = match w.find('=') {
                Some(i) if i > 0 => (&w[..i], &w[i + 1..]),
                _ => return Err(format!("{}: '{}' is not key=value", kind, w)),
            };
            if !keys.contains(&k) {
                return Err(format!("{}: unknown key '{}'", kind, k));
            }
            if words.insert(k, v).is_some() {
                return Err(format!("{}: key '{}' given twice", kind, k));
            }
        }
        for k in keys.iter().filter(|k| !OPTIONAL_KEYS.contains(k)) {
            if !words.contains_key(k) {
                return Err(format!("{}: missing {}=", kind, k));
            }
        }
        Ok(Record { kind, words })
    }

    fn s(&self, k: &str) -> Result<String, String> {
        unesc(self.words[k]).map_err(|e| format!("{}: {}: {}", self.kind, k, e))
    }

    fn list(&self, k: &str) -> Result<Vec<String>, String> {
        unlist(self.words[k]).map_err(|e| format!("{}: {}: {}", self.kind, k, e))
    }

    fn num<T: std::str::FromStr>(&self, k: &str) -> Result<T, String> {
        self.words[k]
            .parse::<T>()
            .map_err(|_| format!("{}: {}='{}' is not a valid number", self.kind, k, self.words[k]))
    }

    /// A finite, non-negative float.
    fn nonneg(&self, k: &str) -> Result<f64, String> {
        let v: f64 = self.num(k)?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("{}: {}={} must be finite and >= 0", self.kind, k, v))
        }
    }

    fn bool(&self, k: &str) -> Result<bool, String> {
        match self.words[k] {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(format!("{}: {}='{}' is not true or false", self.kind, k, v)),
        }
    }
}

const MANIFEST_KEYS: &[&str] =
    &["version", "name", "preset", "seed", "time_scale", "reps", "dist", "statistic"];
/// Keys a record may lack: added to the format after manifests were written without them.
const OPTIONAL_KEYS: &[&str] = &["statistic", "client"];
const TORRENT_KEYS: &[&str] = &["file", "size", "piece_kib", "path"];
const TRACKER_KEYS: &[&str] = &["host", "addr", "port", "interval", "min_interval", "max_numwant"];
const RUN_KEYS: &[&str] =
    &["name", "group", "variant", "rep", "seed", "cap", "duration", "tracker_args"];
const PEER_KEYS: &[&str] = &[
    "run", "id", "host", "addr", "port", "role", "strategy", "flags", "up", "down", "start",
    "focus", "args", "client",
];

fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
    match kind {
        "manifest" => Some(MANIFEST_KEYS),
        "torrent" => Some(TORRENT_KEYS),
        "tracker" => Some(TRACKER_KEYS),
        "run" => Some(RUN_KEYS),
        "peer" => Some(PEER_KEYS),
        _ => None,
    }
}

/// The manifest line's fields: name, preset, seed, time scale, reps, dist, statistic.
type Head = (String, String, u64, f64, usize, String, Option<String>);

impl Manifest {
    /// The canonical text: `FORMAT` as a comment block, then the records in a fixed key
    /// order. Floats print in Rust's shortest round-trip form, so `from_text` gives back
    /// exactly this manifest.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        o.push_str(FORMAT);
        let _ = writeln!(
            o,
            "manifest version={} name={} preset={} seed={} time_scale={} reps={} dist={}",
            VERSION,
            esc(&self.name),
            esc(&self.preset),
            self.seed,
            self.time_scale,
            self.reps,
            esc(&self.dist)
        );
        if let Some(s) = &self.statistic {
            // Before the newline: `statistic=` ends the manifest line.
            o.pop();
            let _ = writeln!(o, " statistic={}", esc(s));
        }
        let t = &self.torrent;
        let _ = writeln!(
            o,
            "torrent file={} size={} piece_kib={} path={}",
            esc(&t.file),
            t.size,
            t.piece_kib,
            esc(&t.path)
        );
        let k = &self.tracker;
        let _ = writeln!(
            o,
            "tracker host={} addr={} port={} interval={} min_interval={} max_numwant={}",
            esc(&k.host),
            k.addr,
            k.port,
            k.interval,
            k.min_interval,
            k.max_numwant
        );
        for r in &self.runs {
            let _ = writeln!(
                o,
                "\nrun name={} group={} variant={} rep={} seed={} cap={} duration={} tracker_args={}",
                esc(&r.name),
                esc(&r.group),
                esc(&r.variant),
                r.rep,
                r.seed,
                r.cap,
                r.duration,
                list(&r.tracker_args)
            );
            for p in &r.peers {
                let _ = writeln!(
                    o,
                    "peer run={} id={} host={} addr={} port={} role={} strategy={} flags={} up={} down={} start={} focus={} args={}",
                    esc(&r.name),
                    esc(&p.id),
                    esc(&p.host),
                    p.addr,
                    p.port,
                    p.role.as_str(),
                    p.kind.as_str(),
                    list(&p.flags),
                    p.up,
                    p.down,
                    p.start,
                    p.focus,
                    list(&p.args)
                );
                if p.client != "tyrant" {
                    // Before the newline: `client=` ends the peer's line.
                    o.pop();
                    let _ = writeln!(o, " client={}", esc(&p.client));
                }
            }
        }
        o
    }

    /// Parse and validate a manifest. Errors are one line: `manifest line N: ...`.
    pub fn from_text(text: &str) -> Result<Manifest, String> {
        let mut head: Option<Head> = None;
        let mut torrent: Option<TorrentSpec> = None;
        let mut tracker: Option<Tracker> = None;
        let mut runs: Vec<Run> = Vec::new();
        let mut last = 0;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            last = i + 1;
            let at = |e: String| format!("manifest line {}: {}", i + 1, e);
            let rec = Record::parse(line, &keys_of).map_err(at)?;
            if head.is_none() && rec.kind != "manifest" {
                return Err(at("the first record must be the manifest line".into()));
            }
            match rec.kind {
                "manifest" => {
                    if head.is_some() {
                        return Err(at("a second manifest line".into()));
                    }
                    let version: u32 = rec.num("version").map_err(at)?;
                    if version != VERSION {
                        return Err(at(format!(
                            "manifest: version {} is not supported (this tyrant reads {})",
                            version, VERSION
                        )));
                    }
                    let time_scale = rec.nonneg("time_scale").map_err(at)?;
                    if time_scale <= 0.0 {
                        return Err(at("manifest: time_scale must be > 0".into()));
                    }
                    head = Some((
                        rec.s("name").map_err(at)?,
                        rec.s("preset").map_err(at)?,
                        rec.num("seed").map_err(at)?,
                        time_scale,
                        rec.num("reps").map_err(at)?,
                        rec.s("dist").map_err(at)?,
                        match rec.words.get("statistic") {
                            None => None,
                            Some(_) => {
                                let s = rec.s("statistic").map_err(at)?;
                                crate::study::Statistic::parse(&s).map_err(at)?;
                                Some(s)
                            }
                        },
                    ));
                }
                "torrent" => {
                    if torrent.is_some() {
                        return Err(at("a second torrent line".into()));
                    }
                    let t = TorrentSpec {
                        file: rec.s("file").map_err(at)?,
                        size: rec.num("size").map_err(at)?,
                        piece_kib: rec.num("piece_kib").map_err(at)?,
                        path: rec.s("path").map_err(at)?,
                    };
                    if t.size == 0 || t.piece_kib == 0 {
                        return Err(at("torrent: size and piece_kib must be > 0".into()));
                    }
                    check_name("torrent file", &t.file).map_err(at)?;
                    torrent = Some(t);
                }
                "tracker" => {
                    if tracker.is_some() {
                        return Err(at("a second tracker line".into()));
                    }
                    let k = Tracker {
                        host: rec.s("host").map_err(at)?,
                        addr: rec.num("addr").map_err(at)?,
                        port: rec.num("port").map_err(at)?,
                        interval: rec.num("interval").map_err(at)?,
                        min_interval: rec.num("min_interval").map_err(at)?,
                        max_numwant: rec.num("max_numwant").map_err(at)?,
                    };
                    if k.port == 0 || k.interval == 0 {
                        return Err(at("tracker: port and interval must be > 0".into()));
                    }
                    tracker = Some(k);
                }
                "run" => {
                    let r = Run {
                        name: rec.s("name").map_err(at)?,
                        group: rec.s("group").map_err(at)?,
                        variant: rec.s("variant").map_err(at)?,
                        rep: rec.num("rep").map_err(at)?,
                        seed: rec.num("seed").map_err(at)?,
                        cap: rec.nonneg("cap").map_err(at)?,
                        duration: rec.nonneg("duration").map_err(at)?,
                        tracker_args: rec.list("tracker_args").map_err(at)?,
                        peers: Vec::new(),
                    };
                    check_name("run name", &r.name).map_err(at)?;
                    if runs.iter().any(|q| q.name == r.name) {
                        return Err(at(format!("run: duplicate run name '{}'", r.name)));
                    }
                    runs.push(r);
                }
                _ => {
                    let run_name = rec.s("run").map_err(at)?;
                    let p = Peer {
                        id: rec.s("id").map_err(at)?,
                        host: rec.s("host").map_err(at)?,
                        addr: rec.num("addr").map_err(at)?,
                        port: rec.num("port").map_err(at)?,
                        role: Role::parse(rec.words["role"])
                            .map_err(|e| at(format!("peer: {}", e)))?,
                        kind: Kind::parse(rec.words["strategy"])
                            .map_err(|e| at(format!("peer: {}", e)))?,
                        flags: rec.list("flags").map_err(at)?,
                        up: rec.nonneg("up").map_err(at)?,
                        down: rec.nonneg("down").map_err(at)?,
                        start: rec.nonneg("start").map_err(at)?,
                        focus: rec.bool("focus").map_err(at)?,
                        args: rec.list("args").map_err(at)?,
                        client: match rec.words.get("client") {
                            Some(_) => rec.s("client").map_err(at)?,
                            None => "tyrant".into(),
                        },
                    };
                    check_name("peer id", &p.id).map_err(at)?;
                    let run = runs
                        .iter_mut()
                        .find(|r| r.name == run_name)
                        .ok_or_else(|| at(format!("peer {}: no run '{}' above", p.id, run_name)))?;
                    check_peer(&p, run, tracker.as_ref()).map_err(at)?;
                    run.peers.push(p);
                }
            }
        }
        let at_end = |e: &str| format!("manifest line {}: {}", last, e);
        let (name, preset, seed, time_scale, reps, dist, statistic) =
            head.ok_or_else(|| "manifest: no manifest line".to_string())?;
        let torrent = torrent.ok_or_else(|| at_end("missing torrent line"))?;
        let tracker = tracker.ok_or_else(|| at_end("missing tracker line"))?;
        if runs.is_empty() {
            return Err(at_end("no run lines"));
        }
        for r in &runs {
            if !r.peers.iter().any(|p| p.role == Role::Seeder) {
                return Err(at_end(&format!("run {} has no seeder", r.name)));
            }
        }
        Ok(Manifest {
            name,
            preset,
            seed,
            time_scale,
            reps,
            dist,
            statistic,
            torrent,
            tracker,
            runs,
        })
    }
}
