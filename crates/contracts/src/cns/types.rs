//! Records, call arguments and signed statements of the Credit-Note System
//! (seed 000 §3.3.6–§3.3.7, §5.2, §7.2).
//!
//! Everything a party signs is a [`Statement`]; the enum's variant tag
//! separates the purposes, and `hstate = H(statement, N)` /
//! `σ = Sign(hstate, i)` are `gridledger_core::crypto::{state_hash, state_sign}`
//! (seed §5.1.2).

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::{state_hash, state_sign, state_verify};
use gridledger_core::{Address, Amount, ChainId, ContractId, Energy, Hash32, KeyPair, PublicKey, Signature, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a CNS statement is valid: one contract on one chain. Every
/// signature covers it (DESIGN principle 7), so a state, credit note,
/// approval or debit signed for chain 1 verifies nowhere else, even where
/// the contract id and the counters of ids coincide.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    pub chain_id: ChainId,
    pub contract: ContractId,
}

impl Domain {
    /// The CNS contract ([`crate::CNS_ID`]) on chain `chain_id`.
    pub fn cns(chain_id: ChainId) -> Self {
        Self { chain_id, contract: crate::CNS_ID }
    }
}

/// Domain tag for identifiers derived by the CNS (scid, cid, UUTID).
pub const CNS_ID_TAG: Tag = Tag("gridledger/cns/id/v1");

/// A Universally Unique Temporary Identifier (seed §3.3.9): the tagged hash
/// of a pseudonymous key. On-chain records name parties only by these.
pub fn uutid(pk: &PublicKey) -> Hash32 {
    hash_tagged(CNS_ID_TAG, &(b"uutid".to_vec(), *pk))
}

/// `scid ← SC(⟨P_i, P_j⟩, n)` (seed §5.2, Fig 12): the two MSC session ids
/// and the pair's incremental counter.
pub fn derive_scid(sid_i: u64, sid_j: u64, n: u64) -> Hash32 {
    hash_tagged(CNS_ID_TAG, &(b"scid".to_vec(), sid_i, sid_j, n))
}

/// State-channel identifier `C⟨P_i,P_j⟩` (seed Fig 6 step 2): the ESC's id and
/// the channel's index within the ESC.
pub fn derive_cid(scid: &Hash32, index: u64) -> Hash32 {
    hash_tagged(CNS_ID_TAG, &(b"cid".to_vec(), *scid, index))
}

/// Outcome of the merchant's off-chain assessment (seed §3.3.6): "a digital
/// signature ... which includes the outcome of the verification as well as the
/// needed collateral".
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreditApproval {
    /// The merchant's account.
    pub merchant: Address,
    /// The participant's MSC pseudonym key (its UUTID is derived from it).
    pub participant: PublicKey,
    /// Hash commitment to the supporting documents; the documents themselves
    /// never leave the merchant.
    pub documents: Hash32,
    /// Collateral the participant must deposit with `msc-init`.
    pub collateral: Amount,
    /// Credit the merchant grants (upper bound of outstanding credit notes).
    pub credit_limit: Amount,
    /// Length of the collateral's time-lock `t⟨P_M,P_i⟩` (ms), counted from
    /// the MSC's creation.
    pub lock_ms: u64,
    /// The approval is void after this block time.
    pub valid_until: Timestamp,
}

/// A merchant-signed credit note (seed Fig 6 `{α_Pi}⟨P_M,P_i⟩`): the merchant
/// backs `amount` of a participant's side of one channel.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreditNote {
    pub sid: u64,
    pub cid: Hash32,
    pub amount: Amount,
}

/// A merchant-signed credit note that backs the `index`-th top-up of a
/// participant's credit-funded side (`channel_topup`): the index makes each
/// note usable once.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct CreditTopUp {
    pub sid: u64,
    pub cid: Hash32,
    pub index: u64,
    pub amount: Amount,
}

