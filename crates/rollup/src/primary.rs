//! The primary chain's IOR contract (thesis §3.3.2, §3.3.4, §3.3.5, §3.4):
//! `SC_DS_AT`, `SC_DS_ST` (record data), `SC_CR` (record one TCR root per
//! batch), the on-chain `SC_EXE_AT`/`SC_EXE_ST` that arbitrate a
//! controversial transaction, plus the registry of secondary-chain nodes
//! with their certificates and deposits, certified meters, and the bridge
//! of coin in and out of the settlement state. Balances, reputation,
//! agreements and claims are not in this contract's storage (issue 11):
//! they live on the secondary side behind a state root per batch
//! ([`crate::state`], which says what this chain stores, what executors
//! publish and how anyone reconstructs the state).
//!
//! They are one native contract because native contracts do not call each
//! other and these share state (the deposits and reputation kept by
//! `SC_EXE_AT` are what `SC_EXE_ST` pays out).
//!
//! Choices where the seed is open, recorded here:
//! - **Entries are block data** (thesis Fig 3-7, issue 11). `SC_DS_*` keep
//!   no copy of the AT/ST in contract storage: the recording transaction
//!   sits in the block (data availability), and the batch header keeps a
//!   count and a rolling commitment `cᵢ₊₁ = H(cᵢ ‖ H(eᵢ))`
//!   ([`crate::types::commit_entry`]). Whoever needs the entries (the
//!   executor's `sc_cr`, a disputer, `finalize`) reads them from the
//!   block ([`crate::driver::batch_entries`]) and brings them (or their
//!   hashes) as calldata; the contract refuses any that do not hash to the
//!   commitment.
//! - **One TCR root per batch** (issue 11). `sc_cr` posts one leaf per
//!   entry ([`crate::types::PostedLeaf`]: the verdict and effects, and the
//!   hash of the slice of state the entry read, [`crate::types::TcrLeaf`])
//!   with the entries' hashes; the contract
//!   keeps only the Merkle root ([`crate::types::tcr_root`]) and the height
//!   of the posting block. The leaves are that call's block data
//!   ([`crate::driver::batch_leaves`]). Beside it `sc_cr` posts the
//!   post-state root ([`crate::state::state_root`] of the state the batch
//!   leaves) and the coin the batch burns.
//! - **O(1) settlement.** `finalize` accepts the posted post-state root once
//!   the window has passed without a won dispute: it writes the root and
//!   pays the burn to the black hole, whatever the batch's size.
//! - **Effects follow from the verdict.** A TCR is correct only if its
//!   effects are exactly [`crate::exec::expected_effects`] of its entry and
//!   verdict: only the entry's buyer, seller, sender and the black hole,
//!   with amounts fixed by the terms. `dispute_entry` compares the whole
//!   TCR, effects included, so forged effects (the theft of issue 11
//!   item 1) are a wrong leaf anyone may dispute; smart meters check every
//!   TCR naming their owner.
//! - **Batches.** The IOR transactions recorded in one primary block form a
//!   batch (§3.4 Step 2: "for each newly generated block"); a batch is closed
//!   by the first call to this contract in a later block. Its executor is
//!   drawn by lot from the active executors with the parent hash of the block
//!   that opens the batch, its validator when the batch closes, with the
//!   hash of the batch's own block read by height (issue 11 item 1; attack
//!   r5 finding 7, [`validator_seed`]): no trader knows, when it submits,
//!   which validator will check its batch, so none can time its entries for
//!   an accomplice, and whoever closes the batch cannot pick the lot by
//!   picking the closing block. A colluding proposer of the batch's block
//!   can still grind its hash. The assigned executor's time, after which a
//!   stand-in may record the TCRs, runs from the close.
//! - **No TCRs.** An executor that posts no root and goes silent is
//!   replaced by a stand-in after a window; two windows after the close,
//!   `finalize` executes the batch on chain and settles it.
//! - **Serial settlement.** TCRs of batch `b` are accepted only after batch
//!   `b−1` has settled, so every TCR is computed against the settled state
//!   (whose root is on chain) and the chain can re-execute it exactly.
//!   `withdraw` and `register_meter` change what a batch reads, so they
//!   wait only for the pending batches that touch the caller (each
//!   trader's latest touching batch, [`Touch`]); `fund` only credits, and
//!   never waits.
//! - **A TCR that does not apply** (a wrong verdict that, say, locks more
//!   than a trader holds) does not halt the chain: any trader or watcher
//!   disputes it, the chain re-executes the batch from the settled state
//!   the disputer brings (checked against the settled root), settles it
//!   with its own TCRs and root and forfeits the executor's and the late
//!   validator's deposits.
//! - **Permissionless challenge** (issue 11 item 2). Anyone may send a
//!   controversial transaction: an active validator stakes its node
//!   deposit, anyone else (a trader, its meter, a watcher) attaches a bond of
//!   at least `challenge_bond`. A successful challenger gets its bond back
//!   plus the discloser's reward; a failed bond goes to the executor whose
//!   TCRs it wrongly challenged.
//! - **Finality.** A validator that agrees sends nothing (§3.3.4), so a batch
//!   settles by `finalize` once `window_ms` has passed since its TCRs were
//!   recorded: the time the assigned validator and the smart meters'
//!   delegated validators have to dispute. IOR uses seconds; the
//!   conventional-OR baseline is this contract with a week.
//! - **The window counts congestion** (attack r29 [2] [3], [`held_open`]).
//!   Past `window_ms` the window stays open, disputes accepted and
//!   `finalize` refused, while one of the [`QUIET_BLOCKS`] blocks just
//!   below the current one (above the posting's block) was full: it may
//!   have crowded a challenge out. Junk filling the blocks after a forged
//!   posting at a price the challenger cannot or will not outbid no
//!   longer runs the window out; it delays settlement for as long as the
//!   flooder pays for full blocks, and the challenge, waiting at its
//!   price, goes in with the first blocks that have room. A driver check
//!   stopped behind the junk (`DriverError::Unchecked`) is then a safe
//!   stop: the forger's own `finalize` is refused until the quiet blocks
//!   in which the check, sent again, goes in.
//! - **Meters and their interval.** `register_meter` records a trader's
//!   smart meter once, certified by the authority: the key that signs its
//!   readings and its reading interval `Δt` ([`crate::types::MeterRecord`],
//!   both under the certificate). The interval must be positive and divide
//!   the metering grid step `IorParams::meter_step_s` (else
//!   [`MeterError::IntervalOffGrid`]): real meters record every 1, 5, 15 or
//!   60 minutes, and a finer meter's readings are summed per grid slot, so
//!   claims stay one record per seller and grid slot whatever the meter.
//!   An interval at which an ST of [`MIN_SETTLEABLE_SLOTS`] grid slots (one hour) would
//!   not fit one entry is refused ([`MeterError::IntervalTooFine`]: at the
//!   case study's bounds, 1–4 s; 5 s carries 68 minutes), and `SC_DS_AT`
//!   refuses an AT whose delivery period, read at the seller's registered
//!   interval, needs an ST larger than an entry may be
//!   ([`AtRecordError::StCannotFit`], [`largest_st_fits`]), so every AT
//!   the chain records can be settled by its seller (issue 11, attack r6;
//!   we chose this over per-slot readings, which would change what meters
//!   sign). A seller that registers its meter after recording sales
//!   limits only itself; the driver registers meters first.
//!   Arbitration refuses readings at another interval than the registered
//!   one (`StRejection::OffMeterInterval`; the seller may resubmit its
//!   meter's own readings). A meter cannot be re-registered, so all of a
//!   seller's STs read the same slots.
//! - **Money.** Traders pre-fund an IOR account (`fund`): the contract cannot
//!   pull coin from a seller's wallet on a buyer's AT, so Step 3's balance
//!   check and Step 5's deposits use this account. The contract holds the
//!   coin; `fund` queues a credit ([`crate::state::QueueItem`]) that the
//!   next batch to open applies before its entries (`flush` opens an empty
//!   batch for it when no trade does). `withdraw` pays out against a
//!   Merkle proof of the caller's record under the latest settled root and
//!   queues the debit; the account then waits for the batch that applies
//!   it, so the proof cannot be used twice, and after it the root has
//!   changed, so an old proof no longer verifies ([`WithdrawError`]).
//! - **Arbitration** (§3.4 Step 5), two ways. `dispute_entry` names one
//!   entry and brings it with its posted leaf and the leaf's Merkle witness
//!   against the root; the chain re-executes that entry alone on the leaf's
//!   inputs. A wrong result overturns the batch, which `finalize` then
//!   executes on chain at once; a dispute that proves nothing reverts
//!   ([`EntryDisputeError`]) and changes nothing. `dispute` brings the whole
//!   batch and the records it touches with their sparse-Merkle proof
//!   against the settled root ([`crate::state::batch_witness`]: gas and
//!   size grow with the batch, not the state); the chain applies the
//!   batch's queue items, re-executes
//!   it and compares the TCR root, the post-state root and the burn: the
//!   challenge for wrong *inputs* in a leaf, which one entry cannot show,
//!   and for a post-state root the leaves do not leave.
//!   If the executor was wrong, its deposit is forfeited, and so is the
//!   assigned validator's when someone else (a delegated validator)
//!   disclosed it, since by staying silent it upheld the wrong TCR. A
//!   disputer whose claim is the chain's is rewarded `ë × y` per forfeited
//!   deposit (Table 3-1); the rest is burned. The assigned validator's turn
//!   is the first half of the window: a dispute by someone else before it
//!   has passed does not forfeit the validator. A whole-batch dispute
//!   against a correct root forfeits a staked disputer's deposit (burned)
//!   or pays a bond to the executor.
//! - Limits that keep every batch disputable: `SC_DS_*` refuses an entry
//!   larger than [`max_entry_bytes`] (a full batch's entries fill at most
//!   half a transaction, 6,990 bytes each for 300-entry batches and 4 MiB
//!   transactions); `sc_cr` refuses a burned total that is not the sum of
//!   the leaves' `Burn` effects ([`posted_burn`]), so the burn is checked
//!   per entry like the effects it sums.
//! - `commit_dispute` (commit–reveal): a commitment binds a dispute's
//!   digest to its committer; a successful dispute pays the disclosure
//!   reward only to a sender that committed to it under its own address in
//!   an earlier block. An uncommitted sender's reward (a copy, or another
//!   valid dispute of the same batch) is held *per batch* for the first
//!   party that committed to a valid dispute of that batch before it, so
//!   copying a dispute, a commitment, or merely the knowledge that a batch
//!   is wrong earns nothing. A commitment expires `window_ms` after it is
//!   recorded.
//! - **Commitment records are bounded** (not in the seed). Commitments
//!   cost only a fee, so without a bound their records would grow for
//!   ever. An account holds at most [`MAX_OPEN_COMMITMENTS`] unexpired
//!   commitments ([`CommitError::TooManyOpen`]); every `commit_dispute`
//!   first deletes up to [`COMMITMENT_PRUNE_PER_CALL`] expired records,
//!   oldest first, whoever made them. Each call adds one record and
//!   removes up to that many expired ones, so the stored commitments are
//!   those of the last window plus a backlog that every later commitment
//!   shrinks. An expired commitment earns nothing, so deleting it loses
//!   nothing.
//!   Claimed-slot records of the settlement state (`claimed`, one per
//!   seller and grid slot an arbitration won) are bounded in time: an AT's
//!   delivery period is at most `max_dl_ms` long
//!   ([`crate::types::AtRejection::PeriodTooLong`]), its deadline at most
//!   `max_dl_ms` after it, and `SC_EXE_ST` refuses an ST recorded after
//!   `DL + expiry_ms` ([`crate::types::StRejection::AfterExpiry`]), so a
//!   slot beginning at `T` is read by no entry recorded after
//!   `T + 2 × max_dl_ms + expiry_ms` ([`crate::state::claim_horizon_ms`]).
//!   Deleting such records loses nothing: `prune_claims` queues up to
//!   [`CLAIM_PRUNE_PER_CALL`] deletions of records proved present and
//!   older than that ([`QueueItem::Prune`], at most
//!   [`CLAIM_PRUNE_PER_BATCH`] per batch), which the next batch applies
//!   before its entries, so its post-state root and every re-execution
//!   of it include them; the driver's executor sends one after each batch
//!   it finalizes.
//! - **Entries no agreement can be owed** (issue 11, attack r6 [4]).
//!   `SC_DS_*` cannot read the settlement state, but it sees every AT: one
//!   its buyer sends with the seller's valid signature before the period
//!   ends marks the agreement key (`ag/KEY`, one small record per
//!   agreement, [`AgreementMark`]; the one exception to "no agreement in
//!   contract storage", at one storage write per AT). An ST or expiry that
//!   would count the agreement's claim slots is refused at recording
//!   without that mark, or once its party recorded
//!   [`MAX_SLOT_ENTRIES_PER_PARTY`] of them ([`EntryRecordError`]): it
//!   costs its sender the fee and occupies no slot record. Only the
//!   opinion and expiry owed to a marked agreement's buyer use
//!   [`RESERVED_GAS`]. An AT that execution refuses still marks its key (the
//!   contract does not see the verdict; only terms refused as such,
//!   [`crate::exec::terms_refusal`], mark nothing), so a sybil pair pays one AT for
//!   up to four heavy STs; proving the open agreement against the settled
//!   root at recording would close that, and is not built.
//! - **Who an entry makes pending** (issue 11, attack r9). An AT locks its
//!   seller's account only when it can read the seller's record (sent by
//!   its buyer, signed by its seller, terms not refused as such:
//!   [`crate::exec::terms_refusal`]; only such an AT marks its key), so
//!   `SC_DS_AT` refuses those ATs that execution would refuse before that
//!   read, or that could freeze the seller for long
//!   ([`AtRecordRefusal`]): one recorded after its delivery period
//!   ended, one whose period starts more than [`MAX_AT_LEAD_MS`] ahead,
//!   one for an agreement key marked with other terms, and a replay of
//!   the marked AT in a later batch than the one that recorded it (its
//!   agreement is open, or the AT was refused once and stays refused).
//!   A key whose marking AT execution refused is not barred for good
//!   (attack r10 [1]): once the marking batch settled, and before the
//!   marking AT's delivery period ends (attack r11 [4]: later, its
//!   agreement may have opened and settled), an AT of other
//!   terms the seller signed afresh reopens it (`sc_ds_at_reopen`,
//!   [`ReopenAt`]) with a witness proving the key's agreement absent from
//!   the settled state; terms that marked the key before stay refused, so
//!   one seller signature still costs its seller at most one α
//!   (`reopen_check`).
//!   A buyer's expiry locks its seller only when the key's mark was set
//!   by an AT of exactly its terms: an entry merely naming a trader does
//!   not lock that trader's account.
//! - **Gas per batch is bounded** ([`MAX_BATCH_GAS`]): `SC_DS_*` weighs
//!   each entry by what its re-execution costs ([`entry_gas`]: its bytes
//!   and the settlement records it touches) and refuses an entry past the
//!   budget, so any batch the chain accepts is re-executed by a
//!   whole-batch `dispute` or `finalize` within the driver's call limit.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::{Address, Amount, Hash32, PublicKey, Signature, Timestamp};
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde::Serialize;
use serde_json::json;

use gridledger_core::codec::hash_tagged;

use crate::exec::{execute_leaves, expected_effects, meter_owners, OnChain};
use crate::smt::{Smt, SmtProof};
use crate::state::{QueueItem, RecordKey, StateWitness};
use crate::store::{bytes, mkey};
use crate::types::{
    commit_entries, commitment_preimage, meter_cert_digest, node_cert_digest, AgreementTerms, AgreementTx,
    BuyerOpinion, Entry, IorParams, IorTx, MeterRecord, NodeRole, Participant, PostedLeaf, SettlementTx, Tcr, TcrLeaf,
    BLACK_HOLE, TAG_ASSIGNMENT, TAG_BATCH_DATA, TAG_ENTRY,
};

/// Configuration, set once by `init`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PrimaryConfig {
    pub params: IorParams,
    /// The authority whose certificate admits a secondary-chain node.
    pub authority: PublicKey,
    /// `y`: the deposit each secondary-chain node leaves on the primary chain.
    pub node_deposit: Amount,
    /// `ë` in thousandths: the discloser's share of a forfeited deposit.
    pub bonus_permille: u32,
    /// Dispute window after TCRs are recorded (ms).
    pub window_ms: u64,
    /// Bond a challenger that is not an active validator attaches to
    /// `dispute`.
    pub challenge_bond: Amount,
    /// `f`: the fee a smart meter's owner pays each validator it delegated
    /// to (§3.3.4), paid with `pay_delegation` once the batch has settled so
    /// the private choice of delegates stays private while it matters.
    pub delegation_fee: Amount,
    /// The conventional optimistic rollup's posting (the §3.5.3 baseline,
    /// [`crate::driver::Mode::ConventionalOr`]): an executor may post a
    /// batch's TCRs while the batches before it still wait out their
    /// windows. Each posting records the root it builds on, its *claimed
    /// pre-root* ([`claimed_pre_root`]): stated by the executor with
    /// `sc_cr_on` ([`SubmitTcrsOn`]; an honest one states the state its
    /// predecessor really leaves), else, with `sc_cr`, the settled root when
    /// the batch before it has settled and the root that batch posted when
    /// not. A batch is judged against its own claimed pre-root alone, from
    /// its own posting for a whole `window_ms`, so the windows of
    /// successive batches overlap. A batch whose claimed pre-root is not
    /// the root its predecessor settled with is void: its own `finalize`
    /// takes its TCRs back, in O(1) and punishing nobody, and they are
    /// posted again on the settled root ([`EntryDisputeError::Void`]); a
    /// batch whose predecessor settled with its claimed pre-root is final
    /// one window after its own posting. No call walks the batches posted
    /// ahead. IOR (`false`) posts a batch's TCRs
    /// only once the batch before it has settled.
    ///
    /// Rules of the posting ahead (attacks r15, r16):
    /// - *Void postings are replaced at once.* A posting whose claimed
    ///   pre-root is not the root it must build on — the settled root for
    ///   the next batch to settle, else the post-state root its
    ///   predecessor's standing, not overturned posting states — or whose
    ///   poster has forfeited its deposit (deactivated: it posts nothing
    ///   more, and a stand-in takes its postings over) may be replaced by
    ///   any active executor at once (`sc_cr`/`sc_cr_on` again), and the
    ///   replacement must claim exactly that root ([`void_posting`]). A
    ///   replaced batch's window runs from the replacement. So a posting
    ///   ahead on a made-up root costs no more time than silence, and the
    ///   windows still overlap. A posting that claims what its
    ///   predecessor states cannot be replaced (no ping-pong). The driver's
    ///   honest executors replace every void posting they find at once,
    ///   claiming the true root, from the next batch to settle upwards
    ///   (attack r18 [2]; the view `void_posting` names the root a
    ///   replacement must claim), so a void posting delays nothing by a
    ///   window, and an executor's own void posting ahead cannot make the
    ///   honest postings after it void for longer than that. The void
    ///   poster is not punished: a posting ahead on a root that turns out
    ///   not to settle is what an honest executor posts after a forged
    ///   predecessor, and once replaced its poster cannot post the batch
    ///   again (the replacement is not void), so repeating costs nothing
    ///   but its fee and gains no time.
    /// - *Voidness waits for a known root.* While the predecessor is
    ///   overturned, nothing after it is void: the root it settles with is
    ///   the chain's own execution of it, known once it is the next to
    ///   settle; then the successor is judged against that root (an
    ///   honest successor claiming the true root keeps its window).
    /// - *A replacement never turns a pending dispute into a loss, nor
    ///   locks its disputer out.* A dispute its sender committed to no
    ///   later than the block of the batch's standing posting and no
    ///   earlier than the batch's first posting, where a replacement
    ///   happened (built for a posting since replaced, or taken back and
    ///   posted again; the first posting's height is kept once a posting is
    ///   replaced or taken back), is judged
    ///   against the standing posting but can only win: a whole-batch
    ///   dispute that finds it correct is refused, nothing lost
    ///   ([`EntryDisputeError::Replaced`], attack r16 [4]); one that proves
    ///   it wrong overturns it and is rewarded as committed (attack r17
    ///   [1]: a whole-batch dispute names no posting, so the dispute an
    ///   honest validator committed to for a void posting is exactly its
    ///   dispute of a replacement with the same forged leaves, and
    ///   refusing it left the forged root unchallengeable for a window).
    ///   A dispute committed before the batch's first posting, or of a
    ///   batch never replaced, was built for no posting since replaced: it
    ///   is judged as any other, and a frivolous one pays its bond to the
    ///   executor (attack r18 [1]).
    ///   Entry and state disputes prove a leaf against the standing TCR
    ///   root and are judged as ever (a refused one costs nothing). Binding
    ///   the commitment to a posting id instead would need every dispute's
    ///   arguments to name the posting (else its reveal cannot say which
    ///   posting it was built for).
    /// - *A replacement's window and turn run from the replacement.* Its
    ///   `complete_at` is the replacement's time, so the assigned
    ///   validator's turn on it ([`validator_turn_start`]) starts then: a
    ///   validator is never late for a posting before it stood (attack r17
    ///   [2]).
    /// - *The assigned validator's turn starts once the claimed pre-root is
    ///   settled.* `punish` forfeits the assigned validator of an
    ///   overturned batch only if the dispute came more than half a window
    ///   after both the batch's posting and its predecessor's settlement;
    ///   while the predecessor is open the validator is never late. A
    ///   validator is thus never slashed for a batch judged against a
    ///   claimed pre-root that was not (yet) known to be the state its
    ///   predecessor leaves: once the predecessor settled, a batch whose
    ///   claim differs is void and refused for disputes.
    /// - *Every checker has each posting's own window* (attack r20 [5]).
    ///   A posting ahead is judged against its claimed pre-root from its
    ///   posting, and its window closes one window later whether or not
    ///   its predecessor has settled. So the backup checkers — smart meters
    ///   (`WrongTcr` on their owners' TCRs and the posted state root),
    ///   their delegated validators and the permissionless bonded challenge
    ///   — check a posting ahead as soon as it is posted, on the state the
    ///   batches before it really leave (the driver,
    ///   [`crate::driver::DualChain`], runs them in its watch of each
    ///   posting, as it runs the assigned watcher), not at the batch's turn
    ///   to settle: by then the window of a batch posted with or before its
    ///   predecessor is over, and the assigned watcher alone stood between
    ///   a forged root and settlement, which issue 11 item 1 forbids (one
    ///   colluding validator must never be enough). The alternative, a
    ///   window that runs only once the predecessor settled, would
    ///   serialise the windows the baseline exists to overlap; a posting
    ///   whose claimed pre-root is not the true state never settles (it is
    ///   void at its turn), so checking against the true state inside the
    ///   posting's own window is sufficient.
    /// - *No clock moves past an unwatched posting* (attack r21 [1]).
    ///   Since each posting's window runs from its own posting, the driver
    ///   never advances the chain's clock (a jump to a deadline, the
    ///   assigned validator's turn, the end of a window, a later block)
    ///   before every standing posting already on chain has been checked
    ///   by its watcher and the backup checkers inside its window
    ///   ([`crate::driver::DualChain`] watches them at the top of each turn
    ///   and immediately before each jump). Waiting out a withheld batch
    ///   jumps a whole window past its closing; a posting ahead made no
    ///   later than that (by the withholding executor itself, before the
    ///   run) has no window left after the jump, and looked at only then
    ///   it settled a forged root with every validator honest. The batch
    ///   being settled is covered too (attack r22 [1]): no clock moves past
    ///   the end of *any* unwatched posting's window, so before each move
    ///   (each later block of posting ahead, the held claims' calls
    ///   included) its posting is watched and backed first when its window
    ///   would end within a margin of blocks
    ///   ([`crate::driver::GUARD_BLOCKS_PER_BATCH`] per batch after it,
    ///   plus one), in ascending order of window end with the postings
    ///   after it. A forged posting of it made before the run, seconds
    ///   before its window ended, otherwise ran out during the blocks that
    ///   post the batches ahead and settled. In a normal run its window is
    ///   long and it is checked at its turn as designed: the assigned
    ///   validator's first half of the window, then the backup checkers.
    /// - *A withheld batch does not serialise the windows* (attack r20 [3],
    ///   [4]). Any active executor may post a batch whose assigned executor
    ///   is not active (forfeited or left) at once, or one withheld for a
    ///   window after the batch closed; the driver's honest executors stand
    ///   in as soon as that is allowed, and post the batches after it ahead
    ///   meanwhile (each states the true root it builds on), so n withheld
    ///   batches settle within about two windows of closing, not n.
    /// - *Voiding one's caught posting does not save the poster* (attack
    ///   r20 [1]). A posting replaced or taken back is kept
    ///   ([`VoidedPosting`], the newest [`MAX_VOIDED_POSTINGS`] per batch).
    ///   A dispute whose sender committed to it while that posting stood
    ///   (at or after its block, before the block that voided it), of other
    ///   leaves than the standing posting's, and that opens against that
    ///   posting (its TCR root for a leaf, its claimed pre-root for a state
    ///   witness), is judged against it: proved wrong, its poster forfeits
    ///   its deposit and the discloser is paid its share; the standing
    ///   posting is untouched. Without this, a forger whose posting ahead
    ///   was caught (a commitment seen on chain) voided it through its own
    ///   posting of the batch before on a made-up root and kept its
    ///   deposit. And the `Replaced` leniency applies only where the
    ///   posting that stood at the commitment is not the standing one again
    ///   (same leaves, roots and claimed pre-root; attack r19 [1]): a
    ///   frivolous dispute of a correct posting that a colluding executor
    ///   voided and an honest one posted again loses its bond.
    ///
    /// Only the baseline may set this: `init` refuses it, and a deployment
    /// that is the baseline says so by initialising with `init_baseline`
    /// (which refuses `false`), so no real deployment turns it on by a
    /// stray flag.
    pub pipelined: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Node {
    pub role: NodeRole,
    pub deposit: Amount,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum BatchState {
    /// Recording data or awaiting/holding TCRs.
    Open,
    Settled {
        disputed: bool,
        at: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BatchHeader {
    pub id: u64,
    /// Primary block height whose IOR transactions the batch holds.
    pub height: u64,
    /// Drawn when the batch opens (from the parent hash of its block).
    pub executor: Address,
    /// Drawn when the batch closes ([`Address::ZERO`] until then), from
    /// the hash of the batch's own block ([`validator_seed`]): no trader
    /// knows it when it submits, so none can time its entries to land in a
    /// batch checked by an accomplice (a lot seeded by the batch's own
    /// parent hash was known in advance), and it is the same whichever
    /// later block closes the batch, so the closer cannot choose it either
    /// (a lot from the closing block's parent hash let the closer wait for
    /// the block that names its accomplice).
    pub validator: Address,
    /// How many ATs and how many STs/opinions/expiries the batch holds. A
    /// count, not the list of indices: rewriting a growing list on every
    /// `SC_DS_*` made recording a batch quadratic in its size.
    pub at_count: u32,
    pub st_count: u32,
    /// Settlement-state records the batch's entries touch, summed over
    /// its entries as `SC_DS_*` records them ([`entry_records`]).
    pub records: u32,
    /// The batch's entries' [`entry_gas`], summed; at most [`MAX_BATCH_GAS`].
    pub gas: u64,
    /// Rolling commitment over the batch's entries in order
    /// ([`commit_entry`]): the entries are block data, not contract
    /// storage (thesis Fig 3-7).
    pub commitment: Hash32,
    /// The Merkle root over the batch's TCR leaves ([`crate::types::tcr_root`])
    /// the executor posted with `sc_cr`: the only trace of its TCRs in
    /// contract storage. The leaves are the block data of that call.
    pub tcr_root: Option<Hash32>,
    /// Height of the block whose `sc_cr` posted [`Self::tcr_root`].
    pub tcr_height: Option<u64>,
    /// The bridge queue's length when the batch opened: the batch applies
    /// queue items from the previous batch's `queue_to` up to this one
    /// before its entries ([`crate::state::apply_queue`]).
    pub queue_to: u64,
    /// The state root after the batch ([`crate::state::state_root`]): posted
    /// by the executor with `sc_cr`, or computed by the chain when it
    /// executed the batch itself. The settled root once the batch settles.
    pub post_root: Option<Hash32>,
    /// Coin the batch's effects burn (posted with `sc_cr`; paid from the
    /// contract to the black hole at settlement).
    pub burned: Option<Amount>,
    /// A dispute proved the posted TCRs wrong: the executor's deposit is
    /// forfeited and `finalize` executes the batch on chain at once.
    pub overturned: bool,
    /// Who recorded the TCRs.
    pub posted_by: Option<Address>,
    /// When the TCR root was recorded.
    pub complete_at: Option<Timestamp>,
    /// Block time of the first entry.
    pub first_recorded_at: Timestamp,
    /// Block time and height of the first later call that closed the
    /// batch. The assigned executor's time (after which another executor may
    /// stand in) runs from here, not from the first entry: a batch that
    /// closes after a quiet period is not "withheld" at once.
    pub closed_at: Option<Timestamp>,
    pub closed_height: Option<u64>,
    pub state: BatchState,
}

impl BatchHeader {
    pub fn len(&self) -> usize {
        self.at_count as usize + self.st_count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Has the executor posted the batch's TCR root?
    pub fn tcrs_complete(&self) -> bool {
        self.tcr_root.is_some()
    }
}

/// `register_meter` arguments: the caller's smart meter (its key address
/// and reading interval) and the authority's certificate over
/// [`meter_cert_digest`]`(caller, meter)`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RegisterMeter {
    pub meter: MeterRecord,
    pub cert: Signature,
}

/// Why `register_meter` refuses a meter. A refused registration reverts
/// and records nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeterError {
    /// The reading interval must be positive and divide the metering grid
    /// step ([`IorParams::meter_step_s`]), so whole readings tile every
    /// grid slot and the slot's export is their sum.
    #[error("a meter reading every {step_s} s does not tile the {grid_s} s metering grid")]
    IntervalOffGrid { step_s: u32, grid_s: u32 },
    /// An ST of [`MIN_SETTLEABLE_SLOTS`] at this interval would not fit one
    /// entry ([`largest_st_fits`]): its owner could sell almost nothing
    /// it can settle (issue 11, attack r6).
    #[error("a meter reading every {step_s} s cannot settle {period_ms} ms in one ST: {why}")]
    IntervalTooFine { step_s: u32, period_ms: u64, why: AtRecordError },
}

/// Checks a meter interval against the grid and [`MIN_SETTLEABLE_SLOTS`].
pub fn check_meter_interval(owner: &Address, step_s: u32, p: &IorParams) -> Result<(), MeterError> {
    let grid_s = p.meter_step_s;
    if step_s == 0 || !grid_s.is_multiple_of(step_s) {
        return Err(MeterError::IntervalOffGrid { step_s, grid_s });
    }
    let period_ms = MIN_SETTLEABLE_SLOTS * u64::from(grid_s) * 1000;
    let hour = AgreementTerms {
        ep: Amount(0),
        em: gridledger_core::Energy(0),
        buyer: Address::ZERO,
        seller: *owner,
        dt_start: 0,
        dt_end: period_ms,
        dl: period_ms,
    };
    largest_st_fits(&hour, step_s, grid_s, p.max_batch).map(|_| ()).map_err(|why| MeterError::IntervalTooFine {
        step_s,
        period_ms,
        why,
    })
}

/// `pay_delegation` arguments.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct PayDelegation {
    pub batch: u64,
    pub validator: Address,
}

/// `register_node` arguments.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RegisterNode {
    pub role: NodeRole,
    /// The authority's signature over [`node_cert_digest`]`(caller, role)`.
    pub cert: Signature,
}

