//! ctrace: which system calls and capabilities do Docker containers really use?
//!
//! Data flow (one module per stage):
//! `bpf/` kernel programs → `kernel` (load, probe, ring buffer) → `pipeline` (reader thread →
//! channel → writer thread) → `store` (SQLite) → `tracefile`, `profile` (materialized views),
//! with `docker` (watcher) filling the `registry` of traced containers.

pub mod abi;
pub mod atomic_write;
pub mod cli;
pub mod commands;
pub mod containerd;
pub mod docker;
pub mod kernel;
pub mod logging;
pub mod names;
pub mod pipeline;
pub mod profile;
pub mod refusals;
pub mod registry;
pub mod report;
pub mod requirements;
pub mod runtimes;
pub mod store;
pub mod tracefile;

/// Exit codes: 0 success (diff: equal), 1 diff found differences, 2 error.
pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;
