//! offhours: schedules development servers off after hours, by tag, across an AWS Organization.
//!
//! The pure core (no I/O, no clock): [`schedule`] evaluates schedules, [`compile`] turns
//! them into Auto Scaling scheduled actions, [`config`] loads and validates the YAML.

pub mod aws;
pub mod capacity;
pub mod cloud;
pub mod commands;
pub mod compile;
pub mod config;
pub mod controller;
pub mod daemon;
pub mod explain;
pub mod failure;
pub mod feeds;
pub mod fixtures;
pub mod kind;
pub mod metrics;
pub mod model;
pub mod notice;
pub mod notify;
pub mod overrides;
pub mod pass;
pub mod policy;
pub mod report;
pub mod savings;
pub mod schedule;
pub mod seal;
pub mod shard;
pub mod status;
pub mod telemetry;

/// Cases per property test: `default`, or `OFFHOURS_FUZZ_CASES` for a long run
/// (README: "Fuzzing").
#[cfg(test)]
pub(crate) fn fuzz_cases(default: u32) -> u32 {
    std::env::var("OFFHOURS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
