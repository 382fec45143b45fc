//! Decoding ring-buffer records. The layouts come from bpf/event.h through the skeleton's
//! generated types, so kernel and userspace share one definition.

use crate::abi::Abi;
use crate::kernel::skel::types;

// SAFETY: these are `#[repr(C)]` structs of integers and byte arrays generated from BTF;
// every bit pattern is a valid value, which is what `Plain` requires.
unsafe impl plain::Plain for types::ctrace_event {}
// SAFETY: as above.
unsafe impl plain::Plain for types::ctrace_cgroup_event {}
// SAFETY: as above.
unsafe impl plain::Plain for types::ctrace_phase_event {}
// SAFETY: as above.
unsafe impl plain::Plain for types::ctrace_cgroup {}
// SAFETY: as above.
unsafe impl plain::Plain for types::ctrace_slot {}

const KIND_SYSCALL: u32 = 1;
const KIND_CAP_GRANTED: u32 = 2;
const KIND_CAP_DENIED: u32 = 3;
const KIND_CGROUP_NEW: u32 = 4;
const KIND_PHASE: u32 = 5;
const CGROUP_SYSCALLS_DETACHED: u32 = 1;
const CAUSE_FILTERED_CALL: u8 = 1;
const CAUSE_EXEC: u8 = 2;
const CAUSE_EXEC_KEPT: u8 = 3;
const PHASE_RUNTIME: u8 = 0;
const PHASE_RUNTIME_FILTERED: u8 = 1;
const PHASE_APP: u8 = 2;

/// When in a container's life a sighting was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// The application (after the entrypoint's exec).
    App,
    /// The runtime's set-up (runc init) before it installed the container's seccomp filter.
    Runtime,
    /// The runtime's set-up under the container's seccomp filter, up to the exec: what any
    /// profile must allow for the container to start (`ctrace requirements`).
    RuntimeFiltered,
}

impl Phase {
    /// The `sightings.init` column: 0 application, 1 runtime, 2 runtime under the filter.
    pub fn store_code(self) -> i64 {
        match self {
            Phase::App => 0,
            Phase::Runtime => 1,
            Phase::RuntimeFiltered => 2,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Phase::App => "application",
            Phase::Runtime => "runtime",
            Phase::RuntimeFiltered => "runtime under the filter",
        }
    }

    fn from_kernel(code: u8) -> Option<Phase> {
        match code {
            PHASE_RUNTIME => Some(Phase::Runtime),
            PHASE_RUNTIME_FILTERED => Some(Phase::RuntimeFiltered),
            PHASE_APP => Some(Phase::App),
            _ => None,
        }
    }

    fn kernel_code(self) -> u8 {
        match self {
            Phase::Runtime => PHASE_RUNTIME,
            Phase::RuntimeFiltered => PHASE_RUNTIME_FILTERED,
            Phase::App => PHASE_APP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Item {
    Syscall { abi: Abi, nr: u32 },
    CapGranted(u32),
    CapDenied(u32),
}

/// A first sighting in one cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub cgroup_id: u64,
    pub item: Item,
    pub phase: Phase,
    pub boot_ns: u64,
    pub pid: u32,
    pub comm: String,
}

/// A container-like cgroup the kernel started tracking at `cgroup_mkdir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCgroup {
    pub cgroup_id: u64,
    pub container_id: String,
    /// Relative to the cgroup2 mount.
    pub path: String,
    /// The syscall program was not attached when the cgroup was made: its first calls may
    /// be missing.
    pub syscalls_detached: bool,
}

/// Why a cgroup's phase moved on (or, for an exec, did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseCause {
    /// The first call of a task under a seccomp filter.
    FilteredCall,
    /// An exec that started the application.
    Exec,
    /// An exec before the application that did not start it (the runtime's own).
    ExecKept,
}

/// A phase event: every change of a cgroup's phase, and every exec before the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseChange {
    pub cgroup_id: u64,
    pub old: Phase,
    pub new: Phase,
    pub cause: PhaseCause,
    /// The task was under a seccomp filter.
    pub filtered: bool,
    pub boot_ns: u64,
    pub pid: u32,
    /// The thread group whose calls were first seen under the filter (0: none yet).
    pub filter_tgid: u32,
    pub comm: String,
    /// The exec's file name (empty for a filtered call).
    pub filename: String,
}

impl std::fmt::Display for PhaseChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cause = match self.cause {
            PhaseCause::FilteredCall => "first call under a seccomp filter",
            PhaseCause::Exec => "exec",
            PhaseCause::ExecKept => "exec of the runtime, phase kept",
        };
        write!(
            f,
            "cgroup {}: {} -> {} ({cause}; pid {}, comm {}{}{})",
            self.cgroup_id,
            self.old.describe(),
            self.new.describe(),
            self.pid,
            self.comm,
            if self.filename.is_empty() {
                String::new()
            } else {
                format!(", file {}", self.filename)
            },
            if self.filtered { ", filtered" } else { "" },
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Sighting(Sighting),
    NewCgroup(NewCgroup),
    Phase(PhaseChange),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("ring buffer record of {0} bytes is too short")]
    Short(usize),
    #[error("unknown event kind {0}")]
    Kind(u32),
    #[error("unknown ABI code {0}")]
    Abi(u8),
    #[error("unknown phase code {0}")]
    Phase(u8),
    #[error("unknown phase cause {0}")]
    Cause(u8),
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn as_bytes(chars: &[std::ffi::c_char]) -> Vec<u8> {
    chars.iter().map(|&c| c as u8).collect()
}

