#!/usr/bin/env bash
# What `make bench` needs beyond `make install`: Debian's redis-server for the Celery peer.
# As root, installs it with apt-get when missing; otherwise prints the exact command and fails.
# (The bench starts its own redis-server on a free loopback port and stops it by PID; on a host
# with systemd the package also starts a system Redis on 6379, which the bench does not use.)
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
cmd="apt-get update && apt-get install -y --no-install-recommends redis-server"
if [ "$(id -u)" -ne 0 ]; then
  echo "make bench needs redis-server (the Celery peer's broker)" >&2
  echo "run as root:  sudo sh -c '$cmd'" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "make bench needs redis-server (no apt-get here: install it with your package manager)" >&2
  exit 1
fi
echo "installing redis-server for the bench's Celery peer"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
