//! Docker side: which containers exist, which carry the label, and where their cgroups are.

pub mod cgroup;
pub mod pod;
pub mod watcher;
