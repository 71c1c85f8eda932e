//! The adversary models of thesis §4.3 and the attacks of §4.3.4, as
//! protocol-independent building blocks (replica indices and epochs only):
//!
//! - [`RestrictedAsync`]: the restricted asynchronous network M^AS — local
//!   epochs within κ − 1 of the global epoch (Eq 4.1) and the "rubber band"
//!   on message buffering (Eq 4.2);
//! - [`RecoveryCorruption`]: the recovery-based corruption model M^RC —
//!   a static Byzantine fraction p^B, at most ℓ attacks per epoch, corruption
//!   latency λ, control for `⌈ελ⌉ − κ` epochs, a crashed recovery interval of
//!   κ epochs, correct again at `+⌈ελ⌉`; Eq 4.4 is checked before a run
//!   ([`McParams::check`]) and Theorem 4.1's bound holds at every epoch;
//! - the attacks: transaction flooding (TF, [`Flooding`]), timestamp
//!   malleability (TM, [`malleate_timestamp`]), DFES ([`dfes_slow_set`]) and
//!   RSS ([`rss_specific_order`]);
//! - the step latency of Eq 4.9 ([`StepLatency`]).
//!
//! Against PBFT, [`RecoveryCorruption::crash_plan`] turns the corrupted and
//! recovering intervals into the simulator's [`crate::Crash`]es (a silent
//! corrupted replica is the weakest Byzantine behaviour, which is what a
//! crash-restart run can check for a leader-based protocol).
//!
//! Fractions are integers (p^B in parts per million, ε as a ratio), so every
//! bound is computed exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{Crash, NodeId, Time};

/// M^AS with skew bound κ ∈ {1, 2} (Eq 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestrictedAsync {
    pub kappa: u64,
}

impl RestrictedAsync {
    /// Eq 4.1: `0 ≤ e^g − e_p ≤ κ − 1`.
    pub fn skew_ok(&self, global: u64, local: u64) -> bool {
        local <= global && global - local < self.kappa
    }

    /// Eq 4.2: a message sent at the sender's local epoch `sent` is
    /// buffered at the receiver's local epoch `buffered`, `|Δ| ≤ κ − 1`.
    pub fn rubber_band_ok(&self, sent: u64, buffered: u64) -> bool {
        sent.abs_diff(buffered) < self.kappa
    }

    /// The latest receiver-local epoch at which a message sent at `sent` is buffered.
    pub fn latest_buffer_epoch(&self, sent: u64) -> u64 {
        sent + self.kappa - 1
    }

    /// Local epochs at global epoch `global` when the scheduler stalls
    /// `stalled` as far as Eq 4.1 allows and lets everyone else run.
    pub fn local_epochs(&self, global: u64, nodes: usize, stalled: &BTreeSet<NodeId>) -> Vec<u64> {
        (0..nodes as NodeId)
            .map(|n| if stalled.contains(&n) { global.saturating_sub(self.kappa - 1) } else { global })
            .collect()
    }
}

/// Why a model configuration or an attack is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelError {
    /// Eq 4.4: `p^B N + ⌈ελ⌉ℓ ≤ f`.
    Resilience {
        static_byzantine: u64,
        mobile: u64,
        f: u64,
    },
    /// `3p^B < 1`.
    StaticFraction {
        ppm: u32,
    },
    /// `⌈ελ⌉ > κ` (the controlled interval must be non-empty).
    RecoveryTooShort {
        eps_lambda: u64,
        kappa: u64,
    },
    Kappa(u64),
    /// More than ℓ attacks in one epoch.
    AttackBudget {
        epoch: u64,
        ell: u32,
    },
    /// The target is statically Byzantine, out of range, or already in an attack cycle.
    NotAttackable {
        node: NodeId,
        epoch: u64,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::Resilience { static_byzantine, mobile, f: bound } => {
                write!(f, "Eq 4.4 violated: p^B·N ({static_byzantine}) + ⌈ελ⌉·ℓ ({mobile}) exceeds f = {bound}")
            }
            ModelError::StaticFraction { ppm } => write!(f, "3·p^B must be below 1 (p^B = {ppm} ppm)"),
            ModelError::RecoveryTooShort { eps_lambda, kappa } => {
                write!(f, "⌈ελ⌉ = {eps_lambda} must exceed κ = {kappa}")
            }
            ModelError::Kappa(k) => write!(f, "κ must be 1 or 2, got {k}"),
            ModelError::AttackBudget { epoch, ell } => write!(f, "more than ℓ = {ell} attacks in epoch {epoch}"),
            ModelError::NotAttackable { node, epoch } => {
                write!(f, "replica {node} cannot be attacked in epoch {epoch}")
            }
        }
    }
}

