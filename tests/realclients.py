#!/usr/bin/env python3
"""Interop with real clients: tyrant against aria2, transmission, rtorrent and libtorrent
(rasterbar), with tyrant's tracker and opentracker, all on 127.0.0.1.

Run by `./run.sh test` after tests/interop.py, or by hand:

    cargo build --release -p tyrant
    apt-get install aria2 transmission-daemon rtorrent opentracker
    pip install libtorrent==2.1.1            # optional: the libtorrent scenarios
    python3 tests/realclients.py [--list] [SCENARIO ...]

Each scenario runs in its own temp dir with its own tracker; every wait is bounded, every
process is killed (and every libtorrent session dropped) when the scenario ends, whatever
happened. One line per scenario: `PASS name (X.X s)`, `FAIL name: reason` or `SKIP name:
no CLIENT (how to install it)` when a client it needs is missing; then `realclients: N
passed, M failed, K skipped`. The exit code is 1 if any failed (skips do not count).

Payloads are generated deterministically; every file a client ends up with is compared
byte for byte with the seeder's. Every client is on loopback only: no DHT, LPD, PEX,
UPnP/NAT-PMP or uTP; encryption allowed (each client's own default) but never required.

Environment:
  TYRANT               the tyrant binary [target/release/tyrant]
  REALCLIENTS_TIMEOUT  the bound on each wait, in seconds [120]
  REALCLIENTS_RUST_LOG RUST_LOG for the tyrant processes [debug]: a PASS line lists the
                       reasons tyrant gave for closing connections
  REALCLIENTS_KEEP=1   keep the temp dirs (logs of every client in them) for a look
  REALCLIENTS_DEBUG=1  the real clients log at their most verbose
"""

import base64
import collections
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import xmlrpc.client

try:
    import libtorrent as lt
except ImportError:  # pragma: no cover - depends on the machine
    lt = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYRANT = os.environ.get("TYRANT") or os.path.join(ROOT, "target", "release", "tyrant")
TIMEOUT = float(os.environ.get("REALCLIENTS_TIMEOUT", "120"))
RUST_LOG = os.environ.get("REALCLIENTS_RUST_LOG", "debug")
KEEP = os.environ.get("REALCLIENTS_KEEP") == "1"
DEBUG = os.environ.get("REALCLIENTS_DEBUG") == "1"
# tyrant tracker's interval: short, so that a tyrant seeder learns of a leecher that cannot
# dial it (transmission) within a couple of seconds. Not every client honours it (rtorrent
# announces again only minutes later), so the tracker keeps silent peers for 10 minutes.
TRACKER_INTERVAL = 2
# A wait fails early when no leecher has made progress for this long (seconds).
STALL = float(os.environ.get("REALCLIENTS_STALL", "30"))
KIB, MIB = 1024, 1024 * 1024

# Where each client comes from, for the SKIP line.
INSTALL = {
    "aria2c": "apt-get install aria2",
    "transmission-daemon": "apt-get install transmission-daemon",
    "transmission": "apt-get install transmission-daemon",
    "rtorrent": "apt-get install rtorrent",
    "opentracker": "apt-get install opentracker",
    "libtorrent": "pip install libtorrent==2.1.1",
}
# The command each kind of client needs.
BINARY = {
    "aria2": "aria2c",
    "transmission": "transmission-daemon",
    "rtorrent": "rtorrent",
    "opentracker": "opentracker",
}

# No proxy for anything on loopback: urllib, aria2 and curl (rtorrent, transmission) all
# read these variables.
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "ALL_PROXY", "ftp_proxy", "FTP_PROXY")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Failure(Exception):
    """A scenario's check failed; the message is the reason printed after FAIL."""


class Skip(Exception):
    """A scenario cannot run here; the message says what is missing."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def which(cmd):
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin", "/sbin"]:
        p = os.path.join(d, cmd)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def missing(kind):
    """None if a client of this kind can run here, else the SKIP reason."""
    if kind == "tyrant":
        return None
    if kind == "libtorrent":
        return None if lt is not None else "no libtorrent (%s)" % INSTALL["libtorrent"]
    cmd = BINARY[kind]
    return None if which(cmd) else "no %s (%s)" % (cmd, INSTALL[cmd])


# ---------------------------------------------------------------------------------------
# Data


def payload(path, n, seed):
    """A reproducible pseudo-random file of n bytes."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        i = 0
        while n > 0:
            block = hashlib.sha512(("%s:%d" % (seed, i)).encode()).digest() * 1024
            block = block[:n]
            f.write(block)
            n -= len(block)
            i += 1


def multi_file_tree(root, seed):
    """A directory of nested files (about 9 MiB): an empty file, one smaller than a block,
    files that straddle piece boundaries."""
    payload(os.path.join(root, "a.bin"), 3 * MIB + 1, seed + "a")
    payload(os.path.join(root, "tiny.txt"), 100, seed + "t")
    payload(os.path.join(root, "sub", "b.bin"), 700 * KIB + 3, seed + "b")
    payload(os.path.join(root, "sub", "deeper", "c.bin"), 4 * MIB - 5, seed + "c")
    open(os.path.join(root, "sub", "deeper", "empty.dat"), "wb").close()
    payload(os.path.join(root, "sub", "d.bin"), 16 * KIB - 1, seed + "d")
    payload(os.path.join(root, "z.bin"), 1300 * KIB, seed + "z")


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
        miss = sorted(set(a) - set(b))
        extra = sorted(set(b) - set(a))
        differ = sorted(k for k in set(a) & set(b) if a[k] != b[k])
        return "%s: missing %s, extra %s, differing %s" % (got, miss, extra, differ)
    return None


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + line for line in lines[-n:])


# ---------------------------------------------------------------------------------------
# Bencode and torrents


def bencode(x):
    if isinstance(x, int):
        return b"i%de" % x
    if isinstance(x, str):
        x = x.encode()
    if isinstance(x, bytes):
        return b"%d:%s" % (len(x), x)
    if isinstance(x, list):
        return b"l" + b"".join(bencode(v) for v in x) + b"e"
    if isinstance(x, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in x.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(x))


