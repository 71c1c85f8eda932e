//! Mutation sensitivity of the LBFT simulator: each bug planted in the
//! replica behind the `mutants` feature must be reported as a violation
//! within a bounded number of seeds, while the same scenarios pass
//! without it (the control).
//!
//! Run with `cargo test -p gridledger-consensus --features mutants --test lbft_mutants`.

mod common;

use gridledger_consensus::lbft::sim::{check, run, scenario, scenario_of_size, Behaviour, Scenario, SchemeKind};
use gridledger_consensus::lbft::Mutation;

/// Seeds tried per planted bug before the check fails.
const BUDGET: u64 = 200;

/// A scenario aimed at the kind of bug `m` is.
fn aimed(m: Mutation, seed: u64) -> Scenario {
    // Quorums of 2f + 1 and n − f differ only where n ≠ 3f + 1.
    let mut s = if m == Mutation::ThirdsQuorum { scenario_of_size(seed, 5) } else { scenario(seed) };
    let behaviours = match m {
        Mutation::WrongQuorum => vec![Behaviour::FlipVotes, Behaviour::LieInSync],
        Mutation::SkipCertificateCheck => vec![Behaviour::Equivocate],
        Mutation::CoinNotThreshold => vec![Behaviour::FlipVotes],
        Mutation::StatementsNotPersisted | Mutation::SentBeforeSync => {
            vec![Behaviour::FlipVotes, Behaviour::Equivocate]
        }
        Mutation::AcceptLateInput => vec![Behaviour::FlipVotes],
        Mutation::SyncCertificatesUnchecked => vec![Behaviour::ForgeSyncCertificates],
        Mutation::LosePersistedState
        | Mutation::PipelineOutOfOrder
        | Mutation::CertFailuresForgotten
        | Mutation::EchoShareResigned
        | Mutation::LateCopyAdmitted
        | Mutation::ValidUnbounded
        | Mutation::UsedNumberKept => Vec::new(),
        Mutation::ThirdsQuorum => vec![Behaviour::Equivocate, Behaviour::CertifyBoth],
    };
    if m == Mutation::StatementsNotPersisted {
        // One Byzantine replica that flips votes and equivocates (agreements
        // take several rounds, proposals differ between peers) and one
        // correct replica that crashes often and comes back within a few
        // ticks, inside epochs it echoed and voted in: taking part again
        // there, it says something other than before.
        let byz = (seed % s.n as u64) as u32;
        s.byzantine.clear();
        s.byzantine.insert(byz, behaviours.clone());
        let node = (byz + 1 + (seed / s.n as u64) as u32 % (s.n as u32 - 1)) % s.n as u32;
        s.crashed.clear();
        s.net.crashes.clear();
        s.crashed.insert(node);
        for k in 0..8 {
            let at = 150 + 250 * k;
            s.net.crashes.push(gridledger_sim::Crash { node, at, restart_at: Some(at + 3 + seed % 20) });
        }
    } else if m == Mutation::SentBeforeSync {
        // One Byzantine replica that flips votes and equivocates, and one
        // correct replica that dies in the sync window of many of its steps
        // with writes (after the messages that commit it to nothing new
        // left, before the step's writes were durable) and comes back
        // within a few ticks; no timed crash. With the bug its echoes and
        // votes of that step left too, unrecorded: taking part again, it
        // says something other than before.
        let byz = (seed % s.n as u64) as u32;
        s.byzantine.clear();
        s.byzantine.insert(byz, behaviours.clone());
        let node = (byz + 1 + (seed / s.n as u64) as u32 % (s.n as u32 - 1)) % s.n as u32;
        s.crashed.clear();
        s.net.crashes.clear();
        s.crashed.insert(node);
        s.sync_deaths.clear();
        s.sync_deaths.insert(node, (0..12).map(|k| 3 + 4 * k + seed % 3).collect());
        s.sync_restart_after = 3 + seed % 20;
    } else if m == Mutation::SyncCertificatesUnchecked {
        // One Byzantine replica that answers sync requests with the true
        // epochs under rotated certificates, and one correct replica that
        // is down while the others deliver and then catches up through
        // sync records (the Byzantine one's among them).
        let byz = (seed % s.n as u64) as u32;
        s.byzantine.clear();
        s.byzantine.insert(byz, behaviours.clone());
        let node = (byz + 1 + (seed / s.n as u64) as u32 % (s.n as u32 - 1)) % s.n as u32;
        s.crashed.clear();
        s.net.crashes.clear();
        s.crashed.insert(node);
        s.net.crashes.push(gridledger_sim::Crash { node, at: 20, restart_at: Some(1_500 + seed % 500) });
        s.stop_epoch = s.stop_epoch.max(6);
    } else if m == Mutation::LosePersistedState {
        // Crash-restarts of correct replicas, nobody Byzantine.
        s.byzantine.clear();
        if s.crashed.is_empty() {
            let node = (seed % s.n as u64) as u32;
            s.crashed.insert(node);
            s.net.crashes.push(gridledger_sim::Crash { node, at: 400, restart_at: Some(900) });
        }
    } else {
        s.net.crashes.clear();
        s.crashed.clear();
        if s.byzantine.is_empty() {
            s.byzantine.insert((seed % s.n as u64) as u32, Vec::new());
        }
        for b in s.byzantine.values_mut() {
            *b = behaviours.clone();
        }
    }
    if m == Mutation::CoinNotThreshold {
        // The planted bug is in the threshold coin, which a fixed schedule
        // flips only from round 2 on: every round flips it here.
        s.fixed_coins = false;
    }
    if m == Mutation::PipelineOutOfOrder {
        // Overlapped epochs, with enough epochs and transactions that a
        // later epoch sometimes finishes before the current one.
        s.pipeline = 2;
        s.stop_epoch = s.stop_epoch.max(6);
    }
    s.expect_liveness = s.byzantine.len() + s.crashed.len() <= (s.n - 1) / 3;
    s.end = if s.expect_liveness { 60_000 } else { 5_000 };
    s
}

