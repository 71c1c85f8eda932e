//! One module per experiment; each is listed once in [`crate::registry`].

pub mod cns_channel_costs;
pub mod fl_comm;
pub mod fl_convergence;
pub mod fl_steps;
pub mod ior_day;
pub mod ior_fig_3_5;
pub mod ior_fig_3_6;
pub mod ior_fig_3_7;
pub mod ior_fig_3_8;
pub mod ior_fig_3_9;
pub mod ior_tables;
pub mod market_fig_6_3;
pub mod market_fig_6_4;
pub mod market_fig_6_5;
pub mod market_fig_6_6;
pub mod market_model;
pub mod market_table_6_1;
pub mod market_table_6_2;
pub mod tbg_fig_4_2;
pub mod tbg_fig_4_4;
pub mod tbg_fig_4_5;
pub mod tbg_fig_4_6;
pub mod tbg_fig_4_7;
pub mod tbg_fig_4_8;
pub mod tbg_fig_4_9;
pub mod tbg_model;
pub mod xchain_ccdi;
pub mod xchain_ccte;
pub mod xchain_memory;

/// `v` as `u64`, or a typed error naming the missing field of a bench's
/// JSON output.
pub(crate) fn u64_at(id: &'static str, v: &serde_json::Value, what: &str) -> Result<u64, crate::ExperimentError> {
    v.as_u64().ok_or_else(|| crate::ExperimentError::run(id, format!("benchmark output lacks `{what}`")))
}

pub(crate) fn f64_at(id: &'static str, v: &serde_json::Value, what: &str) -> Result<f64, crate::ExperimentError> {
    v.as_f64().ok_or_else(|| crate::ExperimentError::run(id, format!("benchmark output lacks `{what}`")))
}
