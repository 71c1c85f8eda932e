//! Guarded control ports: the party's own (`channel open`) and
//! `channel serve`'s manager port share one accept loop and one connection
//! discipline.
//!
//! **Where.** A party's own control channel is, on Unix, a Unix domain
//! socket `control.sock` inside the party directory ([`CONTROL_SOCKET_FILE`]):
//! the directory is made mode 0700 and the socket 0600 at each start, so
//! only the owner (and root) can connect at all, and nobody else can bind
//! it while the party is down. The `--dir` commands talk to it. TCP (a
//! loopback address) is used only where explicitly asked: `channel serve
//! --control ADDR`, a listener handed to
//! [`super::party::spawn_party_on`], and on non-Unix targets.
//!
//! - Every request line carries a secret token (256 bits, hex) that the
//!   process wrote to a file only its user can read (mode 0600); the first
//!   line that is not a request carrying the token is answered with an
//!   error and ends the connection. So a line of another protocol (a
//!   browser's `POST / HTTP/1.1` to a loopback port) ends the connection
//!   before its body could be read as a request. On the Unix socket the
//!   token is defence in depth (the file modes already keep others out).
//! - At most [`ControlLimits::max_connections`] connections are served at
//!   once; a connection must prove the token within
//!   [`ControlLimits::first_line_deadline`] (1 s by default: a local CLI
//!   sends its line as it connects).
//! - **Eviction (TCP; what remains guaranteed).** Past the cap, every new
//!   connection takes the slot of the *oldest* connection that has not
//!   proved the token (that one is ended); only when every slot is held by
//!   a token holder is a new connection closed at once. So idle
//!   connections cannot hold slots against a newcomer: a token holder that
//!   sends its line as it connects is served unless `max_connections`
//!   newer connections reach the port before the port has read that line.
//!   An attacker who keeps more than `max_connections` connections cycling
//!   must out-run the port's own read of a line already in its socket
//!   buffer, at the cost of a visible connection storm; any local user can
//!   still try, which is why the party's own channel is a Unix socket. The
//!   client authenticates nothing about a TCP listener: a local user who
//!   binds the address first (while the process is down) receives the
//!   token a client sends there. Use TCP control only on a host whose
//!   local users are trusted, and keep `--token-file` private.
//! - An accept error (e.g. out of file descriptors) is logged and retried
//!   with back-off (10 ms doubling to 1 s): the port never ends by itself.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

/// Limits of a control port against local clients that do not know the
/// token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlLimits {
    /// How long a new connection may take to send its first (authenticated)
    /// request line; a connection that has not proved the token by then is
    /// ended. Later requests on an authenticated connection have no deadline.
    pub first_line_deadline: Duration,
    /// Most connections served at once; a connection beyond it takes the
    /// slot of the oldest connection that has not proved the token, or is
    /// closed straight after it is accepted (the client sees end of
    /// stream) when every slot is held by a token holder (see the module
    /// doc).
    pub max_connections: usize,
}

impl Default for ControlLimits {
    /// 1 s for the first line (a local CLI sends it at once), 64 connections.
    fn default() -> Self {
        ControlLimits { first_line_deadline: Duration::from_secs(1), max_connections: 64 }
    }
}

/// The file, in a party's directory, holding its control port's token.
pub const CONTROL_TOKEN_FILE: &str = "control.token";

/// The party's own control socket (Unix), inside its directory.
pub const CONTROL_SOCKET_FILE: &str = "control.sock";

/// A listener a guarded control port can serve on (TCP, or a Unix socket).
pub(crate) trait ControlListener: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(&self) -> impl Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl ControlListener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

#[cfg(unix)]
impl ControlListener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

/// Longest socket path bound or connected to directly: `sun_path` holds
/// 108 bytes on Linux and 104 on macOS, with the terminating NUL.
pub const SOCKET_PATH_MAX: usize = 100;

/// The path by which `dir/control.sock` is bound or connected to, and a
/// handle that must stay open until then. A path of at most
/// [`SOCKET_PATH_MAX`] bytes is used as it is. A longer one (a deep
/// directory) is reached on Linux through the directory's open descriptor,
/// `/proc/self/fd/N/control.sock` (short whatever the directory's path;
/// the socket file is still created in `dir`, no other directory is
/// involved and nothing is recorded elsewhere). Elsewhere a too-long path
/// is an error (the party then runs without its control channel).
#[cfg(unix)]
pub fn control_socket_path(dir: &Path) -> std::io::Result<(std::path::PathBuf, Option<std::fs::File>)> {
    let path = dir.join(CONTROL_SOCKET_FILE);
    if path.as_os_str().len() <= SOCKET_PATH_MAX {
        return Ok((path, None));
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let d = std::fs::File::open(dir)?;
        let short = std::path::PathBuf::from(format!("/proc/self/fd/{}/{CONTROL_SOCKET_FILE}", d.as_raw_fd()));
        Ok((short, Some(d)))
    }
    #[cfg(not(target_os = "linux"))]
    Err(std::io::Error::other(format!("{}: a Unix socket path may not exceed {SOCKET_PATH_MAX} bytes", path.display())))
}

