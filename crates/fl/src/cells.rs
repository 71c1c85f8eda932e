//! Subfragments as cells: one multi-point KZG proof per subfragment
//! (thesis §7.3.1 steps 3–5, Eqs 7.2 and 7.6–7.8 applied to a set of
//! positions at once).
//!
//! The `n` positions of an [`RsCode`] codeword are grouped into `s` cells of
//! `l = n/s` points; cell `j` is the coset `ω^j·⟨μ⟩` with `μ = ω^s` a
//! primitive `l`-th root of unity, i.e. positions `j, j+s, j+2s, …`. A
//! subfragment is one cell: its `l` values and one proof
//! `π_j = [q_j(τ)]₁`, `q_j = (p − I_j) / (X^l − a_j)`, `a_j = ω^{jl}`, where
//! `I_j` (degree `< l`) interpolates `p` on the cell. It verifies iff
//! `e(C − [I_j(τ)]₁, [1]₂) = e(π_j, [τ^l]₂ − a_j·[1]₂)`.
//!
//! [`CellProver`] computes all `s` proofs with FK20 over cells: the
//! quotients share `H_u = Σ_{i ≥ (u+1)l} c_i [τ^{i−(u+1)l}]₁` (`π_j = Σ_u a_j^u H_u`,
//! one G1 FFT of size `s`), and `H` is `l` Toeplitz products whose SRS side
//! is transformed once per setup (fixed-base tables), so a proving call costs
//! `l` scalar FFTs, `2L` multi-scalar multiplications of `l` fixed points
//! (`L = ⌈k/l⌉`), one inverse G1 FFT of size `2L` and one G1 FFT of size `s`.
//!
//! The degree bound (`deg p < k`) is not implied by the cells: a client can
//! commit to a higher-degree polynomial whose cells all verify, and then
//! different sets of `k` positions decode to different fragments. The upload
//! record therefore carries a degree proof `[τ^{N−k} p(τ)]₁` (`N` = number
//! of G1 powers), checked by `e(C, [τ^{N−k}]₂) = e(π_deg, [1]₂)`.

use crate::error::FlError;
use crate::field::{fft, ifft, root_of_unity};
use crate::kzg::{fft_g1, fft_g1_threads, msm_affine, par_map, to_blst, Commitment, FixedBaseTable, Kzg, Proof};
use crate::rs::RsCode;
use blstrs::{G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Scalar};
use ff::Field;
use gridledger_core::codec::{hash_bytes, Tag};
use group::prime::PrimeCurveAffine;
use group::{Curve, Group};
use pairing::{MillerLoopResult, MultiMillerLoop};

/// Domain tag for the Fiat–Shamir weights of batched cell verification.
pub const CELL_BATCH: Tag = Tag("gridledger/fl-cell-batch/v1");

/// An `[n, k]` Reed–Solomon code whose positions are grouped into cells.
#[derive(Clone, Debug)]
pub struct CellCode {
    code: RsCode,
    cells: usize,
    cell_size: usize,
    /// `ω`, the primitive `n`-th root of the code's domain.
    omega: Scalar,
}

/// One subfragment: cell `index`'s values (position `index + m·cells` at
/// slot `m`) and its multi-point proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub index: usize,
    pub values: Vec<Scalar>,
    pub proof: Proof,
}

/// Proof that a committed polynomial has degree `< k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DegreeProof(pub G1Affine);

impl DegreeProof {
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, FlError> {
        Proof::from_bytes(b).map(|p| Self(p.0))
    }
}

impl CellCode {
    /// `k` data elements into `n` positions grouped into `cells` cells
    /// (`cells` a power of two dividing `n`).
    pub fn new(k: usize, n: usize, cells: usize) -> Result<Self, FlError> {
        let code = RsCode::new(k, n)?;
        if cells == 0 || !cells.is_power_of_two() || cells > n {
            return Err(FlError::Unsupported("cell count must be a power of two up to n"));
        }
        Ok(Self { omega: root_of_unity(n)?, cell_size: n / cells, cells, code })
    }

