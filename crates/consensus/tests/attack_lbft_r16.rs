//! Attack round 16 on the leaderless BFT's transaction management
//! (`consensus::lbft::txm`, π^τ with TBG's buckets), after the round-15
//! fix: a replica holds one transaction per `(client, DN_c, e_c)`, the
//! first it received, and `κ + 1` per client.
//!
//! All ten replicas of a deployment run π^τ here; each epoch every
//! replica hands TBG's batch to the "agreement", which delivers all of
//! them (the earliest copy of a duplicate kept, as P^ABC does) to every
//! replica, in replica order.
//!
//! - [1] (medium): the one-per-`(client, DN_c, e_c)` rule is local to a
//!   replica, and a transaction that became invalid while it waited in a
//!   bucket is never deleted (Algorithm 4.1 line 22 deletes invalid
//!   transactions; here Condition-1 is checked only on arrival and on
//!   re-examination of *undecided* ones). Two consequences:
//!   (a) a client that signs τ different requests for one `(DN_c, e_c)`
//!   and sends each to one of its τ recipients (all of them recipients:
//!   `F^A` does not depend on the request) gets all τ batched and
//!   ABC-delivered, one per group's consultation epoch, each after the
//!   first was delivered and its delivery number used: Rules 2–4 (one
//!   transaction per eligible epoch) are multiplied by τ
//!   (`a_client_gets_one_transaction_per_delivery_number_delivered`);
//!   (b) a client that signs the same request again for a later epoch
//!   before the first copy was delivered (Rules 2 and 3 allow it: same
//!   `DN_c`, `e_c ≥ e^lastnew`) gets the request delivered twice: the
//!   later copy was valid when it was stored, and is batched after the
//!   first copy's delivery made it `AlreadyDelivered`
//!   (`a_request_signed_for_two_epochs_is_delivered_once`).
//!
//! - [3] (low): TBG consults each bucket at one local epoch only, and a
//!   replica that catches up (several epochs delivered at once, as a
//!   lagging replica's sync does) is asked for the batch of its newest
//!   local epoch alone: the buckets due at the skipped epochs are never
//!   batched, and are freed with no trace. A transaction π^τ answered
//!   `Stored` is neither batched, nor delivered, nor refused
//!   (`a_stored_transaction_is_batched_after_a_catch_up`).
//!
//! Held up: one replica receiving the τ requests keeps the first and
//! batches it alone (`one_replica_batches_one_of_a_clients_conflicting_transactions`).
//!
//! Fixed: a delivery deletes its client's bucketed transactions with a
//! used delivery number (Algorithm 4.1 line 22), a block executes one
//! transaction per `(client, DN_c)`, the earliest delivered
//! (`PiTau::apply_block`), and TBG batches the groups due at skipped
//! epochs at its next batch ([1] and [3] pass).
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r16`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use gridledger_consensus::lbft::txm::{
    array_function, nonce_value, BatchSource, LbftTx, Outcome, PiTau, PiTauConfig, TbgConfig, Theta,
};
use gridledger_core::ed25519::EdKeyPair;
use gridledger_core::Hash32;

const N: u32 = 10;
const TAU: u32 = 4;
const GENESIS: Hash32 = Hash32([7; 32]);

/// The block hash every replica agrees on for epoch `e` (`h^(0)` is the genesis).
fn block_hash(e: u64) -> Hash32 {
    if e == 0 {
        GENESIS
    } else {
        let mut h = [0u8; 32];
        h[..8].copy_from_slice(&e.to_le_bytes());
        h[31] = 0x5a;
        Hash32(h)
    }
}

/// τ = 4 in `groups` groups, κ = 2, B = 100.
fn deployment(groups: u32) -> Vec<PiTau> {
    let tbg = TbgConfig { tau: TAU, groups, kappa: 2, batch: 100, max_stored: 1_000 };
    (0..N)
        .map(|me| {
            PiTau::new(PiTauConfig { replicas: N, me, theta: Theta::ALWAYS, genesis: GENESIS, max_pending: 64, tbg })
                .expect("valid configuration")
        })
        .collect()
}

/// The recipients, in order, of `key`'s transactions with delivery
/// number `dn` for epoch `e_c`.
fn recipients(key: &EdKeyPair, dn: u64, e_c: u64) -> Vec<u32> {
    array_function(&nonce_value(dn, &key.public(), &block_hash(e_c - 1)), N, TAU)
}

/// Runs local epochs `from..=to` on every replica: each batches, the
/// batches are delivered to all (earliest copy kept). Returns the
/// delivered transactions with their epoch.
fn run_epochs(reps: &mut [PiTau], from: u64, to: u64) -> Vec<(u64, Arc<LbftTx>)> {
    let mut out = Vec::new();
    for e in from..=to {
        let mut seen = HashSet::new();
        let mut delivered = Vec::new();
        for r in reps.iter_mut() {
            for tx in r.next_batch(e) {
                if seen.insert(tx.id()) {
                    delivered.push(tx);
                }
            }
        }
        for r in reps.iter_mut() {
            r.on_block(e, block_hash(e), &delivered);
        }
        out.extend(delivered.into_iter().map(|t| (e, t)));
    }
    out
}

/// [1a] τ conflicting transactions for one `(DN_c, e_c)`, one to each
/// recipient: every one is delivered, in four different epochs.
#[test]
fn a_client_gets_one_transaction_per_delivery_number_delivered() {
    // g = 1: each recipient position is its own group, consulted at
    // e_c + κ, e_c + 3κ, e_c + 5κ, e_c + 7κ.
    let mut reps = deployment(4);
    let client = EdKeyPair::from_seed("equivocating-client");
    let to = recipients(&client, 0, 1);
    for (j, &r) in to.iter().enumerate() {
        let tx = LbftTx::sign(&client, 1, format!("pay 5 Wh to #{j}").into_bytes(), 0, 2);
        let out = reps[r as usize].receive(tx);
        assert_eq!(out, Outcome::Stored { slot: j as u32 }, "recipient {j} (replica {r}) stores its copy");
    }
    let delivered = run_epochs(&mut reps, 1, 20);
    let of_dn0: Vec<(u64, String)> = delivered
        .iter()
        .filter(|(_, t)| t.client == client.public() && t.delivery_number == 0)
        .map(|(e, t)| (*e, String::from_utf8_lossy(&t.request).into_owned()))
        .collect();
    // Every replica agrees the client's delivery number advanced once.
    assert!(reps.iter().all(|r| r.delivered_count(&client.public()) == 1));
    assert_eq!(
        of_dn0.len(),
        1,
        "one client, one eligible epoch, one delivery number: delivered (epoch, request) {of_dn0:?}"
    );
}

/// [1b] The same request signed for epochs 1 and 2 with delivery number
/// 0 (allowed: `e_c ≥ e^lastnew`, the first not delivered yet) is
/// delivered twice.
#[test]
fn a_request_signed_for_two_epochs_is_delivered_once() {
    let mut reps = deployment(2);
    let client = EdKeyPair::from_seed("retrying-client");
    let request = b"pay 5 Wh to the grid".to_vec();
    for r in recipients(&client, 0, 1) {
        let out = reps[r as usize].receive(LbftTx::sign(&client, 1, request.clone(), 0, 2));
        assert!(matches!(out, Outcome::Stored { .. }), "{out:?}");
    }
    // Epoch 1 delivers nothing (TBG first consults at e_c + κ = 3).
    assert!(run_epochs(&mut reps, 1, 1).is_empty());
    // Local epoch 2: not delivered yet, the client signs it again for e_c = 2.
    for r in recipients(&client, 0, 2) {
        let out = reps[r as usize].receive(LbftTx::sign(&client, 2, request.clone(), 0, 3));
        assert!(matches!(out, Outcome::Stored { .. }), "the retry is valid on arrival: {out:?}");
    }
    let delivered = run_epochs(&mut reps, 2, 20);
    let copies: Vec<(u64, u64)> =
        delivered.iter().filter(|(_, t)| t.request == request).map(|(e, t)| (*e, t.epoch)).collect();
    assert_eq!(copies.len(), 1, "the request was delivered at (epoch, e_c) {copies:?}");
}

/// Held up: the round-15 rule on one replica. The τ conflicting
/// transactions all reach one recipient: it keeps the first and batches
/// it alone; a later one is refused with the kept one's id.
#[test]
fn one_replica_batches_one_of_a_clients_conflicting_transactions() {
    let mut reps = deployment(2);
    let client = EdKeyPair::from_seed("equivocating-client");
    let r = recipients(&client, 0, 1)[0] as usize;
    let mut kept = None;
    let mut outcomes = HashMap::new();
    for j in 0..TAU {
        let tx = LbftTx::sign(&client, 1, format!("pay 5 Wh to #{j}").into_bytes(), 0, 2);
        let id = tx.id();
        let out = reps[r].receive(tx);
        if kept.is_none() {
            kept = Some(id);
        }
        outcomes.insert(j, out);
    }
    assert_eq!(outcomes[&0], Outcome::Stored { slot: 0 });
    for j in 1..TAU {
        assert_eq!(
            outcomes[&j],
            Outcome::Rejected(gridledger_consensus::lbft::txm::Rejection::ClientHeld { kept: kept.unwrap() })
        );
    }
    let batched: Vec<Arc<LbftTx>> = (1..=10).flat_map(|e| reps[r].next_batch(e)).collect();
    assert_eq!(batched.len(), 1);
    assert_eq!(batched[0].id(), kept.unwrap());
}

/// [3] A transaction stored in a group-0 bucket (consulted at local epoch
/// `e_c + κ = 3`) at a replica that then delivers epochs 1 to 4 in one
/// catch-up and is asked for the batch of local epoch 5 onwards.
#[test]
fn a_stored_transaction_is_batched_after_a_catch_up() {
    let mut reps = deployment(2);
    let client = EdKeyPair::from_seed("patient-client");
    let r = recipients(&client, 0, 1)[0] as usize;
    let tx = LbftTx::sign(&client, 1, b"pay 5 Wh".to_vec(), 0, 2);
    let id = tx.id();
    assert_eq!(reps[r].receive(tx), Outcome::Stored { slot: 0 });
    let p = &mut reps[r];
    // Local epochs 1 and 2 batched as usual (nothing due yet).
    assert!(p.next_batch(1).is_empty());
    p.on_block(1, block_hash(1), &[]);
    assert!(p.next_batch(2).is_empty());
    // A catch-up: epochs 2, 3 and 4 delivered together (none carried the
    // transaction), then the batch of local epoch 5.
    for e in 2..=4 {
        p.on_block(e, block_hash(e), &[]);
    }
    let mut batched = false;
    for e in 5..=20 {
        batched |= p.next_batch(e).iter().any(|t| t.id() == id);
        p.on_block(e, block_hash(e), &[]);
    }
    assert!(
        batched || p.holds(&id),
        "the transaction was Stored (slot 0, due at local epoch 3), never delivered, and is now neither batched nor held ({} bucketed)",
        p.bucketed()
    );
}
