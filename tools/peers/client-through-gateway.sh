#!/usr/bin/env bash
# Puts a Portcullis gateway between a conformance client and the suite's mock server.
#
#   tools/peers/client-through-gateway.sh PORTCULLIS CLIENT [ARGS…] URL
#
# The suite runs this as the client command and appends the mock server's URL: the
# script starts `PORTCULLIS run` with that URL as its only (HTTP) upstream, waits for
# the gateway's address, then runs `CLIENT ARGS… http://GATEWAY/mcp`. The scenario
# variables (MCP_CONFORMANCE_*) pass through to the client untouched.
set -euo pipefail
portcullis="$1"; shift
url="${*: -1}"
client=("${@:1:$#-1}")
dir="$(mktemp -d -t portcullis-through-gateway.XXXXXX)"
# The suite grades the protocol as the client sees it, so the upstream's revision is pinned to
# the scenario's instead of probed: the suite starts every scenario at once, and on a loaded
# CI machine the 5 s `server/discover` probe of `protocol = "auto"` can time out, after which
# the gateway also tries `initialize` (still finding a 2026-07-28 server by its late answer),
# and a grading 2026-07-28 mock would count that greeting against the client. Auto-detection
# has its own tests (tests/tests/e2e/revisions.rs).
case "${MCP_CONFORMANCE_PROTOCOL_VERSION:-}" in
    "") protocol="auto" ;;
    2026-07-28) protocol="modern" ;;
    *) protocol="legacy" ;;
esac
cat > "$dir/portcullis.toml" <<TOML
[listen]
http = "127.0.0.1:0"

[policy]
cedar = ["allow-all.cedar"]   # the suite grades the protocol; every call is permitted

[audit]
path = "audit"

[[servers]]
name = "mock"
url = "$url"
protocol = "$protocol"
TOML
printf '@id("allow-all")\npermit (principal, action, resource);\n' > "$dir/allow-all.cedar"
"$portcullis" --log-format json run --config "$dir/portcullis.toml" 2>"$dir/gateway.log" &
gateway=$!
trap 'kill "$gateway" 2>/dev/null; wait "$gateway" 2>/dev/null; rm -rf "$dir"' EXIT
addr=""
for _ in $(seq 1 200); do
    addr="$(grep -o 'listening on http://[0-9.:]*' "$dir/gateway.log" | head -1 | sed 's/listening on //')" || true
    [[ -n "$addr" ]] && break
    kill -0 "$gateway" 2>/dev/null || { cat "$dir/gateway.log" >&2; exit 1; }
    sleep 0.05
done
[[ -n "$addr" ]] || { echo "gateway did not start" >&2; cat "$dir/gateway.log" >&2; exit 1; }
"${client[@]}" "$addr/mcp"
