//! Finding cgroups: the cgroup2 mount (on a v1 "hybrid" host, `/sys/fs/cgroup/unified`) and
//! a process's cgroup on it, whose directory inode is the id the kernel programs see.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup2 (unified) hierarchy is mounted; ctrace keys containers by it")]
    NoCgroup2,
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("process {0} has no cgroup2 entry in /proc/{0}/cgroup")]
    NoEntry(u32),
}

pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    let path = PathBuf::from("/proc/self/mountinfo");
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Io { path, source })?;
    // Fields: id parent major:minor root mount-point options... - fstype source super-options
    text.lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| left.split_whitespace().nth(4).map(PathBuf::from))?
        })
        .ok_or(CgroupError::NoCgroup2)
}

/// The process's cgroup on the unified hierarchy, relative to its mount (`/docker/<id>`).
pub fn cgroup_of_pid(pid: u32) -> Result<String, CgroupError> {
    let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = fs::read_to_string(&path).map_err(|source| CgroupError::Io { path, source })?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        .ok_or(CgroupError::NoEntry(pid))
}

/// A cgroup's id as `bpf_get_current_cgroup_id()` returns it: its directory's inode.
pub fn cgroup_id(root: &std::path::Path, relative: &str) -> Result<u64, CgroupError> {
    let path = root.join(relative.trim_start_matches('/'));
    fs::metadata(&path)
        .map(|m| m.ino())
        .map_err(|source| CgroupError::Io { path, source })
}
