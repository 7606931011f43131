#!/usr/bin/env python3
"""realswarm: a swarm of real BitTorrent clients with tyrant as the measured peer.

The controlled analogue of the BitTyrant paper's live-swarm experiment (docs/realswarm.md):
every background leecher and the one seeder are real clients (aria2, transmission-daemon,
rtorrent, libtorrent via its Python bindings: whichever are installed), each capped at the
upload rate tyrant-lab's capacity distribution drew for it; the focus peer is tyrant, once
with --tyrant and once vanilla, in paired runs (same swarm, seed, caps, start times).
`--tyrant-args=--tyrant-excess,keep` gives the tyrant extra flags (tyrant-lab's
`tyrant_args`): the variant that keeps its excess capacity.

    cargo build --release -p tyrant -p tyrant-lab
    python3 reproduction/realswarm.py --out DIR [--reps R] [--cap C] [--peers N]
        [--size-mib M] [--duration D] [--seed S] [--stagger T]
        [--clients aria2,transmission,rtorrent,libtorrent] [--tyrant-args=A,B,...]
        [--keep-data] [--quick]

Steps: `tyrant-lab plan single ... -o DIR/plan.txt`; DIR/manifest.txt = the plan with
`client=KIND` on the seeder and every background leecher (kinds round-robin over the
clients, rotated per repetition from the seed, the same in both variants of a repetition)
and `--expiry` on the tracker (real clients re-announce on their own schedule); checked by
`tyrant-lab check`. Then every run: the tracker, each peer at its start time on its own
127.0.x.y address and port from the manifest; leechers download once and seed until the
run ends; every process is stopped at the end, whatever happened. One row per leecher goes
to DIR/results.csv in tyrant-lab's format (runs already there are skipped: an interrupted
experiment resumes); then `tyrant-lab report DIR`.

Per run, runs/RUN/ holds logs/ (every client's log), samples.csv (every peer's done / up /
down bytes about twice a second), caps.csv (each peer's measured upload rate against its
cap) and failures.txt (what went wrong, if anything).

libtorrent peers are sessions inside this Python process (each with its own threads);
every other client is its own OS process. Environment: TYRANT, TYRANT_LAB (the binaries,
default target/release/...). The libtorrent module may come from a venv: run the script
with that venv's python (e.g. .venv/bin/python reproduction/realswarm.py ...).
"""

import argparse
import csv
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ under tests/
sys.path.insert(0, os.path.join(ROOT, "tests"))
import realclients as rc  # noqa: E402

TYRANT = os.environ.get("TYRANT") or os.path.join(ROOT, "target", "release", "tyrant")
TYRANT_LAB = os.environ.get("TYRANT_LAB") or os.path.join(ROOT, "target", "release",
                                                          "tyrant-lab")
rc.TYRANT = TYRANT

KINDS = ("aria2", "transmission", "rtorrent", "libtorrent")
# Clients that cannot play a capped peer here, with the reason (printed when asked for).
EXCLUDED = {}
CSV_HEADER = ("run,group,variant,rep,cap,peer,strategy,role,focus,up,join,start,finish,"
              "seconds,bytes_up,bytes_down,time_scale,build,idle")
POLL = 0.5  # seconds between two polls of every client
GRACE = 15.0  # seconds tyrant may overrun its --time-limit
STAGGER = 10.0

DEFAULTS = dict(peers=13, cap=100.0, reps=10, size_mib=10.0, duration=360.0, seed=1,
                stagger=STAGGER)
QUICK = dict(peers=5, cap=100.0, reps=1, size_mib=2.0, duration=75.0, seed=1, stagger=5.0)


class Fatal(Exception):
    """A one-line error that ends the script (exit 2)."""


def say(msg):
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------
# The drivers of tests/realclients.py pick their listening port with free_port(ip); here
# every peer has the manifest's port, so it is pinned per address before a driver starts.

_free_port = rc.free_port
PINNED = {}


def pinned_free_port(ip="127.0.0.1", udp_too=False):
    if ip in PINNED:
        return PINNED.pop(ip)
    return _free_port(ip, udp_too)


rc.free_port = pinned_free_port


class RunScene:
    """What the drivers expect of rc.Scenario: a directory for their files, the address of
    the next client, the lists their processes and sessions go in."""

    def __init__(self, d):
        self.dir = d
        self.procs, self.sessions, self.clients = [], [], []
        self.ip = None

    def next_ip(self):
        return self.ip


