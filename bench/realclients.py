#!/usr/bin/env python3
"""realclients: real clients moving one big torrent to and from tyrant, next to libtorrent.

    cargo build --release -p tyrant
    apt-get install aria2 transmission-daemon rtorrent     # whichever are missing
    pip install libtorrent==2.1.1                          # the reference; required
    python3 bench/realclients.py [--size 256] [--reps 3] [--piece-kib 256]
                                 [--clients aria2,transmission,rtorrent,libtorrent,rqbit]
                                 [--json FILE] [--dir DIR] [--timeout 900]
    python3 bench/realclients.py --mse [--size 8] [--reps 5] [--hold-secs 30]

For each client X that is installed (rqbit only if `rqbit` is on PATH), in one run:
  (a) X downloads the torrent from a tyrant seeder, and from a libtorrent seeder;
  (b) tyrant downloads it from X as the seeder, and libtorrent (Python bindings) does.
Each arm is a fresh leecher with a fresh directory; the arms of a pair alternate (A B, then
B A, ...) for --reps repetitions. Every client runs with its defaults except what keeps it
on loopback (its own 127.0.0.N address, no DHT/LPD/PEX/UPnP/uTP) and its logging; the
trackers are `tyrant tracker`s with a 2 s interval, one per seeder, so a leecher sees
exactly one seeder. Reported: medians (and ranges) of the time from starting the leecher to
its having every byte (every file is checked against the original's SHA-1 afterwards), the
time to its first byte, and the ratio tyrant / libtorrent of the medians of the same
pair. The goal is a ratio <= 1.1. A markdown table goes to stdout, every run to --json.

--mse measures instead how long clients that open with an MSE/PE encrypted handshake
(aria2; libtorrent with out_enc_policy enabled, its default, and disabled; rtorrent with
try_outgoing) take to fall back to plaintext against a tyrant seeder, which refuses MSE
("protocol string length is not 19"), compared with a libtorrent seeder, which speaks it.
Seeder variants: `tyrant` (announces, and dials the leecher too), `tyrant-nodial` (the same
seeder made known to the tracker by hand, so only the client's own retry can connect them),
and two stand-ins in front of a tyrant seeder for other ways of refusing MSE: `fin` (read
what the client sent, then close gracefully, without tyrant's own handshake going out) and
`hold` (read and never answer, until the client gives up; at most --hold-secs, one rep).

Environment: TYRANT as for tests/realclients.py (whose client drivers this uses).
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ under tests/
sys.path.insert(0, os.path.join(ROOT, "tests"))
import realclients as rc  # noqa: E402

MIB = 1024 * 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(xs):
    if not xs:
        return "-"
    if len(xs) == 1:
        return "%.1f s" % xs[0]
    return "%.1f s (%.1f–%.1f)" % (med(xs), min(xs), max(xs))


def ratio(a, b):
    if not a or not b:
        return None
    return med(a) / med(b)


def fmt_ratio(r):
    if r is None:
        return "-"
    return ("**%.2f**" if r > 1.1 else "%.2f") % r


class Rqbit(rc.ProcClient):
    """rqbit (cargo install rqbit), only in this benchmark."""

    kind = "rqbit"

    def __init__(self, sc, name, torrent, data_dir, seed):
        super().__init__(sc, name, torrent, data_dir, seed)
        self.port = rc.free_port(self.ip)
        args = ["rqbit", "--disable-dht", "--disable-dht-persistence", "--disable-lsd",
                "--disable-upnp-port-forward", "--listen-ip", self.ip, "--listen-port",
                str(self.port), "--announce-port", str(self.port), "download",
                "--disable-http-api", "--overwrite", "-o", data_dir]
        if not seed:
            args.append("-e")  # exit when complete
        self.spawn(args + [torrent])

    def progress(self):
        d = self.total if self.proc.poll() == 0 and not self.seed else 0
        self.note_progress(d)
        return d, self.total

    def ready(self):
        self.alive()
        return time.monotonic() - self.started > 3  # it checks the data before serving

    def _done(self):
        rc_ = self.proc.poll()
        if rc_ is not None:
            rc.check(rc_ == 0, "rqbit %s exited with %s:\n%s" % (self.name, rc_, self.log()))
            return True
        return False


def make_client(sc, kind, name, torrent, data_dir, seed, **kw):
    if kind == "rqbit":
        c = Rqbit(sc, name, torrent, data_dir, seed)
        sc.clients.append(c)
        return c
    return sc.client(kind, name, torrent, data_dir, seed, **kw)


class Bench:
    def __init__(self, args):
        self.args = args
        self.sc = rc.Scenario("bench")
        self.runs = []
        seed_dir = os.path.join(self.sc.dir, "seed")
        self.path = os.path.join(seed_dir, "big.bin")
        log("bench: writing a %d MiB payload" % args.size)
        rc.payload(self.path, args.size * MIB, "bench-%d" % args.size)
        self.seed_dir = seed_dir
        self.sha1 = rc.digest(self.path)
        self.base = os.path.join(self.sc.dir, "base.torrent")
        self.ih = self.sc.make(self.path, self.base, "http://127.0.0.1:1/announce",
                               args.piece_kib)

    def torrent(self, tag, port):
        """A copy of the torrent that announces to the tracker on `port`."""
        return rc.retracker(self.base, os.path.join(self.sc.dir, tag + ".torrent"),
                            [["http://127.0.0.1:%d/announce" % port]])

    def seeder(self, kind, tag, **kw):
        port = self.sc.tracker()
        t = self.torrent(tag, port)
        c = make_client(self.sc, kind, tag, t, self.seed_dir, True, **kw)
        rc.seeding(c, port)
        return c, t, port

    def leech(self, kind, torrent, tag, **kw):
        """One fresh leecher until it has every byte; its times."""
        d = os.path.join(self.sc.dir, "run-" + tag)
        c = make_client(self.sc, kind, tag, torrent, d, False, **kw)
        try:
            rc.wait_done([c], time.monotonic() + self.args.timeout)
            total = c.finished - c.started
            first = (c.first_byte or c.finished) - c.started
            if isinstance(c, rc.Transmission):
                c.call("torrent-stop", {"ids": [c.id]})
                time.sleep(0.3)
            ok = os.path.isfile(c.data) and rc.digest(c.data) == self.sha1
            return {"total": total, "first_byte": first, "identical": ok, "error": None}
        except rc.Failure as e:
            return {"total": None, "first_byte": None, "identical": False,
                    "error": str(e).splitlines()[0]}
        finally:
            c.stop()
            if isinstance(c, rc.Libtorrent):
                self.sc.sessions = [x for x in self.sc.sessions if x is not c]
            shutil.rmtree(d, ignore_errors=True)

    def pair(self, part, client, arms, reps):
        """`arms`: [(label, leecher kind, torrent, kwargs)] x2, run alternately."""
        for i in range(reps):
            order = arms if i % 2 == 0 else arms[::-1]
            for label, kind, torrent, kw in order:
                tag = "%s-%s-%s-%d" % (part, client, label, i)
                r = self.leech(kind, torrent, tag, **kw)
                r.update(part=part, client=client, arm=label, rep=i)
                self.runs.append(r)
                log("  %s %s %s rep %d: %s" % (part, client, label, i,
                    "%.1f s (first byte %.1f s)%s" % (r["total"], r["first_byte"],
                                                      "" if r["identical"] else " DIFFERENT")
                    if r["total"] is not None else "FAILED: " + r["error"]))

    def times(self, part, client, arm, key="total"):
        return [r[key] for r in self.runs if r["part"] == part and r["client"] == client
                and r["arm"] == arm and r[key] is not None and r["identical"]]

    def close(self):
        self.sc.close()


def available(clients):
    out = []
    for k in clients:
        if k == "rqbit":
            if rc.which("rqbit"):
                out.append(k)
            else:
                log("bench: skipping rqbit: not on PATH (cargo install --locked rqbit "
                    "--no-default-features --features rust-tls)")
            continue
        why = rc.missing(k)
        if why:
            log("bench: skipping %s: %s" % (k, why))
        else:
            out.append(k)
    return out


def run_bulk(args):
    clients = available(args.clients.split(","))
    b = Bench(args)
    try:
        log("bench: %d MiB, %d KiB pieces, %d reps, clients %s" % (
            args.size, args.piece_kib, args.reps, ", ".join(clients)))
        ty_seed, ty_t, _ = b.seeder("tyrant", "seed-tyrant")
        lt_seed, lt_t, _ = b.seeder("libtorrent", "seed-libtorrent")
        for k in clients:
            # (a) the client leeches from a tyrant seeder and from a libtorrent seeder.
            b.pair("a", k, [("tyrant", k, ty_t, {}), ("libtorrent", k, lt_t, {})], args.reps)
            # (b) tyrant and libtorrent leech from the client as seeder.
            if k == "libtorrent":
                x_t = lt_t  # the libtorrent seeder of (a) serves
                seed = None
            else:
                seed, x_t, _ = b.seeder(k, "seed-" + k)
            b.pair("b", k, [("tyrant", "tyrant", x_t, {}),
                            ("libtorrent", "libtorrent", x_t, {})], args.reps)
            if seed is not None:
                seed.stop()
        report_bulk(b, clients, args)
    finally:
        b.close()


def report_bulk(b, clients, args):
    rows = []
    print("## bench/realclients.py: %d MiB, %d KiB pieces, medians of %d (range)\n"
          % (args.size, args.piece_kib, args.reps))
    print("(a) the client leeches from a tyrant seeder vs from a libtorrent seeder; (b) a "
          "tyrant leecher vs a libtorrent leecher, the client seeding. Time from starting "
          "the leecher to its having every byte; ratio = tyrant / libtorrent.\n")
    print("| client | (a) from tyrant | (a) from libtorrent | ratio | (b) tyrant leecher "
          "| (b) libtorrent leecher | ratio |")
    print("|---|---|---|---|---|---|---|")
    for k in clients:
        at, al = b.times("a", k, "tyrant"), b.times("a", k, "libtorrent")
        bt, bl = b.times("b", k, "tyrant"), b.times("b", k, "libtorrent")
        ra, rb = ratio(at, al), ratio(bt, bl)
        print("| %s | %s | %s | %s | %s | %s | %s |" % (k, fmt(at), fmt(al), fmt_ratio(ra),
                                                        fmt(bt), fmt(bl), fmt_ratio(rb)))
        rows.append({"client": k, "a_tyrant": at, "a_libtorrent": al, "a_ratio": ra,
                     "b_tyrant": bt, "b_libtorrent": bl, "b_ratio": rb})
    print("\nTime to the first byte, medians:\n")
    print("| client | (a) from tyrant | (a) from libtorrent | (b) tyrant leecher "
          "| (b) libtorrent leecher |")
    print("|---|---|---|---|---|")
    for k in clients:
        cells = [med(b.times(p, k, arm, "first_byte")) for p, arm in
                 (("a", "tyrant"), ("a", "libtorrent"), ("b", "tyrant"), ("b", "libtorrent"))]
        print("| %s | %s |" % (k, " | ".join("-" if c is None else "%.1f s" % c
                                            for c in cells)))
    print("\n(tyrant's first byte is read from its 1 s `--stats` ticks.)")
    bad = [r for r in b.runs if not r["identical"]]
    if bad:
        print("\n%d run(s) failed or ended with different bytes:" % len(bad))
        for r in bad:
            print("- %s %s %s rep %d: %s" % (r["part"], r["client"], r["arm"], r["rep"],
                                             r["error"] or "different bytes"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size_mib": args.size, "piece_kib": args.piece_kib, "reps": args.reps,
                       "tyrant": rc.TYRANT, "rows": rows, "runs": b.runs}, f, indent=1)


# ---------------------------------------------------------------------------------------
# --mse


class Refuser(threading.Thread):
    """Listens on (ip, port) in front of a tyrant seeder: a plaintext BitTorrent handshake
    (first byte 19) is spliced through to the seeder; anything else (an MSE/PE opening) is
    refused the `mode` way: `fin` reads what came, then closes gracefully; `hold` reads and
    never answers until the client closes or `hold_secs` pass."""

    def __init__(self, ip, target, mode, hold_secs):
        super().__init__(daemon=True)
        self.target, self.mode, self.hold_secs = target, mode, hold_secs
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, 0))
        self.sock.listen(64)
        self.addr = self.sock.getsockname()
        self.stopped = False
        self.refused = 0  # MSE openings seen
        self.plain = 0  # plaintext handshakes spliced through

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self):
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass

    def handle(self, conn):
        try:
            conn.settimeout(10)
            first = conn.recv(1, socket.MSG_PEEK)
            if first == b"\x13":
                self.plain += 1
                return self.splice(conn)
            self.refused += 1
            if self.mode == "fin":
                conn.settimeout(0.05)
                try:
                    while conn.recv(65536):
                        pass
                except socket.timeout:
                    pass
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(5)
                while conn.recv(65536):
                    pass
            else:  # hold
                conn.settimeout(self.hold_secs)
                while conn.recv(65536):
                    pass
        except OSError:
            pass
        finally:
            conn.close()

    def splice(self, conn):
        up = socket.create_connection(self.target, timeout=10)
        conn.settimeout(None)
        up.settimeout(None)

        def pump(a, b):
            try:
                while True:
                    data = a.recv(1 << 16)
                    if not data:
                        break
                    b.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    b.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=pump, args=(up, conn), daemon=True)
        t.start()
        pump(conn, up)
        t.join(timeout=600)
        up.close()


def register(port, ih, ip, peer_port, tag):
    """Announce (ip, peer_port) as a seeder of `ih` to the tracker on `port`."""
    peer_id = ("-RC0001-%s" % tag)[:20].ljust(20, "x").encode()
    q = urllib.parse.urlencode({"port": peer_port, "uploaded": 0, "downloaded": 0, "left": 0,
                                "event": "started", "compact": 1, "ip": ip})
    url = "http://127.0.0.1:%d/announce?info_hash=%s&peer_id=%s&%s" % (
        port, urllib.parse.quote(bytes.fromhex(ih), safe=""),
        urllib.parse.quote(peer_id, safe=""), q)
    with rc.OPENER.open(url, timeout=5) as r:
        reply, _ = rc.bdecode(r.read())
    rc.check(b"failure reason" not in reply, "tracker refused the registration: %r" % reply)


def tyrant_listen(seed):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(seed.stats) as f:
                for line in f:
                    if line.startswith("start "):
                        ip, port = line.split(" listen=")[1].split()[0].rsplit(":", 1)
                        return ip, int(port)
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    raise rc.Failure("no listen address in %s" % seed.stats)


def run_mse(args):
    b = Bench(args)
    refusers = []
    try:
        sc = b.sc
        seeds = {}
        # tyrant: announces to its tracker (and dials the leechers it hears of).
        ty_seed, seeds["tyrant"], _ = b.seeder("tyrant", "seed-tyrant")
        _, seeds["libtorrent"], _ = b.seeder("libtorrent", "seed-libtorrent")
        # A tyrant seeder that announces nowhere; the tracker learns of it (or of the
        # refuser in front of it) by hand.
        quiet = rc.Tyrant(sc, "seed-quiet", b.base, b.seed_dir, True)
        sc.clients.append(quiet)
        rc.wait_ready([quiet], time.monotonic() + 60)
        qaddr = tyrant_listen(quiet)
        for variant in ("tyrant-nodial", "fin", "hold"):
            port = sc.tracker()
            if variant == "tyrant-nodial":
                addr = qaddr
            else:
                r = Refuser(sc.next_ip(), qaddr, variant, args.hold_secs)
                r.start()
                refusers.append(r)
                addr = r.addr
            register(port, b.ih, addr[0], addr[1], variant)
            seeds[variant] = b.torrent("seed-" + variant, port)
        # (kind, label, kwargs, reps or None for --reps, bound on one run or None)
        clients = [
            ("aria2", "aria2", {}, None, None),
            # libtorrent's defaults: out_enc_policy enabled, min_reconnect_time 60 s.
            ("libtorrent", "libtorrent enc enabled", {"settings": {
                "out_enc_policy": 1, "min_reconnect_time": 60}}, None, None),
            ("libtorrent", "libtorrent enc disabled", {"settings": {"out_enc_policy": 2}},
             None, None),
            # Encrypted only: it cannot talk to tyrant at all, whatever tyrant does.
            ("libtorrent", "libtorrent enc forced", {"settings": {
                "out_enc_policy": 0, "min_reconnect_time": 60}}, 1, args.hold_secs),
            ("rtorrent", "rtorrent try_outgoing", {}, None, None),
        ]
        clients = [c for c in clients if rc.missing(c[0]) is None]
        variants = ["tyrant", "tyrant-nodial", "libtorrent", "fin", "hold"]
        by_variant = {"tyrant": ty_seed, "tyrant-nodial": quiet}
        by_variant.update(zip(("fin", "hold"), refusers))

        def refused(v):
            """MSE openings refused so far by the seeder (or stand-in) of variant v."""
            x = by_variant.get(v)
            if isinstance(x, Refuser):
                return x.refused
            if x is None:
                return 0
            return sum(n for r, n in x.closes().items() if "is not 19" in r)
        saved = args.timeout
        for kind, label, kw, reps, bound in clients:
            for i in range(reps or args.reps):
                order = variants if i % 2 == 0 else variants[::-1]
                for v in order:
                    if v == "hold" and i > 0:
                        continue
                    args.timeout = bound or (args.hold_secs + 30 if v == "hold" else saved)
                    rc.STALL = args.timeout
                    tag = "mse-%s-%s-%d" % (label.replace(" ", "_").replace(",", ""), v, i)
                    before = refused(v)
                    r = b.leech(kind, seeds[v], tag, **kw)
                    r.update(part="mse", client=label, arm=v, rep=i,
                             refused=refused(v) - before)
                    b.runs.append(r)
                    log("  %s <- %s rep %d: %s, %d MSE opening(s) refused" % (
                        label, v, i, "first byte %.2f s, done %.2f s" % (
                            r["first_byte"], r["total"]) if r["total"] is not None
                        else "FAILED: " + r["error"], r["refused"]))
        args.timeout = saved
        print("## bench/realclients.py --mse: %d MiB, medians of %d (hold: 1 run, at most "
              "%d s)\n" % (args.size, args.reps, args.hold_secs))
        print("Time from starting the leecher to its first byte / to its last byte; "
              "(N refused): MSE openings the seeder refused in all runs of the cell.\n")
        print("| client | " + " | ".join(variants) + " |")
        print("|---|" + "---|" * len(variants))
        for _, label, _, _, _ in clients:
            cells = []
            for v in variants:
                fb = b.times("mse", label, v, "first_byte")
                tt = b.times("mse", label, v, "total")
                n = [r["refused"] for r in b.runs if r["client"] == label and r["arm"] == v]
                cells.append(("%.2f / %.2f s" % (med(fb), med(tt)) if tt else "failed")
                              + (" (%d refused)" % sum(n) if v != "libtorrent" else ""))
            print("| %s | %s |" % (label, " | ".join(cells)))
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"size_mib": args.size, "reps": args.reps, "runs": b.runs}, f,
                          indent=1)
    finally:
        for r in refusers:
            r.close()
        b.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=None, help="MiB [256; --mse: 8]")
    ap.add_argument("--reps", type=int, default=None, help="repetitions [3; --mse: 5]")
    ap.add_argument("--piece-kib", type=int, default=256)
    ap.add_argument("--clients", default="aria2,transmission,rtorrent,libtorrent,rqbit")
    ap.add_argument("--json", default=None)
    ap.add_argument("--dir", default=None, help="where the temp dirs go [$TMPDIR]")
    ap.add_argument("--timeout", type=float, default=900, help="bound on one transfer, s")
    ap.add_argument("--mse", action="store_true", help="measure the MSE fallback instead")
    ap.add_argument("--hold-secs", type=float, default=30)
    args = ap.parse_args()
    if rc.lt is None:
        sys.exit("bench: needs libtorrent's Python bindings (pip install libtorrent==2.1.1)")
    if not os.access(rc.TYRANT, os.X_OK):
        sys.exit("bench: no tyrant binary at %s (cargo build --release -p tyrant)" % rc.TYRANT)
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
        tempfile.tempdir = args.dir
    args.size = args.size or (8 if args.mse else 256)
    args.reps = args.reps or (5 if args.mse else 3)
    rc.TIMEOUT = args.timeout
    rc.STALL = max(120.0, args.timeout / 4)
    # --mse counts the refused MSE openings in the seeders' debug logs.
    rc.RUST_LOG = os.environ.get("REALCLIENTS_RUST_LOG", "debug" if args.mse else "info")
    log("bench: tyrant %s" % rc.TYRANT)
    if args.mse:
        run_mse(args)
    else:
        run_bulk(args)


if __name__ == "__main__":
    main()
