//! What a party process needs to know about its channel (`party.json` in its
//! directory), and the on-chain preparation that produces it for two
//! parties: merchant registration, credit applications and approvals
//! (seed Fig 3), both `msc-init`s (Fig 11) and the `esc-init` (Fig 12).

use super::chainlink::{ChainError, ChainLink};
use super::merchant::{self, derive_msc_key, document_hash, Application};
use gridledger_channels::machine::{ChannelParams, Policy, PriceBounds};
use gridledger_contracts::args;
use gridledger_contracts::cns::credit::{esc_open_args, CollateralRatio, CreditRefusal, MerchantDesk, RiskFunction};
use gridledger_contracts::cns::{
    derive_cid, derive_scid, Domain, EscInit, Funding, Msc, RegisterMerchant, SignedApproval, MIN_T_DELTA_MS,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::{Amount, Energy, Hash32, KeyPair, PublicKey};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// File name of the spec inside a party's directory.
pub const SPEC_FILE: &str = "party.json";
/// Largest `party.json` read (a real one is a few KiB).
pub const MAX_SPEC_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("party spec: {0}")]
    Format(String),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Rpc(#[from] crate::client::RpcError),
    #[error("credit refused: {0}")]
    Refused(#[from] CreditRefusal),
    #[error("party keys: {0}")]
    Keystore(#[from] crate::keystore::KeystoreError),
    /// An approval given to `prepare` that cannot fund this channel (another
    /// merchant, another account, a closed MSC).
    #[error("{0}")]
    Approval(String),
}

/// One party's channel, as stored in `party.json`. Secrets are hex when the
/// account key given to `prepare` was a plaintext key file; when it was an
/// encrypted keystore, `party.json` names that keystore and holds the
/// party's own keys sealed under the same password ([`SealedKeys`]), so a
/// prepared channel protects the account as well as the keystore did. The
/// file is created readable by its owner only, in a directory only its
/// owner can enter.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartySpec {
    pub side: u8,
    /// The account that sends transactions (hex secret; empty when sealed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub account_secret: String,
    /// The per-ESC pseudonym key that signs states and authenticates the
    /// peer link (hex secret; empty when sealed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub esc_secret: String,
    /// The MSC pseudonym key (hex secret; empty when sealed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub msc_secret: String,
    /// Secret seed of the state-signature nonces (absent when sealed: then
    /// derived from the ESC key, which is sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce_seed: Option<Hash32>,
    /// The keys, when the account is an encrypted keystore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedKeys>,
    /// The chain the channel lives on (signed into every state).
    pub chain_id: u32,
    pub peer_key: PublicKey,
    pub scid: Hash32,
    pub cid: Hash32,
    pub sid: u64,
    pub t_delta_ms: u64,
    pub capacity: [Amount; 2],
    /// Borsh of [`Funding`], hex.
    pub funding: String,
    pub retry_ms: u64,
    pub close_timeout_ms: u64,
    /// Where each side listens for its peer (index = side).
    pub addrs: [SocketAddr; 2],
    /// Loopback address of this party's control port on non-Unix targets;
    /// on Unix the party's own control channel is the Unix socket
    /// `control.sock` in its directory (see [`super::control`]).
    pub control: SocketAddr,
    pub rpc: String,
    /// Chain height to read channel events from.
    pub start_height: u64,
    /// What this party accepts from its peer beyond the channel's own rules
    /// (issue: the responder signed any price): price and size bounds per
    /// trade, checked before anything is signed.
    #[serde(default)]
    pub accept: Option<AcceptPolicy>,
    /// Shortest `t_Δ` this party co-signs (ms). Absent: the `t_Δ` of this
    /// spec, i.e. what the party agreed to, never the contract's 10 s floor
    /// (a window that short leaves a watch no time to resend a resolve).
    #[serde(default)]
    pub min_t_delta_ms: Option<u64>,
}

/// Bounds on the trades a party co-signs (its [`gridledger_channels::machine::UpdatePolicy`]).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcceptPolicy {
    pub min_price_per_kwh: u128,
    pub max_price_per_kwh: u128,
    pub max_energy_wh: u64,
}

/// A party's keys when its account is an encrypted keystore: the keystore
/// is referred to (never copied), the ESC and MSC pseudonym keys are sealed
/// in the same keystore format under the same password. Opening them takes
/// the password from `GRIDLEDGER_PASSWORD_FILE` / `GRIDLEDGER_PASSWORD` or
/// the terminal.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SealedKeys {
    /// The account's keystore file (absolute path).
    pub account_keystore: std::path::PathBuf,
    /// The ESC pseudonym key, a keystore document.
    pub esc: String,
    /// The MSC pseudonym key, a keystore document.
    pub msc: String,
}