/// `sc_cr` arguments (issue 11: one TCR root per batch): the hashes of the
/// batch's entries (checked against its rolling commitment) and one leaf
/// per entry. The chain keeps only the Merkle root over the leaves; the
/// leaves stay in this call's block data, where validators, meters and
/// `finalize` read them ([`crate::driver::batch_leaves`]).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct SubmitTcrs {
    pub batch: u64,
    pub entry_hashes: Vec<Hash32>,
    pub leaves: Vec<PostedLeaf>,
    /// The state root after the batch ([`crate::state::state_root`]).
    pub post_root: Hash32,
    /// The coin the batch's effects burn.
    pub burned: Amount,
}

/// `sc_cr_on` arguments ([`PrimaryConfig::pipelined`] only): a batch's
/// TCRs with the pre-state root they build on stated explicitly, its
/// *claimed pre-root*. An executor posting ahead states the state its
/// predecessor really leaves (not the root that predecessor posted, which
/// may be forged); the batch is judged against this root alone, and is
/// void at its `finalize` unless its predecessor settled with it.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct SubmitTcrsOn {
    pub pre_root: Hash32,
    pub tcrs: SubmitTcrs,
}

/// `dispute_entry` arguments (issue 11, thesis §3.4 Step 5): one entry of
/// the batch, the TCR leaf the executor posted for it, the inputs that
/// hash to the leaf's `pre_hash`, and the leaf's Merkle witness against the
/// batch's TCR root. The chain re-executes just that entry on those inputs.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct DisputeEntry {
    pub batch: u64,
    pub entry: Entry,
    pub pre: crate::exec::PreState,
    pub leaf: PostedLeaf,
    pub proof: gridledger_core::MerkleProof,
}

/// `dispute_state` arguments (issue 11, per-entry state disputes): entry
/// `i` with its posted leaf and witness; the previous entry with its leaf
/// and witness (none for entry 0); and a [`StateWitness`] of the records
/// entry `i` touches ([`crate::state::entry_keys`] of the entry and the
/// leaf's effects; for entry 0 also the accounts of the batch's queue
/// items) against entry `i`'s pre-root: the settled root for entry 0 (the
/// chain applies the queue items), else the previous leaf's `post_root`.
/// The chain applies leaf `i`'s effects to those records, updates the root
/// through the proof and compares it with leaf `i`'s `post_root`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct DisputeState {
    pub batch: u64,
    pub entry: Entry,
    pub leaf: PostedLeaf,
    pub proof: gridledger_core::MerkleProof,
    pub prev: Option<(Entry, PostedLeaf, gridledger_core::MerkleProof)>,
    pub witness: StateWitness,
}

/// `finalize` arguments. A batch whose posted roots stood through the
/// window settles in O(1) and needs neither field (send them empty). A
/// batch the chain executes itself (overturned, or no root posted) needs
/// its entries (checked against its commitment) and a witness of the
/// records they and the batch's queue items touch against the settled root
/// ([`crate::state::batch_witness`]).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct FinalizeArgs {
    pub batch: u64,
    pub entries: Vec<Entry>,
    pub witness: StateWitness,
}

/// `withdraw` arguments (issue 11): the amount, the caller's record in the
/// latest settled state and its proof against the settled root
/// ([`crate::state::participant_proof`]).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct WithdrawArgs {
    pub amount: Amount,
    pub record: Participant,
    pub proof: SmtProof,
}

/// Most unexpired dispute commitments one account may hold
/// ([`CommitError::TooManyOpen`]). A validator commits once per batch it
/// disputes; sixteen leaves room for sixteen forged batches in one window.
pub const MAX_OPEN_COMMITMENTS: usize = 16;

/// Gas one settlement-state record of a batch costs its whole-batch
/// `dispute` or `finalize`, as [`entry_gas`] counts it: the record's
/// sparse-Merkle path hashed to verify and again to update it (at most
/// 2 × 256 node hashes of 42 gas, 21,504; paths that share a prefix cost
/// less) and its share of the proof's calldata (its 32 bytes of flags and
/// the explicit sibling hashes, about `log2(state / records)` of 32 bytes
/// at 16 gas). 22,000 covers the hashing and small states; each doubling
/// of the state adds at most 512 gas per record, which the margin
/// [`MAX_BATCH_GAS`] leaves below the driver's call limit absorbs.
pub const RECORD_GAS: u64 = 22_000;
/// Gas one claimed-slot record costs, as [`entry_gas`] counts it:
/// [`RECORD_GAS`] plus the calldata of a full slot record (≈ 330 bytes
/// with [`crate::exec::MAX_PERIODS_PER_SLOT`] periods, 5,280 gas) and the
/// re-allocation's `STEP_GAS` per claim it may move (1,800): 30,000. A
/// slot's value travels in the witness, so slots filled by earlier sales
/// cost a dispute more than an account's record.
pub const SLOT_RECORD_GAS: u64 = 30_000;
/// Gas one byte of an encoded entry costs a batch's re-execution, as
/// [`entry_gas`] counts it: 16 for calldata (every byte counted non-zero),
/// hashing it into the entry hash and the batch commitment, and 50 gas per
/// 8-byte reading for arbitration (`READING_GAS`): 24 covers them.
pub const ENTRY_BYTE_GAS: u64 = 24;
/// Fixed gas per entry in [`entry_gas`]: its signature checks (an ST's
/// buyer and meter signatures, 3,000 each), execution steps, its TCR leaf
/// and the leaf's share of the TCR tree.
pub const ENTRY_BASE_GAS: u64 = 12_000;

/// The gas budget of one batch's entries (issue 11, attack r6): `SC_DS_*`
/// adds each entry's [`entry_gas`] to its batch and refuses an entry that
/// would exceed it (it records in the next block's batch). The whole-batch
/// `dispute` and `finalize` of a batch bring every entry, and every
/// record the batch touches with its proof, so both the bytes and the
/// records count: a record budget alone (round 5) let a batch of
/// max-size, high-entropy STs need ≈ 103 M gas, more than the driver's
/// [`crate::driver::DRIVER_GAS_LIMIT`] (100 M). With
/// [`MAX_QUEUE_PER_BATCH`] items at [`RECORD_GAS`] each (11 M), any batch
/// the chain accepts is estimated at ≤ 83 M gas plus the call's fixed
/// part; measured at the worst cases (slot-heavy STs; dense max-size STs;
/// both behind a full queue: `tests/attack_r5.rs`, `tests/attack_r6.rs`)
/// it stays below 100 M and half the 300 M block. An honest full batch
/// (300 half-hour STs of 9 records, 6 of them slots) weighs ≈ 80 M: up to
/// ≈ 236 such STs record per block, the rest in the next.
pub const MAX_BATCH_GAS: u64 = 72_000_000;

/// What an entry weighs against [`MAX_BATCH_GAS`]: [`ENTRY_BASE_GAS`] +
/// [`ENTRY_BYTE_GAS`] × its encoded size + [`RECORD_GAS`] × its account
/// and agreement records + [`SLOT_RECORD_GAS`] × its claimed-slot records
/// ([`entry_records`] counts both). Computed from the entry alone, as `SC_DS_*` records
/// it.
pub fn entry_gas(e: &Entry, grid_s: u32) -> u64 {
    entry_gas_of(bytes(e).len(), entry_weighed_records(e, grid_s))
}

/// Entry `e`'s records: (all of them, the claimed-slot ones among them).
fn entry_weighed_records(e: &Entry, grid_s: u32) -> (u32, u32) {
    let keys = crate::state::entry_keys(std::slice::from_ref(e), &[], grid_s);
    let slots = keys.iter().filter(|k| matches!(k, RecordKey::Claimed(_))).count();
    (u32::try_from(keys.len()).unwrap_or(u32::MAX), u32::try_from(slots).unwrap_or(u32::MAX))
}

fn entry_gas_of(len: usize, (records, slots): (u32, u32)) -> u64 {
    let others = u64::from(records.saturating_sub(slots));
    ENTRY_BASE_GAS
        .saturating_add(ENTRY_BYTE_GAS.saturating_mul(len as u64))
        .saturating_add(RECORD_GAS.saturating_mul(others))
        .saturating_add(SLOT_RECORD_GAS.saturating_mul(u64::from(slots)))
}

/// Most bridge queue items (`fund`, `withdraw`) one batch applies: a
/// `fund` or `withdraw` that would queue more for the next batch is
/// refused (send it after that batch opens; `flush` opens one). Each item
/// touches one account record, which the whole-batch `dispute`,
/// `finalize` and entry 0's `dispute_state` prove and update like an
/// entry's records, so without a bound sybil deposits between two batches
/// could make a batch no block re-executes. With [`MAX_BATCH_GAS`] the
/// queue's records are the part of a batch's re-execution the entries'
/// budget leaves room for (500 × [`RECORD_GAS`]).
pub const MAX_QUEUE_PER_BATCH: u64 = 500;

/// The settlement-state records entry `e` touches, as `SC_DS_*` counts
/// them in [`entry_gas`]: the keys of
/// [`crate::state::entry_keys`] for the entry alone (its TCR's effects
/// touch no other record: [`crate::exec::expected_effects`]).
pub fn entry_records(e: &Entry, grid_s: u32) -> u32 {
    u32::try_from(crate::state::entry_keys(std::slice::from_ref(e), &[], grid_s).len()).unwrap_or(u32::MAX)
}

/// Most expired commitment records one `commit_dispute` deletes.
pub const COMMITMENT_PRUNE_PER_CALL: u64 = 8;

/// Most claimed-slot records one `prune_claims` call deletes.
pub const CLAIM_PRUNE_PER_CALL: usize = 8;

/// Most claimed-slot deletions one batch applies (of its
/// [`MAX_QUEUE_PER_BATCH`] queue items; the rest stay for `fund` and
/// `withdraw`).
pub const CLAIM_PRUNE_PER_BATCH: u64 = 64;

/// `prune_claims` arguments: the seller slots whose records to delete and
/// a witness proving each present in the latest settled state.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct PruneClaims {
    pub slots: Vec<crate::types::SlotKey>,
    pub witness: StateWitness,
}

/// `sc_ds_at_reopen` arguments (issue 11, attack r10 [1]): an AT its buyer
/// records for an agreement key that an AT of other terms marked in an
/// earlier, settled batch, with a witness proving the key's agreement
/// absent from the latest settled state, i.e. execution refused the
/// marking AT. The entry recorded is the AT alone ([`IorTx::At`]); the
/// witness is checked at recording and is no part of the batch.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ReopenAt {
    pub at: AgreementTx,
    pub witness: StateWitness,
}

/// Most times one agreement key may be reopened by an AT of other terms
/// after execution refused the AT that marked it ([`ReopenAt`]); each
/// reopening needs a new seller signature, and the terms it replaces are
/// kept so that none of them can be recorded again.
pub const MAX_REOPENS_PER_KEY: usize = 4;

/// Why `prune_claims` refuses. A refused call reverts and queues nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PruneError {
    #[error("name between 1 and {max} slots, each once (got {got})")]
    Count { got: usize, max: usize },
    #[error("slot beginning at {dt_start} may still be read until {until}; now {now}")]
    NotExpired { dt_start: u64, until: u64, now: u64 },
    #[error("the next batch already deletes {queued} slot records (at most {max}); prune after it opens")]
    BatchFull { queued: u64, max: u64 },
    #[error("the witness does not prove the slots against the settled root: {0}")]
    NotProved(String),
    #[error("no record of the slot beginning at {0} in the settled state")]
    Absent(u64),
}

/// Why `commit_dispute` refuses. A refused commitment reverts and records
/// nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// The caller already holds `open` unexpired commitments (revealed
    /// ones count until their window ends).
    #[error("{open} dispute commitments of this account are open (at most {cap}); wait until one expires")]
    TooManyOpen { open: usize, cap: usize },
}

/// Why `withdraw` refuses. A refused withdrawal reverts and changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawError {
    #[error("amount must be positive")]
    ZeroAmount,
    /// A batch not yet settled reads the account, or a withdrawal of it is
    /// queued for one: the settled record may be about to change (also
    /// refuses a second withdrawal with the same proof).
    #[error("a pending batch reads this account; withdraw after it settles")]
    Pending,
    /// The record and witness do not prove a leaf of the latest settled
    /// root (a stale proof after the balance changed, a forged record, or
    /// a root that never settled or was overturned).
    #[error("the record is not proved against the latest settled state root {0}")]
    NotProved(Hash32),
    #[error("free balance {available} is below {amount}")]
    Insufficient { available: Amount, amount: Amount },
}

/// Why `dispute_entry` refuses a dispute. A refused dispute reverts: it
/// changes nothing and the bond goes back with the reverted call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryDisputeError {
    #[error("a challenger that is not an active validator must attach a bond of at least {bond}, attached {attached}")]
    BondTooSmall { bond: Amount, attached: Amount },
    #[error("batch {0} has no posted TCR root awaiting settlement")]
    NothingToDispute(u64),
    #[error("the witness names leaf {index} of {count}, the batch holds {len} entries and the leaf is TCR {tcr}")]
    WrongIndex { index: u64, count: u64, len: usize, tcr: u32 },
    #[error("the entry and leaf are not proved by the witness against batch {0}'s TCR root")]
    WrongWitness(u64),
    #[error("the inputs brought do not hash to leaf {0}'s posted inputs")]
    WrongInputs(u32),
    #[error("TCR {0} is the correct result of its entry on its inputs")]
    CorrectResult(u32),
    /// `dispute_state`: the records brought ([`StateWitness`]) are not
    /// proved, each present or absent, against entry `i`'s pre-root (the
    /// settled root for entry 0, else the previous leaf's post-state
    /// root), or the previous leaf is not entry `i − 1`'s.
    #[error("the state brought is not the state before entry {0}")]
    WrongPreState(u32),
    /// `dispute_state`: leaf `i`'s effects applied to the state before it
    /// give exactly its posted post-state root.
    #[error("leaf {0}'s post-state root is the state its effects leave")]
    CorrectTransition(u32),
    /// A whole-batch `dispute` claiming a held reward
    /// ([`commit_dispute`]) re-executes the batch to the posted roots: it
    /// proves nothing, so it claims nothing.
    #[error("batch {0}'s posted roots are the chain's own")]
    CorrectBatch(u64),
    /// The dispute window (`window_ms` after the TCR root was posted) has
    /// passed: the batch is final and only `finalize` may settle it, so a
    /// late challenge cannot race it. Also refuses a late whole-batch
    /// `dispute`.
    #[error("batch {batch}'s dispute window closed at {until}, now {now}")]
    WindowClosed { batch: u64, until: u64, now: u64 },
    /// A claim of a held reward ([`HeldReward`]) by a committer while a
    /// commitment recorded before the claimer's is still within its
    /// reveal window: the first committer has priority.
    /// The claimer may try again once that commitment's priority is over
    /// (its message contains [`EARLIER_COMMITMENT`]).
    #[error("batch {batch}'s held reward: commitment #{earlier} {EARLIER_COMMITMENT}")]
    EarlierCommitment { batch: u64, earlier: u64 },
    /// A whole-batch `dispute` claiming a held reward whose claimed TCRs
    /// are not the chain's own run of the batch.
    #[error("the claimed TCRs are not batch {0}'s correct TCRs")]
    WrongClaimedTcrs(u64),
    /// [`PrimaryConfig::pipelined`]: the whole-batch dispute was committed
    /// to ([`commit_dispute`]) no later than the block of the batch's
    /// standing posting and no earlier than its first posting, and the
    /// batch's posting was replaced (or taken back and posted again) since
    /// its first, so the dispute was built for a posting since replaced (a
    /// void posting ahead), and the replacement is correct: it is refused,
    /// not rejected (nothing lost). Judged against the replacement, a
    /// dispute that proves it wrong overturns it.
    #[error("batch {0}'s posting was replaced after this dispute was committed to, and the replacement is correct; nothing is lost")]
    Replaced(u64),
    /// [`PrimaryConfig::pipelined`]: the batch was posted ahead on a root
    /// that is not final yet (the batch before it has not settled). The
    /// contract no longer refuses so (a batch is judged against its own
    /// claimed pre-root from its posting); only the planted
    /// `DisputeWaitsForPredecessor` does (feature `mutants`).
    #[error("batch {batch} builds on batch {pred}'s root, which has not settled; it is disputable once it has")]
    PredecessorUnsettled { batch: u64, pred: u64 },
    /// [`PrimaryConfig::pipelined`]: the batch's claimed pre-root is not
    /// the root its predecessor settled with; nothing is judged, its
    /// `finalize` takes its TCRs back.
    #[error("batch {0} builds on a root its predecessor did not settle with: void, finalize takes it back")]
    Void(u64),
}

