//! Attack round 8 on CTP-FL (issue 16): the root agreement's rule (as of
//! round 6's fix) that a replica validates a PBFT block re-proposed from an
//! aggregation view it never saw by the same `(root, clients)` verified
//! under another view, driven in the simulator by Byzantine leaders; now
//! replaced by fetching the view's proposal ("Re-proposed roots" in
//! `consensus`). Findings are `#[ignore]`d until fixed:
//! `cargo test -p gridledger-fl --test attack_reproposal_r8 -- --include-ignored`.

mod common;

use common::*;
use gridledger_consensus::pbft;
use gridledger_core::enclave::Attester;
use gridledger_fl::consensus::Message;
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// A Byzantine node that runs the honest code but sends its aggregation
/// proposal to every node except `skip`, never sends a PBFT commit vote or
/// catch-up answer, and (with `forward: false`) forwards no client message
/// to later leaders.
struct SkipWithholdNoForward {
    skip: Vec<u32>,
    forward: bool,
}

impl Adversary<P> for SkipWithholdNoForward {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Proposal { .. } => !self.skip.iter().any(|&n| *d == Dest::One(n)),
                Message::Pbft(b) => !matches!(**b, pbft::Message::Commit(_) | pbft::Message::CatchUpResponse { .. }),
                Message::Forward { .. } => self.forward,
                _ => true,
            })
            .collect()
    }
}

/// K = 7 (f = 2): four honest clients and client 4, which equivocates
/// (`ClientBehaviour::Equivocate`: record A to nodes 0–2, record B to
/// 3–6) but whose sends to nodes 1 and 2 are dropped, so record A reaches
/// Byzantine node 0 only and record B the honest nodes 3–6. Byzantine
/// nodes 0 and 1 (the first two aggregation leaders) skip nodes 5 and 6
/// with their proposals and withhold their commit votes, as in round 6's
/// finding 3; node 0 also keeps record A to itself when later leaders
/// collect the nodes' forwards (`forward: false`).
fn equivocating_client_and_skipping_leaders(seed: u64, forward: bool) -> Run {
    let honest = [0usize, 1, 2, 3];
    let nodes = 7;
    let mut behaviours = vec![ClientBehaviour::Honest; 4];
    behaviours.push(ClientBehaviour::Equivocate);
    run(
        seed,
        nodes,
        behaviours,
        vec![
            (0, Box::new(SkipWithholdNoForward { skip: vec![5, 6], forward })),
            (1, Box::new(SkipWithholdNoForward { skip: vec![5, 6], forward: true })),
            (nodes + 4, Box::new(DropToNodes(vec![1, 2]))),
        ],
        &honest,
    )
}

