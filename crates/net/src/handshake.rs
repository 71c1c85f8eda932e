//! The authenticated handshake: Noise XX, plus a validator identity in each
//! side's encrypted handshake payload.
//!
//! Noise (`Noise_XX_25519_ChaChaPoly_SHA256`, from `snow`) gives an encrypted
//! channel between two X25519 static keys, each proven by the DH operations
//! of the handshake. Each node makes a fresh static key per process. What
//! Noise cannot say is *which validator* a static key belongs to; so each
//! side's payload (responder in message 2, initiator in message 3) carries
//! `IdentityPayload { version, index, validator_key, signature }` where the
//! signature, by the validator's secp256k1 key, covers
//!
//! `hash_parts(NET_HANDSHAKE, [network_id, role, index, noise_static, h])`
//!
//! with `h` the Noise handshake hash just before that message. The static key
//! binds the identity to whoever holds the Noise secret (the libp2p-noise
//! construction); `h` additionally binds it to this one handshake (both
//! ephemeral keys are in it), so a payload seen once is useless in any other
//! session; `role` keeps one side's signature from being reflected back; the
//! network id separates chains. The receiver refuses unknown indices, keys
//! that are not the configured key of that index, its own index, a different
//! validator than the one it dialled, and signatures that do not verify.

use crate::error::HandshakeError;
use crate::wire::{read_noise_message, write_noise_message, NOISE_MAX_MESSAGE};
use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::{crypto, decode, encode, Hash32, KeyPair, PublicKey, Signature, Tag};
use snow::{HandshakeState, StatelessTransportState};
use std::collections::BTreeMap;
use tokio::io::{AsyncRead, AsyncWrite};

/// The Noise protocol every link speaks.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";
/// Domain of the identity signatures.
pub const NET_HANDSHAKE: Tag = Tag("gridledger/net-handshake/v1");
const PROLOGUE: &[u8] = b"gridledger/net/v1";
const VERSION: u16 = 1;
const MAX_PAYLOAD: usize = 512;

/// Who signs: each side signs as its role, so signatures cannot be reflected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Role {
    Initiator = 0,
    Responder = 1,
}

#[derive(BorshSerialize, BorshDeserialize, Debug)]
struct IdentityPayload {
    version: u16,
    index: u32,
    validator_key: PublicKey,
    signature: Signature,
}

/// This node's long-lived identity and its per-process Noise key.
pub(crate) struct LocalIdentity {
    pub(crate) network_id: Hash32,
    pub(crate) index: u32,
    pub(crate) key: KeyPair,
    noise_private: Vec<u8>,
    pub(crate) noise_public: Vec<u8>,
}

impl LocalIdentity {
    pub(crate) fn new(network_id: Hash32, index: u32, key: KeyPair) -> Result<Self, snow::Error> {
        let kp = snow::Builder::new(params()).generate_keypair()?;
        Ok(Self { network_id, index, key, noise_private: kp.private, noise_public: kp.public })
    }

    fn prologue(&self) -> Vec<u8> {
        let mut p = PROLOGUE.to_vec();
        p.extend_from_slice(&self.network_id.0);
        p
    }

    fn builder_state(&self, role: Role) -> Result<HandshakeState, HandshakeError> {
        let prologue = self.prologue();
        let b = snow::Builder::new(params())
            .local_private_key(&self.noise_private)
            .and_then(|b| b.prologue(&prologue))
            .map_err(noise_err)?;
        match role {
            Role::Initiator => b.build_initiator(),
            Role::Responder => b.build_responder(),
        }
        .map_err(noise_err)
    }

    fn payload(&self, role: Role, transcript: &[u8]) -> Vec<u8> {
        self.payload_signed_by(&self.key, role, transcript)
    }

    /// Separate from [`Self::payload`] so tests can forge signatures.
    fn payload_signed_by(&self, signer: &KeyPair, role: Role, transcript: &[u8]) -> Vec<u8> {
        let digest = identity_digest(&self.network_id, role, self.index, &self.noise_public, transcript);
        encode(&IdentityPayload {
            version: VERSION,
            index: self.index,
            validator_key: self.key.public(),
            signature: signer.sign(&digest),
        })
    }
}

/// The validator set as the handshake needs it.
pub(crate) type Directory = BTreeMap<u32, PublicKey>;

/// An authenticated link, ready for transport messages.
pub(crate) struct Authenticated {
    pub(crate) peer: u32,
    pub(crate) remote_static: [u8; 32],
    pub(crate) transport: StatelessTransportState,
}

