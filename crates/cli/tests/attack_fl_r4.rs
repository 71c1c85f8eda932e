//! Attack round 4 on `gridledger fl train` (issue 16). Each finding here
//! was `#[ignore]`d until fixed; all are fixed now and run with the
//! suite (`cargo test -p gridledger-cli --test attack_fl_r4`).

mod common;

use common::bounded::run_for;

/// FINDING 5 (resource: the work budget leaves out the clients'
/// dissemination, which grows with `clients²`).
///
/// `check_work_budget` prices a round at `chains × nodes × (nodes +
/// clients)` and the training at parameters × windows × clients. But in
/// C2C every client forwards each mini-fragment its node sends it to
/// every other client (`ClientAssembler::on_mini` → `FlClient::absorb`),
/// and every client verifies each one it receives (two Merkle proofs),
/// decoded or not: `chains × nodes × clients × (clients − 1)` messages a
/// round, none of them in the budget. The defaults (20 clients, 4 chains
/// of 4 nodes) send 6 080 such messages a round for 384 budget units.
/// `--clients 1000 --nodes 64 --chains 1 --rounds 1 --hidden 1 --levels 1
/// --train-days 2 --window 1 --validation-days 1` costs 68 096 units
/// (27 % of the 250 000 allowed, 177× the defaults; the training is
/// tiny), yet sends 64 × 1000 × 999 ≈ 6.4·10⁷ mini-fragments in one round
/// (10 500× the defaults), most of them in flight at once (every node sends
/// on commit, every client forwards on receipt): at ~0.8 kB each (values,
/// a 10-hash and a 6-hash Merkle proof, the message) that is ~50 GB of
/// queued messages. `--nodes 200` (240 000 units) makes it 2·10⁸.
/// The quadratic growth is measured in the fl crate's
/// `attack_r4::c2c_messages_grow_with_clients_squared`.
/// Expected: refused up front (exit 2, "work budget exceeded"), as the
/// budget promises for sizes that cannot finish. Observed: accepted and
/// still running after 30 s (a refusal is immediate); the child runs
/// under a 4 GiB address-space limit here so that it cannot take the
/// machine down.
/// Suggested fix: add the C2C term `chains × nodes × clients²` (and the
/// clients' verifications) to the per-round work, or cap `clients` per
/// chain so that it stays within the budget's ≈650× of the defaults.
#[test]
fn fl_train_budget_covers_client_to_client_dissemination() {
    let args = [
        "fl",
        "train",
        "--json",
        "--clients",
        "1000",
        "--chains",
        "1",
        "--nodes",
        "64",
        "--rounds",
        "1",
        "--hidden",
        "1",
        "--levels",
        "1",
        "--train-days",
        "2",
        "--window",
        "1",
        "--validation-days",
        "1",
    ];
    match run_for(&args, 30) {
        Some((code, err)) => {
            assert_eq!(code, Some(2), "exit {code:?}: {err}");
            assert!(err.contains("work budget exceeded"), "{err}");
        }
        None => panic!("still running after 30 s: a quadratic C2C round was not refused by the work budget"),
    }
}

/// FINDING 6 (resource: the per-fragment cap does not bound the set-up,
/// which grows with `chains ×` the fragment).
///
/// Round 3's fix caps the parameters per fragment at 2^20 "for the KZG
/// setup", but `Federation::new` builds one setup and one FK20 prover per
/// chain, so the set-up costs `chains ×` what one fragment costs, and the
/// chains are budgeted only through `chains × nodes × (nodes + clients)`.
/// `--hidden 1024 --levels 16` is a 97.6 M-parameter TCN; over `--chains
/// 100` that is 975 565 parameters a fragment (under 2^20), 125 880 field
/// elements, so each chain gets `Kzg::insecure_from_seed(262 144)`
/// (262 144 G1 and 262 144 G2 scalar multiplications) and, with 4 nodes
/// (cells of `l` = 65 536 points), a `CellProver` with two fixed-base
/// tables of `l · 64` points each: 2 × 65 536 × 64 × 96 B ≈ 805 MB a
/// chain, ≈ 80 GB for the 100 chains, before the first round. With
/// `--clients 4 --nodes 4 --rounds 1 --window 1 --train-days 2` every
/// budget term passes: 3 200 work units, 1.8·10¹⁰ training multiply-adds
/// (limit 2·10¹³), 976 k parameters per fragment.
/// Expected: refused up front (exit 2, "work budget exceeded").
/// Observed: accepted; the set-up runs until killed after 30 s (here under
/// a 4 GiB address-space limit, where it is killed or aborts when the
/// tables outgrow it).
/// Suggested fix: budget the whole set-up — `chains ×` (setup powers + the
/// prover's table points, `2 · next_pow2(k)` and `2·⌈k/l⌉ · l · 64`) — in
/// bytes against a memory cap, not only the fragment size.
#[test]
fn fl_train_budget_covers_the_set_up_of_every_chain() {
    let args = [
        "fl",
        "train",
        "--json",
        "--clients",
        "4",
        "--chains",
        "100",
        "--nodes",
        "4",
        "--rounds",
        "1",
        "--hidden",
        "1024",
        "--levels",
        "16",
        "--train-days",
        "2",
        "--window",
        "1",
        "--validation-days",
        "1",
    ];
    match run_for(&args, 30) {
        Some((code, err)) => {
            assert_eq!(code, Some(2), "exit {code:?}: {err}");
            assert!(err.contains("work budget exceeded"), "{err}");
        }
        None => panic!("still running after 30 s: a set-up of ~80 GB was not refused by the work budget"),
    }
}
