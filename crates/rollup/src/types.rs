//! The IOR transaction formats (thesis §3.3.1, Eq 3.1 and Eq 3.2), the
//! transaction computation results (TCRs, §3.3.3) and the parameters of the
//! reputation and deposit mechanism (§3.3.5).
//!
//! Units (DESIGN principle 4):
//! - money is [`Amount`] in minor units, [`MINOR_PER_COIN`] = 1,000,000 per
//!   coin; `EP` is minor units per kWh;
//! - `EM` is [`Energy`] in Wh; the price of a trade is
//!   `floor(EP × EM / 1000)` minor units ([`AgreementTerms::payment`]): the
//!   buyer never pays more than agreed, the sub-minor-unit remainder is
//!   dropped;
//! - smart-meter readings `P_s` are signed net power in W over `Δt` seconds;
//!   delivered energy is compared exactly in watt-seconds,
//!   `Σ P_s × Δt < EM × 3600` ([`SettlementTx::metered_ws`]), so the
//!   arbitration needs no rounding at all.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy, Hash32, RecoverableSignature, Timestamp};
use serde::Serialize;

/// Minor units per coin.
pub const MINOR_PER_COIN: u128 = 1_000_000;

/// `ADDR_BH`, the black-hole address of §3.3.5 Step 2: burned deposits are
/// paid here. It is a fixed byte string, not derived from any key, so no
/// participant can own its private key.
pub const BLACK_HOLE: Address = Address(*b"ior-black-hole-addr\0");

/// What the seller signs in an AT (Step 2 "EP and EM signed by the seller").
/// The seller signs the whole agreed tuple, not only EP and EM, so its
/// signature cannot be lifted onto another buyer, period or deadline.
pub const TAG_AT_SELLER: Tag = Tag("gridledger/ior/at-seller/v1");
/// What the buyer signs in an ST: the agreed tuple and `O_b` (§3.3.1).
pub const TAG_ST_BUYER: Tag = Tag("gridledger/ior/st-buyer/v1");
/// The authority certificate of a secondary-chain node (§3.3.3 (i)).
pub const TAG_NODE_CERT: Tag = Tag("gridledger/ior/node-cert/v1");
/// The authority certificate binding a trader to its smart meter's key
/// (issue 11 item 3: readings count in arbitration only when signed by it).
pub const TAG_METER_CERT: Tag = Tag("gridledger/ior/meter-cert/v1");
/// What a smart meter signs: the agreed tuple, `Δt` and the readings `P_s`.
pub const TAG_METER_READINGS: Tag = Tag("gridledger/ior/meter-readings/v1");
/// Domain of the lot that assigns a batch's executor and validator.
pub const TAG_ASSIGNMENT: Tag = Tag("gridledger/ior/assignment/v1");
/// Domain of the rolling commitment over a batch's entries
/// ([`commit_entry`]).
pub const TAG_BATCH_DATA: Tag = Tag("gridledger/ior/batch-data/v1");

/// The IOR deployment a signature is made for: the primary chain's id and
/// the primary contract's id. Every signature a trader, meter or the
/// authority makes for IOR covers it, so a signed AT, opinion, reading or
/// certificate of one community is worthless on any other chain or
/// deployment (the ledger's own transaction signatures carry the chain id;
/// these are carried inside transactions, so they need their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct SigDomain {
    pub chain_id: gridledger_core::ChainId,
    pub contract: gridledger_core::ContractId,
}

impl SigDomain {
    /// The development primary chain (`DevChain::CHAIN_ID`) with the IOR
    /// primary contract: what [`IorParams::case_study`] and the driver's
    /// development chains use, and what the domain-less signing helpers
    /// ([`AgreementTx::signed`], [`SettlementTx::sign_readings`],
    /// [`SettlementTx::sign_as_buyer`]) sign for.
    pub const DEV: SigDomain =
        SigDomain { chain_id: gridledger_ledger::devnet::DevChain::CHAIN_ID, contract: crate::IOR_PRIMARY_ID };
}

/// Coins, in minor units, for amounts the code itself chooses (constants,
/// counts of participants); it overflows above `u128::MAX / 10^6` coins.
/// Amounts read from outside (a community file, a command line) go
/// through [`checked_coins`].
pub fn coins(c: u128) -> Amount {
    Amount(c * MINOR_PER_COIN)
}

/// Coins, in minor units; `None` when the amount does not fit a `u128`.
pub fn checked_coins(c: u128) -> Option<Amount> {
    c.checked_mul(MINOR_PER_COIN).map(Amount)
}

/// `EP‖EM‖ADDR_b‖ADDR_s‖DT‖DL`: the agreed tuple shared by Eq 3.1 and 3.2.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct AgreementTerms {
    /// `EP`: price, minor units per kWh.
    pub ep: Amount,
    /// `EM`: amount, Wh.
    pub em: Energy,
    /// `ADDR_b`.
    pub buyer: Address,
    /// `ADDR_s`.
    pub seller: Address,
    /// `DT`: delivery period start (ms, block-time clock).
    pub dt_start: Timestamp,
    /// `DT`: delivery period end (ms).
    pub dt_end: Timestamp,
    /// `DL`: deadline for the buyer's signature (ms).
    pub dl: Timestamp,
}

/// What an open agreement is stored under: `(ADDR_b, ADDR_s, DT start)`.
/// The seed keys agreements by `ADDR_b` alone (AT Step 4), which lets a
/// buyer hold one agreement at a time and lets an old AT be replayed once
/// the first settled; with this key a buyer buys from several sellers in a
/// slot, and a replay of the same trade finds it open or its period past
/// (issue 11 item 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize)]
pub struct AgreementKey {
    pub buyer: Address,
    pub seller: Address,
    pub dt_start: Timestamp,
}

