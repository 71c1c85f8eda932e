//! `gridledger channel …`: two-party state channels (seed 000) against a
//! running node. A channel is prepared once (`prepare`: merchant approvals
//! and MSCs through the merchant service of `gridledger cns`, then the ESC;
//! writes one directory per party), then each party runs its own
//! process (`open`), driven through its control channel (`pay`, `close`,
//! `status`; on Unix the socket `control.sock` in the party directory,
//! which only its owner can reach); `dispute` and `watch` work from the snapshot file
//! alone, with the party's process down.

use anyhow::Context;
use clap::{Args, Subcommand};
use gridledger_channels::disk::Durability;
use gridledger_core::{Amount, KeyPair};
use gridledger_node::channel::manager::{control_manager, ControlOp, ControlReply, ControlRequest};
use gridledger_node::channel::party::{
    control_endpoint, control_request_dir, read_control_token, run_party, Command, PartyOptions, Reply,
};
use gridledger_node::channel::spec::{
    bind_loopback, free_loopback_addr, prepare_channel, prepare_channel_with, AcceptPolicy, ChannelTerms, MscSource,
    PartySpec,
};
use gridledger_node::config::{read_key, write_key};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::endpoint::DEFAULT_RPC;

#[derive(Subcommand)]
pub enum ChannelCmd {
    /// Prepare a channel between two accounts on chain (merchant approvals,
    /// both MSCs, the ESC) and write both parties' directories.
    Prepare(Box<PrepareArgs>),
    /// Run this party's process: connect to the peer, open the channel
    /// (side 0) and co-sign updates until the channel closes.
    Open(OpenArgs),
    /// Run several parties (channels) in one process: each serves its own
    /// control port (so `pay`, `close`, `status --dir` work per channel),
    /// and every channel's events are printed as one JSON line each
    /// (`{"cid", "event"}`) on stdout until all have closed.
    Serve(ServeArgs),
    /// Pay the peer for energy through the running party (`--dir`) or a
    /// channel of a running `channel serve` (`--control --token-file --cid`).
    Pay(PayArgs),
    /// Close cooperatively through the running party (falls back to a
    /// dispute if the peer is silent); `--dir`, or `--control --token-file
    /// --cid` for a channel of `channel serve`.
    Close(CloseArgs),
    /// The channels a running `channel serve` manages, with their status.
    List(ListArgs),
    /// Add coin to your side of the open channel: a deposit on chain, then
    /// the co-signed state that allocates it (`--dir`, or `--control
    /// --token-file --cid`).
    #[command(name = "topup")]
    TopUp(ResizeArgs),
    /// Take part of your side's balance out of the open channel, which stays
    /// open: a co-signed state, then `channel_withdraw` pays it.
    Withdraw(ResizeArgs),
    /// (Merchant) sign a credit note for the next top-up of a credit-funded
    /// side of a channel; the participant passes the file to `channel topup
    /// --credit-note`.
    #[command(name = "topup-note")]
    TopUpNote(TopUpNoteArgs),
    /// The running party's channel state.
    Status(DirArgs),
    /// Unilateral close from the snapshot file (party process not needed):
    /// raise a dispute with the newest co-signed state, then settle after t_Δ.
    Dispute(DisputeArgs),
    /// Abort a channel still waiting for funding (the peer never funded):
    /// refunds whatever was funded (party process not needed).
    Abort(DirArgs),
    /// Watch the chain for a stale close by the peer and answer it with the
    /// newest co-signed state from the snapshot file.
    Watch(WatchArgs),
    /// Write what an outsourced watch service needs (no secrets) to a file.
    WatchSpec(WatchSpecArgs),
}

#[derive(Args)]
pub struct WatchSpecArgs {
    /// The party's directory (written by `channel prepare`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// New file to write the watch spec (JSON, no secrets) to; an existing
    /// file is never replaced.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the watch spec as one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PrepareArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The merchant's account key file.
    #[arg(long)]
    pub merchant_key: PathBuf,
    /// The merchant's desk (signing) key file; created if absent.
    #[arg(long)]
    pub desk_key: PathBuf,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Account key files of side 0 and side 1.
    #[arg(long, num_args = 2)]
    pub keys: Vec<PathBuf>,
    /// Directories to write for side 0 and side 1.
    #[arg(long, num_args = 2)]
    pub dirs: Vec<PathBuf>,
    /// Capacities of side 0 and side 1, in minor units (1 coin = 1,000,000).
    #[arg(long, num_args = 2, default_values_t = [100_000u128, 100_000], value_parser = crate::units::parse_amount)]
    pub capacity: Vec<u128>,
    /// Fund side 0 with a merchant credit note instead of a deposit.
    #[arg(long)]
    pub credit0: bool,
    /// Fund side 1 with a merchant credit note instead of a deposit.
    #[arg(long)]
    pub credit1: bool,
    /// Side 0's MSC: the one made by `cns init` with this approval file
    /// (written by `cns approve`; made now if `cns init` has not run).
    /// Absent: a fresh MSC approved by the merchant now.
    #[arg(long, value_name = "FILE")]
    pub approval0: Option<PathBuf>,
    /// Side 1's MSC from this approval file, as --approval0.
    #[arg(long, value_name = "FILE")]
    pub approval1: Option<PathBuf>,
    /// Dispute window t_Δ in blocks of the chain (default: 120 blocks, 24 s
    /// at the 200 ms blocks `gridledger init` configures, and never below the
    /// contract's minimum of 10 s): long enough for a party or its watch
    /// service to see a stale close and answer it.
    #[arg(long)]
    pub t_delta_blocks: Option<u64>,
    /// The chain's block interval (ms), to turn block counts into time
    /// (default: the node's own, from gl_chainInfo; 1000 ms if the node does
    /// not say).
    #[arg(long)]
    pub block_ms: Option<u64>,
    /// Exact t_Δ in ms instead of --t-delta-blocks (at least the contract's
    /// minimum of 10 s).
    #[arg(long, conflicts_with = "t_delta_blocks")]
    pub t_delta_ms: Option<u64>,
    /// Blocks to wait for the peer to co-sign a close before closing
    /// unilaterally (a dispute). Default: 30 blocks, and at least 5 s (the
    /// co-signature is a round trip to the peer, not a block).
    #[arg(long)]
    pub close_timeout_blocks: Option<u64>,
    /// Exact close timeout in ms instead of --close-timeout-blocks.
    #[arg(long, conflicts_with = "close_timeout_blocks")]
    pub close_timeout_ms: Option<u64>,
    /// Refuse incoming trades above this price per kWh, in minor units or coin with a
    /// decimal point, as `channel pay --price` (both parties' policy, with --min-price and
    /// --max-energy-wh; absent: no ceiling).
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub max_price: Option<u128>,
    /// Refuse incoming trades that pay less than this per kWh (minor units or coin),
    /// checked on the amount actually paid (always applied; default 1 minor unit).
    #[arg(long, default_value_t = 1, value_parser = crate::units::parse_amount)]
    pub min_price: u128,
    /// Refuse incoming trades above this energy (Wh; also takes kWh/MWh, e.g. 5kWh).
    #[arg(long, default_value_t = u64::MAX, value_parser = crate::units::parse_energy)]
    pub max_energy_wh: u64,
    /// Peer listen addresses of side 0 and side 1 (loopback ports chosen if absent).
    #[arg(long, num_args = 2)]
    pub listen: Vec<SocketAddr>,
    /// Merchant pool deposited on registration, in minor units.
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::units::parse_amount)]
    pub pool: u128,
    /// Time-lock of the collateral the merchant's approvals ask for (ms).
    #[arg(long, default_value_t = 60_000)]
    pub collateral_lock_ms: u64,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct OpenArgs {
    /// This party's directory (written by `channel prepare`).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Skip fsync (survives a process crash, not a power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Run this program for every alert (a dispute raised by the peer),
    /// with the alert as one JSON object on its stdin; alerts are also
    /// printed on stderr as `{"alert": {...}}` lines. Checked at start: a
    /// missing or non-executable program is refused.
    #[arg(long, value_name = "PROGRAM")]
    pub alert_exec: Option<PathBuf>,
    /// Print the final report as one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ServeArgs {
    /// A party directory (written by `channel prepare`); repeat for each
    /// channel.
    #[arg(long = "dir", value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// Skip fsync (survives a process crash, not a power loss).
    #[arg(long)]
    pub no_fsync: bool,
    /// Serve the manager's control port here (loopback only, e.g.
    /// 127.0.0.1:7400; port 0 picks one, printed on stderr): `channel
    /// list|pay|close --control` talk to it.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    pub control: Option<SocketAddr>,
    /// File to write the control port's secret token to (mode 0600,
    /// replaced at each start); clients read it with --token-file.
    #[arg(long, value_name = "FILE", requires = "control")]
    pub token_file: Option<PathBuf>,
    /// Run this program for every alert (a dispute raised against one of
    /// the channels), with the alert as one JSON object on its stdin;
    /// alerts also go into the event stream as `{"cid", "alert"}` lines.
    /// Checked at start: a missing or non-executable program is refused.
    #[arg(long, value_name = "PROGRAM")]
    pub alert_exec: Option<PathBuf>,
}

