//! Mutation sensitivity of the simulator (issue: planted bugs must be
//! caught): each bug is planted in the real replica or validator driver
//! behind the `mutants` feature, and the simulator, driving the real
//! driver and store, must report a violation within a bounded number of
//! seeds. The same scenarios pass without the bug (the control).
//!
//! The LBFT engine's planted bugs ([`gridledger_node::lbft::LbftMutation`],
//! [`gridledger_node::lbft::QueueMutation`]) are caught by the scenarios of
//! the rules they break (module `lbft` below).
//!
//! Run with `cargo test -p gridledger-node --features mutants --test mutants`.

mod common;

use gridledger_consensus::pbft::sim::{Behaviour, DiskCrash, Scenario};
use gridledger_node::sim::{run_driver, DriverSimOptions};
use gridledger_node::validator::Mutation;
use gridledger_sim::{Crash, Delay, NetConfig};
use rand::{Rng, SeedableRng};

/// Seeds tried per planted bug before the check fails.
const BUDGET: u64 = 40;

/// A scenario aimed at the kind of bug `m` is (the Byzantine validators
/// collude in the way that exposes it; crashes where it needs them).
fn scenario(m: Mutation, seed: u64) -> Scenario {
    let mut sc = Scenario::random(seed, 4);
    sc.min_height = 12;
    let behaviours = match m {
        Mutation::SkipValidation => vec![Behaviour::InvalidBlocks, Behaviour::Collude],
        Mutation::WrongQuorum => vec![Behaviour::Equivocate, Behaviour::Collude],
        Mutation::NewViewSkipsHighestPrepared => {
            vec![Behaviour::CraftNewView, Behaviour::Collude, Behaviour::SplitCommits]
        }
        Mutation::TwoWriteCommit => {
            vec![Behaviour::Equivocate, Behaviour::Collude, Behaviour::SplitCommits, Behaviour::HidePrepared]
        }
        Mutation::LoseDurable | Mutation::DeferEveryWrite => {
            vec![Behaviour::Equivocate, Behaviour::Collude, Behaviour::Replay]
        }
        Mutation::WeakCertificate | Mutation::PipelineStaleState => vec![Behaviour::Equivocate, Behaviour::Collude],
    };
    if sc.byzantine.is_empty() {
        sc.byzantine.insert((seed % 4) as u32, Vec::new());
    }
    for b in sc.byzantine.values_mut() {
        *b = behaviours.clone();
    }
    let correct: Vec<u32> = (0..4).filter(|i| sc.is_correct(*i)).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let gst = sc.net.gst;
    match m {
        Mutation::NewViewSkipsHighestPrepared => {
            // Validator 1 is Byzantine. A block commits at validator 2
            // alone (its links out are slow and the Byzantine commit
            // reaches only it); the others change view over the prepared
            // block, and validator 1, leading the next view, crafts a
            // new-view that proposes another one. (Validator 3 as the
            // Byzantine one, with validator 0 slow, was tuned for heights
            // decided one after another; with pipelined heights it missed
            // the bug within the budget. The leader of the next view at
            // height h also leads (h + 1, v), where it now proposes early.)
            sc.byzantine = [(1, behaviours.clone())].into();
            sc.net = NetConfig::reliable(4, 20);
            for to in [0, 1, 3] {
                sc.net.links[2][to] = Delay::Uniform { min: 1_500, max: 1_500 + rng.random_range(0..500) };
            }
            sc.net.gst = 2_500;
            sc.disk_crashes.clear();
            sc.write_failures.clear();
        }
        Mutation::TwoWriteCommit if seed.is_multiple_of(2) => {
            // Random chaos with many crashes between two writes.
            for b in sc.byzantine.values_mut() {
                *b = vec![Behaviour::Equivocate, Behaviour::Collude, Behaviour::Replay];
            }
            for _ in 0..20 {
                let node = correct[rng.random_range(0..correct.len())];
                let at = rng.random_range(0..gst);
                sc.disk_crashes.push(DiskCrash { node, at, sync: rng.random_range(1..5), tear: 0 });
            }
        }
        Mutation::TwoWriteCommit => {
            // Validator 3 leads height 2 and equivocates, keeping the sides
            // apart (its commits reach only the side that got the block)
            // and hiding what it prepared. A correct validator that commits
            // dies between the two writes of its commit and restarts at once.
            sc.byzantine = [(3, behaviours.clone())].into();
            sc.net = NetConfig::reliable(4, 20);
            sc.net.gst = 1_000;
            let node = if seed % 4 == 1 { 0 } else { 2 };
            sc.disk_crashes = vec![DiskCrash { node, at: 0, sync: 7 + (seed / 4) % 3, tear: 0 }];
            sc.write_failures.clear();
        }
        Mutation::LoseDurable | Mutation::DeferEveryWrite => {
            for _ in 0..6 {
                let node = correct[rng.random_range(0..correct.len())];
                let at = rng.random_range(0..gst);
                sc.net.crashes.push(Crash { node, at, restart_at: Some(at + rng.random_range(1..300)) });
            }
        }
        _ => {}
    }
    sc
}

