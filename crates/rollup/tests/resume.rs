//! A driver that attaches to IOR contracts an earlier driver initialised
//! (`DualChain::attach`): what `gridledger ior day --rpc` does to resume a
//! day whose run was stopped part way (issue 11, attack r8 [4]).

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_rollup::driver::{dev_chain, DriverConfig, DriverError, DualChain, Mode};
use gridledger_rollup::types::{coins, IorTx, Outcome, StSettlement};
use gridledger_rollup::{primary_registry, secondary_registry};

/// The first driver records an AT and an agreed ST of an earlier agreement
/// and stops before settling their batch. A driver with another
/// configuration is refused; one with the same configuration settles the
/// batch (and later ones) without initialising anything again.
#[test]
fn a_second_driver_settles_what_a_stopped_one_recorded() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = config(Mode::Ior, 4, 2, 3);
    let accounts = 4 + 2 + 3;
    let (b, s) = (trader(0), trader(1));
    let t = terms(&b, &s, Amount(200_000), 500, 8 * HOUR);
    let reopen = || {
        let p = dev_chain(dirs.0.path(), accounts, cfg.wallet, primary_registry()).unwrap();
        let q = dev_chain(dirs.1.path(), accounts, cfg.wallet, secondary_registry()).unwrap();
        (p, q)
    };
    let pending = {
        let mut d = DualChain::open(dirs.0.path(), dirs.1.path(), cfg.clone()).unwrap();
        d.register_meters(&[b.clone(), s.clone()]).unwrap();
        for k in [&b, &s] {
            assert_eq!(d.fund(k, coins(10)).unwrap().status, TxStatus::Success);
        }
        d.set_time(7 * HOUR);
        assert_eq!(d.submit(&b, &at(&t, &s)).unwrap().status, TxStatus::Success);
        // Stopped here: the batch is recorded, nothing executes it.
        let (next, fin) = d.reader().progress().unwrap();
        assert!(next > fin);
        next
    };
    // Another configuration: refused, nothing sent.
    let (p, q) = reopen();
    let other = DriverConfig { ior_window_ms: cfg.ior_window_ms + 1, ..cfg.clone() };
    match DualChain::attach(p, q, other) {
        Err(DriverError::Mismatch(why)) => assert!(why.contains("window_ms"), "{why}"),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a driver with another dispute window attached"),
    }
    // The same configuration: the recorded batch settles, and the day goes on.
    let (p, q) = reopen();
    let mut d = DualChain::attach(p, q, cfg).unwrap();
    let settled = d.process(&mut rng(0)).unwrap();
    assert_eq!(d.reader().progress().unwrap(), (pending, pending), "every recorded batch settled");
    assert!(settled.iter().flat_map(|x| &x.outcomes).any(|o| *o == Outcome::AtAccepted), "{settled:?}");
    d.set_time(t.dt_end + 5 * MIN);
    assert_eq!(d.submit(&s, &IorTx::St(st(&t, 1000, true, Some(&b)))).unwrap().status, TxStatus::Success);
    let out: Vec<Outcome> = d.process(&mut rng(0)).unwrap().into_iter().flat_map(|x| x.outcomes).collect();
    assert_eq!(out, vec![Outcome::StSettled(StSettlement::Agreed)]);
    assert!(d.settled_state().unwrap().agreements.is_empty());
    assert_eq!(d.participant(&b.address()).unwrap().balance, Amount(9_900_000), "the buyer paid once");
    assert_eq!(internal_total(&d, accounts), contract_balance(&d).0, "coin conserved");
}
