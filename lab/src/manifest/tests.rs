//! Tests of the manifest text format and the presets (manifest.rs, manifest/text.rs, plan.rs).

use super::*;
use crate::plan::*;
use std::collections::HashSet;
use tyrant::rng::Rng;

/// (variant, focus strategy, background strategy, leechers running the focus strategy)
type Expect = (&'static str, Kind, Kind, usize);

fn opts() -> PlanOptions {
    PlanOptions { peers: 10, caps: vec![20.0, 300.0], reps: 2, ..PlanOptions::default() }
}

fn run<'a>(m: &'a Manifest, name: &str) -> &'a Run {
    m.runs.iter().find(|r| r.name == name).unwrap()
}

fn leechers(r: &Run) -> Vec<&Peer> {
    r.peers.iter().filter(|p| p.role != Role::Seeder).collect()
}

#[test]
fn round_trip_exact() {
    for preset in ["single", "all", "rebel", "sybil", "propshare", "thief"] {
        let m = plan(preset, &opts()).unwrap();
        let text = m.to_text();
        let back = Manifest::from_text(&text).unwrap();
        assert_eq!(back, m, "{}", preset);
        assert_eq!(back.to_text(), text, "{}", preset);
    }
    // Awkward values survive: escapes, long floats, time scale, trace, k, down caps.
    let mut m = plan(
        "single time_scale=4 trace=true k=0.44 down=1000 tyrant_u0=14 dist=normal:47.5:12.25:20",
        &opts(),
    )
    .unwrap();
    m.name = "a b,c%d".into();
    m.runs[0].peers[4].args.push("dir with space,comma".into());
    m.runs[0].peers[4].args.push("-".into());
    m.runs[0].peers[4].args.push(String::new());
    m.runs[0].peers[4].up = 0.1 + 0.2;
    m.runs[0].peers[4].start = 1.0 / 3.0;
    let text = m.to_text();
    let back = Manifest::from_text(&text).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.to_text(), text);
    assert!(text.contains("name=a%20b%2Cc%25d "));
    // The format's documentation heads every manifest and is a comment block.
    assert!(text.starts_with(FORMAT));
}

#[test]
fn text_is_plain_key_value_lines() {
    let m = plan("single", &opts()).unwrap();
    let text = m.to_text();
    let p = text.lines().find(|l| l.starts_with("peer ") && l.contains("focus=true")).unwrap();
    assert!(p.contains(" role=loop strategy=tyrant flags=--tyrant up=20 "), "{}", p);
    assert!(p.contains(" addr=127.0.0.5 "), "{}", p);
    assert!(p.contains(" args=--bind,127.0.0.5,--port,"), "{}", p);
    let s = text.lines().find(|l| l.starts_with("peer ") && l.contains(" id=s0 ")).unwrap();
    assert!(s.contains(" role=seeder strategy=vanilla flags=- up=64 "), "{}", s);
    assert!(s.contains(" args=--seed,--bind,127.0.0.2,"), "{}", s);
    for l in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        for w in l.split_whitespace().skip(1) {
            assert!(w.contains('='), "{}", l);
        }
    }
}

/// A small valid manifest to break line by line.
const GOOD: &str = "\
manifest version=1 name=t preset=hand seed=7 time_scale=1 reps=1 dist=4pl
torrent file=payload.bin size=1048576 piece_kib=32 path=swarm.torrent
tracker host=local addr=127.0.0.1 port=6969 interval=10 min_interval=10 max_numwant=60
run name=r group=g variant=v rep=0 seed=7 cap=20 duration=60 tracker_args=tracker,--port,6969
peer run=r id=s0 host=local addr=127.0.0.2 port=20000 role=seeder strategy=vanilla flags=- up=64 down=0 start=0 focus=false args=--seed,swarm.torrent
peer run=r id=p0 host=local addr=127.0.0.3 port=20001 role=loop strategy=sybil flags=--sybil,2 up=20 down=0 start=1.5 focus=true args=--sybil,2,swarm.torrent
";

