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
//! | `gl_getBlockRaw` | `[height]` | the whole block with its transactions, Borsh hex, or null |
//! | `gl_getAccount` | `[address]` | balance, nonce, next nonce counting pending |
//! | `gl_getContractState` | `[contract, key hex]` | raw value hex or null |
//! | `gl_callView` | `[contract, method, args hex]` | the view's JSON |
//! | `gl_getEvents` | `[from, to]` | blocks' events, at most 1,000 blocks; fewer if their JSON reaches half of `max_response` (continue from the last height returned + 1) |
//!
//! Params may also be named (`{"hash": "…"}`); `rpc.discover` answers the
//! OpenRPC document with every method's parameter and result shapes
//! (`crate::openrpc`).
//!
//! `GET /events?from=H` streams each committed block's events as
//! server-sent events, from height `H` on (read from the store, one block at
//! a time, as fast as the client reads: a slow client slows only itself and
//! never skips a block; `H` above the tip waits for that height; without
//! `from` the stream starts after the current tip). `GET /metrics` is
//! Prometheus text; `GET /health` answers `ok`, or 503 with the reason
//! while the node cannot commit blocks (a store fault).
//!
//! # Bounds against hostile clients ([`RpcLimits`])
//!
//! The dispatcher stays hand-written over axum/hyper rather than moving to
//! jsonrpsee: the API also serves the SSE stream, metrics and health on the
//! same port (jsonrpsee would need a second server, or WebSocket
//! subscriptions that change the client protocol), and the limits jsonrpsee
//! offers (body size, batch size, response size, connections) are each a
//! few lines here, with no new dependency to build. What is bounded:
//!
//! - connections: at most `max_connections`; more are accepted and closed
//!   at once (so the listen backlog never fills with them), and at most
//!   `max_connections_per_addr` from one IP address (default three
//!   quarters of the total, so one address never takes every slot);
//! - time: a request head must arrive within `header_timeout`, and a
//!   connection on which no byte moves either way for `idle_timeout` is
//!   closed (a half-sent body, an idle keep-alive, a client that stops
//!   reading its response);
//! - request bodies: the whole body must arrive within `body_timeout` of
//!   its head (else 408), every wait below included. A request takes
//!   nothing before its first body byte arrives (a head with a
//!   Content-Length and no body holds no reading turn); then it reserves
//!   its Content-Length from `max_body_memory` (one budget for bodies being
//!   read *and* bodies waiting for a processing slot), then one of
//!   `max_body_readers` reading turns (at most three quarters of them for
//!   one IP address), so slow senders hold neither memory nor the
//!   dispatcher;
//! - requests in progress: at most `max_in_flight` are parsed and
//!   dispatched at once, after their body has arrived;
//! - a request: at most `max_body` bytes, at most `max_json_values` JSON
//!   values (counted on the raw bytes before anything is parsed, so a 2 MB
//!   batch of a million entries is refused without building a million
//!   values), at most `max_batch` entries, at most `max_send_txs`
//!   transactions in `gl_sendTransactions`;
//! - a response: at most `max_response` bytes, else error `-32008`
//!   (`gl_getEvents` instead stops early at that size, see its row above);
//! - event subscribers: at most `max_subscribers` at once, and at most
//!   `max_subscribers_per_addr` to one IP address (default three quarters);
//!   more get 503. A subscriber that never reads is closed by the idle
//!   timeout once its socket buffers are full; one that reads a trickle
//!   is dropped once the bytes queued for it stay above `max_unsent_bytes`
//!   for longer than `unsent_timeout` (any connection, in fact).

use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::stream::{self, Stream};
use gridledger_core::{Address, Hash32};
use gridledger_ledger::state::contract_key;
use gridledger_ledger::{StateRead, SubmitError};
use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, Semaphore};

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
/// The response would exceed [`RpcLimits::max_response`].
pub const RESPONSE_TOO_LARGE: i64 = -32008;

const MAX_EVENT_RANGE: u64 = 1_000;

