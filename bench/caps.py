#!/usr/bin/env python3
"""caps: does `--up C` hold? Achieved upload rate of a tyrant seeder vs its cap.

    cargo build --release
    python3 bench/caps.py                       # full matrix, 60 s windows (~6 min)
    python3 bench/caps.py --secs 30 --serial    # every cell alone, 30 s windows (~12 min)
    python3 bench/caps.py --caps 20,50000 --peers 4 --secs 20

For each cap C (KiB/s; default 1, 5, 20, 100, 1000, 50000) and each number N of unchoked
downloaders (default 1, 4, 40) one tyrant seeder runs with `--up C --slots N+1` (N regular
slots and the optimistic one, so all N downloaders are unchoked by the seed choker and by
its fast unchoke at once), `--stats` and `--trace`. The downloaders are light test peers in
this process (raw non-blocking sockets, one `selectors` loop for all of them): handshake,
interested, then a pipeline of `--pipeline` 16 KiB requests, one new request per block
received, cycling over every block of a 16 MiB torrent again and again (a seeder serves a
block any number of times, so the file stays small while GiBs flow). A CHOKE drops the
pipeline (BEP 3), an UNCHOKE refills it; a keep-alive goes out every 30 s.

After `--warmup` s (the bucket's initial one-second burst and the first unchoke are over)
a window of `--secs` s is measured, on both sides:
  seeder   uploaded bytes between the stats ticks read at the window's start and end,
           divided by the ticks' time difference (the seeder's own clock);
  window   payload bytes the downloaders received inside the window / window length;
  span     blocks are discrete (16 KiB): at 1 KiB/s a 60 s window holds 3 or 4 of them, so
           `window` is quantised by up to one block (the `quant` column, 16 KiB / (C * W)),
           and above 80 KiB/s the pacer grants several blocks at once, so blocks come in
           bursts of up to a fifth of a second of the cap. `span` removes both: the
           least-squares slope of the bytes received so far against the arrival times in
           the window, which is exact for evenly spaced blocks (it is then (bytes after the
           first block) / (first to last arrival)) and for evenly spaced equal bursts it
           misses by a fraction of a burst over the whole window squared, not over the
           window. The error column uses `span`.
Unchoked: the fewest downloaders unchoked at any moment in the window (receiver side,
exact), the fewest `unchoked=` of the seeder's ticks in the window, and the fewest peers
with action=unchoke|optimistic in each trace round inside the window.

Caps <= --parallel-max-kib (1000) run all at once, each with its own seeder process (they
need little CPU: 3 x 1.1 MiB/s in all), so the whole low-cap matrix costs one window;
larger caps run one at a time (`--serial`: every cell alone). Then `--ceiling-secs` s per N
with `--up 0` (uncapped) show the test rig's own ceiling: a capped cell is meaningful only
well below it. All numbers of one invocation come from the same run; exit status 1 if any
|error| > --max-error (2 %).
"""

import argparse
import os
import random
import selectors
import socket
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYRANT = os.environ.get("TYRANT") or os.path.join(ROOT, "target", "release", "tyrant")
KIB = 1024
BLOCK = 16 * KIB
PSTR = b"\x13BitTorrent protocol"

CHOKE, UNCHOKE, INTERESTED, HAVE, BITFIELD, REQUEST, PIECE = 0, 1, 2, 4, 5, 6, 7


# --------------------------------------------------------------------------------------
# Light test peers: many BitTorrent downloaders on one selectors loop.
# --------------------------------------------------------------------------------------



def fitted_rate(times, sizes):
    """Least-squares slope of cumulative bytes against arrival time (bytes/s)."""
    n = len(times)
    if n < 2 or times[-1] <= times[0]:
        return float("nan")
    cum, acc = [], 0
    for x in sizes:
        acc += x
        cum.append(acc)
    mt, mc = sum(times) / n, sum(cum) / n
    var = sum((t - mt) ** 2 for t in times)
    return sum((t - mt) * (c - mc) for t, c in zip(times, cum)) / var if var > 0 else float("nan")

