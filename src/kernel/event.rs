//! Decoding ring-buffer records. The layouts come from bpf/event.h through the skeleton's
//! generated types, so kernel and userspace share one definition.

use crate::abi::Abi;
use crate::kernel::codes::{consts, kernel_codes, UnknownCode};
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

kernel_codes! {
    /// What a ring-buffer record is (`enum ctrace_kind`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind: u32 = "event kind", consts::KIND_CODES {
        Syscall = consts::KIND_SYSCALL,
        CapGranted = consts::KIND_CAP_GRANTED,
        CapDenied = consts::KIND_CAP_DENIED,
        CgroupNew = consts::KIND_CGROUP_NEW,
        Phase = consts::KIND_PHASE,
    }
}

kernel_codes! {
    /// When in a container's life a sighting was made (`enum ctrace_phase`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum Phase: u8 = "phase", consts::PHASE_CODES {
        /// The application (after the entrypoint's exec).
        App = consts::PHASE_APP,
        /// The runtime's set-up (runc init) before it installed the container's seccomp filter.
        Runtime = consts::PHASE_RUNTIME,
        /// The runtime's set-up under the container's seccomp filter, up to the exec: what any
        /// profile must allow for the container to start (`ctrace requirements`).
        RuntimeFiltered = consts::PHASE_RUNTIME_FILTERED,
    }
}

impl Phase {
    /// Phases by their store code.
    const BY_STORE_CODE: [Phase; consts::PHASE_COUNT as usize] =
        [Phase::App, Phase::Runtime, Phase::RuntimeFiltered];

    /// The `sightings.init` column (and `runs.init`): 0 application, 1 runtime, 2 runtime
    /// under the filter. Stored data, so not the kernel's code.
    pub fn store_code(self) -> i64 {
        match self {
            Phase::App => 0,
            Phase::Runtime => 1,
            Phase::RuntimeFiltered => 2,
        }
    }

