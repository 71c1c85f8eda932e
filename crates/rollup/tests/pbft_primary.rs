//! The dual chain with its primary chain on PBFT (thesis §3.3.2): four
//! validators in one process, each executing and voting on every block,
//! under the same IOR scenarios as the single-validator chains.

use gridledger_core::{Amount, Energy};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::{ChainClient, ChainConfig};
use gridledger_node::cluster::ClusterClient;
use gridledger_rollup::driver::{DriverConfig, DualChain, Mode, MAX_TX_BYTES};
use gridledger_rollup::roles::ExecutorBehaviour;
use gridledger_rollup::types::{
    coins, AgreementTerms, AgreementTx, IorParams, IorTx, Outcome, SettlementTx, StSettlement,
};
use gridledger_rollup::{primary_registry, secondary_registry};
use rand::SeedableRng;

const HOUR: u64 = 3_600_000;
const MIN: u64 = 60_000;

fn open(root: &std::path::Path) -> DualChain<ClusterClient, DevChain> {
    let cfg = DriverConfig {
        params: IorParams::case_study(),
        mode: Mode::Ior,
        ior_window_ms: 5_000,
        node_deposit: coins(100),
        bonus_permille: 500,
        participants: 4,
        executors: 2,
        validators: 3,
        wallet: Amount(1_000_000 * 1_000_000),
        delegates: 2,
        challenge_bond: coins(10),
        delegation_fee: Amount(10_000),
    };
    let accounts = cfg.participants + cfg.executors + cfg.validators;
    let chain = ChainConfig { max_tx_bytes: MAX_TX_BYTES, ..ChainConfig::default() };
    let primary =
        ClusterClient::start(&root.join("primary"), 4, accounts, cfg.wallet, primary_registry(), chain.clone(), HOUR)
            .unwrap();
    let mut secondary = DevChain::open(&root.join("secondary"), accounts, cfg.wallet, secondary_registry()).unwrap();
    secondary.set_now(HOUR);
    DualChain::on_chains(primary, secondary, cfg).unwrap()
}

fn terms(b: usize, s: usize, start: u64) -> AgreementTerms {
    AgreementTerms {
        ep: Amount(200_000),
        em: Energy(500),
        buyer: dev_key(b).address(),
        seller: dev_key(s).address(),
        dt_start: start,
        dt_end: start + 30 * MIN,
        dl: start + 45 * MIN,
    }
}

fn st(t: &AgreementTerms, watts: i64, buyer: usize) -> IorTx {
    let s = SettlementTx {
        terms: t.clone(),
        stmp: t.dt_end + 5 * MIN,
        buyer_sig: None,
        ob: true,
        dt_step_s: 300,
        meter_sig: None,
        ps: vec![watts; 6],
    };
    IorTx::St(s.sign_as_buyer(&dev_key(buyer)))
}

/// Every coin on the primary chain: accounts, every validator (fees go to
/// each block's proposer), the IOR contract and the black hole.
fn primary_total(d: &DualChain<ClusterClient, DevChain>) -> u128 {
    let mut addrs: Vec<_> = (0..9).map(|i| dev_key(i).address()).collect();
    addrs.extend(d.primary.validators().iter().map(|k| k.address()));
    addrs.push(gridledger_ledger::contract_address(gridledger_rollup::IOR_PRIMARY_ID));
    addrs.push(gridledger_rollup::types::BLACK_HOLE);
    addrs.iter().map(|a| d.primary.account(a).balance.0).sum()
}

#[test]
fn ior_settles_over_a_pbft_primary_chain_and_catches_a_thief() {
    let root = tempfile::tempdir().unwrap();
    let mut d = open(root.path());
    let total0 = primary_total(&d);
    assert_eq!(total0, 9 * 1_000_000 * 1_000_000);
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    d.fund(&dev_key(0), coins(10)).unwrap();
    d.fund(&dev_key(1), coins(10)).unwrap();
    let start = 8 * HOUR;
    d.set_time(start - HOUR);
    let t = terms(0, 1, start);
    d.submit(&dev_key(0), &IorTx::At(AgreementTx::signed(t.clone(), &dev_key(1)))).unwrap();
    let settled = d.process(&mut rng).unwrap();
    assert_eq!(settled[0].outcomes, vec![Outcome::AtAccepted]);
    assert!(!settled[0].disputed);

    // The executor forges the ST's result; the validator's controversial
    // transaction makes the PBFT primary chain re-execute and rule.
    d.set_executor(0, ExecutorBehaviour::FlipVerdicts);
    d.set_executor(1, ExecutorBehaviour::FlipVerdicts);
    d.set_time(t.dt_end + 5 * MIN);
    d.submit(&dev_key(1), &st(&t, 1000, 0)).unwrap();
    let settled = d.process(&mut rng).unwrap();
    assert!(settled[0].disputed, "the forged TCR must be disputed");
    assert_eq!(settled[0].outcomes, vec![Outcome::StSettled(StSettlement::Agreed)]);
    assert_eq!(d.participant(&dev_key(0).address()).unwrap().balance, Amount(9_900_000));
    assert_eq!(d.participant(&dev_key(1).address()).unwrap().balance, Amount(10_100_000));

    // Every validator of the primary chain holds the same blocks and state
    // (once the others have committed what the submission validator has).
    let c = &d.primary.cluster;
    let top = d.primary.tip().height;
    let t = std::time::Instant::now();
    while c.running().iter().any(|&i| c.height(i) != Some(top)) {
        assert!(t.elapsed() < std::time::Duration::from_secs(20), "validators did not reach height {top}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let roots: Vec<_> = c.running().iter().map(|&i| c.node(i).unwrap().shared.chain().state().root()).collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    assert!(d.primary.tip().height >= 4);
    assert_eq!(primary_total(&d), total0, "coins conserved with fees spread over four proposers");
}
