//! SC_C and SC_F on the BoB (thesis Table 5-2, §5.5.2–5.5.5): the CCDI
//! process record, the cross-chain transactions `CCT_Ux` (Eq. 5.6) checked
//! against relayed headers, the battle-game application (Eq. 5.4, PvP
//! score = attack + experience), Case 1 / Case 2 / Case 2*, and the attack
//! resolution schemes S_SDM (migration, [`CcdiApp::Migrate`]) and S_MUE
//! (deposits, elimination of withholding users).
//!
//! Like SC_T and SC_MPV these are method groups of the one BoB native
//! contract ([`crate::bob::BobContract`]) with their own key prefixes, so
//! SC_C can read the header store in the same transaction.
//!
//! Decisions where the seed is silent:
//! - A process names its slots up front: `(chain, owner on that chain, BoB
//!   account of the participant)`. Anyone may open it; a participant is
//!   bound only once it pays its deposit (`ccdi_register`) before the start
//!   epoch `e_B`. The deadline is `e_B + κ · max_i κ_i` over every chain the
//!   BoB follows (BoB heights).
//! - `P_x` proves the lock *executed*: it is a Merkle proof of the lock's
//!   receipt (status success, output = the lock id) under the header's
//!   receipt root, not only of the transaction under its tx root — a
//!   reverted lock is included in a block too.
//! - A valid CCT that cannot take part (after the deadline, after the
//!   outcome is fixed, or of a participant who never paid its deposit) is
//!   stored for unlocking only (Case 2*), so no locked item is stranded.
//! - PvP (Eq. 5.4): the Y stored characters in slot order fight neighbour
//!   against neighbour (Y − 1 battles, the seed's 63,779·(Y−1) gas term),
//!   each on the scores before the round; each win adds [`WIN_EXPERIENCE`].
//! - S_MUE: a participant whose slots were not all stored by the deadline
//!   forfeits its deposit; forfeits are shared equally among the
//!   participants whose slots were all stored; what cannot be shared (the
//!   remainder of the division, or everything when nobody was honest) is
//!   burned: paid to [`FORFEIT_SINK`], an address nobody holds a key for,
//!   so coin is conserved and accounted (the seed is silent on both
//!   cases); every other deposit is paid back when the outcome is fixed.
//!   The BoB contract holds no deposit of a finished process.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::merkle::MerkleProof;
use gridledger_core::{Address, Amount, ChainId, Hash32, Height};
use gridledger_ledger::{gas, CallContext, ContractError, Receipt, SignedTransaction, TxKind, TxStatus};
use serde::Serialize;

use crate::bob::{fail, BobContract};

/// Where S_MUE's forfeits that no honest participant receives go: a burn
/// address (no key hashes to it), visible in the BoB's state.
pub const FORFEIT_SINK: Address = Address([0u8; 20]);
use crate::error::XchainError;
use crate::scbg::{self, Character, Lock, SC_BG_ID};

/// Domain of process ids.
pub const CCDI_ID: Tag = Tag("gridledger/xchain/ccdi-process/v1");
/// The most bytes one slot adds to the process record: its `Slot` (chain 4,
/// owner 20, participant 20), its participant's `registered` flag (1) and
/// its participant's place in `eliminated` (20).
const RECORD_SLOT_BYTES: u64 = 4 + 20 + 20 + 1 + 20;
/// The process record's bytes besides its slots (app, lengths, deposit, κ,
/// start, salt, deadline, counters and flags: 67), in whole words plus one
/// for rounding the slots' part: 4 words.
const RECORD_FIXED_WORDS: u64 = 4;
/// The most bytes of a stored item (`item` 8, `lock` 32, a character of at
/// most 4 + [`scbg::MAX_NAME`] + 16, `at` 8: 100): 4 words; of an outcome
/// (the character, 52 bytes): 2 words.
const STORED_ITEM_WORDS: u64 = 4;
const OUTCOME_WORDS: u64 = 2;
/// Reading and rewriting the process record, per byte of a slot's part, in
/// gas (rounded up).
const RECORD_SLOT_RW_GAS: u64 = (RECORD_SLOT_BYTES * (gas::SLOAD + gas::SSTORE_RESET)).div_ceil(32);

