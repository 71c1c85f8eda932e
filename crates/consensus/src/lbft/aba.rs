//! Asynchronous binary agreement with a threshold common coin: the
//! Mostéfaoui–Moumen–Raynal protocol (PODC 2014) with the `Conf` phase
//! (Crain et al.) that keeps an adversarial scheduler from steering it
//! once it sees the coin, and `Term` messages that let a replica that
//! decided stop while still counting for the others — the variant
//! HoneyBadgerBFT runs.
//!
//! Any `n`, with `f = ⌊(n − 1) / 3⌋` ([`super::faults`]): `BVal` values
//! enter `bin_values` on `n − f` backers, and the `Aux` and `Conf` waits
//! are `n − f` ([`super::quorum`]; `2f + 1` when `n = 3f + 1`). Two sets of
//! `n − f` share a correct replica (`n − 2f ≥ f + 1`), so two correct
//! replicas' `Aux`/`Conf` quorums of a round hold a common correct vote;
//! a value accepted on `n − f` has `n − 2f ≥ f + 1` correct backers, so
//! every correct replica relays it and accepts it too; and the `n − f`
//! correct replicas reach each quorum alone. `f + 1` stays where one
//! correct replica is enough: the `BVal` relay and the `Term` decision.
//!
//! One instance per (epoch, proposer) of the leaderless broadcast; it is a
//! plain state machine that returns the votes to broadcast and leaves
//! signing and verifying coin shares to its caller through [`CoinOracle`].

use std::collections::{BTreeMap, BTreeSet};

use super::messages::AbaVote;

/// Values as a two-bit set.
const fn bit(b: bool) -> u8 {
    if b {
        2
    } else {
        1
    }
}

/// What this replica said in one round of one agreement: the `BVal`
/// values (as a two-bit set), its `Aux` and its `Conf`. Durable: a
/// restarted replica that replays the agreement says the same again
/// ([`Aba::replay`]: every recorded `BVal` value at once, input or not;
/// its estimate for the round is one of them; its `Aux` and `Conf` wait
/// until the recorded ones are valid again), so it takes part at once
/// instead of only observing, and never says two different things in one
/// slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Said {
    pub bval: u8,
    pub aux: Option<bool>,
    pub conf: Option<u8>,
}

impl Said {
    /// Adds `vote` (one this replica sends); `true` if it is new.
    pub fn add<S>(&mut self, vote: &AbaVote<S>) -> bool {
        let before = *self;
        match vote {
            AbaVote::BVal(b) => self.bval |= bit(*b),
            AbaVote::Aux(b) => self.aux = self.aux.or(Some(*b)),
            AbaVote::Conf(c) => self.conf = self.conf.or(Some(*c)),
            AbaVote::Coin(_) | AbaVote::Term(_) => {}
        }
        *self != before
    }
}

/// How the agreement flips its coin: the caller signs and checks shares.
pub trait CoinOracle<S> {
    /// This replica's share of the coin of `round`.
    fn share(&mut self, round: u32) -> S;
    /// The coin of `round` from these shares (at least the coin threshold,
    /// from distinct signers), or the signers whose share is bad.
    fn flip(&mut self, round: u32, shares: &BTreeMap<u32, S>) -> Result<bool, Vec<u32>>;
    /// How many shares flip a coin.
    fn threshold(&self) -> usize;
    /// A coin fixed in advance for `round` (no shares exchanged), or
    /// `None` for the threshold coin. Safety never rests on the coin
    /// (agreement and validity hold whatever its values); termination
    /// needs an unpredictable coin only in some rounds, so a schedule
    /// such as HoneyBadgerBFT's (`true`, `false`, threshold, repeating)
    /// decides the common case — every correct replica with the same
    /// input — in round 0 without one signature share.
    fn fixed(&self, _round: u32) -> Option<bool> {
        None
    }
}

