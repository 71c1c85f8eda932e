//! The secondary-chain roles and the smart meter as sans-IO state machines
//! (DESIGN principle 1; thesis §3.3.3–3.3.4, §3.4). Each takes what it has
//! read from the chains and returns a [`Step`]: calls to submit, private
//! delegations to deliver, and faults it observed. Randomness comes in as
//! an argument.

use gridledger_core::Address;
use rand::Rng;

use crate::args;
use crate::exec::expected_effects;
use crate::exec::{execute_leaves, OffChain};
use crate::primary::{BatchInput, Controversial, DisputeEntry, DisputeState, SubmitTcrs};
use crate::secondary::{mismatches, ExecRequest, VerifyRequest};
use crate::types::{
    dispute_commitment, dispute_digest, entry_hash, tcr_proof, Effect, IorParams, Outcome, PostedLeaf, StSettlement,
    Tcr, TcrLeaf,
};

/// Which chain a call goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Primary,
    Secondary,
}

/// A contract call a role wants submitted under its own key. The chain
/// (`target`) fixes the contract: the primary or the secondary IOR contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub target: Target,
    pub method: &'static str,
    pub args: Vec<u8>,
}

impl Call {
    pub fn primary(method: &'static str, args: Vec<u8>) -> Self {
        Self { target: Target::Primary, method, args }
    }

    pub fn secondary(method: &'static str, args: Vec<u8>) -> Self {
        Self { target: Target::Secondary, method, args }
    }
}

/// A smart meter's private request to a validator to re-verify a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delegation {
    pub meter: Address,
    pub validator: Address,
    pub batch: u64,
}

/// Misbehaviour a role observed, reported as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Recorded TCRs differ from the observer's at these entry indices.
    WrongTcr { batch: u64, observer: Address, indices: Vec<u32> },
    /// The observer could not execute the batch itself.
    ExecutionFailed { batch: u64, observer: Address, reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    pub calls: Vec<Call>,
    pub delegations: Vec<Delegation>,
    pub faults: Vec<Fault>,
}

fn own_tcrs(p: &IorParams, input: &BatchInput, me: Address, step: &mut Step) -> Option<Vec<Tcr>> {
    Some(own_leaves(p, input, me, step)?.into_iter().map(|l| l.tcr).collect())
}

fn own_leaves(p: &IorParams, input: &BatchInput, me: Address, step: &mut Step) -> Option<Vec<TcrLeaf>> {
    match execute_leaves(&mut OffChain, p, &input.prestate, &input.entries) {
        Ok(t) => Some(t),
        Err(e) => {
            step.faults.push(Fault::ExecutionFailed { batch: input.header.id, observer: me, reason: e.to_string() });
            None
        }
    }
}

/// Are the posted per-entry roots, post-state root and burn of `input`
/// what its entries leave? `own` are the checker's leaves with their
/// post-state roots filled in ([`crate::state::fill_post_roots`]).
fn roots_match(p: &IorParams, input: &BatchInput, full: &crate::exec::PreState, own: &[TcrLeaf]) -> bool {
    let tcrs: Vec<Tcr> = own.iter().map(|l| l.tcr.clone()).collect();
    crate::state::post_state(p, full, &input.entries, &tcrs).is_ok_and(|(s, b)| {
        input.header.post_root == Some(crate::state::state_root(&s)) && input.header.burned == Some(b)
    }) && input
        .leaves
        .as_ref()
        .is_none_or(|ls| ls.len() == own.len() && ls.iter().zip(own).all(|(p, o)| p.post_root == o.post_root))
}

/// Does the batch's posted state (per-entry roots, post-state root, burn)
/// follow from its entries? `None` when the batch has no recorded TCRs yet
/// or its entries cannot be executed. A smart meter runs this on every
/// batch, not only those naming its owner: the post-state root commits to
/// its owner's record, which a forged root can change although no entry or
/// effect names the owner (attack_smt, theft through the root).
pub fn posted_state_ok(p: &IorParams, input: &BatchInput) -> Option<bool> {
    input.tcrs.as_ref()?;
    let mut own = execute_leaves(&mut OffChain, p, &input.prestate, &input.entries).ok()?;
    let full = input.full_state(p);
    crate::state::fill_post_roots(p, &full, &input.entries, &mut own);
    Some(roots_match(p, input, &full, &own))
}

