//! Attack round 15 on the leaderless BFT's transaction management
//! (`consensus::lbft::txm`, π^τ with TBG's buckets): hostile transaction
//! fields from one client key. Each finding is a test that fails on the
//! code it was written against, ignored so the suite stays green; what
//! held up passes.
//!
//! - [1] (medium): Rule-2 lets a client send one transaction per epoch,
//!   and Rule-3 ties each to the client's delivery number, but π^τ bounds
//!   only the *undecided* transactions per client (attack r1 [3a]): a
//!   transaction that is valid at once (Situation 2 or 3, `DN_c` = the
//!   delivered count) is stored in its bucket whatever else the same
//!   client holds for that `(DN_c, e_c)`. One key signing distinct
//!   requests for one epoch and one delivery number fills the replica's
//!   whole memory bound (`max_stored`), and every other client's valid
//!   transaction is then refused (`Store(Full)`) for as long as the flood
//!   goes on (`one_client_key_cannot_fill_the_buckets`). The flood is also
//!   batched and ABC-delivered in full: all of one client's transactions
//!   for one `(DN_c, e_c)` go into the batch (only the first advances the
//!   client's delivery number, the rest are delivered anyway), where
//!   Rule-2/Rule-3 allow one (`one_client_gets_one_transaction_per_epoch_and_delivery_number_batched`).
//!   A bucket fuller than the batch is truncated at the batch size and
//!   the rest dropped, so a flood queued ahead of an honest client's
//!   transaction in its bucket drops it without a trace.
//!
//! Held up: eligibility at the edge (`Theta::eligible` is the strict
//! `H(PubK‖e) < θ·2^k`; θ = 1 takes every key), delivery numbers and
//! epochs at `u64::MAX` (refused with a typed reason, no overflow panic),
//! and the same request signed for two epochs with one delivery number
//! advances the client's delivery number once
//! (`hostile_fields_are_refused_with_a_reason`).
//!
//! Fixed: π^τ holds one transaction per `(client, DN_c, e_c)` (the first
//! received; a later one is refused, `Rejection::ClientHeld`), the
//! per-client bound of `κ + 1` covers valid and undecided transactions
//! together, and TBG refuses a transaction on store once the batch of its
//! consultation epoch is full (`StoreError::BatchFull`) rather than cutting
//! the batch: both tests now run.
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r15 -- --include-ignored`.

mod common;
use common::lbft::pi_tau;
use gridledger_consensus::lbft::txm::{
    array_function, nonce_value, BatchSource, Invalid, LbftTx, Outcome, Rejection, Theta,
};
use gridledger_core::ed25519::EdKeyPair;
use gridledger_core::Hash32;
use std::sync::Arc;

/// `h^(0)` of the fixture ([`pi_tau`]).
const GENESIS: Hash32 = Hash32([7; 32]);

/// A key for which replica 0 of the fixture (10 replicas, τ = 4) is a
/// recipient of its transactions with delivery number 0 in epoch 1.
fn recipient_key(prefix: &str) -> EdKeyPair {
    (0..)
        .map(|i| EdKeyPair::from_seed(&format!("{prefix}-{i}")))
        .find(|k| array_function(&nonce_value(0, &k.public(), &GENESIS), 10, 4).contains(&0))
        .expect("some key has replica 0 among its recipients")
}

/// [1] One key, one delivery number, one epoch, 1,000 distinct requests:
/// the replica's whole memory bound, and an honest client's valid
/// transaction is refused.
#[test]
fn one_client_key_cannot_fill_the_buckets() {
    let mut p = pi_tau(Theta::ALWAYS, 64);
    let flooder = recipient_key("flooder");
    let mut stored = 0;
    for i in 0..1_000u32 {
        if let Outcome::Stored { .. } = p.receive(LbftTx::sign(&flooder, 1, i.to_le_bytes().to_vec(), 0, 2)) {
            stored += 1;
        }
    }
    let honest = recipient_key("honest");
    let out = p.receive(LbftTx::sign(&honest, 1, b"pay 5 Wh".to_vec(), 0, 2));
    assert!(
        matches!(out, Outcome::Stored { .. }),
        "one key stored {stored} transactions with delivery number 0 for epoch 1; an honest client's valid transaction is {out:?}"
    );
}

/// [1] The flood is batched in full: TBG hands every one of the key's
/// transactions for `(DN_c = 0, e_c = 1)` to the agreement.
#[test]
fn one_client_gets_one_transaction_per_epoch_and_delivery_number_batched() {
    let mut p = pi_tau(Theta::ALWAYS, 64);
    let flooder = recipient_key("flooder");
    for i in 0..10u32 {
        let _ = p.receive(LbftTx::sign(&flooder, 1, i.to_le_bytes().to_vec(), 0, 2));
    }
    let batched: Vec<Arc<LbftTx>> = (1..=10).flat_map(|e| p.next_batch(e)).collect();
    let of_flooder = batched.iter().filter(|t| t.client == flooder.public() && t.delivery_number == 0).count();
    assert!(of_flooder <= 1, "{of_flooder} transactions of one client with delivery number 0 for epoch 1 were batched");
}

#[test]
fn hostile_fields_are_refused_with_a_reason() {
    // Eligibility: θ = 1 takes every key and epoch, the smallest θ almost
    // none; the comparison is strict at the edge (checked through the
    // public rule: v·10^6 < ppm·2^64 for the top 64 bits v of the hash).
    let k = EdKeyPair::from_seed("edge");
    assert!((0..64).all(|e| Theta::ALWAYS.eligible(&k.public(), e)));
    let tiny = Theta::from_ppm(1).unwrap();
    assert!((0..64).filter(|&e| tiny.eligible(&k.public(), e)).count() <= 1);

    let mut p = pi_tau(Theta::ALWAYS, 64);
    let c = recipient_key("edges");
    // e_c^new must be after e_c: u64::MAX as e_c leaves no room.
    let out = p.receive(LbftTx::sign(&c, u64::MAX, b"a".to_vec(), 0, u64::MAX));
    assert_eq!(
        out,
        Outcome::Rejected(Rejection::Invalid(Invalid::NextEpochNotAfter { epoch: u64::MAX, next_epoch: u64::MAX }))
    );
    // An epoch far in the future: invalid (Situation 1's κ window).
    let out = p.receive(LbftTx::sign(&c, u64::MAX - 1, b"a".to_vec(), 0, u64::MAX));
    assert!(matches!(out, Outcome::Rejected(Rejection::Invalid(Invalid::EpochTooFarAhead { .. }))), "{out:?}");
    // Delivery numbers at the top of u64 (no wrap to the expected 0 or 1).
    for dn in [u64::MAX, u64::MAX - 1] {
        let out = p.receive(LbftTx::sign(&c, 1, b"a".to_vec(), dn, 2));
        assert!(
            matches!(out, Outcome::Rejected(Rejection::Invalid(Invalid::DeliveryNumberMismatch { .. }))),
            "dn {dn}: {out:?}"
        );
    }
    // e_c^new at u64::MAX is allowed; the client's next transaction must
    // wait for it: once delivered, every later epoch is refused, no wrap.
    let first = LbftTx::sign(&c, 1, b"once".to_vec(), 0, u64::MAX);
    assert!(matches!(p.receive(first.clone()), Outcome::Stored { .. }));
    // The same request for epoch 2 with the same delivery number.
    let again = LbftTx::sign(&c, 2, b"once".to_vec(), 0, 3);
    p.on_block(1, Hash32([1; 32]), &[Arc::new(first)]);
    assert_eq!(p.delivered_count(&c.public()), 1);
    p.on_block(2, Hash32([2; 32]), &[Arc::new(again)]);
    assert_eq!(p.delivered_count(&c.public()), 1, "the same delivery number advanced the client twice");
    let next = LbftTx::sign(&c, 3, b"next".to_vec(), 1, 4);
    let out = p.receive(next);
    assert!(matches!(out, Outcome::Rejected(Rejection::Invalid(Invalid::BeforeFutureEpoch { .. }))), "{out:?}");
}
