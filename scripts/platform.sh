#!/usr/bin/env bash
# The Docker platform users run, for the tests, the benches and the demo: Debian's own packages of
# the engine and of Compose, fetched with apt-get from the Debian mirror this machine's apt sources
# already name (read at run time, so no mirror is written anywhere), unpacked under the state
# directory and never installed. The engines run with the host's runc.
#
#   current   Debian 13: Docker Engine 26.1 (API 1.45), containerd 1.7, Compose v2.26 (the
#             `docker compose` plugin, and `docker-compose` as the same binary)
#   legacy    Debian 12: Docker Engine 20.10 (API 1.41), containerd 1.6, docker-compose 1.29
#             (Python, run by the host's python3 from the unpacked packages)
#
#   scripts/platform.sh fetch [LANE]   fetch and unpack a lane (once; kept in the state directory)
#   scripts/platform.sh bin [LANE]     print the folder of the lane's commands: docker, dockerd,
#                                      containerd, docker-compose, ...
#   scripts/platform.sh env [LANE]     print PATH, DOCKER_CONFIG (where `docker compose` finds
#                                      its plugin) and AUTOSCALER_TEST_COMPOSE (how to run Compose)
#   scripts/platform.sh version [LANE] print the engine's and Compose's versions
#
# LANE defaults to $AUTOSCALER_LANE, else current.
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

LANE=${2:-${AUTOSCALER_LANE:-current}}
case $LANE in
    current)
        SUITE=trixie
        PACKAGES="docker.io containerd docker-cli docker-compose tini"
        ;;
    legacy)
        SUITE=bookworm
        # docker-compose 1.29 is Python: its modules and theirs (apt-cache depends --recurse,
        # python3-* only: the interpreter is the host's).
        PACKAGES="docker.io containerd tini libdevmapper1.02.1 docker-compose
            python3-attr python3-cached-property python3-certifi python3-chardet
            python3-charset-normalizer python3-distro python3-distutils python3-docker
            python3-dockerpty python3-docopt python3-dotenv python3-idna python3-importlib-metadata
            python3-importlib-resources python3-jsonschema python3-lib2to3 python3-more-itertools
            python3-pkg-resources python3-pyrsistent python3-requests python3-six
            python3-texttable python3-typing-extensions python3-urllib3 python3-websocket
            python3-yaml python3-zipp"
        ;;
    *) die "unknown lane $LANE: current or legacy" ;;
esac
DIR=$STATE_DIR/platform/$LANE
ROOT=$DIR/root
BIN=$DIR/bin

# The Debian archive this machine's apt is configured with: the first source of a release's own
# suite (not -security, -updates or -backports) that carries main. apt reads its own sources, in
# either format, so this script never parses them.
mirror() {
    apt-get indextargets --no-release-info --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
        'Identifier: Packages' 2>/dev/null |
        awk '$3 == "main" && $2 !~ /-/ {print $1; exit}'
}

# apt-get with a private sources list, package lists and cache: the machine's apt state is only
# read, never changed.
private_apt() {
    apt-get -q -o Dir::Etc::SourceList="$DIR/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$DIR/apt/lists" -o Dir::Cache="$DIR/apt/cache" \
        -o Dir::State::Status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

fetch() {
    local stamp=$DIR/fetched
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ] && [ -x "$BIN/dockerd" ]; then
        return
    fi
    need_cmd apt-get apt
    need_cmd dpkg-deb dpkg
    local uri
    uri=$(mirror)
    [ -n "$uri" ] || die "no Debian mirror among this machine's apt sources (apt-get indextargets)"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || need_cmd gpgv debian-archive-keyring
    rm -rf "$DIR/apt/debs" "$ROOT" "$BIN"
    mkdir -p "$DIR/apt/lists/partial" "$DIR/apt/cache/archives/partial" "$DIR/apt/debs" "$BIN"
    echo "deb [signed-by=$keyring] $uri $SUITE main" >"$DIR/apt/sources.list"
    log "fetching Debian $SUITE's $(echo "$PACKAGES" | wc -w) packages for the $LANE lane from $uri"
    private_apt update -qq >&2
    # shellcheck disable=SC2086 # a list of package names
    (cd "$DIR/apt/debs" && private_apt download -qq $PACKAGES >&2)
    for deb in "$DIR"/apt/debs/*.deb; do
        dpkg-deb -x "$deb" "$ROOT"
    done
    local command
    for command in docker dockerd docker-proxy docker-init containerd containerd-shim-runc-v2 ctr; do
        for where in usr/bin usr/sbin usr/libexec/docker; do
            if [ -e "$ROOT/$where/$command" ]; then
                ln -sf "$ROOT/$where/$command" "$BIN/$command"
                break
            fi
        done
    done
    if [ "$LANE" = current ]; then
        ln -sf "$ROOT/usr/libexec/docker/cli-plugins/docker-compose" "$BIN/docker-compose"
        mkdir -p "$DIR/docker-config"
        echo "{\"cliPluginsExtraDirs\": [\"$ROOT/usr/libexec/docker/cli-plugins\"]}" \
            >"$DIR/docker-config/config.json"
    else
        local python=/usr/bin/python3
        [ -x "$python" ] || python=$(command -v python3)
        cat >"$BIN/docker-compose" <<EOF
#!/bin/sh
PYTHONPATH=$ROOT/usr/lib/python3/dist-packages:$ROOT/usr/lib/python3.11 exec $python $ROOT/usr/bin/docker-compose "\$@"
EOF
        chmod +x "$BIN/docker-compose"
        # dockerd 20.10 links libdevmapper, which the host may lack: the lane's own copy.
        local lib
        lib=$(dirname "$(find "$ROOT" -name 'libdevmapper.so.*' | head -n 1)")
        rm "$BIN/dockerd"
        printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$lib" "$ROOT/usr/sbin/dockerd" \
            >"$BIN/dockerd"
        chmod +x "$BIN/dockerd"
    fi
    # The unpacked tree is the cache; the archives and lists would only be fetched anew.
    rm -rf "$DIR/apt"
    echo "$PACKAGES" >"$stamp"
    log "the $LANE lane: $("$BIN/dockerd" --version), $("$BIN/docker-compose" version | head -n 1)"
}

env_lines() {
    echo "PATH=$BIN:$PATH"
    if [ "$LANE" = current ]; then
        echo "DOCKER_CONFIG=$DIR/docker-config"
        echo "AUTOSCALER_TEST_COMPOSE='docker compose'"
    else
        echo "AUTOSCALER_TEST_COMPOSE=docker-compose"
    fi
}

case ${1:-} in
    fetch) fetch ;;
    bin) echo "$BIN" ;;
    env) env_lines ;;
    version)
        fetch
        "$BIN/dockerd" --version
        "$BIN/docker-compose" version | head -n 1
        ;;
    *) die "usage: $0 fetch|bin|env|version [current|legacy]" ;;
esac