/// A party's secret keys, opened.
pub struct PartyKeys {
    pub account: KeyPair,
    pub esc: KeyPair,
    pub nonce_seed: [u8; 32],
}

fn key_of(hex_secret: &str) -> Result<KeyPair, SpecError> {
    let b = hex::decode(hex_secret).map_err(|e| SpecError::Format(e.to_string()))?;
    let arr: [u8; 32] = b.try_into().map_err(|_| SpecError::Format("secret must be 32 bytes".into()))?;
    KeyPair::from_secret_bytes(arr).map_err(|e| SpecError::Format(e.to_string()))
}

/// The nonce seed of a sealed party: a tagged hash of its (secret) ESC key.
fn derived_nonce_seed(esc: &KeyPair) -> [u8; 32] {
    gridledger_core::codec::hash_parts(
        gridledger_core::codec::Tag("gridledger/party-nonce-seed/v1"),
        &[&esc.secret_bytes()],
    )
    .0
}

impl PartySpec {
    /// Opens the party's keys (asking for the keystore password once when sealed).
    pub fn keys(&self) -> Result<PartyKeys, SpecError> {
        use crate::keystore;
        match &self.sealed {
            None => {
                let nonce_seed = self
                    .nonce_seed
                    .as_ref()
                    .map(|h| h.0)
                    .ok_or_else(|| SpecError::Format("nonce_seed missing".into()))?;
                Ok(PartyKeys { account: key_of(&self.account_secret)?, esc: key_of(&self.esc_secret)?, nonce_seed })
            }
            Some(s) => {
                let text = crate::config::read_key_text(&s.account_keystore)
                    .map_err(|e| SpecError::Format(format!("{e:#}")))?;
                let pw = keystore::password_from_env()?;
                let account = keystore::open(&text, &pw).map_err(|e| {
                    SpecError::Format(format!("opening the account keystore {}: {e}", s.account_keystore.display()))
                })?;
                let esc = keystore::open(&s.esc, &pw)?;
                Ok(PartyKeys { account, nonce_seed: derived_nonce_seed(&esc), esc })
            }
        }
    }
    pub fn account(&self) -> Result<KeyPair, SpecError> {
        Ok(self.keys()?.account)
    }
    pub fn esc_key(&self) -> Result<KeyPair, SpecError> {
        Ok(self.keys()?.esc)
    }

    /// Replaces the plaintext secrets by a reference to the account's
    /// keystore and the ESC/MSC keys sealed under `password`; the nonce seed
    /// becomes one derived from the ESC key. Only before the channel opens
    /// (nothing has been signed with the old seed).
    pub fn seal(&mut self, account_keystore: &Path, password: &str) -> Result<(), SpecError> {
        use crate::keystore;
        let (esc, msc) = (key_of(&self.esc_secret)?, key_of(&self.msc_secret)?);
        let account_keystore = std::fs::canonicalize(account_keystore)
            .map_err(|e| SpecError::Format(format!("{}: {e}", account_keystore.display())))?;
        self.sealed = Some(SealedKeys {
            account_keystore,
            esc: keystore::seal(&esc, password, keystore::DEFAULT_LOG_N)?,
            msc: keystore::seal(&msc, password, keystore::DEFAULT_LOG_N)?,
        });
        self.account_secret.clear();
        self.esc_secret.clear();
        self.msc_secret.clear();
        self.nonce_seed = None;
        Ok(())
    }
    pub fn params(&self) -> Result<ChannelParams, SpecError> {
        let fb = hex::decode(&self.funding).map_err(|e| SpecError::Format(e.to_string()))?;
        let funding: Funding = decode(&fb, 1024).map_err(|e| SpecError::Format(e.to_string()))?;
        Ok(ChannelParams {
            domain: Domain::cns(self.chain_id),
            min_t_delta_ms: self.min_t_delta_ms.unwrap_or(self.t_delta_ms).max(MIN_T_DELTA_MS),
            policy: self.accept.as_ref().map(|a| {
                Policy(Arc::new(PriceBounds {
                    min_price_per_kwh: Amount(a.min_price_per_kwh),
                    max_price_per_kwh: Amount(a.max_price_per_kwh),
                    max_energy: Energy(a.max_energy_wh),
                }))
            }),
            auto_pay: None,
            window: gridledger_channels::machine::DEFAULT_WINDOW,
            side: self.side,
            peer_key: self.peer_key,
            scid: self.scid,
            cid: self.cid,
            t_delta_ms: self.t_delta_ms,
            capacity: self.capacity,
            funding,
            retry_ms: self.retry_ms,
            close_timeout_ms: self.close_timeout_ms,
        })
    }