impl std::error::Error for ModelError {}

/// M^RC's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McParams {
    /// N.
    pub replicas: u32,
    /// p^B in parts per million; the static set is `⌊p^B N⌋` replicas.
    pub static_ppm: u32,
    /// ℓ: attacks per epoch.
    pub ell: u32,
    /// λ: corruption latency (epochs).
    pub lambda: u64,
    /// ε = `eps_num / eps_den`.
    pub eps_num: u64,
    pub eps_den: u64,
    /// κ of M^AS.
    pub kappa: u64,
}

impl McParams {
    /// `f = ⌊(N − 1)/3⌋`.
    pub fn f(&self) -> u64 {
        u64::from(self.replicas.saturating_sub(1)) / 3
    }

    /// `⌈ελ⌉`.
    pub fn eps_lambda(&self) -> u64 {
        (self.eps_num * self.lambda).div_ceil(self.eps_den.max(1))
    }

    /// `⌊p^B N⌋`.
    pub fn static_count(&self) -> u64 {
        u64::from(self.static_ppm) * u64::from(self.replicas) / 1_000_000
    }

    /// Eq 4.4 and the model's side conditions, before a run.
    pub fn check(&self) -> Result<(), ModelError> {
        if !(1..=2).contains(&self.kappa) {
            return Err(ModelError::Kappa(self.kappa));
        }
        if u64::from(self.static_ppm) * 3 >= 1_000_000 {
            return Err(ModelError::StaticFraction { ppm: self.static_ppm });
        }
        if self.eps_lambda() <= self.kappa {
            return Err(ModelError::RecoveryTooShort { eps_lambda: self.eps_lambda(), kappa: self.kappa });
        }
        let mobile = self.eps_lambda() * u64::from(self.ell);
        if self.static_count() + mobile > self.f() {
            return Err(ModelError::Resilience { static_byzantine: self.static_count(), mobile, f: self.f() });
        }
        Ok(())
    }
}

/// A replica's state at an epoch under M^RC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    Correct,
    /// Attacked, not yet under control (still correct).
    Infected,
    Byzantine,
    /// Recovering (crashed).
    Crashed,
    /// In the static Byzantine set.
    StaticByzantine,
}

impl ReplicaState {
    /// Follows the protocol (correct or infected).
    pub fn is_correct(self) -> bool {
        matches!(self, ReplicaState::Correct | ReplicaState::Infected)
    }
}

/// M^RC in a run: the static set and the log of attacks.
#[derive(Clone, Debug)]
pub struct RecoveryCorruption {
    pub params: McParams,
    statics: BTreeSet<NodeId>,
    /// replica → epochs at which it was attacked.
    attacks: BTreeMap<NodeId, Vec<u64>>,
    per_epoch: BTreeMap<u64, u32>,
}

impl RecoveryCorruption {
    /// Checks Eq 4.4; the static set is `⌊p^B N⌋` replicas drawn by `rng`.
    pub fn new(params: McParams, rng: &mut ChaCha8Rng) -> Result<Self, ModelError> {
        params.check()?;
        let mut all: Vec<NodeId> = (0..params.replicas).collect();
        all.shuffle(rng);
        let statics = all.into_iter().take(params.static_count() as usize).collect();
        Ok(Self { params, statics, attacks: BTreeMap::new(), per_epoch: BTreeMap::new() })
    }

    pub fn static_set(&self) -> &BTreeSet<NodeId> {
        &self.statics
    }

    /// The whole cycle length: attacked at `a`, correct again at `a + λ + ⌈ελ⌉`.
    fn cycle(&self) -> u64 {
        self.params.lambda + self.params.eps_lambda()
    }

