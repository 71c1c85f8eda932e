#!/usr/bin/env python3
"""Hostile-client probes against a running `gridledger node` (issue 9, items 3-7).

Usage: scripts/attack-node.py MODE ADDR PID [N] [SECONDS]
  ADDR = host:port of the node's JSON-RPC (MODE p2p: comma-separated p2p ports' host:port list)
  PID  = the node's process id (memory and fds read from /proc/PID)
Modes (every loop stops by itself after SECONDS):
  bodies   N clients post an 8 MB body at once; prints VmHWM (bodies queue for
           the in-flight permits after they are read, unbounded by max_in_flight)
  noBody   keeps N sockets from 127.0.0.2 that send a head with Content-Length and
           no body; a client on 127.0.0.1 measures its latency for gl_chainInfo
  sse      opens N non-reading /events streams from 127.0.0.2, waits past the idle
           timeout, then tries one from 127.0.0.1
  p2p      keeps N never-handshaking sockets from 127.0.0.2 on each p2p address
Loopback 127.0.0.0/8 lets one machine play two source addresses.
"""
import json, os, select, socket, sys, threading, time

def st(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) // 1024

def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))

def conn(addr, src=None):
    s = socket.socket()
    if src:
        s.bind((src, 0))
    s.connect(addr)
    return s

def post(addr, body, timeout=120, src=None):
    s = conn(addr, src)
    s.settimeout(timeout)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    out = b""
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            out += b
    except OSError as e:
        return ("ERR", str(e))
    return out[:12]

INFO = b'{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"}'
HEAD = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"

def main():
    mode, addr, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 40
    dur = int(sys.argv[5]) if len(sys.argv) > 5 else 60
    if mode == "p2p":
        addrs = [(h, int(p)) for h, p in (x.rsplit(":", 1) for x in addr.split(","))]
    else:
        h, p = addr.rsplit(":", 1)
        a = (h, int(p))
    t0 = time.time()
    if mode == "bodies":
        open(f"/proc/{pid}/clear_refs", "w").write("5")
        body = b'{"jsonrpc":"2.0","id":1,"method":"gl_chainInfo"' + b" " * (8 * 1024 * 1024 - 200) + b"}"
        res = []
        ts = [threading.Thread(target=lambda: res.append(post(a, body, 300))) for _ in range(n)]
        [t.start() for t in ts]
        [t.join(timeout=max(1, dur - (time.time() - t0))) for t in ts]
        print(json.dumps({"clients": n, "VmHWM_mib": st(pid, "VmHWM"), "VmRSS_mib": st(pid, "VmRSS")}))
    elif mode == "noBody":
        def opn():
            s = conn(a, "127.0.0.2"); s.sendall(HEAD); s.setblocking(False); return s
        socks = [opn() for _ in range(n)]
        stop = []
        def keeper():
            while not stop:
                r, _, _ = select.select(socks, [], [], 0.5)
                for s in r:
                    i = socks.index(s); s.close(); socks[i] = opn()
        threading.Thread(target=keeper, daemon=True).start()
        while time.time() - t0 < dur:
            t = time.time()
            r = post(a, INFO, 60, "127.0.0.1")
            print(json.dumps({"t": round(t - t0), "answer": str(r), "latency_s": round(time.time() - t, 2), "fds": fds(pid)}), flush=True)
            time.sleep(2)
        stop.append(1)
    elif mode == "sse":
        socks = []
        for _ in range(n):
            s = conn(a, "127.0.0.2"); s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); socks.append(s)
        time.sleep(dur)
        s = conn(a, "127.0.0.1"); s.settimeout(5); s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        print(json.dumps({"after_s": dur, "other_client_gets": s.recv(40).decode(errors="replace")}))
    elif mode == "p2p":
        socks = {}
        def opn(x):
            s = socket.socket(); s.bind(("127.0.0.2", 0)); s.setblocking(False)
            try:
                s.connect(x)
            except (BlockingIOError, OSError):
                pass
            return s
        for x in addrs:
            for _ in range(n):
                socks[opn(x)] = x
        while time.time() - t0 < dur:
            r, _, _ = select.select(list(socks), [], [], 0.2)
            for s in r:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    x = socks.pop(s); s.close(); socks[opn(x)] = x

if __name__ == "__main__":
    main()
