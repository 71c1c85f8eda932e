//! What LBFT replicas say to each other (thesis §4.2.1, P^ABC), and the
//! byte strings their echoes and coin shares sign.

use std::sync::{Arc, OnceLock};

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{encode, hash_tagged, Tag};
use gridledger_core::Hash32;

use super::batch::{tx_id, Tx};

/// A batch's transactions, shared: a batch is held in several places at
/// once (the proposal record, the `Val` message and its retransmission
/// list, the proposer's and every receiver's epoch state, the delivered
/// log and its record), and copying thousands of transactions into each
/// cost more than ordering them. Read-only once built (it dereferences to
/// the `Vec`); encoded exactly as a `Vec<Tx>`, so messages and log records
/// are unchanged.
///
/// The transactions' ids ([`tx_id`]) travel with them, hashed once, on
/// first use ([`Txs::ids`]) — for a decoded list as for one built locally.
/// Not while decoding: a peer's batch is checked against the replica's
/// `max_batch_txs`/`max_tx_bytes` bounds only after it was decoded, and a
/// frame of millions of empty transactions must cost no more than the list
/// itself before it is refused. The batch digest and duplicate suppression
/// read them instead of hashing every transaction again.
#[derive(Clone, Default)]
pub struct Txs(Arc<TxsInner>);

#[derive(Clone, Default)]
struct TxsInner {
    txs: Vec<Tx>,
    /// `ids[i] = tx_id(&txs[i])`, once computed.
    ids: OnceLock<Vec<Hash32>>,
}

impl Txs {
    /// The transactions for changing (copied first if shared; the cached
    /// ids are dropped).
    pub fn make_mut(&mut self) -> &mut Vec<Tx> {
        let inner = Arc::make_mut(&mut self.0);
        inner.ids = OnceLock::new();
        &mut inner.txs
    }

    /// A list whose ids are known already: `ids[i]` is `tx_id(&txs[i])`
    /// (the FIFO source hashed each on admission; checked in debug builds).
    pub(crate) fn with_ids(txs: Vec<Tx>, ids: Vec<Hash32>) -> Self {
        debug_assert!(txs.len() == ids.len() && txs.iter().zip(&ids).all(|(t, id)| tx_id(t) == *id));
        let known = OnceLock::new();
        let _ = known.set(ids);
        Self(Arc::new(TxsInner { txs, ids: known }))
    }

    /// `tx_id` of each transaction, in order (hashed once per list).
    pub fn ids(&self) -> &[Hash32] {
        self.0.ids.get_or_init(|| self.0.txs.iter().map(|t| tx_id(t)).collect::<Vec<_>>())
    }
}

impl PartialEq for Txs {
    fn eq(&self, other: &Self) -> bool {
        self.0.txs == other.0.txs
    }
}

impl Eq for Txs {}

impl std::fmt::Debug for Txs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.txs.fmt(f)
    }
}

impl std::ops::Deref for Txs {
    type Target = Vec<Tx>;
    fn deref(&self) -> &Vec<Tx> {
        &self.0.txs
    }
}

impl From<Vec<Tx>> for Txs {
    fn from(txs: Vec<Tx>) -> Self {
        Self(Arc::new(TxsInner { txs, ids: OnceLock::new() }))
    }
}

impl<'a> IntoIterator for &'a Txs {
    type Item = &'a Tx;
    type IntoIter = std::slice::Iter<'a, Tx>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.txs.iter()
    }
}

impl BorshSerialize for Txs {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        self.0.txs.as_slice().serialize(writer)
    }
}

impl BorshDeserialize for Txs {
    /// Decodes the list alone: the ids are hashed on first use, once the
    /// batch passed its bounds (see [`Txs`]).
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        Ok(Vec::<Tx>::deserialize_reader(reader)?.into())
    }
}

/// An epoch's delivered transactions ([`Delivery::txs`](super::Delivery)):
/// the kept transactions of the accepted batches, in order, sharing the
/// batches' lists ([`Txs`]) instead of copying each transaction. Reads as
/// a list of [`Tx`]: `len`, `iter`, indexing, `for t in &txs`.
#[derive(Clone, Default)]
pub struct DeliveredTxs {
    batches: Vec<Txs>,
    /// `(batch, position in it)` of each kept transaction, in order.
    at: Vec<(u32, u32)>,
}

impl DeliveredTxs {
    /// The kept transactions `at` (`(batch, position)`, each in range) of `batches`.
    pub(crate) fn new(batches: Vec<Txs>, at: Vec<(u32, u32)>) -> Self {
        debug_assert!(at.iter().all(|&(b, i)| batches.get(b as usize).is_some_and(|t| (i as usize) < t.len())));
        Self { batches, at }
    }

    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The `i`-th delivered transaction.
    pub fn get(&self, i: usize) -> Option<&Tx> {
        let &(b, k) = self.at.get(i)?;
        self.batches.get(b as usize)?.get(k as usize)
    }