    /// The state of `node` at global epoch `e`.
    pub fn state(&self, node: NodeId, e: u64) -> ReplicaState {
        if self.statics.contains(&node) {
            return ReplicaState::StaticByzantine;
        }
        let p = &self.params;
        let el = p.eps_lambda();
        for &a in self.attacks.get(&node).map(Vec::as_slice).unwrap_or(&[]) {
            if e < a {
                continue;
            }
            let d = e - a;
            if d < p.lambda {
                return ReplicaState::Infected;
            }
            if d < p.lambda + el - p.kappa {
                return ReplicaState::Byzantine;
            }
            if d < p.lambda + el {
                return ReplicaState::Crashed;
            }
        }
        ReplicaState::Correct
    }

    /// Whether `node` may be attacked at `e`: recoverable and not in a cycle.
    pub fn attackable(&self, node: NodeId, e: u64) -> bool {
        node < self.params.replicas
            && !self.statics.contains(&node)
            && self.attacks.get(&node).is_none_or(|v| v.iter().all(|&a| e >= a + self.cycle() || e < a))
    }

    /// Attacks `node` at global epoch `e` (at most ℓ per epoch).
    pub fn attack(&mut self, node: NodeId, e: u64) -> Result<(), ModelError> {
        let used = self.per_epoch.get(&e).copied().unwrap_or(0);
        if used >= self.params.ell {
            return Err(ModelError::AttackBudget { epoch: e, ell: self.params.ell });
        }
        if !self.attackable(node, e) {
            return Err(ModelError::NotAttackable { node, epoch: e });
        }
        self.per_epoch.insert(e, used + 1);
        self.attacks.entry(node).or_default().push(e);
        Ok(())
    }

    /// Attacks up to the remaining budget of epoch `e` at random among the attackable.
    pub fn random_attacks(&mut self, e: u64, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
        let mut cand: Vec<NodeId> = (0..self.params.replicas).filter(|&n| self.attackable(n, e)).collect();
        cand.shuffle(rng);
        let room = self.params.ell - self.per_epoch.get(&e).copied().unwrap_or(0);
        let chosen: Vec<NodeId> = cand.into_iter().take(room as usize).collect();
        for &n in &chosen {
            // Attackable and within budget by construction.
            let _ = self.attack(n, e);
        }
        chosen
    }

    /// Replicas not correct (Byzantine, crashed, static) at `e` — Theorem
    /// 4.1 says at most f.
    pub fn incorrect(&self, e: u64) -> usize {
        (0..self.params.replicas).filter(|&n| !self.state(n, e).is_correct()).count()
    }

    /// For crash-restart runs (e.g. PBFT): each attacked replica is down from
    /// `a + λ` to `a + λ + ⌈ελ⌉` (controlled, then recovering), with epochs
    /// of `ticks_per_epoch`; static Byzantine replicas are down for good.
    pub fn crash_plan(&self, ticks_per_epoch: Time) -> Vec<Crash> {
        let mut out: Vec<Crash> = self.statics.iter().map(|&node| Crash { node, at: 0, restart_at: None }).collect();
        for (&node, v) in &self.attacks {
            for &a in v {
                let down = (a + self.params.lambda) * ticks_per_epoch;
                let up = (a + self.cycle()) * ticks_per_epoch;
                out.push(Crash { node, at: down, restart_at: Some(up) });
            }
        }
        out
    }
}

/// TF: `ρ^C·C` rule-violating transactions per epoch from the adversary's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flooding {
    pub per_epoch: u64,
}

/// TM: a timestamp (searched from `from`) whose hash space is `target`,
/// trying at most `tries` values; `space` is the protocol's `H(ID ‖ ts) mod N`.
pub fn malleate_timestamp(space: impl Fn(u64) -> u32, target: u32, from: u64, tries: u64) -> Option<u64> {
    (from..from.saturating_add(tries)).find(|&ts| space(ts) == target)
}

/// DFES: the slow set `S^S_e` of `f' = f − n^C_e` replicas chosen among the
/// correct ones (`f' ≤ f − n^C_e`; the adversary takes the maximum); their
/// batches certify only Δ = 2κ − 2 epochs late.
pub fn dfes_slow_set(correct: &[NodeId], f: u64, crashed: u64, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
    let mut c = correct.to_vec();
    c.shuffle(rng);
    c.truncate(f.saturating_sub(crashed) as usize);
    c.sort_unstable();
    c
}

