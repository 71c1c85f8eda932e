//! The two-party channel under the generic simulator's network
//! (`gridledger_sim`): two real `ChannelMachine`s as simulator nodes, the
//! CNS contract on a dev chain as a reliable shared ledger they submit to
//! and poll (through the in-memory [`Duo`] driver), and the simulator's
//! links delaying, dropping, duplicating and reordering their messages and
//! crashing and restarting them from what they persisted. One party may
//! crash for good (silent) before the close. Seeds also crash a party
//! inside a step (after a persist's messages left, before its store was
//! written; it restarts at once from its file), run a stale-dispute
//! adversary (one side's account raises a dispute with the state
//! registered at open after newer ones were co-signed; the other side must
//! answer it), give parties a price-floor policy and pay several trades in
//! one folded update. Every seed must end with: no two different states
//! signed at one counter, no trade below a party's floor in anything it
//! signed, the channel closed on chain on the newest state a non-silent
//! party holds, coins conserved, the credit ledger balanced. `GL_CHANNEL_SIM_SEEDS=<from>..<to>` picks the
//! seeds (default 0..300).

mod chansim;

use chansim::run_seed;

fn seeds() -> std::ops::Range<u64> {
    std::env::var("GL_CHANNEL_SIM_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(0..300)
}

#[test]
fn channel_under_the_simulated_network() {
    let t = std::time::Instant::now();
    let (mut updates, mut dropped, mut dup, mut silent, mut disputed, mut crashes) = (0, 0, 0, 0, 0, 0);
    let (mut step_crashes, mut stale, mut refusals, mut folds) = (0, 0, 0, 0);
    let range = seeds();
    let n = range.end.saturating_sub(range.start);
    for seed in range {
        let r = run_seed(seed);
        updates += r.closed;
        dropped += r.dropped;
        dup += r.duplicated;
        silent += u64::from(r.silent);
        disputed += u64::from(r.disputed);
        crashes += r.crashes;
        step_crashes += r.step_crashes;
        stale += r.stale_disputes;
        refusals += r.policy_refusals;
        folds += r.folds;
    }
    println!(
        "{n} seeds: {updates} co-signed updates closed on chain, {dropped} messages dropped, {dup} duplicated, \
         {crashes} crashes, {silent} runs with a silent party, {disputed} closed through a dispute, \
         {step_crashes} crashes inside a step, {stale} stale disputes, {folds} folds, {refusals} proposals \
         below a policy floor, {:?}",
        t.elapsed()
    );
    assert!(updates > n, "the runs trade, not just open and close");
    if n >= 100 {
        assert!(silent > 0 && disputed > 0 && crashes > 0 && dropped > 0 && dup > 0, "the runs cover the faults");
        assert!(step_crashes > 0 && stale > 0 && folds > 0 && refusals > 0, "and the adversaries and policies");
    }
}
