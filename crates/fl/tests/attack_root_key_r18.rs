//! Attack round 18 on CTP-FL (issue 16): a node's stores of verified
//! proposals (`verified`, `proposals`, `minis`, fetches) are keyed by
//! `(view, root)` without the client list, while a PBFT root block is
//! `(view, root, clients)`. The Merkle root binds the global fragment (and
//! the chain instance) only, so two different client lists whose trimmed
//! means are equal share one root.
//! `cargo test -p gridledger-fl --test attack_root_key_r18 -- --include-ignored`.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::aggregate::trimmed_mean;
use gridledger_fl::consensus::{AttestedVector, Fault, Message, PRE_VECTOR};
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

const NODES: usize = 7;
const CLIENTS: usize = 12;
const BETA: usize = CLIENTS / 3;
/// The honest nodes that get the proposal of client list `B`.
const SKIPPED: [u32; 2] = [5, 6];

/// View 0's aggregate over `A = {0, …, 10}` (client 0 in) and over
/// `B = {1, …, 11}` (client 11 in): `model(0) == model(11)` (the common
/// models repeat every 11 clients, as two households of one standard load
/// profile do), so the two trimmed means — and the two roots — are equal.
fn lists() -> (Vec<u32>, Vec<u32>) {
    ((0..=10).collect(), (1..=11).collect())
}

/// Byzantine node 0, view 0's aggregation leader. Its host runs its
/// enclave twice in view 0, feeding it client 0's cells and not client
/// 11's, then the other way round, so its enclave honestly attests
/// `(0, R, A)` and `(0, R, B)` — one root. Neither client is protected by
/// the pre-vectors it carries: their uploads missed nodes 5 and 6, and the
/// carried pre-vectors of nodes 0 and 1 (both Byzantine) are ones their
/// enclaves attested before those uploads were fed in. It sends `(0, R, A)`
/// to nodes 1–4 and `(0, R, B)` to nodes 5 and 6, signs PBFT prepare votes
/// for block `(0, R, A)`, and sends no other PBFT message (no commit vote)
/// and nothing else but its pre-vectors.
struct SameRootTwoLists {
    cfg: Arc<gridledger_fl::consensus::ChainConfig>,
    done: bool,
}
impl Adversary<P> for SameRootTwoLists {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let (a, b) = lists();
        let rel = release_of(&self.cfg, &a, BETA);
        let mut out = Vec::new();
        for (d, m) in sends {
            match m {
                Message::PreVector { .. } => out.push((d, m)),
                Message::Proposal { view: 0, sf, pre_vectors, .. } => {
                    // Its own carried pre-vector: the one attested before
                    // clients 0 and 11 were fed in.
                    let short: Vec<u32> = (1..=10).collect();
                    let mut carried: Vec<AttestedVector> = pre_vectors.into_iter().filter(|v| v.node > 1).collect();
                    for node in [1, 0] {
                        let ev = self.cfg.vector_evidence(PRE_VECTOR, node, 0, 0, &short);
                        let ra = enclave(node).attest_evidence(&ev);
                        carried.insert(0, AttestedVector { node, view: 0, seq: 0, clients: short.clone(), ra });
                    }
                    let clients = if SKIPPED.iter().any(|&n| d == Dest::One(n)) { b.clone() } else { a.clone() };
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &clients));
                    let sf = rel.subfragments[sf.node].clone();
                    out.push((
                        d,
                        Message::Proposal {
                            view: 0,
                            root: rel.root,
                            clients,
                            ra,
                            sf,
                            excluded: vec![],
                            pre_vectors: carried,
                        },
                    ));
                    if !self.done {
                        self.done = true;
                        out.extend(node0_prepares(&self.cfg, &rel, &a));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// K = 7 (f = 2), twelve honest clients, clients 0 and 11 reaching nodes
/// 0–4 only (their uploads to nodes 5 and 6 are lost), Byzantine node 0 as
/// [`SameRootTwoLists`] and Byzantine node 1 running the honest code but
/// withholding its PBFT commit votes and catch-up answers.
fn same_root_run(seed: u64) -> Run {
    let cfg = config(NODES, CLIENTS, BETA);
    run(
        seed,
        NODES,
        vec![ClientBehaviour::Honest; CLIENTS],
        vec![
            (0, Box::new(SameRootTwoLists { cfg, done: false })),
            (1, Box::new(WithholdCommits)),
            (NODES, Box::new(DropToNodes(SKIPPED.to_vec()))),
            (NODES + 11, Box::new(DropToNodes(SKIPPED.to_vec()))),
        ],
        &HONEST_DECODERS,
    )
}

/// The clients the success check waits for (clients 0 and 11 reach two
/// nodes fewer; they are honest too but not needed for the point).
const HONEST_DECODERS: [usize; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// The scenario's premise: the two client lists' trimmed means are the same
/// model, hence one root, and each is a proposal every honest node verifies
/// on its own (neither leaves out a client the carried pre-vectors protect).
#[test]
fn two_client_lists_share_one_root() {
    let cfg = config(NODES, CLIENTS, BETA);
    let (a, b) = lists();
    assert_ne!(a, b);
    assert_eq!(model(0), model(11));
    let ma: Vec<Vec<f32>> = a.iter().map(|&c| model(c as usize)).collect();
    let mb: Vec<Vec<f32>> = b.iter().map(|&c| model(c as usize)).collect();
    assert_eq!(trimmed_mean(&ma, BETA).unwrap(), trimmed_mean(&mb, BETA).unwrap());
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
    let (a, _) = lists();
    let want = trimmed_mean(&a.iter().map(|&c| model(c as usize)).collect::<Vec<_>>(), BETA).unwrap();
    let decoded = HONEST_DECODERS.iter().filter(|&&c| r.global_of(c).as_deref() == Some(&want[..])).count();
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
    let (a, _) = lists();
    let rel = release_of(cfg, &a, BETA);
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, clients));
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
    Message::Relay {
        node: me,
        view: 0,
        root: rel.root,
        clients: clients.to_vec(),
        ra,
        sf: rel.subfragments[me].clone(),
        excluded: vec![],
        pre_vectors,
    }
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
    run(
        seed,
        NODES,
        vec![ClientBehaviour::Honest; CLIENTS],
        vec![
            (0, Box::new(RelayOtherList { cfg: cfg.clone(), me: 0, inner: Some(leader) })),
            (1, Box::new(RelayOtherList { cfg, me: 1, inner: None })),
            (NODES, Box::new(DropToNodes(SKIPPED.to_vec()))),
            (NODES + 11, Box::new(DropToNodes(SKIPPED.to_vec()))),
        ],
        &HONEST_DECODERS,
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
    let (a, _) = lists();
    let want = trimmed_mean(&a.iter().map(|&c| model(c as usize)).collect::<Vec<_>>(), BETA).unwrap();
    let decoded = HONEST_DECODERS.iter().filter(|&&c| r.global_of(c).as_deref() == Some(&want[..])).count();
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
    let clients = vec![0u32, 1];
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
    let pre_vectors = carried(&cfg, &[(0, &clients[..]), (1, &clients[..]), (2, &clients[..])]);
    let s = node.handle(
        Source::Node(0),
        Message::Proposal {
            view: 0,
            root: rel.root,
            clients: clients.clone(),
            ra,
            sf: rel.subfragments[1].clone(),
            excluded: vec![],
            pre_vectors,
        },
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
