//! Every PBFT wire message round-trips through the canonical codec: decoding
//! its bytes gives the same message, re-encoding gives the same bytes, and
//! signatures made before encoding still verify after decoding. A message
//! with lists longer than the validator set is refused on decoding.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{
    CommittedEntry, DecodeError, Message, NewView, Payload, PrePrepare, PreparedCert, QuorumCert, ValidatorSet,
    ViewChange, Vote, VoteKind,
};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Hash32, Signature};
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Blk {
    height: u64,
    txs: Vec<u64>,
}

impl Payload for Blk {
    fn digest(&self) -> Hash32 {
        hash_tagged(Tag("test/blk"), self)
    }
    fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }
    fn well_formed(&self) -> Result<(), String> {
        Ok(())
    }
}

const N: usize = 4;
const INSTANCE: Hash32 = Hash32([9; 32]);

fn keys() -> Vec<KeyPair> {
    (0..N).map(|i| KeyPair::from_seed(&format!("rt-{i}"))).collect()
}

fn set() -> ValidatorSet {
    ValidatorSet::new(INSTANCE, keys().iter().map(|k| k.public()).collect()).expect("set")
}

fn sigs(n: usize, seed: u8) -> Vec<(u32, Signature)> {
    (0..n).map(|i| (i as u32, Signature([seed.wrapping_add(i as u8); 64]))).collect()
}

fn arb_blk() -> impl Strategy<Value = Blk> {
    (any::<u64>(), proptest::collection::vec(any::<u64>(), 0..6)).prop_map(|(height, txs)| Blk { height, txs })
}

fn arb_message() -> impl Strategy<Value = Message<Blk>> {
    let ks = keys();
    let k2 = ks.clone();
    let k3 = ks.clone();
    prop_oneof![
        (any::<u64>(), any::<u64>(), arb_blk()).prop_map(move |(v, h, b)| {
            let leader = set().leader(v, h) as usize;
            Message::PrePrepare(PrePrepare::sign(&ks[leader], &INSTANCE, v, h, b))
        }),
        (0usize..N, any::<u64>(), any::<u64>(), any::<[u8; 32]>(), any::<bool>()).prop_map(
            move |(i, v, h, b, commit)| {
                let kind = if commit { VoteKind::Commit } else { VoteKind::Prepare };
                let vote = Vote::sign(&k2[i], kind, &INSTANCE, v, h, Hash32(b));
                if commit {
                    Message::Commit(vote)
                } else {
                    Message::Prepare(vote)
                }
            }
        ),
        (0usize..N, 1u64..1000, any::<u64>(), proptest::option::of((arb_blk(), 0usize..=N, any::<u8>()))).prop_map(
            move |(i, nv, h, prep)| {
                let prepared =
                    prep.map(|(payload, n, s)| PreparedCert { view: nv - 1, height: h, payload, prepares: sigs(n, s) });
                let vc = ViewChange::sign(&k3[i], i as u32, &INSTANCE, nv, h, prepared);
                Message::ViewChange(vc)
            }
        ),
        (any::<u64>(), arb_blk(), 0usize..=N).prop_map(|(h, b, n)| {
            let ks = keys();
            let vcs = (0..n).map(|i| ViewChange::sign(&ks[i], i as u32, &INSTANCE, 5, h, None)).collect();
            let pp = PrePrepare::sign(&ks[set().leader(5, h) as usize], &INSTANCE, 5, h, b);
            Message::NewView(NewView { view: 5, height: h, view_changes: vcs, pre_prepare: pp })
        }),
        any::<u64>().prop_map(|from_height| Message::CatchUpRequest { from_height }),
        proptest::collection::vec((arb_blk(), any::<u64>(), 0usize..=N, any::<u8>()), 0..4).prop_map(|es| {
            let entries = es
                .into_iter()
                .map(|(payload, view, n, s)| {
                    let cert =
                        QuorumCert { view, height: payload.height, block: payload.digest(), signatures: sigs(n, s) };
                    CommittedEntry { payload, cert }
                })
                .collect();
            Message::CatchUpResponse { entries }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn pbft_messages_round_trip(m in arb_message()) {
        let bytes = m.to_bytes();
        let back = Message::<Blk>::from_bytes(&bytes, 1 << 20, N, 16).expect("decodes");
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_bytes(), bytes.clone());
        prop_assert_eq!(back.height(), m.height());
        let s = set();
        match &back {
            Message::PrePrepare(p) => prop_assert!(p.verify(&s)),
            Message::ViewChange(v) if v.prepared.is_none() => prop_assert!(v.verify(&s).is_ok()),
            Message::NewView(nv) => prop_assert!(nv.pre_prepare.verify(&s)),
            _ => {}
        }
        // Any strict prefix is refused, never a panic.
        if !bytes.is_empty() {
            prop_assert!(Message::<Blk>::from_bytes(&bytes[..bytes.len() - 1], 1 << 20, N, 16).is_err());
        }
    }

    #[test]
    fn lists_longer_than_the_validator_set_are_refused(extra in 1usize..4, s in any::<u8>()) {
        let b = Blk { height: 1, txs: vec![1] };
        let cert = QuorumCert { view: 0, height: 1, block: b.digest(), signatures: sigs(N + extra, s) };
        let m = Message::CatchUpResponse { entries: vec![CommittedEntry { payload: b, cert }] };
        prop_assert!(matches!(
            Message::<Blk>::from_bytes(&m.to_bytes(), 1 << 20, N, 16),
            Err(DecodeError::OutOfBounds(_))
        ));
    }
}
