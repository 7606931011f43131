#!/usr/bin/env bash
# reproduction/make.sh: every table and figure of REPRODUCTION.md from the committed data,
# in one command. For each reproduction/data/NAME/ with a results.csv: `tyrant-lab report`
# (report.txt, comparisons.tsv, figures/*.png and *.svg when gnuplot is installed),
# reproduction/cdf.py's download-time CDFs per cap (figures/cdf-*), for whole-swarm
# experiments also reproduction/by_capacity.py's figures/by-capacity.*; reproduction/sweep.py's
# ratio-against-cap figures (reproduction/figures/sweep-*); then
# reproduction/tables.py writes the tables into REPRODUCTION.md. `--check` changes
# nothing in REPRODUCTION.md and fails if its tables differ from what the data give.
#
#   reproduction/make.sh [--check]       TYRANT_LAB=/path/to/tyrant-lab to skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TYRANT_LAB:-}" ]; then
    cargo build --release --quiet -p tyrant-lab
    TYRANT_LAB=$PWD/target/release/tyrant-lab
fi
mode=--write
[ "${1:-}" = --check ] && mode=--check
for d in reproduction/data/*/; do
    [ -f "$d/results.csv" ] || continue
    # A run directory without `done` is a run still going (or killed): its experiment's
    # report would mix finished and missing repetitions, so it is left as it is.
    running=0
    for r in "$d"runs/*/; do
        [ -d "$r" ] && [ ! -e "$r/done" ] && running=$((running + 1))
    done
    if [ $running -gt 0 ]; then
        echo "make: $d: $running runs without \`done\` (still running?): left out" >&2
        continue
    fi
    "$TYRANT_LAB" report "$d" > /dev/null
    # Per comparison and cap, the download-time CDFs of both arms (figures/cdf-*).
    python3 reproduction/cdf.py "$d" > /dev/null
    echo "make: $d: report.txt, comparisons.tsv$( [ -d "$d/figures" ] && echo ', figures/')"
    # Whole-swarm experiments: each leecher's gain against its cap (figures/by-capacity.*).
    if grep -q '^manifest .* preset=all ' "$d/manifest.txt"; then
        python3 reproduction/by_capacity.py "$d" --figure > /dev/null
    fi
done
# Sweeps over caps (experiments PREFIX-give-cCAP, PREFIX-keep-cCAP): ratio against cap.
python3 reproduction/sweep.py
python3 reproduction/tables.py "$mode"