impl AgreementTerms {
    /// The key of the agreement these terms open.
    pub fn key(&self) -> AgreementKey {
        AgreementKey { buyer: self.buyer, seller: self.seller, dt_start: self.dt_start }
    }

    /// `EP × EM` in minor units, `floor(EP[minor/kWh] × EM[Wh] / 1000)`;
    /// `None` on overflow.
    pub fn payment(&self) -> Option<Amount> {
        self.ep.0.checked_mul(u128::from(self.em.0)).map(|v| Amount(v / 1000))
    }

    /// The digest the seller signs (AT Step 2), bound to the deployment.
    pub fn seller_digest(&self, d: &SigDomain) -> Hash32 {
        hash_tagged(TAG_AT_SELLER, &(d, self))
    }

    /// The digest the buyer signs with its opinion `O_b` (ST Step 2).
    pub fn buyer_digest(&self, d: &SigDomain, ob: bool) -> Hash32 {
        hash_tagged(TAG_ST_BUYER, &(d, self, ob))
    }
}

/// An agreement transaction, Eq 3.1, plus the seller's signature over the
/// tuple that AT Step 2 checks. Only the buyer may submit it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct AgreementTx {
    pub terms: AgreementTerms,
    /// The seller's signature over [`AgreementTerms::seller_digest`]; `None`
    /// models an AT whose EP/EM the seller has not signed.
    pub seller_sig: Option<RecoverableSignature>,
}

impl AgreementTx {
    /// An AT countersigned by `seller` for [`SigDomain::DEV`].
    pub fn signed(terms: AgreementTerms, seller: &KeyPair) -> Self {
        Self::signed_in(terms, &SigDomain::DEV, seller)
    }

    /// An AT countersigned by `seller` for the deployment `d`.
    pub fn signed_in(terms: AgreementTerms, d: &SigDomain, seller: &KeyPair) -> Self {
        let sig = seller.sign_recoverable(&terms.seller_digest(d));
        Self { terms, seller_sig: Some(sig) }
    }
}

/// One slot of a seller's metering grid (issue 11, attack_smt overlapping
/// periods): `[dt_start, dt_end)` is one whole metering interval
/// ([`IorParams::meter_step_s`]) on the fixed grid from time 0. The
/// energy won arbitrations claimed is recorded per grid slot, so a
/// seller's metered export in a slot counts once across all its
/// agreements whose periods cover it, whatever those periods are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize, Serialize)]
pub struct SlotKey {
    pub seller: Address,
    pub dt_start: Timestamp,
    pub dt_end: Timestamp,
}

/// A seller's certified smart meter (`register_meter`): the address of
/// the key that signs its readings and its reading interval `Δt`
/// (seconds), which divides the metering grid step
/// ([`IorParams::meter_step_s`]). Arbitration counts an ST's readings only
/// at this interval, summed per grid slot ([`SettlementTx::claim_split`]);
/// readings at another interval are refused
/// ([`StRejection::OffMeterInterval`]). Real meters record every 1, 5, 15
/// or 60 minutes; the interval is fixed at registration (a meter cannot be
/// registered twice), so all of a seller's STs read the same grid slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct MeterRecord {
    pub key: Address,
    pub step_s: u32,
}

/// A settlement transaction, Eq 3.2: `…‖STMP‖SIG_b‖O_b‖Δt‖P_s`. Only the
/// seller may submit it, with its own smart meter's readings.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct SettlementTx {
    pub terms: AgreementTerms,
    /// `STMP` as claimed by the seller. The primary chain records the block
    /// time of `SC_DS_ST` beside it and judges lateness (ST Step 2) by the
    /// block time, so a seller cannot date its ST past `DL` to make an
    /// unsigned buyer look late.
    pub stmp: Timestamp,
    /// `SIG_b` over [`AgreementTerms::buyer_digest`]`(O_b)`; `None` when the
    /// buyer has not signed.
    pub buyer_sig: Option<RecoverableSignature>,
    /// `O_b`: the buyer's opinion, `true` = agreed (1), `false` = disagreed (0).
    pub ob: bool,
    /// `Δt`: meter recording interval, seconds.
    pub dt_step_s: u32,
    /// `P_s`: the seller's net-power readings (W), `DT / Δt` of them.
    pub ps: Vec<i64>,
    /// The seller's smart meter's signature over
    /// [`SettlementTx::readings_digest`]. Arbitration (ST Step 4) counts the
    /// readings as evidence of delivery only when this recovers to the meter
    /// key certified for the seller (`register_meter`); otherwise the seller
    /// has not proved delivery and the buyer wins.
    pub meter_sig: Option<RecoverableSignature>,
}

impl SettlementTx {
    /// `Σ P_s × Δt` in watt-seconds, exact.
    pub fn metered_ws(&self) -> i128 {
        self.ps.iter().map(|p| i128::from(*p) * i128::from(self.dt_step_s)).sum()
    }

