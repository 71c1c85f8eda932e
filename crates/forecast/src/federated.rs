//! Federated training of the forecaster through CTP-FL (thesis §7.5.7), on
//! `B` chains at once: each round every client trains its copy of the
//! global TCN on its own household for `local_epochs` epochs; its parameters are split
//! into `B` fragments and fragment `b` goes through chain `b`'s real round
//! — encrypted, coded into cells and committed (C2B), filtered by the dual
//! consensus of `K` nodes, aggregated by the leader (trimmed mean, Eqs
//! 7.19–7.20), disseminated by double coding (B2C/C2C) — in the seeded
//! simulator, with Byzantine clients and nodes. The chains are independent
//! (§7.5.6), so each runs in its own simulation; the global model is the
//! concatenation of what an honest client decoded from each.
//!
//! Decisions where the seed is silent (each also in the item's docs):
//! - Byzantine clients are the last `⌊ε·C⌋` (client 0 stays honest), in the
//!   rotation poisoned ×(−20), bad cells, silent; each chain's Byzantine
//!   nodes are the first `min(⌊ε·K⌋, f)` — so the view-0 leader is one and
//!   is replaced every round — in the rotation of [`NodeAttack::nth`].
//! - Validation is the month after the training window, each client scaled
//!   by its own training min–max; MAE and RMSE are on that `[0, 1]` scale,
//!   averaged over the honest clients. The training loss is the honest
//!   clients' mean training MSE of the round's last local epoch.
//! - Hour-of-day inputs ([`FederatedConfig::hour_features`]) are an option
//!   beyond the seed's load-only TCN; the demo uses them.
//! - The KZG setup is [`Kzg::insecure_from_seed`] (a simulation, not a
//!   deployment); the enclaves are software attesters.

use crate::profiles::household_wh;
use crate::series::{input, Scaler, Windows, HOUR_CHANNELS};
use crate::tcn::{Tcn, TcnConfig, EVAL_CHUNK};
use crate::ForecastError;
use gridledger_core::enclave::{Attester, SoftwareAttester};
use gridledger_core::Hash32;
use gridledger_fl::byzantine::NodeAttack;
use gridledger_fl::cells::{CellCode, CellProver};
use gridledger_fl::coding::FragmentCoder;
use gridledger_fl::consensus::{ChainConfig, ChainNode, ChainParams, Timing};
use gridledger_fl::dissemination::GlobalCoder;
use gridledger_fl::field::BYTES_PER_ELEMENT;
use gridledger_fl::kzg::Kzg;
use gridledger_fl::round::{
    sim_client_secrets, sim_client_signing_key, sim_node_key, ClientBehaviour, FlClient, Participant, RoundOutput,
};
use gridledger_sim::{NetConfig, Simulation};
use std::sync::Arc;
use std::time::Instant;

const TIMING: Timing = Timing { pre_vector: 40, tally: 80, aggregate: 120, view: 120 };
/// Simulated ticks a chain's round may take before it counts as failed.
const ROUND_TICKS: u64 = 20_000;

/// Everything a federated training run is set up with.
#[derive(Clone, Debug, PartialEq)]
pub struct FederatedConfig {
    pub clients: usize,
    /// `B`: chains, one model fragment each.
    pub chains: usize,
    /// `K`: nodes per chain.
    pub nodes: usize,
    /// `ε`: fraction of Byzantine clients and of each chain's nodes (nodes
    /// capped at `f`).
    pub byzantine: f64,
    /// Aggregate with the trimmed mean (`β = ⌊(C−1)/3⌋`); `false` is the
    /// plain mean, the undefended baseline of Fig 7-10.
    pub trimmed: bool,
    pub tcn: TcnConfig,
    /// Input window in hours.
    pub window: usize,
    pub batch: usize,
    /// Local epochs each client trains per round before it uploads (the
    /// seed's `Δ^LT`; FedAvg's `E`). One epoch of two weeks is ~20 SGD
    /// steps; a few rounds of that leave the network at the mean load.
    pub local_epochs: usize,
    /// Give the network each step's hour of day (sine and cosine) beside
    /// the load, so a forecast rolled out hour by hour keeps the daily
    /// shape; overrides `tcn.inputs` (3 with, 1 without).
    pub hour_features: bool,
    /// First day of the training window (0 = 1 January).
    pub start_day: u32,
    pub train_days: u32,
    pub validation_days: u32,
    pub seed: u64,
}

