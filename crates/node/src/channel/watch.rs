//! The watch service (seed Fig 8/15, §5.1.3) and unilateral close.
//!
//! A watcher follows one channel's events on chain and, when the *other*
//! side raises a dispute (a unilateral close) with a state older than the
//! newest co-signed one in this party's snapshot file, answers inside
//! `t_Δ` with `channel_resolve` carrying the newer state. It also settles a
//! dispute whose window has passed. It reads the snapshot file and never
//! signs anything, so it can run beside the party daemon or in its place
//! while the party is down.

use super::alert::{Alert, AlertSink, FailureCount, NoAlerts};
use super::chainlink::{read_channel, ChainLink, EventCursor};
use super::party::PartyError;
use super::spec::PartySpec;
use gridledger_channels::disk::load_store;
use gridledger_channels::machine::ChainEvent;
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

/// Longest pause between retries after an RPC error (ms).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the watcher still has to get onto the chain.
#[derive(Default)]
struct Duties {
    /// A dispute by the peer may need answering.
    resolve: bool,
    /// Dispute deadline: settle once it passed.
    settle_at: Option<u64>,
    /// Alert bookkeeping of the standing dispute: when it alerts that the
    /// deadline is near (half of what was left when first seen), and
    /// whether it did.
    deadline_alert_at: Option<u64>,
    resolve_failures: FailureCount,
    settle_failures: FailureCount,
}

/// What a watch service needs to know about a channel: no secret of the
/// party. Anyone may send `channel_resolve` and `channel_settle` (the
/// co-signed state carries its own authority), so an outsourced watcher
/// pays gas from its own account and reads only the party's signed states.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchSpec {
    /// The side whose states it defends.
    pub side: u8,
    pub cid: gridledger_core::Hash32,
    pub rpc: String,
    pub start_height: u64,
}

impl From<&PartySpec> for WatchSpec {
    fn from(s: &PartySpec) -> Self {
        Self { side: s.side, cid: s.cid, rpc: s.rpc.clone(), start_height: s.start_height }
    }
}

/// Watches the channel of the party in `dir` until it closes or `limit`
/// passes, sending from the party's own account. See [`watch_with`].
pub fn watch(dir: &Path, limit: Duration, poll: Duration) -> Result<WatchReport, PartyError> {
    let spec = PartySpec::load(dir)?;
    watch_with(&WatchSpec::from(&spec), spec.account()?, dir, limit, poll)
}

/// Watches a channel with `account` paying for transactions and the
/// newest signed state read from the store files in `states` (the party's
/// directory, or wherever the party ships its store log). RPC errors (a
/// node restarting, a dropped connection) never end the watch: they are
/// logged as errors and retried with back-off, and a resolve or settle that
/// did not land is sent again until the chain shows the outcome.
pub fn watch_with(
    spec: &WatchSpec,
    account: gridledger_core::KeyPair,
    states: &Path,
    limit: Duration,
    poll: Duration,
) -> Result<WatchReport, PartyError> {
    watch_alerting(spec, account, states, limit, poll, &NoAlerts)
}