def bdecode(data):
    """(value, raw bytes of the `info` dictionary); dictionary keys are bytes."""
    info_raw = []

    def dec(i, key=None):
        c = data[i:i + 1]
        if c == b"i":
            j = data.index(b"e", i)
            return int(data[i + 1:j]), j + 1
        if c == b"l":
            i, out = i + 1, []
            while data[i:i + 1] != b"e":
                v, i = dec(i)
                out.append(v)
            return out, i + 1
        if c == b"d":
            start, i, out = i, i + 1, {}
            while data[i:i + 1] != b"e":
                k, i = dec(i)
                v_start = i
                v, i = dec(i, k)
                if k == b"info":
                    info_raw.append(data[v_start:i])
                out[k] = v
            return out, i + 1
        j = data.index(b":", i)
        n = int(data[i:j])
        return data[j + 1:j + 1 + n], j + 1 + n

    v, end = dec(0)
    if end != len(data):
        raise ValueError("trailing data after the bencoded value")
    return v, (info_raw[-1] if info_raw else None)


def retracker(src, out, tiers):
    """Write `out`: the torrent `src` with its trackers replaced by `tiers` (a list of
    lists of URLs: `announce` is the first URL, `announce-list` all tiers when there is
    more than one URL). The info dictionary is copied byte for byte, so the info-hash
    stays the same."""
    with open(src, "rb") as f:
        data = f.read()
    meta, info_raw = bdecode(data)
    parts = [(b"announce", bencode(tiers[0][0]))]
    if sum(len(t) for t in tiers) > 1:
        parts.append((b"announce-list", bencode([list(t) for t in tiers])))
    for k, v in meta.items():
        if k not in (b"announce", b"announce-list", b"info"):
            parts.append((k, bencode(v)))
    parts.append((b"info", info_raw))
    parts.sort()
    with open(out, "wb") as f:
        f.write(b"d" + b"".join(bencode(k) + v for k, v in parts) + b"e")
    return out


def info_hash(torrent):
    with open(torrent, "rb") as f:
        _, info_raw = bdecode(f.read())
    return hashlib.sha1(info_raw).hexdigest()


# ---------------------------------------------------------------------------------------
# Ports, processes, RPC


