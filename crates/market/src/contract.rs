//! The market's on-chain record (§6.3.2–6.3.3): encrypted requests, the
//! grid operator's admission rules and the admitted request ids, per
//! clearing interval.
//!
//! A prosumer submits its request encrypted under the enclaves' PKE
//! together with the two fields the operator's pre-admission check needs in
//! the clear (its bus and its maximum energy, §6.3.3); the utility or cost
//! coefficients stay encrypted. The operator publishes the interval's
//! admission rules (a cap on the admitted maximum energy per bus, kWh as
//! integer Wh, and a free-text note), then records the admitted request ids
//! (in batches of at most [`MAX_ADMIT_BATCH`]: `admit_part` calls, then one
//! `admit` that seals the record; requests close at the first batch).
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
/// Most requests one account may file per interval, so that one account's
/// junk cannot fill an interval (a prosumer files one request; the room
/// left is for aggregators). Every request costs constant gas (a handful of
/// fixed-size records, nothing that grows with the interval), so filing
/// more requests only costs the filer.
pub const MAX_REQUESTS_PER_ACCOUNT: usize = 256;
/// Most ids per `admit` / `admit_part` call: the operator records a large
/// admission in batches (each id costs a storage write), `admit_part` for
/// all but the last, `admit` for the last, which seals the record.
pub const MAX_ADMIT_BATCH: usize = 16;
/// Domain tag of the once-per-chain record of a (submitter, ciphertext) pair.
pub const CIPHERTEXT_TAG: Tag = Tag("gridledger/market/ciphertext/v2");

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

fn meta_key(interval: u64, id: &Hash32) -> Vec<u8> {
    let mut k = key("meta/", interval);
    k.extend(id.0);
    k
}

fn admitted_key(interval: u64, id: &Hash32) -> Vec<u8> {
    let mut k = key("ok/", interval);
    k.extend(id.0);
    k
}

fn index_key(interval: u64, n: u64) -> Vec<u8> {
    let mut k = key("idx/", interval);
    k.extend(n.to_be_bytes());
    k
}

fn bus_key(interval: u64, bus: u32) -> Vec<u8> {
    let mut k = key("bus/", interval);
    k.extend(bus.to_be_bytes());
    k
}

fn account_key(interval: u64, who: &Address) -> Vec<u8> {
    let mut k = key("acct/", interval);
    k.extend(who.0);
    k
}

