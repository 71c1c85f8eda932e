//! Attacks on the forecaster's data path (issue 16). Every test here FAILS
//! on the code it was written against and is `#[ignore]`d with the one-line
//! finding; run them with
//! `cargo test -p gridledger-forecast --test attack -- --ignored`.

use gridledger_forecast::sgsc::read_hourly;
use gridledger_forecast::ForecastError;

fn csv(body: &str) -> String {
    format!("CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n{body}")
}

/// Finding 5 (SGSC loader, panic on outside input): the year is parsed as
/// any `i64` and fed to `days_from_civil(..) * 1440 + ..` unchecked.
/// Expected: `Err(ForecastError::Csv { line: 2, .. })` for an absurd year.
/// Observed: debug builds panic with "attempt to multiply with overflow"
/// (release builds wrap to some other hour).
#[test]
#[ignore = "attack: SGSC loader overflows (panics in debug) on a huge READING_DATETIME year"]
fn huge_year_is_a_typed_csv_error() {
    let body = csv("1,99999999999999999-01-01 00:30:00,0.1\n1,99999999999999999-01-01 01:00:00,0.1");
    let r = std::panic::catch_unwind(|| read_hourly(body.as_bytes()));
    assert!(
        matches!(r, Ok(Err(ForecastError::Csv { line: 2, .. }))),
        "want Csv error on line 2, got {:?}",
        r.map_err(|_| "panic")
    );
}

/// Finding 6 (SGSC loader, invalid dates accepted): only `1..=31` is
/// checked for the day, so `2013-02-31` is read as 3 March and its readings
/// are merged into that day's hours (or refused as "more than two readings"
/// when 3 March is also present — blaming the wrong line).
/// Expected: `Err(ForecastError::Csv { line: 2, .. })` — no such date.
/// Observed: `Ok`, one hour on 3 March.
#[test]
#[ignore = "attack: SGSC loader accepts impossible dates (2013-02-31 becomes 3 March)"]
fn impossible_date_is_refused() {
    let body = csv("1,2013-02-31 00:30:00,0.1\n1,2013-02-31 01:00:00,0.1");
    let r = read_hourly(body.as_bytes());
    assert!(matches!(r, Err(ForecastError::Csv { line: 2, .. })), "got {r:?}");
}
