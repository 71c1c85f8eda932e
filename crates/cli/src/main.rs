//! The `gridledger` command.

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Every `println!` in this binary goes through [`out::line`]: a closed
/// stdout (`gridledger … | head`) ends the output quietly instead of
/// panicking, and the command still finishes what it started. (A
/// `macro_rules!` defined before the `mod` items shadows the prelude's in
/// all of them.)
macro_rules! println {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics on a closed stderr.
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}

mod bench;
mod channel;
mod cns;
mod demo;
mod endpoint;
mod experiment;
mod fl;
mod grid;
mod ior;
mod lbft_bench;
mod market;
mod ops;
mod pbft_timeline;
mod progress;
mod sim;
mod units;
mod xchain;

/// File beside a node's config holding the URL its JSON-RPC server listens
/// on while it runs (the real port when `rpc_listen` asks for port 0): the
/// config's name with the extension `url` (`node.toml` → `node.url`), so two
/// configs in one directory (two nodes) never share it.
pub fn node_url_file(config: &Path) -> std::path::PathBuf {
    config.with_extension("url")
}

/// File beside a node's config holding its process id while it runs: the
/// config's name with the extension `pid` (`node.toml` → `node.pid`).
pub fn node_pid_file(config: &Path) -> std::path::PathBuf {
    config.with_extension("pid")
}

#[derive(Parser)]
#[command(
    name = "gridledger",
    version,
    about = "Blockchain infrastructure for peer-to-peer energy trading",
    long_about = "Blockchain infrastructure for peer-to-peer energy trading.\n\n\
        Money is counted in minor units: 1 coin = 1,000,000 minor units; amount flags also take coin with \
        decimals (1.5 or 1.5coin). Energy is counted in watt-hours (Wh). Client commands talk to a node's \
        JSON-RPC at --rpc (default http://127.0.0.1:8645, the address `gridledger init` configures; \
        env GRIDLEDGER_RPC)."
)]
struct Cli {
    /// Log format on stderr: human-readable text or one JSON object per line.
    /// The level comes from RUST_LOG (default: warn; `gridledger node` logs
    /// at info). Colour is used only when stderr is a terminal.
    #[arg(long, env = "GRIDLEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum IorCmd {
    /// Run the 15-participant day of thesis §3.5.4 over both chains.
    Day(Box<ior::DayArgs>),
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
    /// Write and start a local network of validators, each its own process;
    /// or start, stop or inspect one made before.
    Testnet(ops::TestnetCmd),
    /// Run a node from its config file.
    Node {
        /// The node's config file (written by `gridledger init`; every key is
        /// described in docs/node.toml). While the node runs it writes its
        /// JSON-RPC URL to node.url and its process id to node.pid beside it (named after the config: b.toml → b.url, b.pid).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Create, inspect, encrypt, import or export keys.
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
    /// The seeds' tables and figures reproduced: JSON, SVG charts and
    /// docs/results.md.
    #[command(subcommand)]
    Experiment(experiment::ExperimentCmd),
    /// Power-network tools over MATPOWER case files (`grid pf`).
    #[command(subcommand)]
    Grid(grid::GridCmd),
    /// P2P energy market clearing over a grid case (`market clear`).
    #[command(subcommand)]
    Market(market::MarketCmd),
    /// The blockchain of blockchains (thesis Ch.5): a BoB and external
    /// chains, cross-chain token exchange.
    #[command(subcommand)]
    Xchain(xchain::XchainCmd),
    /// CTP-FL federated load forecasting (thesis Ch.7): `fl train`.
    #[command(subcommand)]
    Fl(fl::FlCmd),
    /// Seeded simulator sweeps (`sim pbft --seeds N --validators n`).
    #[command(subcommand)]
    Sim(sim::SimCmd),
    /// Print a shell completion script to stdout.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (gridledger.1, gridledger-<command>.1, …) to a directory.
    Man {
        /// Directory to write the pages to (created if absent).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
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
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt.json().init(),
    }
    let result = run(cli);
    let out = out::finish();
    if let Err(e) = result {
        eprintln!("error: {}", error_chain(&e));
        std::process::exit(1);
    }
    if let Err(e) = out {
        eprintln!("error: writing to stdout: {e}");
        std::process::exit(1);
    }
}

/// `a: b: c` for an error and its causes, without repeating a cause whose
/// text its wrapper already ends with (io errors often do).
fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if parts.last().is_some_and(|p| p.ends_with(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.cmd {
        Cmd::Demo(a) => demo::run(a),
        Cmd::Init(a) => ops::init(a),
        Cmd::Node { config } => run_node(&config),
        Cmd::Testnet(a) => ops::testnet(a),
        Cmd::Keys(k) => ops::keys(k),
        Cmd::Transfer(a) => ops::transfer(a),
        Cmd::Query(q) => ops::query(q),
        Cmd::Bench(b) => bench::run(b),
        Cmd::Sim(c) => sim::run(c),
        Cmd::Channel(c) => channel::run(c),
        Cmd::Cns(c) => cns::run(c),
        Cmd::Ior(IorCmd::Day(a)) => ior::day(*a),
        Cmd::Ior(IorCmd::CaseStudy(a)) => ior::case_study(a),
        Cmd::Experiment(c) => experiment::run(c),
        Cmd::Grid(c) => grid::run(c),
        Cmd::Market(c) => market::run(c),
        Cmd::Xchain(c) => xchain::run(c),
        Cmd::Fl(c) => fl::run(c),
        Cmd::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "gridledger", &mut buf);
            out::bytes(&buf);
            Ok(())
        }
        Cmd::Man { out } => {
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            clap_mangen::generate_to(Cli::command(), &out)
                .with_context(|| format!("writing man pages to {}", out.display()))?;
            eprintln!("man pages written to {} (try `man -l {}/gridledger.1`)", out.display(), out.display());
            Ok(())
        }
    }
}

