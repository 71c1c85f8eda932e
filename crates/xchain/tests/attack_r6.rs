//! Sixth attack round on the cross-chain protocols (issue 14): the round-5
//! fixes (reference prices, the receiver's `min_x_b`, late evidence, posted
//! NTs bound to their CCT, proofs against the accumulator, signing domains)
//! and what is around them.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r6 -- --ignored`.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::{SignedTransaction, TxStatus};
use gridledger_xchain::bob::{keys, CctArgs, CctV, PostNt};
use gridledger_xchain::mbs::{bob_call_signed, BobMbs, MbsSpec, SwapRequest, BOB_TX_GAS};
use gridledger_xchain::{CctRecord, Side, SideState};

/// A BoB call of `key` with an explicit nonce (many in one BoB block).
fn call_n<A: borsh::BorshSerialize>(
    m: &BobMbs,
    key: &KeyPair,
    nonce: u64,
    method: &str,
    args: &A,
) -> SignedTransaction {
    bob_call_signed(key, m.bob.chain_id(), &m.bob.domain(), nonce, method, args, Amount::ZERO)
}

/// Ticks until both chains of `rec` reached their ln-08 deadlines at the BoB.
fn to_deadlines(m: &mut BobMbs, rec: &CctRecord) {
    while m.bob_tip(rec.terms.chain_i) < rec.deadline_i || m.bob_tip(rec.terms.chain_j) < rec.deadline_j {
        m.tick().unwrap();
    }
}

/// An honest CCT on its way into sub-situation 2: the sender withholds,
/// the receiver pays NT_r on chain j and posts it, but has not proved it by
/// the deadline (its proof is slow).
fn honest_cct_posted(m: &mut BobMbs, salt: u64) -> (Hash32, CctRecord) {
    let (id, rec) = open_cct(m, &request(1_000, salt));
    m.wait_native_window(&rec).unwrap();
    let r = receiver();
    let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
    m.external_mut(rec.terms.chain_j).unwrap().submit(&nt_r).unwrap();
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    (id, rec)
}

/// Its first-stage CCT_V (after the deadline), sent by any BoB node (here:
/// the receiver itself): returns its gas.
fn honest_cct_v(m: &mut BobMbs, id: Hash32) -> u64 {
    let rec = m.cct(&id).unwrap();
    to_deadlines(m, &rec);
    let v = m.bob_call(&receiver(), "cct_v", &CctV { cct: id }, Amount::ZERO);
    let receipt = m.bob_exec(&v).unwrap();
    assert_eq!(receipt.status, TxStatus::Success, "the honest CCT_V");
    let rec = m.cct(&id).unwrap();
    assert!(rec.verified && rec.receiver == SideState::Pending && rec.sender == SideState::Penalised);
    receipt.gas_used
}

/// Runs `txs` (consecutive nonces) in BoB blocks of at most 250 (more
/// blocks where the block's limits say so).
fn run_in_blocks(m: &mut BobMbs, txs: &[SignedTransaction]) {
    for chunk in txs.chunks(250) {
        for tx in chunk {
            m.bob.submit(tx).unwrap();
        }
        // Until the chunk's last transaction is in a block.
        let last = chunk[chunk.len() - 1].hash();
        while m.bob.receipt(&last).unwrap().is_none() {
            m.tick().unwrap();
        }
    }
}

// ------------------------------------------------------------------ R6-1

