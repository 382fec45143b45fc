//! The kernel side as userspace sees it: load the programs, choose what this kernel supports,
//! attach, and keep the per-cgroup state (track, untrack, reset each epoch).

pub mod codes;
mod config;
pub mod event;
pub mod events;
pub mod probe;
mod state;

use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, OpenObject, PrintLevel};

pub use config::{parse_ringbuf_size, KernelConfig, DEFAULT_RINGBUF_SIZE};
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
    #[error("reading the events ring buffer: {0}")]
    Events(libbpf_rs::Error),
    #[error("cgroup {id}: updating its kernel state: {source}")]
    State { id: u64, source: libbpf_rs::Error },
}

/// The slots array's size (`CTRACE_SLOTS`).
pub const MAX_SLOTS: u32 = codes::consts::SLOTS;
/// Entries of the placement cache (`TASK_CACHE_CPUS` in bpf/task_cache.h).
const TASK_CACHE_CPUS: usize = codes::consts::TASK_CACHE_CPUS as usize;

/// The skeleton's arrays (from BTF) have the header's sizes: a mismatch fails the build.
const _: () = {
    let _: fn(&skel::types::bss) -> &[skel::types::ctrace_slot; MAX_SLOTS as usize] =
        |bss| &bss.slots;
    let _: fn(&skel::types::bss) -> &[skel::types::task_cache_entry; TASK_CACHE_CPUS] =
        |bss| &bss.task_cache;
};

pub struct Kernel {
    skel: CtraceSkel<'static>,
    cgroup_storage: bool,
    /// Slots backend: the array index is `cgroup id & slot_mask`.
    slot_mask: u32,
    /// `overflow_count` in the programs' .bss (shared memory), adjusted with atomics.
    overflow_count: Option<NonNull<i64>>,
    /// `reset_generation` in the programs' .bss: bumped to start an epoch.
    reset_generation: Option<NonNull<u32>>,
    /// `syscalls_attached` in the programs' .bss.
    syscalls_attached: Option<NonNull<u32>>,
    /// `claim_failures` in the programs' .bss (bpf/state.h), adjusted with atomics.
    claim_failures: Option<NonNull<u64>>,
    /// The slots array in the programs' .bss (shared memory; see state.rs).
    slots: Option<NonNull<skel::types::ctrace_slot>>,
    /// The per-CPU placement cache's controls in .data (bpf/task_cache.h).
    task_cache: Option<TaskCache>,
    cap_source: CapSource,
    _links: Vec<Link>,
}

/// `task_cache_generation` and `task_cache_holds` in the programs' .data (shared memory).
#[derive(Clone, Copy)]
struct TaskCache {
    generation: NonNull<u32>,
    holds: NonNull<i32>,
}

impl TaskCache {
    fn generation(&self) -> &AtomicU32 {
        // SAFETY: the pointer is into the skeleton's .data mapping, valid and aligned for the
        // program's life; the kernel programs change it only with atomic adds.
        unsafe { AtomicU32::from_ptr(self.generation.as_ptr()) }
    }

    fn holds(&self) -> &AtomicI32 {
        // SAFETY: as for `generation`.
        unsafe { AtomicI32::from_ptr(self.holds.as_ptr()) }
    }

    /// Cached placements may be stale: a tracked cgroup was added.
    fn invalidate(&self) {
        self.generation().fetch_add(1, Ordering::SeqCst);
    }

    /// No entry is written until `release` (a placement is about to change owner).
    fn hold(&self) {
        self.holds().fetch_add(1, Ordering::SeqCst);
        self.generation().fetch_add(1, Ordering::SeqCst);
    }

    fn release(&self) {
        self.generation().fetch_add(1, Ordering::SeqCst);
        self.holds().fetch_sub(1, Ordering::SeqCst);
    }
}

