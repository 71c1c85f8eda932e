#!/usr/bin/env python3
"""Known-answer vectors for gridledger's canonical encoding, tagged hashes,
addresses and signatures, computed OUTSIDE the project: Python's hashlib for
SHA-256, the pure-Python `ecdsa` package (pip install ecdsa) for secp256k1
and RFC 6979, and a hand-written borsh encoder below that follows the borsh
specification (little-endian integers, u32 length prefixes, one-byte enum
tags), not the Rust code.

    python3 scripts/gen_vectors.py > crates/core/tests/data/known_answers.json

The Rust test `crates/core/tests/known_answers.rs` recomputes every entry
with the project's code and compares.
"""

import hashlib
import json
import struct

import ecdsa
from ecdsa import SECP256k1, SigningKey, rfc6979
from ecdsa.util import sigencode_string_canonize

N = SECP256k1.order
G = SECP256k1.generator


# --- tagged hashes (gridledger_core::codec) ---------------------------------

def hash_bytes(tag: str, data: bytes) -> bytes:
    """SHA-256(len(tag) as one byte || tag || data)."""
    t = tag.encode()
    return hashlib.sha256(bytes([len(t)]) + t + data).digest()


def hash_parts(tag: str, parts) -> bytes:
    """SHA-256(len(tag) || tag || for each part: u64le(len) || part)."""
    t = tag.encode()
    h = hashlib.sha256(bytes([len(t)]) + t)
    for p in parts:
        h.update(struct.pack("<Q", len(p)))
        h.update(p)
    return h.digest()


# --- keys, addresses, signatures (gridledger_core::crypto) ------------------

def dev_secret(label: str) -> bytes:
    s = hash_parts("gridledger/dev-key/v1", [label.encode()])
    while not 0 < int.from_bytes(s, "big") < N:
        s = hash_parts("gridledger/dev-key/v1", [s])
    return s


def public_compressed(secret: bytes) -> bytes:
    sk = SigningKey.from_string(secret, curve=SECP256k1)
    return sk.get_verifying_key().to_string("compressed")


def address(pk33: bytes) -> bytes:
    return hash_parts("gridledger/address/v1", [pk33])[12:]


def sign(secret: bytes, digest: bytes):
    """RFC 6979 (HMAC-SHA256) ECDSA, low-S, with the recovery id."""
    sk = SigningKey.from_string(secret, curve=SECP256k1)
    compact = sk.sign_digest_deterministic(digest, hashfunc=hashlib.sha256, sigencode=sigencode_string_canonize)
    # Recovery id from the nonce point: bit 0 = parity of R.y, bit 1 = R.x >= n;
    # flipped parity when s was negated to make it low.
    secexp = int.from_bytes(secret, "big")
    k = rfc6979.generate_k(N, secexp, hashlib.sha256, digest)
    R = G * k
    r = R.x() % N
    e = int.from_bytes(digest, "big") % N
    s = pow(k, -1, N) * (e + r * secexp) % N
    recid = (R.y() & 1) | (2 if R.x() >= N else 0)
    if s > N // 2:
        s = N - s
        recid ^= 1
    assert compact == r.to_bytes(32, "big") + s.to_bytes(32, "big"), "ecdsa and the textbook formula disagree"
    vk = sk.get_verifying_key()
    assert vk.verify_digest(compact, digest, sigdecode=ecdsa.util.sigdecode_string)
    return compact, compact + bytes([recid])


# --- borsh, by the specification --------------------------------------------

