//! Attacks on CTP-FL (issue 16). Every test here FAILS on the code it was
//! written against and is `#[ignore]`d with the one-line finding; run them
//! with `cargo test -p gridledger-fl --test attack -- --ignored`.

mod common;

use blstrs::Scalar;
use common::{
    carried, config, deter_vector, enclave, model, pre_vector, send_upload, upload, upload_signed, vector_evidence,
    DIMS, SIGN_SEED, SK, TIMING,
};
use gridledger_core::enclave::Attester;
use gridledger_fl::aggregate::{fedavg, params_to_bytes};
use gridledger_fl::cells::CellCode;
use gridledger_fl::coding::{client_key, CodedFragment};
use gridledger_fl::consensus::{ChainConfig, ChainNode, ChainParams, Fault, Message, Output, Timer, PRE_VECTOR};
use gridledger_fl::dissemination::{ClientAssembler, GlobalCoder, Source};
use gridledger_fl::round::sim_node_key;

// ---------------------------------------------------------------- helpers

/// Drives the view-0 leader (node 0) of a 4-node chain through a round:
/// `uploads[i]` reaches node 0 as a local message and nodes 1..3 forward
/// their cells; every other node's pre-vector names `pre`; the committee
/// members (and `extra_deter`, node and vector) send deter-vectors naming
/// `deter`. Returns the leader's aggregate (clients used) and its faults.
fn leader_round(
    cfg: &std::sync::Arc<ChainConfig>,
    uploads: &[CodedFragment],
    pre: &[u32],
    deter: &[u32],
    extra_deter: Option<(usize, Vec<u32>)>,
) -> (Option<Vec<u32>>, Vec<Fault>) {
    let mut leader = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    let mut faults = Vec::new();
    let mut outputs = Vec::new();
    let mut absorb = |s: gridledger_fl::consensus::Step| {
        faults.extend(s.faults);
        outputs.extend(s.outputs);
    };
    absorb(leader.start());
    for u in uploads {
        absorb(send_upload(&mut leader, u.message(0).unwrap()));
        for k in 1..cfg.nodes {
            absorb(leader.handle(Source::Node(k), Message::Forward { node: k, msg: u.message(k).unwrap() }));
        }
    }
    absorb(leader.on_timer(Timer::PreVector));
    for k in 1..cfg.nodes {
        absorb(leader.handle(Source::Node(k), pre_vector(cfg, k, pre)));
    }
    absorb(leader.on_timer(Timer::Tally));
    for k in cfg.committee() {
        if k != 0 {
            absorb(leader.handle(Source::Node(k), deter_vector(cfg, k, deter)));
        }
    }
    if let Some((k, v)) = extra_deter {
        absorb(leader.handle(Source::Node(k), deter_vector(cfg, k, &v)));
    }
    absorb(leader.on_timer(Timer::Aggregate(0)));
    let used = outputs.into_iter().find_map(|o| match o {
        Output::Aggregated { clients, .. } => Some(clients),
        _ => None,
    });
    (used, faults)
}

// ------------------------------------------------------------- findings

