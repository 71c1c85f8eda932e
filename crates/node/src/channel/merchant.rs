//! The merchant's service over a node (seed §3.3.6 Fig 3, §4 step 5,
//! §5.1.3, §5.1.4), and the participant's side of it:
//!
//! 1. the participant writes an [`Application`] (its fresh MSC pseudonym
//!    key, hashes of its supporting documents, the credit it asks for);
//! 2. the merchant [`approve`]s it: its own blacklist, the applicant's
//!    standing and dispute record read from the chain (earlier MSCs paying
//!    out to the same account or under the same key), then the desk's
//!    pluggable [`gridledger_contracts::cns::credit::RiskFunction`]; the
//!    answer is a signed approval carrying the collateral, or a typed
//!    [`CreditRefusal`];
//! 3. the participant runs [`init_msc`]: `msc-init` with the approval,
//!    depositing the collateral under its time-lock;
//! 4. each billing period the merchant runs [`bill`]: it signs the
//!    recalculated debits of closed channels into the MSCs and settles what
//!    is outstanding: nothing to do when the participant paid directly
//!    (`bill_pay`), from the collateral once its time-lock allows.
//!
//! `gridledger cns apply|approve|init|pay|bill|status` and
//! `gridledger channel prepare` are thin wrappers over these functions.

use super::chainlink::{read_msc, read_next_sid, ChainError, ChainLink};
use super::spec::SpecError;
use crate::client::RpcClient;
use gridledger_contracts::args;
use gridledger_contracts::cns::credit::{
    documents_commitment, msc_init_args, ApplicantHistory, CreditApplication, CreditRefusal, MerchantDesk, RiskFunction,
};
use gridledger_contracts::cns::{Msc, SidArgs, SignedApproval, Standing};
use gridledger_core::codec::{decode, encode, hash_parts, hash_tagged, Tag};
use gridledger_core::{Address, Amount, Hash32, KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

/// A credit application as the participant hands it to the merchant
/// (`app.json`). The documents themselves travel privately; only their
/// hashes are here, and only their combined hash is ever signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Application {
    /// The fresh MSC pseudonym key.
    pub participant: PublicKey,
    /// The account that will send `msc-init` and receive payouts.
    pub payout: Address,
    /// Real identity for the merchant's KYC and blacklist (never on chain).
    pub identity: String,
    pub documents: Vec<Hash32>,
    pub requested_credit: Amount,
}

/// Hash of one supporting document.
pub fn document_hash(bytes: &[u8]) -> Hash32 {
    hash_parts(Tag("gridledger/cns/doc/v1"), &[bytes])
}

/// The MSC pseudonym key of `account` for an application over `documents`:
/// derived from the account's secret, so the participant needs no extra key
/// file, while outsiders cannot link the pseudonym to the account.
pub fn derive_msc_key(account: &KeyPair, documents: &Hash32) -> Result<KeyPair, SpecError> {
    let seed = hash_tagged(Tag("gridledger/cns/msc-key/v1"), &(account.secret_bytes().to_vec(), *documents));
    KeyPair::from_secret_bytes(seed.0).map_err(|e| SpecError::Format(e.to_string()))
}

impl Application {
    /// A participant's application; its MSC key is [`derive_msc_key`].
    pub fn new(
        account: &KeyPair,
        identity: String,
        documents: Vec<Hash32>,
        requested_credit: Amount,
    ) -> Result<Self, SpecError> {
        let msc = derive_msc_key(account, &documents_commitment(&documents))?;
        Ok(Self { participant: msc.public(), payout: account.address(), identity, documents, requested_credit })
    }

    pub fn credit_application(&self) -> CreditApplication {
        CreditApplication {
            participant: self.participant,
            documents: self.documents.clone(),
            requested_credit: self.requested_credit,
            identity: self.identity.clone(),
        }
    }
}

/// The merchant's answer, as written to `approval.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Decision {
    Approved {
        /// Borsh of the [`SignedApproval`], hex.
        approval: String,
        merchant: Address,
        participant: PublicKey,
        collateral: Amount,
        credit_limit: Amount,
        lock_ms: u64,
        valid_until: u64,
    },
    Refused {
        /// `blacklisted`, `too_many_disputes`, `no_documents` or `risk`.
        kind: String,
        reason: String,
    },
}