/// Resource bounds of the HTTP API (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_body_readers: usize,
    pub body_timeout: Duration,
    pub max_in_flight: usize,
    pub max_body: usize,
    pub max_json_values: usize,
    pub max_batch: usize,
    pub max_send_txs: usize,
    pub max_response: usize,
    pub max_subscribers: usize,
    /// Connections from one IP address; `None`: three quarters of
    /// `max_connections`, so one address never takes every slot.
    pub max_connections_per_addr: Option<usize>,
    /// Event streams to one IP address; `None`: three quarters of `max_subscribers`.
    pub max_subscribers_per_addr: Option<usize>,
    /// Request bodies being read, or read and waiting to be processed,
    /// hold at most this many bytes together (each reserves its
    /// Content-Length, or `max_body` if it has none, from its first byte
    /// until its response is built).
    pub max_body_memory: usize,
    /// A connection (an event subscriber, or a client fetching a large
    /// response) whose bytes still queued in the kernel for it, sent but
    /// not acknowledged, stay above `max_unsent_bytes` for longer than
    /// `unsent_timeout` is dropped: the client is not reading. Unlike the
    /// idle timeout, a trickle of reads does not keep it open.
    pub max_unsent_bytes: usize,
    pub unsent_timeout: Duration,
}

/// One address's share of a bound: `explicit`, else three quarters of `total` (at least 1).
fn per_addr(explicit: Option<usize>, total: usize) -> usize {
    explicit.unwrap_or(total - total / 4).max(1)
}

impl Default for RpcLimits {
    /// Sized for a 2-core node: a full `gl_sendTransactions` of 4,096
    /// transfers fits every bound; the worst request costs a few times
    /// `max_body` in memory, times `max_in_flight`.
    fn default() -> Self {
        Self {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            // Above the SSE keep-alive (15 s), so an idle event stream stays up.
            idle_timeout: Duration::from_secs(60),
            max_body_readers: 32,
            body_timeout: Duration::from_secs(10),
            max_in_flight: 4,
            max_body: 8 << 20,
            max_json_values: 100_000,
            max_batch: 1_000,
            max_send_txs: 4_096,
            max_response: 16 << 20,
            max_subscribers: 64,
            max_connections_per_addr: None,
            max_subscribers_per_addr: None,
            max_body_memory: 64 << 20,
            // A client that cannot take 1 MiB within 30 s (under ~35 KB/s)
            // is treated as not reading.
            max_unsent_bytes: 1 << 20,
            unsent_timeout: Duration::from_secs(30),
        }
    }
}

/// Counters of refusals, for metrics and tests.
#[derive(Default, Debug)]
pub struct RpcCounters {
    pub connections_refused: AtomicU64,
    pub connections_timed_out: AtomicU64,
    /// Connections dropped because their unsent bytes stayed above
    /// `max_unsent_bytes` for longer than `unsent_timeout`.
    pub slow_readers_dropped: AtomicU64,
    pub requests_refused: AtomicU64,
    pub subscribers_refused: AtomicU64,
}

/// The API's state: the node, its limits and the permits that enforce them.
pub struct Api {
    shared: Arc<Shared>,
    limits: RpcLimits,
    body_readers: Semaphore,
    in_flight: Semaphore,
    subscribers: Arc<Semaphore>,
    subscribers_by_addr: Arc<AddrCounts>,
    readers_by_addr: Arc<AddrCounts>,
    /// `max_body_memory` in KiB.
    body_memory: Semaphore,
    pub counters: Arc<RpcCounters>,
}

/// The client's IP address, put on each request by [`serve`].
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::IpAddr);

/// How many of something each IP address holds, with a cap.
pub struct AddrCounts {
    cap: usize,
    held: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

/// One unit held by an address; returned on drop.
pub struct AddrHold {
    counts: Arc<AddrCounts>,
    ip: std::net::IpAddr,
}

impl AddrCounts {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { cap, held: Default::default() })
    }

    /// One more for `ip`, unless it holds `cap` already.
    pub fn take(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<AddrHold> {
        let mut m = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let c = m.entry(ip).or_insert(0);
        if *c >= self.cap {
            return None;
        }
        *c += 1;
        Some(AddrHold { counts: self.clone(), ip })
    }
}

