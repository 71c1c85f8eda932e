//! Bytes on the socket.
//!
//! Every Noise message travels as `u16 big-endian length ‖ ciphertext` (the
//! Noise spec's suggested framing; a Noise message is at most 65535 bytes).
//! After the handshake the decrypted Noise payloads form one byte stream that
//! carries application frames as `u32 big-endian length ‖ bytes`, so a frame
//! may span many Noise messages and many small frames may share one.

use crate::error::LinkError;
use bytes::Bytes;
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
        for chunk in self.plain.chunks(NOISE_MAX_PLAINTEXT) {
            // Encrypted in place at the end of `out` (reused from seal to
            // seal), not into a fresh zeroed 64-KiB buffer and copied.
            let start = self.out.len();
            self.out.resize(start + 2 + chunk.len() + NOISE_TAG_LEN, 0);
            let n = self
                .transport
                .write_message(self.nonce, chunk, &mut self.out[start + 2..])
                .map_err(|e| LinkError::Noise(e.to_string()))?;
            self.nonce += 1;
            self.out.truncate(start + 2 + n);
            // n <= NOISE_MAX_MESSAGE, so it fits the u16 prefix.
            self.out[start..start + 2].copy_from_slice(&(n as u16).to_be_bytes());
        }
        self.plain.clear();
        Ok(&self.out)
    }
}

/// Opens Noise transport messages and cuts the plaintext stream into
/// frames, refusing any frame longer than `max_frame` as soon as its header
/// arrives. Buffers at most one frame plus one Noise message.
///
/// A frame is read in two steps, so that the caller can admit it against
/// a memory budget before any of it is buffered: [`FrameOpener::next_header`]
/// reads up to the frame's header and returns its length,
/// [`FrameOpener::next_body`] then reads the body. Only the second step
/// allocates room for the frame.
///
/// Every Noise message is decrypted into one scratch buffer allocated once
/// per link (not into a buffer grown, zero-filled and reallocated per
/// message): a frame that lies inside one message is copied out of it into
/// an allocation of its exact size, and a frame that spans messages is
/// assembled in one allocation of its exact size, reserved when its body
/// is asked for.
pub(crate) struct FrameOpener {
    transport: Arc<StatelessTransportState>,
    nonce: u64,
    max_frame: usize,
    cipher: Vec<u8>,
    /// Scratch for one message's plaintext; `plain[pos..end]` not yet cut.
    plain: Vec<u8>,
    pos: usize,
    end: usize,
    /// A frame header split across messages: its first `header_got` bytes.
    header: [u8; FRAME_HEADER],
    header_got: usize,
    /// A header read whose body is not yet asked for: the frame's length.
    announced: Option<usize>,
    /// A frame body spanning messages: `(bytes so far, its length)`.
    body: Option<(Vec<u8>, usize)>,
}

impl FrameOpener {
    pub(crate) fn new(transport: Arc<StatelessTransportState>, max_frame: usize) -> Self {
        Self {
            transport,
            nonce: 0,
            max_frame,
            cipher: Vec::new(),
            plain: Vec::new(),
            pos: 0,
            end: 0,
            header: [0u8; FRAME_HEADER],
            header_got: 0,
            announced: None,
            body: None,
        }
    }

    /// The next whole frame; `Ok(None)` when the peer closed the link
    /// cleanly between frames. Cancel-safe only between frames: callers that
    /// race it against other futures must drop the link when it is cancelled.
    #[cfg(test)]
    pub(crate) async fn next_frame<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<Bytes>, LinkError> {
        match self.next_header(r).await? {
            Some(_) => self.next_body(r).await.map(Some),
            None => Ok(None),
        }
    }

