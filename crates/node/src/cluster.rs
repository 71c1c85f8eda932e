//! A cluster of PBFT validators in one process over the [`LocalMesh`]: each
//! with its own data directory, chain, RPC server and driver thread, and
//! real encoded messages between them. Used by tests, the in-process mode
//! of `gridledger bench pbft`, and the demo.

use gridledger_core::{Address, Amount, ChainId, ContractId, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_validator};
use gridledger_ledger::{Account, BlockHeader, ChainClient, ClientError, Receipt, SignedTransaction};
use gridledger_ledger::{ChainConfig, ContractRegistry};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::write_key;
use crate::validator::{LocalMesh, PbftSettings};
use crate::{Node, NodeConfig, NodeHandle};

pub struct LocalCluster {
    dirs: Vec<PathBuf>,
    pub mesh: LocalMesh,
    nodes: Vec<Option<NodeHandle>>,
    accounts: usize,
    balance: Amount,
    settings: PbftSettings,
    registry: ContractRegistry,
    chain: ChainConfig,
}

impl LocalCluster {
    /// Starts `n` validators of a development chain funding `accounts`
    /// development keys with `balance` each, under `root`.
    pub fn start(
        root: &Path,
        n: usize,
        accounts: usize,
        balance: Amount,
        settings: PbftSettings,
    ) -> anyhow::Result<Self> {
        Self::start_with(
            root,
            n,
            accounts,
            balance,
            settings,
            gridledger_contracts::default_registry(),
            ChainConfig::default(),
        )
    }

    /// [`Self::start`] with the chain's contracts and limits.
    pub fn start_with(
        root: &Path,
        n: usize,
        accounts: usize,
        balance: Amount,
        settings: PbftSettings,
        registry: ContractRegistry,
        chain: ChainConfig,
    ) -> anyhow::Result<Self> {
        let (mesh, inboxes) = LocalMesh::new(n);
        let dirs: Vec<PathBuf> = (0..n).map(|i| root.join(format!("validator-{i}"))).collect();
        let nodes = (0..n).map(|_| None).collect();
        let mut c = LocalCluster { dirs, mesh, nodes, accounts, balance, settings, registry, chain };
        for (i, inbox) in inboxes.into_iter().enumerate() {
            c.launch(i, inbox)?;
        }
        Ok(c)
    }