impl Drop for AddrHold {
    fn drop(&mut self) {
        let mut m = self.counts.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = m.get_mut(&self.ip) {
            *c -= 1;
            if *c == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The API with default limits.
pub fn router(shared: Arc<Shared>) -> Router {
    router_with(shared, RpcLimits::default(), Arc::default())
}

pub fn router_with(shared: Arc<Shared>, limits: RpcLimits, counters: Arc<RpcCounters>) -> Router {
    let api = Arc::new(Api {
        shared,
        body_readers: Semaphore::new(limits.max_body_readers.max(1)),
        in_flight: Semaphore::new(limits.max_in_flight.max(1)),
        subscribers: Arc::new(Semaphore::new(limits.max_subscribers)),
        subscribers_by_addr: AddrCounts::new(per_addr(limits.max_subscribers_per_addr, limits.max_subscribers)),
        readers_by_addr: AddrCounts::new(per_addr(None, limits.max_body_readers.max(1))),
        body_memory: Semaphore::new(kib(limits.max_body_memory).clamp(1, Semaphore::MAX_PERMITS)),
        limits,
        counters,
    });
    Router::new()
        .route("/", post(handle))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/events", get(events))
        .with_state(api)
}

/// `ok`, or 503 with the reason while the node cannot commit blocks.
async fn health(State(a): State<Arc<Api>>) -> axum::response::Response {
    match a.shared.fault() {
        None => "ok".into_response(),
        Some(reason) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, format!("unavailable: {reason}")).into_response(),
    }
}

async fn metrics(State(a): State<Arc<Api>>) -> impl IntoResponse {
    let c = &a.counters;
    let mut text = a.shared.metrics.render();
    for (name, help, v) in [
        (
            "gridledger_rpc_connections_refused_total",
            "Connections closed at once: too many open",
            &c.connections_refused,
        ),
        ("gridledger_rpc_connections_timed_out_total", "Connections closed for idleness", &c.connections_timed_out),
        (
            "gridledger_rpc_slow_readers_dropped_total",
            "Connections dropped because the client left too many bytes unread for too long",
            &c.slow_readers_dropped,
        ),
        ("gridledger_rpc_requests_refused_total", "Requests refused for their size", &c.requests_refused),
        ("gridledger_rpc_subscribers_refused_total", "Event streams refused: too many open", &c.subscribers_refused),
    ] {
        text.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", v.load(Relaxed)));
    }
    let name = "gridledger_mempool_evicted_total";
    let evicted = a.shared.chain().mempool().evicted();
    text.push_str(&format!(
        "# HELP {name} Pending transactions pushed out of a full mempool by higher-paying ones\n# TYPE {name} counter\n{name} {evicted}\n"
    ));
    let name = "gridledger_p2p_gossip_dropped_total";
    text.push_str(&format!(
        "# HELP {name} Peer gossip messages dropped: that peer's gossip lane was full\n# TYPE {name} counter\n{name} {}\n",
        a.shared.gossip_dropped()
    ));
    text.push_str(&a.shared.lanes_metrics());
    ([("content-type", "text/plain; version=0.0.4")], text)
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

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(status: StatusCode, code: i64, message: String) -> Response {
    let v = envelope(Value::Null, Err(fail(code, message)));
    json_response(status, serde_json::to_vec(&v).unwrap_or_default())
}

/// An upper bound on the number of JSON values in `body`: every value but
/// the first follows a `,` or opens after a `[`/`{`/`:`, counted outside
/// strings. Linear, allocation-free, run before any parsing.
pub fn json_values_upper_bound(body: &[u8]) -> usize {
    let (mut n, mut in_str, mut escaped) = (1usize, false, false);
    for &b in body {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b',' | b'[' | b'{' | b':' => n += 1,
                _ => {}
            }
        }
    }
    n
}

/// A request: one object, or a batch counted as it is parsed.
enum Incoming {
    One(Value),
    Batch(Vec<Value>),
}

/// Parses a top-level batch without ever holding more than `max` entries.
struct BatchSeed<'a> {
    max: usize,
    too_many: &'a std::cell::Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for BatchSeed<'_> {
    type Value = Incoming;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Incoming, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BatchSeed<'_> {
    type Value = Incoming;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON-RPC request object or batch")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Incoming, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            if out.len() == self.max {
                self.too_many.set(true);
                return Err(A::Error::custom("batch too large"));
            }
            out.push(v);
        }
        Ok(Incoming::Batch(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Incoming, A::Error> {
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Incoming::One)
    }
    // Anything else is a well-formed but invalid request.
    fn visit_bool<E>(self, _: bool) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
    fn visit_str<E>(self, _: &str) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
    fn visit_unit<E>(self) -> Result<Incoming, E> {
        Ok(Incoming::One(Value::Null))
    }
}

