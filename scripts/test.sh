#!/usr/bin/env bash
# The whole test suite: unit tests, end-to-end tests driving the real `warden` binary with the
# official MCP SDK clients against real servers, and the conformance comparison.
#
#   scripts/test.sh [extra cargo test arguments]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$ROOT/scripts/install-peers.sh"
cd "$ROOT"
cargo test --workspace "$@"
