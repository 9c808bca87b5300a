#!/usr/bin/env bash
# Starts the example SCIM backend and Caddy with ./Caddyfile; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."

export SCIM_BACKEND_ADDR=${SCIM_BACKEND_ADDR:-127.0.0.1:9000}
export SCIM_BACKEND_TOKEN=${SCIM_BACKEND_TOKEN:-secret}
export SCIM_SHADOW_DB=${SCIM_SHADOW_DB:-./scim-shadow-demo.db}

go build -o ./.scim-backend ./examples/cmd/scim-backend
./.scim-backend &
backend=$!
./caddy run --config Caddyfile --adapter caddyfile &
caddy=$!
trap 'kill $backend $caddy 2>/dev/null; wait 2>/dev/null; exit 0' INT TERM EXIT

cat <<TEXT

  scim-shadow demo
    SCIM endpoint (through Caddy):  http://localhost:8080/scim/v2   (Authorization: Bearer $SCIM_BACKEND_TOKEN)
    example backend (direct):       http://$SCIM_BACKEND_ADDR/scim/v2
    review API (route):             http://localhost:8080/scim-shadow/connections
    review API (admin endpoint):    http://localhost:2019/scim_shadow/connections
    store:                          $SCIM_SHADOW_DB
  Ctrl-C stops both.

TEXT
wait -n $backend $caddy
