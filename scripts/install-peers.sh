#!/usr/bin/env bash
# Installs the MCP peers the end-to-end tests drive, at pinned versions: the official TypeScript
# SDK clients and reference servers from npm (tests/peers/node/package-lock.json), the Python SDK
# and Python reference servers from PyPI (tests/peers/python/requirements.lock), and the
# conformance suite (run with Node 22 through npx), and redis-server from Debian (the shared-state
# tests start their own on a free port). Safe to run again: it only installs what changed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)

cd "$ROOT/tests/peers/node"
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null && [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

cd "$ROOT/tests/peers"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/pip freeze 2>/dev/null | diff -q - python/requirements.lock >/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r python/requirements.lock
fi

# Fetch Node 22 and the conformance suite into npx's cache now, so the tests do not time out on it.
npx -y -p node@22 -p @modelcontextprotocol/conformance@0.2.0-alpha.12 conformance --version >/dev/null

# The shared-state tests run a Redis of their own; machines of this kind have it, a bare one may not.
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q redis-server >/dev/null
  else
    echo "redis-server is missing (Debian package redis-server): the shared-state tests need it" >&2
    exit 1
  fi
fi

# `warden report`'s test renders the report in headless Chromium (driven by playwright-core).
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q chromium >/dev/null
  else
    echo "chromium is missing (Debian package chromium): the report test needs it" >&2
    exit 1
  fi
fi
