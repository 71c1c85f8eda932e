//! SC_BG (thesis Table 5-2, §5.5.1–5.5.4): the battle-game contract each
//! external chain BC_i runs for CCDI. It creates and holds state data items
//! (game characters), locks an item by transferring it to the BoB group's
//! threshold account `TPK_Addr_i` (Phase 1, Eq. 5.5), and updates all of
//! the chain's locked items of a process in place with one transaction
//! carrying one threshold signature (Phase 3, Eq. 5.7 and Eq. 5.8).
//!
//! `TPK_Addr_i` on a chain that runs SC_BG is SC_BG's own account: items
//! locked to PK and coin sent to it (Π_CCTC's ordinary transfers) move out
//! only on the group's threshold signature — items by a settlement, coin by
//! a release order the BoB recorded when the claimed tokens were burned
//! there ([`ScBgContract`]'s `release`). That is spending from `TPK_Addr_i`.
//!
//! Independence (Theorem 5.4): SC_BG knows only the group public key PK
//! (its configuration, like a registered account key) and its own items;
//! it stores no header, root or key of any other chain and checks nothing
//! but PK's signature.
//!
//! Decisions where the seed is silent:
//! - The key-value record `⟨H(Trans_Ux), (SD_x, PK_x^i)⟩` is keyed by a lock
//!   id that hashes the chain, the item, its owner, the process and the
//!   item's lock counter ([`lock_id`]): a native contract does not see its
//!   transaction's hash, and the lock id is unique per lock in the same way.
//! - The settlement a threshold signature covers binds the BoB chain and
//!   its genesis, this chain and its genesis, SC_BG's id, the process and
//!   every `(lock, new item)` pair ([`Settlement::message`]); a replay finds its lock records deleted and is
//!   refused ([`XchainError::UnknownLock`]).
//! - Unlocking an item unchanged (Case 2*, Eq. 5.8) is a settlement whose
//!   new item equals the locked one.
//! - TS verification is charged 113,000 gas: Ethereum's BN254 pairing
//!   precompile for two pairs (45,000 + 2 · 34,000), the seed's Table 5-5.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{encode, hash_tagged, Tag};
use gridledger_core::{Address, ChainId, ContractId, Hash32};
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use gridledger_threshold::{GroupKey, Signature};
use serde::Serialize;
use serde_json::json;

use crate::bob::ReleaseOrder;
use crate::error::XchainError;
use crate::threshold::{Instance, Statement, STATEMENT_DOMAIN};

/// SC_BG's id on external chains that take part in CCDI.
pub const SC_BG_ID: ContractId = 42;
/// Domain of the threshold signature on a settlement.
pub const SETTLE_DOMAIN: &[u8] = b"gridledger/xchain/ccdi-settlement/v1";
/// Domain of lock ids.
pub const LOCK_ID: Tag = Tag("gridledger/xchain/ccdi-lock/v1");
/// Gas of verifying one threshold signature (Table 5-5: 113,000).
pub const TS_VERIFY_GAS: u64 = 113_000;
/// Longest character name.
pub const MAX_NAME: usize = 32;
/// Largest attack value a new character may have.
pub const MAX_ATTACK: u64 = 1_000;
/// Most items one settlement may update.
pub const MAX_SETTLEMENT: usize = 512;