/// The syscall program and the task-exit program that keeps its placement cache correct;
/// dropping it detaches both (the syscall program first).
pub struct SyscallLinks {
    sys_enter: Link,
    task_exit: Option<Link>,
    /// `syscalls_attached` in the programs' .bss: new cgroups report whether it was set.
    attached_flag: Option<NonNull<u32>>,
}

impl Drop for SyscallLinks {
    fn drop(&mut self) {
        if let Some(flag) = self.attached_flag {
            // SAFETY: the pointer is into the skeleton's .bss mapping, which outlives every
            // SyscallLinks (the Kernel owns it); the programs only read it.
            unsafe { AtomicU32::from_ptr(flag.as_ptr()) }.store(0, Ordering::SeqCst);
        }
    }
}

impl SyscallLinks {
    /// The syscall program's link (benchmarks read its program's statistics).
    pub fn sys_enter(&self) -> &Link {
        &self.sys_enter
    }

    /// The task-exit program's link, if the placement cache is on.
    pub fn task_exit(&self) -> Option<&Link> {
        self.task_exit.as_ref()
    }
}

fn attach(prog: &libbpf_rs::ProgramMut<'_>, program: &'static str) -> Result<Link, KernelError> {
    prog.attach()
        .map_err(|source| KernelError::Attach { program, source })
}

fn libbpf_message(_level: PrintLevel, message: String) {
    tracing::debug!("libbpf: {}", message.trim_end());
}

fn leak_object() -> &'static mut MaybeUninit<OpenObject> {
    // The skeleton borrows its object for as long as the programs run: the daemon's life.
    Box::leak(Box::new(MaybeUninit::uninit()))
}

