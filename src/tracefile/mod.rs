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

pub mod collect;
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
}

pub const ARCH: &str = "ARCH";
pub const CAPABILITIES: &str = "CAPABILITIES";
pub const SYSCALLS: &str = "SYSCALLS";

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

    pub fn merge(&mut self, other: &Tracefile) {
        self.capabilities.extend(other.capabilities.iter().cloned());
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
        out
    }
}
