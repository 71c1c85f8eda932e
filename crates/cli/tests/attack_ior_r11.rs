//! Attack round 11 on the improved optimistic rollup (issue 11) through the
//! CLI: `gridledger ior day --rpc` killed at other instants than a pending
//! batch, and its resume journal.
//!
//! Each ignored test reproduces a finding and fails on the code it was
//! written against; the others held up.

mod common;

use common::ior::*;
use common::*;
use gridledger_rollup::driver::{primary_config, PrimaryReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(args: &[&str]) -> Child {
    bin().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

/// The IOR balances and reputations of the settled state and the IOR
/// contract's coin, with what is pending.
struct After {
    next: u64,
    fin: u64,
    open: usize,
    reputations: Vec<u32>,
    rs: u32,
}

fn after(url: &str) -> After {
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let cfg = primary_config(&rpc).unwrap();
    let reader = PrimaryReader { c: &rpc, params: &cfg.params };
    let (next, fin) = reader.progress().unwrap();
    let s = reader.settled_state().unwrap();
    After {
        next,
        fin,
        open: s.agreements.len(),
        reputations: s.participants.values().map(|p| p.reputation).collect(),
        rs: cfg.params.rs,
    }
}

/// The resumed day's IOR balances add up to the traders' funding: the
/// default day's 15 traders with 50 coin each (honest sales only move
/// coin between them; deposits and reserves came back), or nothing when
/// the run was killed before it funded them.
fn assert_traders_coin_conserved(o: &std::process::Output) {
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let total = r["ior_total_end"].as_u64().unwrap();
    assert!(total == 15 * 50 * 1_000_000 || total == 0, "{r}");
}

/// Kills `run` (SIGKILL) once the primary chain's tip is `at` blocks past
/// the first block at which the IOR contracts were seen initialised;
/// `false` if the day ended first.
fn kill_when(run: &mut Child, url: &str, at: u64) -> bool {
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let start = Instant::now();
    let mut h0 = None;
    loop {
        assert!(start.elapsed() < Duration::from_secs(240), "the day never reached its kill point");
        if run.try_wait().unwrap().is_some() {
            return false;
        }
        use gridledger_ledger::ChainClient;
        let tip = rpc.tip().height;
        if h0.is_none() && primary_config(&rpc).is_ok() {
            h0 = Some(tip);
        }
        if h0.is_some_and(|h| tip >= h + at) {
            run.kill().unwrap();
            run.wait().unwrap();
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Kills `run` the first time a batch holding entries is recorded and not
/// settled on the chain at `url` (as attack r8 [4] did).
fn kill_when_pending(run: &mut Child, url: &str) {
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(240), "no batch was recorded");
        assert!(run.try_wait().unwrap().is_none(), "the day ended before a batch was seen pending");
        if let Ok(cfg) = primary_config(&rpc) {
            let reader = PrimaryReader { c: &rpc, params: &cfg.params };
            if let Ok((next, fin)) = reader.progress() {
                if next > fin && (fin..next).any(|b| reader.batch_header(b).is_ok_and(|h| !h.is_empty())) {
                    run.kill().unwrap(); // SIGKILL
                    run.wait().unwrap();
                    return;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [2] The journal's chain check compares chain ids, and every chain
/// `gridledger init` makes has chain id 1 unless told otherwise, so the
/// journal of one chain's killed day passes for any other chain's. Here
/// the day on chain A is killed with a batch pending; a fresh day is then
/// run on chain B with `--journal` naming A's journal (a path reused by
/// mistake): the run neither refuses nor notices that the file holds an
/// unfinished day of another chain, overwrites it with B's day and marks
/// it finished. The same command that resumes A is then refused ("which
/// finished"): A's pending batch, its open agreements and every trader's
/// IOR funding stay locked in A's contract for good. Expected: a journal
/// holding an unfinished day of another chain (told apart by something
/// that differs between chains, e.g. the genesis hash, not the default
/// chain id) is neither resumed on nor overwritten by another chain's
/// day; A's day can still be resumed.
#[test]
fn another_chains_day_does_not_take_over_a_killed_days_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    let (chain_a, _node_a, url_a) = own_chain(&a_dir, 2);
    let (chain_b, _node_b, url_b) = own_chain(&b_dir, 2);
    let journal_a = chain_a.join("ior-day.json");
    let (ca, fa) = (d(&chain_a), d(&chain_a.join("keys").join("account-0.key")));
    let day_a = day_args(&ca, &fa, "24..27");
    let mut run = spawn(&day_a);
    kill_when_pending(&mut run, &url_a);
    let pending = after(&url_a);
    assert!(pending.next > pending.fin, "A was killed with a batch pending");
    // A fresh day on chain B, its journal at the path of A's.
    let (cb, fb, ja) = (url_b.clone(), d(&chain_b.join("keys").join("account-0.key")), d(&journal_a));
    let mut day_b = day_args(&cb, &fb, "24..26");
    day_b.extend(["--journal", &ja]);
    let ob = gl(&day_b);
    let journal_now = std::fs::read_to_string(&journal_a).unwrap();
    // A's day, resumed by the command that started it.
    let oa = gl(&day_a);
    let a = after(&url_a);
    assert!(
        oa.status.success() && a.fin == a.next && a.open == 0,
        "chain B's day (exit {}) took over chain A's journal ({journal_now}); resuming A: exit {} ({}); A now \
         settled {}/{} with {} agreements open (killed at {}/{})",
        ob.status,
        oa.status,
        stderr(&oa).trim(),
        a.fin,
        a.next,
        a.open,
        pending.fin,
        pending.next
    );
}

/// [1] `ior day --rpc` cannot run more than three slots: a fresh chain
/// (`gridledger init`, the command's own funding from `--from`) and
/// `--slots 24..28` ends in "insufficient balance: need 3000000, have
/// 2853…" part way, with batches and agreements left to a resume (which
/// trades no further slot). `day_needs` gives each trader gas for four
/// record calls (`4 × RECORD_GAS_LIMIT`) once, before the day, and the
/// node requires the gas limits of a sender's pending calls to be covered
/// (the account left short is a trader's: each trader is left with about
/// 2.6 to 3.8 M, the nodes with about 300 M). `--slots 24..27` passes;
/// the default `0..48` trades more slots than that. Expected: the day's funding covers the gas of
/// the slots it trades (or tops the accounts up per slot), and the day
/// runs to its end.
#[test]
fn an_rpc_day_of_four_slots_runs_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let o = gl(&day_args(&c, &f, "24..28"));
    let a = after(&url);
    assert!(
        o.status.success() && a.fin == a.next && a.open == 0,
        "ior day --rpc --slots 24..28: {} ({}); settled {}/{} batches, {} agreements open",
        o.status,
        stderr(&o).trim(),
        a.fin,
        a.next,
        a.open
    );
}

/// [3] Nothing marks a journal's day as being run: the same command
/// started again while the first run is still trading (a second terminal,
/// a supervisor's retry after a timeout) takes the live day for a killed
/// one and "resumes" it — it settles what is recorded, sends the STs of
/// the live run's open agreements and marks the journal finished. The
/// live run then sends its own STs for the same agreements: each is
/// refused `NoAgreement` and costs its (honest) seller α, three of them
/// take a seller from 30 to 0, and every later AT of that seller is
/// refused `ReputationTooLow` (the live run's report: 0 of 9 trades
/// settled). Unpaused at random instead, the two runs' transactions
/// collide (same accounts, same nonces: "transaction already known") and
/// the live run dies after its first slot. (The test holds the live run with
/// SIGSTOP while the second runs, so the outcome does not depend on which
/// process sends first.) Expected: a run refuses to resume
/// a day another live process is running (a lock held by the running
/// process), and the live run ends its day.
#[test]
fn a_second_run_does_not_resume_a_live_day() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..27");
    let run = bin().args(&day).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut run = Procs(vec![run]);
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    let start = Instant::now();
    while !primary_config(&rpc)
        .is_ok_and(|cfg| PrimaryReader { c: &rpc, params: &cfg.params }.progress().is_ok_and(|(next, _)| next > 0))
    {
        assert!(start.elapsed() < Duration::from_secs(240), "no batch was recorded");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The live run is held still (SIGSTOP: a slow or swapped-out
    // process) while the second runs, so that the race is not left to
    // chance; it goes on afterwards (SIGCONT).
    let pid = run.0[0].id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let second = gl(&day);
    assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
    let first = run.0.pop().unwrap().wait_with_output().unwrap();
    let a = after(&url);
    assert!(
        !second.status.success()
            && first.status.success()
            && a.fin == a.next
            && a.open == 0
            && a.reputations.iter().all(|r| *r == a.rs),
        "second run while the first traded: {} {}; the first run: {} ({}); settled {}/{} batches; reputations \
         {:?}",
        second.status,
        stdout(&second).replace('\n', " "),
        first.status,
        String::from_utf8_lossy(&first.stderr).trim(),
        a.fin,
        a.next,
        a.reputations
    );
}

/// Held up: `ior day --rpc` killed at other instants than a pending batch
/// (before the traders are funded, between slots) is resumed by the same
/// command, which settles every batch and agreement without penalising
/// anyone.
#[test]
fn a_day_killed_at_other_instants_is_resumed() {
    for at in [3, 16] {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _node, url) = own_chain(dir.path(), 2);
        let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
        let day = day_args(&c, &f, "24..27");
        let mut run = spawn(&day);
        if !kill_when(&mut run, &url, at) {
            continue;
        }
        let o = gl(&day);
        let a = after(&url);
        assert!(o.status.success(), "killed at +{at} blocks; the rerun: {}", stderr(&o));
        assert_traders_coin_conserved(&o);
        assert_eq!((a.fin, a.open), (a.next, 0), "killed at +{at} blocks: something left pending or open");
        assert!(a.reputations.iter().all(|r| *r == a.rs), "killed at +{at}: {:?}", a.reputations);
    }
}

/// Held up: the resuming run killed in turn (after 0.6 s, 3 s) is resumed
/// by the same command again; nothing is left pending or open and no one
/// is penalised.
#[test]
fn a_killed_resume_is_resumed_again() {
    for ms in [600, 3000] {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _node, url) = own_chain(dir.path(), 2);
        let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
        let day = day_args(&c, &f, "24..27");
        let mut run = spawn(&day);
        kill_when_pending(&mut run, &url);
        let mut resume = spawn(&day);
        std::thread::sleep(Duration::from_millis(ms));
        let _ = resume.kill();
        let _ = resume.wait();
        let o = gl(&day);
        let a = after(&url);
        assert!(o.status.success(), "resume killed after {ms} ms; again: {}", stderr(&o));
        assert_traders_coin_conserved(&o);
        assert_eq!((a.fin, a.open), (a.next, 0), "resume killed after {ms} ms: something left pending or open");
        assert!(a.reputations.iter().all(|r| *r == a.rs), "resume killed after {ms} ms: {:?}", a.reputations);
    }
}

/// [5] A slot's start that the journal could not record was traded
/// anyway: `ior day --rpc` writes the journal before each slot sends
/// anything, but a failed write (disk full, the directory gone read-only;
/// here the temporary file's name is taken) only printed a warning, and
/// the slot's ATs were sent. Killed with that slot's agreements open, the
/// day could not be resumed: the resume found an open agreement
/// "delivering from … ms [that] starts no slot the earlier run recorded"
/// and stopped, so its deposits and payments stayed locked. Fixed by the
/// first of the two ways out: a run that cannot record a slot's start
/// stops there with an error naming the journal, before it sends anything
/// of the slot (what was sent is what the journal names), and the same
/// command run again settles every batch and agreement.
#[test]
fn a_slot_the_journal_did_not_record_is_not_traded() {
    let dir = tempfile::tempdir().unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..27");
    let journal = chain.join("ior-day.json");
    let tmp = chain.join("ior-day.json.tmp");
    let mut run = bin().args(&day).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // Once the first slot's batch is recorded, every later journal write
    // fails: its temporary file cannot be made.
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(240), "no batch was recorded");
        assert!(run.try_wait().unwrap().is_none(), "the day ended before a batch was seen pending");
        let pending = primary_config(&rpc).is_ok_and(|cfg| {
            let reader = PrimaryReader { c: &rpc, params: &cfg.params };
            reader.progress().is_ok_and(|(next, fin)| {
                next > fin && (fin..next).any(|b| reader.batch_header(b).is_ok_and(|h| !h.is_empty()))
            })
        });
        if pending {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::create_dir(&tmp).unwrap();
    let written = std::fs::read_to_string(&journal).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&written).unwrap();
    let out = run.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let after_stop = after(&url);
    std::fs::remove_dir(&tmp).unwrap();
    // The run stopped by itself, naming the journal, and sent nothing of a
    // slot the journal does not name: every agreement open at the stop
    // starts a slot the journal recorded.
    assert!(!out.status.success() && err.contains("journal"), "the run went on: {} ({err})", out.status);
    let starts: Vec<u64> = recorded["slot_starts"].as_array().unwrap().iter().map(|p| p[1].as_u64().unwrap()).collect();
    let cfg = primary_config(&rpc).unwrap();
    let reader = PrimaryReader { c: &rpc, params: &cfg.params };
    let mut at_starts = Vec::new();
    for b in 0..after_stop.next {
        let h = reader.batch_header(b).unwrap();
        let entries = gridledger_rollup::driver::batch_entries(&rpc, &h).unwrap();
        at_starts.extend(entries.iter().filter(|e| e.tx.is_at()).map(|e| e.tx.terms().dt_start));
    }
    assert!(
        !at_starts.is_empty() && at_starts.iter().all(|t| starts.contains(t)),
        "ATs were sent for slots starting at {at_starts:?}; the journal names {starts:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&journal).unwrap(),
        written,
        "the journal changed after the write failures began"
    );
    let o = gl(&day);
    let a = after(&url);
    assert!(
        o.status.success() && a.fin == a.next && a.open == 0,
        "journal at the stop: {}; the stopped run: {err}; the rerun: {} ({}); settled {}/{} batches, {} agreements \
         open",
        written.replace('\n', " "),
        o.status,
        stderr(&o).trim(),
        a.fin,
        a.next,
        a.open
    );
    assert!(a.reputations.iter().all(|r| *r == a.rs), "someone was penalised: {:?}", a.reputations);
}
