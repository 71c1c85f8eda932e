//! Attack round 1 on the leaderless BFT (`consensus::lbft`): restarts,
//! catch-up answers and resource use. Each finding is a test that fails on
//! the code it was written against, ignored so the suite stays green.
//!
//! Run the findings with
//! `cargo test -p gridledger-consensus --test attack_lbft_r1 -- --ignored`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::lbft::{loaded_replica, pi_tau, sync_bytes};

use gridledger_consensus::lbft::sim::{check, run, Scenario, SchemeKind};
use gridledger_consensus::lbft::{Config, Durable, Message, Replica, SimCrypto};
use gridledger_core::Hash32;
use gridledger_sim::{Crash, Delay, NetConfig, Time};

/// A fault-free n = 4 network with fixed-ish link delays, GST at 0, and
/// the given crash plan.
fn net(crashes: Vec<Crash>) -> NetConfig {
    let d = Delay::Uniform { min: 5, max: 10 };
    NetConfig {
        nodes: 4,
        links: vec![vec![d; 4]; 4],
        drop_per_mille: 0,
        dup_per_mille: 0,
        gst: 0,
        stable_delay: d,
        partitions: Vec::new(),
        crashes,
    }
}

fn plan(seed: u64, crashes: Vec<Crash>) -> Scenario {
    let crashed: BTreeSet<u32> = crashes.iter().map(|c| c.node).collect();
    Scenario {
        seed,
        n: 4,
        net: net(crashes),
        byzantine: BTreeMap::new(),
        crashed,
        stop_epoch: 8,
        txs_per_node: 3,
        batch_size: 2,
        pipeline: 0,
        fixed_coins: true,
        tick: 200,
        expect_liveness: true,
        sync_deaths: BTreeMap::new(),
        sync_restart_after: 1,
        end: 60_000,
    }
}

/// Runs `s` and returns the check's verdict with the epochs each replica
/// reached.
fn outcome(s: &Scenario) -> Result<(), String> {
    let r = run(s, SchemeKind::Sim, None);
    let reached: Vec<(u32, usize)> = (0..4u32).map(|i| (i, r.deliveries.get(&i).map_or(0, Vec::len))).collect();
    check(s, &r).map_err(|e| format!("{e}; delivered epochs per replica {reached:?}"))
}

/// [1] Two correct replicas of n = 4 crash one after the other — never more
/// than one (= f) down at any instant, no Byzantine replica, a reliable
/// network — and both restart inside the same epoch. Each comes back mute
/// up to its restored `VotedIn` bound (the current epoch, raised when the
/// epoch before was delivered), so in that epoch only two replicas vote:
/// no agreement reaches `n − f = 3`, and the mute rule never lifts. The
/// chain stops for good although every replica is up and correct.
#[test]
fn sequential_restarts_within_f_stay_live() {
    let mut stalled = Vec::new();
    for at in (100..160).step_by(4) {
        let s = plan(
            7 + at,
            vec![
                Crash { node: 0, at, restart_at: Some(at + 1) },
                Crash { node: 1, at: at + 2, restart_at: Some(at + 3) },
            ],
        );
        if let Err(e) = outcome(&s) {
            stalled.push(format!("crashes at t={at}: {e}"));
        }
    }
    assert!(stalled.is_empty(), "{} of 15 crash plans lost liveness:\n{}", stalled.len(), stalled.join("\n"));
}

/// [1b] The same root cause seen by an operator: every validator of a
/// 4-replica network restarts (power loss of the site, an upgrade), all
/// records intact. Every replica restores `VotedIn` = its current epoch
/// and only observes it, nobody echoes another's batch nor votes, and
/// the network never delivers another epoch.
#[test]
fn whole_network_restart_stays_live() {
    let mut stalled = Vec::new();
    for at in [60 as Time, 120, 180, 240] {
        let crashes = (0..4u32).map(|node| Crash { node, at, restart_at: Some(at + 50) }).collect();
        let s = plan(11 + at, crashes);
        if let Err(e) = outcome(&s) {
            stalled.push(format!("restart of all at t={at}: {e}"));
        }
    }
    assert!(stalled.is_empty(), "{} of 4 whole-network restarts lost liveness:\n{}", stalled.len(), stalled.join("\n"));
}

/// The same fault-free scenarios without crashes are live (control: the
/// stall above comes from the restarts, not from the plan).
#[test]
fn control_no_crash_is_live() {
    for at in (100..160).step_by(4) {
        outcome(&plan(7 + at, Vec::new())).expect("no crash: live");
    }
    // One replica crashing and restarting (f = 1) is live as well.
    for at in (100..160).step_by(4) {
        let s = plan(7 + at, vec![Crash { node: 0, at, restart_at: Some(at + 1) }]);
        outcome(&s).expect("one crash-restart: live");
    }
}

// ---- [2] catch-up amplification ------------------------------------------------

