#!/usr/bin/env bash
# Throughput and peak memory of `ferry import` on a generated JSON lines file.
#
#   benches/import.sh            # 100k and 1M records, into sqlite and jsonl
#   SIZES="100000" benches/import.sh
#   FERRY=target/release/ferry benches/import.sh   # skip the build
#
# For each size it prints records/sec and the peak RSS (from /usr/bin/time -v
# when present, else VmHWM polled from /proc) of a jsonl -> sqlite and a
# jsonl -> jsonl import. Memory should stay flat as the size grows: the
# pipeline holds the queue and the batches in flight, never the source.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"100000 1000000"}
source benches/measure.sh

generate() { # N FILE
    awk -v n="$1" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"id\":\"c%d\",\"email\":\"person%d@example.com\",\"name\":\"Person %d\",\"age\":%d,\"city\":\"City %d\",\"vip\":%s}\n",
                i, i, i, 18 + i % 60, i % 500, (i % 7 == 0 ? "true" : "false")
    }' > "$2"
}

printf '%-10s %-8s %10s %12s %14s %14s\n' records into seconds "CPU seconds" records/sec "peak RSS MiB"
for n in $SIZES; do
    generate "$n" "$WORK/in.jsonl"
    for dest in sqlite jsonl; do
        rm -rf "$WORK/.ferry" "$WORK/out.db"* "$WORK/out.jsonl"
        case $dest in
            sqlite) to="sqlite:$WORK/out.db" ;;
            jsonl) to="jsonl:$WORK/out.jsonl" ;;
        esac
        read -r secs rss cpu < <(measure "$FERRY" -C "$WORK" import --from "jsonl:$WORK/in.jsonl" --to "$to")
        written=$(jq .written "$WORK/out.json" 2> /dev/null || echo "?")
        if [[ "$written" != "$n" ]]; then
            echo "import into $dest wrote $written of $n records:" >&2
            cat "$WORK/err.txt" >&2
            exit 1
        fi
        printf '%-10s %-8s %10.2f %12s %14.0f %14.1f\n' "$n" "$dest" "$secs" "$cpu" "$(echo "$n / $secs" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
    done
done
