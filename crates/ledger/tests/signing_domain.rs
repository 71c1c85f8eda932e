//! A chain's signing domain (`ChainConfig::signing_domain`): a transaction
//! signed for one chain never executes on another chain with the same
//! numeric id, and a chain without a domain keeps accepting plain signatures.

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, ContractRegistry, Genesis, SubmitError};
use std::path::Path;

const BAL: Amount = Amount(1_000_000_000);

/// Chain 7 with genesis time `time`, its genesis hash as its domain or none.
fn chain(dir: &Path, time: u64, with_domain: bool) -> (Chain, Genesis) {
    let mut g = dev_genesis(7, 4, BAL, &[dev_validator(0)]);
    g.timestamp = time;
    let config = ChainConfig { signing_domain: with_domain.then(|| g.hash()), ..ChainConfig::default() };
    (Chain::open(dir, g.clone(), ContractRegistry::new(), config).unwrap(), g)
}

fn state(c: &Chain) -> (Hash32, usize) {
    (c.state().root(), c.mempool().len())
}

#[test]
fn a_transaction_signed_for_one_chain_is_refused_by_another_with_the_same_id() {
    let (da, db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, ga) = chain(da.path(), 1_000, true);
    let (mut b, gb) = chain(db.path(), 2_000, true);
    let (mut plain, _) = chain(dc.path(), 1_000, false);
    assert_ne!(ga.hash(), gb.hash());
    let payer = dev_key(0);
    let body = transfer(&payer, 7, 0, dev_key(3).address(), Amount(5), Amount(1));
    let for_a = body.tx.clone().sign_in(&payer, Some(&ga.hash()));
    assert_eq!(for_a.hash(), body.hash(), "the transaction id does not depend on the domain");
    // Chain B (and a chain without a domain) refuse A's transaction and change nothing.
    for c in [&mut b, &mut plain] {
        let before = state(c);
        assert_eq!(c.submit(&for_a.to_bytes()), Err(SubmitError::BadSignature));
        assert_eq!(state(c), before);
    }
    // A plain signature is refused by a chain with a domain.
    let before = state(&a);
    assert_eq!(a.submit(&body.to_bytes()), Err(SubmitError::BadSignature));
    assert_eq!(state(&a), before);
    // Each chain accepts what is signed for it.
    assert!(a.submit(&for_a.to_bytes()).is_ok());
    assert!(plain.submit(&body.to_bytes()).is_ok());
    let for_b = body.tx.sign_in(&payer, Some(&gb.hash()));
    assert!(b.submit(&for_b.to_bytes()).is_ok());
}