class LightPeer:
    """One raw-socket BEP 3 downloader. It never verifies data, it only counts it."""

    __slots__ = ("eng", "sock", "cell", "info_hash", "peer_id", "blocks", "next_block",
                 "pipeline", "outstanding", "rbuf", "wbuf", "got_handshake", "choked",
                 "bytes", "nblocks", "closed", "why", "last_sent", "request_every",
                 "next_request", "interested_sent", "choked_since", "choked_secs",
                 "connected_at")

    def __init__(self, eng, cell, info_hash, blocks, pipeline, request_every=0.0):
        self.eng = eng
        self.cell = cell  # the object that collects this peer's arrivals (or None)
        self.info_hash = info_hash
        self.peer_id = b"-LP0001-" + os.urandom(6).hex().encode()[:12]
        self.blocks = blocks  # list of (index, begin, length) to cycle over
        self.next_block = random.randrange(len(blocks))
        self.pipeline = pipeline  # requests kept in flight while unchoked (0: slow mode)
        self.request_every = request_every  # slow mode: one request every this many s
        self.next_request = 0.0
        self.outstanding = 0
        self.rbuf = bytearray()
        self.wbuf = bytearray()
        self.got_handshake = False
        self.choked = True
        self.choked_since = None
        self.choked_secs = 0.0
        self.bytes = 0
        self.nblocks = 0
        self.closed = False
        self.why = ""
        self.last_sent = 0.0
        self.interested_sent = False
        self.connected_at = None
        self.sock = None

    def connect(self, addr):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        err = s.connect_ex(addr)
        if err not in (0, 115):  # EINPROGRESS
            s.close()
            raise OSError(err, os.strerror(err))
        self.sock = s
        self.send(PSTR + b"\0" * 8 + self.info_hash + self.peer_id)
        self.send(struct.pack(">IB", 1, INTERESTED))
        self.interested_sent = True
        self.eng.register(self)

    def send(self, data):
        self.wbuf += data
        self.last_sent = time.monotonic()

    def request_block(self):
        i, b, n = self.blocks[self.next_block]
        self.next_block = (self.next_block + 1) % len(self.blocks)
        self.send(struct.pack(">IBIII", 13, REQUEST, i, b, n))
        self.outstanding += 1

    def fill(self):
        if self.choked or self.pipeline <= 0:
            return
        while self.outstanding < self.pipeline:
            self.request_block()

    def on_readable(self, now):
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.close("recv: %s" % e)
            return
        if not data:
            self.close("closed by the seeder")
            return
        buf = self.rbuf
        buf += data
        pos = 0
        if not self.got_handshake:
            if len(buf) < 68:
                return
            if buf[:20] != PSTR or buf[28:48] != self.info_hash:
                self.close("bad handshake")
                return
            self.got_handshake = True
            self.connected_at = now
            pos = 68
        end = len(buf)
        while end - pos >= 4:
            n = int.from_bytes(buf[pos:pos + 4], "big")
            if end - pos - 4 < n:
                break
            if n > 0:
                mid = buf[pos + 4]
                if mid == PIECE:
                    length = n - 9
                    self.bytes += length
                    self.nblocks += 1
                    if self.outstanding > 0:
                        self.outstanding -= 1
                    if self.cell is not None:
                        self.cell.arrival(now, length)
                    self.fill()
                elif mid == CHOKE:
                    if not self.choked:
                        self.choked = True
                        self.choked_since = now
                    self.outstanding = 0  # BEP 3: a choke discards our requests
                elif mid == UNCHOKE:
                    if self.choked:
                        self.choked = False
                        if self.choked_since is not None:
                            self.choked_secs += now - self.choked_since
                        self.choked_since = None
                    self.fill()
            pos += 4 + n
        if pos:
            del buf[:pos]

    def on_writable(self):
        if not self.wbuf:
            return
        try:
            k = self.sock.send(self.wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:
            self.close("send: %s" % e)
            return
        del self.wbuf[:k]

    def periodic(self, now):
        if self.closed:
            return
        if self.pipeline <= 0 and self.request_every > 0 and now >= self.next_request:
            # Slow mode (footprint): one request now and then, choked or not (a choked
            # seeder ignores it), so the connection is never idle.
            if self.next_request:
                self.request_block()
                self.outstanding = 0
            self.next_request = now + self.request_every * random.uniform(0.5, 1.5)
        elif now - self.last_sent > 30.0:
            self.send(b"\0\0\0\0")  # keep-alive

    def close(self, why):
        if self.closed:
            return
        self.closed = True
        self.why = why
        self.eng.unregister(self)
        try:
            self.sock.close()
        except OSError:
            pass


class Engine:
    """One selectors loop for any number of LightPeers; every call is time-bounded."""

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.peers = []
        self.last_periodic = 0.0

    def register(self, p):
        self.peers.append(p)
        self.sel.register(p.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, p)

    def unregister(self, p):
        try:
            self.sel.unregister(p.sock)
        except (KeyError, ValueError):
            pass

    def connect_all(self, peers, addr, wave=8):
        """Connect `peers` to `addr` a wave at a time. A tyrant keeps at most 16 incoming
        connections waiting for their handshake and closes the rest (its half-open bound);
        50 dialled at once left 16-25 of them connected (cost.py, 2026-11-30)."""
        for i in range(0, len(peers), wave):
            for p in peers[i:i + wave]:
                p.connect(addr)
            end = time.monotonic() + 5
            while time.monotonic() < end and not all(p.got_handshake or p.closed for p in peers[i:i + wave]):
                self.run_until(min(end, time.monotonic() + 0.02))

    def run_until(self, deadline):
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            # Only ask for writability when something is queued.
            for p in self.peers:
                if p.closed:
                    continue
                want = selectors.EVENT_READ | (selectors.EVENT_WRITE if p.wbuf else 0)
                key = self.sel.get_key(p.sock)
                if key.events != want:
                    self.sel.modify(p.sock, want, p)
            events = self.sel.select(min(0.2, deadline - now)) if self.sel.get_map() else None
            if events is None:
                time.sleep(min(0.2, max(0.0, deadline - now)))
                events = []
            now = time.monotonic()
            for key, mask in events:
                p = key.data
                if mask & selectors.EVENT_READ and not p.closed:
                    p.on_readable(now)
                if mask & selectors.EVENT_WRITE and not p.closed:
                    p.on_writable()
            for p in self.peers:
                if p.wbuf and not p.closed:
                    p.on_writable()
            if now - self.last_periodic >= 0.5:
                self.last_periodic = now
                for p in self.peers:
                    p.periodic(now)

    def close_all(self):
        """Close every peer and the selector; safe to call twice."""
        if self.sel is None:
            return
        for p in self.peers:
            p.close("bench over")
        self.sel.close()
        self.sel = None


# --------------------------------------------------------------------------------------
# Tyrant processes, torrent and stats.
# --------------------------------------------------------------------------------------


def make_torrent(work, size_mib=16, piece_kib=256):
    """A random file and its torrent (announce to a dead port: no tracker needed)."""
    data_dir = os.path.join(work, "seed")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "caps.bin")
    size = size_mib << 20
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        with open(path, "wb") as f:
            f.write(os.urandom(size))
    torrent = os.path.join(work, "caps.torrent")
    out = subprocess.run([TYRANT, "make", path, "--announce", "http://127.0.0.1:1/announce",
                          "--piece-size", str(piece_kib), "-o", torrent],
                         check=True, capture_output=True, text=True).stdout
    words = dict(w.split("=", 1) for w in out.split() if "=" in w)
    info_hash = bytes.fromhex(words["info_hash"])
    total, plen = int(words["total"]), int(words["piece_length"])
    blocks = []
    for i in range(int(words["pieces"])):
        left = min(plen, total - i * plen)
        for b in range(0, left, BLOCK):
            blocks.append((i, b, min(BLOCK, left - b)))
    return torrent, data_dir, info_hash, blocks


