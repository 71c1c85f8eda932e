//! `gridledger demo`: an embedded single-validator chain in a temporary
//! directory, funded accounts, a few hundred signed transfers over the real
//! JSON-RPC API, and a summary.

use anyhow::Context;
use clap::Args;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator};
use gridledger_ledger::ChainConfig;
use gridledger_node::config::write_key;
use gridledger_node::{Node, NodeConfig, RpcClient};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct DemoArgs {
    /// Funded accounts (at least 3: a merchant and two prosumers), 1,000 coin each.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(3..=10_000))]
    pub accounts: u32,
    /// Signed transfers to submit (1 to 1,000,000).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub transfers: u32,
    /// Print one JSON document {"ledger", "channel", "ior_day", "xchain", "market", "forecast"} instead of the summaries.
    #[arg(long)]
    pub json: bool,
    /// Where to write report.html, the self-contained HTML report of the run.
    #[arg(long, default_value = ".")]
    pub report_dir: std::path::PathBuf,
    /// Do not write report.html.
    #[arg(long)]
    pub no_report: bool,
}

const START_BALANCE: Amount = Amount(1_000_000_000);

pub fn run(a: DemoArgs) -> anyhow::Result<()> {
    let (accounts, transfers) = (a.accounts as usize, a.transfers as usize);
    anyhow::ensure!(accounts >= 3 && transfers >= 1, "need at least three accounts and one transfer");
    let dir = tempfile::tempdir()?;
    let validator = dev_validator(0);
    let genesis = dev_genesis(1, accounts, START_BALANCE, std::slice::from_ref(&validator));
    std::fs::write(dir.path().join("genesis.toml"), toml::to_string_pretty(&genesis)?)?;
    write_key(&dir.path().join("validator.key"), &validator)?;
    let cfg = NodeConfig {
        data_dir: dir.path().join("data"),
        genesis: dir.path().join("genesis.toml"),
        validator_key: dir.path().join("validator.key"),
        rpc_listen: "127.0.0.1:0".into(),
        block_interval_ms: 50,
        chain: ChainConfig::default(),
        network: None,
        pbft: gridledger_node::validator::PbftSettings::default(),
        consensus: Default::default(),
        lbft: Default::default(),
    };
    let node = Node::open(&cfg, gridledger_contracts::default_registry())?.spawn()?;
    let client = RpcClient::new(&node.url());
    if !a.json {
        eprintln!("embedded validator up at {} (data in a temporary directory)", node.url());
    }

    let txs = crate::bench::signed_transfers(transfers, accounts, &[], 7);
    let bar = if a.json { ProgressBar::hidden() } else { ProgressBar::new(txs.len() as u64) };
    bar.set_style(ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len}")?.progress_chars("=> "));
    bar.set_message("submitting");
    let start_height = client.height()?;
    let start = Instant::now();
    let mut hashes: Vec<Hash32> = Vec::with_capacity(txs.len());
    for chunk in txs.chunks(100) {
        for r in client.send_many(chunk)? {
            hashes.push(r.map_err(|e| anyhow::anyhow!("transfer refused: {e}"))?);
        }
        bar.inc(chunk.len() as u64);
    }
    bar.set_position(0);
    bar.set_message("committing");
    let mut gas = 0u64;
    let mut fees = 0u128;
    let mut last_height = start_height;
    for h in &hashes {
        let r = client.wait_receipt(h, Duration::from_secs(60))?;
        gas += r["gas_used"].as_u64().unwrap_or(0);
        fees += r["fee"].as_str().and_then(|f| f.parse::<u128>().ok()).unwrap_or(0);
        last_height = last_height.max(r["height"].as_u64().unwrap_or(0));
        bar.inc(1);
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();

    // Independent checks through the API: supply conservation and a Merkle proof.
    let mut total: u128 = 0;
    for i in 0..accounts {
        total += client.account(&dev_key(i).address())?["balance"].as_str().unwrap_or("0").parse::<u128>()?;
    }
    total += client.account(&validator.address())?["balance"].as_str().unwrap_or("0").parse::<u128>()?;
    let supply_ok = total == START_BALANCE.0 * accounts as u128;
    let probe = *hashes.get(hashes.len() / 2).context("no transfer was committed")?;
    let p = client.call("gl_getTxProof", json!([probe]))?;
    let proof: gridledger_core::MerkleProof = serde_json::from_value(p["proof"].clone())?;
    let root = Hash32::from_hex(p["tx_root"].as_str().unwrap_or(""))?;
    let proof_ok = proof.verify(&probe, &root);
    let blocks = last_height - start_height;
    let summary = json!({
        "accounts": accounts,
        "transfers_submitted": txs.len(),
        "transfers_committed": hashes.len(),
        "blocks": blocks,
        "gas_used": gas,
        "fees_paid": fees.to_string(),
        "elapsed_s": elapsed.as_secs_f64(),
        "throughput_tx_per_s": hashes.len() as f64 / elapsed.as_secs_f64(),
        "supply_conserved": supply_ok,
        "merkle_proof_verified": proof_ok,
        "final_height": last_height,
    });
    if !a.json {
        println!("gridledger demo: single-validator chain");
        println!("  accounts funded        {accounts} ({} each)", crate::units::show(START_BALANCE.0));
        println!("  transfers committed    {} of {}", hashes.len(), txs.len());
        println!("  blocks                 {blocks} (≤ 300 transactions each)");
        println!("  gas used               {gas} ({} per transfer)", gas / hashes.len().max(1) as u64);
        println!("  fees paid to validator {}", crate::units::show(fees));
        println!("  wall time              {:.3} s", elapsed.as_secs_f64());
        println!(
            "  throughput             {:.0} tx/s (submit → committed, over JSON-RPC)",
            hashes.len() as f64 / elapsed.as_secs_f64()
        );
        println!("  supply conserved       {supply_ok}");
        println!(
            "  Merkle proof of {probe} against its block's tx_root: {}",
            if proof_ok { "valid" } else { "INVALID" }
        );
    }
    anyhow::ensure!(supply_ok && proof_ok, "demo self-checks failed");
    if !a.json {
        println!();
    }
    // Energy traded through a credit-note state channel on the same node.
    let channel_from = client.height()? + 1;
    let channel = crate::channel::demo(&node.url(), a.json)?;
    let channel_footprint = blocks_footprint(&client, channel_from, client.height()?)?;
    node.shutdown();
    // A day of P2P energy trading over the dual chain (thesis Ch.3), its
    // primary chain run by four PBFT validators.
    let day_args = crate::ior::DayArgs {
        seed: 1,
        day: 106,
        pbft: 4,
        json: a.json,
        config: None,
        example_config: false,
        days: 1,
        statements: None,
        meter_csv: None,
        report_dir: a.report_dir.clone(),
        no_report: true,
        rpc: None,
        secondary_rpc: None,
        journal: None,
        from: None,
        password: crate::ops::PasswordArgs { password_file: None },
        gas_price: None,
        slot_ms: 5_000,
        slots: (0, gridledger_rollup::data::SLOTS_PER_DAY),
        window_ms: 5_000,
    };
    let day =
        crate::ior::run_one(&day_args, gridledger_rollup::demo::DayConfig { seed: 1, day: 106, ..Default::default() })?;
    if !a.json {
        crate::ior::print_day(&day_args, &day)?;
        println!();
    }
    // Two communities on different chains exchange tokens through the BoB (thesis Ch.5).
    let xchain = crate::xchain::demo(a.json)?;
    // P2P market clearing by enclaves with Byzantine hosts (thesis Ch.6).
    let market = crate::market::demo(a.json)?;
    // Federated load forecasting through CTP-FL (thesis Ch.7).
    let forecast = crate::fl::demo(a.json)?;
    if a.json {
        // One JSON document for the whole run (the day as `ior day --json` prints it).
        println!(
            "{}",
            json!({ "ledger": summary, "channel": channel, "ior_day": serde_json::to_value(&day)?, "xchain": xchain, "market": market, "forecast": forecast })
        );
    }
    if !a.no_report {
        use gridledger_experiments::html::{write_report, ChainSection, ChannelSection, DemoReport};
        let u128_of = |v: &serde_json::Value| -> u128 {
            v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_u64().map(u128::from)).unwrap_or(0)
        };
        let report = DemoReport {
            chain: Some(ChainSection {
                accounts: a.accounts as usize,
                transfers_committed: hashes.len(),
                blocks,
                gas_used: gas,
                fees_paid: fees,
                supply_conserved: supply_ok,
                merkle_proof_verified: proof_ok,
            }),
            channel: Some(ChannelSection {
                trades_off_chain: channel["trades_off_chain"].as_u64().unwrap_or(0),
                final_counter: channel["final_counter"].as_u64().unwrap_or(0),
                final_balances: [u128_of(&channel["final_balances"][0]), u128_of(&channel["final_balances"][1])],
                energy_wh: [
                    channel["energy_wh"][0].as_u64().unwrap_or(0),
                    channel["energy_wh"][1].as_u64().unwrap_or(0),
                ],
                billed_to_credit_user: u128_of(&channel["billed_to_credit_user"]),
                credit_ledger_imbalance: channel["credit_ledger_imbalance"].as_i64().unwrap_or(0),
                on_chain_txs: channel_footprint.0,
                on_chain_gas: channel_footprint.1,
            }),
            xchain: Some(crate::xchain::report_section(&xchain)),
            market: Some(crate::market::report_section(&market)),
            forecast: Some(crate::fl::report_section(&forecast)),
            day: &day,
            primary: "4 PBFT validators".into(),
        };
        let path = write_report(&a.report_dir, &report)?;
        if a.json {
            eprintln!("report: {}", path.display());
        } else {
            println!("\nreport: {}", path.display());
        }
    }
    Ok(())
}

/// Transactions and gas in blocks `from..=to` of the node behind `c`.
fn blocks_footprint(c: &RpcClient, from: u64, to: u64) -> anyhow::Result<(u64, u64)> {
    let (mut n, mut gas) = (0u64, 0u64);
    for h in from..=to {
        let b = c.call("gl_getBlock", json!([h]))?;
        for t in b["transactions"].as_array().into_iter().flatten() {
            let hash = Hash32::from_hex(t.as_str().unwrap_or(""))?;
            if let Some(r) = c.receipt(&hash)? {
                n += 1;
                gas += r["gas_used"].as_u64().unwrap_or(0);
            }
        }
    }
    Ok((n, gas))
}
