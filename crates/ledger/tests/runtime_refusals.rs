//! Refusals inside execution: the contract runtime's reverts (corrupt
//! storage, paying more than the contract holds, a balance that would
//! overflow), a native transfer whose recipient would overflow, a proposer
//! whose fee credit would overflow, the chain client's typed errors and a
//! store file that is not a database. Each leaves balances and storage as
//! they were (only the sender's nonce and fee move, as for any revert).

use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer, DevChain};
use gridledger_ledger::state::{account_key, contract_key, Changes};
use gridledger_ledger::{
    contract_address, Account, BlockBuilder, BlockEnv, CallContext, Chain, ChainClient, ChainConfig, ChainError,
    ClientError, ContractError, ContractRegistry, NativeContract, State, StateRead, StoreError, SubmitError,
    TxRejected, TxStatus, ViewContext,
};
use std::sync::Arc;

const ID: u32 = 42;

/// A contract whose methods each hit one runtime refusal.
struct Probe;

impl NativeContract for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        match method {
            // Writes a slot, then reads it back as a type it cannot be.
            "corrupt" => {
                ctx.write(b"slot", vec![1, 2, 3])?;
                let _: Option<u64> = ctx.read_typed(b"slot")?;
                Ok(vec![])
            }
            // Pays the caller the amount in `args` (u128 LE) out of the contract.
            "pay" => {
                let amount = u128::from_le_bytes(args.try_into().map_err(|_| ContractError::Revert("args".into()))?);
                ctx.write(b"paid", vec![1])?;
                ctx.pay(&ctx.caller(), Amount(amount))?;
                Ok(vec![])
            }
            _ => Err(ContractError::Revert(format!("no method {method}"))),
        }
    }

    fn view(&self, _: &ViewContext<'_>, _: &str, _: &[u8]) -> Result<serde_json::Value, ContractError> {
        Ok(serde_json::Value::Null)
    }
}

fn registry() -> ContractRegistry {
    let mut r = ContractRegistry::new();
    r.register(ID, Arc::new(Probe));
    r
}

fn call(nonce: u64, method: &str, args: Vec<u8>, value: u128) -> gridledger_ledger::SignedTransaction {
    gridledger_ledger::devnet::call(&dev_key(0), 1, nonce, ID, method, args, Amount(value), 200_000)
}

#[test]
fn contract_runtime_reverts_leave_storage_and_balances_unchanged() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    let me = dev_key(0).address();
    let rows: Vec<(&str, &str, Vec<u8>, u128, &str)> = vec![
        ("storage holding another type", "corrupt", vec![], 0, "reverted: corrupt contract storage"),
        (
            "paying more than the contract holds",
            "pay",
            500u128.to_le_bytes().to_vec(),
            100,
            "reverted: contract balance too low",
        ),
        ("an unknown method", "nope", vec![], 7, "reverted: no method nope"),
    ];
    for (name, method, args, value, reason) in rows {
        let before = dc.chain.account(&me);
        let contract_before = dc.chain.account(&contract_address(ID));
        let r = dc.exec(call(dc.nonce(&dev_key(0)), method, args, value)).unwrap();
        assert_eq!(r.status, TxStatus::Reverted(reason.into()), "{name}");
        assert!(r.events.is_empty(), "{name}: a reverted call emitted events");
        // Only the nonce and the fee moved; the attached value came back.
        let after = dc.chain.account(&me);
        assert_eq!(after.nonce, before.nonce + 1, "{name}");
        assert_eq!(after.balance.0, before.balance.0 - r.fee.0, "{name}");
        assert_eq!(dc.chain.account(&contract_address(ID)), contract_before, "{name}");
        for slot in [&b"slot"[..], b"paid"] {
            assert_eq!(dc.chain.state().get(&contract_key(ID, slot)), None, "{name}: storage written");
        }
    }
    // Paying what it holds succeeds, so the refusal above was about the amount.
    let r = dc.exec(call(dc.nonce(&dev_key(0)), "pay", 100u128.to_le_bytes().to_vec(), 100)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(dc.chain.account(&contract_address(ID)).balance, Amount::ZERO);
}

