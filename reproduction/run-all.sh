#!/usr/bin/env bash
# reproduction/run-all.sh: every experiment behind REPRODUCTION.md, in the order they were
# run, with the exact plan options. Each experiment is planned, run and reported into
# reproduction/data/NAME/ (manifest.txt, results.csv, report.txt, figures/); rerunning
# skips runs already done there. About 2.5 h on a 2-core machine if run one after the
# other (the S = 1 runs take 20 min each but little CPU: we ran them beside the others).
#
#   reproduction/run-all.sh [NAME ...]     all experiments, or only the named ones
#   TYRANT=/path/to/tyrant TYRANT_LAB=/path/to/tyrant-lab
#                                          use these binaries (default: build target/release)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TYRANT:-}" ] || [ -z "${TYRANT_LAB:-}" ]; then
    cargo build --release --quiet
fi
TYRANT=${TYRANT:-$PWD/target/release/tyrant}
TYRANT_LAB=${TYRANT_LAB:-$PWD/target/release/tyrant-lab}
# tyrant-lab runs the client that $TYRANT names.
export TYRANT
export RUST_LOG=${RUST_LOG:-warn}
DATA=reproduction/data

# name | jobs | plan words (downpour's setup is the plan default: 3 seeders 64+32+32 KiB/s,
# a 2 MiB file in 32 KiB pieces, the 4PL capacity fit, closed-loop leechers, tracker
# interval 10 s, numwant 60)
EXPERIMENTS=(
    "single30|2|single peers=30 caps=20,100,1000 reps=3 duration=600 time_scale=4 seed=11"
    "scale-s1|1|single peers=30 caps=100 reps=1 duration=600 time_scale=1 seed=12 tracker_port=6981 base_port=24000"
    "scale-s4|1|single peers=30 caps=100 reps=1 duration=600 time_scale=4 seed=12 tracker_port=6982 base_port=25000"
    # the S = 1 run again on a quieter machine, and S = 4 again after the round-grid fix
    "scale-s1-quiet|1|single peers=30 caps=100 reps=1 duration=600 time_scale=1 seed=12 tracker_port=6983 base_port=26000"
    "scale-s4-fixed|1|single peers=30 caps=100 reps=1 duration=600 time_scale=4 seed=12 tracker_port=6984 base_port=27000"
    "all30|2|all peers=30 caps=100 reps=2 duration=600 time_scale=4 seed=13"
    "propshare30|2|propshare peers=30 caps=100 reps=2 duration=600 time_scale=4 seed=14"
    "sybil30|2|sybil peers=30 caps=40 reps=2 duration=600 time_scale=4 seed=15"
    "rebel30|2|rebel peers=30 caps=50 reps=2 duration=600 time_scale=4 seed=16"
    "thief30|2|thief peers=30 caps=100 reps=2 duration=600 time_scale=4 seed=17"
    "single300|1|single peers=300 caps=100 reps=1 duration=600 time_scale=1 seed=18"
)

for e in "${EXPERIMENTS[@]}"; do
    IFS='|' read -r name jobs words <<< "$e"
    if [ $# -gt 0 ]; then
        case " $* " in *" $name "*) ;; *) continue ;; esac
    fi
    out=$DATA/$name
    mkdir -p "$out"
    echo "=== $name: tyrant-lab plan $words (jobs $jobs) $(date -u +%FT%TZ)"
    # shellcheck disable=SC2086
    "$TYRANT_LAB" plan $words -o "$out/plan.txt"
    "$TYRANT_LAB" run "$out/plan.txt" --out "$out" --jobs "$jobs"
    "$TYRANT_LAB" report "$out" > /dev/null
    echo "=== $name done $(date -u +%FT%TZ)"
done