/// Options of a run of `m`'s scenario: pipelined heights as validators run
/// them (on by default) unless `pipeline` says otherwise.
fn options(m: Mutation, planted: Option<Mutation>, pipeline: Option<bool>) -> DriverSimOptions {
    let restart_after = (m == Mutation::TwoWriteCommit).then_some(5);
    DriverSimOptions { restart_after, mutation: planted, pipeline }
}

fn caught_within_budget(m: Mutation, pipeline: Option<bool>) -> Option<u64> {
    for seed in 0..BUDGET {
        let sc = scenario(m, seed);
        if let Err(v) = run_driver(&sc, &options(m, Some(m), pipeline)) {
            eprintln!("{m:?} (pipelining {pipeline:?}) caught at seed {seed}: {v:?}");
            return Some(seed);
        }
    }
    None
}

fn check(bugs: &[Mutation], pipeline: Option<bool>) {
    let mut missed = Vec::new();
    for &m in bugs {
        match caught_within_budget(m, pipeline) {
            Some(seed) => {
                // Control: without the bug the catching scenario passes.
                let sc = scenario(m, seed);
                run_driver(&sc, &options(m, None, pipeline))
                    .unwrap_or_else(|v| panic!("control run of {m:?}'s seed {seed} fails without the bug: {v:?}"));
            }
            None => missed.push(m),
        }
    }
    assert!(missed.is_empty(), "planted bugs not caught within {BUDGET} seeds (pipelining {pipeline:?}): {missed:?}");
}

/// Every planted bug, in the configuration validators run (pipelined
/// heights on, the default).
#[test]
fn the_simulator_catches_every_planted_bug() {
    assert!(gridledger_node::validator::PbftSettings::default().pipeline, "the default configuration pipelines");
    check(&Mutation::ALL, None);
}

/// The replica's planted bugs with pipelined heights off as well
/// (`pbft.pipeline = false` is a supported configuration).
#[test]
fn the_simulator_catches_the_replica_bugs_with_pipelining_off() {
    check(&[Mutation::NewViewSkipsHighestPrepared, Mutation::WrongQuorum], Some(false));
}

// ---- LBFT engine: the proposal queue, admission and execution (attack r5 [1]) ------

/// The LBFT engine's planted bugs, each caught by the scenario of the rule
/// it breaks; each scenario passes without the bug (the control).
mod lbft {
    use super::common::lbft::{admit, copied_next_nonce, early_next_nonce, tx, unpayable_share_sized, Net, N};
    use gridledger_core::{Amount, Hash32};
    use gridledger_ledger::devnet::{dev_key, TRANSFER_GAS};
    use gridledger_ledger::fault::SimDisk;
    use gridledger_ledger::mempool::Mempool;
    use gridledger_ledger::state::Account;
    use gridledger_ledger::{ChainConfig, SignedTransaction, SubmitError, Transaction, TxKind, VerifiedTx};
    use gridledger_node::lbft::{LbftMutation, ProposalQueue, QueueMutation};

