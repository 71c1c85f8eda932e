//! The epoch-level model behind the thesis' Ch.4 figures (§4.6), driving
//! the real batching code (`consensus::lbft::txm`: TBG, the HSM/random
//! selection, F^A) and the shared simulator's adversary models
//! (`sim::adversary_mobile`: M^RC with Eq 4.4 checked, the RSS order, the
//! DFES slow set, Eq 4.9).
//!
//! What is modelled and how (the seed's own simulator is "several thousand
//! lines of Python" that are not published, §4.6.1):
//! - P^ABC is abstracted as the seed does: per epoch every correct replica
//!   broadcasts one batch; a batch is certified when its broadcaster is
//!   still correct Δ = 2κ − 2 epochs later (Theorem 4.4 (i)); certified
//!   batches are ABC-delivered at the end of the epoch (at the end of epoch
//!   `e + Δ` for a DFES-slow broadcaster, the "delaying batch" strategy),
//!   keeping a duplicated transaction's earliest occurrence; every replica
//!   learns of a delivery before building its next batch. The epoch's
//!   wall-clock length is 14 steps of Eq 4.9, whose transmission term
//!   carries the largest batch broadcast in that epoch (300-byte
//!   transactions). When the real `lbft` ABC lands, these figures can drive
//!   it instead.
//! - TBG: each valid transaction goes to the τ replicas of F^A; each holder
//!   stores it with the real [`TbgBatcher`], which refuses it when the
//!   batch of its bucket's consultation epoch already holds B (the batch is
//!   never cut; its other holders may still batch it); invalid (flooding)
//!   transactions are refused by π^τ and never stored.
//! - HSM: every correct replica receives every transaction (hash spaces
//!   rotate among all replicas), so correct replicas' spaces hold the same
//!   content: the model keeps one copy of each space (a [`RandomBatcher`],
//!   HSM's random selection inside a space) and lets the epoch's manager
//!   `(r + e) mod N` draw B from it. The flooding strategy with the TM
//!   attack puts a variant of each invalid transaction into every space
//!   (N timestamps, §4.3.4); invalid variants are delivered (HSM has no
//!   validity filter before batching) and count as broadcasts but not as
//!   throughput. Each space is bounded (`HSM_SPACE_CAP`); overflow is refused.
//! - M^RC: ℓ random attacks per epoch (RSS's random strategy); a replica
//!   that turns Byzantine loses what it held and broadcasts nothing; a
//!   recovering (crashed) replica receives and broadcasts nothing.

use std::collections::{HashMap, HashSet};

use gridledger_consensus::lbft::txm::{
    array_function, nonce_value, BatchPolicy, Placement, RandomBatcher, TbgBatcher, TbgConfig,
};
use gridledger_core::ed25519::EdPublicKey as PublicKey;
use gridledger_core::Hash32;
use gridledger_sim::adversary_mobile::{
    delta, dfes_slow_set, rss_specific_order, McParams, ModelError, RecoveryCorruption, ReplicaState, StepLatency,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::result::{ChartSpec, Check, ExperimentResult, Series, Table};

/// Bytes per transaction (§4.6.1).
pub const TX_BYTES: u64 = 300;
/// Steps per P^ABC epoch (Speeding Dumbo, §4.6.1).
pub const STEPS: u64 = 14;
/// HSM: bound on one hash space's content (a replica's memory bound).
pub const HSM_SPACE_CAP: usize = 25_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Tbg,
    Hsm,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Tbg => "TBG",
            Policy::Hsm => "HSM",
        }
    }
}

/// One system run's parameters.
#[derive(Clone, Copy, Debug)]
pub struct SystemParams {
    pub policy: Policy,
    pub mc: McParams,
    pub tau: u32,
    pub groups: u32,
    pub batch: usize,
    /// CTL^pe: valid transactions per epoch.
    pub ctl: u32,
    /// Invalid (flooding) transactions per epoch (the seed sets ρ^C C = CTL^pe).
    pub itl: u32,
    /// Epochs during which clients submit (ce).
    pub ce: u64,
    /// DFES on.
    pub dfes: bool,
    pub seed: u64,
}

