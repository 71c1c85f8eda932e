//! Unit tests: every validity check of thesis §3.3.2 step 2 and of the
//! view-change/catch-up extensions has a refused case.

use super::*;
use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Hash32, Signature};
use std::collections::VecDeque;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct TestBlock {
    height: u64,
    txs: Vec<u64>,
    /// Commitment to the transactions, checked by `well_formed`.
    tx_root: Hash32,
}

impl TestBlock {
    fn new(height: u64, txs: Vec<u64>) -> Self {
        let tx_root = hash_tagged(Tag("test/txs"), &txs);
        Self { height, txs, tx_root }
    }
}

impl Payload for TestBlock {
    fn digest(&self) -> Hash32 {
        hash_tagged(Tag("test/block"), self)
    }
    fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    fn well_formed(&self) -> Result<(), String> {
        if hash_tagged(Tag("test/txs"), &self.txs) == self.tx_root {
            Ok(())
        } else {
            Err("transaction hashes do not match the root".into())
        }
    }
}

const INSTANCE: Hash32 = Hash32([7; 32]);

fn keys(n: usize) -> Vec<KeyPair> {
    (0..n).map(|i| KeyPair::from_seed(&format!("pbft-test-{i}"))).collect()
}

fn set(keys: &[KeyPair]) -> ValidatorSet {
    ValidatorSet::new(INSTANCE, keys.iter().map(|k| k.public()).collect()).unwrap()
}

fn replica(keys: &[KeyPair], me: u32) -> Replica<TestBlock> {
    Replica::new(Config::new(set(keys), me), keys[me as usize].clone()).unwrap()
}

fn has_fault(s: &Step<TestBlock>, pred: impl Fn(&Fault) -> bool) -> bool {
    s.faults.iter().any(pred)
}

fn sent_prepare(s: &Step<TestBlock>) -> bool {
    s.messages.iter().any(|m| matches!(m.message, Message::Prepare(_)))
}

fn sent_view_change(s: &Step<TestBlock>) -> Option<u64> {
    s.messages.iter().find_map(|m| match &m.message {
        Message::ViewChange(vc) => Some(vc.new_view),
        _ => None,
    })
}

/// Leader of height 1 in view 1 with 4 validators: (1 + 1) % 4 = 2.
const L: u32 = 2;

fn pp(keys: &[KeyPair], signer: u32, view: u64, height: u64, txs: Vec<u64>) -> PrePrepare<TestBlock> {
    PrePrepare::sign(&keys[signer as usize], &INSTANCE, view, height, TestBlock::new(height, txs))
}

/// Delivers a pre-prepare to replica 0 and answers its validation with `ok`.
fn deliver_pp(r: &mut Replica<TestBlock>, from: u32, p: PrePrepare<TestBlock>, ok: bool) -> Step<TestBlock> {
    let mut s = r.handle_message(from, Message::PrePrepare(p));
    for v in std::mem::take(&mut s.validate) {
        let verdict = if ok { Ok(()) } else { Err("execution failed".into()) };
        s.extend(r.handle_validated(v.height, v.view, v.payload.digest(), verdict));
    }
    s
}

// ---- a tiny lossless network for multi-replica tests -------------------

struct Net {
    replicas: Vec<Replica<TestBlock>>,
    queue: VecDeque<(u32, u32, Message<TestBlock>)>,
    committed: Vec<Vec<CommittedEntry<TestBlock>>>,
    faults: Vec<(u32, Fault)>,
    /// Replicas whose outgoing messages are dropped.
    silent: Vec<u32>,
    /// What leaders propose: `txs` for `(height, view)`.
    proposal: fn(u64, u64) -> Vec<u64>,
}

impl Net {
    fn new(n: usize) -> Self {
        let ks = keys(n);
        let replicas = (0..n as u32).map(|i| replica(&ks, i)).collect();
        Self {
            replicas,
            queue: VecDeque::new(),
            committed: vec![Vec::new(); n],
            faults: Vec::new(),
            silent: Vec::new(),
            proposal: |h, v| vec![h, v],
        }
    }

    fn apply(&mut self, me: u32, mut s: Step<TestBlock>) {
        loop {
            let mut more = Step::default();
            if let Some((h, v)) = s.need_proposal.take() {
                let txs = (self.proposal)(h, v);
                more.extend(self.replicas[me as usize].propose(h, v, TestBlock::new(h, txs)));
            }
            for req in std::mem::take(&mut s.validate) {
                more.extend(self.replicas[me as usize].handle_validated(
                    req.height,
                    req.view,
                    req.payload.digest(),
                    Ok(()),
                ));
            }
            for o in s.messages.drain(..) {
                if self.silent.contains(&me) {
                    continue;
                }
                match o.to {
                    Target::All => {
                        for to in 0..self.replicas.len() as u32 {
                            if to != me {
                                self.queue.push_back((me, to, o.message.clone()));
                            }
                        }
                    }
                    Target::One(to) => self.queue.push_back((me, to, o.message)),
                }
            }
            self.committed[me as usize].append(&mut s.committed);
            self.faults.extend(s.faults.drain(..).map(|f| (me, f)));
            if more.messages.is_empty()
                && more.validate.is_empty()
                && more.need_proposal.is_none()
                && more.committed.is_empty()
                && more.faults.is_empty()
            {
                return;
            }
            s = more;
        }
    }

    fn start(&mut self) {
        for i in 0..self.replicas.len() as u32 {
            let s = self.replicas[i as usize].start();
            self.apply(i, s);
        }
    }

    fn run(&mut self, max: usize) {
        for _ in 0..max {
            let Some((from, to, m)) = self.queue.pop_front() else {
                return;
            };
            let s = self.replicas[to as usize].handle_message(from, m);
            self.apply(to, s);
        }
    }