impl Decision {
    pub fn of(r: Result<SignedApproval, CreditRefusal>) -> Self {
        match r {
            Ok(a) => Decision::Approved {
                approval: hex::encode(encode(&a)),
                merchant: a.approval.merchant,
                participant: a.approval.participant,
                collateral: a.approval.collateral,
                credit_limit: a.approval.credit_limit,
                lock_ms: a.approval.lock_ms,
                valid_until: a.approval.valid_until,
            },
            Err(e) => {
                let kind = match e {
                    CreditRefusal::Blacklisted => "blacklisted",
                    CreditRefusal::TooManyDisputes(_) => "too_many_disputes",
                    CreditRefusal::NoDocuments => "no_documents",
                    CreditRefusal::Risk(_) => "risk",
                };
                Decision::Refused { kind: kind.into(), reason: e.to_string() }
            }
        }
    }

    /// The signed approval, or why there is none.
    pub fn approval(&self) -> Result<SignedApproval, SpecError> {
        match self {
            Decision::Approved { approval, .. } => {
                let b = hex::decode(approval).map_err(|e| SpecError::Format(e.to_string()))?;
                decode(&b, 4096).map_err(|e| SpecError::Format(e.to_string()))
            }
            Decision::Refused { reason, .. } => {
                Err(SpecError::Format(format!("the application was refused: {reason}")))
            }
        }
    }
}