/// What a run measured (independent of Eq 4.9's constants).
#[derive(Clone, Debug, Default)]
pub struct SystemRun {
    pub submitted_valid: u64,
    pub delivered_valid: u64,
    /// Broadcast copies of the delivered valid transactions (C^RB).
    pub valid_copies: u64,
    /// Every broadcast transaction copy (valid or invalid, delivered or not).
    pub all_copies: u64,
    /// Largest broadcasts of one delivered valid transaction.
    pub max_copies: u64,
    /// Per epoch: the largest batch broadcast (transactions).
    pub max_batch: Vec<u64>,
    /// (submit epoch, delivery epoch) of each delivered valid transaction, aggregated.
    pub deliveries: HashMap<(u64, u64), u64>,
    /// Σ over epochs of the mean transactions held per correct replica, and the number of epochs.
    pub memory_sum: f64,
    pub memory_epochs: u64,
}

impl SystemRun {
    /// C^ARB over valid transactions (the seed's formula).
    pub fn carb_valid(&self) -> f64 {
        if self.delivered_valid == 0 {
            return 0.0;
        }
        (self.valid_copies as f64 - self.delivered_valid as f64) / self.delivered_valid as f64
    }

    /// Redundant broadcasts per delivered valid transaction counting every
    /// broadcast copy (invalid variants included).
    pub fn carb_all(&self) -> f64 {
        if self.delivered_valid == 0 {
            return 0.0;
        }
        (self.all_copies as f64 - self.delivered_valid as f64) / self.delivered_valid as f64
    }

    /// Epoch lengths (µs) under `lat`.
    fn epoch_us(&self, lat: &StepLatency) -> Vec<u64> {
        self.max_batch.iter().map(|&b| lat.epoch_us(STEPS, b * TX_BYTES)).collect()
    }

    /// Tps^A: unique valid transactions delivered per second over the run.
    pub fn tps(&self, lat: &StepLatency) -> f64 {
        let total: u64 = self.epoch_us(lat).iter().sum();
        if total == 0 {
            return 0.0;
        }
        self.delivered_valid as f64 / (total as f64 / 1e6)
    }

    /// L^A in seconds: from the end of the submission epoch to the end of the delivery epoch.
    pub fn latency_s(&self, lat: &StepLatency) -> f64 {
        let ep = self.epoch_us(lat);
        let mut cum = vec![0u64; ep.len() + 1];
        for (i, d) in ep.iter().enumerate() {
            cum[i + 1] = cum[i] + d;
        }
        let (mut sum, mut n) = (0f64, 0u64);
        for (&(s, d), &c) in &self.deliveries {
            let (s, d) = ((s as usize).min(ep.len() - 1), (d as usize).min(ep.len() - 1));
            let t = cum[d + 1].saturating_sub(cum[s + 1]);
            sum += t as f64 * c as f64;
            n += c;
        }
        if n == 0 {
            return 0.0;
        }
        sum / n as f64 / 1e6
    }

