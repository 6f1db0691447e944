#!/usr/bin/env bash
# The official Passage backend SDKs (Python passage-identity, Node passage-node) against a
# live Keyhaven on a free loopback port with a fresh data folder. See README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

timeout 1800 cargo build --quiet --manifest-path "$root/Cargo.toml" --bin keyhaven
bin="${CARGO_TARGET_DIR:-$root/target}/debug/keyhaven"

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export KEYHAVEN_LISTEN="127.0.0.1:$port"
export KEYHAVEN_PUBLIC_URL="http://127.0.0.1:$port"
export KEYHAVEN_DATA_DIR="$work/data"
export KEYHAVEN_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
mkdir -p "$KEYHAVEN_DATA_DIR"

app_create() { # NAME → prints "APP_ID API_KEY"
  timeout 60 "$bin" app create --name "$1" --auth-origin http://localhost:3000 \
    | python3 -c 'import json, sys; a = json.load(sys.stdin); print(a["app_id"], a["api_key"])'
}
app="$(app_create sdk-app)"
other="$(app_create sdk-other-app)"
read -r APP_ID API_KEY <<<"$app"
read -r OTHER_APP_ID OTHER_API_KEY <<<"$other"
export APP_ID API_KEY OTHER_APP_ID OTHER_API_KEY
export BASE="$KEYHAVEN_PUBLIC_URL" DATA_DIR="$KEYHAVEN_DATA_DIR"

"$bin" serve >"$work/server.log" 2>&1 &
server=$!
if ! python3 - "$BASE/healthz" <<'PY'
import sys, time, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200:
            sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit("keyhaven did not answer /healthz within 30 s")
PY
then
  tail -n 50 "$work/server.log" >&2
  exit 1
fi

status=0

venv="$here/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/python/requirements.txt"
(cd "$here/python" && PYTHONDONTWRITEBYTECODE=1 timeout 300 "$venv/bin/python" -m pytest -p no:cacheprovider -v) || status=1

(cd "$here/node" && timeout 600 npm ci --no-audit --no-fund --loglevel=error && timeout 300 node --test) || status=1

if [ "$status" -ne 0 ]; then
  echo "--- keyhaven server log (last 50 lines) ---" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
