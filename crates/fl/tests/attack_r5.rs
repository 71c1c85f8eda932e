//! Attack round 5 on the CTP-FL dual consensus (issue 16): replay between
//! two runs of one configuration, which share their chain instances by
//! design (the federation's task id is a hash of its configuration, and
//! `prev_block` is chained through deterministic roots), and a client's
//! per-root report map. Each finding was a failing test; all are fixed
//! now and run in the suite (each finding's docs say how it was fixed).

mod common;

use common::*;
use gridledger_core::Hash32;
use gridledger_fl::aggregate::{params_to_bytes, trimmed_mean};
use gridledger_fl::coding::{client_key, LocalMessage};
use gridledger_fl::consensus::{ChainConfig, ChainParams, Fault, Message};
use gridledger_fl::round::{sim_client_secrets, ClientBehaviour, FlClient};
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::cell::Cell;
use std::sync::Arc;

/// Client 0 is Byzantine (untargeted poisoning, ×−20); 1–3 are honest.
const POISON: f32 = -20.0;

fn behaviours() -> Vec<ClientBehaviour> {
    vec![ClientBehaviour::Poison(POISON), ClientBehaviour::Honest, ClientBehaviour::Honest, ClientBehaviour::Honest]
}

fn models_of(c: u32) -> Vec<f32> {
    if c == 0 {
        model(0).iter().map(|x| x * POISON).collect()
    } else {
        model(c as usize)
    }
}

/// Client `c`'s upload message for node `node` of an earlier run of
/// `cfg`'s configuration (`earlier_run`: all the same but the run id): the
/// honest client code's own encoding of its own model
/// (`FragmentCoder::encode`), signed with its registered key.
fn earlier_upload(cfg: &ChainConfig, c: u32, node: usize) -> LocalMessage {
    let earlier = earlier_run(cfg);
    upload(&earlier, c, &client_key(&SK, c), &model(c as usize)).message(node).unwrap()
}

/// A Byzantine node `me` (not the leader) that, beside its honest
/// forwards, forwards the leader each honest client's upload of an earlier
/// run (its own cell of it: what it received then).
struct ForwardEarlierRecords {
    me: usize,
    leader: u32,
    old: Vec<LocalMessage>,
}

impl Adversary<P> for ForwardEarlierRecords {
    fn tamper(&mut self, _: Time, mut sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        if sends.iter().any(|(_, m)| matches!(m, Message::Forward { .. })) {
            for msg in std::mem::take(&mut self.old) {
                sends.push((Dest::One(self.leader), Message::Forward { node: self.me, msg }));
            }
        }
        sends
    }
}

/// FINDING 1 (integrity, high: f Byzantine nodes and an honest leader
/// commit a model of the Byzantine clients alone).
///
/// Since round 4 every encryption draws a fresh random nonce, carried in
/// the signed upload record, so two encodings of one model by one honest
/// client are two different signed records. Two runs of one configuration
/// share round 1's chain instances (by design: the task id is a hash of
/// the configuration and the seed, and `prev_block` before round 1 a hash
/// of the task), and every later round's as long as they committed the
/// same views and roots (each later `prev_block` hashes the previous
/// instance, view and root; the root is a deterministic coding of the
/// global model, so a seeded rerun repeats them); and a client's retry
/// after a crash shares its round's instance within one run. So the record an honest client signed in an
/// earlier run (or before its crash) passes every check in this one:
/// `ChainConfig::is_own_record`, its registered signature, the degree
/// bound and the cell proof. A Byzantine node that kept it forwards it to
/// the leader (`Message::Forward` is checked only for context, signature
/// and cell), the leader's enclave then holds two records signed by the
/// client and — its honest code — excludes the client with
/// `Exclusion::Equivocation { first, second }`, which every honest node's
/// `check_exclusion` accepts (same instance, same client, two digests,
/// both signatures verify). Doing that for every honest client leaves the
/// Byzantine clients alone in the aggregate, far beyond what the trimmed
/// mean bounds (β = 1 of 4 here; one Byzantine node, f = 1).
/// Setup: K = 4, C = 4; client 0 poisons ×−20; node 1 (Byzantine, not a
/// leader) forwards the earlier-run uploads of clients 1–3; node 0 (the
/// view-0 leader) is honest.
/// Expected: an earlier run's record is refused (or is no equivocation
/// evidence), and the committed aggregate is the trimmed mean of all four
/// models. Observed: the honest leader excludes clients 1–3 as
/// equivocators, PBFT commits the poisoned model of client 0 alone, and
/// every honest client decodes it.
/// Suggested fix: make a retry and a rerun produce no second record —
/// e.g. a deterministic, misuse-resistant nonce (a PRF under the client's
/// key over the context and the plaintext's hash; same model ⇒ same
/// record, another model ⇒ another nonce) — *and* bind something fresh per
/// run into the instance (a per-run id from the chain or the operating
/// system's generator, or the real chain's block), so nothing signed or
/// attested in one run is valid in another; equivocation evidence could
/// also require attestations that honest nodes accepted each record in
/// this run (pre-vectors over record digests).
/// Fixed: every run draws its own run id (`ChainParams::run`), bound into
/// the instance, so an earlier run's records are `WrongContext` here; and
/// the nonce is derived from the client's key, the context and the
/// plaintext, so a retry in one run is the same record (finding 1b).
#[test]
fn earlier_run_records_do_not_exclude_honest_clients() {
    let cfg = config(4, 4, 1);
    let old: Vec<LocalMessage> = (1..4).map(|c| earlier_upload(&cfg, c, 1)).collect();
    let honest = [1usize, 2, 3];
    let r = run(7, 4, behaviours(), vec![(1, Box::new(ForwardEarlierRecords { me: 1, leader: 0, old }))], &honest);
    r.debug_trace();
    let poisoned = models_of(0);
    let got = r.global_of(1);
    assert_ne!(got.as_deref(), Some(&poisoned[..]), "honest clients decoded client 0's poisoned model alone");
    assert_round_succeeded(&r, &honest, models_of, 1);
}