    /// The code for `k` elements spread over `nodes` subfragments of which
    /// any `threshold` decode: `cells = nodes` rounded up to a power of two,
    /// `l` the smallest power of two with `threshold·l ≥ k`.
    pub fn for_nodes(k: usize, nodes: usize, threshold: usize) -> Result<Self, FlError> {
        if nodes == 0 || threshold == 0 || threshold > nodes {
            return Err(FlError::Unsupported("need 1 <= threshold <= nodes"));
        }
        let cells = nodes.checked_next_power_of_two().ok_or(FlError::Unsupported("too many nodes"))?;
        let l = Self::cell_size_for(k, threshold)?;
        Self::new(k, cells.checked_mul(l).ok_or(FlError::Unsupported("code too long"))?, cells)
    }

    /// The cell size [`CellCode::for_nodes`] picks for `k` elements of
    /// which any `threshold` cells decode.
    pub fn cell_size_for(k: usize, threshold: usize) -> Result<usize, FlError> {
        if threshold == 0 {
            return Err(FlError::Unsupported("need 1 <= threshold <= nodes"));
        }
        k.max(1).div_ceil(threshold).checked_next_power_of_two().ok_or(FlError::Unsupported("fragment too long"))
    }

    pub fn k(&self) -> usize {
        self.code.k()
    }

    pub fn n(&self) -> usize {
        self.code.n()
    }

    pub fn cells(&self) -> usize {
        self.cells
    }

    pub fn cell_size(&self) -> usize {
        self.cell_size
    }

    pub fn rs(&self) -> &RsCode {
        &self.code
    }

    fn check_index(&self, j: usize) -> Result<(), FlError> {
        if j >= self.cells {
            return Err(FlError::PositionOutOfRange { index: j, len: self.cells });
        }
        Ok(())
    }

    /// `a_j = ω^{j·l}`: the cell's vanishing polynomial is `X^l − a_j`.
    fn coset_constant(&self, j: usize) -> Scalar {
        self.omega.pow_vartime([(j * self.cell_size) as u64])
    }

    /// Encode `k` elements into the `cells` cells' values.
    pub fn encode(&self, data: &[Scalar]) -> Result<Vec<Vec<Scalar>>, FlError> {
        let cw = self.code.encode(data)?;
        Ok((0..self.cells).map(|j| (0..self.cell_size).map(|m| cw[j + m * self.cells]).collect()).collect())
    }

    /// Decode from whole cells; every value beyond the first `k` is checked
    /// (see [`RsCode::decode`]).
    pub fn decode(&self, cells: &[(usize, &[Scalar])]) -> Result<Vec<Scalar>, FlError> {
        let mut shares = Vec::with_capacity(cells.len() * self.cell_size);
        for (j, values) in cells {
            self.check_index(*j)?;
            if values.len() != self.cell_size {
                return Err(FlError::WrongLength { expected: self.cell_size, got: values.len() });
            }
            shares.extend(values.iter().enumerate().map(|(m, v)| (j + m * self.cells, *v)));
        }
        self.code.decode(&shares)
    }

