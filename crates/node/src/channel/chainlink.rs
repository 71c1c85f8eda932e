//! The channel's view of a running node over JSON-RPC: submit the machine's
//! [`ChainTx`]s as signed CNS calls, and turn the CNS events of blocks into
//! [`ChainEvent`]s for one channel.

use crate::client::{RpcClient, RpcError};
use gridledger_channels::machine::{ChainEvent, ChainTx};
use gridledger_contracts::CNS_ID;
use gridledger_core::{Amount, Hash32, KeyPair};
use gridledger_ledger::{Transaction, TxKind};
use serde_json::{json, Value};
use std::time::Duration;

/// Gas limit of every CNS call the channel tools send. A fixed limit is
/// safe because no CNS call's gas grows with history: the ESC and MSC
/// records are fixed-size and their lists are keyed one entry per key, so
/// the costliest call (a close with both sides on credit notes, about
/// 0.6 M gas) stays below it however many states a peer registers.
pub const CNS_GAS_LIMIT: u64 = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error("unexpected node answer: {0}")]
    Protocol(String),
    #[error("{method} reverted: {reason}")]
    Reverted { method: String, reason: String },
}

/// A signer of CNS calls for one account.
pub struct ChainLink {
    pub client: RpcClient,
    pub account: KeyPair,
    chain_id: u32,
}

/// A committed call's outcome.
#[derive(Clone, Debug)]
pub struct CallOutcome {
    pub hash: Hash32,
    pub success: bool,
    pub reason: String,
    pub gas_used: u64,
    pub fee: u128,
    pub output: Vec<u8>,
    pub receipt: Value,
}

/// The node's chain id (`gl_chainInfo`).
pub fn chain_id(client: &RpcClient) -> Result<u32, ChainError> {
    let info = client.call("gl_chainInfo", json!([]))?;
    info["chain_id"].as_u64().and_then(|c| u32::try_from(c).ok()).ok_or_else(|| ChainError::Protocol("chain_id".into()))
}

impl ChainLink {
    pub fn connect(url: &str, account: KeyPair) -> Result<Self, ChainError> {
        let client = RpcClient::new(url);
        let chain_id = chain_id(&client)?;
        Ok(Self { client, account, chain_id })
    }

    /// Signs and submits a CNS call; returns its hash.
    pub fn submit(&self, method: &str, args: Vec<u8>, value: Amount) -> Result<Hash32, ChainError> {
        let nonce = self.client.next_nonce(&self.account.address())?;
        let tx = Transaction {
            chain_id: self.chain_id,
            sender: self.account.public(),
            nonce,
            gas_limit: CNS_GAS_LIMIT,
            gas_price: Amount(1),
            kind: TxKind::Call { contract: CNS_ID, method: method.into(), args, value },
        }
        .sign(&self.account);
        Ok(self.client.send(&tx)?)
    }

    /// The CNS contract on this chain: what every statement is signed for.
    pub fn domain(&self) -> gridledger_contracts::cns::Domain {
        gridledger_contracts::cns::Domain::cns(self.chain_id)
    }

    pub fn submit_tx(&self, tx: &ChainTx) -> Result<Hash32, ChainError> {
        self.submit(tx.method, tx.args.clone(), tx.value)
    }

    /// Waits for a receipt and reads it.
    pub fn outcome(&self, hash: &Hash32, timeout: Duration) -> Result<CallOutcome, ChainError> {
        let r = self.client.wait_receipt(hash, timeout)?;
        Ok(parse_outcome(*hash, r))
    }

    /// Submits, waits, and fails on a revert.
    pub fn call(&self, method: &str, args: Vec<u8>, value: Amount) -> Result<CallOutcome, ChainError> {
        let h = self.submit(method, args, value)?;
        let o = self.outcome(&h, Duration::from_secs(30))?;
        if !o.success {
            return Err(ChainError::Reverted { method: method.into(), reason: o.reason });
        }
        Ok(o)
    }
}