fn first_caught(m: Mutation) -> Option<(u64, String)> {
    (0..BUDGET).find_map(|seed| {
        let s = aimed(m, seed);
        let r = run(&s, SchemeKind::Sim, Some(m));
        check(&s, &r).err().map(|e| (seed, e))
    })
}

fn control(m: Mutation, upto: u64) {
    for seed in 0..=upto {
        let s = aimed(m, seed);
        let r = run(&s, SchemeKind::Sim, None);
        if let Err(e) = check(&s, &r) {
            panic!("control run of {m:?} scenario seed {seed} fails without the bug: {e}");
        }
    }
}

fn assert_caught(m: Mutation) {
    match first_caught(m) {
        Some((seed, why)) => {
            eprintln!("{m:?} caught at seed {seed}: {why}");
            control(m, seed);
        }
        None => panic!("planted bug {m:?} survived {BUDGET} seeds"),
    }
}

/// [`Mutation::ThirdsQuorum`] in random runs: five replicas, one of them
/// Byzantine that certifies both of its batches where the scheme lets it.
#[test]
fn thirds_quorum_is_caught_in_random_runs() {
    assert_caught(Mutation::ThirdsQuorum);
}

#[test]
fn wrong_quorum_is_caught() {
    assert_caught(Mutation::WrongQuorum);
}

#[test]
fn skipped_certificate_check_is_caught() {
    assert_caught(Mutation::SkipCertificateCheck);
}

#[test]
fn lost_persisted_state_is_caught() {
    assert_caught(Mutation::LosePersistedState);
}

#[test]
fn coin_not_threshold_is_caught() {
    assert_caught(Mutation::CoinNotThreshold);
}

#[test]
fn statements_not_persisted_is_caught() {
    assert_caught(Mutation::StatementsNotPersisted);
}

