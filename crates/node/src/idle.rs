//! A TCP stream that fails once no byte has moved either way for a while,
//! so idle, half-sent and never-read connections end instead of holding a
//! file descriptor and a connection slot forever.

use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::rpc::RpcCounters;

pub struct IdleStream<S> {
    inner: S,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    counters: Arc<RpcCounters>,
    expired: bool,
}

impl<S> IdleStream<S> {
    pub fn new(inner: S, idle: Duration, counters: Arc<RpcCounters>) -> Self {
        Self { inner, idle, deadline: Box::pin(tokio::time::sleep(idle)), counters, expired: false }
    }

    fn progressed(&mut self) {
        let idle = self.idle;
        self.deadline.as_mut().reset(Instant::now() + idle);
    }

    /// Called when the inner stream is not ready: fails once the deadline
    /// has passed (and registers the timer's wake-up otherwise).
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            if !self.expired {
                self.expired = true;
                self.counters.connections_timed_out.fetch_add(1, Relaxed);
            }
            return Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "connection idle"));
        }
        Poll::Pending
    }
}

use std::future::Future;

impl<S: AsyncRead + Unpin> AsyncRead for IdleStream<S> {
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

impl<S: AsyncWrite + Unpin> AsyncWrite for IdleStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, data) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
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
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.progressed();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.check(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