/// SC_T's list of CCTs in sub-situation 2 (`FORWARDING`) is one storage
/// value that every CCT_V entering sub-situation 2 and every completion of
/// a verified CCT reads and rewrites whole, and anyone can grow it for
/// the price of BoB gas: an attacker who is sender *and* receiver (two keys
/// of its own) opens CCTs of `x_j = 1` (lock κ̄ · x_B = 2 units), posts for
/// each a receiver's NT with a nonce far ahead (valid signature, right
/// instruction, nonce above the floor: `post_nt` accepts it, it never
/// lands) and sends CCT_V after the deadline. Each CCT adds 32 bytes to
/// the list for κ̄ + κ_i epochs; the penalties go between its own accounts
/// (net zero). Every honest CCT in sub-situation 2 then pays
/// SLOAD + SSTORE per entry (~4,100 gas) at its CCT_V, at its `prove`
/// (`finish_if_settled`) and at its second-stage CCT_V. With ~4,900
/// entries (a few BoB blocks of the attacker's CCTs at 300 M block gas),
/// no transaction of `BOB_TX_GAS` = 20 M can enter or leave sub-situation
/// 2 at all — not the honest payer's `prove`, not the relayer's closing
/// CCT_V (so the attacker's own entries never leave the list either): the
/// deposits of every CCT that reaches sub-situation 2 are frozen.
///
/// Expected: the gas of an honest CCT_V does not depend on how many
/// strangers' CCTs are in sub-situation 2.
/// Observed: it grows by ~4,100 gas per stranger's CCT (the test prints
/// how many strangers' CCTs freeze sub-situation 2 for a 20 M-gas call).
///
/// Suggested fix: keep one storage slot per CCT in sub-situation 2
/// (`forwarding/<id>` set at CCT_V, deleted at completion) and let BoB
/// nodes find them by the `cct_v` events or a prefix scan of the view
/// (as `ccdi` does with `late_prefix`); no on-chain list read whole.
///
/// Fixed: one slot per CCT in sub-situation 2 (`keys::forwarding(id)`),
/// BoB nodes find them by a scan of the view; an honest CCT_V costs the
/// same with 0 or 10,000 strangers' CCTs there. The strangers' count is 48
/// by default; `GRIDLEDGER_R6_STRANGERS=10000` runs the measurement with
/// ten thousand (about a minute in a debug build).
#[test]
fn strangers_ccts_in_sub_situation_2_make_honest_ones_unclosable() {
    let strangers: u64 = std::env::var("GRIDLEDGER_R6_STRANGERS").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
    let dir = tempfile::tempdir().unwrap();
    // A forwarding window longer than the BoB blocks the strangers' CCT_Vs
    // take (250 a block), so all of them are in sub-situation 2 at once.
    let kappa = MbsSpec::default().kappa.max(2 * strangers.div_ceil(250) as u32 + 8);
    let mut m = setup(dir.path(), MbsSpec { kappa, ..MbsSpec::fixed_ids() });
    let (a, b) = (dev_key(2), dev_key(3));
    // Each stranger's CCT locks κ̄ · x_B = 2 of either deposit.
    m.deposit_token_b(&a, 10_000 + 4 * strangers as u128).unwrap();
    m.deposit_token_b(&b, 10_000 + 4 * strangers as u128).unwrap();

    // Baseline: one honest CCT into sub-situation 2 with no other there.
    let (first, _) = honest_cct_posted(&mut m, 1);
    let gas_alone = honest_cct_v(&mut m, first);
    // The same honest CCT again, posted before the strangers arrive.
    let (second, _) = honest_cct_posted(&mut m, 2);

    // The attacker's CCTs and the receiver's NTs, nonces far ahead: valid,
    // never landing (250 CCTs a BoB block).
    let mut ids = Vec::new();
    let mut recs = Vec::new();
    let mut na = m.bob.next_nonce(&a.address());
    let mut nb = m.bob.next_nonce(&b.address());
    let mut k = 0u64;
    while k < strangers {
        let n = (strangers - k).min(250);
        let mut txs = Vec::new();
        let mut chunk = Vec::new();
        for s in k..k + n {
            let req =
                SwapRequest { sender: a.clone(), receiver: b.clone(), chain_i: I, chain_j: J, x_j: 1, salt: 1_000 + s };
            // The receiver's NT carries the terms' exact nonce (attack
            // R10-1): each names one far above b's next, never landable.
            let mut terms = m.terms(&req).unwrap();
            terms.nonce_j += 10_000 + (ids.len() + chunk.len()) as u64;
            let receiver_sig = b.sign(&terms.digest(m.bob.chain_id()));
            chunk.push(terms.id());
            txs.push(call_n(&m, &a, na, "cct", &CctArgs { terms, receiver_sig }));
            na += 1;
        }
        run_in_blocks(&mut m, &txs);
        let mut posts = Vec::new();
        for id in &chunk {
            let rec = m.cct(id).expect("the attacker's CCT is stored");
            let c = m.external(J).unwrap();
            let nonce = rec.terms.nonce_j;
            let nt = c.sign(&b, transfer(&b, J, nonce, rec.terms.sender_j, Amount(1), Amount(1)));
            posts.push(call_n(&m, &b, nb, "post_nt", &PostNt { cct: *id, side: Side::Receiver, nt }));
            nb += 1;
            recs.push(rec);
        }
        run_in_blocks(&mut m, &posts);
        ids.extend(chunk);
        k += n;
    }
    to_deadlines(&mut m, recs.last().unwrap());
    let mut vs = Vec::new();
    for id in &ids {
        vs.push(call_n(&m, &a, na, "cct_v", &CctV { cct: *id }));
        na += 1;
    }
    run_in_blocks(&mut m, &vs);
    let strangers_open = ids.iter().filter(|id| m.bob_record::<bool>(&keys::forwarding(id)).is_some()).count() as u64;
    assert_eq!(strangers_open, strangers, "the attacker's CCTs are all in sub-situation 2");

    // The honest CCT_V, with the strangers' CCTs in sub-situation 2.
    let gas_crowded = honest_cct_v(&mut m, second);
    let per_entry = gas_crowded.saturating_sub(gas_alone) / strangers;
    let freeze_at = (BOB_TX_GAS - gas_alone).checked_div(per_entry).unwrap_or(u64::MAX);
    eprintln!(
        "honest CCT_V into sub-situation 2: {gas_alone} gas with 0 strangers' CCTs there, {gas_crowded} gas with \
         {strangers}"
    );
    assert!(
        gas_crowded <= gas_alone + 10_000,
        "an honest CCT_V cost {gas_alone} gas alone and {gas_crowded} with {strangers} strangers' CCTs in \
         sub-situation 2 (~{per_entry} gas each): ~{freeze_at} such CCTs make every CCT_V, prove and closing \
         CCT_V of sub-situation 2 exceed BOB_TX_GAS"
    );
}

