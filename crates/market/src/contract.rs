//! The market's on-chain record (§6.3.2–6.3.3): encrypted requests, the
//! grid operator's admission rules and the admitted request ids, per
//! clearing interval.
//!
//! A prosumer submits its request encrypted under the enclaves' PKE
//! together with the two fields the operator's pre-admission check needs in
//! the clear (its bus and its maximum energy, §6.3.3); the utility or cost
//! coefficients stay encrypted. The operator publishes the interval's
//! admission rules (a cap on the admitted maximum energy per bus, kWh as
//! integer Wh, and a free-text note), then records the admitted request ids.
//! The enclaves clear exactly the admitted requests, and the digest of their
//! ciphertexts is the `D` bound into every TEAR-DO proof.
//!
//! Not part of the default registry: a chain that runs the market
//! registers [`MarketContract`] under [`MARKET_ID`] with its operator.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::Tag;
use gridledger_core::{Address, Hash32};
use gridledger_ledger::contract::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde::Serialize;
use serde_json::json;

/// Contract id the market uses on chains that run it.
pub const MARKET_ID: gridledger_core::ContractId = 40;
/// Domain tag of request ids.
pub const REQUEST_TAG: Tag = Tag("gridledger/market/request/v1");
/// Largest ciphertext accepted (an encrypted request is ~120 bytes).
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Most requests per interval.
pub const MAX_REQUESTS: usize = 10_000;

/// `request` arguments.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct RequestArgs {
    pub interval: u64,
    pub bus: u32,
    /// Requested maximum energy, Wh.
    pub e_max_wh: u64,
    pub ciphertext: Vec<u8>,
}

/// A stored request.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, serde::Deserialize)]
pub struct StoredRequest {
    pub id: Hash32,
    pub submitter: Address,
    pub bus: u32,
    pub e_max_wh: u64,
    pub ciphertext: Vec<u8>,
}

/// `rules` arguments: the interval's admission rules.
#[derive(Debug, Clone, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, serde::Deserialize)]
pub struct AdmissionRules {
    pub interval: u64,
    /// Cap on the summed `e_max` of the admitted requests at a bus, Wh
    /// (buses not listed are uncapped).
    pub bus_caps_wh: Vec<(u32, u64)>,
    /// What the rules refer to (Eq 6.2 / 6.3 margins, forecasts, …).
    pub note: String,
}

/// `admit` arguments.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct AdmitArgs {
    pub interval: u64,
    pub ids: Vec<Hash32>,
}

/// `interval` argument of the views.
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
pub struct IntervalArg {
    pub interval: u64,
}

/// The market registry contract.
pub struct MarketContract {
    /// The grid operator: the only account that may publish rules and admit.
    pub operator: Address,
}

fn key(kind: &str, interval: u64) -> Vec<u8> {
    let mut k = kind.as_bytes().to_vec();
    k.extend(interval.to_be_bytes());
    k
}

fn request_key(interval: u64, id: &Hash32) -> Vec<u8> {
    let mut k = key("req/", interval);
    k.extend(id.0);
    k
}

