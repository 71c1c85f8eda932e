//! Field arithmetic helpers over the BLS12-381 scalar field: packing bytes
//! into field elements, radix-2 FFT on the multiplicative subgroup, and the
//! polynomial operations the code and commitments need.

use crate::error::FlError;
use blstrs::Scalar;
use ff::{Field, PrimeField};

/// Bytes packed per field element: 31 bytes are always below the modulus,
/// so every byte string maps to field elements injectively.
pub const BYTES_PER_ELEMENT: usize = 31;

/// Pack bytes into field elements, 31 little-endian bytes each (the last one
/// zero-padded). The byte length is carried separately by the caller.
pub fn bytes_to_scalars(bytes: &[u8]) -> Vec<Scalar> {
    bytes
        .chunks(BYTES_PER_ELEMENT)
        .map(|c| {
            let mut b = [0u8; 32];
            b[..c.len()].copy_from_slice(c);
            // 31 bytes < 2^248 < r: always canonical.
            Scalar::from_bytes_le(&b).unwrap_or(Scalar::ZERO)
        })
        .collect()
}

/// Inverse of [`bytes_to_scalars`] for a known byte length; refuses
/// elements that do not fit in 31 bytes or a length that does not match.
pub fn scalars_to_bytes(elems: &[Scalar], len: usize) -> Result<Vec<u8>, FlError> {
    let expected = len.div_ceil(BYTES_PER_ELEMENT);
    if elems.len() != expected {
        return Err(FlError::WrongLength { expected, got: elems.len() });
    }
    let mut out = Vec::with_capacity(expected * BYTES_PER_ELEMENT);
    for e in elems {
        let b = e.to_bytes_le();
        if b[31] != 0 {
            return Err(FlError::Malformed("field element does not hold 31 bytes"));
        }
        out.extend_from_slice(&b[..BYTES_PER_ELEMENT]);
    }
    if out[len..].iter().any(|&x| x != 0) {
        return Err(FlError::Malformed("non-zero padding"));
    }
    out.truncate(len);
    Ok(out)
}

/// Canonical 32-byte little-endian encoding of a scalar.
pub fn scalar_from_bytes(b: &[u8]) -> Result<Scalar, FlError> {
    let arr: [u8; 32] = b.try_into().map_err(|_| FlError::WrongLength { expected: 32, got: b.len() })?;
    Option::from(Scalar::from_bytes_le(&arr)).ok_or(FlError::Malformed("non-canonical scalar"))
}

/// A primitive `n`-th root of unity, `n` a power of two up to 2^32.
pub fn root_of_unity(n: usize) -> Result<Scalar, FlError> {
    if !n.is_power_of_two() || n.trailing_zeros() > Scalar::S {
        return Err(FlError::Unsupported("domain size must be a power of two up to 2^32"));
    }
    let mut w = Scalar::ROOT_OF_UNITY;
    for _ in n.trailing_zeros()..Scalar::S {
        w = w.square();
    }
    Ok(w)
}

/// The evaluation domain `ω^0 .. ω^{n-1}`.
pub fn domain(n: usize) -> Result<Vec<Scalar>, FlError> {
    let w = root_of_unity(n)?;
    let mut d = Vec::with_capacity(n);
    let mut x = Scalar::ONE;
    for _ in 0..n {
        d.push(x);
        x *= w;
    }
    Ok(d)
}

/// Puts `a` (length a power of two) in bit-reversed index order, the
/// input order of an in-place radix-2 FFT over scalars or group elements.
pub(crate) fn bit_reverse<T>(a: &mut [T]) {
    let n = a.len();
    let bits = n.trailing_zeros();
    if bits == 0 {
        return;
    }
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            a.swap(i, j);
        }
    }
}

fn fft_with_root(a: &mut [Scalar], w: Scalar) {
    let n = a.len();
    bit_reverse(a);
    let mut len = 2;
    while len <= n {
        // w_len = w^(n/len)
        let mut w_len = w;
        let mut m = n / len;
        while m > 1 {
            w_len = w_len.square();
            m /= 2;
        }
        for start in (0..n).step_by(len) {
            let mut t = Scalar::ONE;
            for k in 0..len / 2 {
                let u = a[start + k];
                let v = a[start + k + len / 2] * t;
                a[start + k] = u + v;
                a[start + k + len / 2] = u - v;
                t *= w_len;
            }
        }
        len *= 2;
    }
}

/// Forward FFT: coefficients (length `n`, a power of two) to evaluations on
/// the domain of size `n`.
pub fn fft(a: &mut [Scalar]) -> Result<(), FlError> {
    let w = root_of_unity(a.len())?;
    fft_with_root(a, w);
    Ok(())
}

/// Inverse FFT: evaluations on the domain to coefficients.
pub fn ifft(a: &mut [Scalar]) -> Result<(), FlError> {
    let n = a.len();
    let w = root_of_unity(n)?;
    let w_inv = Option::from(w.invert()).ok_or(FlError::Unsupported("zero root"))?;
    fft_with_root(a, w_inv);
    let n_inv: Scalar = Option::from(Scalar::from(n as u64).invert()).ok_or(FlError::Unsupported("zero size"))?;
    for x in a.iter_mut() {
        *x *= n_inv;
    }
    Ok(())
}

