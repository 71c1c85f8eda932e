//! Bytes on the socket.
//!
//! Every Noise message travels as `u16 big-endian length ‖ ciphertext` (the
//! Noise spec's suggested framing; a Noise message is at most 65535 bytes).
//! After the handshake the decrypted Noise payloads form one byte stream that
//! carries application frames as `u32 big-endian length ‖ bytes`, so a frame
//! may span many Noise messages and many small frames may share one.

use crate::error::LinkError;
use bytes::{Buf, Bytes, BytesMut};
use snow::StatelessTransportState;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Noise's limit on one message, ciphertext included.
pub(crate) const NOISE_MAX_MESSAGE: usize = 65535;
/// ChaChaPoly's authentication tag.
pub(crate) const NOISE_TAG_LEN: usize = 16;
/// Plaintext that fits one Noise transport message.
pub(crate) const NOISE_MAX_PLAINTEXT: usize = NOISE_MAX_MESSAGE - NOISE_TAG_LEN;
const FRAME_HEADER: usize = 4;

/// Writes one length-prefixed Noise message.
pub(crate) async fn write_noise_message<W: AsyncWrite + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "noise message > 65535"))?;
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    w.write_all(&out).await?;
    w.flush().await
}

/// Reads one length-prefixed Noise message into `buf`. `Ok(false)` is a clean
/// end of stream at a message boundary.
pub(crate) async fn read_noise_message<R: AsyncRead + Unpin>(r: &mut R, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut len = [0u8; 2];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    buf.resize(usize::from(u16::from_be_bytes(len)), 0);
    r.read_exact(buf).await?;
    Ok(true)
}

/// Seals application frames into Noise transport messages. One per link
/// direction; owns that direction's nonce.
pub(crate) struct FrameSealer {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    plain: Vec<u8>,
    out: Vec<u8>,
}

impl FrameSealer {
    pub(crate) fn new(transport: Arc<StatelessTransportState>) -> Self {
        Self { transport, nonce: 0, plain: Vec::new(), out: Vec::new() }
    }

    /// Appends a frame to the pending plaintext. The caller bounds `payload`
    /// by the frame limit, which fits `u32`.
    pub(crate) fn push_frame(&mut self, payload: &[u8]) {
        let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        self.plain.extend_from_slice(&len.to_be_bytes());
        self.plain.extend_from_slice(payload);
    }

    pub(crate) fn pending(&self) -> usize {
        self.plain.len()
    }

    /// Encrypts the pending plaintext in chunks that respect Noise's 65535-byte
    /// message limit and returns the wire bytes to write.
    pub(crate) fn seal(&mut self) -> Result<&[u8], LinkError> {
        self.out.clear();
        let mut cipher = [0u8; NOISE_MAX_MESSAGE];
        for chunk in self.plain.chunks(NOISE_MAX_PLAINTEXT) {
            let n = self
                .transport
                .write_message(self.nonce, chunk, &mut cipher)
                .map_err(|e| LinkError::Noise(e.to_string()))?;
            self.nonce += 1;
            // n <= NOISE_MAX_MESSAGE, so it fits the u16 prefix.
            self.out.extend_from_slice(&(n as u16).to_be_bytes());
            self.out.extend_from_slice(&cipher[..n]);
        }
        self.plain.clear();
        Ok(&self.out)
    }
}

/// Opens Noise transport messages and cuts the plaintext stream into
/// frames, refusing any frame longer than `max_frame` as soon as its header
/// arrives. Buffers at most one frame plus one Noise message.
pub(crate) struct FrameOpener {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    max_frame: usize,
    stream: BytesMut,
    cipher: Vec<u8>,
}

impl FrameOpener {
    pub(crate) fn new(transport: Arc<StatelessTransportState>, max_frame: usize) -> Self {
        Self { transport, nonce: 0, max_frame, stream: BytesMut::new(), cipher: Vec::new() }
    }

