//! Attack round 3 on the CTP-FL dual consensus (issue 16). Every test here
//! is a finding and is `#[ignore]`d until fixed; run them with
//! `cargo test -p gridledger-fl --test attack_r3 -- --ignored`.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::aggregate::params_to_bytes;
use gridledger_fl::consensus::{ChainConfig, Fault, Message, Output};
use gridledger_fl::round::{ClientBehaviour, RoundOutput};
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::Arc;

/// A Byzantine node `me` that, whenever it learns of a view (a
/// `ViewChange` it receives), sends every other node a garbage proposal
/// (an attestation over nothing) for each view in the next `K` that it
/// leads itself (`leader(v) = v mod K`). It never needs to be the current
/// leader: a proposal for a *future* view it leads passes the
/// `from_node == leader(view)` check and lands in `on_proposal`'s window.
/// Otherwise it behaves honestly.
struct JunkFutureProposals {
    cfg: Arc<ChainConfig>,
    me: usize,
    sent: BTreeSet<u32>,
}

impl JunkFutureProposals {
    fn junk_from(&mut self, view: u32) -> Vec<(Dest, Message)> {
        let k = self.cfg.nodes as u32;
        let rel = self.cfg.release(&params_to_bytes(&model(0))).unwrap();
        let ra = enclave(self.me).attest_evidence(&[0u8; 32]);
        let mut out = Vec::new();
        for w in view..=view.saturating_add(k) {
            if w % k != self.me as u32 || !self.sent.insert(w) {
                continue;
            }
            for d in 0..self.cfg.nodes {
                if d == self.me {
                    continue;
                }
                let sf = rel.subfragments[d].clone();
                out.push((
                    Dest::One(d as u32),
                    Message::Proposal {
                        view: w,
                        root: rel.root,
                        clients: vec![0],
                        ra,
                        sf,
                        excluded: vec![],
                        pre_vectors: vec![],
                    },
                ));
            }
        }
        out
    }
}

impl Adversary<P> for JunkFutureProposals {
    fn observe(&mut self, _: u32, m: &Message, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        match m {
            // The first client upload it sees: the round has started (view 0).
            Message::Local(_) => self.junk_from(0),
            Message::ViewChange { view, .. } => self.junk_from(*view),
            _ => Vec::new(),
        }
    }

    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
    }
}