/// Every MSC on chain, in id order.
pub fn all_mscs(client: &RpcClient) -> Result<Vec<Msc>, ChainError> {
    let n = read_next_sid(client)?;
    let mut out = Vec::new();
    for sid in 0..n {
        if let Some(m) = read_msc(client, sid)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// What the chain says about an applicant: its earlier MSCs with
/// `merchant` (same payout account or same key). `Err(Blacklisted)` when
/// one of them is blacklisted (§5.1.3).
pub fn chain_history(
    client: &RpcClient,
    merchant: Address,
    app: &Application,
) -> Result<Result<ApplicantHistory, CreditRefusal>, ChainError> {
    let mut h = ApplicantHistory::default();
    for m in all_mscs(client)? {
        if m.merchant != merchant || (m.payout != app.payout && m.participant_key != app.participant) {
            continue;
        }
        if m.standing == Standing::Black {
            return Ok(Err(CreditRefusal::Blacklisted));
        }
        h.disputes_at_fault = h.disputes_at_fault.saturating_add(m.disputes_at_fault);
        // Debt billed and never settled, with no collateral left to take.
        if m.ledger.outstanding_net() > 0 && m.collateral.is_zero() {
            h.defaults = h.defaults.saturating_add(1);
        }
    }
    Ok(Ok(h))
}

/// The chain's clock (timestamp of the newest block; blocks are produced
/// only when there are transactions, so it may lag).
pub fn chain_time(client: &RpcClient) -> Result<u64, ChainError> {
    Ok(client.call("gl_chainInfo", serde_json::json!([]))?["timestamp"].as_u64().unwrap_or(0))
}

/// The time the next block will carry, as best known here: the later of the
/// chain's clock and this machine's (block timestamps are wall-clock ms).
pub fn next_block_time(client: &RpcClient) -> Result<u64, ChainError> {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Ok(chain_time(client)?.max(u64::try_from(wall).unwrap_or(u64::MAX)))
}

/// The merchant assesses an application against its blacklist, the chain
/// and its risk function (seed Fig 3).
pub fn approve<F: RiskFunction>(
    client: &RpcClient,
    desk: &MerchantDesk<F>,
    app: &Application,
    nonce: u64,
) -> Result<Result<SignedApproval, CreditRefusal>, ChainError> {
    let history = match chain_history(client, desk.account, app)? {
        Ok(h) => h,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let now = chain_time(client)?;
    Ok(desk.assess(&app.credit_application(), &history, now, nonce))
}

/// The participant's `msc-init` with an approval (seed Fig 11): deposits
/// the approved collateral under its time-lock. Returns the MSC id.
pub fn init_msc(link: &ChainLink, msc_key: &KeyPair, approval: SignedApproval, nonce: u64) -> Result<u64, SpecError> {
    if approval.approval.participant != msc_key.public() {
        return Err(SpecError::Format("the approval is for another MSC key".into()));
    }
    let collateral = approval.approval.collateral;
    let a = msc_init_args(&link.domain(), msc_key, approval, link.account.address(), nonce);
    let o = link.call("msc_init", args(&a), collateral)?;
    borsh::from_slice(&o.output).map_err(|e| SpecError::Format(format!("msc id: {e}")))
}

/// What billing did for one MSC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BillLine {
    pub sid: u64,
    /// Closed channels' settlements the merchant signed now.
    pub debits_signed: usize,
    /// `settled` (bill_settle ran), `nothing_due`, `period_running`,
    /// `time_locked` (debt waits for the collateral's time-lock), or
    /// `refused_by_chain: …` when the contract reverted the settlement.
    pub action: String,
    /// Outstanding net debt after this run (negative: the merchant owes).
    pub outstanding: String,
    pub seized_total: Amount,
    pub paid_total: Amount,
    pub collateral: Amount,
    pub standing: Standing,
}

/// One billing run of the merchant over all its open MSCs (seed §4 step
/// 5, §5.1.4).
pub fn bill<F: RiskFunction>(link: &ChainLink, desk: &MerchantDesk<F>) -> Result<Vec<BillLine>, SpecError> {
    use rand::Rng;
    let client = &link.client;
    let period = super::chainlink::view(client, "merchant", args(&desk.account))?["billing_period_ms"]
        .as_u64()
        .ok_or_else(|| SpecError::Format("merchant record".into()))?;
    let mut out = Vec::new();
    for m in all_mscs(client)? {
        if m.merchant != desk.account || m.closed {
            continue;
        }
        let mut signed = 0;
        for rec in &m.pending {
            let sign = desk.sign_debit(rec, rand::rng().random())?;
            link.call("msc_sign_debit", args(&sign), Amount::ZERO)?;
            signed += 1;
        }
        let m = read_msc(client, m.sid)?.ok_or_else(|| SpecError::Format("MSC vanished".into()))?;
        let now = next_block_time(client)?;
        let due = m.ledger.outstanding_net();
        let action = if due == 0 {
            "nothing_due".to_string()
        } else if now < m.billing_period_start.saturating_add(period) {
            "period_running".to_string()
        } else if due > 0 && now < m.collateral_unlock_at {
            "time_locked".to_string()
        } else {
            // The contract has the last word on the time-lock and period.
            match link.call("bill_settle", args(&SidArgs { sid: m.sid }), Amount::ZERO) {
                Ok(_) => "settled".to_string(),
                Err(ChainError::Reverted { reason, .. }) => format!("refused_by_chain: {reason}"),
                Err(e) => return Err(e.into()),
            }
        };
        let m = read_msc(client, m.sid)?.ok_or_else(|| SpecError::Format("MSC vanished".into()))?;
        out.push(BillLine {
            sid: m.sid,
            debits_signed: signed,
            action,
            outstanding: m.ledger.outstanding_net().to_string(),
            seized_total: m.ledger.seized,
            paid_total: m.ledger.paid,
            collateral: m.collateral,
            standing: m.standing,
        });
    }
    Ok(out)
}

/// The participant pays billed debt directly (`bill_pay`); `amount` defaults
/// to everything outstanding. Returns what was paid.
pub fn pay(link: &ChainLink, sid: u64, amount: Option<Amount>) -> Result<Amount, SpecError> {
    let m = read_msc(&link.client, sid)?.ok_or_else(|| SpecError::Format(format!("no MSC {sid}")))?;
    let due = m.ledger.outstanding_net();
    if due <= 0 {
        return Err(SpecError::Format(format!("nothing is outstanding on MSC {sid}")));
    }
    let v = amount.unwrap_or(Amount(due.unsigned_abs()));
    link.call("bill_pay", args(&SidArgs { sid }), v)?;
    Ok(v)
}

/// A merchant-signed credit note for one top-up of a credit-funded side
/// (`topup-note.json`): what `channel topup --credit-note FILE` sends. It
/// backs exactly the `index`-th top-up of side `side` of channel `cid` (the
/// channel's `topups[side]` count when signed), so it is usable once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpNote {
    pub cid: Hash32,
    pub side: u8,
    pub sid: u64,
    pub index: u64,
    pub amount: Amount,
    pub nonce: u64,
    pub merchant_sig: gridledger_core::Signature,
}

impl TopUpNote {
    /// The `channel_topup` funding this note is.
    pub fn funding(&self) -> gridledger_contracts::cns::Funding {
        gridledger_contracts::cns::Funding::CreditNote { nonce: self.nonce, merchant_sig: self.merchant_sig }
    }
}

/// Why a top-up note is refused before anything is sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopUpNoteError {
    #[error("the note is for channel {note}, not this channel {ours}")]
    OtherChannel { note: Hash32, ours: Hash32 },
    #[error("the note is for side {note} (MSC {sid}), this party is side {ours}")]
    OtherSide { note: u8, ours: u8, sid: u64 },
    #[error("the note backs top-up number {note}, but {used} top-ups of this side are on chain: it was already used")]
    Reused { note: u64, used: u64 },
    #[error("the note is for top-up number {note}, but the next one is {next}")]
    NotNext { note: u64, next: u64 },
    #[error("the note of {amount} exceeds the credit the merchant approved that is still available, {available}")]
    OverLimit { amount: Amount, available: Amount },
    #[error("the merchant's signature on the note does not verify")]
    BadSignature,
    #[error("this side funded by deposit: it tops up by deposit, not with a credit note")]
    NotCreditFunded,
    #[error("--amount {asked} differs from the note's {note}")]
    AmountMismatch { asked: Amount, note: Amount },
    #[error("the channel is not open on chain")]
    NotOpen,
    #[error("reading the chain: {0}")]
    Chain(String),
}

