//! A chain instance: store, state, mempool and contracts together.
//!
//! Every chain in gridledger (primary, secondary, BoB, external) is a
//! [`Chain`] with its own genesis and validator set (DESIGN.md principle 3).

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, ChainId, Hash32, Height, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

use crate::block::{Block, BlockHeader, Receipt, Seal};
use crate::contract::{
    BlockEnv, BlockHashes, BlockRoom, ContractError, ContractRegistry, RecentBlock, ViewContext, BLOCK_HASH_WINDOW,
};
use crate::error::{ChainError, StoreError, SubmitError};
use crate::executor::{BlockBuilder, BuiltBody, ExecutedBlock};
use crate::genesis::Genesis;
use crate::mempool::Mempool;
use crate::state::{account_key, Account, Changes, State, StateRead};
use crate::store::Store;
use crate::tx::{SignedTransaction, VerifiedTx};

/// The default floor on a transaction's gas price (minor units per gas):
/// non-zero, so flooding the mempool and the chain costs the sender
/// something. A deployment that wants free transactions sets 0 explicitly.
pub const DEFAULT_MIN_GAS_PRICE: Amount = Amount(1);

/// Operating limits of a chain.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ChainConfig {
    /// Maximum transactions per block (thesis §3.5.1 uses 300).
    pub max_block_txs: usize,
    pub block_gas_limit: u64,
    pub max_tx_bytes: usize,
    pub mempool_capacity: usize,
    pub mempool_per_sender: usize,
    /// Byte budget of the mempool (encoded transactions).
    pub mempool_max_bytes: usize,
    pub min_gas_price: Amount,
    /// A single validator with a backlog builds up to this many blocks and
    /// persists them with one fsync (group commit).
    pub max_blocks_per_commit: usize,
    /// redb 2-phase commit for the chain's store: a second fsync per
    /// commit (≈ half the commits/s here), off by default; the decision and
    /// the measurement are at [`Store::with_two_phase_commit`].
    pub two_phase_commit: bool,
    /// `Some(d)`: transactions must be signed over `d` as well
    /// ([`crate::Transaction::signing_digest`]), e.g. a deployment that
    /// sets its chains' genesis hashes here; `None` (the default): over the
    /// transaction hash alone. Every replica of a chain must use the same.
    pub signing_domain: Option<Hash32>,
    /// The duty lane (attack r16 [6]): the share of a block, in per cent
    /// of its gas limit and of `max_block_txs`, that transactions the
    /// chain's contracts call duties ([`crate::NativeContract::duty`], e.g.
    /// the BoB's header relays by its registered nodes) take before the
    /// gas-price order, whatever ordinary traffic pays. Bounded, so duties
    /// cannot starve users: beyond it they compete at their price like
    /// any other transaction. A chain whose contracts name no duties is
    /// unaffected. At most 100.
    pub duty_lane_percent: u64,
    /// A planted bug (`mutants` feature only).
    #[cfg(feature = "mutants")]
    #[serde(skip)]
    pub mutation: Option<Mutation>,
}

/// Planted bugs of block filling and the mempool (test-only, behind the
/// `mutants` feature), caught by `tests/mutants.rs`.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Candidates skipped because their gas limit no longer fits count
    /// toward the walk's stop (the rule before attack r16 [5]).
    SkipsCountTowardStop,
    /// No duty lane: duties compete at their gas price only (the rule
    /// before attack r16 [6]).
    NoDutyLane,
    /// A replacement is taken at any strictly higher gas price, without
    /// the minimum bump (attack r16 [2]'s rule without its cost).
    ReplaceWithoutBump,
    /// The lane takes each node's whole run, nodes in the order of their
    /// run's price, instead of round-robin (the rule before attack r18 [1]).
    LaneWholeRuns,
    /// A node's run starts only at a duty: an ordinary call of its key at
    /// the head of its queue shuts its duties out of the lane (the rule
    /// before attack r18 [2]).
    LaneHeadMustBeDuty,
    /// A replacement keeps the replaced transaction's serve-first place
    /// whatever its gas limit (the rule before attack r18 [3]).
    ReplacementKeepsServeFirst,
    /// A node's run is its next `max` transactions cut after the last duty
    /// among them: a lane's worth of its ordinary calls ahead of its
    /// duties leaves it an empty run (the rule before attack r19 [1]).
    LaneRunNeedsDutyInWindow,
    /// A sender's serve-first place serves its first transaction not
    /// excluded, whichever nonce earned the place: on a pipelined height
    /// the next nonce inherits it (the rule before attack r19 [2]).
    FirstServedNextNonce,
    /// The lane's gas is one pool, first come first served: one node's
    /// carried call with a lane-sized gas limit ends every other node's
    /// run (the rule before attack r21 [1]).
    LaneGasPooled,
    /// The sender served first of all goes into the empty block before the
    /// lane at every height, whatever its size: a served-first block-sized
    /// call leaves the lane no gas (the rule before attack r21 [2]; now only
    /// at a served-first turn, and only a transaction the lane's gas would
    /// not leave room for).
    ServeFirstBeforeLane,
    /// A lane run whose next transaction exceeds its fair share of the
    /// lane's gas ends there, the share it cannot use thrown away: four
    /// 20 M relays against 18.75 M shares leave the lane empty (the rule
    /// before attack r23 [1] [2]).
    LaneShareWasted,
    /// No served-first turn: the lane goes first at every height, so a
    /// served-first transaction that fits only an empty block is skipped
    /// in every block with a duty (the rule before attack r23 [3]).
    LaneNeverYields,
    /// The lane runs waiting (next transaction above the round's fair
    /// share) are tried only at the end of the pass, once no run is going:
    /// one node's cheap duties going alone spend the lane's count first
    /// (the rule before attack r24 [1]).
    LaneWaitsForPassEnd,
}

/// The default [`ChainConfig::duty_lane_percent`].
pub const DEFAULT_DUTY_LANE_PERCENT: u64 = 25;

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            max_block_txs: 300,
            block_gas_limit: 300 * 1_000_000,
            max_tx_bytes: 64 * 1024,
            mempool_capacity: 200_000,
            mempool_per_sender: 4_096,
            mempool_max_bytes: crate::mempool::DEFAULT_MEMPOOL_BYTES,
            min_gas_price: DEFAULT_MIN_GAS_PRICE,
            max_blocks_per_commit: 16,
            two_phase_commit: false,
            signing_domain: None,
            duty_lane_percent: DEFAULT_DUTY_LANE_PERCENT,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }
}