    pub fn load(dir: &Path) -> Result<Self, SpecError> {
        // Bounded and only from a regular file: a FIFO or `/dev/zero` in
        // place of `party.json` is refused at once, not waited on.
        let path = dir.join(SPEC_FILE);
        let bytes = gridledger_channels::disk::read_bounded(&path, MAX_SPEC_BYTES)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?
            .ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("{}: no such file", path.display()))
            })?;
        serde_json::from_slice(&bytes).map_err(|e| SpecError::Format(e.to_string()))
    }

    /// Writes `party.json` into `dir`: a new directory is made 0700, the
    /// file is created 0600 (never readable by others, even briefly).
    pub fn save(&self, dir: &Path) -> Result<(), SpecError> {
        use std::io::Write;
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir)?;
        let path = dir.join(SPEC_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| SpecError::Format(e.to_string()))?;
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&path)?;
        #[cfg(unix)]
        {
            // An existing file keeps its mode on open: narrow it first.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    }
}

/// Terms of a channel to prepare.
#[derive(Clone, Debug)]
pub struct ChannelTerms {
    pub capacity: [Amount; 2],
    /// Fund this side with a merchant credit note instead of a deposit.
    pub credit: [bool; 2],
    pub t_delta_ms: u64,
    pub credit_limit: Amount,
    pub merchant_pool: Amount,
    pub collateral_lock_ms: u64,
    pub billing_period_ms: u64,
    pub retry_ms: u64,
    pub close_timeout_ms: u64,
    pub addrs: [SocketAddr; 2],
    pub controls: [SocketAddr; 2],
    /// Trade bounds both parties apply to incoming updates (none: any
    /// trade that follows the channel's rules).
    pub accept: Option<AcceptPolicy>,
}

/// A merchant desk with the demo's risk model.
pub fn merchant_desk(
    domain: Domain,
    account: &KeyPair,
    desk_key: KeyPair,
    credit_limit: Amount,
    lock_ms: u64,
) -> MerchantDesk<CollateralRatio> {
    MerchantDesk {
        domain,
        account: account.address(),
        key: desk_key,
        risk: CollateralRatio { base_bps: 2_000, per_dispute_bps: 500, max_credit: credit_limit, lock_ms },
        blacklist: vec![],
        max_disputes: 5,
        approval_ttl_ms: 3_600_000,
    }
}

/// Registers the merchant if it is not yet registered.
pub fn ensure_merchant<F: RiskFunction>(
    link: &ChainLink,
    desk: &MerchantDesk<F>,
    billing_period_ms: u64,
    pool: Amount,
) -> Result<(), SpecError> {
    let registered = super::chainlink::view(&link.client, "merchant", args(&desk.account)).ok();
    if let Some(m) = registered {
        // Approvals and credit notes signed by another desk key would be
        // refused on chain only after the participant's first transaction.
        let key: Option<PublicKey> = serde_json::from_value(m["key"].clone()).ok();
        if key.is_some_and(|k| k != desk.key.public()) {
            return Err(SpecError::Approval(format!(
                "merchant {} is registered with another desk key than --desk-key holds; \
                 give the desk key file it was registered with",
                desk.account
            )));
        }
    } else {
        link.call(
            "merchant_register",
            args(&RegisterMerchant { key: desk.key.public(), billing_period_ms, grey_after: 2, black_after: 4 }),
            pool,
        )?;
    }
    Ok(())
}

/// Applies for credit and opens an MSC for `link`'s account through the
/// merchant service (Figs 3, 11: [`super::merchant`]); returns the MSC id
/// and the MSC pseudonym key. `salt` makes the pseudonym fresh.
pub fn open_msc<F: RiskFunction>(
    link: &ChainLink,
    desk: &MerchantDesk<F>,
    identity: &str,
    requested: Amount,
    salt: u64,
    nonce: u64,
) -> Result<(u64, KeyPair), SpecError> {
    let docs = vec![document_hash(identity.as_bytes()), document_hash(&salt.to_le_bytes())];
    let app = Application::new(&link.account, identity.to_string(), docs, requested)?;
    let approval = merchant::approve(&link.client, desk, &app, nonce)??;
    let msc_key = derive_msc_key(&link.account, &approval.approval.documents)?;
    let sid = merchant::init_msc(link, &msc_key, approval, nonce.wrapping_add(1))?;
    Ok((sid, msc_key))
}

