//! containerd for the root tests: the one dockerd runs (its own, private socket), reached with
//! `ctr` in a namespace of the test's own that is removed at the end, with whatever it holds.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::env::missing;

/// dockerd's containerd on this machine kind (Debian's docker.io starts its own).
pub const CONTAINERD_SOCKET: &str = "/var/run/docker/containerd/containerd.sock";

/// A containerd namespace of the test's own: containers, images and the namespace itself
/// (and cgroup directories the test names with `remove_cgroup_dirs`) go when it is dropped,
/// even when the test fails.
pub struct Namespace {
    pub name: String,
    containers: Vec<String>,
    cgroup_dirs: Vec<String>,
}

/// A namespace on dockerd's containerd, or `None` (a printed skip) outside CI when `ctr` or
/// the socket is missing. Call after `root_env()`.
pub fn containerd_namespace() -> Option<Namespace> {
    if !Path::new(CONTAINERD_SOCKET).exists() {
        return missing(&format!("containerd at {CONTAINERD_SOCKET} (dockerd's)"));
    }
    if !Command::new("ctr")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return missing("ctr (apt-get install containerd)");
    }
    let name = format!("ctrace-test-{}", std::process::id());
    Some(Namespace {
        // runc makes `/<namespace>/<id>` in every hierarchy (ctr's default cgroups path).
        cgroup_dirs: vec![name.clone()],
        name,
        containers: Vec::new(),
    })
}

impl Namespace {
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .args(["--address", CONTAINERD_SOCKET, "--namespace", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// `ctr ARGS`; returns stdout, panics on failure.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies a Docker image into the namespace (`docker save | ctr images import`: no
    /// registry here); returns its containerd name.
    pub fn import_from_docker(&self, tag: &str) -> String {
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "docker save {tag} | ctr --address {CONTAINERD_SOCKET} --namespace {} \
                 images import -",
                self.name
            ))
            .stdout(Stdio::null())
            .status()
            .expect("running docker save | ctr images import");
        assert!(status.success(), "importing {tag} into containerd failed");
        format!("docker.io/{tag}:latest")
    }

    /// `ctr run --rm` of a labelled container (no network but loopback); returns its output.
    pub fn run(&self, label: &str, image: &str, id: &str, extra: &[&str], cmd: &[&str]) -> String {
        let label = format!("ctrace.tracefile={label}");
        let mut args = vec!["run", "--rm", "--label", &label];
        args.extend(extra);
        args.extend([image, id]);
        args.extend(cmd);
        self.ctr_ok(&args)
    }

    /// Remembers a container to remove at the end, should `ctr run --rm` not get to it.
    pub fn owns_container(&mut self, id: &str) {
        self.containers.push(id.to_string());
    }

    /// A cgroup directory (relative to each hierarchy's root) the test made runc create:
    /// removed, in every hierarchy, at the end if it is empty (the innermost first).
    pub fn owns_cgroup_dir(&mut self, relative: &str) {
        self.cgroup_dirs.push(relative.to_string());
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for id in &self.containers {
            let _ = self.ctr(&["tasks", "kill", "--signal", "SIGKILL", id]);
            let _ = self.ctr(&["tasks", "delete", "--force", id]);
            let _ = self.ctr(&["containers", "delete", id]);
        }
        let images = self.ctr(&["images", "list", "--quiet"]);
        for image in String::from_utf8_lossy(&images.stdout).lines() {
            let _ = self.ctr(&["images", "remove", "--sync", image]);
        }
        // Content and snapshots go with containerd's garbage collection, shortly after.
        for _ in 0..50 {
            let out = Command::new("ctr")
                .args([
                    "--address",
                    CONTAINERD_SOCKET,
                    "namespaces",
                    "remove",
                    &self.name,
                ])
                .output();
            if out.is_ok_and(|o| o.status.success()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // The runtime removes its containers' cgroups shortly after they end: retry for a
        // while, innermost first (everything under these directories is the test's).
        let hierarchies: Vec<_> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        for dir in self.cgroup_dirs.iter().rev() {
            for hierarchy in &hierarchies {
                let path = hierarchy.join(dir);
                for _ in 0..30 {
                    if !path.exists() || remove_tree(&path) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

/// Removes a cgroup directory and the (empty) cgroups under it; true if it is gone.
fn remove_tree(dir: &Path) -> bool {
    if let Ok(children) = std::fs::read_dir(dir) {
        for child in children.flatten() {
            if child.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&child.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}