// ------------------------------------------------------------------ R6-2

/// One equivocating validator of a probabilistic external chain stops the
/// BoB's view of that chain for good, and with it every CCT on the chain.
///
/// The BoB takes the first valid header at `tip + 1` and refuses any other
/// at a height it stores (`headers.rs`: "the BoB follows one branch …
/// fork choice is out of scope: the embedded chains never fork"). `relay`
/// is open to any caller. A probabilistic chain's header is valid with its
/// scheduled proposer's signature alone, so the one validator scheduled
/// for height `h` (one of `n`) signs a second block at `h` on the stored
/// tip and relays it before the honest relayer ships the real one. The
/// chain itself goes on along the honest block (its other validators never
/// saw the fork); every honest relay from then on is refused
/// (`ParentMismatch`), and nobody can extend the fork (the next heights
/// belong to other validators). The BoB's stored tip of the chain stays at
/// `h` for ever: no header after it ever becomes final, no deadline
/// `e_* + κ̄ + κ_*` on that chain is ever reached, so no CCT on it can be
/// proved, verified (CCT_V: `DeadlineNotReached`) or closed — both parties'
/// locked deposits are frozen, as is every Π_CCTC lock and CCDI item there.
///
/// Expected: the BoB keeps following the chain (a probabilistic chain's
/// branch with more confirmations replaces a shorter one below finality,
/// or a header signed twice at one height by its proposer is evidence that
/// lets the other branch in), so the honest CCT below completes.
/// Observed: the stored tip stays at the forged height; the CCT never gets
/// past its deadline and its deposits stay locked.
///
/// Suggested fix: fork choice for probabilistic chains at the BoB — keep
/// the non-final suffix (the last `k` headers) replaceable by a longer
/// valid branch from the last final header (the `k` rule the seed assumes);
/// at least accept proof of equivocation (two headers at one height signed
/// by the scheduled proposer) to drop the unconfirmed suffix.
#[test]
fn an_equivocating_leader_freezes_the_bobs_view_of_a_probabilistic_chain() {
    use gridledger_ledger::{BlockHeader, Seal};
    use gridledger_xchain::bob::Relay;
    use gridledger_xchain::headers::{Finality, SealedHeader};
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 2 }, ..MbsSpec::fixed_ids() };
    let mut m = setup(dir.path(), spec);
    // An honest CCT between chains I and J, agreed while all is well.
    let (id, rec) = open_cct(&mut m, &request(1_000, 1));
    let locked_before = m.deposit(&sender().address()).locked;
    assert!(locked_before >= rec.lock);
    m.wait_caught_up(&[J]).unwrap();
    let tip = m.bob_tip(J);
    assert_eq!(tip, m.external(J).unwrap().height(), "the BoB holds chain J up to its tip");
    // The validator scheduled for tip + 1 signs a block of its own there.
    let n = m.spec.validators as u64;
    let h = tip + 1;
    let leader = KeyPair::from_seed(&format!("gridledger-xchain-{J}-validator-{}", h % n));
    let parent = m.external(J).unwrap().sealed_header(tip).unwrap().unwrap().header;
    let forged = BlockHeader {
        chain_id: J,
        height: h,
        parent: parent.hash(),
        timestamp: parent.timestamp + 1,
        proposer: leader.public(),
        tx_root: Hash32([7; 32]),
        receipt_root: Hash32([7; 32]),
        state_root: parent.state_root,
        gas_used: 0,
        tx_count: 0,
    };
    let seal = Seal::Single { signature: leader.sign(&forged.hash()) };
    let relay = Relay { chain: J, headers: vec![SealedHeader { header: forged, seal }] };
    let attacker = dev_key(5);
    let tx = m.bob_call(&attacker, "relay", &relay, Amount::ZERO);
    let r = bob_only(&mut m, &tx);
    assert_eq!(r.status, TxStatus::Success, "the forged header is taken");
    // Everyone else goes on honestly for a while.
    let _ = settle_within(&mut m, id, 120);
    let rec = m.cct(&id).unwrap();
    let chain_height = m.external(J).unwrap().height();
    assert!(
        m.bob_tip(J) > h + 10 && rec.complete,
        "chain J is at height {chain_height} but the BoB holds it at {} (forged header at {h}); the CCT is \
         complete: {} (sender {:?}, receiver {:?}), {} of the sender's deposit still locked",
        m.bob_tip(J),
        rec.complete,
        rec.sender,
        rec.receiver,
        m.deposit(&sender().address()).locked
    );
}

