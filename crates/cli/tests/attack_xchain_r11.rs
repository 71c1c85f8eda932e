//! Eleventh attack round on `gridledger xchain …`: `xchain resume` and the
//! parties' wallet registry (attack R10). Every test here is a finding: it
//! asserts what a careful user would expect and fails on the code it was
//! written against; each is marked `#[ignore = "attack r11 [k]: ..."]`
//! until it is fixed.

mod common;

use std::process::Command;

use common::xchain::{resume, spec, up, up_funded, up_with};
use common::BIN;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::{Behaviour, BobMbs, SwapRequest};
use gridledger_xchain::{Side, SideState};

/// `xchain resume` closes the CCTs a killed driver left open but never
/// gives back their wallet triples: it only calls `release_unstored_terms`,
/// which skips every *stored* CCT, and nothing else releases the terms of a
/// CCT resume completes. When the side of the killed driver's party ended
/// penalised without paying (the driver died after the CCT was stored and
/// before it paid), the party's nonce `n` on its chain is still unspent
/// and its registry holds it for ever: the terms builder names `n + 1`
/// for every later exchange of that party on that chain, each NT is
/// refused by the chain as a nonce gap, and every later exchange of the
/// party there fails or ends penalised — a permanent freeze from one crash.
///
/// Expected: after resume closed the CCT, the next honest swap of the same
/// parties completes with both sides `Proved` (resume releases the terms of
/// the CCTs it completes, as `swap` does at completion).
/// Observed (before the fix): the registry still held the closed CCT's
/// sender nonce; the next swap's sender NT carried `n + 1` and could not
/// land. Now resume voids the unspent nonce and gives it back once spent.
#[test]
fn resume_gives_back_the_nonces_of_the_ccts_it_closes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (s, r) = (dev_key(0), dev_key(1));
    let (id, ci, cj, nonce_i) = {
        let mut m = up_funded(d);
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        m.wait_caught_up(&[ci, cj]).unwrap();
        let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 41 };
        let terms = m.try_terms(&req).unwrap();
        m.check_floors(&terms).unwrap();
        // The driver agrees through the wallet and stores the CCT, as
        // `swap` does, then dies before the sender pays.
        let cct = m.wallet_cct_tx(&s, &r, terms.clone()).unwrap();
        m.wallet.agree(&terms).unwrap();
        m.bob_ok(&cct).unwrap();
        let id = terms.id();
        let rec = m.cct(&id).unwrap();
        m.wait_native_window(&rec).unwrap();
        // The receiver's own driver pays and posts.
        let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
        m.external_mut(cj).unwrap().submit(&nt_r).unwrap();
        let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r }, Amount::ZERO);
        m.bob_ok(&post).unwrap();
        (id, ci, cj, terms.nonce_i)
    };
    let out = resume(d, &["--max-epochs", "200"]);
    let mut m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id).unwrap();
    assert!(
        rec.complete,
        "resume closed the CCT: {rec:?}; exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(rec.sender, SideState::Penalised, "the sender never paid");
    let held = m.wallet.entry(ci, &s.address(), nonce_i).unwrap();
    let next = m.next_agreeable_nonce(ci, &s.address()).unwrap();
    let chain_next = m.external(ci).unwrap().next_nonce(&s.address());
    let again = m.swap(
        &SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 42 },
        Behaviour::Honest,
    );
    let outcome = again.as_ref().map(|rep| (rep.record.sender, rep.record.receiver));
    assert!(
        matches!(outcome, Ok((SideState::Proved { .. }, SideState::Proved { .. }))),
        "after resume: wallet entry for the closed CCT's nonce {nonce_i}: {held:?}; next agreeable sender nonce \
         {next}, chain's next nonce {chain_next}; the next honest swap: {outcome:?}"
    );
}

/// Held up: a `kill -9` of `xchain up --dir D` while it runs (its
/// databases open, their `.open-lock` files beside them) leaves a
/// deployment the next `xchain up` opens: the lock files are advisory
/// locks the kernel drops with the process, never a "stale lock" refusal.
#[test]
fn a_killed_deployment_with_its_lock_files_left_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    up(d);
    let mut child = Command::new(BIN)
        .args(["xchain", "up", "--json", "--epochs", "1000000", "--chains", "2", "--validators", "4"])
        .arg("--dir")
        .arg(d)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until it has committed blocks past the first run's (the BoB's
    // database grows; at most 5 s, redb may have the room already), then
    // kill it mid-run.
    let db = d.join("bob").join("chain.redb");
    let size0 = std::fs::metadata(&db).unwrap().len();
    for _ in 0..100 {
        if std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) > size0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let locks = std::fs::read_dir(d.join("bob"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".open-lock"))
        .count();
    let again = up_with(d, &["--epochs", "1"]);
    assert!(
        again.status.success(),
        "after kill -9 ({locks} lock files left in bob/) the deployment does not open: {}",
        String::from_utf8_lossy(&again.stderr).trim()
    );
}
