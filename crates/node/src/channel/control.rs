//! Guarded loopback control ports: the party's own (`channel open`) and
//! `channel serve`'s manager port share one accept loop and one connection
//! discipline.
//!
//! - Every request line carries a secret token (256 bits, hex) that the
//!   process wrote to a file only its user can read (mode 0600); the first
//!   line that is not a request carrying the token is answered with an
//!   error and ends the connection. So a line of another protocol (a
//!   browser's `POST / HTTP/1.1` to a loopback port) ends the connection
//!   before its body could be read as a request.
//! - At most [`ControlLimits::max_connections`] connections are served at
//!   once; a connection must prove the token within
//!   [`ControlLimits::first_line_deadline`].
//! - Idle connections without the token cannot lock the token holder out:
//!   beyond the cap, up to [`OVERFLOW_CONNECTIONS`] further connections get
//!   [`OVERFLOW_DEADLINE`] to send a request with the token; one that does
//!   takes the slot of the oldest connection that has not proved the token
//!   (that one is ended), the others are ended. A connection beyond those
//!   is closed at once.
//! - An accept error (e.g. out of file descriptors) is logged and retried
//!   with back-off (10 ms doubling to 1 s): the port never ends by itself.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// Limits of a control port against local clients that do not know the
/// token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlLimits {
    /// How long a new connection may take to send its first (authenticated)
    /// request line; a connection that has not proved the token by then is
    /// ended. Later requests on an authenticated connection have no deadline.
    pub first_line_deadline: Duration,
    /// Most connections served at once; a connection beyond it is closed
    /// straight after it is accepted (the client sees end of stream),
    /// unless it proves the token within [`OVERFLOW_DEADLINE`] (see the
    /// module doc).
    pub max_connections: usize,
}

impl Default for ControlLimits {
    /// 5 s for the first line (a local CLI sends it at once), 64 connections.
    fn default() -> Self {
        ControlLimits { first_line_deadline: Duration::from_secs(5), max_connections: 64 }
    }
}

/// Connections beyond the cap that may still prove the token.
pub const OVERFLOW_CONNECTIONS: usize = 8;

/// How long a connection beyond the cap has to send a request with the
/// token (a local CLI sends it at once).
pub const OVERFLOW_DEADLINE: Duration = Duration::from_secs(1);

/// The file, in a party's directory, holding its control port's token.
pub const CONTROL_TOKEN_FILE: &str = "control.token";

