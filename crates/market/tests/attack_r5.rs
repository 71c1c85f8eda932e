//! Attack round 5 on the market crate (issue 15) by someone who did not
//! write it, after round 4's fixes (TooSteep, the primal-dual and framework
//! work budgets, the TooLargePtdf bound, pro-rata relief of jointly
//! infeasible minima, settlement rounded within connected trade groups).
//!
//! Each finding's test failed on the code as it stood and states what a
//! careful user expects, what happened instead, and the fix suggested;
//! all are fixed now and run in the suite. The rest are attacks that held
//! up.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{case30_net, p};
use gridledger_market::clearing::{clear, network_for, Algorithm};
use gridledger_market::framework::relieve_minima;
use gridledger_market::problem::{Market, Side};
use gridledger_market::units::{settle, SettlementError};
use gridledger_market::Case;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Runs `f` on a worker thread; `None` when it has not finished by `secs`
/// (the thread is left behind; the test process ends with the test).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).ok()
}

// ---------------------------------------------------------------- network size

/// A radial chain of `n` buses whose lines all carry a rating (rate_a 100 MVA).
fn rated_chain(n: usize) -> String {
    let mut s =
        String::from("mpc.version = '2';\nmpc.baseMVA = 100;\nmpc.bus = [\n 1 3 0 0 0 0 1 1 0 12.66 1 1.1 0.9;\n");
    for k in 2..=n {
        s.push_str(&format!(" {k} 1 0.01 0 0 0 1 1 0 12.66 1 1.1 0.9;\n"));
    }
    s.push_str("];\nmpc.gen = [\n 1 0 0 10 -10 1 100 1 10 0;\n];\nmpc.branch = [\n");
    for k in 2..=n {
        s.push_str(&format!(" {} {k} 0.0001 0.0001 0 100 100 100 0 0 1;\n", k - 1));
    }
    s.push_str("];\n");
    s
}

// Expected: round 4 bounded the meshed model (TooLargePtdf: lines × buses
// ≤ 12.5·10⁶, "enough for the 3 000-bus cases"), so a case file just
// inside the bounds builds its market rows in seconds. Observed: a radial
// feeder goes to LinDistFlow, which only has the bus bound (5 000), and
// `MarketNetwork::distflow` builds each rated line's thermal row with
// `DistFlow::in_subtree(k, j)` for every bus k, a walk up to the root:
// O(n² · depth) = O(n³) on a chain. Measured (debug): 100 buses 0.01 s,
// 200 0.14 s, 400 1.3 s; a 1 500-bus chain (a 100 kB file) is far beyond
// 20 s, a 5 000-bus one about 40 minutes. The rows themselves are 4 · n²
// floats (V max, V min, thermal forward, reverse per bus: 800 MB at 5 000
// buses, then copied once more into the primal-dual's flat G) — eight
// times the PTDF bound — and every primal-dual iteration reads them all,
// which `market clear`'s budget (buyers × sellers × cap) does not count:
// `--buyers 1 --sellers 1` passes it. Fix: the subtree row from the Euler
// tour the constructor already has (tin/tout: O(n) per row), and bound the
// LinDistFlow rows like the PTDF (rows × buses) with a typed error; count
// rows × buses per iteration in the CLI budget.
#[test]
fn a_rated_radial_feeder_builds_its_rows_quickly() {
    let n = 1500;
    let case = Case::parse(&rated_chain(n)).unwrap();
    assert!(case.is_radial());
    let r = within(20, move || network_for(&case, 1.0).map(|n| n.g.len()).map_err(|e| e.to_string()));
    assert!(r.is_some(), "observed: the {n}-bus rated feeder's rows not built after 20 s");
}

