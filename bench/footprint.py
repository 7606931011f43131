#!/usr/bin/env python3
"""footprint: threads, memory and CPU of one tyrant seeding to 500 connected leechers,
and of a whole local swarm of tyrant processes.

    cargo build --release
    python3 bench/footprint.py                        # 500 peers, 60 s, then a 30-leecher swarm
    python3 bench/footprint.py --peers 500 --secs 60 --swarm 0
    python3 bench/footprint.py --peers 0 --swarm 100 --swarm-size 4

Part 1 (one seeder, many connections). A tyrant seeder (`--seed --max-peers 600`, uncapped,
default slots) serves a 16 MiB torrent. Light leechers, all on one `selectors` loop in this
process (the peers of bench/caps.py in slow mode): raw-socket handshake, no bitfield,
interested, then one 16 KiB request every ~`--request-every` s (random phase), so none is
ever idle long enough to be dropped; a choked seeder ignores the requests, the ~7 unchoked
ones get a block now and then. Measured from /proc/PID/{status,stat} of the seeder:
  idle     Threads, VmRSS, VmHWM with no connection (after a 3 s settle);
  loaded   the same with all peers connected (handshake done, the seeder's stats say
           peers=N), after a 5 s settle, then CPU (utime+stime) over `--secs` and the
           range of VmRSS/Threads sampled each second;
  per conn (VmRSS loaded - VmRSS idle) / N, the target being <= 64 KiB;
  after    all peers closed, 5 s later: do threads and memory come back?

Part 2 (a whole swarm, `--swarm N`, 0 = skip): `./run.sh swarm --leechers N --size M`
(our tracker, one seeder at 256 KiB/s, N leechers at 128 KiB/s, each a separate tyrant
process) while every tyrant process under it is sampled every 0.5 s: peak summed VmRSS,
peak summed threads, peak process count, and the CPU seconds of the whole run (rusage of
run.sh and everything it waited for: tracker, seeder, leechers, its shell and its payload
generator). Everything is bounded (`--timeout`); no process outlives the bench.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caps  # noqa: E402  (light peers, torrent making, seeder start/stop)

ROOT = caps.ROOT
TYRANT = caps.TYRANT
CLK = os.sysconf("SC_CLK_TCK")


def status(pid):
    """Threads, VmRSS and VmHWM (KiB) of a live process."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Threads", "VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def ticks_last(stats):
    tk = caps.ticks(stats)
    return tk[-1] if tk else {}


def part1(a):
    os.makedirs(a.dir, exist_ok=True)
    torrent, data_dir, info_hash, blocks = caps.make_torrent(a.dir)
    proc, port, stats, _trace = caps.start_seeder(
        torrent, data_dir, "footprint", a.dir, ["--max-peers", str(a.max_peers)])
    eng = caps.Engine()
    try:
        time.sleep(3.0)
        idle = status(proc.pid)
        t_conn = time.monotonic()
        peers = []
        # Connect in batches so the seeder's acceptor never sees a wall of half-open sockets.
        deadline = t_conn + 120.0
        for i in range(a.peers):
            p = caps.LightPeer(eng, None, info_hash, blocks, 0, request_every=a.request_every)
            p.connect(("127.0.0.1", port))
            peers.append(p)
            if i % 25 == 24:
                eng.run_until(time.monotonic() + 0.05)
        # Wait (bounded) until every peer has its handshake and the seeder counts them.
        while time.monotonic() < deadline:
            eng.run_until(time.monotonic() + 0.5)
            up = sum(1 for p in peers if p.got_handshake and not p.closed)
            if up >= a.peers and ticks_last(stats).get("peers", 0) >= a.peers:
                break
        connect_secs = time.monotonic() - t_conn
        eng.run_until(time.monotonic() + 5.0)
        s0 = status(proc.pid)
        c0 = cpu(proc.pid)
        t0 = time.monotonic()
        lo = dict(s0)
        hi = dict(s0)
        unchoked_max = 0
        end = t0 + a.secs
        while time.monotonic() < end:
            eng.run_until(min(end, time.monotonic() + 1.0))
            s = status(proc.pid)
            for k in s:
                lo[k] = min(lo[k], s[k])
                hi[k] = max(hi[k], s[k])
            unchoked_max = max(unchoked_max, sum(1 for p in peers if not p.choked and not p.closed))
        c1 = cpu(proc.pid)
        t1 = time.monotonic()
        s1 = status(proc.pid)
        tick = ticks_last(stats)
        connected = sum(1 for p in peers if p.got_handshake and not p.closed)
        dropped = sorted(set(p.why for p in peers if p.closed))
        served = sum(p.bytes for p in peers)
        eng.close_all()
        time.sleep(5.0)
        after = status(proc.pid)
    finally:
        eng.close_all()
        caps.stop(proc)

    n = max(a.peers, 1)
    print("part 1: one tyrant seeder (--max-peers %d, uncapped), %d light leechers on one "
          "selectors thread, 1 request / ~%g s each" % (a.max_peers, a.peers, a.request_every))
    print("  %-34s %8s %10s %10s" % ("", "Threads", "VmRSS KiB", "VmHWM KiB"))
    print("  %-34s %8d %10d %10d" % ("idle (no connection)", idle["Threads"], idle["VmRSS"], idle["VmHWM"]))
    print("  %-34s %8d %10d %10d" % ("%d connected, window start" % connected, s0["Threads"], s0["VmRSS"], s0["VmHWM"]))
    print("  %-34s %8d %10d %10d" % ("%d connected, window end" % connected, s1["Threads"], s1["VmRSS"], s1["VmHWM"]))
    print("  %-34s %4d-%-4d %4d-%-5d" % ("range over the window", lo["Threads"], hi["Threads"], lo["VmRSS"], hi["VmRSS"]))
    print("  %-34s %8d %10d %10d" % ("5 s after all %d closed" % a.peers, after["Threads"], after["VmRSS"], after["VmHWM"]))
    per = (s1["VmRSS"] - idle["VmRSS"]) / n
    per_hwm = (s1["VmHWM"] - idle["VmRSS"]) / n
    print("  connect + handshake of all: %.1f s; seeder ticks: peers=%d unchoked=%d; "
          "most unchoked at once (receivers): %d; served %.1f MiB in the window"
          % (connect_secs, tick.get("peers", -1), tick.get("unchoked", -1), unchoked_max, served / 2**20))
    print("  CPU over %.0f s: %.2f s = %.2f %% of one core" % (t1 - t0, c1 - c0, 100.0 * (c1 - c0) / (t1 - t0)))
    print("  RSS per connection: %.1f KiB (VmRSS), %.1f KiB (VmHWM - idle VmRSS); threads per connection %.2f; "
          "target <= 64 KiB: %s" % (per, per_hwm, (s1["Threads"] - idle["Threads"]) / n,
                                     "ok" if per <= 64 else "MISSED"))
    if dropped or connected < a.peers:
        print("  only %d of %d peers connected at the end; reasons: %s" % (connected, a.peers, "; ".join(dropped)))
    return per <= 64 and connected == a.peers