/// [`watch_with`], telling `alerts` (see [`super::alert`]) of a dispute
/// raised against the watched side, a resolve or settle that keeps failing,
/// a node that keeps failing to answer, and a dispute deadline near with
/// no answer landed.
pub fn watch_alerting(
    spec: &WatchSpec,
    account: gridledger_core::KeyPair,
    states: &Path,
    limit: Duration,
    poll: Duration,
    alerts: &dyn AlertSink,
) -> Result<WatchReport, PartyError> {
    let dir = states;
    let mut unreachable = FailureCount::default();
    let mut link: Option<ChainLink> = None;
    let mut cursor = EventCursor::new(spec.cid, spec.start_height);
    let mut report = WatchReport::default();
    let mut duties = Duties::default();
    let start = Instant::now();
    let mut backoff = poll;
    while start.elapsed() < limit {
        let round = (|| -> Result<bool, PartyError> {
            if link.is_none() {
                link = Some(ChainLink::connect(&spec.rpc, account.clone())?);
            }
            let Some(l) = link.as_ref() else { return Ok(false) };
            watch_round(dir, spec, l, &mut cursor, &mut report, &mut duties, alerts)
        })();
        match round {
            Ok(true) => return Ok(report),
            Ok(false) => {
                backoff = poll;
                unreachable.succeeded();
            }
            Err(e) => {
                tracing::error!("watch: {e}; retrying in {backoff:?}");
                if matches!(e, PartyError::Chain(_)) {
                    link = None;
                }
                if let Some(attempts) = unreachable.failed() {
                    alerts.alert(&Alert::NodeUnreachable {
                        cid: spec.cid,
                        rpc: spec.rpc.clone(),
                        attempts,
                        last_error: e.to_string(),
                    });
                }
                // A resolve or settle due while the node is down is failing
                // too: counted so its own alert comes.
                if duties.resolve {
                    if let Some(attempts) = duties.resolve_failures.failed() {
                        alerts.alert(&Alert::ResolveFailing { cid: spec.cid, attempts, last_error: e.to_string() });
                    }
                } else if duties.settle_at.is_some_and(|t| now_ms() >= t) && !report.settled {
                    if let Some(attempts) = duties.settle_failures.failed() {
                        alerts.alert(&Alert::SettleFailing { cid: spec.cid, attempts, last_error: e.to_string() });
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        std::thread::sleep(backoff);
    }
    Ok(report)
}

/// One poll: new events, then whatever duty is still open. True once the
/// channel is closed.
fn watch_round(
    dir: &Path,
    spec: &WatchSpec,
    link: &ChainLink,
    cursor: &mut EventCursor,
    report: &mut WatchReport,
    duties: &mut Duties,
    alerts: &dyn AlertSink,
) -> Result<bool, PartyError> {
    // Events replay from the channel's start: a dispute is alerted only if
    // it still stands after this batch (no later resolve or close).
    let mut raised = None;
    for e in cursor.poll(&link.client)? {
        match e {
            ChainEvent::DisputeRaised { counter, by, t_end } => {
                report.disputes.push((counter, by));
                *duties = Duties { settle_at: Some(t_end), resolve: by != spec.side, ..Duties::default() };
                raised = (by != spec.side).then_some((counter, by, t_end));
            }
            ChainEvent::DisputeResolved { .. } => {
                *duties = Duties::default();
                raised = None;
            }
            ChainEvent::Closed { counter } => {
                report.closed_at = Some(counter);
                return Ok(true);
            }
            ChainEvent::Registered { .. }
            | ChainEvent::Active
            | ChainEvent::OnChain(_)
            | ChainEvent::Updated { .. }
            | ChainEvent::ToppedUp { .. }
            | ChainEvent::Funded { .. }
            | ChainEvent::WithdrawalPaid { .. } => {}
        }
    }
    if let Some((counter, by, t_end_ms)) = raised {
        alerts.alert(&Alert::DisputeAgainstUs { cid: spec.cid, counter, by, t_end_ms: Some(t_end_ms) });
        let now = now_ms();
        duties.deadline_alert_at = Some(now.saturating_add(t_end_ms.saturating_sub(now) / 2));
    }
    if duties.resolve {
        if let (Some(at), Some(t_end_ms)) = (duties.deadline_alert_at, duties.settle_at) {
            let now = now_ms();
            if now >= at {
                alerts.alert(&Alert::DeadlineNear { cid: spec.cid, t_end_ms, left_ms: t_end_ms.saturating_sub(now) });
                duties.deadline_alert_at = None;
            }
        }
    }
    if duties.resolve {
        // Events replay from the channel's start: answer only a dispute
        // still standing on chain with an older state than ours.
        let latest = load_store(dir)?.and_then(|s| s.latest);
        let on_chain = read_channel(&link.client, &spec.cid)?;
        match (latest, on_chain) {
            (Some(latest), Some(ch)) if ch.status == ChannelStatus::Disputed => {
                if ch.latest.state.counter < latest.state.counter {
                    let c = latest.state.counter;
                    let h = link.submit("channel_resolve", args(&ChannelStateArgs { state: latest }), Amount::ZERO)?;
                    // Waits at most half the time left to `t_end` (at least
                    // a block, at most 30 s): a resolve that did not land is
                    // sent again while there is still time.
                    let left = ch.t_end.saturating_sub(now_ms());
                    let wait = Duration::from_millis((left / 2).clamp(1_000, 30_000));
                    let o = match link.outcome(&h, wait) {
                        Ok(o) => o,
                        Err(e) => {
                            tracing::warn!("channel_resolve not committed within {wait:?} ({e}); sending it again");
                            if let Some(attempts) = duties.resolve_failures.failed() {
                                let last_error = format!("not committed within {wait:?}: {e}");
                                alerts.alert(&Alert::ResolveFailing { cid: spec.cid, attempts, last_error });
                            }
                            return Ok(false);
                        }
                    };
                    if o.success {
                        tracing::info!("answered a stale dispute at {} with {c}", ch.latest.state.counter);
                        report.resolved_with.push(c);
                        duties.resolve = false;
                        duties.resolve_failures.succeeded();
                    } else {
                        tracing::error!("channel_resolve reverted (will retry): {}", o.reason);
                        if let Some(attempts) = duties.resolve_failures.failed() {
                            let last_error = format!("reverted: {}", o.reason);
                            alerts.alert(&Alert::ResolveFailing { cid: spec.cid, attempts, last_error });
                        }
                    }
                } else {
                    duties.resolve = false;
                }
            }
            _ => duties.resolve = false,
        }
    }
    if let Some(t) = duties.settle_at {
        if now_ms() >= t && !report.settled {
            // The chain's clock decides; a too-early settle reverts and is
            // sent again next round.
            let h = link.submit("channel_settle", args(&CidArgs { cid: spec.cid }), Amount::ZERO)?;
            let o = match link.outcome(&h, Duration::from_secs(10)) {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!("channel_settle not committed yet ({e}); sending it again");
                    if let Some(attempts) = duties.settle_failures.failed() {
                        let last_error = format!("not committed: {e}");
                        alerts.alert(&Alert::SettleFailing { cid: spec.cid, attempts, last_error });
                    }
                    return Ok(false);
                }
            };
            if o.success {
                report.settled = true;
            } else {
                tracing::warn!("channel_settle reverted (will retry): {}", o.reason);
                if let Some(attempts) = duties.settle_failures.failed() {
                    let last_error = format!("reverted: {}", o.reason);
                    alerts.alert(&Alert::SettleFailing { cid: spec.cid, attempts, last_error });
                }
            }
        }
    }
    Ok(false)
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

/// `channel_abort` from this party's account (seed Fig 6 'open-abort'):
/// for a channel still `Funding` (the peer never funded), refunds what was
/// funded. The contract refuses it once the channel is open.
pub fn abort(dir: &Path) -> Result<super::chainlink::CallOutcome, PartyError> {
    let spec = PartySpec::load(dir)?;
    let link = ChainLink::connect(&spec.rpc, spec.account()?)?;
    Ok(link.call("channel_abort", args(&CidArgs { cid: spec.cid }), Amount::ZERO)?)
}

/// The channel's status on chain.
pub fn chain_status(dir: &Path) -> Result<Option<ChannelStatus>, PartyError> {
    let spec = PartySpec::load(dir)?;
    let client = crate::RpcClient::new(&spec.rpc);
    Ok(read_channel(&client, &spec.cid)?.map(|c| c.status))
}
