//! The two-party channel under the generic simulator's network, shared by
//! `sim.rs` (the seeds CI runs) and `mutants.rs` (planted bugs it must
//! catch): see `sim.rs` for what every seed checks.
#![allow(dead_code)]

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds};
use gridledger_channels::{ChannelEvent, ChannelMachine, ChannelStore, Input, Message, Phase, Request};
use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelStatus, Trade};
use gridledger_contracts::{args, default_registry};
use gridledger_core::{Amount, Energy, Hash32};
use gridledger_ledger::devnet::DevChain;
use gridledger_sim::{Crash, Delay, Dest, Effects, NetConfig, NodeId, Protocol, Simulation, Time, TimerOp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

const BAL: Amount = Amount(1_000_000_000_000);
/// How often a party polls the chain and ticks its machine (ticks = ms).
const POLL: Time = 20;

/// What both simulator nodes share: the driver (machines, disks, chain),
/// the clock, and each side's user script.
struct World {
    duo: Duo,
    /// Simulator time; the chain's clock is `base + now` (ms).
    now: Time,
    base: u64,
    scripts: [Vec<(Time, Request)>; 2],
    next: [usize; 2],
    /// Side 0 keeps asking to open until this time.
    open_until: Time,
    /// `(side, time)`: this side's user asks to close from then on until the
    /// machine takes it (a close is refused while an update is in flight).
    close: (usize, Time),
    /// The stale-dispute adversary: from this time on, side `.0`'s account
    /// raises a dispute with the state registered on chain (the open) once
    /// a newer one is co-signed; the other side must answer it.
    cheat: Option<(usize, Time)>,
    cheated: bool,
    /// Every proposal each side let out, by its state hash: the trades it
    /// carries (all of a fold's), to check the receiver's policy on what it
    /// signed.
    proposals: [HashMap<Hash32, Vec<Trade>>; 2],
    /// Crashes inside a step (between a persist and the messages it
    /// releases) that happened.
    step_crashes: usize,
    /// The chain events each side was handed, in order.
    chain_log: [Vec<gridledger_channels::ChainEvent>; 2],
}

#[derive(Clone, Debug, PartialEq)]
enum Timer {
    Poll,
    Script,
}

/// One party as a simulator node.
struct SimParty {
    side: usize,
    world: Rc<RefCell<World>>,
}

impl SimParty {
    /// Runs `f` on the world with the chain clock at the simulator's time,
    /// then collects what the party sent, output and set.
    fn with(&mut self, f: impl FnOnce(&mut World, usize)) -> Effects<Self> {
        let mut w = self.world.borrow_mut();
        let s = self.side;
        // The dev chain steps its clock 1 s per block; keep it on the
        // simulator's clock, only ever after the newest block.
        let tip = w.duo.chain.chain.tip().timestamp;
        w.duo.chain.now = (w.base + w.now).max(tip + 1);
        f(&mut w, s);
        // Chain events this party has not seen yet (blocks it polled).
        while let Some(e) = w.duo.parties[s].chain_inbox.pop_front() {
            w.chain_log[s].push(e.clone());
            let _ = w.duo.input(s, Input::Chain(e));
        }
        // A crash inside a step (the driver's `crash_after_persists`: the
        // step's own messages went out, its store was never written): the
        // process restarts at once from its file, replays the channel's
        // chain events from the start (as the party's event cursor does),
        // and reconnects.
        if w.duo.parties[s].machine.is_none() {
            w.step_crashes += 1;
            w.duo.restart(s);
            for e in w.chain_log[s].clone() {
                let _ = w.duo.input(s, Input::Chain(e));
            }
            // Its user, whose request got no answer, pays again at once
            // (before the link is back): a party must not sign anew at a
            // counter whose signature already left.
            let (energy, price_per_kwh) = (Energy(10), Amount(100));
            let amount = Trade::price_of(energy, price_per_kwh).unwrap_or(Amount(1));
            let _ = w.duo.input(s, Input::User(Request::Pay { amount, energy, price_per_kwh }));
            let _ = w.duo.input(s, Input::Connected);
        }
        let mut fx = Effects::default();
        let peer = 1 - s;
        let sends: Vec<(Dest, Vec<u8>)> =
            w.duo.parties[peer].inbox.drain(..).map(|b| (Dest::One(peer as NodeId), b)).collect();
        for (_, b) in &sends {
            match Message::from_bytes(b) {
                Ok(Message::Propose { state, nonce, .. }) => {
                    let trades = state.last_trade.into_iter().collect();
                    w.proposals[s].insert(state.hstate(nonce), trades);
                }
                Ok(Message::ProposeFolded { state, nonce, trades, .. }) => {
                    w.proposals[s].insert(state.hstate(nonce), trades);
                }
                _ => {}
            }
        }
        fx.sends = sends;
        for e in w.duo.parties[s].events.drain(..) {
            match e {
                ChannelEvent::Fault(f) => fx.faults.push(f),
                e => fx.outputs.push(e),
            }
        }
        fx
    }

    fn arm_script(w: &World, s: usize, fx: &mut Effects<Self>) {
        if let Some((t, _)) = w.scripts[s].get(w.next[s]) {
            fx.timers.push(TimerOp::Set { timer: Timer::Script, after: t.saturating_sub(w.now).max(1) });
        }
    }
}

impl Protocol for SimParty {
    type Message = Vec<u8>;
    type Timer = Timer;
    type Output = ChannelEvent;
    type Fault = String;
    /// The party's snapshot file.
    type Persisted = Option<Vec<u8>>;

    fn start(&mut self) -> Effects<Self> {
        let mut fx = self.with(|w, s| {
            let now = w.duo.chain.now;
            let _ = w.duo.input(s, Input::Tick(now));
        });
        fx.timers.push(TimerOp::Set { timer: Timer::Poll, after: POLL });
        Self::arm_script(&self.world.borrow(), self.side, &mut fx);
        fx
    }

    fn handle_message(&mut self, _from: NodeId, bytes: Vec<u8>) -> Effects<Self> {
        self.with(|w, s| {
            // Undecodable bytes are dropped, as the party's link does.
            if let Ok(m) = Message::from_bytes(&bytes) {
                let _ = w.duo.input(s, Input::Peer(m));
            }
        })
    }

    fn handle_timer(&mut self, timer: Timer) -> Effects<Self> {
        let mut fx = self.with(|w, s| match timer {
            Timer::Poll => {
                let now = w.duo.chain.now;
                let _ = w.duo.input(s, Input::Tick(now));
                let idle = w.duo.parties[s].machine.as_ref().is_some_and(|m| m.phase() == Phase::Idle);
                if s == 0 && idle && w.now < w.open_until {
                    let _ = w.duo.input(s, Input::User(Request::Open));
                }
                let open = w.duo.parties[s].machine.as_ref().is_some_and(|m| m.phase() == Phase::Open);
                if (s, true) == (w.close.0, w.now >= w.close.1) && open {
                    let _ = w.duo.input(s, Input::User(Request::Close));
                }
                // The adversary acts on the honest side's clock (it may itself
                // be crashed: it only needs its account and an old state).
                if let Some((cheater, _)) = w.cheat.filter(|(c, at)| 1 - c == s && w.now >= *at && !w.cheated) {
                    let on_chain = w.duo.channel().filter(|c| c.status == ChannelStatus::Open);
                    let newer =
                        w.duo.parties.iter().filter_map(|p| p.machine.as_ref()?.latest()).map(|l| l.state.counter);
                    if let Some(ch) = on_chain.filter(|c| newer.max().is_some_and(|n| n > c.latest.state.counter)) {
                        w.cheated = true;
                        let key = w.duo.parties[cheater].account.clone();
                        let a = args(&ChannelDisputeArgs { side: cheater as u8, state: ch.latest });
                        w.duo.submit(&key, "channel_dispute", a, Amount::ZERO);
                    }
                }
            }
            Timer::Script => {
                while let Some((t, r)) = w.scripts[s].get(w.next[s]).cloned() {
                    if t > w.now {
                        break;
                    }
                    w.next[s] += 1;
                    // Refusals (busy, not open, too poor) are the user's problem.
                    let _ = w.duo.input(s, Input::User(r));
                }
            }
        });
        let w = self.world.borrow();
        match timer {
            Timer::Poll => fx.timers.push(TimerOp::Set { timer: Timer::Poll, after: POLL }),
            Timer::Script => Self::arm_script(&w, self.side, &mut fx),
        }
        fx
    }

    fn persisted(&self) -> Self::Persisted {
        self.world.borrow().duo.parties[self.side].disk.clone()
    }
}

impl Drop for SimParty {
    /// The simulator drops a node when it crashes: its machine and unread
    /// input go with it; the snapshot file stays.
    fn drop(&mut self) {
        if let Ok(mut w) = self.world.try_borrow_mut() {
            w.duo.crash(self.side);
        }
    }
}

fn latest_counter(store: Option<&ChannelStore>) -> Option<u64> {
    store.and_then(|s| s.latest.as_ref()).map(|l| l.state.counter)
}

/// Runs one seed; panics on a violated invariant.
pub fn run_seed(seed: u64) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_C4A7);
    let dir = tempfile::tempdir().unwrap();
    let cfg = DuoConfig {
        credit: [rng.random_bool(0.5), rng.random_bool(0.5)],
        capacity: [Amount(rng.random_range(1_000..100_000)), Amount(rng.random_range(0..100_000))],
        retry_ms: 100,
        close_timeout_ms: 400,
        // Blocks are 1 s apart on the dev chain: t_Δ spans several.
        t_delta_ms: 20_000,
        ..DuoConfig::default()
    };
    let mut duo = Duo::setup(DevChain::open(dir.path(), 6, BAL, default_registry()).unwrap(), &cfg);
    // Policy runs: each side may refuse incoming trades below a price floor
    // (checked on every trade of a fold).
    let mut floors = [None, None];
    for (side, floor) in floors.iter_mut().enumerate() {
        if rng.random_bool(0.5) {
            let min = Amount(rng.random_range(20..200));
            let bounds = PriceBounds {
                min_price_per_kwh: min,
                max_price_per_kwh: Amount(u128::MAX),
                max_energy: Energy(u64::MAX),
            };
            let p = &mut duo.parties[side];
            p.params.policy = Some(Policy(Arc::new(bounds)));
            p.machine = Some(ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, p.params.clone()));
            *floor = Some(min);
        }
    }
    // Crash inside a step: one side dies at one of its persists, after the
    // step's messages left and before its store is written.
    let step_crash = rng.random_bool(0.3).then(|| (rng.random_range(0..2usize), rng.random_range(2..25u32)));
    if let Some((side, k)) = step_crash {
        duo.parties[side].crash_after_persists = Some(k);
    }
    let close_at: Time = rng.random_range(2_000..4_000);
    let closer = rng.random_range(0..2usize);
    let mut scripts: [Vec<(Time, Request)>; 2] = [vec![(1, Request::Open)], vec![]];
    let trade = |rng: &mut ChaCha8Rng| {
        let energy = Energy(rng.random_range(1..5_000));
        let price = Amount(rng.random_range(1..500));
        (Trade::price_of(energy, price).unwrap(), energy, price)
    };
    for _ in 0..rng.random_range(3..30) {
        let side = rng.random_range(0..2);
        let at = rng.random_range(200..close_at);
        // Some users pay several trades at once: one folded update.
        let r = if rng.random_bool(0.3) {
            Request::PayMany((0..rng.random_range(2..5)).map(|_| trade(&mut rng)).collect())
        } else {
            let (amount, energy, price_per_kwh) = trade(&mut rng);
            Request::Pay { amount, energy, price_per_kwh }
        };
        scripts[side].push((at, r));
    }
    for s in &mut scripts {
        s.sort_by_key(|(t, _)| *t);
    }
    // Crashes before the close restart before it; the non-closer may also
    // crash for good (silent).
    let mut crashes = vec![];
    for _ in 0..rng.random_range(0..3) {
        let at = rng.random_range(300..close_at - 200);
        crashes.push(Crash { node: rng.random_range(0..2), at, restart_at: Some(rng.random_range(at + 1..close_at)) });
    }
    let silent = rng.random_bool(0.2).then_some(1 - closer);
    if let Some(s) = silent {
        crashes.push(Crash { node: s as NodeId, at: rng.random_range(300..close_at), restart_at: None });
    }
    // The stale-dispute adversary is never the side that must answer it:
    // a silent party, if any, is the cheater.
    let cheat = rng.random_bool(0.3).then(|| {
        let cheater = silent.unwrap_or_else(|| rng.random_range(0..2usize));
        (cheater, rng.random_range(500..close_at))
    });
    let (min, max) = (1, rng.random_range(5..80));
    let net = NetConfig {
        nodes: 2,
        links: vec![vec![Delay::Spiky { min, max, spike_per_mille: 50, spike: 300 }; 2]; 2],
        drop_per_mille: [0, 50, 200][rng.random_range(0..3)],
        dup_per_mille: [0, 50][rng.random_range(0..2)],
        gst: close_at,
        stable_delay: Delay::Uniform { min: 1, max: 20 },
        partitions: vec![],
        crashes: crashes.clone(),
    };
    let world = Rc::new(RefCell::new(World {
        base: duo.chain.now,
        duo,
        now: 0,
        scripts,
        next: [0, 0],
        open_until: close_at.saturating_sub(500),
        close: (closer, close_at),
        cheat,
        cheated: false,
        proposals: [HashMap::new(), HashMap::new()],
        step_crashes: 0,
        chain_log: [vec![], vec![]],
    }));
    let w2 = world.clone();
    let mut sim = Simulation::new(seed, net, move |id, saved: Option<Option<Vec<u8>>>| {
        let side = id as usize;
        if let Some(disk) = saved {
            let mut w = w2.borrow_mut();
            w.duo.parties[side].disk = disk;
            w.duo.restart(side);
        }
        SimParty { side, world: w2.clone() }
    });
    sim.start();
    let limit: Time = close_at + 60_000;
    let mut closed_at = None;
    while let Some(t) = sim.next_time() {
        if t > limit {
            break;
        }
        world.borrow_mut().now = t;
        sim.step();
        let w = world.borrow();
        if closed_at.is_none() && w.duo.channel().is_some_and(|c| c.status == ChannelStatus::Closed) {
            closed_at = Some(t);
        }
        // Let both parties see the close, then stop.
        if closed_at.is_some_and(|c| t > c + 10 * POLL) {
            break;
        }
    }
    let w = world.borrow();
    let d = &w.duo;
    d.assert_no_divergent_signatures();
    // Policy: nothing a side signed of its peer's carries a trade below its
    // floor, folds included (every trade, not only the last).
    let mut refused_by_policy = 0;
    for (r, floor) in floors.iter().enumerate() {
        let Some(min) = floor else { continue };
        for (_, h) in &d.parties[r].signed {
            let Some(trades) = w.proposals[1 - r].get(h) else { continue };
            for t in trades {
                let paid = t.amount.0.saturating_mul(1000);
                let need = u128::from(t.energy.0).saturating_mul(min.0);
                assert!(
                    paid >= need,
                    "seed {seed}: side {r} signed a trade of {} for {} Wh, below its floor {min}/kWh",
                    t.amount,
                    t.energy
                );
            }
        }
        refused_by_policy += w.proposals[1 - r]
            .values()
            .filter(|ts| ts.iter().any(|t| t.amount.0.saturating_mul(1000) < u128::from(t.energy.0) * min.0))
            .count();
    }
    let ch = d.channel().unwrap_or_else(|| {
        panic!(
            "seed {seed}: channel never registered; crashes {crashes:?}, phases {:?}, stats {:?}, outputs {:?}",
            d.parties.iter().map(|p| p.machine.as_ref().map(|m| m.phase())).collect::<Vec<_>>(),
            sim.stats,
            sim.outputs.iter().take(10).collect::<Vec<_>>()
        )
    });
    assert_eq!(
        ch.status,
        ChannelStatus::Closed,
        "seed {seed}: not closed by {limit}; closer {closer}, silent {silent:?}, crashes {crashes:?}, crash in a \
         step {step_crash:?} ({} happened), stale dispute {cheat:?}, phases {:?}",
        w.step_crashes,
        d.parties.iter().map(|p| p.machine.as_ref().map(|m| m.phase())).collect::<Vec<_>>()
    );
    // The newest state a non-silent party holds (in memory or on disk).
    let mut newest = None;
    for s in 0..2 {
        if silent == Some(s) {
            continue;
        }
        let p = &d.parties[s];
        let disk = p.disk.as_ref().and_then(|b| ChannelStore::from_bytes(b).ok());
        newest = newest.max(latest_counter(p.machine.as_ref().map(|m| m.store()))).max(latest_counter(disk.as_ref()));
    }
    let closed = ch.latest.state.counter;
    if std::env::var("GL_SIM_TRACE").is_ok() {
        for o in &sim.outputs {
            eprintln!("{o:?}");
        }
        eprintln!("disputes {:?} closer {closer} close_at {close_at}", d.esc().disputes);
    }
    assert_eq!(Some(closed), newest, "seed {seed}: closed on {closed}, newest a non-silent party holds {newest:?}");
    d.assert_coins_conserved();
    d.assert_credit_balanced();
    Run {
        closed,
        dropped: sim.stats.dropped,
        duplicated: sim.stats.duplicated,
        silent: silent.is_some(),
        disputed: !d.esc().disputes.is_empty(),
        crashes: crashes.len(),
        step_crashes: w.step_crashes,
        stale_disputes: usize::from(w.cheated),
        policy_refusals: refused_by_policy,
        folds: w.proposals.iter().flat_map(|m| m.values()).filter(|ts| ts.len() > 1).count(),
    }
}

pub struct Run {
    pub closed: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub silent: bool,
    pub disputed: bool,
    pub crashes: usize,
    /// Crashes between a step's persist and its send.
    pub step_crashes: usize,
    /// Stale disputes the adversary raised.
    pub stale_disputes: usize,
    /// Proposals carrying a trade below the receiver's floor.
    pub policy_refusals: usize,
    /// Folded proposals (several trades in one update).
    pub folds: usize,
}
