#!/usr/bin/env bash
# bench/sample.sh: the footprint of a whole harness swarm while it runs (issue 6,
# "footprint ... of a whole 300-process swarm"). Every INTERVAL s until SECS have passed:
# tyrant processes, their threads, their summed RSS, and the machine's CPU idle share over
# the interval; then the medians. Run it beside `tyrant-lab run`:
#
#   bench/sample.sh [SECS=600] [INTERVAL=10] > footprint.txt
set -euo pipefail
secs=${1:-600}
step=${2:-10}

cpu() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "t procs threads rss_mib cpu_idle"
end=$(( $(date +%s) + secs ))
read -r i0 t0 < <(cpu)
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
    sleep "$step"
    procs=0 threads=0 rss=0
    for d in /proc/[0-9]*; do
        case "$(cat "$d/comm" 2>/dev/null)" in tyrant*) ;; *) continue ;; esac
        read -r th kb < <(awk '/^Threads:/ {t=$2} /^VmRSS:/ {r=$2} END {print t+0, r+0}' "$d/status" 2>/dev/null || echo "0 0")
        procs=$((procs + 1)); threads=$((threads + th)); rss=$((rss + kb))
    done
    read -r i1 t1 < <(cpu)
    idle=$(awk -v a="$((i1 - i0))" -v b="$((t1 - t0))" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    i0=$i1 t0=$t1
    echo "$(( $(date +%s) - start )) $procs $threads $((rss / 1024)) $idle" | tee -a "$log"
done
# Medians per column (sort each column; the middle value).
for col in 2 3 4 5; do
    cut -d' ' -f"$col" "$log" | sort -g | awk '{v[NR]=$1} END {if (NR) printf "%s ", v[int((NR + 1) / 2)]}'
done | awk '{printf "median: procs %s threads %s rss_mib %s cpu_idle %s\n", $1, $2, $3, $4}'
