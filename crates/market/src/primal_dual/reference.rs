//! The primal-dual iteration as it was before the seller's pass was
//! fused with the buyers' finish and the kernels were compiled per vector
//! unit (test-only): [`PrimalDual::step`] must reproduce it on seeded
//! markets, trade for trade and price for price.

use super::*;

/// `x ← max(0, v − τ)` for one seller's column of buyers (each buyer with
/// its own `τ`), adding to the buyers' totals; returns
/// `max |x_new − x_old| / α_m` (`ia = 1 / α_m`).
fn buyer_finish(v: &[f64], tau: &[f64], ia: &[f64], x: &mut [f64], totals: &mut [f64]) -> f64 {
    let n = x.len();
    let (v, tau, ia, totals) = (&v[..n], &tau[..n], &ia[..n], &mut totals[..n]);
    let mut chg = [0.0f64; L];
    let chunks = v
        .chunks_exact(L)
        .zip(tau.chunks_exact(L))
        .zip(ia.chunks_exact(L))
        .zip(x.chunks_exact_mut(L))
        .zip(totals.chunks_exact_mut(L));
    for ((((vc, tc), ic), xc), sc) in chunks {
        for i in 0..L {
            let new = (vc[i] - tc[i]).max(0.0);
            let d = (new - xc[i]).abs() * ic[i];
            chg[i] = if d > chg[i] { d } else { chg[i] };
            xc[i] = new;
            sc[i] += new;
        }
    }
    let mut change = chg.iter().fold(0.0f64, |m, d| m.max(*d));
    for k in n - n % L..n {
        let new = (v[k] - tau[k]).max(0.0);
        change = change.max((new - x[k]).abs() * ia[k]);
        x[k] = new;
        totals[k] += new;
    }
    change
}

/// Seller `n`'s gradient step `v = y + α_n (−C'(Σy) + λ + ρ_mn (x − y))`
/// (`total = Σ y`, kept from the previous iteration); returns `Σ max(0, v)`
/// and, over the support `S = {y > 0}` of the old column, `Σ_S v` and `|S|`
/// (partial sums per lane).
#[allow(clippy::too_many_arguments)]
fn seller_update(
    p: &Prosumer,
    total: f64,
    x: &[f64],
    y: &[f64],
    lambda: &[f64],
    r: &[f64],
    alpha: f64,
    v: &mut [f64],
) -> (f64, f64, f64) {
    let n = y.len();
    let (x, lambda, r, v) = (&x[..n], &lambda[..n], &r[..n], &mut v[..n]);
    let g = p.marginal(total);
    let value = |x: f64, y: f64, l: f64, rho: f64| y + alpha * (g + l + rho * (x - y));
    let (mut cl, mut ss, mut cs) = ([0.0f64; L], [0.0f64; L], [0.0f64; L]);
    let chunks = x
        .chunks_exact(L)
        .zip(y.chunks_exact(L))
        .zip(lambda.chunks_exact(L))
        .zip(r.chunks_exact(L))
        .zip(v.chunks_exact_mut(L));
    for ((((xc, yc), lc), rc), vc) in chunks {
        for i in 0..L {
            let val = value(xc[i], yc[i], lc[i], rc[i]);
            vc[i] = val;
            let ins = yc[i] > 0.0;
            cl[i] += if val > 0.0 { val } else { 0.0 };
            ss[i] += if ins { val } else { 0.0 };
            cs[i] += if ins { 1.0 } else { 0.0 };
        }
    }
    let fold = |a: [f64; L]| a.iter().fold(0.0, |s, x| s + x);
    let (mut clamped, mut sum_s, mut cnt_s) = (fold(cl), fold(ss), fold(cs));
    for k in n - n % L..n {
        let val = value(x[k], y[k], lambda[k], r[k]);
        v[k] = val;
        clamped += if val > 0.0 { val } else { 0.0 };
        if y[k] > 0.0 {
            sum_s += val;
            cnt_s += 1.0;
        }
    }
    (clamped, sum_s, cnt_s)
}

