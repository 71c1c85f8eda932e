//! Behaviour of the threshold scheme: every refusal with its typed error,
//! uniqueness of combined signatures (which the common coin relies on) and
//! the byte encodings.

use borsh::BorshDeserialize;
use gridledger_threshold::{coin, deal, KeyShare, PublicKeySet, Signature, SignatureShare, ThresholdError};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const D: &[u8] = b"test-domain";

fn setup(n: usize, t: usize, seed: u64) -> (PublicKeySet, Vec<KeyShare>) {
    deal(n, t, &mut ChaCha20Rng::seed_from_u64(seed)).expect("valid parameters")
}

fn shares(sks: &[KeyShare], idx: &[usize], msg: &[u8]) -> Vec<(usize, SignatureShare)> {
    idx.iter().map(|&i| (i, sks[i].sign_share(D, msg))).collect()
}

#[test]
fn shares_verify_and_any_threshold_subset_combines_to_the_same_signature() {
    let (pks, sks) = setup(7, 5, 1);
    assert_eq!(pks.threshold(), 5);
    assert_eq!(pks.members(), 7);
    for (i, sk) in sks.iter().enumerate() {
        assert_eq!(sk.index(), i);
        pks.verify_share(i, D, b"m", &sk.sign_share(D, b"m")).expect("own share verifies");
    }
    let a = pks.combine(&shares(&sks, &[0, 1, 2, 3, 4], b"m")).unwrap();
    let b = pks.combine(&shares(&sks, &[6, 2, 5, 0, 3], b"m")).unwrap();
    assert_eq!(a, b, "threshold signatures are unique");
    assert_eq!(coin(&a), coin(&b));
    pks.verify(D, b"m", &a).expect("combined signature verifies");
    pks.group_key().verify(D, b"m", &a).expect("under the group key");
    // More than t shares: still the same signature.
    let c = pks.combine(&shares(&sks, &[1, 2, 3, 4, 5, 6], b"m")).unwrap();
    assert_eq!(a, c);
}

#[test]
fn threshold_one_and_threshold_n_work() {
    let (pks, sks) = setup(4, 1, 2);
    let s = pks.combine(&shares(&sks, &[3], b"x")).unwrap();
    pks.verify(D, b"x", &s).unwrap();
    let (pks, sks) = setup(4, 4, 3);
    let s = pks.combine(&shares(&sks, &[3, 1, 0, 2], b"x")).unwrap();
    pks.verify(D, b"x", &s).unwrap();
}

#[test]
fn deal_refuses_bad_parameters() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    assert_eq!(deal(4, 0, &mut rng).unwrap_err(), ThresholdError::InvalidThreshold { n: 4, t: 0 });
    assert_eq!(deal(4, 5, &mut rng).unwrap_err(), ThresholdError::InvalidThreshold { n: 4, t: 5 });
    assert!(matches!(deal(2000, 3, &mut rng), Err(ThresholdError::InvalidThreshold { .. })));
}

#[test]
fn combine_refuses_too_few_duplicates_and_non_members() {
    let (pks, sks) = setup(4, 3, 5);
    let two = shares(&sks, &[0, 1], b"m");
    assert_eq!(pks.combine(&two).unwrap_err(), ThresholdError::TooFewShares { got: 2, need: 3 });
    assert_eq!(pks.combine(&[]).unwrap_err(), ThresholdError::TooFewShares { got: 0, need: 3 });
    let mut dup = shares(&sks, &[0, 1, 2], b"m");
    dup.push(dup[1]);
    assert_eq!(pks.combine(&dup).unwrap_err(), ThresholdError::DuplicateShare(1));
    // A duplicate is refused even when it would make up the threshold.
    let dup3 = shares(&sks, &[0, 1, 1], b"m");
    assert_eq!(pks.combine(&dup3).unwrap_err(), ThresholdError::DuplicateShare(1));
    let mut outsider = shares(&sks, &[0, 1, 2], b"m");
    outsider[2].0 = 4;
    assert_eq!(pks.combine(&outsider).unwrap_err(), ThresholdError::NotAMember { index: 4, n: 4 });
}

