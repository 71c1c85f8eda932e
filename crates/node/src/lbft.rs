//! The leaderless BFT (thesis Ch.4, P^ABC; `gridledger_consensus::lbft`)
//! as the node's consensus engine: `consensus = "lbft"` in `node.toml`.
//!
//! Every validator proposes, each epoch, a batch of the transactions its
//! own clients submitted (no gossip: a transaction reaches the chain
//! through the validator it was sent to, and a batch that lost the
//! agreement is proposed again). The agreement orders the certified
//! batches; the node executes each epoch's delivered transactions, in
//! delivery order, as one block on top of its tip: a transaction that no
//! longer executes (stale nonce, insufficient balance, bad signature, a
//! duplicate of a committed one) is skipped, the same way at every
//! validator, so every validator holds the same blocks and state roots.
//! An epoch that delivers no executable transaction commits no block.
//!
//! The block's timestamp is the median of its epoch's accepted batches'
//! clock readings (`Batch::time_ms`): at least `n − f` batches, at most `f`
//! of them Byzantine, so it lies between two correct validators' clocks;
//! its proposer field names the first accepted batch's proposer; its seal
//! is [`Seal::Epoch`] with the epoch and its decision hash `h^e`.
//!
//! Fees: an epoch's fees are pooled and shared equally among the
//! proposers of the epoch's accepted batches, an empty batch included,
//! not paid to the block's proposer field nor to the batch that carried
//! each transaction: each of the `k` distinct proposers gets `⌊total /
//! k⌋`, and the remainder (less than `k` units) goes to the one at
//! position `h^e mod k` in proposer order, `h^e` the epoch's decision hash
//! ([`BlockBuilder::push_pooled`], [`BlockBuilder::share_fee_pool`]); no
//! coin is created or destroyed. A validator's income so depends on its
//! batch being accepted, never on which transactions it carries: paying
//! the carrier let the lowest-index proposer take the fees of the
//! transactions it copied from the other batches of the epoch (it sees
//! every `Val` before it must propose; attack r16 [2]), and splitting a
//! fee among the batches that carried the transaction still paid a copier
//! `1 / k` of each fee it copied, at no risk (attack r17 [1]). Under the
//! pool copying earns nothing, and carrying transactions earns no more
//! than an empty batch: honest validators propose what their clients send
//! them (the protocol, not the fee, is the incentive). The remainder's
//! recipient is picked by `h^e`, which hashes the whole decision (every
//! accepted batch's digest, and which batches are accepted is settled by
//! the agreement after each proposes), not by a transaction or a position
//! a proposer chooses; at worst a proposer grinding its own batch biases
//! fewer than `k` units an epoch. The accepted batches are part of the
//! decision, so every validator — a restarted or caught-up one too —
//! credits the same accounts and computes the same state root. (A block
//! so executed is not re-executable by a PBFT-style replay that pays
//! every fee to the header's proposer; LBFT validators execute delivered
//! epochs, never replay blocks. PBFT is unchanged: its fees go to the
//! block's proposer.)
//!
//! External validity (the item C): a validator echoes another's
//! batch only if every transaction in it decodes, is signed, is for this
//! chain, pays the minimum gas price, carries a nonce the sender has not
//! used yet, and the batch's gas limits fit its share of a block
//! (`block_gas_limit / n`), with a clock reading not too far ahead. A
//! Byzantine proposer's invalid batch so gets no certificate.
//!
//! Durability, in the node's store (the `aux` table, key spaces below),
//! one store transaction per step before any of its messages leave:
//! - `lbft/state`: the bound on the epochs it echoes and votes in (a
//!   restarted validator only observes epochs up to it), the last epoch
//!   delivered, and echoes given by older versions;
//! - `lbft/proposed`: this validator's own proposals not yet delivered;
//! - `lbft/epoch/<epoch>`: each delivered epoch with its certified batches
//!   (their certificates: `n − f` Ed25519 signed echoes each, `2f + 1` when
//!   `n = 3f + 1`: see [`gridledger_consensus::lbft::quorum`]), written in
//!   the same transaction as the epoch's block. A certificate is not unique
//!   (any `n − f` echoes make one), so validators' records of one epoch may
//!   differ in their certificates' bytes; nothing that must agree reads
//!   them (blocks, their seals and state roots depend on the decision,
//!   `(proposer, batch digest)`, and the transactions). A store written
//!   before (BLS threshold certificates) is refused when the validator
//!   opens it (its records do not decode, or their certificates do not
//!   verify), and so is one of `n ≠ 3f + 1` validators written while
//!   certificates were `2f + 1` echoes whatever `n` was;
//! - `lbft/suppressed/<epoch>`: the positions of the transactions the
//!   epoch removed as duplicates, in the same transaction (with no window
//!   across epochs, see below, only copies within the epoch: the record
//!   stays so a replica with a window could rebuild it exactly, reading
//!   back as far as it needs — [`gridledger_consensus::lbft::RestoreError`]
//!   rather than a guess).
//!
//! A step that delivers several epochs (catch-up) writes one transaction
//! per epoch, in order: a crash in between leaves a consistent prefix.
//! Catch-up: a restarted or lagging validator asks for delivered epochs;
//! the last `retain_epochs` are served from memory, older ones from the
//! store (each stored epoch at most once per peer and tick, as the replica
//! serves its own), so a validator that was down for any number of epochs
//! catches up; it adopts an epoch once `f + 1` validators sent the same
//! decision, in a copy whose certificates verify.
//!
//! Waking up: an idle validator proposes an empty batch only for an epoch
//! a peer is in — one named by a message the replica takes up (inside its
//! window), or one that `f + 1` validators vouch for ([`EpochClaims`]). A
//! message for a far-future epoch from one Byzantine validator so neither
//! wakes an idle network nor, as a sync record, stops a catch-up.
//!
//! Keys: each validator's Ed25519 echo key (certificates are `n − f`
//! signed echoes, for any number `n` of validators) and its share of the
//! coin's BLS12-381 key (`f + 1`) in `[lbft] key_shares` (an owner-only file beside `validator.key`); every
//! validator's echo public key and the coin's public key set, shared by all,
//! in `[lbft] public_keys`; `gridledger testnet --consensus lbft` deals them
//! (trusted dealer, as the thesis assumes). Key files missing the echo keys
//! (written for BLS certificates) are refused ([`LbftKeyError`]).
//!
//! The proposal queue is the mempool ([`queue`]): **every transaction the
//! mempool holds is in the proposal queue or in flight** (proposed for an
//! epoch not delivered yet), so a transaction a client was told is
//! admitted is proposed until it commits or leaves the mempool. A batch
//! keeps each sender's nonce order; senders are served round-robin, the
//! round going on across batches; what an epoch delivered but did not
//! execute is proposed again while the mempool holds it — given up only
//! after [`MAX_UNEXECUTED_DELIVERIES`] deliveries of this validator's own
//! accepted batch that left it unexecuted (nothing other validators
//! propose counts), or at once when its sender could not pay for it there
//! (it leaves the mempool with its sender's later transactions, logged
//! like a transaction given up).
//! A transaction whose gas limit exceeds `block_gas_limit / n` (one
//! validator's share of a block) could never be proposed under LBFT: it is
//! refused at submission ([`gridledger_ledger::SubmitError::GasLimitAboveShare`]).
//!
//! Duplicates (attack r6 [1], [2]): **only executed transactions are
//! duplicates.** The replica runs without a duplicate window across
//! epochs (`dedup_epochs = 0`; it still keeps only the earliest copy of a
//! transaction within an epoch), and execution skips a delivered
//! transaction that already executed: the chain's transaction index finds
//! it, and its sender's account nonce refuses it anyway. A transaction
//! delivered but skipped (ahead of its predecessor, say, copied there by
//! a Byzantine validator) is no duplicate: proposed again with its
//! predecessor it executes at once. (With a window over *delivered*
//! transactions, such a copy held every re-proposal back for
//! `retain_epochs` epochs, and copies staggered in the wrong order kept
//! doing so until the proposing validator gave the transactions up.) The
//! rule is deterministic: which transactions executed is a function of
//! the delivered sequence, the same blocks at every validator. Every
//! validator must run the same rule (it shapes the blocks).
//!
//! Execution keeps each sender's nonce order within an epoch: a delivered
//! transaction whose nonce is ahead of its sender's waits for its
//! predecessor later in the same epoch and runs right after it (a
//! Byzantine validator copying a client's nonce `k + 1` into a batch
//! delivered before the one carrying `k` no longer strands it). The rule
//! is deterministic in the delivered sequence, so every validator builds
//! the same block.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::lbft::{
    tx_id, Batch, CertifiedBatch, Config, DeliveredEpoch, Delivery, Durable, Fault, KeyUse, Message, MultiSig,
    NodeCrypto, NodeShare, NodeSig, PersistOp, Replica, Said, Step, Target, ThresholdCrypto, Tx, Validity,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::crypto::KeyPair;
