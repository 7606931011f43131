//! tyrant: a small BitTorrent client for studying incentive strategies (BitTyrant,
//! Piatek et al., NSDI 2007). This file owns the command line: `tyrant [options] FILE`
//! downloads or seeds one torrent, `tyrant make` writes a .torrent, `tyrant tracker` runs
//! an HTTP and UDP (BEP 15) tracker for experiments. Everything else lives in the modules below.

use pico_args::Arguments as Args;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::exit;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tyrant::choke::Slots;
use tyrant::chooser::Timing;
use tyrant::strategy::{opt, sybil, Flags};
use tyrant::torrent::{Config, Outcome, Torrent};
use tyrant::{metainfo, trackerd};

// The help texts, as printed (`--help`), in src/usage/.
const USAGE: &str = include_str!("usage/tyrant.txt");
const MAKE_USAGE: &str = include_str!("usage/make.txt");
const TRACKER_USAGE: &str = include_str!("usage/tracker.txt");

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    tyrant::storage::raise_fd_limit();
    let mut args = Args::from_env();
    if args.contains(["-V", "--version"]) {
        return println!("tyrant {} {}", env!("CARGO_PKG_VERSION"), tyrant::BUILD);
    }
    let result = match args.subcommand() {
        Ok(Some(ref s)) if s == "make" => command(args, MAKE_USAGE, cmd_make),
        Ok(Some(ref s)) if s == "tracker" => command(args, TRACKER_USAGE, cmd_tracker),
        Ok(Some(ref s)) if s == "help" => {
            command(Args::from_vec(vec!["-h".into()]), USAGE, cmd_run)
        }
        // For the main command the first free argument, taken as a "subcommand" by
        // pico-args, is the torrent file: put it back in front.
        Ok(first) => {
            let mut rest: Vec<std::ffi::OsString> = first.into_iter().map(Into::into).collect();
            rest.extend(args.finish());
            command(Args::from_vec(rest), USAGE, cmd_run)
        }
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        eprintln!("tyrant: {}", e);
        exit(1);
    }
}

/// `-h`/`--help` prints the command's `usage`; anything else runs it.
fn command(mut args: Args, usage: &str, cmd: fn(Args) -> Result<(), String>) -> Result<(), String> {
    if args.contains(["-h", "--help"]) {
        print!("{}", usage);
        return Ok(());
    }
    cmd(args)
}