    /// Which batch (its index in the delivery order, that of
    /// [`Delivery::decision`](super::Delivery::decision)) carried the
    /// `i`-th delivered transaction, at its earliest occurrence.
    pub fn batch_of(&self, i: usize) -> Option<usize> {
        self.at.get(i).map(|&(b, _)| b as usize)
    }

    pub fn iter(&self) -> DeliveredIter<'_> {
        DeliveredIter { batches: &self.batches, at: self.at.iter() }
    }

    /// Whether `tx` is among the delivered transactions.
    pub fn contains(&self, tx: &Tx) -> bool {
        self.iter().any(|t| t == tx)
    }

    /// The transactions, copied.
    pub fn to_vec(&self) -> Vec<Tx> {
        self.iter().cloned().collect()
    }
}

impl From<Vec<Tx>> for DeliveredTxs {
    fn from(txs: Vec<Tx>) -> Self {
        let at = (0..txs.len() as u32).map(|k| (0, k)).collect();
        Self { batches: vec![txs.into()], at }
    }
}

impl std::ops::Index<usize> for DeliveredTxs {
    type Output = Tx;
    fn index(&self, i: usize) -> &Tx {
        let (b, k) = self.at[i];
        &self.batches[b as usize][k as usize]
    }
}

impl<'a> IntoIterator for &'a DeliveredTxs {
    type Item = &'a Tx;
    type IntoIter = DeliveredIter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// [`DeliveredTxs::iter`].
#[derive(Clone, Debug)]
pub struct DeliveredIter<'a> {
    batches: &'a [Txs],
    at: std::slice::Iter<'a, (u32, u32)>,
}

impl<'a> Iterator for DeliveredIter<'a> {
    type Item = &'a Tx;
    fn next(&mut self) -> Option<&'a Tx> {
        let &(b, k) = self.at.next()?;
        Some(&self.batches[b as usize][k as usize])
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.at.size_hint()
    }
}

impl ExactSizeIterator for DeliveredIter<'_> {}

impl DoubleEndedIterator for DeliveredIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let &(b, k) = self.at.next_back()?;
        Some(&self.batches[b as usize][k as usize])
    }
}

impl PartialEq for DeliveredTxs {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for DeliveredTxs {}

impl PartialEq<Vec<Tx>> for DeliveredTxs {
    fn eq(&self, other: &Vec<Tx>) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for DeliveredTxs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One replica's proposal for one epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Batch {
    pub txs: Txs,
    /// The proposer's clock when it proposed (ms since the Unix epoch; 0
    /// where no clock matters, as in the simulator). A node's block for an
    /// epoch takes the median of its accepted batches' times: with at least
    /// `n − f` batches, at most `f` of them Byzantine, the median lies
    /// between two correct replicas' clocks.
    pub time_ms: u64,
}

impl Batch {
    /// A batch without a clock reading.
    pub fn new(txs: Vec<Tx>) -> Self {
        Self { txs: txs.into(), time_ms: 0 }
    }

    /// Binds the batch to its instance, epoch and proposer, so a batch (and
    /// its certificate) cannot be replayed in another slot. Version 2 hashes
    /// the transactions' ids ([`Txs::ids`], each a SHA-256 of the whole
    /// transaction) instead of the transactions: it binds the same contents
    /// (a different batch with the same digest needs a SHA-256 collision,
    /// in an id or in this hash), and every byte of a transaction is hashed
    /// once per replica — for its id — instead of twice. (Version 1 hashed
    /// `(instance, epoch, proposer, txs, time_ms)`; digests are not
    /// compared across versions: every replica of an instance runs one.)
    pub fn digest(&self, instance: &Hash32, epoch: u64, proposer: u32) -> Hash32 {
        hash_tagged(Tag("gridledger/lbft/batch/v2"), &(instance, epoch, proposer, self.txs.ids(), self.time_ms))
    }

    pub fn bytes(&self) -> usize {
        self.txs.iter().map(|t| t.len()).sum()
    }
}

/// A vote of the binary agreement (Mostéfaoui–Moumen–Raynal with the
/// `Conf` phase and `Term` messages, as in HoneyBadgerBFT).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AbaVote<S> {
    BVal(bool),
    Aux(bool),
    /// A set of values, bit 0 = false, bit 1 = true.
    Conf(u8),
    Coin(S),
    /// The sender decided: counts as its `BVal`, `Aux` and `Conf` for that
    /// value in every later round.
    Term(bool),
}

/// A certified batch as it enters the delivered log.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CertifiedBatch<G> {
    pub proposer: u32,
    pub digest: Hash32,
    pub sig: G,
    pub batch: Batch,
}

/// One delivered epoch: the batches the agreement accepted, by proposer.
/// Persisted before anything that follows it is sent; served to lagging
/// replicas.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DeliveredEpoch<G> {
    pub epoch: u64,
    pub batches: Vec<CertifiedBatch<G>>,
}