use gridledger_core::ed25519::{EdPublicKey, EdSignature};
use gridledger_core::{Address, Hash32, PublicKey};
use gridledger_ledger::contract::BlockEnv;
use gridledger_ledger::{BlockBuilder, ExecutedBlock, Seal, SignedTransaction};
use gridledger_threshold::{KeyShare, PublicKeySet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::service::Shared;
use crate::validator::{Input, Transport, MAX_FRAME};

pub mod queue;
#[cfg(feature = "mutants")]
pub use queue::QueueMutation;
pub use queue::{Cut, ProposalQueue};

/// Deliveries of this validator's own accepted batch that leave a
/// transaction unexecuted before the proposal queue gives it up
/// ([`queue`]'s retry rule). Such a delivery ordered the transaction in
/// its sender's nonce order and it still did not execute (its predecessor
/// never arrived, say; one its sender can no longer pay for leaves at
/// once, [`ProposalQueue::cannot_pay`]); batches that lost the agreement
/// and other validators' copies count nothing.
pub const MAX_UNEXECUTED_DELIVERIES: u32 = 64;

/// Wire kind of LBFT messages (beside PBFT's 0 and gossip's 1): version 2,
/// certificates as Ed25519 multi-signatures ([`NodeSig`]).
pub const WIRE_LBFT: u8 = 3;
/// Wire kind of version 1 LBFT messages (BLS threshold certificates),
/// refused ([`LbftWireError::OldVersion`]).
pub const WIRE_LBFT_V1: u8 = 2;

/// Why an LBFT frame is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LbftWireError {
    #[error(
        "an LBFT message of wire version 1 (BLS threshold certificates): the peer runs an earlier build; every \
         validator of a chain must run the same certificate scheme"
    )]
    OldVersion,
    #[error("undecodable LBFT message: {0}")]
    Undecodable(String),
}

/// An LBFT frame's message: `None` for a frame of another kind (PBFT,
/// gossip), an [`LbftWireError`] for an old version or bad bytes.
pub fn decode_wire(bytes: &[u8]) -> Option<Result<LbftMessage, LbftWireError>> {
    match bytes.split_first() {
        Some((&WIRE_LBFT, body)) => {
            Some(decode::<LbftMessage>(body, MAX_FRAME).map_err(|e| LbftWireError::Undecodable(e.to_string())))
        }
        Some((&WIRE_LBFT_V1, _)) => Some(Err(LbftWireError::OldVersion)),
        _ => None,
    }
}
/// Store records (aux table) of the engine.
pub const STATE_KEY: &str = "lbft/state";
pub const PROPOSED_KEY: &str = "lbft/proposed";

/// The store record of delivered epoch `e` (zero-padded so the keys sort).
pub fn epoch_key(e: u64) -> String {
    format!("lbft/epoch/{e:020}")
}

/// The store record of the duplicates delivered epoch `e` removed
/// ([`Delivery::suppressed`]); absent in stores written before it was kept.
pub fn suppressed_key(e: u64) -> String {
    format!("lbft/suppressed/{e:020}")
}

/// The highest epoch each peer named, and the highest one `f + 1` of them
/// vouch for: at least one correct validator named it (or a higher one),
/// so `f` Byzantine validators cannot raise it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochClaims {
    f: usize,
    highest: BTreeMap<u32, u64>,
}

impl EpochClaims {
    /// Claims among `n` validators.
    pub fn new(n: usize) -> Self {
        Self { f: n.saturating_sub(1) / 3, highest: BTreeMap::new() }
    }

    /// `from` named epoch `e`.
    pub fn note(&mut self, from: u32, e: u64) {
        let h = self.highest.entry(from).or_insert(e);
        *h = (*h).max(e);
    }

    /// The `(f + 1)`-th highest epoch named, by distinct peers.
    pub fn vouched(&self) -> Option<u64> {
        let mut all: Vec<u64> = self.highest.values().copied().collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.get(self.f).copied()
    }

    /// Whether `now` is past the highest epoch `f + 1` peers named (no
    /// such epoch: not past).
    pub fn passed(&self, now: u64) -> bool {
        self.vouched().is_some_and(|s| now > s)
    }
}

type Share = NodeShare;
type Sig = NodeSig;
/// An LBFT message as nodes send it.
pub type LbftMessage = Message<Share, Sig>;
type LbftStep = Step<Share, Sig>;

/// `[lbft]` in `node.toml` (used when `consensus = "lbft"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LbftSettings {
    /// This validator's Ed25519 echo key and coin key share (hex; written
    /// by `gridledger testnet --consensus lbft`). Relative to the config's
    /// directory.
    pub key_shares: PathBuf,
    /// Every validator's echo public key and the coin's public key set
    /// (hex), the same file for all.
    pub public_keys: PathBuf,
    /// Without progress for this long (ms): retransmit, fetch, ask to sync.
    pub tick_ms: u64,
    /// Largest batch a validator proposes per epoch; 0: the chain's
    /// `max_block_txs / n`, so an epoch's batches fit one block. Every
    /// validator must use the same value.
    pub max_batch_txs: usize,
    /// Delivered epochs kept in memory to serve catch-up (older ones are
    /// served from the store). Every validator must use the same value.
    pub retain_epochs: usize,
    /// A batch whose clock reading is further ahead of ours is not echoed.
    pub max_clock_drift_ms: u64,
    /// A planted bug (test-only, behind the `mutants` feature).
    #[cfg(feature = "mutants")]
    #[serde(skip)]
    pub mutation: Option<LbftMutation>,
}

/// Bugs planted in the LBFT engine (test-only, behind the `mutants`
/// feature), caught by `tests/mutants.rs`.
#[cfg(feature = "mutants")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LbftMutation {
    /// Execution runs an epoch's transactions strictly in delivery order:
    /// one delivered ahead of its sender's predecessor is skipped.
    NoNonceDeferral,
    /// A transaction above the validator's gas share is admitted.
    ShareNotEnforced,
    /// The replica suppresses a transaction delivered in the last
    /// `retain_epochs` epochs as a duplicate, executed or not (the rule
    /// before attack r6).
    DeliveredDeduplicated,
    /// A transaction this validator's own delivered batch left unexecuted
    /// because its sender cannot pay stays in the mempool, proposed again
    /// until [`MAX_UNEXECUTED_DELIVERIES`] (the rule before attack r8 [2]).
    UnpayableKept,
}

impl Default for LbftSettings {
    fn default() -> Self {
        Self {
            key_shares: "lbft.key".into(),
            public_keys: "lbft-public.hex".into(),
            tick_ms: 1_000,
            max_batch_txs: 0,
            retain_epochs: 64,
            max_clock_drift_ms: 10_000,
            #[cfg(feature = "mutants")]
            mutation: None,
        }
    }
}

/// The LBFT keys of one network: the public keys (one file for all) and
/// each validator's secrets (one secret file each), hex-encoded.
pub struct DealtKeys {
    pub public: String,
    pub shares: Vec<String>,
}

/// What `[lbft] public_keys` holds (borsh, hex-encoded): every validator's
/// Ed25519 echo public key, by index, and the coin's BLS12-381 public key
/// set. Files written before certificates were Ed25519 multi-signatures
/// (the certificate's BLS key set in their place) do not start with
/// [`KEYS_MAGIC`] and are refused ([`LbftKeyError::NoEchoKeys`]).
#[derive(BorshSerialize, BorshDeserialize)]
struct PublicKeysFile {
    magic: [u8; 8],
    echo_keys: Vec<EdPublicKey>,
    coin_keys: Vec<u8>,
}

/// What `[lbft] key_shares` holds: this validator's Ed25519 echo key (its
/// 32-byte seed) and its coin key share.
#[derive(BorshSerialize, BorshDeserialize)]
struct SecretKeysFile {
    magic: [u8; 8],
    echo_secret: [u8; 32],
    coin_share: Vec<u8>,
}

/// The first bytes of both key files (version 2: Ed25519 echo keys and
/// the BLS coin key; version 1 held two BLS key sets).
pub const KEYS_MAGIC: [u8; 8] = *b"GLLBFTK2";

/// Why a validator's LBFT keys cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LbftKeyError {
    #[error("{path}: cannot read it: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path} is not hex ({what})")]
    NotHex { path: PathBuf, what: &'static str },
    /// A key file without the Ed25519 echo keys certificates need (written
    /// for BLS threshold certificates by an earlier build, or another file):
    /// deal the keys again (`gridledger testnet --consensus lbft`).
    #[error(
        "{path}: no Ed25519 echo keys ({what} in another format: written before batch certificates were Ed25519 \
         multi-signatures, or not a key file); deal the LBFT keys again"
    )]
    NoEchoKeys { path: PathBuf, what: &'static str },
    #[error("{path}: the coin key does not decode: {reason}")]
    BadCoinKey { path: PathBuf, reason: String },
    #[error("{path}: {got} echo public keys, the genesis has {n} validators")]
    EchoKeyCount { path: PathBuf, n: usize, got: usize },
    #[error("{path}: the keys do not fit validator {me}: {reason}")]
    Mismatch { path: PathBuf, me: u32, reason: gridledger_consensus::lbft::crypto::KeyError },
}

