//! Labelled containers of the test image on the shared dockerd (or another, by host).

use super::env::{docker, docker_ok};
use super::images::IMAGE;

/// A detached labelled container that waits at a gate (the file /tmp/go) before running
/// `script`; removed when dropped, even when the test fails.
pub struct GatedContainer {
    pub id: String,
}

impl GatedContainer {
    pub fn start(label: &str, script: &str) -> GatedContainer {
        let gated = format!("while [ ! -e /tmp/go ]; do sleep 0.1; done; {script}");
        GatedContainer {
            id: run_detached(label, &["sh", "-c", &gated]),
        }
    }

    /// Lets the script run and waits for the container to exit.
    pub fn open_and_wait(&self) {
        assert!(docker(&["exec", &self.id, "touch", "/tmp/go"])
            .status
            .success());
        let _ = docker(&["wait", &self.id]);
    }
}

impl Drop for GatedContainer {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

/// `docker run -d --network none` of the test image with a Tracefile label; returns the id.
pub fn run_detached(label: &str, cmd: &[&str]) -> String {
    let label = format!("ctrace.tracefile={label}");
    let mut args = vec!["run", "-d", "--network", "none", "--label", &label, IMAGE];
    args.extend(cmd);
    docker_ok(&args).trim().to_string()
}

/// `docker run --rm --network none` with a label; returns stdout, panics on failure.
pub fn run_container(label: Option<&str>, image: &str, cmd: &[&str]) -> String {
    run_named(None, label, image, cmd)
}

pub fn run_named(name: Option<&str>, label: Option<&str>, image: &str, cmd: &[&str]) -> String {
    run_at(None, name, label, image, cmd)
}

/// As `run_named`, on the dockerd at `host` (a `docker --host` value) if given.
pub fn run_at(
    host: Option<&str>,
    name: Option<&str>,
    label: Option<&str>,
    image: &str,
    cmd: &[&str],
) -> String {
    let mut args = vec![];
    if let Some(host) = host {
        args.extend(["--host", host]);
    }
    args.extend(["run", "--rm", "--network", "none"]);
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    let l;
    if let Some(label) = label {
        l = format!("ctrace.tracefile={label}");
        args.extend(["--label", &l]);
    }
    args.push(image);
    args.extend(cmd);
    docker_ok(&args)
}