    /// Coefficients of `I_j`, the polynomial of degree `< l` through cell
    /// `j`'s values: `J = IFFT_l(values)` interpolates on `⟨μ⟩`, and
    /// `I_j(X) = J(X·ω^{−j})`.
    fn interpolant(&self, j: usize, values: &[Scalar]) -> Result<Vec<Scalar>, FlError> {
        self.check_index(j)?;
        if values.len() != self.cell_size {
            return Err(FlError::WrongLength { expected: self.cell_size, got: values.len() });
        }
        let mut c = values.to_vec();
        ifft(&mut c)?;
        let inv: Scalar =
            Option::from(self.omega.pow_vartime([j as u64]).invert()).ok_or(FlError::Unsupported("zero root"))?;
        let mut s = Scalar::ONE;
        for x in c.iter_mut() {
            *x *= s;
            s *= inv;
        }
        Ok(c)
    }
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Divide `p` by `X^l − a`: returns the quotient (the remainder is `I_j`).
fn divide_by_coset_vanishing(coeffs: &[Scalar], l: usize, a: Scalar) -> Vec<Scalar> {
    if coeffs.len() <= l {
        return Vec::new();
    }
    let mut rem = coeffs.to_vec();
    let mut q = vec![Scalar::ZERO; coeffs.len() - l];
    for i in (l..coeffs.len()).rev() {
        q[i - l] = rem[i];
        let carry = rem[i] * a;
        rem[i - l] += carry;
    }
    q
}

/// FK20 over cells for one setup, cell size and largest fragment: the SRS
/// side of the `l` Toeplitz products, transformed once. Building it costs
/// `l` G1 FFTs of size `2L` (seconds for `k = 4096`, `l = 64` — the same
/// precomputation c-kzg does when it loads its setup), and it holds one
/// fixed-base table per column, `l · 64` points each (`2L` tables: 50 MB
/// for `k = 4096`, `l = 64`), which take about 40 % off each proving MSM
/// against Pippenger.
///
/// Proving is dominated by the `2L` column MSMs (about three quarters of
/// its work for `k = 4096`) and the two G1 FFTs (the rest); both are shared
/// among [`CellProver::threads`] scoped threads (default: the machine's
/// parallelism; 1 runs everything on the calling thread, as c-kzg does).
#[derive(Clone, Debug)]
pub struct CellProver {
    cell_size: usize,
    max_k: usize,
    /// `L − 1` with `L = ⌈max_k / l⌉`: the length of `H`.
    d: usize,
    /// Convolution length, `(2d).next_power_of_two()`.
    big: usize,
    /// A fixed-base table per column `f` for its `l`-point MSM, over
    /// `FFT_big(s^{(r)})_f` (`r < l`), `s^{(r)}_m = [τ^{m·l + r}]₁` (`m < d`).
    tables: Vec<FixedBaseTable>,
    threads: usize,
}

impl CellProver {
    /// Precompute for cells of `cell_size` points and fragments of up to
    /// `max_k` elements.
    pub fn new(kzg: &Kzg, cell_size: usize, max_k: usize) -> Result<Self, FlError> {
        if cell_size == 0 || !cell_size.is_power_of_two() {
            return Err(FlError::Unsupported("cell size must be a power of two"));
        }
        if max_k == 0 || max_k > kzg.capacity() {
            return Err(FlError::Unsupported("fragment larger than the setup"));
        }
        let l = cell_size;
        let d = max_k.div_ceil(l) - 1;
        if d == 0 {
            return Ok(Self { cell_size, max_k, d, big: 0, tables: Vec::new(), threads: default_threads() });
        }
        let big = (2 * d).next_power_of_two();
        let w = root_of_unity(big)?;
        let powers = kzg.g1_powers();
        let threads = default_threads();
        let rs: Vec<usize> = (0..l).collect();
        let rows: Vec<Vec<G1Affine>> = par_map(&rs, threads, |&r| {
            let mut u: Vec<G1Projective> = (0..big)
                .map(|m| if m < d { G1Projective::from(powers[m * l + r]) } else { G1Projective::identity() })
                .collect();
            fft_g1(&mut u, w);
            let mut a = vec![G1Affine::identity(); big];
            G1Projective::batch_normalize(&u, &mut a);
            a
        });
        let columns = (0..big).map(|f| to_blst(&(0..l).map(|r| rows[r][f]).collect::<Vec<_>>())).collect::<Vec<_>>();
        let tables = par_map(&columns, threads, |c| FixedBaseTable::new(c));
        Ok(Self { cell_size, max_k, d, big, tables, threads })
    }

    pub fn cell_size(&self) -> usize {
        self.cell_size
    }

