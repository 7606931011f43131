#!/usr/bin/env python3
"""Interop tests: tyrant against libtorrent (rasterbar), all on 127.0.0.1.

Run by `./run.sh test` after the cargo tests, or by hand:

    pip install libtorrent==2.1.1
    TYRANT=target/release/tyrant python3 tests/interop.py [SCENARIO ...]

Each scenario runs in its own temp dir with its own `tyrant tracker`; every wait is
bounded, every tyrant process is killed and every libtorrent session dropped when the
scenario ends, whatever happened. One line per scenario, `PASS name (X.X s)` or
`FAIL name: reason`, then `interop: N passed, M failed`; the exit code is 1 if any
failed, 2 if libtorrent cannot be imported.

Environment:
  TYRANT             the tyrant binary [target/release/tyrant]
  INTEROP_TIMEOUT    the bound on each wait, in seconds [120]
  INTEROP_RUST_LOG   RUST_LOG for the tyrant processes [info]
  INTEROP_KEEP=1     keep the temp dirs (and the tyrant logs in them) for a look
  INTEROP_VERBOSE=1  print libtorrent's alerts as they come
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

try:
    import libtorrent as lt
except ImportError as e:  # pragma: no cover - depends on the machine
    print(
        "interop: cannot import libtorrent (%s); install the bindings with: "
        "pip install libtorrent==2.1.1" % e
    )
    sys.exit(2)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYRANT = os.environ.get("TYRANT") or os.path.join(ROOT, "target", "release", "tyrant")
TIMEOUT = float(os.environ.get("INTEROP_TIMEOUT", "120"))
RUST_LOG = os.environ.get("INTEROP_RUST_LOG", "info")
KEEP = os.environ.get("INTEROP_KEEP") == "1"
VERBOSE = os.environ.get("INTEROP_VERBOSE") == "1"
# The tracker's announce interval: short, so that peers that joined late are found by
# the earlier ones at their next announce.
TRACKER_INTERVAL = 5


class Failure(Exception):
    """A scenario's check failed; the message is the reason printed after FAIL."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def payload(path, n, seed):
    """A reproducible pseudo-random file of n bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        i = 0
        while n > 0:
            block = hashlib.sha512(("%s:%d" % (seed, i)).encode()).digest() * 64
            block = block[:n]
            f.write(block)
            n -= len(block)
            i += 1


def digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree(root):
    """{relative path: (size, sha1)} of every file under root (empty files included)."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            p = os.path.join(d, name)
            out[os.path.relpath(p, root)] = (os.path.getsize(p), digest(p))
    return out


def same_data(want, got):
    """None if the file or directory `got` holds exactly what `want` holds, else why not."""
    if not os.path.exists(got):
        return "%s is missing" % got
    if os.path.isfile(want):
        if not os.path.isfile(got):
            return "%s is not a file" % got
        if os.path.getsize(want) != os.path.getsize(got):
            return "%s has %d bytes, want %d" % (got, os.path.getsize(got), os.path.getsize(want))
        if digest(want) != digest(got):
            return "%s differs from the original" % got
        return None
    a, b = tree(want), tree(got)
    if a != b:
        missing = sorted(set(a) - set(b))
        extra = sorted(set(b) - set(a))
        differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        return "%s: missing %s, extra %s, differing %s" % (got, missing, extra, differ)
    return None


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + line for line in lines[-n:])


