#!/usr/bin/env bash
# The end of `make demo`: the API (gunicorn) in the background, the dashboard in the foreground.
#
#   scripts/demo.sh [DATA_ROOT]        (the Makefile passes the data root and PY)
#
# Environment:
#   PY                 the Python of the virtualenv            .venv/bin/python
#   API_HOST, API_PORT where the API listens (api/gunicorn.conf.py reads them too)   127.0.0.1, 8000
#   API_START_TIMEOUT  seconds to wait for the API's /health   90
#   DASHBOARD_HOST, DASHBOARD_PORT  where the dashboard listens  127.0.0.1, 8501
#   ARTIFACTS_DIR      the run store (the API's log goes there: api.log)   artifacts
#
# Ctrl-C (or SIGTERM to this script) stops both. When the API's port is taken by something else or
# the API fails to start, it says so and starts the dashboard anyway: its Deployed page explains.
set -u

cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA_ROOT=${1:-${SEGAPI_DATA_ROOT:-}}
API_HOST=${API_HOST:-127.0.0.1}
API_PORT=${API_PORT:-8000}
API_START_TIMEOUT=${API_START_TIMEOUT:-90}
DASHBOARD_HOST=${DASHBOARD_HOST:-127.0.0.1}
DASHBOARD_PORT=${DASHBOARD_PORT:-8501}
LOG_DIR=${ARTIFACTS_DIR:-artifacts}
API_LOG="$LOG_DIR/api.log"

# A client reaches a wildcard bind on loopback.
case "$API_HOST" in 0.0.0.0|::|"[::]") API_CLIENT_HOST=127.0.0.1 ;; *) API_CLIENT_HOST=$API_HOST ;; esac
case "$API_CLIENT_HOST" in *:*) API_CLIENT_HOST="[${API_CLIENT_HOST#[}"; API_CLIENT_HOST="${API_CLIENT_HOST%]}]" ;; esac
API_URL="http://$API_CLIENT_HOST:$API_PORT"
DASHBOARD_URL="http://$DASHBOARD_HOST:$DASHBOARD_PORT"

API_PID=""
DASHBOARD_PID=""
API_STATE="not started"

say() { printf '%s\n' "$*"; }

stop_group() {  # stop_group PID NAME: SIGTERM to the process group, SIGKILL after 15 s
  local pid=$1 name=$2
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  say "demo: $name did not stop in 15 s; killing it"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
}

cleanup() {
  trap - EXIT INT TERM
  [ -n "$DASHBOARD_PID" ] && stop_group "$DASHBOARD_PID" "the dashboard"
  if [ -n "$API_PID" ]; then
    stop_group "$API_PID" "the API"
    say "demo: stopped the API and the dashboard"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_state HOST PORT URL: "free", "api" (a segmentation API answers /health) or "taken"
port_state() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import json, socket, sys, urllib.request
host, port, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    socket.create_connection((host.strip("[]"), port), timeout=1).close()
except OSError:
    print("free"); sys.exit()
try:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
        print("api" if "model_loaded" in json.load(answer) else "taken")
except Exception:
    print("taken")
EOF
}

# wait_for URL PID SECONDS: 0 when URL answers 200, 1 when PID died, 2 at the deadline
wait_for() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import os, sys, time, urllib.request
url, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit(2)
EOF
}

# ---------------------------------------------------------------------------- the API
case "$(port_state "$API_CLIENT_HOST" "$API_PORT" "$API_URL")" in
  api)
    API_STATE="already running (not started by this demo, not stopped by it)"
    say "demo: a segmentation API already answers at $API_URL: the dashboard uses it" ;;
  taken)
    API_STATE="NOT RUNNING: port $API_PORT is taken by something else"
    say "demo: port $API_PORT on $API_HOST is taken by another program: the API is not started."
    say "demo: free the port, or choose another: make demo API_PORT=8001" ;;
  *)
    mkdir -p "$LOG_DIR"
    say "demo: starting the API on $API_URL (log: $API_LOG) ..."
    started=$(date +%s)
    # Its own session and process group (setsid), so that stopping it stops every worker.
    SEGAPI_DATA_ROOT="$DATA_ROOT" API_HOST="$API_HOST" API_PORT="$API_PORT" \
      setsid "$PY" -m gunicorn -c api/gunicorn.conf.py "api:create_app()" >"$API_LOG" 2>&1 </dev/null &
    API_PID=$!
    wait_for "$API_URL/health" "$API_PID" "$API_START_TIMEOUT"
    case $? in
      0) API_STATE="running"
         say "demo: the API answers (after $(( $(date +%s) - started )) s)" ;;
      1) API_STATE="FAILED to start (see $API_LOG)"
         kill -KILL -- "-$API_PID" 2>/dev/null  # any worker left behind
         API_PID=""
         say "demo: the API failed to start; the end of its log ($API_LOG):"
         tail -n 15 "$API_LOG" | sed 's/^/    /' ;;
      *) API_STATE="still starting after ${API_START_TIMEOUT} s (see $API_LOG)"
         say "demo: the API does not answer after ${API_START_TIMEOUT} s; the dashboard starts anyway" ;;
    esac ;;
esac

# ---------------------------------------------------------------------------- the dashboard
if [ "$(port_state "$DASHBOARD_HOST" "$DASHBOARD_PORT" "$DASHBOARD_URL")" != free ]; then
  say "demo: port $DASHBOARD_PORT on $DASHBOARD_HOST is taken: choose another, e.g. make demo DASHBOARD_PORT=8502"
  exit 1
fi
SEGMENTATION_API_URL="$API_URL" "$PY" -m dashboard.serve \
  --server.port "$DASHBOARD_PORT" --server.address "$DASHBOARD_HOST" --server.headless true \
  --browser.gatherUsageStats false </dev/null &
DASHBOARD_PID=$!
if wait_for "$DASHBOARD_URL/_stcore/health" "$DASHBOARD_PID" 60; then
  say ""
  say "=================================================================="
  say "  Dashboard:  $DASHBOARD_URL/"
  say "  API:        $API_URL/   ($API_STATE)"
  say "  Ctrl-C stops both."
  say "=================================================================="
  say ""
else
  say "demo: the dashboard did not come up on $DASHBOARD_URL (see its output above)"
fi
wait "$DASHBOARD_PID"
status=$?
DASHBOARD_PID=""
exit "$status"
