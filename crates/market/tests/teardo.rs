//! D-TASK and TEAR-DO: assignment, detection, recompute, and the clearing
//! being exactly the attack-free one.

use std::collections::BTreeMap;

use gridledger_market::network::MarketNetwork;
use gridledger_market::primal_dual::{PdParams, PrimalDual};
use gridledger_market::problem::Market;
use gridledger_market::teardo::{assign, Detection, Fault, Strategy, TearDo, TearDoConfig, TearDoError, SCRIPT};
use gridledger_market::tee::{
    encrypt_request, run_dtask, Attester, Enclave, Isolation, SetupFault, SoftwareEnclave, TeeError,
};
use gridledger_market::{Case, DcModel, CASE30};
use rand::SeedableRng;

fn setup() -> (Market, MarketNetwork) {
    let dc = DcModel::new(&Case::parse(CASE30).unwrap()).unwrap();
    (Market::generate(21, 4, 4, &dc.bus_ids), MarketNetwork::ptdf(&dc, 1.0).unwrap())
}

fn config(byzantine: BTreeMap<usize, Fault>, strategy: Strategy, kappa: usize) -> TearDoConfig {
    TearDoConfig { enclaves: 10, kappa, byzantine, strategy, seed: 5 }
}

fn reference(market: &Market, net: &MarketNetwork) -> (Vec<Vec<f64>>, usize) {
    let mut pd = PrimalDual::new(market, net, PdParams::for_market(market)).unwrap();
    let it = pd.run(market).unwrap();
    (pd.settled(), it)
}

#[test]
fn assign_picks_the_kappa_smallest_hashes() {
    let rn = [7u8; 32];
    let a = assign(&rn, 3, 5, 20);
    assert_eq!(a, assign(&rn, 3, 5, 20));
    assert_eq!(a.len(), 5);
    let mut sorted = a.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 5, "distinct enclaves");
    assert_ne!(a, assign(&rn, 4, 5, 20), "another subproblem, another set");
    assert_ne!(a, assign(&[8u8; 32], 3, 5, 20), "another random number, another set");
    // prefix property: the κ = 3 set is the first three of the κ = 5 set
    assert_eq!(assign(&rn, 3, 3, 20), a[..3].to_vec());
}

#[test]
fn attack_free_teardo_clears_exactly_like_the_plain_iteration() {
    let (market, net) = setup();
    let (want, iters) = reference(&market, &net);
    let mut t =
        TearDo::new_insecure_seeded(&market, &net, config(BTreeMap::new(), Strategy::Always, 3), [1; 32]).unwrap();
    let r = t.run(&market);
    assert!(r.converged);
    assert_eq!(r.iterations, iters);
    assert_eq!(t.pd.settled(), want, "bit-identical trades");
    assert!(r.detected.is_empty());
    assert_eq!(r.delayed_rounds, 0);
    assert!((r.mean_honest_executions - 3.0).abs() < 1e-12, "each subproblem run by its κ enclaves");
    assert_eq!(r.crypto.signatures, r.crypto.encryptions);
}

#[test]
fn every_byzantine_behaviour_is_detected_and_the_result_is_unchanged() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let byz: BTreeMap<usize, Fault> = [(1, Fault::Silent), (4, Fault::TamperOutput), (6, Fault::WrongInputs)]
        .into_iter()
        .chain([(8, Fault::BadSignature)])
        .collect();
    // 4 of 10 is more than f = 3, but the TEAR-DO detection does not need a
    // quorum: every honest enclave decides for itself
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz.clone(), Strategy::Always, 2), [1; 32]).unwrap();
    let r = t.run(&market);
    assert!(r.converged);
    assert_eq!(t.pd.settled(), want, "the countermeasure keeps the clearing exact");
    let got: BTreeMap<usize, Detection> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    let expect: BTreeMap<usize, Detection> = [
        (1, Detection::SilentPastDelta),
        // the proof covers the ciphertext: tampering breaks the signature
        (4, Detection::BadSignature),
        (6, Detection::ContextMismatch),
        (8, Detection::BadSignature),
    ]
    .into_iter()
    .filter(|(n, _)| (0..9).any(|sp| t.assigned(sp).contains(n)))
    .collect();
    assert_eq!(got, expect, "exactly the misbehaving hosts, each for what it did");
    assert!(r.detected.iter().all(|(_, _, round)| *round <= 2), "caught in the first iteration");
}

