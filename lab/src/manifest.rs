//! The experiment manifest: the single source of truth of a planned experiment — torrent,
//! tracker, RNG seed, time scale, and for every run every peer's id, host, address, port,
//! role, strategy flags, caps, start time and exact `tyrant` argument list — as plain
//! `key=value` text (format in `FORMAT` below, for the README). The presets that fill it
//! (downpour's setups: docs/downpour.md, "Experimental setup") are in plan.rs; the text
//! encoding is in manifest/text.rs, the checks that span records (ports, ids) here.
//!
//! Design choices (documented in `FORMAT`):
//! - One manifest holds every run of an experiment, repetitions and paired variants
//!   included, fully expanded: the runner interprets nothing, it executes lines.
//! - Paired runs (`group=`) share every cap, start time, address, port and RNG seed; only
//!   strategies differ. Background caps are drawn once per repetition and reused across the
//!   cap sweep too (common random numbers: differences between points are not luck of the
//!   draw).
//! - Times and rates are nominal (S = 1). The runner divides start offsets and durations by
//!   the time scale S; the client gets `--time-scale S` and scales its own clocks and buckets,
//!   so policies that depend on the nominal cap (mainline's slot rule) see the same number.

use std::net::Ipv4Addr;

mod text;

/// Format version written on the `manifest` line.
pub const VERSION: u32 = 1;

/// The text format, for README.md and the top of every written manifest.
pub const FORMAT: &str = "\
# tyrant-lab manifest v1: one record per line, words key=value (values never contain
# spaces; in strings and lists `%`, `,` and whitespace are %-escaped as %25 %2C %20...);
# `#` starts a comment line. Lists are comma-separated; `-` is the empty list.
# All times (s) and rates (KiB/s) are nominal, i.e. at time scale 1: the runner divides
# start/duration by time_scale and every tyrant process gets `--time-scale S` (if S != 1).
# Paths in args are relative to the run's output directory (the runner's cwd).
#
# manifest version=1 name=NAME preset=PRESET seed=U64 time_scale=S reps=R dist=SPEC
#          statistic=median|mean|geomean   (the report's headline; absent: median, not fixed)
# torrent file=NAME size=BYTES piece_kib=K path=FILE.torrent
#   the runner writes seed/NAME (SIZE bytes derived from seed) and makes PATH with
#   `tyrant make seed/NAME --announce http://ADDR:PORT/announce --piece-size K -o PATH`
# tracker host=HOST addr=IPV4 port=P interval=S min_interval=S max_numwant=N
# run name=RUN group=G variant=V rep=I seed=U64 cap=KiB duration=S tracker_args=LIST
#   runs with the same group are paired: identical but for the strategies; variant is
#   FOCUS-in-BACKGROUND (the focus peer's strategy among the others'), or thieves-in-vanilla
# peer run=RUN id=ID host=HOST addr=IPV4 port=P role=seeder|leecher|loop
#      strategy=vanilla|tyrant|propshare|rebel|sybil|thief flags=LIST up=KiB down=KiB
#      start=S focus=true|false args=LIST [client=NAME]
#   role loop: closed-loop leecher (downpour): on finishing it stops, its data is deleted and
#   it rejoins 1 s later as a new empty peer; leecher: downloads once, then seeds until the
#   run ends. A `--sybil N` peer listens on ports P..P+N-1. down=0 means uncapped.
#   focus marks the measured peer(s). args is the exact argument list after `tyrant`.
#   client (absent = tyrant) names a real client playing the peer instead (realswarm.py).
";

/// What a peer does over a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Seeder,
    Leecher,
    /// Closed-loop leecher: finish, delete the data, rejoin (downpour's `peer_run.sh`).
    Loop,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Seeder => "seeder",
            Role::Leecher => "leecher",
            Role::Loop => "loop",
        }
    }
    fn parse(s: &str) -> Result<Role, String> {
        match s {
            "seeder" => Ok(Role::Seeder),
            "leecher" => Ok(Role::Leecher),
            "loop" => Ok(Role::Loop),
            _ => Err(format!("role '{}' is not seeder, leecher or loop", s)),
        }
    }
}

/// The kind of peer a `peer` line describes: which of the client's strategies (README
/// "Strategies") it runs; its `flags` carry the parameters. Written as the line's
/// `strategy=` word, the name the manifest format has always used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Vanilla,
    Tyrant,
    PropShare,
    Rebel,
    Sybil,
    Thief,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vanilla => "vanilla",
            Kind::Tyrant => "tyrant",
            Kind::PropShare => "propshare",
            Kind::Rebel => "rebel",
            Kind::Sybil => "sybil",
            Kind::Thief => "thief",
        }
    }
    fn parse(s: &str) -> Result<Kind, String> {
        Ok(match s {
            "vanilla" => Kind::Vanilla,
            "tyrant" => Kind::Tyrant,
            "propshare" => Kind::PropShare,
            "rebel" => Kind::Rebel,
            "sybil" => Kind::Sybil,
            "thief" => Kind::Thief,
            _ => return Err(format!("unknown strategy '{}'", s)),
        })
    }
}

