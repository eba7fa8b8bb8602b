#!/bin/sh
# Load generator for the demo and the tests; runs in the busybox test image.
#
# Models a total CPU demand shared by the live replicas, so the replica count the demand needs is
# known: /load/demand holds the demand in millicores (of one core); every replica announces itself
# by touching /load/replicas/<hostname> each second, counts the announcements of the last 2 s, and
# burns its share demand/replicas as a duty cycle of 100 ms periods (the CFS period, so a CPU
# limit throttles it evenly). With a CPU limit of L millicores and a target of T %, the demand D
# needs ceil(D / (L * T / 100)) replicas.
#
# The burner is one `yes` process paused and resumed with SIGSTOP/SIGCONT, so a period costs two
# builtin kills and two sleeps rather than a fork: the generator's own overhead stays near zero.
dir=${LOAD_DIR:-/load}
me="$dir/replicas/$(hostname)"
mkdir -p "$dir/replicas"
yes >/dev/null &
burner=$!
kill -STOP "$burner"
# IGNORE_TERM=1 makes a replica that a graceful stop cannot end (only the stop timeout's kill).
if [ -n "${IGNORE_TERM:-}" ]; then
    trap '' TERM
else
    trap 'kill -KILL "$burner"; rm -f "$me"; exit 0' TERM INT
fi
share=0
tick=0
while :; do
    if [ $((tick % 10)) -eq 0 ]; then
        touch "$me"
        now=$(date +%s)
        n=0
        for f in "$dir"/replicas/*; do
            [ -e "$f" ] || continue
            [ $((now - $(stat -c %Y "$f"))) -le 2 ] && n=$((n + 1))
        done
        [ "$n" -gt 0 ] || n=1
        demand=$(cat "$dir/demand" 2>/dev/null) || demand=0
        share=$((${demand:-0} / n))
    fi
    tick=$((tick + 1))
    if [ "$share" -le 0 ]; then
        tick=0
        sleep 1
        continue
    fi
    burn=$((share >= 1000 ? 100000 : share * 100))
    kill -CONT "$burner"
    usleep "$burn"
    kill -STOP "$burner"
    [ "$burn" -lt 100000 ] && usleep $((100000 - burn))
done
