//! Attack round 18 on CTP-FL (issue 16): a node's stores of verified
//! proposals (`verified`, `proposals`, `minis`, fetches) are keyed by
//! `(view, root)` without the client list, while a PBFT root block is
//! `(view, root, clients)`. The Merkle root binds the global fragment (and
//! the chain instance) only, so two different client lists whose trimmed
//! means are equal share one root.
//! `cargo test -p gridledger-fl --test attack_root_key_r18 -- --include-ignored`.

mod common;

use common::two_lists::*;
use common::view0::{carried_small, A};
use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::consensus::{AttestedVector, Fault, Message, PRE_VECTOR};
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// K = 7 (f = 2), twelve honest clients, clients 0 and 11 reaching nodes
/// 0–4 only (their uploads to nodes 5 and 6 are lost), Byzantine node 0 as
/// [`SameRootTwoLists`] and Byzantine node 1 running the honest code but
/// withholding its PBFT commit votes and catch-up answers.
fn same_root_run(seed: u64) -> Run {
    let cfg = config(NODES, CLIENTS, BETA);
    two_lists_run(seed, vec![(0, Box::new(SameRootTwoLists { cfg, done: false })), (1, Box::new(WithholdCommits))])
}

/// The scenario's premise: the two client lists' trimmed means are the same
/// model, hence one root, and each is a proposal every honest node verifies
/// on its own (neither leaves out a client the carried pre-vectors protect).
#[test]
fn two_client_lists_share_one_root() {
    let cfg = config(NODES, CLIENTS, BETA);
    let (a, b) = lists();
    assert_ne!(a, b);
    assert_eq!(model(0), model(11));
    assert_eq!(mean_of(&a), mean_of(&b));
    assert_eq!(release_of(&cfg, &a, BETA).root, release_of(&cfg, &b, BETA).root);
}

/// FINDING 1 (high: the round never ends, by two Byzantine nodes of seven;
/// honest PBFT leaders are recorded as proposing invalid blocks).
///
/// K = 7 (f = 2), see [`same_root_run`]. Nodes 1–4 verify `(0, R) → A`,
/// nodes 5 and 6 verify `(0, R) → B`: both proposals pass every check (the
/// leader's attestation, the omission rule under the carried pre-vectors,
/// the subfragment's Merkle proof). Node 1 (PBFT leader of PBFT view 0)
/// proposes block `(0, R, A)`; with node 0's prepare it is prepared at
/// nodes 2–4, so every later PBFT view must re-propose it. Nodes 5 and 6
/// refuse it ("clients differ from the attested aggregate") and, their
/// `verified` maps holding `(0, R)` already, never fetch the proposal the
/// block names (`on_relay` would drop it too: `(0, R)` is verified). A PBFT
/// leader's own re-proposal is not validated, so node 5 (or 6) commits it
/// in the PBFT view it leads while the other refuses: with node 1's commit
/// withheld, the block gets at most four commit votes of the five it needs,
/// in every PBFT view, for good — and the honest re-proposers are recorded
/// as proposing invalid blocks. Expected: a node validates a block by the
/// attested proposal of its `(view, root, clients)` (fetching it, as for a
/// junk copy, when the one it holds names other clients), the round
/// commits, every honest client decodes the trimmed mean of the committed
/// list, and no honest node is recorded as having proposed an invalid block.
#[test]
fn two_client_lists_under_one_root_halt_the_round() {
    let r = same_root_run(1);
    r.debug_trace();
    let blamed: Vec<&Fault> = r
        .faults()
        .into_iter()
        .filter(|f| {
            matches!(f, Fault::Pbft(gridledger_consensus::pbft::Fault::InvalidProposal { leader, .. }) if *leader > 1)
        })
        .collect();
    let committed = r.committed();
    let decoded = decoders_of_a(&r);
    assert!(
        committed.iter().filter(|(n, _, _)| *n > 1).count() == NODES - 2
            && decoded == HONEST_DECODERS.len()
            && blamed.is_empty(),
        "honest nodes committed: {:?}; honest clients decoded: {decoded} of {}; honest PBFT leaders recorded as \
         proposing an invalid block: {} times (first {:?})",
        committed,
        HONEST_DECODERS.len(),
        blamed.len(),
        blamed.first()
    );
}

/// The attested proposal `(0, R, clients)` as node `me`'s relay (its own
/// subfragment of `R`, the carried pre-vectors of [`SameRootTwoLists`]).
fn relay_of(cfg: &gridledger_fl::consensus::ChainConfig, me: usize, clients: &[u32]) -> Message {
    let short: Vec<u32> = (1..=10).collect();
    let mut pre_vectors = Vec::new();
    for node in 0..NODES {
        let named: Vec<u32> = if node < 2 {
            short.clone()
        } else if SKIPPED.contains(&(node as u32)) {
            (1..=10).collect()
        } else {
            (0..CLIENTS as u32).collect()
        };
        let ev = cfg.vector_evidence(PRE_VECTOR, node, 0, 0, &named);
        pre_vectors.push(AttestedVector {
            node,
            view: 0,
            seq: 0,
            clients: named,
            ra: enclave(node).attest_evidence(&ev),
        });
    }
    let rel = release_of(cfg, &lists().0, BETA);
    as_relay(me, leader_proposal(cfg, &rel, me, clients, pre_vectors))
}

/// Byzantine nodes 0 (view 0's leader) and 1, colluding. Node 0 sends its
/// view-0 proposal `(0, R, A)` (as [`SameRootTwoLists`]) to nodes 1–4 only
/// — nodes 5 and 6 get none — and signs prepare votes for block
/// `(0, R, A)`; node 1 runs the honest code but withholds its commit votes.
/// Both answer every message a skipped node sends them with a relay of
/// `(0, R, B)`: the attestation node 0's enclave gave for list `B`, their
/// own genuine subfragment of `R` (so the relay passes every check), and
/// they relay nothing else to the skipped nodes.
struct RelayOtherList {
    cfg: Arc<gridledger_fl::consensus::ChainConfig>,
    me: usize,
    inner: Option<SameRootTwoLists>,
}

