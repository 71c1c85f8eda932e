//! Attacks on pipelined PBFT heights (issue 9 item 10), each a test that
//! failed before its fix (the "Fixed" line of each says how).

use gridledger_consensus::pbft::sim::SimBlock;
use gridledger_consensus::pbft::{Config, Message, Payload, Replica, Step, Target, Timer, ValidatorSet};
use gridledger_core::crypto::KeyPair;
use gridledger_core::Hash32;

const N: usize = 4;

/// Four real pipelining replicas over a network whose deliveries the test
/// chooses (messages that do not match the delivery filter stay held).
struct Net {
    rs: Vec<Replica<SimBlock>>,
    held: Vec<(u32, u32, Message<SimBlock>)>,
    /// Every pre-prepare a replica signed and sent (plain or inside a
    /// new-view): (signer, height, view, block digest).
    signed: Vec<(u32, u64, u64, Hash32)>,
    /// Whether leader `me` has a block for `(h, v)` (e.g. an empty mempool).
    has_block: fn(u32, u64, u64) -> bool,
    built: u64,
}

impl Net {
    fn new(has_block: fn(u32, u64, u64) -> bool) -> Self {
        let keys: Vec<KeyPair> = (0..N).map(|i| KeyPair::from_seed(&format!("attack-pipeline-{i}"))).collect();
        let set = ValidatorSet::new(Hash32([9; 32]), keys.iter().map(|k| k.public()).collect()).unwrap();
        let rs = (0..N as u32)
            .map(|me| {
                let cfg = Config { pipeline: true, ..Config::new(set.clone(), me) };
                Replica::new(cfg, keys[me as usize].clone()).unwrap()
            })
            .collect();
        Self { rs, held: Vec::new(), signed: Vec::new(), has_block, built: 0 }
    }

    fn apply(&mut self, me: u32, mut s: Step<SimBlock>) {
        loop {
            let mut more = Step::default();
            for v in std::mem::take(&mut s.validate) {
                more.extend(self.rs[me as usize].handle_validated(v.height, v.view, v.payload.digest(), Ok(())));
            }
            if let Some((h, v)) = s.need_proposal.take() {
                if (self.has_block)(me, h, v) {
                    // Every build differs (the driver's timestamp and mempool move on).
                    self.built += 1;
                    let b =
                        SimBlock { height: h, parent: Hash32::ZERO, proposer: me, txs: vec![h * 100 + v, self.built] };
                    more.extend(self.rs[me as usize].propose(h, v, b));
                }
            }
            for o in std::mem::take(&mut s.messages) {
                match &o.message {
                    Message::PrePrepare(p) => self.signed.push((me, p.height, p.view, p.payload.digest())),
                    Message::NewView(nv) => self.signed.push((
                        me,
                        nv.pre_prepare.height,
                        nv.pre_prepare.view,
                        nv.pre_prepare.payload.digest(),
                    )),
                    _ => {}
                }
                let targets: Vec<u32> = match o.to {
                    Target::All => (0..N as u32).filter(|t| *t != me).collect(),
                    Target::One(t) => vec![t],
                };
                for t in targets {
                    self.held.push((me, t, o.message.clone()));
                }
            }
            if more.messages.is_empty() && more.validate.is_empty() && more.need_proposal.is_none() {
                return;
            }
            s = more;
        }
    }

    fn start(&mut self) {
        for i in 0..N as u32 {
            let s = self.rs[i as usize].start();
            self.apply(i, s);
        }
    }

    /// Delivers held messages that `pass` until none is left to deliver.
    fn deliver(&mut self, pass: impl Fn(u32, u32, &Message<SimBlock>) -> bool) {
        for _ in 0..10_000 {
            let (now, later): (Vec<_>, Vec<_>) =
                std::mem::take(&mut self.held).into_iter().partition(|(f, t, m)| pass(*f, *t, m));
            self.held = later;
            if now.is_empty() {
                return;
            }
            for (f, t, m) in now {
                let s = self.rs[t as usize].handle_message(f, m);
                self.apply(t, s);
            }
        }
        panic!("deliveries never settle: {} held", self.held.len());
    }

    fn fire(&mut self, height: u64, view: u64) {
        for i in 0..N as u32 {
            let s = self.rs[i as usize].handle_timer(Timer { height, view });
            self.apply(i, s);
        }
    }

    fn slots_signed_twice(&self) -> Vec<(u32, u64, u64, Vec<Hash32>)> {
        let mut by: std::collections::BTreeMap<(u32, u64, u64), Vec<Hash32>> = Default::default();
        for (s, h, v, d) in &self.signed {
            let e = by.entry((*s, *h, *v)).or_default();
            if !e.contains(d) {
                e.push(*d);
            }
        }
        by.into_iter().filter(|(_, d)| d.len() > 1).map(|((s, h, v), d)| (s, h, v, d)).collect()
    }
}

fn is_commit_of_view(m: &Message<SimBlock>, view: u64) -> bool {
    matches!(m, Message::Commit(c) if c.view == view)
}

