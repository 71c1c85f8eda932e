//! Attack round 4 on the CTP-FL dual consensus and fragment coding
//! (issue 16). Each finding here was `#[ignore]`d until fixed; all are
//! fixed now and run with the suite (`cargo test -p gridledger-fl --test attack_r4`).

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_core::Hash32;
use gridledger_fl::aggregate::{params_to_bytes, trimmed_mean};
use gridledger_fl::consensus::{ChainConfig, Message};
use gridledger_fl::round::{sim_client_signing_key, ClientBehaviour};
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// FINDING 1 (integrity: an aggregate of another federation is committed).
///
/// Round 3's fix binds `ChainConfig::instance()` — a hash of `(chain,
/// round, prev_block)` — into records, attestations and Merkle leaves.
/// Nothing else of the agreed configuration is bound: not the clients
/// (`client_keys`, `clients`), not the task, not the coders. Two
/// federations (FL tasks) served by the same nodes (same enclave keys and
/// measurement) whose round `e` of chain `b` follows the same block — two
/// tasks on one chain, or two runs of `Federation`, which sets
/// `prev_block = [b; 32]` for every round of every run whatever the seed —
/// have the same instance, so an aggregate one task's leader enclave
/// attested passes every check in the other: the attestation verifies, the
/// Merkle leaves (instance, chain, round, length) match, and the client
/// list names every client (the omission rule holds).
/// Setup: K = 4, four honest clients. Another federation on the same
/// chain, round and previous block, with its own clients (other signing
/// keys) whose models are `−20 ×` these; node 0 (view 0's leader here and
/// there) replays that federation's attested view-0 aggregate.
/// Expected: the honest nodes refuse it (another federation), replace the
/// leader, and the clients decode the trimmed mean of this round's models.
/// Observed: PBFT commits the replayed root and every honest client decodes
/// the other federation's aggregate.
/// Suggested fix: let the instance hash bind the whole agreed round
/// configuration (a task/federation id, `client_keys`, `node_keys`,
/// `pbft_keys`, `measurement`, `random_value`, the coders' parameters), and
/// in `Federation` chain `prev_block` through the previous round's
/// committed root (plus a per-run id) instead of the constant `[b; 32]`.
#[test]
fn aggregate_of_another_federation_on_the_same_block_is_refused() {
    let here = config(4, 4, 1);
    // Another federation: same nodes, chain, round and previous block
    // (and chain randomness), other clients.
    let mut p = here.params().clone();
    p.client_keys = (0..4u32).map(|c| sim_client_signing_key(&[0x77; 32], c).public()).collect();
    let other = ChainConfig::new(p);
    assert_ne!(other.client_keys, here.client_keys);
    assert_eq!(other.prev_block, here.prev_block);
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
    assert_ne!(got.as_deref(), Some(&old_global[..]), "an honest client decoded the other federation's aggregate");
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// Control for finding 1: with another previous block (round 3's case) the
/// replay is refused and the round succeeds — the only difference above is
/// that the two federations share the block.
#[test]
fn control_aggregate_of_another_chain_history_is_refused() {
    let here = config(4, 4, 1);
    let mut p = here.params().clone();
    p.client_keys = (0..4u32).map(|c| sim_client_signing_key(&[0x77; 32], c).public()).collect();
    p.prev_block = Hash32([0x99; 32]);
    let other = ChainConfig::new(p);
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
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// FINDING 2 (confidentiality: AEAD nonce reuse on a second upload).
///
/// The fragment nonce is a hash of the context only (`FragmentContext::
/// nonce`: instance, chain, round, fragment) and the key is the client's
/// long-term fragment key, so every encryption a client makes in one round
/// of one chain uses the same (key, nonce). A client that uploads twice in
/// a round — it crashed after uploading and retrained (round state is not
/// persisted), or a `Federation` run repeated with the same seed and other
/// settings (same key, same instance, other models) — encrypts two models
/// under one ChaCha20 keystream. The ciphertext is no secret from the
/// nodes: any `T` node hosts decode it from their cells with the public
/// record alone (no key, no enclave), and the XOR of the two ciphertexts
/// is the XOR of the two models.
/// Expected: two uploads of different models in one round do not reveal
/// the XOR of the plaintexts to `T` node hosts. Observed: they do, byte for
/// byte.
/// Suggested fix: a fresh random 96-bit nonce per encryption (or XChaCha20
/// with a random 192-bit nonce), carried in the signed upload record, with
/// the context kept in the associated data.
#[test]
fn second_upload_in_a_round_does_not_reuse_the_keystream() {
    use gridledger_fl::coding::client_key;
    use gridledger_fl::field::{scalars_to_bytes, BYTES_PER_ELEMENT};
    let cfg = config(4, 4, 1);
    let key = client_key(&SK, 0);
    let first = model(0);
    let second: Vec<f32> = first.iter().map(|x| x * 0.5 + 0.25).collect();
    let a = upload(&cfg, 0, &key, &first);
    let b = upload(&cfg, 0, &key, &second);
    // What the hosts of nodes 0..T (no key) decode from their cells.
    let t = cfg.coder.code().k().div_ceil(cfg.coder.code().cell_size());
    let ct = |f: &gridledger_fl::coding::CodedFragment| {
        let (coeffs, faults) = cfg.coder.decode_cells(&f.record, &f.cells[..t]);
        assert!(faults.is_empty());
        let coeffs = coeffs.unwrap();
        let len = f.record.ciphertext_len as usize;
        scalars_to_bytes(&coeffs[..len.div_ceil(BYTES_PER_ELEMENT)], len).unwrap()
    };
    let (ca, cb) = (ct(&a), ct(&b));
    let (pa, pb) = (params_to_bytes(&first), params_to_bytes(&second));
    assert_ne!(pa, pb);
    let ct_xor: Vec<u8> = ca.iter().zip(&cb).take(pa.len()).map(|(x, y)| x ^ y).collect();
    let pt_xor: Vec<u8> = pa.iter().zip(&pb).map(|(x, y)| x ^ y).collect();
    assert_ne!(ct_xor, pt_xor, "the hosts of {t} nodes recovered m1 XOR m2 without the key");
}

/// Supporting measurement for the CLI's finding 5 (`fl train`'s work
/// budget leaves out C2C): one chain of K = 4 honest nodes, run until
/// nothing is left to deliver, with 12 and then 24 honest clients. Every
/// client forwards each mini-fragment its node sends it to every other
/// client, so doubling the clients (×1.75 in the budget's `nodes +
/// clients`) multiplies the messages delivered by about 4 (`K·C·(C−1)`
/// dominates).
#[test]
fn c2c_messages_grow_with_clients_squared() {
    let delivered = |clients: usize| {
        let honest: Vec<usize> = (0..clients).collect();
        let mut r = run(5, 4, vec![ClientBehaviour::Honest; clients], vec![], &honest);
        assert_round_succeeded(&r, &honest, |c| model(c as usize), clients / 3);
        r.sim.run_until(5_000, |_| false);
        r.sim.stats.delivered
    };
    let (small, large) = (delivered(12), delivered(24));
    eprintln!("messages delivered: 12 clients {small}, 24 clients {large} (×{:.2})", large as f64 / small as f64);
    assert!(large * 10 >= small * 33, "12 clients: {small} messages, 24 clients: {large}");
    assert!(large >= 4 * 24 * 23, "at least K·C·(C−1) mini-fragments at 24 clients: {large}");
}

/// A Byzantine leader that sends its (honest, attested) proposal to every
/// node except `skip`, and drops every mini-fragment it should serve.
struct ProposalNotToDropMinis(Vec<u32>);

impl Adversary<P> for ProposalNotToDropMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Mini { .. } => false,
                Message::Proposal { .. } => !self.0.iter().any(|&n| *d == Dest::One(n)),
                _ => true,
            })
            .collect()
    }
}

