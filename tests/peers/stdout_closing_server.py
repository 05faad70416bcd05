"""Fault-injection peer (not a real MCP server): a 2025-11-25 stdio server that answers the
handshake and tools/list, then, on the first tools/call, closes its stdout and stays alive
without answering (T23: a server that closes its stdout must fail pending calls at once,
not at each call's timeout). Used by tests/tests/e2e/failures.rs.
"""
import json
import os
import sys
import time


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    line = line.strip()
    if not line:
        continue
    msg = json.loads(line)
    method, req_id = msg.get("method"), msg.get("id")
    if req_id is None or method is None:
        continue  # notifications and responses
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": req_id, "result": {
            "protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "stdout-closing", "version": "1.0.0"},
        }})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": req_id, "result": {"tools": [
            {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}},
        ]}})
    elif method == "tools/call":
        sys.stdout.close()
        os.close(1)
        time.sleep(600)
    else:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "unknown"}})
