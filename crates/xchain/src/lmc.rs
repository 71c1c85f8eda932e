//! The "lock/mint/claim" CCDI baseline (thesis §5.6.4–5.6.5, the MAP /
//! PoS-Co family) over the same chains as Π_CCDI, so the two run side by
//! side:
//!
//! 1. each user locks its item in the baseline contract on its chain
//!    ([`LmcContract`], id [`LMC_ID`]);
//! 2. each lock is minted on the BoB with a receipt proof (`lmc_mint`):
//!    the whole item is created in BoB state;
//! 3. one transaction runs the application on the minted items (`lmc_run`):
//!    on all of the process's minted items, in the order they were minted,
//!    once — whoever sends it chooses neither a subset nor the order, and
//!    only a participant (the owner of an item minted for the process) may
//!    send it;
//! 4. each user claims its item back on its chain with a state proof of
//!    the minted item against a BoB header that chain has stored.
//!
//! That is 3X + 1 transactions in 4 phases (PoS-Co's count), and step 4
//! needs every external chain to follow the BoB: it keeps the BoB
//! validators' keys and its latest κ BoB headers (no independence), which
//! costs memory and relay transactions Π_CCDI does not have. Withholding
//! is resolved the baseline's way: after [`LMC_TIMEOUT`] BoB epochs the
//! whole process rolls back (`lmc_run` with `rollback`), every item
//! returning unchanged.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, ChainId, ContractId, Hash32, Height};
use gridledger_ledger::state::{contract_key, StateRead};
use gridledger_ledger::{
    decode_args, gas, revert, CallContext, ContractError, NativeContract, SignedTransaction, StateProof, TxKind,
    TxStatus, ViewContext,
};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

use crate::bob::{fail, BobContract, BOB_CONTRACT_ID, MAX_RELAY_BATCH};
use crate::ccdi::{run_app, CcdiApp, CcdiCct};
use crate::ccdi_run::{CcdiUser, UserBehaviour};
use crate::error::XchainError;
use crate::headers::{ChainRegistration, SealedHeader};
use crate::mbs::{BobMbs, MbsError};
use crate::scbg::{check_character, lock_id, Character, Create, Item, Lock, LockRecord, MAX_ATTACK};

/// The baseline contract's id on external chains.
pub const LMC_ID: ContractId = 43;
/// BoB epochs after which a process may roll back.
pub const LMC_TIMEOUT: u64 = 8;

/// A minted item on the BoB (step 2), updated in place by step 3.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct MintedItem {
    pub chain: ChainId,
    pub lock: Hash32,
    pub process: Hash32,
    pub data: Character,
    pub minted_at: Height,
    /// Step 3 ran (or the process rolled back): the item may be claimed.
    pub released: bool,
}

/// `lmc_run`: the application on the minted items of a process, in order.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct LmcRun {
    pub process: Hash32,
    pub locks: Vec<Hash32>,
    pub rollback: bool,
}

/// `relay_bob`: consecutive BoB headers for an external chain.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RelayBob {
    pub headers: Vec<SealedHeader>,
}

/// `claim`: the minted item's state proof against a stored BoB header.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct LmcClaim {
    pub lock: Hash32,
    pub height: Height,
    pub minted: MintedItem,
    pub proof: StateProof,
}

pub(crate) fn minted_key(lock: &Hash32) -> Vec<u8> {
    [b"m/".as_slice(), &lock.0].concat()
}
fn process_key(process: &Hash32) -> Vec<u8> {
    [b"mp/".as_slice(), &process.0].concat()
}
/// Marks `owner` a participant of `process`: an item of its was minted for it.
fn participant_key(process: &Hash32, owner: &gridledger_core::Address) -> Vec<u8> {
    [b"mw/".as_slice(), &process.0, &owner.0].concat()
}
/// The `n`-th lock minted for `process`.
fn process_lock_key(process: &Hash32, n: u64) -> Vec<u8> {
    [b"mq/".as_slice(), &process.0, &n.to_be_bytes()].concat()
}

/// The BoB's record of one baseline process: how many locks were minted
/// for it (each under its own key, in mint order, so a mint costs the same
/// however many came before), and whether step 3 (or the rollback) ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LmcProcess {
    pub minted: u64,
    pub ran: bool,
}

