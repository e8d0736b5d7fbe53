"""A hostile MCP server (stdio, 2025-11-25) that tries to break out of Warden's sandbox, for the
end-to-end tests of `sandbox = "strict"`.

Tool `probe` (arguments: `read` — paths to read, `write` — paths to create, `connect` — "host:port"
addresses, `ptrace_parent` — bool, `syscalls` — bool: a raw socket and a new user namespace) tries each and answers with a JSON object mapping each attempt to
"allowed" or "refused: <reason>". It also reports `tmp_write` (a file in its own $TMPDIR) and
`interfaces` (the network interfaces it can see).

Outside addresses are only tried when the server sees no interface but loopback, that is, when it
is in a network namespace of its own: if the sandbox failed, it reports "skipped: the network is
the host's" rather than send a packet off this machine.

Standard library only.
"""

import ctypes
import json
import os
import socket
import sys


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def attempt(fn):
    try:
        fn()
        return "allowed"
    except OSError as e:
        return "refused: " + (os.strerror(e.errno) if e.errno else str(e))


def read(path):
    with open(path, "rb") as f:
        f.read(16)


def write(path):
    with open(path, "w") as f:
        f.write("written by the sandbox probe")


def connect(addr, own_netns):
    host, port = addr.rsplit(":", 1)
    if not own_netns and not host.startswith("127."):
        return "skipped: the network is the host's"
    def go():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((host, int(port)))
        finally:
            s.close()
    return attempt(go)


def ptrace_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH = 16
    if libc.ptrace(PTRACE_ATTACH, os.getppid(), None, None) == 0:
        libc.ptrace(17, os.getppid(), None, None)  # PTRACE_DETACH
        return "allowed"
    return "refused: " + os.strerror(ctypes.get_errno())


def unshare():
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWUSER = 0x10000000
    if libc.unshare(CLONE_NEWUSER) == 0:
        return "allowed"
    return "refused: " + os.strerror(ctypes.get_errno())


def probe(args):
    interfaces = sorted(name for _, name in socket.if_nameindex())
    own_netns = interfaces == ["lo"]
    out = {"interfaces": interfaces}
    for p in args.get("read", []):
        out["read " + p] = attempt(lambda: read(p))
    for p in args.get("write", []):
        out["write " + p] = attempt(lambda: write(p))
    for a in args.get("connect", []):
        out["connect " + a] = connect(a, own_netns)
    if args.get("ptrace_parent"):
        out["ptrace parent"] = ptrace_parent()
    if args.get("syscalls"):
        out["raw socket"] = attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close())
        out["new namespace"] = unshare()
    tmp = os.environ.get("TMPDIR", "/tmp")
    out["tmp_write"] = attempt(lambda: write(os.path.join(tmp, "probe.txt")))
    return out


TOOL = {
    "name": "probe",
    "description": "Tries to read, write, connect and trace, and reports what was allowed.",
    "inputSchema": {"type": "object", "properties": {
        "read": {"type": "array", "items": {"type": "string"}},
        "write": {"type": "array", "items": {"type": "string"}},
        "connect": {"type": "array", "items": {"type": "string"}},
        "ptrace_parent": {"type": "boolean"},
        "syscalls": {"type": "boolean"},
    }},
}


def main():
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        mid, method = msg.get("id"), msg.get("method")
        if mid is None:
            continue
        if method == "initialize":
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "protocolVersion": msg["params"].get("protocolVersion", "2025-11-25"),
                "capabilities": {"tools": {}}, "serverInfo": {"name": "sandbox-probe", "version": "1"}}})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [TOOL]}})
        elif method == "tools/call":
            result = probe(msg["params"].get("arguments") or {})
            send({"jsonrpc": "2.0", "id": mid, "result": {
                "content": [{"type": "text", "text": json.dumps(result)}], "structuredContent": result}})
        elif method == "ping":
            send({"jsonrpc": "2.0", "id": mid, "result": {}})
        else:
            send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "method not found"}})


if __name__ == "__main__":
    main()