def start_seeder(torrent, data_dir, tag, work, extra, timeout=30.0):
    """Start `tyrant --seed ... extra`; return (Popen, port, stats path, trace path)."""
    stats = os.path.join(work, "stats-%s.txt" % tag)
    trace = os.path.join(work, "trace-%s.txt" % tag)
    for f in (stats, trace):
        if os.path.exists(f):
            os.remove(f)
    log = open(os.path.join(work, "seeder-%s.log" % tag), "wb")
    p = subprocess.Popen([TYRANT, "--seed", "--dir", data_dir, "--bind", "127.0.0.1",
                          "--port", "0", "-q", "--stats", stats, "--trace", trace]
                         + extra + [torrent],
                         stdout=subprocess.DEVNULL, stderr=log)
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError("seeder %s exited with %s" % (tag, p.returncode))
        if os.path.exists(stats):
            with open(stats) as f:
                for line in f:
                    if line.startswith("start "):
                        listen = [w for w in line.split() if w.startswith("listen=")][0]
                        return p, int(listen.rsplit(":", 1)[1]), stats, trace
        time.sleep(0.05)
    p.kill()
    p.wait()
    raise RuntimeError("seeder %s did not start" % tag)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def ticks(stats):
    """Every tick line of a stats file as a dict of numbers."""
    out = []
    with open(stats) as f:
        for line in f:
            if line.startswith("tick "):
                d = {}
                for w in line.split()[1:]:
                    k, v = w.split("=", 1)
                    try:
                        d[k] = float(v)
                    except ValueError:
                        pass
                out.append(d)
    return out


