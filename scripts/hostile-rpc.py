#!/usr/bin/env python3
"""Memory of a gridledger node under hostile RPC clients (issue: bounded memory).

Usage: scripts/hostile-rpc.py GRIDLEDGER_BIN HOSTILE_CLIENTS_BIN [--txs N]

HOSTILE_CLIENTS_BIN is the `hostile_clients` example of the node crate
(`cargo build -p gridledger-node --example hostile_clients`). The node runs as
its own process; its peak resident memory (VmHWM in /proc/PID/status) is reset
before each attack (clear_refs 5) and read after it. Prints one JSON object.
"""
import json, os, re, socket, subprocess, sys, tempfile, time

def status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) // 1024  # MiB
    return None

def reset_peak(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

def post(addr, body, timeout=600):
    s = socket.create_connection(addr, timeout=timeout)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    out = b""
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        out += b
    s.close()
    return len(out)

def main():
    gl, helper = sys.argv[1], sys.argv[2]
    txs = int(sys.argv[sys.argv.index("--txs") + 1]) if "--txs" in sys.argv else 30000
    d = tempfile.mkdtemp(prefix="hostile-rpc-")
    subprocess.run([helper, "setup", d, "1000"], check=True)
    node = subprocess.Popen([gl, "node", "--config", os.path.join(d, "node.toml")],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"})
    addr = None
    for line in node.stderr:
        m = re.search(r"node listening.*?addr=(\S+)", line) or re.search(r"(\d+\.\d+\.\d+\.\d+:\d+).*node listening", line)
        if m:
            host, port = m.group(1).rsplit(":", 1)
            addr = (host, int(port))
            break
    # Keep draining the log so the node never blocks on it.
    import threading
    threading.Thread(target=lambda: [None for _ in node.stderr], daemon=True).start()
    pid = node.pid
    out = {"binary": gl, "txs": txs}
    try:
        url = f"http://{addr[0]}:{addr[1]}"
        height = subprocess.run([helper, "flood", url, str(txs), "1000"], check=True,
                                capture_output=True, text=True).stdout.strip()
        out["height"] = int(height)
        out["rss_after_flood_mib"] = status(pid, "VmRSS")
        out["peak_reset_supported"] = reset_peak(pid)

        # 1. Six slow event subscribers replaying from height 0 that never read.
        rss_before = status(pid, "VmRSS")
        reset_peak(pid)
        socks = []
        for _ in range(6):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(addr)
            s.sendall(b"GET /events?from=0 HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        time.sleep(10)
        out["events_6_slow"] = {"rss_before_mib": rss_before, "peak_mib": status(pid, "VmHWM"), "rss_mib": status(pid, "VmRSS")}
        for s in socks:
            s.close()
        # 2. One 2 MB batch of 1,000,000 entries, then two at once.
        body = b"[" + b"1," * 999_999 + b"1]"
        reset_peak(pid)
        n = post(addr, body)
        out["batch_1m"] = {"response_bytes": n, "peak_mib": status(pid, "VmHWM"), "rss_after_mib": status(pid, "VmRSS")}
        reset_peak(pid)
        ts = [threading.Thread(target=post, args=(addr, body)) for _ in range(2)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        out["batch_1m_x2"] = {"peak_mib": status(pid, "VmHWM"), "rss_after_mib": status(pid, "VmRSS")}

    finally:
        node.terminate()
        node.wait()
    print(json.dumps(out))

if __name__ == "__main__":
    main()
