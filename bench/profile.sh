#!/usr/bin/env bash
# Profiles the hot paths with valgrind's callgrind and prints the
# functions with the most instructions, by self cost and inclusive cost.
#
# Callgrind counts instructions on a simulated CPU, so the figures do not
# depend on other load on the machine, but they leave out cache misses and
# lock waits. Use it where `perf stat -e instructions true` reports the
# counter as not supported, as in virtual machines without a PMU.
#
# Phases:
#   server-columnar  a tidemark server ingesting columnar StreamPoints
#   server-points    the same server ingesting one Point per point
#   server-live      the same server with 1000 live subscribers under load
#   aggregate        criterion: Aggregate MEAN+MAX per minute, 1M points
#   statistics       criterion: GetStatistics' engine call, 1M points
#   observe          criterion: LiveHub::observe of 1000 points by group
#
# Usage: bench/profile.sh [OUTPUT_DIR]   (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
PORT=${TIDEMARK_PORT:-50161}
TOP=${TOP:-25}

command -v valgrind >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
}

cargo build --release --quiet
cargo bench --no-run --quiet 2>/dev/null
TARGET="${CARGO_TARGET_DIR:-target}"
TIDEMARK="$TARGET/release/tidemark"
bench_binary() { ls -t "$TARGET"/release/deps/"$1"-* | grep -v '\.d$' | sed -n 1p; }

SERVER_PID=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Frames that enclose everything (thread start, the tokio scheduler).
# After a callgrind_control dump they also show up with their inclusive
# cost in the self-cost list, so both lists leave them out.
ENCLOSING='clone\.S|start_thread|thread_start|call_once|__rust_begin_short_backtrace|tokio::runtime|hyper_util::service|tower::util|tonic::transport::server|core::future::future|main$|lang_start'

annotate() { # annotate NAME FILE
  local name=$1 file=$2
  {
    echo "### $name: self cost"
    callgrind_annotate --inclusive=no --threshold=100 "$file" 2>/dev/null \
      | grep -E '^ *[0-9,]+ +\(' | grep -vE "$ENCLOSING" | sed -n "1,${TOP}p"
    echo
    echo "### $name: inclusive cost, enclosing frames left out"
    callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null \
      | grep -E '^ *[0-9,]+ +\(' | grep -vE "$ENCLOSING" | sed -n "1,${TOP}p"
  } >"$OUT/$name.txt"
  echo "wrote $OUT/$name.txt" >&2
}

# --- The server, phase by phase ---------------------------------------------

valgrind --tool=callgrind --callgrind-out-file="$OUT/server.%p" \
  "$TIDEMARK" serve --listen "127.0.0.1:$PORT" --log-level warn 2>"$OUT/valgrind.log" &
SERVER_PID=$!
TM=("$TIDEMARK" --addr "127.0.0.1:$PORT")
for _ in $(seq 1 600); do
  if "${TM[@]}" metrics storage >/dev/null 2>&1; then break; fi
  sleep 0.2
done

phase() { # phase NAME COMMAND...: zero the counters, run, dump
  local name=$1; shift
  callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
  "$@" >"$OUT/$name.bench.txt"
  callgrind_control -d "$name" "$SERVER_PID" >/dev/null 2>&1
  sleep 1
  annotate "$name" "$(ls -t "$OUT"/server."$SERVER_PID"* | sed -n 1p)"
}

phase server-columnar "${TM[@]}" bench ingest --metric columnar --points 500000
phase server-points "${TM[@]}" bench ingest --metric per_point --points 100000 --format points
phase server-live "${TM[@]}" bench live --metric live --subscribers 1000 --rate 10000 --duration 3s

kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=""

# --- Criterion benchmarks ------------------------------------------------------

# Collects only inside functions that match COLLECT, so the set-up of the
# benchmark data is left out.
criterion() { # criterion NAME BINARY FILTER COLLECT
  local name=$1 binary=$2 filter=$3 collect=$4
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$name.callgrind" --toggle-collect="$collect" \
    "$(bench_binary "$binary")" --bench --profile-time 2 "$filter" >/dev/null 2>>"$OUT/valgrind.log"
  annotate "$name" "$OUT/$name.callgrind"
}

criterion aggregate query_path 'aggregate_1m_points/mean_max_step_60s_by_group' '*QueryEngine*aggregate*'
criterion statistics query_path 'aggregate_1m_points/statistics' '*QueryEngine*statistics*'
criterion observe live_path 'live_add_1000_points/hub_observe_by_group' '*BatchObserver*observe*'

echo "profiles in $OUT" >&2
