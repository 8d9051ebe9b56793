#!/usr/bin/env bash
# Runs Azurite's blob service (from node_modules, offline) for the Azure integration tests.
#
#   test/servers/azurite.sh start   start in the background and wait until it accepts connections
#   test/servers/azurite.sh stop    stop it and delete its data
#   test/servers/azurite.sh env     print the variables the tests read (eval "$(… env)")
#   test/servers/azurite.sh status  exit 0 when running
#
# State (pid, log, data) lives in ${MEDIAGIT_TEST_STATE:-/tmp/mediagit-test-services}/azurite/.
# The port is MEDIAGIT_TEST_AZURITE_PORT (default 10000). It listens on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MEDIAGIT_TEST_STATE:-/tmp/mediagit-test-services}/azurite"
PORT="${MEDIAGIT_TEST_AZURITE_PORT:-10000}"
HOST=127.0.0.1
PID_FILE="$STATE/azurite.pid"
LOG_FILE="$STATE/azurite.log"
DATA_DIR="$STATE/data"
# Azurite's published development account; it is not a secret and only works against Azurite.
ACCOUNT=devstoreaccount1
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
START_TIMEOUT_S="${MEDIAGIT_TEST_START_TIMEOUT:-30}"

NAME="azurite"
# shellcheck source=test/servers/background.sh
source "$ROOT/test/servers/background.sh"

start() {
  if running; then
    echo "azurite already running (pid $(cat "$PID_FILE")) on $HOST:$PORT"
    return 0
  fi
  local bin="$ROOT/node_modules/azurite/dist/src/blob/main.js"
  if [[ ! -f "$bin" ]]; then
    echo "azurite is not installed: run 'npm ci' first ($bin missing)" >&2
    return 1
  fi
  if port_open; then
    echo "port $HOST:$PORT is already in use by another process; set MEDIAGIT_TEST_AZURITE_PORT" >&2
    return 1
  fi
  # A fresh data folder per start: tests create unique containers, but stale state from a crashed
  # run should never leak into the next one.
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  : >"$LOG_FILE"
  local started
  started=$(now_ms)
  # --disableTelemetry: Azurite otherwise reports usage over the network.
  # --skipApiVersionCheck: the SDK may be newer than the Azurite release.
  # --loose: ignore headers Azurite does not implement instead of failing the request.
  # azurite-keepalive.cjs: idle connections stay open 120 s, not 5 s (see that file).
  nohup node --require "$ROOT/test/servers/azurite-keepalive.cjs" "$bin" \
    --blobHost "$HOST" --blobPort "$PORT" \
    --location "$DATA_DIR" \
    --silent --skipApiVersionCheck --loose --disableTelemetry \
    >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"

  wait_ready port_open 0.1
  echo "azurite ready on http://$HOST:$PORT/$ACCOUNT (pid $(cat "$PID_FILE"), $(($(now_ms) - started)) ms)"
}

stop() {
  stop_background
  rm -rf "$DATA_DIR"
}

print_env() {
  echo "export MEDIAGIT_TEST_AZURE_ENDPOINT=http://$HOST:$PORT/$ACCOUNT MEDIAGIT_TEST_AZURE_ACCOUNT=$ACCOUNT MEDIAGIT_TEST_AZURE_KEY=$KEY"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  status)
    if running; then echo "azurite running (pid $(cat "$PID_FILE"))"; else echo "azurite not running"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