impl FederatedConfig {
    /// Bytes the set-up of every chain's coders holds once
    /// [`Federation::new`] has built them, computed without building
    /// anything: per chain a KZG setup of twice the next power of two of
    /// the fragment's field elements and the FK20 prover's fixed-base
    /// tables ([`CellProver::table_bytes_for`]), times the chains (each
    /// chain has its own). What a caller budgets before a set-up.
    pub fn setup_bytes(&self) -> u64 {
        let chains = self.chains.max(1) as u64;
        let per = self.tcn().param_count().div_ceil(chains);
        let f = self.nodes.saturating_sub(1) / 3;
        let max_ct = per.saturating_mul(4).saturating_add(16);
        let k = max_ct.div_ceil(BYTES_PER_ELEMENT as u64);
        let Ok(k) = usize::try_from(k) else {
            return u64::MAX;
        };
        let Some(size) = k.checked_next_power_of_two().and_then(|p| p.checked_mul(2)) else {
            return u64::MAX;
        };
        let Ok(l) = CellCode::cell_size_for(k, self.nodes.saturating_sub(2 * f).max(1)) else {
            return u64::MAX;
        };
        Kzg::bytes_for(size).saturating_add(CellProver::table_bytes_for(l, k)).saturating_mul(chains)
    }

    /// Bytes of activations one training or evaluation step holds at its
    /// peak, computed without building anything (saturating): the
    /// per-sample activations of the forward pass
    /// ([`TcnConfig::activation_floats_per_sample`], `f32`) times the
    /// larger of twice the training batch (`min(batch, training
    /// windows)`; the backward pass allocates a gradient for each kept
    /// tensor, at most as much again) and the evaluation chunk
    /// (`min(`[`EVAL_CHUNK`]`, validation windows)`, no backward pass).
    /// What a caller budgets beside [`Self::setup_bytes`].
    pub fn step_activation_bytes(&self) -> u64 {
        let train_windows = (self.train_days as u64 * 24).saturating_sub(self.window as u64).max(1);
        let val_windows = (self.validation_days as u64 * 24).max(1);
        let train_batch = (self.batch as u64).min(train_windows);
        let eval_batch = (EVAL_CHUNK as u64).min(val_windows);
        self.tcn()
            .activation_floats_per_sample(self.window)
            .saturating_mul(4)
            .saturating_mul(train_batch.saturating_mul(2).max(eval_batch))
    }

    /// Bytes of the clients' windowed data the federation builds before
    /// its first round, computed without building anything (saturating):
    /// every client's training and validation windows are materialised
    /// in full (`window × inputs` `f32`s each, though consecutive windows
    /// overlap), so `clients × (training + validation windows) × window ×
    /// inputs × 4`. What a caller budgets beside
    /// [`Self::step_activation_bytes`].
    pub fn window_data_bytes(&self) -> u64 {
        let train_windows = (self.train_days as u64 * 24).saturating_sub(self.window as u64).max(1);
        let val_windows = (self.validation_days as u64 * 24).max(1);
        (self.clients as u64)
            .saturating_mul(train_windows.saturating_add(val_windows))
            .saturating_mul(self.window as u64)
            .saturating_mul(self.tcn().inputs as u64)
            .saturating_mul(4)
    }

    /// The seed's topology of `gridledger fl train` with a small network
    /// and two training weeks: seconds per round in a debug build.
    pub fn quick() -> Self {
        Self {
            clients: 6,
            chains: 2,
            nodes: 4,
            byzantine: 0.0,
            trimmed: true,
            tcn: TcnConfig { hidden: 8, levels: 3, learning_rate: 0.05, ..TcnConfig::default() },
            window: 24,
            batch: 16,
            local_epochs: 1,
            hour_features: false,
            start_day: 0,
            train_days: 14,
            validation_days: 30,
            seed: 21,
        }
    }

    /// `gridledger demo`'s forecasting run: [`Self::quick`] under 30 %
    /// Byzantine clients and nodes, with hour-of-day inputs, three local
    /// epochs a round and a larger step (0.2), so that three rounds give a
    /// next-day forecast with the household's daily shape. With the quick
    /// preset's single epoch on the load alone, three rounds leave the
    /// network at the mean load and the forecast flat.
    pub fn demo() -> Self {
        let quick = Self::quick();
        Self {
            byzantine: 0.3,
            local_epochs: 3,
            hour_features: true,
            tcn: TcnConfig { learning_rate: 0.2, ..quick.tcn },
            ..quick
        }
    }

    fn check(&self) -> Result<(), ForecastError> {
        let bad = |why: &str| Err(ForecastError::Config(why.to_string()));
        if self.clients < 4 {
            return bad("at least 4 clients");
        }
        if self.nodes < 4 {
            return bad("at least 4 nodes per chain (K ≥ 3f + 1 with f ≥ 1)");
        }
        if self.chains == 0 {
            return bad("at least one chain");
        }
        if !(0.0..=0.34).contains(&self.byzantine) {
            return bad("the Byzantine fraction must be in [0, 0.34]");
        }
        if self.train_days == 0
            || self.validation_days == 0
            || self.window == 0
            || self.batch == 0
            || self.local_epochs == 0
        {
            return bad("training and validation days, window, batch and local epochs must be positive");
        }
        if (self.train_days as usize) * 24 <= self.window {
            return bad("the training window must be longer than the input window");
        }
        Ok(())
    }

