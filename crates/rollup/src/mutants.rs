//! Planted bugs for the IOR mutation-sensitivity check
//! (`cargo test -p gridledger-rollup --features mutants --test mutants`):
//! each [`Mutation`] disables one defence, and the check asserts that the
//! rollup's own scenarios catch it. Without the `mutants` feature
//! [`active`] is constantly `false` and the compiler removes every planted
//! branch.

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// `dispute_entry` compares only the verdict, trusting the posted
    /// effects (issue 11 item 1: effects must follow from the entry and
    /// verdict; `finalize` is O(1), so the entry dispute is where they are
    /// checked).
    EffectsTrusted,
    /// `dispute_entry` does not verify the Merkle witness.
    WitnessUnchecked,
    /// Smart meters delegate to a predictable, public choice of validators
    /// (always the first ones) instead of a private random one (§3.3.4).
    DelegatesPredictable,
    /// A forfeited node deposit is neither taken nor the node removed.
    DepositNotSlashed,
    /// `SC_EXE_*` ignore the deadlines: an ST without the buyer's
    /// signature settles as late before `DL`, and an agreement expires
    /// before `DL + expiry`.
    DeadlineUnenforced,
    /// A whole-batch `dispute` compares only the TCR root, not the posted
    /// post-state root and burn: an executor posting honest leaves beside
    /// a root that mints itself coin is upheld.
    PostRootUnchecked,
    /// A state witness ([`crate::state::open_witness`]) proves only the
    /// records it brings, not the absence of the other records the entry
    /// touches: a disputer leaves a record out, execution reads a default
    /// in its place, and a correct root looks wrong.
    AbsenceUnchecked,
    /// A won arbitration does not re-allocate the seller's earlier won
    /// claims ([`crate::exec::realloc`]): it takes only what they left, so
    /// sales settled out of deadline order strand an honest seller.
    ReallocSkipped,
    /// Claimed-slot records are deleted one grid slot before the horizon
    /// ([`crate::state::claim_prunable`]): an ST recorded at its latest
    /// reads a deleted slot as unclaimed, and an export is sold twice.
    PruneEarly,
    /// A won arbitration does not count the sales paid without certified
    /// readings ([`crate::exec::SlotAlloc::sold`]) over its window: an
    /// export already sold to a buyer who agreed is sold again (attack r6).
    SoldIgnored,
    /// `SC_DS_*` records an entry that counts an agreement's claim slots
    /// without a recorded AT for the agreement (or past its parties'
    /// quota): sybils' refused STs fill the batch's slot records (issue
    /// 11, attack r6 [4]).
    UnbackedSlotEntries,
    /// Every opinion and expiry may use the batch's reserve, owed to its
    /// sender or not: sybils' opinions fill the reserve before a buyer's
    /// `O_b` (issue 11, attack r6 [4]).
    ReserveForAnyOpinion,
    /// A sale paid without arbitration that does not fit beside the won
    /// claims in its slots is recorded as a period demand and paid
    /// ([`crate::exec::place_paid`]) instead of undone: a seller settles a
    /// disputed sale first and is paid twice for one export (attack r7).
    PaidUnchecked,
    /// A buyer's expiry does not list its seller among the parties whose
    /// withdrawals wait for the batch: the seller withdraws the balance
    /// the expiry's undone sale fines, and the next batch's debit
    /// overdraws it (attack r8 [1]).
    ExpirySellerFree,
    /// A re-allocation that would put more than
    /// [`crate::exec::MAX_PERIODS_PER_SLOT`] periods on a slot fails
    /// instead of fixing the slot's smallest claims: tiny sales of
    /// distinct periods make an honest covered claim fail (attack r8 [2]).
    PeriodsRefused,
    /// The re-allocation's sweep does not move a claim beyond a slot's
    /// [`crate::exec::MAX_PERIODS_PER_SLOT`] periods to a later slot of its
    /// period: it places as many as fit and pins the slot's smallest claims
    /// there for good, so a later covered claim that needs the slot's whole
    /// export fails (attack r9 [5]).
    PeriodsNotSpilled,
    /// An accepted AT locks only the seller's `D_s`, not the undo reserve
    /// ([`crate::types::IorParams::undo_reserve`]): a seller that empties
    /// its free balance before its undone sale settles pays none of the
    /// undo's fine, and settling the disputed sale first earns `F_p × D_s`
    /// (attack r8 [3]).
    UndoReserveSkipped,
    /// A buyer's expiry after the period lists its seller among the
    /// pending parties without checking that an AT of its terms was
    /// recorded (the key's mark): a stranger's expiry naming a trader as
    /// its seller freezes that trader's withdrawals (attack r9 [1]).
    ExpiryMarkUnchecked,
    /// `sc_ds_at_reopen` does not check that the witness proves the key's
    /// agreement absent: a buyer reopens the key of an open agreement with
    /// other terms its seller signed, and the seller is made pending by an
    /// AT that execution refuses `AgreementOpen` (attack r10 [1]).
    ReopenOpenAgreement,
    /// `sc_ds_at_reopen` does not check that the marking AT's delivery
    /// period is still running: a key whose agreement was opened and
    /// settled reads as absent from the settled state and is reopened, and
    /// a second agreement sells the same period again (attack r11 [4]).
    ReopenSettledKey,
    /// [`crate::primary::PrimaryConfig::pipelined`]: a batch posted ahead
    /// is judged against the post-state root its predecessor posted instead
    /// of its own claimed pre-root: an honest batch built on the state a
    /// forged predecessor really leaves is overturned against the forged
    /// root and its executor slashed (attack r14 [1]).
    DisputeAgainstPredecessorRoot,
    /// Pipelined: disputes of a batch posted ahead are refused until the
    /// batch before it settles, while its window still runs from its own
    /// posting: a forged batch behind a slow predecessor escapes its
    /// window (attack r14 [2]).
    DisputeWaitsForPredecessor,
    /// Pipelined: `finalize` settles a batch whose claimed pre-root is not
    /// the root its predecessor settled with, instead of taking it back:
    /// the root of a batch built on an overturned forgery settles (attack
    /// r14 [2], [3]).
    VoidSettles,
    /// Pipelined: a void posting's replacement may claim any root, so a
    /// void poster replaces its own void posting with another void one,
    /// restarting the batch's window as often as it likes (attack r15 [3]).
    ReplaceAnyClaim,
    /// Pipelined: `punish` measures the assigned validator's half-window
    /// turn from the batch's own posting, even while the batch before it
    /// is open: the honest watcher of a batch posted ahead is slashed by a
    /// disclosure it could not have made first (attack r15 [1], [2]).
    ValidatorTurnFromPosting,
    /// [`crate::driver::DualChain::process`] (baseline): the watcher checks
    /// a batch posted ahead only at its turn to settle, after its window
    /// closed, instead of when it is posted or before the clock next moves
    /// (attack r15 [4]).
    WatchAtTurn,
    /// [`crate::driver::DualChain::process`] (baseline): the watcher checks
    /// only the postings ahead the driver sends itself, not one an executor
    /// posted before the run (attack r16 [1]).
    WatchOwnPostingsOnly,
    /// Pipelined: after a predecessor is overturned, a successor claiming
    /// the predecessor's posted post-state root is void at once, also when
    /// that root is the true one: any executor replaces the honest
    /// successor and restarts its window (attack r16 [2]).
    VoidOnOverturnedRoot,
    /// Pipelined: a forfeited (deactivated) poster's postings ahead stand
    /// until their turn instead of being void and replaced by a stand-in.
    ForfeitedPostingsStand,
    /// Pipelined: a dispute committed before the batch's standing posting
    /// (a void posting since replaced) is judged against the replacement
    /// instead of refused: the honest disputer loses (attack r16 [4]).
    DisputeJudgedOnReplacement,
    /// [`crate::driver::batch_leaves`] takes the first successful posting
    /// of the batch in the block, not the one whose leaves hash to the
    /// standing root: a void posting and its replacement in one block
    /// freeze every reader (attack r16 [5]).
    ReaderTakesFirstPosting,
    /// Pipelined: every dispute committed no later than the batch's
    /// standing posting is refused (`Replaced`), also one that proves the
    /// replacement wrong: an honest validator that committed to its
    /// dispute of a void posting cannot dispute a forged replacement with
    /// the same leaves (attack r17 [1]).
    ReplacedDisputeRefused,
    /// Pipelined: a replacement keeps the replaced posting's time, so its
    /// window and its assigned validator's turn run from the void posting:
    /// the validator is late for a replacement it saw only now, and is
    /// forfeited when another party overturns it (attack r17 [2]).
    ReplacementKeepsTurn,
    /// Pipelined: every dispute committed no later than the batch's
    /// standing posting counts as built for a replaced posting, also where
    /// no replacement happened: a frivolous whole-batch dispute committed
    /// before the batch's first posting is refused (`Replaced`) and keeps
    /// its bond (attack r18 [1]).
    ReplacedWithoutReplacement,
    /// Baseline driver: no honest executor replaces a void posting at
    /// once; the run waits out the void posting's window, takes it back and
    /// runs the batch's window again (attack r18 [2]).
    VoidNextWaitsWindow,
    /// Baseline driver: the smart meters, their delegated validators and
    /// the bonded challenge check a batch posted ahead only at its turn to
    /// settle, after its window: with its assigned watcher colluding, a
    /// forged root posted ahead settles (attack r20 [5]).
    BackupChecksAtTurn,
    /// Baseline driver: posting ahead stops at the first batch its
    /// executor withholds, and a stand-in posts it only at its turn: each
    /// withheld batch costs a window, one after another (attack r20 [3]).
    PostingStopsAtWithheld,
    /// Pipelined: a replaced or taken-back posting is forgotten, so a
    /// dispute committed to while it stood proves nothing once it is void:
    /// a forger voids its own caught forgery ahead through its posting of
    /// the batch before and keeps its deposit (attack r20 [1]).
    VoidedPostingForgotten,
    /// Pipelined: a dispute committed while a posting stood that was since
    /// voided counts as built for a replaced posting even where the
    /// standing posting is that very posting again (same leaves, roots and
    /// claimed pre-root): a colluding executor's void posting in between
    /// lets a frivolous dispute keep its bond (attack r19 [1]).
    ReplacedAgainIsReplaced,
    /// Baseline driver: [`crate::driver::DualChain::process`] moves the
    /// clock (a withheld batch's wait of a window) before it has watched
    /// the postings ahead already on chain: an executor that withholds the
    /// next batch to settle and posted a forged root ahead before the run
    /// sees its window run out unwatched, and the root settles with every
    /// validator honest (attack r21 [1]).
    WatchAfterJump,
    /// Baseline driver: the guard before each clock move watches only the
    /// postings after the batch being settled, never that batch's own
    /// posting: a forged posting of it made before the run, its window
    /// ending within the blocks `post_ahead` makes, settles with every
    /// validator honest (attack r22 [1]).
    FinLeftUnwatched,
    /// Baseline driver: the guard sends the disputes of the postings due
    /// in one run one posting after the other, commitment and reveal each
    /// in its own block, instead of every commitment in one block and
    /// every reveal in the next: the disputes of k earlier-ending
    /// forgeries ahead cost 2k blocks and run out the window of a forged
    /// posting of the batch being settled (attack r23 [1]).
    GuardDisputesOneByOne,
    /// Baseline driver: the guard sends the watchers' disputes of the
    /// postings due in one run together, but then the backup checks
    /// (meters, delegates, bonded challenge) one posting after the other,
    /// commitment and reveal each in its own block: with a colluding
    /// watcher, the backup dispute of a forged posting of the batch being
    /// settled runs out the window of a forgery ahead posted before it
    /// (attack r24 [1]).
    BackupDisputesOneByOne,
    /// Baseline driver: the guard marks every due posting watched and
    /// backed when it plans its pass, not once its checks are on chain: a
    /// bonded challenge refused at submission (its payer's wallet spent
    /// while its commitment went in) leaves the posting marked backed, and
    /// no one checks it again (the rule before attack r25 [1]).
    WatchedAtPlan,
    /// Baseline driver: only the first alarmed meter's owner ever posts
    /// the bonded challenge: one that cannot pay (or a sybil that would
    /// not) leaves the forgery to settle (the rule before attack r25 [2]).
    OnlyFirstOwnerBonds,
    /// Baseline driver: the guard's transactions are sent at the lowest
    /// gas price only, not again at a higher one when the mempool is full,
    /// nor after a seal: a refusal for a full mempool is final, and a
    /// flood at the lowest price keeps every check out (the rule before
    /// attack r25 [3]).
    GuardNotRepriced,
    /// A driver call refused for a full mempool is not sent again after a
    /// seal (`driver::submit_making_room`): a flood at the driver's gas
    /// price, never included, refuses every posting, `close` and
    /// `finalize`, and nothing settles (the rule before attack r26 [2]).
    FullMempoolNotSealed,
    /// Baseline driver: a posting whose meters alarm but none of whose
    /// alarmed owners could pay the bonded challenge counts as backed,
    /// with no check on chain, and the clock passes it (the rule before
    /// attack r26 [3]).
    BackedWithoutChallenge,
    /// IOR driver: only the assigned validator's check is sealed one block
    /// at a time inside its posting's window; the backup checks (smart
    /// meters' delegates, the bonded challenge), held claims, `close`,
    /// `finalize` and the set-up calls seal until the mempool is empty
    /// while a posting is unchecked, and a flood runs its window out (the
    /// rule before the follow-up to attack r27 [2]).
    UncheckedPostingSealedThrough,
    /// The day's auction ignores the participants' budgets
    /// ([`crate::demo::clear_slot_within`]): pairs a seller or buyer cannot
    /// cover are dropped afterwards and their volume is not offered to
    /// anyone else (the rule before attack r28 [2], [5]).
    SlotClearedWithoutBudgets,
    /// The primary contract's dispute window is `window_ms` whatever
    /// filled its blocks ([`crate::primary::QUIET_BLOCKS`]): junk that
    /// fills the blocks after a posting at a price the challenge cannot
    /// outbid runs the window out, and the forger's own `finalize` settles
    /// a forged root (the rule before attack r29 [2] [3]).
    WindowIgnoresCongestion,
    /// IOR driver: a call of the driver's own sent while no posting is on
    /// chain is sealed until the mempool is empty (`call_on`), the bound
    /// not evaluated again between its blocks: a forged posting waiting in
    /// the mempool lands in its first block and the junk behind it moves
    /// the clock past the posting's window before any check (the rule
    /// before attack r29 [1]).
    SealNotReevaluated,
    /// The day's budgeted auction matches pairs by price priority instead of
    /// largest fill first ([`crate::demo::clear_slot_within`]): a seller's
    /// few AT locks and a buyer's few deposits go to the highest bidders'
    /// (cheapest asks') slivers (the rule before attack r30 [1]-[3]).
    SlotClearedBySliversFirst,
}

// `plant` and `active`; the code under test runs on the planting thread.
gridledger_core::mutation_switch!(Mutation);
