//! Mutation sensitivity of the CTP-FL dual consensus (issue 16): each bug
//! planted behind the `mutants` feature ([`Mutation`]) must make at least
//! one of these simulator scenarios fail, and every scenario must hold
//! without a bug (the control). Each scenario runs one chain's nodes and
//! clients in the seeded simulator with the Byzantine client or node that
//! the defence exists for.
//!
//! Run with `cargo test -p gridledger-fl --features mutants --test mutants`.

mod common;

use blstrs::Scalar;
use common::*;
use ff::Field;
use gridledger_fl::coding::{client_key, LocalMessage};
use gridledger_fl::consensus::Fault;
use gridledger_fl::consensus::Message;
use gridledger_fl::dissemination::Source;
use gridledger_fl::mutants::{plant, Mutation};
use gridledger_fl::round::ClientBehaviour;
use gridledger_fl::FlError;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const SEED: u64 = 16_000;
const NODES: usize = 4;
const CLIENTS: usize = 7;
/// `clients / 3`, as `run` configures it.
const BETA: usize = 2;

fn all_but(skip: usize) -> Vec<usize> {
    (0..CLIENTS).filter(|&c| c != skip).collect()
}

/// An honest round commits one root and every client decodes the trimmed mean.
fn honest_round() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let r = run(SEED, NODES, vec![ClientBehaviour::Honest; CLIENTS], Vec::new(), &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)
}

/// A client whose cells fail their proofs is in no honest pre-vector and
/// is recorded with `ProofFailed`.
fn bad_cells_filtered_by_proofs() -> Result<(), String> {
    let mut behaviours = vec![ClientBehaviour::Honest; CLIENTS];
    behaviours[1] = ClientBehaviour::BadCells;
    let honest = all_but(1);
    let r = run(SEED + 1, NODES, behaviours, Vec::new(), &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let (pre, _) = vectors(&r);
    if let Some((n, v)) = pre.iter().find(|(_, v)| v.contains(&1)) {
        return Err(format!("node {n}'s pre-vector {v:?} holds the bad-cell client"));
    }
    let recorded =
        r.faults().iter().any(|f| matches!(f, Fault::Client { client: 1, error: FlError::ProofFailed { .. } }));
    recorded.then_some(()).ok_or_else(|| "no ProofFailed fault for client 1".into())
}

/// A client that reached only `2f` nodes is in no deter-vector and not aggregated.
fn tally_needs_two_f_plus_one() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(NODES + 3, Box::new(DropToNodes(vec![2, 3])))];
    let r = run(SEED + 2, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let (_, deter) = vectors(&r);
    if let Some((n, v)) = deter.iter().find(|(_, v)| v.contains(&3)) {
        return Err(format!("node {n}'s deter-vector {v:?} holds client 3 with 2f votes"));
    }
    match r.aggregated().first() {
        Some((_, used)) if !used.contains(&3) => Ok(()),
        other => Err(format!("aggregated {other:?}")),
    }
}

/// A model poisoned ×(−50) leaves every parameter of the global fragment
/// inside the honest clients' range.
fn poisoned_model_trimmed() -> Result<(), String> {
    let mut behaviours = vec![ClientBehaviour::Honest; CLIENTS];
    behaviours[4] = ClientBehaviour::Poison(-50.0);
    let honest = all_but(4);
    let r = run(SEED + 3, NODES, behaviours, Vec::new(), &honest);
    let poisoned = |c: u32| if c == 4 { model(4).iter().map(|x| x * -50.0).collect() } else { model(c as usize) };
    round_succeeded(&r, &honest, poisoned, BETA)?;
    let g = r.global_of(0).ok_or("client 0 decoded nothing")?;
    for (d, x) in g.iter().enumerate() {
        let (lo, hi) = honest.iter().map(|&c| model(c)[d]).fold((f32::MAX, f32::MIN), |(l, h), v| (l.min(v), h.max(v)));
        if *x < lo || *x > hi {
            return Err(format!("dim {d}: {x} outside [{lo}, {hi}]"));
        }
    }
    Ok(())
}

/// A leader proposing a root other than the one its enclave attested is
/// replaced and view 1 commits the honest aggregate.
fn lying_leader_replaced() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let r = run(SEED + 4, NODES, vec![ClientBehaviour::Honest; CLIENTS], vec![(0, Box::new(LyingLeader))], &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let committed = r.committed();
    if committed.iter().any(|(_, v, _)| *v != 1) {
        return Err(format!("expected view 1 to commit: {committed:?}"));
    }
    Ok(())
}

/// A leader aggregating one client's poisoned model alone, leaving out the
/// others every node named without exclusion evidence, is replaced and
/// view 1 commits the honest aggregate.
fn omitting_leader_replaced() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let leader = OmittingLeader { cfg: config(NODES, CLIENTS, BETA), client: 3, factor: -20.0 };
    let r = run(SEED + 5, NODES, vec![ClientBehaviour::Honest; CLIENTS], vec![(0, Box::new(leader))], &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let committed = r.committed();
    if committed.iter().any(|(_, v, _)| *v != 1) {
        return Err(format!("expected view 1 to commit: {committed:?}"));
    }
    Ok(())
}

