//! The Credit-Note System of seed 000: the Merchant's Smart Contract (MSC),
//! the Entity's Smart Contract (ESC) and the state-channel adjudicator, as
//! one native contract (id [`crate::CNS_ID`]).
//!
//! They share one contract because a channel's close must update its ESC and
//! both MSCs atomically (seed Fig 16) and native contracts do not call each
//! other; the three record kinds live under separate storage prefixes.
//!
//! Seed map:
//! - credit approval (§3.3.6, Fig 3) is off-chain: [`credit`]; `msc_init`
//!   (Fig 4, Fig 11) carries the merchant's signed approval and the
//!   participant's `σ = Sign(H(state, N), 0)` and locks the collateral under
//!   a time-lock the merchant can enforce only after its window (§5.1.1);
//! - `esc_open` (Fig 5, Fig 12) binds fresh per-ESC pseudonym keys, derives
//!   `scid = SC(⟨P_i,P_j⟩, n)` and updates both MSCs;
//! - `channel_open` / `channel_fund` / `channel_abort` (Fig 6, Fig 13),
//!   `channel_update` (Fig 7, Fig 14: registers a newer co-signed state),
//!   `channel_dispute` / `channel_resolve` / `channel_settle` (Fig 8, Fig 15,
//!   §5.1.1 dispute timer `t_end = t_start + t_Δ`), `channel_close` (Fig 9,
//!   Fig 16);
//! - `channel_topup` / `channel_withdraw` (beyond the seed, as in
//!   Lightning's splicing): add coin to an open channel (on chain first,
//!   then allocated by a co-signed state) and take part of a side's balance
//!   out by a co-signed state, without closing;
//! - `msc_sign_debit` (§4 step 5, Fig 16): the merchant signs the
//!   recalculated amount of a credit-backed side into the MSC;
//! - `bill_pay` / `bill_settle` (§5.1.4): billing per period, directly or from
//!   the collateral once its time-lock allows; `msc_close` returns collateral;
//!   `msc_claim`: the participant's remedy when the merchant never signs or
//!   pays what it owes (a lapsed billing period and the time-lock past).
//!
//! Choices where the seed is open, recorded here:
//! - **Credit-note backing.** A merchant keeps a pool of coin in the
//!   contract; a credit note it signs reserves pool coin for the
//!   participant's side, so the counterparty is reimbursed atomically at close
//!   and never waits on the merchant. The credit side's final amount returns
//!   to the pool ("goes to the merchant"), and the difference is recorded as a
//!   pending debit (or credit) that the merchant signs into the MSC.
//! - **Dispute fault.** Only a party *shown* to have cheated is at fault:
//!   a dispute overturned by a newer co-signed state is the raiser's fault
//!   (it closed with a stale state the newer one proves it had signed past),
//!   unless the newer state is one the raiser may have signed first and never
//!   received co-signed: its own payment built directly on the disputed
//!   state (its `prev_counter` is the disputed counter; at any counter:
//!   fallen-back proposals skip counters), or the
//!   final state of the disputed one (see `raiser_may_lack`).
//!   A dispute that times out books no fault on anyone: silence proves
//!   nothing newer exists, and faulting the silent side would let any party
//!   blacklist an honest peer by disputing four times. A cooperative close
//!   during a dispute books the raiser a fault when its final state is not
//!   the close of the disputed state (other balances, energy or top-ups):
//!   the raiser co-signed past the state it disputed with, so trying a
//!   stale dispute and closing when caught is not free (see
//!   `close_shows_stale_dispute`); the close of the disputed state itself
//!   books none. Faults count against the party's
//!   MSC: grey list at the merchant's `grey_after`, blacklist at
//!   `black_after` (§5.1.3). A blacklisted MSC cannot open ESCs or channels
//!   or draw credit notes.
//! - **Domain separation.** Every signed statement is hashed with its
//!   [`Domain`] (chain id, contract id) and channel states carry it too, so
//!   nothing signed on one chain verifies on another. `t_Δ` is a term of
//!   the co-signed open state, at least [`MIN_T_DELTA_MS`]; each credit
//!   approval creates one MSC only.
//! - **What the merchant owes.** Credit that closed channels owe
//!   participants is counted in the merchant's `owed` and stays in the pool:
//!   `pool_withdraw` takes only `free − owed`, so `msc_claim` can always pay
//!   a participant whose merchant stopped billing, after which `msc_close`
//!   returns the collateral. `owed` is the sum, per MSC, of its billed net
//!   credit (net only of that MSC's *signed* debits and payments) and every
//!   pending credit: an unsigned pending debit, or another MSC's debt, never
//!   reduces it (see `owed_of`), and `bill_settle` refuses to leave `free`
//!   below `owed`.
//! - **Credit-side accounting.** For every credit-backed side, the
//!   participant's debit is exactly what the merchant's pool paid into the
//!   channel for that side minus what comes back to the pool at close:
//!   `debit − credit = (note + Σ top-up notes) − (balance + unallocated
//!   top-up)`, the balance and unallocated top-up taken *after* the
//!   deductions of `settle_amounts` (which may spend a credit side's
//!   unallocated top-up on the peer's already-paid withdrawals when a
//!   higher-counter state de-allocates it). The [`DebitRecord`] books
//!   `funded = notes − unallocated returned`, so `debit = funded − final`
//!   as the merchant recalculates it, and the MSC's ledger always balances
//!   (`imbalance() == 0`) whatever states, withdrawals and top-ups were
//!   registered. The close is never refused for such a deduction: that coin
//!   was already paid out; it is the participant's debt, counted against
//!   its credit limit like any other.
//! - **Top-up and partial withdraw** (beyond the seed). A top-up is on
//!   chain before any state names it (`channel_topup`), so the peer never
//!   co-signs coin that is not there; a closing state that does not
//!   allocate it refunds it to whoever added it. A credit-backed side tops
//!   up with a merchant note bound to the top-up's index (one use each,
//!   within the approved credit) and cannot withdraw (its balance is the
//!   merchant's credit, settled only at close). A withdrawal is paid by
//!   `channel_withdraw` at once, or by the close if that transaction never
//!   came. Neither is allowed during a dispute.
//! - **Ranking of states: the counter alone.** A co-signed state with a
//!   strictly higher counter supersedes the registered one, whatever its
//!   `resize` and energy say. A party may sign a proposal that falls back
//!   (the peer withholds its acceptance) and then co-sign later states built
//!   on the state before it, at higher counters; the peer can register the
//!   fallen-back proposal at any time, so no later state may be ranked below
//!   it, or the peer voids every payment made after it. The monotone checks
//!   therefore compare with what the chain already *acted* on, not with the
//!   registered state: a state may allocate at most the top-up deposited on
//!   chain (what it leaves unallocated is refunded at close), and
//!   withdrawals already paid out (`withdrawn_paid`) stay paid: a newer
//!   state that withdraws less for a side than it was paid has the excess
//!   deducted from that side at settlement (`settle_amounts`; if its
//!   balance cannot cover it, from the other side, which then signed a
//!   state giving away what was already paid). An honest party's newest
//!   state carries the highest counter it ever signed, so it always
//!   supersedes whatever the peer registers, and settles at what it says.
//!   `channel_withdraw` pays a side only up to what the registered state
//!   leaves it after the other side's due, so a channel never pays out more
//!   than it holds.
//!   The converse (a party whose newest co-signed state is *below* the
//!   registered one: the peer registered the party's fallen-back proposal
//!   with `channel_update` and went silent) is the client's to handle: a
//!   dispute with a state below the registered one is refused as stale, so
//!   `cns_channel_updated` / `cns_channel_withdrawn` tell the client to read
//!   the registered state, which it signed, and it disputes with that (the
//!   same state as the registered one is accepted) or with a newer one of
//!   its own.
//! - **Dispute limit.** A channel may not be opened when the ESC has *more
//!   than* `dispute_limit` disputes (§3.3.3).
//! - **Resolution.** A resolved dispute returns the channel to `Open` with
//!   the newer state (Fig 8 step 3: "the state channel can be continued").
//! - **Privacy** (§3.3.9, §6.2.0.1): exactly what is and is not hidden.
//!   *Hidden:* real identities and supporting documents (only one hash of
//!   the documents, inside the approval); the MSC and per-ESC pseudonym
//!   keys are fresh keys unrelated to any account, and records and events
//!   name parties by their UUTIDs (hashes of those keys) and session ids.
//!   *Not hidden:* (1) the account that sends each transaction (`msc_init`
//!   is sent and paid by the participant's account; `channel_fund` with a
//!   deposit must come from the side's payout address, and every
//!   transaction's sender pays gas); (2) payout addresses, which coin is
//!   paid to; (3) the ESC→MSC link (`Esc::sids`) and therefore all channels
//!   of one MSC are linkable to each other; (4) amounts, energy and timing
//!   of registered states. So UUTIDs unlink a party from its *identity*, not
//!   its channels from each other or from its accounts. A party that wants
//!   its ESCs unlinkable from each other must use a fresh MSC, a fresh
//!   account and a fresh payout address per ESC, funding each from a source
//!   not linked on chain; the CLI does not automate that. Each claim here is
//!   asserted on a real channel's blocks and receipts by the channel crate's
//!   `privacy` test.

pub mod credit;
pub mod types;

use borsh::BorshSerialize;
use gridledger_core::{Address, Amount, Energy, Hash32, PublicKey, Signature};
use gridledger_ledger::gas;
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde_json::json;

pub use types::*;

/// Longest dispute/time-lock window a channel may ask for (30 days, ms).
pub const MAX_T_DELTA_MS: u64 = 30 * 24 * 3600 * 1000;
/// Shortest dispute window the adjudicator accepts (ms): ten blocks at the
/// node's default 1 s interval, so a party that is online always has blocks
/// in which to answer a stale dispute. Clients may demand more
/// (`ChannelParams::min_t_delta_ms`).
pub const MIN_T_DELTA_MS: u64 = 10_000;

