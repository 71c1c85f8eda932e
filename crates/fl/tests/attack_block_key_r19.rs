//! Attack round 19 on CTP-FL (issue 16): a node's stores of verified,
//! relayed and fetched proposals keyed by the block's whole `(view, root,
//! clients)` (`BlockKey`): a block of a view whose proposal the node
//! verified with *another* aggregate is fetched and waited for, a peer
//! relays every client list it verified under a fetched `(view, root)`,
//! and a relay naming another list is checked once per peer per fetch.
//! What held up: relay floods of other lists, relays of every list once
//! per PBFT view, a PBFT block naming a list no honest node received
//! (relayed, withheld or forged) and a PBFT leader equivocating between
//! two attested lists of one root. Finding 1 (low, unit and end to end):
//! a node whose copy of a view was junk still accuses the honest PBFT
//! leader proposing that view's genuine block. Fixed: a node whose copy of
//! the view failed waits for the fetch of the block's attested proposal,
//! as one whose copy named another list does; `InvalidProposal` is
//! recorded only for a block whose own `(view, root, clients)` proved
//! invalid (its fetched proposal failed).
//! `cargo test -p gridledger-fl --test attack_block_key_r19`.

mod common;

use common::two_lists::*;
use common::view0::*;
use common::*;
use gridledger_consensus::pbft::{self, PrePrepare};
use gridledger_core::enclave::Attester;
use gridledger_core::Hash32;
use gridledger_fl::consensus::{AttestedVector, ChainConfig, ChainNode, Fault, Message, RootBlock, To, PRE_VECTOR};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::{sim_node_key, ClientBehaviour, Participant};
use gridledger_sim::{Adversary, Dest, NodeId, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

// ---------------------------------------------------------------------
// Unit level: one node, K = 4 (f = 1), view 0's root R.
// ---------------------------------------------------------------------

/// Another list under the same root, named by a PBFT block.
const B: [u32; 3] = [0, 1, 2];

/// The attested proposal `(0, R, clients)` with node `node`'s subfragment,
/// attested by `attester`'s enclave (node 0's is the genuine one).
fn proposal_fields(
    cfg: &ChainConfig,
    clients: &[u32],
    node: usize,
    attester: usize,
) -> (Hash32, gridledger_core::enclave::EvidenceAttestation, gridledger_fl::dissemination::GlobalSubfragment) {
    let rel = release_of(cfg, &A, 1);
    let ra = enclave(attester).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, clients));
    (rel.root, ra, rel.subfragments[node].clone())
}

/// Node `from`'s relay of `(0, R, clients)`, attested by `attester`.
fn relay(cfg: &ChainConfig, from: usize, clients: &[u32], attester: usize) -> Message {
    let (root, ra, sf) = proposal_fields(cfg, clients, from, attester);
    as_relay(from, view0_proposal(root, clients, ra, sf, carried_small(cfg)))
}

/// PBFT view `pview`'s pre-prepare of block `(0, R, clients)`, signed by
/// that view's PBFT leader (`(pview + 1) mod 4`: node 2 for PBFT view 1,
/// the replica's first).
fn pre_prepare(cfg: &ChainConfig, pview: u64, clients: &[u32]) -> (usize, Message) {
    block_pre_prepare(cfg, pview, release_of(cfg, &A, 1).root, clients)
}

fn bad_relays(faults: &[Fault], from: usize) -> usize {
    faults.iter().filter(|f| matches!(f, Fault::BadRelay { from: Source::Node(n), .. } if *n == from)).count()
}

/// Node 3 with view 0's genuine proposal of `A` verified.
fn node_with_a(cfg: &Arc<ChainConfig>) -> ChainNode<gridledger_core::enclave::SoftwareAttester> {
    let mut node = ChainNode::new(cfg.clone(), 3, enclave(3), SK, sim_node_key(3), TIMING);
    let _ = node.start();
    let (root, ra, sf) = proposal_fields(cfg, &A, 3, 0);
    let s = node.handle(Source::Node(0), proposal_a(cfg, root, ra, sf));
    assert!(s.faults.is_empty(), "view 0's proposal refused: {:?}", s.faults);
    node
}

