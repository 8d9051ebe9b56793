#!/usr/bin/env bash
# A throwaway Ceph radosgw for the S3 backend's integration tests: one monitor, one OSD on the
# in-memory memstore, auth off, radosgw (beast) — every socket on 127.0.0.1.
#
#   test/servers/radosgw.sh start   build the cluster in a temp folder and wait until S3 answers
#   test/servers/radosgw.sh stop    kill the daemons by PID and delete the temp folder
#   test/servers/radosgw.sh env     print the MEDIAGIT_TEST_S3_* exports for the tests
#   test/servers/radosgw.sh status  say whether it is running
#
# Installs nothing. On Debian 12 the binaries come from:
#   apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl
#
# Settings (environment):
#   MEDIAGIT_TEST_STATE        state root (default /tmp/mediagit-test-services); ours is <root>/radosgw/
#   MEDIAGIT_RADOSGW_PORT      S3 port (default 7480)
#   MEDIAGIT_RADOSGW_MON_PORT  monitor msgr2 port (default 3300); msgr1 uses MEDIAGIT_RADOSGW_MON_V1_PORT (6789)
#   MEDIAGIT_RADOSGW_MEMSTORE_BYTES  OSD capacity held in RAM (default 4 GiB; only what is stored is used)
#   MEDIAGIT_RADOSGW_TIMEOUT   seconds to wait for each step (default 60)
set -euo pipefail

STATE_ROOT="${MEDIAGIT_TEST_STATE:-/tmp/mediagit-test-services}"
STATE="$STATE_ROOT/radosgw"
PORT="${MEDIAGIT_RADOSGW_PORT:-7480}"
MON_PORT="${MEDIAGIT_RADOSGW_MON_PORT:-3300}"
MON_V1_PORT="${MEDIAGIT_RADOSGW_MON_V1_PORT:-6789}"
MEMSTORE_BYTES="${MEDIAGIT_RADOSGW_MEMSTORE_BYTES:-4294967296}"
TIMEOUT="${MEDIAGIT_RADOSGW_TIMEOUT:-60}"
HOST=127.0.0.1

# Fixed on purpose: the server exists only for tests and listens on loopback only.
ACCESS_KEY=MEDIAGITTESTACCESSKEY
SECRET_KEY=mediagit-test-secret-key-0123456789abcdef
REGION=us-east-1
RGW_NAME=client.rgw.mediagit

