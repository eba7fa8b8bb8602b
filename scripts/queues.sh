#!/usr/bin/env bash
# Private queue servers from Debian's packages (Redis, RabbitMQ, NATS with JetStream, PostgreSQL)
# on 127.0.0.1 and free ports, for the queue-source tests and benchmarks. Idempotent: `start`
# reuses a server this script started that still runs.
#
#   scripts/queues.sh start [redis|rabbitmq|nats|postgres ...]   install what is missing, start
#                                                                 each (all four without names)
#   scripts/queues.sh stop [NAME ...]    stop what this script started (by its pid files)
#   scripts/queues.sh reset [NAME ...]   stop, and forget the ports, data and passwords
#   scripts/queues.sh env [NAME ...]     print the AUTOSCALER_TEST_* lines of the running ones
#
# Each server lives in $STATE_DIR/queues/NAME/ (config, data, log, pid and port files). Its ports
# are chosen once, below the ephemeral range, and kept across a stop and start (a restart keeps
# its port and, but for Redis whose persistence is off, its data). Each has a user `scaler` whose
# password, made once, is in NAME/password (mode 600), for the credential tests; Redis also lets
# the passwordless `default` user in, and has a TLS port with a certificate for 127.0.0.1 from a
# private CA (redis/ca.crt). The servers run as plain background processes, never as the system's
# services, and a package installed here does not start its system-wide server.
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
QUEUES_DIR=$STATE_DIR/queues
ALL="redis rabbitmq nats postgres"
RABBITMQ_NODE=autoscaler-test@localhost
# Debian's RabbitMQ scripts themselves: /usr/sbin's wrappers switch to the rabbitmq user (and HOME).
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
POLICY=/usr/sbin/policy-rc.d

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

# The pid file of each server's main process, and that process's command name.
pidfile() { echo "$QUEUES_DIR/$1/$1.pid"; }
command_of() {
    case $1 in
        redis) echo redis-server ;;
        rabbitmq) echo beam.smp ;;
        nats) echo nats-server ;;
        postgres) echo postgres ;;
    esac
}

runs() {
    [ -f "$QUEUES_DIR/$1/port" ] && pid_runs "$(pidfile "$1")" "$(command_of "$1")"
}

# install_cmd CMD PACKAGE: need_cmd, with Debian's service starts refused meanwhile (the package's
# postinst would start a system-wide server): policy-rc.d answers 101 during the installation, and
# the one that was there before comes back after it.
install_cmd() {
    command -v "$1" >/dev/null 2>&1 && return
    if [ -w "$(dirname "$POLICY")" ]; then
        # (One left by a run that was killed is ours: the saved one stays the system's.)
        if [ -e "$POLICY" ] && ! grep -q 'compose-autoscaler scripts/queues.sh' "$POLICY"; then
            mv "$POLICY" "$POLICY.queues-sh-saved"
        fi
        trap restore_policy EXIT
        printf '#!/bin/sh\n# written by compose-autoscaler scripts/queues.sh while it installs\nexit 101\n' >"$POLICY"
        chmod 755 "$POLICY"
    fi
    need_cmd "$1" "$2"
    restore_policy
    trap - EXIT
}
restore_policy() {
    if grep -q 'compose-autoscaler scripts/queues.sh' "$POLICY" 2>/dev/null; then
        rm -f "$POLICY"
        [ ! -e "$POLICY.queues-sh-saved" ] || mv "$POLICY.queues-sh-saved" "$POLICY"
    fi
}