/// FINDING 1 (halt: `f` Byzantine nodes and one Byzantine client freeze a
/// chain's round for good; round 6's finding 3 is fixed only when the
/// later honest leader happens to aggregate exactly the same clients).
///
/// The re-proposal rule lets a node validate the prepared block
/// `{view: 0, root: r0, clients: L0}` only if it verified `(r0, L0)` under
/// some other view. Nothing makes a later honest leader's aggregate equal
/// view 0's: a Byzantine view-0 leader holds a client's second signed
/// record (from its own share of the upload) and excludes that client with
/// valid `Exclusion::Equivocation` evidence, while the honest leader of
/// view 2 — whom node 0 never forwards that record — holds one record
/// with `4 ≥ T` cells and aggregates the client. So `(r2, L2) ≠ (r0, L0)`;
/// the skipped nodes 5 and 6 verify only view 2's aggregate and can never
/// validate view 0's block, which PBFT must re-propose in every later PBFT
/// view (it was prepared by nodes 0–4); nodes 0 and 1 withhold their
/// commits, so at most nodes 2, 3, 4 commit (3 < 2f + 1 = 5): no root is
/// ever committed and no client decodes.
/// Expected: the round commits and every honest client decodes the same
/// global fragment (the skipped nodes must be able to validate a prepared
/// block whose aggregate no honest later leader reproduces, e.g. by
/// fetching their subfragment, or view 0's block must be abandonable).
/// Observed: no honest node commits within 5 000 ticks (nor within the
/// 20 000 of a `fl train` round, 82 aggregation views later); only the
/// Byzantine nodes 0 and 1 hold view 0's commit certificate.
/// Fixed: a node asked to validate a block of an aggregation view it left
/// without that view's proposal fetches the proposal from its peers
/// (`FetchProposal`/`Relay`), checks it as if the leader had sent it and
/// rebuilds its own subfragment from `f + 1` relayed ones ("Re-proposed
/// roots" in `consensus`; planted bugs `ReproposalViewBound`,
/// `RelayUnchecked`).
#[test]
fn skipped_nodes_commit_a_reproposed_root_no_later_leader_reproduces() {
    let honest = [0usize, 1, 2, 3];
    let r = equivocating_client_and_skipping_leaders(3, false);
    r.debug_trace();
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert_eq!(decoded, honest, "committed: {:?}; aggregated: {:?}", r.committed(), r.aggregated());
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Control (holds): the same run, but node 0 forwards record A to later
/// leaders too, so every leader excludes client 4 with the same evidence,
/// view 2's aggregate equals view 0's, and the skipped nodes validate the
/// re-proposed block by it (round 6's fix).
#[test]
fn skipped_nodes_commit_a_reproposed_root_a_later_leader_reproduces() {
    let honest = [0usize, 1, 2, 3];
    let r = equivocating_client_and_skipping_leaders(3, true);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// A Byzantine view-0 leader (node 0) whose host feeds its enclave only
/// the attested pre-vectors of nodes `0..K − f` (all genuine, a legal
/// carried set) and the cells of `extra`, a client those vectors protect
/// but the full set does not: its enclave attests the trimmed mean of
/// `clients` (the honest four and `extra`), which every node's omission
/// check accepts. Like `SkipWithholdNoForward`, it skips nodes 5 and 6
/// with the proposal and withholds its commit votes; its host, whose
/// honest code still holds the aggregate it would have made, signs PBFT
/// prepare votes for view 0's block with its own PBFT key (one per PBFT
/// view `0..8`, once).
struct NarrowCarriedSetLeader {
    cfg: std::sync::Arc<gridledger_fl::consensus::ChainConfig>,
    clients: Vec<u32>,
    beta: usize,
    voted: bool,
}

impl Adversary<P> for NarrowCarriedSetLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let rel = release_of(&self.cfg, &self.clients, self.beta);
        let keep = self.cfg.nodes - self.cfg.f();
        let mut votes = Vec::new();
        if !self.voted && sends.iter().any(|(_, m)| matches!(m, Message::Proposal { view: 0, .. })) {
            self.voted = true;
            votes = node0_prepares(&self.cfg, &rel, &self.clients);
        }
        let out: Vec<(Dest, Message)> = sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Proposal { .. } => ![5u32, 6].iter().any(|&n| *d == Dest::One(n)),
                Message::Pbft(b) => !matches!(**b, pbft::Message::Commit(_) | pbft::Message::CatchUpResponse { .. }),
                _ => true,
            })
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, pre_vectors, excluded, .. } => {
                    let pre_vectors: Vec<_> = pre_vectors.into_iter().filter(|v| v.node < keep).collect();
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &self.clients));
                    let sf = rel.subfragments[sf.node].clone();
                    let msg = Message::Proposal {
                        view: 0,
                        root: rel.root,
                        clients: self.clients.clone(),
                        ra,
                        sf,
                        excluded,
                        pre_vectors,
                    };
                    (d, msg)
                }
                other => (d, other),
            })
            .collect();
        out.into_iter().chain(votes).collect()
    }
}