/// Does `{v > τ}` equal the old support `{old > 0}`? (Then `τ` from that
/// support is the projection's exact threshold, see [`warm_tau`].)
fn support_holds(v: &[f64], old: &[f64], tau: f64) -> bool {
    let n = v.len();
    let old = &old[..n];
    let mut bad = [0.0f64; L];
    for (vc, oc) in v.chunks_exact(L).zip(old.chunks_exact(L)) {
        for i in 0..L {
            bad[i] += if (vc[i] > tau) != (oc[i] > 0.0) { 1.0 } else { 0.0 };
        }
    }
    let tail = (n - n % L..n).any(|k| (v[k] > tau) != (old[k] > 0.0));
    !tail && bad.iter().all(|b| *b == 0.0)
}

/// A seller's threshold: `0` within the bounds, else `τ` from the old
/// support if [`support_holds`], else Michelot ([`capped_tau`]). The same
/// decision as [`warm_tau`] makes for the buyers.
fn seller_tau(v: &[f64], old: &[f64], lo: f64, hi: f64, (clamped, sum_s, cnt_s): (f64, f64, f64)) -> f64 {
    let target = if clamped > hi {
        hi
    } else if clamped < lo {
        lo
    } else {
        return 0.0;
    };
    if cnt_s > 0.0 {
        let tau = (sum_s - target) / cnt_s;
        if support_holds(v, old, tau) {
            return tau;
        }
    }
    capped_tau(v, lo, hi, clamped)
}

