#!/usr/bin/env bash
# Throughput, CPU and peak memory of `ferry export` on generated profiles.
#
#   benches/export.sh                 # 100k and 1M profiles into sqlite
#   SIZES="100000" benches/export.sh
#   FERRY=target/release/ferry benches/export.sh   # skip the build
#
# For each size: a first run (every profile created), an unchanged run (the
# same file again: nothing to send), and a run where one profile in a
# hundred changed a property. Each prints seconds, CPU seconds (user +
# system, steadier than wall time on a shared machine), CPU seconds per
# million profiles, profiles/sec and peak RSS. Memory should stay flat from
# 100k to 1M: a run holds one chunk of profiles, never the input or the state.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000"}
source benches/measure.sh

# N FILE [CHANGED]: N profiles, 4 properties and 1-2 groups each; with
# CHANGED, every hundredth profile has another plan.
generate() {
    awk -v n="$1" -v changed="${3:-0}" 'BEGIN {
        for (i = 1; i <= n; i++) {
            plan = (changed && i % 100 == 0) ? "pro" : "free"
            groups = (i % 3 == 0) ? "[\"newsletter\",\"vip\"]" : "[\"newsletter\"]"
            printf "{\"id\":\"p%d\",\"properties\":{\"email\":\"person%d@example.com\",\"name\":\"Person %d\",\"age\":%d,\"plan\":\"%s\"},\"groups\":%s}\n",
                i, i, i, 18 + i % 60, plan, groups
        }
    }' > "$2"
}

printf '%-9s %-10s %9s %9s %14s %13s %9s %9s\n' profiles run seconds "CPU s" "CPU s/million" profiles/sec "RSS MiB" sent
for n in $SIZES; do
    generate "$n" "$WORK/profiles.jsonl"
    generate "$n" "$WORK/changed.jsonl" 1
    rm -rf "$WORK/.ferry" "$WORK/crm.db"*
    for run in first unchanged one-percent; do
        input=$WORK/profiles.jsonl
        [[ $run == one-percent ]] && input=$WORK/changed.jsonl
        read -r secs rss cpu < <(measure "$FERRY" -C "$WORK" export --to "sqlite:$WORK/crm.db" --input "$input")
        profiles=$(jq .profiles "$WORK/out.json" 2> /dev/null || echo "?")
        if [[ "$profiles" != "$n" ]]; then
            echo "the $run export read $profiles of $n profiles:" >&2
            cat "$WORK/err.txt" >&2
            exit 1
        fi
        sent=$(jq '.created + .updated' "$WORK/out.json")
        printf '%-9s %-10s %9.2f %9s %14.2f %13.0f %9.1f %9s\n' "$n" "$run" "$secs" "$cpu" \
            "$(echo "$cpu * 1000000 / $n" | bc -l)" "$(echo "$n / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$sent"
    done
done
