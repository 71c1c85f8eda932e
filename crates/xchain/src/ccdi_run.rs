//! The participants' and BoB nodes' side of Π_CCDI (thesis §5.5, Fig 5-2,
//! Fig 5-3) over an embedded BoB-MBS: users lock their items (Phase 1),
//! users and the f+1 relay nodes of each chain's group send `CCT_Ux` with
//! receipt proofs (Phase 2), the BoB committee signs each chain's
//! settlement with 2f+1 shares and a relay node sends one transaction per
//! chain (Phase 3); Case 2 / Case 2* and S_MUE when users withhold or
//! chains censor, S_SDM for migrations.
//!
//! Relay nodes watch SC_F: a relay node sends a user's `CCT_Ux` only when
//! the lock is final on its chain and the user's own copy has not been
//! stored one epoch later, so an honest run carries exactly the seed's
//! 2X + N transactions. Byzantine relay nodes send nothing; with at most
//! f of a group's f+1 Byzantine, one honest relay node remains.

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, ChainId, Hash32};
use gridledger_ledger::state::{contract_key, StateRead};
use gridledger_ledger::{SignedTransaction, TxStatus};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::bob::BOB_CONTRACT_ID;
use crate::ccdi::{self, CcdiApp, CcdiCct, CcdiTerms, LateItem, ProcessRecord, Slot, StoredItem};
use crate::mbs::{method_of, BobMbs, MbsError};
use crate::scbg::{self, Character, Create, Item, Lock, Settle, Settlement, SC_BG_ID};

/// Gas limit of SC_BG transactions other than `settle` (whose limit is
/// sized to its entries, [`BobMbs::settle_call`]).
pub const SC_BG_TX_GAS: u64 = 5_000_000;
/// How many times the BoB node sends one settlement before it gives up:
/// a reverted `settle` is sent again (attack r26 [2]), with the locks SC_BG
/// still holds and a fresh nonce; one that reverts this often reverts for
/// a reason a resend does not change.
pub const SETTLE_ATTEMPTS: u32 = 3;

/// How a CCDI user behaves (thesis §5.3.2, §5.5.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UserBehaviour {
    Honest,
    /// Registers but never sends `Trans_Ux` (a withholding attack).
    Withhold,
    /// Locks its item but never pays its deposit (S_MUE cancels it).
    NoDeposit,
    /// Locks but never sends its `CCT_Ux` itself: the relay nodes must.
    SilentCct,
}

/// One user of a process: its key (the same on every chain and the BoB),
/// the chain and the item it brings.
#[derive(Clone, Debug)]
pub struct CcdiUser {
    pub key: KeyPair,
    pub chain: ChainId,
    pub item: u64,
    pub behaviour: UserBehaviour,
}

/// Attacks on a process beyond the users' own.
#[derive(Clone, Debug, Default)]
pub struct CcdiAttack {
    /// Chains that hold `Trans_Ux` back this many epochs (censorship).
    pub censor: BTreeMap<ChainId, u64>,
    /// Byzantine relay nodes per chain's group of f+1 (they never send).
    pub byzantine_relayers: usize,
    /// BoB members handing in bad signature shares (at most f).
    pub byzantine_members: usize,
}

/// How an item ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ItemFate {
    /// Updated in place to SC_F's output.
    Updated,
    /// Back with its owner unchanged (Case 2 with Y ≤ 1, or Case 2*).
    Unchanged,
    /// Never locked (its user withheld).
    NeverLocked,
}

#[derive(Clone, Debug, Serialize)]
pub struct ItemOutcome {
    pub chain: ChainId,
    pub item: u64,
    pub behaviour: UserBehaviour,
    pub before: Character,
    pub after: Character,
    pub fate: ItemFate,
    pub locked_now: bool,
}

/// Transactions and bytes of one process, by kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CcdiCounts {
    /// `Trans_Ux` (Phase 1).
    pub lock_txs: usize,
    pub lock_bytes: usize,
    /// `CCT_Ux` sent by users (Phase 2).
    pub cct_txs: usize,
    pub cct_bytes: usize,
    /// `CCT_Ux` sent by relay nodes for users that did not.
    pub relayed_cct_txs: usize,
    pub relayed_cct_bytes: usize,
    /// `Trans_Si` / `Trans_Rx*` (Phase 3).
    pub settle_txs: usize,
    pub settle_bytes: usize,
    /// Process set-up and Case 2's `ccdi_finish` (not in the seed's 2X + N).
    pub setup_txs: usize,
    pub setup_bytes: usize,
    pub finish_txs: usize,
    pub finish_bytes: usize,
}

impl CcdiCounts {
    /// The seed's count: locks, CCTs and settlements.
    pub fn protocol_txs(&self) -> usize {
        self.lock_txs + self.cct_txs + self.relayed_cct_txs + self.settle_txs
    }
    pub fn protocol_bytes(&self) -> usize {
        self.lock_bytes + self.cct_bytes + self.relayed_cct_bytes + self.settle_bytes
    }
}

/// What one CCDI process did.
#[derive(Clone, Debug, Serialize)]
pub struct CcdiReport {
    pub process: Hash32,
    /// Case 1 (all X stored by the deadline) or Case 2.
    pub case1: bool,
    /// Sequential transaction-execution phases from the first lock until
    /// every honest user's item was settled.
    pub phases: u32,
    /// Epochs over the same span.
    pub epochs: u64,
    pub counts: CcdiCounts,
    /// Gas by kind: `lock`, `settle` (external chains), `cct`, `finish` (BoB).
    pub gas: BTreeMap<String, u64>,
    pub items: Vec<ItemOutcome>,
    pub eliminated: usize,
    pub record: ProcessRecord,
}

