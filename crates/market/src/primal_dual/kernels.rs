//! The per-column kernels of [`PrimalDual::step`](super::PrimalDual::step),
//! each compiled three times: for the baseline x86-64 (SSE2) or the
//! target's default, for AVX2 and for AVX-512F, and called through the
//! copy the CPU supports ([`Isa::detect`], once per iteration state).
//!
//! Every copy performs the same IEEE operations in the same order: the
//! lanes of each reduction are fixed in the source, not by the vector
//! width, and Rust never contracts a multiply and an add into a fused one.
//! So the copies agree bit for bit with each other and with the sans-IO
//! subproblems (which run the baseline copy), whatever CPU an executor has.
//!
//! Each copy is a separate function whose slice arguments are `noalias`,
//! so the compiler knows no output overlaps an input and vectorises the
//! loops; inlined into a larger body it lost that and emitted scalar code.

use super::{Stats, L, LANES};

/// The vector unit the kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(super) enum Isa {
    /// The target's baseline (SSE2 on x86-64).
    Base,
    /// AVX2 (x86-64 only; made only by [`Isa::detect`] on a CPU with it).
    Avx2,
    /// AVX-512F (x86-64 only; made only by [`Isa::detect`] on a CPU with it).
    Avx512,
}

impl Isa {
    /// The widest vector unit this CPU reports (`std` caches the CPUID
    /// query).
    pub(super) fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Base
    }
}

