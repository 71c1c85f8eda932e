//! Chain behaviour: transfers, every refused submission, restart, block
//! validation and Merkle proofs.

use gridledger_core::codec::encode;
use gridledger_core::{Amount, Signature};
use gridledger_ledger::devnet::{dev_key, transfer, DevChain, TRANSFER_GAS};
use gridledger_ledger::{
    Chain, ChainConfig, ChainError, ContractRegistry, StateRead, SubmitError, Transaction, TxKind, TxStatus,
};

const BAL: Amount = Amount(1_000_000_000);

fn dev(dir: &std::path::Path) -> DevChain {
    DevChain::open(dir, 8, BAL, ContractRegistry::new()).unwrap()
}

fn total_supply(c: &Chain, n: usize) -> u128 {
    let mut t: u128 = (0..n).map(|i| c.account(&dev_key(i).address()).balance.0).sum();
    t += c.account(&gridledger_ledger::devnet::dev_validator(0).address()).balance.0;
    t
}

#[test]
fn transfer_moves_coin_pays_fee_and_conserves_supply() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = dev(d.path());
    let (a, b) = (dev_key(0), dev_key(1));
    let r = dc.exec(transfer(&a, 1, 0, b.address(), Amount(500), Amount(2))).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(r.gas_used, TRANSFER_GAS);
    assert_eq!(r.fee, Amount(2 * TRANSFER_GAS as u128));
    assert_eq!(r.events[0].name, "transfer");
    let c = &dc.chain;
    assert_eq!(c.account(&a.address()).balance.0, BAL.0 - 500 - 2 * TRANSFER_GAS as u128);
    assert_eq!(c.account(&a.address()).nonce, 1);
    assert_eq!(c.account(&b.address()).balance.0, BAL.0 + 500);
    assert_eq!(total_supply(c, 8), 8 * BAL.0);
    assert_eq!(c.tip().height, 1);
}

/// Submits `bytes`, expects `err`, and checks nothing changed.
fn refused(dc: &mut DevChain, bytes: &[u8], err: impl Fn(&SubmitError) -> bool) {
    let pending = dc.chain.mempool().len();
    let root = dc.chain.state().root();
    let tip = dc.chain.tip().clone();
    let e = dc.chain.submit(bytes).unwrap_err();
    assert!(err(&e), "unexpected error {e:?}");
    assert!(!e.to_string().is_empty());
    assert_eq!(dc.chain.mempool().len(), pending);
    assert_eq!(dc.chain.state().root(), root);
    assert_eq!(*dc.chain.tip(), tip);
}

#[test]
fn bad_signature_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = dev(d.path());
    let mut tx = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(1), Amount(1));
    tx.signature = Signature([7u8; 64]);
    refused(&mut dc, &tx.to_bytes(), |e| *e == SubmitError::BadSignature);
    // A valid signature by another key over the same body.
    let mut tx = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(1), Amount(1));
    tx.signature = dev_key(2).sign(&tx.hash());
    refused(&mut dc, &tx.to_bytes(), |e| *e == SubmitError::BadSignature);
}

#[test]
fn wrong_nonces_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = dev(d.path());
    let k = dev_key(0);
    let to = dev_key(1).address();
    refused(&mut dc, &transfer(&k, 1, 1, to, Amount(1), Amount(1)).to_bytes(), |e| {
        *e == SubmitError::NonceGap { expected: 0, got: 1 }
    });
    dc.exec(transfer(&k, 1, 0, to, Amount(1), Amount(1))).unwrap();
    // Replay of the committed transaction and a fresh one with a used nonce.
    refused(&mut dc, &transfer(&k, 1, 0, to, Amount(1), Amount(1)).to_bytes(), |e| *e == SubmitError::AlreadyKnown);
    refused(&mut dc, &transfer(&k, 1, 0, to, Amount(2), Amount(1)).to_bytes(), |e| {
        *e == SubmitError::NonceTooLow { expected: 1, got: 0 }
    });
    // A pending transaction holds its nonce too, unless a copy pays the
    // replacement's bump (attack r16 [2]: replace-by-fee).
    dc.chain.submit(&transfer(&k, 1, 1, to, Amount(1), Amount(1)).to_bytes()).unwrap();
    refused(&mut dc, &transfer(&k, 1, 1, to, Amount(3), Amount(1)).to_bytes(), |e| {
        *e == SubmitError::ReplacementUnderpriced { pending: Amount(1), min: Amount(2) }
    });
}