pub fn decode(data: &[u8]) -> Result<Event, DecodeError> {
    let mut kind_bytes = [0u8; 4];
    kind_bytes.copy_from_slice(data.get(..4).ok_or(DecodeError::Short(data.len()))?);
    let kind = u32::from_ne_bytes(kind_bytes);
    if kind == KIND_CGROUP_NEW {
        let mut ev = types::ctrace_cgroup_event::default();
        plain::copy_from_bytes(&mut ev, data).map_err(|_| DecodeError::Short(data.len()))?;
        return Ok(Event::NewCgroup(NewCgroup {
            cgroup_id: ev.cgroup_id,
            container_id: c_string(&as_bytes(&ev.container_id)),
            path: c_string(&as_bytes(&ev.path)),
            syscalls_detached: ev.flags & CGROUP_SYSCALLS_DETACHED != 0,
        }));
    }
    if kind == KIND_PHASE {
        return decode_phase(data);
    }
    let mut ev = types::ctrace_event::default();
    plain::copy_from_bytes(&mut ev, data).map_err(|_| DecodeError::Short(data.len()))?;
    let item = match ev.kind {
        KIND_SYSCALL => Item::Syscall {
            abi: Abi::from_kernel(ev.abi).ok_or(DecodeError::Abi(ev.abi))?,
            nr: ev.nr,
        },
        KIND_CAP_GRANTED => Item::CapGranted(ev.nr),
        KIND_CAP_DENIED => Item::CapDenied(ev.nr),
        other => return Err(DecodeError::Kind(other)),
    };
    Ok(Event::Sighting(Sighting {
        cgroup_id: ev.cgroup_id,
        item,
        phase: Phase::from_kernel(ev.phase).ok_or(DecodeError::Phase(ev.phase))?,
        boot_ns: ev.boot_ns,
        pid: ev.pid,
        comm: c_string(&as_bytes(&ev.comm)),
    }))
}

fn decode_phase(data: &[u8]) -> Result<Event, DecodeError> {
    let mut ev = types::ctrace_phase_event::default();
    plain::copy_from_bytes(&mut ev, data).map_err(|_| DecodeError::Short(data.len()))?;
    let phase = |code| Phase::from_kernel(code).ok_or(DecodeError::Phase(code));
    Ok(Event::Phase(PhaseChange {
        cgroup_id: ev.cgroup_id,
        old: phase(ev.old_phase)?,
        new: phase(ev.new_phase)?,
        cause: match ev.cause {
            CAUSE_FILTERED_CALL => PhaseCause::FilteredCall,
            CAUSE_EXEC => PhaseCause::Exec,
            CAUSE_EXEC_KEPT => PhaseCause::ExecKept,
            other => return Err(DecodeError::Cause(other)),
        },
        filtered: ev.filtered != 0,
        boot_ns: ev.boot_ns,
        pid: ev.pid,
        filter_tgid: ev.filter_tgid,
        comm: c_string(&as_bytes(&ev.comm)),
        filename: c_string(&as_bytes(&ev.filename)),
    }))
}

/// Encodes a sighting the way the kernel does; benchmarks use it for synthetic load.
pub fn encode(s: &Sighting) -> Vec<u8> {
    let mut ev = types::ctrace_event {
        cgroup_id: s.cgroup_id,
        boot_ns: s.boot_ns,
        pid: s.pid,
        phase: s.phase.kernel_code(),
        ..Default::default()
    };
    (ev.kind, ev.nr, ev.abi) = match s.item {
        Item::Syscall { abi, nr } => (KIND_SYSCALL, nr, abi as u8),
        Item::CapGranted(nr) => (KIND_CAP_GRANTED, nr, 0),
        Item::CapDenied(nr) => (KIND_CAP_DENIED, nr, 0),
    };
    for (dst, src) in ev.comm.iter_mut().zip(s.comm.bytes().take(15)) {
        *dst = src as std::ffi::c_char;
    }
    // SAFETY: `ev` is a plain `#[repr(C)]` value; viewing its bytes is sound.
    unsafe { plain::as_bytes(&ev) }.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sightings_round_trip() {
        let s = Sighting {
            cgroup_id: 42,
            item: Item::Syscall {
                abi: Abi::I386,
                nr: 39,
            },
            phase: Phase::RuntimeFiltered,
            boot_ns: 7,
            pid: 100,
            comm: "busybox".into(),
        };
        assert_eq!(decode(&encode(&s)), Ok(Event::Sighting(s)));
        assert_eq!(decode(&[1, 0]), Err(DecodeError::Short(2)));
    }
}