/// The bench replica's early send (certificates, coin shares, fetches
/// before the fsync in flight) with every message treated as free: the
/// simulator's deaths in the sync window catch a vote sent before its
/// record is durable.
#[test]
fn sent_before_sync_is_caught() {
    assert_caught(Mutation::SentBeforeSync);
}

#[test]
fn unchecked_sync_certificates_are_caught() {
    assert_caught(Mutation::SyncCertificatesUnchecked);
}

#[test]
fn overlapped_epoch_delivered_out_of_order_is_caught() {
    assert_caught(Mutation::PipelineOutOfOrder);
}

// ---- a late agreement input: a scripted schedule ---------------------------------

/// [`Mutation::AcceptLateInput`] shows in random runs only as the late
/// `BVal` the safety record reports ([`accepted_late_input_is_caught`]);
/// the fork it leads to needs a schedule (the agreement leaves round 0 on
/// the others' votes before its input arrives, and a Byzantine replica
/// backs the late value). This is attack round 2's [1c]
/// (`tests/common/late_input.rs`: three correct replicas and a Byzantine
/// proposer 3 whose messages the test writes, every message delivered by
/// hand). The simulator's safety record (`SaidLog`, fed what each replica
/// sends and receives) must report the late `BVal`, and the fork shows in
/// the delivered epoch; without the bug neither happens and, once the
/// network is fair, all three deliver epoch 0 alike.
mod late_input_schedule {
    use super::common::late_input::schedule;
    use gridledger_consensus::lbft::sim::Slot;
    use gridledger_consensus::lbft::Mutation;

    #[test]
    fn accepted_late_input_forks_the_scripted_schedule() {
        let lab = schedule(|c| c.mutation = Some(Mutation::AcceptLateInput));
        let late: Vec<&(u32, Slot)> =
            lab.said.twice.iter().filter(|(i, s)| *i == 1 && matches!(s, Slot::BVal { round: 1, .. })).collect();
        assert!(!late.is_empty(), "the safety record missed replica 1's late BVal: {:?}", lab.said.twice);
        let d = lab.epoch0();
        let made: Vec<&Vec<u32>> = d.iter().flatten().collect();
        assert!(made.windows(2).any(|w| w[0] != w[1]), "the planted bug forks epoch 0 here: {d:?}");
        // The control: the same schedule without the bug.
        let lab = schedule(|_| {});
        assert!(lab.said.twice.is_empty(), "control: {:?}", lab.said.twice);
        let d = lab.epoch0();
        assert!(d.iter().all(|x| x.is_some() && *x == d[0]), "control: {d:?}");
    }
}

#[test]
fn accepted_late_input_is_caught() {
    // Random runs with a vote-flipping Byzantine replica: an agreement now
    // and then leaves round 0 before its input arrives, and the safety
    // record reports the late BVal (about 3 seeds in 100).
    assert_caught(Mutation::AcceptLateInput);
}

// ---- forgotten certificate failures: a counting check -----------------------------

/// [`Mutation::CertFailuresForgotten`] changes no delivered sequence, only
/// what a stream of forged certificates costs: the catching check counts
/// the certificate verifications a replica makes for 200 copies of one
/// forged `Cert` from one sender (attack round 4's [2]). With the bug every
/// copy is checked; without it (the control) one is.
mod forgotten_cert_failures {
    use gridledger_consensus::lbft::crypto::SimSig;
    use gridledger_consensus::lbft::{Config, Durable, Message, Mutation, Replica, SimCrypto};
    use gridledger_core::Hash32;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::common::lbft::Counting;

    /// Certificate checks for 200 copies of one forged `Cert`.
    fn checks(mutation: Option<Mutation>) -> usize {
        let verified = Arc::new(AtomicUsize::new(0));
        let mut cfg = Config::new(4, 3, Hash32([0x4d; 32]));
        cfg.mutation = mutation;
        let c = Counting { inner: SimCrypto::new(4, 4, 3), verified: verified.clone() };
        let mut r = Replica::new(cfg, c, Durable::default());
        let _ = r.start();
        let before = verified.load(Ordering::Relaxed);
        for _ in 0..200 {
            let sig = SimSig { tag: Hash32([0xee; 32]) };
            let _ = r.handle_message(0, Message::Cert { epoch: 1, proposer: 2, digest: Hash32([0x42; 32]), sig });
        }
        verified.load(Ordering::Relaxed) - before
    }