/// `y ← max(0, v − τ)`, `λ ← λ + ρ_mn (x − y)` and `q ← λ − ρ_mn y` in place;
/// returns the reciprocity residual `max |x − y|` and `Σ y` (the partial
/// sums of [`lane_sum`]).
fn seller_finish(
    v: &[f64],
    tau: f64,
    x: &[f64],
    y: &mut [f64],
    lambda: &mut [f64],
    q: &mut [f64],
    r: &[f64],
) -> (f64, f64) {
    let n = y.len();
    let (v, x, lambda, q, r) = (&v[..n], &x[..n], &mut lambda[..n], &mut q[..n], &r[..n]);
    let sign = if mutants::active(Mutation::WrongPriceUpdate) { -1.0 } else { 1.0 };
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
    let mut s = fold_lanes(sum);
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

impl PrimalDual {
    /// The step as it was: separate buyer finish, seller update, support
    /// check and seller finish over each column.
    pub(super) fn step_reference(&mut self, market: &Market) -> StepReport {
        let (mm, nn) = (self.buyers, self.sellers);
        if !self.prices_ready {
            self.operator_prices();
        }
        self.prices_ready = false;
        // buyers (Jacobi: every buyer reads the previous iterate): pass 1,
        // the gradient steps and their statistics, column by column
        for m in 0..mm {
            self.gb[m] = market.buyers[m].marginal(self.xt[m]);
            self.own[m] = self.bus_price[self.bm[m]];
        }
        for n in 0..nn {
            self.bp_col[n] = self.bus_price[self.bn[n]];
        }
        self.bstats.reset();
        for n in 0..nn {
            let c = n * mm..(n + 1) * mm;
            let (g, own, bp) = (&self.gb, &self.own, self.bp_col[n]);
            buyer_column(
                Isa::Base,
                &self.x[c.clone()],
                &self.q[c.clone()],
                &mut self.v[c.clone()],
                g,
                own,
                bp,
                &self.alpha_b,
                &self.rho_t[c],
                &mut self.bstats,
            );
        }
        for m in 0..mm {
            let st = self.bstats.get(m);
            self.tau[m] = self.buyer_tau(market, m, &st);
        }
        // pass 2, per seller column: the buyers' new trades in it, then the
        // seller's own step on them
        self.xt.iter_mut().for_each(|v| *v = 0.0);
        let (mut change, mut residual) = (0.0f64, 0.0f64);
        for n in 0..nn {
            let c = n * mm..(n + 1) * mm;
            change = change.max(buyer_finish(
                &self.v[c.clone()],
                &self.tau,
                &self.ia_b,
                &mut self.x[c.clone()],
                &mut self.xt,
            ));
            let p = &market.sellers[n];
            let st = seller_update(
                p,
                self.yt[n],
                &self.x[c.clone()],
                &self.y[c.clone()],
                &self.lambda[c.clone()],
                &self.rho_t[c.clone()],
                self.alpha_s[n],
                &mut self.col,
            );
            let tau = seller_tau(&self.col[..mm], &self.y[c.clone()], p.e_min, p.e_max, st);
            let (res, total) = seller_finish(
                &self.col,
                tau,
                &self.x[c.clone()],
                &mut self.y[c.clone()],
                &mut self.lambda[c.clone()],
                &mut self.q[c.clone()],
                &self.rho_t[c.clone()],
            );
            residual = residual.max(res);
            self.yt[n] = total;
            self.xcol[n] = lane_sum(&self.x[c]);
        }
        // injections in the order of [`PrimalDual::injections`]
        self.inj.iter_mut().for_each(|v| *v = 0.0);
        for m in 0..mm {
            self.inj[self.bm[m]] -= self.xt[m];
        }
        for n in 0..nn {
            self.inj[self.bn[n]] += self.xcol[n];
        }
        // operator's multiplier step on the new flows
        let violation = self.excesses();
        let mu_rows = if mutants::active(Mutation::LineLimitsIgnored) { 0 } else { self.h.len() };
        for r in 0..mu_rows {
            self.mu[r] = (self.mu[r] + self.gamma_row[r] * self.boost(r) * self.excess[r]).max(0.0);
        }
        self.track_overload();
        self.update_mode();
        self.iterations += 1;
        self.report(market, residual, change, violation)
    }

    /// The certificate as it was: from [`PrimalDual::settled`] and
    /// [`Market::welfare`], each buyer's cheapest seller by a strided walk.
    pub(super) fn certificate_reference(&self, market: &Market) -> Certificate {
        let (mm, nn, k) = (self.buyers, self.sellers, self.buses);
        let settled = self.settled();
        let welfare = market.welfare(&settled);
        // line prices per bus from μ, and the settled trades' overload
        let mut bp = vec![0.0; k];
        let mut dual = 0.0;
        let (t, s) = PrimalDual::totals(&settled);
        let mut inj = vec![0.0; k];
        for (m, v) in t.iter().enumerate() {
            inj[self.bm[m]] -= v;
        }
        for (n, v) in s.iter().enumerate() {
            inj[self.bn[n]] += v;
        }
        let mut overload_value = 0.0;
        for r in 0..self.h.len() {
            let row = &self.g[r * k..(r + 1) * k];
            let mu = self.mu[r];
            if mu > 0.0 {
                for (b, g) in bp.iter_mut().zip(row) {
                    *b += mu * g;
                }
                dual += mu * self.h[r];
                let ex = lane_dot(row, &inj) - self.h[r];
                overload_value += mu * ex.max(0.0);
            }
        }
        let best = |p: &Prosumer, c: f64| -> f64 {
            // max_S welfare(S) − c S for a buyer, c S + welfare(S) for a seller
            // (welfare(S) = −C(S)); S on the prosumer's bounds
            let s = match p.side {
                crate::problem::Side::Buyer => (p.b - c) / p.a,
                crate::problem::Side::Seller => (c - p.b) / p.a,
            };
            let s = s.clamp(p.e_min, p.e_max);
            match p.side {
                crate::problem::Side::Buyer => p.welfare(s) - c * s,
                crate::problem::Side::Seller => p.welfare(s) + c * s,
            }
        };
        for (m, p) in market.buyers.iter().enumerate() {
            let own = bp[self.bm[m]];
            let c = (0..nn).map(|n| self.lambda[n * mm + m] + bp[self.bn[n]] - own).fold(f64::INFINITY, f64::min);
            dual += best(p, c);
        }
        for (n, p) in market.sellers.iter().enumerate() {
            let c = self.lambda[n * mm..(n + 1) * mm].iter().copied().fold(f64::NEG_INFINITY, f64::max);
            dual += best(p, c);
        }
        Certificate { welfare, dual, overload_value }
    }
}

impl PrimalDual {
    /// [`PrimalDual::certificate`] as it was before its sweep walked
    /// [`CERT_COLUMNS`] columns side by side: one column at a time.
    pub(super) fn certificate_one_column(&self, market: &Market) -> Certificate {
        let (mm, nn, k) = (self.buyers, self.sellers, self.buses);
        // line prices per bus from μ
        let mut bp = vec![0.0; k];
        let mut dual = 0.0;
        for r in 0..self.h.len() {
            let mu = self.mu[r];
            if mu > 0.0 {
                for (b, g) in bp.iter_mut().zip(&self.g[r * k..(r + 1) * k]) {
                    *b += mu * g;
                }
                dual += mu * self.h[r];
            }
        }
        // one sweep over the trade matrices (seller-major, no allocation
        // per trade): the settled trades' totals (each buyer's over the
        // sellers in order, each seller's over the buyers, as
        // [`PrimalDual::settled`] and [`Market::welfare`] form them), each
        // buyer's cheapest seller and each seller's highest price
        let own: Vec<f64> = self.bm.iter().map(|b| bp[*b]).collect();
        let (mut t, mut s) = (vec![0.0; mm], vec![0.0; nn]);
        let (mut cheapest, mut highest) = (vec![f64::INFINITY; mm], vec![f64::NEG_INFINITY; nn]);
        for n in 0..nn {
            let c = n * mm..(n + 1) * mm;
            let bpn = bp[self.bn[n]];
            let (mut total, mut top) = (0.0, f64::NEG_INFINITY);
            let column = self.x[c.clone()].iter().zip(&self.y[c.clone()]).zip(&self.lambda[c]);
            for (m, ((x, y), l)) in column.enumerate() {
                let v = x.min(*y);
                t[m] += v;
                total += v;
                cheapest[m] = cheapest[m].min(l + bpn - own[m]);
                top = top.max(*l);
            }
            s[n] = total;
            highest[n] = top;
        }
        let welfare = market.welfare_of_totals(&t, &s);
        // the settled trades' overload
        let mut inj = vec![0.0; k];
        for (m, v) in t.iter().enumerate() {
            inj[self.bm[m]] -= v;
        }
        for (n, v) in s.iter().enumerate() {
            inj[self.bn[n]] += v;
        }
        let mut overload_value = 0.0;
        for r in 0..self.h.len() {
            let mu = self.mu[r];
            if mu > 0.0 {
                let ex = lane_dot(&self.g[r * k..(r + 1) * k], &inj) - self.h[r];
                overload_value += mu * ex.max(0.0);
            }
        }
        let best = |p: &Prosumer, c: f64| -> f64 {
            // max_S welfare(S) − c S for a buyer, c S + welfare(S) for a seller
            // (welfare(S) = −C(S)); S on the prosumer's bounds
            let s = match p.side {
                crate::problem::Side::Buyer => (p.b - c) / p.a,
                crate::problem::Side::Seller => (c - p.b) / p.a,
            };
            let s = s.clamp(p.e_min, p.e_max);
            match p.side {
                crate::problem::Side::Buyer => p.welfare(s) - c * s,
                crate::problem::Side::Seller => p.welfare(s) + c * s,
            }
        };
        for (p, c) in market.buyers.iter().zip(&cheapest) {
            dual += best(p, *c);
        }
        for (p, c) in market.sellers.iter().zip(&highest) {
            dual += best(p, *c);
        }
        Certificate { welfare, dual, overload_value }
    }

    /// The settled trades' bus injections as [`PrimalDual::settled_rows_hold`]
    /// first formed them: trade by trade, both buses in memory.
    pub(super) fn settled_injections_reference(&self) -> Vec<f64> {
        let (mm, k) = (self.buyers, self.buses);
        let mut inj = vec![0.0; k];
        for j in 0..self.sellers {
            for m in 0..mm {
                let e = self.x[j * mm + m].min(self.y[j * mm + m]);
                inj[self.bm[m]] -= e;
                inj[self.bn[j]] += e;
            }
        }
        inj
    }

    /// The settled-rows test as it was: every row's value from the
    /// trade-by-trade injections.
    pub(super) fn settled_rows_hold_reference(&self) -> bool {
        let k = self.buses;
        let inj = self.settled_injections_reference();
        (0..self.h.len()).all(|r| {
            let v = lane_dot(&self.g[r * k..(r + 1) * k], &inj) - self.h[r];
            v <= crate::network::ROW_TOL_ABS_KW + crate::network::ROW_TOL_REL * self.h[r].abs()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clearing::network_for;
    use crate::{Case, CASE30, CASE33BW};

    /// `a` and `b` hold the same values (`-0.0` and `0.0` alike: the
    /// sign of a zero trade is not part of the clearing).
    fn same(what: &str, it: usize, a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{what} length");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(x == y || (x.is_nan() && y.is_nan()), "{what}[{k}] differs at iteration {it}: {x:e} vs {y:e}");
        }
    }

    fn same_state(it: usize, a: &PrimalDual, b: &PrimalDual) {
        same("x", it, &a.x, &b.x);
        same("y", it, &a.y, &b.y);
        same("lambda", it, &a.lambda, &b.lambda);
        same("q", it, &a.q, &b.q);
        same("mu", it, &a.mu, &b.mu);
        same("bus price", it, &a.bus_price, &b.bus_price);
        same("buyer totals", it, &a.xt, &b.xt);
        same("seller totals", it, &a.yt, &b.yt);
    }

    fn same_report(it: usize, a: &StepReport, b: &StepReport) {
        same(
            "residual/change/violation",
            it,
            &[a.residual, a.change, a.violation],
            &[b.residual, b.change, b.violation],
        );
        assert_eq!(a.converged, b.converged, "converged at iteration {it}");
        assert_eq!(a.certificate.is_some(), b.certificate.is_some(), "certificate at iteration {it}");
    }

    /// Every vector unit this CPU has, the baseline first.
    fn isas() -> Vec<Isa> {
        let mut v = vec![Isa::Base];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Isa::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Isa::Avx512);
            }
        }
        v
    }

    /// `iters` iterations of the fused step (on every vector unit) beside
    /// the reference step, compared after each; the one-sweep certificate
    /// beside the reference certificate on every iterate.
    fn agree(market: &Market, net: &MarketNetwork, iters: usize) {
        let params = PdParams::for_market(market);
        let mut reference = PrimalDual::new(market, net, params).unwrap();
        let mut fused: Vec<PrimalDual> = isas()
            .into_iter()
            .map(|isa| {
                let mut pd = PrimalDual::new(market, net, params).unwrap();
                pd.isa = isa;
                pd
            })
            .collect();
        for it in 0..iters {
            let want = reference.step_reference(market);
            let (a, b) = (reference.certificate(market), reference.certificate_reference(market));
            same("certificate", it, &[a.welfare, a.dual, a.overload_value], &[b.welfare, b.dual, b.overload_value]);
            // bit for bit against the sweeps as they were
            let c = reference.certificate_one_column(market);
            let cbits = |c: &Certificate| [c.welfare.to_bits(), c.dual.to_bits(), c.overload_value.to_bits()];
            assert_eq!(cbits(&a), cbits(&c), "certificate bits at iteration {it}");
            let (i, j) = (reference.settled_injections(), reference.settled_injections_reference());
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
            assert_eq!(bits(&i), bits(&j), "settled injections at iteration {it}");
            let sw = reference.settled_sweep();
            assert_eq!(
                reference.settled_rows_hold(&sw),
                reference.settled_rows_hold_reference(),
                "settled rows at iteration {it}"
            );
            for pd in &mut fused {
                let got = pd.step(market);
                same_report(it, &got, &want);
                same_state(it, pd, &reference);
                // the sweep's kernel on every vector unit
                let isa = pd.isa;
                assert_eq!(cbits(&pd.certificate(market)), cbits(&a), "certificate bits on {isa:?} at iteration {it}");
            }
        }
    }

    /// Sizes around the lane widths (4 and 8): whole chunks, a chunk of 4
    /// left over, odd tails, one buyer.
    const SIZES: [(usize, usize); 7] = [(1, 3), (3, 1), (4, 8), (5, 7), (12, 12), (13, 11), (29, 22)];

    #[test]
    fn fused_step_equals_the_reference_step_on_uncongested_case30_markets() {
        let net = network_for(&Case::parse(CASE30).unwrap(), 1.0).unwrap();
        let mut shared = 0;
        for (seed, (m, n)) in SIZES.iter().enumerate() {
            let market = Market::generate(seed as u64, *m, *n, &net.bus_ids);
            // a buyer at a seller's bus: the settled injections' register
            // path for it is compared too
            shared += market.buyers.iter().filter(|b| market.sellers.iter().any(|s| s.bus == b.bus)).count();
            agree(&market, &net, 300);
        }
        assert!(shared > 0, "no buyer shares a seller's bus");
    }

    #[test]
    fn fused_step_equals_the_reference_step_on_congested_case30_markets() {
        // line limits at 1e-4 of the ratings: line prices move every iteration
        let net = network_for(&Case::parse(CASE30).unwrap(), 1e-4).unwrap();
        for (seed, (m, n)) in SIZES.iter().enumerate() {
            agree(&Market::generate(20 + seed as u64, *m, *n, &net.bus_ids), &net, 300);
        }
    }

    #[test]
    fn fused_step_equals_the_reference_step_on_distflow_markets() {
        let net = network_for(&Case::parse(CASE33BW).unwrap(), 1.0).unwrap();
        for (seed, (m, n)) in SIZES.iter().enumerate() {
            agree(&Market::generate(40 + seed as u64, *m, *n, &net.bus_ids), &net, 200);
        }
    }

    /// The congested markets of the sizes above hit Michelot's fallback
    /// (the support changes) on both sides; so the comparison covers it.
    #[test]
    fn the_comparison_covers_support_changes() {
        let net = network_for(&Case::parse(CASE30).unwrap(), 1e-4).unwrap();
        let market = Market::generate(26, 29, 22, &net.bus_ids);
        let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
        let mut changed = 0;
        for _ in 0..300 {
            let before: Vec<bool> = pd.y.iter().map(|v| *v > 0.0).collect();
            pd.step(&market);
            changed += pd.y.iter().zip(&before).filter(|(v, b)| (**v > 0.0) != **b).count();
        }
        assert!(changed > 0, "no seller support changed in 300 iterations");
    }

    /// The settled-rows test decided from the sweep's injections agrees
    /// with the trade-by-trade one where a row's value sits at its
    /// tolerance to the last bits (each limit moved by a few units in the
    /// last place around the one that puts the row exactly there): the
    /// bound declines there, and the exact test decides.
    #[test]
    fn the_settled_rows_test_agrees_at_the_tolerance() {
        let net = network_for(&Case::parse(CASE30).unwrap(), 1e-4).unwrap();
        let market = Market::generate(21, 13, 11, &net.bus_ids);
        let mut pd = PrimalDual::new(&market, &net, PdParams::for_market(&market)).unwrap();
        for _ in 0..400 {
            pd.step(&market);
        }
        // away from every tolerance the sweep's injections decide
        assert!(pd.settled_rows_bound(&pd.settled_sweep()).is_some(), "the bound decided nothing");
        let k = pd.buses;
        let inj = pd.settled_injections_reference();
        let (mut declined, mut rows) = (0, 0);
        for r in 0..pd.h.len() {
            let a = lane_dot(&pd.g[r * k..(r + 1) * k], &inj);
            // h with h + tol(h) = a, tol(h) = ABS + REL·|h| (h ≥ 0 here)
            let h0 = (a - crate::network::ROW_TOL_ABS_KW) / (1.0 + crate::network::ROW_TOL_REL);
            if h0.is_nan() || h0 <= 0.0 {
                continue;
            }
            let saved = pd.h.clone();
            for steps in -6i64..=6 {
                let mut pd = pd.clone();
                pd.h = saved.clone();
                pd.h[r] = f64::from_bits((h0.to_bits() as i64 + steps) as u64);
                let sw = pd.settled_sweep();
                declined += usize::from(pd.settled_rows_bound(&sw).is_none());
                assert_eq!(pd.settled_rows_hold(&sw), pd.settled_rows_hold_reference(), "row {r}, {steps} ulps");
            }
            rows += 1;
        }
        assert!(rows > 0, "no row to move");
        assert!(declined > 0, "no limit at the tolerance reached the exact test");
    }
}