/// How an executor behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorBehaviour {
    Honest,
    /// Forges TCRs that pay every settled ST's payouts to itself (the
    /// threat of §3.3.4: "transferring the deposited coins by traders to its
    /// own digital account"). Such TCRs never settle: their effects do not
    /// follow from the entries, which a dispute of the entry shows and
    /// `finalize` checks.
    StealPayouts,
    /// Posts well-formed but wrong verdicts on settled STs (a seller that
    /// delivered is found short and vice versa), the lie a shape check
    /// cannot catch and a dispute must.
    FlipVerdicts,
    /// Accepts every AT, even those `SC_EXE_AT` refuses; the effects of such
    /// a verdict may not apply at settlement (issue 11 item 5).
    AcceptAll,
    /// Never posts TCRs (withholding): another executor stands in once the
    /// dispute window has passed since the batch's first entry.
    Silent,
}

/// An executor (§3.3.3 (1)): on a new batch, copies it to the secondary
/// chain, executes it there and records the TCRs on the primary chain.
pub struct Executor {
    pub address: Address,
    pub params: IorParams,
    pub behaviour: ExecutorBehaviour,
}

impl Executor {
    /// Handles a closed batch whose TCRs are not yet recorded.
    pub fn on_batch(&mut self, input: &BatchInput) -> Step {
        let mut step = Step::default();
        if input.tcrs.is_some() || self.behaviour == ExecutorBehaviour::Silent {
            return step;
        }
        let Some(mut leaves) = own_leaves(&self.params, input, self.address, &mut step) else { return step };
        for (t, e) in leaves.iter_mut().map(|l| &mut l.tcr).zip(&input.entries) {
            let forged = match (self.behaviour, &t.outcome) {
                (ExecutorBehaviour::StealPayouts, Outcome::StSettled(_)) => {
                    for e in &mut t.effects {
                        if let Effect::Pay { to, .. } = e {
                            *to = self.address;
                        }
                    }
                    continue;
                }
                (ExecutorBehaviour::FlipVerdicts, Outcome::StSettled(s)) => Outcome::StSettled(match s {
                    StSettlement::SellerShortfall => StSettlement::SellerDelivered,
                    _ => StSettlement::SellerShortfall,
                }),
                (ExecutorBehaviour::AcceptAll, Outcome::AtRejected(_)) => Outcome::AtAccepted,
                _ => continue,
            };
            if let Some(effects) = expected_effects(&self.params, e, &forged) {
                t.outcome = forged;
                t.effects = effects;
            }
        }
        let batch = input.header.id;
        step.calls.push(Call::secondary(
            "sc_exe",
            args(&ExecRequest { batch, entries: input.entries.clone(), prestate: input.prestate.clone() }),
        ));
        // One TCR root per batch (issue 11): the leaves travel as this
        // call's block data, the chain keeps their Merkle root.
        let entry_hashes = input.entries.iter().map(entry_hash).collect();
        // Each leaf carries the state root its effects leave, the last one
        // the batch's post-state root: an honest executor's are the
        // chain's, a thief's are caught by a dispute.
        let full = input.full_state(&self.params);
        crate::state::fill_post_roots(&self.params, &full, &input.entries, &mut leaves);
        let post_root = leaves.last().map_or_else(|| crate::state::state_root(&full), |l| l.post_root);
        let burned = leaves
            .iter()
            .flat_map(|l| &l.tcr.effects)
            .filter_map(|e| if let Effect::Burn(a) = e { Some(a.0) } else { None })
            .fold(0u128, u128::saturating_add);
        let burned = gridledger_core::Amount(burned);
        let leaves = leaves.iter().map(TcrLeaf::posted).collect();
        step.calls.push(Call::primary("sc_cr", args(&SubmitTcrs { batch, entry_hashes, leaves, post_root, burned })));
        step
    }
}

/// How a validator behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatorBehaviour {
    Honest,
    /// Bribed by the executor: stays silent on wrong TCRs.
    Colluding,
}

/// A validator (§3.3.3 (2)), possibly acting as a delegated validator
/// (§3.3.4).
pub struct Validator {
    pub address: Address,
    pub params: IorParams,
    pub behaviour: ValidatorBehaviour,
}