/// The contracts every `gridledger node` (and so every `gridledger testnet`
/// validator) deploys: the default ones (token, escrow, CNS) plus the IOR
/// contracts (primary 20, secondary 21, single-chain baseline 22), so that
/// `ior day --rpc` can run on a real node. Built from constants only, so
/// every validator has the same registry (it decides the state root).
pub(crate) fn node_registry() -> gridledger_ledger::ContractRegistry {
    use gridledger_rollup as ior;
    use std::sync::Arc;
    let mut r = gridledger_contracts::default_registry();
    r.register(ior::IOR_PRIMARY_ID, Arc::new(ior::primary::IorPrimaryContract))
        .register(ior::IOR_SECONDARY_ID, Arc::new(ior::secondary::IorSecondaryContract))
        .register(ior::IOR_SINGLE_ID, Arc::new(ior::single::SingleChainContract));
    r
}

/// `gridledger node`: runs until Ctrl-C or SIGTERM; while it runs, its
/// URL and pid are in `node.url` / `node.pid` beside the config.
fn run_node(config: &Path) -> anyhow::Result<()> {
    // Named workers, so per-thread CPU (`bench pbft`) tells signature
    // checks apart from the threads that happened to start the pool.
    let _ = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("rayon-{i}")).build_global();
    let cfg = gridledger_node::NodeConfig::load(config)?;
    let node = gridledger_node::Node::open(&cfg, node_registry())
        .with_context(|| format!("opening node from {}", config.display()))?;
    let handle = node.start().map_err(|e| {
        // An address in use: say which setting moves it.
        let in_use = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
                || c.to_string().contains("in use")
        });
        let hint = if in_use {
            " (another process holds that address: stop it, or change rpc_listen / network.listen in that file)"
        } else {
            ""
        };
        e.context(format!("starting the node of {}{hint}", config.display()))
    })?;
    let (url_file, pid_file) = (node_url_file(config), node_pid_file(config));
    write_atomically(&pid_file, &format!("{}\n", std::process::id()))?;
    write_atomically(&url_file, &format!("{}\n", handle.url()))?;
    eprintln!("gridledger node serving JSON-RPC on {}", handle.url());
    let r = handle.wait_for_signal();
    let _ = std::fs::remove_file(&url_file);
    let _ = std::fs::remove_file(&pid_file);
    r
}

