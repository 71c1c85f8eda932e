//! Twenty-first attack round, ledger side (issue 14's chains): the duty
//! lane's bound (`fill_block` step 2: "each node with a duty pending gets
//! at least one place in every block, as long as the registered nodes are
//! no more than the lane's count") after the fix of attack r19 [1] [2].
//!
//! The bound is counted in places, but the lane and the block are also
//! bounded in gas, and a run ends at the first transaction whose gas limit
//! does not fit what the lane (or the block) has left. Whoever uses that
//! gas first decides whether any other node gets a place at all.
//!
//! Every finding here failed on the code it was written against and was
//! marked `#[ignore = "attack r21 [k]: ..."]` until it was fixed: [1] the
//! lane's gas is shared per node (now filled progressively, attack r23
//! [1] [2]), each node's carried calls counting against its own share; [2]
//! the lane goes into the empty block before the senders served first
//! except at a served-first turn, every other height (attack r23 [3])
//! (`fill_block`).

mod common;

use common::*;
use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::{dev_key, dev_validator, transfer};
use gridledger_ledger::{Chain, ChainConfig, SignedTransaction};

/// A chain of 40 dev accounts with `Duties` registered for `BYZANTINE`
/// and `HONEST`, blocks of 8 transactions (the lane: 2 places and 25 % of
/// the default 300 M gas, 75 M). `Duties`' `burn` is a call that needs more
/// gas than any limit (it runs out of gas and is charged its whole gas
/// limit), standing for any heavy call a chain's contracts offer.
fn heavy_chain(dir: &std::path::Path) -> Chain {
    chain_of(dir, 40, lane_config())
}

/// The lane's gas (25 % of the default block gas limit).
fn lane_gas() -> u64 {
    ChainConfig::default().block_gas_limit / 100 * ChainConfig::default().duty_lane_percent
}

/// Seals blocks (a dearer flood kept pending before each when `flooded`)
/// until the honest node's duty `duty` is included, at most `max`; returns
/// how many were sealed, `None` if it is still pending.
fn blocks_until(c: &mut Chain, duty: &SignedTransaction, flooded: bool, max: usize) -> Option<usize> {
    let mut ts = 10_000;
    for i in 1..=max {
        if flooded {
            flood(c);
        }
        seal(c, &mut ts);
        if c.receipt(&duty.hash()).unwrap().is_some() {
            return Some(i);
        }
    }
    None
}

// ------------------------------------------------------------------- [1]

/// Where the honest node's duty stands after a Byzantine registered node
/// queued 20 ordinary `burn` calls of a whole lane's gas (75 M) at price
/// 2 ahead of one duty (`heavy`), or 20 plain duties (the control).
fn honest_duty_wait(heavy: bool) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = heavy_chain(dir.path());
    let duty = call_with_gas(HONEST, 0, "work", 100_000, 1);
    c.submit(&duty.to_bytes()).unwrap();
    for n in 0..20 {
        let tx = if heavy { call_with_gas(BYZANTINE, n, "burn", lane_gas(), 2) } else { call(BYZANTINE, n, 2) };
        c.submit(&tx.to_bytes()).unwrap();
    }
    c.submit(&call(BYZANTINE, 20, 2).to_bytes()).unwrap();
    blocks_until(&mut c, &duty, true, 10)
}

/// Control of [1]: a Byzantine node keeping 21 cheap duties one unit above
/// the honest node's price takes one lane place a round; the honest node's
/// duty goes into the first block against a dearer flood.
#[test]
fn a_byzantine_nodes_cheap_run_leaves_the_honest_duty_its_place() {
    assert_eq!(honest_duty_wait(false), Some(1));
}

