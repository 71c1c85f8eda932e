//! PBFT wire messages, signed digests and certificates (thesis §3.3.2,
//! Fig. 3-3). Every vote is an ECDSA (secp256k1) signature over a
//! `hash_tagged` digest with its own [`Tag`], bound to the consensus
//! instance (e.g. the genesis hash), so a vote can never be replayed on
//! another chain or as another kind of vote.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{decode, encode, hash_tagged, CodecError, Tag};
use gridledger_core::crypto::{verify, KeyPair};
use gridledger_core::{Hash32, PublicKey, Signature};
use std::collections::BTreeSet;
use std::fmt::Debug;

/// Domain tags of everything PBFT signs.
pub mod tags {
    use gridledger_core::codec::Tag;
    /// The leader's signed proposal (thesis §3.3.2 step 2).
    pub const PRE_PREPARE: Tag = Tag("gridledger/pbft/pre-prepare/v1");
    /// The "signature package" of step 2/3.
    pub const PREPARE: Tag = Tag("gridledger/pbft/prepare/v1");
    /// The commit message of step 4.
    pub const COMMIT: Tag = Tag("gridledger/pbft/commit/v1");
    /// The "view update" of step 4/5, generalised to a PBFT view change.
    pub const VIEW_CHANGE: Tag = Tag("gridledger/pbft/view-change/v1");
}

/// What PBFT agrees on: a block, abstracted so the core can be driven by
/// `gridledger_ledger::Block` in a node and by a toy block in the simulator.
///
/// Cheap, self-contained checks go in [`Payload::well_formed`] (e.g. "the
/// transaction hashes match the header's root", thesis §3.3.2 step 2);
/// checks that need chain state (execution, parent link) are asked of the
/// caller through [`crate::pbft::ValidateRequest`].
pub trait Payload: Clone + Debug + PartialEq + BorshSerialize + BorshDeserialize {
    /// The block hash that votes sign.
    fn digest(&self) -> Hash32;
    /// An empty block triggers the thesis' "view update" (§3.3.2 step 4).
    fn is_empty(&self) -> bool;
    /// Structural validity, independent of chain state.
    fn well_formed(&self) -> Result<(), String>;
}

/// Which vote a signature is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum VoteKind {
    Prepare,
    Commit,
}

impl VoteKind {
    fn tag(self) -> Tag {
        match self {
            VoteKind::Prepare => tags::PREPARE,
            VoteKind::Commit => tags::COMMIT,
        }
    }
}

/// Digest the leader signs in a pre-prepare.
pub fn pre_prepare_digest(instance: &Hash32, view: u64, height: u64, block: &Hash32) -> Hash32 {
    hash_tagged(tags::PRE_PREPARE, &(instance, view, height, block))
}

/// Digest a prepare or commit vote signs.
pub fn vote_digest(kind: VoteKind, instance: &Hash32, view: u64, height: u64, block: &Hash32) -> Hash32 {
    hash_tagged(kind.tag(), &(instance, view, height, block))
}

/// Digest a view change signs: the target view, the height and the
/// (view, block hash) of the prepared certificate it carries, if any.
pub fn view_change_digest(instance: &Hash32, new_view: u64, height: u64, prepared: Option<(u64, Hash32)>) -> Hash32 {
    hash_tagged(tags::VIEW_CHANGE, &(instance, new_view, height, prepared))
}

/// The validator set `R` of thesis §3.3.2, taken from genesis, with the
/// quorum size. For `|R| = 3f + 1` the quorum is the thesis' `2f + 1`; for
/// other sizes it is `⌈(|R| + f + 1) / 2⌉`, the smallest size for which any
/// two quorums share an honest validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    /// Identifies the consensus instance (e.g. the genesis hash); bound into
    /// every signed digest.
    pub instance: Hash32,
    keys: Vec<PublicKey>,
}

/// A validator set that cannot run PBFT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the validator set is empty")]
    Empty,
    #[error("more than {max} validators")]
    TooMany { max: usize },
    #[error("validator index {0} is out of range")]
    BadIndex(u32),
    #[error("the signing key is not validator {0}'s key")]
    KeyMismatch(u32),
    #[error("duplicate validator key at index {0}")]
    DuplicateKey(u32),
    #[error("the base timeout must be positive")]
    ZeroTimeout,
}

/// Upper bound on validators, so index vectors in messages stay bounded.
pub const MAX_VALIDATORS: usize = 1024;