/// Horner evaluation of a coefficient vector at `x`.
pub fn eval(coeffs: &[Scalar], x: Scalar) -> Scalar {
    coeffs.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
}

/// Divide `p(X) - p(z)` by `(X - z)` (synthetic division); the quotient has
/// one coefficient fewer than `p`.
pub fn divide_by_linear(coeffs: &[Scalar], z: Scalar) -> Vec<Scalar> {
    let n = coeffs.len();
    if n <= 1 {
        return Vec::new();
    }
    let mut q = vec![Scalar::ZERO; n - 1];
    let mut carry = Scalar::ZERO;
    for i in (1..n).rev() {
        carry = coeffs[i] + carry * z;
        q[i - 1] = carry;
    }
    q
}

/// Below this length a product is multiplied schoolbook; above it by FFT.
const MUL_FFT_THRESHOLD: usize = 64;

/// Product of two coefficient vectors (low to high): schoolbook for short
/// factors, otherwise by FFT on the smallest power-of-two domain that holds
/// the product, `O(d log d)`.
pub fn poly_mul(a: &[Scalar], b: &[Scalar]) -> Result<Vec<Scalar>, FlError> {
    if a.is_empty() || b.is_empty() {
        return Ok(Vec::new());
    }
    let len = a.len() + b.len() - 1;
    if a.len().min(b.len()) <= MUL_FFT_THRESHOLD {
        let mut out = vec![Scalar::ZERO; len];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += *x * y;
            }
        }
        return Ok(out);
    }
    let size = len.next_power_of_two();
    let mut fa = a.to_vec();
    fa.resize(size, Scalar::ZERO);
    let mut fb = b.to_vec();
    fb.resize(size, Scalar::ZERO);
    fft(&mut fa)?;
    fft(&mut fb)?;
    for (x, y) in fa.iter_mut().zip(&fb) {
        *x *= y;
    }
    ifft(&mut fa)?;
    fa.truncate(len);
    Ok(fa)
}

/// `∏ (X − r)` over `roots` (coefficients low to high, degree
/// `roots.len()`), by a subproduct tree: `O(m log² m)` for `m` roots.
pub fn vanishing_poly(roots: &[Scalar]) -> Result<Vec<Scalar>, FlError> {
    let mut level: Vec<Vec<Scalar>> = roots.iter().map(|r| vec![-*r, Scalar::ONE]).collect();
    if level.is_empty() {
        return Ok(vec![Scalar::ONE]);
    }
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            match pair {
                [a, b] => next.push(poly_mul(a, b)?),
                [a] => next.push(a.clone()),
                _ => {}
            }
        }
        level = next;
    }
    Ok(level.pop().unwrap_or_else(|| vec![Scalar::ONE]))
}

/// Multiply coefficient `j` by `c^j`: `p(X) ↦ p(c·X)`.
pub(crate) fn scale_coeffs(a: &mut [Scalar], c: Scalar) {
    let mut t = Scalar::ONE;
    for x in a.iter_mut() {
        *x *= t;
        t *= c;
    }
}

/// Erasure recovery on the size-`n` domain in `O(n log² n)`: `evals[i]` is
/// `p(ω^i)` where known (`None` where erased) for a polynomial `p` of
/// degree `< k`; returns `p`'s `k` coefficients. The caller guarantees at
/// least `k` known positions; only `k` of them are needed, and the result
/// is the polynomial through the known ones only if it has degree `< k`
/// (the caller checks the known values against it).
///
/// Vanishing-polynomial method: `Z(X) = ∏ (X − ω^i)` over the erased `i`
/// (subproduct tree); `E·Z` is `p·Z` on the whole domain (both vanish at
/// erased points) and `deg(p·Z) < n`, so an inverse FFT gives `p·Z`'s
/// coefficients; `p = (p·Z)/Z` pointwise on the coset `g·⟨ω⟩` (where `Z`
/// has no root), back by an inverse FFT on the coset.
pub fn recover(evals: &[Option<Scalar>], k: usize) -> Result<Vec<Scalar>, FlError> {
    let n = evals.len();
    let w = root_of_unity(n)?;
    let mut missing = Vec::new();
    let mut x = Scalar::ONE;
    for e in evals {
        if e.is_none() {
            missing.push(x);
        }
        x *= w;
    }
    if missing.is_empty() {
        let mut c: Vec<Scalar> = evals.iter().map(|e| e.unwrap_or(Scalar::ZERO)).collect();
        ifft(&mut c)?;
        c.truncate(k);
        return Ok(c);
    }
    let mut z = vanishing_poly(&missing)?;
    if z.len() > n {
        return Err(FlError::Undecodable { need: k, have: 0 });
    }
    z.resize(n, Scalar::ZERO);
    // Z on the domain, then E·Z = p·Z on the domain, to coefficients.
    let mut z_dom = z.clone();
    fft(&mut z_dom)?;
    let mut ez: Vec<Scalar> = evals.iter().zip(&z_dom).map(|(e, zv)| e.map_or(Scalar::ZERO, |v| v * zv)).collect();
    ifft(&mut ez)?;
    // Both to the coset g·⟨ω⟩: q(g·ω^i) = (p·Z)(g·ω^i) / Z(g·ω^i).
    let g = Scalar::MULTIPLICATIVE_GENERATOR;
    scale_coeffs(&mut ez, g);
    scale_coeffs(&mut z, g);
    fft(&mut ez)?;
    fft(&mut z)?;
    // g generates the whole multiplicative group, so no g·ω^i is a root of Z.
    if z.iter().any(|v| bool::from(v.is_zero())) {
        return Err(FlError::Unsupported("vanishing polynomial has a root on the coset"));
    }
    ff::BatchInvert::batch_invert(z.iter_mut());
    for (q, zi) in ez.iter_mut().zip(&z) {
        *q *= zi;
    }
    ifft(&mut ez)?;
    let g_inv: Scalar = Option::from(g.invert()).ok_or(FlError::Unsupported("zero generator"))?;
    ez.truncate(k);
    scale_coeffs(&mut ez, g_inv);
    Ok(ez)
}