impl NativeContract for MarketContract {
    fn name(&self) -> &'static str {
        "market"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        match method {
            "request" => {
                let a: RequestArgs = decode_args(args)?;
                if a.ciphertext.is_empty() || a.ciphertext.len() > MAX_REQUEST_BYTES {
                    return revert(format!("ciphertext of {} bytes (1 to {MAX_REQUEST_BYTES})", a.ciphertext.len()));
                }
                if ctx.read(&key("adm/", a.interval))?.is_some() {
                    return revert(format!("interval {} is closed: admission already recorded", a.interval));
                }
                let mut body = ctx.caller().0.to_vec();
                body.extend(a.interval.to_be_bytes());
                body.extend(&a.ciphertext);
                let id = ctx.hash(REQUEST_TAG, &body)?;
                let mut list: Vec<Hash32> = ctx.read_typed(&key("reqs/", a.interval))?.unwrap_or_default();
                if list.contains(&id) {
                    return revert("request already submitted");
                }
                if list.len() >= MAX_REQUESTS {
                    return revert("interval is full");
                }
                list.push(id);
                let stored = StoredRequest {
                    id,
                    submitter: ctx.caller(),
                    bus: a.bus,
                    e_max_wh: a.e_max_wh,
                    ciphertext: a.ciphertext,
                };
                ctx.write_typed(&request_key(a.interval, &id), &stored)?;
                ctx.write_typed(&key("reqs/", a.interval), &list)?;
                ctx.emit(
                    "market_request",
                    vec![("interval".into(), a.interval.to_string()), ("id".into(), hex::encode(id.0))],
                )?;
                Ok(id.0.to_vec())
            }
            "rules" => {
                let r: AdmissionRules = decode_args(args)?;
                if ctx.caller() != self.operator {
                    return revert("only the grid operator publishes admission rules");
                }
                if ctx.read(&key("rules/", r.interval))?.is_some() {
                    return revert(format!("rules for interval {} are already published", r.interval));
                }
                ctx.write_typed(&key("rules/", r.interval), &r)?;
                ctx.emit("market_rules", vec![("interval".into(), r.interval.to_string())])?;
                Ok(Vec::new())
            }
            "admit" => {
                let a: AdmitArgs = decode_args(args)?;
                if ctx.caller() != self.operator {
                    return revert("only the grid operator admits requests");
                }
                if ctx.read(&key("adm/", a.interval))?.is_some() {
                    return revert(format!("admission for interval {} is already recorded", a.interval));
                }
                let rules: Option<AdmissionRules> = ctx.read_typed(&key("rules/", a.interval))?;
                let Some(rules) = rules else {
                    return revert(format!("no admission rules for interval {}", a.interval));
                };
                let mut per_bus: Vec<(u32, u64)> = Vec::new();
                let mut seen = std::collections::BTreeSet::new();
                for id in &a.ids {
                    if !seen.insert(*id) {
                        return revert("an id is listed twice");
                    }
                    let r: Option<StoredRequest> = ctx.read_typed(&request_key(a.interval, id))?;
                    let Some(r) = r else {
                        return revert(format!("no request {} in interval {}", hex::encode(id.0), a.interval));
                    };
                    let total = match per_bus.iter_mut().find(|(b, _)| *b == r.bus) {
                        Some((_, t)) => {
                            *t = t.saturating_add(r.e_max_wh);
                            *t
                        }
                        None => {
                            per_bus.push((r.bus, r.e_max_wh));
                            r.e_max_wh
                        }
                    };
                    if let Some((_, cap)) = rules.bus_caps_wh.iter().find(|(b, _)| *b == r.bus) {
                        if total > *cap {
                            return revert(format!("bus {} would admit {total} Wh over its cap of {cap} Wh", r.bus));
                        }
                    }
                }
                ctx.write_typed(&key("adm/", a.interval), &a.ids)?;
                ctx.emit(
                    "market_admitted",
                    vec![("interval".into(), a.interval.to_string()), ("count".into(), a.ids.len().to_string())],
                )?;
                Ok(Vec::new())
            }
            other => revert(format!("market has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        let a: IntervalArg = decode_args(args)?;
        match method {
            "rules" => Ok(json!({ "rules": ctx.read_typed::<AdmissionRules>(&key("rules/", a.interval))? })),
            "requests" => {
                let ids: Vec<Hash32> = ctx.read_typed(&key("reqs/", a.interval))?.unwrap_or_default();
                let mut out = Vec::new();
                for id in ids {
                    if let Some(r) = ctx.read_typed::<StoredRequest>(&request_key(a.interval, &id))? {
                        out.push(r);
                    }
                }
                Ok(json!({ "requests": out }))
            }
            "admitted" => {
                let ids: Option<Vec<Hash32>> = ctx.read_typed(&key("adm/", a.interval))?;
                Ok(json!({ "admitted": ids.map(|v| v.iter().map(|h| hex::encode(h.0)).collect::<Vec<_>>()) }))
            }
            other => revert(format!("market has no view {other}")),
        }
    }
}
