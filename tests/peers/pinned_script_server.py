"""A minimal MCP stdio server (protocol 2025-11-25, one `echo` tool) launched through an
interpreter, the way `python server.py` servers are: the interpreter is the executable, this
script is the code. On start it appends a line to the marker file named by its first argument,
so a test can tell whether it was ever started. Used by tests/tests/e2e/pinned_files.rs (T19).

Usage: pinned_script_server.py MARKER_FILE
"""
import json
import sys

with open(sys.argv[1], "a") as marker:
    marker.write("started\n")


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
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "pinned-script", "version": "1.0.0"},
        }})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": req_id, "result": {"tools": [{
            "name": "echo",
            "description": "Returns its arguments.",
            "inputSchema": {"type": "object"},
        }]}})
    elif method == "tools/call":
        arguments = msg.get("params", {}).get("arguments", {})
        send({"jsonrpc": "2.0", "id": req_id, "result": {
            "content": [{"type": "text", "text": json.dumps(arguments)}],
        }})
    else:
        send({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "method not found"}})
