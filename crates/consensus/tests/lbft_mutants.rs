//! Mutation sensitivity of the LBFT simulator: each bug planted in the
//! replica behind the `mutants` feature must be reported as a violation
//! within a bounded number of seeds, while the same scenarios pass
//! without it (the control).
//!
//! Run with `cargo test -p gridledger-consensus --features mutants --test lbft_mutants`.

use gridledger_consensus::lbft::sim::{check, run, scenario, Behaviour, Scenario, SchemeKind};
use gridledger_consensus::lbft::Mutation;

/// Seeds tried per planted bug before the check fails.
const BUDGET: u64 = 200;

/// A scenario aimed at the kind of bug `m` is.
fn aimed(m: Mutation, seed: u64) -> Scenario {
    let mut s = scenario(seed);
    let behaviours = match m {
        Mutation::WrongQuorum => vec![Behaviour::FlipVotes, Behaviour::LieInSync],
        Mutation::SkipCertificateCheck => vec![Behaviour::Equivocate],
        Mutation::CoinNotThreshold => vec![Behaviour::FlipVotes],
        Mutation::StatementsNotPersisted => vec![Behaviour::FlipVotes, Behaviour::Equivocate],
        Mutation::AcceptLateInput => vec![Behaviour::FlipVotes],
        Mutation::LosePersistedState | Mutation::PipelineOutOfOrder => Vec::new(),
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

#[test]
fn overlapped_epoch_delivered_out_of_order_is_caught() {
    assert_caught(Mutation::PipelineOutOfOrder);
}

// ---- a late agreement input: a scripted schedule ---------------------------------

/// [`Mutation::AcceptLateInput`] shows in random runs only as the late
/// `BVal` the safety record reports ([`accepted_late_input_is_caught`]);
/// the fork it leads to needs a schedule (the agreement leaves round 0 on
/// the others' votes before its input arrives, and a Byzantine replica
/// backs the late value). This is attack round 2's [1c], three correct
/// replicas and a Byzantine
/// proposer 3 whose messages the test writes, every message delivered by
/// hand. The simulator's safety record ([`SaidLog`], fed what each replica
/// sends and receives) must report the late `BVal`, and the fork shows in
/// the delivered epoch; without the bug neither happens and, once the
/// network is fair, all three deliver epoch 0 alike.
mod late_input {
    use gridledger_consensus::lbft::crypto::SimSig;
    use gridledger_consensus::lbft::sim::{SaidLog, Slot};
    use gridledger_consensus::lbft::{
        echo_statement, AbaVote, Batch, Config, Delivery, Durable, KeyUse, Message, Mutation, Replica, SimCrypto, Step,
        Target, ThresholdCrypto,
    };
    use gridledger_core::Hash32;

    const LAB: Hash32 = Hash32([0x3c; 32]);

    type Msg = Message<SimSig, SimSig>;

    struct Lab {
        reps: Vec<Replica<SimCrypto>>,
        queue: Vec<(u32, u32, Msg)>,
        delivered: Vec<Vec<Delivery>>,
        said: SaidLog,
    }

    impl Lab {
        fn new(mutation: Option<Mutation>) -> Self {
            let reps = (0..3u32).map(|i| {
                let mut cfg = Config::new(4, i, LAB);
                cfg.mutation = mutation;
                Replica::new(cfg, SimCrypto::new(1, 4, i), Durable::default())
            });
            Self { reps: reps.collect(), queue: Vec::new(), delivered: vec![Vec::new(); 3], said: SaidLog::new(4) }
        }

        fn absorb(&mut self, from: u32, s: Step<SimSig, SimSig>) {
            for (t, m) in s.messages {
                self.said.record(from, &m);
                match t {
                    Target::All => {
                        for to in (0..4u32).filter(|&to| to != from) {
                            self.queue.push((from, to, m.clone()));
                        }
                    }
                    Target::One(to) => self.queue.push((from, to, m)),
                }
            }
            self.delivered[from as usize].extend(s.delivered);
        }

        fn hand(&mut self, from: u32, to: u32, m: Msg) {
            self.said.received(to, from, &m);
            let s = self.reps[to as usize].handle_message(from, m);
            self.absorb(to, s);
        }

        fn pump(&mut self, pass: impl Fn(u32, u32, &Msg) -> bool) {
            while let Some(i) = self.queue.iter().position(|(f, t, m)| *t != 3 && pass(*f, *t, m)) {
                let (from, to, m) = self.queue.remove(i);
                self.hand(from, to, m);
            }
        }

        /// Delivers the first queued vote of `from` to `to` in agreement 3
        /// with this round that `pass` selects, if there is one.
        fn one(&mut self, from: u32, to: u32, round: u32, pass: impl Fn(&AbaVote<SimSig>) -> bool) -> bool {
            let found = self.queue.iter().position(|(f, t, m)| {
                *f == from
                    && *t == to
                    && matches!(m, Message::Aba { instance: 3, round: r, vote, .. } if *r == round && pass(vote))
            });
            let Some(i) = found else {
                return false;
            };
            let (from, to, m) = self.queue.remove(i);
            self.hand(from, to, m);
            true
        }

        fn z(&mut self, to: u32, round: u32, vote: AbaVote<SimSig>) {
            self.hand(3, to, Message::Aba { epoch: 0, instance: 3, round, vote });
        }
    }

    fn inst3(m: &Msg) -> bool {
        matches!(m, Message::Aba { instance: 3, .. })
    }

    /// Runs the schedule; returns the lab after a fair ending.
    fn schedule(mutation: Option<Mutation>) -> Lab {
        let (a, b, c) = (0u32, 1u32, 2u32);
        let mut lab = Lab::new(mutation);
        for i in 0..3u32 {
            let s = lab.reps[i as usize].start();
            lab.absorb(i, s);
            let s = lab.reps[i as usize].propose(0, vec![format!("tx of {i}").into_bytes()]);
            lab.absorb(i, s);
        }
        let zb = Batch::new(vec![b"tx of 3".to_vec()]);
        let digest = zb.digest(&LAB, 0, 3);
        lab.hand(3, a, Message::Val { epoch: 0, batch: zb.clone() });
        lab.hand(3, b, Message::Val { epoch: 0, batch: zb });
        let stmt = echo_statement(&LAB, 0, 3, &digest);
        let mut shares: Vec<(u32, SimSig)> = lab
            .queue
            .iter()
            .filter_map(|(f, t, m)| match m {
                Message::Echo { proposer: 3, share, .. } if *t == 3 => Some((*f, share.clone())),
                _ => None,
            })
            .collect();
        shares.push((3, SimCrypto::new(1, 4, 3).sign_share(KeyUse::Cert, &stmt)));
        let sig = SimCrypto::new(1, 4, 3).combine(KeyUse::Cert, &stmt, &shares).expect("three shares");
        lab.hand(3, a, Message::Cert { epoch: 0, proposer: 3, digest, sig });
        let held_for_b = |to: u32, m: &Msg| {
            to == 1 && matches!(m, Message::Aba { instance: 0..=2, vote: AbaVote::Conf(_) | AbaVote::Term(_), .. })
        };
        lab.pump(|_, t, m| !inst3(m) && !held_for_b(t, m));
        // Proposer 3's agreement: replica 0 decides 1 in round 0; replicas
        // 1 and 2 leave round 0 with vals {0, 1} and estimate 1.
        lab.z(b, 0, AbaVote::BVal(true));
        lab.z(b, 0, AbaVote::BVal(false));
        lab.one(a, b, 0, |v| *v == AbaVote::BVal(true));
        lab.z(a, 0, AbaVote::BVal(true));
        lab.one(b, a, 0, |v| *v == AbaVote::BVal(true));
        lab.z(a, 0, AbaVote::Aux(true));
        lab.one(b, a, 0, |v| matches!(v, AbaVote::Aux(_)));
        lab.z(b, 0, AbaVote::Aux(true));
        lab.one(a, b, 0, |v| matches!(v, AbaVote::Aux(_)));
        lab.z(a, 0, AbaVote::Conf(2));
        lab.one(b, a, 0, |v| matches!(v, AbaVote::Conf(_)));
        lab.one(c, b, 0, |v| *v == AbaVote::BVal(false));
        lab.z(c, 0, AbaVote::BVal(true));
        lab.one(a, c, 0, |v| *v == AbaVote::BVal(true));
        lab.z(c, 0, AbaVote::BVal(false));
        lab.one(b, c, 0, |v| *v == AbaVote::BVal(false));
        lab.one(a, c, 0, |v| matches!(v, AbaVote::Aux(_)));
        lab.one(b, c, 0, |v| matches!(v, AbaVote::Aux(_)));
        lab.one(a, c, 0, |v| matches!(v, AbaVote::Conf(_)));
        lab.one(b, c, 0, |v| matches!(v, AbaVote::Conf(_)));
        lab.one(c, b, 0, |v| matches!(v, AbaVote::Conf(_)));
        lab.z(b, 0, AbaVote::Conf(3));
        // Replica 1's delayed votes: the ACS rule's input 0 reaches proposer
        // 3's agreement in round 1.
        lab.pump(|_, t, m| held_for_b(t, m));
        lab.z(b, 1, AbaVote::BVal(false));
        lab.z(c, 1, AbaVote::BVal(false));
        lab.one(b, c, 1, |v| *v == AbaVote::BVal(false));
        lab.one(c, b, 1, |v| *v == AbaVote::BVal(false));
        lab.z(b, 1, AbaVote::Aux(false));
        lab.z(c, 1, AbaVote::Aux(false));
        lab.one(c, b, 1, |v| matches!(v, AbaVote::Aux(_)));
        lab.one(b, c, 1, |v| matches!(v, AbaVote::Aux(_)));
        lab.z(c, 1, AbaVote::Conf(1));
        lab.one(b, c, 1, |v| matches!(v, AbaVote::Conf(_)));
        lab.pump(|_, _, _| true);
        lab
    }

    fn epoch0(lab: &Lab) -> Vec<Option<Vec<u32>>> {
        lab.delivered
            .iter()
            .map(|d| d.iter().find(|x| x.epoch == 0).map(|x| x.decision.iter().map(|(p, _)| *p).collect()))
            .collect()
    }

    #[test]
    fn accepted_late_input_forks_the_scripted_schedule() {
        let lab = schedule(Some(Mutation::AcceptLateInput));
        let late: Vec<&(u32, Slot)> =
            lab.said.twice.iter().filter(|(i, s)| *i == 1 && matches!(s, Slot::BVal { round: 1, .. })).collect();
        assert!(!late.is_empty(), "the safety record missed replica 1's late BVal: {:?}", lab.said.twice);
        let d = epoch0(&lab);
        let made: Vec<&Vec<u32>> = d.iter().flatten().collect();
        assert!(made.windows(2).any(|w| w[0] != w[1]), "the planted bug forks epoch 0 here: {d:?}");
        // The control: the same schedule without the bug.
        let lab = schedule(None);
        assert!(lab.said.twice.is_empty(), "control: {:?}", lab.said.twice);
        let d = epoch0(&lab);
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
