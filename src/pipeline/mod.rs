//! Userspace pipeline: one reader thread polls the ring buffer and never touches SQLite; a
//! bounded crossbeam channel carries what it decodes (back-pressure, never dropping) to the
//! one writer thread that owns the SQLite connection.

pub mod clock;
pub mod reader;
pub mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use crate::kernel::event::{NewCgroup, Sighting};
use crate::registry::Container;

/// Capacity of the reader → writer channel.
pub const CHANNEL_CAPACITY: usize = 65_536;

/// What the writer receives.
#[derive(Debug)]
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
    /// Kernel counters, for the store's `meta` table.
    RingbufMisses(u64),
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
    /// Forget sightings so continued use is seen again (a new epoch, or a Tracefile window
    /// rolled over: every container then reports its current use again).
    NewEpoch,
    Shutdown,
}
