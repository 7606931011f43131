#!/usr/bin/env python3
"""cost: what a tyrant seeder spends per byte at capped rates, against the same seeder uncapped.

    cargo build --release
    python3 bench/cost.py                                   # full matrix, ~8.5 min
    python3 bench/cost.py --label before --json /tmp/cost-before.json
    python3 bench/cost.py --caps 2000 --peers 8 --warmup 5 --secs 20 --tyrant /tmp/tyrant-x

For each number N of downloaders (default 1, 8, 50) one tyrant seeder runs uncapped
(`--up 0`) and then with each cap C (default 20, 200, 2000 KiB/s), one cell at a time (the
machine has 2 cores: the seeder needs one, the downloaders the other). Every seeder runs
with `--up C --slots N+1` (N regular slots and the optimistic one, so all N downloaders are
unchoked, as in caps.py) and `--stats`; the downloaders are caps.py's light peers, all on
one `selectors` loop in this process, keeping `--pipeline` 16 KiB requests in flight each,
cycling over a 16 MiB torrent. The pipeline (64, as in caps.py) only matters uncapped: a
capped seeder always has requests queued. Uncapped, 64 lets the seeder batch (0.6-1.8 GiB/s
over loopback here); with `--pipeline 2` it serves nearly block by block (0.3-0.7 GiB/s),
its CPU per MiB is 1.6-2.2x higher and every `x unc` shrinks by as much.

After `--warmup` s a window of about `--secs` s is measured. It starts and ends on a fresh
stats tick of the seeder, so the bytes (the ticks' `uploaded=` difference) and the resources
(read within ~20 ms of each tick) cover the same time. The seeder's resources:
  CPU       sum over its threads of /proc/PID/task/TID/schedstat run time (ns resolution;
            /proc/PID/stat's utime+stime is recorded too, but its 10 ms steps are a third
            of the whole window's CPU at 20 KiB/s);
  vol/inv   sum over /proc/PID/task/*/status of voluntary_ctxt_switches and
            nonvoluntary_ctxt_switches.
Threads come and go (a reader and a writer per connection, the announcer), so the tasks
are read once a second and each thread counts from its first reading in the window (0 if
born in it) to its last, losing at most one second of a thread that exits. When the
seeder is stopped, os.wait4 gives its whole-run rusage (all threads, start-up and warm-up
included); it is reported when it differs from the window by more than 25 %.

An idle row per N (`--idle-secs`, 0 = skip): an uncapped seeder with N downloaders that
are connected, interested and unchoked but request nothing. Its CPU per second is the cost
of merely running (once-a-second ticks, choker rounds) that does not shrink with the rate:
~0.2 ms/s is 0.01 s/MiB at 20 KiB/s, several times the uncapped cost per MiB on its own.
The `idle %` column says how much of a cell's CPU that baseline explains.

Reading the table (markdown). Per cell: MiB served in the window; rate achieved (KiB/s)
and its % of the cap; the seeder's CPU in % of one core; the bench process's own (`rig %`:
near 100 the Python downloaders, not tyrant, bound the rate, which matters for the uncapped
cells; a line under the table says which uncapped cells were rig- or machine-bound);
`other %`, what the rest of the machine used meanwhile (/proc/stat; ~0 give or take 15, a
cargo build shows here); CPU s/MiB, voluntary and involuntary switches per MiB; `idle %`;
`x unc` = CPU s/MiB divided by the uncapped cell's at the same N; `goal` = PASS if
x unc <= 2 (the issue's goal), FAIL otherwise. A cell where `other %` exceeds 25 is measured
again once the machine has been quiet for 3 s (`--retries`, 1, only while the run is within
1.5x its planned time) and the cleaner try is kept; a note lists such cells. It is a
measurement: the exit status is 0 whatever the goal says, 1 only if the bench itself
failed. Compare two runs (`--json`, `--label before/after`) by ratios, not absolute times:
this is a shared, noisy machine.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caps  # noqa: E402  (light peers, torrent making, seeder start)

MIB = 1 << 20
CLK = os.sysconf("SC_CLK_TCK")
GOAL = 2.0  # capped CPU per MiB <= GOAL x uncapped, per the issue
# Other processes using more of a core than this spoil a cell. /proc/stat is sampled by
# the tick and our threads by the scheduler, so `other` is only good to ~+-15 % of a core.
BUSY = 0.25


def stat_cpu(pid):
    """utime + stime of the whole process (dead threads included), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def tasks(pid):
    """{tid: (run ns, voluntary, involuntary)} of every live thread."""
    out = {}
    base = "/proc/%d/task" % pid
    for tid in os.listdir(base):
        try:
            try:
                with open("%s/%s/schedstat" % (base, tid)) as f:
                    ns = int(f.read().split()[0])
            except FileNotFoundError:
                ns = 0  # a kernel without schedstat: end() falls back to utime+stime
            vol = inv = 0
            with open("%s/%s/status" % (base, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        inv = int(line.split()[1])
        except OSError:
            continue  # exited between listdir and open
        out[tid] = (ns, vol, inv)
    return out


def busy():
    """CPU seconds the whole machine spent: user, nice, system, irq, softirq (a thread's own
    run time includes the softirqs it ran, which /proc/stat files under softirq)."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return sum(int(v[i]) for i in (1, 2, 3, 6, 7)) / CLK


def rig_cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class Meter:
    """The seeder's resources over one window, thread by thread."""

    def __init__(self, pid):
        self.pid = pid
        self.t0, self.cpu0, self.rig0 = time.monotonic(), stat_cpu(pid), rig_cpu()
        self.busy0 = busy()
        self.first = tasks(pid)
        self.last = dict(self.first)
        self.threads = len(self.first)

    def sample(self):
        now = tasks(self.pid)
        for tid, v in now.items():
            self.first.setdefault(tid, (0, 0, 0))  # born inside the window
            self.last[tid] = v
        self.threads = max(self.threads, len(now))
        return now

    def end(self):
        live = self.sample()
        d = [sum(self.last[t][i] - self.first[t][i] for t in self.last) for i in range(3)]
        cpu_stat = stat_cpu(self.pid) - self.cpu0
        cpu, rig = d[0] / 1e9 or cpu_stat, rig_cpu() - self.rig0
        # The machine is shared: whatever else ran in the window (a cargo build...).
        other = busy() - self.busy0 - cpu_stat - rig
        return {"secs": time.monotonic() - self.t0, "cpu": cpu, "vol": d[1], "inv": d[2],
                "cpu_stat": cpu_stat, "rig_cpu": rig, "other_cpu": other,
                "threads": self.threads, "threads_gone": len(set(self.last) - set(live))}


def next_tick(eng, stats, after, limit=5.0):
    """Keep the downloaders going until the seeder writes a tick later than `after`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        tk = caps.ticks(stats)
        if tk and (after is None or tk[-1]["t"] > after["t"]):
            return tk[-1]
        eng.run_until(time.monotonic() + 0.02)
    raise RuntimeError("the seeder wrote no stats tick for %g s" % limit)


def reap(p):
    """Stop the seeder and return its whole-run rusage (caps.stop's wait would lose it)."""
    if p.returncode is not None:
        return None
    try:
        p.terminate()
        deadline = time.monotonic() + 10.0
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
    except ChildProcessError:  # already reaped (an interrupt inside this function)
        p.returncode = -1
        return None
    p.returncode = os.waitstatus_to_exitcode(status)  # so Popen never waits for it again
    return ru


def run_cell(a, tor, work, cap, n, idle=False):
    torrent, data_dir, info_hash, blocks = tor
    tag = "c%g-n%d%s" % (cap, n, "-idle" if idle else "")
    extra = ["--up", "%g" % cap, "--slots", str(n + 1), "--max-peers", str(max(60, n + 10))]
    eng = caps.Engine()
    proc = ru = None
    try:
        proc, port, stats, _trace = caps.start_seeder(torrent, data_dir, tag, work, extra)
        # pipeline 0 and no request_every: connected, interested, never asking.
        peers = [caps.LightPeer(eng, None, info_hash, blocks, 0 if idle else a.pipeline) for _ in range(n)]
        eng.connect_all(peers, ("127.0.0.1", port))
        eng.run_until(time.monotonic() + (min(a.warmup, 3.0) if idle else a.warmup))
        tk = caps.ticks(stats)
        tick0 = next_tick(eng, stats, tk[-1] if tk else None)
        m = Meter(proc.pid)
        end = m.t0 + (a.idle_secs if idle else a.secs) - 0.5  # the next tick ends it
        while time.monotonic() < end:
            eng.run_until(min(end, time.monotonic() + 1.0))
            m.sample()
        tick1 = next_tick(eng, stats, caps.ticks(stats)[-1])
        r = m.end()
        unchoked = sum(1 for p in peers if p.got_handshake and not p.choked and not p.closed)
        dropped = sorted(set(p.why for p in peers if p.closed))
        ru = reap(proc)
        last = caps.ticks(stats)[-1]
    finally:
        if proc is not None and ru is None:
            reap(proc)
        eng.close_all()
    r.update(cap=cap, n=n, idle=idle, tick_secs=tick1["t"] - tick0["t"],
             bytes=tick1["uploaded"] - tick0["uploaded"], unchoked=unchoked, dropped=dropped)
    r["rate"] = r["bytes"] / r["tick_secs"]  # B/s, the seeder's clock
    if ru is not None:
        r["run"] = {"cpu": ru.ru_utime + ru.ru_stime, "vol": ru.ru_nvcsw, "inv": ru.ru_nivcsw,
                    "bytes": last["uploaded"], "secs": last["t"]}
    return r


def quiet(limit=60.0):
    """Wait (up to `limit` s) until the rest of the machine has used < BUSY of a core for 3 s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        b0 = busy()
        time.sleep(3.0)
        if (busy() - b0) / 3.0 < BUSY:
            return


def measure(a, tor, work, cap, n, idle, retry_until):
    """run_cell; again after a quiet spell (--retries times, while the run is within its time
    budget) if something else ran meanwhile. The cleaner try is kept."""
    tries = []
    while True:
        r = run_cell(a, tor, work, cap, n, idle)
        tries.append(r)
        share = r["other_cpu"] / r["secs"]
        if share < BUSY or len(tries) > a.retries or time.monotonic() > retry_until:
            break
        print("    other processes used %.0f %% of a core: again once the machine is quiet"
              % (100 * share), flush=True)
        quiet()
    best = min(tries, key=lambda t: t["other_cpu"] / t["secs"])
    best["tries"] = len(tries)
    return best


def per_mib(r, k):
    return r[k] / (r["bytes"] / MIB) if r["bytes"] else float("nan")


def off(x, y):
    """x and y differ by more than 25 % (of y)."""
    return not y or abs(x / y - 1) > 0.25


def g3(x):
    """Three significant digits, no exponent, for table cells."""
    if x != x:
        return "-"
    if x == 0 or abs(x) >= 100:
        return "%.0f" % x
    return "%.*f" % (max(0, 2 - int(f"{abs(x):e}".split("e")[1])), x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--caps", default="20,200,2000", help="KiB/s, comma-separated [20,200,2000]")
    ap.add_argument("--peers", default="1,8,50", help="unchoked downloaders, comma-separated [1,8,50]")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before the window [5]")
    ap.add_argument("--secs", type=float, default=30.0, help="measured window, s [30]")
    ap.add_argument("--idle-secs", type=float, default=15.0, help="idle window per N, 0 = skip [15]")
    ap.add_argument("--pipeline", type=int, default=64, help="requests in flight per downloader [64]")
    ap.add_argument("--retries", type=int, default=1,
                    help="re-run a cell this often if other processes used >25%% of a core [1]")
    ap.add_argument("--tyrant", default=caps.TYRANT, help="binary [$TYRANT or target/release/tyrant]")
    ap.add_argument("--label", default="", help="printed in the header, e.g. before / after")
    ap.add_argument("--json", help="write every number to this file")
    a = ap.parse_args()
    cap_list = [float(x) for x in a.caps.split(",")]
    ns = [int(x) for x in a.peers.split(",")]
    if not os.access(a.tyrant, os.X_OK):
        sys.exit("cost: %s is not an executable (cargo build --release, or --tyrant)" % a.tyrant)
    caps.TYRANT = a.tyrant  # make_torrent and start_seeder read it at call time
    # SIGTERM as an exception too, so the finally blocks stop the seeders.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("# cost%s: %s, %d cores (%s)" % (" [%s]" % a.label if a.label else "",
          time.strftime("%Y-%m-%d %H:%M:%S"), os.cpu_count(), model))
    print("tyrant %s; window %g s after %g s warm-up (idle %g s); pipeline %d x 16 KiB; "
          "16 MiB torrent; one cell at a time" % (a.tyrant, a.secs, a.warmup, a.idle_secs,
                                                   a.pipeline), flush=True)
    work = tempfile.mkdtemp(prefix="tyrant-cost-")
    results, idles = [], {}
    try:
        tor = caps.make_torrent(work)
        planned = len(ns) * ((len(cap_list) + 1) * (a.warmup + a.secs + 1.5)
                             + (min(a.warmup, 3.0) + a.idle_secs + 1.5 if a.idle_secs > 0 else 0))
        retry_until = time.monotonic() + 1.5 * planned  # retries must not double the run
        for n in ns:
            if a.idle_secs > 0:
                print("  N=%d idle ..." % n, flush=True)
                idles[n] = measure(a, tor, work, 0, n, True, retry_until)
            for cap in [0.0] + cap_list:
                print("  N=%d --up %g ..." % (n, cap), flush=True)
                results.append(measure(a, tor, work, cap, n, False, retry_until))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    unc = {r["n"]: per_mib(r, "cpu") for r in results if r["cap"] == 0}
    print()
    print("| cap KiB/s | peers | MiB | rate KiB/s | % of cap | CPU % | rig % | other % "
          "| CPU s/MiB | vol/MiB | inv/MiB | idle % | x unc | goal |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|")
    notes, differ = [], []
    for r in results:
        cpu = per_mib(r, "cpu")
        idle = idles.get(r["n"])
        r["idle_share"] = idle["cpu"] / idle["secs"] * r["secs"] / r["cpu"] if idle and r["cpu"] else None
        r["x_uncapped"] = cpu / unc[r["n"]] if r["cap"] and unc.get(r["n"]) else None
        r["goal"] = None if r["x_uncapped"] is None else r["x_uncapped"] <= GOAL
        print("| %s | %d | %s | %s | %s | %.0f | %.0f | %.0f | %s | %s | %s | %s | %s | %s |" % (
            "%g" % r["cap"] if r["cap"] else "uncapped", r["n"], g3(r["bytes"] / MIB),
            g3(r["rate"] / 1024), "%.1f" % (100 * r["rate"] / (r["cap"] * 1024)) if r["cap"] else "-",
            100 * r["cpu"] / r["secs"], 100 * r["rig_cpu"] / r["secs"],
            max(0.0, 100 * r["other_cpu"] / r["secs"]), g3(cpu), g3(per_mib(r, "vol")), g3(per_mib(r, "inv")),
            "%.0f" % (100 * r["idle_share"]) if r["idle_share"] is not None else "-",
            g3(r["x_uncapped"]) if r["x_uncapped"] is not None else "ref",
            {None: "-", True: "PASS", False: "FAIL"}[r["goal"]]))
        if r["other_cpu"] / r["secs"] >= BUSY or r["tries"] > 1:
            notes.append("cap %g N %d: other processes used %.0f %% of a core in the window "
                         "(%d tries)" % (r["cap"], r["n"], 100 * r["other_cpu"] / r["secs"],
                                         r["tries"]))
        if r["unchoked"] != r["n"] or r["dropped"]:
            notes.append("cap %g N %d: %d of %d downloaders unchoked at the end; dropped: %s"
                         % (r["cap"], r["n"], r["unchoked"], r["n"], "; ".join(r["dropped"]) or "-"))
        # The stat-based CPU should match the schedstat one within its 10 ms steps.
        if abs(r["cpu_stat"] - r["cpu"]) > 0.03 + 0.1 * r["cpu"]:
            notes.append("cap %g N %d: utime+stime %.3f s vs schedstat %.3f s"
                         % (r["cap"], r["n"], r["cpu_stat"], r["cpu"]))
        run = r.get("run")
        if run and run["bytes"]:
            rc, rv = run["cpu"] / run["bytes"] * MIB, run["vol"] / run["bytes"] * MIB
            if off(rc, cpu) or off(rv, per_mib(r, "vol")):
                differ.append("| %s | %d | %s | %s | %s | %s | %s |" % (
                    "%g" % r["cap"] if r["cap"] else "uncapped", r["n"], g3(run["secs"]),
                    g3(run["bytes"] / MIB), g3(rc), g3(rv), g3(run["inv"] / run["bytes"] * MIB)))
    print()
    print("CPU = seeder run time summed over its threads (schedstat), CPU %% = that in %% of "
          "one core; switches summed over /proc/PID/task/*/status; rig %% = this bench "
          "process (the downloaders) in %% of one core; other %% = the rest of the machine "
          "(should be ~0, +-15); idle %% = "
          "share of the cell's CPU that the idle seeder with as many peers spends anyway; "
          "x unc = CPU s/MiB / uncapped CPU s/MiB at the same peer count; goal: x unc <= %g."
          % GOAL)
    capped = [r for r in results if r["goal"] is not None]
    print("goal met in %d of %d capped cells" % (sum(r["goal"] for r in capped), len(capped)))
    if idles:
        print()
        print("| idle, peers | threads | CPU ms/s | vol/s | inv/s | other % |")
        print("|---:|---:|---:|---:|---:|---:|")
        for n, r in idles.items():
            print("| %d | %d | %s | %s | %s | %.0f |" % (
                n, r["threads"], g3(1000 * r["cpu"] / r["secs"]), g3(r["vol"] / r["secs"]),
                g3(r["inv"] / r["secs"]), max(0.0, 100 * r["other_cpu"] / r["secs"])))
    top = [r for r in results if r["cap"] == 0]
    if top:
        # Uncapped, someone runs out of CPU: the downloaders' one Python core (rig-bound),
        # or the two cores between seeder and downloaders (machine-bound).
        print()
        for r in top:
            seeder, rig = 100 * r["cpu"] / r["secs"], 100 * r["rig_cpu"] / r["secs"]
            why = ("rig-bound: the downloaders' core was busy, the rig absorbs no more"
                   if rig >= 85 else
                   "machine-bound: seeder, downloaders (and others) used both cores"
                   if seeder + rig + max(0.0, 100 * r["other_cpu"] / r["secs"]) >= 170
                   else "no core saturated: bound per connection (one writer thread each, "
                   "request round trips)")
            print("uncapped N=%d: %s MiB/s, seeder %.0f %% + downloaders %.0f %% of a core; %s"
                  % (r["n"], g3(r["rate"] / MIB), seeder, rig, why))
    if differ:
        print()
        print("whole run (os.wait4: start-up, warm-up and shutdown included) differs from the "
              "window by > 25 % in these cells (fixed start-up work weighs most where few "
              "bytes flow):")
        print("| cap KiB/s | peers | run s | MiB | CPU s/MiB | vol/MiB | inv/MiB |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        print("\n".join(differ))
    else:
        print("whole-run rusage (os.wait4) agrees with the window within 25 % in every cell")
    for line in notes:
        print("note: " + line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"label": a.label, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "tyrant": a.tyrant, "args": vars(a), "cells": results,
                       "idle": list(idles.values())}, f, indent=1)
        print("wrote %s" % a.json)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("cost: interrupted")
