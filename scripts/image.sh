#!/usr/bin/env bash
# The deploy image (deploy/Dockerfile), built on the engine DOCKER_HOST names without any
# registry: the base is a Debian bookworm made with debootstrap from Debian's own package mirror
# (python3 and python3-venv included) and `docker import`ed; the autoscaler and its dependencies
# go in as wheels made here. The base's root file system is cached under the state directory,
# so a machine builds it once (a few minutes) and imports it again in seconds.
#
#   scripts/image.sh [TAG]    build TAG (default compose-autoscaler:latest)
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
CACHE=$STATE_DIR/cache
BASE=${AUTOSCALER_BASE_IMAGE:-autoscaler-base:bookworm}
MIRROR=${AUTOSCALER_DEBIAN_MIRROR:-http://deb.debian.org/debian}
TAG=${1:-compose-autoscaler:latest}
: "${DOCKER_HOST:?image.sh needs DOCKER_HOST}"

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
PYTHON=${PYTHON:-$root/.venv/bin/python}

base_image() {
    if docker image inspect "$BASE" >/dev/null 2>&1; then
        return
    fi
    local tarball=$CACHE/base-bookworm.tar
    if [ ! -s "$tarball" ]; then
        need_cmd debootstrap debootstrap
        local rootfs
        rootfs=$(mktemp -d)
        log "debootstrap bookworm into $rootfs (once; cached in $tarball)"
        debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$MIRROR" >&2
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        mkdir -p "$CACHE"
        tar -C "$rootfs" -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$rootfs"
    fi
    docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'CMD ["/bin/bash"]' \
        "$tarball" "$BASE" >/dev/null
    log "imported base image $BASE"
}

use_platform
base_image
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
# The wheels of the autoscaler and of everything it needs, for the image's Python (3.11, glibc).
# That Python is Debian's 3.11.2, below which redis needs async-timeout (3.11.3): a wheel set
# resolved by a newer Python leaves it out, so it is named here.
"$PYTHON" -m pip wheel -q --wheel-dir "$context/wheels" "$root" "async-timeout>=4.0.3" >&2
cp "$root/deploy/Dockerfile" "$context/Dockerfile"
# The engine runs builds without a network: everything the build needs is in the context.
DOCKER_BUILDKIT=0 docker build -q --network none --build-arg "BASE=$BASE" -t "$TAG" "$context" >/dev/null
log "built $TAG on $BASE"