/// The most gas fixing a process's outcome spends per slot under the
/// ledger's schedule ([`gridledger_ledger::gas`]), 32-byte names: reading
/// its stored item (4 words), writing its outcome fresh (2 words), paying
/// its participant's deposit back ([`gas::CALL_VALUE`]) and its part of the
/// process record read and written back — 67,557 gas — plus an eighth for
/// margin. The last `ccdi_cct` (Case 1) and `ccdi_finish` (Case 2) run it
/// for every slot.
pub const OUTCOME_SLOT_GAS: u64 = {
    let worst = STORED_ITEM_WORDS * gas::SLOAD + OUTCOME_WORDS * gas::SSTORE_SET + gas::CALL_VALUE + RECORD_SLOT_RW_GAS;
    crate::mbs::with_margin(worst)
};
/// The most gas the transaction that fixes the outcome spends besides the
/// slots: the transaction base, its calldata at a ledger transaction's
/// largest size (64 KiB, every byte non-zero), the call, and the CCT's own
/// work — the stored tip and header (16 words) and the accumulator of
/// relayed headers (66 words) read, up to 2,048 proof siblings hashed, the
/// used-lock record and the stored item written fresh (1 + 4 words), the
/// record's fixed part read and written, the burn's payment and four events
/// of at most 256 bytes — plus an eighth for margin.
pub const OUTCOME_BASE_GAS: u64 = {
    let calldata = 64 * 1024 * gas::CALLDATA_NONZERO;
    let checks = (16 + 66) * gas::SLOAD
        + (gas::HASH_BASE + 2 * gas::HASH_WORD) * (2_048 + 2)
        + (1 + STORED_ITEM_WORDS) * gas::SSTORE_SET
        + RECORD_FIXED_WORDS * (gas::SLOAD + gas::SSTORE_RESET)
        + gas::CALL_VALUE
        + 4 * (gas::LOG_BASE + gas::LOG_TOPIC + 256 * gas::LOG_BYTE);
    let worst = gas::TX_BASE + calldata + gas::CALL + checks;
    crate::mbs::with_margin(worst)
};
/// The most gas fixing the outcome of a process of `slots` slots takes.
pub const fn outcome_gas(slots: usize) -> u64 {
    OUTCOME_BASE_GAS + OUTCOME_SLOT_GAS * slots as u64
}
/// Most slots one process may have: the most whose worst-case outcome
/// ([`outcome_gas`]) fits one BoB transaction ([`crate::mbs::BOB_TX_GAS`]),
/// so the last CCT (Case 1) and `ccdi_finish` (Case 2) never run out of gas
/// and strand the locked items (at 512 slots they needed ~33M). 246 under
/// today's schedule.
pub const MAX_SLOTS: usize = ((crate::mbs::BOB_TX_GAS - OUTCOME_BASE_GAS) / OUTCOME_SLOT_GAS) as usize;
/// The most gas one `ccdi_register` of a process of `slots` slots takes:
/// the transaction base, its calldata (at most 256 bytes), the call, the
/// deposit's value, the process record read and written back (its fixed
/// part and every slot's) and the event, plus an eighth for margin.
/// Registrations of a large process take more than one BoB block
/// ([`crate::mbs::BobMbs::ccdi_terms`] leaves them the blocks they need).
pub const fn register_gas(slots: usize) -> u64 {
    let worst = gas::TX_BASE
        + 256 * gas::CALLDATA_NONZERO
        + gas::CALL
        + gas::CALL_VALUE
        + RECORD_FIXED_WORDS * (gas::SLOAD + gas::SSTORE_RESET)
        + RECORD_SLOT_RW_GAS * slots as u64
        + gas::LOG_BASE
        + gas::LOG_TOPIC
        + 256 * gas::LOG_BYTE;
    crate::mbs::with_margin(worst)
}
/// Experience a PvP win adds.
pub const WIN_EXPERIENCE: u64 = 10;

/// The CCDI application SC_F runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum CcdiApp {
    /// PvP battle games between the slots' characters.
    Battle,
    /// S_SDM: slot 0's item moves into slot 1's freshly created item on a
    /// censorship-resilient chain; slot 0 gets slot 1's initial version.
    Migrate,
}

/// One item that takes part: where it lives and who brings it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Slot {
    pub chain: ChainId,
    /// PK_x^i: the owner's account on `chain`.
    pub owner: Address,
    /// The participant's BoB account (pays the deposit).
    pub participant: Address,
}

