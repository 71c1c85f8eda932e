//! Unit tests of the LBFT replica (every refusal with its fault, and
//! nothing changed by it) and the simulator sweeps.

use super::sim::{run_seed, SchemeKind};
use super::*;
use gridledger_core::Hash32;
use gridledger_sim::SeedPlan;
use rand::SeedableRng;
use std::collections::VecDeque;

const INST: Hash32 = Hash32([9; 32]);

/// A lossless FIFO network of replicas; batches come from `batches`
/// (epoch → per-replica txs, empty when absent).
struct Net<C: ThresholdCrypto> {
    replicas: Vec<Replica<C>>,
    disks: Vec<Durable<C::Sig>>,
    queue: VecDeque<(u32, u32, MessageOf<C>)>,
    delivered: Vec<Vec<Delivery>>,
    faults: Vec<(u32, Fault)>,
    batches: Box<dyn Fn(u64, u32) -> Vec<Tx>>,
    stop_epoch: u64,
    down: Vec<bool>,
    /// `(replica, epoch asked for, the replica's current epoch then)` for
    /// every batch a replica asked for.
    asked: Vec<(u32, u64, u64)>,
    /// Coin shares sent (agreement votes carrying one).
    coin_votes: usize,
    /// Each replica's non-empty writes, one per step.
    writes: Vec<Vec<Vec<PersistOp<C::Sig>>>>,
}

impl<C: ThresholdCrypto> Net<C> {
    fn new(cryptos: Vec<C>, batches: Box<dyn Fn(u64, u32) -> Vec<Tx>>, stop_epoch: u64) -> Self {
        let n = cryptos.len();
        let replicas = cryptos
            .into_iter()
            .enumerate()
            .map(|(i, c)| Replica::new(Config::new(n, i as u32, INST), c, Durable::default()))
            .collect();
        Self {
            replicas,
            disks: vec![Durable::default(); n],
            queue: VecDeque::new(),
            delivered: vec![Vec::new(); n],
            faults: Vec::new(),
            batches,
            stop_epoch,
            down: vec![false; n],
            asked: Vec::new(),
            coin_votes: 0,
            writes: vec![Vec::new(); n],
        }
    }

    /// Replicas proposing up to `pipeline` epochs ahead.
    fn with_pipeline(cryptos: Vec<C>, batches: Box<dyn Fn(u64, u32) -> Vec<Tx>>, stop: u64, pipeline: u64) -> Self {
        let n = cryptos.len();
        let mut net = Self::new(cryptos.clone(), batches, stop);
        net.replicas = cryptos
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut cfg = Config::new(n, i as u32, INST);
                cfg.pipeline = pipeline;
                Replica::new(cfg, c, Durable::default())
            })
            .collect();
        net
    }

    fn absorb(&mut self, i: u32, step: Step<C::Share, C::Sig>) {
        let mut pending = vec![step];
        while let Some(s) = pending.pop() {
            for op in &s.persist {
                self.disks[i as usize].apply(op);
            }
            if !s.persist.is_empty() {
                self.writes[i as usize].push(s.persist.clone());
            }
            self.delivered[i as usize].extend(s.delivered);
            self.faults.extend(s.faults.into_iter().map(|f| (i, f)));
            for (to, m) in s.messages {
                if matches!(m, Message::Aba { vote: AbaVote::Coin(_), .. }) {
                    self.coin_votes += 1;
                }
                match to {
                    Target::All => {
                        for j in 0..self.replicas.len() as u32 {
                            if j != i {
                                self.queue.push_back((i, j, m.clone()));
                            }
                        }
                    }
                    Target::One(j) => self.queue.push_back((i, j, m)),
                }
            }
            if let Some(e) = s.need_batch {
                self.asked.push((i, e, self.replicas[i as usize].epoch()));
                if e < self.stop_epoch {
                    let b = (self.batches)(e, i);
                    pending.push(self.replicas[i as usize].propose(e, b));
                }
            }
        }
    }

    fn start(&mut self) {
        for i in 0..self.replicas.len() as u32 {
            let s = self.replicas[i as usize].start();
            self.absorb(i, s);
        }
    }

    fn run(&mut self) {
        let mut steps = 0;
        while let Some((from, to, m)) = self.queue.pop_front() {
            steps += 1;
            assert!(steps < 200_000, "no quiescence");
            if self.down[to as usize] || self.down[from as usize] {
                continue;
            }
            let s = self.replicas[to as usize].handle_message(from, m);
            self.absorb(to, s);
        }
    }
}

fn sim_cryptos(n: usize) -> Vec<SimCrypto> {
    (0..n as u32).map(|i| SimCrypto::new(1, n, i)).collect()
}

fn tx(s: &str) -> Tx {
    s.as_bytes().to_vec()
}

#[test]
fn four_bls_replicas_deliver_the_same_epochs_keeping_the_earliest_duplicate() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let cryptos = NodeCrypto::deal(4, &mut rng).unwrap();
    // Epoch 0: 0 → [a, b], 1 → [b, c], 2 → [], 3 → [d]; epoch 1: everyone
    // re-proposes a (delivered already) and 2 adds e; epoch 2 is all empty.
    let batches = |e: u64, i: u32| -> Vec<Tx> {
        match (e, i) {
            (0, 0) => vec![tx("a"), tx("b")],
            (0, 1) => vec![tx("b"), tx("c")],
            (0, 3) => vec![tx("d")],
            (1, 2) => vec![tx("a"), tx("e")],
            (1, _) => vec![tx("a")],
            _ => Vec::new(),
        }
    };
    let mut net = Net::new(cryptos, Box::new(batches), 3);
    net.start();
    net.run();
    assert!(net.faults.is_empty(), "{:?}", net.faults);
    for d in &net.delivered {
        assert_eq!(d.len(), 3, "three epochs delivered");
        assert_eq!(d, &net.delivered[0], "agreement and total order");
    }
    let d = &net.delivered[0];
    // Earliest occurrence kept, in proposer order; everything accepted
    // because the network is fair.
    assert_eq!(d[0].decision.len(), 4);
    assert_eq!(d[0].txs, vec![tx("a"), tx("b"), tx("c"), tx("d")]);
    assert_eq!(d[0].duplicates, 1);
    assert_eq!(d[1].txs, vec![tx("e")]);
    assert_eq!(d[1].duplicates, 4);
    // Each delivered transaction's id comes with it, computed once.
    for e in d {
        assert_eq!(e.ids, e.txs.iter().map(|t| tx_id(t)).collect::<Vec<_>>());
    }
    // Empty batches still progress.
    assert!(d[2].txs.is_empty());
    assert_eq!(d[2].decision.len(), 4);
    // The log is durable: certificates and batches of every epoch.
    assert_eq!(net.disks[1].delivered.len(), 3);
    assert!(net.disks[1].echoed.is_empty() && net.disks[1].proposed.is_empty(), "garbage-collected");
    for e in &net.disks[1].delivered {
        for b in &e.batches {
            assert_eq!(b.batch.digest(&INST, e.epoch, b.proposer), b.digest);
        }
    }
}