#[test]
fn bad_input_gives_one_line_errors() {
    let m = Manifest::from_text(GOOD).unwrap();
    assert_eq!(m.runs[0].peers.len(), 2);
    assert_eq!(m.runs[0].peers[1].port_span(), 2);
    let peer = "peer run=r id=p1 host=local addr=127.0.0.4 port=20003 role=leecher strategy=vanilla flags=- up=20 down=0 start=0 focus=false args=x";
    // (edit, expected fragment of the error)
    let table: Vec<(String, &str)> = vec![
        (GOOD.replace("dist=4pl", "dist=4pl colour=red"), "line 1: manifest: unknown key 'colour'"),
        (GOOD.replace("reps=1 ", ""), "line 1: manifest: missing reps="),
        (GOOD.replace("version=1", "version=2"), "version 2 is not supported"),
        (GOOD.replace("seed=7 time", "seed=x time"), "seed='x' is not a valid number"),
        (GOOD.replace("time_scale=1", "time_scale=0"), "time_scale must be > 0"),
        (GOOD.replace("name=t ", "name=t name=u "), "key 'name' given twice"),
        (
            GOOD.replace("torrent file", "torrent  file")
                + "torrent file=a size=1 piece_kib=1 path=b\n",
            "a second torrent line",
        ),
        (GOOD.replace("size=1048576", "size=0"), "size and piece_kib must be > 0"),
        (
            GOOD.replace("addr=127.0.0.1", "addr=localhost"),
            "addr='localhost' is not a valid number",
        ),
        (
            GOOD.lines().filter(|l| !l.starts_with("tracker")).collect::<Vec<_>>().join("\n"),
            "missing tracker line",
        ),
        (
            GOOD.lines().skip(1).collect::<Vec<_>>().join("\n"),
            "line 1: the first record must be the manifest line",
        ),
        (String::from("# nothing\n"), "no manifest line"),
        (GOOD.replace("peer run=r id=p0", "peer run=q id=p0"), "no run 'q' above"),
        (GOOD.replace("id=p0", "id=s0"), "duplicate id 's0'"),
        (GOOD.replace("id=p0", "id=../x"), "peer id '../x' must be"),
        (
            GOOD.to_string() + &peer.replace("port=20003", "port=20002"),
            "duplicate port 20002 (peer p0 has 20001)",
        ),
        (GOOD.to_string() + &peer.replace("port=20003", "port=20000"), "duplicate port 20000"),
        (GOOD.to_string() + &peer.replace("port=20003", "port=6969"), "port 6969 is the tracker's"),
        (GOOD.to_string() + &peer.replace("port=20003", "port=40000"), "ephemeral range"),
        (
            GOOD.to_string() + &peer.replace("role=leecher", "role=lurker"),
            "role 'lurker' is not seeder",
        ),
        (
            GOOD.to_string() + &peer.replace("strategy=vanilla", "strategy=greedy"),
            "unknown strategy 'greedy'",
        ),
        (
            GOOD.to_string() + &peer.replace("focus=false", "focus=1"),
            "focus='1' is not true or false",
        ),
        (GOOD.to_string() + &peer.replace("up=20", "up=-3"), "up=-3 must be finite and >= 0"),
        (GOOD.to_string() + &peer.replace(" args=x", ""), "line 7: peer: missing args="),
        (
            GOOD.to_string() + &peer.replace("flags=-", "flags=--thief"),
            "args do not contain its flags",
        ),
        (GOOD.to_string() + &peer.replace("args=x", "args=%zz"), "bad %-escape"),
        (GOOD.to_string() + "peer", "peer: missing run="),
        (GOOD.to_string() + "seeder id=x", "line 7: unknown record 'seeder'"),
        (GOOD.to_string() + "peer run", "'run' is not key=value"),
        (
            GOOD.to_string()
                + "run name=r group=g variant=v rep=0 seed=7 cap=20 duration=60 tracker_args=-",
            "duplicate run name 'r'",
        ),
        (
            GOOD.to_string()
                + "run name=r2 group=g variant=v rep=0 seed=7 cap=20 duration=60 tracker_args=-",
            "run r2 has no seeder",
        ),
    ];
    for (text, want) in &table {
        let e = Manifest::from_text(text).unwrap_err();
        assert!(e.contains(want), "want {:?}, got {:?}", want, e);
        assert!(!e.contains('\n'), "{:?}", e);
        assert!(e.starts_with("manifest"), "{:?}", e);
    }
}

