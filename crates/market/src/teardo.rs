//! TEAR-DO (thesis §6.5, Eqs 6.17–6.22): the primal–dual clearing executed
//! by `B` enclaves, each subproblem by `κ` of them, with signed encrypted
//! outputs, all-to-all exchange, Byzantine detection and the recompute
//! countermeasure.
//!
//! One DO iteration is two exchange rounds ([`PrimalDual`]'s subproblems):
//! round 1 the `M` buyer updates, round 2 the `N` seller updates and the
//! operator's (`M + N + 1` subproblems, 101 for 50×50 as in the seed).
//! In each round enclave `b`:
//!
//! 1. executes the subproblems `Assign(rn, SP, κ)` gives it — the `κ`
//!    enclaves with the smallest `h_b = H(rn ‖ SP ‖ b)` (Eqs 6.17–6.18);
//! 2. encrypts its outputs under the group key (Eq 6.20) and signs with SKS
//!    `H(ct ‖ H(O ‖ D ‖ In) ‖ H(C) ‖ b ‖ round)` (Eq 6.19), where `O` names
//!    the subproblems and the script version, `D` is the digest of the
//!    admitted requests and `In` the digest of the iteration's inputs;
//! 3. broadcasts `{ct, H(O‖D‖In), b, proof}` to all.
//!
//! A receiver recomputes `H(O'‖D'‖In')` for the sender's assignment from the
//! script and its own state, and flags the sender as Byzantine on a
//! mismatch, a proof that does not verify under PVK, a ciphertext that does
//! not decrypt, outputs that are not exactly its assigned subproblems'
//! (one unassigned, one listed twice, one left out), or silence past Δ
//! (Eq 6.21). A message that names another round than the current one is
//! dropped before any check and flags nobody: a host replaying a node's
//! validly signed message of an earlier round cannot be told from that
//! node's host sending it late, so neither is an accusation; a sender with
//! no message for the current round is silent in it (flagged past Δ, its
//! subproblems covered by the other executors or the countermeasure).
//! Valid outputs are decrypted
//! (Eq 6.22) and applied. **Countermeasure:** a subproblem for which no
//! valid output arrived is computed by every honest enclave itself, in this
//! and every later round, so the iteration is exactly the attack-free one
//! and only Δ of waiting is lost.
//!
//! **Fault model** (the seed's, made explicit): `B' = 3f + 1`, i.e. fewer
//! than a third of the enclaves' hosts Byzantine ([`check_fault_model`]
//! refuses `3f ≥ B'` with [`TearDoError::BeyondFaultModel`] for a front
//! end that reports a clearing). Host-level
//! faults (withholding, tampering, bad signatures, stale inputs) are caught
//! for any `κ ≥ 1`: the enclave's signature binds the context, and the
//! countermeasure recomputes what no valid output covers. A *compromised*
//! enclave ([`Fault::WrongOutput`]: validly signed wrong values — outside
//! what a real TEE allows) is caught only by comparison with an honest
//! executor of the same subproblem (bit for bit, as the proofs sign the
//! encoding: a `-0.0` for `+0.0`, [`Fault::SignFlippedZero`], is a
//! mismatch, and an honest `NaN` matches itself), so the guarantee needs every subproblem
//! to have one: `κ > f_c`, the number of compromised enclaves the run
//! declares; a configuration with `κ ≤ f_c` is refused
//! ([`TearDoError::CollusionBound`]) — with `κ = 2` two colluders that
//! `Assign` gives the same subproblem agreed on wrong values undetected and
//! the run never converged. An output is taken as sent only when all `κ`
//! executors — `κ` distinct nodes, not `κ` entries — sent it validly (one
//! of them is then not compromised); with
//! fewer (a silent or invalid co-executor) the honest enclaves recompute
//! it and flag a sender that differs, so a compromised enclave paired with
//! a silent Byzantine host is not accepted as the only voice. A host
//! flagged for anything is removed
//! everywhere: its outputs are accepted for no subproblem from the round it
//! was caught in, and a subproblem all of whose executors are flagged is
//! computed by the honest enclaves without waiting Δ.
//!
//! Simulation model: message passing is in-process and synchronous; every
//! honest enclave receives the same messages and runs the same checks, so
//! the checks run once per message (their cost is counted per honest
//! receiver in [`CryptoCounts`]). Byzantine hosts can do what a host can do
//! to a real TEE: withhold, tamper with ciphertexts or proofs, and feed
//! their enclave stale inputs (which the enclave then signs faithfully, so
//! the context hash exposes them). They cannot make a real TEE sign wrong
//! outputs for the right context; the software backend cannot enforce that,
//! which is why it is labelled as offering no isolation.

use std::collections::{BTreeMap, BTreeSet};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use crate::mutants::{self, Mutation};
use crate::network::MarketNetwork;
use crate::primal_dual::{PdParams, PrimalDual};
use crate::problem::{Market, MarketError};
use crate::tee::{run_dtask, schnorr_verify, sha, Attester, Enclave, SoftwareEnclave, TeeError};

/// The script version the proofs bind (part of `O`).
pub const SCRIPT: &[u8] = b"gridledger/market/script/primal-dual/v1";