    /// The metering-grid slots of the delivery period, `grid_s`
    /// ([`IorParams::meter_step_s`]) seconds each on the fixed grid from
    /// time 0, in order. Empty when the readings do not tile the period at
    /// their own interval `Δt` or `Δt` does not divide the grid step (`Δt
    /// = 0`, `DT` off the grid or off `Δt`, not `DT/Δt` readings): such
    /// readings claim nothing and prove no delivery. There are never more
    /// slots than readings, so the entry size bounds them.
    pub fn claim_slots(&self, grid_s: u32) -> Vec<SlotKey> {
        let t = &self.terms;
        let step = u64::from(self.dt_step_s) * 1000;
        let grid = u64::from(grid_s) * 1000;
        let span = t.dt_end.saturating_sub(t.dt_start);
        if step == 0
            || grid == 0
            || !grid.is_multiple_of(step)
            || !t.dt_start.is_multiple_of(grid)
            || !span.is_multiple_of(grid)
            || span / step != self.ps.len() as u64
        {
            return vec![];
        }
        (0..span / grid)
            .map(|i| SlotKey { seller: t.seller, dt_start: t.dt_start + i * grid, dt_end: t.dt_start + (i + 1) * grid })
            .collect()
    }

    /// The `reach` grid slots after [`Self::claim_slots`] that a won
    /// arbitration re-allocates over ([`IorTx::StReach`], capped at
    /// [`crate::exec::MAX_REACH_SLOTS`]); empty when the period has no slots.
    pub fn reach_keys(&self, grid_s: u32, reach: u32) -> Vec<SlotKey> {
        let slots = self.claim_slots(grid_s);
        match slots.last() {
            Some(last) => crate::exec::following_slots(last, reach),
            None => vec![],
        }
    }

    /// The readings' net export per grid slot ([`Self::claim_slots`]),
    /// in watt-seconds: `Σ P_s × Δt` over the readings at the meter's own
    /// interval `Δt` that fall in the slot (imports count negative, seed
    /// Ch.3 ST Step 4). `None` when the readings do not tile the period
    /// or the arithmetic overflows. A function of the ST and the grid
    /// alone; what a won arbitration claims of it depends on earlier
    /// claims ([`crate::exec::realloc`]).
    pub fn claim_split(&self, grid_s: u32) -> Option<Vec<(SlotKey, i128)>> {
        let slots = self.claim_slots(grid_s);
        if slots.is_empty() {
            return None;
        }
        let per = usize::try_from(grid_s / self.dt_step_s).ok()?;
        let step = i128::from(self.dt_step_s);
        slots
            .into_iter()
            .zip(self.ps.chunks(per))
            .map(|(s, ps)| {
                ps.iter().try_fold(0i128, |acc, p| acc.checked_add(i128::from(*p).checked_mul(step)?)).map(|ws| (s, ws))
            })
            .collect()
    }

    /// The digest the seller's meter signs.
    pub fn readings_digest(&self, d: &SigDomain) -> Hash32 {
        hash_tagged(TAG_METER_READINGS, &(d, &self.terms, self.dt_step_s, &self.ps))
    }

    /// Signs the readings with the seller's meter key for [`SigDomain::DEV`].
    pub fn sign_readings(self, meter: &KeyPair) -> Self {
        self.sign_readings_in(&SigDomain::DEV, meter)
    }

    /// Signs the readings with the seller's meter key for deployment `d`.
    pub fn sign_readings_in(mut self, d: &SigDomain, meter: &KeyPair) -> Self {
        self.meter_sig = Some(meter.sign_recoverable(&self.readings_digest(d)));
        self
    }

    /// Signs `O_b` as the buyer for [`SigDomain::DEV`].
    pub fn sign_as_buyer(self, buyer: &KeyPair) -> Self {
        self.sign_as_buyer_in(&SigDomain::DEV, buyer)
    }

    /// Signs `O_b` as the buyer for deployment `d`.
    pub fn sign_as_buyer_in(mut self, d: &SigDomain, buyer: &KeyPair) -> Self {
        self.buyer_sig = Some(buyer.sign_recoverable(&self.terms.buyer_digest(d, self.ob)));
        self
    }
}

/// Parameters of the reputation and deposit mechanism (§3.3.5) and of IOR
/// (§3.3.3–3.3.4).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct IorParams {
    /// `rs`: initial reputation.
    pub rs: u32,
    /// `α`: reputation decrement per misbehaviour.
    pub alpha: u32,
    /// `β`: reputation threshold. A trader may trade only while its score is
    /// *above* β. The text says "below β" is invalid, but the §3.5.5 case
    /// study (rs=30, α=10, β=10) bars participant #14 after two
    /// misbehaviours, at score 10 = β; we follow the case study.
    pub beta: u32,
    /// `D_s`: security deposit per trader per AT.
    pub ds: Amount,
    /// `F_p` in thousandths (0 < F_p < 1, so 1..=999). The compensation is
    /// `floor(D_s × F_p / 1000)`, and the burn is the exact remainder.
    pub fp_permille: u32,
    /// Maximum IOR transactions recorded per primary block (§3.5.1: 300).
    pub max_batch: u32,
    /// Grace after `DL` (ms of block time) after which a buyer whose seller
    /// never submitted an ST may expire the agreement ([`IorTx::Expire`]):
    /// the buyer is refunded as in a seller shortfall and the silent seller
    /// penalised (issue 11 item 4). Not in the seed, which leaves the
    /// agreement open forever.
    pub expiry_ms: u64,
    /// Longest deadline an AT may set after its delivery period:
    /// `DL − DT_end ≤ max_dl_ms`, else `SC_EXE_AT` refuses it
    /// ([`AtRejection::DeadlineTooLate`]). Not in the seed, which bounds no
    /// term; without a bound a buyer's deposit and payment could be held
    /// open for ever (`DL = u64::MAX`) and deadline arithmetic sits at the
    /// edge of overflow. One week by default: long enough for any
    /// settlement dispute between neighbours. It also bounds the delivery
    /// period itself, `DT_end − DT_start ≤ max_dl_ms`
    /// ([`AtRejection::PeriodTooLong`]), so a claimed grid slot is read by
    /// no ST recorded more than `2 × max_dl_ms + expiry_ms` after the slot
    /// began ([`StRejection::AfterExpiry`]).
    pub max_dl_ms: u64,
    /// The smart meters' fixed metering interval `Δt` (seconds), which
    /// is also the grid of delivery periods: an AT's `DT` must start and
    /// end on a multiple of it ([`AtRejection::OffGrid`]), and arbitration
    /// counts readings only at this interval. The energy won arbitrations
    /// claim is recorded per seller and grid slot ([`SlotKey`]), so one
    /// export cannot win two arbitrations over overlapping periods. Not in
    /// the seed, which keys nothing by slot. 300 s (5 minutes) by default.
    pub meter_step_s: u32,
    /// Most entries one sender may record in one batch (one primary block).
    /// Not in the seed. Reputation only falls when a batch settles, so
    /// without it one well-reputed account could fill a whole batch with
    /// junk before its first penalty; with it, a sybil records at most this
    /// many per block. 32 leaves room for a trader in a 15-member community
    /// buying from (or settling with) every other member in one slot.
    pub max_entries_per_sender: u32,
    /// The deployment every IOR signature is bound to. The driver sets it
    /// to the primary chain it deploys on.
    pub domain: SigDomain,
}

