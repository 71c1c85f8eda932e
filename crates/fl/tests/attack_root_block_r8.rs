//! Attack round 8 on CTP-FL (issue 16): what a replica does with a PBFT
//! root block it cannot decide yet. Findings are `#[ignore]`d until fixed:
//! `cargo test -p gridledger-fl --test attack_root_block_r8 -- --include-ignored`.

mod common;

use common::*;
use gridledger_consensus::pbft::{self, Payload};
use gridledger_core::Hash32;
use gridledger_fl::consensus::{ChainNode, Fault, Message, RootBlock, ROOT_HEIGHT};
use gridledger_fl::dissemination::Source;
use gridledger_fl::round::sim_node_key;

/// FINDING 4 (low: a Byzantine PBFT leader parks a block of any size in
/// every honest replica for the rest of the round).
///
/// `RootBlock::well_formed` asks only for a non-empty increasing client
/// list, and the replica's validation waits (no verdict) on any block
/// whose aggregation view it has not checked yet — even one naming
/// clients the round does not have (ids `≥ C`, or more than `C` of them)
/// and a view no leader will reach (`u32::MAX`), which can never be
/// valid. The waiting request is kept in the node's `pending` list, and
/// nothing drops it when PBFT moves to a later view, so each PBFT view a
/// Byzantine node leads adds one such block, of any size (here 1 000 000
/// client ids, 4 MB, for a round of 4 clients).
/// Expected: a block naming clients outside the round (or a view beyond
/// the node's reach) is refused at once with a typed fault
/// (`Fault::Pbft(InvalidProposal)`), and waiting requests of past PBFT
/// views are dropped.
/// Observed: no verdict and no fault; the block waits.
/// Fixed: a block naming a client id `≥ C` (so, increasing, more than `C`
/// of them) or an aggregation view more than `K` past the node's is
/// refused at once (`InvalidProposal`); waiting requests of PBFT views the
/// replica has left are dropped.
#[test]
fn a_root_block_naming_clients_outside_the_round_is_refused() {
    let cfg = config(4, 4, 1);
    let mut node = ChainNode::new(cfg.clone(), 0, enclave(0), SK, sim_node_key(0), TIMING);
    node.start();
    let block = RootBlock {
        chain: cfg.chain,
        round: cfg.round,
        view: u32::MAX,
        root: Hash32([0xab; 32]),
        clients: (0..1_000_000).collect(),
    };
    assert!(block.well_formed().is_ok());
    let mut faults = Vec::new();
    let mut accepted = false;
    // The block from the PBFT leader of the replica's first view(s).
    for pview in 0..2u64 {
        let leader = ((pview + ROOT_HEIGHT) % 4) as usize;
        let pp = pbft::PrePrepare::sign(&sim_node_key(leader), &cfg.instance(), pview, ROOT_HEIGHT, block.clone());
        let step = node.handle(Source::Node(leader), Message::Pbft(Box::new(pbft::Message::PrePrepare(pp))));
        accepted |= step
            .faults
            .iter()
            .all(|f| !matches!(f, Fault::Pbft(pbft::Fault::WrongLeader { .. } | pbft::Fault::StaleView { .. })));
        faults.extend(step.faults);
    }
    assert!(accepted, "no pre-prepare reached validation: {faults:?}");
    assert!(
        faults.iter().any(|f| matches!(f, Fault::Pbft(pbft::Fault::InvalidProposal { .. }))),
        "the block was neither refused nor accepted: faults {:?}",
        faults.iter().map(|f| format!("{f:?}").chars().take(120).collect::<String>()).collect::<Vec<_>>()
    );
}
