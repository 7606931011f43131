#!/usr/bin/env python3
"""lt_leech.py TORRENT SAVE_DIR IP:PORT [TIMEOUT]: download TORRENT with libtorrent from the
peer at IP:PORT (nothing else: no tracker, DHT or LSD), print the seconds it took and exit 0
when complete; exit 1 on timeout, 2 if libtorrent cannot be imported. The process tests
(tests/pressure.rs) use it as the honest libtorrent leecher."""
import sys
import time

try:
    import libtorrent as lt
except ImportError as e:
    print("cannot import libtorrent: %s" % e)
    sys.exit(2)


def main(torrent, save, peer, timeout=120.0):
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "min_reconnect_time": 1,
    })
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(torrent)
    atp.save_path = save
    h = ses.add_torrent(atp)
    ip, port = peer.rsplit(":", 1)
    t0 = time.monotonic()
    last_dial = 0.0
    while time.monotonic() - t0 < timeout:
        st = h.status()
        if st.is_seeding:
            print("%.2f" % (time.monotonic() - t0))
            return 0
        # Without a tracker libtorrent knows the peer only through us: ask again after a
        # refusal.
        if st.num_peers == 0 and time.monotonic() - last_dial > 1.0:
            h.connect_peer((ip, int(port)))
            last_dial = time.monotonic()
        time.sleep(0.05)
    print("timeout")
    return 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (3, 4):
        print(__doc__)
        sys.exit(64)
    sys.exit(main(args[0], args[1], args[2], *map(float, args[3:])))
