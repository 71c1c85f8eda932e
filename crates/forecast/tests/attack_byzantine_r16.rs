//! Attack round 16 on the forecaster driver (issue 16): the real driver's
//! CTP-FL rounds at the largest Byzantine share it accepts with more
//! nodes than the presets (K = 10, f = 3: the first three aggregation
//! leaders Byzantine — one withholding everything, one altering and one
//! dropping its mini-fragments — and three of ten clients poisoning,
//! sending bad cells or staying silent).
//! `cargo test -p gridledger-forecast --test attack_byzantine_r16`.

use gridledger_forecast::federated::{FederatedConfig, Federation};

/// Held up: with f = 3 Byzantine nodes (views 0–2's leaders) and 3 of 10
/// Byzantine clients, a round commits on both chains, every honest client
/// decodes the same global model (the driver checks it), the leader of
/// view 0 is replaced, and the aggregate keeps the seven honest clients
/// and the poisoner (whose cells are valid) but not the bad-cell client.
#[test]
fn ten_nodes_with_three_byzantine_leaders_and_three_byzantine_clients_commit() {
    let cfg = FederatedConfig { nodes: 10, clients: 10, byzantine: 0.3, ..FederatedConfig::quick() };
    assert_eq!((cfg.byzantine_nodes(), cfg.byzantine_clients()), (3, 3));
    let mut fed = Federation::new(cfg).unwrap();
    let rep = fed.round().unwrap();
    eprintln!("{rep:?}");
    assert!(rep.val_rmse.is_finite() && rep.train_loss.is_finite());
    assert!(rep.views.iter().all(|&v| v >= 1), "view 0's withholding leader replaced: {:?}", rep.views);
    assert!(rep.aggregated.iter().all(|&n| n >= 7), "honest clients aggregated: {:?}", rep.aggregated);
}