/// Where a `channel serve` control port is and how to prove the right to
/// use it.
#[derive(Args, Clone)]
pub struct ManagerArgs {
    /// The control port of a running `channel serve --control ADDR`.
    #[arg(long, value_name = "ADDR", requires = "token_file")]
    pub control: Option<SocketAddr>,
    /// The token file that `channel serve --token-file` wrote.
    #[arg(long, value_name = "FILE", requires = "control")]
    pub token_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ResizeArgs {
    /// The party's directory; its `channel open` must be running.
    #[arg(long, value_name = "DIR", required_unless_present = "control", conflicts_with = "control")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// With --control: the channel id (64 hex digits, as `channel list` shows).
    #[arg(long, value_name = "CID", requires = "control")]
    pub cid: Option<String>,
    /// Amount in minor units, or coin with a decimal point (1 coin =
    /// 1,000,000 minor units).
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub amount: u128,
    /// (topup only) A side funded by credit note tops up with the
    /// merchant's top-up note (`channel topup-note`); its amount (minor
    /// units) must equal --amount. Checked against the chain before anything is sent.
    #[arg(long, value_name = "FILE")]
    pub credit_note: Option<PathBuf>,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct TopUpNoteArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The merchant's desk (signing) key file, as registered.
    #[arg(long, value_name = "FILE")]
    pub desk_key: PathBuf,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// The channel id (64 hex digits).
    #[arg(long, value_name = "CID")]
    pub cid: String,
    /// The credit-funded side (0 or 1) the note tops up.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub side: u8,
    /// Amount in minor units, or coin with a decimal point.
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub amount: u128,
    /// New file to write the note to (JSON); an existing file is never replaced.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print the note as one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct CloseArgs {
    /// The party's directory; its `channel open` must be running.
    #[arg(long, value_name = "DIR", required_unless_present = "control", conflicts_with = "control")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// With --control: the channel id (64 hex digits, as `channel list` shows).
    #[arg(long, value_name = "CID", requires = "control")]
    pub cid: Option<String>,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PayArgs {
    /// The paying party's directory; its `channel open` must be running.
    #[arg(long, value_name = "DIR", required_unless_present = "control", conflicts_with = "control")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub manager: ManagerArgs,
    /// With --control: the channel id (64 hex digits, as `channel list` shows).
    #[arg(long, value_name = "CID", requires = "control")]
    pub cid: Option<String>,
    /// Energy bought: whole Wh (1500), or with a unit: 1500Wh, 1.5kWh, 0.0015MWh.
    #[arg(long, value_parser = crate::units::parse_energy, value_name = "ENERGY")]
    pub energy: u64,
    /// Price per kWh: minor units (200), or coin with a decimal point (0.0002
    /// or 0.0002coin; 1 coin = 1,000,000 minor units). The payment is
    /// energy × price / 1000 minor units, rounded down, and must not be zero.
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub price: u128,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DirArgs {
    /// The party's directory; its `channel open` must be running.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DisputeArgs {
    /// The party's directory (its snapshot file is used; the process may be down).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Only raise the dispute; do not wait to settle.
    #[arg(long)]
    pub no_settle: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout_s: u64,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct WatchArgs {
    /// The party's directory: its spec (unless --spec) and its store files.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Watch as an outsourced service: the channel from this file (see
    /// `channel watch-spec`), the states from --dir, gas paid by --key.
    #[arg(long, requires = "key")]
    pub spec: Option<PathBuf>,
    /// The watch service's own account key (with --spec).
    #[arg(long)]
    pub key: Option<PathBuf>,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Stop after this many seconds (or when the channel closes). A node
    /// that does not answer at start is retried meanwhile; one never
    /// reached within this time is an error.
    #[arg(long, default_value_t = 3_600)]
    pub timeout_s: u64,
    /// Run this program for every alert (a dispute raised against this
    /// side, a resolve or settle failing 3 times in a row, the node not
    /// answering 3 times in a row, a dispute deadline near with no answer
    /// landed), with the alert as one JSON object on its stdin. Checked at
    /// start: a missing or non-executable program is refused. Alerts are
    /// also printed on stderr as `{"alert": {...}}` lines.
    #[arg(long, value_name = "PROGRAM")]
    pub alert_exec: Option<PathBuf>,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn desk_key(path: &Path) -> anyhow::Result<KeyPair> {
    if path.exists() {
        return read_key(path);
    }
    let k = KeyPair::generate(&mut rand::rng());
    write_key(path, &k)?;
    Ok(k)
}

/// `channel prepare`'s default dispute window, in the chain's blocks.
const DEFAULT_T_DELTA_BLOCKS: u64 = 120;
/// `channel prepare`'s default close timeout, in the chain's blocks, and its
/// floor in ms when the blocks are fast.
const DEFAULT_CLOSE_TIMEOUT_BLOCKS: u64 = 30;
const MIN_DEFAULT_CLOSE_TIMEOUT_MS: u64 = 5_000;

/// `channel prepare`'s dispute window t_Δ and close timeout (ms) from the
/// flags `(ms, blocks)` of each and the chain's block interval. Defaults
/// are in the chain's blocks, raised to a floor on a fast chain (t_Δ to the
/// contract's minimum); explicit values are taken as given (a t_Δ below the
/// contract's minimum is then refused by the caller).
fn channel_windows(
    t_delta: (Option<u64>, Option<u64>),
    close: (Option<u64>, Option<u64>),
    block_ms: u64,
) -> (u64, u64) {
    let pick = |(ms, blocks): (Option<u64>, Option<u64>), default_blocks: u64, floor: u64| match (ms, blocks) {
        (Some(ms), _) => ms,
        (None, Some(b)) => b.saturating_mul(block_ms),
        (None, None) => default_blocks.saturating_mul(block_ms).max(floor),
    };
    (
        pick(t_delta, DEFAULT_T_DELTA_BLOCKS, gridledger_contracts::cns::MIN_T_DELTA_MS),
        pick(close, DEFAULT_CLOSE_TIMEOUT_BLOCKS, MIN_DEFAULT_CLOSE_TIMEOUT_MS),
    )
}

/// Refuses, before a fresh `--desk-key` file is written, a merchant the
/// chain already knows: a new desk key cannot be the one it registered
/// with, so the prepare would fail on chain and leave a useless key behind.
fn fresh_desk_key_usable(rpc: &str, merchant: &KeyPair, desk_path: &Path) -> anyhow::Result<()> {
    if desk_path.exists() {
        return Ok(());
    }
    let client = gridledger_node::RpcClient::new(rpc);
    let registered =
        gridledger_node::channel::chainlink::view(&client, "merchant", gridledger_contracts::args(&merchant.address()))
            .is_ok_and(|v| !v.is_null());
    anyhow::ensure!(
        !registered,
        "merchant {} is registered with another desk key than --desk-key holds ({} does not exist): give the \
         desk key file it was registered with (nothing was written)",
        merchant.address(),
        desk_path.display()
    );
    Ok(())
}

/// Refuses a `--dirs` path that cannot become a party directory (an
/// existing file, or below one) before anything is sent.
fn dir_writable(d: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(!d.as_os_str().is_empty(), "--dirs: an empty path is not a directory");
    let mut p = Some(d);
    while let Some(x) = p {
        if x.as_os_str().is_empty() {
            break;
        }
        match std::fs::metadata(x) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => anyhow::bail!(
                "--dirs {}: {} is a file, not a directory; choose a new directory path (nothing was sent)",
                d.display(),
                x.display()
            ),
            Err(_) => p = x.parent(),
        }
    }
    Ok(())
}

/// The chain's block interval in ms from `gl_chainInfo` (None if the node
/// does not report it).
fn node_block_ms(rpc: &str) -> Option<u64> {
    let info = gridledger_node::RpcClient::new(rpc).call("gl_chainInfo", json!([])).ok()?;
    info["block_interval_ms"].as_u64().filter(|ms| *ms > 0)
}

/// The disputes on record in the ESC `scid` (its record and one storage
/// entry per dispute), or None if it cannot be read.
fn esc_disputes(
    client: &gridledger_node::RpcClient,
    scid: &gridledger_core::Hash32,
) -> Option<Vec<gridledger_contracts::cns::DisputeRecord>> {
    let esc = gridledger_node::channel::chainlink::read_esc(client, scid).ok()??;
    Some(esc.disputes)
}

/// Loads the party in `dir`, naming the directory and the command that
/// makes one when it is missing.
fn load_party(dir: &Path) -> anyhow::Result<PartySpec> {
    anyhow::ensure!(
        dir.join("party.json").exists(),
        "{} holds no channel party (no party.json); `gridledger channel prepare --dirs DIR0 DIR1` writes one per side",
        dir.display()
    );
    PartySpec::load(dir).with_context(|| format!("reading the party in {}", dir.display()))
}

/// `channel serve`: one [`ChannelManager`] process for many channels.
fn serve(a: ServeArgs) -> anyhow::Result<()> {
    use gridledger_node::channel::alert::{alert_of_event, AlertSink, ExecAlerter};
    use gridledger_node::channel::manager::{new_token, serve_control, write_token_file, ChannelManager};
    let alerter = a.alert_exec.as_deref().map(ExecAlerter::new).transpose()?;
    let mut sides = std::collections::HashMap::new();
    for dir in &a.dirs {
        let p = load_party(dir)?;
        sides.insert(p.cid, p.side);
    }
    if let Some(addr) = a.control {
        anyhow::ensure!(
            addr.ip().is_loopback(),
            "--control {addr}: the control port binds the loopback interface only (e.g. 127.0.0.1:{})",
            addr.port()
        );
    }
    // With a manager port (`--control`), that token-guarded port is the one
    // way in: the parties' own control ports stay off (else `channel pay
    // --dir` would bypass --token-file). Without it, each party serves its
    // own port, guarded by the token in its directory as under `channel open`.
    let opts = PartyOptions {
        durability: if a.no_fsync { Durability::ProcessCrashOnly } else { Durability::Fsync },
        auto_open: true,
        control: a.control.is_none(),
        ..PartyOptions::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let mut manager = ChannelManager::new();
        let mut events = manager.subscribe();
        for dir in &a.dirs {
            let cid = manager.add(dir, opts.clone(), None).with_context(|| format!("starting {}", dir.display()))?;
            eprintln!("channel {cid}: serving {}", dir.display());
        }
        let control = match (a.control, &a.token_file) {
            (Some(addr), Some(file)) => {
                let l =
                    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding --control {addr}"))?;
                let token = new_token();
                write_token_file(file, &token)
                    .with_context(|| format!("writing the control token to {} (--token-file)", file.display()))?;
                eprintln!("control port on {} (token in {})", l.local_addr()?, file.display());
                Some(tokio::spawn(serve_control(l, token, manager.handles())))
            }
            _ => None,
        };
        let printer = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok((cid, e)) => {
                        println!("{}", json!({ "cid": cid.to_string(), "event": format!("{e:?}") }));
                        // A dispute raised by the peer: the channel is closing
                        // unilaterally (the party answers a stale one itself).
                        if let Some(al) = sides.get(&cid).and_then(|s| alert_of_event(cid, *s, &e)) {
                            let v: serde_json::Value = serde_json::from_str(&al.to_json()).unwrap_or_default();
                            println!("{}", json!({ "cid": cid.to_string(), "alert": v }));
                            if let Some(x) = &alerter {
                                x.alert(&al);
                            }
                        }
                    }
                    Err(RecvError::Lagged(n)) => println!("{}", json!({ "missed_events": n })),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        // Every sender of the stream (the manager's, each party's) is gone
        // once all parties ended: the printer drains and stops.
        let results = manager.join().await;
        if let Some(c) = control {
            c.abort();
        }
        let _ = printer.await;
        let mut failed = 0;
        for (cid, r) in results {
            match r {
                Ok(r) => println!(
                    "{}",
                    json!({ "cid": cid.to_string(), "phase": format!("{:?}", r.phase), "counter": r.latest })
                ),
                Err(e) => {
                    failed += 1;
                    eprintln!("channel {cid}: {e}");
                }
            }
        }
        anyhow::ensure!(failed == 0, "{failed} channel(s) failed");
        Ok(())
    })
}

/// A party's status: asked of its control port; where the directory has no
/// control token (the party runs under `channel serve --control`, whose
/// manager port is the one way in, or it never ran with its own port), the
/// state persisted in the directory, read-only, with a note on stderr.
fn status_of(dir: &Path) -> anyhow::Result<Reply> {
    use gridledger_node::channel::control::CONTROL_TOKEN_FILE;
    if dir.join(CONTROL_TOKEN_FILE).exists() {
        return control(dir, &Command::Status);
    }
    let store = gridledger_channels::disk::load_store(dir)
        .with_context(|| format!("reading the party's state in {}", dir.display()))?
        .with_context(|| format!("{}: no party control token and no persisted state", dir.display()))?;
    eprintln!("{}: no control port of its own; the state persisted in the directory", dir.display());
    let l = store.latest.as_ref();
    Ok(Reply::Status(gridledger_node::channel::party::PartyStatus {
        side: store.side,
        phase: format!("{:?}", store.phase),
        counter: l.map(|l| l.state.counter),
        balances: l.map(|l| l.state.balances),
        energy: l.map(|l| l.state.energy),
    }))
}

/// Sends `cmd` to the running party; returns its reply on success, and only
/// the error (once) when the party refuses.
fn control(dir: &Path, cmd: &Command) -> anyhow::Result<Reply> {
    let spec = load_party(dir)?;
    let token = read_control_token(dir).with_context(|| {
        format!(
            "reading the control token in {} (is `gridledger channel open --dir {}` running?)",
            dir.display(),
            dir.display()
        )
    })?;
    drop(token);
    let r = control_request_dir(dir, cmd, Duration::from_secs(120)).with_context(|| {
        format!(
            "talking to the party of {} at {} (is `gridledger channel open --dir {}` running?)",
            dir.display(),
            control_endpoint(dir, &spec),
            dir.display()
        )
    })?;
    match r {
        Reply::Error { message } => anyhow::bail!(message),
        r => Ok(r),
    }
}

/// `channel topup` / `channel withdraw` through the party or the manager.
fn resize(a: &ResizeArgs, topup: bool) -> anyhow::Result<()> {
    let amount = u64::try_from(a.amount).ok().filter(|v| *v > 0).with_context(|| {
        format!("--amount {} must be positive and at most {}", crate::units::show(a.amount), u64::MAX)
    })?;
    anyhow::ensure!(topup || a.credit_note.is_none(), "--credit-note is for `channel topup` only");
    let credit_note = match &a.credit_note {
        None => None,
        Some(f) => {
            // A note is a few hundred bytes: read bounded, regular files only.
            let meta = std::fs::metadata(f)
                .with_context(|| format!("reading the top-up note {} (--credit-note)", f.display()))?;
            anyhow::ensure!(
                meta.is_file() && meta.len() <= 64 * 1024,
                "{} (--credit-note) is not a top-up note file",
                f.display()
            );
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading the top-up note {} (--credit-note)", f.display()))?;
            let note: gridledger_node::channel::merchant::TopUpNote = serde_json::from_str(&text)
                .with_context(|| format!("{} (--credit-note) is not a top-up note", f.display()))?;
            Some(note)
        }
    };
    let r = match (&a.dir, topup) {
        (Some(dir), true) => control(dir, &Command::TopUp { amount, credit_note })?,
        (Some(dir), false) => control(dir, &Command::Withdraw { amount })?,
        (None, _) => {
            let cid = a.cid.clone().context("--control needs --cid (the channel)")?;
            let op =
                if topup { ControlOp::TopUp { cid, amount, credit_note } } else { ControlOp::Withdraw { cid, amount } };
            manager_party(&a.manager, op)?
        }
    };
    if !a.json {
        let what = if topup { "topped up" } else { "withdrew" };
        println!("{what} {}", crate::units::show(a.amount));
    }
    show_reply(a.json, &r)
}

/// One request to a `channel serve` control port with the token from its file.
fn manager_request(m: &ManagerArgs, op: ControlOp) -> anyhow::Result<ControlReply> {
    let (Some(addr), Some(file)) = (m.control, &m.token_file) else {
        anyhow::bail!("give --control ADDR and --token-file FILE of a running `channel serve`");
    };
    let token = std::fs::read_to_string(file)
        .with_context(|| format!("reading the control token from {} (--token-file)", file.display()))?;
    let req = ControlRequest { token: token.trim().to_string(), op };
    control_manager(addr, &req, Duration::from_secs(120))
        .with_context(|| format!("talking to `channel serve` at {addr} (--control)"))
}

/// A [`manager_request`] for one channel: its party's reply, or the error.
fn manager_party(m: &ManagerArgs, op: ControlOp) -> anyhow::Result<Reply> {
    match manager_request(m, op)? {
        ControlReply::Party(Reply::Error { message }) => anyhow::bail!(message),
        ControlReply::Party(r) => Ok(r),
        ControlReply::List { .. } => anyhow::bail!("unexpected list answer"),
    }
}

/// Prints a party's reply: as it is on the wire under --json, else a summary.
fn show_reply(as_json: bool, r: &Reply) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    match r {
        Reply::Done { counter } => println!("done; co-signed state {counter}"),
        Reply::Status(st) => {
            println!("side              {}", st.side);
            println!("phase             {}", st.phase);
            println!("counter           {}", st.counter.map_or("-".into(), |c| c.to_string()));
            if let Some(b) = &st.balances {
                println!("balances          side 0: {}", crate::units::show(b[0].0));
                println!("                  side 1: {}", crate::units::show(b[1].0));
            }
            if let Some(e) = &st.energy {
                println!("energy delivered  side 0: {} Wh, side 1: {} Wh", e[0].0, e[1].0);
            }
        }
        Reply::Error { message } => println!("error: {message}"),
    }
    Ok(())
}

/// Prints a dispute or watch report.
fn show_watch(as_json: bool, r: &gridledger_node::channel::watch::WatchReport) -> anyhow::Result<()> {
    let v = json!({ "disputes": r.disputes, "resolved_with": r.resolved_with, "settled": r.settled, "closed_at": r.closed_at });
    crate::ops::emit(as_json, &v, || {
        println!("disputes raised  {}", v["disputes"]);
        println!("resolved with    {}", v["resolved_with"]);
        println!("settled          {}", v["settled"]);
        println!("closed at        {}", v["closed_at"]);
    })
}

/// Whether two paths name the same directory (existing or not).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => {
            let norm = |p: &Path| {
                std::path::absolute(p)
                    .map(|p| p.components().filter(|c| !matches!(c, std::path::Component::CurDir)).collect::<PathBuf>())
            };
            matches!((norm(a), norm(b)), (Ok(x), Ok(y)) if x == y)
        }
    }
}

