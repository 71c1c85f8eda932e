//! Deterministic block execution.
//!
//! A transaction is applied whole or not at all: its body runs in a nested
//! [`Overlay`] that is merged only on success. Nonce and fee are applied even
//! when the body reverts (as in Ethereum), so a reverted transaction still
//! cannot be replayed and still pays for its work.

use gridledger_core::merkle::merkle_root;
use gridledger_core::{Address, Amount, ChainId, Hash32, PublicKey};
use thiserror::Error;

use crate::block::{Block, BlockHeader, Event, Receipt, Seal, TxStatus};
use crate::contract::{BlockEnv, CallContext, ContractError, ContractRegistry};
use crate::gas::{self, GasMeter};
use crate::state::{contract_address, Account, Changes, Overlay, State, StateRead};
use crate::tx::{SignedTransaction, TxKind};

/// Why a transaction cannot be placed in this block at all.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxRejected {
    #[error("nonce mismatch: account at {expected}, transaction has {got}")]
    Nonce { expected: u64, got: u64 },
    #[error("cannot cover the maximum cost {needed}, balance {available}")]
    Balance { needed: Amount, available: Amount },
    #[error("block gas limit reached")]
    BlockFull,
    #[error("cost overflow")]
    Overflow,
    /// Its deadline ([`TxKind::TransferUntil`]) is below the block's height.
    #[error("valid until height {valid_until}, the block is at {height}")]
    Expired { valid_until: u64, height: u64 },
}

/// A block executed against a parent state, ready to be committed.
#[derive(Debug, Clone)]
pub struct ExecutedBlock {
    pub block: Block,
    pub receipts: Vec<Receipt>,
    pub changes: Changes,
}

/// Builds (proposer) or replays (validator) a block.
pub struct BlockBuilder<'a> {
    registry: &'a ContractRegistry,
    overlay: Overlay<'a>,
    env: BlockEnv,
    block_gas_limit: u64,
    gas_used: u64,
    txs: Vec<SignedTransaction>,
    receipts: Vec<Receipt>,
    block_hashes: Option<&'a crate::contract::BlockHashes>,
    /// Fees taken by [`BlockBuilder::push_pooled`] and not paid out yet
    /// ([`BlockBuilder::share_fee_pool`]).
    fee_pool: u128,
}

/// Who a transaction's fee goes to.
enum FeeTo {
    /// Paid to the block's proposer.
    Proposer,
    /// Held in the block's fee pool.
    Pool,
}

impl<'a> BlockBuilder<'a> {
    /// Lets contracts read the hashes of recent blocks
    /// ([`crate::CallContext::block_hash`]); without them a contract sees
    /// only the parent's.
    pub fn with_block_hashes(mut self, hashes: &'a crate::contract::BlockHashes) -> Self {
        self.block_hashes = Some(hashes);
        self
    }

    pub fn new(state: &'a State, registry: &'a ContractRegistry, env: BlockEnv, block_gas_limit: u64) -> Self {
        Self::over(state, registry, env, block_gas_limit)
    }