/// The state of a state channel: what both parties co-sign (seed Figs 13–16,
/// extended with energy quantities per §7.2, Eqs 6–9).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ChannelState {
    /// The chain and contract the channel lives in (seed Fig 6: the terms
    /// both parties sign at open, here repeated in every state so each state
    /// is self-describing).
    pub domain: Domain,
    pub cid: Hash32,
    /// The dispute window `t_Δ` both parties agreed (ms). The adjudicator
    /// takes it from the co-signed open state, never from a transaction
    /// argument one party chooses alone.
    pub t_delta_ms: u64,
    /// Strictly increasing: the adjudicator accepts only newer states.
    pub counter: u64,
    /// Coin each side would receive if the channel closed now, `α_{P_i}, α_{P_j}`.
    pub balances: [Amount; 2],
    /// Energy each side has delivered so far (Wh), `Q_{P_i}, Q_{P_j}`.
    pub energy: [Energy; 2],
    /// The last trade agreed in this state (Eq 7: price and quantity).
    pub last_trade: Option<Trade>,
    /// Set when this update folds several trades of one buyer (payments
    /// queued while earlier proposals were in flight): their number and the
    /// hash of their list, so the co-signed state binds every trade while
    /// only the last one is spelled out. `None`: one trade (`last_trade`).
    pub fold: Option<Fold>,
    /// Set on the `finalise` state both sign to close cooperatively (Fig 16).
    pub is_final: bool,
    /// Coin added to or taken out of the channel since it opened (top-up
    /// and partial withdraw), cumulative per side.
    pub resize: Resize,
    /// The counter of the co-signed state this one follows (0 for the open
    /// state). It tells the adjudicator whether a state that overturns a
    /// dispute was built directly on the disputed one (the raiser's own
    /// unacknowledged update, no fault) or on a newer one the raiser held.
    pub prev_counter: u64,
}

/// Top-ups and partial withdrawals a co-signed state accounts for, per
/// side and cumulative over the channel's life (both only grow). The
/// adjudicator checks `Σ balances + Σ withdrawn = Σ capacity + Σ topped_up`,
/// that no side is allocated more top-up than it put on chain
/// (`channel_topup`), and pays each withdrawal once.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resize {
    /// Coin side `i` added on chain and this state allocates to it.
    pub topped_up: [Amount; 2],
    /// Coin side `i` takes out of the channel.
    pub withdrawn: [Amount; 2],
}

/// Several trades folded into one co-signed update.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fold {
    /// How many trades (≥ 2); the last is the state's `last_trade`.
    pub trades: u32,
    /// `H(trades)` of the whole list, in order ([`Fold::hash`]).
    pub hash: Hash32,
}

impl Fold {
    /// Domain tag of a folded trade list's hash.
    pub const TAG: Tag = Tag("gridledger/cns-fold/v1");
    /// The hash of a trade list.
    pub fn hash(trades: &[Trade]) -> Hash32 {
        hash_tagged(Self::TAG, trades)
    }
}

/// One energy trade (seed §7.2): `buyer` pays `amount` for `energy` Wh at
/// `price_per_kwh` minor units per kWh.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    pub buyer: u8,
    pub energy: Energy,
    pub price_per_kwh: Amount,
    pub amount: Amount,
}

impl Trade {
    /// `amount = ⌊energy · price / 1000⌋`: explicit rounding down, in the
    /// buyer's favour (DESIGN principle 4). `None` on overflow.
    pub fn price_of(energy: Energy, price_per_kwh: Amount) -> Option<Amount> {
        price_per_kwh.0.checked_mul(u128::from(energy.0)).map(|v| Amount(v / 1000))
    }
}

