#!/usr/bin/env bash
# run.sh: the entry points of the project.
#   ./run.sh              build the client (tyrant) and the harness (tyrant-lab), then run
#                         the default experiment: the `single` preset (one BitTyrant peer at
#                         100 KiB/s in a vanilla swarm of 30, paired with the same swarm all
#                         vanilla), 5 repetitions at time scale 1, all at once (~10 min on 2
#                         cores); prints the table, a verdict line and the figures
#   ./run.sh PRESET [KEY=VALUE ...] [--jobs J] [--out DIR] [--exec T]
#            [--ignore-thread-limit]
#                         plan, run and report any preset (single all rebel sybil
#                         propshare thief); KEY=VALUE as in `tyrant-lab plan`; a run that
#                         may need more threads than the machine allows is refused in one
#                         line before it starts (--ignore-thread-limit: start it anyway)
#   ./run.sh swarm [opts] a plain swarm: tracker + 1 seeder + N leechers, download times
#   ./run.sh test         install what the tests need, then run every test: cargo's unit and
#                         process tests (client and lab), then interop with libtorrent
# Set-up is part of the commands. Without a cargo on PATH or in ~/.cargo/bin, Debian's rustc
# and cargo are installed with apt-get (as root); `test` installs TEST_PACKAGES with apt-get
# and libtorrent's Python bindings from PyPI into .venv/. What cannot be installed (not root,
# no registry) gets one line saying what to install; `test` goes on without it, lists it at
# the end, and its exit status counts failed tests, not skipped ones.
# Set TYRANT=/path/to/tyrant and TYRANT_LAB=/path/to/tyrant-lab to use prebuilt binaries.
set -euo pipefail
cd "$(dirname "$0")"

# The apt packages the tests use, as PACKAGE:COMMAND (the command tells whether it is
# there): report figures, network-namespace hosts, and the real clients and tracker of the
# interop suite.
TEST_PACKAGES=(
    gnuplot-nox:gnuplot
    iproute2:ip
    iproute2:tc
    aria2:aria2c
    transmission-daemon:transmission-daemon
    rtorrent:rtorrent
    opentracker:opentracker
    openssh-server:sshd
    openssh-client:ssh
)
# What each command is for, in the line that says it is missing.
declare -A NEEDED_BY=(
    [gnuplot]="the report figures in the lab tests (the tables are still checked)"
    [ip]="the network-namespace harness test"
    [tc]="the network-namespace harness test"
    [aria2c]="the interop tests with aria2"
    [transmission-daemon]="the interop tests with Transmission"
    [rtorrent]="the interop tests with rTorrent"
    [opentracker]="the interop tests with opentracker"
    [sshd]="the testbed (ssh) harness test"
    [ssh]="the testbed (ssh) harness test"
)
LIBTORRENT=libtorrent==2.1.1

note() { echo "run.sh: $*" >&2; }
die() { note "$*"; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

skipped=()
skip() {
    note "skipping $*"
    skipped+=("$*")
}

# Debian packages, as root with apt-get, one `apt-get update` per run of run.sh. A list
# that fails as a whole (a name this release does not have) is retried one by one, so the
# others still get installed. apt's output goes to target/apt.log.
apt_updated=""
apt_install() {
    is_root && command -v apt-get > /dev/null || return 1
    mkdir -p target
    note "installing with apt-get: $*"
    if [ -z "$apt_updated" ]; then
        apt-get update -q >> target/apt.log 2>&1 || note "apt-get update failed (see target/apt.log)"
        apt_updated=1
    fi
    local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends)
    "${apt[@]}" "$@" >> target/apt.log 2>&1 && return 0
    local p ok=0
    for p in "$@"; do "${apt[@]}" "$p" >> target/apt.log 2>&1 || ok=1; done
    return $ok
}

# Whether a command is installed: an executable file on PATH or in sbin (not on a normal
# user's PATH). Not `command -v`, which also reports files that cannot be executed.
have() {
    local d IFS=:
    for d in $PATH /usr/sbin /sbin; do
        [ -f "$d/$1" ] && [ -x "$d/$1" ] && return 0
    done
    return 1
}

# How to get a missing package, for the line that says it is missing.
how() {
    if is_root && command -v apt-get > /dev/null; then
        echo "apt-get install $1 failed, see target/apt.log"
    else
        echo "apt-get install $1, as root"
    fi
}

# rustup's cargo in ~/.cargo/bin first (Debian's /usr/bin/cargo 1.65 cannot read crates.io's
# sparse index), then any cargo on PATH, else Debian's from apt.
find_cargo() {
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    elif ! have cargo; then
        if is_root && command -v apt-get > /dev/null; then
            note "no cargo on PATH or in ~/.cargo/bin: installing Debian's rustc and cargo with apt-get"
            { apt_install rustc cargo && have cargo; } ||
                die "apt-get install rustc cargo gave no cargo (see target/apt.log)"
        else
            die "no cargo on PATH or in ~/.cargo/bin: install Rust >= 1.63 (as root: apt-get install rustc cargo; or rustup: https://rustup.rs)"
        fi
    fi
}

