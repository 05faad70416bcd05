"""A desktop host, played by the official MCP Python SDK (tools/peers/requirements.txt).

It launches `portcullis stdio --config CONFIG` from another working directory, as Claude
Desktop, VS Code or Cursor do, lists the tools, and on command calls a read tool with the
model-style reason argument (`portcullis_reason`), the way a model fills a required schema
field. The test driving it (tests/tests/e2e/desktop_hosts.rs) speaks to it in lines:

    stdout: {"event": "ready", "tools": [...], "reason_required": true, "protocol": "2025-11-25"}
    stdin:  call                (calls search_docs with a reason; as often as asked)
    stdout: {"event": "result", "is_error": false, "text": "...", "reason": "..."}
    stdin:  close               (ends the session: the SDK closes stdin, waits, then signals)
    stdout: {"event": "closed"}

Any failure is printed as {"event": "error", "error": "..."} and the script exits 1.
"""

import argparse
import json
import sys

import anyio
import anyio.to_thread
from mcp import Client
from mcp.client.stdio import StdioServerParameters


def say(event: str, **fields) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def next_command() -> str:
    return (await anyio.to_thread.run_sync(sys.stdin.readline)).strip()


def text_of(result) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--portcullis", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--mode", default="legacy")
    args = parser.parse_args()

    server = StdioServerParameters(
        command=args.portcullis,
        args=["stdio", "--config", args.config],
        cwd=args.cwd,
    )
    async with Client(server, mode=args.mode, read_timeout_seconds=60) as client:
        listed = await client.list_tools()
        tools = [t.name for t in listed.tools]
        search = next(t for t in listed.tools if t.name == "search_docs")
        required = "portcullis_reason" in (search.input_schema.get("required") or [])
        say("ready", tools=tools, reason_required=required, protocol=client.protocol_version)

        calls = 0
        while (command := await next_command()) == "call":
            calls += 1
            reason = f"{args.name} call {calls}: a customer asked about refunds"
            result = await client.call_tool("search_docs", {"query": "refund", "portcullis_reason": reason})
            say("result", is_error=bool(result.is_error), text=text_of(result), reason=reason)
        if command != "close":
            raise RuntimeError(f"expected 'call' or 'close' from the test, got {command!r}")
    say("closed")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except BaseException as e:  # noqa: BLE001 - the test reads every failure from stdout
        say("error", error=repr(e))
        sys.exit(1)