async fn handle(State(a): State<Arc<Api>>, req: Request) -> Response {
    let lim = &a.limits;
    let refuse = |status, message: String| {
        a.counters.requests_refused.fetch_add(1, Relaxed);
        a.shared.metrics.rpc_errors.fetch_add(1, Relaxed);
        error_response(status, INVALID_REQUEST, message)
    };
    // The whole body must arrive within `body_timeout` of the head, every
    // wait included; nothing is taken before its first byte.
    let deadline = tokio::time::Instant::now() + lim.body_timeout;
    let late = || {
        refuse(
            StatusCode::REQUEST_TIMEOUT,
            format!("request body not received within {} ms", lim.body_timeout.as_millis()),
        )
    };
    let too_big = || {
        refuse(StatusCode::PAYLOAD_TOO_LARGE, format!("request body exceeds {} bytes (or was cut off)", lim.max_body))
    };
    let client = req.extensions().get::<ClientAddr>().map(|c| c.0);
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > lim.max_body) {
        return too_big();
    }
    let mut stream = req.into_body().into_data_stream();
    use futures_util::StreamExt;
    let first = match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => return late(),
        Ok(Some(Err(_))) => return too_big(),
        Ok(Some(Ok(b))) => Some(b),
        Ok(None) => None,
    };
    // One memory budget for bodies being read and bodies waiting below.
    let reserve = kib(declared.unwrap_or(lim.max_body)).clamp(1, kib(lim.max_body_memory).max(1)) as u32;
    let _memory = match tokio::time::timeout_at(deadline, a.body_memory.acquire_many(reserve)).await {
        Err(_) => return late(),
        Ok(Err(_)) => return error_response(StatusCode::SERVICE_UNAVAILABLE, INTERNAL_ERROR, "shutting down".into()),
        Ok(Ok(p)) => p,
    };
    let body = {
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(lim.max_body));
        if let Some(b) = first {
            buf.extend_from_slice(&b);
        }
        if buf.len() < declared.unwrap_or(usize::MAX) {
            // A reading turn, at most three quarters of them per address.
            let _reading = loop {
                let Ok(turn) = tokio::time::timeout_at(deadline, a.body_readers.acquire()).await else { return late() };
                let Ok(turn) = turn else {
                    return error_response(StatusCode::SERVICE_UNAVAILABLE, INTERNAL_ERROR, "shutting down".into());
                };
                match client.map(|ip| a.readers_by_addr.take(ip)) {
                    None => break (turn, None),
                    Some(Some(hold)) => break (turn, Some(hold)),
                    Some(None) => {
                        drop(turn);
                        if tokio::time::timeout_at(deadline, tokio::time::sleep(Duration::from_millis(10)))
                            .await
                            .is_err()
                        {
                            return late();
                        }
                    }
                }
            };
            loop {
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Err(_) => return late(),
                    Ok(Some(Err(_))) => return too_big(),
                    Ok(Some(Ok(b))) => {
                        if buf.len() + b.len() > lim.max_body {
                            return too_big();
                        }
                        buf.extend_from_slice(&b);
                    }
                    Ok(None) => break,
                }
            }
        }
        if buf.len() > lim.max_body || declared.is_some_and(|n| n != buf.len()) {
            return too_big();
        }
        buf
    };
    let values = json_values_upper_bound(&body);
    if values > lim.max_json_values {
        return refuse(StatusCode::OK, format!("request holds more than {} JSON values", lim.max_json_values));
    }
    let Ok(_permit) = a.in_flight.acquire().await else {
        return error_response(StatusCode::SERVICE_UNAVAILABLE, INTERNAL_ERROR, "shutting down".into());
    };
    let a2 = a.clone();
    let out = tokio::task::spawn_blocking(move || respond(&a2, &body)).await;
    match out {
        // Only notifications (JSON-RPC 2.0 §4.1, §6): nothing to reply.
        Ok(bytes) if bytes.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(e) => error_response(StatusCode::OK, INTERNAL_ERROR, format!("internal error: {e}")),
    }
}

/// Bytes in KiB, rounded up, as `u32` permits.
fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).min(u32::MAX as usize)
}

