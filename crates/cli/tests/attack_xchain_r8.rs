//! Eighth attack round on `gridledger xchain …`: `xchain resume` on a
//! deployment whose external chains finalise probabilistically. Every
//! test here is a finding: it asserts what a careful user would expect
//! and fails on the code it was written against; each is marked
//! `#[ignore = "attack r8 [k]: ..."]` until it is fixed.

use std::process::Command;

use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::headers::Finality;
use gridledger_xchain::mbs::{BobMbs, MbsSpec, SwapRequest};
use gridledger_xchain::{Side, SideState};

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");
/// K: the external chains' confirmations.
const K: u32 = 3;

/// The spec `xchain up --chains 2 --validators 4 --probabilistic 3` runs
/// (its genesis time comes from the directory).
fn spec() -> MbsSpec {
    MbsSpec {
        chains: 2,
        validators: 4,
        bob_validators: 4,
        finality: Finality::Probabilistic { k: K },
        ..MbsSpec::default()
    }
}

/// `xchain resume` sends a journaled NT that never left but does not post
/// it, so on a chain with K ≥ 2 confirmations a payment resume itself made
/// is penalised as withholding: the payer loses `x_i` on its chain *and*
/// `x_B` of its deposit.
///
/// `resume` sends a journaled NT "while its chain is still before the
/// deadline" (`height + 1 < deadline`) and then waits to prove it once
/// final (`tip ≥ height + K`). It never sends `post_nt`. When it starts
/// with the chain at `deadline − 2` (the driver died after journaling, the
/// chains ran on), the NT lands at `deadline − 1` and is final at
/// `deadline − 1 + K > deadline`; at `deadline` resume itself sends the
/// first-stage CCT_V, which finds the side neither proved nor posted
/// (sub-situation 1) and penalises it. Resume then exits non-zero with
/// "penalised although their payment is on its chain". Had it posted the
/// NT (allowed until the deadline), CCT_V would have opened sub-situation
/// 2 and the proof would have landed inside the forwarding window; had it
/// not sent the NT at all, the payer would have lost only `x_B`.
///
/// Expected: the sender's side ends `Proved` (or at least not penalised
/// for a payment resume made on its behalf).
/// Observed: `Penalised`, `x_i` paid to the receiver on chain i.
///
/// Suggested fix: when resume sends a journaled NT, it also posts it to
/// the BoB (`post_nt`, before the deadline), as the driver would have; if
/// the post cannot get in before the deadline, it does not send the NT.
#[test]

fn resume_posts_the_journaled_nt_it_sends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let k = K.to_string();
    let shape = ["--chains", "2", "--validators", "4", "--probabilistic", k.as_str()];
    let first = Command::new(BIN)
        .args(["xchain", "up", "--json", "--epochs", "1"])
        .args(shape)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let (id, ci, paid_before) = {
        let mut m = BobMbs::open(d, spec()).unwrap();
        let (s, r, p) = (dev_key(0), dev_key(1), dev_key(7));
        for c in m.chain_ids() {
            m.provide_liquidity(&p, c, 1_000_000).unwrap();
        }
        m.provide_token_b(&p, 1_000_000).unwrap();
        m.deposit_token_b(&s, 1_000_000).unwrap();
        m.deposit_token_b(&r, 1_000_000).unwrap();
        let (ci, cj) = (m.chain_ids()[0], m.chain_ids()[1]);
        let req = SwapRequest { sender: s.clone(), receiver: r.clone(), chain_i: ci, chain_j: cj, x_j: 500, salt: 21 };
        let terms = m.try_terms(&req).unwrap();
        let id = terms.id();
        m.bob_ok(&m.cct_tx(&s, &r, terms)).unwrap();
        let rec = m.cct(&id).unwrap();
        assert_eq!(rec.deadline_i, rec.deadline_j, "both chains tick together");
        m.wait_native_window(&rec).unwrap();
        // The driver journals the sender's NT and dies before sending it.
        let nt_s = m.native_tx(&rec, Side::Sender, &s).unwrap();
        gridledger_xchain::journal::record(d, &id, Side::Sender, &nt_s).unwrap();
        // The receiver pays and posts (its own driver did its part).
        let nt_r = m.native_tx(&rec, Side::Receiver, &r).unwrap();
        m.external_mut(cj).unwrap().submit(&nt_r).unwrap();
        let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r }, Amount::ZERO);
        m.bob_ok(&post).unwrap();
        // The chains ran on until two blocks before the deadline.
        while m.external(ci).unwrap().height() + 2 < rec.deadline_i {
            m.tick().unwrap();
        }
        assert_eq!(m.external(ci).unwrap().height() + 2, rec.deadline_i);
        assert_eq!(m.cct(&id).unwrap().sender, SideState::Pending);
        (id, ci, m.external(ci).unwrap().account(&s.address()).balance.0)
    };
    let out = Command::new(BIN)
        .args(["xchain", "resume", "--json", "--max-epochs", "80"])
        .args(shape)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap();
    let m = BobMbs::open(d, spec()).unwrap();
    let rec = m.cct(&id).unwrap();
    let paid_after = m.external(ci).unwrap().account(&dev_key(0).address()).balance.0;
    assert!(
        rec.sender != SideState::Penalised,
        "resume sent the sender's journaled NT (chain i balance {paid_before} -> {paid_after}) and the sender \
         ended {:?} (receiver {:?}); resume exit {:?}: {} {}",
        rec.sender,
        rec.receiver,
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// A `kill -9` while a deployment's BoB database is being created leaves a
/// directory that no command can open again.
///
/// Killing `xchain swap --dir D` (embedded, 2 chains) at random instants
/// (48 runs, 31 killed, delays 0.05–1.2 s) left `D/bob/chain.redb` as a
/// 1 MiB file whose header was never written (its first bytes zero) in 3
/// runs: the kill landed inside `redb::Database::create` of the BoB's
/// database, after `deployment-shape`, `genesis-time` and both external
/// chains were written. From then on `xchain up`, `swap` and `resume` on
/// `D` all stop with "database: I/O error: Not a redb database: magic
/// number mismatch". A redb file without its magic number was never
/// initialised, so it holds no committed block: nothing can be lost by
/// creating it again, yet the deployment is stuck until someone deletes
/// files by hand (and deleting the wrong one loses a chain).
///
/// Here the torn file is made directly: the deployment is created, then
/// the BoB's database is replaced by what such a kill leaves (a file of
/// zeros of redb's initial size; it had only the BoB's genesis).
///
/// Expected: `xchain up --dir D` opens the deployment (creating the BoB's
/// database again from its genesis), or at least names the file and how
/// to recover.
/// Observed: "Not a redb database: magic number mismatch", every time.
///
/// Suggested fix: create a chain's database under a temporary name and
/// rename it into place once its genesis is committed (so a kill leaves
/// either no file or a complete one), or treat a database file without
/// redb's magic number as absent.
#[test]

fn a_deployment_whose_bob_database_creation_was_killed_can_be_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let shape = ["--chains", "2", "--validators", "4"];
    let first = Command::new(BIN)
        .args(["xchain", "up", "--json", "--epochs", "0"])
        .args(shape)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // What a kill inside the BoB database's creation leaves.
    let db = d.join("bob").join("chain.redb");
    assert!(db.exists());
    std::fs::write(&db, vec![0u8; 1 << 20]).unwrap();
    let again = Command::new(BIN)
        .args(["xchain", "up", "--json", "--epochs", "1"])
        .args(shape)
        .arg("--dir")
        .arg(d)
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "the deployment cannot be opened again: {}",
        String::from_utf8_lossy(&again.stderr).trim()
    );
}

