#!/usr/bin/env bash
# `make test`: lint, type-check, start the private engine, broker, Prometheus and swarm, run every
# test, and stop again what this script started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
BIN=${BIN:-.venv/bin}

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
started=()
pid_runs "$STATE_DIR/engine/dockerd.pid" unshare || started+=(engine)
pid_runs "$STATE_DIR/legacy/dockerd.pid" unshare || started+=("engine legacy")
pid_runs "$STATE_DIR/bare/dockerd.pid" unshare || started+=("engine bare")
pid_runs "$STATE_DIR/broker/mosquitto.pid" mosquitto || started+=(broker)
pid_runs "$STATE_DIR/prometheus/prometheus.pid" prometheus || started+=(prometheus)
pid_runs "$STATE_DIR/swarm/node1/dockerd.pid" dockerd || started+=(swarm)
# The queue servers the queue sources are tested against (Debian's packages; scripts/queues.sh).
QUEUES=(redis rabbitmq nats postgres)
for queue in "${QUEUES[@]}"; do
    bash scripts/queues.sh env "$queue" >/dev/null 2>&1 || started+=("queues $queue")
done
cleanup() {
    for what in "${started[@]}"; do
        # The broker's reset also forgets its ports and sessions; the others just stop.
        case $what in
            broker) bash scripts/broker.sh reset || true ;;
            engine\ *) bash scripts/engine.sh stop "${what#engine }" || true ;;
            queues\ *) bash scripts/queues.sh stop "${what#queues }" || true ;;
            *) bash "scripts/$what.sh" stop || true ;;
        esac
    done
}
trap cleanup EXIT

"$BIN/ruff" format --check .
"$BIN/ruff" check .
"$BIN/mypy"
"$BIN/lint-imports"

# The users' platform (platform.sh): Docker 26.1 and Compose v2.26 for every test; Docker 20.10
# and docker-compose 1.29 for the paths below API 1.44 and Compose v1; and one engine without the
# default bridge.
bash scripts/engine.sh start
bash scripts/engine.sh start legacy
bash scripts/engine.sh start bare
bash scripts/broker.sh start
bash scripts/prometheus.sh start
# The Swarm tests: three engines, each in a network namespace of its own, joined as one swarm.
bash scripts/swarm.sh start 3
bash scripts/queues.sh start "${QUEUES[@]}"
# The deploy image test builds its base with debootstrap (scripts/image.sh installs it when
# missing).
# The page is tested in a real browser: Debian's chromium, headless.
need_cmd chromium chromium
set -a
# The current lane's docker, dockerd and Compose lead PATH; the legacy engine and its Compose are
# named for the tests that run there too.
eval "$(bash scripts/platform.sh env current)"
AUTOSCALER_TEST_LEGACY_COMPOSE=$(bash scripts/platform.sh bin legacy)/docker-compose
AUTOSCALER_TEST_LEGACY_HOST=$(bash scripts/engine.sh env legacy | cut -d= -f2-)
AUTOSCALER_TEST_BARE_HOST=$(bash scripts/engine.sh env bare | cut -d= -f2-)
eval "$(bash scripts/engine.sh env)"
eval "$(bash scripts/broker.sh env)"
eval "$(bash scripts/prometheus.sh env)"
eval "$(bash scripts/swarm.sh env)"
eval "$(bash scripts/queues.sh env "${QUEUES[@]}")"
set +a
# The slowest tests are listed, so that the suite's 15 minutes are watched where they go.
if [ $# -gt 0 ]; then
    "$BIN/pytest" --durations=15 "$@"
    exit
fi
# Each test has a Compose project, a topic prefix, a lease and a Prometheus target of its own, so
# most share the engine and broker three at a time (they mostly wait on them). Then the few
# marked `alone`, which stop the engine or broker or count everything it sends, one at a time.
# (worksteal: an idle worker takes queued tests from a busy one, so the long web tests at the end
# of the collection do not leave the others waiting.)
"$BIN/pytest" -n "${TEST_WORKERS:-3}" --dist worksteal -m "not alone" --durations=15
"$BIN/pytest" -m alone --durations=5