impl ValidatorSet {
    /// Builds the set from genesis' validator list (index order = genesis order).
    pub fn new(instance: Hash32, keys: Vec<PublicKey>) -> Result<Self, ConfigError> {
        if keys.is_empty() {
            return Err(ConfigError::Empty);
        }
        if keys.len() > MAX_VALIDATORS {
            return Err(ConfigError::TooMany { max: MAX_VALIDATORS });
        }
        let mut seen = BTreeSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !seen.insert(*k) {
                return Err(ConfigError::DuplicateKey(i as u32));
            }
        }
        Ok(Self { instance, keys })
    }

    /// `|R|`.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The largest `f` with `|R| >= 3f + 1`.
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Votes needed for a certificate (`2f + 1` when `|R| = 3f + 1`).
    pub fn quorum(&self) -> usize {
        (self.len() + self.max_faulty() + 2) / 2
    }

    pub fn key(&self, index: u32) -> Option<&PublicKey> {
        self.keys.get(index as usize)
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Eq. (3.4): `ID_lead = (view + BN) mod |R|` (0-based indices here,
    /// where the thesis counts from 1).
    pub fn leader(&self, view: u64, height: u64) -> u32 {
        let n = self.len() as u128;
        ((view as u128 + height as u128) % n) as u32
    }

    /// Checks that `sigs` are at least a quorum of valid signatures over
    /// `digest` by distinct validators.
    pub fn verify_quorum(&self, digest: &Hash32, sigs: &[(u32, Signature)]) -> Result<(), CertError> {
        let mut seen = BTreeSet::new();
        for (i, sig) in sigs {
            if !seen.insert(*i) {
                return Err(CertError::DuplicateSigner(*i));
            }
            let pk = self.key(*i).ok_or(CertError::UnknownSigner(*i))?;
            verify(pk, digest, sig).map_err(|_| CertError::BadSignature(*i))?;
        }
        if seen.len() < self.quorum() {
            return Err(CertError::NoQuorum { have: seen.len(), need: self.quorum() });
        }
        Ok(())
    }
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("signer {0} appears twice")]
    DuplicateSigner(u32),
    #[error("signer {0} is not a validator")]
    UnknownSigner(u32),
    #[error("signature of validator {0} does not verify")]
    BadSignature(u32),
    #[error("{have} signatures, {need} needed")]
    NoQuorum { have: usize, need: usize },
    #[error("certificate is for height {got}, expected {expected}")]
    WrongHeight { got: u64, expected: u64 },
    #[error("certificate's block hash does not match its block")]
    HashMismatch,
    #[error("prepared certificate from view {cert_view} cannot justify view {new_view}")]
    ViewOrder { cert_view: u64, new_view: u64 },
}

/// Step 2: the leader's signed proposal for `(view, height)`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PrePrepare<P> {
    pub view: u64,
    pub height: u64,
    pub payload: P,
    pub signature: Signature,
}

impl<P: Payload> PrePrepare<P> {
    pub fn sign(key: &KeyPair, instance: &Hash32, view: u64, height: u64, payload: P) -> Self {
        let signature = key.sign(&pre_prepare_digest(instance, view, height, &payload.digest()));
        Self { view, height, payload, signature }
    }

    pub fn verify(&self, set: &ValidatorSet) -> bool {
        let leader = set.leader(self.view, self.height);
        set.key(leader).is_some_and(|pk| {
            let d = pre_prepare_digest(&set.instance, self.view, self.height, &self.payload.digest());
            verify(pk, &d, &self.signature).is_ok()
        })
    }
}

/// Steps 2–4: a prepare ("signature package") or commit vote. The signer
/// is the sending validator.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub view: u64,
    pub height: u64,
    pub block: Hash32,
    pub signature: Signature,
}

impl Vote {
    pub fn sign(key: &KeyPair, kind: VoteKind, instance: &Hash32, view: u64, height: u64, block: Hash32) -> Self {
        let signature = key.sign(&vote_digest(kind, instance, view, height, &block));
        Self { view, height, block, signature }
    }
}

/// Proof that a quorum prepared `payload` in `view`: carried through view
/// changes so a block that may have been committed is re-proposed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PreparedCert<P> {
    pub view: u64,
    pub height: u64,
    pub payload: P,
    pub prepares: Vec<(u32, Signature)>,
}

impl<P: Payload> PreparedCert<P> {
    pub fn verify(&self, set: &ValidatorSet, height: u64) -> Result<(), CertError> {
        if self.height != height {
            return Err(CertError::WrongHeight { got: self.height, expected: height });
        }
        let d = vote_digest(VoteKind::Prepare, &set.instance, self.view, self.height, &self.payload.digest());
        set.verify_quorum(&d, &self.prepares)
    }
}

/// A commit certificate: a quorum of commit votes for one block at one
/// height in one view. It proves the block is final.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct QuorumCert {
    pub view: u64,
    pub height: u64,
    pub block: Hash32,
    pub signatures: Vec<(u32, Signature)>,
}

impl QuorumCert {
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), CertError> {
        let d = vote_digest(VoteKind::Commit, &set.instance, self.view, self.height, &self.block);
        set.verify_quorum(&d, &self.signatures)
    }
}

/// A committed block with the certificate that finalised it: what a node
/// persists, and what catch-up ships.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommittedEntry<P> {
    pub payload: P,
    pub cert: QuorumCert,
}

