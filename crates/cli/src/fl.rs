//! `gridledger fl`: CTP-FL federated load forecasting (thesis Ch.7).
//!
//! `fl train` trains the TCN forecaster through CTP-FL rounds on `B` chains
//! of `K` nodes in the seeded simulator ([`gridledger_forecast::federated`]),
//! printing each round's training loss, validation MAE/RMSE on the held-out
//! month and timings, and writing the loss curve as SVG.

use anyhow::Context;
use clap::{Args, Subcommand};
use gridledger_forecast::federated::{FederatedConfig, Federation, RoundReport};
use gridledger_forecast::tcn::TcnConfig;
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum FlCmd {
    /// Train the forecaster through CTP-FL: per-round training loss,
    /// validation MAE/RMSE (normalised load, held-out month) and timing.
    Train(TrainArgs),
}

#[derive(Args)]
pub struct TrainArgs {
    /// Clients (households), at least 4.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(4..=1000))]
    pub clients: u32,
    /// Chains (B): the model is split into one fragment per chain.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub chains: u32,
    /// Nodes per chain (K), at least 4.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(4..=256))]
    pub nodes: u32,
    /// Federated rounds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub rounds: u32,
    /// Fraction of Byzantine clients and of each chain's nodes (0 to 0.34;
    /// nodes capped at f): poisoned, bad-cell and silent clients; a
    /// withholding view-0 leader, nodes altering or dropping mini-fragments.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub byzantine: f64,
    /// Aggregate with the plain mean instead of the trimmed mean (the
    /// undefended baseline).
    #[arg(long)]
    pub plain_mean: bool,
    /// TCN hidden channels (the seed: 64).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub hidden: u32,
    /// TCN levels of residual dilated blocks (the seed: 8).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub levels: u32,
    /// SGD learning rate (the seed: 0.001).
    #[arg(long, default_value_t = 0.001)]
    pub learning_rate: f64,
    /// Days of hourly load to train on, from 1 January (the seed: January–March).
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(2..=330))]
    pub train_days: u32,
    /// Held-out days after the training window for validation.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=35))]
    pub validation_days: u32,
    /// Input window in hours.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub window: u32,
    /// Mini-batch size.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// Local epochs each client trains per round before uploading.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub local_epochs: u32,
    /// Give the network each hour's time of day (sine and cosine) beside
    /// the load (the seed's TCN sees the load only).
    #[arg(long)]
    pub hour_features: bool,
    /// Seed of the households, the weights and the simulated network.
    #[arg(long, default_value_t = 21)]
    pub seed: u64,
    /// Print one JSON document instead of the table (no progress bar).
    #[arg(long)]
    pub json: bool,
    /// Write the loss curve (training MSE, validation MAE and RMSE per round) as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

pub fn run(c: FlCmd) -> anyhow::Result<()> {
    match c {
        FlCmd::Train(a) => train(a),
    }
}

fn config(a: &TrainArgs) -> FederatedConfig {
    FederatedConfig {
        clients: a.clients as usize,
        chains: a.chains as usize,
        nodes: a.nodes as usize,
        byzantine: a.byzantine,
        trimmed: !a.plain_mean,
        tcn: TcnConfig {
            hidden: a.hidden as usize,
            levels: a.levels as usize,
            learning_rate: a.learning_rate,
            ..TcnConfig::default()
        },
        window: a.window as usize,
        batch: a.batch as usize,
        local_epochs: a.local_epochs as usize,
        hour_features: a.hour_features,
        start_day: 0,
        train_days: a.train_days,
        validation_days: a.validation_days,
        seed: a.seed,
    }
}

fn round_json(r: &RoundReport) -> serde_json::Value {
    json!({
        "round": r.round,
        "train_mse": r.train_loss,
        "val_mae": r.val_mae,
        "val_rmse": r.val_rmse,
        "train_s_per_client": r.train_s,
        "protocol_s": r.protocol_s,
        "eval_s": r.eval_s,
        "committed_view": r.views,
        "clients_aggregated": r.aggregated,
        "faults": r.faults,
    })
}

