//! The JSON-RPC reference as data: an OpenRPC 1.3 document served by
//! `rpc.discover`, and the parameter names that let every method take
//! named parameters (`"params": {"hash": "…"}`) as well as positional ones.
//!
//! Conventions: amounts are decimal strings of minor units (1 coin =
//! 1,000,000 minor units); energy is in Wh; hashes, addresses, keys and
//! byte strings are hex.

use serde_json::{json, Map, Value};

/// One parameter of a method.
struct Param {
    name: &'static str,
    required: bool,
    schema: fn() -> Value,
    about: &'static str,
}

/// One method: name, summary, parameters, result and an example.
struct Method {
    name: &'static str,
    summary: &'static str,
    params: &'static [Param],
    result: &'static str,
    result_schema: fn() -> Value,
    example_params: fn() -> Value,
}

fn hash() -> Value {
    json!({ "type": "string", "pattern": "^(0x)?[0-9a-f]{64}$", "description": "32-byte hash, hex" })
}
fn hex() -> Value {
    json!({ "type": "string", "pattern": "^(0x)?([0-9a-f]{2})*$", "description": "bytes, hex" })
}
fn hex_list() -> Value {
    json!({ "type": "array", "items": hex(), "maxItems": 10000 })
}
fn nullable_hex() -> Value {
    json!({ "oneOf": [hex(), { "type": "null" }] })
}
fn uint() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}
fn height() -> Value {
    json!({ "oneOf": [uint(), { "const": "latest" }] })
}
fn address() -> Value {
    json!({ "type": "string", "pattern": "^(0x)?[0-9a-f]{40}$", "description": "account address, hex" })
}
fn string() -> Value {
    json!({ "type": "string" })
}
fn object() -> Value {
    json!({ "type": "object" })
}
fn nullable_object() -> Value {
    json!({ "oneOf": [object(), { "type": "null" }] })
}
fn array() -> Value {
    json!({ "type": "array" })
}

const H: &str = "3f1c0a8e4b2d6f7091a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a1c3e5b7";