/// Deals LBFT keys for `n` validators (trusted dealer): an Ed25519 echo
/// key each (certificates are `n − f` signed echoes, the threshold
/// following from `n`, so nothing about it is dealt) and shares of the
/// coin's BLS12-381 key (`f + 1`). Any `n ≥ 1`: every quorum is `n − f`
/// ([`gridledger_consensus::lbft::quorum`]), so 5 or 6 validators are as
/// safe as 4 or 7.
pub fn deal_keys<R: rand::RngCore + rand::CryptoRng>(n: usize, rng: &mut R) -> anyhow::Result<DealtKeys> {
    let keys = gridledger_consensus::lbft::crypto::deal_keys(n, rng)?;
    let public = PublicKeysFile {
        magic: KEYS_MAGIC,
        echo_keys: keys.echo_public.clone(),
        coin_keys: keys.coin_public.to_bytes(),
    };
    let public = hex::encode(encode(&public)) + "\n";
    let shares = keys
        .echo_secret
        .iter()
        .zip(&keys.coin_shares)
        .map(|(e, c)| {
            let file = SecretKeysFile { magic: KEYS_MAGIC, echo_secret: *e, coin_share: c.to_bytes() };
            hex::encode(encode(&file)) + "\n"
        })
        .collect();
    Ok(DealtKeys { public, shares })
}

fn read_key_file<T: BorshDeserialize>(
    path: &Path,
    what: &'static str,
    magic: impl Fn(&T) -> [u8; 8],
) -> Result<T, LbftKeyError> {
    let text = crate::config::read_key_text(path)
        .map_err(|e| LbftKeyError::Unreadable { path: path.to_path_buf(), reason: format!("{e:#}") })?;
    let bytes = hex::decode(text.trim()).map_err(|_| LbftKeyError::NotHex { path: path.to_path_buf(), what })?;
    match decode::<T>(&bytes, 1 << 20) {
        Ok(file) if magic(&file) == KEYS_MAGIC => Ok(file),
        _ => Err(LbftKeyError::NoEchoKeys { path: path.to_path_buf(), what }),
    }
}

/// This validator's LBFT crypto from its key files, checked against the
/// network: `n` echo keys, a coin key set of `n` members with threshold
/// `f + 1`, an echo key and coin share that belong to index `me`. Every
/// failure is an [`LbftKeyError`].
pub fn load_crypto(settings: &LbftSettings, n: usize, me: u32) -> Result<NodeCrypto, LbftKeyError> {
    let public: PublicKeysFile =
        read_key_file(&settings.public_keys, "LBFT public keys", |f: &PublicKeysFile| f.magic)?;
    let secret: SecretKeysFile = read_key_file(&settings.key_shares, "LBFT secret keys", |f: &SecretKeysFile| f.magic)?;
    let coin_pk = PublicKeySet::from_bytes(&public.coin_keys)
        .map_err(|e| LbftKeyError::BadCoinKey { path: settings.public_keys.clone(), reason: e.to_string() })?;
    let coin_sk = KeyShare::from_bytes(&secret.coin_share)
        .map_err(|e| LbftKeyError::BadCoinKey { path: settings.key_shares.clone(), reason: e.to_string() })?;
    if public.echo_keys.len() != n {
        return Err(LbftKeyError::EchoKeyCount { path: settings.public_keys.clone(), n, got: public.echo_keys.len() });
    }
    NodeCrypto::try_new(Arc::new(public.echo_keys), Arc::new(coin_pk), me, secret.echo_secret, coin_sk)
        .map_err(|reason| LbftKeyError::Mismatch { path: settings.key_shares.clone(), me, reason })
}

/// The sizes of LBFT's largest frame for `n` validators, measured by
/// encoding worst-case messages rather than counted by hand: the largest
/// frame a validator sends is the `Sync` answer (catch-up) of one epoch
/// in which every validator's batch was accepted, each batch full
/// (`max_batch_txs` transactions of `max_tx_bytes` bytes) and certified by
/// `n − f` signed echoes (`(n − f) · 68 + 5` bytes: above 1 KiB from 22
/// validators on). The epoch's store record (`lbft/epoch/<e>`, read back
/// with the frame limit when the store is opened) is that frame less its
/// wire kind and message tag; a `Certified` answer (`Fetch`) and a `Val`
/// carry one batch of it; the proposals record (`lbft/proposed`) holds at
/// most `window` (4, at most `n`) own batches, without certificates. So
/// a bound under which the `Sync` frame fits fits every one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBudget {
    n: usize,
    /// The `Sync` frame of an epoch of no batch: wire kind, message tag,
    /// epoch, the batch list's length.
    pub fixed: usize,
    /// A certified batch of no transaction: proposer, digest, a
    /// certificate of `n − f` echoes, the transaction list's length, clock.
    pub per_batch: usize,
    /// A transaction of `max_tx_bytes` bytes in a batch (with its length).
    pub per_tx: usize,
}

impl FrameBudget {
    /// The budget of `n` validators (at least 1) admitting transactions of
    /// up to `max_tx_bytes` bytes.
    pub fn new(n: usize, max_tx_bytes: usize) -> Self {
        let n = n.max(1);
        let empty = |batches: Vec<CertifiedBatch<Sig>>| -> LbftMessage {
            Message::Sync { delivered: DeliveredEpoch { epoch: u64::MAX, batches } }
        };
        let frame = |m: &LbftMessage| 1 + encode(m).len();
        let certified = CertifiedBatch {
            proposer: u32::MAX,
            digest: Hash32([0xff; 32]),
            sig: NodeSig::Cert(MultiSig {
                echoes: vec![(u32::MAX, EdSignature([0xff; 64])); gridledger_consensus::lbft::quorum(n)],
            }),
            batch: Batch { txs: Vec::new().into(), time_ms: u64::MAX },
        };
        let fixed = frame(&empty(Vec::new()));
        let per_batch = frame(&empty(vec![certified])) - fixed;
        // A transaction's bytes and its length prefix, as a batch's list
        // encodes them (the list's own length is counted above).
        let per_tx = encode(&vec![Tx::new()]).len() - encode(&Vec::<Tx>::new()).len() + max_tx_bytes;
        Self { n, fixed, per_batch, per_tx }
    }

    /// The `Sync` frame of an epoch whose `n` batches are each
    /// `max_batch_txs` transactions of `max_tx_bytes` bytes (saturating).
    pub fn sync_frame(&self, max_batch_txs: usize) -> usize {
        max_batch_txs
            .saturating_mul(self.per_tx)
            .saturating_add(self.per_batch)
            .saturating_mul(self.n)
            .saturating_add(self.fixed)
    }

    /// The largest `max_batch_txs` whose `Sync` frame fits [`MAX_FRAME`]
    /// (`None`: not even batches of no transaction fit).
    pub fn largest_batch(&self) -> Option<usize> {
        let room = MAX_FRAME.checked_sub(self.sync_frame(0))?;
        Some(room / self.n / self.per_tx.max(1))
    }
}

/// Refuses batch bounds under which a message could exceed the frame
/// limit: a `Val` carries one batch, a `Sync` record (catch-up) one whole
/// epoch, up to `n` batches with their certificates ([`FrameBudget`]). A
/// frame over the limit is refused by the transport, so such a batch
/// would never be certified and a lagging validator could never catch up:
/// the epoch would still end (the others decide without it), but the
/// proposer's transactions would never be ordered and a validator that
/// fell behind would stay behind; the epoch's store record could not be
/// read back either, so a validator restarting after it would halt.
pub fn check_frame_bound(n: usize, max_batch_txs: usize, max_tx_bytes: usize) -> anyhow::Result<()> {
    let budget = FrameBudget::new(n, max_tx_bytes);
    let frame = budget.sync_frame(max_batch_txs);
    if frame <= MAX_FRAME {
        return Ok(());
    }
    let fix = match budget.largest_batch() {
        Some(b) if b > 0 => format!("lower max_batch_txs to at most {b}"),
        _ => format!(
            "even one transaction a batch does not fit: lower max_tx_bytes (certificates of {} echoes take {} bytes \
             a batch)",
            gridledger_consensus::lbft::quorum(n.max(1)),
            budget.per_batch
        ),
    };
    anyhow::bail!(
        "[lbft] max_batch_txs = {max_batch_txs} with max_tx_bytes = {max_tx_bytes} and {n} validators makes an \
         epoch record (and its Sync frame) of up to {frame} bytes, above the {MAX_FRAME}-byte frame limit: {fix}"
    )
}

/// The small durable record (`lbft/state`).
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StateRecord {
    echoed: BTreeMap<(u64, u32), Hash32>,
    voted_through: Option<u64>,
    delivered_through: Option<u64>,
    /// The replica's agreement votes in epochs not delivered yet
    /// ([`PersistOp::Voted`]).
    said: BTreeMap<(u64, u32, u32), Said>,
}

/// The state record, also from stores written before votes were recorded.
fn decode_state(bytes: &[u8]) -> Result<StateRecord, gridledger_core::codec::CodecError> {
    decode::<StateRecord>(bytes, MAX_FRAME).or_else(|e| {
        decode::<StateRecordV1>(bytes, MAX_FRAME)
            .map(|old| StateRecord {
                echoed: old.echoed,
                voted_through: old.voted_through,
                delivered_through: old.delivered_through,
                said: BTreeMap::new(),
            })
            .map_err(|_| e)
    })
}

