//! Attack round 11 on issue 16: messages still sent once only, lost before
//! GST (a partition that heals). The previous fixes re-send pre-vectors to
//! each aggregation view's leader and fetch requests on each PBFT view;
//! what a node sends its clients on commit (its root report and its
//! mini-fragments) and what the committee sends at the tally are still
//! one-shot.

mod common;

use common::*;
use gridledger_fl::consensus::Message;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// On an honest node: everything it sends to participant `to` (a client)
/// before tick `until` is lost (the client's link from the chain is down
/// until GST); the rest is delivered.
struct LoseToUntil {
    to: u32,
    until: Time,
}

impl Adversary<P> for LoseToUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, _)| now >= self.until || *d != Dest::One(self.to)).collect()
    }
}

/// On an honest committee member: its deter-vector is lost before tick
/// `until`; the rest is delivered.
struct LoseDeterVectorsUntil(Time);

impl Adversary<P> for LoseDeterVectorsUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| now >= self.0 || !matches!(m, Message::DeterVector { .. })).collect()
    }
}

/// K = 4 (f = 1), four honest clients, no Byzantine party. Client 3's
/// link from every node is down until tick 1500, long after the chain
/// commits its root (at tick 131 here); from tick 1500 on,
/// everything is delivered and the run goes on to tick 5000.
///
/// What happened: the chain committed, clients 0–2 decoded the global
/// fragment, and client 3 never did: each node sends its `Committed`
/// report and its mini-fragments to the clients once, at its commit
/// (`ChainNode::on_committed` / `disseminate`), never again, and a client
/// has no timer to ask again; without `f + 1` root reports client 3 never
/// sets the root, so the mini-fragments other clients forward it (C2C) do
/// not help either. What should happen: as for pre-vectors and fetches,
/// a message lost before GST must not cost an honest client the round
/// (re-send the report and mini-fragments, or let the client ask again).
#[test]
fn a_client_cut_off_from_the_chain_until_after_the_commit_still_decodes() {
    let k = 4;
    let to = (k + 3) as u32;
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..k).map(|n| (n, Box::new(LoseToUntil { to, until: 1500 }) as Box<dyn Adversary<P>>)).collect();
    let r = run(5, k, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    r.debug_trace();
    // The premise: the chain committed (before the link came back) and the
    // other clients decoded.
    assert!(!r.committed().is_empty(), "no commit at all: {:?}", r.faults());
    for c in 0..3 {
        assert!(r.global_of(c).is_some(), "client {c} did not decode");
    }
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// K = 7 (f = 2), four honest clients: every honest node's deter-vector
/// is lost before tick 1000 (every committee member's). The leader's
/// aggregation set also takes the clients protected by the carried
/// pre-vectors, so the round does not need a deter-vector: it commits and
/// every client decodes (holds).
#[test]
fn deter_vectors_lost_before_gst_do_not_halt_the_round() {
    let k = 7;
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..k).map(|n| (n, Box::new(LoseDeterVectorsUntil(1000)) as Box<dyn Adversary<P>>)).collect();
    let r = run(7, k, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// A Byzantine node: its proposals skip `skip`, it sends no PBFT commit
/// vote, catch-up answer or relay (so the skipped nodes depend on the
/// honest relayers).
struct SkipWithholdNoRelay {
    skip: Vec<u32>,
}

impl Adversary<P> for SkipWithholdNoRelay {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        use gridledger_consensus::pbft;
        sends
            .into_iter()
            .filter(|(d, m)| match m {
                Message::Proposal { .. } => !self.skip.iter().any(|&n| *d == Dest::One(n)),
                Message::Pbft(b) => !matches!(**b, pbft::Message::Commit(_) | pbft::Message::CatchUpResponse { .. }),
                Message::Relay { .. } => false,
                _ => true,
            })
            .collect()
    }
}

/// On an honest node: every relay it sends before tick `until` is lost;
/// counts the relays it sends in all.
struct LoseRelaysUntil {
    until: Time,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Adversary<P> for LoseRelaysUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let n = sends.iter().filter(|(_, m)| matches!(m, Message::Relay { .. })).count();
        self.sent.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        sends.into_iter().filter(|(_, m)| now >= self.until || !matches!(m, Message::Relay { .. })).collect()
    }
}

