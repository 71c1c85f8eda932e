//! Fifth attack round on `gridledger xchain …`: `xchain resume`. Every
//! test here is a finding: it asserts what a careful user would expect and
//! fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-cli --test attack_xchain_r5 -- --ignored`.

mod common;

use std::path::Path;

use common::xchain::{honest_swap_to_nt, pay_and_post, resume, spec, up_funded, up_pooled, up_with};
use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_xchain::mbs::{BobMbs, SwapRequest};

/// One stranger's CCT stops `xchain resume` from closing anyone's.
///
/// `resume` walks the open CCTs in block order and, for each, sends the
/// first-stage CCT_V signed with the CCT's sender's key, looked up among
/// the deployment's development accounts; a CCT whose sender is any other
/// BoB account aborts the whole run ("its sender is not a dev account of
/// this deployment"), before the CCTs after it are looked at. Anyone with
/// a BoB account (funded by a plain transfer from a dev account) opens a
/// CCT with a counterparty that agrees and withholds; every honest CCT
/// that an interrupted swap left open after it now stays open: the honest
/// sender who paid and posted its NT is never proved by `resume`, and
/// `resume` exits 1 every time.
///
/// Expected: `resume` closes the honest CCT (its posted NT proved, the
/// withholding receiver penalised) and closes or skips the stranger's —
/// CCT_V may be sent by anyone, e.g. the relayer with its next nonce
/// after the epoch's relays. Observed: exit status 1 and the honest CCT
/// still open.
#[test]
fn a_strangers_cct_stops_resume_closing_the_honest_one() {
    let dir = tempfile::tempdir().unwrap();
    let (out, honest, _) = strangers_cct_then_an_honest_one(dir.path(), false);
    let m = BobMbs::open(dir.path(), spec()).unwrap();
    let rec = m.cct(&honest).unwrap();
    assert!(
        out.status.success() && rec.complete,
        "resume: exit {:?}, stderr {}; the honest CCT: complete {}, sender {:?}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim(),
        rec.complete,
        rec.sender
    );
}

/// R5-9, a CCT between two strangers (neither key is here): `resume`
/// skips it and says so, closes the honest one and exits 0; the skipped
/// CCT is left as it was.
#[test]
fn resume_skips_and_reports_a_cct_it_cannot_act_for() {
    let dir = tempfile::tempdir().unwrap();
    let (out, honest, theirs) = strangers_cct_then_an_honest_one(dir.path(), true);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{v}");
    assert_eq!(skipped[0]["cct"], serde_json::json!(theirs.to_string()), "{v}");
    let closed = v["closed"].as_array().unwrap();
    assert_eq!(closed.len(), 1, "{v}");
    assert_eq!(closed[0]["cct"], serde_json::json!(honest.to_string()), "{v}");
    let m = BobMbs::open(dir.path(), spec()).unwrap();
    assert!(m.cct(&honest).unwrap().complete);
    let rec = m.cct(&theirs).unwrap();
    assert!(!rec.complete && !rec.verified, "resume acted on a CCT it cannot act for: {rec:?}");
}

/// `xchain up`, then a CCT of a stranger (with dev 2, or with a second
/// stranger) whose parties both walk away, then an honest swap interrupted
/// after the sender paid and posted; then `xchain resume`. Returns its
/// output, the honest CCT and the stranger's.
fn strangers_cct_then_an_honest_one(
    d: &Path,
    two_strangers: bool,
) -> (std::process::Output, gridledger_core::Hash32, gridledger_core::Hash32) {
    let honest = {
        let mut m = up_pooled(d);
        let (s, r) = (dev_key(0), dev_key(1));
        // A stranger's BoB account, funded by a plain transfer.
        let stranger = KeyPair::from_seed("a stranger");
        let bob = m.bob.chain_id();
        let fund = transfer(
            &dev_key(5),
            bob,
            m.bob.next_nonce(&dev_key(5).address()),
            stranger.address(),
            Amount(100_000_000),
            Amount(1),
        );
        let fund = m.bob.sign(&dev_key(5), fund);
        m.bob.submit(&fund).unwrap();
        let other = if two_strangers {
            let other = KeyPair::from_seed("another stranger");
            let nonce = m.bob.next_nonce(&dev_key(5).address());
            let fund = transfer(&dev_key(5), bob, nonce, other.address(), Amount(100_000_000), Amount(1));
            let fund = m.bob.sign(&dev_key(5), fund);
            m.bob.submit(&fund).unwrap();
            other
        } else {
            dev_key(2)
        };
        m.tick().unwrap();
        for who in [&s, &r, &stranger, &other] {
            m.deposit_token_b(who, 1_000_000).unwrap();
        }
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        // The stranger's CCT (with `other`, who agrees); both then walk away.
        let req = SwapRequest {
            sender: stranger.clone(),
            receiver: other.clone(),
            chain_i: ci,
            chain_j: cj,
            x_j: 300,
            salt: 1,
        };
        let terms = m.terms(&req).unwrap();
        let theirs = terms.id();
        m.bob_ok(&m.cct_tx(&stranger, &other, terms)).unwrap();
        // An honest swap interrupted after the sender paid and posted.
        let (id, _, nt) = honest_swap_to_nt(&mut m);
        pay_and_post(&mut m, id, nt);
        (id, theirs)
        // The driver stops here.
    };
    (resume(d, &[]), honest.0, honest.1)
}

