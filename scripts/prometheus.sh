#!/usr/bin/env bash
# A private Prometheus (Debian's package) on 127.0.0.1 and a free port, for the metric-source
# tests and benchmark. It scrapes, every second, eight targets on other free ports of 127.0.0.1
# that the tests serve themselves (an exporter whose values they set; one a test process, as
# `make test` runs several). Idempotent.
#
#   scripts/prometheus.sh start   install prometheus when missing, start it
#   scripts/prometheus.sh stop    stop the one this script started (by its pid file)
#   scripts/prometheus.sh env     print AUTOSCALER_TEST_PROMETHEUS_URL=... and the exporters' ports
set -euo pipefail

STATE_DIR=${AUTOSCALER_STATE_DIR:-${TMPDIR:-/tmp}/compose-autoscaler}
DIR=$STATE_DIR/prometheus
PIDFILE=$DIR/prometheus.pid
PORTFILE=$DIR/port
EXPORTERS=$DIR/exporter-ports
TARGETS=8
LOG=$DIR/prometheus.log

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"

runs() {
    [ -f "$PORTFILE" ] && pid_runs "$PIDFILE" prometheus
}

# free_ports N: N distinct ports, free now and below the kernel's ephemeral range, comma-separated:
# an exporter's port is bound only while a test serves it, and in between any outgoing connection
# could be given it as its own end.
EPHEMERAL_LOW=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
free_ports() {
    python3 - "$EPHEMERAL_LOW" "$1" <<'PY'
import random, socket, sys
low, wanted = int(sys.argv[1]), int(sys.argv[2])
found = []
for _ in range(200 * wanted):
    port = random.randrange(max(low // 2, 1024), low)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    if port not in found:
        found.append(port)
    if len(found) == wanted:
        break
else:
    sys.exit("no free ports below the ephemeral range")
print(",".join(map(str, found)))
PY
}

# cached FILE: the ports a file keeps, if they all still lie below the ephemeral range.
cached() {
    local ports port
    ports=$(cat "$1" 2>/dev/null || true)
    [ -n "$ports" ] || return 0
    for port in ${ports//,/ }; do
        [ "$port" -lt "$EPHEMERAL_LOW" ] || return 0
    done
    echo "$ports"
}

start() {
    need_cmd prometheus prometheus
    mkdir -p "$DIR"
    if runs; then
        log "prometheus already runs on 127.0.0.1:$(cat "$PORTFILE")"
        return
    fi
    local port exporters targets
    port=$(cached "$PORTFILE")
    port=${port:-$(free_ports 1)}
    exporters=$(cached "$EXPORTERS")
    exporters=${exporters:-$(free_ports "$TARGETS")}
    targets=$(printf '"127.0.0.1:%s", ' ${exporters//,/ })
    cat >"$DIR/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [${targets%, }]
CONF
    prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
        --web.listen-address="127.0.0.1:$port" >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    echo "$port" >"$PORTFILE"
    echo "$exporters" >"$EXPORTERS"
    for _ in $(seq 1 150); do
        if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/-/ready', timeout=1)" 2>/dev/null; then
            log "prometheus started on 127.0.0.1:$port (pid $(cat "$PIDFILE")), scraping 127.0.0.1:{$exporters}"
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
        echo "AUTOSCALER_TEST_EXPORTER_PORTS=$(cat "$EXPORTERS")"
        ;;
    *) die "usage: $0 start|stop|env" ;;
esac