/// Misbehaviour an instance saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbaFault {
    /// A second, different vote of one kind in one round.
    DoubleVote { from: u32, round: u32, what: &'static str },
    /// A coin share that did not verify.
    BadCoinShare { from: u32, round: u32 },
    /// A `Conf` carrying no value or bits beyond the two values.
    BadConf { from: u32, round: u32 },
}

#[derive(Default)]
struct Round<S> {
    bval: [BTreeSet<u32>; 2],
    bval_sent: [bool; 2],
    bin_values: u8,
    aux: BTreeMap<u32, bool>,
    aux_sent: bool,
    conf: BTreeMap<u32, u8>,
    conf_sent: bool,
    /// `vals` fixed when `n − f` confirmations arrived.
    vals: Option<u8>,
    coin_shares: BTreeMap<u32, S>,
    /// Senders whose coin share of this round did not verify: their later
    /// shares here are ignored.
    bad_coin: BTreeSet<u32>,
    coin_sent: bool,
    coin: Option<bool>,
}

impl<S> Round<S> {
    fn new() -> Self {
        Round {
            bval: [BTreeSet::new(), BTreeSet::new()],
            bval_sent: [false; 2],
            bin_values: 0,
            aux: BTreeMap::new(),
            aux_sent: false,
            conf: BTreeMap::new(),
            conf_sent: false,
            vals: None,
            coin_shares: BTreeMap::new(),
            bad_coin: BTreeSet::new(),
            coin_sent: false,
            coin: None,
        }
    }
}

/// What one input to an instance produced.
pub struct AbaStep<S> {
    /// Votes to broadcast, with their round.
    pub votes: Vec<(u32, AbaVote<S>)>,
    pub faults: Vec<AbaFault>,
}

impl<S> Default for AbaStep<S> {
    fn default() -> Self {
        Self { votes: Vec::new(), faults: Vec::new() }
    }
}

/// One binary agreement instance.
pub struct Aba<S> {
    n: usize,
    f: usize,
    me: u32,
    /// Observes without voting (a replica that restarted inside this epoch
    /// and may have voted before; it still decides and sends `Term`).
    mute: bool,
    /// What this replica said before a restart, per round ([`Said`]).
    prior: BTreeMap<u32, Said>,
    round: u32,
    est: Option<bool>,
    input_given: bool,
    /// The recorded `BVal` values ([`Aba::with_prior`]) were said again.
    replayed: bool,
    /// Takes an input in any round (mutation testing only, see
    /// [`Aba::accept_late_input`]).
    late_input: bool,
    decided: Option<bool>,
    term_sent: bool,
    terms: [BTreeSet<u32>; 2],
    rounds: BTreeMap<u32, Round<S>>,
    /// Rounds beyond the current one whose votes are kept.
    lookahead: u32,
    /// `n − f` (Aux and Conf waits), `n − f` (into bin_values), `f + 1`
    /// (BVal relay); planted bugs lower the first two.
    quorum: usize,
    accept: usize,
    amplify: usize,
}

impl<S: Clone + PartialEq> Aba<S> {
    pub fn new(n: usize, me: u32, mute: bool) -> Self {
        let f = super::faults(n);
        Self {
            n,
            f,
            me,
            mute,
            prior: BTreeMap::new(),
            round: 0,
            est: None,
            input_given: false,
            replayed: false,
            late_input: false,
            decided: None,
            term_sent: false,
            terms: [BTreeSet::new(), BTreeSet::new()],
            rounds: BTreeMap::new(),
            lookahead: 4,
            quorum: super::quorum(n),
            accept: super::quorum(n),
            amplify: f + 1,
        }
    }

    /// Restores what this replica said before a restart ([`Said`]).
    pub fn with_prior(mut self, prior: BTreeMap<u32, Said>) -> Self {
        self.prior = prior;
        self
    }

    /// The estimate for `round`: `v`, unless this replica said `BVal` of
    /// the other value only in that round before a restart.
    fn prior_est(&self, round: u32, v: bool) -> bool {
        match self.prior.get(&round) {
            Some(s) if s.bval != 0 && s.bval & bit(v) == 0 => s.bval == bit(true),
            _ => v,
        }
    }

