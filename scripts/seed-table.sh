#!/usr/bin/env bash
# seed-table.sh: reproduce the load test the project started from, against br-serve.
#
# The origin was a Docker service whose requests each cost ~400 ms of CPU, load-tested
# with ApacheBench: 1 worker gave ~2.4 req/s, 4 workers ~7, and at 100 or more concurrent
# connections per worker requests timed out. This script builds the release binary, then
# for each worker count starts `br-serve --bind 127.0.0.1:0 --workers W`, runs ab against
# /work?ms=400 at each mix, stops the server with TERM, and prints a Markdown table with
# the origin's columns. With the defaults it takes about 5 minutes on 2 cores (each core
# serves at most 2.5 of these requests a second).
#
# Settings (environment):
#   SEED_WORKERS   worker counts              (default "1 2 4")
#   SEED_MIXES     ab mixes, REQUESTS:CONCURRENCY (default "40:10 100:100 200:200")
#   SEED_TIMEOUT   ab -s, the "TimeoutTest" column, seconds (default 30)
#   SEED_WORK_MS   CPU milliseconds per request (default 400)
#   SEED_RUN_CAP   hard cap on one ab run, seconds (default 600)
#
# Progress goes to stderr, the table to stdout:  scripts/seed-table.sh > seed.md
set -euo pipefail

case "${1-}" in
    "") ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "seed-table.sh: unknown argument $1; settings come from the environment (see --help)" >&2
       exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORKERS="${SEED_WORKERS:-1 2 4}"
MIXES="${SEED_MIXES:-40:10 100:100 200:200}"
TIMEOUT="${SEED_TIMEOUT:-30}"
WORK_MS="${SEED_WORK_MS:-400}"
RUN_CAP="${SEED_RUN_CAP:-600}"
# cargo puts the binary under CARGO_TARGET_DIR when it is set.
BIN=${CARGO_TARGET_DIR:-target}/release/br-serve

if ! command -v ab >/dev/null 2>&1; then
    echo "seed-table: ApacheBench (ab) not found; install it: apt-get install -y apache2-utils" >&2
    exit 1
fi

scratch="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT

log() { echo "seed-table: $*" >&2; }

# start_server W: starts the master with W workers; sets server_pid and server_addr.
start_server() {
    local log_file="$scratch/server-$1.log" line=""
    "$BIN" --bind 127.0.0.1:0 --workers "$1" 2>"$log_file" &
    server_pid=$!
    # The ready line: "... Listening at: http://127.0.0.1:PORT (PID)". Poll, bounded.
    for _ in $(seq 200); do
        line="$(grep -m1 'Listening at: http://' "$log_file" || true)"
        [[ -n "$line" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$line" ]]; then
        log "br-serve did not become ready; its log:"
        cat "$log_file" >&2
        exit 1
    fi
    server_addr="$(sed -E 's|.*Listening at: http://([^ ]+) .*|\1|' <<<"$line")"
}

# stop_server: TERM (graceful), wait up to 40 s, then KILL; reaps the master.
stop_server() {
    kill -TERM "$server_pid"
    for _ in $(seq 400); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        log "br-serve ignored TERM for 40 s; killing it"
        kill -KILL "$server_pid"
    fi
    local status=0
    wait "$server_pid" || status=$?
    [[ "$status" -eq 0 ]] || log "br-serve exited with status $status after TERM"
    server_pid=""
}

# ab_field OUTPUT PATTERN: the first number on ab's line matching PATTERN ("-" if none).
ab_field() {
    local value
    value="$(grep -m1 -E "$2" <<<"$1" | sed -E 's/^[^:]*:[[:space:]]*([0-9.]+).*/\1/' || true)"
    echo "${value:--}"
}

# run_mix W N C: one ab run; prints one table row.
run_mix() {
    local w="$1" n="$2" c="$3" out status=0 failed non2xx
    out="$(timeout "$RUN_CAP" ab -s "$TIMEOUT" -n "$n" -c "$c" \
        "http://$server_addr/work?ms=$WORK_MS" 2>&1)" || status=$?
    failed="$(ab_field "$out" '^Failed requests:')"
    # ab counts error statuses apart from failures; an overloaded server's 5xx belong here.
    non2xx="$(ab_field "$out" '^Non-2xx responses:')"
    [[ "$non2xx" == "-" ]] || failed+=" (+$non2xx non-2xx)"
    if [[ "$status" -ne 0 ]]; then
        # ab gives up on the whole run (e.g. "The timeout specified has expired").
        failed="ab aborted ($(grep -m1 -E 'apr_|Total of' <<<"$out" || echo "status $status"))"
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" "$TIMEOUT" "$n" "$c" \
        "$(ab_field "$out" '^Time taken for tests:')" \
        "$(ab_field "$out" '^Time per request:.*\(mean\)$')" \
        "$(ab_field "$out" '^Time per request:.*across all concurrent')" \
        "$(ab_field "$out" '^Requests per second:')" \
        "$failed"
}

log "building the release binary"
cargo build --release >&2

cores="$(nproc)"
rows=""
for w in $WORKERS; do
    start_server "$w"
    log "workers=$w listening on $server_addr"
    for mix in $MIXES; do
        log "  ab -n ${mix%%:*} -c ${mix##*:}"
        rows+="$(run_mix "$w" "${mix%%:*}" "${mix##*:}")"$'\n'
    done
    stop_server
done

echo "# br-serve seed table ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
echo "nproc: $cores"
awk -v c="$cores" -v ms="$WORK_MS" \
    'BEGIN { printf "cap: %d cores / %.3f s per request = %.1f req/s\n", c, ms / 1000, c * 1000 / ms }'
echo
echo "| Worker | TimeoutTest | Request | Concurrency | TimeTest (s) | TimePerRequest-1 (ms) | TimePerRequest-2 (ms) | RPS | Failed |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s' "$rows"
