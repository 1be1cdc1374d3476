//! The org-level policy checker: render the SCP and tag policy from the config, evaluate
//! requests against them, merge effective tag policies, and diff what is attached for drift.
//! Pure (no I/O), but for [`sync`], which reads and writes the organization over a cloud.

pub mod check;
pub mod drift;
pub mod effective;
pub mod eval;
pub mod event;
pub mod org;
pub mod preflight;
pub mod render;
pub mod retire;

/// Keeps the policies attached (I/O, over the cloud and the organization).
pub mod sync;
