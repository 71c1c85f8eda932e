//! Fourth attack round on `gridledger xchain … --processes` (one process
//! per validator). Every test here is a finding: it asserts what a careful
//! user would expect and fails on the code it was written against, so each
//! was marked `#[ignore = "attack: ..."]` until fixed; all are fixed now,
//! each beside a companion test of its refusal or option. Run them with
//! `cargo test -p gridledger-cli --test attack_xchain_r4`.

mod common;

use std::path::Path;
use std::process::Command;

use common::xchain::{honest_swap_to_nt, pay_and_post, resume, spec, up_funded, up_with};
use common::BIN;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_xchain::mbs::{open_chain, pin_genesis_time, MbsSpec, NodeKey, Role};
use gridledger_xchain::replica::Replica;

fn up(dir: &Path, epochs: u64) -> std::process::Output {
    up_with(dir, &["--processes", "--epochs", &epochs.to_string()])
}

/// The driver dies after ONE commit vote. `Group::epoch` asks the first
/// 2f+1 validators *in index order* for their commit votes and stops at
/// the first refusal. Validators persist their votes (`votes.log`) and
/// refuse a second block at a height (`AlreadyVoted`). So if the driver is
/// killed (kill -9, a crash, a power cut) after validator 0 voted for the
/// leader's proposal A and before anything was committed — mid-`swap
/// --processes`, A holding a participant's transfer — the proposal is gone
/// with the leader's mempool; on `up --processes --dir D` again the leader
/// proposes a different block B at that height, validator 0 refuses it, and
/// the driver fails — every time, for good. Validators 1, 2 and 3 never
/// voted at that height and are a quorum (3 of 4) for B; the module's own
/// doc promises a stall only "if a crash falls after 2f+1 votes".
///
/// The crash state is made exactly as the processes make it: validator 0's
/// replica (in `<dir>/chain-0`, its vote log beside it) votes for the
/// proposal the scheduled leader (validator 3, `<dir>/chain-0-v3`) built
/// with a transfer in its mempool; nothing is committed.
///
/// Expected: the deployment resumes (B sealed by validators 1–3, or A
/// re-proposed). Observed: `up` exits 1 with "already voted for block …".
#[test]
fn a_crash_after_one_vote_bricks_the_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let first = up(d, 2);
    assert!(first.status.success(), "first up: {}", String::from_utf8_lossy(&first.stderr));
    let chain = d.join("chain-0");
    // A validator's process knows the BoB node's address only (the driver
    // keeps the node's key in the deployment's directory).
    let node = pin_genesis_time(d, spec()).unwrap().node_key.address();
    let spec = || MbsSpec { node_key: NodeKey::Address(node), ..spec() };
    {
        // The scheduled leader of height 3 (validator 3) proposes A with a transfer in its mempool.
        let (c, _) = open_chain(&d.join("chain-0-v3"), &spec(), Role::External(0)).unwrap();
        let first = c.chain_id();
        let domain = c.domain();
        let mut leader = Replica::new(c, 3).unwrap();
        assert_eq!(leader.height(), 2);
        assert_eq!(leader.leader_of(3), 3);
        let tx = transfer(&dev_key(0), first, 0, dev_key(1).address(), Amount(5), Amount(1));
        let tx = tx.tx.sign_in(&dev_key(0), Some(&domain));
        leader.submit(&tx).unwrap();
        let a = leader.propose(0).unwrap();
        assert_eq!(a.txs.len(), 1);
        // Validator 0 votes for A (logged); then the driver dies.
        let (c, _) = open_chain(&chain, &spec(), Role::External(0)).unwrap();
        let v0 = Replica::new(c, 0).unwrap().with_vote_log(&chain.join("votes.log")).unwrap();
        v0.vote(&a).unwrap();
    }
    let again = up(d, 2);
    assert!(
        again.status.success(),
        "one vote cast before a crash must not stop the deployment for good (3 of 4 validators never voted \
         at that height): {}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Honest CCDI users all eliminated. `xchain ccdi` opens its process with
/// κ = 1, so SC_F's deadline is `e_B + 1 · max κ_i` BoB epochs. With
/// probabilistic chains whose κ_i is k + 1 — a shape the CLI accepts
/// (`--probabilistic 1 --kappa 2`, `--probabilistic 3 --kappa 4`; κ_i must
/// only exceed k) — a lock sent at `e_B` is final k epochs after it lands
/// and its CCT reaches the BoB one epoch later: after the deadline, always.
/// `ccdi_open` accepts the terms, every honest user's item comes back
/// unchanged (Case 2*), and S_MUE eliminates every participant: with nobody
/// "honest" left, all six deposits are burned.
///
/// Expected: with no `--withhold`, nobody is eliminated (the deadline
/// leaves room for k confirmations and the relay, or such a shape/process
/// is refused up front). Observed: Case 2, `eliminated` 6 of 6.
#[test]
fn ccdi_on_probabilistic_chains_with_kappa_k_plus_1_eliminates_every_honest_user() {
    let out = Command::new(BIN)
        .args(["xchain", "ccdi", "--chains", "2", "--probabilistic", "1", "--kappa", "2", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rep = &v["report"];
    assert_eq!(
        rep["eliminated"], 0,
        "no user withheld, yet S_MUE eliminated {} (case1 {}, deadline {}, phases {})",
        rep["eliminated"], rep["case1"], rep["record"]["deadline"], rep["phases"]
    );
}

/// `xchain swap --amount` accepts 1 to 1,000,000 (its documented range), but
/// the swap's fixed setup deposits 1,000,000 Token_B per party, and SC_T
/// locks κ̄ · x_B ≈ 2 · amount of each deposit: every amount above about
/// 500,000 is refused by the BoB mid-run ("insufficient deposit: sender
/// needs more than 1999996 free Token_B, has 1000000") after the pool was
/// filled and the deposits made.
///
/// Expected: every amount the option accepts runs (the setup deposits
/// enough), or the option's range is what the setup can run. Observed:
/// `--amount 1000000` exits 1.
#[test]
fn swap_with_an_amount_the_option_accepts_is_refused_by_its_own_setup() {
    let out = Command::new(BIN).args(["xchain", "swap", "--chains", "2", "--amount", "1000000"]).output().unwrap();
    assert!(
        out.status.success(),
        "`--amount 1000000` is in the option's range 1..=1000000: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `swap --processes` loses the receiver's proof window. The BoB keeps a
/// header provable only while it is final and among the κ_i kept ones —
/// with `--probabilistic 1 --kappa 2` that is one BoB block (the relay cap
/// `(κ − k)/2` = 1 header a block guarantees no more). The embedded `swap`
/// proves both sides in the same block and completes with this shape; the
/// process driver proves them one after the other (`landed`, then
/// `bob_ok(prove)`, then the next side), so by the time it proves NT_r its
/// header — in the same block height as NT_s's — is no longer kept: the BoB
/// refuses the proof as stale and `swap --processes` exits 1, leaving the
/// CCT open with both native transfers paid (the receiver's can never be
/// proved now, so a later CCT_V would penalise it).
///
/// Expected: `swap --processes` completes with every shape the embedded
/// `swap` completes with (both sides `Proved`). Observed: "the BoB refused
/// prove: … header 14 of chain 102 is no longer kept".
#[test]
fn swap_over_processes_misses_a_one_block_proof_window_the_embedded_swap_meets() {
    let shape = ["xchain", "swap", "--chains", "2", "--probabilistic", "1", "--kappa", "2", "--json"];
    let embedded = Command::new(BIN).args(shape).output().unwrap();
    assert!(embedded.status.success(), "embedded: {}", String::from_utf8_lossy(&embedded.stderr));
    let processes = Command::new(BIN).args(shape).arg("--processes").output().unwrap();
    assert!(
        processes.status.success(),
        "the embedded swap completes with this shape; over processes: {}",
        String::from_utf8_lossy(&processes.stderr)
    );
}

/// The CCDI deadline's companion check (R4-14): a κ the user names whose
/// deadline `κ · max κ_i` leaves no room for a lock's K confirmations, the
/// relay and the CCT is refused before anything is sent, with the least κ
/// that would do; the derived default runs (the test above).
#[test]
fn ccdi_refuses_a_process_kappa_too_short_for_the_confirmations() {
    let out = Command::new(BIN)
        .args(["xchain", "ccdi", "--chains", "2", "--probabilistic", "1", "--kappa", "2", "--process-kappa", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "κ = 1 with κ_i = 2 and k = 1 must be refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--process-kappa 4 or more"), "{err}");
    assert!(out.stdout.is_empty(), "nothing ran: {}", String::from_utf8_lossy(&out.stdout));
}

/// R4-6b: `swap --processes` signs x_i within SC_AMM's quote ± the
/// slippage (`--slippage-bps`, default 1 %), no longer the open `[1,
/// u128::MAX]`; the CCT still executes at the quoted price.
#[test]
fn swap_over_processes_signs_bounded_x_i() {
    let out = Command::new(BIN)
        .args(["xchain", "swap", "--chains", "2", "--amount", "1000", "--processes", "--json", "--slippage-bps", "50"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let x_i: u128 = v["x_i"].as_str().unwrap().parse().unwrap();
    let min: u128 = v["bounds"][0].as_str().unwrap().parse().unwrap();
    let max: u128 = v["bounds"][1].as_str().unwrap().parse().unwrap();
    assert!(min <= x_i && x_i <= max, "x_i {x_i} within [{min}, {max}]");
    let tol = (x_i * 50).div_ceil(10_000);
    assert_eq!((min, max), (x_i - tol, x_i + tol), "quote ± 0.5 % (x_i is executed at the quote)");
    assert_ne!(max, u128::MAX, "the bound is no longer open");
}

/// An interrupted swap no longer leaves its CCT open for good: here the
/// swap stops after the sender paid its native transfer and posted it to
/// the BoB (the receiver never pays), nothing proved. `xchain resume
/// --dir` closes it as a BoB node does: the sender's posted transfer is
/// proved, the receiver is penalised by CCT_V after the deadline, and the
/// CCT is complete; a second `resume` finds nothing open.
#[test]
fn resume_closes_the_cct_an_interrupted_swap_left_open() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let id = {
        let mut m = up_funded(d);
        let (id, _, nt) = honest_swap_to_nt(&mut m);
        pay_and_post(&mut m, id, nt);
        assert!(!m.cct(&id).unwrap().complete);
        id
        // The driver stops here.
    };
    let out = resume(d, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let closed = v["closed"].as_array().unwrap();
    assert_eq!(closed.len(), 1, "{v}");
    assert_eq!(closed[0]["cct"], serde_json::json!(id.to_string()), "{v}");
    let rec = &closed[0]["record"];
    assert_eq!(rec["complete"], true, "{v}");
    assert!(rec["sender"].get("Proved").is_some(), "the sender's posted transfer is proved: {v}");
    assert_eq!(rec["receiver"], "Penalised", "the receiver withheld: {v}");
    let again = resume(d, &[]);
    assert!(again.status.success());
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["closed"].as_array().unwrap().len(), 0, "nothing left open: {v}");
}