/// DFES/RSS delay Δ = 2κ − 2.
pub fn delta(kappa: u64) -> u64 {
    2 * kappa - 2
}

/// RSS's specific attack: the holders of the target that are still
/// attackable, ordered as the seed prescribes — those scheduled after local
/// epoch `e_tar + λ − 1` (the third group) in ascending order of their
/// scheduled epoch, then those scheduled within `[e_tar + κ, e_tar + λ − 1]`
/// (the second group) in random order. `holders` are `(replica, scheduled epoch)`.
pub fn rss_specific_order(holders: &[(NodeId, u64)], e_tar: u64, lambda: u64, rng: &mut ChaCha8Rng) -> Vec<NodeId> {
    let cut = e_tar + lambda - 1;
    let mut third: Vec<(u64, NodeId)> = holders.iter().filter(|h| h.1 > cut).map(|&(n, e)| (e, n)).collect();
    third.sort_unstable();
    let mut second: Vec<NodeId> = holders.iter().filter(|h| h.1 <= cut).map(|h| h.0).collect();
    second.shuffle(rng);
    third.into_iter().map(|(_, n)| n).chain(second).collect()
}

/// Eq 4.9: `L^s = P^d + L^q + L^c + L^tx + L^r`, integer microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepLatency {
    pub propagation_us: u64,
    pub queuing_us: u64,
    pub computation_us: u64,
    pub bandwidth_bytes_per_s: u64,
    pub retransmission_us: u64,
}

impl StepLatency {
    /// The seed's constants (§4.6.1): 160 ms, 5 µs, 20 ms, 5 MB/s, 100 ms.
    pub const SEED: StepLatency = StepLatency {
        propagation_us: 160_000,
        queuing_us: 5,
        computation_us: 20_000,
        bandwidth_bytes_per_s: 5_000_000,
        retransmission_us: 100_000,
    };

    /// One step transmitting `bytes`.
    pub fn step_us(&self, bytes: u64) -> u64 {
        let tx = (u128::from(bytes) * 1_000_000).div_ceil(u128::from(self.bandwidth_bytes_per_s.max(1))) as u64;
        self.propagation_us + self.queuing_us + self.computation_us + tx + self.retransmission_us
    }

    /// An epoch of `steps` steps (14 for the seed's Speeding Dumbo).
    pub fn epoch_us(&self, steps: u64, bytes_per_step: u64) -> u64 {
        steps * self.step_us(bytes_per_step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn seed_params() -> McParams {
        // Fig 4-2's: N = 100, p^B = 0.13, λ = 10, ℓ = 2, ε = 1, κ = 2.
        McParams { replicas: 100, static_ppm: 130_000, ell: 2, lambda: 10, eps_num: 1, eps_den: 1, kappa: 2 }
    }

    #[test]
    fn eq_4_4_accepts_the_seed_and_refuses_too_much() {
        let p = seed_params();
        assert_eq!(p.f(), 33);
        assert_eq!(p.static_count() + p.eps_lambda() * 2, 33);
        assert_eq!(p.check(), Ok(()));
        let worse = McParams { ell: 3, ..p };
        assert!(matches!(worse.check(), Err(ModelError::Resilience { .. })));
        let third = McParams { static_ppm: 334_000, ell: 0, ..p };
        assert_eq!(third.check(), Err(ModelError::StaticFraction { ppm: 334_000 }));
        let short = McParams { lambda: 2, ..p };
        assert!(matches!(short.check(), Err(ModelError::RecoveryTooShort { .. })));
        assert_eq!(McParams { kappa: 3, ..p }.check(), Err(ModelError::Kappa(3)));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(RecoveryCorruption::new(worse, &mut rng).is_err());
    }

    #[test]
    fn an_attacked_replica_goes_infected_byzantine_crashed_correct() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut m = RecoveryCorruption::new(seed_params(), &mut rng).unwrap();
        let n = (0..100).find(|&n| m.attackable(n, 5)).unwrap();
        m.attack(n, 5).unwrap();
        let states: Vec<ReplicaState> = (4..27).map(|e| m.state(n, e)).collect();
        use ReplicaState::*;
        // a = 5, λ = 10, ⌈ελ⌉ = 10, κ = 2: infected 5..14, Byzantine 15..22, crashed 23..24, correct 25.
        let mut want = vec![Correct];
        want.extend([Infected; 10]);
        want.extend([Byzantine; 8]);
        want.extend([Crashed; 2]);
        want.extend([Correct; 2]);
        assert_eq!(states, want);
        assert_eq!(m.attack(n, 6), Err(ModelError::NotAttackable { node: n, epoch: 6 }));
        assert!(m.attackable(n, 25));
    }

    #[test]
    fn the_attack_budget_is_ell_per_epoch_and_statics_are_not_attackable() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut m = RecoveryCorruption::new(seed_params(), &mut rng).unwrap();
        let s = *m.static_set().iter().next().unwrap();
        assert_eq!(m.attack(s, 1), Err(ModelError::NotAttackable { node: s, epoch: 1 }));
        assert_eq!(m.random_attacks(1, &mut rng).len(), 2);
        let other = (0..100).find(|&n| m.attackable(n, 1)).unwrap();
        assert_eq!(m.attack(other, 1), Err(ModelError::AttackBudget { epoch: 1, ell: 2 }));
    }

