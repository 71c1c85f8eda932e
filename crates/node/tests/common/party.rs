//! Shared by the channel party tests (`channel_party`, `attack_party_r*`):
//! the test channel's terms, the balance its dev node funds, a dev node
//! with that channel prepared ([`Setup`]) and a wait for a party's phase.

use gridledger_core::{Amount, KeyPair};
use gridledger_ledger::devnet::dev_key;
use gridledger_node::channel::party::{
    spawn_party_on, Command, Listeners, PartyHandle, PartyJoin, PartyOptions, Reply,
};
use gridledger_node::channel::spec::{bind_loopback, prepare_channel, ChannelTerms, PartySpec};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the dev node funds each account with.
pub const BAL: Amount = Amount(1_000_000_000_000);

/// The test channel: capacities 100,000 / 50,000, the contract's minimum
/// t_Δ, retries every 300 ms and a 1.5 s close timeout; parties on `addrs`,
/// control ports on `controls`.
pub fn channel_terms(credit: [bool; 2], addrs: [SocketAddr; 2], controls: [SocketAddr; 2]) -> ChannelTerms {
    ChannelTerms {
        capacity: [Amount(100_000), Amount(50_000)],
        credit,
        t_delta_ms: gridledger_contracts::cns::MIN_T_DELTA_MS,
        credit_limit: Amount(200_000),
        merchant_pool: Amount(1_000_000),
        collateral_lock_ms: 60_000,
        billing_period_ms: 30_000,
        retry_ms: 300,
        close_timeout_ms: 1_500,
        addrs,
        controls,
        accept: None,
    }
}

/// A party that fsyncs every save and has no control port.
pub fn fsync_opts() -> PartyOptions {
    PartyOptions { durability: gridledger_channels::disk::Durability::Fsync, control: false, ..PartyOptions::default() }
}

/// The addresses two bound listeners listen on.
pub fn addrs_of(ls: &[TcpListener; 2]) -> [SocketAddr; 2] {
    [ls[0].local_addr().unwrap(), ls[1].local_addr().unwrap()]
}

/// Waits (at most 20 s) until the party reports `phase`.
pub async fn wait_phase(h: &PartyHandle, phase: &str) {
    let t = Instant::now();
    loop {
        if let Reply::Status(s) = h.request(Command::Status).await {
            if s.phase == phase {
                return;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "phase {phase} not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A dev node and the test channel ([`channel_terms`], no credit) prepared
/// on it, with both parties' specs saved in `BASE/p0` and `BASE/p1` inside
/// a temporary directory; nothing started. The spec's peer and control
/// addresses are those of `ls` and `cs`, loopback listeners kept bound for
/// [`Setup::spawn`] (empty after [`Setup::unbound`]).
pub struct Setup {
    pub tmp: tempfile::TempDir,
    pub node: gridledger_node::NodeHandle,
    pub url: String,
    pub ls: Vec<TcpListener>,
    pub cs: Vec<TcpListener>,
    pub specs: [PartySpec; 2],
    pub dirs: [PathBuf; 2],
}

impl Setup {
    pub async fn new(base: &Path) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let node = gridledger_node::channel::devnode::start(&tmp.path().join("node"), 4, BAL, 20).unwrap();
        let url = node.url();
        let ls = [bind_loopback().unwrap(), bind_loopback().unwrap()];
        let cs = [bind_loopback().unwrap(), bind_loopback().unwrap()];
        let t = channel_terms([false, false], addrs_of(&ls), addrs_of(&cs));
        let specs = tokio::task::spawn_blocking({
            let url = url.clone();
            move || prepare_channel(&url, &dev_key(0), &KeyPair::from_seed("desk"), [&dev_key(1), &dev_key(2)], &t)
        })
        .await
        .unwrap()
        .unwrap();
        let root = tmp.path().join(base);
        let dirs = [root.join("p0"), root.join("p1")];
        for i in 0..2 {
            std::fs::create_dir_all(&dirs[i]).unwrap();
            specs[i].save(&dirs[i]).unwrap();
        }
        Setup { tmp, node, url, ls: ls.into(), cs: cs.into(), specs, dirs }
    }

    /// Like [`Setup::new`], with nothing listening on the spec's addresses
    /// (the parties bind them themselves).
    pub async fn unbound(base: &Path) -> Setup {
        let mut s = Setup::new(base).await;
        s.ls.clear();
        s.cs.clear();
        s
    }

    /// Starts party `i` on clones of its bound listeners (the control one
    /// where `opts.control`).
    pub fn spawn(&self, i: usize, opts: PartyOptions) -> (PartyHandle, PartyJoin) {
        let on = Listeners {
            peer: self.ls[i].try_clone().unwrap(),
            control: opts.control.then(|| self.cs[i].try_clone().unwrap()),
        };
        spawn_party_on(&self.dirs[i], opts, on).unwrap()
    }
}
