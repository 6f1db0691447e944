#!/usr/bin/env bash
# Starts a release server on a throwaway database, creates an account, runs the tyntec
# send → capture → check load, and stops the server. Usage:
#   scripts/bench-tyntec.sh [sqlite|postgres] [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${2:-16}
seconds=${3:-10}
source scripts/bench-server.sh "${1:-sqlite}"

key=$("$bin" account create --name bench | python3 -c 'import json,sys; print(json.load(sys.stdin)["apiKey"])')
start_server
"$bin" bench tyntec --base "http://127.0.0.1:$port" --key="$key" \
  --receiver "127.0.0.1:$receiver_port" --concurrency "$concurrency" --duration "$seconds"
echo "server RSS after load: $(ps -o rss= -p "$server" | awk '{printf "%.1f MiB", $1/1024}')"