    #[test]
    fn theorem_4_1_at_most_f_incorrect_under_maximal_random_attacks() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut m = RecoveryCorruption::new(seed_params(), &mut rng).unwrap();
            for e in 0..120 {
                m.random_attacks(e, &mut rng);
                assert!(m.incorrect(e) as u64 <= m.params.f(), "seed {seed} epoch {e}: {}", m.incorrect(e));
            }
            // The bound is reached in steady state.
            assert_eq!(m.incorrect(100) as u64, m.params.f());
        }
    }

    #[test]
    fn restricted_network_bounds() {
        let m = RestrictedAsync { kappa: 2 };
        assert!(m.skew_ok(5, 4) && m.skew_ok(5, 5) && !m.skew_ok(5, 3) && !m.skew_ok(5, 6));
        assert!(m.rubber_band_ok(4, 5) && !m.rubber_band_ok(4, 6));
        assert_eq!(m.latest_buffer_epoch(4), 5);
        let stalled: BTreeSet<NodeId> = [1].into();
        let l = m.local_epochs(9, 3, &stalled);
        assert_eq!(l, vec![9, 8, 9]);
        assert!(l.iter().all(|&x| m.skew_ok(9, x)));
    }

    #[test]
    fn eq_4_9_step_latency() {
        // 2,500 × 300 B at 5 MB/s = 150 ms on top of 280.005 ms.
        assert_eq!(StepLatency::SEED.step_us(750_000), 430_005);
        assert_eq!(StepLatency::SEED.epoch_us(14, 0), 14 * 280_005);
    }

    #[test]
    fn attacks_helpers() {
        let space = |ts: u64| (ts.wrapping_mul(2654435761) >> 7) as u32 % 7;
        let ts = malleate_timestamp(space, 3, 0, 1000).unwrap();
        assert_eq!(space(ts), 3);
        assert_eq!(malleate_timestamp(|_| 1, 3, 0, 100), None);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let s = dfes_slow_set(&[1, 2, 3, 4, 5, 6], 4, 1, &mut rng);
        assert_eq!(s.len(), 3);
        assert_eq!(delta(2), 2);
        let order = rss_specific_order(&[(1, 20), (2, 12), (3, 15), (4, 30)], 10, 5, &mut rng);
        // cut = 14: third group {3@15, 1@20, 4@30} ascending, then {2}.
        assert_eq!(order, vec![3, 1, 4, 2]);
    }

    #[test]
    fn crash_plan_covers_controlled_and_recovering_epochs() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut m = RecoveryCorruption::new(seed_params(), &mut rng).unwrap();
        let n = (0..100).find(|&n| m.attackable(n, 3)).unwrap();
        m.attack(n, 3).unwrap();
        let plan = m.crash_plan(100);
        assert_eq!(plan.iter().filter(|c| c.restart_at.is_none()).count(), 13);
        assert!(plan.contains(&Crash { node: n, at: 1300, restart_at: Some(2300) }));
    }
}
