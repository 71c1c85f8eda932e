//! P2P energy market clearing over electrical network models (thesis Ch.6).
//!
//! Layer 1 (this crate so far): MATPOWER case files ([`case`]), the DC model
//! and PTDF for meshed networks ([`dc`]), the linearised DistFlow model for
//! radial feeders ([`distflow`]) and an AC Newton–Raphson power flow
//! ([`acpf`]) for checking what a dispatch does to voltages and losses.
//!
//! Layer 2: the clearing problem of Eqs 6.1–6.4 with a seeded prosumer
//! generator ([`problem`]); both network models as linear rows on the
//! market's bus injections ([`network`]); the Clarabel central reference
//! with nodal prices ([`central`]); the sans-IO primal–dual iteration for
//! PTDF markets, congested ones included ([`primal_dual`]); ALADIN for
//! LinDistFlow feeders ([`aladin`]); one interval end to end ([`clearing`]).
//!
//! Layer 3: the enclave trait with a software backend that offers **no
//! hardware isolation** and D-TASK ([`tee`]); TEAR-DO with Byzantine
//! detection and the recompute countermeasure ([`teardo`]); the on-chain
//! record of requests, admission rules and admitted ids ([`contract`]); the
//! three phases on a development chain ([`framework`]).
//!
//! Baseline: the same primal–dual iteration on Shamir shares among `K`
//! executors ([`sss`]), the seed's §6.7.3 comparison (Fig 6-3).
//!
//! Not yet: a hardware TEE backend.
//!
//! Floats are used for the physics and optimisation internals only. Energy
//! and money that cross into the ledger are integers: see [`units`].

// Dense matrix code reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

pub mod acpf;
pub mod aladin;
pub mod case;
pub mod central;
pub mod clearing;
pub mod contract;
pub mod dc;
pub mod distflow;
pub mod feeder_ac;
pub mod framework;
pub mod linalg;
pub mod mutants;
pub mod network;
pub mod primal_dual;
pub mod problem;
mod relief;
pub mod sss;
pub mod teardo;
pub mod tee;
pub mod units;

pub use acpf::{run_pf, PfOptions, PfResult};
pub use case::{Case, CaseError};
pub use dc::DcModel;
pub use distflow::DistFlow;

/// The shipped IEEE 30-bus case (MATPOWER's `case30`); see `data/README.md`.
pub const CASE30: &str = include_str!("../../../data/grid/case30.m");
/// The shipped 33-bus Baran & Wu feeder (MATPOWER's `case33bw`).
pub const CASE33BW: &str = include_str!("../../../data/grid/case33bw.m");

/// Why a network model could not be built or solved.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("no reference bus")]
    NoReference,
    #[error("branch {0} has zero reactance (DC model undefined)")]
    ZeroReactance(usize),
    #[error("the network is not radial (DistFlow needs a tree)")]
    NotRadial,
    #[error(
        "power flow did not converge in {iterations} iterations (mismatch {mismatch:e} p.u., tolerance {tol:e} p.u. = \
         {tol_mw:e} MW on the case's base)"
    )]
    NoConvergence { iterations: usize, mismatch: f64, tol: f64, tol_mw: f64 },
    #[error(transparent)]
    Linalg(#[from] linalg::LinalgError),
    #[error("{buses} buses exceed the dense network models' limit of {max}")]
    TooLarge { buses: usize, max: usize },
    #[error(
        "the DC model is too large: {lines} lines × {buses} buses = {entries} PTDF entries exceed the limit of {max}"
    )]
    TooLargePtdf { lines: usize, buses: usize, entries: usize, max: usize },
    #[error(
        "the LinDistFlow model is too large: {rows} row pairs × {buses} buses = {entries} entries exceed the limit \
         of {max}"
    )]
    TooLargeDistFlow { rows: usize, buses: usize, entries: usize, max: usize },
    #[error(
        "the LinDistFlow model of bus {bus} is out of its range: the shunts below it (capacitors, line charging) \
         and its tap factor give it a voltage response factor of {factor:e} (at least 0.5 accepted): the feeder is \
         over-compensated beyond what a linear model represents"
    )]
    DistFlowOutOfRange { bus: u32, factor: f64 },
    #[error(
        "the AC power flow of {buses} buses (bandwidth {bandwidth} in reverse Cuthill–McKee order) needs {work} \
         multiply-adds per Newton step, over the limit of {max}"
    )]
    TooMuchAcWork { buses: usize, bandwidth: usize, work: u64, max: u64 },
    #[error("numerical failure: {what} is not finite")]
    Numerical { what: &'static str },
    #[error(
        "power flow cannot be certified: the rounding floor of its mismatch, {floor:.2e} p.u. (admittances or \
         injections too large for double precision, e.g. a near-zero impedance or large terms that cancel), exceeds \
         the limit of {max:e} p.u. (0.001 MW on the case's base, and at most 1e-3 p.u.)"
    )]
    MismatchFloor { floor: f64, max: f64 },
    #[error(
        "no slack for the power flow: the reference bus has no in-service generator and no PV bus has one to take \
         its place (MATPOWER's bustypes refuses such a case)"
    )]
    NoSlackGenerator,
}

/// Most (non-isolated) buses the network models (DC/PTDF, LinDistFlow, AC
/// power flow) accept. The PTDF and LinDistFlow rows are dense (lines ×
/// buses, bounded by [`MAX_PTDF_ENTRIES`] and [`MAX_DISTFLOW_ENTRIES`]);
/// the DC model is factorised sparse ([`DcModel::new`]: one sparse LDLᵀ,
/// one solve per line) and the AC power flow's Newton steps are banded
/// ([`acpf::MAX_AC_PF_WORK`]), so a 5 000-bus feeder or a meshed case of a
/// few thousand buses builds in seconds.
pub const MAX_MODEL_BUSES: usize = 5_000;

/// Most entries (in-service lines × buses) of the dense PTDF the DC model
/// builds: 12.5·10⁶ (100 MB, and twice that in the market's forward and
/// reverse line rows), enough for the 3 000-bus cases MATPOWER ships. The
/// bus limit alone let a 10 MB case with 300 000 branches ask for 1.9 GB.
pub const MAX_PTDF_ENTRIES: usize = 12_500_000;

/// Most entries (row pairs × buses) of the LinDistFlow market rows: one
/// V max / V min pair per non-root bus and one thermal pair per rated
/// parent line, each a dense row over the buses (the market holds both
/// rows of a pair, and the primal-dual reads them all every iteration).
/// The same 12.5·10⁶ as the PTDF: 2 500 buses unrated, about 1 770 with
/// every line rated. The bus limit alone let a rated 5 000-bus feeder ask
/// for 800 MB of rows.
pub const MAX_DISTFLOW_ENTRIES: usize = MAX_PTDF_ENTRIES;
