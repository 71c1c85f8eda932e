//! Small dense linear algebra for the network models (tens of buses), and
//! a sparse LU (a maintained crate's) for the AC power flow's Newton steps.

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

/// Multiply-adds of an LU factorisation with partial pivoting of an
/// `n × n` matrix with `p` sub- and `q` super-diagonals, an upper bound
/// (LAPACK's `gbtrf` scheme: the multipliers stay within `p` rows of the
/// diagonal, the upper factor within `p + q` columns): `n p (p + q)`. It
/// bounds [`SparseLu`] on such a matrix as well, which keeps the column
/// order it is given (so its fill stays within the same band).
pub fn band_lu_work(n: usize, p: usize, q: usize) -> u64 {
    (n as u64).saturating_mul(p as u64).saturating_mul((p + q) as u64)
}

/// Sparse LU factorisation with partial pivoting of a square matrix, by a
/// maintained crate (`rsparse`, a port of Davis's CSparse `cs_lu`): the
/// columns in the order given (no fill-reducing reordering: the caller's
/// order, reverse Cuthill–McKee for the AC power flow, bounds the work by
/// [`band_lu_work`]) and the largest candidate of each column as its
/// pivot. Entries are summed into place with [`SparseLu::add`] (the
/// crate's factorisation takes one entry per position).
pub struct SparseLu {
    n: usize,
    /// Per column: `(row, value)`, one per row.
    cols: Vec<Vec<(usize, f64)>>,
}

/// The factors of [`SparseLu::factor`].
pub struct SparseLuFactors {
    n: usize,
    num: rsparse::data::Nmrc<f64>,
}

impl SparseLu {
    /// An empty `n × n` matrix.
    pub fn zeros(n: usize) -> SparseLu {
        SparseLu { n, cols: vec![Vec::new(); n] }
    }

    /// Adds `v` to entry `(i, j)`.
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        let col = &mut self.cols[j];
        match col.iter_mut().find(|(r, _)| *r == i) {
            Some((_, x)) => *x += v,
            None => col.push((i, v)),
        }
    }

    /// Factorises; a pivot at or below `10⁻¹³` of the largest entry is
    /// [`LinalgError::Singular`] (as [`Lu`]).
    pub fn factor(self) -> Result<SparseLuFactors, LinalgError> {
        let n = self.n;
        let scale = self.cols.iter().flatten().fold(0.0f64, |m, (_, v)| m.max(v.abs())).max(f64::MIN_POSITIVE);
        let mut t = rsparse::data::Trpl::new();
        for (j, col) in self.cols.iter().enumerate() {
            for (i, v) in col {
                t.append(*i, j, *v);
            }
        }
        // an all-zero last row or column must not shrink the matrix
        t.m = n;
        t.n = n;
        let a = t.to_sprs();
        // order −1: the columns as given
        let mut sym = rsparse::sqr(&a, -1, false);
        let num = rsparse::lu(&a, &mut sym, 1.0).map_err(|_| LinalgError::Singular { col: 0, pivot: 0.0 })?;
        // U's diagonal is the last entry of each of its columns
        for k in 0..n {
            let end = num.u.p[k + 1];
            let d = if end > num.u.p[k] { num.u.x[(end - 1) as usize].abs() } else { 0.0 };
            if d.is_nan() || d <= 1e-13 * scale {
                return Err(LinalgError::Singular { col: k, pivot: d });
            }
        }
        Ok(SparseLuFactors { n, num })
    }
}

impl SparseLuFactors {
    /// Solves `A x = b` (`x = U⁻¹ L⁻¹ P b`).
    pub fn solve(&self, b: &[f64]) -> Vec<f64> {
        let n = self.n;
        let mut x = vec![0.0; n];
        match &self.num.pinv {
            Some(pinv) => {
                for (k, bk) in b.iter().enumerate().take(n) {
                    x[pinv[k] as usize] = *bk;
                }
            }
            None => x.copy_from_slice(&b[..n]),
        }
        rsparse::lsolve(&self.num.l, &mut x);
        rsparse::usolve(&self.num.u, &mut x);
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
    fn sparse_lu_agrees_with_dense_lu_and_refuses_singular() {
        // a banded 7 × 7 (2 sub-, 1 super-diagonal) that needs pivoting,
        // entries added in two halves (summed into place)
        let (n, p, q) = (7, 2, 1);
        let mut dense = vec![0.0; n * n];
        let mut sparse = SparseLu::zeros(n);
        for i in 0..n {
            for j in i.saturating_sub(p)..=(i + q).min(n - 1) {
                let v = ((i * 7 + j * 3) % 5) as f64 - 1.5 + if i == j { 0.1 } else { 0.0 };
                dense[i * n + j] = v;
                sparse.add(i, j, 0.5 * v);
                sparse.add(i, j, 0.5 * v);
            }
        }
        let b: Vec<f64> = (0..n).map(|i| i as f64 - 2.0).collect();
        let want = Lu::new(n, dense.clone()).unwrap().solve(&b);
        let got = sparse.factor().unwrap().solve(&b);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9 * (1.0 + w.abs()), "{got:?} vs {want:?}");
        }
        // and A x = b
        for i in 0..n {
            let r: f64 = (0..n).map(|j| dense[i * n + j] * got[j]).sum();
            assert!((r - b[i]).abs() < 1e-9);
        }
        let mut sing = SparseLu::zeros(2);
        for (i, j, v) in [(0, 0, 1.0), (0, 1, 2.0), (1, 0, 2.0), (1, 1, 4.0)] {
            sing.add(i, j, v);
        }
        assert!(matches!(sing.factor(), Err(LinalgError::Singular { .. })));
        // a zero column
        let mut zero = SparseLu::zeros(3);
        zero.add(0, 0, 1.0);
        zero.add(2, 2, 1.0);
        assert!(matches!(zero.factor(), Err(LinalgError::Singular { .. })));
        assert_eq!(band_lu_work(10, 2, 1), 60);
    }
}