/// Finding 1 (C2C, resource exhaustion / withholding): a client buffers
/// mini-fragments that arrive before its chain's root is known in one queue
/// capped at `nodes × clients` — exactly the number of honest mini-fragments
/// (K from the nodes, K·(C−1) forwarded) it can receive before the root. One
/// Byzantine client that forwards that many junk mini-fragments (right chain
/// and round, arbitrary values) before the commit fills it; every honest
/// mini-fragment then arriving before the root is dropped as `Overloaded`,
/// never forwarded and never decoded.
/// Expected: after the root is set the client decodes the fragment (junk is
/// refused per source, or evicted, once the root is known).
/// Observed: `fragment(0)` is `None`; faults are `Overloaded` then the junk's
/// `MerkleProofFailed`.
#[test]
fn byzantine_client_fills_pre_root_queue_and_blocks_decoding() {
    const NODES: usize = 4; // f = 1, any 3 decode
    const CLIENTS: usize = 4; // f_cli = 1, any 3 decode a subfragment
    let coder = GlobalCoder::new(200, NODES, 3, CLIENTS, 3).unwrap();
    let bytes: Vec<u8> = (0..200u32).map(|i| (i * 7 + 1) as u8).collect();
    let rel = coder.release(gridledger_core::Hash32::ZERO, 0, 3, &bytes).unwrap();
    let minis: Vec<Vec<_>> =
        rel.subfragments.iter().map(|sf| coder.mini_fragments(sf.node, &rel.root, sf).unwrap()).collect();
    let mut me = ClientAssembler::new(0, 3, vec![coder.clone()]);
    let mut faults = Vec::new();
    // Byzantine client 3 forwards nodes × clients junk copies of its own mini.
    for i in 0..NODES * CLIENTS {
        let mut junk = minis[i % NODES][3].clone();
        junk.values[0] += Scalar::from(i as u64 + 1);
        faults.extend(me.on_mini(Source::Client(3), junk).faults);
    }
    // The honest traffic, all before the root: client 0's own minis from the
    // nodes, and honest clients 1 and 2 forwarding theirs.
    for (k, per_node) in minis.iter().enumerate() {
        faults.extend(me.on_mini(Source::Node(k), per_node[0].clone()).faults);
        for (c, mf) in per_node.iter().enumerate().take(3).skip(1) {
            faults.extend(me.on_mini(Source::Client(c), mf.clone()).faults);
        }
    }
    faults.extend(me.set_root(0, rel.root).faults);
    assert_eq!(
        me.fragment(0),
        Some(&bytes[..]),
        "honest client cannot decode after a junk flood; faults: {:?}",
        &faults[..faults.len().min(4)]
    );
}

/// Finding 2 (FedAvg, panic on outside input): the sample counts FedAvg
/// weights by are reported by clients; their sum is an unchecked `u64` add.
/// Expected: a typed error (`FlError`) for weights whose total overflows.
/// Observed: debug builds panic with "attempt to add with overflow"
/// (release builds wrap: `u64::MAX + 2` totals 1 and the result is garbage).
#[test]
fn fedavg_weight_overflow_is_a_typed_error() {
    let r = std::panic::catch_unwind(|| fedavg(&[(vec![1.0], u64::MAX), (vec![2.0], 2)]));
    assert!(matches!(r, Ok(Err(_))), "want a typed error, got {:?}", r.map_err(|_| "panic"));
}

/// Finding 3 (vector agreement, Eqs 7.16–7.17): only the `f+1` committee
/// members broadcast deter-vectors and the leader's agreement vector is
/// built from "up to f+1 vectors" (§7.4.1 step 5, §7.4.2). The leader here
/// takes the union of the attested deter-vectors of *any* node: a Byzantine
/// node outside the committee (its enclave attests whatever evidence its
/// host computes) adds a client that no committee member — and no quorum of
/// pre-vectors — named, and the leader aggregates it.
/// Expected: the leader aggregates clients {0,1,2} (what the committee
/// agreed); a deter-vector from a non-committee node is refused (a fault).
/// Observed: the aggregate uses {0,1,2,3}; no fault.
#[test]
fn leader_ignores_deter_vectors_from_outside_the_committee() {
    let cfg = config(4, 4, 1);
    let committee = cfg.committee();
    let outsider = (1..4).find(|k| !committee.contains(k)).expect("a non-committee node other than the leader");
    let uploads: Vec<CodedFragment> =
        (0..4u32).map(|c| upload(&cfg, c, &client_key(&SK, c), &model(c as usize))).collect();
    // Client 3 reached only the leader and the outsider in time: the honest
    // pre-vectors and deter-vectors name 0, 1, 2.
    let (used, faults) = leader_round(&cfg, &uploads, &[0, 1, 2], &[0, 1, 2], Some((outsider, vec![0, 1, 2, 3])));
    assert_eq!(used, Some(vec![0, 1, 2]), "committee {committee:?}, outsider {outsider}; faults {faults:?}");
}

