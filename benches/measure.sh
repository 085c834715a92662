# shellcheck shell=bash
# Shared by the benchmarks, sourced from the repository's root: FERRY (the
# release build unless set), WORK (a scratch folder removed on exit), and
# `measure CMD...`, which runs CMD with stdout in $WORK/out.json and stderr
# in $WORK/err.txt and prints "<seconds> <peak RSS in KiB> <CPU seconds>".

if [[ -z "${FERRY:-}" ]]; then
    cargo build --release --quiet
    FERRY=$PWD/target/release/ferry
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Run a command; print "<seconds> <peak RSS in KiB> <CPU seconds>" (CPU
# seconds only with /usr/bin/time; it shows the cost on a busy machine).
measure() {
    local start end rss cpu="-"
    start=$(date +%s.%N)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -v "$@" > "$WORK/out.json" 2> "$WORK/err.txt" || true
        rss=$(grep 'Maximum resident set size' "$WORK/err.txt" | awk '{print $NF}')
        cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$WORK/err.txt")
    else
        "$@" > "$WORK/out.json" 2> "$WORK/err.txt" &
        local pid=$! peak=0 now
        while kill -0 "$pid" 2> /dev/null; do
            now=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2> /dev/null || echo 0)
            [[ -n "$now" && "$now" -gt "$peak" ]] && peak=$now
            sleep 0.05
        done
        wait "$pid"
        rss=$peak
    fi
    end=$(date +%s.%N)
    echo "$(echo "$end - $start" | bc -l) $rss $cpu"
}
