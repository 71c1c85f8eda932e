//! Small dense linear algebra for the network models (tens of buses).

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
}
