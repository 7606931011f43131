#!/usr/bin/env bash
# reproduction/run-all.sh: run experiments of reproduction/experiments.txt, exactly as
# planned there (plan words, statistic and jobs), into reproduction/data/NAME/: manifest.txt
# (with a `# ran` line naming the client's commit, host, cores and time), results.csv (each
# row with the client's build and the run's CPU idle share), report.txt, comparisons.tsv,
# figures/, stats-summary.txt.gz (the start and done line of every process's stats
# file), upload-use.tsv (reproduction/upload_use.py: caps used by time into a download) and
# focus-ticks.tsv (reproduction/focus_ticks.py: the focus peers' unchoke counts while they
# download). A rerun skips runs already done; a different client build is refused.
#
#   reproduction/run-all.sh NAME ...        the named experiments
#   reproduction/run-all.sh --list          names, jobs and plan words
#   TYRANT=/path/to/tyrant TYRANT_LAB=/path/to/tyrant-lab   use these binaries
#                                           (default: build target/release)
#   HOSTS=h0@ADDR,h1@ADDR EXEC='ssh -tt {host} cd {dir} &&' [COLLECT=CMD] run-all.sh NAME
#                                           on a testbed (docs/testbeds.md): the plan gets
#                                           hosts=HOSTS, every process starts through EXEC
#                                           (--exec), COLLECT runs per host after each run
#                                           (--collect), one run at a time
# Then reproduction/make.sh puts the new numbers into REPRODUCTION.md's tables.
# The `realswarm*` experiments are reproduction/realswarm.py's (their words are its
# arguments), not tyrant-lab's.
set -euo pipefail
cd "$(dirname "$0")/.."
LIST=reproduction/experiments.txt
entries() { grep -v '^[[:space:]]*\(#\|$\)' "$LIST"; }
if [ "${1:-}" = --list ] || [ $# -eq 0 ]; then
    entries | awk -F'|' '{ printf "%-18s jobs %-2s %s\n", $1, $2, $3 }'
    [ $# -gt 0 ] || echo "run-all: name the experiments to run (they take hours: see REPRODUCTION.md)" >&2
    exit 0
fi
# Without EXEC, tyrant-lab would refuse HOSTS only after the plan is rewritten, and COLLECT
# would silently collect nothing (every process local).
if [ -z "${EXEC:-}" ]; then
    for v in HOSTS COLLECT; do
        [ -z "${!v:-}" ] || { echo "run-all: $v needs EXEC (how a process starts on a host; docs/testbeds.md)" >&2; exit 2; }
    done
fi
if [ -z "${TYRANT:-}" ] || [ -z "${TYRANT_LAB:-}" ]; then
    cargo build --release --quiet
fi
TYRANT=${TYRANT:-$PWD/target/release/tyrant}
TYRANT_LAB=${TYRANT_LAB:-$PWD/target/release/tyrant-lab}
export TYRANT
export RUST_LOG=${RUST_LOG:-warn}
for name in "$@"; do
    line=$(entries | awk -F'|' -v n="$name" '$1 == n' | head -n 1)
    [ -n "$line" ] || { echo "run-all: no experiment '$name' in $LIST" >&2; exit 2; }
    IFS='|' read -r _ jobs words _ <<< "$line"
    if [ "${words%% *}" = realswarm.py ]; then
        # libtorrent's bindings may live only in run.sh's .venv.
        py=python3
        [ -x .venv/bin/python ] && py=.venv/bin/python
        # shellcheck disable=SC2086
        "$py" reproduction/$words
        out=$(sed -n 's/.*--out \([^ ]*\).*/\1/p' <<< "$words")
        (cd "$out" && grep -H '^\(start\|done\) ' runs/*/stats/*.txt | gzip -9n > stats-summary.txt.gz)
        continue
    fi
    out=reproduction/data/$name
    mkdir -p "$out"
    remote=()
    if [ -n "${HOSTS:-}" ]; then
        words="$words hosts=$HOSTS"
    fi
    if [ -n "${EXEC:-}" ]; then
        # tyrant-lab runs remote runs one at a time (its --jobs is local only).
        jobs=1
        remote=(--exec "$EXEC")
        [ -z "${COLLECT:-}" ] || remote+=(--collect "$COLLECT")
    fi
    echo "=== $name: tyrant-lab plan $words (jobs $jobs) $(date -u +%FT%TZ)"
    # shellcheck disable=SC2086
    "$TYRANT_LAB" plan $words -o "$out/plan.txt"
    "$TYRANT_LAB" run "$out/plan.txt" --out "$out" --jobs "$jobs" ${remote[@]+"${remote[@]}"}
    "$TYRANT_LAB" report "$out" > /dev/null
    (cd "$out" && grep -H '^\(start\|done\) ' runs/*/stats/*.txt | gzip -9n > stats-summary.txt.gz)
    python3 reproduction/upload_use.py "$out"
    python3 reproduction/focus_ticks.py "$out"
    echo "=== $name done $(date -u +%FT%TZ)"
done