def trace_rounds(trace):
    """{round: (t, [action, ...])} from a trace file."""
    rounds = {}
    if not os.path.exists(trace):
        return rounds
    with open(trace) as f:
        for line in f:
            if not line.startswith("round="):
                continue
            d = dict(w.split("=", 1) for w in line.split() if "=" in w)
            r = int(d["round"])
            t, acts = rounds.get(r, (float(d["t"]), []))
            acts.append(d.get("action", "?"))
            rounds[r] = (t, acts)
    return rounds


# --------------------------------------------------------------------------------------
# One (cap, N) cell.
# --------------------------------------------------------------------------------------


class Cell:
    def __init__(self, cap, n):
        self.cap, self.n = cap, n
        self.window = None  # (t0, t1), monotonic
        self.times = []  # arrival times of blocks inside the window
        self.sizes = []
        self.proc = self.port = self.stats = self.trace = None
        self.peers = []
        self.tick0 = self.tick1 = None
        self.min_unchoked_recv = None
        self.start_wall = None

    @property
    def tag(self):
        return "c%g-n%d" % (self.cap, self.n)

    def arrival(self, now, length):
        w = self.window
        if w is not None and w[0] <= now <= w[1]:
            self.times.append(now)
            self.sizes.append(length)

    def sample_unchoked(self):
        k = sum(1 for p in self.peers if not p.closed and not p.choked and p.got_handshake)
        self.min_unchoked_recv = k if self.min_unchoked_recv is None else min(self.min_unchoked_recv, k)

    def result(self):
        t0, t1 = self.window
        secs = t1 - t0
        total = sum(self.sizes)
        window_rate = total / secs
        span_rate = fitted_rate(self.times, self.sizes)
        seeder_rate = float("nan")
        tk_min_unchoked = None
        if self.tick0 and self.tick1 and self.tick1["t"] > self.tick0["t"]:
            seeder_rate = (self.tick1["uploaded"] - self.tick0["uploaded"]) / (self.tick1["t"] - self.tick0["t"])
            tk = [t for t in ticks(self.stats) if self.tick0["t"] <= t["t"] <= self.tick1["t"]]
            tk_min_unchoked = int(min(t["unchoked"] for t in tk)) if tk else None
        tr_min = None
        if self.tick0 and self.tick1:
            for r, (t, acts) in trace_rounds(self.trace).items():
                if self.tick0["t"] <= t <= self.tick1["t"]:
                    k = sum(1 for a in acts if a in ("unchoke", "optimistic"))
                    tr_min = k if tr_min is None else min(tr_min, k)
        cap_b = self.cap * KIB
        return {
            "cap": self.cap, "n": self.n, "secs": secs, "blocks": len(self.times),
            "seeder": seeder_rate, "window": window_rate, "span": span_rate,
            "err_window": 100.0 * (window_rate / cap_b - 1) if cap_b else float("nan"),
            "err_span": 100.0 * (span_rate / cap_b - 1) if cap_b else float("nan"),
            "quant": 100.0 * BLOCK / (cap_b * secs) if cap_b else 0.0,
            "unchoked_recv": self.min_unchoked_recv, "unchoked_ticks": tk_min_unchoked,
            "unchoked_trace": tr_min,
            "closed": sum(1 for p in self.peers if p.closed),
            "why": sorted(set(p.why for p in self.peers if p.closed)),
        }