    const RICH: Account = Account { balance: Amount(1_000_000_000_000), nonce: 0 };

    fn vtx(from: usize, nonce: u64, gas: u64) -> VerifiedTx {
        vtx_at(from, nonce, gas, 1)
    }

    /// A transfer at gas price `price`.
    fn vtx_at(from: usize, nonce: u64, gas: u64, price: u128) -> VerifiedTx {
        Transaction {
            chain_id: 1,
            sender: dev_key(from).public(),
            nonce,
            gas_limit: gas,
            gas_price: Amount(price),
            kind: TxKind::Transfer { to: dev_key(9).address(), amount: Amount(1) },
        }
        .sign(&dev_key(from))
        .check_stateless(1, u64::MAX)
        .unwrap()
    }

    fn queue(m: Option<QueueMutation>) -> ProposalQueue {
        let mut q = ProposalQueue::new(100);
        q.mutation = m;
        q
    }

    fn nonces(batch: &[Vec<u8>], from: usize) -> Vec<u64> {
        batch
            .iter()
            .map(|r| SignedTransaction::from_bytes(r, 1 << 16).unwrap())
            .filter(|t| t.sender() == dev_key(from).address())
            .map(|t| t.tx.nonce)
            .collect()
    }

    /// [`QueueMutation::SenderOrderIgnored`]: a batch cut by gas (sender
    /// 1's heavy transaction first, sender 0's heavy nonce 0 does not fit)
    /// must not take sender 0's light nonce 1.
    fn gas_cut_takes(m: Option<QueueMutation>) -> Vec<u64> {
        let mut pool = Mempool::new(16, 16);
        pool.admit(vtx(1, 0, 3 * TRANSFER_GAS), &RICH).unwrap();
        pool.admit(vtx(0, 0, 3 * TRANSFER_GAS), &RICH).unwrap();
        pool.admit(vtx(0, 1, TRANSFER_GAS), &RICH).unwrap();
        nonces(&queue(m).cut(0, &pool, 10, 4 * TRANSFER_GAS).txs, 0)
    }

    #[test]
    fn a_batch_breaking_a_senders_nonce_order_is_caught() {
        assert_eq!(gas_cut_takes(None), Vec::<u64>::new(), "control: sender 0 waits whole");
        assert_eq!(gas_cut_takes(Some(QueueMutation::SenderOrderIgnored)), vec![1], "the bug takes nonce 1 alone");
    }

    /// [`QueueMutation::DeliveredForgotten`]: a transaction whose epoch was
    /// delivered while the mempool still holds it (it did not execute) must
    /// be proposed again.
    fn proposed_again(m: Option<QueueMutation>) -> bool {
        let mut pool = Mempool::new(16, 16);
        pool.admit(vtx(0, 0, TRANSFER_GAS), &RICH).unwrap();
        let mut q = queue(m);
        let first = q.cut(0, &pool, 10, 4 * TRANSFER_GAS).txs;
        assert_eq!(first.len(), 1);
        q.delivered(0, &pool);
        q.cut(1, &pool, 10, 4 * TRANSFER_GAS).txs == first
    }

    #[test]
    fn a_delivered_but_pending_transaction_forgotten_is_caught() {
        assert!(proposed_again(None), "control: proposed again");
        assert!(!proposed_again(Some(QueueMutation::DeliveredForgotten)), "the bug never proposes it again");
    }

    /// [`LbftMutation::ShareNotEnforced`]: a transaction above the
    /// validator's gas share must be refused at submission.
    fn heavy_refused(m: Option<LbftMutation>) -> Result<Hash32, SubmitError> {
        let share = ChainConfig::default().block_gas_limit / N as u64;
        let dir = tempfile::tempdir().unwrap();
        let net = Net::new(dir.path());
        let v = net.start_with(0, SimDisk::new(), |s| s.mutation = m);
        let got = admit(&v, &[tx(0, 0, share + 1)]).remove(0);
        v.node.shutdown();
        got
    }

