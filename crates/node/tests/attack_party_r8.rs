//! Round-8 attacks on the party process (what the chain holds versus what
//! the party knows), by a reviewer who did not write them. Tests marked
//! `#[ignore = "attack: ..."]` reproduce a finding and fail on the code they
//! were written against (expected vs observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-node --test attack_party_r8 -- --ignored`

mod common;

use common::attacker::Attacker;
use common::party::{fsync_opts, wait_phase, Setup};
use gridledger_node::channel::party::{Command, Reply};
use std::path::Path;
use std::time::Duration;

/// Finding (end to end against the production party and a node: the
/// channels crate's `attack_r8` lock-out): side 0's party pays once; side
/// 1's modified client co-signs the proposal out of band and withholds its
/// acceptance, so side 0's user is answered "fell back". Side 1 registers
/// that proposal with `channel_update` (counter 1, above the registered
/// open state) and goes silent. Side 0's user asks to close: the
/// cooperative close times out and every `channel_dispute` with side 0's
/// newest co-signed state (the open state, counter 0) is refused as stale;
/// the party never reads the registered state (`cns_channel_updated` maps
/// to no chain event), so it cannot dispute with it.
///
/// Expected: the close completes (`Done`) with the registered state, and
/// side 0 gets its balance in it back. Observed: the close is answered
/// with an error ("close stalled") and the channel stays open at counter
/// 1: side 0's coin stays locked until side 1 chooses to act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_completes_after_the_peer_registered_our_fallen_back_payment() {
    use gridledger_contracts::cns::ChannelStateArgs;
    use gridledger_node::channel::chainlink::{read_channel, ChainLink};
    let s = Setup::new(Path::new("d")).await;
    let (h0, j0) = s.spawn(0, fsync_opts());
    let (h1, j1) = s.spawn(1, fsync_opts());
    assert_eq!(h0.request(Command::Open).await, Reply::Done { counter: 0 });
    wait_phase(&h1, "Open").await;
    let _ = h1.request(Command::Shutdown).await;
    let _ = j1.await;
    let mut b = Attacker::start(&s, Box::new(|st, latest| st.counter > latest.counter)).await;
    b.run(Duration::from_secs(2)).await; // linked
    let t_delta = Duration::from_millis(s.specs[0].t_delta_ms);
    let h = h0.clone();
    let p = tokio::spawn(async move { h.request(Command::Pay { energy: 1_000, price: 100 }).await });
    b.run(t_delta + Duration::from_secs(3)).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), p).await.unwrap().unwrap();
    assert!(matches!(&answer, Reply::Error { message } if message.contains("fell back")), "{answer:?}");
    let kept = b.kept.clone().expect("side 0's payment, co-signed by side 1");
    let (url, acct) = (s.node.url(), s.specs[1].account().unwrap());
    let k = kept.clone();
    tokio::task::spawn_blocking(move || {
        let link = ChainLink::connect(&url, acct).unwrap();
        link.call(
            "channel_update",
            gridledger_contracts::args(&ChannelStateArgs { state: k }),
            gridledger_core::Amount::ZERO,
        )
        .unwrap();
    })
    .await
    .unwrap();
    b.net.shutdown().await;
    let closed = tokio::time::timeout(t_delta * 6, h0.request(Command::Close)).await;
    let client = gridledger_node::RpcClient::new(&s.node.url());
    let ch = read_channel(&client, &s.specs[0].cid).unwrap().unwrap();
    let _ = h0.request(Command::Shutdown).await;
    let _ = j0.await;
    s.node.shutdown();
    assert!(
        matches!(closed, Ok(Reply::Done { .. })),
        "close answered {closed:?}; the chain holds the channel {:?} at counter {} (side 1 registered counter {})",
        ch.status,
        ch.latest.state.counter,
        kept.state.counter
    );
}
