#!/usr/bin/env bash
# The import benchmark on ferry's own sample API (not a timed test: it prints
# figures for the README's performance section).
#
#   benches/sandbox.sh                       # 1,000,000 records
#   RECORDS=200000 benches/sandbox.sh        # a quicker run
#   FERRY=target/release/ferry benches/sandbox.sh
#
# It starts `ferry sandbox --records $RECORDS` as the source and measures, in
# one run:
#   1. wrk, a plain HTTP load generator, fetching the same pages the import
#      reads (offset paging, $PAGE records a page, one connection: the import
#      reads pages one after another too), in turns with
#   2. ferry import sandbox -> jsonl file: records/sec and peak RSS, at 100k
#      (--limit) and, $ROUNDS rounds, at $RECORDS;
#   3. the bulk pair: ferry import sandbox -> a second sandbox's bulk endpoint,
#      records passing through and parsed, with ferry's CPU-seconds per
#      million records and the destination's CPU over the same run;
#   4. dlt's rest_api source (PyPI, in a throwaway virtualenv) reading a
#      sandbox of $DLT_RECORDS into JSON lines files;
#   5. with --latency-ms 50 on the destination sandbox, import throughput at
#      --concurrency 1, 4 and 16 (batches of $LAT_BATCH records). The source
#      stays fast: an import reads its source one page after another (a
#      cursor cannot be read ahead), so source latency bounds every run alike.
# Needs: wrk and GNU time (Debian packages wrk, time), python3 with venv.
set -euo pipefail

cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
PAGE=${PAGE:-1000}
ROUNDS=${ROUNDS:-3}
DLT_RECORDS=${DLT_RECORDS:-200000}
LAT_LIMIT=${LAT_LIMIT:-20000}
LAT_BATCH=${LAT_BATCH:-100}
if [[ -z "${FERRY:-}" ]]; then
    cargo build --release --quiet
    FERRY=$PWD/target/release/ferry