    fn fire_timers(&mut self) {
        for i in 0..self.replicas.len() as u32 {
            let r = &self.replicas[i as usize];
            let t = Timer { height: r.height(), view: r.view() };
            let s = self.replicas[i as usize].handle_timer(t);
            self.apply(i, s);
        }
    }
}

// ---- the happy path ------------------------------------------------------

#[test]
fn four_replicas_commit_with_a_verifiable_certificate() {
    let mut net = Net::new(4);
    net.start();
    net.run(10_000);
    let set = set(&keys(4));
    for c in &net.committed {
        assert!(c.len() >= 3, "each replica commits a chain of blocks");
        for (i, e) in c.iter().enumerate() {
            e.verify(&set, i as u64 + 1).unwrap();
        }
    }
    let heights = net.committed.iter().map(|c| c.len()).min().unwrap();
    for h in 0..heights {
        let b = &net.committed[0][h].payload;
        assert!(net.committed.iter().all(|c| &c[h].payload == b));
    }
    assert!(net.faults.is_empty(), "{:?}", net.faults);
}

#[test]
fn leader_follows_eq_3_4() {
    let s = set(&keys(4));
    assert_eq!(s.leader(1, 1), 2);
    assert_eq!(s.leader(2, 1), 3);
    assert_eq!(s.leader(3, 1), 0);
    assert_eq!(s.leader(1, 2), 3);
    assert_eq!(s.quorum(), 3);
    assert_eq!(set(&keys(7)).quorum(), 5);
    // |R| = 5 tolerates f = 1 but needs 4 votes so two quorums share a correct node.
    assert_eq!(set(&keys(5)).quorum(), 4);
}

// ---- pre-prepare checks (thesis step 2) -----------------------------------

#[test]
fn pre_prepare_from_a_non_leader_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, 1, pp(&ks, 1, 1, 1, vec![1]), true);
    assert!(has_fault(&s, |f| matches!(f, Fault::WrongLeader { from: 1, .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_with_a_bad_signature_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let mut p = pp(&ks, L, 1, 1, vec![1]);
    p.signature = Signature([3; 64]);
    let s = deliver_pp(&mut r, L, p, true);
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: L, .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_signed_by_someone_else_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, L, pp(&ks, 1, 1, 1, vec![1]), true);
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: L, .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_whose_block_differs_from_the_signed_hash_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let mut p = pp(&ks, L, 1, 1, vec![1]);
    p.payload = TestBlock::new(1, vec![2]);
    let s = deliver_pp(&mut r, L, p, true);
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: L, .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_with_wrong_transaction_hashes_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let mut b = TestBlock::new(1, vec![1, 2]);
    b.txs.push(3);
    let p = PrePrepare::sign(&ks[L as usize], &INSTANCE, 1, 1, b);
    let s = deliver_pp(&mut r, L, p, true);
    assert!(has_fault(&s, |f| matches!(f, Fault::InvalidProposal { leader: L, .. })));
    assert!(s.validate.is_empty() && !sent_prepare(&s));
}

#[test]
fn pre_prepare_failing_execution_is_not_voted() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), false);
    assert!(has_fault(&s, |f| matches!(f, Fault::InvalidProposal { .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn valid_pre_prepare_is_prepared() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    assert!(sent_prepare(&s));
}

#[test]
fn pre_prepare_for_a_future_view_is_not_voted() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    // Leader of view 2 at height 1 is 3; view 2 needs a new-view first.
    let s = deliver_pp(&mut r, 3, pp(&ks, 3, 2, 1, vec![1]), true);
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_for_a_left_view_is_a_stale_replay() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = r.handle_timer(Timer { height: 1, view: 1 });
    assert_eq!(sent_view_change(&s), Some(2));
    let s = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    assert!(has_fault(&s, |f| matches!(f, Fault::StaleView { from: L, view: 1, .. })));
    assert!(!sent_prepare(&s));
}

#[test]
fn pre_prepare_for_another_sequence_number_is_not_voted() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    // Height 2's leader in view 1 is 3: a future height is buffered, not voted.
    let s = deliver_pp(&mut r, 3, pp(&ks, 3, 1, 2, vec![1]), true);
    assert!(!sent_prepare(&s));
    assert!(s.messages.iter().any(|m| matches!(m.message, Message::CatchUpRequest { from_height: 1 })));
    // Pipelining, a pre-prepare one height ahead is expected (its leader
    // proposes while this height commits): buffered, no catch-up asked.
    let mut r = pipelined_replica(&ks, 0);
    let s = deliver_pp(&mut r, 3, pp(&ks, 3, 1, 2, vec![1]), true);
    assert!(!sent_prepare(&s));
    assert!(s.messages.is_empty(), "{:?}", s.messages);
}

#[test]
fn equivocating_leader_is_reported_and_second_block_ignored() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s1 = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    assert!(sent_prepare(&s1));
    let s2 = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![2]), true);
    assert!(has_fault(&s2, |f| matches!(f, Fault::Equivocation { signer: L, what: "pre-prepare", .. })));
    assert!(!sent_prepare(&s2));
}

#[test]
fn empty_block_triggers_a_view_update() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![]), true);
    assert!(!sent_prepare(&s));
    assert_eq!(sent_view_change(&s), Some(2));
    assert!(r.is_view_changing());
}

#[test]
fn message_from_an_unknown_sender_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = r.handle_message(9, Message::PrePrepare(pp(&ks, L, 1, 1, vec![1])));
    assert!(has_fault(&s, |f| matches!(f, Fault::UnknownSender { from: 9 })));
}

// ---- prepare / commit votes ------------------------------------------------