impl ChainConfig {
    /// What the committed block `h` left of these per-block limits
    /// ([`BlockRoom`], what [`crate::CallContext::block_room`] reports).
    pub fn room_left(&self, h: &BlockHeader) -> BlockRoom {
        BlockRoom {
            txs_left: (self.max_block_txs as u64).saturating_sub(u64::from(h.tx_count)),
            gas_left: self.block_gas_limit.saturating_sub(h.gas_used),
        }
    }

    /// The duty lane's bound: (gas, transactions) of a block.
    pub(crate) fn lane(&self) -> Lane {
        let pct = self.duty_lane_percent.min(100);
        #[cfg(feature = "mutants")]
        let pct = if self.mutation == Some(Mutation::NoDutyLane) { 0 } else { pct };
        Lane {
            gas: (self.block_gas_limit as u128 * pct as u128 / 100) as u64,
            txs: (self.max_block_txs as u128 * pct as u128 / 100) as usize,
        }
    }
}

/// The checks a transaction passes before it touches chain state; cheap to
/// clone so API threads can verify signatures in parallel, without a lock.
#[derive(Clone, Debug)]
pub struct TxRules {
    pub chain_id: ChainId,
    pub max_tx_bytes: usize,
    pub block_gas_limit: u64,
    pub min_gas_price: Amount,
    /// [`ChainConfig::signing_domain`].
    pub signing_domain: Option<Hash32>,
}

impl TxRules {
    /// Decodes and verifies a submitted transaction.
    pub fn check(&self, bytes: &[u8]) -> Result<VerifiedTx, SubmitError> {
        let stx = SignedTransaction::from_bytes(bytes, self.max_tx_bytes)?;
        self.check_decoded(stx)
    }

    pub fn check_decoded(&self, stx: SignedTransaction) -> Result<VerifiedTx, SubmitError> {
        if stx.tx.gas_price < self.min_gas_price {
            return Err(SubmitError::GasPriceTooLow { price: stx.tx.gas_price, min: self.min_gas_price });
        }
        stx.check_stateless_in(self.chain_id, self.signing_domain.as_ref(), self.block_gas_limit)
    }
}

/// What one committed block did.
#[derive(Clone, Debug)]
pub struct Committed {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    /// Transactions the builder could not include and evicted, with reasons.
    pub dropped: Vec<(Hash32, String)>,
}

pub struct Chain {
    store: Store,
    state: State,
    registry: ContractRegistry,
    genesis: Genesis,
    config: ChainConfig,
    mempool: Mempool,
    tip: BlockHeader,
    /// A failed write left the in-memory state ahead of the store.
    needs_reload: bool,
    /// Transactions of blocks whose commit failed, back to the mempool on recovery.
    orphans: Vec<SignedTransaction>,
    /// Hashes of the last [`BLOCK_HASH_WINDOW`] blocks up to the tip, for
    /// contracts ([`crate::CallContext::block_hash`]). Entries above the
    /// tip (left by a failed commit) are never read: contracts read below
    /// the block being built, and [`Self::advance`] overwrites them.
    recent: BlockHashes,
}

/// Verifies the signatures (and static checks) of the transactions of
/// `block` marked in `which`, across all cores, without touching a chain:
/// the expensive half of [`Chain::validate_block`], for a caller that does
/// not want to hold the chain's lock meanwhile. Returns, per transaction,
/// whether it was verified here, or the first failure in the form
/// [`Chain::validate_block`] reports it.
pub fn verify_block_signatures(rules: &TxRules, block: &Block, which: &[bool]) -> Result<Vec<bool>, ChainError> {
    use rayon::prelude::*;
    let failed = block
        .txs
        .par_iter()
        .enumerate()
        .with_min_len(16)
        .filter(|(i, _)| which.get(*i).copied().unwrap_or(false))
        .find_map_first(|(_, t)| rules.check_decoded(t.clone()).err().map(|e| (t.hash(), e)));
    if let Some((h, e)) = failed {
        return Err(ChainError::InvalidBlock(format!("transaction {h}: {e}")));
    }
    Ok(block.txs.iter().enumerate().map(|(i, _)| which.get(i).copied().unwrap_or(false)).collect())
}

