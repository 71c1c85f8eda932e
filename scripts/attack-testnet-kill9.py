#!/usr/bin/env python3
"""Process-level attack on crash-atomic PBFT commits (issue 9, item 1).

Writes a local testnet (`gridledger testnet --no-start`), runs each
validator as its own `gridledger node` process, keeps transfers flowing,
and kills validators with SIGKILL at random instants (one at a time, and
every few rounds f + 1 = 2 at once), restarting them after a random pause.
At the end every validator is restarted, allowed to catch up, and the
block hash of every height is compared across all validators.

Expected (secure): identical block hashes at every height on every
validator, and every validator restarts from its data directory.
Exit status 1 on a divergence, a validator that cannot restart, or no
progress.

Usage: scripts/attack-testnet-kill9.py [--bin target/debug/gridledger]
       [--rounds 30] [--seed 1] [--validators 4] [--keep DIR]
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.loads(r.read())


class Net:
    def __init__(self, bin_, d, n):
        self.bin, self.d, self.n = bin_, d, n
        self.procs = [None] * n

    def conf(self, i):
        return os.path.join(self.d, f"validator-{i}", "node.toml")

    def url(self, i):
        p = os.path.join(self.d, f"validator-{i}", "node.url")
        try:
            with open(p) as f:
                return f.read().strip()
        except OSError:
            return None

    def start(self, i):
        p = os.path.join(self.d, f"validator-{i}", "node.url")
        if os.path.exists(p):
            os.remove(p)
        log = open(os.path.join(self.d, f"validator-{i}.log"), "ab")
        self.procs[i] = subprocess.Popen([self.bin, "node", "--config", self.conf(i)], stdout=log, stderr=log)

    def kill(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
        self.procs[i] = None

    def wait_up(self, i, limit=30):
        t = time.time()
        while time.time() - t < limit:
            p = self.procs[i]
            if p is None or p.poll() is not None:
                return False
            u = self.url(i)
            if u:
                try:
                    rpc(u, "gl_chainInfo", [])
                    return True
                except Exception:
                    pass
            time.sleep(0.1)
        return False

    def height(self, i):
        u = self.url(i)
        try:
            return rpc(u, "gl_chainInfo", [])["result"]["height"]
        except Exception:
            return None

    def block_hash(self, i, h):
        r = rpc(self.url(i), "gl_getBlock", [h])
        return (r.get("result") or {}).get("hash")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/gridledger")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--p2p-port", type=int, default=31645)
    ap.add_argument("--keep", default=None)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    d = a.keep or tempfile.mkdtemp(prefix="gl-kill9-")
    subprocess.run([a.bin, "testnet", "--no-start", "--dir", d, "--validators", str(a.validators),
                    "--rpc-port", "0", "--p2p-port", str(a.p2p_port), "--accounts", "4"],
                   check=True, stdout=subprocess.DEVNULL)
    to = subprocess.run([a.bin, "keys", "show", "--key", os.path.join(d, "keys", "account-3.key"), "--json"],
                        check=True, capture_output=True, text=True).stdout
    to = json.loads(to)["address"]
    net = Net(os.path.abspath(a.bin), d, a.validators)
    for i in range(a.validators):
        net.start(i)
    for i in range(a.validators):
        if not net.wait_up(i):
            print(f"validator {i} did not start", file=sys.stderr)
            return 1
    sent = 0
    restarts_failed = []

    def send_some(k):
        nonlocal sent
        for _ in range(k):
            live = [i for i in range(a.validators) if net.procs[i] and net.url(i)]
            if not live:
                return
            i = rnd.choice(live)
            acct = rnd.randrange(3)
            r = subprocess.run([a.bin, "transfer", "--rpc", net.url(i) or "", "--key",
                                os.path.join(d, "keys", f"account-{acct}.key"), "--to", to,
                                "--amount", "1", "--no-wait"], capture_output=True)
            sent += r.returncode == 0

    f = (a.validators - 1) // 3
    for rnd_i in range(a.rounds):
        victims = rnd.sample(range(a.validators), f + 1 if rnd_i % 5 == 4 else 1)
        send_some(rnd.randrange(1, 6))
        time.sleep(rnd.uniform(0, 0.8))
        for v in victims:
            net.kill(v)
        send_some(rnd.randrange(1, 4))
        time.sleep(rnd.uniform(0, 1.5))
        for v in victims:
            net.start(v)
            if not net.wait_up(v):
                restarts_failed.append((rnd_i, v))
                net.start(v)
                net.wait_up(v)
        heights = [net.height(i) for i in range(a.validators)]
        print(f"round {rnd_i}: killed {victims}, heights {heights}, sent {sent}", flush=True)
    # Let everyone catch up.
    send_some(3)
    t = time.time()
    while time.time() - t < 60:
        hs = [net.height(i) for i in range(a.validators)]
        if None not in hs and len(set(hs)) == 1:
            break
        time.sleep(0.5)
    hs = [net.height(i) for i in range(a.validators)]
    top = min(h for h in hs if h is not None) if any(h is not None for h in hs) else 0
    divergent = []
    for h in range(1, top + 1):
        hashes = [net.block_hash(i, h) for i in range(a.validators)]
        if len(set(hashes)) != 1:
            divergent.append((h, hashes))
    for i in range(a.validators):
        net.kill(i)
    print(json.dumps({"dir": d, "rounds": a.rounds, "heights": hs, "compared": top, "sent": sent,
                      "divergent": divergent[:5], "divergent_heights": len(divergent),
                      "restarts_failed": restarts_failed}))
    if divergent or restarts_failed or top == 0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
