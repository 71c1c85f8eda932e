//! Requests and admission on chain, decrypted by the D-TASK enclaves and
//! cleared by TEAR-DO; the contract's refusals change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::{ContractRegistry, TxStatus};
use gridledger_market::contract::{
    AdmissionRules, AdmitArgs, IntervalArg, MarketContract, RequestArgs, MARKET_ID, MAX_ADMIT_BATCH,
    MAX_REQUESTS_PER_ACCOUNT,
};
use gridledger_market::framework::{
    decode_request, encode_request, run_interval_insecure_seeded, run_interval_insecure_seeded_capped, RequestError,
    REQUEST_BYTES,
};
use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::teardo::{Fault, Strategy, TearDoConfig};
use gridledger_market::{Case, DcModel, CASE30};

fn setup() -> (Market, MarketNetwork) {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    (Market::generate(21, 4, 4, &dc.bus_ids), MarketNetwork::ptdf(&dc, 1.0).unwrap())
}

fn cfg(byzantine: BTreeMap<usize, Fault>) -> TearDoConfig {
    TearDoConfig { enclaves: 7, kappa: 2, byzantine, strategy: Strategy::Always, seed: 3 }
}

#[test]
fn an_interval_clears_exactly_the_admitted_requests() {
    let (market, net) = setup();
    let dir = tempfile::tempdir().unwrap();
    let byz = [(2, Fault::WrongInputs), (5, Fault::Silent)].into_iter().collect();
    let out = run_interval_insecure_seeded(dir.path(), &market, &net, cfg(byz), None).unwrap();
    assert_eq!(out.submitted, 8);
    assert_eq!(out.admitted.len(), 8);
    assert!(out.deferred.is_empty());
    assert_eq!(out.market.as_ref().unwrap(), &market, "the enclaves decrypted exactly the requests");
    let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
    pd.run(&market).unwrap();
    assert_eq!(out.trades, pd.settled(), "Byzantine hosts change nothing in the clearing");
    assert!(!out.teardo.detected.is_empty());
    assert!(out.teardo.detected.iter().all(|(n, _, _)| *n == 2 || *n == 5));
}

/// A distributed run that reaches its iteration cap unconverged does not
/// halt the interval: it clears at the central reference the enclaves
/// solved, and says so (attack round 7 held the interval for 200 000
/// encrypted iterations and then failed it for everyone).
#[test]
fn an_unconverged_run_clears_at_the_central_reference_with_a_record() {
    let (market, net) = setup();
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded_capped(dir.path(), &market, &net, cfg(BTreeMap::new()), None, Some(3))
        .expect("the interval clears");
    assert!(!out.teardo.converged);
    assert_eq!(out.teardo.iterations, 3);
    let fallback = out.fallback.as_ref().expect("the fallback is recorded");
    assert_eq!(fallback.iterations, 3);
    assert!(fallback.reason.contains("central reference"), "{}", fallback.reason);
    let reference = gridledger_market::central::solve(&market, &net).unwrap();
    assert_eq!(out.trades, reference.trades(), "the trades are the reference's");
    assert!((out.welfare - reference.welfare).abs() <= 1e-6 * reference.welfare.abs().max(1.0));
    assert!(market.bound_excess(&out.trades).is_none());
    // and a run within its cap reports no fallback
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded(dir.path(), &market, &net, cfg(BTreeMap::new()), None).unwrap();
    assert!(out.teardo.converged && out.fallback.is_none());
}

#[test]
fn the_operator_cap_defers_requests_and_the_rest_clear() {
    let (market, net) = setup();
    let dir = tempfile::tempdir().unwrap();
    // a cap below the largest request: that one (at least) is deferred
    let largest = market.buyers.iter().chain(&market.sellers).map(|p| p.e_max).fold(0.0, f64::max);
    let cap = (largest * 1000.0) as u64 - 1;
    let out = run_interval_insecure_seeded(dir.path(), &market, &net, cfg(BTreeMap::new()), Some(cap)).unwrap();
    assert!(!out.deferred.is_empty());
    assert_eq!(out.admitted.len() + out.deferred.len(), 8);
    let admitted = out.market.unwrap();
    assert!(admitted.buyers.iter().chain(&admitted.sellers).all(|p| p.e_max * 1000.0 <= cap as f64 + 0.5));
}

#[test]
fn request_encoding_round_trips_and_refuses_garbage() {
    let (market, _) = setup();
    for p in market.buyers.iter().chain(&market.sellers) {
        assert_eq!(&decode_request(&encode_request(p)).unwrap(), p);
    }
    assert_eq!(decode_request(&[0u8; 3]), Err(RequestError::Length(3)));
    let mut b = encode_request(&market.buyers[0]);
    b[0] = 9;
    assert_eq!(decode_request(&b), Err(RequestError::Side(9)));
    assert_eq!(b.len(), REQUEST_BYTES);
}

