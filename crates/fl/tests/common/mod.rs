//! The simulator harness of the dual-consensus tests (`dual_consensus.rs`)
//! and their mutation-sensitivity check (`mutants.rs`): one chain's nodes
//! and clients, Byzantine adversaries, and the round's success check.
#![allow(dead_code)]

pub mod two_lists;
pub mod view0;

use gridledger_consensus::pbft;
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::enclave::{Attester, SoftwareAttester};
use gridledger_core::Hash32;
use gridledger_fl::aggregate::{params_to_bytes, trimmed_mean};
use gridledger_fl::coding::{CodedFragment, FragmentCoder, LocalMessage};
use gridledger_fl::consensus::{
    ChainConfig, ChainNode, ChainParams, Fault, Message, Output, Step, Timing, DETER_VECTOR, PRE_VECTOR,
};
use gridledger_fl::dissemination::{GlobalCoder, Source};
use gridledger_fl::kzg::Kzg;
use gridledger_fl::round::{
    sim_client_secrets, sim_client_signing_key, sim_node_key, ClientBehaviour, FlClient, Participant, RoundOutput,
};
use gridledger_sim::{Adversary, Dest, NetConfig, NodeId, Simulation, Time};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use std::sync::Arc;

pub const SK: [u8; 32] = [42; 32];
/// Seed of the simulated clients' signing keys (independent of `SK`).
pub const SIGN_SEED: [u8; 32] = [17; 32];
// 28 parameters: 128 bytes of ciphertext = 5 elements, so with 4 nodes
// (cells of 2) a fragment needs 3 cells, with 10 nodes (cells of 1) 5.
pub const DIMS: usize = 28;
pub const TIMING: Timing = Timing { pre_vector: 40, tally: 80, aggregate: 120, view: 120 };

pub type P = Participant<SoftwareAttester>;

pub fn enclave(k: usize) -> SoftwareAttester {
    SoftwareAttester::new(k, b"ctp-fl enclave v1", [k as u8 + 1; 32])
}

pub fn config(nodes: usize, clients: usize, beta: usize) -> Arc<ChainConfig> {
    let f = (nodes - 1) / 3;
    let max_ct = DIMS * 4 + 16;
    let coder = FragmentCoder::new(Kzg::insecure_from_seed(16, 9), max_ct, nodes, nodes - 2 * f).unwrap();
    let global = GlobalCoder::for_chain(DIMS * 4, nodes, clients).unwrap();
    Arc::new(ChainConfig::new(ChainParams {
        task: Hash32([1; 32]),
        // This run's id: fixed here so a test's adversaries share the run's
        // instance; an earlier run of the same configuration is
        // [`earlier_run`].
        run: RUN,
        chain: 2,
        round: 5,
        nodes,
        clients,
        dims: DIMS,
        beta,
        measurement: enclave(0).measurement(),
        node_keys: (0..nodes).map(|k| enclave(k).attestation_key()).collect(),
        pbft_keys: (0..nodes).map(|k| sim_node_key(k).public()).collect(),
        client_keys: (0..clients as u32).map(|c| sim_client_signing_key(&SIGN_SEED, c).public()).collect(),
        random_value: [7; 32],
        prev_block: Hash32([3; 32]),
        coder: Arc::new(coder),
        global: Arc::new(global),
    }))
}

/// The run id of every [`config`] (a test's run).
pub const RUN: Hash32 = Hash32([4; 32]);

/// The configuration of an earlier run of `cfg`'s: all the same but the
/// run id, which each run draws afresh (`fresh_run_id`).
pub fn earlier_run(cfg: &ChainConfig) -> ChainConfig {
    ChainConfig::new(ChainParams { run: gridledger_fl::consensus::fresh_run_id(), ..cfg.params().clone() })
}

