//! The planner: experiment presets (`single`, `all`, `rebel`, `sybil`, `propshare`,
//! `thief`; after downpour's, docs/downpour.md "Experimental setup") expanded into a complete
//! manifest — every peer's address, port, role, strategy, caps drawn from a seeded
//! capacity distribution, start time and command line. The text format lives in
//! manifest.rs and the options in plan/options.rs; this file only decides what goes into
//! the manifest.

use crate::manifest::*;
use std::net::Ipv4Addr;
use tyrant::rng::Rng;

mod options;
pub use options::PlanOptions;

/// One variant of a preset: leechers 0..lead run `focus` (leecher 0 is the focus peer),
/// the rest `background`.
struct Variant {
    name: &'static str,
    focus: Kind,
    background: Kind,
    lead: usize,
}

fn variants(preset: &str, o: &PlanOptions) -> Result<Vec<Variant>, String> {
    use Kind::*;
    let v = |name, focus, background| Variant { name, focus, background, lead: 1 };
    Ok(match preset {
        // One tyrant at cap C among vanilla peers, paired with the same swarm all vanilla.
        "single" => {
            vec![v("tyrant-in-vanilla", Tyrant, Vanilla), v("vanilla-in-vanilla", Vanilla, Vanilla)]
        }
        // Universal tyranny vs today's BitTorrent: whole-swarm distributions.
        "all" => {
            vec![v("tyrant-in-tyrant", Tyrant, Tyrant), v("vanilla-in-vanilla", Vanilla, Vanilla)]
        }
        // A rebel among tyrants vs among vanilla peers, each with its vanilla baseline in the
        // same background (downpour's rebel figure compared across backgrounds only).
        "rebel" => vec![
            v("rebel-in-tyrant", Rebel, Tyrant),
            v("vanilla-in-tyrant", Vanilla, Tyrant),
            v("rebel-in-vanilla", Rebel, Vanilla),
            v("vanilla-in-vanilla", Vanilla, Vanilla),
        ],
        // N identities at the same total cap vs one vanilla peer, against vanilla and
        // PropShare backgrounds.
        "sybil" => vec![
            v("sybil-in-vanilla", Sybil, Vanilla),
            v("vanilla-in-vanilla", Vanilla, Vanilla),
            v("sybil-in-propshare", Sybil, PropShare),
            v("vanilla-in-propshare", Vanilla, PropShare),
        ],
        // One PropShare peer; all PropShare; and a tyrant against PropShare peers (the
        // paper's "PropShare resists tyrants"), whose baseline is propshare-in-propshare.
        "propshare" => vec![
            v("propshare-in-vanilla", PropShare, Vanilla),
            v("vanilla-in-vanilla", Vanilla, Vanilla),
            v("propshare-in-propshare", PropShare, PropShare),
            v("tyrant-in-propshare", Tyrant, PropShare),
        ],
        // One thief; then many (leechers 0..k); baseline all vanilla.
        "thief" => {
            let many = if o.thieves == 0 { (o.peers / 10).max(2) } else { o.thieves };
            if many > o.peers {
                return Err(format!("plan: thieves={} exceeds peers={}", many, o.peers));
            }
            vec![
                v("thief-in-vanilla", Thief, Vanilla),
                v("vanilla-in-vanilla", Vanilla, Vanilla),
                Variant {
                    name: "thieves-in-vanilla",
                    focus: Thief,
                    background: Vanilla,
                    lead: many,
                },
            ]
        }
        _ => {
            return Err(format!(
                "unknown preset '{}' (single, all, rebel, sybil, propshare, thief)",
                preset
            ))
        }
    })
}

/// The client flags that make a peer of this kind.
fn kind_flags(kind: Kind, o: &PlanOptions) -> Vec<String> {
    match kind {
        Kind::Vanilla => vec![],
        Kind::Tyrant => {
            let mut f = vec!["--tyrant".to_string()];
            if let Some(u) = o.tyrant_u0 {
                f.push("--tyrant-u0".into());
                f.push(u.to_string());
            }
            f.extend(o.tyrant_args.iter().cloned());
            f
        }
        Kind::PropShare => vec!["--propshare".into()],
        Kind::Rebel => vec!["--rebel".into(), o.rebel.to_string()],
        Kind::Sybil => vec!["--sybil".into(), o.sybil.to_string()],
        Kind::Thief => vec!["--thief".into()],
    }
}