    #[test]
    fn forgotten_certificate_failures_are_caught() {
        assert_eq!(checks(None), 1, "control: one check for the forged certificate");
        assert_eq!(checks(Some(Mutation::CertFailuresForgotten)), 200, "the planted bug checks every copy");
    }
}

// ---- re-signed echo shares: a counting check -------------------------------------

/// [`Mutation::EchoShareResigned`] changes no delivered sequence, only what
/// a replayed `Val` costs: the catching check counts the share signatures
/// a replica makes for 200 copies of one `Val` from one proposer (attack
/// round 5's [2]). With the bug every copy is signed afresh; without it
/// (the control) the echo share is signed once and re-sent from memory —
/// each copy is still answered with the same echo.
mod resigned_echo_shares {
    use gridledger_consensus::lbft::crypto::SimSig;
    use gridledger_consensus::lbft::{
        Batch, Config, Durable, KeyUse, Message, Mutation, Replica, SimCrypto, Target, ThresholdCrypto,
    };
    use gridledger_core::Hash32;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// [`SimCrypto`] counting the shares it signs.
    #[derive(Clone, Debug)]
    struct Signing {
        inner: SimCrypto,
        signed: Arc<AtomicUsize>,
    }

    impl ThresholdCrypto for Signing {
        type Share = <SimCrypto as ThresholdCrypto>::Share;
        type Sig = SimSig;
        fn sign_share(&self, key: KeyUse, msg: &[u8]) -> Self::Share {
            self.signed.fetch_add(1, Ordering::Relaxed);
            self.inner.sign_share(key, msg)
        }
        fn verify_share(&self, key: KeyUse, signer: u32, msg: &[u8], share: &Self::Share) -> bool {
            self.inner.verify_share(key, signer, msg, share)
        }
        fn combine(&self, key: KeyUse, msg: &[u8], shares: &[(u32, Self::Share)]) -> Option<SimSig> {
            self.inner.combine(key, msg, shares)
        }
        fn verify(&self, key: KeyUse, msg: &[u8], sig: &SimSig) -> bool {
            self.inner.verify(key, msg, sig)
        }
        fn coin(&self, sig: &SimSig) -> u64 {
            self.inner.coin(sig)
        }
        fn threshold(&self, key: KeyUse) -> usize {
            self.inner.threshold(key)
        }
    }

    /// Share signatures and echoes sent back for 200 copies of one `Val`.
    fn signatures(mutation: Option<Mutation>) -> (usize, usize) {
        let signed = Arc::new(AtomicUsize::new(0));
        let mut cfg = Config::new(4, 3, Hash32([0x4e; 32]));
        cfg.mutation = mutation;
        let c = Signing { inner: SimCrypto::new(4, 4, 3), signed: signed.clone() };
        let mut r = Replica::new(cfg, c, Durable::default());
        let _ = r.start();
        let before = signed.load(Ordering::Relaxed);
        let val = Message::Val { epoch: 0, batch: Batch::new(vec![b"one tx".to_vec()]) };
        let mut echoes = 0;
        for _ in 0..200 {
            let s = r.handle_message(0, val.clone());
            echoes +=
                s.messages.iter().filter(|(to, m)| *to == Target::One(0) && matches!(m, Message::Echo { .. })).count();
        }
        (signed.load(Ordering::Relaxed) - before, echoes)
    }

    #[test]
    fn resigned_echo_shares_are_caught() {
        assert_eq!(signatures(None), (1, 200), "control: one signature, every copy echoed from memory");
        assert_eq!(signatures(Some(Mutation::EchoShareResigned)), (200, 200), "the planted bug signs every copy");
    }
}

