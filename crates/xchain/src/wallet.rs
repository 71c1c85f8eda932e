//! A receiver's wallet record of the terms it signed (attack R8-5).
//!
//! SC_MPV takes as the sender's payment exactly the nonce its terms name
//! ([`CctTerms::nonce_i`]), and a nonce is spent once on its chain, so one
//! transfer of the sender pays one set of terms. Two BoB deployments that
//! follow the same chain cannot see each other's records, though: had the
//! receiver signed two sets of terms naming the same (payer, chain, nonce)
//! — one per deployment — one transfer would prove the sender's side on
//! both and the receiver would be paid once for two exchanges. The
//! receiver's wallet therefore keeps, durably and across every deployment
//! it trades on, the (payer, chain, nonce) of every set of terms it signed,
//! and refuses to sign a second set with the same triple
//! ([`WalletError::NonceAlreadyAgreed`]). Signing the same terms again (a
//! driver that restarted) is allowed.
//!
//! A triple is given back ([`TermsRegistry::release`]) once the CCT of the
//! terms it was signed for can never be proved any more: the CCT is
//! complete on its deployment (SC_MPV refuses every proof then). A payment
//! with that nonce can then pay one other set of terms; one that was
//! already made has spent the nonce, and the receiver's own nonce check
//! ([`crate::mbs::BobMbs::check_floors`], `StaleFloor`) refuses terms
//! naming it.
//!
//! One file per triple, `<dir>/<chain>-<payer>-<nonce>`, holding the id of
//! the terms (which commits to their deployment). An entry is written to a
//! temporary file, `fsync`ed and hard-linked into place (which fails if the
//! triple is taken: the check and the record are one step), then the
//! directory is `fsync`ed; a crash never leaves a torn entry.

use std::io::Write;
use std::path::{Path, PathBuf};

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, ChainId, Hash32, Signature};

use crate::bob::CctTerms;

/// A wallet whose registry cannot be written or read, or that refuses terms.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet registry {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The wallet already signed other terms naming this payer's nonce on
    /// this chain (`other`: their id, `None` if the entry does not read):
    /// one transfer would pay both.
    #[error("the wallet already signed terms {other:?} that name payer {payer}'s nonce {nonce} on chain {chain}")]
    NonceAlreadyAgreed { chain: ChainId, payer: Address, nonce: u64, other: Option<Hash32> },
    /// The key asked to sign is not the terms' receiver.
    #[error("the signing key is not the terms' receiver")]
    NotReceiver,
}

/// The receiver's durable registry of (payer, chain, nonce) triples it
/// signed terms for. Share one directory between every deployment the
/// receiver trades on.
#[derive(Clone, Debug)]
pub struct TermsRegistry {
    dir: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TermsRegistry {
    /// Opens (creating it if needed) the registry in `dir`.
    pub fn open(dir: &Path) -> Result<Self, WalletError> {
        std::fs::create_dir_all(dir).map_err(|source| WalletError::Io { path: dir.to_path_buf(), source })?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, terms: &CctTerms) -> PathBuf {
        self.dir.join(format!("{}-{}-{}", terms.chain_i, hex(&terms.sender_i.0), terms.nonce_i))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError {
        let path = path.to_path_buf();
        move |source| WalletError::Io { path, source }
    }

    /// Records that the receiver agrees to `terms`: refused if it already
    /// agreed to other terms naming the same sender nonce on the same chain.
    pub fn agree(&self, terms: &CctTerms) -> Result<(), WalletError> {
        let path = self.entry(terms);
        let id = terms.id();
        let tmp = self.dir.join(format!(".tmp-{}", id.to_hex()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(Self::io(&tmp))?;
            f.write_all(&id.0).map_err(Self::io(&tmp))?;
            f.sync_all().map_err(Self::io(&tmp))?;
        }
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Self::io(&self.dir))?;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let other = self.holder(&path)?;
                if other == Some(id) {
                    return Ok(());
                }
                Err(WalletError::NonceAlreadyAgreed {
                    chain: terms.chain_i,
                    payer: terms.sender_i,
                    nonce: terms.nonce_i,
                    other,
                })
            }
            Err(source) => Err(WalletError::Io { path, source }),
        }
    }

    fn holder(&self, path: &Path) -> Result<Option<Hash32>, WalletError> {
        let bytes = std::fs::read(path).map_err(Self::io(path))?;
        Ok(<[u8; 32]>::try_from(bytes.as_slice()).ok().map(Hash32))
    }

    /// The receiver's signature on `terms` for the BoB chain `bob_chain`,
    /// once [`agree`](Self::agree) recorded them.
    pub fn sign(&self, receiver: &KeyPair, terms: &CctTerms, bob_chain: ChainId) -> Result<Signature, WalletError> {
        if receiver.public() != terms.receiver_pk {
            return Err(WalletError::NotReceiver);
        }
        self.agree(terms)?;
        Ok(receiver.sign(&terms.digest(bob_chain)))
    }

    /// Gives back the triple `terms` hold, if they hold it. Call only once
    /// their CCT is complete on its deployment (no proof can count for it
    /// any more). Returns whether an entry was removed.
    pub fn release(&self, terms: &CctTerms) -> Result<bool, WalletError> {
        let path = self.entry(terms);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(WalletError::Io { path, source }),
            Ok(b) if b != terms.id().0 => return Ok(false),
            Ok(_) => {}
        }
        std::fs::remove_file(&path).map_err(Self::io(&path))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Self::io(&self.dir))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_ledger::devnet::dev_key;

    fn terms(salt: u64, nonce_i: u64) -> CctTerms {
        let (s, r) = (dev_key(0), dev_key(1));
        CctTerms {
            deployment: Hash32([7; 32]),
            chain_i: 11,
            chain_j: 12,
            sender_i: s.address(),
            sender_j: s.address(),
            sender_b: s.address(),
            receiver_i: r.address(),
            receiver_j: r.address(),
            receiver_pk: r.public(),
            x_j: 100,
            min_x_i: 90,
            max_x_i: 110,
            min_x_b: 10,
            expires_at: 20,
            salt,
            nonce_i,
            nonce_floor_j: 0,
        }
    }

    #[test]
    fn one_set_of_terms_per_sender_nonce_across_reopens_until_released() {
        let d = tempfile::tempdir().unwrap();
        let w = TermsRegistry::open(d.path()).unwrap();
        let (a, b) = (terms(1, 5), terms(2, 5));
        let r = dev_key(1);
        w.sign(&r, &a, 1).unwrap();
        w.sign(&r, &a, 1).unwrap();
        // Durable: a wallet reopened on the same directory still refuses.
        let w = TermsRegistry::open(d.path()).unwrap();
        match w.sign(&r, &b, 1) {
            Err(WalletError::NonceAlreadyAgreed { chain: 11, nonce: 5, other, .. }) => assert_eq!(other, Some(a.id())),
            got => panic!("second terms on nonce 5: {got:?}"),
        }
        w.agree(&terms(3, 6)).unwrap();
        assert!(!w.release(&b).unwrap(), "b holds nothing");
        assert!(matches!(w.agree(&b), Err(WalletError::NonceAlreadyAgreed { .. })));
        assert!(w.release(&a).unwrap());
        w.agree(&b).unwrap();
        assert!(matches!(w.sign(&dev_key(2), &b, 1), Err(WalletError::NotReceiver)));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 2, "no temporary file left");
    }
}
