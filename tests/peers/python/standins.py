"""Stand-in hosts and a name server for the egress tests, run inside a network namespace the test
created (tests/peers/netns.sh), where a metadata-class address (169.254.169.254) and a public
one (93.184.216.34) are aliases of the namespace's own loopback: nothing here can reach, or be
reached from, outside this machine.

Usage: standins.py STATE_DIR

- TCP on 169.254.169.254, 93.184.216.34 and 127.0.0.1:18080 (ports 80 and 443 for the first two):
  each connection is appended to STATE_DIR/hits as "address:port", answered with a plain HTTP
  reply naming the stand-in, and closed.
- DNS (UDP 127.0.0.1:53; the namespace's /etc/resolv.conf points here):
  public.test -> 93.184.216.34; metadata.test -> 169.254.169.254;
  rebind.test -> 93.184.216.34 the first time, 169.254.169.254 after (a rebinding name);
  mixed.test -> both; anything else: no such name; AAAA: no address.

STATE_DIR/ready is written once everything listens. They stop when their parent goes. Standard
library only.
"""

import os
import socket
import struct
import sys
import threading

STATE = sys.argv[1]
HITS = os.path.join(STATE, "hits")
lock = threading.Lock()
asked = {"rebind.test": 0}

TCP = [("169.254.169.254", 80), ("169.254.169.254", 443), ("93.184.216.34", 80), ("93.184.216.34", 443),
       ("127.0.0.1", 18080)]


def serve_tcp(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)

    def loop():
        while True:
            c, _ = s.accept()
            with lock, open(HITS, "a") as f:
                f.write("%s:%d\n" % (addr, port))
            try:
                c.settimeout(2)
                try:
                    c.recv(4096)
                except OSError:
                    pass
                body = "stand-in %s:%d\n" % (addr, port)
                c.sendall(("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
            except OSError:
                pass
            finally:
                c.close()

    threading.Thread(target=loop, daemon=True).start()


def answers(name, qtype):
    if qtype != 1:
        return []
    if name == "public.test":
        return ["93.184.216.34"]
    if name == "metadata.test":
        return ["169.254.169.254"]
    if name == "mixed.test":
        return ["93.184.216.34", "169.254.169.254"]
    if name == "rebind.test":
        with lock:
            asked["rebind.test"] += 1
            first = asked["rebind.test"] == 1
        return ["93.184.216.34"] if first else ["169.254.169.254"]
    return None


def serve_dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))

    def loop():
        while True:
            data, peer = s.recvfrom(512)
            try:
                (qid, _flags, qd) = struct.unpack(">HHH", data[:6])
                i, labels = 12, []
                while data[i]:
                    n = data[i]
                    labels.append(data[i + 1:i + 1 + n].decode().lower())
                    i += 1 + n
                question = data[12:i + 5]
                qtype = struct.unpack(">H", data[i + 1:i + 3])[0]
                name = ".".join(labels)
                found = answers(name, qtype)
                rcode = 3 if found is None else 0
                found = found or []
                head = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(found), 0, 0)
                body = b"".join(
                    struct.pack(">HHHIH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(a) for a in found)
                s.sendto(head + question + body, peer)
            except (IndexError, struct.error, UnicodeDecodeError):
                continue

    threading.Thread(target=loop, daemon=True).start()


def main():
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except OSError:
        pass
    for addr, port in TCP:
        serve_tcp(addr, port)
    serve_dns()
    open(HITS, "a").close()
    with open(os.path.join(STATE, "ready"), "w") as f:
        f.write("ready\n")
    # Gone with the script that started them, however it ended.
    parent = os.getppid()
    while os.getppid() == parent:
        threading.Event().wait(0.5)


if __name__ == "__main__":
    main()
