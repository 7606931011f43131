//! The strategy layer: everything that makes one client of the study behave differently
//! from another, as one value. A `Strategy` is a choker (who gets our upload, at what rate)
//! plus a few named wire hooks: what bitfield and HAVEs we show, how we pick pieces, how
//! hard we look for peers, which share of the torrent we fetch. The chooser asks it; no
//! strategy flag is tested anywhere else.
//!
//! The command-line flags are read here (`Flags::parse`) and turned into a `Strategy`
//! (`Flags::build`). Each strategy reads in its own file beside its paper section:
//! vanilla in `choke.rs`; `tyrant.rs`, `propshare.rs`, `rebel.rs`, `sybil.rs`, `thief.rs`
//! and `reveal.rs` here. docs/strategies.md describes them all.

use crate::choke::{Decision, PeerView, Slots, Vanilla};
use crate::picker::{Order, Picker};
use crate::rng::Rng;

pub mod propshare;
pub mod rebel;
pub mod reveal;
pub mod sybil;
pub mod thief;
pub mod tyrant;

use self::propshare::PropShare;
use self::tyrant::{Excess, Rank, Tyrant, TyrantParams};

/// Fewer connections than this make a leecher ask the tracker for more (mainline 4.x
/// `min_peers` is 20); `--min-peers` changes it. With `--max-peers` and `--numwant` it sets
/// the peer set of any strategy, for the ablation Carra, Neglia and Michiardi ("Unveiling
/// BitTyrant", P2P 2008) ask for: most of a lone tyrant's gain came from more peers.
const MIN_PEERS: usize = 20;

/// Which choker runs while we download.
#[derive(Clone, Debug, PartialEq)]
pub enum ChokerFlag {
    /// Mainline's tit-for-tat (`choke.rs`).
    Vanilla,
    /// BitTyrant: the market rate while 2 or fewer peers are unchoked (bytes/s, nominal)
    /// and its switches.
    Tyrant { u0: f64, excess: Excess, rank: Rank, shape: bool },
    /// PropShare with this optimistic fraction of capacity.
    PropShare { optimistic_share: f64 },
}

/// The strategy flags of one process, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Flags {
    pub choker: ChokerFlag,
    pub rebel: u32,
    pub thief: bool,
    pub reveal: Option<u32>,
    /// BitSybil: identities in this process (1 = an ordinary client).
    pub sybil: u32,
    /// Ask the tracker early while fewer peers than this are connected (`--min-peers`).
    pub min_peers: usize,
    /// BitTyrant as a long-lived user: its estimates are kept in this file across runs.
    pub memory: Option<std::path::PathBuf>,
}

type Args = pico_args::Arguments;

/// An option value parsed with `FromStr`, with the option named in the error (main.rs
/// reads its own options with it too).
pub fn opt<T: std::str::FromStr>(args: &mut Args, name: &'static str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    args.opt_value_from_str(name).map_err(|e| format!("{}: {}", name, e))
}

/// The words of `--tyrant-excess`, `--tyrant-rank` and `--tyrant-shape`, as read by `pick`
/// and written back by `word` in the stats file.
const EXCESS: &[(&str, Excess)] = &[("give", Excess::Give), ("keep", Excess::Keep)];
const RANK: &[(&str, Rank)] =
    &[("ratio", Rank::Ratio), ("rate", Rank::Rate), ("random", Rank::Random)];
const SHAPE: &[(&str, bool)] = &[("on", true), ("off", false)];