/// The evidence a node's enclave attests for its first pre- or
/// deter-vector (`tag`) of view 0 (`ChainConfig::vector_evidence` with view
/// and sequence number 0), recomputed here byte by byte so the layout is
/// checked too.
pub fn vector_evidence(cfg: &ChainConfig, tag: Tag, node: usize, clients: &[u32]) -> [u8; 32] {
    let mut b = Vec::new();
    b.extend_from_slice(&cfg.instance().0);
    b.extend_from_slice(&cfg.chain.to_le_bytes());
    b.extend_from_slice(&cfg.round.to_le_bytes());
    b.extend_from_slice(&(node as u64).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    for c in clients {
        b.extend_from_slice(&c.to_le_bytes());
    }
    let ev = hash_bytes(tag, &b).0;
    assert_eq!(ev, cfg.vector_evidence(tag, node, 0, 0, clients));
    ev
}

/// Node `node`'s first pre-vector (view 0, sequence number 0).
pub fn pre_vector(cfg: &ChainConfig, node: usize, clients: &[u32]) -> Message {
    pre_vector_at(cfg, node, 0, 0, clients)
}

/// Node `node`'s `seq`-th pre-vector, attested in view `view`.
pub fn pre_vector_at(cfg: &ChainConfig, node: usize, view: u32, seq: u32, clients: &[u32]) -> Message {
    let ra = enclave(node).attest_evidence(&cfg.vector_evidence(PRE_VECTOR, node, view, seq, clients));
    Message::PreVector { node, view, seq, clients: clients.to_vec(), ra }
}

/// The attested pre-vectors `(node, clients)` as a proposal carries them.
pub fn carried(cfg: &ChainConfig, vectors: &[(usize, &[u32])]) -> Vec<gridledger_fl::consensus::AttestedVector> {
    vectors
        .iter()
        .map(|&(node, clients)| gridledger_fl::consensus::AttestedVector {
            node,
            view: 0,
            seq: 0,
            clients: clients.to_vec(),
            ra: enclave(node).attest_evidence(&vector_evidence(cfg, PRE_VECTOR, node, clients)),
        })
        .collect()
}

pub fn deter_vector(cfg: &ChainConfig, node: usize, clients: &[u32]) -> Message {
    let ra = enclave(node).attest_evidence(&vector_evidence(cfg, DETER_VECTOR, node, clients));
    Message::DeterVector { node, view: 0, seq: 0, clients: clients.to_vec(), ra }
}

/// Client `c`'s honest coded upload (signed with its registered key).
pub fn upload(cfg: &ChainConfig, c: u32, key: &[u8; 32], params: &[f32]) -> CodedFragment {
    upload_signed(cfg, c, key, &sim_client_signing_key(&SIGN_SEED, c), params)
}

/// A coded upload "of" client `c` signed with `signer`.
pub fn upload_signed(
    cfg: &ChainConfig,
    c: u32,
    key: &[u8; 32],
    signer: &gridledger_core::crypto::KeyPair,
    params: &[f32],
) -> CodedFragment {
    let ctx = cfg.fragment_context(cfg.chain);
    cfg.coder.encode(key, signer, &ctx, c, &params_to_bytes(params)).unwrap()
}

/// `node` handles upload message `m` sent by its own client (the client
/// its record names), as a client sends its upload.
pub fn send_upload<A: Attester>(node: &mut ChainNode<A>, m: LocalMessage) -> Step {
    node.handle(Source::Client(m.record.client as usize), Message::Local(m))
}

/// Client `c`'s honest local model: near 1.0 with a per-client offset.
pub fn model(c: usize) -> Vec<f32> {
    (0..DIMS).map(|d| 1.0 + 0.01 * ((c * 7 + d * 3) % 11) as f32).collect()
}

pub struct Run {
    pub sim: Simulation<P>,
    pub nodes: usize,
}

pub fn run(
    seed: u64,
    nodes: usize,
    behaviours: Vec<ClientBehaviour>,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
    honest_clients: &[usize],
) -> Run {
    let clients = behaviours.len();
    let cfg = config(nodes, clients, clients / 3);
    let net = NetConfig::reliable(nodes + clients, 6);
    run_custom(seed, cfg, net, behaviours, adversaries, honest_clients, 5_000)
}

/// One round of the chain `cfg` (its nodes `0..cfg.nodes`, then one client
/// per entry of `behaviours`) on `net`, nodes never restarted, `adversaries`
/// on the nodes they name; run until every client of `honest_clients` has
/// decoded the global model, or until tick `until`.
pub fn run_custom(
    seed: u64,
    cfg: Arc<ChainConfig>,
    net: NetConfig,
    behaviours: Vec<ClientBehaviour>,
    adversaries: Vec<(usize, Box<dyn Adversary<P>>)>,
    honest_clients: &[usize],
    until: Time,
) -> Run {
    let nodes = cfg.nodes;
    let mut sim = Simulation::new(seed, net, move |id, _| {
        let id = id as usize;
        if id < nodes {
            Participant::Node(Box::new(ChainNode::new(cfg.clone(), id, enclave(id), SK, sim_node_key(id), TIMING)))
        } else {
            let c = id - nodes;
            Participant::Client(Box::new(FlClient::new(
                cfg.clone(),
                c,
                sim_client_secrets(&SK, &SIGN_SEED, c as u32),
                model(c),
                behaviours[c],
            )))
        }
    });
    sim.set_restart_after(None);
    for (id, a) in adversaries {
        sim.set_adversary(id as u32, a);
    }
    sim.start();
    let want: Vec<u32> = honest_clients.iter().map(|&c| (nodes + c) as u32).collect();
    sim.run_until(until, |s| {
        want.iter().all(|id| s.outputs.iter().any(|(_, n, o)| n == id && matches!(o, RoundOutput::Global(_))))
    });
    Run { sim, nodes }
}

impl Run {
    pub fn global_of(&self, client: usize) -> Option<Vec<f32>> {
        let id = (self.nodes + client) as u32;
        self.sim.outputs.iter().find_map(|(_, n, o)| match o {
            RoundOutput::Global(g) if *n == id => Some(g.clone()),
            _ => None,
        })
    }

    pub fn committed(&self) -> Vec<(u32, u32, Hash32)> {
        self.sim
            .outputs
            .iter()
            .filter_map(|(_, n, o)| match o {
                RoundOutput::Node(Output::Committed { view, root }) => Some((*n, *view, *root)),
                _ => None,
            })
            .collect()
    }

    pub fn aggregated(&self) -> Vec<(u32, Vec<u32>)> {
        self.sim
            .outputs
            .iter()
            .filter_map(|(_, _, o)| match o {
                RoundOutput::Node(Output::Aggregated { view, clients, .. }) => Some((*view, clients.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn faults(&self) -> Vec<&Fault> {
        self.sim.faults.iter().map(|(_, _, f)| f).collect()
    }

    /// The faults `keep` selects, each with the node that recorded it.
    pub fn faults_where(&self, keep: impl Fn(&Fault) -> bool) -> Vec<(u32, &Fault)> {
        self.sim.faults.iter().filter(|(_, _, f)| keep(f)).map(|(_, n, f)| (*n, f)).collect()
    }

    /// With `ATK_DEBUG` set, prints every output and then every fault of
    /// the run to stderr (the trace of a round that went wrong).
    pub fn debug_trace(&self) {
        if std::env::var("ATK_DEBUG").is_ok() {
            for x in &self.sim.outputs {
                eprintln!("{x:?}");
            }
            for x in &self.sim.faults {
                eprintln!("{x:?}");
            }
        }
    }
}

/// Every honest client holds the same global fragment, equal to the
/// trimmed mean of the models of the clients the committed view aggregated.
pub fn assert_round_succeeded(r: &Run, honest_clients: &[usize], models_of: impl Fn(u32) -> Vec<f32>, beta: usize) {
    if let Err(e) = round_succeeded(r, honest_clients, models_of, beta) {
        panic!("{e}");
    }
}

/// [`assert_round_succeeded`] as a result: what went wrong, if anything.
pub fn round_succeeded(
    r: &Run,
    honest_clients: &[usize],
    models_of: impl Fn(u32) -> Vec<f32>,
    beta: usize,
) -> Result<(), String> {
    let committed = r.committed();
    let Some(&(_, view, root)) = committed.first() else {
        return Err(format!("no node committed; faults: {:?}", r.faults()));
    };
    if !committed.iter().all(|(_, v, rt)| *v == view && *rt == root) {
        return Err(format!("split commit: {committed:?}"));
    }
    let Some((_, used)) = r.aggregated().into_iter().find(|(v, _)| *v == view) else {
        return Err(format!("view {view} committed without an aggregate"));
    };
    let models: Vec<Vec<f32>> = used.iter().map(|&c| models_of(c)).collect();
    let want = trimmed_mean(&models, beta).map_err(|e| e.to_string())?;
    for &c in honest_clients {
        if r.global_of(c).as_deref() != Some(&want[..]) {
            return Err(format!("client {c}: global {:?}, want {want:?}", r.global_of(c)));
        }
    }
    Ok(())
}

/// Drops everything its node sends.
pub struct Withhold;
impl Adversary<P> for Withhold {
    fn tamper(&mut self, _: Time, _: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        Vec::new()
    }
}

/// A leader that proposes a root other than the one its enclave attested.
pub struct LyingLeader;
impl Adversary<P> for LyingLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view, clients, ra, sf, excluded, pre_vectors, .. } => {
                    (d, Message::Proposal { view, root: Hash32([0xee; 32]), clients, ra, sf, excluded, pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// Alters every mini-fragment its node (or client) sends.
pub struct AlterMinis;
impl Adversary<P> for AlterMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use ff::Field;
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Mini { from_node, mut mf } => {
                    mf.values[0] += blstrs::Scalar::ONE;
                    (d, Message::Mini { from_node, mf })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// A leader whose host feeds its enclave the cells of one client only:
/// every proposal it sends becomes the attested aggregate of `client`'s
/// model scaled by `factor`, with no exclusion evidence for the clients it
/// leaves out.
pub struct OmittingLeader {
    pub cfg: Arc<ChainConfig>,
    pub client: u32,
    pub factor: f32,
}
impl Adversary<P> for OmittingLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let poisoned: Vec<f32> = model(self.client as usize).iter().map(|x| x * self.factor).collect();
        let rel = self.cfg.release(&params_to_bytes(&poisoned)).unwrap();
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view, sf, pre_vectors, .. } => {
                    let clients = vec![self.client];
                    let leader = self.cfg.leader(view);
                    let ra = enclave(leader).attest_evidence(&self.cfg.aggregate_evidence(view, &rel.root, &clients));
                    let sf = rel.subfragments[sf.node].clone();
                    (d, Message::Proposal { view, root: rel.root, clients, ra, sf, excluded: vec![], pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// Drops what its participant sends to one node (for a client) or the
/// forwards it sends the leader (for a node).
pub struct DropTo(pub u32);
impl Adversary<P> for DropTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| !(*d == Dest::One(self.0) && matches!(m, Message::Local(_) | Message::Forward { .. })))
            .collect()
    }
}

/// Drops the local messages and forwards its participant sends to any of
/// these nodes (a client that reaches only the others).
pub struct DropToNodes(pub Vec<u32>);
impl Adversary<P> for DropToNodes {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| {
                !(self.0.iter().any(|&n| *d == Dest::One(n))
                    && matches!(m, Message::Local(_) | Message::Forward { .. }))
            })
            .collect()
    }
}

/// A Byzantine node that sends nothing but its (honestly computed,
/// attested) pre-vector, and that only to node `to`.
pub struct PreVectorOnlyTo(pub u32);
impl Adversary<P> for PreVectorOnlyTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, m)| *d == Dest::One(self.0) && matches!(m, Message::PreVector { .. })).collect()
    }
}

/// A Byzantine node `me` that sends its honest pre-vector only to the
/// `targets`, and everyone else an attested pre-vector naming only
/// `short` (its host fed its enclave fewer cells); it takes part in
/// everything else and drops the mini-fragments it should send the clients.
pub struct SplitPreVectorDropMinis {
    pub cfg: Arc<ChainConfig>,
    pub me: usize,
    pub targets: Vec<u32>,
    pub short: Vec<u32>,
}
impl Adversary<P> for SplitPreVectorDropMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(_, m)| !matches!(m, Message::Mini { .. }))
            .map(|(d, m)| match m {
                Message::PreVector { .. } if !self.targets.iter().any(|&t| d == Dest::One(t)) => {
                    (d, pre_vector(&self.cfg, self.me, &self.short))
                }
                other => (d, other),
            })
            .collect()
    }
}