/// `pub(super) fn $name(isa, args..)`: `$body` (an `#[inline(always)]`
/// function) compiled once per [`Isa`] as a non-inlined function, called
/// through the copy `isa` names. With `$body / $x86`, the AVX2 and AVX-512
/// copies run `$x86` instead (hand-vectorised with AVX2 intrinsics, the
/// same operations in the same order as `$body`).
macro_rules! multiversion {
    ($(#[$doc:meta])* fn $name:ident = $body:ident ($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)?;) => {
        multiversion! { $(#[$doc])* fn $name = $body / $body => ($($a: $t),*) $(-> $r)?; }
    };
    ($(#[$doc:meta])* fn $name:ident = $body:ident / $x86:path => ($($a:ident : $t:ty),* $(,)?) $(-> $r:ty)?;) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        pub(super) fn $name(isa: Isa, $($a: $t),*) $(-> $r)? {
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn base($($a: $t),*) $(-> $r)? {
                $body($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn avx2($($a: $t),*) $(-> $r)? {
                $x86($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[inline(never)]
            #[allow(clippy::too_many_arguments)]
            fn avx512($($a: $t),*) $(-> $r)? {
                $x86($($a),*)
            }
            match isa {
                // SAFETY: `Isa::Avx512` is made only by `Isa::detect`, on a
                // CPU that reports AVX-512F.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512($($a),*) },
                // SAFETY: as above, for AVX2.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($a),*) },
                #[cfg(not(target_arch = "x86_64"))]
                Isa::Avx512 | Isa::Avx2 => base($($a),*),
                Isa::Base => base($($a),*),
            }
        }
    };
}

/// `x + α_m (U'_m − ρ_mn x − q − π_mn)` with `q = λ − ρ_mn y` and the
/// line price `π_mn = bp_n − own_m` (seed's [232]; the same as
/// `x + α_m (U' − λ − ρ_mn (x − y) − π)`); `al` is the buyer's step
/// `α_m`, `r` the trade's penalty `ρ_mn` ([`super::PartySteps`]).
#[inline(always)]
pub(super) fn buyer_value(x: f64, q: f64, g: f64, bp_n: f64, own: f64, al: f64, r: f64) -> f64 {
    x + al * (g - r * x - q - (bp_n - own))
}

/// Seller `n`'s gradient step on trade `(m, n)`:
/// `y + α_n (−C'_n(Σ y) + λ + ρ_mn (x − y))`, `g = −C'_n`.
#[inline(always)]
pub(super) fn seller_value(x: f64, y: f64, l: f64, g: f64, al: f64, r: f64) -> f64 {
    y + al * (g + l + r * (x - y))
}

multiversion! {
    /// The buyers' pass on one seller's column (`x`, `q`, `v` hold that
    /// column, one entry per buyer): `v = buyer_value(..)` and every
    /// buyer's [`Stats`] (as arrays over the buyers: `cl` clamped sum, `ss`
    /// / `cs` sum and size of the old support, `mn` / `mx` its smallest
    /// value and the largest outside it) updated element by element — no
    /// reduction and no dependency between iterations, so the loop
    /// vectorises; each buyer's statistics run over the sellers in order.
    fn buyer_column = buyer_column_body(
        x: &[f64], q: &[f64], v: &mut [f64], g: &[f64], own: &[f64], bp: f64,
        al: &[f64], r: &[f64],
        cl: &mut [f64], ss: &mut [f64], cs: &mut [f64], mn: &mut [f64], mx: &mut [f64],
    );
}

/// One buyer's statistics take the step value `val` of a trade whose old
/// copy was `old`. Outside its set a value is moved to `±∞` for the
/// min/max, so each statistic is one compare-and-select (a min/max
/// instruction).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn buyer_stat(old: f64, val: f64, cl: &mut f64, ss: &mut f64, cs: &mut f64, mn: &mut f64, mx: &mut f64) {
    let ins = old > 0.0;
    let (off_in, off_out) = if ins { (0.0, f64::INFINITY) } else { (f64::INFINITY, 0.0) };
    let (w_in, w_out) = (val + off_in, val - off_out);
    *cl += if val > 0.0 { val } else { 0.0 };
    *ss += if ins { val } else { 0.0 };
    *cs += if ins { 1.0 } else { 0.0 };
    *mn = if w_in < *mn { w_in } else { *mn };
    *mx = if w_out > *mx { w_out } else { *mx };
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn buyer_column_body(
    x: &[f64],
    q: &[f64],
    v: &mut [f64],
    g: &[f64],
    own: &[f64],
    bp: f64,
    al: &[f64],
    r: &[f64],
    cl: &mut [f64],
    ss: &mut [f64],
    cs: &mut [f64],
    mn: &mut [f64],
    mx: &mut [f64],
) {
    let n = v.len();
    let (x, q, g, own, al, r) = (&x[..n], &q[..n], &g[..n], &own[..n], &al[..n], &r[..n]);
    let (cl, ss, cs, mn, mx) = (&mut cl[..n], &mut ss[..n], &mut cs[..n], &mut mn[..n], &mut mx[..n]);
    for k in 0..n {
        let old = x[k];
        let val = buyer_value(old, q[k], g[k], bp, own[k], al[k], r[k]);
        v[k] = val;
        buyer_stat(old, val, &mut cl[k], &mut ss[k], &mut cs[k], &mut mn[k], &mut mx[k]);
    }
}

/// Columns per call of [`buyer_block`].
pub(super) const BLOCK: usize = 4;

multiversion! {
    /// [`buyer_column`] on [`BLOCK`] consecutive seller columns at once
    /// (`x`, `q`, `v` hold them, `bp` their sellers' bus line prices):
    /// each buyer's statistics stay in registers across the block (one
    /// load and store of them per block, not per column), taking the
    /// columns in order — the same sums as [`BLOCK`] calls of
    /// [`buyer_column`].
    fn buyer_block = buyer_block_body(
        x: &[f64], q: &[f64], v: &mut [f64], g: &[f64], own: &[f64], bp: &[f64],
        al: &[f64], r: &[f64],
        cl: &mut [f64], ss: &mut [f64], cs: &mut [f64], mn: &mut [f64], mx: &mut [f64],
    );
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn buyer_block_body(
    x: &[f64],
    q: &[f64],
    v: &mut [f64],
    g: &[f64],
    own: &[f64],
    bp: &[f64],
    al: &[f64],
    r: &[f64],
    cl: &mut [f64],
    ss: &mut [f64],
    cs: &mut [f64],
    mn: &mut [f64],
    mx: &mut [f64],
) {
    let n = cl.len();
    let (g, own, al, ss, cs, mn, mx) =
        (&g[..n], &own[..n], &al[..n], &mut ss[..n], &mut cs[..n], &mut mn[..n], &mut mx[..n]);
    let (x0, x1, x2, x3) = (&x[..n], &x[n..2 * n], &x[2 * n..3 * n], &x[3 * n..4 * n]);
    let (q0, q1, q2, q3) = (&q[..n], &q[n..2 * n], &q[2 * n..3 * n], &q[3 * n..4 * n]);
    let (r0, r1, r2, r3) = (&r[..n], &r[n..2 * n], &r[2 * n..3 * n], &r[3 * n..4 * n]);
    let (v0, rest) = v.split_at_mut(n);
    let (v1, rest) = rest.split_at_mut(n);
    let (v2, rest) = rest.split_at_mut(n);
    let v3 = &mut rest[..n];
    let bp = [bp[0], bp[1], bp[2], bp[3]];
    for k in 0..n {
        let (gk, ok, ak) = (g[k], own[k], al[k]);
        let (mut a_cl, mut a_ss, mut a_cs, mut a_mn, mut a_mx) = (cl[k], ss[k], cs[k], mn[k], mx[k]);
        let cols = [(x0, q0, r0, &mut *v0), (x1, q1, r1, &mut *v1), (x2, q2, r2, &mut *v2), (x3, q3, r3, &mut *v3)];
        for (j, (xj, qj, rj, vj)) in cols.into_iter().enumerate() {
            let old = xj[k];
            let val = buyer_value(old, qj[k], gk, bp[j], ok, ak, rj[k]);
            vj[k] = val;
            buyer_stat(old, val, &mut a_cl, &mut a_ss, &mut a_cs, &mut a_mn, &mut a_mx);
        }
        (cl[k], ss[k], cs[k], mn[k], mx[k]) = (a_cl, a_ss, a_cs, a_mn, a_mx);
    }
}

/// A seller's [`Stats`] in [`L`] lanes while its column is swept.
#[derive(Clone, Copy)]
struct SellerLanes {
    cl: [f64; L],
    ss: [f64; L],
    cs: [f64; L],
    mn: [f64; L],
    mx: [f64; L],
}

impl SellerLanes {
    #[inline(always)]
    fn new() -> Self {
        SellerLanes { cl: [0.0; L], ss: [0.0; L], cs: [0.0; L], mn: [f64::INFINITY; L], mx: [f64::NEG_INFINITY; L] }
    }

    /// Lane `i` takes the step value `val` of a trade whose old seller
    /// copy was `y_old`.
    #[inline(always)]
    fn add(&mut self, i: usize, val: f64, y_old: f64) {
        let ins = y_old > 0.0;
        let (off_in, off_out) = if ins { (0.0, f64::INFINITY) } else { (f64::INFINITY, 0.0) };
        let (w_in, w_out) = (val + off_in, val - off_out);
        self.cl[i] += if val > 0.0 { val } else { 0.0 };
        self.ss[i] += if ins { val } else { 0.0 };
        self.cs[i] += if ins { 1.0 } else { 0.0 };
        self.mn[i] = if w_in < self.mn[i] { w_in } else { self.mn[i] };
        self.mx[i] = if w_out > self.mx[i] { w_out } else { self.mx[i] };
    }

    /// The lanes folded in order, `((l0 + l1) + l2) + l3` (from `0`).
    #[inline(always)]
    fn fold(&self) -> Stats {
        let sum = |a: [f64; L]| a.iter().fold(0.0, |s, x| s + x);
        let min = |a: [f64; L]| a.iter().fold(f64::INFINITY, |s, x| if *x < s { *x } else { s });
        let max = |a: [f64; L]| a.iter().fold(f64::NEG_INFINITY, |s, x| if *x > s { *x } else { s });
        Stats {
            clamped: sum(self.cl),
            sum_s: sum(self.ss),
            cnt_s: sum(self.cs),
            min_s: min(self.mn),
            max_n: max(self.mx),
        }
    }
}

/// After the lanes are folded: one more value, in sequence.
#[inline(always)]
fn stats_add(st: &mut Stats, val: f64, y_old: f64) {
    st.clamped += if val > 0.0 { val } else { 0.0 };
    if y_old > 0.0 {
        st.sum_s += val;
        st.cnt_s += 1.0;
        st.min_s = if val < st.min_s { val } else { st.min_s };
    } else {
        st.max_n = if val > st.max_n { val } else { st.max_n };
    }
}

multiversion! {
    /// Pass 2 of the iteration on seller `n`'s column, fused: each buyer's
    /// new trade `x ← max(0, v − τ_m)` (its change, the buyers' totals, the
    /// column's sum with [`LANES`] partial sums as
    /// [`lane_sum`](super::lane_sum) forms it), and on it at once the
    /// seller's gradient step `out = seller_value(..)` with the seller's
    /// [`Stats`] against its old support `{y > 0}` (sums in [`L`] lanes).
    /// `ia` holds each buyer's `1 / α_m`, `r` the column's `ρ_mn`, `al`
    /// the seller's `α_n`. Returns `(max |Δx| / α_m, Σ_m x_mn, stats)`.
    fn column_pass = column_pass_body / avx::column_pass => (
        v: &[f64], tau: &[f64], ia: &[f64], x: &mut [f64], totals: &mut [f64],
        y: &[f64], lambda: &[f64], r: &[f64], out: &mut [f64], g: f64, al: f64,
    ) -> (f64, f64, Stats);
}

/// One trade of [`column_pass`]: the buyer's new copy
/// `max(0, v − τ)` replaces `x` and is added to the buyer's `total`;
/// returns it, its change over the buyer's step (`ia = 1 / α_m`) and the
/// seller's step value on it.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn trade(
    v: f64,
    tau: f64,
    ia: f64,
    x: &mut f64,
    total: &mut f64,
    y: f64,
    l: f64,
    r: f64,
    g: f64,
    al: f64,
) -> (f64, f64, f64) {
    let new = (v - tau).max(0.0);
    let d = (new - *x).abs() * ia;
    *x = new;
    *total += new;
    (new, d, seller_value(new, y, l, g, al, r))
}

/// [`L`] trades of [`column_pass`] (`v`..`out` hold `L` values each),
/// with constant lane indices so every lane array stays in a register.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn quad(
    v: &[f64],
    tau: &[f64],
    ia: &[f64],
    x: &mut [f64],
    totals: &mut [f64],
    y: &[f64],
    lambda: &[f64],
    r: &[f64],
    out: &mut [f64],
    xs: &mut [f64; L],
    chg: &mut [f64; L],
    lanes: &mut SellerLanes,
    g: f64,
    al: f64,
) {
    let (v, tau, ia, x, totals, y, lambda, r, out) =
        (&v[..L], &tau[..L], &ia[..L], &mut x[..L], &mut totals[..L], &y[..L], &lambda[..L], &r[..L], &mut out[..L]);
    for i in 0..L {
        let (new, d, val) = trade(v[i], tau[i], ia[i], &mut x[i], &mut totals[i], y[i], lambda[i], r[i], g, al);
        xs[i] += new;
        chg[i] = if d > chg[i] { d } else { chg[i] };
        out[i] = val;
        lanes.add(i, val, y[i]);
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn column_pass_body(
    v: &[f64],
    tau: &[f64],
    ia: &[f64],
    x: &mut [f64],
    totals: &mut [f64],
    y: &[f64],
    lambda: &[f64],
    r: &[f64],
    out: &mut [f64],
    g: f64,
    al: f64,
) -> (f64, f64, Stats) {
    let n = x.len();
    let (v, tau, ia, totals, y, lambda, r, out) =
        (&v[..n], &tau[..n], &ia[..n], &mut totals[..n], &y[..n], &lambda[..n], &r[..n], &mut out[..n]);
    let mut lanes = SellerLanes::new();
    let (mut xs_lo, mut xs_hi) = ([0.0f64; L], [0.0f64; L]);
    let (mut chg_lo, mut chg_hi) = ([0.0f64; L], [0.0f64; L]);
    let head8 = n - n % LANES;
    let head4 = n - n % L;
    // whole chunks of LANES: the column sum in LANES lanes, the seller's
    // statistics in L lanes (two L-chunks after each other)
    let chunks = v[..head8]
        .chunks_exact(LANES)
        .zip(tau[..head8].chunks_exact(LANES))
        .zip(ia[..head8].chunks_exact(LANES))
        .zip(x[..head8].chunks_exact_mut(LANES))
        .zip(totals[..head8].chunks_exact_mut(LANES))
        .zip(y[..head8].chunks_exact(LANES))
        .zip(lambda[..head8].chunks_exact(LANES))
        .zip(r[..head8].chunks_exact(LANES))
        .zip(out[..head8].chunks_exact_mut(LANES));
    for ((((((((vc, tc), ic), xc), sc), yc), lc), rc), oc) in chunks {
        let (v0, v1) = vc.split_at(L);
        let (t0, t1) = tc.split_at(L);
        let (i0, i1) = ic.split_at(L);
        let (x0, x1) = xc.split_at_mut(L);
        let (s0, s1) = sc.split_at_mut(L);
        let (y0, y1) = yc.split_at(L);
        let (l0, l1) = lc.split_at(L);
        let (r0, r1) = rc.split_at(L);
        let (o0, o1) = oc.split_at_mut(L);
        quad(v0, t0, i0, x0, s0, y0, l0, r0, o0, &mut xs_lo, &mut chg_lo, &mut lanes, g, al);
        quad(v1, t1, i1, x1, s1, y1, l1, r1, o1, &mut xs_hi, &mut chg_hi, &mut lanes, g, al);
    }
    // at most one chunk of L more in the seller's lanes, then the rest in
    // sequence; the column sum adds this remainder in sequence below
    for k in head8..head4 {
        let (_, d, val) = trade(v[k], tau[k], ia[k], &mut x[k], &mut totals[k], y[k], lambda[k], r[k], g, al);
        chg_lo[0] = chg_lo[0].max(d);
        out[k] = val;
        lanes.add(k % L, val, y[k]);
    }
    let mut st = lanes.fold();
    for k in head4..n {
        let (_, d, val) = trade(v[k], tau[k], ia[k], &mut x[k], &mut totals[k], y[k], lambda[k], r[k], g, al);
        chg_lo[0] = chg_lo[0].max(d);
        out[k] = val;
        stats_add(&mut st, val, y[k]);
    }
    let xs = [xs_lo[0], xs_lo[1], xs_lo[2], xs_lo[3], xs_hi[0], xs_hi[1], xs_hi[2], xs_hi[3]];
    let xsum = x[head8..n].iter().fold(super::fold_lanes(xs), |s, v| s + v);
    let change = chg_lo.iter().chain(&chg_hi).fold(0.0f64, |m, d| m.max(*d));
    (change, xsum, st)
}

multiversion! {
    /// Seller `n`'s gradient step on its column alone (the sans-IO
    /// subproblem; [`column_pass`] fuses it with the buyers' finish):
    /// `out = seller_value(..)` and the seller's [`Stats`], in the same
    /// lanes and order as [`column_pass`].
    fn seller_column = seller_column_body(
        x: &[f64], y: &[f64], lambda: &[f64], r: &[f64], out: &mut [f64], g: f64, al: f64,
    ) -> Stats;
}

#[inline(always)]
fn seller_column_body(x: &[f64], y: &[f64], lambda: &[f64], r: &[f64], out: &mut [f64], g: f64, al: f64) -> Stats {
    let n = y.len();
    let (x, lambda, r, out) = (&x[..n], &lambda[..n], &r[..n], &mut out[..n]);
    let mut lanes = SellerLanes::new();
    let head4 = n - n % L;
    let chunks = x[..head4]
        .chunks_exact(L)
        .zip(y[..head4].chunks_exact(L))
        .zip(lambda[..head4].chunks_exact(L))
        .zip(r[..head4].chunks_exact(L))
        .zip(out[..head4].chunks_exact_mut(L));
    for ((((xc, yc), lc), rc), oc) in chunks {
        for i in 0..L {
            let val = seller_value(xc[i], yc[i], lc[i], g, al, rc[i]);
            oc[i] = val;
            lanes.add(i, val, yc[i]);
        }
    }
    let mut st = lanes.fold();
    for k in head4..n {
        let val = seller_value(x[k], y[k], lambda[k], g, al, r[k]);
        out[k] = val;
        stats_add(&mut st, val, y[k]);
    }
    st
}

multiversion! {
    /// `y ← max(0, v − τ)`, `λ ← λ + ρ_mn (x − y)` and `q ← λ − ρ_mn y` in
    /// place on seller `n`'s column (`r` its `ρ_mn`); returns the
    /// reciprocity residual `max |x − y|` and `Σ y` (the partial sums of
    /// [`lane_sum`](super::lane_sum)). `sign` multiplies the price step
    /// (`1`; the planted `WrongPriceUpdate` flips it), not the one in `q`.
    fn seller_finish = seller_finish_body / avx::seller_finish => (
        v: &[f64], tau: f64, x: &[f64], y: &mut [f64], lambda: &mut [f64], q: &mut [f64],
        r: &[f64], sign: f64,
    ) -> (f64, f64);
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn seller_finish_body(
    v: &[f64],
    tau: f64,
    x: &[f64],
    y: &mut [f64],
    lambda: &mut [f64],
    q: &mut [f64],
    r: &[f64],
    sign: f64,
) -> (f64, f64) {
    let n = y.len();
    let (v, x, lambda, q, r) = (&v[..n], &x[..n], &mut lambda[..n], &mut q[..n], &r[..n]);
    let (mut sum, mut res) = ([0.0f64; LANES], [0.0f64; LANES]);
    let chunks = v
        .chunks_exact(LANES)
        .zip(x.chunks_exact(LANES))
        .zip(y.chunks_exact_mut(LANES))
        .zip(lambda.chunks_exact_mut(LANES))
        .zip(q.chunks_exact_mut(LANES))
        .zip(r.chunks_exact(LANES));
    for (((((vc, xc), yc), lc), qc), rc) in chunks {
        for i in 0..LANES {
            let new = (vc[i] - tau).max(0.0);
            let l = lc[i] + (sign * rc[i]) * (xc[i] - new);
            lc[i] = l;
            qc[i] = l - rc[i] * new;
            let d = (xc[i] - new).abs();
            res[i] = if d > res[i] { d } else { res[i] };
            yc[i] = new;
            sum[i] += new;
        }
    }
    let mut s = super::fold_lanes(sum);
    let mut residual = res.iter().fold(0.0f64, |m, d| m.max(*d));
    for k in n - n % LANES..n {
        let new = (v[k] - tau).max(0.0);
        let l = lambda[k] + (sign * r[k]) * (x[k] - new);
        lambda[k] = l;
        q[k] = l - r[k] * new;
        residual = residual.max((x[k] - new).abs());
        y[k] = new;
        s += new;
    }
    (residual, s)
}

/// [`column_pass`] and [`seller_finish`] written with AVX2 intrinsics: the
/// compiler's own vectorisation of the fused sweep mixed the 4-lane
/// statistics with the 8-lane column sum through shuffles and spills.
/// Each vector operation is the scalar body's operation on four
/// consecutive trades, so the lanes, their order and every rounding are
/// the bodies' (`max`/`min` are the bodies' compare-and-selects; only a
/// `-0.0` may come out as `0.0`, which no value, comparison or
/// division downstream can tell apart).
#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{stats_add, trade, Stats, L, LANES};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    #[inline]
    fn ld(a: &[f64; L]) -> __m256d {
        // SAFETY: `a` holds four f64; the load is unaligned.
        unsafe { _mm256_loadu_pd(a.as_ptr()) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn st(a: &mut [f64; L], v: __m256d) {
        // SAFETY: `a` holds four f64; the store is unaligned.
        unsafe { _mm256_storeu_pd(a.as_mut_ptr(), v) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn lanes(v: __m256d) -> [f64; L] {
        let mut a = [0.0; L];
        st(&mut a, v);
        a
    }

    /// `max(0, v)` as the bodies' `f64::max(v, 0.0)`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn pos(v: __m256d) -> __m256d {
        _mm256_max_pd(v, _mm256_setzero_pd())
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn abs(v: __m256d) -> __m256d {
        _mm256_andnot_pd(_mm256_set1_pd(-0.0), v)
    }

    /// The seller's statistics, one vector lane per [`L`] lane.
    struct Acc {
        cl: __m256d,
        ss: __m256d,
        cs: __m256d,
        mn: __m256d,
        mx: __m256d,
    }

    /// Four trades of the fused column sweep; returns the buyers' new
    /// copies (for the column sum).
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn quad(
        v: &[f64; L],
        tau: &[f64; L],
        ia: &[f64; L],
        x: &mut [f64; L],
        totals: &mut [f64; L],
        y: &[f64; L],
        lambda: &[f64; L],
        r: &[f64; L],
        out: &mut [f64; L],
        chg: &mut __m256d,
        acc: &mut Acc,
        g: f64,
        al: f64,
    ) -> __m256d {
        let zero = _mm256_setzero_pd();
        let inf = _mm256_set1_pd(f64::INFINITY);
        let new = pos(_mm256_sub_pd(ld(v), ld(tau)));
        let d = _mm256_mul_pd(abs(_mm256_sub_pd(new, ld(x))), ld(ia));
        *chg = _mm256_max_pd(d, *chg);
        st(x, new);
        st(totals, _mm256_add_pd(ld(totals), new));
        let yv = ld(y);
        // y + α_n (g + λ + ρ_mn (x − y))
        let inner =
            _mm256_add_pd(_mm256_add_pd(_mm256_set1_pd(g), ld(lambda)), _mm256_mul_pd(ld(r), _mm256_sub_pd(new, yv)));
        let val = _mm256_add_pd(yv, _mm256_mul_pd(_mm256_set1_pd(al), inner));
        st(out, val);
        let ins = _mm256_cmp_pd::<_CMP_GT_OQ>(yv, zero);
        let above = _mm256_cmp_pd::<_CMP_GT_OQ>(val, zero);
        acc.cl = _mm256_add_pd(acc.cl, _mm256_and_pd(above, val));
        acc.ss = _mm256_add_pd(acc.ss, _mm256_and_pd(ins, val));
        acc.cs = _mm256_add_pd(acc.cs, _mm256_and_pd(ins, _mm256_set1_pd(1.0)));
        let w_in = _mm256_add_pd(val, _mm256_andnot_pd(ins, inf));
        let w_out = _mm256_sub_pd(val, _mm256_and_pd(ins, inf));
        acc.mn = _mm256_min_pd(w_in, acc.mn);
        acc.mx = _mm256_max_pd(w_out, acc.mx);
        new
    }

    /// [`column_pass`](super::column_pass) on AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn column_pass(
        v: &[f64],
        tau: &[f64],
        ia: &[f64],
        x: &mut [f64],
        totals: &mut [f64],
        y: &[f64],
        lambda: &[f64],
        r: &[f64],
        out: &mut [f64],
        g: f64,
        al: f64,
    ) -> (f64, f64, Stats) {
        let n = x.len();
        let (v, tau, ia, totals, y, lambda, r, out) =
            (&v[..n], &tau[..n], &ia[..n], &mut totals[..n], &y[..n], &lambda[..n], &r[..n], &mut out[..n]);
        let head4 = n - n % L;
        let head8 = n - n % LANES;
        let mut acc = Acc {
            cl: _mm256_setzero_pd(),
            ss: _mm256_setzero_pd(),
            cs: _mm256_setzero_pd(),
            mn: _mm256_set1_pd(f64::INFINITY),
            mx: _mm256_set1_pd(f64::NEG_INFINITY),
        };
        let (mut xs_lo, mut xs_hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        let mut chg = _mm256_setzero_pd();
        {
            let (vc, _) = v[..head4].as_chunks::<L>();
            let (tc, _) = tau[..head4].as_chunks::<L>();
            let (ic, _) = ia[..head4].as_chunks::<L>();
            let (xc, _) = x[..head4].as_chunks_mut::<L>();
            let (sc, _) = totals[..head4].as_chunks_mut::<L>();
            let (yc, _) = y[..head4].as_chunks::<L>();
            let (lc, _) = lambda[..head4].as_chunks::<L>();
            let (rc, _) = r[..head4].as_chunks::<L>();
            let (oc, _) = out[..head4].as_chunks_mut::<L>();
            let chunks = vc.iter().zip(tc).zip(ic).zip(xc).zip(sc).zip(yc).zip(lc).zip(rc).zip(oc).enumerate();
            for (j, ((((((((vq, tq), iq), xq), sq), yq), lq), rq), oq)) in chunks {
                let new = quad(vq, tq, iq, xq, sq, yq, lq, rq, oq, &mut chg, &mut acc, g, al);
                // the column sum's LANES lanes: even chunks of L low, odd high;
                // a last odd chunk of L is the remainder, added in sequence
                if 4 * j < head8 {
                    if j % 2 == 0 {
                        xs_lo = _mm256_add_pd(xs_lo, new);
                    } else {
                        xs_hi = _mm256_add_pd(xs_hi, new);
                    }
                }
            }
        }
        let sum = |a: [f64; L]| a.iter().fold(0.0, |s, x| s + x);
        let min = |a: [f64; L]| a.iter().fold(f64::INFINITY, |s, x| if *x < s { *x } else { s });
        let max = |a: [f64; L]| a.iter().fold(f64::NEG_INFINITY, |s, x| if *x > s { *x } else { s });
        let mut st = Stats {
            clamped: sum(lanes(acc.cl)),
            sum_s: sum(lanes(acc.ss)),
            cnt_s: sum(lanes(acc.cs)),
            min_s: min(lanes(acc.mn)),
            max_n: max(lanes(acc.mx)),
        };
        let mut change = lanes(chg).iter().fold(0.0f64, |m, d| m.max(*d));
        for k in head4..n {
            let (_, d, val) = trade(v[k], tau[k], ia[k], &mut x[k], &mut totals[k], y[k], lambda[k], r[k], g, al);
            change = change.max(d);
            out[k] = val;
            stats_add(&mut st, val, y[k]);
        }
        let (lo, hi) = (lanes(xs_lo), lanes(xs_hi));
        let xs = [lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]];
        let xsum = x[head8..n].iter().fold(super::super::fold_lanes(xs), |s, v| s + v);
        (change, xsum, st)
    }

    /// [`seller_finish`](super::seller_finish) on AVX2.
    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn seller_finish(
        v: &[f64],
        tau: f64,
        x: &[f64],
        y: &mut [f64],
        lambda: &mut [f64],
        q: &mut [f64],
        r: &[f64],
        sign: f64,
    ) -> (f64, f64) {
        let n = y.len();
        let (v, x, lambda, q, r) = (&v[..n], &x[..n], &mut lambda[..n], &mut q[..n], &r[..n]);
        let head8 = n - n % LANES;
        let (tv, sv) = (_mm256_set1_pd(tau), _mm256_set1_pd(sign));
        let mut sum = [_mm256_setzero_pd(); 2];
        let mut res = _mm256_setzero_pd();
        {
            let (vc, _) = v[..head8].as_chunks::<L>();
            let (xc, _) = x[..head8].as_chunks::<L>();
            let (yc, _) = y[..head8].as_chunks_mut::<L>();
            let (lc, _) = lambda[..head8].as_chunks_mut::<L>();
            let (qc, _) = q[..head8].as_chunks_mut::<L>();
            let (rc, _) = r[..head8].as_chunks::<L>();
            for (j, (((((vq, xq), yq), lq), qq), rq)) in vc.iter().zip(xc).zip(yc).zip(lc).zip(qc).zip(rc).enumerate() {
                let new = pos(_mm256_sub_pd(ld(vq), tv));
                let xv = ld(xq);
                let rv = ld(rq);
                let l = _mm256_add_pd(ld(lq), _mm256_mul_pd(_mm256_mul_pd(sv, rv), _mm256_sub_pd(xv, new)));
                st(lq, l);
                st(qq, _mm256_sub_pd(l, _mm256_mul_pd(rv, new)));
                res = _mm256_max_pd(abs(_mm256_sub_pd(xv, new)), res);
                st(yq, new);
                sum[j % 2] = _mm256_add_pd(sum[j % 2], new);
            }
        }
        let (lo, hi) = (lanes(sum[0]), lanes(sum[1]));
        let mut s = super::super::fold_lanes([lo[0], lo[1], lo[2], lo[3], hi[0], hi[1], hi[2], hi[3]]);
        let mut residual = lanes(res).iter().fold(0.0f64, |m, d| m.max(*d));
        for k in head8..n {
            let new = (v[k] - tau).max(0.0);
            let l = lambda[k] + (sign * r[k]) * (x[k] - new);
            lambda[k] = l;
            q[k] = l - r[k] * new;
            residual = residual.max((x[k] - new).abs());
            y[k] = new;
            s += new;
        }
        (residual, s)
    }
}

multiversion! {
    /// One seller's column of the settled-trades sweep
    /// ([`super::PrimalDual::certificate`]): each settled trade
    /// `v = min(x, y)` (written to `v`) added to its buyer's total `t`, the
    /// buyer's cheapest offer `cheapest = min(cheapest, λ + bp_n − own)`
    /// taken — element by element, each buyer's values over the sellers in
    /// order as the column-by-column sweep took them, so the loop
    /// vectorises. Returns the column's highest price `max λ` and whether
    /// every `v ≥ 0` (no NaN).
    ///
    /// The highest price is reduced in [`LANES`] partial maxima: a maximum
    /// is the largest value whatever the order (NaN is skipped by `max`),
    /// except that a largest value of zero may come out `+0` or `−0` by
    /// the order; then the column is walked in order again, so the result
    /// is the in-order one bit for bit.
    fn settled_column = settled_column_body(
        x: &[f64], y: &[f64], l: &[f64], bp: f64, own: &[f64], v: &mut [f64], t: &mut [f64],
        cheapest: &mut [f64],
    ) -> (f64, bool);
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn settled_column_body(
    x: &[f64],
    y: &[f64],
    l: &[f64],
    bp: f64,
    own: &[f64],
    v: &mut [f64],
    t: &mut [f64],
    cheapest: &mut [f64],
) -> (f64, bool) {
    let n = v.len();
    let (x, y, l, own, t, cheapest) = (&x[..n], &y[..n], &l[..n], &own[..n], &mut t[..n], &mut cheapest[..n]);
    // element by element (no reduction: the loop vectorises)
    for k in 0..n {
        let e = x[k].min(y[k]);
        v[k] = e;
        t[k] += e;
        cheapest[k] = cheapest[k].min(l[k] + bp - own[k]);
    }
    // the reductions in lanes, by compare and select: the largest price
    // that is not NaN (`−∞` if none), as `max` gives, and the count of
    // settled trades that are not `≥ 0`
    let mut bad = [0.0f64; LANES];
    let mut top = [f64::NEG_INFINITY; LANES];
    let (vc, lc) = (v.chunks_exact(LANES), l.chunks_exact(LANES));
    let (vr, lr) = (vc.remainder(), lc.remainder());
    for (ve, le) in vc.zip(lc) {
        for i in 0..LANES {
            bad[i] += if ve[i] >= 0.0 { 0.0 } else { 1.0 };
            top[i] = if le[i] > top[i] { le[i] } else { top[i] };
        }
    }
    let mut high = top.iter().fold(f64::NEG_INFINITY, |m, p| if *p > m { *p } else { m });
    let mut nonneg = bad.iter().all(|b| *b == 0.0);
    for (e, p) in vr.iter().zip(lr) {
        nonneg &= *e >= 0.0;
        high = if *p > high { *p } else { high };
    }
    if high == 0.0 {
        high = l.iter().fold(f64::NEG_INFINITY, |m, p| m.max(*p));
    }
    (high, nonneg)
}
