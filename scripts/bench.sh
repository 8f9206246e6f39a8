#!/usr/bin/env bash
# scripts/bench.sh: the benchmark tables of README.md, measured side by side.
#
#   scripts/bench.sh [--rounds N] [--only hello,static,newconn,origin,giveup,scrape,autoscale]
#                    [--out DIR]
#                    [--peer NAME='COMMAND with {PORT}']...
#
# Workloads:
#   hello   wrk -t1 -c50 keep-alive on GET /            (br-serve demo vs nginx `return 200`)
#   static  wrk -t1 -c50 keep-alive on a 14-byte file    (br-serve --static vs nginx static)
#   newconn ab -c50 without -k on GET /                  (a new connection per request)
#   origin  ab on /work?ms=400 with 1..4 workers         (requests/s against worker count, PNG plot)
#   giveup  clients that give up after 2 s on /work?ms=400, 2 workers: a burst of 100 (how
#           long does the next request wait?) and 20 that keep retrying for 20 s (how many
#           get answers?), with and without --check-client-connection and --queue-timeout
#   scrape  a metrics scrape while ab -c100 keeps 2 workers busy on /work?ms=400: through
#           --metrics-path (a worker) and --metrics-bind (the master), 3 of each
#   autoscale  ab -n 100 -c 10 on /work?ms=400 with 1 and 2 fixed workers, and from 1 worker
#           with --max-workers 2 and 4 (2 also with ab -k, kept-alive clients): requests/s
#           and the worker count reached
#
# Fast servers saturate one wrk thread, so they are compared by server CPU time per
# request (utime+stime of the whole process tree from /proc, divided by requests), with
# the server pinned to core 0 and the load generator to core 1. Rounds interleave the
# servers so background noise hits all of them alike; tables report medians. nginx is
# measured when it is installed (apt-get install nginx); otherwise only br-serve is.
# Each --peer adds another server to the hello and newconn rounds: COMMAND must serve a
# short 200 at / on 127.0.0.1:{PORT} in the foreground, one core's worth (e.g. a hyper or
# a bare mio hello-world). Ratios are medians of per-round ratios: servers measured in the
# same round share that round's background noise.
#
# It builds br-serve (cargo build --release) first, and listens on 127.0.0.1 ports
# 18090-18099, which must be free. Needs wrk, ab, curl, taskset and python3; the origin
# plot needs matplotlib, installed if missing (pip, else Debian's python3-matplotlib when
# run as root, else a virtualenv in the --out directory).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=3
ONLY=hello,static,newconn,origin,giveup,scrape,autoscale
OUT=${TMPDIR:-/tmp}/br-serve-bench
PEERS=()
WORKLOADS=$ONLY
usage() { echo "bench.sh: $1 (see --help)" >&2; exit 2; }
while (( $# )); do
  case $1 in
    --rounds|--only|--out|--peer) (( $# >= 2 )) || usage "$1 needs a value" ;;&
    --rounds) [[ $2 =~ ^[1-9][0-9]*$ ]] || usage "--rounds wants a number of rounds, not '$2'"
              ROUNDS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --peer) [[ $2 == *=*'{PORT}'* ]] || usage "--peer wants NAME='COMMAND with {PORT}'"
            PEERS+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,35p' "$0"; exit 0 ;;
    *) usage "unknown argument $1" ;;
  esac
