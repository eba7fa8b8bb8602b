#!/usr/bin/env bash
# `make demo`: the real case. A web service behind Caddy (deploy/web: the service on two
# networks, the proxy on one), HTTP load that rises and falls, and the autoscaler scaling the
# service up and back down, live: open the page it prints first, and watch the requests sent,
# answered and failed every few seconds, and its MQTT events.
#
# Uses the engine DOCKER_HOST names (or the default socket) when one answers, else starts the
# private one; likewise the broker at AUTOSCALER_MQTT__HOST/PORT, else a private mosquitto.
# Stops only what it started. DEMO_HOLD sets how long the high load lasts (seconds).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
BIN=${BIN:-.venv/bin}
HOLD=${DEMO_HOLD:-60}
PROJECT=autoscaler-demo
PAGE_PORT=${AUTOSCALER_API__PORT:-9464}
STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}

# `make demo` says it before installing anything; run by hand, the script says it itself.
if [ -z "${DEMO_BANNER_SHOWN:-}" ]; then
    echo
    echo "  The autoscaler's page: http://127.0.0.1:$PAGE_PORT/  (open it now; it fills in as the demo starts)"
    echo
fi

# The users' docker CLI and Compose v2 (Debian 13's, scripts/platform.sh): they speak to any
# engine from API 1.24 on, the one DOCKER_HOST names or the private one.
use_platform
need_cmd mosquitto_sub mosquitto-clients
need_cmd nsenter util-linux
compose=(docker compose -p "$PROJECT" -f deploy/web/compose.yaml)
export WEB_IMAGE=autoscaler-test/web:latest PROXY_IMAGE=autoscaler-test/caddy:latest
export PROXY_PORT=${DEMO_PROXY_PORT:-0} SCALE_DOWN_WINDOW=20s

# The autoscaler's clones belong to the project too; `down` removes them with the rest.
remove_stack() { "${compose[@]}" down -v -t 2 >/dev/null 2>&1 || true; }

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

private=
if docker version >/dev/null 2>&1; then
    log "using the engine at ${DOCKER_HOST:-the default socket}"
else
    pid_runs "$STATE_DIR/engine/dockerd.pid" unshare || started+=(engine)
    bash scripts/engine.sh start
    eval "export $(bash scripts/engine.sh env)"
fi
# The private engine runs in a network namespace of its own: the load is sent from inside it.
if [ "${DOCKER_HOST:-}" = "$(bash scripts/engine.sh env 2>/dev/null | cut -d= -f2-)" ]; then
    private=$(bash scripts/engine.sh netns)
fi
bash scripts/web-images.sh

if [ -n "${AUTOSCALER_MQTT__PORT:-}" ] && python3 -c "import socket; socket.create_connection(
        ('${AUTOSCALER_MQTT__HOST:-127.0.0.1}', $AUTOSCALER_MQTT__PORT), 2).close()" 2>/dev/null; then
    log "using the broker at ${AUTOSCALER_MQTT__HOST:-127.0.0.1}:$AUTOSCALER_MQTT__PORT"
else
    pid_runs "$STATE_DIR/broker/mosquitto.pid" mosquitto || started+=(broker)
    bash scripts/broker.sh start
    set -a
    eval "$(bash scripts/broker.sh env)"
    set +a
fi

remove_stack
"${compose[@]}" up -d --scale web=2
proxy=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' \
    "${PROJECT}_proxy_1" 2>/dev/null || docker inspect -f \
    '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' "${PROJECT}-proxy-1")
proxy=${proxy%% *}
if [ -n "$private" ]; then
    url=http://$proxy/
    send=(nsenter "--net=$private")
else
    port=$(docker port "${PROJECT}_proxy_1" 80 2>/dev/null || docker port "${PROJECT}-proxy-1" 80)
    url=http://127.0.0.1:${port##*:}/
    send=()
fi

# The autoscaler first, so that it is stopped (and flushes its last events) first.
AUTOSCALER_INTERVAL=${AUTOSCALER_INTERVAL:-2} AUTOSCALER_PROJECTS="[\"$PROJECT\"]" \
    AUTOSCALER_API__PORT=$PAGE_PORT "$BIN/autoscaler" run &
pids+=($!)
mosquitto_sub -h "${AUTOSCALER_MQTT__HOST:-127.0.0.1}" -p "$AUTOSCALER_MQTT__PORT" \
    -F '[mqtt] %t %p' -t "autoscaler/$PROJECT/+/events" &
pids+=($!)

# The low load at the end lasts past the 20 s scale-down window, so the way down is seen too.
after=$((HOLD > 45 ? HOLD : 45))
log "the page: http://127.0.0.1:$PAGE_PORT/ ; load through Caddy at $url: 8 requests a second, then 40 for ${HOLD}s (what 10 replicas carry), then 8 for ${after}s"
"${send[@]}" "$BIN/python" scripts/load.py --url "$url" --every 5 --out /dev/null \
    --phase 8:20 --phase "40:$HOLD" --phase "8:$after"
running=$(docker ps --filter "label=com.docker.compose.project=$PROJECT" --filter \
    label=com.docker.compose.service=web --format '{{.Names}}' | sort | xargs)
log "running now: $running"
if [ "$(wc -w <<<"$running")" -le 2 ]; then
    log "demo done: scaled up under load and back down to 2, every request counted"
else
    log "demo done: scaled up under load; $(wc -w <<<"$running") still run, on their way down"
fi