/// The terms of a CCDI process.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct CcdiTerms {
    pub app: CcdiApp,
    pub slots: Vec<Slot>,
    /// S_MUE's deposit, Token_B, per participant.
    #[serde(with = "crate::bob::amount_str")]
    pub deposit: u128,
    /// κ of the deadline `e_B + κ · max κ_i`.
    pub kappa: u64,
    /// e_B: the BoB epoch the process starts (registration closes).
    pub start: Height,
    pub salt: u64,
}

impl CcdiTerms {
    pub fn id(&self) -> Hash32 {
        hash_tagged(CCDI_ID, self)
    }

    /// The distinct participants, in first-slot order.
    pub fn participants(&self) -> Vec<Address> {
        let mut v: Vec<Address> = Vec::new();
        for s in &self.slots {
            if !v.contains(&s.participant) {
                v.push(s.participant);
            }
        }
        v
    }
}

/// SC_F's record of a process.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct ProcessRecord {
    pub terms: CcdiTerms,
    pub deadline: Height,
    /// Participants that paid their deposit, in `terms.participants()` order.
    pub registered: Vec<bool>,
    /// Slots stored in SC_F before the deadline.
    pub filled: u32,
    /// The outcome is fixed (Case 1 at the X-th CCT, or Case 2 at `ccdi_finish`).
    pub finished: bool,
    /// Case 1 (all stored in time) or Case 2.
    pub all_in_time: bool,
    /// Participants eliminated by S_MUE.
    pub eliminated: Vec<Address>,
}

/// An item stored in SC_F for a slot (its metadata and lock).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct StoredItem {
    pub item: u64,
    pub lock: Hash32,
    pub data: Character,
    /// BoB height at which it was stored.
    pub at: Height,
}

/// A CCT stored for unlocking only (Case 2*).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct LateItem {
    pub chain: ChainId,
    pub item: u64,
    pub lock: Hash32,
    pub data: Character,
}

/// `ccdi_late_lock`: an SC_BG lock for a process whose CCT can no longer
/// be stored (the BoB no longer keeps its header, [`crate::bob::kept_headers`]), with
/// the path of its block's header in the BoB's accumulator of relayed
/// headers ([`crate::mmr`]), as `refund_lock` has for coin locks.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct CcdiLateLock {
    pub cct: CcdiCct,
    pub header: gridledger_ledger::BlockHeader,
    pub header_proof: Vec<Hash32>,
}

/// `ccdi_cct_relayed`: a `CCT_Ux` (as `ccdi_cct`) whose lock's block header
/// the BoB no longer keeps, with that header and its path in the
/// accumulator of relayed headers (attack R5-2: a relay catching up drops
/// a header two BoB blocks after it became final, and a participant whose
/// CCT missed that window would otherwise forfeit its deposit). Stored
/// exactly as `ccdi_cct` stores it: in its slot if in time, else for
/// unlocking only. The path is against the accumulator as it stands when
/// the transaction executes.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct CcdiCctRelayed {
    pub cct: CcdiCct,
    pub header: gridledger_ledger::BlockHeader,
    pub header_proof: Vec<Hash32>,
}

/// `ccdi_cct`: `CCT_Ux = ⟨Trans_Ux, BC_i, P_x, SC_C⟩` (Eq. 5.6).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct CcdiCct {
    pub process: Hash32,
    pub chain: ChainId,
    pub height: Height,
    pub lock_tx: SignedTransaction,
    pub receipt: Receipt,
    /// The receipt's Merkle proof under the header's receipt root.
    pub proof: MerkleProof,
}

// ------------------------------------------------------------- storage keys

pub(crate) fn process_key(id: &Hash32) -> Vec<u8> {
    [b"f/p/".as_slice(), &id.0].concat()
}
pub(crate) fn slot_key(id: &Hash32, slot: u32) -> Vec<u8> {
    [b"f/s/".as_slice(), &id.0, &slot.to_be_bytes()].concat()
}
pub(crate) fn outcome_key(id: &Hash32, slot: u32) -> Vec<u8> {
    [b"f/o/".as_slice(), &id.0, &slot.to_be_bytes()].concat()
}
pub(crate) fn late_key(id: &Hash32, lock: &Hash32) -> Vec<u8> {
    [b"f/l/".as_slice(), &id.0, &lock.0].concat()
}
/// SC_C's record that a lock was used (double claims refused).
pub(crate) fn used_lock_key(lock: &Hash32) -> Vec<u8> {
    [b"f/u/".as_slice(), &lock.0].concat()
}

