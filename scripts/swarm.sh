#!/usr/bin/env bash
# A private multi-node Docker Swarm on this one machine, for the Swarm tests and benchmark: each
# node is a dockerd in a network namespace of its own (nsenter --net, so the cgroup mounts stay
# visible), the namespaces joined by veth pairs to a bridge in a namespace of this script's, with
# addresses in 198.18.0.0/24 (the benchmarking range) that are never routed anywhere. Each node's
# engine answers on a unix socket under the state directory (its /run/docker.sock). Idempotent.
#
#   scripts/swarm.sh start [N]   N nodes (default 3): node 1 and 2 managers, the rest workers
#   scripts/swarm.sh stop        stop the engines and remove the namespaces this script made
#   scripts/swarm.sh env         print AUTOSCALER_TEST_SWARM_NODES=<socket>,<socket>,...
#   scripts/swarm.sh load IMAGE  copy an image of the single-node engine onto every node
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
DIR=$STATE_DIR/swarm
PREFIX=${AUTOSCALER_SWARM_PREFIX:-casw}
BRIDGE_NS=${PREFIX}-lan

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
# The nodes run the users' engine (platform.sh's current lane: Docker 26.1), with the host's runc.
PATH=$(bash "$here/platform.sh" bin current):$PATH
export PATH

# Each node's /run is a folder of its own (a mount namespace per node), so that on every node the
# engine answers at /var/run/docker.sock, as on a real one: a stack's services bind-mount that.
sock() { echo "$DIR/node$1/run/docker.sock"; }
addr() { echo "198.18.0.$((10 + $1))"; }

answers() {
    DOCKER_HOST=unix://$(sock "$1") docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

node_up() {
    local n=$1 ns=${PREFIX}-node$1
    mkdir -p "$DIR/node$n"
    if answers "$n"; then
        return
    fi
    if [ ! -e "/run/netns/$ns" ]; then
        ip netns add "$ns"
        ip link add "${PREFIX}v$n" type veth peer name eth0 netns "$ns"
        ip link set "${PREFIX}v$n" netns "$BRIDGE_NS"
        ip -n "$BRIDGE_NS" link set "${PREFIX}v$n" master br0 up
        ip -n "$ns" addr add "$(addr "$n")/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" link set lo up
    fi
    rm -rf "$DIR/node$n/run"
    mkdir -p "$DIR/node$n/run"
    # shellcheck disable=SC2016 # expanded by the inner shell
    nsenter --net="/run/netns/$ns" unshare --mount sh -c 'mount --bind "$1" /run && shift && exec "$@"' \
        sh "$DIR/node$n/run" dockerd --host unix:///run/docker.sock \
        --data-root "$DIR/node$n/data" --pidfile "$DIR/node$n/dockerd.pid" \
        --iptables=false --ip6tables=false --ip-masq=false \
        >"$DIR/node$n/dockerd.log" 2>&1 &
    for _ in $(seq 1 150); do
        answers "$n" && return
        sleep 0.2
    done
    tail -n 20 "$DIR/node$n/dockerd.log" >&2
    die "node $n's dockerd did not answer (log: $DIR/node$n/dockerd.log)"
}

start() {
    local count=${1:-3}
    bash "$here/platform.sh" fetch current
    need_cmd runc runc
    need_cmd iptables iptables
    need_cmd ip iproute2
    need_cmd nsenter util-linux
    # A swarm left from before a reboot has state but no engine: a new start makes a new swarm.
    if [ -d "$DIR" ] && ! answers 1 && ! pid_runs "$DIR/node1/dockerd.pid" dockerd; then
        log "clearing the state of a swarm none of whose engines runs"
        stop
    fi
    mkdir -p "$DIR"
    echo "$count" >"$DIR/nodes"
    if [ ! -e "/run/netns/$BRIDGE_NS" ]; then
        ip netns add "$BRIDGE_NS"
        ip -n "$BRIDGE_NS" link add br0 type bridge
        ip -n "$BRIDGE_NS" link set br0 up
    fi
    for n in $(seq 1 "$count"); do node_up "$n"; done
    local one="DOCKER_HOST=unix://$(sock 1)"
    if [ "$(env "$one" docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
        env "$one" docker swarm init --advertise-addr "$(addr 1)" >/dev/null
        log "swarm initialised on node 1 ($(addr 1))"
    fi
    local manager worker
    manager=$(env "$one" docker swarm join-token -q manager)
    worker=$(env "$one" docker swarm join-token -q worker)
    for n in $(seq 2 "$count"); do
        local this="DOCKER_HOST=unix://$(sock "$n")" token=$worker
        [ "$n" -le 2 ] && token=$manager
        if [ "$(env "$this" docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
            env "$this" docker swarm join --advertise-addr "$(addr "$n")" --token "$token" \
                "$(addr 1):2377" >/dev/null
            log "node $n joined the swarm"
        fi
    done
}

stop() {
    local count
    count=$(cat "$DIR/nodes" 2>/dev/null || echo 0)
    for n in $(seq "$count" -1 1); do
        stop_pidfile "$DIR/node$n/dockerd.pid" "node $n's dockerd" dockerd
        ip netns del "${PREFIX}-node$n" 2>/dev/null || true
    done
    ip netns del "$BRIDGE_NS" 2>/dev/null || true
    # Anything an engine left mounted under the state directory (none in its own mount
    # namespace, but an engine killed mid-start may), so that the folder can go.
    unmount_under "$DIR"
    # The swarm's state goes too: a new start makes a new swarm.
    rm -rf "$DIR"
}

load() {
    local image=$1 count
    count=$(cat "$DIR/nodes")
    local archive
    archive=$(mktemp)
    local id
    id=$(docker image inspect --format '{{.Id}}' "$image")
    for n in $(seq 1 "$count"); do
        # Loaded once: a node that has this very image keeps it.
        if [ "$(DOCKER_HOST=unix://$(sock "$n") docker image inspect --format '{{.Id}}' \
            "$image" 2>/dev/null)" != "$id" ]; then
            [ -s "$archive" ] || docker save "$image" -o "$archive"
            DOCKER_HOST=unix://$(sock "$n") docker load -q -i "$archive" >/dev/null
        fi
    done
    rm -f "$archive"
    log "loaded $image onto $count nodes"
}

case ${1:-} in
    start) start "${2:-3}" ;;
    stop) stop ;;
    load) load "${2:?load needs an image}" ;;
    env)
        [ -f "$DIR/nodes" ] || die "no swarm started by this script"
        count=$(cat "$DIR/nodes")
        sockets=$(for n in $(seq 1 "$count"); do printf '%s,' "$(sock "$n")"; done)
        echo "AUTOSCALER_TEST_SWARM_NODES=${sockets%,}"
        ;;
    *) die "usage: $0 start [N]|stop|env|load IMAGE" ;;
esac
