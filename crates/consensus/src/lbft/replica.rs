//! The LBFT replica: P^ABC of thesis §4.2.1 as a deterministic sans-IO
//! state machine (DESIGN principle 1).
//!
//! Per epoch every replica proposes one batch through a certificate-based
//! broadcast (`Val` → `Echo` shares to the proposer → `Cert`, `n − f`
//! shares combined — on nodes `n − f` Ed25519 signed echoes, a
//! multi-signature: see [`super::crypto`]; every quorum is `n − f`, see
//! [`super::quorum`]), and a HoneyBadger-style asynchronous common subset
//! orders the certified batches: one binary agreement per proposer, input
//! 1 on holding its certificate, input 0 to the rest once `n − f`
//! agreements decided 1 — each only while its agreement is still in round
//! 0 without an estimate ([`Aba::can_input`]; a later input is dropped).
//! The epoch delivers the accepted batches in proposer order, keeping the
//! earliest occurrence of a duplicated transaction.
//!
//! Why ACS and not a Dumbo MVBA: the certificate already makes each
//! accepted batch available and unique (two certificates for one slot need
//! a correct replica to echo twice), so ACS's per-proposer agreements are
//! all that is left; they are simple, independent state machines that the
//! simulator explores well, and for the `n ≤ 16` replicas the benchmarks
//! run the `n` agreements cost less than MVBA's extra broadcast layers.
//! The price is `O(n)` agreements per epoch, which Dumbo avoids for large
//! `n`.
//!
//! Crash recovery: a step's [`PersistOp`]s go to disk atomically before its
//! messages leave — all of them, or (a driver's choice) those that commit
//! the replica to something new ([`Replica::must_sync_before_sending`]),
//! the rest leaving at once. The durable state is the delivered log (certificates
//! and batches), its own proposals, and the statements it made in the
//! epochs not yet delivered: each echo of another replica's batch
//! ([`PersistOp::Echoed`]) and, per agreement round, its `BVal` values,
//! `Aux` and `Conf` ([`PersistOp::Voted`], see [`Said`]). A restarted
//! replica replays them: it echoes the same digest again and no other,
//! says every recorded `BVal` value again at its start (input or not:
//! after `f + 1` or all replicas restart, those values may be needed to
//! make a recorded `Aux` valid again, and a certificate or ACS input may
//! never come), takes one of them as its estimate of a round, and sends
//! its recorded `Aux` and `Conf` again once they are valid in the round
//! again — so it takes part at once (a mute restarted replica
//! stalled the agreements once `f + 1` of them were mute in one epoch)
//! and never says two different things in one slot. Coin shares are
//! deterministic and `Term`s follow the agreement's decision. Its own
//! proposal is durable before its first echo, so it is the same batch
//! after a restart. Lagging replicas catch up from delivered epochs that
//! `f + 1` replicas report alike, adopting a copy whose certificates
//! verify. (Logs of older versions hold a bound instead,
//! [`PersistOp::VotedIn`]: epochs up to it are only observed.)
//!
//! Writes: only a step that says something new writes (a new echo, a new
//! value in an agreement round); a step that re-sends or only observes
//! writes nothing, and the records go in the same transaction as the
//! step's delivery, if any. The records of an epoch are dropped with its
//! delivery.
//!
//! Overlapped epochs ([`Config::pipeline`] > 0, as HoneyBadgerBFT and
//! aleph-bft pipeline theirs): once this replica's batch for epoch `k` is
//! certified it proposes for `k + 1` (up to `pipeline` epochs beyond the
//! current one) while `k`'s agreements still run. Why that is safe:
//! - every statement (batch digest, echo share, coin share) binds
//!   `(instance, epoch, proposer)`, so the epochs' broadcasts and
//!   agreements are independent instances; running them at once changes
//!   no quorum and no vote of any one of them;
//! - a replica already takes part in epochs up to `window` ahead (it
//!   echoes their batches and votes on their certificates), so proposing
//!   early adds only its own broadcast, under the same durable rules:
//!   the proposal is persisted before it is sent, echoes are given once
//!   per `(epoch, proposer)` ever, every echo and vote is recorded in
//!   the step that sends it, and a delivered epoch keeps later epochs'
//!   records;
//! - delivery stays strictly sequential ([`Replica`] delivers only its
//!   current epoch; a later epoch that finished first waits), and
//!   duplicate suppression runs at delivery, so total order and
//!   "earliest occurrence wins" are unchanged;
//! - the ACS's vote-0 rule still runs only in the current epoch, so a
//!   batch proposed ahead gets at least the chance it had before.
//!
//! What it costs: a transaction proposed in `k + 1` that `k` also
//! delivered is a duplicate (removed at delivery), as with `τ > 1`.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use gridledger_core::Hash32;

use super::aba::{Aba, AbaFault, AbaStep, CoinOracle, Said};
use super::batch::{IdSet, Tx};
use super::crypto::{KeyUse, ThresholdCrypto};
use super::messages::*;

/// Tuning knobs. Durations are logical ticks; the driver maps them to time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub n: usize,
    pub me: u32,
    /// Binds every digest and share to this chain.
    pub instance: Hash32,
    /// Bounds on one proposal; larger proposals are truncated (own) or
    /// refused (others').
    pub max_batch_txs: usize,
    pub max_tx_bytes: usize,
    /// Epochs ahead of the current one whose messages are processed.
    pub window: u64,
    /// Without progress for this long: retransmit, fetch, ask to sync.
    pub tick: u64,
    /// Delivered epochs kept in memory to serve catch-up.
    pub retain: usize,
    /// Delivered epochs per sync answer.
    pub sync_batch: usize,
    /// Transaction ids remembered for duplicate suppression, in epochs. A
    /// duplicate older than this is delivered again (the ledger's nonces
    /// still refuse to execute it twice).
    pub dedup_epochs: u64,
    /// Epochs beyond the current one this replica may propose for while
    /// the current one's agreement finishes (0: propose in the current
    /// epoch only). Capped at `window − 1`. See [`Replica`]'s docs on
    /// overlapped epochs for why this is safe.
    pub pipeline: u64,
    /// Keep every coin flipped ([`Replica::coins`]): for the simulator's
    /// check that the threshold coin is common; unbounded, off by default.
    pub record_coins: bool,
    /// The agreements' coin schedule: `true` (default) fixes the coin of
    /// rounds `3k` to 1 and `3k + 1` to 0 and flips the threshold coin
    /// in rounds `3k + 2` only (HoneyBadgerBFT's schedule), so an
    /// agreement whose correct replicas share their input — every
    /// accepted batch in a fair run — decides in round 0 without a coin
    /// share or a pairing; `false`: the threshold coin in every round.
    /// Safe either way (see [`super::aba::CoinOracle::fixed`]), but every
    /// replica must use the same value: agreement rests on the coin being
    /// common.
    pub fixed_coins: bool,
    #[cfg(feature = "mutants")]
    pub mutation: Option<Mutation>,
}

/// Bugs the simulator must catch, planted in the replica (test-only).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Quorums one vote short: the agreement's `n − f` (its `Aux` and
    /// `Conf` waits and `BVal` acceptance), and the `f + 1` matching sync
    /// records a lagging replica adopts.
    WrongQuorum,
    /// Quorums of `2f + 1` whatever `n` is, not `n − f` (the same for
    /// `n = 3f + 1`): batch certificates (planted in the crypto,
    /// [`super::NodeCrypto::with_mutation`] and
    /// [`super::SimCrypto::with_mutation`]; the simulator plants it in
    /// every replica's), the agreement's waits and the ACS rule. With
    /// `n = 5` one Byzantine proposer certifies two batches (attack r20
    /// [1] on the consensus crate).
    ThirdsQuorum,
    /// A `Cert` is accepted without checking its signature.
    SkipCertificateCheck,
    /// A restarted replica forgets its delivered log.
    LosePersistedState,
    /// A lagging replica adopts a sync record without checking its
    /// certificates (the lowest agreeing sender's copy, whatever its
    /// certificates): a Byzantine sender's forged certificates enter its
    /// delivered log.
    SyncCertificatesUnchecked,
    /// The coin is this replica's own share, not the threshold signature.
    CoinNotThreshold,
    /// With overlapped epochs, a later epoch whose agreements finished
    /// first is delivered before the current one (which is skipped).
    PipelineOutOfOrder,
    /// An agreement takes an input after it left round 0 (or has an
    /// estimate), and says `BVal(input)` beside its estimate: the late
    /// input [`super::aba::Aba::can_input`] refuses.
    AcceptLateInput,
    /// The statements this replica makes (its echoes,
    /// [`PersistOp::Echoed`], and its agreement votes,
    /// [`PersistOp::Voted`]) are never written: a restarted replica echoes
    /// and votes afresh in slots it spoke in before the crash.
    StatementsNotPersisted,
    /// Every message leaves before its step's writes are durable
    /// ([`Replica::must_sync_before_sending`] says `false` for all): a
    /// replica that dies in the sync window has echoed or voted without a
    /// record, and after its restart may say something else in that slot.
    SentBeforeSync,
    /// A sender whose certificate for `(epoch, proposer)` failed is heard
    /// on it again: every repeated forged `Cert` costs another check.
    CertFailuresForgotten,
    /// A replayed `Val` is echoed with a freshly signed share each time
    /// (not the share given before, from memory): every copy costs a
    /// signature.
    EchoShareResigned,
    /// The FIFO source ([`super::FifoPolicy::with_mutation`]) queues a copy
    /// of a transaction delivered within its window: the late copy is
    /// proposed again and delivered a second time once the window passed.
    LateCopyAdmitted,
    /// π^τ ([`super::txm::PiTau::with_mutation`]) stores every valid
    /// transaction of a client, whatever else it holds for the same
    /// `(DN_c, e_c)` and however many it holds: one key fills the buckets
    /// and the batches (attack r15 [1] on the consensus crate).
    ValidUnbounded,
    /// π^τ ([`super::txm::PiTau::with_mutation`]) keeps a valid transaction
    /// in its bucket after a delivery used its delivery number: each of a
    /// client's τ recipients batches its own conflicting copy, and all are
    /// delivered (attack r16 [1] on the consensus crate).
    UsedNumberKept,
}

