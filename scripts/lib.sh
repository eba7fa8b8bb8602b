# Shared helpers for the scripts in this folder; sourced, not run.

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "error: $*"; exit 1; }

APT_UPDATED=${APT_UPDATED:-}

# need_cmd CMD PACKAGE: install the Debian package that provides CMD when CMD is missing.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 && return
    command -v apt-get >/dev/null 2>&1 || die "$1 is missing and apt-get is not available: install $2"
    log "installing $2 (for $1)"
    if [ -z "$APT_UPDATED" ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >&2
    command -v "$1" >/dev/null 2>&1 || die "installing $2 did not provide $1"
}

# pid_runs FILE COMMAND: the pid FILE holds is alive and still COMMAND (pids are reused, and a pid
# file outlives a reboot).
pid_runs() {
    [ -f "$1" ] && [ "$(ps -p "$(cat "$1")" -o comm= 2>/dev/null)" = "$2" ]
}

# stop_pidfile FILE NAME [COMMAND]: stop the process whose pid FILE holds, waiting up to 20 s. With
# COMMAND, a pid that now belongs to another program (a pid file left from before a reboot) is only
# forgotten, never signalled.
stop_pidfile() {
    local pidfile=$1 name=$2 command=${3:-} pid
    [ -f "$pidfile" ] || { log "$name: not started by this script"; return 0; }
    pid=$(cat "$pidfile")
    if [ -n "$command" ] && ! pid_runs "$pidfile" "$command"; then
        rm -f "$pidfile"
        return 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM for 20 s; sending SIGKILL"
            kill -KILL "$pid"
        fi
        log "$name (pid $pid) stopped"
    fi
    rm -f "$pidfile"
}

# unmount_under DIR: unmount whatever is mounted below DIR, deepest first (an engine that was
# killed leaves its containers' network namespaces mounted there), so that DIR can be removed.
unmount_under() {
    awk -v dir="$1/" 'index($5, dir) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        xargs -r -n1 umount 2>/dev/null || true
}

# with_libraries BINARY ROOT [AT]: copy BINARY into the image root ROOT (at AT, its own path by
# default) with every library it links, at the paths it was linked against (the loader too).
with_libraries() {
    local binary=$1 root=$2 at=${3:-$1} lib
    mkdir -p "$root$(dirname "$at")"
    cp -L "$binary" "$root$at"
    for lib in $(ldd "$binary" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

# use_platform: the users' docker CLI and Compose (platform.sh's current lane: Docker 26.1,
# Compose v2.26) lead PATH, fetched first if missing.
use_platform() {
    local scripts
    scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    bash "$scripts/platform.sh" fetch current
    eval "$(bash "$scripts/platform.sh" env current)"
    export PATH DOCKER_CONFIG
}

# make_certificates DIR: a private CA (DIR/ca.crt) and a certificate for 127.0.0.1 it signed
# (DIR/server.crt, DIR/server.key), made once, for the TLS listeners of the test servers.
make_certificates() {
    local d=$1
    [ -f "$d/server.crt" ] && return 0
    need_cmd openssl openssl
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=autoscaler test CA" \
        -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
        -days 3650 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
}

# have_image TAG: the engine DOCKER_HOST names has the image.
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# import_image ROOT TAG CHANGE...: the folder ROOT as image TAG (no registry), with Dockerfile-like
# changes; ROOT gets an /etc/passwd and /etc/group of root and nobody.
import_image() {
    local root=$1 tag=$2 changes=()
    shift 2
    for change in "$@"; do changes+=(--change "$change"); done
    printf 'root:x:0:0::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar -C "$root" -cf - . | docker import "${changes[@]}" - "$tag" >/dev/null
    log "built $tag"
}