/// The state record as stores written before votes were recorded hold it.
#[derive(BorshDeserialize)]
struct StateRecordV1 {
    echoed: BTreeMap<(u64, u32), Hash32>,
    voted_through: Option<u64>,
    delivered_through: Option<u64>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How long a halted validator waits between attempts to reopen its store.
const RECOVERY_RETRY_MS: u64 = 200;
/// Transaction ids whose signature this validator checked, kept for
/// execution; cleared beyond this many.
const MAX_VERIFIED: usize = 1 << 20;

/// The replica as the store left it, with the records it mirrors.
struct Restored {
    replica: Replica<NodeCrypto>,
    state: StateRecord,
    proposed: BTreeMap<u64, Batch>,
}

/// The LBFT engine: the replica's IO (persistence, transport, timers,
/// execution of delivered epochs).
pub struct LbftEngine {
    shared: Arc<Shared>,
    crypto: NodeCrypto,
    cfg: Config,
    replica: Replica<NodeCrypto>,
    validators: Vec<PublicKey>,
    transport: Box<dyn Transport>,
    settings: LbftSettings,
    started: Instant,
    tick_at: Option<u64>,
    /// The epoch the replica asked a batch for.
    need_batch: Option<u64>,
    /// Highest epoch a peer is in: an empty proposal waits for it, so an
    /// idle chain runs no epochs. Raised by a message the replica takes up
    /// (inside its window) or by an epoch `f + 1` peers named
    /// ([`EpochClaims`]), never by one far-future message.
    peers_epoch: Option<u64>,
    /// Epochs peers named in their messages.
    claims: EpochClaims,
    /// Epochs of the sync records each peer sent (catch-up): once the
    /// replica passed the highest `f + 1` of them sent, it asks for more.
    sync_seen: EpochClaims,
    /// Stored epochs sent to each peer since the replica's last tick (each
    /// at most once per peer and tick, as the replica serves its own).
    store_served: BTreeMap<u32, std::collections::BTreeSet<u64>>,
    queue: ProposalQueue,
    state: StateRecord,
    proposed: BTreeMap<u64, Batch>,
    verified: Arc<Mutex<HashSet<Hash32>>>,
    halted: Option<(String, u64)>,
    sync_limiter: crate::p2p::CatchUpLimiter,
    fault_log: Option<Vec<Fault>>,
}

impl LbftEngine {
    /// The engine of validator `key` on `shared`'s chain, restored from the store.
    pub fn open(
        shared: Arc<Shared>,
        key: &KeyPair,
        settings: LbftSettings,
        transport: Box<dyn Transport>,
    ) -> anyhow::Result<Self> {
        let (genesis, max_block_txs, max_tx_bytes) = {
            let c = shared.chain();
            (c.genesis().clone(), c.config().max_block_txs, c.config().max_tx_bytes)
        };
        let validators = genesis.validators.clone();
        let n = validators.len();
        let me = validators
            .iter()
            .position(|k| *k == key.public())
            .ok_or_else(|| anyhow::anyhow!("key {} is not a validator of this chain", key.public()))?
            as u32;
        let crypto = load_crypto(&settings, n, me)?;
        let mut cfg = Config::new(n, me, genesis.hash());
        cfg.tick = settings.tick_ms.max(1);
        cfg.retain = settings.retain_epochs.max(1);
        // No duplicate window across epochs: execution skips what already
        // executed (see the module docs on duplicates).
        cfg.dedup_epochs = 0;
        #[cfg(feature = "mutants")]
        if settings.mutation == Some(LbftMutation::DeliveredDeduplicated) {
            cfg.dedup_epochs = cfg.retain as u64;
        }
        cfg.max_batch_txs =
            if settings.max_batch_txs > 0 { settings.max_batch_txs } else { (max_block_txs / n.max(1)).max(1) };
        cfg.max_tx_bytes = max_tx_bytes;
        check_frame_bound(n, cfg.max_batch_txs, cfg.max_tx_bytes)?;
        let verified = Arc::new(Mutex::new(HashSet::new()));
        let r = restore(&shared, &cfg, &crypto, &settings, &verified)?;
        let queue = ProposalQueue::new(MAX_UNEXECUTED_DELIVERIES);
        // A transaction above this validator's share of a block could never
        // be proposed: refused at submission.
        let share = shared.chain().config().block_gas_limit / n.max(1) as u64;
        #[cfg(feature = "mutants")]
        let share = if settings.mutation == Some(LbftMutation::ShareNotEnforced) { u64::MAX } else { share };
        shared.set_gas_share(Some(share));
        Ok(Self {
            replica: r.replica,
            state: r.state,
            proposed: r.proposed,
            shared,
            crypto,
            cfg,
            validators,
            transport,
            settings,
            started: Instant::now(),
            tick_at: None,
            need_batch: None,
            peers_epoch: None,
            claims: EpochClaims::new(n),
            sync_seen: EpochClaims::new(n),
            store_served: BTreeMap::new(),
            queue,
            verified,
            halted: None,
            sync_limiter: crate::p2p::CatchUpLimiter::new(16, std::time::Duration::from_millis(50)),
            fault_log: None,
        })
    }

    /// Whether execution runs a transaction delivered ahead of its
    /// predecessor after it (the module docs' rule; off only for a planted bug).
    fn defer_gaps(&self) -> bool {
        #[cfg(feature = "mutants")]
        if self.settings.mutation == Some(LbftMutation::NoNonceDeferral) {
            return false;
        }
        true
    }

    /// Whether a transaction this validator's own delivered batch left
    /// unexecuted because its sender cannot pay leaves the mempool at once
    /// ([`ProposalQueue::cannot_pay`]; off only for a planted bug).
    fn evicts_unpayable(&self) -> bool {
        #[cfg(feature = "mutants")]
        if self.settings.mutation == Some(LbftMutation::UnpayableKept) {
            return false;
        }
        true
    }

    /// The next epoch this validator delivers.
    pub fn epoch(&self) -> u64 {
        self.replica.epoch()
    }

    /// Keeps the consensus faults observed from now on (for tests).
    pub fn record_faults(&mut self) {
        self.fault_log.get_or_insert_with(Vec::new);
    }