pub struct CnsContract;

const NEXT_SID: &[u8] = b"next_sid";

fn merchant_key(a: &Address) -> Vec<u8> {
    [b"m/".as_slice(), &a.0].concat()
}
fn msc_key(sid: u64) -> Vec<u8> {
    [b"msc/".as_slice(), &sid.to_be_bytes()].concat()
}
fn esc_key(scid: &Hash32) -> Vec<u8> {
    [b"esc/".as_slice(), &scid.0].concat()
}
fn pair_key(a: u64, b: u64) -> Vec<u8> {
    [b"pair/".as_slice(), &a.to_be_bytes(), &b.to_be_bytes()].concat()
}
fn channel_key(cid: &Hash32) -> Vec<u8> {
    [b"ch/".as_slice(), &cid.0].concat()
}
fn approval_key(digest: &Hash32) -> Vec<u8> {
    [b"ap/".as_slice(), &digest.0].concat()
}
/// `𝕋` entry `i` of an ESC.
fn esc_tx_key(scid: &Hash32, i: u64) -> Vec<u8> {
    [b"etx/".as_slice(), &scid.0, &i.to_be_bytes()].concat()
}
/// `𝔻` entry `i` of an ESC.
fn esc_dispute_key(scid: &Hash32, i: u32) -> Vec<u8> {
    [b"ed/".as_slice(), &scid.0, &i.to_be_bytes()].concat()
}
/// ESC `i` of an MSC.
fn msc_esc_key(sid: u64, i: u64) -> Vec<u8> {
    [b"me/".as_slice(), &sid.to_be_bytes(), &i.to_be_bytes()].concat()
}
/// A pending settlement of an MSC, by channel: `(epoch, record)`.
fn msc_pending_key(sid: u64, cid: &Hash32) -> Vec<u8> {
    [b"mp/".as_slice(), &sid.to_be_bytes(), &cid.0].concat()
}
/// The channel of the `seq`-th pending settlement ever written (for reads).
fn msc_pending_index_key(sid: u64, seq: u64) -> Vec<u8> {
    [b"mpi/".as_slice(), &sid.to_be_bytes(), &seq.to_be_bytes()].concat()
}
/// Signed settlement `i` of an MSC.
fn msc_signed_key(sid: u64, i: u64) -> Vec<u8> {
    [b"ms/".as_slice(), &sid.to_be_bytes(), &i.to_be_bytes()].concat()
}

/// Appends a state hash to the ESC's `𝕋` (one keyed entry: O(1) gas).
fn push_tx(ctx: &mut CallContext<'_, '_>, esc: &mut EscRecord, h: Hash32) -> R<()> {
    ctx.write_typed(&esc_tx_key(&esc.scid, esc.tx_count), &h)?;
    esc.tx_count = esc.tx_count.saturating_add(1);
    Ok(())
}

/// Sets the outcome of the ESC's dispute `d`.
fn set_dispute_outcome(ctx: &mut CallContext<'_, '_>, scid: &Hash32, d: u32, o: DisputeOutcome) -> R<DisputeRecord> {
    let key = esc_dispute_key(scid, d);
    let mut rec: DisputeRecord = load(ctx, &key, "dispute record")?;
    rec.outcome = o;
    store(ctx, &key, &rec)?;
    Ok(rec)
}

/// Records a closed channel's settlement as pending the merchant's
/// signature (keyed by channel, so the MSC record stays fixed-size).
fn add_pending(ctx: &mut CallContext<'_, '_>, msc: &mut MscRecord, rec: &DebitRecord) -> R<()> {
    ctx.write_typed(&msc_pending_key(msc.sid, &rec.cid), &(msc.pending_epoch, rec.clone()))?;
    ctx.write_typed(&msc_pending_index_key(msc.sid, msc.pending_seq), &rec.cid)?;
    msc.pending_seq = msc.pending_seq.saturating_add(1);
    if msc.pending_count == 0 {
        msc.pending_since = ctx.timestamp();
    }
    msc.pending_count = msc.pending_count.saturating_add(1);
    Ok(())
}

/// The domain this contract signs and verifies in: its own id on this chain.
fn domain_of(ctx: &CallContext<'_, '_>) -> Domain {
    Domain { chain_id: ctx.chain_id(), contract: ctx.contract_id() }
}

/// The most the merchant may have to pay an MSC's participant: its billed
/// net credit not yet paid (billed credits net of *signed* debits,
/// payments and seizures of this MSC only) plus every pending credit.
/// Pending debits are not netted: the merchant has not signed them, and
/// `bill_settle` pays the billed credit without them (a sybil MSC with an
/// unsigned debit must not hide its credit from `owed`). Summed per MSC
/// into the merchant's `owed`, so one MSC's debt never offsets another's
/// credit. Every payout path pays at most this (`bill_settle`: the billed
/// net credit; `msc_claim`: that plus pending credits minus pending
/// debits), and `pool_withdraw` / notes draw only on `free − owed`, so the
/// pool always covers it.
fn owed_of(msc: &MscRecord) -> Amount {
    let billed = msc.ledger.outstanding_net();
    let billed = if billed < 0 { Amount(billed.unsigned_abs()) } else { Amount::ZERO };
    Amount(billed.0.saturating_add(msc.ledger.pending_credits.0))
}

/// Moves the merchant's `owed` by the change of one MSC's owed credit.
fn adjust_owed(m: &mut Merchant, before: Amount, after: Amount) -> R<()> {
    m.owed = add(sub(m.owed, before, "merchant owed")?, after)?;
    Ok(())
}

type R<T> = Result<T, ContractError>;

fn err(reason: impl Into<String>) -> ContractError {
    ContractError::Revert(reason.into())
}

fn add(a: Amount, b: Amount) -> R<Amount> {
    a.checked_add(b).ok_or_else(|| err("amount overflow"))
}
fn sub(a: Amount, b: Amount, what: &str) -> R<Amount> {
    a.checked_sub(b).ok_or_else(|| err(format!("{what}: {a} is less than {b}")))
}
fn add_e(a: Energy, b: Energy) -> R<Energy> {
    a.checked_add(b).ok_or_else(|| err("energy overflow"))
}

/// Verifies a CNS statement's signature, charging a hash and an `ecrecover`.
fn verify_stmt(
    ctx: &mut CallContext<'_, '_>,
    stmt: &Statement,
    nonce: u64,
    pk: &PublicKey,
    sig: &Signature,
) -> R<bool> {
    let len = borsh::to_vec(stmt).map(|v| v.len()).unwrap_or(0);
    ctx.charge(2 * gas::HASH_BASE + gas::HASH_WORD * (gas::words(len) + 3))?;
    ctx.charge(gas::ECRECOVER)?;
    let domain = domain_of(ctx);
    Ok(stmt.verify(pk, &domain, nonce, sig))
}

fn load<T: borsh::BorshDeserialize>(ctx: &mut CallContext<'_, '_>, key: &[u8], what: &str) -> R<T> {
    ctx.read_typed::<T>(key)?.ok_or_else(|| err(format!("no such {what}")))
}
fn store<T: BorshSerialize>(ctx: &mut CallContext<'_, '_>, key: &[u8], v: &T) -> R<()> {
    ctx.write_typed(key, v)
}

fn side_of(side: u8) -> R<usize> {
    match side {
        0 | 1 => Ok(side as usize),
        s => revert(format!("side must be 0 or 1, got {s}")),
    }
}

/// Records a dispute fault against an MSC and updates its standing (§5.1.3).
fn record_fault(ctx: &mut CallContext<'_, '_>, sid: u64) -> R<()> {
    let mut msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
    let m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
    msc.disputes_at_fault = msc.disputes_at_fault.saturating_add(1);
    let before = msc.standing;
    if msc.disputes_at_fault >= m.black_after {
        msc.standing = Standing::Black;
    } else if msc.disputes_at_fault >= m.grey_after && msc.standing == Standing::Good {
        msc.standing = Standing::Grey;
    }
    if msc.standing != before {
        ctx.emit(
            "cns_standing",
            vec![
                ("sid".into(), sid.to_string()),
                ("participant".into(), msc.participant.to_string()),
                ("standing".into(), format!("{:?}", msc.standing)),
            ],
        )?;
    }
    store(ctx, &msc_key(sid), &msc)
}

/// Checks a co-signed channel state against the channel: this chain and
/// contract, right channel and `t_Δ`, conserved total, top-ups within what
/// was deposited, both per-ESC signatures. Callers check the counter.
fn check_state(ctx: &mut CallContext<'_, '_>, ch: &Channel, esc: &EscRecord, s: &SignedState) -> R<()> {
    if s.state.domain != domain_of(ctx) {
        return revert(format!(
            "state is signed for chain {} contract {}, not this one",
            s.state.domain.chain_id, s.state.domain.contract
        ));
    }
    if s.state.cid != ch.cid {
        return revert("state is for another channel");
    }
    if s.state.t_delta_ms != ch.t_delta_ms {
        return revert(format!("state carries t_delta {} ms, the channel's is {}", s.state.t_delta_ms, ch.t_delta_ms));
    }
    // No comparison with the registered state's resize or energy: a higher
    // counter supersedes (see "Ranking of states" above); what the chain
    // already acted on is checked here (top-ups) and settled in
    // `settle_amounts` (withdrawals paid).
    let r = &s.state.resize;
    for i in 0..2 {
        if r.topped_up[i] > ch.topped_up[i] {
            return revert(format!(
                "state allocates side {i} a top-up of {}, only {} was added on chain",
                r.topped_up[i], ch.topped_up[i]
            ));
        }
        if !r.withdrawn[i].is_zero() && ch.funded[i] == Some(FundKind::Credit) {
            return revert(format!("side {i} is credit-backed: it cannot withdraw, only close"));
        }
    }
    // Σ balances + Σ withdrawn = Σ capacity + Σ topped_up.
    let total = add(add(ch.capacity[0], ch.capacity[1])?, add(r.topped_up[0], r.topped_up[1])?)?;
    let held = add(add(s.state.balances[0], s.state.balances[1])?, add(r.withdrawn[0], r.withdrawn[1])?)?;
    if held != total {
        return revert(format!("state balances and withdrawals do not sum to the channel's {total}"));
    }
    let stmt = Statement::Channel(s.state.clone());
    for i in 0..2 {
        if !verify_stmt(ctx, &stmt, s.nonce, &esc.keys[i], &s.sigs[i])? {
            return revert(format!("bad or missing signature of side {i}"));
        }
    }
    Ok(())
}

