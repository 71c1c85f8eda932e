//! A party's wallet record of the terms it agreed (attacks R8-5, R10).
//!
//! SC_MPV takes as each side's payment exactly the nonce its terms name
//! ([`CctTerms::nonce_i`], [`CctTerms::nonce_j`]), and a nonce is spent
//! once on its chain, so one transfer pays one set of terms. Two BoB
//! deployments that follow the same chain cannot see each other's records,
//! though: had a party agreed two sets of terms naming the same
//! (payer, chain, nonce) — one per deployment — one transfer would prove
//! that side on both and the payee would be paid once for two exchanges
//! (R8-5 on the sender's side, R10-1 on the receiver's). Had a party
//! agreed two sets naming its *own* nonce (once as sender, once as
//! receiver: R10-5), it could pay only one of them.
//!
//! Each party's wallet therefore keeps, durably and across every
//! deployment it trades on, both (payer, chain, nonce) triples of every set
//! of terms it agreed — the sender's payment (`sender_i`, `chain_i`,
//! `nonce_i`) and the receiver's (`receiver_j`, `chain_j`, `nonce_j`) —
//! and refuses a second set of terms naming a triple already held
//! ([`WalletError::NonceAlreadyAgreed`]), whichever role it plays in
//! either. The receiver records them when it signs
//! ([`TermsRegistry::sign`]), the sender before it submits the CCT
//! ([`TermsRegistry::agree`]). Agreeing to the same terms again (a driver
//! that restarted, or two at once) is allowed. The terms builder
//! ([`crate::mbs::BobMbs::try_terms`]) names each payer's next nonce not
//! already held ([`TermsRegistry::next_free`]), so a party with several
//! open exchanges on one chain gets successive nonces and pays them in
//! nonce order.
//!
//! A triple is given back only once no transaction naming it can still be
//! used (attack R11):
//! - terms whose CCT was never stored: once it can never be — the
//!   deployment's BoB passed their `expires_at` without a record of them
//!   ([`TermsRegistry::release_unstored`]). Not on a missing receipt: a
//!   CCT transaction not included in the next block may be included later
//!   (R11-1). Not on a refusal (a reverted receipt) either, not even by a
//!   driver that is the terms' sender: the reverted transaction, terms
//!   and receiver's signature and all, is public in the BoB's block, and
//!   its sender (or anyone holding it) may send it again until
//!   `expires_at` (R12-6);
//! - terms whose CCT was stored: once it is complete *and* the payer's
//!   nonce is spent on its chain — its committed next nonce is past it
//!   ([`TermsRegistry::release_spent`]). A side that ended penalised
//!   without its payment landing leaves its nonce reserved: its native
//!   transaction, posted to the BoB for anyone to read, is still a valid
//!   transfer for that nonce, and the party must never sign a different
//!   payment with it (R11-3).
//!
//! Decision (R11-3, R11-2): a reserved nonce is not kept for ever — that
//! would leave a gap no later payment of the party crosses. The party's
//! driver spends it with a *void*: a transfer of nothing to itself at that
//! nonce ([`crate::mbs::BobMbs::wallet_duties`]), sent as soon as the
//! party's account reaches the nonce. The old native transaction can then
//! never land, so the party pays for that exchange once (the penalty); the
//! nonce is given back once the void is on the chain. The same duty fills
//! a nonce given back by never-stored terms when a payment the party still
//! owes lies above it (a counterparty that withheld terms the party
//! signed, R11-2), so that payment lands. A void costs its fee.
//!
//! Terms expiring far ahead would hold a nonce as long as they like
//! (R11-5): the wallet refuses terms whose `expires_at` lies more than
//! the deployment's bound ([`crate::bob::BobConfig::max_terms_ahead`],
//! at most [`crate::bob::MAX_TERMS_AHEAD`]: R12-2, [`TermsRegistry::observe_limit`])
//! blocks past the deployment's BoB height as the wallet last saw it
//! ([`TermsRegistry::observe`]; SC_T refuses them as well), and terms of
//! a deployment whose height it was never told.
//!
//! Another deployment's terms (R12-5, R13-2/3/5). A driver reads only its
//! own BoB's records, and BoB heights of two deployments are not on one
//! clock: one may seal blocks more slowly, stall in a view change, or have
//! no driver of the party running at all, and a stopped driver looks the
//! same as a slow deployment. So:
//! - a driver never gives back or voids another deployment's entry: only
//!   that deployment's driver does, by the rules above, on its own BoB's
//!   records (its height past `expires_at` without a record, or the CCT
//!   complete and the nonce spent). An epoch rule on this deployment's
//!   clock (R12-5's fix) voided a nonce a slower, live deployment then
//!   stored terms for (R13-2), waited longer than a small-κ deployment's
//!   window (R13-3) and depended on a height held in memory only (R13-5);
//! - the terms builders do not name a payer's nonce above an unspent
//!   nonce another deployment's entry holds on that chain
//!   ([`TermsRegistry::check_foreign_below`], `ForeignTermsBelow`): a
//!   payment there could land only once that nonce is spent, at a time
//!   this deployment cannot bound. The exchange is refused rather than
//!   agreed and penalised.
//!
//! Assumption: a party that signed terms for a deployment runs its driver
//! there (`xchain resume` after a stop) until those terms are settled or
//! expired there; until then it trades on that chain only through that
//! deployment. Its exchanges elsewhere on other chains, and at nonces
//! below the other deployment's entry, are unaffected.
//!
//! One file per triple, `<dir>/<chain>-<payer>-<nonce>`, holding the id of
//! the terms (which commits to their deployment), their deployment and
//! their `expires_at`. An entry is written to a temporary file whose name
//! is unique per call (process id and a counter), `fsync`ed and
//! hard-linked into place (which fails if the triple is taken: the check
//! and the record are one step), then the directory is `fsync`ed; a crash
//! never leaves a torn entry, and no entry is ever rewritten in place.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, ChainId, Hash32, Height, Signature};

