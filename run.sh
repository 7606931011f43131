#!/usr/bin/env bash
# run.sh: the entry points of the project.
#   ./run.sh              build the release binary and run the default experiment: the
#                         `single` preset (one BitTyrant peer in a vanilla swarm of 30,
#                         paired with the same swarm all vanilla) at a low and a high cap,
#                         time-scaled ×4 (~6 min on 2 cores); prints the table and figures
#   ./run.sh PRESET [KEY=VALUE ...] [--jobs J] [--out DIR] [--exec T]
#                         plan, run and report any preset (single all rebel sybil
#                         propshare thief); KEY=VALUE as in `tyrant swarm plan`
#   ./run.sh swarm [opts] a plain swarm: tracker + 1 seeder + N leechers, download times
#   ./run.sh test         run every test: cargo's unit and process tests, then interop
#                         with libtorrent (python bindings from PyPI)
# Set TYRANT=/path/to/tyrant to use a prebuilt binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")"

build() {
    if [ -n "${TYRANT:-}" ]; then
        [ -x "$TYRANT" ] || { echo "run.sh: TYRANT=$TYRANT is not an executable" >&2; exit 1; }
    else
        cargo build --release --quiet
        TYRANT="$PWD/target/release/tyrant"
    fi
    export TYRANT
}

usage() {
    cat <<'EOF'
usage: ./run.sh                              the default experiment (see below)
       ./run.sh PRESET [KEY=VALUE ...] [--jobs J] [--out DIR] [--exec TEMPLATE]
       ./run.sh swarm [--leechers N] [--size MiB] [--piece-kib K] [--seed-up KiB/s]
                [--up KiB/s] [--seed S] [--time-limit S] [--keep DIR]
       ./run.sh test
default experiment: single peers=30 caps=20,200 time_scale=4 duration=480, 2 runs at
          a time, output in results/default (rerun: finished runs are skipped)
swarm defaults: 8 leechers, 8 MiB file, 64 KiB pieces, seeder capped at 256 KiB/s,
          leechers capped at 128 KiB/s, seed 1, time limit 300 s
EOF
}

cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -z "$keep" ]; then rm -rf "$work"; fi
}

swarm() {
    local leechers=8 size=8 piece=64 seed_up=256 up=128 seed=1 limit=300
    keep=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --leechers) leechers=$2; shift 2 ;;
            --size) size=$2; shift 2 ;;
            --piece-kib) piece=$2; shift 2 ;;
            --seed-up) seed_up=$2; shift 2 ;;
            --up) up=$2; shift 2 ;;
            --seed) seed=$2; shift 2 ;;
            --time-limit) limit=$2; shift 2 ;;
            --keep) keep=$2; shift 2 ;;
            -h|--help) usage; exit 0 ;;
            *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
        esac
    done
    build
    # Globals on purpose: the EXIT trap runs after this function has returned.
    if [ -n "$keep" ]; then work=$keep; rm -rf "$work"; mkdir -p "$work"; else work=$(mktemp -d); fi
    pids=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    mkdir -p "$work/seed"
    # A reproducible payload from the seed (python3 is on every Debian image).
    python3 - "$work/seed/payload.bin" "$((size * 1024 * 1024))" "$seed" <<'EOF'
import hashlib, sys
path, n, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "wb") as f:
    i = 0
    while n > 0:
        b = hashlib.sha256(f"{seed}:{i}".encode()).digest()[:n]
        f.write(b); n -= len(b); i += 1