/// Replaces the channel's registered state, keeping the ESC's temporary
/// amounts and transaction list in step (seed Fig 7 step 2).
fn register_state(ctx: &mut CallContext<'_, '_>, esc: &mut EscRecord, ch: &mut Channel, s: SignedState) -> R<()> {
    for i in 0..2 {
        esc.amounts[i] = add(sub(esc.amounts[i], ch.latest.state.balances[i], "ESC amount")?, s.state.balances[i])?;
        esc.energy[i] = add_e(esc.energy[i].saturating_sub(ch.latest.state.energy[i]), s.state.energy[i])?;
    }
    push_tx(ctx, esc, s.hstate())?;
    ch.latest = s;
    Ok(())
}

/// Closes a channel with its registered state: refunds deposits, returns
/// credit-backed amounts to the merchant and records the pending debit,
/// and writes final amounts into the ESC and both MSCs (seed Fig 9, Fig 16).
/// What closing with `st` pays each side, given what the chain already paid
/// out (`ch.withdrawn_paid`) and deposited as top-ups (`ch.topped_up`):
/// per side `[balance, unallocated top-up, withdrawal not yet paid]`.
///
/// Normally that is `st`'s balance, the top-up it leaves unallocated and
/// `withdrawn − withdrawn_paid`. A side that was paid more withdrawals than
/// `st` withdraws (a higher-counter state superseded the registered
/// withdrawal, see "Ranking of states") has the excess deducted: from its
/// balance, then its unallocated top-up; what it cannot cover comes off the
/// other side's amounts (that side co-signed `st` giving away what was
/// paid). The parts sum to what the channel still holds.
fn settle_amounts(ch: &Channel, st: &ChannelState) -> R<[[Amount; 3]; 2]> {
    let mut parts = [[Amount::ZERO; 3]; 2];
    let mut over = [Amount::ZERO; 2];
    for i in 0..2 {
        let unallocated = sub(ch.topped_up[i], st.resize.topped_up[i], "top-up")?;
        let (w, paid) = (st.resize.withdrawn[i], ch.withdrawn_paid[i]);
        parts[i] = [st.balances[i], unallocated, w.saturating_sub(paid)];
        over[i] = paid.saturating_sub(w);
    }
    fn take(p: &mut [Amount; 3], mut d: Amount) -> Amount {
        for a in p.iter_mut() {
            let t = (*a).min(d);
            *a = Amount(a.0 - t.0);
            d = Amount(d.0 - t.0);
        }
        d
    }
    for i in 0..2 {
        let rest = take(&mut parts[i], over[i]);
        over[i] = rest;
    }
    for i in 0..2 {
        if !take(&mut parts[1 - i], over[i]).is_zero() {
            return revert("the channel holds less than was paid out of it");
        }
    }
    Ok(parts)
}

/// What `channel_withdraw` pays now for the registered state `st`: each
/// side's `withdrawn − withdrawn_paid`, but never more than the channel
/// holds beyond what closing with `st` owes the other side (so withdrawals
/// paid from two histories never take another channel's coin).
fn withdraw_amounts(ch: &Channel, st: &ChannelState) -> R<[Amount; 2]> {
    let parts = settle_amounts(ch, st)?;
    Ok([parts[0][2], parts[1][2]])
}

fn finalise(ctx: &mut CallContext<'_, '_>, esc: &mut EscRecord, ch: &mut Channel) -> R<()> {
    let st = ch.latest.state.clone();
    let parts = settle_amounts(ch, &st)?;
    for (i, part) in parts.iter().enumerate() {
        let q = st.energy[i];
        // Top-up the closing state does not allocate goes back to whoever
        // added it; a withdrawal not yet paid is paid now (see
        // `settle_amounts` for a side paid more than `st` withdraws).
        let [b, unallocated, unpaid] = *part;
        let paid = add(ch.withdrawn_paid[i], unpaid)?;
        ch.withdrawn_paid[i] = paid;
        esc.amounts[i] = sub(esc.amounts[i], st.balances[i], "ESC amount")?;
        esc.energy[i] = esc.energy[i].saturating_sub(q);
        // α^final counts what the channel paid side i out: its closing
        // balance plus every withdrawal (paid earlier by `channel_withdraw`
        // or now), so one co-signed history gives one record either way.
        esc.final_amounts[i] = add(esc.final_amounts[i], add(b, paid)?)?;
        esc.final_energy[i] = add_e(esc.final_energy[i], q)?;
        let sid = esc.sids[i];
        let mut msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
        let owed_before = owed_of(&msc);
        msc.final_amount = add(msc.final_amount, b)?;
        msc.final_energy = add_e(msc.final_energy, q)?;
        match ch.funded[i] {
            Some(FundKind::Deposit) | None => ctx.pay(&esc.payouts[i], add(add(b, unallocated)?, unpaid)?)?,
            Some(FundKind::Credit) => {
                // The participant is debited what the pool paid in for
                // this side (the open's note and every top-up note) minus
                // what comes back to the pool, both measured after
                // `settle_amounts`' deductions: an unallocated top-up that
                // the close took to cover the peer's paid withdrawals left
                // the pool for good, so it is debited like spent credit
                // (see "Credit-side accounting" above). The close is never
                // refused for it: that coin was already paid out.
                let f_total = add(ch.capacity[i], ch.topped_up[i])?;
                let returned = add(b, unallocated)?;
                let funded = sub(f_total, unallocated, "funded notes")?;
                let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
                m.reserved = sub(m.reserved, f_total, "merchant reserve")?;
                m.free = add(m.free, returned)?;
                let rec = DebitRecord {
                    sid,
                    cid: ch.cid,
                    funded,
                    final_amount: b,
                    energy: q,
                    debit: funded.saturating_sub(b),
                    credit: b.saturating_sub(funded),
                };
                msc.ledger.locked = sub(msc.ledger.locked, f_total, "locked notes")?;
                msc.ledger.returned = add(msc.ledger.returned, returned)?;
                msc.ledger.pending_debits = add(msc.ledger.pending_debits, rec.debit)?;
                msc.ledger.pending_credits = add(msc.ledger.pending_credits, rec.credit)?;
                adjust_owed(&mut m, owed_before, owed_of(&msc))?;
                store(ctx, &merchant_key(&msc.merchant), &m)?;
                ctx.emit(
                    "cns_settlement_pending",
                    vec![
                        ("sid".into(), sid.to_string()),
                        ("cid".into(), ch.cid.to_string()),
                        ("debit".into(), rec.debit.to_string()),
                        ("credit".into(), rec.credit.to_string()),
                    ],
                )?;
                add_pending(ctx, &mut msc, &rec)?;
            }
        }
        store(ctx, &msc_key(sid), &msc)?;
    }
    push_tx(ctx, esc, ch.latest.hstate())?;
    ch.status = ChannelStatus::Closed;
    ctx.emit(
        "cns_channel_closed",
        vec![
            ("cid".into(), ch.cid.to_string()),
            ("counter".into(), st.counter.to_string()),
            ("balance0".into(), st.balances[0].to_string()),
            ("balance1".into(), st.balances[1].to_string()),
            ("energy0".into(), st.energy[0].to_string()),
            ("energy1".into(), st.energy[1].to_string()),
        ],
    )
}

/// Refuses an operation that needs an open channel, with the §3.3.3 reason.
fn require_open(ch: &Channel) -> R<()> {
    match ch.status {
        ChannelStatus::Open => Ok(()),
        ChannelStatus::Disputed => revert("channel is in dispute"),
        ChannelStatus::Closed => revert("channel is closed"),
        ChannelStatus::Funding => revert("channel is not open: funding incomplete"),
    }
}

/// The fault rule of a cooperative close during a dispute (`channel_close`):
/// the final state `f` is co-signed by both sides, so by the raiser too. The
/// honest client co-signs a final state only with its own newest co-signed
/// state's balances, energy and top-ups (`prev_counter` = that state), and
/// disputes with its newest co-signed state; so a close that does not carry
/// the disputed state `d`'s balances, energy and resize shows the raiser held
/// a newer co-signed state when it disputed with `d`, the same evidence
/// `channel_resolve` faults on. (A raiser that learns a newer state of its
/// own after disputing, such as its fallen-back payment, resolves with it
/// — excused by `raiser_may_lack` — rather than closing on it.) A close of
/// `d` itself books nothing.
fn close_shows_stale_dispute(d: &ChannelState, f: &ChannelState) -> bool {
    f.balances != d.balances || f.energy != d.energy || f.resize != d.resize
}

