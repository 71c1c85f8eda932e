//! Attacks on pipelined PBFT heights, round 2: the bounded list of
//! next-height slots (`Durable::next`, `MAX_NEXT_SLOTS`) under view-change
//! storms and restarts, over real replicas and a network whose deliveries
//! the test chooses.

use gridledger_consensus::pbft::sim::SimBlock;
use gridledger_consensus::pbft::{
    CommittedEntry, Config, Durable, Message, Payload, Replica, Step, Target, Timer, ValidatorSet, MAX_NEXT_SLOTS,
};
use gridledger_core::crypto::KeyPair;
use gridledger_core::Hash32;
use std::collections::BTreeMap;

const N: usize = 4;
/// Nobody has anything to propose above this height (so runs settle).
const GOAL: u64 = 4;

struct Net {
    keys: Vec<KeyPair>,
    set: ValidatorSet,
    rs: Vec<Replica<SimBlock>>,
    /// Last record each replica persisted (treated as synced) and its log.
    durable: Vec<Option<Durable<SimBlock>>>,
    log: Vec<Vec<CommittedEntry<SimBlock>>>,
    held: Vec<(u32, u32, Message<SimBlock>)>,
    /// Every pre-prepare signed (plain or in a new-view), across restarts.
    signed: Vec<(u32, u64, u64, Hash32)>,
    built: u64,
    max_next: usize,
}

impl Net {
    fn new() -> Self {
        let keys: Vec<KeyPair> = (0..N).map(|i| KeyPair::from_seed(&format!("attack-pipeline-r2-{i}"))).collect();
        let set = ValidatorSet::new(Hash32([7; 32]), keys.iter().map(|k| k.public()).collect()).unwrap();
        let rs = (0..N as u32)
            .map(|me| {
                Replica::new(Config { pipeline: true, ..Config::new(set.clone(), me) }, keys[me as usize].clone())
            })
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        Self {
            keys,
            set,
            rs,
            durable: vec![None; N],
            log: vec![Vec::new(); N],
            held: Vec::new(),
            signed: Vec::new(),
            built: 0,
            max_next: 0,
        }
    }

    fn restart(&mut self, me: u32) {
        let cfg = Config { pipeline: true, ..Config::new(self.set.clone(), me) };
        let i = me as usize;
        self.rs[i] = Replica::restore(cfg, self.keys[i].clone(), &self.log[i], self.durable[i].clone()).unwrap();
        let s = self.rs[i].start();
        self.apply(me, s);
    }

    fn apply(&mut self, me: u32, mut s: Step<SimBlock>) {
        loop {
            let i = me as usize;
            if let Some(d) = s.persist.take() {
                self.max_next = self.max_next.max(d.next.len());
                self.durable[i] = Some(d);
            }
            self.log[i].extend(std::mem::take(&mut s.committed));
            let mut more = Step::default();
            for v in std::mem::take(&mut s.validate) {
                more.extend(self.rs[i].handle_validated(v.height, v.view, v.payload.digest(), Ok(())));
            }
            if let Some((h, v)) = s.need_proposal.take().filter(|(h, _)| *h <= GOAL) {
                self.built += 1;
                let b = SimBlock { height: h, parent: Hash32::ZERO, proposer: me, txs: vec![h * 1000 + v, self.built] };
                more.extend(self.rs[i].propose(h, v, b));
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
            if more.messages.is_empty()
                && more.validate.is_empty()
                && more.need_proposal.is_none()
                && more.persist.is_none()
                && more.committed.is_empty()
            {
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
        panic!("deliveries never settle");
    }

    fn fire_all(&mut self) {
        for i in 0..N as u32 {
            let (h, v) = (self.rs[i as usize].height(), self.rs[i as usize].view());
            let s = self.rs[i as usize].handle_timer(Timer { height: h, view: v });
            self.apply(i, s);
        }
    }

    fn slots_signed_twice(&self) -> Vec<(u32, u64, u64, Vec<Hash32>)> {
        let mut by: BTreeMap<(u32, u64, u64), Vec<Hash32>> = Default::default();
        for (s, h, v, d) in &self.signed {
            let e = by.entry((*s, *h, *v)).or_default();
            if !e.contains(d) {
                e.push(*d);
            }
        }
        by.into_iter().filter(|(_, d)| d.len() > 1).map(|((s, h, v), d)| (s, h, v, d)).collect()
    }
}

fn is_commit(m: &Message<SimBlock>) -> bool {
    matches!(m, Message::Commit(_))
}

/// Runs a view-change storm at height 1 (every commit held) for `views`
/// views, restarting validator `crash` after each view when given, then
/// lets the commits of the views `release` picks through.
fn storm(views: u64, crash: Option<u32>, release: impl Fn(u64) -> bool) -> Net {
    let mut net = Net::new();
    net.start();
    net.deliver(|_, _, m| !is_commit(m));
    for _ in 0..views {
        net.fire_all();
        net.deliver(|_, _, m| !is_commit(m));
        if let Some(c) = crash {
            net.restart(c);
            net.deliver(|_, _, m| !is_commit(m));
        }
    }
    net.deliver(|_, _, m| match m {
        Message::Commit(c) => release(c.view),
        _ => true,
    });
    net
}

fn finish(net: &mut Net, goal: u64) {
    for _ in 0..200 {
        if net.rs.iter().all(|r| r.height() >= goal) {
            return;
        }
        net.fire_all();
        net.deliver(|_, _, _| true);
    }
    let at: Vec<_> = net.rs.iter().map(|r| (r.height(), r.view())).collect();
    panic!("no progress to height {goal}: {at:?}");
}

/// A storm of 33..45 views at height 1 (every commit held): each early
/// leader of height 2 pre-prepares in its slots until its list is full,
/// then the commits of one of the last views arrive. No validator signs two
/// blocks for one slot, the record never holds more than the bound, and
/// heights keep committing.
#[test]
fn view_change_storm_signs_each_slot_once_and_stays_live() {
    for views in [34u64, 45] {
        for back in [0u64, 2, 5] {
            let mut net = storm(views, None, |v| v + back == 1 + views);
            finish(&mut net, GOAL + 1);
            let twice = net.slots_signed_twice();
            assert!(twice.is_empty(), "views {views} back {back}: {twice:?}");
            assert_eq!(net.max_next, MAX_NEXT_SLOTS, "the storm fills the list of next-height slots");
        }
    }
}

/// The same storm with one validator restarted after every view (from its
/// last record): its restored slots fill the list at once.
#[test]
fn view_change_storm_with_restarts_signs_each_slot_once_and_stays_live() {
    for crash in 0..N as u32 {
        for views in [10u64, 40] {
            for back in [0u64, 3] {
                let mut net = storm(views, Some(crash), |v| v + back == 1 + views);
                finish(&mut net, GOAL + 1);
                let twice = net.slots_signed_twice();
                assert!(twice.is_empty(), "crash {crash} views {views} back {back}: {twice:?}");
                assert!(net.max_next <= MAX_NEXT_SLOTS);
            }
        }
    }
}