/// Keys for drivers and tests.
pub mod keys {
    use super::*;
    pub fn process(id: &Hash32) -> Vec<u8> {
        process_key(id)
    }
    pub fn slot(id: &Hash32, slot: u32) -> Vec<u8> {
        slot_key(id, slot)
    }
    pub fn outcome(id: &Hash32, slot: u32) -> Vec<u8> {
        outcome_key(id, slot)
    }
    pub fn late_prefix(id: &Hash32) -> Vec<u8> {
        [b"f/l/".as_slice(), &id.0].concat()
    }
}

/// SC_F's application (Eq. 5.4) on the stored items, in slot order:
/// returns the new version of each.
pub fn run_app(app: CcdiApp, items: &[Character]) -> Vec<Character> {
    let mut out = items.to_vec();
    match app {
        CcdiApp::Battle => {
            for k in 1..items.len() {
                let (a, b) = (&items[k - 1], &items[k]);
                match a.score().cmp(&b.score()) {
                    std::cmp::Ordering::Greater => {
                        out[k - 1].experience = out[k - 1].experience.saturating_add(WIN_EXPERIENCE)
                    }
                    std::cmp::Ordering::Less => out[k].experience = out[k].experience.saturating_add(WIN_EXPERIENCE),
                    std::cmp::Ordering::Equal => {}
                }
            }
        }
        CcdiApp::Migrate => {
            if items.len() == 2 {
                out.swap(0, 1);
            }
        }
    }
    out
}

/// A planted bug for the mutation-sensitivity check (`mutants` feature).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// SC_MPV and SC_C accept any Merkle proof.
    SkipProof,
    /// SC_C stores CCTs after the deadline as if on time.
    NoDeadline,
    /// SC_C does not record a used lock, so a second claim is stored again.
    ForgetClaims,
    /// SC_BG settles without verifying the threshold signature.
    SkipSignature,
    /// SC_MPV (and `post_nt`) take the sender's `nonce_i` as a floor, so a
    /// transfer with a later nonce pays the sender's side (attack R8-5).
    NonceFloor,
    /// SC_MPV (and `post_nt`) take the receiver's `nonce_j` as a floor, so
    /// a transfer with a later nonce pays the receiver's side (attack
    /// R10-1).
    ReceiverNonceFloor,
    /// The parties' driver gives a closed CCT's wallet triples back whether
    /// or not the payments spent their nonces (the rule before attack
    /// R11-3): a penalised party's posted NT stays valid while its nonce is
    /// named again.
    ReleaseBeforeSpent,
    /// SC_T's closing CCT_V runs as soon as the stored tip reaches the
    /// forwarding deadline, in the block that stored it (the rule before
    /// attack R13-1): a `prove` of an NT final at that header has no block
    /// to get in first.
    CloseAtTip,
    /// The parties' driver signs NTs as plain transfers, without the
    /// deadline (the rule before attack R12-4): a penalised party's posted
    /// NT may land once its account is funded again.
    NtWithoutDeadline,
    /// SC_T counts every side's forwarding window from the chain's stored
    /// tip at the first CCT_V, whatever the posted NT's deadline (the rule
    /// before attack R14-1): on a faster chain the window outlasts the NT,
    /// which the chain refuses once forwarded, and its payer is penalised.
    WindowFromTip,
    /// The BoB keeps only κ_i headers of a chain whatever its relay cap
    /// (the window before attack R15-3 raised the cap to
    /// `MAX_RATE_RATIO`): on κ = 4 a header relayed first of a full batch
    /// is dropped by the next block's relays, before a claim or proof in
    /// that block runs (attack R2-1 again).
    KeepKappa,
    /// The BoB contract names no node duty (the rule before attack r16
    /// [3], [6]): relays compete at the nodes' gas price and ordinary
    /// traffic paying more freezes the stored tips.
    NoDuties,
    /// A complete CCT's posted slots stay (the rule before attack r16
    /// [4]): the nodes' per-epoch scan grows with every CCT ever settled.
    PostedKept,
    /// The parties' driver never re-prices a pending NT (the rule before
    /// attack r16 [1]): outbid on a busy chain, it expires unincluded.
    NoRepricing,
    /// The BoB node sends every `settle` with the fixed `SC_BG_TX_GAS`
    /// whatever its size (the rule before attack r26 [2]): a settlement of
    /// a few hundred items on one chain runs out of gas.
    FixedSettleGas,
    /// SC_F opens processes of up to 512 slots whatever their outcome's
    /// gas (the bound before x14's slot bound): the largest process's last
    /// CCT and `ccdi_finish` run out of gas and its items stay locked.
    SlotsPast,
}