fn vote(ks: &[KeyPair], signer: u32, kind: VoteKind, view: u64, block: Hash32) -> Vote {
    Vote::sign(&ks[signer as usize], kind, &INSTANCE, view, 1, block)
}

#[test]
fn prepare_with_a_bad_signature_is_refused_and_not_counted() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let b = TestBlock::new(1, vec![1]);
    deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    // Vote from 1 signed by 3: does not verify for sender 1.
    let forged = vote(&ks, 3, VoteKind::Prepare, 1, b.digest());
    let s = r.handle_message(1, Message::Prepare(forged));
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: 1, what: "prepare" })));
    // Own + leader's prepare: only 2 of the 3 needed, so no commit yet.
    let s = r.handle_message(L, Message::Prepare(vote(&ks, L, VoteKind::Prepare, 1, b.digest())));
    assert!(!s.messages.iter().any(|m| matches!(m.message, Message::Commit(_))));
    let s = r.handle_message(3, Message::Prepare(vote(&ks, 3, VoteKind::Prepare, 1, b.digest())));
    assert!(s.messages.iter().any(|m| matches!(m.message, Message::Commit(_))));
}

#[test]
fn prepare_for_another_block_does_not_count() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    let other = TestBlock::new(1, vec![9]).digest();
    let mut s = r.handle_message(L, Message::Prepare(vote(&ks, L, VoteKind::Prepare, 1, other)));
    s.extend(r.handle_message(3, Message::Prepare(vote(&ks, 3, VoteKind::Prepare, 1, other))));
    assert!(!s.messages.iter().any(|m| matches!(m.message, Message::Commit(_))));
}

#[test]
fn equivocating_votes_are_reported() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let a = TestBlock::new(1, vec![1]).digest();
    let b = TestBlock::new(1, vec![2]).digest();
    r.handle_message(3, Message::Commit(vote(&ks, 3, VoteKind::Commit, 1, a)));
    let s = r.handle_message(3, Message::Commit(vote(&ks, 3, VoteKind::Commit, 1, b)));
    assert!(has_fault(&s, |f| matches!(f, Fault::Equivocation { signer: 3, what: "commit", .. })));
}

#[test]
fn commit_votes_of_another_kind_do_not_verify() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let a = TestBlock::new(1, vec![1]).digest();
    // A prepare signature replayed as a commit: separate tags make it fail.
    let s = r.handle_message(3, Message::Commit(vote(&ks, 3, VoteKind::Prepare, 1, a)));
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: 3, what: "commit" })));
}

#[test]
fn commit_quorum_for_an_unseen_block_fetches_it() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let a = TestBlock::new(1, vec![1]).digest();
    let mut s = Step::default();
    for i in 1..4 {
        s.extend(r.handle_message(i, Message::Commit(vote(&ks, i, VoteKind::Commit, 1, a))));
    }
    assert!(s.committed.is_empty());
    assert!(s.messages.iter().any(|m| matches!(m.message, Message::CatchUpRequest { from_height: 1 })));
}

// ---- view change -------------------------------------------------------------

fn prepared_cert(ks: &[KeyPair], view: u64, txs: Vec<u64>, signers: &[u32]) -> PreparedCert<TestBlock> {
    let payload = TestBlock::new(1, txs);
    let prepares =
        signers.iter().map(|i| (*i, vote(ks, *i, VoteKind::Prepare, view, payload.digest()).signature)).collect();
    PreparedCert { view, height: 1, payload, prepares }
}

fn vc(ks: &[KeyPair], signer: u32, new_view: u64, prepared: Option<PreparedCert<TestBlock>>) -> ViewChange<TestBlock> {
    ViewChange::sign(&ks[signer as usize], signer, &INSTANCE, new_view, 1, prepared)
}

#[test]
fn view_change_with_a_forged_prepared_certificate_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    // Only two real prepares, padded with a duplicate signer.
    let mut cert = prepared_cert(&ks, 1, vec![1], &[1, 2]);
    cert.prepares.push(cert.prepares[0]);
    let s = r.handle_message(1, Message::ViewChange(vc(&ks, 1, 2, Some(cert))));
    assert!(has_fault(&s, |f| matches!(
        f,
        Fault::ForgedCertificate { from: 1, reason: CertError::DuplicateSigner(1) }
    )));
    // A certificate claiming signatures the validators never made.
    let mut cert = prepared_cert(&ks, 1, vec![1], &[1, 2, 3]);
    cert.prepares[2].1 = cert.prepares[1].1;
    let s = r.handle_message(1, Message::ViewChange(vc(&ks, 1, 2, Some(cert))));
    assert!(has_fault(&s, |f| matches!(f, Fault::ForgedCertificate { from: 1, reason: CertError::BadSignature(3) })));
}

#[test]
fn view_change_signed_by_someone_else_is_refused() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let mut v = vc(&ks, 1, 2, None);
    v.signature = vc(&ks, 3, 2, None).signature;
    let s = r.handle_message(1, Message::ViewChange(v));
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: 1, what: "view-change" })));
    let s = r.handle_message(2, Message::ViewChange(vc(&ks, 1, 2, None)));
    assert!(has_fault(&s, |f| matches!(f, Fault::BadSignature { from: 2, what: "view-change signer" })));
}

#[test]
fn f_plus_one_view_changes_pull_a_replica_into_the_later_view() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = r.handle_message(1, Message::ViewChange(vc(&ks, 1, 3, None)));
    assert_eq!(sent_view_change(&s), None);
    let s = r.handle_message(2, Message::ViewChange(vc(&ks, 2, 3, None)));
    assert_eq!(sent_view_change(&s), Some(3));
    assert_eq!(r.view(), 3);
}

