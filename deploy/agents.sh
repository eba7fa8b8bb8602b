#!/usr/bin/env sh
# A stack file that gives each node's agent a broker user of its own, over deploy/stack.yaml:
# instead of the one global `agent` service (one user, `agent`, for every node), a service a
# node, placed on it, connecting as the user named as its node's ID, which the ACL lets publish
# that node's samples alone (deploy/mqtt/acl). Make the users first, with the same IDs:
#
#   NODES="$(docker node ls -q | tr '\n' ' ')" sh deploy/secrets.sh
#   sh deploy/agents.sh $(docker node ls -q) > deploy/agents.yaml
#   docker stack deploy -c deploy/stack.yaml -c deploy/agents.yaml autoscaler
#
# A node that joins later needs its user and its service: run both again, and replace the
# broker's password secret (a Swarm secret cannot change in place).
set -eu
[ $# -gt 0 ] || { echo "usage: agents.sh <node id> ..." >&2; exit 2; }
cat <<'HEAD'
version: "3.8"

services:
  # The global agent is replaced by one agent a node, below.
  agent:
    deploy:
      mode: replicated
      replicas: 0
HEAD
for node in "$@"; do
    case $node in
        *[!A-Za-z0-9_-]* | "") echo "agents.sh: '$node' is no node id" >&2; exit 2 ;;
    esac
    cat <<SERVICE

  agent-$node:
    image: \${AUTOSCALER_IMAGE:-compose-autoscaler:latest}
    command: ["agent"]
    environment:
      DOCKER_HOST: unix:///run/engine-api/docker.sock
      AUTOSCALER_MQTT__HOST: mqtt
      AUTOSCALER_INTERVAL: \${AUTOSCALER_INTERVAL:-5}
      AUTOSCALER_MQTT__USERNAME: "$node"
      AUTOSCALER_MQTT__PASSWORD_FILE: /run/secrets/mqtt-agent-$node-password
    secrets: [mqtt-agent-$node-password]
    volumes:
      - agent-api:/run/engine-api
      - /sys/fs/cgroup:/sys/fs/cgroup:ro
    deploy:
      placement:
        constraints: [node.id == $node]
SERVICE
done
printf '\nsecrets:\n'
for node in "$@"; do
    printf '  mqtt-agent-%s-password:\n    file: ${AUTOSCALER_SECRETS:-./secrets}/mqtt-agent-%s-password\n' \
        "$node" "$node"
done