/// A Byzantine node (view 0's leader and a committee member, K = 4) that
/// withholds everything but its attested pre-vector, sent to node 1 only,
/// while client 3's upload to node 1 is lost: node 1's pre-vectors protect
/// client 3, the deter-vectors do not name it. The round commits (an
/// honest leader aggregates every client any honest node may protect).
fn selective_pre_vector_commits() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let r = run(
        5,
        4,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(PreVectorOnlyTo(1))), (4 + 3, Box::new(DropToNodes(vec![1])))],
        &honest,
    );
    round_succeeded(&r, &honest, |c| model(c as usize), 1)
}

/// Passes an honest node's sends through, but for its fetch requests
/// (lost), and counts its mini-fragments.
struct CountMinisLoseFetches(Arc<AtomicUsize>);

impl Adversary<P> for CountMinisLoseFetches {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let minis = sends.iter().filter(|(_, m)| matches!(m, Message::Mini { .. })).count();
        self.0.fetch_add(minis, Ordering::Relaxed);
        sends.into_iter().filter(|(_, m)| !matches!(m, Message::FetchProposal { .. })).collect()
    }
}

/// K = 7: Byzantine leader 0 sends nodes 5 and 6 its proposal with a bad
/// attestation (they refuse it), nodes 0–4 verify and PBFT commits; nodes
/// 0 and 1 drop their mini-fragments, and the fetch requests of nodes 5
/// and 6 are lost, so they cannot fetch the proposal they refused. Every
/// client decodes (the global code decodes from `f + 1` = 3 subfragments,
/// which honest nodes 2–4 serve), and refused nodes 5 and 6 serve theirs
/// too once the root is committed (their subfragments verify under it).
fn refused_nodes_serve_a_committed_root() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let (five, six) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let r = run(
        7,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![
            (0, Box::new(BadAttestationToDropMinis { me: 0, to: vec![5, 6] })),
            (1, Box::new(BadAttestationToDropMinis { me: 1, to: vec![] })),
            (5, Box::new(CountMinisLoseFetches(five.clone()))),
            (6, Box::new(CountMinisLoseFetches(six.clone()))),
        ],
        &honest,
    );
    round_succeeded(&r, &honest, |c| model(c as usize), 1)?;
    let served = (five.load(Ordering::Relaxed), six.load(Ordering::Relaxed));
    if served.0 == 0 || served.1 == 0 {
        return Err(format!("refused nodes 5 and 6 sent {served:?} mini-fragments for the committed root"));
    }
    Ok(())
}

/// A client that re-sends its upload after a crash is aggregated (its
/// retry is the same record, no equivocation).
fn retried_upload_aggregated() -> Result<(), String> {
    let cfg = config(NODES, CLIENTS, BETA);
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let retry = RetryAfterCrash { cfg, client: 1, reached: 2 };
    let r = run(SEED + 8, NODES, vec![ClientBehaviour::Honest; CLIENTS], vec![(NODES + 1, Box::new(retry))], &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let view = r.committed().first().map(|c| c.1);
    match r.aggregated().into_iter().find(|(v, _)| Some(*v) == view) {
        Some((_, used)) if used.contains(&1) => Ok(()),
        other => Err(format!("the retrying client was left out: {other:?}; faults {:?}", r.faults())),
    }
}

fn earlier_run_pre_vectors_refused() -> Result<(), String> {
    let cfg = config(NODES, CLIENTS, BETA);
    let old = attested_pre_vectors(&earlier_run(&cfg), NODES, &[0]);
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let poisoned: Vec<f32> = model(0).iter().map(|x| x * -20.0).collect();
    let leader = CarryEarlierPreVectors { cfg, old, clients: vec![0], global: poisoned };
    let r = run(SEED + 9, NODES, vec![ClientBehaviour::Honest; CLIENTS], vec![(0, Box::new(leader))], &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let view = r.committed().first().map(|c| c.1);
    (view != Some(0)).then_some(()).ok_or_else(|| "the earlier run's pre-vectors carried view 0".into())
}

/// K = 7: Byzantine leaders 0 and 1 skip nodes 5 and 6 with their
/// proposals and withhold their PBFT commit votes: view 0's block is
/// prepared but never committed by `2f + 1`; the skipped nodes fetch view
/// 0's proposal from the nodes that verified it, rebuild their own
/// subfragment, validate its re-proposal, and the round commits.
fn skipped_nodes_validate_a_reproposed_root() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let r = skipping_leaders_withholding_commits(3);
    round_succeeded(&r, &honest, |c| model(c as usize), 1)
}

/// K = 7 (attack round 8, finding 1): Byzantine leaders 0 and 1 skip
/// nodes 5 and 6, withhold their commit votes and exclude an equivocating
/// client with evidence no later honest leader holds, so no later
/// aggregate equals view 0's prepared one; they relay view 0's proposal
/// to the skipped nodes' fetches with a client left out and an altered
/// subfragment. The skipped nodes refuse those relays (the forged
/// proposal, whose client list view 0's leader never attested, is recorded
/// against its relayer), rebuild their subfragment from nodes 2–4's, and
/// the round commits.
fn skipped_nodes_fetch_a_prepared_root() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let r = skipping_leaders_and_an_equivocating_client(3, RelayMode::Alter);
    round_succeeded(&r, &honest, |c| model(c as usize), 1)?;
    let refused = r.sim.faults.iter().any(|(_, n, f)| {
        (*n == 5 || *n == 6)
            && matches!(f, Fault::BadRelay { from: Source::Node(0 | 1), view: 0, error }
                if error.contains("relayed proposal"))
    });
    refused.then_some(()).ok_or_else(|| "no skipped node refused a forged relayed proposal".into())
}

