//! docs/results.md from the JSON files, and the demo's HTML report parsed
//! with a real HTML parser.

use gridledger_experiments::html::{self, ChainSection, ChannelSection, DemoReport};
use gridledger_experiments::markdown;
use gridledger_experiments::{find, run_one, write_result, Progress, RunCtx};
use gridledger_rollup::demo::{coins_string, run_day, DayConfig};

#[test]
fn markdown_report_sets_ours_beside_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let e = find("ior-fig-3-8").unwrap();
    let r = run_one(e.as_ref(), &RunCtx { quick: true, progress: Progress::hidden() }).unwrap();
    write_result(dir.path(), &r).unwrap();
    let md = markdown::report(dir.path(), "../results").unwrap();
    assert!(md.contains("## ior-fig-3-8"));
    assert!(md.contains("![ior-fig-3-8 chart](../results/ior-fig-3-8.svg)"));
    assert!(md.contains("**Ours (gridledger)**") && md.contains("**Seed**") && md.contains("ours / seed"));
    assert!(md.contains(&r.why_differ), "the prose from the source");
    assert!(md.contains(&format!("| trades | {} | 194 |", r.raw["trades"])));
    // Experiments without results are listed, not dropped.
    assert!(md.contains("| ior-fig-3-5 | | not run | |"));
}

fn text(dom: &tl::VDom, node: &tl::Node) -> String {
    node.inner_text(dom.parser()).trim().to_string()
}

/// The cells of table `id`, row by row.
fn cells(dom: &tl::VDom, id: &str) -> Vec<Vec<String>> {
    let p = dom.parser();
    let table = dom.get_element_by_id(id).unwrap_or_else(|| panic!("table #{id}")).get(p).unwrap();
    let html = table.outer_html(p);
    let sub = tl::parse(&html, tl::ParserOptions::default()).unwrap();
    let sp = sub.parser();
    let rows: Vec<Vec<String>> = sub
        .query_selector("tr")
        .unwrap()
        .map(|tr| {
            let tr = tr.get(sp).unwrap();
            let inner = tr.inner_html(sp);
            let row = tl::parse(&inner, tl::ParserOptions::default()).unwrap();
            let rp = row.parser();
            let out: Vec<String> =
                row.query_selector("td").unwrap().map(|td| text(&row, td.get(rp).unwrap())).collect();
            out
        })
        .filter(|r: &Vec<String>| !r.is_empty()) // the header row has only <th>
        .collect();
    rows
}