/// What the refusal of a held-reward claim for an earlier, still
/// privileged commitment ([`EntryDisputeError::EarlierCommitment`]) says:
/// a driver recognises a claim worth retrying by it in the revert reason.
pub const EARLIER_COMMITMENT: &str = "was recorded before the claimer's and may still reveal";

/// `Err` once batch `h`'s dispute window, which opened at its posting
/// (pipelined too: the windows overlap), has passed: the same instant
/// from which `finalize` settles it, so a batch is always either
/// disputable or finalizable, never both.
fn window_open(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    h: &BatchHeader,
) -> Result<Result<(), EntryDisputeError>, ContractError> {
    let Some(done) = h.complete_at else { return Ok(Ok(())) };
    let until = done.saturating_add(c.window_ms);
    if ctx.timestamp() >= until && !held_open(ctx, h)? {
        return Ok(Err(EntryDisputeError::WindowClosed { batch: h.id, until, now: ctx.timestamp() }));
    }
    Ok(Ok(()))
}

/// Blocks with room for a challenge that a posting's window needs just
/// before it closes ([`held_open`]): one for a bonded challenge's
/// commitment, one for its reveal, one to spare.
pub const QUIET_BLOCKS: u64 = 3;

/// The gas a block must leave unused to count as having had room for a
/// challenge ([`held_open`]): the most any dispute's call may ask for
/// ([`crate::driver::DRIVER_GAS_LIMIT`], the cap of
/// [`crate::driver::dispute_gas_limit`]).
pub const CHALLENGE_ROOM_GAS: u64 = crate::driver::DRIVER_GAS_LIMIT;

/// Whether a committed block that left `r` had room for a challenge: a
/// place for one more transaction and [`CHALLENGE_ROOM_GAS`] of gas. One
/// that did took every pending call of that size it could execute (the
/// block builder stops early only when the block is full), so a
/// challenger left out of it was not crowded out.
pub fn had_room(r: &gridledger_ledger::BlockRoom) -> bool {
    r.txs_left > 0 && r.gas_left >= CHALLENGE_ROOM_GAS
}

/// The congestion-aware window (attack r29 [2] [3]): whether posting
/// `h`'s window is held open at this block past its `window_ms` because
/// one of the [`QUIET_BLOCKS`] blocks just below this one, above the
/// posting's own block, was full ([`had_room`]). Past `window_ms`, a
/// dispute is accepted and `finalize` refused exactly while this holds
/// (so a batch is still either disputable or final, never both). A
/// flood that fills the blocks after a posting therefore delays its
/// settlement for as long as the flooder keeps paying for full blocks,
/// and steals nothing: the window closes only after [`QUIET_BLOCKS`]
/// blocks in a row that took every pending challenge at the base price.
/// Junk at a price above what a challenger can pay (attack r29 [2]: the
/// dispute could not be repriced above junk at price 2) or above the
/// check's repricing schedule (r29 [3]: junk at price 17 for the three
/// blocks after the meters' turn) no longer runs the window out. A block
/// the history does not cover (no history given, or the block not in the
/// store when it was read back) counts as having had room.
fn held_open(ctx: &mut CallContext<'_, '_>, h: &BatchHeader) -> Result<bool, ContractError> {
    // Planted bug: the window is `window_ms` whatever filled its blocks
    // (the rule before attack r29 [2] [3]).
    if crate::mutants::active(crate::mutants::Mutation::WindowIgnoresCongestion) {
        return Ok(false);
    }
    let Some(posted) = h.tcr_height else { return Ok(false) };
    let next = ctx.height();
    held_open_at(posted, next, |height| ctx.block_room(height))
}

/// The rule of [`held_open`] for a posting recorded at height `posted`,
/// judged in the block at height `next`: whether one of the
/// [`QUIET_BLOCKS`] blocks just below `next`, above `posted`, was full
/// ([`had_room`]; `room` reads a block's room, `None` counting as room).
/// The contract reads the room from its call context, the driver (which
/// foresees the contract's verdict) from the chain's blocks.
pub fn held_open_at<E>(
    posted: u64,
    next: u64,
    mut room: impl FnMut(u64) -> Result<Option<gridledger_ledger::BlockRoom>, E>,
) -> Result<bool, E> {
    let from = next.saturating_sub(QUIET_BLOCKS).max(posted.saturating_add(1));
    for height in from..next {
        if room(height)?.is_some_and(|r| !had_room(&r)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A controversial transaction (§3.3.4): the disputer's TCRs for the batch
/// and the batch's entries (block data, checked against the commitment).
/// The executor's verdicts are on chain.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Controversial {
    pub batch: u64,
    pub claimed: Vec<Tcr>,
    pub entries: Vec<Entry>,
    /// The records the batch touches with their proof against the settled
    /// root (the chain keeps only the root;
    /// [`crate::state::batch_witness`]).
    pub witness: StateWitness,
}

/// `finalize` and the `batch_input` view: a batch and its entries, read
/// from the blocks that recorded them ([`crate::driver::batch_entries`]),
/// checked against the batch's commitment.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct BatchData {
    pub batch: u64,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct BatchId {
    pub batch: u64,
}

/// What a secondary-chain node reads to execute or verify a batch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BatchInput {
    pub header: BatchHeader,
    pub entries: Vec<Entry>,
    /// Settled state of the traders the batch touches (queue items
    /// applied), with their meters.
    pub prestate: crate::exec::PreState,
    /// The full settled state before the batch (queue items not yet
    /// applied), from which the executor computes the post-state root and
    /// which a whole-batch dispute brings; `None` in the view (the chain
    /// does not hold it).
    pub state: Option<crate::exec::PreState>,
    /// The queue items the batch applies before its entries.
    pub queue: Vec<QueueItem>,
    /// Recorded TCRs in entry order, once complete.
    pub tcrs: Option<Vec<Tcr>>,
    /// The posted TCR leaves, read from the block data of `sc_cr`
    /// ([`crate::driver::batch_leaves`]); the view leaves this `None`.
    pub leaves: Option<Vec<PostedLeaf>>,
}

impl BatchInput {
    /// [`Self::state`] with the queue items applied and the meters of
    /// [`Self::prestate`]: what the batch's entries execute on.
    pub fn full_state(&self, p: &IorParams) -> crate::exec::PreState {
        let mut s = self.state.clone().unwrap_or_else(|| self.prestate.clone());
        if self.state.is_some() {
            let _ = crate::state::apply_queue(&mut s, p, &self.queue);
        }
        s.meters.extend(self.prestate.meters.iter().map(|(a, m)| (*a, *m)));
        s
    }
}

pub struct IorPrimaryContract;

const CFG: &[u8] = b"cfg";
/// [`RecordParams`], written by `init` beside [`CFG`].
const RECORD_PARAMS: &[u8] = b"rp";

/// The parameters `SC_DS_*` read, in one small record beside the full
/// configuration: recording an entry (the primary chain's most frequent
/// call, run by every primary node) reads one slot instead of the whole
/// [`PrimaryConfig`].
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
struct RecordParams {
    max_batch: u32,
    rs: u32,
    beta: u32,
    max_entries_per_sender: u32,
    domain: crate::types::SigDomain,
    meter_step_s: u32,
    expiry_ms: u64,
    /// [`IorParams::max_dl_ms`], for [`crate::exec::terms_refusal`].
    max_dl_ms: u64,
}

impl RecordParams {
    fn of(p: &IorParams) -> Self {
        Self {
            max_batch: p.max_batch,
            rs: p.rs,
            beta: p.beta,
            max_entries_per_sender: p.max_entries_per_sender,
            domain: p.domain,
            meter_step_s: p.meter_step_s,
            expiry_ms: p.expiry_ms,
            max_dl_ms: p.max_dl_ms,
        }
    }
}
const NEXT_BATCH: &[u8] = b"bn";
/// `(batch, n)`: `prune_claims` queued `n` deletions for batch `batch`.
const PRUNE_PENDING: &[u8] = b"prn";
/// Length of the bridge queue ([`crate::state::QueueItem`]s at `q/INDEX`).
const QUEUE_LEN: &[u8] = b"qn";
/// The latest settled state root.
const SETTLED_ROOT: &[u8] = b"sr";
const NEXT_SETTLE: &[u8] = b"fin";
const EXECUTORS: &[u8] = b"execs";
const VALIDATORS: &[u8] = b"vals";

fn nkey(a: &Address) -> Vec<u8> {
    [b"n/".as_slice(), a.as_bytes()].concat()
}
fn bkey(id: u64) -> Vec<u8> {
    [b"b/".as_slice(), &id.to_be_bytes()].concat()
}
/// `pt/ADDR`: the trader's [`Touch`].
fn ptkey(a: &Address) -> Vec<u8> {
    [b"pt/".as_slice(), a.as_bytes()].concat()
}
fn qkey(i: u64) -> Vec<u8> {
    [b"q/".as_slice(), &i.to_be_bytes()].concat()
}
/// `rh/BATCH`: the disclosure reward of a batch that a sender without a
/// commitment overturned first ([`HeldReward`]).
fn rhkey(batch: u64) -> Vec<u8> {
    [b"rh/".as_slice(), &batch.to_be_bytes()].concat()
}
/// The batches whose disclosure reward is held ([`HeldReward`]), so a
/// restarted committed discloser finds them (view `held_batches`).
const HELD_LIST: &[u8] = b"rhl";
/// `dc/COMMITMENT/COMMITTER`: a dispute commitment
/// ([`crate::types::dispute_commitment`]) as sent by one committer:
/// [`DcRecord`]. Keyed per committer, so a commitment sent by another
/// address never blocks the committer's own.
fn dckey(d: &Hash32, who: &Address) -> Vec<u8> {
    [b"dc/".as_slice(), d.as_bytes(), who.as_bytes()].concat()
}
/// `dq/SEQ`: the commitment recorded `SEQ`-th (inclusion order), as
/// `(commitment, committer, time)`.
fn dqkey(seq: u64) -> Vec<u8> {
    [b"dq/".as_slice(), &seq.to_be_bytes()].concat()
}
/// Number of dispute commitments ever recorded.
const DC_COUNT: &[u8] = b"dcn";
/// The oldest `dq/SEQ` not yet pruned ([`prune_commitments`]).
const DQ_HEAD: &[u8] = b"dqh";
/// `dca/ADDR`: the account's commitments not yet pruned, as
/// `(sequence, time)` in inclusion order ([`MAX_OPEN_COMMITMENTS`]).
fn dcakey(who: &Address) -> Vec<u8> {
    [b"dca/".as_slice(), who.as_bytes()].concat()
}
/// A recorded dispute commitment: height, time and inclusion sequence.
#[derive(BorshSerialize, BorshDeserialize, Clone, Copy)]
struct DcRecord {
    height: u64,
    time: Timestamp,
    seq: u64,
}
/// `ag/BUYER/SELLER/DT_START`: the [`AgreementMark`] of an agreement key
/// an AT was recorded for.
fn agkey(k: &crate::types::AgreementKey) -> Vec<u8> {
    [b"ag/".as_slice(), &bytes(k)].concat()
}
/// `agr/BUYER/SELLER/DT_START`: the seller digests of the terms whose ATs
/// marked the key before it was reopened ([`ReopenAt`]); written only by a
/// reopening, at most [`MAX_REOPENS_PER_KEY`] of them.
fn agrkey(k: &crate::types::AgreementKey) -> Vec<u8> {
    [b"agr/".as_slice(), &bytes(k)].concat()
}
/// What `SC_DS_*` knows of an agreement without the settlement state
/// (issue 11, attack r6 [4]): an AT naming it was recorded by its buyer
/// with its seller's valid signature before its delivery period ended —
/// the only way an agreement can open — and how many of the entries that
/// only it can be owed its parties have recorded since. Written once per
/// agreement key by `SC_DS_AT`; read and counted by the STs, opinions and
/// expiries naming the key ([`record`]).
#[derive(Clone, Copy, Debug, BorshSerialize, BorshDeserialize)]
struct AgreementMark {
    /// The seller's digest ([`AgreementTerms::seller_digest`]) of the AT
    /// that set the mark: the only terms that may open an agreement under
    /// the key ([`AtRecordRefusal::OtherTerms`]).
    terms: Hash32,
    /// The batch that recorded that AT: only that batch may record it
    /// again ([`AtRecordRefusal::Recorded`]).
    batch: u64,
    /// The end of that AT's delivery period (`DT_end`): an agreement its
    /// terms opened closes only at or after it, so before it the key's
    /// absence from the settled state proves that AT refused
    /// ([`reopen_check`], attack r11 [4]).
    dt_end: Timestamp,
    /// Entries of the seller that count claim slots (its STs after the
    /// period), at most [`MAX_SLOT_ENTRIES_PER_PARTY`].
    seller_slot_entries: u8,
    /// Entries of the buyer that count claim slots (its expiries after
    /// the period), at most [`MAX_SLOT_ENTRIES_PER_PARTY`].
    buyer_slot_entries: u8,
    /// The buyer recorded its `O_b` in the reserve once.
    opinion: bool,
    /// The buyer recorded its expiry in the reserve once.
    expiry: bool,
}

/// The most entries one party of an agreement may record that count the
/// agreement's claim slots against a batch ([`AgreementMark`]): an honest
/// seller needs one ST, or a few (one refused before `DL` for want of the
/// buyer's signature, one at another reading interval, the
/// [`IorTx::StReach`] form); an honest buyer one expiry. Past it the
/// agreement was settled, expired or refused for good, and a further such
/// entry would be refused by execution after occupying the batch's slot
/// records: `SC_DS_*` refuses it ([`EntryRecordError::SlotEntriesSpent`]).
pub const MAX_SLOT_ENTRIES_PER_PARTY: u8 = 4;

/// Why `SC_DS_*` refuses an ST, opinion or expiry before recording it
/// (issue 11, attack r6 [4]). A refused entry reverts: its sender pays
/// the transaction's fee, and it occupies no record, gas or reserve of
/// the batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryRecordError {
    /// The entry counts the agreement's claim slots, but no AT of these
    /// parties and delivery start was recorded by its buyer with its
    /// seller's signature before the period ended: no such agreement can
    /// exist, and execution would refuse the entry.
    #[error("no AT of buyer {buyer} signed by seller {seller} for the period from {dt_start} was recorded; no agreement to settle or expire")]
    NoAgreement { buyer: Address, seller: Address, dt_start: Timestamp },
    /// The party already recorded [`MAX_SLOT_ENTRIES_PER_PARTY`] entries
    /// counting this agreement's claim slots.
    #[error("{who} already recorded {n} entries reading this agreement's claim slots (at most {MAX_SLOT_ENTRIES_PER_PARTY})")]
    SlotEntriesSpent { who: Address, n: u8 },
}

/// How far ahead of its recording an AT's delivery period may start (issue
/// 11, attack r9 [2]): two days, a day-ahead market's horizon with a day
/// to spare. A seller-signed AT stays valid until its period ends; the
/// batch that records it makes the seller pending, and an accepted one
/// holds the seller's `D_s` until it settles. With this bound a buyer can
/// record a signature it was given at most two days before the period,
/// not a year ahead ([`AtRecordRefusal::TooFarAhead`]).
pub const MAX_AT_LEAD_MS: u64 = 2 * 24 * 3_600_000;

/// Why `SC_DS_AT` refuses an AT that its buyer sends with its seller's
/// valid signature and terms execution does not refuse as such
/// ([`crate::exec::terms_refusal`]) (issue 11, attack r9 [2]). Such an AT
/// makes the seller pending (its `withdraw` and `register_meter` wait for
/// the batch), so the contract refuses the ones execution would refuse before reading
/// the seller's record, or that would keep the seller pending for long.
/// A refused AT reverts: its sender pays the fee and no one is marked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AtRecordRefusal {
    /// Recorded at or after the end of its delivery period: execution
    /// refuses it ([`crate::types::AtRejection::DeliveryPassed`]), a stale
    /// or replayed AT (issue 11 item 6).
    #[error("the delivery period ended at {dt_end}; an AT recorded at {now} is stale or replayed")]
    DeliveryPassed { dt_end: Timestamp, now: Timestamp },
    /// The delivery period starts more than [`MAX_AT_LEAD_MS`] after the
    /// AT's recording.
    #[error("the delivery period starts at {dt_start}, more than {max_ms} ms after {now}")]
    TooFarAhead { dt_start: Timestamp, now: Timestamp, max_ms: u64 },
    /// An AT of other terms was recorded for this agreement key (buyer,
    /// seller, delivery start): execution would find its agreement open,
    /// or the key taken by terms the seller signed first.
    #[error("an AT of other terms was recorded for buyer {buyer}, seller {seller} and the period from {dt_start}")]
    OtherTerms { buyer: Address, seller: Address, dt_start: Timestamp },
    /// This AT was recorded in an earlier batch: its agreement is open
    /// (execution would refuse it `AgreementOpen`), or execution refused it
    /// there and a seller-signed AT is executed in one batch only (terms
    /// the seller signs afresh may reopen the key then, [`ReopenAt`]).
    #[error("this AT was recorded in batch {batch}; a replay in a later batch is refused")]
    Recorded { batch: u64 },
    /// A reopening ([`ReopenAt`]) while the batch whose AT marked the key
    /// has not settled: its verdict is not known yet.
    #[error("the AT that marked this agreement key was recorded in batch {batch}, which has not settled")]
    MarkUnsettled { batch: u64 },
    /// A reopening whose witness does not prove the key's agreement absent
    /// from the latest settled state (it is open, or the proof is wrong).
    #[error("the settled state is not proved to hold no agreement for this key: {why}")]
    NotProvedClosed { why: String },
    /// A reopening with terms an AT already marked the key with: a seller
    /// signature is executed in one batch only (its refusal costs the
    /// seller at most one α, attack r9 [3]); the seller signs new terms.
    #[error("these terms already marked this agreement key; a seller signature is executed in one batch only")]
    TermsUsed,
    /// The key was reopened [`MAX_REOPENS_PER_KEY`] times.
    #[error("this agreement key was reopened {max} times already")]
    ReopensSpent { max: usize },
    /// A reopening at or after the end of the delivery period of the AT
    /// that marked the key (attack r11 [4]): that AT's agreement may have
    /// been opened and closed since (it closes at or after `DT_end`), so
    /// the key's absence from the settled state no longer proves that
    /// execution refused it, and a key an agreement was opened under stays
    /// closed.
    #[error("the AT that marked this agreement key delivers until {dt_end}; at {now} its agreement may have settled")]
    MarkPeriodOver { dt_end: Timestamp, now: Timestamp },
}

fn tkey(id: u64, at: bool) -> Vec<u8> {
    [if at { b"ta/".as_slice() } else { b"ts/".as_slice() }, &id.to_be_bytes()].concat()
}

fn cfg(ctx: &mut CallContext<'_, '_>) -> Result<PrimaryConfig, ContractError> {
    match ctx.read_typed::<PrimaryConfig>(CFG)? {
        Some(c) => Ok(c),
        None => revert("IOR contract not initialised"),
    }
}

fn header<R: gridledger_ledger::StorageRead>(ctx: &mut R, id: u64) -> Result<BatchHeader, ContractError> {
    match ctx.read_typed::<BatchHeader>(&bkey(id))? {
        Some(h) => Ok(h),
        None => revert(format!("no batch {id}")),
    }
}

/// The batch's entries as a caller brought them, once they match the
/// batch's count and rolling commitment (hashing priced per word).
fn entries(ctx: &mut CallContext<'_, '_>, h: &BatchHeader, given: Vec<Entry>) -> Result<Vec<Entry>, ContractError> {
    Ok(entries_hashed(ctx, h, given)?.0)
}

/// [`entries`] with each entry's hash.
fn entries_hashed(
    ctx: &mut CallContext<'_, '_>,
    h: &BatchHeader,
    given: Vec<Entry>,
) -> Result<(Vec<Entry>, Vec<Hash32>), ContractError> {
    if given.len() != h.len() {
        return revert(format!("batch {} holds {} entries, {} brought", h.id, h.len(), given.len()));
    }
    let mut hashes = Vec::with_capacity(given.len());
    for e in &given {
        hashes.push(ctx.hash(TAG_ENTRY, &bytes(e))?);
    }
    check_entry_hashes(ctx, h, &hashes)?;
    Ok((given, hashes))
}

/// Refuses entry hashes that do not chain to the batch's commitment.
fn check_entry_hashes(ctx: &mut CallContext<'_, '_>, h: &BatchHeader, hashes: &[Hash32]) -> Result<(), ContractError> {
    if hashes.len() != h.len() {
        return revert(format!("batch {} holds {} entries, {} brought", h.id, h.len(), hashes.len()));
    }
    let mut c = Hash32::ZERO;
    for eh in hashes {
        c = ctx.hash(TAG_BATCH_DATA, &commitment_preimage(&c, eh))?;
    }
    if c != h.commitment {
        return revert(format!("the entries brought are not batch {}'s recorded data (commitment mismatch)", h.id));
    }
    Ok(())
}

/// The Merkle root over leaves, hashing priced per word and per tree node.
fn leaves_root(
    ctx: &mut CallContext<'_, '_>,
    d: &crate::types::SigDomain,
    batch: u64,
    hashes: &[Hash32],
    leaves: &[PostedLeaf],
) -> Result<Hash32, ContractError> {
    let mut hs = Vec::with_capacity(leaves.len());
    for (eh, l) in hashes.iter().zip(leaves) {
        hs.push(ctx.hash(crate::types::TAG_TCR_LEAF, &bytes(&(d, batch, eh, l)))?);
    }
    // Leaf and inner-node hashes of the tree: 2n − 1 two-word hashes.
    ctx.charge(
        (2 * hs.len() as u64).saturating_sub(1)
            * (gridledger_ledger::gas::HASH_BASE + 2 * gridledger_ledger::gas::HASH_WORD),
    )?;
    Ok(gridledger_core::merkle_root(&hs))
}

/// What is stored of a TCR: its entry index and verdict. The effects
/// follow from the entry and the verdict ([`expected_effects`], checked at
/// `sc_cr_*`), so they are rebuilt on reading instead of stored.
type StoredVerdicts = Vec<(u32, crate::types::Outcome)>;

fn verdicts(tcrs: &[Tcr]) -> StoredVerdicts {
    tcrs.iter().map(|t| (t.index, t.outcome.clone())).collect()
}

/// Rebuilds a batch's TCRs from the stored verdicts.
fn rebuild<R: gridledger_ledger::StorageRead>(
    ctx: &mut R,
    params: &IorParams,
    id: u64,
    es: &[Entry],
) -> Result<Vec<Tcr>, ContractError> {
    let mut all = ctx.read_typed::<StoredVerdicts>(&tkey(id, true))?.unwrap_or_default();
    all.extend(ctx.read_typed::<StoredVerdicts>(&tkey(id, false))?.unwrap_or_default());
    all.sort_by_key(|(i, _)| *i);
    all.into_iter()
        .map(|(index, outcome)| {
            let e = es.get(index as usize).ok_or_else(|| ContractError::Revert("corrupt TCRs".into()))?;
            let effects =
                expected_effects(params, e, &outcome).ok_or_else(|| ContractError::Revert("corrupt TCRs".into()))?;
            Ok(Tcr { index, outcome, effects })
        })
        .collect()
}

/// One slot per trader (`pt/ADDR`): the latest batch holding an entry that
/// reads the trader's IOR state ([`pending_parties`]), and how many entries
/// the trader itself sent in that batch ([`IorParams::max_entries_per_sender`]).
/// Batches settle in order, so the trader waits exactly while that batch
/// is unsettled; nothing needs undoing at settlement, and the slot is
/// overwritten, not created and deleted, batch after batch.
#[derive(Clone, Copy, Debug, Default, BorshSerialize, BorshDeserialize)]
struct Touch {
    batch: u64,
    sent: u32,
    /// The [`entry_gas`] of the entries it sent in `batch`, summed; at
    /// most [`MAX_SENDER_GAS`].
    gas: u64,
}

fn touch(ctx: &mut CallContext<'_, '_>, who: &Address) -> Result<Option<Touch>, ContractError> {
    ctx.read_typed::<Touch>(&ptkey(who))
}