fn params() -> snow::params::NoiseParams {
    // A constant that parses; checked by the `noise_params_parse` test.
    NOISE_PARAMS.parse().unwrap_or_else(|_| unreachable!("constant Noise parameters parse"))
}

fn noise_err(e: snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

fn identity_digest(network_id: &Hash32, role: Role, index: u32, noise_static: &[u8], transcript: &[u8]) -> Hash32 {
    gridledger_core::codec::hash_parts(
        NET_HANDSHAKE,
        &[&network_id.0, &[role as u8], &index.to_le_bytes(), noise_static, transcript],
    )
}

async fn recv<S: AsyncRead + Unpin>(io: &mut S, buf: &mut Vec<u8>) -> Result<(), HandshakeError> {
    if !read_noise_message(io, buf).await? {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    if buf.is_empty() {
        return Err(HandshakeError::EmptyMessage);
    }
    Ok(())
}

/// Checks a peer's identity payload against the set and the transcript.
fn verify_payload(
    me: &LocalIdentity,
    dir: &Directory,
    bytes: &[u8],
    signer_role: Role,
    remote_static: Option<&[u8]>,
    transcript: &[u8],
    expected: Option<u32>,
) -> Result<(u32, [u8; 32]), HandshakeError> {
    let p: IdentityPayload = decode(bytes, MAX_PAYLOAD).map_err(|e| HandshakeError::Malformed(e.to_string()))?;
    if p.version != VERSION {
        return Err(HandshakeError::UnsupportedVersion(p.version));
    }
    if p.index == me.index {
        return Err(HandshakeError::SelfConnection(p.index));
    }
    let key = dir.get(&p.index).ok_or(HandshakeError::UnknownValidator { index: p.index })?;
    if *key != p.validator_key {
        return Err(HandshakeError::KeyMismatch { index: p.index });
    }
    if let Some(expected) = expected {
        if expected != p.index {
            return Err(HandshakeError::UnexpectedPeer { expected, got: p.index });
        }
    }
    let rs: [u8; 32] = remote_static
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| HandshakeError::Noise("no remote static key".into()))?;
    let digest = identity_digest(&me.network_id, signer_role, p.index, &rs, transcript);
    crypto::verify(key, &digest, &p.signature)
        .map_err(|source| HandshakeError::BadSignature { index: p.index, source })?;
    Ok((p.index, rs))
}

/// Dials side: `-> e`, `<- e, ee, s, es + identity`, `-> s, se + identity`.
pub(crate) async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    me: &LocalIdentity,
    dir: &Directory,
    expected: u32,
) -> Result<Authenticated, HandshakeError> {
    initiate_signed_by(io, me, &me.key, dir, expected).await
}

/// [`initiate`] with the identity signature made by `signer` (tests use a
/// wrong key to check that forged signatures are refused).
pub(crate) async fn initiate_signed_by<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    me: &LocalIdentity,
    signer: &KeyPair,
    dir: &Directory,
    expected: u32,
) -> Result<Authenticated, HandshakeError> {
    let mut hs = me.builder_state(Role::Initiator)?;
    let mut out = vec![0u8; NOISE_MAX_MESSAGE];
    let mut inb = Vec::new();
    let mut payload = vec![0u8; NOISE_MAX_MESSAGE];

    let n = hs.write_message(&[], &mut out).map_err(noise_err)?;
    write_noise_message(io, &out[..n]).await?;

    let transcript = hs.get_handshake_hash().to_vec();
    recv(io, &mut inb).await?;
    let len = hs.read_message(&inb, &mut payload).map_err(noise_err)?;
    let (peer, remote_static) =
        verify_payload(me, dir, &payload[..len], Role::Responder, hs.get_remote_static(), &transcript, Some(expected))?;

    let transcript = hs.get_handshake_hash().to_vec();
    let mine = me.payload_signed_by(signer, Role::Initiator, &transcript);
    let n = hs.write_message(&mine, &mut out).map_err(noise_err)?;
    write_noise_message(io, &out[..n]).await?;

    let transport = hs.into_stateless_transport_mode().map_err(noise_err)?;
    Ok(Authenticated { peer, remote_static, transport })
}