impl Validator {
    fn check(&self, input: &BatchInput, record_verdict: bool) -> Step {
        let mut step = Step::default();
        let Some(recorded) = &input.tcrs else { return step };
        let batch = input.header.id;
        if self.behaviour == ValidatorBehaviour::Colluding {
            return step;
        }
        let Some(mut own_l) = own_leaves(&self.params, input, self.address, &mut step) else { return step };
        let own: Vec<Tcr> = own_l.iter().map(|l| l.tcr.clone()).collect();
        let full = input.full_state(&self.params);
        crate::state::fill_post_roots(&self.params, &full, &input.entries, &mut own_l);
        if record_verdict {
            // SC_VERIFY on the secondary chain (§3.4 Step 4).
            step.calls.push(Call::secondary(
                "sc_verify",
                args(&VerifyRequest {
                    batch,
                    entries: input.entries.clone(),
                    prestate: input.prestate.clone(),
                    tcrs: recorded.clone(),
                }),
            ));
        }
        let mut bad = mismatches(recorded, &own);
        let roots_ok = roots_match(&self.params, input, &full, &own_l);
        if !roots_ok && bad.is_empty() {
            bad.push(u32::MAX);
        }
        if !bad.is_empty() {
            step.faults.push(Fault::WrongTcr { batch, observer: self.address, indices: bad });
            // The controversial transaction (§3.4 Step 5): one entry with
            // its Merkle witness where the posted inputs are right and the
            // result wrong, else the whole batch.
            step.calls.extend(committed(dispute_call(&self.params, input, &own_l), &self.address));
        }
        step
    }

    /// The assigned validator re-executes a batch as soon as its TCRs are
    /// recorded.
    pub fn on_tcrs_recorded(&mut self, input: &BatchInput) -> Step {
        if input.header.validator != self.address {
            return Step::default();
        }
        self.check(input, true)
    }

    /// A smart meter delegated this validator to re-verify a batch.
    pub fn on_delegation(&mut self, input: &BatchInput) -> Step {
        self.check(input, false)
    }

    /// The conventional-OR watcher (§3.5.3 baseline): re-executes off chain
    /// and challenges wrong TCRs, but records no `SC_VERIFY` verdict, since
    /// an optimistic rollup settles unverified after its window.
    pub fn watch(&mut self, input: &BatchInput) -> Step {
        if input.header.validator != self.address {
            return Step::default();
        }
        self.check(input, false)
    }

    /// A participant disputed the TCR of entry `index` and this validator
    /// was selected to validate that one ST (§3.5.3: "for each disputed ST,
    /// 1 delegated validator is selected"). It executes the entries before
    /// it off chain to reach the entry's pre-state, then records `SC_VERIFY`
    /// of that single entry on the secondary chain, so the cost of a dispute
    /// grows with the disputed STs, not with the batch. A wrong TCR is
    /// escalated to the primary chain as a controversial transaction.
    pub fn on_participant_dispute(&mut self, input: &BatchInput, index: u32) -> Step {
        let mut step = Step::default();
        let Some(recorded) = &input.tcrs else { return step };
        let i = index as usize;
        let (Some(entry), Some(theirs)) = (input.entries.get(i), recorded.get(i)) else { return step };
        if self.behaviour == ValidatorBehaviour::Colluding {
            return step;
        }
        let batch = input.header.id;
        let prefix = &input.entries[..i];
        let (done, pre) = match crate::exec::execute_and_apply(&mut OffChain, &self.params, &input.prestate, prefix) {
            Ok(x) => x,
            Err(e) => {
                step.faults.push(Fault::ExecutionFailed { batch, observer: self.address, reason: e.to_string() });
                return step;
            }
        };
        // Only the traders and agreement this entry touches travel.
        let mut prestate = crate::exec::slice(&pre, entry, self.params.meter_step_s);
        let key = entry.tx.terms().key();
        if input.prestate.agreements.contains_key(&key) && !pre.agreements.contains_key(&key) {
            prestate.closed_in_batch.insert(key);
        }
        // The entry's AT, if an earlier entry of the batch penalised its seller for it.
        if let crate::types::IorTx::At(at) = &entry.tx {
            let h = crate::exec::at_hash(&at.terms);
            if prefix.iter().zip(&done).any(|(e, t)| crate::exec::penalised_seller(e, &t.outcome) == Some(h)) {
                prestate.penalised_in_batch.insert(h);
            }
        }
        let single = Tcr { index: 0, ..theirs.clone() };
        let mine = crate::exec::execute_batch(&mut OffChain, &self.params, &prestate, std::slice::from_ref(entry));
        step.calls.push(Call::secondary(
            "sc_verify",
            args(&VerifyRequest { batch, entries: vec![entry.clone()], prestate, tcrs: vec![single.clone()] }),
        ));
        // Escalate a wrong TCR with the whole batch's correct TCRs.
        let agrees = matches!(&mine, Ok(t) if t.first() == Some(&single));
        if !agrees {
            if let Some(own) = own_leaves(&self.params, input, self.address, &mut step) {
                step.faults.push(Fault::WrongTcr { batch, observer: self.address, indices: vec![index] });
                step.calls.extend(committed(dispute_call(&self.params, input, &own), &self.address));
            }
        }
        step
    }
}