/// K = 7, global fragments that need `f + 1 = 3` subfragments (attack
/// round 9, finding 2): Byzantine leaders 0 and 1 skip nodes 4–6 (and 1
/// also 2 and 3) and withhold their commit votes; they relay view 0's
/// proposal to node 4 only, and only after nodes 5's and 6's fetches have
/// reached node 4, which had not verified it yet. Node 4 answers those
/// earlier requests once it verifies, and the round commits; nodes 5 and
/// 6 ask node 4 once each (a forgotten request would be answered only
/// when they ask again on a later PBFT view).
fn early_fetches_answered_once_verified() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let asked: Vec<Arc<AtomicUsize>> = (0..2).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    let r = run_wide(
        3,
        vec![
            (0, Box::new(SkipRelayLate::new(vec![4, 5, 6], vec![4], vec![5, 6]))),
            (1, Box::new(SkipRelayLate::new(vec![2, 3, 4, 5, 6], vec![4], vec![5, 6]))),
            (5, Box::new(CountFetchesTo { to: 4, count: asked[0].clone() })),
            (6, Box::new(CountFetchesTo { to: 4, count: asked[1].clone() })),
        ],
    );
    round_succeeded(&r, &honest, |c| model(c as usize), 1)?;
    let asked: Vec<usize> = asked.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    if asked != [1, 1] {
        return Err(format!("requests nodes 5 and 6 sent node 4: {asked:?} (each once: the first is answered)"));
    }
    Ok(())
}

/// K = 7 (attack round 9, finding 3): Byzantine leader 0 proposes an
/// aggregate that leaves out client 4 and carries no pre-vectors, having
/// sent its own pre-vector to nodes 5 and 6 only; node 1 withholds its
/// commit votes. Every honest node refuses the proposal alike (it carries
/// fewer than `K − f`), and a later honest leader's aggregate commits.
fn proposals_without_carried_pre_vectors_refused_alike() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let r = split_by_own_pre_vectors(false);
    round_succeeded(&r, &honest, |c| model(c as usize), 1)
}

/// A node that sends nothing at all (crashed, or Byzantine and silent).
struct Silent;

impl Adversary<P> for Silent {
    fn tamper(&mut self, _: Time, _: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        Vec::new()
    }
}

/// K = 7 (attack round 10, finding 1): nodes 5 and 6 are silent and
/// honest node 4 is cut off from everyone during ticks [35, 50), around
/// its pre-vector timer, so its one-shot pre-vector is lost and no honest
/// node holds `K − f = 5`. Each node re-sends its pre-vector to every
/// later view's leader, so once the partition healed a leader holds five
/// and the round commits.
fn lost_pre_vector_resent_after_a_healed_partition() -> Result<(), String> {
    use gridledger_sim::{NetConfig, Partition};
    let (nodes, clients) = (7usize, 4usize);
    let cfg = config(nodes, clients, clients / 3);
    let mut net = NetConfig::reliable(nodes + clients, 6);
    net.partitions.push(Partition { from: 35, until: 50, side: vec![4] });
    let silent: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(5, Box::new(Silent)), (6, Box::new(Silent))];
    let r = run_custom(3, cfg, net, vec![ClientBehaviour::Honest; clients], silent, &[0, 1, 2, 3], 5_000);
    round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1)
}

/// K = 7 (attack round 10, finding 1, the fetch half): the skipped nodes
/// 5 and 6 of `skipping leaders withholding commits` lose every fetch
/// request they send before tick 600; they ask again on each new PBFT
/// view, so the round commits.
fn lost_fetches_resent_on_a_new_pbft_view() -> Result<(), String> {
    let r = skipped_nodes_losing_fetches(3, 600);
    round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1)
}

/// On an honest node: everything it sends to participant `to` (a client)
/// before tick `until` is lost; the rest is delivered.
struct LoseToUntil {
    to: u32,
    until: Time,
}

impl Adversary<P> for LoseToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, _)| now >= self.until || *d != Dest::One(self.to)).collect()
    }
}

/// K = 4 (attack round 11): client 3's link from every node is down until
/// tick 1500, after the commit, so the root reports and mini-fragments the
/// nodes send it at their commit are lost. A client that has not decoded
/// asks the nodes again each request period, so it decodes too.
fn cut_off_client_asks_again() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let to = (NODES + 3) as u32;
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..NODES).map(|n| (n, Box::new(LoseToUntil { to, until: 1500 }) as Box<dyn Adversary<P>>)).collect();
    let r = run(SEED + 20, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)
}

/// On a client: every mini-fragment it forwards to the other clients (C2C)
/// before tick `until` is lost (`None`: always, a Byzantine client that
/// never forwards).
struct LoseForwards {
    until: Option<Time>,
}