    /// The network's settings: `tcn` with the inputs `hour_features` needs.
    pub fn tcn(&self) -> TcnConfig {
        TcnConfig { inputs: if self.hour_features { HOUR_CHANNELS } else { 1 }, ..self.tcn }
    }

    /// How client `c` behaves.
    pub fn client_behaviour(&self, c: usize) -> ClientBehaviour {
        let n = self.byzantine_clients();
        if c + n < self.clients {
            return ClientBehaviour::Honest;
        }
        match (c + n - self.clients) % 3 {
            0 => ClientBehaviour::Poison(-20.0),
            1 => ClientBehaviour::BadCells,
            _ => ClientBehaviour::Silent,
        }
    }

    pub fn byzantine_clients(&self) -> usize {
        ((self.byzantine * self.clients as f64).floor() as usize).min((self.clients - 1) / 3)
    }

    pub fn byzantine_nodes(&self) -> usize {
        ((self.byzantine * self.nodes as f64).floor() as usize).min((self.nodes - 1) / 3)
    }
}

/// One round's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundReport {
    pub round: u32,
    /// Honest clients' mean training MSE of their last local epoch.
    pub train_loss: f32,
    pub val_mae: f32,
    pub val_rmse: f32,
    /// Mean local training time per client (clients train in parallel on a
    /// deployment: `Δ^LT`), seconds.
    pub train_s: f64,
    /// The CTP-FL rounds of all chains (coding, consensus, dissemination,
    /// decoding; simulated network, real computation), seconds.
    pub protocol_s: f64,
    /// Validation of the global model, seconds.
    pub eval_s: f64,
    /// Clients the leaders aggregated, per chain.
    pub aggregated: Vec<usize>,
    /// The view that committed, per chain (0 unless the leader was replaced).
    pub views: Vec<u32>,
    /// Typed fault records written in all chains (refused cells, bad
    /// proposals, altered mini-fragments …).
    pub faults: usize,
}

/// A day-ahead forecast beside what happened, in Wh.
#[derive(Clone, Debug, PartialEq)]
pub struct DayForecast {
    pub client: usize,
    pub forecast_wh: Vec<u64>,
    pub actual_wh: Vec<u64>,
}

struct ClientData {
    scaler: Scaler,
    series: Vec<f32>,
    train: Windows,
    validation: Windows,
    raw: Vec<u64>,
}

/// A federated training run in progress.
pub struct Federation {
    cfg: FederatedConfig,
    data: Vec<ClientData>,
    worker: Tcn,
    global: Vec<f32>,
    /// `(start, len)` of each chain's fragment in the parameter vector
    /// ([`split_fragments`]).
    fragments: Vec<(usize, usize)>,
    coders: Vec<(Arc<FragmentCoder>, Arc<GlobalCoder>)>,
    round: u32,
    /// This run's task id, a hash of its whole configuration (the seed
    /// included) in [`Federation::new`]: two federations that differ in
    /// anything are two tasks, so nothing signed, attested or committed in
    /// one is accepted in the other ([`ChainConfig::instance`] binds it).
    /// Two runs of one configuration are the same seeded simulation run
    /// again (same keys, same models), so a run stays reproducible from its
    /// `--seed`; a deployment takes its task id from the chain instead.
    task: Hash32,
    /// This run's id ([`ChainParams::run`]), drawn from the operating
    /// system's generator in [`Federation::new`]: two runs of one
    /// configuration (and seed) are two chain instances, so nothing a
    /// client signed or an enclave attested in an earlier run (a record,
    /// a pre-vector, an aggregate) counts in this one. The models and the
    /// reported numbers do not depend on it (nor on the instance): the
    /// same `--seed` gives the same numbers in every run. A deployment
    /// takes it from the block that anchors the run on its chain.
    run: Hash32,
    /// Each chain's previous block `BH_{e−1,b}`: before round 1 a hash of
    /// the task and the chain; then a hash of the previous block, the
    /// round, the view it committed and the global fragment that view's
    /// root carries, so every round follows its own history. It leaves the
    /// run id out, and so the root too (its Merkle leaves bind the
    /// instance): the committee of Eq 7.17 is drawn from it, and a run's
    /// numbers must not depend on its id; the run id is in every round's
    /// instance beside it.
    prev_blocks: Vec<Hash32>,
}