def free_port(ip="127.0.0.1", udp_too=False):
    """A port free on `ip` (TCP, and UDP too when asked) at the time of asking."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((ip, 0))
            port = s.getsockname()[1]
            if not udp_too:
                return port
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind((ip, port))
                    return port
            except OSError:
                continue
    raise Failure("no free port")


def wait_port(port, deadline, proc=None, what="server"):
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise Failure("%s exited with %s before listening on %d" % (what, proc.returncode, port))
        if time.monotonic() > deadline:
            raise Failure("%s is not listening on port %d" % (what, port))
        time.sleep(0.05)


def child_env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "*"
    env.update(extra or {})
    return env


def http_json(url, body, headers=None, timeout=5):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers or {})
    with OPENER.open(req, timeout=timeout) as r:
        return json.loads(r.read().decode())


def scgi_call(port, method, *params):
    """One XML-RPC call to rtorrent over SCGI."""
    body = xmlrpc.client.dumps(params, method).encode()
    head = b"CONTENT_LENGTH\0%d\0SCGI\x001\0" % len(body)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"%d:%s," % (len(head), head) + body)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    resp = b"".join(chunks)
    sep = resp.find(b"\r\n\r\n")
    return xmlrpc.client.loads(resp[sep + 4:] if sep >= 0 else resp)[0][0]


def udp_connect_probe(port, timeout=2.0):
    """Whether a BEP 15 tracker answers a connect request on 127.0.0.1:port."""
    tid = int.from_bytes(os.urandom(4), "big")
    req = struct.pack(">QII", 0x41727101980, 0, tid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(req, ("127.0.0.1", port))
            data, _ = s.recvfrom(2048)
        except OSError:
            return False
    return len(data) >= 16 and struct.unpack(">II", data[:8]) == (0, tid)


# ---------------------------------------------------------------------------------------
# Clients. Each has: name, kind, data (where the torrent's file or directory ends up),
# ready() (a seeder has checked its data and serves it), done() (a leecher has all of it;
# raises Failure if the client died), progress() (bytes done, bytes total), describe(),
# alive() (raises Failure if it died) and stop().


class Client:
    kind = "?"

    def __init__(self, sc, name, torrent, data_dir, seed):
        self.sc, self.name, self.torrent, self.dir, self.seed = sc, name, torrent, data_dir, seed
        # An address of its own: rtorrent and transmission keep one connection per IP.
        self.ip = sc.next_ip()
        with open(torrent, "rb") as f:
            meta, info_raw = bdecode(f.read())
        self.info_hash = hashlib.sha1(info_raw).hexdigest()
        self.total = meta[b"info"].get(b"length") or sum(
            f[b"length"] for f in meta[b"info"][b"files"])
        self.data = os.path.join(data_dir, meta[b"info"][b"name"].decode())
        self.started = time.monotonic()
        self.first_byte = None  # when progress() first saw payload (leechers)
        self.finished = None  # when done() first returned True
        os.makedirs(data_dir, exist_ok=True)

    def describe(self):
        try:
            d, t = self.progress()
            return "%s %s %.0f%%" % (self.kind, self.name, 100.0 * d / max(t, 1))
        except Exception as e:
            return "%s %s (%s)" % (self.kind, self.name, e)

    def note_progress(self, d):
        if self.first_byte is None and d > 0:
            self.first_byte = time.monotonic()

    def done(self):
        if self.finished is not None:
            return True
        if self._done():
            self.finished = time.monotonic()
            return True
        return False

    def ready(self):
        return self.done()

    def alive(self):
        pass

    def stop(self):
        pass

    def log(self):
        return ""


class ProcClient(Client):
    """A client in its own process: `proc`, stdout/stderr in files."""

    def spawn(self, argv, env=None, cwd=None):
        self.out = os.path.join(self.sc.dir, self.name + ".out")
        self.err = os.path.join(self.sc.dir, self.name + ".log")
        with open(self.out, "wb") as fo, open(self.err, "wb") as fe:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                         cwd=cwd or self.sc.dir, env=child_env(env))
        self.sc.procs.append((self.name, self.proc))

    def alive(self):
        if self.proc.poll() is not None:
            raise Failure("%s %s exited early with %s:\n%s"
                          % (self.kind, self.name, self.proc.returncode, self.log()))

    def log(self):
        return tail(self.err)

    def stop(self, sig=signal.SIGTERM, wait=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


class Tyrant(ProcClient):
    kind = "tyrant"

    def __init__(self, sc, name, torrent, data_dir, seed, extra=(), stop_after=True):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.stats = os.path.join(sc.dir, name + ".stats")
        args = ["--dir", data_dir, "--port", "0", "--bind", self.ip, "--announce-ip", self.ip,
                "--stats", self.stats, "-q"]
        if seed:
            args.append("--seed")
        else:
            args += ["--time-limit", str(int(TIMEOUT) + 30)]
            if stop_after:
                args.append("--stop-after-download")
        self.spawn([TYRANT] + args + list(extra) + [torrent], env={"RUST_LOG": RUST_LOG})

    def output(self):
        with open(self.out, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def ticks(self):
        try:
            with open(self.stats) as f:
                return [l for l in f.read().splitlines() if l.startswith(("tick ", "done "))]
        except OSError:
            return []

    def stat(self, key):
        for line in reversed(self.ticks()):
            m = re.search(r"\b%s=([0-9.]+)" % re.escape(key), line)
            if m:
                return float(m.group(1))
        return None

    def progress(self):
        have, pieces = self.stat("have"), self.stat("pieces")
        if have is None or not pieces:
            return 0, self.total
        d = min(self.total, int(self.total * have / pieces))
        self.note_progress(d)
        return d, self.total

    def ready(self):
        self.alive()
        have, pieces = self.stat("have"), self.stat("pieces")
        return have is not None and pieces and have == pieces

    def _done(self):
        if re.search(r"^complete: ", self.output(), re.M):
            return True
        if self.proc.poll() is not None:
            raise Failure("tyrant %s exited with %s without printing `complete:`:\n%s"
                          % (self.name, self.proc.returncode, self.log()))
        self.progress()
        return False

    def log(self):
        return tail(self.err)

    def closes(self):
        """Counter of the reasons tyrant's log gives for closing connections (debug)."""
        c = collections.Counter()
        try:
            with open(self.err, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return c
        for m in re.finditer(r"peer \d+ \(([^)]*)\): closed: (.*)$", text, re.M):
            c[m.group(2).strip()] += 1
        return c

    def uploaded(self):
        return int(self.stat("uploaded") or 0)

    def tracker_trouble(self):
        """The last tracker error in the log if no tracker ever answered, else None."""
        try:
            with open(self.err, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return None
        if re.search(r"\btracker \S+: \d+ peers", text):
            return None
        errs = re.findall(r"^\[WARN\s+tyrant::torrent\] (tracker .*)$", text, re.M)
        return errs[-1] if errs else None

    def downloaded(self):
        return int(self.stat("downloaded") or 0)


class Aria2(ProcClient):
    kind = "aria2"

    def __init__(self, sc, name, torrent, data_dir, seed, up_kib=0, extra=()):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.port, self.rpc = free_port(self.ip), free_port()
        args = [
            "aria2c", "--no-conf=true", "--dir=" + data_dir,
            "--listen-port=%d" % self.port, "--interface=" + self.ip, "--disable-ipv6=true",
            "--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", "--bt-require-crypto=false",
            "--bt-min-crypto-level=plain", "--check-integrity=true",
            "--file-allocation=none", "--enable-rpc=true", "--rpc-listen-all=false",
            "--rpc-listen-port=%d" % self.rpc, "--summary-interval=0",
            "--console-log-level=warn", "--log=" + os.path.join(sc.dir, name + ".aria2.log"),
            "--log-level=" + ("debug" if DEBUG else "info"), "--bt-save-metadata=false",
            "--auto-save-interval=0",
        ]
        args.append("--seed-ratio=0.0" if seed else "--seed-time=0")
        if up_kib:
            args.append("--max-upload-limit=%dK" % up_kib)
        self.gid = None
        self.spawn(args + list(extra) + [torrent])
        wait_port(self.rpc, time.monotonic() + 30, self.proc, "aria2 RPC")

    def rpc_call(self, method, *params):
        r = http_json("http://127.0.0.1:%d/jsonrpc" % self.rpc, {
            "jsonrpc": "2.0", "id": "q", "method": method, "params": list(params)})
        return r["result"]

    def status(self):
        """aria2.tellStatus of our download (it stays listed once complete, when
        tellActive no longer shows it)."""
        if self.gid is None:
            active = self.rpc_call("aria2.tellActive", ["gid"])
            if not active:
                return None
            self.gid = active[0]["gid"]
        return self.rpc_call("aria2.tellStatus", self.gid, [
            "status", "totalLength", "completedLength", "seeder", "verifiedLength",
            "verifyIntegrityPending", "uploadLength", "connections", "errorMessage"])

    def progress(self):
        self.alive()
        st = self.status()
        if st is None or "verifiedLength" in st or "verifyIntegrityPending" in st:
            d = 0  # not started, or still checking
        else:
            check(st["status"] != "error", "aria2 %s: %s" % (self.name, st.get("errorMessage")))
            d = int(st["completedLength"])
        self.note_progress(d)
        return d, self.total

    def ready(self):
        self.alive()
        st = self.status()
        return bool(st) and st.get("seeder") == "true" and "verifiedLength" not in st

    def _done(self):
        d, _ = self.progress()
        st = self.status()
        return d >= self.total and st["status"] in ("complete", "active") and (
            st["status"] == "complete" or st.get("seeder") == "true")

    def log(self, n=15):
        # Leave out its logging of our RPC polls.
        try:
            with open(os.path.join(self.sc.dir, self.name + ".aria2.log"), "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [l for l in text.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", l)
                 and not re.search(r"rpc_helper|HttpServer|HttpListen|HttpConnection", l)]
        return "\n".join("    | " + l for l in lines[-n:])

    def uploaded(self):
        st = self.status()
        return int(st["uploadLength"]) if st else 0


class Transmission(ProcClient):
    kind = "transmission"

    def __init__(self, sc, name, torrent, data_dir, seed, up_kib=0):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.port, self.rpc = free_port(self.ip), free_port()
        self.cfg = os.path.join(sc.dir, name + ".cfg")
        os.makedirs(self.cfg, exist_ok=True)
        settings = {
            "peer-port": self.port, "peer-port-random-on-start": False,
            "bind-address-ipv4": self.ip, "bind-address-ipv6": "::1",
            "rpc-enabled": True, "rpc-port": self.rpc, "rpc-bind-address": "127.0.0.1",
            "rpc-authentication-required": False, "rpc-whitelist-enabled": False,
            "rpc-host-whitelist-enabled": False,
            "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
            "utp-enabled": False, "port-forwarding-enabled": False, "encryption": 0,
            "blocklist-enabled": False, "ratio-limit-enabled": False,
            "idle-seeding-limit-enabled": False, "speed-limit-down-enabled": False,
            "speed-limit-up-enabled": bool(up_kib), "speed-limit-up": up_kib or 100,
            "alt-speed-enabled": False, "download-queue-enabled": False,
            "seed-queue-enabled": False, "queue-stalled-enabled": False,
            "start-added-torrents": True, "download-dir": data_dir,
            "incomplete-dir-enabled": False, "rename-partial-files": False,
            "watch-dir-enabled": False, "message-level": 3 if DEBUG else 2,
            "scrape-paused-torrents-enabled": False, "umask": 18,
        }
        with open(os.path.join(self.cfg, "settings.json"), "w") as f:
            json.dump(settings, f, indent=1)
        self.sid = ""
        self.id = None
        self.spawn(["transmission-daemon", "-f", "-g", self.cfg],
                   env=dict({"HOME": self.cfg}, **({"TR_DEBUG_FD": "2"} if DEBUG else {})))
        wait_port(self.rpc, time.monotonic() + 30, self.proc, "transmission RPC")
        with open(torrent, "rb") as f:
            meta = base64.b64encode(f.read()).decode()
        r = self.call("torrent-add", {"metainfo": meta, "download-dir": data_dir})
        added = r.get("torrent-added") or r.get("torrent-duplicate")
        check(added is not None, "transmission did not add the torrent: %r" % r)
        self.id = added["id"]
        if seed:
            # Have it check the data it was given (3.00 does not on its own).
            self.call("torrent-verify", {"ids": [self.id]})

    def call(self, method, args):
        url = "http://127.0.0.1:%d/transmission/rpc" % self.rpc
        for _ in range(3):
            try:
                r = http_json(url, {"method": method, "arguments": args},
                              {"X-Transmission-Session-Id": self.sid})
            except urllib.error.HTTPError as e:
                if e.code == 409:
                    self.sid = e.headers.get("X-Transmission-Session-Id", "")
                    continue
                raise
            check(r.get("result") == "success", "transmission %s: %r" % (method, r))
            return r.get("arguments", {})
        raise Failure("transmission RPC keeps answering 409")

    def status(self):
        r = self.call("torrent-get", {"ids": [self.id], "fields": [
            "percentDone", "leftUntilDone", "haveValid", "sizeWhenDone", "status", "error",
            "errorString", "peersConnected", "uploadedEver", "recheckProgress"]})
        return r["torrents"][0]

    def progress(self):
        self.alive()
        st = self.status()
        check(not st["error"], "transmission %s: %s" % (self.name, st["errorString"]))
        d = st["haveValid"] if st["status"] not in (1, 2) else 0
        self.note_progress(d)
        return d, self.total

    def ready(self):
        st = self.status()
        return st["status"] == 6 and st["leftUntilDone"] == 0

    def _done(self):
        d, _ = self.progress()
        return d >= self.total

    def log(self):
        return tail(self.err)

    def uploaded(self):
        return self.status()["uploadedEver"]


class RTorrent(ProcClient):
    kind = "rtorrent"

    def __init__(self, sc, name, torrent, data_dir, seed, up_kib=0, udp=False):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.port, self.rpc = free_port(self.ip), free_port()
        session = os.path.join(sc.dir, name + ".session")
        os.makedirs(session, exist_ok=True)
        self.rc = os.path.join(sc.dir, name + ".rc")
        lines = [
            "system.daemon.set = true",
            "session.path.set = \"%s\"" % session,
            "directory.default.set = \"%s\"" % data_dir,
            "network.port_range.set = %d-%d" % (self.port, self.port),
            "network.port_random.set = no",
            "network.bind_address.set = %s" % self.ip,
            "network.local_address.set = %s" % self.ip,
            "network.scgi.open_port = 127.0.0.1:%d" % self.rpc,
            "dht.mode.set = disable",
            "protocol.pex.set = no",
            "trackers.use_udp.set = %s" % ("yes" if udp else "no"),
            "protocol.encryption.set = allow_incoming,try_outgoing,enable_retry",
            "log.open_file = \"main\", \"%s\"" % os.path.join(sc.dir, name + ".rtorrent.log"),
            "log.add_output = \"%s\", \"main\"" % ("debug" if DEBUG else "info"),
        ]
        if up_kib:
            lines.append("throttle.global_up.max_rate.set_kb = %d" % up_kib)
        with open(self.rc, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.spawn(["rtorrent", "-n", "-o", "import=" + self.rc], env={"HOME": session})
        wait_port(self.rpc, time.monotonic() + 30, self.proc, "rtorrent SCGI")
        self.hash = self.info_hash.upper()
        scgi_call(self.rpc, "load.start", "", torrent)
        deadline = time.monotonic() + 10
        while self.hash not in scgi_call(self.rpc, "download_list"):
            check(time.monotonic() < deadline, "rtorrent did not load %s" % torrent)
            time.sleep(0.05)

    def d(self, method):
        return scgi_call(self.rpc, "d." + method, self.hash)

    def progress(self):
        self.alive()
        d = self.d("completed_bytes") if not self.d("hashing") else 0
        self.note_progress(d)
        return d, self.total

    def ready(self):
        self.alive()
        return self.d("complete") == 1 and self.d("hashing") == 0

    def _done(self):
        self.progress()
        return self.d("complete") == 1 and self.d("hashing") == 0

    def log(self):
        return tail(os.path.join(self.sc.dir, self.name + ".rtorrent.log"))

    def uploaded(self):
        return self.d("up.total")


def lt_settings(ip="127.0.0.1", port=0, **over):
    s = {
        "listen_interfaces": "%s:%d" % (ip, port),
        "outgoing_interfaces": ip,
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False,
        "enable_natpmp": False, "enable_ip_notifier": False,
        # tyrant speaks TCP only; so do the others here.
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        # Every peer here lives on 127.0.0.0/8.
        "allow_multiple_connections_per_ip": True,
        "announce_to_all_trackers": True, "announce_to_all_tiers": True,
        "min_announce_interval": 1, "min_reconnect_time": 1,
        "user_agent": "realclients-libtorrent/%s" % (lt.__version__ if lt else "?"),
        "alert_mask": 0,
    }
    s.update(over)
    return s


class Libtorrent(Client):
    """A libtorrent session of its own in this process."""

    kind = "libtorrent"

    def __init__(self, sc, name, torrent, data_dir, seed, up_kib=0, settings=None):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.ses = lt.session(lt_settings(self.ip, **(settings or {})))
        if up_kib:
            # libtorrent exempts local peers from rate limits unless they are put in the
            # global peer class.
            everyone = lt.ip_filter()
            everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << lt.session.global_peer_class_id)
            self.ses.set_peer_class_filter(everyone)
            self.ses.apply_settings({"upload_rate_limit": up_kib * 1024})
        atp = lt.add_torrent_params()
        atp.ti = lt.torrent_info(torrent)
        atp.save_path = data_dir
        self.h = self.ses.add_torrent(atp)
        self.port = self.ses.listen_port()
        sc.sessions.append(self)

    def progress(self):
        st = self.h.status()
        check(not st.errc.value(), "libtorrent %s: %s" % (self.name, st.errc.message()))
        d = st.total_wanted_done if st.state not in (
            lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data) else 0
        self.note_progress(d)
        return d, self.total

    def ready(self):
        return self.h.status().is_seeding

    def _done(self):
        self.progress()
        if self.h.status().is_seeding:
            self.h.flush_cache()
            return True
        return False

    def uploaded(self):
        return self.h.status().total_payload_upload

    def stop(self):
        if self.ses is not None:
            try:
                self.ses.pause()
                self.ses.remove_torrent(self.h)
            except Exception:
                pass
            self.ses = None
            self.h = None


KINDS = {"aria2": Aria2, "transmission": Transmission, "rtorrent": RTorrent,
         "libtorrent": Libtorrent}


# ---------------------------------------------------------------------------------------
# Trackers


class Scenario:
    """Owns a temp dir and every process and session of one scenario; `close` stops them
    all."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="realclients-%s-" % name)
        os.chmod(self.dir, 0o755)
        self.procs = []  # (name, Popen)
        self.sessions = []  # Libtorrent clients
        self.clients = []
        self.stoppers = []  # (Popen, signal) for trackers
        self.last_ip = 1

    def next_ip(self):
        """127.0.0.2, 127.0.0.3, ... (then 127.0.1.2, ...): one loopback address per
        client (trackers keep 127.0.0.1)."""
        self.last_ip += 1
        hi, lo = divmod(self.last_ip - 2, 250)
        return "127.0.%d.%d" % (hi, lo + 2)

    def client(self, kind, name, torrent, data_dir, seed, **kw):
        cls = Tyrant if kind == "tyrant" else KINDS[kind]
        c = cls(self, name, torrent, data_dir, seed, **kw)
        self.clients.append(c)
        return c

    def tracker(self):
        """`tyrant tracker` on 127.0.0.1; its port."""
        out = os.path.join(self.dir, "tracker.out")
        with open(out, "wb") as fo, open(os.path.join(self.dir, "tracker.log"), "wb") as fe:
            p = subprocess.Popen([TYRANT, "tracker", "--port", "0", "--bind", "127.0.0.1",
                                  "--interval", str(TRACKER_INTERVAL), "--min-interval", "1",
                                  "--expiry", "600"],
                                 stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                 env=child_env({"RUST_LOG": RUST_LOG}))
        self.procs.append(("tracker", p))
        deadline = time.monotonic() + 30
        while True:
            with open(out) as f:
                m = re.search(r"^tracker listening on [0-9.]+:(\d+)\s*$", f.read(), re.M)
            if m:
                return int(m.group(1))
            check(p.poll() is None, "tyrant tracker exited with %s:\n%s"
                  % (p.returncode, tail(os.path.join(self.dir, "tracker.log"))))
            check(time.monotonic() < deadline, "tyrant tracker did not start")
            time.sleep(0.05)

    def opentracker(self, hashes):
        """opentracker on 127.0.0.1 (HTTP and UDP on one port), with `hashes` whitelisted
        (this Debian build serves nothing else); its port."""
        root = os.path.join(self.dir, "opentracker")
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o755)
        wl = os.path.join(root, "whitelist.txt")
        with open(wl, "w") as f:
            f.write("".join(h.lower() + "\n" for h in hashes))
        os.chmod(wl, 0o644)
        port = free_port(udp_too=True)
        with open(os.path.join(self.dir, "opentracker.log"), "wb") as fe:
            p = subprocess.Popen(["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P",
                                  str(port), "-A", "127.0.0.1", "-d", root, "-w",
                                  "whitelist.txt"], stdin=subprocess.DEVNULL, stdout=fe,
                                 stderr=fe, env=child_env())
        self.procs.append(("opentracker", p))
        self.stoppers.append((p, signal.SIGINT))  # it ignores SIGTERM
        wait_port(port, time.monotonic() + 30, p, "opentracker")
        return port

    def make(self, path, out, announce, piece_kib):
        """`tyrant make`; the info-hash it printed."""
        r = subprocess.run([TYRANT, "make", path, "--announce", announce, "--piece-size",
                            str(piece_kib), "-o", out], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(r.returncode == 0, "tyrant make failed: %s" % r.stderr.decode(errors="replace"))
        m = re.search(r"info_hash=([0-9a-f]{40})", r.stdout.decode())
        check(m is not None, "tyrant make printed %r" % r.stdout)
        return m.group(1)

    def close(self):
        for c in self.clients:
            try:
                if isinstance(c, ProcClient):
                    if c.proc.poll() is None:
                        c.proc.kill()
                else:
                    c.stop()
            except Exception:
                pass
        for p, sig in self.stoppers:
            if p.poll() is None:
                p.send_signal(sig)
        for name, p in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
        for name, p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.sessions = []
        self.clients = []
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def scrape(port, ih):
    """(complete, incomplete) for info-hash `ih` (hex) from the HTTP tracker on port."""
    q = urllib.parse.quote(bytes.fromhex(ih), safe="")
    with OPENER.open("http://127.0.0.1:%d/scrape?info_hash=%s" % (port, q), timeout=5) as r:
        reply, _ = bdecode(r.read())
    files = reply.get(b"files", {})
    st = files.get(bytes.fromhex(ih), {})
    return st.get(b"complete", 0), st.get(b"incomplete", 0)


def wait_seeds(port, ih, n, deadline, leechers=0):
    """Until the tracker on `port` counts `n` seeders of `ih`, and `n + leechers` peers in
    all (a leecher may have become a seeder meanwhile): a peer that announces after that
    gets them in its first reply (rtorrent, for one, asks again only minutes later)."""
    while True:
        got = scrape(port, ih)
        if got[0] >= n and sum(got) >= n + leechers:
            return
        check(time.monotonic() < deadline, "the tracker counts %d seeders and %d leechers, "
              "want %d seeders and %d peers" % (got[0], got[1], n, n + leechers))
        time.sleep(0.1)


def seeding(seed, port):
    """Wait until `seed` has checked its data and the tracker on `port` lists it."""
    wait_ready([seed], time.monotonic() + TIMEOUT)
    wait_seeds(port, seed.info_hash, 1, time.monotonic() + TIMEOUT)
    return seed


def wait_ready(clients, deadline, what="seeder"):
    while True:
        pending = [c for c in clients if not c.ready()]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise Failure("%s not ready (checking its data) in time: %s"
                          % (what, ", ".join(c.describe() for c in pending)))
        time.sleep(0.1)


def wait_done(clients, deadline, keep_running=()):
    """Until every client in `clients` has the whole payload; the ones in `keep_running`
    (seeders) must stay up meanwhile. Fails at `deadline`, after STALL seconds in which
    no client in `clients` made progress, or when a tyrant leecher has had no tracker
    reply but errors for STALL / 2 seconds."""
    start = last_move = time.monotonic()
    seen = {}
    everyone = list(clients) + [c for c in keep_running if c not in clients]
    while True:
        pending = [c for c in clients if not c.done()]
        if not pending:
            return
        for c in keep_running:
            c.alive()
        now = time.monotonic()
        for c in pending:
            try:
                d = c.progress()[0]
            except Failure:
                raise
            except Exception:
                continue
            if d != seen.get(c.name):
                seen[c.name] = d
                last_move = now
        why = None
        if now > deadline:
            why = "not complete after %d s" % (now - start)
        elif now - last_move > STALL:
            why = "no progress for %d s" % STALL
        elif now - start > STALL / 2:
            trouble = [t.tracker_trouble() for t in pending if isinstance(t, Tyrant)]
            trouble = [t for t in trouble if t]
            if trouble:
                why = "tyrant has had no tracker reply in %d s, only: %s" % (now - start,
                                                                            trouble[0])
        if why:
            note = closes_note(everyone)
            raise Failure("%s: %s%s%s" % (
                why, ", ".join(c.describe() for c in pending), "; " + note if note else "",
                "".join("\n  %s %s log:\n%s" % (c.kind, c.name, c.log()) for c in pending)))
        time.sleep(0.1)


def compare(want, clients):
    for c in clients:
        if isinstance(c, Transmission):
            # It keeps a write cache: stopping the torrent flushes it.
            c.call("torrent-stop", {"ids": [c.id]})
    time.sleep(0.3)
    for c in clients:
        diff = same_data(want, c.data)
        check(diff is None, "%s %s: %s" % (c.kind, c.name, diff))


def closes_note(clients):
    """What tyrant's logs say about the connections it closed, for the PASS line."""
    total = collections.Counter()
    for t in clients:
        if isinstance(t, Tyrant):
            total.update(t.closes())
    if not total:
        return ""
    return "tyrant closed: " + "; ".join("%d x %s" % (n, r) for r, n in total.most_common(4))


# Reasons tyrant gives for closing a connection that say nothing against the other client:
# it left, both sides are complete, one of two connections between the same pair, a
# deadline, a full peer set, and the MSE/PE handshake that tyrant (plain BEP 3) refuses
# before the client retries in plaintext. Any other reason means tyrant judged a real
# client's messages invalid, and the scenario fails.
# An encrypted (MSE) handshake, which tyrant does not speak, opens with a random
# Diffie-Hellman key: its first byte is read as the protocol string's length ("is not 19"),
# and 1 time in 256 it is 19 and the next 19 random bytes fail the string itself. Both are
# a client trying encryption first, not a rule broken.
BENIGN_CLOSE = re.compile(
    r"closed|reset|broken pipe|fill whole buffer|duplicate|both of us are seeds|"
    r"protocol string length is not 19|protocol string is not|ourselves|evicted|max-peers|timed out|timeout|"
    r"complete|shut ?down|stopping|refused", re.I)


def judge_closes(sc):
    """Fail if a tyrant of the scenario dropped a peer for breaking a rule."""
    bad = collections.Counter()
    for c in sc.clients:
        if isinstance(c, Tyrant):
            for reason, n in c.closes().items():
                if not BENIGN_CLOSE.search(reason):
                    bad["%s: %s" % (c.name, reason)] += n
    check(not bad, "tyrant dropped peers for breaking its rules: %s" % "; ".join(
        "%d x %s" % (n, r) for r, n in bad.most_common()))


def rate_note(c):
    """How long a leecher took, from its start to having every byte."""
    if c.finished is None:
        return ""
    return "%s %s %.1f s" % (c.kind, c.name, c.finished - c.started)


# ---------------------------------------------------------------------------------------
# Scenarios. Each takes a Scenario and returns an optional note for its PASS line.


def single(sc, size_mib, tag):
    seed_dir = os.path.join(sc.dir, "seed")
    path = os.path.join(seed_dir, "single-%s.bin" % tag)
    payload(path, size_mib * MIB + 12345, tag)
    return seed_dir, path


def tyrant_leech_from(kind):
    """1a. A tyrant leecher downloads a single file from a real client that seeds."""
    def run(sc):
        port = sc.tracker()
        seed_dir, path = single(sc, 8, "1a-" + kind)
        torrent = os.path.join(sc.dir, "t.torrent")
        sc.make(path, torrent, "http://127.0.0.1:%d/announce" % port, 256)
        seed = seeding(sc.client(kind, "seed", torrent, seed_dir, True), port)
        ty = sc.client("tyrant", "leech", torrent, os.path.join(sc.dir, "leech"), False)
        wait_done([ty], time.monotonic() + TIMEOUT, [seed])
        compare(path, [ty])
        return "; ".join(x for x in (rate_note(ty), closes_note([ty])) if x)
    return run


def leech_from_tyrant(kind):
    """1b. A real client downloads a single file from a tyrant seeder (which dials it:
    transmission does not dial 127.x peers)."""
    def run(sc):
        port = sc.tracker()
        seed_dir, path = single(sc, 8, "1b-" + kind)
        torrent = os.path.join(sc.dir, "t.torrent")
        sc.make(path, torrent, "http://127.0.0.1:%d/announce" % port, 128)
        seed = seeding(sc.client("tyrant", "seed", torrent, seed_dir, True), port)
        leech = sc.client(kind, "leech", torrent, os.path.join(sc.dir, "leech"), False)
        wait_done([leech], time.monotonic() + TIMEOUT, [seed])
        compare(path, [leech])
        return "; ".join(x for x in (rate_note(leech), closes_note([seed])) if x)
    return run


def real_clients_on_tyrant_tracker(udp):
    """2. Real clients find each other through `tyrant tracker` alone. Over HTTP: an aria2
    seeder, rtorrent and libtorrent leechers. Over BEP 15 UDP (same port number): an
    rtorrent seeder, libtorrent and transmission leechers (aria2 speaks UDP trackers only
    with its DHT on); transmission dials nobody on 127.x, so it is served by whoever dials
    it."""
    def run(sc):
        port = sc.tracker()
        if udp:
            check(udp_connect_probe(port), "tyrant tracker does not answer a BEP 15 connect "
                  "request on udp://127.0.0.1:%d" % port)
        seed_dir, path = single(sc, 8, "2-%s" % udp)
        torrent = os.path.join(sc.dir, "t.torrent")
        sc.make(path, torrent, "http://127.0.0.1:%d/announce" % port, 256)
        if udp:
            retracker(torrent, torrent, [["udp://127.0.0.1:%d/announce" % port]])
            seed = seeding(sc.client("rtorrent", "seed", torrent, seed_dir, True, udp=True), port)
            # transmission first, so that libtorrent's first reply lists it.
            kinds = [("transmission", {}), ("libtorrent", {})]
        else:
            seed = seeding(sc.client("aria2", "seed", torrent, seed_dir, True), port)
            kinds = [("rtorrent", {}), ("libtorrent", {})]
        leechers = []
        for k, kw in kinds:
            leechers.append(sc.client(k, k, torrent, os.path.join(sc.dir, k), False, **kw))
            # Each is listed before the next starts, so the next one's first reply has it.
            wait_seeds(port, seed.info_hash, 1, time.monotonic() + TIMEOUT, len(leechers))
        wait_done(leechers, time.monotonic() + TIMEOUT, [seed])
        compare(path, leechers)
        return "; ".join(rate_note(c) for c in leechers)
    return run


def tyrant_on_opentracker(udp):
    """3. tyrant announces to opentracker (HTTP, or UDP) and finds an aria2 seeder that
    announced there over HTTP (the same info-hash in a torrent of its own)."""
    def run(sc):
        seed_dir, path = single(sc, 8, "3-%s" % udp)
        t0 = os.path.join(sc.dir, "t0.torrent")
        ih = sc.make(path, t0, "http://127.0.0.1:1/announce", 256)
        port = sc.opentracker([ih])
        http_t = retracker(t0, os.path.join(sc.dir, "http.torrent"),
                           [["http://127.0.0.1:%d/announce" % port]])
        ty_t = http_t if not udp else retracker(
            t0, os.path.join(sc.dir, "udp.torrent"), [["udp://127.0.0.1:%d/announce" % port]])
        check(info_hash(ty_t) == ih, "rewriting the trackers changed the info-hash")
        seed = seeding(sc.client("aria2", "seed", http_t, seed_dir, True), port)
        ty = sc.client("tyrant", "leech", ty_t, os.path.join(sc.dir, "leech"), False)
        wait_done([ty], time.monotonic() + TIMEOUT, [seed])
        compare(path, [ty])
        return "; ".join(x for x in (rate_note(ty), closes_note([ty])) if x)
    return run


def mixed_swarm(seed_kind):
    """4. One seeder capped at 2 MiB/s, a vanilla and a BitTyrant tyrant leecher and two
    real-client leechers, on tyrant's tracker: everyone ends with identical bytes. With a
    real seeder (aria2) the real leechers are rtorrent and libtorrent; with a tyrant
    seeder they are aria2 and transmission (served only by peers that dial it)."""
    def run(sc):
        port = sc.tracker()
        seed_dir = os.path.join(sc.dir, "seed")
        path = os.path.join(seed_dir, "mixed.bin")
        payload(path, 12 * MIB + 777, "4-" + seed_kind)
        torrent = os.path.join(sc.dir, "t.torrent")
        sc.make(path, torrent, "http://127.0.0.1:%d/announce" % port, 128)
        cap = 2048
        if seed_kind == "tyrant":
            seed = sc.client("tyrant", "seed", torrent, seed_dir, True, extra=["--up", str(cap)])
            real = ["aria2", "transmission"]
        else:
            seed = sc.client(seed_kind, "seed", torrent, seed_dir, True, up_kib=cap)
            real = ["rtorrent", "libtorrent"]
        seeding(seed, port)
        ty = sc.client("tyrant", "ty-vanilla", torrent, os.path.join(sc.dir, "ty-vanilla"),
                       False, extra=["--up", "1024"], stop_after=False)
        tt = sc.client("tyrant", "ty-tyrant", torrent, os.path.join(sc.dir, "ty-tyrant"),
                       False, extra=["--tyrant", "--up", "1024"], stop_after=False)
        others = []
        for kind in real:
            why = missing(kind)
            if why:
                raise Skip(why)
            others.append(sc.client(kind, kind, torrent, os.path.join(sc.dir, kind), False))
        leechers = [ty, tt] + others
        wait_done(leechers, time.monotonic() + TIMEOUT, [seed])
        compare(path, leechers)
        ups = ", ".join("%s up %d KiB" % (c.name, c.uploaded() >> 10) for c in leechers)
        return "%s; %s; %s" % (", ".join("%s %.1f s" % (c.name, c.finished - c.started)
                                         for c in leechers), ups, closes_note([seed, ty, tt]))
    return run


def multifile(direction):
    """5. A multi-file torrent (nested directories, an empty file, files across piece
    boundaries): rtorrent leeches it from a tyrant seeder, or tyrant from an aria2
    seeder."""
    def run(sc):
        port = sc.tracker()
        seed_dir = os.path.join(sc.dir, "seed")
        root = os.path.join(seed_dir, "multi")
        multi_file_tree(root, "5-" + direction)
        torrent = os.path.join(sc.dir, "t.torrent")
        sc.make(root, torrent, "http://127.0.0.1:%d/announce" % port, 64)
        if direction == "tyrant_to_rtorrent":
            seed = seeding(sc.client("tyrant", "seed", torrent, seed_dir, True), port)
            leech = sc.client("rtorrent", "leech", torrent, os.path.join(sc.dir, "leech"), False)
            tyrants = [seed]
        else:
            seed = seeding(sc.client("aria2", "seed", torrent, seed_dir, True), port)
            leech = sc.client("tyrant", "leech", torrent, os.path.join(sc.dir, "leech"), False)
            tyrants = [leech]
        wait_done([leech], time.monotonic() + TIMEOUT, [seed])
        compare(root, [leech])
        return "; ".join(x for x in (rate_note(leech), closes_note(tyrants)) if x)
    return run


def scenario_resume(sc):
    """6. A tyrant leecher whose only source is an aria2 seeder capped at 1 MiB/s is
    killed with SIGKILL about halfway, restarted with the same --dir, and finishes with
    identical bytes, having fetched again no more than what it had not verified."""
    port = sc.tracker()
    seed_dir, path = single(sc, 12, "6")
    torrent = os.path.join(sc.dir, "t.torrent")
    sc.make(path, torrent, "http://127.0.0.1:%d/announce" % port, 256)
    seed = seeding(sc.client("aria2", "seed", torrent, seed_dir, True, up_kib=1024), port)
    dl = os.path.join(sc.dir, "leech")
    first = sc.client("tyrant", "leech1", torrent, dl, False)
    deadline = time.monotonic() + TIMEOUT
    while True:
        first.alive()
        have, pieces = first.stat("have"), first.stat("pieces")
        if have is not None and pieces and have >= pieces / 2:
            break
        check(time.monotonic() < deadline, "the first leecher did not reach half in %d s: %s"
              % (TIMEOUT, first.describe()))
        time.sleep(0.05)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)
    check(have < pieces, "the first leecher finished before it could be killed (the cap "
          "did not hold)")
    second = sc.client("tyrant", "leech2", torrent, dl, False)
    wait_done([second], time.monotonic() + TIMEOUT, [seed])
    compare(path, [second])
    with open(second.stats) as f:
        m = re.search(r"^start .*\bresumed=(\d+)", f.read(), re.M)
    resumed = int(m.group(1)) if m else None
    check(resumed is not None, "the restarted leecher's stats have no resumed= on `start`")
    # The pieces verified before the kill are on disk (tyrant writes a piece once it has
    # checked it); a few may have been in flight to the disk thread.
    check(resumed >= have - 4, "killed with %d of %d pieces verified, restarted with only "
          "%d" % (have, pieces, resumed))
    piece = 256 * KIB
    fetched = second.downloaded()
    check(fetched <= (pieces - resumed) * piece + 4 * piece,
          "the restarted leecher downloaded %d B for %d missing pieces"
          % (fetched, pieces - resumed))
    return "killed at %d/%d pieces, resumed with %d, fetched %d KiB more" % (
        have, pieces, resumed, fetched >> 10)