class Scenario:
    """Owns a temp dir, the tyrant processes and the libtorrent sessions of one scenario;
    `close` kills and drops all of them."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="interop-%s-" % name)
        self.procs = []  # (name, Popen, stdout path, stderr path)
        self.sessions = []  # (name, lt.session)
        self.tracker_url = None

    # ---- tyrant processes ----

    def spawn(self, name, args, cwd=None):
        out = os.path.join(self.dir, name + ".out")
        err = os.path.join(self.dir, name + ".log")
        env = dict(os.environ, RUST_LOG=RUST_LOG)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            p = subprocess.Popen(
                [TYRANT] + args,
                stdin=subprocess.DEVNULL,
                stdout=fo,
                stderr=fe,
                cwd=cwd or self.dir,
                env=env,
            )
        self.procs.append((name, p, out, err))
        return p

    def output(self, name):
        with open(os.path.join(self.dir, name + ".out"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_output(self, name, pattern, timeout=30):
        """Wait until process `name` printed a line matching `pattern`; the match."""
        proc = [p for (n, p, _, _) in self.procs if n == name][0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.output(name), re.M)
            if m:
                return m
            if proc.poll() is not None:
                raise Failure("%s exited with %s before printing /%s/:\n%s"
                              % (name, proc.returncode, pattern, self.log_tail(name)))
            time.sleep(0.05)
        raise Failure("%s printed no /%s/ in %d s" % (name, pattern, timeout))

    def log_tail(self, name, n=15):
        return tail(os.path.join(self.dir, name + ".log"), n)

    def start_tracker(self):
        self.spawn("tracker", ["tracker", "--port", "0", "--bind", "127.0.0.1",
                               "--interval", str(TRACKER_INTERVAL)])
        m = self.wait_output("tracker", r"^tracker listening on ([0-9.]+):(\d+)\s*$")
        self.tracker_url = "http://%s:%s/announce" % (m.group(1), m.group(2))
        return self.tracker_url

    def make(self, path, out, piece_kib=None):
        """`tyrant make`; the info-hash it printed."""
        args = [TYRANT, "make", path, "--announce", self.tracker_url or
                "http://127.0.0.1:1/announce", "-o", out]
        if piece_kib:
            args += ["--piece-size", str(piece_kib)]
        r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        check(r.returncode == 0, "tyrant make failed: %s" % r.stderr.decode(errors="replace"))
        text = r.stdout.decode()
        m = re.search(r"info_hash=([0-9a-f]{40})", text)
        check(m is not None and text.startswith(out), "tyrant make printed %r" % text)
        return m.group(1)

    def seeder(self, name, torrent, data_dir, extra=()):
        return self.spawn(name, ["--seed", "--dir", data_dir, "--port", "0", "--bind",
                                 "127.0.0.1", "-q"] + list(extra) + [torrent])

    def leecher(self, name, torrent, data_dir, extra=()):
        os.makedirs(data_dir, exist_ok=True)
        stats = os.path.join(self.dir, name + ".stats")
        return self.spawn(name, ["--dir", data_dir, "--port", "0", "--bind", "127.0.0.1",
                                 "--stop-after-download", "--time-limit", str(int(TIMEOUT)),
                                 "--stats", stats, "-q"] + list(extra) + [torrent])

    def wait_exit(self, name, deadline):
        proc = [p for (n, p, _, _) in self.procs if n == name][0]
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Failure("tyrant %s did not finish in time:\n%s" % (name, self.log_tail(name)))
        out = self.output(name)
        check(proc.returncode == 0, "tyrant %s exited with %d:\n%s"
              % (name, proc.returncode, self.log_tail(name)))
        check(re.search(r"^complete: ", out, re.M) is not None,
              "tyrant %s exited without printing `complete:` (stdout %r):\n%s"
              % (name, out, self.log_tail(name)))

    def assert_running(self, name):
        proc = [p for (n, p, _, _) in self.procs if n == name][0]
        check(proc.poll() is None, "tyrant %s exited early with %s:\n%s"
              % (name, proc.returncode, self.log_tail(name)))

    # ---- libtorrent ----

    def session(self, name):
        pack = {
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            # tyrant speaks TCP only.
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            # Every peer of the test lives on 127.0.0.1.
            "allow_multiple_connections_per_ip": True,
            "announce_to_all_trackers": True,
            "announce_to_all_tiers": True,
            "min_reconnect_time": 1,
            "user_agent": "interop-libtorrent/" + lt.__version__,
            "alert_mask": (lt.alert.category_t.error_notification
                           | lt.alert.category_t.status_notification
                           | lt.alert.category_t.tracker_notification
                           | lt.alert.category_t.connect_notification
                           | lt.alert.category_t.peer_notification
                           | lt.alert.category_t.storage_notification),
        }
        s = lt.session(pack)
        self.sessions.append((name, s))
        return s

    def add(self, session, torrent, save_path):
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
        atp.save_path = save_path
        return session.add_torrent(atp)

    def close(self):
        for name, p, _, _ in self.procs:
            if p.poll() is None:
                p.kill()
        for name, p, _, _ in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for name, s in self.sessions:
            try:
                s.pause()
                for h in s.get_torrents():
                    s.remove_torrent(h)
            except Exception:
                pass
        self.sessions = []  # the sessions close when the last reference goes
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


class Watch:
    """Drains the alerts of some libtorrent sessions and counts what matters to us.

    `disconnects` counts dropped connections: ones that had been up for a while and did
    not end as libtorrent's own resolution of a duplicate (two connections to one peer id
    when both sides dial: libtorrent keeps one and closes the other, and with our test
    settings redials the address it knows every second; tyrant seeds dial too)."""

    def __init__(self, sessions):
        self.sessions = sessions  # [(name, session)]
        self.disconnects = {}
        self.errors = []
        self.connects = {}
        self.since = {}  # (name, endpoint) -> when it connected

    def poll(self):
        for name, s in self.sessions:
            for a in s.pop_alerts():
                kind = type(a).__name__
                if VERBOSE:
                    print("  [%s] %s: %s" % (name, kind, a.message()), flush=True)
                if kind == "peer_disconnected_alert":
                    began = self.since.pop((name, str(a.endpoint)), None)
                    brief = began is not None and time.monotonic() - began < 2.0
                    if "duplicate peer-id" not in a.message() and not brief:
                        self.disconnects[name] = self.disconnects.get(name, 0) + 1
                elif kind == "peer_connect_alert":
                    self.connects[name] = self.connects.get(name, 0) + 1
                    self.since[(name, str(a.endpoint))] = time.monotonic()
                elif kind in ("torrent_error_alert", "file_error_alert",
                              "hash_failed_alert", "listen_failed_alert"):
                    self.errors.append("%s: %s" % (name, a.message()))


def nudge(handles):
    """Ask every tracker for peers again (libtorrent waits its interval otherwise)."""
    for h in handles:
        try:
            h.force_reannounce(0, -1, lt.reannounce_flags_t.ignore_min_interval)
        except TypeError:  # older bindings
            h.force_reannounce()


def wait_lt(handles, watch, deadline, what, procs=(), sc=None, renudge=10, tick=None):
    """Wait until every libtorrent handle is seeding. `procs` names tyrant processes
    that must keep running meanwhile; `tick` is called on every round."""
    last_nudge = time.monotonic()
    while True:
        watch.poll()
        if tick is not None:
            tick()
        check(not watch.errors, "libtorrent reported: %s" % "; ".join(watch.errors[:5]))
        sts = [h.status() for h in handles]
        if all(st.is_seeding for st in sts):
            return sts
        if sc is not None:
            for name in procs:
                sc.assert_running(name)
        now = time.monotonic()
        if now > deadline:
            states = ", ".join("%s %.0f%% (%d peers, %s)" % (st.name, st.progress * 100,
                               st.num_peers, st.state) for st in sts)
            raise Failure("%s: not complete in time: %s" % (what, states))
        if now - last_nudge > renudge:
            nudge([h for h, st in zip(handles, sts) if not st.is_seeding])
            last_nudge = now
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------
# Scenarios


def scenario_lt_leech_from_tyrant(sc):
    """a. A libtorrent leecher downloads a single file from a tyrant seeder."""
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    payload(os.path.join(seed_dir, "single.bin"), 4 * 1024 * 1024 + 12345, "a")
    torrent = os.path.join(sc.dir, "single.torrent")
    sc.make(os.path.join(seed_dir, "single.bin"), torrent, piece_kib=64)
    sc.seeder("seed", torrent, seed_dir)
    time.sleep(0.3)  # let the seeder check its data and announce first
    s = sc.session("lt")
    dl = os.path.join(sc.dir, "lt")
    h = sc.add(s, torrent, dl)
    watch = Watch([("lt", s)])
    wait_lt([h], watch, time.monotonic() + TIMEOUT, "libtorrent leecher", ["seed"], sc)
    h.flush_cache()
    time.sleep(0.2)
    diff = same_data(os.path.join(seed_dir, "single.bin"), os.path.join(dl, "single.bin"))
    check(diff is None, diff)
    sc.assert_running("seed")


def scenario_tyrant_leech_from_lt(sc):
    """b. A tyrant leecher downloads a single file from a libtorrent seeder."""
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    payload(os.path.join(seed_dir, "single.bin"), 3 * 1024 * 1024 + 777, "b")
    torrent = os.path.join(sc.dir, "single.torrent")
    sc.make(os.path.join(seed_dir, "single.bin"), torrent, piece_kib=64)
    s = sc.session("lt-seed")
    h = sc.add(s, torrent, seed_dir)
    watch = Watch([("lt-seed", s)])
    # The libtorrent seeder must have checked its files before the leecher asks.
    wait_lt([h], watch, time.monotonic() + 30, "libtorrent seeder (checking its data)")
    nudge([h])
    deadline = time.monotonic() + TIMEOUT
    dl = os.path.join(sc.dir, "leech")
    sc.leecher("leech", torrent, dl)
    while time.monotonic() < deadline:
        watch.poll()
        p = [p for (n, p, _, _) in sc.procs if n == "leech"][0]
        if p.poll() is not None:
            break
        time.sleep(0.1)
    sc.wait_exit("leech", deadline)
    diff = same_data(os.path.join(seed_dir, "single.bin"), os.path.join(dl, "single.bin"))
    check(diff is None, diff)


def multi_file_tree(root):
    """A directory with nested files: an empty one, one smaller than a block, files
    that straddle piece boundaries."""
    payload(os.path.join(root, "a.bin"), 1024 * 1024 + 1, "c1")
    payload(os.path.join(root, "tiny.txt"), 100, "c2")
    payload(os.path.join(root, "sub", "b.bin"), 700 * 1024 + 3, "c3")
    payload(os.path.join(root, "sub", "deeper", "c.bin"), 1536 * 1024 - 5, "c4")
    os.makedirs(os.path.join(root, "sub", "deeper"), exist_ok=True)
    open(os.path.join(root, "sub", "deeper", "empty.dat"), "wb").close()
    payload(os.path.join(root, "sub", "d.bin"), 16 * 1024 - 1, "c5")
    payload(os.path.join(root, "z.bin"), 300 * 1024, "c6")


def scenario_mixed_swarm_multifile(sc):
    """c. Multi-file torrent, a tyrant seeder, 2 libtorrent and 2 tyrant leechers."""
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    multi_file_tree(os.path.join(seed_dir, "multi"))
    torrent = os.path.join(sc.dir, "multi.torrent")
    sc.make(os.path.join(seed_dir, "multi"), torrent, piece_kib=64)
    # A capped seeder, so that the leechers also trade among themselves.
    sc.seeder("seed", torrent, seed_dir, ["--up", "1024"])
    time.sleep(0.3)
    deadline = time.monotonic() + TIMEOUT
    handles, sessions = [], []
    for i in (1, 2):
        s = sc.session("lt%d" % i)
        handles.append(sc.add(s, torrent, os.path.join(sc.dir, "lt%d" % i)))
        sessions.append(("lt%d" % i, s))
    for i in (1, 2):
        sc.leecher("ty%d" % i, torrent, os.path.join(sc.dir, "ty%d" % i))
    watch = Watch(sessions)
    # What the libtorrent leechers got from tyrant *leechers* (not from the seeder),
    # per connection, sampled while they download.
    from_ty = {}

    def sample():
        for h in handles:
            for pi in h.get_peer_info():
                if bytes(pi.pid.to_bytes()).startswith(b"-TY") and not pi.flags & pi.seed:
                    key = (str(h.info_hash()), pi.ip)
                    from_ty[key] = max(from_ty.get(key, 0), pi.total_download)

    wait_lt(handles, watch, deadline, "libtorrent leechers", ["seed"], sc, tick=sample)
    for h in handles:
        h.flush_cache()
    for i in (1, 2):
        sc.wait_exit("ty%d" % i, deadline)
    time.sleep(0.2)
    for who in ("lt1", "lt2", "ty1", "ty2"):
        diff = same_data(os.path.join(seed_dir, "multi"), os.path.join(sc.dir, who, "multi"))
        check(diff is None, "%s: %s" % (who, diff))
    sc.assert_running("seed")
    ty_up = 0
    for i in (1, 2):
        with open(os.path.join(sc.dir, "ty%d.stats" % i)) as f:
            m = re.search(r"^done .* uploaded=(\d+)", f.read(), re.M)
        check(m is not None, "ty%d wrote no `done` line in its stats" % i)
        ty_up += int(m.group(1))
    lt_from_ty = sum(from_ty.values())
    lt_up = sum(h.status().total_payload_upload for h in handles)
    check(ty_up > 0 and lt_up > 0, "the leechers did not trade: tyrant leechers uploaded %d B, "
          "libtorrent leechers %d B" % (ty_up, lt_up))
    return ("tyrant leechers uploaded %d KiB, libtorrent leechers %d KiB, "
            "libtorrent got >= %d KiB from tyrant leechers" % (ty_up >> 10, lt_up >> 10,
                                                               lt_from_ty >> 10))


def scenario_make_loads_in_libtorrent(sc):
    """d. `tyrant make` torrents load in libtorrent with the same info-hash and files,
    and libtorrent's own check of the original data against them finds every piece."""
    data = os.path.join(sc.dir, "data")
    payload(os.path.join(data, "one.bin"), 2 * 1024 * 1024 + 99, "d1")
    multi_file_tree(os.path.join(data, "multi"))
    s = sc.session("lt")
    handles, seen = [], set()
    for path, piece in ((os.path.join(data, "one.bin"), 32),
                        (os.path.join(data, "multi"), 64),
                        (os.path.join(data, "multi"), None)):
        torrent = os.path.join(sc.dir, "%s-%s.torrent" % (os.path.basename(path), piece))
        hexhash = sc.make(path, torrent, piece)
        ti = lt.torrent_info(torrent)
        got = str(ti.info_hashes().v1) if hasattr(ti, "info_hashes") else str(ti.info_hash())
        check(got == hexhash, "%s: libtorrent's info-hash %s, tyrant printed %s"
              % (torrent, got, hexhash))
        check(ti.name() == os.path.basename(path), "%s: name %r" % (torrent, ti.name()))
        if piece:
            check(ti.piece_length() == piece * 1024, "%s: piece length %d"
                  % (torrent, ti.piece_length()))
        fs = ti.layout() if hasattr(ti, "layout") else ti.files()
        lt_files = {}
        for i in range(fs.num_files()):
            check(not fs.file_flags(i) & lt.file_storage.flag_pad_file,
                  "%s: unexpected pad file %s" % (torrent, fs.file_path(i)))
            lt_files[os.path.normpath(fs.file_path(i))] = fs.file_size(i)
        if os.path.isfile(path):
            want = {os.path.basename(path): os.path.getsize(path)}
        else:
            want = {os.path.normpath(os.path.join(os.path.basename(path), k)): v[0]
                    for k, v in tree(path).items()}
        check(lt_files == want, "%s: libtorrent sees files %s, want %s" % (torrent, lt_files, want))
        total = sum(want.values())
        check(ti.total_size() == total, "%s: total size %d, want %d"
              % (torrent, ti.total_size(), total))
        check(ti.num_pieces() == (total + ti.piece_length() - 1) // ti.piece_length(),
              "%s: %d pieces" % (torrent, ti.num_pieces()))
        if hexhash in seen:
            continue
        seen.add(hexhash)
        atp = lt.add_torrent_params()
        atp.ti = ti
        atp.save_path = data
        atp.flags |= lt.torrent_flags.stop_when_ready  # check the data, then pause
        handles.append(s.add_torrent(atp))
    watch = Watch([("lt", s)])
    deadline = time.monotonic() + 60
    while True:
        watch.poll()
        sts = [h.status() for h in handles]
        checked = [st.state not in (lt.torrent_status.checking_files,
                                    lt.torrent_status.checking_resume_data)
                   and st.has_metadata for st in sts]
        if all(checked):
            bad = [(st.name, st.num_pieces, h.torrent_file().num_pieces())
                   for st, h in zip(sts, handles)
                   if st.num_pieces != h.torrent_file().num_pieces()]
            check(not bad, "libtorrent's check of the original data against tyrant's "
                  "torrents found only (name, pieces ok, pieces): %s" % bad)
            break
        check(time.monotonic() < deadline, "libtorrent did not finish checking: %s"
              % [(st.name, str(st.state), st.num_pieces) for st in sts])
        time.sleep(0.1)
    check(not watch.errors, "libtorrent reported: %s" % "; ".join(watch.errors[:5]))


