//! Storage layout of the IOR state inside a native contract, shared by the
//! primary chain's contract and the single-chain baseline: `p/ADDR` holds a
//! [`Participant`], `a/KEY` (borsh of an [`AgreementKey`]) an open [`Agreement`].

use std::collections::BTreeSet;

use borsh::BorshSerialize;
use gridledger_core::{Address, Amount};
use gridledger_ledger::{revert, CallContext, ContractError, StorageRead};

use crate::exec::{apply_effects, PreState};
use crate::types::{Agreement, AgreementKey, Entry, IorParams, Participant, SlotKey, Tcr, BLACK_HOLE};

pub(crate) fn pkey(a: &Address) -> Vec<u8> {
    [b"p/".as_slice(), a.as_bytes()].concat()
}

pub(crate) fn akey(k: &AgreementKey) -> Vec<u8> {
    [b"a/".as_slice(), &bytes(k)].concat()
}

/// `cl/SLOT`: watt-seconds of a seller's slot claimed by won arbitrations.
pub(crate) fn clkey(k: &SlotKey) -> Vec<u8> {
    [b"cl/".as_slice(), &bytes(k)].concat()
}

/// `sl/SLOT`: a seller's slot's export and movable won claims
/// ([`crate::exec::SlotAlloc`]).
pub(crate) fn slkey(k: &SlotKey) -> Vec<u8> {
    [b"sl/".as_slice(), &bytes(k)].concat()
}

/// `m/ADDR`: the certified meter key address of a trader.
pub(crate) fn mkey(a: &Address) -> Vec<u8> {
    [b"m/".as_slice(), a.as_bytes()].concat()
}

pub(crate) fn bytes<T: BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).unwrap_or_default()
}

/// Reads the state of the given traders and agreement keys (metered in a
/// call, free in a view).
pub(crate) fn load<R: StorageRead>(
    ctx: &mut R,
    parts: &BTreeSet<Address>,
    buyers: &BTreeSet<AgreementKey>,
    meters: &BTreeSet<Address>,
    slots: &BTreeSet<SlotKey>,
) -> Result<PreState, ContractError> {
    let mut s = PreState::default();
    for k in slots {
        if let Some(c) = ctx.read_typed::<u128>(&clkey(k))? {
            s.claimed.insert(*k, c);
        }
        if let Some(a) = ctx.read_typed::<crate::exec::SlotAlloc>(&slkey(k))? {
            s.slots.insert(*k, a);
        }
    }
    for a in meters {
        if let Some(m) = ctx.read_typed::<crate::types::MeterRecord>(&mkey(a))? {
            s.meters.insert(*a, m);
        }
    }
    for a in parts {
        if let Some(p) = ctx.read_typed::<Participant>(&pkey(a))? {
            s.participants.insert(*a, p);
        }
    }
    for b in buyers {
        if let Some(ag) = ctx.read_typed::<Agreement>(&akey(b))? {
            s.agreements.insert(*b, ag);
        }
    }
    Ok(s)
}

/// Writes back what changed between `before` and `after`.
pub(crate) fn store(ctx: &mut CallContext<'_, '_>, before: &PreState, after: &PreState) -> Result<(), ContractError> {
    for (a, p) in &after.participants {
        if before.participants.get(a) != Some(p) {
            ctx.write_typed(&pkey(a), p)?;
        }
    }
    for b in before.agreements.keys() {
        if !after.agreements.contains_key(b) {
            ctx.delete(&akey(b))?;
        }
    }
    for (b, ag) in &after.agreements {
        if before.agreements.get(b) != Some(ag) {
            ctx.write_typed(&akey(b), ag)?;
        }
    }
    for (k, c) in &after.claimed {
        if before.claimed.get(k) != Some(c) {
            ctx.write_typed(&clkey(k), c)?;
        }
    }
    for k in before.claimed.keys() {
        if !after.claimed.contains_key(k) {
            ctx.delete(&clkey(k))?;
        }
    }
    for (k, a) in &after.slots {
        if before.slots.get(k) != Some(a) {
            ctx.write_typed(&slkey(k), a)?;
        }
    }
    for k in before.slots.keys() {
        if !after.slots.contains_key(k) {
            ctx.delete(&slkey(k))?;
        }
    }
    Ok(())
}

