//! HTTP JSON-RPC 2.0 API, event stream and metrics.
//!
//! `POST /` takes a JSON-RPC request or batch. Methods:
//!
//! | method | params | result |
//! |---|---|---|
//! | `gl_chainInfo` | — | chain id, height, tip hash, state root, mempool size |
//! | `gl_sendTransaction` | `[hex]` canonical signed transaction | transaction hash |
//! | `gl_sendTransactions` | `[[hex, …]]` | per item `{hash}` or `{error}` |
//! | `gl_getTransaction` | `[hash]` | `{tx, height, index}` or null |
//! | `gl_getReceipt` | `[hash]` | receipt or null |
//! | `gl_getTxProof` | `[hash]` | Merkle inclusion proof against the block's `tx_root` |
//! | `gl_getBlock` | `[height \| "latest"]` | header, hash and transaction hashes, or null |
//! | `gl_getAccount` | `[address]` | balance, nonce, next nonce counting pending |
//! | `gl_getContractState` | `[contract, key hex]` | raw value hex or null |
//! | `gl_callView` | `[contract, method, args hex]` | the view's JSON |
//! | `gl_getEvents` | `[from, to]` | blocks' events, at most 1,000 blocks |
//!
//! `GET /events?from=H` streams each committed block's events as
//! server-sent events (replaying from height `H` first); `GET /metrics` is
//! Prometheus text; `GET /health` answers `ok`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use gridledger_core::{Address, Hash32};
use gridledger_ledger::state::contract_key;
use gridledger_ledger::{StateRead, SubmitError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;

use crate::service::{BlockNotice, Shared};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// A transaction was refused; `data.kind` carries [`SubmitError::code`].
pub const TX_REJECTED: i64 = -32000;
/// A contract view failed.
pub const VIEW_FAILED: i64 = -32001;

/// Largest request body (a batch of transactions).
const MAX_BODY: usize = 16 << 20;
const MAX_EVENT_RANGE: u64 = 1_000;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(handle))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/events", get(events))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// `ok`, or 503 with the reason while the node cannot commit blocks.
async fn health(State(s): State<Arc<Shared>>) -> axum::response::Response {
    match s.fault() {
        None => "ok".into_response(),
        Some(reason) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {reason}")).into_response(),
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], s.metrics.render())
}

struct RpcFail {
    code: i64,
    message: String,
    data: Option<Value>,
}

fn fail(code: i64, message: impl Into<String>) -> RpcFail {
    RpcFail { code, message: message.into(), data: None }
}

fn rejected(e: &SubmitError) -> RpcFail {
    RpcFail { code: TX_REJECTED, message: e.to_string(), data: Some(json!({ "kind": e.code() })) }
}

fn envelope(id: Value, r: Result<Value, RpcFail>) -> Value {
    match r {
        Ok(v) => json!({ "jsonrpc": "2.0", "id": id, "result": v }),
        Err(f) => {
            let mut e = json!({ "code": f.code, "message": f.message });
            if let Some(d) = f.data {
                e["data"] = d;
            }
            json!({ "jsonrpc": "2.0", "id": id, "error": e })
        }
    }
}

async fn handle(State(s): State<Arc<Shared>>, body: Bytes) -> Json<Value> {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            s.metrics.rpc_errors.fetch_add(1, Relaxed);
            return Json(envelope(Value::Null, Err(fail(PARSE_ERROR, format!("parse error: {e}")))));
        }
    };
    let s2 = s.clone();
    let out = tokio::task::spawn_blocking(move || match parsed {
        Value::Array(reqs) if !reqs.is_empty() => Value::Array(reqs.into_iter().map(|r| one(&s2, r)).collect()),
        Value::Array(_) => envelope(Value::Null, Err(fail(INVALID_REQUEST, "empty batch"))),
        r => one(&s2, r),
    })
    .await
    .unwrap_or_else(|e| envelope(Value::Null, Err(fail(INTERNAL_ERROR, format!("internal error: {e}")))));
    Json(out)
}

fn one(s: &Shared, req: Value) -> Value {
    s.metrics.rpc_requests.fetch_add(1, Relaxed);
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let result = (|| {
        if req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(fail(INVALID_REQUEST, "jsonrpc must be \"2.0\""));
        }
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return Err(fail(INVALID_REQUEST, "method must be a string"));
        };
        let params = match req.get("params") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(fail(INVALID_PARAMS, "params must be an array")),
        };
        dispatch(s, method, &params)
    })();
    if result.is_err() {
        s.metrics.rpc_errors.fetch_add(1, Relaxed);
    }
    envelope(id, result)
}

