#!/usr/bin/env bash
# Runs a command in a network namespace made for the egress tests, with stand-in hosts and a
# name server of our own (python/standins.py), so that a test that expects a refusal can never
# reach a real outside address if the guard fails: the namespace has its own loopback and
# nothing else, a metadata-class address (169.254.169.254) and a public one (93.184.216.34) are
# aliases of that loopback, and its /etc/resolv.conf (bind-mounted in a mount namespace of its
# own) names the stand-in name server.
#
# Usage: unshare --net --mount -- bash netns.sh STATE_DIR COMMAND [ARGS...]
# The command's standard input and output are the caller's; the stand-ins log to STATE_DIR and
# stop with this script.
set -euo pipefail
STATE=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
mount --make-rprivate /
echo "nameserver 127.0.0.1" > "$STATE/resolv.conf"
mount --bind "$STATE/resolv.conf" /etc/resolv.conf
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip addr add 93.184.216.34/32 dev lo
PYTHON="$HERE/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" "$HERE/python/standins.py" "$STATE" > "$STATE/standins.log" 2>&1 < /dev/null &
STANDINS=$!
for _ in $(seq 100); do
  [ -f "$STATE/ready" ] && break
  sleep 0.05
done
[ -f "$STATE/ready" ] || { echo "the stand-ins did not start: $(cat "$STATE/standins.log")" >&2; exit 1; }
# The stand-ins also stop by themselves when this script goes (see standins.py).
trap 'kill "$STANDINS" 2>/dev/null || true' EXIT
"$@"
