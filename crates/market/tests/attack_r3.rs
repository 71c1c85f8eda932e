//! Attack round 3 on the market crate (issue 15) by someone who did not
//! write it, after round 2's fixes (median-scaled ALADIN tolerance and
//! feasibility check, hidden minima excluded latest-first, integer
//! settlement, per-CPU SIMD kernels).
//!
//! Every test here is a finding: it fails on the code as it stands and is
//! `#[ignore]`d so the suite stays green until a fixer takes it up. Each
//! states what a careful user expects, what happens instead, and the fix
//! suggested. Run them with
//! `cargo test -p gridledger-market --test attack_r3 -- --ignored`.

mod common;

use std::collections::BTreeMap;

use common::{case30_net, feeder, p};
use gridledger_market::central;
use gridledger_market::clearing::{clear, network_for, Algorithm};
use gridledger_market::framework::run_interval_insecure_seeded;
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::{Market, Prosumer, Side};
use gridledger_market::teardo::{Strategy, TearDo, TearDoConfig};
use gridledger_market::{Case, CASE30, CASE33BW};

fn cfg(seed: u64) -> TearDoConfig {
    TearDoConfig { enclaves: 7, kappa: 3, byzantine: BTreeMap::new(), strategy: Strategy::Always, seed }
}

// ---------------------------------------------------------------- ALADIN

// Expected: `clear` never reports a clearing as Ok in which honest
// prosumers' trades are far from the optimum (the fix of round 2 promised
// "one huge request loosens nothing"). Observed: the tolerance is
// `1e-4 × median e_max`, and the median is over *requests*, so one
// attacker filing 8 sellers that offer 1e6 kWh at 10 $/kWh (never trade)
// beside 3 honest buyers and 3 honest sellers on case33bw (seed 7) owns the
// median: tolerance 100 kWh. With it one forced attacker pair (1e4 kWh at
// the substation side, welfare ~3.9e3 $) carries the welfare, so the
// relative 0.1 % gap check of `clear` (≈ 3.9 $) cannot see the honest
// market (≈ 1 $). `Aladin::run` stops "converged" after 2 iterations with
// every honest buyer at 0 kWh (optimum 1.14, 1.33, 2.83 kWh) and
// `clear(.., Aladin)` returns Ok with relative gap 9e-6. With 4 sybils the
// honest buyers stop ~0.1 kWh short (also Ok). Fix: a per-prosumer
// stopping test (each prosumer's own residual against its own e_max, or
// an absolute 1 Wh), not a statistic over requests a single party can
// file many of; and in `clear`, a per-prosumer check against the
// reference's totals (each within 1 Wh + 1e-4 of its own e_max), since a
// welfare-relative gap is dominated by the largest trader.
#[test]
fn sybil_median_does_not_loosen_aladin() {
    let net = feeder();
    let honest = Market::generate(7, 3, 3, &[18, 17, 16, 33, 32]);
    let mut market = honest.clone();
    for s in market.sellers.iter_mut() {
        s.bus = 2;
    }
    // the attacker: one forced large pair at the substation side, and
    // enough never-trading sellers to own the median e_max
    market.buyers.push(p(Side::Buyer, 2, 0.001, 0.4, 1e4, 1e4));
    market.sellers.push(p(Side::Seller, 2, 0.001, 0.01, 1e4, 1e4));
    let sybils: usize = std::env::var("ATK_SYBILS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    for _ in 0..sybils {
        market.sellers.push(p(Side::Seller, 2, 0.01, 10.0, 0.0, 1e6));
    }
    let reference = central::solve(&market, &net).unwrap();
    let c = match clear(&market, &net, Algorithm::Aladin) {
        // refusing is acceptable (liveness, not correctness)
        Err(_) => return,
        Ok(c) => c,
    };
    let mut t = [0.0f64; 3];
    for tr in &c.trades {
        if tr.buyer < 3 {
            t[tr.buyer] += tr.kwh;
        }
    }
    let worst = (0..3).map(|m| (t[m] - reference.buyer_totals[m]).abs()).fold(0.0, f64::max);
    assert!(
        worst < 1e-2,
        "observed: clear Ok after {} iterations (gap {:e}) with honest buyers at {t:?} kWh, optimum {:?}",
        c.iterations,
        c.relative_gap,
        &reference.buyer_totals[..3]
    );
}

// ---------------------------------------------------------------- framework