/// A header of chain `J` at `height` on `parent`, signed by the validator
/// the round-robin schedule names for that height (the development
/// deployment's keys are derived from public seeds).
fn forged_on(m: &BobMbs, parent: &gridledger_ledger::BlockHeader, tag: u8) -> gridledger_xchain::headers::SealedHeader {
    use gridledger_ledger::{BlockHeader, Seal};
    let n = m.spec.validators as u64;
    let height = parent.height + 1;
    let leader = KeyPair::from_seed(&format!("gridledger-xchain-{J}-validator-{}", height % n));
    let header = BlockHeader {
        chain_id: J,
        height,
        parent: parent.hash(),
        timestamp: parent.timestamp + 1,
        proposer: leader.public(),
        tx_root: Hash32([tag; 32]),
        receipt_root: Hash32([tag; 32]),
        state_root: parent.state_root,
        gas_used: 0,
        tx_count: 0,
    };
    let seal = Seal::Single { signature: leader.sign(&header.hash()) };
    gridledger_xchain::headers::SealedHeader { header, seal }
}

/// Fork choice's refusals and its one acceptance (R6-5's fix): a competing
/// branch that would replace a final header is `ForkBelowFinality`, one no
/// longer than the stored branch is `ForkNotLonger` — each changes
/// nothing; a longer one replaces the non-final suffix, and the honest
/// relayer then brings the chain's own, longer branch back.
#[test]
fn fork_choice_refuses_final_or_shorter_branches_and_takes_a_longer_one() {
    use gridledger_xchain::bob::Relay;
    use gridledger_xchain::error::XchainError;
    use gridledger_xchain::headers::Finality;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 2 }, ..MbsSpec::fixed_ids() };
    let mut m = setup(dir.path(), spec);
    m.wait_caught_up(&[J]).unwrap();
    let tip = m.bob_tip(J);
    assert!(tip > 4, "a few headers stored: tip {tip}");
    let header = |m: &BobMbs, h| m.external(J).unwrap().sealed_header(h).unwrap().unwrap().header;
    let attacker = dev_key(5);
    // Replacing the final header at tip − k.
    let below = forged_on(&m, &header(&m, tip - 3), 1);
    let tx = m.bob_call(&attacker, "relay", &Relay { chain: J, headers: vec![below] }, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::ForkBelowFinality { chain: J, height: tip - 2, final_height: tip - 2 });
    // A one-header branch at the tip: as long as the stored one.
    let same = forged_on(&m, &header(&m, tip - 1), 2);
    let tx = m.bob_call(&attacker, "relay", &Relay { chain: J, headers: vec![same.clone()] }, Amount::ZERO);
    assert_refused(&mut m, &tx, XchainError::ForkNotLonger { chain: J, branch_tip: tip, tip });
    // Two headers from the tip's parent: longer, taken.
    let next = forged_on(&m, &same.header, 3);
    let tx = m.bob_call(&attacker, "relay", &Relay { chain: J, headers: vec![same.clone(), next] }, Amount::ZERO);
    let r = bob_only(&mut m, &tx);
    assert_eq!(r.status, TxStatus::Success);
    assert_eq!(m.bob_tip(J), tip + 1);
    // The chain goes on along its own branch; the relayer brings it back.
    for _ in 0..20 {
        m.tick().unwrap();
    }
    let (now, now_hash): (u64, Hash32) = m.bob_record(&keys::tip(J)).unwrap();
    assert!(now > tip + 5, "the BoB keeps following chain J: stored tip {now}");
    assert_eq!(now_hash, header(&m, now).hash(), "along chain J's own branch");
}

// ------------------------------------------------------------------ R6-3

