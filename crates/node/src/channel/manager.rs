//! Many channels in one process (the client users expect, like go-perun's
//! or LDK's): each channel is a party task of [`super::party`]; the
//! manager lists them, routes commands by channel id and merges their
//! events into one stream.

use super::party::{
    spawn_party, spawn_party_on, Command, Listeners, PartyError, PartyHandle, PartyJoin, PartyOptions, PartyReport,
    Reply,
};
use super::spec::PartySpec;
use gridledger_channels::ChannelEvent;
use gridledger_core::Hash32;
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