// Expected: hidden minima that cannot be met jointly are relieved by
// excluding as little as needed, never a request whose removal makes the
// market *less* feasible, and never ending in a veto while a feasible
// subset exists. Observed: submission order is buyers then sellers, and the
// rule excludes "the latest positive minimum" blindly. An attacker buyer
// filed first with a hidden e_min of 10.5 kWh (just under the sellers'
// 11 kWh total, so the per-request check passes) beside an honest buyer
// (e_min 1) makes the totals infeasible; the enclaves first exclude the
// honest *seller* with e_min 0.5 (shrinking supply: worse), then the honest
// buyer, then the attacker, leaving no buyer: `run_interval` returns
// Err(Market(Empty)) — one request vetoes the interval, and two honest ones
// were excluded although {honest buyer, both sellers} clears. Fix: only
// exclude a request whose removal reduces the infeasibility (for totals: a
// minimum on the over-demanded side), prefer the request whose minimum is
// the cause (largest e_min relative to the shortfall), re-run the
// per-request check after each removal, and never let the loop empty a side
// (stop and clear what remains without the offenders instead).
#[test]
fn minima_exclusion_drops_only_what_it_must() {
    let net = case30_net(1.0);
    let b = &net.bus_ids;
    let market = Market {
        buyers: vec![
            // attacker, submitted first: a hidden minimum just under the sellers' total
            p(Side::Buyer, b[3], 0.02, 0.3, 10.5, 10.5),
            // honest buyer with a modest minimum
            p(Side::Buyer, b[4], 0.02, 0.3, 1.0, 2.0),
        ],
        sellers: vec![
            p(Side::Seller, b[5], 0.02, 0.1, 0.0, 10.0),
            // honest seller with a small minimum (submitted last)
            p(Side::Seller, b[6], 0.02, 0.1, 0.5, 1.0),
        ],
    };
    let without_attacker = Market { buyers: market.buyers[1..].to_vec(), sellers: market.sellers.clone() };
    assert!(central::solve(&without_attacker, &net).is_ok(), "precondition: the honest three clear");
    let dir = tempfile::tempdir().unwrap();
    match run_interval_insecure_seeded(dir.path(), &market, &net, cfg(3), None) {
        Ok(out) => {
            // round 4 replaced exclusion by a pro-rata scaling of the
            // over-demanding side's minima (sybil minima steered the
            // exclusion): nobody excluded, only the buyers' minima scaled,
            // the seller's minimum (the other side) left as filed
            assert!(out.excluded.is_empty(), "observed: excluded {:?}", out.excluded);
            let sc = out.minima_scaled.expect("the minima were scaled");
            assert_eq!(sc.side, Some(Side::Buyer));
            assert!(sc.factor > 0.9 && sc.factor < 1.0, "{sc:?}");
            let m = out.market.expect("the cleared market");
            assert_eq!(m.sellers[1].e_min, 0.5);
            assert!(m.buyers.iter().map(|p| p.e_min).sum::<f64>() <= 11.0);
        }
        Err(e) => panic!("observed: the whole interval failed: {e}"),
    }
}

// ---------------------------------------------------------------- settlement

/// Per buyer: cleared kWh (all of the clearing's trades) and settled Wh;
/// and the energy the ledger cannot settle without putting a prosumer
/// above its own `e_max` (fixer's note: whole Wh never above `⌊1000 e_max⌋`,
/// which `settlement_never_exceeds_a_prosumers_own_bounds` demands, cannot
/// settle the fraction of a Wh of a seller cleared at a fractional `e_max`:
/// the seeded market has most sellers on `e_max`, ~37 Wh of such fractions,
/// so "within 1 Wh in total" and "never above ⌊e_max⌋" contradict each
/// other; the total is now checked within 1 Wh beyond those fractions).
fn energy_gap(market: &Market, net: &MarketNetwork, algorithm: Algorithm) -> (f64, u64, f64, f64) {
    let c = clear(market, net, algorithm).expect("clears");
    let cleared_wh = c.energy_kwh * 1000.0;
    let settled_wh = c.settlement.energy_wh;
    // the worst buyer
    let mut worst: f64 = 0.0;
    let reference = central::solve(market, net).unwrap();
    for (m, wh) in c.settlement.buyer_wh.iter().enumerate() {
        worst = worst.max((reference.buyer_totals[m] * 1000.0 - *wh as f64).abs());
    }
    let capped = |ps: &[Prosumer], totals: &[f64]| -> f64 {
        ps.iter().zip(totals).map(|(p, x)| (x * 1000.0 - (p.e_max * 1000.0).floor()).max(0.0)).sum()
    };
    let lost = capped(&market.sellers, &reference.seller_totals).max(capped(&market.buyers, &reference.buyer_totals));
    (cleared_wh, settled_wh, worst, lost)
}

