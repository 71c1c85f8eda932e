//! A client that has not decoded asks the nodes again
//! ([`Message::Resync`]); the nodes' answers stay bounded however a
//! Byzantine client floods them with requests.

mod common;

use common::*;
use gridledger_fl::consensus::{Message, MAX_RESYNCS};
use gridledger_fl::round::{resync_span, ClientBehaviour, RESYNC_PERIOD};
use gridledger_sim::{Adversary, Dest, NetConfig, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const K: usize = 4;

/// Four honest clients on `K` nodes until every client decoded or the
/// flooding client's own request schedule ran out ([`resync_span`]): its
/// flood rides on its own requests, and these arrive in the network's
/// order, so the cap is reached only over enough of them.
fn run_flood(adversaries: Vec<(usize, Box<dyn Adversary<P>>)>) -> Run {
    let net = NetConfig::reliable(K + 4, 6);
    let until = resync_span(RESYNC_PERIOD) + 1_000;
    run_custom(9, config(K, 4, 1), net, vec![ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3], until)
}

/// On an honest node: counts the root reports it sends to clients 0 and 3
/// and drops everything it sends to client 3 (whose link from the chain
/// never comes up, so it keeps asking).
struct CutOffClient3 {
    to_0: Arc<AtomicUsize>,
    to_3: Arc<AtomicUsize>,
}

impl Adversary<P> for CutOffClient3 {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        for (d, m) in &sends {
            if matches!(m, Message::Committed { .. }) {
                if *d == Dest::One(K as u32) {
                    self.to_0.fetch_add(1, Ordering::Relaxed);
                } else if *d == Dest::One(K as u32 + 3) {
                    self.to_3.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        sends.into_iter().filter(|(d, _)| *d != Dest::One(K as u32 + 3)).collect()
    }
}

/// Client 3, Byzantine: each request it sends goes out with 20 copies,
/// 20 requests far ahead, and 20 requests in client 0's name.
struct FloodResync {
    next: u32,
}

impl Adversary<P> for FloodResync {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let mut out = Vec::new();
        for (d, m) in sends {
            if let Message::Resync { client, seq } = m {
                for _ in 0..20 {
                    out.push((d, Message::Resync { client, seq }));
                    self.next += 1;
                    out.push((d, Message::Resync { client, seq: 1_000 + self.next }));
                    out.push((d, Message::Resync { client: 0, seq: 1_000 + self.next }));
                }
            }
            out.push((d, m));
        }
        out
    }
}

/// Client 3 never hears from the chain and floods every node with
/// requests while its schedule lasts: each node answers it [`MAX_RESYNCS`] times,
/// no more, besides its report at the commit, and answers no request sent in
/// client 0's name (client 0 decoded at once, so it gets one report from
/// each node).
#[test]
fn a_flooding_client_gets_bounded_answers_and_cannot_ask_for_another() {
    let to_0 = Arc::new(AtomicUsize::new(0));
    let to_3 = Arc::new(AtomicUsize::new(0));
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = (0..K)
        .map(|n| (n, Box::new(CutOffClient3 { to_0: to_0.clone(), to_3: to_3.clone() }) as Box<dyn Adversary<P>>))
        .collect();
    adversaries.push((K + 3, Box::new(FloodResync { next: 0 })));
    // Client 3 never decodes, so the run goes on to its horizon.
    let r = run_flood(adversaries);
    for c in 0..3 {
        assert!(r.global_of(c).is_some(), "client {c} did not decode");
    }
    assert!(r.global_of(3).is_none(), "client 3 decoded through a link that is down");
    let (to_0, to_3) = (to_0.load(Ordering::Relaxed), to_3.load(Ordering::Relaxed));
    assert_eq!(to_0, K, "client 0 got reports on requests it did not send");
    // The flood reaches the cap: each node answers exactly MAX_RESYNCS
    // requests, no more.
    assert_eq!(to_3, K * (1 + MAX_RESYNCS as usize), "reports to client 3");
}

/// A client whose link from the chain is down until after the commit asks
/// again and decodes the same global fragment as the others.
#[test]
fn a_client_cut_off_until_after_the_commit_decodes_by_asking_again() {
    struct LoseTo3Until(Time);
    impl Adversary<P> for LoseTo3Until {
        fn tamper(&mut self, now: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
            sends.into_iter().filter(|(d, _)| now >= self.0 || *d != Dest::One(K as u32 + 3)).collect()
        }
    }
    let adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..K).map(|n| (n, Box::new(LoseTo3Until(900)) as Box<dyn Adversary<P>>)).collect();
    let r = run(11, K, vec![ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    assert_eq!(r.global_of(3), r.global_of(0));
}

/// On an honest node: counts the mini-fragments it sends to client 3 and
/// drops everything it sends to client 3.
struct CountMinisTo3(Arc<AtomicUsize>);

impl Adversary<P> for CountMinisTo3 {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let to_3 = Dest::One(K as u32 + 3);
        let n = sends.iter().filter(|(d, m)| *d == to_3 && matches!(m, Message::Mini { from_node: true, .. })).count();
        self.0.fetch_add(n, Ordering::Relaxed);
        sends.into_iter().filter(|(d, _)| *d != to_3).collect()
    }
}

/// A node answers a request with enough mini-fragments to decode its
/// subfragment ([`GlobalCoder::minis_needed`](gridledger_fl::dissemination::GlobalCoder::minis_needed),
/// more than one here), so what a flooding client gets is bounded by the
/// request cap times that: each node sends client 3 its mini-fragment at
/// the commit and `minis_needed` per answer, [`MAX_RESYNCS`] answers, no
/// more.
#[test]
fn a_flooding_client_gets_at_most_max_resyncs_times_minis_needed_mini_fragments() {
    let need = config(K, 4, 1).global.minis_needed();
    assert!(need > 1, "premise: an answer carries more than the client's own mini-fragment");
    let minis = Arc::new(AtomicUsize::new(0));
    let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> =
        (0..K).map(|n| (n, Box::new(CountMinisTo3(minis.clone())) as Box<dyn Adversary<P>>)).collect();
    adversaries.push((K + 3, Box::new(FloodResync { next: 0 })));
    let r = run_flood(adversaries);
    for c in 0..3 {
        assert!(r.global_of(c).is_some(), "client {c} did not decode");
    }
    assert_eq!(minis.load(Ordering::Relaxed), K * (1 + MAX_RESYNCS as usize * need), "mini-fragments to client 3");
}
