//! ALADIN on the meshed IEEE 30-bus case with binding PTDF line limits
//! (ratings scaled to 1e-4, so that several lines bind) against the
//! Clarabel reference. Before the coordinator QP carried every line row as
//! an inequality, these runs cycled without converging.

use gridledger_market::aladin::{Aladin, AladinParams};
use gridledger_market::central::solve;
use gridledger_market::clearing::network_for;
use gridledger_market::problem::Market;
use gridledger_market::{Case, CASE30};

#[test]
fn aladin_clears_congested_case30_within_0_1_percent_of_the_optimum() {
    let case = Case::parse(CASE30).unwrap();
    let net = network_for(&case, 1e-4).unwrap();
    assert_eq!(net.model, "ptdf");
    for (seed, k) in [(1u64, 6usize), (2, 6), (3, 12)] {
        let market = Market::generate(seed, k, k, &net.bus_ids);
        let central = solve(&market, &net).unwrap();
        assert!(!central.binding.is_empty(), "seed {seed}: a line limit binds");
        let mut al = Aladin::new(&market, &net, AladinParams::default()).unwrap();
        let iters = al.run(&market, &net).expect("ALADIN converges");
        let trades = al.settled();
        let w = market.welfare(&trades);
        let gap = (central.welfare - w) / central.welfare;
        eprintln!("seed {seed} {k}x{k}: {iters} iterations, gap {gap:.2e}, {} binding", central.binding.len());
        assert!(iters < 80, "{iters}");
        assert!(gap.abs() < 1e-3, "seed {seed}: {w} vs {}", central.welfare);
        // the settled trades keep the line limits (to the solver's tolerance, kW)
        let mut p = vec![0.0; net.bus_ids.len()];
        for (m, row) in trades.iter().enumerate() {
            let bm = net.bus_ids.iter().position(|b| *b == market.buyers[m].bus).unwrap();
            for (n, e) in row.iter().enumerate() {
                let bn = net.bus_ids.iter().position(|b| *b == market.sellers[n].bus).unwrap();
                p[bm] -= e;
                p[bn] += e;
            }
        }
        assert!(net.violation(&p) < 1e-2, "seed {seed}: violation {}", net.violation(&p));
    }
}