// [1]'s bound: a rated feeder whose rows (a voltage pair per non-root bus,
// a thermal pair per rated line) × buses exceed the limit is a typed
// refusal, before any matrix is built; one just inside still builds.
#[test]
fn a_rated_feeder_over_the_row_bound_is_refused() {
    use gridledger_market::{ModelError, MAX_DISTFLOW_ENTRIES};
    let case = Case::parse(&rated_chain(2600)).unwrap();
    match gridledger_market::distflow::DistFlow::new(&case) {
        Err(ModelError::TooLargeDistFlow { rows, buses, entries, max }) => {
            assert_eq!((rows, buses, entries, max), (2 * 2599, 2600, 2 * 2599 * 2600, MAX_DISTFLOW_ENTRIES));
        }
        other => panic!("expected TooLargeDistFlow, got {:?}", other.map(|d| d.bus_ids.len())),
    }
    let r = network_for(&case, 1.0).map(|n| n.g.len()).map_err(|e| e.to_string());
    assert!(matches!(&r, Err(e) if e.contains("LinDistFlow model is too large")), "{r:?}");
    // an unrated feeder of the same size has half the rows and is inside
    let unrated = rated_chain(2600).replace(" 0 100 100 100 0 0 1;", " 0 0 0 0 0 0 1;");
    let case = Case::parse(&unrated).unwrap();
    assert_eq!(gridledger_market::distflow::DistFlow::new(&case).map(|d| d.bus_ids.len()), Ok(2600));
}

// The unrated feeder of round 3 (no thermal rows) still builds fast: the
// cubic term is the rated lines' subtree rows only.
#[test]
fn a_rated_feeder_of_400_buses_still_builds() {
    let case = Case::parse(&rated_chain(400)).unwrap();
    let r = within(60, move || network_for(&case, 1.0).map(|n| n.g.len()).map_err(|e| e.to_string()));
    // 2 voltage rows and 2 thermal rows for each of the 399 non-root buses
    assert_eq!(r, Some(Ok(4 * 399)));
}

// ---------------------------------------------------------------- settlement

// Expected (units::Settlement docs): Wh are apportioned per connected
// group of trades, and "within a group such a path exists" for every Wh a
// buyer misses, so a cleared interval always settles. Observed: the
// buyers and the sellers of a group are still rounded independently, so a
// buyer can round up while the only seller it trades with rounds down; the
// alternating-path repair then has nowhere to go and the whole interval is
// refused (SettlementError::Unreconciled) — `clear` fails for everyone.
// Buyer 0 trades 1.527 Wh with seller 0 only; buyer 1 trades 1.752, 0.580
// and a tiny 0.029 Wh with sellers 1, 2 and 0. Group total 3.888 → 4 Wh:
// buyers 2 + 2 (buyer 0's 0.527 beats buyer 1's 0.361), sellers 1 + 2 + 1
// (seller 0's 0.556 loses to 0.752 and 0.580), and buyer 0's second Wh has
// no seller. Without the 0.029 Wh trade (two groups) the same energy
// settles. Random markets of up to 5 × 5 with sub-3 Wh trades hit this in
// 69 of 20 000 seeds. Fix: round the trades themselves so that every row
// and column sum is its total's floor or ceiling (always possible on a
// bipartite graph: round the fractional trades along cycles and paths,
// "pipage"/matrix rounding), or apportion a group's buyers and sellers
// jointly under Hall's condition (a max-flow on the trade graph).
#[test]
fn one_tiny_trade_does_not_make_an_interval_unsettleable() {
    let big = [(0, 0, 1.527e-3, 0.25), (1, 1, 1.752e-3, 0.34), (1, 2, 0.580e-3, 0.38)];
    let caps = ([u64::MAX; 2], [u64::MAX; 3]);
    let apart = settle(&big, &caps.0, &caps.1, 100).unwrap();
    assert_eq!(apart.energy_wh, 4);
    let mut merged = big.to_vec();
    merged.push((1, 0, 0.029e-3, 0.55));
    let r = settle(&merged, &caps.0, &caps.1, 100);
    assert!(r.is_ok(), "observed: {r:?}");
    let s = r.unwrap();
    assert_eq!(s.energy_wh, 4);
    assert_eq!(s.buyer_wh.iter().sum::<u64>(), s.seller_wh.iter().sum::<u64>());
}

