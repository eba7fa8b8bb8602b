#!/usr/bin/env sh
# The secrets deploy/compose.autoscaler.yaml and deploy/stack.yaml read, made once, before the
# first deploy, into DIR (default: deploy/secrets, beside this script; keep it out of git):
#
#   api-token                 the token the page, /status and `autoscaler explain` ask for
#   mqtt-autoscaler-password  the broker passwords of the users in deploy/mqtt/acl
#   mqtt-agent-password
#   mqtt-viewer-password
#   mqtt-passwords            the broker's password file: those three, hashed (mosquitto_passwd)
#
#   sh deploy/secrets.sh [DIR]
#   NODES="<node id> ..." sh deploy/secrets.sh [DIR]
# With NODES (a Swarm's node IDs, `docker node ls -q`), each node's agent gets a broker user of
# its own, named as its node, and a password `mqtt-agent-<node id>-password` (deploy/agents.sh
# makes the stack file that runs them so). Files already there are kept: run it again after
# removing one to make that one anew; a user not yet in the password file is added to it (the
# broker reads the new file once its secret is replaced). The hashes are made by
# mosquitto_passwd, or by the broker image's where it is not installed.
set -eu
dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p "$dir"
umask 077
random() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
users="autoscaler agent viewer"
for node in ${NODES:-}; do
    case $node in
        *[!A-Za-z0-9_-]* | "") echo "secrets.sh: '$node' is no node id" >&2; exit 2 ;;
    esac
    users="$users agent-$node"
done
for user in $users; do
    [ -s "$dir/mqtt-$user-password" ] || random >"$dir/mqtt-$user-password"
done
[ -s "$dir/api-token" ] || random >"$dir/api-token"
[ -e "$dir/mqtt-passwords" ] || : >"$dir/mqtt-passwords"
for user in $users; do
    name=${user#agent-}  # a node's agent is the user named as its node
    [ "$user" = agent ] && name=agent
    grep -q "^$name:" "$dir/mqtt-passwords" && continue
    password=$(cat "$dir/mqtt-$user-password")
    if command -v mosquitto_passwd >/dev/null 2>&1; then
        mosquitto_passwd -b "$dir/mqtt-passwords" "$name" "$password"
    else
        docker run --rm -v "$dir:/secrets" "${BROKER_IMAGE:-eclipse-mosquitto:2}" \
            mosquitto_passwd -b /secrets/mqtt-passwords "$name" "$password"
    fi
done
# Readable inside the containers by users other than this one (the broker's `mosquitto`); on
# this host, by nobody else: the folder is this user's alone.
chmod 700 "$dir"
chmod 644 "$dir"/*
echo "secrets in $dir"
