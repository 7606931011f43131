#!/usr/bin/env python3
"""bulk: tyrant vs libtorrent moving one big torrent over loopback, side by side.

    pip install libtorrent==2.1.1
    cargo build --release
    python3 bench/bulk.py [--size-mib 512] [--piece-kib 256] [--runs 5] [--dir /tmp/tyrant-bulk]

Leech half: one libtorrent seeder (its own process) serves the same torrent to a fresh
leecher, alternating tyrant and libtorrent (A B A B ...). Seed half: a tyrant seeder and a
libtorrent seeder, alternating, each serve a fresh libtorrent leecher. Every process is
separate so its CPU time is its own (rusage of the child; /proc for the long-lived seeders).

Reported per side, medians over the runs: wall time (process start to complete file),
transfer MB/s (first request to last block, the client's own clock), and CPU seconds per GiB
moved. Ratios are tyrant / libtorrent of numbers measured in the same run, so a noisy
shared machine affects both alike.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYRANT = os.environ.get("TYRANT") or os.path.join(ROOT, "target", "release", "tyrant")
GIB = 1024 ** 3


# --plaintext: every libtorrent session neither tries nor accepts MSE/PE encryption. tyrant
# speaks plain BEP 3 only, so by default a libtorrent leecher first tries an encrypted
# handshake with a tyrant seeder, is refused, and redials in plaintext; this removes that
# retry from the seed-half wall time (and gives the libtorrent seeder the same plaintext).
PLAINTEXT = os.environ.get("BULK_PLAINTEXT") == "1"


def lt_session(port):
    import libtorrent as lt

    enc = {"out_enc_policy": 2, "in_enc_policy": 2} if PLAINTEXT else {}  # 2 = pe_disabled
    return lt.session(
        {
            **enc,
            "listen_interfaces": "127.0.0.1:%d" % port,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )


def atp(torrent, data_dir):
    import libtorrent as lt

    p = lt.add_torrent_params()
    p.ti = lt.torrent_info(torrent)
    p.save_path = data_dir
    return p


def child_lt_seed(torrent, data_dir, port):
    """Run a libtorrent seeder until killed; print READY when it has checked the data."""
    import libtorrent as lt

    ses = lt_session(port)
    h = ses.add_torrent(atp(torrent, data_dir))
    while not h.status().is_seeding:
        time.sleep(0.05)
    print("READY %d" % ses.listen_port(), flush=True)
    while True:
        time.sleep(3600)


def child_lt_leech(torrent, data_dir, peer_port):
    """Download from 127.0.0.1:peer_port; print a JSON line with the transfer time."""
    import libtorrent as lt

    ses = lt_session(0)
    t0 = time.time()
    h = ses.add_torrent(atp(torrent, data_dir))
    h.connect_peer(("127.0.0.1", peer_port))
    first = None
    last_dial = time.time()
    while True:
        st = h.status()
        if first is None and st.total_payload_download > 0:
            first = time.time()
        # A dial made while the torrent was still checking can be dropped: dial again.
        if first is None and time.time() - last_dial > 0.5:
            h.connect_peer(("127.0.0.1", peer_port))
            last_dial = time.time()
        if st.is_seeding:
            break
        time.sleep(0.01)
    done = time.time()
    print(json.dumps({"transfer": done - (first or t0), "wall_inner": done - t0}), flush=True)


def proc_cpu(pid):
    """utime + stime of a live process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_measured(cmd, timeout=600):
    """Run cmd to completion and measure wall and CPU (via wait4 on our own child)."""
    t0 = time.time()
    pid = os.fork()
    if pid == 0:  # child
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(cmd[0], cmd)
    deadline = t0 + timeout
    while True:
        wpid, status, ru = os.wait4(pid, os.WNOHANG)
        if wpid:
            break
        if time.time() > deadline:
            os.kill(pid, 9)
            raise RuntimeError("timeout: %s" % cmd)
        time.sleep(0.005)
    wall = time.time() - t0
    if status != 0:
        raise RuntimeError("%s exited with %d" % (cmd, status))
    return wall, ru.ru_utime + ru.ru_stime