/// A trader's smart meter (§3.3.4): checks every TCR that touches its
/// owner (the owner sent, buys or sells in the entry, or a recorded effect
/// names it; issue 11 item 1) against its own computation and, on
/// disagreement, privately picks delegated validators at random.
pub struct SmartMeter {
    pub owner: Address,
    pub params: IorParams,
    /// How many validators to delegate to on a disagreement.
    pub delegates: usize,
}

impl SmartMeter {
    pub fn on_tcrs_recorded(&mut self, input: &BatchInput, validators: &[Address], rng: &mut impl Rng) -> Step {
        let mut step = Step::default();
        if input.tcrs.is_none() || !self.involved(input) {
            return step;
        }
        let Some(own) = own_tcrs(&self.params, input, self.owner, &mut step) else { return step };
        let mut s = self.on_tcrs_computed(input, &own, validators, rng);
        s.faults.splice(0..0, step.faults);
        s
    }

    /// Does entry `i` or its recorded TCR touch this meter's owner?
    fn touches(&self, input: &BatchInput, i: usize) -> bool {
        let Some(e) = input.entries.get(i) else { return false };
        let t = e.tx.terms();
        let me = self.owner;
        if e.sender == me || t.buyer == me || t.seller == me {
            return true;
        }
        let recorded = input.tcrs.as_ref().and_then(|ts| ts.get(i));
        recorded.is_some_and(|tcr| {
            tcr.effects.iter().any(|eff| match eff {
                Effect::Lock { who, .. } | Effect::Reputation { who, .. } => *who == me,
                Effect::Pay { to, .. } => *to == me,
                Effect::Open(t) => t.buyer == me || t.seller == me,
                _ => false,
            })
        })
    }

    /// Does the batch hold an entry or TCR touching this meter's owner?
    pub fn involved(&self, input: &BatchInput) -> bool {
        (0..input.entries.len()).any(|i| self.touches(input, i))
    }

    /// [`Self::on_tcrs_recorded`] with the batch's TCRs already computed
    /// off chain (`own`). Every honest meter computes the same TCRs from the
    /// same recorded data, so an in-process driver simulating many meters
    /// computes them once per batch and hands them to each.
    pub fn on_tcrs_computed(
        &mut self,
        input: &BatchInput,
        own: &[Tcr],
        validators: &[Address],
        rng: &mut impl Rng,
    ) -> Step {
        let mut step = Step::default();
        let Some(recorded) = &input.tcrs else { return step };
        let mine: Vec<usize> = (0..input.entries.len()).filter(|i| self.touches(input, *i)).collect();
        if mine.is_empty() {
            return step;
        }
        let bad: Vec<u32> = mine.into_iter().filter(|i| own.get(*i) != recorded.get(*i)).map(|i| i as u32).collect();
        if bad.is_empty() || validators.is_empty() {
            return step;
        }
        let batch = input.header.id;
        step.faults.push(Fault::WrongTcr { batch, observer: self.owner, indices: bad });
        let k = self.delegates.clamp(1, validators.len());
        let picks: Vec<usize> = if crate::mutants::active(crate::mutants::Mutation::DelegatesPredictable) {
            (0..k).collect()
        } else {
            rand::seq::index::sample(rng, validators.len(), k).into_vec()
        };
        for i in picks {
            step.delegations.push(Delegation { meter: self.owner, validator: validators[i], batch });
        }
        step
    }
}

impl SmartMeter {
    /// The meter's check of the batch's posted state root
    /// ([`posted_state_ok`], computed once per batch by the caller): on a
    /// wrong root it raises a fault and privately delegates validators, as
    /// for a wrong TCR, whether or not an entry names its owner.
    pub fn on_roots_checked(
        &mut self,
        input: &BatchInput,
        roots_ok: bool,
        validators: &[Address],
        rng: &mut impl Rng,
    ) -> Step {
        let mut step = Step::default();
        if roots_ok || input.tcrs.is_none() || validators.is_empty() {
            return step;
        }
        let batch = input.header.id;
        step.faults.push(Fault::WrongTcr { batch, observer: self.owner, indices: vec![u32::MAX] });
        let k = self.delegates.clamp(1, validators.len());
        for i in rand::seq::index::sample(rng, validators.len(), k).into_vec() {
            step.delegations.push(Delegation { meter: self.owner, validator: validators[i], batch });
        }
        step
    }
}