#[test]
fn running_out_of_gas_reverts_with_the_meter_reading_and_charges_the_limit() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 2, Amount(1_000_000_000), registry()).unwrap();
    let me = dev_key(0).address();
    let before = dc.chain.account(&me);
    // Intrinsic 21,000 + 7 non-zero calldata bytes × 16 + call 2,600 = 23,712;
    // the 3-byte slot write (20,000 for a new slot) does not fit in 30,000.
    let limit = 30_000;
    let tx = gridledger_ledger::devnet::call(&dev_key(0), 1, 0, ID, "corrupt", vec![], Amount(5), limit);
    let r = dc.exec(tx).unwrap();
    let want = ContractError::OutOfGas(gridledger_ledger::gas::OutOfGas { limit, needed: 23_712 + 20_000 });
    assert_eq!(r.status, TxStatus::Reverted(want.to_string()));
    assert_eq!(r.gas_used, limit, "a call that runs dry pays its whole limit");
    assert_eq!(dc.chain.account(&me).balance.0, before.balance.0 - u128::from(limit));
    assert_eq!(dc.chain.state().get(&contract_key(ID, b"slot")), None);
    assert_eq!(dc.chain.account(&contract_address(ID)).balance, Amount::ZERO, "the value came back");
}

/// A state no genesis could produce (supply beyond `u128`), to reach the
/// executor's overflow guards.
fn overfull_state(entries: &[(Address, u128)]) -> State {
    let mut s = State::new(4);
    let changes: Changes = entries
        .iter()
        .map(|(a, b)| (account_key(a), Some(borsh::to_vec(&Account { balance: Amount(*b), nonce: 0 }).unwrap())))
        .collect();
    s.apply(&changes);
    s
}

#[test]
fn overflowing_credits_are_refused() {
    let reg = registry();
    let (alice, bob, proposer) = (dev_key(0), dev_key(1), dev_validator(0).address());
    // A transfer whose recipient would overflow reverts: nothing moves.
    let s = overfull_state(&[(alice.address(), 1_000), (bob.address(), u128::MAX)]);
    let env = BlockEnv { chain_id: 1, height: 1, timestamp: 1, proposer, parent: gridledger_core::Hash32::ZERO };
    let mut b = BlockBuilder::new(&s, &reg, env, 10_000_000);
    let t = transfer(&alice, 1, 0, bob.address(), Amount(10), Amount(0));
    let r = b.push(t).unwrap().clone();
    assert_eq!(r.status, TxStatus::Reverted("reverted: balance overflow".into()));
    assert_eq!(b.state().account(&bob.address()).balance, Amount::MAX);
    assert_eq!(b.state().account(&alice.address()), Account { balance: Amount(1_000), nonce: 1 });

    // A proposer whose fee credit would overflow: the transaction is not placed.
    let s = overfull_state(&[(alice.address(), 1_000_000), (proposer, u128::MAX)]);
    let mut b = BlockBuilder::new(&s, &reg, env, 10_000_000);
    let t = transfer(&alice, 1, 0, bob.address(), Amount(10), Amount(1));
    assert_eq!(b.push(t).map(|_| ()), Err(TxRejected::Overflow));
    assert_eq!(b.len(), 0);
    assert_eq!(b.gas_used(), 0);
}

#[test]
fn chain_client_errors_are_typed() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 2, Amount(1_000_000), registry()).unwrap();
    let tip = dc.chain.tip().clone();
    let mut bad = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(1), Amount(1));
    bad.tx.chain_id = 5;
    match ChainClient::exec(&mut dc, &bad) {
        Err(ClientError::Submit(SubmitError::WrongChain { expected: 1, got: 5 })) => {}
        other => panic!("{other:?}"),
    }
    match ChainClient::view(&dc, 99, "x", &[]) {
        Err(ClientError::Chain(m)) => assert!(m.contains("no contract with id 99"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(*dc.chain.tip(), tip);
    assert_eq!(dc.chain.mempool().len(), 0);
}

#[test]
fn a_store_file_that_is_not_a_database_is_refused_and_left_alone() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("chain.redb");
    std::fs::write(&path, b"this is not a redb database, and must survive the attempt").unwrap();
    let genesis = gridledger_ledger::devnet::dev_genesis(1, 2, Amount(5), &[dev_validator(0)]);
    match Chain::open(d.path(), genesis, ContractRegistry::new(), ChainConfig::default()) {
        Err(ChainError::Store(StoreError::Db(m))) => assert!(!m.is_empty()),
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("opened"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"this is not a redb database, and must survive the attempt");
}