fn cmd_run(mut args: Args) -> Result<(), String> {
    let up: f64 = opt(&mut args, "--up")?.unwrap_or(0.0);
    let down: f64 = opt(&mut args, "--down")?.unwrap_or(0.0);
    if up < 0.0 || down < 0.0 || !up.is_finite() || !down.is_finite() {
        return Err("--up and --down must be >= 0".into());
    }
    let slots = match (opt::<f64>(&mut args, "--k")?, opt::<usize>(&mut args, "--slots")?) {
        (Some(_), Some(_)) => return Err("--k and --slots exclude each other".into()),
        (Some(k), None) if k > 0.0 => Slots::K { k, up_kib: up },
        (Some(_), None) => return Err("--k must be > 0".into()),
        (None, Some(0)) => return Err("--slots must be at least 1".into()),
        (None, Some(n)) => Slots::Fixed(n),
        (None, None) => Slots::Auto { up_kib: up },
    };
    let strategy = Flags::parse(&mut args, up)?;
    let (max_peers, numwant) = strategy.peer_set();
    let time_scale = time_scale(&mut args)?;
    let mut base = Config {
        port: opt(&mut args, "--port")?.unwrap_or(6881),
        bind_ip: opt(&mut args, "--bind")?.unwrap_or_else(|| IpAddr::from([0, 0, 0, 0])),
        announce_ip: opt::<IpAddr>(&mut args, "--announce-ip")?.map(|ip| ip.to_string()),
        dir: opt(&mut args, "--dir")?.unwrap_or_else(|| PathBuf::from(".")),
        up_kib: up,
        down_kib: down,
        seed: args.contains("--seed"),
        stop_after_download: args.contains("--stop-after-download"),
        slots,
        rng_seed: opt(&mut args, "--rng-seed")?.unwrap_or(1),
        max_peers: opt(&mut args, "--max-peers")?.unwrap_or(max_peers).max(1),
        numwant: opt(&mut args, "--numwant")?.unwrap_or(numwant),
        stats: opt(&mut args, "--stats")?,
        trace: opt(&mut args, "--trace")?,
        peers: args.values_from_str("--peer").map_err(|e| format!("--peer: {}", e))?,
        time_limit: positive(&mut args, "--time-limit")?.map(Duration::from_secs_f64),
        time_scale,
        timing: timing(&mut args, time_scale)?,
        peer_id: [0; 20],
        progress: !args.contains(["-q", "--quiet"]) && stderr_is_terminal(),
        strategy,
        share: None,
        label: String::new(),
    };
    // Tell the tracker where we listen when bound to a specific address.
    if base.announce_ip.is_none() && !base.bind_ip.is_unspecified() {
        base.announce_ip = Some(base.bind_ip.to_string());
    }
    base.peer_id = make_peer_id(base.port, base.rng_seed);
    let free = args.finish();
    let file = match free.as_slice() {
        [one] => PathBuf::from(one),
        [] => return Err("no torrent file given (try --help)".into()),
        _ => {
            let words: Vec<String> =
                free.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            return Err(format!("unexpected arguments: {} (try --help)", words.join(" ")));
        }
    };
    if file.to_string_lossy().starts_with('-') {
        return Err(format!("unknown option {} (try --help)", file.display()));
    }
    let meta = metainfo::Metainfo::load(&file)?;
    let (sybil, pieces) = (base.strategy.sybil, meta.num_pieces());
    if sybil > pieces {
        return Err(format!("--sybil {sybil}: the torrent has only {pieces} pieces"));
    }
    if sybil > 1 && base.seed {
        return Err("--sybil splits a download; it does not combine with --seed".into());
    }
    if sybil > 1 {
        return run_sybil(meta, base, sybil);
    }
    let t = Torrent::open(meta, base)?;
    log::info!("listening on {}", t.listen_addr());
    if !t.run()?.complete {
        log::info!("stopped before the download completed");
    }
    Ok(())
}

