//! Tests of the strategy layer: flags in, one `Strategy` out, and the hooks the chooser
//! asks. The choking rules themselves are table-tested beside each choker.

use super::*;
use crate::pieces::Geometry;

fn flags(args: &[&str], up: f64) -> Result<Flags, String> {
    let mut a = pico_args::Arguments::from_vec(args.iter().map(Into::into).collect());
    Flags::parse(&mut a, up)
}

fn view(id: u64, up_rate: f64) -> PeerView {
    PeerView { id, interested: true, choked: true, up_rate, ..PeerView::default() }
}

fn picker(pieces: u32) -> Picker {
    let geo = Geometry {
        piece_length: 16384,
        total_length: u64::from(pieces) * 16384,
        num_pieces: pieces,
    };
    Picker::new(geo, Order::RarestFirst)
}

#[test]
fn flags_are_checked_in_one_place() {
    let ok = |a: &[&str]| flags(a, 20.0).unwrap();
    assert_eq!(ok(&[]).choker, ChokerFlag::Vanilla);
    let tyrant = |u0, excess, rank, shape| ChokerFlag::Tyrant { u0, excess, rank, shape };
    assert_eq!(ok(&["--tyrant"]).choker, tyrant(3072.0, Excess::Give, Rank::Ratio, true));
    assert_eq!(
        ok(&["--tyrant", "--tyrant-u0", "14", "--tyrant-excess", "keep"]).choker,
        tyrant(14336.0, Excess::Keep, Rank::Ratio, true)
    );
    assert_eq!(
        ok(&["--tyrant", "--tyrant-rank", "rate", "--tyrant-shape", "off"]).choker,
        tyrant(3072.0, Excess::Give, Rank::Rate, false)
    );
    assert_eq!(
        ok(&["--tyrant-rank", "random", "--tyrant"]).choker,
        tyrant(3072.0, Excess::Give, Rank::Random, true)
    );
    assert_eq!(ok(&["--min-peers", "60"]).min_peers, 60);
    assert_eq!(ok(&[]).min_peers, 20);
    assert_eq!(ok(&["--propshare"]).choker, ChokerFlag::PropShare { optimistic_share: 0.2 });
    assert_eq!(ok(&["--rebel", "3", "--reveal", "2"]).rebel, 3);
    assert_eq!(ok(&["--sybil", "4"]).sybil, 4);
    // (flags, --up, the start of the one-line error)
    let bad: &[(&[&str], f64, &str)] = &[
        (&["--tyrant", "--propshare"], 20.0, "--tyrant and --propshare exclude"),
        (&["--tyrant"], 0.0, "--tyrant needs --up"),
        (&["--propshare"], 0.0, "--propshare needs --up"),
        (&["--tyrant-u0", "9"], 20.0, "--tyrant-u0, --tyrant-excess"),
        (&["--propshare", "--tyrant-excess", "keep"], 20.0, "--tyrant-u0, --tyrant-excess"),
        (
            &["--tyrant", "--tyrant-rank", "best"],
            20.0,
            "--tyrant-rank must be one of ratio, rate, random",
        ),
        (&["--tyrant", "--tyrant-shape", "yes"], 20.0, "--tyrant-shape must be one of on, off"),
        (&["--tyrant", "--tyrant-u0", "0"], 20.0, "--tyrant-u0 must be > 0"),
        (&["--optimistic-share", "0.1"], 20.0, "--optimistic-share only applies"),
        (&["--propshare", "--optimistic-share", "1"], 20.0, "--optimistic-share must be"),
        (&["--reveal", "0"], 20.0, "--reveal must be at least 1"),
        (&["--sybil", "0"], 20.0, "--sybil must be at least 1"),
        (&["--thief", "--rebel", "1"], 20.0, "--thief never uploads"),
        (&["--thief", "--tyrant"], 20.0, "--thief never uploads"),
    ];
    for (args, up, want) in bad {
        let e = flags(args, *up).unwrap_err();
        assert!(e.starts_with(want), "{:?}: {}", args, e);
    }
}

#[test]
fn stats_words_name_every_strategy() {
    let none =
        "tyrant_excess=- tyrant_rank=- tyrant_shape=- tyrant_u0=- min_peers=20 tyrant_memory=false";
    let table: &[(&[&str], String)] = &[
        (&[], format!("strategy=vanilla rebel=0 thief=false reveal=- share=- {}", none)),
        (
            &["--tyrant"],
            "strategy=tyrant rebel=0 thief=false reveal=- share=- tyrant_excess=give tyrant_rank=ratio tyrant_shape=on tyrant_u0=3 min_peers=20 tyrant_memory=false".into(),
        ),
        (
            &["--tyrant", "--tyrant-excess", "keep", "--tyrant-rank", "random", "--tyrant-shape", "off"],
            "strategy=tyrant rebel=0 thief=false reveal=- share=- tyrant_excess=keep tyrant_rank=random tyrant_shape=off tyrant_u0=3 min_peers=20 tyrant_memory=false".into(),
        ),
        (
            &["--propshare", "--reveal", "3", "--min-peers", "50"],
            "strategy=propshare rebel=0 thief=false reveal=3 share=- tyrant_excess=- tyrant_rank=- tyrant_shape=- tyrant_u0=- min_peers=50 tyrant_memory=false".into(),
        ),
        (
            &["--tyrant", "--tyrant-memory", "m.txt"],
            "strategy=tyrant rebel=0 thief=false reveal=- share=- tyrant_excess=give tyrant_rank=ratio tyrant_shape=on tyrant_u0=3 min_peers=20 tyrant_memory=true".into(),
        ),
        (&["--rebel", "2"], format!("strategy=vanilla rebel=2 thief=false reveal=- share=- {}", none)),
        (&["--thief"], format!("strategy=vanilla rebel=0 thief=true reveal=- share=- {}", none)),
    ];
    for (args, want) in table {
        let s = flags(args, 20.0).unwrap().build(&Slots::Fixed(4), 20.0, 1.0, None);
        assert_eq!(&s.stats_words(), want, "{:?}", args);
    }
    let s = flags(&[], 20.0).unwrap().build(&Slots::Fixed(4), 10.0, 1.0, Some((3, 7)));
    assert!(s.stats_words().contains(" share=3..7 "));
    assert_eq!(s.share(), Some((3, 7)));
}

