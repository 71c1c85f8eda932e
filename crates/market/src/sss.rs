//! The Shamir-secret-sharing baseline of the seed's §6.7.3 (its [241], run
//! there with MP-SPDZ): the same primal–dual iteration as
//! [`crate::primal_dual`], executed by `K` executors on Shamir shares, so
//! that no executor sees a prosumer's parameters or trades.
//!
//! **Field and sharing.** Shares are elements of the BLS12-381 scalar field
//! (`blstrs::Scalar`, a maintained ~255-bit prime field, the one the
//! workspace's threshold signatures use); a value is shared with a random
//! polynomial of degree `t` evaluated at `1..=K`, any `t + 1` shares
//! reconstruct it. `K ≥ 2t + 1` (honest majority, as MP-SPDZ's Shamir
//! protocols); the default is `K = 3`, `t = 1`.
//!
//! **Protocols** (the textbook ones MP-SPDZ implements; every executor's
//! step is computed, nothing is short-cut through the plaintext):
//! - addition and public-coefficient products: local;
//! - multiplication: local product (degree `2t`) and degree reduction by
//!   resharing (Gennaro–Rabin–Rabin): one round;
//! - opening: every executor sends its share to every other; the value is
//!   interpolated from `t + 1` shares and **every further share is checked
//!   against it** — a mismatch aborts the run ([`SssError::Inconsistent`]),
//!   the seed's "malicious-with-abort" model, detection and no tolerance;
//! - jointly random values: every executor deals a random sharing, the sum
//!   is used; random bits by squaring (`r² ` opened, `b = r / √(r²)`,
//!   bit `(b + 1)/2`);
//! - fixed point: `k = 64`-bit signed values with `f = 24` fractional bits,
//!   statistical security `κ = 40` for masked openings; probabilistic
//!   truncation and the less-than-zero comparison of Catrina and de Hoogh
//!   (masked opening, `Mod2m`, a bitwise `c < r` with a logarithmic-depth
//!   prefix-OR).
//!
//! **The iteration.** The same updates as [`crate::primal_dual`] (see its
//! module docs), with the projection onto `{x ≥ 0, e_min ≤ Σ x ≤ e_max}`
//! done obliviously: the threshold `τ` is found bit by bit from
//! [`SssParams::trade_bound`] down to `2^-24` (each step compares every
//! coordinate, then the row's sum; a second such search for the lower
//! bound, see [`Engine::project_bounded`]), then `x = max(0, v − τ)`.
//! Prosumer parameters (`a`, `b`, `e_max`, `e_min`) and every trade, price
//! and line dual are
//! shared; the network rows (`G`, `h`), the prosumers' buses and the step
//! sizes are public. The stopping rule opens only the *number* of
//! coordinates not yet within the tolerance (so the run's length is public,
//! as it is for the framework).
//!
//! Decisions where the seed is silent: whether lower bounds are in use (any
//! `e_min > 0` in the market) is public, one bit for the whole market: it
//! adds the second search for every prosumer, and markets with `e_min = 0`
//! throughout (the generated ones) skip it and share no `e_min`; every executor runs in this one
//! process, and [`Stats`] counts the rounds and field elements each would
//! send, so that a communication model can be put on top (the seed's SSS
//! timing, on one laptop, had none).
//!
//! **Precision limit.** The baseline follows the plaintext iteration
//! closely where the network rows are PTDF shares (case30, the only case
//! `experiment market-fig-6-3` runs it on: within 10⁻⁵ kWh after 3 steps).
//! On the 33-bus feeder it does not: the voltage rows' coefficients
//! (10⁻⁶..10⁻⁴ p.u.² per kW) are encoded at `2⁻²⁴` (a few % off), and their
//! weights in their own scale ([`crate::primal_dual::ROW_SCALE_REF`],
//! `c_r` up to ~10¹⁰) multiply the fixed-point errors of the injections into
//! the line price; attack round 14 measured trades 3.2 kWh off the
//! plaintext ones after 5 steps (0.57 kWh with every row weighted by the
//! common `c`). A feeder run would need the rows rescaled before encoding
//! or more fractional bits; neither is done here.

use blstrs::Scalar;
use ff::Field;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::network::MarketNetwork;
use crate::primal_dual::PdParams;
use crate::problem::{Market, MarketError, Side};

/// Bits of a signed fixed-point value.
pub const K_BITS: u32 = 64;
/// Fractional bits.
pub const F_BITS: u32 = 24;
/// Statistical security of masked openings.
pub const KAPPA: u32 = 40;

/// Why a Shamir run failed or was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SssError {
    #[error("{parties} executors cannot multiply degree-{degree} sharings (need at least {need})")]
    TooFewExecutors { parties: usize, degree: usize, need: usize },
    #[error(
        "opened value {index}: the shares are inconsistent (a Byzantine executor; malicious-with-abort stops the run)"
    )]
    Inconsistent { index: usize },
    #[error("{0} does not fit the fixed-point range")]
    OutOfRange(f64),
    #[error("{side:?} {index}: e_max = {e_max} kWh exceeds half the trade bound {bound} kWh")]
    AboveBound { side: Side, index: usize, e_max: f64, bound: f64 },
    #[error(transparent)]
    Market(#[from] MarketError),
}

