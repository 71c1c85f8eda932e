//! Round-3 attacks on the party process (node::channel::party) by an
//! independent reviewer. Tests marked `#[ignore = "attack: ..."]` reproduce
//! a finding and fail on the code they were written against (expected vs
//! observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-node --test attack_party_r3 -- --ignored`

mod common;

use common::party::{addrs_of, channel_terms, fsync_opts, wait_phase, BAL};
use gridledger_contracts::cns::ChannelStatus;
use gridledger_core::KeyPair;
use gridledger_ledger::devnet::dev_key;
use gridledger_node::channel::chainlink::read_channel;
use gridledger_node::channel::party::{spawn_party_on, Command, Listeners, PartyOptions, Reply};
use gridledger_node::channel::spec::{bind_loopback, prepare_channel, ChannelTerms};
use gridledger_node::RpcClient;
use std::time::Duration;

fn terms(ls: &[std::net::TcpListener; 2]) -> ChannelTerms {
    let a = addrs_of(ls);
    channel_terms([false, false], a, a)
}

/// Finding: a top-up whose `channel_topup` transaction fails on chain (here
/// a deposit larger than the account holds; equally a note the contract
/// refuses, or a peer that never co-signs the allocation) is never answered
/// — the party waits for a `ToppedUp` event that cannot come — and while it
/// waits every `close`, `withdraw` and `topup` of the user is refused with
/// "another request is in progress", for as long as the process runs. The
/// user cannot close the channel through its own party process.
///
/// Expected: the failed top-up is answered with an error (or the close is
/// taken regardless), and the close request that follows closes the
/// channel. Observed: the top-up never returns, and `Close` is answered
/// `Error { "another request is in progress" }`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_up_that_fails_on_chain_does_not_block_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let node = gridledger_node::channel::devnode::start(&dir.path().join("node"), 4, BAL, 20).unwrap();
    let url = node.url();
    let ls = [bind_loopback().unwrap(), bind_loopback().unwrap()];
    let on = |i: usize| Listeners { peer: ls[i].try_clone().unwrap(), control: None };
    let t = terms(&ls);
    let specs = tokio::task::spawn_blocking({
        let url = url.clone();
        move || prepare_channel(&url, &dev_key(0), &KeyPair::from_seed("desk"), [&dev_key(1), &dev_key(2)], &t)
    })
    .await
    .unwrap()
    .unwrap();
    let dirs = [dir.path().join("p0"), dir.path().join("p1")];
    for i in 0..2 {
        specs[i].save(&dirs[i]).unwrap();
    }
    let (h0, j0) = spawn_party_on(&dirs[0], fsync_opts(), on(0)).unwrap();
    let (h1, j1) = spawn_party_on(&dirs[1], fsync_opts(), on(1)).unwrap();
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });

    // Ten times what the account holds: channel_topup fails on chain.
    let too_much = u64::try_from(BAL.0 * 10).unwrap();
    let up = tokio::time::timeout(
        Duration::from_secs(10),
        h0.request(Command::TopUp { amount: too_much, credit_note: None }),
    )
    .await;
    let close = tokio::time::timeout(Duration::from_secs(20), h0.request(Command::Close)).await;
    let client = RpcClient::new(&url);
    let ch = read_channel(&client, &specs[0].cid).unwrap().unwrap();
    let closed = matches!(close, Ok(Reply::Done { .. }));
    let _ = h0.request(Command::Shutdown).await;
    let _ = h1.request(Command::Shutdown).await;
    let _ = (j0.await, j1.await);
    node.shutdown();
    assert!(
        closed && ch.status == ChannelStatus::Closed,
        "top-up answered: {up:?}; close answered: {close:?}; channel on chain: {:?}",
        ch.status
    );
}

