//! Attack round 9 on CTP-FL (issue 16): fetching the proposal of an
//! aggregation view a node never verified (`FetchProposal` / `Relay`,
//! "Re-proposed roots" in `consensus`), driven in the simulator by
//! Byzantine leaders and relayers with `f = 2` (K = 7). The three findings
//! were `#[ignore]`d until fixed; all three now pass:
//! `cargo test -p gridledger-fl --test attack_fetch_r9`.

mod common;

use common::*;
use gridledger_fl::consensus::Fault;
use gridledger_fl::round::ClientBehaviour;

/// FINDING 1 (high: `f` Byzantine nodes, every client honest, halt a
/// chain's round for good; a regression of round 6's finding 3, which
/// the fetch was meant to close).
///
/// K = 7 (f = 2), four honest clients. Byzantine nodes 0 and 1 (the first
/// two aggregation leaders) send their proposal to nodes 5 and 6 with a
/// broken attestation (the real one to everyone else) and withhold their
/// PBFT commit votes. Nodes 5 and 6 refuse the copy they got (view 0 goes
/// into `rejected`/`checked_in`); nodes 0–4 verify view 0 and prepare its
/// block, which PBFT must then re-propose in every later PBFT view. A
/// replica answers a block of a view it checked and did not verify with
/// "root not verified here" at once, and fetches only views it never
/// checked: so nodes 5 and 6 never fetch the real proposal of view 0 and
/// refuse the prepared block for ever; nodes 0 and 1 withhold their
/// commits and at most nodes 2, 3, 4 commit (3 < 2f + 1 = 5). Before the
/// fetch, the skipped nodes accepted the block by the same aggregate
/// verified under an honest later leader's view (with honest clients,
/// view 2's leader aggregates the same clients, so the same root); that
/// rule is gone, and sending a bad copy instead of nothing defeats the
/// fetch (checked by hand: with round 6's rule in place of the fetch,
/// this very run commits).
/// Expected: the round commits and every honest client decodes (a node
/// whose own copy of view `v` failed must still be able to fetch and
/// verify view `v`'s attested proposal, the one PBFT prepared).
/// Observed: no honest client decodes within 5 000 ticks; nodes 5 and 6
/// log `InvalidProposal { reason: "root not verified here" }` for every
/// re-proposal.
/// Fixed: a replica fetches the attested proposal of any block whose
/// `(view, root, clients)` it did not verify, whether or not it checked a
/// copy of that view (a checked view's block is refused in the current
/// PBFT view and validated on re-proposal once fetched; since round 19 it
/// waits for the fetch instead, and is validated as soon as it verifies).
#[test]
fn a_bad_copy_instead_of_no_proposal_cannot_halt_the_round() {
    let honest = [0usize, 1, 2, 3];
    let r = run(
        3,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![
            (0, Box::new(BadCopyWithholdCommits { me: 0, bad_copy: vec![5, 6], relays: true })),
            (1, Box::new(BadCopyWithholdCommits { me: 1, bad_copy: vec![5, 6], relays: true })),
        ],
        &honest,
    );
    r.debug_trace();
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    let refused = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, f)| (*n == 5 || *n == 6) && format!("{f:?}").contains("root not verified here"))
        .count();
    assert_eq!(
        decoded,
        honest,
        "committed: {:?}; aggregated: {:?}; re-proposals refused by nodes 5 and 6: {refused}",
        r.committed(),
        r.aggregated()
    );
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Control (holds): the same Byzantine nodes send nodes 5 and 6 nothing
/// (round 6's finding 3 / round 8's setting): the skipped nodes fetch view
/// 0's proposal and the round commits.
#[test]
fn control_no_copy_at_all_is_fetched_and_commits() {
    let honest = [0usize, 1, 2, 3];
    let r = skipping_leaders_withholding_commits(3);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// FINDING 2 (high: `f` Byzantine nodes, every client honest, halt the
/// round through the "each fetch sent once, answered once" rule).
///
/// K = 7 (f = 2), four honest clients. Byzantine node 0, view 0's leader,
/// sends its proposal to nodes 1, 2 and 3 only; node 1 (view 1's leader)
/// sends no proposal at all; both withhold their commit votes. Nodes 4, 5
/// and 6, asked to validate view 0's block once they have left view 0,
/// fetch it at about the same time. The honest nodes 2 and 3 relay to all
/// three; the Byzantine nodes relay their (valid) subfragments to node 4
/// only, and only after nodes 5's and 6's `FetchProposal` have reached
/// node 4 — which had nothing to relay then and, by the rule, never
/// answers them later. Node 4 rebuilds its subfragment from nodes 0, 2
/// and 3 (`f + 1`), verifies view 0 and prepares the block with nodes
/// 0–3 (2f + 1 = 5 prepares); nodes 5 and 6 hold two relayed subfragments
/// (nodes 2 and 3) of the `f + 1` they need, never ask again, and refuse
/// every re-proposal; nodes 0 and 1 withhold their commits: at most nodes
/// 2, 3 and 4 commit. The module docs' "Why it completes" argument counts
/// the `f + 1` honest voters as relayers, but an honest voter that verified
/// by fetching after the request reached it is not one.
/// Expected: the round commits and every honest client decodes (a fetch
/// still short of `f + 1` subfragments is asked again, or a node relays a
/// proposal it verifies later to the peers that asked for it before).
/// Observed: no honest client decodes within 5 000 ticks.
/// Fixed: a node keeps the fetch requests it cannot answer yet (one per
/// peer per `(view, root)`, at most `K` per peer) and relays once it
/// verifies the proposal.
#[test]
fn a_fetch_that_reached_a_peer_before_it_verified_cannot_halt_the_round() {
    let honest = [0usize, 1, 2, 3];
    let r = run_wide(
        3,
        vec![
            (0, Box::new(SkipRelayLate::new(vec![4, 5, 6], vec![4], vec![5, 6]))),
            (1, Box::new(SkipRelayLate::new(vec![2, 3, 4, 5, 6], vec![4], vec![5, 6]))),
        ],
    );
    r.debug_trace();
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert_eq!(decoded, honest, "committed: {:?}; aggregated: {:?}", r.committed(), r.aggregated());
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Control (holds): the same Byzantine leaders, but relaying to every
/// fetcher at once: nodes 4, 5 and 6 each rebuild their subfragment from
/// `f + 1` relays and the round commits.
#[test]
fn control_prompt_relays_to_every_fetcher_commit() {
    let honest = [0usize, 1, 2, 3];
    let r = run_wide(
        3,
        vec![
            (0, Box::new(SkipRelayLate::new(vec![4, 5, 6], vec![4, 5, 6], vec![]))),
            (1, Box::new(SkipRelayLate::new(vec![2, 3, 4, 5, 6], vec![4, 5, 6], vec![]))),
        ],
    );
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// FINDING 3 (high: `f` Byzantine nodes and one client whose upload
/// missed two nodes halt the round; the relayed proposal's checks are not
/// the same at every honest node, so no fetch can close the gap).
///
/// K = 7 (f = 2). Clients 0–3 are honest; client 4's upload reaches nodes
/// 0, 2, 3, 4 and 5 only (a Byzantine client, or an honest one whose
/// sends to nodes 1 and 6 were lost). Byzantine node 0 sends its attested
/// pre-vector (which names client 4) to nodes 5 and 6 only. Node 0, view
/// 0's leader, proposes the attested aggregate of clients 0–3 with *no*
/// carried pre-vectors, so each node checks the omission rule against the
/// pre-vectors it holds: nodes 1–4 hold six, four of which name client 4
/// (< K − f = 5), and accept; nodes 5 and 6 hold seven, five of which name
/// it, and refuse (`UnprovenOmission`). The block is prepared by nodes 0–4
/// (node 1 leads PBFT view 0), nodes 0 and 1 withhold their commits, and
/// nodes 5 and 6 refuse every re-proposal: at most 3 commits. Even if
/// nodes 5 and 6 fetched view 0's proposal, a relayed proposal is checked
/// "exactly as one received from the leader" — against the fetching
/// node's own pre-vectors — and refused again.
/// Expected: the round commits and every honest client decodes (e.g. a
/// proposal without carried pre-vectors is refused by every honest node,
/// so the honest nodes' verdicts on one proposal cannot differ).
/// Observed: no honest client decodes within 5 000 ticks.
/// Fixed: every node refuses a proposal carrying fewer than `K − f`
/// attested pre-vectors (an honest leader waits until it holds them), so
/// the omission rule is checked against the carried set only.
#[test]
fn a_proposal_without_carried_pre_vectors_cannot_split_the_honest_nodes_and_halt() {
    let honest = [0usize, 1, 2, 3];
    let r = split_by_own_pre_vectors(false);
    r.debug_trace();
    let omissions = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, f)| (*n == 5 || *n == 6) && matches!(f, Fault::UnprovenOmission { view: 0, client: 4 }))
        .count();
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert_eq!(
        decoded,
        honest,
        "committed: {:?}; aggregated: {:?}; view-0 omission refusals at nodes 5/6: {omissions}",
        r.committed(),
        r.aggregated()
    );
}

/// Control (holds): the same run, but the Byzantine leader carries the
/// seven attested pre-vectors it holds: every honest node protects client
/// 4 by them (named by 5 ≥ m − f), refuses view 0's omission, and a later
/// honest leader's aggregate (clients 0–4) commits and decodes.
#[test]
fn control_a_proposal_carrying_its_pre_vectors_is_refused_by_every_honest_node() {
    let honest = [0usize, 1, 2, 3];
    let r = split_by_own_pre_vectors(true);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Holds (f = 3): K = 10, four honest clients; Byzantine nodes 0, 1 and 2
/// (the first three aggregation leaders) send their proposals to every
/// node but 7, 8 and 9 and withhold their PBFT commit votes: view 0's
/// block is prepared by nodes 0–6 and committed by 3–6 only; the skipped
/// nodes fetch view 0's proposal from nodes 3–6 (`f + 1`), rebuild their
/// subfragments and the round commits.
#[test]
fn three_skipping_leaders_of_a_ten_node_chain_cannot_halt_the_round() {
    let honest = [0usize, 1, 2, 3];
    let skip = || Box::new(SkipProposalWithholdCommits { skip: vec![7, 8, 9] });
    let r = run(3, 10, vec![ClientBehaviour::Honest; 4], vec![(0, skip()), (1, skip()), (2, skip())], &honest);
    r.debug_trace();
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
    for node in [7u32, 8, 9] {
        assert!(r.committed().iter().any(|(n, ..)| *n == node), "skipped node {node} did not commit");
    }
}
