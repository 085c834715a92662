#!/usr/bin/env bash
# The postgres connector against the physical limit, on a throwaway server.
#
#   benches/postgres.sh                  # 1,000,000 records
#   RECORDS=100000 benches/postgres.sh
#   FERRY=target/release/ferry benches/postgres.sh   # skip the build
#   DLT=0 benches/postgres.sh            # without dlt
#
# It starts PostgreSQL (initdb + pg_ctl from Debian's postgresql package, in
# a temporary folder, fsync off; as the postgres user when run as root) and
# measures, on one generated JSON lines file:
#   1. psql's `\copy` of the file's lines into a table with one jsonb
#      column: the physical limit of loading these records;
#   2. ferry import jsonl -> postgres (a table ferry creates: id, jsonb,
#      change number), at 100k (--limit) and all records, for peak RSS;
#   3. dlt's postgres destination (PyPI, in a throwaway virtualenv) loading
#      the same file with merge on id, unless DLT=0 or it does not install;
#   4. reading back: `\copy (SELECT data …) TO` against ferry import
#      postgres -> jsonl.
# Each prints seconds, records/sec, and for ferry CPU seconds and peak RSS.
# Needs: PostgreSQL's server binaries, GNU time, jq, python3 with venv.
set -euo pipefail

cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
source benches/measure.sh

BIN=$(dirname "$(readlink -f "$(command -v initdb 2> /dev/null || ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")")
[[ -x "$BIN/pg_ctl" ]] || { echo "benches/postgres.sh needs initdb and pg_ctl (apt-get install postgresql)" >&2; exit 2; }
AS=()
PGUSER_NAME=$(id -un)
if [[ $(id -u) == 0 ]]; then
    AS=(runuser -u postgres --)
    PGUSER_NAME=postgres
    chown postgres "$WORK"
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${AS[@]}" "$BIN/initdb" -A trust -U "$PGUSER_NAME" --no-sync -E UTF8 -D "$WORK/pg" > /dev/null
"${AS[@]}" "$BIN/pg_ctl" -w -l "$WORK/pg.log" -D "$WORK/pg" \
    -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -F -c synchronous_commit=off -c full_page_writes=off" start > /dev/null
trap '"${AS[@]}" "$BIN/pg_ctl" -D "$WORK/pg" -m immediate stop > /dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
URL="postgres://$PGUSER_NAME@127.0.0.1:$PORT/postgres"
PSQL=("$BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$PORT" -U "$PGUSER_NAME" -d postgres)

awk -v n="$RECORDS" 'BEGIN {
    for (i = 1; i <= n; i++)
        printf "{\"id\":\"c%07d\",\"email\":\"person%d@example.com\",\"name\":\"Person %d\",\"age\":%d,\"city\":\"City %d\",\"vip\":%s}\n",
            i, i, i, 18 + i % 60, i % 500, (i % 7 == 0 ? "true" : "false")
}' > "$WORK/in.jsonl"
chmod a+r "$WORK/in.jsonl"

# rate SECONDS: records per second.
rate() { echo "$RECORDS / $1" | bc -l | xargs printf '%.0f'; }
# timed CMD...: run CMD, print its wall seconds.
timed() {
    local start end
    start=$(date +%s.%N)
    "$@" > /dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc -l
}

printf '%-44s %9s %12s %7s %9s\n' what seconds records/sec "CPU s" "RSS MiB"
# 1. \copy of each line, verbatim, into the same kind of table as ferry's:
# the record as jsonb, keyed by its id (a generated primary key column). CSV
# with a quote and a delimiter that never occur, so a line is one field.
"${PSQL[@]}" -c "CREATE TABLE copied (data jsonb,
    id text COLLATE \"C\" GENERATED ALWAYS AS (data->>'id') STORED PRIMARY KEY)"
secs=$(timed "${PSQL[@]}" -c "\\copy copied (data) FROM '$WORK/in.jsonl' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')")
COPY_RATE=$(rate "$secs")
printf '%-44s %9.2f %12s %7s %9s\n' "psql \\copy into (jsonb, id primary key)" "$secs" "$COPY_RATE" - -

# 2. ferry import into a table it creates.
for limit in 100000 "$RECORDS"; do
    "${PSQL[@]}" -c "SET client_min_messages = warning; DROP TABLE IF EXISTS bench; DROP SEQUENCE IF EXISTS bench_ferry_seq"
    rm -rf "$WORK/.ferry"
    read -r secs rss cpu < <(measure "$FERRY" -C "$WORK" import --from "jsonl:$WORK/in.jsonl" --to "$URL#bench" --limit "$limit")
    written=$(jq .written "$WORK/out.json" 2> /dev/null || echo "?")
    if [[ "$written" != "$limit" ]]; then
        echo "the import wrote $written of $limit records:" >&2
        cat "$WORK/err.txt" >&2
        exit 1
    fi
    printf '%-44s %9.2f %12.0f %7s %9.1f\n' "ferry import jsonl -> postgres, $limit" "$secs" \
        "$(echo "$limit / $secs" | bc -l)" "$cpu" "$(echo "$rss / 1024" | bc -l)"
done
FERRY_RATE=$(echo "$RECORDS / $secs" | bc -l | xargs printf '%.0f')
echo "ferry / \\copy: $(python3 -c "print(f'{$FERRY_RATE / $COPY_RATE:.0%}')") (target: at least 50%)"

# 3. dlt, if it installs.
if [[ "${DLT:-1}" != 0 ]]; then
    if python3 -m venv "$WORK/venv" > /dev/null 2>&1 \
        && "$WORK/venv/bin/pip" install --quiet "dlt[postgres]" > "$WORK/pip.txt" 2>&1; then
        # dlt insists on a password; the server trusts every local login.
        DLT_URL="postgres://$PGUSER_NAME:bench@127.0.0.1:$PORT/postgres"
        DLT_OUT=$("$WORK/venv/bin/python" benches/dlt_postgres.py "$WORK/in.jsonl" "$DLT_URL" "$WORK/dlt" 2> "$WORK/dlt.err") \
            || { echo "dlt failed:" >&2; tail -5 "$WORK/dlt.err" >&2; DLT_OUT='{"tool": "dlt (failed)", "elapsedSecs": 0, "recordsPerSec": 0}'; }
        DLT_SECS=$(echo "$DLT_OUT" | jq .elapsedSecs)
        printf '%-44s %9.2f %12.0f %7s %9s\n' "$(echo "$DLT_OUT" | jq -r .tool)" "$DLT_SECS" \
            "$(echo "$DLT_OUT" | jq .recordsPerSec)" - -
    else
        echo "dlt[postgres] did not install (see pip's output); left out"
        tail -3 "$WORK/pip.txt"
    fi
fi

# 4. Reading back.
secs=$(timed "${PSQL[@]}" -c "\\copy (SELECT data FROM bench ORDER BY id) TO '/dev/null'")
printf '%-44s %9.2f %12s %7s %9s\n' "psql \\copy out of the table" "$secs" "$(rate "$secs")" - -
rm -rf "$WORK/.ferry"
read -r secs rss cpu < <(measure "$FERRY" -C "$WORK" import --from "$URL#bench" --to "jsonl:$WORK/back.jsonl")
printf '%-44s %9.2f %12.0f %7s %9.1f\n' "ferry import postgres -> jsonl" "$secs" \
    "$(echo "$RECORDS / $secs" | bc -l)" "$cpu" "$(echo "$rss / 1024" | bc -l)"