impl Adversary<P> for LoseForwards {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let lost = |now: Time| self.until.is_none_or(|u| now < u);
        sends.into_iter().filter(|(_, m)| !(lost(now) && matches!(m, Message::Mini { from_node: false, .. }))).collect()
    }
}

/// K = 4 (attack round 12): client 1 is Byzantine and never forwards a
/// mini-fragment to the other clients; every forward of clients 2–6 before
/// tick 1500 is lost. Client 0 hears the nodes on time (the root and its
/// own mini-fragments) but no other client's mini-fragment reaches it,
/// and a subfragment needs two here. A node answers a request with enough
/// mini-fragments of its subfragment to decode it, so client 0 decodes by
/// asking.
fn lost_forwards_recovered_by_asking() -> Result<(), String> {
    let honest: Vec<usize> = all_but(1);
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(NODES + 1, Box::new(LoseForwards { until: None }))];
    for c in 2..CLIENTS {
        adversaries.push((NODES + c, Box::new(LoseForwards { until: Some(1500) })));
    }
    let r = run(SEED + 21, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)
}

/// K = 4 (attack round 12): client 3's link from every node is down until
/// tick 13 000, after a client asking every 400 ticks would have sent its
/// last request (12 800); the run goes on to the forecaster driver's round
/// budget of 20 000 ticks. Its requests back off to a capped period, so
/// one goes out after GST and it decodes.
fn requests_outlast_a_late_gst() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let to = (NODES + 3) as u32;
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..NODES).map(|n| (n, Box::new(LoseToUntil { to, until: 13_000 }) as Box<dyn Adversary<P>>)).collect();
    let cfg = config(NODES, CLIENTS, BETA);
    let net = gridledger_sim::NetConfig::reliable(NODES + CLIENTS, 6);
    let behaviours = vec![ClientBehaviour::Honest; CLIENTS];
    let r = run_custom(SEED + 22, cfg, net, behaviours, adversaries, &honest, 20_000);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)
}

/// K = 4, 4 honest clients, the run of the forecaster's round budget
/// (20 000 ticks): before GST (tick 1000) the links from every client to
/// nodes 2 and 3 take `min..=max` ticks, every other link 1–6.
fn slow_uploads_run(seed: u64, min: u64, max: u64, adversaries: Vec<(usize, Box<dyn Adversary<P>>)>) -> Run {
    let k = 4;
    let mut net = gridledger_sim::NetConfig::reliable(k + 4, 6);
    net.gst = 1000;
    for c in 0..4 {
        for n in [2, 3] {
            net.links[k + c][n] = gridledger_sim::Delay::Uniform { min, max };
        }
    }
    run_custom(seed, config(k, 4, 1), net, vec![ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3], 20_000)
}

/// K = 4 (attack round 13): every upload reaches nodes 2 and 3 after their
/// pre-vector timer (200–300 ticks), so no first pre-vector of theirs
/// names a client and no client reaches the tally. The nodes accept the
/// late uploads, name them in fresh pre-vectors, and the round commits.
fn delayed_uploads_named_in_fresh_pre_vectors() -> Result<(), String> {
    let r = slow_uploads_run(7, 200, 300, Vec::new());
    round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1)
}

/// Byzantine node 1 (leader of aggregation view 1): as soon as it moves to
/// view 1 it sends every other node a proposal of the aggregate of client
/// 3's model ×(−20) alone, carrying the pre-vectors the nodes attested in
/// view 0 (nodes 0 and 1 named every client, nodes 2 and 3 none: the
/// uploads had not reached them), under which no client is protected; its
/// own honest proposals are dropped.
struct StaleCarryingLeader {
    cfg: Arc<gridledger_fl::consensus::ChainConfig>,
    sent: bool,
}

impl Adversary<P> for StaleCarryingLeader {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_core::enclave::Attester;
        let moved = sends.iter().any(|(_, m)| matches!(m, Message::PreVector { view: 1, .. }));
        let mut out: Vec<(Dest, Message)> =
            sends.into_iter().filter(|(_, m)| !matches!(m, Message::Proposal { .. })).collect();
        if moved && !self.sent {
            self.sent = true;
            let poisoned: Vec<f32> = model(3).iter().map(|x| x * -20.0).collect();
            let rel = self.cfg.release(&gridledger_fl::aggregate::params_to_bytes(&poisoned)).unwrap();
            let clients = vec![3u32];
            let ra = enclave(1).attest_evidence(&self.cfg.aggregate_evidence(1, &rel.root, &clients));
            let (all, none): ([u32; 4], [u32; 0]) = ([0, 1, 2, 3], []);
            let stale = carried(&self.cfg, &[(0, &all[..]), (1, &all[..]), (2, &none[..]), (3, &none[..])]);
            for k in [0usize, 2, 3] {
                let msg = Message::Proposal {
                    view: 1,
                    root: rel.root,
                    clients: clients.clone(),
                    ra,
                    sf: rel.subfragments[k].clone(),
                    excluded: vec![],
                    pre_vectors: stale.clone(),
                };
                out.push((Dest::One(k as u32), msg));
            }
        }
        out
    }
}