/// Finding 1 (stall, one Byzantine node, no Byzantine client).
///
/// Expected: with one Byzantine node out of K = 4 (f = 1) and four honest
/// clients, the round commits (at the latest in the first view an honest
/// node leads) and every client decodes the trimmed mean.
/// Observed: no node ever commits (run with `ATK_DEBUG=1` for the trace).
/// A proposal that fails the check in `ChainNode::on_proposal` makes the
/// node `ask_view(view + 1)` even when `view` is a *future* view (anything
/// up to `self.view + K` is checked). With seed 31: node 1 gets the junk
/// for view 4 while in view 0 and asks for view 5; nodes 2 and 3 get the
/// junk for views 0 and 4 a few ticks later and ask for 1, then 5 — but the
/// requests for view 5 they received while still in view 0 were dropped
/// (`on_view_change` ignores a view more than `K` ahead and nothing re-sends
/// it). Nodes 0 and 1 end in view 5, nodes 2 and 3 in view 1 (tick 12).
/// View 5's leader aggregates at tick 52, before the deter-vectors (tick
/// 80), finds nothing and never retries (`proposed_in`); then each side's
/// `Timer::View` asks for a view the other side drops (6 is more than `K`
/// ahead of 1; 2 is behind 5), no timer is re-armed, and the round is
/// stuck for good — one Byzantine node, no Byzantine client.
/// Suggested fix: only a failed proposal for the node's *current* view
/// (`view == self.view`) may trigger `ask_view`; a failing proposal for a
/// later view is recorded as a fault and kept out of `checked_in` (or the
/// view-change request waits for that view to become current), so a
/// Byzantine node can only spend the views it leads itself, one timeout each;
/// and keep (or re-send on a timer) view-change requests for views ahead of
/// the window, re-arming `Timer::View` after asking, so split views reconverge;
/// a leader that has no deter-vector yet should retry rather than burn its view.
/// Fixed: a failed proposal for a later view moves no one (fault only, the
/// view checked again once current); each node's highest view request is
/// kept however far ahead (`f+1` join, `2f+1` move); `Timer::View` is
/// re-armed; a leader with no deter-vector yet retries when one arrives.
#[test]
fn junk_future_view_proposals_livelock_the_chain() {
    let cfg = config(4, 4, 1);
    let honest = [0usize, 1, 2, 3];
    let r = run(
        31,
        4,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(JunkFutureProposals { cfg, me: 0, sent: BTreeSet::new() }))],
        &honest,
    );
    let views: Vec<u32> = r
        .sim
        .outputs
        .iter()
        .filter_map(|(_, _, o)| match o {
            RoundOutput::Node(Output::NewView(v)) => Some(*v),
            _ => None,
        })
        .collect();
    let bad = r.faults().iter().filter(|f| matches!(f, Fault::BadProposal { .. })).count();
    let max_view = views.iter().max().copied().unwrap_or(0);
    r.debug_trace();
    assert!(
        !r.committed().is_empty(),
        "no commit by tick {}: honest nodes reached view {max_view} ({} NewView outputs, {bad} BadProposal faults)",
        r.sim.now(),
        views.len()
    );
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Finding 2 (stall: one Byzantine node and one lost upload).
///
/// Setup: K = 4 (f = 1), four clients, deter-vector committee {0, 3}
/// (Eqs 7.16–7.17 for this config). Client 3's upload to node 1 is lost
/// (equally: a Byzantine client skips node 1), so the honest pre-vectors
/// name client 3 twice (nodes 2, 3). Byzantine node 0 — view 0's leader and
/// a committee member — withholds everything except its attested
/// pre-vector (which names client 3: it did get the cell), and sends that
/// to node 1 only.
/// Expected: the round commits (an honest leader of view 1, 2 or 3
/// aggregates the agreed clients) and the honest clients decode.
/// Observed: never commits. Honest committee member 3 counts client 3
/// twice (< 2f+1), so client 3 is in no deter-vector and no honest leader
/// aggregates it; node 1 holds four pre-vectors, three of which name client
/// 3 (`K − f`), so `decodable_by_every_honest_leader` protects it and node
/// 1 refuses every honest leader's proposal with `UnprovenOmission`
/// (there is no evidence to give: client 3 is well formed). Nodes 2 and 3
/// verify, Byzantine node 0 withholds its PBFT votes: 2 < 2f+1, no commit
/// in any view; views cycle for ever. The omission rule is evaluated over
/// the pre-vectors each node happens to hold, which a Byzantine node
/// controls (it chooses who gets its attested pre-vector), while the
/// leader's aggregation set comes from the deter-vectors.
/// Suggested fix: make the protected set and the aggregation set come
/// from the same agreed data — e.g. protect only clients in the union of
/// the attested deter-vectors the node holds (and have the leader carry
/// the deter-vectors it used in the proposal), or have the proposal carry
/// the `K − f` attested pre-vectors the leader counted and check the
/// omission against those; or have the leader aggregate every client its
/// own pre-vectors protect, not only the deter-vector union.
/// Control (checked by hand): with node 0 withholding everything
/// (`Withhold`) instead, the same run commits.
/// Fixed: proposals carry the attested pre-vectors the leader held; nodes
/// check the omission rule against those (clients named by `≥ m − f` of
/// the `m` carried) and the leader aggregates that set with the
/// deter-vector union (mutant `LeaderDeterOnly` reverts the leader half).
#[test]
fn selective_pre_vector_makes_one_honest_node_refuse_every_leader() {
    let cfg = config(4, 4, 1);
    assert_eq!(cfg.committee(), vec![0, 3], "the scenario assumes this committee");
    let honest = [0usize, 1, 2, 3];
    let r = run(
        5,
        4,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(PreVectorOnlyTo(1))), (4 + 3, Box::new(DropToNodes(vec![1])))],
        &honest,
    );
    let refusals: Vec<&Fault> =
        r.faults().into_iter().filter(|f| matches!(f, Fault::UnprovenOmission { client: 3, .. })).collect();
    r.debug_trace();
    assert!(
        !r.committed().is_empty(),
        "no commit by tick {}: {} UnprovenOmission refusals of client 3 (first: {:?})",
        r.sim.now(),
        refusals.len(),
        refusals.first()
    );
    // Client 3 is honest: it is aggregated or excluded by the round.
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// `cfg`'s chain numbering and round in another chain history (another
/// previous block and random value).
fn in_another_history(cfg: &ChainConfig) -> ChainConfig {
    let mut other = cfg.params().clone();
    other.prev_block = gridledger_core::Hash32([0x99; 32]);
    other.random_value = [0x55; 32];
    ChainConfig::new(other)
}