/// Lagrange interpolation through `points` (distinct x) into coefficient
/// form, `O(k^2)`.
pub fn interpolate(points: &[(Scalar, Scalar)]) -> Result<Vec<Scalar>, FlError> {
    let k = points.len();
    // master(X) = ∏ (X - x_j), coefficients low to high, degree k
    let mut master = vec![Scalar::ZERO; k + 1];
    master[0] = Scalar::ONE;
    for (j, (xj, _)) in points.iter().enumerate() {
        for i in (0..=j + 1).rev() {
            let lower = if i > 0 { master[i - 1] } else { Scalar::ZERO };
            master[i] = lower - master[i] * xj;
        }
    }
    let mut out = vec![Scalar::ZERO; k];
    for (xj, yj) in points {
        let q = divide_by_linear(&master, *xj);
        let denom = eval(&q, *xj);
        let inv: Scalar = Option::from(denom.invert()).ok_or(FlError::Malformed("repeated evaluation point"))?;
        let s = *yj * inv;
        for (o, c) in out.iter_mut().zip(q.iter()) {
            *o += *c * s;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_matches_horner_and_inverts() {
        let n = 16;
        let coeffs: Vec<Scalar> = (0..n as u64).map(|i| Scalar::from(i * 7 + 3)).collect();
        let mut e = coeffs.clone();
        fft(&mut e).unwrap();
        let d = domain(n).unwrap();
        for i in 0..n {
            assert_eq!(e[i], eval(&coeffs, d[i]));
        }
        ifft(&mut e).unwrap();
        assert_eq!(e, coeffs);
    }

    /// The FFT product and the subproduct tree agree with schoolbook
    /// products, on both sides of the FFT threshold.
    #[test]
    fn fft_products_and_vanishing_polynomial_match_schoolbook() {
        let a: Vec<Scalar> = (0..150u64).map(|i| Scalar::from(i * i + 1)).collect();
        let b: Vec<Scalar> = (0..97u64).map(|i| Scalar::from(3 * i + 2)).collect();
        let mut naive = vec![Scalar::ZERO; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                naive[i + j] += *x * y;
            }
        }
        assert_eq!(poly_mul(&a, &b).unwrap(), naive);
        let roots: Vec<Scalar> = (0..200u64).map(|i| Scalar::from(i * 5 + 7)).collect();
        let z = vanishing_poly(&roots).unwrap();
        assert_eq!(z.len(), 201);
        assert_eq!(z[200], Scalar::ONE);
        assert!(roots.iter().all(|r| bool::from(eval(&z, *r).is_zero())));
        assert!(!bool::from(eval(&z, Scalar::from(3u64)).is_zero()));
        assert_eq!(vanishing_poly(&[]).unwrap(), vec![Scalar::ONE]);
    }

    #[test]
    fn interpolation_recovers_polynomial() {
        let coeffs: Vec<Scalar> = (0..5u64).map(|i| Scalar::from(i + 11)).collect();
        let pts: Vec<_> =
            (0..5u64).map(|i| (Scalar::from(i * 3 + 1), eval(&coeffs, Scalar::from(i * 3 + 1)))).collect();
        assert_eq!(interpolate(&pts).unwrap(), coeffs);
    }

    #[test]
    fn bytes_roundtrip_and_bad_padding_refused() {
        let b: Vec<u8> = (0..100u8).collect();
        let s = bytes_to_scalars(&b);
        assert_eq!(scalars_to_bytes(&s, 100).unwrap(), b);
        assert!(matches!(scalars_to_bytes(&s, 90), Err(FlError::Malformed(_)) | Err(FlError::WrongLength { .. })));
        assert_eq!(scalars_to_bytes(&s, 200), Err(FlError::WrongLength { expected: 7, got: 4 }));
    }
}
