//! Attack round 16 on CTP-FL (issue 16): whom the records of a refused
//! relay name, after the sender-attribution changes (a refused upload
//! relay names its relayer, `Fault::Relayed`; a message naming another
//! node names its sender, `Fault::Impersonation`).
//! `cargo test -p gridledger-fl --test attack_relay_attribution_r16 -- --include-ignored`.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::consensus::{Fault, Message};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// Node 0's proposal copies to nodes 5 and 6 are lost on the links (what
/// message loss before GST does to any honest leader; node 0 runs the
/// honest code and sends everything else), so nodes 5 and 6 must fetch
/// view 0's proposal from their peers when PBFT's pre-prepare names it.
struct LoseProposalTo(Vec<u32>);

impl Adversary<P> for LoseProposalTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| !(matches!(m, Message::Proposal { .. }) && self.0.iter().any(|&n| *d == Dest::One(n))))
            .collect()
    }
}

/// Byzantine node `me`: the honest code, except that every relay it
/// answers a fetch with carries a broken attestation and an altered
/// subfragment value.
struct ForgeRelays {
    me: usize,
}

/// Byzantine node `me`: the honest code, except that every relay it
/// answers a fetch with carries an attestation over nothing (its
/// subfragment left intact).
struct ForgeRelayAttestations {
    me: usize,
}

