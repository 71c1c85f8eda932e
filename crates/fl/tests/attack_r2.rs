//! Attack round 2 on the CTP-FL dual consensus (issue 16): exclusion
//! evidence and the omission rule. Every test here is a finding and is
//! `#[ignore]`d until fixed; run them with
//! `cargo test -p gridledger-fl --test attack_r2 -- --ignored`.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::aggregate::params_to_bytes;
use gridledger_fl::coding::{client_key, CodedFragment};
use gridledger_fl::consensus::{ChainNode, EvidenceError, Exclusion, Fault, Message, Step, Timer};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::{sim_node_key, ClientBehaviour};
use gridledger_fl::FlError;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// Clients 0..4's uploads on a 4-node, 4-client chain; client 3 is
/// Byzantine and uploads a poisoned model (×−20).
fn uploads() -> Vec<CodedFragment> {
    let cfg = config(4, 4, 1);
    (0..4u32)
        .map(|c| {
            let m: Vec<f32> = if c == 3 { model(3).iter().map(|x| x * -20.0).collect() } else { model(c as usize) };
            upload(&cfg, c, &client_key(&SK, c), &m)
        })
        .collect()
}

/// Honest node 1 holds every client's cell; honest nodes 2 and 3 name every
/// client; Byzantine node 0 (leader of view 0) sends an attested pre-vector
/// naming only `leader_names` (its host fed its enclave only those clients'
/// cells — what the module docs already grant a Byzantine host) and then a
/// proposal aggregating `clients` with no exclusion evidence.
fn byzantine_leader_with_short_pre_vector(
    leader_names: &[u32],
    clients: &[u32],
) -> (ChainNode<gridledger_core::enclave::SoftwareAttester>, Step) {
    proposal_with_evidence(leader_names, clients, vec![])
}

fn proposal_with_evidence(
    leader_names: &[u32],
    clients: &[u32],
    excluded: Vec<Exclusion>,
) -> (ChainNode<gridledger_core::enclave::SoftwareAttester>, Step) {
    let cfg = config(4, 4, 1);
    let all = [0u32, 1, 2, 3];
    let ups = uploads();
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    node.start();
    for u in &ups {
        assert!(send_upload(&mut node, u.message(1).unwrap()).faults.is_empty());
    }
    node.on_timer(Timer::PreVector);
    node.handle(Source::Node(0), pre_vector(&cfg, 0, leader_names));
    for k in [2, 3] {
        node.handle(Source::Node(k), pre_vector(&cfg, k, &all));
    }
    node.on_timer(Timer::Tally);
    for k in cfg.committee() {
        if k != 1 {
            node.handle(Source::Node(k), deter_vector(&cfg, k, &all));
        }
    }
    // The leader's enclave aggregates only what its host fed it.
    let models: Vec<Vec<f32>> = clients
        .iter()
        .map(|&c| if c == 3 { model(3).iter().map(|x| x * -20.0).collect() } else { model(c as usize) })
        .collect();
    let global = gridledger_fl::aggregate::trimmed_mean(&models, cfg.beta).unwrap();
    let rel = cfg.release(&params_to_bytes(&global)).unwrap();
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, clients));
    let sf = rel.subfragments[1].clone();
    // The leader carries the four attested pre-vectors (its own short one included).
    let pre_vectors = carried(&cfg, &[(0, leader_names), (1, &all), (2, &all), (3, &all)]);
    let msg = Message::Proposal { view: 0, root: rel.root, clients: clients.to_vec(), ra, sf, excluded, pre_vectors };
    let step = node.handle(Source::Node(0), msg);
    (node, step)
}

/// FINDING 1 (wrong/poisoned model accepted; severity 1).
///
/// The omission rule protects only the clients named in *every* held
/// pre-vector (`decodable_by_every_honest_leader` intersects them), and a
/// Byzantine node's pre-vector is one of them. A Byzantine leader whose own
/// attested pre-vector names only the poisoning client (its host withheld
/// the honest clients' cells from its enclave — the same power the module
/// docs grant it for the aggregate) empties the protected set, so it can
/// then propose the trimmed mean of the poisoned model alone, without any
/// exclusion evidence, and every honest node accepts it.
///
/// Expected: node 1 (which, with nodes 1–3, holds K − f = 3 pre-vectors
/// naming clients 0, 1, 2) refuses the proposal with
/// `Fault::UnprovenOmission` and asks for view 1.
/// Observed: no fault, no view change: the poisoned aggregate of client 3
/// alone is accepted (−20 × the honest model).
///
/// Suggested fix: protect a client named by at least `K − f` of the held
/// pre-vectors (a count, not an intersection — one Byzantine pre-vector
/// must not veto protection), and build the coder so that such a client is
/// decodable by every honest leader: `T ≤ K − 2f` cells (at least `K − 2f`
/// of `K − f` namers are honest). Alternatively require every proposal to
/// aggregate at least `quorum − f` clients of the deter-vector, or refuse a
/// leader whose own pre-vector is short of what `K − f` others named.
#[test]
fn a_byzantine_leaders_short_pre_vector_lets_it_drop_every_honest_client() {
    let (node, step) = byzantine_leader_with_short_pre_vector(&[3], &[3]);
    assert!(
        step.faults.iter().any(|f| matches!(f, Fault::UnprovenOmission { view: 0, .. })),
        "poisoned-only proposal accepted: faults {:?}, view {}",
        step.faults,
        node.view()
    );
    assert!(step.sends.iter().any(|(_, m)| matches!(m, Message::ViewChange { view: 1, .. })));
}