/// [`Mutation::LateCopyAdmitted`] lives in the FIFO source, not in the
/// replica: a copy of a transaction that arrives after a delivery named it
/// is queued and proposed again (attack r12 [1] on the consensus crate);
/// the source as shipped refuses it while the delivery is in its window
/// and proposes only what was not delivered.
#[test]
fn late_copy_admitted_is_caught() {
    use gridledger_consensus::lbft::{tx_id, FifoPolicy, Refused};
    let proposed_again = |mutation: Option<Mutation>| {
        let x = b"X: pay 5 Wh".to_vec();
        let mut p = FifoPolicy::new(4, 16).with_dedup_window(3).with_mutation(mutation);
        assert_eq!(p.try_submit(x.clone()), Ok(()));
        assert_eq!(p.next_txs(0).to_vec(), vec![x.clone()]);
        p.delivered_ids(&[tx_id(&x)]);
        let late = p.try_submit(x.clone());
        assert!(p.try_submit(b"Y".to_vec()).is_ok());
        let later: Vec<Vec<u8>> = (1..4).flat_map(|e| p.next_txs(e).to_vec()).collect();
        (late, later.contains(&x))
    };
    assert_eq!(proposed_again(None), (Err(Refused::Delivered), false), "control: the late copy is refused");
    assert_eq!(
        proposed_again(Some(Mutation::LateCopyAdmitted)),
        (Ok(()), true),
        "the planted bug queues the late copy and proposes it again"
    );
}

/// [`Mutation::ValidUnbounded`] lives in π^τ, not in the replica: every
/// valid transaction of one key for one `(DN_c, e_c)` is stored and
/// batched (attack r15 [1] on the consensus crate); π^τ as shipped keeps
/// the first received and refuses the others with a typed reason.
#[test]
fn valid_unbounded_is_caught() {
    use common::lbft::pi_tau;
    use gridledger_consensus::lbft::txm::{
        array_function, nonce_value, BatchSource, LbftTx, Outcome, Rejection, Theta,
    };
    use gridledger_core::ed25519::EdKeyPair;
    use gridledger_core::Hash32;
    // A key with replica 0 of the fixture among its recipients for DN 0 in epoch 1.
    let key = (0..)
        .map(|i| EdKeyPair::from_seed(&format!("one-key-{i}")))
        .find(|k| array_function(&nonce_value(0, &k.public(), &Hash32([7; 32])), 10, 4).contains(&0))
        .expect("some key has replica 0 among its recipients");
    let flood = |mutation: Option<Mutation>| {
        let mut p = pi_tau(Theta::ALWAYS, 64).with_mutation(mutation);
        let outs: Vec<Outcome> =
            (0..20u32).map(|i| p.receive(LbftTx::sign(&key, 1, i.to_le_bytes().to_vec(), 0, 2))).collect();
        let stored = outs.iter().filter(|o| matches!(o, Outcome::Stored { .. })).count();
        let refused = outs.iter().filter(|o| matches!(o, Outcome::Rejected(Rejection::ClientHeld { .. }))).count();
        let batched = (1..=10).map(|e| p.next_batch(e).len()).sum::<usize>();
        (stored, refused, batched)
    };
    assert_eq!(flood(None), (1, 19, 1), "control: the first is kept, the other 19 refused");
    assert_eq!(flood(Some(Mutation::ValidUnbounded)), (20, 0, 20), "the planted bug stores and batches all 20");
}