/// Domain tag of a chain's genesis block in a federation.
const FL_GENESIS: gridledger_core::codec::Tag = gridledger_core::codec::Tag("gridledger/fl-federation-genesis/v1");
/// Domain tag of a chain's block after a committed round.
const FL_BLOCK: gridledger_core::codec::Tag = gridledger_core::codec::Tag("gridledger/fl-federation-block/v1");

/// Node `k`'s simulated enclave. Its seed is `k + 1` as 8 little-endian
/// bytes (then zeros): distinct for every node index, no `u8` overflow
/// for chains of 256 or more nodes.
fn enclave(k: usize) -> SoftwareAttester {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(k as u64).wrapping_add(1).to_le_bytes());
    SoftwareAttester::new(k, b"ctp-fl enclave v1", seed)
}

/// `(start, len)` of each of `chains` fragments of a `params`-long
/// parameter vector, in order (decision): the first `params mod chains`
/// fragments hold `⌈params/chains⌉` parameters and the rest
/// `⌊params/chains⌋`, so no fragment is empty while `chains ≤ params`
/// and no two differ by more than one (the largest is what
/// [`FederatedConfig::setup_bytes`] prices per chain). With more chains
/// than parameters the last fragments are empty (refused by
/// [`Federation::new`]).
pub fn split_fragments(params: usize, chains: usize) -> Vec<(usize, usize)> {
    let chains = chains.max(1);
    let (floor, extra) = (params / chains, params % chains);
    let mut start = 0;
    (0..chains)
        .map(|b| {
            let len = floor + usize::from(b < extra);
            let at = start;
            start += len;
            (at, len)
        })
        .collect()
}

fn fl(e: gridledger_fl::FlError) -> ForecastError {
    ForecastError::Protocol(e.to_string())
}

impl Federation {
    /// Draws every client's household, splits the model and sets up each
    /// chain's coders.
    pub fn new(cfg: FederatedConfig) -> Result<Self, ForecastError> {
        cfg.check()?;
        let train_h = cfg.train_days as usize * 24;
        let hours = train_h + cfg.validation_days as usize * 24;
        let mut data = Vec::with_capacity(cfg.clients);
        for c in 0..cfg.clients {
            let raw = household_wh(cfg.seed, c as u32, cfg.start_day, hours)?;
            let scaler = Scaler::fit(&raw[..train_h])?;
            let series: Vec<f32> = raw.iter().map(|&x| scaler.scale(x)).collect();
            // Day 0 of the series starts at midnight (whole days).
            let (train, validation) = if cfg.hour_features {
                (
                    Windows::with_hours(&series[..train_h], cfg.window, 0)?,
                    Windows::with_hours(&series[train_h - cfg.window..], cfg.window, train_h - cfg.window)?,
                )
            } else {
                (
                    Windows::new(&series[..train_h], cfg.window)?,
                    Windows::new(&series[train_h - cfg.window..], cfg.window)?,
                )
            };
            data.push(ClientData { scaler, series, train, validation, raw });
        }
        let worker = Tcn::new(cfg.tcn(), cfg.seed)?;
        let global = worker.params()?;
        let fragments = split_fragments(global.len(), cfg.chains);
        if fragments.iter().any(|&(_, l)| l == 0) {
            return Err(ForecastError::Config("more chains than model parameters".into()));
        }
        let f = (cfg.nodes - 1) / 3;
        let mut coders = Vec::with_capacity(cfg.chains);
        for (b, &(_, len)) in fragments.iter().enumerate() {
            // As `FederatedConfig::setup_bytes` budgets it.
            let max_ct = len * 4 + 16;
            let k = max_ct.div_ceil(BYTES_PER_ELEMENT);
            let kzg = Kzg::insecure_from_seed(k.next_power_of_two() * 2, cfg.seed ^ b as u64);
            let coder = FragmentCoder::new(kzg, max_ct, cfg.nodes, cfg.nodes - 2 * f).map_err(fl)?;
            // The first code decodes from `f + 1` subfragments: a commit
            // certificate guarantees only `f + 1` honest holders
            // (`GlobalCoder::for_chain`).
            let global = GlobalCoder::for_chain(len * 4, cfg.nodes, cfg.clients).map_err(fl)?;
            coders.push((Arc::new(coder), Arc::new(global)));
        }
        let task = gridledger_core::codec::hash_bytes(FL_GENESIS, format!("task {:?}", cfg).as_bytes());
        let prev_blocks = (0..cfg.chains)
            .map(|b| {
                let mut v = task.0.to_vec();
                v.extend_from_slice(&(b as u64).to_le_bytes());
                gridledger_core::codec::hash_bytes(FL_GENESIS, &v)
            })
            .collect();
        let run = gridledger_fl::consensus::fresh_run_id();
        Ok(Self { cfg, data, worker, global, fragments, coders, round: 0, task, run, prev_blocks })
    }