/// A Byzantine node that drops the mini-fragments it should send the
/// clients, and — as the leader — sends the nodes in `to` its proposal
/// with an attestation over nothing (they refuse it; the others verify it).
pub struct BadAttestationToDropMinis {
    pub me: usize,
    pub to: Vec<u32>,
}
impl Adversary<P> for BadAttestationToDropMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(_, m)| !matches!(m, Message::Mini { .. }))
            .map(|(d, m)| junk_copy(self.me, &self.to, d, m))
            .collect()
    }
}

/// `m` as node `me` sends it to `d`: a proposal to one of the nodes `to`
/// with an attestation over nothing instead of its enclave's (a junk copy:
/// the node refuses it), anything else as it is.
pub fn junk_copy(me: usize, to: &[u32], d: Dest, m: Message) -> (Dest, Message) {
    match m {
        Message::Proposal { view, root, clients, sf, excluded, pre_vectors, .. }
            if to.iter().any(|&t| d == Dest::One(t)) =>
        {
            let ra = enclave(me).attest_evidence(&[0u8; 32]);
            (d, Message::Proposal { view, root, clients, ra, sf, excluded, pre_vectors })
        }
        other => (d, other),
    }
}

/// Client vectors output by node id.
pub type NodeVectors = Vec<(u32, Vec<u32>)>;

