#!/usr/bin/env bash
# Starts a release server on a throwaway database, creates an account, runs the tyntec
# send → capture → check load, and stops the server. Usage:
#   scripts/bench-tyntec.sh [sqlite|postgres] [concurrency] [seconds]
# For postgres, KEYHAVEN_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres)
# names a server where a fresh database is created and dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
concurrency=${2:-16}
seconds=${3:-10}
port=${KEYHAVEN_BENCH_PORT:-18080}
receiver_port=${KEYHAVEN_BENCH_RECEIVER_PORT:-19099}

# KEYHAVEN_BENCH_BIN compares another build (e.g. a copy of an earlier release binary).
bin=${KEYHAVEN_BENCH_BIN:-target/release/keyhaven}
[ -n "${KEYHAVEN_BENCH_BIN:-}" ] || cargo build --release --quiet
data=$(mktemp -d)
db_name=""
case "$backend" in
  sqlite) export KEYHAVEN_DATABASE_URL="sqlite://$data/keyhaven.db" ;;
  postgres)
    admin=${KEYHAVEN_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
    db_name="kh_bench_$$"
    psql "$admin" -qc "create database $db_name"
    export KEYHAVEN_DATABASE_URL="${admin%/*}/$db_name" ;;
  *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac
export KEYHAVEN_DATA_DIR="$data" KEYHAVEN_LISTEN="127.0.0.1:$port" \
  KEYHAVEN_SMS_PROVIDER=webhook KEYHAVEN_SMS_WEBHOOK_URL="http://127.0.0.1:$receiver_port/" \
  KEYHAVEN_RATE_LIMIT_CALLS=100000000 KEYHAVEN_DELIVERY_LIMIT_PER_RECIPIENT=0 \
  RUST_LOG=${RUST_LOG:-warn}

cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  [ -n "$db_name" ] && psql "$admin" -qc "drop database if exists $db_name with (force)" || true
  rm -rf "$data"
}
trap cleanup EXIT

key=$("$bin" account create --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
"$bin" serve & server=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
"$bin" bench tyntec --base "http://127.0.0.1:$port" --key="$key" \
  --receiver "127.0.0.1:$receiver_port" --concurrency "$concurrency" --duration "$seconds"
echo "server RSS after load: $(ps -o rss= -p "$server" | awk '{printf "%.1f MiB", $1/1024}')"