/// Accepting side of [`initiate`].
pub(crate) async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut S,
    me: &LocalIdentity,
    dir: &Directory,
) -> Result<Authenticated, HandshakeError> {
    let mut hs = me.builder_state(Role::Responder)?;
    let mut out = vec![0u8; NOISE_MAX_MESSAGE];
    let mut inb = Vec::new();
    let mut payload = vec![0u8; NOISE_MAX_MESSAGE];

    recv(io, &mut inb).await?;
    let len = hs.read_message(&inb, &mut payload).map_err(noise_err)?;
    if len != 0 {
        return Err(HandshakeError::UnexpectedPayload);
    }

    let transcript = hs.get_handshake_hash().to_vec();
    let mine = me.payload(Role::Responder, &transcript);
    let n = hs.write_message(&mine, &mut out).map_err(noise_err)?;
    write_noise_message(io, &out[..n]).await?;

    let transcript = hs.get_handshake_hash().to_vec();
    recv(io, &mut inb).await?;
    let len = hs.read_message(&inb, &mut payload).map_err(noise_err)?;
    let (peer, remote_static) =
        verify_payload(me, dir, &payload[..len], Role::Initiator, hs.get_remote_static(), &transcript, None)?;

    let transport = hs.into_stateless_transport_mode().map_err(noise_err)?;
    Ok(Authenticated { peer, remote_static, transport })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(n: u32) -> (Vec<KeyPair>, Directory) {
        let keys: Vec<KeyPair> = (0..n).map(|i| KeyPair::from_seed(&format!("hs-{i}"))).collect();
        let dir = keys.iter().enumerate().map(|(i, k)| (i as u32, k.public())).collect();
        (keys, dir)
    }

    /// Runs both ends of a handshake over an in-memory pipe; each end owns
    /// its half, so an end that gives up closes it and the other end stops.
    async fn run<A, B>(
        a: impl FnOnce(tokio::io::DuplexStream) -> A,
        b: impl FnOnce(tokio::io::DuplexStream) -> B,
    ) -> (A::Output, B::Output)
    where
        A: std::future::Future,
        B: std::future::Future,
    {
        let (x, y) = tokio::io::duplex(1 << 16);
        tokio::time::timeout(std::time::Duration::from_secs(10), async { tokio::join!(a(x), b(y)) })
            .await
            .expect("handshake test ends in time")
    }

    fn ident(i: u32, key: &KeyPair) -> LocalIdentity {
        LocalIdentity::new(Hash32([9; 32]), i, key.clone()).expect("noise keypair")
    }

    #[test]
    fn noise_params_parse() {
        assert!(NOISE_PARAMS.parse::<snow::params::NoiseParams>().is_ok());
    }

    #[tokio::test]
    async fn both_sides_learn_each_other() {
        let (keys, dir) = setup(2);
        let (a, b) = (ident(0, &keys[0]), ident(1, &keys[1]));
        let (a, b, dir) = (&a, &b, &dir);
        let (ra, rb) = run(
            |mut x| async move { initiate(&mut x, a, dir, 1).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        let (ra, rb) = (ra.expect("initiator"), rb.expect("responder"));
        assert_eq!(ra.peer, 1);
        assert_eq!(rb.peer, 0);
        assert_eq!(ra.remote_static.as_slice(), b.noise_public.as_slice());
        assert_eq!(rb.remote_static.as_slice(), a.noise_public.as_slice());
    }

    #[tokio::test]
    async fn forged_signature_is_refused() {
        let (keys, dir) = setup(2);
        let (a, b) = (ident(0, &keys[0]), ident(1, &keys[1]));
        let (a, b, dir) = (&a, &b, &dir);
        let forger = &KeyPair::from_seed("not-validator-0");
        let (_, rb) = run(
            |mut x| async move { initiate_signed_by(&mut x, a, forger, dir, 1).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        assert!(matches!(rb, Err(HandshakeError::BadSignature { index: 0, .. })));
    }

    #[tokio::test]
    async fn wrong_peer_unknown_index_and_wrong_network_are_refused() {
        let (keys, dir) = setup(3);
        let (a, b) = (ident(0, &keys[0]), ident(1, &keys[1]));
        let (a, b, dir) = (&a, &b, &dir);
        // Dialled 2, but 1 answered.
        let (ra, _) = run(
            |mut x| async move { initiate(&mut x, a, dir, 2).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        assert!(matches!(ra, Err(HandshakeError::UnexpectedPeer { expected: 2, got: 1 })));

        // An outsider claiming index 7.
        let outsider = &ident(7, &KeyPair::from_seed("outsider"));
        let (_, rb) = run(
            |mut x| async move { initiate(&mut x, outsider, dir, 1).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        assert!(matches!(rb, Err(HandshakeError::UnknownValidator { index: 7 })));

        // Index 0's slot with someone else's key.
        let impostor = &ident(0, &KeyPair::from_seed("impostor"));
        let (_, rb) = run(
            |mut x| async move { initiate(&mut x, impostor, dir, 1).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        assert!(matches!(rb, Err(HandshakeError::KeyMismatch { index: 0 })));

        // Another chain: the prologue differs, so Noise itself fails.
        let other = &LocalIdentity::new(Hash32([1; 32]), 0, keys[0].clone()).expect("kp");
        let (ra, rb) = run(
            |mut x| async move { initiate(&mut x, other, dir, 1).await },
            |mut y| async move { respond(&mut y, b, dir).await },
        )
        .await;
        // The initiator cannot decrypt the responder's reply; the responder
        // then sees the connection end before the third message.
        assert!(matches!(ra, Err(HandshakeError::Noise(_))), "{:?}", ra.as_ref().err());
        assert!(matches!(rb, Err(HandshakeError::Io(_))), "{:?}", rb.as_ref().err());
    }

    fn payload(version: u16, index: u32, key: &KeyPair) -> Vec<u8> {
        encode(&IdentityPayload { version, index, validator_key: key.public(), signature: key.sign(&Hash32([0; 32])) })
    }

    #[test]
    fn identity_payloads_are_checked_field_by_field() {
        let (keys, dir) = setup(3);
        let me = ident(0, &keys[0]);
        let check = |bytes: &[u8]| verify_payload(&me, &dir, bytes, Role::Initiator, Some(&[5u8; 32]), b"t", None);
        assert!(matches!(check(&[1, 2, 3]), Err(HandshakeError::Malformed(_))));
        assert!(matches!(check(&payload(99, 1, &keys[1])), Err(HandshakeError::UnsupportedVersion(99))));
        assert!(matches!(check(&payload(VERSION, 0, &keys[0])), Err(HandshakeError::SelfConnection(0))));
        assert!(matches!(check(&payload(VERSION, 5, &keys[1])), Err(HandshakeError::UnknownValidator { index: 5 })));
        assert!(matches!(check(&payload(VERSION, 2, &keys[1])), Err(HandshakeError::KeyMismatch { index: 2 })));
        // Right fields, signature over another digest.
        assert!(matches!(check(&payload(VERSION, 1, &keys[1])), Err(HandshakeError::BadSignature { index: 1, .. })));
        let no_static = verify_payload(&me, &dir, &payload(VERSION, 1, &keys[1]), Role::Initiator, None, b"t", None);
        assert!(matches!(no_static, Err(HandshakeError::Noise(_))));
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_under_the_callers_deadline() {
        let (keys, dir) = setup(2);
        let b = ident(1, &keys[1]);
        let (_x, mut y) = tokio::io::duplex(1 << 16);
        let r = tokio::time::timeout(std::time::Duration::from_millis(50), respond(&mut y, &b, &dir))
            .await
            .unwrap_or(Err(HandshakeError::Timeout));
        assert!(matches!(r, Err(HandshakeError::Timeout)));
        assert!(!HandshakeError::Timeout.is_authentication_failure());
    }

    #[tokio::test]
    async fn garbage_is_refused() {
        let (keys, dir) = setup(2);
        let b = ident(1, &keys[1]);
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let garbage = async {
            use tokio::io::AsyncWriteExt;
            let _ = x.write_all(&[0, 40]).await;
            let _ = x.write_all(&[0xAB; 40]).await;
            let _ = x.write_all(&[0, 200]).await;
            let _ = x.write_all(&[0xCD; 200]).await;
            drop(x);
        };
        let (_, rb) = tokio::join!(garbage, respond(&mut y, &b, &dir));
        // 40 bytes where the 32-byte ephemeral key goes: 8 bytes of payload
        // in a message that must carry none.
        assert!(matches!(rb, Err(HandshakeError::UnexpectedPayload)), "{:?}", rb.as_ref().err());
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let empty = async {
            use tokio::io::AsyncWriteExt;
            let _ = x.write_all(&[0, 0]).await;
        };
        let (_, rb) = tokio::join!(empty, respond(&mut y, &b, &dir));
        assert!(matches!(rb, Err(HandshakeError::EmptyMessage)), "{:?}", rb.as_ref().err());
        let (mut x, mut y) = tokio::io::duplex(1 << 16);
        let short = async {
            use tokio::io::AsyncWriteExt;
            let _ = x.write_all(&[0, 5, 1, 2, 3, 4, 5]).await;
        };
        let (_, rb) = tokio::join!(short, respond(&mut y, &b, &dir));
        assert!(matches!(rb, Err(HandshakeError::Noise(_))), "{:?}", rb.as_ref().err());
    }
}
