#!/usr/bin/env bash
# Compares tidemark with VictoriaMetrics on the same generated points.
#
# Starts both servers on loopback ports with data under a fresh temporary
# folder and loads both with `tidemark bench ingest`, VictoriaMetrics
# through its JSON-lines /api/v1/import. Then it waits until each counts
# every point and runs the same aggregation on both: mean and max per
# minute over the whole range, grouped by the 10-value `group` tag. It
# prints one table with the ratio tidemark/VictoriaMetrics, and stops both
# servers and removes the folder on exit.
#
# Usage: bench/compare.sh [--points N] [--series N] [--query-runs N]
#                         [--vm-batch N] [--vm-streams N] [--vm-sweep]
#                         [--results DIR]
#
# The load generator runs on the same machine as the servers and competes
# with them for CPU, the same way for both.
set -euo pipefail

POINTS=10000000
SERIES=1000
QUERY_RUNS=10
VM_BATCH=10000
VM_STREAMS=2
VM_SWEEP=0
SWEEP_POINTS=2000000
RESULTS=""
TIDEMARK_PORT=${TIDEMARK_PORT:-50151}
VM_PORT=${VM_PORT:-18428}
VM_SWEEP_PORT=${VM_SWEEP_PORT:-18429}
METRIC=bench_gauge

usage() {
  # The comment block at the top of this file, without the leading "# ".
  awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
  cat <<'EOF'
Options:
  --points N       points to load into each server (default 10000000)
  --series N       number of series (default 1000)
  --query-runs N   timed queries per server; the table shows the median
                   (default 10)
  --vm-batch N     points per VictoriaMetrics import request (default 10000)
  --vm-streams N   concurrent VictoriaMetrics import requests (default 2)
  --vm-sweep       first load 2,000,000 points into a scratch
                   VictoriaMetrics with every batch size and concurrency
                   of 1000/10000/100000 x 1/2/4, and use the fastest
  --results DIR    keep every JSON result in DIR
Environment: TIDEMARK_PORT (50151), VM_PORT (18428), VM_SWEEP_PORT (18429).
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --points) POINTS=$2; shift 2 ;;
    --series) SERIES=$2; shift 2 ;;
    --query-runs) QUERY_RUNS=$2; shift 2 ;;
    --vm-batch) VM_BATCH=$2; shift 2 ;;
    --vm-streams) VM_STREAMS=$2; shift 2 ;;
    --vm-sweep) VM_SWEEP=1; shift ;;
    --results) RESULTS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown option $1; see --help" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."

log() { echo "== $*" >&2; }

# --- Tools -----------------------------------------------------------------