/// Anyone turns an in-time CCDI lock into a late one (unlock only) and gets
/// its owner eliminated: `ccdi_late_lock` is open to any caller and takes
/// any SC_BG lock whose header the BoB no longer keeps, whether or not its
/// process is running and its slot still free.
///
/// Round 5 (R5-2) decided that a lock of a running process whose CCT
/// missed the kept headers (its owner slow for κ_i epochs, or a relay
/// catching up) "is sent as that CCT, against the accumulator: stored in
/// its slot if in time, so its owner is not eliminated for the relay's
/// delay" — the BoB nodes' duty sends `ccdi_cct_relayed` for it. But the
/// same lock is also accepted by `ccdi_late_lock`, which stores it for
/// unlocking only and marks it used. A fellow participant watching the
/// chain sends `ccdi_late_lock` for the victim's lock in the block where
/// its header is dropped, ahead of the BoB node's `ccdi_cct_relayed`
/// (which then fails: `AlreadyStored`). The victim's slot stays empty; at
/// the deadline S_MUE eliminates it and its deposit goes to the others —
/// to the attacker among them.
///
/// Expected: a lock that `ccdi_cct_relayed` would store in its slot (its
/// process running and unfinished, its owner registered, its slot free, in
/// time) is stored there whoever sends it; `ccdi_late_lock` refuses it (or
/// stores it in its slot as `ccdi_cct_relayed` does).
/// Observed: the attacker's `ccdi_late_lock` succeeds, the victim's slot is
/// empty and the victim is eliminated, losing its deposit.
///
/// Suggested fix: in `ccdi_late_lock`, if the lock's process has started,
/// is not finished, the deadline has not passed and the lock's owner has a
/// free slot on that chain, take the `ccdi_cct_against` path (store in the
/// slot); keep `ccdi_late_lock` for locks that can no longer be stored.
#[test]
fn a_fellow_participant_turns_an_in_time_lock_late_and_takes_the_deposit() {
    use gridledger_xchain::ccdi::keys as ckeys;
    use gridledger_xchain::scbg::Lock;
    const CCDI_DEPOSIT: u128 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    // κ = 5: the deadline is 5 · κ_i = 20 BoB blocks after the start.
    let (mut m, ca, us, pid, rec) = ccdi_battle(dir.path(), CCDI_DEPOSIT, 77);
    let (victim, attacker) = (dev_key(0), dev_key(1));
    let balance_before = m.bob.account(&victim.address()).balance.0;
    // Both lock at the start; the attacker stores its own item at once.
    let mut lock_txs = Vec::new();
    for u in &us {
        let data = m.item(ca, u.item).unwrap().data;
        let tx = m.sc_bg_call(ca, &u.key, "lock", &Lock { process: pid, item: u.item, data }).unwrap();
        m.external_mut(ca).unwrap().submit(&tx).unwrap();
        lock_txs.push(tx);
    }
    m.tick().unwrap();
    let cct = loop {
        if let Some(c) = m.ccdi_cct_for(pid, &lock_txs[1]).unwrap() {
            if m.bob_tip(ca) >= c.height + m.spec.finality.confirmations() as u64 {
                break c;
            }
        }
        m.tick().unwrap();
    };
    m.bob_ok(&m.ccdi_cct_call(&attacker, &cct).unwrap()).unwrap();
    // The victim is slow: its lock's header leaves the kept window first.
    let victim_lock = m.ccdi_cct_for(pid, &lock_txs[0]).unwrap().expect("the victim's lock landed");
    while m.bob_tip(ca) < victim_lock.height + m.spec.kept_headers() {
        m.tick().unwrap();
    }
    assert!(m.bob.height() < rec.deadline, "well in time: BoB height {} < deadline {}", m.bob.height(), rec.deadline);
    // The attacker's ccdi_late_lock goes in ahead of the BoB node's duty.
    let late = m.ccdi_late_lock_tx(&attacker, pid, &lock_txs[0]).unwrap();
    let h = m.bob.submit(&late).unwrap();
    m.tick().unwrap();
    let attacker_status = m.bob.receipt(&h).unwrap().map(|r| r.status);
    // Everyone else honest until the deadline; then anyone finishes.
    while m.bob.height() < rec.deadline {
        m.tick().unwrap();
    }
    if !m.process(&pid).unwrap().finished {
        let fin = m.bob_call(&m.relayer.clone(), "ccdi_finish", &pid, Amount::ZERO);
        let _ = m.bob_exec(&fin).unwrap();
    }
    let done = m.process(&pid).unwrap();
    let slot_stored = m.bob_record::<gridledger_xchain::ccdi::StoredItem>(&ckeys::slot(&pid, 0)).is_some();
    let balance_after = m.bob.account(&victim.address()).balance.0;
    assert!(
        slot_stored && !done.eliminated.contains(&victim.address()),
        "the victim's in-time lock (block {} of chain {ca}) was taken as late by the attacker's ccdi_late_lock \
         ({attacker_status:?}): slot stored {slot_stored}, eliminated {:?}, the victim's BoB balance {} -> {} \
         (an honest participant gets its deposit {CCDI_DEPOSIT} back at the outcome)",
        victim_lock.height,
        done.eliminated,
        balance_before,
        balance_after
    );
}

