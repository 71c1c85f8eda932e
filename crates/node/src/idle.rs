//! A TCP stream that fails once no byte has moved either way for a while,
//! so idle, half-sent and never-read connections end instead of holding a
//! file descriptor and a connection slot forever; and once the bytes the
//! kernel still holds for the peer (unsent or unacknowledged) stay above a
//! bound for longer than a deadline, so a client that reads a trickle (an
//! event subscriber that stopped reading but takes a byte now and then)
//! cannot keep its slot and its send buffer by defeating the idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::rpc::RpcCounters;

/// The unsent-bytes bound of a connection: the peer is dropped once the
/// bytes queued for it stay above `max_unsent` for longer than `timeout`.
#[derive(Clone, Copy, Debug)]
pub struct UnsentLimit {
    pub max_unsent: usize,
    pub timeout: Duration,
}

/// Source of the kernel's count of bytes queued for the peer.
pub trait Unsent {
    /// Bytes written but not yet acknowledged by the peer; `None` where unknown.
    fn unsent(&self) -> Option<usize>;
    /// Makes the coming close discard what is queued (a reset), so a peer
    /// dropped for not reading frees its send buffer at once.
    fn discard_on_close(&self) {}
}

impl Unsent for tokio::net::TcpStream {
    #[cfg(target_os = "linux")]
    fn unsent(&self) -> Option<usize> {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (= TIOCOUTQ) on a TCP socket writes one `c_int`
        // to `n`; the descriptor stays open while `self` is borrowed.
        let r = unsafe { libc::ioctl(self.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        (r == 0).then_some(n.max(0) as usize)
    }

    #[cfg(not(target_os = "linux"))]
    fn unsent(&self) -> Option<usize> {
        None
    }

    fn discard_on_close(&self) {
        let _ = self.set_zero_linger();
    }
}

pub struct IdleStream<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    counters: Arc<RpcCounters>,
    expired: bool,
    unsent: Option<UnsentLimit>,
    /// Armed while the unsent bytes are above the bound: when it fires
    /// with them still above, the connection fails.
    backlog: Option<Pin<Box<Sleep>>>,
}

impl<S: Unsent> IdleStream<S> {
    pub fn new(inner: S, idle: Duration, counters: Arc<RpcCounters>) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            counters,
            expired: false,
            unsent: None,
            backlog: None,
        }
    }

    /// Also fail once the unsent bytes stay above `limit.max_unsent` for
    /// longer than `limit.timeout`.
    pub fn with_unsent_limit(mut self, limit: UnsentLimit) -> Self {
        self.unsent = Some(limit);
        self
    }

    fn progressed(&mut self) {
        let idle = self.idle;
        self.deadline.as_mut().reset(Instant::now() + idle);
    }

    /// Arms the backlog deadline when the unsent bytes are above the bound
    /// (keeping an armed one running), disarms it when they fall below.
    fn observe_backlog(&mut self) {
        let Some(limit) = self.unsent else { return };
        match self.inner.unsent() {
            Some(n) if n > limit.max_unsent => {
                if self.backlog.is_none() {
                    self.backlog = Some(Box::pin(tokio::time::sleep(limit.timeout)));
                }
            }
            _ => self.backlog = None,
        }
    }

    /// Whether the unsent bytes stayed above the bound past the deadline
    /// (registering the deadline's wake-up otherwise).
    fn backlog_expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.observe_backlog();
        let Some(b) = &mut self.backlog else { return false };
        if b.as_mut().poll(cx).is_pending() {
            return false;
        }
        if !self.expired {
            self.expired = true;
            self.counters.slow_readers_dropped.fetch_add(1, Relaxed);
            self.inner.discard_on_close();
        }
        true
    }

    fn slow_reader() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "peer does not read: unsent bytes above the bound too long")
    }

    /// Called when the inner stream is not ready: fails once a deadline
    /// has passed (and registers the timers' wake-ups otherwise).
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.backlog_expired(cx) {
            return Poll::Ready(Self::slow_reader());
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            if !self.expired {
                self.expired = true;
                self.counters.connections_timed_out.fetch_add(1, Relaxed);
            }
            return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
        }
        Poll::Pending
    }

    /// After bytes went out: progress for the idle timeout, but a backlog
    /// that stayed above the bound too long still ends the connection.
    fn wrote(&mut self, cx: &mut Context<'_>, n: usize) -> Poll<io::Result<usize>> {
        if n > 0 {
            self.progressed();
        }
        if self.backlog_expired(cx) {
            return Poll::Ready(Err(Self::slow_reader()));
        }
        Poll::Ready(Ok(n))
    }
}

use std::future::Future;

impl<S: AsyncRead + Unsent + Unpin> AsyncRead for IdleStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.progressed();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.check(cx).map(Err),
        }
    }
}

impl<S: AsyncWrite + Unsent + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => self.wrote(cx, n),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.check(cx).map(Err),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.check(cx).map(Err),
            r => r,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => self.wrote(cx, n),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
