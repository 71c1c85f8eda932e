//! Federated training of the forecaster through CTP-FL (thesis §7.5.7):
//! each round every client trains its copy of the global TCN on its own
//! household for one epoch, and its parameters go through the real round —
//! encrypted, coded into cells, committed (C2B), filtered by the dual
//! consensus of one chain, aggregated by the leader with the trimmed mean,
//! disseminated by double coding (B2C/C2C) — in the seeded simulator, with
//! 30 % Byzantine clients (bad cells, a ×(−20) poisoned model, silence) and
//! 30 % Byzantine nodes (two withholding everything, one its mini-fragments).
//! The global model's validation error on the clients' held-out week must
//! fall and stay finite.

use gridledger_core::enclave::{Attester, SoftwareAttester};
use gridledger_core::Hash32;
use gridledger_fl::coding::FragmentCoder;
use gridledger_fl::consensus::{ChainConfig, ChainNode, ChainParams, Message, Timing};
use gridledger_fl::dissemination::GlobalCoder;
use gridledger_fl::kzg::Kzg;
use gridledger_fl::round::{
    sim_client_secrets, sim_client_signing_key, sim_node_key, ClientBehaviour, FlClient, Participant, RoundOutput,
};
use gridledger_forecast::profiles::household_wh;
use gridledger_forecast::series::{Scaler, Windows};
use gridledger_forecast::tcn::{Tcn, TcnConfig};
use gridledger_sim::{Adversary, Dest, NetConfig, Simulation, Time};
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

const NODES: usize = 10;
const CLIENTS: usize = 10;
const SK: [u8; 32] = [17; 32];
const SIGN_SEED: [u8; 32] = [29; 32];
const TIMING: Timing = Timing { pre_vector: 40, tally: 80, aggregate: 120, view: 120 };

type P = Participant<SoftwareAttester>;

fn enclave(k: usize) -> SoftwareAttester {
    SoftwareAttester::new(k, b"ctp-fl enclave v1", [k as u8 + 1; 32])
}

fn tcn_config() -> TcnConfig {
    TcnConfig { hidden: 8, levels: 3, kernel: 3, dropout: 0.1, learning_rate: 0.05, ..TcnConfig::default() }
}

struct Withhold;
impl Adversary<P> for Withhold {
    fn tamper(&mut self, _: Time, _: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        Vec::new()
    }
}

/// Takes part in consensus but drops every mini-fragment (withholds B2C).
struct DropMinis;
impl Adversary<P> for DropMinis {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        sends.into_iter().filter(|(_, m)| !matches!(m, Message::Mini { .. })).collect()
    }
}