    fn config(&self, i: usize) -> anyhow::Result<NodeConfig> {
        let n = self.nodes.len();
        let validators: Vec<_> = (0..n).map(dev_validator).collect();
        let genesis = dev_genesis(1, self.accounts, self.balance, &validators);
        let dir = &self.dirs[i];
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis)?)?;
        write_key(&dir.join("validator.key"), &validators[i])?;
        Ok(NodeConfig {
            data_dir: dir.join("data"),
            genesis: dir.join("genesis.toml"),
            validator_key: dir.join("validator.key"),
            rpc_listen: "127.0.0.1:0".into(),
            block_interval_ms: 20,
            chain: self.chain.clone(),
            network: None,
            pbft: PbftSettings::default(),
            consensus: Default::default(),
            lbft: Default::default(),
        })
    }

    fn launch(&mut self, i: usize, inbox: std::sync::mpsc::Receiver<crate::validator::Input>) -> anyhow::Result<()> {
        let node = Node::open(&self.config(i)?, self.registry.clone())?;
        let tx = self.mesh.inbox(i as u32).ok_or_else(|| anyhow::anyhow!("no inbox {i}"))?;
        self.nodes[i] =
            Some(node.spawn_validator(Box::new(self.mesh.transport(i as u32)), inbox, tx, self.settings.clone())?);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A running validator.
    pub fn node(&self, i: usize) -> Option<&NodeHandle> {
        self.nodes.get(i).and_then(Option::as_ref)
    }

    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.node(i).is_some()).collect()
    }

    pub fn height(&self, i: usize) -> Option<u64> {
        self.node(i).map(|n| n.shared.chain().tip().height)
    }

    /// True when every validator in `which` has committed every transaction.
    pub fn all_committed(&self, which: &[usize], hashes: &[Hash32]) -> bool {
        which.iter().all(|&i| {
            self.node(i).is_some_and(|n| hashes.iter().all(|h| n.shared.store.tx_location(h).ok().flatten().is_some()))
        })
    }

    /// Waits until every validator in `which` has committed every transaction.
    pub fn wait_committed(&self, which: &[usize], hashes: &[Hash32], within: Duration) -> anyhow::Result<Duration> {
        self.wait_committed_or_stall(which, hashes, within, within)
    }

    /// [`Self::wait_committed`], giving up early once no running validator
    /// has committed a block for `stall`: a stalled chain is reported at
    /// once, with every validator's state ([`Self::describe`]), instead of
    /// after the whole `within`.
    pub fn wait_committed_or_stall(
        &self,
        which: &[usize],
        hashes: &[Hash32],
        within: Duration,
        stall: Duration,
    ) -> anyhow::Result<Duration> {
        let t = Instant::now();
        let heights = || self.running().iter().map(|&i| self.height(i)).collect::<Vec<_>>();
        let (mut last, mut moved) = (heights(), Instant::now());
        while !self.all_committed(which, hashes) {
            let now = heights();
            if now != last {
                (last, moved) = (now, Instant::now());
            }
            if t.elapsed() > within {
                anyhow::bail!("not committed within {within:?}; {}", self.describe());
            }
            if moved.elapsed() > stall {
                anyhow::bail!(
                    "chain stalled: no validator committed a block for {stall:?} with transactions outstanding \
                     (a liveness bug, not load); {}",
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(t.elapsed())
    }

    /// Every validator's height, view (`*` while changing views) and
    /// mempool size, e.g. `heights [Some(4), ...]; validators: 0 h4 v2* pending 17, ...`.
    pub fn describe(&self) -> String {
        let heights: Vec<_> = (0..self.len()).map(|i| self.height(i)).collect();
        let each: Vec<String> = (0..self.len())
            .map(|i| match self.node(i) {
                None => format!("{i} stopped"),
                Some(n) => {
                    let m = &n.shared.metrics;
                    let (height, pending) = {
                        let chain = n.shared.chain();
                        (chain.tip().height, chain.pending())
                    };
                    let changing = if m.pbft_view_changing.load(Ordering::Relaxed) == 1 { "*" } else { "" };
                    format!("{i} h{height} v{}{changing} pending {pending}", m.pbft_view.load(Ordering::Relaxed))
                }
            })
            .collect();
        format!("heights {heights:?}; validators: {}", each.join(", "))
    }

    /// Stops validator `i` (as a crash: its links are cut first).
    pub fn stop(&mut self, i: usize) {
        self.mesh.set_down(i as u32, true);
        if let Some(n) = self.nodes.get_mut(i).and_then(Option::take) {
            n.shutdown();
        }
    }

    /// Restarts validator `i` from its data directory.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        let inbox = self.mesh.reconnect(i as u32).ok_or_else(|| anyhow::anyhow!("no validator {i}"))?;
        self.mesh.set_down(i as u32, false);
        self.launch(i, inbox)
    }

    pub fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i);
        }
    }
}

/// A PBFT network in this process as a [`ChainClient`]: transactions go to
/// one validator (which gossips them), reads come from it, and blocks carry
/// a logical clock that the caller moves (all validators share it).
pub struct ClusterClient {
    pub cluster: LocalCluster,
    via: usize,
    clock: Arc<AtomicU64>,
    pending: Vec<Hash32>,
    /// How long [`ChainClient::seal`] waits for a commit.
    pub timeout: Duration,
    /// How long [`ChainClient::seal`] waits without any validator
    /// committing a block before it reports the chain stalled.
    pub stall: Duration,
}

