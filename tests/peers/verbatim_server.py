"""Test peer (not a real MCP server): a 2025-11-25 stdio server that writes its answers as
hand-made text, for tests/tests/e2e/relay.rs and stdio_front.rs (a relayed answer reaches the client as the
bytes the server wrote, its id written anew; one the gateway would write otherwise is
written by the gateway). Its tools:
- `verbatim`: a result with an escaped character (`\\u0041`) and a space after a comma,
  whose text is the request line exactly as the server received it;
- `float`: a result with a float written as `1.0e2`.
"""
import json
import sys


def send_text(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    raw = line.rstrip("\n")
    if not raw.strip():
        continue
    msg = json.loads(raw)
    method, req_id = msg.get("method"), msg.get("id")
    if req_id is None or method is None:
        continue  # notifications and responses
    rid = json.dumps(req_id)
    if method == "initialize":
        send_text(json.dumps({"jsonrpc": "2.0", "id": req_id, "result": {
            "protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "verbatim", "version": "1.0.0"},
        }}, separators=(",", ":")))
    elif method == "tools/list":
        send_text(json.dumps({"jsonrpc": "2.0", "id": req_id, "result": {"tools": [
            {"name": "verbatim", "description": "Answers in hand-made text.", "inputSchema": {"type": "object"}},
            {"name": "float", "description": "Answers with a float.", "inputSchema": {"type": "object"}},
        ]}}, separators=(",", ":")))
    elif method == "tools/call" and msg["params"]["name"] == "verbatim":
        seen = json.dumps(raw)  # the request line as received, as a JSON string
        send_text('{"jsonrpc":"2.0","id":' + rid + ',"result":{"content":[{"type":"text","text":'
                  + seen + '},{"type":"text","text":"\\u0041"}], "isError":false}}')
    elif method == "tools/call":
        send_text('{"jsonrpc":"2.0","id":' + rid + ',"result":{"content":[],"structuredContent":{"t":1.0e2}}}')
    else:
        send_text(json.dumps({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "unknown"}}))