#[test]
fn presets_have_the_right_peers() {
    let o = opts();
    // (preset, variants, strategies of leechers 0..3 per variant)
    use Kind::*;
    let table: &[(&str, &[Expect])] = &[
        (
            "single",
            &[
                ("tyrant-in-vanilla", Tyrant, Vanilla, 1),
                ("vanilla-in-vanilla", Vanilla, Vanilla, 1),
            ],
        ),
        (
            "all",
            &[("tyrant-in-tyrant", Tyrant, Tyrant, 1), ("vanilla-in-vanilla", Vanilla, Vanilla, 1)],
        ),
        (
            "rebel",
            &[
                ("rebel-in-tyrant", Rebel, Tyrant, 1),
                ("vanilla-in-tyrant", Vanilla, Tyrant, 1),
                ("rebel-in-vanilla", Rebel, Vanilla, 1),
                ("vanilla-in-vanilla", Vanilla, Vanilla, 1),
            ],
        ),
        (
            "sybil",
            &[
                ("sybil-in-vanilla", Sybil, Vanilla, 1),
                ("vanilla-in-vanilla", Vanilla, Vanilla, 1),
                ("sybil-in-propshare", Sybil, PropShare, 1),
                ("vanilla-in-propshare", Vanilla, PropShare, 1),
            ],
        ),
        (
            "propshare",
            &[
                ("propshare-in-vanilla", PropShare, Vanilla, 1),
                ("vanilla-in-vanilla", Vanilla, Vanilla, 1),
                ("propshare-in-propshare", PropShare, PropShare, 1),
                ("tyrant-in-propshare", Tyrant, PropShare, 1),
            ],
        ),
        (
            "thief",
            &[
                ("thief-in-vanilla", Thief, Vanilla, 1),
                ("vanilla-in-vanilla", Vanilla, Vanilla, 1),
                ("thieves-in-vanilla", Thief, Vanilla, 2),
            ],
        ),
    ];
    for &(preset, vars) in table {
        let m = plan(preset, &o).unwrap();
        assert_eq!(m.runs.len(), o.caps.len() * o.reps * vars.len(), "{}", preset);
        assert_eq!(m.preset, preset);
        for r in &m.runs {
            let &(_, focus, background, lead) =
                vars.iter().find(|v| v.0 == r.variant).expect("known variant");
            assert_eq!(r.name, format!("{}-{}", r.group, r.variant));
            assert_eq!(r.peers.len(), 3 + o.peers, "{}", r.name);
            let seeders: Vec<&Peer> = r.peers.iter().filter(|p| p.role == Role::Seeder).collect();
            assert_eq!(seeders.iter().map(|p| p.up).collect::<Vec<_>>(), vec![64.0, 32.0, 32.0]);
            assert!(seeders.iter().all(|p| p.kind == Vanilla && p.args[0] == "--seed"));
            let l = leechers(r);
            assert_eq!(l.len(), o.peers);
            assert!(l.iter().all(|p| p.role == Role::Loop));
            assert!(l.iter().all(|p| p.args.contains(&"--stop-after-download".to_string())));
            assert_eq!(l.iter().filter(|p| p.focus).count(), 1);
            assert!(l[0].focus && l[0].up == r.cap);
            for (i, p) in l.iter().enumerate() {
                let want = if i < lead { focus } else { background };
                assert_eq!(p.kind, want, "{} {}", r.name, p.id);
                let flag = match want {
                    Vanilla => None,
                    Tyrant => Some("--tyrant"),
                    PropShare => Some("--propshare"),
                    Rebel => Some("--rebel"),
                    Sybil => Some("--sybil"),
                    Thief => Some("--thief"),
                };
                if let Some(f) = flag {
                    assert_eq!(p.flags[0], f);
                    assert!(p.args.contains(&f.to_string()), "{:?}", p.args);
                } else {
                    assert!(p.flags.is_empty());
                }
            }
            // Distinct hosts, ports clear of each other and below the ephemeral range.
            let addrs: HashSet<Ipv4Addr> = r.peers.iter().map(|p| p.addr).collect();
            assert_eq!(addrs.len(), r.peers.len());
            assert!(!addrs.contains(&Ipv4Addr::new(127, 0, 0, 1)));
            assert!(r.peers.iter().all(|p| (p.port as u32 + p.port_span() as u32) <= 32768));
            assert_eq!(r.tracker_args[0], "tracker");
        }
    }
    // Flags carry the parameters.
    let m = plan("rebel rebel=5", &o).unwrap();
    assert_eq!(leechers(&m.runs[0])[0].flags, vec!["--rebel", "5"]);
    let m = plan("sybil sybil=3", &o).unwrap();
    let f = leechers(&m.runs[0])[0];
    assert_eq!(
        (f.flags.clone(), f.port_span(), f.up),
        (vec!["--sybil".into(), "3".into()], 3, 20.0)
    );
    let m = plan("thief thieves=4", &o).unwrap();
    let r = run(&m, "c20-r0-thieves-in-vanilla");
    assert_eq!(r.peers.iter().filter(|p| p.kind == Kind::Thief).count(), 4);
    // Thieves keep their own large view: no --numwant 60 for them.
    assert!(!leechers(r)[0].args.contains(&"--numwant".to_string()));
    assert!(leechers(r)[5].args.contains(&"--numwant".to_string()));
}

