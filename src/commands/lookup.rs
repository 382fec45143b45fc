use std::process::ExitCode;

use crate::cli::{LookupArgs, SyscallLookupArgs};

pub fn capability(_args: LookupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ctrace capability` is not implemented yet")
}

pub fn syscall(_args: SyscallLookupArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`ctrace syscall` is not implemented yet")
}