/// Finding (outsider, cross-protocol): the control port of a `channel open`
/// party (the spec's loopback `control` address) takes commands with no
/// token, and a line that is not a request is answered with an error while
/// the connection stays open. So any local process — or any web page the
/// user visits, through a plain `fetch("http://127.0.0.1:PORT", {method:
/// "POST", mode: "no-cors", body: ...})` — can pay the peer, withdraw or
/// close: the HTTP request line and headers are refused one by one, then
/// the body line is obeyed. (`channel serve`'s control port proves a token
/// and ends the connection on the first line that does not.)
///
/// Expected: a request without the party's secret is refused and nothing
/// changes (counter stays 1). Observed: the body's payment is co-signed
/// (counter 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_post_to_the_party_control_port_moves_no_money() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let node = gridledger_node::channel::devnode::start(&dir.path().join("node"), 4, BAL, 20).unwrap();
    let url = node.url();
    let ls = [bind_loopback().unwrap(), bind_loopback().unwrap()];
    let cs = [bind_loopback().unwrap(), bind_loopback().unwrap()];
    let control = cs[0].local_addr().unwrap();
    let mut t = terms(&ls);
    t.controls = [cs[0].local_addr().unwrap(), cs[1].local_addr().unwrap()];
    let specs = tokio::task::spawn_blocking({
        let url = url.clone();
        move || prepare_channel(&url, &dev_key(0), &KeyPair::from_seed("desk"), [&dev_key(1), &dev_key(2)], &t)
    })
    .await
    .unwrap()
    .unwrap();
    let dirs = [dir.path().join("p0"), dir.path().join("p1")];
    for i in 0..2 {
        specs[i].save(&dirs[i]).unwrap();
    }
    let with_control = PartyOptions { control: true, ..fsync_opts() };
    let on = |i: usize| Listeners { peer: ls[i].try_clone().unwrap(), control: Some(cs[i].try_clone().unwrap()) };
    let (h0, j0) = spawn_party_on(&dirs[0], with_control.clone(), on(0)).unwrap();
    let (h1, j1) = spawn_party_on(&dirs[1], with_control, on(1)).unwrap();
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });

    // What a browser sends for a cross-origin no-cors POST with a text body.
    let body = "{\"cmd\":\"pay\",\"energy\":100000,\"price\":100}\n";
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {control}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(control).await.unwrap();
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&got).contains("\"done\"") {
                break;
            }
        }
    })
    .await;
    let status = h0.request(Command::Status).await;
    let _ = h0.request(Command::Shutdown).await;
    let _ = h1.request(Command::Shutdown).await;
    let _ = (j0.await, j1.await);
    node.shutdown();
    let counter = match &status {
        Reply::Status(s) => s.counter,
        r => panic!("status: {r:?}"),
    };
    assert_eq!(
        counter,
        Some(1),
        "a token-less HTTP POST moved the channel; the port answered: {}",
        String::from_utf8_lossy(&got)
    );
}

/// Finding (silent counterparty): a withdrawal proposed while the peer is
/// offline falls back after t_Δ (`FellBack`), but the party answers a
/// pending withdrawal only on `Withdrawn` or `Rejected`: the request is
/// never answered, and every later `close` is refused with "another request
/// is in progress". A silent peer is exactly when the user must close
/// (unilaterally, through the dispute); the party process will not.
///
/// Expected: the withdrawal is answered (an error: fell back) and the close
/// that follows settles the channel through the dispute. Observed: the
/// withdrawal never returns, `Close` is refused, the channel stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawal_that_falls_back_does_not_block_the_close() {
    let dir = tempfile::tempdir().unwrap();
    let node = gridledger_node::channel::devnode::start(&dir.path().join("node"), 4, BAL, 20).unwrap();
    let url = node.url();
    let ls = [bind_loopback().unwrap(), bind_loopback().unwrap()];
    let on = |i: usize| Listeners { peer: ls[i].try_clone().unwrap(), control: None };
    let t = terms(&ls);
    let t_delta = Duration::from_millis(t.t_delta_ms);
    let specs = tokio::task::spawn_blocking({
        let url = url.clone();
        move || prepare_channel(&url, &dev_key(0), &KeyPair::from_seed("desk"), [&dev_key(1), &dev_key(2)], &t)
    })
    .await
    .unwrap()
    .unwrap();
    let dirs = [dir.path().join("p0"), dir.path().join("p1")];
    for i in 0..2 {
        specs[i].save(&dirs[i]).unwrap();
    }
    let (h0, j0) = spawn_party_on(&dirs[0], fsync_opts(), on(0)).unwrap();
    let (h1, j1) = spawn_party_on(&dirs[1], fsync_opts(), on(1)).unwrap();
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    assert_eq!(h0.request(Command::Pay { energy: 1_000, price: 100 }).await, Reply::Done { counter: 1 });
    // The peer goes silent.
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    let out = tokio::time::timeout(t_delta * 2, h0.request(Command::Withdraw { amount: 10_000 })).await;
    let close = tokio::time::timeout(Duration::from_secs(60), h0.request(Command::Close)).await;
    let client = RpcClient::new(&url);
    let ch = read_channel(&client, &specs[0].cid).unwrap().unwrap();
    let _ = h0.request(Command::Shutdown).await;
    let _ = j0.await;
    node.shutdown();
    assert!(
        matches!(close, Ok(Reply::Done { .. })) && ch.status == ChannelStatus::Closed,
        "withdrawal answered: {out:?}; close answered: {close:?}; channel on chain: {:?}",
        ch.status
    );
}