# Download the locked crates before building, so that a machine that cannot reach them gets
# one line rather than a build error. cargo before 1.68 (Debian 12 has 1.65) reads
# crates.io's index over git from github.com.
fetch_crates() {
    mkdir -p target
    if ! cargo fetch --locked > target/fetch.log 2>&1; then
        note "$(cargo --version) cannot download the crates in Cargo.lock (see target/fetch.log): let this machine reach crates.io (and github.com, for cargo < 1.68's git index) or install a current cargo with rustup (https://rustup.rs), then rerun"
        return 1
    fi
}

build() {
    local want=()
    if [ -n "${TYRANT:-}" ]; then
        [ -x "$TYRANT" ] || die "TYRANT=$TYRANT is not an executable"
    else
        want+=(-p tyrant)
    fi
    if [ -n "${TYRANT_LAB:-}" ]; then
        [ -x "$TYRANT_LAB" ] || die "TYRANT_LAB=$TYRANT_LAB is not an executable"
    else
        want+=(-p tyrant-lab)
    fi
    if [ ${#want[@]} -gt 0 ]; then
        find_cargo
        fetch_crates || exit 1
        cargo build --release --quiet "${want[@]}"
    fi
    TYRANT=${TYRANT:-$PWD/target/release/tyrant}
    TYRANT_LAB=${TYRANT_LAB:-$PWD/target/release/tyrant-lab}
    # tyrant-lab runs the client that $TYRANT names.
    export TYRANT TYRANT_LAB
}

usage() {
    cat <<'EOF'
usage: ./run.sh                              the default experiment (see below)
       ./run.sh PRESET [KEY=VALUE ...] [--jobs J] [--out DIR] [--exec TEMPLATE]
                [--ignore-thread-limit]
       ./run.sh swarm [--leechers N] [--size MiB] [--piece-kib K] [--seed-up KiB/s]
                [--up KiB/s] [--seed S] [--time-limit S] [--keep DIR]
       ./run.sh test                         install what the tests need, run them all
default experiment: single peers=30 caps=100 reps=5 size_mib=4 duration=540 seed=7
          statistic=geomean, all 10 runs at once, output in results/default (rerun:
          finished runs are skipped); ends with a verdict line from the interval
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
    local kv=() ignore=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --jobs) jobs=$2; shift 2 ;;
            --out) out=$2; shift 2 ;;
            --exec) exec=$2; shift 2 ;;
            --ignore-thread-limit) ignore=$1; shift ;;
            *=*) kv+=("$1"); shift ;;
            -h|--help) usage; exit 0 ;;
            *) echo "run.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
        esac
    done
    build
    [ -n "$out" ] || out="results/$preset-$(printf '%s' "${kv[*]:-default}" | tr ' =,:/' '-_.._')"
    mkdir -p "$out"
    "$TYRANT_LAB" plan "$preset" "${kv[@]}" -o "$out/plan.txt"
    "$TYRANT_LAB" check "$out/plan.txt"
    local run_args=(run "$out/plan.txt" --out "$out")
    if [ -n "$exec" ]; then run_args+=(--exec "$exec"); else run_args+=(--jobs "$jobs"); fi
    # tyrant-lab refuses, in one line, a run that needs more threads than the machine allows.
    [ -z "$ignore" ] || run_args+=("$ignore")
    RUST_LOG=${RUST_LOG:-warn} "$TYRANT_LAB" "${run_args[@]}"
    "$TYRANT_LAB" report "$out"
}

