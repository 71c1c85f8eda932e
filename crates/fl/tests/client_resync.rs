//! A client that has not decoded asks the nodes again
//! ([`Message::Resync`]); the nodes' answers stay bounded however a
//! Byzantine client floods them with requests.

mod common;

use common::*;
use gridledger_fl::consensus::{Message, MAX_RESYNCS};
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const K: usize = 4;

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
/// requests until tick 5000: each node answers it [`MAX_RESYNCS`] times,
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
    let r = run(9, K, vec![ClientBehaviour::Honest; 4], adversaries, &[0, 1, 2, 3]);
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
