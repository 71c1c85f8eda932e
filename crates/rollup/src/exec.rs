//! `SC_EXE_AT` and `SC_EXE_ST` (thesis §3.3.5) as one deterministic, pure
//! function over a batch of recorded entries and the IOR state before it.
//!
//! The same code runs in four places, which is what makes a TCR checkable:
//! the executor (off-chain, and on the secondary chain's `sc_exe`), the
//! validator (`SC_VERIFY`), the primary chain's arbitration of a
//! controversial transaction, and the single-chain baseline. Only the
//! [`ExecEnv`] differs: on chain, signature recovery and work are metered.

use std::collections::{BTreeMap, BTreeSet};

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::crypto::recover;
use gridledger_core::{Address, Amount, Hash32, RecoverableSignature};
use gridledger_ledger::{gas, CallContext, ContractError};
use serde::Serialize;

use crate::types::{
    Agreement, AgreementTx, AtRejection, Effect, Entry, IorParams, IorTx, Outcome, Participant, SettlementTx,
    StRejection, StSettlement, Tcr,
};

/// Gas for one meter reading in the `Σ P_s × Δt` loop: calldata load,
/// multiply, add and loop overhead of the equivalent Solidity loop.
pub const READING_GAS: u64 = 50;
/// Gas for one validity step (field comparisons, arithmetic, branching).
pub const STEP_GAS: u64 = 200;

/// What execution needs from its host.
pub trait ExecEnv {
    /// The address whose key made `sig` over `digest`, if any.
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError>;
    /// Charges gas (a no-op off chain).
    fn charge(&mut self, gas: u64) -> Result<(), ContractError>;
}

/// Off-chain execution: executors, validators, smart meters.
pub struct OffChain;

impl ExecEnv for OffChain {
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError> {
        Ok(recover(digest, sig).ok().map(|pk| pk.address()))
    }
    fn charge(&mut self, _gas: u64) -> Result<(), ContractError> {
        Ok(())
    }
}

/// On-chain execution inside a native contract call.
pub struct OnChain<'a, 'o, 'b>(pub &'a mut CallContext<'o, 'b>);

impl ExecEnv for OnChain<'_, '_, '_> {
    fn recover(&mut self, digest: &Hash32, sig: &RecoverableSignature) -> Result<Option<Address>, ContractError> {
        Ok(self.0.recover_signer(digest, sig)?.map(|pk| pk.address()))
    }
    fn charge(&mut self, g: u64) -> Result<(), ContractError> {
        self.0.charge(g)
    }
}

/// Why effects could not be applied to the IOR state. Effects produced by
/// [`execute_batch`] always apply; a forged TCR may not.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("agreement of buyer {0} already open")]
    AgreementExists(Address),
    #[error("no open agreement of buyer {0}")]
    NoAgreement(Address),
    #[error("{who} holds {available}, cannot lock {needed}")]
    InsufficientBalance { who: Address, needed: Amount, available: Amount },
    #[error("agreement pool holds {available}, cannot pay {needed}")]
    PoolShort { needed: Amount, available: Amount },
    #[error("agreement closed with {0} still in its pool")]
    PoolNotEmpty(Amount),
    #[error("amount overflow")]
    Overflow,
}

/// The IOR state a batch reads: traders' records and open agreements.
/// Traders absent from the map have no coin and the initial score `rs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PreState {
    pub participants: BTreeMap<Address, Participant>,
    /// Open agreements keyed by `ADDR_b`.
    pub agreements: BTreeMap<Address, Agreement>,
}

impl PreState {
    pub fn participant(&self, p: &IorParams, who: &Address) -> Participant {
        self.participants.get(who).copied().unwrap_or(Participant { balance: Amount::ZERO, reputation: p.rs })
    }
}

/// Traders and agreement keys a batch (and, optionally, its TCRs) touches.
pub fn touched(entries: &[Entry], tcrs: &[Tcr]) -> (BTreeSet<Address>, BTreeSet<Address>) {
    let mut parts = BTreeSet::new();
    let mut buyers = BTreeSet::new();
    for e in entries {
        let t = e.tx.terms();
        parts.extend([e.sender, t.buyer, t.seller]);
        buyers.insert(t.buyer);
    }
    for t in tcrs {
        for eff in &t.effects {
            match eff {
                Effect::Lock { who, .. } | Effect::Reputation { who, .. } => {
                    parts.insert(*who);
                }
                Effect::Pay { to, .. } => {
                    parts.insert(*to);
                }
                _ => {}
            }
        }
    }
    (parts, buyers)
}

fn add(a: Amount, b: Amount) -> Result<Amount, ApplyError> {
    a.checked_add(b).ok_or(ApplyError::Overflow)
}