def u8(v):
    return struct.pack("<B", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def u128(v):
    return v.to_bytes(16, "little")


def borsh_bytes(b: bytes) -> bytes:
    return u32(len(b)) + b


def borsh_string(s: str) -> bytes:
    return borsh_bytes(s.encode())


def transaction(chain_id, sender33, nonce, gas_limit, gas_price, kind) -> bytes:
    return u32(chain_id) + sender33 + u64(nonce) + u64(gas_limit) + u128(gas_price) + kind


def kind_transfer(to20, amount) -> bytes:
    return u8(0) + to20 + u128(amount)


def kind_call(contract, method, args, value) -> bytes:
    return u8(1) + u32(contract) + borsh_string(method) + borsh_bytes(args) + u128(value)


# --- Merkle tree (gridledger_core::merkle) ------------------------------------

def merkle_root(leaves):
    if not leaves:
        return hash_parts("gridledger/merkle-leaf/v1", [])
    level = [hash_parts("gridledger/merkle-leaf/v1", [x]) for x in leaves]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            if i + 1 < len(level):
                nxt.append(hash_parts("gridledger/merkle-node/v1", [level[i], level[i + 1]]))
            else:
                nxt.append(level[i])
        level = nxt
    return level[0]


def main():
    out = {"generator": f"scripts/gen_vectors.py (python hashlib, ecdsa {ecdsa.__version__})"}

    tags = ["gridledger/tx/v1", "gridledger/block-header/v1", "gridledger/receipt/v1", "gridledger/address/v1",
            "gridledger/hstate/v1", "gridledger/state-signature/v1"]
    msgs = [b"", b"abc", bytes(range(200))]
    out["hash_bytes"] = [
        {"tag": t, "data": m.hex(), "hash": hash_bytes(t, m).hex()} for t in tags for m in msgs
    ]
    part_sets = [[], [b""], [b"ab", b"c"], [b"a", b"bc"], [bytes([7] * 33), b"\x00" * 64]]
    out["hash_parts"] = [
        {"tag": t, "parts": [p.hex() for p in ps], "hash": hash_parts(t, ps).hex()} for t in tags[:2] for ps in part_sets
    ]

    labels = ["gridledger-dev-account-0", "gridledger-dev-account-1", "gridledger-dev-validator-0", "alice"]
    keys = []
    for label in labels:
        sec = dev_secret(label)
        pk = public_compressed(sec)
        keys.append({"label": label, "secret": sec.hex(), "public": pk.hex(), "address": address(pk).hex()})
    out["keys"] = keys

    sigs = []
    for label in labels[:3]:
        sec = dev_secret(label)
        for m in [b"hello", b"gridledger"]:
            digest = hash_bytes("gridledger/tx/v1", m)
            compact, rec = sign(sec, digest)
            sigs.append({"label": label, "digest": digest.hex(), "signature": compact.hex(), "recoverable": rec.hex()})
    out["signatures"] = sigs

    # Signed transactions: canonical bytes, hash (= signed digest), signature.
    a0 = dev_secret("gridledger-dev-account-0")
    a1 = dev_secret("gridledger-dev-account-1")
    pk0, pk1 = public_compressed(a0), public_compressed(a1)
    txs = []
    for (secret, pk, body) in [
        (a0, pk0, transaction(1, pk0, 0, 21_000, 1, kind_transfer(address(pk1), 500))),
        (a1, pk1, transaction(7, pk1, 42, 1_000_000, 3, kind_call(2, "msc_init", bytes([1, 2, 3, 0]), 10**20))),
    ]:
        digest = hash_bytes("gridledger/tx/v1", body)
        compact, _ = sign(secret, digest)
        txs.append({"body": body.hex(), "hash": digest.hex(), "signed": (body + compact).hex()})
    out["transactions"] = txs

    # Off-chain state signatures (seed 000 §5.1.2): hstate = H(state, N).
    state = u64(10) + u64(20)  # the borsh encoding of (10u64, 20u64)
    sd = hash_bytes("gridledger/hstate/v1", state)
    hstate = hash_parts("gridledger/hstate/v1", [sd, u64(7)])
    sig_digest = hash_parts("gridledger/state-signature/v1", [hstate, u64(3)])
    compact, _ = sign(a0, sig_digest)
    out["state_signature"] = {"state": [10, 20], "nonce": 7, "i": 3, "label": "gridledger-dev-account-0",
                              "hstate": hstate.hex(), "signature": compact.hex()}

    # Block headers: borsh field by field, hashed under the header tag.
    v0 = dev_secret("gridledger-dev-validator-0")
    headers = []
    for (chain_id, height, ts, gas, count) in [(1, 0, 0, 0, 0), (7, 123456789, 1_700_000_000_000, 42_000, 2)]:
        body = (u32(chain_id) + u64(height) + bytes(range(32)) + u64(ts) + public_compressed(v0)
                + bytes([1] * 32) + bytes([2] * 32) + bytes([3] * 32) + u64(gas) + u32(count))
        headers.append({"body": body.hex(), "hash": hash_bytes("gridledger/block-header/v1", body).hex()})
    out["block_headers"] = headers
    # Native contract accounts: the last 20 bytes of H(contract-hash, id as big-endian u32).
    out["contract_addresses"] = [
        {"id": i, "address": hash_parts("gridledger/contract-hash/v1", [struct.pack(">I", i)])[12:].hex()}
        for i in [0, 1, 2, 42, 0xFFFFFFFF]
    ]

    # A CNS channel state (seed 000 Figs 13-16): Statement::Channel is variant 4;
    # ChannelState = domain {chain_id u32, contract u32}, cid, t_delta_ms u64,
    # counter, balances [u128; 2], energy [u64; 2],
    # last_trade Option<Trade{buyer u8, energy u64, price u128, amount u128}>,
    # fold Option<Fold{trades u32, hash [u8; 32]}> (None here), is_final,
    # resize {topped_up [u128; 2], withdrawn [u128; 2]}, prev_counter u64.
    # Every CNS signature is over H((domain, statement), N): the domain is
    # hashed in front of the statement (chain 1, the CNS contract id 3).
    domain = u32(1) + u32(3)
    cid = hash_bytes("gridledger/cns/id/v1", b"example channel")
    trade = u8(1) + u8(0) + u64(1500) + u128(250_000) + u128(375)
    channel = (u8(4) + domain + cid + u64(60_000) + u64(9) + u128(49_625) + u128(20_375) + u64(1500) + u64(0)
               + trade + u8(0) + u8(0) + u128(0) + u128(2_000) + u128(1_000) + u128(0) + u64(8))
    hstate = hash_parts("gridledger/hstate/v1", [hash_bytes("gridledger/hstate/v1", domain + channel), u64(77)])
    sig0, _ = sign(a0, hash_parts("gridledger/state-signature/v1", [hstate, u64(9)]))
    out["cns_channel_state"] = {"statement": channel.hex(), "domain": {"chain_id": 1, "contract": 3},
                                "nonce": 77, "hstate": hstate.hex(),
                                "signer": "gridledger-dev-account-0", "signature": sig0.hex()}

    # IOR agreement terms (thesis Eq 3.1): EP u128, EM u64, ADDR_b, ADDR_s, DT start/end, DL.
    terms = (u128(204_959) + u64(24) + address(pk0) + address(pk1) + u64(28_800_000) + u64(30_600_000)
             + u64(29_000_000))
    # Every IOR signature covers the deployment first: SigDomain{chain_id u32, contract u32}.
    domain = struct.pack("<I", 1) + struct.pack("<I", 20)
    seller_digest = hash_bytes("gridledger/ior/at-seller/v1", domain + terms)
    _, seller_rec = sign(a1, seller_digest)
    buyer_digest = hash_bytes("gridledger/ior/st-buyer/v1", domain + terms + u8(1))
    out["ior_terms"] = {"terms": terms.hex(), "domain": {"chain_id": 1, "contract": 20},
                        "seller_digest": seller_digest.hex(),
                        "seller": "gridledger-dev-account-1", "seller_signature": seller_rec.hex(),
                        "buyer_digest_agreed": buyer_digest.hex()}

    leaves = [hash_bytes("gridledger/tx/v1", struct.pack("<I", i)) for i in range(7)]
    out["merkle"] = [{"leaves": [x.hex() for x in leaves[:n]], "root": merkle_root(leaves[:n]).hex()} for n in range(8)]

    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
