//! Token and escrow contracts on a real chain: effects, refusals (each one
//! reverts with a reason and changes nothing but nonce and fee), gas and
//! time-locks.

use gridledger_contracts::escrow::{Id, Lock, Pay};
use gridledger_contracts::token::{Approve, BalanceOf, Create, Mint, Transfer, TransferFrom};
use gridledger_contracts::{args, default_registry, ESCROW_ID, TOKEN_ID};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{call, dev_key, DevChain};
use gridledger_ledger::{contract_address, Receipt, StateRead, TxStatus};

const BAL: Amount = Amount(1_000_000_000_000);

fn chain(dir: &std::path::Path) -> DevChain {
    DevChain::open(dir, 6, BAL, default_registry()).unwrap()
}

fn token_balance(dc: &DevChain, sym: &str, owner: Address) -> u128 {
    let v = dc.chain.view(TOKEN_ID, "balance", &args(&BalanceOf { symbol: sym.into(), owner })).unwrap();
    v["balance"].as_str().unwrap().parse().unwrap()
}

/// Runs a call expected to revert with `reason` and checks that only the
/// sender's nonce and fee changed.
fn reverts(
    dc: &mut DevChain,
    key: &KeyPair,
    contract: u32,
    method: &str,
    a: Vec<u8>,
    value: Amount,
    reason: &str,
) -> Receipt {
    let before = dc.chain.state().account(&key.address());
    let escrow_before = dc.chain.state().account(&contract_address(contract)).balance;
    let r = dc.call(key, contract, method, a, value).unwrap();
    match &r.status {
        TxStatus::Reverted(why) => assert!(why.contains(reason), "reason {why:?} lacks {reason:?}"),
        s => panic!("expected revert, got {s:?}"),
    }
    assert!(r.events.is_empty());
    let after = dc.chain.state().account(&key.address());
    assert_eq!(after.nonce, before.nonce + 1);
    assert_eq!(after.balance.0, before.balance.0 - r.fee.0, "only the fee is charged");
    assert_eq!(dc.chain.state().account(&contract_address(contract)).balance, escrow_before);
    r
}

#[test]
fn token_lifecycle_and_refusals() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = chain(d.path());
    let (issuer, alice, bob) = (dev_key(0), dev_key(1), dev_key(2));
    let r = dc
        .call(&issuer, TOKEN_ID, "create", args(&Create { symbol: "KWH".into(), supply: 1_000 }), Amount::ZERO)
        .unwrap();
    assert_eq!(r.status, TxStatus::Success);
    // create costs: base + call + calldata + 2 new slots + event; within an order of Ethereum's ERC-20 deploy-free mint.
    assert!(r.gas_used > 21_000 + 2 * 20_000, "gas {}", r.gas_used);
    dc.call(
        &issuer,
        TOKEN_ID,
        "transfer",
        args(&Transfer { symbol: "KWH".into(), to: alice.address(), amount: 300 }),
        Amount::ZERO,
    )
    .unwrap();
    assert_eq!(token_balance(&dc, "KWH", issuer.address()), 700);
    assert_eq!(token_balance(&dc, "KWH", alice.address()), 300);

    reverts(
        &mut dc,
        &issuer,
        TOKEN_ID,
        "create",
        args(&Create { symbol: "KWH".into(), supply: 5 }),
        Amount::ZERO,
        "exists",
    );
    reverts(
        &mut dc,
        &issuer,
        TOKEN_ID,
        "create",
        args(&Create { symbol: "kwh!".into(), supply: 5 }),
        Amount::ZERO,
        "symbol",
    );
    reverts(
        &mut dc,
        &alice,
        TOKEN_ID,
        "transfer",
        args(&Transfer { symbol: "KWH".into(), to: bob.address(), amount: 301 }),
        Amount::ZERO,
        "insufficient KWH balance",
    );
    reverts(
        &mut dc,
        &alice,
        TOKEN_ID,
        "mint",
        args(&Mint { symbol: "KWH".into(), to: alice.address(), amount: 1 }),
        Amount::ZERO,
        "issuer",
    );
    reverts(&mut dc, &alice, TOKEN_ID, "transfer", vec![1, 2, 3], Amount::ZERO, "bad arguments");
    reverts(&mut dc, &alice, TOKEN_ID, "steal", vec![], Amount::ZERO, "no method");
    reverts(&mut dc, &alice, 99, "x", vec![], Amount::ZERO, "no contract");
    assert_eq!(token_balance(&dc, "KWH", alice.address()), 300);

    // Allowances.
    dc.call(
        &alice,
        TOKEN_ID,
        "approve",
        args(&Approve { symbol: "KWH".into(), spender: bob.address(), amount: 100 }),
        Amount::ZERO,
    )
    .unwrap();
    let tf = |amount| args(&TransferFrom { symbol: "KWH".into(), from: alice.address(), to: bob.address(), amount });
    reverts(&mut dc, &bob, TOKEN_ID, "transfer_from", tf(101), Amount::ZERO, "allowance");
    let r = dc.call(&bob, TOKEN_ID, "transfer_from", tf(60), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(token_balance(&dc, "KWH", bob.address()), 60);
    reverts(&mut dc, &bob, TOKEN_ID, "transfer_from", tf(41), Amount::ZERO, "allowance");
}