// The same over random small markets: every one settles, with the
// invariants of the docs.
#[test]
fn random_connected_markets_always_settle() {
    let mut refused = Vec::new();
    for seed in 0..20_000u64 {
        let trades = random_trades(seed);
        if let Err(SettlementError::Unreconciled { .. }) = settle(&trades, &[u64::MAX; 5], &[u64::MAX; 5], 100) {
            refused.push(seed);
        }
    }
    assert!(refused.is_empty(), "observed: {} refused, first {:?}", refused.len(), &refused[..refused.len().min(8)]);
}

/// Up to 9 trades among 5 × 5 parties, most below 3 Wh, some of a few mWh.
fn random_trades(seed: u64) -> Vec<(usize, usize, f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (nb, ns, k) = (rng.random_range(1..6usize), rng.random_range(1..6usize), rng.random_range(1..10usize));
    (0..k)
        .map(|_| {
            let mwh: u32 = match rng.random_range(0..3) {
                0 => rng.random_range(1..3000),
                1 => rng.random_range(1..30),
                _ => rng.random_range(1..999) + 1000 * rng.random_range(0..3),
            };
            (
                rng.random_range(0..nb),
                rng.random_range(0..ns),
                f64::from(mwh) * 1e-6,
                rng.random_range(1..60) as f64 * 0.01,
            )
        })
        .collect()
}

// Held up: on every random market that does settle, Σ buyers' Wh = Σ
// sellers' Wh = energy_wh = the cleared total rounded, each party within
// one Wh of its own total, and Σ payments = Σ receipts = total_minor.
#[test]
fn random_markets_that_settle_keep_energy_and_money() {
    let mut settled = 0;
    for seed in 0..20_000u64 {
        let trades = random_trades(seed);
        let Ok(s) = settle(&trades, &[u64::MAX; 5], &[u64::MAX; 5], 100) else { continue };
        settled += 1;
        let (mut bt, mut st) = ([0i64; 5], [0i64; 5]);
        for (m, n, kwh, _) in &trades {
            let mwh = (kwh * 1e6).round() as i64;
            bt[*m] += mwh;
            st[*n] += mwh;
        }
        let grand: i64 = bt.iter().sum();
        assert_eq!(s.energy_wh as f64, (grand as f64 / 1000.0).round_ties_even(), "seed {seed}");
        assert_eq!(s.buyer_wh.iter().sum::<u64>(), s.energy_wh, "seed {seed}");
        assert_eq!(s.seller_wh.iter().sum::<u64>(), s.energy_wh, "seed {seed}");
        assert_eq!(s.trades.iter().map(|t| t.wh).sum::<u64>(), s.energy_wh, "seed {seed}");
        for (w, t) in s.buyer_wh.iter().zip(bt).chain(s.seller_wh.iter().zip(st)) {
            assert!((*w as i64 * 1000 - t).abs() < 1000, "seed {seed}: {w} Wh for {t} mWh");
        }
        assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor, "seed {seed}");
        assert_eq!(s.seller_receives.iter().sum::<i64>(), s.total_minor, "seed {seed}");
    }
    assert!(settled > 19_000, "{settled}");
}

// ---------------------------------------------------------------- minima relief