#[test]
fn one_silent_replica_does_not_stop_the_others() {
    let mut net = Net::new(sim_cryptos(4), Box::new(|e, i| vec![format!("{e}-{i}").into_bytes()]), 2);
    net.down[3] = true;
    net.start();
    net.run();
    for i in 0..3 {
        assert_eq!(net.delivered[i].len(), 2);
        assert_eq!(net.delivered[i], net.delivered[0]);
        assert_eq!(net.delivered[i][0].decision.len(), 3, "n − f batches");
    }
    assert!(net.delivered[3].is_empty());
}

fn lone(me: u32) -> Replica<SimCrypto> {
    let mut r = Replica::new(Config::new(4, me, INST), SimCrypto::new(1, 4, me), Durable::default());
    let _ = r.start();
    r
}

fn echo_count(s: &Step<SimSig, SimSig>) -> usize {
    s.messages.iter().filter(|(_, m)| matches!(m, Message::Echo { .. })).count()
}

use super::crypto::SimSig;

#[test]
fn unknown_senders_are_refused_and_change_nothing() {
    let mut r = lone(0);
    for from in [0u32, 4, 99] {
        let s = r.handle_message(from, Message::Val { epoch: 0, batch: Batch::new(vec![tx("x")]) });
        assert_eq!(s.faults, vec![Fault::UnknownSender { from }]);
        assert!(s.messages.is_empty() && s.persist.is_empty());
    }
    // Replica 1's real batch is still echoed afterwards.
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("x")]) });
    assert_eq!(echo_count(&s), 1);
}

#[test]
fn an_equivocating_proposer_gets_one_echo_only() {
    let mut r = lone(0);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("x")]) });
    assert_eq!(echo_count(&s), 1);
    let digest = Batch::new(vec![tx("x")]).digest(&INST, 0, 1);
    assert_eq!(s.persist, vec![PersistOp::Echoed { epoch: 0, proposer: 1, digest }], "the echo, in its step");
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("y")]) });
    assert_eq!(s.faults, vec![Fault::Equivocation { proposer: 1, epoch: 0 }]);
    assert_eq!(echo_count(&s), 0);
    assert!(s.persist.is_empty());
}

#[test]
fn a_restarted_replica_never_echoes_a_second_batch_of_a_proposer() {
    let mut disk = Durable::default();
    let mut r = lone(0);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("x")]) });
    assert_eq!(echo_count(&s), 1);
    for op in &s.persist {
        disk.apply(op);
    }
    let x = Batch::new(vec![tx("x")]).digest(&INST, 0, 1);
    assert_eq!(disk.echoed.get(&(0, 1)), Some(&x), "the echo is on disk before it leaves");
    let restart = |disk: &Durable<SimSig>| {
        let mut r = Replica::new(Config::new(4, 0, INST), SimCrypto::new(1, 4, 0), disk.clone());
        let _ = r.start();
        r
    };
    let mut r = restart(&disk);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("y")]) });
    assert_eq!(echo_count(&s), 0, "echoed x before the crash");
    assert!(s.persist.is_empty());
    // The batch it echoed is echoed again (the same statement), with no
    // new write: a restarted replica is not mute.
    let mut r = restart(&disk);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("x")]) });
    assert_eq!(echo_count(&s), 1, "echoes x again");
    assert!(s.persist.is_empty(), "nothing new to write: {:?}", s.persist);
    // Without the record on disk (the planted bug it guards against), the
    // restarted replica would echo y in epoch 0 after x.
    let mut forgot = disk.clone();
    forgot.echoed.clear();
    let mut r = restart(&forgot);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: Batch::new(vec![tx("y")]) });
    assert_eq!(echo_count(&s), 1, "a replica without the record echoes a second batch");
}

#[test]
fn a_restarted_replica_votes_again_as_it_voted_before() {
    // Replica 0 gets a certificate for proposer 2 and votes BVal(1) in its
    // agreement; after a restart, the agreement of proposer 2 ends in 0
    // for the others (vote 0 is its input now), yet it votes 1 again.
    let digest = Batch::default().digest(&INST, 0, 2);
    let stmt = echo_statement(&INST, 0, 2, &digest);
    let shares: Vec<(u32, SimSig)> =
        (0..3).map(|i| (i, SimCrypto::new(1, 4, i).sign_share(KeyUse::Cert, &stmt))).collect();
    let sig = SimCrypto::new(1, 4, 0).combine(KeyUse::Cert, &stmt, &shares).unwrap();
    let mut disk = Durable::default();
    let mut r = lone(0);
    let s = r.handle_message(1, Message::Cert { epoch: 0, proposer: 2, digest, sig });
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Aba { instance: 2, vote: AbaVote::BVal(true), .. })));
    assert!(
        s.persist
            .iter()
            .any(|op| matches!(op, PersistOp::Voted { epoch: 0, instance: 2, round: 0, said } if said.bval == 2)),
        "the vote is written in its step: {:?}",
        s.persist
    );
    for op in &s.persist {
        disk.apply(op);
    }
    let mut r = Replica::new(Config::new(4, 0, INST), SimCrypto::new(1, 4, 0), disk);
    // It says its recorded vote again at its start, with no certificate and
    // no input; then three other agreements decide 1 (by Terms): the ACS
    // rule inputs 0 to proposer 2's, but the replica keeps its recorded
    // estimate.
    let mut bvals: Vec<bool> = r
        .start()
        .messages
        .into_iter()
        .filter_map(|(_, m)| match m {
            Message::Aba { instance: 2, round: 0, vote: AbaVote::BVal(b), .. } => Some(b),
            _ => None,
        })
        .collect();
    for inst in [0u32, 1, 3] {
        for from in [1u32, 3] {
            let s =
                r.handle_message(from, Message::Aba { epoch: 0, instance: inst, round: 0, vote: AbaVote::Term(true) });
            for (_, m) in s.messages {
                if let Message::Aba { instance: 2, round: 0, vote: AbaVote::BVal(b), .. } = m {
                    bvals.push(b);
                }
            }
        }
    }
    assert_eq!(bvals, vec![true], "the restarted replica votes, and as before");
}