impl Adversary<P> for RelayOtherList {
    fn observe(&mut self, from: gridledger_sim::NodeId, _: &Message, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if SKIPPED.contains(&from) {
            let (_, b) = lists();
            vec![(Dest::One(from), relay_of(&self.cfg, self.me, &b))]
        } else {
            Vec::new()
        }
    }

    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let sends = match self.inner.as_mut() {
            Some(inner) => inner.tamper(now, sends, rng),
            None => sends.into_iter().filter(|(_, m)| !commit_or_catch_up(m)).collect(),
        };
        sends
            .into_iter()
            .filter(|(d, m)| {
                let skipped = SKIPPED.iter().any(|&n| *d == Dest::One(n));
                !(skipped && matches!(m, Message::Proposal { .. } | Message::Relay { .. }))
            })
            .collect()
    }
}

/// K = 7 (f = 2): as [`same_root_run`], but nodes 5 and 6 get no view-0
/// proposal and Byzantine nodes 0 and 1 are [`RelayOtherList`].
fn relayed_list_run(seed: u64) -> Run {
    let cfg = config(NODES, CLIENTS, BETA);
    let leader = SameRootTwoLists { cfg: cfg.clone(), done: false };
    two_lists_run(
        seed,
        vec![
            (0, Box::new(RelayOtherList { cfg: cfg.clone(), me: 0, inner: Some(leader) })),
            (1, Box::new(RelayOtherList { cfg, me: 1, inner: None })),
        ],
    )
}

/// FINDING 2 (high: the round never ends, by two Byzantine nodes of seven —
/// the fetch path of finding 1).
///
/// K = 7 (f = 2), see [`relayed_list_run`]. Block `(0, R, A)` is prepared
/// at nodes 2–4 (nodes 0, 1 and 2–4 verified or voted for it). Nodes 5 and
/// 6, skipped, fetch `(0, R)`; a fetch is keyed by `(view, root)` and takes
/// the first relayed proposal that passes the checks, so the Byzantine
/// relays of `(0, R, B)` — attested by view 0's leader, with genuine
/// subfragments — become what the skipped nodes verified, and the honest
/// relays of `(0, R, A)` that follow are not looked at as proposals. From
/// then on the skipped nodes refuse block `(0, R, A)` ("clients differ")
/// and never fetch again (`(0, R)` is verified), so the block that PBFT
/// must re-propose gets at most four commit votes of five. Expected: a
/// fetch is for the block's `(view, root, clients)`, a relay of other
/// clients does not complete it, and the round commits.
#[test]
fn a_relay_of_another_client_list_halts_the_round() {
    let r = relayed_list_run(1);
    r.debug_trace();
    let differ = r
        .faults()
        .into_iter()
        .filter(|f| matches!(f, Fault::Pbft(gridledger_consensus::pbft::Fault::InvalidProposal { reason, .. }) if reason.contains("clients differ")))
        .count();
    let committed = r.committed();
    let decoded = decoders_of_a(&r);
    assert!(
        committed.iter().filter(|(n, _, _)| *n > 1).count() == NODES - 2 && decoded == HONEST_DECODERS.len(),
        "honest nodes committed: {committed:?}; honest clients decoded: {decoded} of {}; blocks refused as \
         \"clients differ\": {differ}",
        HONEST_DECODERS.len(),
    );
}

/// Held up: the fetch requests a node keeps unanswered are bounded per
/// peer, so one Byzantine peer asking for many distinct `(view, root)`
/// keys (none of them real) fills only its own list: an honest peer's
/// earlier request for the real proposal is still answered with a relay
/// once the node verifies it.
#[test]
fn a_flood_of_fetches_for_distinct_roots_evicts_no_other_peers_request() {
    use gridledger_core::Hash32;
    use gridledger_fl::consensus::ChainNode;
    use gridledger_fl::dissemination::Source;
    use gridledger_fl::round::sim_node_key;
    let cfg = config(4, 4, 1);
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let _ = node.start();
    let clients = A.to_vec();
    let rel = release_of(&cfg, &clients, 1);
    // Node 2 asks for view 0's real proposal before node 1 has it.
    let s = node.handle(Source::Node(2), Message::FetchProposal { node: 2, view: 0, root: rel.root });
    assert!(s.sends.is_empty() && s.faults.is_empty());
    // Byzantine node 3 asks for 200 distinct keys that do not exist.
    for i in 0..200u32 {
        let mut root = [0u8; 32];
        root[..4].copy_from_slice(&i.to_le_bytes());
        let s = node.handle(Source::Node(3), Message::FetchProposal { node: 3, view: i % 5, root: Hash32(root) });
        assert!(s.sends.is_empty(), "answered a fetch of a proposal it never verified");
    }
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, &clients));
    let s = node.handle(
        Source::Node(0),
        view0_proposal(rel.root, &clients, ra, rel.subfragments[1].clone(), carried_small(&cfg)),
    );
    assert!(s.faults.is_empty(), "the proposal was refused: {:?}", s.faults);
    let relays: Vec<_> = s
        .sends
        .iter()
        .filter(|(to, m)| {
            matches!(m, Message::Relay { view: 0, root, .. } if *root == rel.root)
                && *to == gridledger_fl::consensus::To::Node(2)
        })
        .collect();
    assert_eq!(relays.len(), 1, "node 2's earlier fetch was not answered once");
}
