//! Kernel feature probing, with explicit fallbacks (in the manner of lightswitch): what this
//! kernel offers decides which programs load; nothing is assumed from the version number.

use std::path::Path;

use libbpf_rs::btf::Btf;
use libbpf_rs::libbpf_sys;

/// Where capability checks are observed, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSource {
    /// `tp_btf/cap_capable` (Linux 6.14+): stable, gives the result, no `opts`.
    Tracepoint,
    /// `fexit/cap_capable`: result and `opts`; needs BPF trampolines.
    Fexit,
    /// `kprobe/cap_capable`: no result, so every audited check counts as granted.
    Kprobe,
}

impl CapSource {
    pub fn describe(self) -> &'static str {
        match self {
            CapSource::Tracepoint => "tracepoint capability:cap_capable (tp_btf)",
            CapSource::Fexit => "fexit on cap_capable",
            CapSource::Kprobe => "kprobe on cap_capable (denials counted as uses)",
        }
    }
}

/// Kernel functions that check a capability without auditing it: a probe, not a use.
/// (`cap_vm_enough_memory` is often inlined into `security_vm_enough_memory_mm`.)
pub const NOAUDIT_CALLERS: [&str; 6] = [
    "ns_capable_noaudit",
    "has_ns_capability_noaudit",
    "has_capability_noaudit",
    "security_vm_enough_memory_mm",
    "cap_vm_enough_memory",
    "__vm_enough_memory",
];

/// Address ranges of kernel functions, from /proc/kallsyms: each symbol's address up to the
/// next symbol's. Absent symbols are left out; hidden addresses (kptr_restrict) give none.
pub fn function_ranges(names: &[&str]) -> Vec<(u64, u64)> {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return Vec::new();
    };
    let mut symbols: Vec<(u64, &str)> = text
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
            let _kind = fields.next()?;
            Some((addr, fields.next()?))
        })
        .filter(|(addr, _)| *addr != 0)
        .collect();
    symbols.sort_unstable();
    symbols
        .iter()
        .enumerate()
        .filter(|(_, (_, sym))| names.contains(sym))
        .filter_map(|(i, (start, _))| {
            let end = symbols[i + 1..]
                .iter()
                .map(|(a, _)| *a)
                .find(|a| a > start)?;
            Some((*start, end))
        })
        .collect()
}

/// Where per-cgroup state lives in the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StateMap {
    /// Slots (the fastest measured here; see BENCHMARKS.md).
    #[default]
    Auto,
    /// An array indexed by the cgroup id's low bits, with a hash for collisions: no helper
    /// call on the syscall path; any kernel with BPF ring buffers.
    Slots,
    /// BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2+): a helper call per traced syscall.
    Storage,
}

#[derive(Debug, Clone)]
pub struct Features {
    /// BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2+): O(1) per-cgroup state on the syscall path.
    pub cgroup_storage: bool,
    /// Capability sources to try, best first.
    pub cap_sources: Vec<CapSource>,
    /// Where audit-free capability checks come from (see NOAUDIT_CALLERS).
    pub noaudit_callers: Vec<(u64, u64)>,
    /// The kfunc `bpf_rdonly_cast` and the `cgroup_attach_task` tracepoint, which the per-CPU
    /// placement cache needs (bpf/task_cache.h).
    pub task_cache: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PrerequisiteError {
    #[error("ctrace trace must run as root (it loads eBPF programs); try sudo")]
    NotRoot,
    #[error("no kernel BTF at /sys/kernel/btf/vmlinux; a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed")]
    NoBtf,
    #[error("this kernel has no BPF ring buffer (Linux 5.8+ is needed)")]
    NoRingBuffer,
}

fn map_type_supported(map_type: u32) -> bool {
    // SAFETY: libbpf_probe_bpf_map_type only reads its arguments; NULL opts is documented.
    unsafe { libbpf_sys::libbpf_probe_bpf_map_type(map_type, std::ptr::null()) == 1 }
}

pub fn check_prerequisites() -> Result<(), PrerequisiteError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(PrerequisiteError::NotRoot);
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(PrerequisiteError::NoBtf);
    }
    if !map_type_supported(libbpf_sys::BPF_MAP_TYPE_RINGBUF) {
        return Err(PrerequisiteError::NoRingBuffer);
    }
    Ok(())
}

pub fn probe(state: StateMap) -> Features {
    let btf = Btf::from_vmlinux().ok();
    let has_typedef = |name: &str| {
        btf.as_ref().is_some_and(|btf| {
            btf.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>(name)
                .is_some()
        })
    };
    let has_cap_tracepoint = has_typedef("btf_trace_cap_capable");
    let task_cache = has_typedef("btf_trace_cgroup_attach_task")
        && btf.as_ref().is_some_and(|btf| {
            btf.type_by_name::<libbpf_rs::btf::types::Func<'_>>("bpf_rdonly_cast")
                .is_some()
        });
    let mut cap_sources = Vec::new();
    if has_cap_tracepoint {
        cap_sources.push(CapSource::Tracepoint);
    }
    cap_sources.extend([CapSource::Fexit, CapSource::Kprobe]);
    Features {
        cgroup_storage: match state {
            StateMap::Auto | StateMap::Slots => false,
            StateMap::Storage => map_type_supported(libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE),
        },
        cap_sources,
        noaudit_callers: function_ranges(&NOAUDIT_CALLERS),
        task_cache,
    }
}