/// Finding 4 (C2B, no client authentication): an upload record names its
/// client but nothing authenticates it (the coding docs say the record is
/// "what the client's signature or the chain's transaction covers"; nodes
/// check neither), and a node keeps the first record per client id. A
/// Byzantine client that uploads a well-formed record under an honest
/// client's id first (any key: it need not decrypt) squats that id: the
/// honest upload is refused as `Equivocation`, the leader's decryption of
/// the squatted record fails and the honest client is excluded. One
/// Byzantine client can so exclude every honest client of a chain.
/// Expected: client 0's honest model is aggregated (the forged record is
/// refused as unauthenticated).
/// Observed: client 0 is excluded (`Excluded { client: 0, DecryptFailed }`).
#[test]
fn byzantine_client_squats_an_honest_clients_id() {
    let cfg = config(4, 4, 1);
    let forged = upload_signed(&cfg, 0, &[0xbb; 32], &own_key_of_client_3(), &[1e6; DIMS]);
    let mut uploads: Vec<CodedFragment> = vec![forged];
    uploads.extend((0..4u32).map(|c| upload(&cfg, c, &client_key(&SK, c), &model(c as usize))));
    let all = [0, 1, 2, 3];
    let (used, faults) = leader_round(&cfg, &uploads, &all, &all, None);
    assert_eq!(used, Some(all.to_vec()), "faults {faults:?}");
}

/// What a Byzantine client (3) signs a squatting record with: its own
/// registered key, the only signing key it holds.
fn own_key_of_client_3() -> gridledger_core::crypto::KeyPair {
    gridledger_fl::round::sim_client_signing_key(&SIGN_SEED, 3)
}

/// Finding 4, the refusal itself: a record signed by another key, or with
/// its signature zeroed, arriving after the honest one is refused as
/// `Unauthenticated` — not counted as the honest client's equivocation.
#[test]
fn forged_or_unsigned_record_is_unauthenticated_not_equivocation() {
    let cfg = config(4, 4, 1);
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    node.start();
    let honest = upload(&cfg, 0, &client_key(&SK, 0), &model(0));
    assert!(send_upload(&mut node, honest.message(1).unwrap()).faults.is_empty());
    let forged = upload_signed(&cfg, 0, &[0xbb; 32], &own_key_of_client_3(), &model(1));
    let mut unsigned = honest.message(1).unwrap();
    unsigned.record.signature = gridledger_core::crypto::Signature([0; 64]);
    for m in [forged.message(1).unwrap(), unsigned] {
        let s = send_upload(&mut node, m);
        assert_eq!(
            s.faults,
            vec![Fault::Client { client: 0, error: gridledger_fl::FlError::Unauthenticated { client: 0 } }]
        );
    }
}