    /// L^A in epochs (the seed's formula: e_l − e − 1).
    pub fn latency_epochs(&self) -> f64 {
        let (mut sum, mut n) = (0f64, 0u64);
        for (&(s, d), &c) in &self.deliveries {
            sum += (d.saturating_sub(s + 1)) as f64 * c as f64;
            n += c;
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// AMC^re in transactions.
    pub fn amc(&self) -> f64 {
        if self.memory_epochs == 0 {
            0.0
        } else {
            self.memory_sum / self.memory_epochs as f64
        }
    }
}

const INVALID: u64 = 1 << 62;

fn client_key(id: u64) -> PublicKey {
    let mut pk = [2u8; 32];
    pk[1..9].copy_from_slice(&id.to_le_bytes());
    PublicKey(pk)
}

/// Runs one system simulation.
pub fn run_system(p: &SystemParams) -> Result<SystemRun, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let mut mrc = RecoveryCorruption::new(p.mc, &mut rng)?;
    let n = p.mc.replicas;
    let kappa = p.mc.kappa;
    let d = delta(kappa);
    let tcfg = TbgConfig { tau: p.tau, groups: p.groups, kappa: kappa as u32, batch: p.batch, max_stored: usize::MAX };
    let new_tbg = || TbgBatcher::<u64>::new(tcfg).expect("validated by the experiment");
    let mut tbg: Vec<TbgBatcher<u64>> = (0..n).map(|_| new_tbg()).collect();
    let mut spaces: Vec<RandomBatcher<u64>> =
        (0..n).map(|s| RandomBatcher::new(p.batch, HSM_SPACE_CAP, p.seed ^ (u64::from(s) << 20))).collect();
    let mut prev_state: Vec<ReplicaState> = vec![ReplicaState::Correct; n as usize];
    // Warm the corruption model up to steady state before clients start.
    let warm = p.mc.lambda + p.mc.eps_lambda() + 2;
    for e in 0..warm {
        mrc.random_attacks(e, &mut rng);
    }
    let start = warm;
    let drain = 2 * kappa * u64::from(p.groups) + d + 4;
    let end = start + p.ce + drain;
    let mut out = SystemRun::default();
    let mut submit_epoch: HashMap<u64, u64> = HashMap::new();
    let mut delivered: HashSet<u64> = HashSet::new();
    let mut copies: HashMap<u64, u64> = HashMap::new();
    // Deliveries scheduled for the end of an epoch: epoch → ids.
    let mut pending: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut next_id: u64 = 0;
    let mut hsm_space_of: HashMap<u64, u32> = HashMap::new();
    for e in start..end {
        if e > start {
            mrc.random_attacks(e, &mut rng);
        }
        let states: Vec<ReplicaState> = (0..n).map(|r| mrc.state(r, e)).collect();
        // A replica turning Byzantine loses what it held (RSS: deletes).
        for r in 0..n as usize {
            let bad = !states[r].is_correct();
            if bad && prev_state[r].is_correct() {
                tbg[r] = new_tbg();
            }
        }
        prev_state.clone_from(&states);
        let correct: Vec<u32> = (0..n).filter(|&r| states[r as usize].is_correct()).collect();
        // Submissions.
        if e < start + p.ce {
            for _ in 0..p.ctl {
                let id = next_id;
                next_id += 1;
                submit_epoch.insert(id, e);
                out.submitted_valid += 1;
                match p.policy {
                    Policy::Tbg => {
                        let nonce = nonce_value(id, &client_key(id), &Hash32::ZERO);
                        for (t, r) in array_function(&nonce, n, p.tau).into_iter().enumerate() {
                            if states[r as usize].is_correct() {
                                let _ = tbg[r as usize].store(Placement { epoch: e, slot: t as u32 }, id);
                            }
                        }
                    }
                    Policy::Hsm => {
                        let s = rng.random_range(0..n);
                        hsm_space_of.insert(id, s);
                        let _ = spaces[s as usize].store(Placement { epoch: e, slot: s }, id);
                    }
                }
            }
            if p.policy == Policy::Hsm {
                // TF + TM: a variant of each invalid transaction in every space.
                for i in 0..u64::from(p.itl) {
                    let base = INVALID | ((e & 0xFFFF) << 40) | (i << 8);
                    for s in 0..n {
                        let _ = spaces[s as usize].store(Placement { epoch: e, slot: s }, base ^ (u64::from(s) << 24));
                    }
                }
            }
        }
        // DFES: the slow set of this epoch.
        let crashed = states.iter().filter(|s| **s == ReplicaState::Crashed).count() as u64;
        let slow: HashSet<u32> = if p.dfes {
            dfes_slow_set(&correct, p.mc.f(), crashed, &mut rng).into_iter().collect()
        } else {
            HashSet::new()
        };
        // Batches.
        let mut max_batch = 0u64;
        for &r in &correct {
            let batch = match p.policy {
                Policy::Tbg => {
                    let b = tbg[r as usize].next_batch(e);
                    tbg[r as usize].end_epoch(e);
                    b
                }
                Policy::Hsm => {
                    let s = ((u64::from(r) + e) % u64::from(n)) as usize;
                    spaces[s].next_batch(e)
                }
            };
            max_batch = max_batch.max(batch.len() as u64);
            out.all_copies += batch.len() as u64;
            let certified = mrc.state(r, e + d).is_correct();
            for &id in &batch {
                if id & INVALID == 0 {
                    *copies.entry(id).or_default() += 1;
                }
            }
            if certified {
                let at = if slow.contains(&r) { e + d } else { e };
                pending.entry(at).or_default().extend(batch);
            }
        }
        out.max_batch.push(max_batch);
        // End of epoch: ABC-delivery (earliest occurrence kept), then every
        // replica learns of it.
        if let Some(ids) = pending.remove(&e) {
            for id in ids {
                if !delivered.insert(id) {
                    continue;
                }
                if id & INVALID == 0 {
                    out.delivered_valid += 1;
                    let s = submit_epoch.get(&id).copied().unwrap_or(e);
                    *out.deliveries.entry((s - start, e - start)).or_default() += 1;
                }
                match p.policy {
                    Policy::Tbg => {
                        // Only its τ recipients can hold it.
                        let nonce = nonce_value(id, &client_key(id), &Hash32::ZERO);
                        for r in array_function(&nonce, n, p.tau) {
                            tbg[r as usize].delivered(&id);
                        }
                    }
                    Policy::Hsm => {
                        let s = if id & INVALID != 0 {
                            ((id >> 24) & 0xFFFF) as u32
                        } else {
                            hsm_space_of.get(&id).copied().unwrap_or(0)
                        };
                        if let Some(sp) = spaces.get_mut(s as usize) {
                            sp.delivered(&id);
                        }
                    }
                }
            }
        }
        // Memory of a correct replica at the end of the epoch.
        let mem = match p.policy {
            Policy::Tbg => {
                let c = correct.len().max(1);
                correct.iter().map(|&r| tbg[r as usize].stored()).sum::<usize>() as f64 / c as f64
            }
            Policy::Hsm => spaces.iter().map(|s| s.stored()).sum::<usize>() as f64,
        };
        out.memory_sum += mem;
        out.memory_epochs += 1;
    }
    for (id, c) in &copies {
        if delivered.contains(id) {
            out.valid_copies += c;
            out.max_copies = out.max_copies.max(*c);
        }
    }
    Ok(out)
}

/// Fig 4-4's Monte Carlo: the share of targeted valid transactions that no
/// correct holder gets certified under TBG and the RSS attack.
#[derive(Clone, Copy, Debug)]
pub struct RssParams {
    pub mc: McParams,
    pub tau: u32,
    pub groups: u32,
    pub trials: u32,
    pub seed: u64,
}

/// Steady-state M^RC, a target sent to τ random holders at `e_c`; the
/// adversary then attacks ℓ holders per epoch in RSS's specific order
/// (random attacks with what is left). Holder `t` (group `x = t / g`)
/// broadcasts at `e_c + κ + 2κx` if it stayed correct since `e_c`; the
/// broadcast is certified if it is still correct Δ later. π^τ keeps the
/// flooding out of its buckets, so a correct scheduled holder always
/// selects the target (Theorem 4.4, aspect (a)).
pub fn rss_censorship(p: &RssParams) -> Result<f64, ModelError> {
    p.mc.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let k = p.mc.kappa;
    let g = p.tau.div_ceil(p.groups);
    let d = delta(k);
    let mut censored = 0u32;
    for _ in 0..p.trials {
        let mut m = RecoveryCorruption::new(p.mc, &mut rng)?;
        let e_c = p.mc.lambda + p.mc.eps_lambda() + 2;
        for e in 0..e_c {
            m.random_attacks(e, &mut rng);
        }
        let mut all: Vec<u32> = (0..p.mc.replicas).collect();
        all.shuffle(&mut rng);
        let holders: Vec<(u32, u64)> = all[..p.tau as usize]
            .iter()
            .enumerate()
            .map(|(t, &r)| (r, e_c + k + 2 * k * u64::from(t as u32 / g)))
            .collect();
        let last = holders.iter().map(|h| h.1).max().unwrap_or(e_c) + d;
        let order = rss_specific_order(&holders, e_c, p.mc.lambda, &mut rng);
        let mut queue = order.into_iter();
        for e in e_c..=last {
            let mut budget = p.mc.ell;
            while budget > 0 {
                let Some(r) = queue.by_ref().find(|&r| m.attackable(r, e)) else { break };
                if m.attack(r, e).is_ok() {
                    budget -= 1;
                }
            }
            m.random_attacks(e, &mut rng);
        }
        let ok = holders.iter().any(|&(r, at)| (e_c..=at + d).all(|e| m.state(r, e).is_correct()));
        if !ok {
            censored += 1;
        }
    }
    Ok(f64::from(censored) / f64::from(p.trials.max(1)))
}

/// Theorem 4.4's γ^TBG (Eq 4.8a–d), G' = G.
pub fn gamma_tbg(mc: &McParams, tau: u32, groups: u32) -> f64 {
    let (n, f) = (f64::from(mc.replicas), mc.f() as f64);
    let (k, l, lam) = (mc.kappa as f64, f64::from(mc.ell), mc.lambda as f64);
    let t = f64::from(tau);
    let frac = t / n;
    let n_at = |h: f64| -> f64 {
        let v = if h <= lam - 1.0 {
            t - (f - k * l) * frac - h * l * frac
        } else {
            let base = t - (f - k * l) * frac - (lam - 1.0) * l * frac;
            base - (h - (lam - 1.0)) * l
        };
        v.max(0.0)
    };
    let delta = 2.0 * k - 2.0;
    let gp = f64::from(groups);
    let mut fail = 1.0;
    for x in 1..=groups {
        let h = (2.0 * f64::from(x) - 1.0) * k;
        let nh = n_at(h);
        if nh <= 0.0 {
            continue;
        }
        let p1 = (1.0 / gp) * (n_at(h + delta) / nh);
        let suc = 1.0 - (1.0 - p1).powf(nh);
        fail *= 1.0 - suc;
    }
    1.0 - fail
}

/// Fig 4-2's Monte Carlo: under HSM and RSS, the probability that a
/// targeted transaction is never broadcast with a certificate.
#[derive(Clone, Copy, Debug)]
pub struct HsmUtbParams {
    pub mc: McParams,
    pub tau: u32,
    pub ctl: u32,
    pub batch: u32,
    pub trials: u32,
    pub seed: u64,
    /// Count a selection only if the holder also stays correct Δ more
    /// epochs (its certificate forms); `false` is the seed's literal
    /// "unable to be broadcast".
    pub need_certificate: bool,
}

/// The target sits in space j, held by τ random replicas; replica r manages
/// j at the epochs e with `(r + e) mod N = j`. RSS attacks holders in its
/// specific order from `e_c`; strategies 1–2 make the managed space hold
/// about `2·ITL^pe` invalid transactions plus two epochs of valid load
/// (`2·CTL^pe/N`), so a correct managing holder selects the target with
/// probability `B / |space|` (the seed's simplification: nothing older than
/// `e − 1` is counted). With `need_certificate`, a selection counts only if
/// the holder stays correct Δ more epochs. The window is N epochs (each
/// replica manages j once).
pub fn hsm_utb(p: &HsmUtbParams) -> Result<f64, ModelError> {
    p.mc.check()?;
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    let n = p.mc.replicas;
    let k = p.mc.kappa;
    let d = delta(k);
    let space = 2.0 * f64::from(p.ctl) + 2.0 * f64::from(p.ctl) / f64::from(n);
    let p_sel = (f64::from(p.batch) / space).min(1.0);
    let mut fails = 0u32;
    for _ in 0..p.trials {
        let mut m = RecoveryCorruption::new(p.mc, &mut rng)?;
        let e_c = p.mc.lambda + p.mc.eps_lambda() + 2;
        for e in 0..e_c {
            m.random_attacks(e, &mut rng);
        }
        let j = rng.random_range(0..n);
        let mut all: Vec<u32> = (0..n).collect();
        all.shuffle(&mut rng);
        let first = e_c + k;
        let managing = |r: u32| -> u64 {
            // Smallest e ≥ first with (r + e) mod N = j.
            let nn = u64::from(n);
            let want = (u64::from(j) + nn - u64::from(r)) % nn;
            first + (want + nn - first % nn) % nn
        };
        let holders: Vec<(u32, u64)> = all[..p.tau as usize].iter().map(|&r| (r, managing(r))).collect();
        let order = rss_specific_order(&holders, e_c, p.mc.lambda, &mut rng);
        let mut queue = order.into_iter();
        let last = first + u64::from(n) + d;
        for e in e_c..=last {
            let mut budget = p.mc.ell;
            while budget > 0 {
                let Some(r) = queue.by_ref().find(|&r| m.attackable(r, e)) else { break };
                if m.attack(r, e).is_ok() {
                    budget -= 1;
                }
            }
            m.random_attacks(e, &mut rng);
        }
        let mut done = false;
        let mut by_epoch = holders.clone();
        by_epoch.sort_by_key(|h| h.1);
        for &(r, at) in &by_epoch {
            let holds = (e_c..=at).all(|e| m.state(r, e).is_correct());
            if holds && rng.random_bool(p_sel) && (!p.need_certificate || m.state(r, at + d).is_correct()) {
                done = true;
                break;
            }
        }
        if !done {
            fails += 1;
        }
    }
    Ok(f64::from(fails) / f64::from(p.trials.max(1)))
}

/// The M^RC parameters of §4.6.3 (Figs 4-5…4-8): λ = 10, ℓ = 2, ε = 1,
/// p^B = 0.1, κ = 2.
pub fn mc_463(replicas: u32) -> McParams {
    McParams { replicas, static_ppm: 100_000, ell: 2, lambda: 10, eps_num: 1, eps_den: 1, kappa: 2 }
}

/// The grouping-latency measurement of Fig 4-9: `warm` + `runs` builds of a
/// batch at `per_epoch` transactions per (one-second) epoch; returns the
/// sorted durations in nanoseconds.
pub fn grouping_latency_ns(per_epoch: u32, warm: u32, runs: u32, seed: u64) -> Vec<u64> {
    use gridledger_consensus::lbft::txm::tbg::grouping_fixture;
    let cfg = TbgConfig { tau: 12, groups: 3, kappa: 2, batch: 2_500, max_stored: usize::MAX };
    let epoch = 100;
    let base = grouping_fixture(cfg, per_epoch, epoch, seed).expect("valid config");
    let mut out = Vec::with_capacity(runs as usize);
    for i in 0..warm + runs {
        let mut s = base.clone();
        let t = std::time::Instant::now();
        let b = s.next_batch(epoch);
        let ns = t.elapsed().as_nanos() as u64;
        std::hint::black_box(b);
        if i >= warm {
            out.push(ns);
        }
    }
    out.sort_unstable();
    out
}

/// The q-quantile of sorted values (nearest rank).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// One cell of the §4.6.3 grid (Figs 4-5, 4-7, 4-8).
pub struct GridCell {
    pub replicas: u32,
    pub ctl: u32,
    pub policy: Policy,
    pub run: SystemRun,
}

/// The system parameters of §4.6.3 (τ = 12, G = 3, κ = 2, λ = 10, ℓ = 2,
/// ε = 1, p^B = 0.1, B = 2,500, DFES on, ITL^pe = CTL^pe) — or, with
/// `quick`, a small analogue that still satisfies Eq 4.4 (N ∈ {16, 22},
/// λ = 3, ℓ = 1, τ = 8, G = 2, B = 100).
pub fn system_params(quick: bool, replicas: u32, ctl: u32, policy: Policy, seed: u64) -> SystemParams {
    if quick {
        let mc = McParams { replicas, static_ppm: 100_000, ell: 1, lambda: 3, eps_num: 1, eps_den: 1, kappa: 2 };
        SystemParams { policy, mc, tau: 8, groups: 2, batch: 100, ctl, itl: ctl, ce: 4, dfes: true, seed }
    } else {
        SystemParams {
            policy,
            mc: mc_463(replicas),
            tau: 12,
            groups: 3,
            batch: 2_500,
            ctl,
            itl: ctl,
            ce: 8,
            dfes: true,
            seed,
        }
    }
}

/// The grid's N values, loads and cells.
pub type Grid = (Vec<u32>, Vec<u32>, Vec<GridCell>);

/// Runs the N × CTL^pe × {TBG, HSM} grid.
pub fn system_grid(ctx: &crate::RunCtx, id: &'static str) -> Result<Grid, crate::ExperimentError> {
    let (ns, ctls): (Vec<u32>, Vec<u32>) =
        if ctx.quick { (vec![16, 22], vec![60, 120]) } else { (vec![91, 121, 151], vec![1_500, 2_000, 2_500]) };
    ctx.progress.start(ns.len() * ctls.len() * 2);
    let mut cells = Vec::new();
    for &n in &ns {
        for &ctl in &ctls {
            for policy in [Policy::Tbg, Policy::Hsm] {
                ctx.progress.step(format!("{} N {n} CTL {ctl}", policy.name()));
                let p = system_params(ctx.quick, n, ctl, policy, u64::from(n) * 100_000 + u64::from(ctl));
                let run = run_system(&p).map_err(|e| crate::ExperimentError::run(id, e))?;
                cells.push(GridCell { replicas: n, ctl, policy, run });
                ctx.progress.done();
            }
        }
    }
    ctx.progress.finish();
    Ok((ns, ctls, cells))
}

/// The cell for (N, CTL, policy).
pub fn cell(cells: &[GridCell], n: u32, ctl: u32, policy: Policy) -> Option<&SystemRun> {
    cells.iter().find(|c| c.replicas == n && c.ctl == ctl && c.policy == policy).map(|c| &c.run)
}

/// A Ch.4 figure's result while it is built: its chart, our table and our
/// series. [`Figure::finish`] adds what every Ch.4 figure reports the same
/// way: no typed-in seed series (the seed prints these figures only as
/// charts; its numbers go in the seed table, see [`seed_numbers`]).
pub struct Figure {
    pub chart: ChartSpec,
    pub table: Table,
    pub ours: Vec<Series>,
}

impl Figure {
    /// A chart titled `title` with axis labels `x_label` and `y_label` (a
    /// logarithmic y axis with `y_log`), and our table with `columns`.
    pub fn new(title: &str, x_label: &str, y_label: &str, y_log: bool, columns: &[&str]) -> Self {
        Figure {
            chart: ChartSpec {
                title: title.into(),
                x_label: x_label.into(),
                y_label: y_label.into(),
                y_log,
                ..Default::default()
            },
            table: Table::new(columns),
            ours: Vec::new(),
        }
    }

