//! The `gridledger` command.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod channel;
mod cns;
mod demo;
mod ior;
mod ops;
mod sim;

#[derive(Parser)]
#[command(name = "gridledger", version, about = "Blockchain infrastructure for peer-to-peer energy trading")]
struct Cli {
    /// Log format on stderr: human-readable text or one JSON object per line.
    /// The level comes from RUST_LOG (default: warn; `gridledger node` logs
    /// at info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum IorCmd {
    /// Run the 15-participant day of thesis §3.5.4 over both chains.
    Day(ior::DayArgs),
    /// Run the §3.5.5 reputation case study and print it beside the thesis.
    CaseStudy(ior::CaseStudyArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the embedded demonstration (no external services needed).
    Demo(demo::DemoArgs),
    /// Write keys, genesis and a node config for a new single-validator chain.
    Init(ops::InitArgs),
    /// Write and start a local network of validators, each its own process.
    Testnet(ops::TestnetArgs),
    /// Run a node from its config file.
    Node {
        #[arg(long)]
        config: PathBuf,
    },
    /// Create or inspect keys.
    #[command(subcommand)]
    Keys(ops::KeysCmd),
    /// Send native coin.
    Transfer(ops::TransferArgs),
    /// Read chain data from a running node.
    #[command(subcommand)]
    Query(ops::QueryCmd),
    /// The dual blockchain with the Improved Optimistic Rollup (thesis Ch.3).
    #[command(subcommand)]
    Ior(IorCmd),
    /// Two-party state channels of the Credit-Note System (seed 000).
    #[command(subcommand)]
    Channel(channel::ChannelCmd),
    /// The Credit-Note System's merchant service: credit applications,
    /// approvals, MSCs and billing (seed 000).
    #[command(subcommand)]
    Cns(cns::CnsCmd),
    /// Benchmarks printing JSON.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Seeded simulator sweeps (`sim pbft --seeds N --validators n`).
    #[command(subcommand)]
    Sim(sim::SimCmd),
}

fn main() {
    let cli = Cli::parse();
    // Simulated validators meet Byzantine peers and broken disks on
    // purpose: their logs are off unless RUST_LOG asks for them.
    let default_level = match cli.cmd {
        Cmd::Node { .. } => "info",
        Cmd::Sim(_) => "off",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
    if let Err(e) = run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Init(a) => ops::init(a),
        Cmd::Node { config } => {
            let cfg = gridledger_node::NodeConfig::load(&config)?;
            let node = gridledger_node::Node::open(&cfg, gridledger_contracts::default_registry())
                .with_context(|| format!("opening node from {}", config.display()))?;
            let handle = node.start()?;
            eprintln!("gridledger node serving JSON-RPC on {}", handle.url());
            handle.wait_for_signal()
        }
        Cmd::Testnet(a) => ops::testnet(a),
        Cmd::Keys(k) => ops::keys(k),
        Cmd::Transfer(a) => ops::transfer(a),
        Cmd::Query(q) => ops::query(q),
        Cmd::Bench(b) => bench::run(b),
        Cmd::Sim(c) => sim::run(c),
        Cmd::Channel(c) => channel::run(c),
        Cmd::Cns(c) => cns::run(c),
        Cmd::Ior(IorCmd::Day(a)) => ior::day(a),
        Cmd::Ior(IorCmd::CaseStudy(a)) => ior::case_study(a),
    }
}