/// The pre- and deter-vectors each node output.
pub fn vectors(r: &Run) -> (NodeVectors, NodeVectors) {
    let mut pre = Vec::new();
    let mut deter = Vec::new();
    for (_, n, o) in &r.sim.outputs {
        match o {
            RoundOutput::Node(Output::PreVector(v)) => pre.push((*n, v.clone())),
            RoundOutput::Node(Output::DeterVector(v)) => deter.push((*n, v.clone())),
            _ => {}
        }
    }
    (pre, deter)
}

/// A Byzantine leader that replaces its view-0 proposal with an aggregate
/// its enclave honestly attested for view 0 elsewhere — another chain
/// history or another federation (`old`: root, clients, attestation, and
/// that release's subfragments). Used by the replay attacks.
pub struct ReplayProposal {
    pub old: (Hash32, Vec<u32>, gridledger_core::enclave::EvidenceAttestation),
    pub subfragments: Vec<gridledger_fl::dissemination::GlobalSubfragment>,
}

impl Adversary<P> for ReplayProposal {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, .. } => {
                    let (root, clients, ra) = self.old.clone();
                    let sf = self.subfragments[sf.node].clone();
                    (d, Message::Proposal { view: 0, root, clients, ra, sf, excluded: vec![], pre_vectors: vec![] })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// An honest client that crashed mid-upload (its first attempt reached
/// nodes `0..reached`) and, its round state not persisted, encoded its
/// model again and sent the upload to every node.
pub struct RetryAfterCrash {
    pub cfg: Arc<ChainConfig>,
    pub client: u32,
    pub reached: usize,
}

impl Adversary<P> for RetryAfterCrash {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_fl::coding::client_key;
        let mut out: Vec<(Dest, Message)> = sends
            .into_iter()
            .filter(|(d, m)| !matches!(m, Message::Local(l) if l.cell.index >= self.reached && *d == Dest::One(l.cell.index as u32)))
            .collect();
        if out.iter().any(|(_, m)| matches!(m, Message::Local(_))) {
            let retry = upload(&self.cfg, self.client, &client_key(&SK, self.client), &model(self.client as usize));
            for k in 0..self.cfg.nodes {
                out.push((Dest::One(k as u32), Message::Local(retry.message(k).unwrap())));
            }
        }
        out
    }
}

/// The pre-vectors nodes `0..nodes`' enclaves attest under `cfg` naming
/// `clients` (another run's or task's, to be replayed).
pub fn attested_pre_vectors(
    cfg: &ChainConfig,
    nodes: usize,
    clients: &[u32],
) -> Vec<gridledger_fl::consensus::AttestedVector> {
    (0..nodes)
        .map(|node| gridledger_fl::consensus::AttestedVector {
            node,
            view: 0,
            seq: 0,
            clients: clients.to_vec(),
            ra: enclave(node).attest_evidence(&vector_evidence(cfg, PRE_VECTOR, node, clients)),
        })
        .collect()
}

/// A Byzantine view-0 leader whose proposal carries attested pre-vectors
/// `old` (of an earlier run, or of another task) and the attested
/// aggregate `global` of the `clients` those name.
pub struct CarryEarlierPreVectors {
    pub cfg: Arc<ChainConfig>,
    pub old: Vec<gridledger_fl::consensus::AttestedVector>,
    pub clients: Vec<u32>,
    pub global: Vec<f32>,
}

impl Adversary<P> for CarryEarlierPreVectors {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let rel = self.cfg.release(&params_to_bytes(&self.global)).unwrap();
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, .. } => {
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &self.clients));
                    let sf = rel.subfragments[sf.node].clone();
                    let msg = Message::Proposal {
                        view: 0,
                        root: rel.root,
                        clients: self.clients.clone(),
                        ra,
                        sf,
                        excluded: vec![],
                        pre_vectors: self.old.clone(),
                    };
                    (d, msg)
                }
                other => (d, other),
            })
            .collect()
    }
}

/// A Byzantine node that runs the honest code but sends its aggregation
/// proposal to every node except `skip`, and never sends a PBFT commit
/// vote or catch-up answer (it prepares, view-changes and everything else
/// as the code does).
pub struct SkipProposalWithholdCommits {
    pub skip: Vec<u32>,
}