/// Finding 3 (honest client excluded, under a replayed record).
///
/// An upload record is signed over `(chain index, round, fragment, client,
/// commitment, length, degree proof)` — nothing that identifies *which*
/// chain instance: not `prev_block` (`BH_{e−1,b}` of Eq 7.17), not the
/// PBFT instance hash (`ChainConfig::validator_set`), not a federation or
/// task id. A client's registered signing key outlives one round's
/// config, so the record it honestly signed for "chain 2, round 5" of one
/// chain history (another federation or model trained on the same chain
/// numbering, or an earlier attempt at the round after a reset) verifies
/// in every other "chain 2, round 5". Any party can replay it as a
/// `Local` message (transport is not authenticated; the record signature
/// is): nodes that see the replay first accept it, the others accept the
/// client's real upload, and the leader then holds two different signed
/// records — `Exclusion::Equivocation` — and excludes the honest client
/// with evidence every node accepts.
/// Expected: `check_exclusion` refuses a record signed for another chain
/// history (`EvidenceError::WrongContext`), like one for another round.
/// Observed: `Ok(client)`: the honest client is proven "faulty".
/// Suggested fix: bind the record digest (and the AEAD associated data) to
/// the chain instance — `prev_block`, or the round's PBFT instance hash —
/// and check it in `on_local`, `Forward` and `check_exclusion`. (The AEAD
/// nonce is `(round, fragment)` under a per-client key that is the same
/// for every chain history: two such uploads also reuse a ChaCha20 nonce.)
/// Fixed: `ChainConfig::instance()` (hash of chain, round, `prev_block`)
/// is in every `FragmentContext` — record digest, AEAD nonce and AAD — and
/// nodes refuse a record of another instance (`WrongContext`).
#[test]
fn record_from_another_chain_history_is_not_equivocation_evidence() {
    use gridledger_fl::coding::client_key;
    use gridledger_fl::consensus::{ChainNode, EvidenceError, Exclusion};
    use gridledger_fl::round::sim_node_key;
    let here = config(4, 4, 1);
    // The same chain numbering and round in another chain history.
    let other = Arc::new(in_another_history(&here));
    assert_ne!(here.prev_block, other.prev_block);
    let key = client_key(&SK, 0);
    let elsewhere = upload(&other, 0, &key, &model(1)).record;
    let real = upload(&here, 0, &key, &model(0)).record;
    let node = ChainNode::new(here.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let verdict = node.check_exclusion(&Exclusion::Equivocation { first: Box::new(real), second: Box::new(elsewhere) });
    assert_eq!(verdict, Err(EvidenceError::WrongContext), "an honest client proven faulty by a replay");
}

/// Finding 2b (a committed round that no client can decode: f Byzantine
/// nodes and one client that misses two nodes).
///
/// Setup: K = 7 (f = 2, quorum and `K − f` both 5), four clients,
/// committee {0, 3, 5} (Eqs 7.16–7.17 for this config); the global code
/// needs 4 of the 7 subfragments (28 parameters: 4 elements, cells of 1).
/// Client 3's uploads reach nodes 0–4 only (a Byzantine client, or two
/// lost messages). Byzantine nodes 0 and 1 run the honest code, except
/// that each sends its honest pre-vector (naming client 3) only to honest
/// nodes 2 and 6, an attested pre-vector naming clients 0–2 to the
/// others, and drops its mini-fragments.
/// Expected: every honest client decodes the same global fragment (or,
/// if the chain cannot agree, no commit and a view change).
/// Observed: nodes 3, 4, 5 (and 0, 1) count client 3 three or four times,
/// so it is in no deter-vector; they accept view 0's aggregate of clients
/// 0–2 and PBFT commits it (5 = 2f+1). Nodes 2 and 6 count client 3 five
/// times (`K − f`), refuse with `UnprovenOmission`, and — the view being
/// committed and already checked — never take their subfragments, so they
/// never send mini-fragments. With nodes 0 and 1 dropping theirs, the
/// clients get 3 subfragments (nodes 3–5), fewer than the 4 needed: the
/// round is committed, no client decodes it, and no view change can
/// repair it.
/// Suggested fix: as finding 2 (the protected set from agreed data); and
/// a node that refused a proposal that was then committed should still
/// take and serve its subfragment once the commit certificate shows
/// `2f+1` nodes verified that root (its own Merkle proof still checked).
/// Fixed: as finding 2 (so here view 0's leader aggregates client 3 and
/// every node accepts); a node that refused a root PBFT then commits serves
/// its mini-fragments if its subfragment verifies under the root (tested
/// by the mutation check's "refused nodes serve a committed root").
#[test]
fn split_pre_vectors_leave_a_committed_round_undecodable() {
    let cfg = config(7, 4, 1);
    assert_eq!(cfg.committee(), vec![0, 3, 5], "the scenario assumes this committee");
    let honest = [0usize, 1, 2];
    let byz = |me: usize| -> Box<dyn Adversary<P>> {
        Box::new(SplitPreVectorDropMinis { cfg: cfg.clone(), me, targets: vec![2, 6], short: vec![0, 1, 2] })
    };
    let r = run(
        7,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, byz(0)), (1, byz(1)), (7 + 3, Box::new(DropToNodes(vec![5, 6])))],
        &honest,
    );
    let refusals: Vec<u32> = r
        .sim
        .faults
        .iter()
        .filter(|(_, _, f)| matches!(f, Fault::UnprovenOmission { client: 3, .. }))
        .map(|(_, n, _)| *n)
        .collect();
    if std::env::var("ATK_DEBUG").is_ok() {
        for x in &r.sim.outputs {
            eprintln!("{x:?}");
        }
    }
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert!(
        decoded.len() == honest.len(),
        "committed {:?}; honest clients that decoded: {decoded:?} of {honest:?}; UnprovenOmission refusals by nodes {refusals:?}",
        r.committed().first()
    );
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Finding 3b (wrong model accepted: a replayed aggregate from another
/// chain history).
///
/// The leader's attested evidence (`ChainConfig::aggregate_evidence`) is
/// `(chain index, round, view, root, clients)` and the global subfragments'
/// Merkle leaves bind `(chain index, round, byte length)` — neither binds
/// the chain instance (`prev_block`, the PBFT instance hash). So an
/// aggregate an enclave honestly attested for "chain 2, round 5, view 0"
/// of one chain history (another federation or task on the same chain
/// numbering, a restarted attempt at the round — `Federation` numbers
/// rounds from 1 in every run, with the same enclave keys) passes every
/// check in any other "chain 2, round 5, view 0": the attestation
/// verifies, the client list names every client (the omission rule is
/// met), and each node's subfragment is under the replayed root.
/// Setup: K = 4, four honest clients; Byzantine node 0 (view 0's leader)
/// replaces its proposal with the one its enclave attested in another
/// history of the chain, where the clients' models were `−20 ×` these.
/// Expected: the honest nodes refuse it (the attestation is for another
/// chain instance), replace the leader, and the clients decode the
/// trimmed mean of this round's models. Observed: PBFT commits the replayed
/// root and every honest client decodes the other history's aggregate.
/// Suggested fix: bind the chain instance (`prev_block` or the round's
/// PBFT instance hash) into the vector and aggregate evidence, the
/// global leaves' context and the upload record (finding 3).
/// Fixed: the vector and aggregate evidence and the global Merkle leaves
/// (`GlobalContext::instance`) bind `ChainConfig::instance()`.
#[test]
fn replayed_aggregate_from_another_chain_history_is_refused() {
    use gridledger_fl::aggregate::trimmed_mean;
    let here = config(4, 4, 1);
    let other = in_another_history(&here);
    // What node 0's enclave honestly produced in the other history.
    let old_models: Vec<Vec<f32>> = (0..4).map(|c| model(c).iter().map(|x| x * -20.0).collect()).collect();
    let old_global = trimmed_mean(&old_models, 1).unwrap();
    let rel = other.release(&params_to_bytes(&old_global)).unwrap();
    let clients = vec![0, 1, 2, 3];
    let ra = enclave(0).attest_evidence(&other.aggregate_evidence(0, &rel.root, &clients));
    let honest = [0usize, 1, 2, 3];
    let r = run(
        3,
        4,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(ReplayProposal { old: (rel.root, clients, ra), subfragments: rel.subfragments }))],
        &honest,
    );
    let got = r.global_of(1);
    assert_ne!(got.as_deref(), Some(&old_global[..]), "an honest client decoded the other history's aggregate");
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Finding 6 (a setup that binds nothing is accepted).
///
/// `Kzg::from_powers` — the deployment path ("a ceremony's transcript") —
/// checks only that each list starts with the generator; it never checks
/// that the powers are powers of one `τ` (`e([τ^{i+1}]₁, [1]₂) =
/// e([τ^i]₁, [τ]₂)`, and the G2 list against the G1 list). A transcript
/// whose G1 "powers" are all the generator (`τ = 1`) is accepted, and its
/// commitments bind nothing: `[1, 0]` and `[0, 1]` commit to the same
/// point, so a client's commitment, cell proofs and degree proof no
/// longer pin one fragment (different nodes/leaders could decode different
/// models from verifying cells). Any corrupt or truncated transcript
/// (wrong order, a swapped point, G2 powers of another τ) goes through
/// the same way.
/// Expected: `from_powers` refuses a transcript whose powers are not
/// consistent (`FlError::Malformed`). Observed: `Ok`, and two different
/// polynomials share a commitment.
/// Suggested fix: verify the transcript on load with a random linear
/// combination (one multi-pairing: `e(Σ r_i [τ^{i+1}]₁, [1]₂) =
/// e(Σ r_i [τ^i]₁, [τ]₂)`, and the same for G2 against `[τ]₁`), and
/// refuse the identity.
#[test]
fn inconsistent_setup_transcript_is_refused() {
    use blstrs::{G1Projective, G2Projective, Scalar};
    use ff::Field;
    use gridledger_fl::kzg::Kzg;
    use group::{Curve, Group};
    let g1 = vec![G1Projective::generator().to_affine(); 8];
    let tau = Scalar::from(5u64);
    let mut g2 = Vec::new();
    let mut t = Scalar::ONE;
    for _ in 0..8 {
        g2.push((G2Projective::generator() * t).to_affine());
        t *= tau;
    }
    match Kzg::from_powers(g1, g2) {
        Err(_) => {}
        Ok(kzg) => {
            let a = kzg.commit(&[Scalar::ONE, Scalar::ZERO]).unwrap();
            let b = kzg.commit(&[Scalar::ZERO, Scalar::ONE]).unwrap();
            panic!("transcript accepted; commitments of [1,0] and [0,1] equal: {}", a == b);
        }
    }
}