/// Control for finding 1: the same replay with records of another
/// configuration (another task id, all else equal) is refused at the
/// leader as `WrongContext`, and the round aggregates all four clients.
/// The only difference above is that the earlier run shares the instance.
#[test]
fn control_records_of_another_task_are_refused() {
    let cfg = config(4, 4, 1);
    let other = ChainConfig::new(ChainParams { task: Hash32([2; 32]), ..cfg.params().clone() });
    let old: Vec<LocalMessage> = (1..4).map(|c| earlier_upload(&other, c, 1)).collect();
    let honest = [1usize, 2, 3];
    let r = run(7, 4, behaviours(), vec![(1, Box::new(ForwardEarlierRecords { me: 1, leader: 0, old }))], &honest);
    assert!(r.faults().iter().any(|f| matches!(f, Fault::WrongContext)), "the replayed records were not refused");
    assert_round_succeeded(&r, &honest, models_of, 1);
}

/// FINDING 1b (fairness, medium: an honest client that retries its upload
/// is excluded as an equivocator, with evidence every node accepts — no
/// Byzantine party needed).
///
/// The same root cause as finding 1, inside one run: the module docs say
/// equivocation evidence "cannot be forged for an honest client", but
/// since the nonce is random per encryption an honest client that
/// re-encodes its (unchanged) model — a restart after a crash mid-upload,
/// which round 4's nonce change was made for — has signed two records for
/// the round. Nodes keep the first record they received, so the nodes its
/// first attempt reached forward that one and the others the retry; the
/// leader holds two records and excludes the client with
/// `Exclusion::Equivocation` even though one of them decodes.
/// Setup: K = 4, four honest clients; client 1's first attempt reaches
/// nodes 0 and 1 (T = 2 cells: decodable), its retry every node.
/// Expected: client 1's model is aggregated (a retry of the same model is
/// no equivocation). Observed: the committed aggregate leaves client 1
/// out, with `Excluded { client: 1, error: Equivocated }`.
/// Suggested fix: a deterministic nonce from the client's key, the context
/// and the plaintext (same model ⇒ same record), see finding 1.
/// Fixed: `aead::derive_nonce` (HMAC-SHA256 under the fragment key) makes
/// the retry the identical record, which no node counts twice.
#[test]
fn honest_client_retrying_its_upload_is_aggregated() {
    let cfg = config(4, 4, 1);
    let honest = [0usize, 1, 2, 3];
    let retry = RetryAfterCrash { cfg: cfg.clone(), client: 1, reached: 2 };
    let r = run(7, 4, vec![ClientBehaviour::Honest; 4], vec![(4 + 1, Box::new(retry))], &honest);
    r.debug_trace();
    let committed = r.committed().first().map(|c| c.1);
    let used = r.aggregated().into_iter().find(|(v, _)| Some(*v) == committed).map(|(_, c)| c);
    assert_eq!(used, Some(vec![0, 1, 2, 3]), "faults: {:?}", r.faults());
    assert_round_succeeded(&r, &honest, |c| model(c as usize), 1);
}