// Expected: the ledger settles the energy the clearing dispatched: each
// prosumer's settled Wh within 1 Wh of its cleared total, and each seller
// paid the value of its trades to a cent (rounding once per quantity, as
// `units` promises). Observed (four tests below, all `Algorithm::Central`,
// the reference itself):
// - `summarise` lists only trades above 1 Wh, so a buyer buying 0.9 Wh from
//   each of 200 small sellers is cleared 180 Wh and settled 0 Wh (free);
// - on a seeded 100×100 case30 market (the Table 6-2 size) the
//   reference's proportional split makes 10⁴ trades of a few Wh; rounding
//   each to whole Wh moves a buyer's settled energy 7.2 Wh off its cleared
//   total, and settles seller 1 at 8 Wh above its own e_max (the float
//   bound check allows 1 Wh + 1e-4 e_max ≈ 1.5 Wh);
// - each payment `wh · price / 10⁶` is rounded to whole cents per trade:
//   a trade of 15 Wh at 0.19 $/kWh pays 0.28 cent → 0, so seller 43 of that
//   market delivers 1518 Wh and receives 0 cents (worth 28.48 cents).
//   Σ paid = Σ received holds, but only because both sides lose together.
// Fix: settle per prosumer, not per trade: round each prosumer's cleared
// total once (largest-remainder / Hamilton apportionment of the integer
// totals over its trades, so Σ trades = rounded total and no trade list
// filter drops energy), and compute payments in a finer unit (e.g. micro
// units per Wh, or accumulate `wh · price` per pair of parties in i128 and
// round each party's net once, distributing the remainder
// deterministically so Σ paid = Σ received stays exact).
#[test]
fn settlement_accounts_for_the_cleared_energy() {
    let net = case30_net(1.0);
    let b = &net.bus_ids;
    // six buyers, 200 small sellers offering 5 Wh each (all sell at the
    // optimum): every trade below 1 Wh (fixer's note: the finding's sellers
    // offered 0.9 Wh each, which whole Wh can only settle above their own
    // e_max or not at all; 5 Wh split six ways keeps every trade sub-Wh)
    let mut market = Market { buyers: Vec::new(), sellers: Vec::new() };
    for k in 0..6 {
        market.buyers.push(p(Side::Buyer, b[(2 + k) % b.len()], 0.02, 0.3, 0.0, 5.0));
    }
    for k in 0..200 {
        market.sellers.push(p(Side::Seller, b[k % b.len()], 0.02, 0.05, 0.0, 0.005));
    }
    let c = clear(&market, &net, Algorithm::Central).expect("clears");
    assert!(c.trades.iter().all(|t| t.kwh < 1e-3), "precondition: every trade below 1 Wh");
    let (cleared, settled, worst, lost) = energy_gap(&market, &net, Algorithm::Central);
    assert!(
        (cleared - settled as f64).abs() <= 1.0 + lost && worst <= 1.0,
        "observed: cleared {cleared:.1} Wh, settled {settled} Wh; worst buyer off by {worst:.1} Wh"
    );
    // and a seller offering 0.9 Wh is never settled above it
    market.sellers[0].e_max = 0.0009;
    let c = clear(&market, &net, Algorithm::Central).expect("clears");
    assert_eq!(c.settlement.seller_wh[0], 0);
}

#[test]
fn settlement_of_a_large_seeded_market_accounts_for_its_energy() {
    let net = case30_net(1.0);
    let market = Market::generate(5, 100, 100, &net.bus_ids);
    let (cleared, settled, worst, lost) = energy_gap(&market, &net, Algorithm::Central);
    assert!(
        (cleared - settled as f64).abs() <= 1.0 + lost && worst <= 1.0,
        "observed: cleared {cleared:.1} Wh, settled {settled} Wh ({lost:.1} Wh beyond caps); worst buyer off by {worst:.1} Wh"
    );
}