/// Once complete, BitTyrant and PropShare hand the round to the vanilla seed choker with
/// the client's slots: no caps, ranked by our upload rate, one optimistic unchoke.
#[test]
fn tyrant_and_propshare_seed_like_vanilla() {
    let peers: Vec<PeerView> = (1..=10).map(|i| view(i, i as f64)).collect();
    for args in [&["--tyrant"][..], &["--propshare"][..]] {
        for (slots, n) in [(Slots::Auto { up_kib: 50.0 }, 5), (Slots::Fixed(3), 3)] {
            let mut s = flags(args, 50.0).unwrap().build(&slots, 50.0, 1.0, None);
            let d = s.rechoke(&peers, true, 10.0, &mut Rng::new(2));
            let on: Vec<u64> = d.iter().filter(|x| x.unchoke).map(|x| x.id).collect();
            assert_eq!(on.len(), n, "{:?} {:?}", args, slots);
            // the best uploaded-to peers hold the regular slots
            for id in (11 - (n as u64 - 1))..=10 {
                assert!(on.contains(&id), "{:?}: {} not unchoked", args, id);
            }
            assert!(d.iter().all(|x| x.cap.is_none() && x.u_p.is_none()));
            assert_eq!(d.iter().filter(|x| x.optimistic).count(), 1);
            // fast unchoke while seeding follows the vanilla rule: no cap
            let f = s.fast_unchoke(&peers, 1, true).unwrap();
            assert!(f.unchoke && f.cap.is_none());
        }
    }
}

/// While leeching, BitTyrant caps every unchoked peer at its u_p, PropShare weights them
/// by their shares, and vanilla does neither.
#[test]
fn leeching_caps_and_weights_only_where_the_paper_shapes_rates() {
    let mut peers: Vec<PeerView> = (1..=6).map(|i| view(i, 0.0)).collect();
    for p in &mut peers {
        p.interesting = true;
    }
    peers[0].down_round = 100_000;
    let table = [
        (&[][..], false, false),
        (&["--tyrant"][..], true, false),
        (&["--propshare"][..], false, true),
    ];
    for (args, capped, weighted) in table {
        let mut s =
            flags(args, 100.0).unwrap().build(&Slots::Auto { up_kib: 100.0 }, 100.0, 1.0, None);
        let d = s.rechoke(&peers, false, 10.0, &mut Rng::new(5));
        let on: Vec<&Decision> = d.iter().filter(|x| x.unchoke).collect();
        assert!(!on.is_empty());
        assert!(on.iter().all(|x| x.cap.is_some() == capped), "{:?}: {:?}", args, d);
        assert!(on.iter().all(|x| (x.weight != 1.0) == weighted), "{:?}: {:?}", args, d);
    }
}

#[test]
fn honest_peers_show_a_bitfield_and_every_new_piece_once() {
    let s = flags(&[], 20.0).unwrap().build(&Slots::Fixed(4), 20.0, 1.0, None);
    let mut p = picker(4);
    assert_eq!(s.bitfield(p.have_bits()), None, "nothing to show yet");
    p.set_have(1);
    assert_eq!(s.bitfield(p.have_bits()), Some(vec![false, true, false, false]));
    assert_eq!(s.haves(Some(1), &p, &[false; 4], &[false; 4]), vec![1]);
    assert!(s.haves(None, &p, &[false; 4], &[false; 4]).is_empty());
    assert_eq!(s.order(), Order::RarestFirst);
}

#[test]
fn reveal_rations_haves_and_sends_no_bitfield() {
    let s = flags(&["--reveal", "1", "--rebel", "1"], 20.0).unwrap().build(
        &Slots::Fixed(4),
        20.0,
        1.0,
        None,
    );
    let mut p = picker(4);
    p.set_have(0);
    p.set_have(2);
    assert_eq!(s.bitfield(p.have_bits()), None);
    // one piece it lacks, each HAVE twice (the rebel's copies ride along)
    let theirs = [false; 4];
    assert_eq!(s.haves(Some(2), &p, &theirs, &[false; 4]), vec![0, 0]);
    // quota full while it still lacks piece 0
    assert!(s.haves(None, &p, &theirs, &[true, false, false, false]).is_empty());
    // it fetched piece 0: the next one
    let got0 = [true, false, false, false];
    assert_eq!(s.haves(None, &p, &got0, &got0), vec![2, 2]);
}

#[test]
fn only_a_peer_short_of_peers_or_a_thief_asks_the_tracker_early() {
    let s = flags(&[], 20.0).unwrap().build(&Slots::Fixed(4), 20.0, 1.0, None);
    // (connected, untried addresses left, ask?)
    for (n, untried, want) in
        [(0, false, true), (19, false, true), (20, false, false), (3, true, false)]
    {
        assert_eq!(s.wants_peers(n, untried), want, "{} {}", n, untried);
    }
}