#[test]
fn html_report_has_every_chart_and_table_with_the_runs_numbers() {
    let day = run_day(DayConfig::default()).unwrap();
    let chain = ChainSection {
        accounts: 10,
        transfers_committed: 500,
        blocks: 7,
        gas_used: 10_500_000,
        fees_paid: 500,
        supply_conserved: true,
        merkle_proof_verified: true,
    };
    let channel = ChannelSection {
        trades_off_chain: 35,
        final_counter: 36,
        final_balances: [38_000, 32_000],
        energy_wh: [3_000, 1_000],
        billed_to_credit_user: 12_000,
        credit_ledger_imbalance: 0,
        on_chain_txs: 9,
        on_chain_gas: 2_300_000,
    };
    let report = DemoReport {
        chain: Some(chain),
        channel: Some(channel),
        xchain: None,
        market: None,
        forecast: None,
        day: &day,
        primary: "1 validator".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    let path = html::write_report(dir.path(), &report).unwrap();
    let page = std::fs::read_to_string(&path).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    let p = dom.parser();

    // Self-contained: no scripts, stylesheets or images from elsewhere.
    assert_eq!(dom.query_selector("script").unwrap().count(), 0);
    assert_eq!(dom.query_selector("link").unwrap().count(), 0);
    assert_eq!(dom.query_selector("img").unwrap().count(), 0);
    assert!(!page.contains("http://") || !page.contains("src=\"http"), "no external assets");

    for id in ["chart-energy", "chart-prices", "chart-latency"] {
        let fig = dom.get_element_by_id(id).unwrap_or_else(|| panic!("figure #{id}")).get(p).unwrap();
        assert!(fig.inner_html(p).contains("<svg"), "#{id} holds an inline SVG");
    }
    for id in ["day-summary", "slots", "prices", "participants", "latency", "chains", "channel", "demo-chain"] {
        assert!(dom.get_element_by_id(id).is_some(), "table #{id}");
    }

    let summary = cells(&dom, "day-summary");
    assert_eq!(summary[0], vec!["trades".to_string(), day.trades_count.to_string(), "194".into()]);
    assert_eq!(summary[1][1], day.settled_trades.to_string());
    assert_eq!(summary[2][1], html::kwh(day.energy_traded_wh));
    assert_eq!(summary[3][1], coins_string(day.revenue_minor));

    let parts = cells(&dom, "participants");
    assert_eq!(parts.len(), day.participants.len());
    for (row, p) in parts.iter().zip(&day.participants) {
        assert_eq!(row[0], p.spec.number.to_string());
        assert_eq!(row[4], html::kwh(p.sold_wh));
        assert_eq!(row[5], html::kwh(p.bought_wh));
        assert_eq!(row[6], coins_string(p.balance_start));
        assert_eq!(row[7], coins_string(p.balance_end));
    }

    let slots = cells(&dom, "slots");
    let traded: u64 = slots.iter().map(|r| r[3].parse::<u64>().unwrap()).sum();
    let trades: usize = slots.iter().map(|r| r[4].parse::<usize>().unwrap()).sum();
    assert_eq!(traded, day.energy_traded_wh);
    assert_eq!(trades, day.trades_count);

    let lat = cells(&dom, "latency");
    assert_eq!(lat[0][0], day.settlement_latency.batches.to_string());
    assert_eq!(lat[0][1], day.settlement_latency.mean_ms.to_string());
    assert_eq!(lat[0][4], day.settlement_latency.max_ms.to_string());

    let chains = cells(&dom, "chains");
    assert_eq!(chains.len(), 3);
    assert_eq!(chains[1][1], day.chains.primary_blocks.to_string());
    assert_eq!(chains[1][2], day.chains.primary_txs.to_string());
    assert_eq!(chains[2][2], day.chains.secondary_txs.to_string());
    assert!(day.chains.primary_blocks > 0 && day.chains.secondary_txs > 0);

    let ch = cells(&dom, "channel");
    assert_eq!(ch[0][1], "35");
    assert_eq!(ch[5][1], "9");

    // One verdict line per conservation check, all passing on this run.
    for id in ["verdict-supply", "verdict-coin", "verdict-energy", "verdict-credit"] {
        let li = dom.get_element_by_id(id).unwrap_or_else(|| panic!("#{id}")).get(p).unwrap();
        assert!(text(&dom, li).starts_with("PASS"), "#{id}: {}", text(&dom, li));
    }
}

#[test]
fn html_report_says_fail_when_a_check_fails() {
    let mut day = run_day(DayConfig::default()).unwrap();
    day.coins.chain_total_after += 1;
    let report = DemoReport {
        chain: None,
        channel: None,
        xchain: None,
        market: None,
        forecast: None,
        day: &day,
        primary: "1 validator".into(),
    };
    let page = html::render(&report).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    let li = dom.get_element_by_id("verdict-coin").unwrap().get(dom.parser()).unwrap();
    assert!(text(&dom, li).starts_with("FAIL"));
    assert!(dom.get_element_by_id("verdict-credit").is_none(), "no channel, no credit verdict");
    assert!(dom.get_element_by_id("channel").is_none());
}

#[test]
fn html_report_has_the_cross_chain_rows_when_given() {
    let day = run_day(DayConfig::default()).unwrap();
    let x = html::XchainSection {
        rows: vec![("exchange phases".into(), "2".into()), ("item migrated".into(), "hero from 101 to 102".into())],
    };
    let report = DemoReport {
        chain: None,
        channel: None,
        xchain: Some(x),
        market: None,
        forecast: None,
        day: &day,
        primary: "1 validator".into(),
    };
    let page = html::render(&report).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    let rows = cells(&dom, "xchain");
    assert_eq!(rows[0], vec!["exchange phases".to_string(), "2".to_string()]);
    assert_eq!(rows[1][1], "hero from 101 to 102");
}

#[test]
fn html_report_has_the_market_section_and_its_verdicts_when_given() {
    let day = run_day(DayConfig::default()).unwrap();
    let m = html::MarketSection {
        rows: vec![("welfare ($)".into(), "1.2345".into()), ("iterations".into(), "812".into())],
        bus_prices: vec![(7, 0.21), (12, 0.1834)],
        relative_gap: 2e-4,
        byzantine_hosts: vec![1, 4],
        detected: vec![1, 5],
    };
    let report = DemoReport {
        chain: None,
        channel: None,
        xchain: None,
        market: Some(m),
        forecast: None,
        day: &day,
        primary: "1 validator".into(),
    };
    let page = html::render(&report).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    let rows = cells(&dom, "market");
    assert_eq!(rows[0], vec!["welfare ($)".to_string(), "1.2345".to_string()]);
    assert_eq!(rows[1][1], "812");
    let prices = cells(&dom, "market-prices");
    assert_eq!(prices[1], vec!["12".to_string(), "0.1834".to_string()]);
    let li = |id: &str| text(&dom, dom.get_element_by_id(id).unwrap().get(dom.parser()).unwrap());
    assert!(li("verdict-market-welfare").starts_with("PASS"), "{}", li("verdict-market-welfare"));
    assert!(li("verdict-market-byzantine").starts_with("FAIL"), "honest host 5 accused");
}

#[test]
fn html_report_has_the_forecast_section_when_given() {
    let day = run_day(DayConfig::default()).unwrap();
    let hours: Vec<(u64, u64)> = (0..24).map(|h| (300 + 10 * h, 320 + 9 * h)).collect();
    let f = html::ForecastSection {
        rows: vec![("rounds".into(), "3".into()), ("validation RMSE".into(), "0.15".into())],
        client: 0,
        hours: hours.clone(),
    };
    let report = DemoReport {
        chain: None,
        channel: None,
        xchain: None,
        market: None,
        forecast: Some(f),
        day: &day,
        primary: "1 validator".into(),
    };
    let page = html::render(&report).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    assert_eq!(cells(&dom, "forecast-summary")[1], vec!["validation RMSE".to_string(), "0.15".to_string()]);
    let rows = cells(&dom, "forecast");
    // One row per hour: forecast beside actual.
    assert_eq!(rows.len(), 24);
    assert_eq!(rows[7], vec!["07:00".to_string(), "370".to_string(), "383".to_string()]);
    let fig = dom.get_element_by_id("chart-forecast").expect("figure").get(dom.parser()).unwrap();
    assert!(fig.inner_html(dom.parser()).contains("<svg"));
    // Without the section, none of it.
    let none = DemoReport { forecast: None, ..report };
    let page = html::render(&none).unwrap();
    assert!(!page.contains("forecast-summary") && !page.contains("chart-forecast"));
}
