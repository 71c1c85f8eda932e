//! Reed–Solomon over the BLS12-381 scalar field (thesis §7.2, Eqs 7.1–7.4).
//!
//! A fragment of `k` field elements is read as the coefficients of a
//! polynomial `p` of degree `< k`; its codeword is `p` evaluated on the
//! subgroup of `n`-th roots of unity (`n` a power of two, `n ≥ k`), computed
//! with one FFT. Any `k` positions decode it. Because the codeword *is* `p`
//! on the domain, the KZG commitment to `p` ([`crate::kzg`]) binds exactly
//! the subfragments that were coded: position `i` opens to `p(ω^i)`.
//! Decoding is erasure recovery in `O(n log² n)` ([`crate::field::recover`]);
//! a 4,096-element fragment at rate 1/2 decodes in about 0.2 s (the
//! `rs_decode` benchmark; Lagrange interpolation took about 7 s).

use crate::error::FlError;
use crate::field::{domain, fft, recover};
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
    ///
    /// `O(n log² n)`: the polynomial is recovered from the `k` basis
    /// positions by [`recover`] (vanishing polynomial of the other
    /// positions, FFTs on the domain and a coset) and checked against every
    /// share with one FFT; the result and errors are those of Lagrange
    /// interpolation through the same basis.
    pub fn decode(&self, shares: &[(usize, Scalar)]) -> Result<Vec<Scalar>, FlError> {
        let mut seen = vec![None; self.n];
        let mut basis: Vec<Option<Scalar>> = vec![None; self.n];
        let mut in_basis = 0;
        for &(i, v) in shares {
            self.point(i)?;
            match seen[i] {
                Some(prev) if prev != v => return Err(FlError::Inconsistent { index: i }),
                Some(_) => continue,
                None => seen[i] = Some(v),
            }
            if in_basis < self.k {
                basis[i] = Some(v);
                in_basis += 1;
            }
        }
        if in_basis < self.k {
            return Err(FlError::Undecodable { need: self.k, have: in_basis });
        }
        let coeffs = recover(&basis, self.k)?;
        let mut cw = coeffs.clone();
        cw.resize(self.n, Scalar::from(0u64));
        fft(&mut cw)?;
        for (i, (v, c)) in seen.iter().zip(&cw).enumerate() {
            if let Some(v) = v {
                if c != v {
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
    use crate::field::{eval, interpolate};
    use ff::Field;
    use proptest::prelude::*;
    use rand::{seq::SliceRandom, Rng, SeedableRng};

    /// The previous `O(k²)` decoder (Lagrange through the first `k`
    /// distinct positions, every share checked by Horner), the reference
    /// the fast decoder must agree with on results and errors.
    fn lagrange_decode(code: &RsCode, shares: &[(usize, Scalar)]) -> Result<Vec<Scalar>, FlError> {
        let mut seen = vec![None; code.n];
        let mut basis = Vec::with_capacity(code.k);
        for &(i, v) in shares {
            let x = code.point(i)?;
            match seen[i] {
                Some(prev) if prev != v => return Err(FlError::Inconsistent { index: i }),
                Some(_) => continue,
                None => seen[i] = Some(v),
            }
            if basis.len() < code.k {
                basis.push((x, v));
            }
        }
        if basis.len() < code.k {
            return Err(FlError::Undecodable { need: code.k, have: basis.len() });
        }
        let coeffs = interpolate(&basis)?;
        for (i, v) in seen.iter().enumerate() {
            if let Some(v) = v {
                if eval(&coeffs, code.domain[i]) != *v {
                    return Err(FlError::Inconsistent { index: i });
                }
            }
        }
        Ok(coeffs)
    }

    /// A uniformly random 31-byte field element.
    fn rand_scalar(rng: &mut impl Rng) -> Scalar {
        let mut b = [0u8; 31];
        rng.fill(&mut b[..]);
        crate::field::bytes_to_scalars(&b)[0]
    }

    /// A random code (`n ≤ 2^max_log`), fragment and codeword.
    fn random_case(seed: u64, max_log: u32) -> (RsCode, Vec<Scalar>, Vec<Scalar>, rand_chacha::ChaCha20Rng) {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let n = 1usize << rng.random_range(0..=max_log);
        let k = rng.random_range(1..=n);
        let code = RsCode::new(k, n).unwrap();
        let d: Vec<Scalar> = (0..k).map(|_| rand_scalar(&mut rng)).collect();
        let cw = code.encode(&d).unwrap();
        (code, d, cw, rng)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Any `k` (or more) of the `n` evaluations, in any order, decode
        /// to the original fragment.
        #[test]
        fn any_k_of_n_decode_to_the_original(seed in any::<u64>(), extra in 0usize..8) {
            let (code, d, cw, mut rng) = random_case(seed, 6);
            let mut pos: Vec<usize> = (0..code.n()).collect();
            pos.shuffle(&mut rng);
            pos.truncate((code.k() + extra).min(code.n()));
            let shares: Vec<_> = pos.iter().map(|&i| (i, cw[i])).collect();
            prop_assert_eq!(code.decode(&shares).unwrap(), d);
        }

        /// Fewer than `k` distinct positions (duplicates included) are
        /// `Undecodable` with the distinct count.
        #[test]
        fn fewer_than_k_positions_are_undecodable(seed in any::<u64>()) {
            let (code, _, cw, mut rng) = random_case(seed, 6);
            let have = rng.random_range(0..code.k());
            let mut pos: Vec<usize> = (0..code.n()).collect();
            pos.shuffle(&mut rng);
            pos.truncate(have);
            let mut shares: Vec<_> = pos.iter().map(|&i| (i, cw[i])).collect();
            if let Some(&first) = shares.first() {
                shares.push(first);
            }
            prop_assert_eq!(code.decode(&shares), Err(FlError::Undecodable { need: code.k(), have }));
        }

        /// A share altered beyond the first `k` is reported at its index;
        /// an altered duplicate at its index; an out-of-range position as such.
        #[test]
        fn wrong_shares_give_typed_errors(seed in any::<u64>()) {
            let (code, _, cw, mut rng) = random_case(seed, 6);
            prop_assume!(code.k() < code.n());
            let mut pos: Vec<usize> = (0..code.n()).collect();
            pos.shuffle(&mut rng);
            let mut shares: Vec<_> = pos.iter().map(|&i| (i, cw[i])).collect();
            let bad = rng.random_range(code.k()..code.n());
            shares[bad].1 += Scalar::ONE;
            let expected = FlError::Inconsistent { index: shares[bad].0 };
            prop_assert_eq!(code.decode(&shares), Err(expected.clone()));
            shares[bad].1 -= Scalar::ONE;
            let (i, v) = shares[0];
            shares.push((i, v + Scalar::ONE));
            prop_assert_eq!(code.decode(&shares), Err(FlError::Inconsistent { index: i }));
            shares.pop();
            shares.push((code.n(), cw[0]));
            prop_assert_eq!(code.decode(&shares), Err(FlError::PositionOutOfRange { index: code.n(), len: code.n() }));
        }

        /// On random share lists (random subsets, duplicates, corrupted
        /// values, out-of-range positions) the fast decoder returns exactly
        /// what the Lagrange decoder returns, values and errors alike.
        #[test]
        fn equals_the_lagrange_decoder(seed in any::<u64>()) {
            let (code, _, cw, mut rng) = random_case(seed, 7);
            let count = rng.random_range(0..=code.n() + 4);
            let shares: Vec<(usize, Scalar)> = (0..count)
                .map(|_| {
                    let past_end = usize::from(rng.random_ratio(1, 64));
                    let i = rng.random_range(0..code.n() + past_end);
                    let v = cw.get(i).copied().unwrap_or(Scalar::ZERO);
                    if rng.random_ratio(1, 16) { (i, rand_scalar(&mut rng)) } else { (i, v) }
                })
                .collect();
            prop_assert_eq!(code.decode(&shares), lagrange_decode(&code, &shares));
        }
    }

    /// A fragment large enough that the vanishing polynomial of the erased
    /// positions is built with FFT products (rate 1/2, 256 of 512 positions).
    #[test]
    fn large_fragment_decodes_from_random_half() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(16);
        let code = RsCode::new(256, 512).unwrap();
        let d: Vec<Scalar> = (0..256).map(|_| rand_scalar(&mut rng)).collect();
        let cw = code.encode(&d).unwrap();
        let mut pos: Vec<usize> = (0..512).collect();
        pos.shuffle(&mut rng);
        pos.truncate(300);
        let shares: Vec<_> = pos.iter().map(|&i| (i, cw[i])).collect();
        assert_eq!(code.decode(&shares).unwrap(), d);
        assert_eq!(code.decode(&shares), lagrange_decode(&code, &shares));
    }

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