/// What the executors would have sent.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    /// Sequential communication rounds.
    pub rounds: u64,
    /// Field elements sent, all executors together.
    pub elements: u64,
    pub multiplications: u64,
    pub openings: u64,
    pub comparisons: u64,
    pub truncations: u64,
}

/// A vector of shared values, executor-major: `s[p][i]` is executor `p`'s
/// share of value `i`.
#[derive(Debug, Clone)]
pub struct SVec {
    s: Vec<Vec<Scalar>>,
}

impl SVec {
    pub fn len(&self) -> usize {
        self.s.first().map_or(0, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn map2(&self, o: &SVec, f: impl Fn(&Scalar, &Scalar) -> Scalar) -> SVec {
        SVec { s: self.s.iter().zip(&o.s).map(|(a, b)| a.iter().zip(b).map(|(x, y)| f(x, y)).collect()).collect() }
    }
    pub fn add(&self, o: &SVec) -> SVec {
        self.map2(o, |a, b| a + b)
    }
    pub fn sub(&self, o: &SVec) -> SVec {
        self.map2(o, |a, b| a - b)
    }
    /// Times a public constant.
    pub fn scale(&self, c: Scalar) -> SVec {
        SVec { s: self.s.iter().map(|v| v.iter().map(|x| x * c).collect()).collect() }
    }
    /// Plus public constants (one per value): every executor adds them to its
    /// share (a constant is its own degree-0 sharing).
    pub fn add_public(&self, c: &[Scalar]) -> SVec {
        SVec { s: self.s.iter().map(|v| v.iter().zip(c).map(|(x, y)| x + y).collect()).collect() }
    }
    /// The values at `idx`.
    pub fn gather(&self, idx: &[usize]) -> SVec {
        SVec { s: self.s.iter().map(|v| idx.iter().map(|&i| v[i]).collect()).collect() }
    }
    /// Concatenation.
    pub fn concat(parts: &[&SVec]) -> SVec {
        let k = parts[0].s.len();
        SVec { s: (0..k).map(|p| parts.iter().flat_map(|v| v.s[p].iter().copied()).collect()).collect() }
    }
    /// Values `[from, to)`.
    pub fn slice(&self, from: usize, to: usize) -> SVec {
        SVec { s: self.s.iter().map(|v| v[from..to].to_vec()).collect() }
    }
    /// `out[g] = Σ_{i ∈ groups[g]} coef_i · self[i]` (local).
    pub fn sums(&self, groups: &[Vec<(usize, Scalar)>]) -> SVec {
        SVec {
            s: self
                .s
                .iter()
                .map(|v| groups.iter().map(|g| g.iter().fold(Scalar::ZERO, |acc, (i, c)| acc + v[*i] * c)).collect())
                .collect(),
        }
    }
}

/// `2^e` in the field.
fn pow2(e: u32) -> Scalar {
    let mut x = Scalar::ONE;
    for _ in 0..e {
        x = x.double();
    }
    x
}

fn from_i128(v: i128) -> Scalar {
    let u = v.unsigned_abs();
    let s = Scalar::from((u >> 64) as u64) * pow2(64) + Scalar::from(u as u64);
    if v < 0 {
        -s
    } else {
        s
    }
}

/// The low 128 bits of a field element known to be below `2^128`.
fn low_u128(s: &Scalar) -> Option<u128> {
    let b = s.to_bytes_le();
    if b[16..].iter().any(|x| *x != 0) {
        return None;
    }
    let mut lo = [0u8; 16];
    lo.copy_from_slice(&b[..16]);
    Some(u128::from_le_bytes(lo))
}

/// A field element read as a signed integer of magnitude below `2^127`.
fn to_i128(s: &Scalar) -> Option<i128> {
    if let Some(u) = low_u128(s) {
        return i128::try_from(u).ok();
    }
    low_u128(&-s).and_then(|u| i128::try_from(u).ok()).map(|u| -u)
}

/// Fixed-point encoding of `v` (`round(v · 2^f)`).
pub fn encode(v: f64) -> Result<Scalar, SssError> {
    let i = (v * (1u64 << F_BITS) as f64).round();
    if !i.is_finite() || i.abs() >= 2f64.powi(K_BITS as i32 - 2) {
        return Err(SssError::OutOfRange(v));
    }
    Ok(from_i128(i as i128))
}

/// Fixed-point decoding (`NaN` for a value outside the signed range).
pub fn decode(s: &Scalar) -> f64 {
    to_i128(s).map_or(f64::NAN, |i| i as f64 / (1u64 << F_BITS) as f64)
}

/// Lagrange coefficients at 0 for the points `xs`.
fn lagrange_at(x: Scalar, xs: &[Scalar]) -> Vec<Scalar> {
    xs.iter()
        .enumerate()
        .map(|(i, xi)| {
            let (mut num, mut den) = (Scalar::ONE, Scalar::ONE);
            for (j, xj) in xs.iter().enumerate() {
                if i != j {
                    num *= x - xj;
                    den *= xi - xj;
                }
            }
            // distinct points: den ≠ 0
            num * Option::<Scalar>::from(den.invert()).unwrap_or(Scalar::ZERO)
        })
        .collect()
}

/// `K` executors holding degree-`t` Shamir sharings, simulated in one
/// process, with their own randomness and a count of what they send.
#[derive(Debug, Clone)]
pub struct Engine {
    parties: usize,
    t: usize,
    points: Vec<Scalar>,
    lag_all: Vec<Scalar>,
    lag_first: Vec<Scalar>,
    /// `predict[j][i]`: coefficient of share `i ≤ t` in share `t + 1 + j`.
    predict: Vec<Vec<Scalar>>,
    rngs: Vec<ChaCha20Rng>,
    pub stats: Stats,
    /// Test hook: this executor adds one to every share it sends in openings.
    pub byzantine: Option<usize>,
}

impl Engine {
    /// `parties` executors with threshold degree `t`, randomness from `seed`.
    pub fn new(parties: usize, t: usize, seed: u64) -> Result<Engine, SssError> {
        if parties < 2 * t + 1 || t == 0 {
            return Err(SssError::TooFewExecutors { parties, degree: t, need: 2 * t.max(1) + 1 });
        }
        let points: Vec<Scalar> = (1..=parties as u64).map(Scalar::from).collect();
        let lag_all = lagrange_at(Scalar::ZERO, &points);
        let lag_first = lagrange_at(Scalar::ZERO, &points[..=t]);
        let predict = points[t + 1..].iter().map(|x| lagrange_at(*x, &points[..=t])).collect();
        let rngs =
            (0..parties as u64).map(|p| ChaCha20Rng::seed_from_u64(seed ^ (p + 1).wrapping_mul(0x9E37))).collect();
        Ok(Engine { parties, t, points, lag_all, lag_first, predict, rngs, stats: Stats::default(), byzantine: None })
    }

    pub fn parties(&self) -> usize {
        self.parties
    }

    /// Shares of `values` dealt with randomness from `rng`, executor-major.
    fn deal(&self, rng: &mut ChaCha20Rng, values: &[Scalar]) -> Vec<Vec<Scalar>> {
        let mut out = vec![Vec::with_capacity(values.len()); self.parties];
        let mut coef = vec![Scalar::ZERO; self.t];
        for v in values {
            for c in coef.iter_mut() {
                *c = gridledger_threshold::random_scalar(rng);
            }
            for (p, x) in self.points.iter().enumerate() {
                let hi = coef.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c);
                out[p].push(hi * x + v);
            }
        }
        out
    }

    /// A data owner (prosumer) shares its private inputs with the executors.
    pub fn input(&mut self, owner_seed: u64, values: &[Scalar]) -> SVec {
        let mut rng = ChaCha20Rng::seed_from_u64(owner_seed);
        self.stats.rounds += 1;
        self.stats.elements += (values.len() * self.parties) as u64;
        SVec { s: self.deal(&mut rng, values) }
    }

    /// A public constant vector as a (degree-0) sharing.
    pub fn public(&self, values: &[Scalar]) -> SVec {
        SVec { s: vec![values.to_vec(); self.parties] }
    }

    fn count_exchange(&mut self, n: usize) {
        self.stats.rounds += 1;
        self.stats.elements += (n * self.parties * (self.parties - 1)) as u64;
    }

    /// `n` jointly random values: each executor deals a random sharing.
    pub fn random(&mut self, n: usize) -> SVec {
        let mut acc = vec![vec![Scalar::ZERO; n]; self.parties];
        for p in 0..self.parties {
            let mut rng = self.rngs[p].clone();
            let vals: Vec<Scalar> = (0..n).map(|_| gridledger_threshold::random_scalar(&mut rng)).collect();
            let sh = self.deal(&mut rng, &vals);
            self.rngs[p] = rng;
            for (q, row) in sh.into_iter().enumerate() {
                for (a, b) in acc[q].iter_mut().zip(row) {
                    *a += b;
                }
            }
        }
        self.count_exchange(n);
        SVec { s: acc }
    }

    /// Elementwise product with degree reduction by resharing.
    pub fn mul(&mut self, a: &SVec, b: &SVec) -> SVec {
        let n = a.len();
        let mut acc = vec![vec![Scalar::ZERO; n]; self.parties];
        for p in 0..self.parties {
            let prod: Vec<Scalar> = a.s[p].iter().zip(&b.s[p]).map(|(x, y)| x * y).collect();
            let mut rng = self.rngs[p].clone();
            let sh = self.deal(&mut rng, &prod);
            self.rngs[p] = rng;
            let l = self.lag_all[p];
            for (q, row) in sh.into_iter().enumerate() {
                for (o, v) in acc[q].iter_mut().zip(row) {
                    *o += v * l;
                }
            }
        }
        self.count_exchange(n);
        self.stats.multiplications += n as u64;
        SVec { s: acc }
    }

    /// Opens `a` to every executor, checking every share beyond the first
    /// `t + 1` against the interpolated polynomial.
    pub fn open(&mut self, a: &SVec) -> Result<Vec<Scalar>, SssError> {
        let n = a.len();
        self.count_exchange(n);
        self.stats.openings += n as u64;
        let sent = |p: usize, i: usize| {
            let s = a.s[p][i];
            if self.byzantine == Some(p) {
                s + Scalar::ONE
            } else {
                s
            }
        };
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let v = (0..=self.t).fold(Scalar::ZERO, |acc, p| acc + sent(p, i) * self.lag_first[p]);
            for (j, coef) in self.predict.iter().enumerate() {
                let expect = (0..=self.t).fold(Scalar::ZERO, |acc, p| acc + sent(p, i) * coef[p]);
                if expect != sent(self.t + 1 + j, i) {
                    return Err(SssError::Inconsistent { index: i });
                }
            }
            out.push(v);
        }
        Ok(out)
    }

