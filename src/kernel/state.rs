//! Per-cgroup state in the kernel as userspace changes it: track a container that predates
//! the daemon, untrack one that is not ours, start a new epoch.
//!
//! Two backends (bpf/ctrace.bpf.c): cgroup local storage, keyed by an open cgroup directory;
//! or slots, an array indexed by `cgroup id & slot_mask` whose entry names its cgroup, with a
//! hash by cgroup id for the cgroups whose slot was taken.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};

use libbpf_rs::{MapCore, MapFlags};

use super::skel::types;
use super::{Kernel, KernelError};

/// CTRACE_PHASE_APP in bpf/event.h.
const PHASE_APP: u32 = 2;

/// A cgroup's directory, held open (local storage is keyed by its descriptor), and its id
/// (the directory's inode number, what `bpf_get_current_cgroup_id()` returns).
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

fn bytes<T: plain::Plain>(value: &T) -> &[u8] {
    // SAFETY: `Plain` types are #[repr(C)] integers and arrays; viewing them as bytes is sound.
    unsafe { plain::as_bytes(value) }
}

fn decode<T: plain::Plain + Default>(id: u64, raw: &[u8]) -> Result<T, KernelError> {
    let mut value = T::default();
    plain::copy_from_bytes(&mut value, raw).map_err(|_| KernelError::State {
        id,
        source: libbpf_rs::Error::from(std::io::Error::other("short map value")),
    })?;
    Ok(value)
}

impl Kernel {
    fn state_error(id: u64) -> impl FnOnce(libbpf_rs::Error) -> KernelError {
        move |source| KernelError::State { id, source }
    }

    fn slot_key(&self, id: u64) -> [u8; 4] {
        ((id & u64::from(self.slot_mask)) as u32).to_ne_bytes()
    }

    fn slot(&self, id: u64) -> Result<types::ctrace_slot, KernelError> {
        let raw = self
            .skel
            .maps
            .cgroup_slots
            .lookup(&self.slot_key(id), MapFlags::ANY)
            .map_err(Self::state_error(id))?
            .unwrap_or_default();
        decode(id, &raw)
    }

    fn write_slot(&self, id: u64, slot: &types::ctrace_slot) -> Result<(), KernelError> {
        self.skel
            .maps
            .cgroup_slots
            .update(&self.slot_key(id), bytes(slot), MapFlags::ANY)
            .map_err(Self::state_error(id))
    }

    fn adjust_overflow(&self, delta: i64) {
        if let Some(ptr) = self.overflow_count {
            // SAFETY: the pointer is into the skeleton's .bss mapping, valid and aligned for
            // the program's life; the kernel programs change it only with atomic adds.
            unsafe { AtomicI64::from_ptr(ptr.as_ptr()) }.fetch_add(delta, Ordering::SeqCst);
        }
    }

    /// The hash (or local storage) key and map for a cgroup outside the slots array.
    fn keyed(
        &self,
        cg_id: u64,
        cg: Option<&CgroupHandle>,
    ) -> Option<(Vec<u8>, &libbpf_rs::Map<'static>)> {
        if self.cgroup_storage {
            let cg = cg?;
            Some((
                cg.dir.as_raw_fd().to_ne_bytes().to_vec(),
                &self.skel.maps.cgroup_storage,
            ))
        } else {
            Some((cg_id.to_ne_bytes().to_vec(), &self.skel.maps.cgroup_hash))
        }
    }

    /// Starts tracking a container that already runs its application (it predates the
    /// daemon). No-op if the kernel tracks it already (from cgroup_mkdir). Its tasks may
    /// have cached "untracked": the cache is invalidated once the state is in place.
    pub fn track(&self, cg: &CgroupHandle) -> Result<(), KernelError> {
        let tracked = self.start_tracking(cg);
        if let Some(cache) = &self.task_cache {
            cache.invalidate();
        }
        tracked
    }

    fn start_tracking(&self, cg: &CgroupHandle) -> Result<(), KernelError> {
        let state = types::ctrace_cgroup {
            phase_now: PHASE_APP,
            ..Default::default()
        };
        if !self.cgroup_storage {
            let slot = self.slot(cg.id)?;
            if slot.cgroup_id == cg.id {
                return Ok(());
            }
            if slot.cgroup_id == 0 {
                return self.write_slot(
                    cg.id,
                    &types::ctrace_slot {
                        cgroup_id: cg.id,
                        state,
                    },
                );
            }
        }
        let Some((key, map)) = self.keyed(cg.id, Some(cg)) else {
            return Ok(());
        };
        if map
            .lookup(&key, MapFlags::ANY)
            .map_err(Self::state_error(cg.id))?
            .is_some()
        {
            return Ok(());
        }
        map.update(&key, bytes(&state), MapFlags::NO_EXIST)
            .map_err(Self::state_error(cg.id))?;
        if !self.cgroup_storage {
            self.adjust_overflow(1);
        }
        Ok(())
    }

    /// Stops tracking a cgroup (not a labelled container, or stopped). Local storage is
    /// keyed by the directory; without it (already removed) the state died with the cgroup.
    /// The placement cache is held meanwhile: a task of this cgroup must not find its freed
    /// slot through a cached entry once another cgroup has it.
    pub fn untrack(&self, cg_id: u64, cg: Option<&CgroupHandle>) {
        if let Some(cache) = &self.task_cache {
            cache.hold();
        }
        self.stop_tracking(cg_id, cg);
        if let Some(cache) = &self.task_cache {
            cache.release();
        }
    }

    fn stop_tracking(&self, cg_id: u64, cg: Option<&CgroupHandle>) {
        if !self.cgroup_storage {
            if let Ok(slot) = self.slot(cg_id) {
                if slot.cgroup_id == cg_id {
                    let _ = self.write_slot(cg_id, &types::ctrace_slot::default());
                    return;
                }
            }
        }
        if let Some((key, map)) = self.keyed(cg_id, cg) {
            if map.delete(&key).is_ok() && !self.cgroup_storage {
                self.adjust_overflow(-1);
            }
        }
    }

    /// Starts a new epoch: every cgroup forgets its sightings on its next event (the kernel
    /// clears them, so no state is rewritten from here).
    pub fn start_epoch(&self) {
        if let Some(ptr) = self.reset_generation {
            // SAFETY: the pointer is into the skeleton's .bss mapping, valid and aligned for
            // the program's life; the kernel programs only read it.
            unsafe { AtomicU32::from_ptr(ptr.as_ptr()) }.fetch_add(1, Ordering::SeqCst);
        }
    }
}