log() { printf 'radosgw.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

now_ms() { date +%s%3N; }

require_binaries() {
  local missing=()
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool uuidgen curl setsid timeout; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  if ((${#missing[@]} > 0)); then
    log "missing programs: ${missing[*]}"
    log "install them (Debian/Ubuntu) with:"
    log "  apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd ceph-common uuid-runtime curl"
    exit 127
  fi
}

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

endpoint() { printf 'http://%s:%s' "$HOST" "$PORT"; }

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null || true; }

is_running() {
  [[ -f "$STATE/pids" ]] || return 1
  local name pid
  while read -r name pid; do
    pid_alive "$pid" || return 1
  done <"$STATE/pids"
  return 0
}

# Polls a command until it succeeds; gives up after $TIMEOUT seconds with the daemon logs' tails.
wait_for() {
  local what="$1"; shift
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      return 1
    fi
    check_daemons_alive || return 1
    sleep 0.05
  done
}

check_daemons_alive() {
  [[ -f "$STATE/pids" ]] || return 0
  local name pid
  while read -r name pid; do
    if ! pid_alive "$pid"; then log "$name (pid $pid) exited during start-up"; return 1; fi
  done <"$STATE/pids"
}

dump_logs() {
  local dir; dir="$(cat "$STATE/datadir" 2>/dev/null || true)"
  [[ -n "$dir" && -d "$dir/log" ]] || return 0
  for f in "$dir"/log/*; do
    [[ -s "$f" ]] || continue
    log "---- tail of $f"
    tail -n 20 "$f" >&2 || true
  done
}

# Starts a daemon in its own session so a Ctrl-C in the caller's terminal does not reach it;
# setsid execs (the background job is not a group leader), so $! is the daemon's own PID.
spawn() {
  local name="$1"; shift
  setsid "$@" >"$DATA/log/$name.out" 2>&1 </dev/null &
  printf '%s %s\n' "$name" "$!" >>"$STATE/pids"
}

osd_up() { [[ "$(ceph osd stat 2>/dev/null)" == *"1 up"* ]]; }

rgw_ready() { [[ "$(http_code "$(endpoint)/")" == 200 ]]; }

port_free() {
  ! (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

cmd_start() {
  require_binaries
  if is_running; then
    log "already running at $(cat "$STATE/endpoint")"
    return 0
  fi
  [[ -e "$STATE" ]] && cmd_stop >/dev/null 2>&1 || true
  for p in "$PORT" "$MON_PORT" "$MON_V1_PORT"; do
    port_free "$p" || die "port $p on $HOST is already in use (set MEDIAGIT_RADOSGW_PORT / MEDIAGIT_RADOSGW_MON_PORT / MEDIAGIT_RADOSGW_MON_V1_PORT)"
  done

  local t0; t0=$(now_ms)
  mkdir -p "$STATE"
  # A half-built cluster is useless and would hold the ports: on any failure (or Ctrl-C), show the
  # daemons' logs and tear everything down.
  trap 'start_failed' EXIT
  DATA="$(mktemp -d "${TMPDIR:-/tmp}/mediagit-radosgw.XXXXXX")"
  echo "$DATA" >"$STATE/datadir"
  : >"$STATE/pids"
  mkdir -p "$DATA"/{mon/a,osd/0,run,log,crash,rgw}
  # ceph-mon shuts itself down when its data folder's file system has less than
  # mon_data_avail_crit (5 %) free, which otherwise shows up only as a start-up timeout.
  local free_pct
  free_pct=$(df -P "$DATA" | awk 'NR == 2 { gsub("%", "", $5); print 100 - $5 }')
  if [[ -n "$free_pct" && "$free_pct" -le 5 ]]; then
    die "only ${free_pct} % of the disk under $DATA is free; ceph-mon needs more than 5 % (free some space or set TMPDIR)"
  fi
  local fsid; fsid="$(uuidgen)"

  cat >"$DATA/ceph.conf" <<EOF
[global]
fsid = $fsid
mon_host = [v2:$HOST:$MON_PORT,v1:$HOST:$MON_V1_PORT]
public_addr = $HOST
cluster_addr = $HOST
public_network = $HOST/32
ms_bind_ipv6 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
keyring = $DATA/keyring
run_dir = $DATA/run
log_file = $DATA/log/\$name.log
crash_dir = $DATA/crash
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
# Without these the pools radosgw creates take ~12 s instead of ~1 s to be committed.
paxos_propose_interval = 0.05
paxos_min_wait = 0.01

[mon]
mon_data = $DATA/mon/\$id
admin_socket = $DATA/run/mon.\$id.asok

[osd]
osd_data = $DATA/osd/\$id
admin_socket = $DATA/run/osd.\$id.asok
osd_objectstore = memstore
memstore_device_bytes = $MEMSTORE_BYTES

[$RGW_NAME]
admin_socket = $DATA/run/rgw.asok
rgw_data = $DATA/rgw
# tcp_nodelay: without it every GET and LIST answer waits ~40 ms for a delayed ACK (Nagle).
rgw_frontends = beast endpoint=$HOST:$PORT tcp_nodelay=1
# radosgw asks the monitor for "secure" mode by default, which auth none cannot give: it would hang.
ms_mon_client_mode = crc secure
EOF
  export CEPH_CONF="$DATA/ceph.conf"

  # --mkfs wants a keyring even with auth off.
  ceph-authtool --create-keyring "$DATA/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DATA/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:$HOST:$MON_PORT,v1:$HOST:$MON_V1_PORT]" "$DATA/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DATA/monmap" --keyring "$DATA/keyring" >"$DATA/log/mon-mkfs.out" 2>&1 \
    || { cat "$DATA/log/mon-mkfs.out" >&2; die "ceph-mon --mkfs failed"; }
  spawn mon ceph-mon -f -i a

  local osd_uuid osd_id
  osd_uuid="$(uuidgen)"
  osd_id="$(timeout "$TIMEOUT" ceph osd new "$osd_uuid" 2>"$DATA/log/osd-new.out")" \
    || die "'ceph osd new' failed (monitor not reachable?)"
  [[ "$osd_id" == 0 ]] || die "unexpected OSD id '$osd_id'"
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$DATA/log/osd-mkfs.out" 2>&1 \
    || { cat "$DATA/log/osd-mkfs.out" >&2; die "ceph-osd --mkfs failed"; }
  spawn osd ceph-osd -f -i 0
  wait_for "the OSD to come up" osd_up || die "OSD did not come up"

  # Also creates the zone, zonegroup and the pools radosgw needs.
  timeout "$TIMEOUT" radosgw-admin user create --uid=mediagit-test --display-name="mediagit tests" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DATA/log/user-create.out" 2>&1 \
    || { cat "$DATA/log/user-create.out" >&2; die "radosgw-admin user create failed"; }

  spawn rgw radosgw -n "$RGW_NAME" -f
  wait_for "radosgw to answer on $(endpoint)/" rgw_ready || die "radosgw did not start"

  endpoint >"$STATE/endpoint"
  trap - EXIT
  local t1; t1=$(now_ms)
  log "ready at $(endpoint) in $(( t1 - t0 )) ms (data in $DATA, state in $STATE)"
}

start_failed() {
  local rc=$?
  trap - EXIT
  log "start failed (exit $rc); logs follow, then cleanup"
  dump_logs
  cmd_stop >/dev/null 2>&1 || true
  exit "$rc"
}

cmd_stop() {
  if [[ ! -d "$STATE" ]]; then
    log "not running"
    return 0
  fi
  local name pid pids=()
  if [[ -f "$STATE/pids" ]]; then
    while read -r name pid; do pids+=("$pid"); done <"$STATE/pids"
  fi
  # radosgw first, then the OSD, then the monitor: each depends on the next.
  local i
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    pid_alive "${pids[i]}" && kill -TERM "${pids[i]}" 2>/dev/null || true
  done
  local deadline=$(( $(date +%s) + 10 ))
  for pid in "${pids[@]}"; do
    while pid_alive "$pid" && (( $(date +%s) < deadline )); do sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  done
  local dir; dir="$(cat "$STATE/datadir" 2>/dev/null || true)"
  # Only ever remove a folder this script made.
  if [[ -n "$dir" && "$(basename "$dir")" == mediagit-radosgw.* && -d "$dir" ]]; then rm -rf -- "$dir"; fi
  rm -rf -- "$STATE"
  log "stopped"
}

cmd_env() {
  local ep
  if [[ -f "$STATE/endpoint" ]]; then ep="$(cat "$STATE/endpoint")"; else ep="$(endpoint)"; fi
  printf 'export MEDIAGIT_TEST_S3_ENDPOINT=%s MEDIAGIT_TEST_S3_ACCESS_KEY=%s MEDIAGIT_TEST_S3_SECRET_KEY=%s MEDIAGIT_TEST_S3_REGION=%s\n' \
    "$ep" "$ACCESS_KEY" "$SECRET_KEY" "$REGION"
}

cmd_status() {
  if is_running; then
    echo "running at $(cat "$STATE/endpoint" 2>/dev/null || endpoint)"
    local name pid
    while read -r name pid; do
      printf '  %-4s pid %-7s rss %s KiB\n' "$name" "$pid" "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo '?')"
    done <"$STATE/pids"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|env|status" >&2; exit 2 ;;
esac
