//! An in-process driver: a primary and a secondary [`DevChain`], the
//! executor, validator and smart-meter roles, and the loop of thesis §3.4
//! Steps 1–5. It learns of batches through the primary contract's
//! `ior_new_data` / `ior_tcrs_recorded` events and views, feeds them to the
//! roles, submits what they return and settles each batch. A demo driver
//! runs a day of trading by calling [`DualChain::submit`] per trading slot
//! (advancing [`DualChain::set_time`]) and [`DualChain::process`].

use std::collections::{BTreeMap, BTreeSet};

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Hash32, Timestamp};
use gridledger_ledger::devnet::{call, dev_key, DevChain};
use gridledger_ledger::{ChainClient, ChainError, ClientError, Receipt, SubmitError, TxStatus};
use rand::Rng;

use crate::exec::PreState;
use crate::primary::{
    entry_gas, BatchData, BatchHeader, BatchId, BatchInput, BatchState, Controversial, FinalizeArgs, PrimaryConfig,
    RegisterMeter, RegisterNode, SubmitTcrs, WithdrawArgs, MAX_BATCH_GAS, MAX_SENDER_GAS, RESERVED_GAS,
};
use crate::roles::{Call, Executor, ExecutorBehaviour, Fault, SmartMeter, Step, Target, Validator, ValidatorBehaviour};
use crate::state::QueueItem;
use crate::types::{
    commit_entries, entry_hash, meter_cert_digest, node_cert_digest, tcr_root, AgreementKey, Entry, IorParams, IorTx,
    MeterRecord, NodeRole, Outcome, Participant, PostedLeaf,
};
use crate::{args, primary_registry, secondary_registry, IOR_PRIMARY_ID, IOR_SECONDARY_ID};

/// Gas limit of the driver's transactions (a dispute re-executes a batch).
pub const DRIVER_GAS_LIMIT: u64 = 100_000_000;

/// Gas limit of the `SC_DS_*` and `fund` calls that [`DualChain::submit_block`]
/// and [`DualChain::fund_many`] pack into one block. A block admits a
/// transaction only while the *limits* fit the block gas limit (300 M by
/// default), so a 300-transaction batch (§3.5.1) needs limits of at most
/// 1 M; recording one AT/ST uses a fraction of it.
pub const RECORD_GAS_LIMIT: u64 = 1_000_000;

/// Splits `txs` into the blocks `SC_DS_*` records whole, in order: each at
/// most `max_batch` entries, the share of [`MAX_BATCH_GAS`] ATs and STs may
/// fill (all of it but [`RESERVED_GAS`], by each entry's [`entry_gas`]),
/// and per sender at most `max_entries_per_sender` entries and
/// [`MAX_SENDER_GAS`]. (300 half-hour STs weigh more than a batch takes:
/// about 238 of them record per block; a seller with 40 sales in a slot
/// sends its STs over two blocks.) `now` is the block time the entries
/// record at. The one packing of the benchmark ([`crate::bench`]) and of
/// the day's driver ([`DualChain::record_packed`]).
pub fn record_blocks<'a>(
    params: &IorParams,
    now: Timestamp,
    txs: &'a [(KeyPair, IorTx)],
) -> Vec<&'a [(KeyPair, IorTx)]> {
    let limit = MAX_BATCH_GAS - RESERVED_GAS;
    let mut out = Vec::new();
    let (mut start, mut gas) = (0, 0u64);
    let mut senders: BTreeMap<Address, (u32, u64)> = BTreeMap::new();
    for (i, (key, tx)) in txs.iter().enumerate() {
        let sender = key.address();
        let g = entry_gas(&Entry { sender, recorded_at: now, tx: tx.clone() }, params.meter_step_s);
        let (sent, sent_gas) = senders.get(&sender).copied().unwrap_or((0, 0));
        let full = i - start >= params.max_batch as usize
            || gas.saturating_add(g) > limit
            || sent >= params.max_entries_per_sender
            || sent_gas.saturating_add(g) > MAX_SENDER_GAS;
        if full && i > start {
            out.push(&txs[start..i]);
            (start, gas) = (i, 0);
            senders.clear();
        }
        gas = gas.saturating_add(g);
        let e = senders.entry(sender).or_default();
        *e = (e.0 + 1, e.1.saturating_add(g));
    }
    if start < txs.len() {
        out.push(&txs[start..]);
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("view failed: {0}")]
    View(String),
    #[error("setup call {method} reverted: {reason}")]
    Setup { method: String, reason: String },
    #[error("no role holds the key of {0}")]
    UnknownNode(Address),
    #[error("batch {0} did not settle")]
    Stuck(u64),
    #[error("a submitted {0} transaction was not included in the next block")]
    NotIncluded(&'static str),
    /// [`DualChain::record_packed`]: `SC_DS_*` refused an entry at
    /// recording (it never reaches execution, so it never settles).
    #[error("{method} of {sender} was refused at recording: {reason}")]
    Refused { method: &'static str, sender: Address, reason: String },
    /// The entries read from a batch's block do not match its count or
    /// rolling commitment (a chain serving other block data than it
    /// recorded, or a block not yet available).
    #[error("batch {batch}: block {height} does not hold its recorded data ({reason})")]
    BatchData { batch: u64, height: u64, reason: String },
    /// [`DualChain::attach`]: the chain's IOR contracts were initialised
    /// with another configuration.
    #[error("configuration mismatch: {0}")]
    Mismatch(String),
    /// A run's sizes refused before any chain is touched
    /// ([`DriverConfig::accounts`]).
    #[error("driver configuration: {0}")]
    Config(String),
    /// [`Mode::ConventionalOr`]: the guard could not get the checks of a
    /// due posting on chain (each refused at submission, also at a higher
    /// gas price) and the posting still stands: the driver moves no clock
    /// past it, and the next [`DualChain::process`] checks it again
    /// (attack r25).
    #[error("batch {batch}: the checks of its standing posting could not be sent: {reason}")]
    Unchecked { batch: u64, reason: String },
}

/// The leaves where two JSON values differ, as `path: was, now` (objects
/// compared key by key).
fn json_diff(path: &str, was: &serde_json::Value, now: &serde_json::Value) -> Vec<String> {
    match (was.as_object(), now.as_object()) {
        (Some(a), Some(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    let null = serde_json::Value::Null;
                    json_diff(&p, a.get(k).unwrap_or(&null), b.get(k).unwrap_or(&null))
                })
                .collect()
        }
        _ if was == now => vec![],
        _ => vec![format!("{path}: {was} then, {now} now")],
    }
}

/// The entries of a batch, read back from the block that recorded them
/// (thesis Fig 3-7: the primary chain keeps only a rolling commitment; the
/// data is available as block data): every successful `SC_DS_*` call to
/// the IOR contract in block `h.height`, in block order, with its sender
/// and the block time. Checked against the batch's count and commitment.
pub fn batch_entries<C: ChainClient>(c: &C, h: &BatchHeader) -> Result<Vec<Entry>, DriverError> {
    let bad = |reason: String| DriverError::BatchData { batch: h.id, height: h.height, reason };
    let block = c.block(h.height)?.ok_or_else(|| bad("no such block".into()))?;
    let mut out = Vec::with_capacity(h.len());
    for stx in &block.txs {
        let gridledger_ledger::TxKind::Call { contract, method, args, .. } = &stx.tx.kind else { continue };
        if *contract != IOR_PRIMARY_ID {
            continue;
        }
        let decoded = match method.as_str() {
            "sc_ds_at" => gridledger_ledger::decode_args(args).map(IorTx::At),
            "sc_ds_at_reopen" => {
                gridledger_ledger::decode_args::<crate::primary::ReopenAt>(args).map(|a| IorTx::At(a.at))
            }
            "sc_ds_st" => gridledger_ledger::decode_args(args).map(IorTx::St),
            "sc_ds_st_reach" => gridledger_ledger::decode_args(args).map(|(s, r)| IorTx::StReach(s, r)),
            "sc_ds_ob" => gridledger_ledger::decode_args(args).map(IorTx::Opinion),
            "sc_ds_expire" => gridledger_ledger::decode_args(args).map(IorTx::Expire),
            _ => continue,
        };
        // A call that did not decode reverted and recorded nothing.
        let Ok(tx) = decoded else { continue };
        let ok = c.receipt(&stx.tx.hash())?.is_some_and(|r| r.status == TxStatus::Success);
        if ok {
            out.push(Entry { sender: stx.tx.sender.address(), recorded_at: block.header.timestamp, tx });
        }
    }
    if out.len() != h.len() {
        return Err(bad(format!("{} recorded entries, the batch counts {}", out.len(), h.len())));
    }
    if commit_entries(&out) != h.commitment {
        return Err(bad("commitment mismatch".into()));
    }
    Ok(out)
}

/// The TCR leaves the executor posted for a batch, read back from the
/// block data of its successful `sc_cr` call (the chain keeps only their
/// root) and checked against [`BatchHeader::tcr_root`]. `Ok(None)` while no
/// root is posted.
pub fn batch_leaves<C: ChainClient>(
    c: &C,
    h: &BatchHeader,
    domain: &crate::types::SigDomain,
    entries: &[Entry],
) -> Result<Option<Vec<PostedLeaf>>, DriverError> {
    let (Some(root), Some(height)) = (h.tcr_root, h.tcr_height) else { return Ok(None) };
    let bad = |reason: String| DriverError::BatchData { batch: h.id, height, reason };
    let block = c.block(height)?.ok_or_else(|| bad("no such block".into()))?;
    let hashes: Vec<_> = entries.iter().map(entry_hash).collect();
    for stx in &block.txs {
        let gridledger_ledger::TxKind::Call { contract, method, args, .. } = &stx.tx.kind else { continue };
        if *contract != IOR_PRIMARY_ID {
            continue;
        }
        // `sc_cr`, or the baseline's `sc_cr_on` (a claimed pre-root with it).
        let decoded = match method.as_str() {
            "sc_cr" => gridledger_ledger::decode_args::<SubmitTcrs>(args).ok(),
            "sc_cr_on" => gridledger_ledger::decode_args::<crate::primary::SubmitTcrsOn>(args).ok().map(|a| a.tcrs),
            _ => None,
        };
        let Some(a) = decoded else { continue };
        if a.batch != h.id || !c.receipt(&stx.tx.hash())?.is_some_and(|r| r.status == TxStatus::Success) {
            continue;
        }
        // The posting whose leaves hash to the standing root: a void
        // posting ahead and its replacement may share a block (attack r16
        // [5]), and the replacement is the one that stands.
        if tcr_root(domain, h.id, &hashes, &a.leaves) != root {
            if crate::mutants::active(crate::mutants::Mutation::ReaderTakesFirstPosting) {
                return Err(bad("posted leaves do not hash to the TCR root".into()));
            }
            continue;
        }
        return Ok(Some(a.leaves));
    }
    Err(bad("no sc_cr call in the block posted leaves that hash to the TCR root".into()))
}

/// One posting of a batch's TCRs as the baseline's watcher tells postings
/// apart: (batch, TCR root, posting block, poster, post-state root). A void
/// posting and its replacement differ in the posting block (or, in one
/// block, the watcher only ever sees the standing one), so a replacement
/// with the same leaves is checked again inside its own window (attack
/// r17 [1]: keyed by (batch, TCR root) it counted as checked).
pub type PostingId = (u64, Hash32, u64, Option<Address>, Option<Hash32>);

/// `h`'s standing posting ([`PostingId`]), if it has one.
fn posting_id(h: &BatchHeader) -> Option<PostingId> {
    Some((h.id, h.tcr_root?, h.tcr_height.unwrap_or(0), h.posted_by, h.post_root))
}

/// Reads the IOR data of a primary chain through any [`ChainClient`]:
/// headers, the bridge queue, posted leaves, and the settled state
/// reconstructed from chain data alone ([`Self::settled_state`]).
pub struct PrimaryReader<'a, C: ChainClient> {
    pub c: &'a C,
    pub params: &'a IorParams,
}

impl<C: ChainClient> PrimaryReader<'_, C> {
    pub fn view_json(&self, method: &str, a: Vec<u8>) -> Result<serde_json::Value, DriverError> {
        self.c.view(IOR_PRIMARY_ID, method, &a).map_err(|e| DriverError::View(e.to_string()))
    }

    /// Bridge queue items `from..to` ([`crate::state::QueueItem`]).
    pub fn queue(&self, from: u64, to: u64) -> Result<Vec<QueueItem>, DriverError> {
        if to <= from {
            return Ok(vec![]);
        }
        self.view_borsh("queue", args(&(from, to)))
    }

    /// The queue items batch `h` applies.
    pub fn batch_queue(&self, h: &BatchHeader) -> Result<Vec<QueueItem>, DriverError> {
        let from = match h.id.checked_sub(1) {
            Some(b) => self.batch_header(b)?.queue_to,
            None => 0,
        };
        self.queue(from, h.queue_to)
    }

    /// The state after settled batch `b`, from the state before it.
    pub fn replay(&self, before: &PreState, b: u64) -> Result<PreState, DriverError> {
        let h = self.batch_header(b)?;
        let entries = batch_entries(self.c, &h)?;
        let bad = |reason: String| DriverError::BatchData { batch: b, height: h.height, reason };
        let mut full = before.clone();
        crate::state::apply_queue(&mut full, self.params, &self.batch_queue(&h)?)
            .map_err(|e| bad(format!("queue does not apply: {e}")))?;
        // The settled root is canonical: the state is what the posted (or
        // the chain's) effects leave, or, where those do not reach that
        // root (a wrong leaf nobody disputed under an honest root), what
        // re-executing the entries leaves.
        let tcrs = self.settled_tcrs_of(&h, &entries)?;
        if let Ok((post, _)) = crate::state::post_state(self.params, &full, &entries, &tcrs) {
            if Some(crate::state::state_root(&post)) == h.post_root {
                return Ok(post);
            }
        }
        let v: BatchInput = self.view_borsh("batch_input", args(&BatchData { batch: b, entries: entries.clone() }))?;
        full.meters = v.prestate.meters;
        let (_, mut post) = crate::exec::execute_and_apply(&mut crate::exec::OffChain, self.params, &full, &entries)
            .map_err(|e| bad(format!("entries do not execute: {e}")))?;
        post.meters.clear();
        post.closed_in_batch.clear();
        post.penalised_in_batch.clear();
        if Some(crate::state::state_root(&post)) != h.post_root {
            return Err(bad("neither the posted effects nor re-execution reach the settled root".into()));
        }
        Ok(post)
    }

    pub fn view_borsh<T: borsh::BorshDeserialize>(&self, method: &str, a: Vec<u8>) -> Result<T, DriverError> {
        let v = self.view_json(method, a)?;
        let hexs = v["borsh"].as_str().ok_or_else(|| DriverError::View("no borsh field".into()))?;
        let raw = hex::decode(hexs).map_err(|e| DriverError::View(e.to_string()))?;
        borsh::from_slice(&raw).map_err(|e| DriverError::View(e.to_string()))
    }

    /// A batch's header.
    pub fn batch_header(&self, batch: u64) -> Result<BatchHeader, DriverError> {
        self.view_borsh("batch_header", args(&BatchId { batch }))
    }

    /// The mark `SC_DS_AT` keeps for an agreement key: the seller digest
    /// of the terms that marked it and the batch that recorded them.
    /// The mark of agreement key `k`: the seller digest of the terms that
    /// marked it, the batch that recorded them and the end of their
    /// delivery period.
    pub fn agreement_mark(&self, k: &AgreementKey) -> Result<Option<(Hash32, u64, Timestamp)>, DriverError> {
        self.view_borsh("agreement_mark", args(k))
    }

    pub fn progress(&self) -> Result<(u64, u64), DriverError> {
        let v = self.view_json("progress", vec![])?;
        Ok((v["next_batch"].as_u64().unwrap_or(0), v["next_to_settle"].as_u64().unwrap_or(0)))
    }

    /// [`Self::settled_tcrs`] of a header and its entries: the chain's
    /// stored verdicts for a batch it executed, else the posted leaves.
    pub fn settled_tcrs_of(&self, h: &BatchHeader, entries: &[Entry]) -> Result<Vec<crate::types::Tcr>, DriverError> {
        let v: BatchInput =
            self.view_borsh("batch_input", args(&BatchData { batch: h.id, entries: entries.to_vec() }))?;
        if let Some(t) = v.tcrs {
            return Ok(t);
        }
        let leaves = batch_leaves(self.c, h, &self.params.domain, entries)?.unwrap_or_default();
        Ok(leaves.into_iter().map(|l| l.tcr).collect())
    }

    /// `who`'s account as the next batch will see it: its record in the
    /// `settled` state with the queued `fund`s and `withdraw`s that no
    /// settled batch applied yet.
    pub fn account(&self, settled: &PreState, who: &Address) -> Result<Participant, DriverError> {
        let mut s = settled.clone();
        let (_, fin) = self.progress()?;
        let from = match fin.checked_sub(1) {
            Some(b) => self.batch_header(b)?.queue_to,
            None => 0,
        };
        let items = self.queue(from, u64::MAX)?;
        crate::state::apply_queue(&mut s, self.params, &items)
            .map_err(|e| DriverError::View(format!("queue does not apply: {e}")))?;
        Ok(s.participant(self.params, who))
    }

    /// The settled state rebuilt from the empty state by replaying every
    /// settled batch ([`crate::state`] module docs).
    pub fn settled_state(&self) -> Result<PreState, DriverError> {
        let (_, fin) = self.progress()?;
        let mut s = PreState::default();
        for b in 0..fin {
            s = self.replay(&s, b)?;
        }
        Ok(s)
    }
}