/// The round-robin gives each node one place a round, but the lane is
/// also bounded in gas (`fill_block`: a transaction whose gas limit does
/// not fit what the lane has left ends its sender's run). A Byzantine
/// registered node whose run sorts first (one unit above the honest
/// node's price) carries, as its run's first transaction, an ordinary call
/// of its key that uses the lane's whole gas share (r18 [2] / r19 [1]:
/// the ordinary calls ahead of a node's last duty travel in its run,
/// "within the same bound"; here a call that runs out of gas at a 75 M
/// limit). It is placed in round one; the honest node's duty (gas limit
/// 100,000) no longer fits the lane's 0 gas left, its run ends, and it
/// falls back to the price order, which the flood at price 5 fills. The
/// next block the Byzantine node's next heavy call does the same: one
/// party freezes every other node's duties for as long as it pays for a
/// lane's gas at price 2 a block — the freeze the lane exists to prevent
/// (attack r16 [6], r18 [1]), the share being taken in gas instead of
/// places.
///
/// Expected: each registered node with a duty pending gets a place in
/// every block (e.g. the lane's gas shared per node as its places are, or
/// a run that no longer fits the lane's gas passed over only for the node
/// that used it), so the honest duty lands in the first block as in the
/// control. Observed: after 10 blocks it is still pending.
#[test]
fn one_nodes_heavy_carried_call_does_not_shut_the_other_nodes_out_of_the_lane() {
    let wait = honest_duty_wait(true);
    assert_eq!(wait, Some(1), "the honest node's duty waited {wait:?} blocks (None: still pending after 10)");
}

// ------------------------------------------------------------------- [2]

/// Arms `armed` accounts (dev keys 20..) with a block-sized `burn` at
/// price 1 each: a quiet block whose first transaction is one ordinary
/// transfer skips every one of them for gas, so each is served first from
/// then on ([`gridledger_ledger::Mempool::serve_first`]). Then, after
/// `quiet` more blocks (so the duty's first block is a served-first turn
/// or not, as `quiet` is even or odd), the honest node posts one duty;
/// returns how many blocks it waited (no flood).
fn duty_wait_behind_armed(armed: usize, quiet: usize) -> Option<usize> {
    let dir = tempfile::tempdir().unwrap();
    let mut c = heavy_chain(dir.path());
    let block_gas = ChainConfig::default().block_gas_limit;
    let f = dev_key(FLOOD);
    c.submit(&transfer(&f, 1, 0, f.address(), Amount(1), Amount(5)).to_bytes()).unwrap();
    for k in 20..20 + armed {
        c.submit(&call_with_gas(k, 0, "burn", block_gas, 1).to_bytes()).unwrap();
    }
    let mut ts = 0;
    assert_eq!(seal(&mut c, &mut ts), 1, "the block-sized calls are skipped behind the transfer");
    for _ in 0..quiet {
        seal(&mut c, &mut ts);
    }
    let duty = call_with_gas(HONEST, 0, "work", 100_000, 1);
    c.submit(&duty.to_bytes()).unwrap();
    blocks_until(&mut c, &duty, false, armed + 2)
}

/// Control of [2]: with no account armed the duty goes into the next block.
#[test]
fn with_nothing_served_first_the_duty_goes_into_the_next_block() {
    assert_eq!(duty_wait_behind_armed(0, 0), Some(1));
    assert_eq!(duty_wait_behind_armed(0, 1), Some(1));
}

/// Step 1 of `fill_block` (the sender served first of all, into the empty
/// block) runs before the duty lane, and the served-first transaction may
/// use the whole block's gas: a block-sized call that runs out of gas
/// leaves nothing, every lane candidate is refused (`BlockFull`) and ends
/// its run. Serve-first places are bought at the lowest price by anyone
/// (one quiet block arms any number of accounts, attack r18 [3]'s set-up;
/// no registered node needed), one is spent per block, so `n` armed
/// accounts keep every registered node's duties out of `n` consecutive
/// blocks, with no flood at all, for one block's gas at price 1 a block.
/// Here 12 accounts: the honest node's duty waits 13 blocks.
///
/// Expected: the lane's bound ("each node with a duty pending gets at
/// least one place in every block") holds against served-first traffic
/// too (e.g. the lane's share reserved before a served-first transaction
/// is sized against the block, or served-first limited to what the lane
/// leaves), so the duty goes into the next block. Observed: it waits one
/// block per armed account.
///
/// The bound asserted here was "the next block" (the lane went first at
/// every height). Attack r23 [3] showed that rule starves a served-first
/// transaction the lane's gas leaves no room for (a block-sized one behind
/// one cheap duty a block, for ever), so `fill_block` now gives the
/// transaction served first of all the empty block at every other height
/// (a served-first turn) when the lane's gas would not leave it room; the
/// lane has every block between. The bound this test keeps is the one
/// that rule honestly gives: a duty waits at most two blocks however many
/// accounts are armed (one turn), checked with the duty's first block a
/// turn and not (and not one block per armed account, as before).
#[test]
fn served_first_block_sized_calls_do_not_shut_the_duty_lane_out() {
    for quiet in [0, 1] {
        let wait = duty_wait_behind_armed(12, quiet);
        assert!(
            wait.is_some_and(|w| w <= 2),
            "the honest node's duty waited {wait:?} blocks behind 12 served-first calls ({quiet} quiet)"
        );
    }
}