/// The settlement of a credit-backed side at channel close (Fig 16) that the
/// merchant recalculates and signs into the MSC as a debit (or credit).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DebitRecord {
    pub sid: u64,
    pub cid: Hash32,
    /// What the merchant's pool paid in for the side and did not get back
    /// as unallocated top-up: the open's note plus every top-up note, minus
    /// the top-up refunded unallocated at close (after the close's
    /// deductions for withdrawals already paid out). So `funded − final`
    /// is exactly what the pool lost to the channel.
    pub funded: Amount,
    /// Final balance of the side, returned to the merchant's pool.
    pub final_amount: Amount,
    /// Energy the side delivered in the channel.
    pub energy: Energy,
    /// `funded − final` when positive: what the participant owes.
    pub debit: Amount,
    /// `final − funded` when positive: what the merchant owes.
    pub credit: Amount,
}

/// Initialisation statement of an MSC (seed Fig 4, Fig 11).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MscInit {
    pub approval: Hash32,
    pub payout: Address,
}

/// Initialisation statement of an ESC (seed Fig 5, Fig 12): both MSC keys
/// bind the pair's fresh per-ESC pseudonym keys.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct EscInit {
    pub sids: [u64; 2],
    pub keys: [PublicKey; 2],
    pub payouts: [Address; 2],
    pub n: u64,
    pub dispute_limit: u32,
}

/// Everything signed in the CNS. The variant tag is the domain separator.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum Statement {
    CreditApproval(CreditApproval),
    MscInit(MscInit),
    EscInit(EscInit),
    CreditNote(CreditNote),
    Channel(ChannelState),
    Debit(DebitRecord),
    CreditTopUp(CreditTopUp),
}

impl Statement {
    /// `hstate = H((domain, statement), N)`: the domain (chain and contract)
    /// is hashed with every statement.
    pub fn hstate_in(&self, domain: &Domain, nonce: u64) -> Hash32 {
        state_hash(&(*domain, self), nonce)
    }
    /// The counter `i` bound into the signature: the channel counter for
    /// channel states, 0 otherwise.
    pub fn counter(&self) -> u64 {
        match self {
            Statement::Channel(s) => s.counter,
            _ => 0,
        }
    }
    /// `σ = Sign(H((domain, statement), N), i)`.
    pub fn sign(&self, key: &KeyPair, domain: &Domain, nonce: u64) -> Signature {
        state_sign(key, &self.hstate_in(domain, nonce), self.counter())
    }
    /// `Verify(H((domain, statement), N), i, σ)` (unmetered; contracts
    /// charge gas first).
    pub fn verify(&self, pk: &PublicKey, domain: &Domain, nonce: u64, sig: &Signature) -> bool {
        state_verify(pk, &self.hstate_in(domain, nonce), self.counter(), sig).is_ok()
    }
}

impl ChannelState {
    /// `hstate` of this state: its own domain is the one signed.
    pub fn hstate(&self, nonce: u64) -> Hash32 {
        Statement::Channel(self.clone()).hstate_in(&self.domain, nonce)
    }
    pub fn sign(&self, key: &KeyPair, nonce: u64) -> Signature {
        Statement::Channel(self.clone()).sign(key, &self.domain, nonce)
    }
    pub fn verify(&self, pk: &PublicKey, nonce: u64, sig: &Signature) -> bool {
        Statement::Channel(self.clone()).verify(pk, &self.domain, nonce, sig)
    }
}

/// A signed approval, as the participant forwards it with `msc-init`.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SignedApproval {
    pub approval: CreditApproval,
    pub nonce: u64,
    pub sig: Signature,
}

impl SignedApproval {
    /// The approval's digest in `domain` (the contract records it as used).
    pub fn digest(&self, domain: &Domain) -> Hash32 {
        Statement::CreditApproval(self.approval.clone()).hstate_in(domain, self.nonce)
    }
}

/// A channel state with the nonce `N` and both parties' signatures.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct SignedState {
    pub state: ChannelState,
    pub nonce: u64,
    pub sigs: [Signature; 2],
}

impl SignedState {
    pub fn hstate(&self) -> Hash32 {
        self.state.hstate(self.nonce)
    }
}

// ---------------------------------------------------------------- records