#[test]
fn insufficient_balance_is_refused_including_pending_spend() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = dev(d.path());
    let k = dev_key(0);
    let to = dev_key(1).address();
    refused(&mut dc, &transfer(&k, 1, 0, to, BAL, Amount(1)).to_bytes(), |e| {
        matches!(e, SubmitError::InsufficientBalance { .. })
    });
    // Half now, then more than the remaining half while the first is pending.
    dc.chain.submit(&transfer(&k, 1, 0, to, Amount(BAL.0 / 2), Amount(1)).to_bytes()).unwrap();
    refused(&mut dc, &transfer(&k, 1, 1, to, Amount(BAL.0 / 2), Amount(1)).to_bytes(), |e| {
        matches!(e, SubmitError::InsufficientBalance { .. })
    });
}

#[test]
fn oversize_undecodable_wrong_chain_and_gas_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = dev(d.path());
    let k = dev_key(0);
    let max = ChainConfig::default().max_tx_bytes;
    refused(&mut dc, &vec![0u8; max + 1], |e| matches!(e, SubmitError::Oversize { .. }));
    refused(&mut dc, b"\x01\x02garbage", |e| matches!(e, SubmitError::Undecodable(_)));
    let mut bytes = transfer(&k, 1, 0, k.address(), Amount(1), Amount(1)).to_bytes();
    bytes.push(0);
    refused(&mut dc, &bytes, |e| matches!(e, SubmitError::Undecodable(_)));
    refused(&mut dc, &transfer(&k, 9, 0, k.address(), Amount(1), Amount(1)).to_bytes(), |e| {
        *e == SubmitError::WrongChain { expected: 1, got: 9 }
    });
    let low = Transaction {
        chain_id: 1,
        sender: k.public(),
        nonce: 0,
        gas_limit: 20_999,
        gas_price: Amount(1),
        kind: TxKind::Transfer { to: k.address(), amount: Amount(1) },
    }
    .sign(&k);
    refused(&mut dc, &low.to_bytes(), |e| matches!(e, SubmitError::GasLimitTooLow { .. }));
    let mut huge = low.tx.clone();
    huge.gas_limit = u64::MAX;
    refused(&mut dc, &huge.sign(&k).to_bytes(), |e| matches!(e, SubmitError::GasLimitTooHigh { .. }));
    // The node still accepts good transactions afterwards.
    assert!(dc.exec(transfer(&k, 1, 0, dev_key(1).address(), Amount(1), Amount(1))).is_ok());
}

#[test]
fn restart_resumes_from_disk_with_proofs_intact() {
    let d = tempfile::tempdir().unwrap();
    let (root, tip, tx_hash) = {
        let mut dc = dev(d.path());
        for i in 0..5u64 {
            dc.chain
                .submit(&transfer(&dev_key(0), 1, i, dev_key(1).address(), Amount(10), Amount(1)).to_bytes())
                .unwrap();
        }
        let c = dc.seal().unwrap();
        assert_eq!(c.block.txs.len(), 5);
        (dc.chain.state().root(), dc.chain.tip().clone(), c.block.txs[3].hash())
    };
    let dc = dev(d.path());
    assert_eq!(dc.chain.state().root(), root);
    assert_eq!(*dc.chain.tip(), tip);
    assert_eq!(dc.chain.account(&dev_key(0).address()).nonce, 5);
    let r = dc.chain.receipt(&tx_hash).unwrap().unwrap();
    assert_eq!(r.index, 3);
    let block = dc.chain.block(r.height).unwrap().unwrap();
    let proof = block.tx_proof(3).unwrap();
    assert!(proof.verify(&tx_hash, &block.header.tx_root));
    assert!(block.verify_single_seal());
    drop(dc);
    // A different genesis in the same directory is refused.
    let other = gridledger_ledger::devnet::dev_genesis(2, 1, BAL, &[]);
    assert!(matches!(
        Chain::open(d.path(), other, ContractRegistry::new(), ChainConfig::default()),
        Err(ChainError::Genesis(_))
    ));
}

