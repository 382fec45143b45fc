//! Container runtimes other than Docker: which cgroup layouts they and kubelet create
//! (`cgroup_path`). Podman is reached through its Docker-compatible API (`DOCKER_HOST`), so
//! the watcher needs no client of its own for it.

pub mod cgroup_path;