    /// A builder over any view of the parent state, e.g. the committed
    /// state with a decided but not yet committed parent's changes layered
    /// on (pipelined heights, [`crate::Chain::build_block_on`]).
    pub fn over(base: &'a dyn StateRead, registry: &'a ContractRegistry, env: BlockEnv, block_gas_limit: u64) -> Self {
        Self {
            registry,
            overlay: Overlay::new(base),
            env,
            block_gas_limit,
            gas_used: 0,
            txs: Vec::new(),
            receipts: Vec::new(),
            block_hashes: None,
            fee_pool: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn gas_used(&self) -> u64 {
        self.gas_used
    }

    /// The height of the block being built.
    pub fn height(&self) -> u64 {
        self.env.height
    }

    /// The block's gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.block_gas_limit
    }

    /// Gas left in the block.
    pub fn gas_left(&self) -> u64 {
        self.block_gas_limit.saturating_sub(self.gas_used)
    }

    /// Current view of state with this block's effects so far.
    pub fn state(&self) -> &dyn StateRead {
        &self.overlay
    }

    /// Applies one transaction (whose signature the caller has verified);
    /// its fee goes to the block's proposer.
    pub fn push(&mut self, stx: SignedTransaction) -> Result<&Receipt, TxRejected> {
        self.apply(stx, FeeTo::Proposer)
    }

    /// [`BlockBuilder::push`] with the fee held in the block's fee pool
    /// rather than paid to anyone (a leaderless block, whose fees are
    /// pooled and shared among the epoch's proposers): the sender pays as
    /// usual; [`BlockBuilder::share_fee_pool`] pays the pool out. A pool
    /// not paid out when the block is finished goes to the block's
    /// proposer, so no coin is ever destroyed.
    pub fn push_pooled(&mut self, stx: SignedTransaction) -> Result<&Receipt, TxRejected> {
        self.apply(stx, FeeTo::Pool)
    }

    /// The fees [`BlockBuilder::push_pooled`] took and not yet paid out.
    pub fn fee_pool(&self) -> Amount {
        Amount(self.fee_pool)
    }

    /// Pays the fee pool out equally among `to` (distinct addresses): each
    /// gets `⌊pool / k⌋` of the `k`, and the remainder (less than `k`
    /// units) goes to the one at position `seed mod k` (the first 16 bytes
    /// of `seed`, little-endian); no coin is created or destroyed. An
    /// empty `to` leaves the pool (to the block's proposer at the end).
    /// Returns what was paid out; on an overflow nothing is paid.
    pub fn share_fee_pool(&mut self, to: &[Address], seed: &Hash32) -> Result<Amount, TxRejected> {
        if to.is_empty() || self.fee_pool == 0 {
            return Ok(Amount(0));
        }
        let pool = self.fee_pool;
        let credits = shares(&self.overlay, pool, to, seed)?;
        for (a, acct) in to.iter().zip(&credits) {
            self.overlay.set_account(a, acct);
        }
        self.fee_pool = 0;
        Ok(Amount(pool))
    }

    /// Applies one transaction, its fee to `fee_to`.
    fn apply(&mut self, stx: SignedTransaction, fee_to: FeeTo) -> Result<&Receipt, TxRejected> {
        let tx = &stx.tx;
        let sender = stx.sender();
        if let Some(valid_until) = tx.kind.valid_until().filter(|u| self.env.height > *u) {
            return Err(TxRejected::Expired { valid_until, height: self.env.height });
        }
        if self.gas_used.saturating_add(tx.gas_limit) > self.block_gas_limit {
            return Err(TxRejected::BlockFull);
        }
        let mut acct = self.overlay.account(&sender);
        if acct.nonce != tx.nonce {
            return Err(TxRejected::Nonce { expected: acct.nonce, got: tx.nonce });
        }
        let max_cost = tx.max_cost().ok_or(TxRejected::Overflow)?;
        if acct.balance < max_cost {
            return Err(TxRejected::Balance { needed: max_cost, available: acct.balance });
        }
        acct.nonce += 1;
        self.overlay.set_account(&sender, &acct);

        let mut meter = GasMeter::new(tx.gas_limit);
        let mut events = Vec::new();
        let (status, output, changes) = {
            let mut inner = Overlay::new(&self.overlay);
            let result = match meter.charge(tx.intrinsic_gas()) {
                Err(e) => Err(ContractError::OutOfGas(e)),
                Ok(()) => run_body(
                    self.registry,
                    &mut inner,
                    &mut meter,
                    &mut events,
                    sender,
                    &tx.kind,
                    (self.env, self.block_hashes),
                ),
            };
            match result {
                Ok(out) => (TxStatus::Success, out, Some(inner.into_changes())),
                Err(e) => (TxStatus::Reverted(e.to_string()), Vec::new(), None),
            }
        };
        if let Some(c) = changes {
            self.overlay.absorb(c);
        } else {
            events.clear();
        }
        let used = meter.used();
        // Cannot overflow: used <= gas_limit and max_cost fitted.
        let fee = Amount(tx.gas_price.0 * used as u128);
        let mut acct = self.overlay.account(&sender);
        acct.balance = acct.balance.saturating_sub(fee);
        self.overlay.set_account(&sender, &acct);
        match fee_to {
            FeeTo::Proposer => {
                let proposer = self.env.proposer;
                let mut acct = self.overlay.account(&proposer);
                acct.balance = acct.balance.checked_add(fee).ok_or(TxRejected::Overflow)?;
                self.overlay.set_account(&proposer, &acct);
            }
            FeeTo::Pool => self.fee_pool = self.fee_pool.checked_add(fee.0).ok_or(TxRejected::Overflow)?,
        }

        self.gas_used += used;
        let receipt = Receipt {
            tx_hash: stx.hash(),
            height: self.env.height,
            index: self.txs.len() as u32,
            sender,
            status,
            gas_used: used,
            fee,
            events,
            output,
        };
        self.txs.push(stx);
        self.receipts.push(receipt);
        Ok(self.receipts.last().expect("just pushed"))
    }

    /// Computes the state root without touching `base` and returns the
    /// unsealed block.
    pub fn finish(self, chain_id: ChainId, parent: Hash32, proposer: PublicKey, base: &State) -> ExecutedBlock {
        let body = self.into_body();
        let root = base.root_after(&body.changes);
        body.into_block(chain_id, parent, proposer, root)
    }

    /// Ends execution, releasing the borrow of the base state so the caller
    /// can apply the changes to it and take the root from there.
    pub fn into_body(mut self) -> BuiltBody {
        if self.fee_pool > 0 {
            // Not shared out: the pool goes to the block's proposer (see
            // [`BlockBuilder::push_pooled`]). It was drawn from balances in
            // this state, so it fits beside them.
            let proposer = self.env.proposer;
            let mut acct = self.overlay.account(&proposer);
            acct.balance = Amount(acct.balance.0.saturating_add(self.fee_pool));
            self.overlay.set_account(&proposer, &acct);
            self.fee_pool = 0;
        }
        BuiltBody {
            env: self.env,
            gas_used: self.gas_used,
            txs: self.txs,
            receipts: self.receipts,
            changes: self.overlay.into_changes(),
        }
    }
}

/// An executed block body whose state root is not yet computed.
pub struct BuiltBody {
    env: BlockEnv,
    gas_used: u64,
    pub txs: Vec<SignedTransaction>,
    pub receipts: Vec<Receipt>,
    pub changes: Changes,
}

impl BuiltBody {
    /// Assembles the unsealed block with the given post-state root.
    pub fn into_block(
        self,
        chain_id: ChainId,
        parent: Hash32,
        proposer: PublicKey,
        state_root: Hash32,
    ) -> ExecutedBlock {
        let tx_root = merkle_root(&self.txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
        let receipt_root = merkle_root(&self.receipts.iter().map(|r| r.hash()).collect::<Vec<_>>());
        let header = BlockHeader {
            chain_id,
            height: self.env.height,
            parent,
            timestamp: self.env.timestamp,
            proposer,
            tx_root,
            receipt_root,
            state_root,
            gas_used: self.gas_used,
            tx_count: self.txs.len() as u32,
        };
        ExecutedBlock {
            block: Block { header, txs: self.txs, seal: Seal::Genesis },
            receipts: self.receipts,
            changes: self.changes,
        }
    }
}

/// The accounts of `to` after `amount` is shared among them: `⌊amount /
/// k⌋` each, the remainder to the one at position `seed mod k` (the first
/// 16 bytes of `seed`, little-endian). Nothing is written: the caller sets
/// them, in order, all or none (an address listed twice is credited
/// twice, its later entry holding both parts).
fn shares(state: &dyn StateRead, amount: u128, to: &[Address], seed: &Hash32) -> Result<Vec<Account>, TxRejected> {
    let k = to.len() as u128;
    if k == 0 {
        return Ok(Vec::new());
    }
    let (share, rest) = (amount / k, amount % k);
    let lucky = if rest == 0 {
        0
    } else {
        let mut head = [0u8; 16];
        head.copy_from_slice(&seed.0[..16]);
        (u128::from_le_bytes(head) % k) as usize
    };
    let mut out: Vec<Account> = Vec::with_capacity(to.len());
    for (i, a) in to.iter().enumerate() {
        let part = Amount(if i == lucky { share + rest } else { share });
        let mut acct = match to[..i].iter().rposition(|b| b == a) {
            Some(j) => out[j],
            None => state.account(a),
        };
        acct.balance = acct.balance.checked_add(part).ok_or(TxRejected::Overflow)?;
        out.push(acct);
    }
    Ok(out)
}

fn run_body(
    registry: &ContractRegistry,
    overlay: &mut Overlay<'_>,
    meter: &mut GasMeter,
    events: &mut Vec<Event>,
    sender: gridledger_core::Address,
    kind: &TxKind,
    (env, block_hashes): (BlockEnv, Option<&crate::contract::BlockHashes>),
) -> Result<Vec<u8>, ContractError> {
    match kind {
        TxKind::Transfer { to, amount } | TxKind::TransferUntil { to, amount, .. } => {
            move_coin(overlay, &sender, to, *amount)?;
            events.push(Event {
                emitter: 0,
                name: "transfer".into(),
                attributes: vec![
                    ("from".into(), sender.to_string()),
                    ("to".into(), to.to_string()),
                    ("amount".into(), amount.to_string()),
                ],
            });
            Ok(Vec::new())
        }
        TxKind::Call { contract, method, args, value } => {
            meter.charge(gas::CALL)?;
            let Some(c) = registry.get(*contract) else {
                return Err(ContractError::Revert(format!("no contract with id {contract}")));
            };
            move_coin(overlay, &sender, &contract_address(*contract), *value)?;
            let mut ctx = CallContext {
                overlay,
                meter,
                events,
                caller: sender,
                value: *value,
                contract: *contract,
                env,
                block_hashes,
            };
            c.call(&mut ctx, method, args)
        }
    }
}

fn move_coin(
    overlay: &mut Overlay<'_>,
    from: &gridledger_core::Address,
    to: &gridledger_core::Address,
    amount: Amount,
) -> Result<(), ContractError> {
    if amount.is_zero() || from == to {
        return Ok(());
    }
    let mut a = overlay.account(from);
    a.balance = a.balance.checked_sub(amount).ok_or_else(|| ContractError::Revert("insufficient balance".into()))?;
    overlay.set_account(from, &a);
    let mut b = overlay.account(to);
    b.balance = b.balance.checked_add(amount).ok_or_else(|| ContractError::Revert("balance overflow".into()))?;
    overlay.set_account(to, &b);
    Ok(())
}
