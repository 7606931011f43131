//! The experiment harness end to end: `tyrant-lab plan`, `run` and `report` as real
//! processes driving real `tyrant` processes — a 10-peer preset with time scaling that
//! yields the CSV, the table and (with gnuplot) the PNG; a 3-host run through network
//! namespaces (`--exec 'ip netns exec {host}'`, root only); Ctrl-C stopping every process.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn has_gnuplot() -> bool {
    Command::new("gnuplot")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[test]
fn ten_peer_preset_runs_end_to_end_with_time_scaling() {
    let t = TempDir::new("harness10");
    let d = t.path();
    lab_ok(
        d,
        &[
            "plan",
            "single",
            "peers=10",
            "caps=40",
            "time_scale=8",
            "duration=160",
            "size_mib=1",
            "memory=true",
            "statistic=geomean",
            "tracker_port=6971",
            "base_port=21000",
            "-o",
            "plan.txt",
        ],
    );
    let started = Instant::now();
    let out = lab_ok(d, &["run", "plan.txt", "--out", "out", "--jobs", "2"]);
    let real = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("2 runs done"), "{}", stdout);
    // Both runs (paired variants) in one batch of nominal 160 s at S = 8: ~20 s real.
    assert!(real < 60.0, "took {:.0} s: time scaling not applied?", real);
    let out_dir = d.join("out");
    let rows = rows(&out_dir);
    let size = std::fs::metadata(out_dir.join("seed/payload.bin")).unwrap().len();
    assert_eq!(size, 1 << 20);
    for variant in ["tyrant-in-vanilla", "vanilla-in-vanilla"] {
        let done: Vec<_> =
            rows.iter().filter(|r| r["variant"] == variant && !r["finish"].is_empty()).collect();
        // 10 closed-loop leechers over 160 nominal seconds complete many downloads.
        assert!(done.len() >= 10, "{}: {} downloads", variant, done.len());
        assert!(done.iter().any(|r| r["focus"] == "1"), "{}: focus peer never finished", variant);
        for r in &done {
            let f = |k: &str| r[k].parse::<f64>().unwrap();
            assert!((f("finish") - f("start") - f("seconds")).abs() < 0.01);
            // Nominal seconds: the download took real/S, reported ×S; 1 MiB at these caps
            // takes at least a few nominal seconds, never less than one.
            assert!(f("seconds") > 1.0 && f("finish") <= 160.0 + 20.0, "{:?}", r);
            assert!(r["bytes_down"].parse::<u64>().unwrap() >= size);
            assert_eq!(r["time_scale"], "8");
        }
        // Closed loop: some peer rejoined at least once.
        assert!(done.iter().any(|r| r["join"] != "0"), "{}: no rejoin", variant);
    }
    let focus_strategies: Vec<&str> =
        rows.iter().filter(|r| r["focus"] == "1").map(|r| r["strategy"].as_str()).collect();
    assert!(focus_strategies.contains(&"tyrant") && focus_strategies.contains(&"vanilla"));

    // Provenance: every row names the client's build as `tyrant --version` prints it, the
    // manifest in the output directory says what ran where, and the long-lived tyrant left
    // its estimates (peers by address) for its next process.
    let version = Command::new(client()).arg("--version").output().expect("tyrant --version");
    let build =
        String::from_utf8_lossy(&version.stdout).split_whitespace().last().map(String::from);
    let build = build.expect("tyrant --version prints its build");
    assert!(build.len() >= 7 && rows.iter().all(|r| r["build"] == build), "{}", build);
    assert!(rows
        .iter()
        .all(|r| r["idle"].parse::<f64>().map_or(false, |x| (0.0..=1.0).contains(&x))));
    let manifest = std::fs::read_to_string(out_dir.join("manifest.txt")).unwrap();
    let ran = manifest.lines().find(|l| l.starts_with("# ran ")).expect("a `# ran` line");
    assert!(ran.contains(&format!(" build={} ", build)) && ran.contains(" cores="), "{}", ran);
    let memory = out_dir.join("runs/c40-r0-tyrant-in-vanilla/memory/p0.txt");
    let memory = std::fs::read_to_string(&memory).expect("the focus tyrant's memory file");
    assert!(memory.lines().filter(|l| l.starts_with("127.")).count() >= 3, "{}", memory);
    let stats = std::fs::read_to_string(out_dir.join("runs/c40-r0-tyrant-in-vanilla/stats/p0.txt"));
    assert!(stats.unwrap().contains(" tyrant_memory=true "));

    // Another client build may not add runs to these results.
    let fake = d.join("other-tyrant");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = --version ] && {{ echo tyrant 0.1.0 0123456789ab; exit 0; }}\nexec {} \"$@\"\n",
        client().display()
    );
    std::fs::write(&fake, script).unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let other = lab_in(d, &["run", "plan.txt", "--out", "out", "--tyrant", "other-tyrant"]);
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(!other.status.success() && err.contains("holds runs of tyrant build"), "{}", err);

    // A second run of the same manifest resumes: everything is done already.
    let again = lab_ok(d, &["run", "plan.txt", "--out", "out", "-q"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 runs done (2 skipped"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );

    let rep = lab_ok(d, &["report", "out"]);
    let table = String::from_utf8_lossy(&rep.stdout);
    assert!(table.contains("tyrant-in-vanilla"), "{}", table);
    assert!(table.contains("vanilla-in-vanilla"), "{}", table);
    assert!(table.contains("median"), "{}", table);
    assert!(
        table.contains("statistic geomean (fixed in the manifest before the runs)"),
        "{}",
        table
    );
    assert!(table.contains(&format!("client build: {};", build)), "{}", table);
    assert!(out_dir.join("report.txt").exists());
    if has_gnuplot() {
        let figs: Vec<_> = std::fs::read_dir(out_dir.join("figures"))
            .expect("figures/")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        for ext in ["png", "svg"] {
            assert!(
                figs.iter().any(|p| p.extension().map_or(false, |e| e == ext)
                    && std::fs::metadata(p).map(|m| m.len() > 1000).unwrap_or(false)),
                "no {} figure in {:?}",
                ext,
                figs
            );
        }
    } else {
        eprintln!("note: gnuplot is not installed; figures not checked (CI installs it)");
    }
}

struct Netns(usize);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .args([
                concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns.sh"),
                "down",
                &self.0.to_string(),
            ])
            .status();
    }
}