/// Held up: a node that verified `(0, R, A)` and is asked to validate block
/// `(0, R, B)` waits (no vote, no fault) and fetches it. A Byzantine peer
/// then floods it with 100 forged relays naming other client lists under
/// `(0, R)` and 100 forged relays of `B` itself: each kind is checked once
/// (one `BadRelay` each, against the relayer), not once per message. Its
/// genuine subfragment counts, and one genuine relay of `B` (from a second
/// peer) completes the fetch: the node then prepares the block.
#[test]
fn a_flood_of_relays_of_other_lists_is_checked_once_per_peer() {
    let cfg = small();
    let mut node = node_with_a(&cfg);
    let (leader, pp) = pre_prepare(&cfg, 1, &B);
    let s = node.handle(Source::Node(leader), pp);
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    assert_eq!(prepares(&s.sends), 0, "voted before verifying B");
    let fetches = s.sends.iter().filter(|(_, m)| matches!(m, Message::FetchProposal { view: 0, .. })).count();
    assert_eq!(fetches, 3, "block (0, R, B) not fetched from every peer: {:?}", s.sends);

    let mut faults = Vec::new();
    // Every other non-empty list of the four clients under (0, R), each
    // forged (attested by node 1's enclave, not view 0's leader's).
    let others: Vec<Vec<u32>> = (1u32..16)
        .map(|bits| (0..4).filter(|c| bits & (1 << c) != 0).collect::<Vec<u32>>())
        .filter(|l| l[..] != B[..])
        .collect();
    for i in 0..100 {
        let s = node.handle(Source::Node(1), relay(&cfg, 1, &others[i % others.len()], 1));
        faults.extend(s.faults);
    }
    for _ in 0..100 {
        let s = node.handle(Source::Node(1), relay(&cfg, 1, &B, 1));
        faults.extend(s.faults);
    }
    assert_eq!(bad_relays(&faults, 1), 2, "forged relays checked {} times, not twice", bad_relays(&faults, 1));
    assert_eq!(faults.len(), 2, "{faults:?}");

    // One genuine relay of B from node 0: with node 1's genuine
    // subfragment, enough to rebuild node 3's own.
    let s = node.handle(Source::Node(0), relay(&cfg, 0, &B, 0));
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    assert!(prepares(&s.sends) > 0, "block (0, R, B) not prepared once fetched: {:?}", s.faults);
}

/// Held up: a peer asked for `(view, root)` relays every client list it
/// verified under it (here `A`, from the leader, and `B`, fetched), once
/// per PBFT view of its replica, and nothing for a pair it never verified.
#[test]
fn a_peer_relays_each_list_it_verified_once_per_pbft_view() {
    let cfg = small();
    let mut node = node_with_a(&cfg);
    let (leader, pp) = pre_prepare(&cfg, 1, &B);
    let _ = node.handle(Source::Node(leader), pp);
    let _ = node.handle(Source::Node(0), relay(&cfg, 0, &B, 0));
    let s = node.handle(Source::Node(2), relay(&cfg, 2, &B, 0));
    assert!(s.faults.is_empty(), "{:?}", s.faults);
    let root = release_of(&cfg, &A, 1).root;
    let ask = Message::FetchProposal { node: 1, view: 0, root };
    let s = node.handle(Source::Node(1), ask.clone());
    let mut lists: Vec<Vec<u32>> = s
        .sends
        .iter()
        .filter_map(|(to, m)| match m {
            Message::Relay { clients, .. } if *to == To::Node(1) => Some(clients.clone()),
            _ => None,
        })
        .collect();
    lists.sort();
    assert_eq!(lists, vec![A.to_vec(), B.to_vec()]);
    let again = node.handle(Source::Node(1), ask);
    assert!(again.sends.is_empty(), "relayed twice in one PBFT view: {:?}", again.sends.len());
    let other = node.handle(Source::Node(1), Message::FetchProposal { node: 1, view: 1, root });
    assert!(other.sends.is_empty());
}

