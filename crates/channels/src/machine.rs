//! One party's side of a two-party state channel (seed 000 Figs 6–9,
//! 13–16, with the energy trades of §7.2, Eqs 6–9), as a sans-IO state
//! machine (DESIGN principle 1).
//!
//! Inputs are peer [`Message`]s, user [`Request`]s, [`ChainEvent`]s and
//! clock [`Input::Tick`]s; each returns a [`Step`] of messages for the peer,
//! transactions for the chain and [`ChannelEvent`]s for the user.
//!
//! **Persist before you speak.** A step that signs anything (a proposal or an
//! acceptance) carries `persist: Some(store)`, and its messages and
//! transactions are *held* inside the machine until the driver reports
//! [`Input::Persisted`] with that store's version. So a party never lets a
//! signature out that its durable [`ChannelStore`] does not know about, and
//! after a crash it restarts from the snapshot with the right to close or
//! dispute with its latest co-signed state. The store also keeps
//! `signed_upto`, the highest counter this party ever signed; it never signs
//! a different state at or below it, so no two distinct states with the same
//! counter ever carry its signature (no divergent double-signed states).
//!
//! **Reconnect** ([`Input::Connected`], like Lightning's
//! `channel_reestablish`): both send their newest co-signed state and
//! resend their outstanding proposals and fallbacks at once; a party adopts
//! a newer state carrying both signatures. **Collisions**: when both
//! propose at once, the side that did not propose the newest co-signed
//! state goes first (so a loser whose re-proposal collides again wins): the
//! winner refuses the peer's proposal, the loser gives its own up
//! ([`Message::Collision`], never signed by the winner) and proposes it
//! again once the winner's re-proposal, above both counters, is co-signed.
//! Neither signs two states with one counter. A side that collides on
//! purpose delays the peer's payment by at most one round.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_contracts::cns::{
    ChannelDisputeArgs, ChannelFundArgs, ChannelOpenArgs, ChannelState, ChannelStateArgs, ChannelTopUpArgs, CidArgs,
    Domain, Fold, Funding, Resize, SignedState, Trade,
};
use gridledger_core::codec::{decode, encode, hash_parts, Tag};
use gridledger_core::{Amount, Energy, Hash32, KeyPair, PublicKey, Signature, Timestamp};
use std::sync::Arc;
use thiserror::Error;

/// The user's say over incoming updates: called for every trade the peer
/// proposes *after* the channel's own rules (right channel, counter,
/// arithmetic, positive price and energy) passed. Refusing answers the peer
/// with a reject and signs nothing.
pub trait UpdatePolicy: Send + Sync {
    fn check(&self, trade: &Trade, current: &ChannelState) -> Result<(), String>;
}

/// A ready policy: price and size bounds per trade.
#[derive(Clone, Debug)]
pub struct PriceBounds {
    pub min_price_per_kwh: Amount,
    pub max_price_per_kwh: Amount,
    pub max_energy: Energy,
}

impl UpdatePolicy for PriceBounds {
    fn check(&self, t: &Trade, _: &ChannelState) -> Result<(), String> {
        if t.price_per_kwh < self.min_price_per_kwh || t.price_per_kwh > self.max_price_per_kwh {
            return Err(format!(
                "price {} outside the accepted {}..={}",
                t.price_per_kwh, self.min_price_per_kwh, self.max_price_per_kwh
            ));
        }
        if t.energy > self.max_energy {
            return Err(format!("energy {} above the accepted {}", t.energy, self.max_energy));
        }
        // The amount is rounded down from the stated price: check what is
        // actually paid, `amount · 1000 ≥ energy · min_price` (u128, so
        // neither side overflows), or splitting a purchase into small
        // trades pays under the floor.
        let paid = t.amount.0.checked_mul(1000);
        let floor = u128::from(t.energy.0).checked_mul(self.min_price_per_kwh.0);
        match (paid, floor) {
            (Some(p), Some(f)) if p >= f => {}
            _ => {
                return Err(format!(
                    "amount {} for {} Wh is below the minimum {}/kWh",
                    t.amount, t.energy, self.min_price_per_kwh
                ))
            }
        }
        Ok(())
    }
}

/// A shared [`UpdatePolicy`] inside [`ChannelParams`].
#[derive(Clone)]
pub struct Policy(pub Arc<dyn UpdatePolicy>);

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Policy(..)")
    }
}

/// Bugs the channel checks must catch, planted in this machine (test-only,
/// behind the `mutants` feature; `tests/mutants.rs`).
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// A signature (proposal or acceptance) leaves before the store that
    /// records it is durable.
    SignBeforePersist,
    /// The counter checks are skipped: a used counter is signed again.
    SkipCounterCheck,
    /// Only the last trade of a fold is checked against the user's policy.
    FoldSkipsPolicy,
    /// A dispute on an older state than ours is left standing (never
    /// answered with the newer co-signed state).
    AcceptOlderDispute,
    /// What is persisted loses the co-signed state and the signed counter.
    LoseDurable,
}

#[cfg(feature = "mutants")]
impl Mutation {
    pub const ALL: [Mutation; 5] = [
        Mutation::SignBeforePersist,
        Mutation::SkipCounterCheck,
        Mutation::FoldSkipsPolicy,
        Mutation::AcceptOlderDispute,
        Mutation::LoseDurable,
    ];
}

/// The planted bug of this thread (one per test thread, so a mutation
/// check runs beside ordinary tests unaffected).
#[cfg(feature = "mutants")]
pub mod mutants {
    use super::Mutation;
    use std::cell::Cell;
    thread_local!(static PLANTED: Cell<Option<Mutation>> = const { Cell::new(None) });
    /// Plants `m` (or nothing) for machines run on this thread.
    pub fn plant(m: Option<Mutation>) {
        PLANTED.with(|p| p.set(m));
    }
    pub(crate) fn planted(m: Mutation) -> bool {
        PLANTED.with(|p| p.get() == Some(m))
    }
}

/// Largest peer message accepted, in bytes (a proposal is ~300 bytes).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Largest store snapshot accepted on restore (a full window of full folds
/// and a full abandoned list fit).
pub const MAX_STORE_BYTES: usize = 256 * 1024;

/// Most trades folded into one update.
pub const MAX_FOLD: usize = 16;

/// A message between the two parties (seed Figs 13–16: 'open', 'update',
/// 'finalise' requests and their confirmations).
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A state signed by the sender: counter 0 opens, `is_final` finalises,
    /// anything else is an update carrying a trade (Eq 7).
    Propose { state: ChannelState, nonce: u64, sig: Signature },
    /// The receiver's signature on the proposal (Eq 8 'update-success').
    Accept { counter: u64, hstate: Hash32, sig: Signature },
    /// 'update-abort'.
    Reject { counter: u64, reason: String },
    /// 'update-fallback' (seed Fig 7 step 2): the proposer gave up on its
    /// proposal `counter` after `t_Δ` without a co-signature. A receiver that
    /// did co-sign it answers with its acceptance again (so both end on the
    /// same state); one that did not will never sign it.
    Fallback { counter: u64 },
    /// A payment request from the seller. Nothing is signed by it; the
    /// receiver pays only through its own proposal, automatically only
    /// within its `auto_pay` policy.
    PayRequest { energy: Energy, price_per_kwh: Amount },
    /// A folded update: `state.fold` commits to `trades` (count and hash),
    /// whose last is `state.last_trade`; the receiver checks every one.
    ProposeFolded { state: ChannelState, nonce: u64, sig: Signature, trades: Vec<Trade> },
    /// Both sides proposed at once (side 1 → side 0): side 1 gave up its
    /// own proposals and will propose them again after side 0's; side 0
    /// proposes its `counter` again above both. Lower side index wins.
    Collision { counter: u64 },
    /// Sent when the link comes up (after a restart or a drop), like
    /// Lightning's `channel_reestablish`: the sender's newest co-signed
    /// state. The receiver adopts it if newer (it carries both signatures)
    /// and answers with its own if that is newer; both then resend what
    /// awaits the other (proposals, fallbacks).
    Reestablish { latest: Option<SignedState> },
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    /// Size-bounded strict decoding; never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChannelError> {
        decode(bytes, MAX_MESSAGE_BYTES).map_err(|e| ChannelError::Codec(e.to_string()))
    }
}

/// What the user asks of its channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Propose the co-signed open state (initiator only).
    Open,
    /// Buy `energy` Wh at `price_per_kwh`, paying `amount` (must equal
    /// `⌊energy · price / 1000⌋`).
    Pay { amount: Amount, energy: Energy, price_per_kwh: Amount },
    /// Close cooperatively; falls back to a dispute if the peer is silent.
    Close,
    /// Ask the peer to buy `energy` Wh at `price_per_kwh` (a payment
    /// request: the seller asks, the buyer still proposes and signs).
    AskPayment { energy: Energy, price_per_kwh: Amount },
    /// Several payments folded into one update (2..=[`MAX_FOLD`]; one is a
    /// plain `Pay`): `(amount, energy, price_per_kwh)` each, as in `Pay`.
    PayMany(Vec<(Amount, Energy, Amount)>),
    /// Add `amount` to this side of the open channel: sends
    /// `channel_topup` (a deposit, or `funding`'s credit note for a
    /// credit-funded side); once the chain shows it, this party proposes
    /// the co-signed state that allocates it to its balance.
    TopUp { amount: Amount, funding: Funding },
    /// Take `amount` of this side's balance out of the open channel: a
    /// co-signed state (`resize.withdrawn` grows), then `channel_withdraw`
    /// pays it while the channel stays open.
    Withdraw { amount: Amount },
}

/// What the chain reported about this channel (from receipts' events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// `channel_open` committed with this `t_Δ` and open state hash; the
    /// responder funds only if both are what it co-signed.
    Registered {
        t_delta_ms: u64,
        hstate: Hash32,
    },
    /// Both sides funded; the channel is open.
    Active,
    DisputeRaised {
        counter: u64,
        by: u8,
        t_end: Timestamp,
    },
    DisputeResolved {
        counter: u64,
    },
    Closed {
        counter: u64,
    },
    /// The co-signed state the chain now holds (the driver reads it after a
    /// resolved dispute, and before `Closed`): a party whose acceptance was
    /// lost learns the newer state here instead of disputing with an older
    /// one forever, and a fallen-back payment the chain closed on is
    /// reported sent.
    OnChain(Box<SignedState>),
    /// `channel_update` or `channel_withdraw` registered the state at
    /// `counter` (`cns_channel_updated` / `cns_channel_withdrawn`); `state`
    /// is that state as the driver read it from the channel (`None` if the
    /// read failed). A registered state newer than ours is one we signed
    /// (the contract checks both signatures), typically our own proposal
    /// that fell back after the peer co-signed it out of band. It is kept,
    /// not adopted at once (the peer's answer to a proposal in flight still
    /// decides it off chain); it becomes our base when we close
    /// unilaterally, since a dispute with an older state than the chain's is
    /// refused as stale (see `ChannelMachine::chain_kept`).
    Updated {
        counter: u64,
        state: Option<Box<SignedState>>,
    },
    /// `channel_topup` committed: side `side` has now added `total`
    /// (cumulative) on chain.
    ToppedUp {
        side: u8,
        total: Amount,
    },
    /// Side `side` funded, by credit note if `credit`.
    Funded {
        side: u8,
        credit: bool,
    },
    /// `channel_withdraw` committed and paid each side `paid[i]` (this
    /// transaction's amounts, not cumulative: a driver replays every such
    /// event from the channel's start, or after a restart feeds one with the
    /// chain's cumulative `withdrawn_paid`, to a machine that starts at 0).
    WithdrawalPaid {
        paid: [Amount; 2],
    },
}

impl ChainEvent {
    /// The events to hand the machine for `self`: `self`, followed by what
    /// the channel's record adds, with `read` giving the state the chain
    /// holds now (`None` if the read failed). After `channel_update` /
    /// `channel_withdraw` the registered state (`Updated` with its state: a
    /// party must know a newer state it signed is on chain before it
    /// disputes); after a resolved dispute the state that overturned it
    /// (`OnChain`). Before `Closed`, the final state (`OnChain`): a payment
    /// the chain closed on is reported sent even if it fell back. An aborted
    /// open (`Closed { counter: 0 }`) has no payment in it. A failed read
    /// adds nothing (the event still goes). Shared by the in-process driver
    /// and the node's event poller.
    pub fn with_chain_record(self, read: impl Fn() -> Option<Box<SignedState>>) -> Vec<ChainEvent> {
        match self {
            ChainEvent::Updated { counter, .. } => vec![ChainEvent::Updated { counter, state: read() }],
            ChainEvent::WithdrawalPaid { .. } => {
                let st = read();
                let counter = st.as_ref().map_or(0, |s| s.state.counter);
                vec![self, ChainEvent::Updated { counter, state: st }]
            }
            ChainEvent::DisputeResolved { .. } => {
                let mut v = vec![self];
                v.extend(read().map(ChainEvent::OnChain));
                v
            }
            ChainEvent::Closed { counter } if counter > 0 => {
                let mut v: Vec<ChainEvent> = read().map(ChainEvent::OnChain).into_iter().collect();
                v.push(self);
                v
            }
            ev => vec![ev],
        }
    }
}

/// A transaction for the driver to sign with the party's account and
/// submit to the CNS contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTx {
    pub method: &'static str,
    pub args: Vec<u8>,
    pub value: Amount,
}

// A peer message is the common input; boxing it would allocate once per
// message on the update path for no gain (inputs are moved, not stored).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Input {
    Peer(Message),
    User(Request),
    Chain(ChainEvent),
    /// Current chain time (ms): drives retransmission and timeouts.
    Tick(Timestamp),
    /// The driver durably stored the snapshot with this version.
    Persisted(u64),
    /// The link to the peer is (again) up: start the reconnect handshake.
    Connected,
}