impl Kernel {
    /// Checks prerequisites, probes the kernel and loads the best programs it supports.
    pub fn load(mut config: KernelConfig) -> Result<Kernel, KernelError> {
        probe::check_prerequisites()?;
        // libbpf's own messages (verifier logs) are long; show them only with --debug.
        let print: Option<(PrintLevel, libbpf_rs::PrintCallback)> =
            config.debug.then_some((PrintLevel::Info, libbpf_message));
        libbpf_rs::set_print(print);
        let features = probe::probe(config.state);
        config.task_cache = config.task_cache && Self::task_cache_fits(&features);
        let mut tried = Vec::new();
        for source in &features.cap_sources {
            match Self::load_with(config, &features, *source) {
                Ok(kernel) => return Ok(kernel),
                Err(err) => {
                    tracing::info!(
                        "loading with {} failed ({err}); trying the next \
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
        let task_cache = config.task_cache;
        for (slot, (start, end)) in rodata
            .noaudit_ranges
            .iter_mut()
            .zip(&features.noaudit_callers)
        {
            *slot = [*start, *end];
        }
        if features.cgroup_storage {
            open.maps
                .cgroup_hash
                .set_autocreate(false)
                .map_err(KernelError::Load)?;
            open.progs.ctrace_cgroup_rmdir.set_autoload(false);
        } else {
            open.maps
                .cgroup_storage
                .set_autocreate(false)
                .map_err(KernelError::Load)?;
        }
        config::size_ring_buffer(&mut open.maps.events, config.ringbuf_size)?;
        open.progs.ctrace_sys_enter.set_autoload(task_cache);
        open.progs.ctrace_sys_enter_helper.set_autoload(!task_cache);
        open.progs.ctrace_migrated.set_autoload(task_cache);
        open.progs.ctrace_exited.set_autoload(task_cache);
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
        let (overflow_count, reset_generation, syscalls_attached, slots, failures) = match bss {
            Some(bss) => (
                Some(NonNull::from(&mut bss.overflow_count)),
                Some(NonNull::from(&mut bss.reset_generation)),
                Some(NonNull::from(&mut bss.syscalls_attached)),
                NonNull::new(bss.slots.as_mut_ptr()),
                Some(NonNull::from(&mut bss.claim_failures)),
            ),
            None => (None, None, None, None, None),
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
        let task_cache = if task_cache {
            Self::enable_task_cache(&mut skel, &mut links)
        } else {
            None
        };
        Ok(Kernel {
            skel,
            cgroup_storage: features.cgroup_storage,
            slot_mask,
            overflow_count,
            reset_generation,
            syscalls_attached,
            claim_failures: failures,
            slots,
            task_cache,
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

    /// Read only through `events::EventReader`.
    pub(super) fn events_map(&self) -> &libbpf_rs::Map<'static> {
        &self.skel.maps.events
    }

    /// Whether this kernel and machine can use the placement cache (bpf/task_cache.h): the
    /// kfunc and tracepoint it needs, and one entry per possible CPU.
    fn task_cache_fits(features: &Features) -> bool {
        let cpus = libbpf_rs::num_possible_cpus().unwrap_or(usize::MAX);
        let why = if !features.task_cache {
            "this kernel lacks bpf_rdonly_cast or the cgroup_attach_task tracepoint".to_string()
        } else if cpus > TASK_CACHE_CPUS {
            format!("{cpus} possible CPUs, the placement cache has {TASK_CACHE_CPUS}")
        } else {
            return true;
        };
        tracing::info!("{why}: syscalls find their container with a helper call each");
        false
    }

    /// The placement cache needs to see every cgroup migration. Without the hook it stays
    /// held, and the syscall program finds each task's state the slow way: never wrong.
    fn enable_task_cache(
        skel: &mut CtraceSkel<'static>,
        links: &mut Vec<Link>,
    ) -> Option<TaskCache> {
        let data = skel.maps.data_data.as_deref_mut()?;
        let cache = TaskCache {
            generation: NonNull::from(&mut data.task_cache_generation),
            holds: NonNull::from(&mut data.task_cache_holds),
        };
        match skel.progs.ctrace_migrated.attach() {
            Ok(link) => {
                links.push(link);
                cache.release();
                Some(cache)
            }
            Err(e) => {
                tracing::info!(
                    "attaching tp_btf/cgroup_attach_task: {e}: the placement cache \
                     stays off (slower syscall tracing, nothing missed)"
                );
                None
            }
        }
    }

    /// Whether the syscall program finds tasks through the per-CPU placement cache.
    pub fn uses_task_cache(&self) -> bool {
        self.task_cache.is_some()
    }

    /// The syscall program costs every process on the host: the reader attaches it only
    /// while some cgroup is tracked, and drops the links to detach it. With the placement
    /// cache, the task-exit program comes first (a new task can get an exited task's stack,
    /// the cache's key); entries written before it ran are then invalidated.
    pub fn attach_syscalls(&self) -> Result<SyscallLinks, KernelError> {
        let progs = &self.skel.progs;
        let links = match &self.task_cache {
            None => SyscallLinks {
                sys_enter: attach(&progs.ctrace_sys_enter_helper, "tp_btf/sys_enter")?,
                task_exit: None,
                attached_flag: self.syscalls_attached,
            },
            Some(cache) => {
                let task_exit = attach(&progs.ctrace_exited, "tp_btf/sched_process_exit")?;
                cache.invalidate();
                SyscallLinks {
                    sys_enter: attach(&progs.ctrace_sys_enter, "tp_btf/sys_enter")?,
                    task_exit: Some(task_exit),
                    attached_flag: self.syscalls_attached,
                }
            }
        };
        if let Some(flag) = self.syscalls_attached {
            // SAFETY: as in SyscallLinks::drop.
            unsafe { AtomicU32::from_ptr(flag.as_ptr()) }.store(1, Ordering::SeqCst);
        }
        Ok(links)
    }

    pub fn ringbuf_misses(&self) -> u64 {
        let bss = self.skel.maps.bss_data.as_deref();
        bss.map_or(0, |b| b.ringbuf_misses)
    }

    /// Cgroups given no kernel state (slot taken, the collision hash full): untraced.
    pub fn claim_failures(&self) -> u64 {
        self.claim_count().map_or(0, |c| c.load(Ordering::SeqCst))
    }
}
