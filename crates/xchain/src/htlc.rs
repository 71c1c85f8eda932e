//! The baseline of the comparisons (thesis §5.6, the Π_AS family): an
//! atomic swap with hash time-locked contracts, run sequentially over the
//! same external chains — the sender locks on chain `i`, the receiver locks
//! on chain `j` with the same hash and a shorter time-lock, the sender
//! claims on `j` revealing the preimage, the receiver claims on `i` with it.
//!
//! Unlike CCTE it needs a contract on every external chain (no
//! script-minimum), its phases are sequential, and a party that walks away
//! leaves the other waiting for its time-lock to refund.
//!
//! Time-locks are block heights of the chain the contract runs on.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_bytes, hash_tagged, Tag};
use gridledger_core::{Address, Amount, ContractId, Hash32, Height};
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde::Serialize;
use serde_json::json;

/// The HTLC contract's id on external chains that run the baseline.
pub const HTLC_ID: ContractId = 41;
/// Domain of the hash lock.
pub const HASHLOCK: Tag = Tag("gridledger/htlc/hashlock/v1");
const HTLC_ID_TAG: Tag = Tag("gridledger/htlc/id/v1");
/// Longest preimage accepted.
pub const MAX_PREIMAGE: usize = 64;

/// The hash lock of a preimage.
pub fn hashlock(preimage: &[u8]) -> Hash32 {
    hash_bytes(HASHLOCK, preimage)
}

pub struct HtlcContract;

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Lock {
    pub receiver: Address,
    pub hash: Hash32,
    /// Last height at which the receiver may claim; the sender may refund after it.
    pub timeout: Height,
}

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ClaimHtlc {
    pub id: Hash32,
    pub preimage: Vec<u8>,
}

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Refund {
    pub id: Hash32,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Htlc {
    pub sender: Address,
    pub receiver: Address,
    pub amount: Amount,
    pub hash: Hash32,
    pub timeout: Height,
}

/// The id a lock gets: it binds the sender, every term and the sender's
/// lock height, so two locks never share one.
pub fn htlc_id(sender: &Address, lock: &Lock, amount: Amount, height: Height) -> Hash32 {
    hash_tagged(HTLC_ID_TAG, &(sender, &lock.receiver, &lock.hash, lock.timeout, amount, height))
}

fn key(id: &Hash32) -> Vec<u8> {
    [b"h/".as_slice(), &id.0].concat()
}

impl NativeContract for HtlcContract {
    fn name(&self) -> &'static str {
        "htlc"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        match method {
            "lock" => {
                let l: Lock = decode_args(args)?;
                if ctx.value().is_zero() {
                    return revert("lock some value");
                }
                if l.timeout <= ctx.height() {
                    return revert("time-lock already expired");
                }
                let id = htlc_id(&ctx.caller(), &l, ctx.value(), ctx.height());
                if ctx.read(&key(&id))?.is_some() {
                    return revert("lock exists");
                }
                let h = Htlc {
                    sender: ctx.caller(),
                    receiver: l.receiver,
                    amount: ctx.value(),
                    hash: l.hash,
                    timeout: l.timeout,
                };
                ctx.write_typed(&key(&id), &h)?;
                ctx.emit("htlc_locked", vec![("id".into(), id.to_string())])?;
                Ok(id.0.to_vec())
            }
            "claim" => {
                let c: ClaimHtlc = decode_args(args)?;
                if c.preimage.len() > MAX_PREIMAGE {
                    return revert("preimage too long");
                }
                let Some(h) = ctx.read_typed::<Htlc>(&key(&c.id))? else { return revert("no such lock") };
                if ctx.height() > h.timeout {
                    return revert("time-lock expired");
                }
                if ctx.hash(HASHLOCK, &c.preimage)? != h.hash {
                    return revert("wrong preimage");
                }
                ctx.delete(&key(&c.id))?;
                ctx.pay(&h.receiver, h.amount)?;
                ctx.emit(
                    "htlc_claimed",
                    vec![("id".into(), c.id.to_string()), ("preimage".into(), hex_of(&c.preimage))],
                )?;
                Ok(Vec::new())
            }
            "refund" => {
                let r: Refund = decode_args(args)?;
                let Some(h) = ctx.read_typed::<Htlc>(&key(&r.id))? else { return revert("no such lock") };
                if ctx.height() <= h.timeout {
                    return revert("time-lock not expired");
                }
                ctx.delete(&key(&r.id))?;
                ctx.pay(&h.sender, h.amount)?;
                Ok(Vec::new())
            }
            other => revert(format!("htlc has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "lock" => {
                let id: Hash32 = decode_args(args)?;
                Ok(json!(ctx.read_typed::<Htlc>(&key(&id))?))
            }
            other => revert(format!("htlc has no view {other}")),
        }
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
