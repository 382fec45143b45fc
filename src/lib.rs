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
pub mod docker;
pub mod kernel;
pub mod names;
pub mod pipeline;
pub mod profile;
pub mod refusals;
pub mod registry;
pub mod report;
pub mod requirements;
pub mod store;
pub mod tracefile;

/// Writes one line to stderr, like `eprintln!`, but a stderr that cannot be written (a full
/// disk under a log file, a closed pipe, a file-size limit) is ignored instead of panicking:
/// a log line must never stop the reader or the writer.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Exit codes: 0 success (diff: equal), 1 diff found differences, 2 error.
pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;