# The default experiment: the study's headline question at a size that answers in ~10 min
# on 2 cores: one BitTyrant peer at 100 KiB/s in a 30-peer vanilla swarm against the same
# swarm all vanilla, 5 paired repetitions of 540 s at time scale 1, all 10 runs at once on
# their own loopback lanes, 4 MiB file, statistic fixed in the plan (geomean over runs of
# the focus peer's median ratio). Then one line of verdict from the interval, and the full
# study's number for comparison.
default_experiment() {
    local out=results/default row
    experiment single peers=30 caps=100 reps=5 size_mib=4 duration=540 seed=7 \
        statistic=geomean name=default --jobs 10 --out "$out"
    echo
    row=$(awk -F'\t' '$3 == "tyrant peers" { print $13, $14, $15, $5 }' "$out/comparisons.tsv")
    # shellcheck disable=SC2086
    set -- $row
    if [ $# -lt 4 ] || [ "$2" = - ]; then
        echo "default: no interval (fewer than 5 runs finished); see $out/report.txt"
    elif awk -v lo="$2" 'BEGIN { exit !(lo > 1) }'; then
        echo "default: BitTyrant downloads faster: $1 [$2, $3] over $4 runs (the interval excludes 1)"
    elif awk -v hi="$3" 'BEGIN { exit !(hi < 1) }'; then
        echo "default: BitTyrant downloads slower: $1 [$2, $3] over $4 runs (the interval excludes 1)"
    else
        echo "default: inconclusive: $1 [$2, $3] over $4 runs; the interval includes 1. An effect"
        echo "  the size the full study measured (next lines) is below what 5 short runs resolve:"
        echo "  see the A/A comparison of two identical 10-run configurations in REPRODUCTION.md §1"
    fi
    # The full study's two experiments of this comparison: the same plan, two seeds.
    for name in long-new single30-give-c100; do
        full=reproduction/data/$name/comparisons.tsv
        [ -f "$full" ] || continue
        awk -F'\t' -v n="$name" '$3 == "tyrant peers" { printf "full study (REPRODUCTION.md, %s: 10 MiB, %s runs): %s [%s, %s]\n", n, $5, $13, $14, $15 }' "$full"
    done
}

# The missing packages of TEST_PACKAGES in one apt-get (as root), then one line for each
# command still missing.
install_test_packages() {
    local entry pkg cmd missing=() seen=" "
    for entry in "${TEST_PACKAGES[@]}"; do
        pkg=${entry%%:*} cmd=${entry#*:}
        have "$cmd" && continue
        case " ${missing[*]:-} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
    done
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}" || true
        stop_new_services "${missing[@]}"
    fi
    for entry in "${TEST_PACKAGES[@]}"; do
        pkg=${entry%%:*} cmd=${entry#*:}
        have "$cmd" && continue
        case "$seen" in *" $pkg "*) continue ;; esac
        seen="$seen$pkg "
        skip "${NEEDED_BY[$cmd]}: no $cmd ($(how "$pkg"))"
    done
}

# Debian's transmission-daemon, opentracker and openssh-server start a system service when
# installed; the tests start their own daemons on 127.0.0.x, so a service that our install
# started (and only that: a package installed before stays as it was) is stopped again.
stop_new_services() {
    command -v systemctl > /dev/null && [ -d /run/systemd/system ] || return 0
    local entry svc pkg installed=" $* "
    for entry in transmission-daemon:transmission-daemon opentracker:opentracker ssh:openssh-server; do
        svc=${entry%%:*} pkg=${entry#*:}
        case "$installed" in *" $pkg "*) ;; *) continue ;; esac
        if systemctl is-active --quiet "$svc" 2> /dev/null &&
            systemctl disable --now --quiet "$svc" 2> /dev/null; then
            note "stopped and disabled the $svc service its package started (the tests run their own)"
        fi
    done
}