/// K = 4 (attack round 13, the safety half of fresh pre-vectors): uploads
/// reach nodes 2 and 3 after 400–500 ticks, so view 0 fails; Byzantine
/// node 1, leader of view 1, proposes a poisoned single-client aggregate
/// carrying the view-0 pre-vectors, whose nodes 2 and 3 named no one.
/// Every honest node refuses it (a proposal of view `v` carries
/// pre-vectors attested in `v` or later), and a later honest leader's
/// aggregate commits.
fn stale_carried_pre_vectors_refused() -> Result<(), String> {
    let leader = StaleCarryingLeader { cfg: config(4, 4, 1), sent: false };
    let r = slow_uploads_run(7, 400, 500, vec![(1, Box::new(leader))]);
    round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1)?;
    match r.committed().first() {
        Some((_, v, _)) if *v != 1 => Ok(()),
        other => Err(format!("the Byzantine leader's view committed: {other:?}")),
    }
}

/// On a client: its upload ([`Message::Local`]) is lost before tick `.0`.
struct LoseUploadUntil(Time);

impl Adversary<P> for LoseUploadUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| now >= self.0 || !matches!(m, Message::Local(_))).collect()
    }
}

/// K = 4 (attack round 13): every client's upload is lost before tick
/// 1000; the run lasts the forecaster's round budget. A client that knows
/// no committed root re-sends its upload with each request, so the nodes
/// accept the uploads after GST and the round commits.
fn lost_uploads_re_sent() -> Result<(), String> {
    let honest: Vec<usize> = (0..CLIENTS).collect();
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..CLIENTS).map(|c| (NODES + c, Box::new(LoseUploadUntil(1000)) as Box<dyn Adversary<P>>)).collect();
    let cfg = config(NODES, CLIENTS, BETA);
    let net = gridledger_sim::NetConfig::reliable(NODES + CLIENTS, 6);
    let behaviours = vec![ClientBehaviour::Honest; CLIENTS];
    let r = run_custom(SEED + 23, cfg, net, behaviours, adversaries, &honest, 20_000);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)
}

/// On a Byzantine node: every [`Message::Forward`] it sends the leader
/// carries the client's signed record with the cell's first value altered.
struct AlterForwards;

impl Adversary<P> for AlterForwards {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Forward { node, mut msg } => {
                    msg.cell.values[0] += Scalar::ONE;
                    (d, Message::Forward { node, msg })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// On a Byzantine client: instead of its own upload to node `to`, it sends
/// `forged` (another client's signed record with an altered cell).
struct RelayForged {
    to: u32,
    forged: LocalMessage,
}

impl Adversary<P> for RelayForged {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .map(|(d, m)| match (d, m) {
                (Dest::One(k), Message::Local(_)) if k == self.to => (d, Message::Local(self.forged.clone())),
                (d, other) => (d, other),
            })
            .collect()
    }
}

/// Attack round 15: Byzantine node 1 alters the cell of every forward it
/// sends the leader, and Byzantine client 6 sends node 2 honest client
/// 2's signed record with an altered cell instead of its own upload. The
/// round commits; the refusals are recorded against node 1 and client 6
/// ([`Fault::Relayed`]), and no record names a client as having sent a bad
/// cell ([`Fault::Client`]): every client sent its own cells intact.
fn relayed_forgeries_blame_their_relayer() -> Result<(), String> {
    let cfg = config(NODES, CLIENTS, BETA);
    let mut forged =
        upload(&cfg, 2, &client_key(&SK, 2), &model(2)).message(2).ok_or("client 2 has no cell for node 2")?;
    forged.cell.values[0] += Scalar::ONE;
    let honest = all_but(6);
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(1, Box::new(AlterForwards)), (NODES + 6, Box::new(RelayForged { to: 2, forged }))];
    let r = run(SEED + 24, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let faults = r.faults();
    if let Some(f) = faults.iter().find(|f| matches!(f, Fault::Client { .. })) {
        return Err(format!("a client recorded guilty of a relayer's forgery: {f:?}"));
    }
    for from in [Source::Node(1), Source::Client(6)] {
        if !faults.iter().any(|f| matches!(f, Fault::Relayed { from: s, .. } if *s == from)) {
            return Err(format!("no record names relayer {from:?}; faults {faults:?}"));
        }
    }
    Ok(())
}

/// Attack round 15b: Byzantine node 1 impersonates honest node 2 and
/// Byzantine client 6 impersonates honest node 0 (view 0's leader) in
/// every message of a node's kind ([`Impersonate`]). The round commits; the
/// refusals are recorded against node 1 and client 6
/// ([`Fault::Impersonation`]), and no record accuses an honest node.
fn impersonations_blame_their_sender() -> Result<(), String> {
    let cfg = config(NODES, CLIENTS, BETA);
    let honest = all_but(6);
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(1, Box::new(Impersonate::new(&cfg, 2))), (NODES + 6, Box::new(Impersonate::new(&cfg, 0)))];
    let r = run(SEED + 25, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let faults = r.faults();
    for node in [0, 2, 3] {
        if let Some(f) = faults.iter().find(|f| accused(f) == Some(Source::Node(node))) {
            return Err(format!("honest node {node} accused: {f:?}"));
        }
    }
    for (from, claimed) in [(Source::Node(1), 2), (Source::Client(6), 0)] {
        if !faults.contains(&&Fault::Impersonation { from, claimed: Some(claimed) }) {
            return Err(format!("no record of {from:?} impersonating node {claimed}; faults {faults:?}"));
        }
    }
    Ok(())
}

/// On an honest leader: its proposal copies to nodes `.0` are lost on the
/// links (message loss before GST), so those nodes fetch the proposal.
struct LoseProposalsTo(Vec<u32>);

impl Adversary<P> for LoseProposalsTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| !(matches!(m, Message::Proposal { .. }) && self.0.iter().any(|&n| *d == Dest::One(n))))
            .collect()
    }
}