/// The word `words` gives `value`.
fn word<T: PartialEq>(words: &[(&'static str, T)], value: T) -> &'static str {
    words.iter().find(|(_, v)| *v == value).map_or("-", |(k, _)| k)
}

/// One of `words` for `name`, as the enum value beside it.
fn pick<T: Copy>(
    args: &mut Args,
    name: &'static str,
    words: &[(&str, T)],
) -> Result<Option<T>, String> {
    let all: Vec<&str> = words.iter().map(|(k, _)| *k).collect();
    let value = |w: String| words.iter().find(|(k, _)| *k == w).map(|(_, v)| *v);
    let bad = || format!("{} must be one of {}", name, all.join(", "));
    opt::<String>(args, name)?.map(|w| value(w).ok_or_else(bad)).transpose()
}

impl Flags {
    /// Read `--tyrant [--tyrant-u0 K] [--tyrant-excess give|keep] [--tyrant-rank
    /// ratio|rate|random] [--tyrant-shape on|off] | --propshare [--optimistic-share F]`,
    /// `--rebel N`, `--thief`, `--reveal N`, `--sybil N` and `--min-peers N`; `up` is `--up`
    /// in KiB/s.
    pub fn parse(args: &mut Args, up: f64) -> Result<Flags, String> {
        let tyrant = args.contains("--tyrant");
        let propshare = args.contains("--propshare");
        let u0: Option<f64> = opt(args, "--tyrant-u0")?;
        let excess = pick(args, "--tyrant-excess", EXCESS)?;
        let rank = pick(args, "--tyrant-rank", RANK)?;
        let shape = pick(args, "--tyrant-shape", SHAPE)?;
        let share: Option<f64> = opt(args, "--optimistic-share")?;
        let f = Flags {
            choker: match (tyrant, propshare) {
                (true, true) => return Err("--tyrant and --propshare exclude each other".into()),
                (true, false) => ChokerFlag::Tyrant {
                    u0: u0.unwrap_or(3.0) * 1024.0,
                    excess: excess.unwrap_or(Excess::Give),
                    rank: rank.unwrap_or(Rank::Ratio),
                    shape: shape.unwrap_or(true),
                },
                (false, true) => ChokerFlag::PropShare {
                    optimistic_share: share.unwrap_or(propshare::OPTIMISTIC_SHARE),
                },
                (false, false) => ChokerFlag::Vanilla,
            },
            rebel: opt(args, "--rebel")?.unwrap_or(0),
            thief: args.contains("--thief"),
            reveal: opt(args, "--reveal")?,
            sybil: opt(args, "--sybil")?.unwrap_or(1),
            min_peers: opt(args, "--min-peers")?.unwrap_or(MIN_PEERS),
            memory: opt(args, "--tyrant-memory")?,
        };
        if (tyrant || propshare) && up <= 0.0 {
            let name = if tyrant { "tyrant" } else { "propshare" };
            return Err(format!("--{name} needs --up: it divides the upload capacity among peers"));
        }
        let tyrant_only = u0.is_some() || excess.is_some() || rank.is_some() || shape.is_some();
        if (tyrant_only || f.memory.is_some()) && !tyrant {
            return Err("--tyrant-u0, --tyrant-excess, --tyrant-rank, --tyrant-shape and --tyrant-memory only apply with --tyrant".into());
        }
        if share.is_some() && !propshare {
            return Err("--optimistic-share only applies with --propshare".into());
        }
        // The defaults are valid, so only a value given on the command line can be wrong.
        if u0.map_or(false, |k| !(k > 0.0 && (k * 1024.0).is_finite())) {
            return Err("--tyrant-u0 must be > 0 (KiB/s)".into());
        }
        if share.map_or(false, |s| !(0.0..1.0).contains(&s)) {
            return Err("--optimistic-share must be in [0, 1)".into());
        }
        if f.reveal == Some(0) {
            return Err("--reveal must be at least 1 (0 would never show a piece)".into());
        }
        if f.sybil == 0 {
            return Err("--sybil must be at least 1".into());
        }
        let others = f.choker != ChokerFlag::Vanilla || f.rebel > 0 || f.reveal.is_some();
        if f.thief && others {
            return Err("--thief never uploads or announces: it excludes other strategies".into());
        }
        Ok(f)
    }

    /// Default (`--max-peers`, `--numwant`): BitThief wants as large a view as it can get.
    pub fn peer_set(&self) -> (usize, u32) {
        if self.thief {
            (thief::MAX_PEERS, thief::NUMWANT)
        } else {
            (60, 50)
        }
    }

    /// The strategy of one client. `up_kib` is its nominal cap (a BitSybil identity's
    /// share of it); under `--time-scale S` every rate the choker sees and gives is S times
    /// nominal, so capacity, u0 and the u_p floor are scaled here, while the slot rules stay
    /// nominal (`slots` was built from the nominal cap).
    pub fn build(
        &self,
        slots: &Slots,
        up_kib: f64,
        scale: f64,
        share: Option<(u32, u32)>,
    ) -> Strategy {
        let capacity = up_kib * 1024.0 * scale;
        let vanilla = Vanilla::new(slots.clone());
        let d = TyrantParams::default();
        let choker = match self.choker {
            ChokerFlag::Vanilla => Choker::Vanilla(vanilla),
            ChokerFlag::Tyrant { u0, excess, rank, shape } => Choker::Tyrant(
                Tyrant::new(TyrantParams {
                    capacity,
                    market_default: u0 * scale,
                    floor: d.floor * scale,
                    patience: d.patience / scale,
                    scale,
                    excess,
                    rank,
                    shape,
                    ..d
                }),
                vanilla,
            ),
            ChokerFlag::PropShare { optimistic_share } => {
                Choker::PropShare(PropShare::new(capacity, optimistic_share), vanilla)
            }
        };
        let mut s = Strategy {
            flags: self.clone(),
            choker,
            show: Show::All,
            have_copies: 1,
            order: Order::RarestFirst,
            greedy_announce: false,
            share,
        };
        rebel::apply(&mut s, self.rebel);
        if let Some(n) = self.reveal {
            reveal::apply(&mut s, n);
        }
        if self.thief {
            thief::apply(&mut s);
        }
        s
    }
}

/// The choker behind a strategy. BitTyrant and PropShare decide only while we download;
/// once we seed they hand the round to the vanilla seed choker kept beside them.
pub enum Choker {
    Vanilla(Vanilla),
    Tyrant(Tyrant, Vanilla),
    PropShare(PropShare, Vanilla),
    /// Never unchokes anyone (BitThief).
    Never,
}

/// Which of our pieces a neighbour gets to see.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Show {
    /// A bitfield, then a HAVE for every piece we verify.
    All,
    /// Nothing at all: no bitfield, no HAVE.
    Nothing,
    /// At most this many pieces it lacks at any time (`--reveal`).
    Ration(u32),
}

/// One client's strategy.
pub struct Strategy {
    flags: Flags,
    choker: Choker,
    show: Show,
    /// Every HAVE goes out this many times (BitRebel: 1 + N).
    have_copies: u32,
    order: Order,
    /// Ask the tracker for peers as often as its min interval allows.
    greedy_announce: bool,
    share: Option<(u32, u32)>,
}

impl Strategy {
    /// One round: a decision for every peer in `peers`. `round_secs` is the real length of
    /// the round that ended, to turn `*_round` byte counts into rates; `seeding`: we have
    /// every piece we want.
    pub fn rechoke(
        &mut self,
        peers: &[PeerView],
        seeding: bool,
        round_secs: f64,
        rng: &mut Rng,
    ) -> Vec<Decision> {
        if let Some(c) = self.vanilla(seeding) {
            return c.rechoke(peers, seeding, rng);
        }
        match &mut self.choker {
            Choker::Tyrant(c, _) => c.rechoke(peers, rng),
            Choker::PropShare(c, _) => c.rechoke(peers, round_secs, rng),
            _ => peers.iter().map(|v| Decision::choke(v.id)).collect(),
        }
    }

    /// The vanilla choker when it is the one deciding: always for vanilla, and for
    /// BitTyrant and PropShare once we seed.
    fn vanilla(&mut self, seeding: bool) -> Option<&mut Vanilla> {
        match &mut self.choker {
            Choker::Vanilla(c) => Some(c),
            Choker::Tyrant(_, c) | Choker::PropShare(_, c) if seeding => Some(c),
            _ => None,
        }
    }

    /// A peer just became interested between rounds: the decision to apply now, if the
    /// choker has room for it (vanilla: a free regular slot, rain's FastUnchoke; BitTyrant:
    /// its u_p still fits; PropShare: the optimistic slot is empty).
    pub fn fast_unchoke(&mut self, peers: &[PeerView], id: u64, seeding: bool) -> Option<Decision> {
        if let Some(c) = self.vanilla(seeding) {
            return c.fast_unchoke(peers, id);
        }
        match &mut self.choker {
            Choker::PropShare(c, _) => c.fast_unchoke(peers, id),
            // The released BitTyrant unchokes nobody between rounds; BitThief nobody ever.
            _ => None,
        }
    }

    /// Mid-round, after an unchoked peer left or changed its interest: new decisions, if
    /// the choker fills freed slots at once (vanilla, as mainline rechokes in
    /// `connection_lost` and `not_interested`). BitTyrant and PropShare keep their round.
    pub fn refill(
        &mut self,
        peers: &[PeerView],
        seeding: bool,
        rng: &mut Rng,
    ) -> Option<Vec<Decision>> {
        self.vanilla(seeding).map(|c| c.refill(peers, seeding, rng))
    }

    /// The bitfield to send after the handshake, if any (BEP 3 makes it optional).
    pub fn bitfield(&self, have: &[bool]) -> Option<Vec<bool>> {
        let any = have.iter().any(|&h| h);
        Some(have.to_vec()).filter(|_| any && self.show == Show::All)
    }

    /// The HAVEs to send one neighbour, in order, repeats included: for the piece we just
    /// verified (`new`), or, with `new = None`, whatever the neighbour should see now that
    /// its pieces changed. `theirs` is its bitfield, `shown` what we announced to it.
    pub fn haves(
        &self,
        new: Option<u32>,
        picker: &Picker,
        theirs: &[bool],
        shown: &[bool],
    ) -> Vec<u32> {
        let pieces: Vec<u32> = match self.show {
            Show::All => new.into_iter().collect(),
            Show::Nothing => Vec::new(),
            Show::Ration(n) => {
                let avail = |i: u32| picker.availability(i);
                reveal::to_reveal(picker.have_bits(), theirs, shown, &avail, n as usize)
            }
        };
        let copies = self.have_copies as usize;
        pieces.into_iter().flat_map(|i| std::iter::repeat(i).take(copies)).collect()
    }

    pub fn order(&self) -> Order {
        self.order
    }

    /// Should a leecher with `connected` peers ask the tracker again now? `untried`: the
    /// address book still has addresses we never dialled.
    pub fn wants_peers(&self, connected: usize, untried: bool) -> bool {
        self.greedy_announce || (connected < self.flags.min_peers && !untried)
    }

    /// A BitSybil identity's pieces, `start..end`.
    pub fn share(&self) -> Option<(u32, u32)> {
        self.share
    }

    /// The strategy's words of the stats file's `start` line.
    pub fn stats_words(&self) -> String {
        let f = &self.flags;
        let (excess, rank, shape, u0) = match f.choker {
            ChokerFlag::Tyrant { excess, rank, shape, u0 } => (
                word(EXCESS, excess),
                word(RANK, rank),
                word(SHAPE, shape),
                (u0 / 1024.0).to_string(),
            ),
            _ => ("-", "-", "-", "-".into()),
        };
        let reveal = f.reveal.map_or("-".to_string(), |n| n.to_string());
        let share = self.share.map_or("-".to_string(), |(a, b)| format!("{}..{}", a, b));
        let (name, rebel, thief, min_peers) = (self.name(), f.rebel, f.thief, f.min_peers);
        format!("strategy={name} rebel={rebel} thief={thief} reveal={reveal} share={share} tyrant_excess={excess} tyrant_rank={rank} tyrant_shape={shape} tyrant_u0={u0} min_peers={min_peers} tyrant_memory={}", f.memory.is_some())
    }

    /// Start BitTyrant's memory from a `--tyrant-memory` file's text.
    pub fn recall(&mut self, text: &str) {
        if let Choker::Tyrant(t, _) = &mut self.choker {
            t.recall(text);
        }
    }

    /// What BitTyrant's memory file gets at exit (`None`: no memory kept).
    pub fn remembered(&self) -> Option<String> {
        match &self.choker {
            Choker::Tyrant(t, _) => t.remembered(),
            _ => None,
        }
    }

    /// BitTyrant's market rate, for the trace.
    pub fn market(&self) -> Option<f64> {
        match &self.choker {
            Choker::Tyrant(t, _) => Some(t.market()),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self.flags.choker {
            ChokerFlag::Vanilla => "vanilla",
            ChokerFlag::Tyrant { .. } => "tyrant",
            ChokerFlag::PropShare { .. } => "propshare",
        }
    }
}

#[cfg(test)]
mod tests;
