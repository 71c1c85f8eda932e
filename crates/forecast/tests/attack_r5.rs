//! Attack round 5 on the forecaster's inputs (issue 16): the Smart Grid
//! Smart City loader's memory on a hostile file. The finding was a failing
//! test; it is fixed and runs in the suite.

use gridledger_forecast::sgsc::read_hourly;
use std::cell::Cell;

/// Counts this thread's live and peak heap bytes.
struct Counting;

thread_local! {
    static LIVE: Cell<i64> = const { Cell::new(0) };
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn add(n: i64) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + n);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}

unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        add(l.size() as i64);
        std::alloc::System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        add(-(l.size() as i64));
        std::alloc::System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        add(new as i64 - l.size() as i64);
        std::alloc::System.realloc(p, l, new)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes above the level at the call, while `f` runs.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let out = f();
    (out, PEAK.with(|p| p.get()) - base)
}

/// FINDING 4 (resource, low: a hostile file costs the loader ~15× its
/// size in memory).
///
/// `read_hourly` keeps `customer → hour → (mWh, halves)` for the whole
/// file before it pairs the half-hours, in a `BTreeMap` of `BTreeMap`s.
/// A file whose every line is a new customer (`N,2013-01-01 00:30,0`, about
/// 25 bytes) makes a new inner map per line, and a `BTreeMap` leaf is
/// allocated for eleven entries (≈ 300 bytes) whatever it holds; every such
/// customer's lone reading is dropped at the end, but only then. So the
/// loader's peak memory is about fifteen times the file (a real trial
/// file, many readings per customer, costs far less than its size): a
/// hostile file of a few hundred MB takes several GB, though every line
/// is short and well formed.
/// Setup: 100,000 such lines (≈ 2.5 MB).
/// Expected: peak memory within a small multiple (here 4×) of the input
/// (or a typed refusal past a customer/entry cap). Observed: ≈ 15× (about
/// 37 MB).
/// Suggested fix: store the accumulation compactly (one sorted `Vec` of
/// `(customer, hour, mWh, halves)` per chunk, or a map keyed by
/// `(customer, hour)`), and cap the customers and readings accepted with a
/// typed error.
/// Fixed: the loader keeps one 24-byte entry per reading in a `Vec`,
/// sorts and pairs it at the end, and caps readings and customers
/// (`ForecastError::TooLarge`).
#[test]
fn loader_memory_stays_within_a_small_multiple_of_the_file() {
    let mut body = String::from("CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n");
    for c in 0..100_000u64 {
        body.push_str(&format!("{c},2013-01-01 00:30,0\n"));
    }
    let len = body.len() as i64;
    let (out, peak) = peak_during(|| read_hourly(body.as_bytes()));
    let out = out.unwrap();
    assert_eq!(out.len(), 100_000);
    assert!(out.values().all(|h| h.is_empty()), "lone half-hours are dropped");
    assert!(peak <= 4 * len, "a {len}-byte file peaked at {peak} bytes ({:.1}×)", peak as f64 / len as f64);
}

/// The loader's caps: one reading or one customer past them is a typed
/// refusal, at them the file loads.
#[test]
fn readings_and_customers_past_the_caps_are_refused_with_a_typed_error() {
    use gridledger_forecast::sgsc::read_hourly_limited;
    use gridledger_forecast::ForecastError;
    let mut body = String::from("CUSTOMER_ID,READING_DATETIME,GENERAL_SUPPLY_KWH\n");
    for c in 0..3u64 {
        body.push_str(&format!("{c},2013-01-01 00:30,0.5\n{c},2013-01-01 01:00,0.25\n"));
    }
    let ok = read_hourly_limited(body.as_bytes(), 6, 3).unwrap();
    assert_eq!(ok.len(), 3);
    assert!(ok.values().all(|h| h.len() == 1 && h[0].1 == 750));
    assert_eq!(read_hourly_limited(body.as_bytes(), 5, 3), Err(ForecastError::TooLarge { what: "readings", limit: 5 }));
    assert_eq!(
        read_hourly_limited(body.as_bytes(), 6, 2),
        Err(ForecastError::TooLarge { what: "customers", limit: 2 })
    );
}
