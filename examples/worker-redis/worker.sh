#!/bin/sh
# A worker of Redis' reliable-queue pattern, one job at a time, as the example's `worker` service
# runs it (scripts/worker-images.sh bakes it into autoscaler-test/worker with busybox and
# redis-cli). It stands in for a Celery or RQ worker, and behaves as theirs do when scaled down:
#
#   BLMOVE jobs processing LEFT RIGHT 1   take the oldest job (producers RPUSH), keeping it in
#                                         `processing`, atomically, while it is worked on: a
#                                         worker killed meanwhile leaves it there, never loses it
#   work                                  JOB_SECONDS of sleep (WORK=sleep) or of CPU (WORK=cpu)
#   MULTI LREM processing 1 <job>         done, in one transaction: out of `processing`, its id
#         RPUSH finished <job>            appended to `finished` and the count `done` one up
#         INCR done EXEC
#
# On SIGTERM (`docker stop`, the autoscaler's scale-down) it finishes the job it holds and exits
# 0; it never takes another. The trap only sets a flag: the shell runs it once the command in the
# foreground returns (the blocking pop waits 1 s at most, a job JOB_SECONDS), and the loop reads
# the flag between jobs. Give the service a stop_grace_period longer than one job.
#
# Settings (environment): REDIS_HOST (redis), REDIS_PORT (6379), QUEUE (jobs), WORK (sleep),
# JOB_SECONDS (0.5); where the server asks for a password, REDIS_USER and REDIS_PASSWORD_FILE
# (a Compose secret: /run/secrets/<name>).
set -u
: "${REDIS_HOST:=redis}" "${REDIS_PORT:=6379}" "${QUEUE:=jobs}"
: "${WORK:=sleep}" "${JOB_SECONDS:=0.5}"
case $WORK in
    sleep | cpu) ;;
    *) echo "worker: WORK=$WORK: sleep or cpu" >&2; exit 2 ;;
esac
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    # redis-cli reads the password from its environment: it never shows in `ps`.
    REDISCLI_AUTH=$(cat "$REDIS_PASSWORD_FILE") || exit 2
    export REDISCLI_AUTH
fi

# redis-cli exits 0 on an error reply: --no-raw tells them apart, a string "quoted", nothing
# (nil) and an error (error).
cli() {
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ${REDIS_USER:+--user "$REDIS_USER"} --no-raw "$@"
}

stopping=
trap 'stopping=1' TERM INT

# JOB_SECONDS of CPU time, counted by the kernel for a process of its own (utime + stime, in
# 1/100 s), so that a replica held at its CPU limit takes longer, as a real one does.
burn() {
    ticks=$(awk -v s="$JOB_SECONDS" 'BEGIN { printf "%d", s * 100 + 0.5 }')
    sh -c "while read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u s _ </proc/self/stat
           [ \$((u + s)) -lt $ticks ]; do :; done"
}

work() {
    if [ "$WORK" = cpu ]; then burn; else sleep "$JOB_SECONDS"; fi
}

# The job out of `processing`, counted once. Tried again while the server cannot be reached: a
# job worked on is never dropped by the worker itself. An error reply is only told: the
# transaction may have been applied in part, and a job left in `processing` is not lost.
finish() {
    until answer=$(printf 'MULTI\nLREM processing 1 "%s"\nRPUSH finished "%s"\nINCR done\nEXEC\n' \
        "$1" "$1" | cli 2>&1); do
        echo "worker: cannot reach the queue to finish $1, trying again: $answer" >&2
        sleep 1
    done
    case $answer in *'(error)'*) echo "worker: finishing $1: $answer" >&2 ;; esac
}

echo "worker $(hostname): taking jobs from $QUEUE at $REDIS_HOST:$REDIS_PORT ($WORK, ${JOB_SECONDS}s a job)"
waiting=
while [ -z "$stopping" ]; do
    answer=$(cli BLMOVE "$QUEUE" processing LEFT RIGHT 1 2>&1)
    case $answer in
        '(nil)') continue ;; # nothing came within the second: look at the flag again
        \"*\")
            job=${answer#\"}
            job=${job%\"}
            ;;
        *)
            # No server yet, or one that refuses: said once, tried again each second.
            [ -n "$waiting" ] || echo "worker: waiting for the queue: $answer" >&2
            waiting=1
            [ -n "$stopping" ] || sleep 1
            continue
            ;;
    esac
    waiting=
    work
    finish "$job"
    echo "done $job"
done
echo "worker $(hostname): SIGTERM: no job in hand, exiting"
exit 0