fi
for tool in wrk /usr/bin/time python3; do
    command -v "$tool" > /dev/null || { echo "benches/sandbox.sh needs $tool" >&2; exit 2; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-sandbox-bench-XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_sandbox NAME ARGS... : start a sandbox, set URL to its address.
start_sandbox() {
    local name=$1
    shift
    "$FERRY" sandbox "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    PIDS+=($!)
    until [[ -s "$WORK/$name.out" ]]; do sleep 0.05; done
    URL=$(head -1 "$WORK/$name.out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["url"])')
}

# folder DIR URL [IN_FLIGHT]: an http connector folder on a sandbox, with no
# client-side rate limit (the benchmark measures ferry, not a pacing policy)
# and at most IN_FLIGHT requests at once (default 64).
folder() {
    mkdir -p "$1"
    cat > "$1/connector.json" << JSON
{
  "baseUrl": "$2",
  "rateLimit": {"rps": 1000000, "burst": 100000, "maxInFlight": ${3:-64}},
  "actions": {
    "list": {"path": "/customers", "records": "/data",
             "pagination": {"type": "offset", "pageSize": $PAGE, "stop": {"total": "/total"}}},
    "bulk": {"path": "/customers/bulk", "body": {"records": "{records}"},
             "results": "/results", "error": "/error", "batchSize": 1000}
  }
}
JSON
    echo '{"connector": "http"}' > "$1/account.json"
}

# import ARGS...: run ferry import; print "records seconds rec/s peakRSS_MiB
# CPU_s CPU_s/million" (ferry's own CPU, user + system, from GNU time).
import() {
    rm -rf "$WORK/.ferry"
    /usr/bin/time -v "$FERRY" -C "$WORK" -q import "$@" > "$WORK/summary.json" 2> "$WORK/time.txt" || {
        cat "$WORK/time.txt" >&2
        exit 1
    }
    local rss cpu
    rss=$(awk '/Maximum resident set size/ {print $NF}' "$WORK/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$WORK/time.txt")
    python3 - "$WORK/summary.json" "$rss" "$cpu" << 'PY'
import json, sys
s = json.load(open(sys.argv[1]))
cpu = float(sys.argv[3])
per_million = cpu * 1e6 / max(s["written"], 1)
print(f'{s["written"]:>9} {s["elapsedSecs"]:>8.2f} {s["recordsPerSec"]:>10.0f} {int(sys.argv[2]) / 1024:>8.1f} {cpu:>6.2f} {per_million:>6.2f}')
PY
}

# cpu_of PID: the CPU seconds (user + system) process PID has used so far.
cpu_of() {
    awk -v tck="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / tck}' "/proc/$1/stat"
}

HEADER=$(printf '%9s %8s %10s %8s %6s %6s' records seconds rec/s RSS_MiB CPU_s CPU/M)

echo "ferry $("$FERRY" --version | awk '{print $2}'), $(nproc) cores, $RECORDS records, $PAGE per page"
start_sandbox source --records "$RECORDS"
SOURCE=$URL
# One request at a time to the source, like wrk's one connection: ferry asks
# for the next page the moment an answer has arrived and parses meanwhile.
folder "$WORK/src" "$SOURCE" 1

echo
echo "== 1-2. wrk and ferry import sandbox -> jsonl, in $ROUNDS rounds"
# The machine's speed drifts from minute to minute, so wrk and ferry are
# measured in turns: each round is wrk for 4 s, then the import of every
# record; the ratio of each round is ferry over the wrk run just before it,
# and the figure reported is the median round.
cat > "$WORK/pages.lua" << LUA
local offset = 0
request = function()
  local path = "/customers?offset=" .. offset .. "&limit=$PAGE"
  offset = offset + $PAGE
  if offset >= $RECORDS then offset = 0 end
  return wrk.format("GET", path)
end
LUA
printf '%s\n' "100k records (for peak RSS):"
printf '%s  %s\n' "$HEADER" run
printf '%s  %s\n' "$(import --from "$WORK/src" --to "jsonl:$WORK/out.jsonl" --limit 100000)" "100k"
rm -f "$WORK/out.jsonl"
echo
printf '%5s %12s %s %7s\n' round wrk_rec/s "$HEADER" ratio
RATIOS=()
for round in $(seq "$ROUNDS"); do
    wrk -t1 -c1 -d4s -s "$WORK/pages.lua" "$SOURCE" > "$WORK/wrk.txt"
    WRK_RECS=$(awk -v page="$PAGE" '/Requests\/sec/ {printf "%d", $2 * page}' "$WORK/wrk.txt")
    LINE=$(import --from "$WORK/src" --to "jsonl:$WORK/out.jsonl")
    rm -f "$WORK/out.jsonl"
    FERRY_RECS=$(echo "$LINE" | awk '{print $3}')
    RATIO=$(python3 -c "print(f'{$FERRY_RECS / $WRK_RECS:.3f}')")
    RATIOS+=("$RATIO $FERRY_RECS")
    printf '%5s %12s %s %7s\n' "$round" "$WRK_RECS" "$LINE" "$RATIO"
done
MEDIAN=$(printf '%s\n' "${RATIOS[@]}" | sort -n | awk -v n="$ROUNDS" 'NR == int((n + 1) / 2)')
FERRY_RECS=$(echo "$MEDIAN" | awk '{print $2}')
echo "ferry / wrk, median round: $(python3 -c "print(f'{$(echo "$MEDIAN" | awk '{print $1}'):.0%}')")"

echo
echo "== 3. the bulk pair: ferry import sandbox -> a second sandbox's bulk endpoint"
# Both runs at --concurrency 4 into a fresh destination: records passing
# through as text, then parsed (--id-field id changes nothing but asks for
# the parsed path). CPU/M is ferry's own CPU seconds per million records;
# the destination sandbox's CPU over the same run is beside it.
printf '%s %9s  %s\n' "$HEADER" dest_CPU_s run
for path in pass-through parsed; do
    start_sandbox "dest-$path" --records 0
    DEST_PID=${PIDS[-1]}
    folder "$WORK/dst-$path" "$URL"
    extra=()
    [[ $path == parsed ]] && extra=(--id-field id)
    before=$(cpu_of "$DEST_PID")
    LINE=$(import --from "$WORK/src" --to "$WORK/dst-$path" --concurrency 4 "${extra[@]}")
    after=$(cpu_of "$DEST_PID")
    printf '%s %9.2f  %s\n' "$LINE" "$(echo "$after - $before" | bc -l)" "$path"
    kill "$DEST_PID"
done

echo
echo "== 4. dlt rest_api -> jsonl ($DLT_RECORDS records)"
start_sandbox dlt --records "$DLT_RECORDS"
if [[ ! -x "$WORK/venv/bin/python" ]]; then
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install --quiet dlt
fi
DLT=$("$WORK/venv/bin/python" benches/dlt_rest_api.py "$URL" "$PAGE" "$WORK/dlt")
echo "$DLT"
DLT_RECS=$(echo "$DLT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["recordsPerSec"])')
echo "ferry / dlt: $(python3 -c "print(f'{$FERRY_RECS / $DLT_RECS:.1f}x')")"

echo
echo "== 5. --latency-ms 50 on the destination: $LAT_LIMIT records, batches of $LAT_BATCH"
start_sandbox lat-dst --records 0 --latency-ms 50
folder "$WORK/lat-dst" "$URL"
printf '%s  %s\n' "$HEADER" concurrency
for c in 1 4 16; do
    printf '%s  %s\n' "$(import --from "$WORK/src" --to "$WORK/lat-dst" --limit "$LAT_LIMIT" --batch-size "$LAT_BATCH" --concurrency "$c")" "$c"
done