# The interop tests' Python: .venv/ (git ignores it) with libtorrent from PyPI. Sets PY, or
# leaves it empty after one line saying what is missing.
PY=""
setup_venv() {
    if ! command -v python3 > /dev/null; then
        skip "the libtorrent interop tests: no python3 ($(how python3))"
        return
    fi
    if [ ! -x .venv/bin/python ]; then
        note "creating .venv, the Python environment of the libtorrent interop tests"
        if ! python3 -m venv .venv > /dev/null 2>&1; then
            rm -rf .venv
            # Debian's python3 makes virtual environments only with python3-venv (ensurepip).
            if ! { apt_install python3-venv && python3 -m venv .venv > /dev/null 2>&1; }; then
                rm -rf .venv
                skip "the libtorrent interop tests: cannot create .venv ($(how python3-venv))"
                return
            fi
        fi
    fi
    local want=${LIBTORRENT#*==}
    if ! .venv/bin/python -c "import libtorrent, sys; sys.exit(not libtorrent.__version__.startswith('$want'))" 2> /dev/null; then
        note "installing $LIBTORRENT from PyPI into .venv"
        mkdir -p target
        if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check "$LIBTORRENT" > target/pip.log 2>&1; then
            skip "the libtorrent interop tests: cannot pip install $LIBTORRENT into .venv (needs PyPI; see target/pip.log)"
            return
        fi
    fi
    PY=.venv/bin/python
}

run_tests() {
    local t0 t failed=() results=() line verdict crates=1 rpy
    t0=$(date +%s)
    find_cargo
    install_test_packages
    setup_venv
    if ! is_root; then
        skip "the tests that need root: the network-namespace harness run passes without running (run as root for all)"
    fi
    t=$(date +%s)
    if ! fetch_crates; then
        results+=("cargo test --release --workspace: NOT RUN: the crates could not be downloaded (see above)")
        [ -z "$PY" ] || results+=("tests/interop.py: NOT RUN: no client to test")
        results+=("tests/realclients.py: NOT RUN: no client to test")
        failed+=(build)
        PY=""
        crates=""
    elif cargo test --release --workspace; then
        results+=("cargo test --release --workspace: passed ($(($(date +%s) - t)) s)")
    else
        results+=("cargo test --release --workspace: FAILED ($(($(date +%s) - t)) s)")
        failed+=(cargo)
    fi
    # REPRODUCTION.md's tables against the committed data they come from.
    if command -v python3 > /dev/null; then
        if python3 reproduction/tables.py --check; then
            results+=("reproduction/tables.py --check: passed")
        else
            results+=("reproduction/tables.py --check: FAILED (run reproduction/make.sh)")
            failed+=(tables)
        fi
        # The scripts' arithmetic on hand-made inputs with known answers.
        if python3 reproduction/test_scripts.py > target/test_scripts.out 2>&1; then
            results+=("reproduction/test_scripts.py: $(grep '^Ran ' target/test_scripts.out), passed")
        else
            results+=("reproduction/test_scripts.py: FAILED (target/test_scripts.out)")
            failed+=(scripts)
        fi
    fi
    if [ -n "$PY" ]; then
        export TYRANT=$PWD/target/release/tyrant
        # The interop scenarios need the client even when a cargo test failed to build.
        [ -x "$TYRANT" ] || cargo build --release --quiet -p tyrant || true
        t=$(date +%s)
        if "$PY" tests/interop.py 2>&1 | tee target/interop.out; then
            results+=("tests/interop.py: $(tail -n 1 target/interop.out) ($(($(date +%s) - t)) s)")
        else
            results+=("tests/interop.py: FAILED: $(tail -n 1 target/interop.out) ($(($(date +%s) - t)) s)")
            failed+=(interop)
        fi
    fi
    # Real clients (aria2, transmission, rtorrent, opentracker; libtorrent when .venv has
    # it): the suite skips, one line each, the scenarios whose client is not installed.
    rpy=$PY
    if [ -z "$rpy" ] && command -v python3 > /dev/null; then rpy=python3; fi
    if [ -n "$crates" ] && [ -n "$rpy" ]; then
        export TYRANT=$PWD/target/release/tyrant
        [ -x "$TYRANT" ] || cargo build --release --quiet -p tyrant || true
        t=$(date +%s)
        if "$rpy" tests/realclients.py 2>&1 | tee target/realclients.out; then
            results+=("tests/realclients.py: $(tail -n 1 target/realclients.out) ($(($(date +%s) - t)) s)")
        else
            results+=("tests/realclients.py: FAILED: $(tail -n 1 target/realclients.out) ($(($(date +%s) - t)) s)")
            failed+=(realclients)
        fi
    elif [ -n "$crates" ]; then
        skip "the real-client interop tests: no python3 ($(how python3))"
    fi
    # The real-client swarm of the study, at its smoke size (~3 min): every installed client
    # kind plays background peers around a tyrant focus peer, paired tyrant/vanilla.
    if [ -n "$crates" ] && [ -n "$rpy" ] && ! { have aria2c || have transmission-daemon || have rtorrent; }; then
        skip "the real-client swarm: no aria2c, transmission-daemon or rtorrent"
    elif [ -n "$crates" ] && [ -n "$rpy" ]; then
        [ -x target/release/tyrant-lab ] || cargo build --release --quiet -p tyrant-lab || true
        t=$(date +%s)
        rm -rf target/realswarm-quick
        if TYRANT_LAB=$PWD/target/release/tyrant-lab "$rpy" reproduction/realswarm.py --quick \
            --out target/realswarm-quick > target/realswarm.out 2>&1; then
            results+=("reproduction/realswarm.py --quick: passed ($(($(date +%s) - t)) s)")
        else
            tail -n 20 target/realswarm.out
            results+=("reproduction/realswarm.py --quick: FAILED (target/realswarm.out) ($(($(date +%s) - t)) s)")
            failed+=(realswarm)
        fi
    fi
    echo
    echo "run.sh test: summary ($(($(date +%s) - t0)) s in all)"
    for line in "${results[@]}"; do echo "  $line"; done
    for line in "${skipped[@]:-}"; do [ -n "$line" ] && echo "  skipped: $line"; done
    verdict=passed
    [ ${#failed[@]} -eq 0 ] || verdict="FAILED (${failed[*]})"
    echo "run.sh test: $verdict (${#skipped[@]} skipped)"
    [ ${#failed[@]} -eq 0 ]
}

case "${1:-}" in
    test) shift; run_tests "$@" ;;
    swarm) shift; swarm "$@" ;;
    -h|--help|help) usage ;;
    "") default_experiment ;;
    single|all|rebel|sybil|propshare|thief) experiment "$@" ;;
    *) echo "run.sh: unknown command $1" >&2; usage >&2; exit 2 ;;
esac
