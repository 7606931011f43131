//! `tyrant-lab` as a command: `plan` writes a manifest that `check` reads back (the same
//! seed gives the same bytes), errors are one line with exit status 1, and `run` says in one
//! line when it cannot find the client binary it is to execute or when its processes may
//! need more threads than the machine allows.

mod common;
use common::*;
use std::process::Command;

#[test]
fn plan_writes_a_manifest_that_checks() {
    let dir = TempDir::new("plan");
    let d = dir.path();
    for (file, seed) in [("a.txt", "7"), ("b.txt", "7"), ("c.txt", "8")] {
        let seed_kv = format!("seed={}", seed);
        let o = lab_in(d, &["plan", "single", "peers=12", "caps=20,100", &seed_kv, "-o", file]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let o = lab_in(d, &["check", "a.txt"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("preset single") && out.contains("runs 4"),
        "{}",
        out
    );
    let read = |f: &str| std::fs::read(d.join(f)).unwrap();
    assert_eq!(read("a.txt"), read("b.txt"));
    assert_ne!(read("a.txt"), read("c.txt"));
    std::fs::write(d.join("c.txt"), "manifest version=1 bogus=1\n").unwrap();
    let o = lab_in(d, &["check", "c.txt"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", err);
    assert!(err.starts_with("tyrant-lab: c.txt: manifest line 1"), "{}", err);
}

/// `run` finds the client through --tyrant, then $TYRANT, then beside itself; when none is
/// there it fails before touching the output directory, in one line naming the remedy.
#[test]
fn run_without_a_client_binary_fails_in_one_line() {
    let dir = TempDir::new("nobin");
    let d = dir.path();
    assert!(lab_in(d, &["plan", "single", "peers=2", "caps=20", "-o", "m.txt"]).status.success());
    // A copy of tyrant-lab with no tyrant beside it. Copied by `cp`, not std::fs::copy: a
    // write descriptor open in this process would leak into the processes other tests fork
    // meanwhile, and executing the copy would then fail with ETXTBSY.
    let alone = d.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let cp = Command::new("cp").arg(lab()).arg(&alone).status().unwrap();
    assert!(cp.success());
    let cases: [(&str, &[&str], Option<&str>); 3] = [
        ("cannot find the tyrant binary", &[], None),
        (
            "--tyrant /nonexistent/tyrant is not an executable file",
            &["--tyrant", "/nonexistent/tyrant"],
            None,
        ),
        ("$TYRANT /nonexistent/t2 is not an executable file", &[], Some("/nonexistent/t2")),
    ];
    for (want, extra, env) in cases {
        let mut cmd = Command::new(alone.join("tyrant-lab"));
        cmd.args(["run", "m.txt", "--out", "out"]).args(extra).current_dir(d).env_remove("TYRANT");
        if let Some(v) = env {
            cmd.env("TYRANT", v);
        }
        let o = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}", err);
        assert_eq!(err.trim_end().lines().count(), 1, "{}", err);
        assert!(err.contains(want), "want {:?} in {}", want, err);
        assert!(!d.join("out").exists(), "{}: output directory created", want);
    }
}

/// A run that needs more threads than any Linux allows (kernel.pid_max is at most 2^22:
/// 1,500 leechers of 6 + 2·1,502 threads) is refused in one line before the output
/// directory exists; --ignore-thread-limit goes past the check (to the next refusal here:
/// an output directory of another manifest, so that nothing starts).
#[test]
fn run_past_the_thread_limit_is_refused_in_one_line() {
    let dir = TempDir::new("threads");
    let d = dir.path();
    let plan = ["plan", "single", "peers=1500", "caps=20", "max_peers=2000", "-o", "m.txt"];
    assert!(lab_in(d, &plan).status.success());
    let o = lab_in(d, &["run", "m.txt", "--out", "out"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}", err);
    assert_eq!(err.trim_end().lines().count(), 1, "{}", err);
    assert!(
        err.starts_with("tyrant-lab: run: needs up to 4524543 threads at once, but "),
        "{}",
        err
    );
    assert!(err.trim_end().ends_with(", or pass --ignore-thread-limit"), "{}", err);
    assert!(!d.join("out").exists());
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::write(d.join("out/manifest.txt"), "another manifest\n").unwrap();
    let o = lab_in(d, &["run", "m.txt", "--out", "out", "--ignore-thread-limit"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("holds a different manifest"), "{}", err);
}