#[test]
fn a_restarted_replica_echoes_its_own_durable_proposal_again_and_votes() {
    let mut disk = Durable::default();
    let mut r = lone(0);
    let s = r.propose(0, vec![tx("p")]);
    assert!(matches!(s.persist.as_slice(), [PersistOp::Proposed { epoch: 0, .. }]), "{:?}", s.persist);
    for op in &s.persist {
        disk.apply(op);
    }
    let mut r = Replica::new(Config::new(4, 0, INST), SimCrypto::new(1, 4, 0), disk);
    let s = r.start();
    // The same batch again, and its own echo share counts towards the
    // certificate: with two peers' echoes it is certified.
    let vals: Vec<&Batch> = s
        .messages
        .iter()
        .filter_map(|(_, m)| match m {
            Message::Val { epoch: 0, batch } => Some(batch),
            _ => None,
        })
        .collect();
    assert_eq!(vals, vec![&Batch::new(vec![tx("p")])]);
    assert!(s.persist.is_empty(), "nothing new to write: {:?}", s.persist);
    let digest = Batch::new(vec![tx("p")]).digest(&INST, 0, 0);
    let stmt = echo_statement(&INST, 0, 0, &digest);
    let mut certified = false;
    for i in [1u32, 2] {
        let share = SimCrypto::new(1, 4, i).sign_share(KeyUse::Cert, &stmt);
        let s = r.handle_message(i, Message::Echo { epoch: 0, proposer: 0, digest, share });
        certified |= s.messages.iter().any(|(_, m)| matches!(m, Message::Cert { proposer: 0, .. }));
        // Certified: it votes in its own agreement (nothing said there
        // before the restart).
        if certified {
            assert!(s
                .messages
                .iter()
                .any(|(_, m)| matches!(m, Message::Aba { instance: 0, vote: AbaVote::BVal(true), .. })));
        }
    }
    assert!(certified, "own echo plus two peers' = 2f + 1");
}

#[test]
fn in_step_epochs_write_only_in_steps_that_say_something_new() {
    let mut net = Net::new(sim_cryptos(4), Box::new(|e, i| vec![format!("{e}-{i}").into_bytes()]), 4);
    net.start();
    net.run();
    for i in 0..4 {
        assert_eq!(net.delivered[i].len(), 4);
        assert_eq!(net.delivered[i], net.delivered[0]);
    }
    // Each replica writes only in steps that say something new: no write
    // is empty, and none records a statement already on disk.
    for (i, writes) in net.writes.iter().enumerate() {
        let mut disk = Durable::<SimSig>::default();
        for w in writes {
            assert!(!w.is_empty(), "replica {i}: an empty write");
            for op in w {
                match op {
                    PersistOp::Echoed { epoch, proposer, .. } => {
                        assert!(!disk.echoed.contains_key(&(*epoch, *proposer)), "replica {i}: {op:?} twice")
                    }
                    PersistOp::Voted { epoch, instance, round, said } => assert_ne!(
                        disk.said.get(&(*epoch, *instance, *round)),
                        Some(said),
                        "replica {i}: a vote record written again"
                    ),
                    _ => {}
                }
                disk.apply(op);
            }
        }
        // One per delivery and proposal at most, plus those of new echoes
        // and agreement values (3 peers' echoes and 4 agreements a round).
        assert!(writes.len() <= 4 * (2 + 3 + 4 * 3), "replica {i}: {} writes", writes.len());
    }
}

#[test]
fn oversized_batches_are_refused() {
    let mut r = lone(0);
    let big = Batch::new(vec![vec![0u8; 5_000]]);
    let s = r.handle_message(1, Message::Val { epoch: 0, batch: big });
    assert_eq!(s.faults, vec![Fault::Malformed { from: 1, what: "batch beyond bounds" }]);
    assert_eq!(echo_count(&s), 0);
    let many = Batch::new(vec![tx("t"); 10_001]);
    let s = r.handle_message(2, Message::Val { epoch: 0, batch: many });
    assert_eq!(s.faults.len(), 1);
}

#[test]
fn a_forged_certificate_is_refused_and_starts_no_agreement() {
    let mut r = lone(0);
    let digest = Batch::default().digest(&INST, 0, 2);
    let sig = SimSig { tag: Hash32([1; 32]) };
    let s = r.handle_message(1, Message::Cert { epoch: 0, proposer: 2, digest, sig });
    assert_eq!(s.faults, vec![Fault::BadCertificate { from: 1, epoch: 0, proposer: 2 }]);
    assert!(s.messages.is_empty(), "no agreement vote");
    // A real one (2f + 1 shares) starts the agreement with a vote for 1.
    let stmt = echo_statement(&INST, 0, 2, &digest);
    let shares: Vec<(u32, SimSig)> =
        (0..3).map(|i| (i, SimCrypto::new(1, 4, i).sign_share(KeyUse::Cert, &stmt))).collect();
    let sig = SimCrypto::new(1, 4, 0).combine(KeyUse::Cert, &stmt, &shares).unwrap();
    // Replica 1 sent a forged certificate for (0, proposer 2): it is not
    // heard on that certificate again (a correct replica never sends a
    // forged one), so a stream of forgeries costs one check.
    let s = r.handle_message(1, Message::Cert { epoch: 0, proposer: 2, digest, sig: sig.clone() });
    assert!(s.faults.is_empty() && s.messages.is_empty(), "replica 1 is not heard on it again");
    let s = r.handle_message(2, Message::Cert { epoch: 0, proposer: 2, digest, sig });
    assert!(s.faults.is_empty());
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Aba { instance: 2, vote: AbaVote::BVal(true), .. })));
    assert!(s.persist.iter().any(|op| matches!(op, PersistOp::Voted { epoch: 0, instance: 2, round: 0, .. })));
}

#[test]
fn bad_echo_shares_are_reported_and_good_ones_still_certify() {
    let mut r = lone(0);
    let s = r.propose(0, vec![tx("p")]);
    let digest = Batch::new(vec![tx("p")]).digest(&INST, 0, 0);
    assert!(s.messages.iter().any(|(t, m)| *t == Target::All && matches!(m, Message::Val { .. })));
    let stmt = echo_statement(&INST, 0, 0, &digest);
    let bad = SimCrypto::new(1, 4, 1).sign_share(KeyUse::Cert, b"something else");
    let s = r.handle_message(1, Message::Echo { epoch: 0, proposer: 0, digest, share: bad });
    assert!(s.faults.is_empty(), "below the threshold nothing is checked yet");
    let good2 = SimCrypto::new(1, 4, 2).sign_share(KeyUse::Cert, &stmt);
    let s = r.handle_message(2, Message::Echo { epoch: 0, proposer: 0, digest, share: good2 });
    assert_eq!(s.faults, vec![Fault::BadEchoShare { from: 1, epoch: 0 }]);
    assert!(!s.messages.iter().any(|(_, m)| matches!(m, Message::Cert { .. })));
    let good3 = SimCrypto::new(1, 4, 3).sign_share(KeyUse::Cert, &stmt);
    let s = r.handle_message(3, Message::Echo { epoch: 0, proposer: 0, digest, share: good3 });
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Cert { proposer: 0, .. })));
}

