//! Attack round 14 on issue 16: fresh pre-vectors (view and sequence
//! number), the omission rule over pre-vectors attested in the proposal's
//! view or later, and clients re-sending their uploads — in the simulator
//! with the real round driver.

mod common;

use common::*;
use gridledger_core::enclave::Attester;
use gridledger_fl::coding::{client_key, CodedFragment};
use gridledger_fl::consensus::{ChainConfig, Fault, Message, DETER_VECTOR, PRE_VECTOR};
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, NetConfig, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// A Byzantine node flooding fresh vectors: every pre- or deter-vector it
/// sends is replaced by `copies` re-attestations of the same list with
/// ever higher sequence numbers (up to `u32::MAX`) and views far ahead,
/// each properly attested by its own enclave.
struct FloodVectors {
    cfg: Arc<ChainConfig>,
    me: usize,
    copies: u32,
    next_seq: u32,
}

impl FloodVectors {
    fn attest(&self, tag: gridledger_core::codec::Tag, view: u32, seq: u32, clients: &[u32]) -> Message {
        let ra = enclave(self.me).attest_evidence(&self.cfg.vector_evidence(tag, self.me, view, seq, clients));
        if tag == PRE_VECTOR {
            Message::PreVector { node: self.me, view, seq, clients: clients.to_vec(), ra }
        } else {
            Message::DeterVector { node: self.me, view, seq, clients: clients.to_vec(), ra }
        }
    }
}

impl Adversary<P> for FloodVectors {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let mut out = Vec::new();
        let base = self.next_seq;
        let mut used = 0;
        for (d, m) in sends {
            let (tag, clients) = match &m {
                Message::PreVector { clients, .. } => (PRE_VECTOR, clients.clone()),
                Message::DeterVector { clients, .. } => (DETER_VECTOR, clients.clone()),
                _ => {
                    out.push((d, m));
                    continue;
                }
            };
            for i in 0..self.copies {
                // Sequence numbers climb to u32::MAX on the last batch;
                // views run far ahead of any the honest nodes reach.
                let seq = base.saturating_add(i);
                let view = 1_000_000u32.saturating_add(seq);
                out.push((d, self.attest(tag, view, seq, &clients)));
            }
            used = self.copies;
        }
        self.next_seq = if base > u32::MAX - 4 * self.copies { u32::MAX } else { base + used };
        out
    }
}

/// f of K nodes flood fresh pre- and deter-vectors (hundreds per vector,
/// sequence numbers up to `u32::MAX`, views far ahead): K = 7 (f = 2) and
/// K = 10 (f = 3). The round still commits with every client, the same
/// global model everywhere.
#[test]
fn f_nodes_flooding_fresh_vectors_do_not_stop_the_round() {
    for nodes in [7usize, 10] {
        let f = (nodes - 1) / 3;
        let honest: Vec<usize> = (0..7).collect();
        let cfg = config(nodes, 7, 2);
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = (nodes - f..nodes)
            .map(|k| {
                let a: Box<dyn Adversary<P>> =
                    Box::new(FloodVectors { cfg: cfg.clone(), me: k, copies: 200, next_seq: u32::MAX - 2_000 });
                (k, a)
            })
            .collect();
        let r = run_custom(
            3,
            cfg,
            NetConfig::reliable(nodes + 7, 6),
            vec![ClientBehaviour::Honest; 7],
            adversaries,
            &honest,
            5_000,
        );
        r.debug_trace();
        assert_round_succeeded(&r, &honest, |c| model(c as usize), 2);
        let used = r.aggregated().into_iter().find(|(v, _)| *v == r.committed()[0].1).unwrap().1;
        assert_eq!(used, (0..7).collect::<Vec<u32>>(), "K = {nodes}");
    }
}

/// On a client: its uploads to nodes outside `reach` are always lost, and
/// to `reach` before tick `until` (its re-sends bring them in late).
struct LatePartialUpload {
    reach: Vec<u32>,
    until: Time,
}

impl Adversary<P> for LatePartialUpload {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter(|(d, m)| {
                !matches!(m, Message::Local(_))
                    || matches!(d, Dest::One(k) if self.reach.contains(k) && now >= self.until)
            })
            .collect()
    }
}

/// A client whose upload reaches only some honest nodes, and late: lost
/// until tick 400, it comes in with the client's first re-send (its first
/// request), while the f Byzantine nodes (the leaders of the first f
/// views, withholding everything) keep the round open. K = 7 (f = 2) with
/// the upload at 5 (every honest node), 4 and 3 nodes; K = 10 (f = 3) at 7
/// and 4. The honest nodes' verdicts are not split: the round commits, the
/// same global model at every other client; and an upload every honest
/// node accepted before the committed view is aggregated (the omission
/// rule over fresh pre-vectors).
#[test]
fn a_late_upload_at_some_nodes_only_does_not_split_the_verdicts() {
    for (nodes, reach) in [(7usize, 5usize), (7, 4), (7, 3), (10, 7), (10, 4)] {
        let clients = 7usize;
        let f = (nodes - 1) / 3;
        let cfg = config(nodes, clients, 2);
        let late = 3usize;
        let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = Vec::new();
        for k in 0..f {
            adversaries.push((k, Box::new(Withhold)));
        }
        adversaries.push((
            nodes + late,
            Box::new(LatePartialUpload { reach: (f as u32..(f + reach) as u32).collect(), until: 400 }),
        ));
        let others: Vec<usize> = (0..clients).filter(|&c| c != late).collect();
        let r = run_custom(
            7,
            cfg,
            NetConfig::reliable(nodes + clients, 6),
            vec![ClientBehaviour::Honest; clients],
            adversaries,
            &others,
            8_000,
        );
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &others, |c| model(c as usize), 2) {
            panic!("K = {nodes}, upload at {reach} nodes: {e}");
        }
        let view = r.committed()[0].1;
        let used = r.aggregated().into_iter().find(|(v, _)| *v == view).unwrap().1;
        if reach == nodes - f {
            assert!(used.contains(&(late as u32)), "K = {nodes}: view {view} left out the late client: {used:?}");
        }
    }
}

