//! Planted bugs for the market's mutation-sensitivity check
//! (`cargo test -p gridledger-market --features mutants --test mutants`):
//! each [`Mutation`] disables one defence or one update rule, and the check
//! asserts that the market's own scenarios catch it. Without the `mutants`
//! feature [`active`] is constantly `false` and the compiler removes every
//! planted branch.

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// D-TASK selects every candidate that revealed, without checking its
    /// script hash or its round-1 signature (Eqs 6.14–6.15).
    DTaskUnchecked,
    /// TEAR-DO's countermeasure does not recompute a subproblem that has no
    /// valid output: the subproblem keeps its previous value.
    RecomputeSkipped,
    /// The sellers' price update has the wrong sign
    /// (`λ ← λ − ρ (x − y)`).
    WrongPriceUpdate,
    /// The operator prices no network row (`μ̂ = 0`, `μ` never moves):
    /// line limits are ignored.
    LineLimitsIgnored,
}

#[cfg(feature = "mutants")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutation>> = const { std::cell::Cell::new(None) };
}

/// Plants `m` (or none) for the calling thread: the market runs its
/// iterations on the thread that calls it.
#[cfg(feature = "mutants")]
pub fn plant(m: Option<Mutation>) {
    ACTIVE.with(|a| a.set(m));
}

/// Is `m` planted on this thread?
#[cfg(feature = "mutants")]
pub fn active(m: Mutation) -> bool {
    ACTIVE.with(|a| a.get() == Some(m))
}

/// Is `m` planted? Never, without the `mutants` feature.
#[cfg(not(feature = "mutants"))]
#[inline(always)]
pub fn active(_m: Mutation) -> bool {
    false
}