/// Slot k (seeders first, then leechers) listens on 127.0.(k/250).(2 + k%250): distinct
/// loopback addresses from 127.0.0.2 (127.0.0.1 is the tracker's), avoiding .0/.1 and
/// .252–.255 in each /24 so no address looks like a network or broadcast address.
pub fn slot_addr(k: usize) -> Ipv4Addr {
    // Callers stay far below 250·256 slots: ports run out first (< 12 768 slots).
    Ipv4Addr::new(127, 0, (k / 250) as u8, (2 + k % 250) as u8)
}

/// Round a drawn cap to 0.1 KiB/s (readable manifests; the rounding is far below any
/// effect) but never to 0, which tyrant reads as "uncapped".
pub(crate) fn round_cap(x: f64) -> f64 {
    ((x * 10.0).round() / 10.0).max(0.1)
}

/// Plan a preset. `preset_or_spec` is a preset name optionally followed by option words,
/// e.g. `single peers=60 caps=20,100 reps=5 dist=normal:50:10` (see `PlanOptions::set`);
/// the words override `opts`.
pub fn plan(preset_or_spec: &str, opts: &PlanOptions) -> Result<Manifest, String> {
    let mut words = preset_or_spec.split_whitespace();
    let preset = words.next().ok_or("plan: no preset given")?.to_string();
    let mut o = opts.clone();
    for w in words {
        match w.find('=') {
            Some(i) => o.set(&w[..i], &w[i + 1..])?,
            None => return Err(format!("plan: '{}' is not key=value", w)),
        }
    }
    o.check()?;
    let variants = variants(&preset, &o)?;
    let span: u16 = if preset == "sybil" { o.sybil as u16 } else { 1 };
    let slots = o.seeders.len() + o.peers;
    let top = o.base_port as usize + slots * span as usize - 1;
    if top >= 32768 {
        return Err(format!(
            "plan: ports {}..={} reach the ephemeral range (>= 32768); lower base_port",
            o.base_port, top
        ));
    }
    let (tracker_host, tracker_addr) = match o.hosts.first() {
        Some((h, ip)) => (h.clone(), *ip),
        None => ("local".to_string(), Ipv4Addr::new(127, 0, 0, 1)),
    };
    let tracker = Tracker {
        host: tracker_host,
        addr: tracker_addr,
        port: o.tracker_port,
        interval: o.tracker_interval,
        min_interval: o.tracker_interval,
        max_numwant: o.numwant,
    };
    if (o.base_port as usize..=top).contains(&(o.tracker_port as usize)) {
        return Err("plan: the tracker port lies among the peer ports".into());
    }
    let torrent = TorrentSpec {
        file: "payload.bin".into(),
        size: (o.size_mib * 1024.0 * 1024.0).round() as u64,
        piece_kib: o.piece_kib,
        path: "swarm.torrent".into(),
    };
    let scale_args: Vec<String> = if o.time_scale != 1.0 {
        vec!["--time-scale".into(), o.time_scale.to_string()]
    } else {
        vec![]
    };
    let width = (o.peers - 1).to_string().len();
    let mut master = Rng::new(o.seed);
    let mut runs = Vec::new();
    for rep in 0..o.reps {
        // Everything random in a repetition comes from its own stream, drawn before any
        // variant is built, so all variants and caps of the repetition share it.
        let rep_seed = master.next_u64();
        let mut rng = Rng::new(rep_seed);
        let mut cap_rng = rng.fork();
        let mut start_rng = rng.fork();
        let mut seed_rng = rng.fork();
        let background: Vec<f64> =
            o.dist.draw(o.peers - 1, &mut cap_rng).into_iter().map(round_cap).collect();
        let starts: Vec<f64> =
            (0..o.peers).map(|_| (start_rng.f64() * o.stagger * 1000.0).round() / 1000.0).collect();
        let peer_seeds: Vec<u64> = (0..slots).map(|_| seed_rng.next_u64()).collect();
        let tracker_seed = seed_rng.next_u64();
        for &cap in &o.caps {
            let group = format!("c{}-r{}", cap, rep);
            for var in &variants {
                let name = format!("{}-{}", group, var.name);
                let mut tracker_args: Vec<String> = [
                    "tracker",
                    "--bind",
                    &tracker.addr.to_string(),
                    "--port",
                    &tracker.port.to_string(),
                    "--interval",
                    &tracker.interval.to_string(),
                    "--min-interval",
                    &tracker.min_interval.to_string(),
                    "--max-numwant",
                    &tracker.max_numwant.to_string(),
                    "--rng-seed",
                    &tracker_seed.to_string(),
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
                tracker_args.extend(scale_args.iter().cloned());
                let mut peers = Vec::with_capacity(slots);
                for (slot, &peer_seed) in peer_seeds.iter().enumerate() {
                    let (host, addr) = if o.hosts.is_empty() {
                        ("local".to_string(), slot_addr(slot))
                    } else {
                        o.hosts[slot % o.hosts.len()].clone()
                    };
                    let port = o.base_port + slot as u16 * span;
                    let (id, role, kind, up, down, start, focus) = if slot < o.seeders.len() {
                        let id = format!("s{}", slot);
                        (id, Role::Seeder, Kind::Vanilla, o.seeders[slot], 0.0, 0.0, false)
                    } else {
                        let i = slot - o.seeders.len();
                        let kind = if i < var.lead { var.focus } else { var.background };
                        let up = if i == 0 { cap } else { background[i - 1] };
                        let role = if o.closed_loop { Role::Loop } else { Role::Leecher };
                        let id = format!("p{:0w$}", i, w = width);
                        (id, role, kind, up, o.down, starts[i], i == 0)
                    };
                    let mut flags = kind_flags(kind, &o);
                    if focus {
                        flags.extend(o.focus_args.iter().cloned());
                    }
                    let mut args: Vec<String> = Vec::new();
                    let mut push = |a: &str| args.push(a.to_string());
                    if role == Role::Seeder {
                        push("--seed");
                    }
                    push("--bind");
                    push(&addr.to_string());
                    push("--port");
                    push(&port.to_string());
                    push("--dir");
                    if role == Role::Seeder {
                        // --seed opens read-only, so all seeders share one copy.
                        push("seed");
                    } else {
                        push(&format!("runs/{}/data/{}", name, id));
                    }
                    push("--up");
                    push(&up.to_string());
                    if down > 0.0 {
                        push("--down");
                        push(&down.to_string());
                    }
                    push("--rng-seed");
                    push(&peer_seed.to_string());
                    // A thief keeps its own large view (numwant 1000) and slot rule.
                    // (unless focus_args set them: the client takes each flag once).
                    let given = |f: &str| flags.iter().any(|g| g == f);
                    if kind != Kind::Thief && !given("--numwant") {
                        push("--numwant");
                        push(&o.numwant.to_string());
                    }
                    if kind != Kind::Thief && !given("--k") {
                        if let Some(k) = o.k {
                            push("--k");
                            push(&k.to_string());
                        }
                    }
                    if let Some(n) = o.max_peers.filter(|_| !given("--max-peers")) {
                        push("--max-peers");
                        push(&n.to_string());
                    }
                    for f in &flags {
                        push(f);
                    }
                    if role == Role::Loop {
                        push("--stop-after-download");
                    }
                    if o.memory && kind == Kind::Tyrant {
                        // One file per peer and run: each rejoin starts from what the last
                        // process of this peer learned (a long-lived user).
                        push("--tyrant-memory");
                        push(&format!("runs/{}/memory/{}.txt", name, id));
                    }
                    push("--stats");
                    push(&format!("runs/{}/stats/{}.txt", name, id));
                    if focus && o.trace {
                        push("--trace");
                        push(&format!("runs/{}/trace/{}.txt", name, id));
                    }
                    for a in &scale_args {
                        push(a);
                    }
                    push("-q");
                    push(&torrent.path);
                    peers.push(Peer {
                        id,
                        host,
                        addr,
                        port,
                        role,
                        kind,
                        flags,
                        up,
                        down,
                        start,
                        focus,
                        args,
                        client: "tyrant".into(),
                    });
                }
                runs.push(Run {
                    name,
                    group: group.clone(),
                    variant: var.name.to_string(),
                    rep,
                    seed: rep_seed,
                    cap,
                    duration: o.duration,
                    tracker_args,
                    peers,
                });
            }
        }
    }
    Ok(Manifest {
        name: o.name.clone().unwrap_or_else(|| format!("{}-n{}-s{}", preset, o.peers, o.seed)),
        preset,
        seed: o.seed,
        time_scale: o.time_scale,
        reps: o.reps,
        dist: o.dist.to_string(),
        statistic: Some(o.statistic.name().to_string()),
        torrent,
        tracker,
        runs,
    })
}
