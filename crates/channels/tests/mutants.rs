//! Mutation sensitivity of the channel checks (DESIGN principle 2): each
//! bug of `machine::Mutation` is planted in the real state machine behind
//! the `mutants` feature and the check aimed at it (the same assertions as
//! the crash, counter, fold-policy, dispute and restart tests) must report
//! it; without the bug every check passes (the control).
//!
//! The channel simulator (`chansim`, the seeds of `sim.rs`) is run against
//! each bug too, and must catch the ones listed in [`SIM_CATCHES`].
//!
//! Run with `cargo test -p gridledger-channels --features mutants --test mutants`.

mod common;

mod chansim;

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::machine::{Policy, PriceBounds};
use gridledger_channels::{mutants, Input, Message, Mutation, Request};
use gridledger_contracts::args;
use gridledger_contracts::cns::{ChannelDisputeArgs, ChannelState, Fold, Trade};
use gridledger_core::{Amount, Energy};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

fn duo(dir: &std::path::Path) -> Duo {
    common::duo(dir, &DuoConfig::default())
}

fn trade(wh: u64, price: u128) -> Trade {
    let (energy, price_per_kwh) = (Energy(wh), Amount(price));
    Trade { buyer: 0, energy, price_per_kwh, amount: Trade::price_of(energy, price_per_kwh).unwrap() }
}

fn pay(d: &mut Duo, side: usize, wh: u64) {
    let t = trade(wh, 100);
    let _ = d.request(side, Request::Pay { amount: t.amount, energy: t.energy, price_per_kwh: t.price_per_kwh });
}

fn latest(d: &Duo, side: usize) -> Option<ChannelState> {
    d.parties[side].machine.as_ref().and_then(|m| m.latest()).map(|l| l.state.clone())
}

/// `base` with side 0 buying `t` on top, at `counter`.
fn buy(base: &ChannelState, counter: u64, t: Trade) -> ChannelState {
    let mut st = base.clone();
    st.prev_counter = base.counter;
    st.counter = counter;
    st.balances[0].0 -= t.amount.0;
    st.balances[1].0 += t.amount.0;
    st.energy[1].0 += t.energy.0;
    st.last_trade = Some(t);
    st
}

/// Kill side 1 at each of its first persists (the store is not written),
/// restart it and let it pay first: no party may ever have let out
/// signatures on two different states with one counter.
fn crash_at_every_persist() -> Result<(), String> {
    for k in 0..4 {
        let dir = tempfile::tempdir().unwrap();
        let mut d = duo(dir.path());
        d.parties[1].crash_after_persists = Some(k);
        for _ in 0..3 {
            pay(&mut d, 0, 1_000);
        }
        if d.parties[1].machine.is_none() {
            d.restart(1);
        }
        pay(&mut d, 1, 2_000);
        d.reconnect();
        pay(&mut d, 0, 3_000);
        catch_unwind(AssertUnwindSafe(|| d.assert_no_divergent_signatures()))
            .map_err(|_| format!("crash at persist {k}: two states signed at one counter"))?;
    }
    Ok(())
}

/// A proposal reusing the co-signed counter (a different state) is
/// refused.
fn reused_counter_refused() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    pay(&mut d, 0, 1_000);
    pay(&mut d, 0, 1_000);
    let base = latest(&d, 1).unwrap();
    // The co-signed counter again, with another trade on the same base.
    let mut replay = buy(&base, base.counter, trade(500, 100));
    replay.prev_counter = base.counter;
    let sig = replay.sign(&d.parties[0].esc_key, 5);
    let m = d.parties[1].machine.as_mut().unwrap();
    let step = m.handle(Input::Peer(Message::Propose { state: replay, nonce: 5, sig })).unwrap();
    let released = m.handle(Input::Persisted(u64::MAX)).unwrap();
    let accepted = step.messages.iter().chain(&released.messages).any(|m| matches!(m, Message::Accept { .. }));
    if accepted {
        return Err("a used counter was signed again".into());
    }
    Ok(())
}