SCENARIOS = []
for _k in ("aria2", "transmission", "rtorrent", "libtorrent"):
    SCENARIOS.append(("tyrant_leech_from_" + _k, tyrant_leech_from(_k), ["tyrant", _k]))
for _k in ("aria2", "transmission", "rtorrent", "libtorrent"):
    SCENARIOS.append((_k + "_leech_from_tyrant", leech_from_tyrant(_k), ["tyrant", _k]))
SCENARIOS += [
    ("tyrant_tracker_http_real_clients", real_clients_on_tyrant_tracker(False),
     ["aria2", "rtorrent", "libtorrent"]),
    ("tyrant_tracker_udp_real_clients", real_clients_on_tyrant_tracker(True),
     ["rtorrent", "libtorrent", "transmission"]),
    ("tyrant_on_opentracker_http", tyrant_on_opentracker(False), ["opentracker", "aria2"]),
    ("tyrant_on_opentracker_udp", tyrant_on_opentracker(True), ["opentracker", "aria2"]),
    ("mixed_swarm_aria2_seed", mixed_swarm("aria2"), ["aria2", "rtorrent", "libtorrent"]),
    ("mixed_swarm_tyrant_seed", mixed_swarm("tyrant"), ["aria2", "transmission"]),
    ("multifile_tyrant_to_rtorrent", multifile("tyrant_to_rtorrent"), ["rtorrent"]),
    ("multifile_aria2_to_tyrant", multifile("aria2_to_tyrant"), ["aria2"]),
    ("resume_after_sigkill", scenario_resume, ["aria2"]),
]


