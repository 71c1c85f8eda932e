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
