#!/usr/bin/env bash
# The code connector benchmark (not a timed test: it prints figures for the
# README's performance section). A JavaScript module (benches/js/
# dataSourceApp.js) answers getUpdates with pages of 1,000 generated
# customers; ferry imports them into a JSON lines file through its js
# connector. Beside it, the ceiling: node alone generating and serializing
# the same pages (benches/js/alone.js), with no ferry in the way.
#
#   benches/js.sh                          # 1,000,000 records
#   RECORDS=200000 benches/js.sh           # a quicker run
#   FERRY=target/release/ferry benches/js.sh
#
# Figures: records/sec, wall time, and CPU-seconds per million records for
# ferry itself and for node under ferry (measured apart: FERRY_NODE points at
# a wrapper that times node), then node alone. Needs GNU time (Debian: time).
set -euo pipefail

cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
ROUNDS=${ROUNDS:-3}
FERRY=${FERRY:-target/release/ferry}
if [ ! -x "$FERRY" ]; then
  cargo build --release --quiet
  FERRY=target/release/ferry
fi
FERRY=$(realpath "$FERRY")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp benches/js/dataSourceApp.js "$work/"
printf '{"connector": "js", "total": %s}\n' "$RECORDS" > "$work/account.json"
# node under ferry, timed on its own: GNU time runs it and writes its CPU.
cat > "$work/timed-node" <<WRAP
#!/bin/sh
exec /usr/bin/time -f "%U %S" -o "$work/node.time" node "\$@"
WRAP
chmod +x "$work/timed-node"

per_million() { awk -v s="$1" -v n="$RECORDS" 'BEGIN { printf "%.2f", s * 1000000 / n }'; }

echo "records: $RECORDS, node $(node --version), $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  rm -rf "$work/.ferry" "$work/out.jsonl"
  (cd "$work" && /usr/bin/time -f "%e %U %S %M" -o ferry.time \
    env FERRY_NODE="$work/timed-node" "$FERRY" -q \
    import --from account.json --to jsonl:out.jsonl --batch-size 1000 > summary.json)
  read -r wall user sys rss < "$work/ferry.time"
  read -r nuser nsys < "$work/node.time"
  lines=$(wc -l < "$work/out.jsonl")
  [ "$lines" -eq "$RECORDS" ] || { echo "wrote $lines records, not $RECORDS" >&2; exit 1; }
  # GNU time counts the children ferry reaped: take node's share out.
  own=$(awk -v u="$user" -v s="$sys" -v nu="$nuser" -v ns="$nsys" 'BEGIN { printf "%.3f", u + s - nu - ns }')
  node_cpu=$(awk -v u="$nuser" -v s="$nsys" 'BEGIN { printf "%.3f", u + s }')
  rate=$(awk -v n="$RECORDS" -v w="$wall" 'BEGIN { printf "%d", n / w }')
  echo "round $round: ferry js -> jsonl: ${rate} records/s, ${wall} s wall, ferry $(per_million "$own") CPU-s/M, node under ferry $(per_million "$node_cpu") CPU-s/M, peak RSS ${rss} KB (ferry)"
done
/usr/bin/time -f "%e %U %S" -o "$work/alone.time" node benches/js/alone.js "$work/dataSourceApp.js" "$RECORDS" > /dev/null 2> /dev/null
read -r wall user sys < "$work/alone.time"
alone=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
rate=$(awk -v n="$RECORDS" -v w="$wall" 'BEGIN { printf "%d", n / w }')
echo "ceiling: node alone generating and serializing the pages: ${rate} records/s, ${wall} s wall, $(per_million "$alone") CPU-s/M"