    /// Bytes of this prover's fixed-base tables.
    pub fn table_bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes()).sum()
    }

    /// Bytes of the fixed-base tables [`CellProver::new`] builds for cells
    /// of `cell_size` points and fragments of up to `max_k` elements (`2L`
    /// tables of `l · 64` points), without building them: what a caller
    /// budgets before a set-up.
    pub fn table_bytes_for(cell_size: usize, max_k: usize) -> u64 {
        if cell_size == 0 || max_k == 0 {
            return 0;
        }
        let d = max_k.div_ceil(cell_size) - 1;
        if d == 0 {
            return 0;
        }
        let big = (2 * d).checked_next_power_of_two().map_or(u64::MAX, |b| b as u64);
        big.saturating_mul(FixedBaseTable::bytes_for(cell_size))
    }

    /// Threads a proving call shares its work among.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Share proving among `threads` threads (at least 1: the calling thread alone).
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    /// All cell proofs of `coeffs` under `code`, in `O(n log n)` group work.
    pub fn prove_cells(&self, code: &CellCode, coeffs: &[Scalar]) -> Result<Vec<Proof>, FlError> {
        if code.cell_size != self.cell_size {
            return Err(FlError::Unsupported("prover built for another cell size"));
        }
        if coeffs.len() != code.k() {
            return Err(FlError::WrongLength { expected: code.k(), got: coeffs.len() });
        }
        if coeffs.len() > self.max_k {
            return Err(FlError::Unsupported("fragment larger than the prover was built for"));
        }
        let (l, d, big) = (self.cell_size, self.d, self.big);
        let s = code.cells;
        let mut h = vec![G1Projective::identity(); s];
        if d > 0 {
            // v^{(r)}_t = x^{(r)}_{d−t} = c_{(d−t)·l + r} for t < d, transformed;
            // 1/big (the inverse FFT's scale) is folded in here.
            let big_inv: Scalar =
                Option::from(Scalar::from(big as u64).invert()).ok_or(FlError::Unsupported("zero size"))?;
            let coeff = |i: usize| coeffs.get(i).copied().unwrap_or(Scalar::ZERO);
            let mut vhat: Vec<Vec<Scalar>> = Vec::with_capacity(l);
            for r in 0..l {
                let mut v: Vec<Scalar> =
                    (0..big).map(|t| if t < d { coeff((d - t) * l + r) * big_inv } else { Scalar::ZERO }).collect();
                fft(&mut v)?;
                vhat.push(v);
            }
            let columns: Vec<usize> = (0..big).collect();
            let mut acc: Vec<G1Projective> = par_map(&columns, self.threads, |&f| {
                let scalars: Vec<Scalar> = (0..l).map(|r| vhat[r][f]).collect();
                self.tables[f].mult(&scalars)
            });
            let w_inv: Scalar = Option::from(root_of_unity(big)?.invert()).ok_or(FlError::Unsupported("zero root"))?;
            fft_g1_threads(&mut acc, w_inv, self.threads);
            // H_u = (u * v)_{d−1−u}; only u < ⌈k/l⌉ − 1 ≤ s can be non-zero.
            for (u, hu) in h.iter_mut().enumerate().take(d) {
                *hu = acc[d - 1 - u];
            }
        }
        // π_j = Σ_u a_j^u H_u with a_j = (ω^l)^j: one FFT of size s.
        fft_g1_threads(&mut h, root_of_unity(s)?, self.threads);
        let mut out = vec![G1Affine::identity(); s];
        G1Projective::batch_normalize(&h, &mut out);
        Ok(out.into_iter().map(Proof).collect())
    }
}

impl Kzg {
    /// Commit and build every cell of `coeffs` with FK20.
    pub fn cells(&self, prover: &CellProver, code: &CellCode, coeffs: &[Scalar]) -> Result<Vec<Cell>, FlError> {
        let values = code.encode(coeffs)?;
        let proofs = prover.prove_cells(code, coeffs)?;
        Ok(values
            .into_iter()
            .zip(proofs)
            .enumerate()
            .map(|(index, (values, proof))| Cell { index, values, proof })
            .collect())
    }