/// Eqs 6.17–6.18: the `κ` enclaves (of `b_count`) with the smallest
/// `H(rn ‖ SP ‖ b)`, in increasing hash order.
pub fn assign(rn: &[u8; 32], sp: usize, kappa: usize, b_count: usize) -> Vec<usize> {
    let mut h: Vec<([u8; 32], usize)> =
        (0..b_count).map(|b| (sha(&[rn, &(sp as u64).to_le_bytes(), &(b as u64).to_le_bytes()]), b)).collect();
    h.sort();
    h.into_iter().take(kappa).map(|(_, b)| b).collect()
}

/// How a Byzantine host misbehaves when it attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Sends nothing (detected at `t + Δ`).
    Silent,
    /// Flips a byte of its ciphertext after the proof.
    TamperOutput,
    /// Feeds its enclave the previous round's inputs.
    WrongInputs,
    /// Replaces its proof with random bytes.
    BadSignature,
    /// Feeds its enclave the previous round's number (a validly signed
    /// replay-shaped message): dropped by the receivers, so the host is
    /// silent in the round.
    StaleRound,
    /// Adds an output for a subproblem it was not assigned.
    ExtraOutput,
    /// A compromised enclave: validly signed outputs with wrong values.
    WrongOutput,
    /// Sends its message in another node's name (signed with its own key).
    Impersonate,
    /// A compromised enclave that signs its outputs with the sign of every
    /// zero flipped (`-0.0` for `+0.0`): values equal under f64 `==` but not
    /// what the script computes, so the executors' comparison is bitwise.
    SignFlippedZero,
    /// A compromised enclave that signs its outputs with wrong values (as
    /// [`Fault::WrongOutput`]) and lists each of them twice in its message,
    /// so that one sender would count as two executors of a subproblem.
    DuplicateOutput,
    /// A compromised enclave whose validly signed message leaves out one
    /// of its assigned outputs (the first).
    OmitOutput,
    /// Sends its own message and, beside it, replays every other node's
    /// message of the previous round (validly signed by those nodes, for
    /// that round): nobody, the honest senders least, may be flagged for it.
    ReplayEarlier,
}

/// What a node's own signature on an [`OutputMsg`] covers.
pub fn message_digest(node: usize, round: u64, ciphertext: &[u8], context: &[u8; 32], proof: &[u8; 64]) -> [u8; 32] {
    sha(&[&(node as u64).to_le_bytes(), &round.to_le_bytes(), &sha(&[ciphertext]), context, proof])
}

impl Fault {
    pub const ALL: [Fault; 4] = [Fault::Silent, Fault::TamperOutput, Fault::WrongInputs, Fault::BadSignature];

    /// True for a compromised enclave (validly signed wrong outputs), which
    /// only comparison with an honest co-executor catches.
    pub fn compromised(self) -> bool {
        matches!(self, Fault::WrongOutput | Fault::SignFlippedZero | Fault::DuplicateOutput | Fault::OmitOutput)
    }
}

/// When the Byzantine hosts attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every Byzantine host attacks in every round from the first.
    Always,
    /// The seed's optimal attack (§6.7.1): only subproblems assigned to
    /// Byzantine hosts alone are attacked, one new one per round, which
    /// maximises the number of Δ waits.
    Optimal,
}

/// Why a receiver flagged a sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detection {
    SilentPastDelta,
    ContextMismatch,
    BadSignature,
    Undecryptable,
    /// Outputs for a subproblem not assigned to the sender.
    UnassignedOutput,
    /// Outputs of the wrong shape for their subproblem.
    MalformedOutput,
    /// A message that lists one subproblem's outputs more than once.
    DuplicateOutput,
    /// A message that leaves out outputs of a subproblem assigned to the
    /// sender.
    MissingOutput,
    /// The sender's output differs from another executor's and from the
    /// honest recomputation.
    OutputMismatch,
}

/// One enclave's broadcast of a round.
#[derive(Debug, Clone)]
pub struct OutputMsg {
    pub node: usize,
    pub round: u64,
    pub ciphertext: Vec<u8>,
    /// `H(O ‖ D ‖ In)`.
    pub context: [u8; 32],
    pub proof: [u8; 64],
    /// The sending node's own signature (`sks_b`) over the whole message
    /// ([`message_digest`]): binds `node` to the sender.
    pub node_proof: [u8; 64],
}

/// Cryptographic operations performed (all enclaves together).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CryptoCounts {
    pub encryptions: u64,
    pub signatures: u64,
    /// Verifications and decryptions: each honest receiver checks every
    /// message it gets.
    pub verifications: u64,
    pub decryptions: u64,
    /// Bytes one enclave broadcasts per round (the largest).
    pub max_message_bytes: usize,
}

/// Configuration of a TEAR-DO run.
#[derive(Debug, Clone)]
pub struct TearDoConfig {
    /// Candidates in D-TASK (`B' = 3f' + 1` is the seed's setting).
    pub enclaves: usize,
    pub kappa: usize,
    /// Byzantine hosts and how each misbehaves.
    pub byzantine: BTreeMap<usize, Fault>,
    pub strategy: Strategy,
    /// Seed of [`Deployed::deploy_insecure_seeded`] (tests and reproducible
    /// benchmarks); [`Deployed::deploy`] ignores it and draws every secret
    /// from the operating system.
    pub seed: u64,
}