    /// The next whole frame; `Ok(None)` when the peer closed the link
    /// cleanly between frames. Cancel-safe only between frames: callers that
    /// race it against other futures must drop the link when it is cancelled.
    pub(crate) async fn next_frame<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Bytes>, LinkError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            if !read_noise_message(r, &mut self.cipher).await? {
                return if self.stream.is_empty() { Ok(None) } else { Err(LinkError::TruncatedFrame) };
            }
            self.open()?;
        }
    }

    /// Decrypts `self.cipher` onto the end of the plaintext stream.
    fn open(&mut self) -> Result<(), LinkError> {
        if self.cipher.len() < NOISE_TAG_LEN {
            return Err(LinkError::ShortNoiseMessage(self.cipher.len()));
        }
        let start = self.stream.len();
        self.stream.resize(start + self.cipher.len(), 0);
        let n =
            self.transport.read_message(self.nonce, &self.cipher, &mut self.stream[start..]).map_err(|e| match e {
                snow::Error::Decrypt => LinkError::Decrypt,
                other => LinkError::Noise(other.to_string()),
            })?;
        self.nonce += 1;
        self.stream.truncate(start + n);
        Ok(())
    }

    fn take_frame(&mut self) -> Result<Option<Bytes>, LinkError> {
        if self.stream.len() < FRAME_HEADER {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER];
        header.copy_from_slice(&self.stream[..FRAME_HEADER]);
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max_frame {
            return Err(LinkError::FrameTooLarge { len, max: self.max_frame });
        }
        if self.stream.len() < FRAME_HEADER + len {
            self.stream.reserve(FRAME_HEADER + len - self.stream.len());
            return Ok(None);
        }
        self.stream.advance(FRAME_HEADER);
        Ok(Some(self.stream.split_to(len).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Arc<StatelessTransportState>, Arc<StatelessTransportState>) {
        let params: snow::params::NoiseParams = "Noise_NN_25519_ChaChaPoly_SHA256".parse().expect("params");
        let mut i = snow::Builder::new(params.clone()).build_initiator().expect("initiator");
        let mut r = snow::Builder::new(params).build_responder().expect("responder");
        let (mut a, mut b) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut a).expect("e");
        r.read_message(&a[..n], &mut b).expect("read e");
        let n = r.write_message(&[], &mut a).expect("e, ee");
        i.read_message(&a[..n], &mut b).expect("read e, ee");
        (
            Arc::new(i.into_stateless_transport_mode().expect("i")),
            Arc::new(r.into_stateless_transport_mode().expect("r")),
        )
    }

    #[tokio::test]
    async fn a_link_that_ends_inside_a_frame_is_a_truncated_frame() {
        let (i, r) = pair();
        let mut sealer = FrameSealer::new(i);
        sealer.push_frame(b"whole");
        sealer.push_frame(&[7u8; 100]);
        // Cut the second frame short: its header promises 100 bytes.
        sealer.plain.truncate(sealer.plain.len() - 40);
        let wire = sealer.seal().expect("seal").to_vec();
        let mut opener = FrameOpener::new(r, 1_000);
        let mut rd = &wire[..];
        assert_eq!(opener.next_frame(&mut rd).await.expect("first").as_deref(), Some(&b"whole"[..]));
        assert!(matches!(opener.next_frame(&mut rd).await, Err(LinkError::TruncatedFrame)));
    }

    #[tokio::test]
    async fn a_clean_end_between_frames_is_none_and_short_or_oversize_input_is_refused() {
        let (i, r) = pair();
        let mut sealer = FrameSealer::new(i);
        sealer.push_frame(b"x");
        let wire = sealer.seal().expect("seal").to_vec();
        let mut opener = FrameOpener::new(r.clone(), 1_000);
        let mut rd = &wire[..];
        assert!(opener.next_frame(&mut rd).await.expect("frame").is_some());
        assert!(opener.next_frame(&mut rd).await.expect("end").is_none());
        // A Noise message shorter than its tag.
        let mut rd = &[0u8, 3, 1, 2, 3][..];
        assert!(matches!(
            FrameOpener::new(r.clone(), 1_000).next_frame(&mut rd).await,
            Err(LinkError::ShortNoiseMessage(3))
        ));
        // A frame header over the limit is refused before its body arrives.
        let (i, r) = pair();
        let mut sealer = FrameSealer::new(i);
        sealer.push_frame(&[0u8; 2_000]);
        sealer.plain.truncate(FRAME_HEADER);
        let wire = sealer.seal().expect("seal").to_vec();
        let mut rd = &wire[..];
        assert!(matches!(
            FrameOpener::new(r, 1_000).next_frame(&mut rd).await,
            Err(LinkError::FrameTooLarge { len: 2_000, max: 1_000 })
        ));
    }
}
