#!/usr/bin/env python3
"""Process-level attack on disk-full recovery (issue 9, item 5) with a real
file system instead of the simulated disk: a single-validator node whose
data directory is on a small tmpfs (needs root for the mount), the space
taken by a filler file, transfers sent until the node reports the fault,
then the filler removed.

Expected (secure): while the disk is full /health is 503, new transfers are
refused, gl_chainInfo's tip is a block the node can serve (gl_getBlock),
account nonces are those of committed blocks; after the space is freed the
node recovers without a restart, every accepted transfer commits (the
sender's nonce equals the number accepted), and a restart from the data
directory opens at the same height.

Usage: scripts/attack-disk-full-tmpfs.py [--bin target/debug/gridledger] [--size-kb 8192]
Exit 1 with the broken expectations listed.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request


def get(url, path):
    try:
        with urllib.request.urlopen(url + path, timeout=3) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def rpc(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/gridledger")
    ap.add_argument("--size-kb", type=int, default=8192)
    ap.add_argument("--leave-kb", type=int, default=0, help="free space left beside the filler")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.bin)
    mnt = tempfile.mkdtemp(prefix="gl-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={a.size_kb}k", "tmpfs", mnt], check=True)
    wrong = []
    node = None
    try:
        d = os.path.join(mnt, "chain")
        subprocess.run([bin_, "init", "--dir", d, "--listen", "127.0.0.1:0"], check=True, stdout=subprocess.DEVNULL)
        log = open(os.path.join(tempfile.gettempdir(), "gl-full-node.log"), "wb")

        def start():
            p = subprocess.Popen([bin_, "node", "--config", os.path.join(d, "node.toml")], stdout=log, stderr=log)
            for _ in range(300):
                try:
                    u = open(os.path.join(d, "node.url")).read().strip()
                    if get(u, "/health")[0] in (200, 503):
                        return p, u
                except Exception:
                    pass
                time.sleep(0.1)
            raise SystemExit("node did not start")

        node, url = start()
        key = os.path.join(d, "keys", "account-0.key")
        to = json.loads(subprocess.run([bin_, "keys", "show", "--key", os.path.join(d, "keys", "account-1.key"),
                                        "--json"], capture_output=True, text=True, check=True).stdout)["address"]
        sender = json.loads(subprocess.run([bin_, "keys", "show", "--key", key, "--json"], capture_output=True,
                                           text=True, check=True).stdout)["address"]
        # Fill the file system, leaving a little room.
        filler = os.path.join(mnt, "filler")
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - a.leave_kb * 1024))
        accepted = 0
        refused = None
        t = time.time()
        while time.time() - t < 120:
            r = subprocess.run([bin_, "transfer", "--rpc", url, "--key", key, "--to", to, "--amount", "1",
                                "--no-wait"], capture_output=True, text=True)
            if r.returncode == 0:
                accepted += 1
            else:
                refused = (r.stdout + r.stderr).strip()
            if get(url, "/health")[0] == 503:
                break
        status, health = get(url, "/health")
        if status != 503:
            wrong.append(f"/health never reported the full disk ({accepted} transfers accepted): {status} {health}")
        info = rpc(url, "gl_chainInfo", [])["result"]
        blk = rpc(url, "gl_getBlock", [info["height"]])
        if not blk.get("result"):
            wrong.append(f"gl_chainInfo height {info['height']} is not a block the node serves: {blk}")
        acct = rpc(url, "gl_getAccount", [sender])["result"]
        metrics = get(url, "/metrics")[1]
        if "gridledger_store_unavailable 1" not in metrics:
            wrong.append("metrics do not report the store fault")
        # Keep the disk full a while: does the node keep refusing, or flap
        # back to "ok" and accept transfers it still cannot commit?
        flips, late, heights = 0, 0, set()
        t = time.time()
        while time.time() - t < 8:
            if get(url, "/health")[0] == 200:
                flips += 1
            r = subprocess.run([bin_, "transfer", "--rpc", url, "--key", key, "--to", to, "--amount", "1",
                                "--no-wait"], capture_output=True, text=True)
            if r.returncode == 0:
                late += 1
                accepted += 1
            heights.add(rpc(url, "gl_chainInfo", [])["result"]["height"])
        if late and len(heights) == 1:
            wrong.append(f"{late} transfers accepted and /health ok {flips} times while the disk stayed full "
                         f"and no block committed (height {heights})")
        print(json.dumps({"while_full": {"accepted": late, "health_ok": flips, "heights": sorted(heights)}}))
        print(json.dumps({"accepted": accepted, "health": health[:200], "height": info["height"],
                          "nonce_while_full": acct["nonce"], "refused": (refused or "")[:200]}), flush=True)
        os.remove(filler)
        t = time.time()
        while time.time() - t < 60 and get(url, "/health")[0] != 200:
            time.sleep(0.2)
        if get(url, "/health")[0] != 200:
            wrong.append("the node did not recover after the space was freed")
        t = time.time()
        nonce = None
        while time.time() - t < 60:
            nonce = rpc(url, "gl_getAccount", [sender])["result"]["nonce"]
            if nonce >= accepted:
                break
            time.sleep(0.2)
        if nonce != accepted:
            wrong.append(f"{accepted} transfers accepted, sender nonce {nonce} after recovery")
        h1 = rpc(url, "gl_chainInfo", [])["result"]["height"]
        node.terminate()
        node.wait(30)
        node, url = start()
        h2 = rpc(url, "gl_chainInfo", [])["result"]["height"]
        if h2 != h1:
            wrong.append(f"height {h1} before the restart, {h2} after")
        print(json.dumps({"recovered_height": h1, "restarted_height": h2, "final_nonce": nonce}))
    finally:
        if node and node.poll() is None:
            node.terminate()
            node.wait(30)
        subprocess.run(["umount", mnt])
    for w in wrong:
        print("ATTACK:", w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