impl Adversary<P> for SkipProposalWithholdCommits {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_consensus::pbft;
        sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Proposal { .. } => !self.skip.iter().any(|&n| *d == Dest::One(n)),
                Message::Pbft(b) => !matches!(**b, pbft::Message::Commit(_) | pbft::Message::CatchUpResponse { .. }),
                _ => true,
            })
            .collect()
    }
}

/// K = 7 (f = 2), four honest clients: Byzantine nodes 0 and 1 (the first
/// two aggregation leaders) send their proposals to all but nodes 5 and 6
/// and withhold their PBFT commit votes and catch-up answers, so view 0's
/// block is prepared by `2f + 1` but committed by `f + 1` only, and PBFT
/// must re-propose it to the skipped nodes (attack round 6, finding 3).
pub fn skipping_leaders_withholding_commits(seed: u64) -> Run {
    let honest = [0usize, 1, 2, 3];
    run(
        seed,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![
            (0, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
            (1, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
        ],
        &honest,
    )
}

/// What a Byzantine node does with the proposals its peers fetch from it
/// (`Message::Relay`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayMode {
    /// Relays as the code does.
    Honest,
    /// Relays nothing.
    Drop,
    /// Relays its proposal with the last aggregated client left out and
    /// its subfragment's first value altered.
    Alter,
}

/// Attack round 8's skipping leader `me`: as
/// [`SkipProposalWithholdCommits`], and it forwards no client message to
/// later leaders, and treats the proposals its peers fetch from it as
/// `relay` says. With [`RelayMode::Alter`] it also sends, unasked, with
/// every message it sends after its first proposal, a forged relay of that
/// proposal (the last client left out, the leader's attestation kept) to
/// the nodes it skipped, so a forgery reaches them before any honest
/// relay does.
pub struct SkipWithholdRelay {
    pub me: usize,
    pub skip: Vec<u32>,
    pub relay: RelayMode,
    forged: Option<Message>,
}

impl SkipWithholdRelay {
    pub fn new(me: usize, skip: Vec<u32>, relay: RelayMode) -> Self {
        Self { me, skip, relay, forged: None }
    }
}

/// A relay or proposal turned into node `me`'s relay, altered as
/// [`RelayMode::Alter`] says.
fn alter_relay(me: usize, m: Message) -> Message {
    use ff::Field;
    match m {
        Message::Relay { view, root, mut clients, ra, mut sf, excluded, pre_vectors, .. }
        | Message::Proposal { view, root, mut clients, ra, mut sf, excluded, pre_vectors } => {
            clients.pop();
            sf.node = me;
            sf.values[0] += blstrs::Scalar::ONE;
            Message::Relay { node: me, view, root, clients, ra, sf, excluded, pre_vectors }
        }
        other => other,
    }
}

impl Adversary<P> for SkipWithholdRelay {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, rng: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let (me, relay) = (self.me, self.relay);
        let sends = SkipProposalWithholdCommits { skip: self.skip.clone() }.tamper(now, sends, rng);
        let mut out: Vec<(Dest, Message)> = Vec::new();
        for (d, m) in sends {
            match m {
                Message::Forward { .. } => {}
                Message::Relay { .. } if relay == RelayMode::Drop => {}
                Message::Relay { .. } if relay == RelayMode::Alter => out.push((d, alter_relay(me, m))),
                Message::Proposal { .. } if relay == RelayMode::Alter && self.forged.is_none() => {
                    self.forged = Some(alter_relay(me, m.clone()));
                    out.push((d, m));
                }
                other => out.push((d, other)),
            }
        }
        if let Some(forged) = &self.forged {
            out.extend(self.skip.iter().map(|&n| (Dest::One(n), forged.clone())));
        }
        out
    }
}

/// K = 7 (f = 2): attack round 8's finding 1. Four honest clients and
/// client 4, which equivocates (record A to nodes 0–2, record B to 3–6)
/// with its sends to nodes 1 and 2 dropped: record A reaches Byzantine
/// node 0 only. Byzantine nodes 0 and 1 (the first two aggregation
/// leaders) skip nodes 5 and 6 with their proposals, withhold their PBFT
/// commit votes, forward no client message and relay as `relay` says.
/// View 0 excludes client 4 with equivocation evidence, which no later
/// honest leader holds, so no later aggregate equals view 0's prepared
/// one: the skipped nodes must fetch view 0's proposal from nodes 2–4.
pub fn skipping_leaders_and_an_equivocating_client(seed: u64, relay: RelayMode) -> Run {
    let honest = [0usize, 1, 2, 3];
    let nodes = 7;
    let mut behaviours = vec![ClientBehaviour::Honest; 4];
    behaviours.push(ClientBehaviour::Equivocate);
    run(
        seed,
        nodes,
        behaviours,
        vec![
            (0, Box::new(SkipWithholdRelay::new(0, vec![5, 6], relay))),
            (1, Box::new(SkipWithholdRelay::new(1, vec![5, 6], relay))),
            (nodes + 4, Box::new(DropToNodes(vec![1, 2]))),
        ],
        &honest,
    )
}

// ------------------------------- attack round 9 (fetching re-proposed roots)

