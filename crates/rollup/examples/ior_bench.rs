//! Prints [`gridledger_rollup::bench::bench_ior`] with its default
//! configuration as JSON, for running the benchmark without the CLI:
//! `cargo run --release -p gridledger-rollup --example ior_bench`.

fn main() {
    match gridledger_rollup::bench::bench_ior(&Default::default()) {
        Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
