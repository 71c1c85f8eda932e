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
