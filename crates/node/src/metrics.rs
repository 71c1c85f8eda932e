//! Prometheus text-format metrics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Metrics {
    pub blocks: AtomicU64,
    pub txs_committed: AtomicU64,
    pub txs_accepted: AtomicU64,
    pub txs_rejected: AtomicU64,
    pub txs_dropped: AtomicU64,
    pub gas_used: AtomicU64,
    pub rpc_requests: AtomicU64,
    pub rpc_errors: AtomicU64,
    pub commit_micros_sum: AtomicU64,
    pub height: AtomicU64,
    pub mempool: AtomicU64,
    pub txs_gossiped: AtomicU64,
    pub faults: AtomicU64,
    /// Where a validator's consensus thread spends its time (µs).
    pub pbft_persist_us: AtomicU64,
    pub pbft_validate_us: AtomicU64,
    pub pbft_build_us: AtomicU64,
    pub pbft_commit_us: AtomicU64,
    pub pbft_gossip_us: AtomicU64,
    /// Vote-state writes apart from a block commit (each one fsync).
    pub pbft_vote_writes: AtomicU64,
    /// Proposals re-executed on the validation thread, off the driver's.
    pub pbft_offthread_validations: AtomicU64,
    /// Pipelined heights: proposals made while the previous height was
    /// still in its commit round.
    pub pbft_early_proposals: AtomicU64,
    /// Failed store writes (and certified blocks that could not be applied).
    pub store_faults: AtomicU64,
    /// 1 while the node cannot commit (see `/health`), else 0.
    pub store_unavailable: AtomicU64,
    /// Successful recoveries by reopening the store.
    pub recoveries: AtomicU64,
    /// Catch-up responses served from the store (older than the retained log).
    pub catch_up_from_store: AtomicU64,
    /// Transaction signatures a PBFT validator verified, by path: other
    /// validators' gossip, and proposals (only what it had not verified
    /// yet). Each transaction should be verified once per validator.
    pub pbft_gossip_signatures: AtomicU64,
    pub pbft_validate_signatures: AtomicU64,
    /// Pending transactions gossiped again because a deadline fired with
    /// them still pending (gossip is best effort; see `Driver::fire_timers`).
    pub pbft_regossiped: AtomicU64,
    /// The PBFT replica's current view, and 1 while it is changing views.
    pub pbft_view: AtomicU64,
    pub pbft_view_changing: AtomicU64,
    /// Times gossip verification paused for a proposal validation, and
    /// how long it waited in all (µs).
    pub pbft_gossip_yields: AtomicU64,
    pub pbft_gossip_yield_us: AtomicU64,
}

