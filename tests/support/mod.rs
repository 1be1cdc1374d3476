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

/// The Python of the test venv: `$OFFHOURS_PYTHON`, else the `python` beside
/// `$OFFHOURS_MOTO_SERVER` (the venv ./scripts/test installs), else `python3` on PATH.
pub fn python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("OFFHOURS_PYTHON") {
        return p.into();
    }
    if let Ok(moto) = std::env::var("OFFHOURS_MOTO_SERVER") {
        let p = std::path::PathBuf::from(moto).with_file_name("python");
        if p.exists() {
            return p;
        }
    }
    "python3".into()
}
