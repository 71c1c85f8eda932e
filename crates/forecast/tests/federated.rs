//! The multi-chain federated driver (`federated::Federation`): training
//! through CTP-FL on two chains with a Byzantine client and a Byzantine
//! view-0 leader per chain, the day-ahead forecast, and refused settings.

use gridledger_fl::round::ClientBehaviour;
use gridledger_forecast::federated::{FederatedConfig, Federation};
use gridledger_forecast::ForecastError;

#[test]
fn training_on_two_chains_under_byzantine_clients_and_leaders_lowers_the_validation_error() {
    let cfg = FederatedConfig { byzantine: 0.3, ..FederatedConfig::quick() };
    // 6 clients: one Byzantine (poisoned ×(−20)); 4 nodes: the view-0 leader withholds.
    assert_eq!(cfg.byzantine_clients(), 1);
    assert_eq!(cfg.client_behaviour(5), ClientBehaviour::Poison(-20.0));
    assert_eq!(cfg.byzantine_nodes(), 1);
    let mut fed = Federation::new(cfg).unwrap();
    let (_, rmse0) = fed.validate().unwrap();
    let mut rmse = Vec::new();
    for r in 1..=3 {
        let rep = fed.round().unwrap();
        assert_eq!(rep.round, r);
        assert!(rep.val_mae.is_finite() && rep.val_rmse.is_finite() && rep.train_loss.is_finite());
        assert!(rep.val_mae <= rep.val_rmse + 1e-6, "MAE ≤ RMSE");
        // Both chains committed in view 1: the silent leader was replaced.
        assert_eq!(rep.views, vec![1, 1], "round {r}");
        // Every client's fragment reached the new leader (the poisoner's too:
        // its cells are valid; the trimmed mean handles it).
        assert_eq!(rep.aggregated, vec![6, 6], "round {r}");
        rmse.push(rep.val_rmse);
    }
    assert_eq!(fed.rounds_done(), 3);
    let last = *rmse.last().unwrap();
    assert!(last < 0.8 * rmse0, "validation RMSE {rmse0} → {rmse:?}");
    let day = fed.forecast_next_day(0).unwrap();
    assert_eq!((day.forecast_wh.len(), day.actual_wh.len()), (24, 24));
    // Inside the client's training range (the scaler clamps to it).
    let max = day.actual_wh.iter().max().unwrap() * 4;
    assert!(day.forecast_wh.iter().all(|&w| w <= max), "{day:?}");
}

#[test]
fn settings_that_cannot_work_are_refused_with_a_typed_error() {
    let q = FederatedConfig::quick;
    for (cfg, why) in [
        (FederatedConfig { nodes: 3, ..q() }, "nodes"),
        (FederatedConfig { clients: 3, ..q() }, "clients"),
        (FederatedConfig { chains: 0, ..q() }, "chain"),
        (FederatedConfig { byzantine: 0.5, ..q() }, "Byzantine"),
        (FederatedConfig { train_days: 0, ..q() }, "days"),
        (FederatedConfig { chains: 1_000_000, ..q() }, "chains"),
    ] {
        match Federation::new(cfg) {
            Err(ForecastError::Config(m)) => assert!(m.contains(why), "{m}"),
            Err(e) => panic!("{why}: {e}"),
            Ok(_) => panic!("{why}: accepted"),
        }
    }
}