impl BobContract {
    fn load_process(&self, ctx: &mut CallContext<'_, '_>, id: &Hash32) -> Result<ProcessRecord, ContractError> {
        match ctx.read_typed::<ProcessRecord>(&process_key(id))? {
            Some(r) => Ok(r),
            None => fail(XchainError::UnknownProcess(*id)),
        }
    }

    pub(crate) fn ccdi_open(&self, ctx: &mut CallContext<'_, '_>, t: CcdiTerms) -> Result<Vec<u8>, ContractError> {
        let bad = |m: &str| fail(XchainError::BadProcess(m.into()));
        if t.slots.is_empty() {
            return bad("a process has at least one slot");
        }
        let slots_max = if self.admits_past_slot_bound() { 512 } else { MAX_SLOTS };
        if t.slots.len() > slots_max {
            return fail(XchainError::TooManySlots { slots: t.slots.len(), max: MAX_SLOTS });
        }
        if t.kappa == 0 || t.kappa > 1_000 {
            return bad("κ must be 1 to 1000");
        }
        if t.deposit == 0 {
            return bad("S_MUE needs a positive deposit");
        }
        if t.start <= ctx.height() {
            return fail(XchainError::RegistrationClosed { start: t.start, now: ctx.height() });
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &t.slots {
            self.reg(s.chain)?;
            if !seen.insert((s.chain, s.owner)) {
                return bad("two slots with the same owner on the same chain");
            }
        }
        if t.app == CcdiApp::Migrate
            && (t.slots.len() != 2
                || t.slots[0].chain == t.slots[1].chain
                || t.slots[0].participant != t.slots[1].participant)
        {
            return bad("a migration has two slots of one participant on two chains");
        }
        let id = t.id();
        if ctx.read(&process_key(&id))?.is_some() {
            return fail(XchainError::DuplicateProcess(id));
        }
        let max_kappa = self.config().chains.iter().map(|c| c.kappa as u64).max().unwrap_or(0);
        let deadline =
            t.kappa.checked_mul(max_kappa).and_then(|d| d.checked_add(t.start)).ok_or(XchainError::Overflow)?;
        let n = t.participants().len();
        let rec = ProcessRecord {
            terms: t,
            deadline,
            registered: vec![false; n],
            filled: 0,
            finished: false,
            all_in_time: false,
            eliminated: Vec::new(),
        };
        ctx.write_typed(&process_key(&id), &rec)?;
        ctx.emit("ccdi_open", vec![("process".into(), id.to_string()), ("deadline".into(), deadline.to_string())])?;
        Ok(id.0.to_vec())
    }

    pub(crate) fn ccdi_register(&self, ctx: &mut CallContext<'_, '_>, id: Hash32) -> Result<Vec<u8>, ContractError> {
        let mut rec = self.load_process(ctx, &id)?;
        if ctx.height() >= rec.terms.start {
            return fail(XchainError::RegistrationClosed { start: rec.terms.start, now: ctx.height() });
        }
        let who = ctx.caller();
        let Some(p) = rec.terms.participants().iter().position(|a| *a == who) else {
            return fail(XchainError::NotParticipant(who));
        };
        if rec.registered[p] {
            return fail(XchainError::AlreadyRegistered(who));
        }
        if ctx.value().0 != rec.terms.deposit {
            return fail(XchainError::WrongDeposit { need: rec.terms.deposit, got: ctx.value().0 });
        }
        rec.registered[p] = true;
        ctx.write_typed(&process_key(&id), &rec)?;
        ctx.emit("ccdi_register", vec![("process".into(), id.to_string()), ("who".into(), who.to_string())])?;
        Ok(Vec::new())
    }

    /// SC_C: checks `CCT_Ux` and stores `SD_x` in SC_F (or for unlocking only).
    pub(crate) fn ccdi_cct(&self, ctx: &mut CallContext<'_, '_>, a: CcdiCct) -> Result<Vec<u8>, ContractError> {
        self.ccdi_cct_against(ctx, a, None)
    }

    /// `ccdi_cct` against a header the BoB may no longer keep (attack R5-2).
    pub(crate) fn ccdi_cct_relayed(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: CcdiCctRelayed,
    ) -> Result<Vec<u8>, ContractError> {
        self.ccdi_cct_against(ctx, a.cct, Some((&a.header, &a.header_proof)))
    }

    fn ccdi_cct_against(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: CcdiCct,
        relayed: Option<(&gridledger_ledger::BlockHeader, &Vec<Hash32>)>,
    ) -> Result<Vec<u8>, ContractError> {
        let mut rec = self.load_process(ctx, &a.process)?;
        if ctx.height() < rec.terms.start {
            // Not yet: the lock stays claimable while its header is kept,
            // and comes back through `ccdi_late_lock` after (attack R4-12).
            return fail(XchainError::ProcessNotStarted { start: rec.terms.start, now: ctx.height() });
        }
        // Trans_Ux is a successful SC_BG lock for this process on this chain.
        let (lock, lock_id) = checked_lock(&a)?;
        let owner = a.lock_tx.sender();
        let Some(slot) = rec.terms.slots.iter().position(|s| s.chain == a.chain && s.owner == owner) else {
            return fail(XchainError::NotParticipant(owner));
        };
        // SC_C: SD_x already stored?
        let forget = {
            #[cfg(feature = "mutants")]
            {
                self.mutation == Some(Mutation::ForgetClaims)
            }
            #[cfg(not(feature = "mutants"))]
            {
                false
            }
        };
        if ctx.read(&used_lock_key(&lock_id))?.is_some() {
            return fail(XchainError::AlreadyStored { chain: a.chain, item: lock.item });
        }
        // P_x proves the lock executed in a stored, final block of BC_i.
        let header = match relayed {
            None => self.final_header(ctx, a.chain, a.height)?,
            Some((header, path)) => {
                self.relayed_header(ctx, a.chain, a.height, header, path)?;
                header.clone()
            }
        };
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.proof.siblings.len() as u64 + 2))?;
        let ok =
            a.proof.leaf_count == header.tx_count as u64 && a.proof.verify(&a.receipt.hash(), &header.receipt_root);
        if !ok && !self.skips_proof() {
            return fail(XchainError::BadReceiptProof { chain: a.chain, height: a.height });
        }
        if !forget {
            ctx.write(&used_lock_key(&lock_id), vec![1])?;
        }
        let participants = rec.terms.participants();
        let p = participants.iter().position(|x| *x == rec.terms.slots[slot].participant).unwrap_or(0);
        let in_time = ctx.height() < rec.deadline || self.ignores_deadline();
        let slot_free = ctx.read(&slot_key(&a.process, slot as u32))?.is_none();
        if in_time && !rec.finished && rec.registered[p] && slot_free {
            let stored = StoredItem { item: lock.item, lock: lock_id, data: lock.data, at: ctx.height() };
            ctx.write_typed(&slot_key(&a.process, slot as u32), &stored)?;
            rec.filled += 1;
            ctx.emit(
                "ccdi_stored",
                vec![("process".into(), a.process.to_string()), ("slot".into(), slot.to_string())],
            )?;
            if rec.filled as usize == rec.terms.slots.len() {
                // Case 1: the X-th item is stored; SC_F runs now.
                rec.all_in_time = true;
                self.ccdi_outcome(ctx, &a.process, &mut rec)?;
            }
        } else {
            let late = LateItem { chain: a.chain, item: lock.item, lock: lock_id, data: lock.data };
            ctx.write_typed(&late_key(&a.process, &lock_id), &late)?;
            ctx.emit(
                "ccdi_unlock_only",
                vec![("process".into(), a.process.to_string()), ("lock".into(), lock_id.to_string())],
            )?;
        }
        ctx.write_typed(&process_key(&a.process), &rec)?;
        Ok(Vec::new())
    }

    /// The way back for an SC_BG lock whose CCT can no longer be stored
    /// (attack R4-12): any SC_BG lock naming a known process, executed in a
    /// block of chain `i` whose header the BoB no longer keeps (stored tip
    /// ≥ its height + kept ([`crate::bob::kept_headers`]: κ_i, or more on a
    /// small κ_i); before that `RefundTooEarly`, the CCT is still
    /// possible) and proved against the accumulator of relayed headers, is
    /// stored for unlocking only (Case 2*'s late item): BoB nodes derive a
    /// settlement returning the item unchanged to its owner. A lock counts
    /// once: stored, late or refunded (`AlreadyStored`).
    ///
    /// Decision: this covers a lock made long before its process starts
    /// (SC_BG cannot know the start: external chains store nothing about
    /// the BoB) and any lock whose CCT nobody sent within κ_i epochs.
    pub(crate) fn ccdi_late_lock(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: CcdiLateLock,
    ) -> Result<Vec<u8>, ContractError> {
        let c = &a.cct;
        let rec = self.load_process(ctx, &c.process)?;
        // Decision (attack R6-4): a lock `ccdi_cct_relayed` would store in
        // its slot — its process started, unfinished and in time, its owner
        // a registered slot owner on that chain whose slot is free — is
        // stored there whoever sends it, through this method as well: only
        // a lock that can no longer fill its slot is late. Otherwise anyone
        // could front-run the BoB node's `ccdi_cct_relayed` and turn an
        // in-time lock into an unlock-only one, eliminating its owner.
        if ctx.height() >= rec.terms.start && !rec.finished && ctx.height() < rec.deadline {
            let owner = c.lock_tx.sender();
            if let Some(slot) = rec.terms.slots.iter().position(|s| s.chain == c.chain && s.owner == owner) {
                let participant = rec.terms.slots[slot].participant;
                let registered = rec
                    .terms
                    .participants()
                    .iter()
                    .position(|x| *x == participant)
                    .is_some_and(|p| rec.registered.get(p) == Some(&true));
                if registered && ctx.read(&slot_key(&c.process, slot as u32))?.is_none() {
                    return self.ccdi_cct_against(ctx, a.cct, Some((&a.header, &a.header_proof)));
                }
            }
        }
        let (lock, lock_id) = checked_lock(c)?;
        if ctx.read(&used_lock_key(&lock_id))?.is_some() {
            return fail(XchainError::AlreadyStored { chain: c.chain, item: lock.item });
        }
        let reg = self.reg(c.chain)?.clone();
        let (tip, _) = self.tip(ctx, c.chain)?;
        let height = c.height;
        let refundable_at = height.saturating_add(self.kept(&reg));
        if tip < refundable_at {
            return fail(XchainError::RefundTooEarly { chain: c.chain, height, tip, refundable_at });
        }
        let mmr: crate::mmr::Mmr = ctx.read_typed(&crate::bob::mmr_key(c.chain))?.unwrap_or_default();
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.header_proof.len() as u64 + 2))?;
        let in_mmr = a.header.chain_id == c.chain
            && a.header.height == height
            && height > reg.anchor_height
            && mmr.verify(height - reg.anchor_height - 1, &a.header.hash(), &a.header_proof);
        if !in_mmr {
            return fail(XchainError::BadHeaderProof { chain: c.chain, height });
        }
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (c.proof.siblings.len() as u64 + 2))?;
        let ok =
            c.proof.leaf_count == a.header.tx_count as u64 && c.proof.verify(&c.receipt.hash(), &a.header.receipt_root);
        if !ok {
            return fail(XchainError::BadReceiptProof { chain: c.chain, height });
        }
        ctx.write(&used_lock_key(&lock_id), vec![1])?;
        let late = LateItem { chain: c.chain, item: lock.item, lock: lock_id, data: lock.data };
        ctx.write_typed(&late_key(&c.process, &lock_id), &late)?;
        ctx.emit(
            "ccdi_unlock_only",
            vec![("process".into(), c.process.to_string()), ("lock".into(), lock_id.to_string())],
        )?;
        Ok(Vec::new())
    }

    /// Case 2: after the deadline, SC_F runs on the Y stored items and
    /// S_MUE eliminates the participants that withheld.
    pub(crate) fn ccdi_finish(&self, ctx: &mut CallContext<'_, '_>, id: Hash32) -> Result<Vec<u8>, ContractError> {
        let mut rec = self.load_process(ctx, &id)?;
        if rec.finished {
            return fail(XchainError::ProcessFinished);
        }
        if ctx.height() < rec.deadline {
            return fail(XchainError::CcdiDeadlineNotReached { deadline: rec.deadline, now: ctx.height() });
        }
        self.ccdi_outcome(ctx, &id, &mut rec)?;
        ctx.write_typed(&process_key(&id), &rec)?;
        Ok(Vec::new())
    }

    /// Fixes the outcome: SC_F on the stored items (unchanged if Y ≤ 1),
    /// then S_MUE's deposits.
    fn ccdi_outcome(
        &self,
        ctx: &mut CallContext<'_, '_>,
        id: &Hash32,
        rec: &mut ProcessRecord,
    ) -> Result<(), ContractError> {
        let mut stored = Vec::new();
        for s in 0..rec.terms.slots.len() as u32 {
            if let Some(it) = ctx.read_typed::<StoredItem>(&slot_key(id, s))? {
                stored.push((s, it));
            }
        }
        let items: Vec<Character> = stored.iter().map(|(_, it)| it.data.clone()).collect();
        let new = if items.len() > 1 && (rec.terms.app != CcdiApp::Migrate || rec.all_in_time) {
            run_app(rec.terms.app, &items)
        } else {
            items
        };
        for ((s, _), n) in stored.iter().zip(new) {
            ctx.write_typed(&outcome_key(id, *s), &n)?;
        }
        // S_MUE.
        let participants = rec.terms.participants();
        let mut honest = Vec::new();
        let mut forfeited: u128 = 0;
        for (p, who) in participants.iter().enumerate() {
            if !rec.registered[p] {
                continue;
            }
            let all = rec
                .terms
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.participant == *who)
                .all(|(i, _)| stored.iter().any(|(s, _)| *s as usize == i));
            if all {
                honest.push(*who);
            } else {
                forfeited += rec.terms.deposit;
                rec.eliminated.push(*who);
            }
        }
        let share = if honest.is_empty() { 0 } else { forfeited / honest.len() as u128 };
        for who in &honest {
            ctx.pay(who, Amount(rec.terms.deposit + share))?;
        }
        let burned = forfeited - share * honest.len() as u128;
        if burned > 0 {
            ctx.pay(&FORFEIT_SINK, Amount(burned))?;
            ctx.emit("smue_burned", vec![("process".into(), id.to_string()), ("amount".into(), burned.to_string())])?;
        }
        rec.finished = true;
        ctx.emit(
            "ccdi_outcome",
            vec![
                ("process".into(), id.to_string()),
                ("updated".into(), stored.len().to_string()),
                ("eliminated".into(), rec.eliminated.len().to_string()),
            ],
        )?;
        Ok(())
    }

    pub(crate) fn skips_proof(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutation == Some(Mutation::SkipProof)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    fn admits_past_slot_bound(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutation == Some(Mutation::SlotsPast)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    fn ignores_deadline(&self) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutation == Some(Mutation::NoDeadline)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }
}