// Expected (framework::relieve_minima docs): "no set of requests may
// choose whom that hurts". Observed: when the network (not the totals)
// makes the minima infeasible, every positive e_min on *both* sides is
// scaled by one factor, and the factor is set by the worst request alone.
// One buyer at case30's bus 11 (behind line 9-11 only, allotted 6.5 kW at
// limit_scale 1e-4) files e_min = e_max = 500 kWh (below the sellers'
// 1 010 kWh, so not excluded): the factor is 0.0127, and an honest buyer
// at bus 2 loses its 5 kWh minimum (0.063 kWh left) and an honest seller
// its 2 kWh (0.025 kWh left), though both minima fit the network beside
// whatever bus 11 can take; the attacker keeps what the line gives it. A
// larger lie (e_min ≥ 2¹⁰ × what its line carries) drives the factor to
// 0 after the ten bisections: every minimum of the interval is erased by
// one request. Fix: relieve per request before pro rata, as for the totals
// — a minimum that is infeasible on its own (everyone else's minima at 0)
// is capped at the most the network lets that request take (or excluded),
// and only the minima that load a binding row are scaled.
#[test]
fn one_network_infeasible_minimum_does_not_erase_everyones_minima() {
    let net = case30_net(1e-4);
    let honest_buyer = p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0);
    let honest_seller = p(Side::Seller, 2, 0.02, 0.1, 2.0, 10.0);
    let big_seller = p(Side::Seller, 2, 0.02, 0.1, 0.0, 1000.0);
    // without the lie the honest minima are feasible as filed
    let mut fair = Market {
        buyers: vec![honest_buyer.clone(), p(Side::Buyer, 11, 0.02, 0.3, 0.0, 500.0)],
        sellers: vec![big_seller.clone(), honest_seller.clone()],
    };
    assert_eq!(relieve_minima(&mut fair, &net).unwrap(), None);
    let mut m = Market {
        buyers: vec![honest_buyer, p(Side::Buyer, 11, 0.02, 0.3, 500.0, 500.0)],
        sellers: vec![big_seller, honest_seller],
    };
    let scaled = relieve_minima(&mut m, &net).unwrap();
    assert!(
        m.buyers[0].e_min >= 4.5 && m.sellers[1].e_min >= 1.8,
        "observed: {scaled:?}; the honest buyer's minimum is now {} kWh, the honest seller's {} kWh",
        m.buyers[0].e_min,
        m.sellers[1].e_min
    );
}

// Expected: pro-rata relief keeps shares "however a party splits" its
// minima — but a party can simply *inflate* its minimum. Observed: two
// buyers face sellers offering 10 kWh in all; the honest one needs 5 kWh.
// With the other filing 5 kWh the minima fit (nothing scaled). By filing
// 9.99 kWh instead (still below the supply, so not excluded) it gets the
// honest minimum cut to 3.34 kWh and takes 6.66 kWh for itself; three such
// requests (three accounts) cut it to 1.43 kWh. Whoever inflates most is
// guaranteed most. Fix: relieve by a rule in which filing more than a fair
// share buys nothing (water-filling, min(e_min, c) with one level c for
// all, per account), or make an inflated minimum costly (it must be paid
// for at the clearing price even when undelivered).
#[test]
fn inflating_a_minimum_does_not_cut_an_honest_one() {
    let net = case30_net(1.0);
    let market = |lie: f64| Market {
        buyers: vec![p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0), p(Side::Buyer, 3, 0.02, 0.3, lie, lie)],
        sellers: vec![p(Side::Seller, 2, 0.02, 0.1, 0.0, 6.0), p(Side::Seller, 4, 0.02, 0.1, 0.0, 4.0)],
    };
    let mut fair = market(5.0);
    assert_eq!(relieve_minima(&mut fair, &net).unwrap(), None);
    assert_eq!(fair.buyers[0].e_min, 5.0);
    let mut inflated = market(9.99);
    let scaled = relieve_minima(&mut inflated, &net).unwrap();
    assert!(
        inflated.buyers[0].e_min >= 5.0 - 1e-6,
        "observed: {scaled:?}; honest minimum {} kWh, the inflating buyer's {} kWh",
        inflated.buyers[0].e_min,
        inflated.buyers[1].e_min
    );
}