/// A fresh random control token (256 bits, hex).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Compares tokens without an early exit on the first differing byte.
pub(crate) fn token_matches(given: &str, want: &str) -> bool {
    let (a, b) = (given.as_bytes(), want.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes `token` to a new file at `path` readable by its owner only
/// (mode 0600 on Unix); an existing file is replaced only if it is a
/// regular file (a previous run's token).
pub fn write_token_file(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_file() {
            return Err(std::io::Error::other(format!("{} exists and is not a regular file", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(token.as_bytes())?;
    f.sync_all()
}

/// Reads a token file (surrounding whitespace ignored).
pub fn read_token_file(path: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_string())
}

/// A request that carries the control token.
pub(crate) trait Tokened: DeserializeOwned + Send + 'static {
    fn token(&self) -> &str;
}

#[derive(Default)]
struct Slots {
    next: u64,
    live: usize,
    overflow: usize,
    /// Live connections that have not proved the token, oldest first, with
    /// the sender that ends each.
    unproven: BTreeMap<u64, oneshot::Sender<()>>,
}

/// One connection's place in [`Slots`], given back when it ends.
struct Held {
    slots: Arc<Mutex<Slots>>,
    id: u64,
    live: bool,
    overflow: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            if self.live {
                s.live = s.live.saturating_sub(1);
            }
            if self.overflow {
                s.overflow = s.overflow.saturating_sub(1);
            }
            s.unproven.remove(&self.id);
        }
    }
}

/// Serves a guarded control port on `listener` until the task is aborted:
/// each request line is parsed as `Req`, checked against `token` and
/// answered with `answer`'s reply; `error` makes the reply of a refused
/// line. Lines are at most `max_line` bytes.
pub(crate) async fn serve_guarded<Req, Rep, F, Fut>(
    listener: tokio::net::TcpListener,
    token: String,
    limits: ControlLimits,
    max_line: u64,
    error: fn(String) -> Rep,
    answer: F,
) where
    Req: Tokened,
    Rep: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Rep> + Send + 'static,
{
    let token = Arc::new(token);
    let answer = Arc::new(answer);
    let slots: Arc<Mutex<Slots>> = Arc::default();
    let mut backoff = Duration::from_millis(10);
    loop {
        let sock = match listener.accept().await {
            Ok((s, _)) => {
                backoff = Duration::from_millis(10);
                s
            }
            Err(e) => {
                tracing::warn!("control port: accept failed, retrying in {backoff:?}: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let admitted = {
            let Ok(mut s) = slots.lock() else { return };
            let id = s.next;
            s.next += 1;
            if s.live < limits.max_connections {
                s.live += 1;
                let (tx, rx) = oneshot::channel();
                s.unproven.insert(id, tx);
                Some((Held { slots: slots.clone(), id, live: true, overflow: false }, Some(rx)))
            } else if s.overflow < OVERFLOW_CONNECTIONS {
                s.overflow += 1;
                Some((Held { slots: slots.clone(), id, live: false, overflow: true }, None))
            } else {
                None
            }
        };
        // Over every cap: dropping the socket closes it at once.
        let Some((held, evict)) = admitted else {
            drop(sock);
            continue;
        };
        let (token, answer) = (token.clone(), answer.clone());
        tokio::spawn(connection(sock, held, evict, token, limits, max_line, error, answer));
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<Req, Rep, F, Fut>(
    sock: tokio::net::TcpStream,
    mut held: Held,
    mut evict: Option<oneshot::Receiver<()>>,
    token: Arc<String>,
    limits: ControlLimits,
    max_line: u64,
    error: fn(String) -> Rep,
    answer: Arc<F>,
) where
    Req: Tokened,
    Rep: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Rep> + Send + 'static,
{
    let (rd, mut wr) = sock.into_split();
    let mut reader = BufReader::new(rd);
    let mut authenticated = false;
    loop {
        let mut line = String::new();
        let mut limited = (&mut reader).take(max_line + 1);
        let read = limited.read_line(&mut line);
        let n = if authenticated {
            read.await
        } else {
            let deadline = if held.overflow {
                limits.first_line_deadline.min(OVERFLOW_DEADLINE)
            } else {
                limits.first_line_deadline
            };
            let evicted = async {
                match evict.as_mut() {
                    Some(rx) => {
                        let _ = rx.await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                r = tokio::time::timeout(deadline, read) => match r {
                    Ok(r) => r,
                    Err(_) => return, // no authenticated line in time
                },
                _ = evicted => return, // a token holder took the slot
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = !line.ends_with('\n') && n as u64 > max_line;
        let (reply, end) = if too_long {
            (error(format!("request longer than {max_line} bytes")), true)
        } else {
            match serde_json::from_str::<Req>(line.trim_end()) {
                // Without a readable token the request proves nothing: end.
                Err(e) => (error(format!("bad request (a request carries the control token): {e}")), true),
                Ok(r) if !token_matches(r.token(), &token) => (error("wrong control token".into()), true),
                Ok(r) => {
                    if !authenticated && !prove(&mut held) {
                        (error("control port busy: every connection is in use".into()), true)
                    } else {
                        authenticated = true;
                        evict = None;
                        (answer(r).await, false)
                    }
                }
            }
        };
        let mut out = serde_json::to_string(&reply).unwrap_or_default();
        out.push('\n');
        if wr.write_all(out.as_bytes()).await.is_err() || end {
            return;
        }
    }
}

/// A connection proved the token: it leaves the unproven set; one beyond
/// the cap takes the slot of the oldest unproven connection (ended), or is
/// refused when every slot is held by a token holder.
fn prove(held: &mut Held) -> bool {
    let Ok(mut s) = held.slots.lock() else { return false };
    if !held.overflow {
        s.unproven.remove(&held.id);
        return true;
    }
    let Some((_, oldest)) = s.unproven.pop_first() else { return false };
    let _ = oldest.send(());
    s.overflow = s.overflow.saturating_sub(1);
    s.live += 1;
    held.overflow = false;
    held.live = true;
    true
}
