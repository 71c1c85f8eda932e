//! Threshold accounts (thesis §5.2.6): the BoB committee's 2f+1-of-n BLS
//! key, its share collection and replay-safe statements (issue item 9:
//! shares from non-members, replayed threshold signatures).

use gridledger_threshold::ThresholdError;
use gridledger_xchain::threshold::{
    tpk_address, BobCommittee, ShareCollector, Statement, StatementError, StatementVerifier,
};

fn statement(chain: u32, sequence: u64) -> Statement {
    Statement {
        instance: Default::default(),
        purpose: "release".into(),
        chain,
        sequence,
        payload: b"pay 10 to alice".to_vec(),
    }
}

#[test]
fn two_f_plus_one_of_31_shares_make_one_group_signature() {
    let c = BobCommittee::dev(31, 7).unwrap();
    assert_eq!(c.set.threshold(), 21);
    let st = statement(101, 0);
    let mut col = ShareCollector::new(&c.set, &st);
    // Any 2f+1 members, here the last 21.
    for (k, i) in (10..31).enumerate() {
        let out = col.add(i, c.sign_share(i, &st).unwrap()).unwrap();
        assert_eq!(out.is_some(), k == 20, "a signature exactly at the 21st share");
    }
    let sig = col.add(0, c.sign_share(0, &st).unwrap()).unwrap().unwrap();
    assert!(c.set.group_key().verify(gridledger_xchain::threshold::STATEMENT_DOMAIN, &st.bytes(), &sig).is_ok());
}

#[test]
fn shares_from_non_members_invalid_shares_and_duplicates_are_refused() {
    let c = BobCommittee::dev(4, 1).unwrap();
    let other = BobCommittee::dev(4, 2).unwrap();
    let st = statement(101, 0);
    let mut col = ShareCollector::new(&c.set, &st);
    col.add(0, c.sign_share(0, &st).unwrap()).unwrap();
    // Index outside the committee.
    let share = c.sign_share(1, &st).unwrap();
    assert_eq!(col.add(4, share), Err(ThresholdError::NotAMember { index: 4, n: 4 }));
    // A member index, but the share of another committee's key.
    assert_eq!(col.add(1, other.sign_share(1, &st).unwrap()), Err(ThresholdError::InvalidShare(1)));
    // A share on another statement.
    assert_eq!(col.add(1, c.sign_share(1, &statement(101, 1)).unwrap()), Err(ThresholdError::InvalidShare(1)));
    // The same member twice.
    assert_eq!(col.add(0, c.sign_share(0, &st).unwrap()), Err(ThresholdError::DuplicateShare(0)));
    assert_eq!(col.len(), 1, "refused shares change nothing");
    assert_eq!(col.add(1, share).unwrap(), None);
    assert!(col.add(2, c.sign_share(2, &st).unwrap()).unwrap().is_some(), "2f+1 = 3 of 4");
}

#[test]
fn replayed_threshold_signatures_are_refused() {
    let c = BobCommittee::dev(4, 3).unwrap();
    let group = c.set.group_key();
    let sign = |st: &Statement| {
        let shares = c.shares_from(&[0, 1, 2], st);
        c.set.combine(&shares).unwrap()
    };
    let mut v = StatementVerifier::default();
    let st0 = statement(101, 0);
    let sig0 = sign(&st0);
    v.accept(&group, 101, &st0, &sig0).unwrap();
    // The same statement and signature again.
    assert_eq!(v.accept(&group, 101, &st0, &sig0), Err(StatementError::Replayed { expected: 1, got: 0 }));
    // The signature moved to the next sequence number or to another chain.
    assert_eq!(
        v.accept(&group, 101, &statement(101, 1), &sig0),
        Err(StatementError::Signature(ThresholdError::InvalidSignature))
    );
    assert_eq!(v.accept(&group, 102, &st0, &sig0), Err(StatementError::WrongChain { expected: 102, got: 101 }));
    // Nothing changed: the genuine next statement is still accepted.
    let st1 = statement(101, 1);
    v.accept(&group, 101, &st1, &sign(&st1)).unwrap();
}

#[test]
fn the_bob_config_locks_into_the_committee_key_s_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let m = gridledger_xchain::BobMbs::open(dir.path(), Default::default()).unwrap();
    let gk = m.committee.group_key_bytes();
    assert_eq!(gk.len(), 96);
    for c in m.chain_ids() {
        assert_eq!(m.config.tpk_address(c), tpk_address(&gk, &m.config.deployment, c));
    }
}