    /// Opens fixed-point values.
    pub fn open_fixed(&mut self, a: &SVec) -> Result<Vec<f64>, SssError> {
        Ok(self.open(a)?.iter().map(decode).collect())
    }

    /// `n` jointly random bits: executors `0..=t` each deal `n` random bits
    /// and the bits are XOR-ed (`a ⊕ b = a + b − 2ab`), so at least one of
    /// the dealers is honest and the result is uniform and unknown to any
    /// `t` executors. One dealing round and `t` multiplication rounds.
    pub fn random_bits(&mut self, n: usize) -> Result<SVec, SssError> {
        let mut acc: Option<SVec> = None;
        let two = Scalar::from(2u64);
        // one round for all dealings; the XORs add t multiplication rounds
        self.count_exchange(n * (self.t + 1));
        for p in 0..=self.t {
            let mut rng = self.rngs[p].clone();
            let mut vals = Vec::with_capacity(n);
            while vals.len() < n {
                let w = rng.next_u64();
                vals.extend((0..64.min(n - vals.len())).map(|k| Scalar::from((w >> k) & 1)));
            }
            let sh = SVec { s: self.deal(&mut rng, &vals) };
            self.rngs[p] = rng;
            acc = Some(match acc {
                None => sh,
                Some(a) => {
                    let ab = self.mul(&a, &sh);
                    a.add(&sh).sub(&ab.scale(two))
                }
            });
        }
        Ok(acc.unwrap_or_else(|| self.public(&vec![Scalar::ZERO; n])))
    }

