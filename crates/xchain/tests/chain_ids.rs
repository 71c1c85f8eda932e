//! Chain ids are per deployment: derived from the genesis time and the
//! committee seed, within the ledger's `u32` chain ids.

use gridledger_xchain::mbs::{BobMbs, MbsError, MbsSpec, Role, BOB_CHAIN, FIRST_EXTERNAL, MAX_CHAINS};

fn spec(genesis_time: u64, committee_seed: u64) -> MbsSpec {
    MbsSpec { genesis_time, committee_seed, ..MbsSpec::default() }
}

#[test]
fn derived_ids_are_a_pure_function_of_genesis_time_and_committee_seed() {
    let a = spec(1_000, 1);
    assert_eq!(a.chain_base(), spec(1_000, 1).chain_base(), "the same deployment derives the same ids");
    assert_ne!(a.chain_base(), spec(1_001, 1).chain_base(), "another genesis time, other ids");
    assert_ne!(a.chain_base(), spec(1_000, 2).chain_base(), "another committee, other ids");
    for t in 0..200u64 {
        let b = spec(t, 7).chain_base();
        assert!((1 << 16..1 << 31).contains(&b), "base {b} out of range");
    }
    let s = MbsSpec { chains: 3, ..a.clone() };
    assert_eq!(s.bob_chain(), s.chain_base());
    assert_eq!(s.chain_ids(), vec![s.chain_base() + 1, s.chain_base() + 2, s.chain_base() + 3]);
    assert_eq!(Role::External(2).chain_id(&s), s.chain_base() + 3);
    assert_eq!(Role::Bob.chain_id(&s), s.chain_base());
    let f = MbsSpec::fixed_ids();
    assert_eq!((f.bob_chain(), f.chain_ids()), (BOB_CHAIN, vec![FIRST_EXTERNAL, FIRST_EXTERNAL + 1]));
}

#[test]
fn a_deployment_runs_its_chains_under_its_own_ids() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(123_456, 1);
    let m = BobMbs::open(dir.path(), s.clone()).unwrap();
    assert_eq!(m.bob.chain_id(), s.bob_chain());
    assert_eq!(m.chain_ids(), s.chain_ids());
    for (n, id) in s.chain_ids().into_iter().enumerate() {
        assert_eq!(m.external(id).unwrap().chain().genesis().chain_id, id);
        assert!(dir.path().join(Role::External(n).dir_name()).is_dir(), "chain directories are named by index");
    }
}

#[test]
fn ids_past_u32_or_too_many_chains_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let near_max = MbsSpec { fixed_chain_base: Some(u32::MAX - 1), ..MbsSpec::default() };
    assert!(matches!(BobMbs::open(dir.path(), near_max), Err(MbsError::Spec(_))));
    let many = MbsSpec { chains: MAX_CHAINS + 1, ..MbsSpec::default() };
    assert!(matches!(BobMbs::open(dir.path(), many), Err(MbsError::Spec(_))));
    assert!(!dir.path().join(Role::Bob.dir_name()).exists(), "no chain was opened");
}

/// Two deployments with the same ids and genesis time but another committee
/// (the case the signing domain must cover once ids collide): a transfer
/// signed for one's chain is refused by the other's and changes nothing;
/// and the domain a driver without chains computes ([`chain_domain`]) is
/// each chain's own.
#[test]
fn same_ids_and_genesis_time_but_another_committee_do_not_share_a_signing_domain() {
    use gridledger_core::Amount;
    use gridledger_ledger::devnet::{dev_key, transfer};
    use gridledger_ledger::SubmitError;
    use gridledger_xchain::mbs::chain_domain;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sa = MbsSpec { genesis_time: 77_000, committee_seed: 1, ..MbsSpec::fixed_ids() };
    let sb = MbsSpec { committee_seed: 2, ..sa.clone() };
    let mut a = BobMbs::open(da.path(), sa).unwrap();
    let mut b = BobMbs::open(db.path(), sb).unwrap();
    assert_eq!(a.chain_ids(), b.chain_ids());
    for m in [&a, &b] {
        assert_eq!(chain_domain(&m.spec, m.bob.chain_id()), Some(m.bob.domain()));
        for id in m.chain_ids() {
            assert_eq!(chain_domain(&m.spec, id), Some(m.external(id).unwrap().domain()));
        }
        assert_eq!(chain_domain(&m.spec, 7), None);
    }
    assert_ne!(a.bob.domain(), b.bob.domain());
    let payer = dev_key(0);
    let to = dev_key(3).address();
    let nt =
        a.external(FIRST_EXTERNAL).unwrap().sign(&payer, transfer(&payer, FIRST_EXTERNAL, 0, to, Amount(5), Amount(1)));
    assert!(a.external_mut(FIRST_EXTERNAL).unwrap().submit(&nt).is_ok());
    let c = b.external_mut(FIRST_EXTERNAL).unwrap();
    let before = (c.chain().state().root(), c.chain().mempool().len());
    assert_eq!(c.submit(&nt), Err(SubmitError::BadSignature));
    assert_eq!((c.chain().state().root(), c.chain().mempool().len()), before);
}
