//! Seventh attack round on `gridledger xchain …`: `xchain resume` and the
//! NT journal (round 6's fix). Every test here is a finding: it asserts
//! what a careful user would expect and fails on the code it was written
//! against. It was marked `#[ignore = "attack r7 [k]: ..."]` until fixed;
//! it is fixed and runs with the suite.

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

/// One unreadable NT journal entry stops `xchain resume` for every CCT,
/// so payers whose payments landed are left to CCT_V's penalty.
///
/// `resume` reads each pending side's journal entry with
/// `journal::read(..)?`: an entry that does not decode (a torn or
/// truncated file — a disk that lost the tail of a write, a copy of the
/// deployment directory taken mid-write, a file system without atomic
/// rename) is a `JournalError::Corrupt` that ends the whole command with
/// an error, before its first epoch. No CCT is proved, none is closed, and
/// every later `resume` stops at the same entry. Here CCT A's sender paid
/// on chain i in the window (its driver died before posting, R6-3's
/// case, which `resume` handles on its own) and CCT B's sender journal
/// entry holds half of an NT: A's sender is never proved, and the
/// counterparty's CCT_V after the deadline penalises it for a payment it
/// made.
///
/// Expected: `resume` reports the unreadable entry under its CCT (and
/// treats it as "no journaled NT": it still looks for the payment on the
/// chain), and closes the other CCTs as usual: A's sender ends `Proved`.
/// Observed: `resume` exits with "NT journal …: not a signed transaction"
/// and A's sender stays `Pending`.
///
/// Suggested fix: in `resume`, turn a `JournalError` for one CCT side into
/// a note on that CCT (and fall through to `find_payment`), never a `?`
/// that ends the command.
///
/// Fixed: `resume` notes the unreadable entry under its CCT and goes on.
#[test]
fn one_torn_journal_entry_stops_resume_for_every_cct() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = Command::new(BIN)
        .args(["xchain", "up", "--json", "--chains", "2", "--validators", "4", "--epochs", "1", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (id_a, paid_height) = {
        let mut m = BobMbs::open(d, spec()).unwrap();
        let (s, r, p) = (dev_key(0), dev_key(1), dev_key(7));
        for c in m.chain_ids() {
            m.provide_liquidity(&p, c, 1_000_000).unwrap();
        }
        m.provide_token_b(&p, 1_000_000).unwrap();
        m.deposit_token_b(&s, 1_000_000).unwrap();
        m.deposit_token_b(&r, 1_000_000).unwrap();
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        // CCT A: its sender's NT lands on chain i; the driver dies before post_nt.
        let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 9 };
        let terms = m.terms(&req).unwrap();
        let id_a = terms.id();
        m.bob_ok(&m.cct_tx(&s, &r, terms)).unwrap();
        let rec = m.cct(&id_a).unwrap();
        m.wait_native_window(&rec).unwrap();
        let nt = m.native_tx(&rec, Side::Sender, &s).unwrap();
        m.external_mut(ci).unwrap().submit(&nt).unwrap();
        m.ticks(2).unwrap();
        let (h, _) = m.external(ci).unwrap().tx_proof(&nt.hash()).unwrap().expect("A's NT landed on chain i");
        assert!(h > rec.e_i + m.spec.kappa_bar && h < rec.deadline_i, "in SC_MPV's window");
        // CCT B (another pair of the deployment's accounts): its driver
        // died while its sender's journal entry was being written.
        let (s2, r2) = (dev_key(2), dev_key(3));
        m.deposit_token_b(&s2, 1_000_000).unwrap();
        m.deposit_token_b(&r2, 1_000_000).unwrap();
        let req =
            SwapRequest { sender: s2.clone(), receiver: r2.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 10 };
        let terms = m.terms(&req).unwrap();
        let id_b = terms.id();
        m.bob_ok(&m.cct_tx(&s2, &r2, terms)).unwrap();
        let rec_b = m.cct(&id_b).unwrap();
        let nt_b = m.native_tx(&rec_b, Side::Sender, &s2).unwrap();
        let bytes = nt_b.to_bytes();
        let path = gridledger_xchain::journal::entry_path(d, &id_b, Side::Sender);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        (id_a, h)
    };
    let out = Command::new(BIN)
        .args(["xchain", "resume", "--json", "--chains", "2", "--validators", "4", "--max-epochs", "60", "--dir"])
        .arg(d)
        .output()
        .unwrap();
    let m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id_a).unwrap();
    assert!(
        matches!(rec.sender, SideState::Proved { .. }),
        "CCT A's sender paid at height {paid_height} of chain i (deadline {}), yet after resume it is {:?} \
         (receiver {:?}); resume exit {:?}: {} {}",
        rec.deadline_i,
        rec.sender,
        rec.receiver,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}