    #[test]
    fn a_transaction_above_the_gas_share_admitted_is_caught() {
        assert!(matches!(heavy_refused(None), Err(SubmitError::GasLimitAboveShare { .. })), "control: refused");
        assert!(heavy_refused(Some(LbftMutation::ShareNotEnforced)).is_ok(), "the bug admits it");
    }

    /// [`QueueMutation::EveryProposalCounted`]: proposals in batches that
    /// lost the agreement must not count toward giving a transaction up —
    /// here five of them under a limit of two.
    fn given_up_after_lost_batches(m: Option<QueueMutation>) -> bool {
        let mut pool = Mempool::new(16, 16);
        let h = pool.admit(vtx(0, 0, TRANSFER_GAS), &RICH).unwrap();
        let mut q = ProposalQueue::new(2);
        q.mutation = m;
        let mut given_up = false;
        for e in 0..5 {
            given_up |= q.cut(e, &pool, 10, 4 * TRANSFER_GAS).give_up.contains(&h);
            q.delivered_without_own_batch(e, &pool);
        }
        given_up
    }

    #[test]
    fn counting_lost_batches_toward_giving_up_is_caught() {
        assert!(!given_up_after_lost_batches(None), "control: still proposed");
        assert!(given_up_after_lost_batches(Some(QueueMutation::EveryProposalCounted)), "the bug gives it up");
    }

    /// [`QueueMutation::RoundRobinFromOldest`]: three senders with ten
    /// transactions each ahead of a victim's one, three slots a batch, every
    /// proposed transaction executing in its epoch — the round goes on
    /// across batches, so the victim is proposed in epoch 1; the epoch the
    /// victim was first proposed in.
    fn victim_proposed_at(m: Option<QueueMutation>) -> Option<u64> {
        let mut pool = Mempool::new(1_000, 100);
        for from in 0..3 {
            for n in 0..10 {
                pool.admit(vtx(from, n, TRANSFER_GAS), &RICH).unwrap();
            }
        }
        let victim = pool.admit(vtx(5, 0, TRANSFER_GAS), &RICH).unwrap();
        let mut q = queue(m);
        let mut nonces: std::collections::HashMap<gridledger_core::Address, u64> = Default::default();
        for e in 0..12 {
            let txs: Vec<SignedTransaction> = q
                .cut(e, &pool, 3, u64::MAX)
                .txs
                .iter()
                .map(|r| SignedTransaction::from_bytes(r, 1 << 16).unwrap())
                .collect();
            if txs.iter().any(|t| t.hash() == victim) {
                return Some(e);
            }
            for t in &txs {
                *nonces.entry(t.sender()).or_default() += 1;
            }
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(senders, |a| Account { nonce: nonces.get(a).copied().unwrap_or(0), ..RICH });
            q.delivered(e, &pool);
        }
        None
    }

    #[test]
    fn a_round_robin_restarting_at_the_oldest_sender_is_caught() {
        assert_eq!(victim_proposed_at(None), Some(1), "control: the victim goes in the second batch");
        assert_eq!(
            victim_proposed_at(Some(QueueMutation::RoundRobinFromOldest)),
            Some(10),
            "the bug starves the victim until the three queues are drained"
        );
    }