# ---------------------------------------------------------------------------------------
# Payload: the bytes tyrant-lab writes (lab/src/runner.rs prepare_payload): the manifest
# seed xor "payload\0" seeds xoshiro256** (src/rng.rs), little-endian words.

M64 = (1 << 64) - 1


def _splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def payload_bytes(seed, size):
    x = seed ^ 0x7061796C6F616400
    s = []
    for _ in range(4):
        x, v = _splitmix(x)
        s.append(v)
    s0, s1, s2, s3 = s
    out = bytearray()
    words = (size + 7) // 8
    chunk = []
    for _ in range(words):
        r = (((s1 * 5) & M64) << 7 | ((s1 * 5) & M64) >> 57) & M64
        chunk.append((r * 9) & M64)
        t = (s1 << 17) & M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = ((s3 << 45) | (s3 >> 19)) & M64
        if len(chunk) == 65536:
            out += b"".join(w.to_bytes(8, "little") for w in chunk)
            chunk = []
    out += b"".join(w.to_bytes(8, "little") for w in chunk)
    return bytes(out[:size])


# ---------------------------------------------------------------------------------------
# The manifest (lab/src/manifest.rs FORMAT): records of key=value words.


def unesc(s):
    out, i, b = bytearray(), 0, s.encode()
    while i < len(b):
        if b[i:i + 1] == b"%":
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def unlist(s):
    return [] if s == "-" else [unesc(w) for w in s.split(",")]


def records(text):
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        yield words[0], dict(w.split("=", 1) for w in words[1:])


def parse_manifest(text):
    m = {"runs": []}
    runs = {}
    for kind, w in records(text):
        if kind in ("manifest", "torrent", "tracker"):
            m[kind] = w
        elif kind == "run":
            r = dict(w, peers=[], tracker_args=unlist(w["tracker_args"]))
            runs[w["name"]] = r
            m["runs"].append(r)
        elif kind == "peer":
            p = dict(w, args=unlist(w["args"]), up=float(w["up"]), start=float(w["start"]),
                     focus=w["focus"] == "true", client=unesc(w.get("client", "tyrant")))
            runs[w["run"]]["peers"].append(p)
    return m


def rotation(seed, rep, n):
    """Where the round-robin over the clients starts in repetition `rep`: from a hash of
    the seed, then one client further each repetition, so that over n repetitions every
    client seeds once and every background slot is played by every client."""
    h = hashlib.sha256(b"realswarm:%d:0" % seed).digest()
    return (int.from_bytes(h[:8], "big") + rep) % n


def rewrite(plan_text, kinds, seed, expiry):
    """The plan with client=KIND on every seeder and background leecher and --expiry on
    the tracker. Peers in a run are numbered in order (s0, p01, p02, ...; the focus p00 is
    skipped), so both variants of a repetition give each peer the same kind."""
    out, rep, i = [], None, 0
    for line in plan_text.splitlines():
        words = line.split()
        if words and words[0] == "run":
            w = dict(x.split("=", 1) for x in words[1:])
            rep, i = int(w["rep"]), 0
            words = [x + ",--expiry,%d" % expiry if x.startswith("tracker_args=") else x
                     for x in words]
            line = " ".join(words)
        elif words and words[0] == "peer":
            w = dict(x.split("=", 1) for x in words[1:])
            if "client" in w:
                raise Fatal("plan already names clients: %s" % line)
            if not (w["role"] == "leecher" and w["focus"] == "true"):
                if w["role"] not in ("seeder", "leecher"):
                    raise Fatal("peer %s has role %s; realswarm needs closed_loop=false"
                                % (w["id"], w["role"]))
                kind = kinds[(rotation(seed, rep, len(kinds)) + i) % len(kinds)]
                i += 1
                line = line + " client=" + kind
        out.append(line)
    return "\n".join(out) + "\n"


