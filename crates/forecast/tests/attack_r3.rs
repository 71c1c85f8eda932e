//! Attack round 3 on the forecaster's inputs (issue 16): the Smart Grid
//! Smart City loader. Each test here was a finding (ignored until fixed;
//! both are fixed now): `cargo test -p gridledger-forecast --test attack_r3`.

use gridledger_forecast::sgsc::{read_hourly, MAX_LINE};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::rc::Rc;

/// Counts the bytes its inner reader handed out.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn counted(r: impl Read) -> (impl BufRead, Rc<Cell<u64>>) {
    let read = Rc::new(Cell::new(0));
    (BufReader::new(Counting { inner: r, read: read.clone() }), read)
}

/// FINDING 4 (resource, SGSC loader). "Lines are capped at 4 KiB", but
/// `read_hourly` reads each line whole (`BufRead::lines`) and checks its
/// length afterwards, and the header line is not capped at all: a file
/// whose header (or any row) is one endless line without a newline is
/// read into memory to its end before anything is refused.
/// Expected: refused ("line too long", line 1 or 2) after reading about
/// `MAX_LINE` bytes of it. Observed: the loader consumes all 32 MiB of the
/// 32 MiB line first (and would take the whole of a multi-GB one into
/// RAM); for the header it is not refused at all but fails for lack of a
/// column, after reading everything.
/// Suggested fix: read with a bounded line reader (`take(MAX_LINE + 1)` on
/// `read_until(b'\n')`, or `BufRead::fill_buf` scanning), for the header
/// too.
#[test]
fn over_long_lines_are_refused_without_reading_them_whole() {
    const HUGE: u64 = 32 << 20;
    // A row of 32 MiB.
    let head = "CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n1,2013-01-01 00:30:00,";
    let (r, read) = counted(head.as_bytes().chain(std::io::repeat(b'9').take(HUGE)));
    let res = read_hourly(r);
    assert!(res.is_err());
    let row = read.get();
    // A header of 32 MiB.
    let (r, read) = counted(std::io::repeat(b'A').take(HUGE));
    let res_h = read_hourly(r);
    let header = read.get();
    assert!(
        row <= 1 << 20 && header <= 1 << 20,
        "bytes read before refusing: row {row}, header {header} (cap {MAX_LINE}); header result {res_h:?}"
    );
}

/// FINDING 5 (wrong data accepted, SGSC loader). A duplicated row — the
/// same customer and the same half-hour twice, a common export artefact —
/// is counted as the hour's second reading: with the `01:00` reading
/// missing and `00:30` duplicated, hour 0 is built from the `00:30` value
/// twice instead of being dropped ("an hour with only one of its two
/// readings is dropped, not guessed").
/// Expected: the duplicate is refused with the line (or ignored), and the
/// hour, which has only one distinct reading, is dropped. Observed: hour 0
/// = 2 × 0.129 kWh = 258 Wh, a guessed value.
/// Suggested fix: keep the two half-hours apart (e.g. a per-hour bitmask
/// of `:30` / `:00`) and refuse a second reading of the same interval.
#[test]
fn duplicated_half_hour_does_not_complete_an_hour() {
    let csv = "CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH
7,2013-01-01 00:30:00,0.129
7,2013-01-01 00:30:00,0.129
";
    match read_hourly(csv.as_bytes()) {
        Err(_) => {}
        Ok(h) => assert!(
            h.get(&7).is_none_or(|v| v.is_empty()),
            "an hour built from one half-hour read twice: {:?}",
            h.get(&7)
        ),
    }
}