done
IFS=, read -ra asked <<< "$ONLY"
(( ${#asked[@]} )) || usage "--only names no workload"
for workload in "${asked[@]}"; do
  [[ ,$WORKLOADS, == *,"$workload",* ]] || usage "--only: no workload '$workload' (there are $WORKLOADS)"
done
for tool in wrk ab curl taskset python3; do
  command -v "$tool" >/dev/null || { echo "bench.sh: $tool is missing (apt-get install wrk apache2-utils curl util-linux python3)" >&2; exit 1; }
done
mkdir -p "$OUT"

# plot_python: a Python that imports matplotlib, for the origin plot, installing it when
# none does: with pip (a virtualenv's or pyenv's Python), else Debian's package (the system
# Python refuses pip, PEP 668) when run as root, else in a virtualenv of our own in $OUT.
plot_python() {
  local venv=$OUT/venv
  for py in python3 "$venv/bin/python"; do
    "$py" -c 'import matplotlib' 2>/dev/null && { echo "$py"; return; }
  done
  python3 -m pip install --quiet matplotlib >/dev/null 2>&1 || apt_matplotlib || true
  python3 -c 'import matplotlib' 2>/dev/null && { echo python3; return; }
  python3 -m venv "$venv" >&2 && "$venv/bin/python" -m pip install --quiet matplotlib >&2 \
    && { echo "$venv/bin/python"; return; }
  return 1
}
# apt_matplotlib: Debian's python3-matplotlib, as root (the package lists refreshed if
# they are stale or empty, as on a fresh machine).
apt_matplotlib() {
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
  echo "bench.sh: installing python3-matplotlib for the plot" >&2
  local install=(apt-get install -y -qq --no-install-recommends python3-matplotlib)
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1; }
}
REPORT_PY=python3
if [[ ,$ONLY, == *,origin,* ]]; then
  REPORT_PY=$(plot_python) || { echo "bench.sh: the origin plot needs matplotlib, which could not be installed (apt-get install python3-matplotlib, or pip install matplotlib)" >&2; exit 1; }
fi
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/br-serve
(cd "$ROOT" && cargo build --release --quiet)
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TICK=$(getconf CLK_TCK)
PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# A 14-byte file, served by both servers.
WWW=$OUT/www
mkdir -p "$WWW/static"
printf 'Hello, World!\n' > "$WWW/static/hello.txt"

# tree_ticks PID: utime+stime of PID and its children, in clock ticks.
tree_ticks() {
  local pids total=0 pid f
  pids="$1 $(cat "/proc/$1/task/$1/children" 2>/dev/null || true)"
  for pid in $pids; do
    f=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null || echo "0 0")
    total=$(( total + ${f% *} + ${f#* } ))
  done
  echo "$total"
}

# start NAME PORT CMD...: starts a server in its own session, pinned, waits until it answers.
start() {
  local name=$1 port=$2; shift 2
  # Something else answering there would be measured instead, with no CPU in our tree.
  if curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
    echo "bench.sh: port $port is already in use; stop whatever listens there" >&2
    return 1
  fi
  setsid taskset -c "$SERVER_CPU" "$@" >"$OUT/$name.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench.sh: $name did not start; see $OUT/$name.log" >&2
  return 1
}

stop() { kill -TERM -- "-$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }

nginx_conf() { # PORT -> path of a one-worker nginx config serving `return 200` and $WWW
  local dir=$OUT/nginx-$1
  mkdir -p "$dir/logs"
  cat > "$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  # As the shared peer harness configures nginx: sendfile with TCP_CORK for files, and
  # keep-alive connections that are not cut every 1000 requests.
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 100000;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$1;
    location = / { return 200 "Hello, World!\n"; }
    location /static/ { root $WWW; }
  }
}
EOF
  echo "$dir"
}

# measure NAME PORT URLPATH TOOL: one load run; appends "name tool round rps us_per_req"
# to results.
measure() {
  local name=$1 port=$2 path=$3 tool=$4 before after reqs rps out
  before=$(tree_ticks "$SERVER")
  case $tool in
    wrk) out=$(taskset -c "$LOAD_CPU" wrk -t1 -c50 -d8s "http://127.0.0.1:$port$path")
         reqs=$(awk '/requests in/ {print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out") ;;
    ab)  out=$(taskset -c "$LOAD_CPU" ab -q -n 20000 -c 50 "http://127.0.0.1:$port$path")
         reqs=$(awk '/Complete requests/ {print $3}' <<<"$out"); rps=$(awk '/Requests per second/ {print $4}' <<<"$out") ;;
  esac
  after=$(tree_ticks "$SERVER")
  python3 -c "import sys; t=($after-$before)/$TICK; print('$name $tool $ROUND', $rps, round(t*1e6/max($reqs,1), 2))" >> "$OUT/results.txt"
}

run_fast() { # the hello, static and new-connection workloads, interleaved per round
  local has_nginx=0 dir
  command -v nginx >/dev/null && has_nginx=1
  for ROUND in $(seq 1 "$ROUNDS"); do
    echo "round $ROUND/$ROUNDS" >&2
    if [[ ,$ONLY, == *,hello,* || ,$ONLY, == *,newconn,* ]]; then
      start br-serve 18090 "$BIN" --bind 127.0.0.1:18090 --workers 1 --log-level warning
      [[ ,$ONLY, == *,hello,* ]] && measure br-serve 18090 / wrk
      [[ ,$ONLY, == *,newconn,* ]] && measure br-serve 18090 / ab
      stop
      if (( has_nginx )); then
        dir=$(nginx_conf 18091)
        start nginx 18091 nginx -p "$dir" -c "$dir/nginx.conf"
        [[ ,$ONLY, == *,hello,* ]] && measure nginx 18091 / wrk
        [[ ,$ONLY, == *,newconn,* ]] && measure nginx 18091 / ab
        stop
      fi
      run_peers
    fi
    if [[ ,$ONLY, == *,static,* ]]; then
      start br-serve-static 18092 "$BIN" --bind 127.0.0.1:18092 --workers 1 --log-level warning --static "$WWW"
      measure br-serve-static 18092 /static/hello.txt wrk
      stop
      if (( has_nginx )); then
        dir=$(nginx_conf 18093)
        start nginx-static 18093 nginx -p "$dir" -c "$dir/nginx.conf"
        measure nginx-static 18093 /static/hello.txt wrk
        stop
      fi
    fi
  done
}

run_peers() { # each --peer through the hello and newconn workloads
  local peer name cmd port=18095
  for peer in "${PEERS[@]}"; do
    name=${peer%%=*} cmd=${peer#*=}
    # shellcheck disable=SC2086 # the command is split into words on purpose
    start "$name" "$port" ${cmd//\{PORT\}/$port}
    [[ ,$ONLY, == *,hello,* ]] && measure "$name" "$port" / wrk
    [[ ,$ONLY, == *,newconn,* ]] && measure "$name" "$port" / ab
    stop
  done
}

run_origin() { # /work?ms=400 at concurrency 10 with 1..4 workers, both cores for the server
  echo "workers rps failed" > "$OUT/origin.txt"
  for workers in 1 2 3 4; do
    SERVER_CPU=0,1 start "origin-w$workers" 18094 "$BIN" --bind 127.0.0.1:18094 --workers "$workers" --log-level warning
    local n=$(( 20 * workers )) out
    out=$(ab -q -n "$n" -c 10 "http://127.0.0.1:18094/work?ms=400")
    echo "$workers $(awk '/Requests per second/ {print $4}' <<<"$out") $(awk '/Failed requests/ {print $3}' <<<"$out")" >> "$OUT/origin.txt"
    stop
  done
}

run_giveup() { # clients that leave while queued: a burst, then a storm of retries
  echo "setting next_request_s storm_answered storm_refused skipped shed" > "$OUT/giveup.txt"
  local setting flags took storm counts
  for setting in none check queue both; do
    case $setting in
      none) flags=() ;;
      check) flags=(--check-client-connection) ;;
      queue) flags=(--queue-timeout 1.5) ;;
      both) flags=(--check-client-connection --queue-timeout 1.5) ;;
    esac
    SERVER_CPU=0,1 start "giveup-$setting" 18096 "$BIN" --bind 127.0.0.1:18096 --workers 2 \
      --log-level warning --metrics-path /metrics "${flags[@]}"
    # 100 requests whose clients leave after 2 s, then how long one more request waits.
    took=$(python3 "$ROOT/scripts/impatient_clients.py" burst 18096 100 2 | cut -d' ' -f2)
    # 20 clients with 2 s of patience who ask again and again, for 20 s.
    storm=$(python3 "$ROOT/scripts/impatient_clients.py" storm 18096 20 2 20)
    counts=$(curl -s "http://127.0.0.1:18096/metrics" | awk '
      $1 == "br_serve_requests_abandoned_total" {a = $2}
      $1 == "br_serve_requests_shed_total" {s = $2}
      END {print a, s}')
    echo "$setting $took ${storm% *} $counts" >> "$OUT/giveup.txt"
    stop
  done
}

run_scrape() { # how long a scrape takes while every worker is busy, by either route
  echo "route seconds listen_queue" > "$OUT/scrape.txt"
  SERVER_CPU=0,1 start scrape 18097 "$BIN" --bind 127.0.0.1:18097 --workers 2 \
    --log-level warning --metrics-path /metrics --metrics-bind 127.0.0.1:18098
  ab -q -n 300 -c 100 -s 120 "http://127.0.0.1:18097/work?ms=400" > "$OUT/scrape-ab.txt" 2>&1 &
  local load=$! took queue
  sleep 5 # ab has its 100 connections queued by now
  for _ in 1 2 3; do
    took=$(curl -s -o /dev/null -m 120 -w '%{time_total}' "http://127.0.0.1:18097/metrics")
    echo "path $took -" >> "$OUT/scrape.txt"
    queue=$(curl -s "http://127.0.0.1:18098/metrics" | awk '/^br_serve_listen_queue/ {print $2}')
    took=$(curl -s -o /dev/null -m 120 -w '%{time_total}' "http://127.0.0.1:18098/metrics")
    echo "bind $took $queue" >> "$OUT/scrape.txt"
  done
  wait "$load" || true
  stop
}

run_autoscale() { # the origin load against fixed pools and autoscaled ones
  echo "setting rps failed peak_workers" > "$OUT/autoscale.txt"
  local setting flags out peak keep
  for setting in fixed-1 fixed-2 auto-1-2 auto-1-4 auto-1-2-k; do
    keep=()
    case $setting in
      fixed-1) flags=(--workers 1) ;;
      fixed-2) flags=(--workers 2) ;;
      auto-1-2) flags=(--workers 1 --max-workers 2) ;;
      auto-1-4) flags=(--workers 1 --max-workers 4) ;;
      # Kept-alive clients, whose requests wait behind their worker, not in the queue.
      auto-1-2-k) flags=(--workers 1 --max-workers 2); keep=(-k) ;;
    esac
    SERVER_CPU=0,1 start "autoscale-$setting" 18099 "$BIN" --bind 127.0.0.1:18099 "${flags[@]}"
    out=$(ab -q "${keep[@]}" -n 100 -c 10 -s 60 "http://127.0.0.1:18099/work?ms=400")
    # The workers the pool reached: its first count plus the autoscaler's steps up.
    peak=$(awk '/workers [0-9]+ -> [0-9]+$/ && $NF > n {n = $NF} END {print n + 0}' "$OUT/autoscale-$setting.log")
    (( peak > 0 )) || peak=${flags[1]}
    echo "$setting $(awk '/Requests per second/ {print $4}' <<<"$out") $(awk '/Failed requests/ {print $3}' <<<"$out") $peak" >> "$OUT/autoscale.txt"
    stop
  done
}

: > "$OUT/results.txt"
[[ ,$ONLY, =~ ,(hello|static|newconn), ]] && run_fast
[[ ,$ONLY, == *,origin,* ]] && run_origin
[[ ,$ONLY, == *,giveup,* ]] && run_giveup
[[ ,$ONLY, == *,scrape,* ]] && run_scrape
[[ ,$ONLY, == *,autoscale,* ]] && run_autoscale
"$REPORT_PY" "$ROOT/scripts/bench_report.py" "$OUT"