    /// This run's id ([`ChainParams::run`]): fresh for every
    /// [`Federation::new`].
    pub fn run_id(&self) -> Hash32 {
        self.run
    }

    pub fn config(&self) -> &FederatedConfig {
        &self.cfg
    }

    pub fn param_count(&self) -> usize {
        self.global.len()
    }

    /// Rounds done so far.
    pub fn rounds_done(&self) -> u32 {
        self.round
    }

    fn honest(&self) -> Vec<usize> {
        (0..self.cfg.clients).filter(|&c| self.cfg.client_behaviour(c) == ClientBehaviour::Honest).collect()
    }

    /// The global model's validation MAE and RMSE (normalised), averaged
    /// over the honest clients.
    pub fn validate(&mut self) -> Result<(f32, f32), ForecastError> {
        self.worker.set_params(&self.global)?;
        let honest = self.honest();
        let (mut mae, mut rmse) = (0.0, 0.0);
        for &c in &honest {
            let e = self.worker.evaluate(&self.data[c].validation)?;
            mae += e.mae;
            rmse += e.rmse;
        }
        Ok((mae / honest.len() as f32, rmse / honest.len() as f32))
    }

    /// One federated round over every chain.
    pub fn round(&mut self) -> Result<RoundReport, ForecastError> {
        self.round += 1;
        let round = self.round;
        let t = Instant::now();
        let honest = self.honest();
        let mut models = Vec::with_capacity(self.cfg.clients);
        let mut train_loss = 0.0;
        for c in 0..self.cfg.clients {
            self.worker.set_params(&self.global)?;
            let mut loss = 0.0;
            for _ in 0..self.cfg.local_epochs {
                loss = self.worker.train_epoch(&self.data[c].train, self.cfg.batch)?;
            }
            if honest.contains(&c) {
                train_loss += loss;
            }
            models.push(self.worker.params()?);
        }
        let train_s = t.elapsed().as_secs_f64() / self.cfg.clients as f64;
        let t = Instant::now();
        let mut next = Vec::with_capacity(self.global.len());
        let (mut aggregated, mut views, mut faults) = (Vec::new(), Vec::new(), 0);
        for b in 0..self.cfg.chains {
            let (start, len) = self.fragments[b];
            let frags: Vec<Vec<f32>> = models.iter().map(|m| m[start..start + len].to_vec()).collect();
            let out = self.chain_round(b, round, frags)?;
            let mut v = self.prev_blocks[b].0.to_vec();
            v.extend_from_slice(&round.to_le_bytes());
            v.extend_from_slice(&out.view.to_le_bytes());
            for x in &out.global {
                v.extend_from_slice(&x.to_le_bytes());
            }
            self.prev_blocks[b] = gridledger_core::codec::hash_bytes(FL_BLOCK, &v);
            next.extend_from_slice(&out.global);
            aggregated.push(out.aggregated);
            views.push(out.view);
            faults += out.faults;
        }
        let protocol_s = t.elapsed().as_secs_f64();
        if next.len() != self.global.len() {
            return Err(ForecastError::WrongLength { expected: self.global.len(), got: next.len() });
        }
        self.global = next;
        let t = Instant::now();
        let (val_mae, val_rmse) = self.validate()?;
        Ok(RoundReport {
            round,
            train_loss: train_loss / honest.len() as f32,
            val_mae,
            val_rmse,
            train_s,
            protocol_s,
            eval_s: t.elapsed().as_secs_f64(),
            aggregated,
            views,
            faults,
        })
    }

    /// The seed of the simulated clients' signing keys. Decision: in this
    /// simulation every client's secrets (fragment key from the enclaves'
    /// secret, signing key from this seed) are derived from `--seed`, so a
    /// run is reproducible; each client is handed only its own
    /// ([`sim_client_secrets`]). A real deployment generates the enclaves'
    /// secret inside the enclaves and each client's signing key pair on
    /// the client, registering only its public half.
    fn client_signing_seed(&self) -> [u8; 32] {
        let mut s = [0xc1u8; 32];
        s[..8].copy_from_slice(&self.cfg.seed.to_le_bytes());
        s
    }