impl IorParams {
    /// The §3.5.5 case-study parameters: rs=30, α=10, β=10, D_s=1 coin,
    /// F_p=0.5, for [`SigDomain::DEV`].
    pub fn case_study() -> Self {
        Self {
            rs: 30,
            alpha: 10,
            beta: 10,
            ds: coins(1),
            fp_permille: 500,
            max_batch: 300,
            expiry_ms: 3_600_000,
            max_dl_ms: 7 * 24 * 3_600_000,
            meter_step_s: 300,
            max_entries_per_sender: 32,
            domain: SigDomain::DEV,
        }
    }

    /// `F_p × D_s`.
    pub fn penalty(&self) -> Amount {
        Amount(self.ds.0 * u128::from(self.fp_permille.min(1000)) / 1000)
    }

    /// `(1 − F_p) × D_s`, so `penalty + burn = D_s` exactly.
    pub fn burn(&self) -> Amount {
        self.ds.saturating_sub(self.penalty())
    }

    /// The seller's *undo reserve*, `F_p × D_s`, locked with its `D_s` by
    /// every accepted AT ([`IorParams::seller_lock`]) and paid back to the
    /// seller by every settlement of the agreement: the fine a sale paid
    /// without arbitration pays when it settles after a won claim holds
    /// its export and is undone ([`crate::exec::place_paid`]). Held in the
    /// agreement's pool, it is coin the seller cannot withdraw or lock in
    /// other agreements while the sale is open, so the fine is never
    /// escaped by emptying the free balance (issue 11, attack r8 [3]).
    pub fn undo_reserve(&self) -> Amount {
        if crate::mutants::active(crate::mutants::Mutation::UndoReserveSkipped) {
            return Amount::ZERO;
        }
        self.penalty()
    }

    /// What an accepted AT locks from its seller: `D_s` and the undo
    /// reserve ([`IorParams::undo_reserve`]), `(1 + F_p) × D_s`.
    pub fn seller_lock(&self) -> Amount {
        Amount(self.ds.0.saturating_add(self.undo_reserve().0))
    }

    /// May a trader with this score trade?
    pub fn may_trade(&self, reputation: u32) -> bool {
        reputation > self.beta
    }
}

/// A trader's record on the IOR contracts: free coin held for trading and
/// the reputation score kept by `SC_EXE_AT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Participant {
    pub balance: Amount,
    pub reputation: u32,
}

/// An open agreement keyed by [`AgreementKey`] (AT Step 4), with the deposits of
/// AT Step 5 pooled in it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Agreement {
    pub terms: AgreementTerms,
    /// Coin locked for this agreement: `D_s + EP×EM` from the buyer and
    /// `D_s` from the seller.
    pub pool: Amount,
    /// `O_b` as the buyer recorded it on chain before `DL`
    /// ([`IorTx::Opinion`]); it takes precedence over any signature the
    /// seller carries, so a seller withholding `SIG_b` cannot make an
    /// honest buyer late (issue 11 item 3).
    pub buyer_opinion: Option<bool>,
}

/// Domain of an entry's hash ([`entry_hash`]).
pub const TAG_ENTRY: Tag = Tag("gridledger/ior/entry/v1");
/// Domain of a dispute commitment ([`dispute_digest`]).
pub const TAG_DISPUTE_COMMIT: Tag = Tag("gridledger/ior/dispute-commit/v1");