/// On Byzantine node `.0`: every relay it answers a fetch with carries an
/// attestation over nothing and an altered subfragment value.
struct ForgeRelays(usize);

impl Adversary<P> for ForgeRelays {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_core::enclave::Attester;
        let me = self.0;
        sends
            .into_iter()
            .map(|(d, m)| match m {
                Message::Relay { node, view, root, clients, mut sf, excluded, pre_vectors, .. } => {
                    let ra = enclave(me).attest_evidence(&[0u8; 32]);
                    sf.values[0] += Scalar::ONE;
                    (d, Message::Relay { node, view, root, clients, ra, sf, excluded, pre_vectors })
                }
                other => (d, other),
            })
            .collect()
    }
}

/// Attack round 16: honest leader node 0's proposal copy to node 3 is
/// lost, so node 3 fetches it, and Byzantine node 1 answers with a forged
/// relay (attestation over nothing, altered subfragment). The round
/// commits; node 3 records the refusal against relayer node 1
/// ([`Fault::BadRelay`]), and no honest node records view 0's honest
/// proposal as failed ([`Fault::BadProposal`]).
fn forged_relays_blame_their_relayer() -> Result<(), String> {
    let honest = (0..CLIENTS).collect::<Vec<_>>();
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        vec![(0, Box::new(LoseProposalsTo(vec![3]))), (1, Box::new(ForgeRelays(1)))];
    // A seed under which node 1's relay reaches node 3 among the first two
    // (after two verified relays node 3 has its subfragment and reads no
    // more).
    let r = run(SEED + 32, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &honest);
    round_succeeded(&r, &honest, |c| model(c as usize), BETA)?;
    let records: Vec<&Fault> =
        r.sim.faults.iter().filter(|(_, n, _)| [0, 2, 3].contains(n)).map(|(_, _, f)| f).collect();
    if let Some(f) = records.iter().find(|f| matches!(f, Fault::BadProposal { view: 0, .. })) {
        return Err(format!("honest leader 0's proposal recorded as failed: {f:?}"));
    }
    if !records.iter().any(|f| matches!(f, Fault::BadRelay { from: Source::Node(1), view: 0, .. })) {
        return Err(format!("no record names relayer node 1; records {records:?}"));
    }
    Ok(())
}

/// K = 7 (attack round 18, finding 1): Byzantine leader 0 attests two
/// client lists under one root ([`SameRootTwoLists`]; clients 0 and 11
/// reach nodes 0–4 only) and node 1 withholds its commit votes. Nodes 5
/// and 6, holding the proposal of list `B`, fetch the one of list `A` that
/// PBFT prepared and validate its block; the round commits, every honest
/// client decodes, and no honest PBFT leader is recorded as proposing an
/// invalid block.
fn one_root_two_client_lists_commit() -> Result<(), String> {
    use common::two_lists::{lists, two_lists_run, SameRootTwoLists, HONEST_DECODERS};
    let cfg = config(7, 12, 4);
    let honest = HONEST_DECODERS;
    let r = two_lists_run(
        SEED + 33,
        vec![(0, Box::new(SameRootTwoLists { cfg, done: false })), (1, Box::new(WithholdCommits))],
    );
    // View 0's leader aggregated (honestly, before its host's tampering)
    // another list: the check is against the trimmed mean of list `A`.
    let (a, _) = lists();
    let models: Vec<Vec<f32>> = a.iter().map(|&c| model(c as usize)).collect();
    let want = gridledger_fl::aggregate::trimmed_mean(&models, 4).map_err(|e| e.to_string())?;
    let committed = r.committed();
    if committed.iter().filter(|(n, _, _)| *n > 1).count() != 5 {
        return Err(format!("honest nodes committed: {committed:?}"));
    }
    if let Some(c) = honest.iter().find(|&&c| r.global_of(c).as_deref() != Some(&want[..])) {
        return Err(format!("client {c} decoded {:?}, want list A's trimmed mean", r.global_of(*c)));
    }
    let blamed = r.faults().into_iter().find(
        |f| matches!(f, Fault::Pbft(gridledger_consensus::pbft::Fault::InvalidProposal { leader, .. }) if *leader > 1),
    );
    match blamed {
        Some(f) => Err(format!("an honest PBFT leader recorded as proposing an invalid block: {f:?}")),
        None => Ok(()),
    }
}