/// Binds the party's own control socket at `dir/control.sock` (Unix): the
/// directory is set to mode 0700 and the socket to 0600, so only the owner
/// can connect. A socket file left by an earlier run is replaced (the
/// caller holds the directory's store lock, so no live party owns it);
/// anything else at that path is refused. A directory path too long for
/// `sun_path` is bound through [`control_socket_path`].
#[cfg(unix)]
pub fn bind_control_socket(dir: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(CONTROL_SOCKET_FILE);
    if let Ok(m) = std::fs::symlink_metadata(&path) {
        if !m.file_type().is_socket() {
            return Err(std::io::Error::other(format!("{} exists and is not a socket", path.display())));
        }
        std::fs::remove_file(&path)?;
    }
    let (by, held) = control_socket_path(dir)?;
    let l = tokio::net::UnixListener::bind(&by)?;
    drop(held);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

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
    /// Slots taken (an evicted connection's slot is already passed on).
    live: usize,
    /// Live connections that have not proved the token, oldest first, with
    /// the sender that ends each.
    unproven: BTreeMap<u64, oneshot::Sender<()>>,
    /// Connections told to end whose slot went to a newcomer.
    evicted: BTreeSet<u64>,
}

impl Slots {
    /// A slot for a new connection: a free one, else the oldest unproven
    /// connection's (ended); `None` when token holders hold every slot.
    fn admit(&mut self, max: usize) -> Option<(u64, oneshot::Receiver<()>)> {
        if self.live >= max {
            let (old, end) = self.unproven.pop_first()?;
            let _ = end.send(());
            self.evicted.insert(old);
        } else {
            self.live += 1;
        }
        let id = self.next;
        self.next += 1;
        let (tx, rx) = oneshot::channel();
        self.unproven.insert(id, tx);
        Some((id, rx))
    }
}

/// One connection's place in [`Slots`], given back when it ends.
struct Held {
    slots: Arc<Mutex<Slots>>,
    id: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut s) = self.slots.lock() {
            s.unproven.remove(&self.id);
            if !s.evicted.remove(&self.id) {
                s.live = s.live.saturating_sub(1);
            }
        }
    }
}

/// Serves a guarded control port on `listener` until the task is aborted:
/// each request line is parsed as `Req`, checked against `token` and
/// answered with `answer`'s reply; `error` makes the reply of a refused
/// line. Lines are at most `max_line` bytes.
pub(crate) async fn serve_guarded<L, Req, Rep, F, Fut>(
    listener: L,
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
    L: ControlListener,
{
    let token = Arc::new(token);
    let answer = Arc::new(answer);
    let slots: Arc<Mutex<Slots>> = Arc::default();
    let mut backoff = Duration::from_millis(10);
    loop {
        let sock = match listener.accept_one().await {
            Ok(s) => {
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
            s.admit(limits.max_connections).map(|(id, rx)| (Held { slots: slots.clone(), id }, rx))
        };
        // Every slot held by a token holder: dropping the socket closes it.
        let Some((held, evict)) = admitted else {
            drop(sock);
            continue;
        };
        let (token, answer) = (token.clone(), answer.clone());
        tokio::spawn(connection(sock, held, evict, token, limits, max_line, error, answer));
    }
}

#[allow(clippy::too_many_arguments)]
async fn connection<S, Req, Rep, F, Fut>(
    sock: S,
    held: Held,
    mut evict: oneshot::Receiver<()>,
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
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(sock);
    let mut reader = BufReader::new(rd);
    let mut authenticated = false;
    loop {
        let mut line = String::new();
        let mut limited = (&mut reader).take(max_line + 1);
        let read = limited.read_line(&mut line);
        let n = if authenticated {
            read.await
        } else {
            tokio::select! {
                biased;
                // A line already read wins over an eviction in the same poll.
                r = tokio::time::timeout(limits.first_line_deadline, read) => match r {
                    Ok(r) => r,
                    Err(_) => return, // no authenticated line in time
                },
                _ = &mut evict => return, // a newer connection took the slot
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
                    if !authenticated && !prove(&held) {
                        (error("control port busy: this connection's slot was taken".into()), true)
                    } else {
                        authenticated = true;
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

/// A connection proved the token: it leaves the unproven set and keeps its
/// slot (false if it had just been evicted: its slot is gone).
fn prove(held: &Held) -> bool {
    let Ok(mut s) = held.slots.lock() else { return false };
    if s.evicted.contains(&held.id) {
        return false;
    }
    s.unproven.remove(&held.id);
    true
}
