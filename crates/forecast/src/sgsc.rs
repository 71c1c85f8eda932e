//! The Smart Grid Smart City customer-trial interval readings (the seed's
//! data set, §7.5.1): one CSV row per customer and 30-minute interval, in
//! the layout of the trial's `CD_INTERVAL_READING_ALL_NO_QUOTES.csv`:
//!
//! ```text
//! CUSTOMER_ID,READING_DATETIME,CALENDAR_KEY,EVENT_KEY,GENERAL_SUPPLY_KWH,CONTROLLED_LOAD_KWH,GROSS_GENERATION_KWH,NET_GENERATION_KWH,OTHER_KWH
//! 8170837,2013-01-01 00:30:00,...,0.129,...
//! ```
//!
//! Columns are found by name (order and extra columns do not matter; quotes
//! around fields are stripped). The reading at `HH:30` and the one at the
//! next `HH+1:00` form hour `HH`, and the hourly load is the hour's energy
//! in whole Wh (the two readings' sum; the seed "averages every two
//! consecutive samples", which differs by a factor 2 that the `[0, 1]`
//! normalisation removes). An hour with only one of its two readings is
//! dropped, not guessed, and a second reading of the same half-hour is
//! refused with its line (a malformed line anywhere in the file is
//! reported before it). Lines are capped at 4 KiB, the header too: a
//! longer line is refused after reading [`MAX_LINE`] + 1 bytes of it.
//! The readings are kept as one compact list (24 bytes each) and paired
//! at the end, and their number and the customers' are capped
//! ([`MAX_READINGS`], [`MAX_CUSTOMERS`]) with a typed error, so a hostile
//! file costs a small multiple of its size.

use crate::ForecastError;
use std::collections::BTreeMap;
use std::io::BufRead;

/// Longest line accepted.
pub const MAX_LINE: usize = 4096;