impl Chain {
    /// Opens the chain in `dir`, creating it from `genesis` if new and
    /// resuming from disk otherwise. The rebuilt state must match the last
    /// committed header's state root, or opening fails.
    pub fn open(
        dir: &Path,
        genesis: Genesis,
        registry: ContractRegistry,
        config: ChainConfig,
    ) -> Result<Self, ChainError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(e.to_string()))?;
        // 1-phase commit (one fsync) unless `two_phase_commit` is set: see
        // the decision at [`Store::with_two_phase_commit`].
        let store = Store::open(&dir.join("chain.redb"))?.with_two_phase_commit(config.two_phase_commit);
        Self::open_store(store, genesis, registry, config)
    }

    /// [`Chain::open`] on an already opened store (e.g. one on a
    /// fault-injecting backend).
    pub fn open_store(
        store: Store,
        genesis: Genesis,
        registry: ContractRegistry,
        config: ChainConfig,
    ) -> Result<Self, ChainError> {
        let mempool =
            Mempool::new(config.mempool_capacity, config.mempool_per_sender).with_max_bytes(config.mempool_max_bytes);
        #[cfg(feature = "mutants")]
        let mempool = mempool.with_mutation(config.mutation);
        let (state, tip) = match store.tip()? {
            None => {
                let (ex, state) = Self::genesis_block(&genesis)?;
                store.commit(&ex)?;
                (state, ex.block.header)
            }
            Some(h) => {
                let (ex, _) = Self::genesis_block(&genesis)?;
                if store.genesis_hash()? != Some(ex.block.hash()) {
                    return Err(ChainError::Genesis("the data directory holds a different chain".into()));
                }
                let tip = store
                    .block(h)?
                    .ok_or(StoreError::Corrupt { table: "blocks", detail: format!("tip {h} missing") })?
                    .header;
                let state = State::from_entries(genesis.state_buckets_log2, store.state_entries()?);
                if state.root() != tip.state_root {
                    return Err(ChainError::InvalidBlock(format!(
                        "stored state root {} does not match block {h}'s {}",
                        state.root(),
                        tip.state_root
                    )));
                }
                (state, tip)
            }
        };
        let recent = recent_hashes(&store, &tip, &config)?;
        Ok(Self {
            store,
            state,
            registry,
            genesis,
            config,
            mempool,
            tip,
            needs_reload: false,
            orphans: Vec::new(),
            recent,
        })
    }

    fn genesis_block(g: &Genesis) -> Result<(ExecutedBlock, State), ChainError> {
        if g.state_buckets_log2 > 24 {
            return Err(ChainError::Genesis("state_buckets_log2 must be at most 24".into()));
        }
        g.total_supply().ok_or_else(|| ChainError::Genesis("total supply overflows".into()))?;
        let mut changes = Changes::new();
        let mut seen = BTreeSet::new();
        for a in &g.allocations {
            if !seen.insert(a.address) {
                return Err(ChainError::Genesis(format!("{} allocated twice", a.address)));
            }
            let acct = Account { balance: a.balance, nonce: 0 };
            changes.insert(account_key(&a.address), Some(borsh::to_vec(&acct).unwrap_or_default()));
        }
        let mut state = State::new(g.state_buckets_log2);
        let root = state.apply(&changes);
        let header = BlockHeader {
            chain_id: g.chain_id,
            height: 0,
            parent: g.hash(),
            timestamp: g.timestamp,
            proposer: g.validators.first().copied().unwrap_or_default(),
            tx_root: gridledger_core::merkle_root(&[]),
            receipt_root: gridledger_core::merkle_root(&[]),
            state_root: root,
            gas_used: 0,
            tx_count: 0,
        };
        Ok((
            ExecutedBlock { block: Block { header, txs: vec![], seal: Seal::Genesis }, receipts: vec![], changes },
            state,
        ))
    }

    pub fn rules(&self) -> TxRules {
        TxRules {
            chain_id: self.genesis.chain_id,
            max_tx_bytes: self.config.max_tx_bytes,
            block_gas_limit: self.config.block_gas_limit,
            min_gas_price: self.config.min_gas_price,
            signing_domain: self.config.signing_domain,
        }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn registry(&self) -> &ContractRegistry {
        &self.registry
    }

    pub fn tip(&self) -> &BlockHeader {
        &self.tip
    }

    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    pub fn account(&self, a: &Address) -> Account {
        self.state.account(a)
    }

    /// Next nonce a sender should use, counting its pending transactions.
    pub fn next_nonce(&self, a: &Address) -> u64 {
        self.mempool.next_nonce(a, &self.state.account(a))
    }

    /// Removes pending transaction `h` and every later one of its sender
    /// (they could not execute before it) from the mempool; nothing if it
    /// is not pending.
    pub fn evict_pending(&mut self, h: &Hash32) {
        self.mempool.evict(h);
    }

    /// Decodes, verifies and admits one transaction.
    pub fn submit(&mut self, bytes: &[u8]) -> Result<Hash32, SubmitError> {
        let v = self.rules().check(bytes)?;
        self.admit(v)
    }

    /// Admits an already verified transaction.
    pub fn admit(&mut self, v: VerifiedTx) -> Result<Hash32, SubmitError> {
        if self.store.tx_location(&v.hash).ok().flatten().is_some() {
            return Err(SubmitError::AlreadyKnown);
        }
        let next_height = self.tip.height + 1;
        if let Some(valid_until) = v.tx.tx.kind.valid_until().filter(|u| next_height > *u) {
            return Err(SubmitError::Expired { valid_until, next_height });
        }
        let acct = self.state.account(&v.sender);
        let duty = self.is_duty(&v);
        self.mempool.admit_in_lane(v, &acct, duty)
    }

    /// Whether the chain's contracts call `v` a duty (the block's duty
    /// lane, [`ChainConfig::duty_lane_percent`]).
    fn is_duty(&self, v: &VerifiedTx) -> bool {
        match &v.tx.tx.kind {
            crate::TxKind::Call { contract, method, .. } => {
                self.registry.get(*contract).is_some_and(|c| c.duty(&v.sender, method))
            }
            _ => false,
        }
    }

    fn env(&self, timestamp: Timestamp, proposer: &PublicKey) -> BlockEnv {
        self.env_after(&self.tip, self.tip.hash(), timestamp, proposer)
    }

    /// The environment of the block after `parent` (whose hash is
    /// `parent_hash`): the next height, a timestamp above the parent's.
    fn env_after(
        &self,
        parent: &BlockHeader,
        parent_hash: Hash32,
        timestamp: Timestamp,
        proposer: &PublicKey,
    ) -> BlockEnv {
        BlockEnv {
            chain_id: self.genesis.chain_id,
            height: parent.height + 1,
            timestamp: timestamp.max(parent.timestamp + 1),
            proposer: proposer.address(),
            parent: parent_hash,
        }
    }

    /// Executes the next block from the mempool without committing it.
    /// Transactions that can no longer execute are evicted and reported.
    pub fn build_block(
        &mut self,
        proposer: &PublicKey,
        timestamp: Timestamp,
    ) -> (ExecutedBlock, Vec<(Hash32, String)>) {
        let (body, dropped) = self.execute_candidates(proposer, timestamp);
        let root = self.state.root_after(&body.changes);
        (body.into_block(self.genesis.chain_id, self.tip.hash(), *proposer, root), dropped)
    }

    /// Pipelined heights: executes the next block from the mempool on top
    /// of `parent`, a block executed on this chain's tip (the next height)
    /// that consensus has decided or is deciding but that is not committed
    /// here yet. Transactions run against the state *after* `parent` (its
    /// changes layered over the committed state), so a transaction may
    /// spend what `parent` credited, and one that conflicts with `parent`
    /// (a double spend: the same sender and nonce) is left out. `parent`'s
    /// own transactions, still pending in the mempool until it commits, are
    /// skipped. Nothing is evicted here: the block is committed later like
    /// any other, after `parent`, and validators re-execute it on their
    /// committed state once `parent` is committed. The only change is the
    /// one every build makes (attack r13 [4]): senders skipped for gas are
    /// served first from now on ([`Mempool::serve_first`]); the pipelined
    /// heights validators take under load fill blocks exactly as plain ones
    /// (`fill_block`).
    pub fn build_block_on(
        &mut self,
        parent: &ExecutedBlock,
        proposer: &PublicKey,
        timestamp: Timestamp,
    ) -> Result<ExecutedBlock, ChainError> {
        let exclude: BTreeSet<Hash32> = parent.block.txs.iter().map(|t| t.hash()).collect();
        self.build_block_over(&parent.block.header, &parent.changes, &exclude, proposer, timestamp)
    }

    /// [`Chain::build_block_on`] with the parent's header, state changes
    /// and the transactions to skip given apart (a test can hand it a
    /// wrong view of the parent's state).
    pub fn build_block_over(
        &mut self,
        parent: &BlockHeader,
        parent_changes: &Changes,
        exclude: &BTreeSet<Hash32>,
        proposer: &PublicKey,
        timestamp: Timestamp,
    ) -> Result<ExecutedBlock, ChainError> {
        if parent.height != self.tip.height + 1 || parent.parent != self.tip.hash() {
            return Err(ChainError::InvalidBlock(format!(
                "block {} is not the successor of the tip {}",
                parent.height, self.tip.height
            )));
        }
        let parent_hash = parent.hash();
        let mut base = crate::state::Overlay::new(&self.state);
        base.absorb(parent_changes.clone());
        // The window `advance` keeps once `parent` is the tip: contracts
        // must see exactly what they will see when this block is replayed.
        let mut recent = self.recent.clone();
        slide_window(&mut recent, parent, &self.config);
        let env = self.env_after(parent, parent_hash, timestamp, proposer);
        let (body, skipped) = {
            let mut b =
                BlockBuilder::over(&base, &self.registry, env, self.config.block_gas_limit).with_block_hashes(&recent);
            // What cannot execute is left in the mempool: the next build on
            // committed state evicts it.
            let (skipped, _) = fill_block(&mut b, &self.mempool, exclude, &self.config);
            (b.into_body(), skipped)
        };
        self.mempool.serve_first(&skipped);
        let mut all = parent_changes.clone();
        all.extend(body.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let root = self.state.root_after(&all);
        Ok(body.into_block(self.genesis.chain_id, parent_hash, *proposer, root))
    }

    /// Runs the mempool's next candidates on top of the committed state,
    /// evicting those that can no longer execute.
    fn execute_candidates(&mut self, proposer: &PublicKey, timestamp: Timestamp) -> (BuiltBody, Vec<(Hash32, String)>) {
        let env = self.env(timestamp, proposer);
        let (body, skipped, dropped) = {
            let mut b = BlockBuilder::new(&self.state, &self.registry, env, self.config.block_gas_limit)
                .with_block_hashes(&self.recent);
            let (skipped, dropped) = fill_block(&mut b, &self.mempool, &BTreeSet::new(), &self.config);
            (b.into_body(), skipped, dropped)
        };
        self.mempool.serve_first(&skipped);
        for (h, _) in &dropped {
            self.mempool.evict(h);
        }
        (body, dropped)
    }

    /// Single-validator block production: build, seal, commit. Returns
    /// `None` when there is nothing to include.
    pub fn produce_block(&mut self, key: &KeyPair, timestamp: Timestamp) -> Result<Option<Committed>, ChainError> {
        Ok(self.produce_blocks(key, timestamp, 1)?.pop())
    }

    /// Single-validator group commit: builds and seals up to `max_blocks`
    /// consecutive blocks from the mempool, each on the state the previous
    /// one left, then persists them all in one store transaction (one
    /// fsync). Nothing is visible in the store, and so acknowledged to
    /// clients, before that transaction commits. If it fails, state and tip
    /// are put back to the last committed block at once (whether or not
    /// the store can be reopened: reads never see an uncommitted block),
    /// the blocks' transactions go back to the mempool, the store is
    /// reopened, and the error is returned.
    pub fn produce_blocks(
        &mut self,
        key: &KeyPair,
        timestamp: Timestamp,
        max_blocks: usize,
    ) -> Result<Vec<Committed>, ChainError> {
        if self.needs_reload {
            self.recover()?;
        }
        let mut out: Vec<Committed> = Vec::new();
        let mut executed: Vec<ExecutedBlock> = Vec::new();
        // What each applied block overwrote, to undo it if the commit fails.
        let committed_tip = self.tip.clone();
        let mut undo: Vec<Changes> = Vec::new();
        while out.len() < max_blocks && !self.mempool.is_empty() {
            let (body, dropped) = self.execute_candidates(&key.public(), timestamp);
            if body.txs.is_empty() {
                if dropped.is_empty() {
                    break;
                }
                continue;
            }
            undo.push(body.changes.keys().map(|k| (k.clone(), self.state.get(k))).collect());
            let root = self.state.apply(&body.changes);
            let mut ex = body.into_block(self.genesis.chain_id, self.tip.hash(), key.public(), root);
            ex.block.seal_single(key);
            self.advance(&ex);
            out.push(Committed { block: ex.block.clone(), receipts: ex.receipts.clone(), dropped });
            executed.push(ex);
        }
        if let Err(e) = self.store.commit_many(&executed) {
            // Put state and tip back first, unconditionally (the reopen
            // below fails for as long as the disk stays full), return the
            // blocks' transactions to the mempool (nothing admitted is
            // lost), then reopen the store: redb refuses writes after an
            // I/O error until then.
            for u in undo.iter().rev() {
                self.state.apply(u);
            }
            self.tip = committed_tip;
            self.orphans.extend(executed.into_iter().flat_map(|ex| ex.block.txs));
            self.readmit_orphans();
            self.recover()?;
            return Err(e.into());
        }
        Ok(out)
    }

    /// After a write error: reopens the store (redb refuses writes until
    /// then) and resets state and tip to what it holds. The mempool is kept.
    pub fn reopen(&mut self) -> Result<(), ChainError> {
        self.store.reopen()?;
        self.reload()
    }

    /// [`Chain::reopen`], remembering a failure so the next block
    /// production tries again before touching the (stale) in-memory state;
    /// on success the transactions of the failed blocks return to the mempool.
    fn recover(&mut self) -> Result<(), ChainError> {
        self.needs_reload = true;
        self.reopen()?;
        self.needs_reload = false;
        self.readmit_orphans();
        Ok(())
    }

    /// Transactions of a failed commit back into the mempool, checked
    /// against the (committed) state.
    fn readmit_orphans(&mut self) {
        let rules = self.rules();
        for tx in std::mem::take(&mut self.orphans) {
            if let Ok(v) = rules.check_decoded(tx) {
                let acct = self.state.account(&v.sender);
                let duty = self.is_duty(&v);
                let _ = self.mempool.admit_in_lane(v, &acct, duty);
            }
        }
        self.mempool.drop_expired(self.tip.height + 1);
    }

    /// Transactions waiting for a block: the mempool plus those of a failed
    /// commit held until the store recovers.
    pub fn pending(&self) -> usize {
        self.mempool.len() + self.orphans.len()
    }

    /// After a failed write: state and tip back to what the store holds.
    /// Both are read before either is replaced, so a failed read leaves
    /// the two consistent.
    fn reload(&mut self) -> Result<(), ChainError> {
        let h = self.store.tip()?.unwrap_or(0);
        let tip = self
            .store
            .block(h)?
            .ok_or(StoreError::Corrupt { table: "blocks", detail: format!("tip {h} missing") })?
            .header;
        let state = State::from_entries(self.genesis.state_buckets_log2, self.store.state_entries()?);
        let recent = recent_hashes(&self.store, &tip, &self.config)?;
        self.tip = tip;
        self.state = state;
        self.recent = recent;
        Ok(())
    }

    /// Moves the tip past an applied block and drops what it made stale from the mempool.
    fn advance(&mut self, ex: &ExecutedBlock) {
        let senders: BTreeSet<Address> = ex.block.txs.iter().map(|t| t.sender()).collect();
        let state = &self.state;
        self.mempool.prune(senders, |a| state.account(a));
        self.tip = ex.block.header.clone();
        // Deadline transfers that can no longer go into the next block.
        self.mempool.drop_expired(self.tip.height + 1);
        slide_window(&mut self.recent, &self.tip, &self.config);
    }

    /// Re-executes a block proposed by someone else and checks every root
    /// and the parent link; on success it is ready to commit.
    pub fn validate_block(&self, block: &Block) -> Result<ExecutedBlock, ChainError> {
        self.validate_block_prechecked(block, &[])
    }

    /// Which of `block`'s transactions this node has not verified yet (not
    /// pending in its mempool): the signature checks [`Chain::validate_block`]
    /// would do. A caller may run them without holding the chain (see
    /// [`verify_block_signatures`]) and pass the result to
    /// [`Chain::validate_block_prechecked`].
    pub fn unverified(&self, block: &Block) -> Vec<bool> {
        block.txs.iter().map(|t| !self.mempool.holds(t)).collect()
    }

    /// [`Chain::validate_block`], except that the transactions at indices
    /// where `prechecked` is true had their signatures verified by this
    /// node's caller (with [`verify_block_signatures`], never on anyone
    /// else's word); the others are checked here as usual.
    pub fn validate_block_prechecked(&self, block: &Block, prechecked: &[bool]) -> Result<ExecutedBlock, ChainError> {
        let h = &block.header;
        let invalid = |m: String| Err(ChainError::InvalidBlock(m));
        if h.chain_id != self.genesis.chain_id {
            return invalid(format!("chain id {}", h.chain_id));
        }
        if h.height != self.tip.height + 1 {
            return invalid(format!("height {} does not follow {}", h.height, self.tip.height));
        }
        if h.parent != self.tip.hash() {
            return invalid("parent hash mismatch".into());
        }
        if h.timestamp <= self.tip.timestamp {
            return invalid("timestamp not after parent".into());
        }
        if block.txs.len() > self.config.max_block_txs {
            return invalid(format!("{} transactions exceed the limit", block.txs.len()));
        }
        let rules = self.rules();
        let env = BlockEnv {
            chain_id: self.genesis.chain_id,
            height: h.height,
            timestamp: h.timestamp,
            proposer: h.proposer.address(),
            parent: h.parent,
        };
        let mut b = BlockBuilder::new(&self.state, &self.registry, env, self.config.block_gas_limit)
            .with_block_hashes(&self.recent);
        // Signatures this node has not already checked on admission to its
        // own mempool are verified here, across all cores.
        let unchecked: Vec<&SignedTransaction> = block
            .txs
            .iter()
            .enumerate()
            .filter(|(i, t)| !prechecked.get(*i).copied().unwrap_or(false) && !self.mempool.holds(t))
            .map(|(_, t)| t)
            .collect();
        let failed = {
            use rayon::prelude::*;
            unchecked
                .par_iter()
                .with_min_len(16)
                .find_map_first(|t| rules.check_decoded((*t).clone()).err().map(|e| (t.hash(), e)))
        };
        if let Some((h, e)) = failed {
            return invalid(format!("transaction {h}: {e}"));
        }
        for tx in &block.txs {
            if let Err(e) = b.push(tx.clone()) {
                return invalid(format!("transaction {}: {e}", tx.hash()));
            }
        }
        let mut ex = b.finish(self.genesis.chain_id, self.tip.hash(), h.proposer, &self.state);
        if ex.block.header != *h {
            return invalid("header does not match re-execution".into());
        }
        ex.block.seal = block.seal.clone();
        Ok(ex)
    }

    /// Persists an executed block, then applies it in memory.
    pub fn commit(&mut self, ex: ExecutedBlock) -> Result<(), ChainError> {
        self.commit_with_aux(vec![ex], &[])
    }

    /// Persists consecutive executed blocks (each validated on the state
    /// the previous one leaves) together with the named auxiliary records
    /// (e.g. consensus vote state) in one store transaction, then applies
    /// them in memory. On error nothing is applied and nothing is durable.
    pub fn commit_with_aux(
        &mut self,
        blocks: Vec<ExecutedBlock>,
        aux: &[crate::store::AuxRecord<'_>],
    ) -> Result<(), ChainError> {
        self.commit_with_aux_durability(blocks, aux, true)
    }

    /// [`Chain::commit_with_aux`] with the store transaction's durability
    /// chosen by the caller (see [`crate::store::Store::commit_with_aux_durability`]):
    /// a deferred commit is applied and served at once and becomes durable
    /// with the next synced write.
    pub fn commit_with_aux_durability(
        &mut self,
        blocks: Vec<ExecutedBlock>,
        aux: &[crate::store::AuxRecord<'_>],
        durable: bool,
    ) -> Result<(), ChainError> {
        self.store.commit_with_aux_durability(&blocks, aux, durable)?;
        for ex in &blocks {
            let root = self.state.apply(&ex.changes);
            debug_assert_eq!(root, ex.block.header.state_root);
            self.advance(ex);
        }
        Ok(())
    }

    /// Hashes of the last [`BLOCK_HASH_WINDOW`] blocks up to the tip, for a
    /// block builder outside the chain ([`BlockBuilder::with_block_hashes`])
    /// to give contracts what [`Chain::build_block`] gives them.
    pub fn block_hashes(&self) -> &BlockHashes {
        &self.recent
    }

    pub fn block(&self, h: Height) -> Result<Option<Block>, ChainError> {
        Ok(self.store.block(h)?)
    }

    /// A transaction's receipt and its block, if it is committed.
    pub fn receipt(&self, tx: &Hash32) -> Result<Option<Receipt>, ChainError> {
        let Some((h, i)) = self.store.tx_location(tx)? else {
            return Ok(None);
        };
        Ok(self.store.receipts(h)?.and_then(|r| r.into_iter().nth(i as usize)))
    }

    /// Runs a contract's read-only view against committed state.
    pub fn view(&self, contract: u32, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        let c = self
            .registry
            .get(contract)
            .ok_or_else(|| ContractError::Revert(format!("no contract with id {contract}")))?;
        let env = BlockEnv {
            chain_id: self.genesis.chain_id,
            height: self.tip.height,
            timestamp: self.tip.timestamp,
            proposer: self.tip.proposer.address(),
            parent: self.tip.parent,
        };
        c.view(&ViewContext::new(&self.state, contract, env), method, args)
    }
}

/// Transactions a block builder refused, with why.
type Dropped = Vec<(Hash32, String)>;

/// The duty lane's bound in a block ([`ChainConfig::duty_lane_percent`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lane {
    pub gas: u64,
    pub txs: usize,
}

/// Fills a block from the mempool until it holds `config.max_block_txs`
/// transactions: the one candidate-ordering function of plain and
/// pipelined heights (attack r13 [4]: the pipelined path had its own walk,
/// which never served skipped senders first). Returns the senders skipped
/// for gas with the skipped nonces, for [`Mempool::serve_first`], and the
/// transactions that cannot execute with why. In three steps, leaving out
/// `exclude` throughout:
///
/// 0. the served-first turn (attack r23 [3]): at every height that is a
///    multiple of [`SERVED_FIRST_TURN`] (2), if the transaction served
///    first of all ([`Mempool::first_served`]) has a gas limit above the
///    block's gas less the lane's (so the lane might not leave it room),
///    it goes into the empty block before the lane, which then has what
///    it leaves. At other heights, and for a smaller one, nothing happens
///    here;
/// 1. the duty lane (attack r16 [6]): the runs of the nodes whose duties
///    the chain's contracts name ([`Mempool::lane`]: each node's duties in
///    nonce order, with the ordinary calls of its key ahead of them),
///    within the lane's share of `max_block_txs` and of the block's gas
///    ([`ChainConfig::duty_lane_percent`]). The runs are taken
///    round-robin, one transaction of each node per round in the order
///    `Mempool::lane` gives (attack r18 [1]: runs taken whole in price
///    order let one Byzantine node keeping a lane's worth of junk duties
///    one unit above the nodes' price take the whole lane every block), so
///    as long as the registered nodes are no more than the lane's count,
///    the first round offers every node with a run a place. The lane's
///    gas is filled progressively (attacks r21 [1], r23 [1] [2]): each
///    round, a run's next transaction is placed if its gas limit is at
///    most the round's fair share, the lane's gas left over the number of
///    runs still going; one above it waits for the end of the round,
///    where the waiting runs are taken smallest next gas limit first
///    (ties by position), each placed if it fits the lane's gas left,
///    then going again, and ended if it does not (attack r24 [1]: tried
///    only at the end of the pass, once no run was going, they let one
///    node's cheap duties going alone spend the lane's count first, and
///    three waiting 20 M relays were never tried). A node's transactions,
///    its carried ordinary calls included, count by the gas they used; one that cannot execute ends
///    its node's run here, and whatever the lane leaves is tried again in
///    step 2 like any transaction. So the lane's gas that one node cannot
///    use goes to the others: before, each node had a fixed water-filled
///    share and a run whose next transaction exceeded it ended, the share
///    thrown away (one Byzantine node's unexecuted 75 M duty cut three
///    honest 20 M relays' shares to 18.75 M each and the lane placed
///    nothing, every block, for free; so did four honest 20 M relays with
///    no attacker). And one node's heavy carried call cannot shut the
///    others out (attack r21 [1]: with one pool shared first come, first
///    served, a lane-sized call placed in round one ended every other
///    run): it exceeds the first round's fair share, waits, and is placed
///    only if it fits what the others left. The bound: at a height that
///    is not a turn, or one whose step 0 placed nothing, each registered
///    node with a duty pending gets a place as long as its next lane
///    transaction's gas limit is at most the lane's gas over the number of
///    nodes with a run (the first round's fair share); a larger one goes
///    in at the end of the first round if it fits the lane's gas the
///    first round left (no run takes a place beyond its round-robin
///    share while another waits). A run reaches toward the
///    node's last duty however many of its ordinary calls are queued
///    ahead (attack r19 [1]), so each duty is included within a bounded
///    number of blocks. The lane goes before the senders served first
///    except at a turn (attack r21 [2]: the sender served first used to go
///    into the empty block ahead of the lane at every height, so a
///    served-first block-sized call took the block's whole gas and every
///    lane candidate was refused, one block per account armed at price 1;
///    now such calls take at most every other block, and the lane has
///    every block between: a duty waits at most two blocks behind any
///    number of them);
/// 2. the mempool's block order ([`Mempool::walk`]) for the rest, the
///    senders served first ([`Mempool::first_served`], attack r12 [3])
///    before the price order. The lane uses at most its gas and fewer
///    than `max_block_txs` places (while its per cent is below 100), so
///    the first served-first transaction whose gas limit fits the block's
///    gas less the lane's is included in every block, unless it cannot
///    execute (only the transaction that earned the place is served so,
///    never its sender's next one while it is excluded, attack r19 [2]);
///    a larger one that fits an empty block is included at the next turn
///    (step 0) at the latest, i.e. within [`SERVED_FIRST_TURN`] blocks of
///    becoming the first served. Before attack r23 [3] it waited for a
///    block whose lane left it room, and a chain whose nodes relay every
///    block (the BoB) has none: one cheap duty a block starved a
///    block-sized call for ever. So the first served transaction leaves
///    the queue at least once every [`SERVED_FIRST_TURN`] blocks (included,
///    or refused if it cannot execute) and a sender's place only moves
///    forward: the `k`-th that fits an empty block is included within
///    `k * SERVED_FIRST_TURN` blocks.
///
/// A candidate whose gas limit no longer fits what is left of the block is
/// skipped, and so are its sender's later ones (they wait for it, in nonce
/// order, and stay in the mempool); the other senders' candidates still go
/// in. Stopping at it instead let one heavy transaction queued behind
/// another sender's cheap one shut every later sender out of every block.
/// A candidate that cannot execute otherwise holds its sender's later ones
/// the same way.
///
/// Decision (attack r16 [5]): candidates skipped for gas no longer count
/// toward a bound of `max` skipped or refused: 301 accounts each keeping a
/// block-sized transaction pending (one placed, 300 skipped) ended every
/// walk before any ordinary transaction was tried, for one transfer's fee
/// a block. The skip costs no execution (the gas limit is compared before
/// anything is cloned or run) and holds its sender, so it happens at most
/// once per pending sender; the walk ends when the block is full (no gas
/// left for the smallest transaction), at `max` placed, at `max` refused,
/// or when the pool runs out. Its work is thus bounded by the pool's size
/// (its capacity and byte budget), each step `O(log n)`, plus one per
/// excluded transaction. Deterministic: two validators with the same
/// mempool build the same block, and a block is valid if it re-executes
/// (no rule of the lane is checked on others' blocks).
pub(crate) fn fill_block(
    b: &mut BlockBuilder<'_>,
    mempool: &Mempool,
    exclude: &BTreeSet<Hash32>,
    config: &ChainConfig,
) -> (Vec<(Address, u64)>, Dropped) {
    let max = config.max_block_txs;
    let mut skipped = Vec::new();
    let mut dropped = Vec::new();
    let mut walk = mempool.walk(exclude);
    let lane = config.lane();
    // 0. The served-first turn (attack r23 [3]): at a turn height the
    // transaction served first of all goes into the empty block before the
    // lane when the gas the lane may use would not leave it room.
    // Planted bug: it goes first at every height, whatever its size (the
    // rule before attack r21 [2]).
    #[cfg(feature = "mutants")]
    let served_before_lane = config.mutation == Some(Mutation::ServeFirstBeforeLane);
    #[cfg(not(feature = "mutants"))]
    let served_before_lane = false;
    // Planted bug: no turn, the lane goes first at every height (the rule
    // before attack r23 [3]).
    #[cfg(feature = "mutants")]
    let never_yields = config.mutation == Some(Mutation::LaneNeverYields);
    #[cfg(not(feature = "mutants"))]
    let never_yields = false;
    let mut placed = std::borrow::Cow::Borrowed(exclude);
    let turn = served_before_lane || (!never_yields && b.height().is_multiple_of(SERVED_FIRST_TURN));
    if turn && max > 0 {
        let room = b.gas_limit().saturating_sub(lane.gas);
        if mempool.first_served(exclude).is_some_and(|v| served_before_lane || v.tx.tx.gas_limit > room) {
            if let Some(tx) = walk.next() {
                if consider(b, &mut walk, tx, &mut skipped, &mut dropped) {
                    placed.to_mut().insert(tx.hash);
                }
            }
        }
    }
    // 1. The duty lane: round-robin over the nodes' runs, the lane's gas
    // filled progressively.
    let mut lane_txs = 0usize;
    let mut in_lane = BTreeSet::new();
    let runs = mempool.lane(&placed, lane.txs);
    // Planted bug: one pool of lane gas, first come first served (the
    // rule before attack r21 [1]).
    #[cfg(feature = "mutants")]
    let pooled = config.mutation == Some(Mutation::LaneGasPooled);
    #[cfg(not(feature = "mutants"))]
    let pooled = false;
    // Planted bug: a run whose next transaction exceeds its fair share ends
    // there, its share unused (the rule before attack r23 [1] [2]).
    #[cfg(feature = "mutants")]
    let wastes = config.mutation == Some(Mutation::LaneShareWasted);
    #[cfg(not(feature = "mutants"))]
    let wastes = false;
    let mut lane_gas = 0u64;
    #[cfg(feature = "mutants")]
    let per_round = if config.mutation == Some(Mutation::LaneWholeRuns) { lane.txs.max(1) } else { 1 };
    #[cfg(not(feature = "mutants"))]
    let per_round = 1;
    // Planted bug: the runs waiting are tried only once no run is going
    // (the end of the pass, the rule before attack r24 [1]).
    #[cfg(feature = "mutants")]
    let pass_end = config.mutation == Some(Mutation::LaneWaitsForPassEnd);
    #[cfg(not(feature = "mutants"))]
    let pass_end = false;
    // Each run's next position and where it stands.
    let mut at = vec![0usize; runs.len()];
    let mut state = vec![Run::Going; runs.len()];
    'lane: loop {
        // A round over the runs going, its fair share an equal part of the
        // lane's gas left over the runs going.
        let going = state.iter().filter(|s| **s == Run::Going).count() as u64;
        let left = lane.gas.saturating_sub(lane_gas);
        // None when no run is going: only the runs waiting are tried.
        if let Some(share) = left.checked_div(going) {
            let fair = if pooled { left } else { share };
            for (i, run) in runs.iter().enumerate() {
                for _ in 0..per_round {
                    if state[i] != Run::Going {
                        break;
                    }
                    let Some(tx) = run.get(at[i]) else {
                        state[i] = Run::Ended;
                        break;
                    };
                    if lane_txs >= lane.txs || b.len() >= max {
                        break 'lane;
                    }
                    if tx.tx.tx.gas_limit > fair.min(lane.gas.saturating_sub(lane_gas)) {
                        state[i] = if wastes { Run::Ended } else { Run::Waiting };
                        break;
                    }
                    if lane_push(b, tx, &mut lane_gas, &mut lane_txs, &mut in_lane) {
                        at[i] += 1;
                    } else {
                        state[i] = Run::Ended;
                    }
                }
            }
        }
        if pass_end && state.contains(&Run::Going) {
            continue;
        }
        // The end of the round (attack r24 [1]): the runs waiting, the
        // smallest next gas limit first (ties by position), each placed if
        // it fits the lane's gas left and then going again; one that does
        // not fit ends (the lane's gas left only shrinks). So no run takes
        // a place beyond its round-robin share while another waits.
        let mut waiting: Vec<(u64, usize)> = state
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Run::Waiting)
            .filter_map(|(i, _)| runs[i].get(at[i]).map(|t| (t.tx.tx.gas_limit, i)))
            .collect();
        if waiting.is_empty() {
            if state.contains(&Run::Going) {
                continue;
            }
            break;
        }
        waiting.sort_unstable();
        for (gas, i) in waiting {
            if lane_txs >= lane.txs || b.len() >= max {
                break 'lane;
            }
            state[i] = Run::Ended;
            if gas <= lane.gas.saturating_sub(lane_gas) {
                if let Some(tx) = runs[i].get(at[i]) {
                    if lane_push(b, tx, &mut lane_gas, &mut lane_txs, &mut in_lane) {
                        at[i] += 1;
                        state[i] = Run::Going;
                    }
                }
            }
        }
    }
    // 2. The block order, the senders served first before the price
    // order; what the lane placed is passed over (its sender's next one
    // follows).
    #[cfg(feature = "mutants")]
    let skips_count = config.mutation == Some(Mutation::SkipsCountTowardStop);
    #[cfg(not(feature = "mutants"))]
    let skips_count = false;
    while b.len() < max && dropped.len() < max && b.gas_left() >= crate::gas::TX_BASE {
        if skips_count && skipped.len() + dropped.len() >= max {
            break;
        }
        let Some(tx) = walk.next() else { break };
        if in_lane.contains(&tx.hash) {
            continue;
        }
        consider(b, &mut walk, tx, &mut skipped, &mut dropped);
    }
    (skipped, dropped)
}

