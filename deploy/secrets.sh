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
# Files already there are kept: run it again after removing one to make that one anew. The
# hashes are made by mosquitto_passwd, or by the broker image's where it is not installed.
set -eu
dir=${1:-$(cd "$(dirname "$0")" && pwd)/secrets}
mkdir -p "$dir"
umask 077
random() { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
for name in api-token mqtt-autoscaler-password mqtt-agent-password mqtt-viewer-password; do
    [ -s "$dir/$name" ] || random >"$dir/$name"
done
if [ ! -s "$dir/mqtt-passwords" ]; then
    : >"$dir/mqtt-passwords"
    for user in autoscaler agent viewer; do
        password=$(cat "$dir/mqtt-$user-password")
        if command -v mosquitto_passwd >/dev/null 2>&1; then
            mosquitto_passwd -b "$dir/mqtt-passwords" "$user" "$password"
        else
            docker run --rm -v "$dir:/secrets" "${BROKER_IMAGE:-eclipse-mosquitto:2}" \
                mosquitto_passwd -b /secrets/mqtt-passwords "$user" "$password"
        fi
    done
fi
# Readable inside the containers by users other than this one (the broker's `mosquitto`); on
# this host, by nobody else: the folder is this user's alone.
chmod 700 "$dir"
chmod 644 "$dir"/*
echo "secrets in $dir"
