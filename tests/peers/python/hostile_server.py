"""A deliberately badly behaved MCP server (stdio, 2025-11-25), for Warden's end-to-end tests.

It answers `initialize` and lists its tools properly; each tool then misbehaves in one way:

  echo       behaves, so tests can show the connection still works after the others
  garbage    writes unreadable lines, a response to an id never sent, and a line over 5 MiB, then answers
  flood      writes `count` log notifications as fast as it can, then answers
  hang       never answers
  crash      exits with status 3 without answering
  deep       answers with a result nested 100 000 levels deep
  big        answers with a single frame of 6 MiB
  env        answers with its environment variables
  seen       answers with the notifications it has received (to observe cancellation)
  fake_input_required   answers with input_required, which a 2025-era server may not send
  not_object answers with a result that is a string
  misshapen  answers with a tools/call result whose content is a string (carrying a secret)
  future_block  answers with a content block of a type no MCP version defines, carrying a secret
             and a terminal escape, beside a text block
  orphan     starts `sleep 3617` in its process group, then exits without answering

Standard library only. Writes a marker line to stderr at start so tests can see stderr is logged.
"""

import json
import os
import sys
import time

seen = []


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def text(t):
    return {"content": [{"type": "text", "text": t}]}


TOOLS = [
    {"name": n, "description": d, "inputSchema": {"type": "object", "properties": {"count": {"type": "integer"}}}}
    for n, d in [
        ("echo", "Echoes its arguments."),
        ("garbage", "Writes garbage before answering."),
        ("flood", "Floods notifications before answering."),
        ("hang", "Never answers."),
        ("crash", "Exits without answering."),
        ("deep", "Answers with a deeply nested result."),
        ("big", "Answers with a frame over 4 MiB."),
        ("env", "Answers with its environment."),
        ("seen", "Answers with the notifications it received."),
        ("fake_input_required", "Answers with input_required."),
        ("not_object", "Answers with a string."),
        ("misshapen", "Answers with content that is not a list."),
        ("future_block", "Answers with a content block of an unknown type."),
        ("orphan", "Leaves a child behind and exits."),
    ]
]

sys.stderr.write("hostile-server: started, stderr marker 7f3a\n")
sys.stderr.flush()

for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    method, mid, params = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if mid is None:
        if method:
            seen.append({"method": method, "params": params})
        continue
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "hostile", "version": "1"},
        }})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        name = params.get("name")
        args = params.get("arguments") or {}
        if name == "echo":
            send({"jsonrpc": "2.0", "id": mid, "result": text(json.dumps(args))})
        elif name == "garbage":
            sys.stdout.write("this is not json\n")
            sys.stdout.write('{"jsonrpc": "1.0", "id": 1, "result": {}}\n')
            sys.stdout.write('{"jsonrpc": "2.0", "id": 987654, "result": {"stray": true}}\n')
            sys.stdout.write('{"jsonrpc": "2.0", "id": "x", "result": {}, "error": {"code": 1, "message": "both"}}\n')
            sys.stdout.write("\x00\x01\x02\xff\n")
            sys.stdout.write('{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"' + "A" * (5 * 1024 * 1024) + '"}}\n')
            sys.stdout.flush()
            send({"jsonrpc": "2.0", "id": mid, "result": text("after the garbage")})
        elif name == "flood":
            count = int(args.get("count", 100000))
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "flood " * 20}}) + "\n"
            for _ in range(count):
                sys.stdout.write(note)
            sys.stdout.flush()
            send({"jsonrpc": "2.0", "id": mid, "result": text("after the flood")})
        elif name == "hang":
            pass
        elif name == "crash":
            sys.stderr.write("hostile-server: crashing on purpose\n")
            sys.stderr.flush()
            os._exit(3)
        elif name == "deep":
            sys.stdout.write('{"jsonrpc":"2.0","id":' + json.dumps(mid) + ',"result":' + "[" * 100000 + "]" * 100000 + "}\n")
            sys.stdout.flush()
        elif name == "big":
            send({"jsonrpc": "2.0", "id": mid, "result": text("B" * (6 * 1024 * 1024))})
        elif name == "env":
            send({"jsonrpc": "2.0", "id": mid, "result": text(json.dumps(dict(os.environ)))})
        elif name == "seen":
            send({"jsonrpc": "2.0", "id": mid, "result": text(json.dumps(seen))})
        elif name == "fake_input_required":
            send({"jsonrpc": "2.0", "id": mid, "result": {"resultType": "input_required", "inputRequests": {
                "x": {"method": "sampling/createMessage", "params": {"messages": [], "maxTokens": 1}}}, "requestState": "forged"}})
        elif name == "not_object":
            send({"jsonrpc": "2.0", "id": mid, "result": "just a string"})
        elif name == "misshapen":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": "raw frame ghp_" + "B" * 36}})
        elif name == "future_block":
            send({"jsonrpc": "2.0", "id": mid, "result": {"content": [
                {"type": "hologram", "caption": "token ghp_" + "C" * 36 + " \u001b[31mred"},
                {"type": "text", "text": "ok"}]}})
        elif name == "orphan":
            import subprocess
            subprocess.Popen(["sleep", "3617"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os._exit(4)
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "Unknown tool"}})
    else:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}})