/// The fix's other half: a lock that really is late — made after the
/// process's deadline — still goes through `ccdi_late_lock` as an
/// unlock-only item (its slot stays empty, its owner is not counted as
/// having stored it), whoever sends it.
#[test]
fn a_lock_made_after_the_deadline_is_still_late_through_ccdi_late_lock() {
    use gridledger_xchain::ccdi::keys as ckeys;
    use gridledger_xchain::scbg::Lock;
    let dir = tempfile::tempdir().unwrap();
    let (mut m, ca, us, pid, rec) = ccdi_battle(dir.path(), 10_000, 78);
    let (victim, other) = (dev_key(0), dev_key(1));
    while m.bob.height() < rec.deadline {
        m.tick().unwrap();
    }
    // The victim locks only after the deadline.
    let data = m.item(ca, us[0].item).unwrap().data;
    let lock_tx = m.sc_bg_call(ca, &victim, "lock", &Lock { process: pid, item: us[0].item, data }).unwrap();
    m.external_mut(ca).unwrap().submit(&lock_tx).unwrap();
    m.tick().unwrap();
    let at = m.ccdi_cct_for(pid, &lock_tx).unwrap().expect("the lock landed");
    while m.bob_tip(ca) < at.height + m.spec.kept_headers() {
        m.tick().unwrap();
    }
    // The BoB node's own duty sends the same lock in this tick at
    // `NODE_GAS_PRICE`; the stranger pays more, so its call comes first in
    // the block (blocks are filled highest gas price first) and runs on the
    // accumulator as it stands now, before the tick's relays.
    let mut late = m.ccdi_late_lock_tx(&other, pid, &lock_tx).unwrap();
    late.tx.gas_price = Amount(gridledger_xchain::mbs::NODE_GAS_PRICE.0 + 1);
    let late = m.bob.sign(&other, late);
    let h = m.bob.submit(&late).unwrap();
    m.tick().unwrap();
    let r = m.bob.receipt(&h).unwrap().expect("the ccdi_late_lock executed");
    let status = r.status.clone();
    let slot_stored = m.bob_record::<gridledger_xchain::ccdi::StoredItem>(&ckeys::slot(&pid, 0)).is_some();
    let late_stored = status == TxStatus::Success && r.events.iter().any(|e| e.name == "ccdi_unlock_only");
    assert!(
        !slot_stored && late_stored,
        "a lock made after the deadline: slot stored {slot_stored}, unlock-only record {late_stored}, \
         the stranger's ccdi_late_lock {status:?}"
    );
}

// ------------------------------------------------------------------ R6-4

/// The Token_B pool's LP still sets the withholding penalty: 2 % a block
/// compounds, and the receiver's floor `min_x_b` is the quote less 1 %.
///
/// Round 5 made SC_AMM price from a reference that follows the pool by at
/// most 2 % a BoB block (`amm::PriceRef`) and let the receiver sign a
/// floor on x_B (`CctTerms::min_x_b`, R5-3). The R5-3 test waited out
/// `PRICE_WINDOW + 1` = 17 blocks after the drain, which now moves the
/// reference by 0.98^17 ≈ 0.71 only. An LP (or a sender colluding with
/// the pool's only LP) simply waits longer: 99.9 % of the Token_B pool
/// withdrawn, ~350 BoB blocks later the reference has followed it all the
/// way. The floor every receiver signs (`BobMbs::terms` /
/// `x_b_floor`, and the `--processes` driver alike) is the *quote* less
/// the slippage, i.e. the drained price: x_B of the CCT is ~1/1000 of what
/// x_j was worth, the lock κ̄ · x_B is negligible, and a sender that
/// withholds after the receiver paid x_j keeps x_i and loses ~nothing.
/// Nothing on chain (the spot pool, the `pool` view, which shows spot
/// balances) warns the receiver; the decay is silent.
///
/// Expected: an honest receiver that pays is compensated at least about
/// what its payment was worth before the LP moved the pool (the floor it
/// signs does not follow a price one LP sets), or the CCT is refused.
/// Observed: x_B = 1 Token_B for x_j = 1,000 Token_j worth 1,000 Token_B
/// before the drain, and the floor the library signed is 0 (the quote, 1,
/// less its 1 % rounded up): the CCT executes and the receiver who paid is
/// compensated with 1/1000 of its payment.
///
/// Suggested fix: do not derive the penalty from a price one LP can set.
/// E.g. bound x_B below by a floor that does not decay with the reference
/// (a per-token minimum set in the BoB genesis, or the long-run maximum of
/// the reference over a window far longer than any drain the deployment
/// tolerates); or refuse CCTs while a pool's reference is far from its
/// long-run value; or have the library compare the quote with a
/// receiver-provided valuation instead of deriving min_x_b from the quote.
///
/// Fixed: the drain is a pro-rata withdrawal of every token and leaves the
/// price as it was (R6-5), and the genesis fixes a least `x_B` per unit of
/// `x_j` no price goes below (`bob::PenaltyFloor`; see the test below).
#[test]
fn a_token_b_pool_drained_for_400_blocks_makes_the_penalty_negligible_again() {
    let dir = tempfile::tempdir().unwrap();
    let x_j = 1_000;
    // The Token_B pool's only LP takes 99.9 % of it out and waits.
    let (mut m, fair) = drained(dir.path(), x_j, |m| m.bob.chain_id());
    m.ticks(400).unwrap();
    // The receiver signs the library's terms (min_x_b = quote - 1 %); the
    // sender opens the CCT and withholds; the receiver pays and proves.
    let (id, rec) = open_cct(&mut m, &request(x_j, 3));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let rec = settle_within(&mut m, id, 300);
    assert_eq!(rec.sender, SideState::Penalised, "the sender withheld");
    assert!(
        rec.x_b >= fair / 2,
        "the receiver paid {x_j} Token_j (worth {fair} Token_B before the drain) and is compensated x_B = {} \
         Token_B (min_x_b it signed: {})",
        rec.x_b,
        rec.terms.min_x_b
    );
}