/// A merchant offering the CNS.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Merchant {
    pub key: PublicKey,
    /// Coin the merchant keeps in the contract to back credit notes; `free`
    /// is available, `reserved` backs notes in open channels.
    pub free: Amount,
    pub reserved: Amount,
    /// Net credit the merchant owes its participants (per MSC, what closed
    /// channels credited beyond their notes, pending or billed, and not yet
    /// paid). Part of `free` that `pool_withdraw` may not take.
    pub owed: Amount,
    pub billing_period_ms: u64,
    pub grey_after: u32,
    pub black_after: u32,
}

/// Standing of a participant (seed §5.1.3: grey list, then blacklist).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Good,
    Grey,
    Black,
}

/// The credit ledger of one MSC. It balances:
/// `issued + credits = returned + debits` once every closed channel's
/// settlement is recorded, and
/// `debits − credits = paid + seized − credit_paid + outstanding_net`.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct CreditLedger {
    /// Credit notes that funded channels.
    pub issued: Amount,
    /// Notes currently locked in open channels.
    pub locked: Amount,
    /// Final amounts of credit-backed sides returned to the merchant.
    pub returned: Amount,
    /// Recalculated debits/credits the merchant signed (billed).
    pub debits: Amount,
    pub credits: Amount,
    /// Closed channels' settlements awaiting the merchant's signature.
    pub pending_debits: Amount,
    pub pending_credits: Amount,
    /// Debt the participant paid directly, and debt taken from collateral.
    pub paid: Amount,
    pub seized: Amount,
    /// What the merchant paid out for net credits.
    pub credit_paid: Amount,
}

impl CreditLedger {
    /// Net debt billed and not yet settled (may be negative: merchant owes).
    pub fn outstanding_net(&self) -> i128 {
        i128_of(self.debits) - i128_of(self.credits) - i128_of(self.paid) - i128_of(self.seized)
            + i128_of(self.credit_paid)
    }
    /// Debt not yet settled, pending or billed, net of what is owed back.
    pub fn exposure(&self) -> i128 {
        self.outstanding_net() + i128_of(self.pending_debits) - i128_of(self.pending_credits)
    }
    /// Zero when the ledger balances: notes issued minus everything they
    /// turned into (returned, locked, billed, pending), where billed is
    /// `debits − credits`.
    pub fn imbalance(&self) -> i128 {
        i128_of(self.issued) + i128_of(self.credits) + i128_of(self.pending_credits)
            - i128_of(self.returned)
            - i128_of(self.locked)
            - i128_of(self.debits)
            - i128_of(self.pending_debits)
    }
}

/// Saturating conversion for ledger arithmetic (amounts above `i128::MAX`
/// cannot exist: total supply is far smaller).
pub fn i128_of(a: Amount) -> i128 {
    i128::try_from(a.0).unwrap_or(i128::MAX)
}

/// Merchant's Smart Contract (seed Fig 4, Eq 2), as read: the stored
/// [`MscRecord`] with its keyed lists (ESCs, pending and signed
/// settlements) gathered in. The record's fields read through it
/// (`msc.collateral`); its JSON is the record's fields and the lists.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Msc {
    #[serde(flatten)]
    pub record: MscRecord,
    /// `𝔖`: the ESCs this MSC takes part in.
    pub escs: Vec<Hash32>,
    /// Settlements awaiting the merchant's signature, by channel.
    pub pending: Vec<DebitRecord>,
    /// Signed settlements (the MSC's debit list).
    pub signed: Vec<(DebitRecord, Signature)>,
}

impl std::ops::Deref for Msc {
    type Target = MscRecord;
    fn deref(&self) -> &MscRecord {
        &self.record
    }
}