/// The IOR configuration a primary chain was initialised with.
pub fn primary_config<C: ChainClient>(c: &C) -> Result<PrimaryConfig, DriverError> {
    let v = c.view(IOR_PRIMARY_ID, "config_borsh", &[]).map_err(|e| DriverError::View(e.to_string()))?;
    let hexs = v["borsh"].as_str().ok_or_else(|| DriverError::View("no borsh field".into()))?;
    let raw = hex::decode(hexs).map_err(|e| DriverError::View(e.to_string()))?;
    borsh::from_slice(&raw).map_err(|e| DriverError::View(e.to_string()))
}

/// IOR, or the conventional optimistic rollup baseline (same contracts, a
/// long challenge window).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Ior,
    ConventionalOr,
}

/// A week, the conventional OR challenge window (§3.1).
pub const WEEK_MS: u64 = 7 * 24 * 3600 * 1000;

/// [`Mode::ConventionalOr`]: a bound on the blocks (a second each) that
/// [`DualChain::process`] makes per recorded batch between two runs of
/// its guard against moving the clock past an unwatched posting (posting,
/// watching, disputing, the backup checks). The guard watches the batch
/// being settled before its turn once its window would end within this
/// many seconds per batch recorded after it, plus one, of now (attack r22
/// [1]); a normal window (a week) has far more left, and the batch is
/// checked at its assigned validator's turn as before.
pub const GUARD_BLOCKS_PER_BATCH: u64 = 16;

#[derive(Clone, Debug)]
pub struct DriverConfig {
    pub params: IorParams,
    pub mode: Mode,
    /// Dispute window for [`Mode::Ior`] (ms).
    pub ior_window_ms: u64,
    pub node_deposit: Amount,
    pub bonus_permille: u32,
    /// Traders: development keys `0..participants`.
    pub participants: usize,
    pub executors: usize,
    pub validators: usize,
    /// Wallet balance of every development account.
    pub wallet: Amount,
    /// Validators each smart meter delegates to on a disagreement.
    pub delegates: usize,
    /// Bond of a challenger that is not a validator (a trader whose meter
    /// saw a wrong TCR that no delegate overturned).
    pub challenge_bond: Amount,
    /// `f`, paid to each delegated validator after the batch settles.
    pub delegation_fee: Amount,
}

/// Most executors a run may have ([`DriverConfig::executors`]): each is a
/// development account in both chains' genesis and registers as a node
/// with its own transaction, so the count bounds the work of opening a
/// run (issue 11, attack r9 [4]: a community file's node count was taken
/// unchecked; the thesis' case study has one or two).
pub const MAX_EXECUTORS: usize = 64;

/// Most validators a run may have ([`DriverConfig::validators`]), for the
/// same reason as [`MAX_EXECUTORS`] (the case study has three).
pub const MAX_VALIDATORS: usize = 64;

impl DriverConfig {
    /// The development accounts the run needs (traders, executors and
    /// validators, [`dev_key`] `0..accounts`), or why the node counts are
    /// refused: above [`MAX_EXECUTORS`] or [`MAX_VALIDATORS`], or a sum
    /// that does not fit.
    pub fn accounts(&self) -> Result<usize, DriverError> {
        if self.executors > MAX_EXECUTORS || self.validators > MAX_VALIDATORS {
            return Err(DriverError::Config(format!(
                "{} executors and {} validators: at most {MAX_EXECUTORS} and {MAX_VALIDATORS}",
                self.executors, self.validators
            )));
        }
        self.participants
            .checked_add(self.executors + self.validators)
            .ok_or_else(|| DriverError::Config(format!("{} participants is too many", self.participants)))
    }

    pub fn window_ms(&self) -> u64 {
        match self.mode {
            Mode::Ior => self.ior_window_ms,
            Mode::ConventionalOr => WEEK_MS,
        }
    }
}

/// Gas of one call, from its receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GasRecord {
    pub target: Target,
    pub method: String,
    pub gas: u64,
    pub success: bool,
}

/// A settled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettledBatch {
    pub batch: u64,
    pub outcomes: Vec<Outcome>,
    pub disputed: bool,
    /// From the first entry's recording to settlement (block time, ms).
    pub latency_ms: u64,
}

/// The two chains are any [`ChainClient`]s: single-validator development
/// chains by default, or e.g. a PBFT network for the primary chain.
pub struct DualChain<P: ChainClient = DevChain, S: ChainClient = DevChain> {
    pub cfg: DriverConfig,
    pub primary: P,
    pub secondary: S,
    pub authority: KeyPair,
    pub executors: Vec<(KeyPair, Executor)>,
    pub validators: Vec<(KeyPair, Validator)>,
    pub meters: BTreeMap<Address, SmartMeter>,
    pub gas: Vec<GasRecord>,
    pub faults: Vec<Fault>,
    pub settled: Vec<SettledBatch>,
    /// STs whose participants dispute their TCR, by agreement key: for each, [`Self::process`] selects one delegated validator
    /// at random to validate that ST (§3.5.3, Tables 3-4 to 3-6).
    pub participant_disputes: BTreeSet<AgreementKey>,
    /// Participant disputes handled so far.
    pub disputes_handled: u64,
    /// [`Mode::Ior`]: the window end of the posting the assigned validator
    /// is checking, while its check is not on chain (attack r27 [2]).
    check_due: Option<(u64, Timestamp)>,
    /// The gas price the check's last call was included at.
    check_price: Amount,
    /// Blocks the check running now sealed at or past its window's end
    /// while the contract held the window open ([`Self::seal_block_before`]).
    held_blocks: u64,
    /// [`Mode::Ior`]: the postings whose checks are on chain (the
    /// assigned validator's, then the smart meters', their delegates' and
    /// the bonded challenge's: [`Self::backup_checks`]), as the baseline
    /// keeps [`Self::watched`] and [`Self::backed`]. While the standing
    /// posting is not in it, every block the driver seals goes one at a
    /// time and none at or past the posting's check deadline
    /// ([`Self::unchecked_due`], attack r27 [2]).
    checked: BTreeSet<PostingId>,
    /// Traders' keys (development keys `0..participants`), for the bonded
    /// challenges their meters raise.
    pub traders: BTreeMap<Address, KeyPair>,
    /// Bonded challenges sent by traders.
    pub bonded_challenges: u64,
    /// Held rewards ([`crate::primary::commit_dispute`]) this driver's
    /// validators tried to claim, by batch ([`HeldClaim`]), so a claim
    /// refused for good is not re-sent at every step and one refused for
    /// an earlier commitment's priority is retried with back-off.
    held_claims: BTreeMap<u64, HeldClaim>,
    /// [`Mode::ConventionalOr`]: the postings ahead the watcher has
    /// checked ([`Self::post_ahead`], [`PostingId`]): each posting, whoever
    /// sent it and whenever, is checked once, inside its window; a
    /// replacement is another posting, also one with the same leaves.
    /// Marked once the watcher has nothing to send or its dispute is on
    /// chain, never when the check is planned ([`Self::guard_passes`],
    /// attack r25).
    watched: BTreeSet<PostingId>,
    /// [`Mode::ConventionalOr`]: the postings the smart meters, their
    /// delegated validators and the bonded challenge have checked
    /// ([`Self::backup_checks`]): each posting ahead when it is posted,
    /// inside its own window (attack r20 [5]), else at the batch's turn;
    /// marked once their checks are on chain or none is due
    /// ([`Self::guard_passes`], attack r25).
    backed: BTreeSet<PostingId>,
    /// The honest states before the pending batches ([`Self::state_before`]),
    /// computed once each (attack r20 [2]).
    ahead_cache: std::cell::RefCell<AheadCache>,
    /// The settled state reconstructed so far from chain data: batches
    /// below `.0` applied ([`Self::settled_state`]).
    pub state_cache: std::cell::RefCell<(u64, PreState)>,
}

/// The honest states before the pending batches, by batch, from the
/// settled state before batch `fin` on ([`DualChain::state_before`]).
/// The honest execution of a pending batch depends only on the state
/// before it and on its recorded data, not on any posting, so a
/// replacement or an overturn leaves the cache valid; it is rebased when
/// a batch settles (kept where the settled state is the cached one,
/// dropped otherwise).
#[derive(Default)]
pub struct AheadCache {
    fin: u64,
    states: BTreeMap<u64, PreState>,
}

/// Where this driver's claim of one held reward stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HeldClaim {
    /// Refused only because an earlier commitment still had priority
    /// ([`crate::primary::EntryDisputeError::EarlierCommitment`]): tried
    /// `attempts` times, next not before `next`.
    Retry { attempts: u32, next: Timestamp },
    /// Paid, refused for another reason, or given up.
    Done,
}

/// Most claims of one held reward a driver sends while an earlier
/// commitment has priority ([`HeldClaim`]).
pub const MAX_HELD_CLAIMS: u32 = 24;

/// Back-off before the next claim of a held reward after `attempts`
/// refusals for an earlier commitment: `window / 64` doubling, at most
/// `window / 16`, so that a claim lands within a sixteenth of a window of
/// the earlier commitment's priority ending (an earlier commitment's
/// priority ends before the claimer's own, `window / 2` after it was
/// recorded; later committers may claim only after that).
pub fn held_claim_backoff(window_ms: u64, attempts: u32) -> u64 {
    let base = (window_ms / 64).max(1);
    base.saturating_mul(1u64 << attempts.min(16)).min((window_ms / 16).max(1))
}

/// Largest transaction the driver's chains admit. `sc_exe`, `sc_verify`
/// and a controversial transaction carry a whole batch (up to 300 ATs/STs,
/// §3.5.1, about 75 KiB), more than the ledger's default 64 KiB.
pub const MAX_TX_BYTES: usize = 4 * 1024 * 1024;

/// A [`DevChain`] like [`DevChain::open`], admitting [`MAX_TX_BYTES`].
pub fn dev_chain(
    dir: &std::path::Path,
    accounts: usize,
    wallet: Amount,
    registry: gridledger_ledger::ContractRegistry,
) -> Result<DevChain, ChainError> {
    let validator = gridledger_ledger::devnet::dev_validator(0);
    let genesis =
        gridledger_ledger::devnet::dev_genesis(DevChain::CHAIN_ID, accounts, wallet, std::slice::from_ref(&validator));
    let config = gridledger_ledger::ChainConfig { max_tx_bytes: MAX_TX_BYTES, ..Default::default() };
    let chain = gridledger_ledger::Chain::open(dir, genesis, registry, config)?;
    let now = chain.tip().timestamp + 1_000;
    Ok(DevChain { chain, validator, now })
}

/// The development key of `owner`'s smart meter (deterministic, so tests
/// and demos can sign readings for any trader).
pub fn meter_key(owner: &Address) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-ior-meter/{owner}"))
}

/// The primary contract method that records `tx`, and its arguments.
pub fn record_call(tx: &IorTx) -> (&'static str, Vec<u8>) {
    match tx {
        IorTx::At(at) => ("sc_ds_at", args(at)),
        IorTx::St(st) => ("sc_ds_st", args(st)),
        IorTx::StReach(st, reach) => ("sc_ds_st_reach", args(&(st, reach))),
        IorTx::Opinion(o) => ("sc_ds_ob", args(o)),
        IorTx::Expire(t) => ("sc_ds_expire", args(t)),
    }
}

/// One contract call in its own block on `chain`, its gas recorded,
/// with gas limit `gas_limit`. Refused for a full mempool, it is sent
/// again after a seal ([`submit_making_room`]).
#[allow(clippy::too_many_arguments)]
fn call_on<C: ChainClient>(
    chain: &mut C,
    gas: &mut Vec<GasRecord>,
    target: Target,
    key: &KeyPair,
    contract: u32,
    method: &str,
    a: Vec<u8>,
    value: Amount,
    gas_limit: u64,
) -> Result<Receipt, DriverError> {
    let h = submit_making_room(
        chain,
        |chain| chain,
        |chain| {
            let n = chain.next_nonce(&key.address());
            call(key, chain.chain_id(), n, contract, method, a.clone(), value, gas_limit)
        },
        |chain| chain.seal(),
    )?;
    chain.seal()?;
    let r = chain.receipt(&h)?.ok_or(ClientError::NotIncluded(h))?;
    gas.push(GasRecord { target, method: method.into(), gas: r.gas_used, success: r.status == TxStatus::Success });
    Ok(r)
}

/// Submits the transaction `tx` builds (on the chain `chain` finds in
/// `x`, as it is then: its nonce); refused because the mempool is full,
/// `seal`s first and submits it again (rebuilt), at most
/// [`MAX_FULL_SEALS`] times (attack r26 [1], [2]: a flood that filled the
/// mempool and was never included refused every driver call, nothing was
/// sealed, and settlement froze at no cost to the flooder). The seal
/// includes the highest-priced pending transactions, the flood among
/// them, and charges their senders: a flood holds settlement up only for
/// the blocks it fills and pays for. With no refusal nothing more is
/// sealed. Returns the transaction's hash, or the chain's refusal (the
/// last one). `seal` is the chain's own seal, or the driver's bounded one
/// in [`Mode::Ior`] ([`Driver::seal_submitted`], attack r29 [1]).
fn submit_making_room<X, C: ChainClient, E: From<ClientError>>(
    x: &mut X,
    chain: impl Fn(&mut X) -> &mut C,
    mut tx: impl FnMut(&C) -> gridledger_ledger::SignedTransaction,
    mut seal: impl FnMut(&mut X) -> Result<(), E>,
) -> Result<Hash32, E> {
    let mut seals = 0;
    loop {
        let c = chain(x);
        let t = tx(c);
        match c.submit(&t) {
            Err(ClientError::Submit(SubmitError::MempoolFull { .. }))
                if seals < MAX_FULL_SEALS
                    && !crate::mutants::active(crate::mutants::Mutation::FullMempoolNotSealed) =>
            {
                seals += 1;
                seal(x)?;
            }
            r => return Ok(r?),
        }
    }
}

/// Most seals a driver call refused for a full mempool waits
/// ([`submit_making_room`]): each seal on the development chain commits
/// blocks until the mempool is empty, so one is enough unless the flood
/// is renewed between them; a flood renewed each time costs its author
/// the blocks it fills every time.
pub const MAX_FULL_SEALS: u32 = 4;

/// The gas limit of a bonded challenge's whole-batch `dispute` of
/// `input` with `args_len` bytes of arguments (attack r26 [3]): twice the
/// chain's own estimate of the batch's re-execution plus a fixed
/// [`DISPUTE_BASE_GAS`], at most [`DRIVER_GAS_LIMIT`]. The estimate is
/// [`crate::primary::MAX_BATCH_GAS`]'s: each entry's [`entry_gas`] (its
/// bytes, signatures, execution steps and records with their proofs) and
/// [`crate::primary::RECORD_GAS`] per queue item, to which the dispute's
/// own bytes are added at [`crate::primary::ENTRY_BYTE_GAS`] each (the
/// witness it brings). The worst cases behind `MAX_BATCH_GAS` (estimated
/// at most 83 M plus the call's fixed part) measured below 100 M, under
/// 1.25 times the estimate; the factor two is the margin over that. The
/// one-entry forgery of `tests/attack_pipelined_r26.rs` uses about
/// 244,000 gas against a limit of about 0.5 M (0.5 coin of reservation at
/// the driver's price, where 100 M reserved 100 coin and, with a fixed
/// part of 1 M, 1.2 M passed over owners that could pay: attack r27 [1]).
/// A full batch
/// reaches the cap, the limit every driver call had before.
pub fn dispute_gas_limit(params: &IorParams, input: &BatchInput, args_len: usize) -> u64 {
    use crate::primary::{ENTRY_BYTE_GAS, RECORD_GAS};
    let entries = input.entries.iter().fold(0u64, |g, e| g.saturating_add(entry_gas(e, params.meter_step_s)));
    let estimate = entries
        .saturating_add(RECORD_GAS.saturating_mul(input.queue.len() as u64))
        .saturating_add(ENTRY_BYTE_GAS.saturating_mul(args_len as u64));
    estimate.saturating_mul(2).saturating_add(DISPUTE_BASE_GAS).min(DRIVER_GAS_LIMIT)
}

/// The fixed part of [`dispute_gas_limit`]: the transaction, the
/// dispute's bookkeeping and its bond's payment, about twice what it
/// uses beside the estimate (attack r27 [1]: at 1 M, four times the
/// one-entry dispute's whole use, owners who could pay were passed over).
pub const DISPUTE_BASE_GAS: u64 = 300_000;

/// The batch `call` disputes, if it is a dispute (`dispute`,
/// `dispute_entry`, `dispute_state`).
fn disputed_batch(call: &Call) -> Result<Option<u64>, DriverError> {
    let batch = match call.method {
        "dispute" => borsh::from_slice::<Controversial>(&call.args).map(|b| b.batch),
        "dispute_entry" => borsh::from_slice::<crate::primary::DisputeEntry>(&call.args).map(|b| b.batch),
        "dispute_state" => borsh::from_slice::<crate::primary::DisputeState>(&call.args).map(|b| b.batch),
        _ => return Ok(None),
    }
    .map_err(|e| DriverError::View(e.to_string()))?;
    Ok(Some(batch))
}

/// One party's step in a guard pass (`DualChain::run_steps_together`):
/// its key, the step, the value its primary calls pay (a bonded
/// challenge's bond), the batch it checks and who sends it.
struct Planned {
    key: KeyPair,
    step: Step,
    value: Amount,
    batch: u64,
    part: Part,
    /// The gas limit of its primary calls but a dispute commitment
    /// ([`DRIVER_GAS_LIMIT`], or a bonded challenge's
    /// [`dispute_gas_limit`]).
    gas: u64,
}

/// Who sends a planned step of a guard pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// The batch's assigned watcher.
    Watcher,
    /// A validator an alarmed smart meter delegated.
    Delegate,
    /// The bonded challenge of an alarmed meter's owner (issue 11 item 2).
    Bond(Address),
}