/// What happened, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// A new fully co-signed state (counter).
    CoSigned(u64),
    Opened,
    PaymentSent {
        counter: u64,
        amount: Amount,
    },
    PaymentReceived {
        counter: u64,
        amount: Amount,
    },
    Rejected {
        counter: u64,
        reason: String,
    },
    DisputeSeen {
        counter: u64,
        by: u8,
    },
    Closed {
        counter: u64,
    },
    /// The peer misbehaved; reported as data, never a panic.
    Fault(String),
    /// Our proposal was not co-signed within `t_Δ` and fell back to the
    /// previous co-signed state (seed Fig 7 'update-fallback').
    FellBack {
        counter: u64,
    },
    /// The peer asks us to pay; not paid automatically (no `auto_pay`
    /// policy, outside it, or busy): the user decides.
    PaymentRequested {
        energy: Energy,
        price_per_kwh: Amount,
    },
    /// A proposal of ours (counter `from`) lost a simultaneous-proposal
    /// collision and was proposed again as `to`.
    Retried {
        from: u64,
        to: u64,
    },
    /// A co-signed state moved `amount` of top-up into `side`'s balance.
    ToppedUp {
        counter: u64,
        side: u8,
        amount: Amount,
    },
    /// A co-signed state took `amount` out of `side`'s balance (paid by
    /// `channel_withdraw`, or at close).
    Withdrawn {
        counter: u64,
        side: u8,
        amount: Amount,
    },
    /// The chain has now paid this side `total` by `channel_withdraw`
    /// (cumulative): every co-signed withdrawal up to it is in the account.
    WithdrawalPaid {
        total: Amount,
    },
    /// The co-signed withdrawal state `counter` was sent with
    /// `channel_withdraw` [`MAX_WITHDRAW_RESENDS`] more times and the chain
    /// still shows `unpaid` of it unpaid: no more re-sends of this state
    /// (each costs a fee); the next co-signed state is sent again, and the
    /// close pays whatever stays unpaid.
    WithdrawalUnpaid {
        counter: u64,
        unpaid: Amount,
    },
    /// The chain shows `amount` of this side's top-up that the peer has not
    /// co-signed into a state for `t_Δ`: payments on the balance the
    /// channel already has go through again meanwhile; the allocation stays
    /// pending (proposed again between payments) and a close refunds it if
    /// it never is. Reported once per pending top-up.
    TopUpDeferred {
        amount: Amount,
    },
    /// The close transaction of `method` (`channel_close` with the
    /// co-signed final state `counter`, or the timed-out close's
    /// `channel_dispute` with the newest co-signed state `counter`) was sent
    /// [`MAX_CLOSE_RESENDS`] times and the chain still shows no outcome:
    /// no more re-sends (each costs a fee; one the contract refuses is not
    /// fixed by paying more). Reported once; the user decides (a newer
    /// co-signed state, from the peer or the chain, starts a fresh count).
    CloseStalled {
        method: String,
        counter: u64,
    },
    /// The co-signed open's registration (`channel_open`, with our
    /// `channel_fund`) was re-sent `attempts` times and the chain still
    /// does not show the channel: no more automatic re-sends. `Open` sends
    /// it again (a fresh count); the peer, which holds the open state
    /// co-signed too, may still register it, after which the funding
    /// deadline aborts the channel if it is not funded.
    OpenUnregistered {
        attempts: u32,
    },
}

/// Re-sends of the co-signed open's registration (`channel_open` with the
/// initiator's `channel_fund`) while the chain does not show it, after which
/// the machine stops and reports [`ChannelEvent::OpenUnregistered`].
pub const MAX_OPEN_RESENDS: u32 = 8;

/// Sends of one close transaction (same method and counter) after which
/// the machine stops re-sending it and reports [`ChannelEvent::CloseStalled`].
pub const MAX_CLOSE_RESENDS: u32 = 5;

/// Re-sends of one co-signed withdrawal state (same counter) the chain has
/// not paid, after which the machine stops re-sending it and reports
/// [`ChannelEvent::WithdrawalUnpaid`] (bounded fees if the contract keeps
/// refusing it).
pub const MAX_WITHDRAW_RESENDS: u32 = 3;

/// The output of one input.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Write this durably, then feed back `Input::Persisted(store.version)`;
    /// only then are the held messages and transactions released.
    pub persist: Option<ChannelStore>,
    /// The persist holds back no message or transaction (e.g. recording a
    /// co-signed update this party proposed, or a chain event that replays):
    /// losing it in a power cut costs nothing the peer or the chain cannot
    /// give back (the peer re-accepts the retransmitted proposal; events
    /// replay), so a driver may write it without waiting for the disk and
    /// let the next synced write cover it. A process crash loses nothing
    /// written either way.
    pub persist_may_lag: bool,
    /// Read the channel's registered state from the chain and feed it back
    /// as [`ChainEvent::Updated`] (`state: None` if the read fails): the
    /// chain showed a counter above every state this party holds and the
    /// read at that event failed (node restarting, RPC timeout). Asked
    /// again with back-off while the chain stays ahead.
    pub read_channel: bool,
    pub messages: Vec<Message>,
    pub txs: Vec<ChainTx>,
    pub events: Vec<ChannelEvent>,
}

/// Refusals of user requests and undecodable input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    #[error("channel is {0:?}, not open")]
    NotOpen(Phase),
    #[error("an earlier proposal is still awaiting the peer")]
    Busy,
    /// A close was asked: no further payment or resize is proposed.
    #[error("the channel is closing: no new updates")]
    Closing,
    #[error("a persisted snapshot is still awaited")]
    PersistPending,
    #[error("balance {have} minor units is below the payment {need} minor units (1 coin = 1,000,000 minor units)")]
    InsufficientBalance { have: Amount, need: Amount },
    #[error("amount {stated} does not match {energy} Wh at {price}/kWh = {computed}")]
    PriceMismatch { stated: Amount, energy: Energy, price: Amount, computed: Amount },
    #[error("arithmetic overflow")]
    Overflow,
    #[error("only the initiator opens")]
    NotInitiator,
    #[error("undecodable: {0}")]
    Codec(String),
    #[error("snapshot belongs to another channel or key")]
    WrongStore,
    #[error("a trade needs positive energy and price (seed: α > 0)")]
    ZeroTrade,
    #[error("a folded update carries 1..={MAX_FOLD} payments, not {0}")]
    FoldSize(usize),
    #[error("a top-up or withdrawal needs a positive amount")]
    ZeroAmount,
    #[error("this side is credit-backed: it cannot withdraw, only close")]
    CreditBacked,
    #[error("top up the way this side funded (deposit or credit note)")]
    WrongFunding,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Nothing signed yet.
    Idle,
    /// Open state co-signed; waiting for the chain.
    Opening,
    Open,
    /// A final state is co-signed; waiting for the close on chain.
    Closing,
    Disputed {
        t_end: Timestamp,
        by_me: bool,
    },
    Closed,
}

/// A proposal this party signed and sent, awaiting the peer's signature.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub state: ChannelState,
    pub nonce: u64,
    pub sig: Signature,
    /// When it was first sent (the machine's clock): an update not
    /// co-signed within `t_Δ` falls back.
    pub proposed_at: Timestamp,
    /// The folded trades (empty unless `state.fold` is set).
    pub trades: Vec<Trade>,
}

impl Proposal {
    /// The message that proposes it.
    pub fn message(&self) -> Message {
        if self.state.fold.is_some() {
            Message::ProposeFolded {
                state: self.state.clone(),
                nonce: self.nonce,
                sig: self.sig,
                trades: self.trades.clone(),
            }
        } else {
            Message::Propose { state: self.state.clone(), nonce: self.nonce, sig: self.sig }
        }
    }
}

/// The durable part of a party's channel: enough to close or dispute after a
/// crash, and to never sign a conflicting state.
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct ChannelStore {
    pub version: u64,
    pub side: u8,
    pub my_key: PublicKey,
    pub peer_key: PublicKey,
    pub scid: Hash32,
    pub cid: Hash32,
    pub t_delta_ms: u64,
    pub capacity: [Amount; 2],
    pub phase: Phase,
    /// Latest fully co-signed state (None before the open is co-signed).
    pub latest: Option<SignedState>,
    /// Highest counter this party has signed.
    pub signed_upto: Option<u64>,
    /// This party's proposals awaiting the peer's signature, oldest first
    /// (the proposal window, at most [`ChannelParams::window`]): each
    /// update builds on the one before it, the first on `latest`.
    pub proposals: Vec<Proposal>,
    /// The proposals this party last gave up on (fallback or close), oldest
    /// first: a late acceptance of one is still a valid co-signed state and
    /// is adopted.
    pub abandoned: Vec<Proposal>,
    /// The peer announced it gave up on its proposals up to this counter:
    /// they are never signed.
    pub peer_fallback_upto: Option<u64>,
    /// Whether the user asked to close (survives restarts).
    pub closing_requested: bool,
    /// When this party first saw its open registered on chain (chain time,
    /// ms): the funding deadline [`FUNDING_TIMEOUT_MS`] counts from here
    /// and survives a restart.
    pub registered_at: Option<Timestamp>,
    /// What each side has added on chain with `channel_topup` (cumulative,
    /// from `ToppedUp` events): the most a state may allocate to it.
    pub chain_topped_up: [Amount; 2],
    /// Which sides funded by credit note (from `Funded` events): a
    /// credit-backed side cannot withdraw, so this party never co-signs a
    /// withdrawal the adjudicator would refuse.
    pub credit_backed: [bool; 2],
}

impl ChannelStore {
    /// The oldest proposal awaiting the peer.
    pub fn my_proposal(&self) -> Option<&Proposal> {
        self.proposals.first()
    }
}

impl ChannelStore {
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ChannelError> {
        decode(bytes, MAX_STORE_BYTES).map_err(|e| ChannelError::Codec(e.to_string()))
    }
}

/// Static parameters of one party's channel.
#[derive(Clone, Debug)]
pub struct ChannelParams {
    /// The chain and CNS contract of the channel (signed into every state).
    pub domain: Domain,
    pub side: u8,
    pub peer_key: PublicKey,
    pub scid: Hash32,
    pub cid: Hash32,
    pub t_delta_ms: u64,
    pub capacity: [Amount; 2],
    /// How this party funds its side.
    pub funding: Funding,
    /// Resend an unanswered proposal after this long (ms).
    pub retry_ms: u64,
    /// Give up on a cooperative close and dispute after this long (ms).
    pub close_timeout_ms: u64,
    /// Smallest `t_Δ` this party agrees to (ms).
    pub min_t_delta_ms: u64,
    /// The user's hook over incoming trades.
    pub policy: Option<Policy>,
    /// Payment requests from the peer inside this policy (checked as a
    /// trade in which we buy) are paid without asking the user; none: every
    /// request is only reported.
    pub auto_pay: Option<Policy>,
    /// Proposal window: how many of this party's update proposals may await
    /// the peer at once (1 = one at a time; at most [`MAX_WINDOW`]). Each is
    /// still signed only after the store holding it is durable.
    ///
    /// Trade-off: the adjudicator books no fault on a raiser overturned by
    /// its own payment built directly on the disputed state (at any counter:
    /// fallen-back proposals skip counters) or by the close of it. A peer
    /// that co-signs two or more *stacked* proposals of a window and
    /// withholds every acceptance, then makes this party close by dispute,
    /// gets it one fault per such dispute; excusing stacks would let a
    /// cheater disputing with its own older state escape the fault. A party
    /// facing peers it does not trust to answer keeps the window at 1.
    pub window: usize,
}

/// Largest proposal window (bounds the store: a full window and a full
/// abandoned list stay far below [`MAX_STORE_BYTES`]).
pub const MAX_WINDOW: usize = 64;

/// The window a party process uses unless told otherwise: 1, because a
/// window above 1 opens the griefing path described on
/// [`ChannelParams::window`] (a peer that co-signs and withholds
/// acceptances can get an honest raiser faulted). Throughput under load
/// comes from folding queued payments into one state instead; a party that
/// trusts its peer to answer may raise it (the bench's `--window`).
pub const DEFAULT_WINDOW: usize = 1;

/// The window `gridledger bench channel` uses unless told otherwise: deep
/// enough that group commit covers many proposals per fdatasync.
pub const BENCH_WINDOW: usize = 32;

/// Largest step a peer's proposal may take past every counter this party
/// knows (co-signed, signed or fallen back). Not exactly `+1`: a rejected
/// or fallen-back proposal uses its counter up, so honest counters skip;
/// but bounded, so no peer can push the counter near `u64::MAX`.
pub const MAX_COUNTER_STEP: u64 = 1 << 20;

/// A channel still `Funding` this long (ms of chain time) after its open
/// was registered is aborted (`channel_abort` refunds what was funded):
/// a peer that never funds must not lock this party's deposit.
pub const FUNDING_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// Longest pause between retries of a safety-critical transaction
/// (resolve, settle, close), ms.
pub const MAX_RETRY_BACKOFF_MS: u64 = 30_000;

/// One party's channel state machine.
pub struct ChannelMachine {
    key: KeyPair,
    nonce_seed: [u8; 32],
    params: ChannelParams,
    store: ChannelStore,
    held: Vec<(u64, Vec<Message>, Vec<ChainTx>)>,
    now: Timestamp,
    last_sent: Timestamp,
    close_started: Option<Timestamp>,
    close_submitted_at: Option<Timestamp>,
    /// Next attempt and current back-off of the resolve/settle retries.
    chain_retry: Option<(Timestamp, u64)>,
    /// Counter of the dispute standing on chain.
    disputed_counter: Option<u64>,
    /// Highest counter the chain's events showed registered (in memory: a
    /// driver replays the channel's events after a restart).
    chain_counter: u64,
    /// Next read of the channel to ask for while the chain is ahead of
    /// every state we hold, and its back-off.
    read_retry: Option<(Timestamp, u64)>,
    /// The newest co-signed state (counter) a `channel_resolve` was sent
    /// with at once (not from the retry timer), so it is sent once per state.
    resolve_sent_for: Option<u64>,
    /// The newest state `channel_update` / `channel_withdraw` registered
    /// (`ChainEvent::Updated`), co-signed and newer than ours when kept.
    /// Adopted as our base before a unilateral close disputes (the chain
    /// refuses a dispute below it), so a peer that registers our fallen-back
    /// proposal and goes silent cannot stall our close. In memory: a driver
    /// replays the channel's events after a restart, or the close reads it
    /// again after the next update event.
    chain_kept: Option<SignedState>,
    /// Next `channel_abort` attempt and its back-off.
    abort_retry: Option<(Timestamp, u64)>,
    /// When the `Fallback` of the abandoned proposal was last sent.
    fallback_sent: Timestamp,
    /// Highest counter of a proposal the peer signed and this party
    /// refused (see [`Self::reject_signed`]).
    peer_signed_upto: Option<u64>,
    /// Side 1's proposals given up in a collision, to propose again once
    /// side 0's proposal is co-signed (in memory: after a restart the user
    /// asks again), with the counter each had and since when they wait.
    retry: Vec<(u64, Request)>,
    retry_since: Timestamp,
    /// When each request proposed again after a collision was first
    /// proposed, by the counter it has now: a request not co-signed within
    /// t_Δ of that falls back (`FellBack`) instead of being proposed again,
    /// so a peer that collides with every proposal cannot retry it for ever.
    retry_origin: std::collections::BTreeMap<u64, Timestamp>,
    /// A top-up allocation is proposed from a tick no sooner than this (a
    /// peer whose chain view lags refuses it until it sees the top-up).
    allocate_at: Timestamp,
    /// Since when an allocation has been due (0: none due); after `t_Δ`
    /// it no longer holds payments back.
    allocation_due_since: Timestamp,
    /// `TopUpDeferred` was reported for the allocation now due.
    allocation_deferred: bool,
    /// What `channel_withdraw` has paid each side so far, as this process
    /// has seen it on chain (summed from `WithdrawalPaid` events).
    chain_withdrawn_paid: [Amount; 2],
    /// When a co-signed withdrawal the chain has not paid yet is (re)sent
    /// next (0: not scheduled; a restarted machine waits `t_Δ` first, while
    /// its driver replays the chain's events).
    withdraw_resend_at: Timestamp,
    /// Re-sends so far of the withdrawal state with this counter.
    withdraw_resends: (u64, u32),
    /// When the tick last proposed the final state of a requested close.
    close_proposed_at: Timestamp,
    /// Sends so far of the close transaction (method, counter): bounded by
    /// [`MAX_CLOSE_RESENDS`].
    close_sends: (&'static str, u64, u32),
    /// Next re-send of the unregistered open, its back-off and the re-sends
    /// so far (in memory: a restart starts a fresh, bounded count).
    open_resend: Option<(Timestamp, u64, u32)>,
    /// Events announced only once the store they describe is durable
    /// (`PaymentReceived`: a merchant may deliver on it), by version.
    held_events: Vec<(u64, Vec<ChannelEvent>)>,
    /// Abandoned proposals the peer answered with a reject: no `Fallback`
    /// is resent for them (in memory: after a restart it is asked again).
    fallback_answered: Vec<u64>,
    /// Our abandoned proposals whose outcome the user was already told
    /// (`FellBack` at expiry or after collisions, `Retried`): the peer's
    /// "never signed" answer to a `Fallback` reports the others, e.g. a
    /// payment given up in a collision before a restart lost the in-memory
    /// `retry` (in memory: after a restart every one is reported once).
    outcome_told: Vec<u64>,
}

/// `first` then `second` as one step (the later persist covers both: its
/// version releases everything held up to it).
fn merge_steps(mut first: Step, second: Step) -> Step {
    if let Some(st) = second.persist {
        first.persist_may_lag = second.persist_may_lag && (first.persist.is_none() || first.persist_may_lag);
        first.persist = Some(st);
    }
    first.read_channel |= second.read_channel;
    first.messages.extend(second.messages);
    first.txs.extend(second.txs);
    first.events.extend(second.events);
    first
}

/// What a list of trades pays in total (bounded by a channel's balance, so
/// it never saturates in a state both signed).
fn paid(trades: &[Trade]) -> Amount {
    trades.iter().fold(Amount::ZERO, |a, t| a.checked_add(t.amount).unwrap_or(a))
}

/// `PaymentSent` for a co-signed payment proposal of ours.
fn sent_event(q: &Proposal) -> Option<ChannelEvent> {
    let t = q.state.last_trade.filter(|_| !q.state.is_final)?;
    let amount = if q.trades.is_empty() { t.amount } else { paid(&q.trades) };
    Some(ChannelEvent::PaymentSent { counter: q.state.counter, amount })
}

fn other(side: u8) -> usize {
    1 - (side as usize & 1)
}

impl ChannelMachine {
    /// A fresh channel. `key` is this party's per-ESC pseudonym key;
    /// `nonce_seed` is secret randomness from the caller's RNG, from which
    /// every `N` of `H(state, N)` is derived (so a re-signed state after a
    /// restart is bit-identical).
    pub fn new(key: KeyPair, nonce_seed: [u8; 32], params: ChannelParams) -> Self {
        let store = ChannelStore {
            version: 0,
            side: params.side & 1,
            my_key: key.public(),
            peer_key: params.peer_key,
            scid: params.scid,
            cid: params.cid,
            t_delta_ms: params.t_delta_ms,
            capacity: params.capacity,
            phase: Phase::Idle,
            latest: None,
            signed_upto: None,
            proposals: vec![],
            abandoned: vec![],
            peer_fallback_upto: None,
            closing_requested: false,
            registered_at: None,
            chain_topped_up: [Amount::ZERO; 2],
            credit_backed: [false; 2],
        };
        Self::from_parts(key, nonce_seed, params, store)
    }