def scenario_capped_seeder(sc):
    """e. A tyrant seeder capped at 20 KiB/s still serves a libtorrent leecher: it
    completes in bounded time without a storm of disconnects, at about the cap."""
    cap = 20
    size = 512 * 1024
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    payload(os.path.join(seed_dir, "small.bin"), size, "e")
    torrent = os.path.join(sc.dir, "small.torrent")
    sc.make(os.path.join(seed_dir, "small.bin"), torrent, piece_kib=64)
    sc.seeder("seed", torrent, seed_dir, ["--up", str(cap)])
    time.sleep(0.3)
    s = sc.session("lt")
    dl = os.path.join(sc.dir, "lt")
    h = sc.add(s, torrent, dl)
    watch = Watch([("lt", s)])
    start = time.monotonic()
    first_byte = None
    deadline = start + TIMEOUT
    last_nudge = start
    while True:
        watch.poll()
        check(not watch.errors, "libtorrent reported: %s" % "; ".join(watch.errors[:5]))
        st = h.status()
        if first_byte is None and st.total_wanted_done > 0:
            first_byte = time.monotonic()
        if st.is_seeding:
            break
        sc.assert_running("seed")
        now = time.monotonic()
        check(now < deadline, "libtorrent leecher at %.0f%% after %d s (%d disconnects)"
              % (st.progress * 100, TIMEOUT, watch.disconnects.get("lt", 0)))
        if now - last_nudge > 10 and st.num_peers == 0:
            nudge([h])
            last_nudge = now
        time.sleep(0.1)
    done = time.monotonic()
    h.flush_cache()
    time.sleep(0.2)
    diff = same_data(os.path.join(seed_dir, "small.bin"), os.path.join(dl, "small.bin"))
    check(diff is None, diff)
    disconnects = watch.disconnects.get("lt", 0)
    check(disconnects <= 3, "%d disconnects from the capped seeder" % disconnects)
    secs = done - (first_byte or start)
    rate = size / 1024.0 / max(secs, 0.001)
    # Allow a burst of a few blocks at the start; a seeder that ignores its cap would
    # send 512 KiB in well under a second here.
    check(rate < 2 * cap, "received %.1f KiB/s from a seeder capped at %d KiB/s" % (rate, cap))
    return "%.1f KiB/s, %d disconnects" % (rate, disconnects)