#[test]
fn the_optimal_attack_costs_one_delta_per_byzantine_only_subproblem() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let byz: BTreeMap<usize, Fault> = [0, 2, 3, 5].into_iter().map(|n| (n, Fault::Silent)).collect();
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz.clone(), Strategy::Optimal, 1), [1; 32]).unwrap();
    let subproblems = 4 + 4 + 1;
    let byz_only = (0..subproblems).filter(|sp| t.assigned(*sp).iter().all(|n| byz.contains_key(n))).count();
    assert!(byz_only > 0, "with κ = 1 some subproblem has only Byzantine executors");
    let r = t.run(&market);
    assert_eq!(t.pd.settled(), want);
    // a host's outputs travel in one signed message, so two such subproblems
    // of one host in one round cost a single Δ
    assert!(r.delayed_rounds >= 1 && r.delayed_rounds as usize <= byz_only, "{} Δ for {byz_only}", r.delayed_rounds);
    assert_eq!(r.recomputed_subproblems, byz_only);
    assert!(r.mean_honest_executions > 1.0 - 1e-12);
}

#[test]
fn bad_configurations_are_refused() {
    let (market, net) = setup();
    assert!(matches!(
        TearDo::new_insecure_seeded(&market, &net, config(BTreeMap::new(), Strategy::Always, 0), [0; 32]),
        Err(TearDoError::BadKappa { .. })
    ));
    assert!(matches!(
        TearDo::new_insecure_seeded(&market, &net, config(BTreeMap::new(), Strategy::Always, 11), [0; 32]),
        Err(TearDoError::BadKappa { .. })
    ));
    let byz = [(10, Fault::Silent)].into_iter().collect();
    assert!(matches!(
        TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 2), [0; 32]),
        Err(TearDoError::UnknownNode(10, 10))
    ));
    let mut bad = market.clone();
    bad.buyers[0].e_max = f64::NAN;
    assert!(matches!(
        TearDo::new_insecure_seeded(&bad, &net, config(BTreeMap::new(), Strategy::Always, 2), [0; 32]),
        Err(TearDoError::Market(_))
    ));
}

fn enclaves(n: usize, rng: &mut rand_chacha::ChaCha20Rng) -> Vec<SoftwareEnclave> {
    let f = (n - 1) / 3;
    let (set, shares) = gridledger_threshold::deal(n, 2 * f + 1, rng).unwrap();
    shares.into_iter().enumerate().map(|(i, s)| SoftwareEnclave::new(i, SCRIPT, s, set.clone(), rng)).collect()
}

#[test]
fn dtask_selects_the_honest_enclaves_and_only_they_read_requests() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let mut es = enclaves(7, &mut rng);
    let h = es[0].measurement();
    let faults = vec![None, Some(SetupFault::Silent), None, Some(SetupFault::WrongScript), None, None, None];
    let dep = run_dtask(&mut es, &faults, b"v", h, &mut rng).unwrap();
    assert_eq!(dep.selected, vec![0, 2, 4, 5, 6]);
    let out: Vec<usize> = dep.eliminated.iter().map(|(i, _)| *i).collect();
    assert_eq!(out, vec![1, 3]);
    for &i in &dep.selected {
        assert_eq!(es[i].group_keys(), Some(dep.keys), "every selected enclave derived the same keys");
    }
    assert_eq!(es[1].group_keys(), None);
    assert_eq!(es[3].group_keys(), None, "the wrong-script enclave never got the certificate");
    // a prosumer's request opens in a selected enclave only
    let ct = encrypt_request(&dep.keys, b"bus 7, 3 kWh, a 0.02, b 0.3", &mut rng);
    assert_eq!(es[2].open_request(&ct).unwrap(), b"bus 7, 3 kWh, a 0.02, b 0.3");
    assert_eq!(es[3].open_request(&ct), Err(TeeError::NotReady("SKS")));
    let mut tampered = ct.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert_eq!(es[2].open_request(&tampered), Err(TeeError::Decrypt));
    assert_eq!(es[2].open_request(&ct[..10]), Err(TeeError::Decrypt));
}

