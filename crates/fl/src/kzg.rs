//! KZG polynomial commitments with per-position proofs (thesis §7.2,
//! Eqs 7.5–7.8), on BLS12-381 through `blstrs` (blst backend).
//!
//! `C = [p(τ)]₁`; the proof for position `i` of an [`crate::rs::RsCode`]
//! codeword is `π_i = [q_i(τ)]₁` with `q_i(X) = (p(X) − p(ω^i)) / (X − ω^i)`;
//! it verifies iff `e(C − [y]₁, [1]₂) = e(π_i, [τ]₂ − [ω^i]₂)`.
//!
//! [`Kzg::prove_all`] computes all `n` proofs in `O(n log n)` group
//! operations (FK20); [`Kzg::prove_all_naive`] opens each position on its
//! own and serves as its test oracle.

use crate::error::FlError;
use crate::field::{divide_by_linear, eval, fft, root_of_unity};
use crate::rs::RsCode;
use blst::{blst_p1_affine, MultiPoint};
use blstrs::{G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Scalar};
use ff::Field;
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Compressed G1 point: a commitment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commitment(pub G1Affine);

/// Compressed G1 point: an opening proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof(pub G1Affine);

impl Commitment {
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    /// Refuses anything that is not a compressed point of the prime-order subgroup.
    pub fn from_bytes(b: &[u8]) -> Result<Self, FlError> {
        g1_from_bytes(b).map(Self)
    }
}

impl Proof {
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, FlError> {
        g1_from_bytes(b).map(Self)
    }
}

fn g1_from_bytes(b: &[u8]) -> Result<G1Affine, FlError> {
    let arr: [u8; 48] = b.try_into().map_err(|_| FlError::WrongLength { expected: 48, got: b.len() })?;
    Option::from(G1Affine::from_compressed(&arr)).ok_or(FlError::Malformed("not a G1 point"))
}

/// Structured reference string (Eq 7.5): `[τ^i]₁` for `i < capacity` and
/// `[τ^i]₂` for the `i` a verifier needs (`[1]₂`, `[τ]₂`, `[τ^l]₂` for cells
/// of `l` points, `[τ^{N-k}]₂` for degree bounds).
#[derive(Clone, Debug)]
pub struct Kzg {
    g1_powers: Vec<G1Affine>,
    /// The same points in blst's affine form, for multi-scalar
    /// multiplications without a conversion per call.
    g1_blst: Vec<blst_p1_affine>,
    g2_powers: Vec<G2Affine>,
    g2_gen: G2Affine,
    g2_tau: G2Affine,
}

/// `Σ s_i P_i` with blst's Pippenger over fixed affine points.
pub(crate) fn msm_affine(points: &[blst_p1_affine], scalars: &[Scalar]) -> G1Projective {
    let n = points.len().min(scalars.len());
    let mut out = G1Projective::identity();
    if n == 0 {
        return out;
    }
    let mut bytes = Vec::with_capacity(32 * n);
    for s in &scalars[..n] {
        bytes.extend_from_slice(&s.to_bytes_le());
    }
    *out.as_mut() = points[..n].mult(&bytes, 255);
    out
}

/// Window width of [`FixedBaseTable`]: `npoints · 2^(w−1)` affine points
/// per table (64 points: 4,096 points, 393 kB). For the 64-point MSMs of
/// FK20 over cells, measured in CPU time per 128 MSMs (one core): Pippenger
/// 240 ms; tables of width 4/5/6/7/8: 232/195/165/150/136 ms. Width 7
/// takes most of the gain at half the memory of 8 (c-kzg's tables, when it
/// is asked for them, are of the same kind).
const TABLE_WBITS: usize = 7;

