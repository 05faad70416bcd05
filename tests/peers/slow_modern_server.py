"""Fault-injection peer (not a real MCP server): a 2026-07-28-only stdio server that is slow
to answer `server/discover` (as on a cold start) and refuses `initialize`. The gateway's
`protocol = "auto"` detection must still find it modern. Used by tests/tests/e2e/revisions.rs.

Usage: slow_modern_server.py DELAY_SECONDS
"""
import json
import sys
import time

DELAY = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
MODERN = "2026-07-28"


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def result(req_id, value):
    send({"jsonrpc": "2.0", "id": req_id, "result": value})


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, req_id = msg.get("method"), msg.get("id")
    if req_id is None or method is None:
        continue  # notifications and responses
    if method == "server/discover":
        time.sleep(DELAY)
        result(req_id, {
            "resultType": "complete",
            "supportedVersions": [MODERN],
            "capabilities": {"tools": {}},
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "slow-modern", "version": "1.0.0"}},
        })
    elif method == "tools/list":
        result(req_id, {
            "resultType": "complete",
            "ttlMs": 0,
            "cacheScope": "private",
            "tools": [{
                "name": "echo",
                "description": "Returns its arguments and the request's _meta.",
                "inputSchema": {"type": "object"},
            }],
        })
    elif method == "tools/call":
        params = msg.get("params", {})
        echoed = {"arguments": params.get("arguments", {}), "_meta": params.get("_meta", {})}
        result(req_id, {
            "resultType": "complete",
            "content": [{"type": "text", "text": json.dumps(echoed)}],
            "structuredContent": echoed,
        })
    else:
        send({"jsonrpc": "2.0", "id": req_id,
              "error": {"code": -32601, "message": f"method not found: {method} (this server speaks {MODERN} only)"}})