#[test]
fn dtask_survives_garbage_shares_and_fails_typed_without_a_quorum() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
    let mut es = enclaves(4, &mut rng);
    let h = es[0].measurement();
    let dep = run_dtask(&mut es, &[Some(SetupFault::GarbageShares), None, None, None], b"v", h, &mut rng).unwrap();
    assert_eq!(dep.selected.len(), 4, "garbage shares are dropped; the sender still holds its own secret");
    let mut es = enclaves(4, &mut rng);
    let silent = Some(SetupFault::Silent);
    let r = run_dtask(&mut es, &[silent, silent, None, None], b"v", h, &mut rng);
    assert!(matches!(r, Err(TeeError::TooFewShares { .. })), "{r:?}");
}

#[test]
fn the_software_enclave_says_it_offers_no_isolation() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    let es = enclaves(4, &mut rng);
    assert_eq!(es[0].isolation(), Isolation::None);
    let a = es[0].attest([3; 32]);
    assert_eq!(a.isolation, Isolation::None);
    assert_eq!(a.measurement, es[1].measurement(), "same script, same measurement");
    let sealed = es[0].seal(b"secret");
    assert_eq!(es[0].unseal(&sealed).unwrap(), b"secret");
    assert_eq!(es[1].unseal(&sealed), Err(TeeError::Decrypt), "sealed to one enclave");
}

/// The market's enclave is the shared `Attester` other protocols (CTP-FL's
/// pre-vectors, deter-vectors and aggregates) verify with `RAV`.
#[test]
fn the_market_enclave_attests_evidence_under_the_shared_trait() {
    use gridledger_core::enclave::{verify_evidence, AttestationError};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
    let es = enclaves(2, &mut rng);
    let e = [9u8; 32];
    let ra = es[1].attest_evidence(&e);
    verify_evidence(&ra, &es[1].attestation_key(), &es[1].measurement(), &e).unwrap();
    assert_eq!(
        verify_evidence(&ra, &es[0].attestation_key(), &es[0].measurement(), &e),
        Err(AttestationError::BadSignature(1))
    );
    assert_eq!(
        verify_evidence(&ra, &es[1].attestation_key(), &es[1].measurement(), &[8; 32]),
        Err(AttestationError::WrongEvidence(1))
    );
}

/// A stale round's message is dropped (a replay of an earlier round cannot
/// be told from it, so it accuses nobody): its host is silent in the round
/// and flagged past Δ; the others are flagged for what they did.
#[test]
fn stale_rounds_unassigned_outputs_and_wrong_values_are_caught_by_the_receivers() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let byz: BTreeMap<usize, Fault> =
        [(2, Fault::StaleRound), (5, Fault::ExtraOutput), (7, Fault::WrongOutput)].into_iter().collect();
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz.clone(), Strategy::Always, 3), [1; 32]).unwrap();
    // precondition of the κ comparison: every subproblem of host 7 has an
    // executor whose output the receivers accept
    let subproblems = 4 + 4 + 1;
    for sp in (0..subproblems).filter(|sp| t.assigned(*sp).contains(&7)) {
        assert!(t.assigned(sp).iter().any(|n| !byz.contains_key(n)), "subproblem {sp}: {:?}", t.assigned(sp));
    }
    let r = t.run(&market);
    assert!(r.converged);
    assert_eq!(t.pd.settled(), want, "no bad output entered the clearing");
    let got: BTreeMap<usize, Detection> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    let expect: BTreeMap<usize, Detection> =
        [(2, Detection::SilentPastDelta), (5, Detection::UnassignedOutput), (7, Detection::OutputMismatch)]
            .into_iter()
            .filter(|(n, _)| (0..subproblems).any(|sp| t.assigned(sp).contains(n)))
            .collect();
    assert_eq!(got, expect, "exactly the misbehaving hosts, each for what it did");
}

