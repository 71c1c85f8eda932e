//! Attack round 17 on the leaderless BFT's transaction management
//! (`consensus::lbft::txm`), after the round-16 fixes: TBG batches the
//! groups due at skipped local epochs at its next batch, cut at B with the
//! rest carried; π^τ deletes bucketed transactions whose delivery number a
//! delivery used and executes one transaction per `(client, DN_c)`.
//!
//! Held up (passing tests):
//! - TBG under arbitrary skipping of local epochs (catch-ups), small B
//!   (carries), deliveries of stored and carried items: no item is batched
//!   twice, none is lost (each stored one is batched, delivered, or still
//!   held), the stored count matches
//!   (`tbg_catch_ups_neither_batch_twice_nor_lose`);
//! - π^τ replicas of which some skip proposing for runs of epochs (and so
//!   carry) execute the same transactions as those that propose every
//!   epoch (`apply_block_agrees_between_lagging_and_live_replicas`);
//! - a client's re-sent copy carried over after a catch-up is deleted from
//!   the carry when another replica's batch delivers its first copy, and
//!   never batched (`a_carried_transaction_whose_number_was_used_is_deleted`).
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r17`.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use gridledger_consensus::lbft::txm::{
    BatchPolicy, BatchSource, LbftTx, Outcome, PiTau, PiTauConfig, Placement, TbgBatcher, TbgConfig, Theta,
};
use gridledger_core::ed25519::EdKeyPair;
use gridledger_core::Hash32;

fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut s = seed | 1;
    move |m| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s % m
    }
}

#[test]
fn tbg_catch_ups_neither_batch_twice_nor_lose() {
    for seed in 1..200u64 {
        let mut rng = xorshift(seed);
        let cfg = TbgConfig {
            tau: 1 + rng(5) as u32,
            groups: 1,
            kappa: 1 + rng(2) as u32,
            batch: 1 + rng(6) as usize,
            max_stored: 10_000,
        };
        let cfg = TbgConfig { groups: 1 + rng(u64::from(cfg.tau)) as u32, ..cfg };
        let mut b: TbgBatcher<u64> = TbgBatcher::new(cfg).unwrap();
        let mut stored: BTreeSet<u64> = BTreeSet::new();
        let mut batched: HashSet<u64> = HashSet::new();
        let mut delivered: HashSet<u64> = HashSet::new();
        let mut next_id = 0u64;
        let mut e = 0u64;
        for _ in 0..60 {
            // Stores for client epochs around the current local epoch.
            for _ in 0..rng(8) {
                let at = Placement { epoch: e + rng(3), slot: rng(u64::from(cfg.tau)) as u32 };
                next_id += 1;
                if b.store(at, next_id).is_ok() {
                    stored.insert(next_id);
                }
            }
            // Some held item delivered by another replica's batch.
            if rng(3) == 0 {
                let held: Vec<u64> = stored.iter().copied().filter(|k| b.holds(k)).collect();
                if !held.is_empty() {
                    let k = held[rng(held.len() as u64) as usize];
                    assert!(b.delivered(&k), "seed {seed}: a held item is delivered");
                    delivered.insert(k);
                }
            }
            // The next batch, often after skipped epochs.
            e += 1 + if rng(3) == 0 { rng(6) } else { 0 };
            for k in b.next_batch(e) {
                assert!(stored.contains(&k), "seed {seed}: batched an item never stored");
                assert!(!delivered.contains(&k), "seed {seed}: batched {k} after its delivery");
                assert!(batched.insert(k), "seed {seed}: {k} batched twice");
            }
            b.end_epoch(e);
            let held = stored.iter().filter(|k| b.holds(k)).count();
            assert_eq!(b.stored(), held, "seed {seed}: the stored count is what is held");
        }
        // Drain: everything still held is batched within the window.
        for _ in 0..200 {
            e += 1;
            for k in b.next_batch(e) {
                assert!(batched.insert(k), "seed {seed}: {k} batched twice");
            }
            b.end_epoch(e);
        }
        for k in &stored {
            assert!(
                batched.contains(k) || delivered.contains(k),
                "seed {seed} ({cfg:?}): stored item {k} was neither batched nor delivered"
            );
        }
        assert_eq!(b.stored(), 0, "seed {seed}");
    }
}

const N: u32 = 4;
const GENESIS: Hash32 = Hash32([9; 32]);

fn block_hash(e: u64) -> Hash32 {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&e.to_le_bytes());
    h[31] = 0x77;
    Hash32(h)
}

#[test]
fn apply_block_agrees_between_lagging_and_live_replicas() {
    let tbg = TbgConfig { tau: 3, groups: 3, kappa: 1, batch: 3, max_stored: 1_000 };
    let mut reps: Vec<PiTau> = (0..N)
        .map(|me| {
            PiTau::new(PiTauConfig { replicas: N, me, theta: Theta::ALWAYS, genesis: GENESIS, max_pending: 64, tbg })
                .unwrap()
        })
        .collect();
    // A second copy of replica 3 that lags (proposes only every 4th epoch).
    let mut lagging =
        PiTau::new(PiTauConfig { replicas: N, me: 3, theta: Theta::ALWAYS, genesis: GENESIS, max_pending: 64, tbg })
            .unwrap();
    let clients: Vec<EdKeyPair> = (0..12).map(|i| EdKeyPair::from_seed(&format!("client-{i}"))).collect();
    let mut dn = vec![0u64; clients.len()];
    let mut rng = xorshift(17);
    for e in 1..=40u64 {
        // Clients send their next transaction (sometimes twice, for two
        // epochs, the same request) to every replica.
        for (c, key) in clients.iter().enumerate() {
            if rng(2) == 0 {
                continue;
            }
            let req = format!("req {c}/{}", dn[c]).into_bytes();
            let mut txs = vec![LbftTx::sign(key, e, req.clone(), dn[c], e + 1)];
            if rng(3) == 0 {
                txs.push(LbftTx::sign(key, e + 1, req, dn[c], e + 2));
            }
            for tx in txs {
                for r in reps.iter_mut() {
                    let _ = r.receive(tx.clone());
                }
                let _ = lagging.receive(tx);
            }
        }
        let mut seen = HashSet::new();
        let mut block: Vec<Arc<LbftTx>> = Vec::new();
        for r in reps.iter_mut() {
            for tx in r.next_batch(e) {
                if seen.insert(tx.id()) {
                    block.push(tx);
                }
            }
        }
        if e % 4 == 0 {
            // Its batch is built but not part of the agreement.
            let _ = lagging.next_batch(e);
        }
        let verdicts: Vec<_> = reps.iter_mut().map(|r| r.apply_block(e, block_hash(e), &block).executed).collect();
        let late = lagging.apply_block(e, block_hash(e), &block).executed;
        for v in &verdicts {
            assert_eq!(v, &verdicts[0], "epoch {e}: replicas execute the same transactions");
        }
        assert_eq!(late, verdicts[0], "epoch {e}: the lagging replica executes the same transactions");
        for (tx, v) in block.iter().zip(&verdicts[0]) {
            if v.is_ok() {
                let c = clients.iter().position(|k| k.public() == tx.client).unwrap();
                assert_eq!(tx.delivery_number, dn[c]);
                dn[c] += 1;
            }
        }
    }
    assert!(dn.iter().sum::<u64>() > 0, "some transactions executed: {dn:?}");
}

/// A transaction carried over (no room in B after a catch-up) whose
/// delivery number a delivery then used is deleted from the carry (line
/// 22), not batched afterwards.
#[test]
fn a_carried_transaction_whose_number_was_used_is_deleted() {
    let tbg = TbgConfig { tau: 4, groups: 1, kappa: 2, batch: 2, max_stored: 100 };
    let mut p =
        PiTau::new(PiTauConfig { replicas: N, me: 0, theta: Theta::ALWAYS, genesis: GENESIS, max_pending: 64, tbg })
            .unwrap();
    let client = EdKeyPair::from_seed("resending-client");
    let other = EdKeyPair::from_seed("other-client");
    let first = LbftTx::sign(&client, 1, b"pay 1".to_vec(), 0, 2);
    let again = LbftTx::sign(&client, 2, b"pay 1".to_vec(), 0, 3);
    let filler = LbftTx::sign(&other, 1, b"fill".to_vec(), 0, 2);
    assert!(matches!(p.receive(filler.clone()), Outcome::Stored { .. }));
    assert!(matches!(p.receive(first.clone()), Outcome::Stored { .. }));
    let o = p.receive(again.clone());
    assert!(matches!(o, Outcome::Pending(_)), "{o:?} at local epoch {}", p.local_epoch());
    // Local epoch 2: the re-sent copy is stored too.
    let out = p.on_block(1, block_hash(1), &[]);
    assert!(out.iter().any(|(id, o)| *id == again.id() && matches!(o, Outcome::Stored { .. })), "{out:?}");
    // Local epoch 3 is skipped: the batch of 4 catches up (the groups due
    // at 3 and 4), B = 2: the re-sent copy, due last, is carried.
    p.on_block(2, block_hash(2), &[]);
    p.on_block(3, block_hash(3), &[]);
    let batch: Vec<Hash32> = p.next_batch(4).iter().map(|t| t.id()).collect();
    assert_eq!(batch.len(), 2);
    assert!(batch.contains(&filler.id()) && batch.contains(&first.id()), "the groups due at 2 first");
    assert!(p.holds(&again.id()), "the re-sent copy is carried");
    // Another replica's batch delivers the first copy: the re-sent one,
    // if still held, is deleted.
    let first = Arc::new(first);
    let applied = p.apply_block(4, block_hash(4), std::slice::from_ref(&first));
    assert_eq!(applied.executed, vec![Ok(())]);
    assert!(!p.holds(&again.id()), "the re-sent copy is deleted");
    let mut later: Vec<Hash32> = Vec::new();
    for e in 5..16 {
        later.extend(p.next_batch(e).iter().map(|t| t.id()));
        p.on_block(e, block_hash(e), &[]);
    }
    assert!(!later.contains(&again.id()), "the re-sent copy is never batched");
    assert!(!later.contains(&first.id()), "the delivered copy is never batched again");
}
