//! Many channels in one process (the client users expect, like go-perun's
//! or LDK's): each channel is a party task of [`super::party`]; the
//! manager lists them, routes commands by channel id and merges their
//! events into one stream.
//!
//! Its control port ([`serve_control`]) takes the same commands from other
//! local processes (`gridledger channel list|pay|close --control ADDR
//! --token-file FILE`): one JSON request per line, each carrying the
//! secret token `channel serve` wrote to a file only its user can read, on
//! a socket bound to the loopback interface only.

use super::party::{
    spawn_party, spawn_party_on, Command, Listeners, PartyError, PartyHandle, PartyJoin, PartyOptions, PartyReport,
    Reply,
};
use super::spec::PartySpec;
use gridledger_channels::ChannelEvent;
use gridledger_core::Hash32;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tokio::sync::broadcast;

/// Events kept for a slow subscriber before it starts missing them.
pub const EVENT_BUFFER: usize = 1024;

struct Managed {
    dir: PathBuf,
    handle: PartyHandle,
    join: PartyJoin,
}

/// The channels this process runs.
pub struct ChannelManager {
    channels: BTreeMap<Hash32, Managed>,
    events: broadcast::Sender<(Hash32, ChannelEvent)>,
}

impl Default for ChannelManager {
    fn default() -> Self {
        Self::new()
    }
}

impl ChannelManager {
    pub fn new() -> Self {
        Self { channels: BTreeMap::new(), events: broadcast::channel(EVENT_BUFFER).0 }
    }

    /// Starts the party in `dir` (on `listeners` if given); returns its
    /// channel id. A channel already managed is refused.
    pub fn add(&mut self, dir: &Path, opts: PartyOptions, listeners: Option<Listeners>) -> Result<Hash32, PartyError> {
        let cid = PartySpec::load(dir)?.cid;
        if self.channels.contains_key(&cid) {
            return Err(PartyError::Net(format!("channel {cid} is already managed")));
        }
        let opts = PartyOptions { events: Some(self.events.clone()), ..opts };
        let (handle, join) = match listeners {
            Some(l) => spawn_party_on(dir, opts, l)?,
            None => spawn_party(dir, opts)?,
        };
        self.channels.insert(cid, Managed { dir: dir.to_path_buf(), handle, join });
        Ok(cid)
    }

    /// Every channel's events from now on, tagged with its id.
    pub fn subscribe(&self) -> broadcast::Receiver<(Hash32, ChannelEvent)> {
        self.events.subscribe()
    }

    /// The managed channels and their directories.
    pub fn list(&self) -> Vec<(Hash32, PathBuf)> {
        self.channels.iter().map(|(c, m)| (*c, m.dir.clone())).collect()
    }

    /// Sends a command to one channel.
    pub async fn request(&self, cid: &Hash32, cmd: Command) -> Reply {
        match self.channels.get(cid) {
            Some(m) => m.handle.request(cmd).await,
            None => Reply::Error { message: format!("no channel {cid} here") },
        }
    }

    /// Every channel's id, directory and handle (for [`serve_control`]).
    pub fn handles(&self) -> BTreeMap<Hash32, (PathBuf, PartyHandle)> {
        self.channels.iter().map(|(c, m)| (*c, (m.dir.clone(), m.handle.clone()))).collect()
    }

    /// Every channel's status.
    pub async fn status(&self) -> Vec<(Hash32, Reply)> {
        let mut out = Vec::with_capacity(self.channels.len());
        for (cid, m) in &self.channels {
            out.push((*cid, m.handle.request(Command::Status).await));
        }
        out
    }

    /// Waits for every party to end (closed channels end by themselves;
    /// send `Shutdown` to the others first).
    pub async fn join(self) -> Vec<(Hash32, Result<PartyReport, PartyError>)> {
        let mut out = Vec::with_capacity(self.channels.len());
        for (cid, m) in self.channels {
            let r = match m.join.await {
                Ok(r) => r,
                Err(e) => Err(PartyError::Net(e.to_string())),
            };
            out.push((cid, r));
        }
        out
    }
}