use crate::bob::CctTerms;

/// A wallet whose registry cannot be written or read, or that refuses terms.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    #[error("wallet registry {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The wallet already agreed to other terms naming this payer's nonce
    /// on this chain (`other`: their id, `None` if the entry does not
    /// read): one transfer would pay both.
    #[error("the wallet already agreed to terms {other:?} that name payer {payer}'s nonce {nonce} on chain {chain}")]
    NonceAlreadyAgreed { chain: ChainId, payer: Address, nonce: u64, other: Option<Hash32> },
    /// The key asked to sign is not the terms' receiver.
    #[error("the signing key is not the terms' receiver")]
    NotReceiver,
    /// The terms expire more than [`crate::bob::MAX_TERMS_AHEAD`] blocks
    /// after the deployment's BoB height as the wallet last saw it: they
    /// could hold the payers' nonces that long (attack R11-5).
    #[error("the terms expire at BoB height {expires_at}, more than {max} blocks after its height {height}")]
    ExpiryTooFar { expires_at: Height, height: Height, max: u64 },
    /// The wallet was never told the BoB height of the terms' deployment
    /// ([`TermsRegistry::observe`]), so it cannot bound their expiry.
    #[error("the wallet does not know the BoB height of deployment {0}")]
    UnknownDeployment(Hash32),
    /// Terms of another deployment hold `payer`'s unspent nonce `held` on
    /// `chain`, below the nonce `named` new terms would name there (attack
    /// R13-2/3/5): this deployment cannot tell when the other one stores
    /// or expires them, so a payment at `named` — which can land only
    /// after `held` is spent — could be held past its window. Run the
    /// driver of `deployment` until its terms are settled or expired
    /// (their triple given back), then agree again.
    #[error("terms {other} of deployment {deployment} hold payer {payer}'s nonce {held} on chain {chain}, below the nonce {named} new terms would name: settle them on that deployment first")]
    ForeignTermsBelow { chain: ChainId, payer: Address, held: u64, named: u64, deployment: Hash32, other: Hash32 },
}

/// A party's durable registry of the (payer, chain, nonce) triples of the
/// terms it agreed. Share one directory between every deployment the
/// party trades on.
#[derive(Clone, Debug)]
pub struct TermsRegistry {
    dir: PathBuf,
    /// The highest BoB height seen per deployment (shared by clones).
    heights: Arc<Mutex<BTreeMap<Hash32, Height>>>,
    /// Each deployment's bound on the terms' expiry, as its driver told it
    /// ([`TermsRegistry::observe_limit`]); [`crate::bob::MAX_TERMS_AHEAD`]
    /// when not told.
    limits: Arc<Mutex<BTreeMap<Hash32, u64>>>,
}