/// A delivered epoch of one batch, with its genuine certificate (echo
/// shares of replicas 0..3 combined; sync records are checked).
fn delivered_epoch(e: u64, proposer: u32, txs: Vec<Tx>) -> DeliveredEpoch<SimSig> {
    let batch = Batch::new(txs);
    let digest = batch.digest(&INST, e, proposer);
    let stmt = echo_statement(&INST, e, proposer, &digest);
    let shares: Vec<(u32, SimSig)> =
        (0..3u32).map(|i| (i, SimCrypto::new(1, 4, i).sign_share(KeyUse::Cert, &stmt))).collect();
    let sig = SimCrypto::new(1, 4, 0).combine(KeyUse::Cert, &stmt, &shares).expect("three shares combine");
    DeliveredEpoch { epoch: e, batches: vec![CertifiedBatch { proposer, digest, sig, batch }] }
}

/// Adopts `d` from sync records of replicas 1 and 2 and returns its delivery.
fn adopt(r: &mut Replica<SimCrypto>, d: &DeliveredEpoch<SimSig>) -> Delivery {
    let _ = r.handle_message(1, Message::Sync { delivered: d.clone() });
    let mut s = r.handle_message(2, Message::Sync { delivered: d.clone() });
    assert_eq!(s.delivered.len(), 1, "epoch {} adopted", d.epoch);
    s.delivered.remove(0)
}

#[test]
fn a_restart_from_the_window_alone_uses_the_recorded_duplicates() {
    // X delivered in epoch 0 and removed as a duplicate in epoch 1 (at
    // position 0); a window of 4 epochs. The replica that ran through
    // delivers X again in epoch 5 (epoch 0 left its window). A replica
    // restarted from epochs 1..=4 only (as a node keeps them) and the
    // positions each removed rebuilds the same window and does the same.
    let cfg = || {
        let mut c = Config::new(4, 0, INST);
        c.dedup_epochs = 4;
        c.retain = 4;
        c
    };
    let x = tx("X");
    let epochs: Vec<DeliveredEpoch<SimSig>> = (0..6u64)
        .map(|e| match e {
            0 | 5 => delivered_epoch(e, 1, vec![x.clone()]),
            1 => delivered_epoch(e, 1, vec![x.clone(), tx("a")]),
            _ => delivered_epoch(e, 1, vec![]),
        })
        .collect();
    let mut live = Replica::new(cfg(), SimCrypto::new(1, 4, 0), Durable::default());
    let _ = live.start();
    let out: Vec<Delivery> = epochs.iter().map(|d| adopt(&mut live, d)).collect();
    assert_eq!(out[1].suppressed, vec![0], "X removed at position 0 of epoch 1");
    assert_eq!(out[1].txs, vec![tx("a")]);
    assert_eq!(out[5].txs, vec![x.clone()], "X left the window: delivered again");
    let durable = Durable {
        delivered: epochs[1..5].to_vec(),
        suppressed: out[1..5].iter().map(|d| (d.epoch, d.suppressed.clone())).collect(),
        ..Durable::default()
    };
    let mut restarted = Replica::new(cfg(), SimCrypto::new(1, 4, 0), durable);
    let _ = restarted.start();
    assert_eq!(restarted.epoch(), 5);
    assert_eq!(adopt(&mut restarted, &epochs[5]).txs, vec![x], "the same window: X delivered in epoch 5 here too");
}

#[test]
fn a_sync_record_is_adopted_only_in_a_copy_whose_certificates_verify() {
    let mut r = lone(0);
    let d = delivered_epoch(0, 1, vec![tx("z")]);
    let mut forged = d.clone();
    forged.batches[0].sig = SimSig { tag: Hash32([0; 32]) };
    // Two forged copies of the true decision: f + 1 agree, yet neither is
    // adopted; each is its sender's fault and is dropped.
    let _ = r.handle_message(1, Message::Sync { delivered: forged.clone() });
    let s = r.handle_message(2, Message::Sync { delivered: forged });
    assert!(s.delivered.is_empty() && s.persist.is_empty(), "{:?}", s.delivered);
    assert_eq!(
        s.faults,
        vec![
            Fault::BadCertificate { from: 1, epoch: 0, proposer: 1 },
            Fault::BadCertificate { from: 2, epoch: 0, proposer: 1 }
        ]
    );
    assert_eq!(r.epoch(), 0);
    // One genuine copy is not enough alone (the forged ones were dropped)…
    let s = r.handle_message(3, Message::Sync { delivered: d.clone() });
    assert!(s.delivered.is_empty());
    // …a second sender's genuine copy is.
    let s = r.handle_message(1, Message::Sync { delivered: d.clone() });
    assert_eq!(s.delivered.len(), 1);
    assert!(matches!(s.persist.first(), Some(PersistOp::Delivered(x)) if *x == d));
}

#[test]
fn catch_up_needs_f_plus_one_matching_records() {
    let mut r = lone(0);
    let d = delivered_epoch(0, 1, vec![tx("z")]);
    let s = r.handle_message(1, Message::Sync { delivered: d.clone() });
    assert!(s.delivered.is_empty(), "one record could be a lie");
    let other = delivered_epoch(0, 2, vec![tx("w")]);
    let s = r.handle_message(2, Message::Sync { delivered: other });
    assert!(s.delivered.is_empty(), "two different records");
    let s = r.handle_message(3, Message::Sync { delivered: d });
    assert_eq!(s.delivered.len(), 1);
    assert_eq!(s.delivered[0].txs, vec![tx("z")]);
    assert!(matches!(s.persist.first(), Some(PersistOp::Delivered(_))));
    assert_eq!(r.epoch(), 1);
}

#[test]
fn a_sync_record_whose_batch_does_not_match_its_digest_is_refused() {
    let mut r = lone(0);
    let mut d = delivered_epoch(0, 1, vec![tx("z")]);
    d.batches[0].batch.txs.make_mut().push(tx("smuggled"));
    let s = r.handle_message(1, Message::Sync { delivered: d });
    assert_eq!(s.faults, vec![Fault::BadSync { from: 1, epoch: 0 }]);
}