#[test]
fn single_pairs_share_everything_but_the_focus_strategy() {
    let m = plan("single", &opts()).unwrap();
    for cap in [20.0, 300.0] {
        for rep in 0..2 {
            let g = format!("c{}-r{}", cap, rep);
            let a = run(&m, &format!("{}-tyrant-in-vanilla", g));
            let b = run(&m, &format!("{}-vanilla-in-vanilla", g));
            assert_eq!(
                (a.group.as_str(), a.seed, a.cap, a.duration),
                (g.as_str(), b.seed, b.cap, b.duration)
            );
            assert_eq!(a.tracker_args, b.tracker_args);
            assert_eq!(a.peers.len(), b.peers.len());
            for (p, q) in a.peers.iter().zip(&b.peers) {
                assert_eq!(
                    (&p.id, p.addr, p.port, p.role, p.up, p.down, p.start, p.focus),
                    (&q.id, q.addr, q.port, q.role, q.up, q.down, q.start, q.focus)
                );
                if p.focus {
                    assert_eq!((p.kind, q.kind), (Kind::Tyrant, Kind::Vanilla));
                    let without: Vec<&String> =
                        p.args.iter().filter(|x| *x != "--tyrant").collect();
                    let bn = format!("runs/{}/", b.name);
                    let an = format!("runs/{}/", a.name);
                    let qa: Vec<String> = q.args.iter().map(|x| x.replace(&bn, &an)).collect();
                    assert_eq!(without, qa.iter().collect::<Vec<_>>());
                } else {
                    assert_eq!(p.kind, q.kind);
                    // Same arguments but for the run's own directory.
                    let qa: Vec<String> =
                        q.args.iter().map(|x| x.replace(&b.name, &a.name)).collect();
                    assert_eq!(p.args, qa);
                }
            }
        }
    }
    // Across the cap sweep the background swarm is the same too (common random numbers).
    let lo = run(&m, "c20-r0-tyrant-in-vanilla");
    let hi = run(&m, "c300-r0-tyrant-in-vanilla");
    let caps = |r: &Run| leechers(r).iter().skip(1).map(|p| p.up).collect::<Vec<_>>();
    assert_eq!(caps(lo), caps(hi));
    // Repetitions redraw the swarm.
    assert_ne!(caps(lo), caps(run(&m, "c20-r1-tyrant-in-vanilla")));
}