/// Applies one TCR's effects for the entry whose `ADDR_b` is `buyer`,
/// all or nothing. Returns the amount burned.
pub fn apply_effects(
    state: &mut PreState,
    p: &IorParams,
    buyer: &Address,
    effects: &[Effect],
) -> Result<Amount, ApplyError> {
    let mut s = state.clone();
    let mut burned = Amount::ZERO;
    for eff in effects {
        match eff {
            Effect::Open(terms) => {
                if s.agreements.contains_key(buyer) {
                    return Err(ApplyError::AgreementExists(*buyer));
                }
                s.agreements.insert(*buyer, Agreement { terms: terms.clone(), pool: Amount::ZERO });
            }
            Effect::Lock { who, amount } => {
                let mut part = s.participant(p, who);
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(*buyer))?;
                part.balance = part.balance.checked_sub(*amount).ok_or(ApplyError::InsufficientBalance {
                    who: *who,
                    needed: *amount,
                    available: part.balance,
                })?;
                ag.pool = add(ag.pool, *amount)?;
                s.participants.insert(*who, part);
            }
            Effect::Pay { to, amount } => {
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(*buyer))?;
                ag.pool = ag
                    .pool
                    .checked_sub(*amount)
                    .ok_or(ApplyError::PoolShort { needed: *amount, available: ag.pool })?;
                let mut part = s.participant(p, to);
                part.balance = add(part.balance, *amount)?;
                s.participants.insert(*to, part);
            }
            Effect::Burn(amount) => {
                let ag = s.agreements.get_mut(buyer).ok_or(ApplyError::NoAgreement(*buyer))?;
                ag.pool = ag
                    .pool
                    .checked_sub(*amount)
                    .ok_or(ApplyError::PoolShort { needed: *amount, available: ag.pool })?;
                burned = add(burned, *amount)?;
            }
            Effect::Close => {
                let ag = s.agreements.remove(buyer).ok_or(ApplyError::NoAgreement(*buyer))?;
                if !ag.pool.is_zero() {
                    return Err(ApplyError::PoolNotEmpty(ag.pool));
                }
            }
            Effect::Reputation { who, by } => {
                let mut part = s.participant(p, who);
                part.reputation = part.reputation.saturating_sub(*by);
                s.participants.insert(*who, part);
            }
        }
    }
    *state = s;
    Ok(burned)
}

/// Executes a batch in record order, each entry against the state the
/// entries before it left. Returns one TCR per entry.
pub fn execute_batch(
    env: &mut impl ExecEnv,
    p: &IorParams,
    pre: &PreState,
    entries: &[Entry],
) -> Result<Vec<Tcr>, ContractError> {
    let mut st = pre.clone();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let (outcome, effects) = match &e.tx {
            IorTx::At(at) => execute_at(env, p, &st, e, at)?,
            IorTx::St(s) => execute_st(env, p, &st, e, s)?,
        };
        apply_effects(&mut st, p, &e.tx.terms().buyer, &effects)
            .map_err(|err| ContractError::Revert(format!("internal: own effects do not apply: {err}")))?;
        out.push(Tcr { index: i as u32, outcome, effects });
    }
    Ok(out)
}

/// Executes a batch and returns the state after it as well.
pub fn execute_and_apply(
    env: &mut impl ExecEnv,
    p: &IorParams,
    pre: &PreState,
    entries: &[Entry],
) -> Result<(Vec<Tcr>, PreState), ContractError> {
    let tcrs = execute_batch(env, p, pre, entries)?;
    let mut st = pre.clone();
    for (t, e) in tcrs.iter().zip(entries) {
        apply_effects(&mut st, p, &e.tx.terms().buyer, &t.effects)
            .map_err(|err| ContractError::Revert(format!("internal: {err}")))?;
    }
    Ok((tcrs, st))
}

/// `SC_EXE_AT`, Steps 1–6.
fn execute_at(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    e: &Entry,
    at: &AgreementTx,
) -> Result<(Outcome, Vec<Effect>), ContractError> {
    let reject = |why: AtRejection| (Outcome::AtRejected(why), vec![Effect::Reputation { who: e.sender, by: p.alpha }]);
    let t = &at.terms;
    env.charge(STEP_GAS)?;
    // Step 1: only the buyer submits an AT.
    if e.sender != t.buyer {
        return Ok(reject(AtRejection::WrongSender { sender: e.sender, buyer: t.buyer }));
    }
    // Step 2: EP and EM signed by the seller.
    let signed = match &at.seller_sig {
        None => false,
        Some(sig) => {
            env.charge(gas::HASH_BASE + gas::HASH_WORD * 5)?;
            env.recover(&t.seller_digest(), sig)? == Some(t.seller)
        }
    };
    if !signed {
        return Ok(reject(AtRejection::NotSignedBySeller));
    }
    // Step 3: validity, reputation and balances.
    env.charge(STEP_GAS)?;
    let invalid = |s: &str| Ok(reject(AtRejection::InvalidTerms(s.into())));
    if t.buyer == t.seller {
        return invalid("buyer and seller are the same account");
    }
    if t.em.is_zero() || t.ep.is_zero() {
        return invalid("EP and EM must be positive");
    }
    if t.dt_start >= t.dt_end {
        return invalid("empty delivery period DT");
    }
    if t.dl < t.dt_end {
        return invalid("deadline DL precedes the end of DT");
    }
    let Some(need) = t.payment().and_then(|pay| pay.checked_add(p.ds)) else {
        return invalid("D_s + EP × EM overflows");
    };
    for who in [t.buyer, t.seller] {
        let score = st.participant(p, &who).reputation;
        if !p.may_trade(score) {
            return Ok(reject(AtRejection::ReputationTooLow { who, score, beta: p.beta }));
        }
    }
    for (who, needed) in [(t.buyer, need), (t.seller, p.ds)] {
        let available = st.participant(p, &who).balance;
        if available < needed {
            return Ok(reject(AtRejection::InsufficientBalance { who, needed, available }));
        }
    }
    if st.agreements.contains_key(&t.buyer) {
        return Ok(reject(AtRejection::AgreementOpen(t.buyer)));
    }
    // Steps 4 and 5.
    Ok((
        Outcome::AtAccepted,
        vec![
            Effect::Open(t.clone()),
            Effect::Lock { who: t.buyer, amount: need },
            Effect::Lock { who: t.seller, amount: p.ds },
        ],
    ))
}