#[test]
fn verify_share_refuses_wrong_signer_message_domain_and_non_member() {
    let (pks, sks) = setup(4, 3, 6);
    let s0 = sks[0].sign_share(D, b"m");
    assert_eq!(pks.verify_share(1, D, b"m", &s0).unwrap_err(), ThresholdError::InvalidShare(1));
    assert_eq!(pks.verify_share(0, D, b"other", &s0).unwrap_err(), ThresholdError::InvalidShare(0));
    assert_eq!(pks.verify_share(0, b"other-domain", b"m", &s0).unwrap_err(), ThresholdError::InvalidShare(0));
    assert_eq!(pks.verify_share(9, D, b"m", &s0).unwrap_err(), ThresholdError::NotAMember { index: 9, n: 4 });
    assert!(matches!(pks.share_key(4), Err(ThresholdError::NotAMember { index: 4, n: 4 })));
}

#[test]
fn domain_is_bound_and_not_ambiguous_with_the_message() {
    // ("ab", "c") and ("a", "bc") must be different statements.
    let (pks, sks) = setup(4, 1, 7);
    let s = pks.combine(&[(0, sks[0].sign_share(b"ab", b"c"))]).unwrap();
    pks.verify(b"ab", b"c", &s).unwrap();
    assert_eq!(pks.verify(b"a", b"bc", &s).unwrap_err(), ThresholdError::InvalidSignature);
}

#[test]
fn a_bad_share_makes_a_signature_that_does_not_verify() {
    let (pks, sks) = setup(4, 3, 8);
    let mut sh = shares(&sks, &[0, 1, 2], b"m");
    sh[1].1 = sks[1].sign_share(D, b"not m");
    let sig = pks.combine(&sh).unwrap();
    assert_eq!(pks.verify(D, b"m", &sig).unwrap_err(), ThresholdError::InvalidSignature);
}

#[test]
fn a_signature_under_another_key_set_is_refused() {
    let (pks_a, sks_a) = setup(4, 3, 9);
    let (pks_b, _) = setup(4, 3, 10);
    let sig = pks_a.combine(&shares(&sks_a, &[0, 1, 2], b"m")).unwrap();
    assert_eq!(pks_b.verify(D, b"m", &sig).unwrap_err(), ThresholdError::InvalidSignature);
    assert_ne!(pks_a.group_key(), pks_b.group_key());
}

#[test]
fn coin_differs_between_messages() {
    let (pks, sks) = setup(4, 2, 11);
    let coins: std::collections::BTreeSet<u64> =
        (0u8..16).map(|r| coin(&pks.combine(&shares(&sks, &[0, 3], &[r])).unwrap())).collect();
    assert_eq!(coins.len(), 16);
}

#[test]
fn encodings_round_trip() {
    let (pks, sks) = setup(5, 3, 12);
    let pks2 = PublicKeySet::from_bytes(&pks.to_bytes()).unwrap();
    assert_eq!(pks, pks2);
    pks2.check_consistency().unwrap();
    let pks3: PublicKeySet = borsh::from_slice(&borsh::to_vec(&pks).unwrap()).unwrap();
    assert_eq!(pks, pks3);
    for sk in &sks {
        assert_eq!(&KeyShare::from_bytes(&sk.to_bytes()).unwrap(), sk);
        let b: KeyShare = borsh::from_slice(&borsh::to_vec(sk).unwrap()).unwrap();
        assert_eq!(&b, sk);
    }
    let share = sks[0].sign_share(D, b"m");
    assert_eq!(SignatureShare::from_bytes(&share.to_bytes()).unwrap(), share);
    let sig = pks.combine(&shares(&sks, &[0, 1, 2], b"m")).unwrap();
    let sig2: Signature = borsh::from_slice(&borsh::to_vec(&sig).unwrap()).unwrap();
    assert_eq!(sig, sig2);
    let gk = pks.group_key();
    assert_eq!(gridledger_threshold::GroupKey::from_bytes(&gk.to_bytes()).unwrap(), gk);
    assert!(!format!("{:?}", sks[0]).contains(&format!("{:?}", sks[0].to_bytes())));
}