fn item_key(id: u64) -> Vec<u8> {
    [b"i/".as_slice(), &id.to_be_bytes()].concat()
}
fn lock_key(id: &Hash32) -> Vec<u8> {
    [b"l/".as_slice(), &id.0].concat()
}
fn bob_header_key(h: Height) -> Vec<u8> {
    [b"b/".as_slice(), &h.to_be_bytes()].concat()
}
const BOB_TIP: &[u8] = b"btip";
const NEXT: &[u8] = b"next";

/// The baseline's contract on an external chain: items, locks, the BoB's
/// headers and claims.
pub struct LmcContract {
    /// The BoB as this chain follows it (validators, κ headers kept).
    pub bob: ChainRegistration,
}

impl LmcContract {
    fn load(ctx: &mut CallContext<'_, '_>, id: u64) -> Result<Item, ContractError> {
        match ctx.read_typed::<Item>(&item_key(id))? {
            Some(i) => Ok(i),
            None => fail(XchainError::UnknownItem(id)),
        }
    }
}

impl NativeContract for LmcContract {
    fn name(&self) -> &'static str {
        "lmc"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if !ctx.value().is_zero() {
            return revert(format!("{method} takes no value"));
        }
        match method {
            "create" => {
                let a: Create = decode_args(args)?;
                let data = Character::initial(&a.name, a.attack);
                check_character(&data)?;
                if a.attack > MAX_ATTACK {
                    return fail(XchainError::BadItem(format!("attack above {MAX_ATTACK}")));
                }
                let id: u64 = ctx.read_typed(NEXT)?.unwrap_or(0);
                ctx.write_typed(NEXT, &(id + 1))?;
                let owner = ctx.caller();
                ctx.write_typed(&item_key(id), &Item { owner, data, lock: None, locks: 0 })?;
                Ok(id.to_le_bytes().to_vec())
            }
            "lock" => {
                let a: Lock = decode_args(args)?;
                let mut item = Self::load(ctx, a.item)?;
                if item.lock.is_some() {
                    return fail(XchainError::ItemLocked(a.item));
                }
                let caller = ctx.caller();
                if item.owner != caller {
                    return fail(XchainError::NotOwner { item: a.item, owner: item.owner });
                }
                if item.data != a.data {
                    return fail(XchainError::ItemMismatch);
                }
                let id = lock_id(ctx.chain_id(), a.item, &caller, &a.process, item.locks);
                item.owner = ctx.self_address();
                item.lock = Some(id);
                item.locks += 1;
                ctx.write_typed(&item_key(a.item), &item)?;
                ctx.write_typed(
                    &lock_key(&id),
                    &LockRecord { item: a.item, data: a.data, owner: caller, process: a.process },
                )?;
                Ok(id.0.to_vec())
            }
            "relay_bob" => {
                let a: RelayBob = decode_args(args)?;
                if a.headers.is_empty() || a.headers.len() > MAX_RELAY_BATCH {
                    return revert(format!("a relay carries 1 to {MAX_RELAY_BATCH} headers"));
                }
                let (mut tip, mut tip_hash) = ctx
                    .read_typed::<(Height, Hash32)>(BOB_TIP)?
                    .unwrap_or((self.bob.anchor_height, self.bob.anchor_hash));
                let mut parent_time = if tip == self.bob.anchor_height {
                    Some(self.bob.anchor_timestamp)
                } else {
                    ctx.read_typed::<gridledger_ledger::BlockHeader>(&bob_header_key(tip))?.map(|h| h.timestamp)
                };
                for sh in &a.headers {
                    ctx.charge(gas::ECRECOVER * self.bob.seal_checks(&sh.seal))?;
                    self.bob.check_next_after(tip, &tip_hash, parent_time, sh)?;
                    parent_time = Some(sh.header.timestamp);
                    tip = sh.header.height;
                    tip_hash = sh.header.hash();
                    ctx.write_typed(&bob_header_key(tip), &sh.header)?;
                    let drop = tip.saturating_sub(self.bob.kappa as u64);
                    if drop > self.bob.anchor_height {
                        ctx.delete(&bob_header_key(drop))?;
                    }
                }
                ctx.write_typed(BOB_TIP, &(tip, tip_hash))?;
                Ok(Vec::new())
            }
            "claim" => {
                let a: LmcClaim = decode_args(args)?;
                let Some(rec) = ctx.read_typed::<LockRecord>(&lock_key(&a.lock))? else {
                    return fail(XchainError::UnknownLock(a.lock));
                };
                let chain = ctx.chain_id();
                if a.minted.chain != chain || a.minted.lock != a.lock || !a.minted.released {
                    return fail(XchainError::NotALock("the minted item is not this chain's released lock".into()));
                }
                let Some(header) = ctx.read_typed::<gridledger_ledger::BlockHeader>(&bob_header_key(a.height))? else {
                    let tip = ctx.read_typed::<(Height, Hash32)>(BOB_TIP)?.map_or(self.bob.anchor_height, |t| t.0);
                    return fail(XchainError::UnknownHeader { chain: self.bob.chain_id, height: a.height, tip });
                };
                let value = borsh::to_vec(&a.minted).unwrap_or_default();
                let key = contract_key(BOB_CONTRACT_ID, &minted_key(&a.lock));
                ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.proof.siblings.len() as u64 + 1))?;
                if !a.proof.verify(&header.state_root, self.bob.state_buckets_log2, &key, Some(&value)) {
                    return fail(XchainError::BadStateProof { chain: self.bob.chain_id, height: a.height });
                }
                let mut item = Self::load(ctx, rec.item)?;
                item.data = a.minted.data.clone();
                item.owner = rec.owner;
                item.lock = None;
                ctx.write_typed(&item_key(rec.item), &item)?;
                ctx.delete(&lock_key(&a.lock))?;
                Ok(Vec::new())
            }
            other => revert(format!("lmc has no method {other}")),
        }
    }

    fn view(&self, _ctx: &ViewContext<'_>, method: &str, _args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "bob" => Ok(json!({ "bob_chain": self.bob.chain_id, "kappa": self.bob.kappa })),
            other => revert(format!("lmc has no view {other}")),
        }
    }
}