/// The dispute-fault rule: whether `c`, overturning the dispute `raiser`
/// raised with `d`, is a state the raiser may have signed without ever
/// holding it co-signed (then the overturn books no fault on it).
///
/// What the contract can know: a state is signed first by its proposer and
/// second by its acceptor, who signs only after checking the proposer's
/// signature, so the acceptor holds it co-signed the moment it signs; the
/// proposer holds it only if the acceptance reaches it, which the peer can
/// withhold. A payment update is proposed by its buyer (`last_trade.buyer`;
/// parties refuse any other). A raiser honestly disputes with its latest
/// co-signed state `d`; its own unacknowledged proposals build on `d` (with
/// the update fallback its counters skip, so `c` may be any distance past
/// `d`). So `c` is excused when it is:
/// - the raiser's own payment applied directly to `d` (`c.prev_counter ==
///   d.counter`, single or folded): the raiser is the
///   buyer, its energy is unchanged, and its balance fell (the peer's rose)
///   by exactly the trade's amount and the peer's energy by the trade's
///   energy; for a fold (whose trade list is off chain) by at least the last
///   trade's amount and energy;
/// - a final state with `d`'s balances and energy (the close of `d`, which
///   either side may have proposed).
///
/// Anything else shows the raiser signed past `d` as acceptor (a peer's
/// update raises the raiser's energy), or stacked further updates on a state
/// it held co-signed: it closed with a stale state, a fault. A raiser with a
/// proposal window above 1 may honestly lack several stacked proposals; that
/// remains its risk (parties default to a window of 1).
fn raiser_may_lack(d: &ChannelState, c: &ChannelState, raiser: usize) -> bool {
    let peer = 1 - (raiser & 1);
    let raiser = raiser & 1;
    if c.resize != d.resize {
        return false;
    }
    if c.is_final {
        return c.balances == d.balances && c.energy == d.energy && c.last_trade.is_none();
    }
    let Some(t) = c.last_trade else { return false };
    // Built directly on `d` (counters may skip, `prev_counter` does not):
    // a payment stacked on a later state shows the raiser held that one.
    if c.prev_counter != d.counter {
        return false;
    }
    if usize::from(t.buyer) != raiser || c.energy[raiser] != d.energy[raiser] {
        return false;
    }
    let paid = d.balances[raiser].checked_sub(c.balances[raiser]);
    let got = c.balances[peer].checked_sub(d.balances[peer]);
    let delivered = c.energy[peer].checked_sub(d.energy[peer]);
    let (Some(paid), Some(got), Some(delivered)) = (paid, got, delivered) else { return false };
    if paid != got {
        return false;
    }
    match c.fold {
        None => paid == t.amount && delivered == t.energy,
        Some(f) => f.trades >= 2 && paid >= t.amount && delivered >= t.energy,
    }
}

fn require_newer(ch: &Channel, s: &SignedState) -> R<()> {
    if s.state.counter <= ch.latest.state.counter {
        return revert(format!(
            "stale state: counter {} is not above the registered {}",
            s.state.counter, ch.latest.state.counter
        ));
    }
    Ok(())
}

