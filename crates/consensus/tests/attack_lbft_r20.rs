//! Attack round 20 on the leaderless BFT (`consensus::lbft`) after batch
//! certificates became Ed25519 multi-signatures (`NodeCrypto`: exactly
//! `2f + 1` signed echoes, signers ascending).
//!
//! Finding (ignored test): the certificate threshold is `2f + 1` with
//! `f = ⌊(n − 1) / 3⌋` whatever `n` is, and nothing refuses an `n` other
//! than `3f + 1` (not `Config`, not `NodeCrypto::try_new`, not the node,
//! not `gridledger testnet --consensus lbft --validators N`). With `n = 5`
//! (`f = 1`, certificates of 3) two certificates of one slot intersect in
//! a single replica, which may be the Byzantine proposer itself: it
//! certifies batch A with replicas 1 and 2 and batch B with replicas 3 and
//! 4, the agreement accepts its slot (every correct replica holds a
//! certificate), and replicas 1, 2 deliver A while 3, 4 deliver B
//! (`five_replicas_one_byzantine_proposer_forks_the_delivered_sequence`).
//! PBFT sizes its quorum for any `n` (`⌈(n + f + 1) / 2⌉`); LBFT does not.
//!
//! Held up (passing tests): the same equivocating proposer with `n = 4`
//! gets one certificate only and the correct replicas deliver the same
//! decision; a certificate of the right signers over one batch does not
//! verify for another epoch, proposer, digest or instance (chain); a
//! coin share passed as an echo, an echo as a coin share, and a
//! certificate padded by a repeated or extra signer are refused; a `Cert`
//! whose echo list claims `u32::MAX` entries decodes to an error without
//! allocating it.
//!
//! Run them with `cargo test -p gridledger-consensus --test attack_lbft_r20`
//! (`-- --ignored` for the finding).

use std::collections::{BTreeMap, VecDeque};

use gridledger_consensus::lbft::{
    echo_statement, Batch, Config, Durable, KeyUse, Message, MultiSig, NodeCrypto, NodeShare, NodeSig, Replica, Target,
    ThresholdCrypto,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::Hash32;
use rand::SeedableRng;

type Msg = Message<NodeShare, NodeSig>;
/// Each correct replica's epoch-0 decision, if it delivered epoch 0.
type Decisions = BTreeMap<u32, Option<Vec<(u32, Hash32)>>>;

const INSTANCE: Hash32 = Hash32([0x20; 32]);

fn deal(n: usize, seed: u64) -> Vec<NodeCrypto> {
    NodeCrypto::deal(n, &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed)).expect("dealt")
}

fn batch(tag: u8) -> Batch {
    Batch::new(vec![vec![tag; 16]])
}

