#!/bin/sh
# Load generator for the demo, the tests and the benchmarks; runs in the busybox test image.
#
# Models a total CPU demand shared by the live replicas, as a load balancer shares requests, so
# the replica count the demand needs is known: /load/demand holds the demand in millicores (of
# one core). Every replica writes the time into /load/replicas/<hostname> every 100 ms, counts
# the replicas heard from in the last 0.5 s, and burns its share demand/replicas as a duty cycle
# of 100 ms periods (the CFS period, so a CPU limit throttles it evenly). With a CPU limit of L
# millicores and a target of T %, the demand D needs ceil(D / (L * T / 100)) replicas.
#
# The total is kept: a new replica announces itself and only starts to burn 100 ms later, when
# every other replica has counted it (each counts every 100 ms) and lowered its own share (otherwise, for a moment, the old
# replicas would burn the old shares while the new one burns its own). A replica that is
# stopped removes its file; one that is killed is forgotten after 0.5 s.
#
# The share is burned in closed loop against the container's own CPU counter (its cgroup's
# cpuacct.usage, or usage_usec on cgroup v2), so the generator's own work counts towards it and
# what the autoscaler measures is the share itself. Nothing here forks in the loop: the burner is
# one `yes` process paused and resumed with SIGSTOP/SIGCONT, waits are `read -t` on a fifo nobody
# writes, the clock is /proc/uptime, and all of these are shell builtins.
dir=${LOAD_DIR:-/load}
me="$dir/replicas/$(hostname)"
mkdir -p "$dir/replicas"
fifo=/tmp/burn.wait
mkfifo "$fifo"
exec 3<>"$fifo"
yes >/dev/null &
burner=$!
kill -STOP "$burner"
# WARMUP: hundredths of a second before a new replica takes load (10 unless set): a process
# that starts slowly, or a balancer that finds it late. It announces itself 10 before that, so
# until then the others keep their shares, as a balancer that has not found it yet does.
warmup=${WARMUP:-10}
# IGNORE_TERM=1 makes a replica that a graceful stop cannot end (only the stop timeout's kill).
if [ -n "${IGNORE_TERM:-}" ]; then
    trap '' TERM
else
    trap 'kill -KILL "$burner"; rm -f "$me"; exit 0' TERM INT
fi

# now: hundredths of a second since boot, in $now.
clock() {
    read -r up _ </proc/uptime
    now=${up%.*}${up#*.}
}
# used: nanoseconds of CPU this container has used, in $used.
if [ -r /sys/fs/cgroup/cpuacct/cpuacct.usage ]; then
    usage() { read -r used </sys/fs/cgroup/cpuacct/cpuacct.usage; }
else
    usage() {
        read -r _ used </sys/fs/cgroup/cpu.stat
        used=$((used * 1000))
    }
fi
# wait_us N: sleep N microseconds (N > 0).
wait_us() {
    padded=000000$1
    read -r -t "$(($1 / 1000000)).${padded: -6}" _ <&3
}

clock
born=$now
last=$now
usage
goal=$used
share=0
while :; do
    clock
    # The demand is a rate in wall time: each pass adds the share for the time since the last
    # one (hundredths of a second, so a pass of 103 ms adds 10 or 11, 10.3 on average), not for
    # the 100 ms a pass is meant to take, which would leave out the loop's own time.
    elapsed=$((now - last))
    last=$now
    [ "$elapsed" -gt 50 ] && elapsed=50
    [ $((now - born)) -ge $((warmup - 10)) ] && echo "$now" >"$me"
    n=0
    for f in "$dir"/replicas/*; do
        read -r seen <"$f" 2>/dev/null || continue
        [ $((now - seen)) -le 50 ] && n=$((n + 1))
    done
    [ "$n" -gt 0 ] || n=1
    read -r demand <"$dir/demand" 2>/dev/null || demand=0
    share=$((${demand:-0} / n))
    [ $((now - born)) -lt "$warmup" ] && share=0
    # This pass's goal: the share's CPU time on top of the last one's (a millicore for a
    # hundredth of a second is 10 us), never more than 20 ms behind what was used: a throttled
    # replica cannot catch up, and must not try once it is no longer throttled (a backlog would
    # be demand beyond D).
    usage
    goal=$((goal + share * 10000 * elapsed))
    [ $((goal - used)) -gt 20000000 ] && goal=$((used + 20000000))
    [ "$goal" -lt "$used" ] && goal=$used
    burn=$(((goal - used) / 1000))
    if [ "$burn" -le 0 ]; then
        wait_us 100000
        continue
    fi
    kill -CONT "$burner"
    wait_us "$burn"
    kill -STOP "$burner"
    [ "$burn" -lt 100000 ] && wait_us $((100000 - burn))
done