/// The merchant signs a note for the next top-up of side `side` of `cid`
/// (read from the chain: the side's MSC and its top-up count).
pub fn sign_topup_note(
    client: &RpcClient,
    desk: &KeyPair,
    cid: &Hash32,
    side: u8,
    amount: Amount,
    nonce: u64,
) -> Result<TopUpNote, TopUpNoteError> {
    let chain = |e: ChainError| TopUpNoteError::Chain(e.to_string());
    let i = usize::from(side & 1);
    let ch = super::chainlink::read_channel(client, cid).map_err(chain)?.ok_or(TopUpNoteError::NotOpen)?;
    let esc = super::chainlink::read_esc(client, &ch.scid).map_err(chain)?.ok_or(TopUpNoteError::NotOpen)?;
    let sid = esc.sids[i];
    let domain = gridledger_contracts::cns::Domain::cns(super::chainlink::chain_id(client).map_err(chain)?);
    let index = ch.topups[i];
    let merchant_sig = gridledger_contracts::cns::Statement::CreditTopUp(gridledger_contracts::cns::CreditTopUp {
        sid,
        cid: *cid,
        index,
        amount,
    })
    .sign(desk, &domain, nonce);
    Ok(TopUpNote { cid: *cid, side: side & 1, sid, index, amount, nonce, merchant_sig })
}

/// Checks a top-up note against the chain as the contract will, so a note
/// that would be refused (another channel or side, already used, above the
/// approved credit, badly signed) is refused before it is sent.
pub fn check_topup_note(client: &RpcClient, cid: &Hash32, side: u8, note: &TopUpNote) -> Result<(), TopUpNoteError> {
    use gridledger_contracts::cns::{i128_of, ChannelStatus, CreditTopUp, FundKind, Statement};
    let chain = |e: ChainError| TopUpNoteError::Chain(e.to_string());
    if note.cid != *cid {
        return Err(TopUpNoteError::OtherChannel { note: note.cid, ours: *cid });
    }
    if note.side != side {
        return Err(TopUpNoteError::OtherSide { note: note.side, ours: side, sid: note.sid });
    }
    let i = usize::from(side & 1);
    let ch = super::chainlink::read_channel(client, cid).map_err(chain)?.ok_or(TopUpNoteError::NotOpen)?;
    if ch.status != ChannelStatus::Open {
        return Err(TopUpNoteError::NotOpen);
    }
    if ch.funded[i] != Some(FundKind::Credit) {
        return Err(TopUpNoteError::NotCreditFunded);
    }
    let used = ch.topups[i];
    if note.index < used {
        return Err(TopUpNoteError::Reused { note: note.index, used });
    }
    if note.index > used {
        return Err(TopUpNoteError::NotNext { note: note.index, next: used });
    }
    let esc = super::chainlink::read_esc(client, &ch.scid).map_err(chain)?.ok_or(TopUpNoteError::NotOpen)?;
    let sid = esc.sids[i];
    let msc = read_msc(client, sid).map_err(chain)?.ok_or(TopUpNoteError::NotOpen)?;
    let merchant = super::chainlink::view(client, "merchant", args(&msc.merchant)).map_err(chain)?;
    let key: PublicKey = serde_json::from_value(merchant["key"].clone())
        .map_err(|e| TopUpNoteError::Chain(format!("merchant record: {e}")))?;
    let domain = gridledger_contracts::cns::Domain::cns(super::chainlink::chain_id(client).map_err(chain)?);
    let stmt = Statement::CreditTopUp(CreditTopUp { sid, cid: *cid, index: note.index, amount: note.amount });
    if note.sid != sid || !stmt.verify(&key, &domain, note.nonce, &note.merchant_sig) {
        return Err(TopUpNoteError::BadSignature);
    }
    let used_credit = i128_of(msc.ledger.locked) + msc.ledger.exposure().max(0);
    let available = (i128_of(msc.credit_limit) - used_credit).max(0);
    if i128_of(note.amount) > available {
        return Err(TopUpNoteError::OverLimit { amount: note.amount, available: Amount(available as u128) });
    }
    Ok(())
}