impl Config {
    pub fn new(n: usize, me: u32, instance: Hash32) -> Self {
        Self {
            n,
            me,
            instance,
            max_batch_txs: 10_000,
            max_tx_bytes: 4_096,
            window: 4,
            tick: 1_000,
            retain: 64,
            sync_batch: 8,
            dedup_epochs: 1_024,
            pipeline: 0,
            record_coins: false,
            fixed_coins: true,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }

    /// `⌊(n − 1) / 3⌋` ([`super::faults`]).
    pub fn f(&self) -> usize {
        super::faults(self.n)
    }
}

/// Where a message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    All,
    One(u32),
}

/// The one timer: periodic retransmission and catch-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick;

/// One write of a step; all of a step's writes form one transaction.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum PersistOp<G> {
    /// This replica's batch for `epoch` (written before its first echo).
    Proposed {
        epoch: u64,
        batch: Batch,
    },
    /// An echo of another replica's batch, written in the step that
    /// sends it: a restarted replica echoes the same digest again.
    Echoed {
        epoch: u64,
        proposer: u32,
        digest: Hash32,
    },
    /// This replica may have echoed or voted in epochs up to `epoch`: after
    /// a restart it only observes them. No longer written (echoes and votes
    /// are recorded one by one, [`PersistOp::Echoed`] and
    /// [`PersistOp::Voted`]); still read from older logs, and honoured.
    VotedIn {
        epoch: u64,
    },
    Delivered(DeliveredEpoch<G>),
    /// Everything this replica said so far in `round` of agreement
    /// `instance` of `epoch` (the record replaces the one before), written
    /// in the step that says something new there: a restarted replica says
    /// the same again ([`Said`]).
    Voted {
        epoch: u64,
        instance: u32,
        round: u32,
        said: Said,
    },
}

/// What survives a crash (the driver's store holds the same in its own
/// layout; the simulator keeps this struct).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Durable<G> {
    pub delivered: Vec<DeliveredEpoch<G>>,
    pub echoed: BTreeMap<(u64, u32), Hash32>,
    pub proposed: BTreeMap<u64, Batch>,
    /// The highest epoch this replica may have echoed or voted in
    /// ([`PersistOp::VotedIn`]).
    pub voted_through: Option<u64>,
    /// What this replica said per `(epoch, agreement, round)`
    /// ([`PersistOp::Voted`]).
    pub said: BTreeMap<(u64, u32, u32), Said>,
    /// Per delivered epoch, the positions of the transactions removed as
    /// duplicates at delivery ([`Delivery::suppressed`]), where the driver
    /// keeps them. A restarted replica rebuilds its duplicate window from
    /// the delivered transactions only: for an epoch listed here from
    /// these positions, for the others by applying the rule again over
    /// [`Durable::delivered`] in order — exact when that log reaches back to
    /// the first epoch (as the simulator's does) or to `dedup_epochs`
    /// recorded epochs in a row; [`Replica::try_new`] refuses a log where
    /// it is not.
    pub suppressed: BTreeMap<u64, Vec<u32>>,
}

impl<G> Default for Durable<G> {
    fn default() -> Self {
        Self {
            delivered: Vec::new(),
            echoed: BTreeMap::new(),
            proposed: BTreeMap::new(),
            voted_through: None,
            said: BTreeMap::new(),
            suppressed: BTreeMap::new(),
        }
    }
}

impl<G: Clone> Durable<G> {
    pub fn apply(&mut self, op: &PersistOp<G>) {
        match op {
            PersistOp::Proposed { epoch, batch } => {
                self.proposed.insert(*epoch, batch.clone());
            }
            PersistOp::Echoed { epoch, proposer, digest } => {
                self.echoed.insert((*epoch, *proposer), *digest);
            }
            PersistOp::VotedIn { epoch } => {
                self.voted_through = Some(self.voted_through.map_or(*epoch, |v| v.max(*epoch)))
            }
            PersistOp::Delivered(d) => {
                let next = d.epoch + 1;
                self.delivered.push(d.clone());
                self.echoed.retain(|(e, _), _| *e >= next);
                self.proposed.retain(|e, _| *e >= next);
                self.said.retain(|(e, _, _), _| *e >= next);
            }
            PersistOp::Voted { epoch, instance, round, said } => {
                self.said.insert((*epoch, *instance, *round), *said);
            }
        }
    }
}

/// Observed misbehaviour, reported as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    UnknownSender {
        from: u32,
    },
    /// A batch beyond the bounds, or a message that makes no sense from
    /// its sender.
    Malformed {
        from: u32,
        what: &'static str,
    },
    /// Two different batches from one proposer in one epoch.
    Equivocation {
        proposer: u32,
        epoch: u64,
    },
    BadEchoShare {
        from: u32,
        epoch: u64,
    },
    /// A certificate (in `Cert`, `Certified` or a `Sync` record) that does
    /// not verify.
    BadCertificate {
        from: u32,
        epoch: u64,
        proposer: u32,
    },
    Agreement {
        from: u32,
        epoch: u64,
        instance: u32,
        fault: AbaFault,
    },
    /// A sync record whose batch does not match its digest.
    BadSync {
        from: u32,
        epoch: u64,
    },
    /// A batch the application's validity predicate refused (external
    /// validity): not echoed, so it cannot be certified by correct replicas.
    InvalidBatch {
        proposer: u32,
        epoch: u64,
        reason: String,
    },
}

/// The application's validity predicate over other replicas' batches
/// (external validity): a replica echoes — and so helps certify — only a
/// batch it accepts. It must be a function of the batch and of state that
/// only grows (a transaction invalid now stays invalid), or a batch
/// refused by some correct replicas and accepted by others merely loses
/// its certificate; the node's predicate checks signatures, the chain id
/// and stale nonces.
pub type Validity = Box<dyn FnMut(u64, u32, &Batch) -> Result<(), String> + Send>;

/// An epoch's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub epoch: u64,
    /// The accepted batches, `(proposer, digest)`, in delivery order.
    pub decision: Vec<(u32, Hash32)>,
    /// Their transactions in order, each at its earliest occurrence
    /// (sharing the batches' transactions, not copies).
    pub txs: DeliveredTxs,
    /// `ids[i]` is [`tx_id`](super::tx_id)`(&txs[i])`: computed once here for duplicate
    /// suppression, so drivers need not hash every transaction again.
    pub ids: Vec<Hash32>,
    /// Duplicates removed.
    pub duplicates: usize,
    /// Their positions among the epoch's transactions (batches in delivery
    /// order, each front to back): what a driver keeps so that a restarted
    /// replica rebuilds the same duplicate window ([`Durable::suppressed`]).
    pub suppressed: Vec<u32>,
}

impl Delivery {
    /// The epoch's block hash (see [`block_hash`]).
    pub fn block_hash(&self) -> Hash32 {
        block_hash(self.epoch, &self.decision)
    }
}

/// Everything one input produced.
#[derive(Clone, Debug)]
pub struct Step<S, G> {
    pub messages: Vec<(Target, Message<S, G>)>,
    /// Write these (one transaction) before sending `messages`.
    pub persist: Vec<PersistOp<G>>,
    pub delivered: Vec<Delivery>,
    /// Call [`Replica::propose`] with the batch for this epoch.
    pub need_batch: Option<u64>,
    /// Arm [`Tick`] after this many ticks (replacing the armed one).
    pub tick_after: Option<u64>,
    pub faults: Vec<Fault>,
}

impl<S, G> Default for Step<S, G> {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            persist: Vec::new(),
            delivered: Vec::new(),
            need_batch: None,
            tick_after: None,
            faults: Vec::new(),
        }
    }
}

/// Collects shares for one statement and combines them lazily: the
/// combined signature is checked once (for a certificate of signed echoes,
/// its `n − f` signatures; for the coin, one pairing check); only if it
/// fails is each share checked, and the bad ones dropped. Checking each
/// echo on arrival instead would cost the same `n − f` checks in the
/// common case; here a bad echo costs a failed combination on top, once
/// per sender (its later echoes are ignored, `bad_echoers`), and the
/// certificate and the coin keep one code path.
struct Shares<S> {
    shares: BTreeMap<u32, S>,
    verified: BTreeSet<u32>,
}

impl<S: Clone> Shares<S> {
    fn new() -> Self {
        Self { shares: BTreeMap::new(), verified: BTreeSet::new() }
    }