/// Every trade of a fold is checked against the user's policy, not only
/// the last.
fn fold_checked_against_policy() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    let bounds =
        PriceBounds { min_price_per_kwh: Amount(50), max_price_per_kwh: Amount(500), max_energy: Energy(10_000) };
    let p = &mut d.parties[1];
    p.params.policy = Some(Policy(Arc::new(bounds)));
    let store = p.machine.as_ref().unwrap().store().clone();
    p.machine = Some(
        gridledger_channels::ChannelMachine::restore(p.esc_key.clone(), p.nonce_seed, p.params.clone(), store).unwrap(),
    );
    let base = latest(&d, 1).unwrap();
    let trades = vec![trade(1_000, 10), trade(1_000, 100)];
    let mut st = buy(&buy(&base, base.counter + 1, trades[0]), base.counter + 1, trades[1]);
    st.fold = Some(Fold { trades: 2, hash: Fold::hash(&trades) });
    st.prev_counter = base.counter;
    let sig = st.sign(&d.parties[0].esc_key, 6);
    let m = d.parties[1].machine.as_mut().unwrap();
    let step = m.handle(Input::Peer(Message::ProposeFolded { state: st, nonce: 6, sig, trades })).unwrap();
    match step.messages.as_slice() {
        [Message::Reject { reason, .. }, ..] if reason.contains("policy") => Ok(()),
        other => Err(format!("a fold with a trade below the policy's floor was not refused: {other:?}")),
    }
}

/// A peer's dispute on an older state is answered with the newer one
/// before the timer ends.
fn stale_dispute_answered() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    for _ in 0..3 {
        pay(&mut d, 0, 1_000);
    }
    let stale = d.channel().unwrap().latest; // the registered open state
    let key = d.parties[0].account.clone();
    d.submit(&key, "channel_dispute", args(&ChannelDisputeArgs { side: 0, state: stale }), Amount::ZERO);
    d.pump();
    for _ in 0..8 {
        d.advance(2_000);
    }
    let on_chain = d.channel().unwrap().latest.state.counter;
    if on_chain != 3 {
        return Err(format!("the stale dispute stood: the chain holds counter {on_chain}, not 3"));
    }
    Ok(())
}

/// A restarted party holds the co-signed state it persisted.
fn restart_keeps_the_co_signed_state() -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let mut d = duo(dir.path());
    pay(&mut d, 0, 1_000);
    pay(&mut d, 0, 1_000);
    let before = latest(&d, 1);
    d.crash(1);
    d.restart(1);
    if latest(&d, 1) != before {
        return Err(format!(
            "restarted with {:?}, had {:?}",
            latest(&d, 1).map(|s| s.counter),
            before.map(|s| s.counter)
        ));
    }
    Ok(())
}

/// Simulator seeds tried per planted bug.
const SIM_BUDGET: u64 = 20;

/// The bugs the simulator alone must catch within [`SIM_BUDGET`] seeds:
/// every planted bug, now that it crashes parties inside a step (between a
/// persist and the messages it releases), runs a stale-dispute adversary
/// and gives parties price-floor policies with folded payments.
const SIM_CATCHES: [Mutation; 5] = Mutation::ALL;

/// The first seed of the channel simulator that reports a violation.
fn sim_catches() -> Option<u64> {
    (0..SIM_BUDGET).find(|seed| catch_unwind(|| chansim::run_seed(*seed)).is_err())
}

type Check = fn() -> Result<(), String>;

fn check_for(m: Mutation) -> (&'static str, Check) {
    match m {
        Mutation::SignBeforePersist => ("crash at every persist", crash_at_every_persist),
        Mutation::SkipCounterCheck => ("reused counter refused", reused_counter_refused),
        Mutation::FoldSkipsPolicy => ("fold checked against policy", fold_checked_against_policy),
        Mutation::AcceptOlderDispute => ("stale dispute answered", stale_dispute_answered),
        Mutation::LoseDurable => ("restart keeps the co-signed state", restart_keeps_the_co_signed_state),
    }
}

#[test]
fn every_planted_channel_bug_is_caught_and_the_checks_pass_without_it() {
    std::panic::set_hook(Box::new(|_| {}));
    let mut missed = vec![];
    for m in Mutation::ALL {
        let (name, check) = check_for(m);
        mutants::plant(None);
        if let Err(e) = check() {
            let _ = std::panic::take_hook();
            panic!("control: {name} fails without any bug: {e}");
        }
        mutants::plant(Some(m));
        let r = catch_unwind(check);
        let sim = sim_catches();
        mutants::plant(None);
        eprintln!("{m:?}: simulator {}", sim.map_or("missed it".into(), |s| format!("caught it at seed {s}")));
        if SIM_CATCHES.contains(&m) && sim.is_none() {
            missed.push(m);
        }
        match r {
            Ok(Err(e)) => eprintln!("{m:?} caught by {name}: {e}"),
            Err(_) => eprintln!("{m:?} caught by {name} (it panicked)"),
            Ok(Ok(())) => missed.push(m),
        }
    }
    let _ = std::panic::take_hook();
    assert!(missed.is_empty(), "planted bugs not caught: {missed:?}");
}
