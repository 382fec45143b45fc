//! Per-cgroup state in the kernel as userspace changes it: track a container that predates
//! the daemon, untrack one that is not ours, start a new epoch.
//!
//! Two backends (bpf/ctrace.bpf.c): cgroup local storage, keyed by an open cgroup directory;
//! or slots, an array indexed by `cgroup id & slot_mask` whose entry names its cgroup, with a
//! hash by cgroup id for the cgroups whose slot was taken.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use libbpf_rs::{MapCore, MapFlags};

use super::skel::types;
use super::{Kernel, KernelError};

use super::codes::consts::{EXPECTED_PATH_LEN, PHASE_APP};

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

/// One slot in the programs' .bss, shared with the kernel programs while they run: read and
/// written only with atomics.
struct Slot(NonNull<types::ctrace_slot>);

impl Slot {
    /// The cgroup id that owns the slot; 0 when free.
    fn owner(&self) -> &AtomicU64 {
        // SAFETY: the slot is inside the skeleton's .bss mapping, which lives as long as the
        // Kernel; the field is 8-byte aligned and the kernel programs use atomics on it too.
        unsafe { AtomicU64::from_ptr(std::ptr::addr_of_mut!((*self.0.as_ptr()).cgroup_id)) }
    }

    fn phase_now(&self) -> &AtomicU32 {
        // SAFETY: as for `owner`; a 4-byte aligned field.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*self.0.as_ptr()).state.phase_now)) }
    }

    fn generation(&self) -> &AtomicU32 {
        // SAFETY: as for `owner`; a 4-byte aligned field.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*self.0.as_ptr()).state.generation)) }
    }

    /// Zeroes the slot's state, word by word.
    fn clear_state(&self) {
        // SAFETY: as for `owner`; the state is a whole number of aligned u64 words.
        let words = unsafe { std::ptr::addr_of_mut!((*self.0.as_ptr()).state) }.cast::<u64>();
        for i in 0..std::mem::size_of::<types::ctrace_cgroup>() / 8 {
            // SAFETY: `i` stays inside the state (see the bound above).
            unsafe { AtomicU64::from_ptr(words.add(i)) }.store(0, Ordering::SeqCst);
        }
    }
}

impl Kernel {
    fn state_error(id: u64) -> impl FnOnce(libbpf_rs::Error) -> KernelError {
        move |source| KernelError::State { id, source }
    }

    fn slot(&self, id: u64) -> Option<Slot> {
        let base = self.slots?;
        // SAFETY: the index is masked to the array's length (slot_mask < MAX_SLOTS).
        Some(Slot(unsafe {
            base.add((id & u64::from(self.slot_mask)) as usize)
        }))
    }

    /// `claim_failures` in .bss (bpf/state.h), which the kernel programs add to as well.
    pub(super) fn claim_count(&self) -> Option<&AtomicU64> {
        let ptr = self.claim_failures?;
        // SAFETY: the pointer is into the skeleton's .bss mapping, valid and 8-byte aligned for
        // the program's life; the kernel programs change it only with atomic adds.
        Some(unsafe { AtomicU64::from_ptr(ptr.as_ptr()) })
    }

    fn adjust_overflow(&self, delta: i64) {
        if let Some(ptr) = self.overflow_count {
            // SAFETY: the pointer is into the skeleton's .bss mapping, valid and aligned for
            // the program's life; the kernel programs change it only with atomic adds.
            unsafe { AtomicI64::from_ptr(ptr.as_ptr()) }.fetch_add(delta, Ordering::SeqCst);
        }
    }

    /// The slots backend's capacity: slots in the array and entries in the collision hash.
    /// None with cgroup local storage.
    pub fn slots_capacity(&self) -> Option<(u32, u32)> {
        (!self.cgroup_storage)
            .then(|| (self.slot_mask + 1, self.skel.maps.cgroup_hash.max_entries()))
    }