/// Replica 3 leads view 2 at height 1; it must re-propose the highest
/// prepared block from the view changes.
#[test]
fn new_leader_re_proposes_the_highest_prepared_block() {
    let ks = keys(4);
    let mut leader = replica(&ks, 3);
    let low = prepared_cert(&ks, 0, vec![5], &[0, 1, 2]);
    let high = prepared_cert(&ks, 1, vec![6], &[0, 1, 2]);
    let mut s = leader.handle_timer(Timer { height: 1, view: 1 });
    s.extend(leader.handle_message(0, Message::ViewChange(vc(&ks, 0, 2, Some(low)))));
    s.extend(leader.handle_message(1, Message::ViewChange(vc(&ks, 1, 2, Some(high.clone())))));
    let nv = s
        .messages
        .iter()
        .find_map(|m| match &m.message {
            Message::NewView(nv) => Some(nv.clone()),
            _ => None,
        })
        .expect("a quorum of view changes yields a new view");
    assert_eq!(nv.view, 2);
    assert_eq!(nv.pre_prepare.payload, high.payload);
    assert!(s.need_proposal.is_none());

    // A replica accepts it and prepares the re-proposed block.
    let mut r = replica(&ks, 0);
    let mut s = r.handle_message(3, Message::NewView(nv.clone()));
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    let req = s.validate.pop().expect("validation requested");
    assert_eq!(req.payload, high.payload);
    let s = r.handle_validated(1, 2, req.payload.digest(), Ok(()));
    assert!(sent_prepare(&s));

    // A new view that drops the prepared block is refused.
    let mut bad = nv.clone();
    bad.pre_prepare = pp(&ks, 3, 2, 1, vec![99]);
    let mut r = replica(&ks, 0);
    let s = r.handle_message(3, Message::NewView(bad));
    assert!(has_fault(&s, |f| matches!(
        f,
        Fault::InvalidNewView { reason: "does not re-propose the highest prepared block", .. }
    )));

    // Too few view changes.
    let mut thin = nv.clone();
    thin.view_changes.truncate(2);
    let mut r = replica(&ks, 0);
    let s = r.handle_message(3, Message::NewView(thin));
    assert!(has_fault(&s, |f| matches!(
        f,
        Fault::InvalidNewView { reason: "fewer than a quorum of view changes", .. }
    )));

    // Duplicated view-change signers.
    let mut dup = nv.clone();
    dup.view_changes[2] = dup.view_changes[0].clone();
    let mut r = replica(&ks, 0);
    let s = r.handle_message(3, Message::NewView(dup));
    assert!(has_fault(&s, |f| matches!(f, Fault::InvalidNewView { reason: "duplicate view-change signer", .. })));

    // From someone who does not lead view 2.
    let mut r = replica(&ks, 0);
    let s = r.handle_message(1, Message::NewView(nv));
    assert!(has_fault(&s, |f| matches!(f, Fault::WrongLeader { from: 1, view: 2, .. })));
}

#[test]
fn prepared_certificate_cannot_claim_the_view_it_justifies() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let cert = prepared_cert(&ks, 2, vec![1], &[1, 2, 3]);
    let s = r.handle_message(1, Message::ViewChange(vc(&ks, 1, 2, Some(cert))));
    assert!(has_fault(&s, |f| matches!(f, Fault::ForgedCertificate { reason: CertError::ViewOrder { .. }, .. })));
}

#[test]
fn silent_leader_is_replaced_and_the_chain_continues() {
    let mut net = Net::new(4);
    net.silent = vec![L];
    net.start();
    net.run(10_000);
    assert!(net.committed.iter().all(|c| c.is_empty()));
    net.fire_timers();
    net.run(10_000);
    for i in [0, 1, 3] {
        assert!(!net.committed[i].is_empty(), "replica {i} commits after the view change");
        assert_eq!(net.committed[i][0].cert.view, 2);
    }
}

#[test]
fn prepared_block_survives_a_view_change() {
    // Everyone prepares block A in view 1, no commit gets through, then
    // the view changes: the new leader must finalise A, not a new block.
    let mut net = Net::new(4);
    net.proposal = |h, v| if v == 1 { vec![100 + h] } else { vec![200 + h] };
    net.start();
    // Deliver everything except commit votes.
    let mut held = 0;
    while let Some((from, to, m)) = net.queue.pop_front() {
        if matches!(m, Message::Commit(_)) {
            held += 1;
            continue;
        }
        let s = net.replicas[to as usize].handle_message(from, m);
        net.apply(to, s);
    }
    assert!(held > 0);
    assert!(net.committed.iter().all(|c| c.is_empty()));
    net.fire_timers();
    net.run(100_000);
    for c in &net.committed {
        assert_eq!(c[0].payload.txs, vec![101], "the prepared block is the one committed");
    }
}

// ---- catch-up and restart -------------------------------------------------------

#[test]
fn catch_up_verifies_commit_certificates() {
    let mut net = Net::new(4);
    net.start();
    net.run(3_000);
    let entries: Vec<_> = net.committed[1].iter().take(8).cloned().collect();
    assert!(entries.len() >= 2);
    let ks = keys(4);

    let mut fresh = replica(&ks, 0);
    let mut forged = entries.clone();
    forged[0].payload = TestBlock::new(1, vec![42]);
    forged[0].cert.block = forged[0].payload.digest();
    let s = fresh.handle_message(1, Message::CatchUpResponse { entries: forged });
    assert!(has_fault(&s, |f| matches!(f, Fault::ForgedCertificate { from: 1, .. })));
    assert!(s.committed.is_empty());

    let mut short = entries.clone();
    short[0].cert.signatures.truncate(2);
    let s = fresh.handle_message(1, Message::CatchUpResponse { entries: short });
    assert!(has_fault(&s, |f| matches!(f, Fault::ForgedCertificate { reason: CertError::NoQuorum { .. }, .. })));

    let s = fresh.handle_message(1, Message::CatchUpResponse { entries: entries.clone() });
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    assert_eq!(s.committed, entries);
    assert_eq!(fresh.height(), entries.len() as u64 + 1);
}

