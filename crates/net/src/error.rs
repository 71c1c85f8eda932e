//! Typed errors. Everything that arrives from a socket ends in one of these,
//! never in a panic; link and handshake errors are `Clone` so they can be
//! published as [`crate::NetEvent`]s to any number of observers.

use gridledger_core::CryptoError;
use std::net::SocketAddr;
use std::sync::Arc;

/// A configuration that cannot work; returned by [`crate::Network::start`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("validator index {0} appears more than once")]
    DuplicateIndex(u32),
    #[error("validator key of index {0} also belongs to another index")]
    DuplicateKey(u32),
    #[error("my index {0} is not in the validator set")]
    MeNotInSet(u32),
    #[error("my key does not match the configured key of index {0}")]
    KeyMismatch(u32),
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    #[error("max_frame {0} exceeds the u32 length prefix")]
    FrameLimitTooLarge(usize),
}

/// Starting a [`crate::Network`] failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("noise setup failed: {0}")]
    Noise(String),
}

/// Why [`crate::Network::send`] did not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no peer with validator index {0}")]
    UnknownPeer(u32),
    #[error("message of {len} bytes exceeds the frame limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the network is shut down")]
    Shutdown,
}

/// Why a connection was refused before it carried any message.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandshakeError {
    #[error("i/o during handshake: {0}")]
    Io(Arc<std::io::Error>),
    #[error("handshake timed out")]
    Timeout,
    #[error("noise handshake failed: {0}")]
    Noise(String),
    #[error("a noise message had length 0")]
    EmptyMessage,
    #[error("the first handshake message carried a payload")]
    UnexpectedPayload,
    #[error("malformed identity payload: {0}")]
    Malformed(String),
    #[error("unsupported handshake version {0}")]
    UnsupportedVersion(u16),
    #[error("peer claims my own index {0}")]
    SelfConnection(u32),
    #[error("index {index} is not in the validator set")]
    UnknownValidator { index: u32 },
    #[error("index {index} presented a key that is not its configured validator key")]
    KeyMismatch { index: u32 },
    #[error("dialled validator {expected} but {got} answered")]
    UnexpectedPeer { expected: u32, got: u32 },
    #[error("identity signature of index {index} does not verify: {source}")]
    BadSignature {
        index: u32,
        #[source]
        source: CryptoError,
    },
}

impl HandshakeError {
    /// Whether the peer failed to prove an acceptable identity (as opposed to
    /// a transport hiccup): those are logged loudly.
    pub fn is_authentication_failure(&self) -> bool {
        !matches!(self, HandshakeError::Io(_) | HandshakeError::Timeout)
    }
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::Io(Arc::new(e))
    }
}

/// Why an authenticated link was dropped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("i/o: {0}")]
    Io(Arc<std::io::Error>),
    #[error("a noise message of {0} bytes is shorter than its authentication tag")]
    ShortNoiseMessage(usize),
    #[error("a noise message failed to decrypt (tampered or garbage)")]
    Decrypt,
    #[error("noise failure: {0}")]
    Noise(String),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    #[error("the connection ended inside a frame")]
    TruncatedFrame,
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        LinkError::Io(Arc::new(e))
    }
}
