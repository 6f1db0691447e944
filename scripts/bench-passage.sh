#!/usr/bin/env bash
# Starts a release server on a throwaway SQLite database, creates a Passage app that takes
# phone numbers, runs the passcode-login load (login → SMS → activate → refresh; each user signs up on its first pass), and stops
# the server. Usage: scripts/bench-passage.sh [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${1:-16}
seconds=${2:-10}
port=${KEYHAVEN_BENCH_PORT:-18080}
receiver_port=${KEYHAVEN_BENCH_RECEIVER_PORT:-19099}
bin=${KEYHAVEN_BENCH_BIN:-target/release/keyhaven}
[ -n "${KEYHAVEN_BENCH_BIN:-}" ] || cargo build --release --quiet
data=$(mktemp -d)
export KEYHAVEN_DATABASE_URL="sqlite://$data/keyhaven.db" KEYHAVEN_DATA_DIR="$data" \
  KEYHAVEN_LISTEN="127.0.0.1:$port" KEYHAVEN_SMS_PROVIDER=webhook \
  KEYHAVEN_SMS_WEBHOOK_URL="http://127.0.0.1:$receiver_port/" \
  KEYHAVEN_RATE_LIMIT_CALLS=100000000 KEYHAVEN_DELIVERY_LIMIT_PER_RECIPIENT=0 RUST_LOG=${RUST_LOG:-warn}
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
app=$("$bin" app create --name Bench --auth-origin http://localhost:3000 --allowed-identifier both \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
"$bin" serve & server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
"$bin" bench passage --base "http://127.0.0.1:$port" --app "$app" \
  --receiver "127.0.0.1:$receiver_port" --concurrency "$concurrency" --duration "$seconds"
"$bin" bench rsa --seconds 3
