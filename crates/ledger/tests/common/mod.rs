//! Set-up shared by the ledger's integration tests (block filling, the
//! duty lane, deadline transfers, the mutants): a plain chain, a `Duties`
//! contract and a chain with an 8-transaction block, and helpers to seal
//! blocks and keep transactions pending.

#![allow(dead_code)]

use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{
    CallContext, Chain, ChainConfig, ContractError, ContractRegistry, NativeContract, SignedTransaction, Transaction,
    TxKind, ViewContext,
};
use std::sync::Arc;

pub const BAL: Amount = Amount(1_000_000_000_000);
pub const DUTY_CONTRACT: u32 = 7;
/// A Byzantine registered node.
pub const BYZANTINE: usize = 9;
/// An honest registered node.
pub const HONEST: usize = 10;
/// The account that floods the chain with dearer ordinary transfers.
pub const FLOOD: usize = 1;

/// A contract whose `work` called by a registered node is a duty (as the
/// BoB's `relay`/`prove`/`cct_v` by `BobConfig::nodes`). Its `burn` (an
/// ordinary method) needs more gas than any limit: it runs out of gas and
/// is charged its whole gas limit, standing for any heavy call.
pub struct Duties(pub Vec<Address>);

impl NativeContract for Duties {
    fn name(&self) -> &'static str {
        "duties"
    }
    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, _: &[u8]) -> Result<Vec<u8>, ContractError> {
        if method == "burn" {
            ctx.charge(u64::MAX)?;
        }
        Ok(Vec::new())
    }
    fn view(&self, _: &ViewContext<'_>, _: &str, _: &[u8]) -> Result<serde_json::Value, ContractError> {
        Ok(serde_json::Value::Null)
    }
    fn duty(&self, sender: &Address, method: &str) -> bool {
        self.0.contains(sender) && method == "work"
    }
}

/// Blocks of 8 transactions: the lane is 2 of them (25 %).
pub fn lane_config() -> ChainConfig {
    ChainConfig { max_block_txs: 8, ..ChainConfig::default() }
}

/// A chain with `Duties` registered for dev keys `BYZANTINE` and `HONEST`
/// (the registered nodes), opened with `config`.
pub fn chain_with(dir: &std::path::Path, config: ChainConfig) -> Chain {
    chain_of(dir, 20, config)
}

/// [`chain_with`] of `accounts` dev accounts holding `BAL` each.
pub fn chain_of(dir: &std::path::Path, accounts: usize, config: ChainConfig) -> Chain {
    let mut reg = ContractRegistry::new();
    reg.register(DUTY_CONTRACT, Arc::new(Duties(vec![dev_key(BYZANTINE).address(), dev_key(HONEST).address()])));
    Chain::open(dir, dev_genesis(1, accounts, BAL, &[dev_validator(0)]), reg, config).expect("open")
}

/// `chain_with` under `lane_config`.
pub fn chain(dir: &std::path::Path) -> Chain {
    chain_with(dir, lane_config())
}

/// A chain of `accounts` dev accounts holding `bal` each, dev validator 0,
/// no contracts, the default config.
pub fn plain_chain(dir: &std::path::Path, accounts: usize, bal: Amount) -> Chain {
    Chain::open(
        dir,
        dev_genesis(1, accounts, bal, &[dev_validator(0)]),
        ContractRegistry::new(),
        ChainConfig::default(),
    )
    .expect("open")
}

/// Commits one block of whatever is pending (possibly empty), 1 000 ms
/// after the last; returns how many transactions it holds.
pub fn seal(c: &mut Chain, ts: &mut u64) -> usize {
    *ts += 1_000;
    let (ex, _) = c.build_block(&dev_validator(0).public(), *ts);
    let n = ex.block.txs.len();
    c.commit(ex).expect("commit");
    n
}

/// A call of `method` on the `Duties` contract by dev key `key`.
pub fn call_method(key: usize, nonce: u64, method: &str, price: u128) -> SignedTransaction {
    call_with_gas(key, nonce, method, 100_000, price)
}

/// A call of `method` on the `Duties` contract by dev key `key` with gas
/// limit `gas`.
pub fn call_with_gas(key: usize, nonce: u64, method: &str, gas: u64, price: u128) -> SignedTransaction {
    let k = dev_key(key);
    Transaction {
        chain_id: 1,
        sender: k.public(),
        nonce,
        gas_limit: gas,
        gas_price: Amount(price),
        kind: TxKind::Call { contract: DUTY_CONTRACT, method: method.into(), args: Vec::new(), value: Amount::ZERO },
    }
    .sign(&k)
}

/// A call of `work` (a duty for a registered node).
pub fn call(key: usize, nonce: u64, price: u128) -> SignedTransaction {
    call_method(key, nonce, "work", price)
}

/// Keeps `depth` transactions of `key` pending, each made by `make(nonce)`.
pub fn keep(c: &mut Chain, key: usize, depth: u64, make: impl Fn(u64) -> SignedTransaction) {
    let a = dev_key(key).address();
    let committed = c.account(&a).nonce;
    let mut next = c.next_nonce(&a);
    while next - committed < depth {
        c.submit(&make(next).to_bytes()).expect("admitted");
        next += 1;
    }
}

/// Two blocks' worth of ordinary transfers at price 5.
pub fn flood(c: &mut Chain) {
    let k = dev_key(FLOOD);
    keep(c, FLOOD, 16, |n| transfer(&k, 1, n, k.address(), Amount(1), Amount(5)));
}

/// Blocks of 16 transactions: the lane is 4 places (25 %) and 75 M gas
/// (25 % of the default 300 M), so four registered nodes are within the
/// lane's count.
pub fn four_place_config() -> ChainConfig {
    ChainConfig { max_block_txs: 16, ..ChainConfig::default() }
}

/// The registered nodes: dev keys 9 (`BYZANTINE`), 10 (`HONEST`), 11, 12.
pub const NODES: [usize; 4] = [BYZANTINE, HONEST, 11, 12];

/// A chain whose `Duties` contract registers [`NODES`].
pub fn four_node_chain(dir: &std::path::Path, config: ChainConfig) -> Chain {
    let mut reg = ContractRegistry::new();
    let nodes: Vec<Address> = NODES.iter().map(|k| dev_key(*k).address()).collect();
    reg.register(DUTY_CONTRACT, Arc::new(Duties(nodes)));
    Chain::open(dir, dev_genesis(1, 40, BAL, &[dev_validator(0)]), reg, config).expect("open")
}

/// Two blocks' worth of ordinary transfers at price 5 kept pending.
pub fn flood2(c: &mut Chain, config: &ChainConfig) {
    let k = dev_key(FLOOD);
    keep(c, FLOOD, 2 * config.max_block_txs as u64, |n| transfer(&k, 1, n, k.address(), Amount(1), Amount(5)));
}