/// The hash of a dispute's method and encoded arguments, the part of a
/// [`dispute_commitment`] that names the dispute.
pub fn dispute_digest(method: &str, args: &[u8]) -> Hash32 {
    gridledger_core::codec::hash_bytes(TAG_DISPUTE_COMMIT, &borsh::to_vec(&(method, args)).unwrap_or_default())
}
/// Domain of a dispute commitment bound to its committer
/// ([`dispute_commitment`]).
pub const TAG_DISPUTE_COMMIT_BY: Tag = Tag("gridledger/ior/dispute-commit-by/v1");
/// What `commit_dispute` takes: `H(TAG_DISPUTE_COMMIT_BY, digest,
/// committer)`, a dispute's [`dispute_digest`] bound to the address that
/// will send it. It reveals neither the dispute nor (without the dispute)
/// anything a copier could use: the chain recomputes it from a dispute's
/// own bytes and its *sender*, so only the committer's own dispute finds
/// it.
pub fn dispute_commitment(digest: &Hash32, committer: &Address) -> Hash32 {
    gridledger_core::codec::hash_bytes(TAG_DISPUTE_COMMIT_BY, &dispute_commitment_preimage(digest, committer))
}
/// The bytes [`dispute_commitment`] hashes (the contract hashes the same
/// bytes with metered gas).
pub fn dispute_commitment_preimage(digest: &Hash32, committer: &Address) -> Vec<u8> {
    borsh::to_vec(&(digest, committer)).unwrap_or_default()
}
/// Domain of a TCR leaf ([`tcr_leaf_hash`]).
pub const TAG_TCR_LEAF: Tag = Tag("gridledger/ior/tcr-leaf/v1");

/// The hash of one recorded entry: what the rolling commitment chains and
/// what a TCR leaf names, so one entry can be shown to be entry `i` of a
/// batch by its TCR leaf's Merkle witness alone.
pub fn entry_hash(e: &Entry) -> Hash32 {
    gridledger_core::codec::hash_bytes(TAG_ENTRY, &borsh::to_vec(e).unwrap_or_default())
}

/// The bytes [`commit_entry`] hashes: the previous commitment, then the
/// entry's hash ([`entry_hash`]).
pub fn commitment_preimage(prev: &Hash32, entry_hash: &Hash32) -> Vec<u8> {
    let mut v = prev.as_bytes().to_vec();
    v.extend_from_slice(entry_hash.as_bytes());
    v
}

/// The rolling commitment of a batch after appending `e` (thesis Fig 3-7,
/// issue 11): `c₀ = 0`, `cᵢ₊₁ = H(cᵢ ‖ H(eᵢ))`. `SC_DS_*` keep only this and a
/// count on chain; the entries themselves are the block data of the
/// recording transactions, and whoever needs them (executors, validators,
/// `finalize`, a disputer) reads them from the blocks and brings them (or
/// their hashes), checked against the commitment.
pub fn commit_entry(prev: &Hash32, e: &Entry) -> Hash32 {
    gridledger_core::codec::hash_bytes(TAG_BATCH_DATA, &commitment_preimage(prev, &entry_hash(e)))
}

/// The commitment of a whole list of entries.
pub fn commit_entries(es: &[Entry]) -> Hash32 {
    es.iter().fold(Hash32::ZERO, |c, e| commit_entry(&c, e))
}

/// Domain of the hash of a leaf's inputs ([`TcrLeaf::posted`]).
pub const TAG_TCR_INPUTS: Tag = Tag("gridledger/ior/tcr-inputs/v1");

/// An executor's full leaf for one entry (issue 11, thesis §3.3.3): the
/// verdict and effects on entry `tcr.index` and the inputs the executor
/// computed it from: the slice of IOR state that entry reads, as the
/// entries before it in the batch left it ([`crate::exec::leaf_inputs`]). The
/// batch's TCR tree is built over [`PostedLeaf`]s, which carry the inputs'
/// hash; a disputer brings the inputs themselves, and the chain
/// re-executes that one entry on them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct TcrLeaf {
    pub pre: crate::exec::PreState,
    pub tcr: Tcr,
    /// The state root after this entry's effects
    /// ([`crate::state::fill_post_roots`]; zero until filled).
    pub post_root: Hash32,
}

impl TcrLeaf {
    /// What `sc_cr` posts for this leaf.
    pub fn posted(&self) -> PostedLeaf {
        PostedLeaf { pre_hash: inputs_hash(&self.pre), tcr: self.tcr.clone(), post_root: self.post_root }
    }
}

/// The hash of a leaf's inputs.
pub fn inputs_hash(pre: &crate::exec::PreState) -> Hash32 {
    hash_tagged(TAG_TCR_INPUTS, pre)
}

/// A leaf as posted with `sc_cr` and hashed into the TCR root: the hash of
/// its inputs and the TCR. Small (the inputs stay with the executor and
/// whoever recomputes them), so `sc_cr` and `finalize` carry about 150
/// bytes per entry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PostedLeaf {
    pub pre_hash: Hash32,
    pub tcr: Tcr,
    /// The state root after the entry's effects: the pre-root of the next
    /// entry, the batch's post-state root for the last (issue 11, per-entry
    /// state disputes: `dispute_state`).
    pub post_root: Hash32,
}

/// The hash of a posted leaf, bound to the deployment, the batch and the
/// entry's hash: a leaf (and its witness) of another chain, contract or
/// batch, or for another entry, proves nothing here.
pub fn tcr_leaf_hash(d: &SigDomain, batch: u64, entry_hash: &Hash32, leaf: &PostedLeaf) -> Hash32 {
    hash_tagged(TAG_TCR_LEAF, &(d, batch, entry_hash, leaf))
}

/// The TCR root the executor posts with `sc_cr`: the Merkle root
/// ([`gridledger_core::merkle`]) over the batch's posted leaves in entry order.
pub fn tcr_root(d: &SigDomain, batch: u64, entry_hashes: &[Hash32], leaves: &[PostedLeaf]) -> Hash32 {
    let hs: Vec<Hash32> = entry_hashes.iter().zip(leaves).map(|(e, l)| tcr_leaf_hash(d, batch, e, l)).collect();
    gridledger_core::merkle::merkle_root(&hs)
}