def main(argv):
    names = [n for n, _, _ in SCENARIOS]
    if "--list" in argv[1:]:
        print("\n".join(names))
        return 0
    if not (os.path.isfile(TYRANT) and os.access(TYRANT, os.X_OK)):
        print("realclients: no tyrant binary at %s (build it, or set TYRANT)" % TYRANT)
        print("realclients: 0 passed, 1 failed")
        return 1
    wanted = argv[1:]
    unknown = [w for w in wanted if w not in names]
    if unknown:
        print("realclients: unknown scenario(s) %s; known: %s"
              % (", ".join(unknown), ", ".join(names)))
        return 2
    have = ", ".join("%s %s" % (k, "yes" if missing(k) is None else "no")
                     for k in ("aria2", "transmission", "rtorrent", "libtorrent", "opentracker"))
    print("realclients: tyrant %s; clients: %s" % (TYRANT, have), flush=True)
    passed = failed = skipped = 0
    t0 = time.monotonic()
    for name, fn, needs in SCENARIOS:
        if wanted and name not in wanted:
            continue
        why = next((m for m in map(missing, needs) if m), None)
        if why:
            print("SKIP %s: %s" % (name, why), flush=True)
            skipped += 1
            continue
        sc = Scenario(name)
        start = time.monotonic()
        try:
            note = fn(sc)
            judge_closes(sc)
            print("PASS %s (%.1f s)%s" % (name, time.monotonic() - start,
                                          " " + note if note else ""), flush=True)
            passed += 1
        except Skip as e:
            print("SKIP %s: %s" % (name, e), flush=True)
            skipped += 1
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
    print("realclients: %.0f s in all" % (time.monotonic() - t0))
    print("realclients: %d passed, %d failed, %d skipped" % (passed, failed, skipped), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    # A SIGTERM (e.g. a CI time-out) unwinds like an exception, so that every scenario's
    # `finally` stops its processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(main(sys.argv))
    except KeyboardInterrupt:
        print("realclients: interrupted")
        sys.exit(130)