#[test]
fn a_lagging_replica_catches_up_from_the_log_and_keeps_order() {
    let mut net = Net::new(sim_cryptos(4), Box::new(|e, i| vec![format!("{e}-{i}").into_bytes()]), 3);
    net.down[3] = true;
    net.start();
    net.run();
    assert_eq!(net.delivered[0].len(), 3);
    // Replica 3 comes up empty and asks; the others answer from their logs.
    net.down[3] = false;
    let s = net.replicas[3].start();
    net.absorb(3, s);
    net.run();
    assert_eq!(net.delivered[3], net.delivered[0]);
}

#[test]
fn fifo_policy_keeps_order_skips_in_flight_and_drops_delivered() {
    let mut p = FifoPolicy::new(2, 3);
    assert!(p.submit(tx("a")) && p.submit(tx("b")) && p.submit(tx("c")));
    assert!(!p.submit(tx("d")), "queue full");
    assert!(!p.submit(tx("a")), "already queued");
    assert_eq!(p.next_batch(0), vec![tx("a"), tx("b")]);
    assert_eq!(p.next_batch(1), vec![tx("c")], "a and b in flight");
    p.delivered(1, Hash32([0; 32]), &[tx("a")]);
    assert_eq!(p.next_batch(2), vec![tx("b")], "b retried after two epochs");
    assert_eq!(p.pending(), 2);
}

#[test]
fn fifo_policy_forgets_delivered_ids_as_it_forgets_delivered_transactions() {
    let fill = || {
        let mut p = FifoPolicy::new(2, 8);
        for t in ["a", "b", "c"] {
            assert!(p.submit(tx(t)));
        }
        assert_eq!(p.next_batch(0), vec![tx("a"), tx("b")]);
        p
    };
    let (mut by_tx, mut by_id) = (fill(), fill());
    by_tx.delivered(0, Hash32([0; 32]), &[tx("a"), tx("zz")]);
    by_id.delivered_ids(&[tx_id(&tx("a")), tx_id(&tx("zz"))]);
    for p in [&mut by_tx, &mut by_id] {
        assert_eq!(p.pending(), 2);
        // c is next; b is still in flight (proposed in epoch 0).
        assert_eq!(p.next_batch(1), vec![tx("c")]);
        // a left the queue with its delivery, and a late copy of it is
        // refused while the delivery is in the duplicate window.
        assert_eq!(p.try_submit(tx("a")), Err(Refused::Delivered));
    }
}

#[test]
fn fifo_next_txs_is_next_batch_with_the_ids_of_admission() {
    let fill = || {
        let mut p = FifoPolicy::new(2, 8);
        for t in ["a", "b", "c"] {
            assert!(p.submit(tx(t)));
        }
        p
    };
    let (mut plain, mut with_ids) = (fill(), fill());
    for e in 0..4 {
        let want = plain.next_batch(e);
        let got = with_ids.next_txs(e);
        assert_eq!(*got, want, "epoch {e}: the same batch");
        let ids: Vec<Hash32> = want.iter().map(|t| tx_id(t)).collect();
        assert_eq!(got.ids(), &ids[..], "epoch {e}: the ids carried are the transactions' ids");
    }
    // The delivered one leaves both; one never queued here changes nothing.
    plain.delivered_ids(&[tx_id(&tx("b")), tx_id(&tx("x"))]);
    with_ids.delivered_ids(&[tx_id(&tx("b")), tx_id(&tx("x"))]);
    assert_eq!((plain.pending(), with_ids.pending()), (2, 2));
    assert_eq!(*with_ids.next_txs(6), plain.next_batch(6));
}

#[test]
fn fifo_delivered_ids_keep_the_order_of_what_is_left() {
    let mut p = FifoPolicy::new(10, 10);
    for t in ["a", "b", "c", "d", "e"] {
        assert!(p.submit(tx(t)));
    }
    // Delivered out of queue order, one of them twice in the list.
    p.delivered_ids(&[tx_id(&tx("d")), tx_id(&tx("b")), tx_id(&tx("d"))]);
    assert_eq!(p.pending(), 3);
    assert_eq!(p.next_batch(0), vec![tx("a"), tx("c"), tx("e")]);
    assert_eq!(p.try_submit(tx("b")), Err(Refused::Delivered), "b was delivered (within the window)");
    assert_eq!(p.try_submit(tx("c")), Err(Refused::Duplicate), "c is still queued");
}

#[test]
fn delivered_txs_read_as_the_kept_transactions_of_the_batches() {
    let b0: Txs = vec![tx("a"), tx("b")].into();
    let b1: Txs = vec![tx("c"), tx("a"), tx("d")].into();
    let d = DeliveredTxs::new(vec![b0, b1], vec![(0, 0), (0, 1), (1, 0), (1, 2)]);
    let want = vec![tx("a"), tx("b"), tx("c"), tx("d")];
    assert_eq!(d.len(), 4);
    assert_eq!(d.to_vec(), want);
    assert_eq!(d, want);
    assert_eq!(d.iter().rev().cloned().collect::<Vec<_>>(), want.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!((&d).into_iter().count(), 4);
    assert_eq!((d[2].clone(), d.get(3).cloned(), d.get(4)), (tx("c"), Some(tx("d")), None));
    assert!(d.contains(&tx("d")) && !d.contains(&tx("e")));
    assert_eq!(d, DeliveredTxs::from(want.clone()));
    assert!(DeliveredTxs::default().is_empty());
}

#[test]
fn shared_batch_transactions_encode_and_digest_as_a_plain_list() {
    let txs = vec![tx("a"), tx("bb"), Vec::new()];
    let batch = Batch { txs: txs.clone().into(), time_ms: 7 };
    // The wire and log format is that of `Vec<Tx>`: older records decode.
    assert_eq!(gridledger_core::codec::encode(&batch), gridledger_core::codec::encode(&(txs.clone(), 7u64)));
    let back: Batch = gridledger_core::codec::decode(&gridledger_core::codec::encode(&batch), 1 << 10).unwrap();
    assert_eq!(back, batch);
    // A clone shares the transactions; changing one copies first.
    let mut changed = batch.clone();
    changed.txs.make_mut().push(tx("c"));
    assert_eq!(batch.txs.len(), 3);
    assert_eq!(changed.txs.len(), 4);
    assert_ne!(changed.digest(&INST, 0, 0), batch.digest(&INST, 0, 0));
    // Digest version 2: over the transactions' ids, which travel with the
    // list (decoded, cloned or built), and are dropped when it changes.
    let ids: Vec<Hash32> = txs.iter().map(|t| tx_id(t)).collect();
    assert_eq!(back.txs.ids(), &ids[..]);
    assert_eq!(batch.txs.ids(), &ids[..]);
    assert_eq!(changed.txs.ids().len(), 4);
    assert_eq!(changed.txs.ids()[3], tx_id(&tx("c")));
    assert_eq!(
        batch.digest(&INST, 0, 0),
        gridledger_core::codec::hash_tagged(
            gridledger_core::codec::Tag("gridledger/lbft/batch/v2"),
            &(&INST, 0u64, 0u32, &ids, 7u64)
        )
    );
    // Every byte of every transaction is bound: changing one changes the digest.
    let mut flipped = batch.clone();
    flipped.txs.make_mut()[1][0] ^= 1;
    assert_ne!(flipped.digest(&INST, 0, 0), batch.digest(&INST, 0, 0));
    assert_ne!(batch.digest(&INST, 0, 0), batch.digest(&INST, 0, 1));
    assert_ne!(batch.digest(&INST, 1, 0), batch.digest(&INST, 0, 0));
}

#[test]
fn real_crypto_simulator_seeds_hold_too() {
    // The nodes' scheme (Ed25519 multi-signature certificates, BLS coin)
    // under the simulator (a few seeds: pairings are slow in a debug build).
    for seed in 0x1bf7_0000..0x1bf7_0000 + 3 {
        if let Err(e) = run_seed(seed, SchemeKind::Node, None) {
            panic!("{e}; {}", SeedPlan::replay_hint(seed));
        }
    }
}

#[test]
fn simulator_sweep_holds_agreement_order_integrity_and_liveness() {
    let plan = SeedPlan::from_env(0x1bf7_0000, 1_000);
    let mut failures = Vec::new();
    let mut sync_deaths = 0u64;
    for &seed in &plan.seeds {
        match run_seed(seed, SchemeKind::Sim, None) {
            Ok(r) => sync_deaths += r.sync_deaths,
            Err(e) => failures.push(format!("{e}; {}", SeedPlan::replay_hint(seed))),
        }
    }
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), plan.seeds.len(), failures.join("\n"));
    // The sweep kills replicas in the sync window too (after a step's
    // free messages left, before its writes were durable).
    if plan.seeds.len() >= 100 {
        assert!(sync_deaths > 0, "no replica died in a sync window in {} seeds", plan.seeds.len());
    }
    eprintln!("{sync_deaths} deaths in the sync window over {} seeds", plan.seeds.len());
}

