//! Attack round 7 on `gridledger fl train` (issue 16). Each finding here
//! was `#[ignore]`d until fixed; the one finding is fixed and runs with
//! the suite.

mod common;

use common::bounded::run_for;

/// FINDING 1 (resource: the work budget leaves out the clients' windowed
/// data, `clients × windows × window × channels × 4` bytes, held for the
/// whole run).
///
/// `Windows::build` copies every input window in full (`channels ·
/// window` floats per window, windows overlapping by `window − 1` hours),
/// and `Federation::new` builds the training and validation windows of
/// every client before the first round. `check_work_budget` prices the
/// protocol (`chains × nodes × (nodes + clients²)`), the multiply-adds
/// (parameters × window × windows × epochs × clients), the set-up bytes
/// and one step's activations, but nothing prices the data itself: with
/// a tiny network the multiply-add term is small however large the data.
/// `--clients 249 --chains 1 --nodes 4 --rounds 1 --hidden 1 --levels 1
/// --window 720 --train-days 330 --validation-days 35 --hour-features`
/// (every flag in its accepted range; 248 020 protocol units of 250 000,
/// a 20-parameter network costing 2.6·10¹⁰ multiply-adds a round, 0.1 %
/// of the budget, and a few MB of activations) holds 249 × (7 200 + 840)
/// windows × 720 hours × 3 channels × 4 bytes ≈ 17 GB of windows (≈ 5.8 GB
/// without `--hour-features`).
/// Expected: refused up front (exit 2, "work budget exceeded"), as the
/// budget promises for sizes that cannot finish, or run in bounded memory
/// (windows as views into each client's series instead of copies).
/// Observed (under the 4 GiB address-space limit this test sets): the
/// run passes the budget and aborts while building the clients' windows
/// (a failed allocation, SIGABRT, no exit code); without the limit it
/// takes about 17 GB of the machine before its first round.
/// Fixed: `check_work_budget` prices the windowed data
/// (`FederatedConfig::window_data_bytes`) and refuses above
/// `MAX_WINDOW_DATA_BYTES` (4 GiB) with exit 2.
#[test]
fn fl_train_budget_covers_the_clients_windowed_data() {
    let args = [
        "fl",
        "train",
        "--json",
        "--clients",
        "249",
        "--chains",
        "1",
        "--nodes",
        "4",
        "--rounds",
        "1",
        "--hidden",
        "1",
        "--levels",
        "1",
        "--window",
        "720",
        "--train-days",
        "330",
        "--validation-days",
        "35",
        "--hour-features",
    ];
    match run_for(&args, 300) {
        Some((Some(0), _)) => {}
        Some((code, err)) => {
            assert_eq!(code, Some(2), "exit {code:?} (None: killed by a signal); stderr: {err}");
            assert!(err.contains("work budget exceeded"), "{err}");
        }
        None => panic!("still running after 300 s under a 4 GiB limit: neither refused nor trained"),
    }
}