def body(text):
    """A manifest's records without comments, to compare two of them."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


# ---------------------------------------------------------------------------------------
# Peers


def bind_free(ip, port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as e:
            return "%s:%d is in use (%s)" % (ip, port, e.strerror)
    return None


class Real:
    """A background peer played by a real client (a driver of tests/realclients.py)."""

    def __init__(self, scene, p, torrent, data_dir, total):
        self.p, self.kind, self.total = p, p["client"], total
        self.data_dir = data_dir
        up = p["up"]
        self.cap_bytes = int(round(up * 1024))
        scene.ip = p["addr"]
        PINNED[p["addr"]] = int(p["port"])
        seed = p["role"] == "seeder"
        name = p["id"]
        self.spawned = time.monotonic()
        if self.kind == "aria2":
            # seed=True only chooses --seed-ratio=0.0 (seed for ever) over --seed-time=0
            # (exit when done): a leecher keeps seeding until the run ends.
            self.c = rc.Aria2(scene, name, torrent, data_dir, True,
                              extra=["--max-upload-limit=%d" % self.cap_bytes])
        elif self.kind == "transmission":
            # settings.json speed-limit-up is in kB/s of 1000 bytes (transmission-daemon's
            # speed units); only whole numbers.
            self.c = rc.Transmission(scene, name, torrent, data_dir, seed,
                                     up_kib=max(1, int(round(self.cap_bytes / 1000.0))))
        elif self.kind == "rtorrent":
            self.c = rc.RTorrent(scene, name, torrent, data_dir, seed,
                                 up_kib=max(1, int(up)))
            # set_kb takes whole KiB: set the exact byte rate.
            rc.scgi_call(self.c.rpc, "throttle.global_up.max_rate.set", "", self.cap_bytes)
        elif self.kind == "libtorrent":
            self.c = rc.Libtorrent(scene, name, torrent, data_dir, seed,
                                   up_kib=max(1, int(up)), settings={
                                       "listen_interfaces": "%s:%s" % (p["addr"], p["port"])})
            self.c.ses.apply_settings({"upload_rate_limit": self.cap_bytes})
        else:
            raise Fatal("unknown client %s" % self.kind)
        scene.clients.append(self.c)
        self.finished = None  # monotonic time it first had every byte
        self.sample = (0, 0, 0)
        self.dead = None

    def poll(self):
        """(done, up, down) bytes; records the moment it completes."""
        if self.dead:
            return self.sample
        c, k = self.c, self.kind
        try:
            if k == "aria2":
                c.alive()
                st = c.status()
                if st is None:
                    return self.sample
                rc.check(st["status"] != "error", "aria2: %s" % st.get("errorMessage"))
                checking = "verifiedLength" in st or "verifyIntegrityPending" in st
                done = 0 if checking else int(st["completedLength"])
                complete = not checking and done >= self.total and (
                    st["status"] == "complete" or st.get("seeder") == "true")
                s = (done, int(st["uploadLength"]), done)
            elif k == "transmission":
                c.alive()
                st = c.call("torrent-get", {"ids": [c.id], "fields": [
                    "haveValid", "status", "error", "errorString", "uploadedEver",
                    "downloadedEver"]})["torrents"][0]
                rc.check(not st["error"], "transmission: %s" % st["errorString"])
                done = st["haveValid"] if st["status"] not in (1, 2) else 0
                complete = done >= self.total
                s = (done, st["uploadedEver"], st["downloadedEver"])
            elif k == "rtorrent":
                c.alive()
                v = rc.scgi_call(c.rpc, "system.multicall", [
                    {"methodName": "d." + m, "params": [c.hash]} for m in
                    ("complete", "hashing", "completed_bytes", "up.total", "down.total")])
                complete_, hashing, done, up, down = [x[0] for x in v]
                done = 0 if hashing else done
                complete = complete_ == 1 and not hashing
                s = (done, up, down)
            else:
                st = c.h.status()
                rc.check(not st.errc.value(), "libtorrent: %s" % st.errc.message())
                checking = st.state in (rc.lt.torrent_status.checking_files,
                                        rc.lt.torrent_status.checking_resume_data)
                done = 0 if checking else st.total_wanted_done
                complete = st.is_seeding and not checking
                s = (done, st.total_payload_upload, st.total_payload_download)
        except rc.Failure as e:
            self.dead = str(e).splitlines()[0]
            return self.sample
        except Exception as e:  # an RPC that failed once: try again at the next poll
            self.last_error = "%s: %s" % (type(e).__name__, e)
            return self.sample
        self.sample = s
        if complete and self.finished is None:
            self.finished = time.monotonic()
        return s

    def signal_stop(self):
        c = self.c
        if isinstance(c, rc.ProcClient):
            if c.proc.poll() is None:
                c.proc.send_signal(signal.SIGTERM)  # transmission flushes its cache on it
        else:
            try:
                c.h.flush_cache()
            except Exception:
                pass
            c.stop()

    def procs(self):
        return [self.c.proc] if isinstance(self.c, rc.ProcClient) else []

    def data_file(self, name):
        return os.path.join(self.data_dir, name)


class Focus:
    """The measured peer: tyrant with exactly the manifest's arguments (+ --time-limit)."""

    kind = "tyrant"

    def __init__(self, p, out, log_dir, left):
        self.p = p
        args = list(p["args"])
        # Before the torrent path, which is last (as lab/src/runner/run.rs does).
        args[-1:-1] = ["--time-limit", "%.3f" % left]
        self.log = os.path.join(log_dir, p["id"] + ".log")
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen([TYRANT] + args, cwd=out, stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=f, env=rc.child_env())
        self.spawned = time.monotonic()
        self.stats = os.path.join(out, args[args.index("--stats") + 1])
        self.data_dir = os.path.join(out, args[args.index("--dir") + 1])
        self.finished = None
        self.dead = None

    def ticks(self):
        try:
            with open(self.stats) as f:
                lines = f.read().splitlines()
        except OSError:
            return []
        return [dict(w.split("=", 1) for w in l.split()[1:] if "=" in w)
                for l in lines if l.startswith(("tick ", "done "))]

    def poll(self):
        t = self.ticks()
        if not t:
            return (0, 0, 0)
        last = t[-1]
        pieces, have = int(last.get("pieces", 1) or 1), int(last.get("have", 0))
        if have >= pieces and self.finished is None:
            self.finished = time.monotonic()  # only for progress; results use `done`
        return (have, int(last.get("uploaded", 0)), int(last.get("downloaded", 0)))

    def done_line(self):
        try:
            with open(self.stats) as f:
                lines = [l for l in f.read().splitlines() if l.startswith("done ")]
        except OSError:
            return {}
        return dict(w.split("=", 1) for w in lines[-1].split()[1:] if "=" in w) if lines else {}

    def procs(self):
        return [self.proc]

    def data_file(self, name):
        return os.path.join(self.data_dir, name)