#[test]
fn lagging_replica_is_served_from_the_log() {
    let mut net = Net::new(4);
    net.start();
    net.run(3_000);
    let ks = keys(4);
    let s = net.replicas[1].handle_message(0, Message::CatchUpRequest { from_height: 1 });
    let Some(Outgoing { to: Target::One(0), message: Message::CatchUpResponse { entries } }) = s.messages.first()
    else {
        panic!("expected a catch-up response, got {:?}", s.messages);
    };
    let set = set(&ks);
    for (i, e) in entries.iter().enumerate() {
        e.verify(&set, i as u64 + 1).unwrap();
    }
}

#[test]
fn restored_replica_does_not_vote_twice_in_its_last_view() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let s = deliver_pp(&mut r, L, pp(&ks, L, 1, 1, vec![1]), true);
    assert!(sent_prepare(&s));
    let durable = s.persist.clone().expect("vote state is persisted before the prepare leaves");
    assert_eq!((durable.height, durable.view, durable.view_changing), (1, 1, false));
    let mut back = Replica::restore(Config::new(set(&ks), 0), ks[0].clone(), &[], Some(durable)).unwrap();
    // Even a different block from the same leader in view 1 gets no vote.
    let s = deliver_pp(&mut back, L, pp(&ks, L, 1, 1, vec![2]), true);
    assert!(!sent_prepare(&s));
    // It leaves the view on its deadline, carrying what it persisted.
    let s = back.handle_timer(Timer { height: 1, view: 1 });
    assert_eq!(sent_view_change(&s), Some(2));
}

#[test]
fn config_errors_are_typed() {
    let ks = keys(4);
    assert!(matches!(
        Replica::<TestBlock>::new(Config::new(set(&ks), 0), ks[1].clone()),
        Err(ConfigError::KeyMismatch(0))
    ));
    assert!(matches!(
        Replica::<TestBlock>::new(Config::new(set(&ks), 4), ks[0].clone()),
        Err(ConfigError::BadIndex(4))
    ));
    assert_eq!(ValidatorSet::new(INSTANCE, vec![]), Err(ConfigError::Empty));
    let dup = vec![ks[0].public(), ks[0].public()];
    assert_eq!(ValidatorSet::new(INSTANCE, dup), Err(ConfigError::DuplicateKey(1)));
}

// ---- wire decoding -------------------------------------------------------------

#[test]
fn decoding_is_bounded() {
    let ks = keys(4);
    let m = Message::PrePrepare(pp(&ks, L, 1, 1, vec![1, 2, 3]));
    let bytes = m.to_bytes();
    assert_eq!(Message::<TestBlock>::from_bytes(&bytes, 1 << 16, 4, 8).unwrap(), m);
    assert!(matches!(Message::<TestBlock>::from_bytes(&bytes, 16, 4, 8), Err(DecodeError::Codec(_))));
    let cert = prepared_cert(&ks, 1, vec![1], &[0, 1, 2, 3, 0]);
    let m = Message::ViewChange(vc(&ks, 1, 2, Some(cert)));
    assert!(matches!(Message::<TestBlock>::from_bytes(&m.to_bytes(), 1 << 16, 4, 8), Err(DecodeError::OutOfBounds(_))));
    // A length prefix promising 4 billion entries in a tiny input.
    let mut evil = vec![6u8];
    evil.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Message::<TestBlock>::from_bytes(&evil, 1 << 16, 4, 8).is_err());
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
        let _ = Message::<TestBlock>::from_bytes(&bytes, 1 << 16, 4, 8);
    }

    #[test]
    fn mutated_messages_never_panic_the_replica(flip in 0usize..400, byte in proptest::prelude::any::<u8>()) {
        let ks = keys(4);
        let m = Message::PrePrepare(pp(&ks, L, 1, 1, vec![1, 2]));
        let mut bytes = m.to_bytes();
        let i = flip % bytes.len();
        bytes[i] ^= byte | 1;
        if let Ok(m) = Message::<TestBlock>::from_bytes(&bytes, 1 << 16, 4, 8) {
            let mut r = replica(&ks, 0);
            let _ = r.handle_message(L, m);
        }
    }
}

// ---- one sync per height: the declared next slot ----------------------------

/// Replica 0 prepares and commits height 1 in view 1; returns the vote
/// state persisted with its commit vote and the commit step.
fn prepare_and_commit_height_1(r: &mut Replica<TestBlock>, ks: &[KeyPair]) -> (Durable<TestBlock>, Step<TestBlock>) {
    let b = TestBlock::new(1, vec![1]);
    deliver_pp(r, L, pp(ks, L, 1, 1, vec![1]), true);
    let mut prepared = None;
    for from in [L, 3] {
        let s = r.handle_message(from, Message::Prepare(vote(ks, from, VoteKind::Prepare, 1, b.digest())));
        prepared = prepared.or(s.persist.clone().filter(|d| d.prepared.is_some()));
    }
    let prepared = prepared.expect("the prepared certificate is persisted before the commit vote");
    let mut commit = Step::default();
    for from in [1, L] {
        commit.extend(r.handle_message(from, Message::Commit(vote(ks, from, VoteKind::Commit, 1, b.digest()))));
    }
    assert_eq!(commit.committed.len(), 1, "height 1 commits");
    (prepared, commit)
}