/// FINDING 1, without a Byzantine client: `f` Byzantine nodes and one
/// honest client whose upload reached only nodes 0–3 (it crashed
/// mid-upload) halt the round.
///
/// Client 4 is named by the pre-vectors of nodes 0–3 only: 4 of 7, under
/// the `m − f = 5` an honest leader (carrying all seven) needs to protect
/// it, and under the deter-vectors' `2f + 1`, so honest leaders leave it
/// out. The Byzantine view-0 leader carries the genuine pre-vectors of
/// nodes 0–4 only (`K − f` of them, as allowed), under which client 4 is
/// named by 4 ≥ `5 − 2` and so protected, and aggregates it (it holds its
/// cells from nodes 0–3, `≥ T`). Every node's checks pass, view 0's block
/// is prepared by nodes 0–4, and no later honest leader reproduces
/// `(r0, L0)`: nodes 5 and 6 never validate it, nodes 0 and 1 withhold
/// their commits, and nothing commits.
/// Expected: the round commits and every honest client decodes.
/// Observed: no honest client decodes within 5 000 ticks.
/// Fixed: a node asked to validate a block of an aggregation view it left
/// without that view's proposal fetches the proposal from its peers
/// (`FetchProposal`/`Relay`), checks it as if the leader had sent it and
/// rebuilds its own subfragment from `f + 1` relayed ones ("Re-proposed
/// roots" in `consensus`; planted bugs `ReproposalViewBound`,
/// `RelayUnchecked`).
#[test]
fn a_leader_aggregating_a_partly_uploaded_client_cannot_halt_the_round() {
    let honest = [0usize, 1, 2, 3];
    let nodes = 7;
    // Client 4 is honest; its upload reached nodes 0–3 only.
    let behaviours = vec![ClientBehaviour::Honest; 5];
    let cfg = config(nodes, 5, 5 / 3);
    let r = run(
        3,
        nodes,
        behaviours,
        vec![
            (
                0,
                Box::new(NarrowCarriedSetLeader {
                    cfg: cfg.clone(),
                    clients: vec![0, 1, 2, 3, 4],
                    beta: 5 / 3,
                    voted: false,
                }),
            ),
            (1, Box::new(SkipWithholdNoForward { skip: vec![5, 6], forward: true })),
            (nodes + 4, Box::new(DropToNodes(vec![4, 5, 6]))),
        ],
        &honest,
    );
    r.debug_trace();
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert_eq!(decoded, honest, "committed: {:?}; aggregated: {:?}", r.committed(), r.aggregated());
}

/// A Byzantine PBFT leader that relabels the block it proposes: the same
/// root and clients, but `view: relabel` (an aggregation view no leader
/// ever reached), re-signed with its own PBFT key.
struct RelabelBlockView {
    cfg: std::sync::Arc<gridledger_fl::consensus::ChainConfig>,
    me: usize,
    relabel: u32,
}

impl Adversary<P> for RelabelBlockView {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let key = gridledger_fl::round::sim_node_key(self.me);
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Pbft(b) => match *b {
                    pbft::Message::PrePrepare(pp) => {
                        let mut payload = pp.payload.clone();
                        payload.view = self.relabel;
                        let pp = pbft::PrePrepare::sign(&key, &self.cfg.instance(), pp.view, pp.height, payload);
                        (d, Message::Pbft(Box::new(pbft::Message::PrePrepare(pp))))
                    }
                    other => (d, Message::Pbft(Box::new(other))),
                },
                other => (d, other),
            })
            .collect()
    }
}

/// FINDING 2 (low: the committed block's aggregation view is not
/// authenticated; reports and certificates can name a view that never
/// existed).
///
/// Since the re-proposal rule, a replica accepts a block
/// `{view: v, root, clients}` when it verified `(root, clients)` under
/// *any* view, whatever `v` says — even a view no leader ever reached or
/// proposed in. K = 4: the Byzantine node 2, which leads the round's first
/// PBFT proposal, relabels view 0's honest block as aggregation view `u32::MAX`; the
/// honest nodes validate it by the root they verified in view 0, commit
/// it, and output `Committed { view: 4294967295 }` (what `fl train`
/// reports as the round's `committed_view`, and what the commit
/// certificate carries). A committed node also stops checking any
/// proposal but that of the committed view (`on_proposal`'s `wanted`),
/// which never comes.
/// Expected: a block is accepted only for a view whose attested proposal
/// with that root and clients this node verified, or at least for a view
/// it has reached (`view ≤` the node's aggregation view), so the committed
/// view names a real attested proposal.
/// Observed: every honest node commits `view: u32::MAX`.
/// Fixed: a block is accepted only for an aggregation view whose attested
/// proposal (with that root and clients) the node verified, received or
/// fetched; a view beyond the `K` views ahead a node checks is refused.
#[test]
fn a_committed_block_names_an_aggregation_view_that_was_proposed() {
    let honest = [0usize, 1, 2, 3];
    let nodes = 4;
    let cfg = config(nodes, 4, 4 / 3);
    let r = run(
        3,
        nodes,
        vec![ClientBehaviour::Honest; 4],
        vec![(2, Box::new(RelabelBlockView { cfg, me: 2, relabel: u32::MAX }))],
        &honest,
    );
    r.debug_trace();
    let aggregated: Vec<u32> = r.aggregated().iter().map(|(v, _)| *v).collect();
    let committed = r.committed();
    assert!(!committed.is_empty(), "nothing committed");
    for (node, view, _) in &committed {
        assert!(aggregated.contains(view), "node {node} committed view {view}; views aggregated: {aggregated:?}");
    }
}