/// What `channel_update` and `channel_withdraw` both check before they
/// register a state: `args` carry a co-signed state of an open channel (not
/// in dispute) that is not final, is newer than the registered one and
/// passes [`check_state`]. Returns the state, the channel and its ESC record.
fn newer_open_state(ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<(SignedState, Channel, EscRecord)> {
    let a: ChannelStateArgs = decode_args(args)?;
    let ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
    require_open(&ch)?;
    if a.state.state.is_final {
        return revert("a final state closes the channel: use channel_close");
    }
    require_newer(&ch, &a.state)?;
    let esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
    check_state(ctx, &ch, &esc, &a.state)?;
    Ok((a.state, ch, esc))
}

impl CnsContract {
    fn merchant_register(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: RegisterMerchant = decode_args(args)?;
        let me = ctx.caller();
        if ctx.read(&merchant_key(&me))?.is_some() {
            return revert("merchant already registered");
        }
        if a.billing_period_ms == 0 || a.grey_after == 0 || a.black_after < a.grey_after {
            return revert("need billing_period_ms > 0 and 0 < grey_after <= black_after");
        }
        let m = Merchant {
            key: a.key,
            free: ctx.value(),
            reserved: Amount::ZERO,
            owed: Amount::ZERO,
            billing_period_ms: a.billing_period_ms,
            grey_after: a.grey_after,
            black_after: a.black_after,
        };
        store(ctx, &merchant_key(&me), &m)?;
        ctx.emit("cns_merchant", vec![("merchant".into(), me.to_string())])?;
        Ok(vec![])
    }

    fn pool(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> R<Vec<u8>> {
        let me = ctx.caller();
        let mut m: Merchant = load(ctx, &merchant_key(&me), "merchant")?;
        if method == "pool_deposit" {
            m.free = add(m.free, ctx.value())?;
        } else {
            let a: PoolWithdraw = decode_args(args)?;
            // Credit owed to participants stays in the pool (issue: a
            // merchant could otherwise withdraw what it owes and leave the
            // participant's claim and collateral stuck).
            let withdrawable = m.free.saturating_sub(m.owed);
            if a.amount > withdrawable {
                return revert(format!(
                    "pool_withdraw of {} exceeds the {withdrawable} not owed to participants ({} owed)",
                    a.amount, m.owed
                ));
            }
            m.free = sub(m.free, a.amount, "free pool")?;
            ctx.pay(&me, a.amount)?;
        }
        store(ctx, &merchant_key(&me), &m)?;
        Ok(vec![])
    }

    /// `msc-init` (seed Fig 4, Fig 11).
    fn msc_init(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: MscInitArgs = decode_args(args)?;
        let ap = &a.approval.approval;
        let m: Merchant = match ctx.read_typed(&merchant_key(&ap.merchant))? {
            Some(m) => m,
            None => return revert("approval names an unregistered merchant"),
        };
        if ctx.timestamp() > ap.valid_until {
            return revert("credit approval expired");
        }
        let ap_stmt = Statement::CreditApproval(ap.clone());
        if !verify_stmt(ctx, &ap_stmt, a.approval.nonce, &m.key, &a.approval.sig)? {
            return revert("bad merchant signature on the credit approval");
        }
        let digest = a.approval.digest(&domain_of(ctx));
        let used = approval_key(&digest);
        if ctx.read(&used)?.is_some() {
            return revert("credit approval already used");
        }
        let init = Statement::MscInit(MscInit { approval: digest, payout: a.payout });
        if !verify_stmt(ctx, &init, a.nonce, &ap.participant, &a.sig)? {
            return revert("bad participant signature on msc-init");
        }
        if ctx.value() != ap.collateral {
            return revert(format!("collateral must be exactly {} as approved, got {}", ap.collateral, ctx.value()));
        }
        let sid = ctx.read_typed::<u64>(NEXT_SID)?.unwrap_or(0);
        ctx.write_typed(NEXT_SID, &(sid + 1))?;
        ctx.write_typed(&used, &sid)?;
        let now = ctx.timestamp();
        let msc = MscRecord {
            sid,
            esc_count: 0,
            merchant: ap.merchant,
            participant: uutid(&ap.participant),
            participant_key: ap.participant,
            payout: a.payout,
            final_amount: Amount::ZERO,
            final_energy: Energy::ZERO,
            sigs: [a.approval.sig, a.sig],
            approval_nonce: a.approval.nonce,
            collateral: ap.collateral,
            collateral_unlock_at: now.saturating_add(ap.lock_ms),
            credit_limit: ap.credit_limit,
            ledger: CreditLedger::default(),
            pending_count: 0,
            pending_seq: 0,
            pending_epoch: 0,
            pending_since: 0,
            signed_count: 0,
            disputes_at_fault: 0,
            standing: Standing::Good,
            billing_period_start: now,
            closed: false,
        };
        store(ctx, &msc_key(sid), &msc)?;
        ctx.emit(
            "cns_msc",
            vec![
                ("sid".into(), sid.to_string()),
                ("participant".into(), msc.participant.to_string()),
                ("collateral".into(), msc.collateral.to_string()),
                ("unlock_at".into(), msc.collateral_unlock_at.to_string()),
            ],
        )?;
        Ok(borsh::to_vec(&sid).unwrap_or_default())
    }

    /// `sc-init` (seed Fig 5, Fig 12).
    fn esc_open(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: EscOpenArgs = decode_args(args)?;
        let init = &a.init;
        if init.sids[0] == init.sids[1] {
            return revert("an ESC needs two different MSCs");
        }
        if init.keys[0] == init.keys[1] {
            return revert("the two pseudonym keys must differ");
        }
        let mut mscs = Vec::with_capacity(2);
        for sid in init.sids {
            let msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
            if msc.closed {
                return revert(format!("MSC {sid} is closed"));
            }
            if msc.standing == Standing::Black {
                return revert(format!("MSC {sid} is blacklisted"));
            }
            mscs.push(msc);
        }
        let pk = pair_key(init.sids[0], init.sids[1]);
        let n = ctx.read_typed::<u64>(&pk)?.unwrap_or(0);
        if init.n != n {
            return revert(format!("ESC counter must be {n}, got {}", init.n));
        }
        let stmt = Statement::EscInit(init.clone());
        for (i, msc) in mscs.iter().enumerate() {
            if !verify_stmt(ctx, &stmt, a.nonce, &msc.participant_key, &a.sigs[i])? {
                return revert(format!("bad or missing sc-init signature of side {i}"));
            }
        }
        ctx.write_typed(&pk, &(n + 1))?;
        let scid = derive_scid(init.sids[0], init.sids[1], n);
        let esc = EscRecord {
            scid,
            sids: init.sids,
            keys: init.keys,
            uutids: [uutid(&init.keys[0]), uutid(&init.keys[1])],
            payouts: init.payouts,
            channel_count: 0,
            tx_count: 0,
            amounts: [Amount::ZERO; 2],
            energy: [Energy::ZERO; 2],
            final_amounts: [Amount::ZERO; 2],
            final_energy: [Energy::ZERO; 2],
            dispute_count: 0,
            dispute_limit: init.dispute_limit,
        };
        store(ctx, &esc_key(&scid), &esc)?;
        for mut msc in mscs {
            ctx.write_typed(&msc_esc_key(msc.sid, msc.esc_count), &scid)?;
            msc.esc_count = msc.esc_count.saturating_add(1);
            store(ctx, &msc_key(msc.sid), &msc)?;
        }
        ctx.emit(
            "cns_esc",
            vec![
                ("scid".into(), scid.to_string()),
                ("uutid0".into(), esc.uutids[0].to_string()),
                ("uutid1".into(), esc.uutids[1].to_string()),
            ],
        )?;
        Ok(borsh::to_vec(&scid).unwrap_or_default())
    }

    /// `open` (seed Fig 6 steps 1–2, Fig 13).
    fn channel_open(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelOpenArgs = decode_args(args)?;
        let cid = a.open.state.cid;
        if ctx.read(&channel_key(&cid))?.is_some() {
            return revert("channel already opened");
        }
        let mut esc: EscRecord = load(ctx, &esc_key(&a.scid), "ESC")?;
        if esc.dispute_count > esc.dispute_limit {
            return revert(format!(
                "ESC has {} disputes, more than its limit {}",
                esc.dispute_count, esc.dispute_limit
            ));
        }
        for sid in esc.sids {
            let msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
            if msc.standing == Standing::Black {
                return revert(format!("MSC {sid} is blacklisted"));
            }
        }
        let index = esc.channel_count;
        if cid != derive_cid(&a.scid, index) {
            return revert(format!("channel id must be derived from index {index}"));
        }
        let s = &a.open.state;
        let t_delta_ms = s.t_delta_ms;
        if !(MIN_T_DELTA_MS..=MAX_T_DELTA_MS).contains(&t_delta_ms) {
            return revert(format!("t_delta must be between {MIN_T_DELTA_MS} ms and 30 days, got {t_delta_ms}"));
        }
        if s.counter != 0
            || s.is_final
            || s.last_trade.is_some()
            || s.fold.is_some()
            || s.energy != [Energy::ZERO; 2]
            || s.resize != Resize::default()
            || s.prev_counter != 0
        {
            return revert("the open state must have counter 0, no trade, no energy and no resize");
        }
        if add(s.balances[0], s.balances[1])?.is_zero() {
            return revert("a channel needs a positive capacity");
        }
        let mut ch = Channel {
            cid,
            scid: a.scid,
            index,
            status: ChannelStatus::Funding,
            t_delta_ms,
            capacity: s.balances,
            funded: [None, None],
            latest: a.open.clone(),
            dispute: None,
            t_end: 0,
            topped_up: [Amount::ZERO; 2],
            topups: [0; 2],
            withdrawn_paid: [Amount::ZERO; 2],
        };
        check_state(ctx, &ch, &esc, &a.open)?;
        for i in 0..2 {
            if ch.capacity[i].is_zero() {
                ch.funded[i] = Some(FundKind::Deposit);
            }
        }
        esc.channel_count = esc.channel_count.saturating_add(1);
        push_tx(ctx, &mut esc, a.open.hstate())?;
        store(ctx, &esc_key(&a.scid), &esc)?;
        store(ctx, &channel_key(&cid), &ch)?;
        ctx.emit(
            "cns_channel_opening",
            vec![
                ("cid".into(), cid.to_string()),
                ("scid".into(), a.scid.to_string()),
                ("t_delta".into(), t_delta_ms.to_string()),
                ("hstate".into(), a.open.hstate().to_string()),
            ],
        )?;
        Ok(borsh::to_vec(&cid).unwrap_or_default())
    }

    /// `funding` (seed Fig 6 steps 2–4).
    fn channel_fund(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelFundArgs = decode_args(args)?;
        let i = side_of(a.side)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.cid), "channel")?;
        if ch.status != ChannelStatus::Funding {
            return revert("channel is not awaiting funding");
        }
        if ch.funded[i].is_some() {
            return revert(format!("side {i} already funded"));
        }
        let mut esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        if ctx.caller() != esc.payouts[i] {
            return revert(format!("only side {i} may fund its side"));
        }
        let amount = ch.capacity[i];
        match a.funding {
            Funding::Deposit => {
                if ctx.value() != amount {
                    return revert(format!("deposit must be exactly {amount}, got {}", ctx.value()));
                }
                ch.funded[i] = Some(FundKind::Deposit);
            }
            Funding::CreditNote { nonce, merchant_sig } => {
                if !ctx.value().is_zero() {
                    return revert("credit-note funding takes no value");
                }
                let sid = esc.sids[i];
                let mut msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
                if msc.closed || msc.standing == Standing::Black {
                    return revert(format!("MSC {sid} may not draw credit"));
                }
                let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
                let note = Statement::CreditNote(CreditNote { sid, cid: ch.cid, amount });
                if !verify_stmt(ctx, &note, nonce, &m.key, &merchant_sig)? {
                    return revert("bad merchant signature on the credit note");
                }
                let used = i128_of(msc.ledger.locked) + msc.ledger.exposure().max(0);
                let available = (i128_of(msc.credit_limit) - used).max(0);
                if i128_of(amount) > available {
                    return revert(format!(
                        "credit note of {amount} exceeds the approved credit available, {available}"
                    ));
                }
                // Coin the merchant owes participants is not its to lend
                // (it backs their claims): a note draws on `free − owed`.
                let lendable = m.free.saturating_sub(m.owed);
                if amount > lendable {
                    return revert(format!(
                        "merchant pool cannot back the note: {lendable} free beyond the {} it owes",
                        m.owed
                    ));
                }
                m.free = sub(m.free, amount, "merchant pool cannot back the note")?;
                m.reserved = add(m.reserved, amount)?;
                msc.ledger.issued = add(msc.ledger.issued, amount)?;
                msc.ledger.locked = add(msc.ledger.locked, amount)?;
                store(ctx, &merchant_key(&msc.merchant), &m)?;
                store(ctx, &msc_key(sid), &msc)?;
                ch.funded[i] = Some(FundKind::Credit);
            }
        }
        let kind = if ch.funded[i] == Some(FundKind::Credit) { "credit" } else { "deposit" };
        ctx.emit(
            "cns_channel_funded",
            vec![("cid".into(), ch.cid.to_string()), ("side".into(), i.to_string()), ("kind".into(), kind.into())],
        )?;
        if ch.funded.iter().all(Option::is_some) {
            ch.status = ChannelStatus::Open;
            for k in 0..2 {
                esc.amounts[k] = add(esc.amounts[k], ch.capacity[k])?;
            }
            store(ctx, &esc_key(&ch.scid), &esc)?;
            ctx.emit("cns_channel_open", vec![("cid".into(), ch.cid.to_string())])?;
        }
        store(ctx, &channel_key(&ch.cid), &ch)?;
        Ok(vec![])
    }

    /// `open-abort` (seed Fig 6): refunds what was funded.
    fn channel_abort(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: CidArgs = decode_args(args)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.cid), "channel")?;
        if ch.status != ChannelStatus::Funding {
            return revert("only a channel still funding can be aborted");
        }
        let esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        if !esc.payouts.contains(&ctx.caller()) {
            return revert("not a party to this channel");
        }
        for i in 0..2 {
            let f = ch.capacity[i];
            match ch.funded[i] {
                Some(FundKind::Deposit) => ctx.pay(&esc.payouts[i], f)?,
                Some(FundKind::Credit) => {
                    let mut msc: MscRecord = load(ctx, &msc_key(esc.sids[i]), "MSC")?;
                    let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
                    m.reserved = sub(m.reserved, f, "merchant reserve")?;
                    m.free = add(m.free, f)?;
                    msc.ledger.locked = sub(msc.ledger.locked, f, "locked notes")?;
                    msc.ledger.returned = add(msc.ledger.returned, f)?;
                    store(ctx, &merchant_key(&msc.merchant), &m)?;
                    store(ctx, &msc_key(msc.sid), &msc)?;
                }
                None => {}
            }
        }
        ch.status = ChannelStatus::Closed;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        ctx.emit("cns_channel_aborted", vec![("cid".into(), ch.cid.to_string())])?;
        Ok(vec![])
    }

    /// Top-up, step 1: side `side` adds coin to an open channel, by deposit
    /// or by a merchant-signed [`CreditTopUp`] note within its approved
    /// credit. It stays unallocated (refunded at close) until a co-signed
    /// state allocates it to the side's balance (`resize.topped_up`): the
    /// coin is on chain before the peer signs for it, so no co-signed state
    /// can ever name coin that is not there.
    fn channel_topup(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelTopUpArgs = decode_args(args)?;
        let i = side_of(a.side)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.cid), "channel")?;
        require_open(&ch)?;
        let esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        if ctx.caller() != esc.payouts[i] {
            return revert(format!("only side {i} may top up its side"));
        }
        if a.amount.is_zero() {
            return revert("a top-up needs a positive amount");
        }
        match (a.funding, ch.funded[i]) {
            (Funding::Deposit, Some(FundKind::Deposit)) => {
                if ctx.value() != a.amount {
                    return revert(format!("deposit must be exactly {}, got {}", a.amount, ctx.value()));
                }
            }
            (Funding::CreditNote { nonce, merchant_sig }, Some(FundKind::Credit)) => {
                if !ctx.value().is_zero() {
                    return revert("credit-note funding takes no value");
                }
                let sid = esc.sids[i];
                let mut msc: MscRecord = load(ctx, &msc_key(sid), "MSC")?;
                if msc.closed || msc.standing == Standing::Black {
                    return revert(format!("MSC {sid} may not draw credit"));
                }
                let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
                let note =
                    Statement::CreditTopUp(CreditTopUp { sid, cid: ch.cid, index: ch.topups[i], amount: a.amount });
                if !verify_stmt(ctx, &note, nonce, &m.key, &merchant_sig)? {
                    return revert("bad merchant signature on the top-up note");
                }
                let used = i128_of(msc.ledger.locked) + msc.ledger.exposure().max(0);
                let available = (i128_of(msc.credit_limit) - used).max(0);
                if i128_of(a.amount) > available {
                    return revert(format!(
                        "top-up note of {} exceeds the approved credit available, {available}",
                        a.amount
                    ));
                }
                let lendable = m.free.saturating_sub(m.owed);
                if a.amount > lendable {
                    return revert(format!(
                        "merchant pool cannot back the note: {lendable} free beyond the {} it owes",
                        m.owed
                    ));
                }
                m.free = sub(m.free, a.amount, "merchant pool")?;
                m.reserved = add(m.reserved, a.amount)?;
                msc.ledger.issued = add(msc.ledger.issued, a.amount)?;
                msc.ledger.locked = add(msc.ledger.locked, a.amount)?;
                store(ctx, &merchant_key(&msc.merchant), &m)?;
                store(ctx, &msc_key(sid), &msc)?;
            }
            _ => return revert(format!("side {i} tops up the way it funded (deposit or credit note)")),
        }
        ch.topped_up[i] = add(ch.topped_up[i], a.amount)?;
        ch.topups[i] = ch.topups[i].saturating_add(1);
        store(ctx, &channel_key(&ch.cid), &ch)?;
        ctx.emit(
            "cns_channel_topped_up",
            vec![
                ("cid".into(), ch.cid.to_string()),
                ("side".into(), i.to_string()),
                ("total".into(), ch.topped_up[i].to_string()),
            ],
        )?;
        Ok(vec![])
    }

    /// Partial withdraw: registers a newer co-signed state whose
    /// `resize.withdrawn` grew and pays each side what it newly withdrew,
    /// while the channel stays open. Only on an open channel (not during a
    /// dispute, where the dispute decides the state), anyone may send it.
    ///
    /// The state may also be the registered one itself (same counter, same
    /// `hstate`): a peer that registered the co-signed withdrawal state
    /// first with `channel_update` (which pays nothing) must not leave the
    /// withdrawal unpayable. Then what that registered state withdraws
    /// beyond `withdrawn_paid` is paid and nothing is re-registered; a
    /// second call finds nothing new and reverts, so nothing is paid twice
    /// or beyond what the registered state says.
    fn channel_withdraw(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelStateArgs = decode_args(args)?;
        let registered = {
            let ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
            ch.latest.state.counter == a.state.state.counter && ch.latest.hstate() == a.state.hstate()
        };
        let (state, mut ch, mut esc) = if registered {
            let ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
            require_open(&ch)?;
            let esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
            (ch.latest.clone(), ch, esc)
        } else {
            newer_open_state(ctx, args)?
        };
        let due = withdraw_amounts(&ch, &state.state)?;
        if due.iter().all(|d| d.is_zero()) {
            return revert("the state withdraws nothing new: use channel_update");
        }
        let counter = state.state.counter;
        if !registered {
            register_state(ctx, &mut esc, &mut ch, state)?;
        }
        for (i, d) in due.iter().enumerate() {
            if !d.is_zero() {
                // Recorded in `final_amounts` at close, with the balance
                // (the same record whichever path paid it).
                ctx.pay(&esc.payouts[i], *d)?;
            }
        }
        for (paid, d) in ch.withdrawn_paid.iter_mut().zip(due) {
            *paid = add(*paid, d)?;
        }
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        ctx.emit(
            "cns_channel_withdrawn",
            vec![
                ("cid".into(), ch.cid.to_string()),
                ("counter".into(), counter.to_string()),
                ("withdrawn0".into(), due[0].to_string()),
                ("withdrawn1".into(), due[1].to_string()),
            ],
        )?;
        Ok(vec![])
    }

    /// `update` (seed Fig 7, Fig 14): registers a newer co-signed state.
    fn channel_update(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let (state, mut ch, mut esc) = newer_open_state(ctx, args)?;
        let counter = state.state.counter;
        register_state(ctx, &mut esc, &mut ch, state)?;
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        ctx.emit(
            "cns_channel_updated",
            vec![("cid".into(), ch.cid.to_string()), ("counter".into(), counter.to_string())],
        )?;
        Ok(vec![])
    }

    /// `finalise` (seed Fig 9, Fig 16): cooperative close with a co-signed
    /// final state, also allowed during a dispute.
    fn channel_close(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelStateArgs = decode_args(args)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
        match ch.status {
            ChannelStatus::Closed => return revert("channel already closed"),
            ChannelStatus::Funding => return revert("channel is not open: funding incomplete"),
            ChannelStatus::Open | ChannelStatus::Disputed => {}
        }
        if !a.state.state.is_final {
            return revert("cooperative close needs a state both signed as final");
        }
        require_newer(&ch, &a.state)?;
        let mut esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        check_state(ctx, &ch, &esc, &a.state)?;
        if let Some(d) = ch.dispute.take() {
            let rec = set_dispute_outcome(ctx, &ch.scid, d, DisputeOutcome::ClosedCooperatively)?;
            // `ch.latest` is still the disputed state. The raiser co-signed
            // this final state: unless it is the close of the disputed state
            // itself, the raiser signed a distribution past the one it
            // disputed with (see `close_shows_stale_dispute`).
            let raiser = usize::from(rec.raised_by.min(1));
            if close_shows_stale_dispute(&ch.latest.state, &a.state.state) {
                record_fault(ctx, esc.sids[raiser])?;
            }
        }
        register_state(ctx, &mut esc, &mut ch, a.state)?;
        finalise(ctx, &mut esc, &mut ch)?;
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        Ok(vec![])
    }

    /// `dispute` (seed Fig 8 step 1, Fig 15): starts the dispute timer
    /// `t_end = t_start + t_Δ` with the raiser's latest co-signed state.
    fn channel_dispute(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelDisputeArgs = decode_args(args)?;
        let i = side_of(a.side)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
        if ch.status == ChannelStatus::Disputed {
            return revert("a dispute is already raised");
        }
        require_open(&ch)?;
        let mut esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        if ctx.caller() != esc.payouts[i] {
            return revert(format!("only side {i} may raise a dispute as side {i}"));
        }
        let same = a.state.state.counter == ch.latest.state.counter && a.state.hstate() == ch.latest.hstate();
        if !same {
            require_newer(&ch, &a.state)?;
            check_state(ctx, &ch, &esc, &a.state)?;
            register_state(ctx, &mut esc, &mut ch, a.state)?;
        }
        let now = ctx.timestamp();
        let t_end = now.saturating_add(ch.t_delta_ms);
        ch.status = ChannelStatus::Disputed;
        ch.t_end = t_end;
        let d = esc.dispute_count;
        ch.dispute = Some(d);
        let counter = ch.latest.state.counter;
        let rec = DisputeRecord {
            cid: ch.cid,
            t_start: now,
            t_end,
            counter,
            raised_by: i as u8,
            outcome: DisputeOutcome::Open,
        };
        store(ctx, &esc_dispute_key(&ch.scid, d), &rec)?;
        esc.dispute_count = d.checked_add(1).ok_or_else(|| err("dispute count overflow"))?;
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        ctx.emit(
            "cns_dispute_raised",
            vec![
                ("cid".into(), ch.cid.to_string()),
                ("counter".into(), counter.to_string()),
                ("by".into(), i.to_string()),
                ("t_end".into(), t_end.to_string()),
            ],
        )?;
        Ok(vec![])
    }

    /// `dispute-resolved` (seed Fig 8 step 3): a newer co-signed state before
    /// `t_end` overturns the dispute; the channel continues (or closes, if the
    /// newer state is final).
    fn channel_resolve(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: ChannelStateArgs = decode_args(args)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.state.state.cid), "channel")?;
        if ch.status != ChannelStatus::Disputed {
            return revert("no dispute is raised on this channel");
        }
        if ctx.timestamp() >= ch.t_end {
            return revert(format!("dispute window ended at {}", ch.t_end));
        }
        require_newer(&ch, &a.state)?;
        let mut esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        check_state(ctx, &ch, &esc, &a.state)?;
        let counter = a.state.state.counter;
        let is_final = a.state.state.is_final;
        let Some(d) = ch.dispute.take() else {
            return revert("dispute record missing");
        };
        let rec = set_dispute_outcome(ctx, &ch.scid, d, DisputeOutcome::Resolved { counter })?;
        let raiser = usize::from(rec.raised_by.min(1));
        // `ch.latest` is still the disputed state. See `raiser_may_lack`.
        // A top-up allocation or withdrawal is proposed by the side whose
        // resize grew; built on the disputed state (`prev_counter`), the
        // raiser may lack it co-signed just the same.
        let (was, now) = (&ch.latest.state.resize, &a.state.state.resize);
        let resized_by = |k: usize| was.topped_up[k] != now.topped_up[k] || was.withdrawn[k] != now.withdrawn[k];
        let own_resize = a.state.state.last_trade.is_none()
            && !a.state.state.is_final
            && resized_by(raiser)
            && !resized_by(1 - raiser)
            && a.state.state.prev_counter == rec.counter;
        let own_unacknowledged = own_resize || raiser_may_lack(&ch.latest.state, &a.state.state, raiser);
        register_state(ctx, &mut esc, &mut ch, a.state)?;
        if !own_unacknowledged {
            record_fault(ctx, esc.sids[raiser])?;
        }
        ctx.emit(
            "cns_dispute_resolved",
            vec![("cid".into(), ch.cid.to_string()), ("counter".into(), counter.to_string())],
        )?;
        if is_final {
            finalise(ctx, &mut esc, &mut ch)?;
        } else {
            ch.status = ChannelStatus::Open;
        }
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        Ok(vec![])
    }

    /// `dispute-fail` (seed Fig 8 step 4): the timer elapsed, close with the
    /// disputed state. Anyone may call it.
    fn channel_settle(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: CidArgs = decode_args(args)?;
        let mut ch: Channel = load(ctx, &channel_key(&a.cid), "channel")?;
        if ch.status != ChannelStatus::Disputed {
            return revert("no dispute is raised on this channel");
        }
        if ctx.timestamp() < ch.t_end {
            return revert(format!("dispute timer runs until {}, now {}", ch.t_end, ctx.timestamp()));
        }
        let mut esc: EscRecord = load(ctx, &esc_key(&ch.scid), "ESC")?;
        let Some(d) = ch.dispute.take() else {
            return revert("dispute record missing");
        };
        // No fault: a timed-out dispute shows nothing newer exists (or
        // that its holder stayed silent), not that anyone cheated.
        set_dispute_outcome(ctx, &ch.scid, d, DisputeOutcome::TimedOut)?;
        finalise(ctx, &mut esc, &mut ch)?;
        store(ctx, &esc_key(&ch.scid), &esc)?;
        store(ctx, &channel_key(&ch.cid), &ch)?;
        Ok(vec![])
    }

    /// The merchant signs a closed channel's recalculated amount into the MSC
    /// (seed §4 step 5, Fig 16).
    fn msc_sign_debit(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: SignDebitArgs = decode_args(args)?;
        let mut msc: MscRecord = load(ctx, &msc_key(a.sid), "MSC")?;
        if ctx.caller() != msc.merchant {
            return revert("only the MSC's merchant signs its debits");
        }
        let pkey = msc_pending_key(a.sid, &a.cid);
        let rec = match ctx.read_typed::<(u64, DebitRecord)>(&pkey)? {
            Some((epoch, rec)) if epoch == msc.pending_epoch => rec,
            _ => return revert("no pending settlement for this channel"),
        };
        let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
        if !verify_stmt(ctx, &Statement::Debit(rec.clone()), a.nonce, &m.key, &a.sig)? {
            return revert("bad merchant signature on the debit");
        }
        let owed_before = owed_of(&msc);
        ctx.delete(&pkey)?;
        msc.pending_count = msc.pending_count.saturating_sub(1);
        if msc.pending_count == 0 {
            msc.pending_since = 0;
        }
        let l = &mut msc.ledger;
        l.pending_debits = sub(l.pending_debits, rec.debit, "pending debits")?;
        l.pending_credits = sub(l.pending_credits, rec.credit, "pending credits")?;
        l.debits = add(l.debits, rec.debit)?;
        l.credits = add(l.credits, rec.credit)?;
        // A signed debit may now net this MSC's billed credit.
        adjust_owed(&mut m, owed_before, owed_of(&msc))?;
        store(ctx, &merchant_key(&msc.merchant), &m)?;
        ctx.emit(
            "cns_debit_signed",
            vec![
                ("sid".into(), a.sid.to_string()),
                ("cid".into(), a.cid.to_string()),
                ("debit".into(), rec.debit.to_string()),
                ("credit".into(), rec.credit.to_string()),
            ],
        )?;
        ctx.write_typed(&msc_signed_key(a.sid, msc.signed_count), &(rec, a.sig))?;
        msc.signed_count = msc.signed_count.saturating_add(1);
        store(ctx, &msc_key(a.sid), &msc)?;
        Ok(vec![])
    }

    /// Direct payment of billed debt (seed §5.1.4).
    fn bill_pay(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: SidArgs = decode_args(args)?;
        let mut msc: MscRecord = load(ctx, &msc_key(a.sid), "MSC")?;
        let due = msc.ledger.outstanding_net();
        let v = ctx.value();
        if due <= 0 {
            return revert("nothing is outstanding");
        }
        if v.is_zero() || i128_of(v) > due {
            return revert(format!("payment must be between 1 and {due}"));
        }
        let owed_before = owed_of(&msc);
        msc.ledger.paid = add(msc.ledger.paid, v)?;
        let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
        m.free = add(m.free, v)?;
        adjust_owed(&mut m, owed_before, owed_of(&msc))?;
        store(ctx, &merchant_key(&msc.merchant), &m)?;
        store(ctx, &msc_key(a.sid), &msc)?;
        ctx.emit("cns_bill_paid", vec![("sid".into(), a.sid.to_string()), ("amount".into(), v.to_string())])?;
        Ok(vec![])
    }

    /// End-of-period settlement by the merchant (seed §5.1.4): debt from the
    /// collateral once its time-lock allows, or net credit paid out.
    fn bill_settle(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: SidArgs = decode_args(args)?;
        let mut msc: MscRecord = load(ctx, &msc_key(a.sid), "MSC")?;
        if ctx.caller() != msc.merchant {
            return revert("only the MSC's merchant settles its bills");
        }
        let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
        let now = ctx.timestamp();
        let period_end = msc.billing_period_start.saturating_add(m.billing_period_ms);
        if now < period_end {
            return revert(format!("billing period runs until {period_end}"));
        }
        let owed_before = owed_of(&msc);
        let due = msc.ledger.outstanding_net();
        // Credits the contract booked for the participant and the merchant
        // has not signed yet still offset its debt: only the net is taken
        // from the collateral (issue: signing only the debits let the
        // merchant seize what the participant does not owe).
        let net_due = due - i128_of(msc.ledger.pending_credits);
        let (mut seized, mut credited) = (Amount::ZERO, Amount::ZERO);
        if net_due > 0 {
            if now < msc.collateral_unlock_at {
                return revert(format!("collateral time-locked until {}", msc.collateral_unlock_at));
            }
            let due_a = Amount(net_due.unsigned_abs());
            seized = due_a.min(msc.collateral);
            msc.collateral = sub(msc.collateral, seized, "collateral")?;
            msc.ledger.seized = add(msc.ledger.seized, seized)?;
            m.free = add(m.free, seized)?;
            if seized < due_a {
                // Default beyond the collateral: the participant is out.
                msc.standing = Standing::Black;
            }
        } else if due < 0 {
            credited = Amount(due.unsigned_abs());
            m.free = sub(m.free, credited, "merchant pool cannot pay the credit")?;
            msc.ledger.credit_paid = add(msc.ledger.credit_paid, credited)?;
            ctx.pay(&msc.payout, credited)?;
        }
        msc.billing_period_start = now;
        adjust_owed(&mut m, owed_before, owed_of(&msc))?;
        if !credited.is_zero() && m.free < m.owed {
            return revert(format!(
                "paying this credit would leave the pool's free {} below the {} owed to participants",
                m.free, m.owed
            ));
        }
        store(ctx, &merchant_key(&msc.merchant), &m)?;
        store(ctx, &msc_key(a.sid), &msc)?;
        ctx.emit(
            "cns_billed",
            vec![
                ("sid".into(), a.sid.to_string()),
                ("seized".into(), seized.to_string()),
                ("credited".into(), credited.to_string()),
            ],
        )?;
        Ok(vec![])
    }

    /// The participant's remedy against a merchant who never reimburses (seed
    /// §4 step 5, Fig 16): once the merchant has let a whole billing period
    /// pass unbilled (`now ≥ billing_period_start + 2·period`) and the
    /// collateral's time-lock has run, the participant books the pending
    /// settlements itself (the contract recalculated them at close; the
    /// merchant's signature only attests that arithmetic) and is paid any
    /// net credit from the merchant's free pool. Debt stays billable by the
    /// merchant as before.
    fn msc_claim(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: SidArgs = decode_args(args)?;
        let mut msc: MscRecord = load(ctx, &msc_key(a.sid), "MSC")?;
        if ctx.caller() != msc.payout {
            return revert("only the MSC's participant claims");
        }
        if msc.closed {
            return revert("MSC already closed");
        }
        let mut m: Merchant = load(ctx, &merchant_key(&msc.merchant), "merchant")?;
        let now = ctx.timestamp();
        // Counted from the oldest settlement still pending as well as from
        // the last billing: an empty `bill_settle` each period must not
        // keep a pending credit from ever becoming claimable.
        let since = if msc.pending_count > 0 {
            msc.billing_period_start.min(msc.pending_since)
        } else {
            msc.billing_period_start
        };
        let lapse = since.saturating_add(m.billing_period_ms.saturating_mul(2));
        if now < lapse {
            return revert(format!("the merchant may still bill until {lapse}"));
        }
        if now < msc.collateral_unlock_at {
            return revert(format!("collateral time-locked until {}", msc.collateral_unlock_at));
        }
        let owed_before = owed_of(&msc);
        // Books every pending settlement at once from the running totals
        // (O(1) however many are pending); bumping the epoch retires the
        // keyed entries so the merchant cannot sign them a second time.
        {
            let l = &mut msc.ledger;
            l.debits = add(l.debits, l.pending_debits)?;
            l.credits = add(l.credits, l.pending_credits)?;
            l.pending_debits = Amount::ZERO;
            l.pending_credits = Amount::ZERO;
        }
        if msc.pending_count > 0 {
            msc.pending_count = 0;
            msc.pending_since = 0;
            msc.pending_epoch = msc.pending_epoch.saturating_add(1);
        }
        let due = msc.ledger.outstanding_net();
        let mut credited = Amount::ZERO;
        if due < 0 {
            credited = Amount(due.unsigned_abs()).min(m.free);
            m.free = sub(m.free, credited, "merchant pool")?;
            msc.ledger.credit_paid = add(msc.ledger.credit_paid, credited)?;
            ctx.pay(&msc.payout, credited)?;
        }
        adjust_owed(&mut m, owed_before, owed_of(&msc))?;
        store(ctx, &merchant_key(&msc.merchant), &m)?;
        store(ctx, &msc_key(a.sid), &msc)?;
        ctx.emit("cns_claimed", vec![("sid".into(), a.sid.to_string()), ("credited".into(), credited.to_string())])?;
        Ok(vec![])
    }

    /// Ends the participant's use of the CNS and returns its collateral once
    /// nothing is owed, locked or pending.
    fn msc_close(&self, ctx: &mut CallContext<'_, '_>, args: &[u8]) -> R<Vec<u8>> {
        let a: SidArgs = decode_args(args)?;
        let mut msc: MscRecord = load(ctx, &msc_key(a.sid), "MSC")?;
        if ctx.caller() != msc.payout {
            return revert("only the participant closes its MSC");
        }
        if msc.closed {
            return revert("MSC already closed");
        }
        if !msc.ledger.locked.is_zero() || msc.ledger.exposure() != 0 || msc.pending_count > 0 {
            return revert("credit still locked, pending or outstanding");
        }
        let c = msc.collateral;
        msc.collateral = Amount::ZERO;
        msc.closed = true;
        ctx.pay(&msc.payout, c)?;
        store(ctx, &msc_key(a.sid), &msc)?;
        Ok(vec![])
    }
}

