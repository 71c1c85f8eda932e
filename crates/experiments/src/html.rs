//! The demo's report: one self-contained `report.html` (inline SVG and CSS,
//! no scripts, no external assets) that an energy-community operator can
//! read: the day's supply, demand and traded energy per slot, clearing
//! prices, each participant's balance in coin and kWh, the settlement
//! latency distribution, blocks and transactions per chain, the channel
//! section's trades and on-chain footprint, and one verdict line per
//! conservation check.
//!
//! Every chart is a `<figure id="chart-…">` and every table a
//! `<table id="…">`, so tests (and scripts) can find them.

use std::fmt::Write;

use gridledger_rollup::demo::{coins_string, DayReport};
use gridledger_rollup::types::MINOR_PER_COIN;
use serde::{Deserialize, Serialize};

use crate::chart::render_plain;
use crate::result::{ChartKind, ChartSpec, Series};
use crate::ExperimentError;

/// The demo's first section: transfers on a single-validator chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSection {
    pub accounts: usize,
    pub transfers_committed: usize,
    pub blocks: u64,
    pub gas_used: u64,
    pub fees_paid: u128,
    pub supply_conserved: bool,
    pub merkle_proof_verified: bool,
}

/// The demo's credit-note channel section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSection {
    pub trades_off_chain: u64,
    pub final_counter: u64,
    /// Final channel balances of the two parties, minor units.
    pub final_balances: [u128; 2],
    /// Energy delivered to each party, Wh.
    pub energy_wh: [u64; 2],
    pub billed_to_credit_user: u128,
    pub credit_ledger_imbalance: i64,
    /// Transactions and gas the section put on chain (merchant setup,
    /// channel open, funding, close, billing).
    pub on_chain_txs: u64,
    pub on_chain_gas: u64,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct DemoReport<'a> {
    pub chain: Option<ChainSection>,
    pub channel: Option<ChannelSection>,
    /// The cross-chain section (BoB: a token exchange, a migrated item).
    pub xchain: Option<XchainSection>,
    /// The P2P market-clearing section (enclaves, TEAR-DO).
    pub market: Option<MarketSection>,
    /// The federated load-forecasting section (CTP-FL).
    pub forecast: Option<ForecastSection>,
    pub day: &'a DayReport,
    /// How the primary chain ran, e.g. "4 PBFT validators".
    pub primary: String,
}

/// The demo's cross-chain section: `(quantity, value)` rows as the demo
/// prints them.
#[derive(Clone, Debug, Default)]
pub struct XchainSection {
    pub rows: Vec<(String, String)>,
}

/// The demo's market-clearing section (thesis Ch.6): one interval cleared
/// by enclaves under TEAR-DO, beside the central optimum.
#[derive(Clone, Debug, Default)]
pub struct MarketSection {
    /// `(quantity, value)` rows as the demo prints them.
    pub rows: Vec<(String, String)>,
    /// Nodal prices of the optimum at the buses with prosumers, $/kWh.
    pub bus_prices: Vec<(u32, f64)>,
    /// Relative welfare gap of the distributed clearing to the optimum.
    pub relative_gap: f64,
    pub byzantine_hosts: Vec<usize>,
    pub detected: Vec<usize>,
}

/// The demo's federated forecasting section (thesis Ch.7): a few CTP-FL
/// rounds and one client's forecast for the next day beside its actual load.
#[derive(Clone, Debug, Default)]
pub struct ForecastSection {
    /// `(quantity, value)` rows as the demo prints them.
    pub rows: Vec<(String, String)>,
    /// The client whose day is shown.
    pub client: usize,
    /// Per hour of the day: `(forecast, actual)` load in Wh.
    pub hours: Vec<(u64, u64)>,
}

/// One conservation verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub id: &'static str,
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Minor units as coin, six decimals.
pub fn coin(minor: u128) -> String {
    coins_string(minor)
}

/// Wh as kWh, three decimals.
pub fn kwh(wh: u64) -> String {
    format!("{}.{:03}", wh / 1000, wh % 1000)
}