#[test]
fn the_prepared_record_declares_the_next_slot_and_covers_its_plain_state() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let (prepared, commit) = prepare_and_commit_height_1(&mut r, &ks);
    assert_eq!(prepared.next, vec![(2, 1)], "height 2 in the same view");
    let after = commit.persist.expect("the commit persists the state of height 2");
    assert_eq!((after.height, after.view, after.prepared.is_none()), (2, 1, true));
    assert!(after.covered_by(&prepared), "block 1's write may be deferred");
    // Anything else needs its own sync.
    let changing = Durable { view_changing: true, ..after.clone() };
    assert!(!changing.covered_by(&prepared));
    let later_view = Durable { view: 2, ..after.clone() };
    assert!(!later_view.covered_by(&prepared));
    let later_height = Durable { height: 3, ..after.clone() };
    assert!(!later_height.covered_by(&prepared));
    let with_cert = Durable { prepared: prepared.prepared.clone(), ..after.clone() };
    assert!(!with_cert.covered_by(&prepared));
    assert!(!prepared.covered_by(&after), "a prepared certificate is never covered by a plain record");
}

/// The crash the schedule allows: block 1 and the plain state of height 2
/// were deferred (lost), yet the replica voted at `(2, 1)`. Restored from
/// the prepared record, it must not vote at `(2, 1)` again once block 1
/// comes back by catch-up, while a replica that never crashed does.
#[test]
fn a_replica_restored_from_the_prepared_record_never_votes_in_the_declared_slot() {
    let ks = keys(4);
    let mut r = replica(&ks, 0);
    let (prepared, commit) = prepare_and_commit_height_1(&mut r, &ks);
    let entry = commit.committed[0].clone();
    // Leader of (2, 1) is (1 + 2) % 4 = 3.
    let next = pp(&ks, 3, 1, 2, vec![2]);
    let s = deliver_pp(&mut r, 3, next.clone(), true);
    assert!(sent_prepare(&s), "the live replica votes at (2, 1)");

    let mut back = Replica::restore(Config::new(set(&ks), 0), ks[0].clone(), &[], Some(prepared.clone())).unwrap();
    assert_eq!((back.height(), back.view()), (1, 1));
    let s = back.handle_message(1, Message::CatchUpResponse { entries: vec![entry] });
    assert_eq!(s.committed.len(), 1);
    assert_eq!((back.height(), back.view()), (2, 1));
    let after = s.persist.expect("the state of height 2");
    assert_eq!(after.next, vec![(2, 1)], "the declared slot stays in the record");
    let s = deliver_pp(&mut back, 3, next, true);
    assert!(!sent_prepare(&s), "no second vote at (2, 1)");
    // A different block in that slot gets none either.
    let s = deliver_pp(&mut back, 3, pp(&ks, 3, 1, 2, vec![9]), true);
    assert!(!sent_prepare(&s));
}

// ---- pipelined heights ---------------------------------------------------

fn pipelined_replica(keys: &[KeyPair], me: u32) -> Replica<TestBlock> {
    let cfg = Config { pipeline: true, ..Config::new(set(keys), me) };
    Replica::new(cfg, keys[me as usize].clone()).unwrap()
}

/// Replica 3 leads `(2, 1)`. It validates the leader's block of `(1, 1)`
/// and gets every prepare: the step that makes it prepared (its record,
/// declaring `(2, 1)` as the next slot, to be synced first) asks for the
/// early proposal of height 2.
fn prepared_at_height_1(ks: &[KeyPair], r: &mut Replica<TestBlock>) -> (Hash32, Step<TestBlock>) {
    let p = pp(ks, L, 1, 1, vec![1, 2]);
    let block = p.payload.digest();
    let mut s = deliver_pp(r, L, p, true);
    for i in [0, 1, L] {
        s.extend(r.handle_message(i, Message::Prepare(vote(ks, i, VoteKind::Prepare, 1, block))));
    }
    (block, s)
}

fn sent_pre_prepare(s: &Step<TestBlock>) -> Option<(u64, u64, Hash32)> {
    s.messages.iter().find_map(|m| match &m.message {
        Message::PrePrepare(p) => Some((p.height, p.view, p.payload.digest())),
        _ => None,
    })
}

/// The leader of height 2 proposes once it holds height 1's prepared
/// certificate (after its commit vote, with the record that declares the
/// slot), and when height 1 commits its early block is its proposal: it
/// prepares that block and proposes nothing else in the slot.
#[test]
fn a_pipelining_leader_proposes_once_prepared_and_keeps_that_proposal() {
    let ks = keys(4);
    let mut r = pipelined_replica(&ks, 3);
    let (block, s) = prepared_at_height_1(&ks, &mut r);
    assert_eq!(s.need_proposal, Some((2, 1)), "asked for the next height's block while height 1 commits");
    let d = s.persist.clone().expect("the prepared certificate is persisted in the same step");
    assert!(d.prepared.is_some() && d.next == vec![(2, 1)]);
    assert!(s.messages.iter().any(|m| matches!(m.message, Message::Commit(_))));
    let early = TestBlock::new(2, vec![3]);
    let s = r.propose(2, 1, early.clone());
    assert_eq!(sent_pre_prepare(&s), Some((2, 1, early.digest())));
    assert!(s.persist.is_none(), "nothing new to persist: the synced record covers the slot");
    // A second request for the slot is ignored (no equivocation).
    assert!(r.propose(2, 1, TestBlock::new(2, vec![4])).messages.is_empty());
    // Height 1 commits: the early block becomes this replica's proposal.
    let mut s = Step::default();
    for i in [0, 1] {
        s.extend(r.handle_message(i, Message::Commit(vote(&ks, i, VoteKind::Commit, 1, block))));
    }
    assert_eq!(s.committed.len(), 1);
    assert_eq!((r.height(), r.view()), (2, 1));
    assert_eq!(s.need_proposal, None, "the slot already has its proposal");
    assert_eq!(sent_pre_prepare(&s), None, "not sent twice");
    let prepare = s.messages.iter().find_map(|m| match &m.message {
        Message::Prepare(v) => Some((v.height, v.view, v.block)),
        _ => None,
    });
    assert_eq!(prepare, Some((2, 1, early.digest())), "it prepares its early block");
    assert!(r.propose(2, 1, TestBlock::new(2, vec![5])).messages.is_empty());
}