/// Sizes other than `3f + 1`: `n = 5` and `n = 6` (`f = 1`, quorums of
/// `n − f` = 4 and 5, where `2f + 1 = 3` would let two quorums meet in a
/// Byzantine replica alone) on each seed's random network, with the
/// seed's Byzantine replicas (every behaviour of [`super::sim`]: silent,
/// equivocating, bad shares, flipped votes, lies and forged certificates
/// in sync; on odd seeds an equivocating one also certifies both of its
/// batches where the scheme lets it, [`super::sim::Behaviour::CertifyBoth`])
/// and crash-restarts: agreement, total order, integrity and (within `f`)
/// liveness.
#[test]
fn simulator_sweep_holds_for_five_and_six_replicas() {
    let plan = SeedPlan::from_env(0x1bf7_a000, 300);
    let mut failures = Vec::new();
    let mut byzantine_runs = 0;
    for &seed in &plan.seeds {
        for n in [5, 6] {
            let mut s = super::sim::scenario_of_size(seed, n);
            assert_eq!(s.n, n);
            if seed % 2 == 1 {
                for b in s.byzantine.values_mut().filter(|b| b.contains(&super::sim::Behaviour::Equivocate)) {
                    b.push(super::sim::Behaviour::CertifyBoth);
                }
            }
            byzantine_runs += usize::from(!s.byzantine.is_empty());
            let r = super::sim::run(&s, SchemeKind::Sim, None);
            if let Err(e) = super::sim::check(&s, &r) {
                failures.push(format!(
                    "n={n}, byzantine {:?}, crashed {:?}: {e}; {}",
                    s.byzantine,
                    s.crashed,
                    SeedPlan::replay_hint(seed)
                ));
            }
        }
    }
    assert!(byzantine_runs > 0 || plan.seeds.len() < 10, "the sweep ran Byzantine replicas");
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n{}",
        failures.len(),
        2 * plan.seeds.len(),
        failures.join("\n")
    );
}

/// The nodes' scheme at `n = 5` and `n = 6` (certificates of `n − f`
/// Ed25519 echoes): a few seeds.
#[test]
fn real_crypto_simulator_seeds_hold_for_five_and_six_replicas() {
    for seed in 0x1bf7_a000..0x1bf7_a000 + 2 {
        for n in [5, 6] {
            let s = super::sim::scenario_of_size(seed, n);
            let r = super::sim::run(&s, SchemeKind::Node, None);
            if let Err(e) = super::sim::check(&s, &r) {
                panic!("n={n}: {e}; {}", SeedPlan::replay_hint(seed));
            }
        }
    }
}

/// Restarts with liveness checked: on each seed's random network (no
/// Byzantine replica), either every replica crashes and restarts in turn
/// (never more than `f` down at once), or all of them restart at once
/// (records intact). A restarted replica replays what it said before and
/// takes part at once, so the chain goes on either way.
#[test]
fn simulator_sweep_stays_live_through_rolling_and_whole_network_restarts() {
    use gridledger_sim::Crash;
    let plan = SeedPlan::from_env(0x1bf7_5000, 24);
    let mut failures = Vec::new();
    for &seed in &plan.seeds {
        let mut s = super::sim::scenario(seed);
        s.byzantine.clear();
        let n = s.n as u32;
        let whole = seed % 2 == 0;
        let start = 50 + seed % 400;
        let crashes: Vec<Crash> = (0..n)
            .map(|node| {
                if whole {
                    Crash { node, at: start, restart_at: Some(start + 20 + seed % 200) }
                } else {
                    // One at a time: each is back before the next goes down.
                    let at = start + u64::from(node) * 60;
                    Crash { node, at, restart_at: Some(at + 1 + seed % 50) }
                }
            })
            .collect();
        s.crashed = (0..n).collect();
        s.net.crashes = crashes;
        s.expect_liveness = true;
        s.end = 60_000;
        let r = super::sim::run(&s, SchemeKind::Sim, None);
        if let Err(e) = super::sim::check(&s, &r) {
            let kind = if whole { "whole-network restart" } else { "rolling restart" };
            failures.push(format!("{kind}, n={}: {e}; {}", s.n, SeedPlan::replay_hint(seed)));
        }
    }
    assert!(failures.is_empty(), "{} of {} seeds failed:\n{}", failures.len(), plan.seeds.len(), failures.join("\n"));
}

