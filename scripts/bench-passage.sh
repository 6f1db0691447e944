#!/usr/bin/env bash
# Starts a release server on a throwaway database, creates a Passage app that takes phone
# numbers, runs the passcode-login load (login → SMS → activate → refresh; each user signs up
# on its first pass), then the passkey-login load on the same server (start → the software
# authenticator signs → finish; each user registers a passkey first), measures RS256 signing
# on this machine, and stops the server. Usage:
#   scripts/bench-passage.sh [sqlite|postgres] [concurrency] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
concurrency=${2:-16}
seconds=${3:-10}
[ "${NODES:-1}" = 1 ] || { echo "bench-passage.sh drives one node; NODES is not supported" >&2; exit 2; }
source scripts/bench-server.sh "${1:-sqlite}"

app=$("$bin" app create --name Bench --auth-origin http://localhost:3000 --allowed-identifier both \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
start_server
"$bin" bench passage --base "http://127.0.0.1:$port" --app "$app" \
  --receiver "127.0.0.1:$receiver_port" --concurrency "$concurrency" --duration "$seconds"
"$bin" bench passkey --base "http://127.0.0.1:$port" --app "$app" --origin http://localhost:3000 \
  --concurrency "$concurrency" --duration "$seconds"
"$bin" bench rsa --seconds 3
