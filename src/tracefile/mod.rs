//! The Tracefile: the original tool's text format, kept compatible.
//!
//! ```text
//! ARCH
//! x86_64
//!
//! CAPABILITIES
//! chown
//!
//! SYSCALLS
//! close
//! execve
//!
//! SYSCALLS:i386
//! exit
//! write
//! ```
//!
//! Native (x86_64) syscalls stay in `SYSCALLS`, where the original reads them. Other ABIs
//! follow in sections of their own, named `SYSCALLS:<abi>`, with that ABI's names.
//!
//! Last, `ERRNO` says what the container's own seccomp profile answered for the calls it
//! refused with an errno other than EPERM (`clone3 ENOSYS` under Docker's default profile):
//! a profile made from the Tracefile must answer them the same, or a program's fallback
//! (glibc creates threads with `clone` when `clone3` says ENOSYS, not when it says EPERM)
//! breaks. The tracer cannot see these calls (seccomp acts before the tracepoint); the
//! daemon learns the answers by probing the container's profile (`src/refusals`).

pub mod collect;
mod error;
pub mod label;
pub mod parse;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::abi::Abi;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracefile {
    /// Capability names, lowercase, without `cap_`.
    pub capabilities: BTreeSet<String>,
    /// Syscall names per ABI; an ABI with no entry was not seen.
    pub syscalls: BTreeMap<Abi, BTreeSet<String>>,
    /// Syscall name → the errno (not EPERM) the container's profile refused it with.
    pub errnos: BTreeMap<String, u32>,
}

pub const ARCH: &str = "ARCH";
pub const CAPABILITIES: &str = "CAPABILITIES";
pub const SYSCALLS: &str = "SYSCALLS";
pub const ERRNO: &str = "ERRNO";

/// When two traced runs got different errnos for one call, the profile answers ENOSYS if
/// either did (a program falls back on ENOSYS; it gives up on anything else), otherwise the
/// lower number, so that the union does not depend on the order of its inputs.
pub fn combine_errnos(a: u32, b: u32) -> u32 {
    let enosys = libc::ENOSYS as u32;
    if a == enosys || b == enosys {
        enosys
    } else {
        a.min(b)
    }
}

impl Tracefile {
    pub fn add_syscall(&mut self, abi: Abi, name: &str) {
        self.syscalls
            .entry(abi)
            .or_default()
            .insert(name.to_string());
    }

    pub fn add_capability(&mut self, name: &str) {
        self.capabilities.insert(name.to_string());
    }

    /// Records that the container's profile refused `name` with `errno` (see [`ERRNO`]).
    pub fn add_errno(&mut self, name: &str, errno: u32) {
        let entry = self.errnos.entry(name.to_string()).or_insert(errno);
        *entry = combine_errnos(*entry, errno);
    }

    pub fn merge(&mut self, other: &Tracefile) {
        self.capabilities.extend(other.capabilities.iter().cloned());
        for (name, errno) in &other.errnos {
            self.add_errno(name, *errno);
        }
        for (abi, names) in &other.syscalls {
            self.syscalls
                .entry(*abi)
                .or_default()
                .extend(names.iter().cloned());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.capabilities.is_empty() && self.syscalls.values().all(BTreeSet::is_empty)
    }

    pub fn syscall_count(&self) -> usize {
        self.syscalls.values().map(BTreeSet::len).sum()
    }

    /// The section header that holds an ABI's syscalls.
    pub fn syscall_section(abi: Abi) -> String {
        if abi == Abi::NATIVE {
            SYSCALLS.to_string()
        } else {
            format!("{SYSCALLS}:{abi}")
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "{ARCH}\n{}\n\n{CAPABILITIES}\n", Abi::NATIVE);
        for cap in &self.capabilities {
            let _ = writeln!(out, "{cap}");
        }
        let _ = write!(out, "\n{SYSCALLS}\n");
        let empty = BTreeSet::new();
        for name in self.syscalls.get(&Abi::NATIVE).unwrap_or(&empty) {
            let _ = writeln!(out, "{name}");
        }
        for (abi, names) in &self.syscalls {
            if *abi == Abi::NATIVE || names.is_empty() {
                continue;
            }
            let _ = write!(out, "\n{}\n", Self::syscall_section(*abi));
            for name in names {
                let _ = writeln!(out, "{name}");
            }
        }
        if !self.errnos.is_empty() {
            let _ = write!(out, "\n{ERRNO}\n");
            for entry in self.errno_entries() {
                let _ = writeln!(out, "{entry}");
            }
        }
        out
    }

    /// The `ERRNO` section's lines: `clone3 ENOSYS`.
    pub fn errno_entries(&self) -> Vec<String> {
        self.errnos
            .iter()
            .map(|(name, errno)| match crate::names::errno_name(*errno) {
                Some(e) => format!("{name} {e}"),
                None => format!("{name} {errno}"),
            })
            .collect()
    }
}