    /// Masked opening of `a + 2^(k−1) + 2^m r'' + r'` with `r'` of `m` bits
    /// (kept bitwise) and `r''` of `k + κ − m` bits: returns `c mod 2^m`
    /// as integers, the shared `r'` and its bits (bit `j` of value `i` at
    /// `i·m + j`).
    fn masked_low_bits(&mut self, a: &SVec, m: u32) -> Result<(Vec<u128>, SVec, SVec), SssError> {
        let n = a.len();
        let total = (K_BITS + KAPPA) as usize;
        let bits = self.random_bits(n * total)?;
        let p2: Vec<Scalar> = (0..total as u32).map(pow2).collect();
        let low: Vec<Vec<(usize, Scalar)>> =
            (0..n).map(|i| (0..m as usize).map(|j| (i * total + j, p2[j])).collect()).collect();
        let high: Vec<Vec<(usize, Scalar)>> =
            (0..n).map(|i| (m as usize..total).map(|j| (i * total + j, p2[j])).collect()).collect();
        let r1 = bits.sums(&low);
        let r2 = bits.sums(&high); // already scaled by 2^m
        let masked = a.add(&r1).add(&r2).add_public(&vec![pow2(K_BITS - 1); n]);
        let c = self.open(&masked)?;
        let mask = (1u128 << m) - 1;
        let mut low_c = Vec::with_capacity(n);
        for v in &c {
            low_c.push(low_u128(v).ok_or(SssError::OutOfRange(decode(v)))? & mask);
        }
        let idx: Vec<usize> = (0..n).flat_map(|i| (0..m as usize).map(move |j| i * total + j)).collect();
        Ok((low_c, r1, bits.gather(&idx)))
    }

    /// Probabilistic truncation by `m` bits (rounds up or down).
    pub fn trunc(&mut self, a: &SVec, m: u32) -> Result<SVec, SssError> {
        self.stats.truncations += a.len() as u64;
        let (c, r1, _) = self.masked_low_bits(a, m)?;
        let cs: Vec<Scalar> = c.iter().map(|v| -from_i128(*v as i128)).collect();
        let inv = Option::<Scalar>::from(pow2(m).invert()).unwrap_or(Scalar::ZERO);
        Ok(a.add(&r1).add_public(&cs).scale(inv))
    }

    /// Truncation by the fractional bits (after a fixed × fixed product).
    pub fn trunc_f(&mut self, a: &SVec) -> Result<SVec, SssError> {
        self.trunc(a, F_BITS)
    }

    /// Fixed × fixed.
    pub fn mul_fixed(&mut self, a: &SVec, b: &SVec) -> Result<SVec, SssError> {
        let p = self.mul(a, b);
        self.trunc_f(&p)
    }