#[test]
fn three_host_netns_run_completes_with_identical_files() {
    if !is_root() {
        eprintln!("note: not root; the network-namespace run is skipped (CI runs it as root)");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/netns.sh");
    // A tc cap per host far above the peers' own caps: it must not get in the way.
    let up = Command::new("bash").args([script, "up", "3", "20000"]).output().unwrap();
    let _guard = Netns(3);
    assert!(up.status.success(), "netns.sh up: {}", String::from_utf8_lossy(&up.stderr));
    let hosts = Command::new("bash").args([script, "hosts", "3"]).output().unwrap();
    let hosts = String::from_utf8_lossy(&hosts.stdout).trim().to_string();
    assert!(hosts.starts_with("hosts=tyr0@10.77.0.10,"), "{}", hosts);
    let t = TempDir::new("netns");
    let d = t.path();
    lab_ok(
        d,
        &[
            "plan",
            "single",
            "peers=6",
            "caps=60",
            "time_scale=8",
            "duration=200",
            "size_mib=1",
            "closed_loop=false",
            &hosts,
            "-o",
            "plan.txt",
        ],
    );
    let plan = std::fs::read_to_string(d.join("plan.txt")).unwrap();
    assert!(plan.contains("host=tyr2 addr=10.77.0.12"), "{}", plan);
    let out = lab_ok(
        d,
        &[
            "run",
            "plan.txt",
            "--out",
            "out",
            "--exec",
            "ip netns exec {host}",
            "--keep-data",
            "--only",
            "tyrant-in-vanilla",
            "--collect",
            "touch {dir}/runs/{run}/collected-{host}",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 runs done"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out_dir = d.join("out");
    let rows = rows(&out_dir);
    let done: Vec<_> = rows.iter().filter(|r| !r["finish"].is_empty()).collect();
    assert_eq!(done.len(), 6, "every leecher downloads once: {:?}", rows);
    let payload = std::fs::read(out_dir.join("seed/payload.bin")).unwrap();
    let run = out_dir.join("runs/c60-r0-tyrant-in-vanilla");
    // --collect ran once per host (a testbed would rsync the run directory back).
    for h in ["tyr0", "tyr1", "tyr2"] {
        assert!(run.join(format!("collected-{}", h)).exists(), "no collect for {}", h);
    }
    for r in &done {
        let got = std::fs::read(run.join("data").join(&r["peer"]).join("payload.bin")).unwrap();
        assert!(got == payload, "{}: file differs", r["peer"]);
        // The peer really ran inside its namespace: it listened on its host's address.
        let stats =
            std::fs::read_to_string(run.join("stats").join(format!("{}.txt", r["peer"]))).unwrap();
        assert!(stats.contains("listen=10.77.0.1"), "{}", stats);
    }
}

#[test]
fn ctrl_c_stops_every_process_the_run_started() {
    let t = TempDir::new("ctrlc");
    let d = t.path();
    lab_ok(
        d,
        &[
            "plan",
            "single",
            "peers=6",
            "caps=40",
            "duration=600",
            "stagger=1",
            "size_mib=1",
            "tracker_port=6972",
            "base_port=22000",
            "-o",
            "plan.txt",
        ],
    );
    let child = Command::new(lab())
        .args(["run", "plan.txt", "--out", "out", "-q", "--tyrant"])
        .arg(client())
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut runner = Proc { child, name: "runner".into() };
    let pids_file = d.join("out/runs/c40-r0-tyrant-in-vanilla/pids");
    let end = Instant::now() + Duration::from_secs(20);
    // tracker + 3 seeders + 6 leechers
    while std::fs::read_to_string(&pids_file).map_or(0, |s| s.lines().count()) < 10 {
        assert!(Instant::now() < end, "the run did not start its processes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pids: Vec<u32> = std::fs::read_to_string(&pids_file)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    for &p in &pids {
        assert!(Path::new(&format!("/proc/{}", p)).exists(), "pid {} gone early", p);
    }
    let unrelated = Command::new("sleep").arg("30").spawn().unwrap();
    let mut unrelated = Proc { child: unrelated, name: "sleep".into() };
    Command::new("kill").args(["-INT", &runner.child.id().to_string()]).status().unwrap();
    let status = runner
        .wait_timeout(Duration::from_secs(10))
        .expect("runner did not stop within 10 s of SIGINT");
    assert!(!status.success(), "an interrupted run must not report success");
    for &p in &pids {
        assert!(!Path::new(&format!("/proc/{}", p)).exists(), "pid {} survived the interrupt", p);
    }
    // Only its own processes: an unrelated one lives on.
    assert!(unrelated.child.try_wait().unwrap().is_none());
    // An interrupted run is not marked done, so a rerun would redo it.
    assert!(!d.join("out/runs/c40-r0-tyrant-in-vanilla/done").exists());
    assert_eq!(rows(&d.join("out")).len(), 0);
}