// ---------------------------------------------------------------- curvature

// Held up: TooSteep bounds a from above only, so the mirror lever is a
// nearly flat utility (a → 0, demand (b − λ)/a arbitrarily elastic) on a
// buyer that sets the price. Primal-dual on a seeded 6 × 6 case30 market
// with buyer 0 at b = 0.12, e_max = 1 000 kWh and a from 0.02 down to 1e-8
// converged in 101-104 iterations every time, within 5e-6 of the optimum.
#[test]
fn a_nearly_flat_utility_does_not_stall_primal_dual() {
    let net = case30_net(1.0);
    for a in [0.02, 1e-5, 1e-8] {
        let mut m = Market::generate(3, 6, 6, &net.bus_ids);
        m.buyers[0] = p(Side::Buyer, m.buyers[0].bus, a, 0.12, 0.0, 1000.0);
        let c = clear(&m, &net, Algorithm::PrimalDual).unwrap();
        assert!(c.iterations < 2_000, "a = {a}: {} iterations", c.iterations);
        assert!(c.relative_gap.abs() < 1e-3, "a = {a}: gap {}", c.relative_gap);
    }
}

// Expected (framework docs): minima that cannot be met jointly "must not
// veto everyone's interval"; only a market infeasible with no minimum at
// all is refused. Observed: relieve_minima picks *one* side to scale —
// the buyers whenever their minima exceed the sellers' total e_max — and
// never looks at the other side's network-infeasible minimum. A seller
// behind case30's line 9-11 (6.5 kW at limit_scale 1e-4) files e_min 50
// kWh, and a buyer files e_min 79 kWh (below the sellers' 80 kWh, so not
// excluded) so the buyers over-demand: scaling the buyers' minima to 0
// cannot help the seller's 50 kWh export, and the whole interval is
// refused (Infeasible) — though with the buyers' minima feasible the
// same seller minimum is relieved (both sides scaled) and the interval
// clears. Two requests veto every party's interval. Fix: after scaling
// the over-demanding side, relieve the remaining network infeasibility as
// in the both-sides case (or per request, see [3]) before refusing.
#[test]
fn two_minima_do_not_veto_the_interval() {
    let net = case30_net(1e-4);
    let market = |lie: f64| Market {
        buyers: vec![p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0), p(Side::Buyer, 3, 0.02, 0.3, lie, 80.0)],
        sellers: vec![p(Side::Seller, 11, 0.02, 0.1, 50.0, 60.0), p(Side::Seller, 2, 0.02, 0.1, 0.0, 20.0)],
    };
    // the buyers' minima feasible in total: the seller's minimum is relieved
    let mut one = market(0.0);
    let r = relieve_minima(&mut one, &net);
    assert!(matches!(r, Ok(Some(_))), "{r:?}");
    // and with an over-demanding buyer beside it
    let mut two = market(79.0);
    let r = relieve_minima(&mut two, &net);
    assert!(r.is_ok(), "observed: {r:?}");
}

/// Each party's cleared total (mWh) of `trades` on a 5 × 5 market.
fn totals(trades: &[(usize, usize, f64, f64)]) -> ([i64; 5], [i64; 5]) {
    let (mut bt, mut st) = ([0i64; 5], [0i64; 5]);
    for (m, n, kwh, _) in trades {
        let mwh = (kwh * 1e6).round() as i64;
        bt[*m] += mwh;
        st[*n] += mwh;
    }
    (bt, st)
}

/// Caps for one party in three: its total's floor in Wh, one below or one
/// above (a cleared total may exceed e_max by the 1 Wh bound tolerance).
fn random_caps(t: &[i64; 5], rng: &mut ChaCha8Rng) -> Vec<u64> {
    t.iter()
        .map(
            |t| {
                if rng.random_range(0..3) == 0 {
                    ((t / 1000) + rng.random_range(-1..2)).max(0) as u64
                } else {
                    u64::MAX
                }
            },
        )
        .collect()
}

