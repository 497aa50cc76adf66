#!/usr/bin/env bash
# Make sure a container engine answers. On Debian as root, install docker.io and start dockerd
# when none does; everywhere else stop with a message saying what to install.
set -euo pipefail

engine_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_answers; then
  echo "ensure-engine: engine answers (server $(docker version --format '{{.Server.Version}}'))" >&2
  exit 0
fi

if [ "$(id -u)" != 0 ] || [ ! -f /etc/debian_version ]; then
  cat >&2 <<'MSG'
ensure-engine: no container engine answers.
  Install and start Docker (https://docs.docker.com/engine/install/) or Podman with its
  Docker-compatible socket, and set DOCKER_HOST if it is not /var/run/docker.sock.
  (On Debian as root this script installs docker.io and starts dockerd itself.)
MSG
  exit 3
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-engine: installing docker.io from Debian's archive" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2; }
fi

# A dockerd that was killed leaves its pid file behind and the next one refuses to start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
# A dockerd that has exited but is not yet reaped (a zombie, for a minute or more after a restart on
# some machines) is not one: count only live states.
if ! pgrep -x -r D,R,S,T dockerd >/dev/null 2>&1; then
  echo "ensure-engine: starting dockerd (log: /var/log/sandbox-install-dockerd.log)" >&2
  nohup dockerd >/var/log/sandbox-install-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if engine_answers; then
    echo "ensure-engine: engine answers (server $(docker version --format '{{.Server.Version}}'))" >&2
    exit 0
  fi
  sleep 1
done
echo "ensure-engine: dockerd did not answer within 60 s; see /var/log/sandbox-install-dockerd.log" >&2
exit 3