/// FINDING 1 (low: an honest PBFT leader is recorded as proposing an
/// invalid block).
///
/// K = 4 (f = 1). Byzantine node 0, view 0's aggregation leader, sends
/// honest node 3 a junk copy of its proposal (an attestation over nothing)
/// and everyone else the genuine `(0, R, A)`. Honest node 2, PBFT leader
/// of PBFT view 1 (the replicas' first), verified `(0, R, A)` and proposes
/// that block. Node 3 refuses it at once ("root not verified here") — recording
/// `InvalidProposal { leader: 2 }` — and fetches it; the relays of nodes 0
/// and 1 then verify it in full: the block node 3 accused its proposer of
/// was the genuine attested aggregate. Since round 18's fix a node whose
/// copy named *another* aggregate of that view waits for the fetch and
/// records nothing ("the view's leader attested two aggregates, so the
/// proposer may be honest"), but a node whose copy was junk still accuses
/// the PBFT leader of the view's aggregation leader's fault — the same
/// situation (the node cannot tell the block is bad; here it even knows
/// `leader(0)` misbehaved towards it). Expected: no record names node 2
/// as proposing an invalid block (wait for the fetch as in the other-list
/// case, or record nothing against the PBFT leader). Note that
/// `dual_consensus::a_pbft_block_with_a_root_the_node_refuted_gets_no_vote`
/// asserted the record (updated with the fix).
/// Fixed: node 3 waits for the fetch (no vote, no record against node 2)
/// and, once the relays verify the block, validates it.
#[test]
fn a_junk_copy_makes_the_node_accuse_the_honest_pbft_leader() {
    let cfg = small();
    let mut node = ChainNode::new(cfg.clone(), 3, enclave(3), SK, sim_node_key(3), TIMING);
    let _ = node.start();
    let (root, _, sf) = proposal_fields(&cfg, &A, 3, 0);
    let junk = enclave(0).attest_evidence(&[0u8; 32]);
    let mut faults = Vec::new();
    let s = node.handle(Source::Node(0), proposal_a(&cfg, root, junk, sf));
    assert!(s.faults.iter().any(|f| matches!(f, Fault::BadProposal { view: 0, .. })), "{:?}", s.faults);
    faults.extend(s.faults);
    let (leader, pp) = pre_prepare(&cfg, 1, &A);
    assert_eq!(leader, 2);
    let s = node.handle(Source::Node(leader), pp);
    faults.extend(s.faults);
    // The genuine proposal, relayed by nodes 0 and 1: it verifies.
    let s = node.handle(Source::Node(0), relay(&cfg, 0, &A, 0));
    faults.extend(s.faults);
    let s = node.handle(Source::Node(1), relay(&cfg, 1, &A, 0));
    faults.extend(s.faults);
    assert!(!faults.iter().any(|f| matches!(f, Fault::BadRelay { .. })), "{faults:?}");
    // The node verified it: asked for (0, R), it relays `A`.
    let s = node.handle(Source::Node(2), Message::FetchProposal { node: 2, view: 0, root });
    assert!(
        s.sends.iter().any(|(_, m)| matches!(m, Message::Relay { clients, .. } if clients[..] == A[..])),
        "the fetch of (0, R, A) did not complete"
    );
    let accused: Vec<&Fault> =
        faults.iter().filter(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { leader: 2, .. }))).collect();
    assert!(
        accused.is_empty(),
        "honest PBFT leader 2 recorded as proposing an invalid block (the genuine attested aggregate, \
         which the node verified by fetching it right after): {accused:?}"
    );
}

/// Fix (round 19): a block whose own `(view, root, clients)` proves
/// invalid is still refused. Node 3's copy of view 0 is junk, so it waits
/// on PBFT leader 2's block `(0, M, A)` and fetches it; view 0's leader's
/// enclave attested `(0, M, A)` (its host fed it the mixed root), and the
/// relays of nodes 0 and 1 carry subfragments that verify under `M`, but
/// the global fragment they decode does not code to `M`: the fetched
/// proposal fails (`BadProposal`), and the block is refused
/// (`InvalidProposal`), with no prepare vote.
#[test]
fn a_block_whose_fetched_proposal_fails_is_refused() {
    let cfg = small();
    let mixed = mixed_release(&cfg).unwrap();
    for sf in &mixed.subfragments {
        cfg.global.mini_fragments(sf.node, &mixed.root, sf).expect("every subfragment verifies under M");
    }
    let mut node = ChainNode::new(cfg.clone(), 3, enclave(3), SK, sim_node_key(3), TIMING);
    let _ = node.start();
    let junk = enclave(0).attest_evidence(&[0u8; 32]);
    let proposal = |ra, sf| proposal_a(&cfg, mixed.root, ra, sf);
    let s = node.handle(Source::Node(0), proposal(junk, mixed.subfragments[3].clone()));
    assert!(s.faults.iter().any(|f| matches!(f, Fault::BadProposal { view: 0, .. })), "{:?}", s.faults);
    let (leader, pp) = block_pre_prepare(&cfg, 1, mixed.root, &A);
    let s = node.handle(Source::Node(leader), pp);
    assert!(s.faults.is_empty(), "refused before the fetch: {:?}", s.faults);
    assert!(s.sends.iter().any(|(_, m)| matches!(m, Message::FetchProposal { view: 0, .. })), "not fetched");
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &mixed.root, &A));
    let mut faults = Vec::new();
    let mut sends = Vec::new();
    for from in [0usize, 1] {
        let s = node.handle(Source::Node(from), as_relay(from, proposal(ra, mixed.subfragments[from].clone())));
        faults.extend(s.faults);
        sends.extend(s.sends);
    }
    assert!(!faults.iter().any(|f| matches!(f, Fault::BadRelay { .. })), "{faults:?}");
    assert!(
        faults.iter().any(|f| matches!(f, Fault::BadProposal { view: 0, error } if error.contains("not rebuilt"))),
        "{faults:?}"
    );
    assert!(
        faults.iter().any(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { leader: 2, .. }))),
        "the block whose fetched proposal failed was not refused: {faults:?}"
    );
    assert_eq!(prepares(&sends), 0, "prepared a block whose fetched proposal failed");
}