apt_install() {
  if [[ -z "${APT_UPDATED:-}" ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Debian's package (bookworm: 1.79.5) installs the single-node server as
# /usr/bin/victoria-metrics. Its service is left alone: this script starts
# its own instances on other ports.
command -v victoria-metrics >/dev/null || { log "installing victoria-metrics"; apt_install victoria-metrics; }
command -v jq >/dev/null || { log "installing jq"; apt_install jq; }
command -v curl >/dev/null || { log "installing curl"; apt_install curl; }

log "building tidemark (release)"
cargo build --release --quiet
TIDEMARK="${CARGO_TARGET_DIR:-target}/release/tidemark"

# --- Servers and clean-up --------------------------------------------------

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$TIDEMARK_PORT" "$VM_PORT" "$VM_SWEEP_PORT"; do
  if port_in_use "$port"; then
    echo "error: 127.0.0.1:$port is in use; set TIDEMARK_PORT, VM_PORT or VM_SWEEP_PORT to free ports" >&2
    exit 1
  fi
done

# Waits up to 60 s for a command to succeed.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "error: $what did not become ready within 60 s; see the logs in $WORK" >&2
  exit 1
}

start_vm() {
  local port=$1 dir=$2
  victoria-metrics -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$port" \
    -search.disableCache -loggerLevel=WARN >"$dir.log" 2>&1 &
  PIDS+=($!)
  VM_PID=$!
  wait_for "VictoriaMetrics on port $port" curl -sf "http://127.0.0.1:$port/health"
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- Data layout -----------------------------------------------------------

POINTS_PER_SERIES=$(( (POINTS + SERIES - 1) / SERIES ))
SPAN_S=$(( POINTS_PER_SERIES * 10 ))
NOW_S=$(date +%s)
# The data ends about an hour before now: VictoriaMetrics hides points
# newer than its -search.latencyOffset (30 s) from queries.
START_S=$(( (NOW_S - SPAN_S - 3600) / 60 * 60 ))
START_NS="${START_S}000000000"
END_NS="$(( START_S + SPAN_S ))000000000"
DATA_ARGS=(--series "$SERIES" --shape gauge --interval 10s --start-time "$START_NS" --seed 1)

save() { # save NAME JSON
  printf '%s\n' "$2" >"$WORK/$1.json"
  if [[ -n "$RESULTS" ]]; then mkdir -p "$RESULTS"; printf '%s\n' "$2" >"$RESULTS/$1.json"; fi
}
field() { jq -r ".$2 // empty" "$WORK/$1.json"; }

# --- VictoriaMetrics batch size and concurrency -----------------------------

if [[ $VM_SWEEP == 1 ]]; then
  log "sweeping VictoriaMetrics import batch size and concurrency with $SWEEP_POINTS points each"
  mkdir -p "$WORK/vm-sweep"
  start_vm "$VM_SWEEP_PORT" "$WORK/vm-sweep/data"
  SWEEP_PID=$VM_PID
  best_rate=0
  printf '%-10s %-8s %14s\n' batch streams points/s >&2
  for batch in 1000 10000 100000; do
    for streams in 1 2 4; do
      json=$("$TIDEMARK" bench ingest --target victoriametrics --vm-url "http://127.0.0.1:$VM_SWEEP_PORT" \
        --metric "sweep_${batch}_${streams}" --points "$SWEEP_POINTS" "${DATA_ARGS[@]}" \
        --points-per-message "$batch" --streams "$streams" --output json)
      save "vm-sweep-$batch-$streams" "$json"
      rate=$(jq -r .points_per_second <<<"$json")
      printf '%-10s %-8s %14.0f\n' "$batch" "$streams" "$rate" >&2
      if awk -v a="$rate" -v b="$best_rate" 'BEGIN {exit !(a > b)}'; then
        best_rate=$rate; VM_BATCH=$batch; VM_STREAMS=$streams
      fi
    done
  done
  kill "$SWEEP_PID"; wait "$SWEEP_PID" 2>/dev/null || true
  rm -rf "$WORK/vm-sweep"
  log "fastest VictoriaMetrics import: batch $VM_BATCH, $VM_STREAMS streams"
fi

# --- tidemark ----------------------------------------------------------------

if "$TIDEMARK" serve --help | grep -q -- '--data-dir' && "$TIDEMARK" serve --help | grep -q 'disk'; then
  ENGINE=disk
  mkdir -p "$WORK/tidemark"
  STORAGE_ARGS=(--storage disk --data-dir "$WORK/tidemark")
else
  ENGINE=memory
  STORAGE_ARGS=(--storage memory)
fi
log "tidemark storage engine: $ENGINE"

"$TIDEMARK" serve --listen "127.0.0.1:$TIDEMARK_PORT" "${STORAGE_ARGS[@]}" --log-level warn \
  >"$WORK/tidemark.log" 2>&1 &
TIDEMARK_PID=$!
PIDS+=("$TIDEMARK_PID")
TM=("$TIDEMARK" --addr "127.0.0.1:$TIDEMARK_PORT")
wait_for "tidemark on port $TIDEMARK_PORT" "${TM[@]}" metrics storage

log "tidemark: loading $POINTS points (columnar, 4 streams)"
save tm-ingest "$("${TM[@]}" bench ingest --metric "$METRIC" --points "$POINTS" "${DATA_ARGS[@]}" \
  --wait-queryable --output json)"
log "tidemark: $QUERY_RUNS aggregation and statistics queries"
save tm-query "$("${TM[@]}" bench query --metric "$METRIC" --start "$START_NS" --end "$END_NS" \
  --requests "$QUERY_RUNS" --statistics --output json)"
save tm-storage "$("${TM[@]}" metrics storage --output json)"
TM_RSS_KIB=$(peak_rss_kib "$TIDEMARK_PID")
TM_DISK_BYTES=""
if [[ $ENGINE == disk ]]; then TM_DISK_BYTES=$(du -sb "$WORK/tidemark" | cut -f1); fi

# Per-point format and per-message acknowledgements, into other metrics
# after the memory and disk figures above were taken.
log "tidemark: loading $POINTS points (one Point per point, 4 streams)"
save tm-ingest-points "$("${TM[@]}" bench ingest --metric "${METRIC}_points" --points "$POINTS" \
  "${DATA_ARGS[@]}" --format points --output json)"
UNARY_POINTS=$(( POINTS < 1000000 ? POINTS : 1000000 ))
log "tidemark: $UNARY_POINTS points as WritePoints calls for acknowledgement latency"
save tm-ingest-unary "$("${TM[@]}" bench ingest --metric "${METRIC}_unary" --points "$UNARY_POINTS" \
  "${DATA_ARGS[@]}" --unary --output json)"

# A graceful stop flushes the head into blocks, as force_flush does for
# VictoriaMetrics below, so the size after it compares with VM's.
save tm-storage-final "$("${TM[@]}" metrics storage --output json)"
kill "$TIDEMARK_PID"; wait "$TIDEMARK_PID" 2>/dev/null || true
TM_FLUSHED_BYTES=""
if [[ $ENGINE == disk ]]; then TM_FLUSHED_BYTES=$(du -sb "$WORK/tidemark" | cut -f1); fi

# --- VictoriaMetrics -----------------------------------------------------------

mkdir -p "$WORK/vm"
start_vm "$VM_PORT" "$WORK/vm/data"
VM_URL="http://127.0.0.1:$VM_PORT"
log "VictoriaMetrics: loading $POINTS points (batch $VM_BATCH, $VM_STREAMS streams)"
save vm-ingest "$("$TIDEMARK" bench ingest --target victoriametrics --vm-url "$VM_URL" --metric "$METRIC" \
  --points "$POINTS" "${DATA_ARGS[@]}" --points-per-message "$VM_BATCH" --streams "$VM_STREAMS" \
  --wait-queryable --output json)"
log "VictoriaMetrics: $QUERY_RUNS aggregation queries"
save vm-query "$("$TIDEMARK" bench query --target victoriametrics --vm-url "$VM_URL" --metric "$METRIC" \
  --start "$START_NS" --end "$END_NS" --requests "$QUERY_RUNS" --output json)"
# Flush the recent rows to disk. The parts are written in the background
# (about a second for 2M points), so wait until the folder size has not
# changed for 5 s, at most 60 s.
curl -sf "$VM_URL/internal/force_flush" >/dev/null
stable_size() {
  local dir=$1 last=-1 same=0 size
  for _ in $(seq 1 60); do
    size=$(du -sb "$dir" | cut -f1)
    if [[ $size == "$last" ]]; then same=$((same + 1)); else same=0; last=$size; fi
    if (( same >= 5 )); then break; fi
    sleep 1
  done
  echo "$last"
}
VM_DISK_BYTES=$(stable_size "$WORK/vm/data")
VM_RSS_KIB=$(peak_rss_kib "$VM_PID")

# --- Table -----------------------------------------------------------------

ratio() { # ratio A B: A/B with two decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'
}
number() { # number VALUE DECIMALS: the value rounded, or n/a
  awk -v v="$1" -v d="$2" 'BEGIN { if (v == "") print "n/a"; else printf "%.*f", d, v }'
}
row() { # row LABEL TIDEMARK VM DECIMALS
  printf '%-48s %16s %16s %10s\n' "$1" "$(number "$2" "$4")" "$(number "$3" "$4")" "$(ratio "$2" "$3")"
}

TM_POINTS=$(field tm-storage points)
TM_MEMORY=$(field tm-storage memory_bytes)
TM_DISK_PER_POINT=""
if [[ -n $TM_DISK_BYTES ]]; then TM_DISK_PER_POINT=$(awk -v a="$TM_DISK_BYTES" -v n="$TM_POINTS" 'BEGIN {print a / n}'); fi
TM_FLUSHED_PER_POINT=""
if [[ -n $TM_FLUSHED_BYTES ]]; then
  TM_FLUSHED_PER_POINT=$(awk -v a="$TM_FLUSHED_BYTES" -v n="$(field tm-storage-final points)" 'BEGIN {print a / n}')
fi
VM_DISK_PER_POINT=$(awk -v a="$VM_DISK_BYTES" -v n="$POINTS" 'BEGIN {print a / n}')

echo
# The Debian build prints no version itself, so ask the package manager.
VM_VERSION=$(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo "(version unknown)")
echo "tidemark ($ENGINE engine) vs VictoriaMetrics $VM_VERSION"
echo "$POINTS gauge points, $SERIES series, 10 s interval; $(nproc) cores; VictoriaMetrics import: batch $VM_BATCH, $VM_STREAMS streams"
echo
printf '%-48s %16s %16s %10s\n' measure tidemark victoriametrics tm/vm
row "ingest, columnar stream / JSON lines (points/s)" "$(field tm-ingest points_per_second)" "$(field vm-ingest points_per_second)" 0
row "ingest, one Point per point (points/s)" "$(field tm-ingest-points points_per_second)" "$(field vm-ingest points_per_second)" 0
row "ack latency p50, per request (ms)" "$(field tm-ingest-unary ack_latency_p50)" "$(field vm-ingest ack_latency_p50)" 2
row "ack latency p99, per request (ms)" "$(field tm-ingest-unary ack_latency_p99)" "$(field vm-ingest ack_latency_p99)" 2
row "time until queryable after last ack (s)" "$(field tm-ingest queryable_after_seconds)" "$(field vm-ingest queryable_after_seconds)" 3
row "mean+max per minute by group, median (ms)" "$(field tm-query aggregate_latency_p50)" "$(field vm-query aggregate_latency_p50)" 1
row "exact p99 over all points, median (ms)" "$(field tm-query statistics_latency_p50)" "" 1
row "bytes on disk per point, after flush" "$TM_FLUSHED_PER_POINT" "$VM_DISK_PER_POINT" 2
row "bytes on disk per point, just after load" "$TM_DISK_PER_POINT" "" 2
row "engine memory estimate per point (bytes)" "$(awk -v a="$TM_MEMORY" -v n="$TM_POINTS" 'BEGIN {print a / n}')" "" 2
row "peak RSS, VmHWM (MiB)" "$(awk -v k="$TM_RSS_KIB" 'BEGIN {print k / 1024}')" "$(awk -v k="$VM_RSS_KIB" 'BEGIN {print k / 1024}')" 0
echo
echo "Rates: higher is better. Latencies, bytes and memory: lower is better."
echo "The point-per-point row compares against the same VictoriaMetrics JSON-lines load."
echo "After flush: tidemark after a graceful stop (all $(field tm-storage-final points) points it stored),"
echo "VictoriaMetrics after /internal/force_flush. Just after load includes tidemark's WAL."
if [[ $ENGINE == memory ]]; then
  echo "tidemark ran the memory engine, so it wrote nothing to disk (n/a)."
fi