/// A price in minor units per kWh as coin per kWh.
pub fn price(minor_per_kwh: u128) -> String {
    coins_string(minor_per_kwh)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The conservation checks the report shows, in order.
pub fn verdicts(r: &DemoReport) -> Vec<Verdict> {
    let d = r.day;
    let mut v = Vec::new();
    if let Some(c) = &r.chain {
        v.push(Verdict {
            id: "verdict-supply",
            what: "Coin supply of the demo chain conserved".into(),
            ok: c.supply_conserved,
            detail: format!("{} transfers, fees included", c.transfers_committed),
        });
    }
    v.push(Verdict {
        id: "verdict-coin",
        what: "Coin on the trading day's primary chain conserved".into(),
        ok: d.coins.chain_total_before == d.coins.chain_total_after,
        detail: format!(
            "{} coin before, {} coin after",
            coin(d.coins.chain_total_before),
            coin(d.coins.chain_total_after)
        ),
    });
    let sold: u64 = d.participants.iter().map(|p| p.sold_wh).sum();
    let bought: u64 = d.participants.iter().map(|p| p.bought_wh).sum();
    v.push(Verdict {
        id: "verdict-energy",
        what: "Energy sold equals energy bought equals energy traded".into(),
        ok: sold == bought && bought == d.energy_traded_wh,
        detail: format!("sold {} kWh, bought {} kWh, traded {} kWh", kwh(sold), kwh(bought), kwh(d.energy_traded_wh)),
    });
    if let Some(m) = &r.market {
        v.push(Verdict {
            id: "verdict-market-welfare",
            what: "Market cleared within 0.1 % of the central optimum's welfare".into(),
            ok: m.relative_gap.abs() < 1e-3,
            detail: format!("relative gap {:.2e}", m.relative_gap),
        });
        // a host is accused only for a message that failed a check or never came
        let wrongly: Vec<usize> = m.detected.iter().filter(|h| !m.byzantine_hosts.contains(h)).copied().collect();
        v.push(Verdict {
            id: "verdict-market-byzantine",
            what: "Only Byzantine enclave hosts detected, none honest".into(),
            ok: wrongly.is_empty(),
            detail: format!("Byzantine {:?}, detected {:?}", m.byzantine_hosts, m.detected),
        });
    }
    if let Some(c) = &r.channel {
        v.push(Verdict {
            id: "verdict-credit",
            what: "Credit ledger of the merchant balances".into(),
            ok: c.credit_ledger_imbalance == 0,
            detail: format!("imbalance {}", c.credit_ledger_imbalance),
        });
    }
    v
}

/// Per-slot clearing prices (min, volume-weighted mean, max) in minor units
/// per kWh; `None` for slots without trades.
pub fn clearing_prices(d: &DayReport) -> Vec<Option<(u128, u128, u128)>> {
    let slots = d.trades_per_slot.len();
    (0..slots)
        .map(|s| {
            let ts: Vec<_> = d.trades.iter().filter(|t| t.slot == s).collect();
            if ts.is_empty() {
                return None;
            }
            let min = ts.iter().map(|t| t.ep).min().unwrap_or(0);
            let max = ts.iter().map(|t| t.ep).max().unwrap_or(0);
            let wh: u128 = ts.iter().map(|t| u128::from(t.em_wh)).sum();
            let mean = ts
                .iter()
                .map(|t| t.ep * u128::from(t.em_wh))
                .sum::<u128>()
                .checked_div(wh)
                .unwrap_or_else(|| ts.iter().map(|t| t.ep).sum::<u128>() / ts.len() as u128);
            Some((min, mean, max))
        })
        .collect()
}

/// Traded (settled) energy per slot, Wh.
pub fn traded_per_slot(d: &DayReport) -> Vec<u64> {
    let mut v = vec![0u64; d.trades_per_slot.len()];
    for t in d.trades.iter().filter(|t| t.settled) {
        if let Some(x) = v.get_mut(t.slot) {
            *x += t.em_wh;
        }
    }
    v
}

/// Latency histogram: (bucket upper bound in s, batches).
pub fn latency_histogram(ms: &[u64]) -> Vec<(u64, usize)> {
    let max = ms.iter().copied().max().unwrap_or(0);
    let width_s = (max / 1000 / 10).max(1);
    let buckets = (max / 1000 / width_s + 1) as usize;
    let mut h = vec![0usize; buckets];
    for &m in ms {
        h[((m / 1000 / width_s) as usize).min(buckets - 1)] += 1;
    }
    h.into_iter().enumerate().map(|(i, n)| ((i as u64 + 1) * width_s, n)).collect()
}

fn table(out: &mut String, id: &str, caption: &str, head: &[&str], rows: &[Vec<String>]) {
    let _ = write!(out, "<table id=\"{id}\"><caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn figure(out: &mut String, id: &str, caption: &str, svg: &str) {
    let _ = writeln!(out, "<figure id=\"{id}\">{svg}<figcaption>{}</figcaption></figure>", esc(caption));
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1d2433;background:#fafbfc}\
h1{font-size:1.7em;margin-bottom:.2em}h2{margin-top:2em;border-bottom:2px solid #d0d7de;padding-bottom:.2em}\
.lead{color:#57606a}table{border-collapse:collapse;margin:1em 0;background:#fff;font-size:.92em}\
caption{text-align:left;font-weight:600;padding:.3em 0}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:right}\
th{background:#f0f3f6}td:first-child,th:first-child{text-align:left}figure{margin:1em 0;background:#fff;border:1px solid #d0d7de;padding:.5em;display:inline-block}\
figcaption{color:#57606a;font-size:.9em}ul.verdicts{list-style:none;padding:0}details{margin:.5em 0}summary{cursor:pointer;color:#0969da}ul.verdicts li{padding:.4em .6em;margin:.3em 0;border-radius:4px}\
li.ok{background:#dafbe1}li.fail{background:#ffebe9}.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:.6em 1em;min-width:9em}\
.card b{display:block;font-size:1.4em}";

/// Renders the report.
pub fn render(r: &DemoReport) -> Result<String, ExperimentError> {
    let d = r.day;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(out, "<title>gridledger demo report</title><style>{CSS}</style></head><body>");
    let _ = writeln!(
        out,
        "<h1>gridledger: a day of peer-to-peer energy trading</h1><p class=\"lead\">Day {} of the year, seed {}, {} participants \
         ({} prosumers, {} consumers), 30-minute slots; primary chain: {}. Weather: {}. Loads: {}.</p>",
        d.config.day,
        d.config.seed,
        d.participants.len(),
        d.participants.iter().filter(|p| p.spec.prosumer).count(),
        d.participants.iter().filter(|p| !p.spec.prosumer).count(),
        esc(&r.primary),
        esc(d.weather),
        esc(d.loads)
    );

    // Verdicts first: what an operator checks before anything else.
    out.push_str("<h2 id=\"verdicts\">Conservation checks</h2><ul class=\"verdicts\">");
    for v in verdicts(r) {
        let _ = write!(
            out,
            "<li id=\"{}\" class=\"{}\"><b>{}</b> {} — {}</li>",
            v.id,
            if v.ok { "ok" } else { "fail" },
            if v.ok { "PASS" } else { "FAIL" },
            esc(&v.what),
            esc(&v.detail)
        );
    }
    out.push_str("</ul>\n");

    // Day summary.
    out.push_str("<h2 id=\"day\">The trading day</h2><div class=\"cards\">");
    for (k, v) in [
        ("trades", d.trades_count.to_string()),
        ("settled", d.settled_trades.to_string()),
        ("energy traded (kWh)", kwh(d.energy_traded_wh)),
        ("paid to sellers (coin)", coin(d.revenue_minor)),
    ] {
        let _ = write!(out, "<div class=\"card\"><b>{}</b>{}</div>", esc(&v), esc(k));
    }
    out.push_str("</div>\n");
    table(
        &mut out,
        "day-summary",
        "Day summary (gridledger beside the thesis' §3.5.4 day)",
        &["quantity", "gridledger", "thesis"],
        &[
            vec!["trades".into(), d.trades_count.to_string(), d.thesis.trades.to_string()],
            vec!["settled trades".into(), d.settled_trades.to_string(), "—".into()],
            vec!["energy traded (kWh)".into(), kwh(d.energy_traded_wh), kwh(d.thesis.energy_wh)],
            vec![
                "revenue (coin / $)".into(),
                coin(d.revenue_minor),
                format!("{}.{:02}", d.thesis.revenue_usd_cents / 100, d.thesis.revenue_usd_cents % 100),
            ],
            vec!["processing time (ms)".into(), d.processing_ms.to_string(), d.thesis.processing_ms.to_string()],
        ],
    );

    // Energy per slot.
    let h = |s: usize| s as f64 * 0.5;
    let traded = traded_per_slot(d);
    let pts = |v: &[u64]| v.iter().enumerate().map(|(s, &x)| (h(s), x as f64)).collect::<Vec<_>>();
    let svg = render_plain(
        &ChartSpec {
            title: "Supply, demand and traded energy per slot".into(),
            x_label: "time of day (h)".into(),
            y_label: "energy per slot (Wh)".into(),
            ..Default::default()
        },
        &[
            Series::new("supply (surplus of prosumers)", pts(&d.supply_wh_per_slot)),
            Series::new("demand (deficit of participants)", pts(&d.demand_wh_per_slot)),
            Series::new("traded peer-to-peer", pts(&traded)),
        ],
        (900, 380),
    )?;
    figure(&mut out, "chart-energy", "Supply, demand and traded energy over the day, Wh per 30-minute slot.", &svg);
    let rows: Vec<Vec<String>> = (0..d.trades_per_slot.len())
        .filter(|&s| d.supply_wh_per_slot[s] + d.demand_wh_per_slot[s] + traded[s] > 0 || d.trades_per_slot[s] > 0)
        .map(|s| {
            vec![
                format!("{:02}:{:02}", s / 2, (s % 2) * 30),
                d.supply_wh_per_slot[s].to_string(),
                d.demand_wh_per_slot[s].to_string(),
                traded[s].to_string(),
                d.trades_per_slot[s].to_string(),
            ]
        })
        .collect();
    out.push_str("<details><summary>Per-slot numbers</summary>");
    table(&mut out, "slots", "Per slot", &["slot", "supply (Wh)", "demand (Wh)", "traded (Wh)", "trades"], &rows);
    out.push_str("</details>\n");

    // Prices.
    let prices = clearing_prices(d);
    let to_coin = |m: u128| m as f64 / MINOR_PER_COIN as f64;
    let series = |f: fn(&(u128, u128, u128)) -> u128| -> Vec<(f64, f64)> {
        prices.iter().enumerate().filter_map(|(s, p)| p.as_ref().map(|p| (h(s), to_coin(f(p))))).collect()
    };
    let svg = render_plain(
        &ChartSpec {
            title: "Clearing prices".into(),
            x_label: "time of day (h)".into(),
            y_label: "price (coin/kWh)".into(),
            y_tight: true,
            ..Default::default()
        },
        &[
            Series::new("volume-weighted mean", series(|p| p.1)),
            Series::new("lowest", series(|p| p.0)),
            Series::new("highest", series(|p| p.2)),
        ],
        (900, 340),
    )?;
    figure(&mut out, "chart-prices", "Clearing prices of the slots with trades, coin per kWh.", &svg);
    let rows: Vec<Vec<String>> = prices
        .iter()
        .enumerate()
        .filter_map(|(s, p)| {
            p.map(|(lo, mean, hi)| vec![format!("{:02}:{:02}", s / 2, (s % 2) * 30), price(lo), price(mean), price(hi)])
        })
        .collect();
    out.push_str("<details><summary>Per-slot prices</summary>");
    table(
        &mut out,
        "prices",
        "Clearing prices (coin/kWh)",
        &["slot", "lowest", "volume-weighted mean", "highest"],
        &rows,
    );
    out.push_str("</details>\n");

    // Participants.
    let rows: Vec<Vec<String>> = d
        .participants
        .iter()
        .map(|p| {
            let change = if p.balance_end >= p.balance_start {
                format!("+{}", coin(p.balance_end - p.balance_start))
            } else {
                format!("-{}", coin(p.balance_start - p.balance_end))
            };
            vec![
                p.spec.number.to_string(),
                if p.spec.prosumer { "prosumer" } else { "consumer" }.into(),
                kwh(p.load_wh),
                kwh(p.generation_wh),
                kwh(p.sold_wh),
                kwh(p.bought_wh),
                coin(p.balance_start),
                coin(p.balance_end),
                change,
                p.reputation.to_string(),
            ]
        })
        .collect();
    out.push_str("<h2 id=\"participants-h\">Participants</h2>");
    table(
        &mut out,
        "participants",
        "Each participant's energy (kWh) and balance (coin)",
        &["#", "kind", "load", "generation", "sold", "bought", "balance start", "balance end", "change", "reputation"],
        &rows,
    );

    // Settlement latency.
    out.push_str("<h2 id=\"latency-h\">Settlement latency</h2>");
    let hist = latency_histogram(&d.settlement_latency.per_batch_ms);
    let svg = render_plain(
        &ChartSpec {
            title: "Settlement latency of the batches".into(),
            x_label: "latency up to (s, block clock)".into(),
            y_label: "batches (count)".into(),
            kind: ChartKind::Bars,
            ..Default::default()
        },
        &[Series::new("batches", hist.iter().map(|&(s, n)| (s as f64, n as f64)).collect())],
        (900, 320),
    )?;
    figure(&mut out, "chart-latency", "Distribution of batch settlement latency (block clock).", &svg);
    let mut sorted = d.settlement_latency.per_batch_ms.clone();
    sorted.sort_unstable();
    let pct = |p: usize| sorted.get((sorted.len().saturating_sub(1)) * p / 100).copied().unwrap_or(0);
    table(
        &mut out,
        "latency",
        "Settlement latency (ms, block clock)",
        &["batches", "mean", "p50", "p90", "max"],
        &[vec![
            d.settlement_latency.batches.to_string(),
            d.settlement_latency.mean_ms.to_string(),
            pct(50).to_string(),
            pct(90).to_string(),
            d.settlement_latency.max_ms.to_string(),
        ]],
    );

    // Chains.
    out.push_str("<h2 id=\"chains-h\">Chains</h2>");
    let mut rows = vec![
        vec![
            format!("primary ({})", r.primary),
            d.chains.primary_blocks.to_string(),
            d.chains.primary_txs.to_string(),
            d.gas.primary.to_string(),
        ],
        vec![
            "secondary (executor and validators)".into(),
            d.chains.secondary_blocks.to_string(),
            d.chains.secondary_txs.to_string(),
            d.gas.secondary.to_string(),
        ],
    ];
    if let Some(c) = &r.chain {
        rows.insert(
            0,
            vec![
                "demo chain (single validator, transfers)".into(),
                c.blocks.to_string(),
                c.transfers_committed.to_string(),
                c.gas_used.to_string(),
            ],
        );
    }
    table(
        &mut out,
        "chains",
        "Blocks, transactions and gas per chain",
        &["chain", "blocks", "transactions", "gas"],
        &rows,
    );

    // Channel.
    if let Some(c) = &r.channel {
        out.push_str("<h2 id=\"channel-h\">Credit-note state channel</h2>");
        out.push_str(
            "<p>A merchant and two prosumers: prosumer 0 buys on a credit note, prosumer 1 on a deposit; \
             every trade is co-signed off chain, only the channel's setup and close touch the chain.</p>",
        );
        table(
            &mut out,
            "channel",
            "Channel trades and on-chain footprint",
            &["quantity", "value"],
            &[
                vec!["trades co-signed off chain".into(), c.trades_off_chain.to_string()],
                vec!["final state counter".into(), c.final_counter.to_string()],
                vec![
                    "final balances (minor units)".into(),
                    format!("{} / {}", c.final_balances[0], c.final_balances[1]),
                ],
                vec!["energy delivered (Wh)".into(), format!("{} / {}", c.energy_wh[0], c.energy_wh[1])],
                vec!["debit billed to the credit user (minor units)".into(), c.billed_to_credit_user.to_string()],
                vec!["on-chain transactions".into(), c.on_chain_txs.to_string()],
                vec!["on-chain gas".into(), c.on_chain_gas.to_string()],
                vec!["credit ledger imbalance".into(), c.credit_ledger_imbalance.to_string()],
            ],
        );
    }
    if let Some(x) = &r.xchain {
        out.push_str("<h2 id=\"xchain-h\">Cross-chain: blockchain of blockchains</h2>");
        out.push_str(
            "<p>Two communities on different external chains exchange tokens through the BoB (CCTE), \
             one game item migrates between the chains (CCDI's S_SDM), and coin is paid out of the \
             group's threshold account.</p>",
        );
        let rows: Vec<Vec<String>> = x.rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        table(&mut out, "xchain", "Cross-chain token exchange and data migration", &["quantity", "value"], &rows);
    }
    if let Some(m) = &r.market {
        out.push_str("<h2 id=\"market-h\">P2P market clearing</h2>");
        out.push_str(
            "<p>One clearing interval: prosumers' requests are committed on chain, the primal-dual \
             iteration runs in software enclaves under TEAR-DO (these offer <strong>no hardware \
             isolation</strong>), Byzantine hosts are detected and their subproblems recomputed; \
             prices are the nodal prices of the central optimum.</p>",
        );
        let rows: Vec<Vec<String>> = m.rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        table(&mut out, "market", "Market clearing by enclaves under TEAR-DO", &["quantity", "value"], &rows);
        let prices: Vec<Vec<String>> =
            m.bus_prices.iter().map(|(b, p)| vec![b.to_string(), format!("{p:.4}")]).collect();
        table(&mut out, "market-prices", "Nodal prices at the prosumers' buses", &["bus", "$/kWh"], &prices);
    }
    if let Some(f) = &r.forecast {
        out.push_str("<h2 id=\"forecast-h\">Federated load forecasting</h2>");
        out.push_str(
            "<p>Households train a temporal convolutional network together through CTP-FL: each \
             model is split into fragments, coded and committed to one chain per fragment, filtered \
             by the chains' dual consensus and aggregated with the trimmed mean inside (software) \
             enclaves, with Byzantine clients and nodes taking part. The global model then forecasts \
             the next day hour by hour, each prediction fed back as input.</p>",
        );
        let rows: Vec<Vec<String>> = f.rows.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
        table(&mut out, "forecast-summary", "Federated training through CTP-FL", &["quantity", "value"], &rows);
        let pts = |pick: fn(&(u64, u64)) -> u64| -> Vec<(f64, f64)> {
            f.hours.iter().enumerate().map(|(h, x)| (h as f64, pick(x) as f64)).collect()
        };
        let svg = render_plain(
            &ChartSpec {
                title: format!("Household {}: next-day forecast and actual load", f.client),
                x_label: "hour of the day".into(),
                y_label: "load (Wh)".into(),
                ..Default::default()
            },
            &[Series::new("forecast", pts(|x| x.0)), Series::new("actual", pts(|x| x.1))],
            (900, 340),
        )?;
        figure(&mut out, "chart-forecast", "Next-day load forecast beside the actual load, Wh per hour.", &svg);
        let hours: Vec<Vec<String>> = f
            .hours
            .iter()
            .enumerate()
            .map(|(h, (p, a))| vec![format!("{h:02}:00"), p.to_string(), a.to_string()])
            .collect();
        table(
            &mut out,
            "forecast",
            "Next-day forecast beside the actual load",
            &["hour", "forecast (Wh)", "actual (Wh)"],
            &hours,
        );
    }
    if let Some(c) = &r.chain {
        out.push_str("<h2 id=\"demo-chain-h\">Demo chain</h2>");
        table(
            &mut out,
            "demo-chain",
            "Signed transfers on the embedded single-validator chain",
            &["quantity", "value"],
            &[
                vec!["accounts".into(), c.accounts.to_string()],
                vec!["transfers committed".into(), c.transfers_committed.to_string()],
                vec!["blocks".into(), c.blocks.to_string()],
                vec!["gas used".into(), c.gas_used.to_string()],
                vec!["fees paid to the validator (minor units)".into(), c.fees_paid.to_string()],
                vec!["Merkle proof verified".into(), c.merkle_proof_verified.to_string()],
            ],
        );
    }
    out.push_str("<p class=\"lead\">Generated by <code>gridledger demo</code>. Self-contained: no scripts, no external files.</p></body></html>\n");
    Ok(out)
}

/// Writes `<dir>/report.html` (creating `dir`) and returns its path.
pub fn write_report(dir: &std::path::Path, r: &DemoReport) -> Result<std::path::PathBuf, ExperimentError> {
    write_report_as(dir, "report.html", r)
}

/// Writes `<dir>/<name>` (creating `dir`) and returns its path.
pub fn write_report_as(
    dir: &std::path::Path,
    name: &str,
    r: &DemoReport,
) -> Result<std::path::PathBuf, ExperimentError> {
    std::fs::create_dir_all(dir).map_err(|err| ExperimentError::Io { path: dir.to_path_buf(), err })?;
    let path = dir.join(name);
    crate::write_atomic(&path, render(r)?.as_bytes())?;
    Ok(path)
}