/// blst's fixed-base precomputation (`blst_p1s_mult_wbits`) for `Σ s_i P_i`
/// over points that never change, as c-kzg uses for FK20. Runs on the
/// calling thread (blst's Pippenger wrapper dispatches to a thread pool,
/// whose hand-offs cost more than they save for 64 points).
#[derive(Clone, Debug)]
pub(crate) struct FixedBaseTable {
    table: Vec<blst_p1_affine>,
    npoints: usize,
}

impl FixedBaseTable {
    pub(crate) fn new(points: &[blst_p1_affine]) -> Self {
        let npoints = points.len();
        if npoints == 0 {
            return Self { table: Vec::new(), npoints };
        }
        // SAFETY: a pure size computation.
        let bytes = unsafe { blst::blst_p1s_mult_wbits_precompute_sizeof(TABLE_WBITS, npoints) };
        let mut table = vec![blst_p1_affine::default(); bytes.div_ceil(std::mem::size_of::<blst_p1_affine>())];
        // blst reads `npoints` contiguous points after `ptrs[0]` when `ptrs[1]` is null.
        let ptrs: [*const blst_p1_affine; 2] = [points.as_ptr(), std::ptr::null()];
        // SAFETY: `table` holds the bytes blst asks for; `points` holds `npoints` points.
        unsafe { blst::blst_p1s_mult_wbits_precompute(table.as_mut_ptr(), TABLE_WBITS, ptrs.as_ptr(), npoints) };
        Self { table, npoints }
    }

    /// Bytes of this table.
    pub(crate) fn bytes(&self) -> u64 {
        (self.table.len() * std::mem::size_of::<blst_p1_affine>()) as u64
    }

    /// Bytes of the table [`FixedBaseTable::new`] builds over `npoints` points.
    pub(crate) fn bytes_for(npoints: usize) -> u64 {
        if npoints == 0 {
            return 0;
        }
        // SAFETY: a pure size computation.
        let bytes = unsafe { blst::blst_p1s_mult_wbits_precompute_sizeof(TABLE_WBITS, npoints) };
        (bytes.div_ceil(std::mem::size_of::<blst_p1_affine>()) * std::mem::size_of::<blst_p1_affine>()) as u64
    }

    /// `Σ s_i P_i` over the table's points (`scalars` beyond them ignored,
    /// missing ones zero).
    pub(crate) fn mult(&self, scalars: &[Scalar]) -> G1Projective {
        let mut out = G1Projective::identity();
        if self.npoints == 0 {
            return out;
        }
        let mut bytes = vec![0u8; 32 * self.npoints];
        for (chunk, s) in bytes.chunks_exact_mut(32).zip(scalars) {
            chunk.copy_from_slice(&s.to_bytes_le());
        }
        // SAFETY: a pure size computation.
        let scratch_bytes = unsafe { blst::blst_p1s_mult_wbits_scratch_sizeof(self.npoints) };
        let mut scratch = vec![0u64; scratch_bytes.div_ceil(8)];
        let sptrs: [*const u8; 2] = [bytes.as_ptr(), std::ptr::null()];
        // SAFETY: the table was built for `npoints` points and this window;
        // `bytes` holds `npoints` 32-byte scalars; `scratch` is the size blst asks for.
        unsafe {
            blst::blst_p1s_mult_wbits(
                out.as_mut(),
                self.table.as_ptr(),
                TABLE_WBITS,
                self.npoints,
                sptrs.as_ptr(),
                255,
                scratch.as_mut_ptr(),
            )
        };
        out
    }
}