/// Finding 7 (leader aggregation, poisoning through omission): a leader
/// "aggregates the clients it can decode" and honest nodes accept any
/// non-empty client list its enclave attests. A Byzantine leader's host
/// simply withholds the honest clients' cells from its enclave, so the
/// attested aggregate is the trimmed mean of one poisoned model — one
/// Byzantine node plus one Byzantine client (both within f and ε) defeat
/// the trimmed mean. An honest node can detect it soundly: a client that
/// *every one* of the K nodes attested in its pre-vector has verified cells
/// at ≥ T honest nodes, all forwarded to the leader, so an honest leader
/// always decodes it; omitting such a client is proof of a faulty leader.
/// Expected: node 1 refuses the proposal (`Fault::UnprovenOmission`: no
/// exclusion evidence for the clients left out) and asks for the next view.
/// Observed: accepted silently (no fault, no view change).
#[test]
fn leader_omitting_clients_every_node_attested_is_refused() {
    let cfg = config(4, 4, 1);
    let all = [0u32, 1, 2, 3];
    let uploads: Vec<CodedFragment> =
        all.iter().map(|&c| upload(&cfg, c, &client_key(&SK, c), &model(c as usize))).collect();
    let mut node = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    let mut faults = Vec::new();
    let mut view_change = false;
    let mut absorb = |s: gridledger_fl::consensus::Step| {
        view_change |= s.sends.iter().any(|(_, m)| matches!(m, Message::ViewChange { .. }));
        faults.extend(s.faults);
    };
    absorb(node.start());
    for u in &uploads {
        absorb(send_upload(&mut node, u.message(1).unwrap()));
    }
    absorb(node.on_timer(Timer::PreVector));
    for k in [0, 2, 3] {
        absorb(node.handle(Source::Node(k), pre_vector(&cfg, k, &all)));
    }
    absorb(node.on_timer(Timer::Tally));
    for k in cfg.committee() {
        if k != 1 {
            absorb(node.handle(Source::Node(k), deter_vector(&cfg, k, &all)));
        }
    }
    // Leader 0 aggregates client 3 alone: a scaled, sign-flipped model.
    let poisoned: Vec<f32> = model(3).iter().map(|x| x * -20.0).collect();
    let rel = cfg.release(&params_to_bytes(&poisoned)).unwrap();
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, &[3]));
    let sf = rel.subfragments[1].clone();
    absorb(node.handle(
        Source::Node(0),
        Message::Proposal {
            view: 0,
            root: rel.root,
            clients: vec![3],
            ra,
            sf,
            excluded: vec![],
            pre_vectors: carried(&cfg, &[(0, &all), (1, &all), (2, &all), (3, &all)]),
        },
    ));
    // Control: the same proposal with another node's attestation is refused,
    // so the path that should refuse the omission is reachable.
    let mut control = ChainNode::new(cfg.clone(), 1, enclave(1), SK, sim_node_key(1), TIMING);
    control.start();
    let bad_ra = enclave(2).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, &[3]));
    let sf = rel.subfragments[1].clone();
    let s = control.handle(
        Source::Node(0),
        Message::Proposal {
            view: 0,
            root: rel.root,
            clients: vec![3],
            ra: bad_ra,
            sf,
            excluded: vec![],
            pre_vectors: vec![],
        },
    );
    assert!(s.faults.iter().any(|f| matches!(f, Fault::BadProposal { .. })), "control: {:?}", s.faults);
    assert!(
        faults.iter().any(|f| matches!(f, Fault::UnprovenOmission { view: 0, client: 0 })) && view_change,
        "proposal aggregating only client 3 accepted; faults {faults:?}"
    );
}

/// Finding 8 (coding parameters, overflow): a node or client count of
/// `usize::MAX` makes the code constructors panic ("attempt to add with
/// overflow") instead of returning the `Unsupported` error they return for
/// `2^40` nodes. Same through `GlobalCoder::new` (nodes or clients) and
/// `FragmentCoder::new`.
/// Expected: `Err(FlError::Unsupported(..))`. Observed: panic (debug builds).
#[test]
fn huge_node_or_client_count_is_a_typed_error() {
    let r = std::panic::catch_unwind(|| CellCode::for_nodes(5, usize::MAX, 3).map(|c| c.cell_size()));
    assert!(matches!(r, Ok(Err(_))), "for_nodes: {:?}", r.map_err(|_| "panic"));
    let r = std::panic::catch_unwind(|| GlobalCoder::new(100, 4, 3, usize::MAX, 3).map(|c| c.max_len()));
    assert!(matches!(r, Ok(Err(_))), "GlobalCoder clients: {:?}", r.map_err(|_| "panic"));
}

// ------------------------------------------------ attacks that held (pass)