#[test]
fn caps_come_from_the_distribution_and_the_seed() {
    let o = PlanOptions { peers: 200, caps: vec![50.0], ..PlanOptions::default() };
    let caps = |m: &Manifest| leechers(&m.runs[0]).iter().skip(1).map(|p| p.up).collect::<Vec<_>>();
    let a = plan("single", &o).unwrap();
    assert_eq!(a, plan("single", &o).unwrap());
    assert_eq!(a.to_text(), plan("single seed=1", &o).unwrap().to_text());
    let b = plan("single seed=2", &o).unwrap();
    assert_ne!(caps(&a), caps(&b));
    // The background follows the 4PL: all within its domain, median near 26.9 KiB/s.
    let mut c = caps(&a);
    assert!(c.iter().all(|&x| (22.3..=10_000.0).contains(&x)));
    c.sort_by(|x, y| x.partial_cmp(y).unwrap());
    assert!((c[c.len() / 2] - 26.9).abs() < 3.0, "median {}", c[c.len() / 2]);
    // They are exactly the rounded draws of the distribution from the repetition's stream.
    let mut rep = Rng::new(Rng::new(1).next_u64());
    let want: Vec<f64> = o.dist.draw(199, &mut rep.fork()).into_iter().map(round_cap).collect();
    assert_eq!(caps(&a), want);
    // Other distributions and the time scale.
    let u = plan("single dist=uniform:40:60 time_scale=4", &o).unwrap();
    assert!(caps(&u).iter().all(|&x| (40.0..=60.0).contains(&x)));
    assert_eq!(u.time_scale, 4.0);
    let f = &leechers(&u.runs[0])[0].args;
    let i = f.iter().position(|x| x == "--time-scale").unwrap();
    assert_eq!(f[i + 1], "4");
    assert!(u.runs[0].tracker_args.ends_with(&["--time-scale".to_string(), "4".to_string()]));
    // Time scale 1 adds no flag (current binaries need not know it).
    assert!(!a.runs[0].peers.iter().any(|p| p.args.contains(&"--time-scale".to_string())));
}

#[test]
fn plan_options_and_errors() {
    let o = opts();
    for (spec, want) in [
        ("", "no preset"),
        ("bogus", "unknown preset 'bogus'"),
        ("single peers", "'peers' is not key=value"),
        ("single colour=red", "unknown plan option 'colour'"),
        ("single peers=x", "peers: 'x' is not a valid value"),
        ("single peers=0", "must be non-empty"),
        ("single caps=20,-1", "caps: '-1' is not a number > 0"),
        ("single dist=zipf", "unknown capacity distribution"),
        ("single time_scale=0", "time_scale"),
        ("single sybil=1", "sybil >= 2"),
        ("single max_peers=0", "max_peers must be > 0"),
        ("single peers=400 base_port=32500", "ephemeral range"),
        ("single tracker_port=20001", "tracker port lies among the peer ports"),
        ("thief thieves=11", "thieves=11 exceeds peers=10"),
        ("single name=a/b", "name 'a/b' must be"),
    ] {
        let e = plan(spec, &o).unwrap_err();
        assert!(e.contains(want), "{:?}: want {:?}, got {:?}", spec, want, e);
        assert!(!e.contains('\n'));
    }
    // 300 peers + 3 seeders spill past 127.0.0.251 into 127.0.1.x.
    let m = plan("all peers=300 caps=20 reps=1", &o).unwrap();
    let r = &m.runs[0];
    assert_eq!(r.peers.len(), 303);
    assert_eq!(r.peers[249].addr, Ipv4Addr::new(127, 0, 0, 251));
    assert_eq!(r.peers[250].addr, Ipv4Addr::new(127, 0, 1, 2));
    assert_eq!(r.peers[302].id, "p299");
    assert_eq!(m.name, "all-n300-s1");
    assert_eq!(m.announce_url(), "http://127.0.0.1:6969/announce");
    // Leechers that download once; k and u0 reach the args.
    let m = plan("single closed_loop=false k=1 tyrant_u0=14", &o).unwrap();
    let l = leechers(&m.runs[0]);
    assert!(
        l.iter()
            .all(|p| p.role == Role::Leecher
                && !p.args.contains(&"--stop-after-download".to_string()))
    );
    assert_eq!(l[0].flags, vec!["--tyrant", "--tyrant-u0", "14"]);
    assert!(m.runs[0].peers[0].args.windows(2).any(|w| w == ["--k", "1"]));
}