/// Reads a receipt's JSON.
pub fn parse_outcome(hash: Hash32, r: Value) -> CallOutcome {
    CallOutcome {
        hash,
        success: r["status"].as_str() == Some("success"),
        reason: r["reason"].as_str().unwrap_or("").to_string(),
        gas_used: r["gas_used"].as_u64().unwrap_or(0),
        fee: r["fee"].as_str().and_then(|f| f.parse().ok()).unwrap_or(0),
        output: r["output"].as_str().and_then(|h| hex::decode(h.trim_start_matches("0x")).ok()).unwrap_or_default(),
        receipt: r,
    }
}

/// Reads a CNS view through `gl_callView`.
pub fn view(client: &RpcClient, method: &str, args: Vec<u8>) -> Result<Value, ChainError> {
    Ok(client.call("gl_callView", json!([CNS_ID, method, hex::encode(args)]))?)
}

/// Maps one event's JSON to a channel event of channel `cid`.
pub fn chain_event_of(e: &Value, cid: &Hash32) -> Option<ChainEvent> {
    if e["emitter"].as_u64() != Some(u64::from(CNS_ID)) {
        return None;
    }
    let attrs = e["attributes"].as_array()?;
    let attr = |k: &str| -> Option<&str> {
        attrs.iter().find_map(|kv| {
            let kv = kv.as_array()?;
            (kv.first()?.as_str()? == k).then(|| kv.get(1)?.as_str()).flatten()
        })
    };
    if attr("cid")? != cid.to_string() {
        return None;
    }
    let num = |k: &str| attr(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(match e["name"].as_str()? {
        "cns_channel_opening" => ChainEvent::Registered {
            t_delta_ms: num("t_delta"),
            hstate: attr("hstate").and_then(|h| h.parse().ok()).unwrap_or(Hash32::ZERO),
        },
        "cns_channel_open" => ChainEvent::Active,
        "cns_channel_funded" => ChainEvent::Funded {
            side: u8::try_from(num("side")).unwrap_or(u8::MAX),
            credit: attr("kind") == Some("credit"),
        },
        "cns_channel_topped_up" => ChainEvent::ToppedUp {
            side: u8::try_from(num("side")).unwrap_or(u8::MAX),
            total: Amount(attr("total").and_then(|v| v.parse::<u128>().ok()).unwrap_or(0)),
        },
        "cns_dispute_raised" => ChainEvent::DisputeRaised {
            counter: num("counter"),
            by: u8::try_from(num("by")).unwrap_or(u8::MAX),
            t_end: num("t_end"),
        },
        "cns_dispute_resolved" => ChainEvent::DisputeResolved { counter: num("counter") },
        // The poller fills in the registered state (`with_registered_state`).
        "cns_channel_updated" => ChainEvent::Updated { counter: num("counter"), state: None },
        "cns_channel_closed" => ChainEvent::Closed { counter: num("counter") },
        "cns_channel_withdrawn" => {
            let amt = |k: &str| Amount(attr(k).and_then(|v| v.parse::<u128>().ok()).unwrap_or(0));
            ChainEvent::WithdrawalPaid { paid: [amt("withdrawn0"), amt("withdrawn1")] }
        }
        // An aborted open ends the channel before any update.
        "cns_channel_aborted" => ChainEvent::Closed { counter: 0 },
        _ => return None,
    })
}

/// The events to hand the machine for `e`: `e`, followed by what the
/// channel's record adds. After `channel_update` / `channel_withdraw` the
/// registered state (`Updated` with its state: a party must know a newer
/// state it signed is on chain before it disputes); after a resolved
/// dispute the state that overturned it (`OnChain`). Before `Closed`, the
/// final state (`OnChain`). Each read is retried ([`READ_RETRY_MS`]); if
/// every try fails it adds nothing (the event still goes, and the machine
/// asks for the read again: `Step::read_channel`). The logic is [`ChainEvent::with_chain_record`], shared with the
/// in-process driver; this reads the record over RPC.
pub fn with_chain_record(client: &RpcClient, cid: &Hash32, e: ChainEvent) -> Vec<ChainEvent> {
    e.with_chain_record(|| read_latest_retrying(client, cid))
}

/// Pauses between the reads of a state-changing event's channel record
/// (ms): a node restarting or an RPC timeout at event time gets a few
/// bounded chances before the event goes on without its state (the
/// machine then asks for the read again from its ticks, with back-off:
/// `Step::read_channel`).
pub const READ_RETRY_MS: [u64; 3] = [50, 200, 800];

/// The channel's registered state, read with [`READ_RETRY_MS`] back-off;
/// `None` if every read failed.
pub fn read_latest_retrying(client: &RpcClient, cid: &Hash32) -> Option<Box<gridledger_contracts::cns::SignedState>> {
    let mut pauses = READ_RETRY_MS.iter();
    loop {
        if let Ok(Some(ch)) = read_channel(client, cid) {
            return Some(Box::new(ch.latest));
        }
        std::thread::sleep(std::time::Duration::from_millis(*pauses.next()?));
    }
}

/// Follows the chain from a height, yielding one channel's events in order.
pub struct EventCursor {
    pub cid: Hash32,
    pub next_height: u64,
    /// Timestamp of the newest block seen (the chain's clock).
    pub chain_time: u64,
}

impl EventCursor {
    pub fn new(cid: Hash32, from_height: u64) -> Self {
        Self { cid, next_height: from_height, chain_time: 0 }
    }

    /// New events since the last poll (at most 1,000 blocks per call).
    pub fn poll(&mut self, client: &RpcClient) -> Result<Vec<ChainEvent>, ChainError> {
        let tip = client.height()?;
        if tip < self.next_height {
            return Ok(vec![]);
        }
        let to = tip.min(self.next_height + 999);
        let blocks = client.call("gl_getEvents", json!([self.next_height, to]))?;
        let blocks = blocks.as_array().ok_or_else(|| ChainError::Protocol("gl_getEvents".into()))?;
        let mut out = vec![];
        for b in blocks {
            let h = b["height"].as_u64().ok_or_else(|| ChainError::Protocol("block height".into()))?;
            self.chain_time = self.chain_time.max(b["timestamp"].as_u64().unwrap_or(0));
            for te in b["events"].as_array().into_iter().flatten() {
                if let Some(ev) = chain_event_of(&te["event"], &self.cid) {
                    out.push(ev);
                }
            }
            self.next_height = h + 1;
        }
        Ok(out)
    }
}

fn raw_bytes(client: &RpcClient, key: &[u8]) -> Result<Option<Vec<u8>>, ChainError> {
    let v = client.call("gl_getContractState", json!([CNS_ID, hex::encode(key)]))?;
    let Some(h) = v.as_str() else {
        return Ok(None);
    };
    hex::decode(h.trim_start_matches("0x")).map(Some).map_err(|e| ChainError::Protocol(e.to_string()))
}

fn raw<T: borsh::BorshDeserialize>(client: &RpcClient, key: &[u8]) -> Result<Option<T>, ChainError> {
    match raw_bytes(client, key)? {
        None => Ok(None),
        Some(b) => borsh::from_slice(&b).map(Some).map_err(|e| ChainError::Protocol(e.to_string())),
    }
}

/// The channel record, read raw from the CNS contract's storage.
pub fn read_channel(
    client: &RpcClient,
    cid: &Hash32,
) -> Result<Option<gridledger_contracts::cns::Channel>, ChainError> {
    raw(client, &[b"ch/".as_slice(), &cid.0].concat())
}

/// An ESC with its state hashes and disputes (one read per entry).
pub fn read_esc(client: &RpcClient, scid: &Hash32) -> Result<Option<gridledger_contracts::cns::Esc>, ChainError> {
    gridledger_contracts::cns::gather::esc(|k| raw_bytes(client, k), ChainError::Protocol, scid)
}

/// An MSC with its ESCs and pending and signed settlements (one read per
/// entry).
pub fn read_msc(client: &RpcClient, sid: u64) -> Result<Option<gridledger_contracts::cns::Msc>, ChainError> {
    gridledger_contracts::cns::gather::msc(|k| raw_bytes(client, k), ChainError::Protocol, sid)
}

/// An account's balance.
pub fn balance(client: &RpcClient, a: &gridledger_core::Address) -> Result<u128, ChainError> {
    let v = client.account(a)?;
    v["balance"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| ChainError::Protocol("balance".into()))
}

/// The next MSC id the CNS contract will assign (= the number of MSCs).
pub fn read_next_sid(client: &RpcClient) -> Result<u64, ChainError> {
    Ok(raw::<u64>(client, b"next_sid")?.unwrap_or(0))
}
