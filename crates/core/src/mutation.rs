//! The switch behind every crate's mutation-sensitivity check: a crate with
//! a `mutants` feature and a `Mutation` enum of planted bugs invokes
//! [`mutation_switch!`](crate::mutation_switch) once and gets `plant` (with
//! the feature) and `active` (constantly `false` without it, so the compiler
//! removes every planted branch).

/// Defines, in the invoking module, the per-thread switch for the enum
/// `$m`: `plant(Option<$m>)` (only with the invoking crate's `mutants`
/// feature) and `active($m) -> bool`. One planted bug per thread, so a
/// mutation check runs beside ordinary tests unaffected; the code under
/// test must run on the thread that plants.
#[macro_export]
macro_rules! mutation_switch {
    ($m:ty) => {
        #[cfg(feature = "mutants")]
        thread_local! {
            static ACTIVE: ::std::cell::Cell<Option<$m>> = const { ::std::cell::Cell::new(None) };
        }

        /// Plants `m` (or none) for the calling thread.
        #[cfg(feature = "mutants")]
        pub fn plant(m: Option<$m>) {
            ACTIVE.with(|a| a.set(m));
        }

        /// Is `m` planted on this thread?
        #[cfg(feature = "mutants")]
        pub fn active(m: $m) -> bool {
            ACTIVE.with(|a| a.get() == Some(m))
        }

        /// Is `m` planted? Never, without the `mutants` feature.
        #[cfg(not(feature = "mutants"))]
        #[inline(always)]
        pub fn active(_m: $m) -> bool {
            false
        }
    };
}

/// A named scenario of a mutation check: `true` while the defence or update
/// rule it exercises holds.
pub type Scenario = (&'static str, fn() -> bool);

/// The names of the `scenarios` that fail while `m` is planted through the
/// crate's `plant` (from [`mutation_switch!`](crate::mutation_switch)); the
/// switch is cleared again before returning. Scenarios run in order on the
/// calling thread.
pub fn failing<M>(plant: fn(Option<M>), scenarios: &[Scenario], m: Option<M>) -> Vec<&'static str> {
    plant(m);
    let out = scenarios.iter().filter(|(_, f)| !f()).map(|(n, _)| *n).collect();
    plant(None);
    out
}

/// The tests of a mutation check (in a crate's `tests/mutants.rs`): the
/// control (every scenario holds with no bug planted) and, per planted bug,
/// a test that it makes the named scenario fail.
///
/// ```ignore
/// gridledger_core::mutation_check! {
///     plant: plant, scenarios: SCENARIOS,
///     skipped_check_is_caught: Mutation::CheckSkipped => "the check refuses",
/// }
/// ```
#[macro_export]
macro_rules! mutation_check {
    (plant: $plant:path, scenarios: $scenarios:expr, $($test:ident: $m:expr => $scenario:literal),+ $(,)?) => {
        #[test]
        fn control_every_scenario_holds_without_a_planted_bug() {
            let failed = $crate::mutation::failing($plant, &$scenarios, None);
            assert!(failed.is_empty(), "{failed:?}");
        }

        $(
            #[test]
            fn $test() {
                let failed = $crate::mutation::failing($plant, &$scenarios, Some($m));
                assert!(failed.contains(&$scenario), "{failed:?}");
            }
        )+
    };
}