/// K = 7 (attack round 19, finding 1): Byzantine node 0 sends nodes 5 and
/// 6 a junk copy of view 0's proposal ([`BadCopyWithholdCommits`]). The honest
/// first PBFT leader (node 2) proposes view 0's genuine block; nodes 5
/// and 6 fetch its attested proposal and wait for it instead of refusing
/// the block, the round commits, and no honest PBFT leader is recorded as
/// proposing an invalid block.
fn junk_copies_accuse_no_honest_pbft_leader() -> Result<(), String> {
    let honest = [0usize, 1, 2, 3];
    let r = run(
        SEED + 34,
        7,
        vec![ClientBehaviour::Honest; 4],
        vec![(0, Box::new(BadCopyWithholdCommits { me: 0, bad_copy: vec![5, 6], relays: true }))],
        &honest,
    );
    round_succeeded(&r, &honest, |c| model(c as usize), 1)?;
    let blamed = r.faults().into_iter().find(
        |f| matches!(f, Fault::Pbft(gridledger_consensus::pbft::Fault::InvalidProposal { leader, .. }) if *leader != 0),
    );
    match blamed {
        Some(f) => Err(format!("an honest PBFT leader recorded as proposing an invalid block: {f:?}")),
        None => Ok(()),
    }
}

/// Attack round 20: a root `M` over subfragments 0 and 1 of the genuine
/// release and 2 and 3 of another (K = 4; outside the enclave trust
/// model: an enclave attesting a root its host chose). Client 0 hears
/// from nodes 0 and 1, client 1 from nodes 2 and 3: every mini-fragment
/// verifies under `M`, and each client must refuse what it decodes (its
/// recoding is not `M`) with `RecodeMismatch`, never hold a fragment.
fn mixed_root_refused_by_every_client() -> Result<(), String> {
    use gridledger_fl::dissemination::{AssemblyFault, ClientAssembler};
    let cfg = common::view0::small();
    let mixed = common::view0::mixed_release(&cfg).map_err(|e| format!("{e:?}"))?;
    let (root, subs) = (mixed.root, mixed.subfragments);
    for (me, nodes) in [(0usize, [0usize, 1]), (1, [2, 3])] {
        let mut a = ClientAssembler::new(me, cfg.round, vec![(*cfg.global).clone()]).with_chain_offset(cfg.chain);
        let mut faults = a.set_root(cfg.chain, root).faults;
        for k in nodes {
            let minis = cfg.global.mini_fragments(k, &root, &subs[k]).map_err(|e| format!("{e:?}"))?;
            for mf in minis {
                faults.extend(a.on_mini(Source::Node(k), mf).faults);
            }
        }
        if a.fragment(cfg.chain).is_some() || !faults.iter().any(|f| matches!(f, AssemblyFault::RecodeMismatch { .. }))
        {
            return Err(format!("client {me} used a fragment of the mixed root: faults {faults:?}"));
        }
    }
    Ok(())
}