/// [2] A `SyncRequest` is a few bytes; the replica answers each one, from
/// any peer, as often as it comes, with up to `sync_batch` whole delivered
/// epochs (every accepted batch) plus `n` `Term` votes — no limit per peer
/// or per tick (the node's limiter covers only requests below the
/// in-memory log). One Byzantine validator repeating `SyncRequest { next }`
/// for an epoch in the log makes each correct validator send megabytes per
/// request: an amplification the size of `sync_batch · n · max batch`.
#[test]
fn repeated_sync_requests_are_not_answered_in_full_each_time() {
    let mut r = loaded_replica(16, 64, 300);
    let first = r.handle_message(1, Message::SyncRequest { next: 0 });
    let once = sync_bytes(&first.messages);
    assert!(once > 0, "the first request is answered");
    let mut total = once;
    for _ in 0..1_000 {
        let s = r.handle_message(1, Message::SyncRequest { next: 0 });
        total += sync_bytes(&s.messages);
    }
    // 1,001 requests of ~10 bytes each; an answer bounded per peer and tick
    // sends a few answers' worth, not a thousand.
    assert!(
        total <= 4 * once,
        "1,001 sync requests (≈10 bytes each) from one peer drew {total} bytes of batches ({} per request)",
        once
    );
}

/// [2b] The same for `Fetch`: each one, from any peer, as often as it
/// comes, is answered with the whole certified batch.
#[test]
fn repeated_fetches_are_not_answered_in_full_each_time() {
    let mut r = loaded_replica(4, 64, 300);
    let answer_bytes = |s: &gridledger_consensus::lbft::Step<SimSig, SimSig>| -> usize {
        s.messages
            .iter()
            .filter_map(|(_, m)| match m {
                Message::Certified { batch, .. } => Some(batch.batch.bytes()),
                _ => None,
            })
            .sum()
    };
    let once = answer_bytes(&r.handle_message(1, Message::Fetch { epoch: 2, proposer: 3 }));
    assert!(once > 0, "the first fetch is answered");
    let mut total = once;
    for _ in 0..1_000 {
        total += answer_bytes(&r.handle_message(1, Message::Fetch { epoch: 2, proposer: 3 }));
    }
    assert!(total <= 4 * once, "1,001 fetches of one delivered batch from one peer drew {total} bytes ({once} each)");
}

// ---- [3] π^τ's undecided area ---------------------------------------------------

use gridledger_consensus::lbft::crypto::SimSig;
use gridledger_consensus::lbft::txm::{LbftTx, Outcome, Rejection, Theta, Undecided};
use gridledger_core::ed25519::EdKeyPair;

/// [3a] Rule-2 lets a client send one transaction per epoch, yet the
/// undecided area (Situation 1: `e_n < e_c < e_n + κ`) takes any number of
/// them from one client for one epoch and one delivery number, as long as
/// the requests differ. One key with `max_pending` signatures fills it,
/// and every other client's transaction for the next epoch is then
/// refused (`PendingFull`) — at every replica the flood is sent to.
#[test]
fn one_client_cannot_fill_the_undecided_area() {
    let mut p = pi_tau(Theta::ALWAYS, 64);
    let m = EdKeyPair::from_seed("flooder");
    for i in 0..64u32 {
        let tx = LbftTx::sign(&m, 2, i.to_le_bytes().to_vec(), 0, 3);
        let _ = p.receive(tx);
    }
    let honest = EdKeyPair::from_seed("honest");
    let out = p.receive(LbftTx::sign(&honest, 2, b"pay 5 Wh".to_vec(), 0, 3));
    assert_eq!(
        out,
        Outcome::Pending(Undecided::AwaitingEpoch),
        "an honest client's transaction for the next epoch after one client sent 64 for it ({} undecided held)",
        p.pending()
    );
}

/// [3b] Rule-4 (`H(PubK_c ‖ e_c) < θ·2^k`) depends only on the key and
/// `e_c`, but a Situation-1 transaction is parked before it is checked:
/// clients that are not eligible in `e_c` fill the undecided area, and an
/// eligible client's transaction is refused with `PendingFull`.
#[test]
fn ineligible_clients_cannot_fill_the_undecided_area() {
    let theta = Theta::from_ppm(100_000).expect("θ = 0.1");
    let mut p = pi_tau(theta, 32);
    let mut parked = 0;
    let mut i = 0u32;
    while parked < 32 {
        let k = EdKeyPair::from_seed(&format!("sybil-{i}"));
        i += 1;
        if theta.eligible(&k.public(), 2) {
            continue;
        }
        if let Outcome::Pending(_) = p.receive(LbftTx::sign(&k, 2, b"x".to_vec(), 0, 3)) {
            parked += 1;
        } else {
            break;
        }
    }
    let honest = (0..)
        .map(|j| EdKeyPair::from_seed(&format!("honest-{j}")))
        .find(|k| theta.eligible(&k.public(), 2))
        .expect("some key is eligible");
    let out = p.receive(LbftTx::sign(&honest, 2, b"pay 5 Wh".to_vec(), 0, 3));
    assert!(
        !matches!(out, Outcome::Rejected(Rejection::PendingFull { .. })),
        "{parked} transactions of clients not eligible in epoch 2 are held; the eligible client's is refused: {out:?}"
    );
}