/// The most bytes one settlement entry takes in calldata: the lock id (32),
/// the name's length (4) and at most [`MAX_NAME`] bytes, attack and
/// experience (8 + 8).
const ENTRY_BYTES: u64 = 32 + 4 + MAX_NAME as u64 + 8 + 8;
/// The most 32-byte words of a lock record (`item` 8, a character of at
/// most 4 + [`MAX_NAME`] + 16, `owner` 20, `process` 32: 112 bytes) and of
/// a locked item (`owner` 20, the character, `Some(lock)` 33, `locks` 8:
/// 113 bytes): 4 each; an unlocked item (81 bytes) is 3.
const RECORD_WORDS: u64 = 4;
const ITEM_WORDS: u64 = 4;
const UNLOCKED_ITEM_WORDS: u64 = 3;
/// The most gas `settle` spends per entry under the ledger's schedule
/// ([`gridledger_ledger::gas`]), every calldata byte non-zero: the entry's
/// calldata, reading its lock record and its item, rewriting the item and
/// deleting the record — 29,744 gas — plus an eighth for margin (attack
/// r26 [2]: a fixed 5,000,000 limit ran out from about 165 items).
pub const SETTLE_ITEM_GAS: u64 = {
    use gridledger_ledger::gas::{CALLDATA_NONZERO, SLOAD, SSTORE_RESET};
    let worst = ENTRY_BYTES * CALLDATA_NONZERO
        + (RECORD_WORDS + ITEM_WORDS) * SLOAD
        + UNLOCKED_ITEM_WORDS * SSTORE_RESET
        + SSTORE_RESET;
    crate::mbs::with_margin(worst)
};
/// The most gas `settle` spends besides its entries: the transaction base,
/// the method name's and the fixed arguments' calldata (chain ids, contract,
/// process, two lengths and a signature of at most 192 bytes), the call,
/// the threshold signature's check ([`TS_VERIFY_GAS`]) and the event (at
/// most 128 attribute bytes) — 142,438 gas — plus an eighth for margin.
pub const SETTLE_BASE_GAS: u64 = {
    use gridledger_ledger::gas::{CALL, CALLDATA_NONZERO, LOG_BASE, LOG_BYTE, LOG_TOPIC, TX_BASE};
    let fixed_bytes: u64 = 6 + 4 + 4 + 4 + 32 + 4 + 4 + 192;
    let worst = TX_BASE + fixed_bytes * CALLDATA_NONZERO + CALL + TS_VERIFY_GAS + LOG_BASE + LOG_TOPIC + 128 * LOG_BYTE;
    crate::mbs::with_margin(worst)
};

/// A gas limit that pays for a `settle` of `entries` items whatever their
/// contents: [`SETTLE_BASE_GAS`] plus [`SETTLE_ITEM_GAS`] per item.
pub fn settle_gas(entries: usize) -> u64 {
    SETTLE_BASE_GAS.saturating_add(SETTLE_ITEM_GAS.saturating_mul(entries as u64))
}

/// The most entries one `settle` may carry on a chain whose transactions
/// may have at most `max_gas` gas: what [`settle_gas`] pays for within
/// `max_gas`, at most [`MAX_SETTLEMENT`] (whose 512 entries take at most
/// 43 KiB, within a transaction's 64 KiB) and at least one.
pub fn settle_items_per_tx(max_gas: u64) -> usize {
    let fits = max_gas.saturating_sub(SETTLE_BASE_GAS) / SETTLE_ITEM_GAS;
    (fits.min(MAX_SETTLEMENT as u64) as usize).max(1)
}

/// A state data item's metadata: a game character (§5.5).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Character {
    pub name: String,
    pub attack: u64,
    pub experience: u64,
}

impl Character {
    /// A PvP score: attack plus experience.
    pub fn score(&self) -> u128 {
        self.attack as u128 + self.experience as u128
    }

    /// A newly initialised character (S_SDM's `\overline{SD}_x`).
    pub fn initial(name: &str, attack: u64) -> Self {
        Self { name: name.to_string(), attack, experience: 0 }
    }
}

/// An item as SC_BG stores it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Item {
    pub owner: Address,
    pub data: Character,
    /// The lock holding it, if any (then `owner` is `TPK_Addr_i`).
    pub lock: Option<Hash32>,
    /// How many times it has been locked (makes every lock id unique).
    pub locks: u64,
}

/// The value of the key-value record `⟨lock, (SD_x, PK_x^i)⟩`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct LockRecord {
    pub item: u64,
    pub data: Character,
    pub owner: Address,
    pub process: Hash32,
}

