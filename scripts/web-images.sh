#!/usr/bin/env bash
# The images of a web stack for the tests, the benchmarks and the demo, made without a registry
# on the engine DOCKER_HOST names:
#
#   autoscaler-test/web       scripts/webapp.c, built static here: a CPU-bound HTTP service
#   autoscaler-test/caddy     Debian's caddy and the libraries it links
#   autoscaler-test/haproxy   Debian's haproxy and the libraries it links
#
#   scripts/web-images.sh    build those that are missing (gcc, caddy and haproxy installed
#                            with apt when they are)
set -euo pipefail
: "${DOCKER_HOST:?web-images.sh needs DOCKER_HOST}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/lib.sh
. "$here/lib.sh"
use_platform

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

if ! have_image autoscaler-test/web:latest; then
    need_cmd gcc gcc
    mkdir -p "$root/web/etc" "$root/web/tmp"
    gcc -O2 -static -o "$root/web/webapp" "$here/webapp.c"
    import_image "$root/web" autoscaler-test/web:latest 'CMD ["/webapp"]' 'EXPOSE 8080'
fi

if ! have_image autoscaler-test/caddy:latest; then
    need_cmd caddy caddy
    mkdir -p "$root/caddy/etc/caddy" "$root/caddy/data" "$root/caddy/config" "$root/caddy/tmp"
    with_libraries "$(command -v caddy)" "$root/caddy" /usr/bin/caddy
    import_image "$root/caddy" autoscaler-test/caddy:latest \
        'ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config HOME=/data' \
        'CMD ["/usr/bin/caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]'
fi

if ! have_image autoscaler-test/haproxy:latest; then
    need_cmd haproxy haproxy
    mkdir -p "$root/haproxy/etc" "$root/haproxy/usr/local/etc/haproxy" "$root/haproxy/run" \
        "$root/haproxy/tmp" "$root/haproxy/var/lib/haproxy"
    with_libraries "$(command -v haproxy)" "$root/haproxy" /usr/sbin/haproxy
    import_image "$root/haproxy" autoscaler-test/haproxy:latest \
        'CMD ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]'
fi