#[test]
fn switches_reach_every_tyrant_and_the_focus_peer_only() {
    let spec = "all peers=4 tyrant_args=--tyrant-excess,keep,--tyrant-shape,off \
                focus_args=--max-peers,200,--numwant,150";
    let m = plan(spec, &PlanOptions::default()).unwrap();
    let count = |p: &Peer, f: &str| p.args.iter().filter(|a| *a == f).count();
    let runs: Vec<&Run> = m.runs.iter().filter(|r| r.variant == "tyrant-in-tyrant").collect();
    let l = leechers(runs[0]);
    for p in &l {
        let want = ["--tyrant-excess", "keep", "--tyrant-shape", "off"];
        assert!(p.flags.windows(4).any(|w| w == want), "{:?}", p.flags);
        assert!(p.args.windows(4).any(|w| w == want), "{:?}", p.args);
        // One --numwant each: the focus peer's own, the others the plan's.
        assert_eq!(count(p, "--numwant"), 1, "{:?}", p.args);
        assert_eq!(count(p, "--max-peers"), usize::from(p.focus));
    }
    assert!(l[0].focus && l[0].args.windows(2).any(|w| w == ["--numwant", "150"]));
    // Vanilla peers get no tyrant switch.
    let vanilla = m.runs.iter().find(|r| r.variant == "vanilla-in-vanilla").unwrap();
    assert!(leechers(vanilla).iter().all(|p| count(p, "--tyrant-excess") == 0));
    // max_peers reaches every peer, seeders and thieves too, once: the focus keeps its own.
    let m = plan("thief peers=4 max_peers=40 focus_args=--max-peers,200", &PlanOptions::default());
    for p in &m.unwrap().runs[0].peers {
        assert_eq!(count(p, "--max-peers"), 1, "{:?}", p.args);
        let want = if p.focus { ["--max-peers", "200"] } else { ["--max-peers", "40"] };
        assert!(p.args.windows(2).any(|w| w == want), "{:?}", p.args);
    }
}

/// `memory=true`: every tyrant of a run keeps its estimates in its own file under the run,
/// vanilla peers get none; `statistic=` is written on the manifest line, a manifest without
/// it (written before it existed) reads as `median`, and an unknown name is refused.
#[test]
fn memory_and_statistic_reach_the_manifest() {
    let m = plan("all peers=3 memory=true statistic=geomean", &PlanOptions::default()).unwrap();
    assert_eq!(m.statistic.as_deref(), Some("geomean"));
    for r in &m.runs {
        for p in leechers(r) {
            let at = p.args.iter().position(|a| a == "--tyrant-memory");
            let want =
                (p.kind == Kind::Tyrant).then(|| format!("runs/{}/memory/{}.txt", r.name, p.id));
            assert_eq!(at.map(|i| p.args[i + 1].clone()), want, "{:?}", p.args);
        }
    }
    let text = m.to_text();
    assert!(text.contains(" statistic=geomean\n"));
    let old = text.replace(" statistic=geomean", "");
    assert_eq!(Manifest::from_text(&old).unwrap().statistic, None, "an old manifest fixed none");
    let bad = text.replace("statistic=geomean", "statistic=best");
    assert!(Manifest::from_text(&bad)
        .unwrap_err()
        .contains("statistic 'best' is not one of median, mean, geomean"));
    assert!(plan("single statistic=best", &PlanOptions::default()).is_err());
    let plain = plan("single peers=3", &PlanOptions::default()).unwrap();
    assert!(plain
        .runs
        .iter()
        .all(|r| r.peers.iter().all(|p| !p.args.contains(&"--tyrant-memory".to_string()))));
}

/// A peer played by a real client says so (`client=`), survives the round trip, and the
/// lines of tyrant peers stay as they were (no `client=` word).
#[test]
fn a_peer_names_the_client_that_plays_it() {
    let mut m = plan("single peers=3", &PlanOptions::default()).unwrap();
    let words = |t: &str| t.lines().filter(|l| !l.starts_with('#')).any(|l| l.contains("client="));
    assert!(!words(&m.to_text()));
    m.runs[0].peers[4].client = "aria2".into();
    let text = m.to_text();
    assert_eq!(text.matches(" client=aria2\n").count(), 1, "{}", text);
    assert_eq!(Manifest::from_text(&text).unwrap(), m);
    let o = crate::runner::RunOptions {
        out: std::env::temp_dir().join("tyrant-lab-never-created"),
        bin: "/bin/true".into(),
        exec: None,
        only: None,
        jobs: 1,
        keep_data: false,
        collect: None,
        verbose: false,
        ignore_thread_limit: true,
    };
    let e = crate::runner::run_manifest(&m, &o).unwrap_err();
    assert!(e.contains("is played by aria2; tyrant-lab runs only tyrant"), "{}", e);
    assert!(!o.out.exists());
}