/// Replica 0 of `n` is Byzantine and equivocates in epoch 0: batch A to
/// replicas `1..=n/2`, batch B to the others; it echoes both itself,
/// combines a certificate for each batch from the echoes it gets back (if
/// it can) and sends each side its own batch's certificate. Every other
/// message among the correct replicas is delivered (FIFO) until none is
/// left. Returns each correct replica's epoch-0 decision (`None` if it
/// did not deliver epoch 0) and how many certificates the adversary made.
fn equivocation_run(n: usize) -> (Decisions, usize) {
    let cs = deal(n, 20 + n as u64);
    let mut replicas: BTreeMap<u32, Replica<NodeCrypto>> = (1..n as u32)
        .map(|i| {
            let r = Replica::new(Config::new(n, i, INSTANCE), cs[i as usize].clone(), Durable::default());
            (i, r)
        })
        .collect();
    let side_a = |i: u32| i as usize <= n / 2;
    let (a, b) = (batch(0xa0), batch(0xb0));
    let (da, db) = (a.digest(&INSTANCE, 0, 0), b.digest(&INSTANCE, 0, 0));
    let (sa, sb) = (echo_statement(&INSTANCE, 0, 0, &da), echo_statement(&INSTANCE, 0, 0, &db));
    let mut echoes_a = vec![(0u32, cs[0].sign_share(KeyUse::Cert, &sa))];
    let mut echoes_b = vec![(0u32, cs[0].sign_share(KeyUse::Cert, &sb))];

    let mut queue: VecDeque<(u32, u32, Msg)> = VecDeque::new();
    let mut decisions: Decisions = replicas.keys().map(|&i| (i, None)).collect();
    let push = |queue: &mut VecDeque<(u32, u32, Msg)>, from: u32, msgs: Vec<(Target, Msg)>| {
        for (to, m) in msgs {
            match to {
                Target::One(j) => queue.push_back((from, j, m)),
                Target::All => {
                    for j in 0..n as u32 {
                        if j != from {
                            queue.push_back((from, j, m.clone()));
                        }
                    }
                }
            }
        }
    };
    // Start every correct replica and let it propose its own batch.
    for (&i, r) in replicas.iter_mut() {
        let s = r.start();
        push(&mut queue, i, s.messages);
        let s = r.propose(0, vec![vec![i as u8; 16]]);
        push(&mut queue, i, s.messages);
    }
    // The equivocating proposal.
    for j in 1..n as u32 {
        let m = Msg::Val { epoch: 0, batch: if side_a(j) { a.clone() } else { b.clone() } };
        queue.push_back((0, j, m));
    }
    let mut certs_made = 0;
    let mut sent_a = false;
    let mut sent_b = false;
    while let Some((from, to, m)) = queue.pop_front() {
        if to == 0 {
            // The adversary collects the echoes of its two batches.
            if let Msg::Echo { epoch: 0, proposer: 0, digest, share } = m {
                if digest == da {
                    echoes_a.push((from, share));
                } else if digest == db {
                    echoes_b.push((from, share));
                }
            }
            for (side, echoes, stmt, digest, sent) in
                [(true, &echoes_a, &sa, da, &mut sent_a), (false, &echoes_b, &sb, db, &mut sent_b)]
            {
                if *sent {
                    continue;
                }
                if let Some(sig) = cs[0].combine(KeyUse::Cert, stmt, echoes) {
                    if cs[0].verify(KeyUse::Cert, stmt, &sig) {
                        *sent = true;
                        certs_made += 1;
                        for j in (1..n as u32).filter(|&j| side_a(j) == side) {
                            queue.push_back((0, j, Msg::Cert { epoch: 0, proposer: 0, digest, sig: sig.clone() }));
                        }
                    }
                }
            }
            continue;
        }
        let Some(r) = replicas.get_mut(&to) else { continue };
        let s = r.handle_message(from, m);
        for d in &s.delivered {
            if d.epoch == 0 {
                decisions.insert(to, Some(d.decision.clone()));
            }
        }
        push(&mut queue, to, s.messages);
    }
    (decisions, certs_made)
}

#[test]
fn five_replicas_one_byzantine_proposer_forks_the_delivered_sequence() {
    let (decisions, certs) = equivocation_run(5);
    let delivered: Vec<&Vec<(u32, Hash32)>> = decisions.values().flatten().collect();
    assert!(!delivered.is_empty(), "some correct replica delivered epoch 0: {decisions:?}");
    // Which batch of proposer 0 each correct replica delivered, if any.
    let slot0: BTreeMap<u32, Option<Hash32>> = decisions
        .iter()
        .map(|(i, d)| (*i, d.as_ref().and_then(|d| d.iter().find(|(p, _)| *p == 0).map(|(_, h)| *h))))
        .collect();
    assert!(
        certs <= 1 && delivered.windows(2).all(|w| w[0] == w[1]),
        "one Byzantine replica of 5 (f = 1) made {certs} certificates for its epoch-0 slot; proposer 0's batch \
         as each correct replica delivered it: {slot0:?}"
    );
}

