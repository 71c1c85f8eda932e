//! Attack r19 on the duplicate-link rule (`Peer::install`): a link that
//! authenticates with a Noise static key other than the one in use is
//! taken for a new process of the peer and replaces the link in use,
//! whichever process is actually the newer one.
//!
//! Finding (fixed; its test now passes): the old process of a validator
//! finished a dial just before it died, and its last handshake message
//! reaches this node late (the network is asynchronous: a retransmission,
//! a queue), after the validator's new process has linked up. The stale
//! link replaced the new process's link, which this node retired (stopped
//! writing to it and half-closed it): what this node sent to the validator
//! then went into a link to a dead process and was lost, and the new
//! process's link was torn down. Now links are ordered by when their
//! handshakes began on this node (a process completes a handshake only
//! after this node began it, so a dead process's link began before its
//! successor's), and a link of another process that began before the
//! newest one put in use is never put in use.

mod common;
use common::*;

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;

const NET: Hash32 = Hash32([19; 32]);
const T: Duration = Duration::from_secs(10);

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-attack-r19-{i}"))
}

impl Raw {
    /// A whole frame.
    async fn frame(&mut self, body: &[u8]) {
        let mut m = hdr(body.len()).to_vec();
        m.extend_from_slice(body);
        self.send(&m).await;
    }
}

/// Validator 1's old process sends its dial's first message and reads the
/// second, then (its third message delayed) its new process dials, links
/// up and is heard; then the old process's third message arrives and the
/// old process is gone. A message node 0 sends to validator 1 afterwards
/// must reach the new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_processs_late_dial_does_not_replace_the_new_processs_link() {
    let (l0, _l1, set) = two_listeners(key).await;
    let a0 = l0.local_addr().expect("addr");
    let mut cfg = NetworkConfig::new(NET, 0, set);
    cfg.handshake_timeout = Duration::from_secs(30);
    cfg.backoff_initial = Duration::from_secs(30);
    cfg.backoff_max = Duration::from_secs(30);
    let (n0, mut in0) = Network::start_with_listener(cfg, key(0), l0).await.expect("start");
    // The old process: two of its dial's three messages.
    let (mut old, msg3) = Raw::dial_holding_the_last_message(a0, NET, 1, key, &noise_static()).await;
    // The new process links up and is heard.
    let mut new = Raw::dial(a0, NET, 1, key, &noise_static()).await;
    new.frame(b"new process").await;
    let (from, m) = timeout(T, in0.recv()).await.expect("in time").expect("open");
    assert_eq!((from, &m[..]), (1, &b"new process"[..]));
    assert!(n0.is_connected(1));
    // The old process's last message arrives; the old process is gone.
    old.s.write_all(&msg3).await.expect("w");
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    n0.send(1, b"for validator 1".to_vec()).expect("send");
    let got = timeout(T, new.next_frame()).await;
    let connections = n0.peer_stats(1).expect("peer").connections;
    n0.shutdown().await;
    match got {
        Ok(Some(f)) => assert_eq!(&f[..], b"for validator 1"),
        Ok(None) => panic!("node 0 closed the new process's link ({connections} links installed)"),
        Err(_) => panic!("the new process never got node 0's message ({connections} links installed)"),
    }
}