/// On a client: from tick `from` on, every upload it sends (its re-sends)
/// carries `other`, a second record it signed; before `from`, its uploads
/// to the nodes in `lose` are lost.
struct ResendOther {
    other: CodedFragment,
    from: Time,
    lose: Vec<u32>,
}

impl Adversary<P> for ResendOther {
    fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends
            .into_iter()
            .filter_map(|(d, m)| match (&d, m) {
                (Dest::One(k), Message::Local(_)) if now >= self.from => {
                    self.other.message(*k as usize).map(|lm| (d, Message::Local(lm)))
                }
                (Dest::One(k), Message::Local(_)) if self.lose.contains(k) => None,
                (_, m) => Some((d, m)),
            })
            .collect()
    }
}

/// An equivocating client using the re-send path: it uploads record A,
/// then re-sends a different record B with its first request (tick 400,
/// while the two Byzantine leaders of K = 7 keep the round open). With A
/// at every node first, B is recorded as its equivocation and the round
/// aggregates A; with A lost at three honest nodes (they accept B), the
/// leader holds both and excludes the client with the evidence — the
/// round commits either way, the same global model at every honest client.
#[test]
fn an_equivocating_client_re_sending_another_record_is_caught_and_the_round_commits() {
    for lose in [vec![], vec![4u32, 5, 6]] {
        let cfg = config(7, 7, 2);
        let c = 4usize;
        let bumped: Vec<f32> = model(c).iter().map(|x| x + 5.0).collect();
        let other = upload(&cfg, c as u32, &client_key(&SK, c as u32), &bumped);
        let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![
            (0, Box::new(Withhold)),
            (1, Box::new(Withhold)),
            (7 + c, Box::new(ResendOther { other, from: 300, lose: lose.clone() })),
        ];
        let honest: Vec<usize> = (0..7).filter(|&x| x != c).collect();
        let r = run_custom(
            11,
            cfg,
            NetConfig::reliable(14, 6),
            vec![ClientBehaviour::Honest; 7],
            adversaries,
            &honest,
            8_000,
        );
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &honest, |x| model(x as usize), 2) {
            panic!("lose {lose:?}: {e}");
        }
        let view = r.committed()[0].1;
        let used = r.aggregated().into_iter().find(|(v, _)| *v == view).unwrap().1;
        assert!(r.faults().iter().any(|f| matches!(f, Fault::Equivocation { client: 4 })), "lose {lose:?}");
        if !lose.is_empty() {
            assert!(!used.contains(&(c as u32)), "lose {lose:?}: the equivocating client was aggregated: {used:?}");
        }
    }
}

/// On a client: counts the uploads (C2B cells) it sends.
struct CountUploads(Arc<std::sync::atomic::AtomicUsize>);

impl Adversary<P> for CountUploads {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let n = sends.iter().filter(|(_, m)| matches!(m, Message::Local(_))).count();
        self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        sends
    }
}

/// On a node: its root reports to participant `to` are always lost.
struct NoReportsTo(u32);

impl Adversary<P> for NoReportsTo {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(d, m)| *d != Dest::One(self.0) || !matches!(m, Message::Committed { .. })).collect()
    }
}

/// Bandwidth of re-sent uploads: a client that never learns the committed
/// root (every node's report to it is lost) re-sends its upload with each
/// request, and stops after `MAX_RESYNCS` of them: at most
/// `K · (1 + MAX_RESYNCS)` cells in the whole round.
#[test]
fn a_client_that_never_learns_the_root_re_sends_its_upload_a_bounded_number_of_times() {
    use gridledger_fl::consensus::MAX_RESYNCS;
    use gridledger_fl::round::{resync_span, RESYNC_PERIOD};
    let (nodes, clients, c) = (4usize, 4usize, 2usize);
    let me = (nodes + c) as u32;
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..nodes).map(|k| (k, Box::new(NoReportsTo(me)) as Box<dyn Adversary<P>>)).collect();
    adversaries.push((nodes + c, Box::new(CountUploads(count.clone()))));
    let mut r = run_custom(
        5,
        config(nodes, clients, 1),
        NetConfig::reliable(nodes + clients, 6),
        vec![ClientBehaviour::Honest; clients],
        adversaries,
        &[0, 1, 3],
        5_000,
    );
    // Then on until well past the client's last request.
    r.sim.run_until(resync_span(RESYNC_PERIOD) + 10 * RESYNC_PERIOD, |_| false);
    r.debug_trace();
    assert!(!r.committed().is_empty(), "the chain committed nothing");
    let sent = count.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent > nodes, "no upload was re-sent ({sent} cells)");
    assert!(sent <= nodes * (1 + MAX_RESYNCS as usize), "{sent} cells sent");
}