/// One CTP-FL round over `models`; returns what honest client 0 decoded.
fn ctp_fl_round(round: u32, dims: usize, models: Vec<Vec<f32>>, behaviours: &[ClientBehaviour]) -> Vec<f32> {
    let f = (NODES - 1) / 3;
    let f_cli = (CLIENTS - 1) / 3;
    let max_ct = dims * 4 + 16;
    let k = max_ct.div_ceil(31);
    let coder = FragmentCoder::new(Kzg::insecure_from_seed(k.next_power_of_two() * 2, 5), max_ct, NODES, NODES - 2 * f)
        .expect("coder");
    let global = GlobalCoder::for_chain(dims * 4, NODES, CLIENTS).expect("global coder");
    let cfg = Arc::new(ChainConfig::new(ChainParams {
        task: Hash32([4; 32]),
        run: gridledger_fl::consensus::fresh_run_id(),
        chain: 0,
        round,
        nodes: NODES,
        clients: CLIENTS,
        dims,
        beta: f_cli,
        measurement: enclave(0).measurement(),
        node_keys: (0..NODES).map(|k| enclave(k).attestation_key()).collect(),
        pbft_keys: (0..NODES).map(|k| sim_node_key(k).public()).collect(),
        client_keys: (0..CLIENTS as u32).map(|c| sim_client_signing_key(&SIGN_SEED, c).public()).collect(),
        random_value: [round as u8; 32],
        prev_block: Hash32([9; 32]),
        coder: Arc::new(coder),
        global: Arc::new(global),
    }));
    let behaviours = behaviours.to_vec();
    let mut sim = Simulation::new(round as u64, NetConfig::reliable(NODES + CLIENTS, 6), move |id, _| {
        let id = id as usize;
        if id < NODES {
            Participant::Node(Box::new(ChainNode::new(cfg.clone(), id, enclave(id), SK, sim_node_key(id), TIMING)))
        } else {
            let c = id - NODES;
            Participant::Client(Box::new(FlClient::new(
                cfg.clone(),
                c,
                sim_client_secrets(&SK, &SIGN_SEED, c as u32),
                models[c].clone(),
                behaviours[c],
            )))
        }
    });
    sim.set_restart_after(None);
    sim.set_adversary(2, Box::new(Withhold));
    sim.set_adversary(5, Box::new(DropMinis));
    sim.set_adversary(7, Box::new(Withhold));
    sim.start();
    let me = NODES as u32;
    sim.run_until(5_000, |s| s.outputs.iter().any(|(_, n, o)| *n == me && matches!(o, RoundOutput::Global(_))));
    sim.outputs
        .iter()
        .find_map(|(_, n, o)| match o {
            RoundOutput::Global(g) if *n == me => Some(g.clone()),
            _ => None,
        })
        .expect("honest client 0 decodes the global model")
}

#[test]
fn the_forecaster_trains_through_ctp_fl_under_30_percent_byzantine_clients_and_nodes() {
    let mut behaviours = vec![ClientBehaviour::Honest; CLIENTS];
    behaviours[3] = ClientBehaviour::BadCells;
    behaviours[6] = ClientBehaviour::Poison(-20.0);
    behaviours[9] = ClientBehaviour::Silent;
    // Each client: four weeks to train on, the following week held out.
    let data: Vec<(Windows, Windows)> = (0..CLIENTS as u32)
        .map(|c| {
            let wh = household_wh(21, c, 0, 24 * 35).unwrap();
            let s = Scaler::fit(&wh[..24 * 28]).unwrap();
            let n: Vec<f32> = wh.iter().map(|&x| s.scale(x)).collect();
            (Windows::new(&n[..24 * 28], 24).unwrap(), Windows::new(&n[24 * 28 - 24..], 24).unwrap())
        })
        .collect();
    let mut clients: Vec<Tcn> = (0..CLIENTS).map(|_| Tcn::new(tcn_config(), 1).unwrap()).collect();
    let dims = clients[0].param_count();
    let mut global = clients[0].params().unwrap();
    let honest: Vec<usize> = (0..CLIENTS).filter(|&c| behaviours[c] == ClientBehaviour::Honest).collect();
    let validation = |g: &[f32]| -> f32 {
        let mut m = Tcn::new(tcn_config(), 1).unwrap();
        m.set_params(g).unwrap();
        honest.iter().map(|&c| m.evaluate(&data[c].1).unwrap().mse).sum::<f32>() / honest.len() as f32
    };
    let start = validation(&global);
    let mut curve = vec![start];
    for round in 1..=4u32 {
        let mut models = Vec::with_capacity(CLIENTS);
        for (c, m) in clients.iter_mut().enumerate() {
            m.set_params(&global).unwrap();
            m.train_epoch(&data[c].0, 16).unwrap();
            models.push(m.params().unwrap());
        }
        global = ctp_fl_round(round, dims, models, &behaviours);
        assert_eq!(global.len(), dims);
        let v = validation(&global);
        assert!(v.is_finite(), "round {round}: validation MSE not finite");
        curve.push(v);
    }
    eprintln!("validation MSE per round (round 0 = initial model): {curve:?}");
    let end = *curve.last().unwrap();
    assert!(end < 0.6 * start, "validation MSE per round: {curve:?}");
    // Stable: the last round does not undo the progress.
    assert!(end <= 1.2 * curve[curve.len() - 2], "validation MSE per round: {curve:?}");
}
