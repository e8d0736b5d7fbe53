#!/usr/bin/env bash
# Runs the official MCP conformance suite's server scenarios against the reference server directly
# and through Warden, for 2025-11-25 and 2026-07-28, and fails if any scenario or check passes
# directly but not through the gateway (see docs/conformance.md).
#
#   tests/conformance/run.sh [path/to/warden]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WARDEN=${1:-$ROOT/target/debug/warden}
OUT=${CONFORMANCE_OUT:-$ROOT/target/conformance}
SUITE_VERSION=0.2.0-alpha.12
SUITE=(npx -y -p node@22 -p "@modelcontextprotocol/conformance@$SUITE_VERSION" conformance)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listened on $1" >&2; return 1; }

rm -rf "$OUT" && mkdir -p "$OUT"
REF_PORT=$(free_port)
GW_PORT=$(free_port)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

(cd "$ROOT/tests/peers/node" && PORT=$REF_PORT exec node conformance_server.mjs) >"$OUT/reference.log" 2>&1 &
PIDS+=($!)
wait_port "$REF_PORT"

cat >"$OUT/warden.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GW_PORT"

# The suite calls the reference server's tools by their own names, so they are exposed
# unprefixed. The server sends 2025-era sampling requests on the session's stream, which only a
# connection owned by one client can route.
[servers.reference]
url = "http://localhost:$REF_PORT/mcp"
namespace = ""
isolation = "session"
# The suite's tools would otherwise taint each context and hold its writes for approval.
trusted_content = true
trusted_resources = true

# The reference server is local: Warden's own connections reach loopback only when listed.
[egress]
allow = ["127.0.0.1:$REF_PORT", "[::1]:$REF_PORT"]

# The suite exercises the protocol, not authorization: everything is permitted.
[policy]
files = ["permit-all.cedar"]
TOML
cat >"$OUT/permit-all.cedar" <<'CEDAR'
@id("conformance-permit-all")
permit (principal, action, resource);
CEDAR
WARDEN_LOG=info "$WARDEN" serve --config "$OUT/warden.toml" >"$OUT/warden.log" 2>&1 &
PIDS+=($!)
wait_port "$GW_PORT"

for req in 2025-11-25 2026-07-28; do
  for target in direct gateway; do
    port=$REF_PORT; [ "$target" = gateway ] && port=$GW_PORT
    echo "== conformance $req, $target"
    # The suite exits non-zero when a scenario fails; the comparison below decides.
    "${SUITE[@]}" server --url "http://localhost:$port/mcp" --requirements "$req" -o "$OUT/$target-$req" >"$OUT/$target-$req.txt" 2>&1 || true
    grep -E "^Total:" "$OUT/$target-$req.txt" || { echo "the suite did not run:"; tail -20 "$OUT/$target-$req.txt"; exit 1; }
  done
done
python3 "$ROOT/tests/conformance/compare.py" "$OUT" "$ROOT/tests/conformance/known-differences.txt"