    /// `[a < 0]` as a shared bit (Catrina–de Hoogh: `Mod2m` with a bitwise
    /// comparison by a logarithmic-depth prefix-OR).
    pub fn ltz(&mut self, a: &SVec) -> Result<SVec, SssError> {
        let n = a.len();
        self.stats.comparisons += n as u64;
        let m = K_BITS - 1;
        let mu = m as usize;
        let (c, r1, rbits) = self.masked_low_bits(a, m)?;
        // d_j = c_j XOR r_j, local since c is public
        let cbit = |i: usize, j: usize| (c[i] >> j) & 1 == 1;
        let one = self.public(&vec![Scalar::ONE; n * mu]);
        let flip = one.sub(&rbits);
        let mut e = SVec {
            s: (0..self.parties)
                .map(|p| {
                    (0..n * mu).map(|ij| if cbit(ij / mu, ij % mu) { flip.s[p][ij] } else { rbits.s[p][ij] }).collect()
                })
                .collect(),
        };
        // prefix-OR from the most significant bit: e_j = OR_{l ≥ j} d_l
        let mut s = 1;
        while s < mu {
            let (mut lhs, mut rhs) = (Vec::new(), Vec::new());
            for i in 0..n {
                for j in 0..mu - s {
                    lhs.push(i * mu + j);
                    rhs.push(i * mu + j + s);
                }
            }
            let (a1, b1) = (e.gather(&lhs), e.gather(&rhs));
            let ab = self.mul(&a1, &b1);
            let or = a1.add(&b1).sub(&ab);
            for p in 0..self.parties {
                for (k, &ix) in lhs.iter().enumerate() {
                    e.s[p][ix] = or.s[p][k];
                }
            }
            s *= 2;
        }
        // u = Σ_j (e_j − e_{j+1}) [c_j = 0] = [c' < r']
        let mut groups = Vec::with_capacity(n);
        for i in 0..n {
            let mut g = Vec::new();
            for j in 0..mu {
                if !cbit(i, j) {
                    g.push((i * mu + j, Scalar::ONE));
                    if j + 1 < mu {
                        g.push((i * mu + j + 1, -Scalar::ONE));
                    }
                }
            }
            groups.push(g);
        }
        let u = e.sums(&groups);
        // a' = c' − r' + 2^m u = a mod 2^m; trunc = (a − a') / 2^m ∈ {0, −1}
        let cs: Vec<Scalar> = c.iter().map(|v| from_i128(*v as i128)).collect();
        let a_mod = u.scale(pow2(m)).sub(&r1).add_public(&cs);
        let inv = Option::<Scalar>::from(pow2(m).invert()).unwrap_or(Scalar::ZERO);
        Ok(a.sub(&a_mod).scale(-inv))
    }

    /// `max(0, a)`.
    pub fn relu(&mut self, a: &SVec) -> Result<SVec, SssError> {
        let neg = self.ltz(a)?;
        let keep = self.public(&vec![Scalar::ONE; a.len()]).sub(&neg);
        Ok(self.mul(a, &keep))
    }

    /// Projection of every group of `v` onto `{x ≥ 0, Σ x ≤ cap_g}` (the
    /// groups partition `v`'s indices): `τ` by bisection over its bits from
    /// `bound / 2` down to `2^-f`, then `max(0, v − τ)`.
    pub fn project(&mut self, v: &SVec, groups: &[Vec<usize>], caps: &SVec, bound: f64) -> Result<SVec, SssError> {
        self.project_bounded(v, groups, None, caps, bound)
    }

    /// Projection of every group of `v` onto `{x ≥ 0, low_g ≤ Σ x ≤ cap_g}`
    /// (no lower bound when `lows` is `None`). With `f(τ) = Σ max(0, v − τ)`
    /// decreasing, the threshold is `τ = τ_cap − s_low`: `τ_cap ≥ 0` the
    /// largest grid value with `f(τ_cap) > cap` (0 if `f(0) ≤ cap`) and
    /// `s_low ≥ 0` the largest with `f(−s_low) < low` (0 if `f(0) ≥ low`);
    /// at most one of them is non-zero since `low ≤ cap`. Each is found by
    /// bisection over its bits from `bound / 2` down to `2^-f`; a lower bound
    /// doubles the comparisons.
    pub fn project_bounded(
        &mut self,
        v: &SVec,
        groups: &[Vec<usize>],
        lows: Option<&SVec>,
        caps: &SVec,
        bound: f64,
    ) -> Result<SVec, SssError> {
        let n = v.len();
        let owner: Vec<usize> = {
            let mut o = vec![0; n];
            for (g, idx) in groups.iter().enumerate() {
                for &i in idx {
                    o[i] = g;
                }
            }
            o
        };
        let mut tau = self.threshold(v, groups, &owner, caps, bound, false)?;
        if let Some(lows) = lows {
            let s = self.threshold(v, groups, &owner, lows, bound, true)?;
            tau = tau.sub(&s);
        }
        let diff = v.sub(&tau.gather(&owner));
        self.relu(&diff)
    }