/// How an honest disputer `committer` sends a dispute (attack_state
/// finding 6): first `commit_dispute` to its [`dispute_commitment`] (the
/// [`dispute_digest`] of the method and arguments bound to the committer's
/// address, which reveals nothing of them), then, in a later block, the
/// dispute itself, sent by `committer`. Only a sender that committed is
/// paid the reward: whoever copies the commitment or the dispute from the
/// mempool earns nothing. The commitment costs one small transaction; it
/// is sent only with a dispute, so an agreeing validator still sends
/// nothing (§3.3.4).
pub fn committed(dispute: Call, committer: &Address) -> [Call; 2] {
    let c = dispute_commitment(&dispute_digest(dispute.method, &dispute.args), committer);
    [Call::primary("commit_dispute", args(&c)), dispute]
}

/// The controversial transaction for a batch whose posted TCRs differ from
/// `own` (the disputer's leaves): at the first differing leaf, if the
/// posted inputs (pre-state slice) are the disputer's own, only the result
/// is wrong and one entry with its Merkle witness suffices
/// (`dispute_entry`); otherwise the posted inputs are wrong, which only a
/// re-execution of the whole batch shows (`dispute`).
pub fn dispute_call(p: &IorParams, input: &BatchInput, own: &[TcrLeaf]) -> Call {
    let batch = input.header.id;
    let whole = || {
        let claimed = own.iter().map(|l| l.tcr.clone()).collect();
        let state = input.state.clone().unwrap_or_default();
        let witness = crate::state::batch_witness(&state, &input.queue, &input.entries, p.meter_step_s);
        Call::primary("dispute", args(&Controversial { batch, claimed, entries: input.entries.clone(), witness }))
    };
    let Some(posted) = &input.leaves else { return whole() };
    let mine: Vec<PostedLeaf> = own.iter().map(TcrLeaf::posted).collect();
    let Some(i) = (0..own.len()).find(|i| posted.get(*i) != mine.get(*i)) else { return whole() };
    if posted.len() != own.len() || posted[i].pre_hash != mine[i].pre_hash {
        return whole();
    }
    let hashes: Vec<_> = input.entries.iter().map(entry_hash).collect();
    if posted[i].tcr == mine[i].tcr {
        // Only the state root after entry i is wrong: a per-entry state
        // dispute from the state before it (the root of leaf i − 1).
        return state_dispute_call(p, input, posted, &hashes, i).unwrap_or_else(whole);
    }
    match tcr_proof(&p.domain, batch, &hashes, posted, i) {
        Some(proof) => Call::primary(
            "dispute_entry",
            args(&DisputeEntry {
                batch,
                entry: input.entries[i].clone(),
                pre: own[i].pre.clone(),
                leaf: posted[i].clone(),
                proof,
            }),
        ),
        None => whole(),
    }
}

/// `dispute_state` for entry `i` of a batch whose posted leaves agree with
/// the disputer's up to `i` except for leaf `i`'s post-state root: the
/// records entry `i` touches, proved against the state before it (the
/// settled state for `i = 0`, whose queue items the chain applies; else
/// the state the posted TCRs `0..i` leave, whose root is leaf `i − 1`'s),
/// with the witnesses of leaves `i` and `i − 1`.
fn state_dispute_call(
    p: &IorParams,
    input: &BatchInput,
    posted: &[PostedLeaf],
    hashes: &[gridledger_core::Hash32],
    i: usize,
) -> Option<Call> {
    let batch = input.header.id;
    let proof = tcr_proof(&p.domain, batch, hashes, posted, i)?;
    let entry = input.entries[i].clone();
    let (witness, prev) = if i == 0 {
        (crate::state::entry_witness(input.state.as_ref()?, &input.queue, &entry, &posted[i].tcr, p.meter_step_s), None)
    } else {
        let before: Vec<Tcr> = posted[..i].iter().map(|l| l.tcr.clone()).collect();
        let (s, _) = crate::state::post_state(p, &input.full_state(p), &input.entries, &before).ok()?;
        let pp = tcr_proof(&p.domain, batch, hashes, posted, i - 1)?;
        (
            crate::state::entry_witness(&s, &[], &entry, &posted[i].tcr, p.meter_step_s),
            Some((input.entries[i - 1].clone(), posted[i - 1].clone(), pp)),
        )
    };
    Some(Call::primary(
        "dispute_state",
        args(&DisputeState { batch, entry, leaf: posted[i].clone(), proof, prev, witness }),
    ))
}
