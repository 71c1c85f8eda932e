//! `gridledger demo` writes a self-contained report.html whose numbers are
//! the run's: parsed with a real HTML parser and compared with the JSON
//! summary the same run printed (`--json`).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gridledger");

fn cell_rows(page: &str, id: &str) -> Vec<Vec<String>> {
    let dom = tl::parse(page, tl::ParserOptions::default()).unwrap();
    let p = dom.parser();
    let table = dom.get_element_by_id(id).unwrap_or_else(|| panic!("table #{id}")).get(p).unwrap().outer_html(p);
    let sub = tl::parse(&table, tl::ParserOptions::default()).unwrap();
    let sp = sub.parser();
    sub.query_selector("tr")
        .unwrap()
        .map(|tr| {
            let inner = tr.get(sp).unwrap().inner_html(sp).to_string();
            let row = tl::parse(&inner, tl::ParserOptions::default()).unwrap();
            let rp = row.parser();
            row.query_selector("td").unwrap().map(|td| td.get(rp).unwrap().inner_text(rp).trim().to_string()).collect()
        })
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

fn value<'a>(rows: &'a [Vec<String>], label: &str) -> &'a str {
    &rows.iter().find(|r| r[0] == label).unwrap_or_else(|| panic!("row {label}"))[1]
}

#[test]
fn demo_report_html_matches_the_runs_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["demo", "--json", "--report-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&stdout).expect("demo --json prints one JSON document");
    let (summary, channel, day) = (&doc["ledger"], &doc["channel"], &doc["ior_day"]);
    assert!(summary.get("transfers_committed").is_some(), "chain summary: {summary}");
    assert!(channel.get("trades_off_chain").is_some(), "channel summary: {channel}");
    assert!(day.get("trades_count").is_some(), "day report: {day}");
    let path = dir.path().join("report.html");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&path.display().to_string()), "prints the report's path");
    let page = std::fs::read_to_string(&path).unwrap();
    let dom = tl::parse(&page, tl::ParserOptions::default()).unwrap();
    assert_eq!(dom.query_selector("script").unwrap().count(), 0, "no scripts");
    assert_eq!(dom.query_selector("img").unwrap().count(), 0, "charts are inline SVG");
    for id in ["chart-energy", "chart-prices", "chart-latency"] {
        let fig = dom.get_element_by_id(id).unwrap_or_else(|| panic!("#{id}")).get(dom.parser()).unwrap();
        assert!(fig.inner_html(dom.parser()).contains("<svg"));
    }

    let chain = cell_rows(&page, "demo-chain");
    assert_eq!(value(&chain, "transfers committed"), summary["transfers_committed"].to_string());
    assert_eq!(value(&chain, "blocks"), summary["blocks"].to_string());
    assert_eq!(value(&chain, "gas used"), summary["gas_used"].to_string());

    let ch = cell_rows(&page, "channel");
    assert_eq!(value(&ch, "trades co-signed off chain"), channel["trades_off_chain"].to_string());
    assert_eq!(value(&ch, "final state counter"), channel["final_counter"].to_string());
    assert_eq!(value(&ch, "credit ledger imbalance"), channel["credit_ledger_imbalance"].to_string());
    assert!(value(&ch, "on-chain transactions").parse::<u64>().unwrap() > 0);

    let s = cell_rows(&page, "day-summary");
    assert_eq!(value(&s, "trades"), day["trades_count"].to_string());
    assert_eq!(value(&s, "settled trades"), day["settled_trades"].to_string());
    assert_eq!(value(&s, "revenue (coin / $)"), day["revenue_coins"].as_str().unwrap());
    let wh = day["energy_traded_wh"].as_u64().unwrap();
    assert_eq!(value(&s, "energy traded (kWh)"), format!("{}.{:03}", wh / 1000, wh % 1000));

    let parts = cell_rows(&page, "participants");
    let ps = day["participants"].as_array().unwrap();
    assert_eq!(parts.len(), ps.len());
    for (row, p) in parts.iter().zip(ps) {
        let number = if p["spec"].is_null() { &p["number"] } else { &p["spec"]["number"] };
        assert_eq!(row[0], number.to_string());
        let sold = p["sold_wh"].as_u64().unwrap();
        assert_eq!(row[4], format!("{}.{:03}", sold / 1000, sold % 1000));
    }
    let chains = cell_rows(&page, "chains");
    assert_eq!(chains[1][1], day["chains"]["primary_blocks"].to_string());
    assert_eq!(chains[2][2], day["chains"]["secondary_txs"].to_string());

    let market = &doc["market"];
    let m = cell_rows(&page, "market");
    assert_eq!(value(&m, "iterations"), market["iterations"].to_string());
    assert_eq!(value(&m, "welfare ($)"), format!("{:.4}", market["welfare_usd"].as_f64().unwrap()));
    assert_eq!(value(&m, "requests admitted"), market["admitted"].to_string());
    let prices = cell_rows(&page, "market-prices");
    assert_eq!(prices.len(), market["bus_prices"].as_array().unwrap().len());

    for id in [
        "verdict-supply",
        "verdict-coin",
        "verdict-energy",
        "verdict-credit",
        "verdict-market-welfare",
        "verdict-market-byzantine",
    ] {
        let li = dom.get_element_by_id(id).unwrap_or_else(|| panic!("#{id}")).get(dom.parser()).unwrap();
        assert!(li.inner_text(dom.parser()).trim().starts_with("PASS"), "#{id}");
    }
}

#[test]
fn demo_no_report_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN).args(["ior", "day", "--no-report", "--report-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("report.html").exists());
    let out = Command::new(BIN).args(["ior", "day", "--report-dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success());
    assert!(dir.path().join("report.html").exists());
    assert!(String::from_utf8_lossy(&out.stdout).contains("report.html"));
}

#[test]
fn experiment_run_writes_json_svg_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let md = dir.path().join("docs").join("results.md");
    let out = Command::new(BIN)
        .args(["experiment", "run", "ior-fig-3-8", "--quick", "--results-dir"])
        .arg(&results)
        .arg("--report")
        .arg(&md)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(results.join("ior-fig-3-8.json").exists() && results.join("ior-fig-3-8.svg").exists());
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("## ior-fig-3-8"));
    let show =
        Command::new(BIN).args(["experiment", "show", "ior-fig-3-8", "--results-dir"]).arg(&results).output().unwrap();
    assert!(show.status.success());
    assert!(String::from_utf8_lossy(&show.stdout).contains("ours beside the seed"));
}

#[test]
fn experiment_run_refuses_unknown_ids_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let md = dir.path().join("results.md");
    for args in [
        vec!["experiment", "run", "no-such-experiment"],
        vec!["experiment", "run"],
        vec!["experiment", "show", "no-such"],
    ] {
        let out =
            Command::new(BIN).args(&args).arg("--results-dir").arg(&results).arg("--report").arg(&md).output().unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"), "{args:?}");
    }
    assert!(!results.exists() && !md.exists());
}