    /// Proof for one cell by dividing `p` by `X^l − a_j` directly (one MSM
    /// of size `k − l`): the oracle [`CellProver::prove_cells`] is tested against.
    pub fn prove_cell_naive(&self, code: &CellCode, coeffs: &[Scalar], j: usize) -> Result<Proof, FlError> {
        code.check_index(j)?;
        let q = divide_by_coset_vanishing(coeffs, code.cell_size, code.coset_constant(j));
        Ok(Proof(self.commit(&q)?.0))
    }

    /// Check one cell against commitment `c`.
    pub fn verify_cell(&self, code: &CellCode, c: &Commitment, cell: &Cell) -> Result<(), FlError> {
        let fail = FlError::ProofFailed { index: cell.index };
        let interp = code.interpolant(cell.index, &cell.values)?;
        let i_tau = G1Projective::from(self.commit(&interp)?.0);
        let lhs = (G1Projective::from(c.0) - i_tau).to_affine();
        let a = code.coset_constant(cell.index);
        let rhs_g2 = (G2Projective::from(self.g2_power(code.cell_size)?) - G2Projective::generator() * a).to_affine();
        let neg_pi = (-G1Projective::from(cell.proof.0)).to_affine();
        let g2 = G2Prepared::from(G2Affine::generator());
        let terms = [(&lhs, &g2), (&neg_pi, &G2Prepared::from(rhs_g2))];
        if bool::from(blstrs::Bls12::multi_miller_loop(&terms).final_exponentiation().is_identity()) {
            Ok(())
        } else {
            Err(fail)
        }
    }

