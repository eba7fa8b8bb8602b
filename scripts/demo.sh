#!/usr/bin/env bash
# `make demo`: a Compose stack under a changing CPU demand, and the autoscaler scaling it up and
# back down, with its decisions and MQTT events shown live.
#
# Uses the engine DOCKER_HOST names (or the default socket) when one answers, else starts the
# private one; likewise the broker at AUTOSCALER_MQTT__HOST/PORT, else a private mosquitto.
# Stops only what it started. DEMO_HOLD sets how long each load phase lasts (seconds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
BIN=${BIN:-.venv/bin}
HOLD=${DEMO_HOLD:-40}
PROJECT=autoscaler-demo
STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
export DEMO_LOAD_DIR=$STATE_DIR/demo-load

need_cmd docker docker.io
need_cmd mosquitto_sub mosquitto-clients
if command -v docker-compose >/dev/null 2>&1; then
    compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
else
    need_cmd docker-compose docker-compose
    compose=(docker-compose)
fi
compose+=(-p "$PROJECT" -f deploy/demo/compose.yaml)

# The autoscaler's clones belong to the project too; `down` alone only knows Compose's own.
remove_stack() {
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null
    "${compose[@]}" down >/dev/null 2>&1 || true
}

started=()
pids=()
cleanup() {
    set +e
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    log "removing the demo stack"
    remove_stack
    for what in "${started[@]}"; do
        if [ "$what" = broker ]; then bash scripts/broker.sh reset; else bash scripts/engine.sh stop; fi
    done
}
trap cleanup EXIT

if docker version >/dev/null 2>&1; then
    log "using the engine at ${DOCKER_HOST:-the default socket}"
else
    [ -f "$STATE_DIR/engine/dockerd.pid" ] || started+=(engine)
    bash scripts/engine.sh start
    eval "export $(bash scripts/engine.sh env)"
fi
bash scripts/engine.sh image

if [ -n "${AUTOSCALER_MQTT__PORT:-}" ] && python3 -c "import socket; socket.create_connection(
        ('${AUTOSCALER_MQTT__HOST:-127.0.0.1}', $AUTOSCALER_MQTT__PORT), 2).close()" 2>/dev/null; then
    log "using the broker at ${AUTOSCALER_MQTT__HOST:-127.0.0.1}:$AUTOSCALER_MQTT__PORT"
else
    [ -f "$STATE_DIR/broker/mosquitto.pid" ] || started+=(broker)
    bash scripts/broker.sh start
    set -a
    eval "$(bash scripts/broker.sh env)"
    set +a
fi

remove_stack
mkdir -p "$DEMO_LOAD_DIR/replicas"
rm -f "$DEMO_LOAD_DIR/replicas/"*
echo 0 >"$DEMO_LOAD_DIR/demand"
"${compose[@]}" up -d

# The autoscaler first, so that it is stopped (and flushes its last events) first.
AUTOSCALER_INTERVAL=${AUTOSCALER_INTERVAL:-2} AUTOSCALER_PROJECTS="[\"$PROJECT\"]" \
    "$BIN/autoscaler" run &
pids+=($!)
mosquitto_sub -h "${AUTOSCALER_MQTT__HOST:-127.0.0.1}" -p "$AUTOSCALER_MQTT__PORT" \
    -F '[mqtt] %t %p' -t "autoscaler/$PROJECT/+/events" &
pids+=($!)

running() {
    docker ps --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}' | sort | xargs
}
phase() {
    echo "$1" >"$DEMO_LOAD_DIR/demand"
    log "demand now $1 millicores (needs about $(( ($1 + 124) / 125 )) replicas); holding ${HOLD}s"
    for _ in $(seq 1 "$HOLD"); do sleep 1; done
    log "running now: $(running)"
}
sleep 3
phase 600
phase 0
log "demo done: scaled up under load and back down to min"