/// Where one side's MSC comes from in [`prepare_channel_with`].
#[derive(Clone, Debug)]
pub enum MscSource {
    /// A fresh MSC: the merchant service approves the account now and
    /// `prepare` runs its `msc-init`.
    Fresh,
    /// The MSC of this approval (written by `cns approve`): the one
    /// `cns init` made with it, found on chain by the pseudonym key the
    /// approval's documents derive; made now if `cns init` has not run.
    Approval(Box<SignedApproval>),
}

/// The open MSC that `account` made (or would make) with `approval`: its
/// pseudonym key is derived from the account and the approval's documents
/// ([`derive_msc_key`]), and the chain is searched for an open MSC under
/// that key. Returns the MSC (if one exists) and the key.
pub fn find_msc_of_approval(
    client: &crate::client::RpcClient,
    account: &KeyPair,
    approval: &SignedApproval,
) -> Result<(Option<Msc>, KeyPair), SpecError> {
    let key = approval_msc_key(account, approval)?;
    let found = merchant::all_mscs(client)?.into_iter().find(|m| m.participant_key == key.public() && !m.closed);
    Ok((found, key))
}

/// The MSC pseudonym key of `account` for `approval`; refused when the
/// approval answers another account's application.
fn approval_msc_key(account: &KeyPair, approval: &SignedApproval) -> Result<KeyPair, SpecError> {
    let key = derive_msc_key(account, &approval.approval.documents)?;
    if approval.approval.participant != key.public() {
        return Err(SpecError::Approval(format!(
            "the approval answers another account's application, not {}'s",
            account.address()
        )));
    }
    Ok(key)
}

/// Checks, before anything is sent, that `approval` is `merchant`'s answer
/// to `account`'s application.
fn check_approval(approval: &SignedApproval, merchant: &KeyPair, account: &KeyPair) -> Result<(), SpecError> {
    if approval.approval.merchant != merchant.address() {
        return Err(SpecError::Approval(format!(
            "the approval is from merchant {}, but --merchant-key is {}",
            approval.approval.merchant,
            merchant.address()
        )));
    }
    approval_msc_key(account, approval).map(drop)
}

/// The MSC of side `account` for a channel with `merchant`: the approval's
/// (found, or made now) or a fresh one.
fn msc_of<F: RiskFunction>(
    url: &str,
    desk: &MerchantDesk<F>,
    account: &KeyPair,
    source: &MscSource,
    credit_limit: Amount,
    rng: &mut impl rand::Rng,
) -> Result<(u64, KeyPair), SpecError> {
    let link = ChainLink::connect(url, account.clone())?;
    let approval = match source {
        MscSource::Fresh => {
            let id = format!("participant-{}", account.address());
            return open_msc(&link, desk, &id, credit_limit, rng.random(), rng.random());
        }
        MscSource::Approval(a) => a.as_ref(),
    };
    match find_msc_of_approval(&link.client, account, approval)? {
        (Some(m), key) => Ok((m.sid, key)),
        (None, key) => {
            let sid = merchant::init_msc(&link, &key, approval.clone(), rng.random())?;
            Ok((sid, key))
        }
    }
}

/// The next ESC counter between MSCs `sids` (in this order): the number of
/// ESCs already opened between them (at most one per ESC of `sids[0]`).
fn esc_counter(client: &crate::client::RpcClient, sids: [u64; 2], bound: usize) -> Result<u64, SpecError> {
    for n in 0..=bound as u64 {
        if super::chainlink::read_esc(client, &derive_scid(sids[0], sids[1], n))?.is_none() {
            return Ok(n);
        }
    }
    Err(SpecError::Format(format!("more ESCs between MSCs {} and {} than MSC {} records", sids[0], sids[1], sids[0])))
}

/// Prepares a channel between two accounts on the node at `url`: the
/// merchant (with `merchant` as its account) approves both, both MSCs and
/// the ESC are created. Returns both parties' specs; nothing is opened.
pub fn prepare_channel(
    url: &str,
    merchant: &KeyPair,
    desk_key: &KeyPair,
    accounts: [&KeyPair; 2],
    terms: &ChannelTerms,
) -> Result<[PartySpec; 2], SpecError> {
    prepare_channel_with(url, merchant, desk_key, accounts, terms, [&MscSource::Fresh, &MscSource::Fresh])
}