/// One triple of the registry and what its entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub chain: ChainId,
    pub payer: Address,
    pub nonce: u64,
    pub entry: Entry,
}

/// What an entry holds: the terms' id, deployment and `expires_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: Hash32,
    pub deployment: Hash32,
    pub expires_at: Height,
}

const ENTRY_LEN: usize = 72;
const TMP_PREFIX: &str = ".tmp-";

/// Temporary files of this process, numbered (attack R10-4).
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(terms: &CctTerms) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[..32].copy_from_slice(&terms.id().0);
    b[32..64].copy_from_slice(&terms.deployment.0);
    b[64..].copy_from_slice(&terms.expires_at.to_le_bytes());
    b
}

fn decode(bytes: &[u8]) -> Option<Entry> {
    let b: &[u8; ENTRY_LEN] = bytes.try_into().ok()?;
    let mut id = [0u8; 32];
    id.copy_from_slice(&b[..32]);
    let mut deployment = [0u8; 32];
    deployment.copy_from_slice(&b[32..64]);
    let mut e = [0u8; 8];
    e.copy_from_slice(&b[64..]);
    Some(Entry { id: Hash32(id), deployment: Hash32(deployment), expires_at: Height::from_le_bytes(e) })
}

/// The triple an entry's file name stands for (`<chain>-<payer>-<nonce>`).
fn parse_name(name: &str) -> Option<(ChainId, Address, u64)> {
    let mut parts = name.split('-');
    let chain = parts.next()?.parse().ok()?;
    let payer = Address::from_hex(parts.next()?).ok()?;
    let nonce = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some((chain, payer, nonce))
}

/// The (payer, chain, nonce) triples `terms` name, each once.
fn triples(terms: &CctTerms) -> Vec<(ChainId, Address, u64)> {
    let s = (terms.chain_i, terms.sender_i, terms.nonce_i);
    let r = (terms.chain_j, terms.receiver_j, terms.nonce_j);
    if s == r {
        vec![s]
    } else {
        vec![s, r]
    }
}

impl TermsRegistry {
    /// Opens (creating it if needed) the registry in `dir`.
    pub fn open(dir: &Path) -> Result<Self, WalletError> {
        std::fs::create_dir_all(dir).map_err(|source| WalletError::Io { path: dir.to_path_buf(), source })?;
        Ok(Self { dir: dir.to_path_buf(), heights: Arc::default(), limits: Arc::default() })
    }

    /// Tells the wallet that `deployment`'s BoB reached `height` (a lower
    /// height than one seen before changes nothing): terms of it expiring
    /// more than [`crate::bob::MAX_TERMS_AHEAD`] blocks later are refused.
    /// A driver tells it at every epoch ([`crate::mbs::BobMbs`] does).
    pub fn observe(&self, deployment: Hash32, height: Height) {
        let mut h = self.heights.lock().unwrap_or_else(|p| p.into_inner());
        let e = h.entry(deployment).or_insert(height);
        *e = (*e).max(height);
    }

    /// Tells the wallet `deployment`'s bound on the terms' expiry
    /// ([`crate::bob::BobConfig::max_terms_ahead`], attack R12-2): terms of
    /// it expiring more than `max` blocks after its observed height are
    /// refused (never more than [`crate::bob::MAX_TERMS_AHEAD`]).
    pub fn observe_limit(&self, deployment: Hash32, max: u64) {
        let mut l = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        l.insert(deployment, max.min(crate::bob::MAX_TERMS_AHEAD));
    }

    /// The highest BoB height of `deployment` this wallet was told.
    pub fn observed(&self, deployment: &Hash32) -> Option<Height> {
        self.heights.lock().unwrap_or_else(|p| p.into_inner()).get(deployment).copied()
    }