#[test]
fn a_message_in_another_nodes_name_accuses_nobody_but_the_silent_sender() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let byz: BTreeMap<usize, Fault> = [(3, Fault::Impersonate)].into_iter().collect();
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 3), [1; 32]).unwrap();
    assert!((0..9).any(|sp| t.assigned(sp).contains(&3)), "precondition: host 3 has work");
    let r = t.run(&market);
    assert!(r.converged);
    assert_eq!(t.pd.settled(), want);
    let got: Vec<(usize, Detection)> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    // host 4, whose name was used, is never accused; host 3 sent nothing in its own name
    assert_eq!(got, vec![(3, Detection::SilentPastDelta)]);
}

/// A host that replays every other node's validly signed message of the
/// previous round (attack r20, TEAR-DO: the honest senders used to be
/// flagged `WrongRound`, as the round was checked after the signature
/// that covers it) flags nobody — beside its own valid message, beside a
/// stale-round host (silent in its rounds) and under both strategies — and
/// the clearing is the attack-free one.
#[test]
fn an_honest_nodes_earlier_message_replayed_flags_nobody_honest() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    for strategy in [Strategy::Always, Strategy::Optimal] {
        for kappa in [1, 2, 3] {
            let byz: BTreeMap<usize, Fault> = [(3, Fault::ReplayEarlier)].into();
            let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz, strategy, kappa), [1; 32]).unwrap();
            let r = t.run(&market);
            assert!(r.converged, "κ = {kappa}, {strategy:?}");
            assert_eq!(t.pd.settled(), want, "κ = {kappa}, {strategy:?}");
            assert_eq!(r.detected, vec![], "κ = {kappa}, {strategy:?}: a replay flagged someone");
            assert_eq!(r.delayed_rounds, 0, "κ = {kappa}, {strategy:?}");
        }
    }
    // beside a stale-round host: only that host is flagged, as silent
    let byz: BTreeMap<usize, Fault> = [(3, Fault::ReplayEarlier), (6, Fault::StaleRound)].into();
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 2), [1; 32]).unwrap();
    assert!((0..9).any(|sp| t.assigned(sp).contains(&6)), "precondition: host 6 has work");
    let r = t.run(&market);
    assert!(r.converged);
    assert_eq!(t.pd.settled(), want);
    let got: Vec<(usize, Detection)> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    assert_eq!(got, vec![(6, Detection::SilentPastDelta)]);
}

/// Whether two clearings are the same bit for bit.
fn same_bits(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| x.len() == y.len() && x.iter().zip(y).all(|(u, v)| u.to_bits() == v.to_bits()))
}

#[test]
fn a_sign_flipped_zero_is_an_output_mismatch() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let cfg = |byz| config(byz, Strategy::Always, 2);
    // the operator's subproblem: the multipliers of the unpriced lines are +0.0 in every round
    let operator = 4 + 4;
    let node = TearDo::new_insecure_seeded(&market, &net, cfg(BTreeMap::new()), [1; 32]).unwrap().assigned(operator)[0];
    let byz: BTreeMap<usize, Fault> = [(node, Fault::SignFlippedZero)].into();
    let mut t = TearDo::new_insecure_seeded(&market, &net, cfg(byz), [1; 32]).unwrap();
    let r = t.run(&market);
    assert!(r.converged);
    assert!(same_bits(&t.pd.settled(), &want), "the honest recomputation keeps the clearing exact");
    let got: Vec<(usize, Detection)> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    assert_eq!(got, vec![(node, Detection::OutputMismatch)], "-0.0 for +0.0 is a different output");
    assert!(r.detected[0].2 <= 2, "caught in the first iteration");
}

#[test]
fn a_sign_flipping_enclave_counts_as_compromised() {
    let (market, net) = setup();
    let byz: BTreeMap<usize, Fault> = [(1, Fault::SignFlippedZero)].into();
    match TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 1), [1; 32]) {
        Err(TearDoError::CollusionBound { kappa: 1, compromised: 1 }) => {}
        Err(e) => panic!("another error: {e}"),
        Ok(_) => panic!("κ = 1 accepted beside a compromised enclave"),
    }
}