    /// One bisection of [`Engine::project_bounded`]: the largest grid
    /// `t ∈ [0, bound)` per group with `f(t) > target` (`below = false`) or
    /// with `f(−t) < target` (`below = true`).
    fn threshold(
        &mut self,
        v: &SVec,
        groups: &[Vec<usize>],
        owner: &[usize],
        target: &SVec,
        bound: f64,
        below: bool,
    ) -> Result<SVec, SssError> {
        let sum_groups: Vec<Vec<(usize, Scalar)>> =
            groups.iter().map(|g| g.iter().map(|&i| (i, Scalar::ONE)).collect()).collect();
        let mut t = self.public(&vec![Scalar::ZERO; groups.len()]);
        let mut delta = bound / 2.0;
        while delta >= 1.0 / (1u64 << F_BITS) as f64 {
            let d = encode(delta)?;
            let cand = t.add_public(&vec![d; groups.len()]).gather(owner);
            let shifted = if below { v.add(&cand) } else { v.sub(&cand) };
            let pos = self.relu(&shifted)?;
            let f = pos.sums(&sum_groups);
            // above: cap − f < 0 ⇔ f(t + δ) > cap ⇔ τ* > t + δ;
            // below: f − low < 0 ⇔ f(−(t + δ)) < low ⇔ −τ* > t + δ
            let flag = if below { self.ltz(&f.sub(target))? } else { self.ltz(&target.sub(&f))? };
            t = t.add(&flag.scale(d));
            delta /= 2.0;
        }
        Ok(t)
    }
}

/// Tuning of the Shamir run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SssParams {
    /// Executors `K`.
    pub parties: usize,
    /// Sharing degree `t` (`t + 1` shares reconstruct).
    pub degree: usize,
    /// Public bound on a trade before projection, kWh (a power of two).
    pub trade_bound: f64,
    pub seed: u64,
}

impl Default for SssParams {
    fn default() -> SssParams {
        SssParams { parties: 3, degree: 1, trade_bound: 64.0, seed: 1 }
    }
}

/// The primal–dual iteration of [`crate::primal_dual::PrimalDual::step`] on
/// Shamir shares.
#[derive(Debug, Clone)]
pub struct SssPrimalDual {
    pub engine: Engine,
    pub params: PdParams,
    pub sss: SssParams,
    pub buyers: usize,
    pub sellers: usize,
    x: SVec,
    y: SVec,
    lambda: SVec,
    mu: SVec,
    a_b: SVec,
    b_b: SVec,
    cap_b: SVec,
    /// Shared `e_min` (buyers, sellers) when any is positive.
    low_b: Option<SVec>,
    low_s: Option<SVec>,
    a_s: SVec,
    b_s: SVec,
    cap_s: SVec,
    /// Row sums of `c·G` (operator prices), `γ·G` (multiplier step) and
    /// `G` (violation) on the market's buses, and their right-hand sides.
    rows_c: Vec<Vec<(usize, Scalar)>>,
    rows_gamma: Vec<Vec<(usize, Scalar)>>,
    rows_g: Vec<Vec<(usize, Scalar)>>,
    h_c: Vec<Scalar>,
    h_gamma: Vec<Scalar>,
    h: Vec<Scalar>,
    /// Bus price of bus `k` from `μ̂`: `Σ_r G_rk μ̂_r`.
    cols_g: Vec<Vec<(usize, Scalar)>>,
    /// Injection of bus `k` from the trades: `+` sellers' columns, `−` buyers' rows.
    inj: Vec<Vec<(usize, Scalar)>>,
    bm: Vec<usize>,
    bn: Vec<usize>,
    pub iterations: usize,
}

/// Opened `(x, y, λ)`, buyer-major.
pub type Revealed = (Vec<f64>, Vec<f64>, Vec<f64>);

/// What one Shamir iteration opened.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SssStep {
    /// Coordinates not yet within the tolerance (the only value opened).
    pub unconverged: u64,
    pub converged: bool,
}