    /// Lowers both quorums by one (mutation testing only).
    pub fn weaken_quorums(&mut self) {
        self.quorum = self.quorum.saturating_sub(1).max(1);
        self.accept = self.accept.saturating_sub(1).max(1);
    }

    /// Sets both quorums to `2f + 1` whatever `n` is (mutation testing
    /// only, [`super::Mutation::ThirdsQuorum`]).
    pub fn thirds_quorums(&mut self) {
        self.quorum = 2 * self.f + 1;
        self.accept = 2 * self.f + 1;
    }

    /// Takes an input in any round, beside the estimate (mutation testing
    /// only: the bug [`Aba::input`] refuses).
    pub fn accept_late_input(&mut self) {
        self.late_input = true;
    }

    /// Whether an input is still taken: only in round 0 before any
    /// estimate (HoneyBadgerBFT's `can_propose`). From round 1 on a
    /// correct replica's `BVal` is its estimate or a relay of `f + 1`;
    /// a value decided in round `r` is every correct replica's estimate in
    /// round `r + 1`, so the other value never gets more than `f` backers
    /// there — unless a late input adds it.
    pub fn can_input(&self) -> bool {
        self.decided.is_none() && !self.input_given && (self.late_input || (self.round == 0 && self.est.is_none()))
    }

    pub fn decided(&self) -> Option<bool> {
        self.decided
    }

    pub fn input_given(&self) -> bool {
        self.input_given
    }

    pub fn round(&self) -> u32 {
        self.round
    }

    /// A one-line summary of the instance's state, for diagnostics.
    pub fn summary(&self) -> String {
        let cur = self.rounds.get(&self.round).map(|rs| {
            format!(
                "bval0={} bval1={} sent={:?} bin={} aux={} conf={} vals={:?} coin_shares={} coin={:?}",
                rs.bval[0].len(),
                rs.bval[1].len(),
                rs.bval_sent,
                rs.bin_values,
                rs.aux.len(),
                rs.conf.len(),
                rs.vals,
                rs.coin_shares.len(),
                rs.coin
            )
        });
        format!(
            "r{} est={:?} input={} decided={:?} terms={}/{} later_rounds={:?} [{}]",
            self.round,
            self.est,
            self.input_given,
            self.decided,
            self.terms[0].len(),
            self.terms[1].len(),
            self.rounds.keys().filter(|&&r| r > self.round).collect::<Vec<_>>(),
            cur.unwrap_or_default()
        )
    }

    /// Proposes `value`: once, and only while [`Aba::can_input`] (in
    /// round 0, before any estimate); later inputs are ignored. Says the
    /// recorded statements again first ([`Aba::replay`]).
    pub fn input(&mut self, value: bool, coin: &mut dyn CoinOracle<S>) -> AbaStep<S> {
        let mut step = AbaStep::default();
        self.replay_into(&mut step);
        if !self.can_input() {
            self.progress(coin, &mut step);
            return step;
        }
        self.input_given = true;
        let value = self.prior_est(self.round, value);
        self.est = Some(value);
        let r = self.round;
        self.send_bval(r, value, &mut step);
        self.progress(coin, &mut step);
        step
    }

    /// Says again, once, every `BVal` value this replica recorded before a
    /// restart ([`Aba::with_prior`]), in every recorded round — not only
    /// the one its new input or estimate picks: the others may need each
    /// of them to bring the value into `bin_values` again (where a
    /// recorded `Aux` waits for it), and after `f + 1` or all replicas
    /// restart nobody else says them. The recorded `Aux` and `Conf` follow
    /// once valid again (never a different one). Needs no input: a
    /// restarted replica without a certificate or an ACS input takes part
    /// at once.
    pub fn replay(&mut self, coin: &mut dyn CoinOracle<S>) -> AbaStep<S> {
        let mut step = AbaStep::default();
        self.replay_into(&mut step);
        self.progress(coin, &mut step);
        step
    }

