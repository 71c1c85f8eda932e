//! Native-coin escrow with time-locks.
//!
//! A depositor locks coin for a beneficiary:
//! - the depositor (or the arbiter) may `release` to the beneficiary at any time;
//! - the beneficiary may `claim` only once `unlock_at` has passed — the
//!   collateral a merchant can enforce only after its window (seed 000 §3.3.6, §5.1.1);
//! - the beneficiary (or the arbiter) may `refund` the remainder to the
//!   depositor at any time; the depositor may take it back alone only after
//!   `expires_at`, if set — the time-lock that protects the depositor.
//!
//! Times are block timestamps (ms).

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::{Address, Amount, Timestamp};
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde::Serialize;
use serde_json::json;

pub struct EscrowContract;

#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Deposit {
    pub depositor: Address,
    pub beneficiary: Address,
    pub arbiter: Option<Address>,
    /// What is still held.
    pub amount: Amount,
    pub unlock_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Lock {
    pub beneficiary: Address,
    pub arbiter: Option<Address>,
    pub unlock_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Pay {
    pub id: u64,
    pub amount: Amount,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Id {
    pub id: u64,
}

const NEXT_ID: &[u8] = b"next";

fn dep_key(id: u64) -> Vec<u8> {
    [b"d/".as_slice(), &id.to_be_bytes()].concat()
}

fn load(ctx: &mut CallContext<'_, '_>, id: u64) -> Result<Deposit, ContractError> {
    match ctx.read_typed::<Deposit>(&dep_key(id))? {
        Some(d) => Ok(d),
        None => revert(format!("no open deposit {id}")),
    }
}

/// Pays `amount` out of deposit `id` to `to`, closing the deposit when empty.
fn pay_out(
    ctx: &mut CallContext<'_, '_>,
    id: u64,
    mut d: Deposit,
    to: Address,
    amount: Amount,
    event: &str,
) -> Result<Vec<u8>, ContractError> {
    if amount.is_zero() {
        return revert("amount must be positive");
    }
    let Some(rest) = d.amount.checked_sub(amount) else {
        return revert(format!("deposit {id} holds {}, asked {amount}", d.amount));
    };
    d.amount = rest;
    if d.amount.is_zero() {
        ctx.delete(&dep_key(id))?;
    } else {
        ctx.write_typed(&dep_key(id), &d)?;
    }
    ctx.pay(&to, amount)?;
    ctx.emit(
        event,
        vec![("id".into(), id.to_string()), ("to".into(), to.to_string()), ("amount".into(), amount.to_string())],
    )?;
    Ok(vec![])
}

impl NativeContract for EscrowContract {
    fn name(&self) -> &'static str {
        "escrow"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        let caller = ctx.caller();
        if method != "lock" && method != "top_up" && !ctx.value().is_zero() {
            return revert(format!("{method} takes no native value"));
        }
        match method {
            "lock" => {
                let a: Lock = decode_args(args)?;
                if ctx.value().is_zero() {
                    return revert("lock needs a positive value");
                }
                if let Some(e) = a.expires_at {
                    if e < a.unlock_at {
                        return revert("expires_at precedes unlock_at");
                    }
                }
                let id = ctx.read_typed::<u64>(NEXT_ID)?.unwrap_or(0);
                ctx.write_typed(NEXT_ID, &(id + 1))?;
                let d = Deposit {
                    depositor: caller,
                    beneficiary: a.beneficiary,
                    arbiter: a.arbiter,
                    amount: ctx.value(),
                    unlock_at: a.unlock_at,
                    expires_at: a.expires_at,
                };
                ctx.write_typed(&dep_key(id), &d)?;
                ctx.emit(
                    "escrow_locked",
                    vec![
                        ("id".into(), id.to_string()),
                        ("depositor".into(), caller.to_string()),
                        ("beneficiary".into(), a.beneficiary.to_string()),
                        ("amount".into(), d.amount.to_string()),
                        ("unlock_at".into(), a.unlock_at.to_string()),
                    ],
                )?;
                Ok(borsh::to_vec(&id).unwrap_or_default())
            }
            "top_up" => {
                let a: Id = decode_args(args)?;
                let mut d = load(ctx, a.id)?;
                if d.depositor != caller {
                    return revert("only the depositor may top up");
                }
                d.amount = d.amount.checked_add(ctx.value()).ok_or_else(|| ContractError::Revert("overflow".into()))?;
                ctx.write_typed(&dep_key(a.id), &d)?;
                Ok(vec![])
            }
            "release" => {
                let a: Pay = decode_args(args)?;
                let d = load(ctx, a.id)?;
                if caller != d.depositor && Some(caller) != d.arbiter {
                    return revert("only the depositor or arbiter may release");
                }
                let to = d.beneficiary;
                pay_out(ctx, a.id, d, to, a.amount, "escrow_released")
            }
            "claim" => {
                let a: Pay = decode_args(args)?;
                let d = load(ctx, a.id)?;
                if caller != d.beneficiary {
                    return revert("only the beneficiary may claim");
                }
                if ctx.timestamp() < d.unlock_at {
                    return revert(format!("time-locked until {}, now {}", d.unlock_at, ctx.timestamp()));
                }
                let to = d.beneficiary;
                pay_out(ctx, a.id, d, to, a.amount, "escrow_claimed")
            }
            "refund" => {
                let a: Id = decode_args(args)?;
                let d = load(ctx, a.id)?;
                let allowed = caller == d.beneficiary
                    || Some(caller) == d.arbiter
                    || (caller == d.depositor && d.expires_at.is_some_and(|e| ctx.timestamp() >= e));
                if !allowed {
                    return revert(if caller == d.depositor {
                        "the depositor may refund only after expiry"
                    } else {
                        "not a party to this deposit"
                    });
                }
                let (to, amount) = (d.depositor, d.amount);
                pay_out(ctx, a.id, d, to, amount, "escrow_refunded")
            }
            other => revert(format!("escrow has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "get" => {
                let a: Id = decode_args(args)?;
                match ctx.read_typed::<Deposit>(&dep_key(a.id))? {
                    Some(d) => Ok(json!({ "id": a.id, "deposit": d })),
                    None => revert(format!("no open deposit {}", a.id)),
                }
            }
            "held" => Ok(json!({ "balance": ctx.balance(&ctx.self_address()) })),
            other => revert(format!("escrow has no view {other}")),
        }
    }
}