def descendants(root):
    """pids of every live process below root (by PPid)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(d))
        except (OSError, IndexError):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def part2(a):
    env = dict(os.environ, TYRANT=TYRANT)
    cmd = [os.path.join(ROOT, "run.sh"), "swarm", "--leechers", str(a.swarm), "--size", str(a.swarm_size)]
    print("part 2: ./run.sh %s (TYRANT=%s)" % (" ".join(cmd[1:]), TYRANT), flush=True)
    out_path = os.path.join(a.dir, "swarm.out")
    with open(out_path, "w") as out:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
    t0 = time.monotonic()
    peak = {"rss": 0, "threads": 0, "procs": 0}
    rss_samples = []
    status_code = ru = None
    try:
        while True:
            wpid, st, r = os.wait4(p.pid, os.WNOHANG)
            if wpid:
                status_code, ru = st, r
                p.returncode = os.waitstatus_to_exitcode(st)
                break
            if time.monotonic() - t0 > a.timeout:
                raise RuntimeError("swarm did not finish in %g s" % a.timeout)
            rss = threads = procs = 0
            for pid in descendants(p.pid):
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        if f.read().strip() != "tyrant":
                            continue
                    s = status(pid)
                except (OSError, KeyError):
                    continue
                rss += s.get("VmRSS", 0)
                threads += s.get("Threads", 0)
                procs += 1
            peak["rss"] = max(peak["rss"], rss)
            peak["threads"] = max(peak["threads"], threads)
            peak["procs"] = max(peak["procs"], procs)
            if procs:
                rss_samples.append((procs, rss))
            time.sleep(0.5)
    finally:
        if p.returncode is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            p.wait()
    wall = time.monotonic() - t0
    cpu_s = ru.ru_utime + ru.ru_stime
    full = [r for n, r in rss_samples if n == peak["procs"]]
    with open(out_path) as f:
        text = f.read()
    lines = [l for l in text.splitlines() if l.startswith("l")]
    times = []
    for l in lines:
        w = l.split()
        try:
            times.append(float(w[1]))
        except (IndexError, ValueError):
            pass
    print("  exit status %d, wall %.1f s; leechers finished: %d of %d%s"
          % (p.returncode, wall, len(times), a.swarm,
             ", download times %.1f-%.1f s" % (min(times), max(times)) if times else ""))
    print("  tyrant processes at once: %d (tracker + seeder + leechers); peak summed VmRSS %.1f MiB "
          "(%.0f KiB per process at that peak), peak summed threads %d"
          % (peak["procs"], peak["rss"] / 1024, peak["rss"] / max(peak["procs"], 1), peak["threads"]))
    if full:
        print("  summed VmRSS while all %d were up: median %.1f MiB" % (peak["procs"], sorted(full)[len(full) // 2] / 1024))
    print("  CPU of the whole run: %.1f s (%.2f cores on average over the wall time)" % (cpu_s, cpu_s / wall))
    if p.returncode != 0:
        print("  run.sh failed; its output is in %s" % out_path)
    return p.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", type=int, default=500, help="light leechers, 0 = skip part 1 [500]")
    ap.add_argument("--max-peers", type=int, default=600)
    ap.add_argument("--secs", type=float, default=60.0, help="CPU window [60]")
    ap.add_argument("--request-every", type=float, default=10.0, help="seconds between requests [10]")
    ap.add_argument("--swarm", type=int, default=30, help="leechers in part 2, 0 = skip [30]")
    ap.add_argument("--swarm-size", type=int, default=4, help="MiB [4]")
    ap.add_argument("--timeout", type=float, default=400.0, help="part 2 bound, s [400]")
    ap.add_argument("--dir", default="/tmp/tyrant-footprint")
    a = ap.parse_args()
    if not os.access(TYRANT, os.X_OK):
        sys.exit("footprint: %s is not built (cargo build --release, or set TYRANT)" % TYRANT)
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if a.peers + 64 > soft:
        sys.exit("footprint: ulimit -n is %d, need > %d" % (soft, a.peers + 64))
    os.makedirs(a.dir, exist_ok=True)
    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("footprint: %s, %d cores (%s), %.1f GiB RAM; tyrant %s" % (
        time.strftime("%Y-%m-%d %H:%M:%S"), os.cpu_count(), model,
        os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, TYRANT), flush=True)
    ok = True
    if a.peers > 0:
        ok = part1(a) and ok
    if a.swarm > 0:
        ok = part2(a) and ok
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