# ---------------------------------------------------------------------------------------
# CPU idle share (as lab/src/runner/observe.rs)


def cpu_jiffies():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    except (OSError, ValueError, IndexError):
        return None


def idle_share(a, b):
    if a is None or b is None or b[1] <= a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1])


# ---------------------------------------------------------------------------------------
# Upload rates against caps


def rate_report(series, cap_kib):
    """From [(t, up_bytes)]: (bytes up, seconds from the first to the last upload, mean
    KiB/s over them, highest and median KiB/s over the 10 s windows in between)."""
    if len(series) < 2 or series[-1][1] <= 0:
        return None
    first = next(i for i, (_, u) in enumerate(series) if u > 0)
    t0 = series[max(0, first - 1)][0]
    last = max((i for i in range(1, len(series)) if series[i][1] > series[i - 1][1]),
               default=None)
    if last is None:
        return None
    t1, up = series[last][0], series[last][1]
    window = t1 - t0
    if window < 5:
        return None
    rates, j = [], max(0, first - 1)
    for i in range(j, last + 1):
        # j: the latest sample at least 10 s before sample i (shorter spans are noisy).
        while j + 1 < i and series[i][0] - series[j + 1][0] >= 10.0:
            j += 1
        dt = series[i][0] - series[j][0]
        if dt >= 10.0:
            rates.append((series[i][1] - series[j][1]) / dt / 1024)
    if not rates:
        return up, window, up / window / 1024, 0.0, 0.0
    return up, window, up / window / 1024, max(rates), statistics.median(rates)


# ---------------------------------------------------------------------------------------
# One run


def stop_all(peers, procs_extra, failures):
    """SIGTERM every process (libtorrent sessions removed), then wait; kill stragglers."""
    for x in peers:
        if isinstance(x, Real):
            try:
                x.signal_stop()
            except Exception as e:
                failures.append("%s: stopping: %s" % (x.p["id"], e))
    for _, p in procs_extra:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    procs = [(x.p["id"], q) for x in peers for q in x.procs()] + list(procs_extra)
    deadline = time.monotonic() + 10
    for name, q in procs:
        try:
            q.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            q.kill()
            failures.append("%s: did not stop within 10 s of SIGTERM; killed" % name)
            try:
                q.wait(timeout=10)
            except subprocess.TimeoutExpired:
                failures.append("%s: pid %d survives SIGKILL" % (name, q.pid))


CLIENT_BINARIES = {"tyrant", "aria2c", "transmission-daemon", "rtorrent"}