/// Round 6's skipping leaders that also alter every mini-fragment they
/// send the clients (B2C) once the re-proposed root commits.
struct SkipWithholdAlterMinis;

impl Adversary<P> for SkipWithholdAlterMinis {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let sends = SkipWithholdNoForward { skip: vec![5, 6], forward: true }.tamper(now, sends, rng);
        AlterMinis.tamper(now, sends, rng)
    }
}

/// Holds: the skipped nodes validate view 0's re-proposed block by the
/// same aggregate verified under view 2, serve their mini-fragments by
/// root, and the Byzantine leaders' altered mini-fragments (and a
/// Byzantine client altering what it forwards) are dropped by the Merkle
/// proofs: every honest client decodes the trimmed mean of the committed
/// aggregate.
#[test]
fn altered_mini_fragments_of_a_reproposed_root_are_dropped() {
    let honest = [0usize, 1, 2, 3];
    let nodes = 7;
    let r = run(
        3,
        nodes,
        vec![ClientBehaviour::Honest; 5],
        vec![
            (0, Box::new(SkipWithholdAlterMinis)),
            (1, Box::new(SkipWithholdAlterMinis)),
            (nodes + 4, Box::new(AlterMinis)),
        ],
        &honest,
    );
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Holds (finding 1 needs `f ≥ 2`): at the default topology of `fl
/// train` (K = 4, f = 1) one Byzantine node and one Byzantine client do
/// not halt the round.
///
/// Client 4 equivocates (record A to nodes 0–1, record B to 2–3) with its
/// send to node 1 dropped: A reaches Byzantine node 0 only, B the honest
/// nodes 2 and 3. Node 0, the view-0 leader, excludes the client with
/// valid equivocation evidence, skips node 3 with its proposal, never
/// forwards record A and withholds its commit votes; view 0's block is
/// prepared by nodes 0–2 but committed by nodes 1 and 2 only. The one
/// skipped node leads PBFT view 2 and re-proposes the prepared block as
/// its own — the PBFT replica takes its own new-view proposal as validated
/// without asking the node (`accept_pre_prepare(.., own: true, ..)`), so
/// node 3 commits a root it never verified (it serves no mini-fragment),
/// and nodes 1–3 make the quorum. The clients decode from nodes 1 and 2
/// (`f + 1` honest verifiers, as the prepared certificate guarantees).
/// With `f ≥ 2` skipped nodes only one of them leads a PBFT view at a
/// time, which is finding 1.
#[test]
fn one_byzantine_node_and_one_byzantine_client_cannot_halt_a_four_node_chain() {
    let honest = [0usize, 1, 2, 3];
    let nodes = 4;
    let mut behaviours = vec![ClientBehaviour::Honest; 4];
    behaviours.push(ClientBehaviour::Equivocate);
    let r = run(
        3,
        nodes,
        behaviours,
        vec![
            (0, Box::new(SkipWithholdNoForward { skip: vec![3], forward: false })),
            (nodes + 4, Box::new(DropToNodes(vec![1]))),
        ],
        &honest,
    );
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}