/// The Merkle witness of leaf `index` of a batch's TCR tree.
pub fn tcr_proof(
    d: &SigDomain,
    batch: u64,
    entry_hashes: &[Hash32],
    leaves: &[PostedLeaf],
    index: usize,
) -> Option<gridledger_core::merkle::MerkleProof> {
    let hs: Vec<Hash32> = entry_hashes.iter().zip(leaves).map(|(e, l)| tcr_leaf_hash(d, batch, e, l)).collect();
    gridledger_core::merkle::MerkleTree::new(&hs).proof(index)
}

/// One recorded IOR transaction: the ledger-authenticated sender and block
/// time of a successful `SC_DS_*` call and its argument. Not stored by the
/// contract (only [`commit_entry`]'s rolling commitment is); rebuilt from
/// the block that recorded it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Entry {
    /// The ledger-authenticated sender.
    pub sender: Address,
    /// Block time at which the primary chain recorded it.
    pub recorded_at: Timestamp,
    pub tx: IorTx,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum IorTx {
    At(AgreementTx),
    St(SettlementTx),
    /// An ST recorded with the number of grid slots after its delivery
    /// period over which its won arbitration may re-allocate the seller's
    /// earlier won claims (`sc_ds_st_reach`; at most
    /// [`crate::exec::MAX_REACH_SLOTS`] count, more read as that many).
    /// [`IorTx::St`] reads its period's slots only; a seller that settles a
    /// sale *before* an earlier-ending one it overlaps names here how far
    /// its longer sales reach, so their claims can move off the slots the
    /// new one needs ([`crate::exec::realloc`]). Neither the meter nor the
    /// buyer signs it: it only widens what the claim reads (and the records
    /// the entry counts against the batch's budget). In every other
    /// respect the same ST.
    StReach(SettlementTx, u32),
    /// The buyer's own `O_b`, recorded by the buyer before `DL`.
    Opinion(BuyerOpinion),
    /// The buyer closes an agreement whose seller sent no ST by
    /// `DL + expiry_ms`.
    Expire(AgreementTerms),
}

/// `O_b` submitted on chain by the buyer itself (`sc_ds_ob`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BuyerOpinion {
    pub terms: AgreementTerms,
    pub ob: bool,
}

impl IorTx {
    /// ATs form the `SC_CR_AT` group of a batch; STs, opinions and
    /// expiries the `SC_CR_ST` group.
    pub fn is_at(&self) -> bool {
        matches!(self, IorTx::At(_))
    }
    pub fn terms(&self) -> &AgreementTerms {
        match self {
            IorTx::At(a) => &a.terms,
            IorTx::St(s) | IorTx::StReach(s, _) => &s.terms,
            IorTx::Opinion(o) => &o.terms,
            IorTx::Expire(t) => t,
        }
    }

    /// An ST and its re-allocation reach (0 for [`IorTx::St`]).
    pub fn settlement(&self) -> Option<(&SettlementTx, u32)> {
        match self {
            IorTx::St(s) => Some((s, 0)),
            IorTx::StReach(s, r) => Some((s, *r)),
            _ => None,
        }
    }
}

/// Why `SC_EXE_AT` discards an AT (Steps 1–3, then Step 6).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, thiserror::Error)]
pub enum AtRejection {
    #[error("AT sender {sender} is not the buyer ADDR_b {buyer} (AT step 1)")]
    WrongSender { sender: Address, buyer: Address },
    #[error("EP/EM are not signed by the seller (AT step 2)")]
    NotSignedBySeller,
    #[error("invalid terms: {0}")]
    InvalidTerms(String),
    #[error("insufficient balance of {who}: needs {needed}, has {available} (AT step 3)")]
    InsufficientBalance { who: Address, needed: Amount, available: Amount },
    #[error("reputation of {who} is {score}, not above the threshold {beta} (AT step 3)")]
    ReputationTooLow { who: Address, score: u32, beta: u32 },
    #[error("buyer {0} already has an open agreement with this seller for this delivery period")]
    AgreementOpen(Address),
    /// The delivery period ended before the AT was recorded: a replayed or
    /// stale AT (issue 11 item 6).
    #[error("delivery period ended at {dt_end}, AT recorded at {now}")]
    DeliveryPassed { dt_end: Timestamp, now: Timestamp },
    /// `DL − DT_end` exceeds [`IorParams::max_dl_ms`] (issue 11: an
    /// unbounded deadline holds the buyer's coin open for ever).
    #[error("deadline DL {dl} is more than {max_ms} ms after the end of DT {dt_end}")]
    DeadlineTooLate { dl: Timestamp, dt_end: Timestamp, max_ms: u64 },
    /// `DT` does not start and end on the metering grid
    /// ([`IorParams::meter_step_s`]): its energy could not be claimed per
    /// grid slot, so the agreement could never be arbitrated.
    #[error("delivery period {dt_start}..{dt_end} is not on the {grid_ms} ms metering grid")]
    OffGrid { dt_start: Timestamp, dt_end: Timestamp, grid_ms: u64 },
    /// `DT_end − DT_start` exceeds [`IorParams::max_dl_ms`] (issue 11,
    /// attack r5: an unbounded period lets one ST touch unboundedly many
    /// claim slots and keeps its slots readable for ever, so claimed-slot
    /// records could never be pruned).
    #[error("delivery period {dt_start}..{dt_end} is longer than {max_ms} ms")]
    PeriodTooLong { dt_start: Timestamp, dt_end: Timestamp, max_ms: u64 },
    /// A replay, in the same batch, of an AT already refused there for its
    /// seller's reputation or balance (issue 11, attack r9 [3]): one
    /// seller signature costs its signer at most one α, so the replay
    /// penalises its sender, not the seller again
    /// ([`crate::exec::PreState::penalised_in_batch`]).
    #[error("seller {seller} was already penalised for this AT in this batch")]
    SellerPenalised { seller: Address },
}