impl<P: Payload> CommittedEntry<P> {
    /// Checks the certificate against the block and the validator set.
    pub fn verify(&self, set: &ValidatorSet, height: u64) -> Result<(), CertError> {
        if self.cert.height != height {
            return Err(CertError::WrongHeight { got: self.cert.height, expected: height });
        }
        if self.cert.block != self.payload.digest() {
            return Err(CertError::HashMismatch);
        }
        self.cert.verify(set)
    }
}

/// The thesis' "view update" (§3.3.2 steps 4–5), in PBFT form: a signed
/// request to move to `new_view` at `height`, carrying the sender's highest
/// prepared certificate for that height.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ViewChange<P> {
    pub new_view: u64,
    pub height: u64,
    pub prepared: Option<PreparedCert<P>>,
    pub signer: u32,
    pub signature: Signature,
}

impl<P: Payload> ViewChange<P> {
    pub fn sign(
        key: &KeyPair,
        signer: u32,
        instance: &Hash32,
        new_view: u64,
        height: u64,
        prepared: Option<PreparedCert<P>>,
    ) -> Self {
        let summary = prepared.as_ref().map(|c| (c.view, c.payload.digest()));
        let signature = key.sign(&view_change_digest(instance, new_view, height, summary));
        Self { new_view, height, prepared, signer, signature }
    }

    /// Checks the signature and the carried certificate.
    pub fn verify(&self, set: &ValidatorSet) -> Result<(), ViewChangeError> {
        let pk = set.key(self.signer).ok_or(ViewChangeError::BadSignature)?;
        let summary = self.prepared.as_ref().map(|c| (c.view, c.payload.digest()));
        let d = view_change_digest(&set.instance, self.new_view, self.height, summary);
        verify(pk, &d, &self.signature).map_err(|_| ViewChangeError::BadSignature)?;
        if let Some(c) = &self.prepared {
            if c.view >= self.new_view {
                return Err(ViewChangeError::Cert(CertError::ViewOrder { cert_view: c.view, new_view: self.new_view }));
            }
            c.verify(set, self.height).map_err(ViewChangeError::Cert)?;
        }
        Ok(())
    }
}

/// Why a view change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewChangeError {
    #[error("view-change signature does not verify")]
    BadSignature,
    #[error("forged prepared certificate: {0}")]
    Cert(CertError),
}

/// The new leader's proof that a quorum left the old view, plus its
/// proposal, which must re-propose the highest prepared block if any.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct NewView<P> {
    pub view: u64,
    pub height: u64,
    pub view_changes: Vec<ViewChange<P>>,
    pub pre_prepare: PrePrepare<P>,
}

/// Everything replicas send each other.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Message<P> {
    PrePrepare(PrePrepare<P>),
    Prepare(Vote),
    Commit(Vote),
    ViewChange(ViewChange<P>),
    NewView(NewView<P>),
    /// A lagging or restarted replica asks for committed blocks from `from_height` on.
    CatchUpRequest {
        from_height: u64,
    },
    /// Committed blocks with their commit certificates, in height order.
    CatchUpResponse {
        entries: Vec<CommittedEntry<P>>,
    },
}

/// Why bytes from the wire were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("message exceeds structural bounds: {0}")]
    OutOfBounds(&'static str),
}

impl<P: Payload> Message<P> {
    /// The height a consensus message is about (`None` for catch-up).
    pub fn height(&self) -> Option<u64> {
        match self {
            Message::PrePrepare(p) => Some(p.height),
            Message::Prepare(v) | Message::Commit(v) => Some(v.height),
            Message::ViewChange(v) => Some(v.height),
            Message::NewView(v) => Some(v.height),
            Message::CatchUpRequest { .. } | Message::CatchUpResponse { .. } => None,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a message of at most `max_bytes`, and checks that no list in
    /// it is longer than `validators` (signatures, view changes) or
    /// `max_entries` (catch-up). Never panics.
    pub fn from_bytes(
        bytes: &[u8],
        max_bytes: usize,
        validators: usize,
        max_entries: usize,
    ) -> Result<Self, DecodeError> {
        let m: Self = decode(bytes, max_bytes)?;
        m.check_bounds(validators, max_entries)?;
        Ok(m)
    }

    /// Structural bounds, also applied to messages that never were bytes.
    pub fn check_bounds(&self, validators: usize, max_entries: usize) -> Result<(), DecodeError> {
        let cert_ok = |c: &Option<PreparedCert<P>>| c.as_ref().is_none_or(|c| c.prepares.len() <= validators);
        let ok = match self {
            Message::PrePrepare(_) | Message::Prepare(_) | Message::Commit(_) => true,
            Message::CatchUpRequest { .. } => true,
            Message::ViewChange(v) => cert_ok(&v.prepared),
            Message::NewView(nv) => {
                nv.view_changes.len() <= validators && nv.view_changes.iter().all(|v| cert_ok(&v.prepared))
            }
            Message::CatchUpResponse { entries } => {
                entries.len() <= max_entries && entries.iter().all(|e| e.cert.signatures.len() <= validators)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(DecodeError::OutOfBounds("list longer than the validator set or batch limit"))
        }
    }
}