#[test]
fn a_second_node_validates_and_rejects_tampered_blocks() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut producer = dev(d1.path());
    let mut follower = dev(d2.path());
    for i in 0..4u64 {
        producer
            .chain
            .submit(&transfer(&dev_key(i as usize), 1, 0, dev_key(7).address(), Amount(3), Amount(1)).to_bytes())
            .unwrap();
    }
    let block = producer.seal().unwrap().block;

    let mut tampered = block.clone();
    tampered.header.state_root.0[0] ^= 1;
    assert!(matches!(follower.chain.validate_block(&tampered), Err(ChainError::InvalidBlock(_))));
    let mut dropped_tx = block.clone();
    dropped_tx.txs.pop();
    assert!(follower.chain.validate_block(&dropped_tx).is_err());
    let mut forged = block.clone();
    forged.txs[0].tx.kind = TxKind::Transfer { to: dev_key(6).address(), amount: Amount(3) };
    assert!(follower.chain.validate_block(&forged).is_err());
    assert_eq!(follower.chain.tip().height, 0);

    let ex = follower.chain.validate_block(&block).unwrap();
    follower.chain.commit(ex).unwrap();
    assert_eq!(follower.chain.state().root(), producer.chain.state().root());
    assert_eq!(follower.chain.tip(), producer.chain.tip());
}

/// Validation split in two (signatures outside the chain's lock, then
/// execution): a signature swapped for another transaction's keeps every
/// header root intact, so only the signature checks can refuse the block;
/// both halves do, and a transaction is skipped only where the caller
/// verified it itself.
#[test]
fn signatures_checked_outside_the_chain_still_refuse_a_swapped_signature() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut producer = dev(d1.path());
    let mut follower = dev(d2.path());
    for i in 0..4u64 {
        producer
            .chain
            .submit(&transfer(&dev_key(i as usize), 1, 0, dev_key(7).address(), Amount(3), Amount(1)).to_bytes())
            .unwrap();
    }
    let block = producer.seal().unwrap().block;
    let mut swapped = block.clone();
    swapped.txs[1].signature = swapped.txs[0].signature;
    assert_eq!(swapped.header, block.header, "the header cannot tell");
    let rules = follower.chain.rules();
    let which = follower.chain.unverified(&swapped);
    assert_eq!(which, vec![true; 4], "nothing of it is pending here");
    assert!(matches!(
        gridledger_ledger::verify_block_signatures(&rules, &swapped, &which),
        Err(ChainError::InvalidBlock(m)) if m.contains("signature")
    ));
    // Not marked as checked by the caller: checked here.
    assert!(follower.chain.validate_block_prechecked(&swapped, &[false; 4]).is_err());
    assert!(follower.chain.validate_block_prechecked(&swapped, &[]).is_err());
    assert!(follower.chain.validate_block(&swapped).is_err());
    assert_eq!(follower.chain.tip().height, 0);

    let pre = gridledger_ledger::verify_block_signatures(&rules, &block, &follower.chain.unverified(&block)).unwrap();
    assert_eq!(pre, vec![true; 4]);
    let ex = follower.chain.validate_block_prechecked(&block, &pre).unwrap();
    follower.chain.commit(ex).unwrap();
    assert_eq!(follower.chain.tip(), producer.chain.tip());
}

