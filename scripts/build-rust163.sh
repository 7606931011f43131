#!/usr/bin/env bash
# build-rust163.sh: build the workspace (the client tyrant and the harness tyrant-lab) with
# the Rust of Debian 12 and old testbed images (rustc 1.63, cargo 1.65; README, "Building
# for old testbed images"), then smoke-test the binaries (--help, make a torrent, a
# one-seeder one-leecher swarm on 127.0.0.1, a plan that tyrant-lab checks).
#
#   scripts/build-rust163.sh            binaries in target/rust163/release/
#
# Needs: /usr/bin/rustc 1.63 and /usr/bin/cargo 1.65 (`apt-get install -y rustc cargo` on
# Debian 12), and the current cargo on PATH (rustup's), which vendors the locked
# dependencies from crates.io into a temp dir: cargo 1.65 cannot read crates.io's sparse
# index here, so the old cargo builds --offline from that copy.
# Environment: OLD_RUSTC, OLD_CARGO (the old toolchain) [/usr/bin/rustc, /usr/bin/cargo],
#              CARGO (the current cargo) [cargo], TARGET_DIR [target/rust163].
set -euo pipefail
cd "$(dirname "$0")/.."

OLD_RUSTC=${OLD_RUSTC:-/usr/bin/rustc}
OLD_CARGO=${OLD_CARGO:-/usr/bin/cargo}
NEW_CARGO=${CARGO:-cargo}
TARGET_DIR=${TARGET_DIR:-target/rust163}

die() { echo "build-rust163: $*" >&2; exit 1; }

[ -x "$OLD_RUSTC" ] || die "$OLD_RUSTC not found (apt-get install -y rustc cargo)"
[ -x "$OLD_CARGO" ] || die "$OLD_CARGO not found (apt-get install -y rustc cargo)"
old_rustc_version=$("$OLD_RUSTC" --version)
case "$old_rustc_version" in
    "rustc 1.63."*) ;;
    *) die "$OLD_RUSTC is '$old_rustc_version', want rustc 1.63" ;;
esac
echo "build-rust163: $old_rustc_version, $("$OLD_CARGO" --version); vendoring with $("$NEW_CARGO" --version)"

work=$(mktemp -d)
bg_pids=()
cleanup() {
    for p in "${bg_pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# 1. Vendor the locked dependencies with the current cargo; its stdout is the
#    source-replacement config that makes the old cargo use the copy (no --quiet:
#    it suppresses that config too).
mkdir -p "$work/cargo-home"
"$NEW_CARGO" vendor --locked --versioned-dirs "$work/vendor" > "$work/cargo-home/config.toml"

# 2. Build offline with the old toolchain, in its own target dir (its artifacts must not
#    mix with the current toolchain's). --locked: Cargo.lock must stay readable by cargo
#    1.65 (lockfile version 3) and complete.
start=$(date +%s)
grep -q 'vendored-sources' "$work/cargo-home/config.toml" ||
    die "cargo vendor printed no source-replacement config"
CARGO_HOME="$work/cargo-home" RUSTC="$OLD_RUSTC" RUSTDOC=/usr/bin/rustdoc \
    "$OLD_CARGO" build --offline --locked --release --workspace --target-dir "$TARGET_DIR"
bin="$TARGET_DIR/release/tyrant"
lab="$TARGET_DIR/release/tyrant-lab"
[ -x "$bin" ] || die "no binary at $bin"
[ -x "$lab" ] || die "no binary at $lab"
echo "build-rust163: built $bin and $lab in $(( $(date +%s) - start )) s"

# 3. Smoke test.
"$bin" --help | grep -q '^USAGE:' || die "$bin --help printed no USAGE"
"$bin" make --help | grep -q 'tyrant make' || die "$bin make --help failed"

mkdir -p "$work/seed" "$work/leech"
head -c $((768 * 1024 + 5)) /dev/urandom > "$work/seed/smoke.bin"
"$bin" tracker --port 0 --bind 127.0.0.1 --interval 2 > "$work/tracker.out" 2> "$work/tracker.log" &
bg_pids+=($!)
url=""
for _ in $(seq 100); do
    url=$(sed -n 's|^tracker listening on \(.*\)$|http://\1/announce|p' "$work/tracker.out")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || die "the tracker did not start: $(cat "$work/tracker.log")"
made=$("$bin" make "$work/seed/smoke.bin" --announce "$url" --piece-size 32 -o "$work/smoke.torrent")
case "$made" in
    *"info_hash="*) echo "build-rust163: make: $made" ;;
    *) die "make printed '$made'" ;;
esac
"$bin" --seed --dir "$work/seed" --port 0 --bind 127.0.0.1 --time-limit 60 -q \
    "$work/smoke.torrent" > "$work/seed.out" 2> "$work/seed.log" &
bg_pids+=($!)
if ! timeout 90 "$bin" --dir "$work/leech" --port 0 --bind 127.0.0.1 --stop-after-download \
        --time-limit 60 -q "$work/smoke.torrent" > "$work/leech.out" 2> "$work/leech.log"; then
    echo "--- seeder log"; tail -n 20 "$work/seed.log"
    echo "--- leecher log"; tail -n 20 "$work/leech.log"
    die "the leecher built with rustc 1.63 did not finish"
fi
grep -q '^complete: ' "$work/leech.out" || die "the leecher printed no 'complete:' line"
cmp "$work/seed/smoke.bin" "$work/leech/smoke.bin" || die "the downloaded file differs"
"$lab" plan single peers=3 caps=20 -o "$work/plan.txt" ||
    die "tyrant-lab plan failed"
"$lab" check "$work/plan.txt" | grep -q 'preset single' || die "tyrant-lab check failed"
echo "build-rust163: smoke test passed (--help, make, tracker + seeder + leecher: identical; tyrant-lab plan + check)"