def leftovers(out):
    """PIDs of client processes (not this one) still running in `out`: working directory
    under it and one of the client binaries."""
    me, found = os.getpid(), []
    real = os.path.realpath(out)
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % d)
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue
        if (cwd == real or cwd.startswith(real + os.sep)) and \
                os.path.basename(argv0) in CLIENT_BINARIES:
            found.append(int(d))
    return found


def run_one(m, run, out, payload_sha1, keep_data):
    name = run["name"]
    rdir = os.path.join(out, "runs", name)
    if os.path.exists(rdir):
        shutil.rmtree(rdir)  # an interrupted earlier attempt: start over
    log_dir = os.path.join(rdir, "logs")
    for sub in ("logs", "data", "stats"):
        os.makedirs(os.path.join(rdir, sub))
    torrent = os.path.join(out, m["torrent"]["path"])
    fname = m["torrent"]["file"]
    total = int(m["torrent"]["size"])
    duration = float(run["duration"])
    tr = m["tracker"]
    for p in run["peers"]:
        busy = bind_free(p["addr"], int(p["port"]))
        if busy:
            raise Fatal("%s: peer %s: port %s" % (name, p["id"], busy))
    busy = bind_free(tr["addr"], int(tr["port"]))
    if busy:
        raise Fatal("%s: tracker port %s" % (name, busy))

    scene = RunScene(log_dir)
    failures, peers, extra = [], [], []
    unstarted = []  # (peer, offset) of clients that failed to start: unfinished rows
    samples = open(os.path.join(rdir, "samples.csv"), "w")
    samples.write("t,peer,client,done,up,down\n")
    cpu0 = t0 = None
    interrupted = False
    try:
        with open(os.path.join(log_dir, "tracker.log"), "wb") as f:
            trk = subprocess.Popen([TYRANT] + run["tracker_args"], cwd=out, stdout=f,
                                   stderr=f, stdin=subprocess.DEVNULL, env=rc.child_env())
        extra.append(("tracker", trk))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((tr["addr"], int(tr["port"])), timeout=0.2).close()
                break
            except OSError:
                if trk.poll() is not None or time.monotonic() > deadline:
                    raise Fatal("%s: the tracker did not listen on %s:%s (see %s)" % (
                        name, tr["addr"], tr["port"], os.path.join(log_dir, "tracker.log")))
                time.sleep(0.05)
        t0 = time.monotonic()
        cpu0 = cpu_jiffies()
        todo = sorted(run["peers"], key=lambda p: p["start"])
        last_poll = 0.0
        while True:
            now = time.monotonic() - t0
            if now >= duration:
                break
            while todo and todo[0]["start"] <= now:
                p = todo.pop(0)
                left = duration - now
                if left < 0.5:
                    continue
                if p["client"] == "tyrant":
                    peers.append(Focus(p, out, log_dir, left))
                    continue
                if p["role"] == "seeder":
                    d = os.path.join(rdir, "data", p["id"])
                    os.makedirs(d)
                    shutil.copyfile(os.path.join(out, "seed", fname), os.path.join(d, fname))
                else:
                    d = os.path.join(rdir, "data", p["id"])
                try:
                    peers.append(Real(scene, p, torrent, d, total))
                except Exception as e:  # noqa: BLE001 - any driver error: a failed peer
                    unstarted.append((p, now))
                    failures.append("%s (%s): did not start: %s" % (
                        p["id"], p["client"], str(e).splitlines()[0]))
            if now - last_poll >= POLL:
                last_poll = now
                for x in peers:
                    d, u, w = x.poll()
                    t = time.monotonic() - t0
                    samples.write("%.2f,%s,%s,%d,%d,%d\n" % (t, x.p["id"], x.kind, d, u, w))
            time.sleep(0.05)
        # tyrant stops at its --time-limit, i.e. now; its `done` line comes on exit.
        for x in peers:
            if isinstance(x, Focus):
                try:
                    x.proc.wait(timeout=GRACE)
                except subprocess.TimeoutExpired:
                    failures.append("%s: tyrant overran its time limit; killed" % x.p["id"])
                    x.proc.kill()
                if x.proc.returncode not in (0, None, -9):
                    failures.append("%s: tyrant exited with %s (see %s)" % (
                        x.p["id"], x.proc.returncode, x.log))
        for x in peers:
            if isinstance(x, Real):
                x.poll()  # a last look at the counters
                if x.dead:
                    failures.append("%s (%s): died: %s" % (x.p["id"], x.kind, x.dead))
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        samples.close()
        stop_all(peers, extra, failures)
        left = leftovers(out)
        for pid in left:
            failures.append("pid %d was still running after the run; killed" % pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        scene.sessions, scene.clients = [], []
        if interrupted:
            shutil.rmtree(rdir, ignore_errors=True)
    idle = idle_share(cpu0, cpu_jiffies())

    # Rows, after checking every finished leecher's bytes.
    rows = []
    for x in peers:
        p = x.p
        start = x.spawned - t0
        up_b, down_b = 0, 0
        secs = None
        if isinstance(x, Focus):
            dl = x.done_line()
            up_b, down_b = int(dl.get("uploaded", 0)), int(dl.get("downloaded", 0))
            if dl.get("complete") == "true" and dl.get("download_time"):
                secs = float(dl["download_time"])
        else:
            _, up_b, down_b = x.sample
            if x.finished is not None:
                secs = x.finished - x.spawned
        if secs is not None and p["role"] != "seeder":
            f = x.data_file(fname)
            ok = os.path.isfile(f) and os.path.getsize(f) == total and rc.digest(f) == payload_sha1
            if not ok:
                failures.append("%s (%s): reported complete, but its %s differs from the "
                                "payload" % (p["id"], x.kind, fname))
                secs = None
        if p["role"] == "seeder":
            continue
        rows.append([name, run["group"], run["variant"], run["rep"], fmt_num(run["cap"]),
                     p["id"], p["strategy"], p["role"], 1 if p["focus"] else 0,
                     fmt_num(p["up"]), 0, "%.3f" % start,
                     "" if secs is None else "%.3f" % (start + secs),
                     "" if secs is None else "%.3f" % secs, up_b, down_b,
                     m["manifest"]["time_scale"], None, "" if idle is None else "%.3f" % idle])
    for p, start in unstarted:
        if p["role"] != "seeder":
            rows.append([name, run["group"], run["variant"], run["rep"], fmt_num(run["cap"]),
                         p["id"], p["strategy"], p["role"], 0, fmt_num(p["up"]), 0,
                         "%.3f" % start, "", "", 0, 0, m["manifest"]["time_scale"], None,
                         "" if idle is None else "%.3f" % idle])
    write_caps(rdir, run)
    if failures:
        with open(os.path.join(rdir, "failures.txt"), "w") as f:
            f.write("".join(x + "\n" for x in failures))
    if not keep_data:
        shutil.rmtree(os.path.join(rdir, "data"), ignore_errors=True)
    return rows, failures, idle, peers


def fmt_num(x):
    """Numbers as the manifest writes them (Rust's shortest form: 100, 30.9)."""
    x = float(x)
    return str(int(x)) if x == int(x) else repr(x)


# ---------------------------------------------------------------------------------------
# The experiment


def check_binaries():
    for name, path in (("tyrant", TYRANT), ("tyrant-lab", TYRANT_LAB)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise Fatal("no %s binary at %s (cargo build --release -p tyrant -p tyrant-lab, "
                        "or set %s)" % (name, path, name.upper().replace("-", "_")))


def pick_clients(spec):
    wanted = [k.strip() for k in spec.split(",") if k.strip()]
    if not wanted:
        raise Fatal("--clients is empty; give some of %s" % ",".join(KINDS))
    bad = [k for k in wanted if k not in KINDS]
    if bad:
        raise Fatal("unknown client(s) %s in --clients; known: %s" % (
            ",".join(bad), ",".join(KINDS)))
    have = []
    for k in dict.fromkeys(wanted):
        why = rc.missing(k) or EXCLUDED.get(k)
        if why:
            say("realswarm: leaving out %s: %s" % (k, why))
        else:
            have.append(k)
    if not have:
        raise Fatal("none of the clients %s can run here (install one: %s)" % (
            ",".join(wanted), "; ".join(rc.INSTALL.get(k, k) for k in wanted)))
    return have


def build_of():
    try:
        r = subprocess.run([TYRANT, "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=30)
        w = r.stdout.decode().split()
        return w[-1] if r.returncode == 0 and w else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def lab(*args):
    r = subprocess.run([TYRANT_LAB] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    text = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise Fatal("tyrant-lab %s failed: %s" % (args[0], " ".join(text.split())[:300]))
    return text


def prepare(a, kinds):
    out = a.out
    os.makedirs(out, exist_ok=True)
    plan = os.path.join(out, "plan.txt.new")
    lab("plan", "single", "peers=%d" % a.peers, "caps=%s" % fmt_num(a.cap),
        "reps=%d" % a.reps, "seed=%d" % a.seed, "size_mib=%s" % fmt_num(a.size_mib),
        "closed_loop=false", "duration=%s" % fmt_num(a.duration),
        "stagger=%s" % fmt_num(a.stagger), "statistic=geomean",
        "name=%s" % os.path.basename(os.path.normpath(out)),
        "seeders=%s" % fmt_num(a.seeder_cap), "tracker_port=%d" % a.tracker_port,
        "base_port=%d" % a.base_port, *(["tyrant_args=" + a.tyrant_args] if a.tyrant_args else []),
        "-o", plan)
    with open(plan) as f:
        text = rewrite(f.read(), kinds, a.seed, int(a.duration) + 60)
    mpath = os.path.join(out, "manifest.txt")
    ran = []
    if os.path.exists(mpath):
        with open(mpath) as f:
            old = f.read()
        if body(old) != body(text):
            os.remove(plan)
            raise Fatal("%s holds a different manifest (other options or clients?); use "
                        "another --out" % mpath)
        ran = [l for l in old.splitlines() if l.startswith("# realswarm ran ")]
    ran.append("# realswarm ran unix=%d build=%s python=%s clients=%s" % (
        time.time(), build_of(), sys.executable, ",".join(kinds)))
    with open(mpath, "w") as f:
        f.write(text + "\n".join(ran) + "\n")
    os.replace(plan, os.path.join(out, "plan.txt"))
    lab("check", mpath)
    m = parse_manifest(text)
    # The payload and its torrent.
    seed_dir = os.path.join(out, "seed")
    os.makedirs(seed_dir, exist_ok=True)
    pfile = os.path.join(seed_dir, m["torrent"]["file"])
    size = int(m["torrent"]["size"])
    if not (os.path.isfile(pfile) and os.path.getsize(pfile) == size):
        data = payload_bytes(int(m["manifest"]["seed"]), size)
        with open(pfile + ".tmp", "wb") as f:
            f.write(data)
        os.replace(pfile + ".tmp", pfile)
    url = "http://%s:%s/announce" % (m["tracker"]["addr"], m["tracker"]["port"])
    r = subprocess.run([TYRANT, "make", pfile, "--announce", url, "--piece-size",
                        m["torrent"]["piece_kib"], "-o", os.path.join(out, m["torrent"]["path"])],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=out)
    if r.returncode != 0:
        raise Fatal("tyrant make failed: %s" % r.stdout.decode(errors="replace").strip())
    return m, rc.digest(pfile)


def done_runs(csv_path, build):
    if not os.path.exists(csv_path):
        with open(csv_path, "w") as f:
            f.write(CSV_HEADER + "\n")
        return set()
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    if not rows or ",".join(rows[0]) != CSV_HEADER:
        raise Fatal("%s has another header; use another --out" % csv_path)
    builds = {r[17] for r in rows[1:] if len(r) > 17}
    if builds - {build}:
        raise Fatal("%s holds runs of tyrant build %s and %s is build %s: one experiment, "
                    "one binary (use another --out)" % (csv_path, ",".join(sorted(builds)),
                                                       TYRANT, build))
    return {r[0] for r in rows[1:] if r}


def write_caps(rdir, run):
    """runs/RUN/caps.csv: every peer's measured upload rate (from samples.csv) vs its cap."""
    series = {}
    with open(os.path.join(rdir, "samples.csv")) as f:
        for r in csv.DictReader(f):
            series.setdefault(r["peer"], (r["client"], []))[1].append(
                (float(r["t"]), int(r["up"])))
    with open(os.path.join(rdir, "caps.csv"), "w") as f:
        f.write("peer,client,role,cap_kib,bytes_up,upload_window_s,mean_kib,peak10s_kib,"
                "median10s_kib\n")
        for p in run["peers"]:
            kind, ups = series.get(p["id"], ("-", []))
            r = rate_report(ups, p["up"])
            if r:
                f.write("%s,%s,%s,%s,%d,%.1f,%.2f,%.2f,%.2f\n" % (
                    (p["id"], kind, p["role"], fmt_num(p["up"])) + r))


def cap_summary(out):
    """Per client kind: the measured upload rate / cap over every run in `out`."""
    by = {}
    for d in sorted(os.listdir(os.path.join(out, "runs"))):
        p = os.path.join(out, "runs", d, "caps.csv")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for r in csv.DictReader(f):
                cap = float(r["cap_kib"])
                by.setdefault(r["client"], []).append(tuple(
                    float(r[k]) / cap for k in ("mean_kib", "median10s_kib", "peak10s_kib")))
    lines = ["upload rate / cap per client, medians over every peer of every run [range]: "
             "mean over the peer's upload window | median 10 s window | highest 10 s window"]
    for k in sorted(by):
        cols = list(zip(*by[k]))
        lines.append("  %-12s n=%-3d %s" % (k, len(by[k]), " | ".join(
            "%.2f [%.2f-%.2f]" % (statistics.median(c), min(c), max(c)) for c in cols)))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (resumable)")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--cap", type=float, help="the focus peer's upload cap, KiB/s [100]")
    ap.add_argument("--peers", type=int, help="leechers, the focus peer included [13]")
    ap.add_argument("--size-mib", type=float)
    ap.add_argument("--duration", type=float, help="nominal seconds per run [360]")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--stagger", type=float, help="leechers start in [0, T) s [10]")
    ap.add_argument("--seeder-cap", type=float, default=128.0, help="KiB/s [128]")
    ap.add_argument("--clients", default=",".join(KINDS))
    ap.add_argument("--tracker-port", type=int, default=7969)
    ap.add_argument("--base-port", type=int, default=21000)
    ap.add_argument("--tyrant-args", help="extra flags of the tyrant focus peer, comma-separated "
                    "(e.g. --tyrant-args=--tyrant-excess,keep)")
    ap.add_argument("--keep-data", action="store_true", help="keep the leechers' data")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 rep, 5 peers, 2 MiB, 75 s runs (~3-4 min)")
    a = ap.parse_args()
    base = QUICK if a.quick else DEFAULTS
    for k, v in base.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.out = os.path.abspath(a.out)
    try:
        check_binaries()
        kinds = pick_clients(a.clients)
        build = build_of()
        m, sha1 = prepare(a, kinds)
        csv_path = os.path.join(a.out, "results.csv")
        have = done_runs(csv_path, build)
        runs = m["runs"]
        say("realswarm: %d runs of %s s, %d peers (%s) + tyrant, %s MiB, clients %s; in %s"
            % (len(runs), fmt_num(a.duration), a.peers - 1,
               "1 seeder at %s KiB/s" % fmt_num(a.seeder_cap), fmt_num(a.size_mib),
               ",".join(kinds), a.out))
        total_fail = 0
        for i, run in enumerate(runs):
            if run["name"] in have:
                say("run %d/%d %s: already in results.csv, skipped" % (i + 1, len(runs),
                                                                       run["name"]))
                continue
            t = time.monotonic()
            rows, failures, idle, peers = run_one(m, run, a.out, sha1, a.keep_data)
            for r in rows:
                r[17] = build
            with open(csv_path, "a", newline="") as f:
                csv.writer(f, lineterminator="\n").writerows(rows)
            total_fail += len(failures)
            focus = [r for r in rows if r[8] == 1]
            done = sum(1 for r in rows if r[13] and r[8] == 0)
            say("run %d/%d %s: focus %s %s; background %d/%d finished; %d failure(s)%s; "
                "idle %s; %.0f s" % (
                    i + 1, len(runs), run["name"], focus[0][5] if focus else "-",
                    ("%s s" % focus[0][13]) if focus and focus[0][13] else "unfinished",
                    done, sum(1 for r in rows if r[8] == 0), len(failures),
                    (" (" + "; ".join(failures[:2]) + ")") if failures else "",
                    "-" if idle is None else "%.0f %%" % (100 * idle), time.monotonic() - t))
        for run in runs:  # caps.csv again from samples.csv: runs of older versions too
            rdir = os.path.join(a.out, "runs", run["name"])
            if os.path.exists(os.path.join(rdir, "samples.csv")):
                write_caps(rdir, run)
        say(cap_summary(a.out))
        say(lab("report", a.out).rstrip())
        return 1 if total_fail else 0
    except Fatal as e:
        say("realswarm: error: %s" % e)
        return 2


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so that the run's `finally` stops every client.
    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("realswarm: interrupted; every client of the run was stopped", flush=True)
        sys.exit(130)
