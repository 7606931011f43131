//! The thread count against the threads measured in tyrant processes, the refusal line for
//! each kind of limit, the suggested max_peers, and the /proc and cgroup parsing on fixture
//! text.

use super::*;
use crate::plan::{plan, PlanOptions};
use std::collections::HashMap;

fn runs(spec: &str) -> Vec<Run> {
    plan(spec, &PlanOptions::default()).unwrap().runs
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn processes_count_what_was_measured_plus_the_announce_watchdog() {
    // Measured at rest with --up: seeder 4 (main, acceptor, pacer, announcer), leecher 5
    // (and disk), --sybil 2 leecher 11; without --up one fewer per identity; +2 per
    // connection. The count adds the watchdog of an HTTP announce per identity.
    for (args, conns, want) in [
        ("--seed --up 64", 0, 5),
        ("--seed", 0, 4),
        ("--up 20", 0, 6),
        ("--up 20", 22, 50),
        ("--up 20 --sybil 2", 0, 13),
        ("--up 20 --sybil 2", 10, 53),
    ] {
        assert_eq!(process(&words(args), conns), want, "{}", args);
    }
}

#[test]
fn need_of_swarms_lanes_and_thieves() {
    let r300 = runs("single peers=300 caps=20");
    let r30 = runs("single peers=30 caps=20,100");
    let thief = runs("thief peers=30 caps=20");
    fn all(rs: &[Run]) -> Vec<&Run> {
        rs.iter().collect()
    }
    for (rs, jobs, want) in [
        // tracker 3 + 303 HTTP connections, the lane thread, 3 seeders at 5 + 2·60,
        // 300 leechers at 6 + 2·60.
        (all(&r300), 1, 4 + 303 + 3 * 125 + 300 * 126),
        (all(&r300), 2, 2 * 38482),
        // 33 identities: at most 32 connections each, below --max-peers 60.
        (all(&r30), 1, 4 + 33 + 3 * (5 + 64) + 30 * (6 + 64)),
        // More lanes than runs: all 4 runs at once.
        (all(&r30), 8, 4 * 2344),
        // BitThief's --max-peers 1000 is capped by the 32 others as well.
        (all(&thief), 1, 2344),
    ] {
        assert_eq!(need(&rs, jobs, &max_peers), want);
    }
}

#[test]
fn refusal_names_need_limit_source_and_remedies() {
    let r300 = runs("single peers=300 caps=20");
    let rs: Vec<&Run> = r300.iter().collect();
    let limit = |max, used, name: &str, raise: &str| Limit {
        max,
        used,
        name: name.to_string(),
        raise: raise.to_string(),
    };
    let pid =
        |max, used| limit(max, used, "kernel.pid_max", "as root: sysctl -w kernel.pid_max=4194304");
    assert_eq!(verdict(&rs, 1, &pid(38482 + 50, 50)), Ok(()));
    // need(max_peers = n) = 2122 + 606·n: 50 fits in 32768 − 100.
    let e = verdict(&rs, 1, &pid(32768, 100)).unwrap_err();
    assert_eq!(
        e,
        "run: needs up to 38482 threads at once, but kernel.pid_max is 32768 and 100 threads \
         are in use: raise it (as root: sysctl -w kernel.pid_max=4194304), or plan with \
         max_peers=50, or pass --ignore-thread-limit"
    );
    let e = verdict(&rs, 1, &pid(38482 + 50, 51)).unwrap_err();
    assert!(e.contains("max_peers=59,"), "{}", e);
    // Two lanes: one would fit.
    let e = verdict(&rs, 2, &pid(40000, 0)).unwrap_err();
    assert!(e.contains("(2 runs side by side)") && e.contains("or run --jobs 1,"), "{}", e);
    assert!(e.contains("max_peers=29,"), "{}", e);
    // The total to raise a limit to: the need and the threads in use.
    let e = verdict(&rs, 1, &limit(4096, 10, "ulimit -u", "ulimit -u {want}")).unwrap_err();
    assert!(e.contains("but ulimit -u is 4096 and 10 threads") && e.contains("(ulimit -u 38492)"));
    assert!(e.contains("max_peers=3,") && !e.contains('\n'), "{}", e);
    // Nothing fits under 2122 + 606: no max_peers to suggest.
    let e = verdict(&rs, 1, &pid(2700, 0)).unwrap_err();
    assert!(!e.contains("max_peers") && !e.contains("--jobs"), "{}", e);
}

#[test]
fn suggested_max_peers_is_what_the_plan_option_gives() {
    // A focus peer's own --max-peers stays; every other peer takes the plan's max_peers.
    let base = "single peers=300 caps=20 focus_args=--max-peers,200";
    let given = runs(base);
    for n in [10, 23, 60] {
        let planned = runs(&format!("{} max_peers={}", base, n));
        let (a, b): (Vec<&Run>, Vec<&Run>) = (given.iter().collect(), planned.iter().collect());
        assert_eq!(need_at(&a, 1, n), need(&b, 1, &max_peers), "max_peers={}", n);
    }
}

#[test]
fn limits_from_proc_and_cgroup_files() {
    let files: HashMap<&str, &str> = [
        ("/proc/loadavg", "0.36 1.38 1.81 4/704 21682\n"),
        ("/proc/sys/kernel/pid_max", "32768\n"),
        ("/proc/sys/kernel/threads-max", "192730\n"),
        ("/proc/self/cgroup", "0::/a/b\n"),
        ("/sys/fs/cgroup/a/b/pids.max", "max\n"),
        ("/sys/fs/cgroup/a/b/pids.current", "12\n"),
        ("/sys/fs/cgroup/a/pids.max", "4096\n"),
        ("/sys/fs/cgroup/a/pids.current", "96\n"),
        (
            "/proc/self/limits",
            "Max processes             2000                 2000      processes\n",
        ),
    ]
    .into_iter()
    .collect();
    let read = |p: &Path| files.get(p.to_str().unwrap_or("")).map(|t| t.to_string());
    let got: Vec<(usize, usize, String, String)> = limits(&read, Some(50))
        .into_iter()
        .map(|l| (l.max, l.used, l.name, l.raise.replace("{want}", "W")))
        .collect();
    let want = |max, used, name: &str, raise: &str| (max, used, name.into(), raise.into());
    assert_eq!(
        got,
        [
            want(32768, 704, "kernel.pid_max", "as root: sysctl -w kernel.pid_max=4194304"),
            want(192730, 704, "kernel.threads-max", "as root: sysctl -w kernel.threads-max=W"),
            want(
                4096,
                96,
                "/sys/fs/cgroup/a/pids.max",
                "as root: echo W > /sys/fs/cgroup/a/pids.max"
            ),
            want(2000, 50, "ulimit -u (RLIMIT_NPROC)", "ulimit -u W"),
        ]
    );
    // Root (no user count): no RLIMIT_NPROC; nothing readable: no limits.
    assert_eq!(limits(&read, None).len(), 3);
    assert!(limits(&|_: &Path| None, Some(1)).is_empty());
    // This machine's own, whatever they are, make a refusal line.
    let r300 = runs("single peers=300 caps=20");
    if let Some(l) = tightest() {
        let e = verdict(&[&r300[0]], 1, &Limit { max: 4096, used: 10, ..l }).unwrap_err();
        assert!(!e.contains("{want}") && e.contains(" is 4096 and 10 threads"), "{}", e);
    }
}

#[test]
fn proc_and_cgroup_text() {
    assert_eq!(parse_max("max\n"), None);
    assert_eq!(parse_max("4096\n"), Some(4096));
    assert_eq!(parse_max(""), None);
    assert_eq!(loadavg_threads("0.36 1.38 1.81 4/704 21682\n"), Some(704));
    assert_eq!(loadavg_threads("0.36"), None);
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max open files            1024                 1048576              files     \n\
                  Max processes             96365                96365                processes \n";
    assert_eq!(nproc_soft(limits), Some(96365));
    assert_eq!(nproc_soft(&limits.replace("96365  ", "unlimited")), None);
    assert_eq!(nproc_soft("garbage"), None);
    // cgroup v1 (pids among other controllers), then v2: the cgroup and its ancestors.
    let v1 = "9:name=systemd:/\n8:cpu,pids:/docker/abc\n4:memory:/x\n";
    let p = |s: &str| PathBuf::from(s);
    assert_eq!(
        cgroup_dirs(v1),
        [
            p("/sys/fs/cgroup/pids/docker/abc"),
            p("/sys/fs/cgroup/pids/docker"),
            p("/sys/fs/cgroup/pids")
        ]
    );
    assert_eq!(
        cgroup_dirs("0::/user.slice/session-2.scope\n"),
        [
            p("/sys/fs/cgroup/user.slice/session-2.scope"),
            p("/sys/fs/cgroup/user.slice"),
            p("/sys/fs/cgroup")
        ]
    );
    assert_eq!(cgroup_dirs("0::/\n"), [p("/sys/fs/cgroup")]);
    assert!(cgroup_dirs("bogus\n3:cpuset:/\n").is_empty());
}
