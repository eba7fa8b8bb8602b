#!/usr/bin/env bash
# A private Prometheus (Debian's package) on 127.0.0.1 and a free port, for the metric-source
# tests and benchmark. It scrapes, every second, one target on another free port of 127.0.0.1
# that the tests serve themselves (an exporter whose values they set). Idempotent.
#
#   scripts/prometheus.sh start   install prometheus when missing, start it
#   scripts/prometheus.sh stop    stop the one this script started (by its pid file)
#   scripts/prometheus.sh env     print AUTOSCALER_TEST_PROMETHEUS_URL=... and the exporter port
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
DIR=$STATE_DIR/prometheus
PIDFILE=$DIR/prometheus.pid
PORTFILE=$DIR/port
EXPORTER=$DIR/exporter-port
LOG=$DIR/prometheus.log

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

runs() {
    [ -f "$PORTFILE" ] && pid_runs "$PIDFILE" prometheus
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    need_cmd prometheus prometheus
    mkdir -p "$DIR"
    if runs; then
        log "prometheus already runs on 127.0.0.1:$(cat "$PORTFILE")"
        return
    fi
    local port exporter
    port=$(cat "$PORTFILE" 2>/dev/null || free_port)
    exporter=$(cat "$EXPORTER" 2>/dev/null || free_port)
    cat >"$DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: ["127.0.0.1:$exporter"]
CONF
    prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
        --web.listen-address="127.0.0.1:$port" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "$port" >"$PORTFILE"
    echo "$exporter" >"$EXPORTER"
    for _ in $(seq 1 150); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/-/ready', timeout=1)" 2>/dev/null; then
            log "prometheus started on 127.0.0.1:$port (pid $(cat "$PIDFILE")), scraping 127.0.0.1:$exporter"
            return
        fi
        kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break
        sleep 0.2
    done
    tail -n 20 "$LOG" >&2
    die "prometheus did not become ready on 127.0.0.1:$port (log: $LOG)"
}

case ${1:-} in
    start) start ;;
    stop) stop_pidfile "$PIDFILE" prometheus prometheus ;;
    env)
        runs || die "no prometheus started by this script runs"
        echo "AUTOSCALER_TEST_PROMETHEUS_URL=http://127.0.0.1:$(cat "$PORTFILE")"
        echo "AUTOSCALER_TEST_EXPORTER_PORT=$(cat "$EXPORTER")"
        ;;
    *) die "usage: $0 start|stop|env" ;;
esac