impl BobContract {
    /// Step 2: mint a locked item on the BoB with its receipt proof.
    pub(crate) fn lmc_mint(&self, ctx: &mut CallContext<'_, '_>, a: CcdiCct) -> Result<Vec<u8>, ContractError> {
        let TxKind::Call { contract, method, args, .. } = &a.lock_tx.tx.kind else {
            return fail(XchainError::NotALock("not a contract call".into()));
        };
        if a.lock_tx.tx.chain_id != a.chain || *contract != LMC_ID || method != "lock" {
            return fail(XchainError::NotALock("not the baseline's lock on this chain".into()));
        }
        let Ok(lock) = borsh::from_slice::<Lock>(args) else {
            return fail(XchainError::NotALock("undecodable lock arguments".into()));
        };
        if a.receipt.tx_hash != a.lock_tx.hash() || a.receipt.status != TxStatus::Success {
            return fail(XchainError::NotALock("the receipt is not a successful execution of this transaction".into()));
        }
        let Ok(id) = <[u8; 32]>::try_from(a.receipt.output.as_slice()).map(Hash32) else {
            return fail(XchainError::NotALock("the receipt carries no lock id".into()));
        };
        if ctx.read(&minted_key(&id))?.is_some() {
            return fail(XchainError::AlreadyStored { chain: a.chain, item: lock.item });
        }
        let header = self.final_header(ctx, a.chain, a.height)?;
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.proof.siblings.len() as u64 + 2))?;
        let ok =
            a.proof.leaf_count == header.tx_count as u64 && a.proof.verify(&a.receipt.hash(), &header.receipt_root);
        if !ok && !self.skips_proof() {
            return fail(XchainError::BadReceiptProof { chain: a.chain, height: a.height });
        }
        // A lock minted after step 3 ran joins nothing: it is released
        // unchanged at once, so its owner claims it back.
        let mut p: LmcProcess = ctx.read_typed(&process_key(&lock.process))?.unwrap_or_default();
        let m = MintedItem {
            chain: a.chain,
            lock: id,
            process: lock.process,
            data: lock.data,
            minted_at: ctx.height(),
            released: p.ran,
        };
        ctx.write_typed(&minted_key(&id), &m)?;
        if !p.ran {
            let owner = participant_key(&lock.process, &a.lock_tx.sender());
            if ctx.read(&owner)?.is_none() {
                ctx.write(&owner, vec![1])?;
            }
            ctx.write_typed(&process_lock_key(&lock.process, p.minted), &id)?;
            p.minted += 1;
            ctx.write_typed(&process_key(&lock.process), &p)?;
        }
        Ok(Vec::new())
    }

    /// Step 3: the application on the minted items (or the rollback).
    ///
    /// Decision (the baseline's protocol runs the application once over
    /// the process's items): `locks` must name exactly the process's
    /// minted items, each once, and they run in mint order, so the caller
    /// — anyone may send it — decides neither who battles nor in which
    /// order; the process then closes (a second run is refused, a later
    /// mint is released unchanged).
    ///
    /// Decision (attack r26 [1]): only a participant — the owner of an item
    /// minted for the process (its lock's sender) — may send it
    /// ([`XchainError::NotParticipant`] otherwise), so a stranger cannot
    /// close a process right after its first mint and leave the later
    /// mints out. The baseline names no participant set up front, so the
    /// contract cannot tell which mints are still due: a participant that
    /// runs step 3 early leaves later mints out itself (they are released
    /// unchanged); the participants agree among themselves when to run it.
    pub(crate) fn lmc_run(&self, ctx: &mut CallContext<'_, '_>, a: LmcRun) -> Result<Vec<u8>, ContractError> {
        let Some(mut process) = ctx.read_typed::<LmcProcess>(&process_key(&a.process))? else {
            return fail(XchainError::UnknownProcess(a.process));
        };
        let caller = ctx.caller();
        if ctx.read(&participant_key(&a.process, &caller))?.is_none() {
            return fail(XchainError::NotParticipant(caller));
        }
        if process.ran {
            return fail(XchainError::ProcessFinished);
        }
        for l in &a.locks {
            let m: Option<MintedItem> = ctx.read_typed(&minted_key(l))?;
            if !m.is_some_and(|m| m.process == a.process && !m.released) {
                return fail(XchainError::UnknownLock(*l));
            }
        }
        let mut locks = Vec::new();
        for n in 0..process.minted {
            match ctx.read_typed::<Hash32>(&process_lock_key(&a.process, n))? {
                Some(l) => locks.push(l),
                None => return fail(XchainError::UnknownProcess(a.process)),
            }
        }
        let mut named = a.locks.clone();
        named.sort();
        named.dedup();
        let mut all = locks.clone();
        all.sort();
        if named.len() != a.locks.len() || named != all {
            return fail(XchainError::PartialRun { minted: locks.len(), named: a.locks.len() });
        }
        let mut items = Vec::with_capacity(locks.len());
        for l in &locks {
            let Some(m) = ctx.read_typed::<MintedItem>(&minted_key(l))? else {
                return fail(XchainError::UnknownLock(*l));
            };
            if a.rollback && ctx.height() < m.minted_at + LMC_TIMEOUT {
                return fail(XchainError::CcdiDeadlineNotReached {
                    deadline: m.minted_at + LMC_TIMEOUT,
                    now: ctx.height(),
                });
            }
            items.push(m);
        }
        let data: Vec<Character> = items.iter().map(|m| m.data.clone()).collect();
        let new = if a.rollback { data } else { run_app(CcdiApp::Battle, &data) };
        for (mut m, n) in items.into_iter().zip(new) {
            m.data = n;
            m.released = true;
            ctx.write_typed(&minted_key(&m.lock), &m)?;
        }
        process.ran = true;
        ctx.write_typed(&process_key(&a.process), &process)?;
        Ok(Vec::new())
    }
}

