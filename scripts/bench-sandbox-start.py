#!/usr/bin/env python3
"""Start-up cost of the stdio sandbox: time from a client's first tools/list (which starts the
server) to its answer, through `warden run`, for the sandbox probe server with sandbox = "strict"
and "off", alternating, several rounds each. Prints the median per mode.

    python3 scripts/bench-sandbox-start.py [path/to/warden]
"""
import json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WARDEN = sys.argv[1] if len(sys.argv) > 1 else os.path.expanduser("~/.cache/warden/release-target/release/warden")
PY = os.path.join(ROOT, "tests/peers/.venv/bin/python")
PROBE = os.path.join(ROOT, "tests/peers/python/sandbox_probe.py")

def config(d, mode):
    open(os.path.join(d, "p.cedar"), "w").write('@id("all") permit (principal, action, resource);\n')
    path = os.path.join(d, mode + ".toml")
    grant = f'sandbox_read = ["{os.path.dirname(PROBE)}"]\n' if mode == "strict" else ""
    open(path, "w").write(f'[servers.probe]\ntrusted_content = true\ncommand = "{PY}"\nargs = ["{PROBE}"]\n'
                          f'sandbox = "{mode}"\n{grant}\n[policy]\nfiles = ["p.cedar"]\n')
    return path

def once(cfg):
    p = subprocess.Popen([WARDEN, "run", "--config", cfg], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env={"WARDEN_LOG": "error", "PATH": "/usr/bin:/bin"})
    def send(o):
        p.stdin.write((json.dumps(o) + "\n").encode()); p.stdin.flush()
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
          "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
    p.stdout.readline()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    t = time.perf_counter()
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    line = p.stdout.readline()
    ms = (time.perf_counter() - t) * 1000
    assert b"probe__probe" in line, line[:300]
    p.kill(); p.wait()
    return ms

with tempfile.TemporaryDirectory() as d:
    cfgs = {m: config(d, m) for m in ("strict", "off")}
    runs = {m: [] for m in cfgs}
    for _ in range(10):
        for m, c in cfgs.items():
            runs[m].append(once(c))
    for m, r in runs.items():
        print(f"{m}: median {statistics.median(r):.1f} ms (min {min(r):.1f}, max {max(r):.1f}, n={len(r)})")