/// Work budget of one `fl train` run (decision: each size flag is capped
/// on its own, but the simulated work grows with their product). One
/// round costs about `chains × nodes × (nodes + clients²)` units: each of
/// the `chains × nodes` nodes checks one cell (a KZG proof) per client and
/// exchanges the vector, aggregation and PBFT messages with every other
/// node of its chain, and in C2C every client forwards each mini-fragment
/// its node sends it to every other client, which verifies it (two Merkle
/// proofs): `chains × nodes × clients × (clients − 1)` messages, counted
/// one unit each (with the `clients` of the node term, `clients²`). A run
/// is refused up front, exit status 2 like any other bad usage, when one
/// round exceeds [`MAX_ROUND_WORK`] or all rounds together exceed
/// [`MAX_TOTAL_WORK`]. The defaults (20 clients, 4 chains × 4 nodes, 30
/// rounds) cost 6,464 units a round, 193,920 in all.
pub const MAX_ROUND_WORK: u64 = 250_000;
/// See [`MAX_ROUND_WORK`].
pub const MAX_TOTAL_WORK: u64 = 5_000_000;

/// Training budget (decision): the model and training sizes are capped one
/// by one, but the clients' training grows with their product. One round
/// of training costs about `parameters × window × windows × local epochs ×
/// clients` multiply-adds (each of the `train_days·24 − window` windows
/// runs every parameter over every hour of the window). The defaults
/// (TCN 64 × 8, 185,729 parameters; 24 h windows over 90 days; 1 local
/// epoch; 20 clients) cost 1.9·10¹¹ a round, 5.7·10¹² over 30 rounds.
/// Refused up front (exit 2) above [`MAX_ROUND_TRAINING`] a round (≈ 100×
/// the defaults) or [`MAX_TOTAL_TRAINING`] in all (≈ 35×).
pub const MAX_ROUND_TRAINING: u64 = 20_000_000_000_000;
/// See [`MAX_ROUND_TRAINING`].
pub const MAX_TOTAL_TRAINING: u64 = 200_000_000_000_000;
/// Most parameters in one chain's fragment (decision): the KZG setup grows
/// with the fragment (the next power of two of its coefficients, in G1 and
/// G2), 2^20 powers take about a minute and 150 MB here; a model of more
/// parameters per chain is refused up front (use more chains or a smaller
/// TCN). The defaults put 46,433 parameters in each of 4 fragments.
pub const MAX_FRAGMENT_PARAMS: u64 = 1 << 20;
/// Most bytes of set-up over all chains (decision): every chain builds its
/// own KZG setup and FK20 prover tables for its fragment
/// (`FederatedConfig::setup_bytes`), so the set-up grows with `chains ×`
/// the fragment, which [`MAX_FRAGMENT_PARAMS`] bounds only per chain
/// (≈ 0.9 GB a chain at a fragment of 2^20 parameters over 4 nodes). 4 GiB
/// takes about four such chains; the defaults need about 230 MB. Refused
/// up front (exit 2) above it.
pub const MAX_SETUP_BYTES: u64 = 4 << 30;

/// Most bytes of activations one training or evaluation step may hold
/// (decision): the TCN's causal padding doubles with every level whatever
/// the window, and candle keeps every padded input of the forward pass for
/// the backward one, so a step holds about `batch × Σ_i (c_in + hidden) ×
/// (window + (kernel − 1)·2^i) × 4` bytes and a gradient for each
/// (`FederatedConfig::step_activation_bytes`: the training batch twice,
/// or the evaluation chunk of 256 windows). `--levels 16 --batch 4096`
/// needs over 100 GB a step at `--hidden 16`; the defaults (TCN 64 × 8,
/// batch 16, 30 validation days) about 230 MB. 2 GiB, beside
/// [`MAX_SETUP_BYTES`]; refused up front (exit 2) above it.
pub const MAX_ACTIVATION_BYTES: u64 = 2 << 30;

/// Most bytes of the clients' windowed data (decision): the federation
/// materialises every client's training and validation windows before the
/// first round (`FederatedConfig::window_data_bytes`: clients × windows ×
/// window × inputs × 4), which no other term prices — a network of 20
/// parameters over 249 clients and 720-hour windows with hour features
/// needs about 17 GB. The defaults need about 15 MB. 4 GiB, beside
/// [`MAX_ACTIVATION_BYTES`]; refused up front (exit 2) above it.
pub const MAX_WINDOW_DATA_BYTES: u64 = 4 << 30;