    /// What chain `b`'s nodes agree on for `round`, and the enclaves'
    /// shared secret (derived from the seed: simulation only).
    fn chain_config(&self, b: usize, round: u32) -> (Arc<ChainConfig>, [u8; 32]) {
        let cfg = &self.cfg;
        let (coder, global) = &self.coders[b];
        let (nodes, clients) = (cfg.nodes, cfg.clients);
        let mut rv = [0u8; 32];
        rv[..4].copy_from_slice(&round.to_le_bytes());
        rv[4..8].copy_from_slice(&(b as u32).to_le_bytes());
        let shared_secret = {
            let mut s = [0x5au8; 32];
            s[..8].copy_from_slice(&cfg.seed.to_le_bytes());
            s
        };
        let chain = Arc::new(ChainConfig::new(ChainParams {
            task: self.task,
            run: self.run,
            chain: b as u32,
            round,
            nodes,
            clients,
            dims: self.fragments[b].1,
            beta: if cfg.trimmed { (clients - 1) / 3 } else { 0 },
            measurement: enclave(0).measurement(),
            node_keys: (0..nodes).map(|k| enclave(k).attestation_key()).collect(),
            pbft_keys: (0..nodes).map(|k| sim_node_key(k).public()).collect(),
            client_keys: {
                let seed = self.client_signing_seed();
                (0..clients as u32).map(|c| sim_client_signing_key(&seed, c).public()).collect()
            },
            random_value: rv,
            prev_block: self.prev_blocks[b],
            coder: coder.clone(),
            global: global.clone(),
        }));
        (chain, shared_secret)
    }

    fn chain_round(&self, b: usize, round: u32, models: Vec<Vec<f32>>) -> Result<ChainOutcome, ForecastError> {
        let cfg = &self.cfg;
        let (nodes, clients) = (cfg.nodes, cfg.clients);
        let (chain, shared_secret) = self.chain_config(b, round);
        let signing_seed = self.client_signing_seed();
        let behaviours: Vec<ClientBehaviour> = (0..clients).map(|c| cfg.client_behaviour(c)).collect();
        let honest: Vec<u32> =
            (0..clients).filter(|&c| behaviours[c] == ClientBehaviour::Honest).map(|c| (nodes + c) as u32).collect();
        let sim_seed = cfg.seed ^ ((round as u64) << 32) ^ b as u64;
        let mut sim = Simulation::new(sim_seed, NetConfig::reliable(nodes + clients, 6), move |id, _| {
            let id = id as usize;
            if id < nodes {
                Participant::Node(Box::new(ChainNode::new(
                    chain.clone(),
                    id,
                    enclave(id),
                    shared_secret,
                    sim_node_key(id),
                    TIMING,
                )))
            } else {
                let c = id - nodes;
                Participant::Client(Box::new(FlClient::new(
                    chain.clone(),
                    c,
                    sim_client_secrets(&shared_secret, &signing_seed, c as u32),
                    models[c].clone(),
                    behaviours[c],
                )))
            }
        });
        sim.set_restart_after(None);
        for k in 0..cfg.byzantine_nodes() {
            sim.set_adversary(k as u32, Box::new(NodeAttack::nth(k)));
        }
        sim.start();
        let decoded = |s: &Simulation<Participant<SoftwareAttester>>, id: u32| {
            s.outputs.iter().find_map(|(_, n, o)| match o {
                RoundOutput::Global(g) if *n == id => Some(g.clone()),
                _ => None,
            })
        };
        sim.run_until(ROUND_TICKS, |s| honest.iter().all(|&id| decoded(s, id).is_some()));
        let Some(first) = honest.first().and_then(|&id| decoded(&sim, id)) else {
            return Err(ForecastError::Protocol(format!("chain {b} round {round}: no honest client decoded")));
        };
        for &id in &honest {
            match decoded(&sim, id) {
                Some(g) if g == first => {}
                Some(_) => {
                    return Err(ForecastError::Protocol(format!(
                        "chain {b} round {round}: client {} decoded another global fragment",
                        id as usize - nodes
                    )))
                }
                None => {
                    return Err(ForecastError::Protocol(format!(
                        "chain {b} round {round}: client {} decoded nothing by tick {}; faults {:?}",
                        id as usize - nodes,
                        sim.now(),
                        sim.faults
                    )))
                }
            }
        }
        let mut view = 0;
        let mut aggregated = 0;
        for (_, _, o) in &sim.outputs {
            match o {
                RoundOutput::Node(gridledger_fl::consensus::Output::Committed { view: v, .. }) => view = *v,
                RoundOutput::Node(gridledger_fl::consensus::Output::Aggregated { clients, .. }) => {
                    aggregated = clients.len()
                }
                _ => {}
            }
        }
        Ok(ChainOutcome { global: first, aggregated, view, faults: sim.faults.len() })
    }

    /// Client `c`'s typical day: the mean load of each hour over the
    /// training window, in Wh — the daily shape a forecast should follow.
    pub fn typical_day_wh(&self, c: usize) -> Result<Vec<u64>, ForecastError> {
        let d = self.data.get(c).ok_or(ForecastError::Config(format!("no client {c}")))?;
        let days = self.cfg.train_days as u64;
        Ok((0..24).map(|h| (0..days as usize).map(|i| d.raw[i * 24 + h]).sum::<u64>() / days).collect())
    }