#[test]
fn settlement_never_exceeds_a_prosumers_own_bounds() {
    let net = case30_net(1.0);
    let market = Market::generate(5, 100, 100, &net.bus_ids);
    let c = clear(&market, &net, Algorithm::Central).expect("clears");
    let mut worst = (0.0f64, 0usize);
    for (n, wh) in c.settlement.seller_wh.iter().enumerate() {
        let cap_wh = (market.sellers[n].e_max * 1000.0).floor();
        let e = (*wh as f64) - cap_wh;
        if e > worst.0 {
            worst = (e, n);
        }
    }
    for (m, wh) in c.settlement.buyer_wh.iter().enumerate() {
        let cap_wh = (market.buyers[m].e_max * 1000.0).floor();
        let e = (*wh as f64) - cap_wh;
        if e > worst.0 {
            worst = (e, 1000 + m);
        }
    }
    assert!(
        worst.0 <= 0.0,
        "observed: prosumer {} (>= 1000: buyer) settled {} Wh above its own e_max",
        worst.1,
        worst.0
    );
}

#[test]
fn settlement_pays_each_seller_its_trades_value_to_a_cent() {
    let net = case30_net(1.0);
    let market = Market::generate(5, 100, 100, &net.bus_ids);
    let c = clear(&market, &net, Algorithm::Central).expect("clears");
    let mut value = vec![0.0f64; market.sellers.len()];
    for t in &c.trades {
        value[t.seller] += t.kwh * t.price * 100.0; // cents
    }
    let (mut worst, mut at) = (0.0f64, 0);
    for (n, got) in c.settlement.seller_receives.iter().enumerate() {
        let d = (value[n] - *got as f64).abs();
        if d > worst {
            (worst, at) = (d, n);
        }
    }
    assert!(
        worst <= 1.0,
        "observed: seller {at} receives {} cents for {} Wh worth {:.2} cents",
        c.settlement.seller_receives[at],
        c.settlement.seller_wh[at],
        value[at]
    );
}

// ---------------------------------------------------------------- kernels

/// A change to prosumer `i` of a seeded market.
type Tweak = fn(&mut Prosumer, usize);

/// Markets with parameters at the edges validation admits.
fn edge_markets(net: &MarketNetwork) -> Vec<(String, Market)> {
    let mut out = Vec::new();
    let sizes = [(1, 1), (5, 17), (17, 5), (3, 33)];
    let tweaks: [(&str, Tweak); 6] = [
        ("plain", |_, _| {}),
        ("forced", |p, i| {
            if i % 2 == 0 {
                p.e_min = p.e_max
            }
        }),
        ("denormal-a", |p, i| {
            if i % 3 == 0 {
                p.a = 1e-310
            }
        }),
        ("huge-a", |p, i| {
            if i % 3 == 1 {
                p.a = 1e12
            }
        }),
        ("huge-e", |p, i| {
            if i % 4 == 0 {
                p.e_max = 1e12
            }
        }),
        ("tiny-e", |p, i| {
            if i % 2 == 1 {
                p.e_max = 1e-300
            }
        }),
    ];
    for (k, (m, n)) in sizes.iter().enumerate() {
        for (name, f) in tweaks.iter() {
            let mut market = Market::generate(100 + k as u64, *m, *n, &net.bus_ids);
            for (i, p) in market.buyers.iter_mut().chain(market.sellers.iter_mut()).enumerate() {
                f(p, i);
            }
            out.push((format!("{name} {m}x{n}"), market));
        }
    }
    out
}

// HELD UP (passes): `PrimalDual::step` (the per-CPU fused kernels, AVX-512 on a
// CPU that has it) and the sans-IO tasks (baseline kernels, what TEAR-DO
// executors run) agree bit for bit on every market validation admits, so
// the digest an executor checks never differs by CPU. Tried: sizes 1×1 to
// 3×33 (tails of 1..7 around the 4- and 8-lane widths), forced bounds
// (warm-tau path), denormal a = 1e-310, a = 1e12, e_max = 1e12 and 1e-300,
// uncongested and congested (1e-4) case30. NaN/inf cannot reach the kernels:
// validation refuses them.
#[test]
fn fused_step_equals_the_tasks_on_edge_markets() {
    for scale in [1.0, 1e-4] {
        let net = case30_net(scale);
        for (name, market) in edge_markets(&net) {
            if market.validate(&net.bus_ids).is_err() {
                continue;
            }
            let prm = PdParams::for_market(&market);
            let mut a = PrimalDual::new(&market, &net, prm).unwrap();
            let mut t = TearDo::new_insecure_seeded(&market, &net, cfg(1), [1; 32]).unwrap();
            let mut prev = [0u8; 32];
            for it in 0..12 {
                a.step(&market);
                t.step(&market, &mut prev);
                // (the fused step computes the next bus prices lazily, so
                // compare the trades and the bilateral prices)
                let la: Vec<u64> = (0..a.buyers)
                    .flat_map(|m| (0..a.sellers).map(move |n| (m, n)))
                    .map(|(m, n)| a.lambda_at(m, n).to_bits())
                    .collect();
                let lt: Vec<u64> = (0..a.buyers)
                    .flat_map(|m| (0..a.sellers).map(move |n| (m, n)))
                    .map(|(m, n)| t.pd.lambda_at(m, n).to_bits())
                    .collect();
                let bits = |v: Vec<Vec<f64>>| v.into_iter().flatten().map(f64::to_bits).collect::<Vec<_>>();
                assert_eq!(bits(a.settled()), bits(t.pd.settled()), "{name} scale {scale}: trades at iteration {it}");
                assert_eq!(la, lt, "{name} scale {scale}: prices at iteration {it}");
            }
        }
    }
}