#[test]
fn state_of_unknown_account_is_empty() {
    let d = tempfile::tempdir().unwrap();
    let dc = dev(d.path());
    let root = dc.chain.state().root();
    let entries = dc.chain.state().len();
    let unknown = gridledger_core::Address([9u8; 20]);
    let acct = dc.chain.state().account(&unknown);
    assert_eq!(acct, gridledger_ledger::Account { balance: Amount::ZERO, nonce: 0 });
    // Reading it neither stores it nor moves the state root.
    assert_eq!(dc.chain.state().get(&gridledger_ledger::state::account_key(&unknown)), None);
    assert_eq!(dc.chain.state().len(), entries);
    assert_eq!(dc.chain.state().root(), root);
    // A funded account, by contrast, is stored under its key in canonical bytes.
    let funded = dc.chain.state().get(&gridledger_ledger::state::account_key(&dev_key(0).address())).unwrap();
    assert_eq!(funded, encode(&gridledger_ledger::Account { balance: BAL, nonce: 0 }));
}

#[test]
fn group_commit_persists_every_block_and_refuses_gaps() {
    let d = tempfile::tempdir().unwrap();
    let (tip, root) = {
        let mut dc = dev(d.path());
        // 700 transfers from 7 senders: three blocks of at most 300.
        for s in 0..7 {
            for n in 0..100u64 {
                dc.chain
                    .submit(&transfer(&dev_key(s), 1, n, dev_key(7).address(), Amount(1), Amount(1)).to_bytes())
                    .unwrap();
            }
        }
        let done = dc.chain.produce_blocks(&dc.validator, 5_000, 16).unwrap();
        assert_eq!(done.iter().map(|c| c.block.txs.len()).collect::<Vec<_>>(), vec![300, 300, 100]);
        assert_eq!(dc.chain.mempool().len(), 0);
        // Heights are consecutive and each block links to its parent.
        for w in done.windows(2) {
            assert_eq!(w[1].block.header.parent, w[0].block.hash());
        }
        // The store refuses a block that does not extend its tip.
        let stale = gridledger_ledger::ExecutedBlock {
            block: done[0].block.clone(),
            receipts: done[0].receipts.clone(),
            changes: Default::default(),
        };
        assert!(matches!(dc.chain.store().commit(&stale), Err(gridledger_ledger::StoreError::NotNext { .. })));
        (dc.chain.tip().clone(), dc.chain.state().root())
    };
    let dc = dev(d.path());
    assert_eq!(*dc.chain.tip(), tip);
    assert_eq!(tip.height, 3);
    assert_eq!(dc.chain.state().root(), root);
    assert_eq!(dc.chain.account(&dev_key(7).address()).balance.0, BAL.0 + 700);
}

#[test]
fn a_block_carrying_a_forged_signature_for_a_pending_body_is_refused() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut producer = dev(d1.path());
    let mut follower = dev(d2.path());
    let tx = transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(3), Amount(1));
    producer.chain.submit(&tx.to_bytes()).unwrap();
    // The follower has the genuine transaction pending (already verified).
    follower.chain.submit(&tx.to_bytes()).unwrap();
    let mut block = producer.seal().unwrap().block;
    // Same body (same hash), different and invalid signature bytes.
    block.txs[0].signature = Signature([5u8; 64]);
    assert!(matches!(follower.chain.validate_block(&block), Err(ChainError::InvalidBlock(_))));
    block.txs[0].signature = tx.signature;
    assert!(follower.chain.validate_block(&block).is_ok());
}