    /// Day-ahead forecast for client `c` of the first held-out day: hour by
    /// hour, each prediction fed back as the next input (no actual value of
    /// that day is seen), beside the actual load.
    pub fn forecast_next_day(&mut self, c: usize) -> Result<DayForecast, ForecastError> {
        let d = self.data.get(c).ok_or(ForecastError::Config(format!("no client {c}")))?;
        let train_h = self.cfg.train_days as usize * 24;
        let first = train_h - self.cfg.window;
        let mut history = d.series[first..train_h].to_vec();
        let (scaler, actual_wh) = (d.scaler, d.raw[train_h..train_h + 24].to_vec());
        let channels = self.cfg.tcn().inputs;
        self.worker.set_params(&self.global)?;
        let mut forecast_wh = Vec::with_capacity(24);
        for h in 0..24 {
            let y = self.worker.predict_next_from(&input(&history, first + h, channels))?;
            if !y.is_finite() {
                return Err(ForecastError::NonFinite);
            }
            forecast_wh.push(scaler.unscale(y));
            history.remove(0);
            history.push(y.clamp(0.0, 1.0));
        }
        Ok(DayForecast { client: c, forecast_wh, actual_wh })
    }
}

struct ChainOutcome {
    global: Vec<f32>,
    aggregated: usize,
    view: u32,
    faults: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The clients' request schedule ([`gridledger_fl::round::resync_delay`])
    /// outlasts a chain's round budget, and its longest gap is a small part
    /// of it: a client cut off from the nodes until a GST anywhere in the
    /// first three quarters of the round still gets a request out after
    /// GST within the round.
    #[test]
    fn client_requests_outlast_the_round_budget() {
        use gridledger_fl::consensus::MAX_RESYNCS;
        use gridledger_fl::round::{resync_delay, resync_span, RESYNC_PERIOD};
        let span = resync_span(RESYNC_PERIOD);
        assert!(span >= ROUND_TICKS, "last request at tick {span} of a {ROUND_TICKS}-tick round");
        let gap = (1..MAX_RESYNCS).map(|n| resync_delay(RESYNC_PERIOD, n)).max().unwrap_or(0);
        assert!(gap <= ROUND_TICKS / 4, "{gap} ticks between two requests");
    }

    /// `setup_bytes` (what `fl train` budgets before a set-up) is what the
    /// federation's coders hold once built: exactly for one chain, an upper
    /// bound for several (later fragments may be one parameter shorter).
    #[test]
    fn setup_estimate_matches_the_built_coders() {
        for chains in [1, 3] {
            let cfg = FederatedConfig { chains, ..FederatedConfig::quick() };
            let fed = Federation::new(cfg.clone()).unwrap();
            let built: u64 = fed.coders.iter().map(|(c, _)| c.setup_bytes()).sum();
            let estimate = cfg.setup_bytes();
            assert!(built > 0 && built <= estimate, "chains {chains}: built {built}, estimate {estimate}");
            if chains == 1 {
                assert_eq!(built, estimate);
            }
        }
    }

    /// The step's activations grow with the padding (`2^levels`) and the
    /// batch: round 6's `--hidden 16 --levels 16 --batch 4096` over 330
    /// days needs well over 30 GB a step (it aborted at 4 GiB), the
    /// seed's network at the defaults a few hundred MB; one level more
    /// roughly doubles a deep network's padding term.
    #[test]
    fn step_activations_count_the_padding_and_the_batch() {
        let seed = FederatedConfig {
            tcn: TcnConfig::default(),
            batch: 16,
            window: 24,
            train_days: 90,
            validation_days: 30,
            ..FederatedConfig::quick()
        };
        let bytes = seed.step_activation_bytes();
        assert!((50_000_000..500_000_000).contains(&bytes), "{bytes}");
        let deep = FederatedConfig {
            tcn: TcnConfig { hidden: 16, levels: 16, ..TcnConfig::default() },
            batch: 4096,
            train_days: 330,
            validation_days: 1,
            ..seed
        };
        assert!(deep.step_activation_bytes() > 30_000_000_000, "{}", deep.step_activation_bytes());
        // Padding of block i: (k − 1)·2^i per channel; hidden 1, inputs 1,
        // kernel 3, window 4, one level: (1 + 1)·(4 + 2) + 11·4 = 56.
        let one = TcnConfig { inputs: 1, hidden: 1, levels: 1, kernel: 3, ..TcnConfig::default() };
        assert_eq!(one.activation_floats_per_sample(4), 56);
        // Two levels: + (1 + 1)·(4 + 4) + 44 = 60 more.
        assert_eq!(TcnConfig { levels: 2, ..one }.activation_floats_per_sample(4), 116);
        // A batch past the training windows is the windows.
        let few = FederatedConfig { batch: 4096, train_days: 2, validation_days: 1, ..seed };
        let per = few.tcn().activation_floats_per_sample(24) * 4;
        assert_eq!(few.step_activation_bytes(), per * 48);
        assert_eq!(TcnConfig { levels: 64, ..one }.activation_floats_per_sample(4), u64::MAX);
    }

