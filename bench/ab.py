#!/usr/bin/env python3
"""ab: two (or more) tyrant builds leeching the same torrent from one libtorrent seeder, alternated.

    python3 bench/ab.py --runs 7 --size-mib 2048 /tmp/tyrant-old target/release/tyrant

For checking that a change costs no bulk speed: every run starts a fresh leecher of each
build in turn (A B, then B A, ...) against the same long-lived libtorrent seeder, so both
builds share the machine's noise. Prints per build the median wall time (process start to
complete file), transfer time (the leecher's own `download_time`), CPU seconds per GiB and
every run's wall time. Uses bench/bulk.py's helpers (libtorrent Python bindings required).
"""
import argparse
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bulk  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--size-mib", type=int, default=2048)
    ap.add_argument("--dir", default="/tmp/tyrant-ab")
    ap.add_argument("binaries", nargs="+")
    a = ap.parse_args()
    seed_dir = os.path.join(a.dir, "seed")
    os.makedirs(seed_dir, exist_ok=True)
    size = a.size_mib << 20
    bulk.make_payload(os.path.join(seed_dir, "bulk.bin"), size)
    torrent = os.path.join(a.dir, "bulk.torrent")
    subprocess.run([a.binaries[0], "make", os.path.join(seed_dir, "bulk.bin"), "--announce",
                    "http://127.0.0.1:1/announce", "--piece-size", "256", "-o", torrent],
                   check=True, stdout=subprocess.DEVNULL)
    seeder, port = bulk.start_lt_seeder(torrent, seed_dir)
    res = {b: [] for b in a.binaries}
    try:
        for r in range(a.runs):
            for b in a.binaries if r % 2 == 0 else a.binaries[::-1]:
                res[b].append(bulk.tyrant_leech(torrent, a.dir, port, b))
    finally:
        seeder.kill()
        seeder.wait()
    print("ab: %d MiB, 256 KiB pieces, %d runs each, from one libtorrent seeder" % (a.size_mib, a.runs))
    for b, rows in res.items():
        med = lambda i: statistics.median(x[i] for x in rows)
        print("  %-40s wall %.2f s  transfer %.2f s  cpu %.2f s/GiB  walls %s"
              % (b, med(0), med(2), med(1) / (size / bulk.GIB), " ".join("%.2f" % x[0] for x in rows)))


if __name__ == "__main__":
    main()
