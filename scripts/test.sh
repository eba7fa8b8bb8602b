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
cleanup() {
    for what in "${started[@]}"; do
        # The broker's reset also forgets its ports and sessions; the engine just stops.
        if [ "$what" = broker ]; then bash scripts/broker.sh reset || true
        else bash scripts/engine.sh stop || true; fi
    done
}
trap cleanup EXIT

"$BIN/ruff" format --check .
"$BIN/ruff" check .
"$BIN/mypy"

bash scripts/engine.sh start
bash scripts/broker.sh start
# The Compose tests run the real docker-compose (1.29, Debian's); the deploy image test builds
# its base with debootstrap (scripts/image.sh installs it when missing).
need_cmd docker-compose docker-compose
# The page is tested in a real browser: Debian's chromium, headless.
need_cmd chromium chromium
set -a
eval "$(bash scripts/engine.sh env)"
eval "$(bash scripts/broker.sh env)"
set +a
"$BIN/pytest" "$@"
