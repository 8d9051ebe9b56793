# Shared by the scripts that run a Node test server in the background (azurite.sh, gcs.sh).
# Sourced, not run. The caller sets NAME (for messages), HOST, PORT, PID_FILE, LOG_FILE and
# START_TIMEOUT_S before using these.

running() {
  [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

now_ms() {
  echo $(($(date +%s%N) / 1000000))
}

# wait_ready CHECK POLL_SECONDS: polls CHECK (a function or command) until it succeeds. Fails,
# printing the server's log, if the server exits first or START_TIMEOUT_S passes (then stops it).
wait_ready() {
  local check="$1" poll="$2"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until "$check"; do
    if ! running; then
      echo "$NAME exited during startup; log follows" >&2
      cat "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      echo "$NAME did not start on $HOST:$PORT within ${START_TIMEOUT_S}s; log follows" >&2
      cat "$LOG_FILE" >&2
      stop_background
      return 1
    fi
    sleep "$poll"
  done
}

# Stops the server in PID_FILE: SIGTERM, up to 5 s of grace, then SIGKILL.
stop_background() {
  if [[ -f "$PID_FILE" ]]; then
    local pid
    pid=$(cat "$PID_FILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then
        echo "$NAME (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    rm -f "$PID_FILE"
    echo "$NAME stopped"
  else
    echo "$NAME not running"
  fi
}
