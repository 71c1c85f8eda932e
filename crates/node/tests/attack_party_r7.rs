//! Round-7 attacks on the party process (the withdrawal queue, close while
//! requests wait), by a reviewer who did not write them. Tests marked
//! `#[ignore = "attack: ..."]` reproduce a finding and fail on the code they
//! were written against (expected vs observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-node --test attack_party_r7 -- --ignored`

mod common;

use common::attacker::Attacker;
use common::party::{fsync_opts, wait_phase, Setup};
use gridledger_channels::disk::Durability;
use gridledger_node::channel::party::{spawn_party_on, Command, Listeners, PartyOptions, Reply};
use std::path::Path;
use std::time::{Duration, Instant};

/// Finding (silent or withholding counterparty; the close lock-out of
/// rounds 3–4 again, through the round-5 withdrawal queue): a close is
/// refused "another request is in progress" while a withdrawal is pending,
/// and a pending withdrawal is answered only when it is co-signed,
/// rejected or falls back after t_Δ. Withdrawals wait in a queue (up to
/// 16), and the moment one is answered the next is proposed in the same
/// turn of the party's loop, so a close never finds the party idle: with k
/// withdrawals queued and a peer that is down (or withholds its
/// acceptances), every close is refused for k × t_Δ — 16 × t_Δ at the
/// queue's limit, the user's whole balance held in a channel it is trying
/// to leave while the peer is gone. The close preempts a waiting top-up
/// (round 4), not queued withdrawals.
///
/// Expected: with the peer down and three withdrawals queued, a close is
/// taken within t_Δ + 5 s (it preempts the queued withdrawals, or the queue
/// yields to it once the pending one is answered).
/// Observed: every close is answered "another request is in progress"
/// until the third withdrawal falls back: taken after 30.4 s with t_Δ =
/// 10 s (60 refusals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_withdrawals_do_not_keep_the_close_refused() {
    let s = Setup::new(Path::new("d")).await;
    let (h0, j0) = s.spawn(0, fsync_opts());
    let (h1, j1) = s.spawn(1, fsync_opts());
    let t_delta = Duration::from_millis(s.specs[0].t_delta_ms);
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });
    // The peer goes down.
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    let withdrawals: Vec<_> = (0..3)
        .map(|_| {
            let h = h0.clone();
            tokio::spawn(async move { h.request(Command::Withdraw { amount: 1_000 }).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The user asks to close, again and again (for up to 5 × t_Δ, to see
    // when it is taken).
    let start = Instant::now();
    let deadline = t_delta * 5;
    let mut refused = 0;
    let taken = loop {
        match tokio::time::timeout(Duration::from_millis(300), h0.request(Command::Close)).await {
            // Still waiting for the close on chain: taken.
            Err(_) | Ok(Reply::Done { .. }) => break true,
            Ok(_) => refused += 1,
        }
        if start.elapsed() > deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let waited = start.elapsed();
    let _ = h0.request(Command::Shutdown).await;
    let _ = j0.await;
    for w in withdrawals {
        w.abort();
    }
    s.node.shutdown();
    assert!(taken && waited < t_delta + Duration::from_secs(5), "close refused {refused} times, taken {taken} after {waited:?} (t_delta {t_delta:?}), behind 3 queued withdrawals");
}

/// Finding (alerting; issue item 5 "alert"): the party announces
/// `DisputeSeen` for every `DisputeRaised` it reads, and after a restart it
/// reads the channel's events from its start, so every dispute the peer
/// ever raised is announced again — and `channel open` / `channel serve`
/// turn each into a `dispute_against_us` alert for the operator
/// (`alert_of_event`), although it was answered long ago and the channel
/// is open. The watch service avoids exactly this ("a dispute is alerted
/// only if it still stands after this batch"); the party does not. An
/// operator paged on every restart for disputes that ended learns to
/// ignore the page that matters.
///
/// Here side 1 disputes with the open state while side 0 holds counter 1;
/// side 0 resolves it and the channel is open again. Side 0's party is
/// then restarted (side 1 with it) and tops up, which is allocated: the
/// top-up's block comes after the dispute's. Expected: no
/// `dispute_against_us` alert after the restart (nothing stands), and no
/// `channel_resolve` or `channel_settle` sent for it again (the replayed
/// `DisputeRaised` also makes the machine answer it again: a reverted
/// transaction, a fee, per past dispute and restart). Observed: the alert
/// for the resolved dispute at counter 0, and a `channel_resolve` sent
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_alert_disputes_that_were_resolved() {
    use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelStatus};
    use gridledger_node::channel::alert::{alert_of_event, Alert};
    use gridledger_node::channel::chainlink::{read_channel, ChainLink};
    let s = Setup::new(Path::new("d")).await;
    let (h0, j0) = s.spawn(0, fsync_opts());
    let (h1, j1) = s.spawn(1, fsync_opts());
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    // Side 1 disputes with the registered open state (counter 0).
    let (url, cid, acct) = (s.node.url(), s.specs[1].cid, s.specs[1].account().unwrap());
    tokio::task::spawn_blocking(move || {
        let client = gridledger_node::RpcClient::new(&url);
        let open = read_channel(&client, &cid).unwrap().unwrap().latest;
        let link = ChainLink::connect(&url, acct).unwrap();
        let a = gridledger_contracts::args(&ChannelDisputeArgs { side: 1, state: open });
        link.call("channel_dispute", a, gridledger_core::Amount::ZERO).unwrap();
    })
    .await
    .unwrap();
    // Side 0 answers it: the channel is open again at counter 1.
    let client = gridledger_node::RpcClient::new(&s.node.url());
    let t = Instant::now();
    loop {
        let ch = read_channel(&client, &cid).unwrap().unwrap();
        if ch.status == ChannelStatus::Open && ch.latest.state.counter == 1 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "the stale dispute was not resolved: {:?}", ch.status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = h0.request(Command::Shutdown).await;
    let _ = j0.await;
    // Restart side 0 with its events observed.
    let (tx, mut rx) = tokio::sync::broadcast::channel(1024);
    let on = Listeners { peer: s.ls[0].try_clone().unwrap(), control: None };
    let opts =
        PartyOptions { durability: Durability::Fsync, control: false, events: Some(tx), ..PartyOptions::default() };
    let (h0, j0) = spawn_party_on(&s.dirs[0], opts, on).unwrap();
    let (h1, j1) = s.spawn(1, fsync_opts());
    wait_phase(&h0, "Open").await;
    // Readiness: a top-up lands in a block after the dispute's and is
    // allocated; events are read in block order, so the replay of the
    // dispute is behind us once it is answered.
    assert!(matches!(h0.request(Command::TopUp { amount: 1_000, credit_note: None }).await, Reply::Done { .. }));
    let mut alerts = vec![];
    while let Ok((cid, e)) = rx.try_recv() {
        if let Some(a @ Alert::DisputeAgainstUs { .. }) = alert_of_event(cid, 0, &e) {
            alerts.push(a);
        }
    }
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    let _ = h0.request(Command::Shutdown).await;
    let report = j0.await.unwrap().unwrap();
    s.node.shutdown();
    let answers: Vec<&str> = report
        .txs
        .iter()
        .map(|(m, _)| m.as_str())
        .filter(|m| matches!(*m, "channel_resolve" | "channel_settle"))
        .collect();
    assert!(
        alerts.is_empty() && answers.is_empty(),
        "after the restart, for a dispute resolved before it: alerts {alerts:?}; sent again {answers:?}"
    );
}

/// Finding (the theft of `attack_r7.rs` in the channels crate, end to end
/// against the production party process and a node): side 0's party asks
/// to withdraw 30,000; side 1's modified client co-signs the proposal out
/// of band and never lets its machine see it. Side 0's user is answered
/// "fell back"; side 1 then pays 5 × 100, which side 0's party co-signs.
/// Side 1 sends `channel_withdraw` with the withdrawal state and disputes
/// with it; side 0's party tries to resolve with its newest state (which
/// withdraws less than the registered one: refused) and the channel
/// settles on the withdrawal state.
///
/// Expected: what the chain pays side 0 for the channel (closing balance
/// plus withdrawals) is at least its newest co-signed balance. Observed:
/// settled at the withdrawal's counter 2, paying 99,900 against the
/// 100,400 of side 0's newest state (counter 7): the 500 side 1 paid after
/// the withdrawal are undone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_that_fell_back_cannot_void_later_payments_end_to_end() {
    use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelStateArgs, ChannelStatus};
    use gridledger_node::channel::chainlink::{read_channel, ChainLink};
    let s = Setup::new(Path::new("d")).await;
    let (h0, j0) = s.spawn(0, fsync_opts());
    let (h1, j1) = s.spawn(1, fsync_opts());
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    let mut b = Attacker::start(
        &s,
        Box::new(|st, latest| !st.resize.withdrawn[0].is_zero() && st.resize.withdrawn[0] > latest.resize.withdrawn[0]),
    )
    .await;
    b.run(Duration::from_secs(2)).await; // linked
    let t_delta = Duration::from_millis(s.specs[0].t_delta_ms);
    let h = h0.clone();
    let w = tokio::spawn(async move { h.request(Command::Withdraw { amount: 30_000 }).await });
    b.run(t_delta + Duration::from_secs(3)).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), w).await.unwrap().unwrap();
    assert!(matches!(&answer, Reply::Error { message } if message.contains("fell back")), "{answer:?}");
    let kept = b.kept.clone().expect("side 0's withdrawal, co-signed by side 1");
    // Side 1 pays five times; side 0's party co-signs each.
    for _ in 0..5 {
        let pay = gridledger_channels::Request::Pay {
            amount: gridledger_core::Amount(100),
            energy: gridledger_core::Energy(1_000),
            price_per_kwh: gridledger_core::Amount(100),
        };
        let step = b.machine.handle(gridledger_channels::Input::User(pay)).unwrap();
        b.carry_out(step);
        b.run(Duration::from_millis(500)).await;
    }
    assert_eq!(b.sent.len(), 5, "side 1's payments co-signed: {:?}", b.sent);
    let newest = match h0.request(Command::Status).await {
        Reply::Status(st) => st,
        r => panic!("{r:?}"),
    };
    assert!(newest.counter.unwrap() > kept.state.counter);
    // Side 1 registers the withdrawal state and disputes with it.
    let (url, acct) = (s.node.url(), s.specs[1].account().unwrap());
    let cid = s.specs[0].cid;
    let k = kept.clone();
    tokio::task::spawn_blocking(move || {
        let link = ChainLink::connect(&url, acct).unwrap();
        let a = gridledger_contracts::args(&ChannelStateArgs { state: k.clone() });
        link.call("channel_withdraw", a, gridledger_core::Amount::ZERO).unwrap();
        let a = gridledger_contracts::args(&ChannelDisputeArgs { side: 1, state: k });
        link.call("channel_dispute", a, gridledger_core::Amount::ZERO).unwrap();
    })
    .await
    .unwrap();
    b.net.shutdown().await;
    // Side 0's party runs on: it sees the dispute and answers what it can.
    let client = gridledger_node::RpcClient::new(&s.node.url());
    let t = Instant::now();
    let ch = loop {
        let ch = read_channel(&client, &cid).unwrap().unwrap();
        if ch.status == ChannelStatus::Closed {
            break ch;
        }
        assert!(t.elapsed() < t_delta * 4, "not closed: {:?}", ch.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = h0.request(Command::Shutdown).await;
    let _ = j0.await;
    s.node.shutdown();
    let newest_bal = newest.balances.unwrap()[0].0;
    let got = ch.latest.state.balances[0].0 + ch.latest.state.resize.withdrawn[0].0;
    assert!(
        got >= newest_bal,
        "side 0's newest co-signed state (counter {:?}) gives it {newest_bal}; the chain settled counter {} paying it {got}",
        newest.counter,
        ch.latest.state.counter
    );
}