/// blst's affine form of points.
/// Checks that a setup's powers are the powers of one `τ`, neither 0 nor 1:
/// `e([τ^{i+1}]₁, [1]₂) = e([τ^i]₁, [τ]₂)` for every G1 power and
/// `e([τ]₁, [τ^j]₂) = e([1]₁, [τ^{j+1}]₂)` for every G2 power, both at once
/// by random linear combinations (one multi-pairing each). The weights are
/// derived from the whole transcript (Fiat–Shamir: a tagged hash of it seeds ChaCha20):
/// the transcript is fixed before they are known, so a transcript that
/// breaks one equation passes with probability about `n / r`. Without this
/// check a transcript whose G1 "powers" are all the generator commits
/// `[1, 0]` and `[0, 1]` to the same point: commitments bind nothing.
fn check_transcript(g1: &[G1Affine], g2: &[G2Affine]) -> Result<(), FlError> {
    if g1.len() < 2 {
        return Err(FlError::Malformed("the setup needs at least [1]₁ and [τ]₁"));
    }
    let tau1 = g1[1];
    let tau2 = g2[1];
    if bool::from(tau1.is_identity()) || bool::from(tau2.is_identity()) {
        return Err(FlError::Malformed("the setup's τ is 0"));
    }
    if tau1 == g1[0] || tau2 == g2[0] {
        return Err(FlError::Malformed("the setup's τ is 1"));
    }
    if g1.iter().any(|p| bool::from(p.is_identity())) || g2.iter().any(|p| bool::from(p.is_identity())) {
        return Err(FlError::Malformed("a setup power is the identity"));
    }
    let mut bytes = Vec::with_capacity(48 * g1.len() + 96 * g2.len());
    for p in g1 {
        bytes.extend_from_slice(&p.to_compressed());
    }
    for p in g2 {
        bytes.extend_from_slice(&p.to_compressed());
    }
    let seed =
        gridledger_core::codec::hash_bytes(gridledger_core::codec::Tag("gridledger/fl-kzg-transcript/v1"), &bytes);
    let mut rng = ChaCha20Rng::from_seed(seed.0);
    // 128-bit weights: a failing equation passes with probability 2^-128.
    let two64 = Scalar::from(u64::MAX) + Scalar::ONE;
    let mut weight = || Scalar::from(rng.next_u64()) * two64 + Scalar::from(rng.next_u64());
    let gen2 = G2Projective::generator().to_affine();
    // G1: Σ r_i [τ^{i+1}]₁ paired with [1]₂ against Σ r_i [τ^i]₁ with [τ]₂.
    let r: Vec<Scalar> = (0..g1.len() - 1).map(|_| weight()).collect();
    let blst_points = to_blst(g1);
    let hi = msm_affine(&blst_points[1..], &r).to_affine();
    let neg_lo = (-msm_affine(&blst_points[..g1.len() - 1], &r)).to_affine();
    // G2: [τ]₁ with Σ s_j [τ^j]₂ against [1]₁ with Σ s_j [τ^{j+1}]₂.
    let s: Vec<Scalar> = (0..g2.len() - 1).map(|_| weight()).collect();
    let g2p: Vec<G2Projective> = g2.iter().map(|p| G2Projective::from(*p)).collect();
    let lo2 = G2Projective::multi_exp(&g2p[..g2.len() - 1], &s).to_affine();
    let hi2 = G2Projective::multi_exp(&g2p[1..], &s).to_affine();
    let neg_gen1 = (-G1Projective::generator()).to_affine();
    // Both equations in one product. Their weights come from a hash of the
    // whole transcript, fixed before they are known, so a transcript cannot
    // make the failure of one check cancel the other's except with
    // negligible probability.
    let prepared = [
        (hi, G2Prepared::from(gen2)),
        (neg_lo, G2Prepared::from(tau2)),
        (tau1, G2Prepared::from(lo2)),
        (neg_gen1, G2Prepared::from(hi2)),
    ];
    let refs: Vec<(&G1Affine, &G2Prepared)> = prepared.iter().map(|(a, b)| (a, b)).collect();
    if bool::from(blstrs::Bls12::multi_miller_loop(&refs).final_exponentiation().is_identity()) {
        Ok(())
    } else {
        Err(FlError::Malformed("the setup's powers are not powers of one τ"))
    }
}