/// Every `SERVED_FIRST_TURN`-th height is a served-first turn
/// ([`fill_block`] step 0, attack r23 [3]).
pub(crate) const SERVED_FIRST_TURN: u64 = 2;

/// Where a node's run stands in [`fill_block`]'s lane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Offered a place each round.
    Going,
    /// Its next transaction exceeded its fair share: tried at the end of
    /// the round.
    Waiting,
    /// Done for this block.
    Ended,
}

/// Places `tx` in the lane: true if it executed, its gas used added to
/// `gas`, its count to `txs` and its hash to `in_lane`.
fn lane_push(
    b: &mut BlockBuilder<'_>,
    tx: &VerifiedTx,
    gas: &mut u64,
    txs: &mut usize,
    in_lane: &mut BTreeSet<Hash32>,
) -> bool {
    match b.push(tx.tx.clone()) {
        Ok(r) => {
            *gas = gas.saturating_add(r.gas_used);
            *txs += 1;
            in_lane.insert(tx.hash);
            true
        }
        Err(_) => false,
    }
}

/// One candidate of [`fill_block`]'s walk: placed (true), or skipped for
/// gas or refused, recorded, and its sender held where its later ones must
/// wait for it.
fn consider(
    b: &mut BlockBuilder<'_>,
    walk: &mut crate::mempool::Walk<'_>,
    v: &VerifiedTx,
    skipped: &mut Vec<(Address, u64)>,
    dropped: &mut Dropped,
) -> bool {
    // The pool keeps each entry's hash and sender: nothing is hashed or
    // recovered here.
    let (tx, h, sender, nonce) = (&v.tx, v.hash, v.sender, v.tx.tx.nonce);
    // Compared before anything is cloned or run: a skip costs a lookup.
    if tx.tx.gas_limit > b.gas_left() {
        walk.hold();
        skipped.push((sender, nonce));
        return false;
    }
    match b.push(tx.clone()) {
        Ok(_) => return true,
        Err(crate::executor::TxRejected::BlockFull) => {
            walk.hold();
            skipped.push((sender, nonce));
        }
        // A nonce the state has already passed (pipelined heights: the
        // parent used it, a double spend) is left out; the sender's
        // next one follows.
        Err(e @ crate::executor::TxRejected::Nonce { expected, got }) if got < expected => {
            dropped.push((h, e.to_string()));
        }
        Err(e) => {
            walk.hold();
            dropped.push((h, e.to_string()));
        }
    }
    false
}

