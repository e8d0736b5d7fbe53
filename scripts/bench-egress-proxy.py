#!/usr/bin/env python3
"""Cost of the egress proxy for a sandboxed server that fetches: the sandbox probe server, run by
`warden run`, opens new connections (each with one HTTP request) and then sends requests on one
kept connection to a local HTTP/1.1 keep-alive server, first sandboxed with an egress list (through
Warden's CONNECT proxy, each connection decided and audited) and then with sandbox = "off"
(direct). Alternates the two modes for several rounds and prints the medians.

    python3 scripts/bench-egress-proxy.py [path/to/warden] [connections per round]
"""
import json, os, socket, statistics, subprocess, sys, tempfile, threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARDEN = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/warden/release-target/release/warden")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
PY = os.path.join(ROOT, "tests/peers/.venv/bin/python")
PROBE = os.path.join(ROOT, "tests/peers/python/sandbox_probe.py")


def http_server():
    """A keep-alive HTTP/1.1 server answering every request with a short body."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)

    def conn(c):
        with c:
            buf = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    return
                buf += chunk
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=conn, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def config(d, mode, port):
    open(os.path.join(d, "p.cedar"), "w").write('@id("all") permit (principal, action, resource);\n')
    path = os.path.join(d, mode + ".toml")
    sandbox = f'sandbox = "strict"\nsandbox_read = ["{os.path.dirname(PROBE)}"]\negress = ["127.0.0.1:{port}"]\n' \
        if mode == "proxy" else 'sandbox = "off"\n'
    open(path, "w").write(f'[servers.probe]\ntrusted_content = true\ncommand = "{PY}"\nargs = ["{PROBE}"]\n{sandbox}\n'
                          f'[audit]\npath = "{d}/{mode}-audit.db"\n\n[policy]\nfiles = ["p.cedar"]\n')
    return path


def once(cfg, port):
    p = subprocess.Popen([WARDEN, "run", "--config", cfg], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env={"WARDEN_LOG": "error", "PATH": "/usr/bin:/bin"})

    def send(o):
        p.stdin.write((json.dumps(o) + "\n").encode())
        p.stdin.flush()
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
          "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    p.stdout.readline()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "probe__probe",
          "arguments": {"bench": {"target": f"127.0.0.1:{port}", "n": N}}}})
    reply = json.loads(p.stdout.readline())
    p.stdin.close()
    p.wait(timeout=30)
    out = reply["result"]["structuredContent"]["bench"]
    return out


port = http_server()
with tempfile.TemporaryDirectory() as d:
    cfgs = {m: config(d, m, port) for m in ("proxy", "off")}
    runs = {m: [] for m in cfgs}
    for _ in range(5):
        for m, c in cfgs.items():
            runs[m].append(once(c, port))
    for m, r in runs.items():
        assert all(x["proxied"] == (m == "proxy") for x in r), r
        conn = statistics.median(x["connect_and_request_us"] for x in r)
        req = statistics.median(x["request_us"] for x in r)
        print(f"{m}: new connection + request {conn:.0f} us, request on a kept connection {req:.0f} us "
              f"(medians of {len(r)} rounds of {N})")
