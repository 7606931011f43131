//! tyrant as a library: the modules behind the `tyrant` binary, public so integration
//! tests, benchmarks and the experiment lab (the `tyrant-lab` crate in lab/) can drive them
//! directly.
//!
//! Map to the BitTyrant paper and the BEPs: `bencode`/`metainfo` (BEP 3 metainfo),
//! `tracker`/`trackerd` (BEP 3 + 23 announces), `peer` (BEP 3 wire codec), `conn` (one
//! reader + one writer thread per connection), `torrent` (the session: threads, sockets,
//! files), `chooser` (the state machine that owns all torrent state), `picker` (piece
//! selection, Cohen 2003 §2.3), `pieces` (assembly, hashing, the smart ban), `choke`
//! (the vanilla choker and what every choker shares), `strategy` (BitTyrant, PropShare,
//! BitRebel, BitSybil, BitThief, piece revelation), `meter` (rates and token buckets),
//! `stats` (stats and trace files), `storage`, `sha1`, `rng`, `bell` (channels whose
//! receiver parks at once).

/// The git commit this build came from, `-dirty` when the tree had uncommitted changes
/// (build.rs): recorded in stats files, manifests and results, printed by `--version`.
pub const BUILD: &str = env!("TYRANT_BUILD");

pub mod bell;
pub mod bencode;
pub mod choke;
pub mod chooser;
pub mod conn;
pub mod http;
pub mod metainfo;
pub mod meter;
pub mod pacer;
pub mod peer;
pub mod picker;
pub mod pieces;
pub mod rng;
pub mod sha1;
pub mod stats;
pub mod storage;
pub mod strategy;
pub mod torrent;
pub mod tracker;
pub mod trackerd;