// ------------------------------------------------ duty bookkeeping (held up)

/// A small deterministic generator (xorshift64*), so the walk through
/// admissions, replacements, evictions and commits is the same every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The model of one sender's pending queue: committed nonce, then (hash,
/// duty, price) by nonce from it.
#[derive(Default, Clone)]
struct Model {
    committed: u64,
    txs: Vec<(gridledger_core::Hash32, bool, u128)>,
}

/// The runs `Mempool::lane` should give, by sender: the transactions not in
/// `exclude` from the first, up to and including the last such duty, the
/// first `max` of them; none without a duty left.
fn expected_runs(
    models: &[(Address, Model)],
    exclude: &std::collections::BTreeSet<gridledger_core::Hash32>,
    max: usize,
) -> std::collections::BTreeMap<Address, Vec<gridledger_core::Hash32>> {
    let mut out = std::collections::BTreeMap::new();
    for (a, m) in models {
        let left: Vec<_> = m.txs.iter().filter(|(h, ..)| !exclude.contains(h)).collect();
        let Some(last) = left.iter().rposition(|(_, d, _)| *d) else { continue };
        let run: Vec<_> = left[..=last].iter().take(max).map(|(h, ..)| *h).collect();
        if !run.is_empty() {
            out.insert(*a, run);
        }
    }
    out
}

/// Through 3,000 random admissions (duty or not), replacements that turn
/// duties into ordinary calls and back, evictions of suffixes and commits
/// of prefixes (`prune`), the pool's duty bookkeeping (the per-sender set
/// of duty nonces, the senders with duties) gives exactly the runs the
/// rule names, with and without a pipelined parent's prefix excluded, at
/// several lane sizes.
#[test]
fn the_lanes_runs_follow_replacements_evictions_and_commits() {
    use gridledger_ledger::mempool::{replacement_min, Mempool};
    use gridledger_ledger::Account;
    let keys: Vec<usize> = vec![21, 22, 23];
    let mut models: Vec<(Address, Model)> = keys.iter().map(|k| (dev_key(*k).address(), Model::default())).collect();
    let mut pool = Mempool::new(10_000, 64);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let to = dev_key(30).address();
    let mut amount = 0u128;
    for step in 0..3_000 {
        let i = rng.below(keys.len() as u64) as usize;
        let key = dev_key(keys[i]);
        let (a, m) = (models[i].0, &mut models[i].1);
        let acct = Account { balance: Amount(1_000_000_000_000), nonce: m.committed };
        amount += 1;
        match rng.below(10) {
            // Admit the next nonce.
            0..=4 if m.txs.len() < 12 => {
                let (duty, price) = (rng.below(2) == 0, 1 + rng.below(5) as u128);
                let n = m.committed + m.txs.len() as u64;
                let v = transfer(&key, 1, n, to, Amount(amount), Amount(price)).check_stateless(1, u64::MAX).unwrap();
                let h = pool.admit_in_lane(v, &acct, duty).unwrap();
                m.txs.push((h, duty, price));
            }
            // Replace a pending one, flipping or keeping its duty.
            5 | 6 if !m.txs.is_empty() => {
                let j = rng.below(m.txs.len() as u64) as usize;
                let (duty, price) = (rng.below(2) == 0, replacement_min(Amount(m.txs[j].2)).0);
                let n = m.committed + j as u64;
                let v = transfer(&key, 1, n, to, Amount(amount), Amount(price)).check_stateless(1, u64::MAX).unwrap();
                let h = pool.admit_in_lane(v, &acct, duty).unwrap();
                m.txs[j] = (h, duty, price);
            }
            // Evict one and every later one.
            7 if !m.txs.is_empty() => {
                let j = rng.below(m.txs.len() as u64) as usize;
                pool.evict(&m.txs[j].0);
                m.txs.truncate(j);
            }
            // Commit a prefix.
            8 | 9 if !m.txs.is_empty() => {
                let k = 1 + rng.below(m.txs.len() as u64) as usize;
                m.committed += k as u64;
                m.txs.drain(..k);
                let c = m.committed;
                pool.prune([a], |_| Account { balance: Amount(1_000_000_000_000), nonce: c });
            }
            _ => {}
        }
        // A pipelined parent: a random prefix of each sender's queue.
        let mut parent = std::collections::BTreeSet::new();
        for (_, m) in &models {
            let k = rng.below(m.txs.len() as u64 + 1) as usize;
            parent.extend(m.txs[..k].iter().map(|(h, ..)| *h));
        }
        for exclude in [std::collections::BTreeSet::new(), parent] {
            for max in [1, 2, 5, 64] {
                let got: std::collections::BTreeMap<Address, Vec<_>> = pool
                    .lane(&exclude, max)
                    .into_iter()
                    .map(|r| (r[0].sender, r.iter().map(|t| t.hash).collect()))
                    .collect();
                assert_eq!(got, expected_runs(&models, &exclude, max), "step {step}, max {max}");
            }
        }
    }
}