type Scenario = (&'static str, fn() -> Result<(), String>);
const SCENARIOS: [Scenario; 28] = [
    ("honest round", honest_round),
    ("bad cells filtered by proofs", bad_cells_filtered_by_proofs),
    ("tally needs 2f+1", tally_needs_two_f_plus_one),
    ("poisoned model trimmed", poisoned_model_trimmed),
    ("lying leader replaced", lying_leader_replaced),
    ("omitting leader replaced", omitting_leader_replaced),
    ("selective pre-vector commits", selective_pre_vector_commits),
    ("refused nodes serve a committed root", refused_nodes_serve_a_committed_root),
    ("retried upload aggregated", retried_upload_aggregated),
    ("earlier-run pre-vectors refused", earlier_run_pre_vectors_refused),
    ("skipped nodes validate a re-proposed root", skipped_nodes_validate_a_reproposed_root),
    ("skipped nodes fetch a prepared root", skipped_nodes_fetch_a_prepared_root),
    ("early fetches answered once verified", early_fetches_answered_once_verified),
    ("proposals without carried pre-vectors refused alike", proposals_without_carried_pre_vectors_refused_alike),
    ("lost pre-vector re-sent after a healed partition", lost_pre_vector_resent_after_a_healed_partition),
    ("lost fetches re-sent on a new PBFT view", lost_fetches_resent_on_a_new_pbft_view),
    ("cut-off client asks again", cut_off_client_asks_again),
    ("lost forwards recovered by asking", lost_forwards_recovered_by_asking),
    ("requests outlast a late GST", requests_outlast_a_late_gst),
    ("delayed uploads named in fresh pre-vectors", delayed_uploads_named_in_fresh_pre_vectors),
    ("stale carried pre-vectors refused", stale_carried_pre_vectors_refused),
    ("lost uploads re-sent", lost_uploads_re_sent),
    ("relayed forgeries blame their relayer", relayed_forgeries_blame_their_relayer),
    ("impersonations blame their sender", impersonations_blame_their_sender),
    ("forged relays blame their relayer", forged_relays_blame_their_relayer),
    ("one root, two client lists commit", one_root_two_client_lists_commit),
    ("junk copies accuse no honest PBFT leader", junk_copies_accuse_no_honest_pbft_leader),
    ("mixed root refused by every client", mixed_root_refused_by_every_client),
];

/// The scenarios that fail with `m` planted, with why.
fn failing(m: Option<Mutation>) -> Vec<(&'static str, String)> {
    plant(m);
    let out = SCENARIOS.iter().filter_map(|(n, f)| f().err().map(|e| (*n, e))).collect();
    plant(None);
    out
}

fn caught(m: Mutation, by: &str) {
    let f = failing(Some(m));
    eprintln!("{m:?} fails: {f:?}");
    assert!(f.iter().any(|(n, _)| *n == by), "{m:?} not caught by {by:?}; failing: {f:?}");
}

#[test]
fn control_every_scenario_holds_without_a_planted_bug() {
    let f = failing(None);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn unchecked_cell_proofs_are_caught() {
    caught(Mutation::ProofsUnchecked, "bad cells filtered by proofs");
}

#[test]
fn a_tally_one_short_of_two_f_plus_one_is_caught() {
    caught(Mutation::TallyShort, "tally needs 2f+1");
}

#[test]
fn the_plain_mean_instead_of_the_trimmed_mean_is_caught() {
    caught(Mutation::PlainMean, "poisoned model trimmed");
}

#[test]
fn an_unchecked_leader_root_is_caught() {
    caught(Mutation::RootUnchecked, "lying leader replaced");
}

#[test]
fn an_omission_accepted_without_evidence_is_caught() {
    caught(Mutation::OmissionUnchecked, "omitting leader replaced");
}

#[test]
fn a_leader_aggregating_only_the_deter_vectors_is_caught() {
    caught(Mutation::LeaderDeterOnly, "selective pre-vector commits");
}

#[test]
fn a_refusing_node_that_never_serves_a_committed_root_is_caught() {
    caught(Mutation::RefusedNodeSilent, "refused nodes serve a committed root");
}

#[test]
fn a_random_nonce_that_makes_a_retry_a_second_record_is_caught() {
    caught(Mutation::RandomNonce, "retried upload aggregated");
}

#[test]
fn an_instance_without_the_run_id_is_caught() {
    caught(Mutation::RunUnbound, "earlier-run pre-vectors refused");
}

#[test]
fn a_block_validated_only_by_its_own_view_is_caught() {
    caught(Mutation::ReproposalViewBound, "skipped nodes validate a re-proposed root");
}

#[test]
fn a_block_never_fetched_when_no_later_leader_reproduces_it_is_caught() {
    caught(Mutation::ReproposalViewBound, "skipped nodes fetch a prepared root");
}

#[test]
fn a_relayed_proposal_taken_unchecked_is_caught() {
    caught(Mutation::RelayUnchecked, "skipped nodes fetch a prepared root");
}

#[test]
fn a_fetch_request_forgotten_before_the_proposal_is_verified_is_caught() {
    caught(Mutation::FetchForgotten, "early fetches answered once verified");
}

#[test]
fn a_proposal_without_carried_pre_vectors_checked_against_local_ones_is_caught() {
    caught(Mutation::FewCarriedPreVectors, "proposals without carried pre-vectors refused alike");
}

#[test]
fn a_pre_vector_sent_once_only_is_caught() {
    caught(Mutation::PreVectorOneShot, "lost pre-vector re-sent after a healed partition");
}

#[test]
fn a_fetch_request_sent_once_only_is_caught() {
    caught(Mutation::FetchOneShot, "lost fetches re-sent on a new PBFT view");
}

#[test]
fn a_client_that_never_asks_again_is_caught() {
    caught(Mutation::ClientOneShot, "cut-off client asks again");
}

#[test]
fn answers_with_only_the_clients_own_mini_fragments_are_caught() {
    caught(Mutation::ResyncOwnMinis, "lost forwards recovered by asking");
}

#[test]
fn requests_without_back_off_are_caught() {
    caught(Mutation::ResyncNoBackoff, "requests outlast a late GST");
}

#[test]
fn pre_vectors_that_ignore_late_uploads_are_caught() {
    caught(Mutation::PreVectorSnapshot, "delayed uploads named in fresh pre-vectors");
}

#[test]
fn carried_pre_vectors_of_an_earlier_view_accepted_are_caught() {
    caught(Mutation::StaleCarriedPreVectors, "stale carried pre-vectors refused");
}

#[test]
fn an_upload_sent_once_only_is_caught() {
    caught(Mutation::UploadOneShot, "lost uploads re-sent");
}

#[test]
fn a_relayed_forgery_recorded_against_the_client_it_names_is_caught() {
    caught(Mutation::RelayBlamesClient, "relayed forgeries blame their relayer");
}

#[test]
fn an_impersonation_recorded_against_the_node_it_names_is_caught() {
    caught(Mutation::ImpersonationBlamesNamed, "impersonations blame their sender");
}

#[test]
fn a_refused_relay_recorded_as_the_views_failed_proposal_is_caught() {
    caught(Mutation::RelayBlamesView, "forged relays blame their relayer");
}

#[test]
fn proposal_stores_keyed_by_view_and_root_only_are_caught() {
    caught(Mutation::RootKeyedStores, "one root, two client lists commit");
}

#[test]
fn a_block_refused_for_a_failed_copy_of_its_view_is_caught() {
    caught(Mutation::FailedCopyRefuses, "junk copies accuse no honest PBFT leader");
}

#[test]
fn a_client_that_skips_the_recode_check_is_caught() {
    caught(Mutation::ClientRecodeUnchecked, "mixed root refused by every client");
}