    /// Restarts from a persisted snapshot.
    pub fn restore(
        key: KeyPair,
        nonce_seed: [u8; 32],
        params: ChannelParams,
        store: ChannelStore,
    ) -> Result<Self, ChannelError> {
        if store.my_key != key.public() || store.cid != params.cid || store.side != params.side {
            return Err(ChannelError::WrongStore);
        }
        Ok(Self::from_parts(key, nonce_seed, params, store))
    }

    fn from_parts(key: KeyPair, nonce_seed: [u8; 32], params: ChannelParams, store: ChannelStore) -> Self {
        Self {
            key,
            nonce_seed,
            params,
            store,
            held: vec![],
            now: 0,
            last_sent: 0,
            close_started: None,
            close_submitted_at: None,
            chain_retry: None,
            disputed_counter: None,
            chain_counter: 0,
            read_retry: None,
            resolve_sent_for: None,
            chain_kept: None,
            abort_retry: None,
            fallback_sent: 0,
            peer_signed_upto: None,
            retry: vec![],
            retry_since: 0,
            retry_origin: std::collections::BTreeMap::new(),
            allocate_at: 0,
            allocation_due_since: 0,
            allocation_deferred: false,
            chain_withdrawn_paid: [Amount::ZERO; 2],
            withdraw_resend_at: 0,
            withdraw_resends: (0, 0),
            close_proposed_at: 0,
            close_sends: ("", 0, 0),
            open_resend: None,
            held_events: vec![],
            fallback_answered: vec![],
            outcome_told: vec![],
        }
    }

    pub fn store(&self) -> &ChannelStore {
        &self.store
    }
    pub fn phase(&self) -> Phase {
        self.store.phase
    }
    pub fn latest(&self) -> Option<&SignedState> {
        self.store.latest.as_ref()
    }
    fn side(&self) -> usize {
        self.store.side as usize
    }

    fn nonce_for(&self, st: &ChannelState) -> u64 {
        let h = hash_parts(
            Tag("gridledger/channel-nonce/v1"),
            &[&self.nonce_seed, &st.counter.to_le_bytes(), &[u8::from(st.is_final)]],
        );
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.0[..8]);
        u64::from_le_bytes(b)
    }

    /// Feeds one input.
    pub fn handle(&mut self, input: Input) -> Result<Step, ChannelError> {
        let step = match input {
            Input::Persisted(v) => return Ok(self.release(v)),
            Input::Connected => self.connected(),
            Input::Tick(now) => self.tick(now),
            Input::User(r) => self.request(r)?,
            Input::Peer(m) => self.peer_then_resolve(m),
            Input::Chain(e) => self.chain(e),
        };
        Ok(self.queue_behind_held(step))
    }

