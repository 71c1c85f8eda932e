//! A blocking JSON-RPC client for the CLI, tests and load generators.

use gridledger_core::{Address, Hash32};
use gridledger_ledger::SignedTransaction;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("transport: {0}")]
    Transport(String),
    #[error("rpc error {code}: {message}")]
    Remote { code: i64, message: String, kind: Option<String> },
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

pub struct RpcClient {
    url: String,
    agent: ureq::Agent,
}

impl RpcClient {
    pub fn new(url: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build();
        Self { url: url.trim_end_matches('/').to_string(), agent: ureq::Agent::new_with_config(config) }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let req = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let mut resp = self
            .agent
            .post(&format!("{}/", self.url))
            .send_json(&req)
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let v: Value = resp.body_mut().read_json().map_err(|e| RpcError::Protocol(e.to_string()))?;
        if let Some(e) = v.get("error") {
            return Err(RpcError::Remote {
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").to_string(),
                kind: e["data"]["kind"].as_str().map(String::from),
            });
        }
        v.get("result").cloned().ok_or_else(|| RpcError::Protocol(v.to_string()))
    }

    /// A JSON-RPC batch: one HTTP request, one result per call, in order.
    pub fn call_batch(&self, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        let reqs: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({ "jsonrpc": "2.0", "id": i, "method": m, "params": p }))
            .collect();
        let mut resp = self
            .agent
            .post(&format!("{}/", self.url))
            .send_json(Value::Array(reqs))
            .map_err(|e| RpcError::Transport(e.to_string()))?;
        let v: Value = resp.body_mut().read_json().map_err(|e| RpcError::Protocol(e.to_string()))?;
        let arr = v.as_array().ok_or_else(|| RpcError::Protocol(v.to_string()))?;
        let mut out: Vec<Result<Value, RpcError>> =
            (0..calls.len()).map(|_| Err(RpcError::Protocol("missing response".into()))).collect();
        for r in arr {
            let Some(i) = r["id"].as_u64().map(|i| i as usize).filter(|i| *i < calls.len()) else { continue };
            out[i] = match r.get("error") {
                Some(e) => Err(RpcError::Remote {
                    code: e["code"].as_i64().unwrap_or(0),
                    message: e["message"].as_str().unwrap_or("").to_string(),
                    kind: e["data"]["kind"].as_str().map(String::from),
                }),
                None => Ok(r.get("result").cloned().unwrap_or(Value::Null)),
            };
        }
        Ok(out)
    }

    /// How many of `hashes` this node has committed (batch requests of 500).
    pub fn committed_count(&self, hashes: &[Hash32]) -> Result<usize, RpcError> {
        let mut n = 0;
        for chunk in hashes.chunks(500) {
            let calls: Vec<(&str, Value)> = chunk.iter().map(|h| ("gl_getReceipt", json!([h]))).collect();
            n += self.call_batch(&calls)?.into_iter().filter(|r| matches!(r, Ok(v) if !v.is_null())).count();
        }
        Ok(n)
    }

    /// GET a path (e.g. `/metrics`) as text.
    pub fn get_text(&self, path: &str) -> Result<String, RpcError> {
        let mut resp =
            self.agent.get(&format!("{}{}", self.url, path)).call().map_err(|e| RpcError::Transport(e.to_string()))?;
        resp.body_mut().read_to_string().map_err(|e| RpcError::Protocol(e.to_string()))
    }

    pub fn send(&self, tx: &SignedTransaction) -> Result<Hash32, RpcError> {
        let v = self.call("gl_sendTransaction", json!([hex::encode(tx.to_bytes())]))?;
        serde_json::from_value(v).map_err(|e| RpcError::Protocol(e.to_string()))
    }

    /// Submits many transactions in one call; per item the hash or the error.
    pub fn send_many(&self, txs: &[SignedTransaction]) -> Result<Vec<Result<Hash32, String>>, RpcError> {
        let hexes: Vec<String> = txs.iter().map(|t| hex::encode(t.to_bytes())).collect();
        let v = self.call("gl_sendTransactions", json!([hexes]))?;
        let arr = v.as_array().ok_or_else(|| RpcError::Protocol(v.to_string()))?;
        Ok(arr
            .iter()
            .map(|r| match r.get("hash").and_then(Value::as_str).map(Hash32::from_hex) {
                Some(Ok(h)) => Ok(h),
                _ => Err(r["error"]["kind"].as_str().unwrap_or("unknown").to_string()),
            })
            .collect())
    }

    pub fn account(&self, a: &Address) -> Result<Value, RpcError> {
        self.call("gl_getAccount", json!([a]))
    }

    pub fn next_nonce(&self, a: &Address) -> Result<u64, RpcError> {
        self.account(a)?["next_nonce"].as_u64().ok_or_else(|| RpcError::Protocol("next_nonce".into()))
    }

    pub fn receipt(&self, h: &Hash32) -> Result<Option<Value>, RpcError> {
        let v = self.call("gl_getReceipt", json!([h]))?;
        Ok(if v.is_null() { None } else { Some(v) })
    }

    /// Polls until the transaction has a receipt.
    pub fn wait_receipt(&self, h: &Hash32, timeout: Duration) -> Result<Value, RpcError> {
        let start = Instant::now();
        loop {
            if let Some(r) = self.receipt(h)? {
                return Ok(r);
            }
            if start.elapsed() > timeout {
                return Err(RpcError::Timeout(format!("receipt of {h}")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn height(&self) -> Result<u64, RpcError> {
        self.call("gl_chainInfo", json!([]))?["height"].as_u64().ok_or_else(|| RpcError::Protocol("height".into()))
    }
}

/// A [`ChainClient`](gridledger_ledger::ChainClient) over a running node's
/// JSON-RPC, so applications written against the trait (the IOR driver)
/// run on a real `gridledger node` or testnet as on an in-process chain.
///
/// Decisions where the trait is silent: the block clock is the node's wall
/// clock, so [`set_now`](gridledger_ledger::ChainClient::set_now) *waits*
/// (sleeps) until the local clock reaches the requested time instead of
/// moving it; `seal` polls until every transaction submitted through this
/// client has a receipt (up to `timeout`). The infallible reads of the
/// trait (`tip`, `next_nonce`, `account`) fall back to the last known /
/// default value when the node cannot be reached; the following fallible
/// call reports the transport error, naming the node's URL.
///
/// `gridledger ior day --rpc` runs the IOR driver over it: the day is
/// given as block-time slots from now (`DayConfig::start_ms`/`slot_ms`)
/// rather than a simulated clock, so `set_now` only waits out slot ends
/// and dispute windows; batches are bounded by [`Self::max_tx_bytes`].
pub struct RpcChain {
    rpc: RpcClient,
    chain_id: gridledger_core::ChainId,
    validators: Vec<gridledger_core::PublicKey>,
    max_tx_bytes: usize,
    pending: Vec<Hash32>,
    timeout: Duration,
    last_tip: std::cell::RefCell<gridledger_ledger::BlockHeader>,
}

/// Milliseconds since the Unix epoch on this machine.
pub fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl RpcChain {
    /// Connects and reads the chain's id, validators and transaction size
    /// limit (`gl_chainInfo`).
    pub fn connect(url: &str) -> Result<Self, RpcError> {
        let rpc = RpcClient::new(url);
        let info = rpc.call("gl_chainInfo", json!([]))?;
        let chain_id = serde_json::from_value(info["chain_id"].clone())
            .map_err(|e| RpcError::Protocol(format!("chain_id: {e}")))?;
        let validators = serde_json::from_value(info["validators"].clone())
            .map_err(|e| RpcError::Protocol(format!("validators: {e}")))?;
        // Nodes before `max_tx_bytes` was reported used the 64 KiB default.
        let max_tx_bytes = info["max_tx_bytes"].as_u64().map_or(64 * 1024, |n| n as usize);
        let v = rpc.call("gl_getBlock", json!(["latest"]))?;
        let tip =
            serde_json::from_value(v["header"].clone()).map_err(|e| RpcError::Protocol(format!("header: {e}")))?;
        Ok(Self {
            rpc,
            chain_id,
            validators,
            max_tx_bytes,
            pending: Vec::new(),
            timeout: Duration::from_secs(60),
            last_tip: std::cell::RefCell::new(tip),
        })
    }

    /// How long `seal` waits for the submitted transactions (default 60 s).
    pub fn with_timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The largest transaction (bytes) the node admits.
    pub fn max_tx_bytes(&self) -> usize {
        self.max_tx_bytes
    }

    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// A transport or node error as the trait's error, naming the node.
    fn client_err(&self, e: RpcError) -> gridledger_ledger::ClientError {
        gridledger_ledger::ClientError::Chain(format!("node at {}: {e}", self.rpc.url()))
    }

    fn header(&self) -> Result<gridledger_ledger::BlockHeader, RpcError> {
        let v = self.rpc.call("gl_getBlock", json!(["latest"]))?;
        serde_json::from_value(v["header"].clone()).map_err(|e| RpcError::Protocol(format!("header: {e}")))
    }
}

impl gridledger_ledger::ChainClient for RpcChain {
    fn chain_id(&self) -> gridledger_core::ChainId {
        self.chain_id
    }

    fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, gridledger_ledger::ClientError> {
        let h = self.rpc.send(tx).map_err(|e| self.client_err(e))?;
        self.pending.push(h);
        Ok(h)
    }

    fn seal(&mut self) -> Result<(), gridledger_ledger::ClientError> {
        let start = Instant::now();
        while !self.pending.is_empty() {
            let mut still = Vec::new();
            for chunk in self.pending.chunks(500) {
                let calls: Vec<(&str, Value)> = chunk.iter().map(|h| ("gl_getReceipt", json!([h]))).collect();
                let res = self.rpc.call_batch(&calls).map_err(|e| self.client_err(e))?;
                for (h, r) in chunk.iter().zip(res) {
                    match r {
                        Ok(v) if !v.is_null() => {}
                        Ok(_) => still.push(*h),
                        Err(e) => return Err(self.client_err(e)),
                    }
                }
            }
            self.pending = still;
            if self.pending.is_empty() {
                break;
            }
            if start.elapsed() > self.timeout {
                return Err(gridledger_ledger::ClientError::NotIncluded(self.pending[0]));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn receipt(&self, h: &Hash32) -> Result<Option<gridledger_ledger::Receipt>, gridledger_ledger::ClientError> {
        match self.rpc.receipt(h).map_err(|e| self.client_err(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| gridledger_ledger::ClientError::Chain(format!("receipt: {e}"))),
        }
    }

    fn view(
        &self,
        contract: gridledger_core::ContractId,
        method: &str,
        args: &[u8],
    ) -> Result<Value, gridledger_ledger::ClientError> {
        self.rpc.call("gl_callView", json!([contract, method, hex::encode(args)])).map_err(|e| self.client_err(e))
    }

    fn tip(&self) -> gridledger_ledger::BlockHeader {
        match self.header() {
            Ok(h) => {
                *self.last_tip.borrow_mut() = h.clone();
                h
            }
            Err(_) => self.last_tip.borrow().clone(),
        }
    }

    fn validators(&self) -> Vec<gridledger_core::PublicKey> {
        self.validators.clone()
    }

    fn next_nonce(&self, a: &Address) -> u64 {
        self.rpc.next_nonce(a).unwrap_or(0)
    }

    fn account(&self, a: &Address) -> gridledger_ledger::Account {
        match self.rpc.account(a) {
            Ok(v) => gridledger_ledger::Account {
                balance: serde_json::from_value(v["balance"].clone()).unwrap_or_default(),
                nonce: v["nonce"].as_u64().unwrap_or(0),
            },
            Err(_) => Default::default(),
        }
    }

    /// The node stamps blocks with its wall clock (never below its tip's).
    fn now(&self) -> gridledger_core::Timestamp {
        wall_clock_ms().max(self.tip().timestamp)
    }

    /// A real node's clock cannot be moved: waits until it reaches `t`.
    fn set_now(&mut self, t: gridledger_core::Timestamp) {
        loop {
            let now = wall_clock_ms();
            if now >= t {
                return;
            }
            std::thread::sleep(Duration::from_millis((t - now).min(200)));
        }
    }

    fn contract_state(
        &self,
        contract: gridledger_core::ContractId,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, gridledger_ledger::ClientError> {
        let v = self
            .rpc
            .call("gl_getContractState", json!([contract, hex::encode(key)]))
            .map_err(|e| self.client_err(e))?;
        match v.as_str() {
            None => Ok(None),
            Some(s) => {
                hex::decode(s).map(Some).map_err(|e| gridledger_ledger::ClientError::Chain(format!("state: {e}")))
            }
        }
    }

    fn block(&self, height: u64) -> Result<Option<gridledger_ledger::Block>, gridledger_ledger::ClientError> {
        let v = self.rpc.call("gl_getBlockRaw", json!([height])).map_err(|e| self.client_err(e))?;
        let Some(s) = v.as_str() else { return Ok(None) };
        let bytes = hex::decode(s).map_err(|e| gridledger_ledger::ClientError::Chain(format!("block: {e}")))?;
        borsh::from_slice(&bytes).map(Some).map_err(|e| gridledger_ledger::ClientError::Chain(format!("block: {e}")))
    }
}