    /// [`QueueMutation::GasCutForgotten`]: sender 0 (gas price 2, first in
    /// the mempool's order) keeps two transactions with gas limit = the
    /// whole budget queued, sender 1 (price 1) has one of the same size, and
    /// every batch executes whole. Sender 1's, left out of the first batch
    /// for gas, must go first in the second; the epoch it was taken in.
    fn taken_behind_a_budget_sized_sender(m: Option<QueueMutation>) -> Option<u64> {
        let budget = 4 * TRANSFER_GAS;
        let mut pool = Mempool::new(64, 16);
        let h = pool.admit(vtx(1, 0, budget), &RICH).unwrap();
        let f = dev_key(0).address();
        let mut q = queue(m);
        let (mut done, mut next) = (0u64, 0u64);
        for e in 0..10 {
            while next < done + 2 {
                pool.admit(vtx_at(0, next, budget, 2), &Account { nonce: done, ..RICH }).unwrap();
                next += 1;
            }
            let txs: Vec<SignedTransaction> = q
                .cut(e, &pool, 10, budget)
                .txs
                .iter()
                .map(|r| SignedTransaction::from_bytes(r, 1 << 16).unwrap())
                .collect();
            if txs.iter().any(|t| t.hash() == h) {
                return Some(e);
            }
            done += txs.iter().filter(|t| t.sender() == f).count() as u64;
            pool.prune([f], |_| Account { nonce: done, ..RICH });
            q.delivered(e, &pool);
        }
        None
    }

    #[test]
    fn a_gas_cut_sender_not_served_first_next_batch_is_caught() {
        assert_eq!(taken_behind_a_budget_sized_sender(None), Some(1), "control: taken in the second batch");
        assert_eq!(
            taken_behind_a_budget_sized_sender(Some(QueueMutation::GasCutForgotten)),
            None,
            "the bug lets sender 0 take every batch"
        );
    }

    /// [`QueueMutation::RoundOpenToNewcomers`] (attack r9 [1]): sender 1
    /// keeps two transactions with gas limit = the whole budget queued and
    /// each epoch a new sender (dev accounts 10, 11, …) sends one of the
    /// same size; every batch executes whole. Senders arriving after a
    /// round started wait for the next one, so sender 1 keeps getting
    /// turns; the batches (of 12) that took one of sender 1's.
    fn served_among_newcomers(m: Option<QueueMutation>) -> usize {
        let budget = 4 * TRANSFER_GAS;
        let mut pool = Mempool::new(64, 16);
        let h = dev_key(1).address();
        let mut q = queue(m);
        let (mut done, mut next) = (0u64, 0u64);
        let mut turns = 0;
        for e in 0..12 {
            while next < done + 2 {
                pool.admit(vtx(1, next, budget), &Account { nonce: done, ..RICH }).unwrap();
                next += 1;
            }
            pool.admit(vtx(10 + e, 0, budget), &RICH).unwrap();
            let txs: Vec<SignedTransaction> = q
                .cut(e as u64, &pool, 10, budget)
                .txs
                .iter()
                .map(|r| SignedTransaction::from_bytes(r, 1 << 16).unwrap())
                .collect();
            let took = txs.iter().filter(|t| t.sender() == h).count() as u64;
            turns += usize::from(took > 0);
            done += took;
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            pool.prune(
                senders,
                |a| if *a == h { Account { nonce: done, ..RICH } } else { Account { nonce: 1, ..RICH } },
            );
            q.delivered(e as u64, &pool);
        }
        turns
    }

    #[test]
    fn newcomers_joining_an_open_round_is_caught() {
        assert!(served_among_newcomers(None) >= 3, "control: sender 1 keeps getting turns");
        assert_eq!(
            served_among_newcomers(Some(QueueMutation::RoundOpenToNewcomers)),
            1,
            "the bug keeps the round open for ever: sender 1 is served once"
        );
    }

    /// A mempool and a proposal queue whose senders each keep one
    /// transaction pending ([`Senders::top_up`]), cut batch by batch: the
    /// set-up of the round-credit scenarios.
    struct Senders {
        pool: Mempool,
        q: ProposalQueue,
        /// Each sender's transactions taken so far (its account nonce).
        done: std::collections::HashMap<gridledger_core::Address, u64>,
        /// Each sender's next nonce to admit.
        next: std::collections::HashMap<usize, u64>,
    }

    impl Senders {
        fn new(m: Option<QueueMutation>) -> Self {
            Senders { pool: Mempool::new(256, 16), q: queue(m), done: Default::default(), next: Default::default() }
        }