/// A party's account key and, when it is an encrypted keystore, the
/// keystore's path and password (the party's own keys are sealed under it).
type PartyAccount = (KeyPair, Option<(PathBuf, zeroize::Zeroizing<String>)>);

fn party_account(path: &Path, password: &crate::ops::PasswordArgs) -> anyhow::Result<PartyAccount> {
    use gridledger_node::keystore;
    let text = gridledger_node::config::read_key_text(path)?;
    if keystore::is_keystore(&text) {
        let pw = password.get().with_context(|| format!("opening {}", path.display()))?;
        let key = keystore::open(&text, &pw).with_context(|| format!("opening {}", path.display()))?;
        return Ok((key, Some((path.to_path_buf(), pw))));
    }
    Ok((read_key(path)?, None))
}

pub fn run(cmd: ChannelCmd) -> anyhow::Result<()> {
    match cmd {
        ChannelCmd::Prepare(a) => {
            anyhow::ensure!(a.keys.len() == 2 && a.dirs.len() == 2 && a.capacity.len() == 2, "two of each");
            // Refuse what would lose a side's keys before anything is sent.
            anyhow::ensure!(
                !same_dir(&a.dirs[0], &a.dirs[1]),
                "--dirs {} and {} are the same directory; each side needs its own (its keys and state live there)",
                a.dirs[0].display(),
                a.dirs[1].display()
            );
            for d in &a.dirs {
                dir_writable(d)?;
                anyhow::ensure!(
                    !d.join(gridledger_node::channel::spec::SPEC_FILE).exists(),
                    "{} already holds a channel party (party.json); choose another --dirs directory",
                    d.display()
                );
            }
            let merchant = crate::ops::read_key_with(&a.merchant_key, &a.password)?;
            let accounts = [party_account(&a.keys[0], &a.password)?, party_account(&a.keys[1], &a.password)?];
            let keys = [accounts[0].0.clone(), accounts[1].0.clone()];
            anyhow::ensure!(
                keys[0].address() != keys[1].address(),
                "--keys {} and {} are the same account {}; a channel needs two different accounts",
                a.keys[0].display(),
                a.keys[1].display(),
                keys[0].address()
            );
            let sources = [(&a.approval0, "--approval0"), (&a.approval1, "--approval1")].map(|(f, flag)| {
                f.as_ref().map_or(Ok(MscSource::Fresh), |p| {
                    crate::cns::read_approval(p, flag).map(|a| MscSource::Approval(Box::new(a)))
                })
            });
            let [s0, s1] = sources;
            let sources = [s0?, s1?];
            // A credit note above what the approval grants is refused by the
            // contract only at `channel open`: refuse it now, naming the limit.
            for (i, (src, flag)) in sources.iter().zip(["--approval0", "--approval1"]).enumerate() {
                if let (MscSource::Approval(ap), true) = (src, [a.credit0, a.credit1][i]) {
                    let limit = ap.approval.credit_limit.0;
                    anyhow::ensure!(
                        a.capacity[i] <= limit,
                        "--capacity of side {i} ({}) is above the credit {flag} approves ({}): a credit note \
                         cannot exceed it; lower --capacity or apply for more credit (`cns apply --credit`)",
                        crate::units::show(a.capacity[i]),
                        crate::units::show(limit)
                    );
                }
            }
            // The peer addresses are checked before anything is sent or
            // written: each side must know the other's port in advance, and
            // only one side can listen on an address.
            let addrs = match a.listen.as_slice() {
                [x, y] => {
                    anyhow::ensure!(
                        x.port() != 0 && y.port() != 0,
                        "--listen {x} {y}: port 0 cannot be told to the peer in advance; give fixed ports"
                    );
                    anyhow::ensure!(x != y, "--listen {x} {y}: the two sides need two different addresses");
                    [*x, *y]
                }
                [] => [free_loopback_addr()?, free_loopback_addr()?],
                _ => anyhow::bail!("--listen takes two addresses"),
            };
            // Reach the node before anything is written (no half-made desk key).
            crate::endpoint::probe(&a.rpc)?;
            fresh_desk_key_usable(&a.rpc, &merchant, &a.desk_key)?;
            // Every approval is checked before a desk key is written: it
            // must be this merchant's answer to this side's application.
            // On an MSC `cns init` already made, a credit note must also fit
            // the credit still available (as the contract counts it at
            // open: notes locked in open channels and debt not yet settled).
            for (i, (src, flag)) in sources.iter().zip(["--approval0", "--approval1"]).enumerate() {
                let MscSource::Approval(ap) = src else { continue };
                anyhow::ensure!(
                    ap.approval.merchant == merchant.address(),
                    "{flag}: the approval is from merchant {}, but --merchant-key is {} (nothing was sent)",
                    ap.approval.merchant,
                    merchant.address()
                );
                let client = gridledger_node::RpcClient::new(&a.rpc);
                let (found, _) = gridledger_node::channel::spec::find_msc_of_approval(&client, &keys[i], ap)
                    .with_context(|| format!("{flag} for --keys {} (nothing was sent)", a.keys[i].display()))?;
                let Some(m) = found.filter(|_| [a.credit0, a.credit1][i]) else { continue };
                let used = i128::try_from(m.ledger.locked.0).unwrap_or(i128::MAX) + m.ledger.exposure().max(0);
                let limit = i128::try_from(m.credit_limit.0).unwrap_or(i128::MAX);
                let available = u128::try_from((limit - used).max(0)).unwrap_or(0);
                anyhow::ensure!(
                    a.capacity[i] <= available,
                    "--capacity of side {i} ({}) is above the credit still available on MSC {} of {flag} ({} of \
                     {}: the rest is locked in open channels or owed); lower --capacity, or close channels / \
                     settle the bill first (nothing was sent)",
                    crate::units::show(a.capacity[i]),
                    m.sid,
                    crate::units::show(available),
                    crate::units::show(m.credit_limit.0)
                );
            }
            let block_ms = a.block_ms.or_else(|| node_block_ms(&a.rpc)).unwrap_or(1_000);
            let min = gridledger_contracts::cns::MIN_T_DELTA_MS;
            let (t_delta_ms, close_timeout_ms) = channel_windows(
                (a.t_delta_ms, a.t_delta_blocks),
                (a.close_timeout_ms, a.close_timeout_blocks),
                block_ms,
            );
            anyhow::ensure!(t_delta_ms >= min, "t_Δ of {t_delta_ms} ms is below the contract's minimum {min} ms");
            let desk = desk_key(&a.desk_key)?;
            let terms = ChannelTerms {
                capacity: [Amount(a.capacity[0]), Amount(a.capacity[1])],
                credit: [a.credit0, a.credit1],
                t_delta_ms,
                credit_limit: Amount(a.capacity[0].max(a.capacity[1]).saturating_mul(2)),
                merchant_pool: Amount(a.pool),
                collateral_lock_ms: a.collateral_lock_ms,
                billing_period_ms: 30_000,
                retry_ms: 500,
                close_timeout_ms,
                addrs,
                controls: [free_loopback_addr()?, free_loopback_addr()?],
                // Always bounded: without --max-price the ceiling is open,
                // but the floor (--min-price, default 1 per kWh) is checked
                // on what is actually paid, so no rounding trick buys
                // energy below it. A seller sets its real floor.
                accept: Some(AcceptPolicy {
                    min_price_per_kwh: a.min_price,
                    max_price_per_kwh: a.max_price.unwrap_or(u128::MAX),
                    max_energy_wh: a.max_energy_wh,
                }),
            };
            let mut specs = prepare_channel_with(
                &a.rpc,
                &merchant,
                &desk,
                [&keys[0], &keys[1]],
                &terms,
                [&sources[0], &sources[1]],
            )?;
            for ((s, d), (_, sealed)) in specs.iter_mut().zip(&a.dirs).zip(&accounts) {
                // A keystore account: party.json refers to it and seals the
                // party's own keys under its password, never copies a secret.
                if let Some((ks, pw)) = sealed {
                    s.seal(ks, pw).with_context(|| format!("sealing the keys of {}", d.display()))?;
                }
                s.save(d).with_context(|| format!("writing the party directory {} (--dirs)", d.display()))?;
            }
            let v = json!({ "cid": specs[0].cid, "scid": specs[0].scid, "sids": [specs[0].sid, specs[1].sid],
                            "dirs": a.dirs, "listen": addrs });
            crate::ops::emit(a.json, &v, || {
                println!("channel {} prepared (ESC {})", specs[0].cid, specs[0].scid);
                for i in 0..2 {
                    println!("  side {i}  MSC {}  peer link {}  dir {}", specs[i].sid, addrs[i], a.dirs[i].display());
                }
                println!("next: gridledger channel open --dir {}   (side 1 first, then side 0)", a.dirs[1].display());
            })
        }
        ChannelCmd::Serve(a) => serve(a),
        ChannelCmd::Open(a) => {
            use gridledger_node::channel::alert::{alert_of_event, AlertSink, ExecAlerter, StderrAndExec};
            let spec = load_party(&a.dir)?;
            let alerts = std::sync::Arc::new(StderrAndExec(a.alert_exec.as_deref().map(ExecAlerter::new).transpose()?));
            eprintln!(
                "channel {}: side {} listening on {} for its peer, control on {}; runs until the channel closes",
                spec.cid,
                spec.side,
                spec.addrs[usize::from(spec.side)],
                control_endpoint(&a.dir, &spec)
            );
            let (events, mut rx) = tokio::sync::broadcast::channel(256);
            let opts = PartyOptions {
                durability: if a.no_fsync { Durability::ProcessCrashOnly } else { Durability::Fsync },
                auto_open: true,
                events: Some(events),
                alerts: gridledger_node::channel::alert::AlertHook(Some(alerts.clone())),
                ..PartyOptions::default()
            };
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            let side = spec.side;
            rt.spawn(async move {
                use tokio::sync::broadcast::error::RecvError;
                loop {
                    match rx.recv().await {
                        Ok((cid, e)) => {
                            if let Some(al) = alert_of_event(cid, side, &e) {
                                alerts.alert(&al);
                            }
                        }
                        Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return,
                    }
                }
            });
            // A line on stderr per phase change, read from the party's own
            // control port (the party itself stays IO-free of printing).
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let phases = {
                let (done, cid, dir) = (done.clone(), spec.cid, a.dir.clone());
                std::thread::spawn(move || {
                    let mut last = String::new();
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        // The token is written when the party's port starts.
                        if let Ok(Reply::Status(st)) =
                            control_request_dir(&dir, &Command::Status, Duration::from_secs(2))
                        {
                            if st.phase != last {
                                eprintln!("channel {cid}: {} (counter {})", st.phase, st.counter.unwrap_or(0));
                                last = st.phase;
                            }
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
            };
            let r = rt.block_on(run_party(&a.dir, opts));
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = phases.join();
            let r = r?;
            eprintln!("channel {}: {:?} at counter {}", spec.cid, r.phase, r.latest.unwrap_or(0));
            let v = json!({ "phase": format!("{:?}", r.phase), "counter": r.latest, "saves": r.saves,
                            "save_time_us": r.save_time.as_micros() as u64, "syncs": r.syncs,
                            "persists": r.persists, "txs": r.txs.len() });
            crate::ops::emit(a.json, &v, || {
                println!("phase            {:?}", r.phase);
                println!("counter          {}", r.latest.unwrap_or(0));
                println!("snapshot saves   {}", r.saves);
                println!("transactions     {}", r.txs.len());
            })
        }
        ChannelCmd::Pay(a) => {
            let price = u64::try_from(a.price).map_err(|_| {
                anyhow::anyhow!(
                    "--price {} per kWh is above the largest price a trade carries ({})",
                    crate::units::show(a.price),
                    crate::units::show(u128::from(u64::MAX))
                )
            })?;
            let paid = gridledger_contracts::cns::Trade::price_of(gridledger_core::Energy(a.energy), Amount(a.price));
            anyhow::ensure!(
                paid.is_some_and(|p| p.0 > 0),
                "{} Wh at {} per kWh pays {} minor units (energy × price / 1000, rounded down): \
                 a trade must pay something; raise --energy or --price",
                a.energy,
                crate::units::show(a.price),
                paid.map_or(0, |p| p.0)
            );
            let r = match (&a.dir, &a.manager.control) {
                (Some(dir), _) => control(dir, &Command::Pay { energy: a.energy, price })?,
                (None, _) => {
                    let cid = a.cid.clone().context("--control needs --cid (the channel to pay on)")?;
                    manager_party(&a.manager, ControlOp::Pay { cid, energy: a.energy, price })?
                }
            };
            if !a.json {
                println!(
                    "paid {} for {} Wh at {} per kWh",
                    crate::units::show(paid.map_or(0, |p| p.0)),
                    a.energy,
                    crate::units::show(a.price)
                );
            }
            show_reply(a.json, &r)
        }
        ChannelCmd::TopUp(a) => resize(&a, true),
        ChannelCmd::Withdraw(a) => resize(&a, false),
        ChannelCmd::TopUpNote(a) => {
            let desk = crate::ops::read_key_with(&a.desk_key, &a.password)?;
            let cid = gridledger_core::Hash32::from_hex(&a.cid).map_err(|e| anyhow::anyhow!("--cid {}: {e}", a.cid))?;
            let amount = Amount(a.amount);
            anyhow::ensure!(a.amount > 0, "--amount must be positive");
            let client = gridledger_node::RpcClient::new(&a.rpc);
            let nonce = rand::random::<u64>();
            let note = gridledger_node::channel::merchant::sign_topup_note(&client, &desk, &cid, a.side, amount, nonce)
                .with_context(|| format!("signing a top-up note for channel {cid} at {} (--rpc)", a.rpc))?;
            let text = serde_json::to_string_pretty(&note)?;
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&a.out).with_context(|| {
                format!("writing the note to {} (--out): an existing file is never replaced", a.out.display())
            })?;
            std::io::Write::write_all(&mut f, text.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing the note to {} (--out)", a.out.display()))?;
            crate::ops::emit(a.json, &serde_json::to_value(&note)?, || {
                println!(
                    "top-up note #{} for side {} of channel {}: {} (written to {})",
                    note.index,
                    note.side,
                    note.cid,
                    crate::units::show(note.amount.0),
                    a.out.display()
                );
            })
        }
        ChannelCmd::List(a) => {
            let r = manager_request(&a.manager, ControlOp::List)?;
            if let ControlReply::Party(Reply::Error { message }) = &r {
                anyhow::bail!("{message}");
            }
            if a.json {
                println!("{}", serde_json::to_string(&r)?);
                return Ok(());
            }
            if let ControlReply::List { channels } = r {
                for c in channels {
                    let state = match &c.status {
                        Reply::Status(s) => format!("{} counter {:?} balances {:?}", s.phase, s.counter, s.balances),
                        other => format!("{other:?}"),
                    };
                    println!("{}  {}  {}", c.cid, c.dir.display(), state);
                }
            }
            Ok(())
        }
        ChannelCmd::Close(a) => {
            let Some(dir) = &a.dir else {
                let cid = a.cid.clone().context("--control needs --cid (the channel to close)")?;
                let r = manager_party(&a.manager, ControlOp::Close { cid })?;
                return show_reply(a.json, &r);
            };
            let r = control(dir, &Command::Close)?;
            show_reply(a.json, &r)?;
            // Say how it closed: cooperatively, or by a dispute because the
            // peer did not co-sign in time (the chain's record tells).
            let spec = load_party(dir)?;
            let client = gridledger_node::RpcClient::new(&spec.rpc);
            match esc_disputes(&client, &spec.scid) {
                Some(d) if d.iter().any(|x| x.cid == spec.cid) => eprintln!(
                    "channel {}: closed by a dispute (the peer did not co-sign the close in time); settled on chain \
                     with the newest co-signed state",
                    spec.cid
                ),
                Some(_) => eprintln!("channel {}: closed cooperatively", spec.cid),
                None => {}
            }
            Ok(())
        }
        ChannelCmd::Status(a) => show_reply(a.json, &status_of(&a.dir)?),
        ChannelCmd::WatchSpec(a) => {
            let p = load_party(&a.dir)?;
            let w = gridledger_node::channel::watch::WatchSpec::from(&p);
            // Never over an existing file: `--out DIR/party.json` would
            // replace the party's keys with a spec that holds none.
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&a.out).with_context(|| {
                format!(
                    "writing the watch spec to {} (--out): a file that already exists is never replaced; \
                     choose a new --out path",
                    a.out.display()
                )
            })?;
            std::io::Write::write_all(&mut f, serde_json::to_string_pretty(&w)?.as_bytes())
                .and_then(|()| f.sync_all())
                .with_context(|| format!("writing the watch spec to {} (--out)", a.out.display()))?;
            crate::ops::emit(a.json, &serde_json::to_value(&w)?, || {
                println!("watch spec of channel {} written to {} (no secrets)", w.cid, a.out.display());
                println!(
                    "next: the watch service runs `gridledger channel watch --spec {} --key ITS.key --dir DIR`, \
                     DIR holding a copy of {}'s store files",
                    a.out.display(),
                    a.dir.display()
                );
            })
        }
        ChannelCmd::Dispute(a) => {
            load_party(&a.dir)?;
            let r = gridledger_node::channel::watch::dispute(&a.dir, !a.no_settle, Duration::from_secs(a.timeout_s))?;
            show_watch(a.json, &r)
        }
        ChannelCmd::Abort(a) => {
            load_party(&a.dir)?;
            let o = gridledger_node::channel::watch::abort(&a.dir)?;
            let v = json!({ "aborted": true, "tx": o.hash.to_string(), "fee": o.fee.to_string() });
            crate::ops::emit(a.json, &v, || {
                println!("channel aborted; whatever was funded is refunded");
                println!("  transaction  {}", o.hash);
                println!("  fee          {}", crate::units::show(o.fee));
            })
        }
        ChannelCmd::Watch(a) => {
            // Readiness line: the watcher replays the channel's events from
            // its start height, so nothing raised from now on is missed.
            use gridledger_node::channel::watch::{watch_alerting, WatchSpec};
            let (spec, account) = match (&a.spec, &a.key) {
                (Some(s), Some(k)) => {
                    let text = std::fs::read_to_string(s).with_context(|| format!("reading {}", s.display()))?;
                    (
                        serde_json::from_str::<WatchSpec>(&text).context("watch spec")?,
                        crate::ops::read_key_with(k, &a.password)?,
                    )
                }
                _ => {
                    let p = load_party(&a.dir)?;
                    (WatchSpec::from(&p), p.account()?)
                }
            };
            // A watch that never reaches its node is an error, not a quiet,
            // empty report. A node that is down at start (restarting) is
            // retried until --timeout-s; later outages the watch rides out.
            use gridledger_node::channel::alert::{Alert, AlertSink, ExecAlerter, FailureCount, StderrAndExec};
            let alerts = StderrAndExec(a.alert_exec.as_deref().map(ExecAlerter::new).transpose()?);
            let limit = Duration::from_secs(a.timeout_s);
            let started = std::time::Instant::now();
            let mut warned = false;
            let mut failures = FailureCount::default();
            while let Err(e) = crate::endpoint::probe(&spec.rpc) {
                if let Some(attempts) = failures.failed() {
                    alerts.alert(&Alert::NodeUnreachable {
                        cid: spec.cid,
                        rpc: spec.rpc.clone(),
                        attempts,
                        last_error: format!("{e:#}"),
                    });
                }
                if started.elapsed() >= limit {
                    return Err(e.context(format!(
                        "the watch never reached its node at {} (the spec's rpc) within --timeout-s {}",
                        spec.rpc, a.timeout_s
                    )));
                }
                if !warned {
                    eprintln!("no node answers at {} yet; retrying until --timeout-s {}", spec.rpc, a.timeout_s);
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(500).min(limit.saturating_sub(started.elapsed())));
            }
            let limit = limit.saturating_sub(started.elapsed());
            // Under --json stdout carries one document (the report), so the
            // readiness line goes to stderr, as one JSON object. A closed
            // stdout does not end the watch (`println!` tolerates it).
            if a.json {
                eprintln!("{}", json!({ "watching": spec.cid, "from_height": spec.start_height }));
            } else {
                println!("watching channel {} from height {}", spec.cid, spec.start_height);
            }
            let r = watch_alerting(&spec, account, &a.dir, limit, Duration::from_millis(100), &alerts)?;
            show_watch(a.json, &r)
        }
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// Co-signed updates timed per run.
    #[arg(long, default_value_t = 2_000)]
    pub updates: usize,
    /// Only the fsync'd runs (default: also the write-only runs).
    #[arg(long)]
    pub fsync_only: bool,
    /// Payments kept in flight by the throughput run (the latency run keeps
    /// one).
    #[arg(long, default_value_t = 256)]
    pub inflight: usize,
    /// Side 0's proposal window (updates awaiting the peer at once; party
    /// processes default to 1, see `DEFAULT_WINDOW`).
    #[arg(long, default_value_t = gridledger_channels::machine::BENCH_WINDOW)]
    pub window: usize,
    /// Print JSON on one line (the output is JSON either way).
    #[arg(long)]
    pub json: bool,
}

fn percentile_us(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One channel lifetime between this process (side 0) and a child process
/// (side 1) on loopback: open, `updates` timed co-signed payments with
/// `inflight` of them outstanding at any time (closed loop), close.
fn bench_run(
    updates: usize,
    durability: Durability,
    inflight: usize,
    window: usize,
) -> anyhow::Result<serde_json::Value> {
    use gridledger_experiments::exps::cns_channel_costs::{prepare_lifetime, transfer_gas, txs_and_gas, Prepared};
    use std::time::Instant;
    // Side 1 runs in a child process: its ports are chosen here, then released.
    let addrs = [free_loopback_addr()?, free_loopback_addr()?];
    let Prepared { node, client, setup_from, specs, dirs, dir: _dir } =
        prepare_lifetime(addrs, [free_loopback_addr()?, free_loopback_addr()?])?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["channel", "open", "--json", "--dir"]).arg(&dirs[1]);
    if durability == Durability::ProcessCrashOnly {
        cmd.arg("--no-fsync");
    }
    let child = cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn()?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let opts = PartyOptions { durability, control: false, window: Some(window), ..PartyOptions::default() };
    let inflight = inflight.clamp(1, updates.max(1));
    let (lat, report, elapsed) = rt.block_on(async {
        let (h, join) = gridledger_node::channel::party::spawn_party(&dirs[0], opts)?;
        match h.request(Command::Open).await {
            Reply::Done { .. } => {}
            r => anyhow::bail!("open: {r:?}"),
        }
        // The peer may see the channel active a poll later: retry the first.
        let t = Instant::now();
        while !matches!(h.request(Command::Pay { energy: 10, price: 100 }).await, Reply::Done { .. }) {
            anyhow::ensure!(t.elapsed() < Duration::from_secs(20), "peer never ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for _ in 0..50 {
            h.request(Command::Pay { energy: 10, price: 100 }).await;
        }
        // `inflight` clients, each paying in a loop until `updates` are done.
        let left = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(updates));
        let start = Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..inflight {
            let (h, left) = (h.clone(), left.clone());
            clients.spawn(async move {
                let mut lat = vec![];
                while left
                    .fetch_update(std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed, |n| {
                        n.checked_sub(1)
                    })
                    .is_ok()
                {
                    let t = Instant::now();
                    match h.request(Command::Pay { energy: 10, price: 100 }).await {
                        Reply::Done { .. } => lat.push(t.elapsed().as_micros() as u64),
                        r => anyhow::bail!("update failed: {r:?}"),
                    }
                }
                Ok(lat)
            });
        }
        let mut lat = Vec::with_capacity(updates);
        while let Some(r) = clients.join_next().await {
            lat.extend(r??);
        }
        let elapsed = start.elapsed();
        match h.request(Command::Close).await {
            Reply::Done { .. } => {}
            r => anyhow::bail!("close: {r:?}"),
        }
        let report = join.await??;
        Ok((lat, report, elapsed))
    })?;
    let out = child.wait_with_output()?;
    let peer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    let end = client.height()?;
    let (setup_txs, setup_gas) = txs_and_gas(&client, setup_from, specs[0].start_height)?;
    let (chan_txs, chan_gas) = txs_and_gas(&client, specs[0].start_height + 1, end)?;
    let transfer_gas = transfer_gas(&client)?;
    node.shutdown();
    let mut sorted = lat.clone();
    sorted.sort_unstable();
    let trades = (updates + 51) as u64;
    let per = |v: u64| v as f64 / trades as f64;
    let peer_syncs = peer["syncs"].as_u64().unwrap_or(0);
    Ok(json!({
        "durability": match durability { Durability::Fsync => "fsync", Durability::ProcessCrashOnly => "write-only" },
        "updates": updates,
        "inflight": inflight,
        "window": window,
        "updates_per_s": updates as f64 / elapsed.as_secs_f64(),
        "latency_us": { "p50": percentile_us(&sorted, 0.5), "p90": percentile_us(&sorted, 0.9),
                        "p99": percentile_us(&sorted, 0.99), "max": sorted.last().copied().unwrap_or(0) },
        // Over the channel's whole life (open, warm-up, timed updates,
        // close), per trade: group commit writes one record and does one
        // fdatasync for every batch of stores queued meanwhile.
        "store": { "side0": { "persists": report.persists, "records": report.saves, "fdatasyncs": report.syncs,
                              "record_mean_us": report.save_time.as_micros() as u64 / report.saves.max(1) },
                   "side1": { "persists": peer["persists"], "records": peer["saves"], "fdatasyncs": peer["syncs"],
                              "record_total_us": peer["save_time_us"] },
                   "fdatasyncs_per_update": { "side0": per(report.syncs), "side1": per(peer_syncs) } },
        "on_chain": {
            "trades": trades,
            "setup": { "txs": setup_txs, "gas": setup_gas },
            "channel_lifetime": { "txs": chan_txs, "gas": chan_gas },
            "every_trade_on_chain": { "txs": trades, "gas": trades * transfer_gas, "gas_per_trade": transfer_gas },
        },
    }))
}

/// Mean time of one record save, with and without fdatasync: the disk's
/// limit on sequential fdatasyncs per second.
fn fsync_cost() -> anyhow::Result<serde_json::Value> {
    use gridledger_channels::disk::StoreFile;
    let dir = tempfile::tempdir()?;
    let k = KeyPair::generate(&mut rand::rng());
    let params = gridledger_channels::ChannelParams {
        domain: gridledger_contracts::cns::Domain::cns(1),
        min_t_delta_ms: 1,
        policy: None,
        auto_pay: None,
        window: gridledger_channels::machine::DEFAULT_WINDOW,
        side: 0,
        peer_key: k.public(),
        scid: gridledger_core::Hash32([1; 32]),
        cid: gridledger_core::Hash32([2; 32]),
        t_delta_ms: 1,
        capacity: [Amount(1), Amount(1)],
        funding: gridledger_contracts::cns::Funding::Deposit,
        retry_ms: 1,
        close_timeout_ms: 1,
    };
    let m = gridledger_channels::ChannelMachine::new(k, [0; 32], params);
    let mut out = serde_json::Map::new();
    for (d, name) in
        [(Durability::Fsync, "fsync_save_mean_us"), (Durability::ProcessCrashOnly, "rename_only_save_mean_us")]
    {
        let mut f = StoreFile::open(dir.path(), d)?;
        for _ in 0..500 {
            f.save(m.store())?;
        }
        let (n, t) = f.stats();
        let mean_us = t.as_secs_f64() * 1e6 / n as f64;
        out.insert(name.into(), json!(mean_us));
        if d == Durability::Fsync {
            out.insert("fdatasyncs_per_s".into(), json!(1e6 / mean_us.max(1e-3)));
        }
    }
    Ok(serde_json::Value::Object(out))
}

/// The channel benchmark; `progress` is cleared before the result is printed.
pub fn bench(a: BenchArgs, progress: crate::progress::Steps) -> anyhow::Result<()> {
    // A latency run (one payment in flight) and a throughput run (many).
    let mut runs = vec![];
    let mut modes = vec![Durability::Fsync];
    if !a.fsync_only {
        modes.push(Durability::ProcessCrashOnly);
    }
    for d in modes {
        runs.push(bench_run(a.updates.min(1_000), d, 1, a.window)?);
        runs.push(bench_run(a.updates, d, a.inflight, a.window)?);
    }
    let out = json!({
        "bench": "channel",
        "setup": "two processes (this one: side 0; a child: side 1), Noise-encrypted TCP on 127.0.0.1, one embedded validator; group commit on a persister thread per party, side 0's proposal window as given",
        "runs": runs,
        "snapshot_save": fsync_cost()?,
        "targets": { "updates_per_s": 10_000, "p50_us": 1_000 },
    });
    drop(progress);
    if a.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

/// The demo's channel section: a merchant (dev account 0) and two prosumers
/// (dev accounts 1, 2) on the demo's node. Prosumer 0 buys on a credit note,
/// prosumer 1 on a deposit; each runs its own party over an encrypted
/// loopback link; after the close the merchant bills the credit user.
pub fn demo(url: &str, quiet: bool) -> anyhow::Result<serde_json::Value> {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_node::channel::chainlink::{read_channel, read_msc, ChainLink};
    use std::time::Instant;
    let t0 = Instant::now();
    let dir = tempfile::tempdir()?;
    // Both parties run here: bind their ports now and hand the listeners over.
    let listeners = [bind_loopback()?, bind_loopback()?];
    let terms = ChannelTerms {
        capacity: [Amount(50_000), Amount(20_000)],
        credit: [true, false],
        t_delta_ms: 10_000,
        credit_limit: Amount(100_000),
        merchant_pool: Amount(1_000_000),
        collateral_lock_ms: 60_000,
        billing_period_ms: 30_000,
        retry_ms: 500,
        close_timeout_ms: 3_000,
        addrs: [listeners[0].local_addr()?, listeners[1].local_addr()?],
        controls: [listeners[0].local_addr()?, listeners[1].local_addr()?],
        accept: None,
    };
    let desk = KeyPair::generate(&mut rand::rng());
    let specs = prepare_channel(url, &dev_key(0), &desk, [&dev_key(1), &dev_key(2)], &terms)?;
    let dirs = [dir.path().join("p0"), dir.path().join("p1")];
    for i in 0..2 {
        specs[i].save(&dirs[i])?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let opts = PartyOptions { control: false, ..PartyOptions::default() };
    let trades = rt.block_on(async {
        let [l0, l1] = listeners;
        let on = |peer| gridledger_node::channel::party::Listeners { peer, control: None };
        let (h0, j0) = gridledger_node::channel::party::spawn_party_on(&dirs[0], opts.clone(), on(l0))?;
        let (h1, j1) = gridledger_node::channel::party::spawn_party_on(&dirs[1], opts, on(l1))?;
        anyhow::ensure!(matches!(h0.request(Command::Open).await, Reply::Done { .. }), "open failed");
        let t = Instant::now();
        let mut trades = 0u32;
        // Prosumer 0 buys 3 kWh at 400/kWh in 30 trades; prosumer 1 buys 1 kWh back.
        while trades < 30 {
            match h0.request(Command::Pay { energy: 100, price: 400 }).await {
                Reply::Done { .. } => trades += 1,
                r => {
                    anyhow::ensure!(t.elapsed() < Duration::from_secs(10), "pay: {r:?}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        for _ in 0..5 {
            anyhow::ensure!(
                matches!(h1.request(Command::Pay { energy: 200, price: 300 }).await, Reply::Done { .. }),
                "pay back failed"
            );
            trades += 1;
        }
        anyhow::ensure!(matches!(h1.request(Command::Close).await, Reply::Done { .. }), "close failed");
        j0.await??;
        j1.await??;
        Ok(trades)
    })?;
    let client = gridledger_node::RpcClient::new(url);
    let ch = read_channel(&client, &specs[0].cid)?.context("channel record")?;
    // The merchant recalculates and signs the credit user's debit (Fig 16).
    let msc = read_msc(&client, specs[0].sid)?.context("MSC")?;
    let mlink = ChainLink::connect(url, dev_key(0))?;
    let desk =
        gridledger_node::channel::spec::merchant_desk(mlink.domain(), &dev_key(0), desk, terms.credit_limit, 60_000);
    let mut billed = 0u128;
    for rec in &msc.pending {
        let sign = desk.sign_debit(rec, rand::random())?;
        mlink.call("msc_sign_debit", gridledger_contracts::args(&sign), Amount::ZERO)?;
        billed += rec.debit.0;
    }
    let msc = read_msc(&client, specs[0].sid)?.context("MSC")?;
    let out = json!({
        "trades_off_chain": trades,
        "final_counter": ch.latest.state.counter,
        "final_balances": ch.latest.state.balances,
        "energy_wh": ch.latest.state.energy,
        "billed_to_credit_user": billed.to_string(),
        "credit_ledger_imbalance": msc.ledger.imbalance() as i64,
        "elapsed_s": t0.elapsed().as_secs_f64(),
    });
    if !quiet {
        println!("gridledger demo: credit-note state channel (seed 000)");
        println!("  trades co-signed off chain   {trades} (counter {})", ch.latest.state.counter);
        println!("  final balances (minor units) {:?}", ch.latest.state.balances.map(|a| a.0));
        println!("  energy delivered (Wh)        {:?}", ch.latest.state.energy.map(|e| e.0));
        println!("  debit billed by the merchant {}", crate::units::show(billed));
        println!("  credit ledger imbalance      {}", msc.ledger.imbalance());
        println!("  wall time                    {:.2} s", t0.elapsed().as_secs_f64());
        println!();
    }
    anyhow::ensure!(msc.ledger.imbalance() == 0, "credit ledger does not balance");
    Ok(out)
}

#[cfg(test)]
mod window_defaults {
    use super::*;

    #[test]
    fn default_windows_are_in_block_intervals_with_floors() {
        let min = gridledger_contracts::cns::MIN_T_DELTA_MS;
        // A 1 s chain: 120 blocks of dispute window, 30 of close timeout.
        assert_eq!(channel_windows((None, None), (None, None), 1_000), (120_000, 30_000));
        // A 5 s chain: both scale with the block interval.
        assert_eq!(channel_windows((None, None), (None, None), 5_000), (600_000, 150_000));
        // A fast chain: raised to the floors, never below them.
        let (t, c) = channel_windows((None, None), (None, None), 1);
        assert_eq!((t, c), (120.max(min), MIN_DEFAULT_CLOSE_TIMEOUT_MS));
        assert!(t >= min);
        // Explicit values: blocks scale, ms are taken as given.
        assert_eq!(channel_windows((None, Some(10)), (None, Some(4)), 2_000), (20_000, 8_000));
        assert_eq!(channel_windows((Some(7), Some(10)), (Some(9), None), 2_000), (7, 9));
        // No overflow on absurd flags.
        assert_eq!(channel_windows((None, Some(u64::MAX)), (None, None), 2), (u64::MAX, 5_000));
    }
}