impl<G> DeliveredEpoch<G> {
    /// What replicas must agree on: `(proposer, digest)` in order.
    pub fn decision(&self) -> Vec<(u32, Hash32)> {
        self.batches.iter().map(|b| (b.proposer, b.digest)).collect()
    }

    /// The epoch's block hash `h^e` (the same at every correct replica).
    pub fn block_hash(&self) -> Hash32 {
        block_hash(self.epoch, &self.decision())
    }
}

/// `h^e`: the hash of epoch `epoch`'s decision (its accepted batch digests,
/// which bind their contents). π^τ's array function reads `h^(e−1)`.
pub fn block_hash(epoch: u64, decision: &[(u32, Hash32)]) -> Hash32 {
    hash_tagged(Tag("gridledger/lbft/block/v1"), &(epoch, decision))
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message<S, G> {
    /// The proposer's batch for `epoch` (the proposer is the sender).
    Val {
        epoch: u64,
        batch: Batch,
    },
    /// A share on [`echo_statement`], sent back to the proposer only.
    Echo {
        epoch: u64,
        proposer: u32,
        digest: Hash32,
        share: S,
    },
    /// `n − f` echoes combined (on nodes a multi-signature: the `n − f`
    /// signed echoes, [`super::MultiSig`]; not unique, so replicas agree on
    /// `digest`, never on `sig`'s bytes): the batch is available at `f + 1` correct
    /// replicas and no other batch of this proposer can be certified.
    Cert {
        epoch: u64,
        proposer: u32,
        digest: Hash32,
        sig: G,
    },
    Aba {
        epoch: u64,
        instance: u32,
        round: u32,
        vote: AbaVote<S>,
    },
    /// Asks for a certified batch the agreement accepted.
    Fetch {
        epoch: u64,
        proposer: u32,
    },
    /// Answers [`Message::Fetch`].
    Certified {
        epoch: u64,
        batch: CertifiedBatch<G>,
    },
    /// Asks for delivered epochs from `next` on.
    SyncRequest {
        next: u64,
    },
    /// One delivered epoch; adopted once `f + 1` replicas sent the same
    /// decision.
    Sync {
        delivered: DeliveredEpoch<G>,
    },
}

impl<S, G> Message<S, G> {
    pub fn epoch(&self) -> Option<u64> {
        match self {
            Message::Val { epoch, .. }
            | Message::Echo { epoch, .. }
            | Message::Cert { epoch, .. }
            | Message::Aba { epoch, .. }
            | Message::Fetch { epoch, .. }
            | Message::Certified { epoch, .. } => Some(*epoch),
            Message::SyncRequest { .. } | Message::Sync { .. } => None,
        }
    }

    /// Whether sending this message commits its sender to something new,
    /// so that a driver must make the step's writes durable before it
    /// leaves (see [`super::Replica::must_sync_before_sending`]). `false`
    /// for messages that say nothing a restarted replica could contradict:
    /// a `Cert` (`n − f` others' echoes combined; the own batch it
    /// certifies was durable before its `Val` left), a coin share (a
    /// deterministic signature on `(instance, epoch, agreement, round)`:
    /// the same bytes after any restart), a `Fetch` or `SyncRequest` (a
    /// question) and a `Certified` answer (another proposer's certified
    /// batch, as certified). `true` for the proposal (`Val`), echoes,
    /// the agreement's `BVal`, `Aux`, `Conf` and `Term`, and `Sync`
    /// records (a delivered epoch, durable only with its record).
    pub fn commits_sender(&self) -> bool {
        match self {
            Message::Val { .. } | Message::Echo { .. } | Message::Sync { .. } => true,
            Message::Aba { vote, .. } => !matches!(vote, AbaVote::Coin(_)),
            Message::Cert { .. } | Message::Fetch { .. } | Message::Certified { .. } | Message::SyncRequest { .. } => {
                false
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Message::Val { .. } => "val",
            Message::Echo { .. } => "echo",
            Message::Cert { .. } => "cert",
            Message::Aba { .. } => "aba",
            Message::Fetch { .. } => "fetch",
            Message::Certified { .. } => "certified",
            Message::SyncRequest { .. } => "sync-request",
            Message::Sync { .. } => "sync",
        }
    }
}

/// What an echo share signs.
pub fn echo_statement(instance: &Hash32, epoch: u64, proposer: u32, digest: &Hash32) -> Vec<u8> {
    encode(&("gridledger/lbft/echo/v1", instance, epoch, proposer, digest))
}

/// What a coin share signs.
pub fn coin_statement(instance: &Hash32, epoch: u64, aba: u32, round: u32) -> Vec<u8> {
    encode(&("gridledger/lbft/coin/v1", instance, epoch, aba, round))
}