/// What became of a planned step's primary calls in a pass: `refused`
/// says why one of them did not get on chain (refused at submission,
/// also at a higher gas price, or its commitment was), `None` when each
/// was included (or left out as moot).
struct StepSent {
    batch: u64,
    part: Part,
    refused: Option<String>,
}

/// Which checks a guard pass makes (`DualChain::guard_passes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// The assigned watcher only.
    Watcher,
    /// The backup checkers only (smart meters, their delegates, the bonded
    /// challenge).
    Backup,
    /// The watcher, then the backup checkers.
    Both,
}

/// The backup checks of one posting tried in one run of the guard: the
/// delegates had their pass, and the alarmed owners whose bonded
/// challenge was sent (with whether it got on chain) while the posting
/// still stands.
#[derive(Clone, Debug, Default)]
struct BackupTries {
    delegates: bool,
    bonders: BTreeMap<Address, bool>,
}

/// What the backup checkers of one posting send in one pass
/// (`DualChain::backup_plan`).
#[derive(Default)]
struct BackupPlan {
    steps: Vec<Planned>,
    /// A planned step disputes the posting.
    disputes: bool,
    /// The bonded challenge waits for the next pass: every alarmed owner
    /// that could pay it alone is paying another bond in this one.
    deferred: bool,
    /// The alarmed owner whose bonded challenge is planned.
    bonder: Option<Address>,
    /// Every alarmed owner that could pay has been tried in this run and
    /// none of their challenges got on chain.
    exhausted: bool,
    /// Meters alarmed and no alarmed owner could pay the bonded challenge
    /// (nor has one been tried in this run): no check reaches the chain.
    unpaid: bool,
}

/// [`Mode::ConventionalOr`]: most passes the guard makes over its due
/// postings in one run (attack r25): a pass whose checks were refused at
/// submission or did not overturn a posting the meters alarm on is
/// followed by another (the backup checks of a posting whose watcher's
/// dispute was refused, the next alarmed owner's bonded challenge, a bond
/// deferred for its payer's balance) before the clock moves.
pub const MAX_GUARD_PASSES: usize = 8;

/// [`Mode::ConventionalOr`]: the guard's transactions are sent at the
/// driver's gas price, and one refused for a full mempool is sent again
/// at double the price, at most this many times (up to 1024 times the
/// price; the sender's balance bounds it too): a flood at a lower price is
/// outbid (the mempool evicts a cheaper sender's transactions for a
/// dearer one), and a flood that keeps the guard out must reserve every
/// transaction it holds in the mempool at a higher price still, and pay
/// it when included (attack r25 [3]).
pub const MAX_GUARD_REPRICES: u32 = 10;

/// The gas price of the driver's transactions ([`call`]'s).
const BASE_GAS_PRICE: Amount = Amount(1);

/// Blocks a check seals at or past its posting's window end while the
/// primary contract holds the window open for congestion
/// ([`crate::primary::QUIET_BLOCKS`]); then it stops
/// [`DriverError::Unchecked`] and the next [`Driver::process`] goes on
/// (safe: the contract refuses `finalize` while the blocks stay full).
pub const MAX_HELD_OPEN_BLOCKS: u64 = 8;

fn ok(r: &Receipt, method: &str) -> Result<(), DriverError> {
    match &r.status {
        TxStatus::Success => Ok(()),
        TxStatus::Reverted(why) => Err(DriverError::Setup { method: method.into(), reason: why.clone() }),
    }
}

impl DualChain {
    /// Development key of trader `i`.
    pub fn trader(i: usize) -> KeyPair {
        dev_key(i)
    }

    /// Opens two development chains, initialises the contracts and
    /// registers the secondary-chain nodes with authority certificates and
    /// deposits.
    pub fn open(
        primary_dir: &std::path::Path,
        secondary_dir: &std::path::Path,
        cfg: DriverConfig,
    ) -> Result<Self, DriverError> {
        let accounts = cfg.accounts()?;
        let primary = dev_chain(primary_dir, accounts, cfg.wallet, primary_registry())?;
        let secondary = dev_chain(secondary_dir, accounts, cfg.wallet, secondary_registry())?;
        DualChain::on_chains(primary, secondary, cfg)
    }
}

impl<P: ChainClient, S: ChainClient> DualChain<P, S> {
    /// Runs over the given chains, which must fund the development keys of
    /// the participants, executors and validators ([`dev_key`] `0..n`) and
    /// deploy [`primary_registry`] and [`secondary_registry`] respectively.
    pub fn on_chains(primary: P, secondary: S, cfg: DriverConfig) -> Result<Self, DriverError> {
        cfg.accounts()?;
        let mut d = Self::roles(primary, secondary, cfg);
        let admin = dev_key(d.cfg.participants);
        // The baseline says it is one (`PrimaryConfig::pipelined`).
        let init = if d.cfg.mode == Mode::ConventionalOr { "init_baseline" } else { "init" };
        let r = d.primary_call(&admin, init, args(&d.primary_config()), Amount::ZERO)?;
        ok(&r, init)?;
        let sc = crate::secondary::SecondaryConfig { params: d.cfg.params.clone(), authority: d.authority.public() };
        let r = d.secondary_call(&admin, "init", args(&sc))?;
        ok(&r, "init")?;
        d.register_nodes(&BTreeSet::new(), &BTreeSet::new())?;
        Ok(d)
    }

    /// Runs over chains whose IOR contracts an earlier driver with the same
    /// configuration initialised (a day killed part way, resumed): nothing
    /// is initialised again; the primary contract's configuration must be
    /// the one `cfg` gives ([`DriverError::Mismatch`] otherwise), and the
    /// nodes the earlier driver had not registered yet are registered now.
    /// Batches the earlier driver recorded are then executed, validated and
    /// finalized by [`Self::process`], which reads everything it needs from
    /// the chains.
    pub fn attach(primary: P, secondary: S, cfg: DriverConfig) -> Result<Self, DriverError> {
        cfg.accounts()?;
        let mut d = Self::roles(primary, secondary, cfg);
        let want = d.primary_config();
        let have = primary_config(&d.primary)?;
        if have != want {
            let (have, want) =
                (serde_json::to_value(&have).unwrap_or_default(), serde_json::to_value(&want).unwrap_or_default());
            return Err(DriverError::Mismatch(format!(
                "the IOR contract was initialised with another configuration ({})",
                json_diff("", &have, &want).join("; ")
            )));
        }
        // The earlier driver may have been stopped between the two chains'
        // set-up calls: initialising the secondary contract again is
        // refused, and registering an executor there again is a no-op.
        let admin = dev_key(d.cfg.participants);
        let sc = crate::secondary::SecondaryConfig { params: d.cfg.params.clone(), authority: d.authority.public() };
        let r = d.secondary_call(&admin, "init", args(&sc))?;
        if let TxStatus::Reverted(why) = &r.status {
            if !why.contains("already initialised") {
                return Err(DriverError::Setup { method: "init".into(), reason: why.clone() });
            }
        }
        let nodes = d.reader().view_json("nodes", vec![])?;
        let listed = |role: &str| -> BTreeSet<Address> {
            nodes[role]
                .as_array()
                .map(|v| v.iter().filter_map(|a| serde_json::from_value(a.clone()).ok()).collect())
                .unwrap_or_default()
        };
        let (executors, validators) = (listed("executors"), listed("validators"));
        d.register_nodes(&executors, &validators)?;
        Ok(d)
    }

    /// The primary contract's configuration this driver initialises.
    fn primary_config(&self) -> PrimaryConfig {
        PrimaryConfig {
            params: self.cfg.params.clone(),
            authority: self.authority.public(),
            node_deposit: self.cfg.node_deposit,
            bonus_permille: self.cfg.bonus_permille,
            window_ms: self.cfg.window_ms(),
            challenge_bond: self.cfg.challenge_bond,
            delegation_fee: self.cfg.delegation_fee,
            pipelined: self.cfg.mode == Mode::ConventionalOr,
        }
    }

    /// Registers on the primary chain the executors and validators not
    /// already listed in `executors` / `validators` (with certificates and
    /// deposits), and every executor on the secondary chain.
    fn register_nodes(
        &mut self,
        executors: &BTreeSet<Address>,
        validators: &BTreeSet<Address>,
    ) -> Result<(), DriverError> {
        let nodes: Vec<(KeyPair, NodeRole)> = self
            .executors
            .iter()
            .filter(|(k, _)| !executors.contains(&k.address()))
            .map(|(k, _)| (k.clone(), NodeRole::Executor))
            .chain(
                self.validators
                    .iter()
                    .filter(|(k, _)| !validators.contains(&k.address()))
                    .map(|(k, _)| (k.clone(), NodeRole::Validator)),
            )
            .collect();
        for (k, role) in nodes {
            let cert = self.authority.sign(&node_cert_digest(&self.cfg.params.domain, &k.address(), role));
            let dep = self.cfg.node_deposit;
            let r = self.driver_call(&k, "register_node", args(&RegisterNode { role, cert }), dep)?;
            ok(&r, "register_node")?;
        }
        // Every executor on the secondary chain too (again for one listed
        // on the primary chain: a driver may have been stopped between the
        // two calls; registering twice there is a no-op).
        let keys: Vec<KeyPair> = self.executors.iter().map(|(k, _)| k.clone()).collect();
        for k in keys {
            let cert =
                self.authority.sign(&node_cert_digest(&self.cfg.params.domain, &k.address(), NodeRole::Executor));
            let reg = crate::secondary::RegisterExecutor { cert };
            let r = self.secondary_call(&k, "register_executor", args(&reg))?;
            ok(&r, "register_executor")?;
        }
        Ok(())
    }

    /// The driver's roles and keys over `primary` and `secondary`, nothing
    /// sent yet.
    fn roles(primary: P, secondary: S, mut cfg: DriverConfig) -> Self {
        // Every IOR signature is bound to the primary chain it runs on.
        cfg.params.domain = crate::types::SigDomain { chain_id: primary.chain_id(), contract: IOR_PRIMARY_ID };
        let authority = KeyPair::from_seed("gridledger-ior-authority");
        let executors = (0..cfg.executors)
            .map(|i| {
                let k = dev_key(cfg.participants + i);
                let r =
                    Executor { address: k.address(), params: cfg.params.clone(), behaviour: ExecutorBehaviour::Honest };
                (k, r)
            })
            .collect();
        let validators = (0..cfg.validators)
            .map(|i| {
                let k = dev_key(cfg.participants + cfg.executors + i);
                let r = Validator {
                    address: k.address(),
                    params: cfg.params.clone(),
                    behaviour: ValidatorBehaviour::Honest,
                };
                (k, r)
            })
            .collect();
        let meters = (0..cfg.participants)
            .map(|i| {
                let a = dev_key(i).address();
                (a, SmartMeter { owner: a, params: cfg.params.clone(), delegates: cfg.delegates })
            })
            .collect();
        let mut d = Self {
            cfg,
            primary,
            secondary,
            authority,
            executors,
            validators,
            meters,
            gas: vec![],
            faults: vec![],
            settled: vec![],
            participant_disputes: BTreeSet::new(),
            disputes_handled: 0,
            check_due: None,
            check_price: BASE_GAS_PRICE,
            held_blocks: 0,
            checked: BTreeSet::new(),
            traders: BTreeMap::new(),
            bonded_challenges: 0,
            held_claims: BTreeMap::new(),
            watched: BTreeSet::new(),
            backed: BTreeSet::new(),
            ahead_cache: std::cell::RefCell::new(AheadCache::default()),
            state_cache: std::cell::RefCell::new((0, PreState::default())),
        };
        d.traders = (0..d.cfg.participants).map(dev_key).map(|k| (k.address(), k)).collect();
        d
    }

