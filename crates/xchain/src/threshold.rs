//! Threshold accounts (thesis §5.2.6, §5.4.2 Π_CCTC step (i), §5.5.1): the
//! BoB validators jointly hold a BLS12-381 threshold key; its group public
//! key owns one account `TPK_Addr_i` on every external chain BC_i.
//!
//! Locking tokens for the BoB (Π_CCTC step (ii)) is an ordinary transfer to
//! `TPK_Addr_i`, so the external chain needs nothing but its usual
//! signature check (script-minimum). The address is derived from the group
//! key's canonical bytes and the chain id, so it is distinct per chain and
//! nobody holds a secp256k1 key for it: only the group (2f+1 shares) can
//! ever authorise spending from it.
//!
//! The signing side sits behind [`GroupKey`], so the BoB contracts do not
//! depend on one threshold-signature implementation.

use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::{Address, ChainId};

/// Domain tag of threshold-account addresses.
pub const TPK_ADDRESS: Tag = Tag("gridledger/xchain/tpk-address/v1");

/// A group public key: verifies full threshold signatures.
pub trait GroupKey: Send + Sync {
    /// Canonical bytes of the group public key.
    fn key_bytes(&self) -> Vec<u8>;
    /// True iff `sig` is a valid group signature over `msg` in `domain`.
    fn verify(&self, domain: &[u8], msg: &[u8], sig: &[u8]) -> bool;
}

/// `TPK_Addr_i`: the threshold account of the group key on chain `chain`.
pub fn tpk_address(group_key: &[u8], chain: ChainId) -> Address {
    let h = hash_parts(TPK_ADDRESS, &[group_key, &chain.to_le_bytes()]);
    let mut a = [0u8; 20];
    a.copy_from_slice(&h.0[12..]);
    Address(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_differ_per_chain_and_key() {
        let a = tpk_address(b"group-1", 1);
        assert_ne!(a, tpk_address(b"group-1", 2));
        assert_ne!(a, tpk_address(b"group-2", 1));
        assert_eq!(a, tpk_address(b"group-1", 1));
    }
}