/// No unsettled batch reads `who`'s IOR state.
fn idle_for(ctx: &mut CallContext<'_, '_>, who: &Address) -> Result<bool, ContractError> {
    let Some(t) = touch(ctx, who)? else { return Ok(true) };
    Ok(t.batch < ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0))
}

/// Draws an index below `n` from the lot of batch `id`, `salt` apart for
/// the executor and the validator.
fn draw(parent: &gridledger_core::Hash32, id: u64, salt: u8, n: usize) -> usize {
    let h = hash_tagged(TAG_ASSIGNMENT, &(parent, id, salt));
    let mut w = [0u8; 8];
    w.copy_from_slice(&h.as_bytes()[..8]);
    (u64::from_be_bytes(w) % n.max(1) as u64) as usize
}

/// The executor and validator of batch `id` drawn from `lot`: a lot over
/// the registered (active) nodes. The executor is drawn with the parent
/// hash of the batch's block as `lot`, the validator with the hash of the
/// batch's block itself ([`validator_seed`]). Public so that anyone can
/// check an assignment.
pub fn assign(
    parent: &gridledger_core::Hash32,
    id: u64,
    executors: &[Address],
    validators: &[Address],
) -> Option<(Address, Address)> {
    if executors.is_empty() || validators.is_empty() {
        return None;
    }
    Some((executors[draw(parent, id, 0, executors.len())], validators[draw(parent, id, 1, validators.len())]))
}

/// The lot a batch recorded in block `height` draws its validator from,
/// read in a later block (attack r5 finding 7): the hash of block
/// `height` itself, fixed once that block was made and read by height
/// ([`CallContext::block_hash`]), so it is the same whichever later block
/// closes the batch and whoever sends that call.
///
/// What it resists: the traders recording in the batch (the block's hash
/// is unknown when they submit, and their own transactions are only part
/// of it), the batch's executor, and whoever closes the batch (waiting for
/// a convenient block changes nothing). What it does not resist: the
/// proposer of the batch's block, who can grind that block's hash (its
/// timestamp, which transactions it includes and in what order) before it
/// proposes — a colluding primary-chain proposer picks the validator, as
/// with any lot drawn from block hashes; only randomness from the
/// validators themselves (a commit–reveal or VRF beacon) would close that.
///
/// The ledger keeps [`gridledger_ledger::BLOCK_HASH_WINDOW`] hashes. A
/// batch closed later than that (nobody called the contract for that
/// many blocks) draws from the hash of block `height + k × window`, the
/// latest such block still readable: a closer who withholds every call
/// gets a fresh lot only once per window of waiting, while the batch, and
/// every account it touches, waits with it. A chain that gives contracts
/// no block history (only the parent's hash) falls back to the parent hash.
fn validator_seed(ctx: &mut CallContext<'_, '_>, height: u64) -> Result<Hash32, ContractError> {
    let w = gridledger_ledger::BLOCK_HASH_WINDOW;
    let now = ctx.height();
    let at = match now.saturating_sub(1).checked_sub(height) {
        Some(gap) if gap >= w => height + gap / w * w,
        _ => height,
    };
    Ok(ctx.block_hash(at)?.unwrap_or_else(|| ctx.parent_hash()))
}

/// Closes the latest batch once a later block calls the contract: draws
/// its validator ([`validator_seed`]) and starts the executor's clock. Runs at the start of every call, so only the latest batch can be
/// open for recording or unclosed.
fn close_latest(ctx: &mut CallContext<'_, '_>) -> Result<Latest, ContractError> {
    let next = ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0);
    let Some(id) = next.checked_sub(1) else { return Ok(Latest { next, header: None }) };
    let Some(mut h) = ctx.read_typed::<BatchHeader>(&bkey(id))? else { return Ok(Latest { next, header: None }) };
    if h.closed_at.is_some() || h.height >= ctx.height() {
        return Ok(Latest { next, header: Some(h) });
    }
    let vals = ctx.read_typed::<Vec<Address>>(VALIDATORS)?.unwrap_or_default();
    if !vals.is_empty() {
        let seed = validator_seed(ctx, h.height)?;
        h.validator = vals[draw(&seed, id, 1, vals.len())];
    }
    h.closed_at = Some(ctx.timestamp());
    h.closed_height = Some(ctx.height());
    ctx.write_typed(&bkey(id), &h)?;
    ctx.emit(
        "ior_batch_closed",
        vec![("batch".into(), id.to_string()), ("validator".into(), h.validator.to_string())],
    )?;
    Ok(Latest { next, header: Some(h) })
}

/// What [`close_latest`] read (and maybe wrote) of the latest batch, handed
/// on to `SC_DS_*` so recording reads the counter and header once per call.
struct Latest {
    next: u64,
    header: Option<BatchHeader>,
}

/// The traders whose IOR state the verdict on `e` reads, and so whose
/// `fund`/`withdraw`/`register_meter` wait for it: the ledger-authenticated
/// sender, and for an AT the seller too, but only when the sender is the
/// buyer, the terms are not refused as such
/// ([`crate::exec::terms_refusal`]) and the seller's signature is valid
/// (otherwise the AT is refused before any balance is read), and for a
/// buyer's expiry after the period its seller ([`crate::exec::expiry_reads_seller`]: an expiry settled as
/// agreed may undo the sale and fine the seller's free balance, attack r8
/// [1]), but only when `mark`, the key's [`AgreementMark`] read at
/// recording, was set by an AT of exactly the expiry's terms (attack r9
/// [1]: otherwise no agreement of those terms can be open, the expiry is
/// refused before the seller's record is read, and a stranger's expiry
/// naming a trader would freeze it). An entry merely naming a trader does
/// not lock that trader's account. This is exactly the set of participant
/// records (and, for an ST's sender, the meter) a TCR leaf's inputs hold
/// ([`crate::exec::leaf_inputs`]), so no leaf's inputs change between
/// `SC_CR` and settlement and a whole-batch `dispute`, which re-executes
/// from the current settled state, reproduces an honest root.
fn pending_parties(
    ctx: &mut CallContext<'_, '_>,
    p: &RecordParams,
    e: &Entry,
    mark: Option<&AgreementMark>,
) -> Result<Vec<Address>, ContractError> {
    let domain = &p.domain;
    let mut v = vec![e.sender];
    if let IorTx::At(at) = &e.tx {
        let t = &at.terms;
        if e.sender == t.buyer
            && t.seller != t.buyer
            && crate::exec::terms_refusal(t, p.meter_step_s, p.max_dl_ms).is_none()
        {
            if let Some(sig) = &at.seller_sig {
                if ctx.recover_signer(&t.seller_digest(domain), sig)?.map(|pk| pk.address()) == Some(t.seller) {
                    v.push(t.seller);
                }
            }
        }
    }
    // A buyer's expiry after the period may settle the sale as agreed,
    // and undoing that sale fines the seller's free balance
    // ([`crate::exec::place_paid`]; issue 11, attack r8 [1]): the seller's
    // record is read, so its withdrawals wait for the batch too.
    // Only an agreement of exactly these terms can be settled as agreed
    // by the expiry, and only an AT of these terms recorded by the buyer
    // with the seller's signature can have opened it: that AT set the
    // key's mark (attack r9 [1]).
    if let IorTx::Expire(t) = &e.tx {
        let agreed = mark.is_some_and(|m| m.terms == t.seller_digest(domain))
            || crate::mutants::active(crate::mutants::Mutation::ExpiryMarkUnchecked);
        if crate::exec::expiry_reads_seller(e, t)
            && agreed
            && !crate::mutants::active(crate::mutants::Mutation::ExpirySellerFree)
        {
            v.push(t.seller);
        }
    }
    Ok(v)
}

/// Removes a node from its role's list (it is no longer drawn).
fn unlist(ctx: &mut CallContext<'_, '_>, who: &Address, role: NodeRole) -> Result<(), ContractError> {
    let list = if role == NodeRole::Executor { EXECUTORS } else { VALIDATORS };
    let mut l = ctx.read_typed::<Vec<Address>>(list)?.unwrap_or_default();
    l.retain(|a| a != who);
    ctx.write_typed(list, &l)
}

fn active_node<R: gridledger_ledger::StorageRead>(
    ctx: &mut R,
    who: &Address,
    role: NodeRole,
) -> Result<bool, ContractError> {
    Ok(ctx.read_typed::<Node>(&nkey(who))?.is_some_and(|n| n.active && n.role == role))
}

/// Forfeits a node's deposit; returns it.
fn forfeit(ctx: &mut CallContext<'_, '_>, who: &Address) -> Result<Amount, ContractError> {
    let Some(mut n) = ctx.read_typed::<Node>(&nkey(who))? else { return Ok(Amount::ZERO) };
    if !n.active {
        return Ok(Amount::ZERO);
    }
    let d = n.deposit;
    if crate::mutants::active(crate::mutants::Mutation::DepositNotSlashed) {
        return Ok(Amount::ZERO);
    }
    n.deposit = Amount::ZERO;
    n.active = false;
    ctx.write_typed(&nkey(who), &n)?;
    unlist(ctx, who, n.role)?;
    ctx.emit("ior_deposit_forfeited", vec![("node".into(), who.to_string()), ("amount".into(), d.to_string())])?;
    Ok(d)
}

/// Opens a batch in this block (the first IOR entry of the block, or a
/// `flush`): draws its executor and snapshots the bridge queue's length.
fn open_batch(ctx: &mut CallContext<'_, '_>, next: u64) -> Result<BatchHeader, ContractError> {
    let execs = ctx.read_typed::<Vec<Address>>(EXECUTORS)?.unwrap_or_default();
    let vals = ctx.read_typed::<Vec<Address>>(VALIDATORS)?.unwrap_or_default();
    let Some((executor, _)) = assign(&ctx.parent_hash(), next, &execs, &vals) else {
        return revert("no executor or validator registered on the secondary chain");
    };
    ctx.write_typed(NEXT_BATCH, &(next + 1))?;
    Ok(BatchHeader {
        id: next,
        height: ctx.height(),
        executor,
        validator: Address::ZERO,
        at_count: 0,
        st_count: 0,
        records: 0,
        gas: 0,
        commitment: Hash32::ZERO,
        tcr_root: None,
        tcr_height: None,
        queue_to: ctx.read_typed::<u64>(QUEUE_LEN)?.unwrap_or(0),
        post_root: None,
        burned: None,
        overturned: false,
        posted_by: None,
        complete_at: None,
        first_recorded_at: ctx.timestamp(),
        closed_at: None,
        closed_height: None,
        state: BatchState::Open,
    })
}

/// The queue items batch `h` applies before its entries: from the previous
/// batch's `queue_to` up to its own (read from storage, priced).
fn queue_items(ctx: &mut CallContext<'_, '_>, h: &BatchHeader) -> Result<Vec<QueueItem>, ContractError> {
    let from = match h.id.checked_sub(1) {
        Some(prev) => header(ctx, prev)?.queue_to,
        None => 0,
    };
    let mut v = Vec::with_capacity(h.queue_to.saturating_sub(from) as usize);
    for i in from..h.queue_to {
        match ctx.read_typed::<QueueItem>(&qkey(i))? {
            Some(q) => v.push(q),
            None => return revert(format!("internal: queue item {i} missing")),
        }
    }
    Ok(v)
}

/// Appends an item to the bridge queue; the next batch to open applies it.
fn enqueue(ctx: &mut CallContext<'_, '_>, q: QueueItem) -> Result<u64, ContractError> {
    let n = ctx.read_typed::<u64>(QUEUE_LEN)?.unwrap_or(0);
    // Items from the latest batch's `queue_to` on go to the next batch.
    let next = ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0);
    let applied = match next.checked_sub(1) {
        Some(id) => ctx.read_typed::<BatchHeader>(&bkey(id))?.map_or(0, |h| h.queue_to),
        None => 0,
    };
    let pending = n.saturating_sub(applied);
    if pending >= MAX_QUEUE_PER_BATCH {
        return revert(format!(
            "the next batch already applies {pending} queued funds and withdrawals (at most {MAX_QUEUE_PER_BATCH}); \
             send this after it opens"
        ));
    }
    ctx.write_typed(&qkey(n), &q)?;
    ctx.write_typed(QUEUE_LEN, &(n + 1))?;
    let (kind, who, amount) = match q {
        QueueItem::In { who, amount } => ("in", who, amount),
        QueueItem::Out { who, amount } => ("out", who, amount),
        QueueItem::Prune { slot } => ("prune", slot.seller, Amount::ZERO),
    };
    ctx.emit(
        "ior_queued",
        vec![
            ("index".into(), n.to_string()),
            ("kind".into(), kind.into()),
            ("who".into(), who.to_string()),
            ("amount".into(), amount.to_string()),
        ],
    )?;
    Ok(n)
}

/// The latest settled state root (the empty state's before any batch).
fn settled_root<R: gridledger_ledger::StorageRead>(ctx: &mut R) -> Result<Hash32, ContractError> {
    Ok(ctx.read_typed::<Hash32>(SETTLED_ROOT)?.unwrap_or_else(crate::state::empty_root))
}

/// `withdraw` (issue 11): pays the caller out of its settled balance,
/// proved against the latest settled root, and queues the debit for the
/// next batch. The account must be idle (no unsettled batch reads it); the
/// withdrawal marks it pending until the batch that applies the debit
/// settles, so the same proof cannot be used twice, and after that batch
/// the root has changed, so an old proof no longer verifies.
fn withdraw(ctx: &mut CallContext<'_, '_>, a: WithdrawArgs) -> Result<Vec<u8>, ContractError> {
    let refuse = |e: WithdrawError| revert(e.to_string());
    let who = ctx.caller();
    if a.amount.is_zero() {
        return refuse(WithdrawError::ZeroAmount);
    }
    if !idle_for(ctx, &who)? {
        return refuse(WithdrawError::Pending);
    }
    let root = settled_root(ctx)?;
    let (proved, hashes) = crate::state::verify_participant(&who, &a.record, &a.proof, &root);
    ctx.charge((hashes + 2) * NODE_HASH_GAS)?;
    if !proved {
        return refuse(WithdrawError::NotProved(root));
    }
    if a.record.balance < a.amount {
        return refuse(WithdrawError::Insufficient { available: a.record.balance, amount: a.amount });
    }
    // The debit lands in the next batch to open: the account waits for it.
    let next = ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0);
    ctx.write_typed(&ptkey(&who), &Touch { batch: next, sent: 0, gas: 0 })?;
    enqueue(ctx, QueueItem::Out { who, amount: a.amount })?;
    ctx.pay(&who, a.amount)?;
    Ok(bytes(&(a.record.balance.0 - a.amount.0)))
}

/// The largest encoded [`Entry`] `SC_DS_*` records, for batches of at most
/// `max_batch` entries: every challenge resends entries (`dispute_entry`
/// one, `dispute_state` two, the whole-batch `dispute` and `finalize` of
/// an overturned batch all of them), and a challenge that no transaction
/// can carry leaves a forged root undisputable. The entries of a full
/// batch may fill at most half of [`crate::driver::MAX_TX_BYTES`]; the
/// other half is left for the rest of the largest challenge (the claimed
/// TCRs, witnesses and the records brought with their proof). For the case study (`max_batch`
/// = 300, 4 MiB transactions) that is 6,990 bytes per entry: an ST of up
/// to about 850 readings (a half-hour slot at 5-second steps is 360).
pub fn max_entry_bytes(max_batch: u32) -> usize {
    crate::driver::MAX_TX_BYTES / 2 / (max_batch.max(1) as usize)
}

/// The most one entry may weigh ([`entry_gas`]): three eighths of
/// [`MAX_BATCH_GAS`] (27 M). An entry above it is refused at recording,
/// and an AT whose largest ST would weigh more is refused
/// ([`AtRecordError::StCannotFit`]). With today's parameters
/// [`max_entry_bytes`] binds first (the largest ST, 840 five-minute
/// readings, weighs ≈ 25.4 M).
pub const MAX_ENTRY_GAS: u64 = MAX_BATCH_GAS / 8 * 3;

/// The most [`entry_gas`] one sender's entries may add to one batch
/// (issue 11, attack r6): one largest entry ([`MAX_ENTRY_GAS`]), so no
/// account fills more than three eighths of a batch.
pub const MAX_SENDER_GAS: u64 = MAX_ENTRY_GAS;

/// The share of [`MAX_BATCH_GAS`] that ATs and STs cannot fill: an eighth
/// (9 M gas, about 85 opinions or expiries of ≈ 106 k each), kept for the
/// buyers' `O_b` and expiries, which must land before a deadline (issue 11,
/// attack r6: refused STs of sybils filled every batch until `DL`). STs
/// and ATs may bring a batch to `MAX_BATCH_GAS − RESERVED_GAS`; opinions
/// and expiries owed to their buyer to `MAX_BATCH_GAS`: the first `O_b`
/// before `DL` and the first expiry after `DL + expiry_ms` of an agreement
/// whose AT its buyer recorded with the seller's signature
/// ([`AgreementMark`]). Any other opinion or expiry (sent by someone
/// else, for an agreement no AT named, a second one, out of its time) is
/// weighed like an ST and never takes the reserve.
pub const RESERVED_GAS: u64 = MAX_BATCH_GAS / 8;

/// The most settlement records one entry can count within
/// [`MAX_ENTRY_GAS`] (≈ 1,226): bounds an ST's period plus its reach
/// ([`crate::types::IorTx::StReach`]); the driver shortens a reach to fit.
pub const MAX_ENTRY_RECORDS: u32 = ((MAX_ENTRY_GAS - ENTRY_BASE_GAS) / RECORD_GAS) as u32;

/// The shortest delivery period, in grid slots, every registered meter
/// must be able to settle in one ST ([`MeterError::IntervalTooFine`]):
/// twelve, one hour on the case study's 5-minute grid (an accelerated
/// demo's grid scales it).
pub const MIN_SETTLEABLE_SLOTS: u64 = 12;

/// Why `SC_DS_AT` refuses an AT before recording it. A refused AT reverts
/// and records nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AtRecordError {
    /// Every AT the contract accepts must have an ST its seller can record
    /// (issue 11, attack r6): the AT's delivery period, read at the
    /// seller's certified meter interval (the grid step while it has no
    /// meter), needs more readings than one entry carries.
    #[error(
        "the delivery period needs an ST of {readings} readings every {step_s} s ({bytes} bytes, {gas} gas); \
         an entry carries at most {max_bytes} bytes and {max_gas} gas"
    )]
    StCannotFit { readings: u64, step_s: u32, bytes: u64, max_bytes: u64, gas: u64, max_gas: u64 },
}

/// Checks that the largest ST of `t` fits one entry: its seller's
/// readings every `step_s` seconds over `DT`, both signatures present, as
/// `SC_DS_ST` would record it after `DT_end` (its claim slots counted):
/// at most [`max_entry_bytes`]`(max_batch)` bytes and [`MAX_ENTRY_GAS`].
/// Returns the ST's size and weight. Readings are fixed-width, so this is
/// exact: an ST of the same readings count never encodes larger.
pub fn largest_st_fits(
    t: &AgreementTerms,
    step_s: u32,
    grid_s: u32,
    max_batch: u32,
) -> Result<(u64, u64), AtRecordError> {
    let step_ms = u64::from(step_s.max(1)) * 1000;
    let readings = t.dt_end.saturating_sub(t.dt_start).div_ceil(step_ms);
    let max_bytes = max_entry_bytes(max_batch) as u64;
    let sig = Some(gridledger_core::RecoverableSignature([0xff; 65]));
    let mut st = SettlementTx {
        terms: t.clone(),
        stmp: t.dl,
        buyer_sig: sig,
        ob: true,
        dt_step_s: step_s,
        ps: vec![],
        meter_sig: sig,
    };
    let entry =
        |st: &SettlementTx| Entry { sender: t.seller, recorded_at: t.dl.max(t.dt_end), tx: IorTx::St(st.clone()) };
    let size = (bytes(&entry(&st)).len() as u64).saturating_add(readings.saturating_mul(8));
    let err =
        |gas| AtRecordError::StCannotFit { readings, step_s, bytes: size, max_bytes, gas, max_gas: MAX_ENTRY_GAS };
    if size > max_bytes {
        // Its weight without the claim slots: already too large to carry.
        return Err(err(entry_gas_of(size as usize, (0, 0))));
    }
    st.ps = vec![0; readings as usize];
    let e = entry(&st);
    let gas = entry_gas_of(size as usize, entry_weighed_records(&e, grid_s));
    if gas > MAX_ENTRY_GAS {
        return Err(err(gas));
    }
    Ok((size, gas))
}

/// What recording `entry` into batch `batch` does to its agreement's
/// [`AgreementMark`] (issue 11, attack r6 [4]): the mark to write
/// (`None`: leave `stored`, the key's mark, as it is) and whether the
/// entry may use the batch's [`RESERVED_GAS`]. `parties` are the entry's
/// [`pending_parties`]; `counts_slots`: the entry counts claim-slot
/// records.
///
/// - An AT its buyer sent, whose seller's signature holds, marks its
///   agreement key with its terms and batch (once): only such an AT can
///   open an agreement. It makes its seller pending, so it is refused
///   ([`AtRecordRefusal`], attack r9 [2]) when its period has ended or
///   starts more than [`MAX_AT_LEAD_MS`] ahead, when the key is marked
///   with other terms, or when a later batch than the mark's replays it;
///   the marking batch may record it again (execution penalises the
///   seller for it at most once, [`crate::types::AtRejection::SellerPenalised`]).
/// - An entry that counts claim slots (an ST its seller sends after the
///   period, an expiry its buyer sends after it) needs the mark, and each
///   party records at most [`MAX_SLOT_ENTRIES_PER_PARTY`] of them:
///   otherwise execution refuses it for certain (no agreement, or settled
///   long ago) and it is refused here instead, before it occupies slot
///   records ([`EntryRecordError`]).
/// - The buyer's first `O_b` before `DL` and its first expiry after
///   `DL + expiry_ms` of a marked agreement may use the reserve: at most
///   one of each per agreement.
fn agreement_mark(
    p: &RecordParams,
    batch: u64,
    entry: &Entry,
    parties: &[Address],
    stored: Option<AgreementMark>,
    counts_slots: bool,
    reopen: bool,
) -> Result<(Option<AgreementMark>, bool), ContractError> {
    let t = entry.tx.terms();
    if let IorTx::At(_) = &entry.tx {
        // Any other AT is refused by execution before the seller's record
        // is read, and makes no one but its sender pending.
        if entry.sender != t.buyer || !parties.contains(&t.seller) {
            return Ok((None, false));
        }
        let now = entry.recorded_at;
        let refuse = |why: AtRecordRefusal| revert(why.to_string());
        if now >= t.dt_end {
            return refuse(AtRecordRefusal::DeliveryPassed { dt_end: t.dt_end, now });
        }
        if t.dt_start.saturating_sub(now) > MAX_AT_LEAD_MS {
            return refuse(AtRecordRefusal::TooFarAhead { dt_start: t.dt_start, now, max_ms: MAX_AT_LEAD_MS });
        }
        let terms = t.seller_digest(&p.domain);
        // A reopening ([`ReopenAt`], checked by [`reopen_check`]) marks
        // the key afresh, as a first AT does.
        let stored = stored.filter(|_| !reopen);
        return match stored {
            None => Ok((
                Some(AgreementMark {
                    terms,
                    batch,
                    dt_end: t.dt_end,
                    seller_slot_entries: 0,
                    buyer_slot_entries: 0,
                    opinion: false,
                    expiry: false,
                }),
                false,
            )),
            Some(m) if m.terms != terms => {
                refuse(AtRecordRefusal::OtherTerms { buyer: t.buyer, seller: t.seller, dt_start: t.dt_start })
            }
            Some(m) if m.batch != batch => refuse(AtRecordRefusal::Recorded { batch: m.batch }),
            Some(_) => Ok((None, false)),
        };
    }
    let mut changed = false;
    let mut mark = stored;
    if counts_slots && !crate::mutants::active(crate::mutants::Mutation::UnbackedSlotEntries) {
        let Some(m) = mark.as_mut() else {
            return revert(
                EntryRecordError::NoAgreement { buyer: t.buyer, seller: t.seller, dt_start: t.dt_start }.to_string(),
            );
        };
        let n = if entry.sender == t.seller { &mut m.seller_slot_entries } else { &mut m.buyer_slot_entries };
        if *n >= MAX_SLOT_ENTRIES_PER_PARTY {
            return revert(EntryRecordError::SlotEntriesSpent { who: entry.sender, n: *n }.to_string());
        }
        *n += 1;
        changed = true;
    }
    let by_buyer = entry.sender == t.buyer;
    let owed = match (&entry.tx, mark.as_mut()) {
        (IorTx::Opinion(_), Some(m)) if by_buyer && !m.opinion && entry.recorded_at <= t.dl => {
            m.opinion = true;
            true
        }
        (IorTx::Expire(_), Some(m))
            if by_buyer && !m.expiry && entry.recorded_at > t.dl.saturating_add(p.expiry_ms) =>
        {
            m.expiry = true;
            true
        }
        _ => false,
    };
    let reserved = owed
        || (crate::mutants::active(crate::mutants::Mutation::ReserveForAnyOpinion)
            && matches!(entry.tx, IorTx::Opinion(_) | IorTx::Expire(_)));
    Ok((mark.filter(|_| changed || owed), reserved))
}

