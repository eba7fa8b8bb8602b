#!/usr/bin/env bash
# The images of a queue worker's stack (examples/worker-redis) for the tests and the demo, made
# without a registry on the engine DOCKER_HOST names:
#
#   autoscaler-test/redis    Debian's redis-server and redis-cli, with the libraries they link: a
#                            broker inside the stack, keeping nothing on disk
#   autoscaler-test/worker   examples/worker-redis/worker.sh run by busybox's sh, with Debian's
#                            redis-cli and its libraries: one job at a time from a Redis list
#
#   scripts/worker-images.sh    build those that are missing (busybox-static and redis-tools
#                               installed with apt when they are)
set -euo pipefail
: "${DOCKER_HOST:?worker-images.sh needs DOCKER_HOST}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
use_platform

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

if ! have_image autoscaler-test/redis:latest; then
    need_cmd redis-server redis-server
    mkdir -p "$root/redis/etc" "$root/redis/data" "$root/redis/tmp"
    need_cmd redis-cli redis-tools
    with_libraries "$(command -v redis-server)" "$root/redis" /usr/bin/redis-server
    # `docker compose exec redis redis-cli ...` puts jobs in and looks at the queue.
    with_libraries "$(command -v redis-cli)" "$root/redis" /usr/bin/redis-cli
    # Nothing saved (no RDB, no AOF): a queue for a test or a demo. The stack's own network is
    # its only reach, so it listens without protected mode; a password is the example's to add.
    import_image "$root/redis" autoscaler-test/redis:latest 'WORKDIR /data' 'EXPOSE 6379' \
        'CMD ["/usr/bin/redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"]'
fi

# The worker's image is made again when worker.sh has changed since (its digest is a label).
script=$here/../examples/worker-redis/worker.sh
digest=$(sha256sum "$script" | cut -d' ' -f1)
made=$(docker image inspect autoscaler-test/worker:latest \
    -f '{{index .Config.Labels "autoscaler-test.worker-sh"}}' 2>/dev/null || true)
if [ "$made" != "$digest" ]; then
    need_cmd busybox busybox-static
    need_cmd redis-cli redis-tools
    mkdir -p "$root/worker/bin" "$root/worker/etc" "$root/worker/tmp"
    cp "$(command -v busybox)" "$root/worker/bin/busybox"
    for applet in $("$root/worker/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/worker/bin/$applet"
    done
    with_libraries "$(command -v redis-cli)" "$root/worker" /usr/bin/redis-cli
    cp "$script" "$root/worker/worker.sh"
    # The shell is PID 1: it gets `docker stop`'s SIGTERM itself, and its trap finishes the job
    # in hand (worker.sh).
    import_image "$root/worker" autoscaler-test/worker:latest 'ENV PATH=/bin:/usr/bin' \
        "LABEL autoscaler-test.worker-sh=$digest" 'CMD ["/bin/sh", "/worker.sh"]'
fi