    /// The phase a store code stands for.
    pub fn from_store_code(code: i64) -> Option<Phase> {
        let phase = *Self::BY_STORE_CODE.get(usize::try_from(code).ok()?)?;
        debug_assert_eq!(phase.store_code(), code);
        Some(phase)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Phase::App => "application",
            Phase::Runtime => "runtime",
            Phase::RuntimeFiltered => "runtime under the filter",
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

kernel_codes! {
    /// Why a cgroup's phase moved on (or, for an exec, did not): `enum ctrace_cause`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PhaseCause: u8 = "phase cause", consts::CAUSE_CODES {
        /// The first call of a task under a seccomp filter.
        FilteredCall = consts::CAUSE_FILTERED_CALL,
        /// An exec that started the application.
        Exec = consts::CAUSE_EXEC,
        /// An exec before the application that did not start it (the runtime's own).
        ExecKept = consts::CAUSE_EXEC_KEPT,
    }
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
    #[error(transparent)]
    Code(#[from] UnknownCode),
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn as_bytes(chars: &[std::ffi::c_char]) -> Vec<u8> {
    chars.iter().map(|&c| c as u8).collect()
}

/// One ring-buffer record as an event. Every consumer of kernel events decodes here (through
/// `kernel::events::EventReader`, or directly in benchmarks).
pub fn decode(data: &[u8]) -> Result<Event, DecodeError> {
    let mut kind_bytes = [0u8; 4];
    kind_bytes.copy_from_slice(data.get(..4).ok_or(DecodeError::Short(data.len()))?);
    let kind = Kind::try_from(u32::from_ne_bytes(kind_bytes))?;
    let item = |nr: u32, abi: u8| -> Result<Item, DecodeError> {
        Ok(match kind {
            Kind::CapGranted => Item::CapGranted(nr),
            Kind::CapDenied => Item::CapDenied(nr),
            _ => Item::Syscall {
                abi: Abi::try_from(abi)?,
                nr,
            },
        })
    };
    match kind {
        Kind::CgroupNew => {
            let mut ev = types::ctrace_cgroup_event::default();
            copy(&mut ev, data)?;
            Ok(Event::NewCgroup(NewCgroup {
                cgroup_id: ev.cgroup_id,
                container_id: c_string(&as_bytes(&ev.container_id)),
                path: c_string(&as_bytes(&ev.path)),
                syscalls_detached: ev.flags & consts::CGROUP_SYSCALLS_DETACHED != 0,
            }))
        }
        Kind::Phase => decode_phase(data),
        Kind::Syscall | Kind::CapGranted | Kind::CapDenied => {
            let mut ev = types::ctrace_event::default();
            copy(&mut ev, data)?;
            Ok(Event::Sighting(Sighting {
                cgroup_id: ev.cgroup_id,
                item: item(ev.nr, ev.abi)?,
                phase: Phase::try_from(ev.phase)?,
                boot_ns: ev.boot_ns,
                pid: ev.pid,
                comm: c_string(&as_bytes(&ev.comm)),
            }))
        }
    }
}

fn copy<T: plain::Plain>(ev: &mut T, data: &[u8]) -> Result<(), DecodeError> {
    plain::copy_from_bytes(ev, data).map_err(|_| DecodeError::Short(data.len()))
}

fn decode_phase(data: &[u8]) -> Result<Event, DecodeError> {
    let mut ev = types::ctrace_phase_event::default();
    copy(&mut ev, data)?;
    Ok(Event::Phase(PhaseChange {
        cgroup_id: ev.cgroup_id,
        old: Phase::try_from(ev.old_phase)?,
        new: Phase::try_from(ev.new_phase)?,
        cause: PhaseCause::try_from(ev.cause)?,
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
        phase: s.phase.code(),
        ..Default::default()
    };
    let kind;
    (kind, ev.nr, ev.abi) = match s.item {
        Item::Syscall { abi, nr } => (Kind::Syscall, nr, abi.code()),
        Item::CapGranted(nr) => (Kind::CapGranted, nr, 0),
        Item::CapDenied(nr) => (Kind::CapDenied, nr, 0),
    };
    ev.kind = kind.code();
    for (dst, src) in ev
        .comm
        .iter_mut()
        .zip(s.comm.bytes().take(consts::COMM_LEN as usize - 1))
    {
        *dst = src as std::ffi::c_char;
    }
    // SAFETY: `ev` is a plain `#[repr(C)]` value; viewing its bytes is sound.
    unsafe { plain::as_bytes(&ev) }.to_vec()
}

/// The skeleton's structs (from BTF) use the header's sizes: a mismatch fails the build.
const _: () = {
    let _: fn(&types::ctrace_event) -> &[std::ffi::c_char; consts::COMM_LEN as usize] = |e| &e.comm;
    let _: fn(
        &types::ctrace_cgroup_event,
    ) -> &[std::ffi::c_char; consts::CGROUP_PATH_LEN as usize] = |e| &e.path;
    let _: fn(
        &types::ctrace_cgroup_event,
    ) -> &[std::ffi::c_char; consts::CONTAINER_ID_LEN as usize] = |e| &e.container_id;
    let _: fn(&types::ctrace_phase_event) -> &[std::ffi::c_char; consts::FILENAME_LEN as usize] =
        |e| &e.filename;
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_codes_are_errors() {
        let mut bytes = encode(&Sighting {
            cgroup_id: 1,
            item: Item::CapGranted(21),
            phase: Phase::App,
            boot_ns: 0,
            pid: 1,
            comm: String::new(),
        });
        bytes[..4].copy_from_slice(&99u32.to_ne_bytes());
        assert_eq!(
            decode(&bytes),
            Err(DecodeError::Code(UnknownCode {
                set: "event kind",
                code: 99
            }))
        );
        assert_eq!(Phase::try_from(consts::PHASE_APP), Ok(Phase::App));
        for phase in [Phase::App, Phase::Runtime, Phase::RuntimeFiltered] {
            assert_eq!(Phase::from_store_code(phase.store_code()), Some(phase));
        }
    }

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
