//! A dockerd of a test's own, for tests that stop or start Docker under a daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A dockerd of the test's own (own socket `dir/docker.sock`, data root and exec root, no
/// bridge, no iptables), so the shared one stays up; stopped (SIGTERM, by PID) when dropped.
pub struct OwnDockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnDockerd {
    pub fn socket(dir: &Path) -> PathBuf {
        dir.join("docker.sock")
    }

    pub fn host(&self) -> String {
        format!("unix://{}", Self::socket(&self.dir).display())
    }

    pub fn start(dir: &Path) -> OwnDockerd {
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg("--host")
            .arg(format!("unix://{}", Self::socket(dir).display()))
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a second dockerd (is docker.io installed?)");
        let own = OwnDockerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        super::env::wait_until_it_answers(
            "the test's dockerd",
            &dir.join("dockerd.log"),
            Duration::from_secs(60),
            || {
                own.docker(&["info", "--format", "{{.ServerVersion}}"])
                    .status
                    .success()
            },
        );
        own
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("--host")
            .arg(self.host())
            .args(args)
            .output()
            .expect("running the docker client")
    }

    /// SIGTERM to the dockerd this test started, then wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the PID of a child this test spawned and has not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }
}

impl Drop for OwnDockerd {
    fn drop(&mut self) {
        self.stop();
    }
}
