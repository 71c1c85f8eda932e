//! Attack round 8 on CTP-FL (issue 16): what a client holds for a chain
//! before it knows the committed root (`ClientAssembler`'s pending
//! mini-fragments). Findings are `#[ignore]`d until fixed:
//! `cargo test -p gridledger-fl --test attack_pending_minis_r8 -- --include-ignored`.

use blstrs::Scalar;
use ff::Field;
use gridledger_core::Hash32;
use gridledger_fl::dissemination::{ClientAssembler, GlobalCoder, Source};

const NODES: usize = 7;
const CLIENTS: usize = 10;

fn coder() -> GlobalCoder {
    GlobalCoder::for_chain(600, NODES, CLIENTS).unwrap()
}

/// FINDING 3 (low: memory a Byzantine sender parks in every honest client
/// until the root is known — for good if the chain never commits).
///
/// Before the root, `on_mini` queues a mini-fragment under a per-sender
/// quota of `K` entries, but checks nothing else: not the length of its
/// values (one subfragment's share, `second.cell_size()` scalars), nor its
/// Merkle paths' lengths (at most `log2` of the tree). So one Byzantine
/// client (or node) sends each honest client `K` mini-fragments of any
/// size — here 7 × 100 000 scalars, about 22 MB held per victim from 7
/// messages — and they stay queued until the chain's root is set (with a
/// halted round, for the rest of it). Each honest mini-fragment is a few
/// scalars.
/// Expected: a mini-fragment whose values or proofs cannot be well formed
/// for this chain's coder is refused on arrival (a typed fault), so the
/// queue holds at most `K` well-sized entries per sender.
/// Observed: all seven are queued without a fault.
/// Fixed: `GlobalCoder::check_mini_shape` (node and client in range, one
/// second-code cell of values, Merkle paths no longer than the trees'
/// depths) runs on arrival, before the root; a failure is a typed fault.
#[test]
fn oversized_mini_fragments_before_the_root_are_refused() {
    let c = coder();
    let rel = c.release(Hash32::ZERO, 0, 3, &[7u8; 600]).unwrap();
    let honest = c.mini_fragments(0, &rel.root, &rel.subfragments[0]).unwrap();
    let well_sized = honest[0].values.len();
    let mut victim = ClientAssembler::new(0, 3, vec![coder()]);
    let mut queued = 0usize;
    for node in 0..NODES {
        let mut mf = honest[1].clone();
        mf.node = node;
        mf.values = vec![Scalar::ONE; 100_000];
        mf.mini_proof.siblings = vec![Hash32::ZERO; 1_000];
        let step = victim.on_mini(Source::Client(9), mf);
        if step.faults.is_empty() {
            queued += 1;
        }
    }
    assert_eq!(queued, 0, "{queued} mini-fragments of 100 000 scalars queued (a well-formed one has {well_sized})");
}

/// Holds: once the root is set, the same oversized mini-fragments are
/// refused at once with a typed fault, and the honest ones still decode.
#[test]
fn oversized_mini_fragments_after_the_root_are_refused() {
    let c = coder();
    let bytes = [7u8; 600];
    let rel = c.release(Hash32::ZERO, 0, 3, &bytes).unwrap();
    let mut victim = ClientAssembler::new(0, 3, vec![coder()]);
    assert!(victim.set_root(0, rel.root).faults.is_empty());
    let honest = c.mini_fragments(0, &rel.root, &rel.subfragments[0]).unwrap();
    let mut mf = honest[1].clone();
    mf.values = vec![Scalar::ONE; 100_000];
    assert!(!victim.on_mini(Source::Client(9), mf).faults.is_empty());
    for sf in &rel.subfragments {
        for mf in c.mini_fragments(sf.node, &rel.root, sf).unwrap() {
            let src = if mf.client == 0 { Source::Node(mf.node) } else { Source::Client(mf.client) };
            victim.on_mini(src, mf);
        }
    }
    assert_eq!(victim.fragment(0), Some(&bytes[..]));
}