def run_group(cells, eng_args, torrent, data_dir, info_hash, blocks, work, warmup, secs):
    """Run these cells at the same time (one seeder each), measure one window."""
    eng = Engine()
    try:
        for c in cells:
            extra = ["--up", "%g" % c.cap, "--slots", str(c.n + 1),
                     "--max-peers", str(max(60, c.n + 10))]
            c.proc, c.port, c.stats, c.trace = start_seeder(torrent, data_dir, c.tag, work, extra)
        for c in cells:
            c.peers = [LightPeer(eng, c, info_hash, blocks, eng_args.pipeline) for _ in range(c.n)]
            eng.connect_all(c.peers, ("127.0.0.1", c.port))
        t_start = time.monotonic()
        eng.run_until(t_start + warmup)
        t0 = time.monotonic()
        for c in cells:
            tk = ticks(c.stats)
            c.tick0 = tk[-1] if tk else None
            c.window = (t0, t0 + secs)
        end = t0 + secs
        while True:
            now = time.monotonic()
            if now >= end:
                break
            for c in cells:
                c.sample_unchoked()
            eng.run_until(min(end, now + 0.25))
        for c in cells:
            c.sample_unchoked()
            tk = ticks(c.stats)
            c.tick1 = tk[-1] if tk else None
        return [c.result() for c in cells]
    finally:
        eng.close_all()
        for c in cells:
            if c.proc is not None:
                stop(c.proc)


def unchoked(r):
    return "/".join("-" if v is None else str(v)
                    for v in (r["unchoked_recv"], r["unchoked_ticks"], r["unchoked_trace"]))


