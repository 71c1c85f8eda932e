//! Sixth attack round on `gridledger xchain …`: `xchain resume` after a
//! driver died mid-swap. Every test here is a finding: it asserts what a
//! careful user would expect and fails on the code it was written against,
//! so each is marked `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-cli --test attack_xchain_r6 -- --ignored`.

use std::process::Command;

use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest};
use gridledger_xchain::{Side, SideState};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

/// The spec `xchain up --chains 2 --validators 4` runs (its genesis time
/// comes from the directory).
fn spec() -> MbsSpec {
    MbsSpec { chains: 2, validators: 4, bob_validators: 4, ..MbsSpec::default() }
}

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
    let first = Command::new(BIN)
        .args(["xchain", "up", "--json", "--chains", "2", "--validators", "4", "--epochs", "1", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (id, paid_height) = {
        let mut m = BobMbs::open(d, spec()).unwrap();
        let (s, r, p) = (dev_key(0), dev_key(1), dev_key(7));
        for c in m.chain_ids() {
            m.provide_liquidity(&p, c, 1_000_000).unwrap();
        }
        m.provide_token_b(&p, 1_000_000).unwrap();
        m.deposit_token_b(&s, 1_000_000).unwrap();
        m.deposit_token_b(&r, 1_000_000).unwrap();
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 9 };
        let terms = m.terms(&req);
        let id = terms.id();
        m.bob_ok(&m.cct_tx(&s, &r, terms)).unwrap();
        let rec = m.cct(&id).unwrap();
        m.wait_native_window(&rec).unwrap();
        // The sender's NT goes to chain i; the driver dies before post_nt.
        let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
        m.external_mut(ci).unwrap().submit(&nt).unwrap();
        m.ticks(2).unwrap();
        let (h, _) = m.external(ci).unwrap().tx_proof(&nt.hash()).unwrap().expect("the NT landed on chain i");
        assert!(h > rec.e_i + m.spec.kappa_bar && h < rec.deadline_i, "in SC_MPV's window");
        (id, h)
    };
    let out = Command::new(BIN)
        .args(["xchain", "resume", "--json", "--chains", "2", "--validators", "4", "--max-epochs", "60", "--dir"])
        .arg(d)
        .output()
        .unwrap();
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
    let first = Command::new(BIN)
        .args(["xchain", "up", "--json", "--chains", "2", "--validators", "4", "--epochs", "1", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (id, nt_hash, ci) = {
        let mut m = BobMbs::open(d, spec()).unwrap();
        let (s, r, p) = (dev_key(0), dev_key(1), dev_key(7));
        for c in m.chain_ids() {
            m.provide_liquidity(&p, c, 1_000_000).unwrap();
        }
        m.provide_token_b(&p, 1_000_000).unwrap();
        m.deposit_token_b(&s, 1_000_000).unwrap();
        m.deposit_token_b(&r, 1_000_000).unwrap();
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 9 };
        let terms = m.terms(&req);
        let id = terms.id();
        m.bob_ok(&m.cct_tx(&s, &r, terms)).unwrap();
        let rec = m.cct(&id).unwrap();
        m.wait_native_window(&rec).unwrap();
        // Journaled; the driver dies before sending it anywhere.
        let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
        gridledger_xchain::journal::record(d, &id, Side::Sender, &nt).unwrap();
        assert!(m.external(ci).unwrap().tx_proof(&nt.hash()).unwrap().is_none());
        (id, nt.hash(), ci)
    };
    let out = Command::new(BIN)
        .args(["xchain", "resume", "--json", "--chains", "2", "--validators", "4", "--max-epochs", "60", "--dir"])
        .arg(d)
        .output()
        .unwrap();
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