/// The pid of the running process whose command line holds `needle`.
fn pid_with(needle: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmd = String::from_utf8_lossy(&cmd).to_string();
        let is_bin = cmd.split('\0').next().is_some_and(|a| a.ends_with("gridledger"));
        if is_bin && cmd.contains(needle) && cmd.contains("serve-chain") {
            return Some(pid);
        }
    }
    None
}

/// A validator process whose driver was killed before it connected never
/// exits, and holds its replica's database lock: `xchain up --processes
/// --dir D` then fails for good ("Database already open. Cannot acquire
/// lock.") until someone finds the process and kills it by hand.
///
/// `serve-chain` prints `listening <port>` and then blocks in
/// `TcpListener::accept` with no timeout; it exits only when the driver's
/// connection closes, which never happens if the driver never connected.
/// The driver reads that line on a helper thread and connects afterwards,
/// so a `kill -9` of the driver (`xchain swap --processes`, `up
/// --processes`) while it starts its validators leaves such a process:
/// found in 1 of 8 runs of `xchain swap --processes --chains 2` killed
/// at a random instant (BoB validator 3, still running minutes later, its
/// `chain.redb` open; the next `up --processes` on the directory failed
/// as above). The module's own documentation says "a driver that dies
/// leaves no process behind".
///
/// Here the driver's side is played by a shell that starts the process as
/// the driver does (stdin `/dev/null`, the first stdout line read, then
/// that pipe dropped) and is killed before connecting.
///
/// Expected: the validator process exits once its driver is gone (or no
/// driver connected within the driver's readiness timeout).
/// Observed: it is still running 40 s later.
///
/// Suggested fix: accept with a deadline (the `--chain-timeout` the
/// driver uses), and/or have the driver hand its children a pipe as
/// stdin whose end-of-file (the driver's death) makes them exit, or set
/// a parent-death signal.
#[test]

fn a_validator_process_whose_driver_died_before_connecting_exits() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("bob-v3");
    let script = format!(
        "'{BIN}' xchain serve-chain --role bob --validator 3 --chains 2 --validators 4 --kappa 16 \
         --genesis-time 591274485258 --dir '{}' </dev/null | head -n 1; sleep 600",
        replica.display()
    );
    let mut driver = Command::new("sh")
        .args(["-c", &script])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(driver.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.starts_with("listening "), "{first}");
    let needle = replica.display().to_string();
    let pid = pid_with(&needle).expect("the validator process runs");
    // The driver dies before it connects.
    driver.kill().unwrap();
    driver.wait().unwrap();
    let mut gone = false;
    for _ in 0..400 {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
        {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if !gone {
        // Clean up the process this test started.
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    assert!(gone, "validator process {pid} still runs 40 s after its driver died, its database locked");
}