const METHODS: &[Method] = &[
    Method {
        name: "gl_chainInfo",
        summary: "Chain id, height, tip hash, state root, mempool size, validators, limits (max_block_txs, \
                  max_tx_bytes), the node's block_interval_ms (null if unknown), contracts.",
        params: &[],
        result: "chain info",
        result_schema: object,
        example_params: || json!([]),
    },
    Method {
        name: "gl_sendTransaction",
        summary: "Submit one canonical signed transaction; refusals answer -32000 with data.kind \
                  (bad_signature, nonce_too_low, nonce_gap, insufficient_balance, oversize, undecodable, \
                  wrong_chain, gas_limit_too_low, …).",
        params: &[Param { name: "transaction", required: true, schema: hex, about: "canonical signed transaction" }],
        result: "transaction hash",
        result_schema: hash,
        example_params: || json!(["0a0b…"]),
    },
    Method {
        name: "gl_sendTransactions",
        summary: "Submit many transactions; per item {hash} or {error: {kind, message}}.",
        params: &[Param { name: "transactions", required: true, schema: hex_list, about: "signed transactions" }],
        result: "per item outcome",
        result_schema: array,
        example_params: || json!([["0a0b…", "0c0d…"]]),
    },
    Method {
        name: "gl_getTransaction",
        summary: "A committed transaction with its height and index, or null.",
        params: &[Param { name: "hash", required: true, schema: hash, about: "transaction hash" }],
        result: "{hash, height, index, sender, tx} or null",
        result_schema: nullable_object,
        example_params: || json!([H]),
    },
    Method {
        name: "gl_getReceipt",
        summary: "A transaction's receipt (status, gas_used, fee, events, output), or null.",
        params: &[Param { name: "hash", required: true, schema: hash, about: "transaction hash" }],
        result: "receipt or null",
        result_schema: nullable_object,
        example_params: || json!([H]),
    },
    Method {
        name: "gl_getTxProof",
        summary: "Merkle inclusion proof of a transaction against its block's tx_root, or null.",
        params: &[Param { name: "hash", required: true, schema: hash, about: "transaction hash" }],
        result: "{height, tx_root, block_hash, proof} or null",
        result_schema: nullable_object,
        example_params: || json!([H]),
    },
    Method {
        name: "gl_getBlock",
        summary: "A block's header, hash and transaction hashes, or null.",
        params: &[Param { name: "height", required: true, schema: height, about: "height or \"latest\"" }],
        result: "block or null",
        result_schema: nullable_object,
        example_params: || json!(["latest"]),
    },
    Method {
        name: "gl_getBlockRaw",
        summary: "A whole block with its transactions, Borsh-encoded as hex, or null above the tip.",
        params: &[Param { name: "height", required: true, schema: uint, about: "block height" }],
        result: "hex or null",
        result_schema: nullable_hex,
        example_params: || json!([0]),
    },
    Method {
        name: "gl_getAccount",
        summary: "An account's balance (minor units, decimal string), nonce and next nonce counting pending.",
        params: &[Param { name: "address", required: true, schema: address, about: "account address" }],
        result: "{balance, nonce, next_nonce}",
        result_schema: object,
        example_params: || json!(["1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"]),
    },
    Method {
        name: "gl_getContractState",
        summary: "A contract's raw storage value (hex) under a key, or null.",
        params: &[
            Param { name: "contract", required: true, schema: uint, about: "contract id" },
            Param { name: "key", required: true, schema: hex, about: "storage key" },
        ],
        result: "value hex or null",
        result_schema: || json!({ "oneOf": [hex(), { "type": "null" }] }),
        example_params: || json!([1, "00"]),
    },
    Method {
        name: "gl_callView",
        summary: "Call a contract's read-only view; failures answer -32001.",
        params: &[
            Param { name: "contract", required: true, schema: uint, about: "contract id" },
            Param { name: "method", required: true, schema: string, about: "view name" },
            Param { name: "args", required: false, schema: hex, about: "canonical (borsh) arguments" },
        ],
        result: "the view's JSON",
        result_schema: || json!({}),
        example_params: || json!([1, "balance_of", ""]),
    },
    Method {
        name: "gl_getEvents",
        summary: "Events of the committed blocks from..=to (at most 1,000 blocks; fewer if their JSON reaches \
                  half the response limit: continue from the last height returned + 1).",
        params: &[
            Param { name: "from", required: true, schema: uint, about: "first height" },
            Param { name: "to", required: true, schema: uint, about: "last height" },
        ],
        result: "per block {height, events}",
        result_schema: array,
        example_params: || json!([1, 10]),
    },
];

/// The OpenRPC document (answer of `rpc.discover`).
pub fn document() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|m| {
            let params: Vec<Value> = m
                .params
                .iter()
                .map(|p| json!({ "name": p.name, "required": p.required, "description": p.about, "schema": (p.schema)() }))
                .collect();
            let ex = (m.example_params)();
            let ex_params: Vec<Value> = m
                .params
                .iter()
                .zip(ex.as_array().cloned().unwrap_or_default())
                .map(|(p, v)| json!({ "name": p.name, "value": v }))
                .collect();
            json!({
                "name": m.name,
                "summary": m.summary,
                "paramStructure": "either",
                "params": params,
                "result": { "name": "result", "description": m.result, "schema": (m.result_schema)() },
                "examples": [{ "name": format!("{} example", m.name), "params": ex_params,
                               "result": { "name": "result", "value": null } }],
            })
        })
        .chain(std::iter::once(json!({
            "name": "rpc.discover",
            "summary": "This document.",
            "params": [],
            "result": { "name": "OpenRPC document", "schema": { "type": "object" } },
        })))
        .collect();
    json!({
        "openrpc": "1.3.2",
        "info": {
            "title": "gridledger node JSON-RPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "POST / with JSON-RPC 2.0 (single or batch). Amounts are decimal strings of minor units \
                            (1 coin = 1,000,000); energy in Wh; hashes, addresses and bytes in hex. Params by \
                            position or by name. GET /events?from=H streams committed blocks' events (SSE); \
                            GET /metrics is Prometheus text; GET /health answers ok.",
        },
        "methods": methods,
        "components": { "errors": {
            "parse": { "code": -32700, "message": "parse error" },
            "invalidRequest": { "code": -32600, "message": "invalid request" },
            "methodNotFound": { "code": -32601, "message": "method not found" },
            "invalidParams": { "code": -32602, "message": "invalid params" },
            "internal": { "code": -32603, "message": "internal error" },
            "rejected": { "code": -32000, "message": "transaction refused; data.kind names the reason" },
            "viewFailed": { "code": -32001, "message": "the view failed" },
            "responseTooLarge": { "code": -32008, "message": "the response exceeds the node's max_response" },
        }},
    })
}

