//! The lock/mint/claim CCDI baseline (MAP / PoS-Co family) over the same
//! embedded chains as Π_CCDI: 3X + 1 transactions in 4 phases, external
//! chains that must follow the BoB, and a roll-back under withholding.

use gridledger_core::Hash32;
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::state::contract_key;
use gridledger_ledger::TxStatus;
use gridledger_xchain::ccdi::{run_app, CcdiApp};
use gridledger_xchain::ccdi_run::{CcdiUser, UserBehaviour};
use gridledger_xchain::lmc::{LmcClaim, MintedItem, LMC_ID};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::scbg::{Character, Lock};
use gridledger_xchain::XchainError;

fn setup(dir: &std::path::Path, behaviours: &[UserBehaviour]) -> (BobMbs, Vec<CcdiUser>) {
    let spec = MbsSpec { chains: 3, kappa: 4, lmc_baseline: true, ..MbsSpec::default() };
    let mut m = BobMbs::open(dir, spec).unwrap();
    let chains = m.chain_ids();
    let users = behaviours
        .iter()
        .enumerate()
        .map(|(x, b)| {
            let key = dev_key(x);
            let chain = chains[x % 3];
            let item = m.lmc_create_item(chain, &key, &format!("p{x}"), 7 * x as u64 + 3).unwrap();
            CcdiUser { key, chain, item, behaviour: *b }
        })
        .collect();
    (m, users)
}

#[test]
fn lock_mint_run_claim_takes_3x_plus_1_transactions_in_4_phases() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, us) = setup(dir.path(), &[UserBehaviour::Honest; 6]);
    let befores: Vec<Character> = us.iter().map(|u| m.lmc_item(u.chain, u.item).unwrap().data).collect();
    let rep = m.run_lmc(&us, 1).unwrap();
    assert_eq!(rep.protocol_txs, 3 * 6 + 1);
    assert_eq!(rep.phases, 4);
    assert!(rep.updated);
    let want = run_app(CcdiApp::Battle, &befores);
    for (u, w) in us.iter().zip(want) {
        let now = m.lmc_item(u.chain, u.item).unwrap();
        assert_eq!(now.data, w);
        assert_eq!(now.owner, u.key.address());
    }
    assert!(rep.relay_txs > 0, "the external chains had to be fed BoB headers");
    assert!(rep.foreign_bytes_per_chain > 0, "no independence: each chain stores BoB headers and keys");
}

#[test]
fn a_withholding_user_rolls_the_whole_baseline_process_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = [UserBehaviour::Honest; 4];
    b[1] = UserBehaviour::Withhold;
    let (mut m, us) = setup(dir.path(), &b);
    let befores: Vec<Character> = us.iter().map(|u| m.lmc_item(u.chain, u.item).unwrap().data).collect();
    let rep = m.run_lmc(&us, 2).unwrap();
    assert!(!rep.updated);
    for (u, before) in us.iter().zip(befores) {
        let now = m.lmc_item(u.chain, u.item).unwrap();
        assert_eq!(now.data, before, "rolled back: nobody's item changed");
        assert!(now.lock.is_none());
    }
}

#[test]
fn forged_and_replayed_claims_are_refused_without_change() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, us) = setup(dir.path(), &[UserBehaviour::Honest; 2]);
    m.run_lmc(&us, 3).unwrap();
    let u = &us[0];
    let snapshot = |m: &BobMbs| -> Vec<(Vec<u8>, Vec<u8>)> {
        let p = contract_key(LMC_ID, &[]);
        let mut v: Vec<_> = m
            .external(u.chain)
            .unwrap()
            .chain()
            .state()
            .iter()
            .filter(|(k, _)| k.starts_with(&p))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    };
    // A fresh lock that was never minted: a claim with a made-up minted item.
    let data = m.lmc_item(u.chain, u.item).unwrap().data;
    let lock_tx = gridledger_ledger::devnet::call(
        &u.key,
        u.chain,
        m.external(u.chain).unwrap().next_nonce(&u.key.address()),
        LMC_ID,
        "lock",
        borsh::to_vec(&Lock { process: Hash32([1; 32]), item: u.item, data: data.clone() }).unwrap(),
        gridledger_core::Amount::ZERO,
        5_000_000,
    );
    let lock_tx = m.external(u.chain).unwrap().sign(&u.key, lock_tx);
    let r = m.chain_run(u.chain, &lock_tx).unwrap();
    let lock = Hash32(r.output.try_into().unwrap());
    let mut boosted = data.clone();
    boosted.experience = 99_999;
    let minted =
        MintedItem { chain: u.chain, lock, process: Hash32([1; 32]), data: boosted, minted_at: 1, released: true };
    let mut rr = Default::default();
    m.relay_bob_to(u.chain, &mut rr).unwrap();
    let key = contract_key(gridledger_xchain::BOB_CONTRACT_ID, &[b"m/".as_slice(), &lock.0].concat());
    let (height, proof) = m.bob.state_proof(&key);
    let claim = LmcClaim { lock, height, minted, proof };
    let nonce = m.external(u.chain).unwrap().next_nonce(&u.key.address());
    let tx = gridledger_ledger::devnet::call(
        &u.key,
        u.chain,
        nonce,
        LMC_ID,
        "claim",
        borsh::to_vec(&claim).unwrap(),
        gridledger_core::Amount::ZERO,
        5_000_000,
    );
    let tx = m.external(u.chain).unwrap().sign(&u.key, tx);
    let before = snapshot(&m);
    let r = m.chain_run(u.chain, &tx).unwrap();
    assert_eq!(
        r.status,
        TxStatus::Reverted(XchainError::BadStateProof { chain: m.bob.chain_id(), height }.as_revert()),
        "a claim for an item the BoB never minted is refused"
    );
    assert_eq!(snapshot(&m), before, "a refused claim changed the baseline contract's state");
}