    pub fn take_faults(&mut self) -> Vec<Fault> {
        self.fault_log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn send(&self, to: Target, m: &LbftMessage) {
        let mut bytes = vec![WIRE_LBFT];
        bytes.extend(encode(m));
        match to {
            Target::All => self.transport.broadcast(bytes),
            Target::One(i) => self.transport.send(i, bytes),
        }
    }

    fn halt(&mut self, reason: String) {
        tracing::error!("LBFT validator halted, will reopen its store and retry: {reason}");
        self.shared.metrics.store_faults.fetch_add(1, Relaxed);
        self.shared.set_fault(Some(reason.clone()));
        self.tick_at = None;
        self.need_batch = None;
        self.halted = Some((reason, self.now_ms() + RECOVERY_RETRY_MS));
    }

    fn recover(&mut self) {
        let reopened = self.shared.chain().reopen().map_err(anyhow::Error::from);
        let rebuilt =
            reopened.and_then(|_| restore(&self.shared, &self.cfg, &self.crypto, &self.settings, &self.verified));
        match rebuilt {
            Ok(r) => {
                tracing::info!(epoch = r.replica.epoch(), "LBFT validator recovered from its store");
                self.replica = r.replica;
                self.state = r.state;
                self.proposed = r.proposed;
                self.halted = None;
                self.shared.set_fault(None);
                self.shared.metrics.recoveries.fetch_add(1, Relaxed);
                let step = self.replica.start();
                self.process(step);
            }
            Err(e) => {
                let retry = self.now_ms() + RECOVERY_RETRY_MS;
                if let Some(h) = &mut self.halted {
                    h.1 = retry;
                    h.0 = format!("{}; reopening failed: {e:#}", h.0);
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Proposes for the epoch the replica asked about once there is
    /// something to propose or a peer is already in that epoch.
    fn take_proposal(&mut self) -> Option<LbftStep> {
        let e = self.need_batch?;
        if self.halted.is_some() {
            return None;
        }
        let idle = self.peers_epoch.is_none_or(|p| p < e);
        let txs = {
            let mut chain = self.shared.chain();
            if idle && !self.queue.may_have_work(chain.mempool()) {
                return None;
            }
            let budget = chain.config().block_gas_limit / self.cfg.n.max(1) as u64;
            let cut = self.queue.cut(e, chain.mempool(), self.cfg.max_batch_txs, budget);
            if !cut.give_up.is_empty() {
                tracing::warn!(count = cut.give_up.len(), "LBFT: giving up pending transactions (retried too often)");
                for h in &cut.give_up {
                    chain.evict_pending(h);
                    self.queue.forget(h);
                }
            }
            cut.txs
        };
        if txs.is_empty() && idle {
            // Everything pending waits behind a transaction in flight.
            return None;
        }
        self.need_batch = None;
        Some(self.replica.propose_at(e, txs, now_ms()))
    }

    fn process(&mut self, step: LbftStep) {
        let mut queue = VecDeque::from([step]);
        while let Some(step) = queue.pop_front() {
            if self.halted.is_some() {
                return;
            }
            // The delivered epochs that accepted this validator's own batch.
            let own_accepted: HashSet<u64> = step
                .persist
                .iter()
                .filter_map(|op| match op {
                    PersistOp::Delivered(d) if d.batches.iter().any(|b| b.proposer == self.cfg.me) => Some(d.epoch),
                    _ => None,
                })
                .collect();
            // Never speak before the step is on disk.
            if let Err(reason) = self.persist(&step.persist, &step.delivered) {
                self.halt(reason);
                return;
            }
            for (to, m) in &step.messages {
                self.send(*to, m);
            }
            if let Some(t) = step.tick_after {
                self.tick_at = Some(self.now_ms() + t);
            }
            for f in step.faults {
                self.shared.metrics.faults.fetch_add(1, Relaxed);
                match &f {
                    Fault::InvalidBatch { .. } => tracing::warn!("LBFT: refused a batch: {f:?}"),
                    _ => tracing::debug!("LBFT fault: {f:?}"),
                }
                if let Some(log) = &mut self.fault_log {
                    log.push(f);
                }
            }
            if let Some(e) = step.need_batch {
                self.need_batch = Some(e);
            }
            for d in &step.delivered {
                let pool = self.shared.chain();
                if own_accepted.contains(&d.epoch) {
                    self.queue.delivered(d.epoch, pool.mempool());
                } else {
                    self.queue.delivered_without_own_batch(d.epoch, pool.mempool());
                }
                drop(pool);
                let mut v = self.verified.lock().unwrap_or_else(|p| p.into_inner());
                for t in &d.txs {
                    v.remove(&tx_id(t));
                }
            }
            if let Some(s) = self.take_proposal() {
                queue.push_back(s);
            }
        }
    }

    /// Writes a step's records: per delivered epoch, its block (if it has
    /// transactions), its certified batches and the state record in one
    /// transaction. The step's other changes (its proposal, its new echoes
    /// and agreement votes) go into the first of
    /// those transactions, or into one of their own if the step delivers
    /// nothing: written no later than the step's messages leave, and with a
    /// delivery, at no extra write.
    fn persist(&mut self, ops: &[PersistOp<Sig>], delivered: &[Delivery]) -> Result<(), String> {
        let mut deliveries = delivered.iter();
        let (mut state_dirty, mut proposed_dirty) = (false, false);
        for op in ops {
            match op {
                PersistOp::Proposed { epoch, batch } => {
                    self.proposed.insert(*epoch, batch.clone());
                    proposed_dirty = true;
                }
                PersistOp::Echoed { epoch, proposer, digest } => {
                    self.state.echoed.insert((*epoch, *proposer), *digest);
                    state_dirty = true;
                }
                PersistOp::VotedIn { epoch } => {
                    self.state.voted_through = Some(self.state.voted_through.map_or(*epoch, |v| v.max(*epoch)));
                    state_dirty = true;
                }
                PersistOp::Voted { epoch, instance, round, said } => {
                    self.state.said.insert((*epoch, *instance, *round), *said);
                    state_dirty = true;
                }
                PersistOp::Delivered(_) => {}
            }
        }
        for op in ops {
            if let PersistOp::Delivered(d) = op {
                let Some(delivery) = deliveries.next().filter(|x| x.epoch == d.epoch) else {
                    return Err(format!("epoch {} persisted without its delivery", d.epoch));
                };
                let next = d.epoch + 1;
                self.state.echoed.retain(|(e, _), _| *e >= next);
                self.state.said.retain(|(e, _, _), _| *e >= next);
                self.proposed.retain(|e, _| *e >= next);
                self.state.delivered_through = Some(d.epoch);
                self.commit_epoch(d, delivery)?;
                state_dirty = false;
                proposed_dirty = false;
            }
        }
        if state_dirty || proposed_dirty {
            let state = encode(&self.state);
            let proposed = proposed_dirty.then(|| encode(&self.proposed));
            let mut aux: Vec<(&str, &[u8])> = vec![(STATE_KEY, state.as_slice())];
            if let Some(p) = &proposed {
                aux.push((PROPOSED_KEY, p.as_slice()));
            }
            self.shared
                .chain()
                .commit_with_aux(Vec::new(), &aux)
                .map_err(|e| format!("cannot persist the LBFT state: {e}"))?;
        }
        Ok(())
    }

    /// One delivered epoch: its block and records in one transaction.
    fn commit_epoch(&mut self, d: &DeliveredEpoch<Sig>, delivery: &Delivery) -> Result<(), String> {
        let started = Instant::now();
        let record = encode(d);
        let state = encode(&self.state);
        let proposed = encode(&self.proposed);
        let suppressed = encode(&delivery.suppressed);
        let key = epoch_key(d.epoch);
        let dups = suppressed_key(d.epoch);
        let aux: Vec<(&str, &[u8])> =
            vec![(key.as_str(), &record), (dups.as_str(), &suppressed), (STATE_KEY, &state), (PROPOSED_KEY, &proposed)];
        let mut chain = self.shared.chain();
        let mut unpayable = Vec::new();
        let block = execute(&chain, &self.validators, &self.verified, d, delivery, self.defer_gaps(), &mut unpayable)?;
        let notice = block.as_ref().map(|ex| (ex.block.clone(), ex.receipts.clone()));
        chain
            .commit_with_aux(block.into_iter().collect(), &aux)
            .map_err(|e| format!("cannot commit epoch {}: {e}", d.epoch))?;
        // Local mempool policy, not block content: what this validator's
        // own accepted batch carried and its sender could not pay for
        // leaves the mempool now ([`ProposalQueue::cannot_pay`]).
        if self.evicts_unpayable() && d.batches.iter().any(|b| b.proposer == self.cfg.me) {
            for (h, why) in unpayable {
                if self.queue.cannot_pay(d.epoch, &h) {
                    tracing::warn!(tx = %h, epoch = d.epoch, "LBFT: evicting a pending transaction: {why}");
                    chain.evict_pending(&h);
                }
            }
        }
        drop(chain);
        if let Some((block, receipts)) = notice {
            tracing::info!(height = block.header.height, epoch = d.epoch, txs = block.txs.len(), "committed block");
            self.shared.record_block(&block, &receipts, delivery.txs.len() - block.txs.len(), started.elapsed());
        }
        Ok(())
    }

    /// Serves delivered epochs older than the replica keeps in memory from
    /// the store: each at most once per peer and tick (the replica's rule
    /// for the epochs it keeps), and rate-limited per peer.
    fn serve_from_store(&mut self, from: u32, next: u64) {
        let Some(last) = self.state.delivered_through else { return };
        if next > last {
            return;
        }
        let until = last.min(next.saturating_add(self.cfg.sync_batch as u64 - 1));
        let served = self.store_served.entry(from).or_default();
        let due: Vec<u64> = (next..=until).filter(|e| !served.contains(e)).collect();
        if due.is_empty() || !self.sync_limiter.allow(from, Instant::now()) {
            return;
        }
        for e in due {
            self.store_served.entry(from).or_default().insert(e);
            match self.shared.store.get_aux(&epoch_key(e)) {
                Ok(Some(bytes)) => match decode::<DeliveredEpoch<Sig>>(&bytes, MAX_FRAME) {
                    Ok(delivered) => self.send(Target::One(from), &Message::Sync { delivered }),
                    Err(err) => {
                        tracing::warn!(epoch = e, "stored LBFT epoch does not decode: {err}");
                        return;
                    }
                },
                Ok(None) => return,
                Err(err) => {
                    tracing::warn!("reading LBFT epoch {e}: {err}");
                    return;
                }
            }
        }
        self.shared.metrics.catch_up_from_store.fetch_add(1, Relaxed);
    }

    fn on_message(&mut self, from: u32, m: LbftMessage) {
        if let Message::SyncRequest { next } = m {
            let oldest = self.replica.log().next().map_or(self.replica.epoch(), |d| d.epoch);
            if next < oldest {
                self.serve_from_store(from, next);
                return;
            }
        }
        let before = self.replica.epoch();
        let synced = match &m {
            Message::Sync { delivered } => Some(delivered.epoch),
            _ => None,
        };
        let peer = (from as usize) < self.cfg.n && from != self.cfg.me;
        if let Some(e) = m.epoch().filter(|_| peer) {
            // A message the replica takes up (below its window's end) shows
            // the peer in that epoch; a further one counts only once `f + 1`
            // peers named it or a higher one.
            self.claims.note(from, e);
            let inside = (e < before.saturating_add(self.cfg.window)).then_some(e);
            let woken = inside.max(self.claims.vouched());
            if let Some(w) = woken {
                self.peers_epoch = Some(self.peers_epoch.map_or(w, |p| p.max(w)));
            }
        }
        if let Some(e) = synced.filter(|_| peer) {
            self.sync_seen.note(from, e);
        }
        let step = self.replica.handle_message(from, m);
        self.process(step);
        // A step whose records could not be stored halts the validator: it
        // sends nothing more, not even a catch-up request, until recovered.
        if self.halted.is_some() {
            return;
        }
        // Catching up: once every record received so far is adopted, ask
        // for the next ones (an idle network sends nothing that would).
        let now = self.replica.epoch();
        if synced.is_some() && now > before && self.sync_seen.passed(now) {
            self.send(Target::All, &Message::SyncRequest { next: now });
        }
    }
}

/// The replica, its validity predicate and the records it mirrors, from the store.
fn restore(
    shared: &Arc<Shared>,
    cfg: &Config,
    crypto: &NodeCrypto,
    settings: &LbftSettings,
    verified: &Arc<Mutex<HashSet<Hash32>>>,
) -> anyhow::Result<Restored> {
    let store = &shared.store;
    let state: StateRecord = match store.get_aux(STATE_KEY)? {
        Some(b) => decode_state(&b).map_err(|e| anyhow::anyhow!("stored LBFT state: {e}"))?,
        None => StateRecord::default(),
    };
    let proposed: BTreeMap<u64, Batch> = match store.get_aux(PROPOSED_KEY)? {
        Some(b) => decode(&b, MAX_FRAME).map_err(|e| anyhow::anyhow!("stored LBFT proposals: {e}"))?,
        None => BTreeMap::new(),
    };
    let mut delivered = Vec::new();
    let mut suppressed = BTreeMap::new();
    if let Some(last) = state.delivered_through {
        let retained = (last + 1).saturating_sub(cfg.retain as u64);
        let from = retained.min(dedup_replay_start(store, cfg.dedup_epochs, last)?);
        for e in from..=last {
            let bytes = store
                .get_aux(&epoch_key(e))?
                .ok_or_else(|| anyhow::anyhow!("the store lacks delivered LBFT epoch {e} (last {last})"))?;
            let d: DeliveredEpoch<Sig> =
                decode(&bytes, MAX_FRAME).map_err(|err| anyhow::anyhow!("stored LBFT epoch {e}: {err}"))?;
            // Served to lagging peers: a record whose certificates do not
            // hold (a damaged store) is refused here, not passed on. (Older
            // epochs, read only to rebuild the duplicate window, are not
            // served.)
            for b in d.batches.iter().filter(|_| e >= retained) {
                let stmt = gridledger_consensus::lbft::echo_statement(&cfg.instance, e, b.proposer, &b.digest);
                // A digest that is not this version's is named as such (a
                // log from before batch digest v2, or damaged), not as a
                // bad certificate.
                if b.batch.digest(&cfg.instance, e, b.proposer) != b.digest {
                    return Err(gridledger_consensus::lbft::RestoreError::DigestVersion {
                        epoch: e,
                        proposer: b.proposer,
                    }
                    .into());
                }
                anyhow::ensure!(
                    crypto.verify(KeyUse::Cert, &stmt, &b.sig),
                    "stored LBFT epoch {e}: the certificate of proposer {} does not hold",
                    b.proposer
                );
            }
            delivered.push(d);
            if let Some(bytes) = store.get_aux(&suppressed_key(e))? {
                let removed: Vec<u32> =
                    decode(&bytes, MAX_FRAME).map_err(|err| anyhow::anyhow!("stored LBFT duplicates of {e}: {err}"))?;
                suppressed.insert(e, removed);
            }
        }
    }
    let durable = Durable {
        delivered,
        echoed: state.echoed.clone(),
        proposed: proposed.clone(),
        voted_through: state.voted_through,
        said: state.said.clone(),
        suppressed,
    };
    let mut replica = Replica::try_new(cfg.clone(), crypto.clone(), durable)?;
    replica.set_validity(validity(shared.clone(), verified.clone(), cfg.n, settings.max_clock_drift_ms));
    Ok(Restored { replica, state, proposed })
}

/// The first stored epoch the duplicate window before `last + 1` is
/// rebuilt from exactly ([`Replica::try_new`]): the start of the latest
/// run of `dedup_epochs` epochs in a row with recorded duplicate positions
/// (`lbft/suppressed/<e>`; the window after such a run is known), or epoch
/// 0 where there is none — a store written before the positions were kept
/// is read back to its first epoch once; the epochs delivered after the
/// restart record theirs.
fn dedup_replay_start(store: &gridledger_ledger::store::Store, dedup_epochs: u64, last: u64) -> anyhow::Result<u64> {
    if dedup_epochs == 0 {
        return Ok(last + 1);
    }
    let mut run = 0u64;
    let mut e = last;
    loop {
        if store.get_aux(&suppressed_key(e))?.is_some() {
            run += 1;
            if run == dedup_epochs {
                return Ok(e);
            }
        } else {
            run = 0;
        }
        if e == 0 {
            return Ok(0);
        }
        e -= 1;
    }
}

/// The node's validity predicate over other validators' batches (see the
/// module docs). Signatures are checked once: a transaction this node
/// admitted itself, or already checked in another batch, is not checked again.
pub fn validity(shared: Arc<Shared>, verified: Arc<Mutex<HashSet<Hash32>>>, n: usize, drift_ms: u64) -> Validity {
    Box::new(move |_epoch, _proposer, batch: &Batch| {
        let now = now_ms();
        if batch.time_ms > now.saturating_add(drift_ms) {
            return Err(format!("clock reading {} ms is more than {drift_ms} ms ahead of ours", batch.time_ms - now));
        }
        let rules = shared.rules.clone();
        let mut to_check = Vec::new();
        let mut ids = Vec::with_capacity(batch.txs.len());
        {
            let chain = shared.chain();
            let budget = chain.config().block_gas_limit / n.max(1) as u64;
            let mut gas = 0u64;
            let known = verified.lock().unwrap_or_else(|p| p.into_inner());
            for (i, raw) in batch.txs.iter().enumerate() {
                let stx = SignedTransaction::from_bytes(raw, rules.max_tx_bytes)
                    .map_err(|e| format!("transaction {i}: {e}"))?;
                gas = gas.saturating_add(stx.tx.gas_limit);
                if gas > budget {
                    return Err(format!("the batch's gas limits exceed its share of a block ({budget})"));
                }
                let at = chain.account(&stx.sender()).nonce;
                if stx.tx.nonce < at {
                    return Err(format!("transaction {i}: nonce {} already used (account at {at})", stx.tx.nonce));
                }
                let id = tx_id(raw);
                if !known.contains(&id) && !chain.mempool().holds(&stx) {
                    to_check.push((i, stx));
                }
                ids.push(id);
            }
        }
        {
            use rayon::prelude::*;
            let failed = to_check
                .par_iter()
                .with_min_len(16)
                .find_map_first(|(i, t)| rules.check_decoded(t.clone()).err().map(|e| (*i, e)));
            if let Some((i, e)) = failed {
                return Err(format!("transaction {i}: {e}"));
            }
        }
        let mut known = verified.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() + ids.len() > MAX_VERIFIED {
            known.clear();
        }
        known.extend(ids);
        Ok(())
    })
}

/// Executes an epoch's delivered transactions as the next block, skipping
/// those that do not execute; `None` when none does. Those skipped because
/// their sender cannot pay for them are added to `unpayable`, with why.
fn execute(
    chain: &gridledger_ledger::Chain,
    validators: &[PublicKey],
    verified: &Mutex<HashSet<Hash32>>,
    d: &DeliveredEpoch<Sig>,
    delivery: &Delivery,
    defer_gaps: bool,
    unpayable: &mut Vec<(Hash32, String)>,
) -> Result<Option<ExecutedBlock>, String> {
    if delivery.txs.is_empty() {
        return Ok(None);
    }
    let mut times: Vec<u64> = d.batches.iter().map(|b| b.batch.time_ms).collect();
    times.sort_unstable();
    let median = times.get(times.len() / 2).copied().unwrap_or(0);
    let proposer = d
        .batches
        .first()
        .and_then(|b| validators.get(b.proposer as usize))
        .copied()
        .ok_or_else(|| format!("epoch {}: no accepted batch", d.epoch))?;
    let tip = chain.tip().clone();
    let chain_id = chain.genesis().chain_id;
    let env = BlockEnv {
        chain_id,
        height: tip.height + 1,
        timestamp: median.max(tip.timestamp + 1),
        proposer: proposer.address(),
        parent: tip.hash(),
    };
    let rules = chain.rules();
    let known = verified.lock().unwrap_or_else(|p| p.into_inner());
    let mut b = BlockBuilder::new(chain.state(), chain.registry(), env, chain.config().block_gas_limit)
        .with_block_hashes(chain.block_hashes());
    let mut included = 0usize;
    // Per sender, transactions delivered ahead of their predecessor in this
    // epoch, by nonce: each runs right after its predecessor (see the
    // module docs); what is still waiting at the end is skipped.
    let mut waiting: HashMap<Address, BTreeMap<u64, (Hash32, SignedTransaction)>> = HashMap::new();
    // Runs one transaction, its fee into the epoch's fee pool (see the
    // module docs); one its sender cannot pay for goes to `unpayable`.
    let mut push = |b: &mut BlockBuilder<'_>, h: Hash32, stx: SignedTransaction| match b.push_pooled(stx) {
        Ok(_) => true,
        Err(e @ gridledger_ledger::TxRejected::Balance { .. }) => {
            unpayable.push((h, e.to_string()));
            false
        }
        Err(_) => false,
    };
    for raw in delivery.txs.iter() {
        let Ok(stx) = SignedTransaction::from_bytes(raw, rules.max_tx_bytes) else { continue };
        let h = stx.hash();
        match chain.store().tx_location(&h) {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => return Err(format!("reading the transaction index: {e}")),
        }
        if !known.contains(&tx_id(raw)) && !chain.mempool().holds(&stx) && rules.check_decoded(stx.clone()).is_err() {
            continue;
        }
        let sender = stx.sender();
        if defer_gaps && stx.tx.nonce > b.state().account(&sender).nonce {
            waiting.entry(sender).or_default().entry(stx.tx.nonce).or_insert((h, stx));
            continue;
        }
        if push(&mut b, h, stx) {
            included += 1;
            let Some(w) = waiting.get_mut(&sender) else { continue };
            while let Some((h, next)) = w.remove(&b.state().account(&sender).nonce) {
                if !push(&mut b, h, next) {
                    break;
                }
                included += 1;
            }
        }
    }
    drop(known);
    if included == 0 {
        return Ok(None);
    }
    // The epoch's fees, pooled, are shared equally among the proposers of
    // its accepted batches, the remainder to the one the decision hash
    // picks (see the module docs).
    let mut payees: Vec<Address> = Vec::with_capacity(d.batches.len());
    for v in d.batches.iter().filter_map(|b| validators.get(b.proposer as usize)) {
        if !payees.contains(&v.address()) {
            payees.push(v.address());
        }
    }
    b.share_fee_pool(&payees, &d.block_hash()).map_err(|e| format!("epoch {}: sharing its fees: {e}", d.epoch))?;
    let mut ex = b.finish(chain_id, tip.hash(), proposer, chain.state());
    ex.block.seal = Seal::Epoch { epoch: d.epoch, decision: d.block_hash() };
    Ok(Some(ex))
}

impl crate::engine::ConsensusEngine for LbftEngine {
    fn start(&mut self) {
        let step = self.replica.start();
        self.process(step);
    }

    fn on_bytes(&mut self, from: u32, bytes: &[u8]) {
        if self.halted.is_none() {
            match decode_wire(bytes) {
                Some(Ok(m)) => self.on_message(from, m),
                Some(Err(e)) => {
                    self.shared.metrics.faults.fetch_add(1, Relaxed);
                    tracing::warn!(from, "{e}");
                }
                None => {}
            }
        }
        // The frame is consumed: its bytes leave the peer's inbound budget.
        self.shared.release_inbound(from, bytes);
    }

    fn poll(&mut self) {
        if self.halted.as_ref().is_some_and(|h| h.1 <= self.now_ms()) {
            self.recover();
        }
        if self.halted.is_some() {
            return;
        }
        // Transactions this node's clients submitted wait in the mempool,
        // which is the proposal queue ([`queue`]); the outbox only woke us.
        drop(self.shared.take_outbox());
        if let Some(s) = self.take_proposal() {
            self.process(s);
        }
    }

    fn fire_timers(&mut self) {
        if self.halted.is_some() {
            return;
        }
        if self.tick_at.is_some_and(|t| t <= self.now_ms()) {
            self.tick_at = None;
            self.store_served.clear();
            let step = self.replica.handle_tick();
            self.process(step);
        }
    }

    fn now(&self) -> u64 {
        self.now_ms()
    }

    fn next_deadline(&self) -> Option<u64> {
        self.tick_at.into_iter().chain(self.halted.as_ref().map(|h| h.1)).min()
    }

    fn halted(&self) -> Option<&str> {
        self.halted.as_ref().map(|h| h.0.as_str())
    }
}

/// Runs an LBFT validator until `Input::Stop`. Blocking: give it its own thread.
pub fn run_lbft(
    shared: Arc<Shared>,
    key: KeyPair,
    settings: LbftSettings,
    transport: Box<dyn Transport>,
    inbox: Receiver<Input>,
) -> anyhow::Result<()> {
    let mut e = LbftEngine::open(shared, &key, settings, transport)?;
    crate::engine::run_engine(&mut e, inbox);
    Ok(())
}

#[cfg(test)]
mod state_record_tests {
    use super::*;

    #[derive(BorshSerialize)]
    struct OlderLayout {
        echoed: BTreeMap<(u64, u32), Hash32>,
        voted_through: Option<u64>,
        delivered_through: Option<u64>,
    }

    #[test]
    fn state_records_of_both_layouts_decode() {
        let echoed: BTreeMap<(u64, u32), Hash32> = [((3, 1), Hash32([5; 32]))].into_iter().collect();
        let old = encode(&OlderLayout { echoed: echoed.clone(), voted_through: Some(3), delivered_through: Some(2) });
        let got = decode_state(&old).expect("an older record decodes");
        assert_eq!(
            got,
            StateRecord {
                echoed: echoed.clone(),
                voted_through: Some(3),
                delivered_through: Some(2),
                said: BTreeMap::new()
            }
        );
        let said: BTreeMap<(u64, u32, u32), Said> =
            [((3, 2, 0), Said { bval: 2, aux: Some(true), conf: None })].into_iter().collect();
        let new = StateRecord { echoed, voted_through: None, delivered_through: Some(2), said };
        assert_eq!(decode_state(&encode(&new)).expect("a current record decodes"), new);
        assert!(decode_state(&[1, 2, 3]).is_err(), "garbage is refused");
    }
}

#[cfg(test)]
mod epoch_claims_tests {
    use super::*;
    use gridledger_consensus::lbft::crypto::SimSig;
    use gridledger_consensus::lbft::{echo_statement, CertifiedBatch, SimCrypto};

    #[test]
    fn one_peer_alone_cannot_raise_the_vouched_epoch() {
        let mut c = EpochClaims::new(4);
        assert_eq!(c.vouched(), None);
        c.note(3, 1 << 40);
        assert_eq!(c.vouched(), None, "one Byzantine claim vouches for nothing");
        c.note(1, 5);
        assert_eq!(c.vouched(), Some(5), "f + 1 = 2 peers named 5 or more");
        c.note(2, 9);
        c.note(1, 2);
        assert_eq!(c.vouched(), Some(9), "per peer the highest epoch counts");
    }

    const INST: Hash32 = Hash32([0x5d; 32]);

    fn record(epoch: u64) -> DeliveredEpoch<SimSig> {
        let batches = (0..3u32)
            .map(|p| {
                let batch = Batch::new(vec![format!("tx e{epoch} p{p}").into_bytes()]);
                let digest = batch.digest(&INST, epoch, p);
                let msg = echo_statement(&INST, epoch, p, &digest);
                let shares: Vec<(u32, SimSig)> =
                    (0..3u32).map(|i| (i, SimCrypto::new(9, 4, i).sign_share(KeyUse::Cert, &msg))).collect();
                let sig = SimCrypto::new(9, 4, 0).combine(KeyUse::Cert, &msg, &shares).expect("combines");
                CertifiedBatch { proposer: p, digest, sig, batch }
            })
            .collect();
        DeliveredEpoch { epoch, batches }
    }

    /// The catch-up chain (the engine asks for the next records once the
    /// replica passed the sync records `f + 1` peers sent) survives a
    /// Byzantine `Sync` record for epoch 2^40: before, the highest record
    /// epoch from anyone was the bar, and `now > 2^40` never held again.
    #[test]
    fn a_far_future_sync_record_does_not_stop_the_catch_up_chain() {
        let mut r: Replica<SimCrypto> =
            Replica::new(Config::new(4, 0, INST), SimCrypto::new(9, 4, 0), Durable::default());
        let _ = r.start();
        let mut seen = EpochClaims::new(4);
        let mut far = record(0);
        far.epoch = 1 << 40;
        seen.note(3, far.epoch);
        let _ = r.handle_message(3, Message::Sync { delivered: far });
        // Peers 1 and 2 answer with epochs 0..8 each, one answer after the other.
        let mut asked = Vec::new();
        for from in [1u32, 2] {
            for e in 0..8 {
                let before = r.epoch();
                seen.note(from, e);
                let _ = r.handle_message(from, Message::Sync { delivered: record(e) });
                if r.epoch() > before && seen.passed(r.epoch()) {
                    asked.push(r.epoch());
                }
            }
        }
        assert_eq!(r.epoch(), 8, "the eight records are adopted");
        assert_eq!(asked, vec![8], "once every record received is adopted (and only then) the engine asks for more");
    }
}

#[cfg(test)]
mod dedup_restore_tests {
    use super::*;
    use gridledger_ledger::fault::SimDisk;
    use gridledger_ledger::store::Store;

    fn store_with_records(epochs: &[u64]) -> Store {
        let disk = SimDisk::new();
        let store = Store::open_backend(move || disk.backend()).expect("store opens");
        for &e in epochs {
            store.put_aux(&suppressed_key(e), &encode(&Vec::<u32>::new())).expect("written");
        }
        store
    }

    #[test]
    fn replay_starts_where_the_duplicate_window_is_known() {
        // Every epoch recorded: the last `dedup_epochs` suffice.
        let all: Vec<u64> = (0..=20).collect();
        assert_eq!(dedup_replay_start(&store_with_records(&all), 4, 20).unwrap(), 17);
        // A store written before the positions were kept: back to epoch 0.
        assert_eq!(dedup_replay_start(&store_with_records(&[]), 4, 20).unwrap(), 0);
        // Positions kept since epoch 9 (an upgrade): the first run of 4
        // recorded epochs from the end, 17..=20.
        let since: Vec<u64> = (9..=20).collect();
        assert_eq!(dedup_replay_start(&store_with_records(&since), 4, 20).unwrap(), 17);
        // Only 3 recorded epochs after the upgrade: the window before them
        // is unknown, so back to epoch 0.
        let few: Vec<u64> = (18..=20).collect();
        assert_eq!(dedup_replay_start(&store_with_records(&few), 4, 20).unwrap(), 0);
        // A gap in the records: the run after it.
        let gap: Vec<u64> = (5..=9).chain(11..=13).collect();
        assert_eq!(dedup_replay_start(&store_with_records(&gap), 4, 13).unwrap(), 6);
    }
}

#[cfg(test)]
mod key_file_tests {
    use super::*;
    use rand::SeedableRng;

    fn settings(dir: &Path) -> LbftSettings {
        LbftSettings {
            key_shares: dir.join("lbft.key"),
            public_keys: dir.join("lbft-public.hex"),
            ..LbftSettings::default()
        }
    }

    fn write_dealt(dir: &Path, me: usize) {
        let keys = deal_keys(4, &mut rand_chacha::ChaCha20Rng::seed_from_u64(21)).expect("dealt");
        std::fs::write(dir.join("lbft-public.hex"), &keys.public).expect("write");
        std::fs::write(dir.join("lbft.key"), &keys.shares[me]).expect("write");
    }

    #[test]
    fn dealt_keys_load_and_sign_echoes_every_validator_checks() {
        let dir = tempfile::tempdir().expect("dir");
        write_dealt(dir.path(), 2);
        let crypto = load_crypto(&settings(dir.path()), 4, 2).expect("validator 2's keys load");
        let share = crypto.sign_share(KeyUse::Cert, b"echo");
        assert!(matches!(share, NodeShare::Echo(_)), "certificates are signed echoes");
        assert!(crypto.verify_share(KeyUse::Cert, 2, b"echo", &share));
        assert!(matches!(load_crypto(&settings(dir.path()), 4, 1), Err(LbftKeyError::Mismatch { me: 1, .. })));
        assert!(matches!(
            load_crypto(&settings(dir.path()), 7, 2),
            Err(LbftKeyError::EchoKeyCount { n: 7, got: 4, .. })
        ));
    }

    /// Key files of an earlier build (two BLS key sets, no Ed25519 echo
    /// keys), or none at all: typed errors, no panic.
    #[test]
    fn key_files_without_echo_keys_are_a_typed_error() {
        let dir = tempfile::tempdir().expect("dir");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(22);
        let (cert_pk, cert_sk) = gridledger_threshold::deal(4, 3, &mut rng).expect("deal");
        let (coin_pk, coin_sk) = gridledger_threshold::deal(4, 2, &mut rng).expect("deal");
        let old_public = hex::encode(encode(&(cert_pk.to_bytes(), coin_pk.to_bytes())));
        let old_secret = hex::encode(encode(&(cert_sk[0].to_bytes(), coin_sk[0].to_bytes())));
        std::fs::write(dir.path().join("lbft-public.hex"), old_public).expect("write");
        std::fs::write(dir.path().join("lbft.key"), &old_secret).expect("write");
        match load_crypto(&settings(dir.path()), 4, 0) {
            Err(LbftKeyError::NoEchoKeys { what, .. }) => assert_eq!(what, "LBFT public keys"),
            other => panic!("old public keys: {:?}", other.map(|_| ())),
        }
        // New public keys beside an old secret file.
        write_dealt(dir.path(), 0);
        std::fs::write(dir.path().join("lbft.key"), &old_secret).expect("write");
        match load_crypto(&settings(dir.path()), 4, 0) {
            Err(LbftKeyError::NoEchoKeys { what, .. }) => assert_eq!(what, "LBFT secret keys"),
            other => panic!("old secret keys: {:?}", other.map(|_| ())),
        }
        std::fs::write(dir.path().join("lbft.key"), "zz").expect("write");
        assert!(matches!(load_crypto(&settings(dir.path()), 4, 0), Err(LbftKeyError::NotHex { .. })));
        std::fs::remove_file(dir.path().join("lbft.key")).expect("remove");
        assert!(matches!(load_crypto(&settings(dir.path()), 4, 0), Err(LbftKeyError::Unreadable { .. })));
    }

    #[test]
    fn old_wire_frames_are_refused_by_version() {
        let m: LbftMessage = Message::SyncRequest { next: 3 };
        let mut frame = vec![WIRE_LBFT];
        frame.extend(encode(&m));
        assert_eq!(decode_wire(&frame), Some(Ok(m)));
        frame[0] = WIRE_LBFT_V1;
        assert_eq!(decode_wire(&frame), Some(Err(LbftWireError::OldVersion)));
        assert_eq!(decode_wire(&[WIRE_LBFT, 0xff, 0xff]).map(|r| r.is_err()), Some(true));
        assert_eq!(decode_wire(&[0, 1, 2]), None, "a PBFT frame is not LBFT's");
    }
}

#[cfg(test)]
mod frame_budget_tests {
    use super::*;

    /// A delivered epoch as large as the bounds allow: `n` batches of
    /// `txs` transactions of `tx_bytes` bytes, each certified by `n − f`
    /// echoes (signatures are not checked here, only their sizes count).
    fn full_epoch(n: usize, txs: usize, tx_bytes: usize) -> DeliveredEpoch<Sig> {
        let batch = Batch { txs: vec![vec![0x5au8; tx_bytes]; txs].into(), time_ms: 1_700_000_000_000 };
        let batches = (0..n as u32)
            .map(|proposer| CertifiedBatch {
                proposer,
                digest: Hash32([proposer as u8; 32]),
                sig: NodeSig::Cert(MultiSig {
                    echoes: (0..gridledger_consensus::lbft::quorum(n) as u32)
                        .map(|i| (i, EdSignature([i as u8; 64])))
                        .collect(),
                }),
                batch: batch.clone(),
            })
            .collect();
        DeliveredEpoch { epoch: 123_456, batches }
    }

    fn frame(m: &LbftMessage) -> usize {
        1 + encode(m).len()
    }

    /// The budget is the encoder's: for every `n` from 4 to 100 the `Sync`
    /// frame of a full epoch is exactly what [`FrameBudget`] computes, and
    /// the epoch's store record, a `Certified` answer, a `Val` and the
    /// proposals record of a full window are no larger.
    #[test]
    fn the_budget_is_the_encoded_size_of_a_full_epoch_for_4_to_100_validators() {
        for n in 4..=100usize {
            for (txs, tx_bytes) in [(0, 0), (1, 1), (3, 40)] {
                let budget = FrameBudget::new(n, tx_bytes);
                let delivered = full_epoch(n, txs, tx_bytes);
                let sync = frame(&Message::Sync { delivered: delivered.clone() });
                assert_eq!(sync, budget.sync_frame(txs), "n = {n}, {txs} transactions of {tx_bytes} bytes");
                assert!(encode(&delivered).len() < sync, "n = {n}: the store record");
                let one = delivered.batches[0].clone();
                let certified = frame(&Message::Certified { epoch: delivered.epoch, batch: one.clone() });
                assert!(certified < sync, "n = {n}: a Fetch answer");
                assert!(frame(&Message::Val { epoch: delivered.epoch, batch: one.batch.clone() }) < sync);
                let window = Config::new(n, 0, Hash32::default()).window;
                let proposed: BTreeMap<u64, Batch> = (0..window).map(|e| (e, one.batch.clone())).collect();
                assert!(encode(&proposed).len() < sync, "n = {n}: the proposals record");
            }
        }
    }

    /// The largest bound the check accepts is the one its refusal names,
    /// and one more transaction a batch is refused.
    #[test]
    fn the_refusal_names_the_largest_accepted_batch() {
        for (n, tx_bytes) in [(4, 1_024), (22, 1_024), (50, 1_024), (100, 300), (7, 64 * 1024)] {
            let budget = FrameBudget::new(n, tx_bytes);
            let largest = budget.largest_batch().expect("a batch fits");
            assert!(largest > 0);
            assert!(check_frame_bound(n, largest, tx_bytes).is_ok(), "n = {n}");
            assert!(budget.sync_frame(largest) <= MAX_FRAME);
            assert!(budget.sync_frame(largest + 1) > MAX_FRAME);
            let err = check_frame_bound(n, largest + 1, tx_bytes).expect_err("one more is refused").to_string();
            assert!(err.ends_with(&format!("at most {largest}")), "n = {n}: {err}");
        }
    }

    /// Where not even one transaction a batch fits, the refusal says so
    /// instead of recommending a bound of 0.
    #[test]
    fn a_transaction_size_no_batch_can_carry_is_named() {
        let err = check_frame_bound(4, 1, MAX_FRAME).expect_err("refused").to_string();
        assert!(err.contains("even one transaction"), "{err}");
        assert!(!err.contains("at most 0"), "{err}");
    }
}
