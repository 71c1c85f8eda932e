//! Every refusal of the token and escrow contracts, table-driven: each call
//! reverts with exactly its reason, emits nothing, and changes nothing but the
//! sender's nonce and fee — token balances, supplies, allowances, deposits and
//! the escrow's coin are compared before and after.

use gridledger_contracts::escrow::{Id, Lock, Pay};
use gridledger_contracts::token::{Allowance, BalanceOf, Burn, Create, Mint, Symbol, Transfer};
use gridledger_contracts::{args, default_registry, ESCROW_ID, TOKEN_ID};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::{contract_address, ContractError, StateRead, TxStatus};

const BAL: Amount = Amount(1_000_000_000_000);

/// Everything a token or escrow refusal could have touched, read through views.
#[derive(Debug, PartialEq)]
struct Snapshot {
    accounts: Vec<(u64, Amount)>,
    escrow_coin: Amount,
    token: Vec<serde_json::Value>,
    deposits: Vec<Option<serde_json::Value>>,
}

fn snapshot(dc: &DevChain, keys: &[&KeyPair]) -> Snapshot {
    let owners: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let mut token = Vec::new();
    for sym in ["KWH", "NEW1"] {
        token.push(dc.chain.view(TOKEN_ID, "meta", &args(&Symbol { symbol: sym.into() })).unwrap_or_default());
        for o in &owners {
            token
                .push(dc.chain.view(TOKEN_ID, "balance", &args(&BalanceOf { symbol: sym.into(), owner: *o })).unwrap());
            for s in &owners {
                token.push(
                    dc.chain
                        .view(TOKEN_ID, "allowance", &args(&Allowance { symbol: sym.into(), owner: *o, spender: *s }))
                        .unwrap(),
                );
            }
        }
    }
    let deposits = (0..3).map(|id| dc.chain.view(ESCROW_ID, "get", &args(&Id { id })).ok()).collect();
    Snapshot {
        accounts: owners
            .iter()
            .map(|a| {
                let acc = dc.chain.state().account(a);
                (acc.nonce, acc.balance)
            })
            .collect(),
        escrow_coin: dc.chain.state().account(&contract_address(ESCROW_ID)).balance,
        token,
        deposits,
    }
}

struct Case {
    name: &'static str,
    who: usize,
    contract: u32,
    method: &'static str,
    args: Vec<u8>,
    value: Amount,
    reason: String,
}

/// Runs each case: exact reason, no events, only the sender's nonce and fee moved.
fn run(dc: &mut DevChain, keys: &[&KeyPair], cases: Vec<Case>) {
    for c in cases {
        let before = snapshot(dc, keys);
        let key = keys[c.who];
        let r = dc.call(key, c.contract, c.method, c.args, c.value).unwrap();
        assert_eq!(r.status, TxStatus::Reverted(format!("reverted: {}", c.reason)), "case {}", c.name);
        assert!(r.events.is_empty(), "case {}: events {:?}", c.name, r.events);
        let mut expected = before;
        expected.accounts[c.who].0 += 1;
        expected.accounts[c.who].1 = Amount(expected.accounts[c.who].1 .0 - r.fee.0);
        assert_eq!(snapshot(dc, keys), expected, "case {}: something besides nonce and fee changed", c.name);
    }
}