struct Env {
    chain: DevChain,
    _dir: tempfile::TempDir,
}

fn chain() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = ContractRegistry::new();
    reg.register(MARKET_ID, Arc::new(MarketContract { operator: dev_key(0).address() }));
    let chain = DevChain::open(dir.path(), 4, Amount(1_000_000_000_000), reg).unwrap();
    Env { chain, _dir: dir }
}

fn call<T: borsh::BorshSerialize>(env: &mut Env, who: usize, method: &str, args: &T) -> TxStatus {
    env.chain.call(&dev_key(who), MARKET_ID, method, borsh::to_vec(args).unwrap(), Amount(0)).unwrap().status
}

fn view(env: &Env, method: &str) -> serde_json::Value {
    env.chain.chain.view(MARKET_ID, method, &borsh::to_vec(&IntervalArg { interval: 1 }).unwrap()).unwrap()
}

fn reverted(s: &TxStatus) -> bool {
    matches!(s, TxStatus::Reverted(_))
}

#[test]
fn the_contract_refuses_bad_requests_and_admissions_and_changes_nothing() {
    let mut env = chain();
    let req = |bus: u32, e: u64, ct: Vec<u8>| RequestArgs { interval: 1, bus, e_max_wh: e, ciphertext: ct };
    assert_eq!(call(&mut env, 1, "request", &req(3, 4000, vec![1; 100])), TxStatus::Success);
    assert_eq!(call(&mut env, 2, "request", &req(3, 3000, vec![2; 100])), TxStatus::Success);
    let before = view(&env, "requests");
    // empty, oversized and duplicate requests
    assert!(reverted(&call(&mut env, 1, "request", &req(3, 1, Vec::new()))));
    assert!(reverted(&call(&mut env, 1, "request", &req(3, 1, vec![0; 5000]))));
    assert!(reverted(&call(&mut env, 1, "request", &req(3, 4000, vec![1; 100]))));
    assert_eq!(view(&env, "requests"), before, "refused requests leave the list as it was");
    let ids: Vec<Hash32> = serde_json::from_value::<Vec<serde_json::Value>>(before["requests"].clone())
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r["id"].clone()).unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    // admission before rules, and rules by someone else
    assert!(reverted(&call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: ids.clone() })));
    let rules = AdmissionRules { interval: 1, bus_caps_wh: vec![(3, 5000)], note: "cap".into() };
    assert!(reverted(&call(&mut env, 1, "rules", &rules)));
    assert_eq!(view(&env, "rules")["rules"], serde_json::Value::Null);
    assert_eq!(call(&mut env, 0, "rules", &rules), TxStatus::Success);
    assert!(reverted(&call(&mut env, 0, "rules", &rules)), "rules are published once");
    // over the cap, unknown id, duplicate id, not the operator
    assert!(reverted(&call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: ids.clone() })));
    assert!(reverted(&call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: vec![Hash32([9; 32])] })));
    assert!(reverted(&call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: vec![ids[0], ids[0]] })));
    assert!(reverted(&call(&mut env, 2, "admit", &AdmitArgs { interval: 1, ids: vec![ids[0]] })));
    assert_eq!(view(&env, "admitted")["admitted"], serde_json::Value::Null, "nothing admitted yet");
    // a valid admission, then nothing more for the interval
    assert_eq!(call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: vec![ids[0]] }), TxStatus::Success);
    let admitted = view(&env, "admitted");
    assert_eq!(admitted["admitted"].as_array().unwrap().len(), 1);
    assert!(reverted(&call(&mut env, 0, "admit", &AdmitArgs { interval: 1, ids: vec![ids[1]] })));
    assert!(reverted(&call(&mut env, 3, "request", &req(4, 10, vec![3; 10]))), "the interval is closed");
    assert_eq!(view(&env, "admitted"), admitted);
}