fn bob_only(m: &mut BobMbs, tx: &gridledger_ledger::SignedTransaction) -> gridledger_ledger::Receipt {
    let h = m.bob.submit(tx).unwrap();
    m.bob.tick().unwrap();
    m.bob.receipt(&h).unwrap().unwrap()
}

fn assert_bob_refuses(m: &mut BobMbs, tx: &gridledger_ledger::SignedTransaction, err: XchainError) {
    let before = m.bob_contract_state();
    assert_eq!(bob_only(m, tx).status, TxStatus::Reverted(err.as_revert()), "expected refusal: {err}");
    assert_eq!(m.bob_contract_state(), before, "a refused transaction changed the BoB contract's state");
}

#[test]
fn double_and_forged_mints_and_early_rollbacks_are_refused() {
    use gridledger_xchain::ccdi::CcdiCct;
    use gridledger_xchain::lmc::LmcRun;
    let dir = tempfile::tempdir().unwrap();
    let (mut m, us) = setup(dir.path(), &[UserBehaviour::Honest; 2]);
    let u = &us[0];
    let p = Hash32([2; 32]);
    let data = m.lmc_item(u.chain, u.item).unwrap().data;
    let nonce = m.external(u.chain).unwrap().next_nonce(&u.key.address());
    let lock_tx = gridledger_ledger::devnet::call(
        &u.key,
        u.chain,
        nonce,
        LMC_ID,
        "lock",
        borsh::to_vec(&Lock { process: p, item: u.item, data }).unwrap(),
        gridledger_core::Amount::ZERO,
        5_000_000,
    );
    let lock_tx = m.external(u.chain).unwrap().sign(&u.key, lock_tx);
    m.external_mut(u.chain).unwrap().submit(&lock_tx).unwrap();
    m.ticks(2).unwrap();
    let (height, receipt, proof) = m.external(u.chain).unwrap().receipt_proof(&lock_tx.hash()).unwrap().unwrap();
    let lock = Hash32(receipt.output.clone().try_into().unwrap());
    let cct = CcdiCct { process: p, chain: u.chain, height, lock_tx, receipt, proof };
    let mut forged = cct.clone();
    forged.proof.siblings.reverse();
    forged.proof.siblings.push(Hash32([8; 32]));
    let tx = m.bob_call(&u.key, "lmc_mint", &forged, gridledger_core::Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::BadReceiptProof { chain: u.chain, height });
    let tx = m.bob_call(&u.key, "lmc_mint", &cct, gridledger_core::Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.bob_call(&u.key, "lmc_mint", &cct, gridledger_core::Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::AlreadyStored { chain: u.chain, item: u.item });
    // A rollback before the timeout, a run naming an unknown lock.
    let now = m.bob.height() + 1;
    let tx = m.bob_call(
        &u.key,
        "lmc_run",
        &LmcRun { process: p, locks: vec![lock], rollback: true },
        gridledger_core::Amount::ZERO,
    );
    let minted: MintedItem = m.bob_record(&[b"m/".as_slice(), &lock.0].concat()).unwrap();
    assert_bob_refuses(
        &mut m,
        &tx,
        XchainError::CcdiDeadlineNotReached { deadline: minted.minted_at + gridledger_xchain::lmc::LMC_TIMEOUT, now },
    );
    let ghost = Hash32([4; 32]);
    let tx = m.bob_call(
        &u.key,
        "lmc_run",
        &LmcRun { process: p, locks: vec![lock, ghost], rollback: false },
        gridledger_core::Amount::ZERO,
    );
    assert_bob_refuses(&mut m, &tx, XchainError::UnknownLock(ghost));
    // A run naming a minted item twice is not the process's set.
    let tx = m.bob_call(
        &u.key,
        "lmc_run",
        &LmcRun { process: p, locks: vec![lock, lock], rollback: false },
        gridledger_core::Amount::ZERO,
    );
    assert_bob_refuses(&mut m, &tx, XchainError::PartialRun { minted: 1, named: 2 });
    // The full run succeeds once; a second is refused.
    let full = LmcRun { process: p, locks: vec![lock], rollback: false };
    let tx = m.bob_call(&u.key, "lmc_run", &full, gridledger_core::Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.bob_call(&u.key, "lmc_run", &full, gridledger_core::Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::ProcessFinished);
    let unknown = LmcRun { process: Hash32([9; 32]), locks: vec![], rollback: false };
    let tx = m.bob_call(&u.key, "lmc_run", &unknown, gridledger_core::Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::UnknownProcess(Hash32([9; 32])));
}