EOF
    "$TYRANT" tracker --port 0 --bind 127.0.0.1 --interval 10 --rng-seed "$seed" > "$work/tracker.out" &
    pids+=($!)
    local port=""
    for _ in $(seq 50); do
        port=$(sed -n 's/^tracker listening on .*:\([0-9]*\)$/\1/p' "$work/tracker.out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "run.sh: tracker did not start" >&2; exit 1; }
    "$TYRANT" make "$work/seed/payload.bin" --announce "http://127.0.0.1:$port/announce" \
        --piece-size "$piece" -o "$work/payload.torrent" > /dev/null

    echo "swarm: 1 seeder (up $seed_up KiB/s) + $leechers leechers (up $up KiB/s), ${size} MiB, ${piece} KiB pieces, seed $seed"
    RUST_LOG=${RUST_LOG:-warn} "$TYRANT" --seed --dir "$work/seed" --bind 127.0.0.1 --port 0 \
        --up "$seed_up" --rng-seed "$seed" -q "$work/payload.torrent" 2> "$work/seed.log" &
    pids+=($!)
    local lpids=()
    for i in $(seq "$leechers"); do
        mkdir -p "$work/l$i"
        RUST_LOG=${RUST_LOG:-warn} "$TYRANT" --bind 127.0.0.1 --port 0 --dir "$work/l$i" \
            --up "$up" --rng-seed "$((seed * 1000 + i))" --stop-after-download \
            --time-limit "$limit" --stats "$work/l$i/stats.txt" -q \
            "$work/payload.torrent" > "$work/l$i.out" 2> "$work/l$i.log" &
        lpids+=($!)
        pids+=($!)
    done
    local failed=0
    for p in "${lpids[@]}"; do wait "$p" || failed=$((failed + 1)); done

    printf '%-8s %10s %12s %12s %s\n' peer seconds downloaded uploaded identical
    for i in $(seq "$leechers"); do
        local done_line secs downb upb same
        done_line=$(grep '^done ' "$work/l$i/stats.txt" 2>/dev/null || true)
        secs=$(sed -n 's/.* download_time=\([^ ]*\).*/\1/p' <<< "$done_line")
        downb=$(sed -n 's/.* downloaded=\([^ ]*\).*/\1/p' <<< "$done_line")
        upb=$(sed -n 's/.* uploaded=\([^ ]*\).*/\1/p' <<< "$done_line")
        if cmp -s "$work/seed/payload.bin" "$work/l$i/payload.bin"; then same=yes; else same=NO; failed=$((failed + 1)); fi
        printf '%-8s %10s %12s %12s %s\n' "l$i" "${secs:--}" "${downb:--}" "${upb:--}" "$same"
    done
    if [ "$failed" -gt 0 ]; then
        echo "swarm: $failed problem(s); logs kept in $work" >&2
        keep=$work
        exit 1
    fi
    echo "swarm: all $leechers leechers finished with identical files"
}

# Plan, run and report one preset: ./run.sh PRESET [KEY=VALUE ...] [--jobs J] [--out DIR]
experiment() {
    local preset=$1 out="" jobs=2 exec=""
    shift
    local kv=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --jobs) jobs=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --exec) exec=$2; shift 2 ;;
            *=*) kv+=("$1"); shift ;;
            -h|--help) usage; exit 0 ;;
            *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
        esac
    done
    build
    [ -n "$out" ] || out="results/$preset-$(printf '%s' "${kv[*]:-default}" | tr ' =,:/' '-_.._')"
    mkdir -p "$out"
    "$TYRANT" swarm plan "$preset" "${kv[@]}" -o "$out/plan.txt"
    "$TYRANT" swarm check "$out/plan.txt"
    local run_args=(swarm run "$out/plan.txt" --out "$out")
    if [ -n "$exec" ]; then run_args+=(--exec "$exec"); else run_args+=(--jobs "$jobs"); fi
    RUST_LOG=${RUST_LOG:-warn} "$TYRANT" "${run_args[@]}"
    "$TYRANT" swarm report "$out"
}

run_tests() {
    build
    cargo test --release
    python3 tests/interop.py
}

case "${1:-}" in
    test) shift; run_tests "$@" ;;
    swarm) shift; swarm "$@" ;;
    -h|--help|help) usage ;;
    "") experiment single peers=30 caps=20,200 time_scale=4 duration=480 --out results/default ;;
    single|all|rebel|sybil|propshare|thief) experiment "$@" ;;
    *) echo "run.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
esac