// ---------------------------------------------------------------- TEAR-DO

use gridledger_market::teardo::Fault;

/// TEAR-DO's result beside the attack-free iteration, for colluding hosts
/// at the bounds (`κ = f_c + 1`, `3f < B'`).
fn collusion_sweep(seeds: std::ops::Range<u64>) -> Vec<String> {
    let net = case30_net(1.0);
    let market = Market::generate(11, 3, 3, &net.bus_ids);
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    let iters = pd.run(&market).unwrap();
    let want = pd.settled();
    let others = [
        Fault::Silent,
        Fault::TamperOutput,
        Fault::WrongInputs,
        Fault::BadSignature,
        Fault::StaleRound,
        Fault::ExtraOutput,
        Fault::Impersonate,
        Fault::WrongOutput,
    ];
    let mut bad = Vec::new();
    for seed in seeds {
        for third in others {
            for strategy in [Strategy::Always, Strategy::Optimal] {
                let mut byz = BTreeMap::new();
                // three of ten: f = 3 < 10/3; two (or three) compromised, κ = 3 or 4
                byz.insert((seed as usize) % 10, Fault::WrongOutput);
                byz.insert((seed as usize + 3) % 10, Fault::WrongOutput);
                byz.insert((seed as usize + 7) % 10, third);
                let kappa = if third == Fault::WrongOutput { 4 } else { 3 };
                let config = TearDoConfig { enclaves: 10, kappa, byzantine: byz, strategy, seed };
                let mut t = match TearDo::new_insecure_seeded(&market, &net, config, [1; 32]) {
                    Ok(t) => t,
                    Err(e) => {
                        bad.push(format!("seed {seed} {third:?} {strategy:?}: refused {e}"));
                        continue;
                    }
                };
                let r = t.run(&market);
                if !r.converged || t.pd.settled() != want {
                    bad.push(format!(
                        "seed {seed} {third:?} {strategy:?}: converged {} after {} (attack-free {iters}), trades differ {}",
                        r.converged,
                        r.iterations,
                        t.pd.settled() != want
                    ));
                }
            }
        }
    }
    bad
}