impl SssPrimalDual {
    /// Shares every prosumer's request among the executors.
    pub fn new(
        market: &Market,
        net: &MarketNetwork,
        params: PdParams,
        sss: SssParams,
    ) -> Result<SssPrimalDual, SssError> {
        let (bm, bn) = net.placement(market)?;
        let sides = market.buyers.iter().enumerate().chain(market.sellers.iter().enumerate());
        for (index, p) in sides {
            if p.e_max > sss.trade_bound / 2.0 {
                return Err(SssError::AboveBound { side: p.side, index, e_max: p.e_max, bound: sss.trade_bound });
            }
        }
        let mut engine = Engine::new(sss.parties, sss.degree, sss.seed)?;
        let (mm, nn) = (market.buyers.len(), market.sellers.len());
        // Lower bounds are in use when any prosumer has e_min > 0: that one
        // market-wide bit is public (it doubles the projection's
        // comparisons), the bounds themselves are shared like the rest.
        let lower = market.buyers.iter().chain(&market.sellers).any(|p| p.e_min > 0.0);
        type Shared = (SVec, SVec, SVec, Option<SVec>);
        let share = |engine: &mut Engine, side: &[crate::problem::Prosumer], base: u64| -> Result<Shared, SssError> {
            let mut a = Vec::new();
            let mut b = Vec::new();
            let mut c = Vec::new();
            let mut lo = Vec::new();
            for (i, p) in side.iter().enumerate() {
                // each prosumer shares its own parameters
                let mut own = vec![encode(p.a)?, encode(p.b)?, encode(p.e_max)?];
                if lower {
                    own.push(encode(p.e_min)?);
                }
                let sh = engine.input(sss.seed ^ (base + i as u64) << 8, &own);
                a.push(sh.slice(0, 1));
                b.push(sh.slice(1, 2));
                c.push(sh.slice(2, 3));
                if lower {
                    lo.push(sh.slice(3, 4));
                }
            }
            let cat = |v: &Vec<SVec>| SVec::concat(&v.iter().collect::<Vec<_>>());
            Ok((cat(&a), cat(&b), cat(&c), lower.then(|| cat(&lo))))
        };
        let (a_b, b_b, cap_b, low_b) = share(&mut engine, &market.buyers, 1 << 20)?;
        let (a_s, b_s, cap_s, low_s) = share(&mut engine, &market.sellers, 2 << 20)?;
        // the market's buses: the operator's rows only need their columns
        let buses = net.bus_ids.len();
        let mut inj = vec![Vec::new(); buses];
        for m in 0..mm {
            for j in 0..nn {
                inj[bm[m]].push((m * nn + j, -Scalar::ONE));
                inj[bn[j]].push((m * nn + j, Scalar::ONE));
            }
        }
        // the plaintext iteration's per-row weights (`PdParams::row_weights`)
        let (c_row, gamma_row) = params.row_weights(net, &bm, &bn);
        let ones = vec![1.0; net.h.len()];
        let rows = |coef: &[f64]| -> Result<Vec<Vec<(usize, Scalar)>>, SssError> {
            net.g
                .iter()
                .zip(coef)
                .map(|(row, coef)| {
                    row.iter()
                        .enumerate()
                        .filter(|(_, v)| **v != 0.0)
                        .map(|(k, v)| Ok((k, encode(coef * v)?)))
                        .collect()
                })
                .collect()
        };
        let cols_g = (0..buses)
            .map(|k| {
                net.g
                    .iter()
                    .enumerate()
                    .filter(|(_, row)| row[k] != 0.0)
                    .map(|(r, row)| Ok((r, encode(row[k])?)))
                    .collect()
            })
            .collect::<Result<Vec<_>, SssError>>()?;
        let enc_all = |coef: &[f64]| net.h.iter().zip(coef).map(|(v, c)| encode(c * v)).collect::<Result<Vec<_>, _>>();
        let zero = |n: usize| engine.public(&vec![Scalar::ZERO; n]);
        Ok(SssPrimalDual {
            x: zero(mm * nn),
            y: zero(mm * nn),
            lambda: zero(mm * nn),
            mu: zero(net.h.len()),
            rows_c: rows(&c_row)?,
            rows_gamma: rows(&gamma_row)?,
            rows_g: rows(&ones)?,
            h_c: enc_all(&c_row)?,
            h_gamma: enc_all(&gamma_row)?,
            h: enc_all(&ones)?,
            cols_g,
            inj,
            a_b,
            b_b,
            cap_b,
            low_b,
            low_s,
            a_s,
            b_s,
            cap_s,
            engine,
            params,
            sss,
            buyers: mm,
            sellers: nn,
            bm,
            bn,
            iterations: 0,
        })
    }

    /// `Σ_k coef_rk · inj_k(x) − h_r` for the rows `which` (fixed point, truncated).
    fn rows_of(&mut self, which: u8) -> Result<SVec, SssError> {
        let inj = self.x.sums(&self.inj);
        let (rows, h) = match which {
            0 => (&self.rows_c, &self.h_c),
            1 => (&self.rows_gamma, &self.h_gamma),
            _ => (&self.rows_g, &self.h),
        };
        let neg_h: Vec<Scalar> = h.iter().map(|v| -v).collect();
        let raw = inj.sums(rows);
        let t = self.engine.trunc_f(&raw)?;
        Ok(t.add_public(&neg_h))
    }

