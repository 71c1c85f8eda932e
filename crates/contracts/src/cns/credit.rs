//! The merchant's off-chain credit assessment (seed §3.3.6, Fig 3).
//!
//! A participant applies with hashes of its supporting documents; the
//! merchant checks the blacklist and pre-existing disputes, runs a pluggable
//! [`RiskFunction`] and, if it accepts, returns a [`SignedApproval`] carrying
//! the collateral the participant must deposit with `msc-init`. The merchant
//! also signs per-channel credit notes and the recalculated debits of closed
//! channels. Nothing here touches the chain: the merchant's service feeds in
//! what it read (its own blacklist, the participant's on-chain record).

use super::types::*;
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::{Address, Amount, Hash32, KeyPair, PublicKey, Timestamp};
use thiserror::Error;

/// A credit application (seed Fig 3: request plus supporting documents).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditApplication {
    /// The participant's MSC pseudonym key.
    pub participant: PublicKey,
    /// Hashes of the supporting documents (identity, bank statements ...).
    /// The documents go to the merchant over a private channel; only their
    /// combined hash is ever signed.
    pub documents: Vec<Hash32>,
    /// Credit the participant asks for.
    pub requested_credit: Amount,
    /// The participant's real identity, known to the merchant only (KYC);
    /// used for the blacklist check and never placed on chain.
    pub identity: String,
}

/// What the merchant knows about the applicant beyond the application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplicantHistory {
    /// Disputes the applicant was found at fault for in earlier MSCs.
    pub disputes_at_fault: u32,
    /// Defaults (debt beyond collateral) in earlier MSCs.
    pub defaults: u32,
}

/// The risk function's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskDecision {
    pub credit_limit: Amount,
    pub collateral: Amount,
    /// Time-lock window of the collateral (ms).
    pub lock_ms: u64,
}

/// Why an application was refused (seed Fig 4 step 2, `msc-abort`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CreditRefusal {
    #[error("applicant is blacklisted")]
    Blacklisted,
    #[error("applicant has {0} disputes on record, above the merchant's limit")]
    TooManyDisputes(u32),
    #[error("no supporting documents")]
    NoDocuments,
    #[error("risk assessment refused: {0}")]
    Risk(String),
}

/// The merchant's pluggable risk model. It must be deterministic in its
/// inputs; money is integer.
pub trait RiskFunction {
    fn assess(&self, app: &CreditApplication, history: &ApplicantHistory) -> Result<RiskDecision, CreditRefusal>;
}

/// A simple risk model: collateral is a fixed share (basis points) of the
/// credit granted, rounded up; credit is capped; each dispute on record
/// raises the collateral share by `per_dispute_bps`.
#[derive(Clone, Debug)]
pub struct CollateralRatio {
    pub base_bps: u32,
    pub per_dispute_bps: u32,
    pub max_credit: Amount,
    pub lock_ms: u64,
}

impl RiskFunction for CollateralRatio {
    fn assess(&self, app: &CreditApplication, history: &ApplicantHistory) -> Result<RiskDecision, CreditRefusal> {
        if history.defaults > 0 {
            return Err(CreditRefusal::Risk("earlier default".into()));
        }
        let credit = app.requested_credit.min(self.max_credit);
        let bps = u128::from(self.base_bps) + u128::from(self.per_dispute_bps) * u128::from(history.disputes_at_fault);
        let collateral = credit
            .0
            .checked_mul(bps)
            .map(|v| Amount(v.div_ceil(10_000)))
            .ok_or_else(|| CreditRefusal::Risk("overflow".into()))?;
        Ok(RiskDecision { credit_limit: credit, collateral, lock_ms: self.lock_ms })
    }
}

/// A merchant's off-chain signing service.
pub struct MerchantDesk<F: RiskFunction> {
    /// The chain and CNS contract the desk signs for (every approval, note
    /// and debit is bound to it).
    pub domain: Domain,
    pub key: KeyPair,
    pub account: Address,
    pub risk: F,
    /// Real identities refused (seed §3.3.6, §5.1.3).
    pub blacklist: Vec<String>,
    /// Most disputes on record the merchant tolerates.
    pub max_disputes: u32,
    /// Validity of an approval (ms).
    pub approval_ttl_ms: u64,
}

/// Commitment to a list of supporting documents.
pub fn documents_commitment(docs: &[Hash32]) -> Hash32 {
    hash_tagged(Tag("gridledger/cns/documents/v1"), &docs.to_vec())
}

impl<F: RiskFunction> MerchantDesk<F> {
    /// Assesses an application (seed Fig 3); on success returns the signed
    /// approval with the needed collateral. `nonce` is the `N` of
    /// `H(state, N)`, drawn by the caller's RNG.
    pub fn assess(
        &self,
        app: &CreditApplication,
        history: &ApplicantHistory,
        now: Timestamp,
        nonce: u64,
    ) -> Result<SignedApproval, CreditRefusal> {
        if app.documents.is_empty() {
            return Err(CreditRefusal::NoDocuments);
        }
        if self.blacklist.iter().any(|b| b == &app.identity) {
            return Err(CreditRefusal::Blacklisted);
        }
        if history.disputes_at_fault > self.max_disputes {
            return Err(CreditRefusal::TooManyDisputes(history.disputes_at_fault));
        }
        let d = self.risk.assess(app, history)?;
        let approval = CreditApproval {
            merchant: self.account,
            participant: app.participant,
            documents: documents_commitment(&app.documents),
            collateral: d.collateral,
            credit_limit: d.credit_limit,
            lock_ms: d.lock_ms,
            valid_until: now.saturating_add(self.approval_ttl_ms),
        };
        let sig = Statement::CreditApproval(approval.clone()).sign(&self.key, &self.domain, nonce);
        Ok(SignedApproval { approval, nonce, sig })
    }