#[test]
fn bad_bytes_are_refused_with_typed_errors() {
    let (pks, sks) = setup(4, 3, 13);
    let sig = pks.combine(&shares(&sks, &[0, 1, 2], b"m")).unwrap();
    let mut b = sig.to_bytes();
    assert!(matches!(Signature::from_bytes(&b[..47]), Err(ThresholdError::BadEncoding { .. })));
    b[0] ^= 0x20; // flips the sign bit... then corrupt x so it is off the curve
    b[10] ^= 0xff;
    b[11] ^= 0x5a;
    let off = Signature::from_bytes(&b);
    // Either off the curve or, rarely, a different valid point: never the same signature.
    assert_ne!(off.ok(), Some(sig));
    assert!(matches!(Signature::from_bytes(&[0xffu8; 48]), Err(ThresholdError::BadEncoding { .. })));
    // The compressed identity (0xc0 then zeros) is refused.
    let mut id = [0u8; 48];
    id[0] = 0xc0;
    assert!(matches!(Signature::from_bytes(&id), Err(ThresholdError::BadEncoding { why: "identity point", .. })));
    assert!(matches!(SignatureShare::from_bytes(&id), Err(ThresholdError::BadEncoding { .. })));
    assert!(borsh::from_slice::<Signature>(&[0xffu8; 48]).is_err());

    let good = pks.to_bytes();
    assert!(matches!(PublicKeySet::from_bytes(&good[..good.len() - 1]), Err(ThresholdError::BadEncoding { .. })));
    assert!(matches!(PublicKeySet::from_bytes(&good[..3]), Err(ThresholdError::BadEncoding { .. })));
    let mut t0 = good.clone();
    t0[0..4].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(PublicKeySet::from_bytes(&t0).unwrap_err(), ThresholdError::InvalidThreshold { n: 4, t: 0 });
    let mut tbig = good.clone();
    tbig[0..4].copy_from_slice(&5u32.to_le_bytes());
    assert_eq!(PublicKeySet::from_bytes(&tbig).unwrap_err(), ThresholdError::InvalidThreshold { n: 4, t: 5 });
    let mut badpt = good.clone();
    badpt[8 + 96 + 20] ^= 0xff;
    assert!(PublicKeySet::from_bytes(&badpt).is_err());
    // A huge borsh length prefix is refused before allocating.
    let mut huge = vec![0xff, 0xff, 0xff, 0x7f];
    huge.extend_from_slice(&good);
    assert!(PublicKeySet::try_from_slice(&huge).is_err());

    let kb = sks[0].to_bytes();
    assert!(matches!(KeyShare::from_bytes(&kb[..35]), Err(ThresholdError::BadEncoding { .. })));
    let mut over = kb.clone();
    over[4..].copy_from_slice(&[0xff; 32]);
    assert!(matches!(KeyShare::from_bytes(&over), Err(ThresholdError::BadEncoding { .. })));
    let mut zero = kb.clone();
    zero[4..].copy_from_slice(&[0; 32]);
    assert!(matches!(KeyShare::from_bytes(&zero), Err(ThresholdError::BadEncoding { why: "zero secret", .. })));
}

#[test]
fn an_inconsistent_key_set_is_detected() {
    let (pks, _) = setup(5, 3, 14);
    let (other, _) = setup(5, 3, 15);
    // Splice member 4's key from another dealing.
    let mut bytes = pks.to_bytes();
    let off = 8 + 96 * (1 + 4);
    bytes[off..off + 96].copy_from_slice(&other.share_key(4).unwrap().to_bytes());
    let spliced = PublicKeySet::from_bytes(&bytes).expect("points are valid");
    assert_eq!(spliced.check_consistency().unwrap_err(), ThresholdError::InconsistentKeySet);
    // And a foreign group key.
    let mut bytes = pks.to_bytes();
    bytes[8..8 + 96].copy_from_slice(&other.group_key().to_bytes());
    let spliced = PublicKeySet::from_bytes(&bytes).unwrap();
    assert_eq!(spliced.check_consistency().unwrap_err(), ThresholdError::InconsistentKeySet);
}