/// What a TEAR-DO run produced.
#[derive(Debug, Clone, Serialize)]
pub struct TearDoReport {
    pub selected: usize,
    pub iterations: usize,
    pub converged: bool,
    /// Flagged hosts: (node, why, round it was flagged in).
    pub detected: Vec<(usize, Detection, u64)>,
    /// Rounds in which some subproblem had no valid output by Δ.
    pub delayed_rounds: u64,
    /// Executions of a subproblem by honest enclaves, averaged over
    /// subproblems and rounds (the seed's `c`, Fig 6-5a).
    pub mean_honest_executions: f64,
    /// Subproblems the honest enclaves took over (assigned to Byzantine hosts only).
    pub recomputed_subproblems: usize,
    pub crypto: CryptoCounts,
}

/// Why a TEAR-DO run could not start.
#[derive(Debug, thiserror::Error)]
pub enum TearDoError {
    #[error(transparent)]
    Market(#[from] MarketError),
    #[error("D-TASK failed: {0}")]
    Setup(#[from] TeeError),
    #[error("κ = {kappa} must be between 1 and the {b} selected enclaves")]
    BadKappa { kappa: usize, b: usize },
    #[error("Byzantine host {0} is not one of the {1} enclaves")]
    UnknownNode(usize, usize),
    #[error("{f} Byzantine hosts of B' = {b} enclaves are beyond the fault model f < B'/3")]
    BeyondFaultModel { f: usize, b: usize },
    #[error(
        "κ = {kappa} executors per subproblem do not exceed the {compromised} compromised enclaves: \
         the model needs κ > f_c so that every subproblem has an honest executor"
    )]
    CollusionBound { kappa: usize, compromised: usize },
}

/// The fault model's bounds on a configuration (module docs, "Fault
/// model"): fewer than a third of the enclaves Byzantine (`3f < B'`), and
/// more executors per subproblem than compromised enclaves (`κ > f_c`, the
/// hosts whose enclaves sign wrong values: [`Fault::WrongOutput`],
/// [`Fault::SignFlippedZero`]).
///
/// [`Deployed::deploy`] enforces only the second (without it a wrong value
/// can enter the clearing undetected); the first is for front ends that
/// report a clearing (`gridledger market clear --byzantine`): detection
/// itself needs no quorum, so tests and experiments may study more hosts.
pub fn check_fault_model(config: &TearDoConfig) -> Result<(), TearDoError> {
    let (f, b) = (config.byzantine.len(), config.enclaves);
    if 3 * f >= b && f > 0 {
        return Err(TearDoError::BeyondFaultModel { f, b });
    }
    check_collusion_bound(config)
}

/// `κ > f_c`: more executors per subproblem than compromised enclaves
/// ([`Fault::WrongOutput`], [`Fault::SignFlippedZero`]), so every
/// subproblem has an honest executor.
pub fn check_collusion_bound(config: &TearDoConfig) -> Result<(), TearDoError> {
    let compromised = config.byzantine.values().filter(|x| x.compromised()).count();
    if compromised > 0 && config.kappa <= compromised {
        return Err(TearDoError::CollusionBound { kappa: config.kappa, compromised });
    }
    Ok(())
}

fn encode(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn decode(b: &[u8]) -> Option<Vec<f64>> {
    if !b.len().is_multiple_of(8) {
        return None;
    }
    Some(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
}

/// The outputs of one subproblem.
#[derive(Debug, Clone)]
enum Out {
    Buyer(Vec<f64>),
    Seller(Vec<f64>, Vec<f64>),
    Operator(Vec<f64>, Vec<f64>),
}

/// Bit-for-bit equality of two output vectors (`f64::to_bits`): what the
/// proofs sign is the encoding, so `-0.0` differs from `+0.0` and an honest
/// `NaN` equals itself. (Under [`Mutation::OutputsComparedAsFloats`] the
/// old f64 `==`.)
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    if mutants::active(Mutation::OutputsComparedAsFloats) {
        return a == b;
    }
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// Executors' outputs agree when they are bit-for-bit the same.
impl PartialEq for Out {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Out::Buyer(a), Out::Buyer(b)) => same_bits(a, b),
            (Out::Seller(a, c), Out::Seller(b, d)) | (Out::Operator(a, c), Out::Operator(b, d)) => {
                same_bits(a, b) && same_bits(c, d)
            }
            _ => false,
        }
    }
}