    /// Refuses terms expiring too far ahead, or of a deployment the wallet
    /// was never told the height of (attack R11-5).
    fn check_expiry(&self, terms: &CctTerms) -> Result<(), WalletError> {
        let height = self.observed(&terms.deployment).ok_or(WalletError::UnknownDeployment(terms.deployment))?;
        let max = self
            .limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&terms.deployment)
            .copied()
            .unwrap_or(crate::bob::MAX_TERMS_AHEAD);
        if terms.expires_at > height.saturating_add(max) {
            return Err(WalletError::ExpiryTooFar { expires_at: terms.expires_at, height, max });
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, (chain, payer, nonce): (ChainId, Address, u64)) -> PathBuf {
        self.dir.join(format!("{chain}-{}-{nonce}", hex(&payer.0)))
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalletError {
        let path = path.to_path_buf();
        move |source| WalletError::Io { path, source }
    }

    fn sync_dir(&self) -> Result<(), WalletError> {
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(Self::io(&self.dir))
    }

    /// Records that the party agrees to `terms`: refused if it already
    /// agreed to other terms naming the sender's or the receiver's nonce
    /// (payer, chain, nonce) — in either role. All or nothing: a refusal
    /// leaves no entry of `terms` behind.
    pub fn agree(&self, terms: &CctTerms) -> Result<(), WalletError> {
        self.check_expiry(terms)?;
        let id = terms.id();
        let bytes = encode(terms);
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}-{}-{}",
            id.to_hex(),
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        {
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(Self::io(&tmp))?;
            f.write_all(&bytes).map_err(Self::io(&tmp))?;
            f.sync_all().map_err(Self::io(&tmp))?;
        }
        let mut created = Vec::new();
        let mut refusal = None;
        for t in triples(terms) {
            let path = self.path(t);
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => created.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let other = self.holder(&path)?;
                    if other != Some(id) {
                        let (chain, payer, nonce) = t;
                        refusal = Some(WalletError::NonceAlreadyAgreed { chain, payer, nonce, other });
                        break;
                    }
                }
                Err(source) => {
                    refusal = Some(WalletError::Io { path, source });
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(&tmp);
        if let Some(e) = refusal {
            for path in &created {
                let _ = std::fs::remove_file(path);
            }
            // An entry that does not read is named as such (`other: None`).
            if let WalletError::NonceAlreadyAgreed { other: Some(_), .. } = e {
                for t in triples(terms) {
                    if matches!(std::fs::read(self.path(t)), Ok(b) if decode(&b).is_none()) {
                        let (chain, payer, nonce) = t;
                        return Err(WalletError::NonceAlreadyAgreed { chain, payer, nonce, other: None });
                    }
                }
            }
            return Err(e);
        }
        self.sync_dir()
    }

    fn holder(&self, path: &Path) -> Result<Option<Hash32>, WalletError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(decode(&bytes).map(|e| e.id)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WalletError::Io { path: path.to_path_buf(), source }),
        }
    }

    /// The entry holding `payer`'s `nonce` on `chain`, if any (`Ok(None)`
    /// also for an entry that does not read).
    pub fn entry(&self, chain: ChainId, payer: &Address, nonce: u64) -> Result<Option<Entry>, WalletError> {
        let path = self.path((chain, *payer, nonce));
        match std::fs::read(&path) {
            Ok(bytes) => Ok(decode(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(WalletError::Io { path, source }),
        }
    }

    /// `payer`'s first nonce on `chain` at or above `from` that no agreed
    /// terms hold: the nonce the terms builder names for its next exchange.
    pub fn next_free(&self, chain: ChainId, payer: &Address, from: u64) -> Result<u64, WalletError> {
        let mut n = from;
        loop {
            match std::fs::symlink_metadata(self.path((chain, *payer, n))) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(n),
                Err(source) => return Err(WalletError::Io { path: self.path((chain, *payer, n)), source }),
                Ok(_) => n = n.saturating_add(1),
            }
            if n == u64::MAX {
                return Ok(n);
            }
        }
    }

    /// Refuses to name `payer`'s nonce `named` on `chain` in terms of
    /// `deployment` while terms of *another* deployment hold one of its
    /// nonces from `from` (its next nonce on the chain: lower ones are
    /// spent) up to `named` (attack R13-2/3/5,
    /// [`WalletError::ForeignTermsBelow`]). The terms builders call it for
    /// both payers ([`crate::mbs::BobMbs::try_terms`], `xchain swap
    /// --processes`).
    pub fn check_foreign_below(
        &self,
        deployment: Hash32,
        chain: ChainId,
        payer: &Address,
        from: u64,
        named: u64,
    ) -> Result<(), WalletError> {
        for held in from..named {
            if let Some(e) = self.entry(chain, payer, held)? {
                if e.deployment != deployment {
                    return Err(WalletError::ForeignTermsBelow {
                        chain,
                        payer: *payer,
                        held,
                        named,
                        deployment: e.deployment,
                        other: e.id,
                    });
                }
            }
        }
        Ok(())
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

    /// Gives back the triples `terms` hold, if they hold every one of them
    /// (an entry that does not read is never removed). The primitive under
    /// the rules of this module: call it only once no transaction naming
    /// the triples can still be used — their CCT never stored and never
    /// storable any more ([`release_unstored`](Self::release_unstored)),
    /// or complete with both payments spent on their chains
    /// ([`release_spent`](Self::release_spent)). Returns whether entries
    /// were removed.
    pub fn release(&self, terms: &CctTerms) -> Result<bool, WalletError> {
        let id = terms.id();
        let paths: Vec<PathBuf> = triples(terms).into_iter().map(|t| self.path(t)).collect();
        for path in &paths {
            if self.holder(path)? != Some(id) {
                return Ok(false);
            }
        }
        for path in &paths {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(WalletError::Io { path: path.clone(), source: e })
                }
                _ => {}
            }
        }
        self.sync_dir()?;
        Ok(true)
    }

    /// Gives back each triple held by `terms` whose payment nonce is spent
    /// on its chain (`spent(chain, payer, nonce)`: the payer's committed
    /// next nonce there is past it). Call once their CCT is complete (no
    /// proof counts for it any more); a triple whose nonce is not spent
    /// stays reserved (see the module: its payer voids it). Returns how
    /// many entries were removed.
    pub fn release_spent(
        &self,
        terms: &CctTerms,
        spent: impl Fn(ChainId, &Address, u64) -> bool,
    ) -> Result<usize, WalletError> {
        let id = terms.id();
        let mut removed = 0;
        for (chain, payer, nonce) in triples(terms) {
            if spent(chain, &payer, nonce) && self.release_one(chain, &payer, nonce, &id)? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the entry of one triple if it holds `id`.
    pub fn release_one(&self, chain: ChainId, payer: &Address, nonce: u64, id: &Hash32) -> Result<bool, WalletError> {
        let path = self.path((chain, *payer, nonce));
        if self.holder(&path)? != Some(*id) {
            return Ok(false);
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(WalletError::Io { path, source: e }),
            _ => {}
        }
        self.sync_dir()?;
        Ok(true)
    }

    /// Every triple the registry holds with an entry that reads, in file
    /// name order (temporary files and foreign names skipped).
    pub fn held(&self) -> Result<Vec<Held>, WalletError> {
        let mut out = Vec::new();
        let dir = std::fs::read_dir(&self.dir).map_err(Self::io(&self.dir))?;
        for item in dir {
            let item = item.map_err(Self::io(&self.dir))?;
            let name = item.file_name();
            let Some((chain, payer, nonce)) = parse_name(&name.to_string_lossy()) else { continue };
            let Ok(bytes) = std::fs::read(item.path()) else { continue };
            let Some(entry) = decode(&bytes) else { continue };
            out.push(Held { chain, payer, nonce, entry });
        }
        out.sort_by_key(|h| (h.chain, h.payer, h.nonce));
        Ok(out)
    }

    /// Gives back every triple held by terms of `deployment` that can never
    /// be stored there any more: their `expires_at` is at or below the
    /// deployment's `height` (SC_T executes a CCT at `expires_at` at the
    /// latest) and `stored(id)` says no CCT record of them exists (attack
    /// R10-3). Returns how many entries were removed.
    pub fn release_unstored(
        &self,
        deployment: Hash32,
        height: Height,
        stored: impl Fn(&Hash32) -> bool,
    ) -> Result<usize, WalletError> {
        let mut removed = 0;
        let dir = std::fs::read_dir(&self.dir).map_err(Self::io(&self.dir))?;
        for item in dir {
            let item = item.map_err(Self::io(&self.dir))?;
            if item.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                continue;
            }
            let path = item.path();
            let Ok(bytes) = std::fs::read(&path) else { continue };
            let Some(e) = decode(&bytes) else { continue };
            if e.deployment != deployment || e.expires_at > height || stored(&e.id) {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            self.sync_dir()?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridledger_ledger::devnet::dev_key;

    fn terms(salt: u64, nonce_i: u64) -> CctTerms {
        let nonce_j = nonce_i + 100;
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
            nonce_j,
        }
    }

    #[test]
    fn one_set_of_terms_per_sender_nonce_across_reopens_until_released() {
        let d = tempfile::tempdir().unwrap();
        let w = TermsRegistry::open(d.path()).unwrap();
        let (a, b) = (terms(1, 5), terms(2, 5));
        let r = dev_key(1);
        assert!(matches!(w.sign(&r, &a, 1), Err(WalletError::UnknownDeployment(_))));
        w.observe(a.deployment, 10);
        w.sign(&r, &a, 1).unwrap();
        w.sign(&r, &a, 1).unwrap();
        // Durable: a wallet reopened on the same directory still refuses.
        let w = TermsRegistry::open(d.path()).unwrap();
        w.observe(a.deployment, 10);
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
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 4, "two triples each, no temporary file left");
        let held: Vec<_> = w.held().unwrap().into_iter().map(|h| (h.chain, h.nonce, h.entry.id)).collect();
        assert_eq!(
            held,
            vec![(11, 5, b.id()), (11, 6, terms(3, 6).id()), (12, 105, b.id()), (12, 106, terms(3, 6).id())]
        );
    }

    #[test]
    fn no_nonce_is_named_above_an_unspent_nonce_another_deployment_holds() {
        let d = tempfile::tempdir().unwrap();
        let w = TermsRegistry::open(d.path()).unwrap();
        let (here, there) = (Hash32([7; 32]), Hash32([8; 32]));
        w.observe(here, 10);
        w.observe(there, 4);
        let own = terms(1, 5);
        w.agree(&own).unwrap();
        let foreign = CctTerms { deployment: there, ..terms(2, 6) };
        w.agree(&foreign).unwrap();
        let payer = own.sender_i;
        // This deployment's own entry below is its own driver's: no refusal.
        w.check_foreign_below(here, 11, &payer, 5, 6).unwrap();
        match w.check_foreign_below(here, 11, &payer, 5, 7) {
            Err(WalletError::ForeignTermsBelow { chain: 11, held: 6, named: 7, deployment, other, .. }) => {
                assert_eq!((deployment, other), (there, foreign.id()));
            }
            got => panic!("{got:?}"),
        }
        // Spent (below the payer's next nonce): it holds nothing back.
        w.check_foreign_below(here, 11, &payer, 7, 8).unwrap();
        // The same from the other deployment's side: this one's entry at 5
        // is foreign there.
        w.check_foreign_below(there, 11, &payer, 6, 7).unwrap();
        assert!(matches!(
            w.check_foreign_below(there, 11, &payer, 5, 7),
            Err(WalletError::ForeignTermsBelow { held: 5, deployment, .. }) if deployment == here
        ));
        // Another chain or payer is unaffected.
        w.check_foreign_below(here, 13, &payer, 5, 7).unwrap();
        w.check_foreign_below(here, 11, &dev_key(3).address(), 5, 7).unwrap();
    }

    #[test]
    fn terms_expiring_too_far_ahead_are_refused_and_spent_triples_released_one_by_one() {
        let d = tempfile::tempdir().unwrap();
        let w = TermsRegistry::open(d.path()).unwrap();
        let max = crate::bob::MAX_TERMS_AHEAD;
        w.observe(Hash32([7; 32]), 4);
        w.observe(Hash32([7; 32]), 3);
        assert_eq!(w.observed(&Hash32([7; 32])), Some(4), "a lower height changes nothing");
        let far = CctTerms { expires_at: 4 + max + 1, ..terms(1, 5) };
        match w.agree(&far) {
            Err(WalletError::ExpiryTooFar { expires_at, height: 4, .. }) => assert_eq!(expires_at, 4 + max + 1),
            got => panic!("{got:?}"),
        }
        assert!(w.held().unwrap().is_empty(), "a refusal leaves nothing");
        let t = CctTerms { expires_at: 4 + max, ..terms(1, 5) };
        w.agree(&t).unwrap();
        // Only the sender's nonce is spent: the receiver's stays reserved.
        assert_eq!(w.release_spent(&t, |chain, _, _| chain == 11).unwrap(), 1);
        assert!(w.entry(11, &t.sender_i, 5).unwrap().is_none());
        assert_eq!(w.entry(12, &t.receiver_j, 105).unwrap().map(|e| e.id), Some(t.id()));
        assert_eq!(w.release_spent(&t, |_, _, _| true).unwrap(), 1);
        assert!(w.held().unwrap().is_empty());
    }
}
