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

#[derive(Debug, Clone)]
pub struct Features {
    /// BPF_MAP_TYPE_CGRP_STORAGE (Linux 6.2+): O(1) per-cgroup state on the syscall path.
    pub cgroup_storage: bool,
    /// Capability sources to try, best first.
    pub cap_sources: Vec<CapSource>,
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

pub fn probe() -> Features {
    let has_cap_tracepoint = Btf::from_vmlinux()
        .ok()
        .map(|btf| {
            btf.type_by_name::<libbpf_rs::btf::types::Typedef<'_>>("btf_trace_cap_capable")
                .is_some()
        })
        .unwrap_or(false);
    let mut cap_sources = Vec::new();
    if has_cap_tracepoint {
        cap_sources.push(CapSource::Tracepoint);
    }
    cap_sources.extend([CapSource::Fexit, CapSource::Kprobe]);
    Features {
        cgroup_storage: map_type_supported(libbpf_sys::BPF_MAP_TYPE_CGRP_STORAGE),
        cap_sources,
    }
}