/// Whether AT `entry` (its buyer's, with its seller's valid signature)
/// may reopen the agreement key that `m` marks (issue 11, attack r10 [1]):
/// `Ok(Some(used))`, the terms digests to keep as used for the key
/// (`agr/KEY`), or a revert with an [`AtRecordRefusal`].
///
/// `SC_DS_AT` marks a key with the first seller-signed AT whatever
/// execution decides; an AT that execution refused (the seller's balance
/// short at that instant, a `fund` still queued) would otherwise bar the
/// pair from the period for good. The AT may reopen the key when:
/// - its terms differ from the mark's and from every terms that marked the
///   key before ([`AtRecordRefusal::TermsUsed`]): a seller signature is
///   executed in one batch only, so one signature still costs its seller
///   at most one α (attack r9 [3]), and the AT is a new agreement the
///   seller signed, not a replay;
/// - the batch that recorded the marking AT has settled
///   ([`AtRecordRefusal::MarkUnsettled`]); no later batch can hold an AT
///   of the key (the mark refuses them);
/// - it is recorded before the end of the delivery period of the AT that
///   marked the key ([`AtRecordRefusal::MarkPeriodOver`], attack r11 [4]),
///   and the witness proves the key's agreement absent from the latest
///   settled state ([`AtRecordRefusal::NotProvedClosed`]). An agreement
///   closes only by an entry of its own terms recorded at or after their
///   `DT_end` (an ST, or an expiry after `DL + expiry`), and the marking
///   AT's batch has settled, so an agreement the marking AT opened would
///   still be in the settled state: an absent agreement was never opened.
///   (The new AT's own `DT_end` bounds nothing here: a seller may sign
///   terms of one start with several ends, and a key whose agreement was
///   opened and settled stays closed.) Every AT that marked the key
///   before was proved refused the same way when the key was reopened
///   from it, and its terms stay refused;
/// - the key was reopened fewer than [`MAX_REOPENS_PER_KEY`] times.
fn reopen_check(
    ctx: &mut CallContext<'_, '_>,
    p: &RecordParams,
    entry: &Entry,
    m: &AgreementMark,
    w: &StateWitness,
) -> Result<Option<Vec<Hash32>>, ContractError> {
    let t = entry.tx.terms();
    let refuse = |why: AtRecordRefusal| revert(why.to_string());
    let terms = t.seller_digest(&p.domain);
    let mut used = ctx.read_typed::<Vec<Hash32>>(&agrkey(&t.key()))?.unwrap_or_default();
    if m.terms == terms || used.contains(&terms) {
        return refuse(AtRecordRefusal::TermsUsed);
    }
    if used.len() >= MAX_REOPENS_PER_KEY {
        return refuse(AtRecordRefusal::ReopensSpent { max: MAX_REOPENS_PER_KEY });
    }
    let now = entry.recorded_at;
    if now >= m.dt_end && !crate::mutants::active(crate::mutants::Mutation::ReopenSettledKey) {
        return refuse(AtRecordRefusal::MarkPeriodOver { dt_end: m.dt_end, now });
    }
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    if m.batch >= fin {
        return refuse(AtRecordRefusal::MarkUnsettled { batch: m.batch });
    }
    let key = RecordKey::Agreement(t.key());
    let root = settled_root(ctx)?;
    let open_unchecked = crate::mutants::active(crate::mutants::Mutation::ReopenOpenAgreement);
    match open_priced(ctx, &std::collections::BTreeSet::from([key]), w, &root)? {
        Ok((state, _)) if open_unchecked || !state.agreements.contains_key(&t.key()) => {}
        Ok(_) => return refuse(AtRecordRefusal::NotProvedClosed { why: "its agreement is open".into() }),
        Err(why) => return refuse(AtRecordRefusal::NotProvedClosed { why }),
    }
    used.push(m.terms);
    Ok(Some(used))
}

/// `SC_DS_AT` / `SC_DS_ST`: appends a transaction to this block's batch.
fn record(
    ctx: &mut CallContext<'_, '_>,
    tx: IorTx,
    latest: Latest,
    reopen: Option<StateWitness>,
) -> Result<Vec<u8>, ContractError> {
    let Some(p) = ctx.read_typed::<RecordParams>(RECORD_PARAMS)? else { return revert("IOR contract not initialised") };
    let Latest { next, header: latest } = latest;
    let current = latest.filter(|h| h.height == ctx.height());
    let mut h = match current {
        Some(h) => h,
        None => open_batch(ctx, next)?,
    };
    if h.len() as u32 >= p.max_batch {
        return revert(format!("batch {} is full ({} transactions per block)", h.id, p.max_batch));
    }
    // Reputation is settlement state, off this chain: a barred trader's
    // entries are refused by execution (each costing it α again), and the
    // per-sender cap below bounds how much of a batch one account fills.
    let sender = ctx.caller();
    let prev = touch(ctx, &sender)?;
    if prev.is_some_and(|t| t.batch > h.id) {
        // `withdraw` after this block's batch opened: its debit lands in
        // the next batch, and the account must stay pending until then.
        return revert(format!("a withdrawal of {sender} is queued for batch {}; record after it opens", h.id + 1));
    }
    let sent = prev.filter(|t| t.batch == h.id).map_or(0, |t| t.sent);
    if sent >= p.max_entries_per_sender {
        return revert(format!(
            "{sender} already recorded {sent} entries in batch {} (at most {} per sender per block)",
            h.id, p.max_entries_per_sender
        ));
    }
    let entry = Entry { sender, recorded_at: ctx.timestamp(), tx };
    let encoded = bytes(&entry);
    let bound = max_entry_bytes(p.max_batch);
    if encoded.len() > bound {
        return revert(format!(
            "entry of {} bytes exceeds the {bound} bytes every dispute of a full batch can carry",
            encoded.len()
        ));
    }
    let weighed = entry_weighed_records(&entry, p.meter_step_s);
    let records = weighed.0;
    let gas = entry_gas_of(encoded.len(), weighed);
    if gas > MAX_ENTRY_GAS {
        return revert(format!("entry of {gas} gas exceeds the {MAX_ENTRY_GAS} one entry may weigh"));
    }
    if let IorTx::At(at) = &entry.tx {
        let t = &at.terms;
        let step_s = ctx.read_typed::<MeterRecord>(&mkey(&t.seller))?.map_or(p.meter_step_s, |m| m.step_s);
        if let Err(e) = largest_st_fits(t, step_s, p.meter_step_s, p.max_batch) {
            return revert(e.to_string());
        }
    }
    let sent_gas = prev.filter(|t| t.batch == h.id).map_or(0, |t| t.gas);
    if sent_gas.saturating_add(gas) > MAX_SENDER_GAS {
        return revert(format!(
            "{sender} already sent {sent_gas} gas of entries in batch {}; this entry's {gas} would exceed the \
             {MAX_SENDER_GAS} one sender may use per batch",
            h.id
        ));
    }
    let mark_key = agkey(&entry.tx.terms().key());
    let stored = ctx.read_typed::<AgreementMark>(&mark_key)?;
    let parties = pending_parties(ctx, &p, &entry, stored.as_ref())?;
    let reopened = match (&reopen, &stored) {
        (Some(w), Some(m)) if entry.sender == entry.tx.terms().buyer && parties.contains(&entry.tx.terms().seller) => {
            reopen_check(ctx, &p, &entry, m, w)?
        }
        _ => None,
    };
    let (mark, reserved) = agreement_mark(&p, h.id, &entry, &parties, stored, weighed.1 > 0, reopened.is_some())?;
    // ATs and STs leave `RESERVED_GAS` of the budget to the opinions and
    // expiries their buyers are owed, so a buyer's `O_b` and expiry
    // always find room; any other opinion or expiry (not its buyer's, no
    // recorded AT, a second one, out of its time) is weighed like an ST
    // and never takes the reserve.
    let limit = if reserved { MAX_BATCH_GAS } else { MAX_BATCH_GAS - RESERVED_GAS };
    let total = h.gas.saturating_add(gas);
    if total > limit {
        return revert(format!(
            "batch {} weighs {} gas; this entry's {gas} would exceed the {limit} its kind may fill (of the \
             {MAX_BATCH_GAS} a dispute of the batch can re-execute in one call)",
            h.id, h.gas
        ));
    }
    // Every other party whose IOR state the entry reads (an AT's seller)
    // must not have a withdrawal queued for a later batch either: its
    // settled balance was paid out after this batch opened, and the debit
    // lands only in the next batch, so this batch would lock coin the
    // party no longer has (and the next batch's debit would overdraw it).
    let mut others = Vec::new();
    for party in parties {
        if party == sender {
            continue;
        }
        let t = touch(ctx, &party)?;
        if t.is_some_and(|t| t.batch > h.id) {
            return revert(format!(
                "a withdrawal of {party} is queued for batch {}; an entry naming it records after that batch opens",
                h.id + 1
            ));
        }
        if t.is_none_or(|t| t.batch < h.id) {
            others.push(party);
        }
    }
    if let Some(m) = mark {
        ctx.write_typed(&mark_key, &m)?;
    }
    if let Some(used) = reopened {
        ctx.write_typed(&agrkey(&entry.tx.terms().key()), &used)?;
    }
    ctx.write_typed(&ptkey(&sender), &Touch { batch: h.id, sent: sent + 1, gas: sent_gas.saturating_add(gas) })?;
    for party in others {
        ctx.write_typed(&ptkey(&party), &Touch { batch: h.id, sent: 0, gas: 0 })?;
    }
    let index = h.len() as u32;
    h.records = h.records.saturating_add(records);
    h.gas = total;
    let kind = if entry.tx.is_at() { "at" } else { "st" };
    if entry.tx.is_at() {
        h.at_count += 1;
    } else {
        h.st_count += 1;
    }
    // The entry itself is this transaction's block data; the chain keeps
    // only the rolling commitment.
    let eh = ctx.hash(TAG_ENTRY, &encoded)?;
    h.commitment = ctx.hash(TAG_BATCH_DATA, &commitment_preimage(&h.commitment, &eh))?;
    ctx.write_typed(&bkey(h.id), &h)?;
    ctx.emit(
        "ior_new_data",
        vec![("batch".into(), h.id.to_string()), ("index".into(), index.to_string()), ("kind".into(), kind.into())],
    )?;
    Ok(bytes(&(h.id, index)))
}

/// `SC_CR` (issue 11: one TCR root per batch): the executor posts the
/// Merkle root over one leaf per entry. The chain checks the entry hashes
/// against the batch's commitment and computes the root; it keeps only the
/// root. Whether each leaf's verdict and effects follow from its entry is
/// checked where the entries are at hand: by validators and meters off
/// chain, by `dispute_entry` for one entry, and by `finalize`.
fn record_tcrs(ctx: &mut CallContext<'_, '_>, a: SubmitTcrs, stated: Option<Hash32>) -> Result<Vec<u8>, ContractError> {
    let mut h = header(ctx, a.batch)?;
    if h.height >= ctx.height() {
        return revert(format!("batch {} is still recording", h.id));
    }
    if h.state != BatchState::Open {
        return revert(format!("batch {} is settled", h.id));
    }
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    let c = cfg(ctx)?;
    if fin != h.id && !c.pipelined {
        return revert(format!("batch {fin} must settle before batch {}", h.id));
    }
    // Pipelined: the root this posting builds on, recorded with it (one
    // header read, whatever the number of batches posted ahead): stated
    // (`sc_cr_on`), else the settled root or the predecessor's posted one.
    let claimed = if !c.pipelined {
        None
    } else if stated.is_some() {
        stated
    } else if fin == h.id {
        Some(settled_root(ctx)?)
    } else {
        let p = header(ctx, h.id - 1)?;
        match p.post_root.filter(|_| p.tcr_root.is_some() && !p.overturned && p.state == BatchState::Open) {
            Some(r) => Some(r),
            None => return revert(format!("batch {} has no standing TCRs to build batch {} on", p.id, h.id)),
        }
    };
    let caller = ctx.caller();
    let assigned_ok = caller == h.executor && active_node(ctx, &caller, NodeRole::Executor)?;
    // Another active executor stands in for an assigned one that left or
    // forfeited, or that withheld its TCRs for a whole window after the
    // batch closed (a silent executor must not freeze settlement).
    let closed = h.closed_at.unwrap_or(ctx.timestamp());
    let withheld = h.posted_by.is_none() && ctx.timestamp() > closed.saturating_add(c.window_ms);
    let stand_in = (withheld || !active_node(ctx, &h.executor, NodeRole::Executor)?)
        && active_node(ctx, &caller, NodeRole::Executor)?;
    if h.posted_by.is_some() || h.tcr_root.is_some() {
        // Pipelined: a void posting is replaced at once by any active
        // executor, claiming the root it must build on.
        let Some(must) = void_posting(ctx, &c, &h, fin)? else {
            return revert(format!("TCRs already recorded for batch {}", h.id));
        };
        if !active_node(ctx, &caller, NodeRole::Executor)? {
            return revert(format!("only an active executor may replace batch {}'s void posting", h.id));
        }
        let free = crate::mutants::active(crate::mutants::Mutation::ReplaceAnyClaim);
        match must {
            Some(r) if claimed != Some(r) && !free => {
                return revert(format!("batch {}'s replacement must claim the root {r} it builds on", h.id));
            }
            None if claimed == claimed_pre_root(ctx, &h)? && !free => {
                return revert(format!("batch {}'s replacement claims the overturned root again", h.id));
            }
            _ => {}
        }
        mark_replaced(ctx, &h)?;
        ctx.emit("ior_tcrs_replaced", vec![("batch".into(), h.id.to_string()), ("by".into(), caller.to_string())])?;
    } else if !assigned_ok && !stand_in {
        return revert(format!("only the batch's executor {} may record its TCRs", h.executor));
    }
    // Exactly one leaf per entry, in entry order.
    if a.leaves.len() != h.len() || a.leaves.iter().enumerate().any(|(i, l)| l.tcr.index as usize != i) {
        return revert("TCRs do not cover the batch's entries in order");
    }
    // The last leaf's root is the batch's post-state root.
    if a.leaves.last().is_some_and(|l| l.post_root != a.post_root) {
        return revert("the post-state root is not the last leaf's");
    }
    // The burned total is no free number beside the roots: it is the sum
    // of the `Burn` effects the leaves commit to, each of which
    // `dispute_entry` (the effects follow from the verdict) and
    // `dispute_state` (the pool covers it) check per entry. So `finalize`
    // never pays out more than the batch's committed burns.
    match posted_burn(&a.leaves) {
        Some(b) if b == a.burned => {}
        committed => {
            return revert(format!(
                "the burned total {} is not the sum of the leaves' burns ({})",
                a.burned,
                committed.map_or_else(|| "overflow".to_string(), |b| b.to_string())
            ))
        }
    }
    check_entry_hashes(ctx, &h, &a.entry_hashes)?;
    let root = leaves_root(ctx, &c.params.domain, h.id, &a.entry_hashes, &a.leaves)?;
    h.tcr_root = Some(root);
    h.post_root = Some(a.post_root);
    h.burned = Some(a.burned);
    h.tcr_height = Some(ctx.height());
    h.posted_by = Some(caller);
    // A replacement's window, and its assigned validator's turn
    // ([`validator_turn_start`]), run from the replacement (attack r17
    // [2]); planted: the replaced posting's time is kept.
    let keep = crate::mutants::active(crate::mutants::Mutation::ReplacementKeepsTurn) && h.complete_at.is_some();
    if !keep {
        h.complete_at = Some(ctx.timestamp());
    }
    if let Some(r) = claimed {
        ctx.write_typed(&prkey(h.id), &r)?;
    }
    ctx.emit(
        "ior_tcrs_recorded",
        vec![("batch".into(), h.id.to_string()), ("validator".into(), h.validator.to_string())],
    )?;
    ctx.write_typed(&bkey(h.id), &h)?;
    Ok(bytes(&root))
}

/// The coin a batch's posted leaves burn: the sum of their
/// [`crate::types::Effect::Burn`] effects (`None` on overflow). `sc_cr` requires the
/// posted `burned` total to be exactly this.
pub fn posted_burn(leaves: &[PostedLeaf]) -> Option<Amount> {
    leaves
        .iter()
        .flat_map(|l| &l.tcr.effects)
        .filter_map(|e| if let crate::types::Effect::Burn(a) = e { Some(*a) } else { None })
        .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a))
}

fn settle_batch(
    ctx: &mut CallContext<'_, '_>,
    mut h: BatchHeader,
    post_root: Hash32,
    burned: Amount,
    disputed: bool,
) -> Result<(), ContractError> {
    ctx.pay(&BLACK_HOLE, burned)?;
    h.post_root = Some(post_root);
    h.burned = Some(burned);
    h.state = BatchState::Settled { disputed, at: ctx.timestamp() };
    ctx.write_typed(&bkey(h.id), &h)?;
    ctx.write_typed(NEXT_SETTLE, &(h.id + 1))?;
    ctx.write_typed(SETTLED_ROOT, &post_root)?;
    ctx.emit(
        "ior_settled",
        vec![
            ("batch".into(), h.id.to_string()),
            ("entries".into(), h.len().to_string()),
            ("burned".into(), burned.to_string()),
            ("root".into(), post_root.to_string()),
        ],
    )
}

/// Gas of one tree-node hash (64 bytes in).
const NODE_HASH_GAS: u64 = gridledger_ledger::gas::HASH_BASE + 2 * gridledger_ledger::gas::HASH_WORD;

/// A partial state tree on chain and the hashes already paid for.
struct Priced {
    tree: Smt,
    paid: u64,
}

impl Priced {
    /// The root, charging every hash computed since the last charge.
    fn root(&mut self, ctx: &mut CallContext<'_, '_>) -> Result<Hash32, ContractError> {
        let r = self.tree.root();
        ctx.charge((self.tree.hashes() - self.paid) * NODE_HASH_GAS)?;
        self.paid = self.tree.hashes();
        Ok(r)
    }
}

