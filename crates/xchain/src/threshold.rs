//! Threshold accounts (thesis §5.2.6, §5.4.2 Π_CCTC step (i), §5.5.1): the
//! BoB validators jointly hold a BLS12-381 threshold key (`gridledger-threshold`);
//! 2f+1 shares make one signature verifiable under the group public key, and
//! that key owns one account `TPK_Addr_i` on every external chain BC_i.
//!
//! Setup is the trusted dealer of `gridledger-threshold` ([`BobCommittee::deal`]):
//! whoever deals learns the secret and must erase it; a DKG is not built.
//!
//! Locking tokens for the BoB (Π_CCTC step (ii)) is an ordinary transfer to
//! `TPK_Addr_i`, so the external chain needs nothing but its usual signature
//! check (script-minimum). The address is derived from the group key's
//! canonical bytes and the chain id, so it differs per chain and nobody
//! holds a secp256k1 key for it: value sent there is spendable only by the
//! group. On a chain that runs CCDI's SC_BG, `TPK_Addr_i` is SC_BG's account
//! instead (still reached by an ordinary transfer), and SC_BG pays out of it
//! on a release order the group signs ([`crate::scbg`]): claimed tokens
//! burned on the BoB (`redeem`) come back on their chain, and a lock nobody
//! claimed while the BoB kept its header is paid back to its sender
//! (`refund_lock`). On a chain without contracts, coin locked there stays
//! locked (script-minimum leaves nothing to check a group signature).
//!
//! Every statement the group signs is bound to a domain, the deployment
//! ([`Instance`]: the BoB's genesis hash and contract, the target chain's
//! genesis hash), the target chain and a sequence number ([`Statement`]), so
//! a threshold signature for one chain, purpose, round or deployment never
//! verifies for another (replay) — even where a committee reuses its key for
//! a second BoB or a chain id is reused.
//!
//! **Key reuse (attack R4-7):** `TPK_Addr_i` binds the deployment too
//! ([`tpk_address`] hashes the group key, the BoB's genesis hash and the
//! chain id), so two BoB deployments whose committees share one group key
//! and follow the same external chain have different `TPK_Addr_i`: a
//! Π_CCTC lock (a plain transfer to one of them) can be claimed on one
//! deployment only.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{encode, hash_parts, Tag};
use gridledger_core::{Address, ChainId, ContractId, Hash32};
use gridledger_threshold::{deal, KeyShare, PublicKeySet, Signature, SignatureShare, ThresholdError};
use std::collections::BTreeMap;

/// Domain tag of threshold-account addresses.
pub const TPK_ADDRESS: Tag = Tag("gridledger/xchain/tpk-address/v1");
/// Domain of every statement the BoB committee signs.
pub const STATEMENT_DOMAIN: &[u8] = b"gridledger/xchain/group-statement/v1";