/// K = 7 (f = 2) with four honest clients, as `common::run`, but with a
/// global coder whose fragments need exactly `f + 1 = 3` subfragments to
/// decode (up to 186 bytes: six elements in cells of two), as
/// `GlobalCoder::for_chain` promises in general (the common configuration's
/// 112-byte fragments decode from two).
pub fn run_wide(seed: u64, adversaries: Vec<(usize, Box<dyn Adversary<P>>)>) -> Run {
    let (nodes, clients) = (7usize, 4usize);
    let base = config(nodes, clients, clients / 3);
    let global = GlobalCoder::for_chain(186, nodes, clients).unwrap();
    assert_eq!(global.subfragments_needed(), 3, "the scenario needs f + 1 subfragments to decode");
    let cfg = Arc::new(ChainConfig::new(ChainParams { global: Arc::new(global), ..base.params().clone() }));
    let net = NetConfig::reliable(nodes + clients, 6);
    run_custom(seed, cfg, net, vec![ClientBehaviour::Honest; clients], adversaries, &[0, 1, 2, 3], 5_000)
}

/// Whether `m` is a PBFT commit vote or catch-up answer (what the
/// Byzantine nodes below withhold, so a prepared block needs `2f + 1`
/// honest commits).
pub fn commit_or_catch_up(m: &Message) -> bool {
    matches!(m, Message::Pbft(b) if matches!(**b, pbft::Message::Commit(_) | pbft::Message::CatchUpResponse { .. }))
}

/// A Byzantine node that runs the honest code, sends its aggregation
/// proposal only to nodes outside `skip`, withholds its commit votes and
/// catch-up answers, and relays the proposals its peers fetch only to
/// `relay_to` — and only once it has seen every node of `wait_for` fetch
/// the same proposal, and 10 ticks more have passed (so the node it
/// relays to completes its own fetch after the others' fetches reached it).
pub struct SkipRelayLate {
    skip: Vec<u32>,
    relay_to: Vec<u32>,
    wait_for: Vec<u32>,
    /// Fetchers seen, by (view, root).
    seen: BTreeSet<(u32, gridledger_core::Hash32, NodeId)>,
    held: Vec<(Dest, Message)>,
    release_at: Option<Time>,
    now: Time,
}

impl SkipRelayLate {
    pub fn new(skip: Vec<u32>, relay_to: Vec<u32>, wait_for: Vec<u32>) -> Self {
        Self { skip, relay_to, wait_for, seen: BTreeSet::new(), held: Vec::new(), release_at: None, now: 0 }
    }

    fn ready(&self, m: &Message) -> bool {
        match m {
            Message::Relay { view, root, .. } => self.wait_for.iter().all(|&w| self.seen.contains(&(*view, *root, w))),
            _ => true,
        }
    }

    fn release(&mut self) -> Vec<(Dest, Message)> {
        if self.release_at.is_none() && !self.held.is_empty() && self.held.iter().all(|(_, m)| self.ready(m)) {
            self.release_at = Some(self.now + 10);
        }
        match self.release_at {
            Some(t) if self.now >= t => std::mem::take(&mut self.held),
            _ => Vec::new(),
        }
    }
}

impl Adversary<P> for SkipRelayLate {
    fn observe(&mut self, from: NodeId, m: &Message, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if let Message::FetchProposal { view, root, .. } = m {
            self.seen.insert((*view, *root, from));
        }
        self.release()
    }

    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        self.now = self.now.max(now);
        let mut out = Vec::new();
        for (d, m) in sends {
            match m {
                _ if commit_or_catch_up(&m) => {}
                Message::Proposal { .. } if self.skip.iter().any(|&n| d == Dest::One(n)) => {}
                Message::Relay { .. } if self.relay_to.iter().any(|&n| d == Dest::One(n)) => self.held.push((d, m)),
                Message::Relay { .. } => {}
                other => out.push((d, other)),
            }
        }
        out.extend(self.release());
        out
    }
}

/// A Byzantine view-0 leader (node 0) whose host feeds its enclave the
/// cells of `clients` only and sends the attested aggregate with *no*
/// carried pre-vectors (each node then checks the omission rule against
/// the pre-vectors it happens to hold), sends its own attested pre-vector
/// only to `pre_to`, signs PBFT prepare votes for view 0's block with its
/// own key (it holds the aggregate) and withholds its commit votes.
pub struct EmptyCarriedLeader {
    cfg: Arc<ChainConfig>,
    clients: Vec<u32>,
    beta: usize,
    pre_to: Vec<u32>,
    /// Carry the attested pre-vectors the honest code would (all it
    /// holds) instead of none.
    carry: bool,
    voted: bool,
}

/// The global model the trimmed mean (trimming `beta`) of `clients`'
/// models makes, released under `cfg`.
pub fn release_of(cfg: &ChainConfig, clients: &[u32], beta: usize) -> gridledger_fl::dissemination::GlobalRelease {
    let models: Vec<Vec<f32>> = clients.iter().map(|&c| model(c as usize)).collect();
    let global = trimmed_mean(&models, beta).unwrap();
    cfg.release(&params_to_bytes(&global)).unwrap()
}

/// What a Byzantine node 0 whose host holds `rel` signs with its own PBFT
/// key: a prepare vote for view 0's root block of `(rel.root, clients)` in
/// each PBFT view `0..8`, sent to every other node.
pub fn node0_prepares(
    cfg: &ChainConfig,
    rel: &gridledger_fl::dissemination::GlobalRelease,
    clients: &[u32],
) -> Vec<(Dest, Message)> {
    use gridledger_consensus::pbft::Payload;
    let block = gridledger_fl::consensus::RootBlock {
        chain: cfg.chain,
        round: cfg.round,
        view: 0,
        root: rel.root,
        clients: clients.to_vec(),
    };
    let key = sim_node_key(0);
    let mut votes = Vec::new();
    for pview in 0..8 {
        let v = pbft::Vote::sign(
            &key,
            pbft::VoteKind::Prepare,
            &cfg.instance(),
            pview,
            gridledger_fl::consensus::ROOT_HEIGHT,
            block.digest(),
        );
        for k in 1..cfg.nodes as u32 {
            votes.push((Dest::One(k), Message::Pbft(Box::new(pbft::Message::Prepare(v.clone())))));
        }
    }
    votes
}