        /// Admits for each `(from, gas, price)` transactions until one of
        /// `from`'s is pending beyond those taken.
        fn top_up(&mut self, senders: impl IntoIterator<Item = (usize, u64, u128)>) {
            for (from, gas, price) in senders {
                let d = self.done.get(&dev_key(from).address()).copied().unwrap_or(0);
                let n = self.next.entry(from).or_default();
                while *n < d + 1 {
                    self.pool.admit(vtx_at(from, *n, gas, price), &Account { nonce: d, ..RICH }).unwrap();
                    *n += 1;
                }
            }
        }

        /// Batch `e` (at most five transactions, `budget` gas), its
        /// transactions counted as taken.
        fn cut(&mut self, e: usize, budget: u64) -> Vec<SignedTransaction> {
            let txs: Vec<SignedTransaction> = self
                .q
                .cut(e as u64, &self.pool, 5, budget)
                .txs
                .iter()
                .map(|r| SignedTransaction::from_bytes(r, 1 << 16).unwrap())
                .collect();
            for t in &txs {
                *self.done.entry(t.sender()).or_default() += 1;
            }
            txs
        }

        /// Batch `e`'s transactions `txs` executed and the batch delivered.
        fn deliver(&mut self, e: usize, txs: &[SignedTransaction]) {
            let senders: Vec<_> = txs.iter().map(|t| t.sender()).collect();
            let done = &self.done;
            self.pool.prune(senders, |a| Account { nonce: done.get(a).copied().unwrap_or(0), ..RICH });
            self.q.delivered(e as u64, &self.pool);
        }
    }

    /// [`QueueMutation::RoundCreditOneBatch`] (attack r11 [1]): 20 senders
    /// (dev accounts 20…39) each keep one transaction of two transfers' gas
    /// queued and dev account 2 one transfer, five slots and 40 transfers'
    /// gas a batch (rounds of five batches' gas); dev account 1 keeps one of
    /// the whole 40 queued at a higher gas price. The round's credit covers
    /// it every round. With one batch's gas as credit (under two transfers'
    /// gas each, so the 20 are lent a little each round and never held back
    /// by debt; dev account 2's need keeps the level from being multiplied
    /// up) it is lent a batch once, and then waits about 20 rounds to repay
    /// that debt. How many of 60 batches carried it.
    fn heavy_beside_transfer_senders(m: Option<QueueMutation>) -> usize {
        let budget = 40 * TRANSFER_GAS;
        let mut s = Senders::new(m);
        let mut heavy = 0;
        for e in 0..60usize {
            let small = (20..40).map(|c| (c, 2 * TRANSFER_GAS, 1)).chain([(2, TRANSFER_GAS, 1)]);
            s.top_up(small.chain([(1, budget, 5)]));
            let txs = s.cut(e, budget);
            if txs.iter().any(|t| t.sender() == dev_key(1).address()) {
                heavy += 1;
            }
            s.deliver(e, &txs);
        }
        heavy
    }

    #[test]
    fn a_round_crediting_one_batch_of_gas_is_caught() {
        let control = heavy_beside_transfer_senders(None);
        assert!(control >= 8, "control: served about every round: {control} of 60");
        let planted = heavy_beside_transfer_senders(Some(QueueMutation::RoundCreditOneBatch));
        assert!(planted <= 3, "the bug serves it rounds later: {planted} of 60");
    }