/// What one baseline process did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LmcReport {
    pub phases: u32,
    pub epochs: u64,
    /// Locks, mints, the run and claims (3X + 1 when nobody withholds).
    pub protocol_txs: usize,
    pub protocol_bytes: usize,
    /// BoB headers relayed to the external chains (the baseline's extra).
    pub relay_txs: usize,
    pub relay_bytes: usize,
    pub gas: BTreeMap<String, u64>,
    /// Whether the application ran (false: rolled back).
    pub updated: bool,
    /// Bytes each external chain keeps about the BoB (headers + validator keys).
    pub foreign_bytes_per_chain: usize,
}

impl BobMbs {
    fn lmc_call<A: BorshSerialize>(
        &self,
        chain: ChainId,
        key: &KeyPair,
        method: &str,
        args: &A,
    ) -> Result<SignedTransaction, MbsError> {
        self.external_call(chain, LMC_ID, key, method, args, Amount::ZERO, crate::ccdi_run::SC_BG_TX_GAS)
    }

    /// A new character in the baseline contract of `chain`.
    pub fn lmc_create_item(&mut self, chain: ChainId, key: &KeyPair, name: &str, attack: u64) -> Result<u64, MbsError> {
        let tx = self.lmc_call(chain, key, "create", &Create { name: name.into(), attack })?;
        let r = self.chain_run(chain, &tx)?;
        let b: [u8; 8] = r.output.try_into().map_err(|_| MbsError::Missing("item id".into()))?;
        Ok(u64::from_le_bytes(b))
    }