    fn try_combine<C: ThresholdCrypto<Share = S>>(
        &mut self,
        crypto: &C,
        key: KeyUse,
        msg: &[u8],
        bad: &mut Vec<u32>,
    ) -> Option<C::Sig> {
        let t = crypto.threshold(key);
        loop {
            if self.shares.len() < t {
                return None;
            }
            let list: Vec<(u32, S)> = self.shares.iter().take(t).map(|(i, s)| (*i, s.clone())).collect();
            if let Some(sig) = crypto.combine(key, msg, &list) {
                if crypto.verify(key, msg, &sig) {
                    return Some(sig);
                }
            }
            let before = self.shares.len();
            let unverified: Vec<u32> = list.iter().map(|(i, _)| *i).filter(|i| !self.verified.contains(i)).collect();
            for i in unverified {
                let ok = self.shares.get(&i).is_some_and(|s| crypto.verify_share(key, i, msg, s));
                if ok {
                    self.verified.insert(i);
                } else {
                    self.shares.remove(&i);
                    bad.push(i);
                }
            }
            if self.shares.len() == before {
                // Every share verified yet they do not combine: cannot
                // happen with a sound scheme; give up rather than loop.
                return None;
            }
        }
    }
}

struct EpochState<C: ThresholdCrypto> {
    /// The first batch each proposer sent us, with its digest.
    vals: BTreeMap<u32, (Hash32, Batch)>,
    /// Batches learnt with their certificate (fetch answers).
    fetched: BTreeMap<u32, (Hash32, Batch)>,
    certs: BTreeMap<u32, (Hash32, C::Sig)>,
    /// Echo shares for our own proposal.
    echoes: Shares<C::Share>,
    /// Peers whose echo share for our proposal did not verify: their
    /// later shares for it are ignored (each would cost a combination and
    /// checks).
    bad_echoers: BTreeSet<u32>,
    own_digest: Option<Hash32>,
    own_cert_sent: bool,
    abas: Vec<Aba<C::Share>>,
    /// Everything sent for this epoch, for retransmission.
    sent: Vec<(Target, MessageOf<C>)>,
    /// Proposers whose batch the validity predicate refused.
    refused: BTreeSet<u32>,
    fetch_sent: bool,
}

impl<C: ThresholdCrypto> EpochState<C> {
    fn new(n: usize, me: u32, mute: bool, priors: Vec<BTreeMap<u32, Said>>) -> Self {
        Self {
            vals: BTreeMap::new(),
            fetched: BTreeMap::new(),
            certs: BTreeMap::new(),
            echoes: Shares::new(),
            bad_echoers: BTreeSet::new(),
            own_digest: None,
            own_cert_sent: false,
            abas: priors.into_iter().map(|p| Aba::new(n, me, mute).with_prior(p)).collect(),
            sent: Vec::new(),
            refused: BTreeSet::new(),
            fetch_sent: false,
        }
    }
}

/// The coin of one agreement instance, through the replica's crypto.
struct Coin<'a, C: ThresholdCrypto> {
    crypto: &'a C,
    instance: &'a Hash32,
    epoch: u64,
    aba: u32,
    #[cfg_attr(not(feature = "mutants"), allow(dead_code))]
    local_coin: bool,
    /// [`Config::fixed_coins`].
    fixed: bool,
    /// Where flipped coins are recorded, if anywhere ([`Config::record_coins`]).
    flipped: Option<&'a mut Vec<CoinFlip>>,
}

/// One coin this replica flipped: `(epoch, agreement, round, value)`.
pub type CoinFlip = (u64, u32, u32, bool);

impl<C: ThresholdCrypto> CoinOracle<C::Share> for Coin<'_, C> {
    fn share(&mut self, round: u32) -> C::Share {
        self.crypto.sign_share(KeyUse::Coin, &coin_statement(self.instance, self.epoch, self.aba, round))
    }

    fn flip(&mut self, round: u32, shares: &BTreeMap<u32, C::Share>) -> Result<bool, Vec<u32>> {
        let msg = coin_statement(self.instance, self.epoch, self.aba, round);
        #[cfg(feature = "mutants")]
        if self.local_coin {
            // Planted bug: a coin from this replica's own share only.
            let own = self.share(round);
            let bytes = gridledger_core::codec::encode(&own);
            let v = bytes.iter().fold(0u8, |a, b| a ^ b) & 1 == 1;
            if let Some(log) = self.flipped.as_mut() {
                log.push((self.epoch, self.aba, round, v));
            }
            return Ok(v);
        }
        let mut s = Shares { shares: shares.clone(), verified: BTreeSet::new() };
        let mut bad = Vec::new();
        match s.try_combine(self.crypto, KeyUse::Coin, &msg, &mut bad) {
            Some(sig) => {
                let v = self.crypto.coin(&sig) & 1 == 1;
                if let Some(log) = self.flipped.as_mut() {
                    log.push((self.epoch, self.aba, round, v));
                }
                Ok(v)
            }
            None => Err(bad),
        }
    }

    fn threshold(&self) -> usize {
        self.crypto.threshold(KeyUse::Coin)
    }

    fn fixed(&self, round: u32) -> Option<bool> {
        match (self.fixed, round % 3) {
            (true, 0) => Some(true),
            (true, 1) => Some(false),
            _ => None,
        }
    }
}

/// An epoch's accepted batches, or the accepted proposers whose batch is
/// missing.
type Assembled<G> = Result<Vec<CertifiedBatch<G>>, Vec<u32>>;

/// The LBFT replica.
pub struct Replica<C: ThresholdCrypto> {
    cfg: Config,
    crypto: C,
    /// The next epoch to deliver.
    epoch: u64,
    proposed: BTreeMap<u64, Batch>,
    echoed: BTreeMap<(u64, u32), Hash32>,
    /// The echo share given per `(epoch, proposer)`: a replayed `Val` gets
    /// the same share back from memory, never a fresh signature (bounded
    /// as `echoed` is: the window's epochs, one per proposer; an entry
    /// leaves with its epoch).
    echo_shares: BTreeMap<(u64, u32), C::Share>,
    /// What this replica said per `(epoch, agreement, round)`, written
    /// ([`PersistOp::Voted`]) in the step that says something new.
    said: BTreeMap<(u64, u32, u32), Said>,
    /// A bound restored from an older log ([`PersistOp::VotedIn`]): epochs
    /// at or below it are observed — no echo of another replica's batch,
    /// no vote.
    mute_through: Option<u64>,
    epochs: BTreeMap<u64, EpochState<C>>,
    log: VecDeque<DeliveredEpoch<C::Sig>>,
    dedup: IdSet,
    dedup_order: VecDeque<(u64, Vec<Hash32>)>,
    /// Sync records per epoch and sender.
    sync_votes: BTreeMap<u64, BTreeMap<u32, DeliveredEpoch<C::Sig>>>,
    /// Highest epoch we already sent each peer as catch-up help.
    helped: BTreeMap<u32, u64>,
    /// The delivered epochs sent to each peer in sync answers since the
    /// last tick (each at most once per peer and tick, whatever epochs it
    /// asks for: at most the retained log per peer and tick), and
    /// `(peer, epoch, proposer)` fetches answered since the last tick (each
    /// at most once): a peer that is still stuck asks again on its own
    /// tick, so a stream of small requests draws no stream of whole epochs.
    answered_syncs: BTreeMap<u32, BTreeSet<u64>>,
    answered_fetches: BTreeSet<(u32, u64, u32)>,
    /// `(epoch, sender, proposer)` whose certificate (in `Cert` or
    /// `Certified`) did not verify: that sender is not heard on that
    /// proposer's certificate of that epoch again (a correct sender never
    /// sends a certificate that fails), so a stream of forged certificates
    /// costs one check per sender, epoch and proposer. Only epochs inside
    /// the window are processed, and an epoch's entries go with its
    /// delivery: at most `window · n²` entries.
    cert_failures: BTreeSet<(u64, u32, u32)>,
    need_batch_asked: Option<u64>,
    epoch_at_last_tick: u64,
    max_seen_epoch: u64,
    validity: Option<Validity>,
    coins: Option<Vec<CoinFlip>>,
}

type StepOf<C> = Step<<C as ThresholdCrypto>::Share, <C as ThresholdCrypto>::Sig>;
/// A message with `C`'s share and signature types.
pub type MessageOf<C> = Message<<C as ThresholdCrypto>::Share, <C as ThresholdCrypto>::Sig>;

/// Why [`Replica::try_new`] refuses a durable state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The duplicate window at `next` (the delivered ids of the
    /// `dedup_epochs` epochs before it) cannot be rebuilt exactly: delivered
    /// epoch `epoch`, inside it, has no recorded duplicate positions
    /// ([`Durable::suppressed`]) and the window before it is not known
    /// either (the log does not reach back to epoch 0 or to `dedup_epochs`
    /// recorded epochs in a row). Guessing would deliver other duplicates
    /// than the other replicas: give a longer log, or catch up from peers.
    #[error(
        "cannot rebuild the duplicate window before epoch {next}: delivered epoch {epoch} has no recorded \
         duplicates and the window before it is not in the log"
    )]
    DuplicateWindowUnknown { next: u64, epoch: u64 },
    /// Delivered epoch `epoch`'s batch of `proposer` carries a digest other
    /// than [`Batch::digest`] of its contents: the log was written under
    /// another batch digest version (version 1 hashed the transactions,
    /// version 2 their ids), or is damaged. Peers would refuse its records
    /// (`Fault::BadSync`): catch up from peers with an empty log instead.
    #[error(
        "delivered epoch {epoch}: the digest of proposer {proposer}'s batch is not this version's (batch digest \
         v2): the log was written under another digest version, or is damaged"
    )]
    DigestVersion { epoch: u64, proposer: u32 },
}