/// The R6-4 floor: a pool whose price values Token_B so high that `x_B`
/// falls below the deployment's genesis minimum (`x_j / 10` in the
/// development MBS) prices no CCT, even one whose receiver signed
/// `min_x_b = 0`: `PenaltyOutOfBounds` with the floor, nothing changes. The
/// library's terms never sign below the floor either; a configuration
/// without a floor for a chain is refused.
///
/// Since R7-1 the price is the genesis's, not the opening join's amounts,
/// so no pool state prices below a floor: the floor is kept by refusing a
/// genesis whose own price lies below it (SC_T's check stays as well).
#[test]
fn a_penalty_below_the_genesis_floor_is_refused() {
    use gridledger_xchain::mbs::PENALTY_FLOOR;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::fixed_ids()).unwrap();
    for c in m.chain_ids() {
        m.provide_liquidity(&provider(), c, LIQUIDITY).unwrap();
    }
    // Token_B opens at 100 times the others' price in the opening join's
    // amounts. Since R7-1 those amounts are not the price: the genesis's
    // reference balances are, and the genesis price keeps every floor.
    m.provide_token_b(&provider(), LIQUIDITY / 100).unwrap();
    m.deposit_token_b(&sender(), DEPOSIT).unwrap();
    m.deposit_token_b(&receiver(), DEPOSIT).unwrap();
    m.tick().unwrap();
    let x_j = 1_000;
    let token_b = m.bob.chain_id();
    let x_b = m.quote(x_j, token_b, J).unwrap();
    let floor = (x_j * PENALTY_FLOOR.0).div_ceil(PENALTY_FLOOR.1);
    assert_eq!(x_b, m.config.reference_price(x_j, token_b, J).unwrap(), "x_B is the genesis price");
    assert!(x_b >= floor, "the pool prices x_B = {x_b}, not below the floor {floor}");
    let req = request(x_j, 11);
    let terms = m.terms(&req).unwrap();
    assert!(terms.min_x_b >= floor, "the library signs at least the floor");
    // A genesis whose own price of x_B (Token_B at 100 times the others')
    // lies below the floor is refused: it could price no CCT on chain J.
    let mut cfg = m.config.clone();
    cfg.reference_balances.iter_mut().filter(|(t, _)| *t == token_b).for_each(|(_, b)| *b /= 100);
    assert!(cfg.validate().unwrap_err().contains("below its penalty floor"));
    let mut cfg = m.config.clone();
    cfg.penalty_floors.retain(|f| f.chain != J);
    assert!(cfg.validate().is_err(), "a deployment without a floor for chain {J}");
}

// ------------------------------------------------------------------ R6-5

