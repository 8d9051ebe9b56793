#!/usr/bin/env bash
# Runs the fake GCS JSON API server (test/servers/gcs/, compiled to dist/) for the GCS tests.
#
#   test/servers/gcs.sh start    start in the background and wait until it accepts connections
#   test/servers/gcs.sh stop     stop it (its data lives in memory and goes with it)
#   test/servers/gcs.sh env      print the variables the tests read (eval "$(… env)")
#   test/servers/gcs.sh status   exit 0 when running
#
# Needs a build first (npm run build). State (pid, log) lives in
# ${MEDIAGIT_TEST_STATE:-/tmp/mediagit-test-services}/gcs/. The port is MEDIAGIT_TEST_GCS_PORT
# (default 4443). It listens on 127.0.0.1 only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${MEDIAGIT_TEST_STATE:-/tmp/mediagit-test-services}/gcs"
PORT="${MEDIAGIT_TEST_GCS_PORT:-4443}"
HOST=127.0.0.1
PID_FILE="$STATE/gcs.pid"
LOG_FILE="$STATE/gcs.log"
START_TIMEOUT_S="${MEDIAGIT_TEST_START_TIMEOUT:-30}"

NAME="fake GCS"
# shellcheck source=test/servers/background.sh
source "$ROOT/test/servers/background.sh"

listening() {
  grep -q '^fake-gcs listening on ' "$LOG_FILE" 2>/dev/null
}

start() {
  if running; then
    echo "fake GCS already running (pid $(cat "$PID_FILE")) on $HOST:$PORT"
    return 0
  fi
  local bin="$ROOT/dist/test/servers/gcs/server.js"
  if [[ ! -f "$bin" ]]; then
    echo "fake GCS server is not built: run 'npm run build' first ($bin missing)" >&2
    return 1
  fi
  if port_open; then
    echo "port $HOST:$PORT is already in use by another process; set MEDIAGIT_TEST_GCS_PORT" >&2
    return 1
  fi
  mkdir -p "$STATE"
  # Truncate now, not in the background job's redirection: the readiness check below must never
  # see the "listening" line of a previous run.
  : >"$LOG_FILE"
  local started
  started=$(now_ms)
  nohup node "$bin" --host "$HOST" --port "$PORT" >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"

  # The server prints its "listening" line only after listen() succeeded.
  wait_ready listening 0.05
  echo "fake GCS ready on http://$HOST:$PORT (pid $(cat "$PID_FILE"), $(($(now_ms) - started)) ms)"
}

stop() {
  stop_background
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) echo "export MEDIAGIT_TEST_GCS_ENDPOINT=http://$HOST:$PORT" ;;
  status)
    if running; then echo "fake GCS running (pid $(cat "$PID_FILE"))"; else echo "fake GCS not running"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|env|status" >&2
    exit 2
    ;;
esac