/// Whether the duplicate window before `next` is exactly known from
/// `durable`: `Err(epoch)` names the latest epoch inside it whose
/// delivered transactions are not. An epoch's delivered transactions are
/// known from its recorded positions, or from the delivered log if the
/// window before it is known (epoch 0's is empty).
fn window_known<G>(durable: &Durable<G>, dedup_epochs: u64, next: u64) -> Result<(), u64> {
    // The latest epoch (missing from the log, or not known) so far.
    let mut unknown: Option<u64> = None;
    let mut prev: Option<u64> = None;
    for d in &durable.delivered {
        let k = d.epoch;
        let expected = prev.map_or(0, |p| p + 1);
        if k != expected {
            unknown = Some(k.saturating_sub(1)).max(unknown);
        }
        let window_known = unknown.is_none_or(|j| j + dedup_epochs < k);
        if !durable.suppressed.contains_key(&k) && !window_known {
            unknown = Some(k);
        }
        prev = Some(k);
    }
    match unknown {
        Some(j) if j + dedup_epochs >= next && next > 0 => Err(j),
        _ => Ok(()),
    }
}

impl<C: ThresholdCrypto> Replica<C> {
    /// A replica from its durable state (`Durable::default()` for a new
    /// one) whose duplicate window is exactly known ([`RestoreError`]
    /// otherwise) and whose delivered records carry this version's batch
    /// digests (recomputed: [`RestoreError::DigestVersion`] otherwise): what
    /// a driver whose store keeps a truncated log uses.
    pub fn try_new(cfg: Config, crypto: C, durable: Durable<C::Sig>) -> Result<Self, RestoreError> {
        let next = durable.delivered.last().map_or(0, |d| d.epoch + 1);
        window_known(&durable, cfg.dedup_epochs, next)
            .map_err(|epoch| RestoreError::DuplicateWindowUnknown { next, epoch })?;
        // The ids hashed here are cached in the batches: the duplicate
        // window's replay below reads them.
        for d in &durable.delivered {
            if let Some(b) = d.batches.iter().find(|b| b.batch.digest(&cfg.instance, d.epoch, b.proposer) != b.digest) {
                return Err(RestoreError::DigestVersion { epoch: d.epoch, proposer: b.proposer });
            }
        }
        Ok(Self::new(cfg, crypto, durable))
    }