pub(crate) fn to_blst(points: &[G1Affine]) -> Vec<blst_p1_affine> {
    points.iter().map(|p| *p.as_ref()).collect()
}

impl Kzg {
    /// A setup from a seeded τ, for tests, simulations and benchmarks only:
    /// whoever knows the seed can forge openings. A deployment loads the
    /// powers of a multi-party ceremony instead ([`Kzg::from_powers`]).
    pub fn insecure_from_seed(size: usize, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        // 256 random bits folded into the field (test-only setup; the
        // reduction bias is irrelevant here).
        let two64 = Scalar::from(u64::MAX) + Scalar::ONE;
        let tau = (0..4).fold(Scalar::ZERO, |acc, _| acc * two64 + Scalar::from(rng.next_u64()));
        let g1 = G1Projective::generator();
        let mut pows = Vec::with_capacity(size);
        let mut t = Scalar::ONE;
        for _ in 0..size {
            pows.push(g1 * t);
            t *= tau;
        }
        let mut g1_powers = vec![G1Affine::identity(); size];
        G1Projective::batch_normalize(&pows, &mut g1_powers);
        let g2 = G2Projective::generator();
        let mut g2p = Vec::with_capacity(size.max(2));
        let mut t = Scalar::ONE;
        for _ in 0..size.max(2) {
            g2p.push(g2 * t);
            t *= tau;
        }
        let mut g2_powers = vec![G2Affine::identity(); g2p.len()];
        G2Projective::batch_normalize(&g2p, &mut g2_powers);
        Self::assemble(g1_powers, g2_powers)
    }

    fn assemble(g1_powers: Vec<G1Affine>, g2_powers: Vec<G2Affine>) -> Self {
        Self { g1_blst: to_blst(&g1_powers), g2_gen: g2_powers[0], g2_tau: g2_powers[1], g1_powers, g2_powers }
    }

    /// A setup from given powers (e.g. a ceremony's transcript):
    /// `[τ^i]₁` and `[τ^i]₂`, each starting at the generator. At least
    /// `[1]₂, [τ]₂` are needed; cells of `l` points need `[τ^l]₂`, and degree
    /// bounds `[τ^{N-k}]₂` (`N` = number of G1 powers).
    pub fn from_powers(g1_powers: Vec<G1Affine>, g2_powers: Vec<G2Affine>) -> Result<Self, FlError> {
        if g1_powers.first() != Some(&G1Projective::generator().to_affine()) {
            return Err(FlError::Malformed("first G1 power must be the generator"));
        }
        if g2_powers.len() < 2 || g2_powers[0] != G2Projective::generator().to_affine() {
            return Err(FlError::Malformed("G2 powers must start with the generator and [τ]₂"));
        }
        check_transcript(&g1_powers, &g2_powers)?;
        Ok(Self::assemble(g1_powers, g2_powers))
    }

    /// `[τ^i]₂`, if the setup has it.
    pub(crate) fn g2_power(&self, i: usize) -> Result<G2Affine, FlError> {
        self.g2_powers.get(i).copied().ok_or(FlError::Unsupported("setup lacks the G2 power this check needs"))
    }

    pub(crate) fn g1_powers(&self) -> &[G1Affine] {
        &self.g1_powers
    }

    pub(crate) fn g1_blst(&self) -> &[blst_p1_affine] {
        &self.g1_blst
    }