// ---- [4] bad shares re-sent ---------------------------------------------------------

/// [4] A bad echo share is dropped and reported, but its sender may send
/// another one for the same slot at once, and each one costs the proposer
/// a combination, a signature check and a share check (pairings with
/// BLS). Until the last correct echo arrives, one Byzantine peer keeps
/// the proposer's CPU busy at the price of a 100-byte message each. (The
/// agreement's coin shares are dropped and re-accepted the same way.)
#[test]
fn a_bad_echo_sharer_is_not_checked_again_and_again() {
    use gridledger_consensus::lbft::{echo_statement, Fault, KeyUse, ThresholdCrypto};
    let n = 4;
    let instance = Hash32([0x1b; 32]);
    let mut r = Replica::new(Config::new(n, 0, instance), SimCrypto::new(1, n, 0), Durable::default());
    let _ = r.start();
    let s = r.propose(0, vec![b"tx".to_vec()]);
    let digest = s
        .messages
        .iter()
        .find_map(|(_, m)| match m {
            Message::Val { epoch, batch } => Some(batch.digest(&instance, *epoch, 0)),
            _ => None,
        })
        .expect("the proposal is broadcast");
    let stmt = echo_statement(&instance, 0, 0, &digest);
    let good = SimCrypto::new(1, n, 2).sign_share(KeyUse::Cert, &stmt);
    let _ = r.handle_message(2, Message::Echo { epoch: 0, proposer: 0, digest, share: good });
    let mut reported = 0;
    for k in 0..100u8 {
        let bad = SimSig { tag: Hash32([k; 32]) };
        let s = r.handle_message(1, Message::Echo { epoch: 0, proposer: 0, digest, share: bad });
        reported += s.faults.iter().filter(|f| matches!(f, Fault::BadEchoShare { from: 1, .. })).count();
    }
    assert!(reported <= 1, "peer 1's bad echo shares were combined and checked {reported} times for one slot");
}

// ---- held up: restart storms keep safety ---------------------------------------------

/// Safety (agreement, total order, integrity, one statement per slot,
/// common coin) under restart storms: the random scenarios with their
/// Byzantine replicas, and every correct replica crashing and restarting
/// three times at random instants (1–30 ticks down), far beyond `f` — so
/// liveness is not checked. `GRIDLEDGER_ATTACK_SEEDS` sets the count.
#[test]
fn restart_storms_keep_safety() {
    use gridledger_consensus::lbft::sim::scenario;
    use rand::{Rng, SeedableRng};
    let seeds: u64 = std::env::var("GRIDLEDGER_ATTACK_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let mut failures = Vec::new();
    for seed in 0..seeds {
        let mut s = scenario(seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x00a7_7ac4);
        let mut crashes = Vec::new();
        for node in (0..s.n as u32).filter(|i| !s.byzantine.contains_key(i)) {
            let mut at: Time = rng.random_range(5..200);
            for _ in 0..3 {
                let down = rng.random_range(1..30);
                crashes.push(Crash { node, at, restart_at: Some(at + down) });
                at += down + rng.random_range(1..300);
            }
        }
        s.crashed = crashes.iter().map(|c| c.node).collect();
        s.net.crashes = crashes;
        s.expect_liveness = false;
        s.end = 3_000;
        let r = run(&s, SchemeKind::Sim, None);
        if let Err(e) = check(&s, &r) {
            failures.push(format!("seed {seed} (n={}, pipeline {}): {e}", s.n, s.pipeline));
        }
    }
    assert!(failures.is_empty(), "{} of {seeds} restart storms broke safety:\n{}", failures.len(), failures.join("\n"));
}

/// Held up: liveness with `f` silent replicas for every pipeline depth
/// (0–3; the replica caps it at `window − 1`) and both coin schedules, on
/// the random networks of the scenarios (partitions and drops before GST).
/// `GRIDLEDGER_ATTACK_SEEDS` sets the seeds per setting.
#[test]
fn f_silent_replicas_stall_no_pipeline_or_coin_setting() {
    use gridledger_consensus::lbft::sim::{scenario, Behaviour};
    let seeds: u64 = std::env::var("GRIDLEDGER_ATTACK_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(6);
    let mut failures = Vec::new();
    for pipeline in 0..4u64 {
        for fixed_coins in [true, false] {
            for seed in 0..seeds {
                let mut s = scenario(seed);
                let f = (s.n - 1) / 3;
                s.byzantine = (0..f as u32).map(|i| (s.n as u32 - 1 - i, vec![Behaviour::Silent])).collect();
                s.crashed.clear();
                s.net.crashes.clear();
                s.pipeline = pipeline;
                s.fixed_coins = fixed_coins;
                s.expect_liveness = true;
                s.end = 60_000;
                let r = run(&s, SchemeKind::Sim, None);
                if let Err(e) = check(&s, &r) {
                    failures.push(format!("seed {seed} n={} pipeline {pipeline} fixed {fixed_coins}: {e}", s.n));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} runs lost liveness or safety:\n{}", failures.len(), failures.join("\n"));
}
