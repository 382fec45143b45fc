use std::process::ExitCode;

use crate::cli::OptionsArgs;

pub fn run(_args: OptionsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ctrace options` is not implemented yet")
}