/// The settlement of chain `chain` a BoB node derives from SC_F's state:
/// the stored items' outcome (Case 1 / Case 2), or one late item (Case 2*).
pub fn settlement(
    bob_chain: ChainId,
    chain: ChainId,
    process: Hash32,
    mut entries: Vec<(Hash32, Character)>,
) -> scbg::Settlement {
    entries.sort_by_key(|e| e.0);
    scbg::Settlement { bob_chain, chain, contract: SC_BG_ID, process, entries }
}

/// The SC_BG lock a CCDI CCT names, checked: `lock_tx` is a call of SC_BG's
/// `lock` on the CCT's chain for its process, and `receipt` is that
/// transaction's successful execution carrying the lock id.
fn checked_lock(c: &CcdiCct) -> Result<(Lock, Hash32), ContractError> {
    let not_lock = |m: &str| fail(XchainError::NotALock(m.into()));
    let TxKind::Call { contract, method, args, .. } = &c.lock_tx.tx.kind else {
        return not_lock("not a contract call");
    };
    if c.lock_tx.tx.chain_id != c.chain || *contract != SC_BG_ID || method != "lock" {
        return not_lock("not SC_BG's lock on this chain");
    }
    let Ok(lock) = borsh::from_slice::<Lock>(args) else {
        return not_lock("undecodable lock arguments");
    };
    if lock.process != c.process {
        return not_lock("the lock names another process");
    }
    if c.receipt.tx_hash != c.lock_tx.hash() || c.receipt.status != TxStatus::Success {
        return not_lock("the receipt is not a successful execution of this transaction");
    }
    let Ok(lock_id) = <[u8; 32]>::try_from(c.receipt.output.as_slice()).map(Hash32) else {
        return not_lock("the receipt carries no lock id");
    };
    Ok((lock, lock_id))
}