/// A size combination over the work budget ([`MAX_ROUND_WORK`], [`MAX_TOTAL_WORK`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkBudgetError {
    PerRound { work: u64, limit: u64 },
    Total { work: u64, rounds: u64, total: u64, limit: u64 },
    TrainingPerRound { work: u64, limit: u64 },
    TrainingTotal { work: u64, rounds: u64, total: u64, limit: u64 },
    Fragment { params: u64, chains: u64, per_chain: u64, limit: u64 },
    SetUp { chains: u64, bytes: u64, limit: u64 },
    Activations { bytes: u64, limit: u64 },
    WindowData { bytes: u64, limit: u64 },
}

impl std::fmt::Display for WorkBudgetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PerRound { work, limit } => write!(
                f,
                "work budget exceeded: chains × nodes × (nodes + clients²) = {work} per round (the nodes' checks \
                 and the clients' C2C exchange), over the limit of {limit} (use fewer chains, nodes or clients)"
            ),
            Self::Total { work, rounds, total, limit } => write!(
                f,
                "work budget exceeded: {work} per round × {rounds} rounds = {total}, over the total limit of \
                 {limit} (use fewer rounds or smaller sizes)"
            ),
            Self::TrainingPerRound { work, limit } => write!(
                f,
                "work budget exceeded: training costs about parameters × window × windows × local epochs × clients \
                 = {work:.3e} multiply-adds per round, over the limit of {limit:.1e} (use a smaller --hidden, \
                 --levels, --window, --train-days, --local-epochs or --clients)",
                work = *work as f64,
                limit = *limit as f64
            ),
            Self::TrainingTotal { work, rounds, total, limit } => write!(
                f,
                "work budget exceeded: training {:.3e} multiply-adds per round × {rounds} rounds = {:.3e}, over the \
                 total limit of {:.1e} (use fewer rounds or a smaller model or training set)",
                *work as f64, *total as f64, *limit as f64
            ),
            Self::Fragment { params, chains, per_chain, limit } => write!(
                f,
                "work budget exceeded: the TCN has {params} parameters, {per_chain} per fragment over {chains} \
                 chains, over the limit of {limit} per fragment (the KZG setup grows with it; use more --chains \
                 or a smaller --hidden/--levels)"
            ),
            Self::SetUp { chains, bytes, limit } => write!(
                f,
                "work budget exceeded: the set-up of {chains} chains (a KZG setup and FK20 tables each) takes about \
                 {:.1} GB, over the limit of {:.1} GB (use fewer --chains or a smaller --hidden/--levels)",
                *bytes as f64 / 1e9,
                *limit as f64 / 1e9
            ),
            Self::Activations { bytes, limit } => write!(
                f,
                "work budget exceeded: one training step holds about {:.1} GB of activations (the TCN's padded \
                 inputs grow with 2^levels, times --batch and --hidden), over the limit of {:.1} GB (use fewer \
                 --levels, a smaller --batch or --hidden)",
                *bytes as f64 / 1e9,
                *limit as f64 / 1e9
            ),
            Self::WindowData { bytes, limit } => write!(
                f,
                "work budget exceeded: the clients' training and validation windows take about {:.1} GB \
                 (--clients x hours of data x --window, x3 with --hour-features), over the limit of {:.1} GB \
                 (use fewer --clients, a shorter --window or fewer --train-days/--validation-days)",
                *bytes as f64 / 1e9,
                *limit as f64 / 1e9
            ),
        }
    }
}

impl std::error::Error for WorkBudgetError {}