/// `resume` never closes a CCT whose posted NT's header the BoB no longer
/// keeps.
///
/// For a posted NT that is on its chain, `resume` sends `prove` every epoch
/// and counts that as having acted; it sends the first-stage CCT_V only in
/// an epoch in which it did not act. Once the NT's block has left the κ_i
/// headers the BoB keeps (the deployment ran on after the interrupted swap
/// — other swaps, `xchain up --epochs N --dir D` — before anyone resumed),
/// every `prove` reverts (`StaleHeader`), so `resume` "acts" in every epoch,
/// never sends CCT_V, burns the payer's gas on a reverted `prove` each
/// epoch, and gives up after `--max-epochs` with the CCT still open and
/// both deposits' locks held.
///
/// Expected: `resume` ends with the CCT complete (a `prove` that reverted
/// does not count as acting: CCT_V once the deadlines passed).
/// Observed: exit 1, "still open after 60 epochs", the CCT open, and a
/// reverted `prove` of the sender in each of those epochs.
#[test]
fn resume_never_closes_a_cct_whose_posted_nt_is_no_longer_provable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, sender_nonce) = {
        let mut m = up_funded(d);
        let (id, _, nt) = honest_swap_to_nt(&mut m);
        pay_and_post(&mut m, id, nt);
        // The driver stops here; the deployment runs on for 40 epochs.
        m.ticks(40).unwrap();
        assert!(!m.cct(&id).unwrap().complete);
        (id, m.bob.next_nonce(&dev_key(0).address()))
    };
    let out = resume(d, &["--max-epochs", "60"]);
    let m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id).unwrap();
    let sent = m.bob.next_nonce(&dev_key(0).address()) - sender_nonce;
    // The sender paid: its posted NT is proved against the accumulator of
    // relayed headers (`prove_relayed`), not penalised; the receiver withheld.
    assert!(
        matches!(rec.sender, gridledger_xchain::SideState::Proved { .. })
            && rec.receiver == gridledger_xchain::SideState::Penalised,
        "sender {:?}, receiver {:?}; resume: {}",
        rec.sender,
        rec.receiver,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(sent <= 3, "resume sent {sent} BoB transactions for the sender (at most 2 reverted proves and CCT_V)");
    assert!(
        out.status.success() && rec.complete,
        "resume: exit {:?}, stderr {}; the CCT: complete {}, verified {}; the sender sent {} BoB transactions meanwhile",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim(),
        rec.complete,
        rec.verified,
        m.bob.next_nonce(&dev_key(0).address()) - sender_nonce
    );
}

/// R5-6 from the command line: `xchain up --dir D` again with another
/// `--kappa` or `--probabilistic` is refused naming the field, and the
/// deployment still opens with its own shape.
#[test]
fn up_again_with_another_shape_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let up = |extra: &[&str]| up_with(d, &[&["--epochs", "1"], extra].concat());
    let first = up(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let height = BobMbs::open(d, spec()).unwrap().bob.height();
    for (extra, field) in [(&["--kappa", "4"][..], "kappa"), (&["--probabilistic", "1"][..], "finality")] {
        let out = up(extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(&format!("created with {field} =")), "{extra:?}: {err}");
    }
    assert_eq!(BobMbs::open(d, spec()).unwrap().bob.height(), height, "the refused runs changed the deployment");
}
