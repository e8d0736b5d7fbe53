"""A hostile MCP server (stdio, 2025-11-25) that tries to break out of Warden's sandbox, for the
end-to-end tests of `sandbox = "strict"`.

Tool `probe` (arguments: `read` — paths to read, `write` — paths to create, `connect` — "host:port"
addresses, `fetch` — "host:port" targets reached through the proxy its environment names
(`HTTPS_PROXY`, Warden's egress proxy), `plain_http` — a URL fetched as a plain-http proxy request,
`ptrace_parent` — bool, `syscalls` — bool: a raw socket and a new user namespace, `forks` — a
number of processes to start at once, `bench` — {target, n}: timed connections, for
scripts/bench-egress-proxy.py) tries each and answers with a JSON object mapping each
attempt to "allowed…" or "refused: <reason>". It also reports `tmp_write` (a file in its own $TMPDIR) and
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


def proxy_request(head):
    proxy = os.environ.get("HTTPS_PROXY", "")
    if not proxy.startswith("http://"):
        return None, "refused: no proxy in the environment"
    host, port = proxy[len("http://"):].rstrip("/").rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(head.encode())
    return s, None


def read_all(s, limit=4096):
    data = b""
    while len(data) < limit:
        chunk = s.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def fetch(target):
    """CONNECT through the proxy, then a plain request down the tunnel."""
    try:
        s, why = proxy_request("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
        if s is None:
            return why
        with s:
            status = b""
            while b"\r\n\r\n" not in status and len(status) < 4096:
                chunk = s.recv(1)
                if not chunk:
                    break
                status += chunk
            line = status.split(b"\r\n", 1)[0].decode(errors="replace")
            if " 200 " not in line + " ":
                body = read_all(s).strip()
                return "refused: %s %s" % (line, body)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return "allowed: " + read_all(s).strip().splitlines()[-1]
    except OSError as e:
        return "refused: " + (os.strerror(e.errno) if e.errno else str(e))


def plain_http(url):
    try:
        s, why = proxy_request("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % url)
        if s is None:
            return why
        with s:
            reply = read_all(s)
            line = reply.split("\r\n", 1)[0]
            return ("allowed: " if " 200 " in line else "refused: ") + line + " " + reply.split("\r\n\r\n", 1)[-1].strip()
    except OSError as e:
        return "refused: " + (os.strerror(e.errno) if e.errno else str(e))


def forks(n):
    """Starts up to n processes that sleep, counts them, and stops them all."""
    children = []
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                import time
                time.sleep(30)
                os._exit(0)
            children.append(pid)
        return "allowed: %d processes" % len(children)
    except OSError as e:
        return "refused after %d processes: %s" % (len(children), os.strerror(e.errno) if e.errno else str(e))
    finally:
        import signal
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def bench(spec):
    """Connections to spec["target"] ("host:port", an HTTP/1.0 server): n new ones (through the
    proxy in the environment when there is one, else direct), each with one request, then n
    requests on one kept connection. Mean microseconds of each."""
    import time
    target, n = spec["target"], int(spec.get("n", 200))
    host, port = target.rsplit(":", 1)
    proxied = os.environ.get("HTTPS_PROXY", "").startswith("http://")

    def open_conn():
        if not proxied:
            return socket.create_connection((host, int(port)), timeout=5)
        s, why = proxy_request("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target))
        if s is None:
            raise OSError(why)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1)
            if not chunk:
                raise OSError("proxy closed")
            head += chunk
        if b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
            raise OSError(head.decode(errors="replace"))
        return s

    def request(s):
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while b"\n" not in data.split(b"\r\n\r\n", 1)[-1] or b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk

    t = time.perf_counter()
    for _ in range(n):
        with open_conn() as s:
            request(s)
    per_conn = (time.perf_counter() - t) / n * 1e6
    with open_conn() as s:
        t = time.perf_counter()
        for _ in range(n):
            request(s)
        per_req = (time.perf_counter() - t) / n * 1e6
    return {"proxied": proxied, "connect_and_request_us": round(per_conn, 1), "request_us": round(per_req, 1)}


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
    for t in args.get("fetch", []):
        key = "fetch " + t
        while key in out:
            key += " again"
        out[key] = fetch(t)
    if args.get("plain_http"):
        out["plain http " + args["plain_http"]] = plain_http(args["plain_http"])
    if args.get("forks"):
        out["fork %d" % args["forks"]] = forks(int(args["forks"]))
    if args.get("bench"):
        out["bench"] = bench(args["bench"])
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
        "fetch": {"type": "array", "items": {"type": "string"}},
        "plain_http": {"type": "string"},
        "forks": {"type": "integer"},
        "bench": {"type": "object"},
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
