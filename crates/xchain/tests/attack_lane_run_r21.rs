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
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::SideState;

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
    let (id, nt_s) = post_sender_nt(&mut m, ci, cj, 2111);
    let cut = nt_s.tx.kind.valid_until().unwrap();
    let before = held_deposit(&m, &s);
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
    let end = settle_within(&mut m, id, 800);
    assert!(end.complete, "settled: {end:?}");
    let after = held_deposit(&m, &s);
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
