//! IOR transactions (AT, Eq 3.1; ST, Eq 3.2), recorded entries and TCRs
//! round-trip through the canonical codec; the seller's and buyer's
//! recoverable signatures still recover the signer after decoding.

use gridledger_core::codec::{decode, encode};
use gridledger_core::crypto::{recover, KeyPair};
use gridledger_core::{Address, Amount, Energy};
use gridledger_rollup::types::{
    AgreementTerms, AgreementTx, AtRejection, BuyerOpinion, Effect, Entry, IorTx, Outcome, SettlementTx, SigDomain,
    StRejection, StSettlement, Tcr,
};
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

fn terms() -> impl Strategy<Value = AgreementTerms> {
    (any::<u128>(), any::<u64>(), addr(), addr(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
        |(ep, em, buyer, seller, dt_start, dt_end, dl)| AgreementTerms {
            ep: Amount(ep),
            em: Energy(em),
            buyer,
            seller,
            dt_start,
            dt_end,
            dl,
        },
    )
}

fn ior_tx() -> impl Strategy<Value = IorTx> {
    prop_oneof![
        (terms(), any::<bool>()).prop_map(|(t, signed)| {
            if signed {
                IorTx::At(AgreementTx::signed(t, &KeyPair::from_seed("ior-rt-seller")))
            } else {
                IorTx::At(AgreementTx { terms: t, seller_sig: None })
            }
        }),
        (
            terms(),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            proptest::collection::vec(any::<i64>(), 0..20)
        )
            .prop_map(|(terms, stmp, ob, signed, dt_step_s, ps)| {
                let st = SettlementTx { terms, stmp, buyer_sig: None, ob, dt_step_s, ps, meter_sig: None };
                IorTx::St(if signed {
                    st.sign_readings(&KeyPair::from_seed("ior-rt-meter"))
                        .sign_as_buyer(&KeyPair::from_seed("ior-rt-buyer"))
                } else {
                    st
                })
            }),
        (terms(), any::<bool>()).prop_map(|(terms, ob)| IorTx::Opinion(BuyerOpinion { terms, ob })),
        terms().prop_map(IorTx::Expire),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::AtAccepted),
        (addr(), addr()).prop_map(|(sender, buyer)| Outcome::AtRejected(AtRejection::WrongSender { sender, buyer })),
        Just(Outcome::AtRejected(AtRejection::NotSignedBySeller)),
        ".{0,16}".prop_map(|s| Outcome::AtRejected(AtRejection::InvalidTerms(s))),
        (addr(), any::<u32>(), any::<u32>())
            .prop_map(|(who, score, beta)| Outcome::AtRejected(AtRejection::ReputationTooLow { who, score, beta })),
        Just(Outcome::StSettled(StSettlement::SellerShortfall)),
        Just(Outcome::StSettled(StSettlement::LateBuyerSignature)),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(expected, got, step_s)| Outcome::StRejected(
            StRejection::ReadingsMismatch { expected, got, step_s }
        )),
        (any::<u64>(), any::<u64>())
            .prop_map(|(dl, now)| Outcome::StRejected(StRejection::AwaitingBuyerSignature { dl, now })),
        (any::<u64>(), any::<u64>())
            .prop_map(|(dt_end, now)| Outcome::AtRejected(AtRejection::DeliveryPassed { dt_end, now })),
        (any::<u64>(), any::<u64>()).prop_map(|(from, now)| Outcome::StRejected(StRejection::NotExpired { from, now })),
        Just(Outcome::OpinionRecorded),
        Just(Outcome::Expired),
        Just(Outcome::StRejected(StRejection::SettledInBatch)),
    ]
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![
        terms().prop_map(Effect::Open),
        (addr(), any::<u128>()).prop_map(|(who, a)| Effect::Lock { who, amount: Amount(a) }),
        (addr(), any::<u128>()).prop_map(|(to, a)| Effect::Pay { to, amount: Amount(a) }),
        any::<u128>().prop_map(|a| Effect::Burn(Amount(a))),
        Just(Effect::Close),
        (addr(), any::<u32>()).prop_map(|(who, by)| Effect::Reputation { who, by }),
        any::<bool>().prop_map(Effect::Opinion),
        (terms(), any::<u128>()).prop_map(|(t, ws)| Effect::Claim {
            slot: gridledger_rollup::types::SlotKey { seller: t.seller, dt_start: t.dt_start, dt_end: t.dt_end },
            ws,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn ior_transactions_and_entries_round_trip(tx in ior_tx(), sender in addr(), recorded_at in any::<u64>()) {
        let bytes = encode(&tx);
        let back: IorTx = decode(&bytes, 1 << 20).expect("decodes");
        prop_assert_eq!(&back, &tx);
        prop_assert_eq!(encode(&back), bytes.clone());
        match &back {
            IorTx::At(at) => {
                if let Some(sig) = &at.seller_sig {
                    let seller = KeyPair::from_seed("ior-rt-seller").public();
                    prop_assert_eq!(recover(&at.terms.seller_digest(&SigDomain::DEV), sig), Ok(seller));
                }
            }
            IorTx::St(st) | IorTx::StReach(st, _) => {
                if let Some(sig) = &st.buyer_sig {
                    let buyer = KeyPair::from_seed("ior-rt-buyer").public();
                    prop_assert_eq!(recover(&st.terms.buyer_digest(&SigDomain::DEV, st.ob), sig), Ok(buyer));
                    // The opinion is bound: the other O_b does not recover the buyer.
                    prop_assert_ne!(recover(&st.terms.buyer_digest(&SigDomain::DEV, !st.ob), sig), Ok(buyer));
                }
                if let Some(sig) = &st.meter_sig {
                    let meter = KeyPair::from_seed("ior-rt-meter").public();
                    prop_assert_eq!(recover(&st.readings_digest(&SigDomain::DEV), sig), Ok(meter));
                }
            }
            IorTx::Opinion(_) | IorTx::Expire(_) => {}
        }
        prop_assert!(decode::<IorTx>(&bytes[..bytes.len() - 1], 1 << 20).is_err());
        let e = Entry { sender, recorded_at, tx };
        let back: Entry = decode(&encode(&e), 1 << 20).expect("decodes");
        prop_assert_eq!(back, e);
    }

    #[test]
    fn tcrs_round_trip(index in any::<u32>(), outcome in outcome(), effects in proptest::collection::vec(effect(), 0..6)) {
        let t = Tcr { index, outcome, effects };
        let bytes = encode(&t);
        let back: Tcr = decode(&bytes, 1 << 20).expect("decodes");
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(encode(&back), bytes);
    }
}
