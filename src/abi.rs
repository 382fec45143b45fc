//! System call ABIs of an x86_64 host. A syscall number means nothing without its ABI: i386
//! numbers index the i386 table, x32 ones the x86_64 table with bit 0x40000000.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::kernel::codes::{consts, kernel_codes};

kernel_codes! {
    /// `enum ctrace_abi` in bpf/event.h (the kernel's code is `TryFrom<u8>`, `code()`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Abi: u8 = "ABI", consts::ABI_CODES {
        #[serde(rename = "x86_64")]
        X86_64 = consts::ABI_X86_64,
        I386 = consts::ABI_I386,
        X32 = consts::ABI_X32,
    }
}

impl Abi {
    pub const ALL: [Abi; 3] = [Abi::X86_64, Abi::I386, Abi::X32];

    /// The ABI of processes built for this machine.
    pub const NATIVE: Abi = Abi::X86_64;

    pub fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
            Abi::X32 => "x32",
        }
    }

    /// The libseccomp architecture token Docker expects in a profile.
    pub fn seccomp_arch(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown ABI `{0}` (expected x86_64, i386 or x32)")]
pub struct UnknownAbi(String);

impl FromStr for Abi {
    type Err = UnknownAbi;

    fn from_str(s: &str) -> Result<Abi, UnknownAbi> {
        match s.to_ascii_lowercase().as_str() {
            "x86_64" | "amd64" | "x86-64" => Ok(Abi::X86_64),
            "i386" | "x86" | "ia32" | "i686" => Ok(Abi::I386),
            "x32" => Ok(Abi::X32),
            _ => Err(UnknownAbi(s.to_string())),
        }
    }
}
