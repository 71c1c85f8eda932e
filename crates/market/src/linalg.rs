//! Small dense linear algebra for the network models (tens of buses), and
//! a banded LU for the AC power flow's Newton steps.

use std::ops::{Add, Mul, Neg, Sub};

/// Why a linear solve failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LinalgError {
    #[error("matrix is singular (pivot {pivot:e} in column {col})")]
    Singular { col: usize, pivot: f64 },
}

/// LU factorisation with partial pivoting of a dense square matrix (row-major).
pub struct Lu {
    n: usize,
    a: Vec<f64>,
    perm: Vec<usize>,
}

impl Lu {
    pub fn new(n: usize, mut a: Vec<f64>) -> Result<Lu, LinalgError> {
        debug_assert_eq!(a.len(), n * n);
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        let mut perm: Vec<usize> = (0..n).collect();
        for k in 0..n {
            let (p, pv) =
                (k..n).map(|i| (i, a[i * n + k].abs())).fold((k, -1.0), |best, c| if c.1 > best.1 { c } else { best });
            if pv <= 1e-13 * scale {
                return Err(LinalgError::Singular { col: k, pivot: pv });
            }
            if p != k {
                for j in 0..n {
                    a.swap(k * n + j, p * n + j);
                }
                perm.swap(k, p);
            }
            let d = a[k * n + k];
            for i in k + 1..n {
                let f = a[i * n + k] / d;
                a[i * n + k] = f;
                if f != 0.0 {
                    for j in k + 1..n {
                        a[i * n + j] -= f * a[k * n + j];
                    }
                }
            }
        }
        Ok(Lu { n, a, perm })
    }

    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x: Vec<f64> = self.perm.iter().map(|&p| b[p]).collect();
        for i in 0..n {
            let mut s = x[i];
            for j in 0..i {
                s -= self.a[i * n + j] * x[j];
            }
            x[i] = s;
        }
        for i in (0..n).rev() {
            let mut s = x[i];
            for j in i + 1..n {
                s -= self.a[i * n + j] * x[j];
            }
            x[i] = s / self.a[i * n + i];
        }
        x
    }
}

/// LU factorisation with partial pivoting of a banded square matrix
/// (LAPACK's `gbtrf` scheme): `p` sub- and `q` super-diagonals, so the
/// multipliers stay within `p` rows of the diagonal and the upper factor
/// within `p + q` columns. Storage `n (2p + q + 1)`, work `O(n p (p + q))`,
/// against `n²` and `n³ / 3` dense.
pub struct BandLu {
    n: usize,
    p: usize,
    /// Row `i` holds columns `i − p ..= i + p + q` (offset `j + p − i`).
    w: usize,
    a: Vec<f64>,
    /// The multipliers of step `k`, rows `k + 1 ..= k + p`.
    l: Vec<f64>,
    /// The row swapped into position `k` at step `k`.
    piv: Vec<usize>,
}

impl BandLu {
    /// Entries a `n × n` matrix of bandwidths `p`, `q` is stored in.
    pub fn storage(n: usize, p: usize, q: usize) -> usize {
        n.saturating_mul(2 * p + q + 1)
    }

    /// Multiply-adds of the factorisation (an upper bound).
    pub fn work(n: usize, p: usize, q: usize) -> u64 {
        (n as u64).saturating_mul(p as u64).saturating_mul((p + q) as u64)
    }

    /// An empty `n × n` matrix of bandwidths `p`, `q`, to [`BandLu::add`]
    /// entries to and then [`BandLu::factor`].
    pub fn zeros(n: usize, p: usize, q: usize) -> BandLu {
        let w = 2 * p + q + 1;
        BandLu { n, p, w, a: vec![0.0; n * w], l: vec![0.0; n * p], piv: vec![0; n] }
    }

    fn at(&self, i: usize, j: usize) -> usize {
        i * self.w + (j + self.p - i)
    }