/// The MSC as stored: fixed size, so every call that loads it costs the
/// same gas however long its history. The lists live under their own keys
/// (one entry each) and are counted here.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct MscRecord {
    pub sid: u64,
    pub esc_count: u64,
    pub merchant: Address,
    /// The participant, by pseudonym only.
    pub participant: Hash32,
    pub participant_key: PublicKey,
    pub payout: Address,
    /// `(α^final, Q^final)`: coin finally received and energy delivered by
    /// the participant over all closed channels.
    pub final_amount: Amount,
    pub final_energy: Energy,
    /// `{σ_M, σ_Pi}`.
    pub sigs: [Signature; 2],
    pub approval_nonce: u64,
    pub collateral: Amount,
    pub collateral_unlock_at: Timestamp,
    pub credit_limit: Amount,
    pub ledger: CreditLedger,
    /// Pending settlements: live count, entries ever written (index keys),
    /// and the epoch a claim bumps to retire every pending entry at once.
    pub pending_count: u64,
    pub pending_seq: u64,
    pub pending_epoch: u64,
    pub pending_since: Timestamp,
    pub signed_count: u64,
    pub disputes_at_fault: u32,
    pub standing: Standing,
    pub billing_period_start: Timestamp,
    pub closed: bool,
}

impl MscRecord {
    /// The read view with its lists.
    pub fn view(&self, escs: Vec<Hash32>, pending: Vec<DebitRecord>, signed: Vec<(DebitRecord, Signature)>) -> Msc {
        Msc { record: self.clone(), escs, pending, signed }
    }
}

/// One dispute, `D_k = (t_start, t_end, i)` (seed Fig 8 step 5).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DisputeRecord {
    pub cid: Hash32,
    pub t_start: Timestamp,
    pub t_end: Timestamp,
    /// Counter of the state the dispute was raised with.
    pub counter: u64,
    /// Side that raised it.
    pub raised_by: u8,
    pub outcome: DisputeOutcome,
}

#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisputeOutcome {
    Open,
    /// A newer co-signed state was shown before `t_end`.
    Resolved {
        counter: u64,
    },
    /// The timer elapsed; the channel closed with the disputed state.
    TimedOut,
    /// Both parties closed cooperatively during the dispute.
    ClosedCooperatively,
}

/// Entity's Smart Contract (seed Fig 5, Eq 4), as read: the stored
/// [`EscRecord`] with its keyed lists gathered in.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Esc {
    pub scid: Hash32,
    pub sids: [u64; 2],
    /// Per-ESC pseudonym keys; records show their UUTIDs.
    pub keys: [PublicKey; 2],
    pub uutids: [Hash32; 2],
    pub payouts: [Address; 2],
    /// `ℂ`: channel ids.
    pub channels: Vec<Hash32>,
    /// `𝕋`: hashes of the co-signed states registered on chain.
    pub transactions: Vec<Hash32>,
    /// Temporary `(α, Q)` per side: latest registered state of open channels.
    pub amounts: [Amount; 2],
    pub energy: [Energy; 2],
    /// Final `(α^final, Q^final)` per side over closed channels. `α^final`
    /// is what each closed channel paid the side out: its closing balance
    /// plus all it withdrew (partial withdrawals are recorded here when the
    /// channel closes, whether `channel_withdraw` or the close paid them);
    /// unallocated top-ups returned at close are not counted.
    pub final_amounts: [Amount; 2],
    pub final_energy: [Energy; 2],
    /// `𝔻`.
    pub disputes: Vec<DisputeRecord>,
    pub dispute_limit: u32,
}

/// The ESC as stored: fixed size, so dispute, resolve, close and settle
/// cost the same gas however many states were registered (issue: an ESC
/// that grew 32 bytes per update let a cheater price the honest resolve
/// out of its gas limit). `𝕋` and `𝔻` live one entry per key.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct EscRecord {
    pub scid: Hash32,
    pub sids: [u64; 2],
    pub keys: [PublicKey; 2],
    pub uutids: [Hash32; 2],
    pub payouts: [Address; 2],
    /// Channels opened; channel `k`'s id is `derive_cid(scid, k)`.
    pub channel_count: u64,
    pub tx_count: u64,
    pub amounts: [Amount; 2],
    pub energy: [Energy; 2],
    pub final_amounts: [Amount; 2],
    pub final_energy: [Energy; 2],
    pub dispute_count: u32,
    pub dispute_limit: u32,
}