/// FINDING 2 (integrity, high: a Byzantine leader leaves out honest
/// clients without evidence, with pre-vectors of an earlier run).
///
/// The omission rule checks a proposal against the attested pre-vectors
/// it carries (`check_carried`: `K − f` of distinct nodes, each attestation
/// verifying over instance, chain, round, node and clients). Nothing in a
/// pre-vector's evidence is fresh per run, so the pre-vectors the honest
/// nodes' enclaves attested in an earlier run of the same configuration
/// (one where clients 1–3 had not uploaded by `Timer::PreVector`: they
/// were slow, or the run was killed early) still verify here. A
/// Byzantine leader that kept them carries them instead of this run's:
/// the protected set is then `{0}`, and the attested aggregate of client 0
/// alone passes every honest node's check with no exclusion evidence.
/// Nothing in the replayed proposal needs a dishonest enclave: in that
/// earlier run the view-0 leader's enclave honestly aggregated the one
/// client the agreed vectors named, and its host kept the whole proposal
/// (pre-vectors, aggregate attestation, release). Only round 1 of two runs
/// is sure to share the instance (later `prev_block`s follow the committed
/// roots), which is where this replay lands.
/// Fixing finding 1 alone (deterministic records) does not close this.
/// Setup: K = 4, C = 4; client 0 poisons ×−20; node 0 (Byzantine, view 0's
/// leader) carries the four nodes' earlier pre-vectors naming `[0]`.
/// Expected: pre-vectors of another run are refused (`BadProposal`), the
/// leader is replaced and the committed aggregate is the trimmed mean of
/// all four. Observed: PBFT commits the poisoned model of client 0 alone.
/// Suggested fix: bind a per-run value into the instance (see finding 1),
/// so attestations of one run do not verify in another.
/// Fixed: the run id in the instance; the earlier run's pre-vectors are
/// attested over another instance and the proposal is refused.
#[test]
fn earlier_run_pre_vectors_do_not_shrink_the_protected_set() {
    let cfg = config(4, 4, 1);
    let earlier = earlier_run(&cfg);
    let old = attested_pre_vectors(&earlier, 4, &[0]);
    let global = trimmed_mean(&[models_of(0)], 1).unwrap();
    let honest = [1usize, 2, 3];
    let leader = CarryEarlierPreVectors { cfg: cfg.clone(), old, clients: vec![0], global: global.clone() };
    let r = run(7, 4, behaviours(), vec![(0, Box::new(leader))], &honest);
    r.debug_trace();
    assert_ne!(r.global_of(1).as_deref(), Some(&global[..]), "honest clients decoded client 0's poisoned model alone");
    assert_round_succeeded(&r, &honest, models_of, 1);
}

/// Control for finding 2: the same leader carrying pre-vectors attested
/// for another task is refused, and the round aggregates all four.
#[test]
fn control_pre_vectors_of_another_task_are_refused() {
    let cfg = config(4, 4, 1);
    let other = ChainConfig::new(ChainParams { task: Hash32([2; 32]), ..cfg.params().clone() });
    let old = attested_pre_vectors(&other, 4, &[0]);
    let global = trimmed_mean(&[models_of(0)], 1).unwrap();
    let honest = [1usize, 2, 3];
    let leader = CarryEarlierPreVectors { cfg: cfg.clone(), old, clients: vec![0], global };
    let r = run(7, 4, behaviours(), vec![(0, Box::new(leader))], &honest);
    assert_round_succeeded(&r, &honest, models_of, 1);
}

// ---- Finding 3: a client's per-root report map ------------------------

/// Counts this thread's live heap bytes (the test below measures what one
/// client holds on its own thread; other tests' threads do not count).
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + l.size() as i64));
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        let _ = LIVE.try_with(|c| c.set(c.get() - l.size() as i64));
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        let _ = LIVE.try_with(|c| c.set(c.get() + new as i64 - l.size() as i64));
        std::alloc::System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> i64 {
    LIVE.with(|c| c.get())
}

/// FINDING 3 (availability, low: one Byzantine node grows a client's
/// memory without bound).
///
/// `FlClient::handle` records every `Message::Committed { node, root }` in
/// `reports: BTreeMap<root, BTreeSet<node>>` until some root has `f + 1`
/// reporters, with no bound per node: one Byzantine node that reports a
/// new root in every message adds an entry (and a one-element set) each
/// time, and nothing is ever dropped (no root reaches `f + 1` reporters).
/// Setup: K = 4 (f = 1), one client; node 0 sends it 50,000 `Committed`
/// messages, each with another root.
/// Expected: the client keeps at most one report per node (a few KiB).
/// Observed: the client's live heap grows by several MiB (≈ 100 bytes a
/// message), linearly in what the node sends.
/// Suggested fix: keep one root per reporting node (its latest, or its
/// first), and count reporters per root from that map.
/// Fixed: the client keeps each node's first report only.
#[test]
fn one_node_cannot_grow_a_clients_reports_without_bound() {
    let cfg = config(4, 4, 1);
    let mut client =
        FlClient::new(cfg.clone(), 1, sim_client_secrets(&SK, &SIGN_SEED, 1), model(1), ClientBehaviour::Honest);
    let before = live();
    for i in 0u64..50_000 {
        let mut root = [0u8; 32];
        root[..8].copy_from_slice(&i.to_le_bytes());
        let _ = client.handle(Ok(0), Message::Committed { node: 0, view: 0, root: Hash32(root) });
    }
    let grown = live() - before;
    assert!(client.global().is_none());
    assert!(grown < 64 * 1024, "one node's 50,000 bogus reports grew the client's heap by {grown} bytes");
}