/// The interval's request ids in submission order.
fn listed(ctx: &ViewContext<'_>, interval: u64) -> Result<Vec<Hash32>, ContractError> {
    let n: u64 = ctx.read_typed(&key("n/", interval))?.unwrap_or(0);
    let mut ids = Vec::new();
    for i in 0..n {
        if let Some(id) = ctx.read_typed::<Hash32>(&index_key(interval, i))? {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// What admission needs of a request: its public fields (one storage word).
#[derive(Debug, Clone, BorshSerialize, BorshDeserialize)]
struct RequestMeta {
    bus: u32,
    e_max_wh: u64,
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
                if ctx.read(&key("open/", a.interval))?.is_some() {
                    return revert(format!("interval {} is closed: admission under way or recorded", a.interval));
                }
                // a ciphertext is usable once per submitter on this chain: a
                // replay into another interval is refused. Keyed by
                // (submitter, ciphertext), not by the ciphertext alone: a copy
                // filed first by another account (a relaying peer, the
                // ordering primary) must not lock its owner out; the copy is
                // stored but never opens, the ciphertext being bound to its
                // owner's account (`tee::request_binding`), and the enclaves
                // exclude it ("does not decrypt")
                let mut ct_body = ctx.caller().0.to_vec();
                if crate::mutants::active(crate::mutants::Mutation::CiphertextDedupChainWide) {
                    ct_body.clear();
                }
                ct_body.extend(&a.ciphertext);
                let ct_hash = ctx.hash(CIPHERTEXT_TAG, &ct_body)?;
                let mut ct_key = b"ct/".to_vec();
                ct_key.extend(ct_hash.0);
                if ctx.read(&ct_key)?.is_some() {
                    return revert("this ciphertext was already submitted");
                }
                let mut body = ctx.caller().0.to_vec();
                body.extend(a.interval.to_be_bytes());
                body.extend(&a.ciphertext);
                let id = ctx.hash(REQUEST_TAG, &body)?;
                let count: u64 = ctx.read_typed(&key("n/", a.interval))?.unwrap_or(0);
                if count >= MAX_REQUESTS as u64 {
                    return revert("interval is full");
                }
                let acct = account_key(a.interval, &ctx.caller());
                let mine: u32 = ctx.read_typed(&acct)?.unwrap_or(0);
                if mine as usize >= MAX_REQUESTS_PER_ACCOUNT {
                    return revert(format!(
                        "account already filed {MAX_REQUESTS_PER_ACCOUNT} requests in interval {}",
                        a.interval
                    ));
                }
                let meta = RequestMeta { bus: a.bus, e_max_wh: a.e_max_wh };
                let stored = StoredRequest {
                    id,
                    submitter: ctx.caller(),
                    bus: a.bus,
                    e_max_wh: a.e_max_wh,
                    ciphertext: a.ciphertext,
                };
                // O(1) records per request: nothing grows with the interval
                ctx.write(&ct_key, vec![1])?;
                ctx.write_typed(&request_key(a.interval, &id), &stored)?;
                ctx.write_typed(&meta_key(a.interval, &id), &meta)?;
                ctx.write_typed(&index_key(a.interval, count), &id)?;
                ctx.write_typed(&key("n/", a.interval), &(count + 1))?;
                ctx.write_typed(&acct, &(mine + 1))?;
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
            "admit" | "admit_part" => {
                let a: AdmitArgs = decode_args(args)?;
                if ctx.caller() != self.operator {
                    return revert("only the grid operator admits requests");
                }
                if ctx.read(&key("adm/", a.interval))?.is_some() {
                    return revert(format!("admission for interval {} is already recorded", a.interval));
                }
                if a.ids.len() > MAX_ADMIT_BATCH {
                    return revert(format!("{} ids in one call (at most {MAX_ADMIT_BATCH})", a.ids.len()));
                }
                let rules: Option<AdmissionRules> = ctx.read_typed(&key("rules/", a.interval))?;
                let Some(rules) = rules else {
                    return revert(format!("no admission rules for interval {}", a.interval));
                };
                let mut per_bus: Vec<(u32, u64)> = Vec::new();
                for id in &a.ids {
                    if ctx.read(&admitted_key(a.interval, id))?.is_some() {
                        return revert("an id is listed twice");
                    }
                    let r: Option<RequestMeta> = ctx.read_typed(&meta_key(a.interval, id))?;
                    let Some(r) = r else {
                        return revert(format!("no request {} in interval {}", hex::encode(id.0), a.interval));
                    };
                    ctx.write(&admitted_key(a.interval, id), vec![1])?;
                    let i = match per_bus.iter().position(|(b, _)| *b == r.bus) {
                        Some(i) => i,
                        None => {
                            let so_far: u64 = ctx.read_typed(&bus_key(a.interval, r.bus))?.unwrap_or(0);
                            per_bus.push((r.bus, so_far));
                            per_bus.len() - 1
                        }
                    };
                    let total = per_bus[i].1.saturating_add(r.e_max_wh);
                    per_bus[i].1 = total;
                    if let Some((_, cap)) = rules.bus_caps_wh.iter().find(|(b, _)| *b == r.bus) {
                        if total > *cap {
                            return revert(format!("bus {} would admit {total} Wh over its cap of {cap} Wh", r.bus));
                        }
                    }
                }
                let before: u64 = ctx.read_typed(&key("open/", a.interval))?.unwrap_or(0);
                let count = before + a.ids.len() as u64;
                if method == "admit" {
                    // the final batch seals the record
                    ctx.write_typed(&key("adm/", a.interval), &count)?;
                } else {
                    for (bus, total) in &per_bus {
                        ctx.write_typed(&bus_key(a.interval, *bus), total)?;
                    }
                }
                // closes the interval to new requests from the first batch on
                ctx.write_typed(&key("open/", a.interval), &count)?;
                ctx.emit(
                    if method == "admit" { "market_admitted" } else { "market_admitted_part" },
                    vec![("interval".into(), a.interval.to_string()), ("count".into(), count.to_string())],
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
                let mut out = Vec::new();
                for id in listed(ctx, a.interval)? {
                    if let Some(r) = ctx.read_typed::<StoredRequest>(&request_key(a.interval, &id))? {
                        out.push(r);
                    }
                }
                Ok(json!({ "requests": out }))
            }
            "admitted" => {
                if ctx.read(&key("adm/", a.interval)).is_none() {
                    return Ok(json!({ "admitted": serde_json::Value::Null }));
                }
                let mut out = Vec::new();
                for id in listed(ctx, a.interval)? {
                    if ctx.read(&admitted_key(a.interval, &id)).is_some() {
                        out.push(hex::encode(id.0));
                    }
                }
                Ok(json!({ "admitted": out }))
            }
            other => revert(format!("market has no view {other}")),
        }
    }
}
