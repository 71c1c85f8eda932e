//! Attack round 4 on the forecaster's inputs (issue 16): the Smart Grid
//! Smart City loader. Each finding here was `#[ignore]`d until fixed;
//! both are fixed now and run with the suite
//! (`cargo test -p gridledger-forecast --test attack_r4`).

use gridledger_forecast::sgsc::read_hourly;

fn csv(body: &str) -> String {
    format!("CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n{body}")
}

/// FINDING 3 (bad input accepted: an absurd reading saturates to
/// `u64::MAX` Wh).
///
/// `read_hourly` parses `GENERAL_SUPPLY_KWH` as an `f64`, refuses only
/// non-finite and negative values, sums the hour's two readings in `f64`
/// and converts with `as u64`, which saturates. A row of `1e300` kWh (or
/// two of `1e308`, whose sum is infinite) is accepted, and the hour's
/// energy becomes `u64::MAX` Wh (18 446 744 073 709 551 615) with no error
/// — a household load of 1.8·10¹⁹ Wh in one hour then sets the client's
/// min–max scaler, flattening its whole normalised series to 0.
/// Expected: a reading whose energy does not fit (in Wh, in `u64`, or
/// beyond any plausible meter reading) is refused with its line.
/// Observed: `Ok`, with `u64::MAX` Wh for the hour.
/// Suggested fix: parse the kWh as a decimal into integer Wh (or mWh)
/// with checked arithmetic and a plausibility cap per half-hour; no
/// floating point for energy.
#[test]
fn absurd_reading_is_refused_not_saturated() {
    for v in ["1e300", "1e308"] {
        let body = csv(&format!("1,2013-01-01 00:30:00,{v}\n1,2013-01-01 01:00:00,{v}"));
        match read_hourly(body.as_bytes()) {
            Err(_) => {}
            Ok(h) => panic!("{v} kWh accepted: {:?}", h.get(&1)),
        }
    }
}

/// FINDING 4 (bad input accepted: timestamps with extra or ignored fields).
///
/// `parse_datetime` takes the first three `-` fields of the date and the
/// first two `:` fields of the time and ignores the rest: the seconds are
/// never read (`00:30:59`, `00:30:xx`), nor a fourth date field
/// (`2013-01-01-31`), nor a third time field followed by junk. A reading
/// stamped `00:30:59` is taken as the interval ending at `00:30`, and a
/// line whose timestamp is garbage after the minutes is paired into an
/// hour. The module promises "only real calendar dates" and refuses a
/// reading that is "not a 30-minute interval end".
/// Expected: each such line is refused with its line number (2).
/// Observed: all are accepted and form the hour.
/// Suggested fix: parse the exact layout `YYYY-MM-DD HH:MM[:SS]` (no extra
/// fields; seconds, when present, two digits and `00`).
#[test]
fn timestamps_with_ignored_fields_are_refused() {
    for first in ["2013-01-01 00:30:59", "2013-01-01 00:30:xx", "2013-01-01-31 00:30:00", "2013-01-01 00:30:00:junk"] {
        let body = csv(&format!("1,{first},0.1\n1,2013-01-01 01:00:00,0.1"));
        match read_hourly(body.as_bytes()) {
            Err(gridledger_forecast::ForecastError::Csv { line: 2, .. }) => {}
            other => panic!("timestamp {first:?}: {other:?}"),
        }
    }
}

/// Control for findings 3 and 4: the well-formed pair reads as one hour of
/// 200 Wh (so the refusals above are about the values and timestamps).
#[test]
fn control_well_formed_pair_reads() {
    let h = read_hourly(csv("1,2013-01-01 00:30:00,0.1\n1,2013-01-01 01:00:00,0.1").as_bytes()).unwrap();
    assert_eq!(h[&1].len(), 1);
    assert_eq!(h[&1][0].1, 200);
}