impl Adversary<P> for EmptyCarriedLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let rel = release_of(&self.cfg, &self.clients, self.beta);
        let mut votes = Vec::new();
        if !self.voted && sends.iter().any(|(_, m)| matches!(m, Message::Proposal { view: 0, .. })) {
            self.voted = true;
            votes = node0_prepares(&self.cfg, &rel, &self.clients);
        }
        let out: Vec<(Dest, Message)> = sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::PreVector { .. } => self.pre_to.iter().any(|&t| *d == Dest::One(t)),
                m => !commit_or_catch_up(m),
            })
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, pre_vectors, .. } => {
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &self.clients));
                    let sf = rel.subfragments[sf.node].clone();
                    let msg = Message::Proposal {
                        view: 0,
                        root: rel.root,
                        clients: self.clients.clone(),
                        ra,
                        sf,
                        excluded: vec![],
                        pre_vectors: if self.carry { pre_vectors } else { vec![] },
                    };
                    (d, msg)
                }
                other => (d, other),
            })
            .collect();
        out.into_iter().chain(votes).collect()
    }
}

/// Withholds its PBFT commit votes and catch-up answers.
pub struct WithholdCommits;

impl Adversary<P> for WithholdCommits {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| !commit_or_catch_up(m)).collect()
    }
}

/// Finding 3's run: K = 7, clients 0–3 honest, client 4's upload reaching
/// nodes 0, 2, 3, 4 and 5 only; Byzantine node 0 (view 0's leader) sends
/// its pre-vector to nodes 5 and 6 only and proposes the aggregate of
/// clients 0–3, carrying its pre-vectors when `carry`, none otherwise;
/// Byzantine node 1 withholds its commit votes.
pub fn split_by_own_pre_vectors(carry: bool) -> Run {
    let honest = [0usize, 1, 2, 3];
    let nodes = 7;
    let behaviours = vec![ClientBehaviour::Honest; 5];
    let beta = 5 / 3;
    let cfg = config(nodes, 5, beta);
    run(
        3,
        nodes,
        behaviours,
        vec![
            (
                0,
                Box::new(EmptyCarriedLeader {
                    cfg: cfg.clone(),
                    clients: vec![0, 1, 2, 3],
                    beta,
                    pre_to: vec![5, 6],
                    carry,
                    voted: false,
                }),
            ),
            (1, Box::new(WithholdCommits)),
            (nodes + 4, Box::new(DropToNodes(vec![1, 6]))),
        ],
        &honest,
    )
}

/// An honest node whose `FetchProposal` requests are lost before `until`
/// (before GST); everything else it sends is delivered.
pub struct LoseFetchesUntil(pub Time);

impl Adversary<P> for LoseFetchesUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| now >= self.0 || !matches!(m, Message::FetchProposal { .. })).collect()
    }
}

/// K = 7 (f = 2), four honest clients: Byzantine nodes 0 and 1 skip nodes
/// 5 and 6 with their proposals and withhold their PBFT commit votes (as
/// [`skipping_leaders_withholding_commits`]), so the skipped nodes must
/// fetch view 0's proposal for the prepared block to commit; every fetch
/// request they send before tick `until` is lost.
pub fn skipped_nodes_losing_fetches(seed: u64, until: Time) -> Run {
    run(
        seed,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![
            (0, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
            (1, Box::new(SkipProposalWithholdCommits { skip: vec![5, 6] })),
            (5, Box::new(LoseFetchesUntil(until))),
            (6, Box::new(LoseFetchesUntil(until))),
        ],
        &[0, 1, 2, 3],
    )
}

/// An honest node's sends, passed on; counts the `FetchProposal` requests
/// it sends to node `to`.
pub struct CountFetchesTo {
    pub to: u32,
    pub count: Arc<std::sync::atomic::AtomicUsize>,
}

impl Adversary<P> for CountFetchesTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let n = sends
            .iter()
            .filter(|(d, m)| *d == Dest::One(self.to) && matches!(m, Message::FetchProposal { .. }))
            .count();
        self.count.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        sends
    }
}

/// A genuine-looking message of every node kind that names honest node
/// `named` as its sender, as another node or a client could replay or
/// forge it: its attested pre- and deter-vector of view 0, its forward of
/// client 2's cell, a view change, a fetch, a relay (carrying `receiver`'s
/// subfragment) and a proposal of the view `named` leads.
pub fn naming(cfg: &ChainConfig, named: usize, receiver: usize) -> Vec<(&'static str, Message)> {
    let clients = vec![0u32, 1];
    let pre = enclave(named).attest_evidence(&cfg.vector_evidence(PRE_VECTOR, named, 0, 0, &clients));
    let deter = enclave(named).attest_evidence(&cfg.vector_evidence(DETER_VECTOR, named, 0, 0, &clients));
    let rel = cfg.release(&[0u8; 8]).expect("a release of 8 bytes");
    let view = (0..cfg.nodes as u32).find(|&v| cfg.leader(v) == named).expect("named leads a view");
    let ra = enclave(named).attest_evidence(&cfg.aggregate_evidence(view, &rel.root, &[]));
    let key = gridledger_fl::coding::client_key(&SK, 2);
    let forward = upload(cfg, 2, &key, &model(2)).message(named).expect("client 2's cell for the named node");
    let sf = rel.subfragments[receiver].clone();
    vec![
        ("pre-vector", Message::PreVector { node: named, view: 0, seq: 0, clients: clients.clone(), ra: pre }),
        ("forward", Message::Forward { node: named, msg: forward }),
        ("deter-vector", Message::DeterVector { node: named, view: 0, seq: 0, clients, ra: deter }),
        ("view change", Message::ViewChange { node: named, view: 1 }),
        ("fetch", Message::FetchProposal { node: named, view: 0, root: rel.root }),
        (
            "relay",
            Message::Relay {
                node: named,
                view: 0,
                root: rel.root,
                clients: vec![],
                ra,
                sf: sf.clone(),
                excluded: vec![],
                pre_vectors: vec![],
            },
        ),
        (
            "proposal",
            Message::Proposal { view, root: rel.root, clients: vec![], ra, sf, excluded: vec![], pre_vectors: vec![] },
        ),
    ]
}