/// A Byzantine leader that sends its (honest, attested) proposal only to
/// nodes `0..to` and drops the mini-fragments it should serve.
struct ProposalToQuorumDropMinis(u32);

impl Adversary<P> for ProposalToQuorumDropMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Mini { .. } => false,
                Message::Proposal { .. } => matches!(d, Dest::One(n) if *n < self.0),
                _ => true,
            })
            .collect()
    }
}

/// What held up (round 5): decoding from `f + 1` subfragments with `f`
/// Byzantine holders. K = 7 (f = 2), seven clients of which client 5
/// poisons (×−20) and client 6 equivocates; node 0 (view 0's leader)
/// sends its proposal to nodes 0–4 only (a bare quorum) and serves no
/// mini-fragment, node 1 alters every mini-fragment it serves. Over six
/// seeds every honest client decodes the same committed aggregate (the
/// trimmed mean of the clients the committed view used): the altered
/// mini-fragments fail their Merkle proofs, and the `f + 1` honest holders
/// the certificate guarantees suffice.
#[test]
fn f_plus_one_decoding_holds_with_f_byzantine_holders() {
    use gridledger_fl::byzantine::NodeAttack;
    let mut behaviours = vec![ClientBehaviour::Honest; 7];
    behaviours[5] = ClientBehaviour::Poison(POISON);
    behaviours[6] = ClientBehaviour::Equivocate;
    let honest = [0usize, 1, 2, 3, 4];
    for seed in 1..=6 {
        let r = run(
            seed,
            7,
            behaviours.clone(),
            vec![(0, Box::new(ProposalToQuorumDropMinis(5))), (1, Box::new(NodeAttack::AlterMinis))],
            &honest,
        );
        let of = |c: u32| if c == 5 { model(5).iter().map(|x| x * POISON).collect() } else { model(c as usize) };
        if let Err(e) = round_succeeded(&r, &honest, of, 2) {
            panic!("seed {seed}: {e}");
        }
    }
}

/// A Byzantine view-0 leader that equivocates: node `to` gets the
/// attested aggregate `other` (another valid client set, its own release),
/// the rest the honest proposal.
struct EquivocatingLeader {
    cfg: Arc<ChainConfig>,
    to: u32,
    clients: Vec<u32>,
    global: Vec<f32>,
}

impl Adversary<P> for EquivocatingLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_core::enclave::Attester;
        let rel = self.cfg.release(&params_to_bytes(&self.global)).unwrap();
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Proposal { view: 0, sf, pre_vectors, .. } if d == Dest::One(self.to) => {
                    let ra = enclave(0).attest_evidence(&self.cfg.aggregate_evidence(0, &rel.root, &self.clients));
                    let sf = rel.subfragments[sf.node].clone();
                    let clients = self.clients.clone();
                    (d, Message::Proposal { view: 0, root: rel.root, clients, ra, sf, excluded: vec![], pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// What held up (round 5): an equivocating leader. K = 4; client 3's
/// uploads reach nodes 0 and 1 only, so it is neither agreed nor
/// protected and two aggregates are valid — with it (sent to node 1) and
/// without it (the honest proposal, which the leader's own node and nodes
/// 2 and 3 verify). Over six seeds one root is committed (the one `2f + 1`
/// nodes verified; node 1 refuses PBFT blocks of the other and commits it
/// through the certificate), and every client decodes it.
#[test]
fn equivocating_leader_commits_one_decodable_root() {
    let cfg = config(4, 4, 1);
    let all: Vec<Vec<f32>> = (0..4).map(model).collect();
    let with_3 = trimmed_mean(&all, 1).unwrap();
    let honest = [0usize, 1, 2, 3];
    for seed in 1..=6 {
        let leader = EquivocatingLeader { cfg: cfg.clone(), to: 1, clients: vec![0, 1, 2, 3], global: with_3.clone() };
        let r = run(
            seed,
            4,
            vec![ClientBehaviour::Honest; 4],
            vec![(0, Box::new(leader)), (4 + 3, Box::new(DropToNodes(vec![2, 3])))],
            &honest,
        );
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &honest, |c| model(c as usize), 1) {
            panic!("seed {seed}: {e}");
        }
    }
}