/// BitSybil (strategy/sybil.rs): N identities in one process, each a client of its own
/// with its share of the pieces and of the upload cap; they know each other and never
/// connect. The run ends when every identity has its share, i.e. the file is assembled.
fn run_sybil(meta: metainfo::Metainfo, base: Config, n: u32) -> Result<(), String> {
    let mut identities = Vec::new();
    for id in sybil::split(n, meta.num_pieces(), base.up_kib) {
        let i = id.index;
        let mut cfg = base.clone();
        cfg.share = Some(id.share);
        cfg.up_kib = id.up_kib;
        cfg.slots = base.slots.for_cap(id.up_kib);
        cfg.port = if base.port == 0 { 0 } else { base.port + i as u16 };
        cfg.peer_id = make_peer_id(cfg.port.wrapping_add(i as u16), base.rng_seed + u64::from(i));
        cfg.rng_seed = base.rng_seed.wrapping_add(u64::from(i));
        cfg.stats = base.stats.as_ref().map(|p| suffixed(p, i));
        cfg.trace = base.trace.as_ref().map(|p| suffixed(p, i));
        cfg.label = format!("id{} ", i);
        cfg.progress = false;
        identities.push(Torrent::open(meta.clone(), cfg)?);
    }
    let all: Vec<([u8; 20], SocketAddr)> =
        identities.iter().map(|t| (t.peer_id(), t.listen_addr())).collect();
    let started = Instant::now();
    let mut handles = Vec::new();
    for (i, mut t) in identities.into_iter().enumerate() {
        let others = all.iter().enumerate().filter(|(j, _)| *j != i);
        t.set_siblings(others.map(|(_, x)| *x).collect());
        log::info!("identity {} listening on {}", i, t.listen_addr());
        let h = std::thread::Builder::new()
            .name(format!("identity-{}", i))
            .spawn(move || t.run())
            .map_err(|e| e.to_string())?;
        handles.push(h);
    }
    let mut total =
        Outcome { download_secs: Some(0.0), downloaded: 0, uploaded: 0, complete: true };
    let mut errors = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(s)) => {
                println!("identity {}: {}", i, s);
                total.downloaded += s.downloaded;
                total.uploaded += s.uploaded;
                total.complete &= s.complete;
                total.download_secs =
                    total.download_secs.zip(s.download_secs).map(|(a, b)| a.max(b));
            }
            Ok(Err(e)) => errors.push(format!("identity {}: {}", i, e)),
            Err(_) => errors.push(format!("identity {}: thread panicked", i)),
        }
    }
    total.complete &= errors.is_empty();
    let line = format!("done identities={} t={:.2} {}", n, started.elapsed().as_secs_f64(), total);
    println!("sybil total: {}", line);
    if let Some(p) = &base.stats {
        std::fs::write(p, format!("{}\n", line))
            .map_err(|e| format!("cannot write {}: {}", p.display(), e))?;
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// `stats.txt` → `stats.txt.id0`, one file per BitSybil identity.
fn suffixed(p: &std::path::Path, i: u32) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(format!(".id{}", i));
    PathBuf::from(s)
}

fn cmd_make(mut args: Args) -> Result<(), String> {
    let announce: String =
        opt(&mut args, "--announce")?.ok_or("make: --announce URL is required")?;
    let piece_kib: Option<u64> = opt(&mut args, "--piece-size")?;
    let out: Option<PathBuf> = opt(&mut args, "-o")?;
    let private = args.contains("--private");
    let free = args.finish();
    let path = match free.as_slice() {
        [one] if !one.to_string_lossy().starts_with('-') => PathBuf::from(one),
        _ => return Err("make: give exactly one PATH (try tyrant make --help)".into()),
    };
    if piece_kib == Some(0) {
        return Err("--piece-size must be > 0".into());
    }
    let bytes = metainfo::make_torrent(&path, &announce, piece_kib.map(|k| k * 1024), private)?;
    let meta = metainfo::Metainfo::from_bytes(&bytes)?;
    let out = out.unwrap_or_else(|| PathBuf::from(format!("{}.torrent", meta.name)));
    std::fs::write(&out, &bytes).map_err(|e| format!("cannot write {}: {}", out.display(), e))?;
    let (out, hash, pieces) =
        (out.display(), tyrant::sha1::hex(&meta.info_hash), meta.num_pieces());
    let (piece_length, total) = (meta.piece_length, meta.total_length);
    println!("{out} info_hash={hash} pieces={pieces} piece_length={piece_length} total={total}");
    Ok(())
}