/// Hourly loads per customer: `(hour index since the Unix epoch, Wh)`, in time order.
pub type Hourly = BTreeMap<u64, Vec<(u64, u64)>>;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Howard Hinnant's algorithm: days since 1970-01-01.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in month `m` (1..=12) of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `n` ASCII digits exactly, as a number.
fn digits(s: &str, n: usize) -> Option<i64> {
    if s.len() != n || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Exactly `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (a `T` also
/// separates date and time; seconds, when present, `00`: readings end on a
/// whole minute) → minutes since the Unix epoch. No other field or
/// character is accepted. Only years 1..=9999 (four-digit meter
/// timestamps) and real calendar dates are accepted, so the arithmetic
/// below cannot overflow.
fn parse_datetime(s: &str) -> Option<i64> {
    let (date, time) = s.trim().split_once([' ', 'T'])?;
    let d: Vec<&str> = date.split('-').collect();
    let [y, m, day] = d[..] else {
        return None;
    };
    let (y, m, day) = (digits(y, 4)?, digits(m, 2)? as u32, digits(day, 2)? as u32);
    let t: Vec<&str> = time.split(':').collect();
    let (hh, mm) = match t[..] {
        [hh, mm] => (digits(hh, 2)?, digits(mm, 2)?),
        [hh, mm, ss] if digits(ss, 2)? == 0 => (digits(hh, 2)?, digits(mm, 2)?),
        _ => return None,
    };
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=days_in_month(y, m)).contains(&day)
        || !(0..24).contains(&hh)
        || !(0..60).contains(&mm)
    {
        return None;
    }
    Some(days_from_civil(y, m, day) * 1440 + hh * 60 + mm)
}

/// Largest half-hour reading accepted, in kWh: 100 kWh in 30 minutes is a
/// 200 kW draw, far beyond any household connection; a larger value is a
/// corrupt reading, not a load.
pub const MAX_READING_KWH: u64 = 100;

/// Millionths of a kWh (mWh) per kWh.
const MWH_PER_KWH: u64 = 1_000_000;

/// A plain decimal kWh reading (`digits[.digits]`, at most six decimals;
/// no sign, exponent or other character) → integer mWh, with checked
/// arithmetic and at most [`MAX_READING_KWH`]. `None` for anything else.
fn parse_kwh(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !all_digits(int) || !all_digits(frac) || frac.len() > 6 || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    let whole: u64 = int.parse().ok()?;
    if whole > MAX_READING_KWH {
        return None;
    }
    let frac_mwh: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse().ok()? };
    let mwh = whole.checked_mul(MWH_PER_KWH)?.checked_add(frac_mwh)?;
    (mwh <= MAX_READING_KWH * MWH_PER_KWH).then_some(mwh)
}

/// The next line of `input` (without its `\n` or `\r\n`), reading at
/// most [`MAX_LINE`] + 1 bytes of it: `None` at the end of the input.
fn next_line(input: &mut impl BufRead, buf: &mut Vec<u8>, n: usize) -> Result<Option<String>, ForecastError> {
    use std::io::Read;
    buf.clear();
    let got = input
        .by_ref()
        .take(MAX_LINE as u64 + 2)
        .read_until(b'\n', buf)
        .map_err(|e| ForecastError::Csv { line: n, reason: e.to_string() })?;
    if got == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    if buf.len() > MAX_LINE {
        return Err(ForecastError::Csv { line: n, reason: "line too long".into() });
    }
    String::from_utf8(std::mem::take(buf))
        .map(Some)
        .map_err(|_| ForecastError::Csv { line: n, reason: "not UTF-8".into() })
}

/// Most readings (data lines) [`read_hourly`] accepts: 64 Mi, about
/// 1.5 GiB of accumulation (24 bytes a reading); a larger file is refused
/// with [`ForecastError::TooLarge`] (split it, or use [`read_hourly_limited`]).
pub const MAX_READINGS: usize = 64 << 20;
/// Most customers [`read_hourly`] accepts (the trial had far fewer).
pub const MAX_CUSTOMERS: usize = 1_000_000;

/// Read hourly loads from the CSV layout above, with the default caps
/// ([`MAX_READINGS`], [`MAX_CUSTOMERS`]).
pub fn read_hourly(input: impl BufRead) -> Result<Hourly, ForecastError> {
    read_hourly_limited(input, MAX_READINGS, MAX_CUSTOMERS)
}

/// One half-hour reading as the loader keeps it until the end: 24 bytes.
#[derive(Clone, Copy)]
struct Reading {
    customer: u64,
    /// Hours since the Unix epoch (years up to 9999 fit 27 bits).
    hour: u32,
    /// mWh (at most 10^8 < 2^31) with bit 31 set for the `HH+1:00` half.
    value: u32,
    /// The line it was read from (for a duplicate's error).
    line: u64,
}

const SECOND_HALF: u32 = 1 << 31;

/// [`read_hourly`] with explicit caps on the readings (data lines) and
/// distinct customers: past either, a typed [`ForecastError::TooLarge`].
/// Memory: one 24-byte [`Reading`] per data line (a line is at least ~20
/// bytes), then the result; no per-customer map until the end.
pub fn read_hourly_limited(
    mut input: impl BufRead,
    max_readings: usize,
    max_customers: usize,
) -> Result<Hourly, ForecastError> {
    let mut buf = Vec::new();
    let header = match next_line(&mut input, &mut buf, 1)? {
        Some(l) => l,
        None => return Err(ForecastError::Csv { line: 1, reason: "empty file".into() }),
    };
    let cols: Vec<String> = header.split(',').map(|c| c.trim().trim_matches('"').to_ascii_uppercase()).collect();
    let find = |name: &str| {
        cols.iter().position(|c| c == name).ok_or(ForecastError::Csv { line: 1, reason: format!("no column {name}") })
    };
    let (ci, ti, vi) = (find("CUSTOMER_ID")?, find("READING_DATETIME")?, find("GENERAL_SUPPLY_KWH")?);
    let mut acc: Vec<Reading> = Vec::new();
    let mut n = 1;
    loop {
        n += 1;
        let Some(line) = next_line(&mut input, &mut buf, n)? else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        if acc.len() >= max_readings {
            return Err(ForecastError::TooLarge { what: "readings", limit: max_readings });
        }
        let f: Vec<&str> = line.split(',').map(|x| x.trim().trim_matches('"')).collect();
        let field = |j: usize| f.get(j).copied().ok_or(ForecastError::Csv { line: n, reason: "too few fields".into() });
        let customer: u64 =
            field(ci)?.parse().map_err(|_| ForecastError::Csv { line: n, reason: "bad CUSTOMER_ID".into() })?;
        let minutes =
            parse_datetime(field(ti)?).ok_or(ForecastError::Csv { line: n, reason: "bad READING_DATETIME".into() })?;
        let mwh = parse_kwh(field(vi)?).ok_or_else(|| ForecastError::Csv {
            line: n,
            reason: format!(
                "GENERAL_SUPPLY_KWH not a plain non-negative decimal of at most six decimals and {MAX_READING_KWH} kWh"
            ),
        })?;
        if minutes % 30 != 0 || minutes < 30 {
            return Err(ForecastError::Csv { line: n, reason: "not a 30-minute interval end".into() });
        }
        // The interval ending at HH:30 and the one ending at HH+1:00 are
        // hour HH. Years up to 9999 and readings up to 10^8 mWh fit.
        let hour = u32::try_from((minutes - 30) / 60)
            .map_err(|_| ForecastError::Csv { line: n, reason: "bad READING_DATETIME".into() })?;
        let half = if minutes % 60 == 30 { 0 } else { SECOND_HALF };
        acc.push(Reading { customer, hour, value: mwh as u32 | half, line: n as u64 });
    }
    acc.shrink_to_fit();
    // In place: by customer, hour, half, then line.
    acc.sort_unstable_by_key(|r| (r.customer, r.hour, r.value & SECOND_HALF, r.line));
    // A second reading of a half-hour: refused with the earliest such line.
    let dup = acc
        .windows(2)
        .filter(|w| {
            (w[0].customer, w[0].hour, w[0].value & SECOND_HALF) == (w[1].customer, w[1].hour, w[1].value & SECOND_HALF)
        })
        .map(|w| w[1].line)
        .min();
    if let Some(line) = dup {
        return Err(ForecastError::Csv {
            line: line as usize,
            reason: "a second reading of the same half-hour".into(),
        });
    }
    let customers = acc.windows(2).filter(|w| w[0].customer != w[1].customer).count() + usize::from(!acc.is_empty());
    if customers > max_customers {
        return Err(ForecastError::TooLarge { what: "customers", limit: max_customers });
    }
    let mut out: Vec<(u64, Vec<(u64, u64)>)> = Vec::with_capacity(customers);
    for group in acc.chunk_by(|a, b| a.customer == b.customer) {
        // The hour's energy: both half-hours' mWh, rounded to Wh (half up).
        let hours: Vec<(u64, u64)> = group
            .chunk_by(|a, b| a.hour == b.hour)
            .filter(|h| h.len() == 2)
            .map(|h| {
                let mwh = u64::from(h[0].value & !SECOND_HALF) + u64::from(h[1].value & !SECOND_HALF);
                (u64::from(h[0].hour), (mwh + 500) / 1000)
            })
            .collect();
        out.push((group[0].customer, hours));
    }
    drop(acc);
    // Already sorted by customer: the map is built from it.
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "CUSTOMER_ID,READING_DATETIME,CALENDAR_KEY,EVENT_KEY,GENERAL_SUPPLY_KWH,CONTROLLED_LOAD_KWH,GROSS_GENERATION_KWH,NET_GENERATION_KWH,OTHER_KWH
8170837,2013-01-01 00:30:00,1,0,0.129,0,0,0,0
8170837,2013-01-01 01:00:00,1,0,0.131,0,0,0,0
8170837,2013-01-01 01:30:00,1,0,0.2,0,0,0,0
8170837,2013-01-01 02:00:00,1,0,0.25,0,0,0,0
\"8804804\",\"2013-01-01 00:30:00\",1,0,\"0.5\",0,0,0,0
8804804,2013-01-01 01:00:00,1,0,0.7,0,0,0,0
8804804,2013-01-01 01:30:00,1,0,0.4,0,0,0,0
";

    #[test]
    fn half_hours_pair_into_hours_per_customer() {
        let h = read_hourly(SAMPLE.as_bytes()).unwrap();
        let base = (days_from_civil(2013, 1, 1) * 24) as u64;
        assert_eq!(h[&8170837], vec![(base, 260), (base + 1, 450)]);
        // The 01:30 reading has no partner: that hour is dropped.
        assert_eq!(h[&8804804], vec![(base, 1200)]);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2013, 4, 1) - days_from_civil(2013, 1, 1), 90);
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let bad =
            |body: &str| read_hourly(format!("CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n{body}").as_bytes());
        assert_eq!(read_hourly("".as_bytes()), Err(ForecastError::Csv { line: 1, reason: "empty file".into() }));
        assert!(matches!(read_hourly("A,B\n".as_bytes()), Err(ForecastError::Csv { line: 1, .. })));
        assert!(matches!(bad("x,2013-01-01 00:30:00,1"), Err(ForecastError::Csv { line: 2, .. })));
        assert!(matches!(bad("1,2013-13-01 00:30:00,1"), Err(ForecastError::Csv { line: 2, .. })));
        assert!(matches!(bad("1,2013-01-01 00:30:00,-1"), Err(ForecastError::Csv { line: 2, .. })));
        assert!(matches!(bad("1,2013-01-01 00:30:00,NaN"), Err(ForecastError::Csv { line: 2, .. })));
        assert!(matches!(bad("1,2013-01-01 00:20:00,1"), Err(ForecastError::Csv { line: 2, .. })));
        assert!(matches!(bad("1,2013-01-01 00:30:00"), Err(ForecastError::Csv { line: 2, .. })));
        let three = "1,2013-01-01 00:30:00,1\n1,2013-01-01 01:00:00,1\n1,2013-01-01 01:00:00,1";
        assert!(matches!(bad(three), Err(ForecastError::Csv { line: 4, .. })));
        let twice = "1,2013-01-01 00:30:00,1\n1,2013-01-01 00:30:00,1";
        assert!(matches!(bad(twice), Err(ForecastError::Csv { line: 3, .. })));
        // Exactly MAX_LINE bytes is accepted as a line (then refused for its
        // content), one more is too long; CRLF endings are stripped.
        let at = format!("1,2013-01-01 00:30:00,1{}", " ".repeat(MAX_LINE - 23));
        assert_eq!(at.len(), MAX_LINE);
        assert!(bad(&format!("{at}\r\n1,2013-01-01 01:00:00,1")).is_ok());
        assert!(
            matches!(bad(&format!("{at} ")), Err(ForecastError::Csv { line: 2, ref reason }) if reason == "line too long")
        );
        let long = format!("1,2013-01-01 00:30:00,1,{}", "9".repeat(MAX_LINE));
        assert!(matches!(bad(&long), Err(ForecastError::Csv { line: 2, .. })));
    }
}