fn param<'a>(p: &'a [Value], i: usize, what: &str) -> Result<&'a Value, RpcFail> {
    p.get(i).ok_or_else(|| fail(INVALID_PARAMS, format!("missing parameter {i} ({what})")))
}

fn param_str<'a>(p: &'a [Value], i: usize, what: &str) -> Result<&'a str, RpcFail> {
    param(p, i, what)?.as_str().ok_or_else(|| fail(INVALID_PARAMS, format!("parameter {i} ({what}) must be a string")))
}

fn param_u64(p: &[Value], i: usize, what: &str) -> Result<u64, RpcFail> {
    param(p, i, what)?
        .as_u64()
        .ok_or_else(|| fail(INVALID_PARAMS, format!("parameter {i} ({what}) must be a non-negative integer")))
}

fn param_hash(p: &[Value], i: usize) -> Result<Hash32, RpcFail> {
    Hash32::from_hex(param_str(p, i, "hash")?).map_err(|e| fail(INVALID_PARAMS, format!("hash: {e}")))
}

fn param_hex(p: &[Value], i: usize, what: &str) -> Result<Vec<u8>, RpcFail> {
    let s = param_str(p, i, what)?;
    hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| fail(INVALID_PARAMS, format!("{what} must be hex")))
}

fn internal(e: impl std::fmt::Display) -> RpcFail {
    fail(INTERNAL_ERROR, e.to_string())
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Value, RpcFail> {
    serde_json::to_value(v).map_err(internal)
}

fn dispatch(s: &Shared, method: &str, p: &[Value]) -> Result<Value, RpcFail> {
    match method {
        "gl_chainInfo" => {
            let c = s.chain();
            let tip = c.tip();
            Ok(json!({
                "chain_id": c.genesis().chain_id,
                "height": tip.height,
                "tip_hash": tip.hash(),
                "state_root": tip.state_root,
                "timestamp": tip.timestamp,
                "mempool": c.mempool().len(),
                "validators": c.genesis().validators,
                "max_block_txs": c.config().max_block_txs,
                "contracts": c.registry().list().map(|(id, n)| json!({"id": id, "name": n})).collect::<Vec<_>>(),
            }))
        }
        "gl_sendTransaction" => {
            let bytes = param_hex(p, 0, "transaction")?;
            let v = s.rules.check(&bytes);
            match s.admit(vec![v]).pop() {
                Some(Ok(h)) => Ok(json!(h)),
                Some(Err(e)) => Err(rejected(&e)),
                None => Err(internal("no result")),
            }
        }
        "gl_sendTransactions" => {
            let list = param(p, 0, "transactions")?
                .as_array()
                .ok_or_else(|| fail(INVALID_PARAMS, "parameter 0 must be an array of hex strings"))?;
            let checked: Vec<_> = list
                .iter()
                .map(|v| match v.as_str().and_then(|s| hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()) {
                    Some(b) => s.rules.check(&b),
                    None => Err(SubmitError::Undecodable("not a hex string".into())),
                })
                .collect();
            let out = s.admit(checked);
            Ok(Value::Array(
                out.iter()
                    .map(|r| match r {
                        Ok(h) => json!({ "hash": h }),
                        Err(e) => {
                            json!({ "error": { "kind": e.code(), "message": e.to_string() } })
                        }
                    })
                    .collect(),
            ))
        }
        "gl_getTransaction" => {
            let h = param_hash(p, 0)?;
            let Some((height, index)) = s.store.tx_location(&h).map_err(internal)? else {
                return Ok(Value::Null);
            };
            let block = s.store.block(height).map_err(internal)?.ok_or_else(|| internal("block missing"))?;
            let tx = block.txs.get(index as usize).ok_or_else(|| internal("tx missing"))?;
            Ok(json!({ "hash": h, "height": height, "index": index, "sender": tx.sender(), "tx": to_json(tx)? }))
        }
        "gl_getReceipt" => {
            let h = param_hash(p, 0)?;
            let Some((height, index)) = s.store.tx_location(&h).map_err(internal)? else {
                return Ok(Value::Null);
            };
            let receipts = s.store.receipts(height).map_err(internal)?.ok_or_else(|| internal("receipts missing"))?;
            to_json(&receipts.get(index as usize).ok_or_else(|| internal("receipt missing"))?)
        }
        "gl_getTxProof" => {
            let h = param_hash(p, 0)?;
            let Some((height, index)) = s.store.tx_location(&h).map_err(internal)? else {
                return Ok(Value::Null);
            };
            let block = s.store.block(height).map_err(internal)?.ok_or_else(|| internal("block missing"))?;
            let proof = block.tx_proof(index as usize).ok_or_else(|| internal("proof"))?;
            Ok(
                json!({ "height": height, "tx_root": block.header.tx_root, "block_hash": block.hash(), "proof": to_json(&proof)? }),
            )
        }
        "gl_getBlock" => {
            let which = param(p, 0, "height")?;
            let height = match which {
                Value::String(x) if x == "latest" => s.chain().tip().height,
                v => v.as_u64().ok_or_else(|| fail(INVALID_PARAMS, "height must be an integer or \"latest\""))?,
            };
            let Some(b) = s.store.block(height).map_err(internal)? else {
                return Ok(Value::Null);
            };
            Ok(json!({
                "hash": b.hash(),
                "header": to_json(&b.header)?,
                "seal": to_json(&b.seal)?,
                "transactions": b.txs.iter().map(|t| t.hash()).collect::<Vec<_>>(),
            }))
        }
        "gl_getAccount" => {
            let a = Address::from_hex(param_str(p, 0, "address")?)
                .map_err(|e| fail(INVALID_PARAMS, format!("address: {e}")))?;
            let c = s.chain();
            let acct = c.account(&a);
            Ok(json!({ "address": a, "balance": acct.balance, "nonce": acct.nonce, "next_nonce": c.next_nonce(&a) }))
        }
        "gl_getContractState" => {
            let id = u32::try_from(param_u64(p, 0, "contract")?)
                .map_err(|_| fail(INVALID_PARAMS, "contract id too large"))?;
            let key = param_hex(p, 1, "key")?;
            let v = s.chain().state().get(&contract_key(id, &key));
            Ok(v.map_or(Value::Null, |v| json!(hex::encode(v))))
        }
        "gl_callView" => {
            let id = u32::try_from(param_u64(p, 0, "contract")?)
                .map_err(|_| fail(INVALID_PARAMS, "contract id too large"))?;
            let m = param_str(p, 1, "method")?;
            let args = if p.len() > 2 { param_hex(p, 2, "args")? } else { Vec::new() };
            s.chain().view(id, m, &args).map_err(|e| fail(VIEW_FAILED, e.to_string()))
        }
        "gl_getEvents" => {
            let from = param_u64(p, 0, "from")?;
            let to = param_u64(p, 1, "to")?;
            if to < from || to - from >= MAX_EVENT_RANGE {
                return Err(fail(INVALID_PARAMS, format!("need from <= to and at most {MAX_EVENT_RANGE} blocks")));
            }
            let mut out = Vec::new();
            for h in from..=to {
                match notice(s, h).map_err(internal)? {
                    Some(n) => out.push(to_json(&n)?),
                    None => break,
                }
            }
            Ok(Value::Array(out))
        }
        other => Err(fail(METHOD_NOT_FOUND, format!("method not found: {other}"))),
    }
}

fn notice(s: &Shared, h: u64) -> Result<Option<BlockNotice>, gridledger_ledger::StoreError> {
    let Some(b) = s.store.block(h)? else {
        return Ok(None);
    };
    let r = s.store.receipts(h)?.unwrap_or_default();
    Ok(Some(BlockNotice::from_block(&b, &r)))
}

#[derive(Deserialize)]
struct EventsQuery {
    from: Option<u64>,
}

async fn events(
    State(s): State<Arc<Shared>>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // Subscribe before reading the tip so no block falls between replay and live.
    let live = BroadcastStream::new(s.events.subscribe());
    let tip = s.chain().tip().height;
    let from = q.from.unwrap_or(tip + 1);
    let s2 = s.clone();
    let replay: Vec<BlockNotice> = tokio::task::spawn_blocking(move || {
        (from..=tip.min(from.saturating_add(MAX_EVENT_RANGE))).filter_map(|h| notice(&s2, h).ok().flatten()).collect()
    })
    .await
    .unwrap_or_default();
    let last = replay.last().map(|n| n.height);
    let to_sse = |n: &BlockNotice| SseEvent::default().event("block").json_data(n).unwrap_or_default();
    let replayed = stream::iter(replay.iter().map(to_sse).map(Ok).collect::<Vec<_>>());
    let live = live.filter_map(move |r| {
        let item = match r {
            Ok(n) if last.is_none_or(|l| n.height > l) => Some(Ok(to_sse(&n))),
            Ok(_) => None,
            // A slow subscriber skipped blocks; tell it so it can refetch.
            Err(e) => Some(Ok(SseEvent::default().event("lagged").data(e.to_string()))),
        };
        async move { item }
    });
    Sse::new(replayed.chain(live)).keep_alive(KeepAlive::default())
}