/// FINDING 1, end to end (low). K = 7 (f = 2), four honest clients,
/// Byzantine node 0 as [`BadCopyWithholdCommits`] (a junk copy to nodes 5
/// and 6, commit votes withheld), every other node honest. The first
/// PBFT leader (node 2, honest) proposes view 0's genuine block; nodes 5
/// and 6, whose copy of view 0 was junk, record
/// `InvalidProposal { leader: 2 }`, although they fetch and verify that
/// very block and the round commits it.
/// Fixed: nodes 5 and 6 wait for the fetch and record nothing against
/// node 2.
#[test]
fn a_junk_copy_makes_nodes_accuse_the_honest_pbft_leader_end_to_end() {
    let honest = [0usize, 1, 2, 3];
    let r = run(
        3,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(BadCopyWithholdCommits { me: 0, bad_copy: vec![5, 6], relays: true }))],
        &honest,
    );
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
    let accusing =
        r.faults_where(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { leader, .. }) if *leader != 0));
    assert!(accusing.is_empty(), "honest PBFT leaders recorded as proposing invalid blocks: {accusing:?}");
}

// ---------------------------------------------------------------------
// Simulation: K = 7 (f = 2), round 18's one-root-two-lists set-up.
// ---------------------------------------------------------------------

/// The carried pre-vectors of the Byzantine leader: `K − f = 5` of them,
/// those of Byzantine nodes 0 and 2 attested before clients 0 and 11 were
/// fed in, nodes 5 and 6's (which those clients never reached) and node
/// 3's (naming everyone): clients 0 and 11 are named by one of five, so
/// neither is protected, and both `A` and `B` pass the omission rule.
fn carried_big(cfg: &ChainConfig) -> Vec<AttestedVector> {
    [0usize, 2, 3, 5, 6]
        .into_iter()
        .map(|node| {
            let named: Vec<u32> = if node != 3 { (1..=10).collect() } else { (0..CLIENTS as u32).collect() };
            let ev = cfg.vector_evidence(PRE_VECTOR, node, 0, 0, &named);
            AttestedVector { node, view: 0, seq: 0, clients: named, ra: enclave(node).attest_evidence(&ev) }
        })
        .collect()
}

/// Node `me`'s relay of `(0, R, clients)` as attested by view 0's leader.
fn big_relay(cfg: &ChainConfig, me: usize, clients: &[u32]) -> Message {
    let rel = release_of(cfg, &lists().0, BETA);
    as_relay(me, leader_proposal(cfg, &rel, me, clients, carried_big(cfg)))
}

/// How the Byzantine nodes answer a fetch of the list nobody verified.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    /// A relay of `B`, attested by view 0's leader's enclave, with the
    /// relayer's genuine subfragment.
    Genuine,
    /// Nothing.
    Silent,
    /// A relay of `B` attested by node 2's enclave, not view 0's leader's.
    Forged,
}

/// Byzantine node 0 (view 0's aggregation leader, whose enclave attested
/// both `(0, R, A)` and `(0, R, B)`) sends `(0, R, A)` to every node and
/// nothing else but its pre-vectors; Byzantine node 2 runs the honest
/// code, but as PBFT leader of PBFT view 1 (the first) proposes block
/// `(0, R, B)` — the list no honest node received — instead of the
/// `(0, R, A)` it verified. Both answer every fetch as `answer` says.
struct UnseenList {
    cfg: Arc<ChainConfig>,
    me: usize,
    answer: Answer,
}

