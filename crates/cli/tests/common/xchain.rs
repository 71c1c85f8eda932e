//! Helpers shared by the CLI tests of `gridledger xchain …`: the deployment
//! `xchain up --chains 2 --validators 4` makes, its pool, and a swap
//! interrupted at the sender's native transfer (what `xchain resume` is
//! tested against).

use std::path::Path;
use std::process::{Command, Output};

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::SignedTransaction;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest};
use gridledger_xchain::{CctRecord, Side};

use super::BIN;

/// The spec `xchain up --chains 2 --validators 4` runs (its genesis time
/// comes from the directory a chain is opened in).
pub fn spec() -> MbsSpec {
    MbsSpec { chains: 2, validators: 4, bob_validators: 4, ..MbsSpec::default() }
}

/// `xchain up --json --chains 2 --validators 4`, then `extra`, then `--dir d`.
pub fn up_with(d: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["xchain", "up", "--json", "--chains", "2", "--validators", "4"])
        .args(extra)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap()
}

/// `xchain up … --epochs 1 --dir d`, asserted to succeed.
pub fn up(d: &Path) {
    let first = up_with(d, &["--epochs", "1"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
}

/// `xchain resume --json --chains 2 --validators 4`, then `extra`, then `--dir d`.
pub fn resume(d: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["xchain", "resume", "--json", "--chains", "2", "--validators", "4"])
        .args(extra)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap()
}

/// [`up`] in `d`, then the deployment opened with development account 7
/// providing 1,000,000 of liquidity on every chain and 1,000,000 Token_B.
pub fn up_pooled(d: &Path) -> BobMbs {
    up(d);
    let mut m = BobMbs::open(d, spec()).unwrap();
    let p = dev_key(7);
    for c in m.chain_ids() {
        m.provide_liquidity(&p, c, 1_000_000).unwrap();
    }
    m.provide_token_b(&p, 1_000_000).unwrap();
    m
}

/// [`up_pooled`], and the swap's sender and receiver (development accounts
/// 0 and 1) each deposit 1,000,000 Token_B.
pub fn up_funded(d: &Path) -> BobMbs {
    let mut m = up_pooled(d);
    m.deposit_token_b(&dev_key(0), 1_000_000).unwrap();
    m.deposit_token_b(&dev_key(1), 1_000_000).unwrap();
    m
}

/// An honest swap of 500 from chain 0 to chain 1 between development
/// accounts 0 (sender) and 1 (receiver), salt 9, up to the sender's native
/// transfer: the CCT accepted by the BoB, its native window reached, the
/// sender's NT signed but sent nowhere. Returns the CCT's id, its record
/// and that NT.
pub fn honest_swap_to_nt(m: &mut BobMbs) -> (Hash32, CctRecord, SignedTransaction) {
    let (s, r) = (dev_key(0), dev_key(1));
    let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
    let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 9 };
    let terms = m.terms(&req).unwrap();
    let id = terms.id();
    m.bob_ok(&m.cct_tx(&s, &r, terms)).unwrap();
    let rec = m.cct(&id).unwrap();
    m.wait_native_window(&rec).unwrap();
    let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
    (id, rec, nt)
}

/// The sender's NT (from [`honest_swap_to_nt`]) sent to chain 0 and its
/// copy posted to the BoB (`post_nt`) — a swap that stops right after is
/// one whose sender paid and said so.
pub fn pay_and_post(m: &mut BobMbs, id: Hash32, nt: SignedTransaction) {
    let ci = m.chain_ids()[0];
    m.external_mut(ci).unwrap().submit(&nt).unwrap();
    let post = m.bob_call(&dev_key(0), "post_nt", &PostNt { cct: id, side: Side::Sender, nt }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
}