    /// Signs a credit note backing `amount` of side `sid` in channel `cid`.
    pub fn sign_note(&self, sid: u64, cid: Hash32, amount: Amount, nonce: u64) -> Funding {
        let merchant_sig = Statement::CreditNote(CreditNote { sid, cid, amount }).sign(&self.key, &self.domain, nonce);
        Funding::CreditNote { nonce, merchant_sig }
    }

    /// Signs the note backing the `index`-th top-up of a credit-funded side
    /// (`channel_topup`; the channel's `topups[side]` count is the next
    /// index: top-ups are counted per side, so the peer's cannot move it).
    pub fn sign_topup_note(&self, sid: u64, cid: Hash32, index: u64, amount: Amount, nonce: u64) -> Funding {
        let note = CreditTopUp { sid, cid, index, amount };
        let merchant_sig = Statement::CreditTopUp(note).sign(&self.key, &self.domain, nonce);
        Funding::CreditNote { nonce, merchant_sig }
    }

    /// Recalculates and signs a closed channel's settlement (Fig 16). The
    /// merchant signs only what the record's own arithmetic says.
    pub fn sign_debit(&self, rec: &DebitRecord, nonce: u64) -> Result<SignDebitArgs, CreditRefusal> {
        let debit = rec.funded.saturating_sub(rec.final_amount);
        let credit = rec.final_amount.saturating_sub(rec.funded);
        if debit != rec.debit || credit != rec.credit {
            return Err(CreditRefusal::Risk("settlement does not recalculate".into()));
        }
        Ok(SignDebitArgs {
            sid: rec.sid,
            cid: rec.cid,
            nonce,
            sig: Statement::Debit(rec.clone()).sign(&self.key, &self.domain, nonce),
        })
    }
}

/// The participant's `msc-init` (seed Fig 11): signs `H(MscInit, N)` over the
/// approval it received.
pub fn msc_init_args(
    domain: &Domain,
    participant: &KeyPair,
    approval: SignedApproval,
    payout: Address,
    nonce: u64,
) -> MscInitArgs {
    let stmt = Statement::MscInit(MscInit { approval: approval.digest(domain), payout });
    MscInitArgs { sig: stmt.sign(participant, domain, nonce), approval, payout, nonce }
}

/// Both parties' `sc-init` signatures (seed Fig 12), given their MSC keys.
pub fn esc_open_args(domain: &Domain, init: EscInit, msc_keys: [&KeyPair; 2], nonce: u64) -> EscOpenArgs {
    let stmt = Statement::EscInit(init.clone());
    EscOpenArgs { sigs: [stmt.sign(msc_keys[0], domain, nonce), stmt.sign(msc_keys[1], domain, nonce)], init, nonce }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk() -> MerchantDesk<CollateralRatio> {
        let key = KeyPair::from_seed("merchant");
        MerchantDesk {
            domain: Domain::cns(1),
            account: key.address(),
            key,
            risk: CollateralRatio {
                base_bps: 2_000,
                per_dispute_bps: 1_000,
                max_credit: Amount(1_000),
                lock_ms: 60_000,
            },
            blacklist: vec!["mallory".into()],
            max_disputes: 2,
            approval_ttl_ms: 10_000,
        }
    }

    fn app(identity: &str) -> CreditApplication {
        CreditApplication {
            participant: KeyPair::from_seed("p").public(),
            documents: vec![Hash32([1; 32])],
            requested_credit: Amount(5_000),
            identity: identity.into(),
        }
    }

    #[test]
    fn approval_carries_collateral_and_verifies() {
        let d = desk();
        let h = ApplicantHistory { disputes_at_fault: 1, defaults: 0 };
        let a = d.assess(&app("alice"), &h, 100, 7).unwrap();
        assert_eq!(a.approval.credit_limit, Amount(1_000));
        assert_eq!(a.approval.collateral, Amount(300)); // 30 % of 1000
        assert_eq!(a.approval.valid_until, 10_100);
        let stmt = Statement::CreditApproval(a.approval.clone());
        assert!(stmt.verify(&d.key.public(), &d.domain, 7, &a.sig));
        // Bound to its chain: the same signature is void on chain 2.
        assert!(!stmt.verify(&d.key.public(), &Domain::cns(2), 7, &a.sig));
        // No real identity in what is signed (and later put on chain).
        let bytes = borsh::to_vec(&a.approval).unwrap();
        assert!(!bytes.windows(5).any(|w| w == b"alice"));
    }

    #[test]
    fn blacklist_disputes_and_missing_documents_refuse() {
        let d = desk();
        let h = ApplicantHistory::default();
        assert_eq!(d.assess(&app("mallory"), &h, 0, 1), Err(CreditRefusal::Blacklisted));
        let many = ApplicantHistory { disputes_at_fault: 3, defaults: 0 };
        assert_eq!(d.assess(&app("bob"), &many, 0, 1), Err(CreditRefusal::TooManyDisputes(3)));
        let mut a = app("bob");
        a.documents.clear();
        assert_eq!(d.assess(&a, &h, 0, 1), Err(CreditRefusal::NoDocuments));
    }
}