// HELD UP (passes): hosts at the bounds cannot change the outcome. Tried:
// B' = 10, f = 3 (two compromised `WrongOutput` enclaves with κ = 3, or
// three with κ = 4) plus one host of every other fault, both strategies,
// seed 0 by default (seeds 0..10 run with ATK_SEEDS=10): the trades equal the attack-free
// iteration's bit for bit.
#[test]
fn colluding_hosts_at_the_bounds_do_not_change_the_clearing() {
    let n: u64 = std::env::var("ATK_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let bad = collusion_sweep(0..n);
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------- case parser

/// Token-level mutations of the shipped cases through parse, the network
/// models, the AC power flow and a small central clearing: typed errors,
/// never a panic or a non-finite Ok.
fn fuzz_cases(rounds: usize) -> Vec<String> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xa77ac3);
    let nasty = [
        "0",
        "-1",
        "1e308",
        "-1e308",
        "1e-320",
        "NaN",
        "Inf",
        "-Inf",
        "4294967295",
        "4294967296",
        "2",
        "1",
        "3",
        "99",
        "0.0",
        "]",
        "[",
        ";",
        "%",
        "",
        "1e9",
        "-0",
    ];
    let mut bad = Vec::new();
    for round in 0..rounds {
        let base = if round % 2 == 0 { CASE30 } else { CASE33BW };
        let mut toks: Vec<String> = base.split_inclusive(char::is_whitespace).map(str::to_string).collect();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..toks.len());
            let t = nasty[rng.random_range(0..nasty.len())];
            // keep the line structure: replace only the token's number part
            let tail: String = toks[i].chars().skip_while(|c| !matches!(c, ';' | '\n' | '\t' | ' ')).collect();
            toks[i] = format!("{t}{tail}");
        }
        let text = toks.concat();
        let r = std::panic::catch_unwind(|| {
            let Ok(case) = Case::parse(&text) else { return Ok(()) };
            if let Ok(pf) = gridledger_market::run_pf(&case, Default::default()) {
                if !pf.min_vm.is_finite() || !pf.max_vm.is_finite() || !pf.loss_mw.is_finite() {
                    return Err("non-finite power flow".to_string());
                }
            }
            let Ok(net) = network_for(&case, 1.0) else { return Ok(()) };
            let market = Market::generate(1, 2, 2, &net.bus_ids);
            match clear(&market, &net, Algorithm::Central) {
                Ok(c) if !c.welfare.is_finite() => Err("non-finite welfare".to_string()),
                _ => Ok(()),
            }
        });
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bad.push(format!("round {round}: {e}")),
            Err(_) => bad.push(format!("round {round}: panic")),
        }
    }
    bad
}

#[test]
fn mutated_case_files_give_typed_errors() {
    let n: usize = std::env::var("ATK_FUZZ").ok().and_then(|v| v.parse().ok()).unwrap_or(40);
    let bad = fuzz_cases(n);
    assert!(bad.is_empty(), "{bad:#?}");
}

// ---------------------------------------------------------------- primal-dual liveness

// Expected: a primal-dual run that reports converged is a clearing `clear`
// accepts (the stopping rule at least as strict as the acceptance test).
// Observed: `PdParams::for_market` stops on a row violation ≤ `1e-4 / max(M, N)`
// kW (2e-5 kW for 5×5), while `clear` refuses any row beyond
// `1 mW + 1e-4 |h_r|` (round 2's fix); on congested case30 (line allotment
// 1e-5 of the ratings) 5×5 markets seeds 1 and 3 converge with a line
// 1.97e-5..1.99e-5 kW over and `clear` ends in `RowViolated` — the CLI's
// `market clear --buyers 5 --sellers 5 --limit-scale 1e-5 --seed 1` fails;
// at 1e-6 all of seeds 1..3 fail, at 1e-7 seed 3 never converges in 200 000
// iterations. Fix: stop only when `net.row_excess` (the acceptance test's
// own per-row tolerance) holds, i.e. the violation test per row against
// `1 mW + 1e-4 |h_r|`, and keep iterating otherwise.
#[test]
fn converged_primal_dual_is_accepted_on_congested_case30() {
    let net = case30_net(1e-5);
    let mut refused = Vec::new();
    for seed in 1..=3u64 {
        let market = Market::generate(seed, 5, 5, &net.bus_ids);
        if let Err(e) = clear(&market, &net, Algorithm::PrimalDual) {
            refused.push(format!("seed {seed}: {e}"));
        }
    }
    assert!(refused.is_empty(), "observed: {refused:#?}");
}

// Expected: an honest two-party market clears with ALADIN whatever the
// seller's capacity. Observed: `request_scale` takes `e[len / 2]` of the
// sorted e_max, the *upper* median, which for two requests is the larger:
// a seller offering 1e6 kWh (at an ordinary 0.1 $/kWh) beside one buyer on
// case33bw sets the tolerance to 100 kWh, ALADIN stops "converged" after 1
// iteration with no trade and `clear` refuses it as `OffOptimum` (gap 1.0). Fix: the lower median (or
// the per-prosumer tolerance of the sybil finding above).
#[test]
fn one_large_seller_does_not_stop_a_two_party_aladin_market() {
    let net = feeder();
    let market = Market {
        buyers: vec![p(Side::Buyer, 18, 0.02, 0.3, 0.0, 4.0)],
        sellers: vec![p(Side::Seller, 2, 0.02, 0.1, 0.0, 1e6)],
    };
    let r = clear(&market, &net, Algorithm::Aladin);
    assert!(r.is_ok(), "observed: {}", r.err().map(|e| e.to_string()).unwrap_or_default());
}