    /// [`QueueMutation::CreditOnly`] (attack r12 [1]): 20 senders (dev
    /// accounts 20…39) each keep one transaction of the whole budget queued
    /// at gas price 5 (a batch holds one), and dev account 1 keeps one
    /// transfer queued. The batches (of at most 120) until every one of
    /// the 20 had its first transaction proposed, and how many of them
    /// carried at most the transfer.
    fn calls_beside_one_transfer(m: Option<QueueMutation>) -> (usize, usize) {
        let budget = 40 * TRANSFER_GAS;
        let mut s = Senders::new(m);
        let mut served: std::collections::HashSet<gridledger_core::Address> = Default::default();
        let mut light = 0;
        for e in 0..120usize {
            s.top_up((20..40).map(|c| (c, budget, 5)).chain([(1, TRANSFER_GAS, 1)]));
            let txs = s.cut(e, budget);
            if txs.iter().map(|t| t.tx.gas_limit).sum::<u64>() <= TRANSFER_GAS {
                light += 1;
            }
            for t in &txs {
                if t.sender() != dev_key(1).address() {
                    served.insert(t.sender());
                }
            }
            if served.len() == 20 {
                return (e + 1, light);
            }
            s.deliver(e, &txs);
        }
        (120, light)
    }

    #[test]
    fn batches_cut_by_credit_alone_are_caught() {
        let control = calls_beside_one_transfer(None);
        assert!(control.0 <= 22 && control.1 <= 2, "control: one call a batch: {control:?}");
        let planted = calls_beside_one_transfer(Some(QueueMutation::CreditOnly));
        assert!(planted.1 >= 10, "the bug cuts batches carrying at most the transfer: {planted:?}");
    }

    /// [`LbftMutation::UnpayableKept`]: a transaction validator 2's own
    /// delivered batch left unexecuted because its sender cannot pay (attack
    /// r8 [2]) must leave its mempool after that delivery, not be proposed
    /// again.
    #[test]
    fn an_unpayable_transaction_kept_is_caught() {
        let control = unpayable_share_sized(|_| {});
        assert!(control.left && control.proposals <= 2, "control: evicted after its delivery: {control:?}");
        let planted = unpayable_share_sized(|s| s.mutation = Some(LbftMutation::UnpayableKept));
        assert!(!planted.left && planted.proposals > 2, "the bug proposes it again: {planted:?}");
    }

    /// [`LbftMutation::DeliveredDeduplicated`]: a Byzantine validator
    /// proposes an honest client's nonce 1 alone one epoch before the
    /// honest batch carrying nonces 0 and 1 (attack r6 [1]); the copy is
    /// skipped (nonce gap) and must not hold the honest one back — nonce 1
    /// commits in nonce 0's epoch or the next. With the bug it is
    /// suppressed as a duplicate for the 64-epoch window.
    #[test]
    fn a_duplicate_window_over_unexecuted_transactions_is_caught() {
        let control = early_next_nonce(true, |_| {});
        let [Some(c0), c1, _] = control.commits else { panic!("control: nonce 0 committed: {control:?}") };
        assert!(control.copied && c1.is_some_and(|c| c <= c0 + 1), "control: nonce 1 right after nonce 0: {control:?}");
        let planted = early_next_nonce(true, |s| s.mutation = Some(LbftMutation::DeliveredDeduplicated));
        let [Some(c0), c1, _] = planted.commits else { panic!("nonce 0 committed: {planted:?}") };
        assert!(planted.copied && planted.early_delivered == Some(0), "the puppet's copy came first: {planted:?}");
        assert!(c1.is_none_or(|c| c > c0 + 1), "the bug holds nonce 1 back: {planted:?}");
    }

    /// [`LbftMutation::NoNonceDeferral`]: a Byzantine validator copies an
    /// honest client's nonce 1 into its batch, delivered before the honest
    /// batch carrying nonces 0 and 1; execution must run nonce 1 right
    /// after nonce 0, in the same block. With the bug, nonce 1 is skipped
    /// (and commits an epoch later, re-proposed).
    #[test]
    fn execution_in_delivery_order_only_is_caught() {
        let control = copied_next_nonce(true, |_| {});
        assert!(control.copied && control.same_block, "control: nonces 0 and 1 in one block");
        let planted = copied_next_nonce(true, |s| s.mutation = Some(LbftMutation::NoNonceDeferral));
        assert!(planted.copied, "the puppet copied nonce 1");
        assert!(!planted.same_block, "the bug skips the copied nonce 1");
    }
}
