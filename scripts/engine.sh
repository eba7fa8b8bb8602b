#!/usr/bin/env bash
# A private Docker Engine for tests and the demo: its own unix socket, its own data root, and its own
# network namespace, so nothing it or a container does can leave the machine and an accidental image
# pull fails at once. It runs as users run theirs, with the default bridge (docker0, inside that
# namespace; iptables left alone). Idempotent: `start` reuses an engine that already answers.
#
#   scripts/engine.sh start [NAME]   fetch what is missing, start dockerd, build the test image
#   scripts/engine.sh stop [NAME]    stop the dockerd this script started (by its pid file)
#   scripts/engine.sh env [NAME]     print DOCKER_HOST=... for the running engine
#   scripts/engine.sh netns [NAME]   print the engine's network namespace (for `nsenter --net=`):
#                                    where its containers' addresses can be reached
#   scripts/engine.sh image          build the test image on the engine DOCKER_HOST names
#
# NAME picks the engine (platform.sh fetches its lane):
#   engine    Docker 26.1, the default bridge: where every test runs (the default)
#   legacy    Docker 20.10 (API 1.41), the default bridge: the paths below API 1.44, Compose 1.29
#   bare      Docker 20.10 without the default bridge ("bridge": "none"), as some hosts run it
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
NAME=${2:-engine}
case $NAME in
    engine) LANE=current BRIDGE=default ;;
    legacy) LANE=legacy BRIDGE=default ;;
    bare) LANE=legacy BRIDGE=none ;;
    *) echo "[engine.sh] error: unknown engine $NAME: engine, legacy or bare" >&2; exit 1 ;;
esac
ENGINE_DIR=$STATE_DIR/$NAME
SOCKET=$ENGINE_DIR/docker.sock
PIDFILE=$ENGINE_DIR/dockerd.pid
LOG=$ENGINE_DIR/dockerd.log
TEST_IMAGE=${AUTOSCALER_TEST_IMAGE:-autoscaler-test/busybox:latest}

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

# The lane's own commands (docker, dockerd, containerd, docker-init, docker-proxy) come first; runc
# is the host's.
PLATFORM_BIN=$(bash "$here/platform.sh" bin "$LANE")
export PATH=$PLATFORM_BIN:$PATH

engine_answers() {
    [ -S "$SOCKET" ] && DOCKER_HOST=unix://$SOCKET docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# build_test_image HOST: the busybox test image, made from the host's busybox-static without any
# registry, on the engine at HOST.
build_test_image() {
    local host=$1
    if DOCKER_HOST=$host docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
        return
    fi
    local root
    root=$(mktemp -d)
    mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
    cp "$(command -v busybox)" "$root/bin/busybox"
    for applet in $("$root/bin/busybox" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    tar -C "$root" -cf - . | DOCKER_HOST=$host docker import \
        --change 'ENV PATH=/bin' --change 'CMD ["/bin/sh"]' - "$TEST_IMAGE" >/dev/null
    rm -rf "$root"
    log "built test image $TEST_IMAGE offline"
}

# On cgroup v1 every container of the engine (and of the swarm's nodes) sits in one group, docker,
# which the scheduler weighs as one task against each of the host's own: with the tests' processes
# and the engine busy, all containers together would get one task's share of the two cores, and a
# replica's CPU reading would say how busy the host is rather than the replica. The group is weighed
# as eight tasks (where this may write it; cgroup v2 weighs it as cpu.weight).
weigh_containers() {
    if [ -f /sys/fs/cgroup/cpu/cpu.shares ]; then
        mkdir -p /sys/fs/cgroup/cpu/docker 2>/dev/null &&
            echo 8192 >/sys/fs/cgroup/cpu/docker/cpu.shares 2>/dev/null || true
    elif [ -f /sys/fs/cgroup/docker/cpu.weight ]; then
        echo 800 >/sys/fs/cgroup/docker/cpu.weight 2>/dev/null || true
    fi
}

start() {
    bash "$here/platform.sh" fetch "$LANE"
    need_cmd runc runc
    need_cmd iptables iptables
    need_cmd busybox busybox-static
    need_cmd unshare util-linux
    need_cmd ip iproute2
    mkdir -p "$ENGINE_DIR"
    if engine_answers; then
        log "engine already answers on unix://$SOCKET"
    else
        # An engine that does not answer leaves only stale runtime state behind: after a reboot its
        # exec root still names containerd by a pid that some other process may now hold, and
        # dockerd would wait on that process instead of starting its own containerd.
        if pid_runs "$ENGINE_DIR/dockerd.inner.pid" dockerd; then
            stop_pidfile "$ENGINE_DIR/dockerd.inner.pid" dockerd dockerd
        fi
        unmount_under "$ENGINE_DIR/exec"
        rm -rf "$SOCKET" "$ENGINE_DIR/exec"
        # --exec-root and --pidfile keep this engine apart from any system one; the containerd it
        # starts lives under the same data root. The namespace is the engine's alone: its
        # default bridge, and everything on it, exist only there.
        local bridge=
        [ "$BRIDGE" = none ] && bridge=--bridge=none
        unshare --net --fork sh -c "ip link set lo up; exec dockerd \
            --host unix://$SOCKET --data-root $ENGINE_DIR/data --exec-root $ENGINE_DIR/exec \
            --pidfile $ENGINE_DIR/dockerd.inner.pid $bridge \
            --iptables=false --ip6tables=false --ip-masq=false" \
            >"$LOG" 2>&1 &
        echo $! >"$PIDFILE"
        for _ in $(seq 1 150); do
            engine_answers && break
            if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
                tail -n 20 "$LOG" >&2
                die "dockerd exited during start-up (log: $LOG)"
            fi
            sleep 0.2
        done
        engine_answers || die "dockerd did not answer on unix://$SOCKET within 30 s (log: $LOG)"
        log "engine $NAME ($(dockerd --version)) started on unix://$SOCKET (pid $(cat "$PIDFILE"))"
    fi
    weigh_containers
    build_test_image "unix://$SOCKET"
}

stop() {
    # Signal dockerd itself: the unshare wrapper whose pid $PIDFILE holds exits when it does.
    stop_pidfile "$ENGINE_DIR/dockerd.inner.pid" dockerd dockerd
    stop_pidfile "$PIDFILE" "dockerd's namespace wrapper" unshare
    rm -f "$SOCKET"
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    env) echo "DOCKER_HOST=unix://$SOCKET" ;;
    netns)
        [ -f "$ENGINE_DIR/dockerd.inner.pid" ] || die "no engine started by this script"
        echo "/proc/$(cat "$ENGINE_DIR/dockerd.inner.pid")/ns/net"
        ;;
    image)
        need_cmd busybox busybox-static
        build_test_image "${DOCKER_HOST:?image needs DOCKER_HOST}"
        ;;
    *) die "usage: $0 start|stop|env|netns|image" ;;
esac