/// K nodes, f Byzantine leaders `0..f` skipping the last f nodes, withholding
/// commits and relays; every relay an honest node sends before `until` is
/// lost. Returns the run and the relays the honest nodes sent.
fn skipped_nodes_losing_relays(seed: u64, k: usize, until: Time) -> (Run, usize) {
    let f = (k - 1) / 3;
    let skip: Vec<u32> = ((k - f)..k).map(|n| n as u32).collect();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = Vec::new();
    for n in 0..f {
        adversaries.push((n, Box::new(SkipWithholdNoRelay { skip: skip.clone() })));
    }
    for n in f..k {
        adversaries.push((n, Box::new(LoseRelaysUntil { until, sent: sent.clone() })));
    }
    let r = run(seed, k, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    r.debug_trace();
    let n = sent.load(std::sync::atomic::Ordering::Relaxed);
    (r, n)
}

/// K = 7 and K = 10: the skipped nodes must fetch the prepared block's
/// proposal for the round to commit (the Byzantine nodes withhold commits
/// and relays), and every honest relay before tick 600 is lost. A peer
/// relays again once per PBFT view, so after tick 600 the skipped nodes
/// verify, the round commits with them, and the relays sent stay bounded
/// (holds).
#[test]
fn relays_lost_before_gst_are_sent_again_and_stay_bounded() {
    for k in [7usize, 10] {
        let f = (k - 1) / 3;
        let (r, relays) = skipped_nodes_losing_relays(11, k, 600);
        assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
        let committers: Vec<u32> = r.committed().iter().map(|(n, ..)| *n).collect();
        for node in (k - f)..k {
            assert!(committers.contains(&(node as u32)), "K = {k}: node {node} did not commit: {committers:?}");
        }
        // Each honest relayer answers each skipped node at most once per
        // PBFT view for each of the at most K proposals: a generous bound.
        assert!(relays <= (k - f) * f * k * 64, "K = {k}: {relays} relays");
        eprintln!("K = {k}: {relays} relays");
    }
}

/// On an honest node: every message of kind `pick` it sends before tick
/// `until` is lost.
struct LoseUntil {
    until: Time,
    pick: fn(&Message) -> bool,
}

impl Adversary<P> for LoseUntil {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| now >= self.until || !(self.pick)(m)).collect()
    }
}

fn is_pre_vector(m: &Message) -> bool {
    matches!(m, Message::PreVector { .. })
}

fn is_commit_vote(m: &Message) -> bool {
    use gridledger_consensus::pbft;
    matches!(m, Message::Pbft(b) if matches!(**b, pbft::Message::Commit(_)))
}

/// K = 10 (f = 3), nodes 0–2 Byzantine and silent; every pre-vector an
/// honest node sends before tick 1000 is lost (also those re-sent to the
/// leaders of the views they move to before then), so every honest leader
/// up to then holds its own pre-vector only, short of `K − f`. The
/// re-sends to later views' leaders reach one after tick 1000 and the
/// round commits (holds).
#[test]
fn every_pre_vector_lost_before_gst_with_f_silent_nodes_at_k10() {
    let k = 10;
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = Vec::new();
    for n in 0..3 {
        adversaries.push((n, Box::new(Withhold)));
    }
    for n in 3..k {
        adversaries.push((n, Box::new(LoseUntil { until: 1000, pick: is_pre_vector })));
    }
    let r = run(13, k, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}

/// K = 7 (f = 2): every PBFT commit vote sent before tick 800 is lost.
/// PBFT's view changes re-propose the prepared block and the round commits
/// after tick 800 (holds).
#[test]
fn commit_votes_lost_before_gst_do_not_halt_the_round() {
    let k = 7;
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = (0..k)
        .map(|n| (n, Box::new(LoseUntil { until: 800, pick: is_commit_vote }) as Box<dyn Adversary<P>>))
        .collect();
    let r = run(17, k, vec![gridledger_fl::round::ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    r.debug_trace();
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
}