/// `TPK_Addr_i`: the threshold account of the group key on chain `chain`
/// for the BoB deployment `deployment` (the hash of its genesis): a group
/// key reused by a second deployment owns other addresses there.
pub fn tpk_address(group_key: &[u8], deployment: &Hash32, chain: ChainId) -> Address {
    let h = hash_parts(TPK_ADDRESS, &[group_key, &deployment.0, &chain.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

/// The deployment a group statement acts in: the BoB instance that
/// recorded it (its genesis hash and the contract) and the instance of the
/// chain it acts on (that chain's genesis hash). A verifier on an external
/// chain is configured with its `Instance`, as with the group key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Instance {
    pub bob: Hash32,
    pub bob_contract: ContractId,
    pub target: Hash32,
}

/// What the committee signs: the deployment, a purpose, the chain it acts
/// on, a sequence number the verifier tracks, and the payload.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Statement {
    pub instance: Instance,
    pub purpose: String,
    pub chain: ChainId,
    pub sequence: u64,
    pub payload: Vec<u8>,
}

impl Statement {
    pub fn bytes(&self) -> Vec<u8> {
        encode(self)
    }
}

/// The BoB validators' threshold key: `n` members, `2f + 1` shares needed.
pub struct BobCommittee {
    pub set: PublicKeySet,
    shares: Vec<KeyShare>,
}

impl BobCommittee {
    /// Deals a `(2f+1)`-of-`n` key (`f = ⌊(n−1)/3⌋`) with a trusted dealer.
    pub fn deal<R: rand::RngCore + rand::CryptoRng + ?Sized>(n: usize, rng: &mut R) -> Result<Self, ThresholdError> {
        let f = n.saturating_sub(1) / 3;
        let (set, shares) = deal(n, 2 * f + 1, rng)?;
        Ok(Self { set, shares })
    }

    /// A reproducible committee for demos, tests and simulations.
    pub fn dev(n: usize, seed: u64) -> Result<Self, ThresholdError> {
        use rand::SeedableRng;
        Self::deal(n, &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    pub fn group_key_bytes(&self) -> Vec<u8> {
        self.set.group_key().to_bytes().to_vec()
    }

    /// Member `index`'s share of the signature on `st`.
    pub fn sign_share(&self, index: usize, st: &Statement) -> Option<SignatureShare> {
        self.shares.get(index).map(|k| k.sign_share(STATEMENT_DOMAIN, &st.bytes()))
    }

    /// Member `index`'s share of a signature on raw `msg` under `domain`.
    pub fn sign_share_raw(&self, index: usize, domain: &[u8], msg: &[u8]) -> Option<SignatureShare> {
        self.shares.get(index).map(|k| k.sign_share(domain, msg))
    }

    /// The group signature on `msg` from the shares the members `signers`
    /// hand in (`shares`: what each of them sent). Shares that do not
    /// verify and shares from non-members are dropped; of several shares
    /// claiming one index the first *valid* one counts (a spoofed share
    /// cannot displace the real one); it succeeds once 2f+1 valid ones
    /// combine.
    ///
    /// Optimistic ([`PublicKeySet::combine_verified`]): the first 2f+1
    /// shares are combined and the signature verified with one pairing
    /// check; shares are checked (in one batch, then one by one) only when
    /// that fails. Checking each share first cost one pairing per share.
    pub fn combine_raw(
        &self,
        domain: &[u8],
        msg: &[u8],
        shares: &[(usize, SignatureShare)],
    ) -> Result<Signature, ThresholdError> {
        self.set.combine_verified(domain, msg, shares)
    }

    /// The members' shares on `st` from the given indices.
    pub fn shares_from(&self, indices: &[usize], st: &Statement) -> Vec<(usize, SignatureShare)> {
        indices.iter().filter_map(|i| self.sign_share(*i, st).map(|s| (*i, s))).collect()
    }
}

/// Collects shares on one statement until 2f+1 valid ones combine
/// (sans-IO: shares come in, a signature comes out). A share from a
/// non-member, one that does not verify, or a second one from the same
/// member is refused with a typed error and changes nothing.
pub struct ShareCollector<'a> {
    set: &'a PublicKeySet,
    msg: Vec<u8>,
    shares: BTreeMap<usize, SignatureShare>,
    done: Option<Signature>,
}

impl<'a> ShareCollector<'a> {
    pub fn new(set: &'a PublicKeySet, st: &Statement) -> Self {
        Self { set, msg: st.bytes(), shares: BTreeMap::new(), done: None }
    }

    pub fn len(&self) -> usize {
        self.shares.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    /// The group signature, once 2f+1 valid shares combined.
    pub fn signature(&self) -> Option<Signature> {
        self.done
    }

    /// Adds one member's share; returns the group signature once there are
    /// enough (and for every later valid share).
    ///
    /// A share from a non-member (`NotAMember`), one that does not verify
    /// (`InvalidShare`) or a member's second share (`DuplicateShare`) is
    /// refused before and after the signature exists (attack R4-9: once
    /// combined, `add` used to return `Ok` for anything); the signature
    /// stays available through [`signature`](Self::signature).
    pub fn add(&mut self, index: usize, share: SignatureShare) -> Result<Option<Signature>, ThresholdError> {
        if self.shares.contains_key(&index) {
            return Err(ThresholdError::DuplicateShare(index));
        }
        self.set.verify_share(index, STATEMENT_DOMAIN, &self.msg, &share)?;
        self.shares.insert(index, share);
        if let Some(sig) = &self.done {
            return Ok(Some(*sig));
        }
        if self.shares.len() < self.set.threshold() {
            return Ok(None);
        }
        let list: Vec<(usize, SignatureShare)> = self.shares.iter().map(|(i, s)| (*i, *s)).collect();
        let sig = self.set.combine(&list)?;
        self.set.verify(STATEMENT_DOMAIN, &self.msg, &sig)?;
        self.done = Some(sig);
        Ok(Some(sig))
    }
}

/// A verifier of group statements that refuses replays: it accepts each
/// `(purpose, chain)` sequence number exactly once and in order, as an
/// external chain's contract checking the group's orders would, and only
/// statements of its own deployment ([`Instance`], configured with
/// [`new`](Self::new); `default()` guards `Instance::default()`).
#[derive(Clone, Debug, Default)]
pub struct StatementVerifier {
    instance: Instance,
    next: BTreeMap<(String, ChainId), u64>,
}

/// Why a group statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("statement for chain {got}, this verifier is chain {expected}")]
    WrongChain { expected: ChainId, got: ChainId },
    #[error("statement for another deployment")]
    WrongInstance { expected: Box<Instance>, got: Box<Instance> },
    #[error("replayed or out-of-order statement: sequence {got}, expected {expected}")]
    Replayed { expected: u64, got: u64 },
    #[error(transparent)]
    Signature(#[from] ThresholdError),
}

impl StatementVerifier {
    /// A verifier guarding the deployment `instance`.
    pub fn new(instance: Instance) -> Self {
        Self { instance, next: BTreeMap::new() }
    }

    /// Accepts `st` signed by the group if it is for this deployment and
    /// `chain` and carries the next sequence number; otherwise nothing
    /// changes.
    pub fn accept(
        &mut self,
        group: &gridledger_threshold::GroupKey,
        chain: ChainId,
        st: &Statement,
        sig: &Signature,
    ) -> Result<(), StatementError> {
        if st.instance != self.instance {
            return Err(StatementError::WrongInstance {
                expected: Box::new(self.instance),
                got: Box::new(st.instance),
            });
        }
        if st.chain != chain {
            return Err(StatementError::WrongChain { expected: chain, got: st.chain });
        }
        let key = (st.purpose.clone(), st.chain);
        let expected = self.next.get(&key).copied().unwrap_or(0);
        if st.sequence != expected {
            return Err(StatementError::Replayed { expected, got: st.sequence });
        }
        group.verify(STATEMENT_DOMAIN, &st.bytes(), sig)?;
        self.next.insert(key, expected + 1);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differ_per_chain_and_key() {
        let (d1, d2) = (Hash32([1; 32]), Hash32([2; 32]));
        let a = tpk_address(b"group-1", &d1, 1);
        assert_ne!(a, tpk_address(b"group-1", &d1, 2));
        assert_ne!(a, tpk_address(b"group-2", &d1, 1));
        assert_ne!(a, tpk_address(b"group-1", &d2, 1), "a reused key owns other addresses in another deployment");
        assert_eq!(a, tpk_address(b"group-1", &d1, 1));
    }
}
