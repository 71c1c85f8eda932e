//! Helpers shared by the market crate's attack tests.
#![allow(dead_code)]

use gridledger_market::clearing::network_for;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PrimalDual, StepReport};
use gridledger_market::problem::Market;
use gridledger_market::problem::{Prosumer, Side};
use gridledger_market::{Case, DcModel, CASE30, CASE33BW};

/// The IEEE 30-bus case's PTDF network, its line ratings scaled by `scale`.
pub fn case30_net(scale: f64) -> MarketNetwork {
    MarketNetwork::ptdf(&DcModel::new(&Case::parse(CASE30).unwrap()).unwrap(), scale).unwrap()
}

/// The 33-bus radial feeder (case33bw) as `clear` builds it.
pub fn feeder() -> MarketNetwork {
    network_for(&Case::parse(CASE33BW).unwrap(), 1.0).unwrap()
}

/// A prosumer on `side` at `bus` with cost/utility `a`, `b` and bounds `e_min..=e_max`.
pub fn p(side: Side, bus: u32, a: f64, b: f64, e_min: f64, e_max: f64) -> Prosumer {
    Prosumer { side, bus, a, b, e_min, e_max }
}

/// SplitMix64: a fixed stream for the test's choices (no RNG crate needed).
pub struct Mix(pub u64);

impl Mix {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// One primal-dual iteration by the sans-IO tasks (what TEAR-DO's
/// executors run), to compare with the fused [`PrimalDual::step`].
pub fn task_step(pd: &mut PrimalDual, m: &Market) -> StepReport {
    let rows: Vec<Vec<f64>> = (0..pd.buyers).map(|b| pd.buyer_task(m, b)).collect();
    for (b, r) in rows.iter().enumerate() {
        pd.apply_buyer(b, r);
    }
    let cols: Vec<(Vec<f64>, Vec<f64>)> = (0..pd.sellers).map(|s| pd.seller_task(m, s)).collect();
    let (mu, bp) = pd.operator_task();
    for (s, (y, l)) in cols.iter().enumerate() {
        pd.apply_seller(s, y, l);
    }
    pd.apply_operator(m, &mu, &bp)
}

/// The bits of a run's trades, bilateral prices and line multipliers (the
/// fused step forms the next bus prices lazily, so they are left out).
pub fn bits(pd: &PrimalDual) -> Vec<u64> {
    let mut v: Vec<u64> = pd.settled().into_iter().flatten().map(f64::to_bits).collect();
    v.extend(
        (0..pd.buyers).flat_map(|b| (0..pd.sellers).map(move |s| (b, s))).map(|(b, s)| pd.lambda_at(b, s).to_bits()),
    );
    v.extend(pd.mu.iter().map(|x| x.to_bits()));
    v
}
