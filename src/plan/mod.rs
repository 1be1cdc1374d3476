//! The planner: config + observed state + now -> the changes to make. Pure: no I/O, no clock.

pub mod compliance;
pub mod groups;
pub mod instances;

pub use groups::{GroupChange, GroupPlan, Step, plan_group};