    fn replay_into(&mut self, step: &mut AbaStep<S>) {
        if self.replayed || self.decided.is_some() {
            return;
        }
        self.replayed = true;
        let recorded: Vec<(u32, u8)> =
            self.prior.iter().filter(|(r, _)| **r >= self.round).map(|(r, s)| (*r, s.bval)).collect();
        for (round, bits) in recorded {
            for b in [false, true] {
                if bits & bit(b) != 0 {
                    self.send_bval(round, b, step);
                }
            }
        }
    }

    /// A vote from `from` (not this replica).
    pub fn handle(&mut self, from: u32, round: u32, vote: AbaVote<S>, coin: &mut dyn CoinOracle<S>) -> AbaStep<S> {
        let mut step = AbaStep::default();
        if from as usize >= self.n || from == self.me {
            return step;
        }
        self.replay_into(&mut step);
        if let AbaVote::Term(b) = vote {
            self.terms[b as usize].insert(from);
            if self.decided.is_none() && self.terms[b as usize].len() > self.f {
                // f + 1 replicas decided b: one of them is correct.
                self.decide(b, &mut step);
                return step;
            }
            self.progress(coin, &mut step);
            return step;
        }
        if self.decided.is_some() || round < self.round || round > self.round + self.lookahead {
            return step;
        }
        self.record(from, round, vote, &mut step);
        self.progress(coin, &mut step);
        step
    }

    fn record(&mut self, from: u32, round: u32, vote: AbaVote<S>, step: &mut AbaStep<S>) {
        let rs = self.rounds.entry(round).or_insert_with(Round::new);
        match vote {
            AbaVote::BVal(b) => {
                rs.bval[b as usize].insert(from);
            }
            AbaVote::Aux(b) => match rs.aux.get(&from) {
                Some(&prev) if prev != b => step.faults.push(AbaFault::DoubleVote { from, round, what: "aux" }),
                Some(_) => {}
                None => {
                    rs.aux.insert(from, b);
                }
            },
            AbaVote::Conf(set) => {
                if set == 0 || set > 3 {
                    step.faults.push(AbaFault::BadConf { from, round });
                    return;
                }
                match rs.conf.get(&from) {
                    Some(&prev) if prev != set => step.faults.push(AbaFault::DoubleVote { from, round, what: "conf" }),
                    Some(_) => {}
                    None => {
                        rs.conf.insert(from, set);
                    }
                }
            }
            AbaVote::Coin(share) => {
                if rs.coin.is_none() && !rs.bad_coin.contains(&from) {
                    rs.coin_shares.entry(from).or_insert(share);
                }
            }
            AbaVote::Term(_) => {}
        }
    }

    fn send_bval(&mut self, round: u32, b: bool, step: &mut AbaStep<S>) {
        let me = self.me;
        let mute = self.mute;
        let rs = self.rounds.entry(round).or_insert_with(Round::new);
        if rs.bval_sent[b as usize] {
            return;
        }
        rs.bval_sent[b as usize] = true;
        if mute {
            return;
        }
        rs.bval[b as usize].insert(me);
        step.votes.push((round, AbaVote::BVal(b)));
    }

    fn decide(&mut self, b: bool, step: &mut AbaStep<S>) {
        if self.decided.is_none() {
            self.decided = Some(b);
        }
        if !self.term_sent {
            self.term_sent = true;
            self.terms[b as usize].insert(self.me);
            step.votes.push((self.round, AbaVote::Term(b)));
        }
        self.rounds.clear();
    }

