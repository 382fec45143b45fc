//! Userspace pipeline: one reader thread polls the ring buffer and never touches SQLite; a
//! bounded crossbeam channel carries what it decodes (back-pressure, never dropping) to the
//! one writer thread that owns the SQLite connection.

pub mod clock;
pub mod reader;
pub mod store_faults;
pub mod writer;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, SendError, Sender};

use crate::kernel::event::{NewCgroup, Sighting};
use crate::registry::Container;

/// Capacity of the reader → writer channel.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// What the writer receives.
#[derive(Debug, Clone)]
pub enum ToWriter {
    Sighting(Sighting),
    /// The kernel started tracking a cgroup; its sightings wait until it is resolved.
    NewCgroup(NewCgroup),
    /// A tracked cgroup is a labelled container.
    Resolved(Arc<Container>),
    /// A tracked cgroup is not ours: forget what it sent.
    Ignored {
        cgroup_id: u64,
    },
    /// The container stopped (Unix ms).
    Stopped {
        cgroup_id: u64,
        at_ms: i64,
    },
    /// What a seccomp setting (`containers.seccomp`) answers for the calls it refuses with
    /// an errno other than EPERM, and the names it allows per ABI, measured by the errno
    /// probe.
    Refusals {
        seccomp: String,
        errnos: std::collections::BTreeMap<String, u32>,
        allowed: std::collections::BTreeMap<crate::abi::Abi, std::collections::BTreeSet<String>>,
    },
    /// Kernel counters, for the store's `meta` table.
    RingbufMisses(u64),
    /// Another counter, stored under `key` in the `meta` table: `claim_failures`,
    /// `decode_errors`, and the occupancy (`tracked_cgroups`, `slots_in_use`,
    /// `registry_containers`).
    KernelCounter {
        key: &'static str,
        value: u64,
    },
    /// Facts about the daemon for the `meta` table (`ctrace status`): each key set to its
    /// value, or removed if None.
    Meta(Vec<(&'static str, Option<String>)>),
    /// Commit everything, rewrite Tracefiles, end.
    Shutdown,
}

/// What the reader (owner of the kernel state) is asked to do.
#[derive(Debug)]
pub enum ToReader {
    /// Track an existing container's cgroup (it started before the daemon).
    Track {
        cgroup_id: u64,
        path: PathBuf,
    },
    Untrack {
        cgroup_id: u64,
    },
    /// A traced container stopped (Unix ms): everything its tasks made the kernel submit is
    /// in the ring buffer by now (Docker reports a death after the last task is gone), so
    /// the reader drains it, then tells the writer and untracks. In the store, a container
    /// marked stopped therefore has all its sightings.
    Stopped {
        cgroup_id: u64,
        at_ms: i64,
    },
    /// How many labelled containers Docker has (created, running or stopped): while there
    /// is one, the syscall program stays attached, so a start misses none of its calls.
    LabelledContainers(usize),
    /// The engine's events come too late to attach before a start (podman writes them to a
    /// file its API polls: `create` arrives after the container ran): keep the syscall
    /// program attached while connected to such an engine.
    EngineEventsLate(bool),
    /// One cgroup forgets its sightings (its Tracefile window rolled over).
    Forget {
        cgroup_id: u64,
    },
    /// Forget sightings so continued use is seen again (a new epoch, or a Tracefile window
    /// rolled over: every container then reports its current use again).
    NewEpoch,
    /// Track the cgroup at this path (relative to the cgroup2 mount) from its creation,
    /// although its name is not a container id (`expected`), or no longer.
    ExpectCgroup {
        path: String,
        expected: bool,
    },
    /// Answered once every earlier request is applied (see `ReaderControl::applied`).
    Applied(tokio::sync::oneshot::Sender<()>),
    Shutdown,
}

/// Sends requests to the reader thread and wakes it: it sleeps in the ring buffer's poll,
/// and some requests (attach the syscall program before a container starts) cannot wait
/// for the poll's time-out.
#[derive(Debug, Clone)]
pub struct ReaderControl {
    tx: Sender<ToReader>,
    wake: Arc<OwnedFd>,
}

/// The reader's end: requests, and the descriptor that is readable while some are queued.
#[derive(Debug)]
pub struct ControlReceiver {
    pub rx: Receiver<ToReader>,
    wake: Arc<OwnedFd>,
}

/// A control channel with its eventfd.
pub fn control_channel() -> std::io::Result<(ReaderControl, ControlReceiver)> {
    // SAFETY: eventfd(2) has no memory preconditions; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    let (tx, rx) = crossbeam_channel::unbounded();
    Ok((
        ReaderControl {
            tx,
            wake: Arc::clone(&wake),
        },
        ControlReceiver { rx, wake },
    ))
}

impl ReaderControl {
    /// Returns once the reader has applied every request sent before (at most `within`):
    /// the containers a watcher's inventory found are then tracked in the kernel, before
    /// the daemon says it is ready.
    pub async fn applied(&self, within: std::time::Duration) {
        let (done, answered) = tokio::sync::oneshot::channel();
        if self.send(ToReader::Applied(done)).is_ok()
            && tokio::time::timeout(within, answered).await.is_err()
        {
            tracing::warn!("the reader did not apply the watcher's requests within {within:?}");
        }
    }

    pub fn send(&self, request: ToReader) -> Result<(), SendError<ToReader>> {
        self.tx.send(request)?;
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our own eventfd. A full counter
        // (EAGAIN) still leaves it readable, which is all the reader needs.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        Ok(())
    }
}

impl ControlReceiver {
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Resets the eventfd; call before draining `rx`.
    pub fn acknowledge(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our own non-blocking eventfd.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
    }
}