    /// Adds `v` to entry `(i, j)`, which must lie within the bands
    /// (`j + p ≥ i`, `j ≤ i + q`).
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        let k = self.at(i, j);
        self.a[k] += v;
    }

    /// Factorises in place; a pivot at or below `10⁻¹³` of the largest entry
    /// is [`LinalgError::Singular`] (as [`Lu`]).
    pub fn factor(mut self) -> Result<BandLu, LinalgError> {
        let (n, p) = (self.n, self.p);
        let reach = self.w - p - 1; // p + q: the upper factor's bandwidth
        let scale = self.a.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(f64::MIN_POSITIVE);
        for k in 0..n {
            let last = (k + p).min(n - 1);
            let (mut r, mut best) = (k, -1.0);
            for i in k..=last {
                let v = self.a[self.at(i, k)].abs();
                if v > best {
                    (r, best) = (i, v);
                }
            }
            if best <= 1e-13 * scale {
                return Err(LinalgError::Singular { col: k, pivot: best.max(0.0) });
            }
            self.piv[k] = r;
            let end = (k + reach).min(n - 1);
            if r != k {
                for j in k..=end {
                    let (x, y) = (self.at(k, j), self.at(r, j));
                    self.a.swap(x, y);
                }
            }
            let d = self.a[self.at(k, k)];
            for i in k + 1..=last {
                let ik = self.at(i, k);
                let f = self.a[ik] / d;
                self.a[ik] = 0.0;
                self.l[k * p + (i - k - 1)] = f;
                if f != 0.0 {
                    for j in k + 1..=end {
                        let u = self.a[self.at(k, j)];
                        let ij = self.at(i, j);
                        self.a[ij] -= f * u;
                    }
                }
            }
        }
        Ok(self)
    }

    /// Solves `A x = b` with the factors of [`BandLu::factor`].
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let (n, p) = (self.n, self.p);
        let reach = self.w - p - 1;
        let mut x = b.to_vec();
        for k in 0..n {
            x.swap(k, self.piv[k]);
            let xk = x[k];
            for i in k + 1..=(k + p).min(n.saturating_sub(1)) {
                x[i] -= self.l[k * p + (i - k - 1)] * xk;
            }
        }
        for k in (0..n).rev() {
            let mut s = x[k];
            for j in k + 1..=(k + reach).min(n - 1) {
                s -= self.a[self.at(k, j)] * x[j];
            }
            x[k] = s / self.a[self.at(k, k)];
        }
        x
    }
}

/// A complex number (only what the AC power flow needs).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct C64 {
    pub re: f64,
    pub im: f64,
}

impl C64 {
    pub const ZERO: C64 = C64 { re: 0.0, im: 0.0 };
    pub fn new(re: f64, im: f64) -> C64 {
        C64 { re, im }
    }
    pub fn polar(r: f64, theta: f64) -> C64 {
        C64 { re: r * theta.cos(), im: r * theta.sin() }
    }
    pub fn conj(self) -> C64 {
        C64 { re: self.re, im: -self.im }
    }
    pub fn norm_sqr(self) -> f64 {
        self.re * self.re + self.im * self.im
    }
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    pub fn arg(self) -> f64 {
        self.im.atan2(self.re)
    }
    pub fn inv(self) -> C64 {
        let d = self.norm_sqr();
        C64 { re: self.re / d, im: -self.im / d }
    }
    pub fn scale(self, k: f64) -> C64 {
        C64 { re: self.re * k, im: self.im * k }
    }
}

impl Add for C64 {
    type Output = C64;
    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }
}
impl Sub for C64 {
    type Output = C64;
    fn sub(self, o: C64) -> C64 {
        C64::new(self.re - o.re, self.im - o.im)
    }
}
impl Mul for C64 {
    type Output = C64;
    fn mul(self, o: C64) -> C64 {
        C64::new(self.re * o.re - self.im * o.im, self.re * o.im + self.im * o.re)
    }
}
impl Neg for C64 {
    type Output = C64;
    fn neg(self) -> C64 {
        C64::new(-self.re, -self.im)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lu_solves_and_refuses_singular() {
        let lu = Lu::new(2, vec![0.0, 2.0, 1.0, 1.0]).unwrap();
        let x = lu.solve(&[4.0, 3.0]);
        assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 2.0).abs() < 1e-12);
        assert!(matches!(Lu::new(2, vec![1.0, 2.0, 2.0, 4.0]), Err(LinalgError::Singular { .. })));
    }

    #[test]
    fn band_lu_agrees_with_dense_lu_and_refuses_singular() {
        // a pentadiagonal-ish 7 × 7 (p = 2, q = 1) that needs pivoting
        let (n, p, q) = (7, 2, 1);
        let mut dense = vec![0.0; n * n];
        let mut band = BandLu::zeros(n, p, q);
        for i in 0..n {
            for j in i.saturating_sub(p)..=(i + q).min(n - 1) {
                let v = ((i * 7 + j * 3) % 5) as f64 - 1.5 + if i == j { 0.1 } else { 0.0 };
                dense[i * n + j] = v;
                band.add(i, j, v);
            }
        }
        let b: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
        let want = Lu::new(n, dense.clone()).unwrap().solve(&b);
        let got = band.factor().unwrap().solve(&b);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "{got:?} vs {want:?}");
        }
        // and A x = b
        for i in 0..n {
            let r: f64 = (0..n).map(|j| dense[i * n + j] * got[j]).sum();
            assert!((r - b[i]).abs() < 1e-9);
        }
        let mut sing = BandLu::zeros(2, 1, 1);
        for (i, j, v) in [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 2.0), (1, 1, 4.0)] {
            sing.add(i, j, v);
        }
        assert!(matches!(sing.factor(), Err(LinalgError::Singular { .. })));
    }
}