    /// A row of a grid figure's table (Figs 4-5, 4-7, 4-8): N, CTL^pe and
    /// the policy, then `rest`.
    pub fn grid_row(&mut self, n: u32, ctl: u32, policy: Policy, rest: impl IntoIterator<Item = String>) {
        let mut row = vec![n.to_string(), ctl.to_string(), policy.name().into()];
        row.extend(rest);
        self.table.row(row);
    }

    /// The experiment's result (`run_one` fills in the id, timing and
    /// description).
    pub fn finish(
        self,
        params: Value,
        seed_table: Table,
        comparison: Table,
        checks: Vec<Check>,
        raw: Value,
    ) -> ExperimentResult {
        ExperimentResult {
            params,
            chart: self.chart,
            ours: self.ours,
            seed: vec![],
            table: self.table,
            seed_table,
            comparison,
            checks,
            raw,
            ..Default::default()
        }
    }
}

/// The runs of N = `n` under `policy` that the grid has, by load (in the
/// order of `ctls`).
pub fn runs_by_load<'a>(
    cells: &'a [GridCell],
    n: u32,
    ctls: &'a [u32],
    policy: Policy,
) -> impl Iterator<Item = (u32, &'a SystemRun)> + 'a {
    ctls.iter().filter_map(move |&ctl| cell(cells, n, ctl, policy).map(|r| (ctl, r)))
}

/// The seed's numbers beside a figure: one row per
/// `[quantity, the seed's value, its source]`.
pub fn seed_numbers(rows: &[[&str; 3]]) -> Table {
    let mut t = Table::new(&["quantity", "seed", "source"]);
    for r in rows {
        t.row(r.iter().map(|c| c.to_string()).collect());
    }
    t
}
