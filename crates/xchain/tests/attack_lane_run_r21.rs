//! Twenty-first attack round on the cross-chain protocols (issue 14): the
//! BoB node's lane run after the fix of attack r19 [1] (a node's run
//! reaches toward its last pending duty however many of its ordinary
//! calls are queued ahead).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r21 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::ChainConfig;
use gridledger_xchain::bob::{CctV, PostNt};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::{Side, SideState};

/// Keeps two blocks' worth of `key`'s plain BoB transfers at gas price
/// `price` pending on the BoB.
fn keep_bob_busy(m: &mut BobMbs, key: &KeyPair, price: u128) {
    let per_block = ChainConfig::default().max_block_txs as u64;
    let bob = m.bob.chain_id();
    let committed = m.bob.account(&key.address()).nonce;
    let mut next = m.bob.next_nonce(&key.address());
    while next - committed < 2 * per_block {
        let tx = m.bob.sign(key, transfer(key, bob, next, key.address(), Amount(1), Amount(price)));
        m.bob.submit(&tx).unwrap();
        next += 1;
    }
}

/// Attack r18 [2]'s scenario (S posts its deadline NT on the BoB in time
/// and relies on the BoB node to forward it; R pays and proves at once;
/// a flood at price 3 keeps two BoB blocks of transfers pending until
/// chain i passes the NT's deadline), with `calls` of the node's own
/// ordinary calls (`ccdi_finish` of process ids that do not exist, at the
/// node's price 1) queued ahead of its relays just before the flood.
/// Returns S's side, S's deposit before and after, and how many of the
/// node's calls landed.
fn behind_own_calls(calls: usize) -> (SideState, (u128, u128), usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let (s, flooder) = (sender(), dev_key(2));
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 2111));
    m.wait_native_window(&rec).unwrap();
    let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
    let cut = nt_s.tx.kind.valid_until().unwrap();
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let relayer = m.relayer.clone();
    let mut own = Vec::new();
    for i in 0..calls {
        let mut pid = [0u8; 32];
        pid[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
        let tx = m.bob_call(&relayer, "ccdi_finish", &Hash32(pid), Amount::ZERO);
        m.bob.submit(&tx).unwrap();
        own.push(tx.hash());
    }
    while m.external(ci).unwrap().height() <= cut {
        keep_bob_busy(&mut m, &flooder, 3);
        m.tick().unwrap();
    }
    for _ in 0..800 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            continue;
        }
        m.tick().unwrap();
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "settled: {end:?}");
    let after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = own.iter().filter(|h| m.bob.receipt(h).unwrap().is_some()).count();
    (end.sender, (before, after), landed)
}

/// Held up: 120 of the node's ordinary calls (more than the lane's 75
/// places a block) queued ahead of its relays; under a flood at price 3
/// the lane drains them toward the relays, the stored tip of chain i
/// moves on, S's posted NT is forwarded and proved, S keeps its deposit.
#[test]
fn more_than_a_lanes_worth_of_node_calls_ahead_leave_a_posted_payer_proved() {
    let (side, (before, after), landed) = behind_own_calls(120);
    assert!(matches!(side, SideState::Proved { .. }), "S posted in time: {side:?}");
    assert_eq!(before, after, "S's deposit");
    assert_eq!(landed, 120, "the node's calls ahead of its relays were carried");
}