/// Why `SC_EXE_ST` discards an ST (Step 1 → Step 5), or defers it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, thiserror::Error)]
pub enum StRejection {
    #[error("ST sender {sender} is not the seller ADDR_s {seller}")]
    WrongSender { sender: Address, seller: Address },
    #[error("no open agreement for buyer {0} (ST step 1)")]
    NoAgreement(Address),
    #[error("EP, EM, ADDR_s, DT or DL differ from the stored AT (ST step 1)")]
    FieldsMismatch,
    #[error("{got} meter readings for DT/Δt = {expected} (Δt = {step_s} s)")]
    ReadingsMismatch { expected: u64, got: u64, step_s: u32 },
    /// Arbitration (Step 4) on readings at another interval than the one
    /// the seller's meter was certified with ([`MeterRecord::step_s`]).
    /// Not in the seed; a certified meter records at one interval, so the
    /// seller may resubmit its meter's own readings.
    #[error("readings every {step_s} s, but the seller's meter is registered at {meter_step_s} s")]
    OffMeterInterval { step_s: u32, meter_step_s: u32 },
    /// No valid buyer signature yet and `DL` has not passed. The seed's
    /// Step 2 would go on to Step 3 and trust an unsigned `O_b`; we refuse
    /// instead (no reputation penalty) so a seller cannot claim `O_b = 1`
    /// for the buyer. It may resubmit after `DL`.
    #[error("no valid buyer signature and the deadline DL {dl} has not passed (now {now})")]
    AwaitingBuyerSignature { dl: Timestamp, now: Timestamp },
    /// An ST before the end of its delivery period (nothing to settle yet).
    #[error("delivery period ends at {dt_end}, ST recorded at {now}")]
    NotYetDelivered { dt_end: Timestamp, now: Timestamp },
    /// An opinion or expiry not sent by `ADDR_b`.
    #[error("sender {sender} is not the buyer ADDR_b {buyer}")]
    NotBuyer { sender: Address, buyer: Address },
    #[error("the buyer's opinion must be recorded by DL {dl} (recorded at {now})")]
    OpinionAfterDeadline { dl: Timestamp, now: Timestamp },
    #[error("the buyer already recorded its opinion")]
    OpinionAlreadyRecorded,
    #[error("the agreement may be expired from {from}, not at {now}")]
    NotExpired { from: Timestamp, now: Timestamp },
    /// The agreement was open when the batch began and an earlier entry of
    /// the same batch closed it (a late ST racing the buyer's expiry): the
    /// loser of the race did nothing wrong and is not penalised.
    #[error("the agreement was settled earlier in this batch")]
    SettledInBatch,
    /// An ST recorded after `DL + expiry_ms` (issue 11, attack r5): from
    /// then on the agreement belongs to its buyer's expiry, and no ST reads
    /// a grid slot more than `2 × max_dl_ms + expiry_ms` (period,
    /// deadline, grace) after the slot began, which bounds how long a
    /// claimed-slot record can matter. Penalty-free: the buyer's expiry
    /// penalises the silent seller once.
    #[error("the ST comes after the agreement's expiry time {from} (recorded at {now})")]
    AfterExpiry { from: Timestamp, now: Timestamp },
    /// Readings every `step_s` seconds, which does not divide the metering
    /// grid step ([`IorParams::meter_step_s`]): they cannot be summed per
    /// grid slot, so the energy the settlement pays for could not be
    /// recorded against the seller's slots ([`Effect::ClaimSold`]). No
    /// certified meter records at such an interval.
    #[error("readings every {step_s} s do not tile the {grid_s} s metering grid")]
    OffGridReadings { step_s: u32, grid_s: u32 },
    /// A settlement that pays without arbitration (`O_b = 1`, or no buyer
    /// signature after `DL`) carrying a meter signature that is not the
    /// seller's certified meter's over these readings at its interval
    /// (issue 11, attack r7): certified readings place the sale as a
    /// movable claim ([`Effect::ClaimPaid`]), so readings that claim to be
    /// certified must be. Send the ST without `meter_sig` instead.
    #[error("the readings' meter signature is not the seller's certified meter's")]
    UncertifiedReadings,
}

impl StRejection {
    /// Rejections that cost the sender no reputation: waiting for time to
    /// pass is not misbehaviour.
    pub fn penalty_free(&self) -> bool {
        matches!(
            self,
            StRejection::AwaitingBuyerSignature { .. }
                | StRejection::NotYetDelivered { .. }
                | StRejection::NotExpired { .. }
                | StRejection::SettledInBatch
                | StRejection::AfterExpiry { .. }
        )
    }
}

/// How `SC_EXE_ST` settled a valid ST.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum StSettlement {
    /// Step 2: no buyer signature after `DL`; the buyer is penalised.
    LateBuyerSignature,
    /// Step 3 (i): `O_b = 1`.
    Agreed,
    /// Step 4, `Σ P_s × Δt < EM`: the buyer wins the arbitration.
    SellerShortfall,
    /// Step 4, otherwise: the seller wins.
    SellerDelivered,
}

