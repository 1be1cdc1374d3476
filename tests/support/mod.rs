//! Test support: a moto server per test, SDK clients for seeding and checking, and an
//! independent evaluators of scheduled actions and of schedules.
#![allow(dead_code)]

pub mod cron_eval;
pub mod daemon;
pub mod faults;
pub mod moto;
pub mod oracle;
pub mod strict;
pub mod webhook;
pub mod world;