/// Opens witness `w` for exactly `keys` against `root`, charging the
/// hashes of each key's path and record and of the tree: the records brought
/// (as a partial state) and the partial tree, or why it does not open.
fn open_priced(
    ctx: &mut CallContext<'_, '_>,
    keys: &std::collections::BTreeSet<RecordKey>,
    w: &StateWitness,
    root: &Hash32,
) -> Result<Result<(crate::exec::PreState, Priced), String>, ContractError> {
    let words: u64 = w.records.iter().map(|r| (bytes(r).len() as u64).div_ceil(32)).sum();
    ctx.charge(
        2 * keys.len() as u64 * gridledger_ledger::gas::HASH_BASE
            + (words + 2 * keys.len() as u64) * gridledger_ledger::gas::HASH_WORD,
    )?;
    let (state, tree) = match crate::state::open_witness(keys, w) {
        Ok(x) => x,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut t = Priced { tree, paid: 0 };
    if t.root(ctx)? != *root {
        return Ok(Err(format!("the records are not proved against root {root}")));
    }
    Ok(Ok((state, t)))
}

/// What the chain computes when it executes a batch itself: the leaves
/// with their per-entry post-state roots.
struct ChainRun {
    leaves: Vec<TcrLeaf>,
    post_root: Hash32,
    burned: Amount,
}

/// Re-executes a batch on chain (`SC_EXE_*` on the primary chain) from
/// the records it touches, which the caller brought with their proof
/// against the settled root ([`crate::state::batch_witness`]): applies
/// the batch's queue items, executes its entries and computes the state
/// root after each entry through the proof. The state lives off this
/// chain, so this path (disputes, silent executors) is the only one that
/// reads it. Gas grows with the entries and queue items (one tree path per
/// record touched), not with the state.
fn reexecute(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    h: &BatchHeader,
    es: &[Entry],
    w: &StateWitness,
    settled: Hash32,
) -> Result<ChainRun, ContractError> {
    let items = queue_items(ctx, h)?;
    let queue_keys = crate::state::queue_keys(&items);
    let mut keys = crate::state::entry_keys(es, &[], c.params.meter_step_s);
    keys.extend(queue_keys.iter().copied());
    let (mut state, mut tree) = match open_priced(ctx, &keys, w, &settled)? {
        Ok(x) => x,
        Err(why) => return revert(format!("the state brought is not the settled state (root {settled}): {why}")),
    };
    crate::state::apply_queue(&mut state, &c.params, &items).map_err(|e| ContractError::Revert(e.to_string()))?;
    crate::state::update_tree(&mut tree.tree, &queue_keys, &state);
    // Meters are this chain's registry.
    for a in meter_owners(es) {
        if let Some(m) = ctx.read_typed::<MeterRecord>(&mkey(&a))? {
            state.meters.insert(a, m);
        }
    }
    let mut leaves = execute_leaves(&mut OnChain(ctx), &c.params, &state, es)?;
    state.meters.clear();
    state.closed_in_batch.clear();
    state.penalised_in_batch.clear();
    let mut burned = Amount::ZERO;
    let mut post_root = tree.root(ctx)?;
    // One root per entry, each one path of hashes per record the entry
    // touches (`dispute_state` checks one entry's root instead).
    for (l, e) in leaves.iter_mut().zip(es) {
        ctx.charge(crate::exec::STEP_GAS)?;
        burned = burned
            .checked_add(
                crate::exec::apply_effects(&mut state, &c.params, &e.tx.terms().key(), &l.tcr.effects)
                    .map_err(|err| ContractError::Revert(format!("internal: {err}")))?,
            )
            .ok_or_else(|| ContractError::Revert("overflow".into()))?;
        let touched =
            crate::state::entry_keys(std::slice::from_ref(e), std::slice::from_ref(&l.tcr), c.params.meter_step_s);
        crate::state::update_tree(&mut tree.tree, &touched, &state);
        post_root = tree.root(ctx)?;
        l.post_root = post_root;
    }
    Ok(ChainRun { leaves, post_root, burned })
}

/// Where a successful dispute's disclosure reward goes ([`punish`]).
enum Reward {
    /// To the dispute's sender, which committed to it ([`commit_dispute`]).
    Pay(Address),
    /// Held for the batch ([`HeldReward`]): its sender committed nothing
    /// (a mempool copy, or another dispute of the same batch sent after a
    /// committed one was seen). The header is the batch as posted and the
    /// hash the settled root before it: what a committed discloser's own
    /// dispute is checked against when it claims the reward.
    Hold(Box<BatchHeader>, Hash32),
    /// Nobody is rewarded; the whole forfeit is burned.
    Burn,
}

/// `rh/BATCH`: the disclosure reward of a batch whose first successful
/// dispute came from a sender without a commitment, held for the first
/// party that committed to a valid dispute of the batch before it
/// ([`begin_dispute`]).
#[derive(BorshSerialize, BorshDeserialize)]
struct HeldReward {
    reward: Amount,
    /// Height of the dispute that overturned the batch: only a commitment
    /// recorded in an earlier block claims the reward.
    height: u64,
    /// The batch as its TCRs were posted (before it was overturned).
    header: BatchHeader,
    /// The settled root before the batch.
    pre_root: Hash32,
}

/// Forfeits the deposits of the executor that posted a batch's wrong TCRs
/// and of the assigned validator (unless it is the discloser or its turn
/// has not passed), pays `rewardee` its share and burns the rest.
fn punish(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    h: &BatchHeader,
    discloser: Address,
    rewardee: Reward,
) -> Result<(), ContractError> {
    // The assigned validator upheld a wrong TCR only once its turn (the
    // first half of the window) has passed: a dispute sent before that,
    // e.g. by the executor's own sybil in the next block, does not burn an
    // honest validator that had no chance to act. (`finalize` comes after
    // the whole window.)
    // Pipelined: the turn starts once the batch's claimed pre-root is
    // settled ([`validator_turn_start`]); before that the validator is
    // never late (attack r15: a batch posted ahead, disclosed by the
    // forger's accomplice before the honest watcher could know its
    // pre-root to be the settled one, burned the watcher's deposit).
    let now = ctx.timestamp();
    let late_from = |d: Timestamp| now > d.saturating_add(c.window_ms / 2);
    let validator_late = if c.pipelined && !crate::mutants::active(crate::mutants::Mutation::ValidatorTurnFromPosting) {
        validator_turn_start(ctx, h)?.is_some_and(late_from)
    } else {
        h.complete_at.is_none_or(late_from)
    };
    let mut forfeited = Vec::new();
    if let Some(e) = h.posted_by {
        forfeited.push(forfeit(ctx, &e)?);
    }
    if discloser != h.validator && validator_late {
        forfeited.push(forfeit(ctx, &h.validator)?);
    }
    let (mut reward, mut burn) = (Amount::ZERO, Amount::ZERO);
    for d in forfeited {
        let r = if matches!(rewardee, Reward::Burn) {
            Amount::ZERO
        } else {
            Amount(d.0 * u128::from(c.bonus_permille.min(1000)) / 1000)
        };
        reward = Amount(reward.0 + r.0);
        burn = Amount(burn.0 + (d.0 - r.0));
    }
    match rewardee {
        Reward::Pay(to) => ctx.pay(&to, reward)?,
        // Kept by the contract for the batch's committed discloser ([`claim`]).
        Reward::Hold(header, pre_root) => {
            ctx.write_typed(&rhkey(h.id), &HeldReward { reward, height: ctx.height(), header: *header, pre_root })?;
            let mut list = ctx.read_typed::<Vec<u64>>(HELD_LIST)?.unwrap_or_default();
            list.push(h.id);
            ctx.write_typed(HELD_LIST, &list)?;
        }
        Reward::Burn => {}
    }
    ctx.pay(&BLACK_HOLE, burn)?;
    ctx.emit(
        "ior_tcr_overturned",
        vec![
            ("batch".into(), h.id.to_string()),
            ("by".into(), discloser.to_string()),
            ("reward".into(), reward.to_string()),
            ("burned".into(), burn.to_string()),
        ],
    )
}

/// Settles a batch with the chain's own run, storing its verdicts (only
/// batches the chain executed keep verdicts in storage).
fn settle_with_chain_tcrs(ctx: &mut CallContext<'_, '_>, h: BatchHeader, run: ChainRun) -> Result<(), ContractError> {
    let correct: Vec<Tcr> = run.leaves.into_iter().map(|l| l.tcr).collect();
    let (ats, sts): (Vec<Tcr>, Vec<Tcr>) = correct.iter().cloned().partition(|t| t.outcome.is_at());
    ctx.write_typed(&tkey(h.id, true), &verdicts(&ats))?;
    ctx.write_typed(&tkey(h.id, false), &verdicts(&sts))?;
    settle_batch(ctx, h, run.post_root, run.burned, true)
}

/// `pre/BATCH`: the root a batch posted under [`PrimaryConfig::pipelined`]
/// builds on, recorded by `sc_cr` ([`claimed_pre_root`]).
fn prkey(id: u64) -> Vec<u8> {
    [b"pre/".as_slice(), &id.to_be_bytes()].concat()
}

/// `rp/BATCH`: the height of batch `BATCH`'s first posting, written when
/// a posting of the batch is first replaced or taken back (never for a
/// batch posted once): a dispute committed to at or after that height and
/// no later than the standing posting's block was built for a posting
/// since replaced ([`EntryDisputeError::Replaced`]); one committed before
/// the batch's first posting was built for none and risks its bond
/// (attack r18 [1]).
fn rpkey(id: u64) -> Vec<u8> {
    [b"rp/".as_slice(), &id.to_be_bytes()].concat()
}

/// `vd/BATCH`: batch `BATCH`'s postings since replaced or taken back
/// ([`VoidedPosting`]), the newest [`MAX_VOIDED_POSTINGS`].
fn vdkey(id: u64) -> Vec<u8> {
    [b"vd/".as_slice(), &id.to_be_bytes()].concat()
}

/// Voided postings kept per batch ([`VoidedPosting`]): the oldest is
/// dropped beyond this. A forger's posting is voided by the posting
/// right after the dispute commitment it fears, so its record is among
/// the newest.
pub const MAX_VOIDED_POSTINGS: usize = 8;

/// [`PrimaryConfig::pipelined`]: a posting of a batch that a later
/// posting voided (replaced it, or `finalize` took it back), as it stood:
/// a dispute its sender committed to while it stood, of other leaves
/// than the standing posting's, is judged against it (attack r20 [1]).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct VoidedPosting {
    /// The batch header as the posting stood.
    pub header: BatchHeader,
    /// The pre-state root the posting claimed.
    pub pre_root: Hash32,
    /// The height of the block that voided it.
    pub until: u64,
}

/// Marks batch `h`'s standing posting as replaced ([`rpkey`]): the first
/// posting's height is kept once, whatever the number of replacements;
/// and keeps the posting itself ([`VoidedPosting`]).
fn mark_replaced(ctx: &mut CallContext<'_, '_>, h: &BatchHeader) -> Result<(), ContractError> {
    let Some(posted) = h.tcr_height else { return Ok(()) };
    if ctx.read(&rpkey(h.id))?.is_none() {
        ctx.write_typed(&rpkey(h.id), &posted)?;
    }
    if crate::mutants::active(crate::mutants::Mutation::VoidedPostingForgotten) {
        return Ok(());
    }
    if let (Some(pre_root), Some(_)) = (claimed_pre_root(ctx, h)?, h.tcr_root) {
        let mut list = ctx.read_typed::<Vec<VoidedPosting>>(&vdkey(h.id))?.unwrap_or_default();
        list.push(VoidedPosting { header: h.clone(), pre_root, until: ctx.height() });
        if list.len() > MAX_VOIDED_POSTINGS {
            list.remove(0);
        }
        ctx.write_typed(&vdkey(h.id), &list)?;
    }
    Ok(())
}

/// [`PrimaryConfig::pipelined`]: the voided posting of batch `batch` a
/// dispute (`method`, `raw`) by the caller is judged against, if any: the
/// newest one that stood when the caller committed to this very dispute
/// (committed at or after the voided posting's block and before the
/// block that voided it, within the reveal window) and whose TCR root is
/// not the standing posting's (`standing`; a voided posting with the
/// standing leaves is judged through the standing one, attack r17 [1]).
/// Returns the posting and the caller's commitment key.
fn voided_committed(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    batch: u64,
    standing: Option<Hash32>,
    method: &str,
    raw: &[u8],
) -> Result<Option<(VoidedPosting, Vec<u8>)>, ContractError> {
    let Some(list) = ctx.read_typed::<Vec<VoidedPosting>>(&vdkey(batch))? else { return Ok(None) };
    let digest = ctx.hash(crate::types::TAG_DISPUTE_COMMIT, &bytes(&(method, raw)))?;
    for v in list.into_iter().rev() {
        let (Some(root), Some(posted)) = (v.header.tcr_root, v.header.tcr_height) else { continue };
        if Some(root) == standing {
            continue;
        }
        if let Some((key, mine)) = committed_before(ctx, c.window_ms, &digest, v.until)? {
            if mine.height >= posted {
                return Ok(Some((v, key)));
            }
        }
    }
    Ok(None)
}

/// [`PrimaryConfig::pipelined`]: the voided posting of batch `batch` that
/// stood at height `at` (posted at or before it, voided after it), if it
/// is still kept ([`MAX_VOIDED_POSTINGS`]).
fn posting_at(ctx: &mut CallContext<'_, '_>, batch: u64, at: u64) -> Result<Option<VoidedPosting>, ContractError> {
    let list = ctx.read_typed::<Vec<VoidedPosting>>(&vdkey(batch))?.unwrap_or_default();
    Ok(list.into_iter().rev().find(|v| v.header.tcr_height.is_some_and(|p| p <= at) && at < v.until))
}

/// Whether witness `w` opens the records that entries `es` (with TCRs
/// `tcrs`, for their effects) and `d`'s batch's queue items touch
/// against `root` (no revert, gas charged).
fn witness_opens(
    ctx: &mut CallContext<'_, '_>,
    d: &Against,
    es: &[Entry],
    tcrs: &[Tcr],
    w: &StateWitness,
    root: Hash32,
) -> Result<bool, ContractError> {
    let items = queue_items(ctx, &d.h)?;
    let mut keys = crate::state::entry_keys(es, tcrs, d.c.params.meter_step_s);
    keys.extend(crate::state::queue_keys(&items));
    Ok(open_priced(ctx, &keys, w, &root)?.is_ok())
}

/// Whether `entry` and `leaf` are proved by `proof` in `d`'s TCR root.
fn leaf_proved(
    ctx: &mut CallContext<'_, '_>,
    d: &Against,
    entry: &Entry,
    leaf: &PostedLeaf,
    proof: &gridledger_core::MerkleProof,
) -> Result<bool, ContractError> {
    let eh = ctx.hash(TAG_ENTRY, &bytes(entry))?;
    let lh = ctx.hash(crate::types::TAG_TCR_LEAF, &bytes(&(&d.c.params.domain, d.h.id, &eh, leaf)))?;
    ctx.charge(
        (proof.siblings.len() as u64 + 1) * (gridledger_ledger::gas::HASH_BASE + 2 * gridledger_ledger::gas::HASH_WORD),
    )?;
    Ok(proof.verify(&lh, &d.root))
}

/// A dispute that proved a voided posting wrong ([`voided_committed`]):
/// its sender committed to it while the posting stood, so voiding it (by
/// the forger's own later posting, attack r20 [1]) does not save the
/// poster. The bond comes back, the voided posting's poster forfeits its
/// deposit, the discloser is paid its share (`earned` false, a whole-batch
/// dispute whose own TCRs are wrong, burns it) and the rest is burned;
/// the standing posting is untouched (it is judged on its own), and the
/// voided posting cannot be disproved twice.
fn voided_disproved(ctx: &mut CallContext<'_, '_>, d: &Against, earned: bool) -> Result<Vec<u8>, ContractError> {
    ctx.pay(&d.caller, d.bond)?;
    spend_commitment(ctx, &d.commitment)?;
    let lost = match d.h.posted_by {
        Some(e) => forfeit(ctx, &e)?,
        None => Amount::ZERO,
    };
    let reward = if earned { Amount(lost.0 * u128::from(d.c.bonus_permille.min(1000)) / 1000) } else { Amount::ZERO };
    ctx.pay(&d.caller, reward)?;
    ctx.pay(&BLACK_HOLE, Amount(lost.0 - reward.0))?;
    let mut list = ctx.read_typed::<Vec<VoidedPosting>>(&vdkey(d.h.id))?.unwrap_or_default();
    list.retain(|v| v.header.tcr_height != d.h.tcr_height || v.header.tcr_root != d.h.tcr_root);
    ctx.write_typed(&vdkey(d.h.id), &list)?;
    ctx.emit(
        "ior_voided_posting_disproved",
        vec![
            ("batch".into(), d.h.id.to_string()),
            ("by".into(), d.caller.to_string()),
            ("reward".into(), reward.to_string()),
        ],
    )?;
    Ok(bytes(&true))
}

/// The root batch `h`'s posting claims to build on
/// ([`PrimaryConfig::pipelined`]; `None` without pipelining).
fn claimed_pre_root<R: gridledger_ledger::StorageRead>(
    ctx: &mut R,
    h: &BatchHeader,
) -> Result<Option<Hash32>, ContractError> {
    ctx.read_typed::<Hash32>(&prkey(h.id))
}

/// [`PrimaryConfig::pipelined`]: the root a dispute of batch `h` is
/// checked against, its own claimed pre-root, from its posting on (the
/// batch before it may still be open: a batch whose leaves do not follow
/// from the root it claims is wrong whatever that root turns out to be).
/// Refused for a void batch (the next to settle, its claimed pre-root not
/// the settled root).
fn pipelined_pre_root(
    ctx: &mut CallContext<'_, '_>,
    h: &BatchHeader,
) -> Result<Result<Hash32, EntryDisputeError>, ContractError> {
    use crate::mutants::{active, Mutation};
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    let claimed = claimed_pre_root(ctx, h)?;
    if active(Mutation::DisputeAgainstPredecessorRoot) && h.id != fin {
        if let Some(r) = header(ctx, h.id - 1)?.post_root {
            return Ok(Ok(r));
        }
    }
    if active(Mutation::DisputeWaitsForPredecessor) && h.id != fin {
        return Ok(Err(EntryDisputeError::PredecessorUnsettled { batch: h.id, pred: h.id.saturating_sub(1) }));
    }
    if h.id == fin {
        let settled = settled_root(ctx)?;
        return Ok(match claimed {
            Some(r) if r != settled => Err(EntryDisputeError::Void(h.id)),
            _ => Ok(settled),
        });
    }
    Ok(claimed.ok_or(EntryDisputeError::NothingToDispute(h.id)))
}

/// [`PrimaryConfig::pipelined`]: whether batch `h`'s standing posting is
/// void and may be replaced at once ([`record_tcrs`]), and if so the root
/// its replacement must claim. Voidness is decided only against a root
/// known now to be the one `h` must build on: the settled root when `h`
/// is the next to settle, else the post-state root its predecessor's
/// standing, not overturned posting states. While the predecessor is
/// overturned (or unposted) nothing after it is void yet: the root the
/// overturned batch settles with is the chain's own execution of it,
/// known once it is the next to settle, and then `h` is judged against
/// it (attack r16 [2]: a successor claiming an overturned batch's true
/// post-state root is honest and keeps its window). Void then: `h`
/// claims another root, or its poster has forfeited its deposit (it is
/// deactivated and its postings are stood in for; attack r16 [3]). An
/// overturned `h` is not replaced (the chain executes it). O(1): one
/// header and one node read. `Some(Some(root))`: void, the replacement
/// must claim `root`; `Some(None)` only under the planted
/// `VoidOnOverturnedRoot` (any other claim).
fn void_posting<R: gridledger_ledger::StorageRead>(
    ctx: &mut R,
    c: &PrimaryConfig,
    h: &BatchHeader,
    fin: u64,
) -> Result<Option<Option<Hash32>>, ContractError> {
    if !c.pipelined || h.tcr_root.is_none() || h.overturned || h.state != BatchState::Open {
        return Ok(None);
    }
    let Some(claimed) = claimed_pre_root(ctx, h)? else { return Ok(None) };
    let must = if h.id == fin {
        settled_root(ctx)?
    } else {
        let Some(prev) = h.id.checked_sub(1) else { return Ok(None) };
        let p = header(ctx, prev)?;
        if p.tcr_root.is_none() || p.state != BatchState::Open {
            return Ok(None);
        }
        match p.post_root {
            Some(r) if !p.overturned => r,
            // Planted: a successor claiming the overturned root is void at once.
            Some(r) if crate::mutants::active(crate::mutants::Mutation::VoidOnOverturnedRoot) && r == claimed => {
                return Ok(Some(None));
            }
            _ => return Ok(None),
        }
    };
    let poster_out = match h.posted_by {
        Some(a) if !crate::mutants::active(crate::mutants::Mutation::ForfeitedPostingsStand) => {
            !active_node(ctx, &a, NodeRole::Executor)?
        }
        _ => false,
    };
    Ok((claimed != must || poster_out).then_some(Some(must)))
}

/// [`PrimaryConfig::pipelined`]: when the assigned validator's turn on
/// batch `h` (the first half of a window) starts: once both its posting
/// and its predecessor's settlement have happened, its claimed pre-root
/// known to be the settled one. `None` while the predecessor is open.
fn validator_turn_start(ctx: &mut CallContext<'_, '_>, h: &BatchHeader) -> Result<Option<Timestamp>, ContractError> {
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    let Some(done) = h.complete_at else { return Ok(None) };
    if h.id != fin {
        return Ok(None);
    }
    let Some(prev) = h.id.checked_sub(1) else { return Ok(Some(done)) };
    Ok(Some(match header(ctx, prev)?.state {
        BatchState::Settled { at, .. } => done.max(at),
        BatchState::Open => done,
    }))
}

/// A void batch ([`EntryDisputeError::Void`]) at its own `finalize`: its
/// TCRs are taken back, punishing nobody (its executor built on a root
/// that turned out not to settle), and the batch awaits TCRs built on the
/// settled root. O(1): the batches posted after it are void in turn, each
/// taken back at its own turn.
fn take_back(ctx: &mut CallContext<'_, '_>, mut h: BatchHeader) -> Result<(), ContractError> {
    mark_replaced(ctx, &h)?;
    h.tcr_root = None;
    h.tcr_height = None;
    h.post_root = None;
    h.burned = None;
    h.posted_by = None;
    h.complete_at = None;
    ctx.delete(&prkey(h.id))?;
    ctx.write_typed(&bkey(h.id), &h)?;
    ctx.emit("ior_tcrs_taken_back", vec![("batch".into(), h.id.to_string())])
}

/// Punishes the poster of wrong TCRs ([`punish`]) and settles the batch
/// with the chain's run.
fn overturn(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    h: BatchHeader,
    run: ChainRun,
    discloser: Address,
    rewardee: Reward,
) -> Result<(), ContractError> {
    punish(ctx, c, &h, discloser, rewardee)?;
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    if h.id != fin {
        // A pipelined batch after one still open: `finalize` executes it
        // on chain once the batches before it have settled.
        let mut h = h;
        h.overturned = true;
        ctx.write_typed(&bkey(h.id), &h)?;
        return Ok(());
    }
    settle_with_chain_tcrs(ctx, h, run)
}

/// `finalize` of a batch without a TCR root (an executor that never
/// posted, or died before it did) or whose root a dispute overturned: the
/// chain executes the batch itself and settles it, so serial settlement
/// never freezes. An overturned batch is executed at once; an unposted one
/// once two windows have passed since it closed (one for the assigned
/// executor, one for a stand-in). A merely silent executor keeps its deposit.
fn execute_on_chain(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    h: BatchHeader,
    given: Vec<Entry>,
    witness: StateWitness,
) -> Result<Vec<u8>, ContractError> {
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    if fin != h.id {
        return revert(format!("batch {fin} must settle before batch {}", h.id));
    }
    if !h.overturned {
        let Some(closed) = h.closed_at else {
            return revert(format!("batch {} has no complete TCRs", h.id));
        };
        let until = closed.saturating_add(c.window_ms.saturating_mul(2));
        if ctx.timestamp() <= until {
            return revert(format!("batch {} has no complete TCRs; the chain executes it after {until}", h.id));
        }
    }
    let es = entries(ctx, &h, given)?;
    let settled = settled_root(ctx)?;
    let run = reexecute(ctx, c, &h, &es, &witness, settled)?;
    ctx.emit("ior_executed_on_chain", vec![("batch".into(), h.id.to_string())])?;
    settle_with_chain_tcrs(ctx, h, run)?;
    Ok(bytes(&true))
}

/// Is the caller an active validator staking its node deposit (no value
/// attached), else has it attached at least the challenge bond?
fn challenger(ctx: &mut CallContext<'_, '_>, c: &PrimaryConfig) -> Result<Option<bool>, ContractError> {
    let caller = ctx.caller();
    let bond = ctx.value();
    let staked_node = bond.is_zero() && active_node(ctx, &caller, NodeRole::Validator)?;
    Ok((staked_node || bond >= c.challenge_bond).then_some(staked_node))
}

/// What a dispute is checked against ([`begin_dispute`]).
struct Against {
    c: PrimaryConfig,
    caller: Address,
    bond: Amount,
    /// The caller stakes its validator deposit (no bond attached).
    staked_node: bool,
    /// The batch as its TCRs were posted.
    h: BatchHeader,
    /// The posted TCR root.
    root: Hash32,
    /// The settled root before the batch.
    pre_root: Hash32,
    /// The batch's held reward, when this dispute claims it
    /// ([`HeldReward`]).
    claim: Option<Amount>,
    /// The store key of the caller's commitment this claim reveals.
    commitment: Vec<u8>,
    /// Pipelined: the caller committed to this dispute no later than the
    /// block of the batch's standing posting (it was built for a posting
    /// since replaced): a whole-batch dispute that finds the batch correct
    /// is refused ([`EntryDisputeError::Replaced`]), not rejected.
    replaced: bool,
    /// Pipelined: judged against a voided posting ([`voided_committed`]):
    /// `h` is that posting, and a success only punishes its poster
    /// ([`voided_disproved`]).
    voided: bool,
}

/// What every dispute checks first: the caller is a bonded challenger or
/// a staked validator; then either
/// - the dispute claims the batch's held reward ([`HeldReward`]): the
///   batch was overturned by a sender without a commitment, and the caller
///   committed to this very dispute ([`commit_dispute`]) in an earlier
///   block than that, within its reveal window. It is then checked
///   against the batch as posted, though the batch is overturned (or
///   settled) by now; or
/// - the batch has a posted TCR root, is open, not overturned, and its
///   window has not closed.
fn begin_dispute(
    ctx: &mut CallContext<'_, '_>,
    batch: u64,
    method: &str,
    raw: &[u8],
    voided: bool,
) -> Result<Result<Against, EntryDisputeError>, ContractError> {
    let c = cfg(ctx)?;
    let caller = ctx.caller();
    let bond = ctx.value();
    let Some(staked_node) = challenger(ctx, &c)? else {
        return Ok(Err(EntryDisputeError::BondTooSmall { bond: c.challenge_bond, attached: bond }));
    };
    if let Some(held) = ctx.read_typed::<HeldReward>(&rhkey(batch))? {
        let digest = ctx.hash(crate::types::TAG_DISPUTE_COMMIT, &bytes(&(method, raw)))?;
        if let Some(mine) = committed_before(ctx, c.window_ms, &digest, held.height)? {
            if let Some(earlier) = earlier_live_commitment(ctx, &c, mine.1.seq)? {
                return Ok(Err(EntryDisputeError::EarlierCommitment { batch, earlier }));
            }
            let root = held.header.tcr_root.unwrap_or(Hash32::ZERO);
            let (h, pre_root, claim) = (held.header, held.pre_root, Some(held.reward));
            let commitment = mine.0;
            let (replaced, voided) = (false, false);
            return Ok(Ok(Against {
                c,
                caller,
                bond,
                staked_node,
                h,
                root,
                pre_root,
                claim,
                commitment,
                replaced,
                voided,
            }));
        }
    }
    let h = header(ctx, batch)?;
    // Pipelined: a dispute committed to while a posting since voided
    // stood, of other leaves than the standing ones, is judged against
    // that posting (attack r20 [1]: the forger of a caught posting ahead
    // voided it with its own posting of the batch before, on a made-up
    // root, and the committed dispute proved nothing against the
    // standing posting). It can only win: a voided posting found correct
    // is refused (`Replaced`), nothing lost.
    if c.pipelined && voided {
        let standing = h.tcr_root.filter(|_| h.state == BatchState::Open && !h.overturned);
        if let Some((v, commitment)) = voided_committed(ctx, &c, batch, standing, method, raw)? {
            let root = v.header.tcr_root.unwrap_or(Hash32::ZERO);
            return Ok(Ok(Against {
                c,
                caller,
                bond,
                staked_node,
                h: v.header,
                root,
                pre_root: v.pre_root,
                claim: None,
                commitment,
                replaced: true,
                voided: true,
            }));
        }
    }
    let Some(root) = h.tcr_root.filter(|_| h.state == BatchState::Open && !h.overturned) else {
        return Ok(Err(EntryDisputeError::NothingToDispute(h.id)));
    };
    // Pipelined: a dispute its sender committed to no later than the block
    // of the standing posting, and no earlier than the batch's first
    // posting, of a batch whose posting was replaced (a void posting ahead,
    // replaced in between, or taken back by `finalize` and posted again;
    // [`rpkey`]) was built for a posting since replaced. It is judged against the standing posting all the
    // same, but it can only win: a whole-batch dispute that finds the
    // replacement correct is refused (`Replaced`, nothing lost; attack r16
    // [4]) instead of rejected, and one that proves the replacement wrong
    // overturns it (attack r17 [1]: a whole-batch dispute carries the
    // disputer's own TCRs, the entries and the settled-state witness, not
    // the posting, so a forged replacement with the same leaves is disputed
    // by the very dispute its validator committed to for the void posting;
    // refusing it locked the validator out for a whole window).
    let mut replaced = false;
    if c.pipelined && !crate::mutants::active(crate::mutants::Mutation::DisputeJudgedOnReplacement) {
        if let Some(posted) = h.tcr_height {
            let digest = ctx.hash(crate::types::TAG_DISPUTE_COMMIT, &bytes(&(method, raw)))?;
            if let Some((_, mine)) = committed_before(ctx, c.window_ms, &digest, posted.saturating_add(1))? {
                // Only if a replacement happened, and the commitment came
                // no earlier than the first posting (attack r18 [1]: one
                // committed before the batch's first and only posting was
                // built for no posting and risks its bond). Planted: any
                // commitment up to the standing posting's block.
                let first = ctx.read_typed::<u64>(&rpkey(h.id))?;
                replaced = crate::mutants::active(crate::mutants::Mutation::ReplacedWithoutReplacement)
                    || first.is_some_and(|f| mine.height >= f);
                // Only if the posting that stood at the commitment is not
                // the standing one again (attack r19 [1]: a colluding
                // executor voided a correct posting after a frivolous
                // commitment, and the honest replacement posted the same
                // leaves on the same root: that dispute was built for the
                // standing posting and risks its bond).
                if replaced && !crate::mutants::active(crate::mutants::Mutation::ReplacedAgainIsReplaced) {
                    let claimed = claimed_pre_root(ctx, &h)?;
                    if let Some(v) = posting_at(ctx, h.id, mine.height)? {
                        let same = v.header.tcr_root == h.tcr_root
                            && v.header.post_root == h.post_root
                            && v.header.burned == h.burned
                            && Some(v.pre_root) == claimed;
                        replaced = !same;
                    }
                }
            }
            // Planted: the r16 rule, every such dispute refused.
            if replaced && crate::mutants::active(crate::mutants::Mutation::ReplacedDisputeRefused) {
                return Ok(Err(EntryDisputeError::Replaced(h.id)));
            }
        }
    }
    let pre_root = if c.pipelined {
        match pipelined_pre_root(ctx, &h)? {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        }
    } else {
        settled_root(ctx)?
    };
    if let Err(e) = window_open(ctx, &c, &h)? {
        return Ok(Err(e));
    }
    let (claim, commitment, voided) = (None, Vec::new(), false);
    Ok(Ok(Against { c, caller, bond, staked_node, h, root, pre_root, claim, commitment, replaced, voided }))
}

