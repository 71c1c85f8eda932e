//! Attack rounds 18 and 19's one-root-two-lists set-up (K = 7, f = 2,
//! twelve honest clients), shared by `attack_root_key_r18.rs`,
//! `attack_block_key_r19.rs` and the mutation check (`mutants.rs`).
//!
//! View 0's aggregate over `A = {0, …, 10}` (client 0 in) and over
//! `B = {1, …, 11}` (client 11 in) are one model (`model(0) ==
//! model(11)`: the common models repeat every 11 clients), so one root
//! `R`. Clients 0 and 11 reach nodes 0–4 only (their uploads to the
//! [`SKIPPED`] nodes 5 and 6 are lost).

use super::*;
use gridledger_fl::consensus::{AttestedVector, PRE_VECTOR};
use gridledger_fl::dissemination::GlobalRelease;

pub const NODES: usize = 7;
pub const CLIENTS: usize = 12;
pub const BETA: usize = CLIENTS / 3;
/// The honest nodes clients 0 and 11 do not reach (and that get the
/// proposal of list `B` from [`SameRootTwoLists`]).
pub const SKIPPED: [u32; 2] = [5, 6];
/// The clients a run's success check waits for (clients 0 and 11 reach two
/// nodes fewer; they are honest too but not needed for the point).
pub const HONEST_DECODERS: [usize; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/// `A = {0, …, 10}` and `B = {1, …, 11}`: equal trimmed means, one root.
pub fn lists() -> (Vec<u32>, Vec<u32>) {
    ((0..=10).collect(), (1..=11).collect())
}

/// The trimmed mean (trimming [`BETA`]) of the models of `list`.
pub fn mean_of(list: &[u32]) -> Vec<f32> {
    trimmed_mean(&list.iter().map(|&c| model(c as usize)).collect::<Vec<_>>(), BETA).unwrap()
}

/// How many of [`HONEST_DECODERS`] decoded the trimmed mean of list `A`.
pub fn decoders_of_a(r: &Run) -> usize {
    let want = mean_of(&lists().0);
    HONEST_DECODERS.iter().filter(|&&c| r.global_of(c).as_deref() == Some(&want[..])).count()
}

/// One round of the K = 7 chain with twelve honest clients, `adversaries`
/// on the nodes they name, clients 0 and 11's uploads to the [`SKIPPED`]
/// nodes lost; run until every client of [`HONEST_DECODERS`] decodes.
pub fn two_lists_run(seed: u64, mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)>) -> Run {
    adversaries.push((NODES, Box::new(DropToNodes(SKIPPED.to_vec()))));
    adversaries.push((NODES + 11, Box::new(DropToNodes(SKIPPED.to_vec()))));
    run(seed, NODES, vec![ClientBehaviour::Honest; CLIENTS], adversaries, &HONEST_DECODERS)
}

/// View 0's proposal `(0, rel.root, clients)` as view 0's leader (node 0)
/// attests it, with node `node`'s subfragment of `rel` and `pre_vectors`
/// carried.
pub fn leader_proposal(
    cfg: &ChainConfig,
    rel: &GlobalRelease,
    node: usize,
    clients: &[u32],
    pre_vectors: Vec<AttestedVector>,
) -> Message {
    let ra = enclave(0).attest_evidence(&cfg.aggregate_evidence(0, &rel.root, clients));
    view0_proposal(rel.root, clients, ra, rel.subfragments[node].clone(), pre_vectors)
}

/// Byzantine node 0, view 0's aggregation leader. Its host runs its
/// enclave twice in view 0, feeding it client 0's cells and not client
/// 11's, then the other way round, so its enclave honestly attests
/// `(0, R, A)` and `(0, R, B)` — one root. Neither client is protected by
/// the pre-vectors it carries: their uploads missed nodes 5 and 6, and the
/// carried pre-vectors of nodes 0 and 1 (both Byzantine) are ones their
/// enclaves attested before those uploads were fed in. It sends `(0, R, A)`
/// to nodes 1–4 and `(0, R, B)` to nodes 5 and 6, signs PBFT prepare votes
/// for block `(0, R, A)`, and sends no other PBFT message (no commit vote)
/// and nothing else but its pre-vectors.
pub struct SameRootTwoLists {
    pub cfg: Arc<ChainConfig>,
    pub done: bool,
}

impl Adversary<P> for SameRootTwoLists {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let (a, b) = lists();
        let rel = release_of(&self.cfg, &a, BETA);
        let mut out = Vec::new();
        for (d, m) in sends {
            match m {
                Message::PreVector { .. } => out.push((d, m)),
                Message::Proposal { view: 0, sf, pre_vectors, .. } => {
                    // Its own carried pre-vector: the one attested before
                    // clients 0 and 11 were fed in.
                    let short: Vec<u32> = (1..=10).collect();
                    let mut carried: Vec<AttestedVector> = pre_vectors.into_iter().filter(|v| v.node > 1).collect();
                    for node in [1, 0] {
                        let ev = self.cfg.vector_evidence(PRE_VECTOR, node, 0, 0, &short);
                        let ra = enclave(node).attest_evidence(&ev);
                        carried.insert(0, AttestedVector { node, view: 0, seq: 0, clients: short.clone(), ra });
                    }
                    let clients = if SKIPPED.iter().any(|&n| d == Dest::One(n)) { &b } else { &a };
                    out.push((d, leader_proposal(&self.cfg, &rel, sf.node, clients, carried)));
                    if !self.done {
                        self.done = true;
                        out.extend(node0_prepares(&self.cfg, &rel, &a));
                    }
                }
                _ => {}
            }
        }
        out
    }
}