    /// The baseline contract's item `id` on `chain`.
    pub fn lmc_item(&self, chain: ChainId, id: u64) -> Option<Item> {
        let v = self.externals.get(&chain)?.chain().state().get(&contract_key(LMC_ID, &item_key(id)))?;
        borsh::from_slice(&v).ok()
    }

    /// Relays the BoB headers `chain` has not stored yet.
    pub fn relay_bob_to(&mut self, chain: ChainId, rep: &mut LmcReport) -> Result<(), MbsError> {
        let stored = self
            .external(chain)?
            .chain()
            .state()
            .get(&contract_key(LMC_ID, BOB_TIP))
            .and_then(|v| borsh::from_slice::<(Height, Hash32)>(&v).ok())
            .map_or(0, |t| t.0);
        let to = self.bob.height();
        let mut h = stored + 1;
        let relayer = self.relayer.clone();
        while h <= to {
            let end = (h + MAX_RELAY_BATCH as u64 - 1).min(to);
            let mut headers = Vec::new();
            for x in h..=end {
                headers.push(self.bob.sealed_header(x)?.ok_or_else(|| MbsError::Missing(format!("BoB header {x}")))?);
            }
            let tx = self.lmc_call(chain, &relayer, "relay_bob", &RelayBob { headers })?;
            rep.relay_txs += 1;
            rep.relay_bytes += tx.to_bytes().len();
            let hash = self.external_mut(chain)?.submit(&tx)?;
            self.external_mut(chain)?.tick()?;
            let r = self.external(chain)?.receipt(&hash)?.ok_or_else(|| MbsError::Missing("relay".into()))?;
            *rep.gas.entry("relay_bob".into()).or_default() += r.gas_used;
            if let TxStatus::Reverted(reason) = r.status {
                return Err(MbsError::Refused { method: "relay_bob".into(), reason });
            }
            h = end + 1;
        }
        Ok(())
    }