/// FINDING (safety of the leader's signature; "never replaced by another
/// proposal for the slot" in `Replica::early`'s docs).
///
/// Leaders (view + height) % 4: (1,1)=2, (2,1)=3, (1,2)=3, (2,2)=0.
/// 1. Height 1, view 1: validator 2 proposes P, everyone prepares P and
///    sends its view-1 commit, but those commits are held back.
/// 2. Timeouts: view 2 at height 1, validator 3's new-view re-proposes P,
///    everyone prepares P again; validator 0 (leader of (2, 2)) holds the
///    prepared certificate of (1, 2) and sends its early pre-prepare X for
///    (height 2, view 2). The view-2 commits are held back too.
/// 3. The view-1 commits arrive: every replica commits P with the view-1
///    certificate, and `commit` sets the view back to 1 (the certificate's
///    view). Validator 0's early slot (2, 2) is not the new slot (2, 1), so
///    `early` is dropped without a trace.
/// 4. The leader of (2, 1) has nothing to propose; timeouts: view 2 at
///    height 2, and validator 0, leader of the new view, asks for and
///    signs a fresh block Z for (height 2, view 2).
///
/// Expected: a correct validator signs at most one pre-prepare per
/// (height, view). Observed: validator 0 signed X and Z for (2, 2) — signed
/// equivocation evidence against a correct validator (any holder of both
/// messages can prove it; replicas report `Fault::Equivocation` when both
/// reach them in the same view). No replica votes for both (X is dropped as
/// a later view's pre-prepare by replicas at view 1), so no fork follows
/// from this alone; it spends the f budget of an honest node.
///
/// Suggested fix: keep the early pre-prepare (with its slot) until the
/// height passes its slot, and when this replica later leads that very slot
/// (a new-view without a prepared certificate, or `need_proposal`) reuse
/// the early block if its parent is the committed one, else send nothing in
/// that slot (or: never let `commit` move `view` below the view of the
/// replica's own prepared certificate / announced slot).
///
/// Fixed: the early pre-prepare is kept until the height or view passes its
/// slot; validator 0's new-view of (2, 2) carries X again.
#[test]
fn correct_leader_never_signs_two_pre_prepares_for_one_slot() {
    // Validator 3 has nothing to propose at height 2 in view 1; nobody
    // proposes beyond height 2 (so the run settles).
    let mut net = Net::new(|me, h, v| h <= 2 && !(me == 3 && h == 2 && v == 1));
    net.start();
    // Step 1: everything but the view-1 commits.
    net.deliver(|_, _, m| !is_commit_of_view(m, 1));
    assert!(net.rs.iter().all(|r| r.height() == 1), "height 1 must not commit yet");
    // Step 2: view change to 2 at height 1; commits of views 1 and 2 held.
    net.fire(1, 1);
    net.deliver(|_, _, m| !matches!(m, Message::Commit(_)));
    assert!(net.rs.iter().all(|r| r.height() == 1 && r.view() == 2), "all at (1, 2)");
    let early: Vec<_> = net.signed.iter().filter(|(s, h, v, _)| (*s, *h, *v) == (0, 2, 2)).collect();
    assert_eq!(early.len(), 1, "validator 0 proposed (2, 2) early: {:?}", net.signed);
    // Step 3: the view-1 commits arrive (the view-2 commits stay held).
    net.deliver(|_, _, m| !is_commit_of_view(m, 2));
    assert!(net.rs.iter().all(|r| r.height() == 2 && r.view() == 1), "all committed height 1 in view 1");
    // Step 4: nothing is proposed at (2, 1): view change to 2 at height 2.
    net.fire(2, 1);
    net.deliver(|_, _, _| true);
    assert!(net.rs.iter().all(|r| r.height() >= 3), "height 2 committed in view 2");
    let twice = net.slots_signed_twice();
    assert!(twice.is_empty(), "a correct validator signed two blocks for one slot: {twice:?}");
}

