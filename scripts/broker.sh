#!/usr/bin/env bash
# A private MQTT broker (mosquitto) on 127.0.0.1 and a free port, for tests and the demo.
# Idempotent: `start` reuses a broker this script started that still runs.
#
#   scripts/broker.sh start   install mosquitto when missing, start it
#   scripts/broker.sh stop    stop the broker this script started (by its pid file)
#   scripts/broker.sh env     print AUTOSCALER_MQTT__HOST=... and AUTOSCALER_MQTT__PORT=...
#
# A restart keeps the port and the broker's sessions (persistence on), so a test can stop and
# start it like a real outage. A second listener on the next free port asks for a password
# (user autoscaler, password in $BROKER_DIR/password), and a third speaks TLS with a certificate
# from a private CA ($BROKER_DIR/ca.crt), for the credential and TLS tests.
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
BROKER_DIR=$STATE_DIR/broker
PIDFILE=$BROKER_DIR/mosquitto.pid
PORTFILE=$BROKER_DIR/port
CONF=$BROKER_DIR/mosquitto.conf
LOG=$BROKER_DIR/mosquitto.log

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

broker_runs() {
    [ -f "$PORTFILE" ] && pid_runs "$PIDFILE" mosquitto
}

# Ports are kept across a stop and start (a restart); `reset` forgets them and the sessions.
reset() {
    stop
    rm -f "$PORTFILE" "$PORTFILE.auth" "$PORTFILE.tls" "$BROKER_DIR"/mosquitto.db "$BROKER_DIR"/*.crt "$BROKER_DIR"/*.key
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    need_cmd mosquitto mosquitto
    mkdir -p "$BROKER_DIR"
    if broker_runs; then
        log "broker already runs on 127.0.0.1:$(cat "$PORTFILE")"
        return
    fi
    local port auth_port tls_port
    port=$(cat "$PORTFILE" 2>/dev/null || echo "${AUTOSCALER_BROKER_PORT:-$(free_port)}")
    auth_port=$(cat "$PORTFILE.auth" 2>/dev/null || free_port)
    tls_port=$(cat "$PORTFILE.tls" 2>/dev/null || free_port)
    make_certificates "$BROKER_DIR"
    chmod 644 "$BROKER_DIR/server.key"  # mosquitto reads it as its own user
    [ -f "$BROKER_DIR/password" ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$BROKER_DIR/password"
    mosquitto_passwd -b -c "$BROKER_DIR/passwd" autoscaler "$(cat "$BROKER_DIR/password")"
    cat >"$CONF" <<CONF
per_listener_settings true
persistence true
persistence_location $BROKER_DIR/
listener $port 127.0.0.1
allow_anonymous true
listener $auth_port 127.0.0.1
allow_anonymous false
password_file $BROKER_DIR/passwd
listener $tls_port 127.0.0.1
allow_anonymous true
cafile $BROKER_DIR/ca.crt
certfile $BROKER_DIR/server.crt
keyfile $BROKER_DIR/server.key
log_dest stderr
log_type error
log_type warning
log_type notice
CONF
    mosquitto -c "$CONF" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "$port" >"$PORTFILE"
    echo "$auth_port" >"$PORTFILE.auth"
    echo "$tls_port" >"$PORTFILE.tls"
    for _ in $(seq 1 100); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2).close()" 2>/dev/null; then
            log "broker started on 127.0.0.1:$port (pid $(cat "$PIDFILE"))"
            return
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 20 "$LOG" >&2
    die "mosquitto did not listen on 127.0.0.1:$port (log: $LOG)"
}

stop() {
    stop_pidfile "$PIDFILE" mosquitto mosquitto
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    reset) reset ;;
    env)
        broker_runs || die "no broker started by this script runs"
        echo "AUTOSCALER_MQTT__HOST=127.0.0.1"
        echo "AUTOSCALER_MQTT__PORT=$(cat "$PORTFILE")"
        echo "AUTOSCALER_TEST_BROKER_AUTH_PORT=$(cat "$PORTFILE.auth")"
        echo "AUTOSCALER_TEST_BROKER_PASSWORD_FILE=$BROKER_DIR/password"
        echo "AUTOSCALER_TEST_BROKER_TLS_PORT=$(cat "$PORTFILE.tls")"
        echo "AUTOSCALER_TEST_BROKER_CA_FILE=$BROKER_DIR/ca.crt"
        ;;
    *) die "usage: $0 start|stop|env" ;;
esac