/// A successful claim of a batch's held reward ([`begin_dispute`]): the
/// caller is paid the reward and its bond back, once.
fn claim(ctx: &mut CallContext<'_, '_>, d: &Against, reward: Amount) -> Result<Vec<u8>, ContractError> {
    ctx.delete(&rhkey(d.h.id))?;
    let mut list = ctx.read_typed::<Vec<u64>>(HELD_LIST)?.unwrap_or_default();
    list.retain(|b| *b != d.h.id);
    ctx.write_typed(HELD_LIST, &list)?;
    spend_commitment(ctx, &d.commitment)?;
    let back = d.bond.checked_add(reward).ok_or_else(|| ContractError::Revert("overflow".into()))?;
    ctx.pay(&d.caller, back)?;
    ctx.emit(
        "ior_dispute_reward_claimed",
        vec![
            ("batch".into(), d.h.id.to_string()),
            ("by".into(), d.caller.to_string()),
            ("reward".into(), reward.to_string()),
        ],
    )?;
    Ok(bytes(&true))
}

/// Who is paid the reward of a dispute that just proved a batch wrong
/// (not a claim): its sender if it committed to this dispute in an earlier
/// block within the reveal window (`earned` false, a whole-batch dispute
/// whose own claimed TCRs are wrong, burns it); else nobody yet: the reward
/// is held for the batch's committed discloser ([`HeldReward`]).
fn rewardee(
    ctx: &mut CallContext<'_, '_>,
    d: &Against,
    method: &str,
    raw: &[u8],
    earned: bool,
) -> Result<Reward, ContractError> {
    let digest = ctx.hash(crate::types::TAG_DISPUTE_COMMIT, &bytes(&(method, raw)))?;
    let height = ctx.height();
    let mine = committed_before(ctx, d.c.window_ms, &digest, height)?;
    if let Some((key, _)) = &mine {
        spend_commitment(ctx, key)?;
    }
    Ok(match mine {
        Some(_) if earned => Reward::Pay(d.caller),
        Some(_) => Reward::Burn,
        None => Reward::Hold(Box::new(d.h.clone()), d.pre_root),
    })
}

/// A controversial transaction over the whole batch: the chain
/// re-executes every entry and compares the resulting TCR root with the
/// posted one. This is the challenge for wrong *inputs* in a leaf (a
/// pre-state slice that the earlier entries did not leave), which
/// `dispute_entry` cannot see.
fn dispute(ctx: &mut CallContext<'_, '_>, a: Controversial, raw: &[u8]) -> Result<Vec<u8>, ContractError> {
    let begin = |ctx: &mut CallContext<'_, '_>, voided: bool| -> Result<Result<Against, String>, ContractError> {
        Ok(match begin_dispute(ctx, a.batch, "dispute", raw, voided)? {
            Ok(d) => Ok(d),
            Err(EntryDisputeError::NothingToDispute(b)) => {
                Err(format!("batch {b} has no recorded TCRs awaiting settlement"))
            }
            Err(e) => Err(e.to_string()),
        })
    };
    let mut d = match begin(ctx, true)? {
        Ok(d) => d,
        Err(why) => return revert(why),
    };
    // A voided posting whose claimed pre-root the witness does not open
    // (built for another posting): judged through the standing one.
    if d.voided && !witness_opens(ctx, &d, &a.entries, &[], &a.witness, d.pre_root)? {
        d = match begin(ctx, false)? {
            Ok(d) => d,
            Err(why) => return revert(why),
        };
    }
    let (es, hashes) = entries_hashed(ctx, &d.h, a.entries)?;
    let run = reexecute(ctx, &d.c, &d.h, &es, &a.witness, d.pre_root)?;
    let mut posted = Vec::with_capacity(run.leaves.len());
    for l in &run.leaves {
        let pre_hash = ctx.hash(crate::types::TAG_TCR_INPUTS, &bytes(&l.pre))?;
        posted.push(PostedLeaf { pre_hash, tcr: l.tcr.clone(), post_root: l.post_root });
    }
    let root = leaves_root(ctx, &d.c.params.domain, d.h.id, &hashes, &posted)?;
    let correct: Vec<Tcr> = run.leaves.iter().map(|l| l.tcr.clone()).collect();
    // The posted roots stand only if the TCR root, the post-state root and
    // the burned total are all the chain's.
    let roots_ok = crate::mutants::active(crate::mutants::Mutation::PostRootUnchecked)
        || (d.h.post_root == Some(run.post_root) && d.h.burned == Some(run.burned));
    if d.root == root && roots_ok {
        if d.claim.is_some() {
            return revert(EntryDisputeError::CorrectBatch(d.h.id).to_string());
        }
        if d.replaced {
            // Built for a posting since replaced: nothing lost.
            return revert(EntryDisputeError::Replaced(d.h.id).to_string());
        }
        if d.staked_node {
            let lost = forfeit(ctx, &d.caller)?;
            ctx.pay(&BLACK_HOLE, lost)?;
        } else {
            // The loser's bond pays the winner: the executor it challenged.
            let winner = d.h.posted_by.unwrap_or(BLACK_HOLE);
            ctx.pay(&winner, d.bond)?;
        }
        ctx.emit(
            "ior_dispute_rejected",
            vec![("batch".into(), d.h.id.to_string()), ("by".into(), d.caller.to_string())],
        )?;
        return Ok(bytes(&false));
    }
    if let Some(reward) = d.claim {
        // A claim carries a dispute checked exactly as a direct one: its
        // claimed TCRs must be the batch's correct ones (a blind dispute
        // built without executing the batch claims nothing).
        if a.claimed != correct {
            return revert(EntryDisputeError::WrongClaimedTcrs(d.h.id).to_string());
        }
        return claim(ctx, &d, reward);
    }
    if d.voided {
        return voided_disproved(ctx, &d, a.claimed == correct);
    }
    ctx.pay(&d.caller, d.bond)?;
    let rewardee = rewardee(ctx, &d, "dispute", raw, a.claimed == correct)?;
    overturn(ctx, &d.c, d.h, run, d.caller, rewardee)?;
    Ok(bytes(&true))
}

/// `commit_dispute` (attack_state finding 6, attack_smt commit
/// front-run, attack_smt sidestepped commitment): commits to a dispute
/// (`dispute_entry`, `dispute_state` or the whole-batch `dispute`) before
/// sending it. The argument is
/// `c = H(TAG_DISPUTE_COMMIT_BY, dispute_digest, committer address)`
/// ([`crate::types::dispute_commitment`] of
/// [`crate::types::dispute_digest`] of the method and arguments), stored
/// keyed by `c` *and the committer* with the height, time and inclusion
/// sequence it was recorded at (attack r4 finding 2): since `c` binds its
/// committer, a copy of `c` sent by another address binds nobody and never
/// blocks the committer's own; a committer's second live commitment of
/// the same `c` is refused and changes nothing. Its reveal window is
/// measured from the committer's own commitment. It reveals neither the batch nor the dispute, so watching
/// the mempool tells a copier nothing it could commit to first.
///
/// The reward of a batch belongs to its first committed discloser:
/// - A successful dispute whose sender committed to it under its own
///   address in an earlier block, within the reveal window, is paid the
///   disclosure reward at once.
/// - A successful dispute whose sender committed nothing (a copy of a
///   dispute seen in the mempool, or a *different* valid dispute of the
///   same batch sent after seeing one) still overturns the batch and
///   forfeits the deposits, and its bond comes back, but the reward is
///   held for the batch ([`HeldReward`]). The first party that committed
///   to a dispute of that batch in a block before the overturning one
///   collects it, with its bond back, by sending its committed dispute:
///   the chain checks that dispute against the batch as posted (so a
///   commitment to a dispute that proves nothing collects nothing), and
///   pays once. Later disputes of the batch earn nothing: they are
///   refused (the batch is overturned; [`EntryDisputeError`]).
///
/// A held reward goes to the *first* committer (by inclusion order) whose
/// reveal is a valid dispute (attack r4 finding 1): a claim is checked
/// exactly as a direct dispute (a whole-batch `dispute` whose claimed
/// TCRs are not the batch's claims nothing), and a later committer's
/// claim is refused while an earlier, unrevealed commitment is within the
/// first half of its reveal window ([`earlier_live_commitment`]).
///
/// **Reveal window.** A commitment expires `window_ms` (the dispute
/// window) after it was recorded: revealed later, it earns nothing, and
/// the same commitment may be sent again. There is no commitment deposit:
/// a commitment earns only through a dispute that proves the batch wrong,
/// so committing to disputes one has not found costs a transaction fee
/// and gains nothing, and an expired one costs its holder only the reward
/// it did not claim. A reward nobody claims stays in the contract.
///
/// This does not stop a forging executor from disclosing its own forgery
/// first (it can build and commit the dispute before anyone): that
/// recovers at most `ë × y` of its deposit, the rest is burned.
fn commit_dispute(ctx: &mut CallContext<'_, '_>, commitment: Hash32) -> Result<Vec<u8>, ContractError> {
    let c = cfg(ctx)?;
    let who = ctx.caller();
    prune_commitments(ctx, c.window_ms)?;
    let now = ctx.timestamp();
    let mut mine = ctx.read_typed::<Vec<(u64, Timestamp)>>(&dcakey(&who))?.unwrap_or_default();
    mine.retain(|(_, t)| now < t.saturating_add(c.window_ms));
    if mine.len() >= MAX_OPEN_COMMITMENTS {
        return revert(CommitError::TooManyOpen { open: mine.len(), cap: MAX_OPEN_COMMITMENTS }.to_string());
    }
    let key = dckey(&commitment, &who);
    if let Some(r) = ctx.read_typed::<DcRecord>(&key)? {
        if ctx.timestamp() < r.time.saturating_add(c.window_ms) {
            return revert(format!(
                "dispute commitment {commitment} already committed by {who} at height {}",
                r.height
            ));
        }
    }
    let seq = ctx.read_typed::<u64>(DC_COUNT)?.unwrap_or(0);
    ctx.write_typed(DC_COUNT, &(seq + 1))?;
    ctx.write_typed(&dqkey(seq), &(commitment, who, ctx.timestamp()))?;
    ctx.write_typed(&key, &DcRecord { height: ctx.height(), time: ctx.timestamp(), seq })?;
    mine.push((seq, now));
    ctx.write_typed(&dcakey(&who), &mine)?;
    ctx.emit(
        "ior_dispute_committed",
        vec![("commitment".into(), commitment.to_string()), ("by".into(), who.to_string())],
    )?;
    Ok(bytes(&true))
}

/// `prune_claims`: queues the deletion of up to [`CLAIM_PRUNE_PER_CALL`]
/// claimed-slot records of the settlement state that no entry can read
/// any more ([`crate::state::claim_prunable`]: the slot began more than
/// [`crate::state::claim_horizon_ms`] before this block), each proved
/// present against the settled root (so a call cannot fill a batch's
/// deletions with slots that hold nothing). The next batch to open applies
/// them before its entries ([`QueueItem::Prune`]); at most
/// [`CLAIM_PRUNE_PER_BATCH`] per batch. The driver's executor sends one
/// after every batch it finalizes, oldest slots first, so the records
/// live about one horizon plus the backlog later calls clear.
fn prune_claims(ctx: &mut CallContext<'_, '_>, a: PruneClaims) -> Result<Vec<u8>, ContractError> {
    let refuse = |e: PruneError| revert(e.to_string());
    let c = cfg(ctx)?;
    let now = ctx.timestamp();
    let keys: std::collections::BTreeSet<RecordKey> = a.slots.iter().map(|k| RecordKey::Claimed(*k)).collect();
    if a.slots.is_empty() || a.slots.len() > CLAIM_PRUNE_PER_CALL || keys.len() != a.slots.len() {
        return refuse(PruneError::Count { got: a.slots.len(), max: CLAIM_PRUNE_PER_CALL });
    }
    let horizon = crate::state::claim_horizon_ms(&c.params).unwrap_or(u64::MAX);
    if let Some(k) = a.slots.iter().find(|k| !crate::state::claim_prunable(&c.params, k, now)) {
        return refuse(PruneError::NotExpired { dt_start: k.dt_start, until: k.dt_start.saturating_add(horizon), now });
    }
    let next = ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0);
    let queued = match ctx.read_typed::<(u64, u64)>(PRUNE_PENDING)? {
        Some((b, n)) if b == next => n,
        _ => 0,
    };
    let n = a.slots.len() as u64;
    if queued + n > CLAIM_PRUNE_PER_BATCH {
        return refuse(PruneError::BatchFull { queued, max: CLAIM_PRUNE_PER_BATCH });
    }
    let root = settled_root(ctx)?;
    let state = match open_priced(ctx, &keys, &a.witness, &root)? {
        Ok((state, _)) => state,
        Err(e) => return refuse(PruneError::NotProved(e)),
    };
    if let Some(k) = a.slots.iter().find(|k| !state.claimed.contains_key(k) && !state.slots.contains_key(k)) {
        return refuse(PruneError::Absent(k.dt_start));
    }
    for slot in &a.slots {
        enqueue(ctx, QueueItem::Prune { slot: *slot })?;
    }
    ctx.write_typed(PRUNE_PENDING, &(next, queued + n))?;
    Ok(bytes(&n))
}

/// Deletes up to [`COMMITMENT_PRUNE_PER_CALL`] expired commitments (older
/// than `window`), oldest first: the `dq/SEQ` entry, the committer's
/// `dc/` record when it is still this commitment's (a later re-commitment
/// of the same digest keeps its own), and its entry in the committer's
/// `dca/` list (the list is deleted when empty). Inclusion order is time
/// order, so what remains is a suffix of the sequence, and
/// [`earlier_live_commitment`], which stops at the first missing or
/// half-window-old entry, reads the same.
fn prune_commitments(ctx: &mut CallContext<'_, '_>, window: u64) -> Result<(), ContractError> {
    let now = ctx.timestamp();
    let count = ctx.read_typed::<u64>(DC_COUNT)?.unwrap_or(0);
    let mut head = ctx.read_typed::<u64>(DQ_HEAD)?.unwrap_or(0);
    let start = head;
    while head < count && head - start < COMMITMENT_PRUNE_PER_CALL {
        let Some((commitment, who, time)) = ctx.read_typed::<(Hash32, Address, Timestamp)>(&dqkey(head))? else {
            break;
        };
        if now < time.saturating_add(window) {
            break;
        }
        ctx.delete(&dqkey(head))?;
        let dc = dckey(&commitment, &who);
        if ctx.read_typed::<DcRecord>(&dc)?.is_some_and(|r| r.seq == head) {
            ctx.delete(&dc)?;
        }
        let mut list = ctx.read_typed::<Vec<(u64, Timestamp)>>(&dcakey(&who))?.unwrap_or_default();
        list.retain(|(s, _)| *s != head);
        if list.is_empty() {
            ctx.delete(&dcakey(&who))?;
        } else {
            ctx.write_typed(&dcakey(&who), &list)?;
        }
        head += 1;
    }
    if head != start {
        ctx.write_typed(DQ_HEAD, &head)?;
    }
    Ok(())
}

/// The caller's own commitment to the dispute with `digest`
/// ([`commit_dispute`]) recorded below `height` and still within `window`
/// of when the caller recorded it: its store key and record.
fn committed_before(
    ctx: &mut CallContext<'_, '_>,
    window: u64,
    digest: &Hash32,
    height: u64,
) -> Result<Option<(Vec<u8>, DcRecord)>, ContractError> {
    let sender = ctx.caller();
    let c =
        ctx.hash(crate::types::TAG_DISPUTE_COMMIT_BY, &crate::types::dispute_commitment_preimage(digest, &sender))?;
    let key = dckey(&c, &sender);
    let now = ctx.timestamp();
    Ok(ctx
        .read_typed::<DcRecord>(&key)?
        .filter(|r| r.height < height && now < r.time.saturating_add(window))
        .map(|r| (key, r)))
}

/// A revealed commitment earns once: it is removed, so it no longer has
/// priority over later ones ([`earlier_live_commitment`]).
fn spend_commitment(ctx: &mut CallContext<'_, '_>, key: &[u8]) -> Result<(), ContractError> {
    if !key.is_empty() {
        ctx.delete(key)?;
    }
    Ok(())
}

/// The first-committer rule of a held reward: the sequence number of an
/// unrevealed commitment by another address, recorded before the
/// claimer's (`mine`) less than half a window ago, if any. Commitments
/// are hidden, so any such commitment may be a dispute of this batch: it
/// has priority for the first half of its reveal window (its committer
/// reveals then, or loses priority), so a later committer is refused
/// meanwhile and still has at least half of its own window (measured
/// from its own commitment) to claim. A commitment whose reveal proved
/// nothing (refused) keeps its priority until then. The scan walks back
/// from the claimer's commitment and stops at the first one older than
/// half a window (inclusion order is time order).
fn earlier_live_commitment(
    ctx: &mut CallContext<'_, '_>,
    c: &PrimaryConfig,
    mine: u64,
) -> Result<Option<u64>, ContractError> {
    let (caller, now) = (ctx.caller(), ctx.timestamp());
    let mut seq = mine;
    while seq > 0 {
        seq -= 1;
        let Some((commitment, who, time)) = ctx.read_typed::<(Hash32, Address, Timestamp)>(&dqkey(seq))? else {
            break;
        };
        if now >= time.saturating_add(c.window_ms / 2) {
            break;
        }
        let live = ctx.read_typed::<DcRecord>(&dckey(&commitment, &who))?.is_some_and(|r| r.seq == seq);
        if live && who != caller {
            return Ok(Some(seq));
        }
    }
    Ok(None)
}

/// The end of a `dispute_entry` or `dispute_state` that proved entry `i`
/// wrong: a claim is paid ([`claim`]); otherwise the bond comes back, the
/// deposits are forfeited ([`punish`]), the reward goes where
/// [`rewardee`] says, and the batch is marked overturned, so `finalize`
/// executes it on chain at once.
fn entry_disproved(
    ctx: &mut CallContext<'_, '_>,
    d: Against,
    method: &str,
    raw: &[u8],
    i: u32,
) -> Result<Vec<u8>, ContractError> {
    if let Some(reward) = d.claim {
        return claim(ctx, &d, reward);
    }
    if d.voided {
        voided_disproved(ctx, &d, true)?;
        return Ok(bytes(&i));
    }
    ctx.pay(&d.caller, d.bond)?;
    let rewardee = rewardee(ctx, &d, method, raw, true)?;
    punish(ctx, &d.c, &d.h, d.caller, rewardee)?;
    let mut h = d.h;
    h.overturned = true;
    ctx.write_typed(&bkey(h.id), &h)?;
    Ok(bytes(&i))
}

/// `dispute_entry` (issue 11): a dispute of one entry's TCR. The witness
/// proves that `entry` and `leaf` are leaf `i` of the batch's posted TCR
/// tree (the leaf binds the deployment, the batch and the entry's hash);
/// the chain re-executes that entry on the leaf's own inputs (with the
/// seller's meter read from this chain's registry). A different
/// result proves the executor wrong: its deposit (and a late assigned
/// validator's) is forfeited, the disputer rewarded, and the batch marked
/// overturned, so `finalize` executes it on chain at once. A refused
/// dispute ([`EntryDisputeError`]) reverts and changes nothing.
fn dispute_entry(ctx: &mut CallContext<'_, '_>, a: DisputeEntry, raw: &[u8]) -> Result<Vec<u8>, ContractError> {
    let refuse = |e: EntryDisputeError| revert(e.to_string());
    let mut d = match begin_dispute(ctx, a.batch, "dispute_entry", raw, true)? {
        Ok(d) => d,
        Err(e) => return refuse(e),
    };
    // A voided posting whose TCR root the leaf is not proved in: judged
    // through the standing posting.
    if d.voided && !leaf_proved(ctx, &d, &a.entry, &a.leaf, &a.proof)? {
        d = match begin_dispute(ctx, a.batch, "dispute_entry", raw, false)? {
            Ok(d) => d,
            Err(e) => return refuse(e),
        };
    }
    let (c, h, root) = (&d.c, &d.h, d.root);
    let i = a.leaf.tcr.index;
    if a.proof.index != u64::from(i) || a.proof.leaf_count != h.len() as u64 {
        return refuse(EntryDisputeError::WrongIndex {
            index: a.proof.index,
            count: a.proof.leaf_count,
            len: h.len(),
            tcr: i,
        });
    }
    let eh = ctx.hash(TAG_ENTRY, &bytes(&a.entry))?;
    if ctx.hash(crate::types::TAG_TCR_INPUTS, &bytes(&a.pre))? != a.leaf.pre_hash {
        return refuse(EntryDisputeError::WrongInputs(i));
    }
    let leaf = ctx.hash(crate::types::TAG_TCR_LEAF, &bytes(&(&c.params.domain, h.id, &eh, &a.leaf)))?;
    ctx.charge(
        (a.proof.siblings.len() as u64 + 1)
            * (gridledger_ledger::gas::HASH_BASE + 2 * gridledger_ledger::gas::HASH_WORD),
    )?;
    if !crate::mutants::active(crate::mutants::Mutation::WitnessUnchecked) && !a.proof.verify(&leaf, &root) {
        return refuse(EntryDisputeError::WrongWitness(h.id));
    }
    // The seller's meter is this chain's registry, as in the whole-batch
    // `dispute` and `finalize`, not whatever the leaf's inputs name: a
    // leaf whose inputs name another meter key or interval (a colluding
    // executor "certifying" readings the seller's meter never signed,
    // attack r5/r6) is re-executed with the registered one, and the
    // verdict that differs disproves it. `register_meter` waits while an
    // unsettled batch reads the account and a meter is never replaced, so
    // the registry holds now what it held when the batch executed.
    let mut pre = a.pre;
    pre.meters.clear();
    for o in meter_owners(std::slice::from_ref(&a.entry)) {
        if let Some(m) = ctx.read_typed::<MeterRecord>(&mkey(&o))? {
            pre.meters.insert(o, m);
        }
    }
    let mut mine = execute_leaves(&mut OnChain(ctx), &c.params, &pre, std::slice::from_ref(&a.entry))?
        .pop()
        .map(|l| l.tcr)
        .ok_or_else(|| ContractError::Revert("internal: no TCR".into()))?;
    mine.index = i;
    // The whole TCR counts, effects included: an executor chooses only the
    // verdict, and effects that do not follow from it are wrong.
    let same = if crate::mutants::active(crate::mutants::Mutation::EffectsTrusted) {
        mine.outcome == a.leaf.tcr.outcome
    } else {
        mine == a.leaf.tcr
    };
    if same {
        return refuse(EntryDisputeError::CorrectResult(i));
    }
    entry_disproved(ctx, d, "dispute_entry", raw, i)
}