#[test]
fn token_refusals_name_their_reason_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 4, BAL, default_registry()).unwrap();
    let (issuer, alice, bob) = (dev_key(0), dev_key(1), dev_key(2));
    let r = dc
        .call(&issuer, TOKEN_ID, "create", args(&Create { symbol: "KWH".into(), supply: 1_000 }), Amount::ZERO)
        .unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let r = dc
        .call(
            &issuer,
            TOKEN_ID,
            "transfer",
            args(&Transfer { symbol: "KWH".into(), to: alice.address(), amount: 300 }),
            Amount::ZERO,
        )
        .unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let keys = [&issuer, &alice, &bob];
    let case = |name, who, method, a: Vec<u8>, value, reason: &str| Case {
        name,
        who,
        contract: TOKEN_ID,
        method,
        args: a,
        value,
        reason: reason.to_string(),
    };
    let cases = vec![
        case(
            "native value on a token call",
            1,
            "transfer",
            args(&Transfer { symbol: "KWH".into(), to: bob.address(), amount: 1 }),
            Amount(7),
            "token calls take no native value",
        ),
        case(
            "empty symbol",
            0,
            "create",
            args(&Create { symbol: String::new(), supply: 5 }),
            Amount::ZERO,
            "symbol must be 1-12 characters A-Z or 0-9",
        ),
        case(
            "13-character symbol",
            0,
            "create",
            args(&Create { symbol: "ABCDEFGHIJKLM".into(), supply: 5 }),
            Amount::ZERO,
            "symbol must be 1-12 characters A-Z or 0-9",
        ),
        case(
            "lower-case symbol",
            0,
            "create",
            args(&Create { symbol: "kwh".into(), supply: 5 }),
            Amount::ZERO,
            "symbol must be 1-12 characters A-Z or 0-9",
        ),
        case(
            "symbol taken",
            1,
            "create",
            args(&Create { symbol: "KWH".into(), supply: 5 }),
            Amount::ZERO,
            "token KWH exists",
        ),
        case(
            "transfer of an unknown token",
            1,
            "transfer",
            args(&Transfer { symbol: "NEW1".into(), to: bob.address(), amount: 0 }),
            Amount::ZERO,
            "unknown token NEW1",
        ),
        case(
            "transfer above balance",
            1,
            "transfer",
            args(&Transfer { symbol: "KWH".into(), to: bob.address(), amount: 301 }),
            Amount::ZERO,
            "insufficient KWH balance: have 300, need 301",
        ),
        case(
            "approve on an unknown token",
            1,
            "approve",
            args(&gridledger_contracts::token::Approve { symbol: "NEW1".into(), spender: bob.address(), amount: 1 }),
            Amount::ZERO,
            "unknown token NEW1",
        ),
        case(
            "mint by a non-issuer",
            1,
            "mint",
            args(&Mint { symbol: "KWH".into(), to: alice.address(), amount: 1 }),
            Amount::ZERO,
            "only the issuer may mint",
        ),
        case(
            "mint of an unknown token",
            0,
            "mint",
            args(&Mint { symbol: "NEW1".into(), to: alice.address(), amount: 1 }),
            Amount::ZERO,
            "unknown token NEW1",
        ),
        case(
            "mint past u128",
            0,
            "mint",
            args(&Mint { symbol: "KWH".into(), to: alice.address(), amount: u128::MAX }),
            Amount::ZERO,
            "supply overflow",
        ),
        case(
            "burn above balance",
            2,
            "burn",
            args(&Burn { symbol: "KWH".into(), amount: 1 }),
            Amount::ZERO,
            "insufficient KWH balance: have 0, need 1",
        ),
        case(
            "burn of an unknown token",
            1,
            "burn",
            args(&Burn { symbol: "NEW1".into(), amount: 1 }),
            Amount::ZERO,
            "unknown token NEW1",
        ),
        case(
            "transfer_from without allowance",
            2,
            "transfer_from",
            args(&gridledger_contracts::token::TransferFrom {
                symbol: "KWH".into(),
                from: alice.address(),
                to: bob.address(),
                amount: 1,
            }),
            Amount::ZERO,
            "allowance 0 below 1",
        ),
        case("unknown method", 1, "steal", vec![], Amount::ZERO, "token has no method steal"),
    ];
    run(&mut dc, &keys, cases);

    // Views refuse with their reasons too (views never change state).
    assert_eq!(
        dc.chain.view(TOKEN_ID, "meta", &args(&Symbol { symbol: "NEW1".into() })),
        Err(ContractError::Revert("unknown token NEW1".into()))
    );
    assert_eq!(
        dc.chain.view(TOKEN_ID, "supply_of_everything", &[]),
        Err(ContractError::Revert("token has no view supply_of_everything".into()))
    );
    // The refusals left the token exactly as the two successful calls made it.
    let meta = dc.chain.view(TOKEN_ID, "meta", &args(&Symbol { symbol: "KWH".into() })).unwrap();
    assert_eq!(meta["supply"], "1000");
}

#[test]
fn escrow_refusals_name_their_reason_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = DevChain::open(d.path(), 4, BAL, default_registry()).unwrap();
    let (depositor, merchant, stranger) = (dev_key(0), dev_key(1), dev_key(2));
    let unlock = dc.now + 10_000;
    let lock = Lock { beneficiary: merchant.address(), arbiter: None, unlock_at: unlock, expires_at: None };
    let r = dc.call(&depositor, ESCROW_ID, "lock", args(&lock), Amount(1_000)).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let id: u64 = borsh::from_slice(&r.output).unwrap();
    let keys = [&depositor, &merchant, &stranger];
    let case = |name, who, method, a: Vec<u8>, value, reason: &str| Case {
        name,
        who,
        contract: ESCROW_ID,
        method,
        args: a,
        value,
        reason: reason.to_string(),
    };
    let cases = vec![
        case("top-up by a stranger", 2, "top_up", args(&Id { id }), Amount(5), "only the depositor may top up"),
        case("top-up by the beneficiary", 1, "top_up", args(&Id { id }), Amount(5), "only the depositor may top up"),
        case("top-up of no deposit", 0, "top_up", args(&Id { id: 9 }), Amount(5), "no open deposit 9"),
        case(
            "release of nothing",
            0,
            "release",
            args(&Pay { id, amount: Amount::ZERO }),
            Amount::ZERO,
            "amount must be positive",
        ),
        case(
            "release above the deposit",
            0,
            "release",
            args(&Pay { id, amount: Amount(1_001) }),
            Amount::ZERO,
            "deposit 0 holds 1000, asked 1001",
        ),
        case(
            "value on release",
            0,
            "release",
            args(&Pay { id, amount: Amount(1) }),
            Amount(1),
            "release takes no native value",
        ),
        case("unknown method", 0, "drain", vec![], Amount::ZERO, "escrow has no method drain"),
        case("refund by a stranger", 2, "refund", args(&Id { id }), Amount::ZERO, "not a party to this deposit"),
    ];
    run(&mut dc, &keys, cases);

    // After the window the beneficiary may claim, but not zero.
    dc.now = unlock;
    let before = snapshot(&dc, &keys);
    let r = dc.call(&merchant, ESCROW_ID, "claim", args(&Pay { id, amount: Amount::ZERO }), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Reverted("reverted: amount must be positive".into()));
    let mut expected = before;
    expected.accounts[1].0 += 1;
    expected.accounts[1].1 = Amount(expected.accounts[1].1 .0 - r.fee.0);
    assert_eq!(snapshot(&dc, &keys), expected);

    assert_eq!(
        dc.chain.view(ESCROW_ID, "everything", &[]),
        Err(ContractError::Revert("escrow has no view everything".into()))
    );
    assert_eq!(dc.chain.view(ESCROW_ID, "held", &[]).unwrap()["balance"], serde_json::json!(Amount(1_000)));
}
