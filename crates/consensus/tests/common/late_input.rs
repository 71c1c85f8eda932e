//! Attack round 2's [1c] schedule: a late agreement input, three correct
//! replicas (0, 1, 2) of `n = 4` and a Byzantine proposer 3 whose messages
//! the test writes, every message delivered by hand. Used by the attack's
//! own test (`attack_lbft_r2`: no fork without a planted bug) and by the
//! mutation check (`lbft_mutants`: the planted `AcceptLateInput` forks it).
//!
//! Replica 0 gets proposer 3's certificate (input 1); replica 2 gives
//! input 0 by the ACS rule; replica 1 runs proposer 3's agreement into
//! round 1 on the others' votes, and its ACS input 0 arrives there late
//! (its last votes of the other three agreements were delayed). With the
//! late input accepted, replica 0 decides 1 in round 0 and delivers epoch 0
//! with proposer 3's batch while replica 2 decides 0 in round 1 and
//! delivers it without: a fork of the delivered sequence among correct
//! replicas with one Byzantine replica of four.

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::sim::SaidLog;
use gridledger_consensus::lbft::{
    echo_statement, AbaVote, Batch, Config, Delivery, Durable, KeyUse, Message, Replica, SimCrypto, Step, Target,
    ThresholdCrypto,
};
use gridledger_core::Hash32;

pub const LAB: Hash32 = Hash32([0x3c; 32]);

pub type Msg = Message<SimSig, SimSig>;

/// The three correct replicas; every message a correct replica sends waits
/// in `queue` until the schedule delivers it. `said` is the simulator's
/// safety record, fed what each replica sends and receives.
pub struct Lab {
    pub reps: Vec<Replica<SimCrypto>>,
    pub queue: Vec<(u32, u32, Msg)>,
    pub delivered: Vec<Vec<Delivery>>,
    pub said: SaidLog,
}

impl Lab {
    /// The correct replicas, each with its `Config` passed through
    /// `tweak` (the mutation check plants its bug there).
    pub fn new(tweak: fn(&mut Config)) -> Self {
        let reps = (0..3u32).map(|i| {
            let mut cfg = Config::new(4, i, LAB);
            tweak(&mut cfg);
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

    /// `m` from `from` reaches correct replica `to`.
    fn hand(&mut self, from: u32, to: u32, m: Msg) {
        self.said.received(to, from, &m);
        let s = self.reps[to as usize].handle_message(from, m);
        self.absorb(to, s);
    }

    /// Delivers queued messages to the correct replicas that `pass`
    /// selects, until none is left.
    fn pump(&mut self, pass: impl Fn(u32, u32, &Msg) -> bool) {
        while let Some(i) = self.queue.iter().position(|(f, t, m)| *t != 3 && pass(*f, *t, m)) {
            let (from, to, m) = self.queue.remove(i);
            self.hand(from, to, m);
        }
    }

    /// Delivers the first queued vote of `from` to `to` in agreement 3
    /// with this round that `pass` selects; panics if there is none (a
    /// step every variant of the replica takes).
    fn one(&mut self, from: u32, to: u32, round: u32, pass: impl Fn(&AbaVote<SimSig>) -> bool) {
        assert!(self.maybe(from, to, round, pass), "no such message from {from} to {to} in round {round}");
    }

    /// As [`Lab::one`], if such a vote was sent (a replica that refuses
    /// the late input does not send it: what was not sent cannot be
    /// delivered); `true` if one was delivered.
    fn maybe(&mut self, from: u32, to: u32, round: u32, pass: impl Fn(&AbaVote<SimSig>) -> bool) -> bool {
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

    /// A vote of the Byzantine replica 3 in its own agreement (3) to `to`.
    fn z(&mut self, to: u32, round: u32, vote: AbaVote<SimSig>) {
        self.hand(3, to, Message::Aba { epoch: 0, instance: 3, round, vote });
    }

    /// The proposers of each correct replica's delivered epoch 0 (`None`:
    /// not delivered).
    pub fn epoch0(&self) -> Vec<Option<Vec<u32>>> {
        self.delivered
            .iter()
            .map(|d| d.iter().find(|x| x.epoch == 0).map(|x| x.decision.iter().map(|(p, _)| *p).collect()))
            .collect()
    }
}

fn inst3(m: &Msg) -> bool {
    matches!(m, Message::Aba { instance: 3, .. })
}

/// Runs the schedule with replicas built through `tweak`; returns the lab
/// after a fair ending (replica 3 falls silent, every queued message is
/// delivered).
pub fn schedule(tweak: fn(&mut Config)) -> Lab {
    let (a, b, c) = (0u32, 1u32, 2u32);
    let mut lab = Lab::new(tweak);
    for i in 0..3u32 {
        let s = lab.reps[i as usize].start();
        lab.absorb(i, s);
        let s = lab.reps[i as usize].propose(0, vec![format!("tx of {i}").into_bytes()]);
        lab.absorb(i, s);
    }
    // The Byzantine proposer's batch reaches replicas 0 and 1; with their
    // echo shares and its own it forms a certificate and sends it to
    // replica 0 only.
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
    // The other three agreements run among the correct replicas; replica
    // 1's last votes there (the others' Conf and Term) are delayed.
    let held_for_b = |to: u32, m: &Msg| {
        to == 1 && matches!(m, Message::Aba { instance: 0..=2, vote: AbaVote::Conf(_) | AbaVote::Term(_), .. })
    };
    lab.pump(|_, t, m| !inst3(m) && !held_for_b(t, m));
    // Proposer 3's agreement: replica 0 decides 1 in round 0; replicas 1
    // and 2 leave round 0 with vals {0, 1} and estimate 1.
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
    // Replica 1's delayed votes arrive: the ACS rule gives input 0 to
    // proposer 3's agreement, which is in round 1 here.
    lab.pump(|_, t, m| held_for_b(t, m));
    lab.z(b, 1, AbaVote::BVal(false));
    lab.z(c, 1, AbaVote::BVal(false));
    lab.maybe(b, c, 1, |v| *v == AbaVote::BVal(false));
    lab.maybe(c, b, 1, |v| *v == AbaVote::BVal(false));
    lab.z(b, 1, AbaVote::Aux(false));
    lab.z(c, 1, AbaVote::Aux(false));
    lab.maybe(c, b, 1, |v| matches!(v, AbaVote::Aux(_)));
    lab.maybe(b, c, 1, |v| matches!(v, AbaVote::Aux(_)));
    lab.z(c, 1, AbaVote::Conf(1));
    lab.maybe(b, c, 1, |v| matches!(v, AbaVote::Conf(_)));
    // From here the network is fair (replica 3 falls silent).
    lab.pump(|_, _, _| true);
    lab
}