impl BobMbs {
    /// A signed SC_BG call on `chain` with `key`'s next nonce.
    pub fn sc_bg_call<A: borsh::BorshSerialize>(
        &self,
        chain: ChainId,
        key: &KeyPair,
        method: &str,
        args: &A,
    ) -> Result<SignedTransaction, MbsError> {
        self.external_call(chain, SC_BG_ID, key, method, args, Amount::ZERO, SC_BG_TX_GAS)
    }

    /// The BoB node's `settle` of `args` on `chain`, signed by `key`: its
    /// gas limit pays for the settlement's entries whatever their contents
    /// ([`scbg::settle_gas`]), at most the chain's block gas limit (attack
    /// r26 [2]: a fixed limit ran out from about 165 items, and the items
    /// stayed locked). [`Self::ccdi_settlements`] splits a chain's items
    /// into settlements that limit pays for.
    pub fn settle_call(&self, chain: ChainId, key: &KeyPair, args: &Settle) -> Result<SignedTransaction, MbsError> {
        let block = self.external(chain)?.chain().config().block_gas_limit;
        let gas = scbg::settle_gas(args.settlement.entries.len()).min(block);
        #[cfg(feature = "mutants")]
        let gas = if self.spec.mutation == Some(crate::ccdi::Mutation::FixedSettleGas) { SC_BG_TX_GAS } else { gas };
        self.external_call(chain, SC_BG_ID, key, "settle", args, Amount::ZERO, gas)
    }

    /// Whether SC_BG on `chain` still holds the lock record of `lock`.
    pub fn lock_held(&self, chain: ChainId, lock: &Hash32) -> bool {
        self.external(chain)
            .is_ok_and(|c| c.chain().state().get(&contract_key(SC_BG_ID, &scbg::keys::lock(lock))).is_some())
    }

    /// Submits `tx` on `chain`, runs one epoch and returns its receipt.
    pub fn chain_run(
        &mut self,
        chain: ChainId,
        tx: &SignedTransaction,
    ) -> Result<gridledger_ledger::Receipt, MbsError> {
        let h = self.external_mut(chain)?.submit(tx)?;
        self.tick()?;
        self.external(chain)?.receipt(&h)?.ok_or_else(|| MbsError::Missing(format!("transaction {h} not included")))
    }

    /// A new character for `key` on `chain`; returns its item id.
    pub fn create_item(&mut self, chain: ChainId, key: &KeyPair, name: &str, attack: u64) -> Result<u64, MbsError> {
        let tx = self.sc_bg_call(chain, key, "create", &Create { name: name.into(), attack })?;
        let r = self.chain_run(chain, &tx)?;
        match r.status {
            TxStatus::Success => {
                let b: [u8; 8] = r.output.try_into().map_err(|_| MbsError::Missing("item id".into()))?;
                Ok(u64::from_le_bytes(b))
            }
            TxStatus::Reverted(reason) => Err(MbsError::Refused { method: "create".into(), reason }),
        }
    }

    /// SC_BG's item `id` on `chain`.
    pub fn item(&self, chain: ChainId, id: u64) -> Option<Item> {
        let c = self.externals.get(&chain)?;
        let v = c.chain().state().get(&contract_key(SC_BG_ID, &scbg::keys::item(id)))?;
        borsh::from_slice(&v).ok()
    }

    /// SC_F's record of a process.
    pub fn process(&self, id: &Hash32) -> Option<ProcessRecord> {
        self.bob_record(&ccdi::keys::process(id))
    }

