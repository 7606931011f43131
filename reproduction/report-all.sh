#!/usr/bin/env bash
# reproduction/report-all.sh: regenerate every table (report.txt) and figure of
# REPRODUCTION.md from the committed results.csv files, plus the scale, mean and
# machine checks it quotes. Needs gnuplot for the figures (the tables print without it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TYRANT_LAB:-}" ]; then
    cargo build --release --quiet -p tyrant-lab
    TYRANT_LAB=$PWD/target/release/tyrant-lab
fi
for d in reproduction/data/*/; do
    [ -f "$d/results.csv" ] || continue
    echo "=== $d"
    "$TYRANT_LAB" report "$d"
done
echo "=== time scale: S = 1 (run twice) vs S = 4"
python3 reproduction/compare_scale.py reproduction/data/scale-s1 reproduction/data/scale-s4
python3 reproduction/compare_scale.py reproduction/data/scale-s1-quiet reproduction/data/scale-s4
python3 reproduction/compare_scale.py reproduction/data/scale-s1-quiet reproduction/data/scale-s4-fixed
echo "=== universal tyranny: mean download time, per download and per peer"
python3 reproduction/means.py reproduction/data/all30 vanilla-in-vanilla tyrant-in-tyrant
python3 reproduction/means.py reproduction/data/all30 vanilla-in-vanilla tyrant-in-tyrant --per-peer