/// `create`: a new character for the caller.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Create {
    pub name: String,
    pub attack: u64,
}

/// `lock`: `Trans_Ux = ⟨SD_x, PK_x^i, PK, SC_BG⟩` (Eq. 5.5) for a process.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Lock {
    pub process: Hash32,
    pub item: u64,
    /// SD_x as the owner states it; must equal the stored item.
    pub data: Character,
}

/// What one threshold signature settles on one chain (`S_i` with `S_xc`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Settlement {
    pub bob_chain: ChainId,
    pub chain: ChainId,
    pub contract: ContractId,
    pub process: Hash32,
    /// `(lock id, SD_x^new)`, sorted by lock id.
    pub entries: Vec<(Hash32, Character)>,
}

impl Settlement {
    /// The bytes the committee signs for the deployment `instance` (the
    /// BoB's and the target chain's genesis): a settlement signed for one
    /// deployment never verifies on another with the same chain ids.
    pub fn message(&self, instance: &Instance) -> Vec<u8> {
        encode(&(instance, self))
    }
}

/// `settle`: `Trans_Si = ⟨S_i, TS, S_xc, SC_BG⟩` (Eq. 5.7) or `Trans_Rx*` (Eq. 5.8).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Settle {
    pub settlement: Settlement,
    /// The group's signature, canonical bytes.
    pub signature: Vec<u8>,
}

/// The lock id of the `locks`-th lock of `item` by `owner` for `process`.
pub fn lock_id(chain: ChainId, item: u64, owner: &Address, process: &Hash32, locks: u64) -> Hash32 {
    hash_tagged(LOCK_ID, &(chain, SC_BG_ID, item, owner, process, locks))
}

fn item_key(id: u64) -> Vec<u8> {
    [b"i/".as_slice(), &id.to_be_bytes()].concat()
}
fn lock_key(id: &Hash32) -> Vec<u8> {
    [b"l/".as_slice(), &id.0].concat()
}
const NEXT_KEY: &[u8] = b"next";

/// Validates a character's fields (outside input).
pub fn check_character(c: &Character) -> Result<(), XchainError> {
    if c.name.is_empty() || c.name.len() > MAX_NAME {
        return Err(XchainError::BadItem(format!("a name has 1 to {MAX_NAME} bytes")));
    }
    Ok(())
}

pub struct ScBgContract {
    group: GroupKey,
    /// The deployment every statement this SC_BG accepts must name.
    instance: Instance,
    #[cfg(feature = "mutants")]
    pub mutation: Option<crate::ccdi::Mutation>,
}

impl ScBgContract {
    /// SC_BG with PK, the BoB validators' group key (canonical bytes), in
    /// deployment `instance` (the BoB's genesis and contract, this chain's genesis).
    pub fn new(group_key: &[u8], instance: Instance) -> Result<Self, String> {
        let group = GroupKey::from_bytes(group_key).map_err(|e| e.to_string())?;
        Ok(Self {
            group,
            instance,
            #[cfg(feature = "mutants")]
            mutation: None,
        })
    }

    fn fail<T>(e: XchainError) -> Result<T, ContractError> {
        Err(e.into())
    }

    fn load(ctx: &mut CallContext<'_, '_>, id: u64) -> Result<Item, ContractError> {
        match ctx.read_typed::<Item>(&item_key(id))? {
            Some(i) => Ok(i),
            None => Self::fail(XchainError::UnknownItem(id)),
        }
    }

    fn create(&self, ctx: &mut CallContext<'_, '_>, a: Create) -> Result<Vec<u8>, ContractError> {
        let data = Character::initial(&a.name, a.attack);
        check_character(&data)?;
        if a.attack > MAX_ATTACK {
            return Self::fail(XchainError::BadItem(format!("attack above {MAX_ATTACK}")));
        }
        let id: u64 = ctx.read_typed(NEXT_KEY)?.unwrap_or(0);
        ctx.write_typed(NEXT_KEY, &(id + 1))?;
        let owner = ctx.caller();
        ctx.write_typed(&item_key(id), &Item { owner, data, lock: None, locks: 0 })?;
        ctx.emit("item_created", vec![("item".into(), id.to_string()), ("owner".into(), owner.to_string())])?;
        Ok(id.to_le_bytes().to_vec())
    }