/// R5-5 again, 400 blocks later: the Token_i pool's LP still sets the rate
/// every honest receiver signs, the reference only delays it.
///
/// The R5-5 fix prices from `amm::PriceRef`, 2 % a BoB block toward the
/// pool. The LP of the Token_i pool (or a sender colluding with it)
/// withdraws 99.9 % of Token_i — free of charge: a single-token pool's
/// withdrawal costs nothing, unlike a Balancer exit, whose single-asset
/// withdrawal pays along the invariant — and waits ~350 blocks. Every
/// receiver's client then quotes the drained reference, signs x_i bounds
/// ±1 % around it, and the honest swap completes on both sides: the
/// receiver gives x_j Token_j for ~1/1000 of the Token_i it fetched before.
///
/// Expected: a receiver does not agree to a rate one LP set at will
/// (bounds from a price the receiver supplies, or a pool whose
/// single-token withdrawals cannot move the price without paying for it).
/// Observed: the honest swap completes with x_i ≈ fair / 1000.
///
/// Suggested fix: as R6-4; at the root, price from pools that trade or
/// whose single-token withdrawals pay the price impact (Balancer's
/// single-asset exit), so moving the price costs the mover.
///
/// Fixed: one LP share is a part of the whole pool; joins and withdrawals
/// take or pay every token pro rata and never move the price (`amm`'s
/// "Price-neutral liquidity"). The drain is a withdrawal of every token.
#[test]
fn a_token_i_pool_drained_for_400_blocks_sets_the_rate_again() {
    use gridledger_xchain::mbs::Behaviour;
    let dir = tempfile::tempdir().unwrap();
    let x_j = 1_000;
    let (mut m, fair) = drained(dir.path(), x_j, |_| I);
    m.ticks(400).unwrap();
    let rep = m.swap(&request(x_j, 5), Behaviour::Honest).unwrap();
    assert!(rep.record.complete && matches!(rep.record.receiver, SideState::Proved { .. }));
    assert!(
        rep.x_i >= fair / 2,
        "the receiver gave {x_j} Token_j for {} Token_i (the same {x_j} fetched {fair} Token_i 400 blocks before)",
        rep.x_i
    );
}

/// The R6-5 fix: joins and withdrawals of every size — dust-sized ones
/// whose pro-rata amounts round, by two LPs, interleaved — never move the
/// price a receiver is quoted, and every token and share adds up: each
/// token's pool balance plus what the LPs hold claimed is what they
/// claimed, and the LPs' shares plus the locked ones are the supply.
#[test]
fn liquidity_changes_are_price_neutral_and_conserved() {
    use gridledger_xchain::bob::{keys, Provide, WithdrawLiquidity, LOCKED_SHARES};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let token_b = m.bob.chain_id();
    let quotes = |m: &BobMbs| (m.quote(1_000, I, J).unwrap(), m.quote(1_000, token_b, J).unwrap());
    let before = quotes(&m);
    let lp2 = dev_key(5);
    let claimed2 = 777_777u128;
    for c in m.chain_ids() {
        m.provide_liquidity(&lp2, c, claimed2).unwrap();
    }
    let tokens: Vec<u32> = m.config.weights.iter().map(|(t, _)| *t).collect();
    let held = |m: &BobMbs, who: &KeyPair, t: u32| m.bob_record::<u128>(&keys::wrapped(t, &who.address())).unwrap_or(0);
    let shares = |m: &BobMbs, who: &KeyPair| m.bob_record::<u128>(&keys::lp(&who.address())).unwrap_or(0);
    let p = provider();
    // Odd sizes (1, 3, 999 shares, …) so every step rounds.
    for (k, size) in [1u128, 3, 999, 12_345, 7, 100_001, 2, 31_337].into_iter().enumerate() {
        let who = if k % 2 == 0 { &p } else { &lp2 };
        if shares(&m, who) >= size && k % 3 != 1 {
            m.bob_ok(&m.bob_call(who, "withdraw_liquidity", &WithdrawLiquidity { shares: size }, Amount::ZERO))
                .unwrap();
        } else {
            let amounts: Vec<(u32, u128)> =
                tokens.iter().map(|t| (*t, if *t == token_b { size } else { held(&m, who, *t).min(size) })).collect();
            if amounts.iter().all(|(_, x)| *x > 0) {
                let tx = m.bob_call(who, "provide", &Provide { amounts }, Amount(size));
                m.bob_exec(&tx).unwrap();
            }
        }
        m.tick().unwrap();
        assert_eq!(quotes(&m), before, "step {k}: the price moved");
    }
    m.ticks(50).unwrap();
    assert_eq!(quotes(&m), before, "the price moved later");
    let total: u128 = m.bob_record(&keys::lp_total()).unwrap();
    assert_eq!(shares(&m, &p) + shares(&m, &lp2) + LOCKED_SHARES, total, "shares add up");
    for c in m.chain_ids() {
        let pool: u128 = m.bob_record(&keys::pool(c)).unwrap();
        assert_eq!(pool + held(&m, &p, c) + held(&m, &lp2, c), LIQUIDITY + claimed2, "token {c} adds up");
    }
}
