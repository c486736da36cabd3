#!/usr/bin/env bash
# What the fault suite needs besides `make install`: Debian's faketime (libfaketime), which skews
# one reactor's clock in the clock-skew scenarios. As root, installs it with apt-get when missing;
# otherwise prints the command (those two scenarios then skip, saying why).
set -euo pipefail

if ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1; then
  exit 0
fi
cmd="apt-get update && apt-get install -y --no-install-recommends faketime"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: the clock-skew fault scenarios skip without libfaketime; as root: $cmd" >&2
  exit 0
fi
echo "installing system packages: faketime"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends faketime >/dev/null; }; then
  echo "note: faketime could not be installed; the clock-skew fault scenarios will skip" >&2
fi
