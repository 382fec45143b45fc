//! Names of system calls (per ABI) and capabilities, from the `syscalls` and `caps` crates,
//! so that no kernel headers are needed and names are resolved once, when stored.

use std::str::FromStr;

use caps::Capability;
use syscalls::{x86, x86_64};

use crate::abi::Abi;

/// x32 reuses the x86_64 numbers below this; above it are x32-only entry points.
const X32_OWN_TABLE_START: u32 = 512;

pub fn syscall_name(abi: Abi, nr: u32) -> Option<&'static str> {
    match abi {
        Abi::X86_64 => x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        Abi::I386 => x86::Sysno::new(nr as usize).map(|s| s.name()),
        Abi::X32 if nr < X32_OWN_TABLE_START => x86_64::Sysno::new(nr as usize).map(|s| s.name()),
        Abi::X32 => None,
    }
}

pub fn syscall_number(abi: Abi, name: &str) -> Option<u32> {
    match abi {
        Abi::X86_64 | Abi::X32 => x86_64::Sysno::from_str(name).ok().map(|s| s.id() as u32),
        Abi::I386 => x86::Sysno::from_str(name).ok().map(|s| s.id() as u32),
    }
}

/// Every (number, name) of an ABI's table, in number order.
pub fn syscalls(abi: Abi) -> Vec<(u32, &'static str)> {
    match abi {
        Abi::X86_64 | Abi::X32 => x86_64::Sysno::iter()
            .map(|s| (s.id() as u32, s.name()))
            .collect(),
        Abi::I386 => x86::Sysno::iter()
            .map(|s| (s.id() as u32, s.name()))
            .collect(),
    }
}

/// Errno values a seccomp rule can return (`errnoRet`): 1..=4095, the kernel's MAX_ERRNO.
pub const MAX_ERRNO: u32 = 4095;

/// `38` → `ENOSYS`.
pub fn errno_name(errno: u32) -> Option<&'static str> {
    i32::try_from(errno)
        .ok()
        .and_then(|e| syscalls::Errno::new(e).name())
}

/// `ENOSYS` or `38` → 38.
pub fn errno_number(text: &str) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return (1..=MAX_ERRNO).contains(&n).then_some(n);
    }
    (1..=MAX_ERRNO).find(|n| errno_name(*n) == Some(text))
}

/// A syscall name of any ABI's table.
pub fn is_syscall_name(name: &str) -> bool {
    Abi::ALL
        .into_iter()
        .any(|abi| syscall_number(abi, name).is_some())
}

/// Capabilities known to this build, in number order.
pub fn capabilities() -> Vec<Capability> {
    let mut all: Vec<Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all
}

/// `CAP_NET_RAW` → `net_raw`: the Tracefile spelling.
pub fn capability_name(nr: u32) -> Option<String> {
    capabilities()
        .into_iter()
        .find(|c| u32::from(c.index()) == nr)
        .map(|c| short_capability_name(&c))
}

pub fn short_capability_name(cap: &Capability) -> String {
    let full = cap.to_string();
    full.strip_prefix("CAP_")
        .unwrap_or(&full)
        .to_ascii_lowercase()
}

/// Accepts `net_raw`, `NET_RAW`, `cap_net_raw` or `CAP_NET_RAW`.
pub fn capability_by_name(name: &str) -> Option<Capability> {
    Capability::from_str(&caps::to_canonical(name.trim())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i386_numbers_use_the_i386_table() {
        assert_eq!(syscall_name(Abi::X86_64, 1), Some("write"));
        assert_eq!(syscall_name(Abi::I386, 1), Some("exit"));
        assert_eq!(syscall_name(Abi::I386, 4), Some("write"));
        assert_eq!(syscall_number(Abi::I386, "mkdir"), Some(39));
        assert_eq!(syscall_number(Abi::X86_64, "mkdir"), Some(83));
    }

    #[test]
    fn capability_names_round_trip() {
        assert_eq!(capability_name(0).as_deref(), Some("chown"));
        assert_eq!(capability_name(18).as_deref(), Some("sys_chroot"));
        assert_eq!(
            capability_by_name("sys_chroot").map(|c| c.index()),
            Some(18)
        );
        assert_eq!(
            capability_by_name("CAP_NET_RAW").map(|c| c.index()),
            Some(13)
        );
        assert!(capability_by_name("not_a_cap").is_none());
    }
}