def wait_peer_id(sc, stats, timeout=30):
    """The peer id a tyrant process wrote on its stats `start` line, as bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(stats) as f:
                m = re.search(r"^start .*\bpeer_id=(\S+)", f.read(), re.M)
            if m:
                return m.group(1).encode()
        except OSError:
            pass
        time.sleep(0.05)
    raise Failure("%s: no `start` line with a peer_id after %d s" % (stats, timeout))


def last_stat(stats, key):
    """`key` of the last tick or done line of a stats file, as an int (None if absent)."""
    with open(stats) as f:
        lines = [l for l in f.read().splitlines() if l.startswith(("tick ", "done "))]
    for line in reversed(lines):
        m = re.search(r"\b%s=(\d+)" % re.escape(key), line)
        if m:
            return int(m.group(1))
    return None


def from_peers(handles, ids, got):
    """Add to got[name] what each libtorrent handle received from the tyrant whose peer
    id is ids[name] (max per connection, so a reconnect is counted again)."""
    def sample():
        for h in handles:
            for pi in h.get_peer_info():
                pid = bytes(pi.pid.to_bytes())
                for name, want in ids.items():
                    if pid == want:
                        key = (name, str(h.info_hash()), pi.ip)
                        got[key] = max(got.get(key, 0), pi.total_download)
    return sample


def per_name(got, names):
    return {n: sum(v for k, v in got.items() if k[0] == n) for n in names}


def scenario_lt_leech_from_tyrant_and_propshare(sc):
    """f. A libtorrent leecher downloads from a BitTyrant and a PropShare peer that seed
    (200 KiB/s each): both unchoke it and send it data."""
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    payload(os.path.join(seed_dir, "strat.bin"), 4 * 1024 * 1024 + 4321, "f")
    torrent = os.path.join(sc.dir, "strat.torrent")
    sc.make(os.path.join(seed_dir, "strat.bin"), torrent, piece_kib=32)
    names = ("tyrant", "propshare")
    ids = {}
    for name in names:
        stats = os.path.join(sc.dir, name + ".stats")
        sc.seeder(name, torrent, seed_dir, ["--" + name, "--up", "200", "--stats", stats])
        ids[name] = wait_peer_id(sc, stats)
    time.sleep(0.3)  # let both announce first
    s = sc.session("lt")
    dl = os.path.join(sc.dir, "lt")
    h = sc.add(s, torrent, dl)
    watch = Watch([("lt", s)])
    got = {}
    wait_lt([h], watch, time.monotonic() + TIMEOUT, "libtorrent leecher", list(names), sc,
            tick=from_peers([h], ids, got))
    h.flush_cache()
    time.sleep(1.2)  # one more stats tick
    diff = same_data(os.path.join(seed_dir, "strat.bin"), os.path.join(dl, "strat.bin"))
    check(diff is None, diff)
    by = per_name(got, names)
    ups = {n: last_stat(os.path.join(sc.dir, n + ".stats"), "uploaded") for n in names}
    for n in names:
        sc.assert_running(n)
        check(by[n] > 0, "libtorrent got nothing from the %s seeder (per peer: %s; "
              "uploaded per stats: %s)" % (n, by, ups))
        check(ups[n] and ups[n] > 0, "the %s seeder's stats show no upload: %s" % (n, ups))
    return "libtorrent got %s" % ", ".join("%d KiB from %s" % (by[n] >> 10, n) for n in names)


def scenario_tyrant_propshare_leech_from_lt(sc):
    """g. A BitTyrant and a PropShare leecher (100 KiB/s up each) download from a
    libtorrent seeder (capped, loopback included) and upload to a second libtorrent
    leecher, which gets payload from both."""
    sc.start_tracker()
    seed_dir = os.path.join(sc.dir, "seed")
    payload(os.path.join(seed_dir, "strat.bin"), 3 * 1024 * 1024 + 99, "g")
    torrent = os.path.join(sc.dir, "strat.torrent")
    sc.make(os.path.join(seed_dir, "strat.bin"), torrent, piece_kib=32)
    s = sc.session("lt-seed")
    # libtorrent exempts local peers from rate limits unless they are put in the global
    # peer class; without the cap the second leecher would take everything from the seed.
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
    s.set_peer_class_filter(everyone)
    s.apply_settings({"upload_rate_limit": 192 * 1024})
    h = sc.add(s, torrent, seed_dir)
    watch = Watch([("lt-seed", s)])
    wait_lt([h], watch, time.monotonic() + 30, "libtorrent seeder (checking its data)")
    nudge([h])
    deadline = time.monotonic() + TIMEOUT
    names = ("tyrant", "propshare")
    ids = {}
    for name in names:
        sc.leecher(name, torrent, os.path.join(sc.dir, name), ["--" + name, "--up", "100"])
        ids[name] = wait_peer_id(sc, os.path.join(sc.dir, name + ".stats"))
    s2 = sc.session("lt-leech")
    dl = os.path.join(sc.dir, "lt-leech")
    h2 = sc.add(s2, torrent, dl)
    watch = Watch([("lt-seed", s), ("lt-leech", s2)])
    got = {}
    wait_lt([h2], watch, deadline, "libtorrent leecher", tick=from_peers([h2], ids, got))
    h2.flush_cache()
    for name in names:
        sc.wait_exit(name, deadline)
    time.sleep(0.2)
    want = os.path.join(seed_dir, "strat.bin")
    for who in names + ("lt-leech",):
        diff = same_data(want, os.path.join(sc.dir, who, "strat.bin"))
        check(diff is None, "%s: %s" % (who, diff))
    by = per_name(got, names)
    ups = {n: last_stat(os.path.join(sc.dir, n + ".stats"), "uploaded") for n in names}
    for n in names:
        check(by[n] > 0, "the libtorrent leecher got nothing from the %s leecher "
              "(per peer: %s; uploaded per stats: %s)" % (n, by, ups))
    return "libtorrent leecher got %s; uploaded in all %s" % (
        ", ".join("%d KiB from %s" % (by[n] >> 10, n) for n in names),
        ", ".join("%s %d KiB" % (n, (ups[n] or 0) >> 10) for n in names))


SCENARIOS = [
    ("lt_leech_from_tyrant_seed", scenario_lt_leech_from_tyrant),
    ("tyrant_leech_from_lt_seed", scenario_tyrant_leech_from_lt),
    ("mixed_swarm_multifile", scenario_mixed_swarm_multifile),
    ("make_loads_in_libtorrent", scenario_make_loads_in_libtorrent),
    ("capped_tyrant_seed_serves_lt", scenario_capped_seeder),
    ("lt_leech_from_tyrant_and_propshare", scenario_lt_leech_from_tyrant_and_propshare),
    ("tyrant_propshare_leech_from_lt", scenario_tyrant_propshare_leech_from_lt),
]


def main(argv):
    if not (os.path.isfile(TYRANT) and os.access(TYRANT, os.X_OK)):
        print("interop: no tyrant binary at %s (build it, or set TYRANT)" % TYRANT)
        print("interop: 0 passed, 1 failed")
        return 1
    wanted = argv[1:]
    unknown = [w for w in wanted if w not in dict(SCENARIOS)]
    if unknown:
        print("interop: unknown scenario(s) %s; known: %s"
              % (", ".join(unknown), ", ".join(n for n, _ in SCENARIOS)))
        return 2
    print("interop: tyrant %s against libtorrent %s" % (TYRANT, lt.__version__), flush=True)
    passed = failed = 0
    for name, fn in SCENARIOS:
        if wanted and name not in wanted:
            continue
        sc = Scenario(name)
        start = time.monotonic()
        try:
            note = fn(sc)
            print("PASS %s (%.1f s)%s" % (name, time.monotonic() - start,
                                          " " + note if note else ""), flush=True)
            passed += 1
        except Failure as e:
            print("FAIL %s: %s (after %.1f s)" % (name, e, time.monotonic() - start), flush=True)
            failed += 1
        except Exception as e:
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            traceback.print_exc(file=sys.stdout)
            failed += 1
        finally:
            sc.close()
            if KEEP:
                print("  (kept %s)" % sc.dir, flush=True)
    print("interop: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    # A SIGTERM (e.g. a CI time-out) unwinds like an exception, so that every scenario's
    # `finally` kills its tyrant processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        print("interop: interrupted")
        sys.exit(130)