/// [`Mutation::UsedNumberKept`] lives in π^τ: a valid transaction waiting
/// in its bucket is kept after a delivery used its delivery number (attack
/// r16 [1]). Four replicas each store a different transaction of one
/// client for one `(DN_c, e_c)` (each is one of its τ recipients, G = τ:
/// one group each); epochs are batched and every batch delivered to all.
/// π^τ as shipped batches the first copy only and deletes the other three
/// when it is delivered; the planted bug batches all four.
#[test]
fn used_number_kept_is_caught() {
    use gridledger_consensus::lbft::txm::{
        array_function, nonce_value, BatchSource, LbftTx, Outcome, PiTau, PiTauConfig, TbgConfig, Theta,
    };
    use gridledger_core::ed25519::EdKeyPair;
    use gridledger_core::Hash32;
    use std::sync::Arc;
    let genesis = Hash32([7; 32]);
    let key = EdKeyPair::from_seed("used-number-client");
    let to = array_function(&nonce_value(0, &key.public(), &genesis), 10, 4);
    let batched = |mutation: Option<Mutation>| {
        let tbg = TbgConfig { tau: 4, groups: 4, kappa: 2, batch: 100, max_stored: 1_000 };
        let mut reps: Vec<PiTau> = (0..10)
            .map(|me| {
                PiTau::new(PiTauConfig { replicas: 10, me, theta: Theta::ALWAYS, genesis, max_pending: 64, tbg })
                    .expect("valid configuration")
                    .with_mutation(mutation)
            })
            .collect();
        for (j, &r) in to.iter().enumerate() {
            let tx = LbftTx::sign(&key, 1, vec![j as u8], 0, 2);
            assert_eq!(reps[r as usize].receive(tx), Outcome::Stored { slot: j as u32 });
        }
        let mut count = 0;
        for e in 1..=20u64 {
            let batch: Vec<Arc<LbftTx>> = reps.iter_mut().flat_map(|r| r.next_batch(e)).collect();
            count += batch.len();
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&e.to_le_bytes());
            for r in reps.iter_mut() {
                r.on_block(e, Hash32(h), &batch);
            }
        }
        count
    };
    assert_eq!(batched(None), 1, "control: the first copy is batched, the others deleted once it is delivered");
    assert_eq!(batched(Some(Mutation::UsedNumberKept)), 4, "the planted bug batches every copy");
}

/// [`Mutation::ThirdsQuorum`] changes nothing for `n = 3f + 1` (the
/// random scenarios' sizes); it shows at `n = 5` (`f = 1`), where `2f + 1
/// = 3` echoes certify and two certificates of one slot meet in one
/// replica (attack r20 [1]). Replica 0 of 5 is Byzantine and equivocates
/// in epoch 0: batch A to replicas 1 and 2, batch B to 3 and 4; it echoes
/// both, combines a certificate for each from the echoes it gets back
/// (if the scheme lets it) and sends each side its own batch's
/// certificate; every other message is delivered (FIFO) until none is
/// left. As shipped (`n − f = 4` echoes) neither batch is certified and
/// the correct replicas deliver one decision; with the planted bug both
/// are, and they fork.
mod thirds_quorum {
    use std::collections::{BTreeMap, VecDeque};

    use gridledger_consensus::lbft::{
        echo_statement, Batch, Config, Durable, KeyUse, Message, Mutation, NodeCrypto, NodeShare, NodeSig, Replica,
        Target, ThresholdCrypto,
    };
    use gridledger_core::Hash32;
    use rand::SeedableRng;

    type Msg = Message<NodeShare, NodeSig>;
    /// Each correct replica's epoch-0 decision, if it delivered epoch 0.
    type Decisions = BTreeMap<u32, Option<Vec<(u32, Hash32)>>>;

    const N: usize = 5;
    const INSTANCE: Hash32 = Hash32([0x21; 32]);