    /// Every storage entry of SC_BG on `chain`, sorted ("changes nothing" checks).
    pub fn sc_bg_state(&self, chain: ChainId) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = contract_key(SC_BG_ID, &[]);
        let Some(c) = self.externals.get(&chain) else { return Vec::new() };
        let mut v: Vec<_> = c
            .chain()
            .state()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    }

    /// `CCT_Ux` for a lock transaction on its chain, once it is included.
    pub fn ccdi_cct_for(&self, process: Hash32, lock_tx: &SignedTransaction) -> Result<Option<CcdiCct>, MbsError> {
        let chain = lock_tx.tx.chain_id;
        let Some((height, receipt, proof)) = self.external(chain)?.receipt_proof(&lock_tx.hash())? else {
            return Ok(None);
        };
        Ok(Some(CcdiCct { process, chain, height, lock_tx: lock_tx.clone(), receipt, proof }))
    }

    /// The header of block `height` of `chain` and its path in the BoB's
    /// accumulator of relayed headers (built from the chain's headers up to
    /// the BoB's stored tip, as anyone holding them can).
    pub fn header_path(
        &self,
        chain: ChainId,
        height: gridledger_core::Height,
    ) -> Result<(gridledger_ledger::BlockHeader, Vec<Hash32>), MbsError> {
        self.header_path_upto(chain, height, self.bob_tip(chain))
    }

    /// [`Self::header_path`] against the accumulator once the BoB's stored
    /// tip of `chain` is `upto` (a transaction that runs after relays of the
    /// same block builds its path for the tip they leave).
    pub fn header_path_upto(
        &self,
        chain: ChainId,
        height: gridledger_core::Height,
        upto: gridledger_core::Height,
    ) -> Result<(gridledger_ledger::BlockHeader, Vec<Hash32>), MbsError> {
        let c = self.external(chain)?;
        let reg = self
            .config
            .chains
            .iter()
            .find(|r| r.chain_id == chain)
            .ok_or_else(|| MbsError::Missing(format!("chain {chain} not registered")))?;
        let anchor = reg.anchor_height;
        // The accumulator holds the final headers only (attack R6-5).
        let upto = upto.saturating_sub(reg.finality.confirmations() as u64);
        let header_of = |h| -> Result<gridledger_ledger::BlockHeader, MbsError> {
            Ok(c.sealed_header(h)?.ok_or_else(|| MbsError::Missing(format!("block {h} of chain {chain}")))?.header)
        };
        let all = (anchor + 1..=upto).map(|h| header_of(h).map(|x| x.hash())).collect::<Result<Vec<_>, _>>()?;
        let header = header_of(height)?;
        let path = crate::mmr::Mmr::prove(&all, height.saturating_sub(anchor + 1))
            .ok_or_else(|| MbsError::Missing(format!("block {height} of chain {chain} not relayed yet")))?;
        Ok((header, path))
    }

    /// `key`'s `CCT_Ux` for `cct`: `ccdi_cct` while the BoB keeps the lock's
    /// header, else `ccdi_cct_relayed` with the header's path in the
    /// accumulator of relayed headers as it stands now (attack R5-2).
    pub fn ccdi_cct_call(&self, key: &KeyPair, cct: &CcdiCct) -> Result<SignedTransaction, MbsError> {
        let kept = self
            .config
            .chains
            .iter()
            .find(|r| r.chain_id == cct.chain)
            .ok_or_else(|| MbsError::Missing(format!("chain {} not registered", cct.chain)))?
            .kept();
        if cct.height + kept > self.bob_tip(cct.chain) {
            return Ok(self.bob_call(key, "ccdi_cct", cct, Amount::ZERO));
        }
        let (header, header_proof) = self.header_path(cct.chain, cct.height)?;
        let args = ccdi::CcdiCctRelayed { cct: cct.clone(), header, header_proof };
        Ok(self.bob_call(key, "ccdi_cct_relayed", &args, Amount::ZERO))
    }

    /// `ccdi_late_lock` for `lock_tx` (an SC_BG lock for `process`), sent
    /// by `key`, once the BoB no longer keeps the lock's header.
    pub fn ccdi_late_lock_tx(
        &self,
        key: &KeyPair,
        process: Hash32,
        lock_tx: &SignedTransaction,
    ) -> Result<SignedTransaction, MbsError> {
        let cct = self
            .ccdi_cct_for(process, lock_tx)?
            .ok_or_else(|| MbsError::Missing(format!("lock {} not in a block", lock_tx.hash())))?;
        let (header, header_proof) = self.header_path(cct.chain, cct.height)?;
        Ok(self.bob_call(key, "ccdi_late_lock", &ccdi::CcdiLateLock { cct, header, header_proof }, Amount::ZERO))
    }

    /// The SC_BG lock transaction on `chain` whose receipt carries `lock`.
    fn find_lock_tx(&self, chain: ChainId, lock: &Hash32) -> Result<Option<SignedTransaction>, MbsError> {
        let c = self.external(chain)?;
        for h in 1..=c.height() {
            let Some(block) = c.chain().block(h)? else { continue };
            for tx in block.txs {
                let gridledger_ledger::TxKind::Call { contract, method, .. } = &tx.tx.kind else { continue };
                if *contract != SC_BG_ID || method != "lock" {
                    continue;
                }
                if c.receipt(&tx.hash())?.is_some_and(|r| r.output == lock.0) {
                    return Ok(Some(tx));
                }
            }
        }
        Ok(None)
    }

    /// A BoB node's duty for SC_BG locks that can no longer be stored
    /// (attack R4-12), run every epoch of a CCDI-enabled MBS: each lock of
    /// a known process that SC_C never used and whose header the BoB no
    /// longer keeps goes to `ccdi_late_lock`; once it is stored as a late
    /// item the committee signs the settlement returning the item to its
    /// owner unchanged and this node sends it to SC_BG.
    pub(crate) fn ccdi_late_lock_duties(&mut self) -> Result<(), MbsError> {
        let relayer = self.relayer.clone();
        // Settle what `ccdi_late_lock` stored.
        let mut keep = Vec::new();
        for (process, chain, lock, sent) in std::mem::take(&mut self.late_locks) {
            let locked = self.external(chain)?.chain().state().get(&contract_key(SC_BG_ID, &scbg::keys::lock(&lock)));
            if locked.is_none() {
                continue;
            }
            if let Some(h) = sent {
                match self.external(chain)?.receipt(&h)? {
                    None => {
                        keep.push((process, chain, lock, sent));
                        continue;
                    }
                    Some(r) if r.status == TxStatus::Success => continue,
                    Some(_) => {}
                }
            }
            let key = [ccdi::keys::late_prefix(&process), lock.0.to_vec()].concat();
            let Some(late) = self.bob_record::<LateItem>(&key) else {
                // Stored by SC_C after all (the process's own settlement
                // returns it), or the BoB refused what this node sent (a
                // path a relay made stale): forgotten, so it is found and
                // sent again below.
                continue;
            };
            let settlement = ccdi::settlement(self.bob.chain_id(), chain, process, vec![(late.lock, late.data)]);
            let signature = self.sign_settlement(&settlement, 0)?;
            let tx = self.settle_call(chain, &relayer, &Settle { settlement, signature })?;
            // A refusal (a full mempool there) is sent again next tick (attack R9-4).
            match self.external_mut(chain)?.submit(&tx) {
                Ok(h) => keep.push((process, chain, lock, Some(h))),
                Err(e) => {
                    self.own_refusal(e)?;
                    keep.push((process, chain, lock, None));
                }
            }
        }
        self.late_locks = keep;
        // Find the stranded locks.
        let prefix = contract_key(SC_BG_ID, &scbg::keys::lock(&Hash32([0; 32]))[..2]);
        for chain in self.chain_ids() {
            let kept = self.config.chains.iter().find(|r| r.chain_id == chain).map_or(u64::MAX, |r| r.kept());
            let records: Vec<(Hash32, scbg::LockRecord)> = self
                .external(chain)?
                .chain()
                .state()
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix) && k.len() == prefix.len() + 32)
                .filter_map(|(k, v)| {
                    let id = Hash32(k[prefix.len()..].try_into().ok()?);
                    Some((id, borsh::from_slice::<scbg::LockRecord>(v).ok()?))
                })
                .collect();
            for (lock, rec) in records {
                if self.process(&rec.process).is_none()
                    || self.lock_used_id(&lock)
                    || self.late_locks.iter().any(|(_, _, l, _)| *l == lock)
                {
                    continue;
                }
                let (tx, height) = match self.lock_txs.get(&lock) {
                    Some(found) => found.clone(),
                    None => {
                        let Some(tx) = self.find_lock_tx(chain, &lock)? else { continue };
                        let Some((height, ..)) = self.external(chain)?.receipt_proof(&tx.hash())? else { continue };
                        self.lock_txs.insert(lock, (tx.clone(), height));
                        (tx, height)
                    }
                };
                if self.bob_tip(chain) < height.saturating_add(kept) {
                    continue;
                }
                // This node's relays of the block run before what it sends
                // now: paths are for the tip they leave.
                let upto = self.relayed_tip(chain, self.external(chain)?.height());
                let (header, header_proof) = self.header_path_upto(chain, height, upto)?;
                let process = self.process(&rec.process).ok_or_else(|| MbsError::Missing("process record".into()))?;
                let started = self.bob.height() + 1 >= process.terms.start;
                let owner = tx.sender();
                let slot_owner = process.terms.slots.iter().any(|s| s.chain == chain && s.owner == owner);
                // Decision (attack R5-2): a lock of a running process whose
                // CCT missed the kept headers (a relay catching up drops a
                // header two BoB blocks after it became final) is sent as
                // that CCT, against the accumulator: stored in its slot if
                // in time, so its owner is not eliminated for the relay's
                // delay; otherwise (or before the start) for unlocking only.
                let late = if started && !process.finished && slot_owner {
                    let cct = self
                        .ccdi_cct_for(rec.process, &tx)?
                        .ok_or_else(|| MbsError::Missing(format!("lock {lock} not in a block")))?;
                    let args = ccdi::CcdiCctRelayed { cct, header, header_proof };
                    self.bob_call(&relayer, "ccdi_cct_relayed", &args, Amount::ZERO)
                } else {
                    let cct = self
                        .ccdi_cct_for(rec.process, &tx)?
                        .ok_or_else(|| MbsError::Missing(format!("lock {lock} not in a block")))?;
                    self.bob_call(
                        &relayer,
                        "ccdi_late_lock",
                        &ccdi::CcdiLateLock { cct, header, header_proof },
                        Amount::ZERO,
                    )
                };
                if self.submit_own(&late)?.is_none() {
                    // Still stranded: found and sent again next tick.
                    continue;
                }
                self.late_locks.push((rec.process, chain, lock, None));
            }
        }
        Ok(())
    }

    fn lock_used_id(&self, lock: &Hash32) -> bool {
        self.bob.chain().state().get(&contract_key(BOB_CONTRACT_ID, &[b"f/u/".as_slice(), &lock.0].concat())).is_some()
    }

    /// The settlements a BoB node derives from SC_F once the outcome is
    /// fixed: one per chain for the stored items — or, where one `settle`
    /// could not pay for them all within the chain's block gas limit,
    /// consecutive pieces (in lock order) of at most
    /// [`scbg::settle_items_per_tx`] items each — and one per late item.
    pub fn ccdi_settlements(&self, id: &Hash32) -> Vec<Settlement> {
        let Some(rec) = self.process(id) else { return Vec::new() };
        let mut out = Vec::new();
        if rec.finished {
            let mut per_chain: BTreeMap<ChainId, Vec<(Hash32, Character)>> = BTreeMap::new();
            for (s, slot) in rec.terms.slots.iter().enumerate() {
                let Some(st) = self.bob_record::<StoredItem>(&ccdi::keys::slot(id, s as u32)) else { continue };
                let Some(new) = self.bob_record::<Character>(&ccdi::keys::outcome(id, s as u32)) else { continue };
                per_chain.entry(slot.chain).or_default().push((st.lock, new));
            }
            for (chain, entries) in per_chain {
                let block = self.external(chain).map_or(0, |c| c.chain().config().block_gas_limit);
                let whole = ccdi::settlement(self.bob.chain_id(), chain, *id, entries);
                for piece in whole.entries.chunks(scbg::settle_items_per_tx(block)) {
                    out.push(Settlement { entries: piece.to_vec(), ..whole.clone() });
                }
            }
        }
        let prefix = contract_key(BOB_CONTRACT_ID, &ccdi::keys::late_prefix(id));
        for (k, v) in self.bob.chain().state().iter() {
            if !k.starts_with(&prefix) {
                continue;
            }
            if let Ok(l) = borsh::from_slice::<LateItem>(v) {
                out.push(ccdi::settlement(self.bob.chain_id(), l.chain, *id, vec![(l.lock, l.data)]));
            }
        }
        out
    }

    /// The committee's threshold signature on a settlement: every member
    /// hands in a share, the first `byzantine` a share on other bytes.
    pub fn sign_settlement(&self, s: &Settlement, byzantine: usize) -> Result<Vec<u8>, MbsError> {
        let msg = s.message(&self.instance(s.chain)?);
        let n = self.committee.set.members();
        let shares: Vec<_> = (0..n)
            .filter_map(|i| {
                let m = if i < byzantine { [msg.as_slice(), b"forged"].concat() } else { msg.clone() };
                self.committee.sign_share_raw(i, scbg::SETTLE_DOMAIN, &m).map(|sh| (i, sh))
            })
            .collect();
        let sig = self
            .committee
            .combine_raw(scbg::SETTLE_DOMAIN, &msg, &shares)
            .map_err(|e| MbsError::Missing(format!("threshold signature: {e}")))?;
        Ok(sig.to_bytes().to_vec())
    }

    /// The process terms for `users` (one slot each), starting in 3 epochs
    /// plus the BoB blocks its registrations need beyond the first: each
    /// rewrites the whole process record ([`ccdi::register_gas`]), so the
    /// registrations of a large process do not fit one block.
    pub fn ccdi_terms(&self, app: CcdiApp, users: &[CcdiUser], deposit: u128, kappa: u64, salt: u64) -> CcdiTerms {
        let payers = users.iter().map(|u| u.key.address()).collect::<BTreeSet<_>>().len() as u64;
        let extra = self.registration_blocks(payers, users.len()).saturating_sub(1);
        CcdiTerms {
            app,
            slots: users
                .iter()
                .map(|u| Slot { chain: u.chain, owner: u.key.address(), participant: u.key.address() })
                .collect(),
            deposit,
            kappa,
            start: self.bob.height() + 3 + extra,
            salt,
        }
    }

    /// How many BoB blocks `payers` registrations of a process of `slots`
    /// slots take at least: a block's ordinary lane (its gas and
    /// transactions outside the nodes' duty lane) takes a registration
    /// while a BoB transaction's gas limit ([`crate::mbs::BOB_TX_GAS`]) is
    /// left, each using at most [`ccdi::register_gas`].
    pub fn registration_blocks(&self, payers: u64, slots: usize) -> u64 {
        let c = self.bob.chain().config();
        let ordinary = 100u64.saturating_sub(c.duty_lane_percent);
        let gas = (c.block_gas_limit as u128 * ordinary as u128 / 100) as u64;
        let by_gas = gas.saturating_sub(crate::mbs::BOB_TX_GAS) / ccdi::register_gas(slots) + 1;
        let by_txs = (c.max_block_txs as u64 * ordinary / 100).max(1);
        payers.div_ceil(by_gas.min(by_txs).max(1)).max(1)
    }

    /// Opens the process and registers the deposits of the users that pay.
    pub fn ccdi_prepare(
        &mut self,
        terms: &CcdiTerms,
        users: &[CcdiUser],
        counts: &mut CcdiCounts,
    ) -> Result<Hash32, MbsError> {
        let open = self.bob_call(&self.relayer.clone(), "ccdi_open", terms, Amount::ZERO);
        counts.setup_txs += 1;
        counts.setup_bytes += open.to_bytes().len();
        self.bob_ok(&open)?;
        let id = terms.id();
        let mut paid = BTreeSet::new();
        let mut hashes = Vec::new();
        for u in users {
            if u.behaviour == UserBehaviour::NoDeposit || !paid.insert(u.key.address()) {
                continue;
            }
            let tx = self.bob_call(&u.key, "ccdi_register", &id, Amount(terms.deposit));
            counts.setup_txs += 1;
            counts.setup_bytes += tx.to_bytes().len();
            hashes.push((method_of(&tx), self.bob.submit(&tx)?));
        }
        // Registrations may take several blocks: tick until every one
        // landed, at the latest until registration closes.
        self.tick()?;
        while self.bob.height() + 1 < terms.start
            && hashes.iter().any(|(_, h)| self.bob.receipt(h).ok().flatten().is_none())
        {
            self.tick()?;
        }
        for (m, h) in hashes {
            let r = self.bob.receipt(&h)?.ok_or_else(|| MbsError::Missing("registration not included".into()))?;
            if let TxStatus::Reverted(reason) = r.status {
                return Err(MbsError::Refused { method: m, reason });
            }
        }
        while self.bob.height() + 1 < terms.start {
            self.tick()?;
        }
        Ok(id)
    }

    /// A whole CCDI process (Phases 1–3 with Case 1 / 2 / 2*, S_MUE).
    pub fn run_ccdi(
        &mut self,
        app: CcdiApp,
        users: &[CcdiUser],
        attack: &CcdiAttack,
        deposit: u128,
        kappa: u64,
        salt: u64,
    ) -> Result<CcdiReport, MbsError> {
        let mut counts = CcdiCounts::default();
        let mut gas: BTreeMap<String, u64> = BTreeMap::new();
        let befores: Vec<Character> = users
            .iter()
            .map(|u| self.item(u.chain, u.item).map(|i| i.data))
            .collect::<Option<_>>()
            .ok_or_else(|| MbsError::Missing("a user's item does not exist".into()))?;
        let terms = self.ccdi_terms(app, users, deposit, kappa, salt);
        let id = self.ccdi_prepare(&terms, users, &mut counts)?;
        let start_epoch = self.epoch;
        // Phase 1: Trans_Ux.
        let mut locks: Vec<Option<SignedTransaction>> = Vec::new();
        for (u, before) in users.iter().zip(&befores) {
            if u.behaviour == UserBehaviour::Withhold {
                locks.push(None);
                continue;
            }
            let tx =
                self.sc_bg_call(u.chain, &u.key, "lock", &Lock { process: id, item: u.item, data: before.clone() })?;
            counts.lock_txs += 1;
            counts.lock_bytes += tx.to_bytes().len();
            match attack.censor.get(&u.chain) {
                Some(d) => self.external_mut(u.chain)?.censor(tx.clone(), *d),
                None => {
                    self.external_mut(u.chain)?.submit(&tx)?;
                }
            }
            locks.push(Some(tx));
        }
        self.tick()?;
        let honest_relayers =
            (self.committee.set.members().saturating_sub(1) / 3 + 1).saturating_sub(attack.byzantine_relayers);
        let mut cct_sent: BTreeMap<usize, u64> = BTreeMap::new();
        let mut relayed: BTreeSet<usize> = BTreeSet::new();
        let mut lock_gas_done: BTreeSet<usize> = BTreeSet::new();
        // Settlements sent: (chain, locks) -> (tx hash, attempts so far).
        let mut settled: BTreeMap<(ChainId, Vec<Hash32>), (Hash32, u32)> = BTreeMap::new();
        let mut settle_hashes: Vec<(ChainId, Hash32)> = Vec::new();
        let mut cct_hashes = Vec::new();
        let mut finish_sent = false;
        let mut phase_marks: BTreeSet<&'static str> = BTreeSet::new();
        let k = self.spec.finality.confirmations() as u64;
        let mut guard = 0;
        loop {
            // Phase 2: CCT_Ux by users, and by relay nodes for those that did not.
            let rec = self.process(&id).ok_or_else(|| MbsError::Missing("process record".into()))?;
            for (x, lock) in locks.iter().enumerate() {
                let Some(lock) = lock else { continue };
                if relayed.contains(&x) && cct_sent.contains_key(&x) {
                    continue;
                }
                let Some(cct) = self.ccdi_cct_for(id, lock)? else { continue };
                if !lock_gas_done.contains(&x) {
                    *gas.entry("lock".into()).or_default() += cct.receipt.gas_used;
                    lock_gas_done.insert(x);
                }
                if cct.receipt.status != TxStatus::Success || self.bob_tip(cct.chain) < cct.height + k {
                    continue;
                }
                let u = &users[x];
                match cct_sent.get(&x) {
                    None if u.behaviour != UserBehaviour::SilentCct => {
                        let tx = self.ccdi_cct_call(&u.key, &cct)?;
                        counts.cct_txs += 1;
                        counts.cct_bytes += tx.to_bytes().len();
                        cct_hashes.push(self.bob.submit(&tx)?);
                        cct_sent.insert(x, self.epoch);
                        phase_marks.insert("cct");
                    }
                    _ => {
                        // Relay nodes: the user's copy is not stored one epoch on.
                        let waited = cct_sent.get(&x).is_none_or(|e| self.epoch > *e + 1);
                        let stored = self.lock_used(&cct)?;
                        if waited && !stored && honest_relayers > 0 {
                            let tx = self.ccdi_cct_call(&self.relayer.clone(), &cct)?;
                            counts.relayed_cct_txs += 1;
                            counts.relayed_cct_bytes += tx.to_bytes().len();
                            cct_hashes.push(self.bob.submit(&tx)?);
                            cct_sent.insert(x, self.epoch);
                            relayed.insert(x);
                            phase_marks.insert("cct");
                        }
                    }
                }
            }
            // Case 2: the deadline passed without all X stored.
            if !rec.finished && !finish_sent && self.bob.height() >= rec.deadline {
                let tx = self.bob_call(&self.relayer.clone(), "ccdi_finish", &id, Amount::ZERO);
                counts.finish_txs += 1;
                counts.finish_bytes += tx.to_bytes().len();
                let r = self.bob_ok(&tx)?;
                *gas.entry("finish".into()).or_default() += r.gas_used;
                finish_sent = true;
                phase_marks.insert("finish");
                continue;
            }
            // A reverted settlement is not done (attack r26 [2]): its gas is
            // counted, and it is derived and sent again below with the
            // locks SC_BG still holds.
            let mut attempts: BTreeMap<(ChainId, Vec<Hash32>), u32> = BTreeMap::new();
            for (key, (h, n)) in &settled {
                let reverted = self.external(key.0)?.receipt(h)?.filter(|r| r.status != TxStatus::Success);
                if let Some(r) = reverted {
                    *gas.entry("settle".into()).or_default() += r.gas_used;
                    if *n >= SETTLE_ATTEMPTS {
                        let TxStatus::Reverted(reason) = r.status else { continue };
                        return Err(MbsError::Refused { method: "settle".into(), reason });
                    }
                    attempts.insert(key.clone(), *n);
                }
            }
            for key in attempts.keys() {
                if let Some((h, _)) = settled.remove(key) {
                    settle_hashes.retain(|(c, x)| !(*c == key.0 && *x == h));
                }
            }
            // Phase 3: one settlement per chain (or its pieces, and one per
            // late item), of the locks SC_BG still holds.
            for mut s in self.ccdi_settlements(&id) {
                let key = (s.chain, s.entries.iter().map(|e| e.0).collect::<Vec<_>>());
                if settled.contains_key(&key) || honest_relayers == 0 {
                    continue;
                }
                let tried = attempts.get(&key).copied().unwrap_or(0);
                s.entries.retain(|(lock, _)| self.lock_held(s.chain, lock));
                if s.entries.is_empty() {
                    continue;
                }
                let signature = self.sign_settlement(&s, attack.byzantine_members)?;
                let chain = s.chain;
                let tx = self.settle_call(chain, &self.relayer.clone(), &Settle { settlement: s, signature })?;
                counts.settle_txs += 1;
                counts.settle_bytes += tx.to_bytes().len();
                let h = self.external_mut(chain)?.submit(&tx)?;
                settle_hashes.push((chain, h));
                phase_marks.insert(if key.1.len() == 1 && self.is_late(&id, &key.1[0]) { "late" } else { "settle" });
                settled.insert(key, (h, tried + 1));
            }
            // Done when every lock that landed is settled and nothing is pending.
            let pending_locks = locks.iter().enumerate().any(|(x, l)| {
                l.as_ref().is_some_and(|_| {
                    let u = &users[x];
                    self.item(u.chain, u.item).is_none_or(|i| i.lock.is_some()) || !lock_gas_done.contains(&x)
                })
            });
            if rec.finished && !pending_locks && settle_hashes.iter().all(|(c, h)| self.receipt_ok(*c, h)) {
                let final_ok = settle_hashes.iter().all(|(c, h)| {
                    self.external(*c)
                        .ok()
                        .and_then(|ch| ch.receipt(h).ok().flatten())
                        .is_some_and(|r| self.bob_tip(*c) >= r.height + k)
                });
                if final_ok {
                    break;
                }
            }
            self.tick()?;
            guard += 1;
            if guard > 2_000 {
                return Err(MbsError::Missing("the CCDI process did not settle".into()));
            }
        }
        let epochs = self.epoch - start_epoch;
        for h in cct_hashes {
            if let Some(r) = self.bob.receipt(&h)? {
                *gas.entry("cct".into()).or_default() += r.gas_used;
            }
        }
        for (c, h) in &settle_hashes {
            if let Some(r) = self.external(*c)?.receipt(h)? {
                *gas.entry("settle".into()).or_default() += r.gas_used;
                if let TxStatus::Reverted(reason) = r.status {
                    return Err(MbsError::Refused { method: "settle".into(), reason });
                }
            }
        }
        let record = self.process(&id).ok_or_else(|| MbsError::Missing("process record".into()))?;
        let mut items = Vec::new();
        for ((u, before), lock) in users.iter().zip(befores).zip(&locks) {
            let now = self.item(u.chain, u.item).ok_or_else(|| MbsError::Missing("item".into()))?;
            let slot = record.terms.slots.iter().position(|s| s.chain == u.chain && s.owner == u.key.address());
            let updated =
                slot.is_some_and(|s| self.bob_record::<Character>(&ccdi::keys::outcome(&id, s as u32)).is_some());
            let fate = if lock.is_none() {
                ItemFate::NeverLocked
            } else if updated {
                ItemFate::Updated
            } else {
                ItemFate::Unchanged
            };
            items.push(ItemOutcome {
                chain: u.chain,
                item: u.item,
                behaviour: u.behaviour,
                before,
                after: now.data,
                fate,
                locked_now: now.lock.is_some(),
            });
        }
        // Phases: lock, CCT, [finish], settle, [Case 2*: a late CCT, then its settlement].
        let phases = 1
            + u32::from(phase_marks.contains("cct"))
            + u32::from(phase_marks.contains("finish"))
            + u32::from(phase_marks.contains("settle"))
            + 2 * u32::from(phase_marks.contains("late"));
        Ok(CcdiReport {
            process: id,
            case1: record.all_in_time,
            phases,
            epochs,
            counts,
            gas,
            items,
            eliminated: record.eliminated.len(),
            record,
        })
    }

    fn lock_used(&self, cct: &CcdiCct) -> Result<bool, MbsError> {
        let Ok(id) = <[u8; 32]>::try_from(cct.receipt.output.as_slice()) else { return Ok(false) };
        Ok(self.bob.chain().state().get(&contract_key(BOB_CONTRACT_ID, &[b"f/u/".as_slice(), &id].concat())).is_some())
    }

    fn is_late(&self, id: &Hash32, lock: &Hash32) -> bool {
        let key = [ccdi::keys::late_prefix(id), lock.0.to_vec()].concat();
        self.bob_record::<LateItem>(&key).is_some()
    }

    fn receipt_ok(&self, chain: ChainId, h: &Hash32) -> bool {
        self.external(chain).ok().and_then(|c| c.receipt(h).ok().flatten()).is_some()
    }

    /// Spending from `TPK_Addr_i`: `key` burns `amount` of its claimed
    /// `Token_i` on the BoB (`redeem`), the committee signs the release
    /// order with 2f+1 shares, and a relay node sends it to SC_BG on the
    /// chain, which pays `to` out of `TPK_Addr_i`. Returns the release's
    /// receipt on the chain.
    pub fn redeem(
        &mut self,
        key: &KeyPair,
        chain: ChainId,
        amount: u128,
        to: gridledger_core::Address,
    ) -> Result<gridledger_ledger::Receipt, MbsError> {
        let tx = self.bob_call(key, "redeem", &crate::bob::Redeem { chain, amount, to }, Amount::ZERO);
        self.release_after(chain, &tx)
    }

    /// Π_CCTC's late-lock refund (`refund_lock`): `key`'s transfer `nt` to
    /// `TPK_Addr_i` on `chain`, with the Merkle proof of `nt` in its block
    /// and the path of that block's header in the BoB's accumulator of
    /// relayed headers, built from the chain's headers up to the BoB's
    /// stored tip (as any user with the chain's headers can).
    pub fn refund_lock_tx(
        &self,
        key: &KeyPair,
        chain: ChainId,
        nt: &SignedTransaction,
    ) -> Result<SignedTransaction, MbsError> {
        let c = self.external(chain)?;
        let (height, proof) = c
            .tx_proof(&nt.hash())?
            .ok_or_else(|| MbsError::Missing(format!("lock {} not on chain {chain}", nt.hash())))?;
        let (header, header_proof) = self.header_path(chain, height)?;
        let args = crate::bob::RefundLock { chain, header, header_proof, nt: nt.clone(), proof };
        Ok(self.bob_call(key, "refund_lock", &args, Amount::ZERO))
    }

    /// The whole late-lock refund: `refund_lock` on the BoB, then the
    /// committee's release of the order on `chain`, which pays the lock
    /// back to `key` out of `TPK_Addr_i`. Returns the release's receipt.
    pub fn refund_lock(
        &mut self,
        key: &KeyPair,
        chain: ChainId,
        nt: &SignedTransaction,
    ) -> Result<gridledger_ledger::Receipt, MbsError> {
        let tx = self.refund_lock_tx(key, chain, nt)?;
        self.release_after(chain, &tx)
    }

    /// Runs `tx` on the BoB (a call whose output is a release order's
    /// sequence number), then the committee's release of that order on
    /// `chain`. Returns the release's receipt on the chain.
    fn release_after(
        &mut self,
        chain: ChainId,
        tx: &SignedTransaction,
    ) -> Result<gridledger_ledger::Receipt, MbsError> {
        let r = self.bob_ok(tx)?;
        let seq = u64::from_le_bytes(r.output.try_into().map_err(|_| MbsError::Missing("release sequence".into()))?);
        let tx = self.release_tx(chain, seq)?;
        let r = self.chain_run(chain, &tx)?;
        match &r.status {
            TxStatus::Success => Ok(r),
            TxStatus::Reverted(reason) => Err(MbsError::Refused { method: "release".into(), reason: reason.clone() }),
        }
    }

    /// The relay node's `release` transaction for order `seq` of `chain`,
    /// signed by the committee from the order the BoB recorded.
    pub fn release_tx(&self, chain: ChainId, seq: u64) -> Result<SignedTransaction, MbsError> {
        let order: crate::bob::ReleaseOrder = self
            .bob_record(&crate::bob::keys::release(chain, seq))
            .ok_or_else(|| MbsError::Missing(format!("release order {seq} of chain {chain}")))?;
        let st = scbg::release_statement(self.instance(chain)?, chain, seq, &order);
        let n = self.committee.set.members();
        let shares: Vec<_> = (0..n).filter_map(|i| self.committee.sign_share(i, &st).map(|s| (i, s))).collect();
        let sig = self
            .committee
            .combine_raw(crate::threshold::STATEMENT_DOMAIN, &st.bytes(), &shares)
            .map_err(|e| MbsError::Missing(format!("threshold signature: {e}")))?;
        let relayer = self.relayer.clone();
        self.sc_bg_call(
            chain,
            &relayer,
            "release",
            &scbg::Release { sequence: seq, order, signature: sig.to_bytes().to_vec() },
        )
    }

    /// S_SDM (§5.5.5): `key` moves item `item` from `from` to a freshly
    /// created item on the censorship-resilient chain `to`, in one
    /// migration process. Returns the new item's id and the report.
    pub fn migrate(
        &mut self,
        key: &KeyPair,
        from: ChainId,
        item: u64,
        to: ChainId,
        deposit: u128,
        salt: u64,
    ) -> Result<(u64, CcdiReport), MbsError> {
        let name =
            self.item(from, item).ok_or_else(|| MbsError::Missing(format!("item {item} on chain {from}")))?.data.name;
        let fresh = self.create_item(to, key, &name, 0)?;
        let users = [
            CcdiUser { key: key.clone(), chain: from, item, behaviour: UserBehaviour::Honest },
            CcdiUser { key: key.clone(), chain: to, item: fresh, behaviour: UserBehaviour::Honest },
        ];
        let rep = self.run_ccdi(CcdiApp::Migrate, &users, &CcdiAttack::default(), deposit, 1, salt)?;
        Ok((fresh, rep))
    }
}