// [2] with the prosumers' caps (⌊1000 e_max⌋ Wh, which a cleared total
// may exceed by the 1 Wh bound tolerance): the same random markets with
// one party in three capped at its total's floor, one below or one above
// are refused Unreconciled in 656 of 20 000 seeds.
#[test]
fn random_capped_markets_always_settle() {
    let mut refused = Vec::new();
    for seed in 0..20_000u64 {
        let trades = random_trades(seed);
        let (bt, st) = totals(&trades);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 77);
        let (bc, sc) = (random_caps(&bt, &mut rng), random_caps(&st, &mut rng));
        if let Err(SettlementError::Unreconciled { .. }) = settle(&trades, &bc, &sc, 100) {
            refused.push(seed);
        }
    }
    assert!(refused.is_empty(), "observed: {} refused, first {:?}", refused.len(), &refused[..refused.len().min(8)]);
}

// Held up: every capped random market that settles keeps every party at
// or below its cap and within one Wh above its own total, Σ buyers' Wh =
// Σ sellers' Wh = energy_wh, and Σ payments = Σ receipts = total_minor.
#[test]
fn capped_markets_that_settle_respect_the_caps_and_conserve() {
    let mut settled = 0;
    for seed in 0..20_000u64 {
        let trades = random_trades(seed);
        let (bt, st) = totals(&trades);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 77);
        let (bc, sc) = (random_caps(&bt, &mut rng), random_caps(&st, &mut rng));
        let Ok(s) = settle(&trades, &bc, &sc, 100) else { continue };
        settled += 1;
        for (w, c) in s.buyer_wh.iter().zip(&bc).chain(s.seller_wh.iter().zip(&sc)) {
            assert!(w <= c, "seed {seed}: {w} Wh above the cap {c}");
        }
        for (w, t) in s.buyer_wh.iter().zip(bt).chain(s.seller_wh.iter().zip(st)) {
            assert!((*w as i64) * 1000 < t + 1000, "seed {seed}: {w} Wh for {t} mWh");
        }
        assert_eq!(s.buyer_wh.iter().sum::<u64>(), s.energy_wh, "seed {seed}");
        assert_eq!(s.seller_wh.iter().sum::<u64>(), s.energy_wh, "seed {seed}");
        assert_eq!(s.buyer_pays.iter().sum::<i64>(), s.total_minor, "seed {seed}");
        assert_eq!(s.seller_receives.iter().sum::<i64>(), s.total_minor, "seed {seed}");
    }
    assert!(settled > 19_000, "{settled}");
}

// [3] at its limit: the buyer at bus 11 files e_min = e_max = 10 000 kWh
// (a seller offers 20 000, so not excluded). The line carries 6.5 kW, less
// than 2⁻¹⁰ of the lie, so the ten bisections end at factor 0: the honest
// buyer's 5 kWh and the honest seller's 2 kWh minima are erased, and the
// interval clears as if nobody had filed a minimum.
#[test]
fn one_huge_minimum_behind_a_line_does_not_zero_every_minimum() {
    let net = case30_net(1e-4);
    let mut m = Market {
        buyers: vec![p(Side::Buyer, 2, 0.02, 0.3, 5.0, 8.0), p(Side::Buyer, 11, 0.02, 0.3, 10_000.0, 10_000.0)],
        sellers: vec![p(Side::Seller, 2, 0.02, 0.1, 0.0, 20_000.0), p(Side::Seller, 2, 0.02, 0.1, 2.0, 10.0)],
    };
    let scaled = relieve_minima(&mut m, &net).unwrap();
    assert!(
        m.buyers[0].e_min > 0.0 && m.sellers[1].e_min > 0.0,
        "observed: {scaled:?}; honest minima now {} and {} kWh",
        m.buyers[0].e_min,
        m.sellers[1].e_min
    );
}
