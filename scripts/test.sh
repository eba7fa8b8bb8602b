#!/usr/bin/env bash
# `make test`: lint, type-check, start the private engine and broker, run every test, and stop the
# engine and broker again if this script started them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
BIN=${BIN:-.venv/bin}

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
started=()
[ -f "$STATE_DIR/engine/dockerd.pid" ] || started+=(engine)
[ -f "$STATE_DIR/broker/mosquitto.pid" ] || started+=(broker)
[ -f "$STATE_DIR/prometheus/prometheus.pid" ] || started+=(prometheus)
cleanup() {
    for what in "${started[@]}"; do
        # The broker's reset also forgets its ports and sessions; the others just stop.
        case $what in
            broker) bash scripts/broker.sh reset || true ;;
            *) bash "scripts/$what.sh" stop || true ;;
        esac
    done
}
trap cleanup EXIT

"$BIN/ruff" format --check .
"$BIN/ruff" check .
"$BIN/mypy"

bash scripts/engine.sh start
bash scripts/broker.sh start
bash scripts/prometheus.sh start
# The Compose tests run the real docker-compose (1.29, Debian's); the deploy image test builds
# its base with debootstrap (scripts/image.sh installs it when missing).
need_cmd docker-compose docker-compose
# The page is tested in a real browser: Debian's chromium, headless.
need_cmd chromium chromium
set -a
eval "$(bash scripts/engine.sh env)"
eval "$(bash scripts/broker.sh env)"
eval "$(bash scripts/prometheus.sh env)"
set +a
"$BIN/pytest" "$@"