    /// One lock/mint/claim process over `users` (their items live in the
    /// baseline contract); a withholding user makes it roll back.
    pub fn run_lmc(&mut self, users: &[CcdiUser], salt: u64) -> Result<LmcReport, MbsError> {
        let mut rep = LmcReport::default();
        let process = gridledger_core::codec::hash_parts(
            gridledger_core::codec::Tag("gridledger/xchain/lmc-process/v1"),
            &[&salt.to_le_bytes(), &self.bob.height().to_le_bytes()],
        );
        let start = self.epoch;
        let k = self.spec.finality.confirmations() as u64;
        // 1. Locks.
        let mut locks = Vec::new();
        for u in users {
            if u.behaviour == UserBehaviour::Withhold {
                continue;
            }
            let data = self.lmc_item(u.chain, u.item).ok_or_else(|| MbsError::Missing("item".into()))?.data;
            let tx = self.lmc_call(u.chain, &u.key, "lock", &Lock { process, item: u.item, data })?;
            rep.protocol_txs += 1;
            rep.protocol_bytes += tx.to_bytes().len();
            self.external_mut(u.chain)?.submit(&tx)?;
            locks.push((u.clone(), tx));
        }
        self.tick()?;
        rep.phases += 1;
        // 2. Mints, once each lock is final on the BoB.
        let mut lock_ids = Vec::new();
        let mut mint_hashes = Vec::new();
        for (u, tx) in &locks {
            let (height, receipt, proof) =
                self.external(u.chain)?.receipt_proof(&tx.hash())?.ok_or_else(|| MbsError::Missing("lock".into()))?;
            *rep.gas.entry("lock".into()).or_default() += receipt.gas_used;
            self.wait_final(u.chain, height)?;
            let id = Hash32(receipt.output.clone().try_into().map_err(|_| MbsError::Missing("lock id".into()))?);
            lock_ids.push((u.clone(), id));
            let cct = CcdiCct { process, chain: u.chain, height, lock_tx: tx.clone(), receipt, proof };
            let mint = self.bob_call(&u.key, "lmc_mint", &cct, Amount::ZERO);
            rep.protocol_txs += 1;
            rep.protocol_bytes += mint.to_bytes().len();
            mint_hashes.push(self.bob.submit(&mint)?);
        }
        self.tick()?;
        rep.phases += 1;
        for h in mint_hashes {
            let r = self.bob.receipt(&h)?.ok_or_else(|| MbsError::Missing("mint".into()))?;
            *rep.gas.entry("mint".into()).or_default() += r.gas_used;
            if let TxStatus::Reverted(reason) = r.status {
                return Err(MbsError::Refused { method: "lmc_mint".into(), reason });
            }
        }
        // 3. Run (everyone minted) or roll back after the timeout.
        let rollback = locks.len() < users.len();
        if rollback {
            self.ticks(LMC_TIMEOUT)?;
        }
        let run = LmcRun { process, locks: lock_ids.iter().map(|(_, l)| *l).collect(), rollback };
        // A participant sends it (attack r26 [1]): the first that minted.
        let runner = lock_ids.first().map_or_else(|| self.relayer.clone(), |(u, _)| u.key.clone());
        let tx = self.bob_call(&runner, "lmc_run", &run, Amount::ZERO);
        rep.protocol_txs += 1;
        rep.protocol_bytes += tx.to_bytes().len();
        let r = self.bob_ok(&tx)?;
        *rep.gas.entry("run".into()).or_default() += r.gas_used;
        rep.phases += 1;
        rep.updated = !rollback;
        // 4. Claims with state proofs against relayed BoB headers.
        let chains: Vec<ChainId> =
            lock_ids.iter().map(|(u, _)| u.chain).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        for c in &chains {
            self.relay_bob_to(*c, &mut rep)?;
        }
        let mut claim_hashes = Vec::new();
        for (u, id) in &lock_ids {
            let key = contract_key(BOB_CONTRACT_ID, &minted_key(id));
            let (height, proof) = self.bob.state_proof(&key);
            let minted: MintedItem =
                self.bob_record(&minted_key(id)).ok_or_else(|| MbsError::Missing("minted".into()))?;
            let tx = self.lmc_call(u.chain, &u.key, "claim", &LmcClaim { lock: *id, height, minted, proof })?;
            rep.protocol_txs += 1;
            rep.protocol_bytes += tx.to_bytes().len();
            claim_hashes.push((u.chain, self.external_mut(u.chain)?.submit(&tx)?));
        }
        self.tick()?;
        self.ticks(k)?;
        rep.phases += 1;
        for (c, h) in claim_hashes {
            let r = self.external(c)?.receipt(&h)?.ok_or_else(|| MbsError::Missing("claim".into()))?;
            *rep.gas.entry("claim".into()).or_default() += r.gas_used;
            if let TxStatus::Reverted(reason) = r.status {
                return Err(MbsError::Refused { method: "claim".into(), reason });
            }
        }
        rep.epochs = self.epoch - start;
        if let Some(c) = chains.first() {
            let prefix = contract_key(LMC_ID, b"b");
            let headers: usize = self
                .external(*c)?
                .chain()
                .state()
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| k.len() + v.len())
                .sum();
            rep.foreign_bytes_per_chain = headers + 33 * self.bob.chain().genesis().validators.len();
        }
        Ok(rep)
    }
}
