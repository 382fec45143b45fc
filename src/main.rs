//! ctrace: which system calls and capabilities do Docker containers really use?
//!
//! Data flow (one module per stage):
//! `bpf/` kernel programs → `kernel` (load, probe, ring buffer) → `pipeline` (reader thread →
//! channel → writer thread) → `store` (SQLite) → `tracefile`, `profile` (materialized views),
//! with `docker` (watcher) filling the `registry` of traced containers.

mod abi;
mod cli;
mod commands;
mod docker;
mod kernel;
mod names;
mod pipeline;
mod profile;
mod registry;
mod store;
mod tracefile;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit codes: 0 success (diff: equal), 1 diff found differences, 2 error.
pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trace(args) => commands::trace::run(args),
        Command::Options(args) => commands::options::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Requirements(args) => commands::requirements::run(args),
        Command::Capability(args) => commands::lookup::capability(args),
        Command::Syscall(args) => commands::lookup::syscall(args),
        Command::Sql(args) => commands::sql::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ctrace: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