/// Applies TCRs for `entries` to stored state and pays burns to the black
/// hole. `Ok(None)` when some TCR does not apply: then nothing is written,
/// and the caller decides (the primary chain re-executes the batch, issue 11
/// item 5; the single chain cannot get here with its own TCRs).
pub(crate) fn settle(
    ctx: &mut CallContext<'_, '_>,
    p: &IorParams,
    entries: &[Entry],
    tcrs: &[Tcr],
) -> Result<Option<Amount>, ContractError> {
    let (parts, buyers) = crate::exec::touched(entries, tcrs);
    // Only claim effects change claimed energy: read just their slots
    // (and the slots a won arbitration re-allocates over).
    let claims: BTreeSet<SlotKey> = tcrs
        .iter()
        .flat_map(|t| &t.effects)
        .flat_map(|e| match e {
            crate::types::Effect::Claim { slot, .. } => vec![*slot],
            crate::types::Effect::ClaimSold { slots, .. } => slots.iter().map(|(k, _)| *k).collect(),
            crate::types::Effect::ClaimExport { slots, reach, .. }
            | crate::types::Effect::ClaimPaid { slots, reach, .. } => {
                let mut v: Vec<SlotKey> = slots.iter().map(|(k, _)| *k).collect();
                v.extend(slots.last().map(|(k, _)| crate::exec::following_slots(k, *reach)).unwrap_or_default());
                v
            }
            _ => vec![],
        })
        .collect();
    let before = load(ctx, &parts, &buyers, &BTreeSet::new(), &claims)?;
    let mut after = before.clone();
    let mut burned = Amount::ZERO;
    for t in tcrs {
        let Some(e) = entries.get(t.index as usize) else { return Ok(None) };
        match apply_effects(&mut after, p, &e.tx.terms().key(), &t.effects) {
            Ok(b) => burned = burned.checked_add(b).ok_or_else(|| ContractError::Revert("overflow".into()))?,
            Err(_) => return Ok(None),
        }
    }
    store(ctx, &before, &after)?;
    ctx.pay(&BLACK_HOLE, burned)?;
    Ok(Some(burned))
}

/// Credits coin sent with a call to a trader's free balance.
pub(crate) fn credit(ctx: &mut CallContext<'_, '_>, p: &IorParams, who: &Address) -> Result<Amount, ContractError> {
    let value = ctx.value();
    if value.is_zero() {
        return revert("fund needs a positive value");
    }
    let mut part =
        ctx.read_typed::<Participant>(&pkey(who))?.unwrap_or(Participant { balance: Amount::ZERO, reputation: p.rs });
    part.balance = part.balance.checked_add(value).ok_or_else(|| ContractError::Revert("overflow".into()))?;
    ctx.write_typed(&pkey(who), &part)?;
    Ok(part.balance)
}

/// Pays a trader's free balance out.
pub(crate) fn debit(ctx: &mut CallContext<'_, '_>, who: &Address, amount: Amount) -> Result<Amount, ContractError> {
    if amount.is_zero() {
        return revert("amount must be positive");
    }
    let Some(mut part) = ctx.read_typed::<Participant>(&pkey(who))? else {
        return revert(format!("{who} has no IOR account"));
    };
    let Some(rest) = part.balance.checked_sub(amount) else {
        return revert(format!("free balance {} is below {amount}", part.balance));
    };
    part.balance = rest;
    ctx.write_typed(&pkey(who), &part)?;
    ctx.pay(who, amount)?;
    Ok(rest)
}

/// Storage key of the secondary and single-chain contracts' parameters.
pub(crate) const PARAMS: &[u8] = b"cfg";

/// `init` of the secondary and single-chain contracts: stores the IOR
/// parameters, once.
pub(crate) fn init_params(ctx: &mut CallContext<'_, '_>, args: &[u8]) -> Result<Vec<u8>, ContractError> {
    let p: crate::types::IorParams = gridledger_ledger::decode_args(args)?;
    if ctx.read(PARAMS)?.is_some() {
        return revert("already initialised");
    }
    ctx.write_typed(PARAMS, &p)?;
    Ok(vec![])
}

/// The parameters `init` stored, or a revert naming the `contract`.
pub(crate) fn stored_params(
    ctx: &mut CallContext<'_, '_>,
    contract: &str,
) -> Result<crate::types::IorParams, ContractError> {
    match ctx.read_typed::<crate::types::IorParams>(PARAMS)? {
        Some(p) => Ok(p),
        None => revert(format!("{contract} IOR contract not initialised")),
    }
}
