//! Helpers shared by the market crate's attack tests.
#![allow(dead_code)]

use gridledger_market::clearing::{clear_with, network_for, Algorithm};
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

/// case33bw with every impedance scaled by `f`, no loads and `Vmax` 1.0
/// p.u. (the V-max rows have no headroom: `h = 0`).
pub fn flat_feeder(f: f64) -> Case {
    let mut c = Case::parse(CASE33BW).unwrap();
    for b in &mut c.branches {
        b.r *= f;
        b.x *= f;
    }
    for b in &mut c.buses {
        b.pd = 0.0;
        b.qd = 0.0;
        b.vmax = 1.0;
    }
    c
}

/// case30 with only line 2-5 rated (0.01 MVA = 10 kW; `rate_a` 0 is
/// MATPOWER's "unlimited" for every other line). Its PTDF row's largest
/// coefficient is 0.558, but buses 3 and 4 differ on it by only 0.0171.
pub fn one_rated_line() -> Case {
    let mut c = Case::parse(CASE30).unwrap();
    for b in &mut c.branches {
        b.rate_a = if (b.from, b.to) == (2, 5) { 0.01 } else { 0.0 };
    }
    c
}

/// case30 plus one weak tie between buses `a` and `b` (reactance `x`
/// p.u., no resistance, rated 0.004 MVA = 4 kW): a PTDF row whose every
/// coefficient is small. Nothing here is outside what `Case::parse`
/// accepts (the same branch as a line of a case file).
pub fn weak_tie(a: u32, b: u32, x: f64) -> Case {
    let mut c = Case::parse(CASE30).unwrap();
    let mut br = c.branches[0].clone();
    br.from = a;
    br.to = b;
    br.r = 0.0;
    br.x = x;
    br.b = 0.0;
    br.rate_a = 0.004;
    c.branches.push(br);
    c
}

/// The reference clears `m` on `net` with the row labelled `binding`
/// binding, and primal-dual clears it within 0.1 % inside its default cap.
#[track_caller]
pub fn clears_within_the_cap(m: &Market, net: &MarketNetwork, binding: &str) {
    let central = clear_with(m, net, Algorithm::Central, None).expect("the reference clears");
    assert!(central.binding.iter().any(|b| b == binding), "{:?}", central.binding);
    match clear_with(m, net, Algorithm::PrimalDual, None) {
        Ok(c) => assert!(c.converged && c.relative_gap.abs() <= 1e-3, "{} {}", c.converged, c.relative_gap),
        Err(e) => panic!("observed: {e}"),
    }
}

/// Clears `m` under primal-dual (cap 30 000) on `flat_feeder(f)` for each
/// `f` and returns what it saw where it did not clear within 0.1 %.
pub fn flat_feeder_misses(m: &Market, scales: &[f64]) -> Vec<String> {
    let mut seen = Vec::new();
    for &f in scales {
        let net = network_for(&flat_feeder(f), 1.0).unwrap();
        match clear_with(m, &net, Algorithm::PrimalDual, Some(30_000)) {
            Ok(c) if c.converged && c.relative_gap.abs() <= 1e-3 => {}
            Ok(c) => seen.push(format!("f {f:e}: converged {} gap {}", c.converged, c.relative_gap)),
            Err(e) => seen.push(format!("f {f:e}: {e}")),
        }
    }
    seen
}