impl EscRecord {
    /// The read view with its lists.
    pub fn view(&self, transactions: Vec<Hash32>, disputes: Vec<DisputeRecord>) -> Esc {
        Esc {
            scid: self.scid,
            sids: self.sids,
            keys: self.keys,
            uutids: self.uutids,
            payouts: self.payouts,
            channels: (0..self.channel_count).map(|k| derive_cid(&self.scid, k)).collect(),
            transactions,
            amounts: self.amounts,
            energy: self.energy,
            final_amounts: self.final_amounts,
            final_energy: self.final_energy,
            disputes,
            dispute_limit: self.dispute_limit,
        }
    }
}

/// How one side funds a channel (seed Fig 6 step 2–3).
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub enum Funding {
    /// Coin locked on the ledger, attached as the call's value.
    Deposit,
    /// A merchant-signed credit note against the side's MSC.
    CreditNote { nonce: u64, merchant_sig: Signature },
}

#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelStatus {
    /// Co-signed open registered; waiting for both fundings.
    Funding,
    Open,
    Disputed,
    Closed,
}

/// A state channel as the adjudicator holds it.
#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Channel {
    pub cid: Hash32,
    pub scid: Hash32,
    pub index: u64,
    pub status: ChannelStatus,
    pub t_delta_ms: u64,
    /// Amount each side committed in the open state.
    pub capacity: [Amount; 2],
    /// Which sides have funded, and how.
    pub funded: [Option<FundKind>; 2],
    /// Latest accepted co-signed state.
    pub latest: SignedState,
    /// Index into the ESC's dispute list while disputed.
    pub dispute: Option<u32>,
    pub t_end: Timestamp,
    /// Coin each side added with `channel_topup` (cumulative); what a
    /// closing state does not allocate is refunded to it.
    pub topped_up: [Amount; 2],
    /// Number of top-ups so far per side (side `i`'s next credit top-up
    /// note's index). Per side, so the peer's own top-ups cannot move the
    /// index a merchant signed for this side and invalidate its note.
    pub topups: [u64; 2],
    /// Withdrawals already paid out (cumulative per side).
    pub withdrawn_paid: [Amount; 2],
}

#[derive(BorshSerialize, BorshDeserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FundKind {
    Deposit,
    Credit,
}

// ---------------------------------------------------------------- call args

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct RegisterMerchant {
    pub key: PublicKey,
    pub billing_period_ms: u64,
    pub grey_after: u32,
    pub black_after: u32,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct PoolWithdraw {
    pub amount: Amount,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct MscInitArgs {
    pub approval: SignedApproval,
    pub payout: Address,
    pub nonce: u64,
    pub sig: Signature,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct EscOpenArgs {
    pub init: EscInit,
    pub nonce: u64,
    pub sigs: [Signature; 2],
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ChannelOpenArgs {
    pub scid: Hash32,
    /// Counter-0 state, co-signed by both per-ESC keys; it carries `t_Δ`.
    pub open: SignedState,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ChannelFundArgs {
    pub cid: Hash32,
    pub side: u8,
    pub funding: Funding,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ChannelStateArgs {
    pub state: SignedState,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ChannelDisputeArgs {
    pub side: u8,
    pub state: SignedState,
}

/// `channel_topup`: side `side` adds `amount` to the channel, by deposit
/// (the call's value) or by a [`CreditTopUp`] note for a credit-funded side.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct ChannelTopUpArgs {
    pub cid: Hash32,
    pub side: u8,
    pub amount: Amount,
    pub funding: Funding,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct CidArgs {
    pub cid: Hash32,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct SidArgs {
    pub sid: u64,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct SignDebitArgs {
    pub sid: u64,
    pub cid: Hash32,
    pub nonce: u64,
    pub sig: Signature,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct EscArgs {
    pub scid: Hash32,
}