/// FINDING (mutation sensitivity of the default configuration).
///
/// `tests/mutants.rs` runs the `NewViewSkipsHighestPrepared` planted bug
/// with pipelining OFF, although pipelining is on by default: the same
/// targeted scenario (validator 0's links out slow, Byzantine validator 3
/// crafting the new-view of view 2 at height 1), run with pipelining on,
/// is not caught within the check's budget of 40 seeds (its comment says
/// seed 140). Expected: the mutation check catches every planted bug in the
/// configuration validators run. Observed: not within 40 seeds.
///
/// Suggested fix: a scenario that does not depend on height-1 timing, e.g.
/// aim the slow links and the crafted new-view at a height `h >= 2` chosen
/// after the run has pipelined a few heights (the leader of `h + 1`'s early
/// pre-prepare shifts when view changes start), or let the Byzantine
/// validators craft the new-view at every height where they lead the next
/// view, and keep the budget.
///
/// Fixed: the scenario of `tests/mutants.rs` now makes validator 1 the
/// Byzantine one and slows validator 2's links out (caught at seed 3
/// pipelined, seed 0 without); the check runs pipelined.
#[cfg(feature = "mutants")]
#[test]
fn new_view_mutant_is_caught_with_pipelining_on() {
    use gridledger_consensus::pbft::sim::{Behaviour, Scenario};
    use gridledger_node::sim::{run_driver, DriverSimOptions};
    use gridledger_node::validator::Mutation;
    use gridledger_sim::{Delay, NetConfig};
    use rand::{Rng, SeedableRng};
    // The scenario of tests/mutants.rs for this mutant, verbatim.
    let scenario = |seed: u64| {
        let mut sc = Scenario::random(seed, 4);
        sc.min_height = 12;
        let behaviours = vec![Behaviour::CraftNewView, Behaviour::Collude, Behaviour::SplitCommits];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        sc.byzantine = [(1, behaviours)].into();
        sc.net = NetConfig::reliable(4, 20);
        for to in [0, 1, 3] {
            sc.net.links[2][to] = Delay::Uniform { min: 1_500, max: 1_500 + rng.random_range(0..500) };
        }
        sc.net.gst = 2_500;
        sc.disk_crashes.clear();
        sc.write_failures.clear();
        sc
    };
    let m = Mutation::NewViewSkipsHighestPrepared;
    let opts = DriverSimOptions { restart_after: None, mutation: Some(m), pipeline: Some(true) };
    let caught = (0..40u64).find(|&seed| run_driver(&scenario(seed), &opts).is_err());
    // Sanity: the same scenario catches it with pipelining off.
    let off = DriverSimOptions { pipeline: Some(false), ..opts.clone() };
    let caught_off = (0..40u64).find(|&seed| run_driver(&scenario(seed), &off).is_err());
    assert!(caught_off.is_some(), "the scenario catches the bug with pipelining off");
    assert!(caught.is_some(), "not caught within 40 seeds with pipelining on (off: seed {caught_off:?})");
}

/// FINDING (the simulator's own vote-durability invariant, default config).
///
/// The n = 4 driver sweep of `tests/sim_driver.rs` with
/// `GRIDLEDGER_SIM_SEEDS=200` (250 seeds; CI runs 6 and misses them) reports
/// 6 lost votes with pipelining on, all of one shape: a validator signed at
/// `(h + 1, v)` (its early pre-prepare) and restarted at tip `h - 1` with the
/// vote state of `(h, v')` whose `next` is not `(h + 1, v)` (the
/// simulator's check accepts exactly that), e.g. seed 48: validator 3
/// "voted at height 2 view 1, restarted at tip 0 with vote state (1, 3)";
/// seed 79: validator 1 "voted at height 3 view 2, restarted at tip 1 with
/// vote state (2, 2)". `Durable::next` holds one slot, and by code reading
/// two paths drop the early slot from it: (a) `next_slot()` prefers a
/// restored `next_blocked` slot still live at this height over the newly
/// `announced` one (seed 79's shape: the record of (2, 2) declares the old
/// blocked slot, not (3, 2)); (b) `announced` is overwritten by a later
/// view's prepared certificate of the same height (seed 48's shape). If the
/// height then commits with the view-`v` certificate, the restarted leader
/// is not blocked from `(h + 1, v)` and proposes a second block there.
/// Without pipelining nothing is signed at `h + 1` before `h` commits, so
/// these seeds pass (checked below as the control).
/// Expected: no `Violation::LostVote`. Observed: LostVote at seeds 48, 64,
/// 79, 109, 125 (and one more of the 250).
///
/// Suggested fix: the durable record keeps every next-height slot this
/// replica signed in (the early pre-prepare's slot as well as a restored
/// one, e.g. `next: Vec<(u64, u64)>`), written (synced) before an early
/// pre-prepare leaves if it is not already covered, and the replica stays
/// blocked from all of them; or `commit` never lowers the view below the
/// replica's latest prepared view.
///
/// Fixed: `Durable::next` lists every such slot (restored ones, early
/// pre-prepares' and the last declared one) until the height or view
/// passes it.
#[test]
fn driver_seeds_lose_no_vote_with_pipelining() {
    use gridledger_consensus::pbft::sim::Scenario;
    use gridledger_node::sim::{run_driver, DriverSimOptions};
    let sc = |seed: u64| {
        let mut sc = Scenario::random(seed, 4);
        sc.min_height = 50;
        sc
    };
    let mut lost = Vec::new();
    for seed in [48, 64, 79, 109, 125] {
        // #[allow]: `DriverSimOptions` has one more field with the `mutants` feature.
        #[allow(clippy::needless_update)]
        let off = DriverSimOptions { pipeline: Some(false), ..DriverSimOptions::default() };
        run_driver(&sc(seed), &off).unwrap_or_else(|v| panic!("control (pipelining off) fails too: {v:?}"));
        if let Err(v) = run_driver(&sc(seed), &DriverSimOptions::default()) {
            lost.push(v);
        }
    }
    assert!(lost.is_empty(), "pipelining on: {lost:?}");
}