/// The verdict part of a TCR.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum Outcome {
    AtAccepted,
    AtRejected(AtRejection),
    StSettled(StSettlement),
    /// Also the refusal of an opinion or expiry.
    StRejected(StRejection),
    /// The buyer's `O_b` is stored with its agreement.
    OpinionRecorded,
    /// The agreement expired: the buyer refunded, the silent seller penalised.
    Expired,
}

impl Outcome {
    /// Is this a verdict on an AT (the `SC_CR_AT` group)?
    pub fn is_at(&self) -> bool {
        matches!(self, Outcome::AtAccepted | Outcome::AtRejected(_))
    }
}

/// A state change a TCR asks the primary chain to make. Amounts move
/// between traders' free balances, the pool of the agreement of the entry's
/// `ADDR_b`, and the black hole.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum Effect {
    /// AT Step 4: store the agreement under `ADDR_b`.
    Open(AgreementTerms),
    /// AT Step 5: move `amount` from `who`'s free balance into the pool.
    Lock { who: Address, amount: Amount },
    /// Pay `amount` from the pool to `to`'s free balance.
    Pay { to: Address, amount: Amount },
    /// Pay `amount` from the pool to [`BLACK_HOLE`].
    Burn(Amount),
    /// Remove the (emptied) agreement.
    Close,
    /// Reduce `who`'s reputation by `by` (saturating at 0).
    Reputation { who: Address, by: u32 },
    /// Store the buyer's `O_b` with the agreement.
    Opinion(bool),
    /// A won arbitration claims `ws` watt-seconds of the seller's metered
    /// export in `slot`: the same readings cannot win another dispute.
    Claim { slot: SlotKey, ws: u128 },
    /// A won arbitration claims `ws` watt-seconds (`EM × 3600`) of the
    /// seller's net metered export in `slots` (each with its net export
    /// in ws, [`SettlementTx::claim_split`]), allocated together with the
    /// seller's earlier won claims over `slots` and the `reach` grid slots
    /// after them ([`IorTx::StReach`], [`crate::exec::realloc`]).
    ClaimExport { slots: Vec<(SlotKey, i128)>, ws: u128, reach: u32 },
    /// (Older batches; now [`Effect::ClaimPaid`].) A settlement that pays
    /// the seller for delivery without arbitration
    /// (`Agreed`, `LateBuyerSignature`) records its `ws` (`EM × 3600`) as
    /// sold out of the seller's slots of the period (issue 11, attack r5:
    /// otherwise one export is sold twice, the second buyer's arbitration
    /// finding it unclaimed). Recorded as a demand over the whole period
    /// ([`crate::exec::record_sold`]) on each of its grid slots (`slots`;
    /// their readings are not certified and not used: attack r6), which
    /// every later arbitration overlapping the period must cover beside its
    /// own claim ([`crate::exec::realloc`]). Never fails for lack of export.
    ClaimSold { slots: Vec<(SlotKey, i128)>, ws: u128 },
    /// What a settlement that pays the seller without arbitration
    /// (`Agreed`, `LateBuyerSignature`, an expiry settled as agreed) records
    /// of its `ws` (`EM × 3600`), decided when it applies
    /// ([`crate::exec::place_paid`]; issue 11, attack r7):
    /// - placed as a movable claim beside the seller's earlier claims, as a
    ///   won arbitration ([`crate::exec::realloc`] over `slots` and the
    ///   `reach` slots after them), where the export covers it: `slots`
    ///   carry the readings' net export per grid slot when they are
    ///   certified (`certified`: the ST carries a meter signature, which
    ///   `SC_EXE_ST` verified, [`StRejection::UncertifiedReadings`]), and
    ///   only export certified earlier counts otherwise;
    /// - else, where no won claim holds energy in the sale's own slots, as
    ///   a demand over its whole period ([`crate::exec::record_sold`]), which
    ///   later arbitrations must cover;
    /// - else the seller sold export a won claim already holds (one export
    ///   sold twice by settling the disputed sale first, attack r7 [2]):
    ///   the sale is undone at the seller's cost. The seller gives back
    ///   `refund` (what the settlement's `Pay` effects paid it for the
    ///   sale) to the buyer and a further `fine` (`F_p × D_s`, out of the
    ///   undo reserve the same settlement just paid back to it,
    ///   [`IorParams::undo_reserve`]), and loses `α`. Nothing is recorded
    ///   as sold.
    ClaimPaid { slots: Vec<(SlotKey, i128)>, certified: bool, ws: u128, reach: u32, refund: Amount, fine: Amount },
}

/// A transaction computation result (§3.3.3): the verdict on one recorded
/// entry and the effects that settle it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Tcr {
    /// Index of the entry in its batch.
    pub index: u32,
    pub outcome: Outcome,
    pub effects: Vec<Effect>,
}

/// Role of a secondary-chain node (§3.3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum NodeRole {
    Executor,
    Validator,
}

/// The certificate digest an authority signs for a node (§3.3.3 (i)).
pub fn node_cert_digest(d: &SigDomain, node: &Address, role: NodeRole) -> Hash32 {
    hash_tagged(TAG_NODE_CERT, &(d, node, role))
}

/// The certificate digest an authority signs to bind `owner` to its smart
/// meter: the meter's key address and its reading interval.
pub fn meter_cert_digest(d: &SigDomain, owner: &Address, meter: &MeterRecord) -> Hash32 {
    hash_tagged(TAG_METER_CERT, &(d, owner, meter.key, meter.step_s))
}