    /// Check many cells (of one or several commitments, all under `code`)
    /// with two pairings: with weights `r_i` drawn by Fiat–Shamir from all
    /// inputs, `e(Σ r_i(C_i − [I_i(τ)]₁ + a_i·π_i), [1]₂) = e(Σ r_i π_i, [τ^l]₂)`.
    /// On failure each cell is checked alone, and the result lists every
    /// failing cell (in input order); `Ok` means every cell verifies.
    pub fn verify_cells_batch(&self, code: &CellCode, items: &[(Commitment, &Cell)]) -> Result<(), Vec<FlError>> {
        if items.is_empty() {
            return Ok(());
        }
        match self.batch_holds(code, items) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => {
                let faults: Vec<FlError> =
                    items.iter().filter_map(|(c, cell)| self.verify_cell(code, c, cell).err()).collect();
                if faults.is_empty() {
                    Ok(())
                } else {
                    Err(faults)
                }
            }
        }
    }

    fn batch_holds(&self, code: &CellCode, items: &[(Commitment, &Cell)]) -> Result<bool, FlError> {
        let l = code.cell_size;
        // Fiat–Shamir: the weights depend on every commitment, index, value and proof.
        let mut transcript = Vec::with_capacity(items.len() * (104 + 32 * l));
        transcript.extend_from_slice(&(code.n() as u64).to_le_bytes());
        transcript.extend_from_slice(&(code.cells as u64).to_le_bytes());
        for (c, cell) in items {
            transcript.extend_from_slice(&c.to_bytes());
            transcript.extend_from_slice(&(cell.index as u64).to_le_bytes());
            for v in &cell.values {
                transcript.extend_from_slice(&v.to_bytes_le());
            }
            transcript.extend_from_slice(&cell.proof.to_bytes());
        }
        let seed = hash_bytes(CELL_BATCH, &transcript);
        let two64 = Scalar::from(u64::MAX) + Scalar::ONE;
        let mut interp_sum = vec![Scalar::ZERO; l];
        let mut lhs_pts = Vec::with_capacity(2 * items.len());
        let mut lhs_sc = Vec::with_capacity(2 * items.len());
        let mut rhs_pts = Vec::with_capacity(items.len());
        let mut rhs_sc = Vec::with_capacity(items.len());
        for (i, (c, cell)) in items.iter().enumerate() {
            let mut b = seed.0.to_vec();
            b.extend_from_slice(&(i as u64).to_le_bytes());
            let h = hash_bytes(CELL_BATCH, &b).0;
            let lo = u64::from_le_bytes(h[..8].try_into().unwrap_or_default());
            let hi = u64::from_le_bytes(h[8..16].try_into().unwrap_or_default());
            let r = Scalar::from(lo) + Scalar::from(hi) * two64;
            let interp = code.interpolant(cell.index, &cell.values)?;
            for (acc, x) in interp_sum.iter_mut().zip(&interp) {
                *acc += r * x;
            }
            lhs_pts.push(c.0);
            lhs_sc.push(r);
            lhs_pts.push(cell.proof.0);
            lhs_sc.push(r * code.coset_constant(cell.index));
            rhs_pts.push(cell.proof.0);
            rhs_sc.push(r);
        }
        let lhs = msm_affine(&to_blst(&lhs_pts), &lhs_sc) - G1Projective::from(self.commit(&interp_sum)?.0);
        let rhs = msm_affine(&to_blst(&rhs_pts), &rhs_sc);
        let lhs = lhs.to_affine();
        let neg_rhs = (-rhs).to_affine();
        let g2 = G2Prepared::from(G2Affine::generator());
        let tl = G2Prepared::from(self.g2_power(l)?);
        let terms = [(&lhs, &g2), (&neg_rhs, &tl)];
        Ok(bool::from(blstrs::Bls12::multi_miller_loop(&terms).final_exponentiation().is_identity()))
    }

    /// `[τ^{N−k} p(τ)]₁`: proves `deg p < k` (`N` = G1 powers in the setup).
    pub fn prove_degree(&self, coeffs: &[Scalar], k: usize) -> Result<DegreeProof, FlError> {
        let n = self.capacity();
        if k == 0 || k > n {
            return Err(FlError::Unsupported("degree bound outside the setup"));
        }
        if coeffs.len() > k {
            return Err(FlError::WrongLength { expected: k, got: coeffs.len() });
        }
        Ok(DegreeProof(msm_affine(&self.g1_blst()[n - k..], coeffs).to_affine()))
    }

    /// Check `deg p < k` for the polynomial committed in `c`:
    /// `e(C, [τ^{N−k}]₂) = e(π_deg, [1]₂)`.
    pub fn verify_degree(&self, c: &Commitment, k: usize, proof: &DegreeProof) -> Result<(), FlError> {
        let n = self.capacity();
        if k == 0 || k > n {
            return Err(FlError::Unsupported("degree bound outside the setup"));
        }
        let shift = G2Prepared::from(self.g2_power(n - k)?);
        let neg = (-G1Projective::from(proof.0)).to_affine();
        let g2 = G2Prepared::from(G2Affine::generator());
        let terms = [(&c.0, &shift), (&neg, &g2)];
        if bool::from(blstrs::Bls12::multi_miller_loop(&terms).final_exponentiation().is_identity()) {
            Ok(())
        } else {
            Err(FlError::DegreeTooHigh { bound: k })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set-up estimate a budget relies on is the size of the tables
    /// actually built, and the cell size is the one `for_nodes` picks.
    #[test]
    fn table_estimate_matches_the_built_tables() {
        let kzg = Kzg::insecure_from_seed(64, 5);
        for (k, nodes, threshold) in [(1, 4, 2), (5, 4, 2), (16, 4, 2), (30, 7, 3), (13, 10, 4), (60, 4, 1)] {
            let code = CellCode::for_nodes(k, nodes, threshold).unwrap();
            assert_eq!(CellCode::cell_size_for(k, threshold).unwrap(), code.cell_size());
            let prover = CellProver::new(&kzg, code.cell_size(), k).unwrap();
            assert_eq!(CellProver::table_bytes_for(code.cell_size(), k), prover.table_bytes(), "k={k}");
        }
        assert!(CellProver::table_bytes_for(1, 60) > 0);
    }

    fn coeffs(k: usize, salt: u64) -> Vec<Scalar> {
        (0..k as u64).map(|i| Scalar::from(i * 131 + salt) * Scalar::from(salt + 3).square()).collect()
    }

    #[test]
    fn fk20_cells_match_per_cell_division() {
        let kzg = Kzg::insecure_from_seed(64, 5);
        for (k, n, cells) in [(1, 4, 4), (4, 8, 4), (5, 16, 4), (16, 32, 8), (13, 32, 4), (32, 64, 16), (8, 8, 2)] {
            let code = CellCode::new(k, n, cells).unwrap();
            let prover = CellProver::new(&kzg, code.cell_size(), k).unwrap();
            let c = coeffs(k, 9);
            let fast = prover.prove_cells(&code, &c).unwrap();
            let slow: Vec<Proof> = (0..cells).map(|j| kzg.prove_cell_naive(&code, &c, j).unwrap()).collect();
            assert_eq!(fast, slow, "k={k} n={n} cells={cells}");
            // Shared among threads or on the calling thread alone: the same proofs.
            for t in [1, 3] {
                let mut p = prover.clone();
                p.set_threads(t);
                assert_eq!(p.threads(), t);
                assert_eq!(p.prove_cells(&code, &c).unwrap(), slow, "k={k} n={n} cells={cells} threads={t}");
            }
        }
        // A prover built for larger fragments serves smaller ones.
        let prover = CellProver::new(&kzg, 4, 40).unwrap();
        let code = CellCode::new(10, 32, 8).unwrap();
        let c = coeffs(10, 2);
        let slow: Vec<Proof> = (0..8).map(|j| kzg.prove_cell_naive(&code, &c, j).unwrap()).collect();
        assert_eq!(prover.prove_cells(&code, &c).unwrap(), slow);
    }

    #[test]
    fn every_cell_verifies_alone_and_in_a_batch() {
        let kzg = Kzg::insecure_from_seed(32, 6);
        let code = CellCode::new(12, 32, 8).unwrap();
        let prover = CellProver::new(&kzg, 4, 12).unwrap();
        let c = coeffs(12, 1);
        let com = kzg.commit(&c).unwrap();
        let cells = kzg.cells(&prover, &code, &c).unwrap();
        for cell in &cells {
            kzg.verify_cell(&code, &com, cell).unwrap();
        }
        let c2 = coeffs(12, 7);
        let com2 = kzg.commit(&c2).unwrap();
        let cells2 = kzg.cells(&prover, &code, &c2).unwrap();
        let items: Vec<_> = cells.iter().map(|x| (com, x)).chain(cells2.iter().map(|x| (com2, x))).collect();
        kzg.verify_cells_batch(&code, &items).unwrap();
    }

    #[test]
    fn tampered_cells_fail_alone_and_are_named_by_the_batch() {
        let kzg = Kzg::insecure_from_seed(32, 6);
        let code = CellCode::new(12, 32, 8).unwrap();
        let prover = CellProver::new(&kzg, 4, 12).unwrap();
        let c = coeffs(12, 1);
        let com = kzg.commit(&c).unwrap();
        let mut cells = kzg.cells(&prover, &code, &c).unwrap();
        cells[2].values[1] += Scalar::ONE;
        cells[5].proof = cells[6].proof;
        let mut moved = cells[7].clone();
        moved.index = 0;
        assert_eq!(kzg.verify_cell(&code, &com, &cells[2]), Err(FlError::ProofFailed { index: 2 }));
        assert_eq!(kzg.verify_cell(&code, &com, &cells[5]), Err(FlError::ProofFailed { index: 5 }));
        assert_eq!(kzg.verify_cell(&code, &com, &moved), Err(FlError::ProofFailed { index: 0 }));
        let items: Vec<_> = cells.iter().map(|x| (com, x)).collect();
        assert_eq!(
            kzg.verify_cells_batch(&code, &items),
            Err(vec![FlError::ProofFailed { index: 2 }, FlError::ProofFailed { index: 5 }])
        );
        let mut short = cells[1].clone();
        short.values.pop();
        assert_eq!(kzg.verify_cell(&code, &com, &short), Err(FlError::WrongLength { expected: 4, got: 3 }));
        let mut far = cells[1].clone();
        far.index = 8;
        assert_eq!(kzg.verify_cell(&code, &com, &far), Err(FlError::PositionOutOfRange { index: 8, len: 8 }));
    }

    #[test]
    fn any_threshold_cells_decode() {
        // 7 nodes, any 5 decode: 20 elements → cells of 4, 8 cells.
        let code = CellCode::for_nodes(20, 7, 5).unwrap();
        assert_eq!((code.cells(), code.cell_size(), code.n()), (8, 4, 32));
        let c = coeffs(20, 4);
        let cells = code.encode(&c).unwrap();
        let pick: Vec<(usize, &[Scalar])> = [6usize, 1, 3, 4, 0].iter().map(|&j| (j, cells[j].as_slice())).collect();
        assert_eq!(code.decode(&pick).unwrap(), c);
        let too_few: Vec<(usize, &[Scalar])> = [6usize, 1, 3, 4].iter().map(|&j| (j, cells[j].as_slice())).collect();
        assert_eq!(code.decode(&too_few), Err(FlError::Undecodable { need: 20, have: 16 }));
    }

    #[test]
    fn degree_bound_proves_and_refuses_a_higher_degree() {
        let kzg = Kzg::insecure_from_seed(32, 8);
        let c = coeffs(10, 3);
        let com = kzg.commit(&c).unwrap();
        let p = kzg.prove_degree(&c, 10).unwrap();
        kzg.verify_degree(&com, 10, &p).unwrap();
        kzg.verify_degree(&com, 12, &kzg.prove_degree(&c, 12).unwrap()).unwrap();
        // Claiming a lower bound with the proof of another bound fails.
        assert_eq!(kzg.verify_degree(&com, 9, &p), Err(FlError::DegreeTooHigh { bound: 9 }));
        // Degree 10 cannot be proven below 11: the prover refuses, and a
        // forged proof (the shifted commitment with one power missing) fails.
        let high = coeffs(11, 3);
        assert_eq!(kzg.prove_degree(&high, 10), Err(FlError::WrongLength { expected: 10, got: 11 }));
        let forged = DegreeProof(msm_affine(&kzg.g1_blst()[22..], &high).to_affine());
        assert_eq!(
            kzg.verify_degree(&kzg.commit(&high).unwrap(), 10, &forged),
            Err(FlError::DegreeTooHigh { bound: 10 })
        );
        assert!(matches!(kzg.verify_degree(&com, 0, &p), Err(FlError::Unsupported(_))));
        assert!(matches!(kzg.verify_degree(&com, 33, &p), Err(FlError::Unsupported(_))));
    }

    #[test]
    fn bad_cell_parameters_refused() {
        assert!(matches!(CellCode::new(4, 8, 3), Err(FlError::Unsupported(_))));
        assert!(matches!(CellCode::new(4, 8, 16), Err(FlError::Unsupported(_))));
        assert!(matches!(CellCode::for_nodes(4, 3, 4), Err(FlError::Unsupported(_))));
        let kzg = Kzg::insecure_from_seed(8, 1);
        assert!(matches!(CellProver::new(&kzg, 3, 4), Err(FlError::Unsupported(_))));
        assert!(matches!(CellProver::new(&kzg, 4, 9), Err(FlError::Unsupported(_))));
        let prover = CellProver::new(&kzg, 2, 4).unwrap();
        let code = CellCode::new(4, 8, 2).unwrap();
        assert!(matches!(prover.prove_cells(&code, &coeffs(4, 1)), Err(FlError::Unsupported(_))));
        let code = CellCode::new(4, 8, 4).unwrap();
        assert_eq!(prover.prove_cells(&code, &coeffs(3, 1)), Err(FlError::WrongLength { expected: 4, got: 3 }));
    }
}