#[test]
#[ignore]
fn profile_seeds() {
    for seed in 0x1bf7_0000..0x1bf7_0000 + 30 {
        let t = std::time::Instant::now();
        let s = super::sim::scenario(seed);
        let r = super::sim::run(&s, SchemeKind::Sim, None);
        let ok = super::sim::check(&s, &r);
        eprintln!(
            "seed {seed} n={} byz={:?} crash={:?} live={} end={} msgs={} faults={} epochs={:?} {:?} {:?}",
            s.n,
            s.byzantine,
            s.crashed,
            s.expect_liveness,
            r.end_time,
            r.messages,
            r.faults,
            r.deliveries.values().map(|v| v.len()).collect::<Vec<_>>(),
            t.elapsed(),
            ok.err()
        );
    }
}

/// External validity: the correct replicas' predicate refuses replica 3's
/// batches (they carry a transaction the application rejects); they are
/// never echoed, so never certified nor delivered, every correct replica
/// reports the refusal with its reason, and the epochs still complete
/// with the `n − f` valid batches.
#[test]
fn a_byzantine_proposers_invalid_batch_is_never_certified() {
    let batches = |e: u64, i: u32| -> Vec<Tx> {
        if i == 3 {
            vec![tx("invalid"), format!("{e}-{i}").into_bytes()]
        } else {
            vec![format!("{e}-{i}").into_bytes()]
        }
    };
    let mut net = Net::new(sim_cryptos(4), Box::new(batches), 2);
    for r in &mut net.replicas {
        r.set_validity(Box::new(|_e, _p, b: &Batch| {
            if b.txs.iter().any(|t| t == b"invalid") {
                Err("the application refuses `invalid`".into())
            } else {
                Ok(())
            }
        }));
    }
    net.start();
    net.run();
    for i in 0..4 {
        assert_eq!(net.delivered[i].len(), 2, "both epochs complete at replica {i}");
        assert_eq!(net.delivered[i], net.delivered[0]);
    }
    for d in &net.delivered[0] {
        assert!(d.decision.iter().all(|(p, _)| *p != 3), "replica 3's batch accepted in epoch {}", d.epoch);
        assert_eq!(d.decision.len(), 3);
        assert!(!d.txs.contains(&tx("invalid")));
    }
    for i in 0..3u32 {
        for e in 0..2 {
            assert!(
                net.faults
                    .iter()
                    .any(|(at, f)| *at == i
                        && matches!(f, Fault::InvalidBatch { proposer: 3, epoch, .. } if *epoch == e)),
                "replica {i} reported replica 3's epoch-{e} batch: {:?}",
                net.faults
            );
        }
    }
    // Nothing about the refused batch was persisted by the correct replicas.
    for i in 0..3 {
        assert!(net.disks[i].delivered.iter().all(|d| d.batches.iter().all(|b| b.proposer != 3)));
    }
}

/// Epoch `e`'s batch of replica `i` in the overlap tests: one own
/// transaction, and replica 0 repeats replica 1's previous one (a
/// duplicate across consecutive epochs).
fn overlap_batches(e: u64, i: u32) -> Vec<Tx> {
    let mut b = vec![tx(&format!("{i}-{e}"))];
    if i == 0 && e > 0 {
        b.push(tx(&format!("1-{}", e - 1)));
    }
    b
}

#[test]
fn overlapped_epochs_propose_ahead_and_still_deliver_in_order_once() {
    let mut net = Net::with_pipeline(sim_cryptos(4), Box::new(overlap_batches), 6, 1);
    net.start();
    net.run();
    // Some replica proposed for an epoch while the one before was not
    // delivered yet (its own batch there certified), and never further
    // ahead than the pipeline allows.
    assert!(net.asked.iter().any(|&(_, e, current)| e == current + 1), "no epoch overlapped: {:?}", net.asked);
    assert!(net.asked.iter().all(|&(_, e, current)| e <= current + 1), "{:?}", net.asked);
    let first: Vec<(u64, Vec<Tx>)> = net.delivered[0].iter().map(|d| (d.epoch, d.txs.to_vec())).collect();
    assert!(first.len() >= 6, "{first:?}");
    for (k, (e, _)) in first.iter().enumerate() {
        assert_eq!(*e, k as u64, "epochs in order, each once");
    }
    for i in 1..4 {
        let other: Vec<(u64, Vec<Tx>)> = net.delivered[i].iter().map(|d| (d.epoch, d.txs.to_vec())).collect();
        assert_eq!(other, first, "replica {i} delivered another sequence");
    }
    let all: Vec<&Tx> = first.iter().flat_map(|(_, t)| t).collect();
    let unique: std::collections::HashSet<&Tx> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a transaction delivered twice");
    assert!(net.faults.is_empty(), "{:?}", net.faults);
}

#[test]
fn without_overlap_a_replica_asks_only_for_its_current_epoch() {
    let mut net = Net::new(sim_cryptos(4), Box::new(overlap_batches), 6);
    net.start();
    net.run();
    assert!(!net.asked.is_empty());
    assert!(net.asked.iter().all(|&(_, e, current)| e == current), "{:?}", net.asked);
}

#[test]
fn a_proposal_beyond_the_pipeline_or_for_a_past_epoch_is_ignored() {
    let cryptos = sim_cryptos(4);
    let mut cfg = Config::new(4, 0, INST);
    cfg.pipeline = 1;
    let mut r = Replica::new(cfg, cryptos[0].clone(), Durable::default());
    let _ = r.start();
    // Two ahead with a pipeline of one: nothing persisted or sent.
    let s = r.propose(2, vec![tx("x")]);
    assert!(s.persist.is_empty() && s.messages.is_empty());
    // One ahead: proposed (persisted, then broadcast).
    let s = r.propose(1, vec![tx("y")]);
    assert!(matches!(s.persist.as_slice(), [PersistOp::Proposed { epoch: 1, .. }, ..]), "{:?}", s.persist);
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Val { epoch: 1, .. })));
    // The same epoch again: ignored.
    let s = r.propose(1, vec![tx("z")]);
    assert!(s.persist.is_empty() && s.messages.is_empty());
    assert_eq!(r.epoch(), 0);
}

#[test]
fn overlapped_epochs_stay_live_when_the_only_replica_ahead_must_lend_its_decisions() {
    // Simulator seed 18 (as `gridledger sim lbft` numbers it): overlapped
    // epochs two ahead; replica 3 crashes after voting in epochs 2 and 3
    // and comes back only observing them; replica 1 finished both and
    // moved on while a partition had cut replicas 0 and 2 off its last
    // votes. Without replica 1 answering their sync requests with its
    // decisions (`Term`s), 0 and 2 never finish epoch 2.
    let s = super::sim::scenario(18);
    assert_eq!((s.pipeline, s.crashed.len()), (2, 1), "the scenario the test names");
    let r = super::sim::run(&s, SchemeKind::Sim, None);
    super::sim::check(&s, &r).unwrap();
}