impl Adversary<P> for UnseenList {
    fn observe(&mut self, from: NodeId, m: &Message, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if !matches!(m, Message::FetchProposal { view: 0, .. }) {
            return Vec::new();
        }
        let (_, b) = lists();
        match self.answer {
            Answer::Silent => Vec::new(),
            Answer::Genuine => vec![(Dest::One(from), big_relay(&self.cfg, self.me, &b))],
            Answer::Forged => {
                let mut r = big_relay(&self.cfg, self.me, &b);
                if let Message::Relay { ra, root, .. } = &mut r {
                    *ra = enclave(2).attest_evidence(&self.cfg.aggregate_evidence(0, root, &b));
                }
                vec![(Dest::One(from), r)]
            }
        }
    }

    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        two_leaders_tamper(&self.cfg, self.me, sends, |_| false, |_| true)
    }
}

/// What Byzantine node `me` of [`UnseenList`] or [`EquivocatingLeaders`]
/// sends of `sends`: node 0 (view 0's aggregation leader) its view-0
/// proposal of `B` to the nodes `proposal_b` names and of `A` to the
/// others, and nothing else but its pre-vectors; node 2 (PBFT leader of
/// PBFT view 1) runs the honest code but signs its PBFT view-1
/// pre-prepare anew for block `(0, R, B)` to the nodes `block_b` names and
/// `(0, R, A)` to the others. Neither relays.
fn two_leaders_tamper(
    cfg: &ChainConfig,
    me: usize,
    sends: Vec<(Dest, Message)>,
    proposal_b: impl Fn(&Dest) -> bool,
    block_b: impl Fn(&Dest) -> bool,
) -> Vec<(Dest, Message)> {
    let (a, b) = lists();
    let rel = release_of(cfg, &a, BETA);
    let mut out = Vec::new();
    for (d, m) in sends {
        match m {
            Message::PreVector { .. } => out.push((d, m)),
            Message::Proposal { view: 0, sf, .. } if me == 0 => {
                let clients = if proposal_b(&d) { &b } else { &a };
                out.push((d, leader_proposal(cfg, &rel, sf.node, clients, carried_big(cfg))));
            }
            Message::Pbft(p) if me == 2 => match *p {
                pbft::Message::PrePrepare(pp) if pp.view == 1 => {
                    let clients = if block_b(&d) { b.clone() } else { a.clone() };
                    let block = RootBlock { clients, ..pp.payload };
                    let pp = PrePrepare::sign(&sim_node_key(2), &cfg.instance(), 1, pp.height, block);
                    out.push((d, Message::Pbft(Box::new(pbft::Message::PrePrepare(pp)))));
                }
                other => out.push((d, Message::Pbft(Box::new(other)))),
            },
            Message::Relay { .. } => {}
            other if me == 2 => out.push((d, other)),
            _ => {}
        }
    }
    out
}

fn unseen_list_run(seed: u64, answer: Answer) -> Run {
    let cfg = config(NODES, CLIENTS, BETA);
    two_lists_run(
        seed,
        vec![
            (0, Box::new(UnseenList { cfg: cfg.clone(), me: 0, answer })),
            (2, Box::new(UnseenList { cfg, me: 2, answer })),
        ],
    )
}

/// The round's success for the unseen-list runs: every honest node
/// commits one `(view, root)`, every waited-for client decodes the model
/// of `A` (= that of `B`), no honest node is recorded as proposing an
/// invalid block or relaying a bad proposal, and the committed block's
/// client list (returned) is the same at every honest node.
fn check_unseen(r: &Run) -> Vec<u32> {
    r.debug_trace();
    let honest = [1u32, 3, 4, 5, 6];
    let committed: Vec<_> = r.committed().into_iter().filter(|(n, _, _)| honest.contains(n)).collect();
    assert_eq!(committed.len(), NODES - 2, "honest nodes committed: {committed:?}");
    assert!(committed.windows(2).all(|w| (w[0].1, w[0].2) == (w[1].1, w[1].2)), "{committed:?}");
    assert_eq!(decoders_of_a(r), HONEST_DECODERS.len());
    let blamed: Vec<_> = r
        .faults()
        .into_iter()
        .filter(|f| match f {
            Fault::Pbft(pbft::Fault::InvalidProposal { leader, .. }) => honest.contains(leader),
            Fault::BadRelay { from: Source::Node(n), .. } => honest.contains(&(*n as u32)),
            _ => false,
        })
        .collect();
    assert!(blamed.is_empty(), "honest nodes blamed: {blamed:?}");
    let lists: Vec<Vec<u32>> = honest
        .into_iter()
        .filter_map(|n| match r.sim.node(n) {
            Some(Participant::Node(node)) => node.certificate().map(|c| c.payload.clients.clone()),
            _ => None,
        })
        .collect();
    assert!(lists.windows(2).all(|w| w[0] == w[1]), "{lists:?}");
    if std::env::var("ATK_DEBUG").is_ok() {
        for n in 0..NODES as u32 {
            if let Some(Participant::Node(node)) = r.sim.node(n) {
                eprintln!("node {n}: {:?}", node.certificate().map(|c| (c.cert.view, c.payload.clients.clone())));
            }
        }
    }
    lists[0].clone()
}