impl Adversary<P> for ForgeRelayAttestations {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let me = self.me;
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Relay { node, view, root, clients, sf, excluded, pre_vectors, .. } => {
                    let ra = enclave(me).attest_evidence(&[0u8; 32]);
                    (d, Message::Relay { node, view, root, clients, ra, sf, excluded, pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

impl Adversary<P> for ForgeRelays {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use ff::Field;
        let me = self.me;
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Relay { node, view, root, clients, mut sf, excluded, pre_vectors, .. } => {
                    let ra = enclave(me).attest_evidence(&[0u8; 32]);
                    sf.values[0] += blstrs::Scalar::ONE;
                    (d, Message::Relay { node, view, root, clients, ra, sf, excluded, pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

fn forged_relays_run(seed: u64) -> Run {
    run(
        seed,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(LoseProposalTo(vec![5, 6]))), (1, Box::new(ForgeRelays { me: 1 }))],
        &[0, 1, 2, 3],
    )
}

/// FINDING 1 (low: one Byzantine node makes the record of honest nodes
/// read as an honest leader's failed proposal, while the forger goes
/// unnamed — the very misattribution the `Relayed`/`Impersonation`
/// changes removed for uploads and node-kind messages).
///
/// K = 7 (f = 2), four honest clients. Honest leader node 0's proposal
/// copies to nodes 5 and 6 are lost, so both fetch view 0's proposal
/// (`FetchProposal`) when PBFT's pre-prepare names it. Byzantine node 1
/// answers with a `Relay` whose attestation and subfragment it altered.
/// `ChainNode::on_relay` records the refusal as
/// `Fault::BadProposal { view: 0, .. }` — documented as "The leader's
/// proposal failed (root, attestation or Merkle proof)", i.e. against
/// view 0's leader, honest node 0 — and no record names node 1 (the
/// relayer is not in the variant; `common::accused` finds no one).
/// Expected: the refusal of a relay is recorded against its relayer
/// (e.g. `Fault::Relayed`-style `{ from: Source::Node(1), .. }`), and no
/// record reads as a failure of view 0's honest proposal.
/// Observed: every honest node's records hold `BadProposal { view: 0 }`
/// entries ("relayed proposal: …", "relayed subfragment: …") and none
/// naming node 1.
#[test]
fn a_forged_relay_is_recorded_against_its_relayer_not_the_leaders_view() {
    let r = forged_relays_run(3);
    r.debug_trace();
    let honest_nodes = [0u32, 2, 3, 4, 5, 6];
    let records: Vec<&Fault> =
        r.sim.faults.iter().filter(|(_, n, _)| honest_nodes.contains(n)).map(|(_, _, f)| f).collect();
    let blames_view0 = records.iter().filter(|f| matches!(f, Fault::BadProposal { view: 0, .. })).count();
    let names_forger = records.iter().filter(|f| accused(f) == Some(Source::Node(1))).count();
    assert!(
        blames_view0 == 0 && names_forger > 0,
        "honest nodes recorded {blames_view0} BadProposal of honest node 0's view 0 and {names_forger} records \
         naming the forging relayer node 1: {records:?}"
    );
}

/// Held up: with one honest leader's copies lost and one forging relayer,
/// the round still commits and every honest client decodes the same
/// trimmed mean (the forged relays are refused, the honest ones verify).
#[test]
fn a_forging_relayer_does_not_stop_the_fetch() {
    let r = forged_relays_run(3);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// Whom a record names, counting a client's refusal of a mini-fragment
/// (its sender) besides [`accused`]'s node-side records.
fn named(f: &Fault) -> Option<Source> {
    match f {
        Fault::Dissemination(gridledger_fl::dissemination::AssemblyFault::Refused { from, .. }) => Some(*from),
        other => accused(other),
    }
}

/// Held up: the new sender rules never make an honest party's record
/// accuse another honest party. K = 7 (f = 2): honest leader node 0's
/// proposal copies to nodes 5 and 6 are lost (they fetch), Byzantine node 1
/// forges its relays, Byzantine node 2 alters every mini-fragment it
/// sends; client 4 equivocates (record A to nodes 0–2, which forward it to
/// later leaders that hold record B) and client 5 sends bad cells. Every
/// record of an honest node or client names only nodes 1, 2 or clients
/// 4, 5, and every honest client decodes.
#[test]
fn no_honest_party_is_named_under_forged_relays_altered_minis_and_byzantine_clients() {
    use gridledger_fl::byzantine::NodeAttack;
    let (nodes, honest_clients) = (7usize, [0usize, 1, 2, 3]);
    let mut behaviours = vec![ClientBehaviour::Honest; 4];
    behaviours.push(ClientBehaviour::Equivocate);
    behaviours.push(ClientBehaviour::BadCells);
    let r = run(
        5,
        nodes,
        behaviours,
        vec![
            (0, Box::new(LoseProposalTo(vec![5, 6]))),
            (1, Box::new(ForgeRelays { me: 1 })),
            (2, Box::new(NodeAttack::AlterMinis)),
        ],
        &honest_clients,
    );
    r.debug_trace();
    let byzantine = [Source::Node(1), Source::Node(2), Source::Client(4), Source::Client(5)];
    let honest_reporter = |n: u32| {
        let n = n as usize;
        (n < nodes && n != 1 && n != 2) || honest_clients.contains(&(n.wrapping_sub(nodes)))
    };
    let wrong: Vec<_> = r
        .sim
        .faults
        .iter()
        .filter(|(_, n, f)| honest_reporter(*n) && named(f).is_some_and(|s| !byzantine.contains(&s)))
        .collect();
    assert!(wrong.is_empty(), "honest records naming honest parties: {wrong:?}");
    assert!(
        r.sim.faults.iter().any(|(_, _, f)| named(f) == Some(Source::Node(2))),
        "node 2's altered mini-fragments are recorded against it"
    );
    for c in honest_clients {
        assert!(r.global_of(c).is_some(), "honest client {c} decoded nothing");
    }
}

/// FINDING 2 (low: a record accuses honest peers for the receiver's own
/// condition).
///
/// A node that cannot run the round's PBFT (its signing key is not its
/// validator key: `Fault::PbftConfig` at start, "takes no part in the root
/// agreement") records every PBFT message an honest peer sends it as
/// `Fault::UnknownNode(peer)` — documented as "A node (the sender)
/// claiming a node index that does not exist or a role it does not hold".
/// Peer 0 is a validator and claims nothing it does not hold; the cause is
/// the receiver. Every honest peer's every PBFT message (prepares,
/// commits, view changes, catch-up requests) adds one such accusation.
/// Expected: no record naming node 0 (the refusal is the receiver's
/// `PbftConfig`, already recorded at start, or an unattributed record).
/// Observed: `UnknownNode(0)` for node 0's catch-up request.
#[test]
fn a_node_that_cannot_run_pbft_does_not_accuse_the_peers_that_message_it() {
    use gridledger_consensus::pbft;
    use gridledger_fl::consensus::ChainNode;
    use gridledger_fl::round::sim_node_key;
    let cfg = config(4, 4, 1);
    // Node 2 holds node 3's signing key: its validator key does not fit.
    let mut node = ChainNode::new(cfg.clone(), 2, enclave(2), SK, sim_node_key(3), TIMING);
    let start = node.start();
    assert!(start.faults.iter().any(|f| matches!(f, Fault::PbftConfig(_))), "{:?}", start.faults);
    let step = node.handle(Source::Node(0), Message::Pbft(Box::new(pbft::Message::CatchUpRequest { from_height: 0 })));
    let accusing: Vec<&Fault> = step.faults.iter().filter(|f| accused(f) == Some(Source::Node(0))).collect();
    assert!(accusing.is_empty(), "node 2 accuses honest validator 0: {accusing:?}");
}

/// FINDING 1, second form: the same run with node 1 breaking only the
/// attestation of its relays (its subfragment intact). With seed 5 the
/// forged relay reaches node 6 before any honest relay carried a proposal,
/// and honest node 6 records
/// `BadProposal { view: 0, error: "relayed proposal: BadAttestation { node: 0 }" }`:
/// a record that says honest node 0's enclave attestation failed, and
/// names no relayer. Expected: a record naming node 1 (the relayer) and
/// none naming node 0's attestation.
#[test]
fn a_relay_with_a_forged_attestation_does_not_accuse_the_honest_leader() {
    let r = run(
        5,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(LoseProposalTo(vec![5, 6]))), (1, Box::new(ForgeRelayAttestations { me: 1 }))],
        &[0, 1, 2, 3],
    );
    r.debug_trace();
    let honest_nodes = [0u32, 2, 3, 4, 5, 6];
    let records: Vec<&Fault> =
        r.sim.faults.iter().filter(|(_, n, _)| honest_nodes.contains(n)).map(|(_, _, f)| f).collect();
    let leader_attestation = records
        .iter()
        .filter(|f| matches!(f, Fault::BadProposal { view: 0, error } if error.contains("BadAttestation { node: 0 }")))
        .count();
    let names_forger = records.iter().filter(|f| accused(f) == Some(Source::Node(1))).count();
    assert!(
        leader_attestation == 0 && names_forger > 0,
        "{leader_attestation} records of honest node 0's attestation failing, {names_forger} naming relayer 1: \
         {records:?}"
    );
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}