/// Named parameters in the method's positional order. Unknown names, a
/// missing required parameter, or an optional one left out before a given
/// one are refused with a message naming them.
/// Refuses more positional parameters than a documented method takes (a
/// typo or a misread signature would otherwise be silently ignored).
pub fn check_arity(method: &str, given: usize) -> Result<(), String> {
    let Some(m) = METHODS.iter().find(|m| m.name == method) else { return Ok(()) };
    if given > m.params.len() {
        let names: Vec<&str> = m.params.iter().map(|p| p.name).collect();
        return Err(format!(
            "{method} takes at most {} parameter(s) ({}), got {given}",
            m.params.len(),
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ));
    }
    Ok(())
}

pub fn positional(method: &str, named: &Map<String, Value>) -> Result<Vec<Value>, String> {
    let Some(m) = METHODS.iter().find(|m| m.name == method) else {
        if named.is_empty() {
            return Ok(Vec::new());
        }
        return Err(format!("{method} takes no named parameters"));
    };
    if let Some(k) = named.keys().find(|k| !m.params.iter().any(|p| p.name == k.as_str())) {
        let names: Vec<&str> = m.params.iter().map(|p| p.name).collect();
        return Err(format!("{method} has no parameter {k:?} (parameters: {})", names.join(", ")));
    }
    let mut out = Vec::new();
    let mut gap: Option<&str> = None;
    for p in m.params {
        match named.get(p.name) {
            Some(v) => {
                if let Some(g) = gap {
                    return Err(format!("{method}: parameter {:?} given without {g:?} before it", p.name));
                }
                out.push(v.clone());
            }
            None if p.required => return Err(format!("{method}: missing parameter {:?}", p.name)),
            None => gap = Some(p.name),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every method the dispatcher answers is in the document, and nothing else.
    #[test]
    fn document_lists_every_dispatched_method() {
        let src = include_str!("rpc.rs");
        let dispatched: std::collections::BTreeSet<&str> = src
            .match_indices("\"gl_")
            .filter_map(|(i, _)| {
                let rest = &src[i + 1..];
                let end = rest.find('"')?;
                rest[end + 1..].trim_start().starts_with("=>").then(|| &rest[..end])
            })
            .collect();
        let listed: std::collections::BTreeSet<&str> = METHODS.iter().map(|m| m.name).collect();
        assert_eq!(dispatched, listed);
        let doc = document();
        assert_eq!(doc["methods"].as_array().unwrap().len(), METHODS.len() + 1);
        for m in doc["methods"].as_array().unwrap() {
            assert!(m["summary"].as_str().is_some_and(|s| !s.is_empty()), "{m}");
        }
    }

    #[test]
    fn named_to_positional() {
        let o = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(positional("gl_getEvents", &o(json!({"to": 5, "from": 1}))).unwrap(), vec![json!(1), json!(5)]);
        assert_eq!(positional("gl_callView", &o(json!({"contract": 1, "method": "m"}))).unwrap().len(), 2);
        assert!(positional("gl_getEvents", &o(json!({"from": 1}))).unwrap_err().contains("\"to\""));
        assert!(positional("gl_getReceipt", &o(json!({"hsh": H}))).unwrap_err().contains("hash"));
        assert_eq!(positional("gl_chainInfo", &o(json!({}))).unwrap(), Vec::<Value>::new());
    }
}