/// Makes `recent` the block-hash window once the block `tip` is the tip:
/// it joins, and heights at or below `tip.height − BLOCK_HASH_WINDOW`, or
/// above it, leave.
fn slide_window(recent: &mut BlockHashes, tip: &BlockHeader, config: &ChainConfig) {
    let height = tip.height;
    recent.insert(height, RecentBlock { hash: tip.hash(), room: Some(config.room_left(tip)) });
    let keep_from = height.saturating_sub(BLOCK_HASH_WINDOW);
    recent.retain(|h, _| *h > keep_from && *h <= height);
}

/// The [`BLOCK_HASH_WINDOW`] blocks up to `tip` held in `store` (fewer near
/// genesis), read back from the tip by parent links: each one's hash, and
/// the room it left where the block is in the store.
fn recent_hashes(store: &Store, tip: &BlockHeader, config: &ChainConfig) -> Result<BlockHashes, ChainError> {
    let mut out = BlockHashes::new();
    out.insert(tip.height, RecentBlock { hash: tip.hash(), room: Some(config.room_left(tip)) });
    let mut parent = tip.parent;
    let lowest = tip.height.saturating_sub(BLOCK_HASH_WINDOW - 1);
    let mut h = tip.height;
    while h > lowest {
        h -= 1;
        let block = store.block(h)?;
        out.insert(h, RecentBlock { hash: parent, room: block.as_ref().map(|b| config.room_left(&b.header)) });
        match block {
            Some(b) => parent = b.header.parent,
            None => break,
        }
    }
    Ok(out)
}
