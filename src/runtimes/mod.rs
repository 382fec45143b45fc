//! What the engine watchers share: which cgroup layouts runtimes and kubelet create
//! (`cgroup_path`) and how an engine that is down is reached again (`backoff`). Podman is
//! reached through its Docker-compatible API (`DOCKER_HOST`); containerd has its own watcher
//! (`crate::containerd`).

pub mod backoff;
pub mod cgroup_path;