/// Cells relabelled to another position, checked against another client's
/// commitment, of the wrong length or out of range, and duplicated: each is
/// refused with a typed error, never a panic, and decoding from the honest
/// remainder still yields the fragment.
#[test]
fn held_cells_for_other_positions_commitments_lengths_and_duplicates() {
    let cfg = config(4, 4, 1);
    let coder = &cfg.coder;
    let a = upload(&cfg, 0, &client_key(&SK, 0), &model(0));
    let b = upload(&cfg, 1, &client_key(&SK, 1), &model(1));
    // Cell 2 presented as node 1's.
    let mut m = a.message(2).unwrap();
    m.cell.index = 1;
    assert!(coder.verify_message(1, &m).is_err());
    // Node 1's cell under another client's record.
    let mut m = a.message(1).unwrap();
    m.record = b.record;
    assert!(coder.verify_message(1, &m).is_err());
    // Another record's degree proof.
    let mut m = a.message(1).unwrap();
    m.record.degree_proof = b.record.degree_proof;
    assert!(coder.verify_message(1, &m).is_err());
    // Absurd ciphertext length.
    let mut m = a.message(1).unwrap();
    m.record.ciphertext_len = u32::MAX;
    assert!(matches!(coder.verify_message(1, &m), Err(gridledger_fl::FlError::WrongLength { .. })));
    // Too long and too short cells.
    let mut m = a.message(1).unwrap();
    m.cell.values.push(Scalar::from(1u64));
    assert!(coder.verify_message(1, &m).is_err());
    m.cell.values.clear();
    assert!(coder.verify_message(1, &m).is_err());
    // Decode: duplicates, an out-of-range index and a cell of another
    // client beside three honest cells.
    let mut cells = vec![a.cells[0].clone(), a.cells[0].clone(), a.cells[1].clone(), a.cells[3].clone()];
    let mut far = a.cells[2].clone();
    far.index = usize::MAX;
    cells.push(far);
    cells.push(b.cells[2].clone());
    let (r, faults) = coder.decode(&client_key(&SK, 0), &a.record, &cells);
    assert_eq!(r.unwrap(), params_to_bytes(&model(0)));
    assert_eq!(faults.len(), 2, "{faults:?}");
    // Another client's key does not decrypt.
    let (r, _) = coder.decode(&client_key(&SK, 1), &a.record, &a.cells);
    assert_eq!(r, Err(gridledger_fl::FlError::DecryptFailed));
}

/// A pre-vector replayed from another round, one attested by another
/// node's enclave, and a voter counted twice: none moves a client to the
/// 2f+1 tally.
#[test]
fn held_replayed_foreign_and_duplicated_pre_vectors_do_not_count() {
    let cfg = config(4, 4, 1);
    let other_round = ChainConfig::new(ChainParams { round: cfg.round + 1, ..cfg.params().clone() });
    let mut node = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    node.start();
    node.on_timer(Timer::PreVector);
    let mut faults = Vec::new();
    // Node 1's genuine vector for another round.
    faults.extend(node.handle(Source::Node(1), pre_vector(&other_round, 1, &[2])).faults);
    // Node 2's vector signed by node 3's enclave.
    let ra = enclave(3).attest_evidence(&vector_evidence(&cfg, PRE_VECTOR, 2, &[2]));
    faults.extend(
        node.handle(Source::Node(2), Message::PreVector { node: 2, view: 0, seq: 0, clients: vec![2], ra }).faults,
    );
    // Node 3 twice (once genuine), and node 3 claiming to be node 1.
    faults.extend(node.handle(Source::Node(3), pre_vector(&cfg, 3, &[2])).faults);
    faults.extend(node.handle(Source::Node(3), pre_vector(&cfg, 3, &[2])).faults);
    faults.extend(node.handle(Source::Node(3), pre_vector(&cfg, 1, &[2])).faults);
    let s = node.on_timer(Timer::Tally);
    let deter = s.outputs.iter().find_map(|o| match o {
        Output::DeterVector(v) => Some(v.clone()),
        _ => None,
    });
    assert_eq!(deter, Some(vec![]), "faults {faults:?}");
    assert_eq!(faults.len(), 3, "{faults:?}");
}