    fn lock(&self, ctx: &mut CallContext<'_, '_>, a: Lock) -> Result<Vec<u8>, ContractError> {
        let mut item = Self::load(ctx, a.item)?;
        let caller = ctx.caller();
        if item.lock.is_some() {
            return Self::fail(XchainError::ItemLocked(a.item));
        }
        if item.owner != caller {
            return Self::fail(XchainError::NotOwner { item: a.item, owner: item.owner });
        }
        if item.data != a.data {
            return Self::fail(XchainError::ItemMismatch);
        }
        let chain = ctx.chain_id();
        let id = lock_id(chain, a.item, &caller, &a.process, item.locks);
        // TPK_Addr_i on this chain is SC_BG's own account.
        item.owner = ctx.self_address();
        item.lock = Some(id);
        item.locks += 1;
        ctx.write_typed(&item_key(a.item), &item)?;
        let rec = LockRecord { item: a.item, data: a.data, owner: caller, process: a.process };
        ctx.write_typed(&lock_key(&id), &rec)?;
        ctx.emit("item_locked", vec![("item".into(), a.item.to_string()), ("lock".into(), id.to_string())])?;
        Ok(id.0.to_vec())
    }

    fn settle(&self, ctx: &mut CallContext<'_, '_>, a: Settle) -> Result<Vec<u8>, ContractError> {
        let s = &a.settlement;
        let chain = ctx.chain_id();
        if s.chain != chain || s.contract != ctx.contract_id() {
            return Self::fail(XchainError::SettlementWrongChain { expected: chain, got: s.chain });
        }
        if s.entries.is_empty() || s.entries.len() > MAX_SETTLEMENT {
            return revert(format!("a settlement updates 1 to {MAX_SETTLEMENT} items"));
        }
        // Check 1: every key-value record exists (and no lock twice).
        let mut seen = std::collections::BTreeSet::new();
        let mut recs = Vec::with_capacity(s.entries.len());
        for (lock, new) in &s.entries {
            if !seen.insert(*lock) {
                return Self::fail(XchainError::DuplicateLock(*lock));
            }
            check_character(new)?;
            let Some(rec) = ctx.read_typed::<LockRecord>(&lock_key(lock))? else {
                return Self::fail(XchainError::UnknownLock(*lock));
            };
            if rec.process != s.process {
                return Self::fail(XchainError::UnknownLock(*lock));
            }
            recs.push(rec);
        }
        // Check 2: PK validates TS.
        ctx.charge(TS_VERIFY_GAS)?;
        let verified = Signature::from_bytes(&a.signature)
            .and_then(|sig| self.group.verify(SETTLE_DOMAIN, &s.message(&self.instance), &sig))
            .map_err(|e| XchainError::BadThresholdSignature(e.to_string()));
        #[cfg(feature = "mutants")]
        let verified = if self.mutation == Some(crate::ccdi::Mutation::SkipSignature) { Ok(()) } else { verified };
        verified?;
        // In-place update, back to PK_x^i, record deleted.
        for ((lock, new), rec) in s.entries.iter().zip(recs) {
            let mut item = Self::load(ctx, rec.item)?;
            item.data = new.clone();
            item.owner = rec.owner;
            item.lock = None;
            ctx.write_typed(&item_key(rec.item), &item)?;
            ctx.delete(&lock_key(lock))?;
        }
        ctx.emit(
            "items_settled",
            vec![("process".into(), s.process.to_string()), ("items".into(), s.entries.len().to_string())],
        )?;
        Ok(Vec::new())
    }
}