#[test]
fn out_of_gas_reverts_everything() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = chain(d.path());
    let k = dev_key(0);
    let nonce = dc.nonce(&k);
    let tx = call(
        &k,
        DevChain::CHAIN_ID,
        nonce,
        TOKEN_ID,
        "create",
        args(&Create { symbol: "X".into(), supply: 1 }),
        Amount::ZERO,
        30_000,
    );
    let r = dc.exec(tx).unwrap();
    assert!(matches!(&r.status, TxStatus::Reverted(m) if m.contains("out of gas")), "{:?}", r.status);
    assert_eq!(r.gas_used, 30_000);
    assert!(dc
        .chain
        .view(TOKEN_ID, "meta", &args(&gridledger_contracts::token::Symbol { symbol: "X".into() }))
        .is_err());
}

#[test]
fn escrow_time_locks_and_parties() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = chain(d.path());
    let (participant, merchant, stranger) = (dev_key(0), dev_key(1), dev_key(2));
    let unlock = dc.now + 10_000;
    let expiry = dc.now + 20_000;
    let lock = Lock { beneficiary: merchant.address(), arbiter: None, unlock_at: unlock, expires_at: Some(expiry) };
    reverts(&mut dc, &participant, ESCROW_ID, "lock", args(&lock), Amount::ZERO, "positive value");
    reverts(
        &mut dc,
        &participant,
        ESCROW_ID,
        "lock",
        args(&Lock { expires_at: Some(unlock - 1), ..lock.clone() }),
        Amount(5),
        "precedes",
    );
    let r = dc.call(&participant, ESCROW_ID, "lock", args(&lock), Amount(1_000)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let id: u64 = borsh::from_slice(&r.output).unwrap();
    assert_eq!(dc.chain.state().account(&contract_address(ESCROW_ID)).balance, Amount(1_000));

    // The merchant cannot enforce before the window; strangers never.
    reverts(
        &mut dc,
        &merchant,
        ESCROW_ID,
        "claim",
        args(&Pay { id, amount: Amount(400) }),
        Amount::ZERO,
        "time-locked",
    );
    reverts(&mut dc, &stranger, ESCROW_ID, "claim", args(&Pay { id, amount: Amount(1) }), Amount::ZERO, "beneficiary");
    reverts(
        &mut dc,
        &stranger,
        ESCROW_ID,
        "release",
        args(&Pay { id, amount: Amount(1) }),
        Amount::ZERO,
        "depositor or arbiter",
    );
    reverts(&mut dc, &participant, ESCROW_ID, "refund", args(&Id { id }), Amount::ZERO, "after expiry");

    // The depositor may pay the beneficiary at any time.
    let m0 = dc.chain.account(&merchant.address()).balance;
    dc.call(&participant, ESCROW_ID, "release", args(&Pay { id, amount: Amount(100) }), Amount::ZERO).unwrap();
    assert_eq!(dc.chain.account(&merchant.address()).balance.0, m0.0 + 100);

    dc.now = unlock;
    let r = dc.call(&merchant, ESCROW_ID, "claim", args(&Pay { id, amount: Amount(400) }), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    reverts(&mut dc, &merchant, ESCROW_ID, "claim", args(&Pay { id, amount: Amount(501) }), Amount::ZERO, "holds 500");

    dc.now = expiry;
    let p0 = dc.chain.account(&participant.address()).balance;
    let r = dc.call(&participant, ESCROW_ID, "refund", args(&Id { id }), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(dc.chain.account(&participant.address()).balance.0, p0.0 + 500 - r.fee.0);
    assert_eq!(dc.chain.state().account(&contract_address(ESCROW_ID)).balance, Amount::ZERO);
    reverts(&mut dc, &participant, ESCROW_ID, "refund", args(&Id { id }), Amount::ZERO, "no open deposit");
}
