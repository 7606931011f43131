//! The knobs of a plan: `PlanOptions`, its defaults (downpour's setup), the `KEY=VALUE`
//! words that set it, and the checks that keep a plan runnable. What a preset does with
//! them is in plan.rs.

use crate::capacity::Dist;
use crate::manifest::check_name;
use crate::study::Statistic;
use std::net::Ipv4Addr;

/// What `plan` needs besides the preset. `Default` gives downpour's setup (docs/downpour.md,
/// "Experimental setup"): 30 closed-loop leechers, 3 seeders at 64 + 32 + 32 KiB/s, a 2 MiB
/// file in 32 KiB pieces, the 4PL capacity fit, tracker interval 10 s, numwant 60.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Leechers per swarm (downpour: 30, 60, 300), the focus peer included.
    pub peers: usize,
    /// The focus peer's upload cap(s) in KiB/s: one group of paired runs per cap.
    pub caps: Vec<f64>,
    pub reps: usize,
    pub seed: u64,
    pub time_scale: f64,
    /// Caps of every leecher but the focus peer.
    pub dist: Dist,
    /// Seeders' upload caps (downpour: 64 + 32 + 32 KB/s; here KiB/s).
    pub seeders: Vec<f64>,
    pub size_mib: f64,
    pub piece_kib: u32,
    /// Nominal seconds per run.
    pub duration: f64,
    /// Leechers start uniformly in [0, stagger) nominal seconds; seeders at 0.
    pub stagger: f64,
    /// Leechers are closed-loop (`loop`, downpour) or download once (`leecher`).
    pub closed_loop: bool,
    /// Every leecher's download cap (0 = uncapped, as in downpour).
    pub down: f64,
    /// `--k K` for every peer, seeders included (downpour: 0.42–0.44 or 1); None = mainline.
    pub k: Option<f64>,
    /// `--max-peers N` for every peer whose flags do not set it, thieves included: the bound
    /// on connections, hence on threads (two per connection); None = the client's default
    /// (60, BitThief 1000).
    pub max_peers: Option<usize>,
    /// `--tyrant-u0` for tyrants; None = tyrant's default (3).
    pub tyrant_u0: Option<f64>,
    /// More client flags for every BitTyrant peer: the ablation switches, e.g.
    /// `tyrant_args=--tyrant-excess,keep` or `--tyrant-rank,rate` or `--tyrant-shape,off`.
    pub tyrant_args: Vec<String>,
    /// More client flags for the focus peer(s), whatever their strategy: e.g. the peer-set
    /// size, `focus_args=--max-peers,200,--numwant,200,--min-peers,100`.
    pub focus_args: Vec<String>,
    /// BitRebel's extra HAVEs (`--rebel N`).
    pub rebel: u32,
    /// BitSybil's identities (`--sybil N`).
    pub sybil: u32,
    /// Thieves in the `thief` preset's "many" variant; 0 = max(2, peers/10).
    pub thieves: usize,
    /// `--numwant` of non-thief peers (downpour final: 60) and the tracker's max numwant.
    pub numwant: u32,
    pub tracker_interval: u32,
    pub tracker_port: u16,
    /// First peer port; slot i listens on base_port + i·span (span: sybil N or 1).
    pub base_port: u16,
    /// `--trace` for the focus peer.
    pub trace: bool,
    /// The headline statistic of the report, fixed here before any run.
    pub statistic: Statistic,
    /// Tyrants keep their u_p/d_p estimates across rejoins (`--tyrant-memory`): long-lived
    /// users; false: every rejoin is a new user, as in downpour.
    pub memory: bool,
    /// Manifest name; None = `PRESET-nPEERS-sSEED`.
    pub name: Option<String>,
    /// Emulated or real hosts (`NAME@IPV4`): slot k runs on host k mod len, at its address;
    /// the tracker on the first. Empty: everything local on 127.0.x.y.
    pub hosts: Vec<(String, Ipv4Addr)>,
}

impl Default for PlanOptions {
    fn default() -> PlanOptions {
        PlanOptions {
            peers: 30,
            caps: vec![20.0, 100.0],
            reps: 1,
            seed: 1,
            time_scale: 1.0,
            dist: Dist::default(),
            seeders: vec![64.0, 32.0, 32.0],
            size_mib: 2.0,
            piece_kib: 32,
            duration: 600.0,
            stagger: 10.0,
            closed_loop: true,
            down: 0.0,
            k: None,
            max_peers: None,
            tyrant_u0: None,
            tyrant_args: Vec::new(),
            focus_args: Vec::new(),
            rebel: 3,
            sybil: 2,
            thieves: 0,
            numwant: 60,
            tracker_interval: 10,
            tracker_port: 6969,
            base_port: 20000,
            trace: false,
            memory: false,
            statistic: Statistic::Median,
            name: None,
            hosts: Vec::new(),
        }
    }
}

fn floats(key: &str, v: &str) -> Result<Vec<f64>, String> {
    v.split(',')
        .map(|w| match w.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!("{}: '{}' is not a number > 0", key, w)),
        })
        .collect()
}