/// Parses, dispatches and serializes one request body, within the limits.
fn respond(a: &Api, body: &[u8]) -> Vec<u8> {
    let s = &*a.shared;
    let lim = &a.limits;
    let too_many = std::cell::Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = BatchSeed { max: lim.max_batch, too_many: &too_many }.deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    let single = |v: Value| serde_json::to_vec(&v).unwrap_or_default();
    let reqs = match parsed {
        Ok(Incoming::One(r)) => {
            let Some(reply) = one(a, r) else { return Vec::new() };
            let out = single(reply);
            if out.len() > lim.max_response {
                return single(too_large(lim.max_response));
            }
            return out;
        }
        Ok(Incoming::Batch(reqs)) if reqs.is_empty() => {
            s.metrics.rpc_errors.fetch_add(1, Relaxed);
            return single(envelope(Value::Null, Err(fail(INVALID_REQUEST, "empty batch"))));
        }
        Ok(Incoming::Batch(reqs)) => reqs,
        Err(_) if too_many.get() => {
            a.counters.requests_refused.fetch_add(1, Relaxed);
            s.metrics.rpc_errors.fetch_add(1, Relaxed);
            let m = format!("batch exceeds {} entries", lim.max_batch);
            return single(envelope(Value::Null, Err(fail(INVALID_REQUEST, m))));
        }
        Err(e) => {
            s.metrics.rpc_errors.fetch_add(1, Relaxed);
            return single(envelope(Value::Null, Err(fail(PARSE_ERROR, format!("parse error: {e}")))));
        }
    };
    // Serialize as we go, so the batch's answers are never all held as values.
    // Notifications are executed but get no entry; a batch of only
    // notifications gets no reply at all (JSON-RPC 2.0 §6).
    let mut out = vec![b'['];
    let mut replies = 0usize;
    for r in reqs {
        let Some(reply) = one(a, r) else { continue };
        if replies > 0 {
            out.push(b',');
        }
        replies += 1;
        if serde_json::to_writer(&mut out, &reply).is_err() || out.len() > lim.max_response {
            a.counters.requests_refused.fetch_add(1, Relaxed);
            return single(too_large(lim.max_response));
        }
    }
    if replies == 0 {
        return Vec::new();
    }
    out.push(b']');
    out
}

fn too_large(max: usize) -> Value {
    envelope(Value::Null, Err(fail(RESPONSE_TOO_LARGE, format!("response exceeds {max} bytes; ask for less"))))
}

/// Answers one request; `None` for a notification (a well-formed request
/// object without an `id` member), which is executed but, as JSON-RPC 2.0
/// §4.1 requires, never answered. A malformed request without an id is not
/// a notification and gets its error with `"id": null`.
fn one(a: &Api, req: Value) -> Option<Value> {
    let s = &*a.shared;
    s.metrics.rpc_requests.fetch_add(1, Relaxed);
    let notification = req.as_object().is_some_and(|o| {
        !o.contains_key("id")
            && o.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && o.get("method").is_some_and(Value::is_string)
    });
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let result = (|| {
        if req.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(fail(INVALID_REQUEST, "jsonrpc must be \"2.0\""));
        }
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return Err(fail(INVALID_REQUEST, "method must be a string"));
        };
        let named: Vec<Value>;
        let params = match req.get("params") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(list)) => {
                crate::openrpc::check_arity(method, list.len()).map_err(|m| fail(INVALID_PARAMS, m))?;
                &list[..]
            }
            Some(Value::Object(o)) => {
                named = crate::openrpc::positional(method, o).map_err(|m| fail(INVALID_PARAMS, m))?;
                &named[..]
            }
            Some(_) => return Err(fail(INVALID_PARAMS, "params must be an array or an object")),
        };
        if method == "rpc.discover" {
            return Ok(crate::openrpc::document());
        }
        dispatch(a, method, params)
    })();
    if result.is_err() {
        s.metrics.rpc_errors.fetch_add(1, Relaxed);
    }
    (!notification).then(|| envelope(id, result))
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