/// `dispute_state` (issue 11): a per-entry state dispute. The witnesses
/// prove leaf `i` (and leaf `i − 1`) of the batch's posted TCR tree; the
/// records entry `i` touches ([`crate::state::entry_keys`], computed here
/// from the entry and the leaf's effects) are proved present or absent
/// against entry `i`'s pre-root (the settled root for entry 0, whose queue
/// items the chain then applies, else leaf `i − 1`'s post-state root); the
/// chain applies leaf `i`'s effects to them, updates the root through the
/// proof and compares it with leaf `i`'s post-state root. Gas and size
/// grow with the records one entry touches, not with the state. The
/// verdict and effects themselves are `dispute_entry`'s to dispute: this
/// checks the state transition they claim. A different root (or effects
/// that do not apply) overturns the batch as `dispute_entry` does; a
/// refused dispute reverts ([`EntryDisputeError`]) and changes nothing.
fn dispute_state(ctx: &mut CallContext<'_, '_>, a: DisputeState, raw: &[u8]) -> Result<Vec<u8>, ContractError> {
    let refuse = |e: EntryDisputeError| revert(e.to_string());
    let mut d = match begin_dispute(ctx, a.batch, "dispute_state", raw, true)? {
        Ok(d) => d,
        Err(e) => return refuse(e),
    };
    // A voided posting the dispute was not built for (its leaf not in the
    // posting's TCR root, or, for entry 0, its witness not against the
    // posting's claimed pre-root): judged through the standing posting.
    if d.voided {
        let ok = leaf_proved(ctx, &d, &a.entry, &a.leaf, &a.proof)?
            && (a.prev.is_some()
                || witness_opens(
                    ctx,
                    &d,
                    std::slice::from_ref(&a.entry),
                    std::slice::from_ref(&a.leaf.tcr),
                    &a.witness,
                    d.pre_root,
                )?);
        if !ok {
            d = match begin_dispute(ctx, a.batch, "dispute_state", raw, false)? {
                Ok(d) => d,
                Err(e) => return refuse(e),
            };
        }
    }
    let (c, h, root) = (&d.c, &d.h, d.root);
    let i = a.leaf.tcr.index;
    let proved = |ctx: &mut CallContext<'_, '_>,
                  entry: &Entry,
                  leaf: &PostedLeaf,
                  proof: &gridledger_core::MerkleProof|
     -> Result<bool, ContractError> {
        if proof.index != u64::from(leaf.tcr.index) || proof.leaf_count != h.len() as u64 {
            return Ok(false);
        }
        let eh = ctx.hash(TAG_ENTRY, &bytes(entry))?;
        let lh = ctx.hash(crate::types::TAG_TCR_LEAF, &bytes(&(&c.params.domain, h.id, &eh, leaf)))?;
        ctx.charge(
            (proof.siblings.len() as u64 + 1)
                * (gridledger_ledger::gas::HASH_BASE + 2 * gridledger_ledger::gas::HASH_WORD),
        )?;
        Ok(proof.verify(&lh, &root))
    };
    if !proved(ctx, &a.entry, &a.leaf, &a.proof)? {
        return refuse(EntryDisputeError::WrongWitness(h.id));
    }
    // The pre-root: the settled root for entry 0 (the chain then applies
    // the batch's queue items), else the previous leaf's, proved too.
    let (pre_root, items) = match (&a.prev, i.checked_sub(1)) {
        (None, None) => (d.pre_root, queue_items(ctx, h)?),
        (Some((pe, pl, pp)), Some(j)) if pl.tcr.index == j && proved(ctx, pe, pl, pp)? => (pl.post_root, vec![]),
        _ => return refuse(EntryDisputeError::WrongPreState(i)),
    };
    // The records the entry and the leaf's effects touch: computed here,
    // not taken from the disputer, each proved present or absent.
    let queue_keys = crate::state::queue_keys(&items);
    let mut keys = crate::state::entry_keys(
        std::slice::from_ref(&a.entry),
        std::slice::from_ref(&a.leaf.tcr),
        c.params.meter_step_s,
    );
    keys.extend(queue_keys.iter().copied());
    let Ok((mut state, mut tree)) = open_priced(ctx, &keys, &a.witness, &pre_root)? else {
        return refuse(EntryDisputeError::WrongPreState(i));
    };
    if crate::state::apply_queue(&mut state, &c.params, &items).is_err() {
        return refuse(EntryDisputeError::WrongPreState(i));
    }
    crate::state::update_tree(&mut tree.tree, &queue_keys, &state);
    ctx.charge(crate::exec::STEP_GAS)?;
    let after = crate::exec::apply_effects(&mut state, &c.params, &a.entry.tx.terms().key(), &a.leaf.tcr.effects);
    let correct = match after {
        Err(_) => false,
        Ok(_) => {
            crate::state::update_tree(&mut tree.tree, &keys, &state);
            crate::mutants::active(crate::mutants::Mutation::PostRootUnchecked) || tree.root(ctx)? == a.leaf.post_root
        }
    };
    if correct {
        return refuse(EntryDisputeError::CorrectTransition(i));
    }
    entry_disproved(ctx, d, "dispute_state", raw, i)
}

/// `finalize`: settles a batch once its window has passed with no
/// successful dispute, in O(1): the posted post-state root becomes the
/// settled root and the posted burn goes to the black hole. Whether each
/// TCR's verdict and effects follow from its entry (issue 11 item 1), and
/// whether the post-state root is the state they leave, is for disputes to
/// show inside the window (`dispute_entry` for one entry, `dispute` for the
/// whole batch, which checks the roots). A batch without a root, or
/// overturned, is executed on chain ([`execute_on_chain`]): then the
/// caller brings its entries and the records they touch, proved against
/// the settled root.
fn finalize(ctx: &mut CallContext<'_, '_>, a: FinalizeArgs) -> Result<Vec<u8>, ContractError> {
    let c = cfg(ctx)?;
    let h = header(ctx, a.batch)?;
    if h.state != BatchState::Open {
        return revert(format!("batch {} already settled", h.id));
    }
    let (Some(done), Some(_), Some(post), Some(burned), false) =
        (h.complete_at, h.tcr_root, h.post_root, h.burned, h.overturned)
    else {
        return execute_on_chain(ctx, &c, h, a.entries, a.witness);
    };
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    if fin != h.id {
        // Batches settle in order (TCRs posted ahead, `pipelined`).
        return revert(format!("batch {fin} must settle before batch {}", h.id));
    }
    if c.pipelined {
        // Void: built on a root that did not settle.
        let settled = settled_root(ctx)?;
        let claimed = claimed_pre_root(ctx, &h)?;
        if claimed.is_some_and(|r| r != settled) && !crate::mutants::active(crate::mutants::Mutation::VoidSettles) {
            take_back(ctx, h)?;
            return Ok(bytes(&false));
        }
    }
    let until = done.saturating_add(c.window_ms);
    if ctx.timestamp() < until {
        return revert(format!("dispute window open until {until}, now {}", ctx.timestamp()));
    }
    if held_open(ctx, &h)? {
        return revert(format!(
            "dispute window held open past {until}: a block among the {QUIET_BLOCKS} below was full"
        ));
    }
    settle_batch(ctx, h, post, burned, false)?;
    Ok(bytes(&false))
}

/// `deregister_node`: an active node that no unsettled batch names as
/// executor, poster or validator leaves and gets its deposit back.
fn deregister(ctx: &mut CallContext<'_, '_>) -> Result<Vec<u8>, ContractError> {
    let who = ctx.caller();
    let Some(mut n) = ctx.read_typed::<Node>(&nkey(&who))? else { return revert(format!("{who} is not a node")) };
    if !n.active {
        return revert("node is not active (deregistered or forfeited)");
    }
    let next = ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0);
    let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
    for id in fin..next {
        let h = header(ctx, id)?;
        if h.executor == who || h.validator == who || h.posted_by == Some(who) {
            return revert(format!("node is assigned to unsettled batch {id}"));
        }
    }
    let d = n.deposit;
    n.deposit = Amount::ZERO;
    n.active = false;
    ctx.write_typed(&nkey(&who), &n)?;
    unlist(ctx, &who, n.role)?;
    ctx.pay(&who, d)?;
    ctx.emit("ior_node_deregistered", vec![("node".into(), who.to_string()), ("deposit".into(), d.to_string())])?;
    Ok(bytes(&d))
}

impl NativeContract for IorPrimaryContract {
    fn name(&self) -> &'static str {
        "ior-primary"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if !matches!(
            method,
            "fund" | "register_node" | "dispute" | "dispute_entry" | "dispute_state" | "pay_delegation"
        ) && !ctx.value().is_zero()
        {
            return revert(format!("{method} takes no native value"));
        }
        let latest = if matches!(method, "init" | "init_baseline") {
            Latest { next: 0, header: None }
        } else {
            close_latest(ctx)?
        };
        match method {
            // `init_baseline`: the §3.5.3 challenge-window baseline, the
            // only deployment that may post ahead ([`PrimaryConfig::pipelined`]).
            "init" | "init_baseline" => {
                let c: PrimaryConfig = decode_args(args)?;
                if c.pipelined != (method == "init_baseline") {
                    return revert(
                        "pipelined posting is the challenge-window baseline's only: init refuses it, init_baseline \
                         requires it",
                    );
                }
                if ctx.read(CFG)?.is_some() {
                    return revert("already initialised");
                }
                if !(1..=999).contains(&c.params.fp_permille)
                    || c.params.max_batch == 0
                    || c.params.max_entries_per_sender == 0
                    || c.bonus_permille > 1000
                {
                    return revert(
                        "F_p must lie in (0,1), max_batch and max_entries_per_sender be positive and ë at most 1",
                    );
                }
                if c.challenge_bond.is_zero() {
                    return revert("challenge_bond must be positive");
                }
                if c.params.domain.contract != ctx.contract_id() || c.params.domain.chain_id != ctx.chain_id() {
                    return revert("the signature domain names another chain or contract");
                }
                ctx.write_typed(RECORD_PARAMS, &RecordParams::of(&c.params))?;
                ctx.write_typed(CFG, &c)?;
                Ok(vec![])
            }
            "register_node" => {
                let a: RegisterNode = decode_args(args)?;
                let c = cfg(ctx)?;
                let who = ctx.caller();
                if ctx.value() < c.node_deposit {
                    return revert(format!("deposit {} is below the required {}", ctx.value(), c.node_deposit));
                }
                if ctx.read(&nkey(&who))?.is_some() {
                    return revert("node already registered");
                }
                if !ctx.verify_signature(&c.authority, &node_cert_digest(&c.params.domain, &who, a.role), &a.cert)? {
                    return revert("certificate not signed by the authority");
                }
                ctx.write_typed(&nkey(&who), &Node { role: a.role, deposit: ctx.value(), active: true })?;
                let list = if a.role == NodeRole::Executor { EXECUTORS } else { VALIDATORS };
                let mut l = ctx.read_typed::<Vec<Address>>(list)?.unwrap_or_default();
                l.push(who);
                ctx.write_typed(list, &l)?;
                Ok(vec![])
            }
            // Coin in: queued for the next batch to open, which credits it
            // before its entries. Crediting never changes what a pending
            // batch reads, so `fund` does not wait.
            "fund" => {
                cfg(ctx)?;
                let value = ctx.value();
                if value.is_zero() {
                    return revert("fund needs a positive value");
                }
                let who = ctx.caller();
                Ok(bytes(&enqueue(ctx, QueueItem::In { who, amount: value })?))
            }
            "withdraw" => withdraw(ctx, decode_args(args)?),
            "prune_claims" => prune_claims(ctx, decode_args(args)?),
            // Opens an empty batch that only applies queued `fund`s and
            // `withdraw`s (when no trade would open one soon).
            "flush" => {
                let Latest { next, header: latest } = latest;
                let applied = match &latest {
                    Some(h) if h.height == ctx.height() => return revert("a batch is already open in this block"),
                    Some(h) => h.queue_to,
                    None => 0,
                };
                if ctx.read_typed::<u64>(QUEUE_LEN)?.unwrap_or(0) <= applied {
                    return revert("no queued fund or withdrawal to apply");
                }
                let h = open_batch(ctx, next)?;
                ctx.write_typed(&bkey(h.id), &h)?;
                Ok(bytes(&h.id))
            }
            "register_meter" => {
                let a: RegisterMeter = decode_args(args)?;
                let c = cfg(ctx)?;
                let who = ctx.caller();
                if ctx.read(&mkey(&who))?.is_some() {
                    return revert("meter already registered");
                }
                if !idle_for(ctx, &who)? {
                    return revert("a pending batch reads this account; register after it settles");
                }
                if let Err(e) = check_meter_interval(&who, a.meter.step_s, &c.params) {
                    return revert(e.to_string());
                }
                if !ctx.verify_signature(&c.authority, &meter_cert_digest(&c.params.domain, &who, &a.meter), &a.cert)? {
                    return revert("meter certificate not signed by the authority");
                }
                ctx.write_typed(&mkey(&who), &a.meter)?;
                Ok(vec![])
            }
            "deregister_node" => deregister(ctx),
            // Closes the latest batch (done by every call; this one does
            // nothing else), so a silent executor's clock can start.
            "close" => Ok(vec![]),
            "pay_delegation" => {
                let a: PayDelegation = decode_args(args)?;
                let c = cfg(ctx)?;
                if ctx.value() != c.delegation_fee {
                    return revert(format!("the delegation fee is {}, attached {}", c.delegation_fee, ctx.value()));
                }
                let h = header(ctx, a.batch)?;
                if h.state == BatchState::Open {
                    return revert(format!("batch {} has not settled; pay its delegates after", h.id));
                }
                if ctx.read_typed::<Node>(&nkey(&a.validator))?.is_none_or(|n| n.role != NodeRole::Validator) {
                    return revert(format!("{} is not a registered validator", a.validator));
                }
                ctx.pay(&a.validator, c.delegation_fee)?;
                ctx.emit(
                    "ior_delegation_paid",
                    vec![("batch".into(), h.id.to_string()), ("validator".into(), a.validator.to_string())],
                )?;
                Ok(vec![])
            }
            "sc_ds_at" => {
                let at: AgreementTx = decode_args(args)?;
                record(ctx, IorTx::At(at), latest, None)
            }
            // An AT reopening a key whose marking AT execution refused
            // ([`ReopenAt`], attack r10 [1]).
            "sc_ds_at_reopen" => {
                let a: ReopenAt = decode_args(args)?;
                record(ctx, IorTx::At(a.at), latest, Some(a.witness))
            }
            "sc_ds_st" => {
                let st: SettlementTx = decode_args(args)?;
                record(ctx, IorTx::St(st), latest, None)
            }
            // An ST whose won arbitration re-allocates over `reach` grid
            // slots after its period too (`IorTx::StReach`).
            "sc_ds_st_reach" => {
                let (st, reach): (SettlementTx, u32) = decode_args(args)?;
                record(ctx, IorTx::StReach(st, reach), latest, None)
            }
            "sc_ds_ob" => {
                let o: BuyerOpinion = decode_args(args)?;
                record(ctx, IorTx::Opinion(o), latest, None)
            }
            "sc_ds_expire" => {
                let t: AgreementTerms = decode_args(args)?;
                record(ctx, IorTx::Expire(t), latest, None)
            }
            "sc_cr" => record_tcrs(ctx, decode_args(args)?, None),
            // The baseline's posting with an explicit claimed pre-root.
            "sc_cr_on" => {
                let a: SubmitTcrsOn = decode_args(args)?;
                if !cfg(ctx)?.pipelined {
                    return revert("sc_cr_on states a claimed pre-root: only the pipelined baseline posts with one");
                }
                record_tcrs(ctx, a.tcrs, Some(a.pre_root))
            }
            "dispute" => dispute(ctx, decode_args(args)?, args),
            "dispute_entry" => dispute_entry(ctx, decode_args(args)?, args),
            "dispute_state" => dispute_state(ctx, decode_args(args)?, args),
            "commit_dispute" => commit_dispute(ctx, decode_args(args)?),
            "finalize" => finalize(ctx, decode_args(args)?),
            other => revert(format!("ior-primary has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        let Some(c) = ctx.read_typed::<PrimaryConfig>(CFG)? else { return revert("IOR contract not initialised") };
        match method {
            "config" => Ok(json!(c)),
            "config_borsh" => Ok(json!({ "borsh": hex::encode(bytes(&c)) })),
            "settled_root" => Ok(json!(settled_root(&mut { ctx })?.to_string())),
            // Queue items `from..to` (borsh of `Vec<QueueItem>`).
            "queue" => {
                let (from, to): (u64, u64) = decode_args(args)?;
                let len = ctx.read_typed::<u64>(QUEUE_LEN)?.unwrap_or(0);
                let mut v = Vec::new();
                for i in from..to.min(len) {
                    if let Some(q) = ctx.read_typed::<QueueItem>(&qkey(i))? {
                        v.push(q);
                    }
                }
                Ok(json!({ "len": len, "borsh": hex::encode(bytes(&v)) }))
            }
            "node" => {
                let who: Address = decode_args(args)?;
                Ok(json!(ctx.read_typed::<Node>(&nkey(&who))?))
            }
            "nodes" => Ok(json!({
                "executors": ctx.read_typed::<Vec<Address>>(EXECUTORS)?.unwrap_or_default(),
                "validators": ctx.read_typed::<Vec<Address>>(VALIDATORS)?.unwrap_or_default(),
            })),
            "meter" => {
                let who: Address = decode_args(args)?;
                Ok(json!(ctx.read_typed::<MeterRecord>(&mkey(&who))?))
            }
            // The same record, borsh-encoded (`Option<MeterRecord>`), for
            // readers that execute an entry off chain.
            "meter_borsh" => {
                let who: Address = decode_args(args)?;
                Ok(json!({ "borsh": hex::encode(bytes(&ctx.read_typed::<MeterRecord>(&mkey(&who))?)) }))
            }
            "pending" => {
                let who: Address = decode_args(args)?;
                // 1 while an unsettled batch reads the account, else 0.
                let fin = ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
                let t = ctx.read_typed::<Touch>(&ptkey(&who))?;
                Ok(json!(u32::from(t.is_some_and(|t| t.batch >= fin))))
            }
            // The mark of an agreement key (borsh `AgreementKey`): borsh of
            // `Option<(Hash32, u64, Timestamp)>`, the seller digest of the
            // terms that marked it, the batch that recorded them and the
            // end of their delivery period.
            "agreement_mark" => {
                let k: crate::types::AgreementKey = decode_args(args)?;
                let m = ctx.read_typed::<AgreementMark>(&agkey(&k))?.map(|m| (m.terms, m.batch, m.dt_end));
                Ok(json!({ "borsh": hex::encode(bytes(&m)) }))
            }
            "progress" => Ok(json!({
                "next_batch": ctx.read_typed::<u64>(NEXT_BATCH)?.unwrap_or(0),
                "next_to_settle": ctx.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0),
            })),
            "batch" => {
                let a: BatchId = decode_args(args)?;
                Ok(json!(ctx.read_typed::<BatchHeader>(&bkey(a.batch))?))
            }
            // Whether a batch's disclosure reward is held for its committed
            // discloser ([`HeldReward`]).
            "held_reward" => {
                let a: BatchId = decode_args(args)?;
                Ok(json!(ctx.read(&rhkey(a.batch)).is_some()))
            }
            // The batches whose reward is held, each with its header as
            // posted (what its committed discloser's dispute is checked
            // against).
            // A dispute commitment by an address (borsh `(Hash32,
            // Address)`): `{height, time, seq}` as recorded, or null (never
            // recorded, or revealed and spent).
            "dispute_commitment" => {
                let (commitment, by): (Hash32, Address) = decode_args(args)?;
                Ok(match ctx.read_typed::<DcRecord>(&dckey(&commitment, &by))? {
                    Some(r) => json!({ "height": r.height, "time": r.time, "seq": r.seq }),
                    None => serde_json::Value::Null,
                })
            }
            "held_batches" => {
                let mut out: Vec<(u64, BatchHeader)> = Vec::new();
                for b in ctx.read_typed::<Vec<u64>>(HELD_LIST)?.unwrap_or_default() {
                    if let Some(h) = ctx.read_typed::<HeldReward>(&rhkey(b))? {
                        out.push((b, h.header));
                    }
                }
                Ok(json!({ "borsh": hex::encode(bytes(&out)) }))
            }
            // Whether batch `BATCH`'s standing posting is void
            // ([`void_posting`]): borsh of `Option<Hash32>`, the root a
            // replacement must claim, or `None` (not void, or no posting).
            "void_posting" => {
                let a: BatchId = decode_args(args)?;
                let mut r = ctx;
                let fin = r.read_typed::<u64>(NEXT_SETTLE)?.unwrap_or(0);
                let h = header(&mut r, a.batch)?;
                let must = void_posting(&mut r, &c, &h, fin)?.flatten();
                Ok(json!({ "borsh": hex::encode(bytes(&must)) }))
            }
            "batch_header" => {
                let a: BatchId = decode_args(args)?;
                let Some(h) = ctx.read_typed::<BatchHeader>(&bkey(a.batch))? else {
                    return revert(format!("no batch {}", a.batch));
                };
                Ok(json!({ "borsh": hex::encode(bytes(&h)) }))
            }
            "batch_input" => {
                let a: BatchData = decode_args(args)?;
                let Some(h) = ctx.read_typed::<BatchHeader>(&bkey(a.batch))? else {
                    return revert(format!("no batch {}", a.batch));
                };
                if a.entries.len() != h.len() || commit_entries(&a.entries) != h.commitment {
                    return revert(format!("the entries given are not batch {}'s recorded data", h.id));
                }
                let es = a.entries;
                // The settlement state is off this chain: the view gives
                // the certified meters (this chain's registry); readers add
                // the settled state they reconstructed.
                let mut prestate = crate::exec::PreState::default();
                for o in meter_owners(&es) {
                    if let Some(m) = ctx.read_typed::<MeterRecord>(&mkey(&o))? {
                        prestate.meters.insert(o, m);
                    }
                }
                // Stored verdicts exist only for batches the chain executed
                // itself; posted TCRs are block data ([`crate::driver::batch_leaves`]).
                let executed = ctx.read(&tkey(h.id, true)).is_some();
                let tcrs = if executed { Some(rebuild(&mut { ctx }, &c.params, h.id, &es)?) } else { None };
                let input =
                    BatchInput { header: h, entries: es, prestate, state: None, queue: vec![], tcrs, leaves: None };
                Ok(json!({ "borsh": hex::encode(bytes(&input)) }))
            }
            other => revert(format!("ior-primary has no view {other}")),
        }
    }
}
