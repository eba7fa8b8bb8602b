#!/usr/bin/env bash
# A broker image for the Swarm stack test, made without a registry from this machine's own
# mosquitto (Debian's) and the libraries it links: where a registry answers, deploy/stack.yaml
# uses eclipse-mosquitto:2 instead. Same command and config path as that image, so the stack
# file runs either unchanged.
#
#   scripts/broker-image.sh [TAG]   build TAG (default autoscaler-test/mosquitto:latest) on the
#                                   engine DOCKER_HOST names
set -euo pipefail
TAG=${1:-autoscaler-test/mosquitto:latest}
: "${DOCKER_HOST:?broker-image.sh needs DOCKER_HOST}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

need_cmd mosquitto mosquitto
use_platform
if docker image inspect "$TAG" >/dev/null 2>&1; then
    exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
binary=$(command -v mosquitto)
mkdir -p "$root/etc" "$root/mosquitto/data"
with_libraries "$binary" "$root" /usr/sbin/mosquitto
# mosquitto started as root drops to this user.
echo 'root:x:0:0::/:/bin/false' >"$root/etc/passwd"
echo 'mosquitto:x:1883:1883::/mosquitto:/bin/false' >>"$root/etc/passwd"
printf 'root:x:0:\nmosquitto:x:1883:\n' >"$root/etc/group"
printf 'listener 1883\nallow_anonymous true\n' >"$root/mosquitto-no-auth.conf"
tar -C "$root" -cf - . | docker import \
    --change 'ENV PATH=/usr/sbin:/usr/bin' \
    --change 'CMD ["mosquitto", "-c", "/mosquitto-no-auth.conf"]' - "$TAG" >/dev/null
log "built $TAG from $binary"