impl NativeContract for CnsContract {
    fn name(&self) -> &'static str {
        "cns"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> R<Vec<u8>> {
        let takes_value = matches!(
            method,
            "merchant_register" | "pool_deposit" | "msc_init" | "channel_fund" | "channel_topup" | "bill_pay"
        );
        if !takes_value && !ctx.value().is_zero() {
            return revert(format!("{method} takes no native value"));
        }
        match method {
            "merchant_register" => self.merchant_register(ctx, args),
            "pool_deposit" | "pool_withdraw" => self.pool(ctx, method, args),
            "msc_init" => self.msc_init(ctx, args),
            "esc_open" => self.esc_open(ctx, args),
            "channel_open" => self.channel_open(ctx, args),
            "channel_fund" => self.channel_fund(ctx, args),
            "channel_abort" => self.channel_abort(ctx, args),
            "channel_update" => self.channel_update(ctx, args),
            "channel_topup" => self.channel_topup(ctx, args),
            "channel_withdraw" => self.channel_withdraw(ctx, args),
            "channel_close" => self.channel_close(ctx, args),
            "channel_dispute" => self.channel_dispute(ctx, args),
            "channel_resolve" => self.channel_resolve(ctx, args),
            "channel_settle" => self.channel_settle(ctx, args),
            "msc_sign_debit" => self.msc_sign_debit(ctx, args),
            "bill_pay" => self.bill_pay(ctx, args),
            "bill_settle" => self.bill_settle(ctx, args),
            "msc_close" => self.msc_close(ctx, args),
            "msc_claim" => self.msc_claim(ctx, args),
            other => revert(format!("cns has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> R<serde_json::Value> {
        fn get<T: borsh::BorshDeserialize + serde::Serialize>(
            ctx: &ViewContext<'_>,
            key: &[u8],
            what: &str,
        ) -> R<serde_json::Value> {
            match ctx.read_typed::<T>(key)? {
                Some(v) => serde_json::to_value(v).map_err(|e| err(e.to_string())),
                None => revert(format!("no such {what}")),
            }
        }
        match method {
            "merchant" => {
                let a: Address = decode_args(args)?;
                get::<Merchant>(ctx, &merchant_key(&a), "merchant")
            }
            "msc" => {
                let a: SidArgs = decode_args(args)?;
                match gather::msc(|k| Ok::<_, ContractError>(ctx.read(k)), err, a.sid)? {
                    Some(v) => serde_json::to_value(v).map_err(|e| err(e.to_string())),
                    None => revert("no such MSC"),
                }
            }
            "esc" => {
                let a: EscArgs = decode_args(args)?;
                match gather::esc(|k| Ok::<_, ContractError>(ctx.read(k)), err, &a.scid)? {
                    Some(v) => serde_json::to_value(v).map_err(|e| err(e.to_string())),
                    None => revert("no such ESC"),
                }
            }
            "channel" => {
                let a: CidArgs = decode_args(args)?;
                get::<Channel>(ctx, &channel_key(&a.cid), "channel")
            }
            "now" => Ok(json!({ "timestamp": ctx.timestamp() })),
            other => revert(format!("cns has no view {other}")),
        }
    }
}

/// Typed read helpers for drivers and tests (views return JSON; these
/// return the records).
pub mod read {
    use super::*;
    use gridledger_ledger::{ContractError, StateRead};

    fn raw<T: borsh::BorshDeserialize>(state: &dyn StateRead, key: &[u8]) -> Result<Option<T>, ContractError> {
        let ctx = ViewContext::new(
            state,
            crate::CNS_ID,
            gridledger_ledger::BlockEnv {
                chain_id: 0,
                height: 0,
                timestamp: 0,
                proposer: Address::ZERO,
                parent: gridledger_core::Hash32::ZERO,
            },
        );
        ctx.read_typed(key)
    }
    fn bytes(state: &dyn StateRead, key: &[u8]) -> Result<Option<Vec<u8>>, ContractError> {
        let ctx = ViewContext::new(
            state,
            crate::CNS_ID,
            gridledger_ledger::BlockEnv {
                chain_id: 0,
                height: 0,
                timestamp: 0,
                proposer: Address::ZERO,
                parent: Hash32::ZERO,
            },
        );
        Ok(ctx.read(key))
    }
    pub fn msc(state: &dyn StateRead, sid: u64) -> Result<Option<Msc>, ContractError> {
        gather::msc(|k| bytes(state, k), err, sid)
    }
    pub fn esc(state: &dyn StateRead, scid: &Hash32) -> Result<Option<Esc>, ContractError> {
        gather::esc(|k| bytes(state, k), err, scid)
    }
    pub fn channel(state: &dyn StateRead, cid: &Hash32) -> Result<Option<Channel>, ContractError> {
        raw(state, &channel_key(cid))
    }
    pub fn merchant(state: &dyn StateRead, a: &Address) -> Result<Option<Merchant>, ContractError> {
        raw(state, &merchant_key(a))
    }
    /// Next `n` for an ESC between two MSCs.
    pub fn esc_counter(state: &dyn StateRead, sids: [u64; 2]) -> u64 {
        raw::<u64>(state, &pair_key(sids[0], sids[1])).ok().flatten().unwrap_or(0)
    }
}

/// The same records read through any [`gridledger_ledger::ChainClient`]
/// (a dev chain, a PBFT network, a node over RPC): what applications use.
pub mod client {
    use super::*;
    use gridledger_ledger::{ChainClient, ClientError};

    fn raw<C: ChainClient + ?Sized, T: borsh::BorshDeserialize>(c: &C, key: &[u8]) -> Result<Option<T>, ClientError> {
        match c.contract_state(crate::CNS_ID, key)? {
            None => Ok(None),
            Some(b) => borsh::from_slice(&b).map(Some).map_err(|e| ClientError::Chain(format!("CNS record: {e}"))),
        }
    }
    pub fn msc<C: ChainClient + ?Sized>(c: &C, sid: u64) -> Result<Option<Msc>, ClientError> {
        gather::msc(|k| c.contract_state(crate::CNS_ID, k), ClientError::Chain, sid)
    }
    pub fn esc<C: ChainClient + ?Sized>(c: &C, scid: &Hash32) -> Result<Option<Esc>, ClientError> {
        gather::esc(|k| c.contract_state(crate::CNS_ID, k), ClientError::Chain, scid)
    }
    pub fn channel<C: ChainClient + ?Sized>(c: &C, cid: &Hash32) -> Result<Option<Channel>, ClientError> {
        raw(c, &channel_key(cid))
    }
    pub fn merchant<C: ChainClient + ?Sized>(c: &C, a: &Address) -> Result<Option<Merchant>, ClientError> {
        raw(c, &merchant_key(a))
    }
    pub fn esc_counter<C: ChainClient + ?Sized>(c: &C, sids: [u64; 2]) -> Result<u64, ClientError> {
        Ok(raw::<C, u64>(c, &pair_key(sids[0], sids[1]))?.unwrap_or(0))
    }
}

/// Assembles the read views [`Msc`] and [`Esc`] from the stored record and
/// its keyed entries, through any raw key reader (contract state, a chain
/// client, RPC). Reads grow with history; on-chain calls never do this.
pub mod gather {
    use super::*;

    fn get<T: borsh::BorshDeserialize, E>(
        read: &mut impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, E>,
        bad: fn(String) -> E,
        key: &[u8],
    ) -> Result<Option<T>, E> {
        match read(key)? {
            None => Ok(None),
            Some(b) => borsh::from_slice(&b).map(Some).map_err(|e| bad(format!("CNS record: {e}"))),
        }
    }

    /// The ESC `scid` with its `𝕋` and `𝔻`.
    pub fn esc<E>(
        mut read: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, E>,
        bad: fn(String) -> E,
        scid: &Hash32,
    ) -> Result<Option<Esc>, E> {
        let Some(rec) = get::<EscRecord, E>(&mut read, bad, &esc_key(scid))? else {
            return Ok(None);
        };
        let mut txs = Vec::new();
        for i in 0..rec.tx_count {
            if let Some(h) = get::<Hash32, E>(&mut read, bad, &esc_tx_key(scid, i))? {
                txs.push(h);
            }
        }
        let mut disputes = Vec::new();
        for d in 0..rec.dispute_count {
            if let Some(r) = get::<DisputeRecord, E>(&mut read, bad, &esc_dispute_key(scid, d))? {
                disputes.push(r);
            }
        }
        Ok(Some(rec.view(txs, disputes)))
    }

    /// The MSC `sid` with its ESCs, live pending and signed settlements.
    pub fn msc<E>(
        mut read: impl FnMut(&[u8]) -> Result<Option<Vec<u8>>, E>,
        bad: fn(String) -> E,
        sid: u64,
    ) -> Result<Option<Msc>, E> {
        let Some(rec) = get::<MscRecord, E>(&mut read, bad, &msc_key(sid))? else {
            return Ok(None);
        };
        let mut escs = Vec::new();
        for i in 0..rec.esc_count {
            if let Some(h) = get::<Hash32, E>(&mut read, bad, &msc_esc_key(sid, i))? {
                escs.push(h);
            }
        }
        let mut pending = Vec::new();
        if rec.pending_count > 0 {
            for q in 0..rec.pending_seq {
                let Some(cid) = get::<Hash32, E>(&mut read, bad, &msc_pending_index_key(sid, q))? else {
                    continue;
                };
                if let Some((epoch, r)) = get::<(u64, DebitRecord), E>(&mut read, bad, &msc_pending_key(sid, &cid))? {
                    if epoch == rec.pending_epoch {
                        pending.push(r);
                    }
                }
            }
        }
        let mut signed = Vec::new();
        for i in 0..rec.signed_count {
            if let Some(e) = get::<(DebitRecord, Signature), E>(&mut read, bad, &msc_signed_key(sid, i))? {
                signed.push(e);
            }
        }
        Ok(Some(rec.view(escs, pending, signed)))
    }
}
