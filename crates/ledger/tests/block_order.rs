//! Block order (attack r13 [4], [7]): blocks are filled highest gas price
//! first, then by arrival, each sender's transactions in nonce order, and
//! senders skipped for gas are served first; plain and pipelined heights
//! fill blocks the same way, and two validators whose mempools took the
//! same transactions in the same order build the same blocks.

use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer, DevChain};
use gridledger_ledger::{ChainConfig, ContractRegistry, ExecutedBlock, SignedTransaction};

const BAL: Amount = Amount(1_000_000_000_000);

fn pay(key: &KeyPair, nonce: u64, price: u128, gas_limit: Option<u64>) -> SignedTransaction {
    let mut tx = transfer(key, DevChain::CHAIN_ID, nonce, key.address(), Amount(1), Amount(price)).tx;
    if let Some(g) = gas_limit {
        tx.gas_limit = g;
    }
    tx.sign(key)
}

/// A mix: cheap standing queues, a dear late sender, a sender whose dear
/// transaction waits behind its own cheap one, and block-sized ones.
fn workload() -> Vec<SignedTransaction> {
    let limit = ChainConfig::default().block_gas_limit;
    let mut out = Vec::new();
    for k in 0..6 {
        for n in 0..3 {
            out.push(pay(&dev_key(k), n, 1, None));
        }
    }
    out.push(pay(&dev_key(6), 0, 1, Some(limit)));
    out.push(pay(&dev_key(7), 0, 5, None));
    out.push(pay(&dev_key(7), 1, 50, None));
    out.push(pay(&dev_key(8), 0, 9, Some(limit / 2 + 1)));
    out.push(pay(&dev_key(9), 0, 40, None));
    out
}

fn open(d: &std::path::Path, txs: &[SignedTransaction]) -> DevChain {
    let mut dc = DevChain::open(d, 10, BAL, ContractRegistry::new()).unwrap();
    for t in txs {
        dc.chain.submit(&t.to_bytes()).unwrap();
    }
    dc
}

fn price_and_sender(ex: &ExecutedBlock) -> Vec<(u128, u64, gridledger_core::Address)> {
    ex.block.txs.iter().map(|t| (t.tx.gas_price.0, t.tx.nonce, t.sender())).collect()
}

#[test]
fn the_highest_price_goes_first_and_a_sender_keeps_its_nonce_order() {
    let d = tempfile::tempdir().unwrap();
    let mut dc = open(d.path(), &workload());
    let proposer = dev_key(0).public();
    let (b1, _) = dc.chain.build_block(&proposer, 1_000);
    let got = price_and_sender(&b1);
    let (k7, k8, k9) = (dev_key(7).address(), dev_key(8).address(), dev_key(9).address());
    // Sender 9 (40) first; sender 7's 50 waits behind its own 5, then
    // comes at once; sender 8's half-block one (9) fits; the cheap ones
    // follow by arrival; sender 6's block-sized one no longer fits.
    assert_eq!(got[..4], [(40, 0, k9), (9, 0, k8), (5, 0, k7), (50, 1, k7)], "{got:?}");
    assert!(got[4..].iter().all(|(p, ..)| *p == 1), "{got:?}");
    assert!(!got.iter().any(|(.., a)| *a == dev_key(6).address()), "sender 6's block-sized one is skipped");
    // Skipped for gas, it is served first in the next block.
    dc.chain.commit(b1).unwrap();
    let (b2, _) = dc.chain.build_block(&proposer, 2_000);
    assert_eq!(b2.block.txs[0].sender(), dev_key(6).address());
}

#[test]
fn validators_with_the_same_mempool_build_the_same_blocks_plain_or_pipelined() {
    let txs = workload();
    let proposer = dev_key(0).public();
    let (dx, dy, dz) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut x, mut y, mut z) = (open(dx.path(), &txs), open(dy.path(), &txs), open(dz.path(), &txs));
    // X and Y build and commit block after block; Z builds each next
    // height on the previous one before committing it (pipelined).
    let mut z_parent = z.chain.build_block(&proposer, 1_000).0;
    for h in 1..=4u64 {
        let bx = x.chain.build_block(&proposer, 1_000 * h).0;
        let by = y.chain.build_block(&proposer, 1_000 * h).0;
        assert_eq!(bx.block, by.block, "height {h}");
        assert_eq!(bx.block.txs, z_parent.block.txs, "height {h}: the pipelined proposer's block holds the same");
        x.chain.commit(bx).unwrap();
        y.chain.commit(by).unwrap();
        let next = z.chain.build_block_on(&z_parent, &proposer, 1_000 * (h + 1)).unwrap();
        z.chain.commit(z_parent).unwrap();
        z_parent = next;
    }
    assert!(x.chain.mempool().is_empty(), "everything went in: {}", x.chain.mempool().len());
}