#[test]
fn two_hundred_requests_are_filed_and_admitted_in_batches_within_the_gas_limit() {
    let mut env = chain();
    let mut ids = Vec::new();
    for i in 0..200u32 {
        let mut ct = vec![7u8; 120];
        ct[..4].copy_from_slice(&i.to_le_bytes());
        let a = RequestArgs { interval: 1, bus: 3 + i % 30, e_max_wh: 1000, ciphertext: ct };
        let r = env.chain.call(&dev_key(1), MARKET_ID, "request", borsh::to_vec(&a).unwrap(), Amount(0)).unwrap();
        assert_eq!(r.status, TxStatus::Success, "request {i}");
        ids.push(Hash32(r.output[..32].try_into().unwrap()));
    }
    let rules = AdmissionRules { interval: 1, bus_caps_wh: (3..33).map(|b| (b, 10_000)).collect(), note: "".into() };
    assert_eq!(call(&mut env, 0, "rules", &rules), TxStatus::Success);
    let too_many = AdmitArgs { interval: 1, ids: ids[..MAX_ADMIT_BATCH + 1].to_vec() };
    assert!(reverted(&call(&mut env, 0, "admit_part", &too_many)), "a batch over the limit");
    let chunks: Vec<&[Hash32]> = ids.chunks(MAX_ADMIT_BATCH).collect();
    for (k, c) in chunks.iter().enumerate() {
        let m = if k + 1 == chunks.len() { "admit" } else { "admit_part" };
        assert_eq!(call(&mut env, 0, m, &AdmitArgs { interval: 1, ids: c.to_vec() }), TxStatus::Success, "batch {k}");
        if k == 0 {
            assert_eq!(view(&env, "admitted")["admitted"], serde_json::Value::Null, "not sealed yet");
            let late = RequestArgs { interval: 1, bus: 3, e_max_wh: 1, ciphertext: vec![1; 50] };
            assert!(reverted(&call(&mut env, 2, "request", &late)), "requests close at the first batch");
            let again = AdmitArgs { interval: 1, ids: vec![ids[0]] };
            assert!(reverted(&call(&mut env, 0, "admit_part", &again)), "an id admitted in an earlier batch");
        }
    }
    assert_eq!(view(&env, "admitted")["admitted"].as_array().unwrap().len(), 200);
    assert!(reverted(&call(&mut env, 0, "admit_part", &AdmitArgs { interval: 1, ids: Vec::new() })), "sealed");
}

#[test]
fn one_account_files_at_most_its_quota_per_interval_and_others_still_can() {
    let mut env = chain();
    let req = |i: u32| {
        let mut ct = vec![5u8; 100];
        ct[..4].copy_from_slice(&i.to_le_bytes());
        RequestArgs { interval: 1, bus: 3, e_max_wh: 1, ciphertext: ct }
    };
    for i in 0..MAX_REQUESTS_PER_ACCOUNT as u32 {
        assert_eq!(call(&mut env, 2, "request", &req(i)), TxStatus::Success, "request {i}");
    }
    let before = view(&env, "requests");
    assert!(reverted(&call(&mut env, 2, "request", &req(u32::MAX))), "over the account's quota");
    assert_eq!(view(&env, "requests"), before, "the refused request changed nothing");
    assert_eq!(call(&mut env, 1, "request", &req(u32::MAX)), TxStatus::Success, "another account still files");
}

#[test]
fn invalid_hidden_fields_are_excluded_with_a_record_and_the_rest_clear() {
    let (mut market, net) = setup();
    let honest = market.clone();
    let mut nan = market.buyers[0].clone();
    nan.a = f64::NAN;
    let mut nowhere = market.sellers[0].clone();
    nowhere.bus = 9999;
    market.buyers.push(nan);
    market.sellers.push(nowhere);
    let dir = tempfile::tempdir().unwrap();
    let out = run_interval_insecure_seeded(dir.path(), &market, &net, cfg(BTreeMap::new()), None).unwrap();
    assert_eq!(out.admitted.len(), 10);
    // submission order: 5 buyers (the NaN one last), then 5 sellers
    let ex: Vec<usize> = out.excluded.iter().map(|e| e.index).collect();
    assert_eq!(ex, vec![4, 9], "{:?}", out.excluded);
    assert!(out.excluded[0].reason.contains("a = NaN"), "{}", out.excluded[0].reason);
    assert!(out.excluded[1].reason.contains("bus 9999"), "{}", out.excluded[1].reason);
    assert_eq!(out.market.as_ref().unwrap(), &honest, "exactly the valid requests clear");
    assert!(out.teardo.converged);
}

#[test]
fn a_request_opens_only_under_its_own_chain_interval_and_submitter() {
    use gridledger_market::tee::{encrypt_request_for, request_binding, Enclave};
    let dep = gridledger_market::teardo::Deployed::deploy(cfg(BTreeMap::new())).unwrap();
    let (market, _) = setup();
    let plain = encode_request(&market.buyers[0]);
    let me = dev_key(1).address();
    let ct = encrypt_request_for(&dep.keys, &plain, &request_binding(7, 1, &me.0), &mut rand::rng());
    let e = &dep.enclaves[dep.selected[0]];
    assert_eq!(e.open_request_for(&ct, &request_binding(7, 1, &me.0)).unwrap(), plain);
    let other = dev_key(2).address();
    assert!(e.open_request_for(&ct, &request_binding(7, 1, &other.0)).is_err(), "another submitter");
    assert!(e.open_request_for(&ct, &request_binding(7, 2, &me.0)).is_err(), "another interval");
    assert!(e.open_request_for(&ct, &request_binding(8, 1, &me.0)).is_err(), "another chain");
    assert!(e.open_request(&ct).is_err(), "unbound");
}