/// A pipelining leader that crashed after sending its early pre-prepare
/// restarts from the synced record that declared the slot: it never
/// proposes (or votes) there again, so it cannot sign a second block for
/// `(2, 1)`; another view decides height 2.
#[test]
fn a_restarted_pipelining_leader_never_proposes_again_in_the_declared_slot() {
    let ks = keys(4);
    let mut r = pipelined_replica(&ks, 3);
    let (block, s) = prepared_at_height_1(&ks, &mut r);
    let durable = s.persist.clone().unwrap();
    assert!(sent_pre_prepare(&r.propose(2, 1, TestBlock::new(2, vec![3]))).is_some());
    // Crash: rebuilt from the synced record alone.
    let cfg = Config { pipeline: true, ..Config::new(set(&ks), 3) };
    let mut r = Replica::restore(cfg, ks[3].clone(), &[], Some(durable)).unwrap();
    let mut s = r.start();
    for i in [0, 1, L] {
        s.extend(r.handle_message(i, Message::Commit(vote(&ks, i, VoteKind::Commit, 1, block))));
    }
    assert_eq!((r.height(), r.view()), (2, 1));
    assert_eq!(s.need_proposal, None, "no second proposal in the declared slot");
    assert_eq!(sent_pre_prepare(&s), None);
    assert!(r.propose(2, 1, TestBlock::new(2, vec![9])).messages.is_empty());
}

/// Four pipelining replicas over the lossless network: every height after
/// the first is proposed early, and they commit the same chain with valid
/// certificates and no fault.
#[test]
fn four_pipelining_replicas_commit_the_same_chain() {
    let ks = keys(4);
    let mut net = Net::new(4);
    net.replicas = (0..4).map(|i| pipelined_replica(&ks, i)).collect();
    net.start();
    net.run(20_000);
    let set = set(&ks);
    let heights = net.committed.iter().map(|c| c.len()).min().unwrap();
    assert!(heights >= 5, "only {heights} heights");
    for c in &net.committed {
        for (i, e) in c.iter().enumerate() {
            e.verify(&set, i as u64 + 1).unwrap();
        }
    }
    for h in 0..heights {
        assert!(net.committed.iter().all(|c| c[h].payload == net.committed[0][h].payload));
    }
    assert!(net.faults.is_empty(), "{:?}", net.faults);
}

/// The prepared certificate replica 3 holds after [`prepared_at_height_1`].
fn cert_of(r: &Replica<TestBlock>) -> PreparedCert<TestBlock> {
    r.prepared().cloned().expect("prepared at height 1")
}

/// Replica `me`, in view 1 at height 1, is moved to view 2 by the new-view
/// of validator 3 (leader of `(1, 2)`) re-proposing `cert`'s block, and
/// prepares it there. Returns the steps' last persisted record.
fn prepare_again_in_view_2(
    ks: &[KeyPair],
    r: &mut Replica<TestBlock>,
    me: u32,
    cert: &PreparedCert<TestBlock>,
) -> (Durable<TestBlock>, Step<TestBlock>) {
    let block = cert.payload.digest();
    let mut s = r.handle_timer(Timer { height: 1, view: 1 });
    assert_eq!(sent_view_change(&s), Some(2));
    let vcs: Vec<ViewChange<TestBlock>> = [0, 1, 3].iter().map(|&i| vc(ks, i, 2, Some(cert.clone()))).collect();
    if me == 3 {
        // It leads view 2: the others' view changes make it send the new-view.
        for i in [0, 1] {
            s.extend(r.handle_message(i, Message::ViewChange(vcs[i as usize].clone())));
        }
    } else {
        let pre_prepare = PrePrepare::sign(&ks[3], &INSTANCE, 2, 1, cert.payload.clone());
        let nv = NewView { view: 2, height: 1, view_changes: vcs, pre_prepare };
        let mut step = r.handle_message(3, Message::NewView(nv));
        for v in std::mem::take(&mut step.validate) {
            step.extend(r.handle_validated(v.height, v.view, v.payload.digest(), Ok(())));
        }
        s.extend(step);
    }
    assert_eq!((r.height(), r.view(), r.is_view_changing()), (1, 2, false), "in view 2");
    for i in (0..4u32).filter(|i| *i != me) {
        s.extend(r.handle_message(i, Message::Prepare(vote(ks, i, VoteKind::Prepare, 2, block))));
    }
    let d = s.persist.clone().expect("the view-2 certificate is persisted");
    assert_eq!(d.prepared.as_ref().map(|c| c.view), Some(2), "prepared again in view 2");
    (d, s)
}

/// Height 1 commits in view 1 at `r` (the view-1 commits of 0, 1 and 2).
fn commit_height_1_in_view_1(ks: &[KeyPair], r: &mut Replica<TestBlock>, block: Hash32) -> Step<TestBlock> {
    let mut s = Step::default();
    for i in [0, 1, L] {
        s.extend(r.handle_message(i, Message::Commit(vote(ks, i, VoteKind::Commit, 1, block))));
    }
    assert_eq!(s.committed.len(), 1, "height 1 commits");
    assert_eq!((r.height(), r.view()), (2, 1), "committed with the view-1 certificate");
    s
}