#[test]
fn a_signer_set_combines_the_same_signature_as_combine() {
    let (pks, sks) = setup(31, 21, 11);
    let idx: Vec<usize> = (5..26).collect();
    let set = pks.signer_set(&idx).unwrap();
    assert_eq!(set.indices(), &idx[..]);
    let sh = shares(&sks, &idx, b"m");
    let only: Vec<SignatureShare> = sh.iter().map(|(_, s)| *s).collect();
    let a = set.combine(&only).unwrap();
    assert_eq!(a, pks.combine(&sh).unwrap());
    pks.verify(D, b"m", &a).unwrap();
    // Refusals: wrong share count, non-members, duplicates, wrong set size.
    assert_eq!(set.combine(&only[1..]), Err(ThresholdError::TooFewShares { got: 20, need: 21 }));
    let mut bad = idx.clone();
    bad[0] = 31;
    assert_eq!(pks.signer_set(&bad), Err(ThresholdError::NotAMember { index: 31, n: 31 }));
    bad[0] = 6;
    assert_eq!(pks.signer_set(&bad), Err(ThresholdError::DuplicateShare(6)));
    assert_eq!(pks.signer_set(&idx[1..]), Err(ThresholdError::TooFewShares { got: 20, need: 21 }));
    // Shares given in another order than the set's make a signature that
    // does not verify (never a wrong one that does).
    let mut swapped = only.clone();
    swapped.swap(0, 1);
    assert_eq!(pks.verify(D, b"m", &set.combine(&swapped).unwrap()), Err(ThresholdError::InvalidSignature));
}

#[test]
fn batch_share_verification_accepts_valid_shares_and_names_an_invalid_one() {
    let (pks, sks) = setup(31, 21, 12);
    let idx: Vec<usize> = (0..31).collect();
    let mut sh = shares(&sks, &idx, b"m");
    pks.verify_shares(D, b"m", &sh).expect("all valid");
    pks.verify_shares(D, b"m", &[]).expect("empty batch");
    assert_eq!(pks.verify_shares(D, b"other", &sh), Err(ThresholdError::InvalidShare(0)));
    // Member 17's share on another message.
    sh[17].1 = sks[17].sign_share(D, b"x");
    assert_eq!(pks.verify_shares(D, b"m", &sh), Err(ThresholdError::InvalidShare(17)));
    // Two shares swapped between their members: each valid for the other.
    let mut sw = shares(&sks, &idx, b"m");
    let (a, b) = (sw[3].1, sw[4].1);
    sw[3].1 = b;
    sw[4].1 = a;
    assert_eq!(pks.verify_shares(D, b"m", &sw), Err(ThresholdError::InvalidShare(3)));
    let good = shares(&sks, &[1, 2], b"m");
    let dup = [good[0], good[1], good[0]];
    assert_eq!(pks.verify_shares(D, b"m", &dup), Err(ThresholdError::DuplicateShare(1)));
    let non = [(31, good[0].1)];
    assert_eq!(pks.verify_shares(D, b"m", &non), Err(ThresholdError::NotAMember { index: 31, n: 31 }));
}

#[test]
fn combine_verified_drops_bad_shares_and_finds_the_unique_signature() {
    let (pks, sks) = setup(31, 21, 13);
    let idx: Vec<usize> = (0..31).collect();
    let honest = pks.combine(&shares(&sks, &idx[..21], b"m")).unwrap();
    // All good: the optimistic path.
    assert_eq!(pks.combine_verified(D, b"m", &shares(&sks, &idx, b"m")).unwrap(), honest);
    // Three bad shares first, a repeat and a non-member among 31 + 2.
    let mut sh = shares(&sks, &idx, b"m");
    for s in sh.iter_mut().take(3) {
        s.1 = sks[s.0].sign_share(D, b"forged");
    }
    sh.insert(5, sh[10]);
    sh.push((40, sh[11].1));
    assert_eq!(pks.combine_verified(D, b"m", &sh).unwrap(), honest, "the same unique signature");
    // Eleven bad of 31: only 20 valid remain.
    let mut sh = shares(&sks, &idx, b"m");
    for s in sh.iter_mut().take(11) {
        s.1 = sks[s.0].sign_share(D, b"forged");
    }
    assert_eq!(pks.combine_verified(D, b"m", &sh), Err(ThresholdError::TooFewShares { got: 20, need: 21 }));
    assert_eq!(
        pks.combine_verified(D, b"m", &shares(&sks, &idx[..20], b"m")),
        Err(ThresholdError::TooFewShares { got: 20, need: 21 })
    );
}