    fn equivocation(mutation: Option<Mutation>) -> (Decisions, usize) {
        let cs: Vec<NodeCrypto> = NodeCrypto::deal(N, &mut rand_chacha::ChaCha20Rng::seed_from_u64(21))
            .expect("dealt")
            .into_iter()
            .map(|c| c.with_mutation(mutation))
            .collect();
        let mut replicas: BTreeMap<u32, Replica<NodeCrypto>> = (1..N as u32)
            .map(|i| {
                let mut cfg = Config::new(N, i, INSTANCE);
                cfg.mutation = mutation;
                (i, Replica::new(cfg, cs[i as usize].clone(), Durable::default()))
            })
            .collect();
        let side_a = |i: u32| i as usize <= N / 2;
        let (a, b) = (Batch::new(vec![vec![0xa0; 16]]), Batch::new(vec![vec![0xb0; 16]]));
        let (da, db) = (a.digest(&INSTANCE, 0, 0), b.digest(&INSTANCE, 0, 0));
        let (sa, sb) = (echo_statement(&INSTANCE, 0, 0, &da), echo_statement(&INSTANCE, 0, 0, &db));
        let mut echoes_a = vec![(0u32, cs[0].sign_share(KeyUse::Cert, &sa))];
        let mut echoes_b = vec![(0u32, cs[0].sign_share(KeyUse::Cert, &sb))];
        let mut queue: VecDeque<(u32, u32, Msg)> = VecDeque::new();
        let push = |queue: &mut VecDeque<(u32, u32, Msg)>, from: u32, msgs: Vec<(Target, Msg)>| {
            for (to, m) in msgs {
                match to {
                    Target::One(j) => queue.push_back((from, j, m)),
                    Target::All => {
                        queue.extend((0..N as u32).filter(|&j| j != from).map(|j| (from, j, m.clone())));
                    }
                }
            }
        };
        for (&i, r) in replicas.iter_mut() {
            let s = r.start();
            push(&mut queue, i, s.messages);
            let s = r.propose(0, vec![vec![i as u8; 16]]);
            push(&mut queue, i, s.messages);
        }
        for j in 1..N as u32 {
            queue.push_back((0, j, Msg::Val { epoch: 0, batch: if side_a(j) { a.clone() } else { b.clone() } }));
        }
        let mut decisions: Decisions = replicas.keys().map(|&i| (i, None)).collect();
        let mut certs = 0;
        let mut sent = [false, false];
        while let Some((from, to, m)) = queue.pop_front() {
            if to == 0 {
                if let Msg::Echo { epoch: 0, proposer: 0, digest, share } = m {
                    if digest == da {
                        echoes_a.push((from, share));
                    } else if digest == db {
                        echoes_b.push((from, share));
                    }
                }
                for (k, echoes, stmt, digest) in [(0, &echoes_a, &sa, da), (1, &echoes_b, &sb, db)] {
                    if sent[k] {
                        continue;
                    }
                    let Some(sig) = cs[0].combine(KeyUse::Cert, stmt, echoes) else { continue };
                    if cs[0].verify(KeyUse::Cert, stmt, &sig) {
                        sent[k] = true;
                        certs += 1;
                        for j in (1..N as u32).filter(|&j| side_a(j) == (k == 0)) {
                            queue.push_back((0, j, Msg::Cert { epoch: 0, proposer: 0, digest, sig: sig.clone() }));
                        }
                    }
                }
                continue;
            }
            let Some(r) = replicas.get_mut(&to) else { continue };
            let s = r.handle_message(from, m);
            for d in s.delivered.iter().filter(|d| d.epoch == 0) {
                decisions.insert(to, Some(d.decision.clone()));
            }
            push(&mut queue, to, s.messages);
        }
        (decisions, certs)
    }

    fn forked(d: &Decisions) -> bool {
        let delivered: Vec<&Vec<(u32, Hash32)>> = d.values().flatten().collect();
        delivered.windows(2).any(|w| w[0] != w[1])
    }

    #[test]
    fn thirds_quorum_is_caught() {
        let (control, certs) = equivocation(None);
        assert_eq!(certs, 0, "control: n − f = 4 echoes, neither side has them");
        assert!(control.values().all(Option::is_some), "control: every correct replica delivered epoch 0: {control:?}");
        assert!(!forked(&control), "control: one decision {control:?}");
        let (mutant, certs) = equivocation(Some(Mutation::ThirdsQuorum));
        assert_eq!(certs, 2, "the planted bug certifies both batches");
        assert!(forked(&mutant), "the planted bug forks the correct replicas: {mutant:?}");
    }
}
