//! Mutation sensitivity of block filling and the mempool (attacks r16,
//! r18, r19, r21, r23 and r24): each bug planted behind the `mutants` feature —
//! candidates skipped for gas count toward the walk's stop, no duty lane,
//! a replacement without the minimum bump, the lane's runs taken whole
//! instead of round-robin, a node's run starting only at a duty, a small
//! replacement keeping the serve-first place, a node's run cut to the
//! duties within its window, the serve-first place passing to the next
//! nonce, the lane's gas as one pool instead of per-node shares, the
//! sender served first going before the lane at every height, a share a
//! node cannot use thrown away instead of handed on, no served-first turn
//! (r23), the runs waiting tried only at the end of the pass (r24) — must make its checks fail, while every check passes on the
//! real code (the control).
//!
//! Run with `cargo test -p gridledger-ledger --features mutants --test mutants`.

mod common;

use common::{call_method, call_with_gas, chain_with, lane_config, seal};
use gridledger_core::Amount;
use gridledger_ledger::chain::Mutation;
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, SignedTransaction, SubmitError};

fn chain(dir: &std::path::Path, mutation: Option<Mutation>) -> Chain {
    chain_with(dir, ChainConfig { mutation, ..lane_config() })
}

/// `Ok` if `tx` is in a committed block, else `Err(missing)`.
fn included(c: &Chain, tx: &SignedTransaction, missing: &str) -> Result<(), String> {
    match c.receipt(&tx.hash()).map_err(|e| e.to_string())? {
        Some(_) => Ok(()),
        None => Err(missing.into()),
    }
}

/// [5]: nine accounts keep a block-sized transfer pending (one placed, the
/// rest skipped each block, more than `max_block_txs`); an ordinary
/// transfer is still included within three blocks.
fn skips_do_not_end_the_walk(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let honest = transfer(&dev_key(0), 1, 0, dev_key(3).address(), Amount(10), Amount(1));
    let mut ts = 0;
    for _ in 0..3 {
        for k in 10..19 {
            let key = dev_key(k);
            let a = key.address();
            if c.next_nonce(&a) == c.account(&a).nonce {
                let mut tx = transfer(&key, 1, c.next_nonce(&a), a, Amount(1), Amount(2)).tx;
                tx.gas_limit = ChainConfig::default().block_gas_limit;
                c.submit(&tx.sign(&key).to_bytes()).map_err(|e| e.to_string())?;
            }
        }
        if c.next_nonce(&dev_key(0).address()) == 0 {
            c.submit(&honest.to_bytes()).map_err(|e| e.to_string())?;
        }
        seal(&mut c, &mut ts);
    }
    included(&c, &honest, "the ordinary transfer was never tried")
}