fn serialise(outs: &[(usize, Out)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (sp, o) in outs {
        b.extend((*sp as u64).to_le_bytes());
        let parts: Vec<&Vec<f64>> = match o {
            Out::Buyer(x) => vec![x],
            Out::Seller(y, l) | Out::Operator(y, l) => vec![y, l],
        };
        b.extend((parts.len() as u64).to_le_bytes());
        for p in parts {
            b.extend((p.len() as u64).to_le_bytes());
            b.extend(encode(p));
        }
    }
    b
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}

/// Parses decrypted outputs; `None` on anything malformed.
fn parse(bytes: &[u8], mm: usize, nn: usize) -> Option<Vec<(usize, Out)>> {
    let mut c = Cursor { bytes, at: 0 };
    let mut outs = Vec::new();
    while c.at < bytes.len() {
        let sp = c.u64()?;
        let parts = c.u64()?;
        if parts > 2 {
            return None;
        }
        let mut vs = Vec::new();
        for _ in 0..parts {
            let len = c.u64()?;
            vs.push(decode(c.take(len.checked_mul(8)?)?)?);
        }
        let o = if sp < mm && vs.len() == 1 {
            Out::Buyer(vs.pop()?)
        } else if sp < mm + nn && vs.len() == 2 {
            let l = vs.pop()?;
            Out::Seller(vs.pop()?, l)
        } else if sp == mm + nn && vs.len() == 2 {
            let b = vs.pop()?;
            Out::Operator(vs.pop()?, b)
        } else {
            return None;
        };
        outs.push((sp, o));
    }
    Some(outs)
}

/// Enclaves after D-TASK, before an interval's clearing starts.
pub struct Deployed {
    pub enclaves: Vec<SoftwareEnclave>,
    pub selected: Vec<usize>,
    pub keys: crate::tee::GroupKeys,
    pub config: TearDoConfig,
    script_hash: [u8; 32],
    rng: ChaCha20Rng,
}

impl Deployed {
    /// Runs D-TASK over `config.enclaves` software enclaves (the Byzantine
    /// hosts pass the setup honestly and attack during the DO).
    ///
    /// Every secret (the threshold dealing, each enclave's key pairs, the
    /// D-TASK certificate, the output key and `Assign`'s random number `rn`)
    /// is drawn from the operating system's randomness: nobody outside the
    /// enclaves can reproduce the group keys. `config.seed` does not enter
    /// them (see [`Deployed::deploy_insecure_seeded`]).
    pub fn deploy(config: TearDoConfig) -> Result<Deployed, TearDoError> {
        Self::deploy_with(config, ChaCha20Rng::from_os_rng())
    }

    /// INSECURE, for tests and reproducible benchmarks only: like
    /// [`Deployed::deploy`] but every key and `rn` follow from the public
    /// `config.seed`, so anyone who knows the seed derives the same group
    /// keys and decrypts every request. Never for a real market.
    pub fn deploy_insecure_seeded(config: TearDoConfig) -> Result<Deployed, TearDoError> {
        let rng = ChaCha20Rng::seed_from_u64(config.seed);
        Self::deploy_with(config, rng)
    }

    fn deploy_with(config: TearDoConfig, mut rng: ChaCha20Rng) -> Result<Deployed, TearDoError> {
        let b = config.enclaves;
        if b == 0 {
            return Err(TearDoError::BadKappa { kappa: config.kappa, b: 0 });
        }
        if let Some((&n, _)) = config.byzantine.iter().find(|(n, _)| **n >= b) {
            return Err(TearDoError::UnknownNode(n, b));
        }
        check_collusion_bound(&config)?;
        let f = (b.saturating_sub(1)) / 3;
        let (public_set, shares) = gridledger_threshold::deal(b.max(1), (2 * f + 1).min(b.max(1)), &mut rng)
            .map_err(|_| TeeError::Malformed("threshold parameters"))?;
        let mut enclaves: Vec<SoftwareEnclave> = shares
            .into_iter()
            .enumerate()
            .map(|(i, s)| SoftwareEnclave::new(i, SCRIPT, s, public_set.clone(), &mut rng))
            .collect();
        let script_hash = enclaves.first().map(|e| e.measurement()).unwrap_or_default();
        let faults = vec![None; b];
        let dep = run_dtask(&mut enclaves, &faults, b"gridledger/market/dtask/v", script_hash, &mut rng)?;
        if config.kappa == 0 || config.kappa > dep.selected.len() {
            return Err(TearDoError::BadKappa { kappa: config.kappa, b: dep.selected.len() });
        }
        Ok(Deployed { enclaves, selected: dep.selected, keys: dep.keys, config, script_hash, rng })
    }

    /// Starts the clearing of an interval's admitted market.
    pub fn start(self, market: &Market, net: &MarketNetwork, requests_digest: [u8; 32]) -> Result<TearDo, TearDoError> {
        let pd = PrimalDual::new(market, net, PdParams::for_market(market))?;
        let mut rng = self.rng;
        let mut rn = [0u8; 32];
        rng.fill_bytes(&mut rn);
        Ok(TearDo {
            selected: self.selected,
            enclaves: self.enclaves,
            config: self.config,
            pd,
            rn,
            requests_digest,
            script_hash: self.script_hash,
            pvk: self.keys.pvk,
            takeover: BTreeSet::new(),
            detected: BTreeMap::new(),
            attacked: BTreeSet::new(),
            round: 0,
            delayed_rounds: 0,
            honest_execs: 0,
            sp_rounds: 0,
            crypto: CryptoCounts::default(),
            earlier: Vec::new(),
            rng,
        })
    }
}

/// The TEAR-DO execution state.
pub struct TearDo {
    pub enclaves: Vec<SoftwareEnclave>,
    /// Indices of the D-TASK-selected enclaves.
    pub selected: Vec<usize>,
    pub config: TearDoConfig,
    pub pd: PrimalDual,
    rn: [u8; 32],
    requests_digest: [u8; 32],
    script_hash: [u8; 32],
    pvk: secp256k1::XOnlyPublicKey,
    /// Subproblems the honest enclaves compute themselves from now on.
    takeover: BTreeSet<usize>,
    detected: BTreeMap<usize, (Detection, u64)>,
    /// Subproblems already attacked (optimal strategy).
    attacked: BTreeSet<usize>,
    round: u64,
    delayed_rounds: u64,
    honest_execs: u64,
    sp_rounds: u64,
    crypto: CryptoCounts,
    /// The messages the nodes sent in the previous round (kept only when a
    /// host replays them, [`Fault::ReplayEarlier`]).
    earlier: Vec<OutputMsg>,
    rng: ChaCha20Rng,
}

impl TearDo {
    /// D-TASK over `config.enclaves` software enclaves, then a fresh
    /// primal–dual iteration over the admitted `market` (`requests_digest`
    /// is the digest of the admitted requests, part of every proof).
    pub fn new(
        market: &Market,
        net: &MarketNetwork,
        config: TearDoConfig,
        requests_digest: [u8; 32],
    ) -> Result<TearDo, TearDoError> {
        Deployed::deploy(config)?.start(market, net, requests_digest)
    }

    /// INSECURE, for tests and reproducible benchmarks only: keys and `rn`
    /// follow from the public `config.seed` ([`Deployed::deploy_insecure_seeded`]).
    pub fn new_insecure_seeded(
        market: &Market,
        net: &MarketNetwork,
        config: TearDoConfig,
        requests_digest: [u8; 32],
    ) -> Result<TearDo, TearDoError> {
        Deployed::deploy_insecure_seeded(config)?.start(market, net, requests_digest)
    }

    /// The enclaves `Assign` gives subproblem `sp` (as node indices).
    pub fn assigned(&self, sp: usize) -> Vec<usize> {
        assign(&self.rn, sp, self.config.kappa, self.selected.len()).into_iter().map(|i| self.selected[i]).collect()
    }

    fn context(&self, node_sps: &[usize], inputs: &[u8; 32]) -> [u8; 32] {
        let ops: Vec<u8> = node_sps.iter().flat_map(|s| (*s as u64).to_le_bytes()).collect();
        let o = sha(&[SCRIPT, &ops]);
        sha(&[&o, &self.requests_digest, inputs])
    }

    fn proof_digest(&self, ct: &[u8], context: &[u8; 32], node: usize, round: u64) -> [u8; 32] {
        sha(&[ct, context, &self.script_hash, &(node as u64).to_le_bytes(), &round.to_le_bytes()])
    }

    fn compute(&self, market: &Market, sp: usize) -> Out {
        let (mm, nn) = (self.pd.buyers, self.pd.sellers);
        if sp < mm {
            Out::Buyer(self.pd.buyer_task(market, sp))
        } else if sp < mm + nn {
            let (y, l) = self.pd.seller_task(market, sp - mm);
            Out::Seller(y, l)
        } else {
            let (mu, bp) = self.pd.operator_task();
            Out::Operator(mu, bp)
        }
    }

    /// Subproblem `sp`'s current values (what a skipped subproblem leaves).
    fn unchanged(&self, sp: usize) -> Out {
        let (mm, nn) = (self.pd.buyers, self.pd.sellers);
        if sp < mm {
            Out::Buyer(self.pd.buyer_row(sp))
        } else if sp < mm + nn {
            let c = (sp - mm) * mm..(sp - mm + 1) * mm;
            Out::Seller(self.pd.y[c.clone()].to_vec(), self.pd.lambda[c].to_vec())
        } else {
            Out::Operator(self.pd.mu.clone(), self.pd.bus_prices().to_vec())
        }
    }

    /// True when `o` has the shape of subproblem `sp`'s outputs.
    fn shape_ok(&self, sp: usize, o: &Out) -> bool {
        let (mm, nn) = (self.pd.buyers, self.pd.sellers);
        let (rows, buses) = (self.pd.mu.len(), self.pd.bus_prices().len());
        match o {
            Out::Buyer(x) => sp < mm && x.len() == nn,
            Out::Seller(y, l) => (mm..mm + nn).contains(&sp) && y.len() == mm && l.len() == mm,
            Out::Operator(mu, bp) => sp == mm + nn && mu.len() == rows && bp.len() == buses,
        }
    }

    /// One exchange round over the subproblems `sps`; returns every
    /// subproblem's agreed output.
    fn round(&mut self, market: &Market, sps: &[usize], prev_inputs: &[u8; 32]) -> Vec<(usize, Out)> {
        self.round += 1;
        let round = self.round;
        let inputs = self.pd.state_digest();
        let honest: Vec<usize> =
            self.selected.iter().copied().filter(|n| !self.config.byzantine.contains_key(n)).collect();
        // which Byzantine hosts attack this round
        let mut attacking: BTreeSet<usize> = BTreeSet::new();
        match self.config.strategy {
            Strategy::Always => attacking.extend(self.config.byzantine.keys().copied()),
            Strategy::Optimal => {
                // the first not-yet-attacked subproblem held by Byzantine hosts only
                let target = sps.iter().copied().find(|sp| {
                    !self.attacked.contains(sp)
                        && self.assigned(*sp).iter().all(|n| self.config.byzantine.contains_key(n))
                });
                if let Some(sp) = target {
                    self.attacked.insert(sp);
                    attacking.extend(self.assigned(sp));
                }
            }
        }
        // a subproblem whose executors have all been flagged already is
        // computed by the honest enclaves from the start (nobody waits Δ for
        // removed hosts)
        for &sp in sps {
            if self.assigned(sp).iter().all(|n| self.detected.contains_key(n)) {
                self.takeover.insert(sp);
            }
        }
        // deterministic outputs, computed once per subproblem
        let mut cache: BTreeMap<usize, Out> = BTreeMap::new();
        let mut assigned_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &sp in sps {
            for n in self.assigned(sp) {
                assigned_of.entry(n).or_default().push(sp);
            }
        }
        let mut msgs = Vec::new();
        for (&node, node_sps) in &assigned_of {
            let mut outs: Vec<(usize, Out)> = node_sps
                .iter()
                .map(|sp| (*sp, cache.entry(*sp).or_insert_with(|| self.compute(market, *sp)).clone()))
                .collect();
            let byz = attacking.contains(&node).then(|| self.config.byzantine.get(&node).copied()).flatten();
            if byz == Some(Fault::Silent) {
                continue;
            }
            match byz {
                Some(Fault::WrongOutput | Fault::DuplicateOutput) => {
                    for (_, o) in outs.iter_mut() {
                        let v = match o {
                            Out::Buyer(x) => x,
                            Out::Seller(y, _) | Out::Operator(y, _) => y,
                        };
                        if let Some(first) = v.first_mut() {
                            *first += 1.0;
                        }
                    }
                }
                Some(Fault::SignFlippedZero) => {
                    for (_, o) in outs.iter_mut() {
                        let parts: Vec<&mut Vec<f64>> = match o {
                            Out::Buyer(x) => vec![x],
                            Out::Seller(y, l) | Out::Operator(y, l) => vec![y, l],
                        };
                        for v in parts.into_iter().flat_map(|p| p.iter_mut()) {
                            if *v == 0.0 {
                                *v = -*v;
                            }
                        }
                    }
                }
                Some(Fault::ExtraOutput) => {
                    if let Some(&other) = sps.iter().find(|sp| !node_sps.contains(sp)) {
                        let o = cache.entry(other).or_insert_with(|| self.compute(market, other)).clone();
                        outs.push((other, o));
                    }
                }
                Some(Fault::OmitOutput) if !outs.is_empty() => {
                    outs.remove(0);
                }
                _ => {}
            }
            if byz == Some(Fault::DuplicateOutput) {
                outs = outs.into_iter().flat_map(|x| [x.clone(), x]).collect();
            }
            let round = if byz == Some(Fault::StaleRound) { round.saturating_sub(1) } else { round };
            let plain = serialise(&outs);
            let enclave = &self.enclaves[node];
            let counter = round * 1_000_003 + node as u64;
            let Ok(mut ct) = enclave.encrypt_outputs(counter, &plain) else { continue };
            self.crypto.encryptions += 1;
            let in_used = if byz == Some(Fault::WrongInputs) { prev_inputs } else { &inputs };
            let context = self.context(node_sps, in_used);
            let digest = self.proof_digest(&ct, &context, node, round);
            let Ok(mut proof) = enclave.prove(&digest) else { continue };
            self.crypto.signatures += 1;
            match byz {
                Some(Fault::TamperOutput) => {
                    if let Some(b) = ct.get_mut(0) {
                        *b ^= 0x5a;
                    }
                }
                Some(Fault::BadSignature) => self.rng.fill_bytes(&mut proof),
                _ => {}
            }
            self.crypto.max_message_bytes = self.crypto.max_message_bytes.max(ct.len() + 32 + 8 + 64);
            // the host authenticates the message as sent with its enclave's own key
            let claimed = if byz == Some(Fault::Impersonate) { (node + 1) % self.enclaves.len() } else { node };
            let node_proof = enclave.sign_as_node(&message_digest(claimed, round, &ct, &context, &proof));
            msgs.push(OutputMsg { node: claimed, round, ciphertext: ct, context, proof, node_proof });
        }
        // a replaying host re-broadcasts the other nodes' messages of the
        // previous round as they were signed
        if self.config.byzantine.values().any(|f| *f == Fault::ReplayEarlier) {
            let own = msgs.clone();
            for &host in &attacking {
                if self.config.byzantine.get(&host) == Some(&Fault::ReplayEarlier) {
                    msgs.extend(self.earlier.iter().filter(|m| m.node != host).cloned());
                }
            }
            self.earlier = own;
        }
        // every honest enclave checks every message (once here, counted per receiver)
        let receivers = honest.len().max(1) as u64;
        let verifier = honest.first().copied().unwrap_or(0);
        let mut valid: BTreeMap<usize, Out> = BTreeMap::new();
        let mut candidates: BTreeMap<usize, Vec<(usize, Out)>> = BTreeMap::new();
        let mut heard: BTreeSet<usize> = BTreeSet::new();
        let (mm, nn) = (self.pd.buyers, self.pd.sellers);
        for msg in &msgs {
            // a message for another round is dropped without accusing
            // anyone: a replay of a node's earlier message (validly signed
            // by it, for that round) is indistinguishable from its host
            // sending it late, so the honest node would be the one flagged;
            // a sender with nothing for this round is silent in it
            if msg.round != round && !mutants::active(Mutation::OtherRoundFlagged) {
                continue;
            }
            // a message that the named node did not sign is nobody's: it is
            // dropped without accusing the node it names
            let Some(named) = self.enclaves.get(msg.node) else { continue };
            let md = message_digest(msg.node, msg.round, &msg.ciphertext, &msg.context, &msg.proof);
            let md = sha(&[b"gridledger/market/node-message", &md]);
            if schnorr_verify(&named.pks(), &md, &msg.node_proof).is_err() {
                continue;
            }
            heard.insert(msg.node);
            self.crypto.verifications += receivers;
            let expected = self.context(assigned_of.get(&msg.node).map_or(&[][..], |v| v), &inputs);
            let verdict = if msg.context != expected {
                Err(Detection::ContextMismatch)
            } else if schnorr_verify(
                &self.pvk,
                &self.proof_digest(&msg.ciphertext, &expected, msg.node, msg.round),
                &msg.proof,
            )
            .is_err()
            {
                Err(Detection::BadSignature)
            } else {
                self.crypto.decryptions += receivers;
                let counter = msg.round * 1_000_003 + msg.node as u64;
                match self.enclaves[verifier]
                    .decrypt_outputs(counter, &msg.ciphertext)
                    .ok()
                    .and_then(|p| parse(&p, mm, nn))
                {
                    None => Err(Detection::Undecryptable),
                    Some(outs) => {
                        // the message carries exactly the sender's assigned
                        // subproblems, each once
                        let mine = assigned_of.get(&msg.node).map_or(&[][..], |v| v);
                        let listed: BTreeSet<usize> = outs.iter().map(|(sp, _)| *sp).collect();
                        if outs.iter().any(|(sp, _)| !mine.contains(sp)) {
                            Err(Detection::UnassignedOutput)
                        } else if listed.len() != outs.len() && !mutants::active(Mutation::DuplicateOutputsCounted) {
                            Err(Detection::DuplicateOutput)
                        } else if listed.len() != mine.len() {
                            Err(Detection::MissingOutput)
                        } else if !outs.iter().all(|(sp, o)| self.shape_ok(*sp, o)) {
                            Err(Detection::MalformedOutput)
                        } else {
                            Ok(outs)
                        }
                    }
                }
            };
            match verdict {
                Ok(outs) => {
                    for (sp, o) in outs {
                        candidates.entry(sp).or_default().push((msg.node, o));
                    }
                }
                Err(d) => {
                    self.detected.entry(msg.node).or_insert((d, round));
                }
            }
        }
        // the κ executors' outputs are compared: on any disagreement the
        // honest enclaves recompute the subproblem and flag every sender
        // whose output differs from it (all subproblems first, so that a
        // host caught anywhere in this round counts nowhere in it)
        let mut recomputed: BTreeMap<usize, Out> = BTreeMap::new();
        for (sp, outs) in &candidates {
            if outs.iter().all(|(_, o)| *o == outs[0].1) {
                continue;
            }
            let reference = self.compute(market, *sp);
            for (node, o) in outs {
                if *o != reference {
                    self.detected.entry(*node).or_insert((Detection::OutputMismatch, round));
                }
            }
            recomputed.insert(*sp, reference);
        }
        // a flagged host is removed everywhere: its outputs are accepted for
        // no subproblem, also where it agrees with its co-executors. An
        // output is taken as it is only when all κ executors sent it (valid
        // and unflagged): with κ > f_c one of them is not compromised, and a
        // TEE that is not compromised signs only correct values. With fewer
        // (a co-executor silent, invalid or flagged) the honest enclaves
        // recompute it and flag any sender whose output differs — a
        // compromised enclave paired with a silent Byzantine host is caught
        // here rather than accepted as the only output.
        for (sp, outs) in candidates {
            if let Some(reference) = recomputed.remove(&sp) {
                valid.insert(sp, reference);
                continue;
            }
            let mut kept: Vec<(usize, Out)> =
                outs.into_iter().filter(|(n, _)| !self.detected.contains_key(n)).collect();
            if kept.is_empty() {
                continue;
            }
            // κ distinct executors, not κ entries (one sender's repeated
            // output is one voice)
            let voices = if mutants::active(Mutation::DuplicateOutputsCounted) {
                kept.len()
            } else {
                kept.iter().map(|(n, _)| *n).collect::<BTreeSet<usize>>().len()
            };
            if voices >= self.config.kappa {
                valid.insert(sp, kept.swap_remove(0).1);
                continue;
            }
            let reference = self.compute(market, sp);
            self.honest_execs += honest.len() as u64;
            for (node, o) in &kept {
                if *o != reference {
                    self.detected.entry(*node).or_insert((Detection::OutputMismatch, round));
                }
            }
            valid.insert(sp, reference);
        }
        for node in assigned_of.keys() {
            if !heard.contains(node) {
                self.detected.entry(*node).or_insert((Detection::SilentPastDelta, round));
            }
        }
        // countermeasure: honest enclaves compute what is missing, now and later
        let mut waited = false;
        let mut agreed = Vec::new();
        for &sp in sps {
            let honest_assignees = self.assigned(sp).iter().filter(|n| !self.config.byzantine.contains_key(n)).count();
            let out = if self.takeover.contains(&sp) {
                self.honest_execs += honest.len() as u64;
                cache.remove(&sp).unwrap_or_else(|| self.compute(market, sp))
            } else if let Some(o) = valid.remove(&sp) {
                self.honest_execs += honest_assignees as u64;
                o
            } else if mutants::active(Mutation::RecomputeSkipped) {
                waited = true;
                self.unchanged(sp)
            } else {
                waited = true;
                self.takeover.insert(sp);
                self.honest_execs += (honest_assignees + honest.len()) as u64;
                cache.remove(&sp).unwrap_or_else(|| self.compute(market, sp))
            };
            self.sp_rounds += 1;
            agreed.push((sp, out));
        }
        if waited {
            self.delayed_rounds += 1;
        }
        agreed
    }

    /// One DO iteration (two rounds); returns whether it converged.
    pub fn step(&mut self, market: &Market, prev_inputs: &mut [u8; 32]) -> bool {
        let (mm, nn) = (self.pd.buyers, self.pd.sellers);
        let before = self.pd.state_digest();
        let r1: Vec<usize> = (0..mm).collect();
        for (sp, o) in self.round(market, &r1, prev_inputs) {
            if let Out::Buyer(row) = o {
                self.pd.apply_buyer(sp, &row);
            }
        }
        let mid = self.pd.state_digest();
        let r2: Vec<usize> = (mm..mm + nn + 1).collect();
        let mut report = None;
        let mut op = None;
        for (sp, o) in self.round(market, &r2, &before) {
            match o {
                Out::Seller(y, l) => self.pd.apply_seller(sp - mm, &y, &l),
                Out::Operator(mu, bp) => op = Some((mu, bp)),
                Out::Buyer(_) => {}
            }
        }
        if let Some((mu, bp)) = op {
            report = Some(self.pd.apply_operator(market, &mu, &bp));
        }
        *prev_inputs = mid;
        report.is_some_and(|r| r.converged)
    }

    /// Runs to convergence (or the iteration limit) and reports.
    ///
    /// With no honest enclave among the selected nobody computes anything
    /// and no valid output can exist: the run stops at once, not converged
    /// (the simulator never computes a subproblem on the hosts' behalf).
    pub fn run(&mut self, market: &Market) -> TearDoReport {
        let mut prev = [0u8; 32];
        let mut converged = false;
        if self.selected.iter().all(|n| self.config.byzantine.contains_key(n)) {
            return self.report(false);
        }
        while self.pd.iterations < self.pd.params.max_iter {
            if self.step(market, &mut prev) {
                converged = true;
                break;
            }
        }
        self.report(converged)
    }

    pub fn report(&self, converged: bool) -> TearDoReport {
        TearDoReport {
            selected: self.selected.len(),
            iterations: self.pd.iterations,
            converged,
            detected: self.detected.iter().map(|(n, (d, r))| (*n, *d, *r)).collect(),
            delayed_rounds: self.delayed_rounds,
            mean_honest_executions: self.honest_execs as f64 / self.sp_rounds.max(1) as f64,
            recomputed_subproblems: self.takeover.len(),
            crypto: self.crypto,
        }
    }
}

/// Fig 6-5's combinatorial model, without running the DO: for `b` enclaves
/// of which `f` Byzantine (a random set per trial), `subproblems` per round
/// and assignment size `kappa`, returns per trial `(c, d)`: the mean number
/// of honest executions per subproblem under the countermeasure (each
/// subproblem held only by Byzantine hosts is taken over by all `b − f`
/// honest ones), and the number of such subproblems (the Δ waits the
/// optimal attack can force).
pub fn redundancy_trials(
    b: usize,
    f: usize,
    subproblems: usize,
    kappa: usize,
    trials: usize,
    seed: u64,
) -> Vec<(f64, usize)> {
    use rand::seq::SliceRandom;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut nodes: Vec<usize> = (0..b).collect();
    (0..trials)
        .map(|_| {
            nodes.shuffle(&mut rng);
            let byz: BTreeSet<usize> = nodes[..f.min(b)].iter().copied().collect();
            let mut rn = [0u8; 32];
            rng.fill_bytes(&mut rn);
            let mut execs = 0usize;
            let mut d = 0usize;
            for sp in 0..subproblems {
                let honest = assign(&rn, sp, kappa, b).iter().filter(|n| !byz.contains(n)).count();
                if honest == 0 {
                    d += 1;
                    execs += b - f;
                } else {
                    execs += honest;
                }
            }
            (execs as f64 / subproblems.max(1) as f64, d)
        })
        .collect()
}
