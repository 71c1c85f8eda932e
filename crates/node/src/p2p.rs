//! Real peer links for a validator: `gridledger-net`'s Noise-authenticated
//! TCP mesh as the PBFT [`Transport`], bridged to the driver's inbox.

use gridledger_core::crypto::KeyPair;
use gridledger_ledger::Genesis;
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::config::NetworkSection;
use crate::validator::{Input, Transport, MAX_FRAME};

/// Sends through the mesh. A full queue drops the peer's oldest message
/// (PBFT's retransmission, view change and catch-up recover it).
pub struct NetTransport {
    net: Arc<Network>,
}

impl Transport for NetTransport {
    fn send(&self, to: u32, bytes: Vec<u8>) {
        if let Err(e) = self.net.send(to, bytes) {
            tracing::debug!(to, "send: {e}");
        }
    }

    fn broadcast(&self, bytes: Vec<u8>) {
        if let Err(e) = self.net.broadcast(bytes) {
            tracing::debug!("broadcast: {e}");
        }
    }
}

/// The running links; dropping it closes them.
pub struct P2p {
    pub net: Arc<Network>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Drop for P2p {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| anyhow::anyhow!("address {addr}: {e}"))?
        .next()
        .ok_or_else(|| anyhow::anyhow!("address {addr} resolves to nothing"))
}

/// Checks the configured peers against the genesis validator set and
/// starts the mesh; inbound messages go to `inbox`.
pub fn start(
    section: &NetworkSection,
    genesis: &Genesis,
    key: &KeyPair,
    inbox: Sender<Input>,
) -> anyhow::Result<(P2p, NetTransport)> {
    let me = genesis
        .validators
        .iter()
        .position(|k| *k == key.public())
        .ok_or_else(|| anyhow::anyhow!("this key is not a genesis validator"))? as u32;
    let mut peers = Vec::with_capacity(section.peers.len());
    for p in &section.peers {
        let expected = genesis
            .validators
            .get(p.index as usize)
            .ok_or_else(|| anyhow::anyhow!("peer index {} is not a genesis validator", p.index))?;
        if *expected != p.public_key {
            anyhow::bail!("peer {} has key {}, genesis says {}", p.index, p.public_key, expected);
        }
        peers.push(PeerConfig { index: p.index, public_key: p.public_key, addr: resolve(&p.address)? });
    }
    if peers.len() != genesis.validators.len() {
        anyhow::bail!("the network section lists {} validators, genesis has {}", peers.len(), genesis.validators.len());
    }
    let mut cfg = NetworkConfig::new(genesis.hash(), me, peers);
    cfg.listen = resolve(&section.listen)?;
    cfg.max_frame = MAX_FRAME;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().thread_name("p2p").build()?;
    let inherited = crate::listen::inherited(crate::listen::P2P_FD)?;
    let (net, mut inbound) = rt.block_on(async {
        match inherited {
            Some(l) => {
                l.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(l)?;
                Network::start_with_listener(cfg, key.clone(), l).await.map_err(anyhow::Error::from)
            }
            None => Network::start(cfg, key.clone()).await.map_err(anyhow::Error::from),
        }
    })?;
    rt.spawn(async move {
        while let Some((from, bytes)) = inbound.recv().await {
            if inbox.send(Input::Peer { from, bytes: bytes.to_vec() }).is_err() {
                break;
            }
        }
    });
    let net = Arc::new(net);
    Ok((P2p { net: net.clone(), rt: Some(rt) }, NetTransport { net }))
}