    /// Cgroups holding kernel state in the slots backend: slots with an owner plus entries
    /// in the collision hash (`overflow_count`). None with cgroup local storage (it cannot be
    /// counted from here). Userspace bookkeeping: reads the shared array, changes nothing.
    pub fn slots_in_use(&self) -> Option<u64> {
        if self.cgroup_storage {
            return None;
        }
        let owned = (0..=u64::from(self.slot_mask))
            .filter_map(|index| self.slot(index))
            .filter(|slot| slot.owner().load(Ordering::Relaxed) != 0)
            .count() as u64;
        let overflow = self.overflow_count.map_or(0, |ptr| {
            // SAFETY: as in `adjust_overflow`.
            unsafe { AtomicI64::from_ptr(ptr.as_ptr()) }.load(Ordering::Relaxed)
        });
        Some(owned + u64::try_from(overflow).unwrap_or(0))
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

    /// Announces a cgroup path (relative to the cgroup2 mount, `/ns/id`) that the kernel
    /// is to track from its creation although its name is not a container id, or withdraws
    /// it. False if the path is too long to announce (it is then traced from its task).
    pub fn expect_cgroup(&self, path: &str, expected: bool) -> bool {
        let mut key = [0u8; EXPECTED_PATH_LEN as usize];
        let bytes = path.as_bytes();
        if bytes.len() >= key.len() || bytes.contains(&0) {
            return false;
        }
        key[..bytes.len()].copy_from_slice(bytes);
        let map = &self.skel.maps.expected_cgroups;
        if expected {
            map.update(&key, &[1], MapFlags::ANY).is_ok()
        } else {
            let _ = map.delete(&key);
            true
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
        if let Some(slot) = self.slot(cg.id).filter(|_| !self.cgroup_storage) {
            match slot
                .owner()
                .compare_exchange(0, cg.id, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    // Cleared again after the claim, as the kernel does (bpf/state.h).
                    slot.clear_state();
                    slot.phase_now().store(PHASE_APP, Ordering::SeqCst);
                    return Ok(());
                }
                Err(owner) if owner == cg.id => return Ok(()),
                Err(_) => {} // taken: the hash
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
        if let Err(e) = map.update(&key, bytes(&state), MapFlags::NO_EXIST) {
            // The slot is taken and the collision hash refused it (full): counted as the
            // kernel counts its own failed claims; the caller names the container.
            if !self.cgroup_storage {
                if let Some(count) = self.claim_count() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
            return Err(Self::state_error(cg.id)(e));
        }
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
        if let Some(slot) = self.slot(cg_id).filter(|_| !self.cgroup_storage) {
            if slot.owner().load(Ordering::SeqCst) == cg_id {
                slot.clear_state();
                let _ = slot
                    .owner()
                    .compare_exchange(cg_id, 0, Ordering::SeqCst, Ordering::SeqCst);
                return;
            }
        }
        if let Some((key, map)) = self.keyed(cg_id, cg) {
            if map.delete(&key).is_ok() && !self.cgroup_storage {
                self.adjust_overflow(-1);
            }
        }
    }

    /// One cgroup forgets its sightings on its next event (its Tracefile window rolled over):
    /// its generation is made stale. State outside the slots cannot be changed without
    /// racing the programs: there every cgroup starts a new epoch instead (wider, still
    /// correct: continued use is only reported again).
    pub fn forget(&self, cg_id: u64) {
        let owned = self
            .slot(cg_id)
            .filter(|_| !self.cgroup_storage)
            .filter(|slot| slot.owner().load(Ordering::SeqCst) == cg_id);
        let (Some(slot), Some(current)) = (owned, self.reset_generation) else {
            self.start_epoch();
            return;
        };
        // SAFETY: the pointer is into the skeleton's .bss mapping, valid and aligned for the
        // program's life; the kernel programs only read it.
        let now = unsafe { AtomicU32::from_ptr(current.as_ptr()) }.load(Ordering::SeqCst);
        slot.generation().store(now ^ 0x8000_0000, Ordering::SeqCst);
        // Valid cache entries vouch that their state caught up; fills catch up again.
        if let Some(cache) = &self.task_cache {
            cache.invalidate();
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
        // Valid cache entries vouch that their state caught up with the epoch.
        if let Some(cache) = &self.task_cache {
            cache.invalidate();
        }
    }
}
