//! The single-chain baseline of thesis §3.5.3: every node of one chain runs
//! `SC_EXE_AT` and `SC_EXE_ST` on each transaction as it arrives. Same
//! execution code and state layout as the IOR primary chain, settled at
//! once. A refused AT/ST is still a successful call that records the
//! refusal (event `ior_rejected` with the reason) and the Step 6 / Step 5
//! reputation decrement of its sender; nothing else changes.

use std::collections::BTreeSet;

use gridledger_core::Amount;
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde_json::json;

use crate::exec::{execute_batch, meter_owners, touched, OnChain};
use crate::store::{bytes, credit, debit, load, pkey, settle};
use crate::types::{AgreementTx, Entry, IorParams, IorTx, Outcome, Participant, SettlementTx};

pub struct SingleChainContract;

fn params(ctx: &mut CallContext<'_, '_>) -> Result<IorParams, ContractError> {
    crate::store::stored_params(ctx, "single-chain")
}

fn execute_now(ctx: &mut CallContext<'_, '_>, tx: IorTx) -> Result<Vec<u8>, ContractError> {
    let p = params(ctx)?;
    let es = [Entry { sender: ctx.caller(), recorded_at: ctx.timestamp(), tx }];
    let (parts, buyers) = touched(&es, &[]);
    let mut pre = load(ctx, &parts, &buyers, &meter_owners(&es), &BTreeSet::new())?;
    // Claimed energy is read only by an arbitration (the buyer's O_b = 0,
    // recorded or carried): an ST the buyer agreed to reads no claim.
    let slots: BTreeSet<_> = es
        .iter()
        .filter(|e| match &e.tx {
            IorTx::St(s) | IorTx::StReach(s, _) => {
                match pre.agreements.get(&s.terms.key()).and_then(|ag| ag.buyer_opinion) {
                    Some(ob) => !ob,
                    None => !s.ob,
                }
            }
            _ => false,
        })
        .flat_map(|e| crate::exec::claim_slots(e, p.meter_step_s))
        .collect();
    if !slots.is_empty() {
        pre.claimed = load(ctx, &BTreeSet::new(), &BTreeSet::new(), &BTreeSet::new(), &slots)?.claimed;
    }
    let tcrs = execute_batch(&mut OnChain(ctx), &p, &pre, &es)?;
    if settle(ctx, &p, &es, &tcrs)?.is_none() {
        return revert("internal: own TCR does not apply");
    }
    let Some(t) = tcrs.into_iter().next() else { return revert("internal: no TCR") };
    match &t.outcome {
        Outcome::AtRejected(why) => ctx.emit("ior_rejected", vec![("reason".into(), why.to_string())])?,
        Outcome::StRejected(why) => ctx.emit("ior_rejected", vec![("reason".into(), why.to_string())])?,
        o => ctx.emit("ior_executed", vec![("outcome".into(), format!("{o:?}"))])?,
    }
    Ok(bytes(&t))
}

impl NativeContract for SingleChainContract {
    fn name(&self) -> &'static str {
        "ior-single-chain"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if method != "fund" && !ctx.value().is_zero() {
            return revert(format!("{method} takes no native value"));
        }
        match method {
            "init" => crate::store::init_params(ctx, args),
            "fund" => {
                let p = params(ctx)?;
                let who = ctx.caller();
                Ok(bytes(&credit(ctx, &p, &who)?))
            }
            "withdraw" => {
                let amount: Amount = decode_args(args)?;
                let who = ctx.caller();
                Ok(bytes(&debit(ctx, &who, amount)?))
            }
            // The baseline has no certifying authority: a trader declares its
            // meter key once (readings count in arbitration only when signed
            // by it, as on the primary chain).
            "register_meter" => {
                // The single-chain baseline trusts its caller's meter key
                // (no certificate) but keeps the primary chain's interval
                // rule ([`crate::primary::MeterError`]).
                let meter: crate::types::MeterRecord = decode_args(args)?;
                let who = ctx.caller();
                if ctx.read(&crate::store::mkey(&who))?.is_some() {
                    return revert("meter already registered");
                }
                if let Err(e) = crate::primary::check_meter_interval(&who, meter.step_s, &params(ctx)?) {
                    return revert(e.to_string());
                }
                ctx.write_typed(&crate::store::mkey(&who), &meter)?;
                Ok(vec![])
            }
            "sc_exe_at" => {
                let at: AgreementTx = decode_args(args)?;
                execute_now(ctx, IorTx::At(at))
            }
            "sc_exe_st" => {
                let st: SettlementTx = decode_args(args)?;
                execute_now(ctx, IorTx::St(st))
            }
            other => revert(format!("ior-single-chain has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "participant" => {
                let who = decode_args(args)?;
                Ok(json!(ctx.read_typed::<Participant>(&pkey(&who))?))
            }
            other => revert(format!("ior-single-chain has no view {other}")),
        }
    }
}