/// A later view's prepared certificate declares another next slot; the
/// record must still name the slot of the early pre-prepare already sent.
/// Replica 3 leads `(2, 1)` and proposes there early, then height 1 moves
/// to view 2 and prepares again: a restart from that record, with height
/// 1 then committing with its view-1 certificate, must not propose at
/// `(2, 1)` a second time.
#[test]
fn the_early_slot_stays_declared_after_a_later_views_prepared_certificate() {
    let ks = keys(4);
    let mut r = pipelined_replica(&ks, 3);
    let (block, _) = prepared_at_height_1(&ks, &mut r);
    let early = TestBlock::new(2, vec![3]);
    assert_eq!(sent_pre_prepare(&r.propose(2, 1, early.clone())), Some((2, 1, early.digest())));
    let cert = cert_of(&r);
    let (d, _) = prepare_again_in_view_2(&ks, &mut r, 3, &cert);
    assert_eq!(d.next, vec![(2, 1), (2, 2)], "the early slot and the newly declared one");
    // Crash: rebuilt from that record alone.
    let cfg = Config { pipeline: true, ..Config::new(set(&ks), 3) };
    let mut back = Replica::restore(cfg, ks[3].clone(), &[], Some(d)).unwrap();
    let s = commit_height_1_in_view_1(&ks, &mut back, block);
    assert_eq!(s.need_proposal, None, "no second proposal at (2, 1)");
    assert_eq!(sent_pre_prepare(&s), None);
    assert!(back.propose(2, 1, TestBlock::new(2, vec![9])).messages.is_empty());
    let after = s.persist.expect("the state of height 2");
    assert!(after.next.contains(&(2, 1)), "still declared: {:?}", after.next);
}

/// A restored record's declared slot must not crowd out the one the
/// replica declares later (and then proposes in early). Replica 0 declares
/// `(2, 1)`, crashes, restarts from that record, prepares height 1 again
/// in view 2, declares `(2, 2)` (which it leads) and proposes there early:
/// the record synced before that proposal names both slots.
#[test]
fn a_restored_declared_slot_does_not_replace_the_newly_declared_one() {
    let ks = keys(4);
    let cfg = || Config { pipeline: true, ..Config::new(set(&ks), 0) };
    let mut r = Replica::new(cfg(), ks[0].clone()).unwrap();
    let (_, s) = prepared_at_height_1(&ks, &mut r);
    let first = s.persist.clone().expect("the view-1 certificate is persisted");
    assert_eq!(first.next, vec![(2, 1)]);
    let cert = cert_of(&r);
    let mut r = Replica::restore(cfg(), ks[0].clone(), &[], Some(first)).unwrap();
    let _ = r.start();
    let (d, s) = prepare_again_in_view_2(&ks, &mut r, 0, &cert);
    assert_eq!(d.next, vec![(2, 1), (2, 2)], "the restored slot and the newly declared one");
    assert_eq!(s.need_proposal, Some((2, 2)), "it leads (2, 2): an early proposal");
    let early = TestBlock::new(2, vec![4]);
    assert_eq!(sent_pre_prepare(&r.propose(2, 2, early.clone())), Some((2, 2, early.digest())));
    // A restart from that record never proposes at (2, 2) again.
    let mut back = Replica::restore(cfg(), ks[0].clone(), &[], Some(d)).unwrap();
    let mut s = back.start();
    for i in [1, 2, 3] {
        s.extend(back.handle_message(i, Message::Commit(vote(&ks, i, VoteKind::Commit, 2, cert.payload.digest()))));
    }
    assert_eq!((back.height(), back.view()), (2, 2));
    assert_eq!(s.need_proposal, None, "no second proposal at (2, 2)");
    assert!(back.propose(2, 2, TestBlock::new(2, vec![9])).messages.is_empty());
}

/// Height 1 commits with an earlier view's certificate than the one the
/// leader of `(2, 2)` proposed early under: when height 2 reaches view 2
/// that leader's new-view carries its early pre-prepare (whose parent is
/// the committed block), never a second block for the slot.
#[test]
fn an_early_pre_prepare_is_the_new_view_proposal_when_its_view_comes() {
    let ks = keys(4);
    let mut r = pipelined_replica(&ks, 0);
    let (block, _) = prepared_at_height_1(&ks, &mut r);
    let cert = cert_of(&r);
    let (_, s) = prepare_again_in_view_2(&ks, &mut r, 0, &cert);
    assert_eq!(s.need_proposal, Some((2, 2)));
    let early = TestBlock::new(2, vec![4]);
    assert_eq!(sent_pre_prepare(&r.propose(2, 2, early.clone())), Some((2, 2, early.digest())));
    let s = commit_height_1_in_view_1(&ks, &mut r, block);
    assert_eq!(s.need_proposal, None, "(2, 1) is led by 3");
    assert!(s.persist.expect("height 2's state").next.contains(&(2, 2)), "the early slot stays declared");
    // Nothing at (2, 1): on to view 2, which replica 0 leads.
    let mut s = r.handle_timer(Timer { height: 2, view: 1 });
    for i in [1, 2] {
        let vc = ViewChange::sign(&ks[i as usize], i, &INSTANCE, 2, 2, None);
        s.extend(r.handle_message(i, Message::ViewChange(vc)));
    }
    assert_eq!(s.need_proposal, None, "no fresh block asked for the early slot");
    let nv = s.messages.iter().find_map(|m| match &m.message {
        Message::NewView(nv) => Some(nv.clone()),
        _ => None,
    });
    let nv = nv.expect("the new-view of (2, 2)");
    assert_eq!((nv.height, nv.view, nv.pre_prepare.payload.digest()), (2, 2, early.digest()), "the early block");
    assert!(r.propose(2, 2, TestBlock::new(2, vec![9])).messages.is_empty());
}
