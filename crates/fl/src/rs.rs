//! Reed–Solomon over the BLS12-381 scalar field (thesis §7.2, Eqs 7.1–7.4).
//!
//! A fragment of `k` field elements is read as the coefficients of a
//! polynomial `p` of degree `< k`; its codeword is `p` evaluated on the
//! subgroup of `n`-th roots of unity (`n` a power of two, `n ≥ k`), computed
//! with one FFT. Any `k` positions decode it. Because the codeword *is* `p`
//! on the domain, the KZG commitment to `p` ([`crate::kzg`]) binds exactly
//! the subfragments that were coded: position `i` opens to `p(ω^i)`.

use crate::error::FlError;
use crate::field::{domain, eval, fft, interpolate};
use blstrs::Scalar;

/// An `[n, k]` Reed–Solomon code on the size-`n` subgroup.
#[derive(Clone, Debug)]
pub struct RsCode {
    k: usize,
    n: usize,
    domain: Vec<Scalar>,
}

impl RsCode {
    /// `k` data elements into `n` positions; `n` must be a power of two and
    /// `1 ≤ k ≤ n`.
    pub fn new(k: usize, n: usize) -> Result<Self, FlError> {
        if k == 0 || k > n {
            return Err(FlError::Unsupported("need 1 <= k <= n"));
        }
        Ok(Self { k, n, domain: domain(n)? })
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// The evaluation point of position `i`.
    pub fn point(&self, i: usize) -> Result<Scalar, FlError> {
        self.domain.get(i).copied().ok_or(FlError::PositionOutOfRange { index: i, len: self.n })
    }

    /// Encode `k` elements (the coefficients) into the `n`-position codeword.
    pub fn encode(&self, data: &[Scalar]) -> Result<Vec<Scalar>, FlError> {
        if data.len() != self.k {
            return Err(FlError::WrongLength { expected: self.k, got: data.len() });
        }
        let mut a = data.to_vec();
        a.resize(self.n, Scalar::from(0u64));
        fft(&mut a)?;
        Ok(a)
    }

    /// Decode from `(position, value)` shares. The first `k` distinct
    /// in-range positions determine the polynomial; every further share is
    /// checked against it, so a corrupted share is reported, not absorbed.
    /// Duplicates of a position must agree.
    pub fn decode(&self, shares: &[(usize, Scalar)]) -> Result<Vec<Scalar>, FlError> {
        let mut seen = vec![None; self.n];
        let mut basis = Vec::with_capacity(self.k);
        for &(i, v) in shares {
            let x = self.point(i)?;
            match seen[i] {
                Some(prev) if prev != v => return Err(FlError::Inconsistent { index: i }),
                Some(_) => continue,
                None => seen[i] = Some(v),
            }
            if basis.len() < self.k {
                basis.push((x, v));
            }
        }
        if basis.len() < self.k {
            return Err(FlError::Undecodable { need: self.k, have: basis.len() });
        }
        let coeffs = interpolate(&basis)?;
        for (i, v) in seen.iter().enumerate() {
            if let Some(v) = v {
                if eval(&coeffs, self.domain[i]) != *v {
                    return Err(FlError::Inconsistent { index: i });
                }
            }
        }
        Ok(coeffs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(k: usize) -> Vec<Scalar> {
        (0..k as u64).map(|i| Scalar::from(i * i + 5)).collect()
    }

    #[test]
    fn any_k_positions_decode() {
        let code = RsCode::new(4, 8).unwrap();
        let d = data(4);
        let cw = code.encode(&d).unwrap();
        let shares: Vec<_> = [7usize, 2, 5, 3].iter().map(|&i| (i, cw[i])).collect();
        assert_eq!(code.decode(&shares).unwrap(), d);
        let all: Vec<_> = (0..8).map(|i| (i, cw[i])).collect();
        assert_eq!(code.decode(&all).unwrap(), d);
    }

    #[test]
    fn wrong_length_refused() {
        let code = RsCode::new(4, 8).unwrap();
        assert_eq!(code.encode(&data(3)), Err(FlError::WrongLength { expected: 4, got: 3 }));
    }

    #[test]
    fn too_few_shares_undecodable() {
        let code = RsCode::new(4, 8).unwrap();
        let cw = code.encode(&data(4)).unwrap();
        let shares: Vec<_> = (0..3).map(|i| (i, cw[i])).collect();
        assert_eq!(code.decode(&shares), Err(FlError::Undecodable { need: 4, have: 3 }));
        // duplicates do not count twice
        let dup = vec![(0, cw[0]), (0, cw[0]), (1, cw[1]), (2, cw[2])];
        assert_eq!(code.decode(&dup), Err(FlError::Undecodable { need: 4, have: 3 }));
    }

    #[test]
    fn corrupted_or_out_of_range_share_refused() {
        let code = RsCode::new(4, 8).unwrap();
        let cw = code.encode(&data(4)).unwrap();
        let mut shares: Vec<_> = (0..6).map(|i| (i, cw[i])).collect();
        shares[5].1 += Scalar::from(1u64);
        assert_eq!(code.decode(&shares), Err(FlError::Inconsistent { index: 5 }));
        assert_eq!(code.decode(&[(8, cw[0])]), Err(FlError::PositionOutOfRange { index: 8, len: 8 }));
    }

    #[test]
    fn bad_parameters_refused() {
        assert!(matches!(RsCode::new(4, 6), Err(FlError::Unsupported(_))));
        assert!(matches!(RsCode::new(9, 8), Err(FlError::Unsupported(_))));
        assert!(matches!(RsCode::new(0, 8), Err(FlError::Unsupported(_))));
    }
}