    /// Feeds a message as raw bytes from the network.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<Step, ChannelError> {
        let m = Message::from_bytes(bytes)?;
        let step = self.peer_then_resolve(m);
        Ok(self.queue_behind_held(step))
    }

    /// A peer message; if it taught us a co-signed state newer than the
    /// dispute standing on chain (ours, raised with the newest state we
    /// held then, or the peer's), `channel_resolve` with it goes at once
    /// (then from the retry timer until the chain shows the outcome).
    fn peer_then_resolve(&mut self, m: Message) -> Step {
        let mut step = self.peer(m);
        if let Some(tx) = self.resolve_now() {
            step.txs.push(tx);
        }
        step
    }

    /// `channel_resolve` with our newest co-signed state if a dispute below
    /// it stands and none was sent at once with this state yet.
    fn resolve_now(&mut self) -> Option<ChainTx> {
        let tx = self.resolve_tx()?;
        let c = self.store.latest.as_ref()?.state.counter;
        if self.resolve_sent_for == Some(c) {
            return None;
        }
        self.resolve_sent_for = Some(c);
        if self.chain_retry.is_none() {
            self.chain_retry = Some((self.now.saturating_add(self.params.retry_ms), self.params.retry_ms));
        }
        Some(tx)
    }

    /// While a persist is outstanding (a driver with a persister thread keeps
    /// several in flight), a step's immediate messages and transactions wait
    /// behind it: a re-sent acceptance may carry a signature whose store is
    /// not yet durable, and nothing may overtake a held message (the peer
    /// must see them in order). They go with the newest held version.
    fn queue_behind_held(&mut self, mut step: Step) -> Step {
        if step.messages.is_empty() && step.txs.is_empty() {
            return step;
        }
        if let Some((_, msgs, txs)) = self.held.last_mut() {
            let mut m = std::mem::take(&mut step.messages);
            m.append(msgs);
            *msgs = m;
            let mut t = std::mem::take(&mut step.txs);
            t.append(txs);
            *txs = t;
        }
        step
    }

    fn release(&mut self, version: u64) -> Step {
        let mut step = Step::default();
        let (ready, rest): (Vec<_>, Vec<_>) = self.held.drain(..).partition(|(v, _, _)| *v <= version);
        self.held = rest;
        for (_, m, t) in ready {
            if !m.is_empty() {
                self.last_sent = self.now;
            }
            step.messages.extend(m);
            step.txs.extend(t);
        }
        let (ready, rest): (Vec<_>, Vec<_>) = self.held_events.drain(..).partition(|(v, _)| *v <= version);
        self.held_events = rest;
        step.events.extend(ready.into_iter().flat_map(|(_, e)| e));
        step
    }

    /// Ends a step that changed durable state: bumps the version and holds
    /// the outgoing messages and transactions until it is persisted.
    fn persist_then(&mut self, mut step: Step, msgs: Vec<Message>, txs: Vec<ChainTx>) -> Step {
        step.persist_may_lag = msgs.is_empty() && txs.is_empty();
        self.store.version += 1;
        #[cfg(feature = "mutants")]
        if mutants::planted(Mutation::SignBeforePersist) {
            step.messages.extend(msgs);
            step.txs.extend(txs);
            step.persist = Some(self.store.clone());
            return step;
        }
        self.held.push((self.store.version, msgs, txs));
        step.persist = Some(self.store.clone());
        #[cfg(feature = "mutants")]
        if mutants::planted(Mutation::LoseDurable) {
            step.persist = Some(ChannelStore { latest: None, signed_upto: None, ..self.store.clone() });
        }
        step
    }

    fn sign(&self, st: &ChannelState) -> (u64, Signature) {
        let nonce = self.nonce_for(st);
        (nonce, st.sign(&self.key, nonce))
    }

    /// Highest counter this party knows of: co-signed, signed by it, or
    /// given up by the peer.
    fn known_counter(&self) -> u64 {
        let a = self.store.latest.as_ref().map_or(0, |l| l.state.counter);
        let b = self.store.signed_upto.unwrap_or(0);
        let c = self.store.peer_fallback_upto.unwrap_or(0);
        let d = self.peer_signed_upto.unwrap_or(0);
        a.max(b).max(c).max(d)
    }

    fn next_counter(&self) -> Result<u64, ChannelError> {
        self.known_counter().checked_add(1).ok_or(ChannelError::Overflow)
    }

    /// Signs and proposes `st`, remembering it durably first.
    fn propose(&mut self, st: ChannelState, step: Step) -> Step {
        self.propose_folded(st, vec![], step)
    }

    fn propose_folded(&mut self, st: ChannelState, trades: Vec<Trade>, step: Step) -> Step {
        let (nonce, sig) = self.sign(&st);
        self.store.signed_upto = Some(st.counter.max(self.store.signed_upto.unwrap_or(0)));
        let p = Proposal { state: st, nonce, sig, proposed_at: self.now, trades };
        let msg = p.message();
        self.store.proposals.push(p);
        self.persist_then(step, vec![msg], vec![])
    }

    /// Gives up on every proposal in the window (they build on each other):
    /// their counters stay used (`signed_upto`); a late acceptance of one is
    /// still adopted. Returns their counters.
    fn abandon_window(&mut self) -> Vec<u64> {
        let gone: Vec<Proposal> = std::mem::take(&mut self.store.proposals);
        let counters = gone.iter().map(|p| p.state.counter).collect();
        self.store.abandoned.extend(gone);
        self.store.abandoned.sort_by_key(|p| p.state.counter);
        // Keep only what could still be adopted, and a bounded list.
        let latest = self.store.latest.as_ref().map(|l| l.state.counter);
        self.store.abandoned.retain(|p| latest.is_none_or(|l| p.state.counter > l));
        let excess = self.store.abandoned.len().saturating_sub(MAX_WINDOW);
        self.store.abandoned.drain(..excess);
        counters
    }

    /// Whether `child` is one update of this party's applied directly to
    /// `parent`: its trades move exactly their amount from our balance to
    /// the peer's and their energy onto the peer's side, nothing else.
    fn builds_on(&self, parent: &ChannelState, child: &Proposal) -> bool {
        let Some(t) = child.state.last_trade else { return false };
        let (amount, energy) = if child.trades.is_empty() {
            (Some(t.amount), Some(t.energy))
        } else {
            let energy = child.trades.iter().try_fold(Energy::ZERO, |e, t| e.checked_add(t.energy));
            (Some(paid(&child.trades)), energy)
        };
        let (Some(amount), Some(energy)) = (amount, energy) else { return false };
        let (me, peer) = (self.side(), other(self.store.side));
        let c = &child.state;
        c.balances[me].checked_add(amount) == Some(parent.balances[me])
            && parent.balances[peer].checked_add(amount) == Some(c.balances[peer])
            && parent.energy[peer].checked_add(energy) == Some(c.energy[peer])
            && c.energy[me] == parent.energy[me]
    }

    /// The payments a co-signed abandoned proposal (`counter`) holds: its
    /// own and those of the abandoned proposals it builds on (the rest of
    /// its window), oldest first. A payment once reported as fallen back is
    /// reported as sent when it turns out co-signed after all.
    fn abandoned_payments(&self, counter: u64) -> Vec<ChannelEvent> {
        let list = &self.store.abandoned;
        let Some(mut at) = list.iter().position(|p| p.state.counter == counter) else { return vec![] };
        let mut chain = vec![at];
        while at > 0 && self.builds_on(&list[at - 1].state, &list[at]) {
            at -= 1;
            chain.push(at);
        }
        chain.into_iter().rev().filter_map(|i| sent_event(&list[i])).collect()
    }

    /// The newest proposal we gave up on that is newer than our co-signed
    /// state and that the peer has not answered (see the `Reject` of an
    /// abandoned proposal): its `Fallback` is (re)sent.
    fn unanswered_fallback(&self) -> Option<u64> {
        let latest = self.store.latest.as_ref().map(|l| l.state.counter);
        self.store
            .abandoned
            .iter()
            .rev()
            .map(|p| p.state.counter)
            .find(|c| *c > 0 && latest.is_none_or(|l| l < *c) && !self.fallback_answered.contains(c))
    }

    /// The state the next update builds on: the newest proposal in the
    /// window, else the latest co-signed state.
    fn tip(&self) -> Option<&ChannelState> {
        self.store.proposals.last().map(|p| &p.state).or(self.store.latest.as_ref().map(|l| &l.state))
    }

    fn request(&mut self, r: Request) -> Result<Step, ChannelError> {
        // Closing abandons unanswered update proposals (the peer may be
        // silent): their counters stay used (`signed_upto`), and if the peer
        // did co-sign one, the peer can still answer a dispute with it.
        //
        // On an open channel a close first lets the window drain (each
        // proposal is co-signed or falls back): a final state proposed on a
        // co-signed state older than one the peer already co-signed would be
        // refused, and the close would need the dispute although both sides
        // are online. It is proposed from the tick once the window is empty;
        // new payments are refused meanwhile; a silent peer still meets the
        // close timeout (the dispute) as before.
        let updates_out = self.store.my_proposal().is_some_and(|p| p.state.counter > 0 && !p.state.is_final);
        if matches!(r, Request::Close) && self.store.phase == Phase::Open && updates_out {
            if !self.store.closing_requested || self.close_started.is_none() {
                self.close_started = Some(self.now);
            }
            self.store.closing_requested = true;
            return Ok(self.persist_then(Step::default(), vec![], vec![]));
        }
        let abandon = matches!(r, Request::Close) && matches!(self.store.phase, Phase::Disputed { .. }) && updates_out;
        if abandon {
            self.abandon_window();
        }
        if let Request::TopUp { amount, funding } = r {
            if self.store.phase != Phase::Open {
                return Err(ChannelError::NotOpen(self.store.phase));
            }
            if amount.is_zero() {
                return Err(ChannelError::ZeroAmount);
            }
            let deposit = matches!(funding, Funding::Deposit);
            if deposit != matches!(self.params.funding, Funding::Deposit) {
                return Err(ChannelError::WrongFunding);
            }
            let args = ChannelTopUpArgs { cid: self.store.cid, side: self.store.side, amount, funding };
            let value = if deposit { amount } else { Amount::ZERO };
            return Ok(Step {
                txs: vec![ChainTx { method: "channel_topup", args: encode(&args), value }],
                ..Step::default()
            });
        }
        if let Request::AskPayment { energy, price_per_kwh } = r {
            if self.store.phase != Phase::Open {
                return Err(ChannelError::NotOpen(self.store.phase));
            }
            if energy.0 == 0 || price_per_kwh.is_zero() {
                return Err(ChannelError::ZeroTrade);
            }
            return Ok(Step { messages: vec![Message::PayRequest { energy, price_per_kwh }], ..Step::default() });
        }
        // A side that lost a collision proposes nothing new until the
        // winner's re-proposal is co-signed (its own given-up requests then
        // go first) or `retry_ms` passed without it: else a side that keeps
        // proposing would collide with the winner's re-proposal and starve
        // it. Only closing is never held back.
        let yielded = !self.retry.is_empty() && self.now < self.retry_since.saturating_add(self.params.retry_ms);
        if yielded && !matches!(r, Request::Close) {
            return Err(ChannelError::Busy);
        }
        if self.store.closing_requested
            && matches!(r, Request::Pay { .. } | Request::PayMany(_) | Request::Withdraw { .. })
        {
            return Err(ChannelError::Closing);
        }
        // Fair interleaving: a top-up the chain shows and no state (co-signed
        // or proposed) allocates yet goes before further payments. New
        // payments wait (`Busy`, the party keeps them queued) until the
        // allocation is proposed, which happens as soon as the window is
        // empty (the next tick), so a steady payment stream cannot starve it.
        // Bounded: a peer that does not co-sign the allocation within `t_Δ`
        // (it does not see the top-up, or pretends not to) no longer holds
        // payments on the existing balance back (`allocation_holds_payments`).
        if matches!(r, Request::Pay { .. } | Request::PayMany(_)) && self.allocation_holds_payments() {
            return Err(ChannelError::Busy);
        }
        // A further update may join the window; an open or a final state
        // waits until nothing is outstanding.
        let window = self.params.window.clamp(1, MAX_WINDOW);
        let pipelined = matches!(r, Request::Pay { .. } | Request::PayMany(_))
            && self.store.proposals.len() < window
            && self.store.proposals.iter().all(|p| p.state.counter > 0 && !p.state.is_final);
        if !self.store.proposals.is_empty() && !pipelined {
            return Err(ChannelError::Busy);
        }
        match r {
            Request::Open => {
                if self.store.side != 0 {
                    return Err(ChannelError::NotInitiator);
                }
                if self.open_unregistered() {
                    // Retry: the co-signed open is sent again at once, with
                    // a fresh count of automatic re-sends.
                    let retry = self.params.retry_ms.max(1);
                    self.open_resend = Some((self.now.saturating_add(retry), retry, 0));
                    return Ok(Step { txs: self.open_txs(), ..Step::default() });
                }
                if self.store.phase != Phase::Idle || self.store.signed_upto.is_some() {
                    return Err(ChannelError::NotOpen(self.store.phase));
                }
                let st = ChannelState {
                    domain: self.params.domain,
                    cid: self.store.cid,
                    t_delta_ms: self.store.t_delta_ms,
                    counter: 0,
                    balances: self.store.capacity,
                    energy: [Energy::ZERO; 2],
                    last_trade: None,
                    fold: None,
                    is_final: false,
                    resize: Resize::default(),
                    prev_counter: 0,
                };
                Ok(self.propose(st, Step::default()))
            }
            Request::Pay { amount, energy, price_per_kwh } => {
                let latest = match (&self.store.phase, self.tip()) {
                    (Phase::Open, Some(t)) => t.clone(),
                    _ => return Err(ChannelError::NotOpen(self.store.phase)),
                };
                if energy.0 == 0 || price_per_kwh.is_zero() || amount.is_zero() {
                    return Err(ChannelError::ZeroTrade);
                }
                let computed = Trade::price_of(energy, price_per_kwh).ok_or(ChannelError::Overflow)?;
                if computed != amount {
                    return Err(ChannelError::PriceMismatch { stated: amount, energy, price: price_per_kwh, computed });
                }
                let (me, peer) = (self.side(), other(self.store.side));
                let have = latest.balances[me];
                if have < amount {
                    return Err(ChannelError::InsufficientBalance { have, need: amount });
                }
                let mut st = latest;
                st.prev_counter = st.counter;
                st.counter = self.next_counter()?;
                st.balances[me] = have.saturating_sub(amount);
                st.balances[peer] = st.balances[peer].checked_add(amount).ok_or(ChannelError::Overflow)?;
                st.energy[peer] = st.energy[peer].checked_add(energy).ok_or(ChannelError::Overflow)?;
                st.last_trade = Some(Trade { buyer: self.store.side, energy, price_per_kwh, amount });
                st.fold = None;
                Ok(self.propose(st, Step::default()))
            }
            Request::AskPayment { .. } | Request::TopUp { .. } => Ok(Step::default()),
            Request::Withdraw { amount } => {
                let mut st = match (&self.store.phase, self.tip()) {
                    (Phase::Open, Some(t)) => t.clone(),
                    _ => return Err(ChannelError::NotOpen(self.store.phase)),
                };
                if amount.is_zero() {
                    return Err(ChannelError::ZeroAmount);
                }
                let me = self.side();
                if self.store.credit_backed[me] || !matches!(self.params.funding, Funding::Deposit) {
                    return Err(ChannelError::CreditBacked);
                }
                let have = st.balances[me];
                if have < amount {
                    return Err(ChannelError::InsufficientBalance { have, need: amount });
                }
                st.prev_counter = st.counter;
                st.counter = self.next_counter()?;
                st.balances[me] = have.saturating_sub(amount);
                st.resize.withdrawn[me] = st.resize.withdrawn[me].checked_add(amount).ok_or(ChannelError::Overflow)?;
                st.last_trade = None;
                st.fold = None;
                Ok(self.propose(st, Step::default()))
            }
            Request::PayMany(items) => {
                let mut st = match (&self.store.phase, self.tip()) {
                    (Phase::Open, Some(t)) => t.clone(),
                    _ => return Err(ChannelError::NotOpen(self.store.phase)),
                };
                if items.is_empty() || items.len() > MAX_FOLD {
                    return Err(ChannelError::FoldSize(items.len()));
                }
                let (me, peer) = (self.side(), other(self.store.side));
                let mut trades = Vec::with_capacity(items.len());
                let (mut total, mut energy_total) = (Amount::ZERO, Energy::ZERO);
                for (amount, energy, price_per_kwh) in items {
                    if energy.0 == 0 || price_per_kwh.is_zero() || amount.is_zero() {
                        return Err(ChannelError::ZeroTrade);
                    }
                    let computed = Trade::price_of(energy, price_per_kwh).ok_or(ChannelError::Overflow)?;
                    if computed != amount {
                        return Err(ChannelError::PriceMismatch {
                            stated: amount,
                            energy,
                            price: price_per_kwh,
                            computed,
                        });
                    }
                    total = total.checked_add(amount).ok_or(ChannelError::Overflow)?;
                    energy_total = energy_total.checked_add(energy).ok_or(ChannelError::Overflow)?;
                    trades.push(Trade { buyer: self.store.side, energy, price_per_kwh, amount });
                }
                let have = st.balances[me];
                if have < total {
                    return Err(ChannelError::InsufficientBalance { have, need: total });
                }
                st.prev_counter = st.counter;
                st.counter = self.next_counter()?;
                st.balances[me] = have.saturating_sub(total);
                st.balances[peer] = st.balances[peer].checked_add(total).ok_or(ChannelError::Overflow)?;
                st.energy[peer] = st.energy[peer].checked_add(energy_total).ok_or(ChannelError::Overflow)?;
                st.last_trade = trades.last().copied();
                if trades.len() < 2 {
                    st.fold = None;
                    return Ok(self.propose(st, Step::default()));
                }
                st.fold = Some(Fold { trades: trades.len() as u32, hash: Fold::hash(&trades) });
                Ok(self.propose_folded(st, trades, Step::default()))
            }
            Request::Close => {
                // Our own dispute stands with a state older than our newest
                // (learnt after raising it): the close of the newer state
                // would book us a fault while that dispute stands, so resolve
                // it first with the newer state (no fault for our own
                // unacknowledged payment); the final state is proposed once
                // the chain shows the dispute resolved.
                let own_older = matches!(self.store.phase, Phase::Disputed { by_me: true, .. })
                    && self.store.latest.as_ref().zip(self.disputed_counter).is_some_and(|(l, d)| l.state.counter > d);
                if own_older {
                    self.store.closing_requested = true;
                    self.close_started = Some(self.now);
                    let txs: Vec<ChainTx> = self.resolve_now().into_iter().collect();
                    return Ok(self.persist_then(Step::default(), vec![], txs));
                }
                // Also during a dispute: a co-signed final state closes the
                // channel at once (the contract accepts it then), which beats
                // waiting out `t_Δ`.
                let latest = match (&self.store.phase, &self.store.latest) {
                    (Phase::Open | Phase::Disputed { .. }, Some(l)) => l.state.clone(),
                    _ => return Err(ChannelError::NotOpen(self.store.phase)),
                };
                // A repeated close keeps the first deadline for the
                // fallback to a dispute.
                if !self.store.closing_requested || self.close_started.is_none() {
                    self.close_started = Some(self.now);
                }
                self.store.closing_requested = true;
                let mut st = latest;
                st.prev_counter = st.counter;
                st.counter = self.next_counter()?;
                st.is_final = true;
                st.last_trade = None;
                st.fold = None;
                Ok(self.propose(st, Step::default()))
            }
        }
    }

    fn reject(&self, counter: u64, reason: String) -> Step {
        Step {
            messages: vec![Message::Reject { counter, reason: reason.clone() }],
            events: vec![ChannelEvent::Fault(reason)],
            ..Step::default()
        }
    }

    /// Rejects a proposal the peer did sign: its counter is used up on the
    /// peer's side, so this party's own next proposal goes above it (else a
    /// close proposed after refusing the peer's update would collide with
    /// it and be refused in turn). Kept in memory only: a refused proposal
    /// changes nothing durable (after a restart a collision costs one more
    /// reject, as before).
    fn reject_signed(&mut self, counter: u64, reason: String) -> Step {
        let known = self.known_counter();
        if counter > known && counter <= known.saturating_add(MAX_COUNTER_STEP) {
            self.peer_signed_upto = Some(counter);
        }
        self.reject(counter, reason)
    }

    /// Checks a peer proposal is the transition this party agrees to.
    fn validate_proposal(&self, st: &ChannelState, folded: &[Trade]) -> Result<(), String> {
        if st.fold.is_none() && !folded.is_empty() {
            return Err("trades sent with an update that folds none".into());
        }
        if st.domain != self.params.domain {
            return Err(format!(
                "proposal for chain {} contract {}, not this channel's",
                st.domain.chain_id, st.domain.contract
            ));
        }
        if st.cid != self.store.cid {
            return Err("proposal for another channel".into());
        }
        if st.t_delta_ms != self.store.t_delta_ms {
            return Err(format!(
                "proposal carries t_delta {} ms, the agreed is {}",
                st.t_delta_ms, self.store.t_delta_ms
            ));
        }
        let latest = self.store.latest.as_ref();
        if st.counter == 0 {
            if self.store.phase != Phase::Idle || self.store.signed_upto.is_some() {
                return Err("open proposed twice".into());
            }
            if st.t_delta_ms < self.params.min_t_delta_ms {
                return Err(format!(
                    "t_delta {} ms is below this party's minimum {}",
                    st.t_delta_ms, self.params.min_t_delta_ms
                ));
            }
            let ok = st.balances == self.store.capacity
                && st.energy == [Energy::ZERO; 2]
                && st.last_trade.is_none()
                && st.fold.is_none()
                && !st.is_final;
            return if ok { Ok(()) } else { Err("open state does not match the agreed terms".into()) };
        }
        let Some(l) = latest else {
            return Err("update before the channel is open".into());
        };
        let disputed = matches!(self.store.phase, Phase::Disputed { .. });
        if self.store.phase != Phase::Open && !(disputed && st.is_final) {
            return Err(format!("channel is {:?}, not open", self.store.phase));
        }
        // Once we asked to close we may hold a final state signed (the peer
        // can register it at once, whatever it answered us): co-signing a
        // later update would let the close void it. Only the close itself.
        if self.store.closing_requested && !st.is_final {
            return Err("closing: no further updates are co-signed".into());
        }
        let l = &l.state;
        // Our own dispute stands with a state older than our newest (we
        // learnt the newer one after raising it): `channel_close` faults a
        // raiser whose close does not carry the disputed state, so we do not
        // co-sign the close of the newer one; the peer resolves with it (no
        // fault when it is our own unacknowledged proposal), or the dispute
        // settles.
        let own_dispute_older = matches!(self.store.phase, Phase::Disputed { by_me: true, .. })
            && self.disputed_counter.is_some_and(|d| l.counter > d);
        if st.is_final && own_dispute_older {
            return Err("our dispute stands with an older state: no close of a newer one during it".into());
        }
        #[cfg(feature = "mutants")]
        let skip_counter = mutants::planted(Mutation::SkipCounterCheck);
        #[cfg(not(feature = "mutants"))]
        let skip_counter = false;
        if !skip_counter && st.counter <= l.counter {
            return Err(format!("counter {} not above co-signed {}", st.counter, l.counter));
        }
        if st.counter > self.known_counter().saturating_add(MAX_COUNTER_STEP) {
            return Err(format!(
                "counter {} jumps more than {MAX_COUNTER_STEP} past {}",
                st.counter,
                self.known_counter()
            ));
        }
        if st.prev_counter != l.counter {
            return Err(format!(
                "the update follows counter {}, our co-signed state is {}",
                st.prev_counter, l.counter
            ));
        }
        if st.is_final {
            let ok = st.balances == l.balances
                && st.energy == l.energy
                && st.resize == l.resize
                && st.last_trade.is_none()
                && st.fold.is_none();
            return if ok { Ok(()) } else { Err("final state differs from the co-signed one".into()) };
        }
        let Some(t) = st.last_trade else {
            return self.validate_resize(st, l);
        };
        if st.resize != l.resize {
            return Err("a trade may not change top-ups or withdrawals".into());
        }
        // The trades this update applies: the folded list, or the one.
        let single = [t];
        let trades: &[Trade] = match st.fold {
            None => &single,
            Some(f) => {
                if folded.len() < 2 || folded.len() > MAX_FOLD || f.trades as usize != folded.len() {
                    return Err(format!("a fold of {} trades, 2..={MAX_FOLD} allowed", folded.len()));
                }
                if Fold::hash(folded) != f.hash || folded.last() != Some(&t) {
                    return Err("folded trades do not match the state's fold".into());
                }
                folded
            }
        };
        let (me, peer) = (self.side(), other(self.store.side));
        let (mut total, mut energy_total) = (Amount::ZERO, Energy::ZERO);
        // The policy sees each trade against the state the trades before it
        // in the fold produce, as if they had come one at a time (a
        // cumulative cap must hold for a fold too).
        let mut running = l.clone();
        for t in trades {
            if t.buyer as usize != peer {
                return Err("the proposer must be the buyer".into());
            }
            if t.energy.0 == 0 || t.price_per_kwh.is_zero() || t.amount.is_zero() {
                return Err("a trade needs positive energy, price and amount".into());
            }
            if Trade::price_of(t.energy, t.price_per_kwh) != Some(t.amount) {
                return Err("trade amount does not match energy and price".into());
            }
            #[cfg(feature = "mutants")]
            let skip = mutants::planted(Mutation::FoldSkipsPolicy) && Some(t) != trades.last();
            #[cfg(not(feature = "mutants"))]
            let skip = false;
            if let Some(p) = self.params.policy.as_ref().filter(|_| !skip) {
                p.0.check(t, &running).map_err(|why| format!("refused by policy: {why}"))?;
            }
            total = total.checked_add(t.amount).ok_or("trade amounts overflow")?;
            energy_total = energy_total.checked_add(t.energy).ok_or("trade energy overflows")?;
            running.balances[peer] =
                running.balances[peer].checked_sub(t.amount).ok_or("trade amounts exceed the balance")?;
            running.balances[me] = running.balances[me].checked_add(t.amount).ok_or("trade amounts overflow")?;
            running.energy[me] = running.energy[me].checked_add(t.energy).ok_or("trade energy overflows")?;
            running.last_trade = Some(*t);
        }
        let want_peer = l.balances[peer].checked_sub(total);
        let want_me = l.balances[me].checked_add(total);
        let want_energy = l.energy[me].checked_add(energy_total);
        if want_peer != Some(st.balances[peer])
            || want_me != Some(st.balances[me])
            || want_energy != Some(st.energy[me])
            || st.energy[peer] != l.energy[peer]
        {
            return Err("balances or energy do not follow from the trade".into());
        }
        Ok(())
    }

    /// A peer's update without a trade: it allocates the peer's on-chain
    /// top-up to the peer's balance, or takes part of the peer's balance out
    /// (withdraw). Only the proposer's side changes, by exactly the amount.
    fn validate_resize(&self, st: &ChannelState, l: &ChannelState) -> Result<(), String> {
        if st.fold.is_some() {
            return Err("a fold without a trade".into());
        }
        let (me, peer) = (self.side(), other(self.store.side));
        let (r, lr) = (&st.resize, &l.resize);
        if r == lr {
            return Err("update carries no trade, top-up or withdrawal".into());
        }
        if st.energy != l.energy
            || st.balances[me] != l.balances[me]
            || r.topped_up[me] != lr.topped_up[me]
            || r.withdrawn[me] != lr.withdrawn[me]
        {
            return Err("a top-up or withdrawal changes only the proposer's side".into());
        }
        let (Some(up), Some(out)) =
            (r.topped_up[peer].checked_sub(lr.topped_up[peer]), r.withdrawn[peer].checked_sub(lr.withdrawn[peer]))
        else {
            return Err("top-ups and withdrawals may not decrease".into());
        };
        match (up.is_zero(), out.is_zero()) {
            (false, true) => {
                if r.topped_up[peer] > self.store.chain_topped_up[peer] {
                    return Err(format!(
                        "allocates a top-up of {} while the chain shows {}",
                        r.topped_up[peer], self.store.chain_topped_up[peer]
                    ));
                }
                if l.balances[peer].checked_add(up) != Some(st.balances[peer]) {
                    return Err("the top-up does not add exactly to the proposer's balance".into());
                }
            }
            (true, false) => {
                if self.store.credit_backed[peer] {
                    return Err("the proposer's side is credit-backed and cannot withdraw".into());
                }
                if l.balances[peer].checked_sub(out) != Some(st.balances[peer]) {
                    return Err("the withdrawal does not come exactly from the proposer's balance".into());
                }
            }
            _ => return Err("update carries no trade, top-up or withdrawal".into()),
        }
        Ok(())
    }

    /// What a new co-signed state moved in or out compared to `prev`.
    fn resize_events(prev: &Resize, st: &ChannelState) -> Vec<ChannelEvent> {
        let mut out = vec![];
        for side in 0..2u8 {
            let i = side as usize;
            let up = st.resize.topped_up[i].saturating_sub(prev.topped_up[i]);
            if !up.is_zero() {
                out.push(ChannelEvent::ToppedUp { counter: st.counter, side, amount: up });
            }
            let w = st.resize.withdrawn[i].saturating_sub(prev.withdrawn[i]);
            if !w.is_zero() {
                out.push(ChannelEvent::Withdrawn { counter: st.counter, side, amount: w });
            }
        }
        out
    }

    /// Whether the chain shows a top-up of this side that neither the
    /// co-signed state nor a proposal in the window allocates yet (and the
    /// channel is open, no close asked).
    pub fn allocation_due(&self) -> bool {
        let me = self.side();
        self.store.phase == Phase::Open
            && !self.store.closing_requested
            && self.tip().is_some_and(|t| self.store.chain_topped_up[me] > t.resize.topped_up[me])
    }

    /// Whether a due allocation still makes payments wait: for `t_Δ` from
    /// when it became due (tracked from requests and ticks), not longer.
    /// The clock runs while the *co-signed* state does not allocate the
    /// top-up (a proposal of it the peer keeps refusing does not restart it).
    fn allocation_holds_payments(&mut self) -> bool {
        if !self.allocation_overdue_check() {
            return false;
        }
        self.allocation_due()
    }

    /// Tracks how long the co-signed state has lagged the chain's top-up of
    /// this side; true while that is under `t_Δ` (or nothing lags).
    fn allocation_overdue_check(&mut self) -> bool {
        let me = self.side();
        let lags = self.store.phase == Phase::Open
            && !self.store.closing_requested
            && self
                .store
                .latest
                .as_ref()
                .is_some_and(|l| self.store.chain_topped_up[me] > l.state.resize.topped_up[me]);
        if !lags {
            self.allocation_due_since = 0;
            self.allocation_deferred = false;
            return false;
        }
        if self.allocation_due_since == 0 {
            self.allocation_due_since = self.now.max(1);
        }
        self.now < self.allocation_due_since.saturating_add(self.store.t_delta_ms)
    }

    /// Proposes the state that allocates this side's on-chain top-up, once
    /// nothing else is outstanding.
    fn propose_allocation(&mut self, step: Step) -> Step {
        let me = self.side();
        let Some(l) = self.store.latest.as_ref().map(|l| l.state.clone()) else { return step };
        let idle = self.store.phase == Phase::Open && self.store.proposals.is_empty() && !self.store.closing_requested;
        let Some(up) = self.store.chain_topped_up[me].checked_sub(l.resize.topped_up[me]) else { return step };
        if !idle || up.is_zero() {
            return step;
        }
        let (Ok(counter), Some(bal)) = (self.next_counter(), l.balances[me].checked_add(up)) else { return step };
        let mut st = l;
        st.prev_counter = st.counter;
        st.counter = counter;
        st.balances[me] = bal;
        st.resize.topped_up[me] = self.store.chain_topped_up[me];
        st.last_trade = None;
        st.fold = None;
        self.propose(st, step)
    }

    fn co_signed(&self, st: ChannelState, nonce: u64, mine: Signature, theirs: Signature) -> SignedState {
        let mut sigs = [theirs; 2];
        sigs[self.side()] = mine;
        SignedState { state: st, nonce, sigs }
    }

    fn peer(&mut self, m: Message) -> Step {
        match m {
            Message::Propose { state, nonce, sig } => self.on_propose(state, nonce, sig, vec![]),
            Message::ProposeFolded { state, nonce, sig, trades } => self.on_propose(state, nonce, sig, trades),
            Message::Accept { counter, hstate, sig } => self.on_accept(counter, hstate, sig),
            Message::Reject { counter, reason } => {
                let Some(at) = self.store.proposals.iter().position(|p| p.state.counter == counter) else {
                    // The peer says it does not hold a proposal we gave up
                    // on. That answers this one proposal only, and only for
                    // now: the reject may answer a delayed retransmission
                    // rather than our `Fallback` (no acceptance of an older
                    // one before it), and the peer may sign a later copy
                    // before our `Fallback` reaches it. So the proposal stays
                    // adoptable (a late acceptance is still taken); only the
                    // `Fallback` for it stops, and the next older one is
                    // asked about at once, until the peer accepts one.
                    if self.store.abandoned.iter().any(|p| p.state.counter == counter) {
                        if !self.fallback_answered.contains(&counter) {
                            self.fallback_answered.push(counter);
                        }
                        let abandoned = &self.store.abandoned;
                        self.fallback_answered.retain(|c| abandoned.iter().any(|p| p.state.counter == *c));
                        let mut step = Step::default();
                        // The peer never signed it and nobody told the user
                        // yet (a request given up in a collision whose
                        // in-memory retry a restart lost): it fell back. The
                        // proposal stays adoptable; a late acceptance is
                        // still reported `CoSigned`.
                        // Payments only (the resize unchanged): a top-up's
                        // allocation is proposed again while the chain
                        // shows the top-up, a withdrawal is asked again.
                        let base = self.store.latest.as_ref().map(|l| l.state.resize);
                        let payment = self
                            .store
                            .abandoned
                            .iter()
                            .any(|p| p.state.counter == counter && base.is_none_or(|b| b == p.state.resize));
                        let waiting = self.retry.iter().any(|(c, _)| *c == counter);
                        if payment && !waiting && !self.outcome_told.contains(&counter) {
                            self.outcome_told.push(counter);
                            step.events.push(ChannelEvent::FellBack { counter });
                        }
                        let abandoned = &self.store.abandoned;
                        self.outcome_told.retain(|c| abandoned.iter().any(|p| p.state.counter == *c));
                        if let Some(c) = self.unanswered_fallback() {
                            self.fallback_sent = self.now;
                            step.messages.push(Message::Fallback { counter: c });
                        }
                        return step;
                    }
                    return Step::default();
                };
                // The proposal dies, and every later one in the window (each
                // builds on it); their counters stay used (signed_upto).
                let dead: Vec<Proposal> = self.store.proposals.drain(at..).collect();
                let gone: Vec<u64> = dead.iter().map(|p| p.state.counter).collect();
                if self.store.phase == Phase::Idle {
                    self.store.phase = Phase::Closed;
                }
                let mut events = vec![ChannelEvent::Rejected { counter, reason }];
                for c in gone.into_iter().skip(1) {
                    events.push(ChannelEvent::Rejected { counter: c, reason: format!("builds on rejected {counter}") });
                }
                // A reject may answer an older copy of a proposal whose later
                // copy the peer then signed (it was busy with its own at
                // first): the rejected updates stay adoptable like fallen-back
                // ones, and a `Fallback` now makes the peer either re-accept
                // or never sign them.
                let updates: Vec<Proposal> =
                    dead.into_iter().filter(|p| p.state.counter > 0 && !p.state.is_final).collect();
                let mut msgs = vec![];
                if let Some(p) = updates.last() {
                    msgs.push(Message::Fallback { counter: p.state.counter });
                    self.fallback_sent = self.now;
                }
                self.store.abandoned.extend(updates);
                self.store.abandoned.sort_by_key(|p| p.state.counter);
                let excess = self.store.abandoned.len().saturating_sub(MAX_WINDOW);
                self.store.abandoned.drain(..excess);
                let step = Step { events, ..Step::default() };
                self.persist_then(step, msgs, vec![])
            }
            Message::PayRequest { energy, price_per_kwh } => self.on_pay_request(energy, price_per_kwh),
            Message::Collision { counter } => self.on_collision(counter),
            Message::Reestablish { latest } => self.on_reestablish(latest),
            Message::Fallback { counter } => {
                // Our newest co-signed state, re-accepted: if the peer's
                // window fell back after we co-signed part of it, this is the
                // state both end on (it comes before the confirmation).
                let mut msgs = vec![];
                if let Some(l) = &self.store.latest {
                    let sig = l.sigs[self.side()];
                    let again = Message::Accept { counter: l.state.counter, hstate: l.hstate(), sig };
                    if l.state.counter == counter {
                        // We co-signed it: say so again, both end on it.
                        return Step { messages: vec![again], ..Step::default() };
                    }
                    if l.state.counter > counter {
                        return Step::default();
                    }
                    msgs.push(again);
                    // The acceptance alone is lost on a peer that no longer
                    // remembers the proposal; the co-signed state itself is
                    // adopted whatever the peer remembers.
                    msgs.push(Message::Reestablish { latest: Some(l.clone()) });
                }
                // Never signed by us: confirm, so the peer stops resending.
                msgs.push(Message::Reject { counter, reason: format!("proposal {counter} fell back, never signed") });
                if self.store.peer_fallback_upto.is_some_and(|u| u >= counter) {
                    return Step { messages: msgs, ..Step::default() };
                }
                if counter > self.known_counter().saturating_add(MAX_COUNTER_STEP) {
                    return Step::default();
                }
                self.store.peer_fallback_upto = Some(counter);
                self.persist_then(Step::default(), msgs, vec![])
            }
        }
    }

    /// A seller's payment request: paid at once if inside `auto_pay` and
    /// possible now, otherwise handed to the user.
    fn on_pay_request(&mut self, energy: Energy, price_per_kwh: Amount) -> Step {
        let asked = Step { events: vec![ChannelEvent::PaymentRequested { energy, price_per_kwh }], ..Step::default() };
        // Checked against the tip of the window (what this payment would
        // build on), not the co-signed state: requests arriving back to back
        // must not each see the balance before the others.
        let (Some(policy), Some(tip)) = (self.params.auto_pay.clone(), self.tip().cloned()) else {
            return asked;
        };
        let Some(amount) = Trade::price_of(energy, price_per_kwh) else { return asked };
        let trade = Trade { buyer: self.store.side, energy, price_per_kwh, amount };
        if policy.0.check(&trade, &tip).is_err() {
            return asked;
        }
        match self.request(Request::Pay { amount, energy, price_per_kwh }) {
            Ok(step) => step,
            Err(_) => asked,
        }
    }

    fn on_propose(&mut self, st: ChannelState, nonce: u64, sig: Signature, trades: Vec<Trade>) -> Step {
        let counter = st.counter;
        // A retransmission of a state we already co-signed: re-accept.
        if let Some(l) = &self.store.latest {
            if l.state == st && l.nonce == nonce {
                return Step {
                    messages: vec![Message::Accept { counter, hstate: l.hstate(), sig: l.sigs[self.side()] }],
                    ..Step::default()
                };
            }
        }
        if !st.verify(&self.store.peer_key, nonce, &sig) {
            return self.reject(counter, "bad signature".into());
        }
        // A retransmission of an older proposal of the peer's window (its
        // acceptances were lost): our newest co-signed state covers it, as
        // each proposal builds on the one before. Re-accept that.
        if let Some(l) = &self.store.latest {
            let peers = l.state.last_trade.is_some_and(|t| usize::from(t.buyer) == other(self.store.side));
            let update = counter > 0 && st.last_trade.is_some() && !st.is_final;
            if counter < l.state.counter && peers && update && st.cid == l.state.cid {
                let again = Message::Accept { counter: l.state.counter, hstate: l.hstate(), sig: l.sigs[self.side()] };
                return Step { messages: vec![again], ..Step::default() };
            }
        }
        // Early, not wrong: the peer's chain poller saw the channel active
        // before ours did (each side watches the chain on its own). A
        // refusal would fail the peer's payment and book a fault on an
        // honest peer; say nothing instead: the proposer re-sends its window
        // every `retry_ms`, and this side takes it once it has seen the
        // channel active too (or the update falls back after t_Δ).
        if counter > 0
            && self.store.phase == Phase::Opening
            && self.store.latest.as_ref().is_some_and(|l| l.state.counter == 0)
        {
            return Step::default();
        }
        if self.store.peer_fallback_upto.is_some_and(|u| counter <= u) {
            return self.reject(counter, format!("proposal {counter} fell back"));
        }
        if !self.store.proposals.is_empty() {
            // Both proposed at once: the side that did not propose the
            // newest co-signed state wins ([`Self::collision_winner`]). The
            // winner refuses the peer's proposal and keeps its own; the
            // loser gives up its own (the winner never signs them) and
            // proposes them again after the winner's, which the winner
            // re-sends above both counters.
            if self.collision_winner() == self.side() {
                return self.reject_signed(counter, "collision: our proposal goes first".into());
            }
            return self.yield_to(counter);
        }
        #[cfg(feature = "mutants")]
        let skip_counter = mutants::planted(Mutation::SkipCounterCheck);
        #[cfg(not(feature = "mutants"))]
        let skip_counter = false;
        if !skip_counter && self.store.signed_upto.is_some_and(|u| counter <= u) {
            return self.reject_signed(counter, format!("counter {counter} already used"));
        }
        if let Err(why) = self.validate_proposal(&st, &trades) {
            // With our newest co-signed state: if the refusal is because the
            // two sides hold different co-signed states (a lost message),
            // the one behind adopts the newer (both signed it) and they
            // continue, instead of refusing each other for good.
            let mut step = self.reject_signed(counter, why);
            step.messages.push(Message::Reestablish { latest: self.store.latest.clone() });
            return step;
        }
        // Our signature must be computed over the peer's nonce.
        let mine = st.sign(&self.key, nonce);
        let hstate = st.hstate(nonce);
        let signed = self.co_signed(st.clone(), nonce, mine, sig);
        self.store.signed_upto = Some(counter);
        let prev = self.store.latest.as_ref().map(|l| l.state.resize).unwrap_or_default();
        self.store.latest = Some(signed);
        let mut events = vec![ChannelEvent::CoSigned(counter)];
        events.extend(Self::resize_events(&prev, &st));
        if counter == 0 {
            self.store.phase = Phase::Opening;
        } else if st.is_final {
            self.store.phase = Phase::Closing;
            self.close_started = Some(self.now);
            self.close_submitted_at = Some(self.now);
        } else if let Some(t) = st.last_trade {
            let amount = if trades.is_empty() { t.amount } else { paid(&trades) };
            events.push(ChannelEvent::PaymentReceived { counter, amount });
        }
        // The payment (and what a top-up or withdrawal moved) is announced
        // with the acceptance, once durable: a crash before the store is
        // written must not leave the user told of a payment the channel
        // does not hold.
        let (later, events): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| {
            matches!(
                e,
                ChannelEvent::PaymentReceived { .. } | ChannelEvent::ToppedUp { .. } | ChannelEvent::Withdrawn { .. }
            )
        });
        let step = Step { events, ..Step::default() };
        let step = self.persist_then(step, vec![Message::Accept { counter, hstate, sig: mine }], vec![]);
        if !later.is_empty() {
            self.held_events.push((self.store.version, later));
        }
        // Side 0's proposal that won a collision is co-signed: ours go now.
        if !self.retry.is_empty() && self.store.phase == Phase::Open {
            let again = std::mem::take(&mut self.retry);
            return self.propose_again(again, step);
        }
        step
    }

    fn on_accept(&mut self, counter: u64, hstate: Hash32, sig: Signature) -> Step {
        // An acceptance is cumulative: the peer co-signs a proposal of the
        // window only on top of the one before, so accepting `counter`
        // settles every earlier proposal too (their own acceptances may
        // have been lost).
        let current = self.store.proposals.iter().position(|p| p.state.counter == counter);
        // A late acceptance of a proposal we gave up on is still a valid
        // co-signed state: adopt it if it is newer than what we hold.
        let late = self.store.abandoned.iter().find(|p| {
            p.state.counter == counter && self.store.latest.as_ref().is_none_or(|l| l.state.counter < counter)
        });
        let p = match (current, late) {
            (Some(at), _) => self.store.proposals[at].clone(),
            (None, Some(p)) => p.clone(),
            (None, None) => return Step::default(),
        };
        if p.state.hstate(p.nonce) != hstate || !p.state.verify(&self.store.peer_key, p.nonce, &sig) {
            return Step { events: vec![ChannelEvent::Fault("bad acceptance signature".into())], ..Step::default() };
        }
        let signed = self.co_signed(p.state.clone(), p.nonce, p.sig, sig);
        let prev = self.store.latest.as_ref().map(|l| l.state.resize).unwrap_or_default();
        self.store.latest = Some(signed.clone());
        let mut events = Self::resize_events(&prev, &p.state);
        match current {
            Some(at) => {
                for q in self.store.proposals.drain(..at) {
                    if let Some(t) = q.state.last_trade {
                        let amount = if q.trades.is_empty() { t.amount } else { paid(&q.trades) };
                        events.push(ChannelEvent::PaymentSent { counter: q.state.counter, amount });
                    }
                }
                self.store.proposals.remove(0);
            }
            None => {
                // A late acceptance of a payment reported as fallen back:
                // the money moved after all, say so.
                let mut events = self.abandoned_payments(counter);
                events.push(ChannelEvent::CoSigned(counter));
                self.store.abandoned.retain(|q| q.state.counter > counter);
                let step = Step { events, ..Step::default() };
                return self.persist_then(step, vec![], vec![]);
            }
        }
        events.push(ChannelEvent::CoSigned(counter));
        let mut txs = vec![];
        if counter == 0 {
            self.store.phase = Phase::Opening;
            txs.push(ChainTx {
                method: "channel_open",
                args: encode(&ChannelOpenArgs { scid: self.store.scid, open: signed.clone() }),
                value: Amount::ZERO,
            });
            txs.push(self.fund_tx());
        } else if p.state.is_final {
            self.store.phase = Phase::Closing;
            self.close_submitted_at = Some(self.now);
            txs.push(ChainTx {
                method: "channel_close",
                args: encode(&ChannelStateArgs { state: signed.clone() }),
                value: Amount::ZERO,
            });
        } else if let Some(t) = p.state.last_trade {
            let amount = if p.trades.is_empty() { t.amount } else { paid(&p.trades) };
            events.push(ChannelEvent::PaymentSent { counter, amount });
        }
        // A withdrawal is paid while the channel stays open; if this
        // transaction is lost, the close pays it.
        if !p.state.is_final && p.state.resize.withdrawn != prev.withdrawn {
            self.withdraw_resend_at = self.now.saturating_add(self.store.t_delta_ms);
            txs.push(ChainTx {
                method: "channel_withdraw",
                args: encode(&ChannelStateArgs { state: signed }),
                value: Amount::ZERO,
            });
        }
        let step = Step { events, ..Step::default() };
        self.persist_then(step, vec![], txs)
    }

    fn fund_tx(&self) -> ChainTx {
        let value = match self.params.funding {
            Funding::Deposit => self.store.capacity[self.side()],
            Funding::CreditNote { .. } => Amount::ZERO,
        };
        ChainTx {
            method: "channel_fund",
            args: encode(&ChannelFundArgs {
                cid: self.store.cid,
                side: self.store.side,
                funding: self.params.funding.clone(),
            }),
            value,
        }
    }

    fn dispute_tx(&self, l: &SignedState) -> ChainTx {
        ChainTx {
            method: "channel_dispute",
            args: encode(&ChannelDisputeArgs { side: self.store.side, state: l.clone() }),
            value: Amount::ZERO,
        }
    }

    fn chain(&mut self, e: ChainEvent) -> Step {
        let mut step = Step::default();
        match &e {
            // A registered state as read: the chain's counter now (a forged
            // or foreign one says nothing). A state the chain closed on, read
            // after the close, does the same.
            ChainEvent::Updated { state: Some(ss), .. } if self.co_signed_valid(ss) => {
                self.chain_counter = ss.state.counter;
            }
            ChainEvent::Updated { state: Some(_), .. } => {}
            ChainEvent::Updated { counter, .. }
            | ChainEvent::DisputeResolved { counter }
            | ChainEvent::DisputeRaised { counter, .. }
            | ChainEvent::Closed { counter } => self.chain_counter = self.chain_counter.max(*counter),
            _ => {}
        }
        match e {
            ChainEvent::Registered { t_delta_ms, hstate } => {
                // The funding deadline counts from the first sighting and is
                // persisted (synced), so a restart neither resets nor loses it.
                let first_sighting = self.store.phase == Phase::Opening && self.store.registered_at.is_none();
                if first_sighting {
                    self.store.registered_at = Some(self.now);
                }
                // The responder funds once the open is on chain; a zero side
                // counts as funded by the contract.
                // Only while opening: a replayed event after a restart must
                // not fund twice.
                if self.store.side == 1 && self.store.phase == Phase::Opening && !self.store.capacity[1].is_zero() {
                    // Fund only the channel we co-signed: same open state,
                    // same window.
                    let ours = self.store.latest.as_ref().is_some_and(|l| l.state.counter == 0 && l.hstate() == hstate);
                    if !ours || t_delta_ms != self.store.t_delta_ms {
                        step.events.push(ChannelEvent::Fault(format!(
                            "registered channel (t_delta {t_delta_ms} ms) is not the open state we signed; not funding"
                        )));
                    } else {
                        step.txs.push(self.fund_tx());
                    }
                }
                if first_sighting {
                    let txs = std::mem::take(&mut step.txs);
                    let mut step = self.persist_then(step, vec![], txs);
                    step.persist_may_lag = false;
                    return step;
                }
            }
            ChainEvent::Active => {
                if self.store.phase == Phase::Opening {
                    self.store.phase = Phase::Open;
                    step.events.push(ChannelEvent::Opened);
                    return self.persist_then(step, vec![], vec![]);
                }
            }
            ChainEvent::DisputeRaised { counter, by, t_end } => {
                let by_me = by == self.store.side;
                self.store.phase = Phase::Disputed { t_end, by_me };
                self.disputed_counter = Some(counter);
                step.events.push(ChannelEvent::DisputeSeen { counter, by });
                // The peer disputes with a proposal of ours it never
                // acknowledged (it co-signed it out of band and withheld the
                // acceptance): our newest state, at a higher counter,
                // overturns it (the contract ranks by counter alone), and
                // the channel is closed after, since the peer lied about
                // what it signed. `closing_requested` is persisted.
                let ours = self.store.abandoned.iter().any(|p| p.state.counter == counter);
                let newer = self.store.latest.as_ref().is_some_and(|l| l.state.counter > counter);
                if !by_me && ours && newer && !self.store.closing_requested {
                    self.store.closing_requested = true;
                    step.events.push(ChannelEvent::Fault(format!(
                        "the peer disputed with our proposal {counter}, which it never acknowledged; \
                         answered with our newer state, closing the channel"
                    )));
                }
                self.resolve_sent_for = None;
                // Our own dispute is resolved only with a state learnt
                // after it was raised (see `peer_then_resolve`).
                let txs: Vec<ChainTx> = if by_me { vec![] } else { self.resolve_now().into_iter().collect() };
                // Retried with back-off until the chain shows the outcome.
                self.chain_retry = Some((self.now.saturating_add(self.params.retry_ms), self.params.retry_ms));
                return self.persist_then(step, vec![], txs);
            }
            ChainEvent::DisputeResolved { .. } => {
                self.disputed_counter = None;
                self.chain_retry = None;
                self.resolve_sent_for = None;
                if matches!(self.store.phase, Phase::Disputed { .. }) {
                    self.store.phase = if self.store.latest.as_ref().is_some_and(|l| l.state.is_final) {
                        Phase::Closing
                    } else {
                        Phase::Open
                    };
                    let step = self.persist_then(step, vec![], vec![]);
                    // A close the user asked for (its final state held back
                    // while our own older dispute stood): propose it now, on
                    // the newest co-signed state, with a fresh timeout.
                    let idle = self.store.proposals.is_empty();
                    if self.store.phase == Phase::Open && self.store.closing_requested && idle {
                        self.close_started = Some(self.now);
                        self.close_proposed_at = self.now;
                        if let Ok(s) = self.request(Request::Close) {
                            return merge_steps(step, s);
                        }
                    }
                    return step;
                }
            }
            ChainEvent::OnChain(ss) => {
                if self.co_signed_valid(&ss) {
                    self.disputed_counter = self.disputed_counter.map(|d| d.max(ss.state.counter));
                    return self.adopt(*ss, step, false);
                }
            }
            ChainEvent::Updated { counter, state } => {
                let mine = self.store.latest.as_ref().map_or(0, |l| l.state.counter);
                let kept = self.chain_kept.as_ref().map_or(0, |k| k.state.counter);
                match state {
                    // Closed: what the chain closed on is the outcome (a
                    // payment of ours in it is reported sent).
                    Some(ss)
                        if ss.state.counter > mine
                            && self.store.phase == Phase::Closed
                            && self.co_signed_valid(&ss) =>
                    {
                        return self.adopt(*ss, step, false);
                    }
                    Some(ss) if ss.state.counter > mine.max(kept) && self.co_signed_valid(&ss) => {
                        self.chain_kept = Some(*ss);
                    }
                    Some(_) => {}
                    None if counter > mine => {
                        step.events.push(ChannelEvent::Fault(format!(
                            "the chain registered counter {counter}, above our {mine}, and its state could not be read"
                        )));
                    }
                    None => {}
                }
            }
            ChainEvent::ToppedUp { side, total } => {
                let i = usize::from(side & 1);
                if total > self.store.chain_topped_up[i] {
                    self.store.chain_topped_up[i] = total;
                    let step = self.persist_then(step, vec![], vec![]);
                    return self.propose_allocation(step);
                }
            }
            ChainEvent::WithdrawalPaid { paid } => {
                let me = self.side();
                for (i, p) in paid.iter().enumerate() {
                    self.chain_withdrawn_paid[i] = Amount(self.chain_withdrawn_paid[i].0.saturating_add(p.0));
                }
                if !paid[me].is_zero() {
                    step.events.push(ChannelEvent::WithdrawalPaid { total: self.chain_withdrawn_paid[me] });
                }
            }
            ChainEvent::Funded { side, credit } => {
                let i = usize::from(side & 1);
                if credit && !self.store.credit_backed[i] {
                    self.store.credit_backed[i] = true;
                    return self.persist_then(step, vec![], vec![]);
                }
            }
            ChainEvent::Closed { counter } => {
                self.abort_retry = None;
                self.store.phase = Phase::Closed;
                self.store.proposals.clear();
                self.chain_retry = None;
                // Closed above our newest co-signed state with no readable
                // state before it (the read at the event failed): a state at
                // exactly `counter` carries our signature, and we signed only
                // one state per counter, so if it is an abandoned proposal of
                // ours the chain closed on it: its payments went through
                // (reported sent now; the state itself is read again from
                // the ticks and adopted, which reports nothing twice).
                let mine = self.store.latest.as_ref().map_or(0, |l| l.state.counter);
                if counter > mine && self.store.abandoned.iter().any(|p| p.state.counter == counter) {
                    step.events.extend(self.abandoned_payments(counter));
                    self.store.abandoned.retain(|q| q.state.counter > counter);
                }
                step.events.push(ChannelEvent::Closed { counter });
                return self.persist_then(step, vec![], vec![]);
            }
        }
        step
    }

    /// Whether the chain showed a counter above every state we hold (ours
    /// and the registered one we kept): its state is read again.
    fn chain_ahead(&self) -> bool {
        let mine = self.store.latest.as_ref().map_or(0, |l| l.state.counter);
        let kept = self.chain_kept.as_ref().map_or(0, |k| k.state.counter);
        self.chain_counter > mine.max(kept)
    }

    /// Asks the driver to read the channel while the chain is ahead of us
    /// (the read at the event failed), at once and then with back-off.
    fn read_due(&mut self, now: Timestamp) -> bool {
        if !self.chain_ahead() || self.store.phase == Phase::Idle {
            self.read_retry = None;
            return false;
        }
        let (next, backoff) = *self.read_retry.get_or_insert((now, self.params.retry_ms.max(1)));
        if now < next {
            return false;
        }
        self.read_retry = Some((now.saturating_add(backoff), backoff.saturating_mul(2).min(MAX_RETRY_BACKOFF_MS)));
        true
    }

    fn tick(&mut self, now: Timestamp) -> Step {
        let mut step = self.tick_inner(now);
        if self.read_due(now) {
            step.read_channel = true;
        }
        match self.withdrawal_resend(now) {
            Some(Ok(tx)) => step.txs.push(tx),
            Some(Err(ev)) => step.events.push(ev),
            None => {}
        }
        step
    }

    /// A co-signed withdrawal of ours that the chain has not paid (its one
    /// `channel_withdraw` was lost: a crash before it was sent, a node that
    /// dropped it) is sent again, with the newest co-signed state (which
    /// carries every withdrawal so far), every `t_Δ` until the chain shows
    /// it paid. Idempotent on chain: the contract pays only `withdrawn −
    /// withdrawn_paid` and refuses a state that withdraws nothing new. The
    /// co-signed state is what is persisted; what is paid is re-read from
    /// the chain after a restart.
    ///
    /// Bounded: one state (counter) is re-sent at most
    /// [`MAX_WITHDRAW_RESENDS`] times; then [`ChannelEvent::WithdrawalUnpaid`]
    /// is reported once and that state is not sent again (the contract pays
    /// a state equal to the registered one, so a peer registering it first
    /// does not make it unpayable; a refusal that persists is not fixed by
    /// paying more fees). A newer co-signed state starts a fresh count.
    fn withdrawal_resend(&mut self, now: Timestamp) -> Option<Result<ChainTx, ChannelEvent>> {
        let me = self.side();
        let l = self.store.latest.as_ref()?;
        let unpaid = self.store.phase == Phase::Open
            && !l.state.is_final
            && l.state.resize.withdrawn[me] > self.chain_withdrawn_paid[me];
        if !unpaid {
            return None;
        }
        if self.withdraw_resend_at == 0 {
            self.withdraw_resend_at = now.saturating_add(self.store.t_delta_ms);
            return None;
        }
        if now < self.withdraw_resend_at {
            return None;
        }
        self.withdraw_resend_at = now.saturating_add(self.store.t_delta_ms);
        let counter = l.state.counter;
        if self.withdraw_resends.0 != counter {
            self.withdraw_resends = (counter, 0);
        }
        if self.withdraw_resends.1 >= MAX_WITHDRAW_RESENDS {
            if self.withdraw_resends.1 == MAX_WITHDRAW_RESENDS {
                self.withdraw_resends.1 += 1;
                let unpaid = Amount(l.state.resize.withdrawn[me].0.saturating_sub(self.chain_withdrawn_paid[me].0));
                return Some(Err(ChannelEvent::WithdrawalUnpaid { counter, unpaid }));
            }
            return None;
        }
        self.withdraw_resends.1 += 1;
        Some(Ok(ChainTx {
            method: "channel_withdraw",
            args: encode(&ChannelStateArgs { state: l.clone() }),
            value: Amount::ZERO,
        }))
    }

    fn tick_inner(&mut self, now: Timestamp) -> Step {
        self.now = now;
        let mut step = Step::default();
        // While a persist is outstanding the proposal timers wait (their
        // messages would queue behind it anyway); the chain timers below
        // (settle, resolve and abort retries, close fallback) never do: a
        // peer that keeps a persist outstanding (a flood of `Fallback`s)
        // must not keep a dispute from settling.
        let idle = self.held.is_empty();
        // A proposal made before the first tick learns its start time now.
        for p in self.store.proposals.iter_mut() {
            if p.proposed_at == 0 {
                p.proposed_at = now;
            }
        }
        // A registration seen before the first tick is dated now.
        if idle && self.store.registered_at == Some(0) && self.store.phase == Phase::Opening {
            self.store.registered_at = Some(now);
            let mut step = self.persist_then(Step::default(), vec![], vec![]);
            step.persist_may_lag = false;
            return step;
        }
        // Update fallback (seed Fig 7 step 2): an update not co-signed
        // within t_Δ is given up; its counter stays used. The window goes
        // with its oldest proposal (each builds on the one before).
        let expired = idle
            && self.store.my_proposal().is_some_and(|p| {
                p.state.counter > 0 && !p.state.is_final && now >= p.proposed_at.saturating_add(self.store.t_delta_ms)
            });
        if expired {
            let gone = self.abandon_window();
            if let Some(&counter) = gone.last() {
                self.fallback_sent = now;
                self.outcome_told.extend(gone.iter().copied());
                let events = gone.into_iter().map(|counter| ChannelEvent::FellBack { counter }).collect();
                let step = Step { events, ..Step::default() };
                return self.persist_then(step, vec![Message::Fallback { counter }], vec![]);
            }
        }
        // A `Fallback` is resent until the peer answers it (its acceptance
        // again, or a reject saying it never signed): one lost message must
        // not leave the two parties on different co-signed states.
        if let Some(counter) = self.unanswered_fallback() {
            let live = !matches!(self.store.phase, Phase::Idle | Phase::Closed);
            if idle && live && now >= self.fallback_sent.saturating_add(self.params.retry_ms) {
                self.fallback_sent = now;
                step.messages.push(Message::Fallback { counter });
            }
        }
        // Retransmit unanswered proposals (idempotent: same bytes), oldest
        // first.
        if idle && !self.store.proposals.is_empty() && now >= self.last_sent.saturating_add(self.params.retry_ms) {
            self.last_sent = now;
            for p in &self.store.proposals {
                step.messages.push(p.message());
            }
        }
        // Resolve and settle are retried with back-off until the chain
        // reports the outcome (a dropped transaction or a node restart must
        // not cost the channel).
        let timeout = self.params.close_timeout_ms;
        match self.store.phase {
            // Funding deadline: the peer never funded; abort and take back
            // what we put in. Retried with back-off until `Closed`.
            Phase::Opening | Phase::Disputed { .. } => self.chain_duties(now, &mut step),
            Phase::Open if self.store.closing_requested => {
                let started = *self.close_started.get_or_insert(now);
                // A close waiting for the window to drain (or whose final
                // state was refused): propose the final state on the newest
                // co-signed one, at most once per `retry_ms`.
                let drained = idle && self.store.proposals.is_empty() && step.persist.is_none();
                if drained && now >= self.close_proposed_at.saturating_add(self.params.retry_ms) {
                    self.close_proposed_at = now;
                    if let Ok(mut s) = self.request(Request::Close) {
                        s.messages.splice(0..0, step.messages);
                        s.txs.splice(0..0, step.txs);
                        s.events.splice(0..0, step.events);
                        return s;
                    }
                }
                if now >= started.saturating_add(timeout) {
                    // The chain holds a newer state we co-signed (the peer
                    // registered our fallen-back proposal): it is ours, and
                    // a dispute with anything older is refused as stale.
                    // Adopt it as the base; the next tick disputes with it.
                    let mine = self.store.latest.as_ref().map_or(0, |l| l.state.counter);
                    if let Some(k) = self.chain_kept.take().filter(|k| k.state.counter > mine) {
                        step.events.push(ChannelEvent::Fault(format!(
                            "the chain holds state {} (registered by the peer), above our newest {mine}: \
                             adopted as the base of the close",
                            k.state.counter
                        )));
                        return self.adopt(k, step, false);
                    }
                    // The chain holds a state above ours that we could not
                    // read yet: a dispute with ours would be refused as
                    // stale; wait for the read (asked from every tick).
                    let ahead = self.chain_ahead();
                    // Peer silent: unilateral close through the dispute timer.
                    if let Some(l) = self.store.latest.clone().filter(|_| !ahead) {
                        self.close_started = Some(now);
                        match self.close_send("channel_dispute", l.state.counter) {
                            Ok(()) => step.txs.push(self.dispute_tx(&l)),
                            Err(Some(ev)) => step.events.push(ev),
                            Err(None) => {}
                        }
                    }
                }
            }
            Phase::Closing => {
                let since = *self.close_submitted_at.get_or_insert(now);
                if now >= since.saturating_add(timeout) {
                    if let Some(l) = self.store.latest.clone() {
                        self.close_submitted_at = Some(now);
                        match self.close_send("channel_close", l.state.counter) {
                            Ok(()) => step.txs.push(ChainTx {
                                method: "channel_close",
                                args: encode(&ChannelStateArgs { state: l }),
                                value: Amount::ZERO,
                            }),
                            Err(Some(ev)) => step.events.push(ev),
                            Err(None) => {}
                        }
                    }
                }
            }
            _ => {}
        }
        // Proposals given up in a collision whose winner never came (lost,
        // or refused by us): propose them again after `retry_ms`.
        let retry_due = now >= self.retry_since.saturating_add(self.params.retry_ms);
        if idle && !self.retry.is_empty() && self.store.proposals.is_empty() && retry_due && step.txs.is_empty() {
            let again = std::mem::take(&mut self.retry);
            if self.store.phase == Phase::Open {
                return self.propose_again(again, step);
            }
            for (counter, _) in again {
                step.events.push(ChannelEvent::Rejected { counter, reason: "channel no longer open".into() });
            }
        }
        // An allocation the peer has not co-signed within `t_Δ` no longer
        // holds payments back: said once.
        if !self.allocation_overdue_check() && self.allocation_due_since != 0 && !self.allocation_deferred {
            self.allocation_deferred = true;
            let me = self.side();
            let allocated = self.store.latest.as_ref().map(|l| l.state.resize.topped_up[me]).unwrap_or(Amount::ZERO);
            let amount = Amount(self.store.chain_topped_up[me].0.saturating_sub(allocated.0));
            step.events.push(ChannelEvent::TopUpDeferred { amount });
        }
        // A top-up the chain shows and no state allocates yet (the party was
        // busy, restarted, or the peer had not seen it yet): propose it now,
        // at most once per `retry_ms`.
        if !idle || now < self.allocate_at {
            return step;
        }
        let proposals = self.store.proposals.len();
        let step = self.propose_allocation(step);
        if self.store.proposals.len() > proposals {
            self.allocate_at = now.saturating_add(self.params.retry_ms);
        }
        step
    }

    /// Counts one more send of the close transaction `method` with the
    /// state `counter`: `Ok` to send it, `Err(Some(CloseStalled))` once the
    /// bound is reached, `Err(None)` after (nothing more is sent).
    fn close_send(&mut self, method: &'static str, counter: u64) -> Result<(), Option<ChannelEvent>> {
        if self.close_sends.0 != method || self.close_sends.1 != counter {
            self.close_sends = (method, counter, 0);
        }
        let n = self.close_sends.2;
        if n >= MAX_CLOSE_RESENDS {
            if n == MAX_CLOSE_RESENDS {
                self.close_sends.2 += 1;
                return Err(Some(ChannelEvent::CloseStalled { method: method.into(), counter }));
            }
            return Err(None);
        }
        self.close_sends.2 += 1;
        Ok(())
    }

    /// Whether `ss` is a state of this channel carrying both parties'
    /// signatures.
    fn co_signed_valid(&self, ss: &SignedState) -> bool {
        let me = self.side();
        ss.state.cid == self.store.cid
            && ss.state.domain == self.params.domain
            && ss.state.verify(&self.store.my_key, ss.nonce, &ss.sigs[me])
            && ss.state.verify(&self.store.peer_key, ss.nonce, &ss.sigs[other(self.store.side)])
    }

    /// Adopts a valid co-signed state newer than ours (from the chain or
    /// the peer's reestablish): a proposal of ours it is settles (with
    /// those before it); the rest, built on an older base, are dropped.
    fn adopt(&mut self, ss: SignedState, mut step: Step, from_peer: bool) -> Step {
        if self.store.latest.as_ref().is_some_and(|l| ss.state.counter <= l.state.counter) {
            return step;
        }
        let c = ss.state.counter;
        self.store.signed_upto = Some(self.store.signed_upto.unwrap_or(0).max(c));
        let prev = self.store.latest.as_ref().map(|l| l.state.resize).unwrap_or_default();
        match self.store.proposals.iter().position(|p| p.state.counter == c && p.state == ss.state) {
            Some(at) => {
                for q in self.store.proposals.drain(..=at) {
                    if let Some(t) = q.state.last_trade {
                        let amount = if q.trades.is_empty() { t.amount } else { paid(&q.trades) };
                        step.events.push(ChannelEvent::PaymentSent { counter: q.state.counter, amount });
                    }
                }
            }
            None => {
                // An abandoned proposal of ours: its payments (and the
                // window before it) went through after all.
                let h = ss.hstate();
                if self.store.abandoned.iter().any(|p| p.state.counter == c && p.state.hstate(p.nonce) == h) {
                    step.events.extend(self.abandoned_payments(c));
                }
                if self.store.proposals.first().is_some_and(|p| p.state.counter <= c) {
                    self.store.proposals.clear();
                }
            }
        }
        self.store.abandoned.retain(|q| q.state.counter > c);
        step.events.extend(Self::resize_events(&prev, &ss.state));
        let mut txs = vec![];
        if c == 0 && self.store.phase == Phase::Idle {
            self.store.phase = Phase::Opening;
        } else if from_peer && ss.state.is_final && self.store.phase == Phase::Open {
            self.store.phase = Phase::Closing;
            self.close_submitted_at = Some(self.now);
            txs.push(ChainTx {
                method: "channel_close",
                args: encode(&ChannelStateArgs { state: ss.clone() }),
                value: Amount::ZERO,
            });
        }
        self.store.latest = Some(ss);
        step.events.push(ChannelEvent::CoSigned(c));
        self.persist_then(step, vec![], txs)
    }

    /// The link is up: tell the peer our newest co-signed state and resend
    /// at once whatever awaits it.
    fn connected(&mut self) -> Step {
        if matches!(self.store.phase, Phase::Closed) {
            return Step::default();
        }
        let mut messages = vec![Message::Reestablish { latest: self.store.latest.clone() }];
        messages.extend(self.store.proposals.iter().map(Proposal::message));
        if let Some(p) = self.store.abandoned.last() {
            if self.store.latest.as_ref().is_none_or(|l| l.state.counter < p.state.counter) && p.state.counter > 0 {
                messages.push(Message::Fallback { counter: p.state.counter });
            }
        }
        self.last_sent = self.now;
        Step { messages, ..Step::default() }
    }

    /// The peer's newest co-signed state after a reconnect.
    fn on_reestablish(&mut self, theirs: Option<SignedState>) -> Step {
        let mine = self.store.latest.as_ref().map(|l| l.state.counter);
        let their_counter = theirs.as_ref().map(|l| l.state.counter);
        match theirs {
            Some(ss) if their_counter > mine => {
                if !self.co_signed_valid(&ss) {
                    return Step {
                        events: vec![ChannelEvent::Fault("reestablish with a forged state".into())],
                        ..Step::default()
                    };
                }
                // Our own proposal, co-signed (its acceptance was lost): the
                // acceptance path does what co-signing it entails (register
                // an open, send a close or a withdrawal).
                let ours = self
                    .store
                    .proposals
                    .iter()
                    .chain(&self.store.abandoned)
                    .any(|p| p.state == ss.state && p.nonce == ss.nonce);
                let step = if ours {
                    let theirs = ss.sigs[other(self.store.side)];
                    self.on_accept(ss.state.counter, ss.hstate(), theirs)
                } else {
                    self.adopt(ss, Step::default(), true)
                };
                // Proposals that survive it go out again now.
                let again: Vec<Message> = self.store.proposals.iter().map(Proposal::message).collect();
                let mut step = self.queue_behind_held(step);
                if let Some((_, msgs, _)) = self.held.last_mut() {
                    msgs.extend(again);
                }
                step.persist_may_lag = false;
                step
            }
            // Ours is newer: the peer adopts it from our answer.
            _ if mine > their_counter => {
                Step { messages: vec![Message::Reestablish { latest: self.store.latest.clone() }], ..Step::default() }
            }
            _ => Step::default(),
        }
    }

    /// Which side wins a collision: the side that did **not** propose the
    /// newest co-signed state (side 1 before the open state is co-signed,
    /// which side 0 proposes). A collision's winner has its re-proposal
    /// co-signed before the loser proposes again, so if the loser's
    /// re-proposal collides in turn, the loser wins: a side that collides on
    /// purpose delays the peer's payment by at most one round (issue 10,
    /// collision fairness), where "side 0 always wins" let it starve side 1
    /// for ever.
    ///
    /// Both sides decide from the state they both signed, so they agree:
    /// the proposer of a co-signed state is recognised by its nonce, which
    /// is derived from the proposer's secret, persisted nonce seed
    /// ([`Self::nonce_for`]); the other side's derivation never yields it
    /// (but with probability 2⁻⁶⁴). Only while an acceptance is lost do the
    /// two newest states differ; then both may refuse (the payments are
    /// reported rejected) or both yield (both retry after `retry_ms`, by
    /// which time the `Reestablish` sent with the yield has aligned them).
    /// Neither case signs two states at one counter: a side in a collision
    /// never signs the peer's proposal.
    fn collision_winner(&self) -> usize {
        match &self.store.latest {
            None => 0,
            Some(l) => {
                let me = self.side();
                let proposer = if self.nonce_for(&l.state) == l.nonce { me } else { other(self.store.side) };
                1 - proposer
            }
        }
    }

    /// This side lost a collision: give up its proposals (the winner signs
    /// none of them), tell the winner, and propose the same requests again
    /// once the winner's proposal is co-signed.
    fn yield_to(&mut self, counter: u64) -> Step {
        let base = self.store.latest.as_ref().map(|l| l.state.resize).unwrap_or_default();
        let me = self.side();
        let mut prev = base;
        let mut retry = vec![];
        for p in &self.store.proposals {
            if let Some(r) = Self::request_of(p, &prev, me) {
                retry.push((p.state.counter, r));
                self.retry_origin.entry(p.state.counter).or_insert(p.proposed_at);
            }
            prev = p.state.resize;
        }
        self.abandon_window();
        self.retry.extend(retry);
        self.retry_since = self.now;
        let known = self.known_counter();
        if counter > known && counter <= known.saturating_add(MAX_COUNTER_STEP) {
            self.peer_signed_upto = Some(counter);
        }
        let msgs = vec![Message::Collision { counter }, Message::Reestablish { latest: self.store.latest.clone() }];
        self.persist_then(Step::default(), msgs, vec![])
    }

    /// The winner hears that the peer yielded: proposes its proposals from
    /// `counter` on again, above every counter either side used.
    fn on_collision(&mut self, counter: u64) -> Step {
        let Some(at) = self.store.proposals.iter().position(|p| p.state.counter == counter) else {
            return Step::default();
        };
        if self.collision_winner() != self.side() {
            // We did not win this collision: from the winner this is a reject.
            return self.peer(Message::Reject { counter, reason: "collision".into() });
        }
        let me = self.side();
        let mut prev = match at {
            0 => self.store.latest.as_ref().map(|l| l.state.resize).unwrap_or_default(),
            _ => self.store.proposals[at - 1].state.resize,
        };
        let mut again = vec![];
        for p in &self.store.proposals[at..] {
            again.push((p.state.counter, Self::request_of(p, &prev, me)));
            self.retry_origin.entry(p.state.counter).or_insert(p.proposed_at);
            prev = p.state.resize;
        }
        // Their counters stay used (signed_upto); a late acceptance of one
        // is still adopted from `abandoned`.
        let gone: Vec<Proposal> = self.store.proposals.drain(at..).collect();
        self.store.abandoned.extend(gone);
        let step = self.persist_then(Step::default(), vec![], vec![]);
        self.propose_again(again.into_iter().filter_map(|(c, r)| r.map(|r| (c, r))).collect(), step)
    }

    /// Proposes `reqs` again (each had the counter given), reporting the
    /// new counters; one that no longer fits is reported rejected.
    ///
    /// A request first proposed t_Δ or more ago falls back instead
    /// (`FellBack` for the counter it had): the seed's update expiry, over
    /// all its re-proposals.
    fn propose_again(&mut self, reqs: Vec<(u64, Request)>, mut step: Step) -> Step {
        // Only requests still waiting keep an origin (bounded by the window).
        let waiting: Vec<u64> = reqs.iter().map(|(c, _)| *c).collect();
        let mut origins = std::mem::take(&mut self.retry_origin);
        origins.retain(|c, _| waiting.contains(c) || self.store.proposals.iter().any(|p| p.state.counter == *c));
        self.retry_origin = origins;
        for (from, r) in reqs {
            let origin = self.retry_origin.remove(&from).unwrap_or(self.now);
            self.outcome_told.push(from);
            if self.now >= origin.saturating_add(self.store.t_delta_ms) {
                step.events.push(ChannelEvent::FellBack { counter: from });
                continue;
            }
            match self.request(r) {
                Ok(s) => {
                    let to = s.persist.as_ref().and_then(|st| st.proposals.last()).map(|p| p.state.counter);
                    step.events.extend(s.events);
                    if let Some(st) = s.persist {
                        step.persist = Some(st);
                        step.persist_may_lag = false;
                    }
                    step.messages.extend(s.messages);
                    step.txs.extend(s.txs);
                    if let Some(to) = to {
                        self.retry_origin.insert(to, origin);
                        step.events.push(ChannelEvent::Retried { from, to });
                    }
                }
                Err(e) => step.events.push(ChannelEvent::Rejected { counter: from, reason: e.to_string() }),
            }
        }
        step
    }

    /// The request that made proposal `p` (built on a state with resize
    /// `prev`); none for a top-up allocation (proposed again by itself).
    fn request_of(p: &Proposal, prev: &Resize, me: usize) -> Option<Request> {
        let st = &p.state;
        if st.is_final {
            return Some(Request::Close);
        }
        if !p.trades.is_empty() {
            return Some(Request::PayMany(p.trades.iter().map(|t| (t.amount, t.energy, t.price_per_kwh)).collect()));
        }
        if let Some(t) = st.last_trade {
            return Some(Request::Pay { amount: t.amount, energy: t.energy, price_per_kwh: t.price_per_kwh });
        }
        let out = st.resize.withdrawn[me].saturating_sub(prev.withdrawn[me]);
        (!out.is_zero()).then_some(Request::Withdraw { amount: out })
    }

    /// The funding abort and the dispute's resolve/settle, retried with
    /// back-off. They run on every tick, even while a persist is
    /// outstanding (their transactions then wait behind it): a peer that
    /// keeps the disk busy must not hold a settle or an abort back.
    fn chain_duties(&mut self, now: Timestamp, step: &mut Step) {
        match self.store.phase {
            // Funding deadline: the peer never funded; abort and take back
            // what we put in. Retried with back-off until `Closed`.
            Phase::Opening => {
                self.open_resend_due(now, step);
                if let Some(at) = self.store.registered_at.filter(|at| *at > 0) {
                    let due = match self.abort_retry {
                        Some((next, _)) => now >= next,
                        None => now >= at.saturating_add(FUNDING_TIMEOUT_MS),
                    };
                    if due {
                        step.txs.push(ChainTx {
                            method: "channel_abort",
                            args: encode(&CidArgs { cid: self.store.cid }),
                            value: Amount::ZERO,
                        });
                        let backoff = self.abort_retry.map_or(self.params.retry_ms, |(_, b)| b).max(1);
                        self.abort_retry =
                            Some((now.saturating_add(backoff), backoff.saturating_mul(2).min(MAX_RETRY_BACKOFF_MS)));
                    }
                }
            }
            Phase::Disputed { t_end, by_me } => {
                let retry_due = self.chain_retry.is_some_and(|(at, _)| now >= at);
                let settle_due = now >= t_end;
                if retry_due || (settle_due && self.chain_retry.is_none()) {
                    if settle_due {
                        step.txs.push(ChainTx {
                            method: "channel_settle",
                            args: encode(&CidArgs { cid: self.store.cid }),
                            value: Amount::ZERO,
                        });
                    } else if let Some(tx) = self.resolve_tx().filter(|_| !by_me || self.resolve_sent_for.is_some()) {
                        step.txs.push(tx);
                    }
                    let backoff = self.chain_retry.map_or(self.params.retry_ms, |(_, b)| b);
                    let next = backoff.saturating_mul(2).clamp(1, MAX_RETRY_BACKOFF_MS);
                    self.chain_retry = Some((now.saturating_add(backoff.max(1)), next));
                }
            }
            _ => {}
        }
    }

    /// Whether this party (the initiator) holds the co-signed open state and
    /// the chain has not shown its registration yet.
    fn open_unregistered(&self) -> bool {
        self.store.side == 0
            && self.store.phase == Phase::Opening
            && self.store.registered_at.is_none()
            && self.store.latest.as_ref().is_some_and(|l| l.state.counter == 0)
    }

    /// `channel_open` with the co-signed open state and our `channel_fund`.
    fn open_txs(&self) -> Vec<ChainTx> {
        let Some(l) = &self.store.latest else { return vec![] };
        vec![
            ChainTx {
                method: "channel_open",
                args: encode(&ChannelOpenArgs { scid: self.store.scid, open: l.clone() }),
                value: Amount::ZERO,
            },
            self.fund_tx(),
        ]
    }

    /// The co-signed open is durable (persisted before its first send), but
    /// its registration may be lost (a crash before the submitter sent it,
    /// a node that dropped it): re-sent with back-off until the chain shows
    /// it (`Registered`), at most [`MAX_OPEN_RESENDS`] times per run, then
    /// [`ChannelEvent::OpenUnregistered`]. A restarted machine re-sends
    /// after `retry_ms` (its driver replays the chain's events first).
    fn open_resend_due(&mut self, now: Timestamp, step: &mut Step) {
        if !self.open_unregistered() {
            self.open_resend = None;
            return;
        }
        let retry = self.params.retry_ms.max(1);
        let (next, backoff, sent) = *self.open_resend.get_or_insert((now.saturating_add(retry), retry, 0));
        if now < next || sent > MAX_OPEN_RESENDS {
            return;
        }
        if sent == MAX_OPEN_RESENDS {
            self.open_resend = Some((next, backoff, sent + 1));
            step.events.push(ChannelEvent::OpenUnregistered { attempts: sent });
            return;
        }
        step.txs.extend(self.open_txs());
        let later = backoff.saturating_mul(2).min(MAX_RETRY_BACKOFF_MS);
        self.open_resend = Some((now.saturating_add(backoff), later, sent + 1));
    }

    /// `channel_resolve` with our newer co-signed state, if we hold
    /// something newer than the standing dispute (Fig 8 step 3): the peer's
    /// dispute, or our own raised with the newest state we held then and
    /// overtaken since (typically our fallen-back payment, co-signed after
    /// all, learnt on reconnect). The contract books the raiser no fault for
    /// its own unacknowledged payment built on the disputed state
    /// (`raiser_may_lack`); a close of the newer state while our dispute
    /// stands would (`close_shows_stale_dispute`), so the close waits for
    /// this resolve.
    fn resolve_tx(&self) -> Option<ChainTx> {
        let Phase::Disputed { .. } = self.store.phase else {
            return None;
        };
        let l = self.store.latest.as_ref()?;
        if l.state.counter <= self.disputed_counter? {
            return None;
        }
        #[cfg(feature = "mutants")]
        if mutants::planted(Mutation::AcceptOlderDispute) {
            return None;
        }
        Some(ChainTx {
            method: "channel_resolve",
            args: encode(&ChannelStateArgs { state: l.clone() }),
            value: Amount::ZERO,
        })
    }
}