/// [`prepare_channel`] with each side's MSC from `mscs`: fresh, or the one
/// an earlier `cns approve` / `cns init` made (seed Fig 3, Fig 11), so a
/// participant's MSC and its collateral serve many channels.
pub fn prepare_channel_with(
    url: &str,
    merchant: &KeyPair,
    desk_key: &KeyPair,
    accounts: [&KeyPair; 2],
    terms: &ChannelTerms,
    mscs: [&MscSource; 2],
) -> Result<[PartySpec; 2], SpecError> {
    use rand::Rng;
    let mut rng = rand::rng();
    // Refuse a mismatched approval before anything is sent.
    for (source, account) in mscs.iter().zip(accounts) {
        if let MscSource::Approval(a) = source {
            check_approval(a, merchant, account)?;
        }
    }
    let mlink = ChainLink::connect(url, merchant.clone())?;
    let domain = mlink.domain();
    let desk = merchant_desk(domain, merchant, desk_key.clone(), terms.credit_limit, terms.collateral_lock_ms);
    ensure_merchant(&mlink, &desk, terms.billing_period_ms, terms.merchant_pool)?;
    let mut sids = [0u64; 2];
    let mut msc_keys = Vec::with_capacity(2);
    for i in 0..2 {
        let (sid, key) = msc_of(url, &desk, accounts[i], mscs[i], terms.credit_limit, &mut rng)?;
        sids[i] = sid;
        msc_keys.push(key);
    }
    if sids[0] == sids[1] {
        return Err(SpecError::Approval(format!("both sides would use MSC {}; a channel needs two", sids[0])));
    }
    let esc_keys = [0, 1].map(|_| KeyPair::generate(&mut rng));
    // The ESC counter between these MSCs: 0 for fresh MSCs, else the ESCs
    // they already share.
    let bound = super::chainlink::read_msc(&mlink.client, sids[0])?.map_or(0, |m| m.escs.len());
    let init = EscInit {
        sids,
        keys: [esc_keys[0].public(), esc_keys[1].public()],
        payouts: [accounts[0].address(), accounts[1].address()],
        n: esc_counter(&mlink.client, sids, bound)?,
        dispute_limit: 3,
    };
    let a = esc_open_args(&domain, init, [&msc_keys[0], &msc_keys[1]], rng.random());
    let l0 = ChainLink::connect(url, accounts[0].clone())?;
    let o = l0.call("esc_open", args(&a), Amount::ZERO)?;
    let scid: Hash32 = borsh::from_slice(&o.output).map_err(|e| SpecError::Format(format!("scid: {e}")))?;
    let cid = derive_cid(&scid, 0);
    let start_height = l0.client.height()?;
    let note_nonces: [u64; 2] = [rng.random(), rng.random()];
    let nonce_seeds: [[u8; 32]; 2] = [rng.random(), rng.random()];
    Ok([0usize, 1].map(|i| {
        let funding = if terms.credit[i] {
            desk.sign_note(sids[i], cid, terms.capacity[i], note_nonces[i])
        } else {
            Funding::Deposit
        };
        let nonce_seed = Some(Hash32(nonce_seeds[i]));
        PartySpec {
            side: i as u8,
            account_secret: hex::encode(accounts[i].secret_bytes()),
            esc_secret: hex::encode(esc_keys[i].secret_bytes()),
            msc_secret: hex::encode(msc_keys[i].secret_bytes()),
            nonce_seed,
            sealed: None,
            chain_id: domain.chain_id,
            peer_key: esc_keys[1 - i].public(),
            scid,
            cid,
            sid: sids[i],
            t_delta_ms: terms.t_delta_ms,
            capacity: terms.capacity,
            funding: hex::encode(encode(&funding)),
            retry_ms: terms.retry_ms,
            close_timeout_ms: terms.close_timeout_ms,
            addrs: terms.addrs,
            control: terms.controls[i],
            rpc: url.to_string(),
            start_height,
            accept: terms.accept.clone(),
            min_t_delta_ms: None,
        }
    }))
}

/// A loopback address with a port free at the time of the call. The port
/// is released before it is used, so another process may take it in
/// between: use it only where the listener cannot be handed over (a party
/// in another process); in process, [`bind_loopback`] and
/// [`super::party::spawn_party_on`].
pub fn free_loopback_addr() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// A listener on a loopback port the kernel chose, kept bound: its
/// `local_addr` goes into the spec, the listener to the party.
pub fn bind_loopback() -> std::io::Result<std::net::TcpListener> {
    std::net::TcpListener::bind("127.0.0.1:0")
}