    /// Reads the primary chain's IOR data ([`PrimaryReader`]).
    pub fn reader(&self) -> PrimaryReader<'_, P> {
        PrimaryReader { c: &self.primary, params: &self.cfg.params }
    }

    /// Sets the primary chain's block clock (ms); it only moves forward.
    pub fn set_time(&mut self, t: Timestamp) {
        self.primary.set_now(t);
    }

    pub fn now(&self) -> Timestamp {
        self.primary.now()
    }

    /// A call on the primary contract in its own block, as any party
    /// sends it (sealed at once; the driver's own calls go through
    /// [`Self::driver_call`]).
    pub fn primary_call(
        &mut self,
        key: &KeyPair,
        method: &str,
        a: Vec<u8>,
        value: Amount,
    ) -> Result<Receipt, DriverError> {
        if let Some((batch, end)) = self.check_due {
            return self.call_before(key, method, a, value, DRIVER_GAS_LIMIT, batch, end);
        }
        let (gas, target) = (&mut self.gas, Target::Primary);
        call_on(&mut self.primary, gas, target, key, IOR_PRIMARY_ID, method, a, value, DRIVER_GAS_LIMIT)
    }

    /// A call of the driver's own (`fund`, `withdraw`, `flush`, `submit`,
    /// held claims, `close`, `finalize`, `prune_claims`) on the primary
    /// contract: in its own block, or bounded by an unchecked posting
    /// ([`Self::seal_due`]).
    fn driver_call(&mut self, key: &KeyPair, method: &str, a: Vec<u8>, value: Amount) -> Result<Receipt, DriverError> {
        self.primary_call_limited(key, method, a, value, DRIVER_GAS_LIMIT)
    }

    /// [`Self::primary_call`] with gas limit `gas_limit`.
    fn primary_call_limited(
        &mut self,
        key: &KeyPair,
        method: &str,
        a: Vec<u8>,
        value: Amount,
        gas_limit: u64,
    ) -> Result<Receipt, DriverError> {
        if let Some((batch, end)) = self.seal_due()? {
            return self.call_before(key, method, a, value, gas_limit, batch, end);
        }
        self.call_sealed(key, method, a, value, gas_limit)
    }

    /// A call on the primary contract sent while no posting bounds the
    /// driver's blocks: outside [`Mode::Ior`] in its own block
    /// ([`call_on`]); in [`Mode::Ior`] one block at a time with the bound
    /// ([`Self::seal_due`]) evaluated again after each, as are the seals
    /// that make room in a full mempool ([`Self::seal_submitted`]). Once a
    /// posting lands in a block that left the call out, the call goes as
    /// the checks' calls do ([`Self::reprice_before`]: repriced, none of
    /// its blocks at or past the bound). Attack r29 [1]: a forged posting
    /// waiting in the mempool when the call was sent was sealed in the
    /// first block of the call's unbounded seal, and the junk behind it
    /// past its window, before any check.
    fn call_sealed(
        &mut self,
        key: &KeyPair,
        method: &str,
        a: Vec<u8>,
        value: Amount,
        gas_limit: u64,
    ) -> Result<Receipt, DriverError> {
        if self.cfg.mode != Mode::Ior || crate::mutants::active(crate::mutants::Mutation::SealNotReevaluated) {
            let (gas, target) = (&mut self.gas, Target::Primary);
            return call_on(&mut self.primary, gas, target, key, IOR_PRIMARY_ID, method, a, value, gas_limit);
        }
        let h = submit_making_room(
            self,
            |d| &mut d.primary,
            |chain| {
                let n = chain.next_nonce(&key.address());
                call(key, chain.chain_id(), n, IOR_PRIMARY_ID, method, a.clone(), value, gas_limit)
            },
            |d| d.seal_submitted(&[], method),
        )?;
        loop {
            if let Some(due) = self.seal_due()? {
                // A posting landed in the last block: its checks come
                // first; the call goes as theirs do, before the bound.
                return self.reprice_before(key, h, true, (method, a, value, gas_limit), due);
            }
            let height = self.primary.tip().height;
            self.primary.seal_block()?;
            if let Some(r) = self.primary.receipt(&h)? {
                self.gas.push(GasRecord {
                    target: Target::Primary,
                    method: method.into(),
                    gas: r.gas_used,
                    success: r.status == TxStatus::Success,
                });
                return Ok(r);
            }
            if self.primary.tip().height == height {
                return Err(ClientError::NotIncluded(h).into());
            }
        }
    }

    /// The posting whose window bounds the blocks the driver seals now,
    /// and the time no block may reach: during a check, its posting's
    /// window end ([`Self::check_due`]); otherwise in [`Mode::Ior`] the
    /// standing posting whose checks are not on chain
    /// ([`Self::unchecked_due`]). `None`: no bound, sealed as usual.
    fn seal_due(&self) -> Result<Option<(u64, Timestamp)>, DriverError> {
        if self.check_due.is_some() {
            return Ok(self.check_due);
        }
        if crate::mutants::active(crate::mutants::Mutation::UncheckedPostingSealedThrough) {
            return Ok(None);
        }
        self.unchecked_due()
    }

    /// [`Mode::Ior`]: the batch whose posting stands unchecked (not in
    /// [`Self::checked`]; in IOR only the next batch to settle can be
    /// posted), and the time before which any other call of the driver
    /// (a held claim, `close`, `finalize`, `fund_many`,
    /// `register_meters_every`, `submit_block`, ...) must be on chain: a
    /// quarter of a window after the posting, so that the checks keep
    /// three quarters of it (the assigned validator's turn, to the half,
    /// and the backup checks', the second half; attack r27 [2]: any seal
    /// through a flood or behind dearer junk moved the clock past the
    /// window before the check was on chain, and a forged root settled
    /// undisputed; stopped only at the window end, a call left the checks
    /// no block).
    fn unchecked_due(&self) -> Result<Option<(u64, Timestamp)>, DriverError> {
        if self.cfg.mode != Mode::Ior {
            return Ok(None);
        }
        let (next, fin) = self.progress()?;
        if fin >= next {
            return Ok(None);
        }
        let h = self.batch_header(fin)?;
        let Some(p) = posting_id(&h).filter(|_| h.state == BatchState::Open && !h.overturned) else {
            return Ok(None);
        };
        if self.checked.contains(&p) {
            return Ok(None);
        }
        let Some(start) = self.window_start(&h)? else { return Ok(None) };
        Ok(Some((fin, start.saturating_add(self.cfg.window_ms() / 4))))
    }

    /// Seals the transactions `hashes` were submitted as. Outside
    /// [`Mode::Ior`] at once ([`ChainClient::seal`]). In [`Mode::Ior`]
    /// one block at a time until all are included (with none, one block),
    /// the bound ([`Self::seal_due`]) evaluated again before each block:
    /// a posting that lands in a block bounds the next ones (attack r29
    /// [1]: a forged posting waiting in the mempool when a call was sent
    /// was sealed in the call's first block, then the junk behind it past
    /// its window, before any check). Where a posting bounds the blocks,
    /// none at or past the bound ([`Self::seal_block_before`]); not all
    /// included by then: [`DriverError::Unchecked`]. Without a bound, a
    /// seal that commits no block (nothing left to include) stops it; the
    /// caller finds what is missing.
    fn seal_submitted(&mut self, hashes: &[Hash32], what: &str) -> Result<(), DriverError> {
        if self.cfg.mode != Mode::Ior {
            self.primary.seal()?;
            return Ok(());
        }
        loop {
            match self.seal_due()? {
                Some((batch, end)) => {
                    if !self.seal_block_before(end)? {
                        let reason = format!("{what} not on chain before {end}, the bound of the posting's checks");
                        return Err(DriverError::Unchecked { batch, reason });
                    }
                }
                None => {
                    let height = self.primary.tip().height;
                    self.primary.seal_block()?;
                    if self.primary.tip().height == height {
                        return Ok(());
                    }
                }
            }
            let mut all = true;
            for h in hashes {
                all &= self.primary.receipt(h)?.is_some();
            }
            if all {
                return Ok(());
            }
        }
    }

    /// Seals one block unless the clock is at or past `end`. Returns
    /// whether it sealed. During a check ([`Self::check_due`]) a block at
    /// or past `end` is sealed too while the primary contract holds the
    /// posting's window open for congestion ([`Self::held_open`]: a
    /// dispute in that block is accepted, a `finalize` refused), at most
    /// [`MAX_HELD_OPEN_BLOCKS`] per check (attack r29 [2] [3]: junk at a
    /// price the check could not outbid filled the blocks to the window's
    /// end; the check waits the junk out instead).
    fn seal_block_before(&mut self, end: Timestamp) -> Result<bool, DriverError> {
        if self.primary.now() >= end {
            let Some((batch, _)) = self.check_due else { return Ok(false) };
            if self.held_blocks >= MAX_HELD_OPEN_BLOCKS || !self.held_open(batch)? {
                return Ok(false);
            }
            self.held_blocks += 1;
        }
        self.primary.seal_block()?;
        Ok(true)
    }

    /// The primary contract's congestion-aware window
    /// ([`crate::primary::QUIET_BLOCKS`]) as it will judge it in the next
    /// block: whether one of the blocks just below it, above `batch`'s
    /// posting's block, was full.
    /// The room is judged against the per-block limits of the driver's
    /// chains (the ledger's default [`gridledger_ledger::ChainConfig`], as
    /// [`dev_chain`] opens them).
    fn held_open(&self, batch: u64) -> Result<bool, DriverError> {
        let Some(posted) = self.batch_header(batch)?.tcr_height else { return Ok(false) };
        let next = self.primary.tip().height.saturating_add(1);
        let limits = gridledger_ledger::ChainConfig::default();
        crate::primary::held_open_at(posted, next, |height| {
            Ok::<_, DriverError>(self.primary.block(height)?.map(|b| limits.room_left(&b.header)))
        })
    }

    /// A call of the check of `batch`'s posting, whose window ends at
    /// `end` (attack r27 [2]: the driver's own seals, through a flood or
    /// behind dearer junk, moved the clock past the window before the
    /// check was on chain, and a forged root settled undisputed). Sent as
    /// [`Self::submit_repriced`] does; then one block at a time, never one
    /// at or past `end`: a block that leaves the call out is followed by
    /// the call again at four times the price (a replacement; the check's
    /// next call starts at the price that was included), at most
    /// [`MAX_GUARD_REPRICES`] times. Not on chain before `end`:
    /// [`DriverError::Unchecked`]. Returns the call's receipt.
    #[allow(clippy::too_many_arguments)]
    fn call_before(
        &mut self,
        key: &KeyPair,
        method: &str,
        a: Vec<u8>,
        value: Amount,
        gas_limit: u64,
        batch: u64,
        end: Timestamp,
    ) -> Result<Receipt, DriverError> {
        let h = match self.submit_repriced(key, method, a.clone(), value, gas_limit, Some(end))? {
            Ok(h) => h,
            Err(why) => {
                let reason = format!("{method} of {} refused: {why}", key.address());
                return Err(DriverError::Unchecked { batch, reason });
            }
        };
        self.reprice_before(key, h, false, (method, a, value, gas_limit), (batch, end))
    }

    /// The rest of [`Self::call_before`] for the call pending as `h` (the
    /// sender's last pending transaction): repriced and sealed one block
    /// at a time before `end`. `missed`: a block already left the call out
    /// (a posting landed in it, [`Self::call_sealed`]): replaced at four
    /// times the price at once, before the next block.
    fn reprice_before(
        &mut self,
        key: &KeyPair,
        mut h: Hash32,
        missed: bool,
        (method, a, value, gas_limit): (&str, Vec<u8>, Amount, u64),
        (batch, end): (u64, Timestamp),
    ) -> Result<Receipt, DriverError> {
        let unchecked = |reason: String| DriverError::Unchecked { batch, reason };
        let nonce = self.primary.next_nonce(&key.address()).saturating_sub(1);
        let mut price = BASE_GAS_PRICE;
        let chain_id = self.primary.chain_id();
        let sign = |price: Amount| primary_call_tx(chain_id, key, nonce, (gas_limit, price), (method, &a, value));
        // At once at the price the check's previous call needed.
        if self.check_price > price {
            if let Ok(n) = self.primary.submit(&sign(self.check_price)) {
                (h, price) = (n, self.check_price);
            }
        }
        if missed {
            let dearer = Amount(price.0.saturating_mul(4));
            if let Ok(n) = self.primary.submit(&sign(dearer)) {
                (h, price) = (n, dearer);
            }
        }
        // One block at a time, repriced after each that leaves it out:
        // before `end` at most `MAX_GUARD_REPRICES + 1` blocks; at or past
        // it, while the congestion holds the window open
        // ([`Self::seal_block_before`], at the last price).
        let mut blocks = 0u32;
        loop {
            if blocks > MAX_GUARD_REPRICES && self.primary.now() < end {
                break;
            }
            if !self.seal_block_before(end)? {
                break;
            }
            blocks += 1;
            if let Some(r) = self.primary.receipt(&h)? {
                self.gas.push(GasRecord {
                    target: Target::Primary,
                    method: method.into(),
                    gas: r.gas_used,
                    success: r.status == TxStatus::Success,
                });
                self.check_price = self.check_price.max(price);
                return Ok(r);
            }
            if blocks <= MAX_GUARD_REPRICES {
                let dearer = Amount(price.0.saturating_mul(4));
                if let Ok(n) = self.primary.submit(&sign(dearer)) {
                    (h, price) = (n, dearer);
                }
            }
        }
        Err(unchecked(format!("{method} not on chain before the window ends at {end}")))
    }

    fn secondary_call(&mut self, key: &KeyPair, method: &str, a: Vec<u8>) -> Result<Receipt, DriverError> {
        call_on(
            &mut self.secondary,
            &mut self.gas,
            Target::Secondary,
            key,
            IOR_SECONDARY_ID,
            method,
            a,
            Amount::ZERO,
            DRIVER_GAS_LIMIT,
        )
    }

    /// Funds a trader's IOR account from its wallet.
    pub fn fund(&mut self, key: &KeyPair, amount: Amount) -> Result<Receipt, DriverError> {
        self.driver_call(key, "fund", vec![], amount)
    }

    /// Funds many traders' IOR accounts, up to `max_batch` per block,
    /// flushing a batch whenever `MAX_QUEUE_PER_BATCH` items are queued.
    pub fn fund_many(&mut self, funds: &[(KeyPair, Amount)]) -> Result<(), DriverError> {
        let cap = crate::primary::MAX_QUEUE_PER_BATCH as usize;
        let per_block = (self.cfg.params.max_batch as usize).clamp(1, cap);
        let mut queued = 0;
        for chunk in funds.chunks(per_block) {
            // A batch applies at most `MAX_QUEUE_PER_BATCH` queue items:
            // open one for what is queued before queueing more.
            if queued + chunk.len() > cap {
                ok(&self.flush(&chunk[0].0)?, "flush")?;
                queued = 0;
            }
            queued += chunk.len();
            let mut hashes = Vec::with_capacity(chunk.len());
            for (key, amount) in chunk {
                let n = self.primary.next_nonce(&key.address());
                let chain_id = self.primary.chain_id();
                let tx = call(key, chain_id, n, IOR_PRIMARY_ID, "fund", vec![], *amount, RECORD_GAS_LIMIT);
                hashes.push(self.primary.submit(&tx)?);
            }
            self.seal_submitted(&hashes, "fund")?;
            for h in hashes {
                let r = self.primary.receipt(&h)?.ok_or(DriverError::NotIncluded("fund"))?;
                self.gas.push(GasRecord {
                    target: Target::Primary,
                    method: "fund".into(),
                    gas: r.gas_used,
                    success: r.status == TxStatus::Success,
                });
                ok(&r, "fund")?;
            }
        }
        Ok(())
    }

    /// Submits one AT (`SC_DS_AT`), ST (`SC_DS_ST`), buyer opinion or
    /// expiry in its own block.
    pub fn submit(&mut self, key: &KeyPair, tx: &IorTx) -> Result<Receipt, DriverError> {
        let (method, a) = self.record_call_for(&key.address(), tx)?;
        self.driver_call(key, method, a, Amount::ZERO)
    }

    /// [`record_call`] for `tx` sent by `sender`, except for an AT its
    /// buyer sends for an agreement key that an AT of other terms marked
    /// in a settled batch while the settled state holds no agreement for
    /// the key (execution refused the marking AT): that AT reopens the key
    /// (`sc_ds_at_reopen`, [`crate::primary::ReopenAt`], issue 11, attack
    /// r10 [1]) with a witness of the key's absence from the settled state.
    /// The chain refuses the reopening once the marking AT's delivery
    /// period has ended (attack r11 [4]: its agreement may have opened and
    /// settled since).
    pub fn record_call_for(&self, sender: &Address, tx: &IorTx) -> Result<(&'static str, Vec<u8>), DriverError> {
        let IorTx::At(at) = tx else { return Ok(record_call(tx)) };
        let t = &at.terms;
        if *sender != t.buyer {
            return Ok(record_call(tx));
        }
        let reader = self.reader();
        let Some((terms, batch, _)) = reader.agreement_mark(&t.key())? else { return Ok(record_call(tx)) };
        if terms == t.seller_digest(&self.cfg.params.domain) || batch >= reader.progress()?.1 {
            return Ok(record_call(tx));
        }
        let settled = self.settled_state()?;
        if settled.agreements.contains_key(&t.key()) {
            return Ok(record_call(tx));
        }
        let keys = BTreeSet::from([crate::state::RecordKey::Agreement(t.key())]);
        let witness = crate::state::witness(&settled, &keys);
        Ok(("sc_ds_at_reopen", args(&crate::primary::ReopenAt { at: at.clone(), witness })))
    }

    /// Registers each trader's development meter key ([`meter_key`]),
    /// certified by the authority, up to `max_batch` per block, reading at
    /// the metering grid step ([`IorParams::meter_step_s`]).
    pub fn register_meters(&mut self, owners: &[KeyPair]) -> Result<(), DriverError> {
        self.register_meters_every(owners, self.cfg.params.meter_step_s)
    }

    /// [`Self::register_meters`] for meters reading every `step_s`
    /// seconds, which must divide the grid step (else the contract refuses
    /// with [`crate::primary::MeterError`]).
    pub fn register_meters_every(&mut self, owners: &[KeyPair], step_s: u32) -> Result<(), DriverError> {
        let per_block = (self.cfg.params.max_batch as usize).max(1);
        for chunk in owners.chunks(per_block) {
            let mut hashes = Vec::with_capacity(chunk.len());
            for key in chunk {
                let meter = MeterRecord { key: meter_key(&key.address()).address(), step_s };
                let cert = self.authority.sign(&meter_cert_digest(&self.cfg.params.domain, &key.address(), &meter));
                let n = self.primary.next_nonce(&key.address());
                let a = args(&RegisterMeter { meter, cert });
                let tx = call(
                    key,
                    self.primary.chain_id(),
                    n,
                    IOR_PRIMARY_ID,
                    "register_meter",
                    a,
                    Amount::ZERO,
                    RECORD_GAS_LIMIT,
                );
                hashes.push(self.primary.submit(&tx)?);
            }
            self.seal_submitted(&hashes, "register_meter")?;
            for h in hashes {
                let r = self.primary.receipt(&h)?.ok_or(DriverError::NotIncluded("register_meter"))?;
                ok(&r, "register_meter")?;
            }
        }
        Ok(())
    }

    /// Records every one of `txs`, in order, over as many blocks as the
    /// contract's per-block bounds need ([`record_blocks`]), and checks
    /// every receipt: a transaction left out of its block is
    /// [`DriverError::NotIncluded`], one `SC_DS_*` refused is
    /// [`DriverError::Refused`] (the blocks after it are not sent). Returns
    /// the number of blocks sent.
    pub fn record_packed(&mut self, txs: &[(KeyPair, IorTx)]) -> Result<usize, DriverError> {
        let blocks = record_blocks(&self.cfg.params, self.now(), txs);
        for block in &blocks {
            let receipts = self.submit_block(block)?;
            if receipts.len() != block.len() {
                let missing = block.get(receipts.len()).map_or("sc_ds", |(_, tx)| record_call(tx).0);
                return Err(DriverError::NotIncluded(missing));
            }
            for ((key, tx), r) in block.iter().zip(&receipts) {
                if let TxStatus::Reverted(why) = &r.status {
                    let method = self.record_call_for(&key.address(), tx).map_or(record_call(tx).0, |c| c.0);
                    return Err(DriverError::Refused { method, sender: key.address(), reason: why.clone() });
                }
            }
        }
        Ok(blocks.len())
    }

    /// Submits many ATs/STs into one primary block (one batch).
    pub fn submit_block(&mut self, txs: &[(KeyPair, IorTx)]) -> Result<Vec<Receipt>, DriverError> {
        let mut hashes = Vec::new();
        for (key, tx) in txs {
            let (method, a) = self.record_call_for(&key.address(), tx)?;
            let n = self.primary.next_nonce(&key.address());
            let chain_id = self.primary.chain_id();
            let stx = call(key, chain_id, n, IOR_PRIMARY_ID, method, a, Amount::ZERO, RECORD_GAS_LIMIT);
            hashes.push((method, self.primary.submit(&stx)?));
        }
        let sent: Vec<Hash32> = hashes.iter().map(|(_, h)| *h).collect();
        self.seal_submitted(&sent, "sc_ds")?;
        let mut out = Vec::new();
        for (method, h) in hashes {
            if let Some(r) = self.primary.receipt(&h)? {
                self.gas.push(GasRecord {
                    target: Target::Primary,
                    method: method.into(),
                    gas: r.gas_used,
                    success: r.status == TxStatus::Success,
                });
                out.push(r);
            }
        }
        Ok(out)
    }

    /// A trader's IOR account as the next batch will see it: its record in
    /// the settled state ([`Self::settled_state`]) with the queued `fund`s
    /// and `withdraw`s no settled batch applied yet.
    pub fn participant(&self, who: &Address) -> Result<Participant, DriverError> {
        self.reader().account(&self.settled_state()?, who)
    }

    /// Bridge queue items `from..to` ([`crate::state::QueueItem`]).
    pub fn queue(&self, from: u64, to: u64) -> Result<Vec<QueueItem>, DriverError> {
        self.reader().queue(from, to)
    }

    /// The queue items batch `h` applies before its entries.
    pub fn batch_queue(&self, h: &BatchHeader) -> Result<Vec<QueueItem>, DriverError> {
        self.reader().batch_queue(h)
    }

    /// The settled state, reconstructed from chain data alone (module docs
    /// of [`crate::state`]): for each settled batch in order, its queue
    /// items, then the effects of its posted leaves (or of the chain's own
    /// TCRs for a batch the chain executed), checked against the root the
    /// primary chain settled.
    pub fn settled_state(&self) -> Result<PreState, DriverError> {
        let (_, fin) = self.progress()?;
        let (mut at, mut s) = self.state_cache.borrow().clone();
        if at > fin {
            (at, s) = (0, PreState::default());
        }
        while at < fin {
            s = self.replay(&s, at)?;
            at += 1;
        }
        *self.state_cache.borrow_mut() = (at, s.clone());
        Ok(s)
    }

    fn replay(&self, before: &PreState, b: u64) -> Result<PreState, DriverError> {
        self.reader().replay(before, b)
    }

    /// The state before batch `b` (queue items not applied): the settled
    /// state for the next batch to settle, a replay for a settled one, and
    /// for a later one the honest execution of the pending batches before
    /// it (what an executor computes ahead).
    pub fn state_before(&self, b: u64) -> Result<PreState, DriverError> {
        let (_, fin) = self.progress()?;
        if b < fin {
            let mut s = PreState::default();
            for k in 0..b {
                s = self.replay(&s, k)?;
            }
            return Ok(s);
        }
        let settled = self.settled_state()?;
        let (from, mut s) = {
            let mut c = self.ahead_cache.borrow_mut();
            if c.fin != fin || !c.states.contains_key(&fin) {
                let same = |st: &PreState| crate::state::state_root(st) == crate::state::state_root(&settled);
                if c.fin <= fin && c.states.get(&fin).is_some_and(same) {
                    c.states = c.states.split_off(&fin);
                } else {
                    c.states.clear();
                }
                c.fin = fin;
                c.states.insert(fin, settled);
            }
            match c.states.range(..=b).next_back() {
                Some((k, st)) => (*k, st.clone()),
                None => return Err(DriverError::View(format!("no state before batch {b}"))),
            }
        };
        for k in from..b {
            let h = self.batch_header(k)?;
            let entries = batch_entries(&self.primary, &h)?;
            crate::state::apply_queue(&mut s, &self.cfg.params, &self.batch_queue(&h)?)
                .map_err(|e| DriverError::View(e.to_string()))?;
            let v: BatchInput =
                self.view_borsh("batch_input", args(&BatchData { batch: k, entries: entries.clone() }))?;
            s.meters = v.prestate.meters;
            let (_, post) = crate::exec::execute_and_apply(&mut crate::exec::OffChain, &self.cfg.params, &s, &entries)
                .map_err(|e| DriverError::View(e.to_string()))?;
            s = post;
            s.meters.clear();
            s.closed_in_batch.clear();
            s.penalised_in_batch.clear();
            self.ahead_cache.borrow_mut().states.insert(k + 1, s.clone());
        }
        Ok(s)
    }

    /// Withdraws `amount` from `key`'s settled balance, proving its record
    /// against the latest settled root.
    pub fn withdraw(&mut self, key: &KeyPair, amount: Amount) -> Result<Receipt, DriverError> {
        let s = self.settled_state()?;
        let (record, proof) = crate::state::participant_proof(&s, &key.address())
            .ok_or_else(|| DriverError::View(format!("{} has no settled record", key.address())))?;
        self.driver_call(key, "withdraw", args(&WithdrawArgs { amount, record, proof }), Amount::ZERO)
    }

    /// Opens an empty batch that applies the queued `fund`s and `withdraw`s.
    pub fn flush(&mut self, key: &KeyPair) -> Result<Receipt, DriverError> {
        self.driver_call(key, "flush", vec![], Amount::ZERO)
    }

    fn view_borsh<T: borsh::BorshDeserialize>(&self, method: &str, a: Vec<u8>) -> Result<T, DriverError> {
        self.reader().view_borsh(method, a)
    }

    /// A batch's header.
    pub fn batch_header(&self, batch: u64) -> Result<BatchHeader, DriverError> {
        self.reader().batch_header(batch)
    }

    /// A batch's entries, read from the primary chain's block data
    /// ([`batch_entries`]).
    pub fn entries(&self, batch: u64) -> Result<Vec<Entry>, DriverError> {
        batch_entries(&self.primary, &self.batch_header(batch)?)
    }

    /// The TCR leaves posted for a batch ([`batch_leaves`]).
    pub fn leaves(&self, batch: u64) -> Result<Option<Vec<PostedLeaf>>, DriverError> {
        let h = self.batch_header(batch)?;
        let es = batch_entries(&self.primary, &h)?;
        batch_leaves(&self.primary, &h, &self.cfg.params.domain, &es)
    }

    /// `finalize` arguments for a batch: its id, and for a batch the chain
    /// executes itself (overturned, or no root posted) its entries and the
    /// records they touch with their proof against the settled root
    /// ([`crate::state::batch_witness`]); a batch whose posted roots stood settles in
    /// O(1) and gets neither.
    pub fn finalize_args(&self, batch: u64) -> Result<Vec<u8>, DriverError> {
        let h = self.batch_header(batch)?;
        if !h.overturned && h.tcr_root.is_some() {
            return Ok(args(&FinalizeArgs { batch, entries: vec![], witness: Default::default() }));
        }
        let entries = batch_entries(&self.primary, &h)?;
        let witness = crate::state::batch_witness(
            &self.state_before(batch)?,
            &self.batch_queue(&h)?,
            &entries,
            self.cfg.params.meter_step_s,
        );
        Ok(args(&FinalizeArgs { batch, entries, witness }))
    }

    /// How a seller records `st`: as [`IorTx::StReach`] reaching the last
    /// slot of every earlier won claim of the seller that holds energy in
    /// the ST's period in the settled state, and of every sale recorded
    /// without certified readings there ([`crate::exec::SlotAlloc::sold`]),
    /// so a sale settled before an earlier-ending one it overlaps can move
    /// those claims off its slots ([`crate::exec::realloc`]), else as a plain [`IorTx::St`]. Claims of
    /// the seller still pending in an unsettled batch are not seen: a
    /// seller settling overlapping sales out of deadline order sends the
    /// later one after the earlier has settled, or names the reach itself.
    pub fn settlement_tx(&self, st: crate::types::SettlementTx) -> Result<IorTx, DriverError> {
        let s = self.settled_state()?;
        let grid = u64::from(self.cfg.params.meter_step_s) * 1000;
        let end = st.terms.dt_end;
        let far = st
            .claim_slots(self.cfg.params.meter_step_s)
            .iter()
            .filter_map(|k| s.slots.get(k))
            .flat_map(|a| a.by_period.keys().chain(a.sold.keys()).map(|p| p.1))
            .max()
            .unwrap_or(end);
        let slots = far.saturating_sub(end).checked_div(grid).unwrap_or(0);
        let reach = u32::try_from(slots).unwrap_or(u32::MAX).min(crate::exec::MAX_REACH_SLOTS);
        // A reach slot is one more record: shorten the reach so the entry
        // stays within what one entry may weigh
        // ([`crate::primary::MAX_ENTRY_GAS`]) and is recorded.
        let plain_entry = crate::types::Entry { sender: st.terms.seller, recorded_at: end, tx: IorTx::St(st.clone()) };
        let room = crate::primary::MAX_ENTRY_GAS
            .saturating_sub(crate::primary::entry_gas(&plain_entry, self.cfg.params.meter_step_s))
            .saturating_sub(crate::primary::ENTRY_BYTE_GAS * 4)
            / crate::primary::RECORD_GAS;
        let reach = reach.min(u32::try_from(room).unwrap_or(u32::MAX));
        if reach == 0 {
            return Ok(plain_entry.tx);
        }
        // A longer window must also cover every sale recorded without
        // certified readings that its reach slots hold (`exec::realloc`):
        // where the reach would lose an arbitration the period alone wins,
        // the plain ST is sent (both are safe; the seller picks its window).
        let mut s = s;
        let seller = st.terms.seller;
        if let Some(m) = self.view_borsh::<Option<MeterRecord>>("meter_borsh", args(&seller))? {
            s.meters.insert(seller, m);
        }
        let wins = |tx: &IorTx| {
            let e = crate::types::Entry { sender: tx.terms().seller, recorded_at: self.now(), tx: tx.clone() };
            crate::exec::execute_batch(&mut crate::exec::OffChain, &self.cfg.params, &s, std::slice::from_ref(&e))
                .is_ok_and(|t| {
                    t.first().is_some_and(|t| {
                        t.outcome == crate::types::Outcome::StSettled(crate::types::StSettlement::SellerDelivered)
                    })
                })
        };
        let long = IorTx::StReach(st, reach);
        let plain = plain_entry.tx;
        Ok(if !wins(&long) && wins(&plain) { plain } else { long })
    }

    /// `prune_claims` arguments for the oldest claimed-slot records of the
    /// settled state that may be deleted at `now`
    /// ([`crate::state::claim_prunable`]), at most
    /// [`crate::primary::CLAIM_PRUNE_PER_CALL`], with their proof; `None`
    /// when there is none.
    pub fn prune_claims_args(&self, now: Timestamp) -> Result<Option<Vec<u8>>, DriverError> {
        let s = self.settled_state()?;
        let mut old: Vec<crate::types::SlotKey> = s
            .claimed
            .keys()
            .chain(s.slots.keys())
            .filter(|k| crate::state::claim_prunable(&self.cfg.params, k, now))
            .copied()
            .collect();
        old.sort_by_key(|k| (k.dt_start, k.seller, k.dt_end));
        old.dedup();
        old.truncate(crate::primary::CLAIM_PRUNE_PER_CALL);
        if old.is_empty() {
            return Ok(None);
        }
        let keys = old.iter().map(|k| crate::state::RecordKey::Claimed(*k)).collect();
        let witness = crate::state::witness(&s, &keys);
        Ok(Some(args(&crate::primary::PruneClaims { slots: old, witness })))
    }

    /// `dispute` arguments: the disputer's TCRs, the batch's entries and
    /// the records they touch, proved against the settled root.
    pub fn dispute_args(&self, batch: u64, claimed: Vec<crate::types::Tcr>) -> Result<Vec<u8>, DriverError> {
        let h = self.batch_header(batch)?;
        let entries = self.entries(batch)?;
        let witness = crate::state::batch_witness(
            &self.state_before(batch)?,
            &self.batch_queue(&h)?,
            &entries,
            self.cfg.params.meter_step_s,
        );
        Ok(args(&Controversial { batch, claimed, entries, witness }))
    }

    /// The batch a secondary-chain node reads: the header, the entries from
    /// the block data, the state before it ([`Self::state_before`]), the
    /// queue items it applies and the slice its entries read.
    pub fn batch_input(&self, batch: u64) -> Result<BatchInput, DriverError> {
        let h = self.batch_header(batch)?;
        let entries = batch_entries(&self.primary, &h)?;
        let mut input: BatchInput = self.view_borsh("batch_input", args(&BatchData { batch, entries }))?;
        let state = self.state_before(batch)?;
        input.queue = self.batch_queue(&input.header)?;
        let mut full = state.clone();
        crate::state::apply_queue(&mut full, &self.cfg.params, &input.queue)
            .map_err(|e| DriverError::View(format!("queue does not apply: {e}")))?;
        let meters = std::mem::take(&mut input.prestate.meters);
        input.prestate = crate::state::slice_for(&full, &input.entries, self.cfg.params.meter_step_s);
        input.prestate.meters = meters;
        input.state = Some(state);
        if input.tcrs.is_none() && !input.header.overturned {
            input.leaves = batch_leaves(&self.primary, &input.header, &self.cfg.params.domain, &input.entries)?;
            input.tcrs = input.leaves.as_ref().map(|ls| ls.iter().map(|l| l.tcr.clone()).collect());
        }
        Ok(input)
    }

    fn progress(&self) -> Result<(u64, u64), DriverError> {
        self.reader().progress()
    }

    /// Is `call` a dispute of a batch that another disputer already
    /// settled or overturned, and whose reward is not held for a committed
    /// discloser (then it is not sent; a held reward is claimed by sending
    /// the committed dispute, `primary::commit_dispute`)?
    fn dispute_moot(&self, call: &Call) -> Result<bool, DriverError> {
        let Some(batch) = disputed_batch(call)? else { return Ok(false) };
        let h = self.batch_header(batch)?;
        let held = || self.reader().view_json("held_reward", args(&BatchId { batch })).map(|v| v == true);
        Ok((h.state != BatchState::Open || h.overturned) && !held()?)
    }

    fn run_step(&mut self, key: &KeyPair, step: Step) -> Result<Vec<crate::roles::Delegation>, DriverError> {
        self.run_step_paying(key, step, Amount::ZERO, DRIVER_GAS_LIMIT)
    }

    /// As [`Self::run_step`], every primary call but a dispute commitment
    /// paying `value` (a bonded challenge's bond) with gas limit `gas`.
    fn run_step_paying(
        &mut self,
        key: &KeyPair,
        step: Step,
        value: Amount,
        gas: u64,
    ) -> Result<Vec<crate::roles::Delegation>, DriverError> {
        self.faults.extend(step.faults);
        let mut calls = step.calls.into_iter().peekable();
        while let Some(c) = calls.next() {
            match c.target {
                Target::Secondary => {
                    self.secondary_call(key, c.method, c.args)?;
                }
                Target::Primary => {
                    // A commitment goes with the dispute after it
                    // (`roles::committed`): neither is sent when that
                    // dispute is moot.
                    let next_moot = match calls.peek() {
                        Some(d) if c.method == "commit_dispute" => self.dispute_moot(d)?,
                        _ => false,
                    };
                    if next_moot {
                        calls.next();
                        continue;
                    }
                    if self.dispute_moot(&c)? {
                        continue;
                    }
                    let (value, gas) =
                        if c.method == "commit_dispute" { (Amount::ZERO, RECORD_GAS_LIMIT) } else { (value, gas) };
                    let (method, a) = self.with_claimed_pre_root(c.method, c.args)?;
                    self.primary_call_limited(key, method, a, value, gas)?;
                }
            }
        }
        Ok(step.delegations)
    }

    fn executor_for(&self, assigned: &Address) -> Result<usize, DriverError> {
        self.executors.iter().position(|(k, _)| k.address() == *assigned).ok_or(DriverError::UnknownNode(*assigned))
    }

    /// A committed discloser whose batch another party overturned first
    /// (the reward is held for it, `held_batches`) sends its committed
    /// dispute again, rebuilt from the batch as posted, even after a
    /// restart: the batch's posted TCRs are block data, so its validator
    /// re-derives exactly the dispute it committed to. Only the dispute is
    /// sent (its commitment is on chain already, or the claim earns
    /// nothing).
    ///
    /// A claim refused because another address committed earlier and its
    /// priority is not over (`EarlierCommitment`; commitments are hidden,
    /// so a junk one counts too) is sent again at a later `process`, with
    /// back-off ([`held_claim_backoff`]), while the validator's own
    /// commitment is within its reveal window, at most [`MAX_HELD_CLAIMS`]
    /// times; any other refusal or a success ends the claim. The state is
    /// the driver's memory only: after a restart each held batch is tried
    /// afresh.
    fn claim_held(&mut self) -> Result<(), DriverError> {
        let held: Vec<(u64, BatchHeader)> = self.view_borsh("held_batches", vec![])?;
        for (batch, posted) in held {
            let Some(i) = self.validators.iter().position(|(k, _)| k.address() == posted.validator) else { continue };
            let attempts = match self.held_claims.get(&batch) {
                Some(HeldClaim::Done) => continue,
                Some(HeldClaim::Retry { next, .. }) if self.now() < *next => continue,
                Some(HeldClaim::Retry { attempts, .. }) => *attempts,
                None => 0,
            };
            let mut input = self.batch_input(batch)?;
            input.header = posted;
            input.leaves = batch_leaves(&self.primary, &input.header, &self.cfg.params.domain, &input.entries)?;
            input.tcrs = input.leaves.as_ref().map(|ls| ls.iter().map(|l| l.tcr.clone()).collect());
            let step = self.validators[i].1.on_tcrs_recorded(&input);
            let key = self.validators[i].0.clone();
            let mut commitment = None;
            let mut retry = false;
            for c in step.calls.into_iter().filter(|c| c.target == Target::Primary) {
                if c.method == "commit_dispute" {
                    commitment = borsh::from_slice::<Hash32>(&c.args).ok();
                    continue;
                }
                let r = self.driver_call(&key, c.method, c.args, Amount::ZERO)?;
                if let TxStatus::Reverted(why) = &r.status {
                    retry = why.contains(crate::primary::EARLIER_COMMITMENT);
                    break;
                }
            }
            let live_until = match (retry, commitment) {
                (true, Some(c)) => self.commitment_time(&c, &key.address())?.map(|t| t + self.cfg.window_ms()),
                _ => None,
            };
            let next = self.now().saturating_add(held_claim_backoff(self.cfg.window_ms(), attempts));
            let state = match live_until {
                Some(until) if attempts + 1 < MAX_HELD_CLAIMS && next < until => {
                    HeldClaim::Retry { attempts: attempts + 1, next }
                }
                _ => HeldClaim::Done,
            };
            self.held_claims.insert(batch, state);
        }
        Ok(())
    }

    /// When `by` recorded dispute commitment `commitment`, if it is on
    /// chain and unspent.
    fn commitment_time(&self, commitment: &Hash32, by: &Address) -> Result<Option<Timestamp>, DriverError> {
        let v = self.reader().view_json("dispute_commitment", args(&(*commitment, *by)))?;
        Ok(v["time"].as_u64())
    }

    /// [`Mode::ConventionalOr`]: the executors post the TCRs of every
    /// recorded batch after `fin` now, each in a later block (a second
    /// apart) and built on the state the batches before it leave, as a
    /// conventional optimistic rollup posts its batches; each states the
    /// root it builds on (`sc_cr_on`), is judged against it for a whole
    /// window from its own posting, and is final one window after that if
    /// its predecessor settled with that root
    /// ([`crate::primary::PrimaryConfig::pipelined`]).
    /// The assigned validator (the watcher) checks every posting ahead
    /// inside its window — whoever posted it (the driver's executors, an
    /// executor that posted before this run, a replacement) and whenever —
    /// once per posting ([`PostingId`]: a replacement with the same leaves is
    /// another posting, attack r17 [1]), and again when the batch's
    /// turn to settle comes (attack r16 [1]); so do the smart meters, their
    /// delegates and the bonded challenge ([`Self::backup_checks`], attack
    /// r20 [5]). A batch whose executor posts nothing is posted by an
    /// honest stand-in as soon as the contract allows (at once if its
    /// executor is not active, else a window after it closed), and posting
    /// goes on past it (attack r20 [3], [4]).
    fn post_ahead(&mut self, fin: u64, rng: &mut impl Rng) -> Result<(), DriverError> {
        let (next, _) = self.progress()?;
        // First the postings already on chain (before the clock moves).
        self.watch_all_ahead(fin, next, rng)?;
        for b in fin.saturating_add(1)..next {
            let h = self.batch_header(b)?;
            if h.overturned {
                break;
            }
            if h.tcr_root.is_some() {
                continue;
            }
            // A later block (which also closes a batch still recording),
            // once every posting on chain is watched (attack r21 [1]).
            self.watch_before_jump(fin, rng)?;
            let t = self.now() + 1_000;
            self.set_time(t);
            let input = self.batch_input(b)?;
            if self.assigned_active(&input.header)? {
                let i = self.executor_for(&input.header.executor)?;
                let step = self.executors[i].1.on_batch(&input);
                let key = self.executors[i].0.clone();
                self.run_step(&key, step)?;
            }
            // Withheld (its executor silent) or refused (its executor
            // forfeited): an honest stand-in posts it as soon as the
            // contract allows, and posting goes on past it either way:
            // every later posting states the true root it builds on, so
            // none waits for this one (attack r20 [3], [4]: stopping here
            // cost a window per withheld batch, one after another).
            if self.batch_header(b)?.tcr_root.is_none() {
                if crate::mutants::active(crate::mutants::Mutation::PostingStopsAtWithheld) {
                    break;
                }
                if !self.stand_in_withheld(b)? {
                    continue;
                }
            }
            // The assigned watcher checks the batch as soon as it is
            // posted, inside its window (which runs from this posting),
            // not only at its turn to settle: by then the window of a
            // batch posted ahead has closed (attack r15 [4]).
            if !crate::mutants::active(crate::mutants::Mutation::WatchAtTurn) {
                self.watch_posted(b, rng)?;
            }
        }
        Ok(())
    }

    /// Whether `h`'s assigned executor is an active executor.
    fn assigned_active(&self, h: &BatchHeader) -> Result<bool, DriverError> {
        let node = self.reader().view_json("node", args(&h.executor))?;
        Ok(node["active"].as_bool() == Some(true) && node["role"] == serde_json::json!("Executor"))
    }

    /// [`Mode::ConventionalOr`]: the latest deadline (closing plus a
    /// window, plus a millisecond) of the unposted batches after `fin`
    /// whose assigned executor is active and that closed within a
    /// sixteenth of a window of `closed` (0 if none).
    fn withheld_due_with(&self, fin: u64, next: u64, closed: Timestamp) -> Result<Timestamp, DriverError> {
        let w = self.cfg.window_ms();
        let mut until = 0;
        for b in fin.saturating_add(1)..next {
            let h = self.batch_header(b)?;
            let Some(c) = h.closed_at else { break };
            if c > closed.saturating_add(w / 16) {
                break;
            }
            if h.tcr_root.is_none() && h.posted_by.is_none() && !h.overturned && self.assigned_active(&h)? {
                until = until.max(c.saturating_add(w) + 1);
            }
        }
        Ok(until)
    }

    /// [`Mode::ConventionalOr`]: batch `b` has no posting after its
    /// assigned executor's turn. An honest active executor other than the
    /// assigned one stands in as soon as `sc_cr` allows it: at once when
    /// the assigned executor is not active (it forfeited or left), else
    /// once a window has passed since the batch closed. Returns whether the
    /// batch is posted now.
    fn stand_in_withheld(&mut self, b: u64) -> Result<bool, DriverError> {
        let h = self.batch_header(b)?;
        if h.tcr_root.is_some() || h.posted_by.is_some() || h.overturned || h.state != BatchState::Open {
            return Ok(h.tcr_root.is_some());
        }
        let due = match h.closed_at {
            _ if !self.assigned_active(&h)? => true,
            Some(closed) => self.now() > closed.saturating_add(self.cfg.window_ms()),
            None => false,
        };
        let Some(j) = due.then(|| self.honest_stand_in(&h, true)).transpose()?.flatten() else { return Ok(false) };
        let input = self.batch_input(b)?;
        let step = self.executors[j].1.on_batch(&input);
        let key = self.executors[j].0.clone();
        self.run_step(&key, step)?;
        Ok(self.batch_header(b)?.tcr_root.is_some())
    }

    /// [`Mode::ConventionalOr`]: an honest executor replaces every void
    /// standing posting of batches `fin..next` at once, from the next batch
    /// to settle upwards, with the batch's TCRs on the root the contract
    /// says a replacement must claim (view `void_posting`: the settled root
    /// for `fin`, else the predecessor's standing post-state root), where
    /// that root is the state the batches before it really leave (an
    /// honest executor never builds on a forged predecessor's root; such a
    /// successor waits for the overturn). Attack r18 [2]: left standing, a
    /// void posting of the next batch to settle cost a whole window (its
    /// window ran out before `finalize` took it back, then the batch's own
    /// window ran again), free and repeatable by its executor; and an
    /// executor's own void posting ahead made the honest postings after it
    /// void, each replaced by it and taken back in turn. Replaced at once,
    /// the batch's window runs from the replacement, which its poster
    /// cannot replace again (it is not void). The stand-in is an honest
    /// active executor other than the void poster (the batch's assigned
    /// executor first), the void poster itself only when no other is.
    fn replace_void_postings(&mut self, fin: u64, next: u64, rng: &mut impl Rng) -> Result<(), DriverError> {
        if self.cfg.mode != Mode::ConventionalOr
            || crate::mutants::active(crate::mutants::Mutation::VoidNextWaitsWindow)
        {
            return Ok(());
        }
        for b in fin..next {
            let h = self.batch_header(b)?;
            if h.tcr_root.is_none() || h.overturned || h.state != BatchState::Open {
                continue;
            }
            let must: Option<Hash32> = self.view_borsh("void_posting", args(&BatchId { batch: b }))?;
            let Some(must) = must else { continue };
            if must != crate::state::state_root(&self.state_before(b)?) {
                continue;
            }
            let Some(j) = self.honest_stand_in(&h, false)? else { return Ok(()) };
            let mut input = self.batch_input(b)?;
            input.tcrs = None;
            input.leaves = None;
            let step = self.executors[j].1.on_batch(&input);
            let key = self.executors[j].0.clone();
            self.run_step(&key, step)?;
            if b > fin && !crate::mutants::active(crate::mutants::Mutation::WatchAtTurn) {
                self.watch_posted(b, rng)?;
            }
        }
        Ok(())
    }

    /// An honest, active executor of this driver to replace `h`'s void
    /// posting: `h`'s assigned executor, else the first other one, not the
    /// void poster unless no other qualifies; with `not_assigned`, never
    /// `h`'s assigned executor (a stand-in for a withheld batch).
    fn honest_stand_in(&self, h: &BatchHeader, not_assigned: bool) -> Result<Option<usize>, DriverError> {
        let mut order: Vec<usize> = (0..self.executors.len()).collect();
        order.sort_by_key(|&i| {
            let k = self.executors[i].0.address();
            (Some(k) == h.posted_by, k != h.executor)
        });
        for i in order {
            let (k, x) = &self.executors[i];
            if x.behaviour != ExecutorBehaviour::Honest || (not_assigned && k.address() == h.executor) {
                continue;
            }
            let node = self.reader().view_json("node", args(&k.address()))?;
            if node["active"].as_bool() == Some(true) {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// [`Mode::ConventionalOr`]: the watcher checks every standing posting
    /// of batches `fin + 1..next` it has not checked yet (attack r16 [1]:
    /// a batch its executor posted ahead before this run).
    fn watch_all_ahead(&mut self, fin: u64, next: u64, rng: &mut impl Rng) -> Result<(), DriverError> {
        if crate::mutants::active(crate::mutants::Mutation::WatchOwnPostingsOnly) {
            return Ok(());
        }
        let due = self.unwatched_ahead(fin, next)?;
        self.watch_together(&due, rng)
    }

    /// The batches `fin + 1..next` whose standing posting the watcher has
    /// not checked yet, in order.
    fn unwatched_ahead(&self, fin: u64, next: u64) -> Result<Vec<u64>, DriverError> {
        let mut due = Vec::new();
        for b in fin.saturating_add(1)..next {
            let h = self.batch_header(b)?;
            if h.overturned || h.state != BatchState::Open {
                continue;
            }
            let Some(posting) = posting_id(&h) else { continue };
            if !self.watched.contains(&posting) {
                due.push(b);
            }
        }
        Ok(due)
    }

    /// [`Mode::ConventionalOr`]: the guard watches the postings of
    /// `batches` together (attack r23 [1]): every assigned watcher's
    /// dispute commitment goes into one block and every reveal into the
    /// next ([`Self::run_steps_together`]), so k due postings cost two
    /// blocks, not 2k, and the disputes of earlier-ending forgeries cannot
    /// run out a later posting's window. The backup checkers (smart meters,
    /// their delegates, the bonded challenge: [`Self::backup_plan`]) of
    /// every due posting its watcher does not dispute send in that same
    /// pass (attack r24 [1]: sent one posting after the other, two blocks
    /// each, the backup dispute of a colluding watcher's forged `fin` ran
    /// out the window of a forgery ahead that ended first); the postings a
    /// watcher disputed that still stand after it (the dispute failed or
    /// was refused) are backed up in the next pass ([`Self::guard_passes`]).
    /// Nothing is sent when no one disputes.
    fn watch_together(&mut self, batches: &[u64], rng: &mut impl Rng) -> Result<(), DriverError> {
        use crate::mutants::{active, Mutation};
        if active(Mutation::GuardDisputesOneByOne) {
            for &b in batches {
                self.watch_posted(b, rng)?;
            }
            return Ok(());
        }
        if active(Mutation::BackupChecksAtTurn) {
            return self.guard_passes(batches, Checks::Watcher, None, rng);
        }
        if active(Mutation::BackupDisputesOneByOne) {
            self.guard_passes(batches, Checks::Watcher, None, rng)?;
            for &b in batches {
                self.guard_passes(&[b], Checks::Backup, None, rng)?;
            }
            return Ok(());
        }
        self.guard_passes(batches, Checks::Both, None, rng)
    }

    /// [`Mode::ConventionalOr`] (attack r25): the guard's passes over the
    /// standing postings of `batches`, each pass sending its planned
    /// checks together ([`Self::run_steps_together`]). A posting counts as
    /// watched ([`Self::watched`]) once its watcher has nothing to send
    /// or its dispute is on chain, and as backed ([`Self::backed`]) once
    /// its meters alarm on nothing or every check that could be sent has
    /// been judged on chain; a posting that no longer stands counts as
    /// both. Never at planning: before, every due posting was marked when
    /// the pass was planned and one refusal at submission (the second of
    /// one trader's bonds not covered by its wallet, a full mempool)
    /// aborted the pass, and the posting was never checked again (attack
    /// r25 [1], [3]). A step refused at submission is left out and the rest
    /// is sent; the next pass plans what is still due: the backup checks of
    /// a posting whose watcher's dispute was refused or failed, and the
    /// bonded challenge of the next alarmed owner (in the fixed order of
    /// [`Self::backup_plan`]) when the previous one's is not on chain or
    /// the posting still stands (attack r25 [2]), at most
    /// [`MAX_GUARD_PASSES`] passes. A posting still due after them, its
    /// checks refused at submission, stops the run with
    /// [`DriverError::Unchecked`], before any clock moves past it; the next
    /// [`Self::process`] checks it again. `at_turn`: `process`'s backup
    /// checks of the batch being settled, at its turn, on that input
    /// (checked in the first pass whatever its posting's state, as
    /// before).
    fn guard_passes(
        &mut self,
        batches: &[u64],
        checks: Checks,
        mut at_turn: Option<&BatchInput>,
        rng: &mut impl Rng,
    ) -> Result<(), DriverError> {
        let at_plan = crate::mutants::active(crate::mutants::Mutation::WatchedAtPlan);
        let watch = checks != Checks::Backup;
        let backup = checks != Checks::Watcher;
        // Why a posting's watcher's dispute was refused in this run: its
        // posting gets the backup checks in the next pass.
        let mut watcher_refused: BTreeMap<u64, String> = BTreeMap::new();
        let mut backup_refused: BTreeMap<u64, String> = BTreeMap::new();
        let mut tries: BTreeMap<u64, BackupTries> = BTreeMap::new();
        for _ in 0..MAX_GUARD_PASSES {
            let mut steps: Vec<Planned> = Vec::new();
            // What each payer's bonds of this pass reserve in its wallet.
            let mut reserved: BTreeMap<Address, u128> = BTreeMap::new();
            // (batch, posting, watcher's dispute planned, the backup's
            // disputes planned and bonder, if backed up in this pass).
            type Due = (u64, PostingId, bool, Option<(bool, Option<Address>)>);
            let mut planned: Vec<Due> = Vec::new();
            for &b in batches {
                let input = match at_turn.take() {
                    Some(input) => input.clone(),
                    None if self.standing(b)? => self.batch_input(b)?,
                    None => continue,
                };
                let p = posting_id(&input.header);
                let mut watcher_disputes = false;
                if watch && p.is_some_and(|p| !self.watched.contains(&p)) && !watcher_refused.contains_key(&b) {
                    if let Some(i) = self.validators.iter().position(|(k, _)| k.address() == input.header.validator) {
                        let step = self.validators[i].1.watch(&input);
                        watcher_disputes = self.disputes(&step)?;
                        let key = self.validators[i].0.clone();
                        steps.push(Planned {
                            key,
                            step,
                            value: Amount::ZERO,
                            batch: b,
                            part: Part::Watcher,
                            gas: DRIVER_GAS_LIMIT,
                        });
                    }
                    if let Some(p) = p.filter(|_| at_plan || !watcher_disputes) {
                        self.watched.insert(p);
                    }
                }
                let mut backed = None;
                if backup && p.is_none_or(|p| !self.backed.contains(&p)) && !watcher_disputes {
                    let t = tries.entry(b).or_default().clone();
                    let plan = self.backup_plan(b, &input, &t, &mut reserved, rng)?;
                    let done = !plan.disputes && !plan.deferred && !plan.exhausted && !plan.unpaid;
                    if plan.unpaid {
                        backup_refused.entry(b).or_insert_with(|| {
                            "its meters alarm and no alarmed owner's wallet covers the bonded challenge".to_string()
                        });
                    }
                    if let Some(p) = p.filter(|_| at_plan || done) {
                        self.backed.insert(p);
                    }
                    if plan.exhausted && !plan.disputes {
                        // Every alarmed owner that could pay was tried:
                        // judged on chain (the posting stands) or refused.
                        let judged = t.bonders.values().any(|on_chain| *on_chain);
                        if let Some(p) = p.filter(|_| judged) {
                            self.backed.insert(p);
                        }
                    }
                    backed = Some((plan.disputes, plan.bonder));
                    steps.extend(plan.steps);
                }
                if let Some(p) = p {
                    planned.push((b, p, watcher_disputes, backed));
                }
            }
            if steps.is_empty() {
                break;
            }
            let sent = self.run_steps_together(steps)?;
            let mut refused: BTreeMap<(u64, Part), String> = BTreeMap::new();
            for s in sent {
                if let Some(why) = s.refused {
                    refused.entry((s.batch, s.part)).or_insert(why);
                }
            }
            for (b, p, watcher_disputes, backed) in planned {
                let h = self.batch_header(b)?;
                let stands = posting_id(&h) == Some(p) && h.state == BatchState::Open && !h.overturned;
                if !stands {
                    self.watched.insert(p);
                    self.backed.insert(p);
                    continue;
                }
                if watcher_disputes {
                    match refused.get(&(b, Part::Watcher)) {
                        Some(why) => {
                            watcher_refused.insert(b, why.clone());
                        }
                        // On chain, and the posting stands: the backup
                        // checks follow in the next pass.
                        None => {
                            self.watched.insert(p);
                        }
                    }
                }
                if let Some((true, bonder)) = backed {
                    let t = tries.entry(b).or_default();
                    t.delegates = true;
                    if let Some(o) = bonder {
                        let why = refused.get(&(b, Part::Bond(o)));
                        t.bonders.insert(o, why.is_none());
                        if let Some(why) = why {
                            backup_refused.insert(b, why.clone());
                        }
                    }
                    if let Some(why) = refused.get(&(b, Part::Delegate)) {
                        backup_refused.entry(b).or_insert_with(|| why.clone());
                    }
                }
            }
        }
        // A posting still due: its checks could not be sent.
        for &b in batches {
            let h = self.batch_header(b)?;
            let Some(p) = posting_id(&h).filter(|_| h.state == BatchState::Open && !h.overturned) else { continue };
            let unwatched = watch && !self.watched.contains(&p);
            let unbacked = backup && !self.backed.contains(&p);
            if unwatched || unbacked {
                let reason = watcher_refused
                    .get(&b)
                    .or(backup_refused.get(&b))
                    .cloned()
                    .unwrap_or_else(|| format!("still due after {MAX_GUARD_PASSES} passes"));
                return Err(DriverError::Unchecked { batch: b, reason });
            }
        }
        Ok(())
    }

    /// Whether `step` sends a dispute that is not moot.
    fn disputes(&self, step: &Step) -> Result<bool, DriverError> {
        for c in &step.calls {
            if disputed_batch(c)?.is_some() && !self.dispute_moot(c)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether batch `b` has a standing posting (posted, open, not
    /// overturned).
    fn standing(&self, b: u64) -> Result<bool, DriverError> {
        let h = self.batch_header(b)?;
        Ok(h.tcr_root.is_some() && h.state == BatchState::Open && !h.overturned)
    }

    /// Runs several parties' steps with their primary-chain calls sent
    /// together: every dispute commitment (`commit_dispute`) of every step
    /// in one block, then every other primary call (the reveals) in the
    /// next blocks, the disputes of the posting whose window ends first
    /// first (attack r24: sybils post their forgeries in reverse batch
    /// order), else in step order; a commitment and its dispute are left
    /// out together when the dispute is moot (as [`Self::run_step`]) or
    /// another dispute of the same batch goes before it in this pass (the
    /// first overturns it, the rest would be moot). A call refused at
    /// submission is left out (a reveal whose commitment was refused too)
    /// and the rest is sent (attack r25). Secondary-chain calls go as they
    /// come. No block is sealed when there is nothing to send. Returns
    /// what became of each step's primary calls, in step order.
    fn run_steps_together(&mut self, steps: Vec<Planned>) -> Result<Vec<StepSent>, DriverError> {
        let mut sent: Vec<StepSent> = Vec::with_capacity(steps.len());
        // (step, call, value) of each commitment.
        let mut commits: Vec<(usize, KeyPair, Call, Amount)> = Vec::new();
        // (window end, step, its commitment, call, value) of each reveal.
        type Reveal = (Timestamp, usize, Option<usize>, KeyPair, Call, Amount, u64);
        let mut reveals: Vec<Reveal> = Vec::new();
        let mut queued: BTreeSet<u64> = BTreeSet::new();
        for (si, Planned { key, step, value, batch, part, gas }) in steps.into_iter().enumerate() {
            sent.push(StepSent { batch, part, refused: None });
            self.faults.extend(step.faults);
            let mut calls = step.calls.into_iter().peekable();
            let mut commitment = None;
            while let Some(c) = calls.next() {
                match c.target {
                    Target::Secondary => {
                        self.secondary_call(&key, c.method, c.args)?;
                    }
                    Target::Primary if c.method == "commit_dispute" => {
                        let skip = match calls.peek() {
                            Some(d) => self.dispute_moot(d)? || disputed_batch(d)?.is_some_and(|b| queued.contains(&b)),
                            None => false,
                        };
                        if skip {
                            calls.next();
                            continue;
                        }
                        commitment = Some(commits.len());
                        commits.push((si, key.clone(), c, Amount::ZERO));
                    }
                    Target::Primary => {
                        let batch = disputed_batch(&c)?;
                        if self.dispute_moot(&c)? || batch.is_some_and(|b| queued.contains(&b)) {
                            commitment = None;
                            continue;
                        }
                        let end = match batch {
                            Some(b) => {
                                queued.insert(b);
                                self.window_start(&self.batch_header(b)?)?
                                    .map_or(Timestamp::MAX, |s| s.saturating_add(self.cfg.window_ms()))
                            }
                            None => Timestamp::MAX,
                        };
                        reveals.push((end, si, commitment.take(), key.clone(), c, value, gas));
                    }
                }
            }
        }
        // Stable: equal window ends keep their step order.
        reveals.sort_by_key(|r| r.0);
        let steps_of: Vec<usize> = commits.iter().map(|c| c.0).collect();
        let done = self.send_together(commits.into_iter().map(|(_, k, c, v)| (k, c, v, RECORD_GAS_LIMIT)).collect())?;
        let mut calls = Vec::with_capacity(reveals.len());
        let mut reveal_steps = Vec::with_capacity(reveals.len());
        for (si, r) in steps_of.iter().zip(&done) {
            if let Err(why) = r {
                sent[*si].refused.get_or_insert_with(|| why.clone());
            }
        }
        for (_, si, commitment, key, c, value, gas) in reveals {
            if let Some(Err(why)) = commitment.map(|i| &done[i]) {
                sent[si].refused.get_or_insert_with(|| format!("its commitment: {why}"));
                continue;
            }
            reveal_steps.push(si);
            calls.push((key, c, value, gas));
        }
        let done = self.send_together(calls)?;
        for (si, r) in reveal_steps.into_iter().zip(done) {
            if let Err(why) = r {
                sent[si].refused.get_or_insert(why);
            }
        }
        Ok(sent)
    }

    /// Submits `calls` (each paying its value, with its gas limit) on the primary contract
    /// without sealing between them, then seals: one block for as many as
    /// the block takes ([`DRIVER_GAS_LIMIT`] reserves a third of a
    /// development block), and another for the rest until every call is
    /// included. A call refused at submission is left out, the rest sent
    /// (attack r25: one refusal aborted the guard's pass), one refused for
    /// a full mempool sent again at a higher gas price
    /// ([`Self::submit_repriced`]). Returns, for each call, `Ok` once it
    /// is included or why it was refused. Nothing is sealed when no call
    /// was admitted.
    fn send_together(
        &mut self,
        calls: Vec<(KeyPair, Call, Amount, u64)>,
    ) -> Result<Vec<Result<(), String>>, DriverError> {
        let mut out: Vec<Result<(), String>> = Vec::with_capacity(calls.len());
        let mut pending = Vec::with_capacity(calls.len());
        for (i, (key, c, value, gas_limit)) in calls.into_iter().enumerate() {
            let (method, a) = self.with_claimed_pre_root(c.method, c.args)?;
            match self.submit_repriced(&key, method, a, value, gas_limit, None)? {
                Ok(h) => {
                    out.push(Ok(()));
                    pending.push((i, method, h));
                }
                Err(why) => out.push(Err(format!("{method} of {} refused: {why}", key.address()))),
            }
        }
        while !pending.is_empty() {
            let hashes: Vec<Hash32> = pending.iter().map(|p| p.2).collect();
            self.seal_submitted(&hashes, "the checks' calls")?;
            let before = pending.len();
            let mut left = Vec::with_capacity(before);
            for (i, method, h) in pending {
                match self.primary.receipt(&h)? {
                    Some(r) => self.gas.push(GasRecord {
                        target: Target::Primary,
                        method: method.into(),
                        gas: r.gas_used,
                        success: r.status == TxStatus::Success,
                    }),
                    None => left.push((i, method, h)),
                }
            }
            if left.len() == before {
                return Err(DriverError::NotIncluded(left[0].1));
            }
            pending = left;
        }
        Ok(out)
    }

    /// Submits one primary-contract call of the guard at the driver's gas
    /// price; refused for a full mempool, at double the price, at most
    /// [`MAX_GUARD_REPRICES`] times (attack r25 [3]: a flood at the lowest
    /// price refused the guard's commitment, and the pass was lost), and
    /// refused at the dearest price too, after a seal, from the driver's
    /// price again, at most [`MAX_FULL_SEALS`] times (attack r26 [1]; as
    /// [`submit_making_room`]: the seal includes the flood and charges
    /// its senders; calls admitted before it in this pass are included
    /// with it). The
    /// mempool takes a dearer transaction in place of the cheapest other
    /// sender's; the sender's balance bounds the price as well. Returns
    /// the transaction's hash, or why the chain refused it.
    ///
    /// With `until` (a posting's bound, [`Self::call_before`]) each seal is
    /// one block, none at or past `until` (attack r27 [2]).
    fn submit_repriced(
        &mut self,
        key: &KeyPair,
        method: &str,
        a: Vec<u8>,
        value: Amount,
        gas_limit: u64,
        until: Option<Timestamp>,
    ) -> Result<Result<Hash32, String>, DriverError> {
        let mut price = BASE_GAS_PRICE;
        let mut reprices = 0;
        let mut seals = 0;
        let not_repriced = crate::mutants::active(crate::mutants::Mutation::GuardNotRepriced);
        loop {
            let nonce = self.primary.next_nonce(&key.address());
            let tx = primary_call_tx(self.primary.chain_id(), key, nonce, (gas_limit, price), (method, &a, value));
            match self.primary.submit(&tx) {
                Ok(h) => return Ok(Ok(h)),
                Err(ClientError::Submit(SubmitError::MempoolFull { .. }))
                    if reprices < MAX_GUARD_REPRICES && !not_repriced =>
                {
                    reprices += 1;
                    price = Amount(price.0.saturating_mul(2));
                }
                // Outbid at the dearest price too (attack r26 [1]: a flood
                // at the top price, never included, kept every check out
                // for free): seal, so the flood is included and paid for,
                // and send again from the driver's price.
                Err(ClientError::Submit(SubmitError::MempoolFull { .. }))
                    if seals < MAX_FULL_SEALS
                        && !not_repriced
                        && !crate::mutants::active(crate::mutants::Mutation::FullMempoolNotSealed) =>
                {
                    seals += 1;
                    match until {
                        Some(end) => {
                            if !self.seal_block_before(end)? {
                                return Ok(Err(format!("the mempool stayed full until {end}")));
                            }
                        }
                        None => self.seal_submitted(&[], method)?,
                    }
                    (price, reprices) = (BASE_GAS_PRICE, 0);
                }
                Err(ClientError::Submit(e)) => return Ok(Err(e.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
    }
    /// [`Mode::ConventionalOr`]: the guard run before the driver moves the
    /// clock ([`crate::primary::PrimaryConfig::pipelined`], attack r21
    /// [1]): every standing posting after `fin` on chain that the watcher
    /// has not checked yet is watched now, by the assigned watcher and the
    /// backup checkers ([`Self::watch_posted`]), inside its window, however
    /// it got there (an executor's posting ahead made before the run or
    /// between turns). Called at the top of each turn of
    /// [`Self::process`] and immediately before each of its clock jumps
    /// (closing the batch, waiting out a withheld batch, the assigned
    /// validator's turn, the end of the window, each later block of
    /// [`Self::post_ahead`]), and before the held claims' calls at the
    /// start of [`Self::process`]. Without it a withheld batch made the
    /// driver jump a whole window before it looked at any posting ahead,
    /// and a forgery posted ahead before the run settled with every
    /// validator honest. The posting of `fin` itself is watched here too
    /// once its window would end within [`GUARD_BLOCKS_PER_BATCH`] seconds
    /// per batch after it (plus one) of now, after the unwatched postings
    /// ahead whose windows end before it and before the rest (attack r22
    /// [1]: `post_ahead`'s blocks ran out the window of a forged posting of
    /// `fin` made before the run, and its root settled). `fin` and the
    /// postings ahead are watched together ([`Self::watch_together`]:
    /// every dispute commitment in one block, every reveal in the next;
    /// attack r23 [1]: one dispute after the other, two blocks each, the
    /// disputes of earlier-ending forgeries ahead ran out `fin`'s window).
    fn watch_before_jump(&mut self, fin: u64, rng: &mut impl Rng) -> Result<(), DriverError> {
        if self.cfg.mode != Mode::ConventionalOr
            || crate::mutants::active(crate::mutants::Mutation::WatchAfterJump)
            || crate::mutants::active(crate::mutants::Mutation::WatchAtTurn)
        {
            return Ok(());
        }
        let (next, _) = self.progress()?;
        // The batch being settled too, when its window would run out
        // within the margin (attack r22 [1]); ahead of the postings after
        // it whose windows end later (ascending order of window end).
        let margin = GUARD_BLOCKS_PER_BATCH.saturating_mul(next.saturating_sub(fin).saturating_add(1)) * 1_000;
        let h = self.batch_header(fin)?;
        let fin_due = match (posting_id(&h), self.window_start(&h)?) {
            (Some(p), Some(start)) if h.state == BatchState::Open && !h.overturned && !self.watched.contains(&p) => {
                let end = start.saturating_add(self.cfg.window_ms());
                (end <= self.now().saturating_add(margin)).then_some(end)
            }
            _ => None,
        };
        let Some(fin_end) = fin_due.filter(|_| !crate::mutants::active(crate::mutants::Mutation::FinLeftUnwatched))
        else {
            return self.watch_all_ahead(fin, next, rng);
        };
        if !crate::mutants::active(crate::mutants::Mutation::GuardDisputesOneByOne) {
            // Attack r23 [1]: `fin` and every unwatched posting ahead are
            // watched together, their disputes in two blocks in all.
            let mut due = vec![fin];
            if !crate::mutants::active(crate::mutants::Mutation::WatchOwnPostingsOnly) {
                due.extend(self.unwatched_ahead(fin, next)?);
            }
            return self.watch_together(&due, rng);
        }
        // Postings after `fin` whose windows end first are watched first.
        let mut earlier = Vec::new();
        if !crate::mutants::active(crate::mutants::Mutation::WatchOwnPostingsOnly) {
            for b in fin.saturating_add(1)..next {
                let h = self.batch_header(b)?;
                if h.overturned || h.state != BatchState::Open {
                    continue;
                }
                let (Some(p), Some(start)) = (posting_id(&h), self.window_start(&h)?) else { continue };
                if !self.watched.contains(&p) && start.saturating_add(self.cfg.window_ms()) < fin_end {
                    earlier.push((start, b));
                }
            }
        }
        earlier.sort();
        for (_, b) in earlier {
            let h = self.batch_header(b)?;
            if h.overturned || h.state != BatchState::Open || posting_id(&h).is_none_or(|p| self.watched.contains(&p)) {
                continue;
            }
            self.watch_posted(b, rng)?;
        }
        let h = self.batch_header(fin)?;
        if h.state == BatchState::Open && !h.overturned && posting_id(&h).is_some_and(|p| !self.watched.contains(&p)) {
            self.watch_posted(fin, rng)?;
        }
        self.watch_all_ahead(fin, next, rng)
    }

    /// [`Mode::ConventionalOr`]: batch `b`'s assigned validator (the
    /// baseline's watcher) checks its posted TCRs now and challenges them
    /// if they are wrong; then, inside the same window, the backup
    /// checkers ([`Self::backup_checks`]: smart meters, their delegates,
    /// the bonded challenge) check the posting still standing (attack r20
    /// [5]: one colluding watcher must not be enough). Marked checked only
    /// once its checks are on chain ([`Self::guard_passes`]).
    fn watch_posted(&mut self, b: u64, rng: &mut impl Rng) -> Result<(), DriverError> {
        let checks = match crate::mutants::active(crate::mutants::Mutation::BackupChecksAtTurn) {
            true => Checks::Watcher,
            false => Checks::Both,
        };
        self.guard_passes(&[b], checks, None, rng)
    }

    /// The backup checkers of §3.3.4 and issue 11 item 2 on batch `b`'s
    /// standing posting (`input`): every smart meter whose owner the batch
    /// names compares its TCRs, every meter checks the posted state root,
    /// an alarmed meter privately delegates validators, which dispute, and
    /// if every delegate stays silent an alarmed meter's owner challenges
    /// with a bond. In [`Mode::ConventionalOr`] a posting ahead
    /// is checked so as soon as it is posted, inside its own window
    /// ([`Self::watch_posted`]; attack r20 [5]: at the batch's turn, when
    /// its predecessor has settled, the window of a batch posted with or
    /// before its predecessor is over, and its assigned watcher alone stood
    /// between a forged root and settlement), each posting until its
    /// checks are on chain ([`Self::backed`], [`Self::guard_passes`]);
    /// in [`Mode::Ior`] at the batch's turn, one step after the other.
    fn backup_checks(&mut self, b: u64, input: &BatchInput, rng: &mut impl Rng) -> Result<(), DriverError> {
        if self.cfg.mode == Mode::ConventionalOr {
            return self.guard_passes(&[b], Checks::Backup, Some(input), rng);
        }
        let plan = self.backup_plan(b, input, &BackupTries::default(), &mut BTreeMap::new(), rng)?;
        for Planned { key, step, value, gas, .. } in plan.steps {
            self.run_step_paying(&key, step, value, gas)?;
        }
        Ok(())
    }

    /// What the backup checkers of [`Self::backup_checks`] send on batch
    /// `b`'s standing posting (`input`) in one pass, decided without
    /// sending anything: the delegates' steps (their faults already
    /// recorded) and the bonded challenge (with its bond), in the order
    /// they are sent one by one. The checks stop, and no bond is posted,
    /// once a planned dispute would overturn the posting: an honest
    /// delegate's (every validator here either disputes a wrong posting
    /// rightly or stays silent), as when each was sent at once; after a
    /// pass of this run in which they did not (`tries.delegates`), only
    /// the bonded challenge is planned (and the faults are not recorded
    /// again).
    ///
    /// The bonded challenger (attack r25 [1], [2]) is the first owner whose
    /// meter alarmed, meters whose owner the batch names first, in the
    /// meters' order, that has not challenged this posting in this run
    /// (`tries.bonders`) and whose wallet covers the bond and its two
    /// calls' fee reservation at the driver's gas price beside the other
    /// bonds it pays in this pass (`reserved`, updated): an owner that
    /// cannot pay, or whose challenge did not get on chain, is followed by
    /// the next (before, only the first alarmed owner ever bonded: a sybil
    /// trader of the forger's that could not, or would not, left the
    /// forgery to settle; and one trader's bonds of every due posting were
    /// sent in one pass, the second refused for its balance). An owner
    /// that could pay alone but pays another bond in this pass defers the
    /// challenge to the next pass (`deferred`, when no other owner takes
    /// it): its first bond comes back with its reward.
    fn backup_plan(
        &mut self,
        b: u64,
        input: &BatchInput,
        tries: &BackupTries,
        reserved: &mut BTreeMap<Address, u128>,
        rng: &mut impl Rng,
    ) -> Result<BackupPlan, DriverError> {
        let mut plan = BackupPlan::default();
        let again = tries.delegates;
        let faults_before = self.faults.len();
        let mut overturns = false;
        let validators: Vec<Address> = self.validators.iter().map(|(k, _)| k.address()).collect();
        // Every honest meter computes the same TCRs: compute them once.
        let shared = match crate::exec::execute_batch(
            &mut crate::exec::OffChain,
            &self.cfg.params,
            &input.prestate,
            &input.entries,
        ) {
            Ok(t) => Some(t),
            Err(e) => {
                let reason = e.to_string();
                for owner in self.meters.keys() {
                    self.faults.push(Fault::ExecutionFailed { batch: b, observer: *owner, reason: reason.clone() });
                }
                None
            }
        };
        // Every meter also checks the posted state root, which commits
        // to its owner's record even where no entry names the owner.
        let roots_ok = shared.is_none() || crate::roles::posted_state_ok(&self.cfg.params, input) != Some(false);
        // Meters whose owner the batch names act first; the others only
        // on a wrong root that is still standing.
        let (mut owners, others): (Vec<Address>, Vec<Address>) =
            self.meters.keys().copied().partition(|a| self.meters[a].involved(input));
        owners.extend(others);
        let mut alarmed = Vec::new();
        for owner in owners.iter().filter(|_| shared.is_some()) {
            let involved = self.meters.get(owner).is_some_and(|m| m.involved(input));
            if !involved {
                if roots_ok {
                    break;
                }
                let h = self.batch_header(b)?;
                if h.state != BatchState::Open || h.overturned || overturns {
                    break;
                }
            }
            let step = match (self.meters.get_mut(owner), &shared) {
                (Some(m), Some(own)) if involved => {
                    let s = m.on_tcrs_computed(input, own, &validators, rng);
                    if s.faults.is_empty() {
                        m.on_roots_checked(input, roots_ok, &validators, rng)
                    } else {
                        s
                    }
                }
                (Some(m), Some(_)) if !roots_ok => m.on_roots_checked(input, roots_ok, &validators, rng),
                _ => continue,
            };
            if !step.faults.is_empty() {
                alarmed.push(*owner);
            }
            self.faults.extend(step.faults.clone());
            // The delegates had their pass in this run: the bond follows.
            if again {
                continue;
            }
            for d in step.delegations {
                let Some(i) = validators.iter().position(|a| *a == d.validator) else { continue };
                let mut s = self.validators[i].1.on_delegation(input);
                self.faults.append(&mut s.faults);
                let key = self.validators[i].0.clone();
                if !overturns {
                    overturns = s.calls.iter().any(|c| matches!(disputed_batch(c), Ok(Some(d)) if d == b));
                }
                if !plan.disputes {
                    plan.disputes = self.disputes(&s)?;
                }
                plan.steps.push(Planned {
                    key,
                    step: s,
                    value: Amount::ZERO,
                    batch: b,
                    part: Part::Delegate,
                    gas: DRIVER_GAS_LIMIT,
                });
            }
        }
        if again {
            // Recorded in this run's first pass.
            self.faults.truncate(faults_before);
        }
        // If every delegate stayed silent, an alarmed meter's owner
        // challenges itself with a bond (issue 11 item 2).
        let Some(own) = &shared else { return Ok(plan) };
        let h = self.batch_header(b)?;
        if h.state != BatchState::Open || h.overturned || overturns {
            return Ok(plan);
        }
        let only_first = crate::mutants::active(crate::mutants::Mutation::OnlyFirstOwnerBonds);
        let candidates = if only_first { &alarmed[..alarmed.len().min(1)] } else { &alarmed[..] };
        if candidates.is_empty() {
            return Ok(plan);
        }
        let bond = self.cfg.challenge_bond;
        let a = self.dispute_args(b, own.clone())?;
        // Sized to what this dispute can cost, not the driver's 100 M
        // (attack r26 [3]: 101 coin of fee reservation passed over every
        // owner holding 100 coin, for a dispute of about 244,000 gas).
        let gas = dispute_gas_limit(&self.cfg.params, input, a.len());
        // What the commitment can spend (its limit: it prunes up to
        // `COMMITMENT_PRUNE_PER_CALL` expired commitments, so its use
        // varies), then the bond and the reveal's fee reservation: the
        // reveal is sent once the commitment is included, its reservation
        // released and only its use charged, so the two are not held at
        // once, but what the commitment spends is gone before the reveal
        // (attack r27 [1]: the dispute's limit, four times its use, passed
        // over owners that could pay).
        let need = bond.0.saturating_add(u128::from(RECORD_GAS_LIMIT.saturating_add(gas)) * BASE_GAS_PRICE.0);
        let mut tried = false;
        for owner in candidates {
            let Some(key) = self.traders.get(owner).cloned() else { continue };
            if tries.bonders.contains_key(owner) {
                tried = true;
                continue;
            }
            let have = self.primary.account(owner).balance.0;
            let taken = reserved.get(owner).copied().unwrap_or(0);
            if !only_first {
                if have < need {
                    continue;
                }
                if have < taken.saturating_add(need) {
                    plan.deferred = true;
                    continue;
                }
            }
            reserved.insert(*owner, taken.saturating_add(need));
            // Committed first, so a copy earns its sender nothing.
            let c = crate::types::dispute_commitment(&crate::types::dispute_digest("dispute", &a), &key.address());
            let step = Step {
                calls: vec![Call::primary("commit_dispute", args(&c)), Call::primary("dispute", a)],
                ..Step::default()
            };
            plan.steps.push(Planned { key, step, value: bond, batch: b, part: Part::Bond(*owner), gas });
            plan.disputes = true;
            plan.deferred = false;
            plan.bonder = Some(*owner);
            self.bonded_challenges += 1;
            return Ok(plan);
        }
        plan.exhausted = tried && !plan.deferred;
        // Alarmed owners, and none could pay (attack r26 [3]: the posting
        // counted as backed with no check on chain, and the clock passed
        // it): the posting is not backed, and stops the run unchecked.
        plan.unpaid =
            !tried && !plan.deferred && !crate::mutants::active(crate::mutants::Mutation::BackedWithoutChallenge);
        Ok(plan)
    }

    /// [`Mode::Ior`]: batch `fin`'s standing posting and its window end,
    /// the bound of its checks' blocks ([`Self::check_due`]).
    fn check_window(&self, fin: u64) -> Result<Option<(u64, Timestamp)>, DriverError> {
        if self.cfg.mode != Mode::Ior {
            return Ok(None);
        }
        let h = self.batch_header(fin)?;
        if h.tcr_root.is_none() || h.state != BatchState::Open || h.overturned {
            return Ok(None);
        }
        Ok(self.window_start(&h)?.map(|s| (fin, s.saturating_add(self.cfg.window_ms()))))
    }

    /// When `h`'s dispute window opens: its posting (in
    /// [`Mode::ConventionalOr`] too: the windows of batches posted ahead
    /// overlap, [`crate::primary::PrimaryConfig::pipelined`]).
    fn window_start(&self, h: &BatchHeader) -> Result<Option<Timestamp>, DriverError> {
        Ok(h.complete_at)
    }

    /// [`Mode::ConventionalOr`]: an executor's `sc_cr` sent as `sc_cr_on`,
    /// stating the pre-state root it builds on: the state the batches
    /// before it really leave ([`Self::state_before`]), not the root its
    /// predecessor posted (attack r14 [1]). Other calls, and every call in
    /// IOR, go as they are.
    fn with_claimed_pre_root(&self, method: &'static str, a: Vec<u8>) -> Result<(&'static str, Vec<u8>), DriverError> {
        if self.cfg.mode != Mode::ConventionalOr || method != "sc_cr" {
            return Ok((method, a));
        }
        let Ok(tcrs) = borsh::from_slice::<SubmitTcrs>(&a) else { return Ok((method, a)) };
        let pre_root = crate::state::state_root(&self.state_before(tcrs.batch)?);
        Ok(("sc_cr_on", args(&crate::primary::SubmitTcrsOn { pre_root, tcrs })))
    }

    /// Runs §3.4 Steps 2–5 until every recorded batch has settled.
    pub fn process(&mut self, rng: &mut impl Rng) -> Result<Vec<SettledBatch>, DriverError> {
        // The held claims' calls are blocks too: no clock moves past an
        // unwatched posting's window (attack r22 [1]).
        let (next, fin) = self.progress()?;
        if fin < next {
            self.watch_before_jump(fin, rng)?;
        }
        // IOR: not while the next batch's posting stands unchecked (a
        // forged posting made before the run): its checks come first, the
        // claims at a later run (attack r27 [2]: their blocks, sealed
        // through a flood, ran out the posting's window).
        if self.seal_due()?.is_none() {
            self.claim_held()?;
        }
        let mut out = Vec::new();
        loop {
            let (next, fin) = self.progress()?;
            if fin >= next {
                return Ok(out);
            }
            // Every posting already on chain is watched before the clock
            // moves at all this turn (attack r21 [1]).
            self.watch_before_jump(fin, rng)?;
            let mut input = self.batch_input(fin)?;
            if input.header.height >= self.primary.tip().height {
                // Close the batch: its block is the tip; move the clock on.
                let t = self.primary.now() + 1_000;
                self.primary.set_now(t);
            }
            // Step 2–3: the executor executes and records TCRs (unless a
            // dispute already overturned them: the chain executes it).
            if input.tcrs.is_none() && !input.header.overturned {
                let i = self.executor_for(&input.header.executor)?;
                let step = self.executors[i].1.on_batch(&input);
                let key = self.executors[i].0.clone();
                self.run_step(&key, step)?;
                input = self.batch_input(fin)?;
                if input.tcrs.is_none() && input.header.posted_by.is_none() && self.executors.len() > 1 {
                    // Withheld: another executor stands in a window after
                    // the batch closed (`close` closes it if nothing did),
                    // at once if the assigned executor is not active
                    // (attack r20 [4]). An honest active one first.
                    let j = match self.honest_stand_in(&input.header, true)? {
                        Some(j) if self.cfg.mode == Mode::ConventionalOr => j,
                        _ => (i + 1) % self.executors.len(),
                    };
                    let key = self.executors[j].0.clone();
                    self.driver_call(&key, "close", vec![], Amount::ZERO)?;
                    input = self.batch_input(fin)?;
                    let wait = self.cfg.mode != Mode::ConventionalOr || self.assigned_active(&input.header)?;
                    if wait {
                        let closed = input.header.closed_at.unwrap_or(self.now());
                        let mut until = closed.saturating_add(self.cfg.window_ms()) + 1;
                        if self.cfg.mode == Mode::ConventionalOr {
                            // The batches withheld after it that closed
                            // soon after it are due a moment later: wait
                            // for them too, so the stand-ins post them all
                            // in this window (attack r20 [3]).
                            until = until.max(self.withheld_due_with(fin, next, closed)?);
                        }
                        // Not before every posting ahead is watched inside
                        // its window: the jump is a whole window, and a
                        // posting ahead made no later than this batch
                        // closed has none left after it (attack r21 [1]).
                        self.watch_before_jump(fin, rng)?;
                        self.set_time(until.max(self.now()));
                    }
                    let step = self.executors[j].1.on_batch(&input);
                    let key = self.executors[j].0.clone();
                    self.run_step(&key, step)?;
                    input = self.batch_input(fin)?;
                }
                if input.tcrs.is_none() {
                    return Err(DriverError::Stuck(fin));
                }
            }
            if self.cfg.mode == Mode::ConventionalOr {
                // Void postings (the next batch's, or ahead) are replaced
                // at once (attack r18 [2]), then the rest is posted ahead.
                self.replace_void_postings(fin, next, rng)?;
                self.post_ahead(fin, rng)?;
                // A posting ahead whose predecessor had no posting when the
                // first pass ran was not void then; the predecessor just
                // posted may make it void (attack r19 [2]): replaced now,
                // not a window later (a replacement ahead is watched as it
                // is posted, as post_ahead's own postings are).
                self.replace_void_postings(fin, next, rng)?;
                input = self.batch_input(fin)?;
            }
            // Step 4–5: the assigned validator (in the conventional-OR
            // baseline a watcher that records nothing unless it challenges),
            // then smart meters' delegated validators.
            let validators: Vec<Address> = self.validators.iter().map(|(k, _)| k.address()).collect();
            if let Some(i) = validators.iter().position(|a| *a == input.header.validator) {
                let step = match self.cfg.mode {
                    Mode::Ior => self.validators[i].1.on_tcrs_recorded(&input),
                    Mode::ConventionalOr => self.validators[i].1.watch(&input),
                };
                let key = self.validators[i].0.clone();
                // IOR: no block of the check past its posting's window
                // (attack r27 [2]).
                (self.check_due, self.check_price, self.held_blocks) = (self.check_window(fin)?, BASE_GAS_PRICE, 0);
                let r = self.run_step(&key, step);
                self.check_due = None;
                r?;
            }
            // Delegated validators and bonded challengers act after the
            // assigned validator's turn (the first half of the window).
            if let Some(done) = self.window_start(&self.batch_header(fin)?)? {
                let turn = done.saturating_add(self.cfg.window_ms() / 2) + 1;
                self.watch_before_jump(fin, rng)?;
                self.set_time(turn.max(self.now()));
            }
            // Smart meters, their delegates and the bonded challenge, unless
            // they checked this very posting when it was posted ahead.
            let h = self.batch_header(fin)?;
            if posting_id(&h).is_none_or(|p| !self.backed.contains(&p)) {
                // IOR: sealed as the assigned validator's check, one block
                // at a time and none past the window (attack r27 [2]: sealed
                // through a flood, a colluding validator's forgery outran
                // its delegates' disputes).
                if !crate::mutants::active(crate::mutants::Mutation::UncheckedPostingSealedThrough) {
                    (self.check_due, self.held_blocks) = (self.check_window(fin)?, 0);
                }
                let r = self.backup_checks(fin, &input, rng);
                self.check_due = None;
                r?;
            }
            if self.cfg.mode == Mode::Ior {
                // Every check of the posting is on chain.
                if let Some(p) = posting_id(&self.batch_header(fin)?) {
                    self.checked.insert(p);
                }
            }
            // Participants' disputes: one randomly selected validator each.
            if !self.participant_disputes.is_empty() && !validators.is_empty() {
                let disputed: Vec<u32> = input
                    .entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| !e.tx.is_at() && self.participant_disputes.contains(&e.tx.terms().key()))
                    .map(|(i, _)| i as u32)
                    .collect();
                for index in disputed {
                    let h = self.batch_header(fin)?;
                    if h.state != BatchState::Open || h.overturned {
                        break; // an arbitration already settled or overturned the batch
                    }
                    let i = rng.random_range(0..validators.len());
                    let s = self.validators[i].1.on_participant_dispute(&input, index);
                    let key = self.validators[i].0.clone();
                    self.run_step(&key, s)?;
                    self.disputes_handled += 1;
                }
            }
            // Settle after the window if no dispute did.
            let mut h = self.batch_header(fin)?;
            if h.state == BatchState::Open {
                // An overturned batch is executed on chain at once.
                if !h.overturned {
                    let until = self.window_start(&h)?.unwrap_or(0).saturating_add(self.cfg.window_ms());
                    self.watch_before_jump(fin, rng)?;
                    self.set_time(until);
                }
                let key = self.executors[0].0.clone();
                let r = self.driver_call(&key, "finalize", self.finalize_args(fin)?, Amount::ZERO)?;
                if r.status != TxStatus::Success {
                    return Err(DriverError::Stuck(fin));
                }
                h = self.batch_header(fin)?;
                if h.state == BatchState::Open && h.tcr_root.is_none() && !h.overturned {
                    // Void (built on a root that did not settle, pipelined):
                    // taken back; its executor posts it again.
                    continue;
                }
            }
            let BatchState::Settled { disputed, at } = h.state else { return Err(DriverError::Stuck(fin)) };
            let tcrs = self.settled_tcrs(fin)?;
            let s = SettledBatch {
                batch: fin,
                outcomes: tcrs.into_iter().map(|t| t.outcome).collect(),
                disputed,
                latency_ms: at.saturating_sub(h.first_recorded_at),
            };
            self.settled.push(s.clone());
            out.push(s);
            // The watcher's memory of postings checked: a settled batch's
            // postings are never checked again.
            self.watched.retain(|p| p.0 > fin);
            self.backed.retain(|p| p.0 > fin);
            self.checked.retain(|p| p.0 > fin);
            // Housekeeping: the executor deletes the oldest claimed-slot
            // records no entry can read any more (a refusal, e.g. the
            // next batch's deletions already full, is left for later).
            if let Some(a) = self.prune_claims_args(self.now())? {
                let key = self.executors[0].0.clone();
                self.driver_call(&key, "prune_claims", a, Amount::ZERO)?;
            }
        }
    }

    /// The TCRs a settled batch was settled with (after any arbitration, the
    /// chain's own), recomputed from its recorded data and pre-state.
    fn settled_tcrs(&self, batch: u64) -> Result<Vec<crate::types::Tcr>, DriverError> {
        let h = self.batch_header(batch)?;
        let entries = batch_entries(&self.primary, &h)?;
        self.settled_tcrs_of(&h, &entries)
    }

    fn settled_tcrs_of(&self, h: &BatchHeader, entries: &[Entry]) -> Result<Vec<crate::types::Tcr>, DriverError> {
        self.reader().settled_tcrs_of(h, entries)
    }

    /// Makes executor `i` behave as given.
    pub fn set_executor(&mut self, i: usize, b: ExecutorBehaviour) {
        if let Some((_, e)) = self.executors.get_mut(i) {
            e.behaviour = b;
        }
    }

    /// Makes validator `i` behave as given.
    pub fn set_validator(&mut self, i: usize, b: ValidatorBehaviour) {
        if let Some((_, v)) = self.validators.get_mut(i) {
            v.behaviour = b;
        }
    }
}

/// A call of the primary chain's rollup contract by `key`, signed: the
/// one shape the guard's repriced submissions and the IOR check's
/// one-block resubmissions both send.
fn primary_call_tx(
    chain_id: gridledger_core::ChainId,
    key: &KeyPair,
    nonce: u64,
    (gas_limit, gas_price): (u64, Amount),
    (method, args, value): (&str, &[u8], Amount),
) -> gridledger_ledger::SignedTransaction {
    gridledger_ledger::Transaction {
        chain_id,
        sender: key.public(),
        nonce,
        gas_limit,
        gas_price,
        kind: gridledger_ledger::TxKind::Call {
            contract: IOR_PRIMARY_ID,
            method: method.into(),
            args: args.to_vec(),
            value,
        },
    }
    .sign(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_claim_backoff_doubles_up_to_a_sixteenth_of_the_window() {
        let w = 64_000;
        let steps: Vec<u64> = (0..6).map(|a| held_claim_backoff(w, a)).collect();
        assert_eq!(steps, [1_000, 2_000, 4_000, 4_000, 4_000, 4_000]);
        assert_eq!(held_claim_backoff(w, u32::MAX), w / 16);
        // A tiny window still moves on.
        assert_eq!(held_claim_backoff(0, 3), 1);
        // Within the bound the retries span more than the claimer's own
        // priority (half a window).
        let total: u64 = (0..MAX_HELD_CLAIMS - 1).map(|a| held_claim_backoff(w, a)).sum();
        assert!(total > w / 2, "{total}");
    }
}