def start_lt_seeder(torrent, data_dir):
    p = subprocess.Popen(
        [sys.executable, __file__, "child-lt-seed", torrent, data_dir, "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = p.stdout.readline()
    if not line.startswith("READY"):
        p.kill()
        raise RuntimeError("libtorrent seeder failed: %r" % line)
    return p, int(line.split()[1])


def start_tyrant_seeder(torrent, data_dir, stats, binary=None):
    p = subprocess.Popen(
        [binary or TYRANT, "--seed", "--dir", data_dir, "--bind", "127.0.0.1", "--port", "0", "-q",
         "--stats", stats, torrent],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(600):
        if os.path.exists(stats):
            with open(stats) as f:
                for line in f:
                    if line.startswith("start "):
                        listen = [w for w in line.split() if w.startswith("listen=")][0]
                        return p, int(listen.rsplit(":", 1)[1])
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("tyrant seeder did not start")


def tyrant_leech(torrent, work, peer_port, binary=None):
    d = os.path.join(work, "leech-tyrant")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    stats = os.path.join(d, "stats.txt")
    wall, cpu = run_measured(
        [binary or TYRANT, "--dir", d, "--bind", "127.0.0.1", "--port", "0", "-q", "--stop-after-download",
         "--peer", "127.0.0.1:%d" % peer_port, "--stats", stats, torrent]
    )
    with open(stats) as f:
        done = [l for l in f if l.startswith("done ")][0]
    transfer = float([w for w in done.split() if w.startswith("download_time=")][0].split("=")[1])
    shutil.rmtree(d, ignore_errors=True)
    return wall, cpu, transfer


def lt_leech(torrent, work, peer_port):
    d = os.path.join(work, "leech-lt")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    out_path = os.path.join(d, "out.json")
    # The python child prints its own clock; we measure wall and CPU around it.
    cmd = ["/bin/sh", "-c", "exec %s %s child-lt-leech %s %s %d > %s"
           % (sys.executable, __file__, torrent, d, peer_port, out_path)]
    wall, cpu = run_measured(cmd)
    with open(out_path) as f:
        transfer = json.loads(f.read())["transfer"]
    shutil.rmtree(d, ignore_errors=True)
    return wall, cpu, transfer


def make_payload(path, size):
    if os.path.exists(path) and os.path.getsize(path) == size:
        return
    with open(path, "wb") as f:
        left = size
        block = os.urandom(1 << 20)
        while left > 0:
            n = min(left, len(block))
            f.write(block[:n])
            block = block[1:] + block[:1]
            left -= n


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--piece-kib", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default="/tmp/tyrant-bulk")
    ap.add_argument("--plaintext", action="store_true",
                    help="libtorrent sessions use no MSE/PE encryption (see PLAINTEXT)")
    ap.add_argument("--baseline", metavar="BINARY",
                    help="a second tyrant binary (e.g. an older commit) as a third arm, alternated "
                         "with the other two in every run, so an A/B shares the machine's noise")
    a = ap.parse_args()
    if a.plaintext:
        # the libtorrent children read it from their environment
        os.environ["BULK_PLAINTEXT"] = "1"
        global PLAINTEXT
        PLAINTEXT = True
    size = a.size_mib * 1024 * 1024
    work = a.dir
    seed_dir = os.path.join(work, "seed")
    os.makedirs(seed_dir, exist_ok=True)
    make_payload(os.path.join(seed_dir, "bulk.bin"), size)
    torrent = os.path.join(work, "bulk.torrent")
    subprocess.run([TYRANT, "make", os.path.join(seed_dir, "bulk.bin"), "--announce",
                    "http://127.0.0.1:1/announce", "--piece-size", str(a.piece_kib), "-o", torrent],
                   check=True, stdout=subprocess.DEVNULL)
    gib = size / GIB
    print("bulk: %d MiB, %d KiB pieces, %d runs each, loopback; tyrant %s; libtorrent %s"
          % (a.size_mib, a.piece_kib, a.runs, TYRANT,
             "plaintext only" if a.plaintext else "default encryption policy"))

    if a.baseline:
        print("baseline: %s" % a.baseline)
    names = ["tyrant", "libtorrent"] + (["baseline"] if a.baseline else [])
    leechers = {"tyrant": tyrant_leech, "libtorrent": lt_leech,
                "baseline": lambda t, w, p: tyrant_leech(t, w, p, a.baseline)}

    # Leech half: libtorrent seeds, leechers alternate.
    seeder, port = start_lt_seeder(torrent, seed_dir)
    rows = {n: [] for n in names}
    seed_cpu = {n: [] for n in names}
    try:
        for r in range(a.runs):
            for name, fn in [(n, leechers[n]) for n in names]:
                c0 = proc_cpu(seeder.pid)
                wall, cpu, transfer = fn(torrent, work, port)
                seed_cpu[name].append(proc_cpu(seeder.pid) - c0)
                rows[name].append((wall, cpu, transfer))
                print("  leech run %d %-10s wall %6.2f s  transfer %7.1f MB/s  cpu %5.2f s/GiB"
                      % (r + 1, name, wall, size / transfer / 1e6, cpu / gib), flush=True)
    finally:
        seeder.kill()
        seeder.wait()

    # Seed half: a libtorrent leecher downloads from each seeder in turn.
    seed_rows = {n: [] for n in names}
    seeders = {}
    for name, binary in (("tyrant", None), ("baseline", a.baseline)):
        if name in names:
            stats = os.path.join(work, "%s-seed-stats.txt" % name)
            if os.path.exists(stats):
                os.remove(stats)
            seeders[name] = start_tyrant_seeder(torrent, seed_dir, stats, binary)
    seeders["libtorrent"] = start_lt_seeder(torrent, seed_dir)
    try:
        for r in range(a.runs):
            for name, (proc, port) in [(n, seeders[n]) for n in names]:
                c0 = proc_cpu(proc.pid)
                wall, cpu, transfer = lt_leech(torrent, work, port)
                scpu = proc_cpu(proc.pid) - c0
                seed_rows[name].append((wall, scpu, transfer))
                print("  seed  run %d %-10s leecher wall %6.2f s  transfer %7.1f MB/s  seeder cpu %5.2f s/GiB"
                      % (r + 1, name, wall, size / transfer / 1e6, scpu / gib), flush=True)
    finally:
        for p, _ in seeders.values():
            p.kill()
            p.wait()

    def summary(title, data, cpu_label):
        print(title)
        print("  %-10s %10s %14s %16s" % ("", "wall s", "transfer MB/s", cpu_label))
        for name in names:
            w = med([x[0] for x in data[name]])
            c = med([x[1] for x in data[name]]) / gib
            t = size / med([x[2] for x in data[name]]) / 1e6
            print("  %-10s %10.2f %14.1f %16.2f" % (name, w, t, c))
        ratio = lambda i, a, b: med([x[i] for x in data[a]]) / med([x[i] for x in data[b]])
        for a_, b_ in [("tyrant", "libtorrent")] + ([("tyrant", "baseline")] if a.baseline else []):
            print("  ratio %s/%s: wall %.2f, transfer time %.2f, cpu %.2f"
                  % (a_, b_, ratio(0, a_, b_), ratio(2, a_, b_), ratio(1, a_, b_)))

    summary("leech (from a libtorrent seeder), medians of %d:" % a.runs, rows, "leecher CPU s/GiB")
    print("  libtorrent seeder CPU s/GiB while serving: "
          + ", ".join("%s leecher %.2f" % (n, med(seed_cpu[n]) / gib) for n in names))
    summary("seed (to a libtorrent leecher), medians of %d:" % a.runs, seed_rows, "seeder CPU s/GiB")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child-lt-seed":
        child_lt_seed(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "child-lt-leech":
        child_lt_leech(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