# port FILE: the port FILE keeps, if still below the ephemeral range (see prometheus.sh), else a
# newly chosen free one, distinct from the other servers' and then kept in FILE.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port() {
    local port
    port=$(cat "$1" 2>/dev/null || true)
    if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -ge "$EPHEMERAL_LOW" ]; then
        # shellcheck disable=SC2046 # one port a word
        port=$(python3 - "$EPHEMERAL_LOW" $(cat "$QUEUES_DIR"/*/port* 2>/dev/null) <<'PY'
import random, socket, sys
low, taken = int(sys.argv[1]), set(map(int, sys.argv[2:]))
for _ in range(1000):
    port = random.randrange(max(low // 2, 1024), low)
    if port in taken:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    print(port)
    break
else:
    sys.exit("no free port below the ephemeral range")
PY
)
        echo "$port" >"$1"
    fi
    echo "$port"
}

# private_file FILE: FILE, empty and readable by its owner only, to write a secret into.
private_file() { : >"$1"; chmod 600 "$1"; }

# password DIR: the password in DIR/password, made once (hex, so it needs no quoting anywhere).
password() {
    if [ ! -s "$1/password" ]; then
        private_file "$1/password"
        head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1/password"
    fi
    cat "$1/password"
}

port_answers() {
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.5).close()" 2>/dev/null
}
http_answers() {
    python3 -c "import urllib.request; urllib.request.urlopen('$1', timeout=1)" 2>/dev/null
}

# await NAME SECONDS PIDFILE CHECK...: poll CHECK every 0.2 s until it succeeds; give up, with the
# log's tail, after SECONDS or as soon as the process in PIDFILE has ended.
await() {
    local name=$1 seconds=$2 pidfile=$3 deadline failure
    shift 3
    deadline=$((SECONDS + seconds))
    failure="did not come up within $seconds s"
    while [ "$SECONDS" -lt "$deadline" ]; do
        "$@" >/dev/null 2>&1 && return
        if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            failure="exited while starting"
            break
        fi
        sleep 0.2
    done
    fail "$name" "$failure"
}

# fail NAME WHAT: show the tail of NAME's logs, stop what was started of it, and die.
fail() {
    tail -n 20 "$QUEUES_DIR/$1"/*.log "$QUEUES_DIR/$1"/log/*.log >&2 2>/dev/null || true
    "stop_$1" 2>/dev/null || true
    die "$1 $2 (logs: $QUEUES_DIR/$1)"
}

# --- Redis: the default user without a password, `scaler` with one, and a TLS port. ---

need_redis() { install_cmd redis-server redis-server; }
launch_redis() {
    local d=$QUEUES_DIR/redis port tls_port hash
    port=$(port "$d/port")
    tls_port=$(port "$d/port.tls")
    make_certificates "$d"
    chmod 600 "$d/ca.key" "$d/server.key"
    hash=$(password "$d" | tr -d '\n' | sha256sum | cut -d' ' -f1)
    private_file "$d/redis.conf"
    cat >"$d/redis.conf" <<CONF
bind 127.0.0.1
port $port
tls-port $tls_port
tls-cert-file $d/server.crt
tls-key-file $d/server.key
tls-ca-cert-file $d/ca.crt
tls-auth-clients no
daemonize no
dir $d
logfile ""
save ""
appendonly no
databases 16
user default on nopass ~* &* +@all
user scaler on #$hash ~* &* +@all
CONF
    redis-server "$d/redis.conf" >"$d/redis.log" 2>&1 &
    echo $! >"$(pidfile redis)"
}
redis_pings() {
    [ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$(cat "$QUEUES_DIR/redis/port")" ping)" = PONG ]
}
await_redis() { await redis 20 "$(pidfile redis)" redis_pings; }
stop_redis() { stop_pidfile "$(pidfile redis)" redis redis-server; }
env_redis() {
    local d=$QUEUES_DIR/redis
    echo "AUTOSCALER_TEST_REDIS_URL=redis://127.0.0.1:$(cat "$d/port")/0"
    echo "AUTOSCALER_TEST_REDIS_USER=scaler"
    echo "AUTOSCALER_TEST_REDIS_PASSWORD_FILE=$d/password"
    echo "AUTOSCALER_TEST_REDIS_TLS_URL=rediss://127.0.0.1:$(cat "$d/port.tls")/0"
    echo "AUTOSCALER_TEST_REDIS_CA_FILE=$d/ca.crt"
}

# --- RabbitMQ: a node of its own (name, epmd, distribution port, Erlang cookie in its HOME), with
# the management plugin; `scaler` is its default user, made at the first boot instead of guest. ---

# The environment of Debian's RabbitMQ scripts (server and rabbitmqctl) for this node; they also
# get HOME=its dir, for the Erlang cookie.
rabbitmq_env() {
    local d=$QUEUES_DIR/rabbitmq
    export RABBITMQ_NODENAME=$RABBITMQ_NODE
    export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    export RABBITMQ_NODE_PORT
    RABBITMQ_NODE_PORT=$(port "$d/port")
    export RABBITMQ_DIST_PORT
    RABBITMQ_DIST_PORT=$(port "$d/port.dist")
    export ERL_EPMD_PORT
    ERL_EPMD_PORT=$(port "$d/port.epmd")
    export ERL_EPMD_ADDRESS=127.0.0.1
    export RABBITMQ_MNESIA_BASE=$d/mnesia
    export RABBITMQ_LOG_BASE=$d/log
    export RABBITMQ_CONFIG_FILE=$d/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$d/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$d/rabbitmq-env.conf
    export RABBITMQ_ENABLED_PLUGINS_FILE=$d/enabled_plugins
    export RABBITMQ_PID_FILE=$d/rabbitmq.pid
    # One scheduler and no busy waiting: it shares two cores with the tests.
    local loopback="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none $loopback"
    export RABBITMQ_CTL_ERL_ARGS=$loopback
}

need_rabbitmq() {
    install_cmd rabbitmqctl rabbitmq-server
    install_cmd epmd erlang-base
}
launch_rabbitmq() {
    local d=$QUEUES_DIR/rabbitmq pass management
    rabbitmq_env
    pass=$(password "$d")
    management=$(port "$d/port.management")
    mkdir -p "$d/mnesia" "$d/log"
    private_file "$d/rabbitmq.conf"
    cat >"$d/rabbitmq.conf" <<CONF
management.tcp.ip = 127.0.0.1
management.tcp.port = $management
default_vhost = /
default_user = scaler
default_pass = $pass
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
disk_free_limit.absolute = 50MB
# The management API's counts are statistics emitted this often (5 s by default): a test waits
# on them, so once a second here.
collect_statistics_interval = 1000
log.console = false
log.file.level = info
CONF
    echo '[rabbitmq_management].' >"$d/enabled_plugins"
    # Its own epmd, started here so that its pid is known; the node registers with it.
    if ! pid_runs "$d/epmd.pid" epmd; then
        epmd -port "$ERL_EPMD_PORT" -address 127.0.0.1 >"$d/epmd.log" 2>&1 &
        echo $! >"$d/epmd.pid"
        await rabbitmq 10 "$d/epmd.pid" epmd -port "$ERL_EPMD_PORT" -names
    fi
    rm -f "$d/rabbitmq.pid"
    # The node writes its pid file itself (its beam, which stops cleanly on SIGTERM).
    HOME=$d "$RABBITMQ_BIN/rabbitmq-server" >"$d/rabbitmq.log" 2>&1 &
    echo $! >"$d/launcher.pid"
}
rabbitmq_registered() {
    epmd -port "$ERL_EPMD_PORT" -names | grep -q "^name ${RABBITMQ_NODE%@*} "
}
await_rabbitmq() {
    local d=$QUEUES_DIR/rabbitmq
    rabbitmq_env
    await rabbitmq 60 "$d/launcher.pid" rabbitmq_registered
    await rabbitmq 10 "$d/launcher.pid" test -s "$d/rabbitmq.pid"
    HOME=$d "$RABBITMQ_BIN/rabbitmqctl" await_startup --timeout 120 >>"$d/rabbitmq.log" 2>&1 ||
        fail rabbitmq "did not finish starting"
    await rabbitmq 30 "$d/rabbitmq.pid" port_answers "$(cat "$d/port.management")"
    rm -f "$d/launcher.pid"
}
stop_rabbitmq() {
    local d=$QUEUES_DIR/rabbitmq
    stop_pidfile "$(pidfile rabbitmq)" rabbitmq beam.smp
    [ ! -f "$d/launcher.pid" ] || stop_pidfile "$d/launcher.pid" "rabbitmq launcher" rabbitmq-server
    [ ! -f "$d/epmd.pid" ] || stop_pidfile "$d/epmd.pid" "rabbitmq's epmd" epmd
}
env_rabbitmq() {
    local d=$QUEUES_DIR/rabbitmq
    echo "AUTOSCALER_TEST_RABBITMQ_HOST=127.0.0.1"
    echo "AUTOSCALER_TEST_RABBITMQ_PORT=$(cat "$d/port")"
    echo "AUTOSCALER_TEST_RABBITMQ_MANAGEMENT_URL=http://127.0.0.1:$(cat "$d/port.management")"
    echo "AUTOSCALER_TEST_RABBITMQ_USER=scaler"
    echo "AUTOSCALER_TEST_RABBITMQ_PASSWORD_FILE=$d/password"
}

# --- NATS: JetStream on, user `scaler` only, and the monitoring port. ---

need_nats() { install_cmd nats-server nats-server; }
launch_nats() {
    local d=$QUEUES_DIR/nats port monitor pass
    port=$(port "$d/port")
    monitor=$(port "$d/port.monitor")
    pass=$(password "$d")
    private_file "$d/nats.conf"
    cat >"$d/nats.conf" <<CONF
server_name: autoscaler_test
listen: "127.0.0.1:$port"
http: "127.0.0.1:$monitor"
jetstream {
  store_dir: "$d/jetstream"
  max_memory_store: 64MB
  max_file_store: 1GB
}
authorization {
  users: [ { user: scaler, password: "$pass" } ]
}
CONF
    nats-server -c "$d/nats.conf" >"$d/nats.log" 2>&1 &
    echo $! >"$(pidfile nats)"
}
await_nats() {
    await nats 20 "$(pidfile nats)" http_answers "http://127.0.0.1:$(cat "$QUEUES_DIR/nats/port.monitor")/healthz"
}
stop_nats() { stop_pidfile "$(pidfile nats)" nats nats-server; }
env_nats() {
    local d=$QUEUES_DIR/nats
    echo "AUTOSCALER_TEST_NATS_URL=nats://127.0.0.1:$(cat "$d/port")"
    echo "AUTOSCALER_TEST_NATS_USER=scaler"
    echo "AUTOSCALER_TEST_NATS_PASSWORD_FILE=$d/password"
    echo "AUTOSCALER_TEST_NATS_MONITOR_URL=http://127.0.0.1:$(cat "$d/port.monitor")"
}

# --- PostgreSQL: a cluster of its own in postgres/data, run as the postgres user (it refuses
# root); scram passwords over TCP, peer authentication on its socket (in postgres/). ---

# The newest installed server's binaries (Debian keeps them off PATH, under their version).
pg_bindir() {
    local dir
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V -r); do
        [ -x "$dir/postgres" ] && { echo "$dir"; return; }
    done
    return 0
}
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

need_postgres() {
    [ -n "$(pg_bindir)" ] || install_cmd pg_ctlcluster postgresql
    [ -n "$(pg_bindir)" ] || die "no PostgreSQL server under /usr/lib/postgresql: install the postgresql package"
}
launch_postgres() {
    local d=$QUEUES_DIR/postgres bin port version
    bin=$(pg_bindir)
    port=$(port "$d/port")
    password "$d" >/dev/null
    chown postgres: "$d"
    chmod 711 "$d"
    as_postgres test -x "$d" || die "the postgres user cannot reach $d: choose an AUTOSCALER_STATE_DIR it can"
    version=$(basename "$(dirname "$bin")")
    if [ -f "$d/data/PG_VERSION" ] && [ "$(cat "$d/data/PG_VERSION")" != "$version" ]; then
        die "$d/data is a PostgreSQL $(cat "$d/data/PG_VERSION") cluster, the server is $version: run $0 reset postgres"
    fi
    if [ ! -f "$d/data/PG_VERSION" ]; then
        rm -rf "$d/data"
        as_postgres "$bin/initdb" -D "$d/data" -U postgres -E UTF8 --locale=C --no-sync \
            --auth-local=peer --auth-host=scram-sha-256 >"$d/initdb.log" 2>&1 ||
            { tail -n 20 "$d/initdb.log" >&2; die "initdb failed (log: $d/initdb.log)"; }
    fi
    # setpriv execs the server: its pid is the postmaster's.
    setpriv --reuid=postgres --regid=postgres --init-groups -- \
        "$bin/postgres" -D "$d/data" -p "$port" -h 127.0.0.1 -k "$d" \
        -c fsync=off -c shared_buffers=32MB -c max_connections=100 >"$d/postgres.log" 2>&1 &
    echo $! >"$(pidfile postgres)"
}
await_postgres() {
    local d=$QUEUES_DIR/postgres bin port pass
    bin=$(pg_bindir)
    port=$(cat "$d/port")
    await postgres 30 "$(pidfile postgres)" "$bin/pg_isready" -q -t 2 -h 127.0.0.1 -p "$port"
    pass=$(cat "$d/password")
    # Through the socket as the superuser, the password on stdin: idempotent.
    as_postgres "$bin/psql" -X -q -h "$d" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        >>"$d/postgres.log" 2>&1 <<SQL || fail postgres "could not make the role scaler and the database jobs"
SELECT 'CREATE ROLE scaler LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'scaler')\gexec
ALTER ROLE scaler LOGIN PASSWORD '$pass';
SELECT 'CREATE DATABASE jobs OWNER scaler' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'jobs')\gexec
SQL
}
stop_postgres() {
    # SIGINT first: a fast shutdown, where SIGTERM waits for every client to disconnect.
    ! pid_runs "$(pidfile postgres)" postgres || kill -INT "$(cat "$(pidfile postgres)")"
    stop_pidfile "$(pidfile postgres)" postgres postgres
}
env_postgres() {
    local d=$QUEUES_DIR/postgres
    echo "AUTOSCALER_TEST_POSTGRES_DSN=postgresql://scaler@127.0.0.1:$(cat "$d/port")/jobs"
    echo "AUTOSCALER_TEST_POSTGRES_PASSWORD_FILE=$d/password"
}

# --- Commands ---

now() { date +%s.%N; }
since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

start() {
    local name wanted="" launched="" began
    mkdir -p "$QUEUES_DIR"
    for name in "$@"; do
        mkdir -p "$QUEUES_DIR/$name"
        if runs "$name"; then
            log "$name already runs on 127.0.0.1:$(cat "$QUEUES_DIR/$name/port")"
        else
            "need_$name"
            wanted="$wanted $name"
        fi
    done
    # All launched first, then awaited, so that they boot together: RabbitMQ, the slowest, is
    # launched first and awaited last (the times logged are then each one's own).
    case " $wanted " in *" rabbitmq "*) wanted="rabbitmq ${wanted/ rabbitmq/}" ;; esac
    for name in $wanted; do
        began=$(now)
        "launch_$name"
        launched="$name:$began $launched"
    done
    for name in $launched; do
        began=${name#*:}
        name=${name%%:*}
        "await_$name"
        log "$name started on 127.0.0.1:$(cat "$QUEUES_DIR/$name/port") (pid $(cat "$(pidfile "$name")")) in $(since "$began") s"
    done
}

stop() {
    local name
    for name in "$@"; do
        [ -d "$QUEUES_DIR/$name" ] || continue
        "stop_$name"
    done
}

reset() {
    local name
    stop "$@"
    for name in "$@"; do
        rm -rf "${QUEUES_DIR:?}/$name"
    done
}

# print_env NAME...: the lines of those that run; of every NAME when named on the command line.
print_env() {
    local name any=""
    for name in "$@"; do
        if runs "$name"; then
            "env_$name"
            any=1
        elif [ -n "$named" ]; then
            die "no $name started by this script runs"
        fi
    done
    [ -n "$any" ] || die "no queue server started by this script runs"
}

action=${1:-}
[ "$#" -eq 0 ] || shift
named=$*
for name in "$@"; do
    case " $ALL " in
        *" $name "*) ;;
        *) die "unknown server $name (known: $ALL)" ;;
    esac
done
# shellcheck disable=SC2086 # one name a word
[ "$#" -gt 0 ] || set -- $ALL
case $action in
    start) start "$@" ;;
    stop) stop "$@" ;;
    reset) reset "$@" ;;
    env) print_env "$@" ;;
    *) die "usage: $0 start|stop|reset|env [${ALL// /|} ...]" ;;
esac
