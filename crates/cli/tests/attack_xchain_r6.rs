//! Sixth attack round on `gridledger xchain …`: `xchain resume` after a
//! driver died mid-swap. Every test here is a finding: it asserts what a
//! careful user would expect and fails on the code it was written against,
//! so each is marked `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-cli --test attack_xchain_r6 -- --ignored`.

mod common;

use common::xchain::{honest_swap_to_nt, resume, spec, up_funded};
use gridledger_xchain::mbs::BobMbs;
use gridledger_xchain::{Side, SideState};

/// A swap driver killed between paying an NT and posting it leaves the
/// payer penalised by `xchain resume`, although its payment landed in the
/// window.
///
/// Phase 2 of every driver (`xchain swap --processes`' `procs::swap`, the
/// embedded `BobMbs::swap`) sends each side's NT to its chain first and
/// then its copy to the BoB (`post_nt`). Killed in between (kill -9, power
/// loss), the sender's NT lands on chain i while the BoB never hears of it.
/// `xchain resume` then proves only *posted* NTs; everything else it
/// leaves to CCT_V, whose first stage penalises every pending side that
/// posted nothing. SC_MPV's `prove` needs no posted copy (any final
/// inclusion proof of a transfer matching IN_s with a nonce at or above the
/// floor proves it), and the NT is on chain i in time — yet `resume` never
/// sends it. Result: the sender paid x_i Token_i to the receiver on chain i
/// and is penalised as a withholder; with the receiver (who had not paid
/// yet) penalised as well, the deposits cancel and the receiver keeps the
/// x_i it got for nothing — the exchange is not atomic.
///
/// Expected: `resume` finds a landed NT of a pending side of its own (a
/// transfer on the side's chain from the payer to the payee of exactly the
/// instruction's amount with a nonce ≥ the terms' floor) and proves it, so
/// the sender ends `Proved` and only the receiver, who withheld, is
/// penalised. Observed: the sender ends `Penalised`.
///
/// Suggested fix: in `resume`, for each pending side whose payer's key is
/// here, look for the instruction's transfer on its chain from the terms'
/// nonce floor on (the payer's transactions since the CCT) and prove it
/// (`prove` / `prove_relayed`); and in the drivers, post the NT to the BoB
/// (or journal it) before sending it to its chain, so a crash never leaves
/// a payment the deployment does not know about.
#[test]
fn resume_penalises_a_payer_whose_nt_landed_but_was_not_posted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, paid_height) = {
        let mut m = up_funded(d);
        let ci = m.chain_ids()[0];
        let (id, rec, nt) = honest_swap_to_nt(&mut m);
        // The sender's NT goes to chain i; the driver dies before post_nt.
        m.external_mut(ci).unwrap().submit(&nt).unwrap();
        m.ticks(2).unwrap();
        let (h, _) = m.external(ci).unwrap().tx_proof(&nt.hash()).unwrap().expect("the NT landed on chain i");
        assert!(h > rec.e_i + m.spec.kappa_bar && h < rec.deadline_i, "in SC_MPV's window");
        (id, h)
    };
    let out = resume(d, &["--max-epochs", "60"]);
    let m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id).unwrap();
    assert!(
        matches!(rec.sender, SideState::Proved { .. }) && rec.receiver == SideState::Penalised,
        "the sender's NT landed at height {paid_height} of chain i (deadline {}), yet: sender {:?}, receiver {:?}, \
         complete {}; resume exit {:?}: {}",
        rec.deadline_i,
        rec.sender,
        rec.receiver,
        rec.complete,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
}

/// The fix's other half: a driver killed after journaling its NT but
/// before sending it leaves the payment in the deployment's NT journal;
/// `resume` sends it while the window is open and proves it, so the payer
/// ends `Proved` (and the exit status is 0: the only penalised side, the
/// receiver, paid nothing).
#[test]
fn resume_sends_and_proves_a_journaled_nt_that_never_left() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (id, nt_hash, ci) = {
        let mut m = up_funded(d);
        let ci = m.chain_ids()[0];
        let (id, _, nt) = honest_swap_to_nt(&mut m);
        // Journaled; the driver dies before sending it anywhere.
        gridledger_xchain::journal::record(d, &id, Side::Sender, &nt).unwrap();
        assert!(m.external(ci).unwrap().tx_proof(&nt.hash()).unwrap().is_none());
        (id, nt.hash(), ci)
    };
    let out = resume(d, &["--max-epochs", "60"]);
    let m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id).unwrap();
    assert!(m.external(ci).unwrap().tx_proof(&nt_hash).unwrap().is_some(), "resume sent the journaled NT");
    assert!(
        matches!(rec.sender, SideState::Proved { .. }) && rec.receiver == SideState::Penalised && rec.complete,
        "sender {:?}, receiver {:?}; resume: {}",
        rec.sender,
        rec.receiver,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
