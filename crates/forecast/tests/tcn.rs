//! The TCN: causal, its parameters round-trip as one vector, and training
//! with SGD lowers the validation error on a household's next month.

use candle_core::{Device, Tensor};
use gridledger_forecast::profiles::household_wh;
use gridledger_forecast::series::{Scaler, Windows};
use gridledger_forecast::tcn::{Tcn, TcnConfig};
use gridledger_forecast::ForecastError;

fn small() -> TcnConfig {
    TcnConfig { hidden: 8, levels: 3, kernel: 3, dropout: 0.1, learning_rate: 0.05, ..TcnConfig::default() }
}

#[test]
fn outputs_never_see_later_inputs() {
    let mut m = Tcn::new(small(), 1).unwrap();
    let xs: Vec<f32> = (0..32).map(|i| (i as f32 * 0.3).sin().abs()).collect();
    let a = m.features(&Tensor::from_vec(xs.clone(), (1, 1, 32), &Device::Cpu).unwrap(), false).unwrap();
    let mut ys = xs.clone();
    ys[20] += 0.7;
    let b = m.features(&Tensor::from_vec(ys, (1, 1, 32), &Device::Cpu).unwrap(), false).unwrap();
    let (a, b) = (a.to_vec3::<f32>().unwrap(), b.to_vec3::<f32>().unwrap());
    for c in 0..8 {
        for t in 0..20 {
            assert_eq!(a[0][c][t], b[0][c][t], "step {t} changed by a later input");
        }
    }
    assert!((0..8).any(|c| a[0][c][31] != b[0][c][31]), "a later step does see it");
}

#[test]
fn parameters_roundtrip_and_bad_vectors_change_nothing() {
    let mut a = Tcn::new(small(), 2).unwrap();
    let mut b = Tcn::new(small(), 3).unwrap();
    assert_ne!(a.params().unwrap(), b.params().unwrap());
    let p = a.params().unwrap();
    assert_eq!(p.len(), a.param_count());
    b.set_params(&p).unwrap();
    let h: Vec<f32> = (0..24).map(|i| i as f32 / 24.0).collect();
    assert_eq!(a.predict_next(&h).unwrap(), b.predict_next(&h).unwrap());
    let before = b.params().unwrap();
    assert_eq!(b.set_params(&p[1..]), Err(ForecastError::WrongLength { expected: p.len(), got: p.len() - 1 }));
    let mut nan = p.clone();
    nan[5] = f32::NAN;
    assert_eq!(b.set_params(&nan), Err(ForecastError::NonFinite));
    assert_eq!(b.params().unwrap(), before);
    // The seed's configuration builds: 8 levels of 64 channels.
    let full = Tcn::new(TcnConfig::default(), 0).unwrap();
    assert!(full.param_count() > 150_000, "{}", full.param_count());
}

#[test]
fn training_lowers_the_validation_error_on_the_next_month() {
    // Four weeks of training, the following week held out.
    let wh = household_wh(11, 0, 0, 24 * 35).unwrap();
    let scaler = Scaler::fit(&wh[..24 * 28]).unwrap();
    let norm: Vec<f32> = wh.iter().map(|&x| scaler.scale(x)).collect();
    let train = Windows::new(&norm[..24 * 28], 24).unwrap();
    let valid = Windows::new(&norm[24 * 28 - 24..], 24).unwrap();
    let mut m = Tcn::new(small(), 4).unwrap();
    let before = m.evaluate(&valid).unwrap();
    let mut last = f32::MAX;
    for _ in 0..12 {
        last = m.train_epoch(&train, 16).unwrap();
    }
    let after = m.evaluate(&valid).unwrap();
    assert!(last.is_finite());
    // On SimBench's profiles (noisier than the former stand-in shape) twelve
    // epochs of this small net take about a fifth off the initial error.
    assert!(after.mse < 0.9 * before.mse, "validation MSE {} → {}", before.mse, after.mse);
    assert!(after.rmse < before.rmse && after.mae < before.mae);
}

#[test]
fn hour_feature_windows_need_a_network_with_their_inputs() {
    let wh = household_wh(11, 1, 0, 24 * 3).unwrap();
    let scaler = Scaler::fit(&wh).unwrap();
    let norm: Vec<f32> = wh.iter().map(|&x| scaler.scale(x)).collect();
    let hours = Windows::with_hours(&norm, 24, 0).unwrap();
    // A load-only network refuses three-channel windows and changes nothing.
    let mut one = Tcn::new(small(), 5).unwrap();
    let before = one.params().unwrap();
    assert!(matches!(one.train_epoch(&hours, 16), Err(ForecastError::Config(_))));
    assert!(matches!(one.evaluate(&hours), Err(ForecastError::Config(_))));
    assert_eq!(one.params().unwrap(), before);
    // A three-input network trains on them and predicts from one such input.
    let mut three = Tcn::new(TcnConfig { inputs: 3, ..small() }, 5).unwrap();
    assert!(three.train_epoch(&hours, 16).unwrap().is_finite());
    let x = gridledger_forecast::series::input(&norm[..24], 0, 3);
    assert!(three.predict_next_from(&x).unwrap().is_finite());
    assert_eq!(three.predict_next_from(&x[1..]), Err(ForecastError::NotEnoughData { need: 3, have: 71 }));
}

/// `TcnConfig::param_count` (the CLI's work budget uses it before anything
/// is built) equals the number of parameters the network really has, with
/// and without the residual projection of block 0 and for one level.
#[test]
fn config_param_count_matches_the_built_network() {
    for (inputs, hidden, levels, kernel) in [(1, 64, 8, 3), (3, 8, 2, 2), (4, 4, 1, 5), (1, 1, 3, 1)] {
        let cfg = TcnConfig { inputs, hidden, levels, kernel, ..TcnConfig::default() };
        let net = Tcn::new(cfg, 1).unwrap();
        assert_eq!(cfg.param_count(), net.param_count() as u64, "{cfg:?}");
    }
}
