//! The kernel side as userspace sees it: load the programs, choose what this kernel supports,
//! attach, and keep the per-cgroup state (track, untrack, reset each epoch).

pub mod event;
pub mod probe;

use std::fs::File;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject, PrintLevel};

pub use probe::{CapSource, Features, StateMap};

#[allow(clippy::all, dead_code, non_camel_case_types, unused_imports)]
pub mod skel {
    include!(concat!(env!("OUT_DIR"), "/ctrace.skel.rs"));
}
use skel::{types, CtraceSkel, CtraceSkelBuilder};

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

#[derive(Debug, Clone, Copy, Default)]
pub struct KernelConfig {
    /// Mirror events to the trace pipe.
    pub debug: bool,
    pub state: StateMap,
}

/// A cgroup as the kernel programs key it: local storage wants an open directory, the hash
/// fallback its id (the directory's inode number).
#[derive(Debug)]
pub struct CgroupHandle {
    pub id: u64,
    pub path: PathBuf,
    dir: File,
}

impl CgroupHandle {
    pub fn open(path: PathBuf) -> Result<CgroupHandle, std::io::Error> {
        use std::os::unix::fs::MetadataExt;
        let dir = File::open(&path)?;
        let id = dir.metadata()?.ino();
        Ok(CgroupHandle { id, path, dir })
    }
}

pub struct Kernel {
    skel: CtraceSkel<'static>,
    cgroup_storage: bool,
    cap_source: CapSource,
    _links: Vec<Link>,
}

/// CTRACE_PHASE_APP in bpf/event.h.
const PHASE_APP: u32 = 2;

const STATE_SIZE: usize = size_of::<types::ctrace_cgroup>();

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
        rodata.debug = config.debug;
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
        open.progs
            .ctrace_cap_tracepoint
            .set_autoload(cap_source == CapSource::Tracepoint);
        open.progs
            .ctrace_cap_fexit
            .set_autoload(cap_source == CapSource::Fexit);
        open.progs
            .ctrace_cap_kprobe
            .set_autoload(cap_source == CapSource::Kprobe);
        let skel = open.load().map_err(KernelError::Load)?;

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

    fn key(&self, cg: &CgroupHandle) -> Vec<u8> {
        if self.cgroup_storage {
            cg.dir.as_raw_fd().to_ne_bytes().to_vec()
        } else {
            cg.id.to_ne_bytes().to_vec()
        }
    }

    fn state_map(&self) -> &libbpf_rs::Map<'static> {
        if self.cgroup_storage {
            &self.skel.maps.cgroup_storage
        } else {
            &self.skel.maps.cgroup_hash
        }
    }

    /// Starts tracking a cgroup (no-op if the kernel already tracks it from cgroup_mkdir).
    /// Such a container already runs its application (it predates the daemon).
    pub fn track(&self, cg: &CgroupHandle) -> Result<(), KernelError> {
        let mut state = types::ctrace_cgroup {
            phase_now: PHASE_APP,
            ..Default::default()
        };
        let map = self.state_map();
        let key = self.key(cg);
        if let Ok(Some(existing)) = map.lookup(&key, MapFlags::ANY) {
            let _ = plain::copy_from_bytes(&mut state, &existing);
            return Ok(());
        }
        // SAFETY: plain #[repr(C)] value viewed as bytes.
        let bytes = unsafe { plain::as_bytes(&state) };
        map.update(&key, bytes, MapFlags::ANY)
            .map_err(|source| KernelError::State { id: cg.id, source })
    }

    pub fn untrack(&self, cg: &CgroupHandle) {
        // Already gone when the cgroup was removed; nothing else to do.
        let _ = self.state_map().delete(&self.key(cg));
    }

    /// Untracks a cgroup known only by id (the kernel tracked it at mkdir, userspace found
    /// it is not a labelled container). Local storage needs the directory.
    pub fn untrack_by_path(&self, id: u64, path: PathBuf) {
        if self.cgroup_storage {
            if let Ok(cg) = CgroupHandle::open(path) {
                self.untrack(&cg);
            }
        } else {
            let _ = self.state_map().delete(&id.to_ne_bytes());
        }
    }

    /// Forgets every sighting of a cgroup (new epoch or Tracefile window), keeping its phase.
    pub fn reset(&self, cg: &CgroupHandle) -> Result<(), KernelError> {
        let map = self.state_map();
        let key = self.key(cg);
        let Some(bytes) = map
            .lookup(&key, MapFlags::ANY)
            .map_err(|source| KernelError::State { id: cg.id, source })?
        else {
            return Ok(());
        };
        let mut state = types::ctrace_cgroup::default();
        plain::copy_from_bytes(&mut state, &bytes).map_err(|_| KernelError::State {
            id: cg.id,
            source: libbpf_rs::Error::from(std::io::Error::other("short state value")),
        })?;
        let fresh = types::ctrace_cgroup {
            phase_now: state.phase_now,
            ..Default::default()
        };
        debug_assert_eq!(bytes.len(), STATE_SIZE);
        // SAFETY: plain #[repr(C)] value viewed as bytes.
        let fresh_bytes = unsafe { plain::as_bytes(&fresh) };
        map.update(&key, fresh_bytes, MapFlags::EXIST)
            .map_err(|source| KernelError::State { id: cg.id, source })
    }
}