fn dispatch(a: &Api, method: &str, p: &[Value]) -> Result<Value, RpcFail> {
    let s = &*a.shared;
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
                "max_tx_bytes": c.config().max_tx_bytes,
                "min_gas_price": c.config().min_gas_price,
                "block_interval_ms": match s.block_interval_ms.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => Value::Null,
                    ms => json!(ms),
                },
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
            if list.len() > a.limits.max_send_txs {
                return Err(fail(
                    INVALID_PARAMS,
                    format!("{} transactions exceed the limit of {} per call", list.len(), a.limits.max_send_txs),
                ));
            }
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
        // The whole block with its transactions, Borsh-encoded as hex: what
        // an application recorded in it (an IOR batch's entries are read
        // back from here); `null` above the tip.
        "gl_getBlockRaw" => {
            let height = param_u64(p, 0, "height")?;
            let Some(b) = s.store.block(height).map_err(internal)? else {
                return Ok(Value::Null);
            };
            Ok(json!(hex::encode(borsh::to_vec(&b).map_err(internal)?)))
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
            let (mut out, mut size) = (Vec::new(), 0usize);
            for h in from..=to {
                let Some(n) = notice(s, h).map_err(internal)? else { break };
                let v = to_json(&n)?;
                size += serde_json::to_vec(&v).map_err(internal)?.len();
                // Stop early rather than build a response over the limit;
                // the first block is always returned.
                if size > a.limits.max_response / 2 && !out.is_empty() {
                    break;
                }
                out.push(v);
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

/// Where one subscriber's stream is.
struct Cursor {
    api: Arc<Api>,
    next: u64,
    live: broadcast::Receiver<Arc<BlockNotice>>,
    /// Held as long as the stream lives.
    _slot: (tokio::sync::OwnedSemaphorePermit, Option<AddrHold>),
}

impl Cursor {
    /// The notice of height `next`, from the live feed if it is the one just
    /// committed, else from the store; waits while `next` is above the tip.
    async fn advance(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        let mut fresh: Option<Arc<BlockNotice>> = None;
        loop {
            let n = match fresh.take().filter(|n| n.height == self.next) {
                Some(n) => Some(n),
                None => {
                    let (api, h) = (self.api.clone(), self.next);
                    match tokio::task::spawn_blocking(move || notice(&api.shared, h)).await {
                        Ok(Ok(n)) => n.map(Arc::new),
                        Ok(Err(e)) => {
                            tracing::warn!("event stream: reading block {h}: {e}");
                            return None;
                        }
                        Err(_) => return None,
                    }
                }
            };
            if let Some(n) = n {
                self.next += 1;
                let ev = SseEvent::default().event("block").json_data(&*n).unwrap_or_default();
                return Some((Ok(ev), self));
            }
            // Not committed yet: the live feed was subscribed before the
            // first read, so no commit can slip between the read and this wait.
            match self.live.recv().await {
                Ok(n) => fresh = Some(n),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn events(State(a): State<Arc<Api>>, Query(q): Query<EventsQuery>, ext: axum::http::Extensions) -> Response {
    let by_addr = match ext.get::<ClientAddr>().map(|c| a.subscribers_by_addr.take(c.0)) {
        None => None,
        Some(Some(hold)) => Some(hold),
        Some(None) => {
            a.counters.subscribers_refused.fetch_add(1, Relaxed);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "too many event subscribers from your address (limit {})",
                    per_addr(a.limits.max_subscribers_per_addr, a.limits.max_subscribers)
                ),
            )
                .into_response();
        }
    };
    let Ok(slot) = a.subscribers.clone().try_acquire_owned() else {
        a.counters.subscribers_refused.fetch_add(1, Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("too many event subscribers (limit {})", a.limits.max_subscribers),
        )
            .into_response();
    };
    let live = a.shared.events.subscribe();
    let next = match q.from {
        Some(h) => h.max(1),
        None => a.shared.chain().tip().height + 1,
    };
    let cursor = Cursor { api: a.clone(), next, live, _slot: (slot, by_addr) };
    let s: std::pin::Pin<Box<dyn Stream<Item = Result<SseEvent, Infallible>> + Send>> =
        Box::pin(stream::unfold(cursor, Cursor::advance));
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}

/// Serves the API on `listener` until `stop` resolves, enforcing the
/// connection cap and the header and idle timeouts of `limits`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: RpcLimits,
    counters: Arc<RpcCounters>,
    stop: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let by_addr = AddrCounts::new(per_addr(limits.max_connections_per_addr, limits.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!("rpc accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let Some(hold) = by_addr.take(peer.ip()) else {
            counters.connections_refused.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counters.connections_refused.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let unsent = crate::idle::UnsentLimit { max_unsent: limits.max_unsent_bytes, timeout: limits.unsent_timeout };
        let io = TokioIo::new(
            crate::idle::IdleStream::new(stream, limits.idle_timeout, counters.clone()).with_unsent_limit(unsent),
        );
        let svc =
            hyper_util::service::TowerToHyperService::new(app.clone().layer(axum::Extension(ClientAddr(peer.ip()))));
        let header_timeout = limits.header_timeout;
        conns.spawn(async move {
            let _permit = (permit, hold);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(io, svc);
            if let Err(e) = conn.await {
                tracing::debug!("rpc connection: {e}");
            }
        });
    }
    // Open connections (event streams among them) end with the server.
    conns.shutdown().await;
}
