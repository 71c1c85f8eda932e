//! Prints the §3.5.4 day report ([`gridledger_rollup::demo::run_day`]) as
//! JSON: `cargo run --release -p gridledger-rollup --example ior_day`.

fn main() {
    match gridledger_rollup::demo::run_day(Default::default()) {
        Ok(r) => println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
