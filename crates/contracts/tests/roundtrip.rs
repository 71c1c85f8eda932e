//! Every signed CNS statement round-trips through the canonical codec:
//! decoding its bytes gives the same value, re-encoding the same bytes, and
//! a signature made before encoding verifies after decoding — but not for
//! any other nonce or (for channel states) counter.

use gridledger_contracts::cns::{
    ChannelState, CreditApproval, CreditNote, DebitRecord, Domain, EscInit, MscInit, SignedApproval, SignedState,
    Statement, Trade,
};
use gridledger_core::codec::{decode, encode};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Address, Amount, Energy, Hash32, PublicKey};
use proptest::prelude::*;

fn amt() -> impl Strategy<Value = Amount> {
    any::<u128>().prop_map(Amount)
}
fn addr() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}
fn h32() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}
fn pk() -> impl Strategy<Value = PublicKey> {
    (0u32..8).prop_map(|i| KeyPair::from_seed(&format!("cns-rt-{i}")).public())
}

fn domain() -> impl Strategy<Value = Domain> {
    (any::<u32>(), any::<u32>()).prop_map(|(chain_id, contract)| Domain { chain_id, contract })
}

fn channel_state() -> impl Strategy<Value = ChannelState> {
    let trade = (any::<u8>(), any::<u64>(), amt(), amt()).prop_map(|(buyer, e, price_per_kwh, amount)| Trade {
        buyer,
        energy: Energy(e),
        price_per_kwh,
        amount,
    });
    (
        (domain(), h32(), any::<u64>()),
        (any::<u64>(), amt(), amt(), any::<u64>(), any::<u64>(), proptest::option::of(trade), any::<bool>()),
    )
        .prop_map(|((domain, cid, t_delta_ms), (counter, a, b, e0, e1, last_trade, is_final))| ChannelState {
            domain,
            cid,
            t_delta_ms,
            counter,
            balances: [a, b],
            energy: [Energy(e0), Energy(e1)],
            last_trade,
            fold: None,
            is_final,
            resize: gridledger_contracts::cns::Resize { topped_up: [a, b], withdrawn: [b, a] },
            prev_counter: counter / 2,
        })
}

fn approval() -> impl Strategy<Value = CreditApproval> {
    (addr(), pk(), h32(), amt(), amt(), any::<u64>(), any::<u64>()).prop_map(
        |(merchant, participant, documents, collateral, credit_limit, lock_ms, valid_until)| CreditApproval {
            merchant,
            participant,
            documents,
            collateral,
            credit_limit,
            lock_ms,
            valid_until,
        },
    )
}

fn statement() -> impl Strategy<Value = Statement> {
    prop_oneof![
        approval().prop_map(Statement::CreditApproval),
        (h32(), addr()).prop_map(|(approval, payout)| Statement::MscInit(MscInit { approval, payout })),
        (any::<[u64; 2]>(), pk(), pk(), addr(), addr(), any::<u64>(), any::<u32>()).prop_map(
            |(sids, k0, k1, p0, p1, n, dispute_limit)| Statement::EscInit(EscInit {
                sids,
                keys: [k0, k1],
                payouts: [p0, p1],
                n,
                dispute_limit
            })
        ),
        (any::<u64>(), h32(), amt()).prop_map(|(sid, cid, amount)| Statement::CreditNote(CreditNote {
            sid,
            cid,
            amount
        })),
        channel_state().prop_map(Statement::Channel),
        (any::<u64>(), h32(), amt(), amt(), any::<u64>(), amt(), amt()).prop_map(
            |(sid, cid, funded, final_amount, e, debit, credit)| Statement::Debit(DebitRecord {
                sid,
                cid,
                funded,
                final_amount,
                energy: Energy(e),
                debit,
                credit
            })
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn statements_round_trip_and_keep_their_signatures(s in statement(), d in domain(), nonce in any::<u64>(), signer in 0u32..4) {
        let bytes = encode(&s);
        let back: Statement = decode(&bytes, 1 << 20).expect("decodes");
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(encode(&back), bytes.clone());
        let key = KeyPair::from_seed(&format!("cns-rt-{signer}"));
        let sig = s.sign(&key, &d, nonce);
        prop_assert!(back.verify(&key.public(), &d, nonce, &sig));
        prop_assert!(!back.verify(&key.public(), &d, nonce.wrapping_add(1), &sig));
        let other = KeyPair::from_seed("cns-rt-other");
        prop_assert!(!back.verify(&other.public(), &d, nonce, &sig));
        // Bound to its chain and contract.
        let elsewhere = Domain { chain_id: d.chain_id.wrapping_add(1), ..d };
        prop_assert!(!back.verify(&key.public(), &elsewhere, nonce, &sig));
        // A truncated encoding is refused.
        prop_assert!(decode::<Statement>(&bytes[..bytes.len() - 1], 1 << 20).is_err());
    }

    #[test]
    fn signed_states_and_approvals_round_trip(st in channel_state(), a in approval(), nonce in any::<u64>()) {
        let (k0, k1) = (KeyPair::from_seed("cns-rt-0"), KeyPair::from_seed("cns-rt-1"));
        let signed = SignedState { state: st.clone(), nonce, sigs: [st.sign(&k0, nonce), st.sign(&k1, nonce)] };
        let back: SignedState = decode(&encode(&signed), 1 << 20).expect("decodes");
        prop_assert_eq!(&back, &signed);
        prop_assert_eq!(back.hstate(), signed.hstate());
        prop_assert!(back.state.verify(&k0.public(), nonce, &back.sigs[0]));
        prop_assert!(back.state.verify(&k1.public(), nonce, &back.sigs[1]));
        // The same state at another counter does not carry the signature over.
        let mut bumped = back.state.clone();
        bumped.counter = bumped.counter.wrapping_add(1);
        prop_assert!(!bumped.verify(&k0.public(), nonce, &back.sigs[0]));

        let d = st.domain;
        let sa = SignedApproval { approval: a.clone(), nonce, sig: Statement::CreditApproval(a).sign(&k0, &d, nonce) };
        let back: SignedApproval = decode(&encode(&sa), 1 << 20).expect("decodes");
        prop_assert_eq!(&back, &sa);
        prop_assert_eq!(back.digest(&d), sa.digest(&d));
        prop_assert!(Statement::CreditApproval(back.approval.clone()).verify(&k0.public(), &d, nonce, &back.sig));
    }
}