/// Control (not ignored): with the leader's pre-vector naming everyone the
/// same omission is refused — the rule itself works, the hole is the
/// intersection.
#[test]
fn control_the_same_omission_is_refused_when_the_leader_names_everyone() {
    let (_, step) = byzantine_leader_with_short_pre_vector(&[0, 1, 2, 3], &[3]);
    assert!(step.faults.iter().any(|f| matches!(f, Fault::UnprovenOmission { view: 0, .. })), "{:?}", step.faults);
}

/// FINDING 2 (honest client excluded; severity 2).
///
/// A client's signing key is derived from its fragment key, which is
/// derived from the enclaves' shared secret (`client_signing_key(client_key(
/// shared_secret, c))`), and `FlClient::new` takes that whole shared secret
/// (every client of `round.rs`, of the forecast federation and of the tests
/// is built with it). So any one Byzantine client can derive every other
/// client's signing key (and fragment key: it can also read their models)
/// and sign a second record "of" honest client 0. With the honest record
/// that is valid `Exclusion::Equivocation` evidence: a Byzantine leader (or
/// a Byzantine client racing the honest one to half the nodes) gets an
/// honest client excluded, which is exactly what the evidence was meant to
/// make impossible.
///
/// Expected: a record of client 0 produced by anyone but client 0 is
/// refused (`BadExclusion { error: Record(Unauthenticated { client: 0 }) }`).
/// Observed: node 1 accepts the forged evidence; the honest client is left
/// out with no fault.
///
/// Suggested fix: give each client only its own secret (its fragment key
/// and an independent signing key, registered by public key), never the
/// enclaves' shared secret; derive nothing a client signs with from a value
/// other clients hold. `FlClient::new` should take the client's key pair,
/// not `shared_secret`.
#[test]
fn a_byzantine_client_forges_equivocation_evidence_against_an_honest_client() {
    let cfg = config(4, 4, 1);
    let honest = uploads();
    // Fixed: `FlClient::new` takes only the client's own `ClientSecrets`
    // (its fragment key and an independent signing key pair registered by
    // public key). What Byzantine client 3 can sign with: its own key, or
    // even a key derived the old way from the shared secret, were it leaked.
    let old_derivation = {
        let h = gridledger_core::codec::hash_bytes(
            gridledger_core::codec::Tag("gridledger/fl-client-signing-key/v1"),
            &client_key(&SK, 0),
        );
        gridledger_core::crypto::KeyPair::from_seed(&h.0.iter().map(|b| format!("{b:02x}")).collect::<String>())
    };
    let own = gridledger_fl::round::sim_client_signing_key(&SIGN_SEED, 3);
    for signer in [old_derivation, own] {
        let shifted: Vec<f32> = model(0).iter().map(|x| x + 0.5).collect();
        let forged = upload_signed(&cfg, 0, &client_key(&SK, 0), &signer, &shifted);
        let ex = Exclusion::Equivocation { first: Box::new(honest[0].record), second: Box::new(forged.record) };
        let (_, step) = proposal_with_evidence(&[0, 1, 2, 3], &[1, 2, 3], vec![ex]);
        assert_eq!(
            step.faults,
            vec![Fault::BadExclusion {
                view: 0,
                client: 0,
                error: EvidenceError::Record(FlError::Unauthenticated { client: 0 })
            }],
            "forged evidence against honest client 0 accepted"
        );
    }
}

/// FINDING 2, the other half: a client holds only its own fragment key, and
/// with it cannot read another client's fragment (decoded from its cells).
#[test]
fn a_client_cannot_decrypt_another_clients_fragment() {
    let cfg = config(4, 4, 1);
    let honest = uploads();
    let (coeffs, faults) = cfg.coder.decode_cells(&honest[0].record, &honest[0].cells);
    assert!(faults.is_empty());
    let coeffs = coeffs.unwrap();
    // Client 0 (and the enclaves) can; client 3, with its own key, cannot.
    let own = cfg.coder.open(&client_key(&SK, 0), &honest[0].record, &coeffs).unwrap();
    assert_eq!(own, params_to_bytes(&model(0)));
    let theirs = cfg.coder.open(&client_key(&SK, 3), &honest[0].record, &coeffs);
    assert_eq!(theirs, Err(FlError::DecryptFailed));
}

/// FINDING 1, end to end in the simulator: Byzantine node 0 (leader of view
/// 0) sends a pre-vector naming only client 3 and proposes the aggregate of
/// client 3's model ×(−20) alone. Expected: refused (`UnprovenOmission`),
/// committed in a later view with the honest trimmed mean. Observed: the
/// poisoned root commits in view 0 and every honest client decodes
/// −20 × client 3's model as the global fragment.
#[test]
fn end_to_end_a_byzantine_leader_with_a_short_pre_vector_commits_a_poisoned_model() {
    struct ShortPreVector(OmittingLeader);
    impl Adversary<P> for ShortPreVector {
        fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
            let sends = self.0.tamper(now, sends, rng);
            let cfg = self.0.cfg.clone();
            let only = [self.0.client];
            sends
                .into_iter()
                .map(|(d, m)| match m {
                    Message::PreVector { node: 0, .. } => (d, pre_vector(&cfg, 0, &only)),
                    other => (d, other),
                })
                .collect()
        }
    }
    const CLIENTS: usize = 7;
    let seed = 7_900;
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let leader = ShortPreVector(OmittingLeader { cfg: config(4, CLIENTS, 2), client: 3, factor: -20.0 });
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(leader))];
    let r = run(seed, 4, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    let poisoned: Vec<f32> = model(3).iter().map(|x| x * -20.0).collect();
    let got = r.global_of(1);
    assert_ne!(
        got.as_ref(),
        Some(&poisoned),
        "honest client 1 decoded the poisoned model; committed {:?}",
        r.committed()
    );
    assert!(r.faults().iter().any(|f| matches!(f, Fault::UnprovenOmission { view: 0, .. })));
}