/// A group commit that fails while the disk stays full (so the store
/// cannot even be reopened) leaves nothing of its blocks visible: tip,
/// state root, balances and nonces are those of the last committed block,
/// and the blocks' transactions are back in the mempool. Once the disk is
/// freed they commit. (Failed on the old code, which put state and tip
/// back only when the reopen succeeded.)
#[test]
fn a_failed_group_commit_leaves_no_uncommitted_block_visible_while_the_disk_stays_full() {
    use gridledger_ledger::devnet::{dev_genesis, dev_validator};
    use gridledger_ledger::fault::SimDisk;
    use gridledger_ledger::store::Store;
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, BAL, std::slice::from_ref(&validator));
    let disk = SimDisk::new();
    let d = disk.clone();
    let store = Store::open_backend(move || d.backend()).unwrap();
    // Two transactions a block, so one group commit carries several blocks.
    let config = ChainConfig { max_block_txs: 2, ..ChainConfig::default() };
    let mut chain = Chain::open_store(store, genesis, ContractRegistry::new(), config).unwrap();
    for n in 0..3u64 {
        chain.submit(&transfer(&dev_key(0), 1, n, dev_key(1).address(), Amount(5), Amount(1)).to_bytes()).unwrap();
    }
    chain.produce_blocks(&validator, 1_000, 4).unwrap();
    let (tip, root) = (chain.tip().clone(), chain.state().root());
    let sender = chain.account(&dev_key(1).address());
    for n in 0..6u64 {
        chain.submit(&transfer(&dev_key(1), 1, n, dev_key(2).address(), Amount(5), Amount(1)).to_bytes()).unwrap();
    }
    disk.set_full(true);
    for _ in 0..3 {
        assert!(chain.produce_blocks(&validator, 2_000, 4).is_err());
        assert_eq!(*chain.tip(), tip);
        assert_eq!(chain.state().root(), root);
        assert_eq!(chain.account(&dev_key(1).address()), sender);
        assert_eq!(chain.next_nonce(&dev_key(1).address()), 6, "the failed block's transactions are kept");
        assert_eq!(chain.pending(), 6);
    }
    disk.set_full(false);
    let done = chain.produce_blocks(&validator, 3_000, 4).unwrap();
    assert_eq!(done.iter().map(|c| c.block.txs.len()).collect::<Vec<_>>(), vec![2, 2, 2]);
    assert_eq!(chain.account(&dev_key(1).address()).nonce, 6);
    assert_eq!(chain.store().tip().unwrap(), Some(tip.height + done.len() as u64));
}

/// A chain configured for redb's 2-phase commit persists its blocks and
/// reopens from them like the default (1-phase) one.
#[test]
fn a_two_phase_commit_chain_persists_and_reopens() {
    use gridledger_ledger::devnet::{dev_genesis, dev_validator};
    let d = tempfile::tempdir().unwrap();
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, 4, BAL, std::slice::from_ref(&validator));
    let config = ChainConfig { two_phase_commit: true, ..ChainConfig::default() };
    let (tip, root) = {
        let mut chain = Chain::open(d.path(), genesis.clone(), ContractRegistry::new(), config.clone()).unwrap();
        for n in 0..3u64 {
            chain.submit(&transfer(&dev_key(0), 1, n, dev_key(1).address(), Amount(5), Amount(1)).to_bytes()).unwrap();
            chain.produce_block(&validator, 1_000 + n).unwrap().unwrap();
        }
        (chain.tip().clone(), chain.state().root())
    };
    let chain = Chain::open(d.path(), genesis, ContractRegistry::new(), config).unwrap();
    assert_eq!(tip.height, 3);
    assert_eq!(*chain.tip(), tip);
    assert_eq!(chain.state().root(), root);
    assert_eq!(chain.account(&dev_key(0).address()).nonce, 3);
}