#[test]
fn four_replicas_the_same_equivocation_gets_one_certificate_and_one_decision() {
    let (decisions, certs) = equivocation_run(4);
    assert_eq!(certs, 1, "2f + 1 = 3 of 4: only side A (replicas 1, 2 and the proposer) certifies");
    let delivered: Vec<&Vec<(u32, Hash32)>> = decisions.values().flatten().collect();
    assert_eq!(delivered.len(), 3, "every correct replica delivered epoch 0: {decisions:?}");
    assert!(delivered.windows(2).all(|w| w[0] == w[1]), "{decisions:?}");
}

fn cert(cs: &[NodeCrypto], signers: &[u32], stmt: &[u8]) -> MultiSig {
    let echoes = signers
        .iter()
        .map(|&i| match cs[i as usize].sign_share(KeyUse::Cert, stmt) {
            NodeShare::Echo(s) => (i, s),
            NodeShare::Coin(_) => unreachable!("a Cert share is an echo"),
        })
        .collect();
    MultiSig { echoes }
}

#[test]
fn a_certificate_binds_epoch_proposer_digest_and_instance() {
    let cs = deal(4, 1);
    let d = Hash32([3; 32]);
    let stmt = echo_statement(&INSTANCE, 5, 2, &d);
    let sig = NodeSig::Cert(cert(&cs, &[0, 1, 3], &stmt));
    assert!(cs[2].verify(KeyUse::Cert, &stmt, &sig));
    for other in [
        echo_statement(&INSTANCE, 6, 2, &d),
        echo_statement(&INSTANCE, 5, 1, &d),
        echo_statement(&INSTANCE, 5, 2, &Hash32([4; 32])),
        echo_statement(&Hash32([0x21; 32]), 5, 2, &d),
    ] {
        assert!(!cs[2].verify(KeyUse::Cert, &other, &sig));
    }
}

#[test]
fn wrong_kind_shares_and_padded_certificates_are_refused() {
    let cs = deal(4, 2);
    let stmt = echo_statement(&INSTANCE, 0, 0, &Hash32([1; 32]));
    // A coin share as an echo, an echo as a coin share.
    let coin = cs[1].sign_share(KeyUse::Coin, &stmt);
    assert!(!cs[0].verify_share(KeyUse::Cert, 1, &stmt, &coin));
    let echo = cs[1].sign_share(KeyUse::Cert, &stmt);
    assert!(!cs[0].verify_share(KeyUse::Coin, 1, &stmt, &echo));
    // Two valid echoes and a coin share do not combine into a certificate.
    let shares =
        vec![(0, cs[0].sign_share(KeyUse::Cert, &stmt)), (1, echo.clone()), (2, cs[2].sign_share(KeyUse::Coin, &stmt))];
    assert_eq!(cs[3].combine(KeyUse::Cert, &stmt, &shares), None);
    // Padded: a fourth echo, or one signer twice.
    let mut m = cert(&cs, &[0, 1, 2, 3], &stmt);
    assert!(!cs[0].verify(KeyUse::Cert, &stmt, &NodeSig::Cert(m.clone())));
    m.echoes.truncate(3);
    assert!(cs[0].verify(KeyUse::Cert, &stmt, &NodeSig::Cert(m.clone())));
    m.echoes[2] = m.echoes[1];
    assert!(!cs[0].verify(KeyUse::Cert, &stmt, &NodeSig::Cert(m)));
}

#[test]
fn a_certificate_claiming_u32_max_echoes_is_a_decode_error() {
    let cs = deal(4, 3);
    let stmt = echo_statement(&INSTANCE, 0, 0, &Hash32([1; 32]));
    let m =
        Msg::Cert { epoch: 0, proposer: 0, digest: Hash32([1; 32]), sig: NodeSig::Cert(cert(&cs, &[0, 1, 2], &stmt)) };
    let mut bytes = encode(&m);
    // The echo count sits right after the message tag, epoch, proposer,
    // digest and the signature's tag: 1 + 8 + 4 + 32 + 1 bytes in.
    let at = 1 + 8 + 4 + 32 + 1;
    assert_eq!(&bytes[at..at + 4], &3u32.to_le_bytes());
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode::<Msg>(&bytes, 1 << 20).is_err());
}