/// Held up: a Byzantine PBFT leader proposes block `(0, R, B)` whose list
/// view 0's (Byzantine) leader attested but sent to no honest node, and
/// the Byzantine nodes relay it genuinely. Every honest node, having
/// verified `(0, R, A)`, waits and fetches `B` (the honest peers' relays
/// of `A` supply subfragments), validates it, and the round commits `B`:
/// one model, the same at every client, no honest node blamed.
#[test]
fn a_pbft_leaders_block_of_an_unseen_list_commits_when_relayed() {
    let r = unseen_list_run(1, Answer::Genuine);
    let (_, b) = lists();
    assert_eq!(check_unseen(&r), b);
}

/// Held up: as above, but no one relays `B` (or the Byzantine nodes relay
/// it with a forged attestation): the honest nodes wait for a fetch that
/// never completes, PBFT's view change still fires, and the next (honest)
/// PBFT leader's block `(0, R, A)` commits.
#[test]
fn a_pbft_leaders_block_of_an_unseen_list_costs_one_pbft_view() {
    let (a, _) = lists();
    for answer in [Answer::Silent, Answer::Forged] {
        let r = unseen_list_run(2, answer);
        assert_eq!(check_unseen(&r), a);
        if answer == Answer::Forged {
            let forged = r
                .faults()
                .into_iter()
                .filter(|f| matches!(f, Fault::BadRelay { from: Source::Node(n), .. } if *n == 0 || *n == 2))
                .count();
            assert!(forged > 0, "forged relays not recorded against their relayers");
        }
    }
}

/// Byzantine node 0 (view 0's aggregation leader) sends `(0, R, A)` to
/// nodes 1–4 and `(0, R, B)` to nodes 5 and 6; Byzantine node 2, PBFT
/// leader of PBFT view 1, sends the pre-prepare of block `(0, R, A)` to
/// nodes 0, 1, 3 and 4 and one of block `(0, R, B)` (signed for the same
/// slot: equivocation) to nodes 5 and 6. Both answer every fetch with
/// genuine relays of both lists.
struct EquivocatingLeaders {
    cfg: Arc<ChainConfig>,
    me: usize,
}

impl Adversary<P> for EquivocatingLeaders {
    fn observe(&mut self, from: NodeId, m: &Message, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if !matches!(m, Message::FetchProposal { view: 0, .. }) {
            return Vec::new();
        }
        let (a, b) = lists();
        vec![(Dest::One(from), big_relay(&self.cfg, self.me, &a)), (Dest::One(from), big_relay(&self.cfg, self.me, &b))]
    }

    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let to_b = |d: &Dest| SKIPPED.iter().any(|&n| *d == Dest::One(n));
        two_leaders_tamper(&self.cfg, self.me, sends, to_b, to_b)
    }
}

/// Held up: both of view 0's client lists are verified by honest nodes
/// (A by nodes 1, 3, 4; B by nodes 5, 6) and the first PBFT leader
/// equivocates between the two blocks. Every honest node still commits
/// one and the same block (PBFT's quorums intersect; nodes 5 and 6 fetch
/// `A` when it is re-proposed), every waited-for client decodes the one
/// model, and no honest node is blamed.
#[test]
fn an_equivocating_pbft_leader_over_two_attested_lists_splits_no_one() {
    for seed in [3, 4] {
        let cfg = config(NODES, CLIENTS, BETA);
        let r = two_lists_run(
            seed,
            vec![
                (0, Box::new(EquivocatingLeaders { cfg: cfg.clone(), me: 0 })),
                (2, Box::new(EquivocatingLeaders { cfg, me: 2 })),
            ],
        );
        let _ = check_unseen(&r);
    }
}
