# shellcheck shell=bash
# Sourced by the bench scripts: builds the release binary (unless KEYHAVEN_BENCH_BIN names
# another build), prepares a throwaway database ($1: sqlite or postgres), sets the server's
# environment (webhook provider pointing at the load generator's receiver, throttles raised)
# and defines start_server, which starts it and waits for /healthz. Everything is removed on
# exit. For postgres, KEYHAVEN_BENCH_POSTGRES_URL (default
# postgres://postgres@127.0.0.1:5432/postgres) names a server where a fresh database is
# created and dropped. NODES=N (default 1, postgres only) starts N servers on one database,
# on ports $port, $port+1, ...; start_server then sets `bases` to their --base arguments.
backend=${1:-sqlite}
nodes=${NODES:-1}
case "$nodes" in
  [1-9]) ;;
  *) echo "NODES must be a number from 1 to 9, got '$nodes'" >&2; exit 2 ;;
esac
if [ "$nodes" -gt 1 ] && [ "$backend" != postgres ]; then
  # Several nodes on one database are supported on PostgreSQL only (README).
  echo "NODES=$nodes needs the postgres backend: several nodes share only a PostgreSQL database" >&2
  exit 2
fi
port=${KEYHAVEN_BENCH_PORT:-18080}
receiver_port=${KEYHAVEN_BENCH_RECEIVER_PORT:-19099}
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
  KEYHAVEN_DELIVERY_LIMIT_PER_RECIPIENT_GLOBAL=0 KEYHAVEN_DELIVERY_LIMIT_PER_TENANT=0 \
  KEYHAVEN_DELIVERY_LIMIT_PER_PREFIX=0 \
  RUST_LOG=${RUST_LOG:-warn}
unset KEYHAVEN_BENCH_BIN KEYHAVEN_BENCH_PORT KEYHAVEN_BENCH_RECEIVER_PORT KEYHAVEN_BENCH_POSTGRES_URL

servers=()
cleanup() {
  for pid in ${servers[@]+"${servers[@]}"}; do
    kill "$pid" 2>/dev/null || continue
    wait "$pid" 2>/dev/null || true
  done
  [ -n "$db_name" ] && psql "$admin" -qc "drop database if exists $db_name with (force)" || true
  rm -rf "$data"
}
trap cleanup EXIT

# One node after another, so only the first runs the migrations.
start_server() {
  bases=()
  local node_port
  for node_port in $(seq "$port" $((port + nodes - 1))); do
    KEYHAVEN_LISTEN="127.0.0.1:$node_port" "$bin" serve & servers+=($!)
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$node_port/healthz" >/dev/null && break; sleep 0.05; done
    curl -fs "http://127.0.0.1:$node_port/healthz" >/dev/null \
      || { echo "the server on port $node_port did not become healthy" >&2; exit 1; }
    bases+=(--base "http://127.0.0.1:$node_port")
  done
}
