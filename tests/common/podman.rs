//! A podman API service of a test's own (`podman system service` on a socket in the test's
//! directory), reached by the daemon through `DOCKER_HOST` and by the test through
//! `podman --url`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct OwnPodman {
    socket: PathBuf,
    child: Option<Child>,
}

/// A podman service on a socket in `dir`, or `None` (a printed skip) when podman is missing
/// outside CI; in CI a missing podman fails the test.
pub fn podman_service(dir: &Path) -> Option<OwnPodman> {
    let found = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        return super::env::missing("podman (apt-get install podman; scripts/setup-host.sh)");
    }
    let socket = dir.join("podman.sock");
    let log = std::fs::File::create(dir.join("podman.log")).expect("podman log");
    // runc, named: with crun installed podman would pick crun, which refuses this hybrid
    // host's cgroups ("cgroups in hybrid mode not supported").
    let child = Command::new("podman")
        .args(["--runtime", "runc", "system", "service", "-t", "0"])
        .arg(format!("unix://{}", socket.display()))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("starting podman system service");
    let own = OwnPodman {
        socket,
        child: Some(child),
    };
    super::env::wait_until_it_answers(
        "podman's service",
        &dir.join("podman.log"),
        Duration::from_secs(30),
        || {
            own.podman(&["version", "--format", "{{.Server.Version}}"])
                .status
                .success()
        },
    );
    Some(own)
}

impl OwnPodman {
    /// The `DOCKER_HOST` value of the service.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        Command::new("podman")
            .arg("--url")
            .arg(self.host())
            .args(args)
            .output()
            .expect("running the podman client")
    }

    /// `podman --url ... ARGS`; returns stdout, panics on failure.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports busybox as `tag` (podman names it `localhost/<tag>`).
    pub fn import_busybox(&self, tag: &str) {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("bin")).unwrap();
        std::fs::copy("/bin/busybox", root.path().join("bin/busybox")).unwrap();
        for applet in ["sh", "mkdir", "echo", "cat", "sleep", "true", "ls", "rm"] {
            std::os::unix::fs::symlink("busybox", root.path().join("bin").join(applet)).unwrap();
        }
        for dir in ["tmp", "proc", "sys", "dev", "etc"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c . | podman --url {} import -q - {tag}",
                root.path().display(),
                self.host()
            ))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "podman import of {tag} failed");
    }

    /// SIGTERM to the service this test started (by PID), then wait for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for OwnPodman {
    fn drop(&mut self) {
        self.stop();
    }
}