    /// Reads up to the next frame's header and returns the frame's length
    /// (at most `max_frame`), buffering none of its body beyond the Noise
    /// message the header came in; `Ok(None)` when the peer closed the link
    /// cleanly between frames. Until [`FrameOpener::next_body`] is called it
    /// returns the same length again. Cancel-safe only between frames, like
    /// [`FrameOpener::next_body`].
    pub(crate) async fn next_header<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Option<usize>, LinkError> {
        if self.body.is_some() {
            // A body half read: its length is what was announced.
            return Ok(self.body.as_ref().map(|(_, len)| *len));
        }
        loop {
            if let Some(len) = self.announced {
                return Ok(Some(len));
            }
            if let Some(len) = self.take_header()? {
                self.announced = Some(len);
                return Ok(Some(len));
            }
            if !read_noise_message(r, &mut self.cipher).await? {
                let between_frames = self.header_got == 0 && self.pos == self.end;
                return if between_frames { Ok(None) } else { Err(LinkError::TruncatedFrame) };
            }
            self.open()?;
        }
    }

    /// The body of the frame whose header [`FrameOpener::next_header`]
    /// returned (it reads the header first when none was). A link that
    /// ends before the body does is a [`LinkError::TruncatedFrame`].
    pub(crate) async fn next_body<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<Bytes, LinkError> {
        if self.announced.is_none() && self.body.is_none() && self.next_header(r).await?.is_none() {
            return Err(LinkError::TruncatedFrame);
        }
        loop {
            if let Some(frame) = self.take_body() {
                return Ok(frame);
            }
            if !read_noise_message(r, &mut self.cipher).await? {
                return Err(LinkError::TruncatedFrame);
            }
            self.open()?;
        }
    }

    /// Decrypts `self.cipher` into the scratch buffer. Called only once the
    /// previous message's plaintext is all cut (`pos == end`).
    fn open(&mut self) -> Result<(), LinkError> {
        if self.cipher.len() < NOISE_TAG_LEN {
            return Err(LinkError::ShortNoiseMessage(self.cipher.len()));
        }
        if self.plain.len() < self.cipher.len() {
            // Once per link: a Noise message is at most this long.
            self.plain.resize(NOISE_MAX_MESSAGE.max(self.cipher.len()), 0);
        }
        let n = self.transport.read_message(self.nonce, &self.cipher, &mut self.plain).map_err(|e| match e {
            snow::Error::Decrypt => LinkError::Decrypt,
            other => LinkError::Noise(other.to_string()),
        })?;
        self.nonce += 1;
        self.pos = 0;
        self.end = n;
        Ok(())
    }

    /// Cuts a frame header out of the plaintext at hand: the frame's length
    /// once all four bytes are in, `None` while more are needed.
    fn take_header(&mut self) -> Result<Option<usize>, LinkError> {
        let avail = &self.plain[self.pos..self.end];
        if avail.is_empty() {
            return Ok(None);
        }
        let take = (FRAME_HEADER - self.header_got).min(avail.len());
        self.header[self.header_got..self.header_got + take].copy_from_slice(&avail[..take]);
        self.header_got += take;
        self.pos += take;
        if self.header_got < FRAME_HEADER {
            return Ok(None);
        }
        self.header_got = 0;
        let len = u32::from_be_bytes(self.header) as usize;
        if len > self.max_frame {
            return Err(LinkError::FrameTooLarge { len, max: self.max_frame });
        }
        Ok(Some(len))
    }