/// A node whose only subproblem in its round is `sp`, and `sp`'s other
/// executor (κ = 2): the pair for an attack on `sp` alone.
fn lone_pair(t: &TearDo, buyers: usize, subproblems: usize) -> Option<(usize, usize, usize)> {
    let round_of = |sp: usize| if sp < buyers { 0..buyers } else { buyers..subproblems };
    (0..subproblems).find_map(|sp| {
        let pair = t.assigned(sp);
        [(pair[0], pair[1]), (pair[1], pair[0])].into_iter().find_map(|(node, co)| {
            let mine: Vec<usize> = round_of(sp).filter(|s| t.assigned(*s).contains(&node)).collect();
            (mine == [sp]).then_some((sp, node, co))
        })
    })
}

/// A compromised enclave that lists its wrong output twice, beside a
/// silent co-executor (κ = 2), is one voice, not two: the message is
/// refused (`DuplicateOutput`), the honest enclaves recompute, the clearing
/// is the attack-free one bit for bit and no honest enclave is flagged.
/// (Counted as two executors, its output was accepted alone.)
#[test]
fn a_repeated_output_is_one_voice_and_is_flagged() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let clean =
        TearDo::new_insecure_seeded(&market, &net, config(BTreeMap::new(), Strategy::Always, 2), [1; 32]).unwrap();
    let (sp, node, co) =
        lone_pair(&clean, 4, 4 + 4 + 1).expect("precondition: a node alone with one subproblem in its round");
    for strategy in [Strategy::Always, Strategy::Optimal] {
        let byz: BTreeMap<usize, Fault> = [(node, Fault::DuplicateOutput), (co, Fault::Silent)].into();
        let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz.clone(), strategy, 2), [1; 32]).unwrap();
        let r = t.run(&market);
        let what = format!("subproblem {sp}, {strategy:?}: {:?}", r.detected);
        assert!(r.converged, "{what}");
        assert!(same_bits(&t.pd.settled(), &want), "{what}: the repeated wrong output entered the clearing");
        assert!(r.detected.iter().all(|(n, _, _)| byz.contains_key(n)), "{what}: an honest enclave flagged");
        assert!(r.detected.iter().any(|(n, d, _)| *n == node && *d == Detection::DuplicateOutput), "{what}");
    }
}

/// A compromised enclave whose validly signed message leaves out one of its
/// assigned outputs is flagged (`MissingOutput`); the co-executors' outputs
/// carry the subproblem, the clearing is unchanged, nobody else is flagged.
#[test]
fn a_message_that_omits_an_output_is_flagged() {
    let (market, net) = setup();
    let (want, _) = reference(&market, &net);
    let clean =
        TearDo::new_insecure_seeded(&market, &net, config(BTreeMap::new(), Strategy::Always, 2), [1; 32]).unwrap();
    let node = clean.assigned(0)[0];
    let byz: BTreeMap<usize, Fault> = [(node, Fault::OmitOutput)].into();
    let mut t = TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 2), [1; 32]).unwrap();
    let r = t.run(&market);
    assert!(r.converged);
    assert!(same_bits(&t.pd.settled(), &want));
    let got: Vec<(usize, Detection)> = r.detected.iter().map(|(n, d, _)| (*n, *d)).collect();
    assert_eq!(got, vec![(node, Detection::MissingOutput)]);
    assert_eq!(r.detected[0].2, 1, "caught in the first round");
}

#[test]
fn repeating_and_omitting_enclaves_count_as_compromised() {
    let (market, net) = setup();
    for f in [Fault::DuplicateOutput, Fault::OmitOutput] {
        let byz: BTreeMap<usize, Fault> = [(1, f)].into();
        assert!(
            matches!(
                TearDo::new_insecure_seeded(&market, &net, config(byz, Strategy::Always, 1), [1; 32]),
                Err(TearDoError::CollusionBound { kappa: 1, compromised: 1 })
            ),
            "{f:?}"
        );
    }
}
