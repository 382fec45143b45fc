//! The kernel side as userspace sees it: load the programs, choose what this kernel supports,
//! attach, and keep the per-cgroup state (track, untrack, reset each epoch).

pub mod event;
pub mod probe;
mod state;

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::ptr::NonNull;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject, PrintLevel};

pub use probe::{CapSource, Features, StateMap};
pub use state::CgroupHandle;

#[allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/ctrace.skel.rs"));
}
use skel::{CtraceSkel, CtraceSkelBuilder};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Prerequisite(#[from] probe::PrerequisiteError),
    #[error("loading the eBPF programs: {0}")]
    Load(libbpf_rs::Error),
    #[error("attaching {program}: {source}")]
    Attach {
        program: &'static str,
        source: libbpf_rs::Error,
    },
    #[error("no way to observe capability checks on this kernel (tried: {0})")]
    NoCapSource(String),
    #[error("cgroup {id} ({path}): {source}")]
    Cgroup {
        id: u64,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cgroup {id}: updating its kernel state: {source}")]
    State { id: u64, source: libbpf_rs::Error },
}

/// CTRACE_SLOTS in bpf/event.h: the slots array's size.
pub const MAX_SLOTS: u32 = 4096;

#[derive(Debug, Clone, Copy)]
pub struct KernelConfig {
    /// Mirror events to the trace pipe.
    pub debug: bool,
    pub state: StateMap,
    /// Slots in use (a power of two up to MAX_SLOTS); fewer only to test collisions.
    pub slots: u32,
}

impl Default for KernelConfig {
    fn default() -> KernelConfig {
        KernelConfig {
            debug: false,
            state: StateMap::default(),
            slots: MAX_SLOTS,
        }
    }
}

pub struct Kernel {
    skel: CtraceSkel<'static>,
    cgroup_storage: bool,
    /// Slots backend: the array index is `cgroup id & slot_mask`.
    slot_mask: u32,
    /// `overflow_count` in the programs' .bss (shared memory), adjusted with atomics.
    overflow_count: Option<NonNull<i64>>,
    /// `reset_generation` in the programs' .bss: bumped to start an epoch.
    reset_generation: Option<NonNull<u32>>,
    cap_source: CapSource,
    _links: Vec<Link>,
}

fn libbpf_message(_level: PrintLevel, message: String) {
    eprint!("libbpf: {message}");
}

fn leak_object() -> &'static mut MaybeUninit<OpenObject> {
    // The skeleton borrows its object for as long as the programs run: the daemon's life.
    Box::leak(Box::new(MaybeUninit::uninit()))
}

impl Kernel {
    /// Checks prerequisites, probes the kernel and loads the best programs it supports.
    pub fn load(config: KernelConfig) -> Result<Kernel, KernelError> {
        probe::check_prerequisites()?;
        // libbpf's own messages (verifier logs) are long; show them only with --debug.
        let print: Option<(PrintLevel, libbpf_rs::PrintCallback)> =
            config.debug.then_some((PrintLevel::Info, libbpf_message));
        libbpf_rs::set_print(print);
        let features = probe::probe(config.state);
        let mut tried = Vec::new();
        for source in &features.cap_sources {
            match Self::load_with(config, &features, *source) {
                Ok(kernel) => return Ok(kernel),
                Err(err) => {
                    eprintln!(
                        "ctrace: loading with {} failed ({err}); trying the next \
                         capability source (--debug shows libbpf's log)",
                        source.describe()
                    );
                    tried.push(source.describe());
                }
            }
        }
        Err(KernelError::NoCapSource(tried.join(", ")))
    }

    fn load_with(
        config: KernelConfig,
        features: &Features,
        cap_source: CapSource,
    ) -> Result<Kernel, KernelError> {
        let mut open = CtraceSkelBuilder::default()
            .open(leak_object())
            .map_err(KernelError::Load)?;
        let rodata = open.maps.rodata_data.as_deref_mut().ok_or_else(|| {
            KernelError::Load(libbpf_rs::Error::from(std::io::Error::other("no .rodata")))
        })?;
        rodata.use_cgrp_storage = features.cgroup_storage;
        rodata.slot_mask = config.slots.clamp(1, MAX_SLOTS).next_power_of_two() - 1;
        let slot_mask = rodata.slot_mask;
        rodata.debug = config.debug;
        for (slot, (start, end)) in rodata
            .noaudit_ranges
            .iter_mut()
            .zip(&features.noaudit_callers)
        {
            *slot = [*start, *end];
        }
        if features.cgroup_storage {
            for map in [&mut open.maps.cgroup_hash, &mut open.maps.cgroup_slots] {
                map.set_autocreate(false).map_err(KernelError::Load)?;
            }
            open.progs.ctrace_cgroup_rmdir.set_autoload(false);
        } else {
            open.maps
                .cgroup_storage
                .set_autocreate(false)
                .map_err(KernelError::Load)?;
        }
        open.progs
            .ctrace_cap_tracepoint
            .set_autoload(cap_source == CapSource::Tracepoint);
        open.progs
            .ctrace_cap_fexit
            .set_autoload(cap_source == CapSource::Fexit);
        open.progs
            .ctrace_cap_kprobe
            .set_autoload(cap_source == CapSource::Kprobe);
        let mut skel = open.load().map_err(KernelError::Load)?;
        let bss = skel.maps.bss_data.as_deref_mut();
        let (overflow_count, reset_generation) = match bss {
            Some(bss) => (
                Some(NonNull::from(&mut bss.overflow_count)),
                Some(NonNull::from(&mut bss.reset_generation)),
            ),
            None => (None, None),
        };

        let attach = |prog: &libbpf_rs::ProgramMut<'_>, program: &'static str| {
            prog.attach()
                .map_err(|source| KernelError::Attach { program, source })
        };
        let mut links = vec![
            attach(&skel.progs.ctrace_cgroup_mkdir, "tp_btf/cgroup_mkdir")?,
            attach(&skel.progs.ctrace_exec, "tp_btf/sched_process_exec")?,
        ];
        if !features.cgroup_storage {
            links.push(attach(
                &skel.progs.ctrace_cgroup_rmdir,
                "tp_btf/cgroup_rmdir",
            )?);
        }
        links.push(match cap_source {
            CapSource::Tracepoint => {
                attach(&skel.progs.ctrace_cap_tracepoint, "tp_btf/cap_capable")?
            }
            CapSource::Fexit => attach(&skel.progs.ctrace_cap_fexit, "fexit/cap_capable")?,
            CapSource::Kprobe => attach(&skel.progs.ctrace_cap_kprobe, "kprobe/cap_capable")?,
        });
        Ok(Kernel {
            skel,
            cgroup_storage: features.cgroup_storage,
            slot_mask,
            overflow_count,
            reset_generation,
            cap_source,
            _links: links,
        })
    }

    pub fn cap_source(&self) -> CapSource {
        self.cap_source
    }

    pub fn uses_cgroup_storage(&self) -> bool {
        self.cgroup_storage
    }

    pub fn events_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.events
    }

    /// The syscall program costs every process on the host: the reader attaches it only
    /// while some cgroup is tracked, and drops the link to detach it.
    pub fn attach_syscalls(&self) -> Result<Link, KernelError> {
        self.skel
            .progs
            .ctrace_sys_enter
            .attach()
            .map_err(|source| KernelError::Attach {
                program: "tp_btf/sys_enter",
                source,
            })
    }

    pub fn ringbuf_misses(&self) -> u64 {
        self.skel
            .maps
            .bss_data
            .as_deref()
            .map(|b| b.ringbuf_misses)
            .unwrap_or(0)
    }
}