fn cmd_tracker(mut args: Args) -> Result<(), String> {
    let port: u16 = opt(&mut args, "--port")?.unwrap_or(6969);
    let bind: IpAddr = opt(&mut args, "--bind")?.unwrap_or_else(|| IpAddr::from([0, 0, 0, 0]));
    let mut cfg = trackerd::ServerConfig::new(SocketAddr::new(bind, port));
    if let Some(i) = opt::<u32>(&mut args, "--interval")? {
        if i == 0 {
            return Err("--interval must be > 0".into());
        }
        cfg.interval = i;
        cfg.min_interval = cfg.min_interval.min(i);
        cfg.expiry = Duration::from_secs(3 * u64::from(i));
    }
    cfg.min_interval = opt(&mut args, "--min-interval")?.unwrap_or(cfg.min_interval);
    if let Some(n) = opt(&mut args, "--max-numwant")? {
        cfg.max_numwant = n;
        cfg.default_numwant = cfg.default_numwant.min(n);
    }
    if let Some(s) = positive(&mut args, "--expiry")? {
        cfg.expiry = Duration::from_secs_f64(s.max(1.0));
    }
    cfg.seed = opt(&mut args, "--rng-seed")?.unwrap_or(cfg.seed);
    let limit = positive(&mut args, "--time-limit")?;
    // Clients scale the announced interval themselves (tracker.rs), so only our own
    // clock, the expiry of peers that stopped announcing, runs S times faster.
    let scale = time_scale(&mut args)?;
    cfg.expiry = Duration::from_secs_f64((cfg.expiry.as_secs_f64() / scale).max(1.0));
    let free = args.finish();
    if !free.is_empty() {
        return Err(format!("tracker: unexpected arguments {free:?} (try tyrant tracker --help)"));
    }
    let (addr, handle) = trackerd::spawn(cfg)
        .map_err(|e| format!("tracker: cannot listen on {}:{}: {}", bind, port, e))?;
    println!("tracker listening on {}", addr);
    // A harness's tracker stops by itself even when whoever started it is gone (ssh).
    match limit {
        Some(s) => std::thread::sleep(Duration::from_secs_f64(s)),
        None => drop(handle.join()),
    }
    Ok(())
}

/// `--time-scale S` (issue 4 item 4): rates ×S, policy rounds and intervals ÷S.
fn time_scale(args: &mut Args) -> Result<f64, String> {
    match opt::<f64>(args, "--time-scale")? {
        None => Ok(1.0),
        Some(s) if s.is_finite() && (0.01..=1000.0).contains(&s) => Ok(s),
        Some(s) => Err(format!("--time-scale {} must be in [0.01, 1000]", s)),
    }
}

/// The protocol clocks, scaled, with the `--*-timeout` options applied.
fn timing(args: &mut Args, time_scale: f64) -> Result<Timing, String> {
    let mut timing = Timing::scaled(time_scale);
    let secs = Duration::from_secs_f64;
    if let Some(s) = positive(args, "--handshake-timeout")? {
        timing.handshake = secs(s);
        timing.connect = timing.connect.min(secs(s));
    }
    if let Some(s) = positive(args, "--idle-timeout")? {
        timing.idle = secs(s);
        // keep-alives must come well before the other side's idle deadline
        timing.keepalive = timing.keepalive.min(secs(s / 3.0));
    }
    if let Some(s) = positive(args, "--request-timeout")? {
        timing.request_timeout = secs(s);
    }
    Ok(timing)
}

/// An optional number of seconds that must be > 0.
fn positive(args: &mut Args, name: &'static str) -> Result<Option<f64>, String> {
    match opt::<f64>(args, name)? {
        // Also bounds what `Duration::from_secs_f64` accepts (it panics on NaN and huge values).
        Some(x) if !(x > 0.0 && x <= 1e9) => Err(format!("{} must be in (0, 1e9] seconds", name)),
        v => Ok(v),
    }
}

/// Azureus-style peer id `-TY0100-` + 12 hex digits. It must differ between processes
/// even with the same --rng-seed (else peers would take each other for themselves), so
/// it mixes in the pid and the clock; it does not feed any experiment decision.
fn make_peer_id(port: u16, seed: u64) -> [u8; 20] {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seed_text = format!("{}:{}:{}:{}", std::process::id(), nanos, port, seed);
    let hash = tyrant::sha1::sha1(seed_text.as_bytes());
    let mut id = *b"-TY0100-............";
    id[8..].copy_from_slice(tyrant::sha1::hex(&hash[..6]).as_bytes());
    id
}

fn stderr_is_terminal() -> bool {
    extern "C" {
        fn isatty(fd: std::os::raw::c_int) -> std::os::raw::c_int;
    }
    // SAFETY: isatty only inspects the descriptor number; fd 2 always exists or is EBADF.
    unsafe { isatty(2) == 1 }
}