/// Writes `text` to a temporary file beside `path`, then renames it over
/// `path`: a reader sees the old content or the new, never half.
pub fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Standard output that survives a reader going away.
mod out {
    use std::io::Write;
    use std::sync::Mutex;

    /// The first write error, after which output stops.
    static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

    pub fn line(args: std::fmt::Arguments) {
        write(|o| {
            o.write_fmt(args)?;
            o.write_all(b"\n")
        })
    }

    pub fn bytes(b: &[u8]) {
        write(|o| o.write_all(b))
    }

    fn write(f: impl FnOnce(&mut std::io::StdoutLock) -> std::io::Result<()>) {
        let mut failed = FAILED.lock().unwrap_or_else(|p| p.into_inner());
        if failed.is_some() {
            return;
        }
        let mut o = std::io::stdout().lock();
        if let Err(e) = f(&mut o).and_then(|_| o.flush()) {
            *failed = Some(e);
        }
    }

    pub fn err_line(args: std::fmt::Arguments) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_fmt(args).and_then(|_| e.write_all(b"\n"));
    }

    /// Ok unless stdout failed for a reason other than its reader leaving
    /// (a closed pipe is how `| head` says "enough").
    pub fn finish() -> std::io::Result<()> {
        let _ = std::io::stdout().flush();
        match FAILED.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every flag and positional argument of every command says what it is.
    #[test]
    fn every_argument_is_documented() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for s in cmd.get_subcommands() {
                if s.get_about().is_none() && s.get_long_about().is_none() && s.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", s.get_name()));
                }
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "gridledger", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:#?}");
    }

    /// Flags for money, energy and durations name their unit.
    #[test]
    fn quantities_name_their_unit() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                let help = format!(
                    "{} {}",
                    a.get_help().map(|h| h.to_string()).unwrap_or_default(),
                    a.get_long_help().map(|h| h.to_string()).unwrap_or_default()
                );
                let money = ["amount", "balance", "capacity", "price", "credit", "pool"].iter().any(|w| id.contains(w))
                    && !id.starts_with("credit0")
                    && !id.starts_with("credit1");
                let unit_ok = if money {
                    help.contains("minor units") || help.contains("coin")
                } else if id.contains("energy") {
                    help.contains("Wh")
                } else if id.ends_with("_ms") {
                    help.contains("ms")
                } else if id.ends_with("_s") {
                    help.contains("second") || help.contains(" s")
                } else {
                    true
                };
                if !unit_ok {
                    missing.push(format!("{path} --{id}: {help}"));
                }
            }
            for s in cmd.get_subcommands() {
                walk(s, &format!("{path} {}", s.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "gridledger", &mut missing);
        assert!(missing.is_empty(), "quantities without a unit: {missing:#?}");
    }

    /// `--log-format` is a top-level flag, not repeated in every command's help.
    #[test]
    fn log_format_is_not_repeated_in_subcommands() {
        let mut cmd = Cli::command();
        cmd.build();
        for s in cmd.get_subcommands() {
            assert!(s.get_arguments().all(|a| a.get_id() != "log_format"), "{} repeats --log-format", s.get_name());
        }
    }

    /// The deployment examples start the node with a command line this CLI accepts.
    #[test]
    fn deploy_examples_parse() {
        let unit = include_str!("../../../deploy/gridledger-validator.service");
        let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
        let args: Vec<&str> = exec.split_whitespace().collect();
        assert!(matches!(Cli::try_parse_from(&args).map(|c| c.cmd), Ok(Cmd::Node { .. })), "{exec}");
        let container = include_str!("../../../deploy/Containerfile");
        let cmd = container.lines().find_map(|l| l.strip_prefix("CMD ")).expect("CMD");
        let cmd: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
        let args = std::iter::once("gridledger".to_string()).chain(cmd);
        assert!(matches!(Cli::try_parse_from(args).map(|c| c.cmd), Ok(Cmd::Node { .. })));
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn error_chain_drops_repeated_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(io).context("No such file or directory (os error 2)").context("reading x");
        assert_eq!(error_chain(&e), "reading x: No such file or directory (os error 2)");
    }
}
