//! Shared helpers for the net crate's attack tests: a validator speaking
//! raw Noise (it dials, authenticates, then writes whatever Noise messages
//! it likes) and the validator set a test starts its nodes from.
#![allow(dead_code)]

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::PeerConfig;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Plaintext of one Noise transport message (65535 less the 16-byte tag).
pub const CHUNK: usize = 65535 - 16;

/// A Noise static key pair (private, public): one process of a validator.
pub type NoiseStatic = (Vec<u8>, Vec<u8>);

/// A fresh Noise static key pair.
pub fn noise_static() -> NoiseStatic {
    let params: snow::params::NoiseParams = gridledger_net::handshake::NOISE_PARAMS.parse().expect("params");
    let kp = snow::Builder::new(params).generate_keypair().expect("keypair");
    (kp.private, kp.public)
}

/// The initiator's side of a handshake on network `net` with the Noise
/// static key `stat`.
pub fn initiator(net: Hash32, stat: &NoiseStatic) -> snow::HandshakeState {
    let params: snow::params::NoiseParams = gridledger_net::handshake::NOISE_PARAMS.parse().expect("params");
    let mut prologue = b"gridledger/net/v1".to_vec();
    prologue.extend_from_slice(&net.0);
    snow::Builder::new(params)
        .local_private_key(&stat.0)
        .and_then(|b| b.prologue(&prologue))
        .and_then(|b| b.build_initiator())
        .expect("initiator")
}

/// Every validator of `addrs`, numbered in order, with its key from `key`.
pub fn peer_set(key: impl Fn(u32) -> KeyPair, addrs: &[SocketAddr]) -> Vec<PeerConfig> {
    addrs
        .iter()
        .enumerate()
        .map(|(i, a)| PeerConfig { index: i as u32, public_key: key(i as u32).public(), addr: *a })
        .collect()
}

/// Node 0's listener, validator 1's (bound and never served), both on
/// 127.0.0.1, and the set naming the two.
pub async fn two_listeners(key: impl Fn(u32) -> KeyPair) -> (TcpListener, TcpListener, Vec<PeerConfig>) {
    let l0 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let l1 = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let set = peer_set(key, &[l0.local_addr().expect("addr"), l1.local_addr().expect("addr")]);
    (l0, l1, set)
}

/// A frame header announcing `len` bytes.
pub fn hdr(len: usize) -> [u8; 4] {
    (len as u32).to_be_bytes()
}

/// An ordering aid only (nothing is asserted about it): lets what was
/// just sent, dialled or accepted happen.
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// A validator speaking raw Noise on one link.
pub struct Raw {
    pub s: TcpStream,
    pub t: snow::StatelessTransportState,
    pub nonce: u64,
    pub rx_nonce: u64,
    /// Plaintext received and not yet cut into frames.
    pub plain: Vec<u8>,
}

impl Raw {
    /// Validator `me` (its identity key `key(me)`) dials `to` on network
    /// `net` with the Noise static key `stat` (the same key twice is the
    /// same process dialling again) and completes the handshake.
    pub async fn dial(to: SocketAddr, net: Hash32, me: u32, key: impl Fn(u32) -> KeyPair, stat: &NoiseStatic) -> Raw {
        let (mut raw, msg3) = Raw::dial_holding_the_last_message(to, net, me, key, stat).await;
        raw.s.write_all(&msg3).await.expect("w");
        raw
    }

    /// The handshake up to its third message, which is returned unsent
    /// (length prefix included): a dial whose last message is delayed.
    pub async fn dial_holding_the_last_message(
        to: SocketAddr,
        net: Hash32,
        me: u32,
        key: impl Fn(u32) -> KeyPair,
        stat: &NoiseStatic,
    ) -> (Raw, Vec<u8>) {
        let id = key(me);
        let mut hs = initiator(net, stat);
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
            &[&net.0, &[0u8], &me.to_le_bytes(), &stat.1, &transcript],
        );
        let ident = gridledger_core::codec::encode(&(1u16, me, id.public(), id.sign(&digest)));
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

    /// One Noise transport message carrying `plain`.
    pub async fn msg(&mut self, plain: &[u8]) {
        let mut out = vec![0u8; plain.len() + 16];
        let n = self.t.write_message(self.nonce, plain, &mut out).expect("seal");
        self.nonce += 1;
        let _ = self.s.write_all(&(n as u16).to_be_bytes()).await;
        let _ = self.s.write_all(&out[..n]).await;
    }

    /// `plain` in as many Noise transport messages as it takes.
    pub async fn send(&mut self, plain: &[u8]) {
        for chunk in plain.chunks(CHUNK) {
            self.msg(chunk).await;
        }
    }

    /// Raw bytes on the socket (a malformed Noise message).
    pub async fn raw(&mut self, b: &[u8]) {
        let _ = self.s.write_all(b).await;
    }

    /// The next frame the node sends on this link; `None` once it closes.
    pub async fn next_frame(&mut self) -> Option<Vec<u8>> {
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
