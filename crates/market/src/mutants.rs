//! Planted bugs for the market's mutation-sensitivity check
//! (`cargo test -p gridledger-market --features mutants --test mutants`):
//! each [`Mutation`] disables one defence or one update rule, and the check
//! asserts that the market's own scenarios catch it. Without the `mutants`
//! feature [`active`] is constantly `false` and the compiler removes every
//! planted branch.

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// The MATPOWER parser's lexer pairs quotes as it did before attack
    /// round 25: every `'` opens or closes a string (no transpose), and `"`
    /// opens none, so a `%` in a double-quoted string (or after `5'`)
    /// starts a comment.
    QuotesPairedNaively,
    /// The MATPOWER parser skips a cell array to the next line that holds
    /// a `}`, whatever the lines before it hold (attack round 25 [1]).
    CellSkippedToAnyBrace,
    /// The MATPOWER parser reads a number with Rust's grammar
    /// (`f64::from_str`), which also takes `infinity`, `INF`, `iNf`.
    RustNumberGrammar,
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
    /// LinDistFlow leaves the case's shunts (`Gs`, `Bs`, line charging) out
    /// of the feeder model: a feeder with capacitors is cleared against
    /// voltages far below the AC network's.
    DistFlowShuntsDropped,
    /// Minima relief skips its first stage (capping each bus group that is
    /// infeasible on its own): a huge minimum behind its own congested line
    /// then sets the common level of every group loading a row with it.
    MinimaNotRelievedAlone,
    /// Minima relief works on each request alone instead of each bus
    /// group: many small sybil minima at one bus then pull the common level
    /// of the over-demanding side down for every other bus.
    MinimaRelievedPerRequest,
    /// Minima relief's network stage levels every bus group with a
    /// minimum, not only those loading the violated rows: a congested
    /// pair then cuts minima behind no congested line.
    MinimaLevelledEverywhere,
    /// The settlement charges each buyer the seller's price of every trade
    /// (the rule before nodal prices): a buyer matched across a congested
    /// line pays the dearer bus's price, above its own bid.
    SellerPricedTrades,
    /// The contract's once-only ciphertext record is chain-wide (keyed by
    /// the ciphertext alone): a copy filed first by another account locks
    /// the owner's own request out.
    CiphertextDedupChainWide,
    /// Primal-dual's congested mode (capped buyer steps) is never left
    /// once entered: a line priced in the first iterations only keeps a
    /// flat pair capped for the whole run of an interval where no row
    /// binds.
    CongestedModeNeverLeft,
    /// Primal-dual's congested mode caps the buyer's step of every trade,
    /// not only of those that load a network row: a flat pair's own trade
    /// at one bus behind a binding line crawls with the capped step.
    CapOnUnloadedTrades,
    /// Primal-dual shrinks the penalty of a trade between a party beyond
    /// the reference scale and one within it by the large party's scale:
    /// the sellers' prices of a flat buyer's trades, and the line
    /// multiplier they hold up, move at a fraction of the common rate.
    SmallPartyPenaltyShrunk,
    /// Primal-dual's multiplier of a row that stays priced and overloaded
    /// never takes the longer step: a multiplier that must climb far
    /// behind sellers at their `e_max` climbs at the base rate.
    OverloadNotBoosted,
    /// Primal-dual's longer multiplier step of a row that stays priced and
    /// overloaded is the fixed `OVERLOAD_BOOST · γ_r`, never doubled along
    /// the streak (`OVERLOAD_DOUBLING`): a V-min row of the 33-bus feeder,
    /// whose multiplier must climb far, climbs linearly.
    OverloadNotDoubled,
    /// Primal-dual weights every network row with the common `c` however
    /// small its trade scale (no [`crate::primal_dual::ROW_SCALE_REF`]
    /// normalisation): the 33-bus feeder's V-min rows get a weight and a
    /// multiplier step far too small for their scale.
    RowsNotNormalized,
    /// Primal-dual takes a row's scale from its largest coefficient
    /// `max_k |G_rk|` instead of the largest coefficient a trade sees,
    /// `max_mn |G_r,bus(n) − G_r,bus(m)|` ([`crate::primal_dual::trade_scale`]):
    /// a pair whose buses differ little on a row with a large coefficient
    /// elsewhere gets no damping.
    RowScaleFromCoefficients,
    /// Primal-dual's trades all see the overload damping with the row's
    /// own weight, none with its own ([`crate::primal_dual::TRADE_DAMPING_THETA`]):
    /// a near-linear pair whose buses differ little on a row other
    /// trades see at PTDF scale gets no damping and cycles.
    TradeDampingOff,
    /// Primal-dual gives every trade its own damping weight toward `T θ`
    /// without sharing a row's budget among the trades that see it
    /// ([`crate::primal_dual::TRADE_DAMPING_THETA`]): the weights of a
    /// crowd of near-linear pairs on one overloaded row add up and the
    /// run cycles to the cap.
    TradeDampingUnshared,
    /// Primal-dual's per-trade damping ignores the trade's own curvature
    /// ([`crate::primal_dual::TRADE_DAMPING_ROW`]): ordinary trades, whose
    /// own quadratic terms already damp them, draw on a row's budget like
    /// a near-linear pair, and a crowd of them leaves the pair beside them
    /// too little of it.
    TradeDampingOwnCurvatureIgnored,
    /// Primal-dual's per-trade damping counts every row, also those no
    /// iterate can overload ([`crate::primal_dual::TRADE_DAMPING_ROW`]): a
    /// near-linear pair that sees slack rows at PTDF scale gets no damping
    /// on the one row that binds.
    TradeDampingSlackRowsCounted,
    /// The central reference keeps the coefficients of the rows primal-dual
    /// treats as no constraint ([`crate::primal_dual::negligible_row`]):
    /// the threshold is no longer shared, and on a feeder whose V-max rows
    /// are just below it Clarabel enforces them while primal-dual does not.
    NegligibleRowsKeptByReference,
    /// Primal-dual's multiplier of a row that stays priced and under its
    /// limit never takes the growing step down: a row priced high by the
    /// first steps but with a little slack at the optimum unwinds at
    /// `γ_r` times that slack.
    SlackNotUnwound,
    /// Primal-dual's per-party stopping test ([`crate::primal_dual::scaled_gap`])
    /// covers only the parties beyond the reference scale: a small congested
    /// market stops with a seeded party off its optimal total by more than
    /// `clear`'s tolerance, and `clear` refuses the run.
    ScaledGapLargePartiesOnly,
    /// TEAR-DO compares the executors' outputs with f64 `==` instead of
    /// bit for bit: a compromised enclave that sends `-0.0` where the
    /// script computes `+0.0` ([`crate::teardo::Fault::SignFlippedZero`])
    /// passes undetected.
    OutputsComparedAsFloats,
    /// TEAR-DO takes a message that lists a subproblem's output more than
    /// once and counts entries toward `κ`, not distinct executors: a
    /// compromised enclave ([`crate::teardo::Fault::DuplicateOutput`]) whose
    /// co-executor is silent is accepted alone at `κ = 2`.
    DuplicateOutputsCounted,
    /// TEAR-DO checks a message for another round like one for the
    /// current round instead of dropping it: a host that replays an honest
    /// node's validly signed message of the previous round
    /// ([`crate::teardo::Fault::ReplayEarlier`]) gets that node flagged.
    OtherRoundFlagged,
    /// Primal-dual raises the weights of rows with tiny limits
    /// ([`crate::primal_dual::TINY_ROW_REF`]) but leaves the buyer steps of
    /// the trades that load them as they were: the line term's curvature
    /// exceeds its bound by the rows' factors and the iteration does not
    /// settle.
    TinyRowStepsIgnored,
    /// The AC power flow holds the mismatch to `tol` p.u. alone
    /// ([`crate::acpf::PfOptions::tol_pu`]): on a huge base that is many MW,
    /// and a load is "converged" at the flat start with no generation.
    PfTolerancePuOnly,
    /// The AC power flow caps the rounding floor at 0.001 MW alone
    /// ([`crate::acpf::max_mismatch_floor_pu`]): on a tiny base that is
    /// thousands of p.u., and a cancelling branch pair is solved with the
    /// voltages its rounding decided.
    PfFloorCapMwOnly,
    /// The feeder's successive linearisation shifts no row by its AC
    /// offsets ([`crate::feeder_ac::FeederAc::allowance`]): a rating row
    /// binding in the lossless model stays exceeded by the feeder's losses
    /// and the clearing is refused after its rounds.
    FeederLossAllowanceDropped,
    /// A feeder's clearing runs no AC flow at all (neither the loss
    /// allowance nor the check of the reported dispatch,
    /// [`crate::clearing::with_loss_allowance`]): the lossless rows are
    /// cleared and reported, the substation line over its rating.
    FeederAcCheckSkipped,
}

// `plant` and `active`; the code under test runs on the planting thread.
gridledger_core::mutation_switch!(Mutation);