#[test]
fn a_peer_one_epoch_behind_gets_our_decisions_not_the_whole_epoch() {
    let mut r = lone(0);
    let d0 = delivered_epoch(0, 1, vec![tx("z")]);
    for from in [1, 3] {
        let _ = r.handle_message(from, Message::Sync { delivered: d0.clone() });
    }
    assert_eq!(r.epoch(), 1);
    // Peer 2's vote of epoch 0 crossed our decision: it gets the decisions
    // as Term votes (f + 1 of them decide), not the delivered record with
    // every batch of the epoch.
    let late = || Message::Aba { epoch: 0, instance: 0, round: 0, vote: AbaVote::BVal(true) };
    let s = r.handle_message(2, late());
    assert!(!s.messages.iter().any(|(_, m)| matches!(m, Message::Sync { .. })), "no delivered record");
    let terms: Vec<(u32, bool)> = s
        .messages
        .iter()
        .filter_map(|(to, m)| match (to, m) {
            (Target::One(2), Message::Aba { epoch: 0, instance, vote: AbaVote::Term(b), .. }) => Some((*instance, *b)),
            _ => None,
        })
        .collect();
    assert_eq!(terms, vec![(0, false), (1, true), (2, false), (3, false)]);
    assert_eq!(s.messages.len(), 4);
    assert!(r.handle_message(2, late()).messages.is_empty(), "once per peer and epoch");
    // A peer further behind gets the records as well.
    let d1 = delivered_epoch(1, 3, vec![tx("y")]);
    for from in [1, 2] {
        let _ = r.handle_message(from, Message::Sync { delivered: d1.clone() });
    }
    assert_eq!(r.epoch(), 2);
    let s = r.handle_message(3, late());
    let records: Vec<u64> = s
        .messages
        .iter()
        .filter_map(|(to, m)| match (to, m) {
            (Target::One(3), Message::Sync { delivered }) => Some(delivered.epoch),
            _ => None,
        })
        .collect();
    assert_eq!(records, vec![0, 1]);
}

#[test]
fn the_tick_resends_our_proposal_only_to_peers_without_an_echo_and_to_none_once_certified() {
    let mut r = lone(0);
    let _ = r.propose(0, vec![tx("p")]);
    let digest = Batch::new(vec![tx("p")]).digest(&INST, 0, 0);
    let stmt = echo_statement(&INST, 0, 0, &digest);
    let echo = |i: u32| Message::Echo {
        epoch: 0,
        proposer: 0,
        digest,
        share: SimCrypto::new(1, 4, i).sign_share(KeyUse::Cert, &stmt),
    };
    let _ = r.handle_message(1, echo(1));
    let vals = |s: &Step<SimSig, SimSig>| -> Vec<Target> {
        s.messages.iter().filter(|(_, m)| matches!(m, Message::Val { .. })).map(|(t, _)| *t).collect()
    };
    let s = r.handle_tick();
    assert_eq!(vals(&s), vec![Target::One(2), Target::One(3)], "peer 1 echoed: it has the batch");
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::SyncRequest { .. })));
    let s = r.handle_message(2, echo(2));
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Cert { proposer: 0, .. })));
    let s = r.handle_tick();
    assert!(vals(&s).is_empty(), "certified: a peer without the batch fetches it");
    assert!(s.messages.iter().any(|(_, m)| matches!(m, Message::Cert { proposer: 0, .. })), "the rest is re-sent");
}

#[test]
fn with_the_fixed_coin_schedule_agreeing_replicas_decide_without_a_coin_share() {
    let batches = || Box::new(|e: u64, i: u32| vec![format!("{e}-{i}").into_bytes()]);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let cryptos = NodeCrypto::deal(4, &mut rng).unwrap();
    let mut fixed = Net::new(cryptos.clone(), batches(), 3);
    fixed.start();
    fixed.run();
    let mut threshold = Net::new(cryptos.clone(), batches(), 3);
    threshold.replicas = cryptos
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let mut cfg = Config::new(4, i as u32, INST);
            cfg.fixed_coins = false;
            Replica::new(cfg, c, Durable::default())
        })
        .collect();
    threshold.start();
    threshold.run();
    for net in [&fixed, &threshold] {
        assert!(net.faults.is_empty(), "{:?}", net.faults);
        for d in &net.delivered {
            assert_eq!(d.len(), 3);
            assert_eq!(d, &net.delivered[0]);
        }
    }
    // Same decisions (every batch accepted in a fair run) either way; the
    // fixed schedule decides each agreement in round 0 with no share.
    assert_eq!(fixed.delivered[0], threshold.delivered[0]);
    assert_eq!(fixed.coin_votes, 0);
    assert!(threshold.coin_votes > 0);
}

#[test]
fn sync_answers_send_each_record_once_per_peer_and_tick_and_keep_up_with_catch_up() {
    use super::crypto::SimSig;
    let n = 4;
    let delivered: Vec<DeliveredEpoch<SimSig>> = (0..24u64)
        .map(|e| {
            let batch = Batch::new(vec![vec![e as u8; 100]]);
            let digest = batch.digest(&INST, e, 1);
            DeliveredEpoch {
                epoch: e,
                batches: vec![CertifiedBatch { proposer: 1, digest, sig: SimSig { tag: digest }, batch }],
            }
        })
        .collect();
    let mut r =
        Replica::new(Config::new(n, 0, INST), SimCrypto::new(1, n, 0), Durable { delivered, ..Durable::default() });
    let synced = |s: &Step<SimSig, SimSig>| -> Vec<u64> {
        s.messages
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Sync { delivered } => Some(delivered.epoch),
                _ => None,
            })
            .collect()
    };
    assert_eq!(synced(&r.handle_message(1, Message::SyncRequest { next: 0 })), (0..8).collect::<Vec<_>>());
    // Asking again, or for epochs inside what it got, draws nothing new.
    assert!(synced(&r.handle_message(1, Message::SyncRequest { next: 0 })).is_empty());
    assert_eq!(synced(&r.handle_message(1, Message::SyncRequest { next: 3 })), vec![8, 9, 10]);
    // An honest catch-up asks for the next records at once: answered.
    assert_eq!(synced(&r.handle_message(1, Message::SyncRequest { next: 11 })), (11..19).collect::<Vec<_>>());
    // Another peer is answered on its own.
    assert_eq!(synced(&r.handle_message(2, Message::SyncRequest { next: 0 })), (0..8).collect::<Vec<_>>());
    // After a tick, the same request is answered again.
    let _ = r.handle_tick();
    assert_eq!(synced(&r.handle_message(1, Message::SyncRequest { next: 0 })), (0..8).collect::<Vec<_>>());
}