/// [6]: two blocks' worth of transfers at price 3 pending; a duty call at
/// price 1 still goes into the next block (the lane), a stranger's call
/// of the same method does not.
fn duties_take_the_lane(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let flood = dev_key(1);
    for n in 0..16 {
        c.submit(&transfer(&flood, 1, n, flood.address(), Amount(1), Amount(3)).to_bytes())
            .map_err(|e| e.to_string())?;
    }
    let duty = call_method(9, 0, "work", 1);
    let stranger = call_method(8, 0, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    c.submit(&stranger.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    if c.receipt(&stranger.hash()).map_err(|e| e.to_string())?.is_some() {
        return Err("a stranger's call took the lane".into());
    }
    included(&c, &duty, "the duty was outbid")
}

/// [2]: a replacement must pay 10 % more: 21 does not replace 20, 22 does.
fn replacement_needs_the_bump(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let key = dev_key(2);
    let at = |amount: u128, price: u128| transfer(&key, 1, 0, key.address(), Amount(amount), Amount(price));
    let first = at(1, 20);
    c.submit(&first.to_bytes()).map_err(|e| e.to_string())?;
    match c.submit(&at(2, 21).to_bytes()) {
        Err(SubmitError::ReplacementUnderpriced { min: Amount(22), .. }) => {}
        r => return Err(format!("a 5 % bump: {r:?}")),
    }
    let dear = at(3, 22);
    c.submit(&dear.to_bytes()).map_err(|e| e.to_string())?;
    if c.mempool().contains(&first.hash()) || !c.mempool().contains(&dear.hash()) || c.mempool().len() != 1 {
        return Err("the replacement did not take the place".into());
    }
    Ok(())
}

/// Keeps two blocks' worth of dev key 1's transfers at `price` pending.
fn flood(c: &mut Chain, price: u128) -> Result<(), String> {
    let k = dev_key(1);
    let a = k.address();
    while c.next_nonce(&a) - c.account(&a).nonce < 16 {
        c.submit(&transfer(&k, 1, c.next_nonce(&a), a, Amount(1), Amount(price)).to_bytes())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A chain under `m` (its directory kept alive alongside) with dev key
/// 1's flood at `price` pending.
fn flooded_chain(m: Option<Mutation>, price: u128) -> Result<(tempfile::TempDir, Chain), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    flood(&mut c, price)?;
    Ok((dir, c))
}

/// r18 [1]: node 10 keeps a lane's worth of junk duties at price 2
/// pending, node 9 has one duty at price 1, dearer traffic floods: node
/// 9's duty still goes into the next block (round-robin over the nodes).
fn nodes_share_the_lane(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 5)?;
    for n in 0..4 {
        c.submit(&call_method(10, n, "work", 2).to_bytes()).map_err(|e| e.to_string())?;
    }
    let duty = call_method(9, 0, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    included(&c, &duty, "the other node's run took the whole lane")
}

/// r18 [2]: node 9's ordinary call (not a duty) heads its queue, its duty
/// follows, dearer traffic floods: both go into the next block.
fn a_nodes_ordinary_call_does_not_shut_its_duties_out(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 3)?;
    let own = call_method(9, 0, "other", 1);
    let duty = call_method(9, 1, "work", 1);
    c.submit(&own.to_bytes()).map_err(|e| e.to_string())?;
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    included(&c, &duty, "the node's own call at its head shut its duty out of the lane")
}

/// r18 [3]: twelve senders' block-sized transfers at price 1 (one placed,
/// eleven skipped and served first), the skipped ones replaced by small
/// transfers at price 2: a user paying 1,000 goes into the next block.
fn a_small_replacement_loses_the_served_first_place(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let big = |k: usize| {
        let key = dev_key(k);
        let mut tx = transfer(&key, 1, 0, key.address(), Amount(1), Amount(1)).tx;
        tx.gas_limit = ChainConfig::default().block_gas_limit;
        tx.sign(&key)
    };
    let armed: Vec<usize> = (11..19).chain(4..8).collect();
    for &k in &armed {
        c.submit(&big(k).to_bytes()).map_err(|e| e.to_string())?;
    }
    let mut ts = 0;
    seal(&mut c, &mut ts);
    for &k in &armed {
        let key = dev_key(k);
        if c.account(&key.address()).nonce == 0 {
            c.submit(&transfer(&key, 1, 0, key.address(), Amount(1), Amount(2)).to_bytes())
                .map_err(|e| e.to_string())?;
        }
    }
    let rich = transfer(&dev_key(0), 1, 0, dev_key(3).address(), Amount(10), Amount(1_000));
    c.submit(&rich.to_bytes()).map_err(|e| e.to_string())?;
    seal(&mut c, &mut ts);
    included(&c, &rich, "price-2 replacements went before a user paying 1,000")
}

/// r19 [1]: node 9 has a lane's worth (2) of its own ordinary calls
/// queued ahead of its duty, dearer traffic floods: the calls drain
/// through the lane and the duty is included within three blocks.
fn a_lanes_worth_of_ordinary_calls_does_not_freeze_a_duty(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 5)?;
    for n in 0..2 {
        c.submit(&call_method(9, n, "other", 1).to_bytes()).map_err(|e| e.to_string())?;
    }
    let duty = call_method(9, 2, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    for _ in 0..3 {
        flood(&mut c, 5)?;
        seal(&mut c, &mut ts);
    }
    included(&c, &duty, "the node's duty behind a lane's worth of its calls is still pending")
}

/// r19 [2]: sender 12's block-sized transfer is skipped behind the flood
/// (served first from then on) and the parent of a pipelined height
/// holds it; sender 12's next transfer, at price 1, is not served first
/// in the child, which the flood at price 5 fills.
fn the_next_nonce_does_not_inherit_the_served_first_place(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let f = dev_key(1);
    c.submit(&transfer(&f, 1, 0, f.address(), Amount(1), Amount(5)).to_bytes()).map_err(|e| e.to_string())?;
    let k = dev_key(12);
    let mut big = transfer(&k, 1, 0, k.address(), Amount(1), Amount(1)).tx;
    big.gas_limit = ChainConfig::default().block_gas_limit;
    c.submit(&big.sign(&k).to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    let small = transfer(&k, 1, 1, k.address(), Amount(1), Amount(1));
    c.submit(&small.to_bytes()).map_err(|e| e.to_string())?;
    flood(&mut c, 5)?;
    let proposer = dev_validator(0).public();
    let (parent, _) = c.build_block(&proposer, 10_000);
    let child = c.build_block_on(&parent, &proposer, 11_000).map_err(|e| e.to_string())?;
    if child.block.txs.iter().any(|t| t.hash() == small.hash()) {
        return Err("the next nonce rode the served-first place ahead of the flood".into());
    }
    Ok(())
}

/// The lane's gas under `lane_config` (25 % of the default block gas).
fn lane_gas() -> u64 {
    ChainConfig::default().block_gas_limit / 100 * ChainConfig::default().duty_lane_percent
}

/// r21 [1]: node 10's run carries, ahead of its duty, an ordinary `burn`
/// of the lane's whole gas at price 2 (its run sorts first); node 9 has
/// one duty at price 1; dearer traffic floods: node 9's duty still goes
/// into the next block (the lane's gas is shared per node, node 10's call
/// counts against its own share only).
fn one_nodes_heavy_call_leaves_the_others_their_lane_gas(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 5)?;
    for tx in [call_with_gas(10, 0, "burn", lane_gas(), 2), call_method(10, 1, "work", 2)] {
        c.submit(&tx.to_bytes()).map_err(|e| e.to_string())?;
    }
    let duty = call_method(9, 0, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    included(&c, &duty, "one node's lane-sized call used the lane's gas")
}

/// r21 [2]: three accounts' block-sized `burn`s at price 1 are skipped
/// behind a transfer (served first from then on); node 9 then posts a
/// duty: it goes in within two blocks (the lane goes before the senders
/// served first except at a served-first turn, every other height).
fn served_first_calls_leave_the_lane_its_gas(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let f = dev_key(1);
    c.submit(&transfer(&f, 1, 0, f.address(), Amount(1), Amount(5)).to_bytes()).map_err(|e| e.to_string())?;
    for k in 11..14 {
        let burn = call_with_gas(k, 0, "burn", ChainConfig::default().block_gas_limit, 1);
        c.submit(&burn.to_bytes()).map_err(|e| e.to_string())?;
    }
    let mut ts = 0;
    if seal(&mut c, &mut ts) != 1 {
        return Err("the block-sized calls were not skipped behind the transfer".into());
    }
    let duty = call_method(9, 0, "work", 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    seal(&mut c, &mut ts);
    seal(&mut c, &mut ts);
    included(&c, &duty, "served-first block-sized calls took the lane's gas two blocks running")
}

/// r23 [1] [2]: node 9's duty with a 75 M gas limit at price 2 and node
/// 10's with 40 M at price 1, dearer traffic flooding: both exceed the
/// first round's fair share (37.5 M), and node 10's, the smaller, still
/// goes into the next block (the share node 9 cannot use goes to it).
fn a_share_a_node_cannot_use_goes_to_the_others(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 5)?;
    c.submit(&call_with_gas(9, 0, "work", lane_gas(), 2).to_bytes()).map_err(|e| e.to_string())?;
    let duty = call_with_gas(10, 0, "work", 40_000_000, 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    included(&c, &duty, "the lane's shares were thrown away")
}

/// r23 [3]: an account's block-sized `burn` at price 5 while node 9 posts
/// one cheap duty before each block: it goes in within three blocks
/// (skipped once, then the first served, it gets the next served-first
/// turn).
fn a_served_first_call_gets_a_turn(m: Option<Mutation>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = chain(dir.path(), m);
    let user = call_with_gas(12, 0, "burn", ChainConfig::default().block_gas_limit, 5);
    c.submit(&user.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    for _ in 0..3 {
        let a = dev_key(9).address();
        c.submit(&call_method(9, c.next_nonce(&a), "work", 1).to_bytes()).map_err(|e| e.to_string())?;
        seal(&mut c, &mut ts);
    }
    included(&c, &user, "the lane's duties starved a block-sized served-first call")
}

/// r24 [1]: node 9 keeps two cheap duties (100 k gas limit) pending at
/// price 2, node 10 has one duty of 40 M at price 1, dearer traffic
/// floods: node 10's duty exceeds the first round's fair share (37.5 M)
/// and waits, and still goes into the next block before node 9's second
/// duty takes the lane's last place.
fn a_waiting_duty_is_tried_before_the_lane_is_full(m: Option<Mutation>) -> Result<(), String> {
    let (_dir, mut c) = flooded_chain(m, 5)?;
    for n in 0..2 {
        c.submit(&call_with_gas(9, n, "work", 100_000, 2).to_bytes()).map_err(|e| e.to_string())?;
    }
    let duty = call_with_gas(10, 0, "work", 40_000_000, 1);
    c.submit(&duty.to_bytes()).map_err(|e| e.to_string())?;
    let mut ts = 0;
    seal(&mut c, &mut ts);
    included(&c, &duty, "one node's cheap duties spent the lane's count before the waiting duty was tried")
}

type Check = fn(Option<Mutation>) -> Result<(), String>;

const CHECKS: &[(&str, Check)] = &[
    ("skips do not end the walk", skips_do_not_end_the_walk),
    ("duties take the lane", duties_take_the_lane),
    ("replacement needs the bump", replacement_needs_the_bump),
    ("nodes share the lane", nodes_share_the_lane),
    ("a node's ordinary call does not shut its duties out", a_nodes_ordinary_call_does_not_shut_its_duties_out),
    ("a small replacement loses the served-first place", a_small_replacement_loses_the_served_first_place),
    ("a lane's worth of ordinary calls does not freeze a duty", a_lanes_worth_of_ordinary_calls_does_not_freeze_a_duty),
    ("the next nonce does not inherit the served-first place", the_next_nonce_does_not_inherit_the_served_first_place),
    ("one node's heavy call leaves the others their lane gas", one_nodes_heavy_call_leaves_the_others_their_lane_gas),
    ("served-first calls leave the lane its gas", served_first_calls_leave_the_lane_its_gas),
    ("a share a node cannot use goes to the others", a_share_a_node_cannot_use_goes_to_the_others),
    ("a served-first call gets a turn", a_served_first_call_gets_a_turn),
    ("a waiting duty is tried before the lane is full", a_waiting_duty_is_tried_before_the_lane_is_full),
];

fn failing(m: Option<Mutation>) -> Vec<&'static str> {
    CHECKS.iter().filter(|(_, check)| check(m).is_err()).map(|(name, _)| *name).collect()
}

#[test]
fn control_every_check_passes_on_the_real_code() {
    for (name, check) in CHECKS {
        assert_eq!(check(None), Ok(()), "{name}");
    }
}

#[test]
fn each_planted_bug_is_caught() {
    for (m, caught_by) in [
        (Mutation::SkipsCountTowardStop, vec!["skips do not end the walk"]),
        (
            Mutation::NoDutyLane,
            vec![
                "duties take the lane",
                "nodes share the lane",
                "a node's ordinary call does not shut its duties out",
                "a lane's worth of ordinary calls does not freeze a duty",
                "one node's heavy call leaves the others their lane gas",
                "served-first calls leave the lane its gas",
                "a share a node cannot use goes to the others",
                "a waiting duty is tried before the lane is full",
            ],
        ),
        (Mutation::ReplaceWithoutBump, vec!["replacement needs the bump"]),
        (Mutation::LaneWholeRuns, vec!["nodes share the lane", "a waiting duty is tried before the lane is full"]),
        (
            Mutation::LaneHeadMustBeDuty,
            vec![
                "a node's ordinary call does not shut its duties out",
                "a lane's worth of ordinary calls does not freeze a duty",
            ],
        ),
        (Mutation::ReplacementKeepsServeFirst, vec!["a small replacement loses the served-first place"]),
        (Mutation::LaneRunNeedsDutyInWindow, vec!["a lane's worth of ordinary calls does not freeze a duty"]),
        (Mutation::FirstServedNextNonce, vec!["the next nonce does not inherit the served-first place"]),
        (Mutation::LaneGasPooled, vec!["one node's heavy call leaves the others their lane gas"]),
        (Mutation::ServeFirstBeforeLane, vec!["served-first calls leave the lane its gas"]),
        (
            Mutation::LaneShareWasted,
            vec!["a share a node cannot use goes to the others", "a waiting duty is tried before the lane is full"],
        ),
        (Mutation::LaneNeverYields, vec!["a served-first call gets a turn"]),
        (Mutation::LaneWaitsForPassEnd, vec!["a waiting duty is tried before the lane is full"]),
    ] {
        assert_eq!(failing(Some(m)), caught_by, "mutant {m:?} must be caught by exactly its checks");
    }
}