    /// One synchronous iteration on shares; opens only the count of
    /// coordinates outside the tolerance.
    pub fn step(&mut self) -> Result<SssStep, SssError> {
        let (mm, nn) = (self.buyers, self.sellers);
        let prm = self.params;
        let bound = self.sss.trade_bound;
        let old = self.x.clone();
        // operator: μ̂ = max(0, μ + c (G p − h)), bus prices Σ_r G_rk μ̂_r
        let bus_price = if self.mu.is_empty() {
            self.engine.public(&vec![Scalar::ZERO; self.inj.len()])
        } else {
            let ex_c = self.rows_of(0)?;
            let hat = self.engine.relu(&self.mu.add(&ex_c))?;
            let bp = hat.sums(&self.cols_g);
            self.engine.trunc_f(&bp)?
        };
        // buyers: v = x + α (U'(Σx) − λ − ρ (x − y) − π)
        let rows: Vec<Vec<usize>> = (0..mm).map(|m| (m * nn..(m + 1) * nn).collect()).collect();
        let totals =
            self.x.sums(&rows.iter().map(|r| r.iter().map(|&i| (i, Scalar::ONE)).collect()).collect::<Vec<_>>());
        let at = self.engine.mul_fixed(&self.a_b, &totals)?;
        let g = self.b_b.sub(&at);
        let owner_b: Vec<usize> = (0..mm * nn).map(|i| i / nn).collect();
        let line_groups: Vec<Vec<(usize, Scalar)>> = (0..mm * nn)
            .map(|i| {
                let (m, j) = (i / nn, i % nn);
                if self.bn[j] == self.bm[m] {
                    Vec::new()
                } else {
                    vec![(self.bn[j], Scalar::ONE), (self.bm[m], -Scalar::ONE)]
                }
            })
            .collect();
        let line = bus_price.sums(&line_groups);
        let alpha = encode(prm.alpha)?;
        let alpha_rho = encode(prm.alpha * prm.rho)?;
        let grad = g.gather(&owner_b).sub(&self.lambda).sub(&line);
        let step = grad.scale(alpha).sub(&self.x.sub(&self.y).scale(alpha_rho));
        let v = self.x.add(&self.engine.trunc_f(&step)?);
        let x_new = self.engine.project_bounded(&v, &rows, self.low_b.as_ref(), &self.cap_b, bound)?;
        // sellers: v = y + α (−C'(Σy) + λ + ρ (x − y)); λ += ρ (x − y_new)
        let cols: Vec<Vec<usize>> = (0..nn).map(|j| (0..mm).map(|m| m * nn + j).collect()).collect();
        let totals =
            self.y.sums(&cols.iter().map(|c| c.iter().map(|&i| (i, Scalar::ONE)).collect()).collect::<Vec<_>>());
        let at = self.engine.mul_fixed(&self.a_s, &totals)?;
        let zero_n = self.engine.public(&vec![Scalar::ZERO; nn]);
        let g = zero_n.sub(&self.b_s).sub(&at);
        let owner_s: Vec<usize> = (0..mm * nn).map(|i| i % nn).collect();
        let step = g.gather(&owner_s).add(&self.lambda).scale(alpha).add(&x_new.sub(&self.y).scale(alpha_rho));
        let v = self.y.add(&self.engine.trunc_f(&step)?);
        let y_new = self.engine.project_bounded(&v, &cols, self.low_s.as_ref(), &self.cap_s, bound)?;
        let dl = self.engine.trunc_f(&x_new.sub(&y_new).scale(encode(prm.rho)?))?;
        self.lambda = self.lambda.add(&dl);
        self.x = x_new;
        self.y = y_new;
        // operator: μ ← max(0, μ + γ (G p − h)); violation of the rows
        let mut checks = Vec::new();
        if !self.mu.is_empty() {
            let ex_g = self.rows_of(1)?;
            self.mu = self.engine.relu(&self.mu.add(&ex_g))?;
            let ex = self.rows_of(2)?;
            // ex > tol ⇔ tol − ex < 0
            let t = encode(prm.tol)?;
            checks.push(self.engine.public(&vec![t; ex.len()]).sub(&ex));
        }
        self.iterations += 1;
        // |x − y| ≤ tol and |x − old| ≤ tol·α, each as two comparisons
        let t = encode(prm.tol)?;
        let ta = encode(prm.tol * prm.alpha)?;
        let r = self.x.sub(&self.y);
        let ch = self.x.sub(&old);
        let tv = vec![t; r.len()];
        let tav = vec![ta; r.len()];
        let zero = self.engine.public(&vec![Scalar::ZERO; r.len()]);
        checks.push(r.add_public(&tv));
        checks.push(zero.sub(&r).add_public(&tv));
        checks.push(ch.add_public(&tav));
        checks.push(zero.sub(&ch).add_public(&tav));
        let all = SVec::concat(&checks.iter().collect::<Vec<_>>());
        let bad = self.engine.ltz(&all)?;
        let count = bad.sums(&[(0..bad.len()).map(|i| (i, Scalar::ONE)).collect()]);
        let opened = self.engine.open(&count)?;
        let unconverged = low_u128(&opened[0]).unwrap_or(u128::MAX) as u64;
        Ok(SssStep { unconverged, converged: unconverged == 0 })
    }

    /// Opens the trades and prices (at the end of the run, to settle):
    /// `(x, y, λ)`, buyer-major.
    pub fn reveal(&mut self) -> Result<Revealed, SssError> {
        let (x, y, l) = (self.x.clone(), self.y.clone(), self.lambda.clone());
        Ok((self.engine.open_fixed(&x)?, self.engine.open_fixed(&y)?, self.engine.open_fixed(&l)?))
    }

    /// Iterates until converged or `max_iter`; `Ok(None)` if not converged.
    pub fn run(&mut self, max_iter: usize) -> Result<Option<usize>, SssError> {
        while self.iterations < max_iter {
            if self.step()?.converged {
                return Ok(Some(self.iterations));
            }
        }
        Ok(None)
    }
}