/// One request on the manager's control port.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// The token `channel serve` wrote to its token file.
    pub token: String,
    #[serde(flatten)]
    pub op: ControlOp,
}

/// What a control request asks, by channel id (hex).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlOp {
    /// Every managed channel with its directory and status.
    List,
    Open {
        cid: String,
    },
    Pay {
        cid: String,
        energy: u64,
        price: u64,
    },
    Close {
        cid: String,
    },
    Status {
        cid: String,
    },
    /// Add `amount` minor units to our side by deposit, or with a
    /// merchant's top-up note for a credit-funded side.
    TopUp {
        cid: String,
        amount: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credit_note: Option<super::merchant::TopUpNote>,
    },
    /// Take `amount` minor units of our side out, the channel staying open.
    Withdraw {
        cid: String,
        amount: u64,
    },
}

/// One managed channel in a `list` answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Listed {
    pub cid: String,
    pub dir: PathBuf,
    pub status: Reply,
}

/// The answer to a control request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ControlReply {
    List { channels: Vec<Listed> },
    Party(Reply),
}

/// Longest request line on the manager's control port (per line; a
/// connection carries any number of requests).
pub const MAX_MANAGER_LINE: u64 = 4096;

pub use super::control::{new_token, write_token_file, ControlLimits};

impl super::control::Tokened for ControlRequest {
    fn token(&self) -> &str {
        &self.token
    }
}

/// Serves the manager's control port on `listener` until the task is
/// aborted, with the default [`ControlLimits`]. Every request must carry
/// `token`; a request that does not prove it (a wrong or missing token, a
/// line that is not a request) is refused and ends the connection.
pub async fn serve_control(
    listener: tokio::net::TcpListener,
    token: String,
    channels: BTreeMap<Hash32, (PathBuf, PartyHandle)>,
) {
    serve_control_with(listener, token, channels, ControlLimits::default()).await
}

/// [`serve_control`] with explicit [`ControlLimits`].
pub async fn serve_control_with(
    listener: tokio::net::TcpListener,
    token: String,
    channels: BTreeMap<Hash32, (PathBuf, PartyHandle)>,
    limits: ControlLimits,
) {
    let channels = std::sync::Arc::new(channels);
    super::control::serve_guarded(listener, token, limits, MAX_MANAGER_LINE, error, move |r: ControlRequest| {
        let channels = channels.clone();
        async move { answer(&channels, r.op).await }
    })
    .await
}

fn error(message: String) -> ControlReply {
    ControlReply::Party(Reply::Error { message })
}

async fn answer(channels: &BTreeMap<Hash32, (PathBuf, PartyHandle)>, op: ControlOp) -> ControlReply {
    let (cid, cmd) = match op {
        ControlOp::List => {
            let mut out = Vec::with_capacity(channels.len());
            for (cid, (dir, h)) in channels {
                out.push(Listed { cid: cid.to_string(), dir: dir.clone(), status: h.request(Command::Status).await });
            }
            return ControlReply::List { channels: out };
        }
        ControlOp::Open { cid } => (cid, Command::Open),
        ControlOp::Pay { cid, energy, price } => (cid, Command::Pay { energy, price }),
        ControlOp::Close { cid } => (cid, Command::Close),
        ControlOp::Status { cid } => (cid, Command::Status),
        ControlOp::TopUp { cid, amount, credit_note } => (cid, Command::TopUp { amount, credit_note }),
        ControlOp::Withdraw { cid, amount } => (cid, Command::Withdraw { amount }),
    };
    let Ok(id) = cid.parse::<Hash32>() else {
        return error(format!("{cid:?} is not a channel id (64 hex digits)"));
    };
    match channels.get(&id) {
        Some((_, h)) => ControlReply::Party(h.request(cmd).await),
        None => error(format!("no channel {cid} here")),
    }
}

/// Sends one request to a manager's control port and reads its answer
/// (blocking; for the CLI).
pub fn control_manager(
    addr: std::net::SocketAddr,
    req: &ControlRequest,
    timeout: std::time::Duration,
) -> Result<ControlReply, std::io::Error> {
    super::party::json_line_request(addr, req, timeout)
}
