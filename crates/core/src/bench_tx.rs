//! The benchmark transaction both ordering layers are measured with: our
//! leaderless BFT (`gridledger bench lbft`) and the aleph-bft peer driver
//! under `peers/aleph-bft/`. Keeping the format and the generator here
//! means the two are fed byte-for-byte the same load.
//!
//! A transaction is 300 bytes when encoded: the client's submit time (µs
//! since the Unix epoch, so latency is measured from submission on any
//! process of one machine), the client index, a per-client counter,
//! padding, and an Ed25519 signature over a tagged digest of the rest
//! (all zero for opaque load, where only ordering is measured), checked in
//! batches ([`crate::ed25519::verify_batch`]).

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::{encode, hash_bytes, Tag};
use crate::ed25519::{verify_batch, EdItem, EdKeyPair, EdPublicKey, EdSignature};
use crate::Hash32;

/// Encoded size of every benchmark transaction.
pub const TX_BYTES: usize = 300;

/// One benchmark transaction.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BenchTx {
    /// Submit time, µs since the Unix epoch.
    pub submitted_us: u64,
    /// Which client made it (index into [`client_key`]).
    pub client: u32,
    /// The client's counter: (client, counter) is unique per run.
    pub counter: u64,
    /// Zero padding up to [`TX_BYTES`].
    pub pad: Vec<u8>,
    /// Signature over [`signed_digest`]; all zero when opaque.
    pub sig: EdSignature,
}

/// The deterministic key of benchmark client `i` (every process derives
/// the same keys, so no key exchange is needed).
pub fn client_key(i: u32) -> EdKeyPair {
    EdKeyPair::from_seed(&format!("gridledger-lbft-bench-client-{i}"))
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// What the client signs.
pub fn signed_digest(t: &BenchTx) -> Hash32 {
    hash_bytes(Tag("gridledger/lbft-bench-tx/v1"), &encode(&(t.submitted_us, t.client, t.counter, &t.pad)))
}

/// Padding that makes an encoded transaction exactly [`TX_BYTES`] long.
pub fn pad_len() -> usize {
    let probe = BenchTx { submitted_us: 0, client: 0, counter: 0, pad: Vec::new(), sig: EdSignature([0; 64]) };
    TX_BYTES.saturating_sub(encode(&probe).len())
}

/// A fresh encoded transaction of `client`, stamped now; unsigned (zero
/// signature) when `opaque`.
pub fn make_tx(key: &EdKeyPair, client: u32, counter: u64, opaque: bool) -> Vec<u8> {
    let mut t =
        BenchTx { submitted_us: now_us(), client, counter, pad: vec![0u8; pad_len()], sig: EdSignature([0; 64]) };
    if !opaque {
        t.sig = key.sign(&signed_digest(&t).0);
    }
    encode(&t)
}

/// Decodes what parses as a benchmark transaction; anything else is
/// skipped (a Byzantine proposer's garbage is not a transaction).
pub fn parse(raw: &[Vec<u8>]) -> Vec<BenchTx> {
    raw.iter().filter_map(|t| borsh::from_slice::<BenchTx>(t).ok()).collect()
}

/// Checks every transaction's signature once (batched); returns how many
/// failed, counting a transaction of an unknown client as failed.
pub fn count_bad_signatures(txs: &[BenchTx], client_keys: &[EdPublicKey]) -> u64 {
    let digests: Vec<Hash32> = txs.iter().map(signed_digest).collect();
    let mut unknown = 0u64;
    let items: Vec<EdItem<'_>> = txs
        .iter()
        .zip(&digests)
        .filter_map(|(t, dg)| match client_keys.get(t.client as usize) {
            Some(pk) => Some(EdItem { pk, msg: &dg.0, sig: &t.sig }),
            None => {
                unknown += 1;
                None
            }
        })
        .collect();
    unknown + verify_batch(&items).ok.iter().filter(|ok| !**ok).count() as u64
}

/// The `p` quantile (0..=1) of sorted microsecond samples, in ms.
pub fn percentile_ms(sorted_us: &[u64], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i.min(sorted_us.len() - 1)] as f64 / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transaction_is_exactly_tx_bytes_long() {
        for opaque in [true, false] {
            assert_eq!(make_tx(&client_key(3), 3, 7, opaque).len(), TX_BYTES);
        }
    }

    #[test]
    fn signed_transactions_verify_and_tampered_or_opaque_ones_do_not() {
        let keys: Vec<EdPublicKey> = (0..2).map(|i| client_key(i).public()).collect();
        let good = parse(&[make_tx(&client_key(1), 1, 0, false)]);
        assert_eq!(count_bad_signatures(&good, &keys), 0);
        let mut tampered = good.clone();
        tampered[0].counter += 1;
        assert_eq!(count_bad_signatures(&tampered, &keys), 1);
        let opaque = parse(&[make_tx(&client_key(0), 0, 0, true)]);
        assert_eq!(count_bad_signatures(&opaque, &keys), 1);
        let mut stranger = good;
        stranger[0].client = 9;
        assert_eq!(count_bad_signatures(&stranger, &keys), 1, "an unknown client counts as bad");
    }

    #[test]
    fn garbage_is_not_parsed_as_a_transaction() {
        assert!(parse(&[vec![1, 2, 3]]).is_empty());
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let v = [1_000, 2_000, 3_000, 4_000, 5_000];
        assert_eq!(percentile_ms(&v, 0.5), 3.0);
        assert_eq!(percentile_ms(&v, 1.0), 5.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