/// FINDING 7 (availability: a committed round no client can decode, by a
/// leader that withholds subfragments).
///
/// PBFT's commit certificate shows `2f + 1` nodes verified their own
/// subfragment under the root — of which only `f + 1` are sure to be
/// honest. The global fragment's first code needs `K − f` subfragments
/// (`GlobalCoder::new(…, nodes, nodes − f, …)`, also in `Federation`),
/// and round 3's repair (a node that refused a committed root serves its
/// subfragment if it verifies) helps only a node that *received* one. A
/// Byzantine leader that sends its proposal to exactly `2f + 1` nodes
/// (itself and the other Byzantine nodes among them) gets the root
/// committed, and then the `f` Byzantine nodes serve nothing: `f + 1`
/// honest nodes serve, fewer than `K − f` when `f ≥ 1` (the power-of-two
/// cells round the need down for K = 4; at K = 7 it is 4 of 7).
/// Setup: K = 7 (f = 2), four honest clients, 28 parameters (4 elements,
/// cells of 1: 4 subfragments needed). Byzantine node 0 (view 0's leader)
/// sends its proposal to nodes 1–4 only and drops its mini-fragments;
/// Byzantine node 1 runs the honest code and drops its mini-fragments.
/// Expected: every honest client decodes the committed global fragment
/// (or nothing is committed and a view change replaces the leader).
/// Observed: PBFT commits view 0's root (nodes 0–4 verified it), nodes 5
/// and 6 never get a subfragment, only nodes 2–4 serve, and no client
/// decodes: the round is committed and lost, and no view change can
/// repair it.
/// Suggested fix: a first-code threshold of at most `f + 1` (what a commit
/// certificate guarantees honest holders of), or let a node vote for a
/// root only after `2f + 1` nodes have announced they hold their
/// subfragment *and* have every node fetch its subfragment from the
/// leader's release before committing (e.g. the release carried with the
/// PBFT block, or a retrieval step from the verifiers).
#[test]
fn proposal_sent_to_only_a_quorum_leaves_the_committed_round_decodable() {
    use gridledger_fl::byzantine::NodeAttack;
    let honest = [0usize, 1, 2, 3];
    let r = run(
        11,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(ProposalNotToDropMinis(vec![5, 6]))), (1, Box::new(NodeAttack::DropMinis))],
        &honest,
    );
    let decoded: Vec<usize> = honest.iter().copied().filter(|&c| r.global_of(c).is_some()).collect();
    assert!(
        decoded.len() == honest.len(),
        "committed {:?}; honest clients that decoded: {decoded:?} of {honest:?}",
        r.committed().first()
    );
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}
