//! The org-level policy checker: render the SCP and tag policy from the config, evaluate
//! requests against them, and diff what is attached for drift. Pure: no I/O.

pub mod check;
pub mod drift;
pub mod eval;
pub mod event;
pub mod render;