/// `SC_EXE_ST`, Steps 1–5.
fn execute_st(
    env: &mut impl ExecEnv,
    p: &IorParams,
    st: &PreState,
    e: &Entry,
    s: &SettlementTx,
) -> Result<(Outcome, Vec<Effect>), ContractError> {
    let reject = |why: StRejection| (Outcome::StRejected(why), vec![Effect::Reputation { who: e.sender, by: p.alpha }]);
    let t = &s.terms;
    env.charge(STEP_GAS)?;
    if e.sender != t.seller {
        return Ok(reject(StRejection::WrongSender { sender: e.sender, seller: t.seller }));
    }
    // Step 1: the ST's tuple must equal the AT stored under ADDR_b.
    let Some(ag) = st.agreements.get(&t.buyer) else {
        return Ok(reject(StRejection::NoAgreement(t.buyer)));
    };
    if ag.terms != *t {
        return Ok(reject(StRejection::FieldsMismatch));
    }
    let span_ms = t.dt_end.saturating_sub(t.dt_start);
    let step_ms = u64::from(s.dt_step_s) * 1000;
    let got = s.ps.len() as u64;
    let expected = span_ms.checked_div(step_ms).unwrap_or(0);
    if step_ms == 0 || !span_ms.is_multiple_of(step_ms) || got != expected {
        return Ok(reject(StRejection::ReadingsMismatch { expected, got, step_s: s.dt_step_s }));
    }
    // Step 2: the buyer's signature and the deadline.
    let signed = match &s.buyer_sig {
        None => false,
        Some(sig) => {
            env.charge(gas::HASH_BASE + gas::HASH_WORD * 5)?;
            env.recover(&t.buyer_digest(s.ob), sig)? == Some(t.buyer)
        }
    };
    let late = e.recorded_at > t.dl;
    let pay = t.payment().ok_or_else(|| ContractError::Revert("stored agreement overflows".into()))?;
    let sum = |xs: &[Amount]| -> Result<Amount, ContractError> {
        xs.iter()
            .try_fold(Amount::ZERO, |a, b| a.checked_add(*b))
            .ok_or_else(|| ContractError::Revert("overflow".into()))
    };
    let (ds, pen, burn) = (p.ds, p.penalty(), p.burn());
    env.charge(STEP_GAS)?;
    if !signed && late {
        // Step 2: penalise the buyer; the ST is still executed (the seller is paid).
        return Ok((
            Outcome::StSettled(StSettlement::LateBuyerSignature),
            vec![
                Effect::Pay { to: t.seller, amount: sum(&[pay, ds, pen])? },
                Effect::Burn(burn),
                Effect::Reputation { who: t.buyer, by: p.alpha },
                Effect::Close,
            ],
        ));
    }
    if !signed {
        return Ok((Outcome::StRejected(StRejection::AwaitingBuyerSignature { dl: t.dl, now: e.recorded_at }), vec![]));
    }
    if s.ob {
        // Step 3 (i): both deposits back, the seller paid.
        return Ok((
            Outcome::StSettled(StSettlement::Agreed),
            vec![
                Effect::Pay { to: t.seller, amount: sum(&[pay, ds])? },
                Effect::Pay { to: t.buyer, amount: ds },
                Effect::Close,
            ],
        ));
    }
    // Step 4: arbitration on the seller's meter, exactly in watt-seconds.
    env.charge(READING_GAS * got)?;
    let delivered_short = s.metered_ws() < i128::from(t.em.0) * 3600;
    if delivered_short {
        Ok((
            Outcome::StSettled(StSettlement::SellerShortfall),
            vec![
                Effect::Pay { to: t.buyer, amount: sum(&[pay, ds, pen])? },
                Effect::Burn(burn),
                Effect::Reputation { who: t.seller, by: p.alpha },
                Effect::Close,
            ],
        ))
    } else {
        Ok((
            Outcome::StSettled(StSettlement::SellerDelivered),
            vec![
                Effect::Pay { to: t.seller, amount: sum(&[pay, ds, pen])? },
                Effect::Burn(burn),
                Effect::Reputation { who: t.buyer, by: p.alpha },
                Effect::Close,
            ],
        ))
    }
}