impl Metrics {
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, u64); 23] = [
            (
                "gridledger_pbft_gossip_yields_total",
                "counter",
                "Times gossip verification paused for a proposal validation",
                self.pbft_gossip_yields.load(Relaxed),
            ),
            ("gridledger_pbft_view", "gauge", "The PBFT replica's current view", self.pbft_view.load(Relaxed)),
            (
                "gridledger_pbft_view_changing",
                "gauge",
                "1 while the PBFT replica is changing views",
                self.pbft_view_changing.load(Relaxed),
            ),
            (
                "gridledger_pbft_regossiped_total",
                "counter",
                "Pending transactions gossiped again when a deadline fired with them pending",
                self.pbft_regossiped.load(Relaxed),
            ),
            (
                "gridledger_pbft_offthread_validations_total",
                "counter",
                "Proposals re-executed on the validation thread",
                self.pbft_offthread_validations.load(Relaxed),
            ),
            (
                "gridledger_pbft_early_proposals_total",
                "counter",
                "Pipelined proposals made while the previous height was still committing",
                self.pbft_early_proposals.load(Relaxed),
            ),
            (
                "gridledger_pbft_vote_writes_total",
                "counter",
                "Vote-state writes (fsync) apart from block commits",
                self.pbft_vote_writes.load(Relaxed),
            ),
            (
                "gridledger_store_faults_total",
                "counter",
                "Failed store writes or certified blocks that could not be applied",
                self.store_faults.load(Relaxed),
            ),
            (
                "gridledger_store_unavailable",
                "gauge",
                "1 while the node cannot commit blocks and refuses transactions",
                self.store_unavailable.load(Relaxed),
            ),
            (
                "gridledger_store_recoveries_total",
                "counter",
                "Recoveries by reopening the store",
                self.recoveries.load(Relaxed),
            ),
            (
                "gridledger_pbft_catch_up_from_store_total",
                "counter",
                "Catch-up responses served from the store",
                self.catch_up_from_store.load(Relaxed),
            ),
            (
                "gridledger_txs_gossiped_total",
                "counter",
                "Transactions admitted from other validators' gossip",
                self.txs_gossiped.load(Relaxed),
            ),
            (
                "gridledger_consensus_faults_total",
                "counter",
                "Byzantine behaviour observed by consensus",
                self.faults.load(Relaxed),
            ),
            (
                "gridledger_blocks_committed_total",
                "counter",
                "Blocks committed by this node",
                self.blocks.load(Relaxed),
            ),
            ("gridledger_txs_committed_total", "counter", "Transactions committed", self.txs_committed.load(Relaxed)),
            (
                "gridledger_txs_accepted_total",
                "counter",
                "Transactions admitted to the mempool",
                self.txs_accepted.load(Relaxed),
            ),
            (
                "gridledger_txs_rejected_total",
                "counter",
                "Submissions refused with an error",
                self.txs_rejected.load(Relaxed),
            ),
            (
                "gridledger_txs_dropped_total",
                "counter",
                "Admitted transactions evicted before inclusion",
                self.txs_dropped.load(Relaxed),
            ),
            ("gridledger_gas_used_total", "counter", "Gas used by committed transactions", self.gas_used.load(Relaxed)),
            ("gridledger_rpc_requests_total", "counter", "JSON-RPC calls served", self.rpc_requests.load(Relaxed)),
            (
                "gridledger_rpc_errors_total",
                "counter",
                "JSON-RPC calls answered with an error",
                self.rpc_errors.load(Relaxed),
            ),
            ("gridledger_height", "gauge", "Height of the last committed block", self.height.load(Relaxed)),
            ("gridledger_mempool_size", "gauge", "Transactions waiting in the mempool", self.mempool.load(Relaxed)),
        ];
        let mut out = String::new();
        for (name, kind, help, v) in rows {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"));
        }
        for (name, help, v) in [
            (
                "gridledger_pbft_persist_seconds_total",
                "Writing vote state before sending (fsync)",
                &self.pbft_persist_us,
            ),
            ("gridledger_pbft_validate_seconds_total", "Re-executing and checking proposals", &self.pbft_validate_us),
            ("gridledger_pbft_build_seconds_total", "Building proposals as leader", &self.pbft_build_us),
            (
                "gridledger_pbft_gossip_yield_seconds_total",
                "Gossip verification waiting for proposal validations",
                &self.pbft_gossip_yield_us,
            ),
            ("gridledger_pbft_commit_seconds_total", "Persisting certified blocks", &self.pbft_commit_us),
            (
                "gridledger_pbft_gossip_seconds_total",
                "Verifying and admitting gossiped transactions",
                &self.pbft_gossip_us,
            ),
        ] {
            let secs = v.load(Relaxed) as f64 / 1e6;
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {secs}\n"));
        }
        let name = "gridledger_pbft_signatures_verified_total";
        out.push_str(&format!(
            "# HELP {name} Transaction signatures verified by the PBFT validator, by path\n# TYPE {name} counter\n"
        ));
        for (path, v) in [("gossip", &self.pbft_gossip_signatures), ("proposal", &self.pbft_validate_signatures)] {
            out.push_str(&format!("{name}{{path=\"{path}\"}} {}\n", v.load(Relaxed)));
        }
        let secs = self.commit_micros_sum.load(Relaxed) as f64 / 1e6;
        out.push_str(&format!(
            "# HELP gridledger_block_commit_seconds Time to build, execute and persist a block\n# TYPE gridledger_block_commit_seconds summary\ngridledger_block_commit_seconds_sum {secs}\ngridledger_block_commit_seconds_count {}\n",
            self.blocks.load(Relaxed)
        ));
        out
    }
}
