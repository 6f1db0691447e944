#!/usr/bin/env bash
# The hosted login page in headless Chromium (Debian's chromium) with a virtual passkey
# authenticator, against a live Keyhaven on a free loopback port with a fresh data folder.
# Screenshots land in target/browser-artifacts/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

timeout 1800 cargo build --quiet --manifest-path "$root/Cargo.toml" --bin keyhaven
bin="${CARGO_TARGET_DIR:-$root/target}/debug/keyhaven"
(cd "$here" && timeout 600 npm ci --no-audit --no-fund --silent)

work="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Browsers take passkeys on localhost (a secure context), not on an IP address.
export BASE="http://localhost:$port"
export KEYHAVEN_LISTEN="127.0.0.1:$port" KEYHAVEN_PUBLIC_URL="$BASE" KEYHAVEN_DATA_DIR="$work/data"
export KEYHAVEN_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
mkdir -p "$KEYHAVEN_DATA_DIR"

# An app on the server's own origin, and one more that speaks German.
new_app() {
  timeout 60 "$bin" app create --name "$1" --auth-origin "$BASE" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["app_id"])'
}
APP_ID="$(new_app "Browser Shop")"
APP_ID_DE="$(new_app "Browser Laden")"
# The app's own page is the login page here, so the flow ends where it can be checked.
timeout 60 "$bin" app update "$APP_ID" "{\"redirect_url\": \"/login/$APP_ID\"}" >/dev/null
timeout 60 "$bin" app update "$APP_ID_DE" '{"default_language": "de"}' >/dev/null
export APP_ID APP_ID_DE OUTBOX="$KEYHAVEN_DATA_DIR/outbox.log"
export ARTIFACTS="${CARGO_TARGET_DIR:-$root/target}/browser-artifacts"

"$bin" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 150); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done

if ! (cd "$here" && timeout 120 node login.test.mjs); then
  tail -n 40 "$work/server.log" >&2
  exit 1
fi
