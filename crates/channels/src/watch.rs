//! The watch service (seed Fig 8/15, §5.1.3) and unilateral close.
//!
//! A watcher follows one channel's events on chain and, when the *other*
//! side raises a dispute (a unilateral close) with a state older than the
//! newest co-signed one in this party's snapshot file, answers inside
//! `t_Δ` with `channel_resolve` carrying the newer state. It also settles a
//! dispute whose window has passed. It reads the snapshot file and never
//! signs anything, so it can run beside the party daemon or in its place
//! while the party is down.

use crate::chainlink::{read_channel, ChainLink, EventCursor};
use crate::disk::load_store;
use crate::machine::ChainEvent;
use crate::party::PartyError;
use crate::spec::PartySpec;
use gridledger_contracts::args;
use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelStateArgs, ChannelStatus, CidArgs};
use gridledger_core::Amount;
use std::path::Path;
use std::time::{Duration, Instant};

/// What a watcher did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchReport {
    /// Disputes seen: (counter on chain, raised by side).
    pub disputes: Vec<(u64, u8)>,
    /// Counters it answered disputes with.
    pub resolved_with: Vec<u64>,
    pub settled: bool,
    /// The channel was closed on chain (at this counter) when it stopped.
    pub closed_at: Option<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Watches the channel of the party in `dir` until it closes or `limit`
/// passes.
pub fn watch(dir: &Path, limit: Duration, poll: Duration) -> Result<WatchReport, PartyError> {
    let spec = PartySpec::load(dir)?;
    let link = ChainLink::connect(&spec.rpc, spec.account()?)?;
    let mut cursor = EventCursor::new(spec.cid, spec.start_height);
    let mut report = WatchReport::default();
    let mut settle_at: Option<u64> = None;
    let start = Instant::now();
    while start.elapsed() < limit {
        for e in cursor.poll(&link.client)? {
            match e {
                ChainEvent::DisputeRaised { counter, by, t_end } => {
                    report.disputes.push((counter, by));
                    settle_at = Some(t_end);
                    if by == spec.side {
                        continue;
                    }
                    let Some(latest) = load_store(dir)?.and_then(|s| s.latest) else { continue };
                    // Events replay from the channel's start: answer only a
                    // dispute still standing on chain with an older state.
                    let on_chain = read_channel(&link.client, &spec.cid)?;
                    let standing = on_chain.is_some_and(|ch| {
                        ch.status == ChannelStatus::Disputed && ch.latest.state.counter < latest.state.counter
                    });
                    if standing && latest.state.counter > counter {
                        let c = latest.state.counter;
                        let h =
                            link.submit("channel_resolve", args(&ChannelStateArgs { state: latest }), Amount::ZERO)?;
                        let o = link.outcome(&h, Duration::from_secs(30))?;
                        if o.success {
                            tracing::info!("answered a stale dispute at {counter} with {c}");
                            report.resolved_with.push(c);
                        } else {
                            tracing::warn!("channel_resolve reverted: {}", o.reason);
                        }
                    }
                }
                ChainEvent::DisputeResolved { .. } => settle_at = None,
                ChainEvent::Closed { counter } => {
                    report.closed_at = Some(counter);
                    return Ok(report);
                }
                ChainEvent::Registered { .. } | ChainEvent::Active | ChainEvent::OnChain(_) => {}
            }
        }
        if let Some(t) = settle_at {
            if now_ms() >= t && !report.settled {
                // The chain's clock decides; a too-early settle reverts.
                let h = link.submit("channel_settle", args(&CidArgs { cid: spec.cid }), Amount::ZERO)?;
                if link.outcome(&h, Duration::from_secs(30))?.success {
                    report.settled = true;
                }
            }
        }
        std::thread::sleep(poll);
    }
    Ok(report)
}

/// Unilateral close with the newest co-signed state in the snapshot file
/// (Fig 8 step 1): raises a dispute; with `settle`, waits out `t_Δ` and
/// settles. Works with the party daemon down: the file alone suffices.
pub fn dispute(dir: &Path, settle: bool, limit: Duration) -> Result<WatchReport, PartyError> {
    let spec = PartySpec::load(dir)?;
    let store = load_store(dir)?.ok_or_else(|| PartyError::Net("no snapshot: nothing co-signed yet".into()))?;
    let latest = store.latest.ok_or_else(|| PartyError::Net("no co-signed state yet".into()))?;
    let link = ChainLink::connect(&spec.rpc, spec.account()?)?;
    link.call("channel_dispute", args(&ChannelDisputeArgs { side: spec.side, state: latest }), Amount::ZERO)?;
    if !settle {
        return Ok(WatchReport::default());
    }
    watch(dir, limit, Duration::from_millis(100))
}

/// The channel's status on chain.
pub fn chain_status(dir: &Path) -> Result<Option<ChannelStatus>, PartyError> {
    let spec = PartySpec::load(dir)?;
    let client = gridledger_node::RpcClient::new(&spec.rpc);
    Ok(read_channel(&client, &spec.cid)?.map(|c| c.status))
}