def fmt_rate(bps):
    if bps != bps:  # nan
        return "-"
    return "%.2f" % (bps / KIB) if bps < 100 * KIB else "%.0f" % (bps / KIB)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--caps", default="1,5,20,100,1000,50000", help="KiB/s, comma-separated")
    ap.add_argument("--peers", default="1,4,40", help="unchoked downloaders, comma-separated")
    ap.add_argument("--secs", type=float, default=60.0, help="measured window [60]")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before the window [10]")
    ap.add_argument("--pipeline", type=int, default=64, help="requests in flight per peer [64]")
    ap.add_argument("--parallel-max-kib", type=float, default=1000.0,
                    help="caps up to this run all at once, one seeder each [1000]")
    ap.add_argument("--serial", action="store_true", help="every cell alone")
    ap.add_argument("--ceiling-secs", type=float, default=10.0,
                    help="uncapped window per N showing the rig's ceiling, 0 = skip [10]")
    ap.add_argument("--max-error", type=float, default=2.0, help="percent [2]")
    ap.add_argument("--dir", default="/tmp/tyrant-caps")
    a = ap.parse_args()
    caps = [float(x) for x in a.caps.split(",")]
    ns = [int(x) for x in a.peers.split(",")]
    if not os.access(TYRANT, os.X_OK):
        sys.exit("caps: %s is not built (cargo build --release, or set TYRANT)" % TYRANT)
    os.makedirs(a.dir, exist_ok=True)
    torrent, data_dir, info_hash, blocks = make_torrent(a.dir)

    with open("/proc/cpuinfo") as f:
        model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    print("caps: %s, %d cores (%s), window %g s after %g s warm-up, pipeline %d x 16 KiB, "
          "16 MiB torrent, 256 KiB pieces; tyrant %s"
          % (time.strftime("%Y-%m-%d %H:%M:%S"), os.cpu_count(), model, a.secs, a.warmup,
             a.pipeline, TYRANT), flush=True)

    groups = []
    low = [Cell(c, n) for c in caps for n in ns if c <= a.parallel_max_kib]
    high = [Cell(c, n) for c in caps for n in ns if c > a.parallel_max_kib]
    if a.serial:
        groups = [[c] for c in low + high]
    else:
        groups = ([low] if low else []) + [[c] for c in high]
    results = []
    for g in groups:
        print("  running %s (%d seeder%s at once) ..." % (", ".join(c.tag for c in g), len(g),
                                                          "s" if len(g) > 1 else ""), flush=True)
        results += run_group(g, a, torrent, data_dir, info_hash, blocks, a.dir, a.warmup, a.secs)
    ceilings = []
    if a.ceiling_secs > 0:
        for n in ns:
            print("  running uncapped ceiling, N=%d ..." % n, flush=True)
            ceilings += run_group([Cell(0, n)], a, torrent, data_dir, info_hash, blocks, a.dir,
                                  min(a.warmup, 3.0), a.ceiling_secs)

    print()
    print("%9s %3s %13s %9s %9s %9s %7s %9s %8s %7s %8s" % (
        "cap KiB/s", "N", "unchoked r/t/T", "seeder", "window", "span", "blocks",
        "err_win%", "quant%", "err%", "dropped"))
    results.sort(key=lambda r: (r["cap"], r["n"]))
    worst = None
    worst_win = None
    bad = []
    for r in results:
        unch = unchoked(r)
        print("%9g %3d %13s %9s %9s %9s %7d %+9.2f %8.2f %+7.3f %8d" % (
            r["cap"], r["n"], unch, fmt_rate(r["seeder"]), fmt_rate(r["window"]),
            fmt_rate(r["span"]), r["blocks"], r["err_window"], r["quant"], r["err_span"],
            r["closed"]))
        e = r["err_span"]
        if e != e or abs(e) > a.max_error or r["unchoked_recv"] != r["n"] or r["closed"]:
            bad.append(r)
        if e == e and (worst is None or abs(e) > abs(worst["err_span"])):
            worst = r
        if r["quant"] <= 0.5 and (worst_win is None or abs(r["err_window"]) > abs(worst_win["err_window"])):
            worst_win = r
    for r in ceilings:
        print("%9s %3d %13s %9s %9s %9s %7d %9s %8s %7s %8d" % (
            "uncapped", r["n"], unchoked(r),
            fmt_rate(r["seeder"]), fmt_rate(r["window"]), fmt_rate(r["span"]), r["blocks"],
            "-", "-", "-", r["closed"]))
    print("rates in KiB/s; unchoked = fewest downloaders unchoked during the window: "
          "receivers / seeder ticks / trace rounds")
    for r in results + ceilings:
        if r["why"]:
            print("  cap %g N %d: %d downloader(s) dropped: %s" % (r["cap"], r["n"], r["closed"], "; ".join(r["why"])))
    if worst is not None:
        print("worst error: %+.3f %% at --up %g with %d downloaders (span estimator)%s"
              % (worst["err_span"], worst["cap"], worst["n"],
                 "; worst window error where one block is <= 0.5 %% of the window: %+.3f %% "
                 "at --up %g, N %d" % (worst_win["err_window"], worst_win["cap"], worst_win["n"])
                 if worst_win else ""))
    if bad:
        print("FAIL: %d cell(s) over %.1f %% error, not fully unchoked, or with dropped downloaders: %s"
              % (len(bad), a.max_error, ", ".join("%g/%d" % (r["cap"], r["n"]) for r in bad)))
        sys.exit(1)
    print("ok: every cell within %.1f %% of its cap" % a.max_error)


if __name__ == "__main__":
    main()
