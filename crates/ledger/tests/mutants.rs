//! Mutation sensitivity of block filling and the mempool (attack r16):
//! each bug planted behind the `mutants` feature — candidates skipped for
//! gas count toward the walk's stop, no duty lane, a replacement without
//! the minimum bump — must make its check fail, while every check passes
//! on the real code (the control).
//!
//! Run with `cargo test -p gridledger-ledger --features mutants --test mutants`.

use gridledger_core::{Address, Amount};
use gridledger_ledger::chain::Mutation;
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{
    CallContext, Chain, ChainConfig, ContractError, ContractRegistry, NativeContract, SignedTransaction, SubmitError,
    Transaction, TxKind, ViewContext,
};
use std::sync::Arc;

const BAL: Amount = Amount(1_000_000_000_000);
const DUTY_CONTRACT: u32 = 7;

/// A contract whose `work` called by dev key 9 is a duty.
struct Duties(Address);

impl NativeContract for Duties {
    fn name(&self) -> &'static str {
        "duties"
    }
    fn call(&self, _: &mut CallContext<'_, '_>, _: &str, _: &[u8]) -> Result<Vec<u8>, ContractError> {
        Ok(Vec::new())
    }
    fn view(&self, _: &ViewContext<'_>, _: &str, _: &[u8]) -> Result<serde_json::Value, ContractError> {
        Ok(serde_json::Value::Null)
    }
    fn duty(&self, sender: &Address, method: &str) -> bool {
        *sender == self.0 && method == "work"
    }
}

fn chain(dir: &std::path::Path, mutation: Option<Mutation>) -> Chain {
    let mut reg = ContractRegistry::new();
    reg.register(DUTY_CONTRACT, Arc::new(Duties(dev_key(9).address())));
    let config = ChainConfig { max_block_txs: 8, mutation, ..ChainConfig::default() };
    Chain::open(dir, dev_genesis(1, 20, BAL, &[dev_validator(0)]), reg, config).expect("open")
}

fn seal(c: &mut Chain, ts: &mut u64) {
    *ts += 1_000;
    let (ex, _) = c.build_block(&dev_validator(0).public(), *ts);
    c.commit(ex).expect("commit");
}

fn call(key: usize, nonce: u64, method: &str, price: u128) -> SignedTransaction {
    let k = dev_key(key);
    Transaction {
        chain_id: 1,
        sender: k.public(),
        nonce,
        gas_limit: 100_000,
        gas_price: Amount(price),
        kind: TxKind::Call { contract: DUTY_CONTRACT, method: method.into(), args: Vec::new(), value: Amount::ZERO },
    }
    .sign(&k)
}

/// [5]: nine accounts keep a block-sized transfer pending (one placed, the
/// rest skipped each block, more than `max_block_txs`); an ordinary
/// transfer is still included within three blocks.
fn skips_do_not_end_the_walk(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let honest = transfer(&dev_key(0), 1, 0, dev_key(3).address(), Amount(10), Amount(1));
    let mut ts = 0;
    for _ in 0..3 {
        for k in 10..19 {
            let key = dev_key(k);
            let a = key.address();
            if c.next_nonce(&a) == c.account(&a).nonce {
                let mut tx = transfer(&key, 1, c.next_nonce(&a), a, Amount(1), Amount(2)).tx;
                tx.gas_limit = ChainConfig::default().block_gas_limit;
                c.submit(&tx.sign(&key).to_bytes()).map_err(|e| e.to_string())?;
            }
        }
        if c.next_nonce(&dev_key(0).address()) == 0 {
            c.submit(&honest.to_bytes()).map_err(|e| e.to_string())?;
        }
        seal(&mut c, &mut ts);
    }
    match c.receipt(&honest.hash()).map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err("the ordinary transfer was never tried".into()),
    }
}

/// [6]: two blocks' worth of transfers at price 3 pending; a duty call at
/// price 1 still goes into the next block (the lane), a stranger's call
/// of the same method does not.
fn duties_take_the_lane(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let flood = dev_key(1);
    for n in 0..16 {
        c.submit(&transfer(&flood, 1, n, flood.address(), Amount(1), Amount(3)).to_bytes())
            .map_err(|e| e.to_string())?;
    }
    let duty = call(9, 0, "work", 1);
    let stranger = call(8, 0, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    c.submit(&stranger.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    if c.receipt(&stranger.hash()).map_err(|e| e.to_string())?.is_some() {
        return Err("a stranger's call took the lane".into());
    }
    match c.receipt(&duty.hash()).map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err("the duty was outbid".into()),
    }
}

/// [2]: a replacement must pay 10 % more: 21 does not replace 20, 22 does.
fn replacement_needs_the_bump(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let key = dev_key(2);
    let at = |amount: u128, price: u128| transfer(&key, 1, 0, key.address(), Amount(amount), Amount(price));
    let first = at(1, 20);
    c.submit(&first.to_bytes()).map_err(|e| e.to_string())?;
    match c.submit(&at(2, 21).to_bytes()) {
        Err(SubmitError::ReplacementUnderpriced { min: Amount(22), .. }) => {}
        r => return Err(format!("a 5 % bump: {r:?}")),
    }
    let dear = at(3, 22);
    c.submit(&dear.to_bytes()).map_err(|e| e.to_string())?;
    if c.mempool().contains(&first.hash()) || !c.mempool().contains(&dear.hash()) || c.mempool().len() != 1 {
        return Err("the replacement did not take the place".into());
    }
    Ok(())
}

type Check = fn(Option<Mutation>) -> Result<(), String>;

const CHECKS: &[(&str, Check)] = &[
    ("skips do not end the walk", skips_do_not_end_the_walk),
    ("duties take the lane", duties_take_the_lane),
    ("replacement needs the bump", replacement_needs_the_bump),
];

fn failing(m: Option<Mutation>) -> Vec<&'static str> {
    CHECKS.iter().filter(|(_, check)| check(m).is_err()).map(|(name, _)| *name).collect()
}

#[test]
fn control_every_check_passes_on_the_real_code() {
    for (name, check) in CHECKS {
        assert_eq!(check(None), Ok(()), "{name}");
    }
}

#[test]
fn each_planted_bug_is_caught() {
    for (m, caught_by) in [
        (Mutation::SkipsCountTowardStop, vec!["skips do not end the walk"]),
        (Mutation::NoDutyLane, vec!["duties take the lane"]),
        (Mutation::ReplaceWithoutBump, vec!["replacement needs the bump"]),
    ] {
        assert_eq!(failing(Some(m)), caught_by, "mutant {m:?} must be caught by exactly its checks");
    }
}