/// A Byzantine node or client that impersonates node `named`: it sends
/// what it would anyway, plus, for every message of a node's kind it
/// sends, a copy naming `named`; and on its first sends, every message of
/// [`naming`] (`inject`) to every node.
pub struct Impersonate {
    pub named: usize,
    pub nodes: usize,
    pub inject: Vec<Message>,
}

impl Impersonate {
    pub fn new(cfg: &ChainConfig, named: usize) -> Self {
        // The relay and proposal carry node 0's subfragment (or node 1's
        // when 0 is named): refused before it is looked at.
        let receiver = usize::from(named == 0);
        let inject = naming(cfg, named, receiver).into_iter().map(|(_, m)| m).collect();
        Impersonate { named, nodes: cfg.nodes, inject }
    }
}

impl Adversary<P> for Impersonate {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let named = self.named;
        let mut out = Vec::new();
        for m in std::mem::take(&mut self.inject) {
            out.extend((0..self.nodes).map(|k| (Dest::One(k as u32), m.clone())));
        }
        for (d, m) in sends {
            let copy = match &m {
                Message::PreVector { view, seq, clients, ra, .. } => {
                    Some(Message::PreVector { node: named, view: *view, seq: *seq, clients: clients.clone(), ra: *ra })
                }
                Message::DeterVector { view, seq, clients, ra, .. } => Some(Message::DeterVector {
                    node: named,
                    view: *view,
                    seq: *seq,
                    clients: clients.clone(),
                    ra: *ra,
                }),
                Message::Forward { msg, .. } => Some(Message::Forward { node: named, msg: msg.clone() }),
                Message::ViewChange { view, .. } => Some(Message::ViewChange { node: named, view: *view }),
                Message::FetchProposal { view, root, .. } => {
                    Some(Message::FetchProposal { node: named, view: *view, root: *root })
                }
                Message::Relay { view, root, clients, ra, sf, excluded, pre_vectors, .. } => Some(Message::Relay {
                    node: named,
                    view: *view,
                    root: *root,
                    clients: clients.clone(),
                    ra: *ra,
                    sf: sf.clone(),
                    excluded: excluded.clone(),
                    pre_vectors: pre_vectors.clone(),
                }),
                _ => None,
            };
            if let Some(c) = copy {
                out.push((d, c));
            }
            out.push((d, m));
        }
        out
    }
}

/// Whom a fault record holds responsible, where it names one.
pub fn accused(f: &Fault) -> Option<Source> {
    match f {
        Fault::UnknownNode(n)
        | Fault::BadAttestation { node: n }
        | Fault::BadVector { node: n }
        | Fault::NotLeader { node: n, .. } => Some(Source::Node(*n)),
        Fault::Relayed { from, .. } | Fault::Impersonation { from, .. } | Fault::BadRelay { from, .. } => Some(*from),
        Fault::Client { client, .. } | Fault::Equivocation { client } => Some(Source::Client(*client as usize)),
        _ => None,
    }
}

/// View 0's proposal `(0, root, clients)`: subfragment `sf`, attestation
/// `ra`, no exclusions, `pre_vectors` carried.
pub fn view0_proposal(
    root: Hash32,
    clients: &[u32],
    ra: gridledger_core::enclave::EvidenceAttestation,
    sf: gridledger_fl::dissemination::GlobalSubfragment,
    pre_vectors: Vec<gridledger_fl::consensus::AttestedVector>,
) -> Message {
    Message::Proposal { view: 0, root, clients: clients.to_vec(), ra, sf, excluded: vec![], pre_vectors }
}

/// Proposal `m` as node `from`'s relay of it (any other message as it is).
pub fn as_relay(from: usize, m: Message) -> Message {
    match m {
        Message::Proposal { view, root, clients, ra, sf, excluded, pre_vectors } => {
            Message::Relay { node: from, view, root, clients, ra, sf, excluded, pre_vectors }
        }
        other => other,
    }
}

/// A Byzantine node `me` that runs the honest code, withholds its PBFT
/// commit votes and catch-up answers, relays nothing unless `relays`, and
/// — as aggregation leader — sends its (honest) proposal to the nodes in
/// `bad_copy` with an attestation over nothing instead of its enclave's:
/// they refuse that copy (a junk copy), the others verify the real one.
pub struct BadCopyWithholdCommits {
    pub me: usize,
    pub bad_copy: Vec<u32>,
    pub relays: bool,
}

impl Adversary<P> for BadCopyWithholdCommits {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(_, m)| !commit_or_catch_up(m) && (self.relays || !matches!(m, Message::Relay { .. })))
            .map(|(d, m)| junk_copy(self.me, &self.bad_copy, d, m))
            .collect()
    }
}
