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

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const NET: Hash32 = Hash32([19; 32]);
const T: Duration = Duration::from_secs(10);
/// Plaintext of one Noise transport message (65535 less the 16-byte tag).
const CHUNK: usize = 65535 - 16;

fn key(i: u32) -> KeyPair {
    KeyPair::from_seed(&format!("net-attack-r19-{i}"))
}

fn hdr(len: usize) -> [u8; 4] {
    (len as u32).to_be_bytes()
}

/// A validator speaking raw Noise: it authenticates as validator `me`
/// with the Noise static key it is given (the same key twice is the same
/// process dialling again), then writes what it likes.
struct Raw {
    s: TcpStream,
    t: snow::StatelessTransportState,
    nonce: u64,
    rx_nonce: u64,
    /// Plaintext received and not yet cut into frames.
    plain: Vec<u8>,
}

/// A Noise static key pair (private, public): one process of a validator.
fn noise_static() -> (Vec<u8>, Vec<u8>) {
    let params: snow::params::NoiseParams = gridledger_net::handshake::NOISE_PARAMS.parse().expect("params");
    let kp = snow::Builder::new(params).generate_keypair().expect("keypair");
    (kp.private, kp.public)
}

impl Raw {
    async fn dial(to: SocketAddr, me: u32, stat: &(Vec<u8>, Vec<u8>)) -> Raw {
        let (mut raw, msg3) = Raw::dial_holding_the_last_message(to, me, stat).await;
        raw.s.write_all(&msg3).await.expect("w");
        raw
    }

    /// The handshake up to its third message, which is returned unsent
    /// (length prefix included): a dial whose last message is delayed.
    async fn dial_holding_the_last_message(to: SocketAddr, me: u32, stat: &(Vec<u8>, Vec<u8>)) -> (Raw, Vec<u8>) {
        let params: snow::params::NoiseParams = gridledger_net::handshake::NOISE_PARAMS.parse().expect("params");
        let mut prologue = b"gridledger/net/v1".to_vec();
        prologue.extend_from_slice(&NET.0);
        let mut hs = snow::Builder::new(params)
            .local_private_key(&stat.0)
            .and_then(|b| b.prologue(&prologue))
            .and_then(|b| b.build_initiator())
            .expect("initiator");
        let mut s = TcpStream::connect(to).await.expect("connect");
        let mut out = vec![0u8; 65535];
        let n = hs.write_message(&[], &mut out).expect("msg 1");
        s.write_all(&(n as u16).to_be_bytes()).await.expect("w");
        s.write_all(&out[..n]).await.expect("w");
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await.expect("msg 2 len");
        let mut inb = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut inb).await.expect("msg 2");
        let mut payload = vec![0u8; 65535];
        hs.read_message(&inb, &mut payload).expect("msg 2 opens");
        let transcript = hs.get_handshake_hash().to_vec();
        let digest = gridledger_core::codec::hash_parts(
            gridledger_net::handshake::NET_HANDSHAKE,
            &[&NET.0, &[0u8], &me.to_le_bytes(), &stat.1, &transcript],
        );
        let ident = gridledger_core::codec::encode(&(1u16, me, key(me).public(), key(me).sign(&digest)));
        let n = hs.write_message(&ident, &mut out).expect("msg 3");
        let mut msg3 = (n as u16).to_be_bytes().to_vec();
        msg3.extend_from_slice(&out[..n]);
        let raw = Raw {
            s,
            t: hs.into_stateless_transport_mode().expect("transport"),
            nonce: 0,
            rx_nonce: 0,
            plain: Vec::new(),
        };
        (raw, msg3)
    }

    /// `plain` in as many Noise transport messages as it takes.
    async fn send(&mut self, plain: &[u8]) {
        for chunk in plain.chunks(CHUNK) {
            let mut out = vec![0u8; chunk.len() + 16];
            let n = self.t.write_message(self.nonce, chunk, &mut out).expect("seal");
            self.nonce += 1;
            let _ = self.s.write_all(&(n as u16).to_be_bytes()).await;
            let _ = self.s.write_all(&out[..n]).await;
        }
    }

    /// A whole frame.
    async fn frame(&mut self, body: &[u8]) {
        let mut m = hdr(body.len()).to_vec();
        m.extend_from_slice(body);
        self.send(&m).await;
    }

    /// The next frame node 0 sends on this link; `None` once it closes.
    async fn next_frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if self.plain.len() >= 4 {
                let len = u32::from_be_bytes(self.plain[..4].try_into().expect("4")) as usize;
                if self.plain.len() >= 4 + len {
                    let f = self.plain[4..4 + len].to_vec();
                    self.plain.drain(..4 + len);
                    return Some(f);
                }
            }
            let mut len = [0u8; 2];
            self.s.read_exact(&mut len).await.ok()?;
            let mut c = vec![0u8; u16::from_be_bytes(len) as usize];
            self.s.read_exact(&mut c).await.ok()?;
            let mut p = vec![0u8; c.len()];
            let n = self.t.read_message(self.rx_nonce, &c, &mut p).expect("opens");
            self.rx_nonce += 1;
            self.plain.extend_from_slice(&p[..n]);
        }
    }
}

/// Validator 1's old process sends its dial's first message and reads the
/// second, then (its third message delayed) its new process dials, links
/// up and is heard; then the old process's third message arrives and the
/// old process is gone. A message node 0 sends to validator 1 afterwards
/// must reach the new process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_processs_late_dial_does_not_replace_the_new_processs_link() {
    let l0 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a0 = l0.local_addr().expect("addr");
    let set = vec![
        PeerConfig { index: 0, public_key: key(0).public(), addr: a0 },
        PeerConfig { index: 1, public_key: key(1).public(), addr: l1.local_addr().expect("addr") },
    ];
    let mut cfg = NetworkConfig::new(NET, 0, set);
    cfg.handshake_timeout = Duration::from_secs(30);
    cfg.backoff_initial = Duration::from_secs(30);
    cfg.backoff_max = Duration::from_secs(30);
    let (n0, mut in0) = Network::start_with_listener(cfg, key(0), l0).await.expect("start");
    // The old process: two of its dial's three messages.
    let (mut old, msg3) = Raw::dial_holding_the_last_message(a0, 1, &noise_static()).await;
    // The new process links up and is heard.
    let mut new = Raw::dial(a0, 1, &noise_static()).await;
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