/// The generated payload and its torrent.
#[derive(Clone, Debug, PartialEq)]
pub struct TorrentSpec {
    /// Payload file name under `seed/`.
    pub file: String,
    pub size: u64,
    pub piece_kib: u32,
    /// Where the runner writes the .torrent (relative to the output directory).
    pub path: String,
}

/// Tracker settings (our `tyrant tracker`; downpour ran chihaya with these values).
#[derive(Clone, Debug, PartialEq)]
pub struct Tracker {
    pub host: String,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub interval: u32,
    pub min_interval: u32,
    pub max_numwant: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub id: String,
    /// Machine (or network namespace) that runs the process; `local` on one machine.
    pub host: String,
    pub addr: Ipv4Addr,
    pub port: u16,
    pub role: Role,
    pub kind: Kind,
    pub flags: Vec<String>,
    pub up: f64,
    pub down: f64,
    pub start: f64,
    pub focus: bool,
    pub args: Vec<String>,
    /// The program that plays this peer: `tyrant` (what `tyrant-lab run` starts), or a real
    /// client (aria2, transmission, rtorrent, libtorrent) that reproduction/realswarm.py
    /// starts with the same address, cap and start time; `args` is then tyrant's equivalent.
    pub client: String,
}

impl Peer {
    /// Ports the process listens on: BitSybil's N identities take P..P+N−1 (the client's
    /// `--sybil N`).
    pub fn port_span(&self) -> u16 {
        self.flags
            .iter()
            .position(|f| f == "--sybil")
            .and_then(|i| self.flags.get(i + 1))
            .and_then(|n| n.parse::<u16>().ok())
            .unwrap_or(1)
            .max(1)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    pub name: String,
    pub group: String,
    pub variant: String,
    pub rep: usize,
    pub seed: u64,
    /// The focus peer's upload cap (the point of the cap sweep).
    pub cap: f64,
    /// Nominal seconds the run lasts (closed-loop runs have no natural end).
    pub duration: f64,
    pub tracker_args: Vec<String>,
    pub peers: Vec<Peer>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub preset: String,
    pub seed: u64,
    pub time_scale: f64,
    pub reps: usize,
    /// The capacity distribution's spec (informative: the caps are on the peer lines).
    pub dist: String,
    /// The headline statistic of every comparison, fixed before the runs (`median`, `mean`,
    /// `geomean`: study/stats.rs); None in manifests written before it existed (the report
    /// then uses `median` and says that nothing fixed it).
    pub statistic: Option<String>,
    pub torrent: TorrentSpec,
    pub tracker: Tracker,
    pub runs: Vec<Run>,
}

impl Manifest {
    /// The announce URL baked into the torrent.
    pub fn announce_url(&self) -> String {
        format!("http://{}:{}/announce", self.tracker.addr, self.tracker.port)
    }
}

/// Ids and run names become file names (`runs/RUN/stats/ID.txt`): keep them to a safe set.
pub(crate) fn check_name(what: &str, s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{} '{}' must be non-empty letters, digits, '.', '_' or '-'", what, s))
    }
}

/// A peer against the peers already in its run: unique id, disjoint port ranges below the
/// ephemeral range (Linux's 32768–60999: docs/testbeds.md, "Many peers on one machine"),
/// clear of the tracker's port, flags in its args.
fn check_peer(p: &Peer, run: &Run, tracker: Option<&Tracker>) -> Result<(), String> {
    if run.peers.iter().any(|q| q.id == p.id) {
        return Err(format!("peer: duplicate id '{}' in run {}", p.id, run.name));
    }
    let lo = p.port as u32;
    let hi = lo + p.port_span() as u32 - 1;
    if lo == 0 || hi >= 32768 {
        return Err(format!(
            "peer {}: ports {}..={} must lie in 1..=32767 (above is the ephemeral range)",
            p.id, lo, hi
        ));
    }
    if let Some(q) = run.peers.iter().find(|q| {
        let (a, b) = (q.port as u32, q.port as u32 + q.port_span() as u32 - 1);
        a <= hi && lo <= b
    }) {
        return Err(format!(
            "peer {}: duplicate port {} (peer {} has {}) in run {}",
            p.id, p.port, q.id, q.port, run.name
        ));
    }
    if let Some(t) = tracker {
        if (lo..=hi).contains(&(t.port as u32)) {
            return Err(format!("peer {}: port {} is the tracker's", p.id, t.port));
        }
    }
    if !p.flags.is_empty() && !p.args.windows(p.flags.len()).any(|w| w == p.flags.as_slice()) {
        return Err(format!("peer {}: args do not contain its flags", p.id));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