// ------------------------------------------- arrival order (held up)

/// Two validators of one chain receive the same transactions in opposite
/// orders (two nodes' duties behind ordinary calls of their keys, a
/// flood, block-sized transfers that earn serve-first places): for five
/// heights each builds its block, the other validates it by re-execution
/// (no refusal, though the two blocks differ), and both commit the
/// first's block.
#[test]
fn validators_with_different_arrival_orders_accept_each_others_blocks() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, mut b) = (heavy_chain(da.path()), heavy_chain(db.path()));
    let block_gas = ChainConfig::default().block_gas_limit;
    let mut txs = Vec::new();
    for node in [BYZANTINE, HONEST] {
        let k = dev_key(node);
        txs.push(transfer(&k, 1, 0, k.address(), Amount(1), Amount(1)));
        txs.push(call_with_gas(node, 1, "work", 100_000, 1 + node as u128 % 2));
        txs.push(call_with_gas(node, 2, "work", 100_000, 1));
    }
    let f = dev_key(FLOOD);
    txs.extend((0..20).map(|n| transfer(&f, 1, n, f.address(), Amount(1), Amount(5))));
    for key in 20..26 {
        let k = dev_key(key);
        let mut tx = transfer(&k, 1, 0, k.address(), Amount(1), Amount(1)).tx;
        tx.gas_limit = block_gas;
        txs.push(tx.sign(&k));
    }
    // Each sender's transactions stay in nonce order; the senders
    // interleave differently.
    for t in &txs {
        a.submit(&t.to_bytes()).unwrap();
    }
    let mut by_sender: std::collections::BTreeMap<Address, Vec<&SignedTransaction>> = Default::default();
    for t in &txs {
        by_sender.entry(t.sender()).or_default().push(t);
    }
    for q in by_sender.values().rev() {
        for t in q {
            b.submit(&t.to_bytes()).unwrap();
        }
    }
    let proposer = dev_validator(0).public();
    let mut differed = false;
    for i in 1..=5u64 {
        let (ea, _) = a.build_block(&proposer, i * 1_000);
        let (eb, _) = b.build_block(&proposer, i * 1_000);
        differed |= ea.block.hash() != eb.block.hash();
        a.validate_block(&eb.block).expect("a refused b's block");
        let ok = b.validate_block(&ea.block).expect("b refused a's block");
        a.commit(ea).unwrap();
        b.commit(ok).unwrap();
        assert_eq!(a.tip().hash(), b.tip().hash());
    }
    assert!(differed, "the two arrival orders built the same blocks: the check proves nothing");
}
