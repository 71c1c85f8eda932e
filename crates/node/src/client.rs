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
