"""A scriptable MCP client on the official Python SDK (`mcp` 2.x), for Warden's end-to-end tests.

    python client.py '<spec as JSON>'

spec = {
  "era": "legacy" | "auto" | "modern",
  "transport": {"type": "http", "url": ..., "headers": {...}} | {"type": "stdio", "command": ..., "args": [...]},
  "answers": {"sampling": {...}, "elicitation": {...}, "roots": [...]},   # a callback is registered per answer
  "logLevel": "debug",                                                    # optional
  "ops": [{"op": "listTools"}, {"op": "callTool", "name": ..., "arguments": {...}}, ...],
}

Prints one JSON object with the negotiated version and each op's result or error.
"""

import asyncio
import json
import sys
import warnings

import httpx2
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

warnings.simplefilter("ignore")
SPEC = json.loads(sys.argv[1])


def dump(v):
    if hasattr(v, "model_dump"):
        return v.model_dump(by_alias=True, exclude_none=True, mode="json")
    return v


async def main() -> dict:
    answers = SPEC.get("answers", {})
    server_requests = []
    notifications = []
    kwargs = {}

    if "sampling" in answers:
        async def on_sampling(ctx, params):
            server_requests.append({"method": "sampling/createMessage", "params": dump(params)})
            return types.CreateMessageResult.model_validate(answers["sampling"])
        kwargs["sampling_callback"] = on_sampling
    if "elicitation" in answers:
        async def on_elicit(ctx, params):
            server_requests.append({"method": "elicitation/create", "params": dump(params)})
            return types.ElicitResult.model_validate(answers["elicitation"])
        kwargs["elicitation_callback"] = on_elicit
    if "roots" in answers:
        async def on_roots(ctx):
            server_requests.append({"method": "roots/list", "params": None})
            return types.ListRootsResult(roots=[types.Root.model_validate(r) for r in answers["roots"]])
        kwargs["list_roots_callback"] = on_roots

    async def on_message(msg):
        if not isinstance(msg, Exception):
            notifications.append({"method": msg.method, "params": dump(getattr(msg, "params", None))})
    kwargs["message_handler"] = on_message
    if SPEC.get("logLevel"):
        kwargs["log_level"] = SPEC["logLevel"]

    era = SPEC.get("era", "auto")
    mode = {"legacy": "legacy", "auto": "auto", "modern": "2026-07-28"}[era]
    t = SPEC["transport"]
    out = {"connected": False, "ops": [], "notifications": notifications, "serverRequests": server_requests}
    http = None
    if t["type"] == "http":
        http = httpx2.AsyncClient(headers=t.get("headers", {}), timeout=httpx2.Timeout(30, read=60))
        target = streamable_http_client(t["url"], http_client=http)
    else:
        target = StdioServerParameters(command=t["command"], args=t.get("args", []), env=t.get("env"))
    try:
        async with Client(target, mode=mode, read_timeout_seconds=30, **kwargs) as client:
            out["connected"] = True
            out["version"] = client.protocol_version
            out["server"] = dump(client.server_info)
            for o in SPEC.get("ops", []):
                try:
                    out["ops"].append({"op": o["op"], "ok": True, "result": dump(await run_op(client, o))})
                except MCPError as e:
                    out["ops"].append({"op": o["op"], "ok": False, "error": {"code": e.code, "message": e.error.message, "data": e.error.data}})
                except Exception as e:  # noqa: BLE001 - the test decides what is right
                    out["ops"].append({"op": o["op"], "ok": False, "error": {"code": None, "message": f"{type(e).__name__}: {e}"}})
    except BaseException as e:  # noqa: BLE001
        if not out["connected"]:
            out["connectError"] = {"message": f"{type(e).__name__}: {e}"}
        else:
            out["closeError"] = {"message": f"{type(e).__name__}: {e}"}
    finally:
        if http is not None:
            await http.aclose()
    return out


async def run_op(client, o):
    op = o["op"]
    if op == "listTools":
        return await client.list_tools()
    if op == "callTool":
        progress = []

        async def on_progress(p, total, message):
            progress.append({"progress": p, "total": total, "message": message})
        r = dump(await client.call_tool(o["name"], o.get("arguments", {}), progress_callback=on_progress if o.get("progress") else None))
        if o.get("progress"):
            r["__progress"] = progress
        return r
    if op == "listPrompts":
        return await client.list_prompts()
    if op == "getPrompt":
        return await client.get_prompt(o["name"], o.get("arguments", {}))
    if op == "listResources":
        return await client.list_resources()
    if op == "listResourceTemplates":
        return await client.list_resource_templates()
    if op == "readResource":
        return await client.read_resource(o["uri"])
    if op == "complete":
        ref = o["ref"]
        ref_obj = types.PromptReference(type="ref/prompt", name=ref["name"]) if ref["type"] == "ref/prompt" else types.ResourceTemplateReference(type="ref/resource", uri=ref["uri"])
        return await client.complete(ref_obj, o["argument"])
    if op == "setLevel":
        return await client.set_logging_level(o["level"])
    if op == "ping":
        return await client.send_ping()
    if op == "sleep":
        await asyncio.sleep(o["ms"] / 1000)
        return {}
    raise ValueError(f"unknown op {op}")


print(json.dumps(asyncio.run(main())))