    /// What identifies this setup: its size and `[τ]₁`, `[τ]₂` (compressed),
    /// which differ between setups of different `τ`.
    pub fn setup_id(&self) -> Vec<u8> {
        let mut b = (self.g1_powers.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(&(self.g2_powers.len() as u64).to_le_bytes());
        if let Some(p) = self.g1_powers.get(1) {
            b.extend_from_slice(&p.to_compressed());
        }
        b.extend_from_slice(&self.g2_tau.to_compressed());
        b
    }

    /// Bytes a setup of `size` powers ([`Kzg::insecure_from_seed`]) holds in
    /// memory: the G1 powers twice (blstrs's and blst's affine form) and the
    /// G2 powers.
    pub fn bytes_for(size: usize) -> u64 {
        let g1 = std::mem::size_of::<G1Affine>() + std::mem::size_of::<blst_p1_affine>();
        (size as u64).saturating_mul(g1 as u64)
            + (size.max(2) as u64).saturating_mul(std::mem::size_of::<G2Affine>() as u64)
    }

    /// Largest number of coefficients this setup commits to.
    pub fn capacity(&self) -> usize {
        self.g1_powers.len()
    }

    fn msm(&self, coeffs: &[Scalar]) -> Result<G1Affine, FlError> {
        if coeffs.len() > self.g1_powers.len() {
            return Err(FlError::Unsupported("polynomial larger than the setup"));
        }
        Ok(msm_affine(&self.g1_blst[..coeffs.len()], coeffs).to_affine())
    }

    /// Commit to a polynomial given by its coefficients (a fragment).
    pub fn commit(&self, coeffs: &[Scalar]) -> Result<Commitment, FlError> {
        self.msm(coeffs).map(Commitment)
    }

    /// Open `p` at an arbitrary point `z`: returns `(p(z), π)`.
    pub fn open_at(&self, coeffs: &[Scalar], z: Scalar) -> Result<(Scalar, Proof), FlError> {
        let q = divide_by_linear(coeffs, z);
        Ok((eval(coeffs, z), Proof(self.msm(&q)?)))
    }

    /// Proof for position `i` of `code`'s codeword of `coeffs`.
    pub fn prove_position(&self, code: &RsCode, coeffs: &[Scalar], i: usize) -> Result<Proof, FlError> {
        Ok(self.open_at(coeffs, code.point(i)?)?.1)
    }

    /// Proofs for all `n` positions of the codeword, one opening each
    /// (`n` MSMs of size `k`): the reference [`Kzg::prove_all`] is checked against.
    pub fn prove_all_naive(&self, code: &RsCode, coeffs: &[Scalar]) -> Result<Vec<Proof>, FlError> {
        if coeffs.len() != code.k() {
            return Err(FlError::WrongLength { expected: code.k(), got: coeffs.len() });
        }
        (0..code.n()).map(|i| self.prove_position(code, coeffs, i)).collect()
    }

    /// Proofs for all `n` positions in `O(n log n)` group operations
    /// (FK20, Feist–Khovratovich): the quotient at `z` is
    /// `q_z(τ) = Σ_j z^j h_j` with `h_j = Σ_{i>j} c_i [τ^{i-j-1}]₁`, so the
    /// `h` vector is one Toeplitz product (computed as a convolution with
    /// G1 FFTs) and the `n` proofs are one more G1 FFT of `h`.
    pub fn prove_all(&self, code: &RsCode, coeffs: &[Scalar]) -> Result<Vec<Proof>, FlError> {
        if coeffs.len() != code.k() {
            return Err(FlError::WrongLength { expected: code.k(), got: coeffs.len() });
        }
        if coeffs.len() > self.g1_powers.len() {
            return Err(FlError::Unsupported("polynomial larger than the setup"));
        }
        let n = code.n();
        let d = coeffs.len() - 1;
        let mut h = vec![G1Projective::identity(); n];
        if d > 0 {
            // h_j = (u * v)_{d-1-j}, u_m = [τ^m], v_t = c_{d-t}, m, t < d.
            let big = (2 * d).next_power_of_two();
            let mut u: Vec<G1Projective> = self.g1_powers[..d].iter().map(G1Projective::from).collect();
            u.resize(big, G1Projective::identity());
            let mut v: Vec<Scalar> = (0..d).map(|t| coeffs[d - t]).collect();
            v.resize(big, Scalar::ZERO);
            let w = root_of_unity(big)?;
            fft_g1(&mut u, w);
            fft(&mut v)?;
            for (ui, vi) in u.iter_mut().zip(&v) {
                *ui *= vi;
            }
            let w_inv: Scalar = Option::from(w.invert()).ok_or(FlError::Unsupported("zero root"))?;
            fft_g1(&mut u, w_inv);
            let big_inv: Scalar =
                Option::from(Scalar::from(big as u64).invert()).ok_or(FlError::Unsupported("zero size"))?;
            for j in 0..d {
                h[j] = u[d - 1 - j] * big_inv;
            }
        }
        fft_g1(&mut h, root_of_unity(n)?);
        let mut out = vec![G1Affine::identity(); n];
        G1Projective::batch_normalize(&h, &mut out);
        Ok(out.into_iter().map(Proof).collect())
    }

    /// Check `p(z) = y` against commitment `c`.
    pub fn verify_at(&self, c: &Commitment, z: Scalar, y: Scalar, pi: &Proof) -> bool {
        let lhs = (G1Projective::from(c.0) - G1Projective::generator() * y).to_affine();
        let rhs_g2 = (G2Projective::from(self.g2_tau) - G2Projective::generator() * z).to_affine();
        // e(C - [y], [1]) · e(-π, [τ - z]) == 1
        let neg_pi = (-G1Projective::from(pi.0)).to_affine();
        let terms = [(&lhs, &G2Prepared::from(self.g2_gen)), (&neg_pi, &G2Prepared::from(rhs_g2))];
        bool::from(blstrs::Bls12::multi_miller_loop(&terms).final_exponentiation().is_identity())
    }

    /// Verify subfragment `value` at position `i` of `code`, with a typed error.
    pub fn verify_position(
        &self,
        code: &RsCode,
        c: &Commitment,
        i: usize,
        value: Scalar,
        pi: &Proof,
    ) -> Result<(), FlError> {
        let z = code.point(i)?;
        if self.verify_at(c, z, value, pi) {
            Ok(())
        } else {
            Err(FlError::ProofFailed { index: i })
        }
    }
}

/// Radix-2 FFT over G1 with root `w` (length a power of two), on the
/// calling thread.
pub(crate) fn fft_g1(a: &mut [G1Projective], w: Scalar) {
    fft_g1_threads(a, w, 1);
}

/// `f` over `items` on up to `threads` threads (scoped, in order); on the
/// calling thread alone when there is too little work to share.
pub(crate) fn par_map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.min(items.len() / MIN_ITEMS_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            items.chunks(chunk).skip(1).map(|c| s.spawn(move || c.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out: Vec<R> = items[..chunk.min(items.len())].iter().map(f).collect();
        for h in handles {
            // A worker only panics if `f` does; pass that panic on.
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

/// Below this many items per thread a thread's start costs more than it saves
/// (one item here is a 64-point MSM or a G1 scalar multiplication, ≥ 50 µs).
const MIN_ITEMS_PER_THREAD: usize = 4;

/// Radix-2 FFT over G1 with root `w`: each stage's twiddle multiplications
/// (the cost: one G1 scalar multiplication each) shared among `threads`.
pub(crate) fn fft_g1_threads(a: &mut [G1Projective], w: Scalar, threads: usize) {
    let n = a.len();
    if n < 2 {
        return;
    }
    crate::field::bit_reverse(a);
    let mut len = 2;
    while len <= n {
        let half = len / 2;
        let mut w_len = w;
        let mut m = n / len;
        while m > 1 {
            w_len = w_len.square();
            m /= 2;
        }
        let twiddles: Vec<Scalar> = std::iter::successors(Some(Scalar::ONE), |t| Some(*t * w_len)).take(half).collect();
        // The first twiddle of each block is 1: no multiplication.
        let jobs: Vec<(usize, usize)> =
            (0..n).step_by(len).flat_map(|start| (1..half).map(move |k| (start + k + half, k))).collect();
        let products = {
            let a = &*a;
            par_map(&jobs, threads, |&(i, k)| a[i] * twiddles[k])
        };
        let mut products = products.into_iter();
        for start in (0..n).step_by(len) {
            for k in 0..half {
                let u = a[start + k];
                let v = if k == 0 { a[start + half] } else { products.next().unwrap_or_else(G1Projective::identity) };
                a[start + k] = u + v;
                a[start + k + half] = u - v;
            }
        }
        len *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ceremony's transcript (here the seeded setup's powers) loads; the
    /// same transcript with one G1 power, one G2 power or two powers
    /// swapped, or τ = 1 throughout, is refused.
    #[test]
    fn from_powers_accepts_one_tau_and_refuses_a_tampered_transcript() {
        let kzg = Kzg::insecure_from_seed(16, 9);
        let (g1, g2) = (kzg.g1_powers.clone(), kzg.g2_powers.clone());
        let loaded = Kzg::from_powers(g1.clone(), g2.clone()).expect("a consistent transcript loads");
        let c = [Scalar::from(3u64), Scalar::from(4u64)];
        assert_eq!(loaded.commit(&c).unwrap(), kzg.commit(&c).unwrap());
        let refused =
            |g1: Vec<G1Affine>, g2: Vec<G2Affine>| matches!(Kzg::from_powers(g1, g2), Err(FlError::Malformed(_)));
        let mut bad = g1.clone();
        bad[7] = (G1Projective::from(bad[7]) + G1Projective::generator()).to_affine();
        assert!(refused(bad, g2.clone()), "one G1 power changed");
        let mut bad = g2.clone();
        let last = bad.len() - 1;
        bad[last] = (G2Projective::from(bad[last]) + G2Projective::generator()).to_affine();
        assert!(refused(g1.clone(), bad), "one G2 power changed");
        let mut bad = g1.clone();
        bad.swap(3, 4);
        assert!(refused(bad, g2.clone()), "two G1 powers swapped");
        let ones1 = vec![G1Projective::generator().to_affine(); 4];
        let ones2 = vec![G2Projective::generator().to_affine(); 2];
        assert!(refused(ones1, ones2), "τ = 1");
        assert!(refused(g1[..1].to_vec(), g2), "no [τ]₁");
    }

    /// The fixed-base tables compute the same sums as Pippenger, for one
    /// point, odd counts, a full FK20 column and missing (zero) scalars.
    #[test]
    fn fixed_base_table_matches_pippenger() {
        let kzg = Kzg::insecure_from_seed(64, 5);
        for n in [1usize, 3, 17, 64] {
            let points = &kzg.g1_blst[..n];
            let scalars: Vec<Scalar> = (0..n as u64).map(|i| Scalar::from(i * 7919 + 13).square().square()).collect();
            let table = FixedBaseTable::new(points);
            assert_eq!(table.mult(&scalars), msm_affine(points, &scalars), "{n} points");
            let fewer = &scalars[..n / 2];
            let mut padded = fewer.to_vec();
            padded.resize(n, Scalar::ZERO);
            assert_eq!(table.mult(fewer), msm_affine(points, &padded), "{n} points, {} scalars", n / 2);
        }
        assert_eq!(FixedBaseTable::new(&[]).mult(&[Scalar::ONE]), G1Projective::identity());
    }

    /// The threaded G1 FFT equals the single-threaded one (and `par_map`
    /// keeps order), for sizes where the stages do and do not split.
    #[test]
    fn threaded_g1_fft_matches_one_thread() {
        let kzg = Kzg::insecure_from_seed(64, 3);
        for n in [2usize, 16, 64] {
            let pts: Vec<G1Projective> = kzg.g1_powers()[..n].iter().map(G1Projective::from).collect();
            let w = crate::field::root_of_unity(n).unwrap();
            let mut one = pts.clone();
            fft_g1(&mut one, w);
            for t in [2, 3, 8] {
                let mut many = pts.clone();
                fft_g1_threads(&mut many, w, t);
                assert_eq!(many, one, "n={n} threads={t}");
            }
        }
        let xs: Vec<u64> = (0..103).collect();
        assert_eq!(par_map(&xs, 4, |x| x * 3), xs.iter().map(|x| x * 3).collect::<Vec<_>>());
        assert!(par_map(&[] as &[u64], 4, |x| *x).is_empty());
    }

    fn setup() -> (Kzg, RsCode, Vec<Scalar>) {
        let code = RsCode::new(4, 8).unwrap();
        let coeffs: Vec<Scalar> = (0..4u64).map(|i| Scalar::from(i * 13 + 2)).collect();
        (Kzg::insecure_from_seed(8, 7), code, coeffs)
    }

    #[test]
    fn every_position_verifies() {
        let (kzg, code, coeffs) = setup();
        let c = kzg.commit(&coeffs).unwrap();
        let cw = code.encode(&coeffs).unwrap();
        let proofs = kzg.prove_all(&code, &coeffs).unwrap();
        for i in 0..code.n() {
            kzg.verify_position(&code, &c, i, cw[i], &proofs[i]).unwrap();
        }
    }

    #[test]
    fn fk20_matches_per_position_openings() {
        for (k, n) in [(1, 4), (2, 4), (4, 8), (5, 8), (7, 16), (8, 8)] {
            let kzg = Kzg::insecure_from_seed(16, 11);
            let code = RsCode::new(k, n).unwrap();
            let coeffs: Vec<Scalar> = (0..k as u64).map(|i| Scalar::from(i * 101 + 9)).collect();
            assert_eq!(
                kzg.prove_all(&code, &coeffs).unwrap(),
                kzg.prove_all_naive(&code, &coeffs).unwrap(),
                "k={k} n={n}"
            );
        }
    }

    #[test]
    fn wrong_value_position_or_commitment_fails() {
        let (kzg, code, coeffs) = setup();
        let c = kzg.commit(&coeffs).unwrap();
        let cw = code.encode(&coeffs).unwrap();
        let proofs = kzg.prove_all(&code, &coeffs).unwrap();
        assert_eq!(
            kzg.verify_position(&code, &c, 3, cw[3] + Scalar::ONE, &proofs[3]),
            Err(FlError::ProofFailed { index: 3 })
        );
        assert_eq!(kzg.verify_position(&code, &c, 4, cw[3], &proofs[3]), Err(FlError::ProofFailed { index: 4 }));
        let mut other = coeffs.clone();
        other[0] += Scalar::ONE;
        let c2 = kzg.commit(&other).unwrap();
        assert_eq!(kzg.verify_position(&code, &c2, 3, cw[3], &proofs[3]), Err(FlError::ProofFailed { index: 3 }));
        assert_eq!(
            kzg.verify_position(&code, &c, 9, cw[3], &proofs[3]),
            Err(FlError::PositionOutOfRange { index: 9, len: 8 })
        );
    }

    #[test]
    fn oversize_and_malformed_inputs_refused() {
        let (kzg, code, _) = setup();
        let big = vec![Scalar::ONE; 9];
        assert!(matches!(kzg.commit(&big), Err(FlError::Unsupported(_))));
        assert_eq!(kzg.prove_all(&code, &big[..3]), Err(FlError::WrongLength { expected: 4, got: 3 }));
        assert_eq!(Commitment::from_bytes(&[0u8; 47]), Err(FlError::WrongLength { expected: 48, got: 47 }));
        assert!(matches!(Proof::from_bytes(&[0xffu8; 48]), Err(FlError::Malformed(_))));
        let c = kzg.commit(&[Scalar::ONE]).unwrap();
        assert_eq!(Commitment::from_bytes(&c.to_bytes()).unwrap(), c);
    }
}