/// Checks the work budget of `a` (see [`MAX_ROUND_WORK`]).
pub fn check_work_budget(a: &TrainArgs) -> Result<(), WorkBudgetError> {
    let (chains, nodes, clients, rounds) = (a.chains as u64, a.nodes as u64, a.clients as u64, a.rounds as u64);
    let work = chains.saturating_mul(nodes).saturating_mul(nodes.saturating_add(clients.saturating_mul(clients)));
    if work > MAX_ROUND_WORK {
        return Err(WorkBudgetError::PerRound { work, limit: MAX_ROUND_WORK });
    }
    let total = work.saturating_mul(rounds);
    if total > MAX_TOTAL_WORK {
        return Err(WorkBudgetError::Total { work, rounds, total, limit: MAX_TOTAL_WORK });
    }
    let params = config(a).tcn().param_count();
    let per_chain = params.div_ceil(chains.max(1));
    if per_chain > MAX_FRAGMENT_PARAMS {
        return Err(WorkBudgetError::Fragment { params, chains, per_chain, limit: MAX_FRAGMENT_PARAMS });
    }
    let bytes = config(a).setup_bytes();
    if bytes > MAX_SETUP_BYTES {
        return Err(WorkBudgetError::SetUp { chains, bytes, limit: MAX_SETUP_BYTES });
    }
    let windows = (u64::from(a.train_days) * 24).saturating_sub(u64::from(a.window)).max(1);
    let training = params
        .saturating_mul(u64::from(a.window))
        .saturating_mul(windows)
        .saturating_mul(u64::from(a.local_epochs))
        .saturating_mul(clients);
    if training > MAX_ROUND_TRAINING {
        return Err(WorkBudgetError::TrainingPerRound { work: training, limit: MAX_ROUND_TRAINING });
    }
    let total = training.saturating_mul(rounds);
    if total > MAX_TOTAL_TRAINING {
        return Err(WorkBudgetError::TrainingTotal { work: training, rounds, total, limit: MAX_TOTAL_TRAINING });
    }
    let bytes = config(a).step_activation_bytes();
    if bytes > MAX_ACTIVATION_BYTES {
        return Err(WorkBudgetError::Activations { bytes, limit: MAX_ACTIVATION_BYTES });
    }
    let bytes = config(a).window_data_bytes();
    if bytes > MAX_WINDOW_DATA_BYTES {
        return Err(WorkBudgetError::WindowData { bytes, limit: MAX_WINDOW_DATA_BYTES });
    }
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    if let Err(e) = check_work_budget(&a) {
        // Bad usage, refused before any setup: exit 2 (as clap's usage errors).
        eprintln!("error: {e}");
        std::process::exit(2);
    }
    anyhow::ensure!(a.learning_rate.is_finite() && a.learning_rate > 0.0, "--learning-rate must be a positive number");
    anyhow::ensure!(a.byzantine.is_finite() && (0.0..=0.34).contains(&a.byzantine), "--byzantine must be in [0, 0.34]");
    if let Some(svg) = &a.svg {
        // Fail before the training, not after it.
        if let Some(dir) = svg.parent().filter(|d| !d.as_os_str().is_empty()) {
            anyhow::ensure!(dir.is_dir(), "--svg: directory {} not found", dir.display());
        }
        anyhow::ensure!(!svg.is_dir(), "--svg: {} is a directory (give a file name)", svg.display());
    }
    let cfg = config(&a);
    let mut fed = Federation::new(cfg.clone()).context("setting up the federation")?;
    let (mae0, rmse0) = fed.validate()?;
    if !a.json {
        println!(
            "CTP-FL training: {} clients ({} Byzantine), {} chains × {} nodes ({} Byzantine per chain), \
             TCN {}×{} ({} parameters, up to {} per fragment), {} aggregation",
            cfg.clients,
            cfg.byzantine_clients(),
            cfg.chains,
            cfg.nodes,
            cfg.byzantine_nodes(),
            cfg.tcn.hidden,
            cfg.tcn.levels,
            fed.param_count(),
            fed.param_count().div_ceil(cfg.chains),
            if cfg.trimmed { "trimmed-mean" } else { "plain-mean" },
        );
        println!(
            "validation: days {}–{} (normalised load; MAE and RMSE over the honest clients)",
            cfg.train_days + 1,
            cfg.train_days + cfg.validation_days
        );
        println!(
            "{:>5}  {:>10}  {:>9}  {:>9}  {:>10}  {:>10}  {:>6}  {:>6}",
            "round", "train MSE", "val MAE", "val RMSE", "train s/c", "CTP-FL s", "views", "faults"
        );
        println!("{:>5}  {:>10}  {:>9.5}  {:>9.5}", 0, "-", mae0, rmse0);
    }
    let mut bar = crate::progress::Steps::new("fl train", a.rounds as u64, a.json);
    let mut rounds = Vec::with_capacity(a.rounds as usize);
    for r in 1..=a.rounds {
        bar.step(&format!("round {r}"));
        let rep = fed.round().with_context(|| format!("round {r}"))?;
        if !a.json {
            let views: Vec<String> = rep.views.iter().map(|v| v.to_string()).collect();
            println!(
                "{:>5}  {:>10.5}  {:>9.5}  {:>9.5}  {:>10.3}  {:>10.3}  {:>6}  {:>6}",
                rep.round,
                rep.train_loss,
                rep.val_mae,
                rep.val_rmse,
                rep.train_s,
                rep.protocol_s,
                views.join(","),
                rep.faults
            );
        }
        rounds.push(rep);
    }
    drop(bar);
    // The results first: a failed SVG write (a full disk, a path that
    // became unwritable during the run) must not lose what was measured.
    if a.json {
        let doc = json!({
            "command": "fl train",
            "clients": cfg.clients,
            "chains": cfg.chains,
            "nodes": cfg.nodes,
            "byzantine": cfg.byzantine,
            "byzantine_clients": cfg.byzantine_clients(),
            "byzantine_nodes_per_chain": cfg.byzantine_nodes(),
            "aggregation": if cfg.trimmed { "trimmed_mean" } else { "mean" },
            "tcn": { "hidden": cfg.tcn.hidden, "levels": cfg.tcn.levels, "kernel": cfg.tcn.kernel,
                     "dropout": cfg.tcn.dropout, "learning_rate": cfg.tcn.learning_rate },
            "params": fed.param_count(),
            "train_days": cfg.train_days,
            "validation_days": cfg.validation_days,
            "window_h": cfg.window,
            "local_epochs": cfg.local_epochs,
            "hour_features": cfg.hour_features,
            "seed": cfg.seed,
            "initial": { "val_mae": mae0, "val_rmse": rmse0 },
            "rounds": rounds.iter().map(round_json).collect::<Vec<_>>(),
            "svg": a.svg.as_ref().map(|p| p.display().to_string()),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    if let Some(path) = &a.svg {
        let svg = loss_svg(rmse0, mae0, &rounds);
        std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?;
        if !a.json {
            println!("loss curve: {}", path.display());
        }
    }
    Ok(())
}

/// A named, coloured line of `(round, value)` points.
type Curve = (&'static str, &'static str, Vec<(f64, f64)>);

/// The loss curve: training MSE, validation MAE and RMSE per round (round 0
/// = the initial model's validation errors), one SVG with axes and a legend.
pub fn loss_svg(rmse0: f32, mae0: f32, rounds: &[RoundReport]) -> String {
    let (w, h, l, r, t, b) = (640.0, 400.0, 60.0, 20.0, 30.0, 50.0);
    let n = rounds.len().max(1) as f64;
    let series: [Curve; 3] = [
        ("training MSE", "#1f77b4", rounds.iter().map(|x| (x.round as f64, x.train_loss as f64)).collect()),
        (
            "validation MAE",
            "#2ca02c",
            std::iter::once((0.0, mae0 as f64))
                .chain(rounds.iter().map(|x| (x.round as f64, x.val_mae as f64)))
                .collect(),
        ),
        (
            "validation RMSE",
            "#d62728",
            std::iter::once((0.0, rmse0 as f64))
                .chain(rounds.iter().map(|x| (x.round as f64, x.val_rmse as f64)))
                .collect(),
        ),
    ];
    let ymax = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|&(_, y)| y))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-6)
        * 1.1;
    let x = |v: f64| l + (w - l - r) * v / n;
    let y = |v: f64| t + (h - t - b) * (1.0 - (v.clamp(0.0, ymax) / ymax));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"18\" text-anchor=\"middle\">CTP-FL training: loss per round (normalised load)</text>\n",
        w / 2.0
    );
    s += &format!(
        "<line x1=\"{l}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{}\" stroke=\"black\"/>\n",
        h - b,
        w - r,
        h - b,
        h - b
    );
    for i in 0..=4 {
        let v = ymax * i as f64 / 4.0;
        s += &format!("<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{v:.4}</text>\n", l - 4.0, y(v) + 4.0);
    }
    let step = (n / 10.0).ceil().max(1.0) as usize;
    for i in (0..=n as usize).step_by(step) {
        s += &format!("<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{i}</text>\n", x(i as f64), h - b + 16.0);
    }
    s += &format!("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">round</text>\n", (l + w - r) / 2.0, h - 10.0);
    for (i, (name, colour, pts)) in series.iter().enumerate() {
        let p: Vec<String> =
            pts.iter().filter(|(_, v)| v.is_finite()).map(|&(a, v)| format!("{:.1},{:.1}", x(a), y(v))).collect();
        s += &format!("<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n", p.join(" "));
        let ly = t + 14.0 * i as f64 + 6.0;
        s += &format!(
            "<line x1=\"{}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"2\"/><text x=\"{}\" y=\"{}\">{name}</text>\n",
            w - r - 150.0,
            w - r - 130.0,
            w - r - 125.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    s
}

/// The demo's forecasting section: three CTP-FL rounds of six households on
/// two chains of four nodes, 30 % Byzantine (one poisoning client, a
/// withholding view-0 leader per chain), a small TCN with hour-of-day
/// inputs on two training weeks, three local epochs a round (seconds on two
/// cores; [`FederatedConfig::demo`]), then household 0's forecast for the
/// next day beside its actual load and its typical day.
pub fn demo(json_only: bool) -> anyhow::Result<serde_json::Value> {
    let cfg = FederatedConfig::demo();
    let mut fed = Federation::new(cfg.clone()).context("setting up the federation")?;
    let (_, rmse0) = fed.validate()?;
    let mut rounds = Vec::new();
    for _ in 0..3 {
        rounds.push(fed.round()?);
    }
    let last = rounds.last().context("no round ran")?;
    let day = fed.forecast_next_day(0)?;
    let typical = fed.typical_day_wh(0)?;
    let mae_wh = day.forecast_wh.iter().zip(&day.actual_wh).map(|(f, a)| f.abs_diff(*a)).sum::<u64>()
        / day.actual_wh.len().max(1) as u64;
    let doc = json!({
        "clients": cfg.clients,
        "chains": cfg.chains,
        "nodes": cfg.nodes,
        "byzantine_clients": cfg.byzantine_clients(),
        "byzantine_nodes_per_chain": cfg.byzantine_nodes(),
        "params": fed.param_count(),
        "initial_val_rmse": rmse0,
        "rounds": rounds.iter().map(round_json).collect::<Vec<_>>(),
        "forecast_client": day.client,
        "forecast_wh": day.forecast_wh,
        "actual_wh": day.actual_wh,
        "typical_day_wh": typical,
        "day_mae_wh": mae_wh,
    });
    if !json_only {
        println!("\nCTP-FL federated load forecasting");
        println!(
            "  {} households ({} Byzantine), {} chains × {} nodes ({} Byzantine each), TCN of {} parameters",
            cfg.clients,
            cfg.byzantine_clients(),
            cfg.chains,
            cfg.nodes,
            cfg.byzantine_nodes(),
            fed.param_count()
        );
        println!("  validation RMSE (normalised)  {rmse0:.4} → {:.4} after {} rounds", last.val_rmse, rounds.len());
        println!("  household {}'s next day (Wh):", day.client);
        println!("    hour  forecast  actual  typical (training mean)");
        for (h, ((f, a), t)) in day.forecast_wh.iter().zip(&day.actual_wh).zip(&typical).enumerate() {
            println!("    {h:02}:00  {f:>8}  {a:>6}  {t:>7}");
        }
        println!("  mean absolute error over the day: {mae_wh} Wh");
    }
    Ok(doc)
}

/// The forecasting section of the demo's HTML report.
pub fn report_section(d: &serde_json::Value) -> gridledger_experiments::html::ForecastSection {
    let list = |k: &str| -> Vec<u64> { d[k].as_array().into_iter().flatten().filter_map(|v| v.as_u64()).collect() };
    let rounds = d["rounds"].as_array().cloned().unwrap_or_default();
    let last = rounds.last().cloned().unwrap_or_default();
    let f = |v: &serde_json::Value| v.as_f64().map_or("-".into(), |x| format!("{x:.4}"));
    let rows = vec![
        ("households (Byzantine)".into(), format!("{} ({})", d["clients"], d["byzantine_clients"])),
        (
            "chains × nodes (Byzantine per chain)".into(),
            format!("{} × {} ({})", d["chains"], d["nodes"], d["byzantine_nodes_per_chain"]),
        ),
        ("model parameters".into(), d["params"].to_string()),
        ("rounds".into(), rounds.len().to_string()),
        (
            "validation RMSE before → after (normalised)".into(),
            format!("{} → {}", f(&d["initial_val_rmse"]), f(&last["val_rmse"])),
        ),
        ("validation MAE after (normalised)".into(), f(&last["val_mae"])),
        ("next-day mean absolute error (Wh)".into(), d["day_mae_wh"].to_string()),
    ];
    gridledger_experiments::html::ForecastSection {
        rows,
        client: d["forecast_client"].as_u64().unwrap_or(0) as usize,
        hours: list("forecast_wh").into_iter().zip(list("actual_wh")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: TrainArgs,
    }

    fn args(flags: &[&str]) -> TrainArgs {
        T::try_parse_from(std::iter::once("train").chain(flags.iter().copied())).unwrap().a
    }

    /// The defaults and the documented figures: 185,729 parameters,
    /// 1.9·10¹¹ multiply-adds a round, accepted.
    #[test]
    fn defaults_are_within_the_training_budget() {
        let a = args(&[]);
        assert_eq!(config(&a).tcn().param_count(), 185_729);
        assert_eq!(check_work_budget(&a), Ok(()));
    }

    /// The model and training sizes are budgeted together: each flag in its
    /// range, their product refused (round 3's run of hours), per round and
    /// over all rounds; a model whose fragment needs a setup above 2^20
    /// powers is refused; one step inside each bound is accepted.
    #[test]
    fn training_and_fragment_sizes_are_budgeted() {
        let big = args(&[
            "--clients",
            "4",
            "--chains",
            "1",
            "--rounds",
            "1",
            "--hidden",
            "256",
            "--levels",
            "16",
            "--local-epochs",
            "1000",
            "--train-days",
            "330",
            "--window",
            "720",
        ]);
        assert!(
            matches!(check_work_budget(&big), Err(WorkBudgetError::Fragment { .. })),
            "{:?}",
            check_work_budget(&big)
        );
        let long = args(&["--local-epochs", "1000", "--train-days", "330", "--window", "720", "--rounds", "1"]);
        assert!(matches!(check_work_budget(&long), Err(WorkBudgetError::TrainingPerRound { .. })));
        // 30 rounds of 50 local epochs: within a round (9.5·10¹²), over the total (2.9·10¹⁴).
        let many = args(&["--local-epochs", "50"]);
        assert!(
            matches!(check_work_budget(&many), Err(WorkBudgetError::TrainingTotal { .. })),
            "{:?}",
            check_work_budget(&many)
        );
        assert_eq!(check_work_budget(&args(&["--local-epochs", "50", "--rounds", "20"])), Ok(()));
        // Fragment: hidden 256, 8 levels = 2,954,753 parameters; 2 chains
        // put 1,477,377 in a fragment (over 2^20), 3 chains 984,918 (within).
        let two = args(&["--hidden", "256", "--chains", "2", "--rounds", "1", "--train-days", "2"]);
        assert!(matches!(check_work_budget(&two), Err(WorkBudgetError::Fragment { per_chain: 1_477_377, .. })));
        let three = args(&["--hidden", "256", "--chains", "3", "--rounds", "1", "--train-days", "2"]);
        assert_eq!(check_work_budget(&three), Ok(()));
        assert!(WorkBudgetError::TrainingPerRound { work: 1, limit: 2 }.to_string().contains("work budget exceeded"));
    }

    /// The set-up is budgeted over all chains: 100 chains of a 976k-parameter
    /// fragment (~0.9 GB each) are refused though each fragment is within
    /// 2^20 parameters; 3 chains of one are accepted.
    #[test]
    fn the_set_up_of_every_chain_is_budgeted() {
        let base =
            ["--clients", "4", "--nodes", "4", "--rounds", "1", "--levels", "16", "--train-days", "2", "--window", "1"];
        let with = |extra: &[&str]| args(&base.iter().chain(extra).copied().collect::<Vec<_>>());
        let hundred = with(&["--hidden", "1024", "--chains", "100"]);
        match check_work_budget(&hundred) {
            Err(WorkBudgetError::SetUp { chains: 100, bytes, .. }) => assert!(bytes > 50_000_000_000, "{bytes}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(check_work_budget(&args(&[])), Ok(()));
        assert!(config(&args(&[])).setup_bytes() < 300_000_000);
    }

    /// The activations of one step are budgeted: round 6's `--hidden 16
    /// --levels 16 --batch 4096` over 330 days (within every other term)
    /// is refused; the same with the seed's 8 levels, or 16 levels at the
    /// default batch and a short validation, is accepted.
    #[test]
    fn the_activations_of_a_step_are_budgeted() {
        let base = ["--clients", "4", "--chains", "1", "--rounds", "1", "--hidden", "16", "--validation-days", "1"];
        let with = |extra: &[&str]| args(&base.iter().chain(extra).copied().collect::<Vec<_>>());
        let deep = with(&["--levels", "16", "--batch", "4096", "--train-days", "330"]);
        match check_work_budget(&deep) {
            Err(e @ WorkBudgetError::Activations { bytes, .. }) => {
                assert!(bytes > 30_000_000_000, "{bytes}");
                assert!(e.to_string().contains("work budget exceeded"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(check_work_budget(&with(&["--levels", "8", "--batch", "4096", "--train-days", "330"])), Ok(()));
        assert_eq!(check_work_budget(&with(&["--levels", "16", "--train-days", "2"])), Ok(()));
        assert!(config(&args(&[])).step_activation_bytes() < 300_000_000);
    }

    /// The clients' windowed data is budgeted (attack r7): 249 clients
    /// with 720-hour windows and hour features over 365 days (~17 GB) are
    /// refused although every other term passes; the same with 24-hour
    /// windows, and the defaults, are accepted.
    #[test]
    fn the_clients_windowed_data_is_budgeted() {
        let base =
            ["--clients", "249", "--chains", "1", "--nodes", "4", "--rounds", "1", "--hidden", "1", "--levels", "1"];
        let with = |extra: &[&str]| args(&base.iter().chain(extra).copied().collect::<Vec<_>>());
        let days = ["--train-days", "330", "--validation-days", "35", "--hour-features"];
        let long = with(&[&["--window", "720"][..], &days[..]].concat());
        match check_work_budget(&long) {
            Err(e @ WorkBudgetError::WindowData { bytes, .. }) => {
                assert!(bytes > 16_000_000_000, "{bytes}");
                assert!(e.to_string().contains("work budget exceeded"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(check_work_budget(&with(&[&["--window", "24"][..], &days[..]].concat())), Ok(()));
        assert!(config(&args(&[])).window_data_bytes() < 100_000_000);
    }

    /// The clients' C2C exchange is budgeted: 1,000 clients on one chain of
    /// 64 nodes (6.4·10⁷ forwarded mini-fragments a round) are refused
    /// while the node term alone (68,096) was within the limit.
    #[test]
    fn client_to_client_dissemination_is_budgeted() {
        let a = args(&[
            "--clients",
            "1000",
            "--chains",
            "1",
            "--nodes",
            "64",
            "--rounds",
            "1",
            "--hidden",
            "1",
            "--levels",
            "1",
        ]);
        const { assert!(64 * (64 + 1000) <= MAX_ROUND_WORK) };
        assert!(matches!(check_work_budget(&a), Err(WorkBudgetError::PerRound { .. })), "{:?}", check_work_budget(&a));
        let fine = args(&["--clients", "100", "--rounds", "1"]);
        assert_eq!(check_work_budget(&fine), Ok(()));
    }
}
