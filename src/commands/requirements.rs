use std::process::ExitCode;

use crate::cli::RequirementsArgs;

pub fn run(_args: RequirementsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ctrace requirements` is not implemented yet")
}