/// A list of client arguments; `-` is none.
fn words(v: &str) -> Vec<String> {
    v.split(',').filter(|w| !w.is_empty() && *w != "-").map(str::to_string).collect()
}

fn parsed<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.parse::<T>().map_err(|_| format!("{}: '{}' is not a valid value", key, v))
}

impl PlanOptions {
    /// Set one option by name, as in a plan spec (`single peers=60 caps=20,100`); the CLI
    /// can map its flags here. Keys are the field names; lists are comma-separated; `k`,
    /// `max_peers` and `tyrant_u0` take `-` for "not given".
    pub fn set(&mut self, key: &str, v: &str) -> Result<(), String> {
        match key {
            "peers" => self.peers = parsed(key, v)?,
            "caps" => self.caps = floats(key, v)?,
            "reps" => self.reps = parsed(key, v)?,
            "seed" => self.seed = parsed(key, v)?,
            "time_scale" => self.time_scale = parsed(key, v)?,
            "dist" => self.dist = Dist::parse(v)?,
            "seeders" => self.seeders = floats(key, v)?,
            "size_mib" => self.size_mib = parsed(key, v)?,
            "piece_kib" => self.piece_kib = parsed(key, v)?,
            "duration" => self.duration = parsed(key, v)?,
            "stagger" => self.stagger = parsed(key, v)?,
            "closed_loop" => self.closed_loop = parsed(key, v)?,
            "down" => self.down = parsed(key, v)?,
            "k" => self.k = if v == "-" { None } else { Some(parsed(key, v)?) },
            "max_peers" => self.max_peers = if v == "-" { None } else { Some(parsed(key, v)?) },
            "tyrant_u0" => self.tyrant_u0 = if v == "-" { None } else { Some(parsed(key, v)?) },
            "tyrant_args" => self.tyrant_args = words(v),
            "focus_args" => self.focus_args = words(v),
            "rebel" => self.rebel = parsed(key, v)?,
            "sybil" => self.sybil = parsed(key, v)?,
            "thieves" => self.thieves = parsed(key, v)?,
            "numwant" => self.numwant = parsed(key, v)?,
            "tracker_interval" => self.tracker_interval = parsed(key, v)?,
            "tracker_port" => self.tracker_port = parsed(key, v)?,
            "base_port" => self.base_port = parsed(key, v)?,
            "trace" => self.trace = parsed(key, v)?,
            "memory" => self.memory = parsed(key, v)?,
            "statistic" => self.statistic = Statistic::parse(v)?,
            "hosts" => {
                self.hosts = v
                    .split(',')
                    .map(|w| {
                        let (h, ip) = w
                            .split_once('@')
                            .ok_or_else(|| format!("hosts: '{}' is not NAME@IPV4", w))?;
                        check_name("hosts", h)?;
                        let ip = ip
                            .parse::<Ipv4Addr>()
                            .map_err(|_| format!("hosts: '{}' is not an IPv4 address", ip))?;
                        Ok((h.to_string(), ip))
                    })
                    .collect::<Result<_, String>>()?
            }
            "name" => {
                check_name("name", v)?;
                self.name = Some(v.to_string())
            }
            _ => return Err(format!("unknown plan option '{}'", key)),
        }
        Ok(())
    }

    /// Options no plan can run with (empty lists, non-positive rates, too few sybil
    /// identities), refused before anything is drawn.
    pub(super) fn check(&self) -> Result<(), String> {
        let pos = |x: f64| x.is_finite() && x > 0.0;
        if self.peers == 0 || self.reps == 0 || self.caps.is_empty() || self.seeders.is_empty() {
            return Err("plan: peers, reps, caps and seeders must be non-empty".into());
        }
        if !pos(self.time_scale) || !pos(self.size_mib) || !pos(self.duration) {
            return Err("plan: time_scale, size_mib and duration must be > 0".into());
        }
        let nonneg = |x: f64| x.is_finite() && x >= 0.0;
        if !nonneg(self.stagger) || !nonneg(self.down) {
            return Err("plan: stagger and down must be >= 0".into());
        }
        if !self.caps.iter().chain(&self.seeders).all(|&c| pos(c)) {
            return Err("plan: caps and seeder caps must be > 0 KiB/s".into());
        }
        if self.piece_kib == 0 || self.rebel == 0 || self.sybil < 2 || self.max_peers == Some(0) {
            return Err("plan: piece_kib, rebel and max_peers must be > 0, sybil >= 2".into());
        }
        if self.k.map_or(false, |k| !pos(k)) || self.tyrant_u0.map_or(false, |u| !pos(u)) {
            return Err("plan: k and tyrant_u0 must be > 0".into());
        }
        if self.tracker_interval == 0 || self.tracker_port == 0 || self.base_port == 0 {
            return Err("plan: tracker_interval, tracker_port and base_port must be > 0".into());
        }
        Ok(())
    }
}