    /// Moves the current round as far as the votes allow.
    fn progress(&mut self, coin: &mut dyn CoinOracle<S>, step: &mut AbaStep<S>) {
        while self.decided.is_none() {
            let r = self.round;
            let (me, mute) = (self.me, self.mute);
            let (quorum, accept, amplify) = (self.quorum, self.accept, self.amplify);
            let prior = self.prior.get(&r).copied().unwrap_or_default();
            let terms = self.terms.clone();
            self.rounds.entry(r).or_insert_with(Round::new);
            // BVal: relay on f + 1, accept into bin_values on n − f.
            for b in [false, true] {
                let rs = self.rounds.get(&r).expect("inserted above");
                let count = rs.bval[b as usize].union(&terms[b as usize]).count();
                if count >= amplify && !rs.bval_sent[b as usize] {
                    self.send_bval(r, b, step);
                }
                let rs = self.rounds.get_mut(&r).expect("inserted above");
                let count = rs.bval[b as usize].union(&terms[b as usize]).count();
                if count >= accept && rs.bin_values & bit(b) == 0 {
                    rs.bin_values |= bit(b);
                    // After a restart: the recorded `Aux` once its value is in.
                    if !rs.aux_sent && prior.aux.is_none_or(|a| a == b) {
                        rs.aux_sent = true;
                        if !mute {
                            rs.aux.insert(me, b);
                            step.votes.push((r, AbaVote::Aux(b)));
                        }
                    }
                }
            }
            let rs = self.rounds.get_mut(&r).expect("inserted above");
            if rs.bin_values == 0 || !rs.aux_sent {
                return;
            }
            // Aux: n − f votes for values in bin_values → Conf(bin_values).
            if !rs.conf_sent {
                let mut senders: BTreeSet<u32> =
                    rs.aux.iter().filter(|(_, &b)| rs.bin_values & bit(b) != 0).map(|(s, _)| *s).collect();
                for b in [false, true] {
                    if rs.bin_values & bit(b) != 0 {
                        senders.extend(terms[b as usize].iter().copied());
                    }
                }
                if senders.len() < quorum {
                    return;
                }
                // After a restart: the recorded `Conf` once it is within
                // `bin_values` again.
                let set = prior.conf.unwrap_or(rs.bin_values);
                if set & !rs.bin_values != 0 {
                    return;
                }
                rs.conf_sent = true;
                if !mute {
                    rs.conf.insert(me, set);
                    step.votes.push((r, AbaVote::Conf(set)));
                }
            }
            // Conf: n − f sets within bin_values fix vals; release the coin.
            if rs.vals.is_none() {
                let mut count = 0;
                let mut union = 0u8;
                let mut counted = BTreeSet::new();
                for (s, set) in &rs.conf {
                    if set & !rs.bin_values == 0 {
                        count += 1;
                        union |= set;
                        counted.insert(*s);
                    }
                }
                for b in [false, true] {
                    if rs.bin_values & bit(b) != 0 {
                        for s in &terms[b as usize] {
                            if counted.insert(*s) {
                                count += 1;
                                union |= bit(b);
                            }
                        }
                    }
                }
                if count < quorum {
                    return;
                }
                rs.vals = Some(union);
            }
            if rs.coin.is_none() && !rs.coin_sent {
                if let Some(c) = coin.fixed(r) {
                    rs.coin_sent = true;
                    rs.coin = Some(c);
                }
            }
            if !rs.coin_sent {
                rs.coin_sent = true;
                let share = coin.share(r);
                rs.coin_shares.insert(me, share.clone());
                step.votes.push((r, AbaVote::Coin(share)));
            }
            if rs.coin.is_none() {
                if rs.coin_shares.len() < coin.threshold() {
                    return;
                }
                match coin.flip(r, &rs.coin_shares) {
                    Ok(c) => rs.coin = Some(c),
                    Err(bad) => {
                        for from in bad {
                            rs.coin_shares.remove(&from);
                            rs.bad_coin.insert(from);
                            step.faults.push(AbaFault::BadCoinShare { from, round: r });
                        }
                        return;
                    }
                }
            }
            let (Some(vals), Some(c)) = (rs.vals, rs.coin) else {
                return;
            };
            let next = if vals == bit(false) || vals == bit(true) {
                let b = vals == bit(true);
                if b == c {
                    self.decide(b, step);
                    return;
                }
                b
            } else {
                c
            };
            let next = self.prior_est(r + 1, next);
            self.est = Some(next);
            self.rounds.remove(&r);
            self.round = r + 1;
            self.send_bval(r + 1, next, step);
        }
    }
}