    /// The split: `P mod B` fragments of `⌈P/B⌉` first, then `⌊P/B⌋`,
    /// contiguous and covering the vector; none empty while `B ≤ P`.
    #[test]
    fn fragments_split_evenly_and_none_is_empty_up_to_one_chain_a_parameter() {
        assert_eq!(split_fragments(10, 6), vec![(0, 2), (2, 2), (4, 2), (6, 2), (8, 1), (9, 1)]);
        assert_eq!(split_fragments(10, 4), vec![(0, 3), (3, 3), (6, 2), (8, 2)]);
        assert_eq!(split_fragments(12, 4), vec![(0, 3), (3, 3), (6, 3), (9, 3)]);
        assert_eq!(split_fragments(3, 5), vec![(0, 1), (1, 1), (2, 1), (3, 0), (3, 0)]);
        for p in 1..40 {
            for b in 1..=p {
                let f = split_fragments(p, b);
                assert_eq!(f.len(), b);
                assert!(f.iter().all(|&(_, l)| l == p / b || l == p.div_ceil(b)), "{p}/{b}: {f:?}");
                assert_eq!(f.iter().filter(|&&(_, l)| l == p.div_ceil(b)).count(), if p % b == 0 { b } else { p % b });
                let mut next = 0;
                for &(s, l) in &f {
                    assert_eq!(s, next);
                    next += l;
                }
                assert_eq!(next, p);
            }
        }
    }

    /// Two runs of one configuration and seed: each has its own run id,
    /// so their chain instances differ in every round (an earlier run's
    /// records and attestations are another instance's), yet the numbers
    /// are the same (they do not depend on the instance), and so is the
    /// chain history the committee is drawn from.
    #[test]
    fn two_runs_of_one_configuration_share_no_instance_but_the_same_numbers() {
        let cfg = FederatedConfig {
            clients: 4,
            chains: 2,
            nodes: 4,
            tcn: TcnConfig { hidden: 2, levels: 1, ..FederatedConfig::quick().tcn },
            train_days: 2,
            validation_days: 1,
            ..FederatedConfig::quick()
        };
        let mut a = Federation::new(cfg.clone()).unwrap();
        let mut b = Federation::new(cfg).unwrap();
        assert_ne!(a.run_id(), b.run_id());
        for round in 1..=2 {
            for chain in 0..2 {
                let (ca, cb) = (a.chain_config(chain, round).0, b.chain_config(chain, round).0);
                assert_ne!(ca.instance(), cb.instance(), "round {round}, chain {chain}: one instance");
                assert_eq!(ca.committee(), cb.committee());
            }
            let (ra, rb) = (a.round().unwrap(), b.round().unwrap());
            assert_eq!(
                (ra.train_loss, ra.val_mae, ra.val_rmse, &ra.aggregated, &ra.views),
                (rb.train_loss, rb.val_mae, rb.val_rmse, &rb.aggregated, &rb.views),
                "round {round}"
            );
            assert_eq!(a.global, b.global, "round {round}");
            assert_eq!(a.prev_blocks, b.prev_blocks, "round {round}");
        }
    }

    /// The largest node count `gridledger fl train` accepts (256): every
    /// node's enclave key is distinct (the seed derivation once overflowed
    /// a `u8` at node 255), the federation sets up its coders, and all
    /// 256 nodes of a chain build and start for a round (PBFT validator set,
    /// committee, timers). The CLI runs one round at this size in its
    /// `attack_fl` test only under `GRIDLEDGER_FL_HEAVY=1`.
    #[test]
    fn the_largest_accepted_node_count_sets_up_without_panicking() {
        const NODES: usize = 256;
        let keys: BTreeSet<_> = (0..=NODES).map(|k| enclave(k).attestation_key()).collect();
        assert_eq!(keys.len(), NODES + 1);
        let cfg = FederatedConfig {
            clients: 4,
            chains: 1,
            nodes: NODES,
            tcn: TcnConfig { hidden: 1, levels: 1, ..FederatedConfig::quick().tcn },
            train_days: 2,
            validation_days: 1,
            ..FederatedConfig::quick()
        };
        let fed = Federation::new(cfg).unwrap();
        let (chain, secret) = fed.chain_config(0, 0);
        assert_eq!(chain.f(), 85);
        assert_eq!(chain.committee().len(), 86);
        for k in 0..NODES {
            let mut node = ChainNode::new(chain.clone(), k, enclave(k), secret, sim_node_key(k), TIMING);
            let step = node.start();
            assert!(step.faults.is_empty(), "node {k}: {:?}", step.faults);
        }
    }
}