    /// Cuts the announced frame's body out of the plaintext at hand: the
    /// frame once it is whole, `None` while more is needed.
    fn take_body(&mut self) -> Option<Bytes> {
        if let Some(len) = self.announced.take() {
            if self.end - self.pos >= len {
                let frame = Bytes::copy_from_slice(&self.plain[self.pos..self.pos + len]);
                self.pos += len;
                return Some(frame);
            }
            self.body = Some((Vec::with_capacity(len), len));
        }
        let (body, len) = self.body.as_mut()?;
        let avail = &self.plain[self.pos..self.end];
        let take = (*len - body.len()).min(avail.len());
        body.extend_from_slice(&avail[..take]);
        self.pos += take;
        if body.len() < *len {
            return None;
        }
        self.body.take().map(|(body, _)| Bytes::from(body))
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

    /// Frames of every shape the opener cuts: empty, inside one Noise
    /// message, many in one message, a header split across two messages,
    /// a body ending exactly at a message's end, bodies spanning several
    /// messages; sealed in several calls. Each comes out whole and in order.
    #[tokio::test]
    async fn frames_split_anyhow_across_noise_messages_come_out_whole_and_in_order() {
        let (i, r) = pair();
        let mut sealer = FrameSealer::new(i);
        let frame = |len: usize, seed: u8| (0..len).map(|k| (k as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let mut sent: Vec<Vec<u8>> = Vec::new();
        // Header of the second frame split 2 + 2 across the first two messages.
        sent.push(frame(NOISE_MAX_PLAINTEXT - FRAME_HEADER - 2, 1));
        sent.push(frame(10, 2));
        sent.push(Vec::new());
        sent.extend((0..50).map(|k| frame(k * 7 % 40, k as u8)));
        let mut wire = Vec::new();
        for f in &sent {
            sealer.push_frame(f);
        }
        wire.extend_from_slice(sealer.seal().expect("seal"));
        // A body that ends exactly at the end of its message, then one
        // spanning three messages, then one byte.
        let second: Vec<Vec<u8>> =
            vec![frame(NOISE_MAX_PLAINTEXT - FRAME_HEADER, 3), frame(3 * NOISE_MAX_PLAINTEXT, 4), frame(1, 5)];
        for f in &second {
            sealer.push_frame(f);
        }
        wire.extend_from_slice(sealer.seal().expect("seal"));
        sent.extend(second);
        let mut opener = FrameOpener::new(r, 4 * NOISE_MAX_PLAINTEXT);
        let mut rd = &wire[..];
        for (k, f) in sent.iter().enumerate() {
            let got = opener.next_frame(&mut rd).await.expect("frame").expect("not the end");
            assert_eq!(&got[..], &f[..], "frame {k}");
        }
        assert!(opener.next_frame(&mut rd).await.expect("clean end").is_none());
    }

    /// The header step returns a frame's length (the same again until its
    /// body is asked for) while none of its body has arrived: a frame can be
    /// admitted before it is buffered.
    #[tokio::test]
    async fn a_frames_length_is_known_before_its_body_arrives() {
        let (i, r) = pair();
        let mut sealer = FrameSealer::new(i);
        sealer.push_frame(b"ab");
        sealer.push_frame(&[5u8; 3 * NOISE_MAX_PLAINTEXT]);
        // Only the first frame and the second one's header are sent.
        sealer.plain.truncate(FRAME_HEADER + 2 + FRAME_HEADER);
        let head = sealer.seal().expect("seal").to_vec();
        let mut opener = FrameOpener::new(r, 4 * NOISE_MAX_PLAINTEXT);
        let mut rd = &head[..];
        assert_eq!(opener.next_header(&mut rd).await.expect("header"), Some(2));
        assert_eq!(opener.next_header(&mut rd).await.expect("same header"), Some(2));
        assert_eq!(&opener.next_body(&mut rd).await.expect("body")[..], b"ab");
        assert_eq!(opener.next_header(&mut rd).await.expect("header"), Some(3 * NOISE_MAX_PLAINTEXT));
        assert!(opener.body.is_none(), "nothing of the body is buffered yet");
        // The body then arrives in the following messages.
        sealer.plain.extend_from_slice(&[5u8; 3 * NOISE_MAX_PLAINTEXT]);
        let body = sealer.seal().expect("seal").to_vec();
        let mut rd = &body[..];
        assert_eq!(opener.next_body(&mut rd).await.expect("body").len(), 3 * NOISE_MAX_PLAINTEXT);
        assert!(opener.next_header(&mut rd).await.expect("clean end").is_none());
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
