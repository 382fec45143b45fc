//! One file per subcommand. Each returns the exit code on success; `main` prints errors.

pub mod completions;
pub mod coverage;
pub mod diff;
pub mod lookup;
pub mod options;
pub mod report;
pub mod requirements;
pub mod sql;
pub mod status;
pub mod trace;