/// A leaderless block's pooled fees (`BlockBuilder::push_pooled`): the
/// senders pay as usual, nobody is credited until the pool is shared
/// (`BlockBuilder::share_fee_pool`), which pays `⌊pool / k⌋` to each of
/// the `k` and the remainder to the one at position `seed mod k`; the
/// block's proposer gets nothing, and the state root is the one of those
/// balances. A pool never shared goes to the block's proposer when the
/// block is finished: no coin is created or destroyed either way.
#[test]
fn pooled_fees_are_shared_equally_with_the_remainder_to_the_seeds_pick() {
    use gridledger_core::Hash32;
    use gridledger_ledger::contract::BlockEnv;
    use gridledger_ledger::state::Overlay;
    use gridledger_ledger::BlockBuilder;
    let d = tempfile::tempdir().unwrap();
    let dc = dev(d.path());
    let c = &dc.chain;
    let tip = c.tip().clone();
    let env = BlockEnv {
        chain_id: c.genesis().chain_id,
        height: tip.height + 1,
        timestamp: tip.timestamp + 1,
        proposer: dev_key(7).address(),
        parent: tip.hash(),
    };
    let txs = [
        transfer(&dev_key(0), 1, 0, dev_key(1).address(), Amount(5), Amount(1)),
        transfer(&dev_key(2), 1, 0, dev_key(1).address(), Amount(5), Amount(2)),
    ];
    let total = 3 * TRANSFER_GAS as u128;
    // Eleven payees: 63,000 leaves a remainder of 3; seed 4 picks the fifth.
    let payees: Vec<_> = (8..19).map(|i| dev_key(i).address()).collect();
    let mut seed = Hash32([0; 32]);
    seed.0[0] = 4;
    let balances = |s: &dyn gridledger_ledger::StateRead| -> Vec<u128> {
        payees.iter().chain([&env.proposer]).map(|a| s.account(a).balance.0).collect()
    };
    let before = balances(c.state());
    let mut b = BlockBuilder::new(c.state(), c.registry(), env, c.config().block_gas_limit);
    for t in &txs {
        b.push_pooled(t.clone()).unwrap();
    }
    assert_eq!(b.fee_pool().0, total);
    assert_eq!(balances(b.state()), before, "nobody is paid before the pool is shared");
    assert_eq!(b.share_fee_pool(&payees, &seed).unwrap().0, total);
    assert_eq!(b.fee_pool().0, 0);
    let got: Vec<u128> = balances(b.state()).iter().zip(&before).map(|(now, was)| now - was).collect();
    let (share, rest) = (total / 11, total % 11);
    assert_eq!(rest, 3);
    let mut want = vec![share; 11];
    want[4] += rest;
    want.push(0);
    assert_eq!(got, want, "⌊pool / k⌋ each, the remainder to position 4, nothing to the proposer");
    let paid: Vec<u128> =
        txs.iter().map(|t| c.account(&t.sender()).balance.0 - b.state().account(&t.sender()).balance.0 - 5).collect();
    assert_eq!(paid.iter().sum::<u128>(), total, "the senders paid the fees (beyond their transfers)");
    let ex = b.finish(c.genesis().chain_id, tip.hash(), dev_key(7).public(), c.state());
    let after = |changes| {
        let mut o = Overlay::new(c.state());
        o.absorb(changes);
        balances(&o)
    };
    assert_eq!(c.state().root_after(&ex.changes), ex.block.header.state_root);
    let finished: Vec<u128> = after(ex.changes).iter().zip(&before).map(|(now, was)| now - was).collect();
    assert_eq!(finished, want, "the finished block pays what was shared, nothing more");

    // A pool never shared: the proposer gets it at the end.
    let mut b = BlockBuilder::new(c.state(), c.registry(), env, c.config().block_gas_limit);
    b.push_pooled(txs[0].clone()).unwrap();
    let ex = b.finish(c.genesis().chain_id, tip.hash(), dev_key(7).public(), c.state());
    let got = after(ex.changes);
    assert_eq!(got[11] - before[11], TRANSFER_GAS as u128, "the proposer got the unshared pool");
    assert_eq!(&got[..11], &before[..11], "the payees got nothing");
}