impl ScBgContract {
    /// Spending from `TPK_Addr_i`: pays a release order the group signed
    /// (a [`Statement`] with purpose [`RELEASE_PURPOSE`], this chain and the
    /// next sequence number), out of SC_BG's account.
    fn release(&self, ctx: &mut CallContext<'_, '_>, a: Release) -> Result<Vec<u8>, ContractError> {
        let chain = ctx.chain_id();
        let expected: u64 = ctx.read_typed(RELEASE_SEQ)?.unwrap_or(0);
        if a.sequence != expected {
            return Self::fail(XchainError::ReplayedStatement { expected, got: a.sequence });
        }
        let st = release_statement(self.instance, chain, a.sequence, &a.order);
        ctx.charge(TS_VERIFY_GAS)?;
        let verified = Signature::from_bytes(&a.signature)
            .and_then(|sig| self.group.verify(STATEMENT_DOMAIN, &st.bytes(), &sig))
            .map_err(|e| XchainError::BadThresholdSignature(e.to_string()));
        #[cfg(feature = "mutants")]
        let verified = if self.mutation == Some(crate::ccdi::Mutation::SkipSignature) { Ok(()) } else { verified };
        verified?;
        let have = ctx.balance(&ctx.self_address())?;
        if have.0 < a.order.amount {
            return Self::fail(XchainError::Insufficient {
                what: "TPK_Addr_i balance",
                have: have.0,
                need: a.order.amount,
            });
        }
        ctx.write_typed(RELEASE_SEQ, &(expected + 1))?;
        ctx.pay(&a.order.to, gridledger_core::Amount(a.order.amount))?;
        ctx.emit(
            "tpk_release",
            vec![("sequence".into(), a.sequence.to_string()), ("to".into(), a.order.to.to_string())],
        )?;
        Ok(Vec::new())
    }
}

/// Purpose of the group's release statements.
pub const RELEASE_PURPOSE: &str = "tpk-release";
const RELEASE_SEQ: &[u8] = b"rseq";

/// The statement the committee signs for release `sequence` on `chain` of
/// deployment `instance`.
pub fn release_statement(instance: Instance, chain: ChainId, sequence: u64, order: &ReleaseOrder) -> Statement {
    Statement { instance, purpose: RELEASE_PURPOSE.into(), chain, sequence, payload: encode(order) }
}

/// `release`: a payment out of `TPK_Addr_i` the group signed.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Release {
    pub sequence: u64,
    pub order: ReleaseOrder,
    pub signature: Vec<u8>,
}

impl NativeContract for ScBgContract {
    fn name(&self) -> &'static str {
        "sc_bg"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if !ctx.value().is_zero() {
            return revert(format!("{method} takes no value"));
        }
        match method {
            "create" => self.create(ctx, decode_args(args)?),
            "lock" => self.lock(ctx, decode_args(args)?),
            "settle" => self.settle(ctx, decode_args(args)?),
            "release" => self.release(ctx, decode_args(args)?),
            other => revert(format!("sc_bg has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "item" => {
                let id: u64 = decode_args(args)?;
                match ctx.read_typed::<Item>(&item_key(id))? {
                    Some(i) => Ok(serde_json::to_value(i).unwrap_or_default()),
                    None => Self::fail(XchainError::UnknownItem(id)),
                }
            }
            "lock" => {
                let id: Hash32 = decode_args(args)?;
                let r = ctx.read_typed::<LockRecord>(&lock_key(&id))?;
                Ok(json!({ "lock": id, "record": r }))
            }
            other => revert(format!("sc_bg has no view {other}")),
        }
    }
}

/// Storage keys of SC_BG, for drivers and tests.
pub mod keys {
    pub fn item(id: u64) -> Vec<u8> {
        super::item_key(id)
    }
    pub fn lock(id: &gridledger_core::Hash32) -> Vec<u8> {
        super::lock_key(id)
    }
}
