#!/usr/bin/env bash
# reproduction/make.sh: every table and figure of REPRODUCTION.md from the committed data,
# in one command. For each reproduction/data/NAME/ with a results.csv: `tyrant-lab report`
# (report.txt, comparisons.tsv, figures/*.png and *.svg when gnuplot is installed); then
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
    "$TYRANT_LAB" report "$d" > /dev/null
    echo "make: $d: report.txt, comparisons.tsv$( [ -d "$d/figures" ] && echo ', figures/')"
done
python3 reproduction/tables.py "$mode"
