#!/usr/bin/env bash
# Starts a release server on a throwaway database, creates an account, and runs the tyntec
# send → capture → check load against it; in the same sitting runs the same load against
# `keyhaven bench reference` (the smallest durable OTP server: one group-committed SQLite
# transaction per request), and prints Keyhaven's throughput as a fraction of the reference's.
# With RUNS=N (default 1) the loads interleave (keyhaven, reference, keyhaven, ...) and medians
# are printed. With NODES=2 (or more; postgres only) Keyhaven runs as that many servers on one
# database and each user sends through one and checks through the next; the reference stays
# one server.
# Every server is stopped on exit. Usage:
#   [RUNS=N] [NODES=N] scripts/bench-tyntec.sh [sqlite|postgres] [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${2:-16}
seconds=${3:-10}
runs=${RUNS:-1}
reference_port=${KEYHAVEN_BENCH_REFERENCE_PORT:-18090}
unset KEYHAVEN_BENCH_REFERENCE_PORT
source scripts/bench-server.sh "${1:-sqlite}"

stop_reference() {
  [ -n "${reference:-}" ] && kill "$reference" 2>/dev/null && wait "$reference" 2>/dev/null || true
}
trap 'stop_reference; cleanup' EXIT

key=$("$bin" account create --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
start_server
# Its own database in the throwaway folder; --seconds bounds it even if this script is killed.
"$bin" bench reference --listen "127.0.0.1:$reference_port" --key "$key" \
  --webhook "http://127.0.0.1:$receiver_port/" --database "$data/reference.db" \
  --seconds $(( runs * 2 * (seconds + 60) + 60 )) & reference=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$reference_port/" && break; sleep 0.05; done

load() { # $1: name, $2: run number, then the --base arguments
  local name=$1 run=$2
  shift 2
  "$bin" bench tyntec "$@" --key="$key" --json \
    --receiver "127.0.0.1:$receiver_port" --concurrency "$concurrency" --duration "$seconds" \
    > "$data/$name-$run.json"
  python3 - "$data/$name-$run.json" "$name run $run" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
rt = next(s for s in r["steps"] if s["name"] == "round_trip")
steps = ", ".join(f'{s["name"]} p99 {s["p99_ms"]} ms' for s in r["steps"] if s["name"] != "round_trip")
errors = sum(s["errors"] for s in r["steps"])
print(f'{sys.argv[2]}: {r["throughput_per_sec"]:,.0f} flows/s, round trip p50 {rt["p50_ms"]} ms '
      f'p99 {rt["p99_ms"]} ms ({steps}), {errors} errors', *(f'note: {n}' for n in r["notes"]), sep="\n  ")
EOF
}
for run in $(seq "$runs"); do
  load keyhaven "$run" "${bases[@]}"
  load reference "$run" --base "http://127.0.0.1:$reference_port"
done
rss() { ps -o rss= -p "$1" | awk '{printf "%.1f MiB", $1/1024}'; }
keyhaven_rss=$(for pid in "${servers[@]}"; do rss "$pid"; echo; done | paste -sd+ | sed 's/+/ + /g')
echo "server RSS after load: keyhaven $keyhaven_rss, reference $(rss "$reference")"
echo "keyhaven ran on $nodes node(s) sharing one $backend database; the reference on one"

python3 - "$data" "$runs" <<'EOF'
import json, statistics, sys
data, runs = sys.argv[1], int(sys.argv[2])
def median(name, pick):
    return statistics.median(pick(json.load(open(f"{data}/{name}-{i}.json"))) for i in range(1, runs + 1))
flows = lambda r: r["throughput_per_sec"]
p99 = lambda r: next(s["p99_ms"] for s in r["steps"] if s["name"] == "round_trip") or 0.0
kh, ref = median("keyhaven", flows), median("reference", flows)
label = "median of %d runs, " % runs if runs > 1 else ""
print(f"round-trip p99 ({label}ms): keyhaven {median('keyhaven', p99):.2f}, reference {median('reference', p99):.2f}")
print(f"keyhaven/reference: {kh / ref if ref else float('nan'):.2f} "
      f"({label}keyhaven {kh:,.0f} flows/s, reference {ref:,.0f} flows/s)")
EOF