impl ClusterClient {
    /// Starts `n` validators (see [`LocalCluster::start_with`]) whose
    /// blocks are stamped with a logical clock starting at `now`.
    pub fn start(
        root: &Path,
        n: usize,
        accounts: usize,
        balance: Amount,
        registry: ContractRegistry,
        chain: ChainConfig,
        now: u64,
    ) -> anyhow::Result<Self> {
        let clock = Arc::new(AtomicU64::new(now));
        let settings = PbftSettings { base_timeout_ms: 500, clock: Some(clock.clone()), ..PbftSettings::default() };
        let cluster = LocalCluster::start_with(root, n, accounts, balance, settings, registry, chain)?;
        Ok(Self {
            cluster,
            via: 0,
            clock,
            pending: Vec::new(),
            timeout: Duration::from_secs(60),
            stall: Duration::from_secs(60),
        })
    }

    fn shared(&self) -> Result<&Arc<crate::service::Shared>, ClientError> {
        self.cluster
            .node(self.via)
            .map(|n| &n.shared)
            .ok_or_else(|| ClientError::Chain(format!("validator {} is not running", self.via)))
    }

    /// Reads from the submission validator, or any running one if it stopped.
    fn with_chain<T>(&self, f: impl FnOnce(&gridledger_ledger::Chain) -> T) -> T {
        let node =
            self.cluster.node(self.via).or_else(|| self.cluster.running().first().and_then(|&i| self.cluster.node(i)));
        match node {
            Some(n) => f(&n.shared.chain()),
            None => panic!("no validator of this cluster is running"),
        }
    }
}

impl ChainClient for ClusterClient {
    fn chain_id(&self) -> ChainId {
        self.with_chain(|c| c.genesis().chain_id)
    }

    fn submit(&mut self, tx: &SignedTransaction) -> Result<Hash32, ClientError> {
        let shared = self.shared()?;
        let v = shared.rules.check_decoded(tx.clone());
        let h = shared.admit(vec![v]).pop().ok_or_else(|| ClientError::Chain("no admission result".into()))??;
        self.pending.push(h);
        Ok(h)
    }

    fn seal(&mut self) -> Result<(), ClientError> {
        let pending = std::mem::take(&mut self.pending);
        self.cluster
            .wait_committed_or_stall(&[self.via], &pending, self.timeout, self.stall)
            .map_err(|e| ClientError::Chain(e.to_string()))?;
        self.clock.fetch_add(1_000, Ordering::Relaxed);
        Ok(())
    }

    fn receipt(&self, h: &Hash32) -> Result<Option<Receipt>, ClientError> {
        self.with_chain(|c| c.receipt(h)).map_err(|e| ClientError::Chain(e.to_string()))
    }

    fn view(&self, contract: ContractId, method: &str, args: &[u8]) -> Result<serde_json::Value, ClientError> {
        self.with_chain(|c| c.view(contract, method, args)).map_err(|e| ClientError::Chain(e.to_string()))
    }

    fn tip(&self) -> BlockHeader {
        self.with_chain(|c| c.tip().clone())
    }

    fn validators(&self) -> Vec<gridledger_core::PublicKey> {
        self.with_chain(|c| c.genesis().validators.clone())
    }

    fn next_nonce(&self, a: &Address) -> u64 {
        self.with_chain(|c| c.next_nonce(a))
    }

    fn account(&self, a: &Address) -> Account {
        self.with_chain(|c| c.account(a))
    }

    fn now(&self) -> u64 {
        self.clock.load(Ordering::Relaxed)
    }

    fn set_now(&mut self, t: u64) {
        self.clock.fetch_max(t, Ordering::Relaxed);
    }

    fn block(&self, height: u64) -> Result<Option<gridledger_ledger::Block>, ClientError> {
        self.with_chain(|c| c.block(height)).map_err(|e| ClientError::Chain(e.to_string()))
    }
}