    /// A replica from its durable state (`Durable::default()` for a new
    /// one). The duplicate window is rebuilt exactly when the log reaches
    /// back to epoch 0 or carries recorded positions (the simulator's
    /// does); a driver with a truncated log uses [`Replica::try_new`],
    /// which refuses what this would have to guess.
    pub fn new(cfg: Config, crypto: C, durable: Durable<C::Sig>) -> Self {
        #[allow(unused_mut)]
        let mut durable = durable;
        #[cfg(feature = "mutants")]
        if cfg.mutation == Some(Mutation::LosePersistedState) {
            durable.delivered.clear();
        }
        let epoch = durable.delivered.last().map_or(0, |d| d.epoch + 1);
        let mut r = Self {
            epoch,
            proposed: durable.proposed,
            echoed: durable.echoed,
            echo_shares: BTreeMap::new(),
            said: durable.said,
            mute_through: durable.voted_through,
            epochs: BTreeMap::new(),
            log: VecDeque::new(),
            dedup: IdSet::default(),
            dedup_order: VecDeque::new(),
            sync_votes: BTreeMap::new(),
            helped: BTreeMap::new(),
            answered_syncs: BTreeMap::new(),
            answered_fetches: BTreeSet::new(),
            cert_failures: BTreeSet::new(),
            need_batch_asked: None,
            epoch_at_last_tick: epoch,
            max_seen_epoch: epoch,
            validity: None,
            coins: cfg.record_coins.then(Vec::new),
            cfg,
            crypto,
        };
        // The duplicate window as the live replica left it: the ids
        // *delivered* (duplicates removed) in the last `dedup_epochs`
        // epochs. Which transactions an epoch delivered depends on the
        // window before it, so without the recorded positions the rule is
        // applied again from the start of the log; with them for every
        // epoch of the window, the window's epochs suffice.
        let window_from = epoch.saturating_sub(r.cfg.dedup_epochs);
        let recorded = |e: u64| durable.suppressed.contains_key(&e);
        let replay_from = if durable.delivered.iter().filter(|d| d.epoch >= window_from).all(|d| recorded(d.epoch)) {
            durable.delivered.iter().position(|d| d.epoch >= window_from).unwrap_or(durable.delivered.len())
        } else {
            0
        };
        let keep_from = durable.delivered.len().saturating_sub(r.cfg.retain);
        for (k, d) in durable.delivered.into_iter().enumerate() {
            if k >= replay_from {
                match durable.suppressed.get(&d.epoch) {
                    Some(removed) => {
                        let removed: HashSet<u32> = removed.iter().copied().collect();
                        let all = d.batches.iter().flat_map(|b| b.batch.txs.ids().iter());
                        let ids = (0u32..).zip(all).filter(|(i, _)| !removed.contains(i)).map(|(_, id)| *id).collect();
                        r.remember(d.epoch, ids);
                    }
                    None => {
                        // `screen` enters the ids it keeps into the window.
                        let ids = r.screen(&d).into_iter().map(|(_, id)| id).collect();
                        r.slide_window(d.epoch, ids);
                    }
                }
            }
            if k >= keep_from {
                r.log.push_back(d);
            }
        }
        r
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Sets the application's validity predicate (see [`Validity`]).
    pub fn set_validity(&mut self, v: Validity) {
        self.validity = Some(v);
    }

    /// The next epoch to deliver.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// A summary of the current epoch's state (certificates, batches,
    /// agreements), for diagnostics.
    pub fn summary(&self) -> String {
        let Some(st) = self.epochs.get(&self.epoch) else {
            return format!("epoch {}: no state", self.epoch);
        };
        let abas: Vec<String> = st.abas.iter().enumerate().map(|(i, a)| format!("aba{i}: {}", a.summary())).collect();
        format!(
            "epoch {} vals={:?} certs={:?} fetched={:?} own_cert_sent={} | {}",
            self.epoch,
            st.vals.keys().collect::<Vec<_>>(),
            st.certs.keys().collect::<Vec<_>>(),
            st.fetched.keys().collect::<Vec<_>>(),
            st.own_cert_sent,
            abas.join(" | ")
        )
    }

    /// The coins flipped since this replica started, with
    /// [`Config::record_coins`] (empty without).
    pub fn coins(&self) -> &[CoinFlip] {
        self.coins.as_deref().unwrap_or(&[])
    }

    /// Delivered epochs still in memory.
    pub fn log(&self) -> impl Iterator<Item = &DeliveredEpoch<C::Sig>> {
        self.log.iter()
    }

    fn f(&self) -> usize {
        self.cfg.f()
    }

    #[cfg(feature = "mutants")]
    fn mutation_is(&self, m: &str) -> bool {
        match self.cfg.mutation {
            Some(Mutation::WrongQuorum) => m == "quorum",
            Some(Mutation::ThirdsQuorum) => m == "thirds",
            Some(Mutation::SkipCertificateCheck) => m == "cert",
            Some(Mutation::CoinNotThreshold) => m == "coin",
            Some(Mutation::PipelineOutOfOrder) => m == "order",
            Some(Mutation::StatementsNotPersisted) => m == "forget-said",
            Some(Mutation::AcceptLateInput) => m == "late-input",
            Some(Mutation::SyncCertificatesUnchecked) => m == "sync-cert",
            Some(Mutation::CertFailuresForgotten) => m == "forget-cert-failures",
            Some(Mutation::EchoShareResigned) => m == "resign-echo",
            Some(Mutation::SentBeforeSync) => m == "sent-before-sync",
            Some(
                Mutation::LosePersistedState
                | Mutation::LateCopyAdmitted
                | Mutation::ValidUnbounded
                | Mutation::UsedNumberKept,
            )
            | None => false,
        }
    }

    #[cfg(not(feature = "mutants"))]
    fn mutation_is(&self, _m: &str) -> bool {
        false
    }

    /// Whether a driver must make the writes of the step that produced
    /// `m` ([`Step::persist`], and those of every step before it) durable
    /// before `m` leaves: `true` for what commits this replica to
    /// something new ([`Message::commits_sender`]: its proposal, echoes,
    /// agreement votes and `Term`s, sync records); the rest (certificates,
    /// coin shares, fetches and their answers, sync requests) may leave at
    /// once, before the fsync in flight, since a replica that dies before
    /// the step's writes are durable and restarts sends the same again or
    /// nothing that contradicts them. A driver that does not split a
    /// step's messages (the node's, the simulator's in-step path) sends
    /// everything after the writes, which is safe too.
    pub fn must_sync_before_sending(&self, m: &MessageOf<C>) -> bool {
        m.commits_sender() && !self.mutation_is("sent-before-sync")
    }

    /// Arms the tick, asks for the first batch, re-sends a proposal made
    /// before a restart and asks peers for epochs it missed.
    pub fn start(&mut self) -> StepOf<C> {
        let mut step = Step { tick_after: Some(self.cfg.tick), ..Step::default() };
        self.send(&mut step, Target::All, Message::SyncRequest { next: self.epoch }, None);
        self.replay_said(&mut step);
        self.enter_epoch(&mut step);
        step
    }

    /// Says again what this replica recorded in the agreements of the
    /// epochs not yet delivered ([`Aba::replay`]), without waiting for a
    /// certificate or an ACS input: after `f + 1` or all replicas restart,
    /// their recorded votes may be what the agreement needs, and a
    /// restarted replica may never get an input again (the certificate is
    /// not durable; the ACS rule needs `n − f` agreements decided 1).
    fn replay_said(&mut self, step: &mut StepOf<C>) {
        let recorded: BTreeSet<(u64, u32)> =
            self.said.keys().filter(|(e, _, _)| *e >= self.epoch).map(|(e, i, _)| (*e, *i)).collect();
        for (epoch, instance) in recorded {
            if epoch < self.epoch || epoch >= self.epoch + self.cfg.window || instance as usize >= self.cfg.n {
                continue;
            }
            self.epoch_state(epoch);
            let mut coin = Coin {
                crypto: &self.crypto,
                instance: &self.cfg.instance,
                epoch,
                aba: instance,
                local_coin: self.mutation_is("coin"),
                fixed: self.cfg.fixed_coins,
                flipped: self.coins.as_mut(),
            };
            let Some(aba) = self.epochs.get_mut(&epoch).and_then(|st| st.abas.get_mut(instance as usize)) else {
                continue;
            };
            let s = aba.replay(&mut coin);
            self.after_aba(epoch, instance, s, step);
        }
    }

    /// This replica's batch for `epoch` (ignored unless it is the current
    /// epoch, or at most [`Config::pipeline`] epochs ahead, and nothing
    /// was proposed for it yet).
    pub fn propose(&mut self, epoch: u64, txs: Vec<Tx>) -> StepOf<C> {
        self.propose_at(epoch, txs, 0)
    }

    /// [`Replica::propose`] with the proposer's clock (see [`Batch::time_ms`]).
    pub fn propose_at(&mut self, epoch: u64, txs: Vec<Tx>, time_ms: u64) -> StepOf<C> {
        self.propose_txs_at(epoch, txs.into(), time_ms)
    }

    /// [`Replica::propose_at`] with the batch as a shared list, whose ids
    /// may be known already ([`FifoPolicy::next_txs`](super::FifoPolicy::next_txs)):
    /// a list within the bounds is proposed as it is, one beyond them cut
    /// as [`Replica::propose_at`] cuts it.
    pub fn propose_txs_at(&mut self, epoch: u64, txs: Txs, time_ms: u64) -> StepOf<C> {
        let mut step = Step::default();
        if epoch < self.epoch || epoch > self.epoch + self.pipeline() || self.proposed.contains_key(&epoch) {
            return step;
        }
        let cap = self.cfg.max_batch_txs.saturating_mul(self.cfg.max_tx_bytes);
        let within = txs.len() <= self.cfg.max_batch_txs
            && txs.iter().all(|t| t.len() <= self.cfg.max_tx_bytes)
            && txs.iter().map(|t| t.len()).fold(0usize, usize::saturating_add) <= cap;
        let txs = if within {
            txs
        } else {
            let mut bytes = 0usize;
            let cut: Vec<Tx> = txs
                .iter()
                .filter(|t| t.len() <= self.cfg.max_tx_bytes)
                .take(self.cfg.max_batch_txs)
                .take_while(|t| {
                    bytes += t.len();
                    bytes <= cap
                })
                .cloned()
                .collect();
            cut.into()
        };
        let batch = Batch { txs, time_ms };
        self.proposed.insert(epoch, batch.clone());
        step.persist.push(PersistOp::Proposed { epoch, batch: batch.clone() });
        self.broadcast_val(epoch, batch, &mut step);
        step
    }

    fn broadcast_val(&mut self, epoch: u64, batch: Batch, step: &mut StepOf<C>) {
        let digest = batch.digest(&self.cfg.instance, epoch, self.cfg.me);
        self.epoch_state(epoch).own_digest = Some(digest);
        self.send(step, Target::All, Message::Val { epoch, batch: batch.clone() }, Some(epoch));
        // Our own batch's digest is known: not hashed a second time.
        self.on_val(self.cfg.me, epoch, batch, Some(digest), step);
    }

    fn epoch_state(&mut self, epoch: u64) -> &mut EpochState<C> {
        let (n, me) = (self.cfg.n, self.cfg.me);
        let mute = self.mute_through.is_some_and(|m| epoch <= m);
        let weaken = self.mutation_is("quorum");
        let thirds = self.mutation_is("thirds");
        let late_input = self.mutation_is("late-input");
        let said = &self.said;
        self.epochs.entry(epoch).or_insert_with(|| {
            // What this replica said in the epoch's agreements before a
            // restart, replayed alike.
            let mut priors = vec![BTreeMap::new(); n];
            for (&(_, i, round), s) in said.range((epoch, 0, 0)..=(epoch, u32::MAX, u32::MAX)) {
                if let Some(p) = priors.get_mut(i as usize) {
                    p.insert(round, *s);
                }
            }
            let mut st = EpochState::new(n, me, mute, priors);
            for a in &mut st.abas {
                if weaken {
                    a.weaken_quorums();
                }
                if thirds {
                    a.thirds_quorums();
                }
                if late_input {
                    a.accept_late_input();
                }
            }
            st
        })
    }

    fn send(&mut self, step: &mut StepOf<C>, to: Target, m: Message<C::Share, C::Sig>, epoch: Option<u64>) {
        if let Some(e) = epoch {
            if e == self.epoch || self.epochs.contains_key(&e) {
                self.epoch_state(e).sent.push((to, m.clone()));
            }
        }
        step.messages.push((to, m));
    }

    /// How far ahead of the current epoch this replica proposes.
    fn pipeline(&self) -> u64 {
        self.cfg.pipeline.min(self.cfg.window.saturating_sub(1))
    }

    /// Proposes (or asks the driver for) the batches due: the current
    /// epoch's, then — with overlapped epochs — each next one once our
    /// batch of the one before is certified, up to `pipeline` ahead. A
    /// proposal restored from disk is broadcast again once per run.
    fn propose_due(&mut self, step: &mut StepOf<C>) {
        let e = self.epoch;
        for k in e..=e + self.pipeline() {
            match self.proposed.get(&k).cloned() {
                Some(batch) => {
                    if self.epochs.get(&k).is_none_or(|s| s.own_digest.is_none()) {
                        self.broadcast_val(k, batch, step);
                    }
                    if !self.epochs.get(&k).is_some_and(|s| s.own_cert_sent) {
                        return;
                    }
                }
                None => {
                    if self.need_batch_asked.is_none_or(|a| a < k) {
                        self.need_batch_asked = Some(k);
                        step.need_batch = Some(k);
                    }
                    return;
                }
            }
        }
    }

    fn enter_epoch(&mut self, step: &mut StepOf<C>) {
        let e = self.epoch;
        self.propose_due(step);
        self.adopt_synced(step);
        if self.epoch == e {
            self.acs_rules(e, step);
            self.try_deliver(step);
        }
    }

    /// A message from replica `from`.
    pub fn handle_message(&mut self, from: u32, msg: Message<C::Share, C::Sig>) -> StepOf<C> {
        let mut step = Step::default();
        if from as usize >= self.cfg.n || from == self.cfg.me {
            step.faults.push(Fault::UnknownSender { from });
            return step;
        }
        if let Some(e) = msg.epoch() {
            if e < self.epoch {
                if !matches!(msg, Message::Fetch { .. } | Message::Certified { .. }) {
                    self.help(from, e, &mut step);
                }
                if let Message::Fetch { epoch, proposer } = msg {
                    self.on_fetch(from, epoch, proposer, &mut step);
                }
                return step;
            }
            if e >= self.epoch + self.cfg.window {
                // Far ahead: we are lagging; ask (at most once per tick).
                if e > self.max_seen_epoch {
                    self.max_seen_epoch = e;
                    self.send(&mut step, Target::One(from), Message::SyncRequest { next: self.epoch }, None);
                }
                return step;
            }
        }
        match msg {
            Message::Val { epoch, batch } => self.on_val(from, epoch, batch, None, &mut step),
            Message::Echo { epoch, proposer, digest, share } => {
                self.on_echo(from, epoch, proposer, digest, share, &mut step)
            }
            Message::Cert { epoch, proposer, digest, sig } => {
                self.on_cert(from, epoch, proposer, digest, sig, &mut step);
            }
            Message::Aba { epoch, instance, round, vote } => self.on_aba(from, epoch, instance, round, vote, &mut step),
            Message::Fetch { epoch, proposer } => self.on_fetch(from, epoch, proposer, &mut step),
            Message::Certified { epoch, batch } => self.on_certified(from, epoch, batch, &mut step),
            Message::SyncRequest { next } => self.on_sync_request(from, next, &mut step),
            Message::Sync { delivered } => self.on_sync(from, delivered, &mut step),
        }
        step
    }

    /// The periodic tick: without progress since the last one, re-send the
    /// current epoch's messages, fetch what is missing and ask to sync.
    pub fn handle_tick(&mut self) -> StepOf<C> {
        let mut step = Step { tick_after: Some(self.cfg.tick), ..Step::default() };
        self.answered_syncs.clear();
        self.answered_fetches.clear();
        if self.epoch == self.epoch_at_last_tick {
            let e = self.epoch;
            let resend = self.epochs.get(&e).map(|s| self.resend(s)).unwrap_or_default();
            step.messages.extend(resend);
            if let Some(st) = self.epochs.get_mut(&e) {
                st.fetch_sent = false;
            }
            step.messages.push((Target::All, Message::SyncRequest { next: e }));
            self.max_seen_epoch = e;
            self.try_deliver(&mut step);
        }
        self.epoch_at_last_tick = self.epoch;
        step
    }

    /// What the tick re-sends of an epoch: everything sent for it, except
    /// that our proposal (`Val`, the one big message) goes only to peers
    /// whose echo has not come back, and to nobody once our certificate is
    /// out — a peer that still lacks the batch then fetches it with its
    /// certificate. (Re-sending it whole to everyone made a slow epoch on a
    /// loaded machine slower still: megabytes per tick ahead of the votes.)
    fn resend(&self, st: &EpochState<C>) -> Vec<(Target, MessageOf<C>)> {
        let mut out = Vec::with_capacity(st.sent.len());
        for (to, m) in &st.sent {
            if !matches!(m, Message::Val { .. }) {
                out.push((*to, m.clone()));
                continue;
            }
            if st.own_cert_sent {
                continue;
            }
            let missing: Vec<u32> = (0..self.cfg.n as u32)
                .filter(|&j| j != self.cfg.me && !st.echoes.shares.contains_key(&j))
                .filter(|&j| matches!(to, Target::All) || *to == Target::One(j))
                .collect();
            for j in missing {
                out.push((Target::One(j), m.clone()));
            }
        }
        out
    }

    fn batch_ok(&self, batch: &Batch) -> bool {
        batch.txs.len() <= self.cfg.max_batch_txs && batch.txs.iter().all(|t| t.len() <= self.cfg.max_tx_bytes)
    }

    /// `digest`: the batch's digest when the caller computed it already
    /// (our own proposal); `None` for a received batch.
    fn on_val(&mut self, from: u32, epoch: u64, batch: Batch, digest: Option<Hash32>, step: &mut StepOf<C>) {
        if !self.batch_ok(&batch) {
            step.faults.push(Fault::Malformed { from, what: "batch beyond bounds" });
            return;
        }
        let digest = digest.unwrap_or_else(|| batch.digest(&self.cfg.instance, epoch, from));
        let st = self.epoch_state(epoch);
        match st.vals.get(&from) {
            Some((d, _)) if *d != digest => {
                step.faults.push(Fault::Equivocation { proposer: from, epoch });
                return;
            }
            Some(_) => {}
            None => {
                st.vals.insert(from, (digest, batch));
            }
        }
        // Echo at most one digest per (epoch, proposer), ever.
        let key = (epoch, from);
        match self.echoed.get(&key) {
            Some(d) if *d != digest => return,
            Some(_) => {}
            None => {
                // Restored from an older log's bound: we may have echoed
                // another batch of this proposer before the crash, not
                // recorded one by one. Our own batch is durable before its
                // first echo, so it is the one we echoed.
                if from != self.cfg.me && self.mute_through.is_some_and(|m| epoch <= m) {
                    self.try_deliver(step);
                    return;
                }
                // External validity: checked once per batch (a
                // retransmission of a refused batch is refused silently).
                let Some(st) = self.epochs.get_mut(&epoch) else {
                    return;
                };
                if st.refused.contains(&from) {
                    return;
                }
                if from != self.cfg.me {
                    if let Some(v) = self.validity.as_mut() {
                        let verdict = st.vals.get(&from).map(|(_, b)| v(epoch, from, b));
                        if let Some(Err(reason)) = verdict {
                            st.refused.insert(from);
                            step.faults.push(Fault::InvalidBatch { proposer: from, epoch, reason });
                            return;
                        }
                    }
                }
                self.echoed.insert(key, digest);
                // Written in this step, before the echo leaves: a restarted
                // replica echoes this digest again, and no other. (Our own
                // batch is durable already.)
                if from != self.cfg.me && !self.mutation_is("forget-said") {
                    step.persist.push(PersistOp::Echoed { epoch, proposer: from, digest });
                }
            }
        }
        // One signature per echo given: a replayed `Val` gets the share
        // from memory (attack r5 [2]: a Byzantine proposer replaying its
        // `Val` cost a share signature per copy).
        let share = match self.echo_shares.get(&key) {
            Some(s) if !self.mutation_is("resign-echo") => s.clone(),
            _ => {
                let s = self.crypto.sign_share(KeyUse::Cert, &echo_statement(&self.cfg.instance, epoch, from, &digest));
                self.echo_shares.insert(key, s.clone());
                s
            }
        };
        if from == self.cfg.me {
            self.on_echo(from, epoch, from, digest, share, step);
        } else {
            self.send(step, Target::One(from), Message::Echo { epoch, proposer: from, digest, share }, Some(epoch));
        }
        self.try_deliver(step);
    }

    fn on_echo(&mut self, from: u32, epoch: u64, proposer: u32, digest: Hash32, share: C::Share, step: &mut StepOf<C>) {
        let me = self.cfg.me;
        if proposer != me {
            step.faults.push(Fault::Malformed { from, what: "echo for another proposer" });
            return;
        }
        let st = self.epoch_state(epoch);
        if st.own_digest != Some(digest) || st.own_cert_sent || st.bad_echoers.contains(&from) {
            return;
        }
        st.echoes.shares.entry(from).or_insert(share);
        let msg = echo_statement(&self.cfg.instance, epoch, me, &digest);
        let mut bad = Vec::new();
        let st = self.epochs.get_mut(&epoch).expect("created above");
        let sig = st.echoes.try_combine(&self.crypto, KeyUse::Cert, &msg, &mut bad);
        for b in bad {
            st.bad_echoers.insert(b);
            step.faults.push(Fault::BadEchoShare { from: b, epoch });
        }
        if let Some(sig) = sig {
            st.own_cert_sent = true;
            self.send(step, Target::All, Message::Cert { epoch, proposer: me, digest, sig: sig.clone() }, Some(epoch));
            self.accept_cert(epoch, me, digest, sig, step);
            if self.pipeline() > 0 && epoch >= self.epoch {
                self.propose_due(step);
            }
        }
    }

    fn cert_valid(&self, epoch: u64, proposer: u32, digest: &Hash32, sig: &C::Sig) -> bool {
        if self.mutation_is("cert") {
            return true;
        }
        self.crypto.verify(KeyUse::Cert, &echo_statement(&self.cfg.instance, epoch, proposer, digest), sig)
    }

    fn on_cert(&mut self, from: u32, epoch: u64, proposer: u32, digest: Hash32, sig: C::Sig, step: &mut StepOf<C>) {
        if proposer as usize >= self.cfg.n {
            step.faults.push(Fault::Malformed { from, what: "certificate for a non-member" });
            return;
        }
        if self.epochs.get(&epoch).is_some_and(|s| s.certs.contains_key(&proposer))
            || self.cert_failed_before(from, epoch, proposer)
        {
            return;
        }
        if !self.cert_valid(epoch, proposer, &digest, &sig) {
            self.cert_failed(from, epoch, proposer, step);
            return;
        }
        self.accept_cert(epoch, proposer, digest, sig, step);
    }

    /// Whether `from`'s certificate for `(epoch, proposer)` failed before.
    fn cert_failed_before(&self, from: u32, epoch: u64, proposer: u32) -> bool {
        !self.mutation_is("forget-cert-failures") && self.cert_failures.contains(&(epoch, from, proposer))
    }

    fn cert_failed(&mut self, from: u32, epoch: u64, proposer: u32, step: &mut StepOf<C>) {
        self.cert_failures.insert((epoch, from, proposer));
        step.faults.push(Fault::BadCertificate { from, epoch, proposer });
    }

    fn accept_cert(&mut self, epoch: u64, proposer: u32, digest: Hash32, sig: C::Sig, step: &mut StepOf<C>) {
        let st = self.epoch_state(epoch);
        if st.certs.contains_key(&proposer) {
            return;
        }
        st.certs.insert(proposer, (digest, sig));
        self.aba_input(epoch, proposer, true, step);
        self.try_deliver(step);
    }

    fn aba_input(&mut self, epoch: u64, instance: u32, value: bool, step: &mut StepOf<C>) {
        let mut coin = Coin {
            crypto: &self.crypto,
            instance: &self.cfg.instance,
            epoch,
            aba: instance,
            local_coin: self.mutation_is("coin"),
            fixed: self.cfg.fixed_coins,
            flipped: self.coins.as_mut(),
        };
        let Some(st) = self.epochs.get_mut(&epoch) else {
            return;
        };
        let Some(aba) = st.abas.get_mut(instance as usize) else {
            return;
        };
        if !aba.can_input() {
            // Given one already, decided, or past round 0: a late input
            // would add a second value beside the estimate.
            return;
        }
        let s = aba.input(value, &mut coin);
        self.after_aba(epoch, instance, s, step);
    }

    fn on_aba(
        &mut self,
        from: u32,
        epoch: u64,
        instance: u32,
        round: u32,
        vote: AbaVote<C::Share>,
        step: &mut StepOf<C>,
    ) {
        if instance as usize >= self.cfg.n {
            step.faults.push(Fault::Malformed { from, what: "agreement instance out of range" });
            return;
        }
        self.epoch_state(epoch);
        let mut coin = Coin {
            crypto: &self.crypto,
            instance: &self.cfg.instance,
            epoch,
            aba: instance,
            local_coin: self.mutation_is("coin"),
            fixed: self.cfg.fixed_coins,
            flipped: self.coins.as_mut(),
        };
        let st = self.epochs.get_mut(&epoch).expect("created above");
        let s = st.abas[instance as usize].handle(from, round, vote, &mut coin);
        self.after_aba(epoch, instance, s, step);
    }

    fn after_aba(&mut self, epoch: u64, instance: u32, s: AbaStep<C::Share>, step: &mut StepOf<C>) {
        for fault in s.faults {
            let from = match &fault {
                AbaFault::DoubleVote { from, .. }
                | AbaFault::BadCoinShare { from, .. }
                | AbaFault::BadConf { from, .. } => *from,
            };
            step.faults.push(Fault::Agreement { from, epoch, instance, fault });
        }
        let forget = self.mutation_is("forget-said");
        for (round, vote) in &s.votes {
            let said = self.said.entry((epoch, instance, *round)).or_default();
            if said.add(vote) && !forget {
                step.persist.push(PersistOp::Voted { epoch, instance, round: *round, said: *said });
            }
        }
        for (round, vote) in s.votes {
            self.send(step, Target::All, Message::Aba { epoch, instance, round, vote }, Some(epoch));
        }
        self.acs_rules(epoch, step);
        self.try_deliver(step);
    }

    /// Once `n − f` agreements decided 1, vote 0 in the others (only in
    /// the current epoch, so our own proposal had its chance).
    fn acs_rules(&mut self, epoch: u64, step: &mut StepOf<C>) {
        if epoch != self.epoch {
            return;
        }
        let n = self.cfg.n;
        let quorum = if self.mutation_is("thirds") { 2 * self.f() + 1 } else { super::quorum(n) };
        let Some(st) = self.epochs.get(&epoch) else {
            return;
        };
        let ones = st.abas.iter().filter(|a| a.decided() == Some(true)).count();
        if ones < quorum {
            return;
        }
        let pending: Vec<u32> = (0..n as u32).filter(|&i| st.abas[i as usize].can_input()).collect();
        for i in pending {
            self.aba_input(epoch, i, false, step);
        }
    }

    /// Epoch `e`'s accepted batches once every agreement decided:
    /// `Ok(batches)`, or `Err(missing)` naming the accepted proposers whose
    /// certified batch is not here yet; `None` while an agreement runs.
    fn assemble(&self, e: u64) -> Option<Assembled<C::Sig>> {
        let st = self.epochs.get(&e)?;
        if st.abas.iter().any(|a| a.decided().is_none()) {
            return None;
        }
        let accepted = (0..self.cfg.n as u32).filter(|&i| st.abas[i as usize].decided() == Some(true));
        let mut batches = Vec::new();
        let mut missing = Vec::new();
        for j in accepted {
            let Some((digest, sig)) = st.certs.get(&j) else {
                missing.push(j);
                continue;
            };
            let batch = [st.vals.get(&j), st.fetched.get(&j)]
                .into_iter()
                .flatten()
                .find(|(d, _)| d == digest)
                .map(|(_, b)| b.clone());
            match batch {
                Some(batch) => batches.push(CertifiedBatch { proposer: j, digest: *digest, sig: sig.clone(), batch }),
                None => missing.push(j),
            }
        }
        Some(if missing.is_empty() { Ok(batches) } else { Err(missing) })
    }

    /// Delivers the current epoch once every agreement decided and every
    /// accepted batch is here; fetches what is missing. Epochs are
    /// delivered strictly in order: a later (overlapped) epoch that
    /// finished first waits for this one.
    fn try_deliver(&mut self, step: &mut StepOf<C>) {
        loop {
            let e = self.epoch;
            if self.mutation_is("order") {
                // Planted bug: a later epoch that is ready goes first.
                let ready = (e + 1..=e + self.pipeline()).find_map(|k| match self.assemble(k) {
                    Some(Ok(b)) if !matches!(self.assemble(e), Some(Ok(_))) => Some((k, b)),
                    _ => None,
                });
                if let Some((k, batches)) = ready {
                    self.deliver(DeliveredEpoch { epoch: k, batches }, step);
                    continue;
                }
            }
            match self.assemble(e) {
                None => return,
                Some(Ok(batches)) => self.deliver(DeliveredEpoch { epoch: e, batches }, step),
                Some(Err(missing)) => {
                    if let Some(st) = self.epochs.get_mut(&e) {
                        if !st.fetch_sent {
                            st.fetch_sent = true;
                            for j in missing {
                                step.messages.push((Target::All, Message::Fetch { epoch: e, proposer: j }));
                            }
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Enters epoch `epoch`'s delivered `ids` into the duplicate window
    /// (restoring from recorded positions), then slides it.
    fn remember(&mut self, epoch: u64, ids: Vec<Hash32>) {
        self.dedup.extend(ids.iter().copied());
        self.slide_window(epoch, ids);
    }

    /// Records `ids`, already in `dedup`, as epoch `epoch`'s, and forgets
    /// the epochs that fell out of the window. Each id is listed by at most
    /// one epoch of the window (a later epoch suppresses it), so removing
    /// an old epoch's ids never removes a newer epoch's.
    fn slide_window(&mut self, epoch: u64, ids: Vec<Hash32>) {
        self.dedup_order.push_back((epoch, ids));
        while self.dedup_order.front().is_some_and(|(e, _)| e + self.cfg.dedup_epochs <= epoch) {
            if let Some((_, old)) = self.dedup_order.pop_front() {
                for id in old {
                    self.dedup.remove(&id);
                }
            }
        }
    }

    /// The transactions epoch `d` delivers against the duplicate window,
    /// each at its earliest occurrence: `(position, id)` in order, the
    /// position among all of the epoch's transactions. The kept ids enter
    /// the window here: one set insertion per transaction decides both
    /// "delivered in the window" and "earlier in this epoch" (the caller
    /// then calls [`Replica::slide_window`] with them).
    fn screen(&mut self, d: &DeliveredEpoch<C::Sig>) -> Vec<(u32, Hash32)> {
        let dedup = &mut self.dedup;
        // The ids the batches carry (hashed as they were decoded or built).
        let all = d.batches.iter().flat_map(|b| b.batch.txs.ids().iter());
        (0u32..).zip(all.copied()).filter(|(_, id)| dedup.insert(*id)).collect()
    }

    fn deliver(&mut self, d: DeliveredEpoch<C::Sig>, step: &mut StepOf<C>) {
        let e = d.epoch;
        let kept = self.screen(&d);
        let total: usize = d.batches.iter().map(|b| b.batch.txs.len()).sum();
        // `(batch, position in it)` of each kept transaction; `kept` is in
        // ascending order, so the batch is found by walking forward.
        let mut at = Vec::with_capacity(kept.len());
        let mut ids = Vec::with_capacity(kept.len());
        let mut suppressed = Vec::new();
        let mut next = 0u32;
        let (mut b, mut base) = (0usize, 0u32);
        for (i, id) in kept {
            suppressed.extend(next..i);
            next = i + 1;
            ids.push(id);
            while d.batches.get(b).is_some_and(|cb| i >= base + cb.batch.txs.len() as u32) {
                base += d.batches[b].batch.txs.len() as u32;
                b += 1;
            }
            at.push((b as u32, i - base));
        }
        suppressed.extend(next..total as u32);
        // The delivered transactions share the batches' lists.
        let txs = DeliveredTxs::new(d.batches.iter().map(|b| b.batch.txs.clone()).collect(), at);
        let duplicates = suppressed.len();
        self.slide_window(e, ids.clone());
        step.persist.push(PersistOp::Delivered(d.clone()));
        step.delivered.push(Delivery { epoch: e, decision: d.decision(), txs, ids, duplicates, suppressed });
        self.log.push_back(d);
        while self.log.len() > self.cfg.retain {
            self.log.pop_front();
        }
        self.epochs.remove(&e);
        self.proposed.retain(|k, _| *k > e);
        self.echoed.retain(|(k, _), _| *k > e);
        self.echo_shares.retain(|(k, _), _| *k > e);
        self.said.retain(|(k, _, _), _| *k > e);
        self.sync_votes.retain(|k, _| *k > e);
        self.cert_failures.retain(|(k, _, _)| *k > e);
        self.epoch = e + 1;
        self.max_seen_epoch = self.max_seen_epoch.max(self.epoch);
        self.enter_epoch(step);
    }

    fn find_certified(&self, epoch: u64, proposer: u32) -> Option<CertifiedBatch<C::Sig>> {
        if let Some(d) = self.log.iter().find(|d| d.epoch == epoch) {
            return d.batches.iter().find(|b| b.proposer == proposer).cloned();
        }
        let st = self.epochs.get(&epoch)?;
        let (digest, sig) = st.certs.get(&proposer)?;
        let (_, batch) =
            [st.vals.get(&proposer), st.fetched.get(&proposer)].into_iter().flatten().find(|(d, _)| d == digest)?;
        Some(CertifiedBatch { proposer, digest: *digest, sig: sig.clone(), batch: batch.clone() })
    }

    fn on_fetch(&mut self, from: u32, epoch: u64, proposer: u32, step: &mut StepOf<C>) {
        if self.answered_fetches.contains(&(from, epoch, proposer)) {
            return;
        }
        if let Some(batch) = self.find_certified(epoch, proposer) {
            self.answered_fetches.insert((from, epoch, proposer));
            step.messages.push((Target::One(from), Message::Certified { epoch, batch }));
        }
    }

    fn on_certified(&mut self, from: u32, epoch: u64, cb: CertifiedBatch<C::Sig>, step: &mut StepOf<C>) {
        if cb.proposer as usize >= self.cfg.n || !self.batch_ok(&cb.batch) {
            step.faults.push(Fault::Malformed { from, what: "certified batch" });
            return;
        }
        if self.cert_failed_before(from, epoch, cb.proposer) {
            return;
        }
        // A proposer whose certificate we hold: only a batch with the held
        // digest is of use (its digest is certified already), and it costs
        // a hash, not a certificate check; any other is dropped (a second
        // certificate for one slot needs a correct replica to echo twice).
        let held = self.epochs.get(&epoch).and_then(|st| st.certs.get(&cb.proposer)).map(|(d, _)| *d);
        if let Some(digest) = held {
            let have = self.epochs.get(&epoch).is_some_and(|st| {
                [st.vals.get(&cb.proposer), st.fetched.get(&cb.proposer)]
                    .into_iter()
                    .flatten()
                    .any(|(d, _)| *d == digest)
            });
            if have || cb.digest != digest {
                return;
            }
            if cb.batch.digest(&self.cfg.instance, epoch, cb.proposer) != digest {
                self.cert_failed(from, epoch, cb.proposer, step);
                return;
            }
            let st = self.epoch_state(epoch);
            st.fetched.insert(cb.proposer, (digest, cb.batch));
            self.try_deliver(step);
            return;
        }
        if cb.batch.digest(&self.cfg.instance, epoch, cb.proposer) != cb.digest
            || !self.cert_valid(epoch, cb.proposer, &cb.digest, &cb.sig)
        {
            self.cert_failed(from, epoch, cb.proposer, step);
            return;
        }
        let st = self.epoch_state(epoch);
        st.fetched.entry(cb.proposer).or_insert((cb.digest, cb.batch));
        if !st.certs.contains_key(&cb.proposer) {
            self.accept_cert(epoch, cb.proposer, cb.digest, cb.sig, step);
        }
        self.try_deliver(step);
    }

    /// A message of an epoch we delivered came from `from`: it was behind
    /// when it sent it. One epoch behind (the common case: its last votes
    /// crossed our decision) it gets only our decisions of that epoch as
    /// `Term` votes — `f + 1` of them decide each agreement, and it already
    /// holds or fetches the accepted batches — not the delivered records,
    /// which carry every batch of the epoch (megabytes under load, sent to
    /// each peer each epoch, ahead of the next epoch's proposals on the
    /// same link). Further behind, it gets the records too, as on a
    /// [`Message::SyncRequest`], which a stuck replica also sends on its
    /// tick. Once per peer and epoch either way.
    fn help(&mut self, from: u32, epoch: u64, step: &mut StepOf<C>) {
        if self.helped.get(&from).is_some_and(|&h| h >= epoch) {
            return;
        }
        if epoch + 1 == self.epoch {
            self.helped.insert(from, epoch);
            self.send_terms(from, epoch, step);
            return;
        }
        self.on_sync_request(from, epoch, step);
    }

    /// Our decisions in delivered epoch `epoch`, as `Term` votes to `from`
    /// (a replica that decided counts for every later round of that
    /// agreement).
    fn send_terms(&mut self, from: u32, epoch: u64, step: &mut StepOf<C>) {
        if let Some(d) = self.log.iter().find(|d| d.epoch == epoch) {
            let accepted: BTreeSet<u32> = d.batches.iter().map(|b| b.proposer).collect();
            for i in 0..self.cfg.n as u32 {
                let vote = AbaVote::Term(accepted.contains(&i));
                step.messages.push((Target::One(from), Message::Aba { epoch, instance: i, round: 0, vote }));
            }
        }
    }

    fn on_sync_request(&mut self, from: u32, next: u64, step: &mut StepOf<C>) {
        // Our decisions in the epoch the peer is stuck at, as `Term`s (a
        // replica that decided counts for every later round of that
        // agreement): the peer may be short of exactly the votes we sent
        // before we moved on, while `f + 1` matching sync records may not
        // exist yet (we alone delivered it, and a restarted replica only
        // observes the epochs it voted in — with overlapped epochs, more
        // of them). Resent each time the peer asks (every tick it is
        // stuck), but each delivered record at most once per peer and tick:
        // asking for `next = 0, 1, 2, …` draws each epoch once, not up to
        // `sync_batch` times, and all the asking a peer does within one
        // tick draws at most the retained log — what one honest catch-up
        // takes (it asks for the next records as soon as it adopted the
        // last ones, so a per-tick budget of one answer would cap its
        // catch-up at `sync_batch` epochs per tick). A request for an
        // epoch we have not delivered draws nothing.
        if next >= self.epoch {
            return;
        }
        let sent = self.answered_syncs.entry(from).or_default();
        let records: Vec<_> = self
            .log
            .iter()
            .filter(|d| d.epoch >= next)
            .take(self.cfg.sync_batch)
            .filter(|d| sent.insert(d.epoch))
            .cloned()
            .collect();
        if records.is_empty() {
            return;
        }
        self.send_terms(from, next, step);
        if let Some(last) = records.last() {
            self.helped.insert(from, last.epoch);
        }
        for d in records {
            step.messages.push((Target::One(from), Message::Sync { delivered: d }));
        }
    }

    fn on_sync(&mut self, from: u32, d: DeliveredEpoch<C::Sig>, step: &mut StepOf<C>) {
        // Records are kept for a bounded span of epochs ahead (what one
        // sync answer covers), so a liar cannot fill memory.
        let span = (self.cfg.sync_batch as u64).max(self.cfg.window);
        if d.epoch < self.epoch || d.epoch >= self.epoch + span {
            return;
        }
        let ok = d.batches.len() <= self.cfg.n
            && d.batches.windows(2).all(|w| w[0].proposer < w[1].proposer)
            && d.batches.iter().all(|b| {
                (b.proposer as usize) < self.cfg.n
                    && self.batch_ok(&b.batch)
                    && b.batch.digest(&self.cfg.instance, d.epoch, b.proposer) == b.digest
            });
        if !ok {
            step.faults.push(Fault::BadSync { from, epoch: d.epoch });
            return;
        }
        self.sync_votes.entry(d.epoch).or_default().insert(from, d);
        self.adopt_synced(step);
    }

    /// Delivers the current epoch from sync records once `f + 1` replicas
    /// reported the same decision (one of them is correct).
    fn adopt_synced(&mut self, step: &mut StepOf<C>) {
        loop {
            let e = self.epoch;
            let Some(votes) = self.sync_votes.get(&e) else {
                return;
            };
            let mut tally: BTreeMap<Vec<(u32, Hash32)>, Vec<u32>> = BTreeMap::new();
            for (from, d) in votes {
                tally.entry(d.decision()).or_default().push(*from);
            }
            let need = if self.mutation_is("quorum") { self.f() } else { self.f() + 1 };
            let Some((_, senders)) = tally.into_iter().find(|(_, s)| s.len() >= need) else {
                return;
            };
            // The decision is vouched for by `f + 1` senders, one of them
            // correct; the record adopted — delivered, persisted and served
            // to peers from then on — is the first of theirs whose
            // certificates all verify (a correct sender's do). A record
            // that fails is its sender's fault and is dropped.
            let mut adopted = None;
            let mut refused = Vec::new();
            for from in senders {
                let Some(record) = votes.get(&from) else {
                    continue;
                };
                match self.forged_certificate(record) {
                    None => {
                        adopted = Some(record.clone());
                        break;
                    }
                    Some(proposer) => refused.push((from, proposer)),
                }
            }
            if let Some(votes) = self.sync_votes.get_mut(&e) {
                for (from, proposer) in refused {
                    votes.remove(&from);
                    step.faults.push(Fault::BadCertificate { from, epoch: e, proposer });
                }
            }
            match adopted {
                Some(record) => self.deliver(record, step),
                // Every agreeing copy was refused: tally what is left.
                None => continue,
            }
        }
    }

    /// The first proposer of a sync record whose certificate does not
    /// verify, if any. A certificate this replica already verified for the
    /// same batch (it holds it in the epoch's state) is not checked again.
    fn forged_certificate(&self, d: &DeliveredEpoch<C::Sig>) -> Option<u32> {
        if self.mutation_is("sync-cert") {
            // Planted bug: a sync record's certificates are never checked.
            return None;
        }
        let known = self.epochs.get(&d.epoch);
        d.batches
            .iter()
            .find(|b| {
                let held = known
                    .and_then(|st| st.certs.get(&b.proposer))
                    .is_some_and(|(digest, sig)| *digest == b.digest && *sig == b.sig);
                !held && !self.cert_valid(d.epoch, b.proposer, &b.digest, &b.sig)
            })
            .map(|b| b.proposer)
    }
}
